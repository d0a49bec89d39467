//! The confirm step every one-time link shares (members' e-mailed sign-in
//! links, developers' self-view links): `GET` only shows a form and sets a
//! nonce cookie, so a mail scanner or link preview that fetches the link
//! burns nothing; `POST` checks a CSRF token bound to the link, that nonce
//! and the link's purpose before the caller consumes the link.

use maud::Markup;
use tally_core::hash::hmac_sha256;
use worker::{Request, Response};

use super::auth::{cookie_value, is_loopback_host, parse_form, secret_eq};
use super::dashboard::layout::respond;

/// One kind of link: its own CSRF purpose, cookie and path, so a token
/// minted for one kind never confirms the other.
pub struct LinkKind {
    purpose: &'static str,
    pub cookie: &'static str,
    path: &'static str,
    ttl_ms: i64,
}

pub const SIGNIN: LinkKind = LinkKind {
    purpose: "tally-signin-confirm",
    cookie: "tally_link_nonce",
    path: "/auth/link",
    ttl_ms: super::signin::LINK_TTL_MS,
};

pub const SELF_VIEW: LinkKind = LinkKind {
    purpose: "tally-self-view-confirm",
    cookie: "tally_dev_link_nonce",
    path: "/me/link",
    ttl_ms: super::selfview::LINK_TTL_MS,
};

/// Why a confirmation was refused; each caller words it for its audience.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// No token in the form.
    Incomplete,
    /// No nonce cookie, or a CSRF token that is not this link's.
    Csrf,
}

impl LinkKind {
    /// The confirmation form's CSRF token, keyed with the pepper.
    pub fn form_token(&self, pepper: &str, link: &str, nonce: &str) -> String {
        hex::encode(hmac_sha256(
            pepper.as_bytes(),
            format!("{}\u{0}{link}\u{0}{nonce}", self.purpose).as_bytes(),
        ))
    }

    /// The confirmation page for `token`: `form` renders the page around the
    /// CSRF token it is given; this sets the nonce cookie (for this kind's
    /// path only) and keeps the page out of caches and referrers.
    pub fn confirm_page(
        &self,
        req: &Request,
        pepper: &str,
        nonce: &str,
        token: &str,
        form: impl FnOnce(&str) -> Markup,
    ) -> worker::Result<Response> {
        let csrf = self.form_token(pepper, token, nonce);
        let loopback = req.url()?.host_str().is_some_and(is_loopback_host);
        let secure = if loopback { "" } else { "; Secure" };
        let mut r = respond(form(&csrf), 200)?;
        r.headers_mut().set(
            "Set-Cookie",
            &format!(
                "{}={nonce}; Path={}; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
                self.cookie,
                self.path,
                self.ttl_ms / 1000
            ),
        )?;
        r.headers_mut().set("Cache-Control", "no-store")?;
        r.headers_mut().set("Referrer-Policy", "no-referrer")?;
        Ok(r)
    }

    /// Reads the confirmation form and checks it: the link's token when the
    /// form is this browser's answer to this link's page.
    pub async fn confirmed(
        &self,
        req: &mut Request,
        pepper: &str,
    ) -> worker::Result<Result<String, Refused>> {
        let cookies = req.headers().get("Cookie")?.unwrap_or_default();
        let nonce = cookie_value(&cookies, self.cookie)
            .unwrap_or("")
            .to_string();
        let form = parse_form(&req.bytes().await?);
        let token = form.get("token").cloned().unwrap_or_default();
        let csrf = form.get("csrf").map(String::as_str).unwrap_or("");
        if token.is_empty() {
            return Ok(Err(Refused::Incomplete));
        }
        if nonce.is_empty() || !secret_eq(csrf, &self.form_token(pepper, &token, &nonce)) {
            return Ok(Err(Refused::Csrf));
        }
        Ok(Ok(token))
    }

    /// Clears the nonce once the link is spent.
    pub fn clear_cookie(&self) -> String {
        format!(
            "{}=; Path={}; HttpOnly; SameSite=Lax; Max-Age=0",
            self.cookie, self.path
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_token_is_bound_to_link_nonce_pepper_and_kind() {
        let t = SIGNIN.form_token("p", "tly_signin_a", "n1");
        assert_eq!(t, SIGNIN.form_token("p", "tly_signin_a", "n1"));
        assert_ne!(t, SIGNIN.form_token("p", "tly_signin_b", "n1"));
        assert_ne!(t, SIGNIN.form_token("p", "tly_signin_a", "n2"));
        assert_ne!(t, SIGNIN.form_token("q", "tly_signin_a", "n1"));
        assert_ne!(t, SELF_VIEW.form_token("p", "tly_signin_a", "n1"));
        // The spelling is part of the contract with pages already open in
        // browsers when a new version deploys.
        assert_eq!(
            t,
            hex::encode(hmac_sha256(b"p", b"tally-signin-confirm\0tly_signin_a\0n1"))
        );
    }

    #[test]
    fn each_kind_clears_only_its_own_cookie() {
        assert_eq!(
            SELF_VIEW.clear_cookie(),
            "tally_dev_link_nonce=; Path=/me/link; HttpOnly; SameSite=Lax; Max-Age=0"
        );
        assert_eq!(
            SIGNIN.clear_cookie(),
            "tally_link_nonce=; Path=/auth/link; HttpOnly; SameSite=Lax; Max-Age=0"
        );
    }
}
