use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::setup::{root, run, step, Tools};
use crate::Result;

/// A failed read must stop set-up: falling back to zeros would give every
/// checkout the same pepper and bootstrap secret.
pub fn random_hex() -> Result<String> {
    use std::io::Read;
    let mut b = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut u| u.read_exact(&mut b))
        .map_err(|e| format!("reading /dev/urandom for local secrets: {e}"))?;
    Ok(hex::encode(b))
}

/// Local secrets live in `.dev.vars` (git-ignored), created once.
fn dev_vars(root: &Path) -> Result<String> {
    let path = root.join(".dev.vars");
    if !path.exists() {
        let body = format!(
            "PEPPER={}\nCONTENT_KEY={}\nKMS_KEY={}\nBOOTSTRAP_SECRET={}\nANTHROPIC_API_KEY=\n",
            random_hex()?,
            random_hex()?,
            random_hex()?,
            random_hex()?
        );
        std::fs::write(&path, body).map_err(|e| format!("writing .dev.vars: {e}"))?;
    }
    let text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
    text.lines()
        .find_map(|l| l.strip_prefix("BOOTSTRAP_SECRET="))
        .map(str::to_string)
        .ok_or_else(|| ".dev.vars lacks BOOTSTRAP_SECRET".into())
}

struct Guard(Vec<Child>);

impl Drop for Guard {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn dev(tools: &Tools, args: &[String]) -> Result<()> {
    let root = root();
    let mut port = 8787u16;
    let mut with_agent = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--with-agent" => with_agent = true,
            "--port" => {
                port = it
                    .next()
                    .and_then(|p| p.parse().ok())
                    .ok_or("--port needs a number")?
            }
            other => return Err(format!("unknown dev option {other}")),
        }
    }
    let state = root.join(".tally-dev");
    let persist = state.join("wrangler");
    std::fs::create_dir_all(&persist).map_err(|e| e.to_string())?;
    let bootstrap_secret = dev_vars(&root)?;
    // Every shard of wrangler.toml, as deploy migrates them remotely.
    let template = std::fs::read_to_string(root.join("wrangler.toml"))
        .map_err(|e| format!("wrangler.toml: {e}"))?;
    for shard in crate::deploy::d1_shards(&template)? {
        step(
            &format!("apply D1 migrations to {} (local)", shard.binding),
            || {
                let mut c = Command::new(&tools.wrangler);
                c.args([
                    "d1",
                    "migrations",
                    "apply",
                    &shard.binding,
                    "--local",
                    "--persist-to",
                ])
                .arg(&persist)
                .current_dir(&root)
                .env("CI", "1");
                tools.apply_env(&mut c);
                run(&mut c)
            },
        )?;
    }
    let mut c = Command::new(&tools.wrangler);
    c.args([
        "dev",
        "--ip",
        "127.0.0.1",
        "--port",
        &port.to_string(),
        "--test-scheduled",
        "--show-interactive-dev-session=false",
        "--persist-to",
    ])
    .arg(&persist)
    .current_dir(&root)
    .stdin(Stdio::null());
    tools.apply_env(&mut c);
    let wrangler = c.spawn().map_err(|e| format!("starting wrangler: {e}"))?;
    let mut guard = Guard(vec![wrangler]);
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if ureq::get(&format!("{base}/healthz")).call().is_ok() {
            break;
        }
        if Instant::now() > deadline {
            return Err("wrangler dev did not become ready within 90 s".into());
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let resp: serde_json::Value = ureq::post(&format!("{base}/v1/admin/bootstrap"))
        .set("Authorization", &format!("Bearer {bootstrap_secret}"))
        .send_json(serde_json::json!({
            "team_name": "My team", "owner_email": "owner@localhost", "developer_name": "this machine", "only_if_empty": true
        }))
        .map_err(|e| format!("bootstrap: {e}"))?
        .into_json()
        .map_err(|e| e.to_string())?;
    eprintln!();
    eprintln!("  Tally is running.  Dashboard: {base}/");
    if resp["created"] == true {
        let link = format!("{base}{}", resp["signin_path"].as_str().unwrap_or_default());
        let token = resp["install_token"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        std::fs::write(state.join("owner-signin.txt"), &link).map_err(|e| e.to_string())?;
        eprintln!("  Owner sign-in (one-time, 24 h): {link}");
        eprintln!("  Install an agent:  tally install --server {base} --token {token}");
        if with_agent {
            guard
                .0
                .push(start_agent(tools, &root, &state, &base, &token)?);
        }
    } else {
        eprintln!("  The database already has a team; its first sign-in link was printed at the first start");
        eprintln!(
            "  (also saved in .tally-dev/owner-signin.txt). Delete .tally-dev/ to start afresh."
        );
        if with_agent {
            eprintln!("  --with-agent: the agent enrolled at the first start keeps its token in .tally-dev/agent.");
            guard.0.push(spawn_agent_run(&root, &state)?);
        }
    }
    eprintln!("  Ctrl-C stops everything.");
    let status = guard.0[0].wait().map_err(|e| e.to_string())?;
    eprintln!("wrangler exited ({status})");
    Ok(())
}

fn agent_bin(root: &Path) -> Result<std::path::PathBuf> {
    run(crate::setup::cargo()
        .args(["build", "--release", "-p", "tally"])
        .current_dir(root))?;
    Ok(root.join("target/release/tally"))
}

fn start_agent(
    _tools: &Tools,
    root: &Path,
    state: &Path,
    base: &str,
    token: &str,
) -> Result<Child> {
    let bin = agent_bin(root)?;
    let home = state.join("agent");
    run(Command::new(&bin)
        .args([
            "install",
            "--server",
            base,
            "--token",
            token,
            "--backfill",
            "30",
        ])
        .env("TALLY_HOME", &home))?;
    spawn_agent_run(root, state)
}

fn spawn_agent_run(root: &Path, state: &Path) -> Result<Child> {
    let bin = agent_bin(root)?;
    let home = state.join("agent");
    let mut c = Command::new(&bin);
    c.arg("run").env("TALLY_HOME", &home);
    let has_logs = ["~/.claude/projects", "~/.config/claude/projects"]
        .iter()
        .any(|p| Path::new(&p.replace('~', &std::env::var("HOME").unwrap_or_default())).is_dir());
    if !has_logs && std::env::var_os("CLAUDE_CONFIG_DIR").is_none() {
        let demo = state.join("demo-claude");
        run(Command::new(&bin)
            .args(["demo-data", "--out"])
            .arg(&demo)
            .env("TALLY_HOME", &home))?;
        eprintln!(
            "  No Claude Code logs here: the agent reads a generated demo data set ({}).",
            demo.display()
        );
        c.env("CLAUDE_CONFIG_DIR", &demo);
    }
    c.spawn().map_err(|e| format!("starting the agent: {e}"))
}
