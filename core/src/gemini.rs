//! Gemini CLI chat files (`~/.gemini/tmp/<project>/chats/*.json|*.jsonl`) → requests.
//!
//! Two layouts exist. Before 0.58 a chat is one JSON object
//! `{sessionId, projectHash, startTime, lastUpdated, messages[]}`, rewritten
//! whole as the chat grows. Later versions append JSON lines: a header with
//! the session fields, then bare message records, `{"$set": {...}}` updates
//! (whose `messages` is a checkpoint of whole records) and `{"$rewindTo": id}`.
//! A message is rewritten in place as its tokens arrive, so records are
//! upserted by id and the last version wins. Rewound messages stay counted:
//! their tokens were billed.
//!
//! Token mapping (Gemini API usage metadata): `input` is the prompt and
//! INCLUDES `cached`; `tool` (tool-use prompt) is billed as input but is not
//! in `input`; `thoughts` are billed at the output rate and are not in
//! `output`. So: input = input − cached + tool, cache_read = cached,
//! output = output + thoughts.

use serde_json::Value;

use crate::event::MAX_SAFE_INT;
use crate::time::parse_rfc3339_ms;
use crate::usage::TokenUsage;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeminiRequest {
    /// The message's `id`: with the session id, the request's identity.
    pub message_id: String,
    pub timestamp_ms: i64,
    pub model: String,
    pub usage: TokenUsage,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GeminiChat {
    pub session_id: String,
    pub project_hash: String,
    /// `gemini` messages with tokens, in order of first appearance.
    pub requests: Vec<GeminiRequest>,
    /// Records (lines or messages) that could not be read.
    pub malformed: u64,
}

/// Why a whole file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GeminiError {
    #[error("not a Gemini CLI chat: {0}")]
    NotAChat(String),
}

/// Parses a chat file of either layout. A JSONL file's last line without a
/// newline may still be being written: it is ignored, not malformed.
pub fn parse_chat(bytes: &[u8]) -> Result<GeminiChat, GeminiError> {
    let trimmed = bytes.trim_ascii();
    if trimmed.is_empty() {
        return Ok(GeminiChat::default());
    }
    let mut chat = GeminiChat::default();
    // The legacy layout is one object with `messages`; JSONL never parses whole
    // (several values), unless it is only a header line.
    if let Ok(v) = serde_json::from_slice::<Value>(trimmed) {
        if let Some(msgs) = v.get("messages") {
            header(&mut chat, &v);
            let Some(msgs) = msgs.as_array() else {
                return Err(GeminiError::NotAChat("messages is not an array".into()));
            };
            for m in msgs {
                upsert(&mut chat, m);
            }
            return Ok(chat);
        }
        if !v.is_object() {
            return Err(GeminiError::NotAChat("top level is not an object".into()));
        }
    }
    let complete_end = match bytes.iter().rposition(|&b| b == b'\n') {
        Some(i) => i + 1,
        None => 0,
    };
    let (body, tail) = bytes.split_at(complete_end);
    let mut any = false;
    for line in body.split(|&b| b == b'\n').chain(
        // A whole trailing record without a newline is complete if it parses.
        serde_json::from_slice::<Value>(tail)
            .is_ok()
            .then_some(tail),
    ) {
        let line = line.trim_ascii();
        if line.is_empty() {
            continue;
        }
        let Ok(v) = serde_json::from_slice::<Value>(line) else {
            chat.malformed += 1;
            continue;
        };
        if !v.is_object() {
            chat.malformed += 1;
            continue;
        }
        any = true;
        if let Some(set) = v.get("$set") {
            header(&mut chat, set);
            if let Some(msgs) = set.get("messages").and_then(Value::as_array) {
                for m in msgs {
                    upsert(&mut chat, m);
                }
            }
        } else if v.get("$rewindTo").is_some() {
            // Billed tokens stay billed.
        } else if v.get("type").is_some() {
            upsert(&mut chat, &v);
        } else {
            header(&mut chat, &v);
        }
    }
    if !any && chat.malformed > 0 {
        return Err(GeminiError::NotAChat("no JSON record".into()));
    }
    Ok(chat)
}

fn header(chat: &mut GeminiChat, v: &Value) {
    if let Some(s) = v.get("sessionId").and_then(Value::as_str) {
        chat.session_id = s.to_string();
    }
    if let Some(s) = v.get("projectHash").and_then(Value::as_str) {
        chat.project_hash = s.to_string();
    }
}

fn upsert(chat: &mut GeminiChat, m: &Value) {
    match request(m) {
        Ok(Some(r)) => match chat
            .requests
            .iter_mut()
            .find(|x| x.message_id == r.message_id)
        {
            Some(old) => *old = r,
            None => chat.requests.push(r),
        },
        Ok(None) => {}
        Err(()) => chat.malformed += 1,
    }
}

/// `Ok(None)`: not a billed model turn (user, info, error, or no tokens yet).
fn request(m: &Value) -> Result<Option<GeminiRequest>, ()> {
    if m.get("type").and_then(Value::as_str) != Some("gemini") {
        return Ok(None);
    }
    let Some(tokens) = m.get("tokens").filter(|t| !t.is_null()) else {
        return Ok(None);
    };
    let n = |k: &str| -> Result<u64, ()> {
        match tokens.get(k) {
            None | Some(Value::Null) => Ok(0),
            Some(x) => x.as_u64().filter(|&n| n <= MAX_SAFE_INT).ok_or(()),
        }
    };
    let (input, output, cached, thoughts, tool) = (
        n("input")?,
        n("output")?,
        n("cached")?,
        n("thoughts")?,
        n("tool")?,
    );
    let id = m.get("id").and_then(Value::as_str).ok_or(())?;
    let ts = m
        .get("timestamp")
        .and_then(Value::as_str)
        .and_then(parse_rfc3339_ms)
        .ok_or(())?;
    let cache_read = cached.min(input);
    Ok(Some(GeminiRequest {
        message_id: id.to_string(),
        timestamp_ms: ts,
        model: m
            .get("model")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .unwrap_or(crate::codex::UNKNOWN_MODEL)
            .to_string(),
        usage: TokenUsage {
            input: input - cache_read + tool,
            output: output + thoughts,
            cache_read,
            ..TokenUsage::default()
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEGACY: &str = r#"{
  "sessionId": "3bacc8a0-24d6-4415-9b2e-a2635c02e54c",
  "projectHash": "5eb97eaffa8e54844d59a44d0c1a399d7e11eff9b0dbdc4f65d4ab7faecd90e1",
  "startTime": "2025-09-30T14:11:04.096Z",
  "lastUpdated": "2025-09-30T14:11:07.670Z",
  "messages": [
    {
      "id": "6151f4b5-c125-4243-9a2c-51f1e31e4ae6",
      "timestamp": "2025-09-30T14:11:04.096Z",
      "type": "user",
      "content": "What is 2+2?"
    },
    {
      "id": "26522e6d-0b73-434e-a65d-bb783dab2738",
      "timestamp": "2025-09-30T14:11:07.670Z",
      "type": "gemini",
      "content": "4",
      "thoughts": [{"subject": "Adding", "description": "simple", "timestamp": "2025-09-30T14:11:06.000Z"}],
      "tokens": {"input": 7173, "output": 1, "cached": 3000, "thoughts": 17, "tool": 0, "total": 7191},
      "model": "gemini-2.5-pro"
    },
    {
      "id": "b2",
      "timestamp": "2025-09-30T14:11:09.000Z",
      "type": "gemini",
      "content": "",
      "model": "gemini-2.5-pro"
    }
  ]
}"#;

    #[test]
    fn legacy_json_chat() {
        let c = parse_chat(LEGACY.as_bytes()).unwrap();
        assert_eq!(c.session_id, "3bacc8a0-24d6-4415-9b2e-a2635c02e54c");
        assert_eq!(c.malformed, 0);
        // The message without tokens is not (yet) a request.
        assert_eq!(
            c.requests,
            vec![GeminiRequest {
                message_id: "26522e6d-0b73-434e-a65d-bb783dab2738".into(),
                timestamp_ms: parse_rfc3339_ms("2025-09-30T14:11:07.670Z").unwrap(),
                model: "gemini-2.5-pro".into(),
                usage: TokenUsage {
                    input: 4173,
                    cache_read: 3000,
                    output: 18,
                    ..Default::default()
                },
            }]
        );
        // Thinking is billed as output: 4,173×1.25 + 3,000×0.125 + 18×10 per MTok.
        let table = crate::pricing::default_table();
        assert_eq!(
            crate::pricing::price_request(table, "gemini-2.5-pro", &c.requests[0].usage, false),
            crate::pricing::Priced::Pico(5_771_250_000)
        );
        // Cut mid-write: the whole document is unreadable, and says so.
        assert!(parse_chat(&LEGACY.as_bytes()[..200]).is_err());
    }

    #[test]
    fn jsonl_upserts_by_id_and_keeps_rewound_turns() {
        let text = concat!(
            r#"{"sessionId":"s-1","projectHash":"ph","startTime":"2026-04-27T01:55:42.605Z","lastUpdated":"2026-04-27T01:55:42.605Z","kind":"main"}"#,
            "\n",
            r#"{"id":"u1","timestamp":"2026-04-27T01:55:45.373Z","type":"user","content":[{"text":"hi"}]}"#,
            "\n",
            r#"{"$set":{"lastUpdated":"2026-04-27T01:55:45.373Z"}}"#,
            "\n",
            r#"{"id":"g1","timestamp":"2026-04-27T01:55:50.123Z","type":"gemini","content":[],"model":"gemini-2.5-flash","tokens":{"input":100,"output":0,"cached":0,"thoughts":0,"tool":0,"total":100}}"#,
            "\n",
            "{not json\n",
            // The same turn rewritten with its final tokens.
            r#"{"id":"g1","timestamp":"2026-04-27T01:55:50.123Z","type":"gemini","content":[{"text":"ok"}],"model":"gemini-2.5-flash","tokens":{"input":100,"output":20,"cached":40,"thoughts":5,"tool":3,"total":128}}"#,
            "\n",
            r#"{"$set":{"messages":[{"id":"g2","timestamp":"2026-04-27T01:56:00.000Z","type":"gemini","model":"gemini-2.5-flash","tokens":{"input":9,"output":1,"cached":0}}]}}"#,
            "\n",
            r#"{"$rewindTo":"g2"}"#,
            "\n",
            r#"{"id":"g3","timestamp":"2026-04-27T01:57:00.000Z","type":"gemini","tokens":{"input":1"#,
        );
        let c = parse_chat(text.as_bytes()).unwrap();
        assert_eq!(
            (c.session_id.as_str(), c.project_hash.as_str()),
            ("s-1", "ph")
        );
        assert_eq!(c.malformed, 1, "the bad line; the partial last line waits");
        let got: Vec<(&str, TokenUsage)> = c
            .requests
            .iter()
            .map(|r| (r.message_id.as_str(), r.usage))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "g1",
                    TokenUsage {
                        input: 63,
                        cache_read: 40,
                        output: 25,
                        ..Default::default()
                    }
                ),
                (
                    "g2",
                    TokenUsage {
                        input: 9,
                        output: 1,
                        ..Default::default()
                    }
                ),
            ]
        );
    }

    #[test]
    fn bad_tokens_and_garbage() {
        let neg = r#"{"sessionId":"s","messages":[{"id":"a","timestamp":"2026-01-01T00:00:00Z","type":"gemini","tokens":{"input":-1,"output":1}},{"id":"b","type":"gemini","tokens":{"input":1}}]}"#;
        let c = parse_chat(neg.as_bytes()).unwrap();
        assert_eq!((c.requests.len(), c.malformed), (0, 2));
        assert!(parse_chat(b"garbage\n").is_err());
        assert!(parse_chat(br#"{"messages":3}"#).is_err());
        assert_eq!(parse_chat(b"").unwrap(), GeminiChat::default());
    }
}
