//! Redaction throughput on three kinds of text: (a) prompts with a typical
//! density of secrets (`corpus::document`, about one planted value per
//! 1.6 KB), (b) plain English prose (`corpus::prose`), (c) third-party Rust
//! source from the cargo registry (falls back to this crate's own sources).
//!
//! `cargo bench -p tally-core --bench redact`; figures are in BENCHMARKS.md.

use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tally_core::redact::{corpus, Redactor};

const BYTES: usize = 2_000_000;

/// Crate versions read for the source-code input, in this order; the newest
/// other version of the same crate stands in when one is missing.
const SOURCE_CRATES: &[&str] = &[
    "syn-2.0.119",
    "regex-syntax-0.8.12",
    "serde_json-1.0.154",
    "tokio-1.54.1",
    "clap_builder-4.6.7",
];

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rs_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

fn source_code() -> (String, String) {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")));
    let mut roots: Vec<PathBuf> = home
        .and_then(|h| std::fs::read_dir(h.join("registry/src")).ok())
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    roots.sort();
    let mut dirs = Vec::new();
    for want in SOURCE_CRATES {
        let name = &want[..want.rfind('-').unwrap_or(want.len())];
        let mut found: Option<PathBuf> = None;
        for root in &roots {
            let exact = root.join(want);
            if exact.is_dir() {
                found = Some(exact);
                break;
            }
            if let Ok(rd) = std::fs::read_dir(root) {
                let mut same: Vec<PathBuf> = rd
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| {
                        p.file_name().and_then(|f| f.to_str()).is_some_and(|f| {
                            f.strip_prefix(name)
                                .and_then(|v| v.strip_prefix('-'))
                                .is_some_and(|v| v.starts_with(|c: char| c.is_ascii_digit()))
                        })
                    })
                    .collect();
                same.sort();
                if found.is_none() {
                    found = same.pop();
                }
            }
        }
        dirs.extend(found);
    }
    if dirs.is_empty() {
        dirs.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    }
    let mut text = String::with_capacity(BYTES + 100_000);
    let mut from = Vec::new();
    'outer: for d in &dirs {
        let mut files = Vec::new();
        rs_files(d, &mut files);
        from.push(
            d.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string(),
        );
        let cap = text.len() + BYTES / SOURCE_CRATES.len();
        for f in files {
            if text.len() >= BYTES {
                break 'outer;
            }
            if text.len() >= cap {
                break;
            }
            if let Ok(bytes) = std::fs::read(&f) {
                text.push_str(&String::from_utf8_lossy(&bytes));
            }
        }
    }
    (text, from.join(", "))
}

fn bench(c: &mut Criterion) {
    let r = Redactor::new();
    let (code, from) = source_code();
    eprintln!(
        "source code input: {:.2} MB from {from}",
        code.len() as f64 / 1e6
    );
    let inputs = [
        ("prompts", corpus::document(0x7a11_5eed, BYTES)),
        ("prose", corpus::prose(0x7a11_5eed, BYTES)),
        ("source_code", code),
    ];
    let mut g = c.benchmark_group("redact");
    g.sample_size(20).measurement_time(Duration::from_secs(6));
    for (name, text) in &inputs {
        eprintln!(
            "{name}: {:.2} MB, {} findings",
            text.len() as f64 / 1e6,
            r.redact(text).findings.len()
        );
        g.throughput(Throughput::Bytes(text.len() as u64));
        g.bench_function(*name, |b| b.iter(|| r.redact(std::hint::black_box(text))));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
