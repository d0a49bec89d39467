//! The `tally` agent as a library, so benches and tests drive the same code
//! as the binary.

pub mod config;
pub mod demo;
pub mod error;
pub mod home;
pub mod index;
pub mod keystore;
pub mod logfile;
pub mod ollama;
pub mod outbox;
pub mod progress;
pub mod quarantine;
pub mod report;
pub mod service;
pub mod ship;
pub mod source;
pub mod tail;
pub mod upload;

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
