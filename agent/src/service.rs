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

pub fn unit_text(exe: &Path, home: Option<&Path>) -> String {
    if cfg!(target_os = "macos") {
        let env = home
            .map(|h| format!("  <key>EnvironmentVariables</key>\n  <dict><key>TALLY_HOME</key><string>{}</string></dict>\n", h.display()))
            .unwrap_or_default();
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n<plist version=\"1.0\">\n<dict>\n  <key>Label</key><string>{LABEL}</string>\n  <key>ProgramArguments</key>\n  <array><string>{}</string><string>run</string></array>\n{env}  <key>RunAtLoad</key><true/>\n  <key>KeepAlive</key><true/>\n  <key>ProcessType</key><string>Background</string>\n</dict>\n</plist>\n",
            exe.display()
        )
    } else {
        let env = home
            .map(|h| format!("Environment=TALLY_HOME={}\n", quote(h)))
            .unwrap_or_default();
        format!(
            "[Unit]\nDescription=Tally agent: ships AI coding-agent usage to your team\nAfter=network-online.target\n\n[Service]\nExecStart={} run\n{env}Restart=on-failure\nRestartSec=30\nNice=10\n\n[Install]\nWantedBy=default.target\n",
            quote(exe)
        )
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
    std::fs::write(&path, unit_text(&exe, home.as_deref()))
        .map_err(|e| AgentError::io("writing", &path, e))?;
    if !start {
        return Ok(format!("wrote {} (not started)", path.display()));
    }
    if cfg!(target_os = "macos") {
        run(Command::new("launchctl").arg("load").arg("-w").arg(&path))?;
    } else {
        run(Command::new("systemctl").args(["--user", "daemon-reload"]))?;
        run(Command::new("systemctl").args(["--user", "enable", "--now", UNIT]))?;
    }
    Ok(format!("installed and started {}", path.display()))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_os = "linux")]
    fn systemd_unit_runs_this_binary_with_its_state_dir() {
        let t = unit_text(
            Path::new("/opt/my tools/tally"),
            Some(Path::new("/home/a/.tally")),
        );
        assert!(t.contains("ExecStart=\"/opt/my tools/tally\" run\n"), "{t}");
        assert!(t.contains("Environment=TALLY_HOME=\"/home/a/.tally\"\n"));
        assert!(t.contains("WantedBy=default.target"));
        let plain = unit_text(Path::new("/usr/bin/tally"), None);
        assert!(!plain.contains("Environment="));
    }
}
