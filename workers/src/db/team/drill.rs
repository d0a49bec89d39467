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
        // Whole UTC days at or below the compaction watermark from
        // `usage_dp` (without a model filter) or `usage_d`, the rest from
        // quarters: fast at a year, exact in every zone. `?9` is the model
        // where the statement has one (D1 refuses unused bindings).
        let sql = match (group, f.model.is_empty()) {
            (Group::Developer, true) => concat!("SELECT g.key, COALESCE(d.name, g.key) AS label, g.requests, g.input_tokens, g.output_tokens, g.cache_write_tokens, g.cache_read_tokens, g.cost_micro_usd, g.cost_pico_usd, g.last_quarter FROM (SELECT developer_id AS key, CAST(SUM(requests) AS TEXT) AS requests, CAST(SUM(input_tokens) AS TEXT) AS input_tokens, CAST(SUM(output_tokens) AS TEXT) AS output_tokens, CAST(SUM(cache_write_5m_tokens + cache_write_1h_tokens) AS TEXT) AS cache_write_tokens, CAST(SUM(cache_read_tokens) AS TEXT) AS cache_read_tokens, CAST(SUM(cost_micro_usd) AS TEXT) AS cost_micro_usd, CAST(SUM(cost_pico_usd) AS TEXT) AS cost_pico_usd, MAX(last_q) AS last_quarter, SUM(cost_micro_usd) + SUM(cost_pico_usd) / 1000000 AS spent FROM ", projects_in_range!(), " WHERE (?7 = '' OR developer_id = ?7) AND (?8 = '' OR project = ?8) GROUP BY developer_id) g LEFT JOIN developers d ON d.team_id = ?1 AND d.id = g.key ORDER BY g.spent DESC, g.key"),
            (Group::Developer, false) => concat!("SELECT g.key, COALESCE(d.name, g.key) AS label, g.requests, g.input_tokens, g.output_tokens, g.cache_write_tokens, g.cache_read_tokens, g.cost_micro_usd, g.cost_pico_usd, g.last_quarter FROM (SELECT developer_id AS key, CAST(SUM(requests) AS TEXT) AS requests, CAST(SUM(input_tokens) AS TEXT) AS input_tokens, CAST(SUM(output_tokens) AS TEXT) AS output_tokens, CAST(SUM(cache_write_5m_tokens + cache_write_1h_tokens) AS TEXT) AS cache_write_tokens, CAST(SUM(cache_read_tokens) AS TEXT) AS cache_read_tokens, CAST(SUM(cost_micro_usd) AS TEXT) AS cost_micro_usd, CAST(SUM(cost_pico_usd) AS TEXT) AS cost_pico_usd, MAX(last_q) AS last_quarter, SUM(cost_micro_usd) + SUM(cost_pico_usd) / 1000000 AS spent FROM ", usage_in_range!(), " WHERE (?7 = '' OR developer_id = ?7) AND (?8 = '' OR project = ?8) AND (?9 = '' OR model = ?9) GROUP BY developer_id) g LEFT JOIN developers d ON d.team_id = ?1 AND d.id = g.key ORDER BY g.spent DESC, g.key"),
            (Group::Project, true) => concat!("SELECT g.key, COALESCE(l.label, '') AS label, g.requests, g.input_tokens, g.output_tokens, g.cache_write_tokens, g.cache_read_tokens, g.cost_micro_usd, g.cost_pico_usd, g.last_quarter FROM (SELECT project AS key, CAST(SUM(requests) AS TEXT) AS requests, CAST(SUM(input_tokens) AS TEXT) AS input_tokens, CAST(SUM(output_tokens) AS TEXT) AS output_tokens, CAST(SUM(cache_write_5m_tokens + cache_write_1h_tokens) AS TEXT) AS cache_write_tokens, CAST(SUM(cache_read_tokens) AS TEXT) AS cache_read_tokens, CAST(SUM(cost_micro_usd) AS TEXT) AS cost_micro_usd, CAST(SUM(cost_pico_usd) AS TEXT) AS cost_pico_usd, MAX(last_q) AS last_quarter, SUM(cost_micro_usd) + SUM(cost_pico_usd) / 1000000 AS spent FROM ", projects_in_range!(), " WHERE (?7 = '' OR developer_id = ?7) AND (?8 = '' OR project = ?8) GROUP BY project) g LEFT JOIN project_labels l ON l.team_id = ?1 AND l.project = g.key ORDER BY g.spent DESC, g.key"),
            (Group::Project, false) => concat!("SELECT g.key, COALESCE(l.label, '') AS label, g.requests, g.input_tokens, g.output_tokens, g.cache_write_tokens, g.cache_read_tokens, g.cost_micro_usd, g.cost_pico_usd, g.last_quarter FROM (SELECT project AS key, CAST(SUM(requests) AS TEXT) AS requests, CAST(SUM(input_tokens) AS TEXT) AS input_tokens, CAST(SUM(output_tokens) AS TEXT) AS output_tokens, CAST(SUM(cache_write_5m_tokens + cache_write_1h_tokens) AS TEXT) AS cache_write_tokens, CAST(SUM(cache_read_tokens) AS TEXT) AS cache_read_tokens, CAST(SUM(cost_micro_usd) AS TEXT) AS cost_micro_usd, CAST(SUM(cost_pico_usd) AS TEXT) AS cost_pico_usd, MAX(last_q) AS last_quarter, SUM(cost_micro_usd) + SUM(cost_pico_usd) / 1000000 AS spent FROM ", usage_in_range!(), " WHERE (?7 = '' OR developer_id = ?7) AND (?8 = '' OR project = ?8) AND (?9 = '' OR model = ?9) GROUP BY project) g LEFT JOIN project_labels l ON l.team_id = ?1 AND l.project = g.key ORDER BY g.spent DESC, g.key"),
            (Group::Model, _) => concat!("SELECT g.key, g.key AS label, g.requests, g.input_tokens, g.output_tokens, g.cache_write_tokens, g.cache_read_tokens, g.cost_micro_usd, g.cost_pico_usd, g.last_quarter FROM (SELECT model AS key, CAST(SUM(requests) AS TEXT) AS requests, CAST(SUM(input_tokens) AS TEXT) AS input_tokens, CAST(SUM(output_tokens) AS TEXT) AS output_tokens, CAST(SUM(cache_write_5m_tokens + cache_write_1h_tokens) AS TEXT) AS cache_write_tokens, CAST(SUM(cache_read_tokens) AS TEXT) AS cache_read_tokens, CAST(SUM(cost_micro_usd) AS TEXT) AS cost_micro_usd, CAST(SUM(cost_pico_usd) AS TEXT) AS cost_pico_usd, MAX(last_q) AS last_quarter, SUM(cost_micro_usd) + SUM(cost_pico_usd) / 1000000 AS spent FROM ", usage_in_range!(), " WHERE (?7 = '' OR developer_id = ?7) AND (?8 = '' OR project = ?8) AND (?9 = '' OR model = ?9) GROUP BY model) g ORDER BY g.spent DESC, g.key"),
        };
        let mut args = super::usage::range_args(from_q, to_q);
        args.extend([t(f.developer.as_str()), t(f.project.as_str())]);
        if group == Group::Model || !f.model.is_empty() {
            args.push(t(f.model.as_str()));
        }
        all(self.stmt(sql, args)?).await
    }

    /// Cost per local day and model of the rows `f` matches: a drill-down's
    /// trend, summed per day in D1 over the range's offset runs as the
    /// overview's chart is.
    pub async fn daily_cost_where(
        &self,
        runs: &[(i64, i64, i64)],
        f: &Filter,
    ) -> Result<Vec<DayModelCost>> {
        // The team's (or one model's) trend reads the quarters by model;
        // a developer or project needs the keyed quarters.
        if f.developer.is_empty() && f.project.is_empty() {
            return self.daily_cost_of_model(runs, &f.model).await;
        }
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
