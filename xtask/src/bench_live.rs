//! `cargo xtask bench-live --devs N --minutes M [--ship-interval S] [--mix faithful|random] [--pace MIN-MAX]`: a team's
//! rhythm on the local stack. N real agents (`tally install` + `tally run`,
//! each with its own TALLY_HOME and CLAUDE_CONFIG_DIR) watch N writers that
//! append Claude Code transcripts in real time (a request every 2–6 s, or
//! `--pace MIN-MAX` seconds, each response streamed as three lines); after M minutes the agents get SIGTERM
//! and, once the files are idle, one `tally run --once` each ships the last
//! responses a stop leaves for the next start. Needs the Worker built
//! (`cargo xtask build-worker`).
//! Prints what one event costs the server (D1 rows written as D1's own meta
//! reports them in the consumer's log lines, queue messages, ingest
//! requests), freshness (line written → visible in D1) and whether the
//! server's per-developer, per-model totals equal each agent's `tally report`.
//! Rows are given for the whole run and apart for the running agents'
//! interval uploads (steady state), the stop's flush and the `--once` flush.
//!
//! `--mix faithful` (the default) writes as Claude Code does (`Mix::Faithful`);
//! `--mix random` is the pessimistic mix first measured (`Mix::Random`).
//!
//! `--ship-interval S` is set on the Settings page (10 s or more); `0` sets
//! `TALLY_SHIP_INTERVAL_S=0` in the agents instead, which uploads after every
//! change as agents did before the interval existed (the "before" figures).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tally_core::money::Usd;
use tally_e2e::fixtures::rfc3339;
use tally_e2e::{form_escape, now_ms, tally_bin, Stack};

use crate::Result;

struct Opts {
    devs: usize,
    minutes: f64,
    ship_interval: u64,
    mix: Mix,
    /// Milliseconds between one developer's requests: `[min, max)`.
    pace_ms: (u64, u64),
}

fn parse(args: &[String]) -> Result<Opts> {
    let mut o = Opts {
        devs: 10,
        minutes: 5.0,
        ship_interval: 300,
        mix: Mix::Faithful,
        pace_ms: (2000, 6000),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--mix" {
            o.mix = match it.next().map(String::as_str) {
                Some("faithful") => Mix::Faithful,
                Some("random") => Mix::Random,
                _ => return Err("--mix needs faithful or random".into()),
            };
            continue;
        }
        if a == "--pace" {
            // Seconds between requests, "MIN-MAX": 2-6 is an agent at work,
            // 60-180 a developer who asks now and then.
            o.pace_ms = it
                .next()
                .and_then(|v| v.split_once('-'))
                .and_then(|(a, b)| Some((a.parse::<f64>().ok()?, b.parse::<f64>().ok()?)))
                .filter(|(a, b)| *a > 0.0 && b > a)
                .map(|(a, b)| ((a * 1000.0) as u64, (b * 1000.0) as u64))
                .ok_or("--pace needs MIN-MAX seconds, MIN > 0 and MAX > MIN")?;
            continue;
        }
        let mut num = |what: &str| -> Result<f64> {
            it.next()
                .and_then(|v| v.parse::<f64>().ok())
                .filter(|v| *v >= 0.0)
                .ok_or_else(|| format!("{what} needs a number"))
        };
        match a.as_str() {
            "--devs" => o.devs = num("--devs")?.max(1.0) as usize,
            "--minutes" => o.minutes = num("--minutes")?,
            "--ship-interval" => o.ship_interval = num("--ship-interval")? as u64,
            other => return Err(format!("unknown bench-live option {other}")),
        }
    }
    if o.ship_interval != 0 && !(10..=86_400).contains(&o.ship_interval) {
        return Err("--ship-interval must be 0 (upload after every change) or 10..86400".into());
    }
    Ok(o)
}

/// A small deterministic generator: the same run every time.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

const SONNET: &str = "claude-sonnet-4-5-20250929";
const OPUS: &str = "claude-opus-4-5-20251101";
const HAIKU: &str = "claude-haiku-4-5-20251001";
const MODELS: [&str; 3] = [SONNET, OPUS, HAIKU];

/// How the writers pick a request's session, project and model.
#[derive(Clone, Copy, PartialEq)]
enum Mix {
    /// As Claude Code writes: one session at a time in one project (its
    /// cwd), one main model per developer (Sonnet, or Opus for every third
    /// developer), about one request in five a Haiku side request, and a new
    /// session every 60–240 requests (4–16 min), in one of three projects.
    Faithful,
    /// The pessimistic mix: every request picks one of three models at
    /// random and alternates between two projects, a new session every 20
    /// requests, all in one transcript per developer (as first measured).
    Random,
}

impl Mix {
    fn name(self) -> &'static str {
        match self {
            Mix::Faithful => "faithful",
            Mix::Random => "random",
        }
    }
}

/// One developer's writer: where the next request goes.
struct Writer {
    dev: usize,
    mix: Mix,
    rng: Lcg,
    n: u64,
    session: u64,
    project: u64,
    left: u64,
}

impl Writer {
    fn new(dev: usize, mix: Mix) -> Self {
        Writer {
            dev,
            mix,
            rng: Lcg(dev as u64 + 1),
            n: 0,
            session: 0,
            project: 0,
            left: 0,
        }
    }

    fn main_model(&self) -> &'static str {
        if self.dev % 3 == 2 {
            OPUS
        } else {
            SONNET
        }
    }

    /// The transcript the next request goes to (Claude Code keeps one file
    /// per session under the project's directory), its session, cwd and model.
    fn next(&mut self, projects: &Path) -> (PathBuf, String, String, &'static str) {
        let d = self.dev;
        let (session, project, model) = match self.mix {
            Mix::Random => (self.n / 20, self.n % 2, MODELS[self.rng.next(3) as usize]),
            Mix::Faithful => {
                if self.left == 0 {
                    self.session += 1;
                    self.project = self.rng.next(3);
                    self.left = 60 + self.rng.next(181);
                }
                self.left -= 1;
                let model = if self.rng.next(5) == 0 {
                    HAIKU
                } else {
                    self.main_model()
                };
                (self.session, self.project, model)
            }
        };
        self.n += 1;
        let session = format!("bench-{d:03}-{session:04}");
        let file = match self.mix {
            // Today's random mix as it was measured: one transcript per
            // developer, whatever the session.
            Mix::Random => projects
                .join(format!("-home-dev{d}"))
                .join(format!("bench-{d:03}.jsonl")),
            Mix::Faithful => projects
                .join(format!("-home-dev{d}-project{project}"))
                .join(format!("{session}.jsonl")),
        };
        (
            file,
            session,
            format!("/home/dev{d}/project{project}"),
            model,
        )
    }
}

/// Appends one request as Claude Code writes it: the prompt, then the
/// response streamed as three lines of one message (usage growing).
fn write_request(w: &mut Writer, projects: &Path) {
    use std::io::Write;
    let dev = w.dev;
    let n = w.n;
    let (file, session, cwd, model) = w.next(projects);
    let rng = &mut w.rng;
    let msg = format!("msg_{dev:03}_{n:06}");
    let (input, cache_read, cache_write, out_total) = if model == HAIKU && w.mix == Mix::Faithful {
        // A side request: a short prompt, no conversation cache.
        (200 + rng.next(1500), 0, 0, 5 + rng.next(60))
    } else {
        (
            50 + rng.next(5000),
            rng.next(80_000),
            rng.next(4000),
            20 + rng.next(2000),
        )
    };
    let mut f = std::fs::File::options()
        .create(true)
        .append(true)
        .open(&file)
        .expect("transcript");
    let user = json!({"type": "user", "uuid": format!("u-{msg}"), "sessionId": session, "timestamp": rfc3339(now_ms()),
        "cwd": cwd, "message": {"role": "user", "content": "go on"}});
    f.write_all(format!("{user}\n").as_bytes()).unwrap();
    for (i, part) in [1u64, 2, 3].iter().enumerate() {
        std::thread::sleep(Duration::from_millis(150));
        let line = json!({"type": "assistant", "uuid": format!("a-{msg}-{i}"), "sessionId": session,
            "timestamp": rfc3339(now_ms()), "cwd": cwd, "version": "2.0.30",
            "requestId": format!("req_{dev:03}_{n:06}"), "isSidechain": false, "userType": "external",
            "message": {"id": msg, "type": "message", "role": "assistant", "model": model,
                "content": [{"type": "text", "text": "ok"}],
                "usage": {"input_tokens": input, "output_tokens": out_total * part / 3,
                          "cache_creation_input_tokens": cache_write, "cache_read_input_tokens": cache_read}}});
        f.write_all(format!("{line}\n").as_bytes()).unwrap();
    }
}

/// When D1 was read and the requests it held per developer.
type Poll = (Instant, BTreeMap<String, u64>);

struct Dev {
    home: PathBuf,
    claude: PathBuf,
    developer_id: String,
    child: Option<Child>,
}

impl Dev {
    fn cmd(&self, dir: &Path, args: &[&str]) -> Command {
        let mut c = Command::new(tally_bin());
        c.args(args)
            .env("TALLY_HOME", &self.home)
            .env("CLAUDE_CONFIG_DIR", &self.claude)
            .env("CODEX_HOME", dir.join("no-codex"))
            .env("TZ", "UTC");
        c
    }
}

fn ok(mut c: Command) -> Result<Vec<u8>> {
    let out = c.output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "{c:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(out.stdout)
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

pub fn bench_live(args: &[String]) -> Result<()> {
    let o = parse(args)?;
    eprintln!(
        "bench-live: {} developers for {} min, ship interval {}",
        o.devs,
        o.minutes,
        if o.ship_interval == 0 {
            "none (TALLY_SHIP_INTERVAL_S=0: every change)".to_string()
        } else {
            format!("{} s (Settings)", o.ship_interval)
        }
    );
    let stack = Stack::start();
    let team = stack.bootstrap("Bench", "owner@bench.test");
    let owner = stack.sign_in(&team.signin_path);
    if o.ship_interval != 0 {
        let r = owner
            .agent
            .post(&stack.url("/settings/ship-interval"))
            .set("Cookie", &owner.cookie)
            .set("Content-Type", "application/x-www-form-urlencoded")
            .send_string(&format!(
                "csrf={}&seconds={}",
                form_escape(&owner.csrf),
                o.ship_interval
            ))
            .map_err(|e| format!("setting the interval: {e}"))?;
        let to = r.header("Location").unwrap_or_default();
        if !to.contains("saved") {
            return Err(format!("setting the interval: {to}"));
        }
    }
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut devs = Vec::new();
    for d in 0..o.devs {
        let token = if d == 0 {
            team.install_token.clone()
        } else {
            let v: Value = owner
                .post_json(
                    "/api/install-tokens",
                    json!({"developer_name": format!("dev{d}")}),
                )
                .map_err(|e| format!("install token: {e}"))?
                .into_json()
                .map_err(|e| e.to_string())?;
            v["install_token"].as_str().unwrap_or_default().to_string()
        };
        let mut dev = Dev {
            home: dir.path().join(format!("dev{d}/tally")),
            claude: dir.path().join(format!("dev{d}/claude")),
            developer_id: String::new(),
            child: None,
        };
        for p in ["".to_string()]
            .into_iter()
            .chain((0..3).map(|p| format!("-project{p}")))
        {
            std::fs::create_dir_all(dev.claude.join(format!("projects/-home-dev{d}{p}")))
                .map_err(|e| e.to_string())?;
        }
        ok(dev.cmd(
            dir.path(),
            &[
                "install",
                "--server",
                &stack.base,
                "--token",
                &token,
                "--backfill",
                "1",
            ],
        ))?;
        let cfg: Value = serde_json::from_slice(
            &std::fs::read(dev.home.join("config.json")).map_err(|e| e.to_string())?,
        )
        .map_err(|e| e.to_string())?;
        dev.developer_id = cfg["developer_id"].as_str().unwrap_or_default().into();
        let mut run = dev.cmd(dir.path(), &["run"]);
        if o.ship_interval == 0 {
            run.env("TALLY_SHIP_INTERVAL_S", "0");
        }
        run.stdout(Stdio::null()).stderr(Stdio::null());
        dev.child = Some(run.spawn().map_err(|e| e.to_string())?);
        devs.push(dev);
    }
    // Writers: (developer index, time the response's last line was written).
    let written: Arc<Mutex<Vec<(usize, Instant)>>> = Arc::default();
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(o.minutes * 60.0);
    let writers: Vec<_> = devs
        .iter()
        .enumerate()
        .map(|(d, dev)| {
            let projects = dev.claude.join("projects");
            let written = written.clone();
            let mix = o.mix;
            let (pace_min, pace_max) = o.pace_ms;
            std::thread::spawn(move || {
                let mut w = Writer::new(d, mix);
                std::thread::sleep(Duration::from_millis(w.rng.next(3000)));
                while Instant::now() < end {
                    write_request(&mut w, &projects);
                    written.lock().unwrap().push((d, Instant::now()));
                    std::thread::sleep(Duration::from_millis(
                        pace_min + w.rng.next(pace_max - pace_min),
                    ));
                }
            })
        })
        .collect();
    // What D1 shows, per developer, over time.
    let seen: Arc<Mutex<Vec<Poll>>> = Arc::default();
    let polling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let stopped_at: Mutex<Option<Instant>> = Mutex::new(None);
    // Where the consumer's log stood at the stop and before the `--once`
    // step: the three phases' rows are read from these stretches of it.
    let log_path = stack.dir.path().join("wrangler.log");
    let log_len = || std::fs::metadata(&log_path).map(|m| m.len()).unwrap_or(0) as usize;
    let marks: Mutex<(usize, usize)> = Mutex::new((0, 0));
    let count_sql =
        "SELECT developer_id, CAST(SUM(requests) AS TEXT) AS n FROM usage_q GROUP BY developer_id";
    let poll = |stack: &Stack| -> BTreeMap<String, u64> {
        stack
            .d1(count_sql)
            .iter()
            .map(|r| {
                (
                    r["developer_id"].as_str().unwrap_or_default().to_string(),
                    r["n"].as_str().and_then(|n| n.parse().ok()).unwrap_or(0),
                )
            })
            .collect()
    };
    std::thread::scope(|s| {
        s.spawn(|| {
            while polling.load(std::sync::atomic::Ordering::Relaxed) {
                let at = Instant::now();
                let counts = poll(&stack);
                seen.lock().unwrap().push((at, counts));
                std::thread::sleep(Duration::from_millis(500));
            }
        });
        for w in writers {
            let _ = w.join();
        }
        eprintln!(
            "bench-live: writers done ({} requests); stopping the agents",
            written.lock().unwrap().len()
        );
        let stop_mark = log_len();
        for dev in &mut devs {
            if let Some(c) = &dev.child {
                // SAFETY: signalling a child this process spawned (SIGTERM,
                // what `service stop` sends).
                unsafe {
                    libc::kill(c.id() as i32, libc::SIGTERM);
                }
            }
        }
        for dev in &mut devs {
            if let Some(mut c) = dev.child.take() {
                let _ = c.wait();
            }
        }
        *stopped_at.lock().unwrap() = Some(Instant::now());
        // The stop's uploads applied: the markers stop changing.
        let mut last = (u64::MAX, 0);
        let settle = Instant::now() + Duration::from_secs(60);
        while Instant::now() < settle && last.1 < 4 {
            std::thread::sleep(Duration::from_secs(1));
            let n = stack.d1("SELECT COUNT(*) AS n FROM batches")[0]["n"]
                .as_u64()
                .unwrap_or(0);
            last = if n == last.0 { (n, last.1 + 1) } else { (n, 0) };
        }
        *marks.lock().unwrap() = (stop_mark, log_len());
        // A stop ships what is settled; each file's last response may still
        // be streaming as far as the agent can tell, and waits for the next
        // start. That start, once the files are idle: one `tally run --once`
        // per agent, as after a reboot.
        let idle = std::time::SystemTime::now() - Duration::from_secs(600);
        for dev in &devs {
            for f in std::fs::read_dir(dev.claude.join("projects"))
                .into_iter()
                .flatten()
                .flatten()
                .flat_map(|d| std::fs::read_dir(d.path()).into_iter().flatten().flatten())
            {
                if let Ok(file) = std::fs::File::options().append(true).open(f.path()) {
                    let _ = file.set_modified(idle);
                }
            }
            let mut once = dev.cmd(dir.path(), &["run", "--once"]);
            once.stdout(Stdio::null()).stderr(Stdio::null());
            let _ = once.status();
        }
        let total = written.lock().unwrap().len() as u64;
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            let last = seen
                .lock()
                .unwrap()
                .last()
                .map(|(_, c)| c.values().sum::<u64>());
            if last == Some(total) {
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        polling.store(false, std::sync::atomic::Ordering::Relaxed);
    });
    let written = written.lock().unwrap().clone();
    let seen = seen.lock().unwrap().clone();
    // Freshness: a developer's requests reach D1 in order, so its k-th
    // request is visible at the first poll that counts k of them. Only what
    // the running agents shipped counts (not the final responses a stop
    // leaves for the next start).
    let stopped_at = stopped_at.lock().unwrap().unwrap_or_else(Instant::now);
    let seen: Vec<Poll> = seen.into_iter().filter(|(t, _)| *t <= stopped_at).collect();
    let mut fresh = Vec::new();
    let mut per_dev: Vec<u64> = vec![0; devs.len()];
    for (d, at) in &written {
        per_dev[*d] += 1;
        let k = per_dev[*d];
        let id = &devs[*d].developer_id;
        if let Some((t, _)) = seen
            .iter()
            .find(|(t, c)| *t >= *at && c.get(id).copied().unwrap_or(0) >= k)
        {
            fresh.push(t.duration_since(*at).as_secs_f64());
        }
    }
    fresh.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let log = std::fs::read_to_string(stack.dir.path().join("wrangler.log")).unwrap_or_default();
    let (stop_mark, once_mark) = *marks.lock().unwrap();
    // Cut at line starts (the marks may fall inside a line being written).
    let cut = |at: usize| {
        let at = at.min(log.len());
        log.as_bytes()[..at]
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |i| i + 1)
    };
    let (stop_mark, once_mark) = (cut(stop_mark), cut(once_mark));
    let phases = [
        ("steady state (interval)", consumer_log(&log[..stop_mark])),
        (
            "stop flush (SIGTERM)",
            consumer_log(&log[stop_mark..once_mark]),
        ),
        ("restart flush (--once)", consumer_log(&log[once_mark..])),
    ];
    let whole = consumer_log(&log);
    let (rows, messages) = (whole.rows, whole.messages);
    let b = stack.d1("SELECT COUNT(*) AS parts, COUNT(DISTINCT batch_id) AS batches, SUM(events) AS events FROM batches");
    let requests = b[0]["batches"].as_u64().unwrap_or(0);
    let events = b[0]["events"].as_u64().unwrap_or(0);
    // Exact totals: each agent's local report against the server, per model.
    let server = stack.d1("SELECT developer_id, model, CAST(SUM(requests) AS TEXT) AS requests, CAST(SUM(input_tokens) AS TEXT) AS input, CAST(SUM(output_tokens) AS TEXT) AS output, CAST(SUM(cache_read_tokens) AS TEXT) AS cache_read, CAST(SUM(cost_micro_usd) AS TEXT) AS micro, CAST(SUM(cost_pico_usd) AS TEXT) AS pico FROM usage_q GROUP BY developer_id, model");
    let num = |v: &Value| -> u128 { v.as_str().and_then(|s| s.parse().ok()).unwrap_or(0) };
    let mut mismatches = Vec::new();
    let mut server_cost = Usd::ZERO;
    for dev in &devs {
        let rep: Value = serde_json::from_slice(&ok(dev.cmd(
            dir.path(),
            &["report", "model", "--json", "--timezone", "UTC"],
        ))?)
        .map_err(|e| e.to_string())?;
        let rows_for: Vec<&Value> = server
            .iter()
            .filter(|r| r["developer_id"] == dev.developer_id.as_str())
            .collect();
        let local = rep["rows"].as_array().cloned().unwrap_or_default();
        if local.len() != rows_for.len() {
            mismatches.push(format!(
                "{}: {} models locally, {} on the server",
                dev.developer_id,
                local.len(),
                rows_for.len()
            ));
        }
        for l in &local {
            let model = l["model"].as_str().unwrap_or_default();
            let Some(s) = rows_for.iter().find(|r| r["model"] == model) else {
                mismatches.push(format!(
                    "{}: {model} missing on the server",
                    dev.developer_id
                ));
                continue;
            };
            let cost = Usd::from_pico(num(&s["micro"]) * 1_000_000 + num(&s["pico"]));
            server_cost += cost;
            let local_micro = (l["cost_usd"].as_f64().unwrap_or(-1.0) * 1e6).round() as u128;
            let same = num(&s["requests"]) == l["requests"].as_u64().unwrap_or(0) as u128
                && num(&s["input"]) == l["input_tokens"].as_u64().unwrap_or(0) as u128
                && num(&s["output"]) == l["output_tokens"].as_u64().unwrap_or(0) as u128
                && num(&s["cache_read"]) == l["cache_read_tokens"].as_u64().unwrap_or(0) as u128
                && cost.rounded(6) == local_micro;
            if !same {
                mismatches.push(format!(
                    "{} {model}: server {s} local {l}",
                    dev.developer_id
                ));
            }
        }
    }
    let n = events.max(1) as f64;
    println!(
        "bench-live: {} developers, {:.1} min, ship interval {}",
        o.devs,
        o.minutes,
        if o.ship_interval == 0 {
            "every change (TALLY_SHIP_INTERVAL_S=0)".to_string()
        } else {
            format!("{} s", o.ship_interval)
        }
    );
    println!("  writer mix                {}", o.mix.name());
    println!(
        "  pace                      a request every {}–{} s",
        o.pace_ms.0 as f64 / 1000.0,
        o.pace_ms.1 as f64 / 1000.0
    );
    println!("  requests written          {}", written.len());
    println!("  events in D1              {events}");
    println!(
        "  events per ingest request {:.1}",
        n / requests.max(1) as f64
    );
    println!("  D1 rows written / event   {:.3}  ({rows} rows, sum of the consumer's D1 meta.rows_written)", rows as f64 / n);
    println!(
        "  queue messages / event    {:.3}  ({messages})",
        messages as f64 / n
    );
    println!(
        "  ingest requests / event   {:.3}  ({requests} batches)",
        requests as f64 / n
    );
    println!(
        "  freshness p50 / p95       {:.1} s / {:.1} s  ({} of {} seen; D1 polled every ~{:.1} s)",
        pct(&fresh, 0.5),
        pct(&fresh, 0.95),
        fresh.len(),
        written.len(),
        if seen.len() > 1 {
            seen.last()
                .unwrap()
                .0
                .duration_since(seen[0].0)
                .as_secs_f64()
                / (seen.len() - 1) as f64
        } else {
            0.0
        }
    );
    for (name, p) in phases.iter().chain([("whole run", whole)].iter()) {
        println!(
            "  {name:<25} {:.3} rows / event  ({} rows, {} events, {} parts: {:.1} rows and {:.1} events a part; a part's rows: usage {:.2}, sessions {:.2}, markers {:.2})",
            p.rows as f64 / p.events.max(1) as f64,
            p.rows,
            p.events,
            p.messages,
            p.rows as f64 / p.messages.max(1) as f64,
            p.events as f64 / p.messages.max(1) as f64,
            p.usage as f64 / p.messages.max(1) as f64,
            p.sessions as f64 / p.messages.max(1) as f64,
            p.markers as f64 / p.messages.max(1) as f64
        );
    }
    println!("  server total              ${}", server_cost.decimal(6));
    if mismatches.is_empty() && events == written.len() as u64 {
        println!("  totals                    server per-developer, per-model totals EQUAL every agent's `tally report`");
        Ok(())
    } else {
        for m in &mismatches {
            println!("  MISMATCH {m}");
        }
        Err(format!(
            "totals differ ({} mismatches; {events} events in D1 for {} written)",
            mismatches.len(),
            written.len()
        ))
    }
}

/// What the consumer's log lines say it did: rows (D1's `meta.rows_written`),
/// events and queue messages (parts, applied or ignored as duplicates).
#[derive(Clone, Copy, Default)]
struct Consumed {
    rows: u64,
    events: u64,
    messages: u64,
    /// Rows by table, from "N rows written: usage U, sessions S, markers M,
    /// other O".
    usage: u64,
    sessions: u64,
    markers: u64,
}

fn consumer_log(log: &str) -> Consumed {
    let mut c = Consumed::default();
    for l in log.lines() {
        // "applied part P (E events, R rows written)" and "applied K parts of
        // team T in one transaction (E events, R rows written)".
        if l.contains("applied ") {
            let mut halves = l.split(" events, ");
            if let (Some(before), Some(after)) = (halves.next(), halves.next()) {
                let num = |w: Option<&str>| w.and_then(|r| r.parse::<u64>().ok()).unwrap_or(0);
                c.rows += num(after.split(' ').next());
                c.events += num(before.rsplit(['(', ' ']).next());
                if let Some(by) = after.split("rows written: ").nth(1) {
                    for kv in by.trim_end_matches(')').split(", ") {
                        let mut kv = kv.split(' ');
                        let (k, v) = (kv.next(), num(kv.next()));
                        match k {
                            Some("usage") => c.usage += v,
                            Some("sessions") => c.sessions += v,
                            Some("markers") => c.markers += v,
                            _ => {}
                        }
                    }
                }
            }
        }
        // "applied 3 parts of team T in one transaction (…)": three messages.
        if let Some(k) = l
            .split("applied ")
            .nth(1)
            .filter(|r| r.contains(" parts of team "))
            .and_then(|r| r.split(' ').next())
            .and_then(|k| k.parse::<u64>().ok())
        {
            c.messages += k;
        } else if l.contains("applied ") || (l.contains("duplicate ") && l.contains(" ignored")) {
            c.messages += 1;
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumer_log_adds_rows_events_and_parts() {
        let log = "[wrangler:info] applied b0 part 0 (44 events, 8 rows written: usage 6, sessions 1, markers 1, other 0)\n\
                   applied 3 parts of team t1 in one transaction (120 events, 11 rows written: usage 6, sessions 2, markers 3, other 0)\n\
                   duplicate b1 part 1 ignored\n";
        let c = consumer_log(log);
        assert_eq!((c.rows, c.events, c.messages), (19, 164, 5));
        assert_eq!((c.usage, c.sessions, c.markers), (12, 3, 4));
    }

    #[test]
    fn faithful_writer_stays_in_a_session_with_one_main_model() {
        let root = Path::new("/p");
        let mut w = Writer::new(2, Mix::Faithful);
        let first: Vec<_> = (0..60).map(|_| w.next(root)).collect();
        // The first session lasts at least 60 requests, in one file and cwd.
        assert!(first.iter().all(|r| r.0 == first[0].0 && r.2 == first[0].2));
        let models: std::collections::BTreeSet<_> = first.iter().map(|r| r.3).collect();
        assert_eq!(models, [OPUS, HAIKU].into_iter().collect());
        let haiku = first.iter().filter(|r| r.3 == HAIKU).count();
        assert_eq!(haiku, 15);
    }
}
