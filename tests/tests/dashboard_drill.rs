//! The dashboard's second round (issue 13), in a real headless Chromium on a
//! known data set: the first-run checklist ticking its last step live, the
//! period's spend against the previous one, every drill-down (developer,
//! project, model, session) keeping the range, sortable and paged tables
//! with exact page boundaries, sticky headers, confirmations before revoke
//! and role changes, pending install tokens, inline project rename, and
//! every page (self-view and timeline included) at 1400 and 390 px without
//! sideways scrolling or serious/critical axe-core violations.
//!
//! Time: every event sits on whole UTC days well before today, and pages
//! are opened with explicit `from`/`to`, so the wall-clock time of day
//! never matters.

use std::time::Duration;

use serde_json::{json, Value};
use tally_core::time::{utc_date, DAY_MS, HOUR_MS};
use tally_e2e::webdriver::Browser;
use tally_e2e::{batch, now_ms, off_event, status, ApiAgent, Stack};

/// An Off-mode event with exact input tokens only.
fn ev(n: u64, ts: i64, model: &str, input: u64, project: &str, session: &str) -> Value {
    let mut e = off_event(n, ts, model, 0);
    e["tokens"] = json!({"input": input, "output": 0, "cache_write_5m": 0, "cache_write_1h": 0, "cache_read": 0});
    e["project"] = json!(project);
    e["session"] = json!(session);
    e
}

fn attr(b: &Browser, css: &str, name: &str) -> String {
    b.wait_for(css);
    b.eval(&format!(
        "return document.querySelector({css:?}).getAttribute({name:?})"
    ))
    .as_str()
    .unwrap_or_default()
    .to_string()
}

/// The first cells (text) of a table's body rows, in order.
fn first_cells(b: &Browser, table: &str) -> Vec<String> {
    b.wait_for(&format!("[data-testid=table-{table}]"));
    let v = b.eval(&format!(
        "return [...document.querySelectorAll('[data-testid=table-{table}] tbody tr')].map(r => r.cells[0].textContent.trim())"
    ));
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

/// Text and hover title of `column` in the row whose first cell is `first`.
fn cell(b: &Browser, table: &str, first: &str, column: &str) -> (String, String) {
    let v = b.eval(&format!(
        "const rows = [...document.querySelectorAll('[data-testid=table-{table}] tbody tr')];
         const r = rows.find(r => r.cells[0].textContent.trim() === {first:?});
         if (!r) return null;
         const c = r.querySelector('td[data-label=\"{column}\"]');
         return [c.textContent.trim(), c.getAttribute('title') || ''];"
    ));
    assert!(!v.is_null(), "no row {first} in {table}:\n{}", b.source());
    (
        v[0].as_str().unwrap().to_string(),
        v[1].as_str().unwrap().to_string(),
    )
}

fn session_rows(b: &Browser) -> Vec<String> {
    b.eval("return [...document.querySelectorAll('[data-testid=session-row]')].map(r => r.dataset.session)")
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

fn short(hash: &str) -> String {
    format!("{}…", &hash[..12])
}

fn path_of(b: &Browser) -> String {
    b.eval("return location.pathname + location.search")
        .as_str()
        .unwrap()
        .to_string()
}

fn mint_self_view(stack: &Stack, agent: &ApiAgent) -> String {
    let r = ureq::post(&stack.url("/v1/agent/self-view"))
        .set("Authorization", &format!("Bearer {}", agent.token))
        .call()
        .unwrap();
    let v: Value = r.into_json().unwrap();
    v["path"].as_str().unwrap().to_string()
}

#[test]
fn drill_downs_sorting_paging_confirmations_and_every_page_at_both_widths() {
    let (stack, mail) = Stack::with_email();
    let team = stack.bootstrap("Acme Robotics", "owner@acme.test");
    let tid = team.team_id.clone();
    let b = Browser::start();
    b.resize(1400, 1000);
    b.confirm_sign_in(&stack.url(&team.signin_path));

    // The bootstrap's install token waits on the Tokens page with its expiry.
    b.goto(&stack.url("/tokens"));
    assert_eq!(first_cells(&b, "pending-tokens"), ["owner@acme.test"]);
    let tok = stack.d1(&format!(
        "SELECT created_at, expires_at FROM install_tokens WHERE team_id = '{tid}'"
    ));
    let (created, expires) = (
        tok[0]["created_at"].as_i64().unwrap(),
        tok[0]["expires_at"].as_i64().unwrap(),
    );
    assert_eq!(expires - created, 7 * DAY_MS);
    let minutes = expires.rem_euclid(DAY_MS) / 60_000;
    assert_eq!(
        b.text("[data-testid=pending-expires]"),
        format!(
            "{} {:02}:{:02}",
            utc_date(expires),
            minutes / 60,
            minutes % 60
        )
    );

    // First run: the checklist ticks "first events" by itself, no reload.
    b.goto(&stack.url("/"));
    b.wait_for("[data-testid=first-run]");
    assert_eq!(attr(&b, "[data-testid=step-token]", "data-done"), "true");
    assert_eq!(attr(&b, "[data-testid=step-command]", "data-done"), "false");
    assert_eq!(attr(&b, "[data-testid=step-events]", "data-done"), "false");
    b.eval("window.__same_page = 'yes'; return true;");

    let today = now_ms().div_euclid(DAY_MS);
    let (from, to) = (today - 20, today - 14);
    let range = format!(
        "from={}&to={}",
        utc_date(from * DAY_MS),
        utc_date(to * DAY_MS)
    );
    let noon = |day: i64| day * DAY_MS + 12 * HOUR_MS;

    let ada = stack.enroll(&team.install_token);
    let p1 = tally_core::hash::project_hash(&ada.salt, "/robot-arm");
    let p2 = tally_core::hash::project_hash(&ada.salt, "/firmware");
    let p3 = tally_core::hash::project_hash(&ada.salt, "/load-test");
    let s = |name: &str| tally_core::hash::session_hash(&ada.salt, name);
    // Current period: Ada $1.00 (Haiku, P1) + $0.30 (Sonnet, P2); Bea $0.50
    // (Haiku, P1). Previous period: Ada $1.44. Haiku is $1 and Sonnet $3
    // per million input tokens.
    assert_eq!(
        status(&ada.post(&batch(
            "batch-drill-ada-00001",
            vec![
                ev(1, noon(from), "claude-haiku-4-5", 1_000_000, &p1, &s("a1")),
                ev(
                    2,
                    noon(from + 5),
                    "claude-sonnet-4-5",
                    100_000,
                    &p2,
                    &s("a2")
                ),
                ev(
                    3,
                    noon(from - 5),
                    "claude-haiku-4-5",
                    1_440_000,
                    &p1,
                    &s("a0")
                ),
            ],
        ))),
        202
    );
    b.wait_until(
        "return document.querySelector('[data-testid=step-events]').dataset.done === 'true'",
        Duration::from_secs(60),
    );
    assert_eq!(attr(&b, "[data-testid=step-command]", "data-done"), "true");
    assert_eq!(
        b.eval("return [document.querySelector('[data-testid=events-waiting]').hidden, document.querySelector('[data-testid=events-arrived]').hidden, window.__same_page]"),
        json!([true, false, "yes"])
    );
    b.screenshot("drill-first-run-live-1400");

    // Bea gets her install token from the Tokens page; it waits there.
    b.goto(&stack.url("/tokens"));
    b.type_into("[data-testid=developer-name]", "Bea");
    b.click_and_load("[data-testid=create-token]");
    let manual = b.text("[data-testid=install-command-manual]");
    let bea_token = manual.rsplit(' ').next().unwrap().to_string();
    b.goto(&stack.url("/tokens"));
    assert_eq!(first_cells(&b, "pending-tokens"), ["Bea"]);
    let bea = stack.enroll(&bea_token);
    b.goto(&stack.url("/tokens"));
    b.wait_for("[data-testid=no-pending-tokens]");

    // 55 sessions of Bea on one day, session k costing 1,000·k Sonnet tokens.
    let page_day = today - 40;
    let pages: Vec<Value> = (1..=55u64)
        .map(|k| {
            ev(
                100 + k,
                noon(page_day) + k as i64 * 1000,
                "claude-sonnet-4-5",
                1000 * k,
                &p3,
                &tally_core::hash::session_hash(&bea.salt, &format!("page-{k}")),
            )
        })
        .collect();
    let mut bea_events = vec![ev(
        4,
        noon(to),
        "claude-haiku-4-5",
        500_000,
        &p1,
        &tally_core::hash::session_hash(&bea.salt, "b1"),
    )];
    bea_events.extend(pages);
    assert_eq!(
        status(&bea.post(&batch("batch-drill-bea-00001", bea_events))),
        202
    );
    stack.eventually("all 59 requests applied", Duration::from_secs(60), || {
        let r = stack.d1(&format!(
            "SELECT COALESCE(SUM(requests), 0) AS n FROM usage_q WHERE team_id = '{tid}'"
        ));
        (r[0]["n"] == 59).then_some(())
    });

    // 1. The period against the previous one of equal length, exactly.
    b.goto(&stack.url(&format!("/?{range}")));
    assert_eq!(b.text("[data-testid=spend-range]"), "$1.80");
    assert_eq!(b.text("[data-testid=spend-previous]"), "$1.44");
    assert_eq!(b.text("[data-testid=spend-change]"), "▲ 25.0%");
    assert_eq!(
        attr(&b, "[data-testid=spend-change]", "data-direction"),
        "up"
    );
    let cmp = b.text("[data-testid=spend-compare]");
    assert!(
        cmp.contains(&format!(
            "against the previous 7 days ({} to {}: $1.44)",
            utc_date((from - 7) * DAY_MS),
            utc_date((from - 1) * DAY_MS)
        )),
        "{cmp}"
    );
    // The model table follows the range and drills down keeping it.
    assert_eq!(cell(&b, "models", "claude-haiku-4-5", "cost").0, "$1.50");
    assert_eq!(
        attr(&b, "[data-testid=table-models] tbody td a", "href"),
        format!("/models/claude-haiku-4-5?{range}")
    );
    let api: Value = b.eval(&format!(
        "return fetch('/api/overview?{range}').then(r => r.json())"
    ));
    assert_eq!(api["spend_previous_usd"], "1.440000000000");
    assert_eq!(api["spend_range_usd"], "1.800000000000");
    // Nothing was spent in the week before the previous one: no percentage.
    let earlier = format!(
        "from={}&to={}",
        utc_date((from - 7) * DAY_MS),
        utc_date((from - 1) * DAY_MS)
    );
    b.goto(&stack.url(&format!("/?{earlier}")));
    assert_eq!(b.text("[data-testid=spend-change]"), "new spend");
    assert_eq!(
        attr(&b, "[data-testid=spend-change]", "data-direction"),
        "new"
    );

    // 2. Drill-downs. Developers → Ada: her projects, models, sessions, trend.
    b.goto(&stack.url(&format!("/developers?{range}")));
    assert_eq!(
        attr(&b, "[data-testid=table-developers] tbody td a", "href"),
        format!("/developers/{}?{range}", ada.developer_id)
    );
    b.click_and_load("[data-testid=table-developers] tbody td a");
    assert_eq!(b.text("[data-testid=drill-title]"), "owner@acme.test");
    assert_eq!(b.text("[data-testid=drill-cost]"), "$1.30");
    assert_eq!(b.text("[data-testid=drill-requests]"), "2");
    assert_eq!(
        first_cells(&b, "developer-projects"),
        [short(&p1), short(&p2)]
    );
    assert_eq!(
        cell(&b, "developer-projects", &short(&p2), "cost").0,
        "$0.30"
    );
    assert_eq!(
        first_cells(&b, "developer-models"),
        ["claude-haiku-4-5", "claude-sonnet-4-5"]
    );
    assert_eq!(
        cell(&b, "developer-models", "claude-sonnet-4-5", "input"),
        ("100k".into(), "100,000".into())
    );
    assert_eq!(session_rows(&b), [s("a1"), s("a2")]);
    // The trend: one point per day of the range, one series per model.
    let chart: Value = serde_json::from_str(&attr(&b, "#chart", "data-chart")).unwrap();
    assert_eq!(chart["x"].as_array().unwrap().len(), 7);
    assert_eq!(
        chart["models"],
        json!(["claude-haiku-4-5", "claude-sonnet-4-5"])
    );
    assert_eq!(chart["series"][0][0], json!(1.0));
    assert_eq!(chart["series"][1][5], json!(0.3));
    // Project → its developers, models and sessions, range kept.
    assert_eq!(
        attr(
            &b,
            "[data-testid=table-developer-projects] tbody td a",
            "href"
        ),
        format!("/projects/{p1}?{range}")
    );
    b.click_and_load("[data-testid=table-developer-projects] tbody td a");
    assert_eq!(
        first_cells(&b, "project-developers"),
        ["owner@acme.test", "Bea"]
    );
    assert_eq!(cell(&b, "project-developers", "Bea", "cost").0, "$0.50");
    assert_eq!(
        cell(&b, "project-models", "claude-haiku-4-5", "cost").0,
        "$1.50"
    );
    assert_eq!(
        cell(&b, "project-models", "claude-haiku-4-5", "requests").0,
        "2"
    );
    let b1 = tally_core::hash::session_hash(&bea.salt, "b1");
    assert_eq!(session_rows(&b), [s("a1"), b1.clone()]);
    // Model → its developers (and projects).
    b.goto(&stack.url(&format!("/models/claude-haiku-4-5?{range}")));
    assert_eq!(
        first_cells(&b, "model-developers"),
        ["owner@acme.test", "Bea"]
    );
    assert_eq!(
        cell(&b, "model-developers", "owner@acme.test", "cost").0,
        "$1.00"
    );
    assert_eq!(first_cells(&b, "model-projects"), [short(&p1)]);
    // Session → its figures; no Full content, so no timeline.
    b.goto(&stack.url(&format!("/sessions?{range}")));
    b.click_and_load(&format!(
        "tr[data-session='{}'] td a[href^='/sessions/']",
        s("a1")
    ));
    assert_eq!(
        path_of(&b),
        format!("/sessions/{}/summary?{range}", s("a1"))
    );
    assert_eq!(b.text("[data-testid=session-cost]"), "$1.00");
    assert_eq!(b.text("[data-testid=session-requests]"), "1");
    assert_eq!(
        attr(&b, "[data-testid=session-developer] a", "href"),
        format!("/developers/{}?{range}", ada.developer_id)
    );
    b.wait_for("[data-testid=session-no-timeline]");
    // Unknown keys are pages that say so.
    b.goto(&stack.url("/developers/nobody"));
    assert_eq!(
        b.text("[data-testid=error-message]"),
        "no such developer in this team"
    );

    // 3. Sorting keeps the range: cost descending, then ascending.
    b.goto(&stack.url(&format!("/developers?{range}")));
    b.click_and_load("[data-testid=sort-developers-cost]");
    assert_eq!(
        path_of(&b),
        format!("/developers?{range}&sort=cost&dir=desc")
    );
    assert_eq!(first_cells(&b, "developers"), ["owner@acme.test", "Bea"]);
    assert_eq!(
        attr(&b, "[data-testid=sort-developers-cost]", "href"),
        format!("/developers?{range}&sort=cost&dir=asc")
    );
    b.click_and_load("[data-testid=sort-developers-cost]");
    assert_eq!(first_cells(&b, "developers"), ["Bea", "owner@acme.test"]);
    assert_eq!(
        b.eval("return document.querySelector('[data-testid=sort-developers-cost]').closest('th').getAttribute('aria-sort')"),
        json!("ascending")
    );

    // Pages of 50 sessions: 1–50 then 51–55, most expensive first.
    let day = utc_date(page_day * DAY_MS);
    let page_of = |k: u64| tally_core::hash::session_hash(&bea.salt, &format!("page-{k}"));
    b.goto(&stack.url(&format!("/sessions?from={day}&to={day}")));
    assert_eq!(b.text("[data-testid=pager-showing]"), "Showing 1–50 of 55");
    let rows = session_rows(&b);
    assert_eq!(rows.len(), 50);
    assert_eq!(
        (rows[0].clone(), rows[49].clone()),
        (page_of(55), page_of(6))
    );
    b.click_and_load("[data-testid=pager-sessions] [data-testid=page-2]");
    assert_eq!(path_of(&b), format!("/sessions?from={day}&to={day}&page=2"));
    assert_eq!(b.text("[data-testid=pager-showing]"), "Showing 51–55 of 55");
    assert_eq!(
        session_rows(&b),
        (1..=5).rev().map(page_of).collect::<Vec<_>>()
    );
    let first_cost = b.eval(&format!(
        "const c = document.querySelector(\"tr[data-session='{}'] td[data-label=cost]\"); return [c.textContent.trim(), c.title]",
        page_of(5)
    ));
    assert_eq!(first_cost, json!(["$0.02", "$0.015"]));
    // Sorting by a header goes back to page 1 of the new order.
    b.click_and_load("[data-testid=sort-sessions-cost]");
    assert_eq!(
        path_of(&b),
        format!("/sessions?from={day}&to={day}&sort=cost&dir=desc")
    );
    b.click_and_load("[data-testid=sort-sessions-cost]");
    assert_eq!(session_rows(&b)[..3], [page_of(1), page_of(2), page_of(3)]);
    assert_eq!(
        attr(
            &b,
            "[data-testid=pager-sessions] [data-testid=page-2]",
            "href"
        ),
        format!("/sessions?from={day}&to={day}&sort=cost&dir=asc&page=2")
    );

    // The audit log pages too, keeping its filter: 55 exports → 50 + 5.
    b.eval("return (async () => { for (let i = 0; i < 55; i++) await fetch('/models?format=csv'); return true; })()");
    b.goto(&stack.url("/audit?action=export"));
    assert_eq!(b.text("[data-testid=pager-showing]"), "Showing 1–50 of 55");
    b.click_and_load("[data-testid=pager-audit] [data-testid=page-2]");
    assert_eq!(b.text("[data-testid=pager-showing]"), "Showing 51–55 of 55");
    assert_eq!(
        b.eval("return document.querySelectorAll('[data-testid=table-audit] tbody tr').length"),
        json!(5)
    );
    assert!(
        path_of(&b).starts_with("/audit?action=export&"),
        "{}",
        path_of(&b)
    );

    // Sticky headers: scrolled inside its region, the header row stays on top.
    b.resize(1400, 700);
    b.goto(&stack.url(&format!("/sessions?from={day}&to={day}")));
    let stuck = b.eval(
        "const region = document.querySelector('.scroll');
         region.scrollTop = 600;
         const th = region.querySelector('thead th');
         return [getComputedStyle(th).position, region.scrollTop > 0,
                 Math.round(th.getBoundingClientRect().top) === Math.round(region.getBoundingClientRect().top)]",
    );
    assert_eq!(stuck, json!(["sticky", true, true]));
    b.resize(1400, 1000);

    // 4. Confirmations. Revoking a pending install token: Cancel keeps it,
    // Confirm revokes it (and the audit log says so).
    b.goto(&stack.url("/tokens"));
    b.type_into("[data-testid=developer-name]", "Cy");
    b.click_and_load("[data-testid=create-token]");
    b.goto(&stack.url("/tokens"));
    assert_eq!(first_cells(&b, "pending-tokens"), ["Cy"]);
    b.click("[data-testid=revoke-install-token]");
    b.wait_until(
        "return document.getElementById('confirm-dialog').open",
        Duration::from_secs(10),
    );
    assert_eq!(
        b.text("[data-testid=confirm-text]"),
        "Revoke the unused install token for Cy? Its install command stops working."
    );
    b.click("[data-testid=confirm-cancel]");
    assert_eq!(
        b.eval("return document.getElementById('confirm-dialog').open"),
        json!(false)
    );
    b.goto(&stack.url("/tokens"));
    assert_eq!(first_cells(&b, "pending-tokens"), ["Cy"]);
    b.click("[data-testid=revoke-install-token]");
    b.wait_until(
        "return document.getElementById('confirm-dialog').open",
        Duration::from_secs(10),
    );
    b.click_and_load("[data-testid=confirm-ok]");
    b.wait_for("[data-testid=no-pending-tokens]");
    let revoked = stack.audit_details(&tid, "install_token.revoke");
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0]["developer"], "Cy");
    // Revoking an agent asks first, in its own row.
    b.click(&format!("[data-testid=revoke-{}]", bea.agent_id));
    b.wait_until(
        "return document.getElementById('confirm-dialog').open",
        Duration::from_secs(10),
    );
    assert!(
        b.text("[data-testid=confirm-text]")
            .starts_with("Revoke the agent of Bea on "),
        "{}",
        b.text("[data-testid=confirm-text]")
    );
    b.click_and_load("[data-testid=confirm-ok]");
    assert_eq!(
        stack.audit_details(&tid, "agent.revoke")[0]["agent_id"],
        bea.agent_id.as_str()
    );
    // A role change names the new role before it happens.
    b.goto(&stack.url("/members"));
    b.type_into("[data-testid=invite-email]", "vic@acme.test");
    b.click_and_load("[data-testid=invite-send]");
    b.goto(&stack.url("/members"));
    b.eval("const s = document.querySelector('select[aria-label=\"Role of vic@acme.test\"]'); s.value = 'admin'; return true;");
    b.click("form[data-confirm^='Make vic@acme.test'] [data-testid=change-role]");
    b.wait_until(
        "return document.getElementById('confirm-dialog').open",
        Duration::from_secs(10),
    );
    assert_eq!(
        b.text("[data-testid=confirm-text]"),
        "Make vic@acme.test admin? Their access changes at their next page."
    );
    b.click_and_load("[data-testid=confirm-ok]");
    let role = stack.d1(&format!(
        "SELECT role FROM members WHERE team_id = '{tid}' AND email = 'vic@acme.test'"
    ));
    assert_eq!(role[0]["role"], "admin");

    // 5. Invitations: pending until the first sign-in.
    let status_of = |email: &str| {
        b.text(&format!(
            "[data-testid=member-row][data-email='{email}'] [data-testid=member-status]"
        ))
    };
    assert_eq!(status_of("vic@acme.test"), "Invitation pending");
    assert_eq!(status_of("owner@acme.test"), "Active");
    let link_to = |email: &str| {
        mail.requests()
            .iter()
            .rev()
            .find(|r| r.json()["to"][0] == email)
            .and_then(|r| {
                let text = r.json()["text"].as_str()?.to_string();
                let start = text.find("/auth/link")?;
                Some(text[start..].split_whitespace().next()?.to_string())
            })
            .unwrap_or_else(|| panic!("no mail to {email}"))
    };
    stack.sign_in(&link_to("vic@acme.test"));
    b.goto(&stack.url("/members"));
    assert_eq!(status_of("vic@acme.test"), "Active");
    // A failed delivery shows on the page and in the audit log; a resend
    // that gets through clears it; a pending invitation can be withdrawn.
    mail.set_responder(|_| tally_e2e::fakes::Reply::json(500, json!({"message": "mail is down"})));
    b.type_into("[data-testid=invite-email]", "zoe@acme.test");
    b.click_and_load("[data-testid=invite-send]");
    b.wait_for("[data-testid=error-page]");
    b.goto(&stack.url("/members"));
    assert_eq!(status_of("zoe@acme.test"), "Invitation not delivered");
    let zoe = "[data-testid=member-row][data-email='zoe@acme.test']";
    b.click_and_load(&format!("{zoe} [data-testid=resend-invite]"));
    assert_eq!(
        b.text("[data-testid=members-error]"),
        "The invitation e-mail could not be sent again; the audit log records the failed delivery."
    );
    assert_eq!(status_of("zoe@acme.test"), "Invitation not delivered");
    mail.set_responder(tally_e2e::fakes::email_reply);
    b.click_and_load(&format!("{zoe} [data-testid=resend-invite]"));
    assert_eq!(b.text("[data-testid=saved]"), "Invitation sent again.");
    assert_eq!(status_of("zoe@acme.test"), "Invitation pending");
    let resent = stack.audit_details(&tid, "member.invite_resend");
    assert_eq!(
        resent,
        [
            json!({"email": "zoe@acme.test", "delivered": false}),
            json!({"email": "zoe@acme.test", "delivered": true})
        ]
    );
    assert_eq!(
        stack.audit_details(&tid, "member.invite").last().unwrap()["delivered"],
        false
    );
    b.click(&format!("{zoe} [data-testid=revoke-invite]"));
    b.wait_until(
        "return document.getElementById('confirm-dialog').open",
        Duration::from_secs(10),
    );
    assert_eq!(
        b.text("[data-testid=confirm-text]"),
        "Withdraw the invitation to zoe@acme.test? Their sign-in link stops working."
    );
    b.click_and_load("[data-testid=confirm-ok]");
    assert!(b.try_find(zoe).is_none());
    assert_eq!(
        stack.audit_details(&tid, "member.invite_revoke")[0]["email"],
        "zoe@acme.test"
    );
    // Its link no longer signs anyone in.
    let links = stack.d1(&format!(
        "SELECT COUNT(*) AS n FROM signin_links s JOIN members m ON m.id = s.member_id WHERE s.team_id = '{tid}' AND m.email = 'zoe@acme.test'"
    ));
    assert_eq!(links[0]["n"], 0);
    let gone = stack.d1(&format!(
        "SELECT COUNT(*) AS n FROM signin_links WHERE team_id = '{tid}' AND used_at IS NULL AND member_id NOT IN (SELECT id FROM members WHERE team_id = '{tid}')"
    ));
    assert_eq!(gone[0]["n"], 0);

    // Inline rename: in the project's own row, back on the same range.
    b.goto(&stack.url(&format!("/projects?{range}")));
    let row = format!("[data-testid=table-projects] tbody tr:has(a[href^='/projects/{p1}'])");
    b.type_into(&format!("{row} [data-testid=project-label]"), "Robot arm");
    b.click_and_load(&format!("{row} [data-testid=save-project-label]"));
    assert_eq!(path_of(&b), format!("/projects?{range}"));
    assert_eq!(
        b.eval(&format!(
            "return document.querySelector(\"{row} td[data-label=label]\").textContent.trim()"
        )),
        json!("Robot arm")
    );
    b.goto(&stack.url(&format!("/projects/{p1}?{range}")));
    assert_eq!(b.text("[data-testid=drill-title]"), "Robot arm");

    // A Full-mode session for the timeline page.
    stack.d1(&format!(
        "UPDATE teams SET privacy_mode = 'full' WHERE id = '{tid}'"
    ));
    let mut full = ev(9, noon(from + 1), "claude-sonnet-4-5", 1000, &p2, &s("f1"));
    full["mode"] = json!("full");
    full["prompt"] = json!("Add a limit switch to the arm");
    full["response"] = json!("Added the switch and a test.");
    assert_eq!(
        status(&ada.post(&batch("batch-drill-ada-00002", vec![full]))),
        202
    );
    stack.eventually("content stored", Duration::from_secs(60), || {
        let r = stack.d1(&format!(
            "SELECT COUNT(*) AS n FROM content_objects WHERE team_id = '{tid}'"
        ));
        (r[0]["n"] == 1).then_some(())
    });
    // A Full session's page leads to its requests one by one.
    b.goto(&stack.url(&format!("/sessions/{}/summary?{range}", s("f1"))));
    assert_eq!(
        attr(&b, "[data-testid=session-timeline]", "href"),
        format!("/sessions/{}", s("f1"))
    );
    b.click_and_load("[data-testid=session-timeline]");
    assert_eq!(
        b.eval("return document.querySelectorAll('[data-testid=request]').length"),
        json!(1)
    );
    // The developer's self-view, in the same browser (its cookie is /me's).
    b.goto(&stack.url(&mint_self_view(&stack, &ada)));
    b.click("[data-testid=confirm-self-view]");
    b.wait_for("[data-testid=me-header]");

    // 7. Every page at both widths: no sideways scrolling, no serious or
    // critical axe-core violation, a screenshot of each.
    let pages: Vec<(String, &str)> = vec![
        (format!("/?{range}"), "overview"),
        (format!("/developers?{range}"), "developers"),
        (
            format!("/developers/{}?{range}", ada.developer_id),
            "developer",
        ),
        (format!("/projects?{range}"), "projects"),
        (format!("/projects/{p1}?{range}"), "project"),
        (format!("/sessions?from={day}&to={day}"), "sessions"),
        (format!("/sessions/{}/summary?{range}", s("a1")), "session"),
        (format!("/sessions/{}", s("f1")), "timeline"),
        (format!("/models?{range}"), "models"),
        (format!("/models/claude-haiku-4-5?{range}"), "model"),
        ("/categories".into(), "categories"),
        ("/budgets".into(), "budgets"),
        ("/settings".into(), "settings"),
        ("/tokens".into(), "tokens"),
        ("/members".into(), "members"),
        ("/integrations".into(), "integrations"),
        ("/audit".into(), "audit"),
        ("/me".into(), "me"),
        ("/me/audit".into(), "me-audit"),
        ("/not-a-page".into(), "not-found"),
    ];
    for (width, height) in [(1400, 1000), (390, 844)] {
        b.resize(width, height);
        for (path, name) in &pages {
            b.goto(&stack.url(path));
            b.wait_for("main");
            assert!(b.fits_the_screen(), "{path} is wider than {width} px");
            b.screenshot(&format!("drill-{name}-{width}"));
            assert_eq!(
                b.axe_violations(),
                Vec::<String>::new(),
                "{path} at {width} px"
            );
        }
    }
}
