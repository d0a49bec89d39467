//! Shipping batches to the edge: gzip, retries with exponential backoff and
//! jitter, honours Retry-After on 429/503, stops loudly on credential
//! problems, and never drops data on network errors (the outbox keeps it).
//! Every upload carries `Tally-Agent-Version` and `Tally-Quarantined` (the
//! events this agent holds back), which admins see per agent.

use std::io::Write;
use std::time::Duration;

use serde::Deserialize;
use tally_core::event::PrivacyMode;

use crate::error::AgentError;

#[derive(Debug, Deserialize)]
pub struct Accepted {
    pub batch_id: String,
    pub accepted: usize,
    pub privacy_mode: PrivacyMode,
    #[serde(default)]
    pub restricted: usize,
}

/// What the agent reports on every upload, besides the batch.
pub const AGENT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Sends one serialized batch; `quarantined` is how many events this agent
/// holds back (quarantined or given up), reported in `Tally-Quarantined`.
/// A trait so the upload logic (splitting, bisecting, giving up) is tested
/// without a network or a clock.
pub trait Transport {
    fn send(&self, body: &[u8], quarantined: u64) -> Result<Accepted, AgentError>;
}

impl Transport for Uploader {
    fn send(&self, body: &[u8], quarantined: u64) -> Result<Accepted, AgentError> {
        Uploader::send(self, body, quarantined)
    }
}

/// A 400/413 answer as a `Rejected` error: status, `error` code, message.
pub fn rejected(server: &str, status: u16, body: &str) -> AgentError {
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    let code = v["error"].as_str().map(str::to_string);
    // The edge names the field (and the event's index in the batch sent)
    // beside the message; the index means little once a batch is bisected,
    // so the field is kept and the index dropped.
    let detail = match (v["message"].as_str(), v["field"].as_str()) {
        (Some(m), Some(f)) if !m.contains(f) => {
            format!("HTTP {status} {}: {f}: {m}", code.as_deref().unwrap_or(""))
        }
        (Some(m), _) => format!("HTTP {status} {}: {m}", code.as_deref().unwrap_or("")),
        (None, _) => format!("HTTP {status}: {}", body.trim()),
    };
    AgentError::Rejected {
        server: server.to_string(),
        status,
        code,
        detail,
    }
}

pub struct Uploader {
    agent: ureq::Agent,
    server: String,
    token: String,
    pub max_attempts: u32,
    pub base_delay: Duration,
    /// Longest single wait, including a server's Retry-After.
    pub max_delay: Duration,
}

fn jitter(max_ms: u64) -> u64 {
    let mut b = [0u8; 8];
    let _ = getrandom::getrandom(&mut b);
    u64::from_le_bytes(b) % max_ms.max(1)
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// An HTTP error answer as users see it: the status and what the server said.
pub fn http_detail(code: u16, resp: ureq::Response) -> String {
    format!("HTTP {code}: {}", resp.into_string().unwrap_or_default())
}

pub fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(10))
        .timeout(Duration::from_secs(60))
        .build()
}

impl Uploader {
    pub fn new(server: &str, token: &str) -> Uploader {
        Uploader {
            agent: agent(),
            server: server.trim_end_matches('/').to_string(),
            token: token.to_string(),
            max_attempts: env_u64("TALLY_UPLOAD_ATTEMPTS").unwrap_or(6) as u32,
            base_delay: Duration::from_millis(env_u64("TALLY_RETRY_BASE_MS").unwrap_or(500)),
            max_delay: Duration::from_secs(env_u64("TALLY_RETRY_MAX_S").unwrap_or(300)),
        }
    }

    /// Sends one serialized `EventBatch`.
    pub fn send(&self, body: &[u8], quarantined: u64) -> Result<Accepted, AgentError> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let gzipped = gz
            .write_all(body)
            .and_then(|_| gz.try_finish())
            .map(|_| gz.get_ref().clone())
            .ok();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let req = self
                .agent
                .post(&format!("{}/v1/events", self.server))
                .set("Authorization", &format!("Bearer {}", self.token))
                .set("Content-Type", "application/json")
                .set("Tally-Agent-Version", AGENT_VERSION)
                .set("Tally-Quarantined", &quarantined.to_string());
            let result = match &gzipped {
                Some(z) => req.set("Content-Encoding", "gzip").send_bytes(z),
                None => req.send_bytes(body),
            };
            let wait = match result {
                Ok(resp) => {
                    return resp
                        .into_json::<Accepted>()
                        .map_err(|e| self.unavailable(format!("unreadable answer: {e}")))
                }
                Err(ureq::Error::Status(code @ (401 | 403), resp)) => {
                    return Err(AgentError::Auth {
                        server: self.server.clone(),
                        detail: http_detail(code, resp),
                    })
                }
                Err(ureq::Error::Status(410, resp)) => {
                    return Err(AgentError::TeamDeleted {
                        server: self.server.clone(),
                        detail: http_detail(410, resp),
                    })
                }
                Err(ureq::Error::Status(code @ (400 | 413), resp)) => {
                    return Err(rejected(
                        &self.server,
                        code,
                        &resp.into_string().unwrap_or_default(),
                    ))
                }
                Err(ureq::Error::Status(code, resp)) => {
                    let retry_after = resp
                        .header("Retry-After")
                        .and_then(|v| v.trim().parse::<u64>().ok());
                    if attempt >= self.max_attempts {
                        return Err(
                            self.unavailable(format!("HTTP {code} after {attempt} attempts"))
                        );
                    }
                    match (code, retry_after) {
                        (429 | 503, Some(s)) => (Duration::from_secs(s)
                            + Duration::from_millis(jitter(250)))
                        .min(self.max_delay),
                        _ => self.backoff(attempt),
                    }
                }
                Err(e) => {
                    if attempt >= self.max_attempts {
                        return Err(self.unavailable(format!("{e} after {attempt} attempts")));
                    }
                    self.backoff(attempt)
                }
            };
            std::thread::sleep(wait);
        }
    }

    fn unavailable(&self, detail: String) -> AgentError {
        AgentError::Unavailable {
            server: self.server.clone(),
            detail,
        }
    }

    /// Exponential, with jitter over the upper half, capped.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let cap = (self.base_delay.as_millis() as u64)
            .saturating_mul(1 << attempt.min(16))
            .min(self.max_delay.as_millis() as u64)
            .min(60_000);
        Duration::from_millis(cap / 2 + jitter(cap / 2 + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejections_name_the_field() {
        let e = rejected(
            "s",
            400,
            r#"{"error":"invalid_batch","index":3,"field":"ts","message":"more than 400 days in the past"}"#,
        );
        assert_eq!(
            e.to_string(),
            "the server rejected a batch: HTTP 400 invalid_batch: ts: more than 400 days in the past"
        );
        let e = rejected("s", 413, "too big");
        assert_eq!(
            e.to_string(),
            "the server rejected a batch: HTTP 413: too big"
        );
    }

    /// A deleted team answers 410: the agent stops at once and says why,
    /// instead of retrying.
    #[test]
    fn a_deleted_team_stops_uploads_with_a_clear_error() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            let body = r#"{"error":"team_deleted","message":"erased on 2026-12-29"}"#;
            let _ = write!(
                conn,
                "HTTP/1.1 410 Gone\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        });
        let u = Uploader::new(&format!("http://127.0.0.1:{port}"), "tly_agent_x");
        let e = u.send(b"{}", 0).unwrap_err();
        server.join().unwrap();
        assert!(matches!(e, AgentError::TeamDeleted { .. }), "{e:?}");
        let text = e.to_string();
        assert!(text.contains("deleted by its owner"), "{text}");
        assert!(text.contains("erased on 2026-12-29"), "{text}");
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let mut u = Uploader::new("http://127.0.0.1:9", "t");
        u.base_delay = Duration::from_millis(100);
        for _ in 0..50 {
            let d1 = u.backoff(1).as_millis();
            assert!((100..=200).contains(&d1), "{d1}");
            let d3 = u.backoff(3).as_millis();
            assert!((400..=800).contains(&d3), "{d3}");
            let d20 = u.backoff(20).as_millis();
            assert!((30_000..=60_000).contains(&d20), "{d20}");
        }
    }
}
