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
    let bad_ts = assistant("m", "r", "s", 1, "").replace("2025-11-22T10:00:00.000Z", "yesterday");
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
