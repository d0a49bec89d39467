//! Claude Code transcript lines → requests and prompts, and the deduplication
//! of requests across every file of a run.
//!
//! Transcripts are large (files of 500 MB exist, single lines of several MB),
//! so a line is classified from its bytes before anything is deserialised, and
//! the lines that are parsed are parsed once, into borrowed, typed structs:
//! bulky fields (tool inputs, tool results, thinking) are skipped, not built.

use std::borrow::Cow;
use std::fmt;
use std::hash::BuildHasher;
use std::marker::PhantomData;
use std::sync::LazyLock;

use memchr::memmem;
use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::time::{civil_from_days, days_from_civil};
use crate::usage::TokenUsage;

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

// ---------------------------------------------------------------------------
// Parsing.

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

/// RFC 3339 (`2025-11-22T10:11:12.345Z`, `…+02:00`) → unix milliseconds.
/// Fractions beyond milliseconds are truncated.
pub fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        b.get(r)?.iter().try_fold(0i64, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
        })
    };
    if b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let days = days_from_civil(y, mo as u32, d as u32);
    if civil_from_days(days) != (y, mo as u32, d as u32) {
        return None;
    }
    let mut i = 19;
    let mut ms = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 3 {
                ms = ms * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        let n = i - start;
        if n == 0 {
            return None;
        }
        for _ in n..3 {
            ms *= 10;
        }
    }
    let offset_min = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        &sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            if oh > 23 || om > 59 {
                return None;
            }
            if sign == b'+' {
                oh * 60 + om
            } else {
                -(oh * 60 + om)
            }
        }
        _ => return None,
    };
    Some(((days * 24 + h) * 60 + mi - offset_min) * 60_000 + sec * 1000 + ms)
}

// ---------------------------------------------------------------------------
// Deduplication.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// First line of this request.
    New,
    /// A later line of a known request with larger usage: its usage now counts.
    Replaced,
    /// A known request whose usage did not grow: not counted again.
    Duplicate,
}

struct Slot {
    req: ClaudeRequest,
    /// Tags of the owner-session lines whose content is merged in; the first
    /// is kept inline because most requests have one line.
    first_line: u64,
    more_lines: Vec<u64>,
}

/// Counts each request once across all files of a run.
///
/// Streaming splits write one response as several lines with the same ids and
/// a growing `output_tokens`: the largest usage wins, and the text and tool
/// names of the owner session's lines are merged, in order. Resumed sessions
/// repeat earlier lines under another `sessionId`: the session seen first keeps
/// the request. Memory is one `u32` index per request in the hash table plus
/// the request itself.
pub struct Deduper {
    slots: Vec<Slot>,
    table: hashbrown::HashTable<u32>,
    hasher: hashbrown::DefaultHashBuilder,
}

impl Default for Deduper {
    fn default() -> Self {
        Self::new()
    }
}

impl Deduper {
    pub fn new() -> Self {
        Deduper {
            slots: Vec::new(),
            table: hashbrown::HashTable::new(),
            hasher: Default::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    pub fn offer(&mut self, req: ClaudeRequest) -> Offer {
        let hash = self.hasher.hash_one(key_parts(&req));
        // Identifies the line, so a line offered twice does not repeat its content.
        let line_tag = if req.uuid.is_empty() {
            self.hasher.hash_one((&req.text, &req.tool_names))
        } else {
            self.hasher.hash_one(&req.uuid)
        };
        let slots = &self.slots;
        let found = self
            .table
            .find(hash, |&i| {
                key_parts(&slots[i as usize].req) == key_parts(&req)
            })
            .copied();
        let Some(i) = found else {
            let i = u32::try_from(self.slots.len()).expect("fewer than 2^32 requests");
            self.slots.push(Slot {
                req,
                first_line: line_tag,
                more_lines: Vec::new(),
            });
            let (slots, hasher) = (&self.slots, &self.hasher);
            self.table.insert_unique(hash, i, |&j| {
                hasher.hash_one(key_parts(&slots[j as usize].req))
            });
            return Offer::New;
        };
        let slot = &mut self.slots[i as usize];
        let seen = slot.first_line == line_tag || slot.more_lines.contains(&line_tag);
        if slot.req.session_id == req.session_id && !seen {
            slot.more_lines.push(line_tag);
            if let Some(t) = req.text {
                slot.req.text = Some(match slot.req.text.take() {
                    Some(mut old) => {
                        old.push('\n');
                        old.push_str(&t);
                        old
                    }
                    None => t,
                });
            }
            slot.req.tool_names.extend(req.tool_names);
        }
        if req.usage.weight() > slot.req.usage.weight() {
            slot.req.usage = req.usage;
            slot.req.fast = req.fast;
            Offer::Replaced
        } else {
            Offer::Duplicate
        }
    }

    /// The counted requests, in first-seen order.
    pub fn into_requests(self) -> Vec<ClaudeRequest> {
        self.slots.into_iter().map(|s| s.req).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assistant(msg: &str, req: &str, session: &str, out: u64, extra: &str) -> String {
        format!(
            r#"{{"parentUuid":null,"isSidechain":false,"userType":"external","cwd":"/w/p","sessionId":"{session}","version":"2.0.1","gitBranch":"main","message":{{"id":"{msg}","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[{{"type":"text","text":"hi {out}"}}],"stop_reason":null,"usage":{{"input_tokens":10,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":{out}{extra}}}}},"requestId":"{req}","type":"assistant","uuid":"u-{msg}-{out}","timestamp":"2025-11-22T10:00:00.000Z"}}"#
        )
    }

    fn request(line: &str) -> ClaudeRequest {
        match parse_line(line.as_bytes()) {
            ClaudeLine::Request(r) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parses_an_assistant_line() {
        let r = request(&assistant("msg_1", "req_1", "s1", 7, r#","speed":"fast""#));
        assert_eq!(r.message_id, "msg_1");
        assert_eq!(r.request_id, "req_1");
        assert_eq!(r.session_id, "s1");
        assert_eq!(r.cwd.as_deref(), Some("/w/p"));
        assert_eq!(r.git_branch.as_deref(), Some("main"));
        assert_eq!(r.model, "claude-sonnet-4-5-20250929");
        assert_eq!(
            r.usage,
            TokenUsage {
                input: 10,
                output: 7,
                ..Default::default()
            }
        );
        assert!(r.fast);
        assert_eq!(r.text.as_deref(), Some("hi 7"));
        assert_eq!(r.timestamp_ms, 1_763_805_600_000);
    }

    #[test]
    fn cache_creation_breakdown() {
        let base = |usage: &str| {
            let l = format!(
                r#"{{"type":"assistant","uuid":"u","sessionId":"s","timestamp":"2025-01-01T00:00:00Z","requestId":"r","message":{{"id":"m","model":"claude-opus-4-1","usage":{usage}}}}}"#
            );
            request(&l).usage
        };
        let absent = base(
            r#"{"input_tokens":1,"output_tokens":2,"cache_creation_input_tokens":300,"cache_read_input_tokens":4}"#,
        );
        assert_eq!(
            absent,
            TokenUsage {
                input: 1,
                output: 2,
                cache_write_5m: 300,
                cache_write_1h: 0,
                cache_read: 4
            }
        );
        let split = base(
            r#"{"input_tokens":1,"output_tokens":2,"cache_creation_input_tokens":300,"cache_read_input_tokens":4,"cache_creation":{"ephemeral_5m_input_tokens":100,"ephemeral_1h_input_tokens":200}}"#,
        );
        assert_eq!(
            split,
            TokenUsage {
                input: 1,
                output: 2,
                cache_write_5m: 100,
                cache_write_1h: 200,
                cache_read: 4
            }
        );
        let huge = format!(
            r#"{{"type":"assistant","uuid":"u","sessionId":"s","timestamp":"2025-01-01T00:00:00Z","requestId":"r","message":{{"id":"m","model":"claude-opus-4-1","usage":{{"input_tokens":{},"output_tokens":1}}}}}}"#,
            u64::MAX
        );
        assert!(matches!(
            parse_line(huge.as_bytes()),
            ClaudeLine::Malformed(_)
        ));
        let nulls = base(
            r#"{"input_tokens":1,"output_tokens":null,"cache_creation":null,"service_tier":"standard"}"#,
        );
        assert_eq!(
            nulls,
            TokenUsage {
                input: 1,
                ..Default::default()
            }
        );
    }

    #[test]
    fn skips_and_malformed() {
        assert_eq!(parse_line(b""), ClaudeLine::Skip);
        assert_eq!(parse_line(b"   \n"), ClaudeLine::Skip);
        assert!(matches!(parse_line(b"not json"), ClaudeLine::Malformed(_)));
        assert!(matches!(
            parse_line(br#"{"type":"assistant","message":{"#),
            ClaudeLine::Malformed(_)
        ));
        assert!(matches!(
            parse_line(br#"{"type":"file-history-snapshot","snapshot":{"#),
            ClaudeLine::Malformed(_)
        ));
        assert_eq!(
            parse_line(br#"{"type":"file-history-snapshot","snapshot":{"a":1}}"#),
            ClaudeLine::Skip
        );
        assert_eq!(
            parse_line(br#"{"type":"brand-new-kind","message":"x"}"#),
            ClaudeLine::Skip
        );
        assert_eq!(
            parse_line(br#"{"type":"summary","summary":"s","leafUuid":"l"}"#),
            ClaudeLine::Skip
        );
        // A progress line that nests a whole assistant message is still a progress line.
        let progress = format!(
            r#"{{"type":"progress","data":{{"message":{}}},"uuid":"p"}}"#,
            assistant("msg_p", "req_p", "s", 5, "")
        );
        assert_eq!(parse_line(progress.as_bytes()), ClaudeLine::Skip);
        let synthetic = r#"{"type":"assistant","uuid":"u","sessionId":"s","timestamp":"2025-01-01T00:00:00Z","message":{"id":"m","model":"<synthetic>","usage":{"input_tokens":0,"output_tokens":0}}}"#;
        assert_eq!(parse_line(synthetic.as_bytes()), ClaudeLine::Skip);
        let no_usage = r#"{"type":"assistant","uuid":"u","sessionId":"s","timestamp":"2025-01-01T00:00:00Z","message":{"id":"m","model":"claude-opus-4-1"}}"#;
        assert_eq!(parse_line(no_usage.as_bytes()), ClaudeLine::Skip);
        let bad_ts =
            assistant("m", "r", "s", 1, "").replace("2025-11-22T10:00:00.000Z", "yesterday");
        assert!(matches!(
            parse_line(bad_ts.as_bytes()),
            ClaudeLine::Malformed(_)
        ));
        // Pretty-printed JSON is parsed, not sniffed.
        let pretty = serde_json::to_string_pretty(
            &serde_json::from_str::<serde_json::Value>(&assistant("m", "r", "s", 3, "")).unwrap(),
        )
        .unwrap();
        assert_eq!(request(&pretty).usage.output, 3);
    }

    #[test]
    fn prompts() {
        let p = r#"{"parentUuid":null,"isSidechain":false,"cwd":"/w","sessionId":"s","message":{"role":"user","content":"fix the \"bug\""},"type":"user","uuid":"u1","timestamp":"2025-11-22T10:00:00Z"}"#;
        match parse_line(p.as_bytes()) {
            ClaudeLine::Prompt(p) => {
                assert_eq!(p.text, "fix the \"bug\"");
                assert_eq!(p.uuid, "u1");
                assert_eq!(p.cwd.as_deref(), Some("/w"));
            }
            other => panic!("{other:?}"),
        }
        let blocks = r#"{"type":"user","uuid":"u2","sessionId":"s","timestamp":"2025-11-22T10:00:00Z","message":{"role":"user","content":[{"type":"text","text":"a"},{"type":"image","source":{}},{"type":"text","text":"b"}]}}"#;
        assert!(matches!(parse_line(blocks.as_bytes()), ClaudeLine::Prompt(p) if p.text == "a\nb"));
        let tool_result = r#"{"sessionId":"s","message":{"role":"user","content":[{"tool_use_id":"t","type":"tool_result","content":"ok"}]},"type":"user","uuid":"u3","timestamp":"2025-11-22T10:00:00Z"}"#;
        assert_eq!(parse_line(tool_result.as_bytes()), ClaudeLine::Skip);
        let meta = r#"{"type":"user","isMeta":true,"uuid":"u4","sessionId":"s","timestamp":"2025-11-22T10:00:00Z","message":{"role":"user","content":"Caveat: …"}}"#;
        assert_eq!(parse_line(meta.as_bytes()), ClaudeLine::Skip);
    }

    #[test]
    fn tools_and_text_blocks() {
        let l = r#"{"type":"assistant","uuid":"u","sessionId":"s","timestamp":"2025-01-01T00:00:00Z","requestId":"r","message":{"id":"m","model":"claude-opus-4-1","content":[{"type":"thinking","thinking":"hmm","signature":"x"},{"type":"text","text":"one"},{"type":"tool_use","id":"t1","name":"Bash","input":{"command":"ls","nested":[1,{"a":"\"type\":\"text\""}]}},{"type":"server_tool_use","id":"t2","name":"web_search","input":{}},{"type":"text","text":"two"}],"usage":{"input_tokens":1,"output_tokens":1}}}"#;
        let r = request(l);
        assert_eq!(r.tool_names, ["Bash", "web_search"]);
        assert_eq!(r.text.as_deref(), Some("one\ntwo"));
    }

    #[test]
    fn rfc3339() {
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00.5Z"), Some(500));
        assert_eq!(
            parse_rfc3339_ms("1970-01-01T00:00:00.123456789Z"),
            Some(123)
        );
        assert_eq!(parse_rfc3339_ms("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(parse_rfc3339_ms("1969-12-31T23:00:00-01:00"), Some(0));
        assert_eq!(
            parse_rfc3339_ms("2025-11-22T10:00:00.000Z"),
            Some(1_763_805_600_000)
        );
        for bad in [
            "2025-02-30T00:00:00Z",
            "2025-11-22T24:00:00Z",
            "2025-11-22T10:00:00",
            "2025-11-22T10:00:00.Z",
            "x",
        ] {
            assert_eq!(parse_rfc3339_ms(bad), None, "{bad}");
        }
    }

    #[test]
    fn dedup_keeps_largest_and_first_session() {
        let mut d = Deduper::new();
        assert_eq!(
            d.offer(request(&assistant("m1", "r1", "s1", 5, ""))),
            Offer::New
        );
        assert_eq!(
            d.offer(request(&assistant("m1", "r1", "s1", 50, ""))),
            Offer::Replaced
        );
        assert_eq!(
            d.offer(request(&assistant("m1", "r1", "s1", 20, ""))),
            Offer::Duplicate
        );
        // The same line again: nothing changes, its text is not repeated.
        assert_eq!(
            d.offer(request(&assistant("m1", "r1", "s1", 50, ""))),
            Offer::Duplicate
        );
        // A resumed session repeats it: first session keeps it, content untouched.
        assert_eq!(
            d.offer(request(&assistant("m1", "r1", "s2", 50, ""))),
            Offer::Duplicate
        );
        assert_eq!(
            d.offer(request(&assistant("m2", "r2", "s2", 1, ""))),
            Offer::New
        );
        assert_eq!(d.len(), 2);
        let out = d.into_requests();
        assert_eq!(out[0].usage.output, 50);
        assert_eq!(out[0].session_id, "s1");
        assert_eq!(out[0].text.as_deref(), Some("hi 5\nhi 50\nhi 20"));
        assert_eq!(out[1].message_id, "m2");
    }

    #[test]
    fn lines_without_ids_are_keyed_by_uuid() {
        let a = r#"{"type":"assistant","uuid":"u1","sessionId":"s","timestamp":"2025-01-01T00:00:00Z","message":{"model":"claude-opus-4-1","usage":{"input_tokens":1,"output_tokens":1}}}"#;
        let b = a.replace("\"u1\"", "\"u2\"");
        let mut d = Deduper::new();
        assert_eq!(d.offer(request(a)), Offer::New);
        assert_eq!(d.offer(request(a)), Offer::Duplicate);
        assert_eq!(d.offer(request(&b)), Offer::New);
        assert_eq!(
            request(a).key(),
            RequestKey {
                message_id: String::new(),
                request_id: "u1".into()
            }
        );
        assert_eq!(d.len(), 2);
    }
}
