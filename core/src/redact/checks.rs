//! Validators for personal data whose format alone is too weak: a match must
//! also pass its checksum or numbering rules, which keeps order numbers, ids
//! and versions readable.

use super::Cand;

pub(super) fn email_ok(c: Cand) -> Option<(usize, usize)> {
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
pub(super) fn card_ok(c: Cand) -> Option<(usize, usize)> {
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
    // `is_multiple_of` would need Rust 1.87; the workspace targets 1.85.
    matches!(luhn_sum(&d) % 10, 0).then_some(c.secret)
}

/// Luhn sum with the check digit last: a valid number sums to a multiple of 10.
pub(super) fn luhn_sum(digits: &[u32]) -> u32 {
    digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &x)| match (i % 2, x * 2) {
            (0, _) => x,
            (_, y) if y > 9 => y - 9,
            (_, y) => y,
        })
        .sum()
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

pub(super) fn iban_refine(c: Cand) -> Option<(usize, usize)> {
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
    let rem = iban_mod97(compact[4..].iter().chain(&compact[..4]).copied())?;
    (rem == 1).then_some((c.secret.0, c.secret.0 + end))
}

/// ISO 7064 mod 97 of IBAN characters in checking order (letters count as
/// 10–35); `None` for a character an IBAN cannot hold.
pub(super) fn iban_mod97(chars: impl IntoIterator<Item = u8>) -> Option<u32> {
    let mut rem: u32 = 0;
    for b in chars {
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
    Some(rem)
}

pub(super) fn ssn_ok(c: Cand) -> Option<(usize, usize)> {
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

pub(super) fn phone_ok(c: Cand) -> Option<(usize, usize)> {
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

pub(super) fn ipv4_ok(c: Cand) -> Option<(usize, usize)> {
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

pub(super) fn ipv6_ok(c: Cand) -> Option<(usize, usize)> {
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
