//! OTLP ingest end to end against workerd: a token issued on the Tokens page,
//! real protobuf and JSON payloads built with `opentelemetry-proto`'s types,
//! gzip, bad inputs, retries, and the per-developer source switch in both
//! directions (nothing lost, nothing counted twice).

use std::io::Write;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, AggregationTemporality, Metric, NumberDataPoint, ResourceMetrics,
    ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use serde_json::{json, Value};
use tally_e2e::{
    batch, body_json, form_escape, now_ms, off_event, status, ApiAgent, Stack, WebClient,
};

const MODEL: &str = "claude-sonnet-4-5-20250929";

fn kv(k: &str, v: any_value::Value) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue { value: Some(v) }),
        ..Default::default()
    }
}

fn s(k: &str, v: &str) -> KeyValue {
    kv(k, any_value::Value::StringValue(v.into()))
}

fn n(k: &str, v: i64) -> KeyValue {
    kv(k, any_value::Value::IntValue(v))
}

/// Claude Code's `claude_code.api_request` log event.
fn api_request(rid: &str, ts: i64, input: i64) -> LogRecord {
    LogRecord {
        time_unix_nano: ts as u64 * 1_000_000,
        body: Some(AnyValue {
            value: Some(any_value::Value::StringValue(
                "claude_code.api_request".into(),
            )),
        }),
        attributes: vec![
            s("event.name", "api_request"),
            s("session.id", "0b6e1a52-sess"),
            s("user.email", "dev@example.com"),
            s("user.account_uuid", "acct-uuid-1"),
            s("model", MODEL),
            kv("cost_usd", any_value::Value::DoubleValue(0.5)),
            n("input_tokens", input),
            n("output_tokens", 10),
            n("cache_read_tokens", 0),
            n("cache_creation_tokens", 0),
            s("request_id", rid),
        ],
        ..Default::default()
    }
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

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

#[allow(clippy::result_large_err)] // ureq's own error type, as the other e2e helpers return it
fn post(
    stack: &Stack,
    path: &str,
    token: &str,
    content_type: &str,
    gz: bool,
    body: &[u8],
) -> Result<ureq::Response, ureq::Error> {
    let mut r = ureq::post(&stack.url(path))
        .set("Authorization", &format!("Bearer {token}"))
        .set("Content-Type", content_type);
    if gz {
        r = r.set("Content-Encoding", "gzip");
    }
    r.send_bytes(body)
}

fn post_logs(
    stack: &Stack,
    token: &str,
    req: &ExportLogsServiceRequest,
) -> ExportLogsServiceResponse {
    let r = post(
        stack,
        "/v1/otlp/v1/logs",
        token,
        "application/x-protobuf",
        false,
        &req.encode_to_vec(),
    )
    .expect("OTLP logs export");
    assert_eq!(r.status(), 200);
    assert_eq!(r.header("Content-Type"), Some("application/x-protobuf"));
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut r.into_reader(), &mut bytes).unwrap();
    ExportLogsServiceResponse::decode(&bytes[..]).unwrap()
}

fn rejected(r: &ExportLogsServiceResponse) -> i64 {
    r.partial_success
        .as_ref()
        .map(|p| p.rejected_log_records)
        .unwrap_or(0)
}

/// Requests and input tokens stored for the team, by agent kind.
fn usage(stack: &Stack, team: &str) -> (u64, u64) {
    let r = stack.d1(&format!(
        "SELECT COALESCE(SUM(requests),0) AS requests, COALESCE(SUM(input_tokens),0) AS input FROM usage_q WHERE team_id = '{team}'"
    ));
    (
        r[0]["requests"].as_u64().unwrap(),
        r[0]["input"].as_u64().unwrap(),
    )
}

fn wait_usage(stack: &Stack, team: &str, want: (u64, u64)) {
    stack.eventually(&format!("usage {want:?}"), Duration::from_secs(30), || {
        (usage(stack, team) == want).then_some(())
    });
}

fn post_form(stack: &Stack, c: &WebClient, path: &str, fields: &[(&str, &str)]) -> (u16, String) {
    let mut body: Vec<String> = vec![format!("csrf={}", form_escape(&c.csrf))];
    body.extend(
        fields
            .iter()
            .map(|(k, v)| format!("{k}={}", form_escape(v))),
    );
    let r = c
        .agent
        .post(&stack.url(path))
        .set("Cookie", &c.cookie)
        .set("Content-Type", "application/x-www-form-urlencoded")
        .send_string(&body.join("&"));
    match r {
        Ok(r) => (r.status(), r.into_string().unwrap_or_default()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap_or_default()),
        Err(e) => panic!("transport error: {e}"),
    }
}

/// Issues an OTLP token for the enrolled developer on the Tokens page and
/// reads it back from the page's ready-to-paste environment.
fn issue_token(stack: &Stack, admin: &WebClient, developer_id: &str) -> (String, String) {
    let (code, html) = post_form(
        stack,
        admin,
        "/tokens/otlp",
        &[("developer_id", developer_id)],
    );
    assert_eq!(code, 200, "{html}");
    let at = html.find("tly_otlp_").expect("token on the page");
    // The secret, then the team's shard tag (`-DB`): up to the first
    // character a token never holds.
    let token: String = html[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect();
    assert!(token.len() > 9 + 64, "{token}");
    assert!(
        html.contains("OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf")
            && html.contains("CLAUDE_CODE_ENABLE_TELEMETRY=1")
            && html.contains("OTEL_LOGS_EXPORTER=otlp")
            && html.contains(&format!("Authorization=Bearer {token}"))
            && html.contains("/v1/otlp"),
        "{html}"
    );
    // The managed-settings JSON, as the page shows it (HTML-escaped quotes).
    assert!(html.contains("&quot;env&quot;"), "{html}");
    (token, html)
}

fn switch(stack: &Stack, admin: &WebClient, developer_id: &str, to: &str) {
    let (code, _) = post_form(
        stack,
        admin,
        "/developers/source",
        &[("developer_id", developer_id), ("source", to)],
    );
    assert_eq!(code, 303);
}

fn config(agent: &ApiAgent) -> Value {
    ureq::get(&format!("{}/v1/agent/config", agent.base))
        .set("Authorization", &format!("Bearer {}", agent.token))
        .call()
        .unwrap()
        .into_json()
        .unwrap()
}

fn claude(n: u64, ts: i64) -> Value {
    let mut e = off_event(n, ts, MODEL, 1);
    e["tokens"]["input"] = json!(1000 * n);
    e
}

#[test]
fn protobuf_json_gzip_retries_and_bad_inputs() {
    let stack = Stack::start();
    let team = stack.bootstrap("Acme", "owner@acme.test");
    let admin = stack.sign_in(&team.signin_path);
    let agent = stack.enroll(&team.install_token);
    let (token, _) = issue_token(&stack, &admin, &agent.developer_id);
    switch(&stack, &admin, &agent.developer_id, "otlp");
    let now = now_ms();

    // Protobuf: one request counted, the other event types ignored.
    let mut tool = api_request("x", now, 1);
    tool.body = Some(AnyValue {
        value: Some(any_value::Value::StringValue(
            "claude_code.tool_result".into(),
        )),
    });
    let first = logs(vec![api_request("req_a", now, 100), tool]);
    assert_eq!(rejected(&post_logs(&stack, &token, &first)), 0);
    wait_usage(&stack, &team.team_id, (1, 100));
    // The exporter retries the same export: counted once.
    assert_eq!(rejected(&post_logs(&stack, &token, &first)), 0);

    // JSON, gzipped, with a bad record beside a good one: partial success.
    let mut bad = api_request("req_c", now, 5);
    bad.attributes.retain(|kv| kv.key != "model");
    let body = serde_json::to_vec(&logs(vec![api_request("req_b", now, 20), bad])).unwrap();
    let r = post(
        &stack,
        "/v1/otlp/v1/logs",
        &token,
        "application/json",
        true,
        &gzip(&body),
    );
    assert_eq!(status(&r), 200);
    let v = body_json(r);
    assert_eq!(v["partialSuccess"]["rejectedLogRecords"], 1, "{v}");
    assert_eq!(
        v["partialSuccess"]["errorMessage"],
        "claude_code.api_request: model missing"
    );
    wait_usage(&stack, &team.team_id, (2, 120));

    // Codex's export: a completed response carries the token counts (input
    // includes the cached tokens), formatted as strings by its tracing layer.
    let codex = LogRecord {
        time_unix_nano: now as u64 * 1_000_000,
        attributes: vec![
            s("event.name", "codex.sse_event"),
            s("event.kind", "response.completed"),
            s("conversation.id", "0199-conv"),
            s("model", "gpt-5-codex"),
            s("user.email", "dev@example.com"),
            s("input_token_count", "1000"),
            s("output_token_count", "50"),
            n("cached_token_count", 400),
            n("reasoning_token_count", 20),
            s("tool_token_count", "0"),
        ],
        ..Default::default()
    };
    assert_eq!(rejected(&post_logs(&stack, &token, &logs(vec![codex]))), 0);
    wait_usage(&stack, &team.team_id, (3, 720));
    let codex_rows = stack.d1(&format!(
        "SELECT agent, model, cache_read_tokens, output_tokens FROM usage_q WHERE team_id = '{}' AND agent = 'codex'",
        team.team_id
    ));
    assert_eq!(
        codex_rows,
        vec![
            json!({"agent": "codex", "model": "gpt-5-codex", "cache_read_tokens": 400, "output_tokens": 50})
        ]
    );

    // Delta metrics are not read once log events carried requests.
    let point = NumberDataPoint {
        attributes: vec![s("type", "input"), s("model", MODEL), s("session.id", "x")],
        start_time_unix_nano: (now as u64 - 60_000) * 1_000_000,
        time_unix_nano: now as u64 * 1_000_000,
        value: Some(number_data_point::Value::AsDouble(7.0)),
        ..Default::default()
    };
    let m = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: "claude_code.token.usage".into(),
                    data: Some(metric::Data::Sum(Sum {
                        data_points: vec![point],
                        aggregation_temporality: AggregationTemporality::Delta as i32,
                        is_monotonic: true,
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let r = post(
        &stack,
        "/v1/otlp/v1/metrics",
        &token,
        "application/json",
        false,
        &serde_json::to_vec(&m).unwrap(),
    );
    let v = body_json(r);
    assert_eq!(v["partialSuccess"]["rejectedDataPoints"], 1, "{v}");

    // Bad inputs: each a clear 4xx, nothing stored.
    let pb = first.encode_to_vec();
    let cases: Vec<(Result<ureq::Response, ureq::Error>, u16, &str)> = vec![
        (
            post(&stack, "/v1/otlp/v1/logs", &token, "text/plain", false, &pb),
            400,
            "unsupported_content_type",
        ),
        (
            post(
                &stack,
                "/v1/otlp/v1/logs",
                &token,
                "application/x-protobuf",
                false,
                b"\xff\xff\xff\xff",
            ),
            400,
            "invalid_otlp",
        ),
        (
            post(
                &stack,
                "/v1/otlp/v1/logs",
                &token,
                "application/json",
                false,
                b"{\"resourceLogs\": 3}",
            ),
            400,
            "invalid_otlp",
        ),
        (
            post(
                &stack,
                "/v1/otlp/v1/logs",
                &token,
                "application/x-protobuf",
                true,
                b"not gzip",
            ),
            400,
            "bad_gzip",
        ),
        (
            post(
                &stack,
                "/v1/otlp/v1/logs",
                &agent.token,
                "application/x-protobuf",
                false,
                &pb,
            ),
            401,
            "unauthorized",
        ),
        (
            post(
                &stack,
                "/v1/otlp/v1/logs",
                "tly_otlp_nope",
                "application/x-protobuf",
                false,
                &pb,
            ),
            401,
            "unauthorized",
        ),
        (
            post(
                &stack,
                "/v1/otlp/v1/logs",
                &token,
                "application/x-protobuf",
                false,
                &vec![0u8; 1024 * 1024 + 1],
            ),
            413,
            "too_large",
        ),
    ];
    for (r, code, error) in cases {
        assert_eq!(status(&r), code, "{error}");
        assert_eq!(body_json(r)["error"], error);
    }
    // The OTLP token does not work as an agent token either.
    let r = ureq::post(&stack.url("/v1/events"))
        .set("Authorization", &format!("Bearer {token}"))
        .send_string("{}");
    assert_eq!(status(&r), 401);
    assert_eq!(usage(&stack, &team.team_id), (3, 720));
    // No e-mail or account id reached D1.
    let dump = stack.d1(&format!(
        "SELECT * FROM usage_q WHERE team_id = '{}'",
        team.team_id
    ));
    let text = serde_json::to_string(&dump).unwrap();
    assert!(!text.contains("dev@example.com") && !text.contains("acct-uuid-1"));
    let audit = stack.audit_details(&team.team_id, "otlp_token.create");
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0]["developer_id"], agent.developer_id.as_str());
}

#[test]
fn the_source_switch_loses_and_doubles_nothing_in_either_direction() {
    let stack = Stack::start();
    let team = stack.bootstrap("Acme", "owner@acme.test");
    let admin = stack.sign_in(&team.signin_path);
    let agent = stack.enroll(&team.install_token);
    let (token, _) = issue_token(&stack, &admin, &agent.developer_id);
    let dev = agent.developer_id.clone();
    let t0 = now_ms() - 60_000;

    // 1. Agent path (the default): the agent counts, OTLP is turned away.
    assert_eq!(
        config(&agent)["source_path"],
        json!({"path": "agent", "since_ms": null})
    );
    let r = body_json(agent.post(&batch("batch-switch-0000001", vec![claude(1, t0)])));
    assert_eq!(
        (r["accepted"].as_u64(), r["skipped_otlp"].as_u64()),
        (Some(1), Some(0))
    );
    let resp = post_logs(&stack, &token, &logs(vec![api_request("r1", t0, 1000)]));
    assert_eq!(rejected(&resp), 1);
    assert!(resp
        .partial_success
        .unwrap()
        .error_message
        .contains("counted from the Tally agent"));
    wait_usage(&stack, &team.team_id, (1, 1000));

    // 2. Switch to OTLP at s1.
    switch(&stack, &admin, &dev, "otlp");
    let cfg = config(&agent);
    assert_eq!(cfg["source_path"]["path"], "otlp");
    let s1 = cfg["source_path"]["since_ms"].as_i64().unwrap();
    // A request made before the switch, shipped late by the agent, still
    // counts; one made after it is the export's.
    let r = body_json(agent.post(&batch(
        "batch-switch-0000002",
        vec![claude(2, s1 - 1), claude(3, s1 + 1)],
    )));
    assert_eq!(
        (r["accepted"].as_u64(), r["skipped_otlp"].as_u64()),
        (Some(1), Some(1))
    );
    let resp = post_logs(
        &stack,
        &token,
        &logs(vec![
            api_request("r2", s1 - 1, 20_000),
            api_request("r3", s1 + 1, 30_000),
        ]),
    );
    assert_eq!(rejected(&resp), 1);
    wait_usage(&stack, &team.team_id, (3, 1000 + 2000 + 30_000));

    // 3. Switch back to the agent at s2 (later than every request so far).
    std::thread::sleep(Duration::from_millis(5));
    switch(&stack, &admin, &dev, "agent");
    let cfg = config(&agent);
    assert_eq!(cfg["source_path"]["path"], "agent");
    let s2 = cfg["source_path"]["since_ms"].as_i64().unwrap();
    assert!(s2 > s1 + 1);
    // The export's late batch for the OTLP period still counts; the agent's
    // copy of that request does not, and after s2 it is the other way round.
    let resp = post_logs(
        &stack,
        &token,
        &logs(vec![
            api_request("r4", s2 - 1, 400_000),
            api_request("r5", s2 + 1, 500_000),
        ]),
    );
    assert_eq!(rejected(&resp), 1);
    let r = body_json(agent.post(&batch(
        "batch-switch-0000003",
        vec![claude(4, s2 - 1), claude(5, s2 + 1)],
    )));
    assert_eq!(
        (r["accepted"].as_u64(), r["skipped_otlp"].as_u64()),
        (Some(1), Some(1))
    );
    // After two switches a request from before the first, shipped very
    // late, is still the agent's; the export's copy of it is not counted.
    let r = body_json(agent.post(&batch("batch-switch-0000004", vec![claude(6, s1 - 2)])));
    assert_eq!(
        (r["accepted"].as_u64(), r["skipped_otlp"].as_u64()),
        (Some(1), Some(0))
    );
    let resp = post_logs(
        &stack,
        &token,
        &logs(vec![api_request("r6", s1 - 2, 600_000)]),
    );
    assert_eq!(rejected(&resp), 1);
    wait_usage(
        &stack,
        &team.team_id,
        (6, 1000 + 2000 + 30_000 + 400_000 + 5000 + 6000),
    );
    let audit = stack.audit_details(&team.team_id, "source_path.change");
    assert_eq!(audit.len(), 2);
    assert_eq!(audit[0]["to"], "otlp");
    assert_eq!(audit[1]["to"], "agent");
}
