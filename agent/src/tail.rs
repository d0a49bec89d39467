//! Reading complete lines of append-only logs from a byte offset, in bounded
//! memory, and recognising a file again after a restart, a rename, a
//! truncation or a replacement.

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// Lines longer than this (plus up to one read chunk) are skipped (and counted as malformed) without being
/// buffered: no real transcript line comes near it, and a runaway writer must
/// not make the agent allocate without bound.
pub const MAX_LINE: usize = 64 << 20;

const CHUNK: usize = 1 << 20;
/// Bytes of the first line that identify a file's content.
const FP_BYTES: usize = 4096;

/// Where reading of one file stopped, and what the file was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub dev: u64,
    pub ino: u64,
    /// Hash of the first line (its first 4 KiB); 0 until the first line is complete.
    pub fingerprint: u64,
    /// Byte offset just past the last line that was consumed.
    pub offset: u64,
    /// Size and mtime at the last read, so an unchanged file is not opened.
    pub size: u64,
    pub mtime_ms: i64,
}

/// What a file is now, from `stat` alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime_ms: i64,
}

pub fn stat(path: &Path) -> std::io::Result<FileId> {
    let m = std::fs::metadata(path)?;
    Ok(FileId {
        dev: m.dev(),
        ino: m.ino(),
        size: m.size(),
        mtime_ms: m.mtime() * 1000 + m.mtime_nsec() / 1_000_000,
    })
}

/// FNV-1a: a fingerprint needs stability across versions, not cryptographic strength.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    // 0 means "no fingerprint yet".
    h.max(1)
}

/// Reads the first-line fingerprint of a file (0 when the first line is not complete).
pub fn fingerprint(path: &Path) -> u64 {
    let Ok(mut f) = std::fs::File::open(path) else {
        return 0;
    };
    let mut buf = vec![0u8; FP_BYTES];
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    fingerprint_of(&buf[..n], n == FP_BYTES)
}

fn fingerprint_of(head: &[u8], more: bool) -> u64 {
    match memchr_nl(head) {
        Some(i) => fnv1a(&head[..i]),
        // A first line longer than the window is identified by the window.
        None if more => fnv1a(head),
        None => 0,
    }
}

fn memchr_nl(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'\n')
}

/// How to start reading a file, given its previous checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// Nothing changed since the checkpoint.
    Unchanged,
    /// Continue at this offset.
    At(u64),
    /// A different or truncated file: read from the start.
    Restart,
}

pub fn resume(prev: Option<&Checkpoint>, now: &FileId, fp_now: impl FnOnce() -> u64) -> Resume {
    let Some(p) = prev else {
        return Resume::Restart;
    };
    if p.dev != now.dev || p.ino != now.ino || now.size < p.offset {
        return Resume::Restart;
    }
    // Checked before the fingerprint so a warm run opens no unchanged file.
    if now.size == p.size && now.mtime_ms == p.mtime_ms && p.offset == p.size {
        return Resume::Unchanged;
    }
    // Same inode, but the content may have been rewritten in place (or the
    // inode reused after a delete): the first line must be the same one.
    if p.fingerprint != 0 && fp_now() != p.fingerprint {
        return Resume::Restart;
    }
    Resume::At(p.offset)
}

/// Calls `f(offset_of_line, line)` for every complete line from `start`, and
/// returns the offset just past the last complete line. An unterminated last
/// line is left for a later read (the writer is mid-line). Lines over
/// `MAX_LINE` are reported as `None` and never held in memory whole.
pub fn read_lines(
    file: &mut impl Read,
    start: u64,
    mut f: impl FnMut(u64, Option<&[u8]>),
) -> std::io::Result<u64> {
    let mut buf: Vec<u8> = Vec::with_capacity(CHUNK);
    // File offset of buf[0].
    let mut base = start;
    // Start of an overlong line whose newline has not been seen yet.
    let mut skip_start: Option<u64> = None;
    loop {
        let old = buf.len();
        // Reads of one chunk at a time keep the overlong-line check effective.
        buf.resize(old + CHUNK, 0);
        let n = loop {
            match file.read(&mut buf[old..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        buf.truncate(old + n);
        if n == 0 {
            return Ok(skip_start.unwrap_or(base));
        }
        let mut line_start = 0usize;
        let mut pos = old;
        if let Some(s) = skip_start {
            match memchr::memchr(b'\n', &buf[pos..]) {
                Some(i) => {
                    f(s, None);
                    skip_start = None;
                    line_start = pos + i + 1;
                    pos = line_start;
                }
                None => {
                    base += buf.len() as u64;
                    buf.clear();
                    continue;
                }
            }
        }
        while let Some(i) = memchr::memchr(b'\n', &buf[pos..]) {
            let end = pos + i;
            f(base + line_start as u64, Some(&buf[line_start..end]));
            line_start = end + 1;
            pos = line_start;
        }
        buf.drain(..line_start);
        base += line_start as u64;
        if buf.len() > MAX_LINE {
            skip_start = Some(base);
            base += buf.len() as u64;
            buf.clear();
            buf.shrink_to(CHUNK);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Lines = Vec<(u64, Option<Vec<u8>>)>;

    fn collect(data: &[u8], start: u64) -> (Lines, u64) {
        let mut out = Vec::new();
        let mut cur = std::io::Cursor::new(data[start as usize..].to_vec());
        // Long contents are summarised so a failure prints a readable diff.
        let end = read_lines(&mut cur, start, |off, l| {
            out.push((
                off,
                l.map(|b| match b.len() {
                    0..=64 => b.to_vec(),
                    n => format!("<{n} bytes of {}>", b[0] as char).into_bytes(),
                }),
            ))
        })
        .unwrap();
        (out, end)
    }

    #[test]
    fn complete_lines_only_and_exact_offsets() {
        let (lines, end) = collect(b"ab\ncde\nfg", 0);
        assert_eq!(
            lines,
            vec![(0, Some(b"ab".to_vec())), (3, Some(b"cde".to_vec()))]
        );
        assert_eq!(end, 7);
        let (lines, end) = collect(b"ab\ncde\nfg\n", 7);
        assert_eq!(lines, vec![(7, Some(b"fg".to_vec()))]);
        assert_eq!(end, 10);
        let (lines, end) = collect(b"", 0);
        assert!(lines.is_empty());
        assert_eq!(end, 0);
    }

    #[test]
    fn lines_spanning_many_chunks() {
        let long = vec![b'x'; CHUNK * 3 + 17];
        let mut data = long.clone();
        data.push(b'\n');
        data.extend_from_slice(b"tail\n");
        let (lines, end) = collect(&data, 0);
        assert_eq!(lines.len(), 2);
        let summary = format!("<{} bytes of x>", long.len()).into_bytes();
        assert_eq!(lines[0].1.as_deref(), Some(&summary[..]));
        assert_eq!(lines[1], ((CHUNK * 3 + 18) as u64, Some(b"tail".to_vec())));
        assert_eq!(end, data.len() as u64);
    }

    #[test]
    fn overlong_lines_are_skipped_without_buffering() {
        let mut data = b"a\n".to_vec();
        data.extend(std::iter::repeat_n(b'y', MAX_LINE + 2 * CHUNK));
        data.extend_from_slice(b"\nb\n");
        let (lines, end) = collect(&data, 0);
        assert_eq!(
            lines,
            vec![
                (0, Some(b"a".to_vec())),
                (2, None),
                ((MAX_LINE + 2 * CHUNK + 3) as u64, Some(b"b".to_vec()))
            ]
        );
        assert_eq!(end, data.len() as u64);
        // Unterminated overlong tail: the checkpoint stays at its start.
        let mut data = b"a\n".to_vec();
        data.extend(std::iter::repeat_n(b'y', MAX_LINE + 5));
        let (lines, end) = collect(&data, 0);
        assert_eq!(lines, vec![(0, Some(b"a".to_vec()))]);
        assert_eq!(end, 2);
    }

    #[test]
    fn resume_rules() {
        let id = FileId {
            dev: 1,
            ino: 2,
            size: 100,
            mtime_ms: 5,
        };
        let cp = Checkpoint {
            dev: 1,
            ino: 2,
            fingerprint: 77,
            offset: 100,
            size: 100,
            mtime_ms: 5,
        };
        assert_eq!(resume(None, &id, || 77), Resume::Restart);
        assert_eq!(resume(Some(&cp), &id, || 77), Resume::Unchanged);
        let grown = FileId {
            size: 150,
            mtime_ms: 6,
            ..id
        };
        assert_eq!(resume(Some(&cp), &grown, || 77), Resume::At(100));
        let truncated = FileId { size: 40, ..id };
        assert_eq!(resume(Some(&cp), &truncated, || 77), Resume::Restart);
        let replaced = FileId { ino: 3, ..grown };
        assert_eq!(resume(Some(&cp), &replaced, || 77), Resume::Restart);
        // Rewritten in place with different content of at least the same size.
        assert_eq!(resume(Some(&cp), &grown, || 78), Resume::Restart);
    }

    #[test]
    fn fingerprints() {
        assert_eq!(fingerprint_of(b"abc", false), 0);
        assert_eq!(fingerprint_of(b"abc\ndef", false), fnv1a(b"abc"));
        assert_ne!(fingerprint_of(b"abd\n", false), fnv1a(b"abc"));
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
    }
}
