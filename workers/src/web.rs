//! Operator bootstrap, sign-in, the dashboard page and its JSON API.

use serde::{Deserialize, Serialize};
use tally_core::event::PrivacyMode;
use tally_core::hash::{format_token, hmac_sha256, token_hash};
use tally_core::rollup::HOUR_MS;
use worker::{Env, Request, Response, Result};

use crate::bindings;
use crate::db::{ServiceDb, TeamDb, WebPrincipal};
use crate::util::{
    bearer, config, html_escape, json_error, json_status, now_ms, random32, random_id, required,
};

const INSTALL_TOKEN_TTL_MS: i64 = 7 * 24 * HOUR_MS;
const BOOTSTRAP_LINK_TTL_MS: i64 = 24 * HOUR_MS;
const SESSION_TTL_MS: i64 = 12 * HOUR_MS;
const COOKIE: &str = "tally_session";

/// Compares secrets without an early exit, by comparing their keyed hashes.
pub fn secret_eq(a: &str, b: &str) -> bool {
    hmac_sha256(b"tally-compare", a.as_bytes()) == hmac_sha256(b"tally-compare", b.as_bytes())
}

#[derive(Deserialize)]
struct BootstrapRequest {
    team_name: String,
    owner_email: String,
    #[serde(default)]
    developer_name: Option<String>,
    /// `cargo xtask dev` sets this: a second start must not create a second team.
    #[serde(default)]
    only_if_empty: bool,
}

#[derive(Serialize)]
struct BootstrapResponse {
    created: bool,
    team_id: Option<String>,
    signin_path: Option<String>,
    install_token: Option<String>,
}

/// Operator-only: creates a team with its owner, a first developer and a
/// one-time install token. Guarded by the BOOTSTRAP_SECRET deployment secret.
pub async fn bootstrap(mut req: Request, env: Env) -> Result<Response> {
    let Some(expected) = config(&env, bindings::BOOTSTRAP_SECRET) else {
        return json_error(
            404,
            "not_found",
            "bootstrap is disabled (no BOOTSTRAP_SECRET)",
        );
    };
    if !bearer(&req).is_some_and(|t| secret_eq(&t, &expected)) {
        return json_error(401, "unauthorized", "bad bootstrap secret");
    }
    let body: BootstrapRequest = match req.json().await {
        Ok(b) => b,
        Err(_) => return json_error(400, "bad_request", "expected {team_name, owner_email}"),
    };
    if body.team_name.trim().is_empty() || !body.owner_email.contains('@') {
        return json_error(
            400,
            "bad_request",
            "team_name and a valid owner_email are required",
        );
    }
    let service = ServiceDb::new(&env)?;
    if body.only_if_empty && service.team_count().await? > 0 {
        return json_status(
            200,
            &BootstrapResponse {
                created: false,
                team_id: None,
                signin_path: None,
                install_token: None,
            },
        );
    }
    let pepper = required(&env, bindings::PEPPER)?;
    let now = now_ms();
    let team = service
        .create_team(
            &random_id()?,
            body.team_name.trim(),
            &hex::encode(random32()?),
            now,
        )
        .await?;
    let db = TeamDb::new(&env, &team)?;
    let owner_id = random_id()?;
    db.add_member(&owner_id, body.owner_email.trim(), "owner", now)
        .await?;
    let developer_id = random_id()?;
    let dev_name = body
        .developer_name
        .as_deref()
        .unwrap_or(body.owner_email.trim());
    db.add_developer(&developer_id, dev_name, now).await?;
    let install = format_token("tly_inst_", &random32()?);
    db.add_install_token(
        &token_hash(&pepper, &install),
        &developer_id,
        Some(&owner_id),
        now,
        now + INSTALL_TOKEN_TTL_MS,
    )
    .await?;
    let link = format_token("tly_signin_", &random32()?);
    db.add_signin_link(
        &token_hash(&pepper, &link),
        &owner_id,
        now,
        now + BOOTSTRAP_LINK_TTL_MS,
    )
    .await?;
    json_status(
        201,
        &BootstrapResponse {
            created: true,
            team_id: Some(team.id.clone()),
            signin_path: Some(format!("/auth/link?token={link}")),
            install_token: Some(install),
        },
    )
}

fn is_loopback(req: &Request) -> bool {
    req.url()
        .ok()
        .and_then(|u| {
            u.host_str()
                .map(|h| h == "127.0.0.1" || h == "localhost" || h == "[::1]")
        })
        .unwrap_or(false)
}

fn cookie(req: &Request, name: &str) -> Option<String> {
    let header = req.headers().get("Cookie").ok().flatten()?;
    header.split(';').find_map(|kv| {
        let (k, v) = kv.trim().split_once('=')?;
        (k == name).then(|| v.to_string())
    })
}

pub const SESSION_IDLE_MS: i64 = 2 * HOUR_MS;
/// Refreshing last-seen on every request would cost a D1 write per page view.
const SESSION_TOUCH_MS: i64 = 5 * 60 * 1000;

pub async fn web_principal(req: &Request, env: &Env) -> Result<Option<WebPrincipal>> {
    let Some(id) = cookie(req, COOKIE) else {
        return Ok(None);
    };
    let pepper = required(env, bindings::PEPPER)?;
    let now = now_ms();
    let p = ServiceDb::new(env)?
        .web_session(&token_hash(&pepper, &id), now, now - SESSION_IDLE_MS)
        .await?;
    if let Some(p) = &p {
        if now - p.last_seen_at > SESSION_TOUCH_MS {
            TeamDb::new(env, p)?
                .touch_web_session(&p.id_hash, now)
                .await?;
        }
    }
    Ok(p)
}

pub fn session_cookie_clear() -> String {
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0")
}

#[derive(Deserialize)]
struct LinkQuery {
    token: String,
}

pub async fn signin_link(req: Request, env: Env) -> Result<Response> {
    let Ok(q) = req.query::<LinkQuery>() else {
        return signin_page(Some("That sign-in link is incomplete."), 400);
    };
    let pepper = required(&env, bindings::PEPPER)?;
    let now = now_ms();
    let Some(grant) = ServiceDb::new(&env)?
        .consume_signin_link(&token_hash(&pepper, &q.token), now)
        .await?
    else {
        return signin_page(
            Some("That sign-in link has expired or was already used."),
            401,
        );
    };
    let session_id = hex::encode(random32()?);
    let csrf = hex::encode(random32()?);
    let db = TeamDb::new(&env, &grant)?;
    db.add_web_session(
        &token_hash(&pepper, &session_id),
        &grant.member_id,
        &csrf,
        now,
        now + SESSION_TTL_MS,
    )
    .await?;
    db.audit(
        &grant.member_id,
        "sign_in",
        client_ip(&req).as_deref(),
        &serde_json::json!({"method": "link"}),
        now,
    )
    .await?;
    let secure = if is_loopback(&req) { "" } else { "; Secure" };
    let mut resp = Response::empty()?.with_status(303);
    resp.headers_mut().set("Location", "/")?;
    resp.headers_mut().set(
        "Set-Cookie",
        &format!(
            "{COOKIE}={session_id}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
            SESSION_TTL_MS / 1000
        ),
    )?;
    Ok(resp)
}

pub fn signin_page(message: Option<&str>, status: u16) -> Result<Response> {
    let msg = message
        .map(|m| {
            format!(
                "<p class=\"error\" data-testid=\"signin-message\">{}</p>",
                html_escape(m)
            )
        })
        .unwrap_or_default();
    Ok(Response::from_html(crate::pages::page(
        "Sign in",
        "",
        &format!(
            "<h1>Sign in to Tally</h1>{msg}<form method=\"post\" action=\"/login\" class=\"box\"><label>Work email <input type=\"email\" name=\"email\" required autocomplete=\"email\"></label> <button type=\"submit\">Email me a sign-in link</button></form><p>Links are single-use and expire after 15 minutes. Operators: <code>cargo xtask dev</code> prints the owner's first link.</p>"
        ),
    ))?
    .with_status(status))
}

/// Admin JSON routes need the session cookie AND the per-session CSRF token in
/// `X-CSRF-Token`; a cross-site form can send the cookie but cannot read the token.
pub async fn admin(
    req: &Request,
    env: &Env,
) -> Result<std::result::Result<WebPrincipal, Response>> {
    let Some(p) = web_principal(req, env).await? else {
        return Ok(Err(json_error(401, "unauthorized", "sign in first")?));
    };
    let csrf = req.headers().get("X-CSRF-Token")?.unwrap_or_default();
    if !secret_eq(&csrf, &p.csrf_token) {
        return Ok(Err(json_error(
            403,
            "csrf",
            "missing or wrong X-CSRF-Token",
        )?));
    }
    if !p.can_admin() {
        return Ok(Err(json_error(403, "forbidden", "admin role required")?));
    }
    Ok(Ok(p))
}

#[derive(Serialize)]
struct Me {
    team_id: String,
    member_id: String,
    email: String,
    role: String,
    csrf_token: String,
}

pub async fn api_me(req: Request, env: Env) -> Result<Response> {
    let Some(p) = web_principal(&req, &env).await? else {
        return json_error(401, "unauthorized", "sign in first");
    };
    json_status(
        200,
        &Me {
            team_id: crate::db::Principal::team_id(&p).to_string(),
            member_id: p.member_id.clone(),
            email: p.email.clone(),
            role: p.role.clone(),
            csrf_token: p.csrf_token.clone(),
        },
    )
}

/// Admin actions shared by the JSON API and the dashboard forms, so each rule
/// and its audit entry exist once.
pub async fn change_privacy_mode(
    db: &TeamDb,
    p: &WebPrincipal,
    mode: PrivacyMode,
    ip: Option<&str>,
) -> Result<()> {
    let before = db.settings().await?.mode();
    db.set_privacy_mode(mode).await?;
    db.audit(
        &p.email,
        "privacy_mode.change",
        ip,
        &serde_json::json!({"from": before, "to": mode}),
        now_ms(),
    )
    .await
}

pub fn valid_rate_limit(capacity: i64, per_minute: i64) -> bool {
    (1..=10_000_000).contains(&capacity) && (0..=10_000_000).contains(&per_minute)
}

/// Callers check `valid_rate_limit` first and phrase the refusal for their medium.
pub async fn change_rate_limit(
    db: &TeamDb,
    p: &WebPrincipal,
    capacity: i64,
    per_minute: i64,
    ip: Option<&str>,
) -> Result<()> {
    db.set_rate_limit(capacity, per_minute).await?;
    db.audit(
        &p.email,
        "rate_limit.change",
        ip,
        &serde_json::json!({"capacity": capacity, "per_minute": per_minute}),
        now_ms(),
    )
    .await
}

/// False when the team has no such active agent.
pub async fn revoke_agent(
    db: &TeamDb,
    p: &WebPrincipal,
    agent_id: &str,
    ip: Option<&str>,
) -> Result<bool> {
    if !db.revoke_agent(agent_id, now_ms()).await? {
        return Ok(false);
    }
    db.audit(
        &p.email,
        "agent.revoke",
        ip,
        &serde_json::json!({"agent_id": agent_id}),
        now_ms(),
    )
    .await?;
    Ok(true)
}

pub struct IssuedToken {
    pub developer_id: String,
    pub token: String,
    pub expires_at: i64,
}

/// A new developer and their one-time install token, audited. Only the
/// token's keyed hash is stored, so the caller shows it once.
pub async fn issue_install_token(
    env: &Env,
    db: &TeamDb,
    p: &WebPrincipal,
    name: &str,
    ip: Option<&str>,
) -> Result<IssuedToken> {
    let pepper = required(env, bindings::PEPPER)?;
    let now = now_ms();
    let developer_id = random_id()?;
    db.add_developer(&developer_id, name, now).await?;
    let token = format_token("tly_inst_", &random32()?);
    let expires_at = now + INSTALL_TOKEN_TTL_MS;
    db.add_install_token(
        &token_hash(&pepper, &token),
        &developer_id,
        Some(&p.member_id),
        now,
        expires_at,
    )
    .await?;
    db.audit(
        &p.email,
        "install_token.create",
        ip,
        &serde_json::json!({"developer_id": developer_id, "developer_name": name}),
        now,
    )
    .await?;
    Ok(IssuedToken {
        developer_id,
        token,
        expires_at,
    })
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

pub async fn api_create_install_token(mut req: Request, env: Env) -> Result<Response> {
    let p = match admin(&req, &env).await? {
        Ok(p) => p,
        Err(r) => return Ok(r),
    };
    let body: NewInstallToken = match req.json().await {
        Ok(b) => b,
        Err(_) => return json_error(400, "bad_request", "expected {developer_name}"),
    };
    let name = body.developer_name.trim();
    if name.is_empty() || name.len() > 200 {
        return json_error(400, "bad_request", "developer_name must be 1-200 bytes");
    }
    let db = TeamDb::new(&env, &p)?;
    let issued = issue_install_token(&env, &db, &p, name, client_ip(&req).as_deref()).await?;
    let origin = req.url()?.origin().ascii_serialization();
    json_status(
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
}

pub async fn api_set_privacy(mut req: Request, env: Env) -> Result<Response> {
    let p = match admin(&req, &env).await? {
        Ok(p) => p,
        Err(r) => return Ok(r),
    };
    let body: PrivacyChange = match req.json().await {
        Ok(b) => b,
        Err(_) => return json_error(400, "bad_request", "expected {mode}"),
    };
    let Some(mode) = PrivacyMode::parse(&body.mode) else {
        return json_error(
            400,
            "bad_request",
            "mode must be off, categorize_local, categorize_cloud or full",
        );
    };
    change_privacy_mode(
        &TeamDb::new(&env, &p)?,
        &p,
        mode,
        client_ip(&req).as_deref(),
    )
    .await?;
    json_status(200, &serde_json::json!({"privacy_mode": mode}))
}

pub async fn api_agents(req: Request, env: Env) -> Result<Response> {
    let Some(p) = web_principal(&req, &env).await? else {
        return json_error(401, "unauthorized", "sign in first");
    };
    json_status(200, &TeamDb::new(&env, &p)?.agents().await?)
}

pub async fn api_revoke_agent(req: Request, env: Env, agent_id: &str) -> Result<Response> {
    let p = match admin(&req, &env).await? {
        Ok(p) => p,
        Err(r) => return Ok(r),
    };
    if revoke_agent(
        &TeamDb::new(&env, &p)?,
        &p,
        agent_id,
        client_ip(&req).as_deref(),
    )
    .await?
    {
        json_status(200, &serde_json::json!({"revoked": agent_id}))
    } else {
        json_error(404, "not_found", "no such active agent in this team")
    }
}

pub fn client_ip(req: &Request) -> Option<String> {
    req.headers().get("CF-Connecting-IP").ok().flatten()
}

#[derive(Deserialize)]
struct RateChange {
    capacity: i64,
    per_minute: i64,
}

pub async fn api_set_rate_limit(mut req: Request, env: Env) -> Result<Response> {
    let p = match admin(&req, &env).await? {
        Ok(p) => p,
        Err(r) => return Ok(r),
    };
    let body: RateChange = match req.json().await {
        Ok(b) => b,
        Err(_) => return json_error(400, "bad_request", "expected {capacity, per_minute}"),
    };
    if !valid_rate_limit(body.capacity, body.per_minute) {
        return json_error(
            400,
            "bad_request",
            "capacity must be 1..10000000 and per_minute 0..10000000",
        );
    }
    change_rate_limit(
        &TeamDb::new(&env, &p)?,
        &p,
        body.capacity,
        body.per_minute,
        client_ip(&req).as_deref(),
    )
    .await?;
    json_status(
        200,
        &serde_json::json!({"capacity": body.capacity, "per_minute": body.per_minute}),
    )
}

pub async fn api_audit(req: Request, env: Env) -> Result<Response> {
    let Some(p) = web_principal(&req, &env).await? else {
        return json_error(401, "unauthorized", "sign in first");
    };
    if !p.can_admin() {
        return json_error(403, "forbidden", "admin role required");
    }
    json_status(200, &TeamDb::new(&env, &p)?.audit_entries(500).await?)
}

const SIGNIN_LINK_TTL_MS: i64 = 15 * 60 * 1000;

/// Creates a single-use, 15-minute sign-in link and emails it.
pub async fn send_signin_link(
    env: &Env,
    db: &TeamDb,
    origin: &str,
    member_id: &str,
    email: &str,
    invite: bool,
) -> Result<()> {
    let pepper = required(env, bindings::PEPPER)?;
    let now = now_ms();
    let link = format_token("tly_signin_", &random32()?);
    db.add_signin_link(
        &token_hash(&pepper, &link),
        member_id,
        now,
        now + SIGNIN_LINK_TTL_MS,
    )
    .await?;
    let base = config(env, bindings::PUBLIC_URL).unwrap_or_else(|| origin.to_string());
    let url = format!("{}/auth/link?token={link}", base.trim_end_matches('/'));
    let team = db.settings().await?;
    let (subject, intro) = if invite {
        (
            format!("You are invited to {} on Tally", team.name),
            format!("You were invited to the team {} on Tally.", team.name),
        )
    } else {
        (
            format!("Your Tally sign-in link for {}", team.name),
            format!("Sign in to {} on Tally.", team.name),
        )
    };
    let text = format!("{intro}\n\nOpen this link within 15 minutes (it works once):\n{url}\n\nIf you did not ask for this, ignore this email.");
    let html = format!(
        "<p>{}</p><p><a href=\"{}\">Sign in to Tally</a></p><p>The link works once and expires in 15 minutes. If you did not ask for this, ignore this email.</p>",
        html_escape(&intro),
        html_escape(&url)
    );
    crate::util::send_email(env, email, &subject, &text, &html).await
}

#[derive(Deserialize)]
struct LoginForm {
    email: String,
}

/// Always answers the same way, so the form cannot be used to find out who is a member.
pub async fn login(mut req: Request, env: Env) -> Result<Response> {
    let origin = req.url()?.origin().ascii_serialization();
    let ip = client_ip(&req).unwrap_or_default();
    let bytes = req.bytes().await?;
    let Ok(f) = serde_urlencoded_email(&bytes) else {
        return signin_page(Some("Enter your work email address."), 400);
    };
    let email = f.email.trim().to_ascii_lowercase();
    if !crate::util::valid_email(&email) {
        return signin_page(Some("Enter your work email address."), 400);
    }
    // Attempts are limited per address and per client, in the same Durable
    // Object namespace as ingest but under distinct names.
    let cfg = tally_core::bucket::BucketConfig {
        capacity: 5,
        per_minute: 1,
    };
    for key in [format!("signin:email:{email}"), format!("signin:ip:{ip}")] {
        if let tally_core::bucket::Take::Limited { retry_after_secs } =
            crate::limiter::take_tokens(&env, &key, 1, cfg).await?
        {
            let mut r = signin_page(
                Some("Too many sign-in attempts; wait a few minutes and try again."),
                429,
            )?;
            r.headers_mut()
                .set("Retry-After", &retry_after_secs.to_string())?;
            return Ok(r);
        }
    }
    for grant in ServiceDb::new(&env)?.members_by_email(&email).await? {
        let db = TeamDb::new(&env, &grant)?;
        if let Err(e) = send_signin_link(&env, &db, &origin, &grant.member_id, &email, false).await
        {
            worker::console_error!("sending sign-in email failed: {e}");
        }
    }
    signin_page(Some("If that address belongs to a member, a sign-in link is on its way. It works once and expires in 15 minutes."), 200)
}

fn serde_urlencoded_email(bytes: &[u8]) -> std::result::Result<LoginForm, ()> {
    url::form_urlencoded::parse(bytes)
        .find(|(k, _)| k == "email")
        .map(|(_, v)| LoginForm {
            email: v.into_owned(),
        })
        .ok_or(())
}
