//! The outbox key against a real Secret Service: Debian's gnome-keyring
//! daemon in a private D-Bus session (`dbus-run-session`), unlocked for the
//! test, with its keyrings under a temporary HOME. `cargo xtask setup`
//! installs `gnome-keyring`, `dbus` and `libsecret-tools`.
//!
//! Each test re-runs this test binary in a child process: inside such a
//! session (a keychain is present) or with no session bus at all (none is).
//! `TALLY_KC_PHASE` tells the child which part to run.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tally::home::Home;
use tally::keystore::{self, Storage};
use tally::outbox::{Outbox, DEFAULT_MAX_BYTES};

fn phase() -> Option<String> {
    std::env::var("TALLY_KC_PHASE").ok()
}

fn state() -> Home {
    Home::at(PathBuf::from(std::env::var_os("TALLY_KC_HOME").unwrap()))
}

/// Runs `test`'s `phase` in a child, with (`keychain`) or without a
/// Secret Service, and returns its output after checking it passed.
fn child(test: &str, phase: &str, dir: &Path, keychain: bool) -> Output {
    let exe = std::env::current_exe().unwrap();
    let home = dir.join("user-home");
    let run = dir.join("run");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir_all(&run).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o700)).unwrap();
    let mut cmd = if keychain {
        let mut c = Command::new("dbus-run-session");
        c.args([
            "--",
            "sh",
            "-c",
            "echo -n pass | gnome-keyring-daemon --unlock --components=secrets >/dev/null && exec \"$0\" \"$@\"",
        ])
        .arg(&exe);
        c
    } else {
        let mut c = Command::new(&exe);
        c.env_remove("DBUS_SESSION_BUS_ADDRESS");
        c
    };
    cmd.args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env("TALLY_KC_PHASE", phase)
        .env("TALLY_KC_HOME", dir.join("state"))
        .env("HOME", &home)
        .env("XDG_RUNTIME_DIR", &run)
        .env("XDG_DATA_HOME", home.join(".local/share"))
        .env_remove("TALLY_KEYRING");
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("cannot run the keychain test session ({e}): install gnome-keyring, dbus and libsecret-tools (`cargo xtask setup` does)")
    });
    assert!(
        out.status.success(),
        "{test} phase {phase} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// What the Secret Service itself holds for this key, via `secret-tool`.
fn secret_tool_lookup(home: &Home) -> Option<String> {
    let abs = std::fs::canonicalize(home.root()).unwrap_or_else(|_| home.root().to_path_buf());
    let out = Command::new("secret-tool")
        .args([
            "lookup",
            "service",
            "dev.tally.agent",
            "username",
            &format!("outbox-key:{}", abs.display()),
        ])
        .output()
        .ok()?;
    let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !s.is_empty()).then_some(s)
}

#[test]
fn the_key_is_created_in_a_present_keychain() {
    match phase().as_deref() {
        None => {
            let dir = tempfile::tempdir().unwrap();
            child(
                "the_key_is_created_in_a_present_keychain",
                "in",
                dir.path(),
                true,
            );
        }
        Some(_) => {
            let home = state();
            let k = keystore::load_or_create(&home).unwrap();
            assert_eq!(k.storage, Storage::Keychain);
            assert!(!k.storage.is_degraded());
            assert!(!home.key_file().exists(), "no key file beside a keychain");
            assert_eq!(
                secret_tool_lookup(&home).as_deref(),
                Some(hex::encode(k.bytes).as_str()),
                "the Secret Service holds the key"
            );
            let again = keystore::load(&home).unwrap().unwrap();
            assert_eq!((again.bytes, again.storage), (k.bytes, Storage::Keychain));
            assert_eq!(
                keystore::delete(&home),
                vec!["outbox key in the OS keychain".to_string()]
            );
            assert!(keystore::load(&home).unwrap().is_none());
        }
    }
}

#[test]
fn a_key_file_moves_into_a_keychain_that_appears_later() {
    const TEST: &str = "a_key_file_moves_into_a_keychain_that_appears_later";
    match phase().as_deref() {
        None => {
            let dir = tempfile::tempdir().unwrap();
            child(TEST, "before", dir.path(), false);
            let out = child(TEST, "after", dir.path(), true);
            assert!(
                String::from_utf8_lossy(&out.stderr).contains("moved from"),
                "the move is announced"
            );
        }
        Some("before") => {
            // No session bus: no keychain, so a degraded key file, and a batch
            // encrypted with that key.
            let home = state();
            let k = keystore::load_or_create(&home).unwrap();
            assert_eq!(k.storage, Storage::KeyFile(home.key_file()));
            let mut ob = Outbox::open(&home, k.bytes, DEFAULT_MAX_BYTES).unwrap();
            ob.append(&[b"{\"batch\":1}".to_vec()]).unwrap();
        }
        Some(_) => {
            let home = state();
            let file_key = std::fs::read_to_string(home.key_file()).unwrap();
            let k = keystore::load_or_create(&home).unwrap();
            assert_eq!(k.storage, Storage::Keychain);
            assert_eq!(hex::encode(k.bytes), file_key.trim());
            assert!(!home.key_file().exists(), "removed after the verified copy");
            assert_eq!(secret_tool_lookup(&home).as_deref(), Some(file_key.trim()));
            // The outbox written under the file key still decrypts.
            let k = keystore::load(&home).unwrap().unwrap();
            let ob = Outbox::open_reader(&home, k.bytes).unwrap();
            let bodies: Vec<Vec<u8>> = ob.pending().unwrap().into_iter().map(|e| e.body).collect();
            assert_eq!(bodies, vec![b"{\"batch\":1}".to_vec()]);
            keystore::delete(&home);
        }
    }
}

#[test]
fn without_keychain_or_writable_key_file_the_error_says_both() {
    const TEST: &str = "without_keychain_or_writable_key_file_the_error_says_both";
    match phase().as_deref() {
        None => {
            let dir = tempfile::tempdir().unwrap();
            // The state directory's parent is a file: nothing can be written there.
            std::fs::write(dir.path().join("state"), b"not a directory").unwrap();
            child(TEST, "in", dir.path(), false);
        }
        Some(_) => {
            let home = Home::at(state().root().join("tally"));
            let e = keystore::load_or_create(&home).err().expect("must fail");
            let msg = e.to_string();
            assert!(msg.starts_with("no place for the outbox key"), "{msg}");
            assert!(msg.contains("keychain is unusable"), "{msg}");
            assert!(msg.contains("outbox.key cannot be written"), "{msg}");
        }
    }
}
