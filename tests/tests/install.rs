//! The one line a developer pastes, run as on a fresh machine: an empty
//! HOME, a PATH without `tally`, nothing but sh, curl and coreutils. The
//! installer comes from the local stack, downloads the binary the releases
//! bucket holds, checks its SHA-256, installs it under ~/.local/bin, enrols
//! it with the install token, and the agent's first events reach the team.
//! A corrupted binary is refused by the installer and by `tally update`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::json;
use sha2::{Digest, Sha256};
use tally_core::release::{object_key, Manifest, ReleaseFile, MANIFEST_KEY};
use tally_e2e::fixtures::rfc3339;
use tally_e2e::{body_json, now_ms, tally_bin, Stack};

const BUCKET: &str = "tally-releases";

/// A bare environment: only HOME, a minimal PATH and the time zone.
fn bare(home: &Path, script: &str) -> Output {
    Command::new("sh")
        .args(["-c", script])
        .env_clear()
        .env("HOME", home)
        .env("PATH", "/usr/bin:/bin")
        .env("TZ", "UTC")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn host_target() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "x86_64-unknown-linux-gnu",
        "aarch64" => "aarch64-unknown-linux-gnu",
        other => panic!("no release target for {other}"),
    }
}

/// The agent as a release would ship it: the test build without its debug
/// sections (a 100 MB debug binary would only slow the local bucket down).
fn release_binary(dir: &Path) -> Vec<u8> {
    let out = dir.join("tally-stripped");
    let st = Command::new("strip")
        .arg("--strip-debug")
        .arg("-o")
        .arg(&out)
        .arg(tally_bin())
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::read(out).unwrap()
}

fn publish(stack: &Stack, version: &str, binary: &[u8], advertised: &[u8]) {
    stack.r2_put_in(BUCKET, &object_key(version, host_target()), binary);
    let m = Manifest {
        version: version.into(),
        files: vec![ReleaseFile {
            target: host_target().into(),
            sha256: hex(&Sha256::digest(advertised)),
            size: advertised.len() as u64,
        }],
    };
    stack.r2_put_in(BUCKET, MANIFEST_KEY, &serde_json::to_vec(&m).unwrap());
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn installed(home: &Path) -> PathBuf {
    home.join(".local/bin/tally")
}

#[test]
fn the_one_line_installs_enrols_and_ships() {
    let stack = Stack::start();
    let team = stack.bootstrap("Acme", "owner@acme.test");
    let tid = team.team_id.clone();
    let owner = stack.sign_in(&team.signin_path);
    let work = tempfile::tempdir().unwrap();

    // Before the operator publishes a release the script says what is missing.
    let home0 = work.path().join("home0");
    std::fs::create_dir_all(&home0).unwrap();
    let o = bare(
        &home0,
        &format!("curl -fsSL {}/install.sh | sh -s -- --token x", stack.base),
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("has no agent binaries yet"),
        "{}",
        text(&o)
    );

    let version = env!("CARGO_PKG_VERSION");
    let binary = release_binary(work.path());
    publish(&stack, version, &binary, &binary);
    let issued =
        body_json(owner.post_json("/api/install-tokens", json!({"developer_name": "Dana"})));
    let token = issued["install_token"].as_str().unwrap().to_string();

    // The fresh machine: no tally anywhere on its PATH.
    let home = work.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    assert!(!bare(&home, "command -v tally").status.success());
    let one_line = format!(
        "curl -fsSL {}/install.sh | sh -s -- --token {token}",
        stack.base
    );
    let o = bare(&home, &one_line);
    assert!(o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    let sha = hex(&Sha256::digest(&binary));
    assert!(
        err.contains(&format!(
            "installed {} ({version}, {}, sha256 {sha} verified)",
            installed(&home).display(),
            host_target()
        )),
        "{}",
        text(&o)
    );
    assert!(err.contains("is not on your PATH"), "{}", text(&o));
    assert_eq!(std::fs::read(installed(&home)).unwrap(), binary);

    // Enrolled: the agent knows its team, and the server lists the agent.
    let status = bare(
        &home,
        &format!("{} status --json", installed(&home).display()),
    );
    assert!(status.status.success(), "{}", text(&status));
    let st: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(st["team_id"], tid.as_str());
    assert_eq!(st["agent_version"], version);
    assert_eq!(st["update_needed"], false);

    // Its first request reaches the dashboard (written after the install:
    // without --backfill, earlier history stays on the machine).
    let session = home.join(".claude/projects/-home-dana-app/s1.jsonl");
    std::fs::create_dir_all(session.parent().unwrap()).unwrap();
    let line = json!({"type": "assistant", "uuid": "u1", "sessionId": "s1", "timestamp": rfc3339(now_ms()),
        "cwd": "/home/dana/app", "requestId": "req_1", "message": {"id": "msg_1", "model": "claude-haiku-4-5-20251001",
        "stop_reason": "end_turn", "usage": {"input_tokens": 1000, "output_tokens": 100}}});
    std::fs::write(&session, line.to_string() + "\n").unwrap();
    // A transcript nobody writes to any more (a fresh one is held back
    // until its response is complete).
    std::fs::File::options()
        .write(true)
        .open(&session)
        .unwrap()
        .set_modified(std::time::SystemTime::now() - Duration::from_secs(600))
        .unwrap();
    let o = bare(&home, &format!("{} run --once", installed(&home).display()));
    assert!(o.status.success(), "{}", text(&o));
    stack.eventually("the first request", Duration::from_secs(30), || {
        let r = stack.d1(&format!(
            "SELECT COALESCE(SUM(requests),0) AS n, COALESCE(SUM(input_tokens),0) AS i FROM usage_q WHERE team_id = '{tid}'"
        ));
        (r[0]["n"] == 1 && r[0]["i"] == 1000).then_some(())
    });
    let page = owner.get("/developers").unwrap().into_string().unwrap();
    assert!(page.contains("Dana"), "{page}");
    assert!(
        page.contains(&format!(">{version}<")),
        "the agent reports its version: {page}"
    );

    // A corrupted download is refused and nothing is installed.
    let mut bad = binary.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0xff;
    publish(&stack, version, &bad, &binary);
    let home2 = work.path().join("home2");
    std::fs::create_dir_all(&home2).unwrap();
    let o = bare(
        &home2,
        &format!(
            "curl -fsSL {}/install.sh | sh -s -- --no-service",
            stack.base
        ),
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("checksum mismatch"),
        "{}",
        text(&o)
    );
    assert!(!installed(&home2).exists());
    assert!(!home2.join(".local/bin/.tally.new").exists());

    // `tally update` goes through the same installer: refused, binary kept.
    let o = bare(&home, &format!("{} update", installed(&home).display()));
    assert!(!o.status.success(), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("checksum mismatch"));
    assert_eq!(std::fs::read(installed(&home)).unwrap(), binary);
    // With the good binary back, the update replaces the file (a new inode:
    // written beside it and renamed, never overwritten in place).
    publish(&stack, version, &binary, &binary);
    use std::os::unix::fs::MetadataExt;
    let before = std::fs::metadata(installed(&home)).unwrap().ino();
    let o = bare(&home, &format!("{} update", installed(&home).display()));
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("verified"),
        "{}",
        text(&o)
    );
    assert_ne!(std::fs::metadata(installed(&home)).unwrap().ino(), before);
    assert_eq!(std::fs::read(installed(&home)).unwrap(), binary);

    // A request for anything but a listed file is a 404, not a bucket read.
    for path in [
        "/releases/agent/..%2F..%2Fmanifest.json/x86_64-unknown-linux-gnu/tally",
        &format!("/releases/agent/{version}/x86_64-pc-windows-msvc/tally"),
        "/releases/agent/9.9.9/x86_64-unknown-linux-gnu/tally",
    ] {
        let r = ureq::get(&stack.url(path)).call();
        assert_eq!(tally_e2e::status(&r), 404, "{path}");
    }
    let m: serde_json::Value = ureq::get(&stack.url("/releases/manifest.json"))
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    assert_eq!(m["files"][0]["sha256"], sha.as_str());
}

/// A server whose minimum is above the running agent: the agent learns it
/// from `/v1/agent/config` and `tally status` says to update; the Tokens and
/// Developers pages flag the agent by the version it reported.
#[test]
fn agents_below_the_minimum_are_told_and_flagged() {
    let stack = Stack::start_with(tally_e2e::StackConfig {
        vars: vec![("MIN_AGENT_VERSION".into(), "9.0.0".into())],
    });
    let team = stack.bootstrap("Acme", "owner@acme.test");
    let owner = stack.sign_in(&team.signin_path);
    let work = tempfile::tempdir().unwrap();
    let (home, claude) = (work.path().join("tally"), work.path().join("claude"));
    let ts = now_ms() - 120_000;
    tally_e2e::fixtures::write_transcript(&claude, ts);
    tally_e2e::fixtures::tally(
        &home,
        &claude,
        &[
            "install",
            "--server",
            &stack.base,
            "--token",
            &team.install_token,
            "--backfill",
            "1",
        ],
    );
    tally_e2e::fixtures::tally(&home, &claude, &["run", "--once"]);
    let st: serde_json::Value = serde_json::from_slice(
        &tally_e2e::fixtures::tally(&home, &claude, &["status", "--json"]).stdout,
    )
    .unwrap();
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(st["min_agent_version"], "9.0.0");
    assert_eq!(st["update_needed"], true);
    let text =
        String::from_utf8_lossy(&tally_e2e::fixtures::tally(&home, &claude, &["status"]).stdout)
            .into_owned();
    assert!(
        text.contains(&format!(
            "UPDATE NEEDED:   this agent is {version}, the server supports 9.0.0 and newer: run `tally update`"
        )),
        "{text}"
    );
    let csv = owner
        .get("/tokens?format=csv")
        .unwrap()
        .into_string()
        .unwrap();
    assert!(
        csv.lines()
            .next()
            .unwrap()
            .starts_with("agent,developer,host,version,"),
        "{csv}"
    );
    assert!(
        csv.contains(&format!(
            "{version} (outdated: minimum 9.0.0; run tally update)"
        )),
        "{csv}"
    );
    let page = owner.get("/developers").unwrap().into_string().unwrap();
    assert!(page.contains("data-testid=\"agent-outdated\""), "{page}");
    assert!(page.contains("outdated (minimum 9.0.0)"), "{page}");
}
