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
use super::dashboard::layout::{page, signin_page};
use super::error::ApiError;
use super::onetime::{Refused, SIGNIN};
use crate::bindings;
use crate::db::{ServiceDb, TeamDb};
use crate::util::{config, now_ms, random32, redirect, required, send_email, valid_email};
use crate::vocab::{AuditAction, Role};

pub const LINK_TTL_MS: i64 = 15 * 60 * 1000;

/// What every well-formed `POST /login` answers, whether or not a mail
/// went out: neither membership nor a spent budget shows.
pub const NEUTRAL_ANSWER: &str = "If this address has an account, a sign-in link is on its way. It works once and expires in 15 minutes.";

/// A budget: `cost` tokens per take from a bucket of `config`, so a refill
/// slower than one a minute is expressible (cost 10 at 1/min = one per 10 min).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub cost: u64,
    pub config: BucketConfig,
}

/// Per client, across addresses: 20 attempts, then two a minute.
pub const PER_CLIENT: Budget = Budget {
    cost: 1,
    config: BucketConfig {
        capacity: 20,
        per_minute: 2,
    },
};

/// Per (address, client): 3 requests, then one per 10 minutes. A client
/// spends only its own budget for an address, never another client's.
pub const PER_ADDRESS_AND_CLIENT: Budget = Budget {
    cost: 10,
    config: BucketConfig {
        capacity: 30,
        per_minute: 1,
    },
};

/// E-mails actually sent to one address, from all clients together: 10,
/// then one per 5 minutes. One client alone (at most one per 10 minutes
/// after its burst of 3) can never empty it, so the member asking from
/// another network still gets a link; many clients together can only
/// delay new mails, and a link already sent keeps working.
pub const SENT_PER_ADDRESS: Budget = Budget {
    cost: 5,
    config: BucketConfig {
        capacity: 50,
        per_minute: 1,
    },
};

/// The limiter keys of a login attempt: per client, per (address, client),
/// and the per-address cap on sent mail.
pub fn limiter_keys(email: &str, client: &str) -> [String; 3] {
    [
        format!("signin:ip:{client}"),
        format!("signin:email-ip:{email}\u{0}{client}"),
        format!("signin:sent:{email}"),
    ]
}

async fn within(env: &Env, key: &str, budget: Budget) -> worker::Result<bool> {
    Ok(matches!(
        crate::limiter::take_tokens(env, key, budget.cost, budget.config).await?,
        Take::Granted { .. }
    ))
}

/// Stores a single-use sign-in link for the member and returns its token.
pub async fn new_link(
    env: &Env,
    db: &TeamDb,
    member_id: &str,
    ttl_ms: i64,
) -> worker::Result<String> {
    let pepper = required(env, bindings::PEPPER)?;
    let now = now_ms();
    let link = db.credential(&format_token("tly_signin_", &random32()?));
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

/// `GET /auth/link?token=…`: a confirmation page and nothing else, so a
/// mail scanner that prefetches the link does not burn it.
pub async fn show_link(req: Request, env: Env) -> Result<Response, ApiError> {
    let Ok(q) = req.query::<LinkQuery>() else {
        return Ok(signin_page(Some("That sign-in link is incomplete."), 400)?);
    };
    let pepper = required(&env, bindings::PEPPER)?;
    let nonce = hex::encode(random32()?);
    Ok(
        SIGNIN.confirm_page(&req, &pepper, &nonce, &q.token, |csrf| {
            page(
                "Sign in",
                None,
                html! {
                    h1 { "Sign in to Tally" }
                    p { "Continue to sign in with this link. It works once." }
                    form method="post" action="/auth/link" class="box" {
                        input type="hidden" name="token" value=(q.token);
                        input type="hidden" name="csrf" value=(csrf);
                        button type="submit" data-testid="confirm-signin" { "Sign in" }
                    }
                },
            )
        })?,
    )
}

/// `POST /auth/link` (the confirmation form): consumes the link and starts a session.
pub async fn follow_link(mut req: Request, env: Env) -> Result<Response, ApiError> {
    let pepper = required(&env, bindings::PEPPER)?;
    let token = match SIGNIN.confirmed(&mut req, &pepper).await? {
        Ok(token) => token,
        Err(Refused::Incomplete) => {
            return Ok(signin_page(Some("That sign-in link is incomplete."), 400)?)
        }
        Err(Refused::Csrf) => {
            return Ok(signin_page(
                Some("The sign-in form expired (CSRF check failed). Open the link from your email again."),
                403,
            )?)
        }
    };
    let token = token.as_str();
    let now = now_ms();
    let grant = match ServiceDb::for_credential(&env, token)? {
        Some(s) => {
            s.consume_signin_link(&token_hash(&pepper, token), now)
                .await?
        }
        None => None,
    };
    let Some(grant) = grant else {
        return Ok(signin_page(
            Some("That sign-in link has expired or was already used."),
            401,
        )?);
    };
    let db = TeamDb::new(&env, &grant)?;
    // A team awaiting deletion admits only its owners, who may cancel it.
    if db.settings().await?.delete_after.is_some() {
        let owner = db
            .members()
            .await?
            .iter()
            .any(|m| m.id == grant.member_id && m.role == Role::Owner);
        if !owner {
            return Ok(signin_page(
                Some("This team is scheduled for deletion; only its owners can sign in."),
                403,
            )?);
        }
    }
    let session_id = db.credential(&hex::encode(random32()?));
    let csrf = hex::encode(random32()?);
    db.add_web_session(
        &token_hash(&pepper, &session_id),
        &grant.member_id,
        &csrf,
        now,
        now + SESSION_TTL_MS,
    )
    .await?;
    // The first sign-in accepts the invitation (Members shows it active).
    db.accept_member(&grant.member_id, now).await?;
    // The actor is a person's e-mail as in every other entry, so filtering
    // the log by actor finds their sign-ins; the id stays in the details.
    let actor = db
        .members()
        .await?
        .into_iter()
        .find(|m| m.id == grant.member_id)
        .map_or_else(|| grant.member_id.clone(), |m| m.email);
    db.audit(
        &actor,
        AuditAction::SignIn,
        client_ip(&req).as_deref(),
        &serde_json::json!({"method": "link", "member_id": grant.member_id}),
        now,
    )
    .await?;
    let loopback = req.url()?.host_str().is_some_and(is_loopback_host);
    let mut r = redirect("/")?;
    r.headers_mut()
        .append("Set-Cookie", &session_cookie(&session_id, loopback))?;
    r.headers_mut()
        .append("Set-Cookie", &SIGNIN.clear_cookie())?;
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
    // Same Durable Object namespace as ingest, under distinct names. Every
    // outcome below answers the same page: a spent budget or an unknown
    // address only means that no mail goes out.
    let [per_client, per_pair, sent] = limiter_keys(&email, &ip);
    if within(&env, &per_client, PER_CLIENT).await?
        && within(&env, &per_pair, PER_ADDRESS_AND_CLIENT).await?
    {
        // An address may be a member on several shards: ask each.
        let mut grants = Vec::new();
        for service in ServiceDb::all(&env)? {
            grants.extend(service.members_by_email(&email).await?);
        }
        if !grants.is_empty() && within(&env, &sent, SENT_PER_ADDRESS).await? {
            for grant in grants {
                let db = TeamDb::new(&env, &grant)?;
                // A failed mail must not reveal membership through a different answer.
                if let Err(e) = send_link(&env, &db, &origin, &grant.member_id, &email, false).await
                {
                    worker::console_error!("sending sign-in email failed: {e}");
                }
            }
        }
    }
    Ok(signin_page(Some(NEUTRAL_ANSWER), 200)?)
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

#[cfg(test)]
mod tests {
    use super::*;
    use tally_core::bucket::{take, BucketState};

    struct Bucket(BucketState, Budget);

    impl Bucket {
        fn new(b: Budget) -> Bucket {
            Bucket(BucketState::full(b.config, 0), b)
        }
        fn take(&mut self, now: i64) -> bool {
            let (s, t) = take(self.0, self.1.config, now, self.1.cost);
            self.0 = s;
            matches!(t, Take::Granted { .. })
        }
    }

    /// One login attempt through the same gates as `login`: true when a mail goes out.
    fn attempt(client: &mut Bucket, pair: &mut Bucket, sent: &mut Bucket, now: i64) -> bool {
        client.take(now) && pair.take(now) && sent.take(now)
    }

    #[test]
    fn one_client_hammering_an_address_cannot_deny_another_client() {
        let mut sent = Bucket::new(SENT_PER_ADDRESS);
        let (mut attacker, mut attacker_pair) =
            (Bucket::new(PER_CLIENT), Bucket::new(PER_ADDRESS_AND_CLIENT));
        let mut mails = 0;
        // One request a second for a whole day from one client.
        for s in 0..86_400 {
            let now = s * 1000;
            if attempt(&mut attacker, &mut attacker_pair, &mut sent, now) {
                mails += 1;
            }
            // The member, from another network, asks every hour and always gets a link.
            if s % 3600 == 1800 {
                let (mut member, mut member_pair) =
                    (Bucket::new(PER_CLIENT), Bucket::new(PER_ADDRESS_AND_CLIENT));
                assert!(
                    attempt(&mut member, &mut member_pair, &mut sent, now),
                    "member denied at {s} s"
                );
            }
        }
        // The attacker's mails: a burst of 3, then one per 10 minutes.
        assert!(mails <= 3 + 86_400 / 600, "{mails}");
    }

    #[test]
    fn many_clients_together_are_capped_by_the_per_address_budget() {
        let mut sent = Bucket::new(SENT_PER_ADDRESS);
        let mut mails = 0;
        for c in 0..1000 {
            let (mut client, mut pair) =
                (Bucket::new(PER_CLIENT), Bucket::new(PER_ADDRESS_AND_CLIENT));
            if attempt(&mut client, &mut pair, &mut sent, c) {
                mails += 1;
            }
        }
        assert_eq!(mails, 10);
    }

    #[test]
    fn limiter_keys_separate_clients_and_addresses() {
        let a = limiter_keys("a@x.test", "1.2.3.4");
        let b = limiter_keys("a@x.test", "5.6.7.8");
        assert_ne!(a[1], b[1]);
        assert_eq!(a[2], b[2]);
        assert_ne!(a[0], b[0]);
    }
}
