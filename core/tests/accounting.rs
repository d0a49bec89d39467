//! End-to-end accounting over fixture transcripts: every trap of FORMATS.md
//! with the exact cost it must have, computed by hand in the comments in
//! micro-USD (prices in USD per million tokens = micro-USD per token) and
//! asserted in pico-USD.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use tally_core::claude::{parse_line, ClaudeLine, ClaudeRequest, Deduper, Offer};
use tally_core::codex::{session_id_from_file_name, CodexFile, CodexLine, CodexRequest};
use tally_core::pricing::{default_table, price_request, Priced};
use tally_core::usage::TokenUsage;

const SA: &str = "aaaaaaaa-0000-4000-8000-000000000001";
const SB: &str = "bbbbbbbb-0000-4000-8000-000000000002";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// All `.jsonl` files below `dir`, sorted the way the agent sorts them.
fn jsonl_files(dir: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "jsonl") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, &mut out);
    out.sort();
    out
}

#[derive(Default)]
struct ClaudeRun {
    requests: Vec<ClaudeRequest>,
    offers: Vec<(String, Offer)>,
    prompts: Vec<(String, String)>,
    malformed: usize,
    skipped: usize,
}

impl ClaudeRun {
    fn get(&self, message_id: &str) -> &ClaudeRequest {
        self.requests
            .iter()
            .find(|r| r.message_id == message_id)
            .unwrap_or_else(|| panic!("{message_id}"))
    }

    fn cost(&self, message_id: &str) -> Priced {
        let r = self.get(message_id);
        price_request(default_table(), &r.model, &r.usage, r.fast)
    }
}

fn run_claude() -> ClaudeRun {
    let mut run = ClaudeRun::default();
    let mut dedup = Deduper::new();
    for f in jsonl_files(&fixtures().join("claude/projects")) {
        let bytes = std::fs::read(&f).unwrap();
        for line in bytes.split_inclusive(|&b| b == b'\n') {
            match parse_line(line) {
                ClaudeLine::Request(r) => {
                    let id = format!("{}@{}", r.message_id, &r.session_id[..4]);
                    run.offers.push((id, dedup.offer(r)));
                }
                ClaudeLine::Prompt(p) => run.prompts.push((p.session_id, p.text)),
                ClaudeLine::Skip => run.skipped += 1,
                ClaudeLine::Malformed(_) => run.malformed += 1,
            }
        }
    }
    run.requests = dedup.into_requests();
    run
}

fn u(input: u64, output: u64, w5: u64, w1: u64, read: u64) -> TokenUsage {
    TokenUsage {
        input,
        output,
        cache_write_5m: w5,
        cache_write_1h: w1,
        cache_read: read,
    }
}

#[test]
fn streaming_split_counts_the_largest_line_once() {
    let run = run_claude();
    let a: Vec<Offer> = run
        .offers
        .iter()
        .filter(|(id, _)| id.starts_with("msg_A@"))
        .map(|(_, o)| *o)
        .collect();
    // Three lines in session A (output 10 → 40 → 500), one repeat in resumed session B.
    assert_eq!(
        a,
        [
            Offer::New,
            Offer::Replaced,
            Offer::Replaced,
            Offer::Duplicate
        ]
    );
    let r = run.get("msg_A");
    assert_eq!(r.usage, u(1000, 500, 2000, 0, 10_000));
    // The content of all three lines, in order; the thinking block is not text.
    assert_eq!(r.text.as_deref(), Some("Let me look at the test."));
    assert_eq!(r.tool_names, ["Read"]);
    // Sonnet 4.5: 1000×3 + 500×15 + 2000×3.75 + 10000×0.30 = 3000 + 7500 + 7500 + 3000.
    assert_eq!(run.cost("msg_A"), Priced::Pico(21_000_000_000));
}

#[test]
fn resumed_session_is_counted_once_and_kept_by_the_first_session() {
    let run = run_claude();
    for id in ["msg_A", "msg_B", "msg_N"] {
        assert_eq!(
            run.requests.iter().filter(|r| r.message_id == id).count(),
            1,
            "{id}"
        );
        assert_eq!(run.get(id).session_id, SA, "{id}");
        let in_b = run
            .offers
            .iter()
            .find(|(i, _)| *i == format!("{id}@bbbb"))
            .unwrap();
        assert_eq!(in_b.1, Offer::Duplicate, "{id}");
    }
    // B's own request counts: Haiku 4.5, 2000×1 + 300×5 = 2000 + 1500.
    let h = run.get("msg_H");
    assert_eq!(h.session_id, SB);
    assert_eq!(run.cost("msg_H"), Priced::Pico(3_500_000_000));
}

#[test]
fn subagent_transcripts_count() {
    let run = run_claude();
    let s = run.get("msg_S");
    assert!(s.is_sidechain);
    assert_eq!(s.agent_id.as_deref(), Some("a1"));
    assert_eq!(s.session_id, SA);
    assert_eq!(s.tool_names, ["Grep"]);
    // Haiku 4.5: 500×1 + 100×5 + 1000×0.10 = 500 + 500 + 100.
    assert_eq!(run.cost("msg_S"), Priced::Pico(1_100_000_000));
}

#[test]
fn synthetic_unknown_and_malformed_lines() {
    let run = run_claude();
    assert!(run.requests.iter().all(|r| r.model != "<synthetic>"));
    // One line was cut short mid-write; nothing else is malformed, the new
    // `hologram-v9` type whose `message` is a string included.
    assert_eq!(run.malformed, 1);
    // A: snapshot, tool result, synthetic, system, queue-operation, hologram-v9,
    // summary = 7; B: summary = 1.
    assert_eq!(run.skipped, 8);
    assert_eq!(run.requests.len(), 10);
}

#[test]
fn prompts_are_user_text_not_tool_results() {
    let run = run_claude();
    let texts: Vec<&str> = run.prompts.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(
        texts,
        [
            "Search the repo for TODOs",
            "Fix the failing test in src/main.rs",
            "Now summarise the whole repository",
            "Fix the failing test in src/main.rs",
            "Continue"
        ]
    );
}

#[test]
fn cache_creation_present_absent_and_1h() {
    let run = run_claude();
    // No `cache_creation` breakdown: all 1000 written tokens are 5m writes.
    assert_eq!(run.get("msg_B").usage, u(50, 200, 1000, 0, 0));
    // Opus 4.1: 50×15 + 200×75 + 1000×18.75 = 750 + 15000 + 18750.
    assert_eq!(run.cost("msg_B"), Priced::Pico(34_500_000_000));
    // Breakdown present, all of it 1h.
    assert_eq!(run.get("msg_C").usage, u(10, 100, 0, 4000, 20_000));
    // Opus 4.5: 10×5 + 100×25 + 4000×10 + 20000×0.50 = 50 + 2500 + 40000 + 10000.
    assert_eq!(run.cost("msg_C"), Priced::Pico(52_550_000_000));
    // No requestId, keyed by uuid; no breakdown. Sonnet 4.5: 100×3 + 10×15.
    assert_eq!(run.get("msg_N").request_id, "");
    assert_eq!(run.cost("msg_N"), Priced::Pico(450_000_000));
}

#[test]
fn long_context_boundary() {
    let run = run_claude();
    // Exactly 200,000 prompt tokens (3 + 1000 + 198,997) is not over the threshold:
    // 3×3 + 1000×3.75 + 198997×0.30 + 1000×15 = 9 + 3750 + 59699.1 + 15000 = 78458.1 µ$.
    assert_eq!(run.get("msg_D").usage.prompt_tokens(), 200_000);
    assert_eq!(run.cost("msg_D"), Priced::Pico(78_458_100_000));
    // 200,001 is, and the whole request takes the premium:
    // 4×6 + 1000×7.5 + 198997×0.60 + 1000×22.5 = 24 + 7500 + 119398.2 + 22500 = 149422.2 µ$.
    assert_eq!(run.get("msg_E").usage.prompt_tokens(), 200_001);
    assert_eq!(run.cost("msg_E"), Priced::Pico(149_422_200_000));
}

#[test]
fn fast_mode_multiplier() {
    let run = run_claude();
    let f = run.get("msg_F");
    assert!(f.fast);
    // Opus 4.6 at 6×: (100×5 + 1000×25 + 5000×0.50) × 6 = (500 + 25000 + 2500) × 6.
    assert_eq!(run.cost("msg_F"), Priced::Pico(168_000_000_000));
    assert_eq!(
        price_request(default_table(), &f.model, &f.usage, false),
        Priced::Pico(28_000_000_000)
    );
}

#[test]
fn unknown_model_is_unpriced_not_free() {
    let run = run_claude();
    assert_eq!(run.get("msg_G").usage, u(5, 5, 0, 0, 0));
    assert_eq!(run.cost("msg_G"), Priced::Unpriced);
}

#[test]
fn claude_run_total() {
    let run = run_claude();
    let mut total = 0;
    let mut unpriced = Vec::new();
    for r in &run.requests {
        match price_request(default_table(), &r.model, &r.usage, r.fast) {
            Priced::Pico(c) => total += c,
            Priced::Unpriced => unpriced.push(r.model.clone()),
        }
    }
    // A 21,000 + B 34,500 + C 52,550 + D 78,458.1 + E 149,422.2 + F 168,000 + N 450
    // + S 1,100 + H 3,500 = 508,980.3 µ$: nothing rounded (version one, rounding
    // each request to a micro-dollar, said 508,980).
    assert_eq!(total, 508_980_300_000);
    assert_eq!(unpriced, ["claude-imaginary-9"]);
    // First-seen order. Paths sort by component, so A's subagent folder
    // (`<A>/subagents/…`) comes before A's own file (`<A>.jsonl`), then B.
    let order: Vec<&str> = run.requests.iter().map(|r| r.message_id.as_str()).collect();
    assert_eq!(
        order,
        [
            "msg_S", "msg_A", "msg_B", "msg_C", "msg_D", "msg_E", "msg_F", "msg_G", "msg_N",
            "msg_H"
        ]
    );
}

fn run_codex() -> (Vec<CodexRequest>, usize) {
    let files = jsonl_files(&fixtures().join("codex/sessions"));
    assert_eq!(files.len(), 1);
    let name = files[0].file_name().unwrap().to_str().unwrap();
    let mut file = CodexFile::new(session_id_from_file_name(name).unwrap().to_owned());
    let (mut out, mut malformed) = (Vec::new(), 0);
    for line in std::fs::read(&files[0]).unwrap().split(|&b| b == b'\n') {
        match file.push_line(line) {
            CodexLine::Request(r) => out.push(r),
            CodexLine::Malformed(_) => malformed += 1,
            CodexLine::Skip => {}
        }
    }
    (out, malformed)
}

#[test]
fn codex_cumulative_deltas() {
    let (reqs, malformed) = run_codex();
    assert_eq!(malformed, 1);
    // Totals seen: 12000/8000/600 twice, 30000/20000/1500, a regression to
    // 29000/…, 30000/… again, 45000/30000/2100 → three requests.
    let got: Vec<(u32, &str, TokenUsage)> = reqs
        .iter()
        .map(|r| (r.seq, r.model.as_str(), r.usage))
        .collect();
    assert_eq!(
        got,
        [
            (0, "gpt-5-codex", u(4000, 600, 0, 0, 8000)),
            (1, "gpt-5-codex", u(6000, 900, 0, 0, 12_000)),
            (2, "gpt-5.1-codex-max", u(5000, 600, 0, 0, 10_000)),
        ]
    );
    assert!(reqs
        .iter()
        .all(|r| r.cwd.as_deref() == Some("/w/codex-app")));
    // The real layout's `session_meta.git.branch`, on every request.
    assert!(reqs.iter().all(|r| r.branch.as_deref() == Some("main")));
    assert!(reqs
        .iter()
        .all(|r| r.session_id == "0199a213-81c0-7800-8aa1-bbab2a035a53"));
    let costs: Vec<Priced> = reqs
        .iter()
        .map(|r| price_request(default_table(), &r.model, &r.usage, false))
        .collect();
    // gpt-5-codex and gpt-5.1-codex-max: input 1.25, cached 0.125, output 10.
    // 4000×1.25 + 8000×0.125 + 600×10 = 5000 + 1000 + 6000 = 12,000
    // 6000×1.25 + 12000×0.125 + 900×10 = 7500 + 1500 + 9000 = 18,000
    // 5000×1.25 + 10000×0.125 + 600×10 = 6250 + 1250 + 6000 = 13,500
    assert_eq!(
        costs,
        [
            Priced::Pico(12_000_000_000),
            Priced::Pico(18_000_000_000),
            Priced::Pico(13_500_000_000)
        ]
    );
    // The deltas add up to the last total: nothing double-counted, nothing lost.
    let mut sum = TokenUsage::default();
    for r in &reqs {
        sum.add(&r.usage);
    }
    assert_eq!(
        (sum.input + sum.cache_read, sum.cache_read, sum.output),
        (45_000, 30_000, 2_100)
    );
}

#[test]
fn every_fixture_line_is_accounted_for() {
    // Guards the fixtures themselves: a line silently dropped by the walker would
    // make the other tests vacuous.
    let mut per_file: HashMap<String, usize> = HashMap::new();
    for f in jsonl_files(&fixtures()) {
        let n = std::fs::read(&f)
            .unwrap()
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        per_file.insert(f.file_name().unwrap().to_string_lossy().into_owned(), n);
    }
    assert_eq!(per_file[&format!("{SA}.jsonl")], 20);
    assert_eq!(per_file[&format!("{SB}.jsonl")], 7);
    assert_eq!(per_file["agent-a1.jsonl"], 2);
    let run = run_claude();
    assert_eq!(
        run.offers.len() + run.prompts.len() + run.skipped + run.malformed,
        29
    );
}

mod never_panics {
    use super::*;
    use proptest::prelude::*;

    fn sample_lines() -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for f in jsonl_files(&fixtures()) {
            let bytes = std::fs::read(&f).unwrap();
            out.extend(
                bytes
                    .split(|&b| b == b'\n')
                    .filter(|l| !l.is_empty() && l.len() < 4000)
                    .map(<[u8]>::to_vec),
            );
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Transcripts are files on a developer's disk, written by other
        /// programs: no byte sequence may panic the parsers.
        #[test]
        fn random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_line(&bytes);
            let _ = CodexFile::new(String::new()).push_line(&bytes);
        }

        #[test]
        fn mutated_lines(pick in 0usize..1000, pos in 0usize..4000, byte in any::<u8>(), cut in 0usize..4000) {
            let lines = sample_lines();
            let mut l = lines[pick % lines.len()].clone();
            let p = pos % l.len();
            l[p] = byte;
            l.truncate(cut.max(p + 1).min(l.len()));
            let _ = parse_line(&l);
            let mut codex = CodexFile::new(String::new());
            let _ = codex.push_line(&l);
            let _ = codex.push_line(&l);
        }
    }
}
