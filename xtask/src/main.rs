//! Project tasks: `setup`, `build-worker`, `dev`, `test`, `deps`, `bench`, `prices`,
//! `release-agent`, `deploy`.
//!
//! Everything is fetched from package registries only (crates.io, npm): the
//! Worker toolchain is pointed at local binaries so nothing is downloaded
//! from GitHub, which these machines cannot reach.

mod bench_dashboard;
mod bench_live;
mod deploy;
mod deps;
mod dev;
mod release;
mod setup;

use std::process::ExitCode;
use std::time::Instant;

fn usage() -> ExitCode {
    eprintln!(
        "usage: cargo xtask <command>\n\n\
         commands:\n  \
         setup                 install the toolchain (idempotent) and build the Worker\n  \
         build-worker          build workers/build/index.js + wasm\n  \
         dev [--with-agent] [--port N]\n                        run the whole stack locally (wrangler dev on 127.0.0.1:8787)\n  \
         test                  fmt, clippy (native + wasm32), cargo deny, unit and end-to-end tests\n  \
         deps                  every direct dependency of every crate and why it is there\n  \
         bench                 criterion benchmarks (core, agent, the Worker's ingest CPU)\n  \
         bench-live [--devs N] [--minutes M] [--ship-interval S] [--mix faithful|random]\n                        N real agents and real-time writers (as Claude Code writes, or a random mix) on the local stack: cost per event by phase, freshness, exact totals\n  \
         bench-dashboard [--devs N] [--days D] [--runs R]\n                        a year of a 200-developer team in local D1: p50/p95 of every page and export\n  \
         prices --from FILE    regenerate core/prices/prices.json from LiteLLM's price table\n  \
         release-agent [--target T]... [--upload local|remote]\n                        build the agent (release) + SHA-256 manifest for /install.sh\n  \
         deploy [--apply] [--owner EMAIL] [--team NAME] [--url URL] [--allow-breaking]\n                        create what is missing on Cloudflare, migrate, deploy, bootstrap (dry run by default)"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = args.first() else {
        return usage();
    };
    let rest = &args[1..];
    let started = Instant::now();
    let result = match cmd.as_str() {
        "setup" => setup::setup().map(|_| ()),
        "build-worker" => setup::setup().map(|_| ()),
        "dev" => setup::setup().and_then(|tools| dev::dev(&tools, rest)),
        "test" => setup::setup().and_then(|tools| test(&tools, rest)),
        "deps" => deps::deps(),
        "bench" => bench(rest),
        "bench-live" => bench_live::bench_live(rest),
        "bench-dashboard" => bench_dashboard::bench_dashboard(rest),
        "prices" => prices(rest),
        "deploy" => setup::setup().and_then(|tools| deploy::main(&tools, rest)),
        "release-agent" => setup::setup().and_then(|tools| release::release_agent(&tools, rest)),
        _ => return usage(),
    };
    match result {
        Ok(()) => {
            eprintln!(
                "xtask {cmd}: done in {:.1}s",
                started.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("xtask {cmd}: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

pub type Result<T> = std::result::Result<T, String>;

fn test(tools: &setup::Tools, rest: &[String]) -> Result<()> {
    let root = setup::root();
    setup::step("cargo fmt --check", || {
        setup::run(
            setup::cargo()
                .args(["fmt", "--all", "--check"])
                .current_dir(&root),
        )
    })?;
    setup::step("clippy (native)", || {
        setup::run(
            setup::cargo()
                .args([
                    "clippy",
                    "--workspace",
                    "--all-targets",
                    "--",
                    "-D",
                    "warnings",
                ])
                .current_dir(&root),
        )
    })?;
    setup::step("clippy (wasm32, worker)", || {
        setup::run(
            setup::cargo()
                .args([
                    "clippy",
                    "-p",
                    "tally-worker",
                    "-p",
                    "tally-core",
                    "--target",
                    "wasm32-unknown-unknown",
                    "--",
                    "-D",
                    "warnings",
                ])
                .current_dir(&root),
        )
    })?;
    setup::step("dependency reasons (xtask deps)", deps::check_quietly)?;
    setup::step("cargo deny check licenses bans sources", || {
        // Advisories need the advisory database from the network: not here.
        setup::run(
            std::process::Command::new(tools.cargo_bin.join("cargo-deny"))
                .args([
                    "deny",
                    "check",
                    "--hide-inclusion-graph",
                    "licenses",
                    "bans",
                    "sources",
                ])
                .current_dir(&root),
        )
    })?;
    setup::step("cargo test (unit + end-to-end)", || {
        let mut c = setup::cargo();
        // The Worker's pure parts (routing, exports, ranges, errors) run
        // natively here; its bindings are covered by the e2e tests.
        c.args(["test", "--workspace", "--no-fail-fast"])
            .args(rest)
            .current_dir(&root);
        tools.apply_env(&mut c);
        setup::run(&mut c)
    })
}

fn bench(rest: &[String]) -> Result<()> {
    let root = setup::root();
    setup::run(
        setup::cargo()
            .args(["bench", "--workspace", "--exclude", "tally-worker"])
            .args(rest)
            .current_dir(&root),
    )?;
    // The Worker crate only for its bench target: its lib tests are not
    // benchmarks.
    setup::run(
        setup::cargo()
            .args(["bench", "-p", "tally-worker", "--bench", "ingest"])
            .args(rest)
            .current_dir(&root),
    )
}

fn prices(rest: &[String]) -> Result<()> {
    let from = match rest {
        [flag, path] if flag == "--from" => path,
        _ => {
            return Err(
                "usage: cargo xtask prices --from <model_prices_and_context_window.json>".into(),
            )
        }
    };
    let json = std::fs::read_to_string(from).map_err(|e| format!("reading {from}: {e}"))?;
    let table = tally_core::pricing::table_from_litellm(&json)
        .map_err(|e| format!("converting {from}: {e}"))?;
    let out = setup::root().join("core/prices/prices.json");
    std::fs::write(&out, table).map_err(|e| format!("writing {}: {e}", out.display()))?;
    eprintln!("wrote {}", out.display());
    Ok(())
}

#[cfg(test)]
mod threat_model {
    /// Every path of the Worker's routing table is an entry point in
    /// THREAT_MODEL.md, so a new route cannot go unmodelled.
    #[test]
    fn every_route_is_listed_as_an_entry_point() {
        let root = crate::setup::root();
        let routes = std::fs::read_to_string(root.join("workers/src/web/routes.rs")).unwrap();
        let model = std::fs::read_to_string(root.join("THREAT_MODEL.md")).unwrap();
        let table = routes
            .split("pub const TABLE")
            .nth(1)
            .and_then(|t| t.split("\n];").next())
            .expect("routes.rs has a TABLE");
        let paths: Vec<&str> = table.split('"').filter(|s| s.starts_with('/')).collect();
        assert!(paths.len() > 20, "{paths:?}");
        let missing: Vec<&&str> = paths
            .iter()
            .filter(|p| !model.contains(&format!("`{p}`")))
            .collect();
        assert!(
            missing.is_empty(),
            "THREAT_MODEL.md lacks routes {missing:?}"
        );
    }
}
