//! Codex CLI rollout files (`sessions/YYYY/MM/DD/rollout-*.jsonl`) → requests.
//!
//! Codex logs a running total of the session's tokens (`token_count` events,
//! often written several times over for one turn), not per-request usage.
//! A request is the growth of that total since the last total that counted:
//! repeated totals are skipped, and a total that is below the last one in any
//! component is skipped without moving the baseline, so the deltas always sum
//! to the highest total the file reached and nothing is counted twice.

use memchr::memmem;
use serde::Deserialize;

use crate::claude::LenientStr;
use crate::event::MAX_SAFE_INT;
use crate::time::parse_rfc3339_ms;
use crate::usage::TokenUsage;

/// Used when a file reports tokens before naming its model; never priced.
pub const UNKNOWN_MODEL: &str = "unknown";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodexRequest {
    pub timestamp_ms: i64,
    pub model: String,
    pub usage: TokenUsage,
    pub session_id: String,
    pub cwd: Option<String>,
    /// `session_meta`'s `git.branch`, when the session ran in a repository.
    pub branch: Option<String>,
    /// 0, 1, 2, … in the order the file's requests appear: with the session id,
    /// a stable identity for the request.
    pub seq: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodexLine {
    Request(CodexRequest),
    Skip,
    Malformed(String),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Totals {
    input: u64,
    cached: u64,
    output: u64,
}

/// The state of one rollout file: feed it the file's complete lines in order.
#[derive(Debug, Clone)]
pub struct CodexFile {
    session_id: String,
    cwd: Option<String>,
    branch: Option<String>,
    model: Option<String>,
    last: Option<Totals>,
    seq: u32,
}

impl CodexFile {
    /// `session_id` is usually [`session_id_from_file_name`]; when empty, the
    /// `session_meta` line's id is used.
    pub fn new(session_id: String) -> Self {
        CodexFile {
            session_id,
            cwd: None,
            branch: None,
            model: None,
            last: None,
            seq: 0,
        }
    }

    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    pub fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }

    pub fn cwd(&self) -> Option<&str> {
        self.cwd.as_deref()
    }

    pub fn push_line(&mut self, line: &[u8]) -> CodexLine {
        let line = line.trim_ascii();
        if line.is_empty() {
            return CodexLine::Skip;
        }
        if line[0] != b'{' || line[line.len() - 1] != b'}' {
            return CodexLine::Malformed("not a JSON object".into());
        }
        // Response items (whole tool outputs) are most of a rollout's bytes.
        let relevant = [
            &b"\"token_count\""[..],
            b"\"turn_context\"",
            b"\"session_meta\"",
        ];
        if !relevant.iter().any(|m| memmem::find(line, m).is_some()) {
            return CodexLine::Skip;
        }
        let raw = match serde_json::from_slice::<RawLine>(line) {
            Ok(raw) => raw,
            Err(e) => {
                // Only the lines we read can be malformed; others merely mention our markers.
                return match serde_json::from_slice::<KindOnly>(line) {
                    Ok(k) if !k.is_relevant() => CodexLine::Skip,
                    _ => CodexLine::Malformed(e.to_string()),
                };
            }
        };
        let Some(p) = raw.payload else {
            return CodexLine::Skip;
        };
        match raw.kind.as_deref() {
            Some("session_meta") => {
                if self.session_id.is_empty() {
                    if let Some(id) = p.id.owned() {
                        self.session_id = id;
                    }
                }
                if let Some(cwd) = p.cwd.owned() {
                    self.cwd = Some(cwd);
                }
                if let Some(b) = p.git.and_then(|g| g.branch.owned()) {
                    self.branch = Some(b);
                }
                CodexLine::Skip
            }
            Some("turn_context") => {
                if let Some(m) = p.model.owned().filter(|m| !m.is_empty()) {
                    self.model = Some(m);
                }
                if let Some(cwd) = p.cwd.owned() {
                    self.cwd = Some(cwd);
                }
                CodexLine::Skip
            }
            Some("event_msg") if p.kind.as_deref() == Some("token_count") => {
                let Some(info) = p.info else {
                    return CodexLine::Skip;
                };
                let Some(total) = info.total_token_usage else {
                    return CodexLine::Skip;
                };
                let Some(timestamp_ms) = raw.timestamp.as_deref().and_then(parse_rfc3339_ms) else {
                    return CodexLine::Malformed("token_count without a valid timestamp".into());
                };
                let now = Totals {
                    input: total.input_tokens.unwrap_or(0),
                    cached: total.cached_input_tokens.unwrap_or(0),
                    output: total.output_tokens.unwrap_or(0),
                };
                if [now.input, now.cached, now.output]
                    .iter()
                    .any(|&n| n > MAX_SAFE_INT)
                {
                    return CodexLine::Malformed("token count beyond 2^53 - 1".into());
                }
                let prev = self.last.unwrap_or_default();
                if now == prev
                    || now.input < prev.input
                    || now.cached < prev.cached
                    || now.output < prev.output
                {
                    return CodexLine::Skip;
                }
                self.last = Some(now);
                let (input, cached) = (now.input - prev.input, now.cached - prev.cached);
                // Cached tokens are part of input_tokens, reasoning part of output_tokens.
                let cache_read = cached.min(input);
                let usage = TokenUsage {
                    input: input - cache_read,
                    output: now.output - prev.output,
                    cache_read,
                    ..TokenUsage::default()
                };
                let model = self
                    .model
                    .clone()
                    .or_else(|| info.model.owned())
                    .unwrap_or_else(|| UNKNOWN_MODEL.into());
                let seq = self.seq;
                self.seq += 1;
                CodexLine::Request(CodexRequest {
                    timestamp_ms,
                    model,
                    usage,
                    session_id: self.session_id.clone(),
                    cwd: self.cwd.clone(),
                    branch: self.branch.clone(),
                    seq,
                })
            }
            _ => CodexLine::Skip,
        }
    }
}

/// `rollout-2025-09-10T12-00-00-<uuid>.jsonl` → `<uuid>`.
pub fn session_id_from_file_name(name: &str) -> Option<&str> {
    let stem = name.strip_suffix(".jsonl")?.strip_prefix("rollout-")?;
    let id = stem.get(stem.len().checked_sub(36)?..)?;
    let ok = id.bytes().enumerate().all(|(i, c)| match i {
        8 | 13 | 18 | 23 => c == b'-',
        _ => c.is_ascii_hexdigit(),
    });
    ok.then_some(id)
}

#[derive(Deserialize)]
struct KindOnly {
    #[serde(rename = "type")]
    kind: Option<String>,
    payload: Option<PayloadKind>,
}

#[derive(Deserialize)]
struct PayloadKind {
    #[serde(rename = "type")]
    kind: Option<String>,
}

impl KindOnly {
    fn is_relevant(&self) -> bool {
        match self.kind.as_deref() {
            Some("session_meta" | "turn_context") => true,
            Some("event_msg") => {
                let p = self.payload.as_ref().and_then(|p| p.kind.as_deref());
                p == Some("token_count")
            }
            _ => false,
        }
    }
}

#[derive(Deserialize)]
struct RawLine<'a> {
    #[serde(borrow, default)]
    timestamp: LenientStr<'a>,
    #[serde(rename = "type", borrow, default)]
    kind: LenientStr<'a>,
    #[serde(borrow, default)]
    payload: Option<RawPayload<'a>>,
}

#[derive(Deserialize)]
struct RawPayload<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: LenientStr<'a>,
    #[serde(borrow, default)]
    id: LenientStr<'a>,
    #[serde(borrow, default)]
    cwd: LenientStr<'a>,
    #[serde(borrow, default)]
    model: LenientStr<'a>,
    #[serde(borrow, default)]
    info: Option<RawInfo<'a>>,
    #[serde(borrow, default)]
    git: Option<RawGit<'a>>,
}

#[derive(Deserialize)]
struct RawGit<'a> {
    #[serde(borrow, default)]
    branch: LenientStr<'a>,
}

#[derive(Deserialize)]
struct RawInfo<'a> {
    #[serde(default)]
    total_token_usage: Option<RawTotals>,
    #[serde(borrow, default)]
    model: LenientStr<'a>,
}

#[derive(Deserialize)]
struct RawTotals {
    input_tokens: Option<u64>,
    cached_input_tokens: Option<u64>,
    output_tokens: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tc(ts: &str, input: u64, cached: u64, output: u64) -> String {
        format!(
            r#"{{"timestamp":"{ts}","type":"event_msg","payload":{{"type":"token_count","info":{{"total_token_usage":{{"input_tokens":{input},"cached_input_tokens":{cached},"output_tokens":{output},"reasoning_output_tokens":1,"total_tokens":{}}},"last_token_usage":{{"input_tokens":1,"cached_input_tokens":0,"output_tokens":1,"reasoning_output_tokens":0,"total_tokens":2}},"model_context_window":272000}},"rate_limits":null}}}}"#,
            input + output
        )
    }

    #[test]
    fn the_branch_comes_from_session_meta_git() {
        let mut f = CodexFile::new(String::new());
        let meta = r#"{"timestamp":"2025-11-01T09:00:00.000Z","type":"session_meta","payload":{"id":"0199a213-81c0-7800-8aa1-bbab2a035a53","timestamp":"2025-11-01T09:00:00.000Z","cwd":"/w/codex-app","originator":"codex_cli_rs","cli_version":"0.58.0","instructions":null,"git":{"commit_hash":"abc","branch":"feature/codex-branch","repository_url":"git@example.com:x/y.git"}}}"#;
        assert_eq!(f.push_line(meta.as_bytes()), CodexLine::Skip);
        let CodexLine::Request(r) =
            f.push_line(tc("2025-11-01T09:00:02.000Z", 10, 0, 1).as_bytes())
        else {
            panic!()
        };
        assert_eq!(r.branch.as_deref(), Some("feature/codex-branch"));
        // A rollout outside a repository records `"git": null`.
        let mut g = CodexFile::new(String::new());
        let meta = meta.replace(r#"{"commit_hash":"abc","branch":"feature/codex-branch","repository_url":"git@example.com:x/y.git"}"#, "null");
        assert_eq!(g.push_line(meta.as_bytes()), CodexLine::Skip);
        let CodexLine::Request(r) =
            g.push_line(tc("2025-11-01T09:00:02.000Z", 10, 0, 1).as_bytes())
        else {
            panic!()
        };
        assert_eq!(r.branch, None);
    }

    #[test]
    fn deltas_of_the_running_total() {
        let mut f = CodexFile::new(String::new());
        let meta = r#"{"timestamp":"2025-11-01T00:00:00.000Z","type":"session_meta","payload":{"id":"0199a213-81c0-7800-8aa1-bbab2a035a53","timestamp":"2025-11-01T00:00:00.000Z","cwd":"/w/x","originator":"codex_cli_rs","cli_version":"0.50.0","instructions":null}}"#;
        assert_eq!(f.push_line(meta.as_bytes()), CodexLine::Skip);
        let turn = r#"{"timestamp":"2025-11-01T00:00:01.000Z","type":"turn_context","payload":{"cwd":"/w/x","approval_policy":"on-request","model":"gpt-5-codex","effort":"high","summary":"auto"}}"#;
        assert_eq!(f.push_line(turn.as_bytes()), CodexLine::Skip);
        let item = r#"{"timestamp":"2025-11-01T00:00:01.500Z","type":"response_item","payload":{"type":"message","role":"user","content":[{"type":"input_text","text":"hi"}]}}"#;
        assert_eq!(f.push_line(item.as_bytes()), CodexLine::Skip);
        let no_info = r#"{"timestamp":"2025-11-01T00:00:01.700Z","type":"event_msg","payload":{"type":"token_count","info":null,"rate_limits":{}}}"#;
        assert_eq!(f.push_line(no_info.as_bytes()), CodexLine::Skip);

        let CodexLine::Request(r) =
            f.push_line(tc("2025-11-01T00:00:02.000Z", 1000, 600, 100).as_bytes())
        else {
            panic!()
        };
        assert_eq!(
            r.usage,
            TokenUsage {
                input: 400,
                cache_read: 600,
                output: 100,
                ..Default::default()
            }
        );
        assert_eq!(
            (r.seq, r.model.as_str(), r.cwd.as_deref()),
            (0, "gpt-5-codex", Some("/w/x"))
        );
        assert_eq!(r.session_id, "0199a213-81c0-7800-8aa1-bbab2a035a53");
        assert_eq!(r.branch, None);
        // The same total written again is not a request.
        assert_eq!(
            f.push_line(tc("2025-11-01T00:00:02.100Z", 1000, 600, 100).as_bytes()),
            CodexLine::Skip
        );
        // A stale, lower total is skipped and does not move the baseline …
        assert_eq!(
            f.push_line(tc("2025-11-01T00:00:02.200Z", 900, 600, 100).as_bytes()),
            CodexLine::Skip
        );
        // … so the next growth is measured from 1000/600/100.
        let CodexLine::Request(r) =
            f.push_line(tc("2025-11-01T00:00:03.000Z", 2500, 1600, 150).as_bytes())
        else {
            panic!()
        };
        assert_eq!(
            r.usage,
            TokenUsage {
                input: 500,
                cache_read: 1000,
                output: 50,
                ..Default::default()
            }
        );
        assert_eq!(r.seq, 1);
        assert_eq!(
            r.timestamp_ms,
            parse_rfc3339_ms("2025-11-01T00:00:03.000Z").unwrap()
        );
    }

    #[test]
    fn model_before_any_turn_context_is_unknown() {
        let mut f = CodexFile::new("s".into());
        let CodexLine::Request(r) =
            f.push_line(tc("2025-11-01T00:00:02.000Z", 10, 0, 1).as_bytes())
        else {
            panic!()
        };
        assert_eq!(r.model, UNKNOWN_MODEL);
        assert_eq!(r.session_id, "s");
        assert!(matches!(
            f.push_line(b"{\"type\":\"event_msg\",\"payload\":{\"type\":\"token_count\""),
            CodexLine::Malformed(_)
        ));
        assert!(matches!(f.push_line(b"garbage"), CodexLine::Malformed(_)));
        // A line that mentions a marker but is of another kind is not ours to judge.
        let other = br#"{"type":"compacted","payload":{"message":"turn_context","info":[1,2]}}"#;
        assert_eq!(f.push_line(other), CodexLine::Skip);
    }

    #[test]
    fn file_names() {
        assert_eq!(
            session_id_from_file_name(
                "rollout-2025-09-10T12-00-00-0199a213-81c0-7800-8aa1-bbab2a035a53.jsonl"
            ),
            Some("0199a213-81c0-7800-8aa1-bbab2a035a53")
        );
        assert_eq!(session_id_from_file_name("rollout-x.jsonl"), None);
        assert_eq!(session_id_from_file_name("other.jsonl"), None);
    }
}
