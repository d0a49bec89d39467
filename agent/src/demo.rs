//! A deterministic Claude Code–format data set, for `cargo xtask dev
//! --with-agent` on machines without real logs and for benchmarks.

use std::io::Write;
use std::path::Path;

/// Small xorshift PRNG: reproducible corpora without a rand dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

const MODELS: [&str; 3] = [
    "claude-sonnet-4-5-20250929",
    "claude-opus-4-5-20251101",
    "claude-haiku-4-5-20251001",
];
const PROMPTS: [&str; 4] = [
    "add pagination to the users endpoint",
    "why does the integration test fail on CI?",
    "refactor the config loader into its own module",
    "write docs for the retry policy",
];

fn rfc3339(ms: i64) -> String {
    let (y, m, d) = tally_core::time::civil_from_days(ms.div_euclid(86_400_000));
    let s = ms.rem_euclid(86_400_000) / 1000;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        s / 3600,
        s / 60 % 60,
        s % 60,
        ms.rem_euclid(1000)
    )
}

/// Writes `sessions` sessions of `requests` requests each under
/// `<out>/projects/<project>/<session>.jsonl`, ending at `end_ms`.
/// Returns the bytes written.
pub fn generate(
    out: &Path,
    sessions: u32,
    requests: u32,
    end_ms: i64,
    seed: u64,
) -> std::io::Result<u64> {
    let mut rng = Rng::new(seed);
    let mut written = 0u64;
    for s in 0..sessions {
        let project = format!("-home-dev-project{}", s % 3);
        let cwd = format!("/home/dev/project{}", s % 3);
        let dir = out.join("projects").join(&project);
        std::fs::create_dir_all(&dir)?;
        let session = format!(
            "00000000-0000-4000-8000-{:012x}",
            seed.wrapping_mul(1000) + s as u64
        );
        let mut f =
            std::io::BufWriter::new(std::fs::File::create(dir.join(format!("{session}.jsonl")))?);
        let mut ts = end_ms - (sessions - s) as i64 * 3_600_000;
        for r in 0..requests {
            ts += 1_000 + rng.below(30_000) as i64;
            let prompt = PROMPTS[rng.below(PROMPTS.len() as u64) as usize];
            let line = serde_json::json!({
                "type": "user", "uuid": format!("u-{s}-{r}"), "sessionId": session, "timestamp": rfc3339(ts),
                "cwd": cwd, "version": "2.0.30", "gitBranch": "main", "userType": "external", "isSidechain": false,
                "message": {"role": "user", "content": prompt}
            });
            written += write_line(&mut f, &line)?;
            ts += 500;
            let model = MODELS[rng.below(MODELS.len() as u64) as usize];
            let usage = serde_json::json!({
                "input_tokens": 3 + rng.below(50), "output_tokens": 50 + rng.below(900),
                "cache_creation_input_tokens": rng.below(5_000), "cache_read_input_tokens": 10_000 + rng.below(60_000),
                "service_tier": "standard"
            });
            let line = serde_json::json!({
                "type": "assistant", "uuid": format!("a-{s}-{r}"), "parentUuid": format!("u-{s}-{r}"),
                "sessionId": session, "timestamp": rfc3339(ts), "cwd": cwd, "version": "2.0.30", "gitBranch": "main",
                "requestId": format!("req_{seed:x}{s:04x}{r:06x}"), "isSidechain": false, "userType": "external",
                "message": {"id": format!("msg_{seed:x}{s:04x}{r:06x}"), "type": "message", "role": "assistant", "model": model,
                    "content": [{"type": "text", "text": "Done: I updated the code and ran the tests."}],
                    "stop_reason": "end_turn", "usage": usage}
            });
            written += write_line(&mut f, &line)?;
        }
        f.flush()?;
    }
    Ok(written)
}

fn write_line(f: &mut impl Write, v: &serde_json::Value) -> std::io::Result<u64> {
    let mut s = v.to_string();
    s.push('\n');
    f.write_all(s.as_bytes())?;
    Ok(s.len() as u64)
}
