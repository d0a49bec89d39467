//! One cycle of the agent: read what is new into the index, turn settled
//! shippable requests into encrypted outbox batches, and upload the outbox.
//!
//! Crash safety: a batch is appended (and fsynced) before the index that
//! marks its events queued is saved. A crash in between leaves batches the
//! index does not know about; the next cycle reads their event ids back from
//! the outbox and marks those events queued instead of batching them again.
//! Acknowledgements are recorded after the server's 202; a crash before that
//! resends the identical batch, which the server applies once.
//!
//! Nothing is dropped silently: a batch over the team's burst capacity is
//! sent in halves, a batch with invalid events is bisected until only those
//! are left and quarantined, and a batch undeliverable for
//! `RESEND_GIVE_UP_DAYS` after its first attempt is given up; both kinds are
//! kept encrypted (`quarantine`), shown by `tally status` and counted to the
//! server. Queued events are restricted to the current effective mode
//! (team mode capped by this machine's ceiling) before they are sent.

use serde::{Deserialize, Serialize};
use tally_core::event::{EventBatch, PrivacyMode, WireEvent};
use tally_core::hash::sha256_hex;
use tally_core::privacy::{outbound, restrict, LocalRecord};
use tally_core::wire::RESEND_GIVE_UP_DAYS;
use tally_core::wire::{MAX_BATCH_BYTES, MAX_BATCH_EVENTS};

use crate::config::Config;
use crate::error::AgentError;
use crate::home::Home;
use crate::index::lock::Lock;
use crate::index::scan::ScanOutcome;
use crate::index::{roots_signature, Index};
use crate::keystore;
use crate::ollama::Ollama;
use crate::outbox::{Outbox, WARN_PERCENT};
use crate::quarantine::{GaveUp, Held, Quarantine};
use crate::source::{Source, Text};
use crate::upload::{http_detail, Transport, Uploader};

/// What the last runs observed, for `tally status` and `tally doctor`.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct RunStatus {
    pub last_sync_ms: Option<i64>,
    pub last_upload_ms: Option<i64>,
    pub last_upload_error: Option<String>,
    pub events_uploaded: u64,
    pub batches_uploaded: u64,
    /// Why categorize-local produced no category, if it did not.
    pub ollama_error: Option<String>,
    pub ollama_categorized: u64,
    pub outbox_full: bool,
    pub held_unsettled: usize,
}

impl RunStatus {
    pub fn load(home: &Home) -> RunStatus {
        std::fs::read(home.status())
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }
    /// Best effort: losing a status update only makes `tally status` older.
    pub fn save(&self, home: &Home) {
        if let Ok(b) = serde_json::to_vec_pretty(self) {
            let _ = home.write_private(&home.status(), &b);
        }
    }
}

#[derive(Debug, Default)]
pub struct Enqueued {
    pub events: usize,
    pub batches: usize,
    /// Shippable requests whose response may still be streaming.
    pub held: usize,
    pub outbox_full: bool,
    pub outbox_bytes: u64,
    pub outbox_max: u64,
}

/// A stable batch id from its event ids: a resend is recognisably the same batch.
pub fn batch_id(ids: &[&str]) -> String {
    let mut s = String::from("tally-batch-v1");
    for id in ids {
        s.push(':');
        s.push_str(id);
    }
    sha256_hex(s.as_bytes())[..32].to_string()
}

/// The one place an index record becomes what leaves the machine.
pub fn build_event(
    ix: &Index,
    i: u32,
    text: Option<&Text>,
    mode: PrivacyMode,
    salt: &str,
    ollama: Option<&mut Ollama>,
) -> WireEvent {
    let r = &ix.records[i as usize];
    let model = ix.str(r.model);
    let cost = tally_core::pricing::price_request(
        tally_core::pricing::default_table(),
        model,
        &r.usage,
        r.fast,
    )
    .pico();
    let prompt = text.and_then(|t| t.prompt.as_deref().map(str::to_string));
    let category = match (mode, ollama, prompt.as_deref()) {
        (PrivacyMode::CategorizeLocal, Some(o), Some(p)) => o.categorize(p),
        _ => None,
    };
    let rec = LocalRecord {
        id: hex::encode(r.id),
        ts: r.ts,
        agent: r.agent,
        model: model.to_string(),
        tokens: r.usage,
        fast: r.fast,
        cost_pico_usd: cost,
        cwd: ix.str(r.cwd).to_string(),
        session_id: ix.str(r.session).to_string(),
        prompt,
        response: text.and_then(|t| t.response.clone()),
        tools: text.map(|t| t.tools.clone()).unwrap_or_default(),
        category,
    };
    let redact = |s: &str| tally_core::redact::redact(s);
    outbound(&rec, mode, salt, &redact)
}

/// Packs events into batches of at most `max_events` (≤ 500) events and
/// well under 1 MiB.
pub fn pack(events: Vec<WireEvent>, max_events: usize) -> Vec<Vec<u8>> {
    let max_events = max_events.clamp(1, MAX_BATCH_EVENTS);
    // Room for the envelope and the batch id.
    const BUDGET: usize = MAX_BATCH_BYTES - 4096;
    let mut out = Vec::new();
    let mut cur: Vec<(WireEvent, usize)> = Vec::new();
    let mut size = 0usize;
    let flush = |cur: &mut Vec<(WireEvent, usize)>, out: &mut Vec<Vec<u8>>| {
        if cur.is_empty() {
            return;
        }
        let ids: Vec<&str> = cur.iter().map(|(e, _)| e.id.as_str()).collect();
        let batch = EventBatch {
            batch_id: batch_id(&ids),
            events: cur.drain(..).map(|(e, _)| e).collect(),
        };
        out.push(serde_json::to_vec(&batch).expect("events serialize"));
    };
    for e in events {
        let n = serde_json::to_vec(&e).map(|v| v.len()).unwrap_or(0) + 1;
        if !cur.is_empty() && (cur.len() >= max_events || size + n > BUDGET) {
            flush(&mut cur, &mut out);
            size = 0;
        }
        size += n;
        cur.push((e, n));
    }
    flush(&mut cur, &mut out);
    out
}

pub struct Sync {
    pub index: Index,
    pub scan: ScanOutcome,
    pub enqueued: Option<Enqueued>,
    pub ollama_error: Option<String>,
    pub ollama_categorized: u64,
}

/// Text is collected only for requests that may ship in a mode carrying text.
fn text_since(cfg: Option<&Config>) -> Option<i64> {
    cfg.filter(|c| c.effective_mode() != PrivacyMode::Off)
        .map(|c| c.ship_since_ms)
}

/// Reads new log lines into the index and, when enrolled, queues what is
/// ready to ship. Holds the index lock throughout.
pub fn sync(
    home: &Home,
    sources: &[Box<dyn Source>],
    cfg: Option<&Config>,
    now_ms: i64,
    progress: bool,
) -> Result<Sync, AgentError> {
    let lock_path = home.index_lock();
    let lock = Lock::acquire(&lock_path, true)?.ok_or(AgentError::LockBusy { path: lock_path })?;
    let sig = roots_signature(sources);
    let mut index = Index::load(home, &sig)?;
    let scan = index.scan(sources, now_ms, text_since(cfg), progress);
    let mut out = Sync {
        index,
        scan,
        enqueued: None,
        ollama_error: None,
        ollama_categorized: 0,
    };
    if let Some(cfg) = cfg {
        let key = keystore::load_or_create(home)?;
        let mut outbox = Outbox::open(home, key.bytes, cfg.outbox_max_bytes)?;
        let mut ollama = Ollama::for_config(cfg);
        let enq = enqueue(&mut out.index, &out.scan, cfg, &mut outbox, ollama.as_mut())?;
        if let Some(o) = ollama {
            out.ollama_error = o.down.clone();
            out.ollama_categorized = o.categorized;
        }
        let full = enq.outbox_full;
        out.enqueued = Some(enq);
        if full {
            // Not saving keeps the checkpoints where they were: the requests
            // (and their text) are read again once the outbox has room.
            lock.release();
            return Ok(out);
        }
        if out.index.is_dirty() {
            out.index.save(home)?;
        }
        outbox.compact(out.index.outbox_seq);
    } else if out.index.is_dirty() {
        out.index.save(home)?;
    }
    lock.release();
    Ok(out)
}

pub fn enqueue(
    ix: &mut Index,
    scan: &ScanOutcome,
    cfg: &Config,
    outbox: &mut Outbox,
    mut ollama: Option<&mut Ollama>,
) -> Result<Enqueued, AgentError> {
    // Batches written just before a crash that the index never recorded.
    if outbox.last_seq() > ix.outbox_seq {
        for id in outbox.ids_after(ix.outbox_seq)? {
            let mut raw = [0u8; 16];
            if hex::decode_to_slice(&id, &mut raw).is_ok() {
                if let Some(i) = ix.find(&raw) {
                    ix.records[i as usize].queued = true;
                }
            }
        }
        ix.outbox_seq = outbox.last_seq();
        ix.mark_dirty();
    }
    let mut held = 0;
    let mut ready: Vec<u32> = Vec::new();
    for (i, r) in ix.records.iter().enumerate() {
        if r.queued || r.ts < cfg.ship_since_ms {
            continue;
        }
        if scan.unsettled.contains(&(i as u32)) {
            held += 1;
            continue;
        }
        ready.push(i as u32);
    }
    ready.sort_by_key(|&i| (ix.records[i as usize].ts, ix.records[i as usize].id));
    let mut events = Vec::with_capacity(ready.len());
    for &i in &ready {
        events.push(build_event(
            ix,
            i,
            scan.texts.get(&i),
            cfg.effective_mode(),
            &cfg.salt,
            ollama.as_deref_mut(),
        ));
    }
    let bodies = pack(events, cfg.batch_events());
    let bytes: u64 = bodies.iter().map(|b| b.len() as u64 + 64).sum();
    let mut e = Enqueued {
        events: ready.len(),
        batches: bodies.len(),
        held,
        outbox_full: false,
        outbox_bytes: outbox.size_bytes(),
        outbox_max: outbox.max_bytes,
    };
    if bodies.is_empty() {
        return Ok(e);
    }
    if !outbox.has_room(bytes) {
        eprintln!(
            "WARNING: the outbox is full ({} of {} MiB): {} new events wait in the logs and nothing is dropped, but nothing new is queued until the server accepts what is waiting. Check `tally status`.",
            outbox.size_bytes() >> 20,
            outbox.max_bytes >> 20,
            ready.len()
        );
        e.outbox_full = true;
        e.events = 0;
        e.batches = 0;
        return Ok(e);
    }
    let seqs = outbox.append(&bodies)?;
    for &i in &ready {
        ix.records[i as usize].queued = true;
    }
    ix.outbox_seq = *seqs.last().unwrap();
    ix.mark_dirty();
    e.outbox_bytes = outbox.size_bytes();
    if e.outbox_bytes * 100 >= e.outbox_max * WARN_PERCENT {
        eprintln!(
            "WARNING: the outbox is {}% full ({} of {} MiB); events will wait (not be dropped) once it is full",
            e.outbox_bytes * 100 / e.outbox_max.max(1),
            e.outbox_bytes >> 20,
            e.outbox_max >> 20
        );
    }
    Ok(e)
}

#[derive(Debug, Default)]
pub struct Uploaded {
    pub batches: usize,
    pub events: usize,
    /// Events the server rejected, isolated and quarantined in this run.
    pub quarantined: usize,
    /// Batches given up in this run (undeliverable for `RESEND_GIVE_UP_DAYS`).
    pub gave_up: usize,
    /// Events put back under the current mode because they were queued
    /// under a looser one.
    pub restricted: usize,
    /// Another `tally` process is uploading.
    pub busy: bool,
}

const DAY_MS: i64 = 86_400_000;

/// Sends every pending batch, in order. Stops at the first network failure
/// (the batch stays queued) or credentials problem.
pub fn upload(home: &Home, cfg: &mut Config) -> Result<Uploaded, AgentError> {
    crate::config::check_server_url(&cfg.server)?;
    let uploader = Uploader::new(&cfg.server, &cfg.agent_token);
    upload_with(home, cfg, &uploader, crate::now_ms())
}

/// `upload` with the transport and the clock passed in.
pub fn upload_with(
    home: &Home,
    cfg: &mut Config,
    transport: &dyn Transport,
    now_ms: i64,
) -> Result<Uploaded, AgentError> {
    let mut done = Uploaded::default();
    let Some(_lock) = Lock::acquire(&home.upload_lock(), false).map_err(AgentError::retry_later)?
    else {
        done.busy = true;
        return Ok(done);
    };
    let Some(key) = keystore::load(home).map_err(AgentError::retry_later)? else {
        return Ok(done);
    };
    let outbox = Outbox::open_reader(home, key.bytes).map_err(AgentError::retry_later)?;
    let pending = outbox.pending().map_err(AgentError::retry_later)?;
    let mut q = Quarantine::load(home, &key.bytes).map_err(AgentError::retry_later)?;
    let mut up = Upload {
        home,
        key: &key.bytes,
        outbox: &outbox,
        transport,
        q: &mut q,
        stats: &mut done,
        now_ms,
    };
    for entry in pending {
        up.batch(cfg, entry.seq, &entry.body)?;
    }
    Ok(done)
}

/// The state of one upload run.
struct Upload<'a> {
    home: &'a Home,
    key: &'a [u8; 32],
    outbox: &'a Outbox,
    transport: &'a dyn Transport,
    q: &'a mut Quarantine,
    stats: &'a mut Uploaded,
    now_ms: i64,
}

enum Coverage {
    All,
    Some,
    None,
}

fn coverage(parts: &[(u32, u32)], lo: u32, hi: u32) -> Coverage {
    if parts.iter().any(|&(a, b)| a <= lo && hi <= b) {
        Coverage::All
    } else if parts.iter().any(|&(a, b)| a < hi && lo < b) {
        Coverage::Some
    } else {
        Coverage::None
    }
}

impl Upload<'_> {
    fn save_q(&self) -> Result<(), AgentError> {
        self.q
            .save(self.home, self.key)
            .map_err(AgentError::retry_later)
    }

    fn batch(&mut self, cfg: &mut Config, seq: u64, body: &[u8]) -> Result<(), AgentError> {
        let mut d = self.outbox.done();
        let first = match d.first_attempt.get(&seq) {
            Some(&t) => t,
            None => {
                d.first_attempt.insert(seq, self.now_ms);
                self.outbox.save_done(&d).map_err(AgentError::retry_later)?;
                self.now_ms
            }
        };
        let batch: EventBatch = match serde_json::from_slice(body) {
            Ok(b) => b,
            Err(e) => {
                // Cannot happen with batches this agent wrote; never drop it silently.
                let error = format!("outbox record {seq} is not a batch: {e}");
                eprintln!("error: {error}; it is quarantined");
                self.q.events.push(Held {
                    seq,
                    at_ms: self.now_ms,
                    error,
                    event: serde_json::Value::String(String::from_utf8_lossy(body).into()),
                });
                self.save_q()?;
                self.stats.quarantined += 1;
                return self
                    .outbox
                    .mark_done(seq, None)
                    .map_err(AgentError::retry_later);
            }
        };
        let parts = d.parts.get(&seq).cloned().unwrap_or_default();
        if self.now_ms - first >= RESEND_GIVE_UP_DAYS * DAY_MS {
            return self.give_up(seq, first, &batch, &parts, "");
        }
        // Queued under a looser mode than today's: put back under today's.
        let mode = cfg.effective_mode();
        let events: Vec<WireEvent> = batch
            .events
            .iter()
            .map(|e| {
                let r = restrict(e, mode);
                if r != *e {
                    self.stats.restricted += 1;
                }
                r
            })
            .collect();
        let n = events.len() as u32;
        let cap = cfg.batch_events() as u32;
        match self.node(cfg, seq, &batch.batch_id, &events, 0, n, cap) {
            Ok(()) => {
                self.stats.batches += 1;
                self.outbox
                    .mark_done(seq, None)
                    .map_err(AgentError::retry_later)
            }
            Err(e) => {
                if !matches!(e, AgentError::Auth { .. }) {
                    let waited = (self.now_ms - first) / DAY_MS;
                    if waited >= 1 {
                        eprintln!(
                            "warning: batch #{seq} has waited {waited} days; after {RESEND_GIVE_UP_DAYS} days without delivery it is set aside"
                        );
                    }
                }
                Err(e)
            }
        }
    }

    fn give_up(
        &mut self,
        seq: u64,
        first: i64,
        batch: &EventBatch,
        parts: &[(u32, u32)],
        error: &str,
    ) -> Result<(), AgentError> {
        let events: Vec<serde_json::Value> = batch
            .events
            .iter()
            .enumerate()
            .filter(|(i, _)| matches!(coverage(parts, *i as u32, *i as u32 + 1), Coverage::None))
            .filter_map(|(_, e)| serde_json::to_value(e).ok())
            .collect();
        let error = if error.is_empty() {
            format!(
                "not delivered within {RESEND_GIVE_UP_DAYS} days of the first attempt; resending later could count it twice"
            )
        } else {
            error.to_string()
        };
        eprintln!(
            "ERROR: gave up on batch #{seq} ({} events): {error}. The events are kept on disk (see `tally status`) and reported to the server as held back.",
            events.len()
        );
        if !self.q.gave_up.iter().any(|g| g.seq == seq) {
            self.q.gave_up.push(GaveUp {
                seq,
                batch_id: batch.batch_id.clone(),
                first_attempt_ms: first,
                at_ms: self.now_ms,
                error,
                events,
            });
            self.save_q()?;
        }
        self.stats.gave_up += 1;
        self.outbox
            .mark_done(seq, None)
            .map_err(AgentError::retry_later)
    }

    fn settle_part(&self, seq: u64, lo: u32, hi: u32) -> Result<(), AgentError> {
        let mut d = self.outbox.done();
        d.parts.entry(seq).or_default().push((lo, hi));
        self.outbox.save_done(&d).map_err(AgentError::retry_later)
    }

    /// Sends events `[lo, hi)` of batch `seq`, splitting at the midpoint
    /// while the part is larger than the burst capacity, the server says it
    /// is, or it holds an invalid event (bisection); a single invalid event
    /// is quarantined. The whole batch keeps its original id; a part's id
    /// derives from its event ids, like every batch id.
    #[allow(clippy::too_many_arguments)]
    fn node(
        &mut self,
        cfg: &mut Config,
        seq: u64,
        batch_id: &str,
        events: &[WireEvent],
        lo: u32,
        hi: u32,
        cap: u32,
    ) -> Result<(), AgentError> {
        if lo >= hi {
            return Ok(());
        }
        let parts = self
            .outbox
            .done()
            .parts
            .get(&seq)
            .cloned()
            .unwrap_or_default();
        let split = match coverage(&parts, lo, hi) {
            Coverage::All => return Ok(()),
            Coverage::Some => true,
            Coverage::None => hi - lo > cap,
        };
        let halve = |up: &mut Self, cfg: &mut Config| -> Result<(), AgentError> {
            let mid = lo + (hi - lo) / 2;
            up.node(cfg, seq, batch_id, events, lo, mid, cap)?;
            up.node(cfg, seq, batch_id, events, mid, hi, cap)
        };
        if split {
            return halve(self, cfg);
        }
        let slice = &events[lo as usize..hi as usize];
        let id = if lo == 0 && hi as usize == events.len() {
            batch_id.to_string()
        } else {
            let ids: Vec<&str> = slice.iter().map(|e| e.id.as_str()).collect();
            crate::ship::batch_id(&ids)
        };
        let body = serde_json::to_vec(&EventBatch {
            batch_id: id,
            events: slice.to_vec(),
        })
        .map_err(AgentError::serialize("a batch"))?;
        match self.transport.send(&body, self.q.count()) {
            Ok(acc) => {
                self.settle_part(seq, lo, hi)?;
                self.stats.events += acc.accepted;
                if acc.privacy_mode != cfg.privacy_mode {
                    eprintln!(
                        "privacy mode changed by the team: {} -> {}",
                        cfg.privacy_mode.as_str(),
                        acc.privacy_mode.as_str()
                    );
                    cfg.privacy_mode = acc.privacy_mode;
                    let _ = cfg.save(self.home);
                }
                Ok(())
            }
            Err(AgentError::Rejected {
                server,
                status,
                code,
                detail,
            }) => {
                let capacity = code.as_deref() == Some("batch_exceeds_rate_capacity");
                // Only a verdict on the events is worth bisecting; a refusal
                // of the request itself (say `bad_gzip`) would otherwise
                // quarantine every event one by one. It stays queued, shown
                // in `tally status`, and is retried.
                let about_events = capacity
                    || status == 413
                    || matches!(code.as_deref(), None | Some("invalid_batch"));
                if !about_events {
                    return Err(AgentError::Rejected {
                        server,
                        status,
                        code,
                        detail,
                    });
                }
                if hi - lo > 1 {
                    if capacity {
                        eprintln!(
                            "note: batch #{seq} has more events than the team's burst capacity; sending it in parts"
                        );
                    } else if status == 400 {
                        eprintln!(
                            "warning: the server rejected part of batch #{seq} ({detail}); bisecting to isolate the invalid events"
                        );
                    }
                    return halve(self, cfg);
                }
                if capacity {
                    // One event over the capacity: the team's settings, not
                    // the event, are wrong. Keep it and retry later.
                    return Err(AgentError::Unavailable {
                        server: cfg.server.clone(),
                        detail,
                    });
                }
                eprintln!(
                    "ERROR: the server rejected event {} of batch #{seq}: {detail}. It is quarantined (kept on disk, counted in `tally status`); the other events are not affected.",
                    slice[0].id
                );
                // A crash after the last save and before the part was
                // settled sends it again: it is held once.
                let id = serde_json::Value::String(slice[0].id.clone());
                if !self
                    .q
                    .events
                    .iter()
                    .any(|h| h.seq == seq && h.event["id"] == id)
                {
                    self.q.events.push(Held {
                        seq,
                        at_ms: self.now_ms,
                        error: detail,
                        event: serde_json::to_value(&slice[0]).unwrap_or_default(),
                    });
                    self.save_q()?;
                }
                self.stats.quarantined += 1;
                self.settle_part(seq, lo, hi)
            }
            Err(e) => Err(e),
        }
    }
}

/// Asks the server for the team's privacy mode and burst capacity.
pub fn refresh_mode(home: &Home, cfg: &mut Config) -> Result<(), AgentError> {
    crate::config::check_server_url(&cfg.server)?;
    let server = &cfg.server;
    let r = crate::upload::agent()
        .get(&format!("{server}/v1/agent/config"))
        .set("Authorization", &format!("Bearer {}", cfg.agent_token))
        .call();
    let v: serde_json::Value = match r {
        Ok(resp) => resp.into_json().map_err(|e| AgentError::Unavailable {
            server: server.clone(),
            detail: e.to_string(),
        })?,
        Err(ureq::Error::Status(code @ (401 | 403), resp)) => {
            return Err(AgentError::Auth {
                server: server.clone(),
                detail: http_detail(code, resp),
            })
        }
        Err(e) => {
            return Err(AgentError::Unavailable {
                server: server.clone(),
                detail: e.to_string(),
            })
        }
    };
    if let Some(m) = v["privacy_mode"].as_str().and_then(PrivacyMode::parse) {
        if m != cfg.privacy_mode {
            eprintln!(
                "privacy mode set by the team: {} -> {}",
                cfg.privacy_mode.as_str(),
                m.as_str()
            );
            cfg.privacy_mode = m;
            cfg.save(home).map_err(AgentError::retry_later)?;
        }
    }
    // Optional: older servers do not say, and then batches keep the wire limit.
    let capacity = v["rate_capacity"].as_u64().filter(|&c| c > 0);
    if capacity != cfg.rate_capacity {
        cfg.rate_capacity = capacity;
        cfg.save(home).map_err(AgentError::retry_later)?;
    }
    Ok(())
}

/// Batches and events waiting to be sent, and the outbox's size on disk.
pub fn pending_summary(home: &Home) -> Result<(usize, usize, u64), AgentError> {
    let Some(key) = keystore::load(home)? else {
        return Ok((0, 0, 0));
    };
    let ob = Outbox::open_reader(home, key.bytes)?;
    let pending = ob.pending()?;
    let mut events = 0;
    for e in &pending {
        let v: serde_json::Value = serde_json::from_slice(&e.body).unwrap_or_default();
        events += v["events"].as_array().map(|a| a.len()).unwrap_or(0);
    }
    Ok((pending.len(), events, ob.size_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(n: usize, text: usize) -> WireEvent {
        WireEvent {
            id: format!("{n:032x}"),
            ts: 1,
            agent: tally_core::event::AgentKind::ClaudeCode,
            model: "m".into(),
            tokens: Default::default(),
            fast: false,
            cost_pico_usd: Some(1),
            project: "a".repeat(64),
            session: "b".repeat(64),
            mode: PrivacyMode::Full,
            category: None,
            prompt: Some("x".repeat(text)),
            response: None,
            tools: None,
        }
    }

    #[test]
    fn batches_respect_both_limits_and_have_stable_ids() {
        let counts = |bodies: &[Vec<u8>]| -> Vec<usize> {
            bodies
                .iter()
                .map(|x| {
                    serde_json::from_slice::<EventBatch>(x)
                        .unwrap()
                        .events
                        .len()
                })
                .collect()
        };
        let b = pack((0..1001).map(|n| ev(n, 0)).collect(), 500);
        assert_eq!(b.len(), 3);
        assert_eq!(counts(&b), vec![500, 500, 1]);
        let again = pack((0..1001).map(|n| ev(n, 0)).collect(), 500);
        assert_eq!(b, again);
        // 60 KB prompts: at most 16 fit under 1 MiB.
        let big = pack((0..40).map(|n| ev(n, 60_000)).collect(), 500);
        assert!(big.iter().all(|x| x.len() <= MAX_BATCH_BYTES));
        assert_eq!(counts(&big), vec![17, 17, 6]);
        for body in b.iter().chain(&big) {
            tally_core::wire::decode_batch(body, 1).unwrap();
        }
        assert_eq!(batch_id(&["a", "b"]).len(), 32);
        assert_ne!(batch_id(&["a", "b"]), batch_id(&["b", "a"]));
    }

    use crate::upload::Accepted;
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    const T0: i64 = 1_790_000_000_000;

    type Answer = Box<dyn Fn(&EventBatch) -> Result<Accepted, AgentError>>;

    /// Records every batch sent (and the `Tally-Quarantined` value with it).
    struct Fake {
        answer: Answer,
        sent: RefCell<Vec<(EventBatch, u64)>>,
    }

    impl Fake {
        fn new(answer: impl Fn(&EventBatch) -> Result<Accepted, AgentError> + 'static) -> Fake {
            Fake {
                answer: Box::new(answer),
                sent: RefCell::new(Vec::new()),
            }
        }
        /// Event ids the server accepted, with how often.
        fn accepted(&self) -> BTreeMap<String, usize> {
            let mut m = BTreeMap::new();
            for (b, _) in self.sent.borrow().iter() {
                if (self.answer)(b).is_ok() {
                    for e in &b.events {
                        *m.entry(e.id.clone()).or_default() += 1;
                    }
                }
            }
            m
        }
    }

    impl Transport for Fake {
        fn send(&self, body: &[u8], quarantined: u64) -> Result<Accepted, AgentError> {
            let b: EventBatch = serde_json::from_slice(body).unwrap();
            self.sent.borrow_mut().push((b.clone(), quarantined));
            (self.answer)(&b)
        }
    }

    fn ok(b: &EventBatch) -> Result<Accepted, AgentError> {
        Ok(Accepted {
            batch_id: b.batch_id.clone(),
            accepted: b.events.len(),
            privacy_mode: PrivacyMode::Full,
            restricted: 0,
        })
    }

    fn reject(status: u16, body: &str) -> Result<Accepted, AgentError> {
        Err(crate::upload::rejected("https://t", status, body))
    }

    fn down() -> Result<Accepted, AgentError> {
        Err(AgentError::Unavailable {
            server: "https://t".into(),
            detail: "connection refused".into(),
        })
    }

    fn config() -> Config {
        Config {
            server: "https://t".into(),
            agent_token: "tly_agent_x".into(),
            agent_id: "a".into(),
            team_id: "t".into(),
            developer_id: "d".into(),
            salt: "s".into(),
            privacy_mode: PrivacyMode::Full,
            max_mode: None,
            rate_capacity: None,
            hostname_sent: None,
            ship_since_ms: 0,
            ollama_url: String::new(),
            ollama_model: String::new(),
            outbox_max_bytes: crate::outbox::DEFAULT_MAX_BYTES,
        }
    }

    /// A state directory whose outbox holds one batch of `n` events.
    fn queued(n: usize) -> (tempfile::TempDir, Home, Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path());
        let key = [9u8; 32];
        home.write_private(&home.key_file(), hex::encode(key).as_bytes())
            .unwrap();
        let events: Vec<WireEvent> = (0..n).map(|i| ev(i, 10)).collect();
        let ids = events.iter().map(|e| e.id.clone()).collect();
        let mut ob = Outbox::open(&home, key, crate::outbox::DEFAULT_MAX_BYTES).unwrap();
        ob.append(&pack(events, 500)).unwrap();
        (dir, home, ids)
    }

    fn pending(home: &Home) -> usize {
        pending_summary(home).unwrap().1
    }

    fn quarantine(home: &Home) -> Quarantine {
        Quarantine::load(home, &[9u8; 32]).unwrap()
    }

    /// The old agent set a whole batch aside on any 400 or 413: a burst
    /// capacity below the batch size, or one bad event, lost them all.
    #[test]
    fn a_capacity_413_splits_and_one_bad_event_is_quarantined_alone() {
        let (_d, home, ids) = queued(11);
        let bad = ids[6].clone();
        let fake = Fake::new(move |b| {
            if b.events.len() > 3 {
                reject(
                    413,
                    r#"{"error":"batch_exceeds_rate_capacity","message":"batch has more events than the team's burst capacity of 3"}"#,
                )
            } else if let Some(i) = b.events.iter().position(|e| e.id == bad) {
                reject(
                    400,
                    &format!(
                        r#"{{"error":"invalid_batch","message":"events[{i}].model: unknown","index":{i},"field":"model"}}"#
                    ),
                )
            } else {
                ok(b)
            }
        });
        let got = upload_with(&home, &mut config(), &fake, T0).unwrap();
        assert_eq!((got.batches, got.events, got.quarantined), (1, 10, 1));
        let accepted = fake.accepted();
        assert_eq!(accepted.len(), 10, "every other event shipped");
        assert!(accepted.values().all(|&n| n == 1), "each exactly once");
        assert!(!accepted.contains_key(&ids[6]));
        let q = quarantine(&home);
        assert_eq!(q.events.len(), 1);
        assert_eq!(q.events[0].event["id"], ids[6]);
        assert!(q
            .first_error()
            .unwrap()
            .contains("events[0].model: unknown"));
        assert_eq!(pending(&home), 0);
        // Every request reports what is held back, as the server sees it.
        let sent = fake.sent.borrow();
        assert_eq!(sent.first().unwrap().1, 0);
        assert_eq!(sent.last().unwrap().1, 1);
        // Parts carry their own stable ids, never the whole batch's.
        let whole = &sent[0].0.batch_id;
        assert!(sent[1..].iter().all(|(b, _)| &b.batch_id != whole));
    }

    /// A crash (or network loss) in the middle of a split resumes with the
    /// same parts: nothing is sent twice under a different id.
    #[test]
    fn a_split_interrupted_midway_resumes_without_double_counting() {
        let (_d, home, ids) = queued(16);
        let mut cfg = config();
        cfg.rate_capacity = Some(4);
        let calls = std::rc::Rc::new(std::cell::Cell::new(0));
        let c = calls.clone();
        let flaky = Fake::new(move |b| {
            c.set(c.get() + 1);
            if c.get() > 2 {
                down()
            } else {
                ok(b)
            }
        });
        assert!(upload_with(&home, &mut cfg, &flaky, T0).is_err());
        assert_eq!(pending(&home), 16, "the batch stays pending as a whole");
        let first: Vec<String> = flaky.sent.borrow()[..2]
            .iter()
            .map(|(b, _)| b.batch_id.clone())
            .collect();
        // Capacity shrank meanwhile: settled parts are still not resent.
        cfg.rate_capacity = Some(2);
        let fake = Fake::new(ok);
        upload_with(&home, &mut cfg, &fake, T0 + 60_000).unwrap();
        let mut seen: BTreeMap<String, usize> = flaky
            .sent
            .borrow()
            .iter()
            .take(2)
            .flat_map(|(b, _)| b.events.iter().map(|e| e.id.clone()))
            .map(|id| (id, 1))
            .collect();
        for (id, n) in fake.accepted() {
            *seen.entry(id).or_default() += n;
        }
        assert_eq!(seen.keys().cloned().collect::<Vec<_>>(), {
            let mut v = ids.clone();
            v.sort();
            v
        });
        assert!(seen.values().all(|&n| n == 1), "{seen:?}");
        assert!(fake
            .sent
            .borrow()
            .iter()
            .all(|(b, _)| !first.contains(&b.batch_id)));
        assert_eq!(pending(&home), 0);
    }

    /// The old agent resent a batch forever; the edge forgets its markers
    /// after `MARKER_TTL_DAYS`, so a late resend could count twice.
    #[test]
    fn resending_stops_loudly_after_the_give_up_window() {
        let (_d, home, ids) = queued(3);
        let fake = Fake::new(|_| down());
        let day = 86_400_000;
        assert!(upload_with(&home, &mut config(), &fake, T0).is_err());
        assert!(upload_with(&home, &mut config(), &fake, T0 + 19 * day).is_err());
        assert_eq!(fake.sent.borrow().len(), 2);
        assert_eq!(pending(&home), 3);
        let got = upload_with(&home, &mut config(), &fake, T0 + RESEND_GIVE_UP_DAYS * day).unwrap();
        assert_eq!(got.gave_up, 1);
        assert_eq!(fake.sent.borrow().len(), 2, "not sent again");
        assert_eq!(pending(&home), 0);
        let q = quarantine(&home);
        assert_eq!((q.count(), q.given_up()), (3, 3));
        assert_eq!(q.gave_up[0].first_attempt_ms, T0);
        let kept: Vec<&str> = q.gave_up[0]
            .events
            .iter()
            .map(|e| e["id"].as_str().unwrap())
            .collect();
        assert_eq!(kept, ids.iter().map(|s| s.as_str()).collect::<Vec<_>>());
        assert!(q.first_error().unwrap().contains("20 days"));
        // The window counts from the first attempt, not from queueing.
        let (_d2, late, _) = queued(1);
        let fake = Fake::new(ok);
        upload_with(&late, &mut config(), &fake, T0 + 300 * day).unwrap();
        assert_eq!(fake.accepted().len(), 1);
    }

    /// The old agent sent queued bytes as they were, even after the team
    /// (or this machine's ceiling) tightened the mode.
    #[test]
    fn events_queued_under_a_looser_mode_are_restricted_before_upload() {
        let (_d, home, _) = queued(2);
        let mut cfg = config();
        cfg.max_mode = Some(PrivacyMode::Off);
        let fake = Fake::new(ok);
        let got = upload_with(&home, &mut cfg, &fake, T0).unwrap();
        assert_eq!(got.restricted, 2);
        for (b, _) in fake.sent.borrow().iter() {
            for e in &b.events {
                assert_eq!(e.mode, PrivacyMode::Off);
                assert!(e.prompt.is_none(), "{e:?}");
            }
        }
    }

    /// Batches are packed at most the team's burst capacity.
    #[test]
    fn batches_are_packed_at_most_the_burst_capacity() {
        let mut cfg = config();
        assert_eq!(cfg.batch_events(), 500);
        cfg.rate_capacity = Some(120);
        assert_eq!(cfg.batch_events(), 120);
        cfg.rate_capacity = Some(10_000);
        assert_eq!(cfg.batch_events(), 500);
        let b = pack((0..250).map(|n| ev(n, 0)).collect(), 120);
        let sizes: Vec<usize> = b
            .iter()
            .map(|x| {
                serde_json::from_slice::<EventBatch>(x)
                    .unwrap()
                    .events
                    .len()
            })
            .collect();
        assert_eq!(sizes, vec![120, 120, 10]);
    }

    /// A refusal of the request itself is not blamed on the events.
    #[test]
    fn a_request_level_400_quarantines_nothing_and_keeps_the_batch() {
        let (_d, home, _) = queued(4);
        let fake = Fake::new(|_| {
            reject(
                400,
                r#"{"error":"bad_gzip","message":"Content-Encoding is gzip but the body is not valid gzip"}"#,
            )
        });
        let e = upload_with(&home, &mut config(), &fake, T0).unwrap_err();
        assert!(e.to_string().contains("bad_gzip"), "{e}");
        assert_eq!(fake.sent.borrow().len(), 1, "no bisection");
        assert_eq!(quarantine(&home).count(), 0);
        assert_eq!(pending(&home), 4);
    }
}
