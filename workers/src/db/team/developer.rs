//! The developer self-view (`/me`): its one-time links and sessions, and
//! the reads behind its pages. Every read binds the developer beside the
//! team as `?1` (as `?2`, or `?7` after `usage_in_range!`'s arguments): a
//! developer sees their own rows and nothing else.

use worker::Result;

use super::super::rows::*;
use super::super::{all, first, i, t, Arg};
use super::TeamDb;
use crate::vocab::AuditAction;

/// `usage_in_range!`'s arguments and the developer as `?7`.
fn developer_args(from_q: i64, to_q: i64, developer_id: &str) -> Vec<Arg> {
    let mut args = super::usage::range_args(from_q, to_q);
    args.push(t(developer_id));
    args
}

impl TeamDb {
    pub async fn add_developer_link(
        &self,
        token_hash: &str,
        developer_id: &str,
        agent_id: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<()> {
        self.stmt(
            "INSERT INTO developer_links (team_id, token_hash, developer_id, agent_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            vec![t(token_hash), t(developer_id), t(agent_id), i(now), i(expires_at)],
        )?
        .run()
        .await?;
        Ok(())
    }

    /// Whether this agent of this developer may still act (not revoked).
    pub async fn developer_agent_active(&self, agent_id: &str, developer_id: &str) -> Result<bool> {
        #[derive(serde::Deserialize)]
        struct Ok1 {
            #[allow(dead_code)]
            ok: i64,
        }
        Ok(first::<Ok1>(self.stmt(
            "SELECT 1 AS ok FROM agent_tokens a JOIN developers d ON d.team_id = a.team_id AND d.id = a.developer_id WHERE a.team_id = ?1 AND a.id = ?2 AND a.developer_id = ?3 AND a.revoked_at IS NULL AND d.erased_at IS NULL",
            vec![t(agent_id), t(developer_id)],
        )?)
        .await?
        .is_some())
    }

    pub async fn add_developer_session(
        &self,
        id_hash: &str,
        developer_id: &str,
        agent_id: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<()> {
        self.stmt(
            "INSERT INTO developer_sessions (team_id, id_hash, developer_id, agent_id, created_at, last_seen_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6)",
            vec![t(id_hash), t(developer_id), t(agent_id), i(now), i(expires_at)],
        )?
        .run()
        .await?;
        Ok(())
    }

    pub async fn touch_developer_session(&self, id_hash: &str, now: i64) -> Result<()> {
        self.stmt(
            "UPDATE developer_sessions SET last_seen_at = ?3 WHERE team_id = ?1 AND id_hash = ?2",
            vec![t(id_hash), i(now)],
        )?
        .run()
        .await?;
        Ok(())
    }

    pub async fn delete_developer_session(&self, id_hash: &str) -> Result<()> {
        self.stmt(
            "DELETE FROM developer_sessions WHERE team_id = ?1 AND id_hash = ?2",
            vec![t(id_hash)],
        )?
        .run()
        .await?;
        Ok(())
    }

    /// One developer's totals per model over hours `[from, to)`.
    pub async fn developer_totals_by_model(
        &self,
        developer_id: &str,
        from_q: i64,
        to_q: i64,
    ) -> Result<Vec<ModelTotals>> {
        let mut rows: Vec<ModelTotals> = all(self.stmt(
            concat!("SELECT model, CAST(SUM(requests) AS TEXT) AS requests, CAST(SUM(unpriced_requests) AS TEXT) AS unpriced_requests, CAST(SUM(input_tokens) AS TEXT) AS input_tokens, CAST(SUM(output_tokens) AS TEXT) AS output_tokens, CAST(SUM(cache_write_5m_tokens) AS TEXT) AS cache_write_5m_tokens, CAST(SUM(cache_write_1h_tokens) AS TEXT) AS cache_write_1h_tokens, CAST(SUM(cache_read_tokens) AS TEXT) AS cache_read_tokens, CAST(SUM(cost_micro_usd) AS TEXT) AS cost_micro_usd, CAST(SUM(cost_pico_usd) AS TEXT) AS cost_pico_usd FROM ", usage_in_range!(), " WHERE developer_id = ?7 GROUP BY model ORDER BY SUM(cost_micro_usd) + SUM(cost_pico_usd) / 1000000 DESC, model"),
            developer_args(from_q, to_q, developer_id),
        )?)
        .await?;
        for r in &mut rows {
            let c = r.cost();
            r.set_cost(c);
        }
        Ok(rows)
    }

    /// One developer's totals per project, with the team's project labels.
    pub async fn developer_by_project(
        &self,
        developer_id: &str,
        from_q: i64,
        to_q: i64,
    ) -> Result<Vec<GroupTotals>> {
        all(self.stmt(
            concat!("SELECT g.key, COALESCE(l.label, '') AS label, g.requests, g.input_tokens, g.output_tokens, g.cache_write_tokens, g.cache_read_tokens, g.cost_micro_usd, g.cost_pico_usd, g.last_quarter FROM (SELECT project AS key, CAST(SUM(requests) AS TEXT) AS requests, CAST(SUM(input_tokens) AS TEXT) AS input_tokens, CAST(SUM(output_tokens) AS TEXT) AS output_tokens, CAST(SUM(cache_write_5m_tokens + cache_write_1h_tokens) AS TEXT) AS cache_write_tokens, CAST(SUM(cache_read_tokens) AS TEXT) AS cache_read_tokens, CAST(SUM(cost_micro_usd) AS TEXT) AS cost_micro_usd, CAST(SUM(cost_pico_usd) AS TEXT) AS cost_pico_usd, MAX(last_q) AS last_quarter, SUM(cost_micro_usd) + SUM(cost_pico_usd) / 1000000 AS spent FROM ", projects_in_range!(), " WHERE developer_id = ?7 GROUP BY project) g LEFT JOIN project_labels l ON l.team_id = ?1 AND l.project = g.key ORDER BY g.spent DESC"),
            developer_args(from_q, to_q, developer_id),
        )?)
        .await
    }

    /// One developer's sessions touching `[from, to)`, most expensive first.
    pub async fn developer_sessions_in(
        &self,
        developer_id: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<SessionRowOut>> {
        all(self.stmt(
            "SELECT s.session, s.developer_id, COALESCE(d.name, s.developer_id) AS developer, s.project, s.agent, s.start_ms, s.end_ms, s.requests, s.cost_micro_usd, s.cost_pico_usd, s.modes FROM (SELECT * FROM sessions WHERE team_id = ?1 AND developer_id = ?2 AND end_ms >= ?3 AND start_ms < ?4 ORDER BY cost_micro_usd DESC, cost_pico_usd DESC LIMIT 200) s LEFT JOIN developers d ON d.team_id = ?1 AND d.id = s.developer_id ORDER BY s.cost_micro_usd DESC, s.cost_pico_usd DESC",
            vec![t(developer_id), i(from_ms), i(to_ms)],
        )?)
        .await
    }

    /// Which of `sessions` hold stored content of this developer.
    pub async fn developer_sessions_with_content(
        &self,
        developer_id: &str,
        sessions: &[String],
    ) -> Result<Vec<String>> {
        #[derive(serde::Deserialize)]
        struct S {
            session: String,
        }
        if sessions.is_empty() {
            return Ok(Vec::new());
        }
        let list = serde_json::to_string(sessions)?;
        let rows: Vec<S> = all(self.stmt(
            "SELECT DISTINCT session FROM content_objects WHERE team_id = ?1 AND developer_id = ?2 AND session IN (SELECT value FROM json_each(?3))",
            vec![t(developer_id), t(list)],
        )?)
        .await?;
        Ok(rows.into_iter().map(|r| r.session).collect())
    }

    /// This developer's content objects of one session (none of anyone else's).
    pub async fn developer_session_content(
        &self,
        developer_id: &str,
        session: &str,
    ) -> Result<Vec<ContentObject>> {
        all(self.stmt(
            "SELECT key, session, developer_id, day, batch_id, events, bytes, first_ts, last_ts FROM content_objects WHERE team_id = ?1 AND developer_id = ?2 AND session = ?3 ORDER BY first_ts, key LIMIT 1000",
            vec![t(developer_id), t(session)],
        )?)
        .await
    }

    /// The audit entries that concern one developer, newest first: their own
    /// actions (`actor`), reads and exports of their content (entries name
    /// the developers read since the self-view; older ones are matched by
    /// their session), the team's privacy, retention and purge decisions,
    /// and what was done to their agents, install tokens and data.
    pub async fn developer_audit(
        &self,
        developer_id: &str,
        actor: &str,
        limit: i64,
    ) -> Result<Vec<AuditEntry>> {
        let names = |actions: &[AuditAction]| {
            serde_json::Value::from(actions.iter().map(|a| a.as_str()).collect::<Vec<_>>())
                .to_string()
        };
        let team_wide = names(&[
            AuditAction::PrivacyModeChange,
            AuditAction::RetentionChange,
            AuditAction::ContentPurgeRequested,
        ]);
        let reads = names(&[AuditAction::ContentView, AuditAction::ContentExport]);
        let by_developer_id = names(&[
            AuditAction::DeveloperRemove,
            AuditAction::InstallTokenCreate,
        ]);
        all(self.stmt(
            "SELECT id, at, actor, action, ip, details FROM audit_log WHERE team_id = ?1 AND ( \
             actor = ?3 \
             OR action IN (SELECT value FROM json_each(?5)) \
             OR (action IN (SELECT value FROM json_each(?6)) AND (EXISTS (SELECT 1 FROM json_each(audit_log.details, '$.developers') WHERE value = ?2) \
                 OR json_extract(details, '$.session') IN (SELECT session FROM sessions WHERE team_id = ?1 AND developer_id = ?2))) \
             OR (action = ?7 AND json_extract(details, '$.agent_id') IN (SELECT id FROM agent_tokens WHERE team_id = ?1 AND developer_id = ?2)) \
             OR (action IN (SELECT value FROM json_each(?8)) AND json_extract(details, '$.developer_id') = ?2) \
             OR (action = ?9 AND json_extract(details, '$.developer') = ?2) \
             ) ORDER BY id DESC LIMIT ?4",
            vec![
                t(developer_id),
                t(actor),
                i(limit),
                t(team_wide),
                t(reads),
                t(AuditAction::AgentRevoke.as_str()),
                t(by_developer_id),
                t(AuditAction::DeveloperErased.as_str()),
            ],
        )?)
        .await
    }
}
