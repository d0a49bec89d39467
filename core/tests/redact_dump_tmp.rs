// TEMPORARY: dumps redaction outputs so a refactor can be diffed byte for byte.
use std::io::Write;
use tally_core::redact::{corpus, Redactor};

#[test]
#[ignore]
fn dump() {
    let path = std::env::var("REDACT_DUMP").unwrap();
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let r = Redactor::new();
    let mut emit = |name: &str, text: &str| {
        let out = r.redact(text);
        writeln!(f, "== {name} {:?}", out.findings.iter().map(|x| (x.kind.as_str(), x.start, x.end)).collect::<Vec<_>>()).unwrap();
        writeln!(f, "{}", out.text).unwrap();
    };
    for seed in 0..10u64 {
        for (i, s) in corpus::samples(seed, 40).iter().enumerate() {
            emit(&format!("sample {seed} {i}"), &s.text);
        }
    }
    for seed in 0..3u64 {
        emit("document", &corpus::document(seed, 1_000_000));
    }
    emit("prose", &corpus::prose(1, 500_000));
    let home = std::env::var("HOME").unwrap();
    let mut files = Vec::new();
    for c in ["syn-2.0.119", "regex-syntax-0.8.12", "serde_json-1.0.154", "tokio-1.54.1", "rustls-0.23.46", "http-1.5.0", "url-2.5.8", "chrono-0.4.45"] {
        for root in std::fs::read_dir(format!("{home}/.cargo/registry/src")).unwrap() {
            let d = root.unwrap().path().join(c);
            walk(&d, &mut files);
        }
    }
    files.sort();
    for p in files {
        let t = String::from_utf8_lossy(&std::fs::read(&p).unwrap()).into_owned();
        emit(&p.display().to_string(), &t);
    }
}

fn walk(d: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(rd) = std::fs::read_dir(d) else { return };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() { walk(&p, out) } else if p.extension().is_some_and(|x| x == "rs") { out.push(p) }
    }
}
