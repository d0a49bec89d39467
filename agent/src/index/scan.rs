//! Reading what is new in the logs into the index: many files at once, the
//! results merged in discovery order so dedup never depends on timing, and
//! the response still being written held back until it is complete.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use tally_core::event::AgentKind;

use super::{FileEntry, Index, Offer};
use crate::source::{EventId, Parsed, Request, Source, Text};
use crate::tail::{self, Checkpoint, Resume};

/// A request whose file has not changed for this long is complete: Claude
/// Code writes the lines of one streamed response within seconds.
pub const SETTLE_MS: i64 = 30_000;
/// A request whose newest line is this old is complete even if the file is
/// still being written (by hooks, other lines, or a copy made just now).
pub const STALE_MS: i64 = 90_000;

/// A whole-document request marked unfinished whose file has not changed
/// for this long will not be finished (OpenCode streams a response into its
/// message file several times a second).
pub const ABANDONED_MS: i64 = 10 * tally_core::time::MINUTE_MS;

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

impl Index {
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
                            // A document holding an incomplete request was
                            // checkpointed at offset 0: read it again.
                            Some(p)
                                if p.size == id.size
                                    && p.mtime_ms == id.mtime_ms
                                    && p.offset == p.size =>
                            {
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
    if src.documents() {
        return read_document(src, job, now_ms, res);
    }
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

/// A whole-document file (rewritten, not appended) is parsed at once. Its
/// requests that are not final, and the newest one while the file is still
/// being written, are held; the checkpoint then stays at 0 so the file is
/// read again even if it does not change.
fn read_document(src: &dyn Source, job: &Job, now_ms: i64, mut res: FileResult) -> FileResult {
    let doc = match src.read_document(&job.path) {
        Ok(d) => d,
        Err(e) => {
            res.error = Some(e);
            return res;
        }
    };
    res.lines = 1;
    res.malformed = doc.malformed;
    res.bytes = job.id.size;
    res.offset = job.id.size;
    // A document is read whole on every change: no first-line check needed.
    res.fingerprint = 0;
    let idle = now_ms - job.id.mtime_ms >= SETTLE_MS;
    let newest = doc.requests.iter().map(|(r, _)| r.ts).max();
    // A message left unfinished (its writer crashed) ships as it stands
    // once its file has been quiet this long.
    let abandoned = now_ms - job.id.mtime_ms >= ABANDONED_MS;
    for (req, final_) in doc.requests {
        let fresh = now_ms - req.ts < STALE_MS;
        let held = (!final_ && !abandoned) || (fresh && !idle && Some(req.ts) == newest);
        res.items.push(Item {
            req,
            settled: !held,
        });
    }
    if res.items.iter().any(|i| !i.settled) {
        res.offset = 0;
    }
    res
}

fn fingerprint_for(head: &Option<Vec<u8>>, job: &Job) -> u64 {
    match head {
        Some(head) => tail::fnv1a(head),
        None if job.start > 0 => tail::fingerprint(&job.path),
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::home::Home;
    use crate::index::roots_signature;

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
        let home = Home::at(dir.path());
        ix.save(&home).unwrap();
        let mut back = Index::load(&home, &roots_signature(&src)).unwrap();
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
        back.save(&home).unwrap();
        let other = Index::load(&home, "elsewhere").unwrap();
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

    fn gemini_chat(msgs: &[(&str, u64)]) -> String {
        let m: Vec<String> = msgs
            .iter()
            .map(|(id, out)| {
                format!(
                    r#"{{"id":"{id}","timestamp":"{T}","type":"gemini","content":"x","model":"gemini-2.5-pro","tokens":{{"input":1000,"output":{out},"cached":400,"thoughts":10,"tool":0,"total":0}}}}"#
                )
            })
            .collect();
        format!(
            "{{\n  \"sessionId\": \"gs1\",\n  \"projectHash\": \"ph\",\n  \"messages\": [\n{}\n  ]\n}}",
            m.join(",\n")
        )
    }

    #[test]
    fn a_rewritten_gemini_chat_counts_each_message_once() {
        let dir = tempfile::tempdir().unwrap();
        let chats = dir.path().join("tmp/ph/chats");
        std::fs::create_dir_all(&chats).unwrap();
        std::fs::write(dir.path().join("tmp/ph/.project_root"), "/w/g\n").unwrap();
        let f = chats.join("session-2025-11-22T10-00-gs1.json");
        std::fs::write(&f, gemini_chat(&[("g1", 5)])).unwrap();
        // Not a chat: ignored.
        std::fs::write(dir.path().join("tmp/ph/logs.json"), "[]").unwrap();
        let src: Vec<Box<dyn Source>> = vec![Box::new(crate::source::Gemini {
            home: dir.path().to_path_buf(),
        })];
        let later = T_MS + 3_600_000;
        let mut ix = Index::new(roots_signature(&src));
        let out = ix.scan(&src, later, None, false);
        assert_eq!((out.stats.files, out.stats.new_requests), (1, 1));
        // Rewritten whole with the first turn's final tokens and a second turn.
        std::fs::write(&f, gemini_chat(&[("g1", 50), ("g2", 7)])).unwrap();
        let out = ix.scan(&src, later, None, false);
        assert_eq!(
            (
                out.stats.new_requests,
                out.stats.replaced,
                out.stats.duplicates
            ),
            (1, 1, 0)
        );
        let got: Vec<(u64, u64, u64, &str)> = ix
            .records
            .iter()
            .map(|r| {
                (
                    r.usage.input,
                    r.usage.cache_read,
                    r.usage.output,
                    ix.str(r.cwd),
                )
            })
            .collect();
        assert_eq!(got, vec![(600, 400, 60, "/w/g"), (600, 400, 17, "/w/g")]);
        // The same content again, truncated mid-write: one malformed document, nothing lost.
        let text = gemini_chat(&[("g1", 50), ("g2", 7)]);
        std::fs::write(&f, &text[..text.len() / 2]).unwrap();
        let out = ix.scan(&src, later, None, false);
        assert_eq!((out.stats.malformed, ix.records.len()), (1, 2));
    }

    #[test]
    fn an_unfinished_opencode_message_is_held_until_it_completes() {
        let dir = tempfile::tempdir().unwrap();
        let s = dir.path().join("storage/message/ses_1");
        std::fs::create_dir_all(&s).unwrap();
        let f = s.join("msg_a.json");
        let msg = |out: u64, done: bool| {
            let completed = if done {
                r#","completed":1763805601000"#
            } else {
                ""
            };
            format!(
                r#"{{"id":"msg_a","role":"assistant","sessionID":"ses_1","modelID":"gpt-5","providerID":"openai","tokens":{{"input":100,"output":{out},"reasoning":0,"cache":{{"read":0,"write":0}}}},"time":{{"created":1763805600000{completed}}}}}"#
            )
        };
        std::fs::write(&f, msg(3, false)).unwrap();
        std::fs::write(
            s.join("msg_u.json"),
            r#"{"id":"msg_u","role":"user","sessionID":"ses_1","time":{"created":1}}"#,
        )
        .unwrap();
        let src: Vec<Box<dyn Source>> = vec![Box::new(crate::source::OpenCode {
            data: dir.path().to_path_buf(),
        })];
        let mtime = crate::tail::stat(&f).unwrap().mtime_ms;
        let mut ix = Index::new(roots_signature(&src));
        let out = ix.scan(&src, mtime + 1_000, None, false);
        assert_eq!(ix.records.len(), 1);
        assert!(out.unsettled.contains(&0));
        // Unchanged, it is read again and still held.
        let out = ix.scan(&src, mtime + 2_000, None, false);
        assert_eq!(out.stats.files_read, 1);
        assert!(out.unsettled.contains(&0));
        // Completed: final tokens, no longer held, and not read again.
        std::fs::write(&f, msg(40, true)).unwrap();
        let mtime = crate::tail::stat(&f).unwrap().mtime_ms;
        let out = ix.scan(&src, mtime + SETTLE_MS, None, false);
        assert_eq!(out.stats.replaced, 1);
        assert!(out.unsettled.is_empty());
        assert_eq!(ix.records[0].usage.output, 40);
        let out = ix.scan(&src, mtime + SETTLE_MS, None, false);
        assert_eq!(out.stats.files_read, 0);
        // A message abandoned unfinished ships as it stands once its file is quiet.
        let g = s.join("msg_b.json");
        std::fs::write(&g, msg(3, false).replace("msg_a", "msg_b")).unwrap();
        let mtime = crate::tail::stat(&g).unwrap().mtime_ms;
        let out = ix.scan(&src, mtime + ABANDONED_MS, None, false);
        assert_eq!(ix.records.len(), 2);
        assert!(out.unsettled.is_empty());
    }

    #[test]
    fn opencode_db_rows_are_read_while_opencode_writes() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("opencode.db");
        let w = rusqlite::Connection::open(&db).unwrap();
        w.execute_batch(
            "PRAGMA journal_mode = WAL;
             CREATE TABLE session (id TEXT PRIMARY KEY, directory TEXT NOT NULL);
             CREATE TABLE message (id TEXT PRIMARY KEY, session_id TEXT NOT NULL,
                                   time_created INTEGER NOT NULL, time_updated INTEGER NOT NULL,
                                   data TEXT NOT NULL);
             INSERT INTO session VALUES ('ses_1', '/home/dev/api');",
        )
        .unwrap();
        let row = |id: &str, data: &str| {
            w.execute(
                "INSERT OR REPLACE INTO message VALUES (?1, 'ses_1', 1, 2, ?2)",
                (id, data),
            )
            .unwrap();
        };
        let done = r#"{"role":"assistant","modelID":"gpt-5","providerID":"openai","tokens":{"input":100,"output":20,"reasoning":5,"cache":{"read":50,"write":0}},"time":{"created":1763805600000,"completed":1763805601000}}"#;
        row("msg_a", done);
        row(
            "msg_u",
            r#"{"role":"user","time":{"created":1763805599000}}"#,
        );
        row("msg_bad", "{not json");
        let src: Vec<Box<dyn Source>> =
            vec![Box::new(crate::source::OpenCodeDb { db: db.clone() })];
        assert_eq!(src[0].discover().len(), 2, "the database and its WAL");
        let later = T_MS + 3_600_000;
        let mut ix = Index::new(roots_signature(&src));
        let out = ix.scan(&src, later, None, false);
        assert!(
            out.stats.unreadable.is_empty(),
            "{:?}",
            out.stats.unreadable
        );
        assert_eq!((out.stats.new_requests, out.stats.duplicates), (1, 1));
        let r = &ix.records[0];
        assert_eq!(
            (
                r.usage.input,
                r.usage.cache_read,
                r.usage.output,
                ix.str(r.cwd),
                ix.str(r.session)
            ),
            (100, 50, 25, "/home/dev/api", "ses_1")
        );
        // OpenCode in the middle of a write: what is committed is read, nothing fails.
        w.execute_batch("BEGIN IMMEDIATE").unwrap();
        row("msg_b", &done.replace("\"input\":100", "\"input\":7"));
        std::fs::write(dir.path().join("touch"), "").unwrap();
        ix.reset_checkpoints();
        let out = ix.scan(&src, later, None, false);
        assert!(
            out.stats.unreadable.is_empty(),
            "{:?}",
            out.stats.unreadable
        );
        assert_eq!(ix.records.len(), 1);
        w.execute_batch("COMMIT").unwrap();
        let out = ix.scan(&src, later, None, false);
        assert_eq!(out.stats.new_requests, 1);
        assert_eq!(ix.records[1].usage.input, 7);
        assert_eq!(ix.malformed_summary(), (1, 1), "msg_bad, counted once");
    }
}
