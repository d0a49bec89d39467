//! The agent-facing routes besides ingest: enrollment with a one-time install
//! token, the config an agent polls, and agent-token authentication.

use serde::{Deserialize, Serialize};
use tally_core::event::PrivacyMode;
use tally_core::hash::{format_token, token_hash};
use worker::{Env, Request, Response};

use crate::bindings;
use crate::db::{AgentPrincipal, ServiceDb, TeamDb, TeamSettings};
use crate::error::ApiError;
use crate::util::{bearer, json_status, now_ms, random32, random_id, required};

pub type Answer = Result<Response, ApiError>;

pub async fn authenticate_agent(req: &Request, env: &Env) -> Result<AgentPrincipal, ApiError> {
    authenticate_token(req, env, "tly_agent_", "agent").await
}

/// Agent tokens and OTLP tokens live in one table; the prefix keeps each to
/// its own routes.
pub async fn authenticate_token(
    req: &Request,
    env: &Env,
    prefix: &str,
    what: &str,
) -> Result<AgentPrincipal, ApiError> {
    let Some(token) = bearer(req) else {
        return Err(ApiError::unauthorized(format!(
            "missing bearer {what} token"
        )));
    };
    if !token.starts_with(prefix) {
        return Err(ApiError::unauthorized(format!(
            "not an {what} token ({prefix}...)"
        )));
    }
    let pepper = required(env, bindings::PEPPER)?;
    let Some(service) = ServiceDb::for_credential(env, &token)? else {
        return Err(ApiError::unauthorized(format!("unknown {what} token")));
    };
    match service.agent_by_token(&token_hash(&pepper, &token)).await? {
        None => Err(ApiError::unauthorized(format!("unknown {what} token"))),
        Some(p) if p.revoked() => Err(ApiError::Forbidden {
            code: "revoked",
            message: format!("this {what} token was revoked by a team admin; ask for a new one")
                .into(),
        }),
        Some(p) => Ok(p),
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

pub async fn enroll(mut req: Request, env: Env) -> Answer {
    let body: EnrollRequest = req
        .json()
        .await
        .map_err(|_| ApiError::bad_request("expected JSON {\"token\": \"tly_inst_...\"}"))?;
    if !body.token.starts_with("tly_inst_") {
        return Err(ApiError::bad_request(
            "token must be a one-time install token (tly_inst_...)",
        ));
    }
    let pepper = required(&env, bindings::PEPPER)?;
    let now = now_ms();
    let service = ServiceDb::for_credential(&env, &body.token)?;
    let grant = match service {
        Some(s) => {
            s.consume_install_token(&token_hash(&pepper, &body.token), now)
                .await?
        }
        None => None,
    };
    let Some(grant) = grant else {
        return Err(ApiError::Unauthorized {
            code: "invalid_token",
            message: "install token is unknown, expired or already used".into(),
        });
    };
    let db = TeamDb::new(&env, &grant)?;
    let team = db.settings().await?;
    team_gone(&team)?;
    let agent_token = db.credential(&format_token("tly_agent_", &random32()?));
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
    Ok(json_status(
        200,
        &EnrollResponse {
            agent_token,
            agent_id,
            team_id: team.id.clone(),
            developer_id: grant.developer_id.clone(),
            privacy_mode: team.mode(),
            salt: team.salt,
        },
    )?)
}

#[derive(Serialize)]
struct AgentConfig {
    team_id: String,
    privacy_mode: PrivacyMode,
    salt: String,
    /// The team's burst capacity: agents keep batches at or below it.
    rate_capacity: i64,
    /// Seconds between uploads; agents still ship at once when a batch is
    /// full, on shutdown and on `tally run --once`.
    ship_interval_s: i64,
    /// Which path counts this developer's Claude Code and Codex usage; the
    /// agent skips what the OTLP export counts.
    source_path: tally_core::source_path::SourcePath,
    /// Agents older than this say so in `tally status` and `tally doctor`.
    #[serde(skip_serializing_if = "Option::is_none")]
    min_agent_version: Option<String>,
}

pub async fn agent_config(req: Request, env: Env) -> Answer {
    let p = authenticate_agent(&req, &env).await?;
    let db = TeamDb::new(&env, &p)?;
    let team = db.settings().await?;
    team_gone(&team)?;
    let source_path = db.source_path(&p.developer_id).await?;
    Ok(json_status(
        200,
        &AgentConfig {
            team_id: team.id.clone(),
            privacy_mode: team.mode(),
            salt: team.salt,
            rate_capacity: team.rate_capacity,
            ship_interval_s: team.ship_interval_s,
            source_path,
            min_agent_version: crate::util::config(&env, crate::bindings::MIN_AGENT_VERSION),
        },
    )?)
}

/// A team scheduled for deletion takes no more data: 410 tells agents to stop
/// (they say so in `tally status`) rather than retry.
pub fn team_gone(team: &TeamSettings) -> Result<(), ApiError> {
    match team.delete_after {
        Some(at) if team.deleted_at.is_some() => Err(ApiError::Gone {
            code: "team_deleted",
            message: format!(
                "this team was deleted by its owner and will be erased on {}; uploads are refused",
                tally_core::time::utc_date(at)
            )
            .into(),
        }),
        _ => Ok(()),
    }
}
