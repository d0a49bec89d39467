//! The enrolled configuration: which server, which credentials, which
//! privacy mode.

use serde::{Deserialize, Serialize};
use tally_core::event::PrivacyMode;

use crate::error::AgentError;
use crate::home::Home;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    pub server: String,
    pub agent_token: String,
    pub agent_id: String,
    pub team_id: String,
    pub developer_id: String,
    pub salt: String,
    /// The team's mode, as the server last said.
    pub privacy_mode: PrivacyMode,
    /// This machine's ceiling (`tally install --max-mode`): the agent never
    /// sends more than it permits, whatever the team's mode. `None` = no ceiling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_mode: Option<PrivacyMode>,
    /// The team's burst capacity (`/v1/agent/config`): batches never hold
    /// more events. `None` from servers that do not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_capacity: Option<u64>,
    /// The oldest agent the server supports (`/v1/agent/config`), so
    /// `tally status` can say when to run `tally update`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_agent_version: Option<String>,
    /// Seconds between uploads in watch mode (`/v1/agent/config`). `None`
    /// from servers that do not say: those get an upload every cycle, as
    /// before the interval existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ship_interval_s: Option<u64>,
    /// Which path counts this developer's Claude Code and Codex usage
    /// (`/v1/agent/config`): requests the OTLP export counts are skipped.
    /// `None` from servers that do not say: everything ships.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_path: Option<tally_core::source_path::SourcePath>,
    /// What was sent as the hostname at enrolment (a hash unless
    /// `--send-hostname`), for `tally preview` and `tally status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname_sent: Option<String>,
    /// Requests before this instant are history and are not shipped.
    pub ship_since_ms: i64,
    #[serde(default = "default_ollama_url")]
    pub ollama_url: String,
    #[serde(default = "default_ollama_model")]
    pub ollama_model: String,
    /// Bound of the encrypted outbox; new events wait (nothing is dropped) beyond it.
    #[serde(default = "default_outbox_max")]
    pub outbox_max_bytes: u64,
}

fn default_outbox_max() -> u64 {
    crate::outbox::DEFAULT_MAX_BYTES
}

pub fn default_ollama_url() -> String {
    "http://localhost:11434".into()
}

pub fn default_ollama_model() -> String {
    "llama3.1:8b".into()
}

/// Modes from least to most that leaves the machine.
pub fn openness(m: PrivacyMode) -> u8 {
    match m {
        PrivacyMode::Off => 0,
        PrivacyMode::CategorizeLocal => 1,
        PrivacyMode::CategorizeCloud => 2,
        PrivacyMode::Full => 3,
    }
}

/// The stricter of two modes.
pub fn stricter(a: PrivacyMode, b: PrivacyMode) -> PrivacyMode {
    if openness(a) <= openness(b) {
        a
    } else {
        b
    }
}

/// The hosts an `http://` server may have: this machine only.
pub fn is_loopback_host(host: &str) -> bool {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    if h == "localhost" || h.ends_with(".localhost") {
        return true;
    }
    let bare = h.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

/// `https://` anywhere, `http://` only to a loopback address: an agent token
/// and (in some modes) prompt text must never cross a network in clear.
pub fn check_server_url(server: &str) -> Result<(), AgentError> {
    let bad = || AgentError::BadServerUrl {
        server: server.to_string(),
    };
    let lower = server.to_ascii_lowercase();
    if lower.starts_with("https://") {
        return Ok(());
    }
    let rest = lower.strip_prefix("http://").ok_or_else(bad)?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let hostport = authority.rsplit('@').next().unwrap_or("");
    let host = if hostport.starts_with('[') {
        hostport
            .split(']')
            .next()
            .map(|h| format!("{h}]"))
            .unwrap_or_default()
    } else {
        hostport.split(':').next().unwrap_or("").to_string()
    };
    if host.is_empty() {
        return Err(bad());
    }
    if is_loopback_host(&host) {
        Ok(())
    } else {
        Err(AgentError::InsecureServer {
            server: server.to_string(),
        })
    }
}

impl Config {
    /// True when the developer's OTLP export, not this agent, counts a
    /// request of `agent` made at `ts` (`core::source_path`).
    pub fn counted_by_otlp(&self, agent: tally_core::event::AgentKind, ts: i64) -> bool {
        use tally_core::source_path::{covers, Path};
        covers(agent)
            && self
                .source_path
                .as_ref()
                .is_some_and(|s| s.path_at(ts) == Path::Otlp)
    }

    /// What the agent sends under: the stricter of the team's mode and this
    /// machine's ceiling.
    pub fn effective_mode(&self) -> PrivacyMode {
        match self.max_mode {
            Some(ceiling) => stricter(self.privacy_mode, ceiling),
            None => self.privacy_mode,
        }
    }

    /// Most events in one batch: the wire limit, or the team's burst
    /// capacity when that is smaller (a larger batch could never be admitted).
    pub fn batch_events(&self) -> usize {
        let wire = tally_core::wire::MAX_BATCH_EVENTS;
        match self.rate_capacity {
            Some(c) => (c.max(1) as usize).min(wire),
            None => wire,
        }
    }

    /// How long `tally run` lets queued events gather before uploading them:
    /// `TALLY_SHIP_INTERVAL_S` (tests and benchmarks) over the team's
    /// interval; `None` = upload every cycle.
    pub fn ship_interval(&self) -> Option<std::time::Duration> {
        std::env::var("TALLY_SHIP_INTERVAL_S")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .or(self.ship_interval_s)
            .filter(|&s| s > 0)
            .map(std::time::Duration::from_secs)
    }

    /// `TALLY_OLLAMA_URL` / `TALLY_OLLAMA_MODEL` override the enrolled values.
    pub fn ollama(&self) -> (String, String) {
        (
            std::env::var("TALLY_OLLAMA_URL").unwrap_or_else(|_| self.ollama_url.clone()),
            std::env::var("TALLY_OLLAMA_MODEL").unwrap_or_else(|_| self.ollama_model.clone()),
        )
    }

    pub fn load(home: &Home) -> Result<Config, AgentError> {
        let path = home.config();
        let text = std::fs::read_to_string(&path).map_err(|source| AgentError::NotEnrolled {
            path: path.clone(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|source| AgentError::Corrupt { path, source })
    }

    /// The configuration when enrolled, `None` when not; a config file that
    /// exists but cannot be read is still an error.
    pub fn load_if_enrolled(home: &Home) -> Result<Option<Config>, AgentError> {
        match Config::load(home) {
            Ok(c) => Ok(Some(c)),
            Err(_) if !home.config().exists() => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn save(&self, home: &Home) -> Result<(), AgentError> {
        let bytes = serde_json::to_vec_pretty(self).map_err(AgentError::serialize("config"))?;
        home.write_private(&home.config(), &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_only_to_loopback() {
        for ok in [
            "https://tally.example.com",
            "HTTPS://x",
            "http://127.0.0.1:8787",
            "http://127.8.9.10",
            "http://localhost:1/",
            "http://LOCALHOST",
            "http://[::1]:8787/x",
            "http://user:pw@127.0.0.1",
        ] {
            assert!(check_server_url(ok).is_ok(), "{ok}");
        }
        for insecure in [
            "http://tally.example.com",
            "http://10.0.0.1:8787",
            "http://128.0.0.1",
            "http://[::2]",
            "http://localhost.evil.com",
            "http://127.0.0.1@evil.com",
        ] {
            let e = check_server_url(insecure).unwrap_err().to_string();
            assert!(e.contains("https://"), "{insecure}: {e}");
            assert!(matches!(
                check_server_url(insecure),
                Err(AgentError::InsecureServer { .. })
            ));
        }
        assert!(matches!(
            check_server_url("ftp://x"),
            Err(AgentError::BadServerUrl { .. })
        ));
    }

    #[test]
    fn the_ceiling_wins_when_stricter() {
        use PrivacyMode::*;
        assert_eq!(stricter(Full, Off), Off);
        assert_eq!(stricter(CategorizeLocal, CategorizeCloud), CategorizeLocal);
        assert_eq!(stricter(Full, CategorizeCloud), CategorizeCloud);
        for a in PrivacyMode::ALL {
            for b in PrivacyMode::ALL {
                assert_eq!(stricter(a, b), stricter(b, a));
                assert!(openness(stricter(a, b)) <= openness(a).min(openness(b)));
            }
        }
    }
}
