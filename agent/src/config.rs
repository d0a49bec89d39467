//! Where the agent keeps its state, and the enrolled configuration.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tally_core::event::PrivacyMode;

/// `TALLY_HOME` (tests, several enrolments on one machine) else `~/.config/tally`.
pub fn home() -> PathBuf {
    if let Some(h) = std::env::var_os("TALLY_HOME") {
        return PathBuf::from(h);
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".config")
        });
    base.join("tally")
}

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

    pub fn path(home: &Path) -> PathBuf {
        home.join("config.json")
    }

    pub fn load(home: &Path) -> Result<Config, String> {
        let p = Config::path(home);
        let text = std::fs::read_to_string(&p).map_err(|e| {
            format!(
                "not enrolled ({}: {e}); run `tally install --server URL --token TOKEN`",
                p.display()
            )
        })?;
        serde_json::from_str(&text).map_err(|e| format!("{} is corrupt: {e}", p.display()))
    }

    pub fn save(&self, home: &Path) -> Result<(), String> {
        write_private(
            &Config::path(home),
            &serde_json::to_vec_pretty(self).map_err(|e| e.to_string())?,
        )
    }
}

/// Writes a file readable only by the user, atomically (temp file, fsync, rename),
/// so a crash never leaves a half-written credential or checkpoint behind.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().ok_or("path has no parent")?;
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| format!("writing {}: {e}", tmp.display()))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| format!("writing {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("renaming to {}: {e}", path.display()))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
