//! `POST /v1/events`: authenticate, bound, decode, rate-limit, restrict to the
//! team's mode, handle permitted text, aggregate, and queue the rollup.

mod agent;
mod body;

pub use agent::{agent_config, authenticate_agent, enroll, team_gone};

use serde::Serialize;
use tally_core::bucket::{BucketConfig, Take};
use tally_core::event::PrivacyMode;
use tally_core::pricing::{default_table, reprice};
use tally_core::privacy::restrict;
use tally_core::rollup::{aggregate, split_id};
use tally_core::wire::{decode_batch, BatchError, MAX_BATCH_BYTES};
use worker::{Env, Request, Response, Result};

use crate::bindings;
use crate::consumer::QueuePart;
use crate::db::TeamDb;
use crate::util::{json_error, json_status, now_ms};
use body::{read_body, BodyError};

/// Rows per queue message: a few hundred bytes each keeps every message far
/// below the 128 KB queue limit.
const ROWS_PER_MESSAGE: usize = 150;

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
}

#[derive(Serialize)]
struct Invalid<'a> {
    error: &'static str,
    message: String,
    #[serde(flatten)]
    detail: &'a BatchError,
}

pub async fn events(mut req: Request, env: Env) -> Result<Response> {
    let principal = match authenticate_agent(&req, &env).await? {
        Ok(p) => p,
        Err(resp) => return Ok(resp),
    };
    if let Ok(Some(len)) = req.headers().get("Content-Length") {
        if len.parse::<usize>().is_ok_and(|n| n > MAX_BATCH_BYTES) {
            return json_error(413, "too_large", "batch body is larger than 1 MiB");
        }
    }
    let gzip = req
        .headers()
        .get("Content-Encoding")?
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    let body = match read_body(req.bytes().await?, gzip) {
        Ok(b) => b,
        Err(BodyError::TooLarge) => {
            return json_error(413, "too_large", "batch body is larger than 1 MiB")
        }
        Err(BodyError::BadGzip) => {
            return json_error(
                400,
                "bad_gzip",
                "Content-Encoding is gzip but the body is not valid gzip",
            )
        }
    };
    let now = now_ms();
    let batch = match decode_batch(&body, now) {
        Ok(b) => b,
        Err(e) => {
            return json_status(
                400,
                &Invalid {
                    error: "invalid_batch",
                    message: e.to_string(),
                    detail: &e,
                },
            )
        }
    };
    let db = TeamDb::new(&env, &principal)?;
    let team = db.settings().await?;
    if let Some(resp) = team_gone(&team)? {
        return Ok(resp);
    }
    let config = BucketConfig {
        capacity: team.rate_capacity.max(0) as u64,
        per_minute: team.rate_per_minute.max(0) as u64,
    };
    match crate::limiter::take_tokens(&env, db.team_id(), batch.events.len() as u64, config).await?
    {
        Take::Granted { .. } => {}
        Take::Limited { retry_after_secs } => {
            let mut resp = json_error(
                429,
                "rate_limited",
                "team event budget exhausted; retry later",
            )?;
            resp.headers_mut()
                .set("Retry-After", &retry_after_secs.to_string())?;
            return Ok(resp);
        }
        Take::TooLarge { capacity } => {
            return json_error(
                413,
                "batch_exceeds_rate_capacity",
                &format!("batch has more events than the team's burst capacity of {capacity}"),
            )
        }
    }
    let mode = team.mode();
    let mut restricted = 0;
    let events: Vec<_> = batch
        .events
        .iter()
        .map(|e| {
            let r = restrict(e, mode);
            if r != *e {
                restricted += 1;
            }
            r
        })
        .collect();
    // Content handling (categorization, R2) happens here, before the queue, so
    // that text never rests anywhere the team did not choose.
    // The stored numbers are the edge's: the agent's prices only count
    // disagreements, shown per agent on the Developers page.
    let mut events = events;
    let repriced = reprice(default_table(), &mut events);
    let (events, categorized) = crate::content::process(
        &env,
        &db,
        &team,
        &principal.developer_id,
        &batch.batch_id,
        events,
        now,
    )
    .await?;

    let parts = aggregate(&events).split(ROWS_PER_MESSAGE);
    let split = split_id(&parts);
    let queue = env.queue(bindings::EVENTS_QUEUE)?;
    for (k, rollup) in parts.into_iter().enumerate() {
        let first = k == 0;
        queue
            .send(QueuePart {
                team_id: db.team_id().to_string(),
                developer_id: principal.developer_id.clone(),
                agent_id: principal.agent_id.clone(),
                marker: batch.batch_id.clone(),
                part: k as u32,
                split: split.clone(),
                received_at: now,
                rollup,
                categorize: (first && categorized != Default::default()).then_some(categorized),
                disagreements: if first { repriced.disagreements } else { 0 },
            })
            .await?;
    }
    let reported = AgentReport::from_headers(&req);
    db.touch_agent(
        &principal.agent_id,
        now,
        reported.quarantined,
        reported.version.as_deref(),
    )
    .await?;
    json_status(
        202,
        &Accepted {
            batch_id: batch.batch_id,
            accepted: events.len(),
            privacy_mode: mode,
            restricted,
        },
    )
}
