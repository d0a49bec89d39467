//! The dashboard's JSON API under `/api/`: the same data and the same admin
//! actions as the pages, for scripts. Reads need a session; writes also
//! need the session's CSRF token in `X-CSRF-Token` and the admin role.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tally_core::event::PrivacyMode;
use worker::{Env, Request, Response};

use super::actions;
use super::auth::SignedIn;
use super::error::ApiError;
use super::range::Range;
use super::stats;
use crate::db::Principal;
use crate::util::{json_status, now_ms, query};
use crate::vocab::Role;
use crate::zone::Zone;

type Answer = Result<Response, ApiError>;

fn ok<T: Serialize>(status: u16, body: &T) -> Answer {
    Ok(json_status(status, body)?)
}

/// Decodes a JSON body; `expected` tells the client the shape on failure.
async fn body<T: DeserializeOwned>(
    req: &mut Request,
    expected: &'static str,
) -> Result<T, ApiError> {
    req.json()
        .await
        .map_err(|_| ApiError::bad_request(expected))
}

#[derive(Serialize)]
struct Me<'a> {
    team_id: &'a str,
    member_id: &'a str,
    email: &'a str,
    role: Role,
    csrf_token: &'a str,
}

pub async fn me(req: Request, env: Env) -> Answer {
    let user = SignedIn::from_request(&req, &env).await?;
    let p = &user.principal;
    ok(
        200,
        &Me {
            team_id: p.team_id(),
            member_id: &p.member_id,
            email: &p.email,
            role: p.role,
            csrf_token: &p.csrf_token,
        },
    )
}

pub async fn overview(req: Request, env: Env) -> Answer {
    let user = SignedIn::from_request(&req, &env).await?;
    let team = user.db.settings().await?;
    let zone = Zone::new(&team.timezone);
    let range = Range::parse(&query(&req), now_ms(), &zone);
    let (o, _) = stats::overview(&user.db, &team, &range, &zone).await?;
    ok(200, &o)
}

/// Hostnames and versions of every agent: admins only, like the Tokens page.
pub async fn agents(req: Request, env: Env) -> Answer {
    let user = SignedIn::from_request(&req, &env).await?;
    user.require(Role::Admin)?;
    ok(200, &user.db.agents().await?)
}

pub async fn audit(req: Request, env: Env) -> Answer {
    let user = SignedIn::from_request(&req, &env).await?;
    user.require(Role::Admin)?;
    ok(200, &user.db.audit_entries(500).await?)
}

#[derive(Deserialize)]
struct NewInstallToken {
    developer_name: String,
}

#[derive(Serialize)]
struct InstallTokenCreated {
    developer_id: String,
    install_token: String,
    expires_at: i64,
    command: String,
}

pub async fn create_install_token(mut req: Request, env: Env) -> Answer {
    let user = SignedIn::api_admin(&req, &env).await?;
    let b: NewInstallToken = body(&mut req, "expected {developer_name}").await?;
    let name = b.developer_name.trim();
    if !actions::valid_developer_name(name) {
        return Err(ApiError::bad_request("developer_name must be 1-200 bytes"));
    }
    let issued = actions::issue_install_token(&env, &user, name).await?;
    let origin = req.url()?.origin().ascii_serialization();
    ok(
        201,
        &InstallTokenCreated {
            command: format!("tally install --server {origin} --token {}", issued.token),
            developer_id: issued.developer_id,
            install_token: issued.token,
            expires_at: issued.expires_at,
        },
    )
}

#[derive(Deserialize)]
struct PrivacyChange {
    mode: String,
    /// Full mode stores prompts and answers: like the form, it needs an
    /// explicit confirmation.
    #[serde(default)]
    confirm: bool,
}

/// The refusal for a switch to Full without `"confirm": true`, if any.
pub fn full_needs_confirmation(mode: PrivacyMode, confirm: bool) -> Option<&'static str> {
    (mode == PrivacyMode::Full && !confirm).then_some(
        "switching to full stores prompts and responses; send {\"mode\":\"full\",\"confirm\":true} to confirm",
    )
}

pub async fn set_privacy(mut req: Request, env: Env) -> Answer {
    let user = SignedIn::api_admin(&req, &env).await?;
    let b: PrivacyChange = body(&mut req, "expected {mode}").await?;
    let mode = PrivacyMode::parse(&b.mode).ok_or_else(|| {
        ApiError::bad_request("mode must be off, categorize_local, categorize_cloud or full")
    })?;
    if let Some(refusal) = full_needs_confirmation(mode, b.confirm) {
        return Err(ApiError::BadRequest {
            code: "confirmation_required",
            message: refusal.into(),
        });
    }
    actions::change_privacy_mode(&user, mode).await?;
    ok(200, &json!({"privacy_mode": mode}))
}

#[derive(Deserialize)]
struct RateChange {
    capacity: i64,
    per_minute: i64,
}

pub async fn set_rate_limit(mut req: Request, env: Env) -> Answer {
    let user = SignedIn::api_admin(&req, &env).await?;
    let b: RateChange = body(&mut req, "expected {capacity, per_minute}").await?;
    if !actions::valid_rate_limit(b.capacity, b.per_minute) {
        return Err(ApiError::bad_request(
            "capacity must be 1..10000000 and per_minute 0..10000000",
        ));
    }
    actions::change_rate_limit(&user, b.capacity, b.per_minute).await?;
    ok(
        200,
        &json!({"capacity": b.capacity, "per_minute": b.per_minute}),
    )
}

#[derive(Deserialize)]
struct CategorizeBudget {
    /// Dollars, as a decimal string ("5.00") or a number.
    daily_budget_usd: serde_json::Value,
    per_minute: i64,
}

/// `POST /api/settings/categorize-budget`: the categorize-cloud daily
/// budget and per-minute call cap.
pub async fn set_categorize_budget(mut req: Request, env: Env) -> Answer {
    let user = SignedIn::api_admin(&req, &env).await?;
    let b: CategorizeBudget = body(&mut req, "expected {daily_budget_usd, per_minute}").await?;
    let dollars = match &b.daily_budget_usd {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => n.to_string(),
        _ => String::new(),
    };
    let (Some(micro), true) = (
        actions::parse_dollars_micro(&dollars),
        actions::valid_categorize_per_minute(b.per_minute),
    ) else {
        return Err(ApiError::bad_request(
            "daily_budget_usd must be 0 to 1000000 dollars with at most 6 decimals, per_minute 0..10000",
        ));
    };
    actions::change_categorize_limits(&user, micro, b.per_minute).await?;
    ok(
        200,
        &json!({
            "daily_budget_usd": tally_core::money::Usd::from_parts(micro, 0).decimal(6),
            "per_minute": b.per_minute
        }),
    )
}

pub async fn revoke_agent(req: Request, env: Env, agent_id: &str) -> Answer {
    let user = SignedIn::api_admin(&req, &env).await?;
    if actions::revoke_agent(&user, agent_id).await? {
        ok(200, &json!({"revoked": agent_id}))
    } else {
        Err(ApiError::not_found("no such active agent in this team"))
    }
}

/// `GET /api/first-run`: the Overview's checklist polls this until the
/// team's first events arrive (static/firstrun.js).
pub async fn first_run(req: Request, env: Env) -> Answer {
    let user = SignedIn::from_request(&req, &env).await?;
    let steps = super::dashboard::overview::first_run(&user.db).await?;
    ok(200, &steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_mode_needs_an_explicit_confirmation() {
        assert!(full_needs_confirmation(PrivacyMode::Full, false).is_some());
        assert!(full_needs_confirmation(PrivacyMode::Full, true).is_none());
        assert!(full_needs_confirmation(PrivacyMode::Off, false).is_none());
        let b: PrivacyChange = serde_json::from_str(r#"{"mode":"full"}"#).unwrap();
        assert!(!b.confirm);
    }
}
