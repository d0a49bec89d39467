//! `tally preview`: exactly what would leave the machine for the last N
//! requests, built by the same code as a real run.

use std::collections::HashMap;
use std::path::PathBuf;

use tally::config::Config;
use tally::error::AgentError;
use tally::home::Home;
use tally::index::Index;
use tally::ollama::Ollama;
use tally::ship;
use tally::source::{self, Text};

/// Reads the most recently written logs in full until it has the last `n`
/// requests, then builds their events exactly as a run would now.
pub fn preview(n: usize) -> Result<(), AgentError> {
    let home = Home::from_env();
    let cfg = Config::load(&home)?;
    let sources = source::all_from_env();
    // Newest files first; stop once enough requests were seen.
    let mut files: Vec<(i64, usize, PathBuf)> = Vec::new();
    for (si, s) in sources.iter().enumerate() {
        for p in s.discover() {
            let m = tally::tail::stat(&p).map(|i| i.mtime_ms).unwrap_or(0);
            files.push((m, si, p));
        }
    }
    files.sort_by_key(|f| std::cmp::Reverse(f.0));
    // In memory only: the preview must not move the real index's checkpoints.
    let mut ix = Index::new(String::new());
    let mut texts: HashMap<u32, Text> = HashMap::new();
    for (_, si, path) in files {
        if ix.records.len() >= n.max(1) * 4 {
            break;
        }
        // Everything settled, all text kept: the preview shows the full content.
        let out = ix.scan_files(&sources, vec![(si, path)], i64::MAX, Some(i64::MIN), false);
        for (i, t) in out.texts {
            texts.entry(i).or_insert(t);
        }
    }
    let mut order: Vec<u32> = (0..ix.records.len() as u32).collect();
    order.sort_by_key(|&i| (ix.records[i as usize].ts, ix.records[i as usize].id));
    let skip = order.len().saturating_sub(n);
    let mut ollama = Ollama::for_config(&cfg);
    let events: Vec<_> = order[skip..]
        .iter()
        .map(|&i| {
            ship::build_event(
                &ix,
                i,
                texts.get(&i),
                cfg.effective_mode(),
                &cfg.salt,
                ollama.as_mut(),
            )
        })
        .collect();
    println!(
        "{}",
        serde_json::to_string_pretty(&events).map_err(AgentError::serialize("the preview"))?
    );
    // The events go to stdout (pipe-able JSON); everything else that leaves
    // the machine is listed on stderr.
    eprintln!("{}", what_else_leaves(&cfg));
    if let Some(e) = ollama.and_then(|o| o.down) {
        eprintln!("note: no categories: {e}");
    }
    Ok(())
}

/// Everything besides the events above that this agent sends, as the README
/// lists it.
pub fn what_else_leaves(cfg: &Config) -> String {
    let ceiling = cfg.max_mode.map(|m| m.as_str()).unwrap_or("none");
    let ollama = if cfg.effective_mode() == tally_core::event::PrivacyMode::CategorizeLocal {
        let (url, model) = cfg.ollama();
        format!("\n- each new prompt's text to Ollama at {url} ({model}) for its category: keep that URL on this machine")
    } else {
        String::new()
    };
    format!(
        "privacy mode: {} (team: {}, this machine's ceiling: {ceiling})\n\
         besides the events above, this agent sends:\n\
         - with every upload to {}/v1/events: the batch id (a hash of its event ids), the agent token, \
         headers Tally-Agent-Version: {} and Tally-Quarantined: <events held back>\n\
         - when `tally run` starts and every 5 minutes while it runs, GET {}/v1/agent/config with the agent token (the answer carries the team's mode and burst capacity)\n\
         - once, at enrolment: the install token and the hostname as {}{ollama}",
        cfg.effective_mode().as_str(),
        cfg.privacy_mode.as_str(),
        cfg.server,
        tally::upload::AGENT_VERSION,
        cfg.server,
        match &cfg.hostname_sent {
            Some(h) => format!("{h:?}"),
            None => "sent by an older agent (in clear) or not at all".into(),
        }
    )
}
