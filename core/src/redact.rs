//! Scrubs secrets and personal data from text before it may leave a machine
//! (and again at the edge). Each match becomes a typed placeholder such as
//! `[REDACTED:aws_access_key]`, so a reader still sees what kind of thing was there.
//!
//! Provider formats are matched by their documented prefixes; generic secrets
//! by assignment syntax and by character statistics. Checksummed PII (cards,
//! IBANs) must pass its checksum, which keeps order numbers and ids readable.
//!
//! Every rule scans the whole text on its own and proposes candidate spans;
//! overlaps are then settled once (earliest start, then longest, then rule
//! order), so rules never see each other's placeholders and output is never
//! nested. Word boundaries are ASCII-only (`(?-u:\b)`): the Unicode form would
//! both miss a key glued to non-ASCII prose (`密钥AKIA…`) and force the regex
//! engine off its DFA whenever the text holds a non-ASCII byte.

use std::sync::OnceLock;

use regex::Regex;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub kind: &'static str,
    /// Byte range in the original text.
    pub start: usize,
    pub end: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redacted {
    pub text: String,
    pub findings: Vec<Finding>,
}

/// Every kind a [`Redactor`] can report, in tie-break order.
pub const KINDS: &[&str] = &[
    "private_key",
    "anthropic_api_key",
    "openai_api_key",
    "tally_token",
    "aws_access_key",
    "aws_secret_key",
    "github_token",
    "gitlab_token",
    "slack_webhook",
    "slack_token",
    "stripe_key",
    "google_api_key",
    "azure_storage_key",
    "npm_token",
    "pypi_token",
    "jwt",
    "url_credentials",
    "email",
    "iban",
    "credit_card",
    "us_ssn",
    "phone",
    "ipv6",
    "ipv4",
    "password_assignment",
    "high_entropy",
];

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
    kind: &'static str,
    finder: Finder,
    refine: Option<Refine>,
}

pub struct Redactor {
    rules: Vec<Rule>,
    placeholder: Regex,
}

impl Default for Redactor {
    fn default() -> Self {
        Redactor::new()
    }
}

/// ASCII word boundary; see the module comment for why not Unicode.
const B: &str = r"(?-u:\b)";

fn is_b64(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '+' || c == '/'
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

fn not_followed_by_token(c: Cand) -> Option<(usize, usize)> {
    if c.after().is_some_and(is_token_char) {
        return None;
    }
    c.keep()
}

fn openai_ok(c: Cand) -> Option<(usize, usize)> {
    // Kebab-case identifiers such as `sk-learn-model-selection-helpers` share
    // the prefix; generated keys always carry digits or capitals.
    let body = &c.secret_str()[3..];
    if body.starts_with("ant-") {
        return None;
    }
    if !body
        .bytes()
        .any(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
    {
        return None;
    }
    c.keep()
}

fn aws_secret_ok(c: Cand) -> Option<(usize, usize)> {
    if c.after().is_some_and(|ch| is_b64(ch) || ch == '=') {
        return None;
    }
    c.keep()
}

fn email_ok(c: Cand) -> Option<(usize, usize)> {
    let s = c.secret_str();
    let (local, domain) = s.split_once('@')?;
    // `git@github.com` names a service account, and retina assets
    // (`icon@2x.png`) borrow the syntax; neither identifies a person.
    if local == "git" || local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return None;
    }
    let tld = domain.rsplit('.').next()?.to_ascii_lowercase();
    if matches!(
        tld.as_str(),
        "png" | "jpg" | "jpeg" | "gif" | "svg" | "webp" | "ico" | "bmp"
    ) {
        return None;
    }
    c.keep()
}

/// Payment-card number: issuer prefix, length, grouping and Luhn must all agree.
fn card_ok(c: Cand) -> Option<(usize, usize)> {
    let s = c.secret_str();
    if matches!(c.before(), Some('.' | '-' | '+' | '_'))
        || matches!(c.after2(), (Some('.' | '-' | ','), Some('0'..='9')))
    {
        return None;
    }
    let sep = s.bytes().find(|b| !b.is_ascii_digit());
    if let Some(sep) = sep {
        // Real cards are printed in fixed groups with one kind of separator;
        // `1 2 3 4 5 …` or mixed `12-34 5678…` runs are tables, not cards.
        let groups: Vec<usize> = s.split(sep as char).map(str::len).collect();
        if s.bytes().any(|b| !b.is_ascii_digit() && b != sep) {
            return None;
        }
        let fours = groups.len() >= 3
            && groups[..groups.len() - 1].iter().all(|&g| g == 4)
            && (1..=4).contains(groups.last()?);
        let amex = groups == [4, 6, 5] || groups == [4, 6, 4];
        if !fours && !amex {
            return None;
        }
    }
    let d: Vec<u32> = s.chars().filter_map(|ch| ch.to_digit(10)).collect();
    let n = d.len();
    let p2 = d[0] * 10 + d[1];
    let p4 = p2 * 100 + d[2] * 10 + d[3];
    let brand = match d[0] {
        4 => matches!(n, 13 | 16 | 19),
        5 => (51..=55).contains(&p2) && n == 16,
        2 => (2221..=2720).contains(&p4) && n == 16,
        3 => {
            (matches!(p2, 34 | 37) && n == 15)
                || (p2 == 36 && n == 14)
                || (matches!(p2, 30 | 38 | 39) && (14..=16).contains(&n))
                || ((3528..=3589).contains(&p4) && (16..=19).contains(&n))
        }
        6 => (16..=19).contains(&n) && (p4 == 6011 || matches!(p2, 62 | 64 | 65)),
        _ => false,
    };
    if !brand || d.iter().all(|&x| x == d[0]) {
        return None;
    }
    let sum: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &x)| match (i % 2, x * 2) {
            (0, _) => x,
            (_, y) if y > 9 => y - 9,
            (_, y) => y,
        })
        .sum();
    (sum % 10 == 0).then_some(c.secret)
}

/// ISO 13616 lengths; knowing the exact length lets a spaced IBAN that runs
/// into a following word (`… 7034 AND`) be cut where it really ends.
fn iban_len(cc: &str) -> Option<usize> {
    Some(match cc {
        "NO" => 15,
        "BE" => 16,
        "DK" | "FI" | "FO" | "GL" | "NL" => 18,
        "MK" | "SI" => 19,
        "AT" | "BA" | "EE" | "KZ" | "LT" | "LU" | "XK" => 20,
        "CH" | "HR" | "LI" | "LV" => 21,
        "BG" | "BH" | "CR" | "DE" | "GB" | "GE" | "IE" | "ME" | "RS" | "VA" => 22,
        "AE" | "GI" | "IL" | "IQ" | "TL" => 23,
        "AD" | "CZ" | "ES" | "MD" | "PK" | "RO" | "SA" | "SE" | "SK" | "TN" | "VG" => 24,
        "LY" | "PT" | "ST" => 25,
        "IS" | "TR" => 26,
        "FR" | "GR" | "IT" | "MC" | "MR" | "SM" => 27,
        "AL" | "AZ" | "BY" | "CY" | "DO" | "GT" | "HU" | "LB" | "PL" | "SV" => 28,
        "BR" | "EG" | "PS" | "QA" | "UA" => 29,
        "JO" | "KW" | "MU" => 30,
        "MT" | "SC" => 31,
        "LC" => 32,
        _ => return None,
    })
}

fn iban_refine(c: Cand) -> Option<(usize, usize)> {
    let s = c.secret_str();
    let want = iban_len(&s[..2])?;
    // Walk the spaced form until `want` characters, so the span ends exactly there.
    let mut compact = Vec::with_capacity(want);
    let mut end = 0;
    for (i, b) in s.bytes().enumerate() {
        if b == b' ' {
            continue;
        }
        compact.push(b);
        if compact.len() == want {
            end = i + 1;
            break;
        }
    }
    if compact.len() != want || s[end..].starts_with(|ch: char| ch.is_ascii_alphanumeric()) {
        return None;
    }
    let mut rem: u32 = 0;
    for &b in compact[4..].iter().chain(&compact[..4]) {
        let v = match b {
            b'0'..=b'9' => u32::from(b - b'0'),
            b'A'..=b'Z' => u32::from(b - b'A') + 10,
            _ => return None,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    (rem == 1).then_some((c.secret.0, c.secret.0 + end))
}

fn ssn_ok(c: Cand) -> Option<(usize, usize)> {
    let s = c.secret_str();
    if matches!(c.before(), Some('-' | '.' | '/' | '+'))
        || matches!(c.after2(), (Some('-' | '.' | '/'), Some('0'..='9')))
    {
        return None;
    }
    let (area, rest) = s.split_once('-')?;
    let (group, serial) = rest.split_once('-')?;
    let valid = area != "000"
        && area != "666"
        && !area.starts_with('9')
        && group != "00"
        && serial != "0000";
    valid.then_some(c.secret)
}

fn phone_ok(c: Cand) -> Option<(usize, usize)> {
    let s = c.secret_str();
    let before = c.before();
    if before.is_some_and(|ch| {
        ch.is_ascii_alphanumeric() || matches!(ch, '.' | '-' | '/' | '_' | ':' | '+')
    }) {
        return None;
    }
    if matches!(
        c.after2(),
        (Some('.' | '-' | '/' | ':' | ','), Some('0'..='9'))
    ) {
        return None;
    }
    let digits = s.bytes().filter(u8::is_ascii_digit).count();
    if let Some(rest) = s.strip_prefix('+') {
        // `+1.23456789` is a signed float and `+2024-01-15` an ISO date, not numbers to dial.
        let seps: Vec<u8> = rest.bytes().filter(|b| !b.is_ascii_digit()).collect();
        if seps == [b'.']
            || (rest.len() >= 10 && rest.as_bytes()[4] == b'-' && rest.as_bytes()[7] == b'-')
        {
            return None;
        }
        return (8..=15).contains(&digits).then_some(c.secret);
    }
    (10..=12).contains(&digits).then_some(c.secret)
}

fn ipv4_ok(c: Cand) -> Option<(usize, usize)> {
    let s = c.secret_str();
    // Part of a longer dotted run (OIDs, `1.2.3.4.5`) or a `v`-prefixed version.
    if matches!(c.before(), Some('.' | 'v' | 'V' | '-' | '_'))
        || matches!(c.after2(), (Some('.'), Some('0'..='9')))
    {
        return None;
    }
    let o: Vec<u8> = s.split('.').filter_map(|p| p.parse().ok()).collect();
    if o.len() != 4 {
        return None;
    }
    // Loopback, unspecified, broadcast and netmasks identify nobody, and
    // all-single-digit quads (`1.2.3.4`) are versions and section numbers far
    // more often than hosts. Private ranges (10/8, 192.168/16) are still
    // redacted: they map an employer's network.
    let mask = |x: u8| x.leading_ones() + x.trailing_zeros() == 8;
    if o[0] == 127
        || o[0] == 0
        || o == [255, 255, 255, 255]
        || (o[0] == 255 && o.iter().all(|&x| mask(x)))
        || s.split('.').all(|p| p.len() == 1)
    {
        return None;
    }
    c.keep()
}

fn ipv6_ok(c: Cand) -> Option<(usize, usize)> {
    let s = c.secret_str();
    if c.before()
        .is_some_and(|ch| ch.is_ascii_alphanumeric() || ch == ':' || ch == '.')
        || c.after()
            .is_some_and(|ch| ch.is_ascii_alphanumeric() || ch == ':')
    {
        return None;
    }
    let a: std::net::Ipv6Addr = s.parse().ok()?;
    // Rust paths (`a::b`), times and MACs can parse or half-parse; a real
    // address has at least three groups and some digit.
    if a.is_loopback()
        || a.is_unspecified()
        || s.split(':').filter(|g| !g.is_empty()).count() < 3
        || !s.bytes().any(|b| b.is_ascii_digit())
    {
        return None;
    }
    c.keep()
}

/// Values after `password=`-style keys that are clearly not secrets.
fn assignment_refine(c: Cand) -> Option<(usize, usize)> {
    let text = c.text;
    // `bypass = 1`, `compass: 270`: only a standalone `pass` is a key.
    let key = &text[c.whole.0..];
    if (key.starts_with("pass") || key.starts_with("PASS") || key.starts_with("Pass"))
        && !key[4..].starts_with(|ch: char| matches!(ch, 'w' | 'W' | 'p' | 'P'))
        && text[..c.whole.0]
            .chars()
            .next_back()
            .is_some_and(|ch| ch.is_ascii_alphabetic())
    {
        return None;
    }
    let quoted = c.secret.0 > 0 && matches!(text.as_bytes()[c.secret.0 - 1], b'"' | b'\'');
    let (s0, mut s1) = c.secret;
    let mut v = &text[s0..s1];
    // Sentence punctuation and the backslash of an escaped JSON quote are not part of it.
    while let Some(t) = v
        .strip_suffix('.')
        .or_else(|| v.strip_suffix(':'))
        .or_else(|| v.strip_suffix('\\'))
        .or_else(|| v.strip_suffix('!'))
    {
        v = t;
        s1 -= 1;
    }
    if v.len() < 4 || v.starts_with("[REDACTED") {
        return None;
    }
    let first = v.chars().next()?;
    // References and templates (`$DB_PASSWORD`, `${x}`, `{{ .Values }}`,
    // `<your token>`, `%s`) and masks (`****`) name or hide a secret, not carry it.
    if matches!(first, '$' | '{' | '<' | '%' | '&' | '[' | '(' | '#')
        || v.chars().all(|ch| ch == first)
        || v.contains("::")
        || v.ends_with('(')
    {
        return None;
    }
    let lower = v.to_ascii_lowercase();
    if matches!(
        lower.as_str(),
        "none"
            | "null"
            | "true"
            | "false"
            | "string"
            | "undefined"
            | "required"
            | "optional"
            | "redacted"
            | "hidden"
            | "secret"
            | "password"
            | "token"
            | "example"
            | "changeit_"
    ) || lower.starts_with("your")
        || lower.starts_with("xxxx")
    {
        return None;
    }
    let has_digit = v.bytes().any(|b| b.is_ascii_digit());
    let has_symbol = v
        .bytes()
        .any(|b| !b.is_ascii_alphanumeric() && !b"_.:/-".contains(&b));
    if quoted {
        // A quoted literal after a secret-named key is the secret, unless it
        // reads as prose or names an environment variable (`"API_KEY"`).
        if v.contains(char::is_whitespace)
            || (v.contains('_')
                && v.bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'))
        {
            return None;
        }
    } else {
        // Unquoted, `token = self.token` or `password: String` is code; real
        // values carry digits or symbols. Small integers are counts (`token = 42`).
        if !(has_digit || has_symbol) {
            return None;
        }
        if v.bytes().all(|b| b.is_ascii_digit()) && v.len() < 6 {
            return None;
        }
        if v.ends_with('!') || v.contains("![") || v.contains("()") {
            return None;
        }
    }
    Some((s0, s1))
}

fn bearer_ok(c: Cand) -> Option<(usize, usize)> {
    let v = c.secret_str();
    if v.starts_with("[REDACTED") || !v.bytes().any(|b| b.is_ascii_digit()) {
        return None;
    }
    c.keep()
}

fn shannon_bits(s: &[u8]) -> f64 {
    let mut counts = [0u32; 256];
    for &b in s {
        counts[b as usize] += 1;
    }
    let n = s.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

/// Number of word-like chunks (`Http`, `http`, `HTTP`, `2`), as `[A-Z][a-z]+|[a-z]+|[A-Z]+|[0-9]+` splits them.
fn chunks(s: &[u8]) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < s.len() {
        let b = s[i];
        if !b.is_ascii_alphanumeric() {
            i += 1;
            continue;
        }
        n += 1;
        let same: fn(&u8) -> bool = if b.is_ascii_digit() {
            u8::is_ascii_digit
        } else if b.is_ascii_lowercase() || (i + 1 < s.len() && s[i + 1].is_ascii_lowercase()) {
            if b.is_ascii_uppercase() {
                i += 1;
            }
            u8::is_ascii_lowercase
        } else {
            u8::is_ascii_uppercase
        };
        i += 1;
        while i < s.len() && same(&s[i]) {
            i += 1;
        }
    }
    n
}

/// Generic secret detector for a maximal run of `[A-Za-z0-9+/_-]` (plus `=` padding).
///
/// Calibrated on random base62/base64/base64url strings (what key generators
/// emit) against every long token in the Rust sources of the cargo registry:
/// - Pure hex (git SHAs, sha256 digests, UUIDs) is never flagged: transcripts
///   are full of commit ids and lockfile checksums, and hex secrets assigned
///   to a name are caught by `password_assignment` instead.
/// - Both cases, a digit, and entropy ≥ 0.75·log2(len) bits/char: random
///   base62 of 32 chars averages 4.5 bits (threshold 3.75) while identifiers
///   and `UPPER_SNAKE` constants lack a case or a digit.
/// - CamelCase and snake_case identifiers with digits (`PciExpressV2Link…`,
///   `aws_lc_0_41_0_X509_…`) are told apart by structure: few long word
///   chunks, or many short `_`/`-` segments. Random text splits into a new
///   chunk every ~2 chars. These two cuts cost under 1% recall at 32 chars
///   and ~0.1% at 40+ (measured).
/// - Path words at either end (`com/bucket/<key>`) are trimmed off so a
///   capability token in a URL is hidden without eating the readable path.
fn high_entropy_span(text: &str, s: usize, e: usize) -> Option<(usize, usize)> {
    const MIN: usize = 32;
    let (mut a, mut b) = (s, e);
    let bytes = text.as_bytes();
    if text[a..b].contains('/') {
        let plain = |seg: &[u8]| !seg.iter().any(u8::is_ascii_uppercase);
        loop {
            let run = &bytes[a..b];
            let Some(i) = run.iter().position(|&c| c == b'/') else {
                break;
            };
            if !plain(&run[..i]) || b - (a + i + 1) < MIN {
                break;
            }
            a += i + 1;
        }
        loop {
            let run = &bytes[a..b];
            let Some(i) = run.iter().rposition(|&c| c == b'/') else {
                break;
            };
            if !plain(&run[i + 1..]) || i < MIN {
                break;
            }
            b = a + i;
        }
    }
    let full = &bytes[a..b];
    let core = {
        let mut k = full.len();
        while k > 0 && full[k - 1] == b'=' {
            k -= 1;
        }
        &full[..k]
    };
    let n = core.len();
    if n < MIN {
        return None;
    }
    let (mut up, mut low, mut dig, mut hex) = (0usize, 0usize, 0usize, true);
    for &c in core {
        up += usize::from(c.is_ascii_uppercase());
        low += usize::from(c.is_ascii_lowercase());
        dig += usize::from(c.is_ascii_digit());
        hex &= c.is_ascii_hexdigit() || c == b'-';
    }
    if hex || up < 2 || low < 2 || dig < 1 {
        return None;
    }
    let len_bits = (n.min(128) as f64).log2();
    if shannon_bits(core) < 0.75 * len_bits {
        return None;
    }
    if (chunks(core) as f64) < 0.3 * (up + low + dig) as f64 {
        return None;
    }
    let segments = core.split(|&c| c == b'_' || c == b'-').count();
    if segments >= 4 && (n as f64) / (segments as f64) <= 6.0 {
        return None;
    }
    Some((a, b))
}

fn high_entropy_candidates(text: &str, ri: usize, out: &mut Vec<(usize, usize, usize)>) {
    let bytes = text.as_bytes();
    let is_run = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'_' | b'-');
    let mut i = 0;
    while i < bytes.len() {
        if !is_run(bytes[i]) {
            i += 1;
            continue;
        }
        let s = i;
        while i < bytes.len() && is_run(bytes[i]) {
            i += 1;
        }
        let mut e = i;
        while e < bytes.len() && e - i < 2 && bytes[e] == b'=' {
            e += 1;
        }
        if i - s >= 32 {
            if let Some((a, b)) = high_entropy_span(text, s, e) {
                out.push((a, b, ri));
            }
        }
        i = e;
    }
}

impl Redactor {
    pub fn new() -> Redactor {
        let re = |p: &str| Regex::new(p).expect("redaction patterns are valid");
        let rx = |kind: &'static str, p: String, refine: Option<Refine>| Rule {
            kind,
            finder: Finder::Re(re(&p)),
            refine,
        };
        // Characters a password may contain unquoted: stops at whitespace,
        // quotes, and the punctuation that closes code or a URL query.
        let unquoted = r#"[^\s"'`,;&()\[\]{}<>]{1,512}"#;
        let keyword = r"(?i-u:secret[_-]?access[_-]?key|(?:api|access|auth|secret|private|signing|encryption|master|client)[_-]?key|apikey|client[_-]?secret|secret|passw(?:or)?d|passphrase|pass|pwd|(?:auth|access|refresh|session|bearer|api|id)?[_-]?token|credentials?)";
        let rules = vec![
            rx(
                "private_key",
                r"-----BEGIN[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----(?:[A-Za-z0-9+/=\s\\:,.-]*?-----END[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----|[A-Za-z0-9+/=\s\\:,.-]*)"
                    .into(),
                None,
            ),
            rx(
                "anthropic_api_key",
                format!(r"{B}sk-ant-[A-Za-z0-9_-]{{20,}}"),
                None,
            ),
            rx(
                "openai_api_key",
                format!(r"{B}sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{{20,}}"),
                Some(openai_ok),
            ),
            rx(
                "tally_token",
                format!(r"{B}tly_(?:inst|agent|signin)_[A-Za-z0-9_-]{{16,}}"),
                None,
            ),
            rx(
                "aws_access_key",
                format!(r"{B}(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{{16}}{B}"),
                None,
            ),
            rx(
                "aws_secret_key",
                r#"(?i-u:secret[_-]?(?:access[_-]?)?key)\\?["']?[ \t]*(?:=>|:=|[:=])[ \t]*\\?["']?([A-Za-z0-9/+]{40})"#
                    .into(),
                Some(aws_secret_ok),
            ),
            rx(
                "github_token",
                format!(r"{B}(?:gh[pousr]_[A-Za-z0-9]{{36,255}}|github_pat_[A-Za-z0-9_]{{22,255}}){B}"),
                None,
            ),
            rx(
                "gitlab_token",
                format!(r"{B}gl(?:pat|dt|rt|ptt)-[A-Za-z0-9_-]{{20,}}"),
                None,
            ),
            rx(
                "slack_webhook",
                r"(?:https?://)?hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_-]{8,}"
                    .into(),
                None,
            ),
            rx(
                "slack_token",
                format!(r"{B}(?:xox[abposre]|xapp)-[A-Za-z0-9-]{{10,}}"),
                None,
            ),
            rx(
                "stripe_key",
                format!(r"{B}(?:(?:sk|rk)_(?:live|test)|whsec)_[A-Za-z0-9]{{16,}}"),
                None,
            ),
            rx(
                "google_api_key",
                format!(r"{B}AIza[0-9A-Za-z_-]{{35}}"),
                Some(not_followed_by_token),
            ),
            rx(
                "azure_storage_key",
                r#"(?i-u:accountkey)[ \t]*[=:][ \t]*["']?([A-Za-z0-9+/]{86}==)"#.into(),
                None,
            ),
            rx("npm_token", format!(r"{B}npm_[A-Za-z0-9]{{36}}{B}"), None),
            rx(
                "pypi_token",
                format!(r"{B}pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{{50,}}"),
                None,
            ),
            rx(
                "jwt",
                format!(r"{B}eyJ[A-Za-z0-9_-]{{5,}}\.[A-Za-z0-9_-]{{5,}}(?:\.[A-Za-z0-9_-]+)?"),
                None,
            ),
            rx(
                "url_credentials",
                // The password may itself contain `@`; greedy matching ends the
                // userinfo at the last `@` before the host.
                format!(r#"{B}[A-Za-z][A-Za-z0-9+.-]{{1,20}}://([^\s:/?#@\[\]"'<>]*:[^\s/?#\[\]"'<>]+)@"#),
                None,
            ),
            rx(
                "email",
                format!(r"{B}[A-Za-z0-9._%+-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{{0,61}}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{{0,61}}[A-Za-z0-9])?)*\.[A-Za-z]{{2,24}}{B}"),
                Some(email_ok),
            ),
            rx(
                "iban",
                format!(r"{B}[A-Z]{{2}}[0-9]{{2}}(?: ?[A-Z0-9]{{4}}){{2,7}}(?: ?[A-Z0-9]{{1,3}})?{B}"),
                Some(iban_refine),
            ),
            rx(
                "credit_card",
                format!(r"{B}[0-9](?:[ -]?[0-9]){{12,18}}{B}"),
                Some(card_ok),
            ),
            rx(
                "us_ssn",
                format!(r"{B}[0-9]{{3}}-[0-9]{{2}}-[0-9]{{4}}{B}"),
                Some(ssn_ok),
            ),
            rx(
                "phone",
                format!(
                    r"(?:\+[1-9][0-9]{{0,2}}(?:[ .-]?\([0-9]{{1,4}}\))?(?:[ .-]?[0-9]{{1,5}}){{1,6}}|{B}(?:1[ .-])?(?:\([2-9][0-9]{{2}}\) ?|[2-9][0-9]{{2}}[ .-])[2-9][0-9]{{2}}[ .-][0-9]{{4}}|{B}0[1-9][0-9]{{1,4}}[ /-][0-9]{{3,8}}(?:[ -][0-9]{{2,4}}){{0,3}}){B}"
                ),
                Some(phone_ok),
            ),
            rx(
                "ipv6",
                r"(?:[0-9A-Fa-f]{0,4}:){2,7}(?:(?:[0-9]{1,3}\.){3}[0-9]{1,3}|[0-9A-Fa-f]{1,4})".into(),
                Some(ipv6_ok),
            ),
            rx(
                "ipv4",
                format!(r"{B}(?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{{2}}|[1-9]?[0-9])\.){{3}}(?:25[0-5]|2[0-4][0-9]|1[0-9]{{2}}|[1-9]?[0-9]){B}"),
                Some(ipv4_ok),
            ),
            rx(
                "password_assignment",
                // The key must end right at the separator, so `max_tokens = 4096`
                // and `token_count: 12` are not keys.
                format!(
                    r#"{keyword}\\?["']?[ \t]*(?:=>|:=|[:=])[ \t]*(?:\\?"([^"\r\n]{{1,512}}?)\\?"|\\?'([^'\r\n]{{1,512}}?)\\?'|({unquoted}))"#
                ),
                Some(assignment_refine),
            ),
            rx(
                "password_assignment",
                r#"(?:(?i-u:authorization)\\?["']?[ \t]*[:=][ \t]*\\?["']?(?i-u:bearer|basic|token|digest)|(?i-u:bearer))[ \t]+([A-Za-z0-9._~+/-]{16,}=*)"#
                    .into(),
                Some(bearer_ok),
            ),
            Rule {
                kind: "high_entropy",
                finder: Finder::HighEntropy,
                refine: None,
            },
        ];
        Redactor {
            rules,
            placeholder: re(r"\[REDACTED:[a-z0-9_]+\]"),
        }
    }

    pub fn redact(&self, text: &str) -> Redacted {
        // Placeholders from an earlier pass are off limits, which makes
        // redaction idempotent and keeps them from being re-wrapped.
        let protected: Vec<(usize, usize)> = self
            .placeholder
            .find_iter(text)
            .map(|m| (m.start(), m.end()))
            .collect();
        let mut found: Vec<(usize, usize, usize)> = Vec::new(); // start, end, rule index
        for (ri, rule) in self.rules.iter().enumerate() {
            match &rule.finder {
                Finder::HighEntropy => high_entropy_candidates(text, ri, &mut found),
                Finder::Re(re) if re.captures_len() > 1 => {
                    for caps in re.captures_iter(text) {
                        let whole = caps.get(0).expect("group 0 always participates");
                        let Some(g) = caps.iter().skip(1).flatten().next() else {
                            continue;
                        };
                        self.consider(
                            rule,
                            ri,
                            text,
                            (whole.start(), whole.end()),
                            (g.start(), g.end()),
                            &mut found,
                        );
                    }
                }
                Finder::Re(re) => {
                    for m in re.find_iter(text) {
                        let span = (m.start(), m.end());
                        self.consider(rule, ri, text, span, span, &mut found);
                    }
                }
            }
        }
        found.retain(|&(s, e, _)| {
            // First protected span ending after `s`; overlap iff it starts before `e`.
            let i = protected.partition_point(|p| p.1 <= s);
            protected.get(i).is_none_or(|p| p.0 >= e)
        });
        // Earliest start wins, then the longest, then the rule listed first.
        found.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
        let mut out = String::with_capacity(text.len());
        let mut findings = Vec::new();
        let mut pos = 0;
        for (s, e, ri) in found {
            if s < pos {
                continue;
            }
            out.push_str(&text[pos..s]);
            let kind = self.rules[ri].kind;
            out.push_str("[REDACTED:");
            out.push_str(kind);
            out.push(']');
            findings.push(Finding {
                kind,
                start: s,
                end: e,
            });
            pos = e;
        }
        out.push_str(&text[pos..]);
        Redacted {
            text: out,
            findings,
        }
    }

    fn consider(
        &self,
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
}

/// Redacts with a shared, lazily compiled `Redactor`.
pub fn redact(text: &str) -> String {
    static R: OnceLock<Redactor> = OnceLock::new();
    R.get_or_init(Redactor::new).redact(text).text
}

/// Labelled synthetic secrets and the recall / false-positive measurements
/// built on them; shared by `tests/redact_corpus.rs` and benchmarks. Pure
/// functions of a seed: no I/O, so it lives in the platform-free crate.
#[doc(hidden)]
pub mod corpus {
    use super::{Redactor, KINDS};

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
        pub kind: &'static str,
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
            out.push_str(*rng.pick(WORDS));
            out.push(if rng.below(8) == 0 { '\n' } else { ' ' });
        }
    }

    fn luhn_complete(prefix: &str, len: usize, rng: &mut Rng) -> String {
        let mut s = prefix.to_string();
        s.push_str(&rng.digits(len - prefix.len() - 1));
        let d: Vec<u32> = s.chars().map(|c| c.to_digit(10).unwrap_or(0)).collect();
        let sum: u32 = d
            .iter()
            .rev()
            .enumerate()
            .map(|(i, &x)| match (i % 2, x * 2) {
                (1, _) => x,
                (_, y) if y > 9 => y - 9,
                (_, y) => y,
            })
            .sum();
        s.push(char::from_digit((10 - sum % 10) % 10, 10).unwrap_or('0'));
        s
    }

    fn group(s: &str, sizes: &[usize], sep: &str) -> String {
        let mut out = Vec::new();
        let mut i = 0;
        for &n in sizes {
            if i >= s.len() {
                break;
            }
            let j = (i + n).min(s.len());
            out.push(&s[i..j]);
            i = j;
        }
        if i < s.len() {
            out.push(&s[i..]);
        }
        out.join(sep)
    }

    fn iban(rng: &mut Rng) -> String {
        let (cc, bban) = match rng.below(8) {
            0 => ("DE", rng.digits(18)),
            1 => ("FR", rng.digits(23)),
            2 => (
                "GB",
                format!(
                    "{}{}",
                    rng.chars("ABCDEFGHIJKLMNOPQRSTUVWXYZ", 4),
                    rng.digits(14)
                ),
            ),
            3 => (
                "NL",
                format!(
                    "{}{}",
                    rng.chars("ABCDEFGHIJKLMNOPQRSTUVWXYZ", 4),
                    rng.digits(10)
                ),
            ),
            4 => ("ES", rng.digits(20)),
            5 => (
                "IT",
                format!(
                    "{}{}",
                    rng.chars("ABCDEFGHIJKLMNOPQRSTUVWXYZ", 1),
                    rng.digits(22)
                ),
            ),
            6 => ("BE", rng.digits(12)),
            _ => ("CH", rng.digits(17)),
        };
        let mut rem = 0u32;
        for ch in bban.chars().chain(cc.chars()).chain("00".chars()) {
            let v = ch.to_digit(36).unwrap_or(0);
            rem = if v >= 10 {
                (rem * 100 + v) % 97
            } else {
                (rem * 10 + v) % 97
            };
        }
        let compact = format!("{cc}{:02}{bban}", 98 - rem);
        if rng.below(2) == 0 {
            compact
        } else {
            group(&compact, &[4; 8], " ")
        }
    }

    fn nanp(rng: &mut Rng) -> (String, String, String) {
        (
            format!("{}{}", rng.range(2, 9), rng.digits(2)),
            format!("{}{}", rng.range(2, 9), rng.digits(2)),
            rng.digits(4),
        )
    }

    fn phone(rng: &mut Rng) -> String {
        let (a, b, c) = nanp(rng);
        let d = |rng: &mut Rng, n| rng.digits(n);
        match rng.below(16) {
            0 => format!("+1 {a} {b} {c}"),
            1 => format!("+1-{a}-{b}-{c}"),
            2 => format!("({a}) {b}-{c}"),
            3 => format!("{a}-{b}-{c}"),
            4 => format!("{a}.{b}.{c}"),
            5 => format!("+1{a}{b}{c}"),
            6 => format!("+44 20 {} {}", d(rng, 4), d(rng, 4)),
            7 => format!("+44 7{} {}", d(rng, 3), d(rng, 6)),
            8 => format!("+49 30 {}", d(rng, 8)),
            9 => format!("+49 1{} {}", d(rng, 2), d(rng, 7)),
            10 => format!(
                "+33 {} {} {} {} {}",
                rng.range(1, 7),
                d(rng, 2),
                d(rng, 2),
                d(rng, 2),
                d(rng, 2)
            ),
            11 => format!("+34 6{} {} {}", d(rng, 2), d(rng, 3), d(rng, 3)),
            12 => format!("+91 9{} {}", d(rng, 4), d(rng, 5)),
            13 => format!("+81 3-{}-{}", d(rng, 4), d(rng, 4)),
            14 => format!("020 {} {}", d(rng, 4), d(rng, 4)),
            _ => format!("030 {}", d(rng, 8)),
        }
    }

    fn ipv4(rng: &mut Rng) -> String {
        let (x, y, z) = (rng.below(256), rng.below(256), rng.range(1, 254));
        // Private ranges are as common in prompts as public ones.
        match rng.below(4) {
            0 => format!("10.{x}.{y}.{z}"),
            1 => format!("172.{}.{y}.{z}", rng.range(16, 31)),
            2 => format!("192.168.{y}.{z}"),
            _ => {
                // Any unicast first octet except loopback.
                let a = rng.range(1, 222);
                format!("{}.{x}.{y}.{z}", a + usize::from(a >= 127))
            }
        }
    }

    fn ipv6(rng: &mut Rng) -> String {
        let g: Vec<String> = (0..8)
            .map(|_| format!("{:x}", rng.below(0x10000)))
            .collect();
        match rng.below(3) {
            0 => g.join(":"),
            1 => format!("2001:db8:{}::{}", g[2], g[7]),
            _ => format!("fe80::{}:{}:{}:{}", g[4], g[5], g[6], g[7]),
        }
    }

    fn ssn(rng: &mut Rng) -> String {
        loop {
            let area = rng.range(1, 899);
            if area == 666 {
                continue;
            }
            return format!(
                "{area:03}-{:02}-{:04}",
                rng.range(1, 99),
                rng.range(1, 9999)
            );
        }
    }

    fn card(rng: &mut Rng) -> String {
        let (prefix, len) = *rng.pick(&[
            ("4", 16),
            ("4", 16),
            ("4", 13),
            ("51", 16),
            ("55", 16),
            ("2221", 16),
            ("34", 15),
            ("37", 15),
            ("6011", 16),
            ("65", 16),
            ("3530", 16),
            ("36", 14),
            ("62", 19),
        ]);
        let n = luhn_complete(prefix, len, rng);
        match (rng.below(3), len) {
            (0, _) => n,
            (_, 15) => group(&n, &[4, 6, 5], if rng.below(2) == 0 { " " } else { "-" }),
            (k, _) => group(&n, &[4; 5], if k == 1 { " " } else { "-" }),
        }
    }

    fn password(rng: &mut Rng) -> String {
        match rng.below(3) {
            0 => {
                let mut p = rng.chars("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", 1);
                p.push_str(&rng.chars_in(
                    "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789!@#%^*_-+=~",
                    9,
                    23,
                ));
                p
            }
            1 => format!(
                "{}{}{}{}",
                rng.pick(&[
                    "Summer",
                    "hunter",
                    "Tr0ub4dor",
                    "correct",
                    "Welcome",
                    "dragon"
                ]),
                rng.pick(&["!", "-", "_", "#", "", "@"]),
                rng.chars_in(DIGITS, 2, 4),
                rng.pick(&["", "!", "x", "$$"]),
            ),
            _ => rng.chars_in(B62, 16, 40),
        }
    }

    fn pem(rng: &mut Rng) -> String {
        let label = *rng.pick(&[
            "RSA PRIVATE KEY",
            "PRIVATE KEY",
            "EC PRIVATE KEY",
            "OPENSSH PRIVATE KEY",
            "ENCRYPTED PRIVATE KEY",
        ]);
        let nl = if rng.below(4) == 0 { "\\n" } else { "\n" };
        let body = base64(&rng.bytes_in(90, 1200), B64, true);
        let mut s = format!("-----BEGIN {label}-----{nl}");
        for line in body.as_bytes().chunks(64) {
            s.push_str(std::str::from_utf8(line).unwrap_or(""));
            s.push_str(nl);
        }
        s.push_str(&format!("-----END {label}-----"));
        s
    }

    fn jwt(rng: &mut Rng) -> String {
        let alg = *rng.pick(&["HS256", "RS256", "ES256"]);
        let header = format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#);
        let payload = format!(
            r#"{{"sub":"{}","name":"{}","iat":{},"exp":{}}}"#,
            rng.digits(8),
            rng.pick(&["Jane Doe", "build-bot", "Åsa Öberg"]),
            rng.range(1_600_000_000, 1_800_000_000),
            rng.range(1_600_000_000, 1_800_000_000),
        );
        format!(
            "{}.{}.{}",
            base64(header.as_bytes(), B64URL, false),
            base64(payload.as_bytes(), B64URL, false),
            base64(&rng.bytes(32), B64URL, false)
        )
    }

    /// Returns (text before, secret, text after) for one value of `kind`.
    pub fn plant(kind: &str, rng: &mut Rng) -> (String, String, String) {
        let s = |x: &str| x.to_string();
        let wrap = |rng: &mut Rng, v: String, ctx: &[(&str, &str)]| {
            let (a, b) = *rng.pick(ctx);
            (s(a), v, s(b))
        };
        match kind {
            "anthropic_api_key" => {
                let v = format!(
                    "sk-ant-{}-{}AA",
                    rng.pick(&["api03", "admin01", "oat01"]),
                    rng.chars(B64URL, 93)
                );
                wrap(
                    rng,
                    v,
                    &[
                        ("export ANTHROPIC_API_KEY=", ""),
                        ("x-api-key: ", "\n"),
                        ("my key is ", " — keep it safe"),
                        ("\"apiKey\": \"", "\","),
                    ],
                )
            }
            "openai_api_key" => {
                let v = match rng.below(3) {
                    0 => format!("sk-{}", rng.chars(B62, 48)),
                    1 => format!("sk-proj-{}", rng.chars_in(B64URL, 100, 160)),
                    _ => format!("sk-svcacct-{}", rng.chars(B64URL, 120)),
                };
                wrap(
                    rng,
                    v,
                    &[
                        ("OPENAI_API_KEY=", ""),
                        ("client = OpenAI(api_key=\"", "\")"),
                        ("Authorization: Bearer ", ""),
                        ("use ", " for the eval run"),
                    ],
                )
            }
            "aws_access_key" => {
                let v = format!(
                    "{}{}",
                    rng.pick(&["AKIA", "ASIA"]),
                    rng.chars("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)
                );
                wrap(
                    rng,
                    v,
                    &[
                        ("aws_access_key_id = ", "\n"),
                        ("export AWS_ACCESS_KEY_ID=", ""),
                        ("\"AccessKeyId\": \"", "\","),
                        ("the key ", " was rotated"),
                    ],
                )
            }
            "aws_secret_key" => {
                let v = rng.chars(B64, 40);
                wrap(
                    rng,
                    v,
                    &[
                        ("aws_secret_access_key = ", "\n"),
                        ("export AWS_SECRET_ACCESS_KEY=", ""),
                        ("\"SecretAccessKey\": \"", "\","),
                        ("AWS_SECRET_ACCESS_KEY: '", "'"),
                    ],
                )
            }
            "github_token" => {
                let v = if rng.below(4) == 0 {
                    format!("github_pat_{}_{}", rng.chars(B62, 22), rng.chars(B62, 59))
                } else {
                    format!(
                        "{}{}",
                        rng.pick(&["ghp_", "gho_", "ghu_", "ghs_", "ghr_"]),
                        rng.chars(B62, 36)
                    )
                };
                wrap(
                    rng,
                    v,
                    &[
                        ("GITHUB_TOKEN=", ""),
                        ("git clone https://", "@github.com/acme/app.git"),
                        ("token: ", "\n"),
                        ("gh auth login --with-token <<< ", ""),
                    ],
                )
            }
            "gitlab_token" => {
                let v = format!("glpat-{}", rng.chars(B64URL, 20));
                wrap(
                    rng,
                    v,
                    &[
                        ("PRIVATE-TOKEN: ", ""),
                        ("CI_JOB_TOKEN=", " make"),
                        ("use ", " to push"),
                    ],
                )
            }
            "slack_token" => {
                let v = format!(
                    "{}-{}-{}-{}",
                    rng.pick(&["xoxb", "xoxp", "xoxa", "xoxr"]),
                    rng.digits(12),
                    rng.digits(13),
                    rng.chars(B62, 24)
                );
                wrap(
                    rng,
                    v,
                    &[
                        ("SLACK_BOT_TOKEN=", ""),
                        ("slack.WebClient(\"", "\")"),
                        ("posting with ", " fails"),
                    ],
                )
            }
            "slack_webhook" => {
                let v = format!(
                    "https://hooks.slack.com/services/T{}/B{}/{}",
                    rng.chars("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 8),
                    rng.chars("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 10),
                    rng.chars(B62, 24)
                );
                wrap(
                    rng,
                    v,
                    &[
                        ("curl -X POST ", " -d @msg.json"),
                        ("webhook_url: ", "\n"),
                        ("(", ")"),
                    ],
                )
            }
            "stripe_key" => {
                let v = format!(
                    "{}{}",
                    rng.pick(&["sk_live_", "rk_live_", "sk_test_"]),
                    rng.chars_in(B62, 24, 99)
                );
                wrap(
                    rng,
                    v,
                    &[
                        ("STRIPE_SECRET_KEY=", ""),
                        ("stripe.api_key = \"", "\""),
                        ("charge with ", " now"),
                    ],
                )
            }
            "google_api_key" => {
                let v = format!("AIza{}", rng.chars(B64URL, 35));
                wrap(
                    rng,
                    v,
                    &[
                        (
                            "https://maps.googleapis.com/maps/api/geocode/json?key=",
                            "&address=x",
                        ),
                        ("GOOGLE_API_KEY=", ""),
                        ("apiKey: \"", "\","),
                    ],
                )
            }
            "azure_storage_key" => {
                let v = base64(&rng.bytes(64), B64, true);
                wrap(
                    rng,
                    v,
                    &[
                        (
                            "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey=",
                            ";EndpointSuffix=core.windows.net",
                        ),
                        ("AccountKey=", ""),
                    ],
                )
            }
            "npm_token" => {
                let v = format!("npm_{}", rng.chars(B62, 36));
                wrap(
                    rng,
                    v,
                    &[
                        ("//registry.npmjs.org/:_authToken=", "\n"),
                        ("NPM_TOKEN=", ""),
                        ("publish with ", ""),
                    ],
                )
            }
            "pypi_token" => {
                let v = format!("pypi-AgEIcHlwaS5vcmc{}", rng.chars_in(B64URL, 60, 160));
                wrap(
                    rng,
                    v,
                    &[
                        ("password = ", "\n"),
                        ("TWINE_PASSWORD=", ""),
                        ("upload token ", " expired"),
                    ],
                )
            }
            "private_key" => {
                let v = pem(rng);
                wrap(
                    rng,
                    v,
                    &[
                        ("key file:\n", "\n"),
                        ("\"private_key\": \"", "\","),
                        ("", "\n"),
                    ],
                )
            }
            "jwt" => {
                let v = jwt(rng);
                wrap(
                    rng,
                    v,
                    &[
                        ("Authorization: Bearer ", ""),
                        ("the cookie session=", "; Path=/"),
                        ("decode ", " please"),
                    ],
                )
            }
            "url_credentials" => {
                let user = format!(
                    "{}{}",
                    rng.pick(&["admin", "app", "deploy", "postgres", "svc_ci"]),
                    rng.chars_in(DIGITS, 0, 2)
                );
                let v = format!(
                    "{user}:{}",
                    password(rng).replace(['/', '?', '#', '[', ']', '"', '\''], "x")
                );
                let scheme = *rng.pick(&[
                    "postgres",
                    "postgresql",
                    "mysql",
                    "redis",
                    "amqp",
                    "https",
                    "mongodb+srv",
                    "ftp",
                ]);
                let host = *rng.pick(&[
                    "db.internal:5432/app",
                    "cache.local:6379/0",
                    "mq.example.net/vhost",
                    "example.com/path?q=1",
                ]);
                (format!("DATABASE_URL={scheme}://"), v, format!("@{host}"))
            }
            "password_assignment" => {
                let v = password(rng);
                wrap(
                    rng,
                    v,
                    &[
                        ("DB_PASSWORD=", ""),
                        ("password: ", "\n"),
                        ("\"password\": \"", "\""),
                        ("api_key = '", "'"),
                        ("export SECRET_TOKEN=\"", "\""),
                        ("client_secret: ", "\n"),
                        ("PGPASSWORD=", " psql -h db"),
                        ("passwd: \"", "\""),
                        ("apiKey: \"", "\","),
                        ("docker run -e MYSQL_ROOT_PASSWORD=", " mysql:8"),
                        ("$config['db_pass'] => '", "';"),
                        ("let token = \"", "\";"),
                    ],
                )
            }
            "tally_token" => {
                let v = format!(
                    "{}{}",
                    rng.pick(&["tly_inst_", "tly_agent_"]),
                    rng.chars(HEX, 64)
                );
                wrap(
                    rng,
                    v,
                    &[
                        ("tally install ", ""),
                        ("TALLY_TOKEN=", ""),
                        ("Authorization: Bearer ", ""),
                    ],
                )
            }
            "high_entropy" => {
                let v = match rng.below(3) {
                    0 => base64(&rng.bytes_in(24, 48), B64, true),
                    1 => base64(&rng.bytes_in(24, 48), B64URL, false),
                    _ => rng.chars_in(B62, 32, 64),
                };
                wrap(
                    rng,
                    v,
                    &[
                        ("the signing value is ", " ok"),
                        ("X-Custom-Auth: ", "\n"),
                        ("ENCRYPTED_BLOB=", ""),
                        ("let nonce = \"", "\";"),
                        ("-H 'X-Hub: ", "'"),
                        ("see https://files.example.com/d/", " for it"),
                    ],
                )
            }
            "email" => {
                let v = format!(
                    "{}{}{}@{}",
                    rng.pick(&[
                        "jane",
                        "j.smith",
                        "max_mustermann",
                        "o'brien",
                        "dev+ci",
                        "anna.maria"
                    ])
                    .replace('\'', ""),
                    rng.pick(&["", ".", "_"]).to_string() + &rng.chars_in(DIGITS, 0, 2),
                    rng.pick(&["", "x"]),
                    rng.pick(&[
                        "example.com",
                        "corp.io",
                        "mail.co.uk",
                        "gmail.com",
                        "uni-bonn.de",
                        "sub.domain.org"
                    ])
                );
                let v = v.replace("..", ".").replace(".@", "@").replace("_@", "@");
                wrap(
                    rng,
                    v,
                    &[
                        ("mail ", " about it"),
                        ("Author: Jane <", ">"),
                        ("\"email\": \"", "\""),
                        ("contact: ", "\n"),
                    ],
                )
            }
            "phone" => {
                let v = phone(rng);
                wrap(
                    rng,
                    v,
                    &[
                        ("call me at ", " tomorrow"),
                        ("Tel: ", "\n"),
                        ("\"phone\": \"", "\""),
                        ("(mobile ", ")"),
                    ],
                )
            }
            "credit_card" => {
                let v = card(rng);
                wrap(
                    rng,
                    v,
                    &[
                        ("card number ", " exp 12/27"),
                        ("\"pan\": \"", "\""),
                        ("charged ", " twice"),
                    ],
                )
            }
            "iban" => {
                let v = iban(rng);
                wrap(
                    rng,
                    v,
                    &[
                        ("IBAN: ", "\n"),
                        ("pay to ", " by Friday"),
                        ("\"iban\": \"", "\""),
                    ],
                )
            }
            "ipv4" => {
                let v = ipv4(rng);
                wrap(
                    rng,
                    v,
                    &[
                        ("ssh ubuntu@", ""),
                        ("connect to ", ":8080 failed"),
                        ("client_ip=", " status=500"),
                        ("from ", " port 22"),
                    ],
                )
            }
            "ipv6" => {
                let v = ipv6(rng);
                wrap(
                    rng,
                    v,
                    &[
                        ("listen [", "]:443"),
                        ("peer ", " disconnected"),
                        ("addr=", "\n"),
                    ],
                )
            }
            "us_ssn" => {
                let v = ssn(rng);
                wrap(
                    rng,
                    v,
                    &[
                        ("SSN ", " on file"),
                        ("\"ssn\": \"", "\""),
                        ("social security number: ", "\n"),
                    ],
                )
            }
            _ => (String::new(), String::new(), String::new()),
        }
    }

    /// `per_kind` samples of every kind, each inside a few words of prose.
    pub fn samples(seed: u64, per_kind: usize) -> Vec<Sample> {
        let mut rng = Rng::new(seed);
        let mut out = Vec::with_capacity(per_kind * KINDS.len());
        for _ in 0..per_kind {
            for &kind in KINDS {
                let (before, secret, after) = plant(kind, &mut rng);
                let mut text = String::new();
                filler(&mut rng, &mut text);
                text.push_str(&before);
                let start = text.len();
                text.push_str(&secret);
                let end = text.len();
                text.push_str(&after);
                text.push(' ');
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
            let kind = *rng.pick(KINDS);
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
        pub per_kind: Vec<(&'static str, usize, usize)>,
        pub detected: usize,
        pub total: usize,
        /// Findings that do not touch the planted value (false positives in the prose).
        pub stray: Vec<(String, String)>,
        /// Samples whose value was missed or mislabelled: (kind, text, what was found).
        pub misses: Vec<(&'static str, String, String)>,
    }

    impl Recall {
        pub fn overall(&self) -> f64 {
            self.detected as f64 / self.total.max(1) as f64
        }
    }

    /// A sample counts only if one finding of its own kind covers the whole value.
    pub fn recall(r: &Redactor, samples: &[Sample]) -> Recall {
        let mut rec = Recall {
            per_kind: KINDS.iter().map(|&k| (k, 0, 0)).collect(),
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
        pub per_kind: Vec<(&'static str, usize)>,
        /// (file name, kind, matched text) for the first findings, for inspection.
        pub examples: Vec<(String, &'static str, String)>,
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
        fp.per_kind.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        fp
    }
}
