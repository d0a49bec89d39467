//! CPU of the ingest route for one full batch (500 events, gzip, as agents
//! send it), natively, through the Worker's own functions in the order the
//! route calls them: read the body, decode, restrict to the team's mode,
//! re-price, (Full mode) redact and seal the text per (day, session), roll
//! up, split into queue messages and serialize them. The I/O between those
//! steps (D1, the limiter, R2, the queue) is not measured here.
//!
//! `cargo bench -p tally-worker --bench ingest` (part of `cargo xtask bench`);
//! figures are in BENCHMARKS.md. Native x86_64 is not workerd's wasm32: the
//! figures are a floor to compare builds, not the billed CPU time.

use std::io::Write;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use serde_json::{json, Value};
use tally_core::event::{PrivacyMode, WireEvent};
use tally_core::hash::{project_hash, session_hash};
use tally_core::pricing::{default_table, reprice};
use tally_core::redact::corpus;
use tally_core::wire::{decode_batch, MAX_BATCH_BYTES};
use tally_worker::pipeline::{
    object_key, queue_parts, read_body, redacted_groups, restrict_all, sealed_object, Sender,
    StoredContent,
};

/// 2026-11-30T00:00:00Z: the batch is three hours before it.
const NOW: i64 = 1_795_996_800_000;
const HOUR: i64 = 3_600_000;

/// `s` cut to at most `n` bytes on a character boundary.
fn cut(mut s: String, n: usize) -> String {
    let mut end = n.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s
}

/// 500 Full-mode requests of one developer over three hours: two models,
/// three sessions, two projects (the edge test's mix), each with a 600-byte
/// prompt holding secrets at the corpus's typical density and a 900-byte
/// prose response (the body stays under the 1 MiB limit).
fn body() -> Vec<u8> {
    let start = NOW - 3 * HOUR;
    let events: Vec<Value> = (0..500u64)
        .map(|n| {
            json!({
                "id": format!("{n:032x}"),
                "ts": start + (n as i64) * 20_000,
                "agent": "claude_code",
                "model": if n % 3 == 0 { "claude-opus-4-5" } else { "claude-sonnet-4-5" },
                "tokens": {"input": 1200 + n, "output": 300, "cache_write_5m": 0, "cache_write_1h": 0, "cache_read": 20_000},
                "cost_pico_usd": 1_000_000,
                "project": project_hash("salt", if n < 250 { "/a" } else { "/b" }),
                "session": session_hash("salt", &format!("s{}", n / 170)),
                "mode": "full",
                "prompt": cut(corpus::document(n, 600), 600),
                "response": cut(corpus::prose(n + 10_000, 900), 900),
                "tools": ["Read", "Edit"],
            })
        })
        .collect();
    let json =
        serde_json::to_vec(&json!({"batch_id": "batch-bench-00000001", "events": events})).unwrap();
    assert!(json.len() <= MAX_BATCH_BYTES, "{} bytes", json.len());
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&json).unwrap();
    gz.finish().unwrap()
}

const FROM: Sender<'static> = Sender {
    team_id: "0123456789abcdef0123456789abcdef",
    shard: "DB",
    developer_id: "fedcba9876543210fedcba9876543210",
    agent_id: "00112233445566778899aabbccddeeff",
};

/// Redacts and seals every (day, session) group as the content store does;
/// returns the sealed bytes.
fn seal_all(events: &[WireEvent], batch_id: &str) -> usize {
    let key = [7u8; 32];
    redacted_groups(events)
        .into_iter()
        .map(|((day, session), evs)| {
            let k = object_key(
                FROM.team_id,
                day * tally_core::time::DAY_MS,
                session,
                batch_id,
            );
            let content = StoredContent {
                batch_id: batch_id.to_string(),
                team_id: FROM.team_id.to_string(),
                session: session.to_string(),
                day: tally_core::time::utc_date(day * tally_core::time::DAY_MS),
                events: evs,
            };
            sealed_object(&key, [1u8; 12], &k, &content).unwrap().len()
        })
        .sum()
}

/// The route's CPU for one body in `mode`: bytes of queue messages out.
fn ingest(body: &[u8], mode: PrivacyMode) -> usize {
    let plain = read_body(body.to_vec(), true).unwrap();
    let batch = decode_batch(&plain, NOW).unwrap();
    let (mut events, _) = restrict_all(&batch.events, mode);
    let repriced = reprice(default_table(), &mut events);
    if mode == PrivacyMode::Full {
        seal_all(&events, &batch.batch_id);
    }
    queue_parts(
        &FROM,
        &batch.batch_id,
        &events,
        Default::default(),
        repriced.disagreements,
        NOW,
    )
    .iter()
    .map(|p| serde_json::to_vec(p).unwrap().len())
    .sum()
}

fn bench(c: &mut Criterion) {
    let body = body();
    let plain = read_body(body.clone(), true).unwrap();
    let decoded = decode_batch(&plain, NOW).unwrap();
    assert_eq!(decoded.events.len(), 500);
    let (full, _) = restrict_all(&decoded.events, PrivacyMode::Full);
    // The text survives Full mode, so the redaction below has work to do.
    assert!(full
        .iter()
        .all(|e| e.prompt.is_some() && e.response.is_some()));
    eprintln!(
        "batch: 500 events, {} bytes JSON, {} bytes gzip; queue messages {} bytes (Full), sealed content {} bytes",
        plain.len(),
        body.len(),
        ingest(&body, PrivacyMode::Full),
        seal_all(&full, "batch-bench-00000001")
    );

    let mut g = c.benchmark_group("ingest_500");
    g.sample_size(30).measurement_time(Duration::from_secs(10));
    g.bench_function("whole route, Full mode", |b| {
        b.iter(|| ingest(&body, PrivacyMode::Full))
    });
    g.bench_function("whole route, Off mode (same body)", |b| {
        b.iter(|| ingest(&body, PrivacyMode::Off))
    });
    g.bench_function("gunzip + decode", |b| {
        b.iter(|| decode_batch(&read_body(body.clone(), true).unwrap(), NOW).unwrap())
    });
    g.bench_function("restrict (Full) + reprice", |b| {
        b.iter_batched(
            || decoded.events.clone(),
            |evs| {
                let (mut events, _) = restrict_all(&evs, PrivacyMode::Full);
                reprice(default_table(), &mut events)
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("redact + seal (Full)", |b| {
        b.iter(|| seal_all(&full, "batch-bench-00000001"))
    });
    g.bench_function("roll up + split + serialize", |b| {
        b.iter(|| {
            queue_parts(
                &FROM,
                "batch-bench-00000001",
                &full,
                Default::default(),
                0,
                NOW,
            )
            .iter()
            .map(|p| serde_json::to_vec(p).unwrap().len())
            .sum::<usize>()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
