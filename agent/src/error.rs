//! Every way the agent can fail, with the file, server or program involved.
//!
//! The texts are what the user reads after `tally: ` (or in `tally status`
//! and `tally doctor`), so each one says what went wrong and, where the user
//! can act, what to do.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// A filesystem operation (`op` is "reading", "creating", ...) failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("path {} has no parent directory", path.display())]
    NoParent { path: PathBuf },
    #[error("not enrolled ({}: {source}); run `tally install --server URL --token TOKEN`", path.display())]
    NotEnrolled {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is corrupt: {source}", path.display())]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// Serializing `what` failed (only possible for values JSON cannot hold).
    #[error("{source}")]
    Serialize {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },

    // The outbox key.
    #[error("disabled by TALLY_KEYRING=off")]
    KeychainDisabled,
    #[error("{source}")]
    Keychain {
        #[source]
        source: keyring::Error,
    },
    #[error("the keychain returned a different key")]
    KeychainMismatch,
    #[error("stored key is invalid: {source}")]
    InvalidKey {
        #[source]
        source: hex::FromHexError,
    },
    /// `purpose` is empty or starts with a space (" for the key").
    /// (getrandom 0.2's error is not a `std::error::Error` without its `std`
    /// feature, so it is shown but not chained.)
    #[error("no randomness{purpose}: {cause}")]
    NoRandomness {
        purpose: &'static str,
        cause: getrandom::Error,
    },

    // Local state.
    #[error("index lock busy")]
    LockBusy { path: PathBuf },
    #[error("outbox record {seq} in {} cannot be decrypted (wrong key or tampered)", path.display())]
    Undecryptable { seq: u64, path: PathBuf },
    #[error("outbox record {seq} is not a batch: {source}")]
    NotABatch {
        seq: u64,
        #[source]
        source: serde_json::Error,
    },

    // Command-line values.
    #[error("unknown time zone {name:?}: use an IANA name such as Europe/Berlin, UTC or local")]
    UnknownTimeZone { name: String },
    #[error("{flag} {value:?} is not a date: expected YYYY-MM-DD")]
    BadDate { flag: String, value: String },
    #[error("--since is after --until")]
    SinceAfterUntil,
    #[error("--server {server:?} must be an https:// URL")]
    BadServerUrl { server: String },
    #[error("refusing to talk to {server} over plain http: the agent token and usage would cross the network unencrypted. Use an https:// URL (http:// is allowed only for 127.0.0.0/8, ::1 and localhost), then run `tally install --server https://… --token …`")]
    InsecureServer { server: String },
    #[error("--backfill {days}: at most {max} days of history can be shipped (the server refuses older events)")]
    BackfillTooLong { days: u32, max: u32 },
    #[error("no place for the outbox key: the OS keychain is unusable ({keychain}) and the key file {} cannot be written ({file_error}). Start a keychain (Secret Service, e.g. gnome-keyring) or make {} writable, then retry.", file.display(), file.parent().map(|p| p.display().to_string()).unwrap_or_default())]
    NoKeyStorage {
        keychain: String,
        file: PathBuf,
        file_error: String,
    },

    // Enrolment.
    #[error("enrolment refused (HTTP {code}): {body}. Install tokens are single-use and expire after 7 days; ask your admin for a new one.")]
    EnrolRefused {
        server: String,
        code: u16,
        body: String,
    },
    #[error("unreadable enrolment answer: {source}")]
    EnrolAnswer {
        server: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot reach {server}: {source}")]
    Unreachable {
        server: String,
        #[source]
        source: Box<ureq::Error>,
    },

    // Talking to the team server after enrolment.
    /// 401/403: retrying cannot help; the user must act.
    #[error("the server refused this agent's credentials ({detail}). Ask a team admin for a new install token and run `tally install --server URL --token TOKEN` again; queued usage is kept and sent after that.")]
    Auth { server: String, detail: String },
    /// 410: the team's owner deleted the team; uploads stop for good.
    #[error("the team was deleted by its owner ({detail}). Uploads have stopped; queued usage stays on this machine. Run `tally uninstall`, or `tally install` with a token of another team.")]
    TeamDeleted { server: String, detail: String },
    /// 400/413: the server refused this batch as invalid (or, for
    /// `batch_exceeds_rate_capacity`, as larger than the team's burst).
    #[error("the server rejected a batch: {detail}")]
    Rejected {
        server: String,
        /// The HTTP status.
        status: u16,
        /// The answer's `error` code, e.g. `invalid_batch`.
        code: Option<String>,
        /// The answer's `message`, else the whole answer.
        detail: String,
    },
    /// Network trouble or 5xx after all attempts: keep the data, try later.
    #[error("server unavailable, will retry later: {detail}")]
    Unavailable { server: String, detail: String },
    /// A local problem that stopped a cycle; like `Unavailable`, the data
    /// stays queued and the next cycle tries again.
    #[error("server unavailable, will retry later: {0}")]
    RetryLater(#[source] Box<AgentError>),

    // The developer self-view (`tally dashboard`).
    #[error(
        "too many self-view links were asked for from this agent; try again in {retry_after_s} s"
    )]
    SelfViewLimited { retry_after_s: u64 },
    #[error("the server could not open your self-view: {detail}")]
    SelfView { server: String, detail: String },

    // The background service.
    #[error("locating the tally binary: {0}")]
    CurrentExe(#[source] std::io::Error),
    #[error("cannot run {program:?}: {source}")]
    Spawn {
        program: OsString,
        #[source]
        source: std::io::Error,
    },
    #[error("{program:?} failed: {stderr}")]
    CommandFailed { program: OsString, stderr: String },

    // Commands.
    #[error("file watching unavailable: {0}")]
    Watch(#[source] notify::Error),
    #[error("writing {what}: {source}")]
    Generate {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("some checks failed")]
    ChecksFailed,
}

impl AgentError {
    pub fn io(op: &'static str, path: &Path, source: std::io::Error) -> AgentError {
        AgentError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }

    /// For a local failure during an upload: it is reported like a network
    /// failure because the remedy is the same (wait; nothing is lost).
    pub fn retry_later(self) -> AgentError {
        AgentError::RetryLater(Box::new(self))
    }

    pub fn serialize(what: &'static str) -> impl FnOnce(serde_json::Error) -> AgentError {
        move |source| AgentError::Serialize { what, source }
    }
}
