//! The dashboard as people meet it (issue 13), in a real headless Chromium:
//! the first-run checklist, figures formatted once (exact values on hover),
//! drill-downs that keep the range, the readable and filterable audit log,
//! a failed form ending on a page (not JSON), no sideways scrolling at 390 px
//! on any page, and zero serious or critical axe-core violations on every
//! page at both widths (`Browser::axe_violations`).

use std::time::Duration;

use serde_json::{json, Value};
use tally_e2e::fakes::Reply;
use tally_e2e::webdriver::Browser;
use tally_e2e::{batch, now_ms, off_event, status, Stack};

const PAGES: [(&str, &str); 12] = [
    ("/", "overview"),
    ("/developers", "developers"),
    ("/projects", "projects"),
    ("/branches", "branches"),
    ("/sessions", "sessions"),
    ("/models", "models"),
    ("/categories", "categories"),
    ("/budgets", "budgets"),
    ("/settings", "settings"),
    ("/tokens", "tokens"),
    ("/members", "members"),
    ("/audit", "audit"),
];

/// An Off-mode event with the given model and token counts.
fn event(n: u64, ts: i64, model: &str, input: u64, output: u64, cache_read: u64) -> Value {
    let mut e = off_event(n, ts, model, 0);
    e["tokens"] = json!({"input": input, "output": output, "cache_write_5m": 0, "cache_write_1h": 0, "cache_read": cache_read});
    e
}

/// Text and hover title of the cell in `column` of the row whose first
/// cell is `first`, in the table `table`.
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

fn title_of(b: &Browser, css: &str) -> String {
    b.wait_for(css);
    b.eval(&format!(
        "return document.querySelector({css:?}).getAttribute('title')"
    ))
    .as_str()
    .unwrap_or_default()
    .to_string()
}

#[test]
fn a_dashboard_people_are_glad_to_open() {
    let (stack, mail) = Stack::with_email();
    let team = stack.bootstrap("Acme Robotics", "owner@acme.test");
    let b = Browser::start();
    b.resize(1400, 1000);

    // The sign-in page speaks to members.
    b.goto(&stack.url("/"));
    let signin = b.text("main");
    assert!(
        signin.contains("Enter the address your team invited."),
        "{signin}"
    );
    assert!(!signin.contains("cargo xtask"), "{signin}");
    assert_eq!(b.axe_violations(), Vec::<String>::new(), "sign-in page");
    b.confirm_sign_in(&stack.url(&team.signin_path));

    // First run: the team's name, and three steps with the next one open.
    assert_eq!(b.text("[data-testid=team-name]"), "Acme Robotics");
    b.wait_for("[data-testid=first-run]");
    let done = |s: &str| {
        b.eval(&format!(
            "return document.querySelector('[data-testid={s}]').dataset.done"
        ))
    };
    assert_eq!(done("step-command"), json!("false"));
    assert_eq!(done("step-events"), json!("false"));
    assert_eq!(
        b.eval("return document.querySelector('[data-testid=step-token] a').getAttribute('href')"),
        json!("/tokens")
    );
    b.screenshot("ux-first-run-1400");

    // A known data set: Haiku 4.5 with millions of tokens, Sonnet 4.5 with
    // a spend far below a cent.
    let agent = stack.enroll(&team.install_token);
    let now = now_ms();
    assert_eq!(
        status(&agent.post(&batch(
            "batch-ux-00000000001",
            vec![
                event(
                    1,
                    now - 120_000,
                    "claude-haiku-4-5",
                    1_234_567,
                    41_397,
                    9_999_999
                ),
                {
                    // On a branch: the Branches page shows its name form too.
                    let mut e = event(2, now - 60_000, "claude-sonnet-4-5", 1_000, 100, 0);
                    e["branch"] = json!(tally_core::hash::branch_hash("salt", "main"));
                    e
                },
            ],
        ))),
        202
    );
    // Haiku: 1,234,567 × $1 + 41,397 × $5 + 9,999,999 × $0.10 per M
    // = 2,441,551.9 µ$; Sonnet: 1,000 × $3 + 100 × $15 = 4,500 µ$.
    let spend = b.wait_for_text(
        &stack.url("/"),
        "[data-testid=spend-range]",
        Duration::from_secs(60),
        |t| t != "$0.00",
    );
    assert_eq!(spend, "$2.45");
    assert_eq!(title_of(&b, "[data-testid=spend-range]"), "$2.4460519");
    assert_eq!(b.text("[data-testid=tokens-input]"), "1.2M");
    assert_eq!(title_of(&b, "[data-testid=tokens-input]"), "1,235,567");
    assert_eq!(b.text("[data-testid=tokens-output]"), "41.5k");
    assert_eq!(title_of(&b, "[data-testid=tokens-output]"), "41,497");
    assert_eq!(b.text("[data-testid=tokens-cache-read]"), "10.0M");
    assert_eq!(title_of(&b, "[data-testid=tokens-cache-read]"), "9,999,999");
    // 9,999,999 reads of 11,235,566 prompt tokens.
    assert_eq!(b.text("[data-testid=cache-hit-rate]"), "89.0%");
    // Events arrived: the checklist is gone.
    assert!(b.try_find("[data-testid=first-run]").is_none());
    // The overview's model table follows the range, with tiny costs readable.
    assert_eq!(
        cell(&b, "models", "claude-sonnet-4-5", "cost"),
        ("$0.0045".into(), "$0.0045".into())
    );
    assert_eq!(
        cell(&b, "models", "claude-haiku-4-5", "cost"),
        ("$2.44".into(), "$2.4415519".into())
    );
    assert_eq!(
        cell(&b, "models", "claude-haiku-4-5", "cache read"),
        ("10.0M".into(), "9,999,999".into())
    );

    // The CSV keeps machine-readable cells.
    let csv = b.eval("return fetch('/models?format=csv').then(r => r.text())");
    let csv = csv.as_str().unwrap();
    assert!(
        csv.contains("claude-haiku-4-5,1,1234567,41397,0,0,9999999,89.0%,$2.44,0\r\n"),
        "{csv}"
    );

    // Drill-down: a developer leads to their own page, keeping the range;
    // from there a session list whose sort links keep range and filter.
    b.goto(&stack.url("/developers"));
    let href = b
        .eval("return document.querySelector('[data-testid=table-developers] tbody td a').getAttribute('href')");
    let href = href.as_str().unwrap();
    assert!(
        href.starts_with(&format!("/developers/{}?from=", agent.developer_id))
            && href.contains("&to="),
        "{href}"
    );
    b.goto(&stack.url(&format!("/sessions?developer={}", agent.developer_id)));
    b.wait_for("[data-testid=sessions-filter]");
    let sort =
        b.eval("return document.querySelector('[data-testid=sort-duration]').getAttribute('href')");
    let sort = sort.as_str().unwrap();
    assert!(
        sort.contains("from=")
            && sort.contains("&to=")
            && sort.contains(&format!("developer={}", agent.developer_id))
            && sort.ends_with("&sort=duration"),
        "{sort}"
    );
    assert_eq!(
        b.eval("return document.querySelectorAll('[data-testid=session-row]').length"),
        json!(2)
    );

    // A failing form ends on a page with the navigation and a way back.
    mail.set_responder(|_| Reply::json(500, json!({"message": "mail is down"})));
    b.goto(&stack.url("/members"));
    b.type_into("[data-testid=invite-email]", "new@acme.test");
    b.click("[data-testid=invite-send]");
    b.wait_for("[data-testid=error-page]");
    assert_eq!(
        b.text("[data-testid=error-message]"),
        "new@acme.test was added as viewer, but the invitation e-mail could not be sent. They can ask for a sign-in link themselves on the sign-in page with this address; the audit log records the failed delivery."
    );
    assert!(b.try_find("header nav a[href='/members']").is_some());
    assert_eq!(
        b.eval("return document.querySelector('[data-testid=error-back]').getAttribute('href')"),
        json!("/members")
    );
    // A failure no handler words itself is a page too, not JSON.
    b.goto(&stack.url("/sessions/not-a-session-id"));
    b.wait_for("[data-testid=error-page]");
    assert_eq!(b.text("h1"), "Not found");
    assert!(b.try_find("header nav a[href='/']").is_some());

    // The audit log: actors are people, actions have names, details read
    // as key: value, and the action and date filters narrow it.
    b.goto(&stack.url("/audit?action=sign_in"));
    b.wait_for("[data-testid=table-audit]");
    assert_eq!(cell(&b, "audit", &first_time(&b), "action").0, "Signed in");
    let (actor, actor_id) = cell(&b, "audit", &first_time(&b), "actor");
    assert_eq!(actor, "owner@acme.test");
    assert!(actor_id.starts_with("member "), "{actor_id}");
    let details = cell(&b, "audit", &first_time(&b), "details").0;
    assert!(
        details.starts_with("member id: ") && details.ends_with("method: link"),
        "{details}"
    );
    assert_eq!(
        b.eval("return [...document.querySelectorAll('[data-testid=table-audit] td[data-label=action]')].every(c => c.textContent === 'Signed in')"),
        json!(true)
    );
    assert_eq!(
        b.eval("return document.querySelector('[data-testid=audit-action]').value"),
        json!("sign_in")
    );
    b.goto(&stack.url("/audit?from=2000-01-01&to=2000-01-02"));
    assert_eq!(
        b.text("[data-testid=table-audit] tbody"),
        "No data in this range."
    );
    b.goto(&stack.url("/audit"));
    // The failed delivery is in the log, read as key: value.
    assert_eq!(
        cell(&b, "audit", &first_time(&b), "action"),
        ("Member invited".into(), "member.invite".into())
    );
    assert_eq!(
        cell(&b, "audit", &first_time(&b), "details").0,
        "delivered: false\nemail: new@acme.test\nrole: viewer"
    );
    // The CSV fetched above was recorded too.
    b.goto(&stack.url("/audit?action=export"));
    assert_eq!(
        cell(&b, "audit", &first_time(&b), "details").0,
        "format: csv\nrows: 2\ntable: models"
    );

    // Every page at both widths: no sideways scrolling, screenshots, and
    // no serious or critical accessibility violation.
    for (width, height) in [(1400, 1000), (390, 844)] {
        b.resize(width, height);
        for (path, name) in PAGES {
            b.goto(&stack.url(path));
            b.wait_for("main");
            assert!(b.fits_the_screen(), "{path} is wider than {width} px");
            b.screenshot(&format!("ux-{name}-{width}"));
            assert_eq!(
                b.axe_violations(),
                Vec::<String>::new(),
                "{path} at {width} px"
            );
        }
    }
    // On a phone the navigation is a Menu button.
    b.goto(&stack.url("/"));
    assert_eq!(
        b.eval("return [getComputedStyle(document.querySelector('header nav.wide')).display, getComputedStyle(document.querySelector('details.menu')).display]"),
        json!(["none", "block"])
    );
    b.click("details.menu summary");
    b.click("details.menu nav a[href='/models']");
    b.wait_for("[data-testid=table-models]");
    assert!(b.fits_the_screen());
    b.screenshot("ux-models-menu-390");
}

/// The time cell of the audit table's first row.
fn first_time(b: &Browser) -> String {
    b.eval("return document.querySelector('[data-testid=table-audit] tbody td').textContent.trim()")
        .as_str()
        .unwrap()
        .to_string()
}
