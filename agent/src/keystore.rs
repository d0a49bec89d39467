//! The outbox key: 256 random bits in the OS keychain, or, where there is
//! none (headless Linux, containers), in a 0600 file beside the outbox —
//! a degraded mode that `tally status` and `tally doctor` say out loud.

use std::path::PathBuf;

use crate::error::AgentError;
use crate::home::Home;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Storage {
    Keychain,
    KeyFile(PathBuf),
}

impl Storage {
    pub fn describe(&self) -> String {
        match self {
            Storage::Keychain => "OS keychain".into(),
            Storage::KeyFile(p) => format!("degraded: key file {}", p.display()),
        }
    }
    pub fn is_degraded(&self) -> bool {
        matches!(self, Storage::KeyFile(_))
    }
}

pub struct Key {
    pub bytes: [u8; 32],
    pub storage: Storage,
}

const SERVICE: &str = "dev.tally.agent";

/// One keychain entry per state directory, so two enrolments on one machine
/// (tests, several servers) never share or overwrite a key.
fn account(home: &Home) -> String {
    let abs = std::fs::canonicalize(home.root()).unwrap_or_else(|_| home.root().to_path_buf());
    format!("outbox-key:{}", abs.display())
}

fn keychain_disabled() -> bool {
    std::env::var("TALLY_KEYRING").is_ok_and(|v| v == "off")
}

fn keychain_entry(home: &Home) -> Result<keyring::Entry, AgentError> {
    if keychain_disabled() {
        return Err(AgentError::KeychainDisabled);
    }
    keyring::Entry::new(SERVICE, &account(home)).map_err(|source| AgentError::Keychain { source })
}

fn keychain_get(home: &Home) -> Result<Option<[u8; 32]>, AgentError> {
    match keychain_entry(home)?.get_password() {
        Ok(hex) => decode_key(&hex).map(Some),
        Err(keyring::Error::NoEntry) => Ok(None),
        Err(source) => Err(AgentError::Keychain { source }),
    }
}

fn keychain_set(home: &Home, key: &[u8; 32]) -> Result<(), AgentError> {
    let entry = keychain_entry(home)?;
    entry
        .set_password(&hex::encode(key))
        .map_err(|source| AgentError::Keychain { source })?;
    // Some stores accept a write they cannot read back (a session-only mock):
    // only a key that can be read again protects the outbox.
    match entry.get_password() {
        Ok(h) if decode_key(&h).ok() == Some(*key) => Ok(()),
        Ok(_) => Err(AgentError::KeychainMismatch),
        Err(source) => Err(AgentError::Keychain { source }),
    }
}

fn decode_key(hex: &str) -> Result<[u8; 32], AgentError> {
    let mut k = [0u8; 32];
    hex::decode_to_slice(hex.trim(), &mut k).map_err(|source| AgentError::InvalidKey { source })?;
    Ok(k)
}

/// The existing key, without creating one.
pub fn load(home: &Home) -> Result<Option<Key>, AgentError> {
    let file = home.key_file();
    if file.exists() {
        let text =
            std::fs::read_to_string(&file).map_err(|e| AgentError::io("reading", &file, e))?;
        return Ok(Some(Key {
            bytes: decode_key(&text)?,
            storage: Storage::KeyFile(file),
        }));
    }
    match keychain_get(home) {
        Ok(Some(bytes)) => Ok(Some(Key {
            bytes,
            storage: Storage::Keychain,
        })),
        _ => Ok(None),
    }
}

/// The key, created when there is none. Where a keychain has appeared since
/// the key went to a file, the key moves into the keychain: the file is
/// removed only after the keychain returned the same key.
pub fn load_or_create(home: &Home) -> Result<Key, AgentError> {
    if let Some(k) = load(home)? {
        if let Storage::KeyFile(file) = &k.storage {
            if !keychain_disabled() && keychain_set(home, &k.bytes).is_ok() {
                match std::fs::remove_file(file) {
                    Ok(()) => {
                        eprintln!(
                            "the outbox key moved from {} into the OS keychain",
                            file.display()
                        );
                        return Ok(Key {
                            bytes: k.bytes,
                            storage: Storage::Keychain,
                        });
                    }
                    Err(e) => eprintln!(
                        "warning: the outbox key is now also in the OS keychain but {} could not be removed: {e}",
                        file.display()
                    ),
                }
            }
        }
        return Ok(k);
    }
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).map_err(|cause| AgentError::NoRandomness {
        purpose: " for the key",
        cause,
    })?;
    match keychain_set(home, &bytes) {
        Ok(()) => Ok(Key {
            bytes,
            storage: Storage::Keychain,
        }),
        Err(why) => {
            let file = home.key_file();
            if let Err(e) = home.write_private(&file, hex::encode(bytes).as_bytes()) {
                return Err(AgentError::NoKeyStorage {
                    keychain: why.to_string(),
                    file,
                    file_error: e.to_string(),
                });
            }
            eprintln!(
                "warning: no usable OS keychain ({why}); the outbox key is in {} (mode 0600)",
                file.display()
            );
            Ok(Key {
                bytes,
                storage: Storage::KeyFile(file),
            })
        }
    }
}

/// Deletes the key wherever it is; returns what was removed.
pub fn delete(home: &Home) -> Vec<String> {
    let mut removed = Vec::new();
    let file = home.key_file();
    if std::fs::remove_file(&file).is_ok() {
        removed.push(file.display().to_string());
    }
    if let Ok(entry) = keychain_entry(home) {
        if entry.delete_credential().is_ok() {
            removed.push("outbox key in the OS keychain".into());
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn falls_back_to_a_private_key_file_and_reuses_it() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path());
        // The keychain is skipped so the test means the same on every machine.
        std::env::set_var("TALLY_KEYRING", "off");
        let k = load_or_create(&home).unwrap();
        assert_eq!(k.storage, Storage::KeyFile(home.key_file()));
        assert!(k.storage.describe().starts_with("degraded: key file "));
        let mode = std::fs::metadata(home.key_file())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = load_or_create(&home).unwrap();
        assert_eq!(again.bytes, k.bytes);
        assert_ne!(k.bytes, [0u8; 32]);
        assert_eq!(delete(&home), vec![home.key_file().display().to_string()]);
        assert!(load(&home).unwrap().is_none());
    }
}
