//! Several queue parts of one team, applied in one D1 transaction with their
//! rows merged: a delivery of parts that share a quarter hour, model and project
//! (one developer's parts, say) writes each aggregate row once.
//!
//! Exactly-once (`apply_part` is this path for one part): every statement is guarded by "no marker
//! of any of these parts, and none from a different split of their batches"
//! (the parts travel as one JSON array bound as ?2), and the markers are
//! written last. The guard is all or nothing: when any part was applied
//! before, nothing is written and the caller applies the parts one by one.

use std::collections::BTreeMap;

use tally_core::rollup::{CategoryKey, QuarterKey, SessionRow, Totals};
use tally_core::time::DAY_MS;
use worker::Result;

use super::super::{i, t, Arg, CategorizeStats, PartToApply, RowsWritten};
use super::TeamDb;

/// One row of a late-event `json_each` upsert: the key's values, the nine
/// counters in the rollup tables' column order (requests, unpriced, the five
/// token kinds, micro-dollars, pico remainder), then `last` (the last
/// quarter) when the table keeps it.
fn late_row(key: serde_json::Value, v: &Totals, last: Option<i64>) -> serde_json::Value {
    let (micro, pico) = v.cost.parts();
    let mut row = match key {
        serde_json::Value::Array(k) => k,
        other => vec![other],
    };
    row.extend(
        [
            v.requests,
            v.unpriced_requests,
            v.tokens.input,
            v.tokens.output,
            v.tokens.cache_write_5m,
            v.tokens.cache_write_1h,
            v.tokens.cache_read,
        ]
        .map(serde_json::Value::from),
    );
    row.extend([micro, pico].map(serde_json::Value::from));
    row.extend(last.map(serde_json::Value::from));
    serde_json::Value::Array(row)
}

/// The table a statement of the transaction writes (`RowsWritten`).
#[derive(Clone, Copy)]
enum Table {
    Usage,
    Sessions,
    Markers,
    Other,
}

/// What the parts add up to, each row keyed as its upsert's conflict target.
#[derive(Default)]
struct Merged<'a> {
    quarters: BTreeMap<(&'a str, &'a QuarterKey), Totals>,
    sessions: BTreeMap<&'a str, (&'a str, SessionRow)>,
    categories: BTreeMap<(&'a str, &'a CategoryKey), u64>,
    /// (project, branch) → name: the last part's spelling wins.
    branch_names: BTreeMap<(&'a str, &'a str), &'a str>,
    categorized: Option<CategorizeStats>,
    disagreements: BTreeMap<&'a str, u64>,
}

fn merge<'a>(parts: &[PartToApply<'a>]) -> Merged<'a> {
    let mut m = Merged::default();
    for p in parts {
        for (k, v) in &p.rollup.quarters {
            let e = m.quarters.entry((p.developer_id, k)).or_default();
            e.merge(v);
        }
        for s in &p.rollup.sessions {
            m.sessions
                .entry(s.session.as_str())
                .and_modify(|(_, e)| {
                    e.start_ms = e.start_ms.min(s.start_ms);
                    e.end_ms = e.end_ms.max(s.end_ms);
                    e.requests += s.requests;
                    e.cost += s.cost;
                    e.modes |= s.modes;
                })
                .or_insert_with(|| (p.developer_id, s.clone()));
        }
        for (k, n) in &p.rollup.categories {
            *m.categories.entry((p.developer_id, k)).or_default() += n;
        }
        for b in &p.rollup.branch_names {
            m.branch_names
                .insert((b.project.as_str(), b.branch.as_str()), b.name.as_str());
        }
        if let Some(c) = p.categorized {
            let e = m.categorized.get_or_insert_with(CategorizeStats::default);
            e.calls += c.calls;
            e.failures += c.failures;
            e.skipped += c.skipped;
            e.skipped_cap += c.skipped_cap;
            e.input_tokens += c.input_tokens;
            e.output_tokens += c.output_tokens;
            e.cost += c.cost;
        }
        if p.disagreements > 0 && !p.agent_id.is_empty() {
            *m.disagreements.entry(p.agent_id).or_default() += p.disagreements;
        }
    }
    m
}

/// A transaction's statements, each with the table it writes (for the
/// rows-written breakdown): pushed together so they cannot drift apart.
#[derive(Default)]
struct Statements {
    list: Vec<worker::D1PreparedStatement>,
    kinds: Vec<Table>,
}

impl Statements {
    fn push(&mut self, kind: Table, stmt: worker::D1PreparedStatement) {
        self.list.push(stmt);
        self.kinds.push(kind);
    }
}

impl TeamDb {
    /// Applies `parts` (at least one; no two of the same batch part, no two
    /// splits of one batch) in one transaction. `Ok(Some(rows written))`
    /// when all were new, `Ok(None)` when any was applied before (then
    /// nothing was written).
    pub async fn apply_parts(
        &self,
        parts: &[PartToApply<'_>],
        now: i64,
    ) -> Result<Option<RowsWritten>> {
        let keys: Vec<serde_json::Value> = parts
            .iter()
            .map(|p| {
                serde_json::json!([p.batch_id, p.part, p.split, p.developer_id, p.rollup.events])
            })
            .collect();
        let keys = serde_json::Value::Array(keys).to_string();
        let guard = |args: Vec<Arg>| {
            let mut all = vec![t(keys.clone())];
            all.extend(args);
            all
        };
        let m = merge(parts);
        let mut stmts = Statements::default();
        for ((developer, k), v) in &m.quarters {
            let (micro, pico) = v.cost.parts();
            stmts.push(Table::Usage, self.stmt(
                "INSERT INTO usage_q (team_id, quarter, developer_id, project, model, agent, requests, unpriced_requests, input_tokens, output_tokens, cache_write_5m_tokens, cache_write_1h_tokens, cache_read_tokens, cost_micro_usd, cost_pico_usd, branch) \
                 SELECT ?1, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17 \
                 WHERE NOT EXISTS (SELECT 1 FROM batches b, json_each(?2) j WHERE b.team_id = ?1 AND b.batch_id = json_extract(j.value, '$[0]') AND (b.part = json_extract(j.value, '$[1]') OR b.split <> json_extract(j.value, '$[2]'))) \
                 ON CONFLICT (team_id, quarter, developer_id, project, branch, model, agent) DO UPDATE SET \
                 requests = requests + excluded.requests, unpriced_requests = unpriced_requests + excluded.unpriced_requests, \
                 input_tokens = input_tokens + excluded.input_tokens, output_tokens = output_tokens + excluded.output_tokens, \
                 cache_write_5m_tokens = cache_write_5m_tokens + excluded.cache_write_5m_tokens, \
                 cache_write_1h_tokens = cache_write_1h_tokens + excluded.cache_write_1h_tokens, \
                 cache_read_tokens = cache_read_tokens + excluded.cache_read_tokens, \
                 cost_micro_usd = cost_micro_usd + excluded.cost_micro_usd + (cost_pico_usd + excluded.cost_pico_usd) / 1000000, \
                 cost_pico_usd = (cost_pico_usd + excluded.cost_pico_usd) % 1000000",
                guard(vec![
                    i(k.quarter),
                    t(*developer),
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
                    t(k.branch.clone()),
                ]),
            )?);
            // A late event for a day compaction already copied: the same sums
            // go into usage_d in this transaction, so whichever of cron and
            // consumer D1 runs first, the day counts it once. For a day above
            // the watermark this writes nothing.
            stmts.push(Table::Usage, self.stmt(
                concat!(
                    "INSERT INTO usage_d (team_id, day, developer_id, project, model, agent, requests, unpriced_requests, input_tokens, output_tokens, cache_write_5m_tokens, cache_write_1h_tokens, cache_read_tokens, cost_micro_usd, cost_pico_usd, last_quarter, branch) \
                     SELECT ?1, ?17, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?3, ?18 \
                     WHERE NOT EXISTS (SELECT 1 FROM batches b, json_each(?2) j WHERE b.team_id = ?1 AND b.batch_id = json_extract(j.value, '$[0]') AND (b.part = json_extract(j.value, '$[1]') OR b.split <> json_extract(j.value, '$[2]'))) \
                     AND (SELECT compacted_through_day FROM teams WHERE id = ?1) >= ?17",
                    usage_d_add!()
                ),
                guard(vec![
                    i(k.quarter),
                    t(*developer),
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
                    i(k.quarter.div_euclid(super::usage::QUARTERS_PER_DAY)),
                    t(k.branch.clone()),
                ]),
            )?);
        }
        // The same late events by quarter and model into `usage_m`, in one
        // statement for the whole delivery; for quarters above the
        // watermark (the usual, recent event) it writes nothing.
        let mut by_model: BTreeMap<(i64, &str), Totals> = BTreeMap::new();
        for ((_, k), v) in &m.quarters {
            let e = by_model.entry((k.quarter, k.model.as_str())).or_default();
            e.merge(v);
        }
        if !by_model.is_empty() {
            let rows: Vec<serde_json::Value> = by_model
                .iter()
                .map(|((quarter, model), v)| late_row(serde_json::json!([quarter, model]), v, None))
                .collect();
            stmts.push(Table::Usage, self.stmt(
                concat!(
                    "INSERT INTO usage_m (team_id, quarter, model, requests, unpriced_requests, input_tokens, output_tokens, cache_write_5m_tokens, cache_write_1h_tokens, cache_read_tokens, cost_micro_usd, cost_pico_usd) \
                     SELECT ?1, json_extract(m.value, '$[0]'), json_extract(m.value, '$[1]'), json_extract(m.value, '$[2]'), json_extract(m.value, '$[3]'), json_extract(m.value, '$[4]'), json_extract(m.value, '$[5]'), json_extract(m.value, '$[6]'), json_extract(m.value, '$[7]'), json_extract(m.value, '$[8]'), json_extract(m.value, '$[9]'), json_extract(m.value, '$[10]') \
                     FROM json_each(?3) m \
                     WHERE NOT EXISTS (SELECT 1 FROM batches b, json_each(?2) j WHERE b.team_id = ?1 AND b.batch_id = json_extract(j.value, '$[0]') AND (b.part = json_extract(j.value, '$[1]') OR b.split <> json_extract(j.value, '$[2]'))) \
                     AND json_extract(m.value, '$[0]') < (COALESCE((SELECT compacted_through_day FROM teams WHERE id = ?1), -1) + 1) * ?4",
                    usage_m_add!()
                ),
                guard(vec![
                    t(serde_json::Value::Array(rows).to_string()),
                    i(super::usage::QUARTERS_PER_DAY),
                ]),
            )?);
        }
        // And by UTC day and model into `usage_md`.
        let mut by_day_model: BTreeMap<(i64, &str), Totals> = BTreeMap::new();
        for ((quarter, model), v) in &by_model {
            let e = by_day_model
                .entry((quarter.div_euclid(super::usage::QUARTERS_PER_DAY), model))
                .or_default();
            e.merge(v);
        }
        if !by_day_model.is_empty() {
            let rows: Vec<serde_json::Value> = by_day_model
                .iter()
                .map(|((day, model), v)| late_row(serde_json::json!([day, model]), v, None))
                .collect();
            stmts.push(Table::Usage, self.stmt(
                concat!(
                    "INSERT INTO usage_md (team_id, day, model, requests, unpriced_requests, input_tokens, output_tokens, cache_write_5m_tokens, cache_write_1h_tokens, cache_read_tokens, cost_micro_usd, cost_pico_usd) \
                     SELECT ?1, json_extract(m.value, '$[0]'), json_extract(m.value, '$[1]'), json_extract(m.value, '$[2]'), json_extract(m.value, '$[3]'), json_extract(m.value, '$[4]'), json_extract(m.value, '$[5]'), json_extract(m.value, '$[6]'), json_extract(m.value, '$[7]'), json_extract(m.value, '$[8]'), json_extract(m.value, '$[9]'), json_extract(m.value, '$[10]') \
                     FROM json_each(?3) m \
                     WHERE NOT EXISTS (SELECT 1 FROM batches b, json_each(?2) j WHERE b.team_id = ?1 AND b.batch_id = json_extract(j.value, '$[0]') AND (b.part = json_extract(j.value, '$[1]') OR b.split <> json_extract(j.value, '$[2]'))) \
                     AND json_extract(m.value, '$[0]') <= (SELECT compacted_through_day FROM teams WHERE id = ?1)",
                    usage_md_add!()
                ),
                guard(vec![t(serde_json::Value::Array(rows).to_string())]),
            )?);
        }
        // And by UTC day, developer and project into `usage_dp`.
        let mut by_project: BTreeMap<(i64, &str, &str), (Totals, i64)> = BTreeMap::new();
        for ((developer, k), v) in &m.quarters {
            let day = k.quarter.div_euclid(super::usage::QUARTERS_PER_DAY);
            let (e, last) = by_project
                .entry((day, *developer, k.project.as_str()))
                .or_insert_with(|| (Totals::default(), k.quarter));
            e.merge(v);
            *last = (*last).max(k.quarter);
        }
        if !by_project.is_empty() {
            let rows: Vec<serde_json::Value> = by_project
                .iter()
                .map(|((day, developer, project), (v, last))| {
                    late_row(serde_json::json!([day, developer, project]), v, Some(*last))
                })
                .collect();
            stmts.push(Table::Usage, self.stmt(
                concat!(
                    "INSERT INTO usage_dp (team_id, day, developer_id, project, requests, unpriced_requests, input_tokens, output_tokens, cache_write_5m_tokens, cache_write_1h_tokens, cache_read_tokens, cost_micro_usd, cost_pico_usd, last_quarter) \
                     SELECT ?1, json_extract(p.value, '$[0]'), json_extract(p.value, '$[1]'), json_extract(p.value, '$[2]'), json_extract(p.value, '$[3]'), json_extract(p.value, '$[4]'), json_extract(p.value, '$[5]'), json_extract(p.value, '$[6]'), json_extract(p.value, '$[7]'), json_extract(p.value, '$[8]'), json_extract(p.value, '$[9]'), json_extract(p.value, '$[10]'), json_extract(p.value, '$[11]'), json_extract(p.value, '$[12]') \
                     FROM json_each(?3) p \
                     WHERE NOT EXISTS (SELECT 1 FROM batches b, json_each(?2) j WHERE b.team_id = ?1 AND b.batch_id = json_extract(j.value, '$[0]') AND (b.part = json_extract(j.value, '$[1]') OR b.split <> json_extract(j.value, '$[2]'))) \
                     AND json_extract(p.value, '$[0]') <= (SELECT compacted_through_day FROM teams WHERE id = ?1)",
                    usage_dp_add!()
                ),
                guard(vec![t(serde_json::Value::Array(rows).to_string())]),
            )?);
        }
        for (developer, r) in m.sessions.values() {
            let (micro, pico) = r.cost.parts();
            stmts.push(Table::Sessions, self.stmt(
                "INSERT INTO sessions (team_id, session, developer_id, project, agent, start_ms, end_ms, requests, cost_micro_usd, cost_pico_usd, modes) \
                 SELECT ?1, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12 \
                 WHERE NOT EXISTS (SELECT 1 FROM batches b, json_each(?2) j WHERE b.team_id = ?1 AND b.batch_id = json_extract(j.value, '$[0]') AND (b.part = json_extract(j.value, '$[1]') OR b.split <> json_extract(j.value, '$[2]'))) \
                 ON CONFLICT (team_id, session) DO UPDATE SET start_ms = min(start_ms, excluded.start_ms), \
                 end_ms = max(end_ms, excluded.end_ms), requests = requests + excluded.requests, modes = modes | excluded.modes, \
                 cost_micro_usd = cost_micro_usd + excluded.cost_micro_usd + (cost_pico_usd + excluded.cost_pico_usd) / 1000000, \
                 cost_pico_usd = (cost_pico_usd + excluded.cost_pico_usd) % 1000000",
                guard(vec![
                    t(r.session.clone()),
                    t(*developer),
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
        for ((developer, k), n) in &m.categories {
            stmts.push(Table::Other, self.stmt(
                "INSERT INTO categories (team_id, day, developer_id, project, category, task_hint, project_hint, requests) \
                 SELECT ?1, ?3, ?4, ?5, ?6, ?7, ?8, ?9 \
                 WHERE NOT EXISTS (SELECT 1 FROM batches b, json_each(?2) j WHERE b.team_id = ?1 AND b.batch_id = json_extract(j.value, '$[0]') AND (b.part = json_extract(j.value, '$[1]') OR b.split <> json_extract(j.value, '$[2]'))) \
                 ON CONFLICT (team_id, day, developer_id, project, category, task_hint, project_hint) DO UPDATE SET requests = requests + excluded.requests",
                guard(vec![i(k.day), t(*developer), t(k.project.clone()), t(k.category.as_str()), t(k.task_hint.clone()), t(k.project_hint.clone()), i(*n)]),
            )?);
        }
        for ((project, branch), name) in &m.branch_names {
            stmts.push(Table::Other, self.stmt(
                "INSERT INTO branch_names (team_id, project, branch, name) \
                 SELECT ?1, ?3, ?4, ?5 \
                 WHERE NOT EXISTS (SELECT 1 FROM batches b, json_each(?2) j WHERE b.team_id = ?1 AND b.batch_id = json_extract(j.value, '$[0]') AND (b.part = json_extract(j.value, '$[1]') OR b.split <> json_extract(j.value, '$[2]'))) \
                 ON CONFLICT (team_id, project, branch) DO UPDATE SET name = excluded.name WHERE name <> excluded.name",
                guard(vec![t(*project), t(*branch), t(*name)]),
            )?);
        }
        if let Some(c) = &m.categorized {
            let (micro, pico) = c.cost.parts();
            stmts.push(Table::Other, self.stmt(
                "INSERT INTO categorization_usage (team_id, day, calls, failures, skipped, input_tokens, output_tokens, cost_micro_usd, cost_pico_usd, skipped_cap) \
                 SELECT ?1, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11 \
                 WHERE NOT EXISTS (SELECT 1 FROM batches b, json_each(?2) j WHERE b.team_id = ?1 AND b.batch_id = json_extract(j.value, '$[0]') AND (b.part = json_extract(j.value, '$[1]') OR b.split <> json_extract(j.value, '$[2]'))) \
                 ON CONFLICT (team_id, day) DO UPDATE SET calls = calls + excluded.calls, failures = failures + excluded.failures, \
                 skipped = skipped + excluded.skipped, skipped_cap = skipped_cap + excluded.skipped_cap, input_tokens = input_tokens + excluded.input_tokens, \
                 output_tokens = output_tokens + excluded.output_tokens, \
                 cost_micro_usd = cost_micro_usd + excluded.cost_micro_usd + (cost_pico_usd + excluded.cost_pico_usd) / 1000000, \
                 cost_pico_usd = (cost_pico_usd + excluded.cost_pico_usd) % 1000000",
                guard(vec![i(now.div_euclid(DAY_MS)), i(c.calls), i(c.failures), i(c.skipped), i(c.input_tokens), i(c.output_tokens), i(micro), i(pico), i(c.skipped_cap)]),
            )?);
        }
        for (agent, n) in &m.disagreements {
            stmts.push(Table::Other, self.stmt(
                "UPDATE agent_tokens SET priced_differently = priced_differently + ?4 \
                 WHERE team_id = ?1 AND id = ?3 \
                 AND NOT EXISTS (SELECT 1 FROM batches b, json_each(?2) j WHERE b.team_id = ?1 AND b.batch_id = json_extract(j.value, '$[0]') AND (b.part = json_extract(j.value, '$[1]') OR b.split <> json_extract(j.value, '$[2]')))",
                guard(vec![t(*agent), i(*n)]),
            )?);
        }
        // The markers last (SQLite reads the guard before inserting: the
        // SELECT reads the table it inserts into).
        stmts.push(Table::Markers, self.stmt(
            "INSERT INTO batches (team_id, batch_id, part, split, developer_id, events, received_at) \
             SELECT ?1, json_extract(j.value, '$[0]'), json_extract(j.value, '$[1]'), json_extract(j.value, '$[2]'), json_extract(j.value, '$[3]'), json_extract(j.value, '$[4]'), ?3 \
             FROM json_each(?2) j \
             WHERE NOT EXISTS (SELECT 1 FROM batches b, json_each(?2) k WHERE b.team_id = ?1 AND b.batch_id = json_extract(k.value, '$[0]') AND (b.part = json_extract(k.value, '$[1]') OR b.split <> json_extract(k.value, '$[2]')))",
            guard(vec![i(now)]),
        )?);
        let results = self.db.batch(stmts.list).await?;
        let changed =
            |r: &worker::D1Result| r.meta().ok().flatten().and_then(|m| m.changes).unwrap_or(0);
        let written = results.last().map(changed).unwrap_or(0);
        if written != parts.len() {
            // All or nothing: none was written.
            return Ok(None);
        }
        let mut rows = RowsWritten::default();
        for (r, kind) in results.iter().zip(&stmts.kinds) {
            let n = r.meta()?.and_then(|m| m.rows_written).unwrap_or(0) as u64;
            *match kind {
                Table::Usage => &mut rows.usage,
                Table::Sessions => &mut rows.sessions,
                Table::Markers => &mut rows.markers,
                Table::Other => &mut rows.other,
            } += n;
        }
        Ok(Some(rows))
    }
}
