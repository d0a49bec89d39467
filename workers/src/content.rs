//! What happens to text that an event's mode permitted. Runs inside the ingest
//! request, so text never reaches the queue, D1, or logs; only Full mode writes
//! it anywhere, and then encrypted under the team's key.

use std::collections::HashMap;

use futures_util::future::{join_all, select, Either};
use serde::Serialize;
use tally_core::categorize::{
    anthropic_request, parse_anthropic_response, ModelUsage, ANTHROPIC_VERSION,
    DEFAULT_ANTHROPIC_MODEL,
};
use tally_core::event::{Categorization, PrivacyMode, WireEvent};
use tally_core::redact::redact;
use tally_core::seal::{derive_team_key, seal};
use tally_core::time::utc_date;
use worker::{Env, Result};

use crate::bindings;
use crate::db::TeamSettings;
use crate::util::{config, random32, required};

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

pub fn content_key(team_id: &str, received_at: i64, batch_id: &str) -> String {
    format!(
        "teams/{team_id}/content/{}/{batch_id}.json",
        utc_date(received_at)
    )
}

/// What cloud categorization did for one batch, recorded per team.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CategorizeStats {
    pub calls: u64,
    pub failures: u64,
    /// Prompts left uncategorized because the per-batch call budget was spent.
    pub skipped: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_micro_usd: u64,
}

/// Per batch; beyond it prompts stay uncategorized (and are counted), which
/// bounds the subrequests and the latency of one ingest request.
const DEFAULT_MAX_CALLS: usize = 25;
const CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(8);

async fn call_haiku(
    base: &str,
    key: &str,
    model: &str,
    prompt: &str,
) -> std::result::Result<(Categorization, ModelUsage), String> {
    let body = anthropic_request(model, &redact(prompt)).to_string();
    let headers = worker::Headers::new();
    for (k, v) in [
        ("content-type", "application/json"),
        ("x-api-key", key),
        ("anthropic-version", ANTHROPIC_VERSION),
    ] {
        headers.set(k, v).map_err(|e| e.to_string())?;
    }
    let mut init = worker::RequestInit::new();
    init.with_method(worker::Method::Post)
        .with_headers(headers)
        .with_body(Some(body.into()));
    let req = worker::Request::new_with_init(
        &format!("{}/v1/messages", base.trim_end_matches('/')),
        &init,
    )
    .map_err(|e| e.to_string())?;
    let fetch = Box::pin(async move {
        let mut resp = worker::Fetch::Request(req)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = resp.status_code();
        let text = resp.text().await.map_err(|e| e.to_string())?;
        if status != 200 {
            return Err(format!(
                "HTTP {status}: {}",
                text.chars().take(200).collect::<String>()
            ));
        }
        parse_anthropic_response(&text)
    });
    match select(fetch, worker::Delay::from(CALL_TIMEOUT)).await {
        Either::Left((r, _)) => r,
        Either::Right(_) => Err("timed out".into()),
    }
}

/// Categorize-cloud: every distinct prompt of the batch is redacted again and
/// sent to Claude Haiku; the answer replaces the prompt, which is dropped here.
async fn categorize(env: &Env, events: &mut [WireEvent]) -> CategorizeStats {
    let mut stats = CategorizeStats::default();
    let prompts: Vec<usize> = (0..events.len())
        .filter(|&i| events[i].prompt.is_some())
        .collect();
    if prompts.is_empty() {
        return stats;
    }
    let (Some(key), base) = (
        config(env, bindings::ANTHROPIC_API_KEY),
        config(env, bindings::ANTHROPIC_BASE_URL)
            .unwrap_or_else(|| "https://api.anthropic.com".into()),
    ) else {
        stats.skipped = prompts.len() as u64;
        worker::console_warn!(
            "categorize-cloud: ANTHROPIC_API_KEY is not configured; {} prompts left uncategorized",
            prompts.len()
        );
        return stats;
    };
    let model =
        config(env, bindings::ANTHROPIC_MODEL).unwrap_or_else(|| DEFAULT_ANTHROPIC_MODEL.into());
    let max_calls = config(env, bindings::CATEGORIZE_MAX_PER_BATCH)
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_MAX_CALLS);
    // Identical prompts (retries, repeated commands) are asked about once.
    let mut distinct: Vec<String> = Vec::new();
    for &i in &prompts {
        let p = events[i].prompt.clone().unwrap_or_default();
        if !distinct.contains(&p) {
            distinct.push(p);
        }
    }
    let asked: Vec<String> = distinct.iter().take(max_calls).cloned().collect();
    let answers = join_all(asked.iter().map(|p| call_haiku(&base, &key, &model, p))).await;
    let table = tally_core::pricing::default_table();
    let mut by_prompt = std::collections::HashMap::new();
    for (p, a) in asked.iter().zip(answers) {
        stats.calls += 1;
        match a {
            Ok((c, u)) => {
                stats.input_tokens += u.input_tokens;
                stats.output_tokens += u.output_tokens;
                let usage = tally_core::usage::TokenUsage {
                    input: u.input_tokens,
                    output: u.output_tokens,
                    ..Default::default()
                };
                if let tally_core::pricing::Priced::Usd(c) =
                    tally_core::pricing::price_request(table, &model, &usage, false)
                {
                    stats.cost_micro_usd += c;
                }
                by_prompt.insert(p.clone(), c);
            }
            Err(e) => {
                stats.failures += 1;
                worker::console_warn!("categorize-cloud call failed: {e}");
            }
        }
    }
    for &i in &prompts {
        let p = events[i].prompt.take().unwrap_or_default();
        match by_prompt.get(&p) {
            Some(c) => events[i].category = Some(c.clone()),
            None if !asked.contains(&p) => stats.skipped += 1,
            None => {}
        }
    }
    stats
}

pub async fn process(
    env: &Env,
    team_id: &str,
    team: &TeamSettings,
    batch_id: &str,
    mut events: Vec<WireEvent>,
    now: i64,
) -> Result<(Vec<WireEvent>, CategorizeStats)> {
    let stats = if team.mode() == PrivacyMode::CategorizeCloud {
        categorize(env, &mut events).await
    } else {
        CategorizeStats::default()
    };
    if team.mode() == PrivacyMode::Full {
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
    }
    // Aggregation reads only the numeric fields and the category, so text
    // goes no further than this function whatever the mode.
    Ok((events, stats))
}
