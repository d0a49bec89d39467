//! Tenant statements: every one binds the principal's team as `?1`.

use tally_core::event::PrivacyMode;
use tally_core::time::DAY_MS;
use worker::{D1Database, D1PreparedStatement, Env, Result};

use super::rows::*;
use super::{all, database, first, i, opt_text, prepare, t, Arg, PartToApply, Principal};
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
            "SELECT id, name, salt, privacy_mode, retention_days, rate_capacity, rate_per_minute, timezone, deleted_at, delete_after FROM teams WHERE id = ?1",
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
    /// reported nothing).
    pub async fn touch_agent(
        &self,
        agent_id: &str,
        now: i64,
        quarantined: Option<i64>,
        version: Option<&str>,
    ) -> Result<()> {
        self.stmt(
            "UPDATE agent_tokens SET last_seen_at = ?3, quarantined = COALESCE(?4, quarantined), agent_version = COALESCE(?5, agent_version) WHERE team_id = ?1 AND id = ?2",
            vec![t(agent_id), i(now), quarantined.map(i).unwrap_or(Arg::Null), opt_text(version)],
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
            "SELECT a.id, a.developer_id, d.name AS developer_name, a.hostname, a.created_at, a.last_seen_at, a.revoked_at, a.priced_differently, a.quarantined, a.agent_version FROM agent_tokens a JOIN developers d ON d.team_id = a.team_id AND d.id = a.developer_id WHERE a.team_id = ?1 ORDER BY a.created_at",
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

    /// One queue part of a batch, applied at most once: every statement is
    /// guarded by "no marker of this batch for this part, and none from a
    /// different split", and the part's marker is written last, all in one
    /// D1 transaction. A resend whose rollup or split differs (mode, prices
    /// or settings changed in between) therefore changes nothing.
    pub async fn apply_part(&self, p: &PartToApply<'_>, now: i64) -> Result<Applied> {
        let rollup = p.rollup;
        let guard = |args: Vec<Arg>| {
            let mut all = vec![t(p.batch_id), i(p.part), t(p.split)];
            all.extend(args);
            all
        };
        let mut stmts = Vec::with_capacity(rollup.rows() + 3);
        for (k, v) in &rollup.hourly {
            let (micro, pico) = v.cost.parts();
            stmts.push(self.stmt(
                "INSERT INTO usage_hourly (team_id, hour, developer_id, project, model, agent, requests, unpriced_requests, input_tokens, output_tokens, cache_write_5m_tokens, cache_write_1h_tokens, cache_read_tokens, cost_micro_usd, cost_pico_usd) \
                 SELECT ?1, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18 \
                 WHERE NOT EXISTS (SELECT 1 FROM batches WHERE team_id = ?1 AND batch_id = ?2 AND (part = ?3 OR split <> ?4)) \
                 ON CONFLICT (team_id, hour, developer_id, project, model, agent) DO UPDATE SET \
                 requests = requests + excluded.requests, unpriced_requests = unpriced_requests + excluded.unpriced_requests, \
                 input_tokens = input_tokens + excluded.input_tokens, output_tokens = output_tokens + excluded.output_tokens, \
                 cache_write_5m_tokens = cache_write_5m_tokens + excluded.cache_write_5m_tokens, \
                 cache_write_1h_tokens = cache_write_1h_tokens + excluded.cache_write_1h_tokens, \
                 cache_read_tokens = cache_read_tokens + excluded.cache_read_tokens, \
                 cost_micro_usd = cost_micro_usd + excluded.cost_micro_usd + (cost_pico_usd + excluded.cost_pico_usd) / 1000000, \
                 cost_pico_usd = (cost_pico_usd + excluded.cost_pico_usd) % 1000000",
                guard(vec![
                    i(k.hour),
                    t(p.developer_id),
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
                    i(micro),
                    i(pico),
                ]),
            )?);
        }
        for r in &rollup.sessions {
            let (micro, pico) = r.cost.parts();
            stmts.push(self.stmt(
                "INSERT INTO sessions (team_id, session, developer_id, project, agent, start_ms, end_ms, requests, cost_micro_usd, cost_pico_usd, modes) \
                 SELECT ?1, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14 \
                 WHERE NOT EXISTS (SELECT 1 FROM batches WHERE team_id = ?1 AND batch_id = ?2 AND (part = ?3 OR split <> ?4)) \
                 ON CONFLICT (team_id, session) DO UPDATE SET start_ms = min(start_ms, excluded.start_ms), \
                 end_ms = max(end_ms, excluded.end_ms), requests = requests + excluded.requests, modes = modes | excluded.modes, \
                 cost_micro_usd = cost_micro_usd + excluded.cost_micro_usd + (cost_pico_usd + excluded.cost_pico_usd) / 1000000, \
                 cost_pico_usd = (cost_pico_usd + excluded.cost_pico_usd) % 1000000",
                guard(vec![
                    t(r.session.clone()),
                    t(p.developer_id),
                    t(r.project.clone()),
                    t(r.agent.clone()),
                    i(r.start_ms),
                    i(r.end_ms),
                    i(r.requests),
                    i(micro),
                    i(pico),
                    i(r.modes),
                ]),
            )?);
        }
        for (k, n) in &rollup.categories {
            stmts.push(self.stmt(
                "INSERT INTO categories (team_id, day, developer_id, project, category, task_hint, project_hint, requests) \
                 SELECT ?1, ?5, ?6, ?7, ?8, ?9, ?10, ?11 \
                 WHERE NOT EXISTS (SELECT 1 FROM batches WHERE team_id = ?1 AND batch_id = ?2 AND (part = ?3 OR split <> ?4)) \
                 ON CONFLICT (team_id, day, developer_id, project, category, task_hint, project_hint) DO UPDATE SET requests = requests + excluded.requests",
                guard(vec![i(k.day), t(p.developer_id), t(k.project.clone()), t(k.category.as_str()), t(k.task_hint.clone()), t(k.project_hint.clone()), i(*n)]),
            )?);
        }
        if let Some(c) = p.categorized {
            let (micro, pico) = c.cost.parts();
            stmts.push(self.stmt(
                "INSERT INTO categorization_usage (team_id, day, calls, failures, skipped, input_tokens, output_tokens, cost_micro_usd, cost_pico_usd, skipped_cap) \
                 SELECT ?1, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13 \
                 WHERE NOT EXISTS (SELECT 1 FROM batches WHERE team_id = ?1 AND batch_id = ?2 AND (part = ?3 OR split <> ?4)) \
                 ON CONFLICT (team_id, day) DO UPDATE SET calls = calls + excluded.calls, failures = failures + excluded.failures, \
                 skipped = skipped + excluded.skipped, skipped_cap = skipped_cap + excluded.skipped_cap, input_tokens = input_tokens + excluded.input_tokens, \
                 output_tokens = output_tokens + excluded.output_tokens, \
                 cost_micro_usd = cost_micro_usd + excluded.cost_micro_usd + (cost_pico_usd + excluded.cost_pico_usd) / 1000000, \
                 cost_pico_usd = (cost_pico_usd + excluded.cost_pico_usd) % 1000000",
                guard(vec![i(now.div_euclid(DAY_MS)), i(c.calls), i(c.failures), i(c.skipped), i(c.input_tokens), i(c.output_tokens), i(micro), i(pico), i(c.skipped_cap)]),
            )?);
        }
        if p.disagreements > 0 && !p.agent_id.is_empty() {
            stmts.push(self.stmt(
                "UPDATE agent_tokens SET priced_differently = priced_differently + ?6 \
                 WHERE team_id = ?1 AND id = ?5 \
                 AND NOT EXISTS (SELECT 1 FROM batches WHERE team_id = ?1 AND batch_id = ?2 AND (part = ?3 OR split <> ?4))",
                guard(vec![t(p.agent_id), i(p.disagreements)]),
            )?);
        }
        // The marker last: the guards above saw the state before it.
        stmts.push(self.stmt(
            "INSERT INTO batches (team_id, batch_id, part, split, developer_id, events, received_at) \
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7 \
             WHERE NOT EXISTS (SELECT 1 FROM batches WHERE team_id = ?1 AND batch_id = ?2 AND (part = ?3 OR split <> ?4))",
            guard(vec![t(p.developer_id), i(rollup.events), i(now)]),
        )?);
        let results = self.db.batch(stmts).await?;
        let changed =
            |r: &worker::D1Result| r.meta().ok().flatten().and_then(|m| m.changes).unwrap_or(0);
        if results.last().map(changed).unwrap_or(0) == 0 {
            return Ok(Applied::Duplicate);
        }
        let mut rows = 0u64;
        for r in &results {
            rows += r.meta()?.and_then(|m| m.rows_written).unwrap_or(0) as u64;
        }
        Ok(Applied::Written { rows_written: rows })
    }

    pub async fn totals_by_model(&self, from_hour: i64, to_hour: i64) -> Result<Vec<ModelTotals>> {
        let mut rows: Vec<ModelTotals> = all(self.stmt(
            "SELECT model, CAST(SUM(requests) AS TEXT) AS requests, CAST(SUM(unpriced_requests) AS TEXT) AS unpriced_requests, CAST(SUM(input_tokens) AS TEXT) AS input_tokens, CAST(SUM(output_tokens) AS TEXT) AS output_tokens, CAST(SUM(cache_write_5m_tokens) AS TEXT) AS cache_write_5m_tokens, CAST(SUM(cache_write_1h_tokens) AS TEXT) AS cache_write_1h_tokens, CAST(SUM(cache_read_tokens) AS TEXT) AS cache_read_tokens, CAST(SUM(cost_micro_usd) AS TEXT) AS cost_micro_usd, CAST(SUM(cost_pico_usd) AS TEXT) AS cost_pico_usd FROM usage_hourly WHERE team_id = ?1 AND hour >= ?2 AND hour < ?3 GROUP BY model ORDER BY SUM(cost_micro_usd) + SUM(cost_pico_usd) / 1000000 DESC, model",
            vec![i(from_hour), i(to_hour)],
        )?)
        .await?;
        // Normalise the remainder sums and fill the exact total.
        for r in &mut rows {
            let c = r.cost();
            r.set_cost(c);
        }
        Ok(rows)
    }

    pub async fn hourly_cost_by_model(
        &self,
        from_hour: i64,
        to_hour: i64,
    ) -> Result<Vec<HourModelCost>> {
        all(self.stmt(
            "SELECT hour, model, CAST(SUM(cost_micro_usd) AS TEXT) AS cost_micro_usd, CAST(SUM(cost_pico_usd) AS TEXT) AS cost_pico_usd FROM usage_hourly WHERE team_id = ?1 AND hour >= ?2 AND hour < ?3 GROUP BY hour, model ORDER BY hour, model",
            vec![i(from_hour), i(to_hour)],
        )?)
        .await
    }

    pub async fn by_developer(&self, from_hour: i64, to_hour: i64) -> Result<Vec<GroupTotals>> {
        all(self.stmt(
            "SELECT u.developer_id AS key, COALESCE(d.name, u.developer_id) AS label, CAST(SUM(u.requests) AS TEXT) AS requests, CAST(SUM(u.input_tokens) AS TEXT) AS input_tokens, CAST(SUM(u.output_tokens) AS TEXT) AS output_tokens, CAST(SUM(u.cache_write_5m_tokens + u.cache_write_1h_tokens) AS TEXT) AS cache_write_tokens, CAST(SUM(u.cache_read_tokens) AS TEXT) AS cache_read_tokens, CAST(SUM(u.cost_micro_usd) AS TEXT) AS cost_micro_usd, CAST(SUM(u.cost_pico_usd) AS TEXT) AS cost_pico_usd, MAX(u.hour) AS last_hour FROM usage_hourly u LEFT JOIN developers d ON d.team_id = u.team_id AND d.id = u.developer_id WHERE u.team_id = ?1 AND u.hour >= ?2 AND u.hour < ?3 GROUP BY u.developer_id ORDER BY SUM(u.cost_micro_usd) + SUM(u.cost_pico_usd) / 1000000 DESC",
            vec![i(from_hour), i(to_hour)],
        )?)
        .await
    }

    pub async fn by_project(&self, from_hour: i64, to_hour: i64) -> Result<Vec<GroupTotals>> {
        all(self.stmt(
            "SELECT u.project AS key, COALESCE(l.label, '') AS label, CAST(SUM(u.requests) AS TEXT) AS requests, CAST(SUM(u.input_tokens) AS TEXT) AS input_tokens, CAST(SUM(u.output_tokens) AS TEXT) AS output_tokens, CAST(SUM(u.cache_write_5m_tokens + u.cache_write_1h_tokens) AS TEXT) AS cache_write_tokens, CAST(SUM(u.cache_read_tokens) AS TEXT) AS cache_read_tokens, CAST(SUM(u.cost_micro_usd) AS TEXT) AS cost_micro_usd, CAST(SUM(u.cost_pico_usd) AS TEXT) AS cost_pico_usd, MAX(u.hour) AS last_hour FROM usage_hourly u LEFT JOIN project_labels l ON l.team_id = u.team_id AND l.project = u.project WHERE u.team_id = ?1 AND u.hour >= ?2 AND u.hour < ?3 GROUP BY u.project ORDER BY SUM(u.cost_micro_usd) + SUM(u.cost_pico_usd) / 1000000 DESC",
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
            "SELECT s.session, s.developer_id, COALESCE(d.name, s.developer_id) AS developer, s.project, s.agent, s.start_ms, s.end_ms, s.requests, s.cost_micro_usd, s.cost_pico_usd, s.modes FROM sessions s LEFT JOIN developers d ON d.team_id = s.team_id AND d.id = s.developer_id WHERE s.team_id = ?1 AND s.end_ms >= ?2 AND s.start_ms < ?3 ORDER BY (s.end_ms - s.start_ms) DESC LIMIT 200"
        } else {
            "SELECT s.session, s.developer_id, COALESCE(d.name, s.developer_id) AS developer, s.project, s.agent, s.start_ms, s.end_ms, s.requests, s.cost_micro_usd, s.cost_pico_usd, s.modes FROM sessions s LEFT JOIN developers d ON d.team_id = s.team_id AND d.id = s.developer_id WHERE s.team_id = ?1 AND s.end_ms >= ?2 AND s.start_ms < ?3 ORDER BY s.cost_micro_usd DESC, s.cost_pico_usd DESC LIMIT 200"
        };
        all(self.stmt(sql, vec![i(from_ms), i(to_ms)])?).await
    }

    pub async fn category_hints(&self, from_day: i64, to_day: i64) -> Result<Vec<CategoryRow>> {
        all(self.stmt(
            "SELECT category, task_hint, project_hint, CAST(SUM(requests) AS TEXT) AS requests FROM categories WHERE team_id = ?1 AND day >= ?2 AND day < ?3 GROUP BY category, task_hint, project_hint ORDER BY SUM(requests) DESC LIMIT 500",
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

    // ---- lifecycle: content index, retention, deletion -------------------

    pub async fn add_content_objects(&self, objects: &[ContentObject], now: i64) -> Result<()> {
        let mut stmts = Vec::with_capacity(objects.len());
        for o in objects {
            stmts.push(self.stmt(
                "INSERT INTO content_objects (team_id, key, session, developer_id, day, batch_id, events, bytes, first_ts, last_ts, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) ON CONFLICT (team_id, key) DO NOTHING",
                vec![t(o.key.clone()), t(o.session.clone()), t(o.developer_id.clone()), i(o.day), t(o.batch_id.clone()), i(o.events), i(o.bytes), i(o.first_ts), i(o.last_ts), i(now)],
            )?);
        }
        if !stmts.is_empty() {
            self.db.batch(stmts).await?;
        }
        Ok(())
    }

    /// A session's objects in the order their requests happened.
    pub async fn session_content(&self, session: &str) -> Result<Vec<ContentObject>> {
        all(self.stmt(
            "SELECT key, session, developer_id, day, batch_id, events, bytes, first_ts, last_ts FROM content_objects WHERE team_id = ?1 AND session = ?2 ORDER BY first_ts, key LIMIT 1000",
            vec![t(session)],
        )?)
        .await
    }

    /// Keys of one developer's content, a page at a time.
    pub async fn developer_content_keys(
        &self,
        developer_id: &str,
        limit: i64,
    ) -> Result<Vec<ContentObject>> {
        all(self.stmt(
            "SELECT key, session, developer_id, day, batch_id, events, bytes, first_ts, last_ts FROM content_objects WHERE team_id = ?1 AND developer_id = ?2 ORDER BY key LIMIT ?3",
            vec![t(developer_id), i(limit)],
        )?)
        .await
    }

    pub async fn forget_content_keys(&self, keys: &[String]) -> Result<u64> {
        let mut stmts = Vec::with_capacity(keys.len());
        for k in keys {
            stmts.push(self.stmt(
                "DELETE FROM content_objects WHERE team_id = ?1 AND key = ?2",
                vec![t(k.clone())],
            )?);
        }
        changes(self.run_batch(stmts).await?)
    }

    /// Index rows of content older than `cutoff_day`, and every category row
    /// of those days; aggregates are never pruned.
    pub async fn prune_rows_before(&self, cutoff_day: i64) -> Result<u64> {
        changes(
            self.run_batch(vec![
                self.stmt(
                    "DELETE FROM content_objects WHERE team_id = ?1 AND day < ?2",
                    vec![i(cutoff_day)],
                )?,
                self.stmt(
                    "DELETE FROM categories WHERE team_id = ?1 AND day < ?2",
                    vec![i(cutoff_day)],
                )?,
            ])
            .await?,
        )
    }

    pub async fn forget_all_content(&self) -> Result<u64> {
        changes(
            self.run_batch(vec![
                self.stmt("DELETE FROM content_objects WHERE team_id = ?1", vec![])?
            ])
            .await?,
        )
    }

    async fn run_batch(&self, stmts: Vec<D1PreparedStatement>) -> Result<Vec<worker::D1Result>> {
        if stmts.is_empty() {
            return Ok(Vec::new());
        }
        self.db.batch(stmts).await
    }

    pub async fn schedule_deletion(&self, by: &str, now: i64, after: i64) -> Result<()> {
        self.stmt(
            "UPDATE teams SET deleted_at = ?2, delete_after = ?3, deleted_by = ?4 WHERE id = ?1",
            vec![i(now), i(after), t(by)],
        )?
        .run()
        .await?;
        Ok(())
    }

    pub async fn cancel_deletion(&self) -> Result<bool> {
        let r = self
            .stmt(
                "UPDATE teams SET deleted_at = NULL, delete_after = NULL, deleted_by = NULL WHERE id = ?1 AND deleted_at IS NOT NULL",
                vec![],
            )?
            .run()
            .await?;
        Ok(r.meta()?.and_then(|m| m.changes).unwrap_or(0) > 0)
    }

    /// Starts a lifecycle job for this team; a second start of the same job
    /// on the same day changes nothing.
    pub async fn start_job(
        &self,
        kind: &str,
        subject: &str,
        run_day: i64,
        cutoff_day: i64,
        now: i64,
    ) -> Result<()> {
        self.stmt(
            "INSERT INTO lifecycle_jobs (team_id, kind, subject, run_day, cutoff_day, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6) \
             ON CONFLICT (team_id, kind, subject, run_day) DO NOTHING",
            vec![t(kind), t(subject), i(run_day), i(cutoff_day), i(now)],
        )?
        .run()
        .await?;
        Ok(())
    }

    /// Revokes the developer's agents, moves their numbers to a new
    /// anonymous developer (team totals stay right) and deletes their
    /// category rows; their content objects go through a lifecycle job.
    pub async fn erase_developer(
        &self,
        developer_id: &str,
        anon_id: &str,
        anon_name: &str,
        now: i64,
    ) -> Result<u64> {
        changes(
            self.run_batch(vec![
                self.stmt(
                    "INSERT INTO developers (team_id, id, name, created_at, removed_at, erased_at) VALUES (?1, ?2, ?3, ?4, ?4, ?4)",
                    vec![t(anon_id), t(anon_name), i(now)],
                )?,
                self.stmt(
                    "UPDATE agent_tokens SET revoked_at = ?3 WHERE team_id = ?1 AND developer_id = ?2 AND revoked_at IS NULL",
                    vec![t(developer_id), i(now)],
                )?,
                self.stmt(
                    "UPDATE usage_hourly SET developer_id = ?3 WHERE team_id = ?1 AND developer_id = ?2",
                    vec![t(developer_id), t(anon_id)],
                )?,
                self.stmt(
                    "UPDATE sessions SET developer_id = ?3 WHERE team_id = ?1 AND developer_id = ?2",
                    vec![t(developer_id), t(anon_id)],
                )?,
                self.stmt(
                    "UPDATE batches SET developer_id = ?3 WHERE team_id = ?1 AND developer_id = ?2",
                    vec![t(developer_id), t(anon_id)],
                )?,
                self.stmt(
                    "DELETE FROM categories WHERE team_id = ?1 AND developer_id = ?2",
                    vec![t(developer_id)],
                )?,
                self.stmt(
                    "UPDATE developers SET name = ?3, removed_at = COALESCE(removed_at, ?4), erased_at = ?4 WHERE team_id = ?1 AND id = ?2",
                    vec![t(developer_id), t(anon_name), i(now)],
                )?,
            ])
            .await?,
        )
    }

    pub async fn remove_developer(&self, developer_id: &str, now: i64) -> Result<bool> {
        let r = self
            .run_batch(vec![
                self.stmt(
                    "UPDATE agent_tokens SET revoked_at = ?3 WHERE team_id = ?1 AND developer_id = ?2 AND revoked_at IS NULL",
                    vec![t(developer_id), i(now)],
                )?,
                self.stmt(
                    "UPDATE developers SET removed_at = COALESCE(removed_at, ?3) WHERE team_id = ?1 AND id = ?2",
                    vec![t(developer_id), i(now)],
                )?,
            ])
            .await?;
        Ok(r.get(1).map(changed).unwrap_or(0) > 0)
    }

    /// The last step of a hard deletion, one transaction: the operator's
    /// tombstone first (it is what lets the audit trigger delete young
    /// rows), then every row of the team in every table, the team last.
    /// `tests/tests/lifecycle.rs` fails if a table of `schema.sql` is missing here.
    pub async fn hard_delete(
        &self,
        deleted_at: i64,
        now: i64,
        r2: &serde_json::Value,
    ) -> Result<serde_json::Value> {
        let mut stmts = vec![self.stmt(
            "INSERT INTO team_tombstones (team_id, deleted_at, hard_deleted_at, counts) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (team_id) DO UPDATE SET hard_deleted_at = excluded.hard_deleted_at",
            vec![i(deleted_at), i(now), t(r2.to_string())],
        )?];
        for sql in HARD_DELETE {
            stmts.push(self.stmt(sql, vec![])?);
        }
        let results = self.run_batch(stmts).await?;
        let mut counts = serde_json::Map::new();
        for (sql, r) in HARD_DELETE.iter().zip(results.iter().skip(1)) {
            let table = sql.split_whitespace().nth(2).unwrap_or("?");
            counts.insert(table.to_string(), changed(r).into());
        }
        let counts = serde_json::json!({"r2": r2, "rows": counts});
        self.stmt(
            "UPDATE team_tombstones SET counts = ?2 WHERE team_id = ?1",
            vec![t(counts.to_string())],
        )?
        .run()
        .await?;
        Ok(counts)
    }
}

/// Every table that holds a team's rows, children before the team itself.
pub const HARD_DELETE: &[&str] = &[
    "DELETE FROM audit_log WHERE team_id = ?1",
    "DELETE FROM web_sessions WHERE team_id = ?1",
    "DELETE FROM signin_links WHERE team_id = ?1",
    "DELETE FROM members WHERE team_id = ?1",
    "DELETE FROM install_tokens WHERE team_id = ?1",
    "DELETE FROM agent_tokens WHERE team_id = ?1",
    "DELETE FROM batches WHERE team_id = ?1",
    "DELETE FROM usage_hourly WHERE team_id = ?1",
    "DELETE FROM sessions WHERE team_id = ?1",
    "DELETE FROM categories WHERE team_id = ?1",
    "DELETE FROM categorization_usage WHERE team_id = ?1",
    "DELETE FROM project_labels WHERE team_id = ?1",
    "DELETE FROM content_objects WHERE team_id = ?1",
    "DELETE FROM lifecycle_jobs WHERE team_id = ?1",
    "DELETE FROM developers WHERE team_id = ?1",
    "DELETE FROM teams WHERE id = ?1",
];

fn changed(r: &worker::D1Result) -> u64 {
    r.meta().ok().flatten().and_then(|m| m.changes).unwrap_or(0) as u64
}

fn changes(results: Vec<worker::D1Result>) -> Result<u64> {
    Ok(results.iter().map(changed).sum())
}

/// Statements behind the lifecycle pages: timelines, content views, the
/// developer forms and jobs run inline for one team.
impl TeamDb {
    /// Which of `sessions` have stored content.
    pub async fn sessions_with_content(&self, sessions: &[String]) -> Result<Vec<String>> {
        #[derive(serde::Deserialize)]
        struct S {
            session: String,
        }
        if sessions.is_empty() {
            return Ok(Vec::new());
        }
        let list = serde_json::to_string(sessions)?;
        let rows: Vec<S> = all(self.stmt(
            "SELECT DISTINCT session FROM content_objects WHERE team_id = ?1 AND session IN (SELECT value FROM json_each(?2))",
            vec![t(list)],
        )?)
        .await?;
        Ok(rows.into_iter().map(|r| r.session).collect())
    }

    /// Records that content of these developers was read just now.
    pub async fn mark_content_viewed(&self, developer_ids: &[String], now: i64) -> Result<()> {
        let mut stmts = Vec::with_capacity(developer_ids.len());
        for d in developer_ids {
            stmts.push(self.stmt(
                "UPDATE developers SET content_viewed_at = ?3 WHERE team_id = ?1 AND id = ?2",
                vec![t(d.clone()), i(now)],
            )?);
        }
        self.run_batch(stmts).await?;
        Ok(())
    }

    pub async fn developer_list(&self) -> Result<Vec<DeveloperRow>> {
        all(self.stmt(
            "SELECT id, name, removed_at, erased_at, content_viewed_at FROM developers WHERE team_id = ?1 ORDER BY created_at, id",
            vec![],
        )?)
        .await
    }

    /// This team's pending lifecycle jobs, oldest first.
    pub async fn pending_jobs(&self, limit: i64) -> Result<Vec<LifecycleJob>> {
        all(self.stmt(
            "SELECT id, team_id, kind, subject, run_day, cutoff_day, cursor, objects, bytes, rows, attempts FROM lifecycle_jobs WHERE team_id = ?1 AND state = 'pending' ORDER BY id LIMIT ?2",
            vec![i(limit)],
        )?)
        .await
    }
}
