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

#[cfg(test)]
mod tests;
mod upload;

pub use upload::{upload, upload_with, Uploaded};

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
    /// The upload interval `tally run` follows (`None`: every cycle).
    #[serde(default)]
    pub ship_interval_s: Option<u64>,
    /// When `tally run` uploads next unless a batch fills first.
    #[serde(default)]
    pub next_upload_ms: Option<i64>,
    /// Settled requests read but not yet queued (they are queued at upload).
    #[serde(default)]
    pub ready_to_ship: usize,
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
        branch: ix.str(r.branch).to_string(),
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

/// How many settled requests are ready to ship, without recording
/// anything: the index is not saved, so the next `sync` reads the same lines
/// again (with their text) and queues them. Lets `tally run` hold uploads to
/// the team's interval and still notice a full batch at once.
pub fn peek(
    home: &Home,
    sources: &[Box<dyn Source>],
    cfg: &Config,
    now_ms: i64,
) -> Result<usize, AgentError> {
    let lock_path = home.index_lock();
    let lock = Lock::acquire(&lock_path, true)?.ok_or(AgentError::LockBusy { path: lock_path })?;
    let mut index = Index::load(home, &roots_signature(sources))?;
    let scan = index.scan(sources, now_ms, None, false);
    let ready = index
        .records
        .iter()
        .enumerate()
        .filter(|(i, r)| {
            !r.queued
                && r.ts >= cfg.ship_since_ms
                && !cfg.counted_by_otlp(r.agent, r.ts)
                && !scan.unsettled.contains(&(*i as u32))
        })
        .count();
    lock.release();
    Ok(ready)
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
    let mut skipped = false;
    for (i, r) in ix.records.iter_mut().enumerate() {
        if r.queued || r.ts < cfg.ship_since_ms {
            continue;
        }
        if cfg.counted_by_otlp(r.agent, r.ts) {
            // The developer's own OTLP export counts this request: marking it
            // handled keeps it from shipping later, after a switch back.
            r.queued = true;
            skipped = true;
            continue;
        }
        if scan.unsettled.contains(&(i as u32)) {
            held += 1;
            continue;
        }
        ready.push(i as u32);
    }
    if skipped {
        ix.mark_dirty();
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
        Err(ureq::Error::Status(410, resp)) => {
            return Err(AgentError::TeamDeleted {
                server: server.clone(),
                detail: http_detail(410, resp),
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
    let min_version = v["min_agent_version"].as_str().map(str::to_string);
    let interval = v["ship_interval_s"].as_u64().filter(|&s| s > 0);
    let source_path = serde_json::from_value(v["source_path"].clone()).ok();
    if capacity != cfg.rate_capacity
        || min_version != cfg.min_agent_version
        || interval != cfg.ship_interval_s
        || source_path != cfg.source_path
    {
        cfg.rate_capacity = capacity;
        cfg.min_agent_version = min_version;
        cfg.ship_interval_s = interval;
        cfg.source_path = source_path;
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
