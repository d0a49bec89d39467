//! `cargo xtask deps`: every direct dependency of every crate, with the one
//! reason it is there. The reasons live in [`REASONS`]; the command fails when
//! a Cargo.toml names a dependency that has no reason (or a reason names a
//! dependency no Cargo.toml has), so the list cannot rot.

use std::collections::BTreeSet;

use crate::Result;

/// (crate directory, dependency, why). `*` as the directory: the reason holds
/// for that dependency in every crate that uses it.
pub const REASONS: &[(&str, &str, &str)] = &[
    // Shared by several crates (workspace dependencies).
    (
        "*",
        "serde",
        "derive (de)serialization of wire types, config and state files",
    ),
    (
        "*",
        "serde_json",
        "the JSON wire format, config, reports and API bodies",
    ),
    ("*", "hex", "hex encoding of hashes, ids and keys"),
    ("*", "thiserror", "typed error enums with messages"),
    (
        "*",
        "tally-core",
        "the shared platform-free rules (wire types, privacy, pricing, sealing)",
    ),
    ("*", "criterion", "benchmarks (dev only)"),
    ("*", "proptest", "property tests (dev only)"),
    (
        "*",
        "tempfile",
        "isolated temporary homes and state directories in tests",
    ),
    (
        "*",
        "libc",
        "O_NOFOLLOW opens, flock, isatty, process checks (no std API for them)",
    ),
    (
        "*",
        "flate2",
        "gzip of upload bodies (agent) and their decoding (Worker, tests)",
    ),
    (
        "*",
        "memchr",
        "fast newline and byte search when tailing and parsing logs",
    ),
    (
        "*",
        "jiff",
        "time zones for reports and team-local days (IANA tz database)",
    ),
    (
        "*",
        "getrandom",
        "OS randomness for nonces, keys and tokens",
    ),
    // core
    (
        "core",
        "hmac",
        "keyed hashes of project paths and sessions; token hashing",
    ),
    ("core", "sha2", "SHA-256 for ids, hashes and HKDF"),
    (
        "core",
        "aes-gcm",
        "AES-256-GCM sealing of Full content and the agent's outbox",
    ),
    (
        "core",
        "hkdf",
        "per-team content keys derived from CONTENT_KEY",
    ),
    ("core", "regex", "redaction rules for secrets in prompts"),
    (
        "core",
        "aho-corasick",
        "keyword pre-filter of the redactor (already under regex)",
    ),
    (
        "core",
        "hashbrown",
        "HashTable for allocation-free request dedup",
    ),
    // agent
    (
        "agent",
        "sha2",
        "hashing the hostname and file fingerprints",
    ),
    ("agent", "clap", "command-line parsing of `tally`"),
    (
        "agent",
        "rusqlite",
        "reads OpenCode's opencode.db read-only (bundled SQLite: no system library needed)",
    ),
    (
        "agent",
        "ureq",
        "blocking HTTPS client (rustls) for uploads and config",
    ),
    (
        "agent",
        "crc32fast",
        "record checksums in the outbox and the local index",
    ),
    (
        "agent",
        "notify",
        "file-system watch of agent logs in `tally run`",
    ),
    (
        "agent",
        "signal-hook",
        "SIGTERM/SIGINT in `tally run`: flush what is held, then exit cleanly",
    ),
    (
        "agent",
        "keyring",
        "the outbox key in the OS keychain (Secret Service, Keychain, Credential Manager)",
    ),
    // workers
    (
        "workers",
        "worker",
        "workers-rs: the Cloudflare Workers runtime bindings (D1, R2, Queues, DO)",
    ),
    (
        "workers",
        "wasm-bindgen",
        "JS interop; pinned to the wasm-bindgen CLI setup installs",
    ),
    (
        "workers",
        "url",
        "query strings and form bodies of the dashboard",
    ),
    (
        "workers",
        "futures-util",
        "concurrent categorization calls with a timeout",
    ),
    (
        "workers",
        "maud",
        "compile-time HTML templates that escape every interpolation",
    ),
    (
        "workers",
        "matchit",
        "the routing table as plain data, tested natively",
    ),
    (
        "*",
        "opentelemetry-proto",
        "OTLP/HTTP ingest: the generated OTLP messages and their JSON mapping (tests build real payloads with them)",
    ),
    (
        "*",
        "prost",
        "decoding (and, in tests, encoding) OTLP protobuf bodies",
    ),
    // tests
    (
        "tests",
        "ureq",
        "HTTP client of the e2e tests against wrangler dev and the fakes",
    ),
    ("tests", "base64", "decodes WebDriver screenshots"),
    (
        "tests",
        "sha2",
        "SHA-256 of the agent binary the install test publishes",
    ),
    (
        "tests",
        "rusqlite",
        "reads the local R2 simulator's object index (wrangler has no list)",
    ),
    // xtask
    (
        "xtask",
        "ureq",
        "`xtask dev`: health check and bootstrap of the local Worker",
    ),
    (
        "xtask",
        "sha2",
        "SHA-256 of each agent binary in the release manifest",
    ),
    (
        "xtask",
        "tally-e2e",
        "`xtask bench-live` runs the end-to-end harness's local stack, sign-in and agent binary",
    ),
];

/// Crate directories of the workspace, in the order `deps` prints them.
pub const CRATES: &[&str] = &["core", "agent", "workers", "tests", "xtask"];

/// Direct dependencies named in a Cargo.toml: every key of a
/// `[dependencies]`, `[dev-dependencies]`, `[build-dependencies]` or
/// `[target.'…'.dependencies]` table (also their `[….dependencies.NAME]` form).
pub fn direct_deps(manifest: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut in_deps = false;
    for raw in manifest.lines() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        if line.starts_with('[') {
            let header = line.trim_matches(|c| c == '[' || c == ']');
            in_deps = false;
            for table in ["dependencies", "dev-dependencies", "build-dependencies"] {
                if header == table || header.ends_with(&format!(".{table}")) {
                    in_deps = true;
                } else if let Some(name) = header
                    .strip_prefix(&format!("{table}."))
                    .or_else(|| header.split(&format!(".{table}.")).nth(1))
                {
                    out.insert(name.trim_matches('"').to_string());
                }
            }
            continue;
        }
        if in_deps {
            if let Some(key) = line.split('=').next() {
                let name = key.trim().split('.').next().unwrap_or("").trim_matches('"');
                if !name.is_empty() {
                    out.insert(name.to_string());
                }
            }
        }
    }
    out
}

fn reason(krate: &str, dep: &str) -> Option<&'static str> {
    REASONS
        .iter()
        .find(|(c, d, _)| *c == krate && *d == dep)
        .or_else(|| REASONS.iter().find(|(c, d, _)| *c == "*" && *d == dep))
        .map(|(_, _, r)| *r)
}

/// Lines `crate dep — reason`, or every problem found: a dependency without a
/// reason, or a reason for a dependency that no crate has.
pub fn check(manifests: &[(&str, String)]) -> std::result::Result<Vec<String>, Vec<String>> {
    let mut lines = Vec::new();
    let mut errors = Vec::new();
    let mut used: BTreeSet<(&str, String)> = BTreeSet::new();
    for (krate, text) in manifests {
        for dep in direct_deps(text) {
            if dep == "tally-core" && *krate == "core" {
                // core's dev-dependency on itself turns on the `corpus` feature.
                lines.push(format!(
                    "{krate:<8} {dep:<20} itself, with the corpus feature, for its tests"
                ));
                continue;
            }
            match reason(krate, &dep) {
                Some(r) => {
                    lines.push(format!("{krate:<8} {dep:<20} {r}"));
                    let scope = if REASONS.iter().any(|(c, d, _)| c == krate && *d == dep) {
                        *krate
                    } else {
                        "*"
                    };
                    used.insert((scope, dep));
                }
                None => errors.push(format!(
                    "{krate}/Cargo.toml: dependency `{dep}` has no reason in xtask/src/deps.rs"
                )),
            }
        }
    }
    for (c, d, _) in REASONS {
        if !used.contains(&(*c, d.to_string())) {
            errors.push(format!(
                "xtask/src/deps.rs: reason for `{d}` ({c}) but no crate depends on it"
            ));
        }
    }
    if errors.is_empty() {
        Ok(lines)
    } else {
        Err(errors)
    }
}

fn manifests() -> Result<Vec<(&'static str, String)>> {
    let root = crate::setup::root();
    CRATES
        .iter()
        .map(|c| {
            let p = root.join(c).join("Cargo.toml");
            std::fs::read_to_string(&p)
                .map(|t| (*c, t))
                .map_err(|e| format!("{}: {e}", p.display()))
        })
        .collect()
}

pub fn deps() -> Result<()> {
    let manifests = manifests()?;
    match check(&manifests) {
        Ok(lines) => {
            for l in lines {
                println!("{l}");
            }
            Ok(())
        }
        Err(errors) => {
            for e in &errors {
                eprintln!("{e}");
            }
            Err(format!(
                "{} dependency reason problem(s): add a line to REASONS in xtask/src/deps.rs",
                errors.len()
            ))
        }
    }
}

/// The check alone, for `cargo xtask test`: prints only the problems.
pub fn check_quietly() -> Result<()> {
    let manifests = manifests()?;
    check(&manifests)
        .map(|_| ())
        .map_err(|errors| errors.join("\n    "))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
[package]
name = "x"
version = "0.1.0"

[dependencies]
serde.workspace = true
clap = { version = "4", features = ["derive"] } # comment
"aes-gcm" = "0.10"

[target.'cfg(target_os = "linux")'.dependencies]
keyring = "3"

[dev-dependencies.proptest]
version = "1"

[features]
corpus = []
"#;

    #[test]
    fn parses_every_kind_of_dependency_table() {
        let d: Vec<String> = direct_deps(SAMPLE).into_iter().collect();
        assert_eq!(d, ["aes-gcm", "clap", "keyring", "proptest", "serde"]);
    }

    #[test]
    fn a_dependency_without_a_reason_fails_the_check() {
        let m = [(
            "agent",
            "[dependencies]\nclap = \"4\"\nleftpad = \"1\"\n".to_string(),
        )];
        let errs = check(&m).unwrap_err();
        assert!(
            errs.iter().any(|e| e.contains("`leftpad` has no reason")),
            "{errs:?}"
        );
    }

    #[test]
    fn every_workspace_dependency_has_a_reason_and_every_reason_a_dependency() {
        let manifests = manifests().unwrap();
        let lines = check(&manifests).unwrap_or_else(|e| panic!("{e:#?}"));
        assert!(lines
            .iter()
            .any(|l| l.starts_with("workers") && l.contains("maud")));
    }
}
