//! Shipping batches to the edge: retries with backoff, honours Retry-After,
//! stops loudly on credentials problems, never drops data on network errors.

use std::time::Duration;

use serde::Deserialize;
use tally_core::event::{EventBatch, PrivacyMode};

#[derive(Debug)]
pub enum UploadError {
    /// 401/403: retrying cannot help; the user must act.
    Auth(String),
    /// 400/413: the server rejected the batch as malformed; a bug, reported verbatim.
    Rejected(String),
    /// Network trouble or 5xx after all attempts: keep the data, try later.
    Unavailable(String),
}

impl std::fmt::Display for UploadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UploadError::Auth(m) => write!(f, "the server refused this agent's credentials: {m}. Ask a team admin for a new install token and run `tally install` again."),
            UploadError::Rejected(m) => write!(f, "the server rejected a batch: {m}"),
            UploadError::Unavailable(m) => write!(f, "server unavailable, will retry later: {m}"),
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct Accepted {
    pub batch_id: String,
    pub accepted: usize,
    pub privacy_mode: PrivacyMode,
}

pub struct Uploader {
    agent: ureq::Agent,
    server: String,
    token: String,
    pub max_attempts: u32,
    pub base_delay: Duration,
}

fn jitter(max_ms: u64) -> u64 {
    let mut b = [0u8; 8];
    let _ = getrandom::getrandom(&mut b);
    u64::from_le_bytes(b) % max_ms.max(1)
}

impl Uploader {
    pub fn new(server: &str, token: &str) -> Uploader {
        Uploader {
            agent: ureq::AgentBuilder::new()
                .timeout_connect(Duration::from_secs(10))
                .timeout(Duration::from_secs(60))
                .build(),
            server: server.trim_end_matches('/').to_string(),
            token: token.to_string(),
            max_attempts: 6,
            base_delay: Duration::from_millis(500),
        }
    }

    pub fn send(&self, batch: &EventBatch) -> Result<Accepted, UploadError> {
        let body = serde_json::to_vec(batch).map_err(|e| UploadError::Rejected(e.to_string()))?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self
                .agent
                .post(&format!("{}/v1/events", self.server))
                .set("Authorization", &format!("Bearer {}", self.token))
                .set("Content-Type", "application/json")
                .send_bytes(&body);
            let wait = match result {
                Ok(resp) => {
                    return resp
                        .into_json::<Accepted>()
                        .map_err(|e| UploadError::Unavailable(format!("unreadable answer: {e}")))
                }
                Err(ureq::Error::Status(code @ (401 | 403), resp)) => {
                    return Err(UploadError::Auth(format!(
                        "HTTP {code}: {}",
                        resp.into_string().unwrap_or_default()
                    )))
                }
                Err(ureq::Error::Status(code @ (400 | 413), resp)) => {
                    return Err(UploadError::Rejected(format!(
                        "HTTP {code}: {}",
                        resp.into_string().unwrap_or_default()
                    )))
                }
                Err(ureq::Error::Status(code, resp)) => {
                    let retry_after = resp
                        .header("Retry-After")
                        .and_then(|v| v.trim().parse::<u64>().ok());
                    if attempt >= self.max_attempts {
                        return Err(UploadError::Unavailable(format!(
                            "HTTP {code} after {attempt} attempts"
                        )));
                    }
                    match (code, retry_after) {
                        (429 | 503, Some(s)) => {
                            Duration::from_secs(s) + Duration::from_millis(jitter(250))
                        }
                        _ => self.backoff(attempt),
                    }
                }
                Err(e) => {
                    if attempt >= self.max_attempts {
                        return Err(UploadError::Unavailable(format!(
                            "{e} after {attempt} attempts"
                        )));
                    }
                    self.backoff(attempt)
                }
            };
            std::thread::sleep(wait);
        }
    }

    /// Exponential with full jitter, capped at one minute.
    fn backoff(&self, attempt: u32) -> Duration {
        let cap = (self.base_delay.as_millis() as u64)
            .saturating_mul(1 << attempt.min(10))
            .min(60_000);
        Duration::from_millis(cap / 2 + jitter(cap / 2 + 1))
    }
}
