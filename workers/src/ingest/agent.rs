//! The agent-facing routes besides ingest: enrollment with a one-time install
//! token, the config an agent polls, and agent-token authentication.

use serde::{Deserialize, Serialize};
use tally_core::event::PrivacyMode;
use tally_core::hash::{format_token, token_hash};
use worker::{Env, Request, Response, Result};

use crate::bindings;
use crate::db::{AgentPrincipal, ServiceDb, TeamDb};
use crate::util::{bearer, json_error, json_status, now_ms, random32, random_id, required};

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
    /// The team's burst capacity: agents keep batches at or below it.
    rate_capacity: i64,
}

pub async fn agent_config(req: Request, env: Env) -> Result<Response> {
    let p = match authenticate_agent(&req, &env).await? {
        Ok(p) => p,
        Err(resp) => return Ok(resp),
    };
    let team = TeamDb::new(&env, &p)?.settings().await?;
    if let Some(resp) = team_gone(&team)? {
        return Ok(resp);
    }
    json_status(
        200,
        &AgentConfig {
            team_id: team.id.clone(),
            privacy_mode: team.mode(),
            salt: team.salt,
            rate_capacity: team.rate_capacity,
        },
    )
}

/// A team scheduled for deletion takes no more data: 410 tells agents to stop
/// (they say so in `tally status`) rather than retry.
pub fn team_gone(team: &crate::db::TeamSettings) -> Result<Option<Response>> {
    match team.delete_after {
        Some(at) if team.deleted_at.is_some() => Ok(Some(json_error(
            410,
            "team_deleted",
            &format!(
                "this team was deleted by its owner and will be erased on {}; uploads are refused",
                tally_core::time::utc_date(at)
            ),
        )?)),
        _ => Ok(None),
    }
}
