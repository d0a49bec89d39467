//! The R2 content store of Full mode: one object per batch, sealed with
//! AES-256-GCM under the team's HKDF key with the object key as associated data.

use std::collections::HashMap;

use serde::Serialize;
use tally_core::event::WireEvent;
use tally_core::redact::redact;
use tally_core::seal::{derive_team_key, seal};
use tally_core::time::utc_date;
use worker::{Env, Result};

use crate::bindings;
use crate::util::{random32, required};

#[derive(Serialize)]
struct StoredContent<'a> {
    batch_id: &'a str,
    team_id: &'a str,
    events: Vec<StoredEvent<'a>>,
}

#[derive(Serialize)]
struct StoredEvent<'a> {
    id: &'a str,
    ts: i64,
    session: &'a str,
    project: &'a str,
    model: &'a str,
    prompt: Option<String>,
    response: Option<String>,
    tools: Option<&'a Vec<String>>,
}

fn content_key(team_id: &str, received_at: i64, batch_id: &str) -> String {
    format!(
        "teams/{team_id}/content/{}/{batch_id}.json",
        utc_date(received_at)
    )
}

/// Seals the text fields the mode let through; events without text write nothing.
pub async fn store(
    env: &Env,
    team_id: &str,
    batch_id: &str,
    events: &[WireEvent],
    now: i64,
) -> Result<()> {
    let stored: Vec<StoredEvent> = events
        .iter()
        .filter(|e| e.prompt.is_some() || e.response.is_some() || e.tools.is_some())
        .map(|e| StoredEvent {
            id: &e.id,
            ts: e.ts,
            session: &e.session,
            project: &e.project,
            model: &e.model,
            // Redacted again at the edge: an old or modified agent must not
            // be able to plant secrets in storage.
            prompt: e.prompt.as_deref().map(redact),
            response: e.response.as_deref().map(redact),
            tools: e.tools.as_ref(),
        })
        .collect();
    if !stored.is_empty() {
        let key = content_key(team_id, now, batch_id);
        let plain = serde_json::to_vec(&StoredContent {
            batch_id,
            team_id,
            events: stored,
        })?;
        let secret = required(env, bindings::CONTENT_KEY)?;
        let team_key = derive_team_key(secret.as_bytes(), team_id);
        let nonce: [u8; 12] = random32()?[..12].try_into().expect("12 of 32 bytes");
        let sealed = seal(&team_key, nonce, &plain, key.as_bytes());
        let meta: HashMap<String, String> = HashMap::from([
            ("team".to_string(), team_id.to_string()),
            ("day".to_string(), utc_date(now)),
            ("enc".to_string(), "aes-256-gcm;hkdf-sha256;v1".to_string()),
        ]);
        env.bucket(bindings::CONTENT_BUCKET)?
            .put(key, sealed)
            .custom_metadata(meta)
            .execute()
            .await?;
    }
    Ok(())
}
