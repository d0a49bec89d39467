//! `tally install`: enrolment with a one-time token.

use serde::Deserialize;
use serde_json::json;
use tally_core::event::PrivacyMode;
use tally_core::time::DAY_MS;
use tally_core::wire::MAX_BACKFILL_DAYS;

use tally::config::Config;
use tally::error::AgentError;
use tally::home::Home;
use tally::index::lock::Lock;
use tally::index::{roots_signature, Index};
use tally::{keystore, now_ms, source};

/// The server's answer to an enrolment.
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

/// What is sent as the hostname at enrolment (shown to team admins on the
/// Developers page to tell machines apart): by default a short hash of it,
/// which tells machines apart without naming them; the name itself only with
/// `--send-hostname`.
pub fn hostname_to_send(name: Option<&str>, in_clear: bool) -> Option<String> {
    let name = name?;
    if in_clear {
        return Some(name.to_string());
    }
    let h = tally_core::hash::sha256_hex(format!("tally-hostname-v1:{name}").as_bytes());
    Some(format!("host-{}", &h[..12]))
}

fn enroll(server: &str, token: &str, hostname: Option<&str>) -> Result<Enrolled, AgentError> {
    let resp = tally::upload::agent()
        .post(&format!("{server}/v1/agent/enroll"))
        .send_json(json!({"token": token, "hostname": hostname}));
    match resp {
        Ok(r) => r.into_json().map_err(|source| AgentError::EnrolAnswer {
            server: server.to_string(),
            source,
        }),
        Err(ureq::Error::Status(code, r)) => Err(AgentError::EnrolRefused {
            server: server.to_string(),
            code,
            body: r.into_string().unwrap_or_default(),
        }),
        Err(e) => Err(AgentError::Unreachable {
            server: server.to_string(),
            source: Box::new(e),
        }),
    }
}

pub struct InstallArgs {
    pub server: String,
    pub token: String,
    pub backfill: Option<u32>,
    pub ollama_url: String,
    pub ollama_model: String,
    pub max_mode: Option<PrivacyMode>,
    pub send_hostname: bool,
}

pub fn install(a: InstallArgs) -> Result<(), AgentError> {
    let InstallArgs {
        server,
        token,
        backfill,
        ollama_url,
        ollama_model,
        max_mode,
        send_hostname,
    } = a;
    let server = server.trim_end_matches('/');
    // Everything that can be refused is refused before the one-time token is spent.
    tally::config::check_server_url(server)?;
    if let Some(days) = backfill.filter(|&d| d > MAX_BACKFILL_DAYS) {
        return Err(AgentError::BackfillTooLong {
            days,
            max: MAX_BACKFILL_DAYS,
        });
    }
    let hostname_sent = hostname_to_send(hostname().as_deref(), send_hostname);
    let enrolled = enroll(server, &token, hostname_sent.as_deref())?;
    let now = now_ms();
    let cfg = Config {
        server: server.to_string(),
        agent_token: enrolled.agent_token,
        agent_id: enrolled.agent_id,
        team_id: enrolled.team_id,
        developer_id: enrolled.developer_id,
        salt: enrolled.salt,
        privacy_mode: enrolled.privacy_mode,
        max_mode,
        rate_capacity: None,
        min_agent_version: None,
        ship_interval_s: None,
        source_path: None,
        hostname_sent,
        ship_since_ms: now - backfill.map(|d| d as i64 * DAY_MS).unwrap_or(0),
        ollama_url,
        ollama_model,
        outbox_max_bytes: tally::outbox::DEFAULT_MAX_BYTES,
    };
    let home = Home::from_env();
    cfg.save(&home)?;
    // Requests already in the index were read without their text; reading
    // the logs once more collects it for those that may now ship.
    {
        let _lock = Lock::acquire(&home.index_lock(), true)?;
        let sources = source::all_from_env();
        let mut ix = Index::load(&home, &roots_signature(&sources))?;
        if !ix.files.is_empty() {
            ix.reset_checkpoints();
            ix.save(&home)?;
        }
    }
    let key = keystore::load_or_create(&home)?;
    let ceiling = match cfg.max_mode {
        Some(m) => format!(
            " (this machine's ceiling: {}; sending as {})",
            m.as_str(),
            cfg.effective_mode().as_str()
        ),
        None => String::new(),
    };
    eprintln!(
        "enrolled in team {} as agent {}; team privacy mode: {}{ceiling}. Config: {}. Outbox key: {}.",
        cfg.team_id,
        cfg.agent_id,
        cfg.privacy_mode.as_str(),
        home.config().display(),
        key.storage.describe()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hostname_is_hashed_unless_asked() {
        let a = hostname_to_send(Some("alice-laptop.corp"), false).unwrap();
        assert!(a.starts_with("host-") && a.len() == 17, "{a}");
        assert!(!a.contains("alice"));
        assert_eq!(
            hostname_to_send(Some("alice-laptop.corp"), false).unwrap(),
            a
        );
        assert_ne!(hostname_to_send(Some("bob-laptop.corp"), false).unwrap(), a);
        assert_eq!(
            hostname_to_send(Some("alice-laptop.corp"), true).as_deref(),
            Some("alice-laptop.corp")
        );
        assert_eq!(hostname_to_send(None, false), None);
    }
}
