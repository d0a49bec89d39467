//! Who is asking: the session cookie, the signed-in member behind it, and
//! the request guards handlers start with. A guard either yields the member
//! (with a team-scoped database) or the exact refusal the caller answers.
//!
//! Developers are not members: their read-only self-view (`/me`) has its
//! own cookie (`DEV_COOKIE`, sent only to `/me`), its own table and its own
//! guard (`DeveloperSignedIn`), so neither session can pass the other's guard.

use std::collections::HashMap;

use tally_core::hash::{hmac_sha256, token_hash};
use tally_core::time::HOUR_MS;
use worker::{Env, Request};

use super::error::{ApiError, PageError};
use crate::bindings;
use crate::db::{DeveloperPrincipal, ServiceDb, TeamDb, WebPrincipal};
use crate::util::{now_ms, required};
use crate::vocab::{AuditAction, Role};

pub const COOKIE: &str = "tally_session";
pub const SESSION_TTL_MS: i64 = 12 * HOUR_MS;
pub const SESSION_IDLE_MS: i64 = 2 * HOUR_MS;
/// Refreshing last-seen on every request would cost a D1 write per page view.
const SESSION_TOUCH_MS: i64 = 5 * 60 * 1000;
/// What members other than owners see while their team awaits deletion.
pub const SCHEDULED_FOR_DELETION: &str =
    "This team is scheduled for deletion: only its owners can sign in until an owner cancels it.";

/// Compares secrets without an early exit, by comparing their keyed hashes.
pub fn secret_eq(a: &str, b: &str) -> bool {
    hmac_sha256(b"tally-compare", a.as_bytes()) == hmac_sha256(b"tally-compare", b.as_bytes())
}

/// The value of cookie `name` in a `Cookie:` header.
pub fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|kv| {
        let (k, v) = kv.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

/// `Secure` is left out on loopback only, where `wrangler dev` speaks plain HTTP.
pub fn session_cookie(id: &str, loopback: bool) -> String {
    let secure = if loopback { "" } else { "; Secure" };
    format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
        SESSION_TTL_MS / 1000
    )
}

pub fn session_cookie_clear() -> String {
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0")
}

pub fn is_loopback_host(host: &str) -> bool {
    matches!(host, "127.0.0.1" | "localhost" | "[::1]")
}

pub fn client_ip(req: &Request) -> Option<String> {
    req.headers().get("CF-Connecting-IP").ok().flatten()
}

async fn web_principal(req: &Request, env: &Env) -> worker::Result<Option<WebPrincipal>> {
    let header = req.headers().get("Cookie")?.unwrap_or_default();
    let Some(id) = cookie_value(&header, COOKIE) else {
        return Ok(None);
    };
    let pepper = required(env, bindings::PEPPER)?;
    let now = now_ms();
    let Some(service) = ServiceDb::for_credential(env, id)? else {
        return Ok(None);
    };
    let p = service
        .web_session(&token_hash(&pepper, id), now, now - SESSION_IDLE_MS)
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

/// A member with a live session, and their team's database.
pub struct SignedIn {
    pub principal: WebPrincipal,
    pub db: TeamDb,
    pub ip: Option<String>,
}

impl SignedIn {
    pub async fn session(req: &Request, env: &Env) -> worker::Result<Option<SignedIn>> {
        let Some(principal) = web_principal(req, env).await? else {
            return Ok(None);
        };
        Ok(Some(SignedIn {
            db: TeamDb::new(env, &principal)?,
            ip: client_ip(req),
            principal,
        }))
    }

    /// While the team is scheduled for deletion only its owners get in
    /// (they may cancel); everyone else is refused by every guard.
    pub fn locked_out(&self) -> bool {
        self.principal.team_delete_after.is_some() && self.principal.role < Role::Owner
    }

    /// JSON routes: 401 without a session.
    pub async fn from_request(req: &Request, env: &Env) -> Result<SignedIn, ApiError> {
        let user = Self::session(req, env)
            .await?
            .ok_or_else(|| ApiError::unauthorized("sign in first"))?;
        if user.locked_out() {
            return Err(ApiError::forbidden(SCHEDULED_FOR_DELETION));
        }
        Ok(user)
    }

    /// Pages: the sign-in page without a session.
    pub async fn for_page(req: &Request, env: &Env) -> Result<SignedIn, PageError> {
        let user = Self::session(req, env).await?.ok_or(PageError::SignIn {
            message: None,
            status: 200,
        })?;
        if user.locked_out() {
            return Err(PageError::SignIn {
                message: Some(SCHEDULED_FOR_DELETION),
                status: 403,
            });
        }
        Ok(user)
    }

    /// Admin JSON routes need the session cookie AND the per-session CSRF
    /// token in `X-CSRF-Token`: a cross-site form can send the cookie but
    /// cannot read the token.
    pub async fn api_admin(req: &Request, env: &Env) -> Result<SignedIn, ApiError> {
        let user = Self::from_request(req, env).await?;
        let csrf = req.headers().get("X-CSRF-Token")?.unwrap_or_default();
        if !secret_eq(&csrf, &user.principal.csrf_token) {
            return Err(ApiError::Forbidden {
                code: "csrf",
                message: "missing or wrong X-CSRF-Token".into(),
            });
        }
        user.require(Role::Admin)?;
        Ok(user)
    }

    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.can(role) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "{} role required",
                role.as_str()
            )))
        }
    }

    pub fn require_page(&self, role: Role) -> Result<(), PageError> {
        if self.can(role) {
            Ok(())
        } else {
            Err(PageError::Forbidden(
                format!("This page needs the {} role.", role.as_str()).into(),
            ))
        }
    }

    /// Roles are ordered by power: an owner can do what an admin can.
    pub fn can(&self, role: Role) -> bool {
        self.principal.role >= role
    }

    /// Records an action by this member, from this request's address.
    pub async fn audit(
        &self,
        action: AuditAction,
        details: serde_json::Value,
    ) -> worker::Result<()> {
        self.db
            .audit(
                &self.principal.email,
                action,
                self.ip.as_deref(),
                &details,
                now_ms(),
            )
            .await
    }
}

/// The developer self-view's session cookie. Its path keeps browsers from
/// sending it anywhere but `/me…`.
pub const DEV_COOKIE: &str = "tally_dev_session";
pub const DEV_COOKIE_PATH: &str = "/me";

/// Like `session_cookie`, for a developer's self-view session.
pub fn developer_cookie(id: &str, loopback: bool) -> String {
    let secure = if loopback { "" } else { "; Secure" };
    format!(
        "{DEV_COOKIE}={id}; Path={DEV_COOKIE_PATH}; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
        SESSION_TTL_MS / 1000
    )
}

pub fn developer_cookie_clear() -> String {
    format!("{DEV_COOKIE}=; Path={DEV_COOKIE_PATH}; HttpOnly; SameSite=Lax; Max-Age=0")
}

/// How a developer appears as the actor of an audit entry: by id, never by
/// name, so that erasing the developer leaves no name behind in the log.
pub fn developer_actor(developer_id: &str) -> String {
    format!("developer:{developer_id}")
}

/// A developer with a live self-view session, and their team's database.
/// Read-only: nothing takes this guard to change anything but the session.
pub struct DeveloperSignedIn {
    pub principal: DeveloperPrincipal,
    pub db: TeamDb,
    pub ip: Option<String>,
}

impl DeveloperSignedIn {
    pub async fn session(req: &Request, env: &Env) -> worker::Result<Option<DeveloperSignedIn>> {
        let header = req.headers().get("Cookie")?.unwrap_or_default();
        let Some(id) = cookie_value(&header, DEV_COOKIE).filter(|v| !v.is_empty()) else {
            return Ok(None);
        };
        let pepper = required(env, bindings::PEPPER)?;
        let now = now_ms();
        let Some(service) = ServiceDb::for_credential(env, id)? else {
            return Ok(None);
        };
        let Some(principal) = service
            .developer_session(&token_hash(&pepper, id), now, now - SESSION_IDLE_MS)
            .await?
        else {
            return Ok(None);
        };
        let db = TeamDb::new(env, &principal)?;
        if now - principal.last_seen_at > SESSION_TOUCH_MS {
            db.touch_developer_session(&principal.id_hash, now).await?;
        }
        Ok(Some(DeveloperSignedIn {
            db,
            ip: client_ip(req),
            principal,
        }))
    }

    /// Self-view pages: without a session, how to get one (401).
    pub async fn for_page(req: &Request, env: &Env) -> Result<DeveloperSignedIn, PageError> {
        Self::session(req, env)
            .await?
            .ok_or(PageError::DeveloperSignIn {
                message: None,
                status: 401,
            })
    }

    pub fn actor(&self) -> String {
        developer_actor(&self.principal.developer_id)
    }

    /// Records an action by this developer (reading their own content).
    pub async fn audit(
        &self,
        action: AuditAction,
        details: serde_json::Value,
    ) -> worker::Result<()> {
        self.db
            .audit(
                &self.actor(),
                action,
                self.ip.as_deref(),
                &details,
                now_ms(),
            )
            .await
    }
}

/// A dashboard form post: the member, their CSRF field checked, their role
/// checked, and the decoded fields.
pub struct AdminForm {
    pub user: SignedIn,
    fields: HashMap<String, String>,
}

impl AdminForm {
    pub async fn read(mut req: Request, env: &Env, role: Role) -> Result<AdminForm, PageError> {
        let Some(user) = SignedIn::session(&req, env).await? else {
            return Err(PageError::SignIn {
                message: Some("Your session ended; sign in again."),
                status: 401,
            });
        };
        if user.locked_out() {
            return Err(PageError::SignIn {
                message: Some(SCHEDULED_FOR_DELETION),
                status: 403,
            });
        }
        let fields = parse_form(&req.bytes().await?);
        let csrf = fields.get("csrf").map(String::as_str).unwrap_or("");
        if !secret_eq(csrf, &user.principal.csrf_token) {
            return Err(PageError::Forbidden(
                "The form expired (CSRF check failed). Go back, reload and try again.".into(),
            ));
        }
        if !user.can(role) {
            return Err(PageError::Forbidden(
                format!("This needs the {} role.", role.as_str()).into(),
            ));
        }
        Ok(AdminForm { user, fields })
    }

    /// The field as sent, or "" when absent.
    pub fn raw(&self, name: &str) -> &str {
        self.fields.get(name).map(String::as_str).unwrap_or("")
    }

    /// The field without surrounding whitespace.
    pub fn trimmed(&self, name: &str) -> &str {
        self.raw(name).trim()
    }
}

pub fn parse_form(body: &[u8]) -> HashMap<String, String> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_session_among_other_cookies() {
        let h = "theme=dark; tally_session=abc123;other=x=y";
        assert_eq!(cookie_value(h, COOKIE), Some("abc123"));
        assert_eq!(cookie_value(h, "other"), Some("x=y"));
        assert_eq!(cookie_value("tally_session_old=1", COOKIE), None);
        assert_eq!(cookie_value("", COOKIE), None);
        assert_eq!(cookie_value("tally_session", COOKIE), None);
        assert_eq!(cookie_value(" tally_session= ", COOKIE), Some(""));
    }

    #[test]
    fn cookies_are_http_only_and_secure_off_loopback() {
        let c = session_cookie("s1", false);
        assert_eq!(
            c,
            "tally_session=s1; Path=/; HttpOnly; SameSite=Lax; Max-Age=43200; Secure"
        );
        assert!(!session_cookie("s1", true).contains("Secure"));
        assert!(session_cookie_clear().contains("Max-Age=0"));
        assert!(is_loopback_host("127.0.0.1") && is_loopback_host("[::1]"));
        assert!(!is_loopback_host("tally.example.com"));
    }

    #[test]
    fn developer_cookies_are_their_own_scoped_to_me_and_secure_off_loopback() {
        let c = developer_cookie("d1", false);
        assert_eq!(
            c,
            "tally_dev_session=d1; Path=/me; HttpOnly; SameSite=Lax; Max-Age=43200; Secure"
        );
        assert!(!developer_cookie("d1", true).contains("Secure"));
        assert!(developer_cookie_clear().contains("Max-Age=0"));
        // Neither cookie is read as the other.
        assert_eq!(cookie_value("tally_dev_session=d1", COOKIE), None);
        assert_eq!(cookie_value("tally_session=m1", DEV_COOKIE), None);
        assert_eq!(developer_actor("ab12"), "developer:ab12");
    }

    #[test]
    fn secrets_compare_by_value() {
        assert!(secret_eq("abc", "abc"));
        assert!(!secret_eq("abc", "abd"));
        assert!(!secret_eq("", "abc"));
    }

    #[test]
    fn forms_decode_plus_and_percent() {
        let f = parse_form(b"email=a%40b.test&name=Ada+Lovelace&csrf=");
        assert_eq!(f["email"], "a@b.test");
        assert_eq!(f["name"], "Ada Lovelace");
        assert_eq!(f["csrf"], "");
    }
}
