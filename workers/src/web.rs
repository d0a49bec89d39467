//! Operator bootstrap, sign-in, the dashboard page and its JSON API.

use serde::{Deserialize, Serialize};
use tally_core::event::PrivacyMode;
use tally_core::hash::{format_token, hmac_sha256, token_hash};
use tally_core::money::format_usd_cents;
use tally_core::privacy::describe;
use tally_core::rollup::HOUR_MS;
use worker::{Env, Request, Response, Result};

use crate::db::{ModelTotals, ServiceDb, TeamDb, WebPrincipal};
use crate::util::{bearer, config, html_escape, json_error, json_status, now_ms, random32, random_id, required};

const INSTALL_TOKEN_TTL_MS: i64 = 7 * 24 * HOUR_MS;
const BOOTSTRAP_LINK_TTL_MS: i64 = 24 * HOUR_MS;
const SESSION_TTL_MS: i64 = 12 * HOUR_MS;
const COOKIE: &str = "tally_session";

/// Compares secrets without an early exit, by comparing their keyed hashes.
fn secret_eq(a: &str, b: &str) -> bool {
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
    let Some(expected) = config(&env, "BOOTSTRAP_SECRET") else {
        return json_error(404, "not_found", "bootstrap is disabled (no BOOTSTRAP_SECRET)");
    };
    if !bearer(&req).is_some_and(|t| secret_eq(&t, &expected)) {
        return json_error(401, "unauthorized", "bad bootstrap secret");
    }
    let body: BootstrapRequest = match req.json().await {
        Ok(b) => b,
        Err(_) => return json_error(400, "bad_request", "expected {team_name, owner_email}"),
    };
    if body.team_name.trim().is_empty() || !body.owner_email.contains('@') {
        return json_error(400, "bad_request", "team_name and a valid owner_email are required");
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
    let pepper = required(&env, "PEPPER")?;
    let now = now_ms();
    let team = service
        .create_team(&random_id()?, body.team_name.trim(), &hex::encode(random32()?), now)
        .await?;
    let db = TeamDb::new(&env, &team)?;
    let owner_id = random_id()?;
    db.add_member(&owner_id, body.owner_email.trim(), "owner", now).await?;
    let developer_id = random_id()?;
    let dev_name = body.developer_name.as_deref().unwrap_or(body.owner_email.trim());
    db.add_developer(&developer_id, dev_name, now).await?;
    let install = format_token("tly_inst_", &random32()?);
    db.add_install_token(&token_hash(&pepper, &install), &developer_id, Some(&owner_id), now, now + INSTALL_TOKEN_TTL_MS)
        .await?;
    let link = format_token("tly_signin_", &random32()?);
    db.add_signin_link(&token_hash(&pepper, &link), &owner_id, now, now + BOOTSTRAP_LINK_TTL_MS)
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
        .and_then(|u| u.host_str().map(|h| h == "127.0.0.1" || h == "localhost" || h == "[::1]"))
        .unwrap_or(false)
}

fn cookie(req: &Request, name: &str) -> Option<String> {
    let header = req.headers().get("Cookie").ok().flatten()?;
    header.split(';').find_map(|kv| {
        let (k, v) = kv.trim().split_once('=')?;
        (k == name).then(|| v.to_string())
    })
}

pub async fn web_principal(req: &Request, env: &Env) -> Result<Option<WebPrincipal>> {
    let Some(id) = cookie(req, COOKIE) else {
        return Ok(None);
    };
    let pepper = required(env, "PEPPER")?;
    ServiceDb::new(env)?.web_session(&token_hash(&pepper, &id), now_ms()).await
}

#[derive(Deserialize)]
struct LinkQuery {
    token: String,
}

pub async fn signin_link(req: Request, env: Env) -> Result<Response> {
    let Ok(q) = req.query::<LinkQuery>() else {
        return signin_page(Some("That sign-in link is incomplete."), 400);
    };
    let pepper = required(&env, "PEPPER")?;
    let now = now_ms();
    let Some(grant) = ServiceDb::new(&env)?
        .consume_signin_link(&token_hash(&pepper, &q.token), now)
        .await?
    else {
        return signin_page(Some("That sign-in link has expired or was already used."), 401);
    };
    let session_id = hex::encode(random32()?);
    let csrf = hex::encode(random32()?);
    let db = TeamDb::new(&env, &grant)?;
    db.add_web_session(&token_hash(&pepper, &session_id), &grant.member_id, &csrf, now, now + SESSION_TTL_MS)
        .await?;
    db.audit(&grant.member_id, "sign_in", client_ip(&req).as_deref(), &serde_json::json!({"method": "link"}), now)
        .await?;
    let secure = if is_loopback(&req) { "" } else { "; Secure" };
    let mut resp = Response::empty()?.with_status(303);
    resp.headers_mut().set("Location", "/")?;
    resp.headers_mut().set(
        "Set-Cookie",
        &format!("{COOKIE}={session_id}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure}", SESSION_TTL_MS / 1000),
    )?;
    Ok(resp)
}

fn signin_page(message: Option<&str>, status: u16) -> Result<Response> {
    let msg = message
        .map(|m| format!("<p class=\"error\">{}</p>", html_escape(m)))
        .unwrap_or_default();
    Ok(Response::from_html(page(
        "Sign in",
        &format!("<h1>Tally</h1>{msg}<p>Open the sign-in link from your email or the one printed by <code>cargo xtask dev</code>.</p>"),
    ))?
    .with_status(status))
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{} · Tally</title><style>{CSS}</style></head><body><main>{body}</main></body></html>",
        html_escape(title)
    )
}

const CSS: &str = "body{font-family:system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1c2430}main{max-width:1100px;margin:0 auto;padding:16px}table{border-collapse:collapse;width:100%;background:#fff}th,td{padding:6px 8px;border-bottom:1px solid #e3e6ea;text-align:right}th:first-child,td:first-child{text-align:left}.cards{display:flex;flex-wrap:wrap;gap:12px;margin:12px 0}.card{background:#fff;border-radius:8px;padding:12px 16px;min-width:150px}.card b{display:block;font-size:1.5em}.error{color:#b00020}";

#[derive(Serialize)]
struct Overview {
    team_id: String,
    privacy_mode: PrivacyMode,
    spend_today_micro_usd: i64,
    spend_7d_micro_usd: i64,
    spend_30d_micro_usd: i64,
    totals_30d: ModelTotals,
    models_30d: Vec<ModelTotals>,
}

fn sum(rows: &[ModelTotals]) -> ModelTotals {
    let mut t = ModelTotals {
        model: "all".into(),
        ..Default::default()
    };
    for r in rows {
        t.requests += r.requests;
        t.unpriced_requests += r.unpriced_requests;
        t.input_tokens += r.input_tokens;
        t.output_tokens += r.output_tokens;
        t.cache_write_5m_tokens += r.cache_write_5m_tokens;
        t.cache_write_1h_tokens += r.cache_write_1h_tokens;
        t.cache_read_tokens += r.cache_read_tokens;
        t.cost_micro_usd += r.cost_micro_usd;
    }
    t
}

async fn overview(db: &TeamDb) -> Result<Overview> {
    let team = db.settings().await?;
    let now_hour = now_ms().div_euclid(HOUR_MS);
    let today_start = now_hour - now_hour.rem_euclid(24);
    let m30 = db.totals_by_model(today_start - 29 * 24).await?;
    let m7 = db.totals_by_model(today_start - 6 * 24).await?;
    let m1 = db.totals_by_model(today_start).await?;
    Ok(Overview {
        team_id: team.id.clone(),
        privacy_mode: team.mode(),
        spend_today_micro_usd: sum(&m1).cost_micro_usd,
        spend_7d_micro_usd: sum(&m7).cost_micro_usd,
        spend_30d_micro_usd: sum(&m30).cost_micro_usd,
        totals_30d: sum(&m30),
        models_30d: m30,
    })
}

pub async fn api_overview(req: Request, env: Env) -> Result<Response> {
    let Some(p) = web_principal(&req, &env).await? else {
        return json_error(401, "unauthorized", "sign in first");
    };
    json_status(200, &overview(&TeamDb::new(&env, &p)?).await?)
}

pub async fn dashboard(req: Request, env: Env) -> Result<Response> {
    let Some(p) = web_principal(&req, &env).await? else {
        return signin_page(None, 200);
    };
    let o = overview(&TeamDb::new(&env, &p)?).await?;
    let usd = |m: i64| format_usd_cents(m.max(0) as u64);
    let mut rows = String::new();
    for m in &o.models_30d {
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            html_escape(&m.model),
            m.requests,
            m.input_tokens,
            m.output_tokens,
            m.cache_write_5m_tokens + m.cache_write_1h_tokens,
            m.cache_read_tokens,
            if m.unpriced_requests > 0 { format!("{} (+{} unpriced)", usd(m.cost_micro_usd), m.unpriced_requests) } else { usd(m.cost_micro_usd) },
            m.unpriced_requests
        ));
    }
    let t = &o.totals_30d;
    let body = format!(
        "<h1>Tally · Overview</h1><p>Signed in as {email} ({role}). Privacy mode: <b data-testid=\"mode\">{mode}</b> — {desc}</p>\
         <div class=\"cards\"><div class=\"card\">Today<b data-testid=\"spend-today\">{today}</b></div><div class=\"card\">7 days<b data-testid=\"spend-7d\">{d7}</b></div><div class=\"card\">30 days<b data-testid=\"spend-30d\">{d30}</b></div>\
         <div class=\"card\">Requests (30 d)<b data-testid=\"requests-30d\">{req}</b></div></div>\
         <h2>Tokens (30 days)</h2><div class=\"cards\"><div class=\"card\">Input<b data-testid=\"tokens-input\">{ti}</b></div><div class=\"card\">Output<b data-testid=\"tokens-output\">{to}</b></div><div class=\"card\">Cache write<b data-testid=\"tokens-cache-write\">{tw}</b></div><div class=\"card\">Cache read<b data-testid=\"tokens-cache-read\">{tr}</b></div></div>\
         <h2>By model (30 days)</h2><table><thead><tr><th>Model</th><th>Requests</th><th>Input</th><th>Output</th><th>Cache write</th><th>Cache read</th><th>Cost</th><th>Unpriced</th></tr></thead><tbody>{rows}</tbody></table>",
        email = html_escape(&p.email),
        role = html_escape(&p.role),
        mode = o.privacy_mode.as_str(),
        desc = html_escape(describe(o.privacy_mode)),
        today = usd(o.spend_today_micro_usd),
        d7 = usd(o.spend_7d_micro_usd),
        d30 = usd(o.spend_30d_micro_usd),
        req = t.requests,
        ti = t.input_tokens,
        to = t.output_tokens,
        tw = t.cache_write_5m_tokens + t.cache_write_1h_tokens,
        tr = t.cache_read_tokens,
    );
    Response::from_html(page("Overview", &body))
}

/// Admin JSON routes need the session cookie AND the per-session CSRF token in
/// `X-CSRF-Token`; a cross-site form can send the cookie but cannot read the token.
async fn admin(req: &Request, env: &Env) -> Result<std::result::Result<WebPrincipal, Response>> {
    let Some(p) = web_principal(req, env).await? else {
        return Ok(Err(json_error(401, "unauthorized", "sign in first")?));
    };
    let csrf = req.headers().get("X-CSRF-Token")?.unwrap_or_default();
    if !secret_eq(&csrf, &p.csrf_token) {
        return Ok(Err(json_error(403, "csrf", "missing or wrong X-CSRF-Token")?));
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
    let pepper = required(&env, "PEPPER")?;
    let now = now_ms();
    let db = TeamDb::new(&env, &p)?;
    let developer_id = random_id()?;
    db.add_developer(&developer_id, name, now).await?;
    let token = format_token("tly_inst_", &random32()?);
    db.add_install_token(&token_hash(&pepper, &token), &developer_id, Some(&p.member_id), now, now + INSTALL_TOKEN_TTL_MS)
        .await?;
    db.audit(&p.email, "install_token.create", client_ip(&req).as_deref(), &serde_json::json!({"developer_id": developer_id, "developer_name": name}), now)
        .await?;
    let origin = req.url()?.origin().ascii_serialization();
    json_status(
        201,
        &InstallTokenCreated {
            command: format!("tally install --server {origin} --token {token}"),
            developer_id,
            install_token: token,
            expires_at: now + INSTALL_TOKEN_TTL_MS,
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
        return json_error(400, "bad_request", "mode must be off, categorize_local, categorize_cloud or full");
    };
    let db = TeamDb::new(&env, &p)?;
    let before = db.settings().await?.mode();
    db.set_privacy_mode(mode).await?;
    db.audit(&p.email, "privacy_mode.change", client_ip(&req).as_deref(), &serde_json::json!({"from": before, "to": mode}), now_ms())
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
    let db = TeamDb::new(&env, &p)?;
    if db.revoke_agent(agent_id, now_ms()).await? {
        db.audit(&p.email, "agent.revoke", client_ip(&req).as_deref(), &serde_json::json!({"agent_id": agent_id}), now_ms())
            .await?;
        json_status(200, &serde_json::json!({"revoked": agent_id}))
    } else {
        json_error(404, "not_found", "no such active agent in this team")
    }
}

fn client_ip(req: &Request) -> Option<String> {
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
    if !(1..=10_000_000).contains(&body.capacity) || !(0..=10_000_000).contains(&body.per_minute) {
        return json_error(400, "bad_request", "capacity must be 1..10000000 and per_minute 0..10000000");
    }
    let db = TeamDb::new(&env, &p)?;
    db.set_rate_limit(body.capacity, body.per_minute).await?;
    db.audit(&p.email, "rate_limit.change", client_ip(&req).as_deref(), &serde_json::json!({"capacity": body.capacity, "per_minute": body.per_minute}), now_ms())
        .await?;
    json_status(200, &serde_json::json!({"capacity": body.capacity, "per_minute": body.per_minute}))
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
