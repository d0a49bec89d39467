//! Scrubs secrets and personal data from text before it may leave a machine
//! (and again at the edge). Each match becomes a typed placeholder such as
//! `[REDACTED:aws_access_key]`, so a reader still sees what kind of thing was there.
//!
//! Provider formats are matched by their documented prefixes; generic secrets
//! by assignment syntax and by character statistics. Checksummed PII (cards,
//! IBANs) must pass its checksum, which keeps order numbers and ids readable.
//!
//! Every rule scans the whole text on its own and proposes candidate spans;
//! overlaps are then settled in one place (earliest start, then longest, then
//! rule order), so output is never nested, and existing placeholders are never
//! touched. The output is rescanned until nothing new turns up, which makes
//! redaction idempotent. Word boundaries are ASCII-only (`(?-u:\b)`): the Unicode form would
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

fn pem_ok(c: Cand) -> Option<(usize, usize)> {
    // A bare header (in docs, or a regex that looks for one) hides nothing;
    // a truncated key without its END line still does.
    let s = c.secret_str();
    let body = s.split_once("KEY-----").map_or("", |(_, b)| b);
    let key_chars = body.bytes().filter(|&b| is_b64(b as char)).count();
    (s.contains("-----END") || key_chars >= 40).then_some(c.secret)
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
    // `https://<token>@host` is URL userinfo, left to the token rules.
    if c.text[..c.secret.0].ends_with("://") {
        return None;
    }
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
    // Unbroken 17–19 digit runs inside a list (`(4289…465, 21…)`) are u64
    // table entries, which pass Luhn one time in ten.
    if sep.is_none() && n > 16 {
        let prev = c.text[..c.secret.0].trim_end().chars().next_back();
        let next = c.text[c.secret.1..].trim_start().chars().next();
        if matches!(prev, Some('(' | '[' | ',')) || matches!(next, Some(',' | ')' | ']' | ';')) {
            return None;
        }
    }
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
    // `is_multiple_of` would need Rust 1.87; the workspace targets 1.85.
    matches!(sum % 10, 0).then_some(c.secret)
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
    // The tail of a longer digit sequence (`… 0044 0532 0130 00`) is not a number of its own.
    let mut back = c.text[..c.secret.0].chars().rev();
    if matches!(
        (back.next(), back.next()),
        (Some(' ' | '-' | '.'), Some('0'..='9'))
    ) {
        return None;
    }
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
        let date = rest
            .split('-')
            .map(str::len)
            .collect::<Vec<_>>()
            .ends_with(&[2, 2])
            && rest.bytes().all(|b| b.is_ascii_digit() || b == b'-');
        if seps == [b'.'] || date {
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
    // Loopback, unspecified, broadcast and netmasks identify nobody. Quads
    // opening with two single digits are versions (`1.2.3.4`), OIDs
    // (`2.5.4.10`) and section numbers (`7.3.17.1`) far more often than hosts
    // (the few real ones, like 8.8.4.4, are public resolvers, not anyone's
    // data). Private ranges (10/8, 192.168/16) are still redacted: they map
    // an employer's network.
    let mask = |x: u8| x.leading_ones() + x.trailing_zeros() == 8;
    if o[0] == 127
        || o[0] == 0
        || o == [255, 255, 255, 255]
        || (o[0] == 255 && o.iter().all(|&x| mask(x)))
        || s.split('.').take(2).all(|p| p.len() == 1)
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
        || s.split(':').filter(|g| !g.is_empty()).count() + usize::from(s.contains('.')) < 3
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
        && !key[4..].starts_with(['w', 'W', 'p', 'P'])
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
    if matches!(
        first,
        '$' | '{' | '<' | '%' | '&' | '[' | '(' | '#' | '*' | ':' | '='
    ) || v.chars().all(|ch| ch == first)
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
    ) || lower.starts_with("your")
        || lower.starts_with("xxxx")
    {
        return None;
    }
    // `Token::I64(…)` is a path, not `Token: …`.
    let sep = &text[c.whole.0..s0];
    if sep.contains("::") {
        return None;
    }
    // `UPPER_SNAKE` names a constant, type or environment variable (`"API_KEY"`).
    if v.contains('_')
        && v.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
    {
        return None;
    }
    let has_digit = v.bytes().any(|b| b.is_ascii_digit());
    let has_symbol = v
        .bytes()
        .any(|b| !b.is_ascii_alphanumeric() && !b"_.:/-".contains(&b));
    if quoted {
        // A quoted literal after a secret-named key is the secret, unless it
        // reads as prose (a help text or error message).
        if v.contains(char::is_whitespace) {
            return None;
        }
    } else {
        // Unquoted, `token = self.token` or `password: String` is code; real
        // values carry digits or symbols. `DB_PASSWORD=abc` (upper-case key, bare `=`) is an env file or a
        // shell line, where any value is a value; elsewhere a letters-only
        // value must look random (many case chunks), not like a type or a name.
        let env_style = sep.ends_with('=')
            && !sep.contains(char::is_whitespace)
            && !sep.bytes().any(|b| b.is_ascii_lowercase());
        let random_letters = v.len() >= 10
            && v.bytes().filter(u8::is_ascii_uppercase).count() >= 2
            && v.bytes().filter(u8::is_ascii_lowercase).count() >= 2
            && chunks(v.as_bytes()) * 20 >= v.len() * 7;
        if !(has_digit || has_symbol || env_style || random_letters) {
            return None;
        }
        // Numeric literals (`token = 42`, `0x04`, `0i32`) are counts and flags,
        // except after a password key, where digits alone are a PIN.
        let pin = ["pass", "pwd"].iter().any(|p| {
            key.get(..p.len())
                .is_some_and(|k| k.eq_ignore_ascii_case(p))
        }) && v.bytes().all(|b| b.is_ascii_digit());
        if is_number_literal(v) && !pin {
            return None;
        }
        // `TOKEN: _bindgen_ty_7 = …` annotates a type; the value comes after `=`.
        if sep.trim_end().ends_with(':')
            && text[s1..].trim_start_matches([' ', '\t']).starts_with('=')
        {
            return None;
        }
        // `let password = entry2;`, `token = buf1.clone()`: a variable, not a literal.
        let ident = v.starts_with(|ch: char| ch.is_ascii_alphabetic() || ch == '_')
            && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        let line = text[..c.whole.0].rsplit('\n').next().unwrap_or("");
        let declared = ["let ", "const ", "var ", "val ", "mut ", "static "]
            .iter()
            .any(|kw| line.contains(kw));
        let rest = &text[s1..];
        let follows = rest.starts_with(['(', '?', ';', ',', ')', '}'])
            || (rest.starts_with('.')
                && rest[1..].starts_with(|ch: char| ch.is_ascii_alphabetic() || ch == '_'));
        if ident && !env_style && (declared || follows) {
            return None;
        }
        // `node.dot2_token`, `self.cfg.secret`: a field path.
        if v.contains('.')
            && v.split('.').all(|p| {
                p.starts_with(|ch: char| ch.is_ascii_alphabetic() || ch == '_')
                    && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            })
        {
            return None;
        }
        // `vec![…]`, `format!(…)`: a macro call, not a value.
        let next = text[s1..].trim_start_matches([' ', '\t']);
        if (v.ends_with('!') && next.starts_with(['(', '[', '{'])) || v.contains("()") {
            return None;
        }
    }
    Some((s0, s1))
}

fn is_number_literal(v: &str) -> bool {
    let body = v
        .strip_prefix("0x")
        .or_else(|| v.strip_prefix("0X"))
        .map_or(v, |h| {
            h.trim_start_matches(|c: char| c.is_ascii_hexdigit() || c == '_')
        });
    let body = body.trim_start_matches(|c: char| c.is_ascii_digit() || c == '_');
    let suffix_ok = matches!(
        body,
        "" | "u8"
            | "u16"
            | "u32"
            | "u64"
            | "u128"
            | "usize"
            | "i8"
            | "i16"
            | "i32"
            | "i64"
            | "i128"
            | "isize"
    );
    suffix_ok && v.len() < 12
}

fn bearer_ok(c: Cand) -> Option<(usize, usize)> {
    // A sentence may end right after the token.
    let v = c.secret_str().trim_end_matches('.');
    if v.starts_with("[REDACTED") || !v.bytes().any(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((c.secret.0, c.secret.0 + v.len()))
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

/// Number of word-like chunks (`Http`, `http`, `HTTP`, `2`), split as
/// `[A-Z][a-z]+|[a-z]+|[A-Z]+|[0-9]+` would.
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

/// A `/`-separated piece that reads as a path or URL word (`com`, `blob`,
/// `aho-corasick`): lowercase with a run of three letters. Random base64
/// rarely yields such a piece, so it marks the run as a path, not a key.
fn is_path_word(seg: &[u8]) -> bool {
    let mut run = 0;
    let mut best = 0;
    for &c in seg {
        if !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'_' | b'-')) {
            return false;
        }
        run = if c.is_ascii_lowercase() { run + 1 } else { 0 };
        best = best.max(run);
    }
    best >= 3
}

/// Generic secret test for a run of `[A-Za-z0-9+/_-]` (padding `=` stripped).
///
/// Calibrated on random base62/base64/base64url strings (what key generators
/// emit) against every long token in the Rust sources of the cargo registry:
/// - Pure hex (git SHAs, sha256 digests, UUIDs) is never flagged: transcripts
///   are full of commit ids and lockfile checksums, and hex secrets assigned
///   to a name are caught by `password_assignment` instead.
/// - Both cases, a digit, and entropy ≥ 0.75·log2(len) bits/char: random
///   base62 of 32 chars averages 4.5 bits (threshold 3.75) while identifiers
///   and `UPPER_SNAKE` constants lack a case or a digit. Base32 secrets
///   (upper case only) are therefore left to the assignment rule as well.
/// - CamelCase and snake_case identifiers with digits (`PciExpressV2Link…`,
///   `aws_lc_0_41_0_X509_…`) are told apart by structure: few long word
///   chunks, or many short `_`/`-` segments, where random text starts a new
///   chunk every ~2 chars. These cuts cost under 1% recall at 32 chars and
///   ~0.1% at 40+ (measured on 20k random strings per alphabet).
fn high_entropy_ok(core: &[u8]) -> bool {
    let n = core.len();
    if n < 32 {
        return false;
    }
    let (mut up, mut low, mut dig, mut hex) = (0usize, 0usize, 0usize, true);
    for &c in core {
        up += usize::from(c.is_ascii_uppercase());
        low += usize::from(c.is_ascii_lowercase());
        dig += usize::from(c.is_ascii_digit());
        hex &= c.is_ascii_hexdigit() || c == b'-';
    }
    if hex || up < 2 || low < 2 || dig < 1 {
        return false;
    }
    let len_bits = (n.min(128) as f64).log2();
    if shannon_bits(core) < 0.75 * len_bits {
        return false;
    }
    if (chunks(core) as f64) < 0.3 * (up + low + dig) as f64 {
        return false;
    }
    let segments = core.split(|&c| c == b'_' || c == b'-').count();
    !(segments >= 4 && (n as f64) / (segments as f64) <= 6.0)
}

/// Runs of `[A-Za-z0-9+/_-]` plus up to two `=`. A run with two or more
/// path words (`com/RustCrypto/media/…/logo`) is a path and is judged
/// piecewise between them, so a token inside a URL is hidden without eating
/// the readable path; one lowercase piece alone is common inside random
/// base64 (`…/blz/…`) and does not split it.
fn high_entropy_candidates(text: &str, ri: usize, out: &mut Vec<(usize, usize, usize)>) {
    // A table lookup per byte keeps this scan at memory speed.
    const RUN: [bool; 256] = {
        let mut t = [false; 256];
        let mut c = 0;
        while c < 256 {
            let b = c as u8;
            t[c] = b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'_' | b'-');
            c += 1;
        }
        t
    };
    let bytes = text.as_bytes();
    let is_run = |c: u8| RUN[c as usize];
    let mut push = |a: usize, b: usize| {
        let mut k = b;
        while k > a && bytes[k - 1] == b'=' {
            k -= 1;
        }
        if high_entropy_ok(&bytes[a..k]) {
            out.push((a, b, ri));
        }
    };
    let mut pos = 0;
    while pos < bytes.len() {
        if !is_run(bytes[pos]) {
            pos += 1;
            continue;
        }
        let mut s = pos;
        let mut i = pos;
        while i < bytes.len() && is_run(bytes[i]) {
            i += 1;
        }
        let mut e = i;
        while e < bytes.len() && e - i < 2 && bytes[e] == b'=' {
            e += 1;
        }
        pos = e;
        // `//` opens a URL authority (`https://<token>@…`), not a key.
        if bytes[s..i].starts_with(b"//") {
            while s < i && bytes[s] == b'/' {
                s += 1;
            }
        }
        if i - s < 32 {
            continue;
        }
        let pieces = || {
            let mut j = s;
            std::iter::from_fn(move || {
                if j > i {
                    return None;
                }
                let k = bytes[j..i]
                    .iter()
                    .position(|&c| c == b'/')
                    .map_or(i, |p| j + p);
                let piece = (j, k);
                j = k + 1;
                Some(piece)
            })
        };
        let words = pieces()
            .filter(|&(a, b)| is_path_word(&bytes[a..b]))
            .count();
        if words < 2 {
            push(s, e);
            continue;
        }
        let mut start = None;
        for (a, b) in pieces() {
            match (is_path_word(&bytes[a..b]), start) {
                (true, Some(st)) => {
                    push(st, a - 1);
                    start = None;
                }
                (false, None) => start = Some(a),
                _ => {}
            }
        }
        if let Some(st) = start {
            push(st, e);
        }
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
        // Characters a password may contain unquoted: printable ASCII up to
        // whitespace, quotes, and the punctuation that closes code or a URL
        // query. Non-ASCII ends it too, since there it is far more often a
        // closing bracket or quote (`」`, `”`, `→`) than part of the value.
        let unquoted = r#"[!#-%*+\--:=?-Z\\^_a-z|~]+"#;
        let keyword = r"(?i-u:secret[_-]?access[_-]?key|(?:api|access|auth|secret|private|signing|encryption|master|client)[_-]?key|apikey|client[_-]?secret|secret|passw(?:or)?d|passphrase|pass|pwd|(?:auth|access|refresh|session|bearer|api|id)?[_-]?token|credentials?)";
        let rules = vec![
            rx(
                "private_key",
                r"-----BEGIN[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----(?:[A-Za-z0-9+/=\s\\:,.-]*?-----END[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----|(?:(?:\r?\n|\\r?\\n)(?:[A-Za-z-]+: [^\r\n\\]*|[A-Za-z0-9+/=]+))*)"
                    .into(),
                Some(pem_ok),
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
                    r"(?:\+[1-9][0-9]{{0,2}}(?:[ .-]?\([0-9]{{1,4}}\))?(?:[ .-]?[0-9]{{1,5}}){{1,6}}|(?:{B}1[ .-]?)?\([2-9][0-9]{{2}}\) ?[2-9][0-9]{{2}}-[0-9]{{4}}|{B}(?:1[.-])?[2-9][0-9]{{2}}[.-][2-9][0-9]{{2}}[.-][0-9]{{4}}|{B}0[1-9][0-9]{{1,4}}[ /-][0-9]{{3,8}}(?:[ -][0-9]{{2,4}}){{0,3}}){B}"
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
                    r#"{keyword}\\?["']?\]?[ \t]*(?:=>|:=|[:=])[ \t]*(?:\\?"([^"\r\n]+)"|\\?'([^'\r\n]+)'|({unquoted}))"#
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
            let extra = self.scan(&out);
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
        "[REDACTED:]".len() + self.rules[ri].kind.len()
    }

    fn render(&self, text: &str, spans: &[(usize, usize, usize)]) -> (String, Vec<Finding>) {
        let mut out = String::with_capacity(text.len());
        let mut findings = Vec::with_capacity(spans.len());
        let mut pos = 0;
        for &(s, e, ri) in spans {
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
        (out, findings)
    }

    /// Every rule's candidates, settled into sorted, non-overlapping spans
    /// (start, end, rule index) that leave existing placeholders alone.
    fn scan(&self, text: &str) -> Vec<(usize, usize, usize)> {
        // Placeholders from an earlier pass are off limits, so they are never
        // re-wrapped or swallowed by a neighbouring match.
        let protected: Vec<(usize, usize)> = self
            .placeholder
            .find_iter(text)
            .map(|m| (m.start(), m.end()))
            .collect();
        let mut found: Vec<(usize, usize, usize)> = Vec::new();
        for (ri, rule) in self.rules.iter().enumerate() {
            match &rule.finder {
                Finder::HighEntropy => high_entropy_candidates(text, ri, &mut found),
                Finder::Re(re) if re.captures_len() > 1 => {
                    for caps in re.captures_iter(text) {
                        let whole = caps.get(0).expect("group 0 always participates");
                        let Some(g) = caps.iter().skip(1).flatten().next() else {
                            continue;
                        };
                        consider(
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
                        consider(rule, ri, text, span, span, &mut found);
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
            let word: &&str = rng.pick(WORDS);
            out.push_str(word);
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
        let mut out = Vec::with_capacity(per_kind * KINDS.len());
        for _ in 0..per_kind {
            for &kind in KINDS {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> String {
        redact(s)
    }

    fn kinds(s: &str) -> Vec<&'static str> {
        Redactor::new()
            .redact(s)
            .findings
            .iter()
            .map(|f| f.kind)
            .collect()
    }

    #[test]
    fn provider_secrets_become_typed_placeholders() {
        let cases = [
            (
                "key sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789ABCD_-xyzAA end",
                "key [REDACTED:anthropic_api_key] end",
            ),
            (
                "OPENAI_API_KEY=sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z",
                "OPENAI_API_KEY=[REDACTED:openai_api_key]",
            ),
            (
                "legacy sk-T3BlbkFJa1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6q7r8",
                "legacy [REDACTED:openai_api_key]",
            ),
            ("id AKIAIOSFODNN7EXAMPLE here", "id [REDACTED:aws_access_key] here"),
            ("sts ASIAY34FZKBOKMUTVV7A.", "sts [REDACTED:aws_access_key]."),
            (
                "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n",
                "aws_secret_access_key = [REDACTED:aws_secret_key]\n",
            ),
            (
                r#"{"SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}"#,
                r#"{"SecretAccessKey": "[REDACTED:aws_secret_key]"}"#,
            ),
            (
                "ghp_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghij",
                "[REDACTED:github_token]",
            ),
            (
                "t=github_pat_11ABCDEFG0123456789abc_defghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456",
                "t=[REDACTED:github_token]",
            ),
            ("glpat-abcdefghij0123456789 ok", "[REDACTED:gitlab_token] ok"),
            (
                "xoxb-123456789012-1234567890123-abcdefghijABCDEFGHIJ1234",
                "[REDACTED:slack_token]",
            ),
            (
                "post to https://hooks.slack.com/services/T0001/B0002/XXXXxxxxYYYY now",
                "post to [REDACTED:slack_webhook] now",
            ),
            ("sk_live_4eC39HqLyjWDarjtT1zdp7dc", "[REDACTED:stripe_key]"),
            ("rk_live_51H8abcdEFGH1234ijkl", "[REDACTED:stripe_key]"),
            (
                "maps?key=AIzaSyA-1234567890abcdefghijklmnopqrstu&x=1",
                "maps?key=[REDACTED:google_api_key]&x=1",
            ),
            (
                "npm_abcdefghijklmnopqrstuvwxyz0123456789",
                "[REDACTED:npm_token]",
            ),
            (
                "pypi-AgEIcHlwaS5vcmcCJDU1YjYxYzQ4LTQ3NTgtNDQ0Ny1iZWQ0LTJlOGQzOTZiMmI0YQ",
                "[REDACTED:pypi_token]",
            ),
            (
                "tly_agent_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                "[REDACTED:tally_token]",
            ),
            (
                "Bearer tly_inst_00ff00ff00ff00ff00ff00ff00ff00ff",
                "Bearer [REDACTED:tally_token]",
            ),
            (
                "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
                "[REDACTED:jwt]",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(r(input), want, "input: {input}");
        }
        let azure = format!(
            "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey={}==;EndpointSuffix=core.windows.net",
            "Ab1+".repeat(21) + "Cd"
        );
        assert_eq!(
            r(&azure),
            "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey=[REDACTED:azure_storage_key];EndpointSuffix=core.windows.net"
        );
    }

    #[test]
    fn private_key_blocks_whole_truncated_and_escaped() {
        let pem = "x\n-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\nabc+/=\n-----END RSA PRIVATE KEY-----\ny";
        assert_eq!(r(pem), "x\n[REDACTED:private_key]\ny");
        let ssh = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n-----END OPENSSH PRIVATE KEY-----";
        assert_eq!(r(ssh), "[REDACTED:private_key]");
        let json = r#"{"private_key": "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n", "x": 1}"#;
        assert_eq!(
            r(json),
            r#"{"private_key": "[REDACTED:private_key]\n", "x": 1}"#
        );
        // Cut off mid-body (a prompt truncated by a size limit): the rest still goes.
        let cut = "see -----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBkg4ZbVg9nlTPT0aZ3MaJ7z2dbmKyM1\nqGZ5 and then";
        assert_eq!(r(cut), "see [REDACTED:private_key] and then");
        // A header alone, as in docs or a grep pattern, hides nothing.
        let bare = r#"grep -l "-----BEGIN PRIVATE KEY-----" *.pem"#;
        assert_eq!(r(bare), bare);
    }

    #[test]
    fn url_credentials_keep_scheme_and_host() {
        assert_eq!(
            r("postgres://admin:hunter2@db.internal:5432/x"),
            "postgres://[REDACTED:url_credentials]@db.internal:5432/x"
        );
        // The password may contain `@`; the userinfo ends at the last one.
        assert_eq!(
            r("redis://:p@ss@cache:6379"),
            "redis://[REDACTED:url_credentials]@cache:6379"
        );
        assert_eq!(
            r("git clone https://x-access-token:abc123@github.com/o/r.git"),
            "git clone https://[REDACTED:url_credentials]@github.com/o/r.git"
        );
        // A token as the whole userinfo is caught by its own format, not as an email.
        assert_eq!(
            r("https://ghp_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghij@github.com/o/r"),
            "https://[REDACTED:github_token]@github.com/o/r"
        );
        for s in [
            "http://localhost:8080/path",
            "ssh://git@github.com:22/o/r",
            "git@github.com:o/r.git",
        ] {
            assert_eq!(r(s), s);
        }
    }

    #[test]
    fn password_assignments_keep_the_key() {
        let cases = [
            (
                "DB_PASSWORD=s3cr3t-value",
                "DB_PASSWORD=[REDACTED:password_assignment]",
            ),
            (
                "PGPASSWORD=hunter hi",
                "PGPASSWORD=[REDACTED:password_assignment] hi",
            ),
            (
                "password: Tr0ub4dor#3\n",
                "password: [REDACTED:password_assignment]\n",
            ),
            (
                r#"{"api_key": "abc123def"}"#,
                r#"{"api_key": "[REDACTED:password_assignment]"}"#,
            ),
            (
                "apiKey: 'Zq9-xx_77'",
                "apiKey: '[REDACTED:password_assignment]'",
            ),
            (
                "export SECRET_TOKEN=\"Welcome569!\"",
                "export SECRET_TOKEN=\"[REDACTED:password_assignment]\"",
            ),
            (
                "client_secret := \"abcd1234\"",
                "client_secret := \"[REDACTED:password_assignment]\"",
            ),
            (
                "'db_pass' => 'correct#61'",
                "'db_pass' => '[REDACTED:password_assignment]'",
            ),
            (
                "$cfg['db_pass'] => 'hunter90';",
                "$cfg['db_pass'] => '[REDACTED:password_assignment]';",
            ),
            (
                r#"{\"password\": \"p4ss\"}"#,
                r#"{\"password\": \"[REDACTED:password_assignment]\"}"#,
            ),
            ("passwd:hunter2.", "passwd:[REDACTED:password_assignment]."),
            (
                "?token=abc123&page=2",
                "?token=[REDACTED:password_assignment]&page=2",
            ),
            (
                "Authorization: Bearer abcdef0123456789xyz",
                "Authorization: Bearer [REDACTED:password_assignment]",
            ),
            (
                "let password = \"このきれいな花\";",
                "let password = \"[REDACTED:password_assignment]\";",
            ),
            (
                "PIN password=12345678",
                "PIN password=[REDACTED:password_assignment]",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(r(input), want, "input: {input}");
        }
    }

    #[test]
    fn code_that_names_secrets_is_left_alone() {
        for s in [
            "let token = self.token.clone();",
            "fn password(&self) -> String",
            "password: String,",
            "pub token: *const u8,",
            "let secret = [0u8; 32];",
            "max_tokens = 4096",
            "input_tokens: 1200, output_tokens: 350",
            "token_count = 12",
            "let api_key = env::var(\"API_KEY\")?;",
            "api_key = os.environ[\"OPENAI_API_KEY\"]",
            "password = ${DB_PASSWORD}",
            "token: \"<your token here>\"",
            "password: ********",
            "bypass = 12345678",
            "token = 42",
            "const FLAG_TOKEN: u32 = 0x04;",
            "dot2_token: node.dot2_token,",
            "let password = entry2;",
            "Token::I64(42)",
            "\"token\": null",
            "secret_name = \"prod\"",
            "the password: is required",
        ] {
            assert_eq!(r(s), s);
        }
    }

    #[test]
    fn pii_checksums_and_formats() {
        let cases = [
            ("mail jane.doe@example.com ok", "mail [REDACTED:email] ok"),
            ("<dev+ci@corp.io>", "<[REDACTED:email]>"),
            ("card 4111 1111 1111 1111.", "card [REDACTED:credit_card]."),
            ("card 4111-1111-1111-1111", "card [REDACTED:credit_card]"),
            ("amex 3782 822463 10005", "amex [REDACTED:credit_card]"),
            ("pan 5500005555555559 ok", "pan [REDACTED:credit_card] ok"),
            ("IBAN DE89 3704 0044 0532 0130 00", "IBAN [REDACTED:iban]"),
            ("iban GB82WEST12345698765432.", "iban [REDACTED:iban]."),
            ("BE68 5390 0754 7034 AND MORE", "[REDACTED:iban] AND MORE"),
            ("ssn 123-45-6789", "ssn [REDACTED:us_ssn]"),
            ("call +44 20 7946 0958 today", "call [REDACTED:phone] today"),
            ("call (415) 555-2671", "call [REDACTED:phone]"),
            ("tel 415-555-2671.", "tel [REDACTED:phone]."),
            ("+14155552671", "[REDACTED:phone]"),
            ("Tel: +33 6 12 34 56 78", "Tel: [REDACTED:phone]"),
            ("030 12345678", "[REDACTED:phone]"),
            ("host 10.1.2.3 up", "host [REDACTED:ipv4] up"),
            ("ssh ubuntu@203.0.113.7", "ssh ubuntu@[REDACTED:ipv4]"),
            ("from 192.168.1.20:8080", "from [REDACTED:ipv4]:8080"),
            ("v6 2001:db8:85a3::8a2e:370:7334 x", "v6 [REDACTED:ipv6] x"),
            ("[fe80::1ff:fe23:4567:890a]:443", "[[REDACTED:ipv6]]:443"),
            ("::ffff:192.0.2.128 mapped", "[REDACTED:ipv6] mapped"),
        ];
        for (input, want) in cases {
            assert_eq!(r(input), want, "input: {input}");
        }
    }

    #[test]
    fn near_misses_stay_readable() {
        for s in [
            // Checksums and validity rules.
            "card 4111 1111 1111 1112.",
            "order 1234 5678 9012 3456",
            "IBAN DE88 3704 0044 0532 0130 00",
            "ssn 000-12-3456",
            "ssn 666-12-3456",
            "ssn 912-12-3456",
            "ssn 123-00-4567",
            "ssn 123-45-0000",
            // Versions, dates, numbers, ids.
            "version 1.2.3.4",
            "version 1.2.3.4.5",
            "OID 1.3.6.1.4.1.311",
            "x509 OID 2.5.4.10",
            "bind 127.0.0.1:8787 and 0.0.0.0",
            "mask 255.255.255.0",
            "id 550e8400-e29b-41d4-a716-446655440000",
            "commit 3f786850e387550fdab836ed7e6dc881de23001b fixed it",
            "sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "2025-11-22T10:00:00Z",
            "on 2024-01-15 at 12:30:45",
            "x = 1e+1441497364.649",
            "ts 1700000000123",
            "nanos 1700000000123456789",
            "const MAX: u64 = 18446744073709551615;",
            "sizes 512 768 1024 2048",
            "hex 01 02 03 04 05 06 07 08",
            "std::collections::HashMap::new()",
            "Self::fa::new",
            "mac 00:1a:2b:3c:4d:5e",
            "icon@2x.png",
            "git@github.com:acme/app.git",
            // Identifiers and paths.
            "ThisIsAVeryLongIdentifierNameForAClassObject",
            "test_proc_macro2_fallback_size_with_locations",
            "aws_lc_0_41_0_X509_NAME_get0_der",
            "https://github.com/BurntSushi/aho-corasick/blob/3852632f10587db0ff72ef29e88d58bf305a0946/src/x.rs",
            "https://raw.githubusercontent.com/RustCrypto/media/6ee8e381/logo.svg",
            "sk-learn-model-selection-helpers-for-tests",
            "TLS_CIPHER_CHACHA20_POLY1305_SALT_SIZE",
            "[REDACTED:email] already clean",
        ] {
            assert_eq!(r(s), s);
        }
    }

    #[test]
    fn high_entropy_catches_generated_secrets_only() {
        assert_eq!(
            r("blob Zx9Qw3Er7Ty1Ui5Op0As8Df2Gh6Jk4Lz end"),
            "blob [REDACTED:high_entropy] end"
        );
        assert_eq!(
            r("sig: q8Y2/vb+Zm3kQ9LwX0pT4rN7sA1cV6eH5uJ2oI8yR3g= ok"),
            "sig: [REDACTED:high_entropy] ok"
        );
        // A capability token in a URL goes; the readable path stays.
        assert_eq!(
            r("see https://cdn.example.com/assets/files/Zx9Qw3Er7Ty1Ui5Op0As8Df2Gh6Jk4Lz/report.pdf"),
            "see https://cdn.example.com/assets/files/[REDACTED:high_entropy]/report.pdf"
        );
        assert_eq!(kinds("aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1dF"), ["high_entropy"]);
    }

    #[test]
    fn overlaps_resolve_to_one_placeholder() {
        // Equal spans: the provider-specific rule beats the generic ones.
        assert_eq!(
            r("api_key=sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z"),
            "api_key=[REDACTED:openai_api_key]"
        );
        assert_eq!(
            r("secret=AKIAIOSFODNN7EXAMPLE"),
            "secret=[REDACTED:aws_access_key]"
        );
        // Earliest start wins: the userinfo swallows the email-looking tail.
        let out = Redactor::new().redact("ftp://bob:pw@x@host.example.com/f");
        assert_eq!(
            out.text,
            "ftp://[REDACTED:url_credentials]@host.example.com/f"
        );
        assert_eq!(out.findings.len(), 1);
        // A JWT inside an assignment stays a single placeholder.
        assert_eq!(
            r("token: eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlMTIzNDU2"),
            "token: [REDACTED:jwt]"
        );
    }

    #[test]
    fn findings_carry_byte_ranges_of_the_original() {
        let text = "é AKIAIOSFODNN7EXAMPLE — jane@example.com 日本 ";
        let out = Redactor::new().redact(text);
        assert_eq!(
            out.findings,
            vec![
                Finding {
                    kind: "aws_access_key",
                    start: 3,
                    end: 23
                },
                Finding {
                    kind: "email",
                    start: 28,
                    end: 44
                },
            ]
        );
        assert_eq!(&text[3..23], "AKIAIOSFODNN7EXAMPLE");
        assert_eq!(&text[28..44], "jane@example.com");
        assert_eq!(
            out.text,
            "é [REDACTED:aws_access_key] — [REDACTED:email] 日本 "
        );
        // No Unicode word boundary: a key glued to CJK text is still found.
        assert_eq!(
            r("密钥AKIAIOSFODNN7EXAMPLE。"),
            "密钥[REDACTED:aws_access_key]。"
        );
    }

    #[test]
    fn idempotent_and_total() {
        let once = r("k=AKIAIOSFODNN7EXAMPLE password=hunter22 mail a@b.co ip 10.0.0.7");
        assert_eq!(
            once,
            "k=[REDACTED:aws_access_key] password=[REDACTED:password_assignment] mail [REDACTED:email] ip [REDACTED:ipv4]"
        );
        assert_eq!(r(&once), once);
        assert!(Redactor::new().redact(&once).findings.is_empty());
        assert_eq!(r(""), "");
        assert_eq!(Redactor::new().redact("").findings, vec![]);
        assert_eq!(
            Redactor::default().redact("plain words").text,
            "plain words"
        );
    }

    #[test]
    fn every_kind_is_reachable() {
        let samples = corpus::samples(1, 1);
        let r = Redactor::new();
        for s in &samples {
            assert!(KINDS.contains(&s.kind));
            let out = r.redact(&s.text);
            assert!(
                out.findings.iter().any(|f| f.kind == s.kind),
                "{}: {:?}",
                s.kind,
                out.text
            );
        }
        assert_eq!(samples.len(), KINDS.len());
    }

    #[test]
    fn large_input_is_handled() {
        let doc = corpus::document(3, 2_000_000);
        let out = Redactor::new().redact(&doc);
        assert!(out.findings.len() > 500);
        assert!(out.findings.windows(2).all(|w| w[0].end <= w[1].start));
        // Pathological repetition stays linear and finds nothing to hide.
        let digits = "1.2.".repeat(250_000);
        assert_eq!(r(&digits), digits);
        let colons = "a:".repeat(250_000);
        assert_eq!(r(&colons), colons);
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;

        fn shared() -> &'static Redactor {
            static R: OnceLock<Redactor> = OnceLock::new();
            R.get_or_init(Redactor::new)
        }

        fn pieces() -> impl Strategy<Value = String> {
            let atoms = prop::sample::select(vec![
                "AKIAIOSFODNN7EXAMPLE",
                "jane@example.com",
                "4111 1111 1111 1111",
                "10.0.0.7",
                "password=",
                "token: ",
                "\"",
                "'",
                "=",
                ":",
                "@",
                "/",
                "//",
                " ",
                "\n",
                "-----BEGIN PRIVATE KEY-----",
                "-----END PRIVATE KEY-----",
                "MIIEvQIBADANBgkq",
                "https://",
                "user:pw",
                "[REDACTED:email]",
                "[REDACTED:",
                "]",
                "é",
                "日本",
                "+44 20 7946 0958",
                "123-45-6789",
                "2001:db8::1",
                "::",
                ".",
                "sk-ant-",
                "ghp_",
                "eyJhbGciOiJIUzI1NiJ9",
                "Zx9Qw3Er7Ty1Ui5Op0As8Df2Gh6Jk4Lz",
                "0",
                "9",
                "x",
            ]);
            prop::collection::vec(atoms, 0..24).prop_map(|v| v.concat())
        }

        proptest! {
            // No regression files: this crate's tests write nothing to disk.
            #![proptest_config(ProptestConfig {
                cases: 512,
                failure_persistence: None,
                ..ProptestConfig::default()
            })]

            #[test]
            fn arbitrary_text_never_panics_and_ranges_are_sane(s in any::<String>()) {
                let out = shared().redact(&s);
                for f in &out.findings {
                    prop_assert!(f.start < f.end && f.end <= s.len());
                    prop_assert!(s.is_char_boundary(f.start) && s.is_char_boundary(f.end));
                }
                prop_assert!(out.findings.windows(2).all(|w| w[0].end <= w[1].start));
            }

            #[test]
            fn redaction_is_idempotent(s in pieces()) {
                let r = shared();
                let once = r.redact(&s);
                let twice = r.redact(&once.text);
                prop_assert_eq!(&twice.text, &once.text);
                // Rebuilding from the findings reproduces the output exactly.
                let mut rebuilt = String::new();
                let mut pos = 0;
                for f in &once.findings {
                    rebuilt.push_str(&s[pos..f.start]);
                    rebuilt.push_str(&format!("[REDACTED:{}]", f.kind));
                    pos = f.end;
                }
                rebuilt.push_str(&s[pos..]);
                prop_assert_eq!(rebuilt, once.text);
            }
        }
    }
}
