//! What each session was captured under, as the dashboard shows it: the
//! Sessions page carries one chip per privacy mode a session's requests
//! were captured under (Off / Local / Cloud / Full), in a real headless
//! Chromium, with the same chip the session timeline uses.

use std::time::Duration;

use serde_json::{json, Value};
use tally_e2e::fakes::FakeServer;
use tally_e2e::webdriver::Browser;
use tally_e2e::{batch, body_json, now_ms, off_event, status, ApiAgent, Stack};

fn stack_with_email() -> (Stack, FakeServer) {
    Stack::with_email()
}

/// Signs the browser in as `email` through the login form and the mailed link.
fn browser_sign_in(stack: &Stack, mail: &FakeServer, b: &Browser, email: &str) {
    b.goto(&stack.url("/"));
    b.type_into("input[name=email]", email);
    b.click("form[action='/login'] button");
    let link = stack.eventually("sign-in email", Duration::from_secs(20), || {
        mail.requests()
            .iter()
            .rev()
            .find(|r| r.json()["to"][0] == email)
            .and_then(|r| {
                let text = r.json()["text"].as_str()?.to_string();
                let start = text.find("http")?;
                Some(text[start..].split_whitespace().next()?.to_string())
            })
    });
    b.confirm_sign_in(&link);
}

fn event(agent: &ApiAgent, n: u64, ts: i64, session: &str, mode: &str) -> Value {
    let mut e = off_event(n, ts, "claude-sonnet-4-5", 1);
    e["project"] = json!(tally_core::hash::project_hash(&agent.salt, "/repo"));
    e["session"] = json!(tally_core::hash::session_hash(&agent.salt, session));
    e["mode"] = json!(mode);
    if mode == "full" {
        e["prompt"] = json!(format!("prompt {n}"));
        e["response"] = json!(format!("answer {n}"));
    }
    e
}

#[test]
fn sessions_page_shows_a_chip_per_capture_mode() {
    let (stack, mail) = stack_with_email();
    let team = stack.bootstrap("Acme", "owner@acme.test");
    let tid = team.team_id.clone();
    let owner = stack.sign_in(&team.signin_path);
    stack.d1(&format!(
        "UPDATE teams SET privacy_mode = 'full', retention_days = 30 WHERE id = '{tid}'"
    ));
    let ada = stack.enroll(&team.install_token);
    let issued =
        body_json(owner.post_json("/api/install-tokens", json!({"developer_name": "Bea"})));
    let bea = stack.enroll(issued["install_token"].as_str().unwrap());
    let now = now_ms();
    // Ada's session was captured partly in Off, partly in Full; Bea's only in Full.
    assert_eq!(
        status(&ada.post(&batch(
            "batch-sv-ada-00000001",
            vec![
                event(&ada, 1, now - 600_000, "s1", "off"),
                event(&ada, 2, now - 60_000, "s1", "full"),
            ]
        ))),
        202
    );
    assert_eq!(
        status(&bea.post(&batch(
            "batch-sv-bea-00000001",
            vec![event(&bea, 3, now - 60_000, "s2", "full")]
        ))),
        202
    );
    stack.eventually("batches applied", Duration::from_secs(30), || {
        let r = stack.d1(&format!(
            "SELECT COALESCE(SUM(requests),0) AS n FROM sessions WHERE team_id = '{tid}'"
        ));
        (r[0]["n"] == 3).then_some(())
    });
    let s1 = tally_core::hash::session_hash(&ada.salt, "s1");
    let s2 = tally_core::hash::session_hash(&bea.salt, "s2");

    let b = Browser::start();
    browser_sign_in(&stack, &mail, &b, "owner@acme.test");
    b.goto(&stack.url("/sessions"));
    let chips = |s: &str| b.text(&format!("tr[data-session='{s}'] [data-testid=modes]"));
    assert_eq!(
        chips(&s1).split_whitespace().collect::<Vec<_>>(),
        ["Off", "Full"]
    );
    assert_eq!(chips(&s2).split_whitespace().collect::<Vec<_>>(), ["Full"]);
    b.find(&format!(
        "tr[data-session='{s1}'] .chip.mode-full[data-mode=full]"
    ));
    b.find(&format!(
        "tr[data-session='{s1}'] .chip.mode-off[data-mode=off]"
    ));
    // The chips are styled by the static stylesheet (no inline style under the CSP).
    let bg = b.eval(&format!(
        "return getComputedStyle(document.querySelector(\"tr[data-session='{s1}'] .chip.mode-full\")).backgroundColor"
    ));
    assert_eq!(bg, json!("rgb(254, 226, 226)"));
    b.screenshot("20-sessions-mode-chips");

    // The download names the modes by their wire names.
    let csv = owner
        .get("/sessions?format=csv")
        .unwrap()
        .into_string()
        .unwrap();
    assert!(csv.lines().next().unwrap().ends_with(",modes"), "{csv}");
    assert!(csv.contains("off full"), "{csv}");

    // The timeline shows the same chip for each request.
    b.goto(&stack.url(&format!("/sessions/{s1}")));
    b.find("article[data-testid=request] .chip.mode-full[data-mode=full]");
}
