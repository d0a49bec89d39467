//! `tally`: the agent every developer installs.
//!
//! This file only parses the command line and dispatches; each command's
//! body is in `cmd/`, and everything they share is in the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use tally::config::{default_ollama_model, default_ollama_url};
use tally_core::event::PrivacyMode;

mod cmd;

use cmd::report::{Agent, By};

#[derive(Parser)]
#[command(
    name = "tally",
    version,
    about = "Exact, private accounting of AI coding-agent usage"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Enroll this machine with a one-time install token from your team admin.
    Install {
        #[arg(long)]
        server: String,
        #[arg(long)]
        token: String,
        /// Also ship the last DAYS days of history (default: only new activity).
        #[arg(long, value_name = "DAYS")]
        backfill: Option<u32>,
        /// Ollama for the categorize-local privacy mode.
        #[arg(long, default_value_t = default_ollama_url())]
        ollama_url: String,
        #[arg(long, default_value_t = default_ollama_model())]
        ollama_model: String,
        /// This machine's privacy ceiling: never send more than this mode
        /// permits, whatever the team's mode (off, categorize_local,
        /// categorize_cloud, full).
        #[arg(long, value_name = "MODE", value_parser = parse_mode)]
        max_mode: Option<PrivacyMode>,
        /// Send this machine's hostname in clear at enrolment (default: a
        /// short hash of it, which still tells machines apart).
        #[arg(long)]
        send_hostname: bool,
    },
    /// Ship usage to the team server, in the foreground.
    Run {
        /// Ship what is there now and exit.
        #[arg(long)]
        once: bool,
        /// Seconds between rescans when no file change is noticed.
        #[arg(long, default_value_t = 30)]
        interval: u64,
        /// Write output to this file (rotated at 8 MiB, one old file kept)
        /// instead of stderr; the macOS service uses it.
        #[arg(long)]
        log_file: Option<std::path::PathBuf>,
    },
    /// Enrolment, privacy mode, key storage and what is waiting to be sent.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Exactly the JSON that would leave this machine for the last N requests.
    Preview {
        #[arg(short = 'n', long, default_value_t = 5)]
        n: usize,
        /// Accepted for symmetry; the preview is always JSON.
        #[arg(long)]
        json: bool,
    },
    /// Usage and cost from the local logs (works offline, without enrolment).
    Report {
        #[arg(value_enum)]
        by: By,
        #[arg(long)]
        json: bool,
        /// First day to include (YYYY-MM-DD), in --timezone.
        #[arg(long)]
        since: Option<String>,
        /// Last day to include (YYYY-MM-DD), in --timezone.
        #[arg(long)]
        until: Option<String>,
        /// IANA time zone for days, "UTC", or "local" (default).
        #[arg(long)]
        timezone: Option<String>,
        /// Only one agent's usage (default: every agent).
        #[arg(long, value_enum)]
        agent: Option<Agent>,
    },
    /// Installs the server's current agent release over this binary
    /// (checksum verified) and restarts the service if it is installed.
    Update,
    /// Checks everything the agent depends on and says what to fix.
    Doctor {
        #[arg(long)]
        json: bool,
    },
    /// Open your own read-only view of what the team server holds about
    /// you: your usage, and who read your content (a one-time link).
    Dashboard {
        /// Only print the link; do not start a browser.
        #[arg(long)]
        print: bool,
    },
    /// Run `tally run` in the background (systemd user unit / launchd agent).
    Service {
        #[command(subcommand)]
        action: ServiceAction,
    },
    /// Removes the agent token, the outbox and its key, and the service.
    Uninstall {
        #[arg(long)]
        json: bool,
    },
    /// Write a generated Claude Code–format data set (for demos and benchmarks).
    DemoData {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 12)]
        sessions: u32,
        #[arg(long, default_value_t = 40)]
        requests: u32,
        /// Instead: a realistic benchmark corpus of about this many MiB.
        #[arg(long, value_name = "MIB")]
        corpus_mib: Option<u64>,
    },
}

#[derive(Subcommand)]
enum ServiceAction {
    Install {
        /// Only write the unit file.
        #[arg(long)]
        no_start: bool,
    },
    Uninstall,
    /// Whether the service is installed, runs this binary and is active.
    Status {
        #[arg(long)]
        json: bool,
    },
}

fn parse_mode(s: &str) -> Result<PrivacyMode, String> {
    PrivacyMode::parse(s).ok_or_else(|| {
        format!("{s:?} is not a privacy mode: use off, categorize_local, categorize_cloud or full")
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Install {
            server,
            token,
            backfill,
            ollama_url,
            ollama_model,
            max_mode,
            send_hostname,
        } => cmd::install::install(cmd::install::InstallArgs {
            server,
            token,
            backfill,
            ollama_url,
            ollama_model,
            max_mode,
            send_hostname,
        }),
        Cmd::Run {
            once,
            interval,
            log_file,
        } => cmd::run::run(once, Duration::from_secs(interval.max(1)), log_file),
        Cmd::Status { json } => cmd::status::status(json),
        Cmd::Preview { n, json: _ } => cmd::preview::preview(n),
        Cmd::Report {
            by,
            json,
            since,
            until,
            timezone,
            agent,
        } => cmd::report::report(by, json, since, until, timezone, agent),
        Cmd::Doctor { json } => cmd::doctor::doctor(json),
        Cmd::Update => cmd::update::update(),
        Cmd::Dashboard { print } => cmd::dashboard::dashboard(print),
        Cmd::Service { action } => match action {
            ServiceAction::Install { no_start } => cmd::service::install(!no_start),
            ServiceAction::Uninstall => cmd::service::uninstall(),
            ServiceAction::Status { json } => cmd::service::status(json),
        },
        Cmd::Uninstall { json } => cmd::uninstall::uninstall(json),
        Cmd::DemoData {
            out,
            corpus_mib: Some(mib),
            ..
        } => cmd::demo_data::corpus(&out, mib),
        Cmd::DemoData {
            out,
            sessions,
            requests,
            corpus_mib: None,
        } => cmd::demo_data::transcripts(&out, sessions, requests),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tally: {e}");
            ExitCode::FAILURE
        }
    }
}
