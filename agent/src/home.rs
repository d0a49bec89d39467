//! The state directory: the one place that knows what each file in it is
//! called, and the one writer of files that must never be half-written or
//! readable by others.
//!
//! Keeping every name here means a layout change (or a review of what the
//! agent leaves on disk) touches a single file.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::AgentError;

/// The user's home directory (`$HOME`), where the agents keep their logs.
pub fn user_home() -> PathBuf {
    PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
}

/// `$XDG_CONFIG_HOME`, else `~/.config`: the parent of the state directory
/// and of systemd user units alike.
pub fn config_base() -> PathBuf {
    std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| user_home().join(".config"))
}

/// Creates a directory (and missing parents) that only the user can list
/// (0700 from creation; existing directories are left as they are).
pub fn create_private_dir(dir: &Path) -> Result<(), AgentError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| AgentError::io("creating", dir, e))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    /// `TALLY_HOME` (tests, several enrolments on one machine) else `~/.config/tally`.
    pub fn from_env() -> Home {
        match Home::env_override() {
            Some(root) => Home { root },
            None => Home {
                root: config_base().join("tally"),
            },
        }
    }

    /// The explicit `TALLY_HOME`, which a background service must inherit.
    pub fn env_override() -> Option<PathBuf> {
        std::env::var_os("TALLY_HOME").map(PathBuf::from)
    }

    pub fn at(root: impl Into<PathBuf>) -> Home {
        Home { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The enrolment: server, credentials, privacy mode.
    pub fn config(&self) -> PathBuf {
        self.root.join("config.json")
    }

    /// What the last runs observed, for `status` and `doctor`.
    pub fn status(&self) -> PathBuf {
        self.root.join("status.json")
    }

    /// Every counted request and where reading of each log stopped.
    pub fn index(&self) -> PathBuf {
        self.root.join("index.bin")
    }

    /// Held while the index (and the outbox appends it records) changes.
    pub fn index_lock(&self) -> PathBuf {
        self.root.join("index.lock")
    }

    /// Held while batches are sent, so two processes never send at once.
    pub fn upload_lock(&self) -> PathBuf {
        self.root.join("upload.lock")
    }

    /// The outbox key when no OS keychain can hold it.
    pub fn key_file(&self) -> PathBuf {
        self.root.join("outbox.key")
    }

    pub fn outbox_dir(&self) -> PathBuf {
        self.root.join("outbox")
    }

    /// Events held back from the server (rejected ones, given-up batches),
    /// encrypted with the outbox key.
    pub fn quarantine(&self) -> PathBuf {
        self.root.join("quarantine.bin")
    }

    /// Which outbox records the server has acknowledged or rejected.
    pub fn outbox_done(&self) -> PathBuf {
        self.outbox_dir().join("done.json")
    }

    /// The outbox segment whose first record is `first`; zero-padded so the
    /// names sort in record order.
    pub fn outbox_segment(&self, first: u64) -> PathBuf {
        self.outbox_dir().join(format!("seg-{first:020}.log"))
    }

    /// The first record of a segment, from its file name (`None` for any
    /// other file in the outbox directory).
    pub fn outbox_segment_first(name: &str) -> Option<u64> {
        name.strip_prefix("seg-")?
            .strip_suffix(".log")?
            .parse()
            .ok()
    }

    /// Writes a file readable only by the user, atomically (temp file, fsync,
    /// rename), so a crash never leaves a half-written credential or
    /// checkpoint behind.
    ///
    /// The temp file is always created afresh (`O_CREAT|O_EXCL|O_NOFOLLOW`,
    /// mode 0600 from its first instant): whatever sits at its name (a file
    /// left by a crash, or something planted: a symlink, a world-readable
    /// file) is removed, never written through or reused. The rename replaces
    /// the target name itself, so a symlink there is replaced, not followed.
    pub fn write_private(&self, path: &Path, bytes: &[u8]) -> Result<(), AgentError> {
        debug_assert!(
            path.starts_with(&self.root),
            "{} is outside the state directory",
            path.display()
        );
        use std::os::unix::fs::OpenOptionsExt;
        let dir = path.parent().ok_or_else(|| AgentError::NoParent {
            path: path.to_path_buf(),
        })?;
        create_private_dir(dir)?;
        let mut name = path.file_name().unwrap_or_default().to_os_string();
        name.push(".tmp");
        let tmp = dir.join(name);
        let open = || {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(&tmp)
        };
        let mut f = match open() {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                // Unlinking removes a symlink itself, not its target.
                std::fs::remove_file(&tmp).map_err(|e| AgentError::io("removing", &tmp, e))?;
                open().map_err(|e| AgentError::io("creating", &tmp, e))?
            }
            Err(e) => return Err(AgentError::io("creating", &tmp, e)),
        };
        f.write_all(bytes)
            .and_then(|_| f.sync_all())
            .map_err(|e| AgentError::io("writing", &tmp, e))?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(|e| AgentError::io("renaming to", path, e))?;
        // The rename itself is durable only once the directory is synced.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn private_writes_replace_the_file_and_are_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path().join("state"));
        let p = home.config();
        home.write_private(&p, b"one").unwrap();
        home.write_private(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let mode = std::fs::metadata(&p).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(!dir.path().join("state/config.json.tmp").exists());
        let mode = std::fs::metadata(home.root()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "the state directory is private too");
    }

    /// The old writer opened `<file>.tmp` with O_CREAT|O_TRUNC: it wrote
    /// through a symlink planted there (into any file the user can write)
    /// and kept a planted world-readable file's permissions.
    #[test]
    fn private_writes_never_follow_or_reuse_what_is_planted() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path().join("state"));
        std::fs::create_dir_all(home.root()).unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let p = home.config();
        let tmp = home.root().join("config.json.tmp");

        // A symlink at the temp name.
        symlink(&victim, &tmp).unwrap();
        home.write_private(&p, b"one").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert_eq!(std::fs::read(&p).unwrap(), b"one");

        // A symlink at the target: replaced, not written through.
        std::fs::remove_file(&p).unwrap();
        symlink(&victim, &p).unwrap();
        home.write_private(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert!(!std::fs::symlink_metadata(&p)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read(&p).unwrap(), b"two");

        // A world-readable file at the temp name.
        std::fs::write(&tmp, b"planted").unwrap();
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o666)).unwrap();
        home.write_private(&p, b"three").unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(std::fs::read(&p).unwrap(), b"three");
    }

    #[test]
    fn outbox_segment_names_round_trip() {
        let home = Home::at("/s");
        let seg = home.outbox_segment(42);
        assert_eq!(seg, Path::new("/s/outbox/seg-00000000000000000042.log"));
        let name = seg.file_name().unwrap().to_str().unwrap();
        assert_eq!(Home::outbox_segment_first(name), Some(42));
        assert_eq!(Home::outbox_segment_first("done.json"), None);
    }
}
