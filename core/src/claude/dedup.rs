//! Counting each request once across all files of a run.

use std::hash::BuildHasher;

use super::{key_parts, ClaudeRequest};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// First line of this request.
    New,
    /// A later line of a known request with larger usage: its usage now counts.
    Replaced,
    /// A known request whose usage did not grow: not counted again.
    Duplicate,
}

struct Slot {
    req: ClaudeRequest,
    /// Tags of the owner-session lines whose content is merged in; the first
    /// is kept inline because most requests have one line.
    first_line: u64,
    more_lines: Vec<u64>,
}

/// Counts each request once across all files of a run.
///
/// Streaming splits write one response as several lines with the same ids and
/// a growing `output_tokens`: the largest usage wins, and the text and tool
/// names of the owner session's lines are merged, in order. Resumed sessions
/// repeat earlier lines under another `sessionId`: the session seen first keeps
/// the request. Memory is one `u32` index per request in the hash table plus
/// the request itself.
pub struct Deduper {
    slots: Vec<Slot>,
    table: hashbrown::HashTable<u32>,
    hasher: hashbrown::DefaultHashBuilder,
}

impl Default for Deduper {
    fn default() -> Self {
        Self::new()
    }
}

impl Deduper {
    pub fn new() -> Self {
        Deduper {
            slots: Vec::new(),
            table: hashbrown::HashTable::new(),
            hasher: Default::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    pub fn offer(&mut self, req: ClaudeRequest) -> Offer {
        let hash = self.hasher.hash_one(key_parts(&req));
        // Identifies the line, so a line offered twice does not repeat its content.
        let line_tag = if req.uuid.is_empty() {
            self.hasher.hash_one((&req.text, &req.tool_names))
        } else {
            self.hasher.hash_one(&req.uuid)
        };
        let slots = &self.slots;
        let found = self
            .table
            .find(hash, |&i| {
                key_parts(&slots[i as usize].req) == key_parts(&req)
            })
            .copied();
        let Some(i) = found else {
            let i = u32::try_from(self.slots.len()).expect("fewer than 2^32 requests");
            self.slots.push(Slot {
                req,
                first_line: line_tag,
                more_lines: Vec::new(),
            });
            let (slots, hasher) = (&self.slots, &self.hasher);
            self.table.insert_unique(hash, i, |&j| {
                hasher.hash_one(key_parts(&slots[j as usize].req))
            });
            return Offer::New;
        };
        let slot = &mut self.slots[i as usize];
        let seen = slot.first_line == line_tag || slot.more_lines.contains(&line_tag);
        if slot.req.session_id == req.session_id && !seen {
            slot.more_lines.push(line_tag);
            if let Some(t) = req.text {
                slot.req.text = Some(match slot.req.text.take() {
                    Some(mut old) => {
                        old.push('\n');
                        old.push_str(&t);
                        old
                    }
                    None => t,
                });
            }
            slot.req.tool_names.extend(req.tool_names);
        }
        if req.usage.weight() > slot.req.usage.weight() {
            slot.req.usage = req.usage;
            slot.req.fast = req.fast;
            Offer::Replaced
        } else {
            Offer::Duplicate
        }
    }

    /// The counted requests, in first-seen order.
    pub fn into_requests(self) -> Vec<ClaudeRequest> {
        self.slots.into_iter().map(|s| s.req).collect()
    }
}
