//! The one client of Anthropic's Messages API, shared by categorize-cloud
//! and the digest's AI summary: where to call, with which key and model, and
//! one bounded POST. What is sent and how the answer is read stay with each
//! caller.

use futures_util::future::{select, Either};
use tally_core::categorize::{ModelUsage, ANTHROPIC_VERSION, DEFAULT_ANTHROPIC_MODEL};
use tally_core::money::Usd;
use tally_core::pricing::{default_table, price_request, Priced};
use tally_core::usage::TokenUsage;
use worker::Env;

use crate::bindings;
use crate::util::config;

/// Key, base URL (a loopback fake in tests) and model, or None when the
/// deployment has no key: callers then skip the call and say so.
pub struct Client {
    key: String,
    base: String,
    pub model: String,
}

impl Client {
    pub fn from_env(env: &Env) -> Option<Self> {
        Some(Self {
            key: config(env, bindings::ANTHROPIC_API_KEY)?,
            base: config(env, bindings::ANTHROPIC_BASE_URL)
                .unwrap_or_else(|| "https://api.anthropic.com".into()),
            model: config(env, bindings::ANTHROPIC_MODEL)
                .unwrap_or_else(|| DEFAULT_ANTHROPIC_MODEL.into()),
        })
    }

    /// POSTs `body` to `/v1/messages`; the answer's text on 200, else a short
    /// reason (status and the start of the body, "timed out" past `timeout`).
    pub async fn messages(
        &self,
        body: String,
        timeout: std::time::Duration,
    ) -> Result<String, String> {
        let headers = worker::Headers::new();
        for (k, v) in [
            ("content-type", "application/json"),
            ("x-api-key", self.key.as_str()),
            ("anthropic-version", ANTHROPIC_VERSION),
        ] {
            headers.set(k, v).map_err(|e| e.to_string())?;
        }
        let mut init = worker::RequestInit::new();
        init.with_method(worker::Method::Post)
            .with_headers(headers)
            .with_body(Some(body.into()));
        let req = worker::Request::new_with_init(
            &format!("{}/v1/messages", self.base.trim_end_matches('/')),
            &init,
        )
        .map_err(|e| e.to_string())?;
        let fetch = Box::pin(async move {
            let mut resp = worker::Fetch::Request(req)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let status = resp.status_code();
            let text = resp.text().await.map_err(|e| e.to_string())?;
            if status != 200 {
                return Err(format!(
                    "HTTP {status}: {}",
                    text.chars().take(200).collect::<String>()
                ));
            }
            Ok(text)
        });
        match select(fetch, worker::Delay::from(timeout)).await {
            Either::Left((r, _)) => r,
            Either::Right(_) => Err("timed out".into()),
        }
    }

    /// What a call's usage costs at the model's list price; None for a model
    /// the table does not know (nothing is added then, never a guess).
    pub fn price(&self, u: &ModelUsage) -> Option<Usd> {
        let tokens = TokenUsage {
            input: u.input_tokens,
            output: u.output_tokens,
            ..Default::default()
        };
        match price_request(default_table(), &self.model, &tokens, false) {
            Priced::Pico(c) => Some(Usd::from_pico(c.into())),
            _ => None,
        }
    }
}
