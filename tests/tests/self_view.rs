//! What each session was captured under, as the dashboard shows it: the
//! Sessions page carries one chip per privacy mode a session's requests
//! were captured under (Off / Local / Cloud / Full), in a real headless
//! Chromium, with the same chip the session timeline uses.
//!
//! And the developer self-view: a developer signs in with their agent
//! (`tally dashboard` → `POST /v1/agent/self-view` → a one-time link) and
//! reads their own numbers and the audit entries that concern them, and
//! nothing of anyone else; neither kind of session opens the other's pages.
#![allow(clippy::result_large_err)] // ureq results are matched on directly.

use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};
use tally_e2e::fakes::FakeServer;
use tally_e2e::webdriver::Browser;
use tally_e2e::{
    batch, body_json, form_escape, now_ms, off_event, status, tally_bin, ApiAgent, Stack, WebClient,
};

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

/// A Full-capable event with exact token counts (no cache writes).
fn priced(
    agent: &ApiAgent,
    n: u64,
    ts: i64,
    model: &str,
    (input, output, cache_read): (u64, u64, u64),
    (project, session, mode): (&str, &str, &str),
) -> Value {
    let mut e = event(agent, n, ts, session, mode);
    e["model"] = json!(model);
    e["tokens"] = json!({"input": input, "output": output, "cache_write_5m": 0, "cache_write_1h": 0, "cache_read": cache_read});
    e["project"] = json!(tally_core::hash::project_hash(&agent.salt, project));
    e
}

/// `POST /v1/agent/self-view` with an agent token.
fn mint(stack: &Stack, token: &str) -> Result<ureq::Response, ureq::Error> {
    ureq::post(&stack.url("/v1/agent/self-view"))
        .set("Authorization", &format!("Bearer {token}"))
        .call()
}

/// Opens a self-view link as a browser would: GET shows the confirmation
/// (nothing consumed), then its form is posted with the nonce cookie.
fn follow_self_view(stack: &Stack, path: &str) -> Result<ureq::Response, ureq::Error> {
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    let page = agent.get(&stack.url(path)).call()?;
    assert_eq!(page.status(), 200, "self-view confirmation page");
    let nonce = page
        .header("Set-Cookie")
        .expect("link nonce cookie")
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let html = page.into_string().unwrap();
    assert!(html.contains("data-testid=\"confirm-self-view\""), "{html}");
    let field = |name: &str| {
        let at = html
            .find(&format!("name=\"{name}\" value=\""))
            .unwrap_or_else(|| panic!("no {name} field in {html}"));
        let rest = &html[at + name.len() + 15..];
        rest[..rest.find('"').unwrap()].to_string()
    };
    agent
        .post(&stack.url("/me/link"))
        .set("Cookie", &nonce)
        .set("Content-Type", "application/x-www-form-urlencoded")
        .send_string(&format!(
            "token={}&csrf={}",
            form_escape(&field("token")),
            form_escape(&field("csrf"))
        ))
}

/// A developer's self-view cookie (`name=value`) from a fresh link.
fn developer_cookie(stack: &Stack, agent: &ApiAgent) -> String {
    let minted = body_json(mint(stack, &agent.token));
    let r = follow_self_view(stack, minted["path"].as_str().unwrap()).expect("self-view link");
    assert_eq!(r.status(), 303);
    assert_eq!(r.header("Location"), Some("/me"));
    let set = r.header("Set-Cookie").unwrap().to_string();
    assert!(
        set.starts_with("tally_dev_session=")
            && set.contains("; Path=/me; HttpOnly; SameSite=Lax; Max-Age=43200"),
        "{set}"
    );
    set.split(';').next().unwrap().to_string()
}

fn get_with(stack: &Stack, path: &str, cookie: &str) -> (u16, String) {
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    match agent.get(&stack.url(path)).set("Cookie", cookie).call() {
        Ok(r) => (r.status(), r.into_string().unwrap()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap_or_default()),
        Err(e) => panic!("{path}: {e}"),
    }
}

/// The text of the first element carrying `data-testid="id"` (no nested tags).
fn testid(html: &str, id: &str) -> String {
    let at = html
        .find(&format!("data-testid=\"{id}\""))
        .unwrap_or_else(|| panic!("no {id} in {html}"));
    let rest = &html[at..];
    let start = rest.find('>').unwrap() + 1;
    rest[start..start + rest[start..].find('<').unwrap()].to_string()
}

/// Every value of attribute `attr` on elements with `data-testid="row"`, in order.
fn row_attrs(html: &str, row: &str, attr: &str) -> Vec<String> {
    html.split(&format!("data-testid=\"{row}\""))
        .skip(1)
        .map(|chunk| {
            let tag = &chunk[..chunk.find('>').unwrap()];
            let at = tag
                .find(&format!("{attr}=\""))
                .unwrap_or_else(|| panic!("no {attr} in {tag}"));
            let v = &tag[at + attr.len() + 2..];
            v[..v.find('"').unwrap()].to_string()
        })
        .collect()
}

/// Texts of every element with `data-testid="id"`, in order.
fn testid_all(html: &str, id: &str) -> Vec<String> {
    html.split(&format!("data-testid=\"{id}\""))
        .skip(1)
        .map(|chunk| {
            let start = chunk.find('>').unwrap() + 1;
            chunk[start..start + chunk[start..].find('<').unwrap()].to_string()
        })
        .collect()
}

fn member_form(owner: &WebClient, path: &str, fields: &str) -> u16 {
    status(
        &owner
            .agent
            .post(&format!("{}{path}", owner.base))
            .set("Cookie", &owner.cookie)
            .set("Content-Type", "application/x-www-form-urlencoded")
            .send_string(&format!("csrf={}&{fields}", form_escape(&owner.csrf))),
    )
}

/// Two developers with known events in a Full team. Ada's self-view shows
/// exactly her numbers and none of Bea's, her audit entries and not Bea's;
/// links work once; member and developer sessions never open each other's
/// pages; a revoked agent can mint no link and its sessions end.
#[test]
fn a_developer_sees_exactly_their_own_data_and_who_read_it() {
    let stack = Stack::start();
    let team = stack.bootstrap("Acme", "owner@acme.test");
    let tid = team.team_id.clone();
    let owner = stack.sign_in(&team.signin_path);
    assert_eq!(
        status(&owner.post_json(
            "/api/settings/privacy",
            json!({"mode": "full", "confirm": true})
        )),
        200
    );
    let issue = |name: &str| {
        let v = body_json(owner.post_json("/api/install-tokens", json!({"developer_name": name})));
        stack.enroll(v["install_token"].as_str().unwrap())
    };
    let (ada, bea) = (issue("Ada"), issue("Bea"));
    let ts = now_ms() - 120_000;
    // Ada: Opus $1.00 + $1.75 in session a1 (Full), Haiku $1.00 in a2 (Off).
    let ada_events = vec![
        priced(
            &ada,
            1,
            ts,
            "claude-opus-4-5",
            (100_000, 20_000, 0),
            ("/repo-a", "a1", "full"),
        ),
        priced(
            &ada,
            2,
            ts + 1000,
            "claude-opus-4-5",
            (200_000, 10_000, 1_000_000),
            ("/repo-a", "a1", "full"),
        ),
        priced(
            &ada,
            3,
            ts + 2000,
            "claude-haiku-4-5",
            (1_000_000, 0, 0),
            ("/repo-b", "a2", "off"),
        ),
    ];
    assert_eq!(
        status(&ada.post(&batch("batch-me-ada-000000001", ada_events))),
        202
    );
    // Bea: Sonnet 4.6 $0.30 in b1 (Full), on her own project.
    let bea_events = vec![priced(
        &bea,
        4,
        ts,
        "claude-sonnet-4-6",
        (100_000, 0, 0),
        ("/repo-z", "b1", "full"),
    )];
    assert_eq!(
        status(&bea.post(&batch("batch-me-bea-000000001", bea_events))),
        202
    );
    stack.eventually("batches applied", Duration::from_secs(30), || {
        let r = stack.d1(&format!(
            "SELECT COALESCE(SUM(requests),0) AS n FROM sessions WHERE team_id = '{tid}'"
        ));
        (r[0]["n"] == 4).then_some(())
    });
    let hash = |a: &ApiAgent, s: &str| tally_core::hash::session_hash(&a.salt, s);
    let (a1, a2, b1) = (hash(&ada, "a1"), hash(&ada, "a2"), hash(&bea, "b1"));
    let project = |a: &ApiAgent, p: &str| tally_core::hash::project_hash(&a.salt, p);
    // The owner reads both Full sessions and labels Ada's second project.
    assert_eq!(status(&owner.get(&format!("/sessions/{a1}"))), 200);
    assert_eq!(status(&owner.get(&format!("/sessions/{b1}"))), 200);
    assert_eq!(
        member_form(
            &owner,
            "/projects/label",
            &format!("project={}&label=Billing", project(&ada, "/repo-b"))
        ),
        303
    );
    // The view entries now name whose content was read.
    let views = stack.audit_details(&tid, "content.view");
    assert_eq!(views[0]["developers"], json!([ada.developer_id]));
    assert_eq!(views[1]["developers"], json!([bea.developer_id]));

    // Ada's agent mints a link; opening it shows a confirmation and burns nothing.
    let minted = body_json(mint(&stack, &ada.token));
    let path = minted["path"].as_str().unwrap().to_string();
    assert!(path.starts_with("/me/link?token=tly_self_"), "{minted}");
    assert_eq!(minted["url"], json!(stack.url(&path)));
    assert_eq!(minted["expires_in_s"], 600);
    let (code, _) = get_with(&stack, &path, "");
    assert_eq!(code, 200);
    let unused = |dev: &str| {
        stack.d1(&format!(
            "SELECT COUNT(*) AS n FROM developer_links WHERE team_id = '{tid}' AND developer_id = '{dev}' AND used_at IS NULL"
        ))[0]["n"]
            .as_i64()
            .unwrap()
    };
    assert_eq!(unused(&ada.developer_id), 1);
    let r = follow_self_view(&stack, &path).expect("self-view link");
    assert_eq!(r.status(), 303);
    let ada_cookie = r
        .header("Set-Cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    assert!(ada_cookie.starts_with("tally_dev_session="), "{ada_cookie}");
    // The link works once.
    assert_eq!(status(&follow_self_view(&stack, &path)), 401);
    assert_eq!(unused(&ada.developer_id), 0);

    // Ada's page: her exact numbers, her models, projects and sessions only.
    let (code, me) = get_with(&stack, "/me", &ada_cookie);
    assert_eq!(code, 200, "{me}");
    for (id, want) in [
        ("me-spend-7d", "$3.75"),
        ("me-spend-30d", "$3.75"),
        ("me-spend-range", "$3.75"),
        ("me-requests-30d", "3"),
        ("me-tokens-input", "1300000"),
        ("me-tokens-output", "30000"),
        ("me-tokens-cache-write", "0"),
        ("me-tokens-cache-read", "1000000"),
        ("me-mode", "full"),
        ("me-name", "Ada (read-only)"),
    ] {
        assert_eq!(testid(&me, id), want, "{id}");
    }
    assert!(testid(&me, "me-kept").contains("kept 90 days"), "{me}");
    for mine in [
        "claude-opus-4-5",
        "claude-haiku-4-5",
        &project(&ada, "/repo-a"),
        &project(&ada, "/repo-b"),
        "Billing",
        "$2.75",
        "$1.00",
    ] {
        assert!(me.contains(mine), "{mine} missing");
    }
    for theirs in [
        "claude-sonnet-4-6",
        &project(&bea, "/repo-z"),
        &b1[..16],
        "Bea",
        "$0.30",
        "$4.05",
        "owner@acme.test",
    ] {
        assert!(!me.contains(theirs), "{theirs} shown to Ada");
    }
    let mut sessions = row_attrs(&me, "session-row", "data-session");
    sessions.sort();
    let mut want = vec![a1.clone(), a2.clone()];
    want.sort();
    assert_eq!(sessions, want);
    let chips = |s: &str| {
        let row = &me[me.find(&format!("data-session=\"{s}\"")).unwrap()..];
        let row = &row[..row.find("</tr>").unwrap()];
        row_attrs(row, "mode", "data-mode")
    };
    assert_eq!(chips(&a1), ["full"]);
    assert_eq!(chips(&a2), ["off"]);
    assert_eq!(me.matches("data-testid=\"me-timeline-link\"").count(), 1);
    assert!(
        me.contains(&format!(
            "href=\"/me/sessions/{a1}\" data-testid=\"me-timeline-link\""
        )),
        "{me}"
    );

    // Her own content opens; nobody else's, and no session without content of hers.
    let (code, timeline) = get_with(&stack, &format!("/me/sessions/{a1}"), &ada_cookie);
    assert_eq!(code, 200);
    assert!(
        timeline.contains("prompt 1") && timeline.contains("answer 2"),
        "{timeline}"
    );
    assert!(
        !timeline.contains("data-testid=\"export-json\""),
        "{timeline}"
    );
    assert_eq!(
        get_with(&stack, &format!("/me/sessions/{b1}"), &ada_cookie).0,
        404
    );
    assert_eq!(
        get_with(&stack, &format!("/me/sessions/{a2}"), &ada_cookie).0,
        404
    );

    // Her audit view: exactly the entries concerning her, newest first.
    let (code, audit) = get_with(&stack, "/me/audit", &ada_cookie);
    assert_eq!(code, 200, "{audit}");
    assert_eq!(
        row_attrs(&audit, "audit-row", "data-action"),
        [
            "content.view",
            "developer.sign_in",
            "content.view",
            "install_token.create",
            "privacy_mode.change"
        ]
    );
    assert_eq!(
        testid_all(&audit, "audit-who"),
        [
            "you",
            "you",
            "owner@acme.test",
            "owner@acme.test",
            "owner@acme.test"
        ]
    );
    let what = testid_all(&audit, "audit-what");
    assert_eq!(
        what[0],
        format!(
            "read the stored content of session {} (2 requests)",
            &a1[..16]
        )
    );
    assert_eq!(what[2], what[0]);
    assert_eq!(what[4], "changed the team's privacy mode from off to full");
    assert!(
        !audit.contains(&b1[..16]),
        "Bea's session in Ada's audit view"
    );
    // Ada's own read is recorded with her as the actor, not as a member's view.
    let actors = stack.d1(&format!(
        "SELECT actor FROM audit_log WHERE team_id = '{tid}' AND action = 'content.view' ORDER BY id"
    ));
    assert_eq!(
        actors
            .iter()
            .map(|r| r["actor"].as_str().unwrap().to_string())
            .collect::<Vec<_>>(),
        [
            "owner@acme.test".to_string(),
            "owner@acme.test".into(),
            format!("developer:{}", ada.developer_id)
        ]
    );

    // Neither session opens the other's pages.
    let (code, page) = get_with(&stack, "/me", &owner.cookie);
    assert_eq!(code, 401);
    assert!(page.contains("tally dashboard"), "{page}");
    for path in [
        "/",
        "/sessions",
        "/developers",
        "/audit",
        &format!("/sessions/{a1}"),
    ] {
        let (code, page) = get_with(&stack, path, &ada_cookie);
        assert!(
            page.contains("action=\"/login\""),
            "{path} with a developer cookie: {code} {page}"
        );
        assert!(
            !page.contains("$3.75") && !page.contains("prompt 1"),
            "{path}: {page}"
        );
    }
    for path in ["/api/me", "/api/overview", "/api/agents", "/api/audit"] {
        assert_eq!(get_with(&stack, path, &ada_cookie).0, 401, "{path}");
    }
    let post = |path: &str, cookie: &str, body: &str, kind: &str| {
        status(
            &ureq::post(&stack.url(path))
                .set("Cookie", cookie)
                .set("Content-Type", kind)
                .send_string(body),
        )
    };
    assert_eq!(
        post(
            "/settings/privacy",
            &ada_cookie,
            "mode=off",
            "application/x-www-form-urlencoded"
        ),
        401
    );
    assert_eq!(
        post(
            "/api/settings/privacy",
            &ada_cookie,
            "{\"mode\":\"off\"}",
            "application/json"
        ),
        401
    );
    assert_eq!(
        post(
            &format!("/api/agents/{}/revoke", bea.agent_id),
            &ada_cookie,
            "",
            "application/json"
        ),
        401
    );
    // An agent token is no session either (dashboard, API or self-view).
    for path in ["/", "/api/me", "/me"] {
        let r = ureq::get(&stack.url(path))
            .set("Authorization", &format!("Bearer {}", ada.token))
            .call();
        let (code, body) = match r {
            Ok(r) => (r.status(), r.into_string().unwrap()),
            Err(ureq::Error::Status(c, r)) => (c, r.into_string().unwrap_or_default()),
            Err(e) => panic!("{e}"),
        };
        assert!(
            code == 401 || body.contains("action=\"/login\""),
            "{path}: {code} {body}"
        );
        assert!(!body.contains("$3.75"), "{path}");
    }

    // Links are rate limited per agent: five at once (Bea's first opens her
    // own session), then 429 with a wait.
    let bea_cookie = developer_cookie(&stack, &bea);
    assert_eq!(
        testid(&get_with(&stack, "/me", &bea_cookie).1, "me-spend-30d"),
        "$0.30"
    );
    for k in 1..5 {
        assert_eq!(status(&mint(&stack, &bea.token)), 200, "link {k}");
    }
    match mint(&stack, &bea.token) {
        Err(ureq::Error::Status(429, r)) => {
            let wait: u64 = r.header("Retry-After").unwrap().parse().unwrap();
            assert!((1..=30).contains(&wait), "{wait}");
            assert_eq!(r.into_json::<Value>().unwrap()["error"], "rate_limited");
        }
        other => panic!("sixth link: {:?}", other.map(|r| r.status())),
    }

    // Signing out ends that session only.
    let second = developer_cookie(&stack, &ada);
    let pending = body_json(mint(&stack, &ada.token))["path"]
        .as_str()
        .unwrap()
        .to_string();
    // A self-view link is no member sign-in link.
    let member_try = stack.follow_link(
        &ureq::AgentBuilder::new().redirects(0).build(),
        &pending.replace("/me/link", "/auth/link"),
    );
    assert_eq!(status(&member_try), 401);
    assert_eq!(
        post(
            "/me/logout",
            &ada_cookie,
            "",
            "application/x-www-form-urlencoded"
        ),
        200
    );
    assert_eq!(get_with(&stack, "/me", &ada_cookie).0, 401);
    assert_eq!(get_with(&stack, "/me", &second).0, 200);

    // Revoking Ada's agent ends her sessions and links, and it mints no more.
    assert_eq!(
        status(&owner.post_json(&format!("/api/agents/{}/revoke", ada.agent_id), json!({}))),
        200
    );
    assert_eq!(get_with(&stack, "/me", &second).0, 401);
    assert_eq!(status(&follow_self_view(&stack, &pending)), 401);
    assert_eq!(status(&mint(&stack, &ada.token)), 403);
    assert_eq!(status(&mint(&stack, "tly_agent_unknown")), 401);
    assert_eq!(
        stack.d1(&format!(
            "SELECT COUNT(*) AS n FROM developer_sessions WHERE team_id = '{tid}' AND developer_id = '{}'",
            ada.developer_id
        ))[0]["n"],
        0
    );

    // Erasing Bea ends her self-view and leaves no link or session of hers.
    assert_eq!(get_with(&stack, "/me", &bea_cookie).0, 200);
    assert_eq!(
        member_form(
            &owner,
            "/developers/erase",
            &format!("developer_id={}&confirm_name=Bea", bea.developer_id)
        ),
        303
    );
    assert_eq!(get_with(&stack, "/me", &bea_cookie).0, 401);
    for table in ["developer_sessions", "developer_links"] {
        assert_eq!(
            stack.d1(&format!(
                "SELECT COUNT(*) AS n FROM {table} WHERE team_id = '{tid}' AND developer_id = '{}'",
                bea.developer_id
            ))[0]["n"],
            0,
            "{table}"
        );
    }
}

/// The real agent binary: `tally dashboard --print` prints a link; the
/// browser opens it, confirms, and shows the developer's own numbers and
/// chips, then who read their content.
#[test]
fn tally_dashboard_opens_the_self_view_in_a_real_browser() {
    let stack = Stack::start();
    let team = stack.bootstrap("Acme", "owner@acme.test");
    let tid = team.team_id.clone();
    let owner = stack.sign_in(&team.signin_path);
    assert_eq!(
        status(&owner.post_json(
            "/api/settings/privacy",
            json!({"mode": "full", "confirm": true})
        )),
        200
    );
    let dir = tempfile::tempdir().unwrap();
    let tally = |args: &[&str]| {
        let out = Command::new(tally_bin())
            .args(args)
            .env("TALLY_HOME", dir.path().join("tally"))
            .env("CLAUDE_CONFIG_DIR", dir.path().join("claude"))
            .env("CODEX_HOME", dir.path().join("codex"))
            .env("TALLY_GEMINI_DIR", dir.path().join("gemini"))
            .env("TALLY_OPENCODE_DIR", dir.path().join("opencode"))
            .env("TZ", "UTC")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "tally {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };
    tally(&[
        "install",
        "--server",
        &stack.base,
        "--token",
        &team.install_token,
    ]);
    // The enrolled agent's own credentials carry its usage (known numbers).
    let cfg: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("tally/config.json")).unwrap())
            .unwrap();
    let agent = ApiAgent {
        base: stack.base.clone(),
        token: cfg["agent_token"].as_str().unwrap().into(),
        salt: cfg["salt"].as_str().unwrap().into(),
        developer_id: cfg["developer_id"].as_str().unwrap().into(),
        agent_id: cfg["agent_id"].as_str().unwrap().into(),
    };
    let ts = now_ms() - 120_000;
    let events = vec![
        priced(
            &agent,
            1,
            ts,
            "claude-opus-4-5",
            (100_000, 20_000, 0),
            ("/repo", "s1", "off"),
        ),
        priced(
            &agent,
            2,
            ts + 1000,
            "claude-opus-4-5",
            (200_000, 10_000, 1_000_000),
            ("/repo", "s1", "full"),
        ),
    ];
    assert_eq!(
        status(&agent.post(&batch("batch-me-browser-00001", events))),
        202
    );
    stack.eventually("batch applied", Duration::from_secs(30), || {
        let r = stack.d1(&format!(
            "SELECT COALESCE(SUM(requests),0) AS n FROM sessions WHERE team_id = '{tid}'"
        ));
        (r[0]["n"] == 2).then_some(())
    });
    let s1 = tally_core::hash::session_hash(&agent.salt, "s1");
    assert_eq!(status(&owner.get(&format!("/sessions/{s1}"))), 200);

    let out = tally(&["dashboard", "--print"]);
    let link = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        link.starts_with(&stack.url("/me/link?token=tly_self_")),
        "{link}"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("works once and expires in 10 minutes"),
        "{out:?}"
    );

    let b = Browser::start();
    b.goto(&link);
    b.click("[data-testid=confirm-self-view]");
    // The click submits a form: wait for the self-view before reading it.
    b.wait_for("[data-testid=me-header]");
    assert_eq!(b.text("[data-testid=me-spend-30d]"), "$2.75");
    assert_eq!(b.text("[data-testid=me-requests-30d]"), "2");
    assert_eq!(b.text("[data-testid=me-tokens-input]"), "300000");
    assert_eq!(b.text("[data-testid=me-mode]"), "full");
    let chips = b.text(&format!("tr[data-session='{s1}'] [data-testid=modes]"));
    assert_eq!(
        chips.split_whitespace().collect::<Vec<_>>(),
        ["Off", "Full"]
    );
    b.find(&format!(
        "tr[data-session='{s1}'] .chip.mode-full[data-mode=full]"
    ));
    b.screenshot("21-developer-self-view");

    b.click("a[href='/me/audit']");
    b.wait_for("[data-testid=table-me-audit]");
    let who = b.text("tr[data-action='content.view'] [data-testid=audit-who]");
    assert_eq!(who, "owner@acme.test");
    b.screenshot("22-developer-self-view-audit");
    // The self-view never became a member session.
    b.goto(&stack.url("/"));
    b.wait_for("form[action='/login']");
}
