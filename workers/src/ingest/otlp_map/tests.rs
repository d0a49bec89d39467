use super::*;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use tally_core::hash::{project_hash, session_hash};

const NOW: i64 = 1_763_800_000_000;
const NS: u64 = 1_000_000;

fn s(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
        ..Default::default()
    }
}

fn n(k: &str, v: i64) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(v)),
        }),
        ..Default::default()
    }
}

fn f(k: &str, v: f64) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::DoubleValue(v)),
        }),
        ..Default::default()
    }
}

fn record(body: &str, ts: i64, attrs: Vec<KeyValue>) -> LogRecord {
    LogRecord {
        time_unix_nano: ts as u64 * NS,
        body: Some(AnyValue {
            value: Some(any_value::Value::StringValue(body.into())),
        }),
        attributes: attrs,
        ..Default::default()
    }
}

/// A Claude Code `api_request` as its exporter sends it.
fn api_request(rid: &str, ts: i64, input: i64, output: i64) -> LogRecord {
    record(
        "claude_code.api_request",
        ts,
        vec![
            s("event.name", "api_request"),
            s("event.timestamp", "2025-11-22T08:26:40.000Z"),
            s("session.id", "sess-1"),
            s("user.email", "alice@example.com"),
            s("user.account_uuid", "acct-42"),
            s("organization.id", "org-7"),
            s("model", "claude-sonnet-4-5-20250929"),
            f("cost_usd", 0.0123),
            n("duration_ms", 2100),
            n("input_tokens", input),
            n("output_tokens", output),
            n("cache_read_tokens", 1000),
            n("cache_creation_tokens", 200),
            s("request_id", rid),
        ],
    )
}

fn logs(records: Vec<LogRecord>) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![s("service.name", "claude-code")],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn ctx(mode: PrivacyMode, path: Path) -> Ctx<'static> {
    Ctx {
        salt: "salt",
        mode,
        now_ms: NOW,
        source: SourcePath {
            path,
            since_ms: None,
            earlier: Vec::new(),
        },
        logs_seen: false,
    }
}

#[test]
fn protobuf_and_json_decode_to_the_same_events() {
    let req = logs(vec![api_request("req_1", NOW - 5_000, 10, 20)]);
    let pb = req.encode_to_vec();
    let json = serde_json::to_vec(&req).unwrap();
    // OTLP JSON spells 64-bit integers as strings.
    assert!(String::from_utf8_lossy(&json).contains("\"intValue\":\"10\""));
    let a = map_logs(
        &decode_logs(&pb, Encoding::Protobuf).unwrap(),
        &ctx(PrivacyMode::Off, Path::Otlp),
    )
    .unwrap();
    let b = map_logs(
        &decode_logs(&json, Encoding::Json).unwrap(),
        &ctx(PrivacyMode::Off, Path::Otlp),
    )
    .unwrap();
    assert_eq!(a, b);
    assert_eq!(a.rejected, 0);
    assert!(a.saw_requests);
    let e = &a.events[0];
    assert_eq!(e.agent, AgentKind::ClaudeCode);
    assert_eq!(e.ts, NOW - 5_000);
    assert_eq!(e.model, "claude-sonnet-4-5-20250929");
    assert_eq!(
        e.tokens,
        TokenUsage {
            input: 10,
            output: 20,
            cache_write_5m: 200,
            cache_write_1h: 0,
            cache_read: 1000
        }
    );
    // 0.0123 USD claimed, kept only for comparison.
    assert_eq!(e.cost_pico_usd, Some(12_300_000_000));
    assert_eq!(e.session, session_hash("salt", "sess-1"));
    assert_eq!(e.project, project_hash("salt", ""));
    assert_eq!(e.id, id_of(&["otlp", "claude_code", "req_1"]));
    let wire = serde_json::to_string(&a.events).unwrap();
    for secret in ["alice", "acct-42", "org-7", "sess-1"] {
        assert!(!wire.contains(secret), "{secret} leaked: {wire}");
    }
}

#[test]
fn other_events_are_ignored_and_bad_requests_rejected_with_reasons() {
    let mut no_model = api_request("req_2", NOW, 1, 1);
    no_model.attributes.retain(|kv| kv.key != "model");
    let mut negative = api_request("req_3", NOW, 1, 1);
    negative.attributes.push(n("output_tokens", -4));
    negative
        .attributes
        .retain(|kv| !(kv.key == "output_tokens" && kv.value == n("output_tokens", 1).value));
    let old = api_request("req_4", NOW - MAX_PAST_MS - 1, 1, 1);
    let req = logs(vec![
        record("claude_code.tool_result", NOW, vec![s("tool_name", "Bash")]),
        api_request("req_1", NOW, 5, 6),
        no_model,
        negative,
        old,
        api_request("req_1", NOW, 5, 6),
    ]);
    let m = map_logs(&req, &ctx(PrivacyMode::Off, Path::Otlp)).unwrap();
    assert_eq!(m.events.len(), 1);
    assert_eq!(m.rejected, 4);
    assert_eq!(
        m.message(),
        "claude_code.api_request: model missing; claude_code.api_request: output_tokens must be a non-negative integer; claude_code.api_request: timestamp older than the backfill window; claude_code.api_request: duplicate record in one export"
    );
    let resp = ExportLogsServiceResponse::decode(&m.logs_response(Encoding::Protobuf)[..]).unwrap();
    assert_eq!(resp.partial_success.unwrap().rejected_log_records, 4);
    let json: serde_json::Value = serde_json::from_slice(&m.logs_response(Encoding::Json)).unwrap();
    assert_eq!(json["partialSuccess"]["rejectedLogRecords"], 4);
}

#[test]
fn the_agent_path_keeps_what_it_counts() {
    let req = logs(vec![
        api_request("a", NOW - 2_000, 1, 1),
        api_request("b", NOW, 1, 1),
    ]);
    let mut c = ctx(PrivacyMode::Off, Path::Otlp);
    c.source = SourcePath {
        path: Path::Otlp,
        since_ms: Some(NOW - 1_000),
        earlier: Vec::new(),
    };
    let m = map_logs(&req, &c).unwrap();
    assert_eq!(m.events.len(), 1);
    assert_eq!(m.events[0].ts, NOW);
    assert_eq!(m.rejected, 1);
    assert!(m.message().contains("counted from the Tally agent"));
    let all_agent = map_logs(&req, &ctx(PrivacyMode::Off, Path::Agent)).unwrap();
    assert_eq!((all_agent.events.len(), all_agent.rejected), (0, 2));
    assert!(all_agent.saw_requests);
}

#[test]
fn prompts_follow_the_mode_and_are_redacted() {
    let prompt = record(
        "claude_code.user_prompt",
        NOW - 100,
        vec![
            s("event.name", "user_prompt"),
            s("session.id", "sess-1"),
            s("prompt", "deploy with key AKIAIOSFODNN7EXAMPLE please"),
            n("prompt_length", 44),
        ],
    );
    let req = logs(vec![prompt, api_request("r", NOW, 1, 1)]);
    let off = map_logs(&req, &ctx(PrivacyMode::Off, Path::Otlp)).unwrap();
    assert_eq!(off.events[0].prompt, None);
    let local = map_logs(&req, &ctx(PrivacyMode::CategorizeLocal, Path::Otlp)).unwrap();
    assert_eq!(local.events[0].prompt, None);
    let full = map_logs(&req, &ctx(PrivacyMode::Full, Path::Otlp)).unwrap();
    let text = full.events[0].prompt.as_deref().unwrap();
    assert!(!text.contains("AKIA"), "{text}");
    assert!(text.starts_with("deploy with key "), "{text}");
    assert_eq!(full.events[0].mode, PrivacyMode::Full);
    assert!(tally_core::privacy::check_stamp(&full.events[0]).is_ok());
}

#[test]
fn codex_completions_carry_tokens() {
    let sse = |kind: &str, input: &str| {
        record(
            "",
            NOW,
            vec![
                s("event.name", "codex.sse_event"),
                s("event.kind", kind),
                s("conversation.id", "conv-9"),
                s("model", "gpt-5-codex"),
                s("user.email", "bob@example.com"),
                // Codex formats some counts with Display: strings.
                s("input_token_count", input),
                s("output_token_count", "70"),
                n("cached_token_count", 400),
                n("reasoning_token_count", 30),
                s("tool_token_count", "0"),
            ],
        )
    };
    let req = logs(vec![
        sse("response.created", "0"),
        sse("response.completed", "1000"),
    ]);
    let m = map_logs(&req, &ctx(PrivacyMode::Off, Path::Otlp)).unwrap();
    assert_eq!(m.rejected, 0);
    assert!(!m.saw_requests);
    assert_eq!(m.events.len(), 1);
    let e = &m.events[0];
    assert_eq!(e.agent, AgentKind::Codex);
    assert_eq!(
        e.tokens,
        TokenUsage {
            input: 600,
            output: 70,
            cache_write_5m: 0,
            cache_write_1h: 0,
            cache_read: 400
        }
    );
    assert_eq!(e.session, session_hash("salt", "conv-9"));
    assert_eq!(e.cost_pico_usd, None);
}

fn point(ty: Option<&str>, value: f64, start: i64, end: i64) -> NumberDataPoint {
    let mut attrs = vec![
        s("session.id", "sess-1"),
        s("model", "claude-sonnet-4-5-20250929"),
        s("user.email", "alice@example.com"),
    ];
    if let Some(t) = ty {
        attrs.push(s("type", t));
    }
    NumberDataPoint {
        attributes: attrs,
        start_time_unix_nano: start as u64 * NS,
        time_unix_nano: end as u64 * NS,
        value: Some(number_data_point::Value::AsDouble(value)),
        ..Default::default()
    }
}

fn metrics(
    temporality: AggregationTemporality,
    start: i64,
    end: i64,
) -> ExportMetricsServiceRequest {
    let sum = |name: &str, points: Vec<NumberDataPoint>| Metric {
        name: name.into(),
        data: Some(metric::Data::Sum(Sum {
            data_points: points,
            aggregation_temporality: temporality as i32,
            is_monotonic: true,
        })),
        ..Default::default()
    };
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![
                    sum(
                        "claude_code.token.usage",
                        vec![
                            point(Some("input"), 10.0, start, end),
                            point(Some("output"), 20.0, start, end),
                            point(Some("cacheRead"), 1000.0, start, end),
                            point(Some("cacheCreation"), 200.0, start, end),
                        ],
                    ),
                    sum(
                        "claude_code.cost.usage",
                        vec![point(None, 0.0123, start, end)],
                    ),
                    sum(
                        "claude_code.session.count",
                        vec![point(None, 1.0, start, end)],
                    ),
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

#[test]
fn delta_metrics_become_one_event_per_series_and_interval() {
    let req = metrics(AggregationTemporality::Delta, NOW - 60_000, NOW);
    let pb = req.encode_to_vec();
    let m = map_metrics(
        &decode_metrics(&pb, Encoding::Protobuf).unwrap(),
        &ctx(PrivacyMode::Off, Path::Otlp),
    )
    .unwrap();
    assert_eq!(m.rejected, 0);
    assert_eq!(m.events.len(), 1);
    let e = &m.events[0];
    assert_eq!(e.ts, NOW);
    assert_eq!(
        e.tokens,
        TokenUsage {
            input: 10,
            output: 20,
            cache_write_5m: 200,
            cache_write_1h: 0,
            cache_read: 1000
        }
    );
    assert_eq!(e.cost_pico_usd, Some(12_300_000_000));
    // A retry maps to the same id.
    let again = map_metrics(&req, &ctx(PrivacyMode::Off, Path::Otlp)).unwrap();
    assert_eq!(again.events[0].id, e.id);
    assert_eq!(again.batch_id("a1", "metrics"), m.batch_id("a1", "metrics"));
    assert_ne!(m.batch_id("a2", "metrics"), m.batch_id("a1", "metrics"));
}

#[test]
fn metrics_are_not_read_where_logs_count_or_temporality_is_cumulative() {
    let mut c = ctx(PrivacyMode::Off, Path::Otlp);
    c.logs_seen = true;
    let m = map_metrics(
        &metrics(AggregationTemporality::Delta, NOW - 60_000, NOW),
        &c,
    )
    .unwrap();
    assert_eq!((m.events.len(), m.rejected), (0, 5));
    assert!(m.message().contains("never both"), "{}", m.message());
    let cumulative = map_metrics(
        &metrics(AggregationTemporality::Cumulative, NOW - 60_000, NOW),
        &ctx(PrivacyMode::Off, Path::Otlp),
    )
    .unwrap();
    assert_eq!((cumulative.events.len(), cumulative.rejected), (0, 5));
    assert!(cumulative.message().contains("delta"));
}

#[test]
fn malformed_bodies_and_limits_are_errors() {
    assert!(matches!(
        decode_logs(b"\xff\xff\xff", Encoding::Protobuf),
        Err(OtlpError::Undecodable { .. })
    ));
    assert!(matches!(
        decode_logs(b"{\"resourceLogs\": 5}", Encoding::Json),
        Err(OtlpError::Undecodable { .. })
    ));
    let many = logs(vec![record("x", NOW, vec![]); MAX_RECORDS + 1]);
    assert_eq!(
        decode_logs(&many.encode_to_vec(), Encoding::Protobuf).err(),
        Some(OtlpError::TooManyRecords {
            what: "log records"
        })
    );
    assert_eq!(
        Encoding::from_content_type(Some("application/json; charset=utf-8")),
        Some(Encoding::Json)
    );
    assert_eq!(
        Encoding::from_content_type(Some("application/x-protobuf")),
        Some(Encoding::Protobuf)
    );
    assert_eq!(Encoding::from_content_type(Some("text/plain")), None);
    assert_eq!(Encoding::from_content_type(None), None);
}
