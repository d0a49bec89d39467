//! AES-256-GCM sealing shared by the agent's outbox and the edge's R2 content.
//! The caller supplies the nonce (from its platform RNG) so this stays pure.

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use hkdf::Hkdf;
use sha2::Sha256;

pub const NONCE_LEN: usize = 12;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("ciphertext too short")]
    Truncated,
    #[error("authentication failed: wrong key or tampered data")]
    Auth,
}

/// Per-team content key: one deployment secret, no key table to lose, and one
/// team's key reveals nothing about another's.
pub fn derive_team_key(deployment_secret: &[u8], team_id: &str) -> [u8; 32] {
    let hk = Hkdf::<Sha256>::new(Some(b"tally-content-v1"), deployment_secret);
    let mut out = [0u8; 32];
    // 32 bytes is far below HKDF-SHA256's 8160-byte limit.
    hk.expand(team_id.as_bytes(), &mut out)
        .expect("32-byte HKDF output is always valid");
    out
}

/// Per-team key for integration secrets (Slack webhook URLs, bot tokens),
/// from `KMS_KEY`: a salt of its own, so it never equals the content key
/// even if an operator reused one secret for both.
pub fn derive_integration_key(kms_key: &[u8], team_id: &str) -> [u8; 32] {
    let hk = Hkdf::<Sha256>::new(Some(b"tally-integrations-v1"), kms_key);
    let mut out = [0u8; 32];
    hk.expand(team_id.as_bytes(), &mut out)
        .expect("32-byte HKDF output is always valid");
    out
}

/// Output: nonce ‖ ciphertext ‖ tag. `aad` binds the blob to its context (a key path).
pub fn seal(key: &[u8; 32], nonce: [u8; NONCE_LEN], plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
    let cipher = Aes256Gcm::new(key.into());
    let ct = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .expect("AES-GCM encryption of in-memory data cannot fail");
    let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    out
}

pub fn open(key: &[u8; 32], sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, SealError> {
    if sealed.len() < NONCE_LEN + 16 {
        return Err(SealError::Truncated);
    }
    let (nonce, ct) = sealed.split_at(NONCE_LEN);
    Aes256Gcm::new(key.into())
        .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad })
        .map_err(|_| SealError::Auth)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper_detection() {
        let k = derive_team_key(b"deployment", "team-a");
        assert_ne!(k, derive_team_key(b"deployment", "team-b"));
        let sealed = seal(&k, [7; 12], b"hello", b"teams/a/x");
        assert_eq!(sealed.len(), 12 + 5 + 16);
        assert_eq!(open(&k, &sealed, b"teams/a/x").unwrap(), b"hello");
        assert_eq!(open(&k, &sealed, b"teams/b/x"), Err(SealError::Auth));
        let mut bad = sealed.clone();
        bad[14] ^= 1;
        assert_eq!(open(&k, &bad, b"teams/a/x"), Err(SealError::Auth));
        assert_eq!(open(&k, &sealed[..20], b""), Err(SealError::Truncated));
        assert_ne!(derive_integration_key(b"deployment", "team-a"), k);
        let other = derive_team_key(b"deployment", "team-b");
        assert_eq!(open(&other, &sealed, b"teams/a/x"), Err(SealError::Auth));
    }
}
