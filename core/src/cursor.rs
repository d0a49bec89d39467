//! Cursor's team usage, as its Admin API reports it
//! (`POST /teams/filtered-usage-events`): the answer's wire format, Cursor's
//! model names → the price table's, the event id that makes overlapping
//! pulls count each event once, and the masked name of an e-mail address.
//! Pure: the Worker's `cursor` module does the HTTP, D1 and queue work.
//!
//! Cursor writes no token counts on disk, so this is its only source. Each
//! usage event with token usage becomes one `WireEvent` of agent `cursor`,
//! re-priced at the edge from list prices like every other source; Cursor's
//! own charge is kept only as the comparison. Events without token usage
//! (request-based plans, `isTokenBasedCall: false`) carry nothing to price:
//! they are counted as skipped, never as $0.

use serde::{Deserialize, Deserializer};

use crate::event::{AgentKind, WireEvent, MAX_TOKENS_PER_FIELD};
use crate::hash::{hmac_hex, sha256_hex};
use crate::money::PicoUsd;
use crate::pricing::default_table;
use crate::privacy::{outbound, LocalRecord};
use crate::usage::TokenUsage;

/// Events asked for per page.
pub const PAGE_SIZE: u32 = 100;
/// pico-USD in one US cent.
pub const PICO_PER_CENT: u64 = 10_000_000_000;

/// One page of `filtered-usage-events`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Page {
    #[serde(default)]
    pub total_usage_events_count: u64,
    pub pagination: Pagination,
    #[serde(default)]
    pub usage_events: Vec<UsageEvent>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pagination {
    pub num_pages: u64,
    pub current_page: u64,
    pub page_size: u64,
    pub has_next_page: bool,
    #[serde(default)]
    pub has_previous_page: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageEvent {
    /// Milliseconds since the epoch; Cursor sends it as a decimal string.
    #[serde(deserialize_with = "ms_string_or_number")]
    pub timestamp: i64,
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub max_mode: bool,
    #[serde(default)]
    pub is_token_based_call: bool,
    #[serde(default)]
    pub token_usage: Option<CursorTokens>,
    /// What Cursor charged, in cents (fractional).
    #[serde(default)]
    pub charged_cents: Option<f64>,
    #[serde(default)]
    pub user_email: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CursorTokens {
    #[serde(default)]
    pub input_tokens: u64,
    #[serde(default)]
    pub output_tokens: u64,
    #[serde(default)]
    pub cache_write_tokens: u64,
    #[serde(default)]
    pub cache_read_tokens: u64,
    /// Cursor's model cost in cents, before its own fee.
    #[serde(default)]
    pub total_cents: Option<f64>,
}

fn ms_string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Ms {
        N(i64),
        S(String),
    }
    match Ms::deserialize(d)? {
        Ms::N(n) => Ok(n),
        Ms::S(s) => s
            .trim()
            .parse()
            .map_err(|_| serde::de::Error::custom(format!("timestamp {s:?} is not milliseconds"))),
    }
}

/// The request body of one page: `[start, end)` in ms.
pub fn request_body(start_ms: i64, end_ms: i64, page: u64, page_size: u32) -> serde_json::Value {
    serde_json::json!({"startDate": start_ms, "endDate": end_ms, "page": page, "pageSize": page_size})
}

/// The `Authorization` header: HTTP Basic with the admin API key as the
/// user name and an empty password, as Cursor's Admin API documents it.
pub fn basic_auth(api_key: &str) -> String {
    const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let input = format!("{api_key}:").into_bytes();
    let mut out = String::with_capacity(6 + input.len().div_ceil(3) * 4);
    out.push_str("Basic ");
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(B64[((n >> (18 - 6 * k)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A page as Cursor answers it, or what is wrong with it.
pub fn parse_page(body: &str) -> Result<Page, String> {
    serde_json::from_str(body).map_err(|e| format!("Cursor's answer is not a usage page: {e}"))
}

/// Cursor's model name → the price table's, where they differ: Cursor writes
/// Claude models version first (`claude-4.5-sonnet`, `claude-3.7-sonnet`),
/// adds `-thinking` (billed as output tokens anyway) and OpenAI effort levels
/// (`gpt-5-high`). A name the table does not know stays Cursor's (lowercased),
/// so it shows as unpriced, never as $0 (`auto`, `composer-1`, …).
pub fn map_model(cursor: &str) -> String {
    let raw = cursor.trim().to_ascii_lowercase();
    let table = default_table();
    let mut s = raw.as_str();
    for suffix in ["-thinking", "-max"] {
        s = s.strip_suffix(suffix).unwrap_or(s);
    }
    for effort in ["-high", "-medium", "-low", "-minimal", "-fast"] {
        if let Some(rest) = s.strip_suffix(effort) {
            if rest.starts_with("gpt-") || rest.starts_with('o') {
                s = rest;
            }
        }
    }
    let candidate = claude_order(s).unwrap_or_else(|| s.to_string());
    if table.lookup(&candidate).is_some() {
        candidate
    } else {
        raw
    }
}

/// `claude-4.5-sonnet` → `claude-sonnet-4-5`, `claude-3.7-sonnet` →
/// `claude-3-7-sonnet` (Anthropic's own order changed at 4).
fn claude_order(s: &str) -> Option<String> {
    let rest = s.strip_prefix("claude-")?;
    let (version, family) = rest.split_once('-')?;
    if !matches!(family, "sonnet" | "opus" | "haiku") {
        return None;
    }
    let major: u32 = version.split('.').next()?.parse().ok()?;
    if !version.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return None;
    }
    let v = version.replace('.', "-");
    Some(if major >= 4 {
        format!("claude-{family}-{v}")
    } else {
        format!("claude-{v}-{family}")
    })
}

/// Whole pico-USD of a cents figure, through its shortest round-trip text
/// (no float arithmetic on money); `None` when negative or not finite.
pub fn cents_to_pico(cents: f64) -> Option<PicoUsd> {
    if !cents.is_finite() || cents < 0.0 {
        return None;
    }
    let text = format!("{cents}");
    let (whole, frac) = text.split_once('.').unwrap_or((&text, ""));
    let whole: u64 = whole.parse().ok()?;
    let mut digits: String = frac.chars().take(10).collect();
    while digits.len() < 10 {
        digits.push('0');
    }
    let frac: u64 = digits.parse().ok()?;
    whole.checked_mul(PICO_PER_CENT)?.checked_add(frac)
}

/// The keyed hash an e-mail address is kept as (never in clear).
pub fn email_hash(team_salt: &str, email: &str) -> String {
    hmac_hex(
        team_salt.as_bytes(),
        format!(
            "tally-cursor-email\u{0}{}",
            email.trim().to_ascii_lowercase()
        )
        .as_bytes(),
    )
}

/// `jane@example.com` → `j…@example.com`: enough for an admin to recognise
/// the person and link or rename the developer, not the address itself.
pub fn masked_email(email: &str) -> String {
    let e = email.trim().to_ascii_lowercase();
    let first: String = e.chars().take(1).collect();
    match e.split_once('@') {
        Some((_, domain)) if !domain.is_empty() => format!("{first}…@{domain}"),
        _ if first.is_empty() => "unknown Cursor user".to_string(),
        _ => format!("{first}…"),
    }
}

/// Why an event is not counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// No token usage: a request-based plan or a non-token call.
    NoTokens,
    /// Token counts over the wire limit, or no time.
    Invalid,
}

/// A usable event: its e-mail, the wire event and Cursor's charge.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapped {
    pub email: String,
    pub event: WireEvent,
    pub charged_pico: Option<PicoUsd>,
}

/// The event's id: a keyed hash (team salt) of everything Cursor says about
/// it, so the same event pulled twice has one id and two events differ.
pub fn event_id(team_salt: &str, e: &UsageEvent) -> String {
    let t = e.token_usage.unwrap_or(CursorTokens {
        input_tokens: 0,
        output_tokens: 0,
        cache_write_tokens: 0,
        cache_read_tokens: 0,
        total_cents: None,
    });
    let charged = e
        .charged_cents
        .and_then(cents_to_pico)
        .map(|p| p.to_string())
        .unwrap_or_default();
    let parts = [
        "tally-cursor-v1",
        &e.user_email.trim().to_ascii_lowercase(),
        &e.timestamp.to_string(),
        &e.model,
        &e.kind,
        &e.max_mode.to_string(),
        &t.input_tokens.to_string(),
        &t.output_tokens.to_string(),
        &t.cache_write_tokens.to_string(),
        &t.cache_read_tokens.to_string(),
        &charged,
    ];
    let mac = hmac_hex(team_salt.as_bytes(), parts.join("\u{0}").as_bytes());
    format!("cursor-{}", &mac[..40])
}

/// One Cursor event → the wire event an agent would send (no project, no
/// session: Cursor names neither), or why it is not counted.
pub fn map_event(team_salt: &str, e: &UsageEvent) -> Result<Mapped, Skip> {
    if e.timestamp <= 0 {
        return Err(Skip::Invalid);
    }
    let t = match e.token_usage {
        Some(t) if e.is_token_based_call || t.input_tokens + t.output_tokens > 0 => t,
        _ => return Err(Skip::NoTokens),
    };
    let tokens = TokenUsage {
        input: t.input_tokens,
        output: t.output_tokens,
        cache_write_5m: t.cache_write_tokens,
        cache_write_1h: 0,
        cache_read: t.cache_read_tokens,
    };
    if [
        tokens.input,
        tokens.output,
        tokens.cache_write_5m,
        tokens.cache_read,
    ]
    .iter()
    .any(|&n| n > MAX_TOKENS_PER_FIELD)
    {
        return Err(Skip::Invalid);
    }
    let charged_pico = e.charged_cents.and_then(cents_to_pico);
    let rec = LocalRecord {
        id: event_id(team_salt, e),
        ts: e.timestamp,
        agent: AgentKind::Cursor,
        model: map_model(&e.model),
        tokens,
        fast: false,
        // Cursor's charge rides as the sender's price: the edge re-prices
        // and counts the difference, as for an agent's or OTLP's figure.
        cost_pico_usd: charged_pico,
        cwd: String::new(),
        // Cursor's usage events name no repository or branch.
        branch: String::new(),
        session_id: String::new(),
        prompt: None,
        response: None,
        tools: Vec::new(),
        category: None,
    };
    // Mode Off: Cursor's answer carries no text, and a mode's extra fields
    // are filled by nothing here; the edge restricts to the team's mode.
    let event = outbound(&rec, crate::event::PrivacyMode::Off, team_salt, &|s| {
        s.to_string()
    });
    Ok(Mapped {
        email: e.user_email.trim().to_ascii_lowercase(),
        event,
        charged_pico,
    })
}

/// The batch id of a developer's new events: stable for the same events, so
/// a pull retried after a failure is recognised by the consumer's markers.
pub fn batch_id(integration_id: &str, developer_id: &str, ids: &[&str]) -> String {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    let mut s = format!("tally-cursor-v1:{integration_id}:{developer_id}");
    for id in ids {
        s.push(':');
        s.push_str(id);
    }
    format!("cursor-{}", &sha256_hex(s.as_bytes())[..40])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pricing::price_request;

    #[test]
    fn cursor_model_names_map_to_the_price_table() {
        for (cursor, table) in [
            ("claude-4-sonnet", "claude-sonnet-4"),
            ("claude-4-sonnet-thinking", "claude-sonnet-4"),
            ("claude-4.5-sonnet-thinking", "claude-sonnet-4-5"),
            ("claude-4.5-sonnet", "claude-sonnet-4-5"),
            ("claude-4-opus", "claude-opus-4"),
            ("claude-4.1-opus", "claude-opus-4-1"),
            ("claude-4.5-haiku", "claude-haiku-4-5"),
            ("claude-3.7-sonnet", "claude-3-7-sonnet"),
            ("claude-3.5-sonnet", "claude-3-5-sonnet"),
            ("claude-sonnet-4-5", "claude-sonnet-4-5"),
            ("gpt-5", "gpt-5"),
            ("gpt-5-high", "gpt-5"),
            ("gpt-5-codex", "gpt-5-codex"),
            ("GPT-4.1", "gpt-4.1"),
            ("o3", "o3"),
            ("gemini-2.5-pro", "gemini-2.5-pro"),
        ] {
            assert_eq!(map_model(cursor), table, "{cursor}");
            assert!(default_table().lookup(table).is_some(), "{table}");
        }
        // Names the table does not know stay Cursor's: unpriced, never $0.
        for unknown in ["auto", "default", "composer-1", "claude-9-verse"] {
            assert_eq!(map_model(unknown), unknown);
            assert_eq!(
                price_request(default_table(), unknown, &TokenUsage::default(), false).pico(),
                None
            );
        }
    }

    #[test]
    fn the_key_goes_as_basic_auth_with_an_empty_password() {
        // `printf 'key_abc:' | base64` and friends.
        assert_eq!(basic_auth("key_abc"), "Basic a2V5X2FiYzo=");
        assert_eq!(basic_auth("ab"), "Basic YWI6");
        assert_eq!(basic_auth("abcd"), "Basic YWJjZDo=");
        assert_eq!(basic_auth(""), "Basic Og==");
    }

    #[test]
    fn e_mails_are_masked_and_hashed_per_team() {
        assert_eq!(masked_email("Jane.Doe@Example.com"), "j…@example.com");
        assert_eq!(masked_email("x@y.io"), "x…@y.io");
        assert_eq!(masked_email("nobody"), "n…");
        assert_eq!(masked_email(""), "unknown Cursor user");
        let a = email_hash("salt-a", "jane@example.com");
        assert_eq!(a, email_hash("salt-a", " JANE@example.com "));
        assert_ne!(a, email_hash("salt-b", "jane@example.com"));
        assert_eq!(a.len(), 64);
        assert!(!a.contains("jane"));
    }

    #[test]
    fn cents_become_exact_pico_usd() {
        assert_eq!(cents_to_pico(20.18232), Some(201_823_200_000));
        assert_eq!(cents_to_pico(0.0), Some(0));
        assert_eq!(cents_to_pico(150.0), Some(1_500_000_000_000));
        assert_eq!(cents_to_pico(0.0000001), Some(1_000));
        assert_eq!(cents_to_pico(-1.0), None);
        assert_eq!(cents_to_pico(f64::NAN), None);
    }

    fn page_json() -> &'static str {
        r#"{"totalUsageEventsCount": 3,
            "pagination": {"numPages": 1, "currentPage": 1, "pageSize": 100, "hasNextPage": false, "hasPreviousPage": false},
            "usageEvents": [
              {"timestamp": "1750979225854", "model": "claude-4.5-sonnet-thinking", "kind": "Usage-based", "maxMode": true,
               "requestsCosts": 5, "isTokenBasedCall": true,
               "tokenUsage": {"inputTokens": 126, "outputTokens": 450, "cacheWriteTokens": 6112, "cacheReadTokens": 11964, "totalCents": 20.18232},
               "chargedCents": 24.218784, "isFreeBugbot": false, "userEmail": "Developer@Company.com"},
              {"timestamp": "1750979225999", "model": "gpt-5", "kind": "Included in Business", "maxMode": false,
               "requestsCosts": 1, "isTokenBasedCall": false, "isFreeBugbot": false, "userEmail": "other@company.com"},
              {"timestamp": 1750979226000, "model": "auto", "kind": "Usage-based", "maxMode": false,
               "isTokenBasedCall": true, "tokenUsage": {"inputTokens": 10, "outputTokens": 5}, "userEmail": "developer@company.com"}
            ],
            "period": {"startDate": 1750900000000, "endDate": 1751000000000}}"#
    }

    #[test]
    fn a_page_in_cursors_format_maps_to_wire_events() {
        let p = parse_page(page_json()).unwrap();
        assert_eq!(p.total_usage_events_count, 3);
        assert!(!p.pagination.has_next_page);
        assert_eq!(p.usage_events.len(), 3);

        let m = map_event("salt", &p.usage_events[0]).unwrap();
        assert_eq!(m.email, "developer@company.com");
        assert_eq!(m.event.agent, AgentKind::Cursor);
        assert_eq!(m.event.ts, 1_750_979_225_854);
        assert_eq!(m.event.model, "claude-sonnet-4-5");
        assert_eq!(
            m.event.tokens,
            TokenUsage {
                input: 126,
                output: 450,
                cache_write_5m: 6112,
                cache_write_1h: 0,
                cache_read: 11964
            }
        );
        assert_eq!(m.charged_pico, Some(242_187_840_000));
        assert_eq!(m.event.cost_pico_usd, Some(242_187_840_000));
        assert!(m.event.prompt.is_none() && m.event.category.is_none());
        assert_eq!(m.event.id, event_id("salt", &p.usage_events[0]));
        assert!(m.event.id.starts_with("cursor-") && m.event.id.len() == 47);

        // Request-based: nothing to price, skipped (and counted by the caller).
        assert_eq!(map_event("salt", &p.usage_events[1]), Err(Skip::NoTokens));

        let auto = map_event("salt", &p.usage_events[2]).unwrap();
        assert_eq!(auto.event.model, "auto");
        assert_eq!(auto.charged_pico, None);
    }

    #[test]
    fn event_ids_are_stable_keyed_and_tell_events_apart() {
        let p = parse_page(page_json()).unwrap();
        let e = &p.usage_events[0];
        assert_eq!(event_id("salt", e), event_id("salt", &e.clone()));
        assert_ne!(event_id("salt", e), event_id("other", e));
        let mut later = e.clone();
        later.timestamp += 1;
        assert_ne!(event_id("salt", e), event_id("salt", &later));
        let mut more = e.clone();
        more.token_usage.as_mut().unwrap().output_tokens += 1;
        assert_ne!(event_id("salt", e), event_id("salt", &more));
        let mut upper = e.clone();
        upper.user_email = "DEVELOPER@company.com".into();
        assert_eq!(event_id("salt", e), event_id("salt", &upper));
    }

    #[test]
    fn batch_ids_ignore_order_and_name_the_developer() {
        let a = batch_id("i1", "d1", &["x", "y"]);
        assert_eq!(a, batch_id("i1", "d1", &["y", "x"]));
        assert_ne!(a, batch_id("i1", "d2", &["x", "y"]));
        assert_ne!(a, batch_id("i1", "d1", &["x"]));
    }

    #[test]
    fn bad_pages_are_refused_with_a_reason() {
        assert!(parse_page("<html>").is_err());
        assert!(parse_page(r#"{"usageEvents": []}"#).is_err());
        let bad_ts = r#"{"pagination": {"numPages": 1, "currentPage": 1, "pageSize": 1, "hasNextPage": false},
            "usageEvents": [{"timestamp": "yesterday", "userEmail": "a@b"}]}"#;
        assert!(parse_page(bad_ts).unwrap_err().contains("timestamp"));
    }
}
