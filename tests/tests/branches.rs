//! Cost per git branch (issue 16, "Branches") on the real stack: two
//! developers' Claude Code requests on two branches of two projects, sent
//! through `/v1/events` as the agent builds them (keyed hashes under the
//! team salt). Off: the Branches page sums each (project, branch) exactly,
//! in its JSON and CSV downloads; an admin names a hash (audited); the
//! project filter and the project page narrow to one project; and no
//! readable branch name is anywhere in D1. Full: the redacted name a text
//! mode sends becomes the branch's name, redacted again at the edge; the
//! sums survive compaction into `usage_d`.
//!
//! Time: every event sits on one UTC day ten days back, pages are opened
//! with explicit `from`/`to`, and compaction runs at a time the test sets.

use std::time::Duration;

use serde_json::{json, Value};
use tally_core::hash::{branch_hash, project_hash, session_hash};
use tally_core::time::{utc_date, DAY_MS, HOUR_MS};
use tally_e2e::{batch, now_ms, off_event, status, ApiAgent, Stack};

const VEGA: &str = "feature/vega-PAY-12";
const ORION: &str = "release/orion-7";

/// A Sonnet 4.5 request with `input` tokens only: exactly 3 µ$ a token.
fn ev(agent: &ApiAgent, n: u64, ts: i64, cwd: &str, branch: Option<&str>, input: u64) -> Value {
    let mut e = off_event(n, ts, "claude-sonnet-4-5", 0);
    e["tokens"] = json!({"input": input, "output": 0, "cache_write_5m": 0, "cache_write_1h": 0, "cache_read": 0});
    e["project"] = json!(project_hash(&agent.salt, cwd));
    e["session"] = json!(session_hash(&agent.salt, &format!("s{n}")));
    if let Some(b) = branch {
        e["branch"] = json!(branch_hash(&agent.salt, b));
    }
    e
}

fn short(h: &str) -> String {
    format!("{}…", &h[..12])
}

/// A branch row of the JSON download, "last active" aside.
fn row(
    [project, branch, hash]: [&str; 3],
    [devs, reqs, input]: [u64; 3],
    [cost, exact]: [&str; 2],
) -> Value {
    json!({
        "project": project, "branch": branch, "branch (keyed hash)": hash,
        "developers": devs.to_string(), "requests": reqs.to_string(), "input": input.to_string(),
        "output": "0", "cache read": "0", "cost": cost, "cost exact": exact,
    })
}

fn without_last_active(rows: &Value, day: &str) -> Vec<Value> {
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let mut r = r.clone();
            let o = r.as_object_mut().unwrap();
            assert_eq!(o.remove("last active"), Some(json!(day)), "{rows}");
            r
        })
        .collect()
}

#[test]
fn cost_per_branch_exact_labelled_filtered_and_private_in_off() {
    let stack = Stack::start();
    let team = stack.bootstrap("Acme", "owner@acme.test");
    let tid = team.team_id.clone();
    let owner = stack.sign_in(&team.signin_path);
    let ada = stack.enroll(&team.install_token);
    let bea_token = tally_e2e::body_json(
        owner.post_json("/api/install-tokens", json!({"developer_name": "Bea"})),
    );
    let bea = stack.enroll(bea_token["install_token"].as_str().unwrap());
    assert_eq!(ada.salt, bea.salt, "one team, one salt");

    let today = now_ms().div_euclid(DAY_MS);
    let day_ms = (today - 10) * DAY_MS;
    let t = day_ms + 10 * HOUR_MS;
    let day = utc_date(day_ms);
    let range = format!(
        "from={}&to={}",
        utc_date(day_ms - DAY_MS),
        utc_date(day_ms + DAY_MS)
    );
    let (pay, robots) = ("/w/payments", "/w/robots");
    let p = project_hash(&ada.salt, pay);
    let q = project_hash(&ada.salt, robots);
    let (vega, orion) = (branch_hash(&ada.salt, VEGA), branch_hash(&ada.salt, ORION));

    let a = batch(
        "batch-branches-ada-0001",
        vec![
            ev(&ada, 1, t, pay, Some(VEGA), 1_000),
            ev(&ada, 2, t + 60_000, pay, Some(VEGA), 2_000),
            ev(&ada, 3, t + 120_000, pay, Some(ORION), 500),
        ],
    );
    let b = batch(
        "batch-branches-bea-0001",
        vec![
            ev(&bea, 4, t, pay, Some(VEGA), 4_000),
            // A detached HEAD or no repository: no branch at all.
            ev(&bea, 5, t, pay, None, 100),
            ev(&bea, 6, t, robots, Some(ORION), 300),
        ],
    );
    assert_eq!(status(&ada.post(&a)), 202);
    assert_eq!(status(&bea.post(&b)), 202);
    stack.eventually("both batches applied", Duration::from_secs(30), || {
        let n = stack.d1("SELECT COALESCE(SUM(requests), 0) AS n FROM usage_q");
        (n[0]["n"].as_i64() == Some(6)).then_some(())
    });
    // usage_q keeps the hash ('' for none) in its key.
    assert_eq!(
        stack.d1(&format!("SELECT project, branch, CAST(SUM(requests) AS TEXT) AS n FROM usage_q WHERE team_id = '{tid}' GROUP BY project, branch ORDER BY SUM(input_tokens) DESC")),
        vec![
            json!({"project": p, "branch": vega, "n": "3"}),
            json!({"project": p, "branch": orion, "n": "1"}),
            json!({"project": q, "branch": orion, "n": "1"}),
            json!({"project": p, "branch": "", "n": "1"}),
        ]
    );

    // Exact sums per (project, branch), most expensive first: 7,000 tokens
    // × 3 µ$ = $0.021 on vega (two developers), and so on.
    let expected = |vega_name: &str| {
        vec![
            row(
                [&short(&p), vega_name, &vega],
                [2, 3, 7_000],
                ["$0.02", "$0.021"],
            ),
            row(
                [&short(&p), &short(&orion), &orion],
                [1, 1, 500],
                ["$0.00", "$0.0015"],
            ),
            row(
                [&short(&q), &short(&orion), &orion],
                [1, 1, 300],
                ["$0.00", "$0.0009"],
            ),
            row(
                [&short(&p), "(no branch)", ""],
                [1, 1, 100],
                ["$0.00", "$0.0003"],
            ),
        ]
    };
    let page = owner.get_json(&format!("/branches?{range}&format=json"));
    assert_eq!(without_last_active(&page, &day), expected(&short(&vega)));
    let csv = owner
        .get(&format!("/branches?{range}&format=csv"))
        .unwrap()
        .into_string()
        .unwrap();
    assert_eq!(
        csv,
        format!(
            "project,branch,branch (keyed hash),developers,requests,input,output,cache read,cost,cost exact,last active\r\n\
             {sp},{sv},{vega},2,3,7000,0,0,$0.02,$0.021,{day}\r\n\
             {sp},{so},{orion},1,1,500,0,0,$0.00,$0.0015,{day}\r\n\
             {sq},{so},{orion},1,1,300,0,0,$0.00,$0.0009,{day}\r\n\
             {sp},(no branch),,1,1,100,0,0,$0.00,$0.0003,{day}\r\n",
            sp = short(&p),
            sq = short(&q),
            sv = short(&vega),
            so = short(&orion),
        )
    );

    // An admin names the vega hash of the payments project, audited.
    let (code, to) = owner.post_form(
        "/branches/label",
        &[
            ("project", &p),
            ("branch", &vega),
            ("label", "Vega launch"),
            ("back", &format!("/branches?{range}")),
        ],
    );
    assert_eq!((code, to), (303, format!("/branches?{range}")));
    assert_eq!(
        stack.audit_details(&tid, "branch.label"),
        [json!({"project": p, "branch": vega, "label": "Vega launch"})]
    );
    let page = owner.get_json(&format!("/branches?{range}&format=json"));
    assert_eq!(without_last_active(&page, &day), expected("Vega launch"));
    // Bad forms are a clear 400, and nothing is written.
    for (project, branch, label) in [
        (p.as_str(), "main", "x"),
        (p.as_str(), "", "x"),
        ("nope", vega.as_str(), "x"),
        (p.as_str(), vega.as_str(), ""),
    ] {
        let (code, _) = owner.post_form(
            "/branches/label",
            &[("project", project), ("branch", branch), ("label", label)],
        );
        assert_eq!(code, 400, "{project} {branch} {label:?}");
    }
    assert_eq!(
        stack.d1("SELECT COUNT(*) AS n FROM branch_labels")[0]["n"],
        1
    );

    // The project filter narrows to one project; a bad filter is a 400.
    let only_p = owner.get_json(&format!("/branches?{range}&project={p}&format=json"));
    let mut want = expected("Vega launch");
    want.remove(2);
    assert_eq!(without_last_active(&only_p, &day), want);
    assert_eq!(
        status(&owner.get(&format!("/branches?{range}&project=zz"))),
        400
    );
    // The project's page lists its branches, linking to the filtered view.
    let html = owner
        .get(&format!("/projects/{p}?{range}"))
        .unwrap()
        .into_string()
        .unwrap();
    assert!(
        html.contains("data-testid=\"table-project-branches\""),
        "{html}"
    );
    assert!(html.contains("Vega launch"), "{html}");
    assert!(
        html.contains(&format!(
            "href=\"/branches?{}&amp;project={p}\"",
            range.replace('&', "&amp;")
        )),
        "{html}"
    );
    // The list page itself carries the nav entry and the name form.
    let html = owner
        .get(&format!("/branches?{range}"))
        .unwrap()
        .into_string()
        .unwrap();
    assert!(html.contains("href=\"/branches\""), "{html}");
    assert_eq!(html.matches("data-testid=\"rename-branch\"").count(), 3);

    // Off: no readable branch name anywhere in D1, only hashes.
    for (table, col) in tally_e2e::team_tables() {
        let rows = stack.d1(&format!("SELECT * FROM {table} WHERE {col} = '{tid}'"));
        let text = serde_json::to_string(&rows).unwrap();
        for name in ["vega", "orion", "PAY-12"] {
            assert!(!text.contains(name), "{name} in {table}: {text}");
        }
    }
    assert_eq!(
        stack.d1("SELECT COUNT(*) AS n FROM branch_names")[0]["n"],
        0
    );

    // A readable name in Off is refused at the edge, naming the field.
    let mut named = ev(&ada, 7, t, pay, Some(VEGA), 1);
    named["branch_name"] = json!(VEGA);
    let r = ada.post(&batch("batch-branches-ada-0002", vec![named]));
    assert_eq!(status(&r), 400);
    let body = tally_e2e::body_json(r);
    assert_eq!(
        body,
        json!({"error": "invalid_batch", "index": 0, "field": "branch_name", "message": "not permitted in an event stamped 'off'"})
    );
    let mut bad = ev(&ada, 8, t, pay, None, 1);
    bad["branch"] = json!("main");
    let body = tally_e2e::body_json(ada.post(&batch("batch-branches-ada-0003", vec![bad])));
    assert_eq!(
        body,
        json!({"error": "invalid_batch", "index": 0, "field": "branch", "message": "must be a 64-character HMAC hex digest or empty"})
    );

    // Full: the agent sends the redacted name with the hash; the edge keeps
    // it (redacted again: a name with a token pasted in never lands) and
    // shows it where no admin label exists.
    assert_eq!(
        status(&owner.post_json(
            "/api/settings/privacy",
            json!({"mode": "full", "confirm": true})
        )),
        200
    );
    let mut o = ev(&bea, 9, t + 180_000, robots, Some(ORION), 1_000);
    o["mode"] = json!("full");
    o["branch_name"] = json!(ORION);
    let leaky = "hotfix/ghp_0123456789abcdefghijABCDEFGHIJ0123456789";
    let mut h = ev(&bea, 10, t + 240_000, robots, Some(leaky), 10);
    h["mode"] = json!("full");
    h["branch_name"] = json!(leaky);
    assert_eq!(
        status(&bea.post(&batch("batch-branches-bea-0002", vec![o, h]))),
        202
    );
    stack.eventually("full batch applied", Duration::from_secs(30), || {
        let n = stack.d1("SELECT COUNT(*) AS n FROM branch_names");
        (n[0]["n"].as_i64() == Some(2)).then_some(())
    });
    let hot = branch_hash(&bea.salt, leaky);
    assert_eq!(
        stack.d1(&format!(
            "SELECT project, branch, name FROM branch_names WHERE team_id = '{tid}' ORDER BY name"
        )),
        vec![
            json!({"project": q, "branch": hot, "name": "hotfix/[REDACTED:github_token]"}),
            json!({"project": q, "branch": orion, "name": ORION}),
        ]
    );
    let only_q = owner.get_json(&format!("/branches?{range}&project={q}&format=json"));
    assert_eq!(
        without_last_active(&only_q, &day),
        vec![
            row(
                [&short(&q), ORION, &orion],
                [1, 2, 1_300],
                ["$0.00", "$0.0039"]
            ),
            row(
                [&short(&q), "hotfix/[REDACTED:github_token]", &hot],
                [1, 1, 10],
                ["$0.00", "$0.00003"]
            ),
        ]
    );

    // Compaction into usage_d keeps the branch: the same sums after it.
    let before = owner.get_json(&format!("/branches?{range}&format=json"));
    stack.cron("0 * * * *", (today + 1) * DAY_MS + 6 * HOUR_MS);
    let days = stack.d1(&format!(
        "SELECT branch, CAST(SUM(requests) AS TEXT) AS n FROM usage_d WHERE team_id = '{tid}' GROUP BY branch ORDER BY branch"
    ));
    let mut want = vec![
        json!({"branch": vega, "n": "3"}),
        json!({"branch": orion, "n": "3"}),
        json!({"branch": "", "n": "1"}),
        json!({"branch": hot, "n": "1"}),
    ];
    want.sort_by_key(|v| v["branch"].as_str().unwrap().to_string());
    assert_eq!(days, want);
    assert_eq!(
        owner.get_json(&format!("/branches?{range}&format=json")),
        before
    );
}
