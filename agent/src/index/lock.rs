//! An exclusive advisory lock on a file, released on drop: two `tally`
//! processes never update the index or the outbox at once.

use std::path::Path;

use crate::error::AgentError;

pub struct Lock(std::fs::File);

impl Lock {
    /// `Ok(None)` when another process holds the lock and `wait` is false.
    pub fn acquire(path: &Path, wait: bool) -> Result<Option<Lock>, AgentError> {
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::OpenOptionsExt;
        if let Some(d) = path.parent() {
            crate::home::create_private_dir(d)?;
        }
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            // Empty, but private like every other state file; never through a link.
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .map_err(|e| AgentError::io("opening", path, e))?;
        let op = if wait {
            libc::LOCK_EX
        } else {
            libc::LOCK_EX | libc::LOCK_NB
        };
        // SAFETY: flock on a descriptor this function owns.
        let rc = unsafe { libc::flock(f.as_raw_fd(), op) };
        if rc == 0 {
            return Ok(Some(Lock(f)));
        }
        let err = std::io::Error::last_os_error();
        if err.kind() == std::io::ErrorKind::WouldBlock {
            return Ok(None);
        }
        Err(AgentError::io("locking", path, err))
    }

    /// Releases before the end of the scope (the descriptor closing is what
    /// releases an flock).
    pub fn release(self) {
        drop(self.0)
    }
}
