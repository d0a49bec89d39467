//! OTLP/HTTP bodies → the same `WireEvent`s an agent sends. Pure (no I/O, no
//! clock), so every rule is pinned by native tests with real payloads built
//! from the `opentelemetry-proto` types.
//!
//! Read: Claude Code's `claude_code.api_request` and `claude_code.user_prompt`
//! log events, Codex's `codex.sse_event` (kind `response.completed`, which
//! carries token counts) and `codex.user_prompt`, and Claude Code's delta
//! metrics `claude_code.token.usage` / `claude_code.cost.usage` — the metrics
//! only for developers whose log events never carried requests. Nothing else
//! in a payload is read; e-mail addresses, account and organization ids are
//! never looked at, so they cannot be stored.
//!
//! Event ids: Claude Code's `request_id` (the API's own id, the same on every
//! retry) when present; otherwise a hash of the record's identifying fields
//! (session, time, sequence, model, token counts). A metric event's id hashes
//! its series and interval. The batch id hashes the event ids, so an exporter
//! retrying a request is recognised by the consumer's batch markers.

use std::collections::{BTreeMap, HashSet};

use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point, AggregationTemporality};
use prost::Message;
use tally_core::event::{AgentKind, PrivacyMode, WireEvent, MAX_TOKENS_PER_FIELD};
use tally_core::hash::sha256_hex;
use tally_core::money::PICO_PER_MICRO;
use tally_core::privacy::{outbound, LocalRecord};
use tally_core::source_path::{Path, SourcePath};
use tally_core::usage::TokenUsage;
use tally_core::wire::{MAX_FUTURE_SKEW_MS, MAX_PAST_MS};

/// Log records (or metric data points) in one request. Claude Code exports
/// every 5 s in batches of at most 512; this leaves room without letting one
/// request cost unbounded work.
pub const MAX_RECORDS: usize = 4096;
/// Requests (wire events) one OTLP request may produce.
pub const MAX_EVENTS: usize = 1000;
/// How many distinct rejection reasons the partial-success message names.
const MAX_REASONS: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    /// From `Content-Type`; parameters (`; charset=utf-8`) are ignored.
    pub fn from_content_type(ct: Option<&str>) -> Option<Encoding> {
        let essence = ct?.split(';').next()?.trim().to_ascii_lowercase();
        match essence.as_str() {
            "application/x-protobuf" | "application/protobuf" => Some(Encoding::Protobuf),
            "application/json" => Some(Encoding::Json),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OtlpError {
    #[error("body is not a valid OTLP {signal} {encoding} message: {detail}")]
    Undecodable {
        signal: &'static str,
        encoding: &'static str,
        detail: String,
    },
    #[error("more than {MAX_RECORDS} {what} in one request")]
    TooManyRecords { what: &'static str },
    #[error("more than {MAX_EVENTS} requests in one export")]
    TooManyEvents,
}

fn undecodable(signal: &'static str, enc: Encoding, detail: impl ToString) -> OtlpError {
    OtlpError::Undecodable {
        signal,
        encoding: match enc {
            Encoding::Protobuf => "protobuf",
            Encoding::Json => "JSON",
        },
        detail: detail.to_string(),
    }
}

pub fn decode_logs(body: &[u8], enc: Encoding) -> Result<ExportLogsServiceRequest, OtlpError> {
    let req: ExportLogsServiceRequest = match enc {
        Encoding::Protobuf => Message::decode(body).map_err(|e| undecodable("logs", enc, e))?,
        Encoding::Json => serde_json::from_slice(body).map_err(|e| undecodable("logs", enc, e))?,
    };
    let n: usize = req
        .resource_logs
        .iter()
        .flat_map(|r| &r.scope_logs)
        .map(|s| s.log_records.len())
        .sum();
    if n > MAX_RECORDS {
        return Err(OtlpError::TooManyRecords {
            what: "log records",
        });
    }
    Ok(req)
}

pub fn decode_metrics(
    body: &[u8],
    enc: Encoding,
) -> Result<ExportMetricsServiceRequest, OtlpError> {
    let req: ExportMetricsServiceRequest = match enc {
        Encoding::Protobuf => Message::decode(body).map_err(|e| undecodable("metrics", enc, e))?,
        Encoding::Json => {
            serde_json::from_slice(body).map_err(|e| undecodable("metrics", enc, e))?
        }
    };
    let n: usize = req
        .resource_metrics
        .iter()
        .flat_map(|r| &r.scope_metrics)
        .flat_map(|s| &s.metrics)
        .map(|m| match &m.data {
            Some(metric::Data::Sum(s)) => s.data_points.len(),
            Some(metric::Data::Gauge(g)) => g.data_points.len(),
            Some(metric::Data::Histogram(h)) => h.data_points.len(),
            Some(metric::Data::ExponentialHistogram(h)) => h.data_points.len(),
            Some(metric::Data::Summary(s)) => s.data_points.len(),
            None => 0,
        })
        .sum();
    if n > MAX_RECORDS {
        return Err(OtlpError::TooManyRecords {
            what: "metric data points",
        });
    }
    Ok(req)
}

/// What the edge knows when it maps a request.
pub struct Ctx<'a> {
    pub salt: &'a str,
    pub mode: PrivacyMode,
    pub now_ms: i64,
    pub source: SourcePath,
    /// The developer's log events have carried requests before (or do in
    /// this request): metric data points are then not counted.
    pub logs_seen: bool,
}

/// The events to ingest and what was turned away, for the partial-success answer.
#[derive(Debug, Default, PartialEq)]
pub struct Mapped {
    pub events: Vec<WireEvent>,
    pub rejected: i64,
    reasons: Vec<String>,
    /// Log records that were requests (whether or not counted): from now on
    /// this developer's metrics are not read.
    pub saw_requests: bool,
}

impl Mapped {
    fn reject(&mut self, n: i64, reason: String) {
        self.rejected += n;
        if self.reasons.len() < MAX_REASONS && !self.reasons.contains(&reason) {
            self.reasons.push(reason);
        }
    }

    pub fn message(&self) -> String {
        self.reasons.join("; ")
    }

    /// Stable across retries of the same export: the events' ids, the
    /// sender and the signal.
    pub fn batch_id(&self, agent_id: &str, signal: &str) -> String {
        let mut ids: Vec<&str> = self.events.iter().map(|e| e.id.as_str()).collect();
        ids.sort_unstable();
        let mut s = format!("tally-otlp-v1:{agent_id}:{signal}");
        for id in ids {
            s.push(':');
            s.push_str(id);
        }
        format!("otlp-{}", &sha256_hex(s.as_bytes())[..40])
    }

    pub fn logs_response(&self, enc: Encoding) -> Vec<u8> {
        let r = ExportLogsServiceResponse {
            partial_success: (self.rejected > 0).then(|| ExportLogsPartialSuccess {
                rejected_log_records: self.rejected,
                error_message: self.message(),
            }),
        };
        match enc {
            Encoding::Protobuf => r.encode_to_vec(),
            Encoding::Json => serde_json::to_vec(&r).unwrap_or_else(|_| b"{}".to_vec()),
        }
    }

    pub fn metrics_response(&self, enc: Encoding) -> Vec<u8> {
        let r = ExportMetricsServiceResponse {
            partial_success: (self.rejected > 0).then(|| ExportMetricsPartialSuccess {
                rejected_data_points: self.rejected,
                error_message: self.message(),
            }),
        };
        match enc {
            Encoding::Protobuf => r.encode_to_vec(),
            Encoding::Json => serde_json::to_vec(&r).unwrap_or_else(|_| b"{}".to_vec()),
        }
    }
}

/// Attributes of a record, looked up by key (record first, then resource).
struct Attrs<'a> {
    layers: [&'a [KeyValue]; 2],
}

impl<'a> Attrs<'a> {
    fn get(&self, key: &str) -> Option<&'a any_value::Value> {
        self.layers
            .iter()
            .flat_map(|l| l.iter())
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref())
            .and_then(|v| v.value.as_ref())
    }

    fn str(&self, key: &str) -> Option<&'a str> {
        match self.get(key)? {
            any_value::Value::StringValue(s) => Some(s.as_str()),
            _ => None,
        }
    }

    /// A count: integers, or (as exporters that format numbers send them)
    /// decimal strings and integral doubles. `Err` names what is wrong.
    fn count(&self, key: &str) -> Result<u64, String> {
        let n = match self.get(key) {
            None => return Ok(0),
            Some(any_value::Value::IntValue(n)) => u64::try_from(*n).ok(),
            Some(any_value::Value::StringValue(s)) => s.trim().parse::<u64>().ok(),
            Some(any_value::Value::DoubleValue(d)) if d.fract() == 0.0 && *d >= 0.0 => {
                Some(*d as u64)
            }
            Some(_) => None,
        };
        match n {
            Some(n) if n <= MAX_TOKENS_PER_FIELD => Ok(n),
            Some(_) => Err(format!("{key} exceeds {MAX_TOKENS_PER_FIELD}")),
            None => Err(format!("{key} must be a non-negative integer")),
        }
    }
}

fn valid_model(m: &str) -> bool {
    !m.is_empty() && m.len() <= 128 && !m.chars().any(|c| c.is_control())
}

fn ms_of_nanos(n: u64) -> i64 {
    (n / 1_000_000) as i64
}

fn in_window(ts: i64, now: i64) -> Result<(), String> {
    if ts > now.saturating_add(MAX_FUTURE_SKEW_MS) {
        return Err("timestamp more than 7 days in the future".into());
    }
    if ts < now.saturating_sub(MAX_PAST_MS) {
        return Err("timestamp older than the backfill window".into());
    }
    Ok(())
}

/// The event's name: the `event.name` attribute, the record's `event_name`
/// or its string body, with the agent's prefix.
fn event_name<'a>(attrs: &Attrs<'a>, event_name: &'a str, body: Option<&'a str>) -> &'a str {
    let raw = [attrs.str("event.name"), Some(event_name), body]
        .into_iter()
        .flatten()
        .find(|s| s.starts_with("claude_code.") || s.starts_with("codex."));
    match raw {
        Some(s) => s,
        // Claude Code's attribute names the event without its prefix.
        None => match attrs.str("event.name") {
            Some("api_request") => "claude_code.api_request",
            Some("user_prompt") => "claude_code.user_prompt",
            _ => "",
        },
    }
}

struct Prompt {
    session: String,
    prompt_id: Option<String>,
    ts: i64,
    text: String,
}

struct Pending {
    rec: LocalRecord,
    prompt_id: Option<String>,
}

fn id_of(parts: &[&str]) -> String {
    sha256_hex(parts.join("\0").as_bytes())[..32].to_string()
}

/// Log records → events. Never fails as a whole: each unusable request is
/// counted in `rejected` with its reason.
pub fn map_logs(req: &ExportLogsServiceRequest, ctx: &Ctx<'_>) -> Result<Mapped, OtlpError> {
    let mut out = Mapped::default();
    let mut pending: Vec<Pending> = Vec::new();
    let mut prompts: Vec<Prompt> = Vec::new();
    let mut seen = HashSet::new();
    for rl in &req.resource_logs {
        let resource: &[KeyValue] = rl
            .resource
            .as_ref()
            .map(|r| r.attributes.as_slice())
            .unwrap_or(&[]);
        for sl in &rl.scope_logs {
            for lr in &sl.log_records {
                let attrs = Attrs {
                    layers: [&lr.attributes, resource],
                };
                let body = match lr.body.as_ref().and_then(|b| b.value.as_ref()) {
                    Some(any_value::Value::StringValue(s)) => Some(s.as_str()),
                    _ => None,
                };
                let name = event_name(&attrs, &lr.event_name, body);
                let kind = match name {
                    "claude_code.api_request" | "claude_code.user_prompt" => AgentKind::ClaudeCode,
                    "codex.sse_event" | "codex.user_prompt" => AgentKind::Codex,
                    _ => continue,
                };
                let nanos = if lr.time_unix_nano != 0 {
                    lr.time_unix_nano
                } else {
                    lr.observed_time_unix_nano
                };
                let ts = if nanos != 0 {
                    Some(ms_of_nanos(nanos))
                } else {
                    attrs
                        .str("event.timestamp")
                        .and_then(tally_core::time::parse_rfc3339_ms)
                };
                let session_key = if kind == AgentKind::Codex {
                    "conversation.id"
                } else {
                    "session.id"
                };
                let session = attrs.str(session_key).unwrap_or("").to_string();
                if name.ends_with(".user_prompt") {
                    // Claude Code sends the text only with OTEL_LOG_USER_PROMPTS=1;
                    // Codex sends "[REDACTED]" unless told to log prompts.
                    if let (Some(text), Some(ts)) = (attrs.str("prompt"), ts) {
                        if !text.is_empty() && text != "[REDACTED]" {
                            prompts.push(Prompt {
                                session,
                                prompt_id: attrs.str("prompt.id").map(str::to_string),
                                ts,
                                text: text.to_string(),
                            });
                        }
                    }
                    continue;
                }
                if kind == AgentKind::Codex && attrs.str("event.kind") != Some("response.completed")
                {
                    continue;
                }
                if kind == AgentKind::Codex && attrs.get("input_token_count").is_none() {
                    // A failed completion (error.message) carries no usage.
                    continue;
                }
                out.saw_requests |= kind == AgentKind::ClaudeCode;
                let Some(ts) = ts else {
                    out.reject(1, format!("{name}: no timestamp"));
                    continue;
                };
                match request(&attrs, kind, ts, nanos, &session, ctx) {
                    Ok(Some(p)) => {
                        if seen.insert(p.rec.id.clone()) {
                            pending.push(p);
                        } else {
                            out.reject(1, format!("{name}: duplicate record in one export"));
                        }
                    }
                    Ok(None) => out.reject(
                        1,
                        format!(
                            "{name}: this developer's {} usage is counted from the Tally agent at this time (Tokens page)",
                            kind_name(kind)
                        ),
                    ),
                    Err(reason) => out.reject(1, format!("{name}: {reason}")),
                }
                if pending.len() > MAX_EVENTS {
                    return Err(OtlpError::TooManyEvents);
                }
            }
        }
    }
    attach_prompts(&mut pending, prompts);
    out.events = pending
        .into_iter()
        .map(|p| outbound(&p.rec, ctx.mode, ctx.salt, &tally_core::redact::redact))
        .collect();
    Ok(out)
}

fn kind_name(kind: AgentKind) -> &'static str {
    match kind {
        AgentKind::Codex => "Codex",
        _ => "Claude Code",
    }
}

/// One request record → a local record, `Ok(None)` when the other path
/// counts it, `Err` with the reason when it is unusable.
fn request(
    attrs: &Attrs<'_>,
    kind: AgentKind,
    ts: i64,
    nanos: u64,
    session: &str,
    ctx: &Ctx<'_>,
) -> Result<Option<Pending>, String> {
    in_window(ts, ctx.now_ms)?;
    let model = attrs.str("model").ok_or("model missing")?;
    if !valid_model(model) {
        return Err("model must be a printable string of 1-128 bytes".into());
    }
    let (tokens, cost, id) = match kind {
        AgentKind::Codex => {
            // The Responses API counts cached tokens inside input, and
            // reasoning inside output (as the Codex log source reads them).
            let input = attrs.count("input_token_count")?;
            let cached = attrs.count("cached_token_count")?.min(input);
            let output = attrs.count("output_token_count")?;
            let tokens = TokenUsage {
                input: input - cached,
                output,
                cache_write_5m: 0,
                cache_write_1h: 0,
                cache_read: cached,
            };
            let id = id_of(&[
                "otlp",
                "codex",
                session,
                &nanos.to_string(),
                attrs.str("event.timestamp").unwrap_or(""),
                model,
                &input.to_string(),
                &output.to_string(),
                &cached.to_string(),
            ]);
            (tokens, None, id)
        }
        _ => {
            let tokens = TokenUsage {
                input: attrs.count("input_tokens")?,
                output: attrs.count("output_tokens")?,
                // The export does not split cache writes by lifetime; the
                // 5-minute cache is Claude Code's default.
                cache_write_5m: attrs.count("cache_creation_tokens")?,
                cache_write_1h: 0,
                cache_read: attrs.count("cache_read_tokens")?,
            };
            let cost = match (attrs.get("cost_usd_micros"), attrs.get("cost_usd")) {
                (Some(_), _) => attrs
                    .count("cost_usd_micros")
                    .ok()
                    .map(|m| m.saturating_mul(PICO_PER_MICRO)),
                (None, Some(any_value::Value::DoubleValue(d))) if d.is_finite() && *d >= 0.0 => {
                    Some(((d * 1e6).round() as u64).saturating_mul(PICO_PER_MICRO))
                }
                _ => None,
            };
            let id = match attrs.str("request_id").filter(|r| !r.is_empty()) {
                Some(rid) => id_of(&["otlp", "claude_code", rid]),
                None => id_of(&[
                    "otlp",
                    "claude_code",
                    session,
                    &nanos.to_string(),
                    attrs.str("event.sequence").unwrap_or(""),
                    model,
                    &serde_json::to_string(&tokens).unwrap_or_default(),
                ]),
            };
            (tokens, cost, id)
        }
    };
    if ctx.source.path_at(ts) != Path::Otlp {
        return Ok(None);
    }
    Ok(Some(Pending {
        rec: LocalRecord {
            id,
            ts,
            agent: kind,
            model: model.to_string(),
            tokens,
            fast: attrs.str("speed") == Some("fast"),
            cost_pico_usd: cost,
            // OTLP events name no directory: they share the team's one
            // "no project" hash.
            cwd: String::new(),
            // Nor a branch.
            branch: String::new(),
            session_id: session.to_string(),
            prompt: None,
            response: None,
            tools: Vec::new(),
            category: None,
        },
        prompt_id: attrs.str("prompt.id").map(str::to_string),
    }))
}

/// A prompt goes with the request it started: the one with its `prompt.id`,
/// else the session's first request at or after it. A prompt with no such
/// request in the same export is not kept.
fn attach_prompts(pending: &mut [Pending], prompts: Vec<Prompt>) {
    for p in prompts {
        let by_id = p.prompt_id.as_deref().and_then(|pid| {
            pending.iter().position(|r| {
                r.rec.prompt.is_none()
                    && r.rec.session_id == p.session
                    && r.prompt_id.as_deref() == Some(pid)
            })
        });
        let target = by_id.or_else(|| {
            pending
                .iter()
                .enumerate()
                .filter(|(_, r)| {
                    r.rec.prompt.is_none() && r.rec.session_id == p.session && r.rec.ts >= p.ts
                })
                .min_by_key(|(_, r)| r.rec.ts)
                .map(|(i, _)| i)
        });
        if let Some(i) = target {
            pending[i].rec.prompt = Some(p.text);
        }
    }
}

/// (session id, model, interval start, interval end), in nanoseconds.
type SeriesKey = (String, String, u64, u64);

/// Delta metric data points → one event per (session, model, interval).
pub fn map_metrics(req: &ExportMetricsServiceRequest, ctx: &Ctx<'_>) -> Result<Mapped, OtlpError> {
    let mut out = Mapped::default();
    // (session, model, start, end) → tokens and the claimed cost.
    let mut series: BTreeMap<SeriesKey, (TokenUsage, Option<f64>)> = BTreeMap::new();
    for rm in &req.resource_metrics {
        let resource: &[KeyValue] = rm
            .resource
            .as_ref()
            .map(|r| r.attributes.as_slice())
            .unwrap_or(&[]);
        for sm in &rm.scope_metrics {
            for m in &sm.metrics {
                let is_tokens = m.name == "claude_code.token.usage";
                if !is_tokens && m.name != "claude_code.cost.usage" {
                    continue;
                }
                let Some(metric::Data::Sum(sum)) = &m.data else {
                    out.reject(1, format!("{}: expected a sum", m.name));
                    continue;
                };
                let n = sum.data_points.len() as i64;
                if sum.aggregation_temporality != AggregationTemporality::Delta as i32 {
                    out.reject(
                        n,
                        format!("{}: only delta temporality is read (OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=delta)", m.name),
                    );
                    continue;
                }
                if ctx.logs_seen {
                    out.reject(
                        n,
                        format!(
                            "{}: this developer's log events are counted instead (never both)",
                            m.name
                        ),
                    );
                    continue;
                }
                for dp in &sum.data_points {
                    let attrs = Attrs {
                        layers: [&dp.attributes, resource],
                    };
                    let value = match dp.value {
                        Some(number_data_point::Value::AsInt(i)) if i >= 0 => i as f64,
                        Some(number_data_point::Value::AsDouble(d))
                            if d.is_finite() && d >= 0.0 =>
                        {
                            d
                        }
                        _ => {
                            out.reject(
                                1,
                                format!("{}: value must be a non-negative number", m.name),
                            );
                            continue;
                        }
                    };
                    let Some(model) = attrs.str("model").filter(|m| valid_model(m)) else {
                        out.reject(1, format!("{}: model missing", m.name));
                        continue;
                    };
                    let key = (
                        attrs.str("session.id").unwrap_or("").to_string(),
                        model.to_string(),
                        dp.start_time_unix_nano,
                        dp.time_unix_nano,
                    );
                    let entry = series.entry(key).or_default();
                    if is_tokens {
                        let n = value.round() as u64;
                        let t = &mut entry.0;
                        let field = match attrs.str("type") {
                            Some("input") => &mut t.input,
                            Some("output") => &mut t.output,
                            Some("cacheRead") => &mut t.cache_read,
                            Some("cacheCreation") => &mut t.cache_write_5m,
                            _ => {
                                out.reject(1, format!("{}: unknown type", m.name));
                                continue;
                            }
                        };
                        *field = field.saturating_add(n);
                    } else {
                        entry.1 = Some(entry.1.unwrap_or(0.0) + value);
                    }
                }
            }
        }
    }
    for ((session, model, start, end), (tokens, cost)) in series {
        let ts = ms_of_nanos(end);
        if let Err(reason) = in_window(ts, ctx.now_ms) {
            out.reject(1, format!("claude_code.token.usage: {reason}"));
            continue;
        }
        let fields = [
            tokens.input,
            tokens.output,
            tokens.cache_read,
            tokens.cache_write_5m,
        ];
        if fields.iter().all(|&n| n == 0) {
            continue;
        }
        if fields.iter().any(|&n| n > MAX_TOKENS_PER_FIELD) {
            out.reject(
                1,
                format!("claude_code.token.usage: exceeds {MAX_TOKENS_PER_FIELD}"),
            );
            continue;
        }
        if ctx.source.path_at(ts) != Path::Otlp {
            out.reject(1, "claude_code.token.usage: this developer's Claude Code usage is counted from the Tally agent at this time (Tokens page)".into());
            continue;
        }
        let rec = LocalRecord {
            id: id_of(&[
                "otlp-metric",
                &session,
                &model,
                &start.to_string(),
                &end.to_string(),
            ]),
            ts,
            agent: AgentKind::ClaudeCode,
            model,
            tokens,
            fast: false,
            cost_pico_usd: cost.map(|c| ((c * 1e6).round() as u64).saturating_mul(PICO_PER_MICRO)),
            cwd: String::new(),
            branch: String::new(),
            session_id: session,
            prompt: None,
            response: None,
            tools: Vec::new(),
            category: None,
        };
        out.events.push(outbound(
            &rec,
            ctx.mode,
            ctx.salt,
            &tally_core::redact::redact,
        ));
        if out.events.len() > MAX_EVENTS {
            return Err(OtlpError::TooManyEvents);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
