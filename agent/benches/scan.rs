//! Cold and warm runs over a generated corpus shaped like real Claude Code
//! logs (`tally::demo::generate_corpus`).
//!
//! `TALLY_BENCH_MIB` sets the corpus size (default 256). The corpus is
//! written once to `target/tally-bench-corpus-<MiB>` and reused.
//! Wall-clock comparisons with ccusage over 1.3 GB are in BENCHMARKS.md.

use std::path::PathBuf;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tally::home::Home;
use tally::index::{roots_signature, Index};
use tally::report::{build, Filter, Group};
use tally::source::{Claude, Source};

fn corpus() -> (PathBuf, u64) {
    let mib: u64 = std::env::var("TALLY_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let dir = target.join(format!("tally-bench-corpus-{mib}"));
    let done = dir.join(".complete");
    if !done.exists() {
        let _ = std::fs::remove_dir_all(&dir);
        let (bytes, requests) = tally::demo::generate_corpus(&dir, mib << 20, 7).unwrap();
        std::fs::write(&done, format!("{bytes} {requests}")).unwrap();
    }
    let bytes = std::fs::read_to_string(&done)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    (dir, bytes)
}

fn sources(dir: &std::path::Path) -> Vec<Box<dyn Source>> {
    vec![Box::new(Claude {
        roots: vec![dir.to_path_buf()],
    })]
}

fn bench(c: &mut Criterion) {
    let (dir, bytes) = corpus();
    let src = sources(&dir);
    let sig = roots_signature(&src);
    let now = i64::MAX;
    let mut g = c.benchmark_group("scan");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    g.throughput(Throughput::Bytes(bytes));
    g.bench_function("cold", |b| {
        b.iter(|| {
            let mut ix = Index::new(sig.clone());
            let out = ix.scan(&src, now, None, false);
            assert!(out.stats.new_requests > 0);
            ix.records.len()
        })
    });
    // Warm: the saved index is loaded, every file is stat'ed, nothing is read.
    let state = tempfile::tempdir().unwrap();
    let home = Home::at(state.path());
    let mut ix = Index::new(sig.clone());
    ix.scan(&src, now, None, false);
    ix.save(&home).unwrap();
    let filter = Filter::all_days(jiff::tz::TimeZone::UTC);
    g.throughput(Throughput::Elements(1));
    g.bench_function("warm_nothing_new_plus_daily_report", |b| {
        b.iter(|| {
            let mut ix = Index::load(&home, &sig).unwrap();
            let out = ix.scan(&src, now, None, false);
            assert_eq!(out.stats.bytes_read, 0);
            build(&ix, Group::Daily, &filter).totals.requests
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
