//! The real `tally` binary against a scripted server (fast, exact control of
//! answers and failures) and, once, against the real local stack.
//!
//! What must hold: each privacy mode sends exactly its fields; `preview`
//! shows exactly what is sent; kill -9 at any moment loses and duplicates
//! nothing; auth failures stop loudly and keep the data; server totals equal
//! `tally report` totals.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tally_core::money::Usd;
use tally_core::wire::decode_batch;
use tally_e2e::fakes::{ollama, FakeServer, Recorded, Reply};
use tally_e2e::fixtures::rfc3339;
use tally_e2e::{now_ms, tally_bin, Stack};

const SALT: &str = "team-salt-0123456789";

/// Answers like the edge: enroll, config, events (validated with the same
/// decoder the Worker uses).
fn fake_edge(mode: &'static str) -> FakeServer {
    FakeServer::start(move |req: &Recorded| edge_reply(req, mode))
}

fn edge_reply(req: &Recorded, mode: &str) -> Reply {
    match (req.method.as_str(), req.path.as_str()) {
        ("POST", "/v1/agent/enroll") => Reply::json(
            200,
            json!({"agent_token": "tly_agent_test", "agent_id": "ag1", "team_id": "t1",
                   "developer_id": "d1", "salt": SALT, "privacy_mode": mode}),
        ),
        ("GET", "/v1/agent/config") => Reply::json(
            200,
            json!({"team_id": "t1", "privacy_mode": mode, "salt": SALT}),
        ),
        ("GET", "/healthz") => Reply::text(200, "ok"),
        ("POST", "/v1/agent/self-view") => Reply::json(
            200,
            json!({"url": "http://x/me/link?token=tly_self_1", "path": "/me/link?token=tly_self_1",
                   "expires_at": 1, "expires_in_s": 600}),
        ),
        ("POST", "/v1/events") => match decode_batch(&body_of(req), now_ms()) {
            Ok(b) => Reply::json(
                202,
                json!({"batch_id": b.batch_id, "accepted": b.events.len(), "privacy_mode": mode, "restricted": 0}),
            ),
            Err(e) => Reply::json(
                400,
                json!({"error": "invalid_batch", "message": e.to_string(), "field": e.field}),
            ),
        },
        _ => Reply::text(404, "not found"),
    }
}

fn body_of(req: &Recorded) -> Vec<u8> {
    if req.header("content-encoding") == Some("gzip") {
        use std::io::Read;
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&req.body[..])
            .read_to_end(&mut out)
            .unwrap();
        out
    } else {
        req.body.clone()
    }
}

/// Accepted batches (by id, first answer wins: what the edge stores).
fn accepted_batches(server: &FakeServer) -> BTreeMap<String, Vec<Value>> {
    let mut out = BTreeMap::new();
    for r in server.requests() {
        if r.path == "/v1/events" {
            let v: Value = serde_json::from_slice(&body_of(&r)).unwrap();
            out.entry(v["batch_id"].as_str().unwrap().to_string())
                .or_insert_with(|| v["events"].as_array().unwrap().clone());
        }
    }
    out
}

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn home(&self) -> std::path::PathBuf {
        self.dir.path().join("tally")
    }
    fn claude(&self) -> std::path::PathBuf {
        self.dir.path().join("claude")
    }
    fn gemini(&self) -> std::path::PathBuf {
        self.dir.path().join("gemini")
    }
    fn opencode(&self) -> std::path::PathBuf {
        self.dir.path().join("opencode")
    }
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(tally_bin());
        c.args(args)
            .env("TALLY_HOME", self.home())
            .env("CLAUDE_CONFIG_DIR", self.claude())
            .env("CODEX_HOME", self.dir.path().join("codex"))
            .env("TALLY_GEMINI_DIR", self.gemini())
            .env("TALLY_OPENCODE_DIR", self.opencode())
            .env("TALLY_RETRY_BASE_MS", "20")
            .env("TZ", "UTC");
        c
    }
    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }
    fn ok(&self, args: &[&str]) -> Output {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "tally {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
    fn json(&self, args: &[&str]) -> Value {
        serde_json::from_slice(&self.ok(args).stdout).unwrap()
    }
}

/// Makes transcripts look finished (not being written), as they are a
/// minute after a response.
fn age_files(dir: &Path) {
    let old = std::time::SystemTime::now() - Duration::from_secs(600);
    for e in walk(dir) {
        std::fs::File::options()
            .append(true)
            .open(&e)
            .unwrap()
            .set_modified(old)
            .unwrap();
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// The git branch of `write_session`: a ticket branch with a token pasted in.
const BRANCH: &str = "fix/PAY-12-ghp_0123456789abcdefghijABCDEFGHIJ0123456789";

/// A session on `BRANCH` with a prompt carrying a secret, a streamed
/// two-line response with a tool call, and a second request.
fn write_session(claude: &Path, ts: i64) {
    let p = claude.join("projects/-home-alice-payments");
    std::fs::create_dir_all(&p).unwrap();
    let s = "aaaaaaaa-1111-4222-8333-444444444444";
    let base = |uuid: &str, t: i64| {
        json!({"uuid": uuid, "sessionId": s, "timestamp": rfc3339(t), "cwd": "/home/alice/payments",
               "version": "2.0.30", "gitBranch": BRANCH, "userType": "external", "isSidechain": false})
    };
    let mut lines = Vec::new();
    let mut u = base("p1", ts);
    u["type"] = json!("user");
    u["message"] =
        json!({"role": "user", "content": "rotate the key AKIAIOSFODNN7EXAMPLE and fix refunds"});
    lines.push(u);
    for (uuid, out, content) in [
        (
            "a1",
            5,
            json!([{"type": "text", "text": "Looking at refunds."}]),
        ),
        (
            "a2",
            250,
            json!([{"type": "tool_use", "id": "t1", "name": "Edit", "input": {"file_path": "/home/alice/payments/x.rs"}}]),
        ),
    ] {
        let mut a = base(uuid, ts + 1000);
        a["type"] = json!("assistant");
        a["requestId"] = json!("req_1");
        a["message"] = json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
            "content": content, "usage": {"input_tokens": 100, "output_tokens": out, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 1000}});
        lines.push(a);
    }
    let mut a = base("a3", ts + 5000);
    a["type"] = json!("assistant");
    a["requestId"] = json!("req_2");
    a["message"] = json!({"id": "msg_2", "type": "message", "role": "assistant", "model": "claude-opus-4-5-20251101",
        "content": [{"type": "text", "text": "Done."}], "usage": {"input_tokens": 10, "output_tokens": 20, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}});
    lines.push(a);
    let text: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    std::fs::write(p.join(format!("{s}.jsonl")), text.join("\n") + "\n").unwrap();
}

fn keys(e: &Value) -> Vec<String> {
    e.as_object().unwrap().keys().cloned().collect()
}

const BASE: [&str; 10] = [
    "agent",
    "branch",
    "cost_pico_usd",
    "id",
    "mode",
    "model",
    "project",
    "session",
    "tokens",
    "ts",
];

fn with(extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = BASE.iter().chain(extra).map(|s| s.to_string()).collect();
    v.sort();
    v
}

#[test]
fn each_privacy_mode_sends_exactly_its_fields_and_preview_matches() {
    let oll = ollama(
        json!({"category": "bug_fix", "task_hint": "fix refunds", "project_hint": "payments", "confidence": 0.9}),
    );
    let cases: [(&str, Vec<String>); 4] = [
        ("off", with(&[])),
        ("categorize_local", with(&["category"])),
        ("categorize_cloud", with(&["branch_name", "prompt"])),
        (
            "full",
            with(&["branch_name", "prompt", "response", "tools"]),
        ),
    ];
    for (mode, expected) in cases {
        let server = fake_edge(mode);
        let env = Env::new();
        let ts = now_ms() - 300_000;
        write_session(&env.claude(), ts);
        age_files(&env.claude());
        env.ok(&[
            "install",
            "--server",
            &server.base,
            "--token",
            "tly_inst_x",
            "--backfill",
            "1",
            "--ollama-url",
            &oll.base,
        ]);
        env.ok(&["run", "--once"]);
        let batches = accepted_batches(&server);
        assert_eq!(batches.len(), 1, "{mode}");
        let events: Vec<Value> = batches.into_values().flatten().collect();
        assert_eq!(events.len(), 2, "{mode}");
        for (i, e) in events.iter().enumerate() {
            let mut expected = expected.clone();
            if i == 1 {
                // The second response used no tool: nothing to send.
                expected.retain(|k| k != "tools");
            }
            assert_eq!(keys(e), expected, "{mode}: {e}");
            assert_eq!(e["mode"], mode);
            let text = e.to_string();
            assert!(
                !text.contains("AKIA"),
                "{mode}: secret left the machine: {text}"
            );
            assert!(
                !text.contains("alice"),
                "{mode}: path left the machine: {text}"
            );
            assert!(
                !text.contains("aaaaaaaa-1111"),
                "{mode}: session id left: {text}"
            );
            // The branch: its keyed hash in every mode, its name only where
            // prompt text goes, and the token in it never.
            assert_eq!(
                e["branch"],
                tally_core::hash::branch_hash(SALT, BRANCH),
                "{mode}"
            );
            assert!(
                !text.contains("ghp_"),
                "{mode}: token in the branch left: {text}"
            );
            match mode {
                "categorize_cloud" | "full" => {
                    assert_eq!(e["branch_name"], "fix/PAY-12-[REDACTED:github_token]")
                }
                _ => assert!(!text.contains("PAY-12"), "{mode}: branch name left: {text}"),
            }
        }
        // What the README promises for this mode says the same.
        let readme = std::fs::read_to_string(tally_e2e::root().join("README.md")).unwrap();
        let row = readme
            .lines()
            .find(|l| l.starts_with(&format!("| `{mode}`")))
            .unwrap();
        let names_branch = row.contains("redacted git branch name");
        assert_eq!(
            names_branch,
            matches!(mode, "categorize_cloud" | "full"),
            "{row}"
        );
        if mode == "off" {
            assert!(
                row.contains("git branch") && row.contains("never the branch's name"),
                "{row}"
            );
        }
        // The streamed request counts once, with its largest line.
        let first = &events[0];
        assert_eq!(
            first["tokens"],
            json!({"input": 100, "output": 250, "cache_write_5m": 0, "cache_write_1h": 0, "cache_read": 1000})
        );
        // 100×3 + 250×15 + 1000×0.30 = 4,350 µ$; Opus: 10×5 + 20×25 = 550 µ$,
        // sent exactly, in pico-USD.
        assert_eq!(first["cost_pico_usd"], 4_350_000_000u64);
        assert_eq!(events[1]["cost_pico_usd"], 550_000_000u64);
        match mode {
            "categorize_local" => {
                assert_eq!(
                    first["category"],
                    json!({"category": "bug_fix", "task_hint": "fix refunds", "project_hint": "payments", "confidence": 90})
                );
            }
            "categorize_cloud" => assert_eq!(
                first["prompt"],
                "rotate the key [REDACTED:aws_access_key] and fix refunds"
            ),
            "full" => {
                assert_eq!(first["response"], "Looking at refunds.");
                assert_eq!(first["tools"], json!(["Edit"]));
                assert_eq!(events[1]["response"], "Done.");
                assert!(events[1].get("tools").is_none());
            }
            _ => {}
        }
        let preview: Vec<Value> =
            serde_json::from_slice(&env.ok(&["preview", "-n", "2"]).stdout).unwrap();
        assert_eq!(
            preview, events,
            "{mode}: preview differs from what was sent"
        );
        if mode == "off" {
            // Locally the branch is readable: cost per branch, per agent.
            let r = env.json(&["report", "branch", "--json", "--agent", "claude_code"]);
            assert_eq!(r["rows"].as_array().unwrap().len(), 1, "{r}");
            let row = &r["rows"][0];
            assert_eq!(
                (&row["project"], &row["branch"], &row["requests"]),
                (&json!("/home/alice/payments"), &json!(BRANCH), &json!(2))
            );
            // 4,350 µ$ + 550 µ$, exactly.
            let raw = String::from_utf8(
                env.ok(&["report", "branch", "--json", "--agent", "claude_code"])
                    .stdout,
            )
            .unwrap();
            assert!(
                raw.contains("\"requests\":2,\"cost_usd\":0.004900}"),
                "{raw}"
            );
            let codex = env.json(&["report", "branch", "--json", "--agent", "codex"]);
            assert_eq!(codex["rows"], json!([]));
        }
        // The key fallback is in use here and is said out loud.
        let status = String::from_utf8(env.ok(&["status"]).stdout).unwrap();
        assert!(
            status.contains("outbox key:      degraded: key file"),
            "{status}"
        );
        assert!(status.contains("0 batches (0 events) waiting"), "{status}");
    }
    // Categorize-local prompts went to Ollama only, with the JSON-schema format.
    let asked = oll.requests();
    assert_eq!(
        asked.len(),
        2,
        "one call per prompt, in `run` and again in `preview`"
    );
    let body = asked[0].json();
    assert_eq!(body["model"], "llama3.1:8b");
    assert_eq!(
        body["format"]["required"],
        json!(["category", "task_hint", "project_hint", "confidence"])
    );
}

#[test]
fn ollama_down_ships_without_category_and_says_so() {
    let server = fake_edge("categorize_local");
    let env = Env::new();
    write_session(&env.claude(), now_ms() - 300_000);
    age_files(&env.claude());
    env.ok(&[
        "install",
        "--server",
        &server.base,
        "--token",
        "tly_inst_x",
        "--backfill",
        "1",
        "--ollama-url",
        "http://127.0.0.1:9",
    ]);
    env.ok(&["run", "--once"]);
    let events: Vec<Value> = accepted_batches(&server).into_values().flatten().collect();
    assert_eq!(events.len(), 2);
    assert!(events.iter().all(|e| keys(e) == with(&[])), "{events:?}");
    let st = env.json(&["status", "--json"]);
    let o = st["ollama"].as_str().unwrap();
    assert!(
        o.starts_with("unavailable: Ollama at http://127.0.0.1:9"),
        "{o}"
    );
}

/// Many requests over many files, old enough to ship, in 4 batches.
fn big_corpus(env: &Env) -> usize {
    env.ok(&[
        "demo-data",
        "--out",
        env.claude().to_str().unwrap(),
        "--sessions",
        "6",
        "--requests",
        "300",
    ]);
    age_files(&env.claude());
    1800
}

#[test]
fn kill_9_at_any_moment_loses_and_duplicates_nothing() {
    let server = fake_edge("full");
    let env = Env::new();
    let n = big_corpus(&env);
    env.ok(&[
        "install",
        "--server",
        &server.base,
        "--token",
        "tly_inst_x",
        "--backfill",
        "30",
    ]);
    // Every answer is slow, so kills land while a batch is in flight.
    let posts = Arc::new(Mutex::new(0u32));
    let p2 = posts.clone();
    server.set_responder(move |req| {
        if req.path == "/v1/events" {
            *p2.lock().unwrap() += 1;
            std::thread::sleep(Duration::from_millis(300));
        }
        edge_reply(req, "full")
    });
    let kill = |child: &mut std::process::Child| {
        // SAFETY: signalling a child this test spawned.
        unsafe {
            libc::kill(child.id() as i32, libc::SIGKILL);
        }
        let _ = child.wait();
    };
    let spawn = || {
        env.cmd(&["run", "--once"])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    // While reading logs and writing the outbox.
    for delay_ms in [5u64, 30, 80, 150] {
        let mut child = spawn();
        std::thread::sleep(Duration::from_millis(delay_ms));
        kill(&mut child);
    }
    // While a batch is on the wire (sent, not yet acknowledged), three times.
    for _ in 0..3 {
        let before = *posts.lock().unwrap();
        let mut child = spawn();
        let deadline = Instant::now() + Duration::from_secs(30);
        while *posts.lock().unwrap() == before {
            assert!(Instant::now() < deadline, "no upload started");
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(100));
        kill(&mut child);
    }
    // Some answered, unacknowledged batches were sent again, not rebuilt.
    let posted = *posts.lock().unwrap() as usize;
    assert!(posted >= 3);
    env.ok(&["run", "--once"]);
    let batches = accepted_batches(&server);
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for (bid, events) in &batches {
        for e in events {
            let id = e["id"].as_str().unwrap().to_string();
            if let Some(other) = seen.insert(id.clone(), bid.clone()) {
                panic!("event {id} sent in two batches: {other} and {bid}");
            }
        }
    }
    assert_eq!(seen.len(), n);
    assert_eq!(batches.len(), 4, "1800 events make exactly 4 batches");
    // And the numbers the server holds equal the local report.
    let mut out_tokens = 0u64;
    let mut cost = Usd::ZERO;
    for e in batches.values().flatten() {
        out_tokens += e["tokens"]["output"].as_u64().unwrap();
        cost.add_pico(e["cost_pico_usd"].as_u64().unwrap());
    }
    let r = env.json(&["report", "daily", "--json", "--timezone", "UTC"]);
    assert_eq!(r["totals"]["requests"], n as u64);
    assert_eq!(r["totals"]["output_tokens"], out_tokens);
    // The report's total is the exact sum of the requests' costs, rounded
    // once (half up), not a sum of rounded requests.
    assert_eq!(micro(&r["totals"]["cost_usd"]) as u128, cost.rounded(6));
    let st = env.json(&["status", "--json"]);
    assert_eq!(st["outbox"]["pending_events"], 0);
}

/// The server's exact total: whole micro-USD plus the pico-USD beyond them
/// (`cost_micro_usd` + `cost_pico_usd`, as D1 keeps them), or, without a
/// micro part, the whole amount in pico-USD (a string, `Usd`'s wire form).
fn server_cost(s: &Value) -> Usd {
    let num = |v: &Value| -> Option<u128> {
        v.as_str()
            .and_then(|t| t.parse().ok())
            .or_else(|| v.as_u64().map(u128::from))
    };
    let pico = num(&s["cost_pico_usd"]);
    match num(&s["cost_micro_usd"]) {
        Some(micro) => Usd::from_pico(micro * 1_000_000 + pico.unwrap_or(0)),
        None => Usd::from_pico(pico.expect("a cost in the server's totals")),
    }
}

/// "12.345678" (a JSON number) → 12_345_678 micro-USD, exactly.
fn micro(v: &Value) -> u64 {
    let s = v.to_string();
    let (whole, frac) = s.split_once('.').unwrap_or((&s, "0"));
    let frac = format!("{frac:0<6}");
    whole.parse::<u64>().unwrap() * 1_000_000 + frac[..6].parse::<u64>().unwrap()
}

#[test]
fn auth_failure_stops_loudly_and_keeps_the_data_then_429_is_honoured() {
    let server = fake_edge("off");
    let env = Env::new();
    write_session(&env.claude(), now_ms() - 300_000);
    age_files(&env.claude());
    env.ok(&[
        "install",
        "--server",
        &server.base,
        "--token",
        "tly_inst_x",
        "--backfill",
        "1",
    ]);
    server.set_responder(|req| {
        if req.path == "/v1/events" {
            Reply::json(
                403,
                json!({"error": "revoked", "message": "this agent token was revoked"}),
            )
        } else {
            edge_reply(req, "off")
        }
    });
    let out = env.run(&["run", "--once"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("HTTP 403"), "{err}");
    assert!(
        err.contains("Ask a team admin for a new install token"),
        "{err}"
    );
    let st = env.json(&["status", "--json"]);
    assert_eq!(st["outbox"]["pending_events"], 2);
    // Rate limited once, then accepted: the wait is honoured and nothing doubles.
    let hits = Arc::new(Mutex::new(Vec::<Instant>::new()));
    let h2 = hits.clone();
    server.set_responder(move |req| {
        if req.path == "/v1/events" {
            let mut h = h2.lock().unwrap();
            h.push(Instant::now());
            if h.len() == 1 {
                return Reply {
                    status: 429,
                    content_type: "application/json",
                    body: b"{\"error\":\"rate_limited\"}".to_vec(),
                    headers: Vec::new(),
                };
            }
        }
        edge_reply(req, "off")
    });
    env.ok(&["run", "--once"]);
    let h = hits.lock().unwrap();
    assert_eq!(h.len(), 2);
    let events: Vec<Value> = accepted_batches(&server).into_values().flatten().collect();
    assert_eq!(events.len(), 2);
    assert_eq!(
        env.json(&["status", "--json"])["outbox"]["pending_events"],
        0
    );
}

#[test]
fn report_daily_json_is_exact_offline_and_waits_for_incomplete_lines() {
    let env = Env::new();
    let ts = 1_763_854_200_000; // 2025-11-22T23:30:00Z
    write_session(&env.claude(), ts);
    // A resumed session repeats msg_1 under another session id, plus one new request.
    let p = env.claude().join("projects/-home-alice-payments");
    let orig =
        std::fs::read_to_string(p.join("aaaaaaaa-1111-4222-8333-444444444444.jsonl")).unwrap();
    let resumed = orig.replace(
        "aaaaaaaa-1111-4222-8333-444444444444",
        "bbbbbbbb-1111-4222-8333-444444444444",
    ) + "this line is not json\n"
        + "{\"type\":\"assistant\",\"uuid\":\"partial\"";
    std::fs::write(
        p.join("bbbbbbbb-1111-4222-8333-444444444444.jsonl"),
        resumed,
    )
    .unwrap();
    let r = env.json(&["report", "daily", "--json", "--timezone", "UTC"]);
    assert_eq!(
        r,
        json!({"rows": [
            {"date": "2025-11-22", "model": "claude-opus-4-5-20251101", "input_tokens": 10, "output_tokens": 20,
             "cache_write_5m_tokens": 0, "cache_write_1h_tokens": 0, "cache_read_tokens": 0, "requests": 1, "cost_usd": 0.00055},
            {"date": "2025-11-22", "model": "claude-sonnet-4-5-20250929", "input_tokens": 100, "output_tokens": 250,
             "cache_write_5m_tokens": 0, "cache_write_1h_tokens": 0, "cache_read_tokens": 1000, "requests": 1, "cost_usd": 0.00435}],
         "totals": {"input_tokens": 110, "output_tokens": 270, "cache_write_5m_tokens": 0, "cache_write_1h_tokens": 0,
                    "cache_read_tokens": 1000, "requests": 2, "cost_usd": 0.0049}})
    );
    // Exactly six decimals in the text, never float noise.
    let raw = String::from_utf8(
        env.ok(&["report", "daily", "--json", "--timezone", "UTC"])
            .stdout,
    )
    .unwrap();
    assert!(raw.contains("\"cost_usd\":0.004900}}"), "{raw}");
    // Days follow --timezone: 23:30Z is the 23rd in Berlin.
    let r = env.json(&["report", "daily", "--json", "--timezone", "Europe/Berlin"]);
    assert_eq!(r["rows"][0]["date"], "2025-11-23");
    let r = env.json(&[
        "report",
        "daily",
        "--json",
        "--timezone",
        "UTC",
        "--since",
        "2025-11-23",
    ]);
    assert_eq!(r["rows"], json!([]));
    assert_eq!(r["totals"]["requests"], 0);
    // Other groupings, and the table view.
    let s = env.json(&["report", "session", "--json"]);
    assert_eq!(
        s["rows"].as_array().unwrap().len(),
        1,
        "the resumed copy belongs to the first session"
    );
    let m = env.json(&["report", "model", "--json"]);
    assert_eq!(m["rows"].as_array().unwrap().len(), 2);
    let pj = env.json(&["report", "project", "--json"]);
    assert_eq!(pj["rows"][0]["project"], "/home/alice/payments");
    let table =
        String::from_utf8(env.ok(&["report", "daily", "--timezone", "UTC"]).stdout).unwrap();
    assert!(table.contains("claude-opus-4-5-20251101"), "{table}");
    assert!(
        table.lines().last().unwrap().starts_with("total"),
        "{table}"
    );
    // Bad input is a clear error.
    let bad = env.run(&["report", "daily", "--json", "--since", "2025-13-01"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--since \"2025-13-01\" is not a date"));
    let bad = env.run(&["report", "daily", "--timezone", "Nowhere/Else"]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown time zone"));
    // The incomplete last line is completed later and then counted.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(p.join("bbbbbbbb-1111-4222-8333-444444444444.jsonl"))
        .unwrap();
    use std::io::Write;
    let rest = format!(
        ",\"sessionId\":\"b\",\"timestamp\":\"{}\",\"requestId\":\"req_9\",\"message\":{{\"id\":\"msg_9\",\"model\":\"claude-haiku-4-5-20251001\",\"usage\":{{\"input_tokens\":1000,\"output_tokens\":0}}}}}}\n",
        rfc3339(ts)
    );
    f.write_all(rest.as_bytes()).unwrap();
    let r = env.json(&["report", "model", "--json"]);
    assert_eq!(r["totals"]["requests"], 3);
    assert_eq!(r["totals"]["input_tokens"], 1110);
}

#[test]
fn server_totals_equal_report_totals_on_the_real_stack() {
    let stack = Stack::start();
    let team = stack.bootstrap("Acme", "owner@acme.test");
    let env = Env::new();
    let ts = now_ms() - 3_600_000;
    write_session(&env.claude(), ts);
    tally_e2e::fixtures::write_transcript(&env.claude(), ts - 600_000);
    env.ok(&[
        "demo-data",
        "--out",
        env.claude().to_str().unwrap(),
        "--sessions",
        "3",
        "--requests",
        "200",
    ]);
    // A Codex rollout as well.
    let cx = env.dir.path().join("codex/sessions/2025/11/22");
    std::fs::create_dir_all(&cx).unwrap();
    let codex = [
        json!({"timestamp": rfc3339(ts), "type": "session_meta", "payload": {"id": "c0dec0de-0000-4000-8000-000000000001", "cwd": "/home/alice/cli"}}),
        json!({"timestamp": rfc3339(ts), "type": "turn_context", "payload": {"model": "gpt-5", "cwd": "/home/alice/cli"}}),
        json!({"timestamp": rfc3339(ts + 10), "type": "event_msg", "payload": {"type": "token_count", "info": {"total_token_usage": {"input_tokens": 1000, "cached_input_tokens": 400, "output_tokens": 50, "reasoning_output_tokens": 10}}}}),
        json!({"timestamp": rfc3339(ts + 20), "type": "event_msg", "payload": {"type": "token_count", "info": {"total_token_usage": {"input_tokens": 1000, "cached_input_tokens": 400, "output_tokens": 50, "reasoning_output_tokens": 10}}}}),
        json!({"timestamp": rfc3339(ts + 30), "type": "event_msg", "payload": {"type": "token_count", "info": {"total_token_usage": {"input_tokens": 2500, "cached_input_tokens": 1400, "output_tokens": 90, "reasoning_output_tokens": 10}}}}),
    ];
    let lines: Vec<String> = codex.iter().map(|l| l.to_string()).collect();
    std::fs::write(
        cx.join("rollout-2025-11-22T10-00-00-c0dec0de-0000-4000-8000-000000000001.jsonl"),
        lines.join("\n") + "\n",
    )
    .unwrap();
    age_files(env.dir.path());
    env.ok(&[
        "install",
        "--server",
        &stack.base,
        "--token",
        &team.install_token,
        "--backfill",
        "2",
    ]);
    env.ok(&["run", "--once"]);
    let report = env.json(&["report", "daily", "--json", "--timezone", "UTC"]);
    let t = &report["totals"];
    let n = t["requests"].as_u64().unwrap();
    assert_eq!(n, 2 + 3 + 600 + 2);
    let web = stack.sign_in(&team.signin_path);
    let o = stack.eventually("all events aggregated", Duration::from_secs(90), || {
        let o = web.get_json("/api/overview");
        (o["totals_30d"]["requests"].as_u64() == Some(n)).then_some(o)
    });
    let s = &o["totals_30d"];
    for (server_field, report_field) in [
        ("input_tokens", "input_tokens"),
        ("output_tokens", "output_tokens"),
        ("cache_write_5m_tokens", "cache_write_5m_tokens"),
        ("cache_write_1h_tokens", "cache_write_1h_tokens"),
        ("cache_read_tokens", "cache_read_tokens"),
    ] {
        assert_eq!(s[server_field], t[report_field], "{server_field}");
    }
    // The report's total is the exact sum of every request's cost (as the
    // preview builds them), rounded once.
    let all: Vec<Value> =
        serde_json::from_slice(&env.ok(&["preview", "-n", "100000"]).stdout).unwrap();
    assert_eq!(all.len() as u64, n);
    let exact: Usd = all
        .iter()
        .map(|e| Usd::from_pico(e["cost_pico_usd"].as_u64().unwrap() as u128))
        .sum();
    assert_eq!(micro(&t["cost_usd"]) as u128, exact.rounded(6));
    assert_eq!(server_cost(s), exact, "server total {s}");
    // A second run changes nothing on either side.
    env.ok(&["run", "--once"]);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(web.get_json("/api/overview")["totals_30d"], *s);
    assert_eq!(
        env.json(&["report", "daily", "--json", "--timezone", "UTC"])["totals"],
        *t
    );
}

#[test]
fn the_running_agent_picks_up_new_lines_and_restarts_without_double_counting() {
    let server = fake_edge("off");
    let env = Env::new();
    let ts = now_ms() - 600_000;
    write_session(&env.claude(), ts);
    env.ok(&[
        "install",
        "--server",
        &server.base,
        "--token",
        "tly_inst_x",
        "--backfill",
        "1",
    ]);
    let events =
        |server: &FakeServer| -> usize { accepted_batches(server).values().map(|v| v.len()).sum() };
    let wait_for = |n: usize| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while events(&server) < n {
            assert!(Instant::now() < deadline, "agent never shipped {n} events");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let mut child = env
        .cmd(&["run", "--interval", "1"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for(2);
    // A new response in a new session file, written while the agent runs.
    let p = env.claude().join("projects/-home-alice-payments");
    let line = json!({"type": "assistant", "uuid": "n1", "sessionId": "s-new", "timestamp": rfc3339(ts + 9000),
        "cwd": "/home/alice/payments", "requestId": "req_n", "message": {"id": "msg_n", "model": "claude-haiku-4-5-20251001",
        "usage": {"input_tokens": 7, "output_tokens": 3}}});
    std::fs::write(p.join("s-new.jsonl"), line.to_string() + "\n").unwrap();
    wait_for(3);
    // SAFETY: signalling a child this test spawned.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGKILL);
    }
    let _ = child.wait();
    env.ok(&["run", "--once"]);
    assert_eq!(events(&server), 3);
    let posts = server
        .requests()
        .iter()
        .filter(|r| r.path == "/v1/events")
        .count();
    assert_eq!(posts, 2, "a restart sends nothing already acknowledged");
}

/// `systemctl stop` sends SIGTERM: the agent ships what it has settled
/// (here a response written just before the signal, which no cycle has
/// seen yet: the interval is an hour) and exits 0. Without the handler the
/// signal kills it and that response waits for the next start.
#[test]
fn sigterm_flushes_what_is_settled_and_exits_cleanly() {
    let server = fake_edge("off");
    let env = Env::new();
    let ts = now_ms() - 600_000;
    write_session(&env.claude(), ts);
    install(&env, &server, &[]);
    let events =
        |server: &FakeServer| -> usize { accepted_batches(server).values().map(|v| v.len()).sum() };
    let log = env.dir.path().join("logs/agent.log");
    let mut child = env
        .cmd(&[
            "run",
            "--interval",
            "3600",
            "--log-file",
            log.to_str().unwrap(),
        ])
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while events(&server) < 2 {
        assert!(
            Instant::now() < deadline,
            "agent never shipped its first 2 events"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let p = env.claude().join("projects/-home-alice-payments");
    let line = json!({"type": "assistant", "uuid": "t1", "sessionId": "s-term", "timestamp": rfc3339(ts + 9000),
        "cwd": "/home/alice/payments", "requestId": "req_t", "message": {"id": "msg_t", "model": "claude-haiku-4-5-20251001",
        "usage": {"input_tokens": 11, "output_tokens": 5}}});
    std::fs::write(p.join("s-term.jsonl"), line.to_string() + "\n").unwrap();
    // SAFETY: signalling a child this test spawned.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "agent did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0));
    assert_eq!(
        events(&server),
        3,
        "the response written before SIGTERM was shipped"
    );
    let shipped: Vec<Value> = accepted_batches(&server).into_values().flatten().collect();
    assert!(
        shipped
            .iter()
            .any(|e| e["tokens"]["input"] == 11 && e["tokens"]["output"] == 5),
        "{shipped:?}"
    );
    // Its output went to the log file, ending with the stop.
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("SIGTERM: shipping what is settled, then stopping"),
        "{text}"
    );
    assert!(text.trim_end().ends_with("stopped"), "{text}");
    // A restart has nothing left to send.
    env.ok(&["run", "--once"]);
    assert_eq!(events(&server), 3);
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Installs against `server` with `extra` arguments after `--backfill 1`.
fn install(env: &Env, server: &FakeServer, extra: &[&str]) {
    let mut args = vec![
        "install",
        "--server",
        &server.base,
        "--token",
        "tly_inst_x",
        "--backfill",
        "1",
    ];
    args.extend_from_slice(extra);
    env.ok(&args);
}

#[test]
fn install_refuses_plain_http_and_long_backfills_before_spending_the_token() {
    let server = fake_edge("off");
    let env = Env::new();
    // Plain http to another machine: refused at install...
    let out = env.run(&[
        "install",
        "--server",
        "http://tally.example.com",
        "--token",
        "tly_inst_x",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("refusing to talk to http://tally.example.com over plain http"),
        "{}",
        stderr(&out)
    );
    // ... as is a backfill beyond what the server accepts.
    let out = env.run(&[
        "install",
        "--server",
        &server.base,
        "--token",
        "tly_inst_x",
        "--backfill",
        "366",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("--backfill 366: at most 365 days"),
        "{}",
        stderr(&out)
    );
    assert!(
        server.requests().is_empty(),
        "the install token is not spent"
    );
    // Loopback over http is fine; the hostname leaves as a short hash.
    env.ok(&[
        "install",
        "--server",
        &server.base,
        "--token",
        "tly_inst_x",
        "--backfill",
        "365",
    ]);
    let enrol = server.requests()[0].json();
    let sent = enrol["hostname"].as_str().unwrap().to_string();
    assert!(sent.starts_with("host-") && sent.len() == 17, "{sent}");
    let st = env.json(&["status", "--json"]);
    assert_eq!(st["hostname_sent"], sent.as_str());
    // In clear only when asked.
    let clear = Env::new();
    install(&clear, &server, &["--send-hostname"]);
    let enrol = server.requests().last().unwrap().json();
    assert!(!enrol["hostname"].as_str().unwrap().starts_with("host-"));
    // An older enrolment naming a plain-http server stops `run`, loudly.
    let cfg_path = env.home().join("config.json");
    let mut cfg: Value = serde_json::from_slice(&std::fs::read(&cfg_path).unwrap()).unwrap();
    cfg["server"] = json!("http://tally.example.com");
    std::fs::write(&cfg_path, cfg.to_string()).unwrap();
    let out = env.run(&["run", "--once"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("over plain http"), "{}", stderr(&out));
    let status = String::from_utf8(env.ok(&["status"]).stdout).unwrap();
    assert!(status.contains("ERROR:           refusing"), "{status}");
}

#[test]
fn the_local_ceiling_caps_what_leaves_and_status_and_preview_show_both_modes() {
    let server = fake_edge("full");
    let env = Env::new();
    write_session(&env.claude(), now_ms() - 300_000);
    age_files(&env.claude());
    install(&env, &server, &["--max-mode", "off"]);
    env.ok(&["run", "--once"]);
    let events: Vec<Value> = accepted_batches(&server).into_values().flatten().collect();
    assert_eq!(events.len(), 2);
    for e in &events {
        assert_eq!(keys(e), with(&[]), "{e}");
        assert_eq!(e["mode"], "off");
    }
    let st = env.json(&["status", "--json"]);
    assert_eq!(
        (
            &st["privacy_mode"],
            &st["team_privacy_mode"],
            &st["max_mode"]
        ),
        (&json!("off"), &json!("full"), &json!("off"))
    );
    let text = String::from_utf8(env.ok(&["status"]).stdout).unwrap();
    assert!(
        text.contains("privacy mode:    off (team: full, this machine's ceiling: off)"),
        "{text}"
    );
    let out = env.ok(&["preview", "-n", "2"]);
    let preview: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(preview, events);
    let note = stderr(&out);
    assert!(
        note.contains("privacy mode: off (team: full, this machine's ceiling: off)"),
        "{note}"
    );
    assert!(note.contains("Tally-Quarantined"), "{note}");
    assert!(note.contains("hostname as \"host-"), "{note}");
    // A bad ceiling is refused with the list of modes.
    let out = Env::new().run(&[
        "install",
        "--server",
        &server.base,
        "--token",
        "t",
        "--max-mode",
        "some",
    ]);
    assert!(stderr(&out).contains("off, categorize_local, categorize_cloud or full"));
}

/// The old agent set a whole batch aside on any 400 or 413.
#[test]
fn a_batch_over_capacity_is_split_and_only_the_invalid_event_is_quarantined() {
    let server = fake_edge("off");
    let env = Env::new();
    write_session(&env.claude(), now_ms() - 300_000);
    age_files(&env.claude());
    install(&env, &server, &[]);
    server.set_responder(|req| {
        if req.path == "/v1/events" {
            let b: Value = serde_json::from_slice(&body_of(req)).unwrap();
            let events = b["events"].as_array().unwrap();
            if events.len() > 1 {
                return Reply::json(
                    413,
                    json!({"error": "batch_exceeds_rate_capacity", "message": "batch has more events than the team's burst capacity of 1"}),
                );
            }
            if events[0]["model"].as_str().unwrap().contains("opus") {
                return Reply::json(
                    400,
                    json!({"error": "invalid_batch", "message": "events[0].model: not accepted here", "index": 0, "field": "model"}),
                );
            }
        }
        edge_reply(req, "off")
    });
    env.ok(&["run", "--once"]);
    let events: Vec<Value> = accepted_batches(&server)
        .into_iter()
        .filter(|(_, ev)| ev.len() == 1 && !ev[0]["model"].as_str().unwrap().contains("opus"))
        .flat_map(|(_, ev)| ev)
        .collect();
    assert_eq!(events.len(), 1, "the valid event shipped");
    let st = env.json(&["status", "--json"]);
    assert_eq!(st["outbox"]["pending_events"], 0);
    assert_eq!(st["quarantine"]["events"], 1);
    assert!(st["quarantine"]["first_error"]
        .as_str()
        .unwrap()
        .contains("events[0].model: not accepted here"));
    let text = String::from_utf8(env.ok(&["status"]).stdout).unwrap();
    assert!(
        text.contains("QUARANTINED:     1 events rejected by the server"),
        "{text}"
    );
    // Kept on disk, encrypted.
    let raw = std::fs::read(env.home().join("quarantine.bin")).unwrap();
    assert!(!raw.windows(4).any(|w| w == b"opus"));
    // Every upload says what is held back and which agent version sends.
    let uploads: Vec<Recorded> = server
        .requests()
        .into_iter()
        .filter(|r| r.path == "/v1/events")
        .collect();
    assert_eq!(uploads.len(), 3, "whole batch, then each half");
    for r in &uploads {
        assert_eq!(
            r.header("tally-agent-version"),
            Some(env!("CARGO_PKG_VERSION"))
        );
    }
    assert_eq!(uploads[0].header("tally-quarantined"), Some("0"));
    // The next upload reports the quarantined event.
    server.set_responder(|req| edge_reply(req, "off"));
    tally_e2e::fixtures::write_transcript(&env.claude(), now_ms() - 200_000);
    age_files(&env.claude());
    env.ok(&["run", "--once"]);
    let last = server
        .requests()
        .into_iter()
        .rfind(|r| r.path == "/v1/events")
        .unwrap();
    assert_eq!(last.header("tally-quarantined"), Some("1"));
}

#[test]
fn batches_are_packed_to_the_team_burst_capacity() {
    let server = FakeServer::start(|req| match req.path.as_str() {
        "/v1/agent/config" => Reply::json(
            200,
            json!({"team_id": "t1", "privacy_mode": "off", "salt": SALT, "rate_capacity": 1}),
        ),
        _ => edge_reply(req, "off"),
    });
    let env = Env::new();
    write_session(&env.claude(), now_ms() - 300_000);
    age_files(&env.claude());
    install(&env, &server, &[]);
    env.ok(&["run", "--once"]);
    let batches = accepted_batches(&server);
    assert_eq!(batches.len(), 2);
    assert!(batches.values().all(|b| b.len() == 1));
    assert_eq!(env.json(&["status", "--json"])["batch_events"], 1);
}

/// Hints were cut to 120 characters and then redacted: placeholders longer
/// than the secrets made them longer than the edge accepts.
#[test]
fn local_categories_with_many_short_secrets_still_ship() {
    let hint = ["ann@corp.io"; 10].join(" ");
    let oll = ollama(
        json!({"category": "bug_fix", "task_hint": hint, "project_hint": "payments", "confidence": 0.9}),
    );
    let server = fake_edge("categorize_local");
    let env = Env::new();
    write_session(&env.claude(), now_ms() - 300_000);
    age_files(&env.claude());
    install(&env, &server, &["--ollama-url", &oll.base]);
    env.ok(&["run", "--once"]);
    let events: Vec<Value> = accepted_batches(&server).into_values().flatten().collect();
    let ok: Vec<&Value> = events
        .iter()
        .filter(|e| {
            server.requests().iter().any(|r| {
                r.path == "/v1/events"
                    && decode_batch(&body_of(r), now_ms())
                        .is_ok_and(|b| b.events.iter().any(|x| x.id == e["id"]))
            })
        })
        .collect();
    assert_eq!(ok.len(), 2, "both events accepted: {events:?}");
    let h = ok[0]["category"]["task_hint"].as_str().unwrap();
    assert!(h.chars().count() <= 120 && !h.contains('@'), "{h}");
    assert_eq!(env.json(&["status", "--json"])["quarantine"]["events"], 0);
}

/// README's table of what leaves the machine, checked against every request
/// the agent makes: only the listed routes, bodies and headers.
#[test]
fn only_what_the_readme_lists_leaves_the_machine() {
    let server = fake_edge("off");
    let env = Env::new();
    write_session(&env.claude(), now_ms() - 300_000);
    age_files(&env.claude());
    install(&env, &server, &[]);
    env.ok(&["run", "--once"]);
    env.ok(&["status"]);
    env.ok(&["preview", "-n", "2"]);
    env.ok(&["report", "daily", "--json"]);
    let link = env.ok(&["dashboard", "--print"]);
    assert_eq!(
        String::from_utf8_lossy(&link.stdout),
        format!("{}/me/link?token=tly_self_1\n", server.base)
    );
    let standard = [
        "host",
        "user-agent",
        "accept",
        "accept-encoding",
        "content-length",
        "content-type",
        "connection",
    ];
    let reqs = server.requests();
    assert!(!reqs.is_empty());
    for r in &reqs {
        let mut extra: Vec<String> = r
            .headers
            .iter()
            .map(|(k, _)| k.to_ascii_lowercase())
            .filter(|k| !standard.contains(&k.as_str()))
            .collect();
        extra.sort();
        match (r.method.as_str(), r.path.as_str()) {
            ("POST", "/v1/agent/enroll") => {
                let body = r.json();
                let mut k: Vec<&String> = body.as_object().unwrap().keys().collect();
                k.sort();
                assert_eq!(k, ["hostname", "token"]);
                assert!(body["hostname"].as_str().unwrap().starts_with("host-"));
                assert!(extra.is_empty(), "{extra:?}");
            }
            ("GET", "/v1/agent/config") => assert_eq!(extra, ["authorization"]),
            ("POST", "/v1/agent/self-view") => {
                assert_eq!(extra, ["authorization"]);
                assert!(body_of(r).is_empty());
            }
            ("POST", "/v1/events") => {
                assert_eq!(
                    extra,
                    [
                        "authorization",
                        "content-encoding",
                        "tally-agent-version",
                        "tally-quarantined"
                    ]
                );
                let b: Value = serde_json::from_slice(&body_of(r)).unwrap();
                let mut k: Vec<&String> = b.as_object().unwrap().keys().collect();
                k.sort();
                assert_eq!(k, ["batch_id", "events"]);
            }
            other => panic!("unlisted request {other:?}"),
        }
    }
}

/// Against the real Worker: a burst capacity below the batch size and events
/// the edge refuses (older than it accepts) cost nothing else: the rest is
/// counted once, the refused events are quarantined on the machine, and the
/// edge records how many this agent holds back and its version.
#[test]
fn the_real_edge_gets_capacity_sized_parts_and_only_bad_events_are_held_back() {
    let stack = Stack::start();
    let team = stack.bootstrap("Acme", "owner@acme.test");
    stack.d1(&format!(
        "UPDATE teams SET rate_capacity = 3 WHERE id = '{}'",
        team.team_id
    ));
    let env = Env::new();
    write_session(&env.claude(), now_ms() - 3_600_000);
    // Far older than the edge accepts (MAX_PAST_MS).
    tally_e2e::fixtures::write_transcript(&env.claude(), now_ms() - 500 * 86_400_000);
    age_files(env.dir.path());
    env.ok(&[
        "install",
        "--server",
        &stack.base,
        "--token",
        &team.install_token,
        "--backfill",
        "2",
    ]);
    // As if enrolled with unlimited history (an older agent allowed it).
    let cfg_path = env.home().join("config.json");
    let mut cfg: Value = serde_json::from_slice(&std::fs::read(&cfg_path).unwrap()).unwrap();
    cfg["ship_since_ms"] = json!(0);
    std::fs::write(&cfg_path, cfg.to_string()).unwrap();
    let out = env.ok(&["run", "--once"]);
    let total = env.json(&["report", "daily", "--json"])["totals"]["requests"]
        .as_u64()
        .unwrap();
    let old = total - 2;
    assert!(old >= 3, "{total}");
    let st = env.json(&["status", "--json"]);
    assert_eq!(st["batch_events"], 3, "{st}");
    assert_eq!(st["outbox"]["pending_events"], 0, "{st}");
    assert_eq!(st["quarantine"]["events"], old, "{}", stderr(&out));
    assert!(
        st["quarantine"]["first_error"]
            .as_str()
            .unwrap()
            .contains("ts: more than"),
        "{st}"
    );
    let web = stack.sign_in(&team.signin_path);
    stack.eventually(
        "the good events aggregated",
        Duration::from_secs(60),
        || {
            (web.get_json("/api/overview")["totals_30d"]["requests"].as_u64() == Some(2))
                .then_some(())
        },
    );
    let agents = stack.d1("SELECT quarantined, agent_version FROM agent_tokens");
    assert_eq!(agents.len(), 1);
    assert_eq!(agents[0]["quarantined"], old);
    assert_eq!(agents[0]["agent_version"], env!("CARGO_PKG_VERSION"));
}

fn doctor_check<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {report}"))
}

/// `tally doctor` as a security self-check: permissions of every state file,
/// key storage, TLS, both modes, the version against the server's minimum and
/// the next batch by field names and counts — never its text.
#[test]
fn doctor_is_a_security_self_check_and_never_prints_content() {
    let server = fake_edge("full");
    let env = Env::new();
    write_session(&env.claude(), now_ms() - 300_000);
    age_files(&env.claude());
    install(&env, &server, &["--max-mode", "categorize_cloud"]);
    // Uploads refused: both events stay in the outbox as the next batch.
    server.set_responder(|req| {
        if req.path == "/v1/events" {
            Reply::json(503, json!({"error": "unavailable", "message": "later"}))
        } else {
            edge_reply(req, "full")
        }
    });
    let _ = env.run(&["run", "--once"]);
    let out = env.ok(&["doctor", "--json"]);
    let all = String::from_utf8_lossy(&out.stdout).to_string() + &stderr(&out);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], true, "{report}");
    let perms = doctor_check(&report, "file permissions");
    assert_eq!(perms["ok"], true, "{perms}");
    for f in ["config.json 0600", "index.bin 0600", ". 0700"] {
        assert!(perms["detail"].as_str().unwrap().contains(f), "{perms}");
    }
    assert!(doctor_check(&report, "tls")["detail"]
        .as_str()
        .unwrap()
        .contains("loopback"));
    assert_eq!(
        doctor_check(&report, "privacy mode")["detail"],
        "categorize_cloud in effect (team: full, this machine's ceiling: categorize_cloud)"
    );
    assert!(doctor_check(&report, "agent version")["detail"]
        .as_str()
        .unwrap()
        .contains("names no minimum"));
    let key = doctor_check(&report, "outbox key")["detail"]
        .as_str()
        .unwrap();
    assert!(
        key == "OS keychain" || key.starts_with("degraded: key file"),
        "{key}"
    );
    let next = doctor_check(&report, "next batch")["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(next.starts_with("2 events in 1 batches waiting"), "{next}");
    assert!(next.contains("id×2") && next.contains("prompt×"), "{next}");
    assert!(
        !next.contains("response") && !next.contains("tools"),
        "{next}"
    );
    // Field names and counts only: no prompt text, no path, no session id.
    for secret in [
        "refunds",
        "AKIA",
        "/home/alice",
        "aaaaaaaa-1111",
        "tly_agent_test",
    ] {
        assert!(!all.contains(secret), "doctor printed {secret}: {all}");
    }
    // A state file others can read fails the check and says how to fix it.
    use std::os::unix::fs::PermissionsExt;
    let cfg = env.home().join("config.json");
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = env.run(&["doctor"]);
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("FAIL file permissions") && text.contains("chmod go-rwx"),
        "{text}"
    );
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o600)).unwrap();
    // A server that requires a newer agent makes doctor fail; an older minimum passes.
    for (min, ok) in [("999.0.0", false), ("0.0.1", true)] {
        server.set_responder(move |req| {
            if req.path == "/v1/agent/config" {
                Reply::json(
                    200,
                    json!({"team_id": "t1", "privacy_mode": "full", "salt": SALT, "min_agent_version": min}),
                )
            } else {
                edge_reply(req, "full")
            }
        });
        let out = env.run(&["doctor", "--json"]);
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        let v = doctor_check(&report, "agent version");
        assert_eq!((v["ok"] == true, out.status.success()), (ok, ok), "{v}");
        assert!(v["detail"].as_str().unwrap().contains(min), "{v}");
    }
}

/// Without an enrolment doctor still checks the permissions of what exists.
#[test]
fn doctor_without_enrolment_fails_and_still_checks_permissions() {
    let env = Env::new();
    std::fs::create_dir_all(env.home()).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(env.home(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = env.run(&["doctor", "--json"]);
    assert!(!out.status.success());
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doctor_check(&report, "enrolment")["ok"], false);
    let perms = doctor_check(&report, "file permissions");
    assert_eq!(perms["ok"], false, "{perms}");
    assert!(
        perms["detail"].as_str().unwrap().contains("0755"),
        "{perms}"
    );
}

/// The edge, serving a team's upload interval and burst capacity on
/// `/v1/agent/config` as the real one does.
fn paced_edge(interval_s: u64, capacity: u64) -> FakeServer {
    FakeServer::start(move |req: &Recorded| {
        if req.path == "/v1/agent/config" {
            return Reply::json(
                200,
                json!({"team_id": "t1", "privacy_mode": "off", "salt": SALT,
                       "rate_capacity": capacity, "ship_interval_s": interval_s}),
            );
        }
        edge_reply(req, "off")
    })
}

/// One complete request (old enough to be settled the moment it is read).
fn request_line(n: u64, ts: i64) -> String {
    json!({"type": "assistant", "uuid": format!("u{n}"), "sessionId": "s-steady", "timestamp": rfc3339(ts + n as i64),
        "cwd": "/home/alice/payments", "requestId": format!("req_{n}"), "message": {"id": format!("msg_{n}"),
        "model": "claude-haiku-4-5-20251001", "usage": {"input_tokens": 10 + n, "output_tokens": 3}}})
    .to_string()
        + "\n"
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut f = std::fs::File::options()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

fn posts(server: &FakeServer) -> Vec<usize> {
    server
        .requests()
        .iter()
        .filter(|r| r.path == "/v1/events")
        .map(|r| {
            let v: Value = serde_json::from_slice(&body_of(r)).unwrap();
            v["events"].as_array().unwrap().len()
        })
        .collect()
}

/// SIGTERM, then the exit status.
fn stop(child: &mut std::process::Child) -> std::process::ExitStatus {
    // SAFETY: signalling a child the test spawned.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(Instant::now() < deadline, "agent did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the running agent has seen `n` requests ready to ship.
fn wait_ready(env: &Env, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while env.json(&["status", "--json"])["ready_to_ship"].as_u64() != Some(n) {
        assert!(
            Instant::now() < deadline,
            "agent never saw {n} requests ready"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A developer's steady stream of responses goes up once per interval (plus
/// the flush at the stop), not once per file change: at most
/// ceil(lifetime / interval) + 1 requests, every event exactly once.
#[test]
fn watch_mode_uploads_once_per_interval_for_a_steady_writer() {
    let interval = 8u64;
    let server = paced_edge(interval, 10_000);
    let env = Env::new();
    install(&env, &server, &[]);
    let dir = env.claude().join("projects/-home-alice-payments");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("s-steady.jsonl");
    let ts = now_ms() - 600_000;
    let started = Instant::now();
    let mut child = env
        .cmd(&["run"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let lines = 40u64;
    for n in 0..lines {
        append(&file, &request_line(n, ts));
        std::thread::sleep(Duration::from_millis(500));
    }
    // The stop reads what is left and flushes it.
    assert_eq!(stop(&mut child).code(), Some(0));
    let lifetime = started.elapsed().as_secs_f64();
    let sent = posts(&server);
    assert_eq!(sent.iter().sum::<usize>() as u64, lines, "{sent:?}");
    assert_eq!(
        accepted_batches(&server)
            .values()
            .map(|v| v.len())
            .sum::<usize>() as u64,
        lines
    );
    // The first upload, one per interval after a first wait of a random part
    // of the interval (agents started together do not stay in lockstep),
    // and the stop's.
    let bound = (lifetime / interval as f64).ceil() as usize + 2;
    assert!(
        sent.len() <= bound,
        "{} uploads in {lifetime:.1} s at one per {interval} s: {sent:?}",
        sent.len()
    );
    let st = env.json(&["status", "--json"]);
    assert_eq!(st["ship_interval_s"], interval);
    assert_eq!(st["events_shipped"], lines);
}

/// With an hour's interval, a full batch (the team's burst capacity) leaves
/// at once; smaller arrivals wait, and the stop flushes them in one request.
#[test]
fn a_full_batch_ships_at_once_and_the_rest_waits_for_the_stop() {
    let server = paced_edge(3600, 5);
    let env = Env::new();
    install(&env, &server, &[]);
    let dir = env.claude().join("projects/-home-alice-payments");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("s-steady.jsonl");
    let ts = now_ms() - 600_000;
    let mut child = env
        .cmd(&["run"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while env.json(&["status", "--json"])["last_sync_ms"].is_null() {
        assert!(Instant::now() < deadline, "no first cycle");
        std::thread::sleep(Duration::from_millis(100));
    }
    let ten: String = (0..10).map(|n| request_line(n, ts)).collect();
    append(&file, &ten);
    let deadline = Instant::now() + Duration::from_secs(30);
    while posts(&server).iter().sum::<usize>() < 10 {
        assert!(
            Instant::now() < deadline,
            "two full batches were not shipped at once"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(posts(&server), vec![5, 5]);
    // Three arrivals, each seen by its own cycle: none of them fills a
    // batch, so none is queued or sent yet.
    for n in 10..13 {
        append(&file, &request_line(n, ts));
        wait_ready(&env, n - 9);
    }
    let st = env.json(&["status", "--json"]);
    assert_eq!(st["ship_interval_s"], 3600);
    assert_eq!(st["outbox"]["pending_events"], 0);
    assert_eq!(posts(&server), vec![5, 5]);
    let text = String::from_utf8(env.ok(&["status"]).stdout).unwrap();
    assert!(
        text.contains("uploads:         every 3600 s, at once when a batch of 5 events is full or the agent stops; 3 events ready; next in "),
        "{text}"
    );
    assert_eq!(stop(&mut child).code(), Some(0));
    assert_eq!(posts(&server), vec![5, 5, 3]);
}

/// An admin's upload interval (Settings, audited) is what `/v1/agent/config`
/// serves and what a real agent then follows; out-of-range values change nothing.
#[test]
fn the_settings_upload_interval_reaches_the_agent() {
    let stack = Stack::start();
    let team = stack.bootstrap("Acme", "owner@acme.test");
    let owner = stack.sign_in(&team.signin_path);
    let env = Env::new();
    env.ok(&[
        "install",
        "--server",
        &stack.base,
        "--token",
        &team.install_token,
        "--backfill",
        "1",
    ]);
    let enrolled: Value =
        serde_json::from_slice(&std::fs::read(env.home().join("config.json")).unwrap()).unwrap();
    let token = enrolled["agent_token"].as_str().unwrap().to_string();
    let config = || -> Value {
        ureq::get(&stack.url("/v1/agent/config"))
            .set("Authorization", &format!("Bearer {token}"))
            .call()
            .unwrap()
            .into_json()
            .unwrap()
    };
    assert_eq!(config()["ship_interval_s"], 300);
    let save = |seconds: &str| {
        let r = owner
            .agent
            .post(&stack.url("/settings/ship-interval"))
            .set("Cookie", &owner.cookie)
            .set("Content-Type", "application/x-www-form-urlencoded")
            .send_string(&format!(
                "csrf={}&seconds={seconds}",
                tally_e2e::form_escape(&owner.csrf)
            ))
            .unwrap();
        assert_eq!(r.status(), 303);
        r.header("Location").unwrap().to_string()
    };
    assert_eq!(save("45"), "/settings?saved=upload+interval");
    assert_eq!(
        save("9"),
        "/settings?error=The+upload+interval+must+be+10+to+86400+seconds"
    );
    assert_eq!(
        save("86401"),
        "/settings?error=The+upload+interval+must+be+10+to+86400+seconds"
    );
    assert_eq!(config()["ship_interval_s"], 45);
    assert_eq!(
        stack.audit_details(&team.team_id, "ship_interval.change"),
        vec![json!({"from": 300, "to": 45})]
    );
    let page = owner.get("/settings").unwrap().into_string().unwrap();
    assert!(
        page.contains(r#"name="seconds" min="10" max="86400" value="45""#),
        "{page}"
    );
    env.ok(&["run", "--once"]);
    assert_eq!(env.json(&["status", "--json"])["ship_interval_s"], 45);
}

/// A legacy Gemini CLI chat (one JSON object, pretty-printed as the CLI writes it).
fn gemini_chat(ts: i64, messages: &[Value]) -> String {
    serde_json::to_string_pretty(&json!({
        "sessionId": "5c9e1a2b-0d4f-4e6a-9b8c-7d6e5f4a3b2c",
        "projectHash": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "startTime": rfc3339(ts),
        "lastUpdated": rfc3339(ts + 60_000),
        "messages": messages,
    }))
    .unwrap()
}

fn gemini_msg(id: &str, ts: i64, model: &str, tokens: Option<Value>) -> Value {
    let mut m = json!({"id": id, "timestamp": rfc3339(ts), "type": "gemini", "content": "ok",
                       "thoughts": [], "model": model});
    if let Some(t) = tokens {
        m["tokens"] = t;
    }
    m
}

fn opencode_msg(
    id: &str,
    model: &str,
    provider: &str,
    ts: i64,
    tokens: Value,
    done: bool,
) -> String {
    let mut time = json!({"created": ts});
    if done {
        time["completed"] = json!(ts + 4_000);
    }
    json!({"id": id, "role": "assistant", "sessionID": "ses_7f3a9c1e2ffeQ1w2E3r4T5y6", "parentID": "msg_0",
           "modelID": model, "providerID": provider, "mode": "build",
           "path": {"cwd": "/home/alice/shop", "root": "/home/alice/shop"}, "cost": 0,
           "tokens": tokens, "time": time})
    .to_string()
}

fn events_of(server: &FakeServer, agent: &str) -> Vec<Value> {
    let mut v: Vec<Value> = accepted_batches(server)
        .into_values()
        .flatten()
        .filter(|e| e["agent"] == agent)
        .collect();
    v.sort_by_key(|e| e["ts"].as_i64().unwrap());
    v
}

fn tok(e: &Value) -> (u64, u64, u64, u64, u64) {
    let t = &e["tokens"];
    let n = |k: &str| t[k].as_u64().unwrap();
    (
        n("input"),
        n("cache_read"),
        n("cache_write_5m"),
        n("output"),
        e["cost_pico_usd"].as_u64().unwrap(),
    )
}

#[test]
fn gemini_and_opencode_sessions_ship_once_with_exact_tokens_and_report_by_agent() {
    let server = fake_edge("off");
    let env = Env::new();
    let ts = now_ms() - 300_000;
    let project = env
        .gemini()
        .join("tmp/9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
    let chats = project.join("chats");
    std::fs::create_dir_all(&chats).unwrap();
    let user =
        json!({"id": "u1", "timestamp": rfc3339(ts), "type": "user", "content": "fix the build"});
    // input includes cached; thoughts are billed as output.
    let g1 = gemini_msg(
        "g1",
        ts + 1_000,
        "gemini-2.5-pro",
        Some(
            json!({"input": 12_000, "output": 300, "cached": 8_000, "thoughts": 200, "tool": 0, "total": 12_500}),
        ),
    );
    let chat = chats.join("session-2026-11-30T01-00-5c9e1a2b.json");
    std::fs::write(&chat, gemini_chat(ts, &[user.clone(), g1.clone()])).unwrap();
    // The newer JSONL layout: header, a turn written twice (the second with
    // its final tokens), a bad line, and a last line still being written.
    let jsonl = [
        json!({"sessionId": "0d1e2f3a-4b5c-4d6e-8f7a-9b0c1d2e3f4a", "projectHash": "x", "startTime": rfc3339(ts), "lastUpdated": rfc3339(ts), "kind": "main"}).to_string(),
        gemini_msg("j1", ts + 2_000, "gemini-2.5-flash", Some(json!({"input": 1000, "output": 0, "cached": 0, "thoughts": 0, "tool": 0, "total": 1000}))).to_string(),
        "{\"$set\": {\"lastUpdated\"".to_string() + ": 1",
        gemini_msg("j1", ts + 2_000, "gemini-2.5-flash", Some(json!({"input": 1000, "output": 100, "cached": 0, "thoughts": 50, "tool": 20, "total": 1170}))).to_string(),
    ]
    .join("\n")
        + "\n{\"id\":\"j2\",\"type\":\"gemini\",\"tokens\":{\"input\":5";
    std::fs::write(chats.join("session-2026-11-30T01-01-0d1e2f3a.jsonl"), jsonl).unwrap();
    // OpenCode: a finished answer, a user message, a broken file.
    let oc = env
        .opencode()
        .join("storage/message/ses_7f3a9c1e2ffeQ1w2E3r4T5y6");
    std::fs::create_dir_all(&oc).unwrap();
    std::fs::write(oc.join("msg_1.json"), opencode_msg("msg_1", "claude-sonnet-4-5", "anthropic", ts + 3_000,
        json!({"input": 12, "output": 340, "reasoning": 60, "cache": {"read": 18_000, "write": 2_500}}), true)).unwrap();
    std::fs::write(oc.join("msg_0.json"), json!({"id": "msg_0", "role": "user", "sessionID": "ses_7f3a9c1e2ffeQ1w2E3r4T5y6", "time": {"created": ts}}).to_string()).unwrap();
    std::fs::write(
        oc.join("msg_9.json"),
        "{\"id\": \"msg_9\", \"role\": \"assis",
    )
    .unwrap();
    age_files(env.dir.path());
    // Still streaming (written just now, no time.completed): held back.
    let tokens2 = |out: u64, reasoning: u64| json!({"input": 5_000, "output": out, "reasoning": reasoning, "cache": {"read": 1_000, "write": 0}});
    std::fs::write(
        oc.join("msg_2.json"),
        opencode_msg(
            "msg_2",
            "gpt-5",
            "openai",
            ts + 4_000,
            tokens2(10, 0),
            false,
        ),
    )
    .unwrap();

    install(&env, &server, &[]);
    env.ok(&["run", "--once"]);
    // g1: 4,000×1.25 + 8,000×0.125 + 500×10 per MTok = $0.011.
    // j1: 1,020×0.3 + 150×2.5 = $0.000681 (tool-use prompt is input).
    let g = events_of(&server, "gemini_cli");
    assert_eq!(
        g.iter().map(tok).collect::<Vec<_>>(),
        vec![
            (4_000, 8_000, 0, 500, 11_000_000_000),
            (1_020, 0, 0, 150, 681_000_000),
        ]
    );
    assert_eq!(g[0]["model"], "gemini-2.5-pro");
    // Off mode: the project (the hash folder, no .project_root) leaves keyed-hashed.
    assert_eq!(g[0]["project"], g[1]["project"]);
    assert!(
        !g[0]["project"].as_str().unwrap().contains("9f86d0"),
        "{}",
        g[0]
    );
    // msg_1: 12×3 + 400×15 + 18,000×0.3 + 2,500×3.75 = $0.020811; msg_2 is still streaming.
    let o = events_of(&server, "opencode");
    assert_eq!(
        o.iter().map(tok).collect::<Vec<_>>(),
        vec![(12, 18_000, 2_500, 400, 20_811_000_000)]
    );

    // The chat is rewritten whole with a turn that has no tokens yet and a
    // turn above 200k prompt tokens; msg_2 completes.
    let g2 = gemini_msg(
        "g2",
        ts + 5_000,
        "gemini-2.5-pro",
        Some(
            json!({"input": 250_000, "output": 1_000, "cached": 50_000, "thoughts": 0, "tool": 0, "total": 251_000}),
        ),
    );
    let pending = gemini_msg("g3", ts + 6_000, "gemini-2.5-pro", None);
    std::fs::write(&chat, gemini_chat(ts, &[user, g1, g2, pending])).unwrap();
    std::fs::write(
        oc.join("msg_2.json"),
        opencode_msg(
            "msg_2",
            "gpt-5",
            "openai",
            ts + 4_000,
            tokens2(800, 200),
            true,
        ),
    )
    .unwrap();
    age_files(env.dir.path());
    env.ok(&["run", "--once"]);
    // g2 is billed whole at the long-context rates: 200,000×2.5 + 50,000×0.25 + 1,000×15 = $0.5275.
    let g = events_of(&server, "gemini_cli");
    assert_eq!(g.len(), 3, "g1 is not sent again");
    assert_eq!(tok(&g[2]), (200_000, 50_000, 0, 1_000, 527_500_000_000));
    // msg_2 with its final tokens: 5,000×1.25 + 1,000×0.125 + 1,000×10 = $0.016375.
    let o = events_of(&server, "opencode");
    assert_eq!(o.len(), 2);
    assert_eq!(tok(&o[1]), (5_000, 1_000, 0, 1_000, 16_375_000_000));

    let r = env.json(&["report", "model", "--json", "--agent", "gemini_cli"]);
    assert_eq!(
        r["totals"],
        json!({"input_tokens": 205_020, "output_tokens": 1_650, "cache_write_5m_tokens": 0, "cache_write_1h_tokens": 0,
               "cache_read_tokens": 58_000, "requests": 3, "cost_usd": 0.539181})
    );
    assert_eq!(r["rows"].as_array().unwrap().len(), 2);
    let r = env.json(&["report", "model", "--json", "--agent", "opencode"]);
    assert_eq!(
        r["totals"],
        json!({"input_tokens": 5_012, "output_tokens": 1_400, "cache_write_5m_tokens": 2_500, "cache_write_1h_tokens": 0,
               "cache_read_tokens": 19_000, "requests": 2, "cost_usd": 0.037186})
    );
    let r = env.json(&["report", "model", "--json", "--agent", "claude_code"]);
    assert_eq!(r["totals"]["requests"], 0);
    let all = env.json(&["report", "model", "--json"]);
    assert_eq!(all["totals"]["requests"], 5);
    // The broken OpenCode file and the bad JSONL line are counted as malformed.
    let st = env.json(&["status", "--json"]);
    assert_eq!(st["index"]["malformed_lines"], 2);
}

/// A fake edge whose config names `source_path`, otherwise as `edge_reply`.
fn edge_with_path(source_path: Value) -> impl Fn(&Recorded) -> Reply + Send + Sync + 'static {
    move |req: &Recorded| match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/v1/agent/config") => Reply::json(
            200,
            json!({"team_id": "t1", "privacy_mode": "off", "salt": SALT, "source_path": source_path}),
        ),
        _ => edge_reply(req, "off"),
    }
}

#[test]
fn the_agent_skips_what_the_otlp_export_counts_in_both_directions() {
    let env = Env::new();
    let ts = now_ms() - 600_000;
    // req_1 at ts+1000, req_2 at ts+5000.
    write_session(&env.claude(), ts);
    let s1 = ts + 3000;
    let server = FakeServer::start(edge_with_path(json!({"path": "otlp", "since_ms": s1})));
    install(&env, &server, &[]);
    env.ok(&["run", "--once"]);
    let shipped = |server: &FakeServer| -> Vec<i64> {
        let mut ts: Vec<i64> = accepted_batches(server)
            .values()
            .flatten()
            .map(|e| e["ts"].as_i64().unwrap())
            .collect();
        ts.sort();
        ts
    };
    // Before the switch the agent counts; after it the export does.
    assert_eq!(shipped(&server), vec![ts + 1000]);
    // Back to the agent at s2: req_2 (between the switches) stays the
    // export's, and a request after s2 ships.
    let s2 = ts + 8000;
    server.set_responder(edge_with_path(json!({"path": "agent", "since_ms": s2})));
    let p = env.claude().join("projects/-home-alice-payments");
    let line = json!({"type": "assistant", "uuid": "n1", "sessionId": "s-new", "timestamp": rfc3339(ts + 10_000),
        "cwd": "/home/alice/payments", "requestId": "req_n", "message": {"id": "msg_n", "model": "claude-haiku-4-5-20251001",
        "usage": {"input_tokens": 7, "output_tokens": 3}}});
    std::fs::write(p.join("s-new.jsonl"), line.to_string() + "\n").unwrap();
    env.ok(&["run", "--once"]);
    assert_eq!(shipped(&server), vec![ts + 1000, ts + 10_000]);
    // Each shipped once: no batch carried an event twice.
    let total: usize = accepted_batches(&server).values().map(|v| v.len()).sum();
    assert_eq!(total, 2);
}
