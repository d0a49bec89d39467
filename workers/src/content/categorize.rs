//! Categorize-cloud: each distinct prompt of a batch is redacted again and sent
//! to Claude Haiku inside the ingest request; only the structured answer
//! survives, the prompt is dropped here.

use futures_util::future::join_all;
use tally_core::bucket::{BucketConfig, Take};
use tally_core::categorize::{anthropic_request, parse_anthropic_response, ModelUsage};
use tally_core::event::{Categorization, WireEvent};
use tally_core::money::Usd;
use tally_core::redact::redact;
use tally_core::time::DAY_MS;
use worker::{Env, Result};

use crate::anthropic::Client;
use crate::bindings;
use crate::db::{CategorizeLimits, CategorizeStats, TeamDb};
use crate::util::config;

/// Per batch; beyond it prompts stay uncategorized (and are counted), which
/// bounds the subrequests and the latency of one ingest request.
const DEFAULT_MAX_CALLS: usize = 25;
const CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(8);

async fn call_haiku(
    client: &Client,
    prompt: &str,
) -> std::result::Result<(Categorization, ModelUsage), String> {
    let body = anthropic_request(&client.model, &redact(prompt)).to_string();
    let text = client.messages(body, CALL_TIMEOUT).await?;
    parse_anthropic_response(&text)
}

/// Why a batch's prompts may not be sent at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cap {
    /// Today's spend reached the team's daily budget.
    Budget,
    /// More calls this minute than the team allows.
    Rate,
}

/// The budget check: spent today against the team's daily budget (exact
/// pico-USD). A batch already under way may overshoot by its own calls.
pub fn over_budget(spent: Usd, limits: &CategorizeLimits) -> bool {
    spent.pico() >= (limits.budget_micro_usd.max(0) as u128) * 1_000_000
}

/// The per-minute call cap as a bucket: a minute's calls at once, refilled per minute.
pub fn call_bucket(limits: &CategorizeLimits) -> BucketConfig {
    let n = limits.per_minute.max(0) as u64;
    BucketConfig {
        capacity: n,
        per_minute: n,
    }
}

/// Whether `calls` may go out now for this team, and if not, why.
async fn cap(env: &Env, db: &TeamDb, now: i64, calls: u64) -> Result<Option<Cap>> {
    let limits = db.categorize_limits().await?;
    let spent = db.categorize_spent(now.div_euclid(DAY_MS)).await?;
    if over_budget(
        Usd::from_parts(spent.cost_micro_usd, spent.cost_pico_usd),
        &limits,
    ) {
        return Ok(Some(Cap::Budget));
    }
    let key = format!("categorize:{}", db.team_id());
    Ok(
        match crate::limiter::take_tokens(env, &key, calls, call_bucket(&limits)).await? {
            Take::Granted { .. } => None,
            _ => Some(Cap::Rate),
        },
    )
}

/// Categorize-cloud: every distinct prompt of the batch is redacted again and
/// sent to Claude Haiku; the answer replaces the prompt, which is dropped here.
/// Beyond the team's daily budget or call rate the prompts are dropped
/// uncategorized and counted (`skipped`, `skipped_cap`).
pub async fn categorize(
    env: &Env,
    db: &TeamDb,
    now: i64,
    events: &mut [WireEvent],
) -> Result<CategorizeStats> {
    let mut stats = CategorizeStats::default();
    let prompts: Vec<usize> = (0..events.len())
        .filter(|&i| events[i].prompt.is_some())
        .collect();
    if prompts.is_empty() {
        return Ok(stats);
    }
    let Some(client) = Client::from_env(env) else {
        stats.skipped = prompts.len() as u64;
        worker::console_warn!(
            "categorize-cloud: ANTHROPIC_API_KEY is not configured; {} prompts left uncategorized",
            prompts.len()
        );
        return Ok(stats);
    };
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
    let mut asked: Vec<String> = distinct.iter().take(max_calls).cloned().collect();
    if let Some(why) = cap(env, db, now, asked.len() as u64).await? {
        worker::console_warn!(
            "categorize-cloud: {why:?} cap reached; {} prompts left uncategorized",
            prompts.len()
        );
        asked.clear();
        stats.skipped_cap = prompts.len() as u64;
    }
    let answers = join_all(asked.iter().map(|p| call_haiku(&client, p))).await;
    let mut by_prompt = std::collections::HashMap::new();
    for (p, a) in asked.iter().zip(answers) {
        stats.calls += 1;
        match a {
            Ok((c, u)) => {
                stats.input_tokens += u.input_tokens;
                stats.output_tokens += u.output_tokens;
                if let Some(c) = client.price(&u) {
                    stats.cost += c;
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
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_exact_to_the_pico() {
        let five = CategorizeLimits {
            budget_micro_usd: 5_000_000,
            per_minute: 60,
        };
        assert!(!over_budget(Usd::from_pico(4_999_999_999_999), &five));
        assert!(over_budget(Usd::from_pico(5_000_000_000_000), &five));
        let zero = CategorizeLimits {
            budget_micro_usd: 0,
            per_minute: 60,
        };
        assert!(over_budget(Usd::ZERO, &zero));
        assert_eq!(
            call_bucket(&five),
            BucketConfig {
                capacity: 60,
                per_minute: 60
            }
        );
    }
}
