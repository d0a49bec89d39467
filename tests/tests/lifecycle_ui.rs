//! The data lifecycle as the dashboard offers it, against the local stack:
//! Full-mode session timelines and their exports (owners and admins only,
//! audited, no-store), leaving Full with "erase now" or "age out", erasing
//! a developer without changing team totals, scheduling and cancelling a
//! team's deletion, and the retention statement on the Settings page.

use std::time::Duration;

use serde_json::{json, Value};
use tally_e2e::{
    batch, body_json, form_escape, now_ms, off_event, status, ApiAgent, Stack, WebClient,
};

const LONG_WORD: &str = "elephant ";

fn full_event(agent: &ApiAgent, n: u64, ts: i64, session: &str, prompt: &str) -> Value {
    let mut e = off_event(n, ts, "claude-sonnet-4-5", 1);
    e["project"] = json!(tally_core::hash::project_hash(&agent.salt, "/repo"));
    e["session"] = json!(tally_core::hash::session_hash(&agent.salt, session));
    e["mode"] = json!("full");
    e["prompt"] = json!(prompt);
    e["response"] = json!(format!("answer {n}"));
    e["tools"] = json!(["Read", "Edit"]);
    e
}

fn post_form(
    stack: &Stack,
    c: &WebClient,
    path: &str,
    fields: &[(&str, &str)],
) -> (u16, String, String) {
    let body: String = fields
        .iter()
        .map(|(k, v)| format!("{k}={}", form_escape(v)))
        .collect::<Vec<_>>()
        .join("&");
    let r = c
        .agent
        .post(&stack.url(path))
        .set("Cookie", &c.cookie)
        .set("Content-Type", "application/x-www-form-urlencoded")
        .send_string(&body);
    match r {
        Ok(r) => (
            r.status(),
            r.header("Location").unwrap_or_default().to_string(),
            r.into_string().unwrap_or_default(),
        ),
        Err(ureq::Error::Status(code, r)) => {
            (code, String::new(), r.into_string().unwrap_or_default())
        }
        Err(e) => panic!("transport error: {e}"),
    }
}

fn get_page(c: &WebClient, path: &str) -> (u16, String, Option<String>) {
    match c.get(path) {
        Ok(r) => {
            let cc = r.header("Cache-Control").map(str::to_string);
            (r.status(), r.into_string().unwrap(), cc)
        }
        Err(ureq::Error::Status(code, r)) => {
            let cc = r.header("Cache-Control").map(str::to_string);
            (code, r.into_string().unwrap_or_default(), cc)
        }
        Err(e) => panic!("transport error: {e}"),
    }
}

fn audit(stack: &Stack, team: &str, action: &str) -> Vec<Value> {
    stack.audit_details(team, action)
}

fn totals(stack: &Stack, team: &str) -> Value {
    let u = stack.d1(&format!(
        "SELECT COALESCE(SUM(requests),0) AS requests, COALESCE(SUM(cost_micro_usd),0) AS micro, COALESCE(SUM(cost_pico_usd),0) AS pico FROM usage_q WHERE team_id = '{team}'"
    ));
    let s = stack.d1(&format!(
        "SELECT COUNT(*) AS sessions, COALESCE(SUM(requests),0) AS requests FROM sessions WHERE team_id = '{team}'"
    ));
    json!({"usage": u[0], "sessions": s[0]})
}

fn wait_requests(stack: &Stack, team: &str, n: u64) {
    stack.eventually("batches applied", Duration::from_secs(30), || {
        (totals(stack, team)["usage"]["requests"] == n).then_some(())
    });
}

fn count(stack: &Stack, sql: &str) -> u64 {
    stack.d1(sql)[0]["n"].as_u64().unwrap()
}

#[test]
fn timelines_exports_purge_and_developer_erasure() {
    let stack = Stack::start();
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
    // Every request of this test within one UTC day (content is filed per
    // day): in the first hours of a day, pretend it is just before midnight.
    let now = {
        let n = now_ms();
        let into_day = n.rem_euclid(86_400_000);
        if into_day < 3 * 3_600_000 {
            n - into_day - 60_000
        } else {
            n
        }
    };
    let long = LONG_WORD.repeat(120);
    assert_eq!(
        status(&ada.post(&batch(
            "batch-ui-ada-0000001",
            vec![
                full_event(&ada, 1, now - 7_200_000, "s1", "prompt one"),
                full_event(&ada, 2, now - 3_600_000, "s1", &long),
                full_event(&ada, 3, now - 60_000, "s1", "prompt three"),
            ]
        ))),
        202
    );
    assert_eq!(
        status(&bea.post(&batch(
            "batch-ui-bea-0000001",
            vec![full_event(&bea, 4, now - 60_000, "s2", "bea's prompt")]
        ))),
        202
    );
    wait_requests(&stack, &tid, 4);
    let s1 = tally_core::hash::session_hash(&ada.salt, "s1");
    let s2 = tally_core::hash::session_hash(&bea.salt, "s2");
    // Category rows of both developers, to see erasure take only Bea's.
    for dev in [&ada.developer_id, &bea.developer_id] {
        stack.d1(&format!(
            "INSERT INTO categories (team_id, day, developer_id, project, category, task_hint, project_hint, requests) VALUES ('{tid}', {}, '{dev}', 'p', 'testing', 't', 'h', 1)",
            now.div_euclid(86_400_000)
        ));
    }

    // The sessions page links sessions with content to their timelines.
    let (code, sessions, _) = get_page(&owner, "/sessions");
    assert_eq!(code, 200);
    assert!(
        sessions.contains(&format!("href=\"/sessions/{s1}\"")),
        "{sessions}"
    );
    assert!(sessions.contains(&format!("href=\"/sessions/{s2}\"")));

    // The timeline: every request in order, long text folded, mode chip, no-store.
    let (code, page, cache) = get_page(&owner, &format!("/sessions/{s1}"));
    assert_eq!(code, 200, "{page}");
    assert_eq!(cache.as_deref(), Some("no-store"));
    assert_eq!(page.matches("data-testid=\"request\"").count(), 3);
    let (p1, p3) = (
        page.find("prompt one").unwrap(),
        page.find("prompt three").unwrap(),
    );
    assert!(p1 < p3, "in the order they happened");
    assert!(page.contains("<details data-testid=\"fold\"><summary>show more</summary>"));
    assert!(
        page.contains(long.trim_end()),
        "the whole long text is inside <details>"
    );
    assert!(page.contains("data-mode=\"full\"") && page.contains(">Full</span>"));
    assert!(page.contains("Tools: Read, Edit"));
    assert!(page.contains("data-testid=\"time-index\""));
    assert!(page.contains("no link between a session and the subagents"));
    assert!(!page.contains("bea&#39;s prompt") && !page.contains("bea's prompt"));
    assert!(!page.contains("<script>") && !page.contains("style="));

    // Exports, JSON and Markdown.
    let (code, j, cache) = get_page(&owner, &format!("/sessions/{s1}/export?format=json"));
    assert_eq!((code, cache.as_deref()), (200, Some("no-store")));
    let j: Value = serde_json::from_str(&j).unwrap();
    assert_eq!(j["session"], s1.as_str());
    let events = j["events"].as_array().unwrap();
    assert_eq!(events.len(), 3);
    assert_eq!(events[0]["prompt"], "prompt one");
    assert_eq!(events[0]["mode"], "full");
    assert_eq!(events[1]["tools"], json!(["Read", "Edit"]));
    assert!(events[0]["cost_usd"].is_string(), "{}", events[0]);
    let (code, md, _) = get_page(&owner, &format!("/sessions/{s1}/export?format=md"));
    assert_eq!(code, 200);
    assert!(md.starts_with(&format!("# Session {s1}")), "{md}");
    assert!(md.contains("prompt three") && md.contains("- mode: full"));
    let (code, _, _) = get_page(&owner, &format!("/sessions/{s1}/export?format=pdf"));
    assert_eq!(code, 400);
    let (code, _, _) = get_page(&owner, "/sessions/00ff");
    assert_eq!(code, 404);

    // Audited, and the developer's content dated as viewed (Ada's, not Bea's).
    let views = audit(&stack, &tid, "content.view");
    assert_eq!(views.len(), 1);
    assert_eq!(views[0]["session"], s1.as_str());
    let exports = audit(&stack, &tid, "content.export");
    assert_eq!(exports.len(), 2);
    assert_eq!(exports[0]["format"], "json");
    assert_eq!(exports[1]["format"], "md");
    let viewed = stack.d1(&format!(
        "SELECT id, content_viewed_at FROM developers WHERE team_id = '{tid}' ORDER BY id"
    ));
    for d in &viewed {
        assert_eq!(
            d["content_viewed_at"].is_number(),
            d["id"] == ada.developer_id.as_str(),
            "{viewed:?}"
        );
    }
    let (_, devs, _) = get_page(&owner, "/developers");
    assert!(devs.contains("table-content-viewed"));
    assert!(devs.contains("never"), "Bea's content was never viewed");

    // Viewers see numbers only: 403 as a page, no timeline links.
    stack.d1(&format!(
        "UPDATE members SET role = 'viewer' WHERE team_id = '{tid}'"
    ));
    let (code, page, _) = get_page(&owner, &format!("/sessions/{s1}"));
    assert_eq!(code, 403);
    assert!(page.contains("<html"), "answered in HTML: {page}");
    let (code, _, _) = get_page(&owner, &format!("/sessions/{s1}/export?format=json"));
    assert_eq!(code, 403);
    let (_, sessions, _) = get_page(&owner, "/sessions");
    assert!(!sessions.contains("timeline-link"));
    assert_eq!(
        audit(&stack, &tid, "content.view").len(),
        1,
        "refusals read nothing"
    );
    stack.d1(&format!(
        "UPDATE members SET role = 'owner' WHERE team_id = '{tid}'"
    ));

    // Erasing Bea: typed confirmation, then her content and category rows
    // go, Ada's stay, and team totals do not move.
    let before = totals(&stack, &tid);
    let prefix = format!("teams/{tid}/content/");
    let keys = stack.r2_keys(&prefix);
    assert_eq!(keys.len(), 2, "{keys:?}");
    let (code, _, _) = post_form(
        &stack,
        &owner,
        "/developers/erase",
        &[
            ("csrf", &owner.csrf),
            ("developer_id", &bea.developer_id),
            ("confirm_name", "Bee"),
        ],
    );
    assert_eq!(code, 400);
    let (_, tokens, _) = get_page(&owner, "/tokens");
    assert!(tokens.contains("erase-developer-form"));
    let (code, loc, _) = post_form(
        &stack,
        &owner,
        "/developers/erase",
        &[
            ("csrf", &owner.csrf),
            ("developer_id", &bea.developer_id),
            ("confirm_name", "Bea"),
        ],
    );
    assert_eq!(
        (code, loc.as_str()),
        (303, "/tokens?saved=developer+erased")
    );
    assert_eq!(totals(&stack, &tid), before, "team totals unchanged");
    let left = stack.r2_keys(&prefix);
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].contains(&s1), "Ada's object stays");
    let n = |sql: String| count(&stack, &sql);
    assert_eq!(n(format!("SELECT COUNT(*) AS n FROM content_objects WHERE team_id = '{tid}' AND developer_id = '{}'", bea.developer_id)), 0);
    assert_eq!(n(format!("SELECT COUNT(*) AS n FROM content_objects WHERE team_id = '{tid}' AND developer_id = '{}'", ada.developer_id)), 1);
    assert_eq!(
        n(format!(
            "SELECT COUNT(*) AS n FROM categories WHERE team_id = '{tid}' AND developer_id = '{}'",
            bea.developer_id
        )),
        0
    );
    assert_eq!(
        n(format!(
            "SELECT COUNT(*) AS n FROM categories WHERE team_id = '{tid}' AND developer_id = '{}'",
            ada.developer_id
        )),
        1
    );
    assert_eq!(
        n(format!(
            "SELECT COUNT(*) AS n FROM usage_q WHERE team_id = '{tid}' AND developer_id = '{}'",
            bea.developer_id
        )),
        0
    );
    assert_eq!(n(format!("SELECT COUNT(*) AS n FROM developers WHERE team_id = '{tid}' AND name = 'Former developer 1' AND id <> '{}'", bea.developer_id)), 1);
    assert_eq!(n(format!("SELECT COUNT(*) AS n FROM agent_tokens WHERE team_id = '{tid}' AND developer_id = '{}' AND revoked_at IS NULL", bea.developer_id)), 0);
    let erased = audit(&stack, &tid, "developer.remove");
    assert_eq!(erased.len(), 1);
    assert_eq!(erased[0]["erase"], true);
    assert_eq!(erased[0]["developer_id"], bea.developer_id.as_str());
    assert_eq!(
        audit(&stack, &tid, "developer.erased").len(),
        1,
        "the job finished inline"
    );
    let (code, _, _) = get_page(&owner, &format!("/sessions/{s2}"));
    assert_eq!(code, 404, "no content left for Bea's session");

    // Removing Ada revokes her agent and keeps her content.
    let (code, _, _) = post_form(
        &stack,
        &owner,
        "/developers/remove",
        &[("csrf", &owner.csrf), ("developer_id", &ada.developer_id)],
    );
    assert_eq!(code, 303);
    assert_eq!(stack.r2_keys(&prefix).len(), 1);
    assert_eq!(
        status(&ada.post(&batch(
            "batch-ui-ada-0000002",
            vec![off_event(9, now, "claude-sonnet-4-5", 1)]
        ))),
        403
    );
    assert_eq!(audit(&stack, &tid, "developer.remove")[1]["erase"], false);

    // Leaving Full with "age out": the content stays.
    let (_, settings, _) = get_page(&owner, "/settings");
    assert!(settings.contains("data-testid=\"purge-choice\""));
    let (code, _, _) = post_form(
        &stack,
        &owner,
        "/settings/privacy",
        &[("csrf", &owner.csrf), ("mode", "off"), ("purge", "age_out")],
    );
    assert_eq!(code, 303);
    assert_eq!(stack.r2_keys(&prefix).len(), 1);
    assert_eq!(
        audit(&stack, &tid, "content.purge"),
        vec![json!({"choice": "age_out"})]
    );

    // Back to Full, then leaving it with "erase now": objects and index go at once.
    let (code, _, _) = post_form(
        &stack,
        &owner,
        "/settings/privacy",
        &[
            ("csrf", &owner.csrf),
            ("mode", "full"),
            ("confirm_full", "yes"),
        ],
    );
    assert_eq!(code, 303);
    let (code, _, _) = post_form(
        &stack,
        &owner,
        "/settings/privacy",
        &[
            ("csrf", &owner.csrf),
            ("mode", "categorize_local"),
            ("purge", "now"),
        ],
    );
    assert_eq!(code, 303);
    assert!(stack.r2_keys(&prefix).is_empty());
    assert_eq!(
        n(format!(
            "SELECT COUNT(*) AS n FROM content_objects WHERE team_id = '{tid}'"
        )),
        0
    );
    let purges = audit(&stack, &tid, "content.purge");
    assert_eq!(purges[1], json!({"choice": "now"}));
    let purged = audit(&stack, &tid, "content.purged");
    assert_eq!(purged.len(), 1);
    assert_eq!(purged[0]["objects_deleted"], 1);
    assert_eq!(totals(&stack, &tid), before, "aggregates are never purged");
}

#[test]
fn team_deletion_locks_out_non_owners_and_cancel_restores() {
    let stack = Stack::start();
    let team = stack.bootstrap("Acme Corp", "owner@acme.test");
    let tid = team.team_id.clone();
    let owner = stack.sign_in(&team.signin_path);
    let agent = stack.enroll(&team.install_token);
    let now = now_ms();

    // The retention statement, read back from the page.
    let (_, settings, _) = get_page(&owner, "/settings");
    for line in [
        "kept forever",
        "Full-mode content and categorization output",
        "dated by when it was said",
        "Idempotency markers",
        "30 days",
        "Audit log",
        "two years",
        "leaving only an operator tombstone",
    ] {
        assert!(settings.contains(line), "{line} missing");
    }
    assert!(settings.contains("delete-team-form"));

    // The wrong name changes nothing.
    let (code, loc, _) = post_form(
        &stack,
        &owner,
        "/settings/delete-team",
        &[("csrf", &owner.csrf), ("confirm_name", "Acme")],
    );
    assert_eq!(code, 303);
    assert!(loc.contains("error="), "{loc}");
    assert!(stack.d1(&format!(
        "SELECT delete_after FROM teams WHERE id = '{tid}'"
    ))[0]["delete_after"]
        .is_null());

    let (code, _, _) = post_form(
        &stack,
        &owner,
        "/settings/delete-team",
        &[("csrf", &owner.csrf), ("confirm_name", "Acme Corp")],
    );
    assert_eq!(code, 303);
    let row = &stack.d1(&format!(
        "SELECT deleted_at, delete_after, deleted_by FROM teams WHERE id = '{tid}'"
    ))[0];
    let after = row["delete_after"].as_i64().unwrap();
    assert!((after - now - 30 * 86_400_000).abs() < 120_000, "{row}");
    assert_eq!(row["deleted_by"], "owner@acme.test");
    assert_eq!(audit(&stack, &tid, "team.delete").len(), 1);

    // Ingest answers 410; the owner sees the banner with its cancel form.
    let r = agent.post(&batch(
        "batch-del-000000001",
        vec![off_event(1, now, "claude-sonnet-4-5", 1)],
    ));
    assert_eq!(status(&r), 410);
    let (code, settings, _) = get_page(&owner, "/settings");
    assert_eq!(code, 200);
    assert!(settings.contains("data-testid=\"deletion-banner\""));
    assert!(settings.contains("scheduled for deletion on"));
    assert!(settings.contains("data-testid=\"cancel-deletion\""));
    assert!(!settings.contains("delete-team-form"));

    // Members other than owners are refused with a clear page.
    stack.d1(&format!(
        "UPDATE members SET role = 'admin' WHERE team_id = '{tid}'"
    ));
    let (code, page, _) = get_page(&owner, "/");
    assert_eq!(code, 403);
    assert!(page.contains("scheduled for deletion"), "{page}");
    let (code, _, _) = get_page(&owner, "/api/me");
    assert_eq!(code, 403);
    stack.d1(&format!(
        "UPDATE members SET role = 'owner' WHERE team_id = '{tid}'"
    ));

    // Cancelling restores everything.
    let (code, _, _) = post_form(
        &stack,
        &owner,
        "/settings/cancel-deletion",
        &[("csrf", &owner.csrf)],
    );
    assert_eq!(code, 303);
    let row = &stack.d1(&format!(
        "SELECT deleted_at, delete_after FROM teams WHERE id = '{tid}'"
    ))[0];
    assert!(
        row["deleted_at"].is_null() && row["delete_after"].is_null(),
        "{row}"
    );
    assert_eq!(audit(&stack, &tid, "team.delete_cancel").len(), 1);
    let (_, settings, _) = get_page(&owner, "/settings");
    assert!(!settings.contains("deletion-banner"));
    let r = agent.post(&batch(
        "batch-del-000000002",
        vec![off_event(2, now, "claude-sonnet-4-5", 1)],
    ));
    assert_eq!(status(&r), 202);
}

/// In Chromium: a timeline's long prompt unfolds with "show more" (a
/// `<details>`, no script), and the team-deletion form shows its banner,
/// which cancels.
#[test]
fn timeline_and_team_deletion_in_a_real_browser() {
    use tally_e2e::webdriver::Browser;

    let stack = Stack::start();
    let team = stack.bootstrap("Acme", "owner@acme.test");
    let tid = team.team_id.clone();
    stack.d1(&format!(
        "UPDATE teams SET privacy_mode = 'full' WHERE id = '{tid}'"
    ));
    let agent = stack.enroll(&team.install_token);
    let long = format!("{}the end of a long prompt", LONG_WORD.repeat(100));
    assert_eq!(
        status(&agent.post(&batch(
            "batch-browser-000001",
            vec![full_event(&agent, 1, now_ms() - 60_000, "s1", &long)]
        ))),
        202
    );
    wait_requests(&stack, &tid, 1);
    let s1 = tally_core::hash::session_hash(&agent.salt, "s1");

    let b = Browser::start();
    b.confirm_sign_in(&stack.url(&team.signin_path));
    b.goto(&stack.url("/sessions"));
    b.click("[data-testid=timeline-link]");
    b.wait_for("[data-testid=request]");
    assert!(b.current_url().ends_with(&format!("/sessions/{s1}")));
    // Folded: the whole text is not rendered until "show more" is clicked.
    assert!(!b
        .text("[data-testid=prompt]")
        .contains("the end of a long prompt"));
    b.click("[data-testid=fold] summary");
    assert!(b
        .text("[data-testid=full-text]")
        .contains("the end of a long prompt"));
    b.screenshot("lifecycle-timeline-unfolded");

    // Schedule the deletion by typing the name; the banner offers cancel.
    b.goto(&stack.url("/settings"));
    b.type_into("[data-testid=confirm-name]", "Acme");
    b.click("[data-testid=delete-team]");
    let banner = b.text("[data-testid=deletion-banner]");
    assert!(banner.contains("scheduled for deletion on"), "{banner}");
    b.goto(&stack.url("/"));
    assert!(b
        .text("[data-testid=deletion-banner]")
        .contains("scheduled for deletion on"));
    b.screenshot("lifecycle-deletion-banner");
    b.click("[data-testid=cancel-deletion]");
    b.wait_for("[data-testid=saved]");
    assert!(b.try_find("[data-testid=deletion-banner]").is_none());
    assert!(stack.d1(&format!(
        "SELECT delete_after FROM teams WHERE id = '{tid}'"
    ))[0]["delete_after"]
        .is_null());
}
