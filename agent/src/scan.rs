//! Reads Claude Code transcripts into priced, deduplicated local records.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use tally_core::claude::{parse_line, ClaudeLine, Deduper};
use tally_core::event::AgentKind;
use tally_core::hash::event_id;
use tally_core::pricing::{default_table, price_request, Priced};
use tally_core::privacy::LocalRecord;

/// Every `CLAUDE_CONFIG_DIR` entry (comma-separated), else both default homes.
pub fn claude_roots() -> Vec<PathBuf> {
    if let Some(v) = std::env::var_os("CLAUDE_CONFIG_DIR") {
        return v
            .to_string_lossy()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
            .collect();
    }
    let home = PathBuf::from(std::env::var_os("HOME").unwrap_or_default());
    vec![home.join(".config/claude"), home.join(".claude")]
}

/// All transcripts below `<root>/projects`, subagent files included, in a
/// stable order so first-seen ownership of resumed requests is deterministic.
pub fn claude_files(roots: &[PathBuf]) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => walk(&p, out),
                Ok(t) if t.is_file() && p.extension().is_some_and(|x| x == "jsonl") => out.push(p),
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    for r in roots {
        walk(&r.join("projects"), &mut out);
    }
    out.sort();
    out.dedup();
    out
}

#[derive(Debug, Default)]
pub struct ScanStats {
    pub files: usize,
    pub lines: u64,
    pub malformed: u64,
    pub duplicates: u64,
    pub unpriced_models: Vec<String>,
}

pub fn scan_claude(files: &[PathBuf]) -> (Vec<LocalRecord>, ScanStats) {
    let mut stats = ScanStats::default();
    let mut dedup = Deduper::new();
    // The prompt that a request answers: the latest user prompt of its session.
    let mut prompts: HashMap<String, String> = HashMap::new();
    let mut request_prompt: HashMap<(String, String), String> = HashMap::new();
    for f in files {
        let Ok(file) = std::fs::File::open(f) else {
            continue;
        };
        stats.files += 1;
        let mut r = BufReader::with_capacity(1 << 20, file);
        let mut line = Vec::new();
        loop {
            line.clear();
            match r.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            // An unterminated last line is being written right now: not malformed, not yet ours.
            if line.last() != Some(&b'\n') {
                break;
            }
            stats.lines += 1;
            match parse_line(&line) {
                ClaudeLine::Request(req) => {
                    if let Some(p) = prompts.get(&req.session_id) {
                        request_prompt
                            .entry((req.message_id.clone(), req.request_id.clone()))
                            .or_insert_with(|| p.clone());
                    }
                    if matches!(dedup.offer(req), tally_core::claude::Offer::Duplicate) {
                        stats.duplicates += 1;
                    }
                }
                ClaudeLine::Prompt(p) => {
                    prompts.insert(p.session_id.clone(), p.text);
                }
                ClaudeLine::Skip => {}
                ClaudeLine::Malformed(_) => stats.malformed += 1,
            }
        }
    }
    let table = default_table();
    let mut records = Vec::new();
    for req in dedup.into_requests() {
        let cost = match price_request(table, &req.model, &req.usage, req.fast) {
            Priced::Usd(c) => Some(c),
            Priced::Unpriced => {
                if !stats.unpriced_models.contains(&req.model) {
                    stats.unpriced_models.push(req.model.clone());
                }
                None
            }
        };
        let prompt = request_prompt.remove(&(req.message_id.clone(), req.request_id.clone()));
        records.push(LocalRecord {
            id: event_id(
                AgentKind::ClaudeCode.as_str(),
                &req.message_id,
                &req.request_id,
            ),
            ts: req.timestamp_ms,
            agent: AgentKind::ClaudeCode,
            model: req.model,
            tokens: req.usage,
            cost_micro_usd: cost,
            cwd: req.cwd.unwrap_or_default(),
            session_id: req.session_id,
            prompt,
            response: req.text,
            tools: req.tool_names,
            category: None,
        });
    }
    (records, stats)
}
