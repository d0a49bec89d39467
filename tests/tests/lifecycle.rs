//! Data lifecycle against the local stack, with the clock of the scheduled
//! handler set by the test: retention prunes content and categories and
//! never an aggregate, a failing team does not stop the others, work resumes
//! across invocations, and a deleted team leaves no row and no object.

use std::time::Duration;

use serde_json::{json, Value};
use tally_e2e::{
    batch, body_json, now_ms, off_event, status, team_tables, ApiAgent, Stack, StackConfig,
};

const DAY: i64 = 86_400_000;
const NIGHTLY: &str = "30 3 * * *";
const HOURLY: &str = "0 * * * *";

fn full_event(agent: &ApiAgent, n: u64, ts: i64, session: &str) -> Value {
    let mut e = off_event(n, ts, "claude-sonnet-4-5", 1);
    e["project"] = json!(tally_core::hash::project_hash(&agent.salt, "/repo"));
    e["session"] = json!(tally_core::hash::session_hash(&agent.salt, session));
    e["mode"] = json!("full");
    e["prompt"] = json!(format!("prompt {n}"));
    e["response"] = json!(format!("answer {n}"));
    e
}

fn set_full(stack: &Stack, team: &str) {
    stack.d1(&format!(
        "UPDATE teams SET privacy_mode = 'full', retention_days = 30 WHERE id = '{team}'"
    ));
}

fn aggregates(stack: &Stack, team: &str) -> Value {
    let u = stack.d1(&format!(
        "SELECT COALESCE(SUM(requests),0) AS requests, COALESCE(SUM(cost_micro_usd),0) AS micro FROM usage_q WHERE team_id = '{team}'"
    ));
    let s = stack.d1(&format!(
        "SELECT COUNT(*) AS sessions FROM sessions WHERE team_id = '{team}'"
    ));
    json!({"requests": u[0]["requests"], "micro": u[0]["micro"], "sessions": s[0]["sessions"]})
}

fn audit(stack: &Stack, team: &str, action: &str) -> Vec<Value> {
    stack.audit_details(team, action)
}

fn wait_applied(stack: &Stack, team: &str, requests: u64) {
    stack.eventually("batches applied", Duration::from_secs(30), || {
        (aggregates(stack, team)["requests"] == requests).then_some(())
    });
}

#[test]
fn retention_prunes_content_keeps_aggregates_and_isolates_a_failing_team() {
    let stack = Stack::start();
    let a = stack.bootstrap("Acme", "owner@acme.test");
    let b = stack.bootstrap("Beta", "owner@beta.test");
    let agent_a = stack.enroll(&a.install_token);
    let agent_b = stack.enroll(&b.install_token);
    let now = now_ms();

    // Categorize first: a category row 40 days old (pruned) and one from today (kept).
    stack.d1(&format!(
        "UPDATE teams SET privacy_mode = 'categorize_local' WHERE id = '{}'",
        a.team_id
    ));
    let categorized = |n: u64, ts: i64| {
        let mut e = off_event(n, ts, "claude-sonnet-4-5", 1);
        e["mode"] = json!("categorize_local");
        e["category"] =
            json!({"category": "testing", "task_hint": "t", "project_hint": "p", "confidence": 50});
        e
    };
    assert_eq!(
        status(&agent_a.post(&batch(
            "batch-cat-0000000001",
            vec![categorized(1, now - 40 * DAY), categorized(2, now)]
        ))),
        202
    );
    set_full(&stack, &a.team_id);
    // Said 40 and 35 days ago but arriving now: dated by when it was said.
    let old = vec![
        full_event(&agent_a, 10, now - 40 * DAY, "s1"),
        full_event(&agent_a, 11, now - 40 * DAY + 1000, "s2"),
        full_event(&agent_a, 12, now - 35 * DAY, "s1"),
        full_event(&agent_a, 13, now - DAY, "s1"),
    ];
    assert_eq!(
        status(&agent_a.post(&batch("batch-full-000000001", old))),
        202
    );
    wait_applied(&stack, &a.team_id, 6);
    let prefix_a = format!("teams/{}/content/", a.team_id);
    let keys = stack.r2_keys(&prefix_a);
    assert_eq!(keys.len(), 4, "one object per day and session: {keys:?}");
    let day = |ms: i64| tally_core::time::utc_date(ms);
    let s1 = tally_core::hash::session_hash(&agent_a.salt, "s1");
    assert!(keys.contains(&format!(
        "{prefix_a}{}/{s1}/batch-full-000000001.json",
        day(now - 40 * DAY)
    )));
    let indexed = stack.d1(&format!(
        "SELECT COUNT(*) AS n, SUM(bytes) AS bytes FROM content_objects WHERE team_id = '{}'",
        a.team_id
    ));
    assert_eq!(indexed[0]["n"], 4);
    let old_bytes: u64 = stack.d1(&format!(
        "SELECT SUM(bytes) AS b FROM content_objects WHERE team_id = '{}' AND day < {}",
        a.team_id,
        (now - 30 * DAY).div_euclid(DAY)
    ))[0]["b"]
        .as_u64()
        .unwrap();
    let before = aggregates(&stack, &a.team_id);

    // Team B holds an object that is not a dated content key: its pruning
    // refuses to guess and fails, and must not stop team A's.
    set_full(&stack, &b.team_id);
    assert_eq!(
        status(&agent_b.post(&batch(
            "batch-full-b00000001",
            vec![full_event(&agent_b, 20, now - 40 * DAY, "x")]
        ))),
        202
    );
    wait_applied(&stack, &b.team_id, 1);
    let bad = format!("teams/{}/content/0000-bad/stray.json", b.team_id);
    stack.r2_put(&bad, b"stray");

    stack.cron(NIGHTLY, now);
    let left = stack.r2_keys(&prefix_a);
    assert_eq!(
        left,
        keys.iter()
            .filter(|k| k.contains(&day(now - DAY)))
            .cloned()
            .collect::<Vec<_>>(),
        "only content younger than 30 days stays"
    );
    assert_eq!(
        before,
        aggregates(&stack, &a.team_id),
        "aggregates are kept forever"
    );
    let cats = stack.d1(&format!(
        "SELECT day FROM categories WHERE team_id = '{}'",
        a.team_id
    ));
    assert_eq!(cats, vec![json!({"day": now.div_euclid(DAY)})]);
    let pruned = audit(&stack, &a.team_id, "retention.pruned");
    assert_eq!(
        pruned,
        vec![json!({
            "cutoff": day(now - 30 * DAY),
            "objects_deleted": 3,
            "bytes_deleted": old_bytes,
            // three index rows and one category row
            "rows_deleted": 4,
        })]
    );
    // B: failed, recorded on its job and in its own audit log; its content stays.
    let job = stack.d1(&format!(
        "SELECT state, attempts, error FROM lifecycle_jobs WHERE team_id = '{}'",
        b.team_id
    ));
    assert_eq!(job[0]["attempts"], 1, "{job:?}");
    assert!(
        job[0]["error"]
            .as_str()
            .unwrap()
            .contains("not a dated content key"),
        "{job:?}"
    );
    assert_eq!(audit(&stack, &b.team_id, "lifecycle.failed").len(), 1);
    assert_eq!(stack.r2_keys(&format!("teams/{}/", b.team_id)).len(), 2);
    let runs = stack.d1("SELECT details FROM cron_runs ORDER BY id");
    let last: Value =
        serde_json::from_str(runs.last().unwrap()["details"].as_str().unwrap()).unwrap();
    assert_eq!(
        (last["jobs_done"].as_u64(), last["jobs_failed"].as_u64()),
        (Some(1), Some(1))
    );

    // A doubled invocation the same night starts nothing new and deletes nothing.
    stack.cron(NIGHTLY, now + 1000);
    assert_eq!(audit(&stack, &a.team_id, "retention.pruned").len(), 1);
    // The next night finds nothing left to delete, and says so.
    stack.cron(NIGHTLY, now + DAY);
    let pruned = audit(&stack, &a.team_id, "retention.pruned");
    assert_eq!(pruned.len(), 2);
    assert_eq!(
        (
            pruned[1]["objects_deleted"].as_u64(),
            pruned[1]["rows_deleted"].as_u64()
        ),
        (Some(0), Some(0))
    );
    assert_eq!(stack.r2_keys(&prefix_a).len(), 1);
    assert_eq!(before, aggregates(&stack, &a.team_id));
}

#[test]
fn lifecycle_work_resumes_in_the_next_invocation() {
    // Two R2 calls an invocation: one team's listing and deletion.
    let stack = Stack::start_with(StackConfig {
        vars: vec![("LIFECYCLE_OPS_PER_RUN".into(), "2".into())],
    });
    let now = now_ms();
    let mut teams = Vec::new();
    for (i, name) in ["Acme", "Beta"].iter().enumerate() {
        let t = stack.bootstrap(name, &format!("owner{i}@x.test"));
        let agent = stack.enroll(&t.install_token);
        set_full(&stack, &t.team_id);
        assert_eq!(
            status(&agent.post(&batch(
                &format!("batch-resume-{i:08}"),
                vec![full_event(&agent, i as u64, now - 40 * DAY, "s")]
            ))),
            202
        );
        teams.push(t);
    }
    stack.cron(NIGHTLY, now);
    let states = || {
        stack
            .d1("SELECT state FROM lifecycle_jobs ORDER BY id")
            .into_iter()
            .map(|r| r["state"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(states(), ["done", "pending"]);
    let runs = stack.d1("SELECT details FROM cron_runs ORDER BY id");
    let first: Value = serde_json::from_str(runs[0]["details"].as_str().unwrap()).unwrap();
    assert_eq!(
        first["jobs_resumable"], 1,
        "never silently partial: {first}"
    );
    stack.cron(HOURLY, now + 3_600_000);
    assert_eq!(states(), ["done", "done"]);
    for t in &teams {
        assert!(stack.r2_keys(&format!("teams/{}/", t.team_id)).is_empty());
        assert_eq!(audit(&stack, &t.team_id, "retention.pruned").len(), 1);
    }
}

#[test]
fn a_deleted_team_is_erased_after_the_grace_period_and_nothing_of_it_remains() {
    let stack = Stack::start();
    let doomed = stack.bootstrap("Doomed", "owner@doomed.test");
    let kept = stack.bootstrap("Kept", "owner@kept.test");
    let agent = stack.enroll(&doomed.install_token);
    let other = stack.enroll(&kept.install_token);
    let web = stack.sign_in(&doomed.signin_path);
    let now = now_ms();
    set_full(&stack, &doomed.team_id);
    set_full(&stack, &kept.team_id);
    // Kept forever, so that retention leaves its content alone below.
    stack.d1(&format!(
        "UPDATE teams SET retention_days = 0 WHERE id = '{}'",
        kept.team_id
    ));
    for (a, id) in [
        (&agent, "batch-doomed-0000001"),
        (&other, "batch-kept-00000001"),
    ] {
        assert_eq!(
            status(&a.post(&batch(id, vec![full_event(a, 1, now - DAY, "s")]))),
            202
        );
    }
    wait_applied(&stack, &doomed.team_id, 1);
    wait_applied(&stack, &kept.team_id, 1);
    // Young audit rows exist (sign-in, settings) and must go too.
    assert!(!stack
        .d1(&format!(
            "SELECT id FROM audit_log WHERE team_id = '{}'",
            doomed.team_id
        ))
        .is_empty());
    let tables = team_tables();
    assert!(tables.len() >= 15, "{tables:?}");

    // Scheduled for deletion (the owner's form is tested in the dashboard
    // tests): uploads stop with 410 at once.
    let grace_end = now + 30 * DAY;
    stack.d1(&format!(
        "UPDATE teams SET deleted_at = {now}, delete_after = {grace_end}, deleted_by = 'owner@doomed.test' WHERE id = '{}'",
        doomed.team_id
    ));
    let r = agent.post(&batch(
        "batch-after-delete-1",
        vec![full_event(&agent, 2, now, "s")],
    ));
    assert_eq!(status(&r), 410);
    assert!(body_json(r)["message"]
        .as_str()
        .unwrap()
        .contains(&tally_core::time::utc_date(grace_end)));
    drop(web);

    // Within the grace period nothing is erased.
    stack.cron(NIGHTLY, grace_end - DAY);
    assert_eq!(
        stack.r2_keys(&format!("teams/{}/", doomed.team_id)).len(),
        1
    );
    // After it, everything is.
    stack.cron(NIGHTLY, grace_end + DAY);
    assert!(stack
        .r2_keys(&format!("teams/{}/", doomed.team_id))
        .is_empty());
    for (table, col) in &tables {
        let n = stack.d1(&format!(
            "SELECT COUNT(*) AS n FROM {table} WHERE {col} = '{}'",
            doomed.team_id
        ));
        let expected = if table == "team_tombstones" { 1 } else { 0 };
        assert_eq!(n[0]["n"], expected, "{table} still holds the deleted team");
    }
    let tomb = stack.d1(&format!(
        "SELECT deleted_at, hard_deleted_at, counts FROM team_tombstones WHERE team_id = '{}'",
        doomed.team_id
    ));
    assert_eq!(tomb[0]["deleted_at"], now);
    assert_eq!(tomb[0]["hard_deleted_at"], grace_end + DAY);
    let counts: Value = serde_json::from_str(tomb[0]["counts"].as_str().unwrap()).unwrap();
    assert_eq!(counts["r2"]["objects"], 1);
    assert_eq!(counts["rows"]["usage_q"], 1);
    assert_eq!(counts["rows"]["teams"], 1);
    // The other team is untouched.
    assert_eq!(aggregates(&stack, &kept.team_id)["requests"], 1);
    assert_eq!(stack.r2_keys(&format!("teams/{}/", kept.team_id)).len(), 1);
}
