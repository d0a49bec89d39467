//! Strict decoding of uploaded batches.
//!
//! The decoder works from a generic JSON value rather than derived serde so a
//! rejection can name the first bad field and the index of its event; agents
//! show that message verbatim, which makes a bad build diagnosable from one line.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::event::{
    AgentKind, Categorization, Category, EventBatch, PrivacyMode, WireEvent, MAX_BRANCH_NAME_BYTES,
    MAX_HINT_CHARS, MAX_SAFE_INT, MAX_TEXT_BYTES, MAX_TOKENS_PER_FIELD, MAX_TOOLS,
};
use crate::hash::is_hex;
use crate::money::PICO_PER_MICRO;
use crate::privacy::check_stamp;
use crate::time::DAY_MS;
use crate::usage::TokenUsage;

pub const MAX_BATCH_EVENTS: usize = 500;
pub const MAX_BATCH_BYTES: usize = 1024 * 1024;
pub const MAX_FUTURE_SKEW_MS: i64 = 7 * DAY_MS;
/// The furthest back an agent may ship history (`tally install --backfill`).
pub const MAX_BACKFILL_DAYS: u32 = 365;
/// How long the edge keeps a batch's idempotency markers.
pub const MARKER_TTL_DAYS: i64 = 30;
/// How long after its first attempt an agent keeps resending a batch before
/// it gives up, loudly. A batch is applied no earlier than its first attempt,
/// so every resend reaches the edge while the markers of that batch live.
pub const RESEND_GIVE_UP_DAYS: i64 = 20;
/// Seconds between agent uploads unless the team sets another interval:
/// every request, queue message and D1 transaction then carries a few
/// minutes of a developer's work instead of one response.
pub const DEFAULT_SHIP_INTERVAL_S: i64 = 300;
/// The bounds an admin may set (and the migration's CHECK): at least ten
/// seconds, at most a day.
pub const MIN_SHIP_INTERVAL_S: i64 = 10;
pub const MAX_SHIP_INTERVAL_S: i64 = 86_400;
const _: () = assert!(RESEND_GIVE_UP_DAYS < MARKER_TTL_DAYS);

/// The oldest timestamp the edge accepts: the backfill window plus five weeks
/// for an event that waited in an offline laptop's outbox.
pub const MAX_PAST_MS: i64 = (MAX_BACKFILL_DAYS as i64 + 35) * DAY_MS;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchError {
    /// Index of the offending event, when the problem is inside one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for BatchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.index {
            Some(i) => write!(f, "events[{i}].{}: {}", self.field, self.message),
            None => write!(f, "{}: {}", self.field, self.message),
        }
    }
}

impl std::error::Error for BatchError {}

fn err(index: Option<usize>, field: &str, message: impl Into<String>) -> BatchError {
    BatchError {
        index,
        field: field.to_string(),
        message: message.into(),
    }
}

struct Fields<'a> {
    obj: &'a Map<String, Value>,
    index: Option<usize>,
    prefix: &'static str,
}

impl<'a> Fields<'a> {
    fn name(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.prefix)
        }
    }

    fn fail(&self, key: &str, message: impl Into<String>) -> BatchError {
        err(self.index, &self.name(key), message)
    }

    fn only(&self, allowed: &[&str]) -> Result<(), BatchError> {
        // Unknown fields are rejected, not ignored: an agent that sends
        // something we did not plan for must learn about it, not leak it.
        match self.obj.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(k) => Err(self.fail(k, "unknown field")),
            None => Ok(()),
        }
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.obj.get(key).filter(|v| !v.is_null())
    }

    fn req(&self, key: &str) -> Result<&'a Value, BatchError> {
        self.get(key).ok_or_else(|| self.fail(key, "missing"))
    }

    fn str(&self, key: &str, max: usize) -> Result<&'a str, BatchError> {
        let s = self
            .req(key)?
            .as_str()
            .ok_or_else(|| self.fail(key, "must be a string"))?;
        if s.len() > max {
            return Err(self.fail(key, format!("longer than {max} bytes")));
        }
        Ok(s)
    }

    fn uint(&self, key: &str) -> Result<u64, BatchError> {
        let v = self.req(key)?;
        self.uint_value(key, v)
    }

    fn capped(&self, key: &str, max: u64, what: &str) -> Result<u64, BatchError> {
        let n = self.uint(key)?;
        if n > max {
            return Err(self.fail(key, format!("exceeds {max} ({what})")));
        }
        Ok(n)
    }

    fn uint_value(&self, key: &str, v: &Value) -> Result<u64, BatchError> {
        if let Some(n) = v.as_u64() {
            if n > MAX_SAFE_INT {
                return Err(self.fail(key, "exceeds 2^53 - 1"));
            }
            return Ok(n);
        }
        if v.as_i64().is_some_and(|n| n < 0) {
            return Err(self.fail(key, "must not be negative"));
        }
        if v.is_number() {
            return Err(self.fail(key, "must be an integer"));
        }
        Err(self.fail(key, "must be an integer"))
    }

    fn obj(&self, key: &str, prefix: &'static str) -> Result<Fields<'a>, BatchError> {
        let obj = self
            .req(key)?
            .as_object()
            .ok_or_else(|| self.fail(key, "must be an object"))?;
        Ok(Fields {
            obj,
            index: self.index,
            prefix,
        })
    }
}

/// Decodes and validates an upload. `now_ms` bounds how far in the future a
/// timestamp may be. Nothing here allocates more than a bounded multiple of the
/// input, and no input makes it panic (a property test drives it with noise).
pub fn decode_batch(body: &[u8], now_ms: i64) -> Result<EventBatch, BatchError> {
    if body.len() > MAX_BATCH_BYTES {
        return Err(err(
            None,
            "body",
            format!("larger than {MAX_BATCH_BYTES} bytes"),
        ));
    }
    let root: Value = serde_json::from_slice(body)
        .map_err(|e| err(None, "body", format!("not valid JSON: {e}")))?;
    let root_obj = root
        .as_object()
        .ok_or_else(|| err(None, "body", "must be a JSON object"))?;
    let top = Fields {
        obj: root_obj,
        index: None,
        prefix: "",
    };
    top.only(&["batch_id", "events"])?;
    let batch_id = top.str("batch_id", 64)?;
    if batch_id.len() < 16
        || !batch_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(top.fail("batch_id", "must be 16-64 characters of [A-Za-z0-9_-]"));
    }
    let events = top
        .req("events")?
        .as_array()
        .ok_or_else(|| top.fail("events", "must be an array"))?;
    if events.is_empty() {
        return Err(top.fail("events", "must not be empty"));
    }
    if events.len() > MAX_BATCH_EVENTS {
        return Err(top.fail("events", format!("more than {MAX_BATCH_EVENTS} events")));
    }
    let mut out: Vec<WireEvent> = Vec::with_capacity(events.len());
    let mut seen = std::collections::HashMap::with_capacity(events.len());
    for (i, v) in events.iter().enumerate() {
        let e = decode_event(i, v, now_ms)?;
        // The same request twice in one batch would be counted twice: the
        // batch id covers resends, not duplicates inside one send.
        if let Some(first) = seen.insert(e.id.clone(), i) {
            return Err(err(
                Some(i),
                "id",
                format!("duplicate of events[{first}].id"),
            ));
        }
        out.push(e);
    }
    Ok(EventBatch {
        batch_id: batch_id.to_string(),
        events: out,
    })
}

fn decode_event(i: usize, v: &Value, now_ms: i64) -> Result<WireEvent, BatchError> {
    let obj = v
        .as_object()
        .ok_or_else(|| err(Some(i), "event", "must be an object"))?;
    let f = Fields {
        obj,
        index: Some(i),
        prefix: "",
    };
    f.only(&[
        "id",
        "ts",
        "agent",
        "model",
        "tokens",
        "fast",
        "cost_pico_usd",
        "cost_micro_usd",
        "project",
        "branch",
        "session",
        "mode",
        "branch_name",
        "category",
        "prompt",
        "response",
        "tools",
    ])?;
    let id = f.str("id", 64)?;
    if !is_hex(id, 32) {
        return Err(f.fail("id", "must be 32 lowercase hex characters"));
    }
    let ts = f.uint("ts")? as i64;
    if ts > now_ms.saturating_add(MAX_FUTURE_SKEW_MS) {
        return Err(f.fail("ts", "more than 7 days in the future"));
    }
    if ts < now_ms.saturating_sub(MAX_PAST_MS) {
        return Err(f.fail(
            "ts",
            format!(
                "more than {} days in the past (the backfill window)",
                MAX_PAST_MS / DAY_MS
            ),
        ));
    }
    let agent = f.str("agent", 32)?;
    let agent = AgentKind::parse(agent).ok_or_else(|| f.fail("agent", "unknown agent kind"))?;
    let model = f.str("model", 128)?;
    if model.is_empty() || model.chars().any(|c| c.is_control()) {
        return Err(f.fail("model", "must be a non-empty printable string"));
    }
    let t = f.obj("tokens", "tokens")?;
    t.only(&[
        "input",
        "output",
        "cache_write_5m",
        "cache_write_1h",
        "cache_read",
    ])?;
    let cap = |k: &str| t.capped(k, MAX_TOKENS_PER_FIELD, "the per-request token cap");
    let tokens = TokenUsage {
        input: cap("input")?,
        output: cap("output")?,
        cache_write_5m: cap("cache_write_5m")?,
        cache_write_1h: cap("cache_write_1h")?,
        cache_read: cap("cache_read")?,
    };
    let fast = match f.get("fast") {
        None => false,
        Some(v) => v
            .as_bool()
            .ok_or_else(|| f.fail("fast", "must be true or false"))?,
    };
    // The claim is only compared with the edge's own price; agents before the
    // pico-USD wire sent micro-USD, which is still read (and, being rounded,
    // usually counted as a disagreement).
    let cost_pico_usd = match (f.get("cost_pico_usd"), f.get("cost_micro_usd")) {
        (Some(_), Some(_)) => {
            return Err(f.fail("cost_micro_usd", "send cost_pico_usd only"));
        }
        (Some(v), None) => Some(f.uint_value("cost_pico_usd", v)?),
        (None, Some(v)) => Some(
            f.uint_value("cost_micro_usd", v)?
                .saturating_mul(PICO_PER_MICRO),
        ),
        (None, None) => None,
    };
    let project = f.str("project", 64)?;
    if !is_hex(project, 64) {
        return Err(f.fail("project", "must be a 64-character HMAC hex digest"));
    }
    // Absent or empty: no branch. Anything else is a keyed hash.
    let branch = match f.get("branch") {
        None => "",
        Some(_) => f.str("branch", 64)?,
    };
    if !branch.is_empty() && !is_hex(branch, 64) {
        return Err(f.fail("branch", "must be a 64-character HMAC hex digest or empty"));
    }
    let session = f.str("session", 64)?;
    if !is_hex(session, 64) {
        return Err(f.fail("session", "must be a 64-character HMAC hex digest"));
    }
    let mode = f.str("mode", 32)?;
    let mode = PrivacyMode::parse(mode).ok_or_else(|| f.fail("mode", "unknown privacy mode"))?;

    let category = match f.get("category") {
        None => None,
        Some(_) => {
            let c = f.obj("category", "category")?;
            c.only(&["category", "task_hint", "project_hint", "confidence"])?;
            let name = c.str("category", 32)?;
            let category =
                Category::parse(name).ok_or_else(|| c.fail("category", "not in the taxonomy"))?;
            let task_hint = c.str("task_hint", MAX_HINT_CHARS * 4)?;
            let project_hint = c.str("project_hint", MAX_HINT_CHARS * 4)?;
            if task_hint.chars().count() > MAX_HINT_CHARS {
                return Err(c.fail("task_hint", "longer than 120 characters"));
            }
            if project_hint.chars().count() > MAX_HINT_CHARS {
                return Err(c.fail("project_hint", "longer than 120 characters"));
            }
            let confidence = c.uint("confidence")?;
            if confidence > 100 {
                return Err(c.fail("confidence", "must be 0-100"));
            }
            Some(Categorization {
                category,
                task_hint: task_hint.to_string(),
                project_hint: project_hint.to_string(),
                confidence: confidence as u8,
            })
        }
    };
    let branch_name = match f.get("branch_name") {
        None => None,
        Some(_) => {
            let name = f.str("branch_name", MAX_BRANCH_NAME_BYTES)?;
            if name.trim().is_empty() || name.chars().any(char::is_control) {
                return Err(f.fail("branch_name", "must be a non-empty printable string"));
            }
            if branch.is_empty() {
                return Err(f.fail("branch_name", "sent without its branch hash"));
            }
            Some(name.to_string())
        }
    };
    let prompt = match f.get("prompt") {
        None => None,
        Some(_) => Some(f.str("prompt", MAX_TEXT_BYTES)?.to_string()),
    };
    let response = match f.get("response") {
        None => None,
        Some(_) => Some(f.str("response", MAX_TEXT_BYTES)?.to_string()),
    };
    let tools = match f.get("tools") {
        None => None,
        Some(v) => {
            let arr = v
                .as_array()
                .ok_or_else(|| f.fail("tools", "must be an array of strings"))?;
            if arr.len() > MAX_TOOLS {
                return Err(f.fail("tools", format!("more than {MAX_TOOLS} entries")));
            }
            let mut names = Vec::with_capacity(arr.len());
            for t in arr {
                match t.as_str() {
                    Some(s) if !s.is_empty() && s.len() <= 128 => names.push(s.to_string()),
                    _ => return Err(f.fail("tools", "entries must be strings of 1-128 bytes")),
                }
            }
            Some(names)
        }
    };
    let event = WireEvent {
        id: id.to_string(),
        ts,
        agent,
        model: model.to_string(),
        tokens,
        fast,
        cost_pico_usd,
        project: project.to_string(),
        branch: branch.to_string(),
        session: session.to_string(),
        mode,
        branch_name,
        category,
        prompt,
        response,
        tools,
    };
    check_stamp(&event).map_err(|field| {
        f.fail(
            field,
            format!("not permitted in an event stamped '{}'", mode.as_str()),
        )
    })?;
    Ok(event)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_763_800_000_000;

    fn event() -> Value {
        json!({
            "id": "0123456789abcdef0123456789abcdef",
            "ts": NOW,
            "agent": "claude_code",
            "model": "claude-sonnet-4-5-20250929",
            "tokens": {"input": 10, "output": 20, "cache_write_5m": 30, "cache_write_1h": 0, "cache_read": 40},
            "cost_pico_usd": 1234,
            "project": "a".repeat(64),
            "session": "b".repeat(64),
            "mode": "off"
        })
    }

    fn batch(events: Vec<Value>) -> Vec<u8> {
        serde_json::to_vec(&json!({"batch_id": "batch-0000000000000001", "events": events}))
            .unwrap()
    }

    fn reject(events: Vec<Value>) -> BatchError {
        decode_batch(&batch(events), NOW).unwrap_err()
    }

    #[test]
    fn accepts_a_valid_off_event() {
        let b = decode_batch(&batch(vec![event()]), NOW).unwrap();
        assert_eq!(b.events.len(), 1);
        assert_eq!(b.events[0].tokens.cache_read, 40);
        assert_eq!(b.events[0].cost_pico_usd, Some(1234));
        assert!(!b.events[0].fast);
        let unpriced = {
            let mut e = event();
            e["cost_pico_usd"] = Value::Null;
            e
        };
        let b = decode_batch(&batch(vec![unpriced]), NOW).unwrap();
        assert_eq!(b.events[0].cost_pico_usd, None);
    }

    #[test]
    fn a_request_twice_in_one_batch_is_rejected() {
        let mut other = event();
        other["id"] = json!("ffffffffffffffffffffffffffffffff");
        let e = reject(vec![event(), other, event()]);
        assert_eq!(
            (e.index, e.field.as_str(), e.message.as_str()),
            (Some(2), "id", "duplicate of events[0].id")
        );
    }

    #[test]
    fn fast_flag_and_claims_in_either_unit() {
        let mut fast = event();
        fast["fast"] = json!(true);
        assert!(decode_batch(&batch(vec![fast]), NOW).unwrap().events[0].fast);
        let mut bad = event();
        bad["fast"] = json!("yes");
        assert_eq!(reject(vec![bad]).message, "must be true or false");
        // An agent from before the pico-USD wire.
        let mut legacy = event();
        legacy.as_object_mut().unwrap().remove("cost_pico_usd");
        legacy["cost_micro_usd"] = json!(7);
        let b = decode_batch(&batch(vec![legacy.clone()]), NOW).unwrap();
        assert_eq!(b.events[0].cost_pico_usd, Some(7_000_000));
        legacy["cost_pico_usd"] = json!(7_000_000);
        assert_eq!(reject(vec![legacy]).field, "cost_micro_usd");
    }

    #[test]
    fn names_the_first_bad_field_and_index() {
        let mut bad = event();
        bad["tokens"]["output"] = json!(-1);
        let e = reject(vec![event(), bad]);
        assert_eq!((e.index, e.field.as_str()), (Some(1), "tokens.output"));
        assert_eq!(e.message, "must not be negative");

        let mut big = event();
        big["tokens"]["input"] = json!(1u64 << 53);
        let e = reject(vec![big]);
        assert_eq!(
            (e.index, e.field.as_str(), e.message.as_str()),
            (Some(0), "tokens.input", "exceeds 2^53 - 1")
        );
        let mut over_cap = event();
        over_cap["tokens"]["cache_read"] = json!(MAX_TOKENS_PER_FIELD + 1);
        let e = reject(vec![over_cap]);
        assert_eq!(
            (e.index, e.field.as_str(), e.message.as_str()),
            (
                Some(0),
                "tokens.cache_read",
                "exceeds 10000000 (the per-request token cap)"
            )
        );
        let mut at_cap = event();
        at_cap["tokens"]["cache_read"] = json!(MAX_TOKENS_PER_FIELD);
        assert!(decode_batch(&batch(vec![at_cap]), NOW).is_ok());

        let mut ancient = event();
        ancient["ts"] = json!(NOW - MAX_PAST_MS - 1);
        let e = reject(vec![ancient]);
        assert_eq!(
            (e.field.as_str(), e.message.as_str()),
            ("ts", "more than 400 days in the past (the backfill window)")
        );
        let mut oldest = event();
        oldest["ts"] = json!(NOW - MAX_PAST_MS);
        assert!(decode_batch(&batch(vec![oldest]), NOW).is_ok());

        let mut future = event();
        future["ts"] = json!(NOW + MAX_FUTURE_SKEW_MS + 1);
        assert_eq!(reject(vec![future]).field, "ts");
        let mut ok_future = event();
        ok_future["ts"] = json!(NOW + MAX_FUTURE_SKEW_MS);
        assert!(decode_batch(&batch(vec![ok_future]), NOW).is_ok());

        let mut kind = event();
        kind["agent"] = json!("copilot");
        assert_eq!(reject(vec![kind]).message, "unknown agent kind");

        let mut extra = event();
        extra["cwd"] = json!("/home/me");
        let e = reject(vec![extra]);
        assert_eq!(
            (e.field.as_str(), e.message.as_str()),
            ("cwd", "unknown field")
        );

        let mut wrong_type = event();
        wrong_type["model"] = json!(5);
        assert_eq!(reject(vec![wrong_type]).message, "must be a string");

        let mut float = event();
        float["tokens"]["input"] = json!(1.5);
        assert_eq!(reject(vec![float]).message, "must be an integer");
    }

    #[test]
    fn text_in_an_off_event_is_rejected() {
        let mut e = event();
        e["prompt"] = json!("fix the bug");
        let err = reject(vec![e]);
        assert_eq!(err.field, "prompt");
        assert_eq!(err.message, "not permitted in an event stamped 'off'");
        let mut full = event();
        full["mode"] = json!("full");
        full["prompt"] = json!("fix the bug");
        full["tools"] = json!(["Edit"]);
        assert!(decode_batch(&batch(vec![full]), NOW).is_ok());
    }

    #[test]
    fn the_branch_is_a_hash_and_its_name_only_where_text_goes() {
        let mut e = event();
        e["branch"] = json!("c".repeat(64));
        let b = decode_batch(&batch(vec![e.clone()]), NOW).unwrap();
        assert_eq!(b.events[0].branch, "c".repeat(64));
        assert_eq!(b.events[0].branch_name, None);
        // Old agents send none: no branch.
        assert_eq!(
            decode_batch(&batch(vec![event()]), NOW).unwrap().events[0].branch,
            ""
        );
        let mut empty = event();
        empty["branch"] = json!("");
        assert_eq!(
            decode_batch(&batch(vec![empty]), NOW).unwrap().events[0].branch,
            ""
        );

        let field_msg = |v: Value| {
            let e = reject(vec![v]);
            (e.field, e.message)
        };
        let mut plain = e.clone();
        plain["branch"] = json!("main");
        assert_eq!(
            field_msg(plain),
            (
                "branch".into(),
                "must be a 64-character HMAC hex digest or empty".into()
            )
        );
        let mut long = e.clone();
        long["branch"] = json!("c".repeat(65));
        assert_eq!(
            field_msg(long),
            ("branch".into(), "longer than 64 bytes".into())
        );

        // Off carries no readable name.
        let mut named_off = e.clone();
        named_off["branch_name"] = json!("main");
        assert_eq!(
            field_msg(named_off),
            (
                "branch_name".into(),
                "not permitted in an event stamped 'off'".into()
            )
        );
        let mut local = e.clone();
        local["mode"] = json!("categorize_local");
        local["branch_name"] = json!("main");
        assert_eq!(
            field_msg(local),
            (
                "branch_name".into(),
                "not permitted in an event stamped 'categorize_local'".into()
            )
        );
        let mut full = e.clone();
        full["mode"] = json!("full");
        full["branch_name"] = json!("feature/PAY-12");
        let b = decode_batch(&batch(vec![full.clone()]), NOW).unwrap();
        assert_eq!(b.events[0].branch_name.as_deref(), Some("feature/PAY-12"));

        let mut too_long = full.clone();
        too_long["branch_name"] = json!("b".repeat(MAX_BRANCH_NAME_BYTES + 1));
        assert_eq!(
            field_msg(too_long),
            ("branch_name".into(), "longer than 200 bytes".into())
        );
        let mut control = full.clone();
        control["branch_name"] = json!("main\u{7}");
        assert_eq!(
            field_msg(control),
            (
                "branch_name".into(),
                "must be a non-empty printable string".into()
            )
        );
        let mut orphan = full.clone();
        orphan.as_object_mut().unwrap().remove("branch");
        assert_eq!(
            field_msg(orphan),
            ("branch_name".into(), "sent without its branch hash".into())
        );
    }

    #[test]
    fn batch_level_limits() {
        assert_eq!(decode_batch(b"nope", NOW).unwrap_err().field, "body");
        assert_eq!(reject(vec![]).message, "must not be empty");
        let many = vec![event(); MAX_BATCH_EVENTS + 1];
        assert_eq!(reject(many).message, "more than 500 events");
        let big = vec![b' '; MAX_BATCH_BYTES + 1];
        assert_eq!(decode_batch(&big, NOW).unwrap_err().field, "body");
        let bad_id =
            serde_json::to_vec(&json!({"batch_id": "short", "events": [event()]})).unwrap();
        assert_eq!(decode_batch(&bad_id, NOW).unwrap_err().field, "batch_id");
    }
}
