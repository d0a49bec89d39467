//! Posting to Slack, and reading its answers as Slack documents them:
//! incoming webhooks answer `ok` or an error word with a status code
//! (404 `channel_not_found`, 410 `channel_is_archived`, 403 `invalid_token`
//! / `no_service` / `action_prohibited`, 429 with `Retry-After`);
//! `chat.postMessage` answers HTTP 200 with `{"ok": false, "error": …}`.

use futures_util::future::{select, Either};
use serde_json::Value;
use tally_core::time::{MINUTE_MS, SECOND_MS};
use worker::Env;

use crate::bindings;
use crate::util::config;

pub const WEBHOOK_PREFIX: &str = "https://hooks.slack.com/services/";
pub const DEFAULT_API_BASE: &str = "https://slack.com/api";
const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// After a 5xx or a timeout: the next hourly tick retries, but a doubled
/// trigger of the same tick does not.
pub const RETRY_LATER_MS: i64 = 30 * MINUTE_MS;
/// A 429 without a usable Retry-After waits this long.
const DEFAULT_RETRY_AFTER_S: i64 = 60;

/// Where a message goes: the decrypted secret and, for a bot, the channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Webhook { url: String },
    Bot { token: String, channel: String },
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    /// The channel or credential is gone: no more posts until re-tested.
    Broken(String),
    /// Slack asked to wait (429): not before this instant.
    RetryAt(i64, String),
    /// 5xx, a timeout or a transport error: the next tick tries again.
    Retry(String),
    /// Refused for good (a malformed message): recorded, not retried.
    Failed(String),
}

/// The HTTP answer as far as the classification needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: String,
    pub retry_after: Option<String>,
}

const BREAKING: &[&str] = &[
    "channel_not_found",
    "channel_is_archived",
    "is_archived",
    "invalid_token",
    "no_service",
    "no_service_id",
    "action_prohibited",
    "invalid_auth",
    "not_authed",
    "account_inactive",
    "token_revoked",
    "token_expired",
    "not_in_channel",
    "missing_scope",
    "team_disabled",
];

fn error_word(body: &str) -> String {
    let w: String = body.trim().chars().take(100).collect();
    if w.is_empty() {
        "(empty answer)".into()
    } else {
        w
    }
}

pub fn classify(a: &Answer, bot: bool, now: i64) -> Outcome {
    let wait = || {
        let secs = a
            .retry_after
            .as_deref()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .filter(|s| (0..=86_400).contains(s))
            .unwrap_or(DEFAULT_RETRY_AFTER_S);
        now + secs * SECOND_MS
    };
    match a.status {
        200 if bot => {
            let v: Value = serde_json::from_str(&a.body).unwrap_or(Value::Null);
            if v["ok"] == Value::Bool(true) {
                return Outcome::Sent;
            }
            let e = v["error"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| error_word(&a.body));
            if BREAKING.contains(&e.as_str()) {
                Outcome::Broken(e)
            } else if e == "ratelimited" {
                Outcome::RetryAt(wait(), e)
            } else if e == "internal_error"
                || e == "fatal_error"
                || e == "service_unavailable"
                || e == "request_timeout"
            {
                Outcome::Retry(e)
            } else {
                Outcome::Failed(e)
            }
        }
        200..=299 => Outcome::Sent,
        429 => Outcome::RetryAt(wait(), error_word(&a.body)),
        401 | 403 | 404 | 410 => Outcome::Broken(error_word(&a.body)),
        500..=599 => Outcome::Retry(format!("HTTP {}: {}", a.status, error_word(&a.body))),
        _ => Outcome::Failed(error_word(&a.body)),
    }
}

/// Whether tests allow loopback webhook URLs (`SLACK_ALLOW_LOOPBACK=1`, set
/// by the e2e harness only).
pub fn loopback_allowed(env: &Env) -> bool {
    config(env, bindings::SLACK_ALLOW_LOOPBACK).as_deref() == Some("1")
}

/// A webhook URL an admin may save: Slack's host over https, or a loopback
/// fake when the test var says so.
pub fn valid_webhook(url: &str, allow_loopback: bool) -> bool {
    if url.len() > 500 || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    if let Some(rest) = url.strip_prefix(WEBHOOK_PREFIX) {
        return !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'/');
    }
    allow_loopback && (url.starts_with("http://127.0.0.1:") || url.starts_with("http://localhost:"))
}

pub fn valid_bot_token(t: &str) -> bool {
    t.starts_with("xoxb-")
        && t.len() <= 200
        && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Channel ids look like C0123ABCD (public), G… (private), D… (direct).
pub fn valid_channel(c: &str) -> bool {
    (9..=15).contains(&c.len())
        && c.starts_with(['C', 'G', 'D'])
        && c.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// The last four characters, all that is ever shown of a secret again.
pub fn last4(secret: &str) -> String {
    let n = secret.chars().count();
    secret.chars().skip(n.saturating_sub(4)).collect()
}

async fn send(url: &str, auth: Option<&str>, body: String) -> Result<Answer, String> {
    let headers = worker::Headers::new();
    headers
        .set("Content-Type", "application/json; charset=utf-8")
        .map_err(|e| e.to_string())?;
    if let Some(token) = auth {
        headers
            .set("Authorization", &format!("Bearer {token}"))
            .map_err(|e| e.to_string())?;
    }
    let mut init = worker::RequestInit::new();
    init.with_method(worker::Method::Post)
        .with_headers(headers)
        .with_body(Some(body.into()));
    let req = worker::Request::new_with_init(url, &init).map_err(|e| e.to_string())?;
    let fetch = Box::pin(async move {
        let mut resp = worker::Fetch::Request(req)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = resp.status_code();
        let retry_after = resp.headers().get("Retry-After").ok().flatten();
        let body = resp.text().await.unwrap_or_default();
        Ok(Answer {
            status,
            body,
            retry_after,
        })
    });
    match select(fetch, worker::Delay::from(TIMEOUT)).await {
        Either::Left((r, _)) => r,
        Either::Right(_) => Err("timed out".into()),
    }
}

/// Posts `message` (`text` + `blocks`) and classifies the answer; the HTTP
/// status comes back too, for the delivery row.
pub async fn post(env: &Env, target: &Target, message: &Value, now: i64) -> (Outcome, Option<u16>) {
    let (answer, bot) = match target {
        Target::Webhook { url } => (send(url, None, message.to_string()).await, false),
        Target::Bot { token, channel } => {
            let base =
                config(env, bindings::SLACK_API_BASE).unwrap_or_else(|| DEFAULT_API_BASE.into());
            let mut body = message.clone();
            body["channel"] = Value::String(channel.clone());
            let url = format!("{}/chat.postMessage", base.trim_end_matches('/'));
            (send(&url, Some(token), body.to_string()).await, true)
        }
    };
    match answer {
        Ok(a) => (classify(&a, bot, now), Some(a.status)),
        Err(e) => (Outcome::Retry(e), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(status: u16, body: &str, retry_after: Option<&str>) -> Answer {
        Answer {
            status,
            body: body.into(),
            retry_after: retry_after.map(str::to_string),
        }
    }

    #[test]
    fn webhook_answers_are_read_as_slack_documents_them() {
        let now = 1_000_000;
        assert_eq!(classify(&a(200, "ok", None), false, now), Outcome::Sent);
        assert_eq!(
            classify(&a(404, "channel_not_found", None), false, now),
            Outcome::Broken("channel_not_found".into())
        );
        assert_eq!(
            classify(&a(410, "channel_is_archived", None), false, now),
            Outcome::Broken("channel_is_archived".into())
        );
        assert_eq!(
            classify(&a(403, "invalid_token", None), false, now),
            Outcome::Broken("invalid_token".into())
        );
        assert_eq!(
            classify(&a(403, "action_prohibited", None), false, now),
            Outcome::Broken("action_prohibited".into())
        );
        assert_eq!(
            classify(&a(429, "rate_limited", Some("30")), false, now),
            Outcome::RetryAt(now + 30_000, "rate_limited".into())
        );
        assert_eq!(
            classify(&a(429, "", Some("soon")), false, now),
            Outcome::RetryAt(now + 60_000, "(empty answer)".into())
        );
        assert_eq!(
            classify(&a(503, "upstream", None), false, now),
            Outcome::Retry("HTTP 503: upstream".into())
        );
        assert_eq!(
            classify(&a(400, "invalid_blocks", None), false, now),
            Outcome::Failed("invalid_blocks".into())
        );
    }

    #[test]
    fn bot_answers_are_200_with_ok_false() {
        let now = 5;
        assert_eq!(
            classify(&a(200, r#"{"ok":true,"ts":"1.2"}"#, None), true, now),
            Outcome::Sent
        );
        assert_eq!(
            classify(
                &a(200, r#"{"ok":false,"error":"channel_not_found"}"#, None),
                true,
                now
            ),
            Outcome::Broken("channel_not_found".into())
        );
        assert_eq!(
            classify(
                &a(200, r#"{"ok":false,"error":"not_in_channel"}"#, None),
                true,
                now
            ),
            Outcome::Broken("not_in_channel".into())
        );
        assert_eq!(
            classify(
                &a(200, r#"{"ok":false,"error":"msg_too_long"}"#, None),
                true,
                now
            ),
            Outcome::Failed("msg_too_long".into())
        );
        assert_eq!(
            classify(
                &a(429, r#"{"ok":false,"error":"ratelimited"}"#, Some("7")),
                true,
                now
            ),
            Outcome::RetryAt(7_005, r#"{"ok":false,"error":"ratelimited"}"#.into())
        );
        assert_eq!(
            classify(&a(200, "<html>", None), true, now),
            Outcome::Failed("<html>".into())
        );
    }

    #[test]
    fn only_slack_webhooks_unless_tests_allow_loopback() {
        assert!(valid_webhook(
            "https://hooks.slack.com/services/T000/B000/XXXX",
            false
        ));
        assert!(!valid_webhook("https://hooks.slack.com/services/", false));
        assert!(!valid_webhook(
            "https://hooks.slack.com.evil.test/services/T/B/X",
            false
        ));
        assert!(!valid_webhook(
            "http://hooks.slack.com/services/T/B/X",
            false
        ));
        assert!(!valid_webhook("http://127.0.0.1:9999/hook", false));
        assert!(valid_webhook("http://127.0.0.1:9999/hook", true));
        assert!(!valid_webhook("http://169.254.169.254/latest", true));
        assert!(valid_bot_token("xoxb-123-456-abc") && !valid_bot_token("xoxp-123"));
        assert!(
            valid_channel("C0123ABCD") && !valid_channel("#general") && !valid_channel("c0123abcd")
        );
        assert_eq!(
            last4("https://hooks.slack.com/services/T/B/abcd1234"),
            "1234"
        );
        assert_eq!(last4("ab"), "ab");
    }
}
