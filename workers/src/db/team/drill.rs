//! Drill-downs: the dashboard's sums narrowed to one developer, project or
//! model (`Filter`, '' for "any"), grouped by another dimension. The
//! statements are literals (one per grouping) so `sql_lint` reads them.

use tally_core::time::{DAY_MS, QUARTER_MS};
use worker::Result;

use super::super::rows::*;
use super::super::{all, i, t};
use super::TeamDb;

/// What a drill-down narrows to; an empty field matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub developer: String,
    pub project: String,
    pub model: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    Developer,
    Project,
    Model,
}

impl TeamDb {
    /// Totals per `group` over quarter hours `[from, to)` of the rows `f` matches,
    /// most expensive first.
    pub async fn usage_by(
        &self,
        from_q: i64,
        to_q: i64,
        group: Group,
        f: &Filter,
    ) -> Result<Vec<GroupTotals>> {
        let sql = match group {
            Group::Developer => "SELECT u.developer_id AS key, COALESCE(d.name, u.developer_id) AS label, CAST(SUM(u.requests) AS TEXT) AS requests, CAST(SUM(u.input_tokens) AS TEXT) AS input_tokens, CAST(SUM(u.output_tokens) AS TEXT) AS output_tokens, CAST(SUM(u.cache_write_5m_tokens + u.cache_write_1h_tokens) AS TEXT) AS cache_write_tokens, CAST(SUM(u.cache_read_tokens) AS TEXT) AS cache_read_tokens, CAST(SUM(u.cost_micro_usd) AS TEXT) AS cost_micro_usd, CAST(SUM(u.cost_pico_usd) AS TEXT) AS cost_pico_usd, MAX(u.quarter) AS last_quarter FROM usage_q u LEFT JOIN developers d ON d.team_id = u.team_id AND d.id = u.developer_id WHERE u.team_id = ?1 AND u.quarter >= ?2 AND u.quarter < ?3 AND (?4 = '' OR u.developer_id = ?4) AND (?5 = '' OR u.project = ?5) AND (?6 = '' OR u.model = ?6) GROUP BY u.developer_id ORDER BY SUM(u.cost_micro_usd) + SUM(u.cost_pico_usd) / 1000000 DESC, u.developer_id",
            Group::Project => "SELECT u.project AS key, COALESCE(l.label, '') AS label, CAST(SUM(u.requests) AS TEXT) AS requests, CAST(SUM(u.input_tokens) AS TEXT) AS input_tokens, CAST(SUM(u.output_tokens) AS TEXT) AS output_tokens, CAST(SUM(u.cache_write_5m_tokens + u.cache_write_1h_tokens) AS TEXT) AS cache_write_tokens, CAST(SUM(u.cache_read_tokens) AS TEXT) AS cache_read_tokens, CAST(SUM(u.cost_micro_usd) AS TEXT) AS cost_micro_usd, CAST(SUM(u.cost_pico_usd) AS TEXT) AS cost_pico_usd, MAX(u.quarter) AS last_quarter FROM usage_q u LEFT JOIN project_labels l ON l.team_id = u.team_id AND l.project = u.project WHERE u.team_id = ?1 AND u.quarter >= ?2 AND u.quarter < ?3 AND (?4 = '' OR u.developer_id = ?4) AND (?5 = '' OR u.project = ?5) AND (?6 = '' OR u.model = ?6) GROUP BY u.project ORDER BY SUM(u.cost_micro_usd) + SUM(u.cost_pico_usd) / 1000000 DESC, u.project",
            Group::Model => "SELECT u.model AS key, u.model AS label, CAST(SUM(u.requests) AS TEXT) AS requests, CAST(SUM(u.input_tokens) AS TEXT) AS input_tokens, CAST(SUM(u.output_tokens) AS TEXT) AS output_tokens, CAST(SUM(u.cache_write_5m_tokens + u.cache_write_1h_tokens) AS TEXT) AS cache_write_tokens, CAST(SUM(u.cache_read_tokens) AS TEXT) AS cache_read_tokens, CAST(SUM(u.cost_micro_usd) AS TEXT) AS cost_micro_usd, CAST(SUM(u.cost_pico_usd) AS TEXT) AS cost_pico_usd, MAX(u.quarter) AS last_quarter FROM usage_q u WHERE u.team_id = ?1 AND u.quarter >= ?2 AND u.quarter < ?3 AND (?4 = '' OR u.developer_id = ?4) AND (?5 = '' OR u.project = ?5) AND (?6 = '' OR u.model = ?6) GROUP BY u.model ORDER BY SUM(u.cost_micro_usd) + SUM(u.cost_pico_usd) / 1000000 DESC, u.model",
        };
        all(self.stmt(
            sql,
            vec![
                i(from_q),
                i(to_q),
                t(f.developer.as_str()),
                t(f.project.as_str()),
                t(f.model.as_str()),
            ],
        )?)
        .await
    }

    /// Cost per local day and model of the rows `f` matches: a drill-down's
    /// trend, summed per day in D1 over the range's offset runs as the
    /// overview's chart is.
    pub async fn daily_cost_where(
        &self,
        runs: &[(i64, i64, i64)],
        f: &Filter,
    ) -> Result<Vec<DayModelCost>> {
        all(self.stmt(
            "SELECT CAST((u.quarter + json_extract(r.value, '$[2]')) / ?3 AS INTEGER) AS day, u.model, CAST(SUM(u.cost_micro_usd) AS TEXT) AS cost_micro_usd, CAST(SUM(u.cost_pico_usd) AS TEXT) AS cost_pico_usd \
             FROM json_each(?2) r CROSS JOIN usage_q u \
             WHERE u.team_id = ?1 AND u.quarter >= json_extract(r.value, '$[0]') AND u.quarter < json_extract(r.value, '$[1]') \
             AND (?4 = '' OR u.developer_id = ?4) AND (?5 = '' OR u.project = ?5) AND (?6 = '' OR u.model = ?6) \
             GROUP BY day, u.model ORDER BY day, u.model",
            vec![
                t(serde_json::to_string(runs)?),
                i(DAY_MS / QUARTER_MS),
                t(f.developer.as_str()),
                t(f.project.as_str()),
                t(f.model.as_str()),
            ],
        )?)
        .await
    }

    /// One session's row, `None` when the team has no such session.
    pub async fn session_by_id(&self, session: &str) -> Result<Option<SessionRowOut>> {
        super::super::first(self.stmt(
            "SELECT s.session, s.developer_id, COALESCE(d.name, s.developer_id) AS developer, s.project, s.agent, s.start_ms, s.end_ms, s.requests, s.cost_micro_usd, s.cost_pico_usd, s.modes FROM sessions s LEFT JOIN developers d ON d.team_id = s.team_id AND d.id = s.developer_id WHERE s.team_id = ?1 AND s.session = ?2",
            vec![t(session)],
        )?)
        .await
    }

    /// Install tokens not used yet and not expired, newest first.
    pub async fn pending_install_tokens(&self, now: i64) -> Result<Vec<PendingInstallToken>> {
        all(self.stmt(
            "SELECT i.token_hash, i.developer_id, COALESCE(d.name, i.developer_id) AS developer, i.created_at, i.expires_at FROM install_tokens i LEFT JOIN developers d ON d.team_id = i.team_id AND d.id = i.developer_id WHERE i.team_id = ?1 AND i.used_at IS NULL AND i.expires_at > ?2 ORDER BY i.created_at DESC",
            vec![i(now)],
        )?)
        .await
    }

    /// Ends an unused install token now; false when it was used, expired or unknown.
    pub async fn revoke_install_token(&self, token_hash: &str, now: i64) -> Result<bool> {
        let r = self
            .stmt(
                "UPDATE install_tokens SET expires_at = ?3 WHERE team_id = ?1 AND token_hash = ?2 AND used_at IS NULL AND expires_at > ?3",
                vec![t(token_hash), i(now)],
            )?
            .run()
            .await?;
        Ok(super::changed(&r) > 0)
    }
}
