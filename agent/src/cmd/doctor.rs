//! `tally doctor`: checks everything the agent depends on and says what to
//! fix.

use std::path::{Path, PathBuf};

use serde_json::json;
use tally_core::event::{AgentKind, PrivacyMode};

use tally::config::Config;
use tally::error::AgentError;
use tally::home::Home;
use tally::index::{roots_signature, Index};
use tally::source::Source;
use tally::{keystore, service, ship, source};

/// (name, passed, what was found or what to do).
type Check = (&'static str, bool, String);

fn join_paths<'a>(paths: impl IntoIterator<Item = &'a PathBuf>) -> String {
    paths
        .into_iter()
        .map(|r| r.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks that need an enrolment: the server, the credentials, Ollama when
/// the team categorizes locally, the outbox key and the outbox.
fn enrolled_checks(home: &Home, c: &Config, checks: &mut Vec<Check>) {
    if let Err(e) = tally::config::check_server_url(&c.server) {
        checks.push(("server", false, e.to_string()));
    } else {
        let health = tally::upload::agent()
            .get(&format!("{}/healthz", c.server))
            .call();
        checks.push(match health {
            Ok(_) => ("server", true, format!("{} answers", c.server)),
            Err(e) => ("server", false, format!("{} unreachable: {e}", c.server)),
        });
    }
    let mut probe = c.clone();
    checks.push(match ship::refresh_mode(home, &mut probe) {
        Ok(()) => (
            "credentials",
            true,
            format!("accepted; privacy mode {}", probe.privacy_mode.as_str()),
        ),
        Err(e) => ("credentials", false, e.to_string()),
    });
    if probe.effective_mode() == PrivacyMode::CategorizeLocal {
        checks.push(ollama_check(&probe));
    }
    match keystore::load(home) {
        Ok(Some(k)) => checks.push(("outbox key", !k.storage.is_degraded(), k.storage.describe())),
        Ok(None) => checks.push(("outbox key", true, "not created yet".into())),
        Err(e) => checks.push(("outbox key", false, e.to_string())),
    }
    match ship::pending_summary(home) {
        Ok((b, e, bytes)) => checks.push((
            "outbox",
            true,
            format!("{b} batches ({e} events, {} KiB) waiting", bytes >> 10),
        )),
        Err(e) => checks.push(("outbox", false, e.to_string())),
    }
    if let Ok(Some(k)) = keystore::load(home) {
        match tally::quarantine::Quarantine::load(home, &k.bytes) {
            Ok(q) if q.count() == 0 => checks.push(("quarantine", true, "empty".into())),
            Ok(q) => checks.push((
                "quarantine",
                false,
                format!(
                    "{} events held back ({} rejected by the server, {} given up); first error: {}",
                    q.count(),
                    q.quarantined(),
                    q.given_up(),
                    q.first_error().unwrap_or_default()
                ),
            )),
            Err(e) => checks.push(("quarantine", false, e.to_string())),
        }
    }
}

fn ollama_check(cfg: &Config) -> Check {
    let (url, model) = cfg.ollama();
    let tags = tally::upload::agent()
        .get(&format!("{url}/api/tags"))
        .call();
    match tags {
        Ok(r) => {
            let body = r.into_string().unwrap_or_default();
            if body.contains(&format!("\"{model}\"")) {
                ("ollama", true, format!("{model} available at {url}"))
            } else {
                (
                    "ollama",
                    false,
                    format!("{url} answers but has no model {model}: run `ollama pull {model}`"),
                )
            }
        }
        Err(e) => (
            "ollama",
            false,
            format!("{url} unreachable ({e}): prompts ship without a category"),
        ),
    }
}

fn source_check(s: &dyn Source) -> Check {
    let roots: Vec<PathBuf> = s.roots();
    let found: Vec<&PathBuf> = roots.iter().filter(|r| r.is_dir()).collect();
    let n = s.discover().len();
    let name = match s.kind() {
        AgentKind::ClaudeCode => "claude code logs",
        AgentKind::Codex => "codex logs",
        _ => "logs",
    };
    let detail = if found.is_empty() {
        format!("none of {} exists", join_paths(&roots))
    } else {
        format!("{n} files under {}", join_paths(found))
    };
    // A developer may use only one of the agents: absence is not a failure.
    (name, true, detail)
}

fn service_check(unit: &Path) -> Check {
    (
        "service",
        true,
        if unit.exists() {
            format!("installed ({})", unit.display())
        } else {
            "not installed: `tally service install` runs the agent in the background".into()
        },
    )
}

pub fn doctor(json_out: bool) -> Result<(), AgentError> {
    let home = Home::from_env();
    let mut checks: Vec<Check> = Vec::new();
    match Config::load(&home) {
        Ok(c) => {
            checks.push((
                "enrolment",
                true,
                format!("team {} via {}", c.team_id, c.server),
            ));
            enrolled_checks(&home, &c, &mut checks);
        }
        Err(e) => checks.push(("enrolment", false, e.to_string())),
    }
    let sources = source::all_from_env();
    for s in &sources {
        checks.push(source_check(s.as_ref()));
    }
    match Index::load(&home, &roots_signature(&sources)) {
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
        Err(e) => checks.push(("local index", false, e.to_string())),
    }
    checks.push(service_check(&service::unit_path()));
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
        Err(AgentError::ChecksFailed)
    }
}
