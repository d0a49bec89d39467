//! The outbox: batches waiting for the server, on disk, encrypted.
//!
//! Append-only segment files of framed records:
//! `"TOB1" | seq u64 | len u32 | crc32 u32 | nonce ‖ AES-256-GCM(seq ‖ body) ‖ tag`.
//! The checksum finds a torn append after a crash without the key; the GCM
//! tag (with the sequence number as associated data) finds tampering and
//! records moved between positions. A batch is written once, with its final
//! id and bytes, so a resend after any crash is byte-identical and the server
//! applies it once.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use tally_core::seal::{open, seal, NONCE_LEN};

use crate::error::AgentError;
use crate::home::Home;

const MAGIC: &[u8; 4] = b"TOB1";
const HEADER: usize = 4 + 8 + 4 + 4;
const SEGMENT_BYTES: u64 = 4 << 20;
const AAD: &[u8] = b"tally-outbox-v1";
pub const DEFAULT_MAX_BYTES: u64 = 256 << 20;
/// Share of the bound at which `run` and `status` start warning.
pub const WARN_PERCENT: u64 = 80;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Done {
    /// Every sequence number up to this one is acknowledged or rejected.
    pub through: u64,
    /// Done sequence numbers above `through`.
    pub more: BTreeSet<u64>,
    /// Batches the server refused as invalid: kept out of the way, reported.
    #[serde(default)]
    pub rejected: Vec<Rejected>,
    /// When each pending batch was first sent (ms): after
    /// `RESEND_GIVE_UP_DAYS` the agent stops resending it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub first_attempt: BTreeMap<u64, i64>,
    /// Parts of a pending batch that are settled (accepted, or quarantined
    /// event by event) as `[from, to)` ranges of its events, when it had to
    /// be split. Parts are nodes of one fixed halving tree, so a resend after
    /// a crash sends the same parts with the same ids.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parts: BTreeMap<u64, Vec<(u32, u32)>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Rejected {
    pub seq: u64,
    pub error: String,
}

impl Done {
    pub fn contains(&self, seq: u64) -> bool {
        seq <= self.through || self.more.contains(&seq)
    }
    fn insert(&mut self, seq: u64) {
        self.more.insert(seq);
        while self.more.remove(&(self.through + 1)) {
            self.through += 1;
        }
    }
}

#[derive(Debug)]
pub struct Entry {
    pub seq: u64,
    pub body: Vec<u8>,
}

pub struct Outbox {
    home: Home,
    key: [u8; 32],
    pub max_bytes: u64,
    last_seq: u64,
    /// Sizes of the segment files, by first sequence number.
    segments: Vec<(u64, u64)>,
}

fn aad(seq: u64) -> Vec<u8> {
    let mut a = AAD.to_vec();
    a.extend_from_slice(&seq.to_le_bytes());
    a
}

/// Walks the frames of one segment; stops at the first torn or corrupt frame
/// and returns the offset where valid data ends.
fn frames(bytes: &[u8], mut f: impl FnMut(u64, &[u8])) -> usize {
    let mut pos = 0;
    while bytes.len() - pos >= HEADER {
        let h = &bytes[pos..pos + HEADER];
        if &h[..4] != MAGIC {
            break;
        }
        let seq = u64::from_le_bytes(h[4..12].try_into().unwrap());
        let len = u32::from_le_bytes(h[12..16].try_into().unwrap()) as usize;
        let crc = u32::from_le_bytes(h[16..20].try_into().unwrap());
        let Some(body) = bytes.get(pos + HEADER..pos + HEADER + len) else {
            break;
        };
        if crc32fast::hash(body) != crc {
            break;
        }
        f(seq, body);
        pos += HEADER + len;
    }
    pos
}

impl Outbox {
    /// Opens (creating) the outbox. A torn record at the end of the last
    /// segment (a crash mid-append) is cut off: it was never acknowledged to
    /// the index, so its events are read from the logs again.
    pub fn open(home: &Home, key: [u8; 32], max_bytes: u64) -> Result<Outbox, AgentError> {
        Outbox::open_with(home, key, max_bytes, true)
    }

    /// For readers that do not hold the index lock: a torn tail may be an
    /// append in progress, so it is skipped, not cut.
    pub fn open_reader(home: &Home, key: [u8; 32]) -> Result<Outbox, AgentError> {
        Outbox::open_with(home, key, DEFAULT_MAX_BYTES, false)
    }

    fn open_with(
        home: &Home,
        key: [u8; 32],
        max_bytes: u64,
        repair: bool,
    ) -> Result<Outbox, AgentError> {
        let dir = home.outbox_dir();
        crate::home::create_private_dir(&dir)?;
        let mut segments = Vec::new();
        for e in std::fs::read_dir(&dir)
            .map_err(|e| AgentError::io("reading", &dir, e))?
            .flatten()
        {
            if let Some(first) = e.file_name().to_str().and_then(Home::outbox_segment_first) {
                segments.push((first, e.metadata().map(|m| m.len()).unwrap_or(0)));
            }
        }
        segments.sort();
        let mut ob = Outbox {
            home: home.clone(),
            key,
            max_bytes,
            last_seq: 0,
            segments,
        };
        if let Some(&(first, _)) = ob.segments.last() {
            let path = ob.seg_path(first);
            let bytes = std::fs::read(&path).map_err(|e| AgentError::io("reading", &path, e))?;
            let mut last = first.saturating_sub(1);
            let good = frames(&bytes, |seq, _| last = seq);
            if good < bytes.len() && repair {
                eprintln!(
                    "warning: cutting {} bytes of an interrupted write off {}",
                    bytes.len() - good,
                    path.display()
                );
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(|e| AgentError::io("repairing", &path, e))?;
                f.set_len(good as u64)
                    .and_then(|_| f.sync_all())
                    .map_err(|e| AgentError::io("repairing", &path, e))?;
                ob.segments.last_mut().unwrap().1 = good as u64;
            }
            ob.last_seq = last;
        }
        let done = ob.done();
        ob.last_seq = ob.last_seq.max(done.through);
        Ok(ob)
    }

    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    pub fn size_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.1).sum()
    }

    pub fn has_room(&self, bytes: u64) -> bool {
        self.size_bytes() + bytes <= self.max_bytes
    }

    fn seg_path(&self, first: u64) -> PathBuf {
        self.home.outbox_segment(first)
    }

    pub fn done(&self) -> Done {
        std::fs::read(self.home.outbox_done())
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Appends batches and makes them durable before returning their numbers.
    pub fn append(&mut self, bodies: &[Vec<u8>]) -> Result<Vec<u64>, AgentError> {
        let mut seqs = Vec::with_capacity(bodies.len());
        let mut buf = Vec::new();
        for body in bodies {
            let seq = self.last_seq + 1 + seqs.len() as u64;
            let mut plain = Vec::with_capacity(8 + body.len());
            plain.extend_from_slice(&seq.to_le_bytes());
            plain.extend_from_slice(body);
            let mut nonce = [0u8; NONCE_LEN];
            getrandom::getrandom(&mut nonce)
                .map_err(|cause| AgentError::NoRandomness { purpose: "", cause })?;
            let sealed = seal(&self.key, nonce, &plain, &aad(seq));
            buf.extend_from_slice(MAGIC);
            buf.extend_from_slice(&seq.to_le_bytes());
            buf.extend_from_slice(&(sealed.len() as u32).to_le_bytes());
            buf.extend_from_slice(&crc32fast::hash(&sealed).to_le_bytes());
            buf.extend_from_slice(&sealed);
            seqs.push(seq);
        }
        if seqs.is_empty() {
            return Ok(seqs);
        }
        let roll = match self.segments.last() {
            Some(&(_, size)) => size >= SEGMENT_BYTES,
            None => true,
        };
        if roll {
            self.segments.push((seqs[0], 0));
        }
        let first = self.segments.last().unwrap().0;
        let path = self.seg_path(first);
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|e| AgentError::io("opening", &path, e))?;
        f.write_all(&buf)
            .and_then(|_| f.sync_all())
            .map_err(|e| AgentError::io("writing", &path, e))?;
        self.segments.last_mut().unwrap().1 += buf.len() as u64;
        if roll {
            if let Ok(d) = std::fs::File::open(self.home.outbox_dir()) {
                let _ = d.sync_all();
            }
        }
        self.last_seq = *seqs.last().unwrap();
        Ok(seqs)
    }

    /// Every record still on disk, decrypted, in order. A record that fails
    /// authentication is an error: the outbox was tampered with or the key changed.
    pub fn entries(&self) -> Result<Vec<Entry>, AgentError> {
        let mut out = Vec::new();
        for &(first, _) in &self.segments {
            let path = self.seg_path(first);
            let mut bytes = Vec::new();
            match std::fs::File::open(&path) {
                Ok(mut f) => f
                    .read_to_end(&mut bytes)
                    .map_err(|e| AgentError::io("reading", &path, e))?,
                // Compacted by another process meanwhile.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(AgentError::io("reading", &path, e)),
            };
            let mut err = None;
            frames(&bytes, |seq, sealed| {
                if err.is_some() {
                    return;
                }
                match open(&self.key, sealed, &aad(seq)) {
                    Ok(plain) if plain.len() >= 8 && plain[..8] == seq.to_le_bytes() => {
                        out.push(Entry {
                            seq,
                            body: plain[8..].to_vec(),
                        })
                    }
                    _ => {
                        err = Some(AgentError::Undecryptable {
                            seq,
                            path: path.clone(),
                        })
                    }
                }
            });
            if let Some(e) = err {
                return Err(e);
            }
        }
        Ok(out)
    }

    pub fn pending(&self) -> Result<Vec<Entry>, AgentError> {
        let done = self.done();
        Ok(self
            .entries()?
            .into_iter()
            .filter(|e| !done.contains(e.seq))
            .collect())
    }

    pub fn mark_done(&self, seq: u64, rejected: Option<String>) -> Result<(), AgentError> {
        let mut d = self.done();
        d.insert(seq);
        d.first_attempt.remove(&seq);
        d.parts.remove(&seq);
        if let Some(error) = rejected {
            d.rejected.push(Rejected { seq, error });
        }
        self.save_done(&d)
    }

    /// Records the progress of a pending batch (first attempt, settled parts).
    pub fn save_done(&self, d: &Done) -> Result<(), AgentError> {
        let bytes =
            serde_json::to_vec(d).map_err(AgentError::serialize("outbox acknowledgements"))?;
        self.home.write_private(&self.home.outbox_done(), &bytes)
    }

    /// Deletes segments whose every record is done and known to the index
    /// (`synced` = the index's outbox sequence number).
    pub fn compact(&mut self, synced: u64) {
        let done = self.done();
        let n = self.segments.len();
        let mut keep = Vec::with_capacity(n);
        for i in 0..n {
            let (first, size) = self.segments[i];
            // The last record of segment i is just before the next segment's first.
            let last = match self.segments.get(i + 1) {
                Some(&(next, _)) => next - 1,
                None => self.last_seq,
            };
            let removable = i + 1 < n && last <= synced && last <= done.through;
            if removable && std::fs::remove_file(self.seg_path(first)).is_ok() {
                continue;
            }
            keep.push((first, size));
        }
        self.segments = keep;
    }

    /// Event ids inside records after `seq` (normally none: only after a
    /// crash between writing a batch and saving the index).
    pub fn ids_after(&self, seq: u64) -> Result<Vec<String>, AgentError> {
        if self.last_seq <= seq {
            return Ok(Vec::new());
        }
        let mut ids = Vec::new();
        for e in self.entries()? {
            if e.seq <= seq {
                continue;
            }
            let v: serde_json::Value = serde_json::from_slice(&e.body)
                .map_err(|source| AgentError::NotABatch { seq: e.seq, source })?;
            for ev in v["events"].as_array().into_iter().flatten() {
                if let Some(id) = ev["id"].as_str() {
                    ids.push(id.to_string());
                }
            }
        }
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [7; 32];

    #[test]
    fn append_read_ack_and_compact() {
        let dir = tempfile::tempdir().unwrap();
        let mut ob = Outbox::open(&Home::at(dir.path()), KEY, DEFAULT_MAX_BYTES).unwrap();
        assert_eq!(
            ob.append(&[b"one".to_vec(), b"two".to_vec()]).unwrap(),
            vec![1, 2]
        );
        assert_eq!(ob.append(&[b"three".to_vec()]).unwrap(), vec![3]);
        let ob2 = Outbox::open(&Home::at(dir.path()), KEY, DEFAULT_MAX_BYTES).unwrap();
        assert_eq!(ob2.last_seq(), 3);
        let bodies: Vec<Vec<u8>> = ob2.pending().unwrap().into_iter().map(|e| e.body).collect();
        assert_eq!(
            bodies,
            vec![b"one".to_vec(), b"two".to_vec(), b"three".to_vec()]
        );
        ob.mark_done(2, None).unwrap();
        assert_eq!(
            ob.pending()
                .unwrap()
                .iter()
                .map(|e| e.seq)
                .collect::<Vec<_>>(),
            vec![1, 3]
        );
        ob.mark_done(1, Some("bad".into())).unwrap();
        let d = ob.done();
        assert_eq!((d.through, d.more.len(), d.rejected.len()), (2, 0, 1));
        // Nothing on disk is plaintext.
        let raw = std::fs::read(ob.seg_path(1)).unwrap();
        assert!(!raw.windows(3).any(|w| w == b"two"));
        // Wrong key: refused loudly, never silently dropped.
        let other = Outbox::open(&Home::at(dir.path()), [8; 32], DEFAULT_MAX_BYTES).unwrap();
        assert!(other
            .entries()
            .unwrap_err()
            .to_string()
            .contains("cannot be decrypted"));
    }

    #[test]
    fn a_torn_append_is_cut_off_and_numbering_continues() {
        let dir = tempfile::tempdir().unwrap();
        let mut ob = Outbox::open(&Home::at(dir.path()), KEY, DEFAULT_MAX_BYTES).unwrap();
        ob.append(&[b"a".to_vec(), b"b".to_vec()]).unwrap();
        let seg = ob.seg_path(1);
        let full = std::fs::read(&seg).unwrap();
        // Keep the first record and half of the second.
        let first_len = HEADER + NONCE_LEN + 8 + 1 + 16;
        std::fs::write(&seg, &full[..first_len + 10]).unwrap();
        let mut ob = Outbox::open(&Home::at(dir.path()), KEY, DEFAULT_MAX_BYTES).unwrap();
        assert_eq!(ob.last_seq(), 1);
        assert_eq!(std::fs::metadata(&seg).unwrap().len(), first_len as u64);
        assert_eq!(ob.append(&[b"c".to_vec()]).unwrap(), vec![2]);
        let got: Vec<(u64, Vec<u8>)> = ob
            .entries()
            .unwrap()
            .into_iter()
            .map(|e| (e.seq, e.body))
            .collect();
        assert_eq!(got, vec![(1, b"a".to_vec()), (2, b"c".to_vec())]);
    }

    #[test]
    fn compaction_keeps_what_is_not_done_or_not_synced() {
        let dir = tempfile::tempdir().unwrap();
        let mut ob = Outbox::open(&Home::at(dir.path()), KEY, DEFAULT_MAX_BYTES).unwrap();
        let big = vec![b'x'; SEGMENT_BYTES as usize];
        ob.append(std::slice::from_ref(&big)).unwrap(); // segment 1
        ob.append(&[b"y".to_vec()]).unwrap(); // rolls: segment 2
        assert_eq!(ob.segments.len(), 2);
        ob.mark_done(1, None).unwrap();
        ob.compact(0);
        assert_eq!(ob.segments.len(), 2, "not yet known to the index");
        ob.compact(1);
        assert_eq!(ob.segments.len(), 1);
        assert_eq!(ob.entries().unwrap()[0].seq, 2);
        assert!(ob.size_bytes() < 200);
        assert!(!ob.has_room(DEFAULT_MAX_BYTES));
    }
}
