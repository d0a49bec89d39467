//! A second D1 shard is configuration: a stack with two local D1 bindings
//! (`DB`, `DB_2`), two teams placed on different shards, and every path —
//! enrolment, ingest, the consumer, the dashboard's API, sign-in, the hourly
//! cron and team deletion — reaching each team's own shard only. Each team's
//! rows are read back from both sqlite files.

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use tally_e2e::{
    batch, body_json, now_ms, off_event, status, team_tables, ApiAgent, Stack, StackConfig,
};

const DAY: i64 = 86_400_000;
const HOUR: i64 = 3_600_000;
const NIGHTLY: &str = "30 3 * * *";
const HOURLY: &str = "0 * * * *";

/// Rows of `team` per team table in one sqlite file, read directly.
fn rows_in_file(file: &Path, team: &str) -> Vec<(String, i64)> {
    let db =
        rusqlite::Connection::open_with_flags(file, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    team_tables()
        .into_iter()
        .map(|(table, col)| {
            let n: i64 = db
                .query_row(
                    &format!("SELECT COUNT(*) FROM \"{table}\" WHERE {col} = ?1"),
                    [team],
                    |r| r.get(0),
                )
                .unwrap_or_else(|e| panic!("{table} in {}: {e}", file.display()));
            (table, n)
        })
        .collect()
}

fn total(rows: &[(String, i64)]) -> i64 {
    rows.iter().map(|(_, n)| n).sum()
}

fn count(stack: &Stack, shard: &str, sql: &str) -> i64 {
    stack.d1_on(shard, sql)[0]["n"].as_i64().unwrap()
}

/// Events the consumer applied for `team`, from its markers on `shard`.
fn applied(stack: &Stack, shard: &str, team: &str) -> i64 {
    count(
        stack,
        shard,
        &format!("SELECT COALESCE(SUM(events), 0) AS n FROM batches WHERE team_id = '{team}'"),
    )
}

fn events(agent: &ApiAgent, first: u64, n: u64, ts: i64) -> Vec<Value> {
    (first..first + n)
        .map(|k| {
            let mut e = off_event(k, ts, "claude-sonnet-4-5", 1);
            e["project"] = json!(tally_core::hash::project_hash(&agent.salt, "/repo"));
            e
        })
        .collect()
}

#[test]
fn two_teams_live_wholly_on_their_own_shards() {
    let mail = tally_e2e::fakes::email();
    let stack = Stack::start_sharded(
        &["DB", "DB_2"],
        StackConfig {
            vars: vec![
                ("EMAIL_API_URL".into(), format!("{}/emails", mail.base)),
                ("EMAIL_API_KEY".into(), "re_test_key".into()),
                ("EMAIL_FROM".into(), "Tally <tally@acme.test>".into()),
            ],
        },
    );
    // New teams go to the emptiest shard, the first listed on a tie.
    let a = stack.bootstrap("Acme", "owner@acme.test");
    let b = stack.bootstrap("Beta", "owner@beta.test");
    let in_teams = |shard: &str, team: &str| {
        count(
            &stack,
            shard,
            &format!("SELECT COUNT(*) AS n FROM teams WHERE id = '{team}'"),
        )
    };
    assert_eq!(
        [in_teams("DB", &a.team_id), in_teams("DB_2", &a.team_id)],
        [1, 0]
    );
    assert_eq!(
        [in_teams("DB", &b.team_id), in_teams("DB_2", &b.team_id)],
        [0, 1]
    );
    // Bootstrap's "only if empty" looks at every shard.
    let again: Value = ureq::post(&stack.url("/v1/admin/bootstrap"))
        .set(
            "Authorization",
            &format!("Bearer {}", stack.bootstrap_secret),
        )
        .send_json(json!({"team_name": "C", "owner_email": "c@c.test", "only_if_empty": true}))
        .unwrap()
        .into_json()
        .unwrap();
    assert_eq!(again["created"], false);

    // Credentials carry their shard: install tokens, then agent tokens.
    assert!(a.install_token.ends_with("-DB"), "{}", a.install_token);
    assert!(b.install_token.ends_with("-DB_2"), "{}", b.install_token);
    let agent_a = stack.enroll(&a.install_token);
    let agent_b = stack.enroll(&b.install_token);
    assert!(agent_b.token.ends_with("-DB_2"), "{}", agent_b.token);

    // Ingest through /v1/events; the consumer writes each team's shard.
    let ts = now_ms() - 2 * HOUR;
    assert_eq!(
        status(&agent_a.post(&batch("batch-shard-a-000001", events(&agent_a, 0, 3, ts)))),
        202
    );
    assert_eq!(
        status(&agent_b.post(&batch("batch-shard-b-000001", events(&agent_b, 10, 5, ts)))),
        202
    );
    stack.eventually("both teams applied", Duration::from_secs(30), || {
        (applied(&stack, "DB", &a.team_id) == 3 && applied(&stack, "DB_2", &b.team_id) == 5)
            .then_some(())
    });
    assert_eq!(applied(&stack, "DB_2", &a.team_id), 0);
    assert_eq!(applied(&stack, "DB", &b.team_id), 0);

    // A credential from before sharding has no tag and lives on the first
    // shard; a tag moved to another shard finds nothing there.
    let legacy = format!("tly_agent_{}", "7e".repeat(32));
    stack.d1_on(
        "DB",
        &format!(
            "INSERT INTO agent_tokens (team_id, token_hash, id, developer_id, created_at) VALUES ('{}', '{}', 'legacy', '{}', 0)",
            a.team_id,
            tally_core::hash::token_hash(&stack.pepper, &legacy),
            agent_a.developer_id
        ),
    );
    let as_a = |token: String| ApiAgent {
        base: stack.base.clone(),
        token,
        salt: agent_a.salt.clone(),
        developer_id: agent_a.developer_id.clone(),
        agent_id: agent_a.agent_id.clone(),
    };
    let old = as_a(legacy);
    assert_eq!(
        status(&old.post(&batch("batch-shard-legacy-01", events(&agent_a, 20, 2, ts)))),
        202
    );
    let moved = as_a(format!("{}_2", agent_a.token));
    let r = moved.post(&batch("batch-shard-moved-001", events(&agent_a, 30, 1, ts)));
    assert_eq!(status(&r), 401);
    assert_eq!(body_json(r)["message"], "unknown agent token");
    stack.eventually("legacy batch applied", Duration::from_secs(30), || {
        (applied(&stack, "DB", &a.team_id) == 5).then_some(())
    });

    // The dashboard's API, signed in through each team's link: each sees
    // exactly its own events (input tokens are 100 + n per event).
    let web_a = stack.sign_in(&a.signin_path);
    let web_b = stack.sign_in(&b.signin_path);
    assert!(web_b.cookie.ends_with("-DB_2"), "{}", web_b.cookie);
    let totals = |web: &tally_e2e::WebClient| {
        let o = web.get_json("/api/overview");
        (
            o["totals_30d"]["requests"].as_i64().unwrap(),
            o["totals_30d"]["input_tokens"].as_i64().unwrap(),
        )
    };
    assert_eq!(totals(&web_a), (5, 100 + 101 + 102 + 120 + 121));
    assert_eq!(totals(&web_b), (5, 110 + 111 + 112 + 113 + 114));
    // Sign-in by e-mail asks every shard: someone who is a member of both
    // teams gets one link per team, each tagged with its team's shard.
    for (shard, team) in [("DB", &a.team_id), ("DB_2", &b.team_id)] {
        stack.d1_on(
            shard,
            &format!(
                "INSERT INTO members (team_id, id, email, role, created_at) VALUES ('{team}', 'both', 'both@teams.test', 'viewer', 0)"
            ),
        );
    }
    let r = ureq::post(&stack.url("/login"))
        .set("Content-Type", "application/x-www-form-urlencoded")
        .send_string("email=both%40teams.test");
    assert_eq!(status(&r), 200);
    let links: Vec<String> = stack.eventually("two sign-in mails", Duration::from_secs(20), || {
        let mut tags: Vec<String> = mail
            .requests()
            .iter()
            .filter(|m| m.json()["to"][0] == "both@teams.test")
            .map(|m| {
                let text = m.json()["text"].as_str().unwrap_or_default().to_string();
                let at = text.find("token=").expect("a sign-in link") + 6;
                let token: String = text[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
                    .collect();
                token.rsplit('-').next().unwrap().to_string()
            })
            .collect();
        tags.sort();
        (tags.len() == 2).then_some(tags)
    });
    assert_eq!(links, ["DB", "DB_2"]);

    // A self-view link minted by B's agent is stored on B's shard too.
    let minted = body_json(
        ureq::post(&stack.url("/v1/agent/self-view"))
            .set("Authorization", &format!("Bearer {}", agent_b.token))
            .call(),
    );
    assert!(
        minted["path"].as_str().unwrap().ends_with("-DB_2"),
        "{minted}"
    );

    // The hourly cron fans out: B's budget (one micro-dollar) on DB_2 raises
    // its three threshold alerts (50, 80, 100 %) there.
    stack.d1_on(
        "DB_2",
        &format!(
            "INSERT INTO budgets (team_id, scope, scope_key, amount_micro_usd, created_ms, updated_ms) VALUES ('{}', 'team', '', 1, 0, 0)",
            b.team_id
        ),
    );
    stack.cron(HOURLY, ts + HOUR);
    let alerts = |shard: &str, team: &str| {
        count(
            &stack,
            shard,
            &format!("SELECT COUNT(*) AS n FROM alerts WHERE team_id = '{team}'"),
        )
    };
    assert_eq!(alerts("DB_2", &b.team_id), 3);
    assert_eq!(alerts("DB", &b.team_id) + alerts("DB", &a.team_id), 0);
    let run = stack.d1_on(
        "DB",
        "SELECT details FROM cron_runs ORDER BY ran_at DESC LIMIT 1",
    );
    let details: Value = serde_json::from_str(run[0]["details"].as_str().unwrap()).unwrap();
    assert_eq!(details["alerts"]["alerts_raised"], 3);

    // Physically: each team's rows are in exactly one of the two sqlite files.
    let files = stack.d1_files();
    assert_eq!(files.len(), 2, "{files:?}");
    let a_rows: Vec<i64> = files
        .iter()
        .map(|f| total(&rows_in_file(f, &a.team_id)))
        .collect();
    let b_rows: Vec<i64> = files
        .iter()
        .map(|f| total(&rows_in_file(f, &b.team_id)))
        .collect();
    assert!(
        (a_rows[0] > 0 && a_rows[1] == 0 && b_rows[0] == 0 && b_rows[1] > 0)
            || (a_rows[0] == 0 && a_rows[1] > 0 && b_rows[0] > 0 && b_rows[1] == 0),
        "team rows per file: A {a_rows:?}, B {b_rows:?}"
    );
    let b_file = if b_rows[0] > 0 { &files[0] } else { &files[1] };
    let b_tables = rows_in_file(b_file, &b.team_id);
    for table in [
        "teams",
        "members",
        "agent_tokens",
        "batches",
        "alerts",
        "developer_links",
        "web_sessions",
    ] {
        assert!(
            b_tables.iter().any(|(t, n)| t == table && *n > 0),
            "{table} of B not on its shard: {b_tables:?}"
        );
    }

    // Deleting B (scheduled, then erased by the nightly run after the grace
    // period) empties B's shard of it and leaves A as it was.
    let now = now_ms();
    let grace_end = now + 30 * DAY;
    stack.d1_on(
        "DB_2",
        &format!(
            "UPDATE teams SET deleted_at = {now}, delete_after = {grace_end}, deleted_by = 'owner@beta.test' WHERE id = '{}'",
            b.team_id
        ),
    );
    stack.cron(NIGHTLY, grace_end + DAY);
    let left: Vec<(String, i64)> = rows_in_file(b_file, &b.team_id)
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect();
    assert_eq!(left, vec![("team_tombstones".to_string(), 1)]);
    // (The run is dated 31 days on: housekeeping ended every web session
    // and dropped the markers; A keeps its team, two members and two agents.)
    assert_eq!(in_teams("DB", &a.team_id), 1);
    for (table, n) in [("members", 2), ("agent_tokens", 2)] {
        assert_eq!(
            count(
                &stack,
                "DB",
                &format!(
                    "SELECT COUNT(*) AS n FROM {table} WHERE team_id = '{}'",
                    a.team_id
                )
            ),
            n,
            "{table}"
        );
    }
    assert_eq!(total(&rows_in_file(b_file, &a.team_id)), 0);
}
