//! `tally report`: usage and cost from the local index, enrolled or not.

use clap::ValueEnum;
use tally_core::event::AgentKind;

use tally::config::Config;
use tally::error::AgentError;
use tally::home::Home;
use tally::report::{self, Filter, Group};
use tally::{now_ms, ship, source};

#[derive(Clone, Copy, ValueEnum)]
pub enum By {
    Daily,
    Session,
    Project,
    /// Per project and git branch.
    Branch,
    Model,
}

/// The agents `--agent` names (the wire's agent kinds that have a local source).
#[derive(Clone, Copy, ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum Agent {
    ClaudeCode,
    Codex,
    GeminiCli,
    Opencode,
}

impl From<Agent> for AgentKind {
    fn from(a: Agent) -> AgentKind {
        match a {
            Agent::ClaudeCode => AgentKind::ClaudeCode,
            Agent::Codex => AgentKind::Codex,
            Agent::GeminiCli => AgentKind::GeminiCli,
            Agent::Opencode => AgentKind::OpenCode,
        }
    }
}

impl From<By> for Group {
    fn from(by: By) -> Group {
        match by {
            By::Daily => Group::Daily,
            By::Session => Group::Session,
            By::Project => Group::Project,
            By::Branch => Group::Branch,
            By::Model => Group::Model,
        }
    }
}

pub fn report(
    by: By,
    json_out: bool,
    since: Option<String>,
    until: Option<String>,
    timezone: Option<String>,
    agent: Option<Agent>,
) -> Result<(), AgentError> {
    let filter = Filter {
        since: report::parse_day("--since", since.as_deref())?,
        until: report::parse_day("--until", until.as_deref())?,
        tz: report::parse_tz(timezone.as_deref())?,
        agent: agent.map(AgentKind::from),
    };
    if let (Some(s), Some(u)) = (filter.since, filter.until) {
        if s > u {
            return Err(AgentError::SinceAfterUntil);
        }
    }
    let home = Home::from_env();
    // Enrolled or not, a report reads the same index; when enrolled, what is
    // ready to ship is queued on the way (the outbox is the only place text
    // is kept, so it must be taken while it is read).
    let cfg = Config::load_if_enrolled(&home)?;
    let sources = source::all_from_env();
    let synced = ship::sync(&home, &sources, cfg.as_ref(), now_ms(), !json_out)?;
    let r = report::build(&synced.index, by.into(), &filter);
    if json_out {
        println!("{}", report::to_json(&r));
    } else {
        print!("{}", report::to_table(&r));
    }
    let (malformed, files) = synced.index.malformed_summary();
    if malformed > 0 {
        eprintln!("note: {malformed} malformed log lines in {files} files were skipped (see `tally doctor`)");
    }
    if !r.unpriced_models.is_empty() {
        eprintln!(
            "note: no price for {}; their requests are unpriced and not in cost_usd",
            r.unpriced_models.join(", ")
        );
    }
    Ok(())
}
