//! `POST /v1/events`: authenticate, bound, decode, rate-limit, restrict to the
//! team's mode, handle permitted text, aggregate, and queue the rollup.

mod agent;
pub mod body;
mod otlp;
pub mod otlp_map;

pub use agent::{agent_config, authenticate_agent, enroll, team_gone, Answer};
pub use otlp::{otlp_logs, otlp_metrics};

use serde::Serialize;
use tally_core::bucket::{BucketConfig, Take};
use tally_core::event::{PrivacyMode, WireEvent};
use tally_core::pricing::{default_table, reprice};
use tally_core::privacy::restrict;
use tally_core::rollup::{aggregate, split_id};
use tally_core::source_path::Path;
use tally_core::wire::{decode_batch, MAX_BATCH_BYTES};
use worker::{Env, Request};

use crate::bindings;
use crate::consumer::QueuePart;
use crate::db::CategorizeStats;
use crate::db::{TeamDb, TeamSettings};
use crate::error::ApiError;
use crate::util::{json_status, now_ms};
pub(crate) use body::{read_body, BodyError};

/// Rows per queue message: a few hundred bytes each keeps every message far
/// below the 128 KB queue limit.
pub const ROWS_PER_MESSAGE: usize = 150;

/// Each event restricted to the team's current mode, and how many changed.
pub fn restrict_all(events: &[WireEvent], mode: PrivacyMode) -> (Vec<WireEvent>, usize) {
    let mut restricted = 0;
    let events = events
        .iter()
        .map(|e| {
            let r = restrict(e, mode);
            if r != *e {
                restricted += 1;
            }
            r
        })
        .collect();
    (events, restricted)
}

/// Who sent a batch and where its team lives: what every queue part names.
pub struct Sender<'a> {
    pub team_id: &'a str,
    pub shard: &'a str,
    pub developer_id: &'a str,
    pub agent_id: &'a str,
}

/// The batch's rollup split into queue messages; the first carries the
/// batch's categorization figures and price disagreements.
pub fn queue_parts(
    from: &Sender<'_>,
    batch_id: &str,
    events: &[WireEvent],
    categorized: CategorizeStats,
    disagreements: u64,
    now: i64,
) -> Vec<QueuePart> {
    let mut rollup = aggregate(events);
    // Branch names are stored, so they are redacted again here like any
    // text the edge keeps (idempotent on what the agent already redacted).
    for b in &mut rollup.branch_names {
        b.name = tally_core::redact::redact(&b.name);
    }
    let parts = rollup.split(ROWS_PER_MESSAGE);
    let split = split_id(&parts);
    parts
        .into_iter()
        .enumerate()
        .map(|(k, rollup)| {
            let first = k == 0;
            QueuePart {
                team_id: from.team_id.to_string(),
                shard: Some(from.shard.to_string()),
                developer_id: from.developer_id.to_string(),
                agent_id: from.agent_id.to_string(),
                marker: batch_id.to_string(),
                part: k as u32,
                split: split.clone(),
                received_at: now,
                rollup,
                categorize: (first && categorized != Default::default()).then_some(categorized),
                disagreements: if first { disagreements } else { 0 },
            }
        })
        .collect()
}

/// What an agent says about itself on each upload: events it set aside
/// (quarantined or given up) and its version, shown to admins.
struct AgentReport {
    quarantined: Option<i64>,
    version: Option<String>,
}

impl AgentReport {
    fn from_headers(req: &Request) -> AgentReport {
        let h = req.headers();
        AgentReport {
            quarantined: h
                .get("Tally-Quarantined")
                .ok()
                .flatten()
                .and_then(|v| v.trim().parse::<i64>().ok())
                .map(|n| n.clamp(0, i64::from(u32::MAX))),
            version: h
                .get("Tally-Agent-Version")
                .ok()
                .flatten()
                .map(|v| v.trim().chars().take(32).collect::<String>())
                .filter(|v| {
                    !v.is_empty()
                        && v.chars()
                            .all(|c| c.is_ascii_alphanumeric() || ".-+".contains(c))
                }),
        }
    }
}

#[derive(Serialize)]
struct Accepted {
    batch_id: String,
    accepted: usize,
    privacy_mode: PrivacyMode,
    restricted: usize,
    /// Claude Code / Codex requests this developer's OTLP export counts.
    skipped_otlp: usize,
}

fn too_large() -> ApiError {
    ApiError::PayloadTooLarge {
        code: "too_large",
        message: "batch body is larger than 1 MiB".into(),
    }
}

pub async fn events(mut req: Request, env: Env) -> Answer {
    let principal = authenticate_agent(&req, &env).await?;
    if let Ok(Some(len)) = req.headers().get("Content-Length") {
        if len.parse::<usize>().is_ok_and(|n| n > MAX_BATCH_BYTES) {
            return Err(too_large());
        }
    }
    let gzip = req
        .headers()
        .get("Content-Encoding")?
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    let body = read_body(req.bytes().await?, gzip).map_err(|e| match e {
        BodyError::TooLarge => too_large(),
        BodyError::BadGzip => ApiError::BadRequest {
            code: "bad_gzip",
            message: "Content-Encoding is gzip but the body is not valid gzip".into(),
        },
    })?;
    let now = now_ms();
    // One renderer for every error body: `message` appears once.
    let batch = decode_batch(&body, now)?;
    let db = TeamDb::new(&env, &principal)?;
    let team = db.settings().await?;
    team_gone(&team)?;
    // Usage the developer's OTLP export counts is not counted twice.
    let path = db.source_path(&principal.developer_id).await?;
    let (events, skipped): (Vec<_>, Vec<_>) = batch.events.into_iter().partition(|e| {
        !tally_core::source_path::covers(e.agent) || path.path_at(e.ts) == Path::Agent
    });
    let (accepted, restricted) = accept(
        &env,
        &db,
        &team,
        &principal.developer_id,
        &principal.agent_id,
        &batch.batch_id,
        events,
        now,
    )
    .await?;
    let mode = team.mode();
    let reported = AgentReport::from_headers(&req);
    db.touch_agent(
        &principal.agent_id,
        now,
        reported.quarantined,
        reported.version.as_deref(),
    )
    .await?;
    Ok(json_status(
        202,
        &Accepted {
            batch_id: batch.batch_id,
            accepted,
            privacy_mode: mode,
            restricted,
            skipped_otlp: skipped.len(),
        },
    )?)
}

/// The one path from decoded events to the queue, shared by `/v1/events`,
/// OTLP and the Cursor pull: rate limit, restrict to the team's mode,
/// re-price, content, rollup. `agent_id` is the token whose price
/// disagreements are counted (empty: none, as for Cursor).
/// Returns how many events were queued and how many were restricted.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn accept(
    env: &Env,
    db: &TeamDb,
    team: &TeamSettings,
    developer_id: &str,
    agent_id: &str,
    batch_id: &str,
    events: Vec<WireEvent>,
    now: i64,
) -> Result<(usize, usize), ApiError> {
    if events.is_empty() {
        return Ok((0, 0));
    }
    let config = BucketConfig {
        capacity: team.rate_capacity.max(0) as u64,
        per_minute: team.rate_per_minute.max(0) as u64,
    };
    match crate::limiter::take_tokens(env, db.team_id(), events.len() as u64, config).await? {
        Take::Granted { .. } => {}
        Take::Limited { retry_after_secs } => {
            return Err(ApiError::TooManyRequests {
                retry_after_s: retry_after_secs,
                message: "team event budget exhausted; retry later".into(),
            })
        }
        Take::TooLarge { capacity } => {
            return Err(ApiError::PayloadTooLarge {
                code: "batch_exceeds_rate_capacity",
                message: format!(
                    "batch has more events than the team's burst capacity of {capacity}"
                )
                .into(),
            })
        }
    }
    let mode = team.mode();
    let (mut events, restricted) = restrict_all(&events, mode);
    // The stored numbers are the edge's: the agent's prices only count
    // disagreements, shown per agent on the Developers page.
    let repriced = reprice(default_table(), &mut events);
    // Content handling (categorization, R2) happens here, before the queue, so
    // that text never rests anywhere the team did not choose.
    let (events, categorized) =
        crate::content::process(env, db, team, developer_id, batch_id, events, now).await?;

    let from = Sender {
        team_id: db.team_id(),
        shard: db.shard().binding(),
        developer_id,
        agent_id,
    };
    let parts = queue_parts(
        &from,
        batch_id,
        &events,
        categorized,
        repriced.disagreements,
        now,
    );
    let queue = env.queue(bindings::EVENTS_QUEUE)?;
    for part in parts {
        queue.send(part).await?;
    }
    Ok((events.len(), restricted))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tally_core::event::AgentKind;

    #[test]
    fn branch_names_are_redacted_again_before_the_queue() {
        let e = WireEvent {
            id: "0".repeat(32),
            ts: 1_763_800_000_000,
            agent: AgentKind::ClaudeCode,
            model: "claude-sonnet-4-5".into(),
            tokens: Default::default(),
            fast: false,
            cost_pico_usd: Some(1),
            project: "a".repeat(64),
            branch: "b".repeat(64),
            session: "c".repeat(64),
            mode: PrivacyMode::Full,
            // An agent that did not redact (or an older rule set).
            branch_name: Some("hotfix/ghp_0123456789abcdefghijABCDEFGHIJ0123456789".into()),
            category: None,
            prompt: None,
            response: None,
            tools: None,
        };
        let from = Sender {
            team_id: "t",
            shard: "DB",
            developer_id: "d",
            agent_id: "a",
        };
        let parts = queue_parts(&from, "batch", &[e], CategorizeStats::default(), 0, 0);
        let names: Vec<&str> = parts
            .iter()
            .flat_map(|p| &p.rollup.branch_names)
            .map(|b| b.name.as_str())
            .collect();
        assert_eq!(names, ["hotfix/[REDACTED:github_token]"]);
        assert_eq!(parts[0].rollup.quarters[0].0.branch, "b".repeat(64));
    }
}
