//! `tally doctor`: checks everything the agent depends on and says what to
//! fix, and doubles as a security self-check a developer can show their
//! security team: permissions of every state file, where the outbox key
//! lives, TLS to the server, the team's mode and this machine's ceiling, the
//! agent's version against the server's minimum, and what the next batch
//! carries (field names and counts, never text).

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

/// Every state file and directory `Home` names that exists, with its mode:
/// none may be readable or writable by group or others, nor be a symlink.
fn permission_checks(home: &Home, checks: &mut Vec<Check>) {
    use std::os::unix::fs::PermissionsExt;
    let mut paths: Vec<PathBuf> = vec![
        home.root().to_path_buf(),
        home.config(),
        home.status(),
        home.index(),
        home.index_lock(),
        home.upload_lock(),
        home.key_file(),
        home.quarantine(),
        home.outbox_dir(),
        home.outbox_done(),
    ];
    if let Ok(rd) = std::fs::read_dir(home.outbox_dir()) {
        let mut segs: Vec<PathBuf> = rd
            .flatten()
            .filter(|e| Home::outbox_segment_first(&e.file_name().to_string_lossy()).is_some())
            .map(|e| e.path())
            .collect();
        segs.sort();
        paths.extend(segs);
    }
    let locks = [home.index_lock(), home.upload_lock()];
    let mut bad = Vec::new();
    let mut seen = Vec::new();
    for p in &paths {
        let Ok(m) = std::fs::symlink_metadata(p) else {
            continue;
        };
        let mode = m.permissions().mode() & 0o777;
        let name = p
            .strip_prefix(home.root())
            .ok()
            .filter(|r| !r.as_os_str().is_empty())
            .map(|r| r.display().to_string())
            .unwrap_or_else(|| ".".into());
        seen.push(format!("{name} {mode:04o}"));
        if m.file_type().is_symlink() {
            bad.push(format!("{} is a symlink", p.display()));
        } else if mode & 0o077 != 0 && locks.contains(p) {
            // Lock files hold no data (older agents created them 0644).
            seen.push(format!("note: {name} is an empty lock file"));
        } else if mode & 0o077 != 0 {
            bad.push(format!(
                "{} is {mode:04o}: run `chmod go-rwx {}`",
                p.display(),
                p.display()
            ));
        }
    }
    checks.push(if bad.is_empty() {
        (
            "file permissions",
            true,
            format!("{}: {}", home.root().display(), seen.join(", ")),
        )
    } else {
        ("file permissions", false, bad.join("; "))
    });
}

/// What the next upload carries: the pending outbox batches' events by field
/// name, or, with an empty outbox, the fields the mode in effect permits.
fn next_batch_check(home: &Home, mode: PrivacyMode) -> Check {
    use std::collections::BTreeMap;
    use tally_core::privacy::{permits, Field};
    let key = match keystore::load(home) {
        Ok(k) => k,
        Err(e) => return ("next batch", false, e.to_string()),
    };
    let mut fields: BTreeMap<String, usize> = BTreeMap::new();
    let (mut batches, mut events) = (0, 0);
    if let Some(k) = key {
        let pending = tally::outbox::Outbox::open_reader(home, k.bytes).and_then(|ob| ob.pending());
        match pending {
            Ok(p) => {
                for e in &p {
                    let v: serde_json::Value = serde_json::from_slice(&e.body).unwrap_or_default();
                    batches += 1;
                    for ev in v["events"].as_array().into_iter().flatten() {
                        events += 1;
                        for k in ev.as_object().into_iter().flat_map(|o| o.keys()) {
                            *fields.entry(k.clone()).or_default() += 1;
                        }
                    }
                }
            }
            Err(e) => return ("next batch", false, e.to_string()),
        }
    }
    if events == 0 {
        let optional: Vec<&str> = [
            Field::Category,
            Field::Prompt,
            Field::Response,
            Field::Tools,
        ]
        .into_iter()
        .filter(|f| permits(mode, *f))
        .map(|f| f.name())
        .collect();
        let extra = if optional.is_empty() {
            String::new()
        } else {
            format!(", {}", optional.join(", "))
        };
        return (
            "next batch",
            true,
            format!(
                "outbox empty; in mode {} each new event carries: id, ts, agent, model, tokens, \
                 fast (only when true), cost_pico_usd, project (keyed hash), session (keyed hash), mode{extra}",
                mode.as_str()
            ),
        );
    }
    let list: Vec<String> = fields.iter().map(|(k, n)| format!("{k}×{n}")).collect();
    (
        "next batch",
        true,
        format!(
            "{events} events in {batches} batches waiting; fields: {}",
            list.join(", ")
        ),
    )
}

/// `https://`, or plain http to a loopback address only (what the agent
/// accepts at all).
fn tls_check(server: &str) -> Check {
    match tally::config::check_server_url(server) {
        Err(e) => ("tls", false, e.to_string()),
        Ok(()) if server.starts_with("https://") => (
            "tls",
            true,
            "https (rustls, certificates checked against the bundled Mozilla roots)".into(),
        ),
        Ok(()) => (
            "tls",
            true,
            "plain http to a loopback address (never leaves this machine)".into(),
        ),
    }
}

/// The server's `min_agent_version` from `/v1/agent/config`, when it names one.
fn version_check(c: &Config) -> Check {
    use tally_core::release::version_at_least;
    let current = tally::upload::AGENT_VERSION;
    let r = tally::upload::agent()
        .get(&format!("{}/v1/agent/config", c.server))
        .set("Authorization", &format!("Bearer {}", c.agent_token))
        .call();
    let min = r
        .ok()
        .and_then(|r| r.into_json::<serde_json::Value>().ok())
        .and_then(|v| v["min_agent_version"].as_str().map(str::to_string));
    match min {
        None => (
            "agent version",
            true,
            format!("{current} (the server names no minimum)"),
        ),
        Some(m) if version_at_least(current, &m) => (
            "agent version",
            true,
            format!("{current} (server minimum {m})"),
        ),
        Some(m) => (
            "agent version",
            false,
            format!("{current} is older than the server's minimum {m}: update tally"),
        ),
    }
}

/// Checks that need an enrolment: the server, the credentials, Ollama when
/// the team categorizes locally, the outbox key and the outbox.
fn enrolled_checks(home: &Home, c: &Config, checks: &mut Vec<Check>) {
    checks.push(tls_check(&c.server));
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
    checks.push((
        "privacy mode",
        true,
        format!(
            "{} in effect (team: {}, this machine's ceiling: {})",
            probe.effective_mode().as_str(),
            probe.privacy_mode.as_str(),
            probe.max_mode.map(|m| m.as_str()).unwrap_or("none")
        ),
    ));
    checks.push(version_check(&probe));
    if probe.effective_mode() == PrivacyMode::CategorizeLocal {
        checks.push(ollama_check(&probe));
    }
    match keystore::load(home) {
        // A key file is the documented fallback where no keychain exists:
        // said out loud, not a failure.
        Ok(Some(k)) => checks.push(("outbox key", true, k.storage.describe())),
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
    checks.push(next_batch_check(home, probe.effective_mode()));
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
        AgentKind::GeminiCli => "gemini cli chats",
        AgentKind::OpenCode => "opencode messages",
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
    permission_checks(&home, &mut checks);
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
            println!("{} {n:<17} {d}", if *good { "ok  " } else { "FAIL" });
        }
    }
    if ok {
        Ok(())
    } else {
        Err(AgentError::ChecksFailed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_is_accepted_only_for_loopback() {
        assert!(tls_check("https://tally.example.com").1);
        assert!(tls_check("http://127.0.0.1:8787").1);
        assert!(!tls_check("http://tally.example.com").1);
    }
}
