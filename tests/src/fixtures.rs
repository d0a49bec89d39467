//! A known Claude Code transcript with hand-computed totals, and a runner for
//! the real agent binary.

use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

use crate::tally_bin;

/// The logs' timestamp format (kept under this name for the tests that use it).
pub use tally_core::time::rfc3339_ms as rfc3339;

pub fn assistant(
    ts: i64,
    session: &str,
    msg: &str,
    req: &str,
    model: &str,
    usage: Value,
) -> String {
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
