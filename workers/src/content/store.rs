//! The R2 content store of Full mode. Content is dated by when it was said and
//! filed per session: one object per (day, session, batch) under
//! `teams/<team>/content/<YYYY-MM-DD>/<session>/<batch>.json`, sealed with
//! AES-256-GCM under the team's HKDF key with the object key as associated
//! data, and indexed in D1 (`content_objects`) so a session's timeline is
//! found without listing a day and retention knows each object's day.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use tally_core::event::{AgentKind, PrivacyMode, WireEvent};
use tally_core::redact::redact;
use tally_core::seal::{derive_team_key, open, seal};
use tally_core::time::{utc_date, DAY_MS};
use tally_core::usage::TokenUsage;
use worker::{Env, Result};

use crate::bindings;
use crate::db::{ContentObject, TeamDb};
use crate::util::{random32, required};

/// What one sealed object holds.
#[derive(Debug, Serialize, Deserialize)]
pub struct StoredContent {
    pub batch_id: String,
    pub team_id: String,
    pub session: String,
    pub day: String,
    pub events: Vec<StoredEvent>,
}

/// One request as the timeline shows it: numbers (as the edge priced them)
/// and the text Full mode admitted, redacted again at the edge.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredEvent {
    pub id: String,
    pub ts: i64,
    pub agent: AgentKind,
    pub model: String,
    pub tokens: TokenUsage,
    pub cost_pico_usd: Option<u64>,
    pub project: String,
    /// The mode the request was captured under.
    pub mode: PrivacyMode,
    pub prompt: Option<String>,
    pub response: Option<String>,
    #[serde(default)]
    pub tools: Vec<String>,
}

/// The prefix of every content object of a team; hard deletion removes
/// `teams/<team>/` as a whole.
pub fn content_prefix(team_id: &str) -> String {
    format!("teams/{team_id}/content/")
}

pub fn object_key(team_id: &str, day_ms: i64, session: &str, batch_id: &str) -> String {
    format!(
        "{}{}/{session}/{batch_id}.json",
        content_prefix(team_id),
        utc_date(day_ms)
    )
}

/// The unix day a content key is filed under, if it is one of ours.
pub fn key_day(team_id: &str, key: &str) -> Option<i64> {
    let rest = key.strip_prefix(&content_prefix(team_id))?;
    let day = rest.split('/').next()?;
    tally_core::time::parse_date(day)
}

fn team_key(env: &Env, team_id: &str) -> Result<[u8; 32]> {
    let secret = required(env, bindings::CONTENT_KEY)?;
    Ok(derive_team_key(secret.as_bytes(), team_id))
}

/// The events carrying text, redacted again and grouped per (day, session),
/// each group in time order: what `store` seals, one object per group.
pub fn redacted_groups(events: &[WireEvent]) -> BTreeMap<(i64, &str), Vec<StoredEvent>> {
    let mut groups: BTreeMap<(i64, &str), Vec<StoredEvent>> = BTreeMap::new();
    for e in events
        .iter()
        .filter(|e| e.prompt.is_some() || e.response.is_some() || e.tools.is_some())
    {
        groups
            .entry((e.ts.div_euclid(DAY_MS), e.session.as_str()))
            .or_default()
            .push(StoredEvent {
                id: e.id.clone(),
                ts: e.ts,
                agent: e.agent,
                model: e.model.clone(),
                tokens: e.tokens,
                cost_pico_usd: e.cost_pico_usd,
                project: e.project.clone(),
                mode: e.mode,
                // Redacted again at the edge: an old or modified agent must not
                // be able to plant secrets in storage.
                prompt: e.prompt.as_deref().map(redact),
                response: e.response.as_deref().map(redact),
                tools: e.tools.clone().unwrap_or_default(),
            });
    }
    for evs in groups.values_mut() {
        evs.sort_by_key(|e| e.ts);
    }
    groups
}

/// One object's sealed bytes: the content as JSON under the team's key, the
/// object key as associated data.
pub fn sealed_object(
    team_key: &[u8; 32],
    nonce: [u8; 12],
    key: &str,
    content: &StoredContent,
) -> Result<Vec<u8>> {
    let plain = serde_json::to_vec(content)?;
    Ok(seal(team_key, nonce, &plain, key.as_bytes()))
}

/// Seals the text fields the mode let through, one object per day and
/// session; events without text write nothing. Idempotent: a resent batch
/// writes the same keys again.
pub async fn store(
    env: &Env,
    db: &TeamDb,
    developer_id: &str,
    batch_id: &str,
    events: &[WireEvent],
    now: i64,
) -> Result<usize> {
    let groups = redacted_groups(events);
    if groups.is_empty() {
        return Ok(0);
    }
    let team_id = db.team_id();
    let key_bytes = team_key(env, team_id)?;
    let bucket = env.bucket(bindings::CONTENT_BUCKET)?;
    let mut index = Vec::with_capacity(groups.len());
    for ((day, session), evs) in groups {
        let key = object_key(team_id, day * DAY_MS, session, batch_id);
        let (first_ts, last_ts) = (evs[0].ts, evs[evs.len() - 1].ts);
        let n = evs.len();
        let rnd = random32()?;
        let mut nonce = [0u8; 12];
        nonce.copy_from_slice(&rnd[..12]);
        let content = StoredContent {
            batch_id: batch_id.to_string(),
            team_id: team_id.to_string(),
            session: session.to_string(),
            day: utc_date(day * DAY_MS),
            events: evs,
        };
        let sealed = sealed_object(&key_bytes, nonce, &key, &content)?;
        let bytes = sealed.len();
        let meta: HashMap<String, String> = HashMap::from([
            ("team".to_string(), team_id.to_string()),
            ("day".to_string(), utc_date(day * DAY_MS)),
            ("enc".to_string(), "aes-256-gcm;hkdf-sha256;v2".to_string()),
        ]);
        bucket
            .put(key.clone(), sealed)
            .custom_metadata(meta)
            .execute()
            .await?;
        index.push(ContentObject {
            key,
            session: session.to_string(),
            developer_id: developer_id.to_string(),
            day,
            batch_id: batch_id.to_string(),
            events: n as i64,
            bytes: bytes as i64,
            first_ts,
            last_ts,
        });
    }
    let written = index.len();
    db.add_content_objects(&index, now).await?;
    Ok(written)
}

/// Opens one object of the team: decrypted here, for this request only.
pub async fn read(env: &Env, team_id: &str, key: &str) -> Result<Option<StoredContent>> {
    if !key.starts_with(&content_prefix(team_id)) {
        return Ok(None);
    }
    let Some(obj) = env
        .bucket(bindings::CONTENT_BUCKET)?
        .get(key)
        .execute()
        .await?
    else {
        return Ok(None);
    };
    let Some(body) = obj.body() else {
        return Ok(None);
    };
    let sealed = body.bytes().await?;
    let plain = open(&team_key(env, team_id)?, &sealed, key.as_bytes())
        .map_err(|e| worker::Error::RustError(format!("content {key} does not open: {e}")))?;
    Ok(Some(serde_json::from_slice(&plain)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_dated_by_the_event_and_filed_by_session() {
        let day = 20_000 * DAY_MS + 5;
        let k = object_key("t1", day, "abc", "batch-1");
        assert_eq!(k, "teams/t1/content/2024-10-04/abc/batch-1.json");
        assert_eq!(key_day("t1", &k), Some(20_000));
        assert_eq!(key_day("t2", &k), None, "another team's key");
        assert_eq!(key_day("t1", "teams/t1/content/garbage/x.json"), None);
    }
}
