//! The generic secret detector: long runs of key-alphabet characters judged
//! by character statistics and shape.

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
pub(super) fn chunks(s: &[u8]) -> usize {
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

/// Maximal runs of `is_run` bytes at least `MIN_RUN` long, as (start, end).
/// Tests the last byte of each 32-byte window first and jumps past the
/// last non-run byte in it, so ordinary text (words of a few letters) is
/// crossed several bytes per step instead of byte by byte.
fn long_runs(bytes: &[u8], is_run: fn(u8) -> bool) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut pos = 0;
    std::iter::from_fn(move || {
        #[cfg(test)]
        if super::tests::EXHAUSTIVE.with(std::cell::Cell::get) {
            // The plain byte-by-byte scan, to compare against.
            while pos < bytes.len() {
                if !is_run(bytes[pos]) {
                    pos += 1;
                    continue;
                }
                let s = pos;
                while pos < bytes.len() && is_run(bytes[pos]) {
                    pos += 1;
                }
                if pos - s >= MIN_RUN {
                    return Some((s, pos));
                }
            }
            return None;
        }
        // Invariant: no run starts before `pos` that was not returned, and
        // `pos` is 0 or sits on or just after a non-run byte.
        while pos + MIN_RUN <= bytes.len() {
            match bytes[pos..pos + MIN_RUN].iter().rposition(|&c| !is_run(c)) {
                Some(k) => pos += k + 1,
                None => {
                    let s = pos;
                    pos += MIN_RUN;
                    while pos < bytes.len() && is_run(bytes[pos]) {
                        pos += 1;
                    }
                    return Some((s, pos));
                }
            }
        }
        None
    })
}

const MIN_RUN: usize = 32;

/// Runs of `[A-Za-z0-9+/_-]` plus up to two `=`. A run with two or more
/// path words (`com/RustCrypto/media/…/logo`) is a path and is judged
/// piecewise between them, so a token inside a URL is hidden without eating
/// the readable path; one lowercase piece alone is common inside random
/// base64 (`…/blz/…`) and does not split it.
pub(super) fn high_entropy_candidates(text: &str, ri: usize, out: &mut Vec<(usize, usize, usize)>) {
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
    let is_run: fn(u8) -> bool = |c| RUN[c as usize];
    let mut push = |a: usize, b: usize| {
        let mut k = b;
        while k > a && bytes[k - 1] == b'=' {
            k -= 1;
        }
        if high_entropy_ok(&bytes[a..k]) {
            out.push((a, b, ri));
        }
    };
    for (mut s, i) in long_runs(bytes, is_run) {
        let mut e = i;
        while e < bytes.len() && e - i < 2 && bytes[e] == b'=' {
            e += 1;
        }
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
