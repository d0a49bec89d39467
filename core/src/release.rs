//! Agent releases a deployment serves to its developers: the manifest
//! `cargo xtask release-agent` writes next to the binaries in the releases
//! bucket, which the Worker reads to build `/install.sh` and to serve the
//! files. Shared so the writer, the server and the tests agree on keys and
//! on what a valid manifest is — its values end up inside a shell script.

use serde::{Deserialize, Serialize};

/// Object key of the manifest in the releases bucket.
pub const MANIFEST_KEY: &str = "agent/manifest.json";

/// Targets an installer can pick, with the `uname -s` / `uname -m` pairs
/// that select them, most portable first (a static musl build runs on any
/// Linux; a glibc build needs a recent enough libc).
pub const TARGETS: &[(&str, &str, &[&str])] = &[
    ("x86_64-unknown-linux-musl", "Linux", &["x86_64", "amd64"]),
    ("x86_64-unknown-linux-gnu", "Linux", &["x86_64", "amd64"]),
    ("aarch64-unknown-linux-musl", "Linux", &["aarch64", "arm64"]),
    ("aarch64-unknown-linux-gnu", "Linux", &["aarch64", "arm64"]),
    ("aarch64-apple-darwin", "Darwin", &["arm64", "aarch64"]),
    ("x86_64-apple-darwin", "Darwin", &["x86_64"]),
];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The agent version every file is (`tally --version` prints it).
    pub version: String,
    pub files: Vec<ReleaseFile>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseFile {
    pub target: String,
    /// Lower-case hex SHA-256 of the binary.
    pub sha256: String,
    pub size: u64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReleaseError {
    #[error("version {0:?} is not a release version (digits, letters, '.', '-', '+'; at most 40)")]
    Version(String),
    #[error("target {0:?} is not one the installer knows")]
    Target(String),
    #[error("sha256 of {0} is not 64 lower-case hex digits")]
    Digest(String),
    #[error("target {0} is listed twice")]
    Duplicate(String),
    #[error("the manifest lists no binaries")]
    Empty,
}

/// Versions name object keys and appear in a shell script: a narrow
/// alphabet keeps both safe without quoting tricks.
pub fn valid_version(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 40
        && v.starts_with(|c: char| c.is_ascii_digit())
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+'))
}

pub fn known_target(t: &str) -> bool {
    TARGETS.iter().any(|(name, _, _)| *name == t)
}

/// Object key (and URL path under `/releases/`) of one binary.
pub fn object_key(version: &str, target: &str) -> String {
    format!("agent/{version}/{target}/tally")
}

/// Dotted numeric versions compared part by part (`0.10.0` > `0.9.9`);
/// anything after `-` or `+` is ignored, missing parts count as 0.
pub fn version_at_least(have: &str, min: &str) -> bool {
    let parts = |v: &str| -> Vec<u64> {
        v.split(['-', '+'])
            .next()
            .unwrap_or("")
            .split('.')
            .map(|p| p.parse().unwrap_or(0))
            .collect()
    };
    let (mut a, mut b) = (parts(have), parts(min));
    let n = a.len().max(b.len());
    a.resize(n, 0);
    b.resize(n, 0);
    a >= b
}

impl Manifest {
    pub fn validate(&self) -> Result<(), ReleaseError> {
        if !valid_version(&self.version) {
            return Err(ReleaseError::Version(self.version.clone()));
        }
        if self.files.is_empty() {
            return Err(ReleaseError::Empty);
        }
        for (i, f) in self.files.iter().enumerate() {
            if !known_target(&f.target) {
                return Err(ReleaseError::Target(f.target.clone()));
            }
            if f.sha256.len() != 64
                || !f
                    .sha256
                    .chars()
                    .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
            {
                return Err(ReleaseError::Digest(f.target.clone()));
            }
            if self.files[..i].iter().any(|g| g.target == f.target) {
                return Err(ReleaseError::Duplicate(f.target.clone()));
            }
        }
        Ok(())
    }

    /// Parses and validates stored manifest bytes.
    pub fn parse(bytes: &[u8]) -> Result<Manifest, String> {
        let m: Manifest =
            serde_json::from_slice(bytes).map_err(|e| format!("manifest is not valid: {e}"))?;
        m.validate().map_err(|e| e.to_string())?;
        Ok(m)
    }

    /// The file for `target`, if this release has it.
    pub fn file(&self, target: &str) -> Option<&ReleaseFile> {
        self.files.iter().find(|f| f.target == target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(target: &str) -> ReleaseFile {
        ReleaseFile {
            target: target.into(),
            sha256: "ab".repeat(32),
            size: 10,
        }
    }

    #[test]
    fn manifests_are_checked_before_their_values_reach_a_script() {
        let ok = Manifest {
            version: "0.3.0-rc.1+g1a2b".into(),
            files: vec![file("x86_64-unknown-linux-gnu")],
        };
        assert_eq!(ok.validate(), Ok(()));
        let bad_version = |v: &str| Manifest {
            version: v.into(),
            ..ok.clone()
        };
        for v in [
            "",
            "v1.0",
            "1.0'; rm -rf ~",
            "1.0 0",
            "1/2",
            &"1".repeat(41),
        ] {
            assert_eq!(
                bad_version(v).validate(),
                Err(ReleaseError::Version(v.into())),
                "{v}"
            );
        }
        let mut m = ok.clone();
        m.files[0].target = "x86_64-pc-windows-msvc".into();
        assert!(matches!(m.validate(), Err(ReleaseError::Target(_))));
        let mut m = ok.clone();
        m.files[0].sha256 = "AB".repeat(32);
        assert!(matches!(m.validate(), Err(ReleaseError::Digest(_))));
        let mut m = ok.clone();
        m.files.push(file("x86_64-unknown-linux-gnu"));
        assert!(matches!(m.validate(), Err(ReleaseError::Duplicate(_))));
        let mut m = ok.clone();
        m.files.clear();
        assert_eq!(m.validate(), Err(ReleaseError::Empty));
        let text = serde_json::to_vec(&ok).unwrap();
        assert_eq!(Manifest::parse(&text), Ok(ok));
        assert!(Manifest::parse(b"{}").unwrap_err().contains("not valid"));
    }

    #[test]
    fn versions_compare_numerically() {
        assert!(version_at_least("0.10.0", "0.9.9"));
        assert!(version_at_least("1.0", "1.0.0"));
        assert!(version_at_least("0.1.0", "0.1"));
        assert!(version_at_least("1.2.0-rc.1", "1.2.0"));
        assert!(!version_at_least("0.1.9", "0.2.0"));
        assert!(!version_at_least("unknown", "0.1.0"));
    }

    #[test]
    fn keys_nest_version_then_target() {
        assert_eq!(
            object_key("0.3.0", "aarch64-apple-darwin"),
            "agent/0.3.0/aarch64-apple-darwin/tally"
        );
    }
}
