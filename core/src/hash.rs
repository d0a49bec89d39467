//! Keyed hashes. Everything that identifies a person, a path or a credential is
//! stored or sent only as HMAC-SHA256 under a secret the other side lacks:
//! the team salt never reaches the edge's storage in clear with the paths, and
//! the pepper never leaves the Worker's secrets.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail.
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(msg);
    mac.finalize().into_bytes().into()
}

pub fn hmac_hex(key: &[u8], msg: &[u8]) -> String {
    hex::encode(hmac_sha256(key, msg))
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Project identity: the same working directory maps to the same id for the
/// whole team (shared salt) and to nothing guessable outside it.
pub fn project_hash(team_salt: &str, cwd: &str) -> String {
    hmac_hex(team_salt.as_bytes(), format!("cwd\0{cwd}").as_bytes())
}

/// Branch identity, keyed like the project: the same branch name maps to the
/// same id for the whole team and to nothing guessable outside it. Callers
/// pass a name `privacy::branch_of` admitted (never the empty string).
pub fn branch_hash(team_salt: &str, branch: &str) -> String {
    hmac_hex(team_salt.as_bytes(), format!("branch\0{branch}").as_bytes())
}

pub fn session_hash(team_salt: &str, session_id: &str) -> String {
    hmac_hex(
        team_salt.as_bytes(),
        format!("session\0{session_id}").as_bytes(),
    )
}

/// Lookup key for a bearer credential (install, agent, sign-in, web session).
/// A database dump alone cannot be replayed because the pepper is a Worker secret.
pub fn token_hash(pepper: &str, token: &str) -> String {
    hmac_hex(pepper.as_bytes(), token.as_bytes())
}

/// Stable event id, so a re-parse or resend of the same request is recognisably
/// the same event on both sides.
pub fn event_id(agent: &str, message_id: &str, request_id: &str) -> String {
    let full = sha256_hex(format!("{agent}\0{message_id}\0{request_id}").as_bytes());
    full[..32].to_string()
}

/// Formats a credential from caller-supplied random bytes (the caller owns the RNG).
pub fn format_token(prefix: &str, random: &[u8; 32]) -> String {
    format!("{prefix}{}", hex::encode(random))
}

pub fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc4231_case_2() {
        assert_eq!(
            hmac_hex(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn project_hash_depends_on_salt_and_path() {
        let a = project_hash("salt-a", "/home/dev/repo");
        assert_eq!(a.len(), 64);
        assert_eq!(a, project_hash("salt-a", "/home/dev/repo"));
        assert_ne!(a, project_hash("salt-b", "/home/dev/repo"));
        assert_ne!(a, project_hash("salt-a", "/home/dev/repo2"));
        // Domain separation: a session id equal to a path must not collide.
        assert_ne!(a, session_hash("salt-a", "/home/dev/repo"));
    }

    #[test]
    fn tokens_and_ids() {
        let t = format_token("tly_agent_", &[0xab; 32]);
        assert_eq!(t.len(), "tly_agent_".len() + 64);
        assert!(t.starts_with("tly_agent_abab"));
        assert_eq!(event_id("claude_code", "msg_1", "req_1").len(), 32);
        assert_ne!(
            event_id("claude_code", "msg_1", "req_1"),
            event_id("claude_code", "msg_1", "req_2")
        );
        assert!(is_hex(&sha256_hex(b"x"), 64));
        assert!(!is_hex("ABCD", 4));
    }
}
