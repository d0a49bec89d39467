//! Claude Code transcript lines → requests and prompts, and the deduplication
//! of requests across every file of a run.
//!
//! Transcripts are large (files of 500 MB exist, single lines of several MB),
//! so a line is classified from its bytes before anything is deserialised, and
//! the lines that are parsed are parsed once, into borrowed, typed structs:
//! bulky fields (tool inputs, tool results, thinking) are skipped, not built.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::sync::LazyLock;

use memchr::memmem;
use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::time::parse_rfc3339_ms;
use crate::usage::TokenUsage;

mod dedup;
#[cfg(test)]
mod tests;

pub use dedup::{Deduper, Offer};

/// One API request, as written by an `assistant` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaudeRequest {
    /// `message.id` (`msg_…`); empty when the line has none.
    pub message_id: String,
    /// `requestId` (`req_…`); empty when the line has none.
    pub request_id: String,
    /// The line's own `uuid`.
    pub uuid: String,
    pub session_id: String,
    pub timestamp_ms: i64,
    pub cwd: Option<String>,
    pub git_branch: Option<String>,
    pub model: String,
    pub usage: TokenUsage,
    /// `usage.speed == "fast"`: billed with the fast-mode multiplier.
    pub fast: bool,
    pub is_sidechain: bool,
    /// `agentId` of subagent transcripts.
    pub agent_id: Option<String>,
    pub tool_names: Vec<String>,
    /// The assistant's text blocks, joined by newlines.
    pub text: Option<String>,
}

impl ClaudeRequest {
    /// What identifies one API request across files.
    pub fn key(&self) -> RequestKey {
        let (m, r) = key_parts(self);
        RequestKey {
            message_id: m.to_owned(),
            request_id: r.to_owned(),
        }
    }
}

/// A prompt typed by the user: a `user` line whose content is a string or text
/// blocks. Tool results, `isMeta` lines (command caveats and outputs that
/// Claude Code injects) and compaction summaries are not prompts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaudePrompt {
    pub uuid: String,
    pub session_id: String,
    pub timestamp_ms: i64,
    pub cwd: Option<String>,
    pub is_sidechain: bool,
    /// Subagent transcripts share their parent's `sessionId`; this tells them apart.
    pub agent_id: Option<String>,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaudeLine {
    Request(ClaudeRequest),
    Prompt(ClaudePrompt),
    /// Any other line, including types this parser has never heard of.
    Skip,
    /// Not JSON, or a user/assistant line whose shape is broken; the reason is
    /// for diagnostics only.
    Malformed(String),
}

/// Identity of a request for deduplication: `(message.id, requestId)`. For a
/// line lacking either id, `message_id` is empty and `request_id` holds the
/// line's `uuid`, so the line still counts exactly once.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestKey {
    pub message_id: String,
    pub request_id: String,
}

fn key_parts(r: &ClaudeRequest) -> (&str, &str) {
    if r.message_id.is_empty() || r.request_id.is_empty() {
        ("", &r.uuid)
    } else {
        (&r.message_id, &r.request_id)
    }
}

/// Classifies one line (with or without its trailing newline).
///
/// Lines that are not user or assistant lines are recognised from their bytes
/// and skipped unparsed; for them only the outer braces are checked, so a
/// truncated snapshot line is still reported as malformed.
pub fn parse_line(line: &[u8]) -> ClaudeLine {
    let line = line.trim_ascii();
    if line.is_empty() {
        return ClaudeLine::Skip;
    }
    if line[0] != b'{' || line[line.len() - 1] != b'}' {
        return ClaudeLine::Malformed("not a JSON object".into());
    }
    if !worth_parsing(line) {
        return ClaudeLine::Skip;
    }
    match serde_json::from_slice::<RawLine>(line) {
        Ok(raw) => convert(raw),
        Err(e) => match serde_json::from_slice::<TypeOnly>(line) {
            // A shape we do not model on a line type we do not use: not our concern.
            Ok(t) if !matches!(t.kind.as_deref(), Some("user" | "assistant")) => ClaudeLine::Skip,
            _ => ClaudeLine::Malformed(e.to_string()),
        },
    }
}

/// Decides from the bytes whether a line can be a request or a prompt.
///
/// Claude Code writes compact JSON, so a structural `"type":"assistant"` can
/// be searched for: inside a JSON string its quotes would be escaped. Lines of
/// other types either start with their type (`file-history-snapshot`, the
/// multi-MB ones) or lack both markers. Lines that are not compact are parsed.
fn worth_parsing(line: &[u8]) -> bool {
    // Building a searcher costs about as much as running it on a short line.
    static FINDERS: LazyLock<[memmem::Finder<'static>; 4]> = LazyLock::new(|| {
        [
            memmem::Finder::new(br#""type":"assistant""#),
            memmem::Finder::new(br#""type":"user""#),
            memmem::Finder::new(br#""type":"tool_result""#),
            memmem::Finder::new(br#""type":""#),
        ]
    });
    let [assistant, user, tool_result, any_type] = &*FINDERS;
    if let Some(rest) = line.strip_prefix(b"{\"type\":\"") {
        let t = memchr::memchr(b'"', rest).map_or(rest, |end| &rest[..end]);
        return t == b"assistant" || t == b"user";
    }
    if assistant.find(line).is_some() {
        return true;
    }
    if user.find(line).is_some() {
        // Tool results are the bulk of transcript bytes and never prompts.
        return tool_result.find(line).is_none();
    }
    any_type.find(line).is_none()
}

fn convert(raw: RawLine<'_>) -> ClaudeLine {
    match raw.kind.as_deref() {
        Some("assistant") => convert_assistant(raw),
        Some("user") => convert_user(raw),
        _ => ClaudeLine::Skip,
    }
}

fn convert_assistant(raw: RawLine<'_>) -> ClaudeLine {
    let Some(msg) = raw.message else {
        return ClaudeLine::Skip;
    };
    let Some(u) = msg.usage else {
        return ClaudeLine::Skip;
    };
    let model = msg.model.0.unwrap_or_default();
    if model == "<synthetic>" {
        return ClaudeLine::Skip;
    }
    if model.is_empty() {
        return ClaudeLine::Malformed("assistant line with usage but no message.model".into());
    }
    let Some(timestamp_ms) = raw.timestamp.0.as_deref().and_then(parse_rfc3339_ms) else {
        return ClaudeLine::Malformed("assistant line without a valid timestamp".into());
    };
    let message_id = msg.id.0.unwrap_or_default().into_owned();
    let request_id = raw.request_id.0.unwrap_or_default().into_owned();
    let uuid = raw.uuid.0.unwrap_or_default().into_owned();
    if (message_id.is_empty() || request_id.is_empty()) && uuid.is_empty() {
        return ClaudeLine::Malformed(
            "assistant line without message.id, requestId or uuid".into(),
        );
    }
    let created = u.cache_creation_input_tokens.unwrap_or(0);
    let (w5, w1h) = match u.cache_creation {
        None => (created, 0),
        Some(cc) => {
            let w1h = cc.ephemeral_1h_input_tokens.unwrap_or(0);
            // The breakdown wins; tokens it leaves unaccounted are 5m writes, as without one.
            (
                cc.ephemeral_5m_input_tokens
                    .unwrap_or(0)
                    .max(created.saturating_sub(w1h)),
                w1h,
            )
        }
    };
    let usage = TokenUsage {
        input: u.input_tokens.unwrap_or(0),
        output: u.output_tokens.unwrap_or(0),
        cache_write_5m: w5,
        cache_write_1h: w1h,
        cache_read: u.cache_read_input_tokens.unwrap_or(0),
    };
    if !usage_in_range(&usage) {
        return ClaudeLine::Malformed("token count beyond 2^53 - 1".into());
    }
    let content = msg.content.unwrap_or_default();
    ClaudeLine::Request(ClaudeRequest {
        message_id,
        request_id,
        uuid,
        session_id: raw.session_id.0.unwrap_or_default().into_owned(),
        timestamp_ms,
        cwd: raw.cwd.owned(),
        git_branch: raw.git_branch.owned(),
        model: model.into_owned(),
        usage,
        fast: u.speed.0.as_deref() == Some("fast"),
        is_sidechain: raw.is_sidechain.unwrap_or(false),
        agent_id: raw.agent_id.owned(),
        tool_names: content.tools.into_iter().map(Cow::into_owned).collect(),
        text: join_texts(content.texts),
    })
}

fn convert_user(raw: RawLine<'_>) -> ClaudeLine {
    if raw.is_meta == Some(true) || raw.is_compact_summary == Some(true) {
        return ClaudeLine::Skip;
    }
    let Some(content) = raw.message.and_then(|m| m.content) else {
        return ClaudeLine::Skip;
    };
    if content.has_tool_result {
        return ClaudeLine::Skip;
    }
    let Some(text) = join_texts(content.texts) else {
        return ClaudeLine::Skip;
    };
    let Some(timestamp_ms) = raw.timestamp.0.as_deref().and_then(parse_rfc3339_ms) else {
        return ClaudeLine::Malformed("user line without a valid timestamp".into());
    };
    ClaudeLine::Prompt(ClaudePrompt {
        uuid: raw.uuid.0.unwrap_or_default().into_owned(),
        session_id: raw.session_id.0.unwrap_or_default().into_owned(),
        timestamp_ms,
        cwd: raw.cwd.owned(),
        is_sidechain: raw.is_sidechain.unwrap_or(false),
        agent_id: raw.agent_id.owned(),
        text,
    })
}

/// Counts beyond JavaScript's exact integers cannot be sent on the wire and,
/// summed, could overflow: they are a corrupt line, not a huge request.
pub(crate) fn usage_in_range(u: &TokenUsage) -> bool {
    [
        u.input,
        u.output,
        u.cache_write_5m,
        u.cache_write_1h,
        u.cache_read,
    ]
    .iter()
    .all(|&n| n <= crate::event::MAX_SAFE_INT)
}

fn join_texts(texts: Vec<Cow<'_, str>>) -> Option<String> {
    match texts.len() {
        0 => None,
        1 => texts.into_iter().next().map(Cow::into_owned),
        _ => Some(texts.join("\n")),
    }
}

#[derive(Deserialize)]
struct TypeOnly {
    #[serde(rename = "type")]
    kind: Option<String>,
}

#[derive(Deserialize)]
struct RawLine<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: LenientStr<'a>,
    #[serde(borrow, default)]
    uuid: LenientStr<'a>,
    #[serde(rename = "sessionId", borrow, default)]
    session_id: LenientStr<'a>,
    #[serde(borrow, default)]
    timestamp: LenientStr<'a>,
    #[serde(borrow, default)]
    cwd: LenientStr<'a>,
    #[serde(rename = "gitBranch", borrow, default)]
    git_branch: LenientStr<'a>,
    #[serde(rename = "requestId", borrow, default)]
    request_id: LenientStr<'a>,
    #[serde(rename = "agentId", borrow, default)]
    agent_id: LenientStr<'a>,
    #[serde(rename = "isSidechain", default)]
    is_sidechain: Option<bool>,
    #[serde(rename = "isMeta", default)]
    is_meta: Option<bool>,
    #[serde(rename = "isCompactSummary", default)]
    is_compact_summary: Option<bool>,
    #[serde(borrow, default)]
    message: Option<RawMessage<'a>>,
}

#[derive(Deserialize)]
struct RawMessage<'a> {
    #[serde(borrow, default)]
    id: LenientStr<'a>,
    #[serde(borrow, default)]
    model: LenientStr<'a>,
    #[serde(borrow, default)]
    content: Option<Content<'a>>,
    #[serde(borrow, default)]
    usage: Option<RawUsage<'a>>,
}

#[derive(Deserialize)]
struct RawUsage<'a> {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
    cache_creation: Option<RawCacheCreation>,
    #[serde(borrow, default)]
    speed: LenientStr<'a>,
}

#[derive(Deserialize)]
struct RawCacheCreation {
    ephemeral_5m_input_tokens: Option<u64>,
    ephemeral_1h_input_tokens: Option<u64>,
}

/// A string field that borrows from the line when it has no escapes, and reads
/// any other JSON value as absent: a field changing type must not make a
/// request disappear.
#[derive(Default)]
pub(crate) struct LenientStr<'a>(pub(crate) Option<Cow<'a, str>>);

impl LenientStr<'_> {
    pub(crate) fn as_deref(&self) -> Option<&str> {
        self.0.as_deref()
    }

    pub(crate) fn owned(self) -> Option<String> {
        self.0.map(Cow::into_owned)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for LenientStr<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = LenientStr<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(LenientStr(Some(Cow::Borrowed(v))))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(LenientStr(Some(Cow::Owned(v.to_owned()))))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(LenientStr(Some(Cow::Owned(v))))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(LenientStr(None))
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(LenientStr(None))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(LenientStr(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(LenientStr(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(LenientStr(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(LenientStr(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                while a.next_element::<IgnoredAny>()?.is_some() {}
                Ok(LenientStr(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(LenientStr(None))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// `message.content`, reduced while it is read: text pieces, tool names and
/// whether a tool result is present. A plain string is one text piece.
#[derive(Default)]
struct Content<'a> {
    texts: Vec<Cow<'a, str>>,
    tools: Vec<Cow<'a, str>>,
    has_tool_result: bool,
}

#[derive(Deserialize)]
struct Block<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: LenientStr<'a>,
    #[serde(borrow, default)]
    text: LenientStr<'a>,
    #[serde(borrow, default)]
    name: LenientStr<'a>,
}

impl<'de: 'a, 'a> Deserialize<'de> for Content<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Content<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of content blocks")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Content {
                    texts: vec![Cow::Borrowed(v)],
                    ..Content::default()
                })
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Content {
                    texts: vec![Cow::Owned(v.to_owned())],
                    ..Content::default()
                })
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Content {
                    texts: vec![Cow::Owned(v)],
                    ..Content::default()
                })
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Content::default())
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                let mut c = Content::default();
                while let Some(b) = a.next_element::<Block<'a>>()? {
                    match b.kind.as_deref() {
                        Some("text") => c.texts.extend(b.text.0),
                        Some("tool_result") => c.has_tool_result = true,
                        Some(k) if k.ends_with("tool_use") => c.tools.extend(b.name.0),
                        _ => {}
                    }
                }
                Ok(c)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Content::default())
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}
