//! `tally`: the agent every developer installs.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};
use serde::Deserialize;
use serde_json::json;
use tally_core::event::PrivacyMode;

use tally::config::{default_ollama_model, default_ollama_url, home, Config};
use tally::index::{roots_signature, Index, Lock};
use tally::keystore;
use tally::ollama::Ollama;
use tally::report::{self, Filter, Group};
use tally::ship::{self, RunStatus};
use tally::source::{self, Source};
use tally::upload::UploadError;
use tally::{demo, now_ms, service};

#[derive(Parser)]
#[command(
    name = "tally",
    version,
    about = "Exact, private accounting of AI coding-agent usage"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Enroll this machine with a one-time install token from your team admin.
    Install {
        #[arg(long)]
        server: String,
        #[arg(long)]
        token: String,
        /// Also ship the last DAYS days of history (default: only new activity).
        #[arg(long, value_name = "DAYS")]
        backfill: Option<u32>,
        /// Ollama for the categorize-local privacy mode.
        #[arg(long, default_value_t = default_ollama_url())]
        ollama_url: String,
        #[arg(long, default_value_t = default_ollama_model())]
        ollama_model: String,
    },
    /// Ship usage to the team server, in the foreground.
    Run {
        /// Ship what is there now and exit.
        #[arg(long)]
        once: bool,
        /// Seconds between rescans when no file change is noticed.
        #[arg(long, default_value_t = 30)]
        interval: u64,
    },
    /// Enrolment, privacy mode, key storage and what is waiting to be sent.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Exactly the JSON that would leave this machine for the last N requests.
    Preview {
        #[arg(short = 'n', long, default_value_t = 5)]
        n: usize,
        /// Accepted for symmetry; the preview is always JSON.
        #[arg(long)]
        json: bool,
    },
    /// Usage and cost from the local logs (works offline, without enrolment).
    Report {
        #[arg(value_enum)]
        by: By,
        #[arg(long)]
        json: bool,
        /// First day to include (YYYY-MM-DD), in --timezone.
        #[arg(long)]
        since: Option<String>,
        /// Last day to include (YYYY-MM-DD), in --timezone.
        #[arg(long)]
        until: Option<String>,
        /// IANA time zone for days, "UTC", or "local" (default).
        #[arg(long)]
        timezone: Option<String>,
    },
    /// Checks everything the agent depends on and says what to fix.
    Doctor {
        #[arg(long)]
        json: bool,
    },
    /// Run `tally run` in the background (systemd user unit / launchd agent).
    Service {
        #[command(subcommand)]
        action: ServiceAction,
    },
    /// Removes the agent token, the outbox and its key, and the service.
    Uninstall {
        #[arg(long)]
        json: bool,
    },
    /// Write a generated Claude Code–format data set (for demos and benchmarks).
    DemoData {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 12)]
        sessions: u32,
        #[arg(long, default_value_t = 40)]
        requests: u32,
        /// Instead: a realistic benchmark corpus of about this many MiB.
        #[arg(long, value_name = "MIB")]
        corpus_mib: Option<u64>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum By {
    Daily,
    Session,
    Project,
    Model,
}

#[derive(Subcommand)]
enum ServiceAction {
    Install {
        /// Only write the unit file.
        #[arg(long)]
        no_start: bool,
    },
    Uninstall,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Install {
            server,
            token,
            backfill,
            ollama_url,
            ollama_model,
        } => install(&server, &token, backfill, ollama_url, ollama_model),
        Cmd::Run { once, interval } => run(once, Duration::from_secs(interval.max(1))),
        Cmd::Status { json } => status(json),
        Cmd::Preview { n, json: _ } => preview(n),
        Cmd::Report {
            by,
            json,
            since,
            until,
            timezone,
        } => report_cmd(by, json, since, until, timezone),
        Cmd::Doctor { json } => doctor(json),
        Cmd::Service { action } => match action {
            ServiceAction::Install { no_start } => {
                service::install(!no_start).map(|m| println!("{m}"))
            }
            ServiceAction::Uninstall => service::uninstall().map(|r| match r {
                Some(p) => println!("removed {p}"),
                None => println!("no service installed"),
            }),
        },
        Cmd::Uninstall { json } => uninstall(json),
        Cmd::DemoData {
            out,
            corpus_mib: Some(mib),
            ..
        } => demo::generate_corpus(&out, mib << 20, 42)
            .map(|(bytes, requests)| {
                eprintln!(
                    "wrote {} MiB ({requests} requests) under {}",
                    bytes >> 20,
                    out.display()
                )
            })
            .map_err(|e| format!("writing the corpus: {e}")),
        Cmd::DemoData {
            out,
            sessions,
            requests,
            corpus_mib: None,
        } => demo::generate(&out, sessions, requests, now_ms(), 42)
            .map(|bytes| {
                eprintln!(
                    "wrote {bytes} bytes of demo transcripts under {}",
                    out.display()
                )
            })
            .map_err(|e| format!("writing demo data: {e}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tally: {e}");
            ExitCode::FAILURE
        }
    }
}

#[derive(Deserialize)]
struct Enrolled {
    agent_token: String,
    agent_id: String,
    team_id: String,
    developer_id: String,
    salt: String,
    privacy_mode: PrivacyMode,
}

fn hostname() -> Option<String> {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
}

fn install(
    server: &str,
    token: &str,
    backfill: Option<u32>,
    ollama_url: String,
    ollama_model: String,
) -> Result<(), String> {
    let server = server.trim_end_matches('/');
    if !(server.starts_with("https://") || server.starts_with("http://")) {
        return Err(format!("--server {server:?} must be an http(s):// URL"));
    }
    let resp = tally::upload::agent()
        .post(&format!("{server}/v1/agent/enroll"))
        .send_json(json!({"token": token, "hostname": hostname()}));
    let enrolled: Enrolled = match resp {
        Ok(r) => r.into_json().map_err(|e| format!("unreadable enrolment answer: {e}"))?,
        Err(ureq::Error::Status(code, r)) => {
            return Err(format!(
                "enrolment refused (HTTP {code}): {}. Install tokens are single-use and expire after 7 days; ask your admin for a new one.",
                r.into_string().unwrap_or_default()
            ))
        }
        Err(e) => return Err(format!("cannot reach {server}: {e}")),
    };
    let now = now_ms();
    let cfg = Config {
        server: server.to_string(),
        agent_token: enrolled.agent_token,
        agent_id: enrolled.agent_id,
        team_id: enrolled.team_id,
        developer_id: enrolled.developer_id,
        salt: enrolled.salt,
        privacy_mode: enrolled.privacy_mode,
        ship_since_ms: now - backfill.map(|d| d as i64 * 86_400_000).unwrap_or(0),
        ollama_url,
        ollama_model,
        outbox_max_bytes: tally::outbox::DEFAULT_MAX_BYTES,
    };
    let h = home();
    cfg.save(&h)?;
    // Requests already in the index were read without their text; reading
    // the logs once more collects it for those that may now ship.
    {
        let _lock = Lock::acquire(&h.join("index.lock"), true)?;
        let sources = source::all_from_env();
        let path = ship::index_path(&h);
        let mut ix = Index::load(&path, &roots_signature(&sources))?;
        if !ix.files.is_empty() {
            ix.reset_checkpoints();
            ix.save(&path)?;
        }
    }
    let key = keystore::load_or_create(&h)?;
    eprintln!(
        "enrolled in team {} as agent {}; privacy mode: {}. Config: {}. Outbox key: {}.",
        cfg.team_id,
        cfg.agent_id,
        cfg.privacy_mode.as_str(),
        Config::path(&h).display(),
        key.storage.describe()
    );
    Ok(())
}

fn print_sync(s: &ship::Sync) {
    let st = &s.scan.stats;
    let mut msg = format!(
        "read {} of {} files ({} MiB, {} lines, {} malformed); {} new requests, {} duplicate lines",
        st.files_read,
        st.files,
        st.bytes_read >> 20,
        st.lines,
        st.malformed,
        st.new_requests,
        st.duplicates
    );
    if let Some(e) = &s.enqueued {
        msg.push_str(&format!(
            "; queued {} events in {} batches",
            e.events, e.batches
        ));
        if e.held > 0 {
            msg.push_str(&format!(
                " ({} held until their response is complete)",
                e.held
            ));
        }
    }
    eprintln!("{msg}");
    for u in &st.unreadable {
        eprintln!("warning: cannot read {u}");
    }
    if let Some(o) = &s.ollama_error {
        eprintln!("warning: no categories: {o}");
    }
}

fn cycle(
    h: &Path,
    cfg: &mut Config,
    sources: &[Box<dyn Source>],
    progress: bool,
) -> Result<(), UploadError> {
    let mut st = RunStatus::load(h);
    let synced =
        ship::sync(h, sources, Some(cfg), now_ms(), progress).map_err(UploadError::Unavailable)?;
    print_sync(&synced);
    st.last_sync_ms = Some(now_ms());
    if cfg.privacy_mode == PrivacyMode::CategorizeLocal {
        if synced.ollama_error.is_some() || synced.ollama_categorized > 0 {
            st.ollama_error = synced.ollama_error.clone();
        }
        st.ollama_categorized += synced.ollama_categorized;
    } else {
        st.ollama_error = None;
    }
    if let Some(e) = &synced.enqueued {
        st.outbox_full = e.outbox_full;
        st.held_unsettled = e.held;
    }
    st.save(h);
    let res = ship::upload(h, cfg);
    match &res {
        Ok(u) => {
            if u.batches > 0 || u.rejected > 0 {
                eprintln!("uploaded {} events in {} batches", u.events, u.batches);
            }
            st.last_upload_ms = Some(now_ms());
            st.last_upload_error = None;
            st.events_uploaded += u.events as u64;
            st.batches_uploaded += u.batches as u64;
        }
        Err(e) => st.last_upload_error = Some(e.to_string()),
    }
    st.save(h);
    res.map(|_| ())
}

fn run(once: bool, interval: Duration) -> Result<(), String> {
    let h = home();
    let mut cfg = Config::load(&h)?;
    let sources = source::all_from_env();
    let refresh = |cfg: &mut Config| match ship::refresh_mode(&h, cfg) {
        Err(e @ UploadError::Auth(_)) => Err(e.to_string()),
        Err(e) => {
            eprintln!(
                "warning: could not fetch the team's privacy mode ({e}); using {}",
                cfg.privacy_mode.as_str()
            );
            Ok(())
        }
        Ok(()) => Ok(()),
    };
    refresh(&mut cfg)?;
    if once {
        return cycle(&h, &mut cfg, &sources, true).map_err(|e| e.to_string());
    }
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let mut watcher = notify::recommended_watcher(move |_res: notify::Result<notify::Event>| {
        let _ = tx.send(());
    })
    .map_err(|e| format!("file watching unavailable: {e}"));
    if let Err(e) = &watcher {
        eprintln!(
            "warning: {e}; rescanning every {} s instead",
            interval.as_secs()
        );
    }
    let mut watched: Vec<PathBuf> = Vec::new();
    let mut last_refresh = Instant::now();
    let mut first = true;
    loop {
        if let Ok(w) = watcher.as_mut() {
            use notify::Watcher;
            for root in sources.iter().flat_map(|s| s.roots()) {
                if !watched.contains(&root)
                    && root.is_dir()
                    && w.watch(&root, notify::RecursiveMode::Recursive).is_ok()
                {
                    watched.push(root);
                }
            }
        }
        if last_refresh.elapsed() > Duration::from_secs(300) {
            refresh(&mut cfg)?;
            last_refresh = Instant::now();
        }
        match cycle(&h, &mut cfg, &sources, first) {
            Ok(()) => {}
            Err(e @ UploadError::Auth(_)) => return Err(e.to_string()),
            Err(e) => eprintln!("{e}"),
        }
        first = false;
        // Wait for a change (or the periodic rescan that catches what
        // watching misses: network filesystems, new roots, lost events).
        if rx.recv_timeout(interval).is_ok() {
            // Let a burst of writes (one streamed response) finish.
            std::thread::sleep(Duration::from_secs(2));
            while rx.try_recv().is_ok() {}
        }
    }
}

fn status(json_out: bool) -> Result<(), String> {
    let h = home();
    let cfg = Config::load(&h)?;
    let st = RunStatus::load(&h);
    let key = keystore::load(&h)?;
    let key_desc = key
        .as_ref()
        .map(|k| k.storage.describe())
        .unwrap_or_else(|| "no key yet (created on first run)".into());
    let (pending_batches, pending_events, outbox_bytes) = ship::pending_summary(&h)?;
    let rejected = match &key {
        Some(k) => {
            tally::outbox::Outbox::open_reader(&ship::outbox_dir(&h), k.bytes)?
                .done()
                .rejected
        }
        None => Vec::new(),
    };
    let sources = source::all_from_env();
    let ix = Index::load(&ship::index_path(&h), &roots_signature(&sources))?;
    let (malformed, malformed_files) = ix.malformed_summary();
    let ollama = if cfg.privacy_mode == PrivacyMode::CategorizeLocal {
        let (url, model) = cfg.ollama();
        Some(match &st.ollama_error {
            Some(e) => format!("unavailable: {e}; events ship without a category"),
            None => format!(
                "ok ({model} at {url}; {} prompts categorized)",
                st.ollama_categorized
            ),
        })
    } else {
        None
    };
    let v = json!({
        "server": cfg.server, "team_id": cfg.team_id, "agent_id": cfg.agent_id,
        "privacy_mode": cfg.privacy_mode, "what_leaves": tally_core::privacy::describe(cfg.privacy_mode),
        "key_storage": key_desc, "key_degraded": key.as_ref().is_some_and(|k| k.storage.is_degraded()),
        "outbox": {"pending_batches": pending_batches, "pending_events": pending_events, "bytes": outbox_bytes,
                   "max_bytes": cfg.outbox_max_bytes, "full": st.outbox_full,
                   "rejected_batches": rejected.iter().map(|r| json!({"seq": r.seq, "error": r.error})).collect::<Vec<_>>()},
        "events_shipped": st.events_uploaded, "batches_shipped": st.batches_uploaded,
        "last_sync_ms": st.last_sync_ms, "last_upload_ms": st.last_upload_ms, "last_upload_error": st.last_upload_error,
        "held_until_complete": st.held_unsettled,
        "ollama": ollama,
        "index": {"requests": ix.records.len(), "files": ix.files.len(), "malformed_lines": malformed,
                  "files_with_malformed_lines": malformed_files, "late_updates": ix.late_updates},
    });
    if json_out {
        println!("{v}");
        return Ok(());
    }
    let mut out = format!(
        "server:          {}\nteam:            {}\nagent:           {}\nprivacy mode:    {}\n                 {}\noutbox key:      {}\noutbox:          {} batches ({} events) waiting, {} KiB of {} MiB\nevents shipped:  {}\n",
        cfg.server, cfg.team_id, cfg.agent_id, cfg.privacy_mode.as_str(),
        tally_core::privacy::describe(cfg.privacy_mode), key_desc, pending_batches, pending_events,
        outbox_bytes >> 10, cfg.outbox_max_bytes >> 20, st.events_uploaded
    );
    if let Some(o) = &ollama {
        out.push_str(&format!("ollama:          {o}\n"));
    }
    if let Some(e) = &st.last_upload_error {
        out.push_str(&format!("last upload:     FAILED: {e}\n"));
    }
    if st.outbox_full {
        out.push_str(
            "WARNING:         the outbox is full; new events wait in the logs until it drains\n",
        );
    }
    for r in &rejected {
        out.push_str(&format!("rejected batch:  #{}: {}\n", r.seq, r.error));
    }
    out.push_str(&format!(
        "local index:     {} requests from {} files; {malformed} malformed lines in {malformed_files} files\n",
        ix.records.len(),
        ix.files.len()
    ));
    print!("{out}");
    Ok(())
}

/// Reads the most recently written logs in full until it has the last `n`
/// requests, then builds their events exactly as a run would now.
fn preview(n: usize) -> Result<(), String> {
    let h = home();
    let cfg = Config::load(&h)?;
    let sources = source::all_from_env();
    // Newest files first; stop once enough requests were seen.
    let mut files: Vec<(i64, usize, PathBuf)> = Vec::new();
    for (si, s) in sources.iter().enumerate() {
        for p in s.discover() {
            let m = tally::tail::stat(&p).map(|i| i.mtime_ms).unwrap_or(0);
            files.push((m, si, p));
        }
    }
    files.sort_by_key(|f| std::cmp::Reverse(f.0));
    let mut ix = Index::new(String::new());
    let mut texts: std::collections::HashMap<u32, source::Text> = Default::default();
    for (_, si, path) in files {
        if ix.records.len() >= n.max(1) * 4 {
            break;
        }
        // Everything settled, all text kept: the preview shows the full content.
        let out = ix.scan_files(&sources, vec![(si, path)], i64::MAX, Some(i64::MIN), false);
        for (i, t) in out.texts {
            texts.entry(i).or_insert(t);
        }
    }
    let mut order: Vec<u32> = (0..ix.records.len() as u32).collect();
    order.sort_by_key(|&i| (ix.records[i as usize].ts, ix.records[i as usize].id));
    let skip = order.len().saturating_sub(n);
    let mut ollama = (cfg.privacy_mode == PrivacyMode::CategorizeLocal).then(|| {
        let (url, model) = cfg.ollama();
        Ollama::new(&url, &model)
    });
    let events: Vec<_> = order[skip..]
        .iter()
        .map(|&i| {
            ship::build_event(
                &ix,
                i,
                texts.get(&i),
                cfg.privacy_mode,
                &cfg.salt,
                ollama.as_mut(),
            )
        })
        .collect();
    println!(
        "{}",
        serde_json::to_string_pretty(&events).map_err(|e| e.to_string())?
    );
    if let Some(e) = ollama.and_then(|o| o.down) {
        eprintln!("note: no categories: {e}");
    }
    Ok(())
}

fn report_cmd(
    by: By,
    json_out: bool,
    since: Option<String>,
    until: Option<String>,
    timezone: Option<String>,
) -> Result<(), String> {
    let filter = Filter {
        since: report::parse_day("--since", since.as_deref())?,
        until: report::parse_day("--until", until.as_deref())?,
        tz: report::parse_tz(timezone.as_deref())?,
    };
    if let (Some(s), Some(u)) = (filter.since, filter.until) {
        if s > u {
            return Err("--since is after --until".into());
        }
    }
    let h = home();
    // Enrolled or not, a report reads the same index; when enrolled, what is
    // ready to ship is queued on the way (the outbox is the only place text
    // is kept, so it must be taken while it is read).
    let cfg = match Config::load(&h) {
        Ok(c) => Some(c),
        Err(_) if !Config::path(&h).exists() => None,
        Err(e) => return Err(e),
    };
    let sources = source::all_from_env();
    let synced = ship::sync(&h, &sources, cfg.as_ref(), now_ms(), !json_out)?;
    let group = match by {
        By::Daily => Group::Daily,
        By::Session => Group::Session,
        By::Project => Group::Project,
        By::Model => Group::Model,
    };
    let r = report::build(&synced.index, group, &filter);
    if json_out {
        println!("{}", report::to_json(&r));
    } else {
        print!("{}", report::to_table(&r));
    }
    let (malformed, files) = synced.index.malformed_summary();
    if malformed > 0 {
        eprintln!("note: {malformed} malformed log lines in {files} files were skipped (see `tally doctor`)");
    }
    if !r.unpriced_models.is_empty() {
        eprintln!(
            "note: no price for {}; their requests are unpriced and not in cost_usd",
            r.unpriced_models.join(", ")
        );
    }
    Ok(())
}

fn doctor(json_out: bool) -> Result<(), String> {
    let h = home();
    let mut checks: Vec<(&str, bool, String)> = Vec::new();
    let cfg = Config::load(&h);
    match &cfg {
        Ok(c) => checks.push((
            "enrolment",
            true,
            format!("team {} via {}", c.team_id, c.server),
        )),
        Err(e) => checks.push(("enrolment", false, e.clone())),
    }
    if let Ok(c) = &cfg {
        let health = tally::upload::agent()
            .get(&format!("{}/healthz", c.server))
            .call();
        checks.push(match health {
            Ok(_) => ("server", true, format!("{} answers", c.server)),
            Err(e) => ("server", false, format!("{} unreachable: {e}", c.server)),
        });
        let mut probe = c.clone();
        checks.push(match ship::refresh_mode(&h, &mut probe) {
            Ok(()) => (
                "credentials",
                true,
                format!("accepted; privacy mode {}", probe.privacy_mode.as_str()),
            ),
            Err(e) => ("credentials", false, e.to_string()),
        });
        if probe.privacy_mode == PrivacyMode::CategorizeLocal {
            let (url, model) = probe.ollama();
            let tags = tally::upload::agent()
                .get(&format!("{url}/api/tags"))
                .call();
            checks.push(match tags {
                Ok(r) => {
                    let body = r.into_string().unwrap_or_default();
                    if body.contains(&format!("\"{model}\"")) {
                        ("ollama", true, format!("{model} available at {url}"))
                    } else {
                        (
                            "ollama",
                            false,
                            format!(
                                "{url} answers but has no model {model}: run `ollama pull {model}`"
                            ),
                        )
                    }
                }
                Err(e) => (
                    "ollama",
                    false,
                    format!("{url} unreachable ({e}): prompts ship without a category"),
                ),
            });
        }
        match keystore::load(&h) {
            Ok(Some(k)) => {
                checks.push(("outbox key", !k.storage.is_degraded(), k.storage.describe()))
            }
            Ok(None) => checks.push(("outbox key", true, "not created yet".into())),
            Err(e) => checks.push(("outbox key", false, e)),
        }
        match ship::pending_summary(&h) {
            Ok((b, e, bytes)) => checks.push((
                "outbox",
                true,
                format!("{b} batches ({e} events, {} KiB) waiting", bytes >> 10),
            )),
            Err(e) => checks.push(("outbox", false, e)),
        }
    }
    let sources = source::all_from_env();
    for s in &sources {
        let roots: Vec<PathBuf> = s.roots();
        let found: Vec<&PathBuf> = roots.iter().filter(|r| r.is_dir()).collect();
        let n = s.discover().len();
        let name = match s.kind() {
            tally_core::event::AgentKind::ClaudeCode => "claude code logs",
            tally_core::event::AgentKind::Codex => "codex logs",
            _ => "logs",
        };
        let detail = if found.is_empty() {
            format!(
                "none of {} exists",
                roots
                    .iter()
                    .map(|r| r.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        } else {
            format!(
                "{n} files under {}",
                found
                    .iter()
                    .map(|r| r.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        // A developer may use only one of the agents: absence is not a failure.
        checks.push((name, true, detail));
    }
    match Index::load(&ship::index_path(&h), &roots_signature(&sources)) {
        Ok(ix) => {
            let (m, f) = ix.malformed_summary();
            checks.push((
                "local index",
                true,
                format!(
                    "{} requests, {} files, {m} malformed lines in {f} files",
                    ix.records.len(),
                    ix.files.len()
                ),
            ));
        }
        Err(e) => checks.push(("local index", false, e)),
    }
    let unit = service::unit_path();
    checks.push((
        "service",
        true,
        if unit.exists() {
            format!("installed ({})", unit.display())
        } else {
            "not installed: `tally service install` runs the agent in the background".into()
        },
    ));
    let ok = checks.iter().all(|c| c.1);
    if json_out {
        let v: Vec<_> = checks
            .iter()
            .map(|(n, ok, d)| json!({"check": n, "ok": ok, "detail": d}))
            .collect();
        println!("{}", json!({"ok": ok, "checks": v}));
    } else {
        for (n, good, d) in &checks {
            println!("{} {n:<16} {d}", if *good { "ok  " } else { "FAIL" });
        }
    }
    if ok {
        Ok(())
    } else {
        Err("some checks failed".into())
    }
}

fn uninstall(json_out: bool) -> Result<(), String> {
    let h = home();
    let mut removed: Vec<String> = Vec::new();
    if let Some(p) = service::uninstall()? {
        removed.push(p);
    }
    let (pending, events, _) = ship::pending_summary(&h).unwrap_or((0, 0, 0));
    if pending > 0 {
        eprintln!(
            "warning: {events} queued events were never sent and are discarded with the outbox"
        );
    }
    removed.extend(keystore::delete(&h));
    for p in [Config::path(&h), h.join("status.json")] {
        if std::fs::remove_file(&p).is_ok() {
            removed.push(p.display().to_string());
        }
    }
    let ob = ship::outbox_dir(&h);
    if std::fs::remove_dir_all(&ob).is_ok() {
        removed.push(ob.display().to_string());
    }
    if json_out {
        println!("{}", json!({"removed": removed}));
    } else {
        for r in &removed {
            println!("removed {r}");
        }
        println!("The local index ({}) is kept so `tally report` still works; delete it by hand if you like.", ship::index_path(&h).display());
    }
    Ok(())
}
