//! The local index: every request counted once, across all files and runs,
//! and where reading of each file stopped.
//!
//! A warm run with nothing new only stats files and loads this file; a run
//! after new activity reads only the new bytes. Dedup follows the rules of
//! `tally_core::claude::Deduper` (largest usage wins, the session seen first
//! owns the request) but over a persistent table, so a request repeated in a
//! file read next week is still recognised.
//!
//! `scan` reads the logs into it, `codec` puts it on disk, `lock` keeps two
//! processes from changing it at once.

pub mod codec;
pub mod lock;
pub mod scan;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;

use tally_core::event::AgentKind;
use tally_core::usage::TokenUsage;

use crate::source::{EventId, Request, Source};
use crate::tail::Checkpoint;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    pub id: EventId,
    pub agent: AgentKind,
    pub ts: i64,
    pub model: u32,
    pub session: u32,
    pub cwd: u32,
    /// The git branch ("" for none), interned like the path.
    pub branch: u32,
    pub usage: TokenUsage,
    pub fast: bool,
    /// In the outbox (or already acknowledged): never built into a batch again.
    pub queued: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    pub agent: AgentKind,
    pub cp: Checkpoint,
    /// Malformed lines seen in this file (since it was last read from the start).
    pub malformed: u64,
    pub lines: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    New,
    Replaced,
    Duplicate,
}

#[derive(Default)]
pub struct Index {
    /// The sources' roots this index was built from; other roots = other index.
    pub roots_sig: String,
    pub files: BTreeMap<PathBuf, FileEntry>,
    pub strings: Vec<String>,
    string_ids: HashMap<String, u32>,
    pub records: Vec<Record>,
    by_id: HashMap<EventId, u32>,
    /// Highest outbox sequence number whose events are marked `queued` here.
    pub outbox_seq: u64,
    /// Requests that grew after they were queued (reported, never resent).
    pub late_updates: u64,
    /// Event ids queued under an index of other log roots: if the same
    /// requests are read again here they are not shipped a second time.
    pub queued_elsewhere: HashSet<EventId>,
    dirty: bool,
}

pub fn roots_signature(sources: &[Box<dyn Source>]) -> String {
    let mut parts: Vec<String> = sources
        .iter()
        .flat_map(|s| {
            s.roots()
                .into_iter()
                .map(move |r| format!("{}:{}", s.kind().as_str(), r.display()))
        })
        .collect();
    parts.sort();
    parts.join("\n")
}

impl Index {
    pub fn new(roots_sig: String) -> Index {
        Index {
            roots_sig,
            dirty: true,
            ..Default::default()
        }
    }

    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    pub fn mark_dirty(&mut self) {
        self.dirty = true;
    }

    pub fn intern(&mut self, s: &str) -> u32 {
        if self.string_ids.is_empty() && !self.strings.is_empty() {
            self.rebuild_strings();
        }
        if let Some(&i) = self.string_ids.get(s) {
            return i;
        }
        let i = self.strings.len() as u32;
        self.strings.push(s.to_string());
        self.string_ids.insert(s.to_string(), i);
        i
    }

    fn rebuild_strings(&mut self) {
        self.string_ids = self
            .strings
            .iter()
            .enumerate()
            .map(|(i, s)| (s.clone(), i as u32))
            .collect();
    }

    pub fn str(&self, i: u32) -> &str {
        &self.strings[i as usize]
    }

    fn ensure_ids(&mut self) {
        if self.by_id.len() != self.records.len() {
            self.by_id = self
                .records
                .iter()
                .enumerate()
                .map(|(i, r)| (r.id, i as u32))
                .collect();
        }
    }

    pub fn find(&mut self, id: &EventId) -> Option<u32> {
        self.ensure_ids();
        self.by_id.get(id).copied()
    }

    /// Counts a request line: the first line of a request creates it, a later
    /// line with larger usage replaces its usage, anything else is a duplicate.
    pub fn offer(&mut self, req: &Request) -> (u32, Offer) {
        self.ensure_ids();
        if let Some(&i) = self.by_id.get(&req.id) {
            let r = &mut self.records[i as usize];
            if req.usage.weight() > r.usage.weight() {
                r.usage = req.usage;
                r.fast = req.fast;
                if r.queued {
                    self.late_updates += 1;
                }
                self.dirty = true;
                return (i, Offer::Replaced);
            }
            return (i, Offer::Duplicate);
        }
        let rec = Record {
            id: req.id,
            agent: req.agent,
            ts: req.ts,
            model: self.intern(&req.model),
            session: self.intern(&req.session_id),
            cwd: self.intern(&req.cwd),
            branch: self.intern(&req.branch),
            usage: req.usage,
            fast: req.fast,
            queued: self.queued_elsewhere.contains(&req.id),
        };
        let i = self.records.len() as u32;
        self.records.push(rec);
        self.by_id.insert(req.id, i);
        self.dirty = true;
        (i, Offer::New)
    }

    /// Forgets where files were read to (keeping every counted request), so
    /// the next scan reads everything again, e.g. to collect the text of
    /// requests that just became shippable.
    pub fn reset_checkpoints(&mut self) {
        self.files.clear();
        self.dirty = true;
    }

    /// Malformed lines across all files, and how many files have any.
    pub fn malformed_summary(&self) -> (u64, usize) {
        let n: u64 = self.files.values().map(|f| f.malformed).sum();
        let files = self.files.values().filter(|f| f.malformed > 0).count();
        (n, files)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn req(id: u8, session: &str, out: u64) -> Request {
        Request {
            id: [id; 16],
            agent: AgentKind::ClaudeCode,
            ts: 1_000,
            model: "m".into(),
            usage: TokenUsage {
                input: 10,
                output: out,
                ..Default::default()
            },
            fast: false,
            session_id: session.into(),
            cwd: "/w".into(),
            branch: format!("b{id}"),
            line_tag: out,
            text: None,
        }
    }

    #[test]
    fn largest_usage_wins_and_duplicates_count_once() {
        let mut ix = Index::new(String::new());
        assert_eq!(ix.offer(&req(1, "s1", 5)).1, Offer::New);
        assert_eq!(ix.offer(&req(1, "s1", 300)).1, Offer::Replaced);
        assert_eq!(ix.offer(&req(1, "s2", 300)).1, Offer::Duplicate);
        assert_eq!(ix.offer(&req(1, "s2", 20)).1, Offer::Duplicate);
        assert_eq!(ix.offer(&req(2, "s2", 1)).1, Offer::New);
        assert_eq!(ix.records.len(), 2);
        assert_eq!(ix.records[0].usage.output, 300);
        // The first session keeps the request.
        assert_eq!(ix.str(ix.records[0].session), "s1");
        ix.records[0].queued = true;
        assert_eq!(ix.offer(&req(1, "s1", 301)).1, Offer::Replaced);
        assert_eq!(ix.late_updates, 1);
    }
}
