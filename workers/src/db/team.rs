//! Tenant statements: every one binds the principal's team as `?1`.

use tally_core::event::PrivacyMode;
use tally_core::rollup::Rollup;
use tally_core::time::DAY_MS;
use worker::{D1Database, D1PreparedStatement, Env, Result};

use super::rows::*;
use super::{all, database, first, i, opt_text, prepare, t, Arg, Principal};
use crate::vocab::{AuditAction, Role};

pub struct TeamDb {
    db: D1Database,
    team_id: String,
}

impl TeamDb {
    pub fn new(env: &Env, principal: &impl Principal) -> Result<TeamDb> {
        Ok(TeamDb {
            db: database(env)?,
            team_id: principal.team_id().to_string(),
        })
    }

    pub fn team_id(&self) -> &str {
        &self.team_id
    }

    fn stmt(&self, sql: &'static str, args: Vec<Arg>) -> Result<D1PreparedStatement> {
        let mut all_args = Vec::with_capacity(args.len() + 1);
        all_args.push(t(self.team_id.clone()));
        all_args.extend(args);
        prepare(&self.db, sql, &all_args)
    }

    pub async fn settings(&self) -> Result<TeamSettings> {
        first(self.stmt(
            "SELECT id, name, salt, privacy_mode, retention_days, rate_capacity, rate_per_minute, timezone FROM teams WHERE id = ?1",
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

    pub async fn touch_agent(&self, agent_id: &str, now: i64) -> Result<()> {
        self.stmt(
            "UPDATE agent_tokens SET last_seen_at = ?3 WHERE team_id = ?1 AND id = ?2",
            vec![t(agent_id), i(now)],
        )?
        .run()
        .await?;
        Ok(())
    }

    pub async fn agents(&self) -> Result<Vec<AgentRow>> {
        all(self.stmt(
            "SELECT a.id, a.developer_id, d.name AS developer_name, a.hostname, a.created_at, a.last_seen_at, a.revoked_at FROM agent_tokens a JOIN developers d ON d.team_id = a.team_id AND d.id = a.developer_id WHERE a.team_id = ?1 ORDER BY a.created_at",
            vec![],
        )?)
        .await
    }

    pub async fn revoke_agent(&self, agent_id: &str, now: i64) -> Result<bool> {
        let r = self
            .stmt(
                "UPDATE agent_tokens SET revoked_at = ?3 WHERE team_id = ?1 AND id = ?2 AND revoked_at IS NULL",
                vec![t(agent_id), i(now)],
            )?
            .run()
            .await?;
        Ok(r.meta()?.and_then(|m| m.changes).unwrap_or(0) > 0)
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

    /// Marker and aggregates in one D1 transaction: either the whole part is
    /// counted once, or (marker already present) nothing changes.
    pub async fn apply_rollup(
        &self,
        marker: &str,
        developer_id: &str,
        rollup: &Rollup,
        categorized: Option<&CategorizeStats>,
        now: i64,
    ) -> Result<Applied> {
        let mut stmts = Vec::with_capacity(rollup.rows() + 1);
        stmts.push(self.stmt(
            "INSERT INTO batches (team_id, batch_id, developer_id, events, received_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            vec![t(marker), t(developer_id), i(rollup.events), i(now)],
        )?);
        for (k, v) in &rollup.hourly {
            stmts.push(self.stmt(
                "INSERT INTO usage_hourly (team_id, hour, developer_id, project, model, agent, requests, unpriced_requests, input_tokens, output_tokens, cache_write_5m_tokens, cache_write_1h_tokens, cache_read_tokens, cost_micro_usd) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14) \
                 ON CONFLICT (team_id, hour, developer_id, project, model, agent) DO UPDATE SET \
                 requests = requests + excluded.requests, unpriced_requests = unpriced_requests + excluded.unpriced_requests, \
                 input_tokens = input_tokens + excluded.input_tokens, output_tokens = output_tokens + excluded.output_tokens, \
                 cache_write_5m_tokens = cache_write_5m_tokens + excluded.cache_write_5m_tokens, \
                 cache_write_1h_tokens = cache_write_1h_tokens + excluded.cache_write_1h_tokens, \
                 cache_read_tokens = cache_read_tokens + excluded.cache_read_tokens, cost_micro_usd = cost_micro_usd + excluded.cost_micro_usd",
                vec![
                    i(k.hour),
                    t(developer_id),
                    t(k.project.clone()),
                    t(k.model.clone()),
                    t(k.agent.clone()),
                    i(v.requests),
                    i(v.unpriced_requests),
                    i(v.tokens.input),
                    i(v.tokens.output),
                    i(v.tokens.cache_write_5m),
                    i(v.tokens.cache_write_1h),
                    i(v.tokens.cache_read),
                    i(v.cost_micro_usd),
                ],
            )?);
        }
        for s in &rollup.sessions {
            stmts.push(self.stmt(
                "INSERT INTO sessions (team_id, session, developer_id, project, agent, start_ms, end_ms, requests, cost_micro_usd) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
                 ON CONFLICT (team_id, session) DO UPDATE SET start_ms = min(start_ms, excluded.start_ms), \
                 end_ms = max(end_ms, excluded.end_ms), requests = requests + excluded.requests, \
                 cost_micro_usd = cost_micro_usd + excluded.cost_micro_usd",
                vec![
                    t(s.session.clone()),
                    t(developer_id),
                    t(s.project.clone()),
                    t(s.agent.clone()),
                    i(s.start_ms),
                    i(s.end_ms),
                    i(s.requests),
                    i(s.cost_micro_usd),
                ],
            )?);
        }
        for (k, n) in &rollup.categories {
            stmts.push(self.stmt(
                "INSERT INTO categories (team_id, day, project, category, task_hint, project_hint, requests) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
                 ON CONFLICT (team_id, day, project, category, task_hint, project_hint) DO UPDATE SET requests = requests + excluded.requests",
                vec![i(k.day), t(k.project.clone()), t(k.category.as_str()), t(k.task_hint.clone()), t(k.project_hint.clone()), i(*n)],
            )?);
        }
        if let Some(c) = categorized {
            stmts.push(self.stmt(
                "INSERT INTO categorization_usage (team_id, day, calls, failures, skipped, input_tokens, output_tokens, cost_micro_usd) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
                 ON CONFLICT (team_id, day) DO UPDATE SET calls = calls + excluded.calls, failures = failures + excluded.failures, \
                 skipped = skipped + excluded.skipped, input_tokens = input_tokens + excluded.input_tokens, \
                 output_tokens = output_tokens + excluded.output_tokens, cost_micro_usd = cost_micro_usd + excluded.cost_micro_usd",
                vec![i(now.div_euclid(DAY_MS)), i(c.calls), i(c.failures), i(c.skipped), i(c.input_tokens), i(c.output_tokens), i(c.cost_micro_usd)],
            )?);
        }
        match self.db.batch(stmts).await {
            Ok(results) => {
                let mut rows = 0u64;
                for r in &results {
                    rows += r.meta()?.and_then(|m| m.rows_written).unwrap_or(0) as u64;
                }
                Ok(Applied::Written { rows_written: rows })
            }
            Err(e) if e.to_string().contains("UNIQUE constraint failed: batches") => {
                Ok(Applied::Duplicate)
            }
            Err(e) => Err(e),
        }
    }

    pub async fn totals_by_model(&self, from_hour: i64, to_hour: i64) -> Result<Vec<ModelTotals>> {
        all(self.stmt(
            "SELECT model, SUM(requests) AS requests, SUM(unpriced_requests) AS unpriced_requests, SUM(input_tokens) AS input_tokens, SUM(output_tokens) AS output_tokens, SUM(cache_write_5m_tokens) AS cache_write_5m_tokens, SUM(cache_write_1h_tokens) AS cache_write_1h_tokens, SUM(cache_read_tokens) AS cache_read_tokens, SUM(cost_micro_usd) AS cost_micro_usd FROM usage_hourly WHERE team_id = ?1 AND hour >= ?2 AND hour < ?3 GROUP BY model ORDER BY cost_micro_usd DESC, model",
            vec![i(from_hour), i(to_hour)],
        )?)
        .await
    }

    pub async fn hourly_cost_by_model(
        &self,
        from_hour: i64,
        to_hour: i64,
    ) -> Result<Vec<HourModelCost>> {
        all(self.stmt(
            "SELECT hour, model, SUM(cost_micro_usd) AS cost_micro_usd FROM usage_hourly WHERE team_id = ?1 AND hour >= ?2 AND hour < ?3 GROUP BY hour, model ORDER BY hour, model",
            vec![i(from_hour), i(to_hour)],
        )?)
        .await
    }

    pub async fn by_developer(&self, from_hour: i64, to_hour: i64) -> Result<Vec<GroupTotals>> {
        all(self.stmt(
            "SELECT u.developer_id AS key, COALESCE(d.name, u.developer_id) AS label, SUM(u.requests) AS requests, SUM(u.input_tokens) AS input_tokens, SUM(u.output_tokens) AS output_tokens, SUM(u.cache_write_5m_tokens + u.cache_write_1h_tokens) AS cache_write_tokens, SUM(u.cache_read_tokens) AS cache_read_tokens, SUM(u.cost_micro_usd) AS cost_micro_usd, MAX(u.hour) AS last_hour FROM usage_hourly u LEFT JOIN developers d ON d.team_id = u.team_id AND d.id = u.developer_id WHERE u.team_id = ?1 AND u.hour >= ?2 AND u.hour < ?3 GROUP BY u.developer_id ORDER BY cost_micro_usd DESC",
            vec![i(from_hour), i(to_hour)],
        )?)
        .await
    }

    pub async fn by_project(&self, from_hour: i64, to_hour: i64) -> Result<Vec<GroupTotals>> {
        all(self.stmt(
            "SELECT u.project AS key, COALESCE(l.label, '') AS label, SUM(u.requests) AS requests, SUM(u.input_tokens) AS input_tokens, SUM(u.output_tokens) AS output_tokens, SUM(u.cache_write_5m_tokens + u.cache_write_1h_tokens) AS cache_write_tokens, SUM(u.cache_read_tokens) AS cache_read_tokens, SUM(u.cost_micro_usd) AS cost_micro_usd, MAX(u.hour) AS last_hour FROM usage_hourly u LEFT JOIN project_labels l ON l.team_id = u.team_id AND l.project = u.project WHERE u.team_id = ?1 AND u.hour >= ?2 AND u.hour < ?3 GROUP BY u.project ORDER BY cost_micro_usd DESC",
            vec![i(from_hour), i(to_hour)],
        )?)
        .await
    }

    pub async fn set_project_label(&self, project: &str, label: &str) -> Result<()> {
        self.stmt(
            "INSERT INTO project_labels (team_id, project, label) VALUES (?1, ?2, ?3) ON CONFLICT (team_id, project) DO UPDATE SET label = excluded.label",
            vec![t(project), t(label)],
        )?
        .run()
        .await?;
        Ok(())
    }

    pub async fn sessions_in(
        &self,
        from_ms: i64,
        to_ms: i64,
        order_by_duration: bool,
    ) -> Result<Vec<SessionRowOut>> {
        let sql = if order_by_duration {
            "SELECT s.session, s.developer_id, COALESCE(d.name, s.developer_id) AS developer, s.project, s.agent, s.start_ms, s.end_ms, s.requests, s.cost_micro_usd FROM sessions s LEFT JOIN developers d ON d.team_id = s.team_id AND d.id = s.developer_id WHERE s.team_id = ?1 AND s.end_ms >= ?2 AND s.start_ms < ?3 ORDER BY (s.end_ms - s.start_ms) DESC LIMIT 200"
        } else {
            "SELECT s.session, s.developer_id, COALESCE(d.name, s.developer_id) AS developer, s.project, s.agent, s.start_ms, s.end_ms, s.requests, s.cost_micro_usd FROM sessions s LEFT JOIN developers d ON d.team_id = s.team_id AND d.id = s.developer_id WHERE s.team_id = ?1 AND s.end_ms >= ?2 AND s.start_ms < ?3 ORDER BY s.cost_micro_usd DESC LIMIT 200"
        };
        all(self.stmt(sql, vec![i(from_ms), i(to_ms)])?).await
    }

    pub async fn category_hints(&self, from_day: i64, to_day: i64) -> Result<Vec<CategoryRow>> {
        all(self.stmt(
            "SELECT category, task_hint, project_hint, SUM(requests) AS requests FROM categories WHERE team_id = ?1 AND day >= ?2 AND day < ?3 GROUP BY category, task_hint, project_hint ORDER BY requests DESC LIMIT 500",
            vec![i(from_day), i(to_day)],
        )?)
        .await
    }

    pub async fn members(&self) -> Result<Vec<MemberRow>> {
        all(self.stmt(
            "SELECT id, email, role, created_at FROM members WHERE team_id = ?1 ORDER BY created_at",
            vec![],
        )?)
        .await
    }

    pub async fn member_by_email(&self, email: &str) -> Result<Option<MemberRow>> {
        first(self.stmt(
            "SELECT id, email, role, created_at FROM members WHERE team_id = ?1 AND email = ?2",
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

    pub async fn set_retention(&self, days: i64) -> Result<()> {
        self.stmt(
            "UPDATE teams SET retention_days = ?2 WHERE id = ?1",
            vec![i(days)],
        )?
        .run()
        .await?;
        Ok(())
    }

    pub async fn audit_filtered(
        &self,
        action: &str,
        actor: &str,
        limit: i64,
    ) -> Result<Vec<AuditEntry>> {
        all(self.stmt(
            "SELECT id, at, actor, action, ip, details FROM audit_log WHERE team_id = ?1 AND (?2 = '' OR action = ?2) AND (?3 = '' OR actor = ?3) ORDER BY id DESC LIMIT ?4",
            vec![t(action), t(actor), i(limit)],
        )?)
        .await
    }

    pub async fn prune_before(&self, before_hour: i64, before_ms: i64, now: i64) -> Result<()> {
        self.db
            .batch(vec![
                self.stmt(
                    "DELETE FROM categories WHERE team_id = ?1 AND day < ?2",
                    vec![i(before_ms.div_euclid(DAY_MS))],
                )?,
                self.stmt(
                    "DELETE FROM web_sessions WHERE team_id = ?1 AND expires_at < ?2",
                    vec![i(now)],
                )?,
                self.stmt(
                    "DELETE FROM signin_links WHERE team_id = ?1 AND expires_at < ?2",
                    vec![i(now)],
                )?,
                self.stmt(
                    "DELETE FROM audit_log WHERE team_id = ?1 AND at < ?2",
                    vec![i(now - 730 * DAY_MS)],
                )?,
                self.stmt(
                    "DELETE FROM usage_hourly WHERE team_id = ?1 AND hour < ?2",
                    vec![i(before_hour)],
                )?,
                self.stmt(
                    "DELETE FROM sessions WHERE team_id = ?1 AND end_ms < ?2",
                    vec![i(before_ms)],
                )?,
                self.stmt(
                    "DELETE FROM batches WHERE team_id = ?1 AND received_at < ?2",
                    vec![i(before_ms)],
                )?,
            ])
            .await?;
        Ok(())
    }
}
