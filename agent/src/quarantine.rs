//! Events the agent holds back instead of sending, kept on disk, encrypted
//! with the outbox key, and reported (`tally status`, `Tally-Quarantined`):
//!
//! - **quarantined**: one event the server rejected as invalid, isolated by
//!   bisecting its batch so the other events still ship;
//! - **given up**: a batch that could not be delivered within
//!   `RESEND_GIVE_UP_DAYS` of its first attempt. Resending it later could
//!   outlive the server's idempotency markers and count it twice, so it is
//!   set aside, loudly.
//!
//! Nothing here is ever deleted by the agent except by `tally uninstall`.

use serde::{Deserialize, Serialize};
use tally_core::seal::{open, seal, NONCE_LEN};

use crate::error::AgentError;
use crate::home::Home;

const MAGIC: &[u8; 4] = b"TQ01";
const AAD: &[u8] = b"tally-quarantine-v1";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Held {
    /// The outbox record the event came from.
    pub seq: u64,
    pub at_ms: i64,
    /// What the server said about it.
    pub error: String,
    pub event: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GaveUp {
    pub seq: u64,
    pub batch_id: String,
    pub first_attempt_ms: i64,
    pub at_ms: i64,
    /// The last error seen while trying.
    pub error: String,
    /// The events not yet delivered.
    pub events: Vec<serde_json::Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Quarantine {
    pub events: Vec<Held>,
    pub gave_up: Vec<GaveUp>,
}

impl Quarantine {
    pub fn load(home: &Home, key: &[u8; 32]) -> Result<Quarantine, AgentError> {
        let path = home.quarantine();
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Quarantine::default()),
            Err(e) => return Err(AgentError::io("reading", &path, e)),
        };
        let plain = bytes
            .strip_prefix(MAGIC)
            .and_then(|sealed| open(key, sealed, AAD).ok())
            .ok_or(AgentError::Undecryptable {
                seq: 0,
                path: path.clone(),
            })?;
        serde_json::from_slice(&plain).map_err(|source| AgentError::Corrupt { path, source })
    }

    pub fn save(&self, home: &Home, key: &[u8; 32]) -> Result<(), AgentError> {
        let plain = serde_json::to_vec(self).map_err(AgentError::serialize("the quarantine"))?;
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::getrandom(&mut nonce)
            .map_err(|cause| AgentError::NoRandomness { purpose: "", cause })?;
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&seal(key, nonce, &plain, AAD));
        home.write_private(&home.quarantine(), &out)
    }

    /// Events held back, both kinds: what `Tally-Quarantined` reports.
    pub fn count(&self) -> u64 {
        (self.events.len() + self.gave_up.iter().map(|g| g.events.len()).sum::<usize>()) as u64
    }

    pub fn quarantined(&self) -> usize {
        self.events.len()
    }

    pub fn given_up(&self) -> usize {
        self.gave_up.iter().map(|g| g.events.len()).sum()
    }

    /// The first reason, for `tally status`.
    pub fn first_error(&self) -> Option<String> {
        self.events
            .first()
            .map(|h| h.error.clone())
            .or_else(|| self.gave_up.first().map(|g| g.error.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_encrypted_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path());
        let key = [3u8; 32];
        assert_eq!(Quarantine::load(&home, &key).unwrap().count(), 0);
        let q = Quarantine {
            events: vec![Held {
                seq: 1,
                at_ms: 5,
                error: "events[0].model: bad".into(),
                event: serde_json::json!({"id": "secretive-event"}),
            }],
            gave_up: vec![GaveUp {
                seq: 2,
                batch_id: "b".into(),
                first_attempt_ms: 1,
                at_ms: 2,
                error: "down".into(),
                events: vec![serde_json::json!({}), serde_json::json!({})],
            }],
        };
        q.save(&home, &key).unwrap();
        let raw = std::fs::read(home.quarantine()).unwrap();
        assert!(!raw.windows(9).any(|w| w == b"secretive"));
        let back = Quarantine::load(&home, &key).unwrap();
        assert_eq!(back, q);
        assert_eq!(
            (back.count(), back.quarantined(), back.given_up()),
            (3, 1, 2)
        );
        assert_eq!(back.first_error().unwrap(), "events[0].model: bad");
        assert!(Quarantine::load(&home, &[4u8; 32]).is_err());
    }
}
