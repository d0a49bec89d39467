//! `tally run --log-file`: where the agent's output goes when no journal
//! collects it (launchd on macOS). launchd neither rotates nor caps a log, so
//! the agent does: once the file passes `max` bytes it becomes `<file>.1`
//! (replacing the previous one) and writing starts afresh — at most twice
//! `max` on disk, whatever the uptime.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use crate::error::AgentError;

/// Rotation size of the service log.
pub const MAX_BYTES: u64 = 8 << 20;

pub struct LogFile {
    path: PathBuf,
    max: u64,
    /// Descriptors that point at the log (stdout and stderr for the service).
    #[cfg(unix)]
    targets: Vec<std::os::fd::RawFd>,
}

fn open(path: &Path) -> Result<File, AgentError> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(|e| AgentError::io("creating", d, e))?;
    }
    let mut o = OpenOptions::new();
    o.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Log lines name files and servers; they are the developer's alone.
        o.mode(0o600);
    }
    o.open(path).map_err(|e| AgentError::io("opening", path, e))
}

impl LogFile {
    /// Sends the process's stdout and stderr to `path`.
    #[cfg(unix)]
    pub fn redirect_std(path: &Path) -> Result<LogFile, AgentError> {
        LogFile::redirect(path, MAX_BYTES, vec![1, 2])
    }

    #[cfg(not(unix))]
    pub fn redirect_std(path: &Path) -> Result<LogFile, AgentError> {
        // Windows services log through the event log; a plain file is kept
        // only so the flag is accepted everywhere.
        open(path)?;
        Ok(LogFile {
            path: path.to_path_buf(),
            max: MAX_BYTES,
        })
    }

    #[cfg(unix)]
    pub fn redirect(
        path: &Path,
        max: u64,
        targets: Vec<std::os::fd::RawFd>,
    ) -> Result<LogFile, AgentError> {
        let log = LogFile {
            path: path.to_path_buf(),
            max,
            targets,
        };
        log.rotate_if_needed()?;
        log.point_targets()?;
        Ok(log)
    }

    #[cfg(unix)]
    fn point_targets(&self) -> Result<(), AgentError> {
        use std::os::fd::AsRawFd;
        let f = open(&self.path)?;
        for &fd in &self.targets {
            // SAFETY: dup2 onto descriptors this process owns; the new one
            // stays open after `f` drops because dup2 made a copy.
            if unsafe { libc::dup2(f.as_raw_fd(), fd) } < 0 {
                return Err(AgentError::io(
                    "redirecting output to",
                    &self.path,
                    std::io::Error::last_os_error(),
                ));
            }
        }
        Ok(())
    }

    fn rotate_if_needed(&self) -> Result<bool, AgentError> {
        let len = match std::fs::metadata(&self.path) {
            Ok(m) => m.len(),
            Err(_) => return Ok(false),
        };
        if len < self.max {
            return Ok(false);
        }
        let old = self.old_path();
        std::fs::rename(&self.path, &old).map_err(|e| AgentError::io("rotating", &self.path, e))?;
        Ok(true)
    }

    pub fn old_path(&self) -> PathBuf {
        let mut s = self.path.clone().into_os_string();
        s.push(".1");
        PathBuf::from(s)
    }

    /// Called between cycles: rotates once the log passed its size.
    pub fn maintain(&self) -> Result<(), AgentError> {
        if self.rotate_if_needed()? {
            #[cfg(unix)]
            self.point_targets()?;
        }
        Ok(())
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn the_log_rotates_at_its_size_and_keeps_one_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs/agent.log");
        // A scratch descriptor stands in for stderr.
        let scratch = File::create(dir.path().join("scratch")).unwrap();
        let fd = scratch.as_raw_fd();
        let log = LogFile::redirect(&path, 100, vec![fd]).unwrap();
        let write = |s: &str| {
            // SAFETY: writing to the scratch descriptor this test owns.
            let n = unsafe { libc::write(fd, s.as_ptr().cast(), s.len()) };
            assert_eq!(n, s.len() as isize);
        };
        write(&"a".repeat(60));
        log.maintain().unwrap();
        assert!(!log.old_path().exists(), "under the size nothing rotates");
        write(&"b".repeat(60));
        log.maintain().unwrap();
        assert_eq!(
            std::fs::read_to_string(log.old_path()).unwrap(),
            format!("{}{}", "a".repeat(60), "b".repeat(60))
        );
        write("after");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "after");
        write(&"c".repeat(200));
        log.maintain().unwrap();
        // The second rotation replaces the first old file: two files at most.
        assert!(std::fs::read_to_string(log.old_path())
            .unwrap()
            .starts_with("afterccc"));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
        let mut names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["agent.log", "agent.log.1"]);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        drop(scratch);
    }
}
