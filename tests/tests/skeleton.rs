//! The walking skeleton, end to end: a known Claude Code transcript goes
//! through the real agent binary, the real Worker in workerd (auth, Durable
//! Object rate limit, queue, consumer, D1) and shows up with exact numbers.

use std::process::Command;
use std::time::Duration;

use serde_json::json;
use tally_e2e::fixtures::{tally, write_transcript, EXPECTED_COST};
use tally_e2e::{now_ms, status, tally_bin, Stack};

#[test]
fn skeleton_flow_shows_exact_numbers() {
    let stack = Stack::start();
    let team = stack.bootstrap("Acme", "owner@acme.test");
    let work = tempfile::tempdir().unwrap();
    let (home, claude) = (work.path().join("tally"), work.path().join("claude"));
    let ts = now_ms() - 120_000;
    write_transcript(&claude, ts);

    tally(
        &home,
        &claude,
        &[
            "install",
            "--server",
            &stack.base,
            "--token",
            &team.install_token,
            "--backfill",
            "1",
        ],
    );
    // The install token is single-use.
    let again = Command::new(tally_bin())
        .args([
            "install",
            "--server",
            &stack.base,
            "--token",
            &team.install_token,
        ])
        .env("TALLY_HOME", work.path().join("other"))
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("HTTP 401"));

    tally(&home, &claude, &["run", "--once"]);

    let web = stack.sign_in(&team.signin_path);
    let overview = stack.eventually("aggregates in D1", Duration::from_secs(60), || {
        let o = web.get_json("/api/overview");
        (o["totals_30d"]["requests"] == 3).then_some(o)
    });
    let t = &overview["totals_30d"];
    assert_eq!(t["input_tokens"], 1110);
    assert_eq!(t["output_tokens"], 1800);
    assert_eq!(t["cache_write_5m_tokens"], 2000);
    assert_eq!(t["cache_write_1h_tokens"], 1000);
    assert_eq!(t["cache_read_tokens"], 80000);
    assert_eq!(t["cost_micro_usd"], EXPECTED_COST);
    assert_eq!(t["unpriced_requests"], 0);
    assert_eq!(t["cost_pico_usd"], 0);
    assert_eq!(t["cost_usd"], "0.081850000000");
    assert_eq!(overview["spend_30d_usd"], "0.081850000000");
    let models: Vec<(String, i64)> = overview["models_30d"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["model"].as_str().unwrap().to_string(),
                m["cost_micro_usd"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        models,
        vec![
            ("claude-sonnet-4-5-20250929".to_string(), 46_800),
            ("claude-opus-4-5-20251101".to_string(), 35_050)
        ]
    );

    // The dashboard page renders the same figure.
    let html = web.get("/").unwrap().into_string().unwrap();
    assert!(
        html.contains("data-testid=\"spend-30d\" title=\"$0.08185\">$0.08<"),
        "{html}"
    );
    assert!(html.contains("data-testid=\"tokens-cache-read\" title=\"80,000\">80.0k<"));

    // Rows landed under this team only, with hashed project and session ids.
    let rows = stack
        .d1("SELECT team_id, project, model, requests, cost_micro_usd FROM usage_q ORDER BY model");
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r["team_id"] == team.team_id.as_str()));
    assert!(rows
        .iter()
        .all(|r| r["project"].as_str().unwrap().len() == 64));
    let sessions = stack.d1("SELECT requests, cost_micro_usd FROM sessions");
    assert_eq!(
        sessions,
        vec![json!({"requests": 3, "cost_micro_usd": EXPECTED_COST})]
    );

    // Running again ships nothing new and changes nothing.
    tally(&home, &claude, &["run", "--once"]);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        web.get_json("/api/overview")["totals_30d"]["cost_micro_usd"],
        EXPECTED_COST
    );

    // Signed-out visitors get the sign-in page, not data.
    let anon = ureq::get(&stack.url("/api/overview")).call();
    assert_eq!(status(&anon), 401);

    // The cron handler runs and records that it ran.
    let r = ureq::get(&stack.url("/__scheduled?cron=30+3+*+*+*")).call();
    assert_eq!(status(&r), 200);
    let runs = stack.eventually("cron run recorded", Duration::from_secs(20), || {
        let r = stack.d1("SELECT cron, details FROM cron_runs");
        (!r.is_empty()).then_some(r)
    });
    assert_eq!(
        runs,
        // One retention job started and done for the one team.
        vec![
            json!({"cron": "30 3 * * *", "details": "{\"housekeeping_rows\":0,\"jobs_done\":1,\"jobs_failed\":0,\"jobs_resumable\":0,\"jobs_started\":1}"})
        ]
    );
}
