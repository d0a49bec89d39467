//! The walking skeleton, end to end: a known Claude Code transcript goes
//! through the real agent binary, the real Worker in workerd (auth, Durable
//! Object rate limit, queue, consumer, D1) and shows up with exact numbers.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};
use tally_e2e::{status, tally_bin, Stack};

fn rfc3339(ms: i64) -> String {
    let (y, m, d) = tally_core::time::civil_from_days(ms.div_euclid(86_400_000));
    let s = ms.rem_euclid(86_400_000) / 1000;
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z", s / 3600, s / 60 % 60, s % 60, ms.rem_euclid(1000))
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

fn assistant(ts: i64, session: &str, msg: &str, req: &str, model: &str, usage: Value) -> String {
    json!({
        "type": "assistant", "uuid": format!("u-{msg}-{}", usage["output_tokens"]), "sessionId": session,
        "timestamp": rfc3339(ts), "cwd": "/home/alice/payments-service", "version": "2.0.30",
        "requestId": req, "isSidechain": false, "userType": "external",
        "message": {"id": msg, "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": "ok"}], "usage": usage}
    })
    .to_string()
}

/// Three billable requests (one written as a two-line streaming split), one
/// synthetic error line and an unknown line type. Expected, by hand:
/// - Sonnet 4.5: 1000×3 + 500×15 + 2000×3.75 + 10000×0.30 = 21,000 µ$
/// - Sonnet 4.5: 100×3 + 300×15 + 1000×6 (1h) + 50000×0.30 = 25,800 µ$ (largest line wins)
/// - Opus 4.5:   10×5 + 1000×25 + 20000×0.50 = 35,050 µ$
pub const EXPECTED_COST: i64 = 81_850;

pub fn write_transcript(dir: &Path, ts: i64) {
    let p = dir.join("projects/-home-alice-payments-service");
    std::fs::create_dir_all(&p).unwrap();
    let s = "11111111-2222-4333-8444-555555555555";
    let lines = [
        json!({"type": "user", "uuid": "p1", "sessionId": s, "timestamp": rfc3339(ts - 1000), "cwd": "/home/alice/payments-service",
               "message": {"role": "user", "content": "fix the refund rounding bug, key sk-ant-api03-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA-BBBBBBAA"}}).to_string(),
        assistant(ts, s, "msg_A", "req_A", "claude-sonnet-4-5-20250929",
            json!({"input_tokens": 1000, "output_tokens": 500, "cache_creation_input_tokens": 2000, "cache_read_input_tokens": 10000})),
        assistant(ts + 1000, s, "msg_B", "req_B", "claude-sonnet-4-5-20250929",
            json!({"input_tokens": 100, "output_tokens": 10, "cache_creation_input_tokens": 1000, "cache_read_input_tokens": 50000,
                   "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 1000}})),
        assistant(ts + 1001, s, "msg_B", "req_B", "claude-sonnet-4-5-20250929",
            json!({"input_tokens": 100, "output_tokens": 300, "cache_creation_input_tokens": 1000, "cache_read_input_tokens": 50000,
                   "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 1000}})),
        assistant(ts + 2000, s, "msg_C", "req_C", "claude-opus-4-5-20251101",
            json!({"input_tokens": 10, "output_tokens": 1000, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 20000})),
        assistant(ts + 3000, s, "msg_D", "req_D", "<synthetic>",
            json!({"input_tokens": 0, "output_tokens": 0, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0})),
        json!({"type": "some-future-type", "sessionId": s, "timestamp": rfc3339(ts)}).to_string(),
    ];
    std::fs::write(p.join(format!("{s}.jsonl")), lines.join("\n") + "\n").unwrap();
}

pub fn tally(home: &Path, claude: &Path, args: &[&str]) -> std::process::Output {
    let out = Command::new(tally_bin())
        .args(args)
        .env("TALLY_HOME", home)
        .env("CLAUDE_CONFIG_DIR", claude)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tally {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn skeleton_flow_shows_exact_numbers() {
    let stack = Stack::start();
    let team = stack.bootstrap("Acme", "owner@acme.test");
    let work = tempfile::tempdir().unwrap();
    let (home, claude) = (work.path().join("tally"), work.path().join("claude"));
    let ts = now_ms() - 120_000;
    write_transcript(&claude, ts);

    tally(&home, &claude, &["install", "--server", &stack.base, "--token", &team.install_token, "--backfill", "1"]);
    // The install token is single-use.
    let again = Command::new(tally_bin())
        .args(["install", "--server", &stack.base, "--token", &team.install_token])
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
    assert_eq!(overview["spend_30d_micro_usd"], EXPECTED_COST);
    let models: Vec<(String, i64)> = overview["models_30d"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["model"].as_str().unwrap().to_string(), m["cost_micro_usd"].as_i64().unwrap()))
        .collect();
    assert_eq!(
        models,
        vec![("claude-sonnet-4-5-20250929".to_string(), 46_800), ("claude-opus-4-5-20251101".to_string(), 35_050)]
    );

    // The dashboard page renders the same figure.
    let html = web.get("/").unwrap().into_string().unwrap();
    assert!(html.contains("data-testid=\"spend-30d\">$0.08<"), "{html}");
    assert!(html.contains("data-testid=\"tokens-cache-read\">80000<"));

    // Rows landed under this team only, with hashed project and session ids.
    let rows = stack.d1("SELECT team_id, project, model, requests, cost_micro_usd FROM usage_hourly ORDER BY model");
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r["team_id"] == team.team_id.as_str()));
    assert!(rows.iter().all(|r| r["project"].as_str().unwrap().len() == 64));
    let sessions = stack.d1("SELECT requests, cost_micro_usd FROM sessions");
    assert_eq!(sessions, vec![json!({"requests": 3, "cost_micro_usd": EXPECTED_COST})]);

    // Running again ships nothing new and changes nothing.
    tally(&home, &claude, &["run", "--once"]);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(web.get_json("/api/overview")["totals_30d"]["cost_micro_usd"], EXPECTED_COST);

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
    assert_eq!(runs, vec![json!({"cron": "30 3 * * *", "details": "{\"teams_pruned\":1}"})]);
}
