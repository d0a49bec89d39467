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
        branch: String::new(),
        session: "b".repeat(64),
        mode: PrivacyMode::Full,
        branch_name: None,
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
        min_agent_version: None,
        ship_interval_s: None,
        source_path: None,
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
