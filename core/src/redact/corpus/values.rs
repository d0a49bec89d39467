//! Random values of each format, valid where the format has a checksum.

use super::super::checks::{iban_mod97, luhn_sum};
use super::{base64, Rng, B62, B64, B64URL, DIGITS};

fn luhn_complete(prefix: &str, len: usize, rng: &mut Rng) -> String {
    let mut s = prefix.to_string();
    s.push_str(&rng.digits(len - prefix.len() - 1));
    // With a 0 in the check position the sum falls short of a multiple of
    // 10 by exactly the check digit.
    let mut d: Vec<u32> = s.chars().map(|c| c.to_digit(10).unwrap_or(0)).collect();
    d.push(0);
    s.push(char::from_digit((10 - luhn_sum(&d) % 10) % 10, 10).unwrap_or('0'));
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

pub(super) fn iban(rng: &mut Rng) -> String {
    // Bank-code letters, then account digits.
    let lettered = |rng: &mut Rng, letters: usize, digits: usize| {
        let bank = rng.chars("ABCDEFGHIJKLMNOPQRSTUVWXYZ", letters);
        bank + &rng.digits(digits)
    };
    let (cc, bban) = match rng.below(8) {
        0 => ("DE", rng.digits(18)),
        1 => ("FR", rng.digits(23)),
        2 => ("GB", lettered(rng, 4, 14)),
        3 => ("NL", lettered(rng, 4, 10)),
        4 => ("ES", rng.digits(20)),
        5 => ("IT", lettered(rng, 1, 22)),
        6 => ("BE", rng.digits(12)),
        _ => ("CH", rng.digits(17)),
    };
    let rem = iban_mod97(bban.bytes().chain(cc.bytes()).chain(*b"00")).unwrap_or(0);
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

pub(super) fn phone(rng: &mut Rng) -> String {
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

pub(super) fn ipv4(rng: &mut Rng) -> String {
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

pub(super) fn ipv6(rng: &mut Rng) -> String {
    let g: Vec<String> = (0..8)
        .map(|_| format!("{:x}", rng.below(0x10000)))
        .collect();
    match rng.below(3) {
        0 => g.join(":"),
        1 => format!("2001:db8:{}::{}", g[2], g[7]),
        _ => format!("fe80::{}:{}:{}:{}", g[4], g[5], g[6], g[7]),
    }
}

pub(super) fn ssn(rng: &mut Rng) -> String {
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

pub(super) fn card(rng: &mut Rng) -> String {
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

/// Symbols password generators draw from: all printable ASCII punctuation
/// except the quotes and backslash, which would end or escape a quoted value.
const SYMBOLS: &str = "!#$%&()*+,-./:;<=>?@[]^_{|}~";

/// What a password manager generates with symbols on: 12–24 characters,
/// at least one lower, upper, digit and two symbols, in random order.
pub(super) fn generated_password(rng: &mut Rng) -> String {
    let all = format!("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789{SYMBOLS}");
    let n = rng.range(12, 24);
    let mut p: Vec<u8> = [
        rng.chars("abcdefghijklmnopqrstuvwxyz", 1),
        rng.chars("ABCDEFGHIJKLMNOPQRSTUVWXYZ", 1),
        rng.chars(DIGITS, 1),
        rng.chars(SYMBOLS, 2),
        rng.chars(&all, n - 5),
    ]
    .concat()
    .into_bytes();
    for i in (1..p.len()).rev() {
        p.swap(i, rng.below(i + 1));
    }
    String::from_utf8(p).unwrap_or_default()
}

pub(super) fn password(rng: &mut Rng) -> String {
    match rng.below(4) {
        3 => generated_password(rng),
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

pub(super) fn pem(rng: &mut Rng) -> String {
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

pub(super) fn jwt(rng: &mut Rng) -> String {
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
