//! Labelled synthetic secrets and the recall / false-positive measurements
//! built on them, for `tests/redact_corpus.rs` and benchmarks (feature
//! `corpus`). Pure functions of a seed, so results repeat on every machine.

mod plant;
mod values;

pub use plant::plant;

use super::{Kind, Redactor};

/// splitmix64: tiny, seedable, and identical on every platform.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0); the modulo bias is irrelevant here.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    pub fn range(&mut self, lo: usize, hi_inclusive: usize) -> usize {
        lo + self.below(hi_inclusive - lo + 1)
    }
    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
    pub fn chars(&mut self, alphabet: &str, n: usize) -> String {
        let a = alphabet.as_bytes();
        (0..n).map(|_| a[self.below(a.len())] as char).collect()
    }
    /// `chars` with a length drawn from `lo..=hi`.
    pub fn chars_in(&mut self, alphabet: &str, lo: usize, hi: usize) -> String {
        let n = self.range(lo, hi);
        self.chars(alphabet, n)
    }
    pub fn digits(&mut self, n: usize) -> String {
        self.chars(DIGITS, n)
    }
    pub fn bytes_in(&mut self, lo: usize, hi: usize) -> Vec<u8> {
        let n = self.range(lo, hi);
        self.bytes(n)
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

pub const DIGITS: &str = "0123456789";
pub const HEX: &str = "0123456789abcdef";
pub const B62: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
pub const B64URL: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
pub const B64: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

pub fn base64(data: &[u8], alphabet: &str, pad: bool) -> String {
    let a = alphabet.as_bytes();
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(a[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
        if pad {
            out.extend(std::iter::repeat_n('=', 3 - chunk.len()));
        }
    }
    out
}

/// One planted value: `text[secret]` is what must disappear, as `kind`.
#[derive(Debug, Clone)]
pub struct Sample {
    pub kind: Kind,
    pub text: String,
    pub secret: std::ops::Range<usize>,
}

const WORDS: &[&str] = &[
    "the",
    "build",
    "fails",
    "when",
    "I",
    "run",
    "tests",
    "again",
    "please",
    "check",
    "this",
    "config",
    "and",
    "fix",
    "deploy",
    "script",
    "for",
    "staging",
    "why",
    "does",
    "it",
    "hang",
    "here",
    "is",
    "the",
    "log",
    "output",
    "from",
    "yesterday",
    "refactor",
    "module",
    "café",
    "naïve",
    "Grüße",
    "日本語のテキスト",
    "🚀",
    "—",
    "résumé",
    "can",
    "you",
    "update",
    "README",
    "with",
    "new",
    "steps",
    "after",
    "migration",
    "server",
    "returns",
    "error",
];

fn filler(rng: &mut Rng, out: &mut String) {
    for _ in 0..rng.range(2, 10) {
        let word: &&str = rng.pick(WORDS);
        out.push_str(word);
        out.push(if rng.below(8) == 0 { '\n' } else { ' ' });
    }
}

const DECORATIONS: &[(&str, &str)] = &[
    ("`", "` "),
    ("(", ") "),
    ("```\n", "\n```\n"),
    ("- ", "\n"),
    ("> ", "\n"),
    ("", ". "),
    ("", ", "),
    ("", "; "),
    ("「", "」"),
    ("→", "←"),
    ("\t", "\r\n"),
    ("<td>", "</td>"),
];

/// `per_kind` samples of every kind, each inside a few words of prose.
pub fn samples(seed: u64, per_kind: usize) -> Vec<Sample> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(per_kind * Kind::ALL.len());
    for _ in 0..per_kind {
        for kind in Kind::ALL {
            let (before, secret, after) = plant(kind, &mut rng);
            // Half the samples sit in markdown, lists, quotes or brackets,
            // or end a sentence, as pasted values do in prompts.
            let (open, close) = if rng.below(2) == 0 {
                ("", " ")
            } else {
                *rng.pick(DECORATIONS)
            };
            let mut text = String::new();
            filler(&mut rng, &mut text);
            text.push_str(open);
            text.push_str(&before);
            let start = text.len();
            text.push_str(&secret);
            let end = text.len();
            text.push_str(&after);
            text.push_str(close);
            filler(&mut rng, &mut text);
            out.push(Sample {
                kind,
                text,
                secret: start..end,
            });
        }
    }
    out
}

/// A document of about `bytes` bytes mixing prose with planted values, for throughput runs.
pub fn document(seed: u64, bytes: usize) -> String {
    let mut rng = Rng::new(seed);
    let mut s = String::with_capacity(bytes + 4096);
    while s.len() < bytes {
        for _ in 0..40 {
            filler(&mut rng, &mut s);
        }
        let kind = *rng.pick(&Kind::ALL);
        let (a, v, b) = plant(kind, &mut rng);
        s.push_str(&a);
        s.push_str(&v);
        s.push_str(&b);
        s.push('\n');
    }
    s
}

#[derive(Debug, Default)]
pub struct Recall {
    /// kind, detected with that kind, total.
    pub per_kind: Vec<(Kind, usize, usize)>,
    pub detected: usize,
    pub total: usize,
    /// Findings that do not touch the planted value (false positives in the prose).
    pub stray: Vec<(String, String)>,
    /// Samples whose value was missed or mislabelled: (kind, text, what was found).
    pub misses: Vec<(Kind, String, String)>,
}

impl Recall {
    pub fn overall(&self) -> f64 {
        self.detected as f64 / self.total.max(1) as f64
    }
}

/// A sample counts only if one finding of its own kind covers the whole value.
pub fn recall(r: &Redactor, samples: &[Sample]) -> Recall {
    let mut rec = Recall {
        per_kind: Kind::ALL.iter().map(|&k| (k, 0, 0)).collect(),
        ..Recall::default()
    };
    for s in samples {
        let out = r.redact(&s.text);
        let hit = out
            .findings
            .iter()
            .any(|f| f.kind == s.kind && f.start <= s.secret.start && f.end >= s.secret.end);
        if let Some(row) = rec.per_kind.iter_mut().find(|row| row.0 == s.kind) {
            row.2 += 1;
            row.1 += usize::from(hit);
        }
        rec.total += 1;
        rec.detected += usize::from(hit);
        if !hit {
            rec.misses.push((s.kind, s.text.clone(), out.text.clone()));
        }
        for f in &out.findings {
            if f.end <= s.secret.start || f.start >= s.secret.end {
                rec.stray
                    .push((f.kind.to_string(), s.text[f.start..f.end].to_string()));
            }
        }
    }
    rec
}

#[derive(Debug, Default)]
pub struct FalsePositives {
    pub bytes: usize,
    pub files: usize,
    pub files_with_findings: usize,
    pub findings: usize,
    pub per_kind: Vec<(Kind, usize)>,
    /// (file name, kind, matched text) for the first findings, for inspection.
    pub examples: Vec<(String, Kind, String)>,
}

impl FalsePositives {
    pub fn per_mb(&self) -> f64 {
        self.findings as f64 / (self.bytes as f64 / 1e6).max(1e-9)
    }
    pub fn file_rate(&self) -> f64 {
        self.files_with_findings as f64 / self.files.max(1) as f64
    }
}

/// Every finding in text known to hold no secrets counts as a false positive.
pub fn false_positives(r: &Redactor, files: &[(String, String)]) -> FalsePositives {
    let mut fp = FalsePositives::default();
    for (name, text) in files {
        let out = r.redact(text);
        fp.bytes += text.len();
        fp.files += 1;
        fp.findings += out.findings.len();
        fp.files_with_findings += usize::from(!out.findings.is_empty());
        for f in &out.findings {
            match fp.per_kind.iter_mut().find(|row| row.0 == f.kind) {
                Some(row) => row.1 += 1,
                None => fp.per_kind.push((f.kind, 1)),
            }
            if fp.examples.len() < 200 {
                let m: String = text[f.start..f.end].chars().take(100).collect();
                fp.examples.push((name.clone(), f.kind, m));
            }
        }
    }
    fp.per_kind
        .sort_by(|a, b| b.1.cmp(&a.1).then(a.0.as_str().cmp(b.0.as_str())));
    fp
}

/// Common English words for `prose`: no names, numbers or secrets.
const ENGLISH: &[&str] = &[
    "the",
    "of",
    "and",
    "to",
    "a",
    "in",
    "is",
    "it",
    "that",
    "for",
    "was",
    "on",
    "are",
    "as",
    "with",
    "they",
    "be",
    "at",
    "one",
    "have",
    "this",
    "from",
    "by",
    "but",
    "not",
    "what",
    "all",
    "were",
    "when",
    "we",
    "there",
    "can",
    "an",
    "your",
    "which",
    "their",
    "said",
    "if",
    "do",
    "will",
    "each",
    "about",
    "how",
    "up",
    "out",
    "them",
    "then",
    "she",
    "many",
    "some",
    "so",
    "these",
    "would",
    "other",
    "into",
    "has",
    "more",
    "her",
    "two",
    "like",
    "him",
    "see",
    "time",
    "could",
    "no",
    "make",
    "than",
    "first",
    "been",
    "its",
    "who",
    "now",
    "people",
    "my",
    "made",
    "over",
    "did",
    "down",
    "only",
    "way",
    "find",
    "use",
    "may",
    "water",
    "long",
    "little",
    "very",
    "after",
    "words",
    "called",
    "just",
    "where",
    "most",
    "know",
    "build",
    "test",
    "function",
    "error",
    "request",
    "server",
    "module",
    "change",
    "because",
    "should",
    "before",
    "through",
    "between",
    "without",
    "different",
    "another",
    "example",
    "problem",
    "question",
    "understand",
    "configuration",
    "deployment",
    "performance",
    "everything",
    "something",
];

/// About `bytes` bytes of plain English prose (sentences and paragraphs of
/// common words), for throughput runs on text with nothing to hide.
pub fn prose(seed: u64, bytes: usize) -> String {
    let mut rng = Rng::new(seed);
    let mut s = String::with_capacity(bytes + 256);
    while s.len() < bytes {
        for _ in 0..rng.range(3, 7) {
            let n = rng.range(6, 22);
            for i in 0..n {
                let w = *rng.pick(ENGLISH);
                if i == 0 {
                    let mut c = w.chars();
                    if let Some(f) = c.next() {
                        s.extend(f.to_uppercase());
                        s.push_str(c.as_str());
                    }
                } else {
                    s.push_str(w);
                }
                if i + 1 < n {
                    s.push_str(if rng.below(12) == 0 { ", " } else { " " });
                }
            }
            let end: &&str = rng.pick(&[". ", ". ", ". ", "? ", "! "]);
            s.push_str(end);
        }
        s.push_str("\n\n");
    }
    s
}
