//! Days exact in every time zone: usage is kept per quarter hour, which every
//! UTC offset in use divides, so a local day holds exactly the requests whose
//! timestamps fall on it, in +05:30, +05:45 and −03:30/−02:30 zones and on a
//! 23-hour DST day; changing the team's zone re-buckets without rewriting.

use std::time::Duration;

use tally_core::money::Usd;
use tally_core::time::{parse_date, DAY_MS, HOUR_MS, MINUTE_MS};
use tally_e2e::{batch, off_event, status, Stack, WebClient};

fn at(date: &str, h: i64, m: i64) -> i64 {
    parse_date(date).unwrap() * DAY_MS + h * HOUR_MS + m * MINUTE_MS
}

fn set_zone(c: &WebClient, zone: &str) {
    let r = c
        .agent
        .post(&format!("{}/settings/timezone", c.base))
        .set("Cookie", &c.cookie)
        .send_form(&[("csrf", c.csrf.as_str()), ("timezone", zone)]);
    assert_eq!(status(&r), 303, "{zone}");
    assert_eq!(c.get_json("/api/overview")["timezone"], zone);
}

/// The edge prices each `off_event(n)` on Sonnet 4.5 itself:
/// (100 + n) × $3 + 10 × $15 + 1,000 × $0.30 per million tokens.
fn cost(ns: &[u64]) -> String {
    let micro: u64 = ns.iter().map(|n| 750 + 3 * n).sum();
    Usd::from_pico(u128::from(micro) * 1_000_000).to_string()
}

/// Local day `date` holds exactly the events `ns`: in the API's spend and in
/// the Models CSV export's requests and input tokens.
fn day_holds(c: &WebClient, zone: &str, date: &str, ns: &[u64]) {
    let o = c.get_json(&format!("/api/overview?from={date}&to={date}"));
    assert_eq!(o["spend_range_usd"], cost(ns), "{zone} {date} spend");
    let csv = c
        .get(&format!("/models?from={date}&to={date}&format=csv"))
        .unwrap()
        .into_string()
        .unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    if ns.is_empty() {
        assert_eq!(rows.len(), 0, "{zone} {date}: {csv}");
        return;
    }
    assert_eq!(rows.len(), 1, "{zone} {date}: {csv}");
    let col = |name: &str| rows[0][header.iter().position(|h| *h == name).unwrap()];
    assert_eq!(col("model"), "claude-sonnet-4-5");
    assert_eq!(col("requests"), ns.len().to_string(), "{zone} {date}");
    let input: u64 = ns.iter().map(|n| 100 + n).sum();
    assert_eq!(col("input"), input.to_string(), "{zone} {date}");
}

/// Minutes either side of a local midnight in the three quarter-hour zones
/// (numbered; input tokens are 100 + the number).
fn boundary_events(m: &str) -> Vec<serde_json::Value> {
    vec![
        // Kolkata (+05:30): 10 June starts at 18:30 UTC on the 9th.
        off_event(1, at("2026-06-09", 18, 23), m, 0),
        off_event(2, at("2026-06-09", 18, 37), m, 0),
        off_event(3, at("2026-06-10", 18, 23), m, 0),
        off_event(4, at("2026-06-10", 18, 37), m, 0),
        // Kathmandu (+05:45): 20 June starts at 18:15 UTC on the 19th.
        off_event(11, at("2026-06-19", 18, 8), m, 0),
        off_event(12, at("2026-06-19", 18, 22), m, 0),
        // St. John's: 8 March 2026 starts at 03:30 UTC (−03:30), springs
        // forward at 02:00 local and ends at 02:30 UTC on the 9th (−02:30).
        off_event(21, at("2026-03-08", 3, 23), m, 0),
        off_event(22, at("2026-03-08", 3, 37), m, 0),
        off_event(23, at("2026-03-09", 2, 23), m, 0),
        off_event(24, at("2026-03-09", 2, 37), m, 0),
    ]
}

#[test]
fn local_days_hold_exactly_their_requests_in_quarter_hour_zones() {
    let stack = Stack::start();
    let team = stack.bootstrap("Acme", "owner@acme.test");
    let agent = stack.enroll(&team.install_token);
    let owner = stack.sign_in(&team.signin_path);

    let m = "claude-sonnet-4-5";
    let events = boundary_events(m);
    assert_eq!(
        status(&agent.post(&batch("batch-zones-00000001", events))),
        202
    );
    let dump = || {
        stack.d1("SELECT quarter, developer_id, project, branch, model, agent, requests, input_tokens, cost_micro_usd, cost_pico_usd FROM usage_q ORDER BY quarter")
    };
    let stored = stack.eventually("events applied", Duration::from_secs(30), || {
        let rows = dump();
        let n: i64 = rows.iter().map(|r| r["requests"].as_i64().unwrap()).sum();
        (n == 10).then_some(rows)
    });
    // One row per distinct quarter: the minutes either side of a local
    // midnight never share a bucket.
    assert_eq!(stored.len(), 10);
    assert!(stored.iter().all(|r| r["branch"] == ""));

    set_zone(&owner, "Asia/Kolkata");
    day_holds(&owner, "Asia/Kolkata", "2026-06-09", &[1]);
    day_holds(&owner, "Asia/Kolkata", "2026-06-10", &[2, 3]);
    day_holds(&owner, "Asia/Kolkata", "2026-06-11", &[4]);
    // 18:08 and 18:22 UTC are 23:38 and 23:52 in Kolkata.
    day_holds(&owner, "Asia/Kolkata", "2026-06-19", &[11, 12]);
    day_holds(&owner, "Asia/Kolkata", "2026-06-20", &[]);

    // The same rows, re-bucketed by the new zone.
    set_zone(&owner, "Asia/Kathmandu");
    day_holds(&owner, "Asia/Kathmandu", "2026-06-19", &[11]);
    day_holds(&owner, "Asia/Kathmandu", "2026-06-20", &[12]);
    // 18:23 UTC is 00:08 in Kathmandu: both of Kolkata's minutes are on the 10th.
    day_holds(&owner, "Asia/Kathmandu", "2026-06-09", &[]);
    day_holds(&owner, "Asia/Kathmandu", "2026-06-10", &[1, 2]);
    day_holds(&owner, "Asia/Kathmandu", "2026-06-11", &[3, 4]);

    set_zone(&owner, "America/St_Johns");
    day_holds(&owner, "America/St_Johns", "2026-03-07", &[21]);
    day_holds(&owner, "America/St_Johns", "2026-03-08", &[22, 23]);
    day_holds(&owner, "America/St_Johns", "2026-03-09", &[24]);
    let o = owner.get_json("/api/overview?from=2026-03-07&to=2026-03-09");
    assert_eq!(o["spend_range_usd"], cost(&[21, 22, 23, 24]));

    // Changing the zone rewrote nothing.
    assert_eq!(dump(), stored);
}

/// Local days `from..=to` hold exactly the events `ns` (API spend, Models
/// and Developers CSV).
fn range_holds(c: &WebClient, from: &str, to: &str, ns: &[u64]) {
    let o = c.get_json(&format!("/api/overview?from={from}&to={to}"));
    assert_eq!(o["spend_range_usd"], cost(ns), "{from}..{to} spend");
    let input: u64 = ns.iter().map(|n| 100 + n).sum();
    // The Developers page sums the same range its own way (compacted days
    // per developer through `usage_dp_developer`, edges from quarters).
    for page in ["models", "developers"] {
        let csv = c
            .get(&format!("/{page}?from={from}&to={to}&format=csv"))
            .unwrap()
            .into_string()
            .unwrap();
        let mut lines = csv.lines();
        let header: Vec<&str> = lines.next().unwrap().split(',').collect();
        let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
        assert_eq!(rows.len(), 1, "{page} {from}..{to}: {csv}");
        let col = |name: &str| rows[0][header.iter().position(|h| *h == name).unwrap()];
        assert_eq!(
            col("requests"),
            ns.len().to_string(),
            "{page} {from}..{to}: {csv}"
        );
        assert_eq!(
            col("input"),
            input.to_string(),
            "{page} {from}..{to}: {csv}"
        );
    }
}

/// Compaction copies settled UTC days into `usage_d`; reads take whole UTC
/// days from there and the +05:45 edges from quarters, so every local day and
/// range is the same before and after it; a late event for a compacted day and
/// a resend of an applied batch keep both tables exact.
#[test]
fn compacted_days_read_the_same_in_a_quarter_hour_zone() {
    let stack = Stack::start();
    let team = stack.bootstrap("Acme", "owner@acme.test");
    let agent = stack.enroll(&team.install_token);
    let owner = stack.sign_in(&team.signin_path);
    set_zone(&owner, "Asia/Kathmandu");

    let m = "claude-sonnet-4-5";
    // UTC times; Kathmandu is +05:45, so a local day starts at 18:15 UTC.
    let a = batch(
        "batch-compact-0000000a",
        vec![
            off_event(1, at("2026-06-09", 18, 8), m, 0), // 06-09 23:53 local
            off_event(2, at("2026-06-09", 18, 22), m, 0), // 06-10 00:07
            off_event(3, at("2026-06-10", 12, 0), m, 0), // 06-10 17:45
            off_event(4, at("2026-06-11", 18, 20), m, 0), // 06-12 00:05
            off_event(5, at("2026-06-12", 3, 0), m, 0),  // 06-12 08:45
            off_event(6, at("2026-06-14", 10, 0), m, 0), // 06-14 15:45
        ],
    );
    assert_eq!(status(&agent.post(&a)), 202);
    let applied = |n: i64| {
        stack.eventually("events applied", Duration::from_secs(30), || {
            let rows = stack.d1("SELECT COALESCE(SUM(requests), 0) AS n FROM usage_q");
            (rows[0]["n"].as_i64() == Some(n)).then_some(())
        })
    };
    applied(6);
    let check = |late: &[u64]| {
        let with = |ns: &[u64]| -> Vec<u64> { ns.iter().chain(late).copied().collect() };
        day_holds(&owner, "Asia/Kathmandu", "2026-06-09", &[1]);
        day_holds(&owner, "Asia/Kathmandu", "2026-06-10", &with(&[2, 3]));
        day_holds(&owner, "Asia/Kathmandu", "2026-06-11", &[]);
        day_holds(&owner, "Asia/Kathmandu", "2026-06-12", &[4, 5]);
        day_holds(&owner, "Asia/Kathmandu", "2026-06-14", &[6]);
        // Whole UTC days 06-10 and 06-11 inside, edges of 23 and 73 quarters.
        range_holds(&owner, "2026-06-10", "2026-06-12", &with(&[2, 3, 4, 5]));
        range_holds(
            &owner,
            "2026-06-09",
            "2026-06-14",
            &with(&[1, 2, 3, 4, 5, 6]),
        );
        range_holds(
            &owner,
            "2026-06-01",
            "2026-06-30",
            &with(&[1, 2, 3, 4, 5, 6]),
        );
    };
    check(&[]);
    assert_eq!(stack.d1("SELECT COUNT(*) AS n FROM usage_d")[0]["n"], 0);

    // 16 June 06:00 UTC: days that ended two days before, i.e. through
    // 13 June, are settled; 14 June is not.
    let day = |date: &str| parse_date(date).unwrap();
    let now = at("2026-06-16", 6, 0);
    stack.cron("0 * * * *", now);
    let per_day = || {
        stack.d1("SELECT day, SUM(requests) AS requests, SUM(input_tokens) AS input, SUM(cost_micro_usd) AS micro, SUM(cost_pico_usd) AS pico, MAX(last_quarter) AS last FROM usage_d GROUP BY day ORDER BY day")
    };
    let compacted = per_day();
    let q = |ms: i64| ms / (15 * MINUTE_MS);
    assert_eq!(
        compacted,
        vec![
            serde_json::json!({"day": day("2026-06-09"), "requests": 2, "input": 203, "micro": 1509, "pico": 0, "last": q(at("2026-06-09", 18, 22))}),
            serde_json::json!({"day": day("2026-06-10"), "requests": 1, "input": 103, "micro": 759, "pico": 0, "last": q(at("2026-06-10", 12, 0))}),
            serde_json::json!({"day": day("2026-06-11"), "requests": 1, "input": 104, "micro": 762, "pico": 0, "last": q(at("2026-06-11", 18, 20))}),
            serde_json::json!({"day": day("2026-06-12"), "requests": 1, "input": 105, "micro": 765, "pico": 0, "last": q(at("2026-06-12", 3, 0))}),
        ]
    );
    let watermark = || stack.d1("SELECT compacted_through_day AS d FROM teams")[0]["d"].clone();
    assert_eq!(watermark(), day("2026-06-13"));
    check(&[]);
    // A doubled cron changes nothing.
    stack.cron("0 * * * *", now);
    assert_eq!(per_day(), compacted);
    assert_eq!(watermark(), day("2026-06-13"));

    // A late event for compacted 10 June goes into both tables at once.
    let late = batch(
        "batch-compact-0000late",
        vec![off_event(7, at("2026-06-10", 12, 5), m, 0)],
    );
    assert_eq!(status(&agent.post(&late)), 202);
    applied(7);
    let after_late = per_day();
    assert_eq!(after_late[1]["requests"], 2);
    assert_eq!(after_late[1]["input"], 103 + 107);
    assert_eq!(after_late[1]["micro"], 759 + 771);
    check(&[7]);

    // A resend of the first batch is a duplicate for usage_q and usage_d.
    assert_eq!(status(&agent.post(&a)), 202);
    stack.eventually("resend ignored", Duration::from_secs(30), || {
        (stack
            .log_tail()
            .contains("duplicate batch-compact-0000000a"))
        .then_some(())
    });
    assert_eq!(per_day(), after_late);
    applied(7);
    check(&[7]);

    // The next settled day (14 June) is compacted a day later.
    stack.cron("0 * * * *", now + DAY_MS);
    assert_eq!(watermark(), day("2026-06-14"));
    assert_eq!(per_day().len(), 5);
    check(&[7]);
}

/// The overview chart's dollars per local day (all models) for `from..=to`,
/// read from the page's `data-chart` attribute.
fn chart_days(c: &WebClient, from: &str, to: &str) -> Vec<(String, f64)> {
    let html = c
        .get(&format!("/?from={from}&to={to}"))
        .unwrap()
        .into_string()
        .unwrap();
    let start = html.find("data-chart=\"").expect("chart on the page") + "data-chart=\"".len();
    let raw = &html[start..start + html[start..].find('"').unwrap()];
    let chart: serde_json::Value =
        serde_json::from_str(&raw.replace("&quot;", "\"").replace("&amp;", "&")).unwrap();
    let series = chart["series"].as_array().unwrap();
    chart["x"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, x)| {
            let date = tally_core::time::utc_date(x.as_i64().unwrap() * 1000);
            (date, series.iter().map(|s| s[i].as_f64().unwrap()).sum())
        })
        .collect()
}

/// What the chart shows for a day holding `ns` (each `off_event(n)` on
/// Sonnet): the exact pico-USD as dollars, as the page computes them.
fn dollars(ns: &[u64]) -> f64 {
    let micro: u64 = ns.iter().map(|n| 750 + 3 * n).sum();
    (u128::from(micro) * 1_000_000) as f64 / 1e12
}

/// The chart reads the team's quarters by model (`usage_m`) for compacted
/// days and `usage_q` after them: every local day of +05:30, +05:45 and
/// −03:30/−02:30 (across St. John's spring-forward) is the same before and
/// after compaction, a late event for a compacted day shows once, and a
/// resend of its batch adds nothing.
#[test]
fn chart_days_are_exact_after_compaction_in_every_zone() {
    let stack = Stack::start();
    let team = stack.bootstrap("Acme", "owner@acme.test");
    let agent = stack.enroll(&team.install_token);
    let owner = stack.sign_in(&team.signin_path);

    let m = "claude-sonnet-4-5";
    let events = boundary_events(m);
    let first = batch("batch-mchart-00000001", events);
    assert_eq!(status(&agent.post(&first)), 202);
    let applied = |n: i64| {
        stack.eventually("events applied", Duration::from_secs(30), || {
            let rows = stack.d1("SELECT COALESCE(SUM(requests), 0) AS n FROM usage_q");
            (rows[0]["n"].as_i64() == Some(n)).then_some(())
        })
    };
    applied(10);

    // (zone, range, expected events per local day of the range)
    type Days = Vec<(&'static str, Vec<u64>)>;
    let views = |late: &[u64]| -> Vec<(&'static str, &'static str, &'static str, Days)> {
        let with = |ns: &[u64]| -> Vec<u64> { ns.iter().chain(late).copied().collect() };
        vec![
            (
                "Asia/Kolkata",
                "2026-06-09",
                "2026-06-11",
                vec![
                    ("2026-06-09", vec![1]),
                    ("2026-06-10", vec![2, 3]),
                    ("2026-06-11", vec![4]),
                ],
            ),
            (
                "Asia/Kathmandu",
                "2026-06-18",
                "2026-06-20",
                vec![
                    ("2026-06-18", vec![]),
                    ("2026-06-19", vec![11]),
                    ("2026-06-20", vec![12]),
                ],
            ),
            (
                "America/St_Johns",
                "2026-03-07",
                "2026-03-09",
                vec![
                    ("2026-03-07", vec![21]),
                    ("2026-03-08", with(&[22, 23])),
                    ("2026-03-09", vec![24]),
                ],
            ),
        ]
    };
    let check = |late: &[u64]| -> Vec<Vec<(String, f64)>> {
        views(late)
            .into_iter()
            .map(|(zone, from, to, days)| {
                set_zone(&owner, zone);
                let got = chart_days(&owner, from, to);
                let want: Vec<(String, f64)> = days
                    .iter()
                    .map(|(d, ns)| (d.to_string(), dollars(ns)))
                    .collect();
                assert_eq!(got, want, "{zone} {from}..{to}");
                got
            })
            .collect()
    };
    // The Developers and Projects exports of each view (usage_dp and the
    // edges from quarters after compaction).
    let groups = |late: &[u64]| -> Vec<String> {
        views(late)
            .into_iter()
            .flat_map(|(zone, from, to, _)| {
                set_zone(&owner, zone);
                ["/developers", "/projects"].map(|page| {
                    owner
                        .get(&format!("{page}?from={from}&to={to}&format=csv"))
                        .unwrap()
                        .into_string()
                        .unwrap()
                })
            })
            .collect()
    };
    let before = check(&[]);
    let groups_before = groups(&[]);
    // St. John's 7..9 March: events 21..24 on Sonnet, one developer.
    assert!(
        groups_before[4].contains(&format!(",4,{},", 100 * 4 + 21 + 22 + 23 + 24)),
        "{}",
        groups_before[4]
    );
    assert_eq!(stack.d1("SELECT COUNT(*) AS n FROM usage_m")[0]["n"], 0);

    // 1 July: every day above has settled; the cron compacts them all.
    let now = at("2026-07-01", 6, 0);
    let watermark = || stack.d1("SELECT compacted_through_day AS d FROM teams")[0]["d"].clone();
    let mut seen = serde_json::Value::Null;
    loop {
        stack.cron("0 * * * *", now);
        let w = watermark();
        if w == seen {
            break;
        }
        seen = w;
    }
    assert_eq!(seen, parse_date("2026-06-19").unwrap());
    // One usage_m row per quarter and model, the same sums as usage_q.
    let totals = |table: &str| {
        stack.d1(&format!("SELECT COUNT(DISTINCT quarter) AS quarters, SUM(requests) AS requests, SUM(input_tokens) AS input, SUM(cost_micro_usd) AS micro FROM {table}"))
    };
    assert_eq!(totals("usage_m"), totals("usage_q"));
    assert_eq!(totals("usage_m")[0]["quarters"], 10);
    assert_eq!(check(&[]), before);
    assert_eq!(groups(&[]), groups_before);
    let per_day = |table: &str| {
        stack.d1(&format!("SELECT day, SUM(requests) AS requests, SUM(input_tokens) AS input, SUM(cost_micro_usd) AS micro, MAX(last_quarter) AS last FROM {table} GROUP BY day ORDER BY day"))
    };
    assert_eq!(per_day("usage_dp"), per_day("usage_d"));
    assert_eq!(per_day("usage_dp").len(), 5);
    // usage_md: the same sums by UTC day and model as the quarters.
    let by_day_model = || {
        let sums = "SUM(requests) AS requests, SUM(input_tokens) AS input, SUM(cost_micro_usd) * 1000000 + SUM(cost_pico_usd) AS pico";
        (
            stack.d1(&format!("SELECT day, model, {sums} FROM usage_md GROUP BY day, model ORDER BY day, model")),
            stack.d1(&format!("SELECT quarter / 96 AS day, model, {sums} FROM usage_q GROUP BY quarter / 96, model ORDER BY day, model")),
        )
    };
    let (md, q) = by_day_model();
    assert_eq!(md, q);
    assert_eq!(md.len(), 5);

    // A late event for compacted 8 March (St. John's, 23:59 local after
    // the change) is counted once, in usage_q and usage_m alike.
    let late = batch(
        "batch-mchart-000late1",
        vec![off_event(31, at("2026-03-09", 2, 29), m, 0)],
    );
    assert_eq!(status(&agent.post(&late)), 202);
    applied(11);
    let after_late = check(&[31]);
    assert_eq!(totals("usage_m"), totals("usage_q"));
    let (md, q) = by_day_model();
    assert_eq!(md, q);
    assert_eq!(per_day("usage_dp"), per_day("usage_d"));
    let groups_late = groups(&[31]);
    assert!(
        groups_late[4].contains(&format!(",5,{},", 100 * 5 + 21 + 22 + 23 + 24 + 31)),
        "{}",
        groups_late[4]
    );
    // The resend is a duplicate for every table.
    assert_eq!(status(&agent.post(&late)), 202);
    stack.eventually("resend ignored", Duration::from_secs(30), || {
        (stack.log_tail().contains("duplicate batch-mchart-000late1")).then_some(())
    });
    applied(11);
    assert_eq!(check(&[31]), after_late);
    assert_eq!(totals("usage_m"), totals("usage_q"));
    assert_eq!(groups(&[31]), groups_late);
    assert_eq!(per_day("usage_dp"), per_day("usage_d"));
    let (md, q) = by_day_model();
    assert_eq!(md, q);
}

/// The sessions list is the thousand most expensive (or longest) sessions of
/// the range, exactly, once compaction has ranked the days (`session_ranks`)
/// and the list sorts only the sessions above the floor those ranks vouch
/// for; and still exactly after a late event makes the cheapest session the
/// most expensive one.
#[test]
fn the_sessions_list_is_exact_above_the_ranked_floor() {
    let stack = Stack::start();
    let team = stack.bootstrap("Acme", "owner@acme.test");
    let agent = stack.enroll(&team.install_token);
    let owner = stack.sign_in(&team.signin_path);
    set_zone(&owner, "UTC");

    // 1,600 sessions over five UTC days, 320 a day: distinct costs (a
    // permutation of 1,600 steps of $0.001), spans with ties.
    let first = parse_date("2026-06-08").unwrap();
    let id = |k: usize| tally_core::hash::session_hash("salt", &format!("k{k}"));
    let mut sessions: Vec<(String, i64, i64)> = Vec::new(); // id, cost micro, span ms
    let mut values = Vec::new();
    for k in 0..1600usize {
        let day = first + (k / 320) as i64;
        let start = day * DAY_MS + 3 * HOUR_MS + (k % 320) as i64 * MINUTE_MS;
        let cost = ((k * 104_729) % 1600) as i64 * 1000 + 500;
        let span = ((k * 7919) % 5000) as i64 * 1000 + 1000;
        values.push(format!(
            "('{}', '{}', 'dev-{}', 'proj', 'claude-code', {start}, {}, 1, {cost}, 0, 1)",
            team.team_id,
            id(k),
            k % 7,
            start + span
        ));
        sessions.push((id(k), cost, span));
    }
    for chunk in values.chunks(400) {
        stack.d1(&format!(
            "INSERT INTO sessions (team_id, session, developer_id, project, agent, start_ms, end_ms, requests, cost_micro_usd, cost_pico_usd, modes) VALUES {}",
            chunk.join(", ")
        ));
    }
    // Compaction takes the days that have usage.
    for d in 0..5 {
        stack.d1(&format!(
            "INSERT INTO usage_q (team_id, quarter, developer_id, project, branch, model, agent, requests) VALUES ('{}', {}, 'dev-0', 'proj', '', 'claude-sonnet-4-5', 'claude-code', 1)",
            team.team_id,
            (first + d) * 96 + 20
        ));
    }
    stack.cron("0 * * * *", at("2026-06-20", 6, 0));
    let ranks = stack.d1("SELECT day, cost_ranks, span_ranks FROM session_ranks ORDER BY day");
    assert_eq!(ranks.len(), 5, "{ranks:?}");
    for (d, row) in ranks.iter().enumerate() {
        assert_eq!(row["day"], first + d as i64);
        let mut costs: Vec<i64> = sessions[d * 320..(d + 1) * 320]
            .iter()
            .map(|s| s.1)
            .collect();
        costs.sort_unstable_by_key(|&c| std::cmp::Reverse(c));
        let mut got: Vec<(usize, i64)> =
            serde_json::from_str(row["cost_ranks"].as_str().unwrap()).unwrap();
        got.sort_unstable();
        let want: Vec<(usize, i64)> = [1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 70, 100, 150, 200, 300]
            .into_iter()
            .map(|r| (r, costs[r - 1]))
            .collect();
        assert_eq!(got, want, "day {d}");
    }

    let listed = |sort: &str| -> Vec<String> {
        let page = owner.get_json(&format!(
            "/sessions?from=2026-06-01&to=2026-06-30&sort={sort}&format=json"
        ));
        page.as_array()
            .unwrap()
            .iter()
            .map(|r| r["session (keyed hash)"].as_str().unwrap().to_string())
            .collect()
    };
    let expected = |sessions: &[(String, i64, i64)], by_span: bool| -> Vec<String> {
        let mut s = sessions.to_vec();
        s.sort_by(|a, b| {
            let (x, y) = if by_span { (a.2, b.2) } else { (a.1, b.1) };
            y.cmp(&x).then_with(|| a.0.cmp(&b.0))
        });
        s.iter().take(1000).map(|s| s.0[..16].to_string()).collect()
    };
    assert_eq!(listed("cost"), expected(&sessions, false));
    assert_eq!(listed("duration"), expected(&sessions, true));

    // A late event for compacted 8 June makes the cheapest session (k = 0,
    // below the floor when the day was ranked) the most expensive.
    let late = serde_json::json!({
        "id": format!("{:032x}", 99),
        "ts": first * DAY_MS + 3 * HOUR_MS + 30_000,
        "agent": "claude_code",
        "model": "claude-opus-4-5",
        "tokens": {"input": 500_000, "output": 50_000, "cache_write_5m": 0, "cache_write_1h": 0, "cache_read": 0},
        "cost_pico_usd": 0,
        "project": tally_core::hash::project_hash("salt", "/p"),
        "session": id(0),
        "mode": "off"
    });
    assert_eq!(
        status(&agent.post(&batch("batch-sessions-late-0001", vec![late]))),
        202
    );
    let grown = stack.eventually("late event applied", Duration::from_secs(30), || {
        let r = stack.d1(&format!(
            "SELECT cost_micro_usd AS c FROM sessions WHERE session = '{}'",
            id(0)
        ));
        r[0]["c"].as_i64().filter(|&c| c > 500)
    });
    // Opus 4.5 at $5 / $25 per million: $2.50 + $1.25.
    assert_eq!(grown, 500 + 3_750_000);
    sessions[0].1 = grown;
    let now_listed = listed("cost");
    assert_eq!(now_listed[0], id(0)[..16]);
    assert_eq!(now_listed, expected(&sessions, false));

    // The list does read the ranks: a day claiming a thousand sessions above
    // every real cost leaves nothing above the floor.
    stack.d1(&format!(
        "UPDATE session_ranks SET cost_ranks = '[[1000, 9000000]]' WHERE day = {first}"
    ));
    assert_eq!(listed("cost"), Vec::<String>::new());
    assert_eq!(listed("duration"), expected(&sessions, true));
}
