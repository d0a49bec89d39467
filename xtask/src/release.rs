//! `cargo xtask release-agent`: builds the agent in release mode for each
//! target this machine can build, writes the binaries and a SHA-256
//! manifest under `target/release-agent/<version>/`, and (with `--upload`)
//! puts them into the deployment's releases bucket, where `/install.sh`
//! finds them. The manifest is uploaded last, so a half-finished upload
//! never advertises a binary that is not there yet.

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};
use tally_core::release::{self, Manifest, ReleaseFile};

use crate::setup::{cargo, root, run, step, Tools};
use crate::Result;

/// The bucket of `wrangler.toml`'s `RELEASES` binding.
pub const BUCKET: &str = "tally-releases";

fn host_target() -> Result<String> {
    let out = Command::new("rustc")
        .arg("-vV")
        .output()
        .map_err(|e| format!("rustc -vV: {e}"))?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_string)
        .ok_or_else(|| "rustc -vV names no host".into())
}

fn installed_targets() -> Vec<String> {
    Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// The manifest for binaries already built, in the order given.
pub fn manifest_for(version: &str, files: &[(String, Vec<u8>)]) -> Result<Manifest> {
    let m = Manifest {
        version: version.to_string(),
        files: files
            .iter()
            .map(|(target, bytes)| ReleaseFile {
                target: target.clone(),
                sha256: hex::encode(Sha256::digest(bytes)),
                size: bytes.len() as u64,
            })
            .collect(),
    };
    m.validate().map_err(|e| e.to_string())?;
    Ok(m)
}

enum Upload {
    None,
    Local,
    Remote,
}

pub fn release_agent(tools: &Tools, args: &[String]) -> Result<()> {
    let root = root();
    let mut targets: Vec<String> = Vec::new();
    let mut upload = Upload::None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--target" => targets.push(it.next().ok_or("--target needs a triple")?.clone()),
            "--upload" => upload = match it.next().map(String::as_str) {
                Some("local") => Upload::Local,
                Some("remote") => Upload::Remote,
                _ => return Err(
                    "--upload needs `local` (cargo xtask dev's bucket) or `remote` (Cloudflare)"
                        .into(),
                ),
            },
            other => return Err(format!("unknown release-agent option {other}")),
        }
    }
    if targets.is_empty() {
        targets.push(host_target()?);
    }
    let installed = installed_targets();
    for t in &targets {
        if !release::known_target(t) {
            return Err(format!(
                "{t} is not a target the installer knows ({})",
                release::TARGETS
                    .iter()
                    .map(|(t, _, _)| *t)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if !installed.contains(t) {
            // rustup fetches the standard library of a target from
            // static.rust-lang.org, which these machines cannot reach.
            return Err(format!(
                "the Rust standard library for {t} is not installed (`rustup target add {t}` needs network access to static.rust-lang.org); installed: {}",
                installed.join(", ")
            ));
        }
    }
    let version = env!("CARGO_PKG_VERSION");
    let out_dir = root.join("target/release-agent").join(version);
    let mut files = Vec::new();
    for t in &targets {
        step(
            &format!("cargo build --release -p tally --target {t}"),
            || {
                run(cargo()
                    .args([
                        "build",
                        "--release",
                        "--locked",
                        "-p",
                        "tally",
                        "--target",
                        t,
                    ])
                    .current_dir(&root))
            },
        )?;
        let built = target_dir(&root).join(t).join("release/tally");
        let bytes = std::fs::read(&built).map_err(|e| format!("{}: {e}", built.display()))?;
        let dest = out_dir.join(release::object_key(version, t));
        std::fs::create_dir_all(dest.parent().unwrap()).map_err(|e| e.to_string())?;
        std::fs::write(&dest, &bytes).map_err(|e| format!("{}: {e}", dest.display()))?;
        files.push((t.clone(), bytes));
    }
    let manifest = manifest_for(version, &files)?;
    let manifest_path = out_dir.join(release::MANIFEST_KEY);
    std::fs::create_dir_all(manifest_path.parent().unwrap()).map_err(|e| e.to_string())?;
    std::fs::write(
        &manifest_path,
        serde_json::to_vec_pretty(&manifest).map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    for f in &manifest.files {
        eprintln!("    {} {} ({} bytes)", f.sha256, f.target, f.size);
    }
    let location = match upload {
        Upload::None => {
            eprintln!(
                "    wrote {} (upload with --upload local|remote)",
                out_dir.display()
            );
            return Ok(());
        }
        Upload::Local => vec![
            "--local".to_string(),
            "--persist-to".into(),
            root.join(".tally-dev/wrangler").display().to_string(),
        ],
        Upload::Remote => vec!["--remote".to_string()],
    };
    let mut keys: Vec<String> = manifest
        .files
        .iter()
        .map(|f| release::object_key(version, &f.target))
        .collect();
    keys.push(release::MANIFEST_KEY.to_string());
    for key in keys {
        step(&format!("upload {BUCKET}/{key}"), || {
            let mut c = Command::new(&tools.wrangler);
            c.args(["r2", "object", "put", &format!("{BUCKET}/{key}"), "--file"])
                .arg(out_dir.join(&key))
                .args(&location)
                .current_dir(&root);
            tools.apply_env(&mut c);
            run(&mut c)
        })?;
    }
    Ok(())
}

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_names_each_binary_by_its_sha256() {
        let m = manifest_for(
            "0.1.0",
            &[("x86_64-unknown-linux-gnu".to_string(), b"abc".to_vec())],
        )
        .unwrap();
        assert_eq!(
            m.files[0].sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(m.files[0].size, 3);
        assert!(manifest_for("v1", &[]).is_err());
    }
}
