//! `tally`: the agent every developer installs.

mod config;
mod demo;
mod scan;
mod upload;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use serde::{Deserialize, Serialize};
use tally_core::event::{EventBatch, PrivacyMode, MAX_BATCH_EVENTS};
use tally_core::hash::sha256_hex;
use tally_core::privacy::{outbound, LocalRecord};

use crate::config::{home, write_private, Config};
use crate::upload::{UploadError, Uploader};

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
    },
    /// Ship usage to the team server (in the foreground).
    Run {
        /// Ship what is there now and exit.
        #[arg(long)]
        once: bool,
        /// Seconds between scans.
        #[arg(long, default_value_t = 30)]
        interval: u64,
    },
    /// Show enrolment, privacy mode and what is pending.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Write a generated Claude Code–format data set (for demos and benchmarks).
    DemoData {
        #[arg(long)]
        out: std::path::PathBuf,
        #[arg(long, default_value_t = 12)]
        sessions: u32,
        #[arg(long, default_value_t = 40)]
        requests: u32,
    },
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Install {
            server,
            token,
            backfill,
        } => install(&server, &token, backfill),
        Cmd::Run { once, interval } => run(once, Duration::from_secs(interval.max(1))),
        Cmd::Status { json } => status(json),
        Cmd::DemoData {
            out,
            sessions,
            requests,
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

fn install(server: &str, token: &str, backfill: Option<u32>) -> Result<(), String> {
    let server = server.trim_end_matches('/');
    let resp = ureq::post(&format!("{server}/v1/agent/enroll"))
        .send_json(serde_json::json!({"token": token, "hostname": hostname()}));
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
        ollama_url: "http://localhost:11434".into(),
        ollama_model: "llama3.1:8b".into(),
    };
    let h = home();
    cfg.save(&h)?;
    eprintln!(
        "enrolled in team {} as agent {}; privacy mode: {}. Config: {}",
        cfg.team_id,
        cfg.agent_id,
        cfg.privacy_mode.as_str(),
        Config::path(&h).display()
    );
    Ok(())
}

/// Event ids already accepted by the server, so a re-scan never resends them.
#[derive(Default, Serialize, Deserialize)]
struct Shipped {
    ids: BTreeSet<String>,
}

impl Shipped {
    fn load(h: &Path) -> Shipped {
        std::fs::read(h.join("shipped.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }
    fn save(&self, h: &Path) -> Result<(), String> {
        write_private(
            &h.join("shipped.json"),
            &serde_json::to_vec(self).map_err(|e| e.to_string())?,
        )
    }
}

/// A batch id derived from its events: a resend of the same events is
/// recognisably the same batch, so the edge applies it once.
fn batch_id(records: &[&LocalRecord], mode: PrivacyMode) -> String {
    let mut s = String::from(mode.as_str());
    for r in records {
        s.push(':');
        s.push_str(&r.id);
    }
    sha256_hex(s.as_bytes())[..32].to_string()
}

fn refresh_mode(cfg: &mut Config, h: &Path) {
    let r = ureq::get(&format!("{}/v1/agent/config", cfg.server))
        .set("Authorization", &format!("Bearer {}", cfg.agent_token))
        .call();
    if let Ok(resp) = r {
        if let Ok(v) = resp.into_json::<serde_json::Value>() {
            if let Some(m) = v["privacy_mode"].as_str().and_then(PrivacyMode::parse) {
                if m != cfg.privacy_mode {
                    eprintln!(
                        "privacy mode changed by the team: {} -> {}",
                        cfg.privacy_mode.as_str(),
                        m.as_str()
                    );
                    cfg.privacy_mode = m;
                    let _ = cfg.save(h);
                }
            }
        }
    }
}

fn ship_once(cfg: &mut Config, h: &Path) -> Result<usize, UploadError> {
    refresh_mode(cfg, h);
    let files = scan::claude_files(&scan::claude_roots());
    let (records, stats) = scan::scan_claude(&files);
    for m in &stats.unpriced_models {
        eprintln!("warning: model {m} has no price; its requests are shown as unpriced");
    }
    let mut shipped = Shipped::load(h);
    let pending: Vec<&LocalRecord> = records
        .iter()
        .filter(|r| r.ts >= cfg.ship_since_ms && !shipped.ids.contains(&r.id))
        .collect();
    let uploader = Uploader::new(&cfg.server, &cfg.agent_token);
    let redactor = |s: &str| tally_core::redact::redact(s);
    let mut sent = 0;
    for chunk in pending.chunks(MAX_BATCH_EVENTS) {
        let mode = cfg.privacy_mode;
        let batch = EventBatch {
            batch_id: batch_id(chunk, mode),
            events: chunk
                .iter()
                .map(|r| outbound(r, mode, &cfg.salt, &redactor))
                .collect(),
        };
        let accepted = uploader.send(&batch)?;
        for r in chunk {
            shipped.ids.insert(r.id.clone());
        }
        shipped.save(h).map_err(UploadError::Unavailable)?;
        sent += accepted.accepted;
        debug_assert_eq!(accepted.batch_id, batch.batch_id);
        if accepted.privacy_mode != cfg.privacy_mode {
            cfg.privacy_mode = accepted.privacy_mode;
            let _ = cfg.save(h);
        }
    }
    eprintln!(
        "scanned {} files ({} lines, {} malformed, {} duplicate lines); shipped {sent} events",
        stats.files, stats.lines, stats.malformed, stats.duplicates
    );
    Ok(sent)
}

fn run(once: bool, interval: Duration) -> Result<(), String> {
    let h = home();
    let mut cfg = Config::load(&h)?;
    loop {
        match ship_once(&mut cfg, &h) {
            Ok(_) => {}
            Err(e @ UploadError::Auth(_)) => return Err(e.to_string()),
            Err(e) if once => return Err(e.to_string()),
            Err(e) => eprintln!("{e}"),
        }
        if once {
            return Ok(());
        }
        std::thread::sleep(interval);
    }
}

fn status(json: bool) -> Result<(), String> {
    let h = home();
    let cfg = Config::load(&h)?;
    let shipped = Shipped::load(&h);
    let v = serde_json::json!({
        "server": cfg.server, "team_id": cfg.team_id, "agent_id": cfg.agent_id,
        "privacy_mode": cfg.privacy_mode, "events_shipped": shipped.ids.len(),
        "what_leaves": tally_core::privacy::describe(cfg.privacy_mode),
    });
    if json {
        println!("{v}");
    } else {
        println!("server:        {}\nteam:          {}\nagent:         {}\nprivacy mode:  {}\n               {}\nevents shipped: {}",
            cfg.server, cfg.team_id, cfg.agent_id, cfg.privacy_mode.as_str(), tally_core::privacy::describe(cfg.privacy_mode), shipped.ids.len());
    }
    Ok(())
}
