//! The local index: every request counted once, across all files and runs,
//! and where reading of each file stopped.
//!
//! A warm run with nothing new only stats files and loads this file; a run
//! after new activity reads only the new bytes. Dedup follows the rules of
//! `tally_core::claude::Deduper` (largest usage wins, the session seen first
//! owns the request) but over a persistent table, so a request repeated in a
//! file read next week is still recognised.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use tally_core::event::AgentKind;
use tally_core::usage::TokenUsage;

use crate::source::{EventId, Parsed, Request, Source, Text};
use crate::tail::{self, Checkpoint, Resume};

const MAGIC: &[u8; 8] = b"TALLYIX1";

/// A request whose file has not changed for this long is complete: Claude
/// Code writes the lines of one streamed response within seconds.
pub const SETTLE_MS: i64 = 30_000;
/// A request whose newest line is this old is complete even if the file is
/// still being written (by hooks, other lines, or a copy made just now).
pub const STALE_MS: i64 = 90_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    pub id: EventId,
    pub agent: AgentKind,
    pub ts: i64,
    pub model: u32,
    pub session: u32,
    pub cwd: u32,
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

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ScanStats {
    pub files: usize,
    pub files_read: usize,
    pub bytes_read: u64,
    pub lines: u64,
    pub malformed: u64,
    pub new_requests: u64,
    pub replaced: u64,
    pub duplicates: u64,
    pub unreadable: Vec<String>,
}

/// What a scan learnt beyond the index itself.
#[derive(Default)]
pub struct ScanOutcome {
    pub stats: ScanStats,
    /// Text of shippable requests read in this scan, by record index.
    pub texts: HashMap<u32, Text>,
    /// Records whose response may still be being written.
    pub unsettled: HashSet<u32>,
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

    // -----------------------------------------------------------------------
    // Persistence

    pub fn load(path: &Path, roots_sig: &str) -> Result<Index, String> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Index::new(roots_sig.to_string()))
            }
            Err(e) => return Err(format!("reading {}: {e}", path.display())),
        };
        match decode(&bytes) {
            Some(ix) if ix.roots_sig == roots_sig => Ok(ix),
            // Other log directories than last time: count afresh rather than
            // mix them, but remember what was already shipped.
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

    pub fn save(&mut self, path: &Path) -> Result<(), String> {
        crate::config::write_private(path, &encode(self))?;
        self.dirty = false;
        Ok(())
    }

    // -----------------------------------------------------------------------
    // Scanning

    /// Reads what is new in every source's files into the index.
    /// `text_since`: keep the text of requests at or after this instant.
    pub fn scan(
        &mut self,
        sources: &[Box<dyn Source>],
        now_ms: i64,
        text_since: Option<i64>,
        progress: bool,
    ) -> ScanOutcome {
        let mut files = Vec::new();
        for (si, src) in sources.iter().enumerate() {
            files.extend(src.discover().into_iter().map(|p| (si, p)));
        }
        self.scan_files(sources, files, now_ms, text_since, progress)
    }

    /// Reads what is new in the given files (`(source index, path)`).
    pub fn scan_files(
        &mut self,
        sources: &[Box<dyn Source>],
        files: Vec<(usize, PathBuf)>,
        now_ms: i64,
        text_since: Option<i64>,
        progress: bool,
    ) -> ScanOutcome {
        let mut out = ScanOutcome::default();
        let mut jobs: Vec<Job> = Vec::new();
        {
            for (si, path) in files {
                let src = &sources[si];
                out.stats.files += 1;
                let Ok(id) = tail::stat(&path) else {
                    continue;
                };
                let prev = self.files.get(&path).map(|f| &f.cp);
                let mut r = tail::resume(prev, &id, || tail::fingerprint(&path));
                if !src.resumable() {
                    r = match r {
                        Resume::Unchanged => Resume::Unchanged,
                        _ => match prev {
                            Some(p) if p.size == id.size && p.mtime_ms == id.mtime_ms => {
                                Resume::Unchanged
                            }
                            _ => Resume::Restart,
                        },
                    };
                }
                let start = match r {
                    Resume::Unchanged => continue,
                    Resume::At(o) => o,
                    Resume::Restart => 0,
                };
                let (malformed, lines) = match (r, self.files.get(&path)) {
                    (Resume::At(_), Some(f)) => (f.malformed, f.lines),
                    _ => (0, 0),
                };
                jobs.push(Job {
                    source: si,
                    path,
                    id,
                    start,
                    malformed,
                    lines,
                });
            }
        }
        out.stats.files_read = jobs.len();
        if jobs.is_empty() {
            return out;
        }
        let total_bytes: u64 = jobs.iter().map(|j| j.id.size.saturating_sub(j.start)).sum();
        let mut bar = progress.then(|| crate::progress::Bar::new(total_bytes));
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .clamp(1, 8)
            .min(jobs.len());
        let next = AtomicUsize::new(0);
        let (tx, rx) = mpsc::sync_channel::<(usize, FileResult)>(threads * 4);
        std::thread::scope(|scope| {
            for _ in 0..threads {
                let tx = tx.clone();
                let (jobs, next) = (&jobs, &next);
                scope.spawn(move || loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(job) = jobs.get(i) else { break };
                    let res = read_file(sources[job.source].as_ref(), job, now_ms, text_since);
                    if tx.send((i, res)).is_err() {
                        break;
                    }
                });
            }
            drop(tx);
            // Merge in discovery order, so which session owns a repeated
            // request does not depend on thread timing.
            let mut pending: BTreeMap<usize, FileResult> = BTreeMap::new();
            let mut want = 0usize;
            for (i, res) in rx {
                pending.insert(i, res);
                while let Some(res) = pending.remove(&want) {
                    if let Some(b) = bar.as_mut() {
                        b.add(res.bytes);
                    }
                    self.merge(&jobs[want], res, text_since, &mut out);
                    want += 1;
                }
            }
        });
        if let Some(b) = bar.as_mut() {
            b.finish();
        }
        out
    }

    fn merge(
        &mut self,
        job: &Job,
        res: FileResult,
        text_since: Option<i64>,
        out: &mut ScanOutcome,
    ) {
        let st = &mut out.stats;
        if let Some(e) = res.error {
            st.unreadable.push(format!("{}: {e}", job.path.display()));
            return;
        }
        st.bytes_read += res.bytes;
        st.lines += res.lines;
        st.malformed += res.malformed;
        let mut tags: HashMap<u32, Vec<u64>> = HashMap::new();
        for item in res.items {
            let req = item.req;
            let (i, offer) = self.offer(&req);
            match offer {
                Offer::New => st.new_requests += 1,
                Offer::Replaced => st.replaced += 1,
                Offer::Duplicate => st.duplicates += 1,
            }
            if !item.settled {
                out.unsettled.insert(i);
            }
            let rec = self.records[i as usize];
            let shippable = !rec.queued && text_since.is_some_and(|s| rec.ts >= s);
            // Text merges only from the owning session's lines (a resumed
            // session's copy is the same response, not more of it).
            if let (true, Some(t)) = (shippable, req.text) {
                if self.str(rec.session) != req.session_id {
                    continue;
                }
                let seen = tags.entry(i).or_default();
                if seen.contains(&req.line_tag) {
                    continue;
                }
                seen.push(req.line_tag);
                let slot = out.texts.entry(i).or_default();
                if slot.prompt.is_none() {
                    slot.prompt = t.prompt;
                }
                if let Some(r) = t.response {
                    slot.response = Some(match slot.response.take() {
                        Some(mut old) => {
                            old.push('\n');
                            old.push_str(&r);
                            old
                        }
                        None => r,
                    });
                }
                slot.tools.extend(t.tools);
            }
        }
        let agent = res.agent;
        self.files.insert(
            job.path.clone(),
            FileEntry {
                agent,
                cp: Checkpoint {
                    dev: job.id.dev,
                    ino: job.id.ino,
                    fingerprint: res.fingerprint,
                    offset: res.offset,
                    size: job.id.size,
                    mtime_ms: job.id.mtime_ms,
                },
                malformed: job.malformed + res.malformed,
                lines: job.lines + res.lines,
            },
        );
        self.dirty = true;
    }

    /// Malformed lines across all files, and how many files have any.
    pub fn malformed_summary(&self) -> (u64, usize) {
        let n: u64 = self.files.values().map(|f| f.malformed).sum();
        let files = self.files.values().filter(|f| f.malformed > 0).count();
        (n, files)
    }
}

struct Job {
    source: usize,
    path: PathBuf,
    id: tail::FileId,
    start: u64,
    malformed: u64,
    lines: u64,
}

struct Item {
    req: Request,
    settled: bool,
}

struct FileResult {
    agent: AgentKind,
    items: Vec<Item>,
    lines: u64,
    malformed: u64,
    bytes: u64,
    offset: u64,
    fingerprint: u64,
    error: Option<String>,
}

fn read_file(src: &dyn Source, job: &Job, now_ms: i64, text_since: Option<i64>) -> FileResult {
    let mut res = FileResult {
        agent: src.kind(),
        items: Vec::new(),
        lines: 0,
        malformed: 0,
        bytes: 0,
        offset: job.start,
        fingerprint: 0,
        error: None,
    };
    let mut file = match std::fs::File::open(&job.path) {
        Ok(f) => f,
        Err(e) => {
            res.error = Some(e.to_string());
            return res;
        }
    };
    if job.start > 0 {
        use std::io::Seek;
        if let Err(e) = file.seek(std::io::SeekFrom::Start(job.start)) {
            res.error = Some(e.to_string());
            return res;
        }
    }
    let mut parser = src.parser(&job.path);
    let want = |ts: i64| text_since.is_some_and(|s| ts >= s);
    // The request whose lines are being read, with the offset of its first line.
    let mut open: Option<(EventId, u64, usize)> = None;
    let mut fp_hasher_first: Option<Vec<u8>> = None;
    let end = tail::read_lines(&mut file, job.start, |off, line| {
        res.lines += 1;
        let Some(line) = line else {
            res.malformed += 1;
            return;
        };
        if off == 0 {
            fp_hasher_first = Some(line[..line.len().min(4096)].to_vec());
        }
        match parser.line(line, &want) {
            Parsed::Request(r) => {
                match open {
                    Some((id, _, _)) if id == r.id => {}
                    _ => open = Some((r.id, off, res.items.len())),
                }
                res.items.push(Item {
                    req: *r,
                    settled: true,
                });
            }
            Parsed::Prompt => open = None,
            Parsed::Skip => {}
            Parsed::Malformed => res.malformed += 1,
        }
    });
    let end = match end {
        Ok(e) => e,
        Err(e) => {
            res.error = Some(e.to_string());
            return res;
        }
    };
    res.bytes = end - job.start;
    res.offset = end;
    // The last response of a file still being written may gain lines: it is
    // counted now, but not shipped, and read again next time.
    let idle = now_ms - job.id.mtime_ms >= SETTLE_MS;
    let stale = |from: usize| {
        let newest = res.items[from..].iter().map(|i| i.req.ts).max();
        newest.is_some_and(|t| now_ms - t >= STALE_MS)
    };
    if let (false, Some((_, first_off, from))) = (idle, open) {
        if stale(from) {
            // Complete by age; nothing to hold back.
            res.fingerprint = fingerprint_for(&fp_hasher_first, job);
            return res;
        }
        // Codex totals are final when written; only transcripts stream.
        if src.resumable() {
            for it in &mut res.items[from..] {
                it.settled = false;
            }
            res.offset = first_off;
        }
    }
    res.fingerprint = fingerprint_for(&fp_hasher_first, job);
    res
}

fn fingerprint_for(head: &Option<Vec<u8>>, job: &Job) -> u64 {
    match head {
        Some(head) => tail::fnv1a(head),
        None if job.start > 0 => tail::fingerprint(&job.path),
        None => 0,
    }
}

// ---------------------------------------------------------------------------
// Binary encoding: fixed little-endian fields, a checksum at the end.

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
    if b.len() < MAGIC.len() + 4 || &b[..8] != MAGIC {
        return None;
    }
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
        if model >= max || session >= max || cwd >= max {
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

/// An exclusive advisory lock on a file, released on drop: two `tally`
/// processes never update the index or the outbox at once.
pub struct Lock(std::fs::File);

impl Lock {
    pub fn acquire(path: &Path, wait: bool) -> Result<Option<Lock>, String> {
        use std::os::fd::AsRawFd;
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d).map_err(|e| format!("creating {}: {e}", d.display()))?;
        }
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|e| format!("opening {}: {e}", path.display()))?;
        let op = if wait {
            libc::LOCK_EX
        } else {
            libc::LOCK_EX | libc::LOCK_NB
        };
        // SAFETY: flock on a descriptor this function owns.
        let rc = unsafe { libc::flock(f.as_raw_fd(), op) };
        if rc == 0 {
            return Ok(Some(Lock(f)));
        }
        let err = std::io::Error::last_os_error();
        if err.kind() == std::io::ErrorKind::WouldBlock {
            return Ok(None);
        }
        Err(format!("locking {}: {err}", path.display()))
    }
}

impl Lock {
    /// The lock is released when the descriptor closes.
    pub fn release(self) {
        drop(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(id: u8, session: &str, out: u64) -> Request {
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

    fn line(session: &str, msg: &str, uuid: &str, ts: &str, out: u64) -> String {
        format!(
            r#"{{"type":"assistant","uuid":"{uuid}","sessionId":"{session}","timestamp":"{ts}","cwd":"/w/p","requestId":"req_{msg}","message":{{"id":"msg_{msg}","model":"claude-sonnet-4-5-20250929","content":[{{"type":"text","text":"t{out}"}}],"usage":{{"input_tokens":10,"output_tokens":{out},"cache_creation_input_tokens":0,"cache_read_input_tokens":0}}}}}}"#
        ) + "\n"
    }

    fn sources(root: &Path) -> Vec<Box<dyn Source>> {
        vec![Box::new(crate::source::Claude {
            roots: vec![root.to_path_buf()],
        })]
    }

    const T: &str = "2025-11-22T10:00:00.000Z";
    // 2025-11-22T10:00:00Z and a minute later.
    const T_MS: i64 = 1_763_805_600_000;

    #[test]
    fn scans_count_once_across_files_subagents_and_runs() {
        let dir = tempfile::tempdir().unwrap();
        let proj = dir.path().join("projects/-w-p");
        std::fs::create_dir_all(proj.join("s1/subagents")).unwrap();
        let main = proj.join("s1.jsonl");
        // A streamed split (5 then 300 output tokens), a malformed line, an unknown type.
        let body = line("s1", "a", "u1", T, 5)
            + &line("s1", "a", "u2", T, 300)
            + "not json\n"
            + "{\"type\":\"some-future-type\"}\n"
            + &line("s1", "b", "u3", T, 7);
        std::fs::write(&main, &body).unwrap();
        std::fs::write(
            proj.join("s1/subagents/agent-x.jsonl"),
            line("s1", "c", "u4", T, 11),
        )
        .unwrap();
        // A resumed session repeating request a (smaller usage) under another session.
        std::fs::write(
            proj.join("s2.jsonl"),
            line("s2", "a", "u1", T, 5) + &line("s2", "d", "u5", T, 13),
        )
        .unwrap();
        let src = sources(dir.path());
        let later = T_MS + 3_600_000;
        let mut ix = Index::new(roots_signature(&src));
        let out = ix.scan(&src, later, None, false);
        assert_eq!(out.stats.files, 3);
        assert_eq!(out.stats.malformed, 1);
        assert_eq!(
            (
                out.stats.new_requests,
                out.stats.replaced,
                out.stats.duplicates
            ),
            (4, 1, 1)
        );
        let outs: u64 = ix.records.iter().map(|r| r.usage.output).sum();
        assert_eq!(outs, 300 + 7 + 11 + 13);
        assert_eq!(ix.malformed_summary(), (1, 1));
        // Nothing new: nothing is read.
        let again = ix.scan(&src, later, None, false);
        assert_eq!((again.stats.files_read, again.stats.bytes_read), (0, 0));
        // Appended lines: only they are read.
        let more = line("s1", "e", "u6", T, 17);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&main)
            .unwrap();
        std::io::Write::write_all(&mut f, more.as_bytes()).unwrap();
        std::io::Write::write_all(&mut f, b"{\"type\":\"assistant\",\"uuid\"").unwrap();
        let out = ix.scan(&src, later, None, false);
        assert_eq!(
            out.stats.bytes_read,
            more.len() as u64,
            "the partial last line waits"
        );
        assert_eq!((out.stats.new_requests, out.stats.malformed), (1, 0));
        assert_eq!(ix.records.len(), 5);
        // Survives a save and load (a restart, or kill -9 after the save).
        let path = dir.path().join("index.bin");
        ix.save(&path).unwrap();
        let mut back = Index::load(&path, &roots_signature(&src)).unwrap();
        assert_eq!(back.records, ix.records);
        assert_eq!(back.scan(&src, later, None, false).stats.bytes_read, 0);
        // Truncated and rewritten: read from the start; known requests are not recounted.
        std::fs::write(
            &main,
            line("s1", "a", "u1", T, 5) + &line("s1", "f", "u7", T, 19),
        )
        .unwrap();
        let out = back.scan(&src, later, None, false);
        assert_eq!((out.stats.new_requests, out.stats.duplicates), (1, 1));
        assert_eq!(back.records.len(), 6);
        // Other roots: a fresh count, but what was queued stays queued.
        back.records[0].queued = true;
        back.save(&path).unwrap();
        let other = Index::load(&path, "elsewhere").unwrap();
        assert!(other.records.is_empty());
        assert_eq!(other.queued_elsewhere.len(), 1);
    }

    #[test]
    fn the_response_being_written_is_held_and_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let proj = dir.path().join("projects/-w-p");
        std::fs::create_dir_all(&proj).unwrap();
        let f = proj.join("s1.jsonl");
        let first = line("s1", "a", "u1", T, 5);
        std::fs::write(&f, first.clone() + &line("s1", "b", "u2", T, 1)).unwrap();
        let src = sources(dir.path());
        let mtime = crate::tail::stat(&f).unwrap().mtime_ms;
        // Just written, but the transcript's own timestamps are old: b is
        // complete by age and nothing is held.
        let mut ix = Index::new(roots_signature(&src));
        let out = ix.scan(&src, mtime + 1_000, Some(0), false);
        assert_eq!(ix.records.len(), 2);
        assert!(out.unsettled.is_empty());
        // With a recent timestamp the last request is held, and its lines are read again.
        // Whole seconds, as the transcript writer in this test expects.
        let iso = |ms: i64| tally_core::time::rfc3339_ms(ms - ms.rem_euclid(1000));
        let fresh = line("s1", "c", "u3", &iso(mtime), 1);
        std::fs::write(&f, first.clone() + &fresh).unwrap();
        let mut ix = Index::new(roots_signature(&src));
        let mtime = crate::tail::stat(&f).unwrap().mtime_ms;
        let out = ix.scan(&src, mtime + 1_000, Some(0), false);
        let c = 1u32;
        assert_eq!(ix.records.len(), 2);
        assert!(out.unsettled.contains(&c));
        assert!(!out.unsettled.contains(&0));
        assert_eq!(
            ix.files[&f].cp.offset,
            first.len() as u64,
            "rewound to c's first line"
        );
        assert_eq!(out.texts[&c].response.as_deref(), Some("t1"));
        // Its second line arrives: the larger usage replaces the first, text merges.
        let grown = line("s1", "c", "u4", &iso(mtime), 40);
        let mut h = std::fs::OpenOptions::new().append(true).open(&f).unwrap();
        std::io::Write::write_all(&mut h, grown.as_bytes()).unwrap();
        let out = ix.scan(&src, mtime + 1_000, Some(0), false);
        assert_eq!(ix.records[c as usize].usage.output, 40);
        assert_eq!(out.texts[&c].response.as_deref(), Some("t1\nt40"));
        assert!(out.unsettled.contains(&c));
        // Once the file is quiet, it is complete and the checkpoint moves past it.
        let mtime = crate::tail::stat(&f).unwrap().mtime_ms;
        let out = ix.scan(&src, mtime + SETTLE_MS, Some(0), false);
        assert!(out.unsettled.is_empty());
        assert_eq!(
            ix.files[&f].cp.offset,
            (first.len() + fresh.len() + grown.len()) as u64
        );
        assert_eq!(ix.records.len(), 2);
    }
}
