//! The edge decides the numbers: it prices every event itself, bounds every
//! field, and applies a batch at most once whatever changes between two sends.

use std::time::Duration;

use serde_json::{json, Value};
use tally_e2e::{batch, body_json, now_ms, off_event, status, ApiAgent, Stack};

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

fn usage(stack: &Stack, team: &str) -> Value {
    stack.d1(&format!(
        "SELECT COALESCE(SUM(requests),0) AS requests, COALESCE(SUM(unpriced_requests),0) AS unpriced, \
         COALESCE(SUM(cost_micro_usd),0) AS micro, COALESCE(SUM(cost_pico_usd),0) AS pico, \
         COALESCE(SUM(input_tokens),0) AS input FROM usage_q WHERE team_id = '{team}'"
    ))[0]
        .clone()
}

/// The exact total of a team in pico-USD, as the dashboard computes it.
fn pico_total(stack: &Stack, team: &str) -> u128 {
    let u = usage(stack, team);
    u["micro"].as_u64().unwrap() as u128 * 1_000_000 + u["pico"].as_u64().unwrap() as u128
}

fn post_ok(agent: &ApiAgent, b: &Value) -> Value {
    let r = agent.post(b);
    assert_eq!(status(&r), 202, "{b}");
    body_json(r)
}

fn event(n: u64, ts: i64, model: &str, tokens: [u64; 5]) -> Value {
    let mut e = off_event(n, ts, model, 0);
    e["tokens"] = json!({"input": tokens[0], "output": tokens[1], "cache_write_5m": tokens[2],
                         "cache_write_1h": tokens[3], "cache_read": tokens[4]});
    e
}

#[test]
fn the_edge_prices_every_event_itself() {
    let stack = Stack::start();
    let team = stack.bootstrap("Acme", "owner@acme.test");
    let agent = stack.enroll(&team.install_token);
    let now = now_ms() - 60_000;

    // Sonnet 4.5: 1,000 input × $3 + 100 output × $15 = 4,500 µ$, claimed as 1 µ$.
    let mut lowball = event(1, now, "claude-sonnet-4-5", [1000, 100, 0, 0, 0]);
    lowball["cost_pico_usd"] = json!(1_000_000);
    // Claimed right: no disagreement.
    let mut honest = event(2, now, "claude-sonnet-4-5", [1000, 100, 0, 0, 0]);
    honest["cost_pico_usd"] = json!(4_500_000_000u64);
    // Fast mode on Opus 4.6 is 6×: (100 × $5 + 10 × $25) × 6 = 4,500 µ$; the
    // agent claimed the standard price.
    let mut fast = event(3, now, "claude-opus-4-6", [100, 10, 0, 0, 0]);
    fast["fast"] = json!(true);
    fast["cost_pico_usd"] = json!(750_000_000u64);
    // Unknown to the table: unpriced, never $0, whatever the agent says.
    let mut unknown = event(4, now, "claude-imaginary-9", [5, 5, 0, 0, 0]);
    unknown["cost_pico_usd"] = json!(5_000_000_000u64);
    // Haiku 4.5 cache reads are 0.1 µ$ each: 7 of them are 0.7 µ$, three such
    // requests 2.1 µ$ — version one rounded each to 1 µ$ and stored 3.
    let reads = |n| {
        let mut e = event(n, now, "claude-haiku-4-5", [0, 0, 0, 0, 7]);
        e["cost_pico_usd"] = json!(700_000);
        e
    };
    post_ok(
        &agent,
        &batch(
            "batch-reprice-000001",
            vec![lowball, honest, fast, unknown, reads(5)],
        ),
    );
    post_ok(&agent, &batch("batch-reprice-000002", vec![reads(6)]));
    // An agent from before the pico wire: micro-USD, rounded, so it disagrees.
    let mut legacy = reads(7);
    legacy.as_object_mut().unwrap().remove("cost_pico_usd");
    legacy["cost_micro_usd"] = json!(1);
    post_ok(&agent, &batch("batch-reprice-000003", vec![legacy]));

    stack.eventually("three batches applied", Duration::from_secs(30), || {
        (usage(&stack, &team.team_id)["requests"] == 7).then_some(())
    });
    let u = usage(&stack, &team.team_id);
    assert_eq!(u["unpriced"], 1);
    // 4,500 + 4,500 + 4,500 + 0.7 × 3 µ$ = 13,502.1 µ$.
    assert_eq!(pico_total(&stack, &team.team_id), 13_502_100_000);
    let haiku = stack
        .d1("SELECT cost_micro_usd, cost_pico_usd FROM usage_q WHERE model = 'claude-haiku-4-5'");
    assert_eq!(
        haiku,
        vec![json!({"cost_micro_usd": 2, "cost_pico_usd": 100_000})]
    );
    let sessions =
        stack.d1("SELECT SUM(cost_micro_usd) * 1000000 + SUM(cost_pico_usd) AS pico FROM sessions");
    assert_eq!(sessions[0]["pico"], 13_502_100_000u64);
    // lowball, fast, unknown and the legacy claim disagree; honest and two
    // exact haiku claims agree.
    let agents = stack.d1(&format!(
        "SELECT priced_differently FROM agent_tokens WHERE id = '{}'",
        agent.agent_id
    ));
    assert_eq!(agents[0]["priced_differently"], 4);
}

#[test]
fn bad_numbers_are_rejected_with_the_field_named() {
    let stack = Stack::start();
    let team = stack.bootstrap("Acme", "owner@acme.test");
    let agent = stack.enroll(&team.install_token);
    let now = now_ms();
    let ok = || event(1, now, "claude-sonnet-4-5", [1, 1, 0, 0, 0]);
    let mut twice = event(9, now, "claude-sonnet-4-5", [1, 1, 0, 0, 0]);
    twice["id"] = ok()["id"].clone();
    let mut over_cap = event(2, now, "claude-sonnet-4-5", [1, 1, 0, 0, 0]);
    over_cap["tokens"]["output"] = json!(10_000_001);
    let mut ancient = event(3, now, "claude-sonnet-4-5", [1, 1, 0, 0, 0]);
    ancient["ts"] = json!(now - 401 * DAY);
    for (bad, field, message) in [
        (twice, "id", "duplicate of events[0].id"),
        (
            over_cap,
            "tokens.output",
            "exceeds 10000000 (the per-request token cap)",
        ),
        (
            ancient,
            "ts",
            "more than 400 days in the past (the backfill window)",
        ),
    ] {
        let r = agent.post(&batch("batch-bad-numbers-01", vec![ok(), bad]));
        assert_eq!(status(&r), 400);
        let b = body_json(r);
        assert_eq!(
            (
                b["index"].as_u64(),
                b["field"].as_str(),
                b["message"].as_str()
            ),
            (Some(1), Some(field), Some(message)),
            "{b}"
        );
    }
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(stack.d1("SELECT COUNT(*) AS n FROM batches")[0]["n"], 0);
    assert_eq!(usage(&stack, &team.team_id)["requests"], 0);
}

/// 70 requests, each in its own hour and session, with 20 distinct task
/// hints: 70 hourly + 70 session + 20 category rows = 160 rows, two queue
/// parts in Categorize; 140 rows, one part, once the categories are dropped.
fn categorized_batch(now: i64, claim: u64) -> Value {
    let events = (0..70u64)
        .map(|n| {
            let mut e = event(
                1000 + n,
                now - (n as i64 + 1) * HOUR,
                "claude-sonnet-4-5",
                [100, 10, 0, 0, 0],
            );
            e["session"] = json!(tally_core::hash::session_hash("salt", &format!("s{n}")));
            e["mode"] = json!("categorize_local");
            e["cost_pico_usd"] = json!(claim);
            e["category"] = json!({"category": "bug_fix", "task_hint": format!("task {}", n % 20),
                                   "project_hint": "api", "confidence": 90});
            e
        })
        .collect();
    batch("batch-matrix-0000001", events)
}

#[test]
fn a_batch_counts_once_whatever_changes_between_sends() {
    let stack = Stack::start();
    let team = stack.bootstrap("Acme", "owner@acme.test");
    let agent = stack.enroll(&team.install_token);
    let web = stack.sign_in(&team.signin_path);
    let now = now_ms();
    // 100 × $3 + 10 × $15 = 450 µ$ a request.
    let one_send = 70 * 450_000_000u128;
    let set_mode = |mode: &str| {
        let mut body = json!({"mode": mode});
        if mode == "full" {
            body["confirm"] = json!(true);
        }
        assert_eq!(status(&web.post_json("/api/settings/privacy", body)), 200);
    };
    set_mode("categorize_local");
    let b = categorized_batch(now, 450_000_000);
    post_ok(&agent, &b);
    stack.eventually("first send applied", Duration::from_secs(30), || {
        (usage(&stack, &team.team_id)["requests"] == 70).then_some(())
    });
    assert_eq!(
        stack.d1("SELECT COUNT(*) AS n FROM batches")[0]["n"],
        2,
        "two parts"
    );

    // The admin switches to Off: the resend loses its categories, rolls up to
    // one part instead of two, and must still count nothing.
    set_mode("off");
    let r = post_ok(&agent, &b);
    assert_eq!(r["restricted"], 70);
    // Rate-limit settings change, then a resend with events in another order
    // and the agent's prices from a newer table: still the same batch.
    assert_eq!(
        status(&web.post_json(
            "/api/settings/rate-limit",
            json!({"capacity": 5000, "per_minute": 6000})
        )),
        200
    );
    let mut shuffled = categorized_batch(now, 1);
    shuffled["events"].as_array_mut().unwrap().reverse();
    post_ok(&agent, &shuffled);
    // Back in Categorize the resend splits exactly like the first send.
    set_mode("categorize_local");
    post_ok(&agent, &b);

    // Give the queue time to deliver all of it, then check nothing moved.
    std::thread::sleep(Duration::from_secs(6));
    let u = usage(&stack, &team.team_id);
    assert_eq!(u["requests"], 70, "{u}");
    assert_eq!(pico_total(&stack, &team.team_id), one_send);
    // One category row per (day, task hint) the 70 hours touch.
    let mut keys: Vec<(i64, u64)> = (0..70u64)
        .map(|n| ((now - (n as i64 + 1) * HOUR).div_euclid(DAY), n % 20))
        .collect();
    keys.sort();
    keys.dedup();
    let cats = stack.d1("SELECT SUM(requests) AS n, COUNT(*) AS rows FROM categories");
    assert_eq!(cats[0], json!({"n": 70, "rows": keys.len()}));
    let sessions = stack.d1("SELECT SUM(requests) AS n, COUNT(*) AS rows FROM sessions");
    assert_eq!(sessions[0], json!({"n": 70, "rows": 70}));
    assert_eq!(stack.d1("SELECT COUNT(*) AS n FROM batches")[0]["n"], 2);
}

#[test]
fn maximum_values_keep_every_page_and_export_working() {
    let stack = Stack::start();
    let team = stack.bootstrap("Acme", "owner@acme.test");
    let agent = stack.enroll(&team.install_token);
    let web = stack.sign_in(&team.signin_path);
    assert_eq!(
        status(&web.post_json(
            "/api/settings/rate-limit",
            json!({"capacity": 10_000, "per_minute": 10_000_000})
        )),
        200
    );
    let now = now_ms() - 60_000;
    let max = 10_000_000u64;
    // Opus 4.1 in fast mode (6×) with every field at the cap:
    // 10M × ($15 + $75 + $18.75 + $30 + $1.50) × 6 = $8,415 a request.
    let per_request = 8_415u128 * 1_000_000_000_000;
    let batches = 8u64;
    for b in 0..batches {
        let events = (0..500u64)
            .map(|n| {
                let mut e = event(
                    b * 1000 + n,
                    now - (n as i64 % 48) * HOUR,
                    "claude-opus-4-1",
                    [max; 5],
                );
                e["fast"] = json!(true);
                // A claim the edge ignores (it prices the event itself).
                e["cost_pico_usd"] = json!(1);
                e
            })
            .collect();
        post_ok(&agent, &batch(&format!("batch-max-{b:012}"), events));
    }
    stack.eventually("all applied", Duration::from_secs(60), || {
        (usage(&stack, &team.team_id)["requests"] == 4000).then_some(())
    });
    let total = per_request * 4000;
    assert_eq!(pico_total(&stack, &team.team_id), total);
    let overview = web.get_json("/api/overview");
    assert_eq!(overview["totals_30d"]["requests"], 4000, "{overview}");
    assert_eq!(
        overview["totals_30d"]["cost_usd"], "33660000.000000000000",
        "{overview}"
    );
    assert_eq!(overview["totals_30d"]["input_tokens"], 40_000_000_000u64);
    let from = tally_core::time::utc_date(now - 3 * DAY);
    let to = tally_core::time::utc_date(now + DAY);
    for page in [
        "/",
        "/developers",
        "/projects",
        "/sessions",
        "/sessions?sort=duration",
        "/models",
        "/categories",
        "/settings",
        "/tokens",
        "/members",
        "/audit",
    ] {
        let r = web.get(page);
        assert_eq!(status(&r), 200, "{page}");
        for format in ["csv", "json"] {
            if ["/settings", "/tokens", "/members", "/"].contains(&page) {
                continue;
            }
            let sep = if page.contains('?') { '&' } else { '?' };
            let url = format!("{page}{sep}from={from}&to={to}&format={format}");
            let r = web.get(&url);
            assert_eq!(status(&r), 200, "{url}");
        }
    }
    let models = web.get(&format!("/models?from={from}&to={to}&format=json"));
    let models: Value = models.unwrap().into_json().unwrap();
    let opus = models
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["model"] == "claude-opus-4-1")
        .cloned()
        .unwrap();
    assert_eq!(opus["requests"], "4000", "{opus}");
    assert_eq!(opus["cache read"], "40000000000", "{opus}");
    assert_eq!(opus["cost"], "$33,660,000.00", "{opus}");
}
