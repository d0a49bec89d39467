//! Sending the outbox: every pending batch in order; a batch over the
//! team's burst capacity goes in halves, one with invalid events is bisected
//! until only those are left (quarantined), one undeliverable for
//! `RESEND_GIVE_UP_DAYS` is given up. Settled halves are recorded, so a
//! resend after a crash reuses the same ids.

use super::*;

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

use tally_core::time::DAY_MS;

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
                if !matches!(e, AgentError::Auth { .. } | AgentError::TeamDeleted { .. }) {
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
