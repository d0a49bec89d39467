//! `POST /v1/events` and the agent-facing enrollment/config routes.

use std::io::Read;

use serde::{Deserialize, Serialize};
use tally_core::bucket::{BucketConfig, Take};
use tally_core::event::{decode_batch, BatchError, PrivacyMode, MAX_BATCH_BYTES};
use tally_core::hash::{format_token, token_hash};
use tally_core::privacy::restrict;
use tally_core::rollup::{aggregate, Rollup};
use worker::{Env, Request, Response, Result};

use crate::bindings;
use crate::db::{AgentPrincipal, ServiceDb, TeamDb};
use crate::util::{bearer, json_error, json_status, now_ms, random32, random_id, required};

/// Rows per queue message: a few hundred bytes each keeps every message far
/// below the 128 KB queue limit.
const ROWS_PER_MESSAGE: usize = 150;

#[derive(Debug, Serialize, Deserialize)]
pub struct QueuePart {
    pub team_id: String,
    pub developer_id: String,
    /// Batch id, suffixed with the part number when a batch needed several messages.
    pub marker: String,
    pub received_at: i64,
    pub rollup: Rollup,
    /// Cloud categorization figures of the batch, carried by its first part only.
    #[serde(default)]
    pub categorize: Option<crate::content::CategorizeStats>,
}

pub async fn authenticate_agent(
    req: &Request,
    env: &Env,
) -> Result<std::result::Result<AgentPrincipal, Response>> {
    let Some(token) = bearer(req) else {
        return Ok(Err(json_error(
            401,
            "unauthorized",
            "missing bearer agent token",
        )?));
    };
    if !token.starts_with("tly_agent_") {
        return Ok(Err(json_error(401, "unauthorized", "not an agent token")?));
    }
    let pepper = required(env, bindings::PEPPER)?;
    match ServiceDb::new(env)?
        .agent_by_token(&token_hash(&pepper, &token))
        .await?
    {
        None => Ok(Err(json_error(401, "unauthorized", "unknown agent token")?)),
        Some(p) if p.revoked() => Ok(Err(json_error(
            403,
            "revoked",
            "this agent token was revoked by a team admin; ask for a new install token",
        )?)),
        Some(p) => Ok(Ok(p)),
    }
}

#[derive(Deserialize)]
struct EnrollRequest {
    token: String,
    #[serde(default)]
    hostname: Option<String>,
}

#[derive(Serialize)]
struct EnrollResponse {
    agent_token: String,
    agent_id: String,
    team_id: String,
    developer_id: String,
    salt: String,
    privacy_mode: PrivacyMode,
}

pub async fn enroll(mut req: Request, env: Env) -> Result<Response> {
    let body: EnrollRequest = match req.json().await {
        Ok(b) => b,
        Err(_) => {
            return json_error(
                400,
                "bad_request",
                "expected JSON {\"token\": \"tly_inst_...\"}",
            )
        }
    };
    if !body.token.starts_with("tly_inst_") {
        return json_error(
            400,
            "bad_request",
            "token must be a one-time install token (tly_inst_...)",
        );
    }
    let pepper = required(&env, bindings::PEPPER)?;
    let now = now_ms();
    let Some(grant) = ServiceDb::new(&env)?
        .consume_install_token(&token_hash(&pepper, &body.token), now)
        .await?
    else {
        return json_error(
            401,
            "invalid_token",
            "install token is unknown, expired or already used",
        );
    };
    let db = TeamDb::new(&env, &grant)?;
    let agent_token = format_token("tly_agent_", &random32()?);
    let agent_id = random_id()?;
    let hostname = body
        .hostname
        .as_deref()
        .map(|h| tally_core::privacy::truncate_utf8(h, 128));
    db.add_agent(
        &agent_id,
        &grant.developer_id,
        &token_hash(&pepper, &agent_token),
        hostname,
        now,
    )
    .await?;
    let team = db.settings().await?;
    json_status(
        200,
        &EnrollResponse {
            agent_token,
            agent_id,
            team_id: team.id.clone(),
            developer_id: grant.developer_id.clone(),
            privacy_mode: team.mode(),
            salt: team.salt,
        },
    )
}

#[derive(Serialize)]
struct AgentConfig {
    team_id: String,
    privacy_mode: PrivacyMode,
    salt: String,
}

pub async fn agent_config(req: Request, env: Env) -> Result<Response> {
    let p = match authenticate_agent(&req, &env).await? {
        Ok(p) => p,
        Err(resp) => return Ok(resp),
    };
    let team = TeamDb::new(&env, &p)?.settings().await?;
    json_status(
        200,
        &AgentConfig {
            team_id: team.id.clone(),
            privacy_mode: team.mode(),
            salt: team.salt,
        },
    )
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

fn read_body(raw: Vec<u8>, gzip: bool) -> std::result::Result<Vec<u8>, &'static str> {
    if raw.len() > MAX_BATCH_BYTES {
        return Err("too_large");
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
        Ok(_) if out.len() > MAX_BATCH_BYTES => Err("too_large"),
        Ok(_) => Ok(out),
        Err(_) => Err("bad_gzip"),
    }
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
        Err("too_large") => return json_error(413, "too_large", "batch body is larger than 1 MiB"),
        Err(_) => {
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
    let (events, categorized) =
        crate::content::process(&env, db.team_id(), &team, &batch.batch_id, events, now).await?;

    let parts = aggregate(&events).split(ROWS_PER_MESSAGE);
    let n = parts.len();
    let queue = env.queue(bindings::EVENTS_QUEUE)?;
    for (k, rollup) in parts.into_iter().enumerate() {
        let marker = if n == 1 {
            batch.batch_id.clone()
        } else {
            format!("{}#{k}", batch.batch_id)
        };
        queue
            .send(QueuePart {
                team_id: db.team_id().to_string(),
                developer_id: principal.developer_id.clone(),
                marker,
                received_at: now,
                rollup,
                categorize: (k == 0 && categorized != Default::default()).then_some(categorized),
            })
            .await?;
    }
    db.touch_agent(&principal.agent_id, now).await?;
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
