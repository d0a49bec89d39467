//! The index on disk: fixed little-endian fields (strings, file
//! checkpoints, records, ids queued under other roots) and a CRC-32 at the
//! end, written privately and atomically; a damaged file is rebuilt from the
//! logs rather than trusted.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;

use tally_core::event::AgentKind;
use tally_core::usage::TokenUsage;

use super::{FileEntry, Index, Record};
use crate::error::AgentError;
use crate::home::Home;
use crate::source::EventId;
use crate::tail::Checkpoint;

const MAGIC: &[u8; 8] = b"TALLYIX2";
/// The format before records named their branch: read only for what it had
/// already queued, then rebuilt from the logs so every record gets its branch.
const MAGIC_V1: &[u8; 8] = b"TALLYIX1";

impl Index {
    /// The saved index for these log roots; a missing or damaged file gives an
    /// empty index, which the next scan fills from the logs.
    pub fn load(home: &Home, roots_sig: &str) -> Result<Index, AgentError> {
        let path = home.index();
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Index::new(roots_sig.to_string()))
            }
            Err(e) => return Err(AgentError::io("reading", &path, e)),
        };
        let v1 = bytes.starts_with(MAGIC_V1);
        match decode(&bytes) {
            Some(ix) if ix.roots_sig == roots_sig && !v1 => Ok(ix),
            // Other log directories than last time (or an index of before
            // branches): count afresh rather than mix them, but remember
            // what was already shipped.
            Some(old) => {
                let mut ix = Index::new(roots_sig.to_string());
                ix.queued_elsewhere = old.queued_elsewhere;
                ix.queued_elsewhere
                    .extend(old.records.iter().filter(|r| r.queued).map(|r| r.id));
                ix.outbox_seq = old.outbox_seq;
                Ok(ix)
            }
            None => {
                eprintln!(
                    "warning: the local index {} is damaged; rebuilding it from the logs",
                    path.display()
                );
                Ok(Index::new(roots_sig.to_string()))
            }
        }
    }

    pub fn save(&mut self, home: &Home) -> Result<(), AgentError> {
        home.write_private(&home.index(), &encode(self))?;
        self.dirty = false;
        Ok(())
    }
}

/// Appends little-endian fields; strings are length-prefixed.
struct W(Vec<u8>);

impl W {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn str(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.0.extend_from_slice(s.as_bytes());
    }
}

/// Reads what `W` wrote; `None` for anything short or malformed.
struct R<'a>(&'a [u8]);

impl<'a> R<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn str(&mut self) -> Option<String> {
        let n = self.u32()? as usize;
        String::from_utf8(self.take(n)?.to_vec()).ok()
    }
}

fn agent_code(a: AgentKind) -> u8 {
    AgentKind::ALL.iter().position(|x| *x == a).unwrap_or(0) as u8
}

fn agent_from(c: u8) -> Option<AgentKind> {
    AgentKind::ALL.get(c as usize).copied()
}

fn encode(ix: &Index) -> Vec<u8> {
    let mut w = W(Vec::with_capacity(64 + ix.records.len() * 96));
    w.0.extend_from_slice(MAGIC);
    w.str(&ix.roots_sig);
    w.u64(ix.outbox_seq);
    w.u64(ix.late_updates);
    w.u32(ix.strings.len() as u32);
    for s in &ix.strings {
        w.str(s);
    }
    w.u32(ix.files.len() as u32);
    for (p, f) in &ix.files {
        w.str(&p.to_string_lossy());
        w.u8(agent_code(f.agent));
        for v in [
            f.cp.dev,
            f.cp.ino,
            f.cp.fingerprint,
            f.cp.offset,
            f.cp.size,
            f.cp.mtime_ms as u64,
            f.malformed,
            f.lines,
        ] {
            w.u64(v);
        }
    }
    w.u32(ix.records.len() as u32);
    for r in &ix.records {
        w.0.extend_from_slice(&r.id);
        w.u8(agent_code(r.agent));
        w.u64(r.ts as u64);
        w.u32(r.model);
        w.u32(r.session);
        w.u32(r.cwd);
        w.u32(r.branch);
        for v in [
            r.usage.input,
            r.usage.output,
            r.usage.cache_write_5m,
            r.usage.cache_write_1h,
            r.usage.cache_read,
        ] {
            w.u64(v);
        }
        w.u8(r.fast as u8 | (r.queued as u8) << 1);
    }
    let mut elsewhere: Vec<&EventId> = ix.queued_elsewhere.iter().collect();
    elsewhere.sort();
    w.u32(elsewhere.len() as u32);
    for id in elsewhere {
        w.0.extend_from_slice(id);
    }
    let crc = crc32fast::hash(&w.0);
    w.u32(crc);
    w.0
}

fn decode(b: &[u8]) -> Option<Index> {
    if b.len() < MAGIC.len() + 4 || (&b[..8] != MAGIC && &b[..8] != MAGIC_V1) {
        return None;
    }
    let v1 = &b[..8] == MAGIC_V1;
    let (body, crc) = b.split_at(b.len() - 4);
    if crc32fast::hash(body) != u32::from_le_bytes(crc.try_into().ok()?) {
        return None;
    }
    let mut r = R(&body[8..]);
    let roots_sig = r.str()?;
    let outbox_seq = r.u64()?;
    let late_updates = r.u64()?;
    let n = r.u32()? as usize;
    let mut strings = Vec::with_capacity(n.min(1 << 20));
    for _ in 0..n {
        strings.push(r.str()?);
    }
    let n = r.u32()? as usize;
    let mut files = BTreeMap::new();
    for _ in 0..n {
        let p = PathBuf::from(r.str()?);
        let agent = agent_from(r.u8()?)?;
        let mut v = [0u64; 8];
        for x in &mut v {
            *x = r.u64()?;
        }
        files.insert(
            p,
            FileEntry {
                agent,
                cp: Checkpoint {
                    dev: v[0],
                    ino: v[1],
                    fingerprint: v[2],
                    offset: v[3],
                    size: v[4],
                    mtime_ms: v[5] as i64,
                },
                malformed: v[6],
                lines: v[7],
            },
        );
    }
    let n = r.u32()? as usize;
    let mut records = Vec::with_capacity(n.min(1 << 24));
    let max = strings.len() as u32;
    for _ in 0..n {
        let id: EventId = r.take(16)?.try_into().ok()?;
        let agent = agent_from(r.u8()?)?;
        let ts = r.u64()? as i64;
        let (model, session, cwd) = (r.u32()?, r.u32()?, r.u32()?);
        // A v1 record has no branch; it is read only for its id and flag.
        let branch = if v1 { cwd } else { r.u32()? };
        if model >= max || session >= max || cwd >= max || branch >= max {
            return None;
        }
        let usage = TokenUsage {
            input: r.u64()?,
            output: r.u64()?,
            cache_write_5m: r.u64()?,
            cache_write_1h: r.u64()?,
            cache_read: r.u64()?,
        };
        let flags = r.u8()?;
        records.push(Record {
            id,
            agent,
            ts,
            model,
            session,
            cwd,
            branch,
            usage,
            fast: flags & 1 != 0,
            queued: flags & 2 != 0,
        });
    }
    let n = r.u32()? as usize;
    let mut queued_elsewhere = HashSet::with_capacity(n.min(1 << 24));
    for _ in 0..n {
        queued_elsewhere.insert(r.take(16)?.try_into().ok()?);
    }
    if !r.0.is_empty() {
        return None;
    }
    Some(Index {
        roots_sig,
        files,
        strings,
        string_ids: HashMap::new(),
        records,
        by_id: HashMap::new(),
        outbox_seq,
        late_updates,
        queued_elsewhere,
        dirty: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::tests::req;

    #[test]
    fn encoding_round_trips_and_detects_damage() {
        let mut ix = Index::new("sig".into());
        ix.offer(&req(1, "s1", 5));
        ix.offer(&req(2, "s2", 7));
        ix.records[1].queued = true;
        ix.records[1].fast = true;
        ix.outbox_seq = 9;
        ix.files.insert(
            PathBuf::from("/a.jsonl"),
            FileEntry {
                agent: AgentKind::Codex,
                cp: Checkpoint {
                    dev: 1,
                    ino: 2,
                    fingerprint: 3,
                    offset: 4,
                    size: 5,
                    mtime_ms: -6,
                },
                malformed: 7,
                lines: 8,
            },
        );
        ix.queued_elsewhere.insert([9; 16]);
        let bytes = encode(&ix);
        let back = decode(&bytes).unwrap();
        assert_eq!(back.queued_elsewhere, ix.queued_elsewhere);
        assert_eq!(back.records, ix.records);
        assert_eq!(back.files, ix.files);
        assert_eq!(back.strings, ix.strings);
        assert_eq!((back.outbox_seq, back.roots_sig.as_str()), (9, "sig"));
        let mut bad = bytes.clone();
        bad[20] ^= 1;
        assert!(decode(&bad).is_none());
        assert!(decode(&bytes[..bytes.len() - 1]).is_none());
    }

    /// An index written before records named their branch: its queued ids
    /// are kept (never shipped twice), everything else is read again.
    #[test]
    fn an_index_of_before_branches_is_rebuilt_keeping_what_was_queued() {
        let mut ix = Index::new("sig".into());
        ix.offer(&req(1, "s1", 5));
        ix.offer(&req(2, "s2", 7));
        ix.records[1].queued = true;
        let v2 = encode(&ix);
        // The v1 layout: the same bytes without each record's branch field.
        const V2_RECORD: usize = 16 + 1 + 8 + 12 + 4 + 40 + 1;
        let body = &v2[..v2.len() - 4];
        let records_end = body.len() - 4; // no ids queued elsewhere
        let start = records_end - 2 * V2_RECORD;
        let mut v1 = body[..start].to_vec();
        for k in 0..2 {
            let r = &body[start + k * V2_RECORD..start + (k + 1) * V2_RECORD];
            v1.extend_from_slice(&r[..37]);
            v1.extend_from_slice(&r[41..]);
        }
        v1.extend_from_slice(&body[records_end..]);
        v1[..8].copy_from_slice(MAGIC_V1);
        let crc = crc32fast::hash(&v1);
        v1.extend_from_slice(&crc.to_le_bytes());
        let old = decode(&v1).unwrap();
        assert_eq!(old.records.len(), 2);
        assert_eq!(old.records[1].id, [2; 16]);

        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path());
        std::fs::write(home.index(), &v1).unwrap();
        let loaded = Index::load(&home, "sig").unwrap();
        assert!(loaded.records.is_empty());
        assert_eq!(loaded.queued_elsewhere, HashSet::from([[2u8; 16]]));
        // Today's format loads as it was saved.
        std::fs::write(home.index(), &v2).unwrap();
        let loaded = Index::load(&home, "sig").unwrap();
        assert_eq!(loaded.records, ix.records);
        assert_eq!(loaded.str(loaded.records[0].branch), "b1");
    }
}
