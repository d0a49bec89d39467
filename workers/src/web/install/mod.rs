//! One-line agent install: `GET /install.sh` is a POSIX script generated
//! from the releases bucket's manifest (version, per-target SHA-256), and
//! `GET /releases/agent/{version}/{target}/tally` streams the binaries
//! `cargo xtask release-agent --upload` put there. Public on purpose: the
//! binaries are not secret and the script holds no credential (the install
//! token is an argument the developer passes).
//!
//! The SHA-256 guards against a truncated or corrupted download; it comes
//! from the same origin as the binary, so it adds nothing against a server
//! that is itself compromised (THREAT_MODEL.md says so).

use tally_core::release::{self, Manifest, TARGETS};
use worker::{Env, Request, Response};

use crate::bindings;
use crate::error::ApiError;
use crate::util::config;

const TEMPLATE: &str = include_str!("install.sh");

/// Single-quoted for sh: nothing inside is expanded.
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The `case` arms mapping `uname -s`/`uname -m` to this release's best
/// binary: the first listed target (static before glibc) wins each pair.
fn cases(m: &Manifest) -> String {
    let mut taken: Vec<String> = Vec::new();
    let mut out = String::new();
    for (target, os, arches) in TARGETS {
        let Some(f) = m.file(target) else { continue };
        let patterns: Vec<String> = arches
            .iter()
            .map(|a| format!("{os}/{a}"))
            .filter(|p| !taken.contains(p))
            .collect();
        if patterns.is_empty() {
            continue;
        }
        out.push_str(&format!(
            "    {}) set -- {} {} ;;\n",
            patterns.join("|"),
            sh_quote(target),
            sh_quote(&f.sha256)
        ));
        taken.extend(patterns);
    }
    out.trim_end_matches('\n').to_string()
}

/// The script for `server`; without a (valid) release it explains what the
/// operator must do and exits non-zero.
pub fn render(server: &str, manifest: Option<&Manifest>) -> String {
    let (version, have, cases) = match manifest {
        Some(m) => (
            m.version.clone(),
            m.files
                .iter()
                .map(|f| f.target.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            cases(m),
        ),
        None => (String::new(), "none".to_string(), String::new()),
    };
    TEMPLATE
        .replace("@SERVER@", &sh_quote(server))
        .replace("@VERSION@", &sh_quote(&version))
        .replace("@HAVE@", &sh_quote(&have))
        .replace("@CASES@", &cases)
}

/// The release the bucket holds, if any. A missing bucket binding (a
/// deployment configured before releases existed) reads as no release.
pub async fn current(env: &Env) -> Result<Option<Manifest>, ApiError> {
    let Ok(bucket) = env.bucket(bindings::RELEASES_BUCKET) else {
        return Ok(None);
    };
    let Some(obj) = bucket.get(release::MANIFEST_KEY).execute().await? else {
        return Ok(None);
    };
    let Some(body) = obj.body() else {
        return Ok(None);
    };
    match Manifest::parse(&body.bytes().await?) {
        Ok(m) => Ok(Some(m)),
        Err(e) => {
            worker::console_error!("releases: {e}");
            Ok(None)
        }
    }
}

pub fn server_origin(req: &Request, env: &Env) -> Result<String, ApiError> {
    let origin = req.url()?.origin().ascii_serialization();
    Ok(config(env, bindings::PUBLIC_URL)
        .unwrap_or(origin)
        .trim_end_matches('/')
        .to_string())
}

/// The line a developer pastes: download, verify, install, enrol, start.
pub fn one_line(server: &str, token: &str) -> String {
    format!("curl -fsSL {server}/install.sh | sh -s -- --token {token}")
}

pub async fn script(req: Request, env: Env) -> Result<Response, ApiError> {
    let m = current(&env).await?;
    let mut r = Response::ok(render(&server_origin(&req, &env)?, m.as_ref()))?;
    // text/plain so a browser shows it for reading before anyone pipes it.
    r.headers_mut()
        .set("Content-Type", "text/plain; charset=utf-8")?;
    r.headers_mut().set("Cache-Control", "no-cache")?;
    Ok(r)
}

pub async fn manifest(env: Env) -> Result<Response, ApiError> {
    match current(&env).await? {
        Some(m) => Ok(Response::from_json(&m)?),
        None => Err(ApiError::not_found("this server has no agent release")),
    }
}

pub async fn binary(env: Env, version: &str, target: &str) -> Result<Response, ApiError> {
    // Checked before they become a key: nothing else of the bucket is served.
    if !release::valid_version(version) || !release::known_target(target) {
        return Err(ApiError::not_found("no such release file"));
    }
    let bucket = env
        .bucket(bindings::RELEASES_BUCKET)
        .map_err(|_| ApiError::not_found("this server has no agent release"))?;
    let Some(obj) = bucket
        .get(release::object_key(version, target))
        .execute()
        .await?
    else {
        return Err(ApiError::not_found("no such release file"));
    };
    let Some(body) = obj.body() else {
        return Err(ApiError::not_found("no such release file"));
    };
    // Handed to the runtime as a stream: no Worker CPU per byte.
    let mut r = Response::from_body(body.response_body()?)?;
    r.headers_mut()
        .set("Content-Type", "application/octet-stream")?;
    // A version's files never change: caches may keep them.
    r.headers_mut()
        .set("Cache-Control", "public, max-age=31536000, immutable")?;
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tally_core::release::ReleaseFile;

    fn m(targets: &[&str]) -> Manifest {
        Manifest {
            version: "0.4.0".into(),
            files: targets
                .iter()
                .enumerate()
                .map(|(i, t)| ReleaseFile {
                    target: t.to_string(),
                    sha256: format!("{i}").repeat(64),
                    size: 1,
                })
                .collect(),
        }
    }

    #[test]
    fn quoting_survives_quotes() {
        assert_eq!(sh_quote("it's"), r"'it'\''s'");
        assert_eq!(sh_quote(""), "''");
    }

    #[test]
    fn each_platform_gets_its_most_portable_binary() {
        let text = render(
            "https://tally.example.com",
            Some(&m(&[
                "x86_64-unknown-linux-gnu",
                "x86_64-unknown-linux-musl",
            ])),
        );
        assert!(text.contains("SERVER='https://tally.example.com'\n"));
        assert!(text.contains("VERSION='0.4.0'\n"));
        assert!(text.contains("HAVE='x86_64-unknown-linux-gnu, x86_64-unknown-linux-musl'\n"));
        // musl is listed first in TARGETS and takes the x86_64 pair; the
        // glibc build adds no arm of its own.
        assert!(text.contains(&format!(
            "    Linux/x86_64|Linux/amd64) set -- 'x86_64-unknown-linux-musl' '{}' ;;\n    *) return 1 ;;",
            "1".repeat(64)
        )));
        assert!(!text.contains("set -- 'x86_64-unknown-linux-gnu'"));
        assert!(!text.contains('@'), "every placeholder is filled");
    }

    #[test]
    fn without_a_release_the_script_explains_and_fails() {
        let text = render("http://127.0.0.1:8787", None);
        assert!(text.contains("VERSION=''\n"));
        assert!(text.contains("[ -n \"$VERSION\" ] || die"));
        assert!(text.contains("cargo xtask release-agent --upload"));
    }
}
