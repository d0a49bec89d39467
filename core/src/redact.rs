//! Scrubs secrets and personal data from text before it may leave a machine
//! (and again at the edge). Each match becomes a typed placeholder such as
//! `[REDACTED:aws_access_key]`, so a reader still sees what kind of thing was there.
//!
//! Provider formats are matched by their documented prefixes; generic secrets
//! by assignment syntax and by character statistics. Checksummed PII (cards,
//! IBANs) must pass its checksum, which keeps order numbers and ids readable.

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

type Check = fn(&str) -> bool;

struct Rule {
    kind: &'static str,
    re: Regex,
    /// Capture group holding the secret; 0 = the whole match.
    group: usize,
    check: Option<Check>,
}

pub struct Redactor {
    rules: Vec<Rule>,
}

impl Default for Redactor {
    fn default() -> Self {
        Redactor::new()
    }
}

fn luhn(digits: &str) -> bool {
    let d: Vec<u32> = digits.chars().filter_map(|c| c.to_digit(10)).collect();
    // Card numbers start with 2–6 (Mastercard, Amex/Diners, Visa, Mastercard, Discover).
    if !matches!(d.first(), Some(2..=6)) {
        return false;
    }
    if !(13..=19).contains(&d.len()) {
        return false;
    }
    let sum: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &x)| {
            if i % 2 == 1 {
                let y = x * 2;
                if y > 9 {
                    y - 9
                } else {
                    y
                }
            } else {
                x
            }
        })
        .sum();
    sum.is_multiple_of(10) && d.iter().any(|&x| x != d[0])
}

fn iban_ok(s: &str) -> bool {
    let c: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    if !(15..=34).contains(&c.len()) {
        return false;
    }
    let (head, tail) = c.split_at(4);
    let mut rem: u32 = 0;
    for ch in tail.chars().chain(head.chars()) {
        let v = match ch {
            '0'..='9' => ch as u32 - '0' as u32,
            'A'..='Z' => ch as u32 - 'A' as u32 + 10,
            _ => return false,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

fn ssn_ok(s: &str) -> bool {
    let p: Vec<&str> = s.split('-').collect();
    p.len() == 3
        && p[0] != "000"
        && p[0] != "666"
        && !p[0].starts_with('9')
        && p[1] != "00"
        && p[2] != "0000"
}

fn phone_ok(s: &str) -> bool {
    let n = s.chars().filter(|c| c.is_ascii_digit()).count();
    (8..=15).contains(&n)
}

fn ipv4_ok(s: &str) -> bool {
    // Loopback, unspecified and broadcast addresses identify nobody; all
    // single-digit quads are section and OID numbers far more often than hosts.
    !(s.starts_with("127.") || s == "0.0.0.0" || s == "255.255.255.255")
        && s.split('.').any(|o| o.len() >= 2)
}

fn ipv6_ok(s: &str) -> bool {
    match s.parse::<std::net::Ipv6Addr>() {
        Ok(a) => {
            !a.is_loopback()
                && !a.is_unspecified()
                && s.split(':').filter(|g| !g.is_empty()).count() >= 3
                && s.chars().any(|c| c.is_ascii_digit())
        }
        Err(_) => false,
    }
}

fn shannon_bits(s: &str) -> f64 {
    let mut counts = [0u32; 256];
    for b in s.bytes() {
        counts[b as usize] += 1;
    }
    let n = s.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.log2()
        })
        .sum()
}

/// Random keys mix classes; identifiers, words, hex digests and UUIDs do not
/// (digests have no upper case, identifiers few digits), which keeps source code readable.
fn high_entropy_ok(s: &str) -> bool {
    // Identifiers are short words joined by `_`/`-`; keys have long unbroken runs.
    let longest_run = s
        .split(|c: char| !c.is_ascii_alphanumeric())
        .map(str::len)
        .max()
        .unwrap_or(0);
    if longest_run < 24 {
        return false;
    }
    let count = |f: fn(&u8) -> bool| s.as_bytes().iter().filter(|b| f(b)).count();
    let (up, low, dig) = (
        count(u8::is_ascii_uppercase),
        count(u8::is_ascii_lowercase),
        count(u8::is_ascii_digit),
    );
    up >= 3 && low >= 3 && dig >= 3 && shannon_bits(s) >= 4.2
}

fn assignment_ok(v: &str) -> bool {
    // Code such as `token = self.token`, `password: String` or
    // `tokenizer = Tokenizer::new` names no secret; real values carry digits or symbols.
    !v.starts_with("[REDACTED")
        && !v.contains("::")
        && !v.contains(['<', '>'])
        && !v.ends_with('!')
        && !v.contains("![")
        && v.starts_with(|c: char| c.is_ascii_alphanumeric() || "+/_-$".contains(c))
        && (v.chars().any(|c| c.is_ascii_digit())
            || v.chars()
                .any(|c| !c.is_ascii_alphanumeric() && !"_.:/-".contains(c)))
}

impl Redactor {
    pub fn new() -> Redactor {
        let rule = |kind: &'static str, re: &str, group: usize, check: Option<Check>| Rule {
            kind,
            re: Regex::new(re).expect("redaction patterns are valid"),
            group,
            check,
        };
        // Order breaks ties between equally long matches at one position.
        let rules = vec![
            rule(
                "private_key",
                r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----",
                0,
                None,
            ),
            rule(
                "anthropic_api_key",
                r"\bsk-ant-[a-z]+\d{2}-[A-Za-z0-9_\-]{20,}",
                0,
                None,
            ),
            rule(
                "openai_api_key",
                r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}",
                0,
                None,
            ),
            rule(
                "tally_token",
                r"\btly_(?:inst|agent|signin)_[A-Za-z0-9]{16,}",
                0,
                None,
            ),
            rule(
                "aws_access_key",
                r"\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b",
                0,
                None,
            ),
            rule(
                "aws_secret_key",
                r#"(?i)aws_?secret_?access_?key["']?\s*[:=]\s*["']?([A-Za-z0-9/+=]{40})"#,
                1,
                None,
            ),
            rule(
                "github_token",
                r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})",
                0,
                None,
            ),
            rule("gitlab_token", r"\bglpat-[A-Za-z0-9_\-]{20,}", 0, None),
            rule(
                "slack_webhook",
                r"https://hooks\.slack\.com/services/[A-Za-z0-9/_\-]+",
                0,
                None,
            ),
            rule("slack_token", r"\bxox[abprse]-[A-Za-z0-9\-]{10,}", 0, None),
            rule(
                "stripe_key",
                r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}",
                0,
                None,
            ),
            rule("google_api_key", r"\bAIza[0-9A-Za-z_\-]{35}", 0, None),
            rule(
                "azure_storage_key",
                r"AccountKey=([A-Za-z0-9+/]{86}==)",
                1,
                None,
            ),
            rule("npm_token", r"\bnpm_[A-Za-z0-9]{36}\b", 0, None),
            rule(
                "pypi_token",
                r"\bpypi-AgEIcHlwaS5vcmc[A-Za-z0-9_\-]{50,}",
                0,
                None,
            ),
            rule(
                "jwt",
                r"\beyJ[A-Za-z0-9_\-]{5,}\.eyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{10,}",
                0,
                None,
            ),
            rule(
                "url_credentials",
                r"\b[a-zA-Z][a-zA-Z0-9+.\-]*://([^\s:/@\[\]]+:[^\s@/\[\]]+)@",
                1,
                None,
            ),
            rule(
                "password_assignment",
                r#"(?i)\b[A-Za-z0-9_\-]*(?:password|passwd|pwd|secret|token|api_?key|apikey|api-key)[A-Za-z0-9_\-]*\b["']?\s*[:=]\s*["']?([^\s"'`,;()\]}]{4,})"#,
                1,
                Some(assignment_ok),
            ),
            rule(
                "email",
                r"\b[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}\b",
                0,
                None,
            ),
            rule("credit_card", r"\b\d(?:[ \-]?\d){12,18}\b", 0, Some(luhn)),
            rule(
                "iban",
                r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b",
                0,
                Some(iban_ok),
            ),
            rule("us_ssn", r"\b\d{3}-\d{2}-\d{4}\b", 0, Some(ssn_ok)),
            rule(
                "phone",
                r"(?:\+[1-9]\d{0,2}[\s.\-]?(?:\(\d{1,4}\)[\s.\-]?)?\d{1,4}(?:[\s.\-]?\d{2,4}){1,4}|\(\d{3}\)\s?\d{3}-\d{4}|\b\d{3}-\d{3}-\d{4})\b",
                0,
                Some(phone_ok),
            ),
            rule(
                "ipv4",
                r"\b(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\b",
                0,
                Some(ipv4_ok),
            ),
            rule(
                "ipv6",
                r"(?i)(?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{1,4}\b",
                0,
                Some(ipv6_ok),
            ),
            rule(
                "high_entropy",
                r"\b[A-Za-z0-9+_\-]{32,}={0,2}",
                0,
                Some(high_entropy_ok),
            ),
        ];
        Redactor { rules }
    }

    pub fn redact(&self, text: &str) -> Redacted {
        let mut found: Vec<(usize, usize, usize)> = Vec::new(); // start, end, rule index
        for (ri, r) in self.rules.iter().enumerate() {
            for caps in r.re.captures_iter(text) {
                let Some(m) = caps.get(r.group) else { continue };
                if m.as_str().starts_with("[REDACTED") {
                    continue;
                }
                // A `+` number followed by a decimal part is a float, not a phone.
                if r.kind == "phone"
                    && (text[..m.start()].ends_with(|c: char| c.is_ascii_alphanumeric())
                        || text[m.end()..]
                            .starts_with(|c: char| c.is_ascii_digit() || c == '.' || c == '-'))
                {
                    continue;
                }
                // Version strings like 1.2.3.4.5 are not addresses.
                if r.kind == "ipv4" {
                    let before = text[..m.start()].chars().next_back();
                    let after = text[m.end()..].chars().next();
                    if matches!(before, Some('.') | Some('v'))
                        || (after == Some('.')
                            && text[m.end() + 1..].starts_with(|c: char| c.is_ascii_digit()))
                    {
                        continue;
                    }
                }
                if r.check.is_some_and(|c| !c(m.as_str())) {
                    continue;
                }
                found.push((m.start(), m.end(), ri));
            }
        }
        // Earliest start wins, then the longest, then the rule listed first.
        found.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
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
}

/// Redacts with a shared, lazily compiled `Redactor`.
pub fn redact(text: &str) -> String {
    static R: OnceLock<Redactor> = OnceLock::new();
    R.get_or_init(Redactor::new).redact(text).text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> String {
        redact(s)
    }

    #[test]
    fn provider_formats() {
        let cases = [
            ("key sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789ABCD_-xyz end", "key [REDACTED:anthropic_api_key] end"),
            ("OPENAI=sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z", "OPENAI=[REDACTED:openai_api_key]"),
            ("id AKIAIOSFODNN7EXAMPLE here", "id [REDACTED:aws_access_key] here"),
            ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "aws_secret_access_key = [REDACTED:aws_secret_key]"),
            ("ghp_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghij", "[REDACTED:github_token]"),
            ("glpat-abcdefghij0123456789", "[REDACTED:gitlab_token]"),
            ("xoxb-123456789012-abcdefghij", "[REDACTED:slack_token]"),
            ("post to https://hooks.slack.com/services/T000/B000/XXXX now", "post to [REDACTED:slack_webhook] now"),
            ("sk_live_4eC39HqLyjWDarjtT1zdp7dc", "[REDACTED:stripe_key]"),
            ("AIzaSyA-1234567890abcdefghijklmnopqrstu", "[REDACTED:google_api_key]"),
            ("npm_abcdefghijklmnopqrstuvwxyz0123456789", "[REDACTED:npm_token]"),
            ("tly_agent_0123456789abcdef0123456789abcdef", "[REDACTED:tally_token]"),
            ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U", "[REDACTED:jwt]"),
            ("postgres://admin:hunter2@db.internal:5432/x", "postgres://[REDACTED:url_credentials]@db.internal:5432/x"),
            ("DB_PASSWORD=s3cr3t-value", "DB_PASSWORD=[REDACTED:password_assignment]"),
            ("{\"api_key\": \"abc123def\"}", "{\"api_key\": \"[REDACTED:password_assignment]\"}"),
        ];
        for (input, want) in cases {
            assert_eq!(r(input), want, "input: {input}");
        }
        let pem = "x\n-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\nabc\n-----END RSA PRIVATE KEY-----\ny";
        assert_eq!(r(pem), "x\n[REDACTED:private_key]\ny");
    }

    #[test]
    fn pii_with_checksums() {
        assert_eq!(
            r("mail jane.doe@example.com ok"),
            "mail [REDACTED:email] ok"
        );
        assert_eq!(
            r("card 4111 1111 1111 1111."),
            "card [REDACTED:credit_card]."
        );
        assert_eq!(r("card 4111 1111 1111 1112."), "card 4111 1111 1111 1112.");
        assert_eq!(
            r("IBAN DE89 3704 0044 0532 0130 00"),
            "IBAN [REDACTED:iban]"
        );
        assert_eq!(
            r("IBAN DE88 3704 0044 0532 0130 00"),
            "IBAN DE88 3704 0044 0532 0130 00"
        );
        assert_eq!(r("ssn 123-45-6789"), "ssn [REDACTED:us_ssn]");
        assert_eq!(r("ssn 000-12-3456"), "ssn 000-12-3456");
        assert_eq!(
            r("call +44 20 7946 0958 today"),
            "call [REDACTED:phone] today"
        );
        assert_eq!(r("call (415) 555-2671"), "call [REDACTED:phone]");
        assert_eq!(r("x = 1e+1441497364.649"), "x = 1e+1441497364.649");
        assert_eq!(r("host 10.1.2.3 up"), "host [REDACTED:ipv4] up");
        assert_eq!(r("bind 127.0.0.1:8787"), "bind 127.0.0.1:8787");
        assert_eq!(r("version 1.2.3.4.5"), "version 1.2.3.4.5");
        assert_eq!(
            r("v6 2001:db8:85a3::8a2e:370:7334 x"),
            "v6 [REDACTED:ipv6] x"
        );
    }

    #[test]
    fn leaves_code_alone() {
        for s in [
            "let token = self.token.clone();",
            "fn password(&self) -> String",
            "commit 3f786850e387550fdab836ed7e6dc881de23001b fixed it",
            "id 550e8400-e29b-41d4-a716-446655440000",
            "use std::collections::HashMap;",
            "version = \"1.0.219\"",
            "2025-11-22T10:00:00Z",
            "ThisIsAVeryLongIdentifierNameForAClassObject",
        ] {
            assert_eq!(r(s), s);
        }
    }

    #[test]
    fn high_entropy_and_idempotence() {
        assert_eq!(
            r("blob Zx9Qw3Er7Ty1Ui5Op0As8Df2Gh6Jk4Lz end"),
            "blob [REDACTED:high_entropy] end"
        );
        let once = r("k=AKIAIOSFODNN7EXAMPLE password=hunter22 mail a@b.co");
        assert_eq!(once, "k=[REDACTED:aws_access_key] password=[REDACTED:password_assignment] mail [REDACTED:email]");
        assert_eq!(r(&once), once);
        assert_eq!(r(""), "");
        let rd = Redactor::new().redact("é AKIAIOSFODNN7EXAMPLE");
        assert_eq!(
            rd.findings,
            vec![Finding {
                kind: "aws_access_key",
                start: 3,
                end: 23
            }]
        );
    }
}
