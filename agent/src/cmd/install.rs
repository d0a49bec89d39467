//! `tally install`: enrolment with a one-time token.

use serde::Deserialize;
use serde_json::json;
use tally_core::event::PrivacyMode;

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

fn enroll(server: &str, token: &str) -> Result<Enrolled, AgentError> {
    let resp = tally::upload::agent()
        .post(&format!("{server}/v1/agent/enroll"))
        .send_json(json!({"token": token, "hostname": hostname()}));
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

pub fn install(
    server: &str,
    token: &str,
    backfill: Option<u32>,
    ollama_url: String,
    ollama_model: String,
) -> Result<(), AgentError> {
    let server = server.trim_end_matches('/');
    if !(server.starts_with("https://") || server.starts_with("http://")) {
        return Err(AgentError::BadServerUrl {
            server: server.to_string(),
        });
    }
    let enrolled = enroll(server, token)?;
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
    eprintln!(
        "enrolled in team {} as agent {}; privacy mode: {}. Config: {}. Outbox key: {}.",
        cfg.team_id,
        cfg.agent_id,
        cfg.privacy_mode.as_str(),
        home.config().display(),
        key.storage.describe()
    );
    Ok(())
}
