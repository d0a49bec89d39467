//! Reading a batch body within the size limit, gzip included.

use std::io::Read;

use tally_core::wire::MAX_BATCH_BYTES;

#[derive(Debug, PartialEq, Eq)]
pub enum BodyError {
    TooLarge,
    BadGzip,
}

/// The body as the decoder sees it: never more than `MAX_BATCH_BYTES`, however
/// well the gzip compresses.
pub fn read_body(raw: Vec<u8>, gzip: bool) -> Result<Vec<u8>, BodyError> {
    if raw.len() > MAX_BATCH_BYTES {
        return Err(BodyError::TooLarge);
    }
    if !gzip {
        return Ok(raw);
    }
    let mut out = Vec::new();
    // Read one byte past the limit so an oversized (or zip-bomb) body is
    // detected without inflating all of it.
    match flate2::read::GzDecoder::new(&raw[..])
        .take(MAX_BATCH_BYTES as u64 + 1)
        .read_to_end(&mut out)
    {
        Ok(_) if out.len() > MAX_BATCH_BYTES => Err(BodyError::TooLarge),
        Ok(_) => Ok(out),
        Err(_) => Err(BodyError::BadGzip),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn plain_bodies_pass_up_to_the_limit() {
        assert_eq!(read_body(b"{}".to_vec(), false), Ok(b"{}".to_vec()));
        let max = vec![b' '; MAX_BATCH_BYTES];
        assert_eq!(
            read_body(max.clone(), false).map(|b| b.len()),
            Ok(MAX_BATCH_BYTES)
        );
        let over = vec![b' '; MAX_BATCH_BYTES + 1];
        assert_eq!(read_body(over, false), Err(BodyError::TooLarge));
    }

    #[test]
    fn gzip_is_inflated_and_bounded() {
        assert_eq!(read_body(gz(b"{\"a\":1}"), true), Ok(b"{\"a\":1}".to_vec()));
        let exact = vec![b'x'; MAX_BATCH_BYTES];
        assert_eq!(
            read_body(gz(&exact), true).map(|b| b.len()),
            Ok(MAX_BATCH_BYTES)
        );
        // 64 MiB of zeros compresses to ~64 KiB: a bomb must stop at the limit.
        let bomb = gz(&vec![0u8; 64 << 20]);
        assert!(bomb.len() < MAX_BATCH_BYTES);
        assert_eq!(read_body(bomb, true), Err(BodyError::TooLarge));
    }

    #[test]
    fn broken_gzip_is_rejected() {
        assert_eq!(
            read_body(b"not gzip".to_vec(), true),
            Err(BodyError::BadGzip)
        );
        let mut cut = gz(&[b'y'; 4096]);
        cut.truncate(cut.len() / 2);
        assert_eq!(read_body(cut, true), Err(BodyError::BadGzip));
    }
}
