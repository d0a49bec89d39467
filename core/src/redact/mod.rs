//! Scrubs secrets and personal data from text before it may leave a machine
//! (and again at the edge). Each match becomes a typed placeholder such as
//! `[REDACTED:aws_access_key]`, so a reader still sees what kind of thing was there.
//!
//! Every rule proposes candidate spans (its regex runs only on the lines its
//! gate in `prefilter` leaves, which is exact: see there); overlaps are
//! settled in one place (earliest start, then longest, then rule order), so
//! output is never nested and existing placeholders are never touched.
//! Rescanning until nothing new turns up makes redaction idempotent.

use std::fmt;
use std::sync::OnceLock;

use regex::Regex;

mod checks;
#[cfg(any(test, feature = "corpus"))]
pub mod corpus;
mod entropy;
mod prefilter;
mod rules;

use prefilter::{Gate, Prefilter};

named_enum! {
    /// What a redaction hid; its name appears in the placeholder. `ALL` is in
    /// the order the rules are tried, which is the tie-break order.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum Kind {
        PrivateKey => "private_key",
        AnthropicApiKey => "anthropic_api_key",
        OpenaiApiKey => "openai_api_key",
        TallyToken => "tally_token",
        AwsAccessKey => "aws_access_key",
        AwsSecretKey => "aws_secret_key",
        GithubToken => "github_token",
        GitlabToken => "gitlab_token",
        SlackWebhook => "slack_webhook",
        SlackToken => "slack_token",
        StripeKey => "stripe_key",
        GoogleApiKey => "google_api_key",
        AzureStorageKey => "azure_storage_key",
        NpmToken => "npm_token",
        PypiToken => "pypi_token",
        Jwt => "jwt",
        UrlCredentials => "url_credentials",
        Email => "email",
        Iban => "iban",
        CreditCard => "credit_card",
        UsSsn => "us_ssn",
        Phone => "phone",
        Ipv6 => "ipv6",
        Ipv4 => "ipv4",
        PasswordAssignment => "password_assignment",
        HighEntropy => "high_entropy",
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub kind: Kind,
    /// Byte range in the original text.
    pub start: usize,
    pub end: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redacted {
    pub text: String,
    pub findings: Vec<Finding>,
}

/// A candidate as a rule's regex saw it: the whole match and the part to hide.
#[derive(Clone, Copy)]
struct Cand<'t> {
    text: &'t str,
    whole: (usize, usize),
    secret: (usize, usize),
}

impl<'t> Cand<'t> {
    fn secret_str(&self) -> &'t str {
        &self.text[self.secret.0..self.secret.1]
    }
    fn before(&self) -> Option<char> {
        self.text[..self.secret.0].chars().next_back()
    }
    fn after(&self) -> Option<char> {
        self.text[self.secret.1..].chars().next()
    }
    /// The two characters after the secret, for "followed by `.5`"-style checks.
    fn after2(&self) -> (Option<char>, Option<char>) {
        let mut it = self.text[self.secret.1..].chars();
        (it.next(), it.next())
    }
    fn keep(&self) -> Option<(usize, usize)> {
        Some(self.secret)
    }
}

/// Accepts, rejects or narrows a candidate.
type Refine = fn(Cand) -> Option<(usize, usize)>;

enum Finder {
    Re(Regex),
    HighEntropy,
}

struct Rule {
    kind: Kind,
    finder: Finder,
    refine: Option<Refine>,
    /// Where the finder can match at all; `None` searches the whole text.
    gate: Option<Gate>,
}

pub struct Redactor {
    rules: Vec<Rule>,
    prefilter: Prefilter,
    placeholder: Regex,
}

impl Default for Redactor {
    fn default() -> Self {
        Redactor::new()
    }
}

impl Redactor {
    pub fn new() -> Redactor {
        let rules = rules::all();
        let prefilter = Prefilter::new(rules.iter().map(|r| r.gate).collect());
        Redactor {
            rules,
            prefilter,
            placeholder: Regex::new(r"\[REDACTED:[a-z0-9_]+\]")
                .expect("placeholder pattern is valid"),
        }
    }

    pub fn redact(&self, text: &str) -> Redacted {
        let mut spans = self.scan(text);
        // A placeholder changes what its neighbours see (`x+4420…` is an
        // expression, `]+4420…` a phone number), so rescan the output until
        // nothing new turns up: this is what makes `redact` idempotent.
        // Rescans only happen when something was found, and settle in one
        // or two rounds; the bound only guards against a pathological input.
        for _ in 0..8 {
            if spans.is_empty() {
                break;
            }
            let (out, _) = self.render(text, &spans);
            let extra = self.rescan(&out, &spans);
            if extra.is_empty() {
                break;
            }
            // New spans avoid placeholders, so each sits in unchanged original
            // text; shift it back by the growth of the placeholders before it.
            let mut merged = Vec::with_capacity(spans.len() + extra.len());
            let (mut i, mut shift) = (0usize, 0isize);
            let mut out_pos = 0usize; // end of the last placeholder, in `out`
            for (s, e, ri) in extra {
                while i < spans.len() {
                    let (ps, pe, pr) = spans[i];
                    let placeholder_start = (ps as isize + shift) as usize;
                    if placeholder_start >= s {
                        break;
                    }
                    let grown = self.placeholder_len(pr) as isize - (pe - ps) as isize;
                    shift += grown;
                    out_pos = (pe as isize + shift) as usize;
                    merged.push(spans[i]);
                    i += 1;
                }
                debug_assert!(s >= out_pos);
                merged.push((
                    (s as isize - shift) as usize,
                    (e as isize - shift) as usize,
                    ri,
                ));
            }
            merged.extend_from_slice(&spans[i..]);
            merged.sort_unstable();
            spans = merged;
        }
        let (text, findings) = self.render(text, &spans);
        Redacted { text, findings }
    }

    fn placeholder_len(&self, ri: usize) -> usize {
        "[REDACTED:]".len() + self.rules[ri].kind.as_str().len()
    }

    fn render(&self, text: &str, spans: &[(usize, usize, usize)]) -> (String, Vec<Finding>) {
        let mut out = String::with_capacity(text.len());
        let mut findings = Vec::with_capacity(spans.len());
        let mut pos = 0;
        for &(s, e, ri) in spans {
            out.push_str(&text[pos..s]);
            let kind = self.rules[ri].kind;
            out.push_str("[REDACTED:");
            out.push_str(kind.as_str());
            out.push(']');
            findings.push(Finding {
                kind,
                start: s,
                end: e,
            });
            pos = e;
        }
        out.push_str(&text[pos..]);
        (out, findings)
    }

    /// Every rule's candidates, settled into sorted, non-overlapping spans
    /// (start, end, rule index) that leave existing placeholders alone.
    fn scan(&self, text: &str) -> Vec<(usize, usize, usize)> {
        let mut found = Vec::new();
        self.candidates(text, 0, text.len(), true, &mut found);
        self.settle(text, found)
    }

    /// `scan` of `out`, the text with `spans` (of the original) replaced by
    /// placeholders, searching only where a placeholder can have changed
    /// the outcome: the lines holding one and the nearest non-blank line on
    /// either side (`card_ok` looks past blank lines for its neighbours).
    /// Every other line is a line of the original that had no finding, and
    /// every rule but `private_key` matches and decides within a line, so
    /// there it would find the same nothing again.
    fn rescan(&self, out: &str, spans: &[(usize, usize, usize)]) -> Vec<(usize, usize, usize)> {
        #[cfg(test)]
        if tests::EXHAUSTIVE.with(std::cell::Cell::get) {
            return self.scan(out);
        }
        let b = out.as_bytes();
        let line_start = |i: usize| memchr::memrchr(b'\n', &b[..i]).map_or(0, |p| p + 1);
        let line_end = |i: usize| memchr::memchr(b'\n', &b[i..]).map_or(b.len(), |p| i + p);
        let mut regions: Vec<(usize, usize)> = Vec::new();
        let mut shift = 0isize;
        for &(s, e, ri) in spans {
            let ps = (s as isize + shift) as usize;
            shift += self.placeholder_len(ri) as isize - (e - s) as isize;
            let pe = (e as isize + shift) as usize;
            let mut a = line_start(ps);
            if let Some(k) = b[..a].iter().rposition(|c| !c.is_ascii_whitespace()) {
                a = line_start(k);
            }
            let mut z = line_end(pe);
            if let Some(k) = b[z..].iter().position(|c| !c.is_ascii_whitespace()) {
                z = line_end(z + k);
            }
            match regions.last_mut() {
                Some(last) if a <= last.1 => last.1 = last.1.max(z),
                _ => regions.push((a, z)),
            }
        }
        let mut found = Vec::new();
        for &(a, z) in &regions {
            self.candidates(out, a, z, false, &mut found);
        }
        // Rules that match across lines search the whole text.
        for (ri, rule) in self.rules.iter().enumerate() {
            if let (Some(Gate::Anywhere(_)), Finder::Re(re)) = (&rule.gate, &rule.finder) {
                find_in(rule, ri, re, out, 0, out.len(), &mut found);
            }
        }
        self.settle(out, found)
    }

    /// Candidates of every rule within `text[a..z]`, a run of whole lines;
    /// with `!multiline`, rules that match across lines are left out.
    fn candidates(
        &self,
        text: &str,
        a: usize,
        z: usize,
        multiline: bool,
        found: &mut Vec<(usize, usize, usize)>,
    ) {
        let windows = self.prefilter.windows(&text[a..z]);
        #[cfg(test)]
        let windows = if tests::EXHAUSTIVE.with(std::cell::Cell::get) {
            vec![None; self.rules.len()]
        } else {
            windows
        };
        let whole = [(0, z - a)];
        for (ri, rule) in self.rules.iter().enumerate() {
            match &rule.finder {
                Finder::HighEntropy => {
                    let n = found.len();
                    entropy::high_entropy_candidates(&text[a..z], ri, found);
                    for f in &mut found[n..] {
                        f.0 += a;
                        f.1 += a;
                    }
                }
                Finder::Re(_) if !multiline && matches!(rule.gate, Some(Gate::Anywhere(_))) => {}
                Finder::Re(re) => {
                    let spans = windows[ri].as_deref().unwrap_or(&whole);
                    for &(x, y) in spans {
                        find_in(rule, ri, re, text, a + x, a + y, found);
                    }
                }
            }
        }
    }

    /// Settles candidates into sorted, non-overlapping spans that leave
    /// existing placeholders alone.
    fn settle(
        &self,
        text: &str,
        mut found: Vec<(usize, usize, usize)>,
    ) -> Vec<(usize, usize, usize)> {
        // Placeholders from an earlier pass are off limits, so they are never
        // re-wrapped or swallowed by a neighbouring match.
        let protected: Vec<(usize, usize)> = self
            .placeholder
            .find_iter(text)
            .map(|m| (m.start(), m.end()))
            .collect();
        found.retain(|&(s, e, _)| {
            // First protected span ending after `s`; overlap iff it starts before `e`.
            let i = protected.partition_point(|p| p.1 <= s);
            protected.get(i).is_none_or(|p| p.0 >= e)
        });
        // Earliest start wins, then the longest, then the rule listed first.
        found.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
        let mut pos = 0;
        found.retain(|&(s, e, _)| {
            let keep = s >= pos;
            if keep {
                pos = e;
            }
            keep
        });
        found
    }
}

/// One rule's regex over `text[a..b]` (a run of whole lines), offsets
/// relative to the whole text.
fn find_in(
    rule: &Rule,
    ri: usize,
    re: &Regex,
    text: &str,
    a: usize,
    b: usize,
    found: &mut Vec<(usize, usize, usize)>,
) {
    #[cfg(test)]
    tests::REGEX_BYTES.with(|n| n.set(n.get() + (b - a)));
    let hay = &text[a..b];
    if re.captures_len() > 1 {
        for caps in re.captures_iter(hay) {
            let whole = caps.get(0).expect("group 0 always participates");
            let Some(g) = caps.iter().skip(1).flatten().next() else {
                continue;
            };
            consider(
                rule,
                ri,
                text,
                (a + whole.start(), a + whole.end()),
                (a + g.start(), a + g.end()),
                found,
            );
        }
    } else {
        for m in re.find_iter(hay) {
            let span = (a + m.start(), a + m.end());
            consider(rule, ri, text, span, span, found);
        }
    }
}

fn consider(
    rule: &Rule,
    ri: usize,
    text: &str,
    whole: (usize, usize),
    secret: (usize, usize),
    found: &mut Vec<(usize, usize, usize)>,
) {
    let cand = Cand {
        text,
        whole,
        secret,
    };
    let span = match rule.refine {
        Some(f) => f(cand),
        None => Some(secret),
    };
    if let Some((s, e)) = span {
        if s < e {
            found.push((s, e, ri));
        }
    }
}

/// Redacts with a shared, lazily compiled `Redactor`.
pub fn redact(text: &str) -> String {
    static R: OnceLock<Redactor> = OnceLock::new();
    R.get_or_init(Redactor::new).redact(text).text
}

#[cfg(test)]
mod tests;
