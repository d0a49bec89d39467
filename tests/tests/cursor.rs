//! Cursor's team usage end to end against workerd: an admin saves the admin
//! API key (checked against the loopback Cursor fake, sealed, never shown
//! again), the hourly cron pulls at controlled times, and each developer's
//! tokens and list-price cost land exactly once however the pulls overlap;
//! paging, a refused key, and removal.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tally_e2e::fakes::{self, CursorScript, CURSOR_KEY};
use tally_e2e::{body_json, now_ms, team_tables, Stack, StackConfig, WebClient};

const HOURLY: &str = "0 * * * *";
const HOUR: i64 = 3_600_000;

/// A usage event as Cursor's Admin API answers it (token-based).
#[allow(clippy::too_many_arguments)]
fn event(email: &str, ts: i64, model: &str, t: [u64; 4], charged_cents: f64) -> Value {
    json!({
        "timestamp": ts.to_string(), "model": model, "kind": "Usage-based", "maxMode": false,
        "requestsCosts": 1, "isTokenBasedCall": true,
        "tokenUsage": {"inputTokens": t[0], "outputTokens": t[1], "cacheWriteTokens": t[2],
                       "cacheReadTokens": t[3], "totalCents": charged_cents},
        "chargedCents": charged_cents, "isFreeBugbot": false, "userEmail": email
    })
}

fn page(c: &WebClient) -> String {
    c.get("/integrations").unwrap().into_string().unwrap()
}

/// (developer name, model, agent, requests, input, output, cache write, cache read, cost µ$·10⁶+pico).
type Row = (String, String, String, u64, u64, u64, u64, u64, String);

/// Every usage row of the team, by developer name and model.
fn usage(stack: &Stack, team: &str) -> Vec<Row> {
    stack
        .d1(&format!(
            "SELECT d.name AS dev, u.model, u.agent, SUM(u.requests) AS r, SUM(u.input_tokens) AS i, SUM(u.output_tokens) AS o, \
             SUM(u.cache_write_5m_tokens + u.cache_write_1h_tokens) AS w, SUM(u.cache_read_tokens) AS cr, \
             CAST(SUM(u.cost_micro_usd) AS TEXT) || '+' || CAST(SUM(u.cost_pico_usd) AS TEXT) AS cost, SUM(u.unpriced_requests) AS unpriced \
             FROM usage_q u JOIN developers d ON d.team_id = u.team_id AND d.id = u.developer_id \
             WHERE u.team_id = '{team}' GROUP BY d.name, u.model, u.agent ORDER BY d.name, u.model"
        ))
        .into_iter()
        .map(|r| {
            let n = |k: &str| r[k].as_u64().unwrap();
            (
                r["dev"].as_str().unwrap().to_string(),
                r["model"].as_str().unwrap().to_string(),
                r["agent"].as_str().unwrap().to_string(),
                n("r"),
                n("i"),
                n("o"),
                n("w"),
                n("cr"),
                r["cost"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn row(dev: &str, model: &str, r: u64, t: [u64; 4], micro: u64) -> Row {
    (
        dev.into(),
        model.into(),
        "cursor".into(),
        r,
        t[0],
        t[1],
        t[2],
        t[3],
        format!("{micro}+0"),
    )
}

fn wait_usage(stack: &Stack, team: &str, want: &[Row]) {
    stack.eventually(&format!("usage {want:?}"), Duration::from_secs(30), || {
        (usage(stack, team) == want).then_some(())
    });
}

/// The requests the fake got for pulls (the key check asks for one event).
fn pulls(fake: &fakes::FakeServer) -> Vec<Value> {
    fake.requests()
        .iter()
        .map(|r| r.json())
        .filter(|b| b["pageSize"] != json!(1))
        .collect()
}

#[test]
fn pulls_count_each_event_once_page_and_stop() {
    let script = Arc::new(Mutex::new(CursorScript::default()));
    let fake = fakes::cursor(script.clone());
    let stack = Stack::start_with(StackConfig {
        vars: vec![
            ("CURSOR_API_BASE".into(), fake.base.clone()),
            ("CURSOR_PAGE_SIZE".into(), "2".into()),
        ],
    });
    let team = stack.bootstrap("Acme", "owner@acme.test");
    let admin = stack.sign_in(&team.signin_path);
    // A developer the admin named by e-mail: Alice's Cursor usage counts there.
    let alice = body_json(admin.post_json(
        "/api/install-tokens",
        json!({"developer_name": "Alice@Acme.test"}),
    ));
    let alice_id = alice["developer_id"].as_str().unwrap().to_string();

    // Pulls run at controlled times well before the wall clock, so every event
    // is in the past and inside the dashboard's last 30 days at any hour.
    let now = now_ms() - 10 * HOUR;
    let t0 = now - HOUR;
    script.lock().unwrap().events = vec![
        // claude-sonnet-4-5: 1000×3 + 2000×15 + 10000×0.3 = 36000 µ$.
        event(
            "alice@acme.test",
            t0,
            "claude-4.5-sonnet-thinking",
            [1000, 2000, 0, 10000],
            4.5,
        ),
        // gpt-5: 5000×1.25 + 1000×10 + 2000×0.125 = 16500 µ$.
        event(
            "ALICE@acme.test",
            t0 + 1000,
            "gpt-5-high",
            [5000, 1000, 0, 2000],
            1.2,
        ),
        // claude-sonnet-4: 300×3 + 400×15 + 500×3.75 + 600×0.3 = 8955 µ$.
        event(
            "bob@acme.test",
            t0 + 2000,
            "claude-4-sonnet",
            [300, 400, 500, 600],
            0.9,
        ),
        // Not in the price table: unpriced, never $0.
        event("bob@acme.test", t0 + 3000, "auto", [100, 50, 0, 0], 0.0),
        // A request-based event: no tokens, skipped and counted as such.
        json!({"timestamp": (t0 + 4000).to_string(), "model": "gpt-5", "kind": "Included in Business",
               "maxMode": false, "requestsCosts": 1, "isTokenBasedCall": false, "isFreeBugbot": false,
               "userEmail": "carol@acme.test"}),
    ];

    // A wrong key is refused by Cursor and nothing is saved.
    let (code, loc) = admin.post_form("/integrations/cursor", &[("key", "key_wrongWrongWrong")]);
    assert_eq!(code, 303, "{loc}");
    assert!(loc.starts_with("/integrations?error="), "{loc}");
    let shown = admin.get(&loc).unwrap().into_string().unwrap();
    assert!(
        shown.contains("Cursor refused the API key (HTTP 401).")
            && shown.contains("Nothing was saved."),
        "{shown}"
    );
    assert!(stack.d1("SELECT id FROM cursor_integrations").is_empty());

    let before = now_ms();
    let (code, loc) = admin.post_form("/integrations/cursor", &[("key", CURSOR_KEY)]);
    let after = now_ms();
    assert_eq!((code, loc.contains("saved=")), (303, true), "{loc}");
    // Sealed: neither the key nor its hex is in D1, nor on the page past its last four.
    let stored = stack.d1("SELECT * FROM cursor_integrations");
    assert_eq!(stored.len(), 1);
    let dump = serde_json::to_string(&stored).unwrap();
    let hex: String = CURSOR_KEY.bytes().map(|b| format!("{b:02x}")).collect();
    assert!(
        !dump.contains(CURSOR_KEY) && !dump.contains(&hex[..20]),
        "{dump}"
    );
    assert_eq!(stored[0]["last4"], "cdef");
    let p = page(&admin);
    assert!(!p.contains(CURSOR_KEY) && p.contains("…cdef"));
    let installs = stack.audit_details(&team.team_id, "integration.install");
    assert_eq!(installs.len(), 1);
    assert_eq!(installs[0]["kind"], "cursor");
    assert!(!installs[0].to_string().contains(CURSOR_KEY));

    // First pull at a controlled time: the last 7 days and the overlap, in 3 pages of 2.
    stack.cron(HOURLY, now);
    let first = pulls(&fake);
    // A new integration's watermark is 7 days before it was saved (the
    // request's own clock); the pull starts the overlap before that.
    let added = stored[0]["watermark_ms"].as_i64().unwrap() + 7 * 24 * HOUR;
    assert!(
        (before..=after).contains(&added),
        "{added} not in {before}..={after}"
    );
    let window_start = added - 7 * 24 * HOUR - 2 * HOUR;
    assert_eq!(
        first,
        (1..=3)
            .map(|p| json!({"startDate": window_start, "endDate": now, "page": p, "pageSize": 2}))
            .collect::<Vec<_>>()
    );
    let bob = "b…@acme.test";
    let expected = vec![
        row(
            "Alice@Acme.test",
            "claude-sonnet-4-5",
            1,
            [1000, 2000, 0, 10000],
            36000,
        ),
        row("Alice@Acme.test", "gpt-5", 1, [5000, 1000, 0, 2000], 16500),
        (
            bob.into(),
            "auto".into(),
            "cursor".into(),
            1,
            100,
            50,
            0,
            0,
            "0+0".into(),
        ),
        row(bob, "claude-sonnet-4", 1, [300, 400, 500, 600], 8955),
    ];
    wait_usage(&stack, &team.team_id, &expected);
    let unpriced = stack.d1(&format!(
        "SELECT SUM(unpriced_requests) AS n FROM usage_q WHERE team_id = '{}' AND model = 'auto'",
        team.team_id
    ));
    assert_eq!(unpriced[0]["n"], 1);
    // The dashboard's JSON: exact list price of the Cursor requests.
    let o = admin.get_json("/api/overview");
    assert_eq!(o["spend_30d_usd"], "0.061455000000");
    assert_eq!(o["totals_30d"]["requests"], 4);
    // Alice's events went to the developer named by her address.
    let alice_rows = stack.d1(&format!(
        "SELECT SUM(requests) AS n FROM usage_q WHERE team_id = '{}' AND developer_id = '{alice_id}'",
        team.team_id
    ));
    assert_eq!(alice_rows[0]["n"], 2);

    let p = page(&admin);
    assert!(p.contains("Cursor charged $0.07 / list price $0.06"), "{p}");
    // Cursor's charge (6.6 cents) beside the list price, exact.
    let c = &stack.d1("SELECT * FROM cursor_integrations")[0];
    assert_eq!(
        [
            &c["charged_micro_usd"],
            &c["charged_pico_usd"],
            &c["list_micro_usd"],
            &c["list_pico_usd"]
        ],
        [&json!(66000), &json!(0), &json!(61455), &json!(0)]
    );
    assert_eq!(
        (&c["first_event_ms"], &c["last_event_ms"]),
        (&json!(t0), &json!(t0 + 3000))
    );
    assert!(
        p.contains("4 requests (1 of a model the price table does not know: unpriced)"),
        "{p}"
    );
    assert!(p.contains("1 events without token counts"), "{p}");
    assert!(p.contains(bob) && p.contains("a…@acme.test"), "{p}");
    // No address is stored in clear anywhere (Alice's name is the admin's own text).
    for (table, col) in team_tables() {
        let rows = stack.d1(&format!(
            "SELECT * FROM {table} WHERE {col} = '{}'",
            team.team_id
        ));
        let text = serde_json::to_string(&rows).unwrap();
        for email in ["bob@acme.test", "carol@acme.test", "alice@acme.test"] {
            assert!(!text.contains(email), "{email} in {table}: {text}");
        }
    }

    // An overlapping pull an hour later reads the same events again: nothing added.
    stack.cron(HOURLY, now + HOUR);
    let second = &pulls(&fake)[3..];
    assert_eq!(
        second,
        [
            json!({"startDate": now - 2 * HOUR, "endDate": now + HOUR, "page": 1, "pageSize": 2}),
            json!({"startDate": now - 2 * HOUR, "endDate": now + HOUR, "page": 2, "pageSize": 2}),
            json!({"startDate": now - 2 * HOUR, "endDate": now + HOUR, "page": 3, "pageSize": 2})
        ]
    );
    let state = |k: &str| stack.d1("SELECT * FROM cursor_integrations")[0][k].clone();
    assert_eq!(
        (state("events"), state("skipped_events")),
        (json!(4), json!(1))
    );
    assert_eq!(state("watermark_ms"), json!(now + HOUR));

    // A new event after the watermark is added, once, beside the old ones.
    script.lock().unwrap().events.push(event(
        "bob@acme.test",
        now + HOUR + 60_000,
        "claude-4-sonnet",
        [1000, 0, 0, 0],
        0.4,
    ));
    stack.cron(HOURLY, now + 2 * HOUR);
    let mut expected2 = expected.clone();
    expected2[3] = row(bob, "claude-sonnet-4", 2, [1300, 400, 500, 600], 11955);
    wait_usage(&stack, &team.team_id, &expected2);
    assert_eq!(state("events"), json!(5));
    assert_eq!(admin.get_json("/api/overview")["totals_30d"]["requests"], 5);

    // Cursor refuses the key: the page says so and the watermark stays.
    script.lock().unwrap().fail = Some(401);
    stack.cron(HOURLY, now + 3 * HOUR);
    assert_eq!(state("watermark_ms"), json!(now + 2 * HOUR));
    assert_eq!(state("last_pull_ms"), json!(now + 3 * HOUR));
    let p = page(&admin);
    assert!(p.contains("Cursor refused the API key (HTTP 401)"), "{p}");
    // Rate limited: retried next hour, in those words.
    script.lock().unwrap().fail = Some(429);
    stack.cron(HOURLY, now + 4 * HOUR);
    assert!(page(&admin).contains(
        "Cursor is rate limiting this API key (HTTP 429); the pull is retried next hour."
    ));
    assert_eq!(state("watermark_ms"), json!(now + 2 * HOUR));
    // Back to normal: the pull catches up from the kept watermark, adds nothing new.
    script.lock().unwrap().fail = None;
    stack.cron(HOURLY, now + 5 * HOUR);
    assert_eq!(state("last_error"), Value::Null);
    assert_eq!(state("watermark_ms"), json!(now + 5 * HOUR));
    assert_eq!(
        pulls(&fake).last().unwrap()["startDate"],
        json!(now + 2 * HOUR - 2 * HOUR)
    );

    // Removal stops the pulls and deletes the key.
    let (code, _) = admin.post_form("/integrations/cursor/remove", &[]);
    assert_eq!(code, 303);
    assert!(stack.d1("SELECT id FROM cursor_integrations").is_empty());
    let asked = fake.requests().len();
    stack.cron(HOURLY, now + 6 * HOUR);
    assert_eq!(fake.requests().len(), asked);
    assert_eq!(
        stack.audit_details(&team.team_id, "integration.remove"),
        vec![json!({"kind": "cursor"})]
    );
    wait_usage(&stack, &team.team_id, &expected2);
}

#[test]
fn cursor_users_are_linked_and_renamed_by_admins() {
    let script = Arc::new(Mutex::new(CursorScript::default()));
    let fake = fakes::cursor(script.clone());
    let stack = Stack::start_with(StackConfig {
        vars: vec![("CURSOR_API_BASE".into(), fake.base.clone())],
    });
    let team = stack.bootstrap("Acme", "owner@acme.test");
    let admin = stack.sign_in(&team.signin_path);
    let dana = body_json(admin.post_json("/api/install-tokens", json!({"developer_name": "Dana"})));
    let dana_id = dana["developer_id"].as_str().unwrap().to_string();
    // Pulls run at controlled times well before the wall clock, so every event
    // is in the past and inside the dashboard's last 30 days at any hour.
    let now = now_ms() - 10 * HOUR;
    script.lock().unwrap().events = vec![event(
        "dana.w@acme.test",
        now - HOUR,
        "gpt-5",
        [1000, 0, 0, 0],
        0.2,
    )];
    let (code, _) = admin.post_form("/integrations/cursor", &[("key", CURSOR_KEY)]);
    assert_eq!(code, 303);
    stack.cron(HOURLY, now);
    // gpt-5: 1000 × 1.25 = 1250 µ$, for a new developer named by the masked address.
    wait_usage(
        &stack,
        &team.team_id,
        &[row("d…@acme.test", "gpt-5", 1, [1000, 0, 0, 0], 1250)],
    );
    let users = stack.d1("SELECT email_hash, developer_id, masked FROM cursor_users");
    assert_eq!(users.len(), 1);
    assert_eq!(users[0]["masked"], "d…@acme.test");
    let hash = users[0]["email_hash"].as_str().unwrap().to_string();
    let created = users[0]["developer_id"].as_str().unwrap().to_string();
    assert_ne!(created, dana_id);

    // Renaming the created developer keeps its usage; linking moves future pulls.
    let (code, loc) = admin.post_form(
        "/integrations/cursor/user",
        &[
            ("email_hash", &hash),
            ("developer_id", &created),
            ("name", "Dana (Cursor)"),
        ],
    );
    assert_eq!((code, loc.contains("saved=")), (303, true), "{loc}");
    let (code, loc) = admin.post_form(
        "/integrations/cursor/user",
        &[("email_hash", &hash), ("developer_id", &dana_id)],
    );
    assert_eq!((code, loc.contains("saved=")), (303, true), "{loc}");
    let (code, loc) = admin.post_form(
        "/integrations/cursor/user",
        &[("email_hash", &hash), ("developer_id", "nobody")],
    );
    assert_eq!((code, loc.contains("error=")), (303, true), "{loc}");
    script.lock().unwrap().events.push(event(
        "dana.w@acme.test",
        now + 60_000,
        "gpt-5",
        [2000, 0, 0, 0],
        0.3,
    ));
    stack.cron(HOURLY, now + HOUR);
    wait_usage(
        &stack,
        &team.team_id,
        &[
            row("Dana", "gpt-5", 1, [2000, 0, 0, 0], 2500),
            row("Dana (Cursor)", "gpt-5", 1, [1000, 0, 0, 0], 1250),
        ],
    );
    let links = stack.audit_details(&team.team_id, "integration.cursor_user");
    assert_eq!(
        links,
        vec![
            json!({"developer_id": created, "name": "Dana (Cursor)"}),
            json!({"email_hash": hash, "developer_id": dana_id}),
        ]
    );
}
