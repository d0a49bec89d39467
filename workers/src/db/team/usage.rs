//! The aggregates: a queue part written at most once, and the sums the
//! dashboard reads (as text, so JavaScript never rounds them).

use tally_core::time::{DAY_MS, QUARTER_MS};
use worker::Result;

use super::super::rows::*;
use super::super::{all, all_json, first, i, t, Arg, PartToApply};
use super::TeamDb;

/// Quarters in a UTC day: `usage_d` rows are `quarter / QUARTERS_PER_DAY`.
pub(crate) const QUARTERS_PER_DAY: i64 = DAY_MS / QUARTER_MS;

/// The whole UTC days inside quarters `[from_q, to_q)`: `[first, end)`,
/// empty (`end <= first`) when the range holds none. Whatever of the range is
/// outside them is read from quarters, so a local day cut anywhere on a
/// quarter boundary is exact.
pub(crate) fn whole_days(from_q: i64, to_q: i64) -> (i64, i64) {
    (
        from_q.div_euclid(QUARTERS_PER_DAY) + i64::from(from_q.rem_euclid(QUARTERS_PER_DAY) != 0),
        to_q.div_euclid(QUARTERS_PER_DAY),
    )
}

/// Arguments `?2..?6` of `usage_in_range!`.
pub(crate) fn range_args(from_q: i64, to_q: i64) -> Vec<Arg> {
    let (first, end) = whole_days(from_q, to_q);
    vec![i(from_q), i(to_q), i(first), i(end), i(QUARTERS_PER_DAY)]
}

/// `TeamDb::by_developer`'s statement.
const BY_DEVELOPER: &str = concat!(
    "WITH RECURSIVE ", watermark_cte!(), ", \
     devs(id) AS (SELECT (SELECT MIN(developer_id) FROM usage_dp WHERE team_id = ?1) \
       UNION ALL SELECT (SELECT MIN(developer_id) FROM usage_dp WHERE team_id = ?1 AND developer_id > devs.id) FROM devs WHERE devs.id IS NOT NULL), \
     days AS MATERIALIZED (SELECT id AS developer_id, (SELECT json_array(SUM(requests), SUM(input_tokens), SUM(output_tokens), SUM(cache_write_5m_tokens + cache_write_1h_tokens), SUM(cache_read_tokens), SUM(cost_micro_usd), SUM(cost_pico_usd), MAX(last_quarter)) \
       FROM usage_dp WHERE team_id = ?1 AND developer_id = devs.id AND day >= ?4 AND day < (SELECT b FROM w)) AS s FROM devs WHERE id IS NOT NULL), \
     r AS (",
    edge_quarters!(
        "developer_id, requests, input_tokens, output_tokens, cache_write_5m_tokens + cache_write_1h_tokens AS cache_write_tokens, cache_read_tokens, cost_micro_usd, cost_pico_usd, quarter AS last_q",
        "UNION ALL SELECT developer_id, json_extract(s, '$[0]'), json_extract(s, '$[1]'), json_extract(s, '$[2]'), json_extract(s, '$[3]'), json_extract(s, '$[4]'), json_extract(s, '$[5]'), json_extract(s, '$[6]'), json_extract(s, '$[7]') FROM days WHERE json_extract(s, '$[0]') IS NOT NULL"
    ),
    ") SELECT g.key, COALESCE(d.name, g.key) AS label, g.requests, g.input_tokens, g.output_tokens, g.cache_write_tokens, g.cache_read_tokens, g.cost_micro_usd, g.cost_pico_usd, g.last_quarter \
     FROM (SELECT developer_id AS key, CAST(SUM(requests) AS TEXT) AS requests, CAST(SUM(input_tokens) AS TEXT) AS input_tokens, CAST(SUM(output_tokens) AS TEXT) AS output_tokens, CAST(SUM(cache_write_tokens) AS TEXT) AS cache_write_tokens, CAST(SUM(cache_read_tokens) AS TEXT) AS cache_read_tokens, CAST(SUM(cost_micro_usd) AS TEXT) AS cost_micro_usd, CAST(SUM(cost_pico_usd) AS TEXT) AS cost_pico_usd, MAX(last_q) AS last_quarter, SUM(cost_micro_usd) + SUM(cost_pico_usd) / 1000000 AS spent FROM r GROUP BY developer_id) g \
     LEFT JOIN developers d ON d.team_id = ?1 AND d.id = g.key ORDER BY g.spent DESC"
);

/// Sessions a list holds at most (`TeamDb::sessions_in`).
pub(crate) const SESSIONS_LISTED: usize = 1000;

/// The largest value that at least `k` sessions are known to reach, from
/// the `session_ranks` of some days: each day's `[rank, value]` pairs say
/// "`rank` sessions that started this day had at least `value`". Days count
/// disjoint sessions, so their counts at a value add up. None when the days
/// together do not vouch for `k` sessions.
pub(crate) fn session_floor(days: &[Vec<(i64, i64)>], k: usize) -> Option<i64> {
    let mut marks: Vec<(i64, usize, i64)> = days
        .iter()
        .enumerate()
        .flat_map(|(d, ranks)| ranks.iter().map(move |&(rank, value)| (value, d, rank)))
        .collect();
    marks.sort_unstable_by_key(|m| std::cmp::Reverse(m.0));
    let mut best = vec![0i64; days.len()];
    let mut vouched = 0i64;
    for (value, d, rank) in marks {
        if rank > best[d] {
            vouched += rank - best[d];
            best[d] = rank;
        }
        if vouched >= k as i64 {
            return Some(value);
        }
    }
    None
}

impl TeamDb {
    /// One queue part of a batch, applied at most once: the merged path of
    /// one part (`apply_parts`), whose guard with a single marker reads "no
    /// marker of this batch for this part, and none from a different split",
    /// with the part's marker written last in the same D1 transaction. A
    /// resend whose rollup or split differs (mode, prices or settings changed
    /// in between) therefore changes nothing.
    pub async fn apply_part(&self, p: &PartToApply<'_>, now: i64) -> Result<Applied> {
        Ok(
            match self.apply_parts(std::slice::from_ref(p), now).await? {
                Some(rows_written) => Applied::Written { rows_written },
                None => Applied::Duplicate,
            },
        )
    }

    /// Copies the next UTC day of `usage_q` at or before `last_day` into
    /// `usage_d` (by key), `usage_dp` (by developer and project), `usage_m`
    /// (by quarter and model) and `usage_md` (by model), ranks the sessions
    /// that started that day (`session_ranks`) and advances the watermark to
    /// it, in one D1 transaction guarded by the watermark read here (a
    /// doubled cron changes nothing).
    /// Days without usage are skipped: a late event for one of them lands in
    /// `usage_d` through the consumer's guarded upsert, which is what
    /// compacting it would have produced. Returns the day and the D1 rows the
    /// transaction wrote (its own `meta`), or None when the team is caught up.
    pub async fn compact_next_day(&self, last_day: i64) -> Result<Option<(i64, u64)>> {
        #[derive(serde::Deserialize)]
        struct Next {
            watermark: Option<i64>,
            next_quarter: Option<i64>,
        }
        let Some(next) = first::<Next>(self.stmt(
            "SELECT compacted_through_day AS watermark, (SELECT MIN(quarter) FROM usage_q WHERE team_id = ?1 AND quarter >= (COALESCE(t.compacted_through_day, -1) + 1) * ?2) AS next_quarter FROM teams t WHERE id = ?1",
            vec![i(QUARTERS_PER_DAY)],
        )?)
        .await?
        else {
            return Ok(None);
        };
        let Some(next_quarter) = next.next_quarter else {
            return Ok(None);
        };
        let day = next_quarter.div_euclid(QUARTERS_PER_DAY).min(last_day);
        let seen = next.watermark.unwrap_or(-1);
        if day <= seen {
            return Ok(None);
        }
        let results = self
            .db
            .batch(vec![
                self.stmt(
                    "INSERT INTO usage_d (team_id, day, developer_id, project, branch, model, agent, requests, unpriced_requests, input_tokens, output_tokens, cache_write_5m_tokens, cache_write_1h_tokens, cache_read_tokens, cost_micro_usd, cost_pico_usd, last_quarter) \
                     SELECT ?1, ?2, developer_id, project, branch, model, agent, SUM(requests), SUM(unpriced_requests), SUM(input_tokens), SUM(output_tokens), SUM(cache_write_5m_tokens), SUM(cache_write_1h_tokens), SUM(cache_read_tokens), \
                     SUM(cost_micro_usd) + SUM(cost_pico_usd) / 1000000, SUM(cost_pico_usd) % 1000000, MAX(quarter) \
                     FROM usage_q WHERE team_id = ?1 AND quarter >= ?2 * ?4 AND quarter < (?2 + 1) * ?4 \
                     AND COALESCE((SELECT compacted_through_day FROM teams WHERE id = ?1), -1) = ?3 \
                     GROUP BY developer_id, project, branch, model, agent",
                    vec![i(day), i(seen), i(QUARTERS_PER_DAY)],
                )?,
                // Days per developer and project, for the pages that group by them.
                self.stmt(
                    "INSERT INTO usage_dp (team_id, day, developer_id, project, requests, unpriced_requests, input_tokens, output_tokens, cache_write_5m_tokens, cache_write_1h_tokens, cache_read_tokens, cost_micro_usd, cost_pico_usd, last_quarter) \
                     SELECT ?1, ?2, developer_id, project, SUM(requests), SUM(unpriced_requests), SUM(input_tokens), SUM(output_tokens), SUM(cache_write_5m_tokens), SUM(cache_write_1h_tokens), SUM(cache_read_tokens), \
                     SUM(cost_micro_usd) + SUM(cost_pico_usd) / 1000000, SUM(cost_pico_usd) % 1000000, MAX(quarter) \
                     FROM usage_q WHERE team_id = ?1 AND quarter >= ?2 * ?4 AND quarter < (?2 + 1) * ?4 \
                     AND COALESCE((SELECT compacted_through_day FROM teams WHERE id = ?1), -1) = ?3 \
                     GROUP BY developer_id, project",
                    vec![i(day), i(seen), i(QUARTERS_PER_DAY)],
                )?,
                // The team's quarters by model, for charts and model totals.
                self.stmt(
                    "INSERT INTO usage_m (team_id, quarter, model, requests, unpriced_requests, input_tokens, output_tokens, cache_write_5m_tokens, cache_write_1h_tokens, cache_read_tokens, cost_micro_usd, cost_pico_usd) \
                     SELECT ?1, quarter, model, SUM(requests), SUM(unpriced_requests), SUM(input_tokens), SUM(output_tokens), SUM(cache_write_5m_tokens), SUM(cache_write_1h_tokens), SUM(cache_read_tokens), \
                     SUM(cost_micro_usd) + SUM(cost_pico_usd) / 1000000, SUM(cost_pico_usd) % 1000000 \
                     FROM usage_q WHERE team_id = ?1 AND quarter >= ?2 * ?4 AND quarter < (?2 + 1) * ?4 \
                     AND COALESCE((SELECT compacted_through_day FROM teams WHERE id = ?1), -1) = ?3 \
                     GROUP BY quarter, model",
                    vec![i(day), i(seen), i(QUARTERS_PER_DAY)],
                )?,
                // And the day by model, for the chart over long ranges.
                self.stmt(
                    "INSERT INTO usage_md (team_id, day, model, requests, unpriced_requests, input_tokens, output_tokens, cache_write_5m_tokens, cache_write_1h_tokens, cache_read_tokens, cost_micro_usd, cost_pico_usd) \
                     SELECT ?1, ?2, model, SUM(requests), SUM(unpriced_requests), SUM(input_tokens), SUM(output_tokens), SUM(cache_write_5m_tokens), SUM(cache_write_1h_tokens), SUM(cache_read_tokens), \
                     SUM(cost_micro_usd) + SUM(cost_pico_usd) / 1000000, SUM(cost_pico_usd) % 1000000 \
                     FROM usage_q WHERE team_id = ?1 AND quarter >= ?2 * ?4 AND quarter < (?2 + 1) * ?4 \
                     AND COALESCE((SELECT compacted_through_day FROM teams WHERE id = ?1), -1) = ?3 \
                     GROUP BY model",
                    vec![i(day), i(seen), i(QUARTERS_PER_DAY)],
                )?,
                // The day's sessions at a few ranks of cost and duration,
                // counted by the day they started (`session_floor`).
                self.stmt(
                    "INSERT OR REPLACE INTO session_ranks (team_id, day, cost_ranks, span_ranks) \
                     SELECT ?1, ?2, json_group_array(json_array(rc, c)) FILTER (WHERE rc IN (1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 70, 100, 150, 200, 300, 500, 700, 1000)), \
                     json_group_array(json_array(rp, p)) FILTER (WHERE rp IN (1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 70, 100, 150, 200, 300, 500, 700, 1000)) \
                     FROM (SELECT cost_micro_usd AS c, end_ms - start_ms AS p, row_number() OVER (ORDER BY cost_micro_usd DESC) AS rc, row_number() OVER (ORDER BY end_ms - start_ms DESC) AS rp \
                     FROM sessions WHERE team_id = ?1 AND start_ms >= ?2 * ?4 AND start_ms < (?2 + 1) * ?4) \
                     WHERE COALESCE((SELECT compacted_through_day FROM teams WHERE id = ?1), -1) = ?3 \
                     HAVING count(*) > 0",
                    vec![i(day), i(seen), i(DAY_MS)],
                )?,
                self.stmt(
                    "UPDATE teams SET compacted_through_day = ?2 WHERE id = ?1 AND COALESCE(compacted_through_day, -1) = ?3",
                    vec![i(day), i(seen)],
                )?,
            ])
            .await?;
        let rows_written = results
            .iter()
            .map(|r| {
                r.meta()
                    .ok()
                    .flatten()
                    .and_then(|m| m.rows_written)
                    .unwrap_or(0) as u64
            })
            .sum();
        Ok((results.last().map(super::changed).unwrap_or(0) > 0).then_some((day, rows_written)))
    }

    pub async fn totals_by_model(&self, from_q: i64, to_q: i64) -> Result<Vec<ModelTotals>> {
        let mut rows: Vec<ModelTotals> = all(self.stmt(
            concat!("SELECT model, CAST(SUM(requests) AS TEXT) AS requests, CAST(SUM(unpriced_requests) AS TEXT) AS unpriced_requests, CAST(SUM(input_tokens) AS TEXT) AS input_tokens, CAST(SUM(output_tokens) AS TEXT) AS output_tokens, CAST(SUM(cache_write_5m_tokens) AS TEXT) AS cache_write_5m_tokens, CAST(SUM(cache_write_1h_tokens) AS TEXT) AS cache_write_1h_tokens, CAST(SUM(cache_read_tokens) AS TEXT) AS cache_read_tokens, CAST(SUM(cost_micro_usd) AS TEXT) AS cost_micro_usd, CAST(SUM(cost_pico_usd) AS TEXT) AS cost_pico_usd FROM ", models_in_range!(), " GROUP BY model ORDER BY SUM(cost_micro_usd) + SUM(cost_pico_usd) / 1000000 DESC, model"),
            vec![i(from_q), i(to_q), i(QUARTERS_PER_DAY)],
        )?)
        .await?;
        // Normalise the remainder sums and fill the exact total.
        for r in &mut rows {
            let c = r.cost();
            r.set_cost(c);
        }
        Ok(rows)
    }

    /// Cost (and the other counters) per local day and model over `runs`
    /// (`Range::offset_runs`), one row per day and model (two for a day cut
    /// by a DST change), packed into one JSON text (`all_json`).
    ///
    /// Below the compaction watermark a run's whole UTC days come from
    /// `usage_md` (one row per day and model) and go to the local day of the
    /// day's first quarter, or of its last when the zone's day boundary
    /// falls in the day's first half; the quarters on the short side of that
    /// boundary, at most 48 a day and usually evening hours, are read from
    /// `usage_m` and moved (subtracted from that local day, added to their
    /// own). The run's partial UTC days at its edges come from `usage_m`,
    /// and everything above the watermark from `usage_q`, bucketed by the
    /// run's offset. Every local day is thus exact in every zone while a year
    /// reads ~520 day rows and the few boundary quarters instead of ~34,000
    /// quarter rows for 200 developers. D1 allows five terms in a compound
    /// SELECT, hence the edges in their own CTE and the move as one term with
    /// two signs. The CASTs: D1 binds numbers as JavaScript numbers, i.e.
    /// REALs.
    pub async fn daily_cost_by_model(&self, runs: &[(i64, i64, i64)]) -> Result<Vec<DayModelCost>> {
        self.daily_cost_of_model(runs, "").await
    }

    /// `daily_cost_by_model` narrowed to one model ('' for all of them).
    pub(crate) async fn daily_cost_of_model(
        &self,
        runs: &[(i64, i64, i64)],
        model: &str,
    ) -> Result<Vec<DayModelCost>> {
        macro_rules! counters {
            ($u:literal) => {
                concat!(
                    $u,
                    ".requests, ",
                    $u,
                    ".unpriced_requests, ",
                    $u,
                    ".input_tokens, ",
                    $u,
                    ".output_tokens, ",
                    $u,
                    ".cache_write_5m_tokens, ",
                    $u,
                    ".cache_write_1h_tokens, ",
                    $u,
                    ".cache_read_tokens, ",
                    $u,
                    ".cost_micro_usd, ",
                    $u,
                    ".cost_pico_usd"
                )
            };
        }
        let mut rows: Vec<DayModelCost> = all_json(self.stmt(
            concat!(
                "WITH RECURSIVE n AS (SELECT CAST(?3 AS INTEGER) AS q), \
                 w AS (SELECT COALESCE((SELECT compacted_through_day FROM teams WHERE id = ?1) + 1, 0) * (SELECT q FROM n) AS b), \
                 r AS (SELECT CAST(json_extract(value, '$[0]') AS INTEGER) AS a, CAST(json_extract(value, '$[1]') AS INTEGER) AS z, CAST(json_extract(value, '$[2]') AS INTEGER) AS off FROM json_each(?2)), \
                 c0 AS (SELECT a, MIN(z, (SELECT b FROM w)) AS c, off, (off + 10 * (SELECT q FROM n)) / (SELECT q FROM n) - 10 AS k, ((off % (SELECT q FROM n)) + (SELECT q FROM n)) % (SELECT q FROM n) AS s FROM r), \
                 c1 AS (SELECT a, c, off, k, s, (a + (SELECT q FROM n) - 1) / (SELECT q FROM n) AS da, c / (SELECT q FROM n) AS dz FROM c0 WHERE a < c), \
                 g AS (SELECT a, c, off, da, dz, \
                   CASE WHEN da < dz THEN da * (SELECT q FROM n) ELSE c END AS e1, CASE WHEN da < dz THEN dz * (SELECT q FROM n) ELSE c END AS e2, \
                   CASE WHEN s = 0 THEN 0 WHEN s * 2 <= (SELECT q FROM n) THEN (SELECT q FROM n) - s ELSE 0 END AS lo, \
                   CASE WHEN s = 0 THEN 0 WHEN s * 2 <= (SELECT q FROM n) THEN (SELECT q FROM n) ELSE (SELECT q FROM n) - s END AS hi, \
                   k + (s * 2 > (SELECT q FROM n)) AS shift FROM c1), \
                 dd AS (SELECT off, lo, hi, shift, da AS d, dz FROM g WHERE da < dz AND lo < hi UNION ALL SELECT off, lo, hi, shift, d + 1, dz FROM dd WHERE d + 1 < dz), \
                 e AS (SELECT a AS lo, e1 AS hi, off FROM g UNION ALL SELECT e2, c, off FROM g), \
                 x AS (\
                 SELECT (u.quarter + e.off) / (SELECT q FROM n) AS day, u.model, 1 AS sg, ", counters!("u"), " FROM e CROSS JOIN usage_m u \
                   WHERE u.team_id = ?1 AND u.quarter >= e.lo AND u.quarter < e.hi AND (?4 = '' OR u.model = ?4) \
                 UNION ALL SELECT m.day + g.shift, m.model, 1, ", counters!("m"), " FROM g CROSS JOIN usage_md m \
                   WHERE m.team_id = ?1 AND m.day >= g.da AND m.day < g.dz AND (?4 = '' OR m.model = ?4) \
                 UNION ALL SELECT CASE WHEN v.value > 0 THEN (u.quarter + dd.off) / (SELECT q FROM n) ELSE dd.d + dd.shift END, u.model, v.value, ", counters!("u"), " FROM dd CROSS JOIN usage_m u CROSS JOIN json_each('[1,-1]') v \
                   WHERE u.team_id = ?1 AND u.quarter >= dd.d * (SELECT q FROM n) + dd.lo AND u.quarter < dd.d * (SELECT q FROM n) + dd.hi AND (?4 = '' OR u.model = ?4) \
                 UNION ALL SELECT (u.quarter + r.off) / (SELECT q FROM n), u.model, 1, ", counters!("u"), " FROM r CROSS JOIN usage_q u \
                   WHERE u.team_id = ?1 AND u.quarter >= MAX(r.a, (SELECT b FROM w)) AND u.quarter < r.z AND (?4 = '' OR u.model = ?4)), \
                 t AS (SELECT day, model, SUM(sg * requests) AS requests, SUM(sg * unpriced_requests) AS unpriced_requests, SUM(sg * input_tokens) AS input_tokens, SUM(sg * output_tokens) AS output_tokens, \
                   SUM(sg * cache_write_5m_tokens) AS cache_write_5m_tokens, SUM(sg * cache_write_1h_tokens) AS cache_write_1h_tokens, SUM(sg * cache_read_tokens) AS cache_read_tokens, \
                   SUM(sg * cost_micro_usd) AS micro, SUM(sg * cost_pico_usd) AS pico FROM x GROUP BY day, model) \
                 SELECT json_group_array(json_object('day', day, 'model', model, 'cost_micro_usd', micro + (pico - ((pico % 1000000) + 1000000) % 1000000) / 1000000, 'cost_pico_usd', ((pico % 1000000) + 1000000) % 1000000, 'requests', requests, 'unpriced_requests', unpriced_requests, 'input_tokens', input_tokens, 'output_tokens', output_tokens, 'cache_write_5m_tokens', cache_write_5m_tokens, 'cache_write_1h_tokens', cache_write_1h_tokens, 'cache_read_tokens', cache_read_tokens)) AS rows \
                 FROM t WHERE requests <> 0 OR unpriced_requests <> 0 OR input_tokens <> 0 OR output_tokens <> 0 OR cache_write_5m_tokens <> 0 OR cache_write_1h_tokens <> 0 OR cache_read_tokens <> 0 OR micro <> 0 OR pico <> 0"
            ),
            vec![t(serde_json::to_string(runs)?), i(QUARTERS_PER_DAY), t(model)],
        )?)
        .await?;
        rows.sort_by(|a, b| (a.day, &a.model).cmp(&(b.day, &b.model)));
        Ok(rows)
    }

    /// Sums per developer, named after grouping: the join runs once per
    /// developer, not once per stored row. Compacted days are summed per
    /// developer through `usage_dp_developer` (migration 0022): the
    /// developers are walked with one index seek each and each one's days
    /// read as one contiguous run, so nothing of a year's 52,000 rows is
    /// sorted (`projects_in_range!` grouped by developer sorted them all).
    /// The range's edge and recent quarters come from `usage_q`, as there.
    pub async fn by_developer(&self, from_q: i64, to_q: i64) -> Result<Vec<GroupTotals>> {
        all(self.stmt(BY_DEVELOPER, range_args(from_q, to_q))?).await
    }

    /// How many developers have usage in quarters `[from_q, to_q)`.
    pub async fn active_developers(&self, from_q: i64, to_q: i64) -> Result<i64> {
        #[derive(serde::Deserialize)]
        struct N {
            n: i64,
        }
        Ok(first::<N>(self.stmt(
            concat!(
                "SELECT COUNT(DISTINCT developer_id) AS n FROM ",
                projects_in_range!()
            ),
            range_args(from_q, to_q),
        )?)
        .await?
        .map_or(0, |r| r.n))
    }

    pub async fn by_project(&self, from_q: i64, to_q: i64) -> Result<Vec<GroupTotals>> {
        all(self.stmt(
            concat!("SELECT g.key, COALESCE(l.label, '') AS label, g.requests, g.input_tokens, g.output_tokens, g.cache_write_tokens, g.cache_read_tokens, g.cost_micro_usd, g.cost_pico_usd, g.last_quarter FROM (SELECT project AS key, CAST(SUM(requests) AS TEXT) AS requests, CAST(SUM(input_tokens) AS TEXT) AS input_tokens, CAST(SUM(output_tokens) AS TEXT) AS output_tokens, CAST(SUM(cache_write_5m_tokens + cache_write_1h_tokens) AS TEXT) AS cache_write_tokens, CAST(SUM(cache_read_tokens) AS TEXT) AS cache_read_tokens, CAST(SUM(cost_micro_usd) AS TEXT) AS cost_micro_usd, CAST(SUM(cost_pico_usd) AS TEXT) AS cost_pico_usd, MAX(last_q) AS last_quarter, SUM(cost_micro_usd) + SUM(cost_pico_usd) / 1000000 AS spent FROM ", projects_in_range!(), " GROUP BY project) g LEFT JOIN project_labels l ON l.team_id = ?1 AND l.project = g.key ORDER BY g.spent DESC"),
            range_args(from_q, to_q),
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

    /// Sums per (project, branch) over quarters `[from_q, to_q)`, most
    /// expensive first; `project` '' for every project. Named after grouping,
    /// like the other groups.
    pub async fn by_branch(
        &self,
        from_q: i64,
        to_q: i64,
        project: &str,
    ) -> Result<Vec<BranchTotals>> {
        let mut args = range_args(from_q, to_q);
        args.push(t(project));
        all(self.stmt(
            concat!("SELECT g.project, COALESCE(p.label, '') AS project_label, g.branch, COALESCE(l.label, '') AS label, COALESCE(n.name, '') AS name, g.developer_count, g.requests, g.input_tokens, g.output_tokens, g.cache_write_tokens, g.cache_read_tokens, g.cost_micro_usd, g.cost_pico_usd, g.last_quarter FROM (SELECT project, branch, COUNT(DISTINCT developer_id) AS developer_count, CAST(SUM(requests) AS TEXT) AS requests, CAST(SUM(input_tokens) AS TEXT) AS input_tokens, CAST(SUM(output_tokens) AS TEXT) AS output_tokens, CAST(SUM(cache_write_5m_tokens + cache_write_1h_tokens) AS TEXT) AS cache_write_tokens, CAST(SUM(cache_read_tokens) AS TEXT) AS cache_read_tokens, CAST(SUM(cost_micro_usd) AS TEXT) AS cost_micro_usd, CAST(SUM(cost_pico_usd) AS TEXT) AS cost_pico_usd, MAX(last_q) AS last_quarter, SUM(cost_micro_usd) + SUM(cost_pico_usd) / 1000000 AS spent FROM ", usage_in_range!(), " WHERE ?7 = '' OR project = ?7 GROUP BY project, branch) g LEFT JOIN project_labels p ON p.team_id = ?1 AND p.project = g.project LEFT JOIN branch_labels l ON l.team_id = ?1 AND l.project = g.project AND l.branch = g.branch LEFT JOIN branch_names n ON n.team_id = ?1 AND n.project = g.project AND n.branch = g.branch ORDER BY g.spent DESC, g.project, g.branch"),
            args,
        )?)
        .await
    }

    pub async fn set_branch_label(&self, project: &str, branch: &str, label: &str) -> Result<()> {
        self.stmt(
            "INSERT INTO branch_labels (team_id, project, branch, label) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (team_id, project, branch) DO UPDATE SET label = excluded.label",
            vec![t(project), t(branch), t(label)],
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
        developer_id: &str,
        project: &str,
    ) -> Result<Vec<SessionRowOut>> {
        // With no filter, the sort only sees sessions at or above a floor
        // that a thousand of the range's sessions are known to reach
        // (`session_floor`): at a year of 200 developers, 22 ms in D1
        // instead of 55. A filter leaves few sessions to sort anyway.
        let floor = if developer_id.is_empty() && project.is_empty() {
            let (first, end) = (
                from_ms.div_euclid(DAY_MS) + i64::from(from_ms.rem_euclid(DAY_MS) != 0),
                to_ms.div_euclid(DAY_MS),
            );
            let days: Vec<Vec<(i64, i64)>> = if end > first {
                all_json(self.stmt(
                    "SELECT json_group_array(json(CASE WHEN ?4 THEN span_ranks ELSE cost_ranks END)) AS rows FROM session_ranks WHERE team_id = ?1 AND day >= ?2 AND day < ?3",
                    vec![i(first), i(end), i(i64::from(order_by_duration))],
                )?)
                .await?
            } else {
                Vec::new()
            };
            session_floor(&days, SESSIONS_LISTED).unwrap_or(0)
        } else {
            0
        };
        // The thousand keys first (the sorter then carries a key and the
        // sort column, not whole rows: a fifth of the statement at a year),
        // then their rows and names, packed into one JSON text (`all_json`):
        // joining every session of a year before the sort cost twice the
        // time, and an index on time or cost would add rows written to every
        // session upsert.
        let sql = if order_by_duration {
            "SELECT json_group_array(json_object('session', s.session, 'developer_id', s.developer_id, 'developer', COALESCE(d.name, s.developer_id), 'project', s.project, 'agent', s.agent, 'start_ms', s.start_ms, 'end_ms', s.end_ms, 'requests', s.requests, 'cost_micro_usd', s.cost_micro_usd, 'cost_pico_usd', s.cost_pico_usd, 'modes', s.modes)) AS rows FROM (SELECT session FROM sessions WHERE team_id = ?1 AND end_ms - start_ms >= ?6 AND end_ms >= ?2 AND start_ms < ?3 AND (?4 = '' OR developer_id = ?4) AND (?5 = '' OR project = ?5) ORDER BY end_ms - start_ms DESC, session LIMIT 1000) k JOIN sessions s ON s.team_id = ?1 AND s.session = k.session LEFT JOIN developers d ON d.team_id = ?1 AND d.id = s.developer_id"
        } else {
            "SELECT json_group_array(json_object('session', s.session, 'developer_id', s.developer_id, 'developer', COALESCE(d.name, s.developer_id), 'project', s.project, 'agent', s.agent, 'start_ms', s.start_ms, 'end_ms', s.end_ms, 'requests', s.requests, 'cost_micro_usd', s.cost_micro_usd, 'cost_pico_usd', s.cost_pico_usd, 'modes', s.modes)) AS rows FROM (SELECT session FROM sessions WHERE team_id = ?1 AND cost_micro_usd >= ?6 AND end_ms >= ?2 AND start_ms < ?3 AND (?4 = '' OR developer_id = ?4) AND (?5 = '' OR project = ?5) ORDER BY cost_micro_usd DESC, cost_pico_usd DESC, session LIMIT 1000) k JOIN sessions s ON s.team_id = ?1 AND s.session = k.session LEFT JOIN developers d ON d.team_id = ?1 AND d.id = s.developer_id"
        };
        let mut rows: Vec<SessionRowOut> = all_json(self.stmt(
            sql,
            vec![i(from_ms), i(to_ms), t(developer_id), t(project), i(floor)],
        )?)
        .await?;
        if order_by_duration {
            rows.sort_by(|a, b| {
                (b.end_ms - b.start_ms)
                    .cmp(&(a.end_ms - a.start_ms))
                    .then_with(|| a.session.cmp(&b.session))
            });
        } else {
            rows.sort_by(|a, b| {
                (b.cost_micro_usd, b.cost_pico_usd)
                    .cmp(&(a.cost_micro_usd, a.cost_pico_usd))
                    .then_with(|| a.session.cmp(&b.session))
            });
        }
        Ok(rows)
    }

    pub async fn category_hints(&self, from_day: i64, to_day: i64) -> Result<Vec<CategoryRow>> {
        all(self.stmt(
            "SELECT category, task_hint, project_hint, CAST(SUM(requests) AS TEXT) AS requests FROM categories WHERE team_id = ?1 AND day >= ?2 AND day < ?3 GROUP BY category, task_hint, project_hint ORDER BY SUM(requests) DESC LIMIT 500",
            vec![i(from_day), i(to_day)],
        )?)
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tally_core::time::MINUTE_MS;

    /// Quarter of a UTC instant given as unix ms.
    fn q(ms: i64) -> i64 {
        ms.div_euclid(QUARTER_MS)
    }

    #[test]
    fn the_floor_is_the_highest_value_the_days_vouch_for() {
        let one = vec![vec![(1, 100), (2, 90), (3, 80), (5, 50)]];
        assert_eq!(session_floor(&one, 3), Some(80));
        // Rank 5 vouches for 5 sessions at 50, so for 4 as well.
        assert_eq!(session_floor(&one, 4), Some(50));
        assert_eq!(session_floor(&one, 6), None);
        assert_eq!(session_floor(&[], 1), None);
        // Days add up: 100 and 95 are one session each, then 90 is day one's
        // second, 85 day two's second, 70 day two's third.
        let two = vec![vec![(1, 100), (2, 90)], vec![(1, 95), (2, 85), (3, 70)]];
        assert_eq!(session_floor(&two, 1), Some(100));
        assert_eq!(session_floor(&two, 3), Some(90));
        assert_eq!(session_floor(&two, 4), Some(85));
        assert_eq!(session_floor(&two, 5), Some(70));
        assert_eq!(session_floor(&two, 6), None);
    }

    /// Ranks made as compaction makes them (ranks 1, 2, 3, 5, …, 1000 of
    /// each day's values), over random days: at least k sessions always
    /// reach the floor, so the top k are all above it, and the floor is
    /// never below the k-th value by more than the ranks' spacing allows.
    #[test]
    fn at_least_k_sessions_reach_the_floor() {
        const RANKS: [usize; 18] = [
            1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 70, 100, 150, 200, 300, 500, 700, 1000,
        ];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for round in 0..200 {
            let days = 1 + next(40) as usize;
            let mut all = Vec::new();
            let mut ranked = Vec::new();
            for _ in 0..days {
                let n = next(1500) as usize;
                let mut vals: Vec<i64> = (0..n)
                    .map(|_| next(if round % 2 == 0 { 1_000_000 } else { 50 }) as i64)
                    .collect();
                vals.sort_unstable_by_key(|&v| std::cmp::Reverse(v));
                ranked.push(
                    RANKS
                        .iter()
                        .filter(|&&r| r <= n)
                        .map(|&r| (r as i64, vals[r - 1]))
                        .collect::<Vec<_>>(),
                );
                all.extend(vals);
            }
            all.sort_unstable_by_key(|&v| std::cmp::Reverse(v));
            for k in [1, 10, 1000] {
                match session_floor(&ranked, k) {
                    Some(f) => {
                        assert!(all.len() >= k && all[k - 1] >= f, "round {round} k {k}");
                    }
                    None => {
                        // Nothing vouched for k: the days rank fewer than k
                        // sessions in all.
                        let vouched: usize = ranked
                            .iter()
                            .map(|d| d.last().map_or(0, |r| r.0 as usize))
                            .sum();
                        assert!(vouched < k, "round {round} k {k}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_utc_range_is_all_whole_days() {
        // 2026-03-01 .. 2026-03-31 UTC.
        let from = 20513 * DAY_MS;
        assert_eq!(whole_days(q(from), q(from + 30 * DAY_MS)), (20513, 20543));
    }

    #[test]
    fn st_johns_days_leave_a_partial_quarter_edge_at_each_end() {
        // America/St_Johns, -03:30 in January: local 2026-01-10 00:00 is
        // 03:30 UTC, so the range starts 14 quarters into UTC day 20463 and
        // ends 14 quarters into UTC day 20473.
        let from = 20463 * DAY_MS + 210 * MINUTE_MS;
        let to = from + 10 * DAY_MS;
        let (first, end) = whole_days(q(from), q(to));
        assert_eq!((first, end), (20464, 20473));
        // Head and tail from quarters: 82 + 14 quarters, i.e. exactly one
        // local day's worth outside the 9 whole UTC days.
        assert_eq!(first * QUARTERS_PER_DAY - q(from), 82);
        assert_eq!(q(to) - end * QUARTERS_PER_DAY, 14);
    }

    #[test]
    fn kathmandu_days_split_at_a_45_minute_offset() {
        // Asia/Kathmandu, +05:45: local midnight is 18:15 UTC the day before.
        let from = 20463 * DAY_MS + (18 * 60 + 15) * MINUTE_MS;
        let to = from + DAY_MS;
        // One local day holds no whole UTC day: all of it from quarters.
        let (first, end) = whole_days(q(from), q(to));
        assert_eq!((first, end), (20464, 20464));
        let to = from + 2 * DAY_MS;
        let (first, end) = whole_days(q(from), q(to));
        assert_eq!((first, end), (20464, 20465));
        assert_eq!(first * QUARTERS_PER_DAY - q(from), 23);
        assert_eq!(q(to) - end * QUARTERS_PER_DAY, 73);
    }

    #[test]
    fn a_dst_change_inside_the_range_moves_only_the_tail_edge() {
        // America/St_Johns from -03:30 to -02:30 on 2026-03-08: a range from
        // local 2026-03-01 (03:30 UTC) to local 2026-03-15 (02:30 UTC).
        let from = 20513 * DAY_MS + 210 * MINUTE_MS;
        let to = 20527 * DAY_MS + 150 * MINUTE_MS;
        let (first, end) = whole_days(q(from), q(to));
        assert_eq!((first, end), (20514, 20527));
        assert_eq!(first * QUARTERS_PER_DAY - q(from), 82);
        assert_eq!(q(to) - end * QUARTERS_PER_DAY, 10);
    }

    #[test]
    fn a_range_inside_one_utc_day_has_no_whole_day() {
        let from = 20463 * DAY_MS + 15 * MINUTE_MS;
        let (first, end) = whole_days(q(from), q(from + 60 * MINUTE_MS));
        assert!(end <= first);
        assert_eq!(whole_days(0, QUARTERS_PER_DAY), (0, 1));
        assert_eq!(QUARTERS_PER_DAY, 96);
    }
}
