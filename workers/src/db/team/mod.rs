//! Tenant statements: every one binds the principal's team as `?1`
//! (`tests/tests/sql_lint.rs` reads every file of this folder). Split by
//! concern: here the team, its members, agents and settings; `usage` the
//! aggregates (writing a queue part once, reading the dashboard's sums);
//! `lifecycle` content, retention and deletion; `budgets` budgets, alerts
//! and seat plans; `developer` the developer self-view.

/// `w.b`: the first day of quarters `[?2, ?3)` that is not read from a
/// rollup, i.e. the team's compaction watermark + 1 clamped to the range's
/// whole UTC days `[?4, ?5)`. Shared by every statement that reads whole
/// compacted days from a rollup and the rest from `usage_q`.
macro_rules! watermark_cte {
    () => {
        "w AS (SELECT MAX(?4, MIN(?5, COALESCE((SELECT compacted_through_day FROM teams WHERE id = ?1) + 1, ?4))) AS b)"
    };
}

/// The `usage_q` rows around a rollup's days `[?4, w.b)`: the partial day at
/// the range's start (every quarter before the first whole day, or the
/// whole range when no day is read from the rollup), then, after `UNION
/// ALL`, the days above the watermark and the partial day at its end. `$cols`
/// is both selects' column list; `$then` goes between them (the rollup's
/// days, as `UNION ALL SELECT ...`).
macro_rules! edge_quarters {
    ($cols:expr, $then:expr) => {
        concat!(
            "SELECT ", $cols, " FROM usage_q WHERE team_id = ?1 AND quarter >= ?2 AND quarter < (SELECT CASE WHEN b > ?4 THEN ?4 * ?6 ELSE ?3 END FROM w) ",
            $then,
            " UNION ALL SELECT ", $cols, " FROM usage_q WHERE team_id = ?1 AND quarter >= (SELECT CASE WHEN b > ?4 THEN b * ?6 ELSE ?3 END FROM w) AND quarter < ?3"
        )
    };
}

/// The usage rows of quarters `[?2, ?3)`: whole UTC days `[?4, ?5)` at or
/// below the team's compaction watermark from `usage_d`, the partial days at
/// both edges and the days above the watermark from `usage_q` (`?6` quarters
/// a day). Exact in every zone: a local day's edges are whole quarters.
/// `last_q` is the row's last quarter.
macro_rules! usage_in_range {
    () => {
        concat!(
            "(WITH ", watermark_cte!(), " ",
            edge_quarters!(
                "developer_id, project, branch, model, requests, unpriced_requests, input_tokens, output_tokens, cache_write_5m_tokens, cache_write_1h_tokens, cache_read_tokens, cost_micro_usd, cost_pico_usd, quarter AS last_q",
                "UNION ALL SELECT developer_id, project, branch, model, requests, unpriced_requests, input_tokens, output_tokens, cache_write_5m_tokens, cache_write_1h_tokens, cache_read_tokens, cost_micro_usd, cost_pico_usd, last_quarter AS last_q FROM usage_d WHERE team_id = ?1 AND day >= ?4 AND day < (SELECT b FROM w)"
            ),
            ")"
        )
    };
}

/// `usage_in_range!` without the model, branch and agent: whole UTC days at
/// or below the watermark from `usage_dp` (one row per day, developer and
/// project), the rest from `usage_q`. Same arguments `?2..?6`.
macro_rules! projects_in_range {
    () => {
        concat!(
            "(WITH ", watermark_cte!(), " ",
            edge_quarters!(
                "developer_id, project, requests, unpriced_requests, input_tokens, output_tokens, cache_write_5m_tokens, cache_write_1h_tokens, cache_read_tokens, cost_micro_usd, cost_pico_usd, quarter AS last_q",
                "UNION ALL SELECT developer_id, project, requests, unpriced_requests, input_tokens, output_tokens, cache_write_5m_tokens, cache_write_1h_tokens, cache_read_tokens, cost_micro_usd, cost_pico_usd, last_quarter AS last_q FROM usage_dp WHERE team_id = ?1 AND day >= ?4 AND day < (SELECT b FROM w)"
            ),
            ")"
        )
    };
}

/// The team's usage rows by model in quarters `[?2, ?3)`: quarters below the
/// team's compaction watermark (`?4` quarters a day) from `usage_m`, the rest
/// from `usage_q`. Exact in every zone: both are quarter hours.
macro_rules! models_in_range {
    () => {
        "(WITH w AS (SELECT MAX(?2, MIN(?3, COALESCE((SELECT compacted_through_day FROM teams WHERE id = ?1) + 1, 0) * CAST(?4 AS INTEGER))) AS b) \
         SELECT model, requests, unpriced_requests, input_tokens, output_tokens, cache_write_5m_tokens, cache_write_1h_tokens, cache_read_tokens, cost_micro_usd, cost_pico_usd FROM usage_m \
         WHERE team_id = ?1 AND quarter >= ?2 AND quarter < (SELECT b FROM w) \
         UNION ALL SELECT model, requests, unpriced_requests, input_tokens, output_tokens, cache_write_5m_tokens, cache_write_1h_tokens, cache_read_tokens, cost_micro_usd, cost_pico_usd FROM usage_q \
         WHERE team_id = ?1 AND quarter >= (SELECT b FROM w) AND quarter < ?3)"
    };
}

/// The `ON CONFLICT` of a rollup upsert (a late event for a compacted
/// day): conflict target `$key`, every counter added, the pico remainder
/// carried into micro-dollars, then `$tail`. One list for `usage_d`,
/// `usage_m`, `usage_md` and `usage_dp`, whose counters are the same.
macro_rules! rollup_add {
    ($key:literal, $tail:literal) => {
        concat!(
            " ON CONFLICT (",
            $key,
            ") DO UPDATE SET \
         requests = requests + excluded.requests, unpriced_requests = unpriced_requests + excluded.unpriced_requests, \
         input_tokens = input_tokens + excluded.input_tokens, output_tokens = output_tokens + excluded.output_tokens, \
         cache_write_5m_tokens = cache_write_5m_tokens + excluded.cache_write_5m_tokens, \
         cache_write_1h_tokens = cache_write_1h_tokens + excluded.cache_write_1h_tokens, \
         cache_read_tokens = cache_read_tokens + excluded.cache_read_tokens, \
         cost_micro_usd = cost_micro_usd + excluded.cost_micro_usd + (cost_pico_usd + excluded.cost_pico_usd) / 1000000, \
         cost_pico_usd = (cost_pico_usd + excluded.cost_pico_usd) % 1000000",
            $tail
        )
    };
}

macro_rules! usage_d_add {
    () => {
        rollup_add!(
            "team_id, day, developer_id, project, branch, model, agent",
            ", last_quarter = max(last_quarter, excluded.last_quarter)"
        )
    };
}

macro_rules! usage_m_add {
    () => {
        rollup_add!("team_id, quarter, model", "")
    };
}

macro_rules! usage_md_add {
    () => {
        rollup_add!("team_id, day, model", "")
    };
}

macro_rules! usage_dp_add {
    () => {
        rollup_add!(
            "team_id, day, developer_id, project",
            ", last_quarter = max(last_quarter, excluded.last_quarter)"
        )
    };
}

mod budgets;
mod cursor;
mod developer;
mod drill;
mod invites;
mod lifecycle;
mod merged;
mod otlp;
mod reports;
mod usage;

pub use budgets::{project_name, BudgetLine, BudgetScope, DeveloperSpend};
pub use cursor::{CursorIntegrationRow, CursorUserRow, PullTotals};
pub use drill::{Filter, Group};
pub use otlp::SourceRow;

use tally_core::event::PrivacyMode;
use tally_core::time::HOUR_MS;
use worker::{D1Database, D1PreparedStatement, Env, Result};

use super::rows::*;
use super::{all, database, first, i, opt_text, prepare, t, Arg, Principal, Shard};
use crate::vocab::{AuditAction, Role};

/// How stale an agent's "last seen" may get before an upload rewrites it.
pub const AGENT_TOUCH_MS: i64 = HOUR_MS;

pub struct TeamDb {
    db: D1Database,
    team_id: String,
    shard: Shard,
}

impl TeamDb {
    /// The team's own shard, as its principal carries it.
    pub fn new(env: &Env, principal: &impl Principal) -> Result<TeamDb> {
        Ok(TeamDb {
            db: database(env, principal.shard())?,
            team_id: principal.team_id().to_string(),
            shard: principal.shard().clone(),
        })
    }

    pub fn team_id(&self) -> &str {
        &self.team_id
    }

    pub fn shard(&self) -> &Shard {
        &self.shard
    }

    /// A new credential of this team (token, link or session id): `secret`
    /// tagged with the team's shard, so that presenting it later routes to
    /// this shard without a directory. Store the keyed hash of the result.
    pub fn credential(&self, secret: &str) -> String {
        super::shard::tag(secret, &self.shard)
    }

    pub(super) fn stmt(&self, sql: &'static str, args: Vec<Arg>) -> Result<D1PreparedStatement> {
        let mut all_args = Vec::with_capacity(args.len() + 1);
        all_args.push(t(self.team_id.clone()));
        all_args.extend(args);
        prepare(&self.db, sql, &all_args)
    }

    pub async fn settings(&self) -> Result<TeamSettings> {
        first(self.stmt(
            "SELECT id, name, salt, privacy_mode, retention_days, rate_capacity, rate_per_minute, ship_interval_s, timezone, deleted_at, delete_after FROM teams WHERE id = ?1",
            vec![],
        )?)
            .await?
            .ok_or_else(|| worker::Error::RustError("team not found".into()))
    }

    pub async fn add_agent(
        &self,
        agent_id: &str,
        developer_id: &str,
        token_hash: &str,
        hostname: Option<&str>,
        now: i64,
    ) -> Result<()> {
        self.stmt(
            "INSERT INTO agent_tokens (team_id, token_hash, id, developer_id, hostname, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            vec![t(token_hash), t(agent_id), t(developer_id), opt_text(hostname), i(now)],
        )?
        .run()
        .await?;
        Ok(())
    }

    /// Last contact, plus what the agent reported about itself (kept when it
    /// reported nothing). Written only when it changes what an admin sees:
    /// a new quarantine count or version, or a last contact older than
    /// `AGENT_TOUCH_MS`. Every upload rewriting the row was one D1 row per
    /// request on top of the batch's own (0.023 per event at the 300 s
    /// interval); "last seen" is therefore to the hour.
    pub async fn touch_agent(
        &self,
        agent_id: &str,
        now: i64,
        quarantined: Option<i64>,
        version: Option<&str>,
    ) -> Result<()> {
        self.stmt(
            "UPDATE agent_tokens SET last_seen_at = ?3, quarantined = COALESCE(?4, quarantined), agent_version = COALESCE(?5, agent_version) \
             WHERE team_id = ?1 AND id = ?2 \
             AND (last_seen_at IS NULL OR last_seen_at <= ?3 - ?6 OR quarantined IS NOT COALESCE(?4, quarantined) OR agent_version IS NOT COALESCE(?5, agent_version))",
            vec![t(agent_id), i(now), quarantined.map(i).unwrap_or(Arg::Null), opt_text(version), i(AGENT_TOUCH_MS)],
        )?
        .run()
        .await?;
        Ok(())
    }

    pub async fn categorize_limits(&self) -> Result<CategorizeLimits> {
        first(self.stmt(
            "SELECT categorize_budget_micro_usd AS budget_micro_usd, categorize_per_minute AS per_minute FROM teams WHERE id = ?1",
            vec![],
        )?)
        .await?
        .ok_or_else(|| worker::Error::RustError("team not found".into()))
    }

    pub async fn set_categorize_limits(
        &self,
        budget_micro_usd: i64,
        per_minute: i64,
    ) -> Result<()> {
        self.stmt(
            "UPDATE teams SET categorize_budget_micro_usd = ?2, categorize_per_minute = ?3 WHERE id = ?1",
            vec![i(budget_micro_usd), i(per_minute)],
        )?
        .run()
        .await?;
        Ok(())
    }

    /// Categorize-cloud spend of one UTC day.
    pub async fn categorize_spent(&self, day: i64) -> Result<CategorizeSpent> {
        Ok(first(self.stmt(
            "SELECT cost_micro_usd, cost_pico_usd FROM categorization_usage WHERE team_id = ?1 AND day = ?2",
            vec![i(day)],
        )?)
        .await?
        .unwrap_or_default())
    }

    /// Prompts left uncategorized by the spend cap over UTC days `[from, to)`.
    pub async fn categorize_capped(&self, from_day: i64, to_day: i64) -> Result<i64> {
        #[derive(serde::Deserialize)]
        struct N {
            n: i64,
        }
        Ok(first::<N>(self.stmt(
            "SELECT COALESCE(SUM(skipped_cap), 0) AS n FROM categorization_usage WHERE team_id = ?1 AND day >= ?2 AND day < ?3",
            vec![i(from_day), i(to_day)],
        )?)
        .await?
        .map(|r| r.n)
        .unwrap_or(0))
    }

    pub async fn agents(&self) -> Result<Vec<AgentRow>> {
        all(self.stmt(
            "SELECT a.id, a.developer_id, d.name AS developer_name, a.hostname, a.created_at, a.last_seen_at, a.revoked_at, a.priced_differently, a.quarantined, a.agent_version, a.kind FROM agent_tokens a JOIN developers d ON d.team_id = a.team_id AND d.id = a.developer_id WHERE a.team_id = ?1 ORDER BY a.created_at",
            vec![],
        )?)
        .await
    }

    /// Revoking an agent also ends the self-view sessions and unused links
    /// it minted: its token was the developer's proof of identity.
    pub async fn revoke_agent(&self, agent_id: &str, now: i64) -> Result<bool> {
        let r = self
            .run_batch(vec![
                self.stmt(
                    "UPDATE agent_tokens SET revoked_at = ?3 WHERE team_id = ?1 AND id = ?2 AND revoked_at IS NULL",
                    vec![t(agent_id), i(now)],
                )?,
                self.stmt(
                    "DELETE FROM developer_sessions WHERE team_id = ?1 AND agent_id = ?2",
                    vec![t(agent_id)],
                )?,
                self.stmt(
                    "DELETE FROM developer_links WHERE team_id = ?1 AND agent_id = ?2",
                    vec![t(agent_id)],
                )?,
            ])
            .await?;
        Ok(r.first().map(changed).unwrap_or(0) > 0)
    }

    pub async fn add_developer(&self, developer_id: &str, name: &str, now: i64) -> Result<()> {
        self.stmt(
            "INSERT INTO developers (team_id, id, name, created_at) VALUES (?1, ?2, ?3, ?4)",
            vec![t(developer_id), t(name), i(now)],
        )?
        .run()
        .await?;
        Ok(())
    }

    pub async fn add_install_token(
        &self,
        token_hash: &str,
        developer_id: &str,
        created_by: Option<&str>,
        now: i64,
        expires_at: i64,
    ) -> Result<()> {
        self.stmt(
            "INSERT INTO install_tokens (team_id, token_hash, developer_id, created_by, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            vec![t(token_hash), t(developer_id), opt_text(created_by), i(now), i(expires_at)],
        )?
        .run()
        .await?;
        Ok(())
    }

    pub async fn add_member(
        &self,
        member_id: &str,
        email: &str,
        role: Role,
        now: i64,
    ) -> Result<()> {
        self.stmt(
            "INSERT INTO members (team_id, id, email, role, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            vec![t(member_id), t(email), t(role.as_str()), i(now)],
        )?
        .run()
        .await?;
        Ok(())
    }

    pub async fn add_signin_link(
        &self,
        token_hash: &str,
        member_id: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<()> {
        self.stmt(
            "INSERT INTO signin_links (team_id, token_hash, member_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            vec![t(token_hash), t(member_id), i(now), i(expires_at)],
        )?
        .run()
        .await?;
        Ok(())
    }

    pub async fn add_web_session(
        &self,
        id_hash: &str,
        member_id: &str,
        csrf: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<()> {
        self.stmt(
            "INSERT INTO web_sessions (team_id, id_hash, member_id, csrf_token, created_at, last_seen_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6)",
            vec![t(id_hash), t(member_id), t(csrf), i(now), i(expires_at)],
        )?
        .run()
        .await?;
        Ok(())
    }

    pub async fn set_rate_limit(&self, capacity: i64, per_minute: i64) -> Result<()> {
        self.stmt(
            "UPDATE teams SET rate_capacity = ?2, rate_per_minute = ?3 WHERE id = ?1",
            vec![i(capacity), i(per_minute)],
        )?
        .run()
        .await?;
        Ok(())
    }

    pub async fn audit(
        &self,
        actor: &str,
        action: AuditAction,
        ip: Option<&str>,
        details: &serde_json::Value,
        now: i64,
    ) -> Result<()> {
        self.stmt(
            "INSERT INTO audit_log (team_id, at, actor, action, ip, details) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            vec![i(now), t(actor), t(action.as_str()), opt_text(ip), t(details.to_string())],
        )?
        .run()
        .await?;
        Ok(())
    }

    pub async fn audit_entries(&self, limit: i64) -> Result<Vec<AuditEntry>> {
        all(self.stmt(
            "SELECT id, at, actor, action, ip, details FROM audit_log WHERE team_id = ?1 ORDER BY id DESC LIMIT ?2",
            vec![i(limit)],
        )?)
        .await
    }

    pub async fn set_privacy_mode(&self, mode: PrivacyMode) -> Result<()> {
        self.stmt(
            "UPDATE teams SET privacy_mode = ?2 WHERE id = ?1",
            vec![t(mode.as_str())],
        )?
        .run()
        .await?;
        Ok(())
    }

    pub async fn members(&self) -> Result<Vec<MemberRow>> {
        all(self.stmt(
            "SELECT id, email, role, created_at, accepted_at, invite_failed_at FROM members WHERE team_id = ?1 ORDER BY created_at",
            vec![],
        )?)
        .await
    }

    pub async fn member_by_email(&self, email: &str) -> Result<Option<MemberRow>> {
        first(self.stmt(
            "SELECT id, email, role, created_at, accepted_at, invite_failed_at FROM members WHERE team_id = ?1 AND email = ?2",
            vec![t(email)],
        )?)
        .await
    }

    pub async fn set_member_role(&self, member_id: &str, role: Role) -> Result<bool> {
        let r = self
            .stmt(
                "UPDATE members SET role = ?3 WHERE team_id = ?1 AND id = ?2",
                vec![t(member_id), t(role.as_str())],
            )?
            .run()
            .await?;
        Ok(r.meta()?.and_then(|m| m.changes).unwrap_or(0) > 0)
    }

    pub async fn remove_member(&self, member_id: &str) -> Result<bool> {
        let r = self
            .db
            .batch(vec![
                self.stmt(
                    "DELETE FROM web_sessions WHERE team_id = ?1 AND member_id = ?2",
                    vec![t(member_id)],
                )?,
                self.stmt(
                    "DELETE FROM members WHERE team_id = ?1 AND id = ?2",
                    vec![t(member_id)],
                )?,
            ])
            .await?;
        Ok(r.get(1)
            .and_then(|r| r.meta().ok().flatten())
            .and_then(|m| m.changes)
            .unwrap_or(0)
            > 0)
    }

    pub async fn touch_web_session(&self, id_hash: &str, now: i64) -> Result<()> {
        self.stmt(
            "UPDATE web_sessions SET last_seen_at = ?3 WHERE team_id = ?1 AND id_hash = ?2",
            vec![t(id_hash), i(now)],
        )?
        .run()
        .await?;
        Ok(())
    }

    pub async fn delete_web_session(&self, id_hash: &str) -> Result<()> {
        self.stmt(
            "DELETE FROM web_sessions WHERE team_id = ?1 AND id_hash = ?2",
            vec![t(id_hash)],
        )?
        .run()
        .await?;
        Ok(())
    }

    pub async fn set_timezone(&self, tz: &str) -> Result<()> {
        self.stmt("UPDATE teams SET timezone = ?2 WHERE id = ?1", vec![t(tz)])?
            .run()
            .await?;
        Ok(())
    }

    pub async fn set_ship_interval(&self, seconds: i64) -> Result<()> {
        self.stmt(
            "UPDATE teams SET ship_interval_s = ?2 WHERE id = ?1",
            vec![i(seconds)],
        )?
        .run()
        .await?;
        Ok(())
    }

    pub async fn set_retention(&self, days: i64) -> Result<()> {
        self.stmt(
            "UPDATE teams SET retention_days = ?2 WHERE id = ?1",
            vec![i(days)],
        )?
        .run()
        .await?;
        Ok(())
    }

    /// Newest first. `actor_id` also matches: sign-ins before actors were
    /// e-mails recorded the member's id. `[from_ms, to_ms)` bounds the time.
    pub async fn audit_filtered(
        &self,
        action: &str,
        actor: &str,
        actor_id: &str,
        (from_ms, to_ms): (i64, i64),
        limit: i64,
    ) -> Result<Vec<AuditEntry>> {
        all(self.stmt(
            "SELECT id, at, actor, action, ip, details FROM audit_log WHERE team_id = ?1 AND (?2 = '' OR action = ?2) AND (?3 = '' OR actor = ?3 OR (?4 <> '' AND actor = ?4)) AND at >= ?5 AND at < ?6 ORDER BY id DESC LIMIT ?7",
            vec![t(action), t(actor), t(actor_id), i(from_ms), i(to_ms), i(limit)],
        )?)
        .await
    }

    pub(super) async fn run_batch(
        &self,
        stmts: Vec<D1PreparedStatement>,
    ) -> Result<Vec<worker::D1Result>> {
        if stmts.is_empty() {
            return Ok(Vec::new());
        }
        self.db.batch(stmts).await
    }
}

pub(super) fn changed(r: &worker::D1Result) -> u64 {
    r.meta().ok().flatten().and_then(|m| m.changes).unwrap_or(0) as u64
}

pub(super) fn changes(results: Vec<worker::D1Result>) -> Result<u64> {
    Ok(results.iter().map(changed).sum())
}
