//! `tally update`: runs the enrolled server's installer in update mode. The
//! installer downloads the server's current release, checks its SHA-256,
//! replaces this binary in place and restarts the service if one is
//! installed — the same code path as the first install, so an update cannot
//! drift from it.

use std::io::Write;
use std::process::{Command, Stdio};

use tally::config::Config;
use tally::error::AgentError;
use tally::home::Home;

pub fn update() -> Result<(), AgentError> {
    let home = Home::from_env();
    let cfg = Config::load(&home)?;
    tally::config::check_server_url(&cfg.server)?;
    let url = format!("{}/install.sh", cfg.server);
    let script = tally::upload::agent()
        .get(&url)
        .call()
        .map_err(|e| AgentError::Unavailable {
            server: cfg.server.clone(),
            detail: format!("fetching {url}: {e}"),
        })?
        .into_string()
        .map_err(|e| AgentError::Unavailable {
            server: cfg.server.clone(),
            detail: format!("reading {url}: {e}"),
        })?;
    let exe = std::env::current_exe().map_err(AgentError::CurrentExe)?;
    let dir = exe
        .parent()
        .ok_or_else(|| AgentError::CurrentExe(std::io::Error::other("binary has no directory")))?;
    let mut child = Command::new("sh")
        .args(["-s", "--", "--update", "--dir"])
        .arg(dir)
        .stdin(Stdio::piped())
        .spawn()
        .map_err(|source| AgentError::Spawn {
            program: "sh".into(),
            source,
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(|source| AgentError::Spawn {
                program: "sh".into(),
                source,
            })?;
    }
    let status = child.wait().map_err(|source| AgentError::Spawn {
        program: "sh".into(),
        source,
    })?;
    if status.success() {
        Ok(())
    } else {
        Err(AgentError::CommandFailed {
            program: format!("{url} (installer)").into(),
            stderr: "see its messages above".into(),
        })
    }
}
