//! Small HTTP and platform helpers shared by every part of the Worker.

use std::collections::HashMap;

use crate::bindings;
use serde::Serialize;
use worker::{Date, Env, Request, Response, Result};

pub fn now_ms() -> i64 {
    Date::now().as_millis() as i64
}

/// 32 bytes from the platform CSPRNG (crypto.getRandomValues in workerd).
pub fn random32() -> Result<[u8; 32]> {
    let mut b = [0u8; 32];
    getrandom::getrandom(&mut b).map_err(|e| worker::Error::RustError(format!("rng: {e}")))?;
    Ok(b)
}

pub fn random_id() -> Result<String> {
    Ok(hex::encode(&random32()?[..16]))
}

/// Reads configuration that may be a plain var or a secret; missing values
/// fall back so a local `wrangler dev` works without any set-up.
pub fn config(env: &Env, name: &str) -> Option<String> {
    env.var(name)
        .map(|v| v.to_string())
        .or_else(|_| env.secret(name).map(|v| v.to_string()))
        .ok()
        .filter(|s| !s.is_empty())
}

pub fn required(env: &Env, name: &str) -> Result<String> {
    config(env, name).ok_or_else(|| worker::Error::RustError(format!("{name} is not configured")))
}

pub fn json_status<T: Serialize>(status: u16, body: &T) -> Result<Response> {
    Ok(Response::from_json(body)?.with_status(status))
}

/// 303 See Other: after a form post, so a reload does not post again.
pub fn redirect(to: &str) -> Result<Response> {
    let mut r = Response::empty()?.with_status(303);
    r.headers_mut().set("Location", to)?;
    Ok(r)
}

/// The query string as a map; a repeated key keeps its last value.
pub fn query(req: &Request) -> HashMap<String, String> {
    req.url()
        .map(|u| u.query_pairs().into_owned().collect())
        .unwrap_or_default()
}

pub fn bearer(req: &worker::Request) -> Option<String> {
    let h = req.headers().get("Authorization").ok().flatten()?;
    let t = h.strip_prefix("Bearer ")?.trim();
    (!t.is_empty()).then(|| t.to_string())
}

pub fn valid_email(e: &str) -> bool {
    let Some((local, domain)) = e.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && e.len() <= 254
        && !e
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>')
}

/// Resend-compatible `POST {EMAIL_API_URL}` with a bearer key.
pub async fn send_email(env: &Env, to: &str, subject: &str, text: &str, html: &str) -> Result<()> {
    send_email_with(env, to, subject, text, html, &[]).await
}

/// As `send_email`, with extra mail headers (Resend's `headers` field), e.g.
/// `List-Unsubscribe`.
pub async fn send_email_with(
    env: &Env,
    to: &str,
    subject: &str,
    text: &str,
    html: &str,
    mail_headers: &[(&str, String)],
) -> Result<()> {
    let url = required(env, bindings::EMAIL_API_URL)?;
    let key = required(env, bindings::EMAIL_API_KEY)?;
    let from =
        config(env, bindings::EMAIL_FROM).unwrap_or_else(|| "Tally <tally@localhost>".into());
    let mut body = serde_json::json!({"from": from, "to": [to], "subject": subject, "text": text, "html": html});
    if !mail_headers.is_empty() {
        body["headers"] = mail_headers
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.clone())))
            .collect::<serde_json::Map<_, _>>()
            .into();
    }
    let body = body.to_string();
    let headers = worker::Headers::new();
    headers.set("Authorization", &format!("Bearer {key}"))?;
    headers.set("Content-Type", "application/json")?;
    let mut init = worker::RequestInit::new();
    init.with_method(worker::Method::Post)
        .with_headers(headers)
        .with_body(Some(body.into()));
    let mut resp = worker::Fetch::Request(worker::Request::new_with_init(&url, &init)?)
        .send()
        .await?;
    if !(200..300).contains(&resp.status_code()) {
        return Err(worker::Error::RustError(format!(
            "email provider answered {}: {}",
            resp.status_code(),
            resp.text().await.unwrap_or_default()
        )));
    }
    Ok(())
}
