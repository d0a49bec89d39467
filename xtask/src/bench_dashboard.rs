//! `cargo xtask bench-dashboard [--devs N] [--days D] [--runs R] [--after-only] [--hold]`: the
//! dashboard at scale. Starts the local stack, fills its D1 with what the
//! rollup would have written for a team of N developers over D days (by
//! default 200 and 365: about 10 M requests) — one SQL statement per table,
//! run by D1 itself, so the rows are exactly those of the real schema and
//! keys — then times every page and its JSON/CSV export R times for the
//! default range (30 days) and for the whole year, before and after the
//! hourly cron has compacted the settled days into `usage_d`, and prints
//! p50/p95 of both.
//! Needs the Worker built (`cargo xtask build-worker`).
//!
//! The team: developers work weekdays, 8 hours from a start hour of their
//! own, in one of 20 projects a day; each quarter hour has a Sonnet row and
//! every other one an Opus row too (about 1.5 rows per working quarter, 4
//! requests a row); four sessions a day each. The team's zone is
//! America/St_Johns (−03:30, DST), the costliest kind of range: three offset
//! runs a year.

use std::time::Instant;

use tally_e2e::{form_escape, now_ms, Stack};

use crate::Result;

const DAY_MS: i64 = 86_400_000;

struct Opts {
    devs: i64,
    days: i64,
    runs: usize,
    /// Only the pages after compaction (a quicker profile run).
    after_only: bool,
    hold: bool,
}

fn parse(args: &[String]) -> Result<Opts> {
    let mut o = Opts {
        devs: 200,
        days: 365,
        runs: 10,
        after_only: false,
        hold: false,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut num = |name: &str| -> Result<i64> {
            it.next()
                .and_then(|v| v.parse().ok())
                .filter(|n: &i64| *n > 0)
                .ok_or_else(|| format!("{name} takes a positive number"))
        };
        match a.as_str() {
            "--devs" => o.devs = num("--devs")?,
            "--days" => o.days = num("--days")?,
            "--runs" => o.runs = num("--runs")? as usize,
            "--after-only" => o.after_only = true,
            "--hold" => o.hold = true,
            other => return Err(format!("bench-dashboard: unknown argument {other}")),
        }
    }
    Ok(o)
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// The statements that write the year: developers, usage rows, sessions.
/// Small recursive CTEs cross-joined; weekday of unix day `n` is
/// `(n + 3) % 7` with Monday 0.
fn fill_sql(team: &str, devs: i64, first_day: i64, days: i64) -> Vec<String> {
    let ranges = format!(
        "WITH RECURSIVE d(n) AS (SELECT {first_day} UNION ALL SELECT n + 1 FROM d WHERE n < {last}), \
         v(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM v WHERE n < {maxdev}), \
         q(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM q WHERE n < 31), \
         m(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM m WHERE n < 1), \
         s(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM s WHERE n < 3) ",
        last = first_day + days - 1,
        maxdev = devs - 1,
    );
    vec![
        format!(
            "WITH RECURSIVE v(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM v WHERE n < {}) \
             INSERT INTO developers (team_id, id, name, created_at) \
             SELECT '{team}', printf('dev-%03d', n), printf('Developer %03d', n), 0 FROM v",
            devs - 1
        ),
        // A developer's day starts at 06:00–15:00 UTC; quarter q of the
        // working day is unix quarter day*96 + start*4 + q.
        format!(
            "{ranges} INSERT INTO usage_q (team_id, quarter, developer_id, project, branch, model, agent, requests, unpriced_requests, \
             input_tokens, output_tokens, cache_write_5m_tokens, cache_write_1h_tokens, cache_read_tokens, cost_micro_usd, cost_pico_usd) \
             SELECT '{team}', d.n * 96 + (6 + v.n % 10) * 4 + q.n, printf('dev-%03d', v.n), printf('proj-%02d', (v.n + d.n) % 20), '', \
             CASE m.n WHEN 0 THEN 'claude-sonnet-4-5' ELSE 'claude-opus-4-5' END, 'claude-code', \
             3 + (d.n * 7 + v.n * 13 + q.n) % 3, 0, \
             2000 + (d.n * 31 + v.n * 17 + q.n * 5) % 1000, 3000 + (v.n * 11 + q.n) % 2000, 5000, 0, 200000 + (d.n + v.n + q.n) % 50000, \
             70000 + (d.n * 131 + v.n * 71 + q.n * 17 + m.n) % 40000, (d.n * 7919 + v.n * 104729 + q.n) % 1000000 \
             FROM d, v, q, m WHERE (d.n + 3) % 7 < 5 AND (m.n = 0 OR (q.n + v.n) % 2 = 0)"
        ),
        format!(
            "{ranges} INSERT INTO sessions (team_id, session, developer_id, project, agent, start_ms, end_ms, requests, cost_micro_usd, cost_pico_usd, modes) \
             SELECT '{team}', printf('s-%03d-%d-%d', v.n, d.n, s.n), printf('dev-%03d', v.n), printf('proj-%02d', (v.n + d.n) % 20), 'claude-code', \
             d.n * {DAY_MS} + (6 + v.n % 10) * 3600000 + s.n * 7200000, d.n * {DAY_MS} + (6 + v.n % 10) * 3600000 + s.n * 7200000 + 6000000 + (d.n * v.n) % 1000000, \
             40 + (d.n + v.n * 3 + s.n) % 20, 800000 + (d.n * 17 + v.n * 29 + s.n) % 400000, 0, 1 \
             FROM d, v, s WHERE (d.n + 3) % 7 < 5"
        ),
    ]
}

pub fn bench_dashboard(args: &[String]) -> Result<()> {
    let o = parse(args)?;
    let mut stack = Stack::start();
    let team = stack.bootstrap("Bench", "owner@bench.test");
    let mut owner = stack.sign_in(&team.signin_path);
    let r = owner
        .agent
        .post(&stack.url("/settings/timezone"))
        .set("Cookie", &owner.cookie)
        .set("Content-Type", "application/x-www-form-urlencoded")
        .send_string(&format!(
            "csrf={}&timezone=America%2FSt_Johns",
            form_escape(&owner.csrf)
        ))
        .map_err(|e| format!("setting the zone: {e}"))?;
    if r.status() != 303 {
        return Err(format!("setting the zone: {}", r.status()));
    }
    // The year ends yesterday (UTC), so the default range holds 29–30 days of it.
    let today = now_ms().div_euclid(DAY_MS);
    let first_day = today - o.days;
    let t = Instant::now();
    for sql in fill_sql(&team.team_id, o.devs, first_day, o.days) {
        stack.d1(&sql);
    }
    let counts = stack.d1(&format!(
        "SELECT (SELECT COUNT(*) FROM usage_q WHERE team_id = '{0}') AS usage_rows, \
         (SELECT SUM(requests) FROM usage_q WHERE team_id = '{0}') AS requests, \
         (SELECT COUNT(*) FROM sessions WHERE team_id = '{0}') AS sessions",
        team.team_id
    ));
    eprintln!(
        "bench-dashboard: {} developers × {} days: {} usage_q rows ({} requests), {} sessions, written in {:.1} s",
        o.devs,
        o.days,
        counts[0]["usage_rows"],
        counts[0]["requests"],
        counts[0]["sessions"],
        t.elapsed().as_secs_f64()
    );
    let year = format!(
        "from={}&to={}",
        tally_core::time::utc_date(first_day * DAY_MS),
        tally_core::time::utc_date((today - 1) * DAY_MS)
    );
    let pages = ["/", "/models", "/developers", "/projects", "/sessions"];
    let measure = |owner: &tally_e2e::WebClient| -> Result<Vec<(f64, f64)>> {
        let mut out = Vec::new();
        for range in ["default (30 d)", "one year"] {
            for page in pages {
                for format in ["html", "json", "csv"] {
                    let mut q = Vec::new();
                    if range == "one year" {
                        q.push(year.clone());
                    }
                    if format != "html" {
                        q.push(format!("format={format}"));
                    }
                    let path = if q.is_empty() {
                        page.to_string()
                    } else {
                        format!("{page}?{}", q.join("&"))
                    };
                    let mut ms = Vec::with_capacity(o.runs);
                    for i in 0..o.runs + 1 {
                        let t = Instant::now();
                        let r = owner.get(&path).map_err(|e| format!("GET {path}: {e}"))?;
                        let body = r.into_string().map_err(|e| e.to_string())?;
                        if body.is_empty() {
                            return Err(format!("GET {path}: empty body"));
                        }
                        // One warm-up request (the isolate, D1's page cache).
                        if i >= 1 {
                            ms.push(t.elapsed().as_secs_f64() * 1000.0);
                        }
                    }
                    ms.sort_by(|a, b| a.total_cmp(b));
                    out.push((pct(&ms, 0.5), pct(&ms, 0.95)));
                }
            }
        }
        Ok(out)
    };
    let before = if o.after_only {
        vec![(f64::NAN, f64::NAN); 2 * pages.len() * 3]
    } else {
        measure(&owner)?
    };
    // The hourly cron compacts settled days into usage_d, a bounded number
    // per invocation: call it until the watermark stops moving.
    let t = Instant::now();
    let mut watermark = serde_json::Value::Null;
    loop {
        stack.cron("0 * * * *", now_ms());
        let w = stack.d1(&format!(
            "SELECT compacted_through_day AS d FROM teams WHERE id = '{}'",
            team.team_id
        ))[0]["d"]
            .clone();
        if w == watermark {
            break;
        }
        watermark = w;
    }
    let rows = stack.d1(&format!(
        "SELECT (SELECT COUNT(*) FROM usage_d WHERE team_id = '{0}') AS usage_d, \
         (SELECT COUNT(*) FROM usage_dp WHERE team_id = '{0}') AS usage_dp, \
         (SELECT COUNT(*) FROM usage_m WHERE team_id = '{0}') AS usage_m, \
         (SELECT COUNT(*) FROM usage_md WHERE team_id = '{0}') AS usage_md",
        team.team_id
    ));
    eprintln!(
        "bench-dashboard: compacted through day {watermark} (today {today}) into {} usage_d, {} usage_dp, {} usage_m and {} usage_md rows in {:.1} s",
        rows[0]["usage_d"],
        rows[0]["usage_dp"],
        rows[0]["usage_m"],
        rows[0]["usage_md"],
        t.elapsed().as_secs_f64()
    );
    // What compaction wrote as D1 counts it (indexes included), from the
    // hourly runs' own summaries.
    let written = stack.d1(
        "SELECT COALESCE(SUM(json_extract(details, '$.compacted.rows_written')), 0) AS n, \
         COALESCE(SUM(json_extract(details, '$.compacted.days')), 0) AS days FROM cron_runs",
    );
    eprintln!(
        "bench-dashboard: compaction wrote {} D1 rows for {} team-days ({:.2} per developer × project × day)",
        written[0]["n"],
        written[0]["days"],
        written[0]["n"].as_f64().unwrap_or(0.0) / rows[0]["usage_dp"].as_f64().unwrap_or(1.0).max(1.0)
    );

    // Storage per developer-year: the local D1 file(s) after the year and
    // its compaction (SCALE.md).
    let bytes: u64 = stack
        .d1_files()
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    eprintln!(
        "bench-dashboard: D1 file {:.1} MB, {:.2} MB per developer",
        bytes as f64 / 1e6,
        bytes as f64 / 1e6 / o.devs as f64
    );
    if o.hold {
        // For looking into one page by hand: the stack stays up with the
        // year in it until the named file exists.
        let release = stack.dir.path().join("release");
        eprintln!(
            "bench-dashboard: holding. base {} cookie '{}' team {} state {} (touch {} to go on)",
            stack.base,
            owner.cookie,
            team.team_id,
            stack.dir.path().join("state").display(),
            release.display()
        );
        while !release.exists() {
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
    }
    let after = measure(&owner)?;
    // Production D1 keeps its database checkpointed and warm; the local one
    // has just taken millions of rows from other processes (`wrangler d1
    // execute`) and the compaction. A restart on the same state measures the
    // read path against a settled database, as a deploy would find it.
    stack.restart();
    owner.base = stack.base.clone();
    let restarted = measure(&owner)?;
    println!("| page | range | format | before p50 / p95 ms | after p50 / p95 ms | after, restarted p50 / p95 ms |\n|---|---|---|---|---|---|");
    let mut n = 0;
    for range in ["default (30 d)", "one year"] {
        for page in pages {
            for format in ["html", "json", "csv"] {
                println!(
                    "| {page} | {range} | {format} | {:.0} / {:.0} | {:.0} / {:.0} | {:.0} / {:.0} |",
                    before[n].0,
                    before[n].1,
                    after[n].0,
                    after[n].1,
                    restarted[n].0,
                    restarted[n].1
                );
                n += 1;
            }
        }
    }
    Ok(())
}
