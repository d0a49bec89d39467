//! OpenCode messages → requests.
//!
//! OpenCode keeps one JSON document per message: a file
//! `storage/message/<sessionID>/msg_*.json` (before 1.2), or the `data`
//! column of the `message` table in `opencode.db`. An assistant message
//! carries `modelID`, `providerID`, `time {created, completed}` and
//! `tokens {input, output, reasoning, cache {read, write}}`, where `input`
//! excludes the cache tokens and `output` excludes `reasoning` (OpenCode
//! prices reasoning at the output rate, as the providers bill it). So:
//! input = input, output = output + reasoning, cache_read = cache.read,
//! cache_write_5m = cache.write (Anthropic's default cache lifetime).
//! The message is rewritten as the response streams; until `time.completed`
//! is set its tokens are not final.

use serde_json::Value;

use crate::event::MAX_SAFE_INT;
use crate::usage::TokenUsage;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenCodeRequest {
    pub message_id: String,
    pub session_id: String,
    pub timestamp_ms: i64,
    pub model: String,
    pub provider: String,
    pub usage: TokenUsage,
    /// The project directory (`path.cwd`), when recorded.
    pub cwd: Option<String>,
    /// False while the response is still streaming (no `time.completed`).
    pub complete: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenCodeMessage {
    Request(OpenCodeRequest),
    /// A user message, or an assistant message without tokens.
    Skip,
    Malformed(String),
}

/// Parses a row of `opencode.db`'s `message` table: the row's `id` and
/// `session_id` columns stand in for fields `data` leaves out.
pub fn parse_row(id: &str, session_id: &str, data: &[u8]) -> OpenCodeMessage {
    let mut v: Value = match serde_json::from_slice(data.trim_ascii()) {
        Ok(v) => v,
        Err(e) => return OpenCodeMessage::Malformed(e.to_string()),
    };
    let Some(o) = v.as_object_mut() else {
        return OpenCodeMessage::Malformed("not a JSON object".into());
    };
    o.entry("id").or_insert_with(|| Value::from(id));
    o.entry("sessionID")
        .or_insert_with(|| Value::from(session_id));
    parse_value(&v, session_id)
}

/// Parses one message document. `session_hint` (the folder or row's
/// session) is used when the document names none.
pub fn parse_message(bytes: &[u8], session_hint: &str) -> OpenCodeMessage {
    let v: Value = match serde_json::from_slice(bytes.trim_ascii()) {
        Ok(v) => v,
        Err(e) => return OpenCodeMessage::Malformed(e.to_string()),
    };
    parse_value(&v, session_hint)
}

fn parse_value(v: &Value, session_hint: &str) -> OpenCodeMessage {
    if !v.is_object() {
        return OpenCodeMessage::Malformed("not a JSON object".into());
    }
    if v.get("role").and_then(Value::as_str) != Some("assistant") {
        return OpenCodeMessage::Skip;
    }
    let Some(tokens) = v.get("tokens").filter(|t| t.is_object()) else {
        return OpenCodeMessage::Skip;
    };
    let n = |x: Option<&Value>| -> Result<u64, String> {
        match x {
            None | Some(Value::Null) => Ok(0),
            Some(x) => x
                .as_u64()
                .filter(|&n| n <= MAX_SAFE_INT)
                .ok_or_else(|| format!("bad token count {x}")),
        }
    };
    let cache = tokens.get("cache");
    let counts = (|| {
        Ok::<_, String>((
            n(tokens.get("input"))?,
            n(tokens.get("output"))?,
            n(tokens.get("reasoning"))?,
            n(cache.and_then(|c| c.get("read")))?,
            n(cache.and_then(|c| c.get("write")))?,
        ))
    })();
    let (input, output, reasoning, read, write) = match counts {
        Ok(c) => c,
        Err(e) => return OpenCodeMessage::Malformed(e),
    };
    let Some(id) = v.get("id").and_then(Value::as_str) else {
        return OpenCodeMessage::Malformed("message without id".into());
    };
    let time = v.get("time");
    let Some(created) = time
        .and_then(|t| t.get("created"))
        .and_then(Value::as_i64)
        .filter(|&t| t > 0)
    else {
        return OpenCodeMessage::Malformed("message without time.created".into());
    };
    let complete = time
        .and_then(|t| t.get("completed"))
        .is_some_and(|c| c.as_i64().is_some());
    let s = |k: &str| v.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
    OpenCodeMessage::Request(OpenCodeRequest {
        message_id: id.to_string(),
        session_id: s("sessionID").unwrap_or(session_hint).to_string(),
        timestamp_ms: created,
        model: s("modelID")
            .unwrap_or(crate::codex::UNKNOWN_MODEL)
            .to_string(),
        provider: s("providerID").unwrap_or("").to_string(),
        usage: TokenUsage {
            input,
            output: output + reasoning,
            cache_read: read,
            cache_write_5m: write,
            ..TokenUsage::default()
        },
        cwd: v
            .get("path")
            .and_then(|p| p.get("cwd"))
            .and_then(Value::as_str)
            .map(str::to_string),
        complete,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DONE: &str = r#"{
  "id": "msg_9a1b2c3d4001ZyXwVuTsRqPo",
  "role": "assistant",
  "sessionID": "ses_9a1b2c3d3ffeAbCdEfGhIj",
  "parentID": "msg_9a1b2c3d3fffZyXwVuTsRqPo",
  "modelID": "claude-sonnet-4-5",
  "providerID": "anthropic",
  "mode": "build",
  "path": {"cwd": "/home/dev/shop", "root": "/home/dev/shop"},
  "cost": 0,
  "tokens": {"input": 12, "output": 340, "reasoning": 60, "cache": {"read": 18000, "write": 2500}},
  "time": {"created": 1764498000000, "completed": 1764498012345}
}"#;

    #[test]
    fn completed_assistant_message() {
        let OpenCodeMessage::Request(r) = parse_message(DONE.as_bytes(), "dir") else {
            panic!()
        };
        assert_eq!(
            r,
            OpenCodeRequest {
                message_id: "msg_9a1b2c3d4001ZyXwVuTsRqPo".into(),
                session_id: "ses_9a1b2c3d3ffeAbCdEfGhIj".into(),
                timestamp_ms: 1_764_498_000_000,
                model: "claude-sonnet-4-5".into(),
                provider: "anthropic".into(),
                usage: TokenUsage {
                    input: 12,
                    output: 400,
                    cache_read: 18_000,
                    cache_write_5m: 2_500,
                    ..Default::default()
                },
                cwd: Some("/home/dev/shop".into()),
                complete: true,
            }
        );
    }

    #[test]
    fn database_rows_take_id_and_session_from_their_columns() {
        let data = r#"{"role":"assistant","modelID":"gemini-2.5-pro","providerID":"google","tokens":{"input":7,"output":2,"reasoning":1,"cache":{"read":3,"write":0}},"time":{"created":10,"completed":11}}"#;
        let OpenCodeMessage::Request(r) = parse_row("msg_r", "ses_r", data.as_bytes()) else {
            panic!()
        };
        assert_eq!(
            (r.message_id.as_str(), r.session_id.as_str(), r.usage),
            (
                "msg_r",
                "ses_r",
                TokenUsage {
                    input: 7,
                    output: 3,
                    cache_read: 3,
                    ..Default::default()
                }
            )
        );
        assert!(matches!(
            parse_row("m", "s", b"[1]"),
            OpenCodeMessage::Malformed(_)
        ));
    }

    #[test]
    fn streaming_user_and_broken_messages() {
        let streaming = DONE.replace(r#", "completed": 1764498012345"#, "");
        let OpenCodeMessage::Request(r) = parse_message(streaming.as_bytes(), "dir") else {
            panic!()
        };
        assert!(!r.complete);
        let user =
            r#"{"id":"msg_1","role":"user","sessionID":"ses_1","time":{"created":1764498000000}}"#;
        assert_eq!(parse_message(user.as_bytes(), "d"), OpenCodeMessage::Skip);
        let no_tokens = r#"{"id":"msg_2","role":"assistant","sessionID":"ses_1","time":{"created":1764498000000}}"#;
        assert_eq!(
            parse_message(no_tokens.as_bytes(), "d"),
            OpenCodeMessage::Skip
        );
        let neg = DONE.replace(r#""input": 12"#, r#""input": -12"#);
        assert!(matches!(
            parse_message(neg.as_bytes(), "d"),
            OpenCodeMessage::Malformed(_)
        ));
        assert!(matches!(
            parse_message(&DONE.as_bytes()[..100], "d"),
            OpenCodeMessage::Malformed(_)
        ));
        // No session in the document: the folder's name stands in.
        let bare = r#"{"id":"m","role":"assistant","modelID":"gpt-5","tokens":{"input":5,"output":1},"time":{"created":5,"completed":6}}"#;
        let OpenCodeMessage::Request(r) = parse_message(bare.as_bytes(), "ses_dir") else {
            panic!()
        };
        assert_eq!(
            (r.session_id.as_str(), r.usage.input, r.usage.output, r.cwd),
            ("ses_dir", 5, 1, None)
        );
    }
}
