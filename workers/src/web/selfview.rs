//! Signing a developer in to their read-only self-view (`/me`).
//!
//! Developers are not members and have no e-mail sign-in: they prove who
//! they are with their enrolled agent. `tally dashboard` calls
//! `POST /v1/agent/self-view` with the agent token and gets a one-time link
//! (10 minutes); `GET /me/link` only shows a confirmation (link scanners and
//! previews burn nothing), and its form's `POST /me/link` consumes the link
//! and starts a developer session under its own cookie and table.

use maud::html;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tally_core::bucket::{BucketConfig, Take};
use tally_core::hash::{format_token, token_hash};
use worker::{Env, Request, Response};

use super::auth::{
    client_ip, developer_actor, developer_cookie, developer_cookie_clear, is_loopback_host,
    DeveloperSignedIn, SESSION_TTL_MS,
};
use super::dashboard::layout::{developer_signin_page, page};
use super::error::ApiError;
use super::onetime::{Refused, SELF_VIEW};
use crate::bindings;
use crate::db::{ServiceDb, TeamDb};
use crate::ingest::{authenticate_agent, team_gone};
use crate::util::{config, json_status, now_ms, random32, redirect, required};
use crate::vocab::AuditAction;

pub const LINK_TTL_MS: i64 = 10 * 60 * 1000;

/// Links per agent: 5 at once, then two a minute. Enough for a developer
/// who opens the self-view from several browsers; a script hammering the
/// route with a stolen token gets 429s, not a pile of live links.
pub const MINT_BUDGET: BucketConfig = BucketConfig {
    capacity: 5,
    per_minute: 2,
};

/// The limiter key of an agent's link budget (the ingest limiter's
/// namespace, under a distinct name).
pub fn limiter_key(agent_id: &str) -> String {
    format!("selfview:agent:{agent_id}")
}

#[derive(Serialize)]
struct Minted {
    /// Where to open it: `PUBLIC_URL` (else this request's origin) + `path`.
    url: String,
    path: String,
    expires_at: i64,
    expires_in_s: i64,
}

/// `POST /v1/agent/self-view`: a one-time self-view link for the agent's
/// developer. Unknown tokens 401, revoked 403, a deleted team 410, as ingest.
pub async fn mint(req: Request, env: Env) -> Result<Response, ApiError> {
    let agent = authenticate_agent(&req, &env).await?;
    let db = TeamDb::new(&env, &agent)?;
    team_gone(&db.settings().await?)?;
    match crate::limiter::take_tokens(&env, &limiter_key(&agent.agent_id), 1, MINT_BUDGET).await? {
        Take::Granted { .. } => {}
        Take::Limited { retry_after_secs } => {
            return Err(ApiError::TooManyRequests {
                retry_after_s: retry_after_secs,
                message: "too many self-view links for this agent; retry later".into(),
            })
        }
        Take::TooLarge { .. } => {
            return Err(ApiError::TooManyRequests {
                retry_after_s: 60,
                message: "self-view links are disabled for this agent".into(),
            })
        }
    }
    let pepper = required(&env, bindings::PEPPER)?;
    let now = now_ms();
    let link = db.credential(&format_token("tly_self_", &random32()?));
    db.add_developer_link(
        &token_hash(&pepper, &link),
        &agent.developer_id,
        &agent.agent_id,
        now,
        now + LINK_TTL_MS,
    )
    .await?;
    let origin = req.url()?.origin().ascii_serialization();
    let base = config(&env, bindings::PUBLIC_URL).unwrap_or(origin);
    let path = format!("/me/link?token={link}");
    Ok(json_status(
        200,
        &Minted {
            url: format!("{}{path}", base.trim_end_matches('/')),
            path,
            expires_at: now + LINK_TTL_MS,
            expires_in_s: LINK_TTL_MS / 1000,
        },
    )?)
}

#[derive(Deserialize)]
struct LinkQuery {
    token: String,
}

/// `GET /me/link?token=…`: a confirmation page and nothing else.
pub async fn show_link(req: Request, env: Env) -> Result<Response, ApiError> {
    let Ok(q) = req.query::<LinkQuery>() else {
        return Ok(developer_signin_page(
            Some("That self-view link is incomplete."),
            400,
        )?);
    };
    let pepper = required(&env, bindings::PEPPER)?;
    let nonce = hex::encode(random32()?);
    Ok(SELF_VIEW.confirm_page(&req, &pepper, &nonce, &q.token, |csrf| {
        page(
            "Your own data",
            None,
            html! {
                h1 { "Open your Tally self-view" }
                p { "Continue to see your own usage and who read your content, read-only. The link works once." }
                form method="post" action="/me/link" class="box" {
                    input type="hidden" name="token" value=(q.token);
                    input type="hidden" name="csrf" value=(csrf);
                    button type="submit" data-testid="confirm-self-view" { "Open my data" }
                }
            },
        )
    })?)
}

/// `POST /me/link`: consumes the link and starts the developer session.
pub async fn follow_link(mut req: Request, env: Env) -> Result<Response, ApiError> {
    let pepper = required(&env, bindings::PEPPER)?;
    let token = match SELF_VIEW.confirmed(&mut req, &pepper).await? {
        Ok(token) => token,
        Err(Refused::Incomplete) => {
            return Ok(developer_signin_page(
                Some("That self-view link is incomplete."),
                400,
            )?)
        }
        Err(Refused::Csrf) => {
            return Ok(developer_signin_page(
                Some("The form expired (CSRF check failed). Run `tally dashboard` again."),
                403,
            )?)
        }
    };
    let token = token.as_str();
    let now = now_ms();
    let grant = match ServiceDb::for_credential(&env, token)? {
        Some(s) => {
            s.consume_developer_link(&token_hash(&pepper, token), now)
                .await?
        }
        None => None,
    };
    let Some(grant) = grant else {
        return Ok(developer_signin_page(
            Some(
                "That self-view link has expired or was already used. Run `tally dashboard` again.",
            ),
            401,
        )?);
    };
    let db = TeamDb::new(&env, &grant)?;
    // The agent may have been revoked, or the team deleted, since it minted the link.
    if !db
        .developer_agent_active(&grant.agent_id, &grant.developer_id)
        .await?
        || db.settings().await?.deleted_at.is_some()
    {
        return Ok(developer_signin_page(
            Some("This agent was revoked or its team deleted; the self-view is closed."),
            403,
        )?);
    }
    let session_id = db.credential(&hex::encode(random32()?));
    db.add_developer_session(
        &token_hash(&pepper, &session_id),
        &grant.developer_id,
        &grant.agent_id,
        now,
        now + SESSION_TTL_MS,
    )
    .await?;
    db.audit(
        &developer_actor(&grant.developer_id),
        AuditAction::DeveloperSignIn,
        client_ip(&req).as_deref(),
        &json!({"developer_id": grant.developer_id, "agent_id": grant.agent_id}),
        now,
    )
    .await?;
    let loopback = req.url()?.host_str().is_some_and(is_loopback_host);
    let mut r = redirect("/me")?;
    r.headers_mut()
        .append("Set-Cookie", &developer_cookie(&session_id, loopback))?;
    r.headers_mut()
        .append("Set-Cookie", &SELF_VIEW.clear_cookie())?;
    Ok(r)
}

/// `POST /me/logout`: ends the self-view session; always clears the cookie.
pub async fn logout(req: Request, env: Env) -> Result<Response, ApiError> {
    if let Some(dev) = DeveloperSignedIn::session(&req, &env).await? {
        dev.db
            .delete_developer_session(&dev.principal.id_hash)
            .await?;
    }
    let mut r = developer_signin_page(Some("Signed out of your self-view."), 200)?;
    r.headers_mut()
        .set("Set-Cookie", &developer_cookie_clear())?;
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tally_core::bucket::{take, BucketState};

    #[test]
    fn an_agent_gets_five_links_at_once_then_two_a_minute() {
        let mut s = BucketState::full(MINT_BUDGET, 0);
        let mut granted = 0;
        let mut first_wait = None;
        for _ in 0..10 {
            let (next, t) = take(s, MINT_BUDGET, 0, 1);
            s = next;
            match t {
                Take::Granted { .. } => granted += 1,
                Take::Limited { retry_after_secs } => {
                    first_wait.get_or_insert(retry_after_secs);
                }
                Take::TooLarge { .. } => panic!("one link always fits"),
            }
        }
        assert_eq!((granted, first_wait), (5, Some(30)));
        let (_, t) = take(s, MINT_BUDGET, 30_000, 1);
        assert!(matches!(t, Take::Granted { .. }), "{t:?}");
    }

    #[test]
    fn each_agent_has_its_own_link_budget() {
        assert_ne!(limiter_key("a"), limiter_key("b"));
    }
}
