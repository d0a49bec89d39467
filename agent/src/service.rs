//! Running `tally run` in the background: a systemd user unit on Linux, a
//! launchd agent on macOS.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::AgentError;
use crate::home::{config_base, user_home, Home};

pub const UNIT: &str = "tally.service";
pub const LABEL: &str = "dev.tally.agent";

pub fn unit_path() -> PathBuf {
    if cfg!(target_os = "macos") {
        user_home().join(format!("Library/LaunchAgents/{LABEL}.plist"))
    } else {
        config_base().join("systemd/user").join(UNIT)
    }
}

fn quote(p: &Path) -> String {
    // systemd splits ExecStart on whitespace unless quoted.
    format!("\"{}\"", p.display().to_string().replace('"', "\\\""))
}

/// Where the macOS agent writes its output (launchd has no journal); the
/// agent rotates it (`tally run --log-file`).
pub fn mac_log_path() -> PathBuf {
    user_home().join("Library/Logs/tally/agent.log")
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The launchd property list. `ExitTimeOut` gives the SIGTERM flush the
/// same 30 s systemd gets before the hard kill.
pub fn plist_text(exe: &Path, home: Option<&Path>, log: &Path) -> String {
    let env = home
        .map(|h| {
            format!(
                "  <key>EnvironmentVariables</key>\n  <dict><key>TALLY_HOME</key><string>{}</string></dict>\n",
                xml(&h.display().to_string())
            )
        })
        .unwrap_or_default();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n<plist version=\"1.0\">\n<dict>\n  <key>Label</key><string>{LABEL}</string>\n  <key>ProgramArguments</key>\n  <array><string>{}</string><string>run</string><string>--log-file</string><string>{}</string></array>\n{env}  <key>RunAtLoad</key><true/>\n  <key>KeepAlive</key><true/>\n  <key>ExitTimeOut</key><integer>30</integer>\n  <key>ProcessType</key><string>Background</string>\n</dict>\n</plist>\n",
        xml(&exe.display().to_string()),
        xml(&log.display().to_string()),
    )
}

/// The systemd user unit. Output goes to the journal (which rotates and
/// caps it); `TimeoutStopSec` bounds the flush `tally run` does on SIGTERM
/// before systemd kills it — the outbox survives that kill.
pub fn systemd_text(exe: &Path, home: Option<&Path>) -> String {
    let env = home
        .map(|h| format!("Environment=TALLY_HOME={}\n", quote(h)))
        .unwrap_or_default();
    format!(
        "[Unit]\nDescription=Tally agent: ships AI coding-agent usage to your team\nAfter=network-online.target\nWants=network-online.target\n\n[Service]\nType=exec\nExecStart={} run\n{env}Restart=on-failure\nRestartSec=30\nKillSignal=SIGTERM\nTimeoutStopSec=30\nStandardOutput=journal\nStandardError=journal\nSyslogIdentifier=tally\nNice=10\n\n[Install]\nWantedBy=default.target\n",
        quote(exe)
    )
}

pub fn unit_text(exe: &Path, home: Option<&Path>) -> String {
    if cfg!(target_os = "macos") {
        plist_text(exe, home, &mac_log_path())
    } else {
        systemd_text(exe, home)
    }
}

fn run(cmd: &mut Command) -> Result<(), AgentError> {
    let out = cmd.output().map_err(|source| AgentError::Spawn {
        program: cmd.get_program().to_owned(),
        source,
    })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(AgentError::CommandFailed {
            program: cmd.get_program().to_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// Writes the unit and (unless `start` is false) enables and starts it.
pub fn install(start: bool) -> Result<String, AgentError> {
    let exe = std::env::current_exe().map_err(AgentError::CurrentExe)?;
    // Only an explicit state directory is written into the unit; the default
    // one is found again from the service's own environment.
    let home = Home::env_override();
    let path = unit_path();
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(|e| AgentError::io("creating", d, e))?;
    }
    let existed = path.exists();
    std::fs::write(&path, unit_text(&exe, home.as_deref()))
        .map_err(|e| AgentError::io("writing", &path, e))?;
    if !start {
        return Ok(format!("wrote {} (not started)", path.display()));
    }
    let started = start_unit(&path);
    if started.is_err() && !existed {
        // No service manager to run it (a container, no user session): a
        // unit left behind would make `service status` claim a service.
        let _ = std::fs::remove_file(&path);
    }
    started?;
    Ok(format!("installed and started {}", path.display()))
}

fn start_unit(path: &Path) -> Result<(), AgentError> {
    // Restart rather than start: after `tally update` the running service
    // must pick up the new binary.
    if cfg!(target_os = "macos") {
        let _ = run(Command::new("launchctl").arg("unload").arg(path));
        run(Command::new("launchctl").arg("load").arg("-w").arg(path))?;
    } else {
        run(Command::new("systemctl").args(["--user", "daemon-reload"]))?;
        run(Command::new("systemctl").args(["--user", "enable", UNIT]))?;
        run(Command::new("systemctl").args(["--user", "restart", UNIT]))?;
    }
    Ok(())
}

pub fn uninstall() -> Result<Option<String>, AgentError> {
    let path = unit_path();
    if !path.exists() {
        return Ok(None);
    }
    // Stopping can fail when the service manager is absent; removing the
    // file still prevents the next start.
    if cfg!(target_os = "macos") {
        let _ = run(Command::new("launchctl").arg("unload").arg("-w").arg(&path));
    } else {
        let _ = run(Command::new("systemctl").args(["--user", "disable", "--now", UNIT]));
    }
    std::fs::remove_file(&path).map_err(|e| AgentError::io("removing", &path, e))?;
    if !cfg!(target_os = "macos") {
        let _ = run(Command::new("systemctl").args(["--user", "daemon-reload"]));
    }
    Ok(Some(path.display().to_string()))
}

/// What `tally service status` reports.
#[derive(Debug, serde::Serialize)]
pub struct ServiceStatus {
    pub unit: String,
    pub installed: bool,
    /// The unit starts this very binary (a moved or upgraded binary leaves
    /// a unit that starts nothing, or an old copy).
    pub runs_this_binary: bool,
    /// The service manager's word (`active`, `inactive`, `failed`, …), or
    /// why it could not be asked.
    pub state: String,
    pub log: String,
}

pub fn status() -> Result<ServiceStatus, AgentError> {
    let path = unit_path();
    let exe = std::env::current_exe().map_err(AgentError::CurrentExe)?;
    let text = std::fs::read_to_string(&path).ok();
    let installed = text.is_some();
    let runs_this_binary = text.as_deref().is_some_and(|t| {
        if cfg!(target_os = "macos") {
            t.contains(&format!(
                "<string>{}</string>",
                xml(&exe.display().to_string())
            ))
        } else {
            t.lines()
                .any(|l| l == format!("ExecStart={} run", quote(&exe)))
        }
    });
    let asked = if cfg!(target_os = "macos") {
        Command::new("launchctl").args(["list", LABEL]).output()
    } else {
        Command::new("systemctl")
            .args(["--user", "is-active", UNIT])
            .output()
    };
    let state = match asked {
        Ok(o) if cfg!(target_os = "macos") => if o.status.success() {
            "loaded"
        } else {
            "not loaded"
        }
        .to_string(),
        Ok(o) => {
            let out = String::from_utf8_lossy(&o.stdout).trim().to_string();
            if out.is_empty() {
                format!("unknown ({})", String::from_utf8_lossy(&o.stderr).trim())
            } else {
                out
            }
        }
        Err(e) => format!("unknown (no service manager: {e})"),
    };
    let log = if cfg!(target_os = "macos") {
        mac_log_path().display().to_string()
    } else {
        format!("journalctl --user -u {UNIT}")
    };
    Ok(ServiceStatus {
        unit: path.display().to_string(),
        installed,
        runs_this_binary,
        state,
        log,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_os = "linux")]
    fn systemd_unit_runs_this_binary_with_its_state_dir() {
        let t = systemd_text(
            Path::new("/opt/my tools/tally"),
            Some(Path::new("/home/a/.tally")),
        );
        assert!(t.contains("ExecStart=\"/opt/my tools/tally\" run\n"), "{t}");
        assert!(t.contains("Environment=TALLY_HOME=\"/home/a/.tally\"\n"));
        assert!(t.contains("WantedBy=default.target"));
        let plain = systemd_text(Path::new("/usr/bin/tally"), None);
        assert!(!plain.contains("Environment="));
    }

    /// systemd's own checker accepts the unit (unknown keys, a relative or
    /// missing ExecStart, bad values all make it complain).
    #[test]
    #[cfg(target_os = "linux")]
    fn systemd_analyze_verifies_the_unit() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("bin dir/tally");
        std::fs::create_dir_all(exe.parent().unwrap()).unwrap();
        std::fs::write(&exe, "#!/bin/sh\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        let verify = |text: &str| {
            let unit = dir.path().join(UNIT);
            std::fs::write(&unit, text).unwrap();
            let out = Command::new("systemd-analyze")
                .arg("verify")
                .arg(&unit)
                .output()
                .expect(
                    "systemd-analyze (Debian package systemd; `cargo xtask setup` installs it)",
                );
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        };
        let good = systemd_text(&exe, Some(Path::new("/home/a b/.tally")));
        assert_eq!(verify(&good), (true, String::new()));
        // The checker is not a rubber stamp: the same unit with a typo fails.
        let (_, complaint) = verify(&good.replace("TimeoutStopSec", "TimeoutStopSecs"));
        assert!(complaint.contains("Unknown key"), "{complaint}");
        let (ok, _) = verify(&good.replace(&exe.display().to_string(), "/nonexistent/tally"));
        assert!(!ok);
    }

    /// The launchd plist is a valid property list with the arguments and
    /// environment intact (checked with Python's plistlib, a real parser).
    #[test]
    fn the_plist_parses_with_arguments_and_environment() {
        let t = plist_text(
            Path::new("/Users/a&b/bin/tally"),
            Some(Path::new("/Users/a&b/.tally")),
            Path::new("/Users/a&b/Library/Logs/tally/agent.log"),
        );
        let mut child = Command::new("python3")
            .args([
                "-c",
                "import json,plistlib,sys; print(json.dumps(plistlib.loads(sys.stdin.buffer.read())))",
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3");
        use std::io::Write;
        child.stdin.take().unwrap().write_all(t.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{t}");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "Label": LABEL,
                "ProgramArguments": ["/Users/a&b/bin/tally", "run", "--log-file",
                                     "/Users/a&b/Library/Logs/tally/agent.log"],
                "EnvironmentVariables": {"TALLY_HOME": "/Users/a&b/.tally"},
                "RunAtLoad": true, "KeepAlive": true, "ExitTimeOut": 30,
                "ProcessType": "Background"
            })
        );
    }
}
