//! A deterministic Claude Code–format data set, for `cargo xtask dev
//! --with-agent` on machines without real logs and for benchmarks.

use std::io::Write;
use std::path::Path;
use tally_core::time::rfc3339_ms;
use tally_core::time::HOUR_MS;

/// Small xorshift PRNG: reproducible corpora without a rand dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
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
        let mut ts = end_ms - (sessions - s) as i64 * HOUR_MS;
        for r in 0..requests {
            ts += 1_000 + rng.below(30_000) as i64;
            let prompt = PROMPTS[rng.below(PROMPTS.len() as u64) as usize];
            let line = serde_json::json!({
                "type": "user", "uuid": format!("u-{s}-{r}"), "sessionId": session, "timestamp": rfc3339_ms(ts),
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
                "sessionId": session, "timestamp": rfc3339_ms(ts), "cwd": cwd, "version": "2.0.30", "gitBranch": "main",
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

/// A corpus shaped like real Claude Code logs, for benchmarks: streamed
/// responses written as 2–3 lines with growing usage, thinking and tool-use
/// blocks, large tool results, multi-MB `file-history-snapshot` lines,
/// subagent transcripts, and resumed sessions that repeat earlier lines.
/// Returns (bytes written, distinct requests).
pub fn generate_corpus(out: &Path, target_bytes: u64, seed: u64) -> std::io::Result<(u64, u64)> {
    let mut rng = Rng::new(seed);
    let filler: String = (0..4096)
        .map(|i| (b'a' + ((i * 7 + i / 13) % 26) as u8) as char)
        .collect();
    // Filler of `base` plus up to `spread` random bytes.
    let text = |rng: &mut Rng, base: usize, spread: u64| -> String {
        let n = base + rng.below(spread.max(1)) as usize;
        let mut s = String::with_capacity(n);
        while s.len() < n {
            let start = rng.below(2048) as usize;
            let take = (n - s.len()).min(filler.len() - start);
            s.push_str(&filler[start..start + take]);
        }
        s
    };
    let mut written = 0u64;
    let mut requests = 0u64;
    let mut session_no = 0u64;
    let base_ms = 1_760_000_000_000i64;
    let mut previous: Vec<String> = Vec::new();
    while written < target_bytes {
        session_no += 1;
        let project = session_no % 17;
        let cwd = format!("/home/dev/repo{project}");
        let dir = out
            .join("projects")
            .join(format!("-home-dev-repo{project}"));
        std::fs::create_dir_all(&dir)?;
        let sid = format!("{:08x}-0000-4000-8000-{:012x}", seed as u32, session_no);
        let mut f = std::io::BufWriter::with_capacity(
            1 << 20,
            std::fs::File::create(dir.join(format!("{sid}.jsonl")))?,
        );
        let mut ts = base_ms + session_no as i64 * 1_800_000;
        // A resumed session starts with a copy of the previous session's lines.
        if session_no.is_multiple_of(4) {
            for l in &previous {
                let l = l.replace(&previous_sid(session_no - 1, seed), &sid);
                f.write_all(l.as_bytes())?;
                written += l.len() as u64;
            }
        }
        previous.clear();
        let turns = 40 + rng.below(120);
        for t in 0..turns {
            ts += 2_000 + rng.below(60_000) as i64;
            let prompt = text(&mut rng, 40, 400);
            let line = format!(
                "{{\"parentUuid\":null,\"isSidechain\":false,\"userType\":\"external\",\"cwd\":\"{cwd}\",\"sessionId\":\"{sid}\",\"version\":\"2.0.30\",\"gitBranch\":\"main\",\"type\":\"user\",\"message\":{{\"role\":\"user\",\"content\":\"{prompt}\"}},\"uuid\":\"u{session_no}-{t}\",\"timestamp\":\"{}\"}}\n",
                rfc3339_ms(ts)
            );
            written += write_raw(&mut f, &line, &mut previous)?;
            let model = MODELS[rng.below(MODELS.len() as u64) as usize];
            let steps = 1 + rng.below(6);
            for k in 0..steps {
                requests += 1;
                ts += 1_000 + rng.below(20_000) as i64;
                let id = format!("{seed:x}{session_no:06x}{t:04x}{k:02x}");
                let out_tokens = 100 + rng.below(3000);
                let usage = |o: u64| {
                    format!(
                        "{{\"input_tokens\":{},\"cache_creation_input_tokens\":{},\"cache_read_input_tokens\":{},\"cache_creation\":{{\"ephemeral_5m_input_tokens\":0,\"ephemeral_1h_input_tokens\":{}}},\"output_tokens\":{o},\"service_tier\":\"standard\"}}",
                        3 + k, 500 + k * 37, 20_000 + k * 1_000, 500 + k * 37
                    )
                };
                let blocks = [
                    format!("{{\"type\":\"thinking\",\"thinking\":\"{}\",\"signature\":\"{}\"}}", text(&mut rng, 300, 2500), text(&mut rng, 300, 0)),
                    format!("{{\"type\":\"text\",\"text\":\"{}\"}}", text(&mut rng, 50, 800)),
                    format!("{{\"type\":\"tool_use\",\"id\":\"toolu_{id}\",\"name\":\"Edit\",\"input\":{{\"file_path\":\"{cwd}/src/lib.rs\",\"old_string\":\"{}\",\"new_string\":\"{}\"}}}}", text(&mut rng, 200, 1500), text(&mut rng, 200, 1500)),
                ];
                let n_lines = 2 + rng.below(2) as usize;
                for (li, block) in blocks.iter().take(n_lines).enumerate() {
                    // Earlier lines of a streamed response carry a partial count.
                    let o = if li + 1 == n_lines {
                        out_tokens
                    } else {
                        1 + li as u64
                    };
                    let line = format!(
                        "{{\"parentUuid\":\"u{session_no}-{t}\",\"isSidechain\":false,\"userType\":\"external\",\"cwd\":\"{cwd}\",\"sessionId\":\"{sid}\",\"version\":\"2.0.30\",\"gitBranch\":\"main\",\"message\":{{\"id\":\"msg_{id}\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"{model}\",\"content\":[{block}],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{}}},\"requestId\":\"req_{id}\",\"type\":\"assistant\",\"uuid\":\"a{id}-{li}\",\"timestamp\":\"{}\"}}\n",
                        usage(o),
                        rfc3339_ms(ts)
                    );
                    written += write_raw(&mut f, &line, &mut previous)?;
                }
                // The tool's result: often a whole file.
                let result = text(&mut rng, 500, 12_000);
                let line = format!(
                    "{{\"parentUuid\":\"a{id}-0\",\"isSidechain\":false,\"userType\":\"external\",\"cwd\":\"{cwd}\",\"sessionId\":\"{sid}\",\"version\":\"2.0.30\",\"type\":\"user\",\"message\":{{\"role\":\"user\",\"content\":[{{\"tool_use_id\":\"toolu_{id}\",\"type\":\"tool_result\",\"content\":\"{result}\"}}]}},\"uuid\":\"r{id}\",\"timestamp\":\"{}\",\"toolUseResult\":{{\"stdout\":\"{}\"}}}}\n",
                    rfc3339_ms(ts + 500),
                    text(&mut rng, 200, 0)
                );
                written += write_raw(&mut f, &line, &mut previous)?;
            }
            if rng.below(60) == 0 {
                // Snapshots of edited files: single lines of several MB.
                let big = text(&mut rng, 1_000_000, 3_000_000);
                let line = format!(
                    "{{\"type\":\"file-history-snapshot\",\"messageId\":\"u{session_no}-{t}\",\"snapshot\":{{\"trackedFileBackups\":{{\"src/lib.rs\":{{\"content\":\"{big}\"}}}},\"timestamp\":\"{}\"}},\"isSnapshotUpdate\":false}}\n",
                    rfc3339_ms(ts)
                );
                f.write_all(line.as_bytes())?;
                written += line.len() as u64;
            }
        }
        f.flush()?;
        // Every third session ran a subagent.
        if session_no.is_multiple_of(3) {
            let sub = dir.join(&sid).join("subagents");
            std::fs::create_dir_all(&sub)?;
            let mut f = std::io::BufWriter::new(std::fs::File::create(
                sub.join(format!("agent-{session_no:x}.jsonl")),
            )?);
            for k in 0..20u64 {
                requests += 1;
                let id = format!("sub{seed:x}{session_no:06x}{k:04x}");
                let line = format!(
                    "{{\"parentUuid\":null,\"isSidechain\":true,\"userType\":\"external\",\"cwd\":\"{cwd}\",\"sessionId\":\"{sid}\",\"agentId\":\"{session_no:x}\",\"version\":\"2.0.30\",\"message\":{{\"id\":\"msg_{id}\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-haiku-4-5-20251001\",\"content\":[{{\"type\":\"text\",\"text\":\"{}\"}}],\"usage\":{{\"input_tokens\":10,\"cache_creation_input_tokens\":100,\"cache_read_input_tokens\":5000,\"output_tokens\":{}}}}},\"requestId\":\"req_{id}\",\"type\":\"assistant\",\"uuid\":\"s{id}\",\"timestamp\":\"{}\"}}\n",
                    text(&mut rng, 500, 0),
                    50 + k,
                    rfc3339_ms(ts + k as i64 * 1000)
                );
                f.write_all(line.as_bytes())?;
                written += line.len() as u64;
            }
            f.flush()?;
        }
    }
    Ok((written, requests))
}

fn previous_sid(session_no: u64, seed: u64) -> String {
    format!("{:08x}-0000-4000-8000-{:012x}", seed as u32, session_no)
}

/// Writes a line and remembers the first lines of a session for a later resume.
fn write_raw(f: &mut impl Write, line: &str, keep: &mut Vec<String>) -> std::io::Result<u64> {
    f.write_all(line.as_bytes())?;
    if keep.len() < 30 {
        keep.push(line.to_string());
    }
    Ok(line.len() as u64)
}
