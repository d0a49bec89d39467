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
    pub privacy_mode: PrivacyMode,
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

impl Config {
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
