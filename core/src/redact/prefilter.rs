//! Where each rule can match at all, found in one or two cheap passes, so
//! the rule regexes only run over the few lines that could hold a match
//! (the keyword pre-filter gitleaks uses, plus byte counts for the
//! number-shaped PII rules).
//!
//! Soundness: every rule regex except `private_key` matches within one
//! line (none can match `\n`) and has no anchors, so searching a run of
//! whole lines finds exactly the matches a search of the whole text finds
//! there; `(?-u:\b)` at a run's edge sees a line break or the text's edge,
//! both non-word, as before. A gate only drops lines where the rule cannot
//! match (a keyword every match contains is absent) or no match could pass
//! the rule's validator (too few digits for a phone number). The
//! `prefilter_matches_exhaustive_scan` test compares against running every
//! regex over the whole text.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

/// Which text a rule's regex needs to see.
#[derive(Clone, Copy)]
pub(super) enum Gate {
    /// Lines holding one of these strings (ASCII case-insensitively); every
    /// match of the rule contains one of them.
    Words(&'static [&'static str]),
    /// Lines whose byte counts pass the test.
    Counts(CountTest),
    /// The whole text if one of these strings occurs anywhere (for the one
    /// rule whose matches span lines).
    Anywhere(&'static [&'static str]),
}

/// A test of a line's byte counts.
pub(super) type CountTest = fn(&Counts) -> bool;

/// Byte classes counted per line (saturating).
#[derive(Clone, Copy, Default, Debug)]
pub(super) struct Counts {
    pub digits: u32,
    pub upper: u32,
    pub dots: u32,
    pub colons: u32,
}

/// One counter per 16-bit lane: digits, upper case, `.`, `:`.
const CLASS: [u64; 256] = {
    let mut t = [0u64; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = if b.is_ascii_digit() {
            1
        } else if b.is_ascii_uppercase() {
            1 << 16
        } else if b == b'.' {
            1 << 32
        } else if b == b':' {
            1 << 48
        } else {
            0
        };
        c += 1;
    }
    t
};

fn counts(line: &[u8]) -> Counts {
    let mut out = Counts::default();
    // A lane cannot overflow within 65,535 bytes.
    for chunk in line.chunks(u16::MAX as usize) {
        let mut acc = 0u64;
        for &b in chunk {
            acc += CLASS[b as usize];
        }
        let lane = |i: u32| ((acc >> (16 * i)) & 0xFFFF) as u32;
        out.digits = out.digits.saturating_add(lane(0));
        out.upper = out.upper.saturating_add(lane(1));
        out.dots = out.dots.saturating_add(lane(2));
        out.colons = out.colons.saturating_add(lane(3));
    }
    out
}

pub(super) struct Prefilter {
    gates: Vec<Option<Gate>>,
    words: Option<AhoCorasick>,
    /// Rules (bit per rule index) each `words` pattern stands for.
    word_rules: Vec<u64>,
}

/// Byte ranges, each a run of whole lines, for each rule; `None` for
/// ungated rules (search the whole text).
pub(super) type Windows = Vec<Option<Vec<(usize, usize)>>>;

/// Candidate lines closer than this are searched in one call.
const MERGE_GAP: usize = 64;

impl Prefilter {
    pub(super) fn new(gates: Vec<Option<Gate>>) -> Prefilter {
        assert!(gates.len() <= 64, "one bit per rule");
        let mut pats: Vec<String> = Vec::new();
        let mut word_rules: Vec<u64> = Vec::new();
        for (ri, g) in gates.iter().enumerate() {
            let ws = match g {
                Some(Gate::Words(ws) | Gate::Anywhere(ws)) => *ws,
                _ => continue,
            };
            for w in ws {
                let w = w.to_ascii_lowercase();
                match pats.iter().position(|p| *p == w) {
                    Some(i) => word_rules[i] |= 1 << ri,
                    None => {
                        pats.push(w);
                        word_rules.push(1 << ri);
                    }
                }
            }
        }
        let words = (!pats.is_empty()).then(|| {
            AhoCorasickBuilder::new()
                .ascii_case_insensitive(true)
                .match_kind(MatchKind::Standard)
                .build(&pats)
                .expect("gate words build")
        });
        Prefilter {
            gates,
            words,
            word_rules,
        }
    }

    pub(super) fn windows(&self, text: &str) -> Windows {
        let bytes = text.as_bytes();
        // Line starts; line i is starts[i]..ends(i), without its `\n`.
        let mut starts = vec![0usize];
        starts.extend(memchr::memchr_iter(b'\n', bytes).map(|i| i + 1));
        let end_of = |i: usize| starts.get(i + 1).map_or(bytes.len(), |&s| s - 1);

        let mut lines: Vec<Vec<usize>> = vec![Vec::new(); self.gates.len()];
        let mut anywhere = 0u64;
        if let Some(ac) = &self.words {
            for m in ac.find_overlapping_iter(bytes) {
                let mut rules = self.word_rules[m.pattern().as_usize()];
                let line = starts.partition_point(|&s| s <= m.start()) - 1;
                while rules != 0 {
                    let ri = rules.trailing_zeros() as usize;
                    rules &= rules - 1;
                    if matches!(self.gates[ri], Some(Gate::Anywhere(_))) {
                        anywhere |= 1 << ri;
                    } else if lines[ri].last() != Some(&line) {
                        lines[ri].push(line);
                    }
                }
            }
        }
        let counted: Vec<(usize, CountTest)> = self
            .gates
            .iter()
            .enumerate()
            .filter_map(|(ri, g)| match g {
                Some(Gate::Counts(f)) => Some((ri, *f)),
                _ => None,
            })
            .collect();
        if !counted.is_empty() {
            for i in 0..starts.len() {
                let c = counts(&bytes[starts[i]..end_of(i)]);
                if c.digits == 0 && c.colons < 2 {
                    continue; // what every counted rule needs at the least
                }
                for &(ri, f) in &counted {
                    if f(&c) {
                        lines[ri].push(i);
                    }
                }
            }
        }
        self.gates
            .iter()
            .enumerate()
            .map(|(ri, g)| match g {
                None => None,
                Some(Gate::Anywhere(_)) => Some(if anywhere & (1 << ri) != 0 {
                    vec![(0, bytes.len())]
                } else {
                    Vec::new()
                }),
                Some(_) => {
                    let mut out: Vec<(usize, usize)> = Vec::new();
                    for &i in &lines[ri] {
                        let (s, e) = (starts[i], end_of(i));
                        match out.last_mut() {
                            Some(last) if s <= last.1 + MERGE_GAP => last.1 = e,
                            _ => out.push((s, e)),
                        }
                    }
                    Some(out)
                }
            })
            .collect()
    }
}
