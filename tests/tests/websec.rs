//! The Worker never panics and cannot be turned against its users: odd
//! requests answer 4xx, error bodies are well-formed, sign-in resists mail
//! bombing and link-prefetching scanners, Full mode needs a confirmation
//! through the API too, hostnames are admin-only, ranges are bounded and
//! e-mail addresses are case-folded.

#![allow(clippy::result_large_err)] // ureq results are matched on directly.

use std::time::Duration;

use serde_json::json;
use tally_e2e::fakes::{self, FakeServer};
use tally_e2e::{batch, body_json, form_escape, now_ms, off_event, status, Stack, StackConfig};

fn stack_with_email() -> (Stack, FakeServer) {
    Stack::with_email()
}

fn mails_to(mail: &FakeServer, to: &str) -> Vec<String> {
    mail.requests()
        .iter()
        .filter(|r| r.json()["to"][0] == to)
        .filter_map(|r| {
            let text = r.json()["text"].as_str()?.to_string();
            let start = text.find("/auth/link")?;
            Some(text[start..].split_whitespace().next()?.to_string())
        })
        .collect()
}

/// `POST /login` for `email` as client `ip`: the status and the page.
fn login(stack: &Stack, email: &str, ip: &str) -> (u16, String) {
    let r = ureq::post(&stack.url("/login"))
        .set("CF-Connecting-IP", ip)
        .set("Content-Type", "application/x-www-form-urlencoded")
        .send_string(&format!("email={}", form_escape(email)));
    let code = status(&r);
    let body = match r {
        Ok(r) => r.into_string().unwrap(),
        Err(ureq::Error::Status(_, r)) => r.into_string().unwrap(),
        Err(e) => panic!("{e}"),
    };
    (code, body)
}

fn raw(r: Result<ureq::Response, ureq::Error>) -> (u16, String) {
    match r {
        Ok(r) => (r.status(), r.into_string().unwrap()),
        Err(ureq::Error::Status(s, r)) => (s, r.into_string().unwrap()),
        Err(e) => panic!("transport error: {e}"),
    }
}

#[test]
fn odd_requests_answer_4xx_and_error_bodies_name_message_once() {
    let stack = Stack::start();
    let team = stack.bootstrap("Acme", "owner@acme.test");
    let owner = stack.sign_in(&team.signin_path);

    let r = owner.post_json("/api/agents/revoke", json!({}));
    assert_eq!(status(&r), 404);
    for path in [
        "/%ff".to_string(),
        "/%".to_string(),
        "/..%2f..%2fetc/passwd".to_string(),
        "/static/..%2f..%2fwrangler.toml".to_string(),
        "/api/agents//revoke".to_string(),
        "/\u{1F600}/\u{00e9}".to_string(),
        format!("/{}", "a".repeat(100 * 1024)),
        format!("/api/{}", "x/".repeat(2000)),
    ] {
        let r = owner.get(&path);
        let code = status(&r);
        assert!(
            (400..500).contains(&code),
            "GET {}…: {code}",
            &path[..path.len().min(40)]
        );
    }
    for (method, path) in [("DELETE", "/"), ("PUT", "/api/me"), ("PATCH", "/v1/events")] {
        let r = owner
            .agent
            .request(method, &stack.url(path))
            .set("Cookie", &owner.cookie)
            .call();
        assert_eq!(status(&r), 405, "{method} {path}");
    }
    // Garbage bodies and headers on JSON routes: 4xx, never a 500.
    for body in ["", "{", "null", "[]", "{\"mode\": 5}", "\u{0}\u{1}"] {
        let r = owner
            .agent
            .post(&stack.url("/api/settings/privacy"))
            .set("Cookie", &owner.cookie)
            .set("X-CSRF-Token", &owner.csrf)
            .set("Content-Type", "application/json")
            .send_string(body);
        assert_eq!(status(&r), 400, "{body:?}");
    }
    let r = ureq::get(&stack.url("/"))
        .set("Cookie", "tally_session=%ff%00; tally_session")
        .call();
    assert_eq!(status(&r), 200, "a broken cookie shows the sign-in page");
    assert_eq!(status(&ureq::get(&stack.url("/healthz")).call()), 200);

    // Error bodies carry `message` once, in the raw text (a JSON parser
    // would silently keep the last of two).
    let agent = stack.enroll(&team.install_token);
    let mut bad = off_event(1, now_ms(), "claude-sonnet-4-5", 1);
    bad["tokens"]["output"] = json!(-1);
    let (code, text) = raw(agent.post(&batch("batch-websec-bad-001", vec![bad])));
    assert_eq!(code, 400);
    assert_eq!(text.matches("\"message\"").count(), 1, "{text}");
    assert!(text.contains("\"field\""), "{text}");
    for r in [
        owner.get("/api/nope"),
        owner.get("/api/settings/privacy"),
        ureq::get(&stack.url("/api/me")).call(),
        owner.post_json("/api/settings/privacy", json!({"mode": "full"})),
    ] {
        let (code, text) = raw(r);
        assert!((400..500).contains(&code));
        assert_eq!(text.matches("\"message\"").count(), 1, "{text}");
    }
}

#[test]
fn signin_links_survive_scanners_and_login_limits_cannot_lock_a_member_out() {
    let (stack, mail) = stack_with_email();
    // A mixed-case owner address is stored folded and signs in by e-mail.
    let team = stack.bootstrap("Acme", "Owner@Acme.TEST");
    let stored = stack.d1("SELECT email FROM members");
    assert_eq!(stored, vec![json!({"email": "owner@acme.test"})]);

    // A scanner prefetching the link (GET, twice) burns nothing.
    for _ in 0..2 {
        let r = ureq::get(&stack.url(&team.signin_path)).call();
        let (code, page) = raw(r);
        assert_eq!(code, 200);
        assert!(page.contains("data-testid=\"confirm-signin\""), "{page}");
    }
    let fresh = stack.d1("SELECT COUNT(*) AS n FROM signin_links WHERE used_at IS NULL");
    assert_eq!(fresh[0]["n"], 1);
    // The confirmation POST is CSRF-checked: no nonce cookie, or a token
    // not bound to this link, is refused and consumes nothing.
    let token = team.signin_path.split("token=").nth(1).unwrap();
    let no_cookie = ureq::post(&stack.url("/auth/link"))
        .set("Content-Type", "application/x-www-form-urlencoded")
        .send_string(&format!("token={token}&csrf=00"));
    assert_eq!(status(&no_cookie), 403);
    let forged = ureq::post(&stack.url("/auth/link"))
        .set("Cookie", "tally_link_nonce=abc")
        .set("Content-Type", "application/x-www-form-urlencoded")
        .send_string(&format!("token={token}&csrf={}", "0".repeat(64)));
    assert_eq!(status(&forged), 403);
    let fresh = stack.d1("SELECT COUNT(*) AS n FROM signin_links WHERE used_at IS NULL");
    assert_eq!(fresh[0]["n"], 1);
    // The person's own click works once.
    let owner = stack.sign_in(&team.signin_path);
    assert_eq!(status(&owner.get("/api/me")), 200);

    // Mail bombing from one client: every answer is the same neutral page,
    // and only the first few requests send a mail.
    let (code, neutral) = login(&stack, "OWNER@acme.test", "203.0.113.9");
    assert_eq!(code, 200);
    assert!(
        neutral.contains("If this address has an account"),
        "{neutral}"
    );
    let first = stack.eventually("first mail", Duration::from_secs(20), || {
        mails_to(&mail, "owner@acme.test").first().cloned()
    });
    for _ in 0..9 {
        let (code, page) = login(&stack, "owner@acme.test", "203.0.113.9");
        assert_eq!((code, page == neutral), (200, true));
    }
    // Not a member: the very same answer, and no mail.
    let (code, page) = login(&stack, "nobody@acme.test", "203.0.113.9");
    assert_eq!((code, page == neutral), (200, true));
    std::thread::sleep(Duration::from_secs(2));
    let sent = mails_to(&mail, "owner@acme.test").len();
    assert_eq!(sent, 3, "per (address, client) burst");
    assert!(mails_to(&mail, "nobody@acme.test").is_empty());

    // The member asking from another network is not locked out.
    let (code, page) = login(&stack, "owner@acme.test", "198.51.100.20");
    assert_eq!((code, page == neutral), (200, true));
    stack.eventually("mail to the other client", Duration::from_secs(20), || {
        (mails_to(&mail, "owner@acme.test").len() == sent + 1).then_some(())
    });
    // A link already sent keeps working.
    let again = stack.sign_in(&first[first.find("/auth").unwrap()..]);
    assert_eq!(status(&again.get("/api/me")), 200);
}

#[test]
fn api_guards_full_mode_hostnames_and_ranges() {
    let (stack, mail) = stack_with_email();
    let team = stack.bootstrap("Acme", "owner@acme.test");
    let owner = stack.sign_in(&team.signin_path);

    // Full through the API needs the same confirmation as the form.
    let r = owner.post_json("/api/settings/privacy", json!({"mode": "full"}));
    assert_eq!(status(&r), 400);
    let b = body_json(r);
    assert_eq!(b["error"], "confirmation_required");
    assert!(b["message"].as_str().unwrap().contains("confirm"), "{b}");
    let r = owner.post_json(
        "/api/settings/privacy",
        json!({"mode": "full", "confirm": false}),
    );
    assert_eq!(status(&r), 400);
    assert_eq!(owner.get_json("/api/overview")["privacy_mode"], "off");
    let r = owner.post_json(
        "/api/settings/privacy",
        json!({"mode": "full", "confirm": true}),
    );
    assert_eq!(status(&r), 200);
    assert_eq!(owner.get_json("/api/overview")["privacy_mode"], "full");
    let r = owner.post_json("/api/settings/privacy", json!({"mode": "off"}));
    assert_eq!(status(&r), 200);

    // Hostnames are admin-only, like the Tokens page.
    stack.enroll(&team.install_token);
    let agents = owner.get_json("/api/agents");
    assert_eq!(agents[0]["hostname"], "test-host");
    let r = owner
        .agent
        .post(&stack.url("/members/invite"))
        .set("Cookie", &owner.cookie)
        .set("Content-Type", "application/x-www-form-urlencoded")
        .send_string(&format!(
            "csrf={}&email={}&role=viewer",
            owner.csrf,
            form_escape("Viewer@Acme.test")
        ));
    assert_eq!(status(&r), 303);
    let link = stack.eventually("invitation", Duration::from_secs(20), || {
        mails_to(&mail, "viewer@acme.test").first().cloned()
    });
    let viewer = stack.sign_in(&link);
    assert_eq!(status(&viewer.get("/api/overview")), 200);
    let r = viewer.get("/api/agents");
    assert_eq!(status(&r), 403);
    assert!(!raw(r).1.contains("test-host"));

    // A range of millennia is clamped, and the page says so.
    let r = owner.get("/?from=0001-01-01&to=2026-01-31");
    let (code, page) = raw(r);
    assert_eq!(code, 200);
    assert!(page.contains("data-testid=\"range-clamped\""), "{page}");
    assert!(
        page.contains("value=\"2023-01-"),
        "from moved up to ~3 years"
    );
    let r = owner.get("/api/overview?from=0001-01-01&to=9999-12-31");
    assert_eq!(status(&r), 200);
    let r = owner.get("/models?from=0001-01-01&to=9999-12-31&format=csv");
    assert_eq!(status(&r), 200);
}

/// Rows stored before addresses were folded are folded by the migration;
/// a row that would collide with its folded twin is left alone.
#[test]
fn the_migration_folds_existing_addresses() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    let mut folded = false;
    for f in files {
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        if name.starts_with("0004") {
            conn.execute_batch(
                "INSERT INTO teams (id, name, salt, created_at) VALUES ('t1', 'Acme', 's', 0);
                 INSERT INTO members (team_id, id, email, role, created_at) VALUES
                   ('t1', 'm1', 'Owner@Acme.TEST', 'owner', 0),
                   ('t1', 'm2', 'Twin@acme.test', 'viewer', 0),
                   ('t1', 'm3', 'twin@acme.test', 'viewer', 0);",
            )
            .unwrap();
            folded = true;
        }
        conn.execute_batch(&std::fs::read_to_string(&f).unwrap())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    assert!(folded, "migration 0004 exists");
    let mut stmt = conn
        .prepare("SELECT id, email FROM members ORDER BY id")
        .unwrap();
    let rows: Vec<(String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(
        rows,
        [
            ("m1".into(), "owner@acme.test".into()),
            ("m2".into(), "Twin@acme.test".into()),
            ("m3".into(), "twin@acme.test".into()),
        ]
    );
}

#[test]
fn categorize_cloud_stops_at_the_spend_cap_and_says_so() {
    let anthropic = fakes::anthropic(
        json!({"category": "bug_fix", "task_hint": "fix it", "project_hint": "api", "confidence": 0.9}),
    );
    let stack = Stack::start_with(StackConfig {
        vars: vec![
            ("ANTHROPIC_BASE_URL".into(), anthropic.base.clone()),
            ("ANTHROPIC_API_KEY".into(), "sk-ant-test-key".into()),
        ],
    });
    let team = stack.bootstrap("Acme", "owner@acme.test");
    let agent = stack.enroll(&team.install_token);
    let owner = stack.sign_in(&team.signin_path);
    // The default is shown on Settings: $5.00 a day, 60 calls a minute.
    let settings = owner.get("/settings").unwrap().into_string().unwrap();
    assert!(
        settings.contains("name=\"daily_budget_usd\" value=\"5.00\""),
        "{settings}"
    );
    assert!(settings.contains("value=\"60\""));
    assert_eq!(
        status(&owner.post_json("/api/settings/privacy", json!({"mode": "categorize_cloud"}))),
        200
    );
    // Each call costs 602 µ$ (412 in × $1/M + 38 out × $5/M): a $0.001 budget allows two.
    for bad in [json!("-1"), json!("0.0000001"), json!("lots"), json!(null)] {
        let r = owner.post_json(
            "/api/settings/categorize-budget",
            json!({"daily_budget_usd": bad, "per_minute": 100}),
        );
        assert_eq!(status(&r), 400, "{bad}");
    }
    let r = owner.post_json(
        "/api/settings/categorize-budget",
        json!({"daily_budget_usd": "0.001", "per_minute": 100}),
    );
    assert_eq!(status(&r), 200);
    assert_eq!(body_json(r)["daily_budget_usd"], "0.001000");

    let now = now_ms() - 5_000;
    let text_event = |n: u64| {
        let mut e = off_event(n, now, "claude-sonnet-4-5", 1);
        e["mode"] = json!("categorize_cloud");
        e["prompt"] = json!(format!("prompt number {n}"));
        e
    };
    let spent_calls = |calls: u64| {
        stack.eventually("categorization usage", Duration::from_secs(30), || {
            let r = stack.d1("SELECT calls, skipped, skipped_cap FROM categorization_usage");
            (r.first().is_some_and(|r| r["calls"] == calls)).then_some(r[0].clone())
        })
    };
    let post = |id: &str, events: Vec<serde_json::Value>| {
        let r = agent.post(&batch(id, events));
        assert_eq!(status(&r), 202);
        assert_eq!(body_json(r)["restricted"], 0);
    };
    post("batch-cap-00000001", vec![text_event(1)]);
    spent_calls(1);
    post("batch-cap-00000002", vec![text_event(2)]);
    spent_calls(2);
    // Over budget now: accepted, uncategorized, counted.
    post("batch-cap-00000003", vec![text_event(3), text_event(4)]);
    let u = stack.eventually("capped prompts counted", Duration::from_secs(30), || {
        let r = stack.d1("SELECT calls, skipped, skipped_cap FROM categorization_usage");
        (r[0]["skipped_cap"] == 2).then_some(r[0].clone())
    });
    assert_eq!(u, json!({"calls": 2, "skipped": 2, "skipped_cap": 2}));
    assert_eq!(anthropic.requests().len(), 2);
    stack.eventually("all four events counted", Duration::from_secs(30), || {
        (owner.get_json("/api/overview")["totals_30d"]["requests"] == 4).then_some(())
    });

    // The per-minute cap: a budget again, but one call a minute, and two prompts.
    let r = owner
        .agent
        .post(&stack.url("/settings/categorize-budget"))
        .set("Cookie", &owner.cookie)
        .set("Content-Type", "application/x-www-form-urlencoded")
        .send_string(&format!(
            "csrf={}&daily_budget_usd=5&per_minute=1",
            owner.csrf
        ));
    assert_eq!(status(&r), 303);
    post("batch-cap-00000004", vec![text_event(5), text_event(6)]);
    stack.eventually(
        "rate-capped prompts counted",
        Duration::from_secs(30),
        || {
            let r = stack.d1("SELECT skipped_cap FROM categorization_usage");
            (r[0]["skipped_cap"] == 4).then_some(())
        },
    );
    assert_eq!(anthropic.requests().len(), 2);

    let page = owner.get("/categories").unwrap().into_string().unwrap();
    assert!(
        page.contains(
            "4 events in this range were left uncategorized because the categorize-cloud spend cap"
        ),
        "{page}"
    );
    let audit = owner.get_json("/api/audit");
    assert!(audit
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["action"] == "categorize_budget.change"));
}
