//! Integration secrets at rest: AES-256-GCM under a per-team key derived
//! (HKDF-SHA256) from the deployment secret `KMS_KEY`, with the team and the
//! integration as associated data, so a sealed value copied to another row
//! or team does not open. Without `KMS_KEY` nothing is sealed or opened:
//! integrations are disabled (fail closed).

use tally_core::seal::{derive_integration_key, open, seal};
use worker::Env;

use crate::bindings;
use crate::util::{config, random32};

pub fn kms_key(env: &Env) -> Option<String> {
    config(env, bindings::KMS_KEY)
}

fn aad(team_id: &str, integration_id: &str) -> Vec<u8> {
    format!("{team_id}\u{0}{integration_id}").into_bytes()
}

/// hex(nonce ‖ ciphertext ‖ tag), as stored in `integrations.secret_sealed`.
pub fn seal_secret(
    kms: &str,
    team_id: &str,
    integration_id: &str,
    secret: &str,
) -> worker::Result<String> {
    let key = derive_integration_key(kms.as_bytes(), team_id);
    let mut nonce = [0u8; 12];
    nonce.copy_from_slice(&random32()?[..12]);
    Ok(hex::encode(seal(
        &key,
        nonce,
        secret.as_bytes(),
        &aad(team_id, integration_id),
    )))
}

pub fn open_secret(
    kms: &str,
    team_id: &str,
    integration_id: &str,
    sealed_hex: &str,
) -> Result<String, String> {
    let key = derive_integration_key(kms.as_bytes(), team_id);
    let sealed = hex::decode(sealed_hex).map_err(|e| e.to_string())?;
    let plain = open(&key, &sealed, &aad(team_id, integration_id)).map_err(|e| e.to_string())?;
    String::from_utf8(plain).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_only_for_its_team_and_integration() {
        let key = derive_integration_key(b"kms", "team-a");
        let sealed = hex::encode(seal(
            &key,
            [3; 12],
            b"https://hooks.slack.com/services/T/B/X",
            &aad("team-a", "i1"),
        ));
        assert!(!sealed.contains(&hex::encode("hooks.slack.com")));
        assert_eq!(
            open_secret("kms", "team-a", "i1", &sealed).unwrap(),
            "https://hooks.slack.com/services/T/B/X"
        );
        assert!(open_secret("kms", "team-a", "i2", &sealed).is_err());
        assert!(open_secret("kms", "team-b", "i1", &sealed).is_err());
        assert!(open_secret("other", "team-a", "i1", &sealed).is_err());
    }
}
