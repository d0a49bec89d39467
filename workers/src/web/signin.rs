//! Sign-in by e-mailed single-use links, and sign-out.

use maud::html;
use serde::Deserialize;
use tally_core::bucket::{BucketConfig, Take};
use tally_core::hash::{format_token, token_hash};
use worker::{Env, Request, Response};

use super::auth::{
    client_ip, is_loopback_host, parse_form, session_cookie, session_cookie_clear, SignedIn,
    SESSION_TTL_MS,
};
use super::dashboard::layout::signin_page;
use super::error::ApiError;
use crate::bindings;
use crate::db::{ServiceDb, TeamDb};
use crate::util::{config, now_ms, random32, redirect, required, send_email, valid_email};
use crate::vocab::AuditAction;

pub const LINK_TTL_MS: i64 = 15 * 60 * 1000;

/// Per address and per client: 5 attempts, then one a minute.
const ATTEMPTS: BucketConfig = BucketConfig {
    capacity: 5,
    per_minute: 1,
};

/// Stores a single-use sign-in link for the member and returns its token.
pub async fn new_link(
    env: &Env,
    db: &TeamDb,
    member_id: &str,
    ttl_ms: i64,
) -> worker::Result<String> {
    let pepper = required(env, bindings::PEPPER)?;
    let now = now_ms();
    let link = format_token("tly_signin_", &random32()?);
    db.add_signin_link(&token_hash(&pepper, &link), member_id, now, now + ttl_ms)
        .await?;
    Ok(link)
}

/// Creates a 15-minute link and mails it; `invite` words it as an invitation.
pub async fn send_link(
    env: &Env,
    db: &TeamDb,
    origin: &str,
    member_id: &str,
    email: &str,
    invite: bool,
) -> worker::Result<()> {
    let link = new_link(env, db, member_id, LINK_TTL_MS).await?;
    let base = config(env, bindings::PUBLIC_URL).unwrap_or_else(|| origin.to_string());
    let url = format!("{}/auth/link?token={link}", base.trim_end_matches('/'));
    let team = db.settings().await?.name;
    let (subject, intro) = if invite {
        (
            format!("You are invited to {team} on Tally"),
            format!("You were invited to the team {team} on Tally."),
        )
    } else {
        (
            format!("Your Tally sign-in link for {team}"),
            format!("Sign in to {team} on Tally."),
        )
    };
    let text = format!("{intro}\n\nOpen this link within 15 minutes (it works once):\n{url}\n\nIf you did not ask for this, ignore this email.");
    let html = html! {
        p { (intro) }
        p { a href=(url) { "Sign in to Tally" } }
        p { "The link works once and expires in 15 minutes. If you did not ask for this, ignore this email." }
    };
    send_email(env, email, &subject, &text, &html.into_string()).await
}

#[derive(Deserialize)]
struct LinkQuery {
    token: String,
}

/// `GET /auth/link?token=…`: consumes the link and starts a session.
pub async fn follow_link(req: Request, env: Env) -> Result<Response, ApiError> {
    let Ok(q) = req.query::<LinkQuery>() else {
        return Ok(signin_page(Some("That sign-in link is incomplete."), 400)?);
    };
    let pepper = required(&env, bindings::PEPPER)?;
    let now = now_ms();
    let Some(grant) = ServiceDb::new(&env)?
        .consume_signin_link(&token_hash(&pepper, &q.token), now)
        .await?
    else {
        return Ok(signin_page(
            Some("That sign-in link has expired or was already used."),
            401,
        )?);
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
    // No session existed yet, so the member id is the actor.
    db.audit(
        &grant.member_id,
        AuditAction::SignIn,
        client_ip(&req).as_deref(),
        &serde_json::json!({"method": "link"}),
        now,
    )
    .await?;
    let loopback = req.url()?.host_str().is_some_and(is_loopback_host);
    let mut r = redirect("/")?;
    r.headers_mut()
        .set("Set-Cookie", &session_cookie(&session_id, loopback))?;
    Ok(r)
}

/// `POST /login`: always answers the same way, so the form cannot be used
/// to find out who is a member.
pub async fn login(mut req: Request, env: Env) -> Result<Response, ApiError> {
    let origin = req.url()?.origin().ascii_serialization();
    let ip = client_ip(&req).unwrap_or_default();
    let form = parse_form(&req.bytes().await?);
    let email = form
        .get("email")
        .map(|e| e.trim().to_ascii_lowercase())
        .unwrap_or_default();
    if !valid_email(&email) {
        return Ok(signin_page(Some("Enter your work email address."), 400)?);
    }
    // Same Durable Object namespace as ingest, under distinct names.
    for key in [format!("signin:email:{email}"), format!("signin:ip:{ip}")] {
        if let Take::Limited { retry_after_secs } =
            crate::limiter::take_tokens(&env, &key, 1, ATTEMPTS).await?
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
        // A failed mail must not reveal membership through a different answer.
        if let Err(e) = send_link(&env, &db, &origin, &grant.member_id, &email, false).await {
            worker::console_error!("sending sign-in email failed: {e}");
        }
    }
    Ok(signin_page(Some("If that address belongs to a member, a sign-in link is on its way. It works once and expires in 15 minutes."), 200)?)
}

/// `POST /logout`: ends the session if there is one; always clears the cookie.
pub async fn logout(req: Request, env: Env) -> Result<Response, ApiError> {
    if let Some(user) = SignedIn::session(&req, &env).await? {
        user.db.delete_web_session(&user.principal.id_hash).await?;
    }
    let mut r = redirect("/")?;
    r.headers_mut().set("Set-Cookie", &session_cookie_clear())?;
    Ok(r)
}
