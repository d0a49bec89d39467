//! Loopback fakes for the third parties the sandbox cannot reach. Each speaks
//! the real wire format of its service (paths, headers, JSON shapes), records
//! every request, and answers from a scripted responder.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;

use serde_json::{json, Value};

#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// Extra response headers (e.g. `Retry-After`).
    pub headers: Vec<(String, String)>,
}

impl Reply {
    pub fn json(status: u16, v: Value) -> Reply {
        Reply {
            status,
            content_type: "application/json",
            body: v.to_string().into_bytes(),
            headers: Vec::new(),
        }
    }
    pub fn text(status: u16, s: &str) -> Reply {
        Reply {
            status,
            content_type: "text/plain",
            body: s.as_bytes().to_vec(),
            headers: Vec::new(),
        }
    }
    pub fn with_header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
}

type Responder = dyn Fn(&Recorded) -> Reply + Send + Sync;

pub struct FakeServer {
    pub base: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
    responder: Arc<Mutex<Arc<Responder>>>,
}

impl FakeServer {
    pub fn start(responder: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let responder: Arc<Mutex<Arc<Responder>>> = Arc::new(Mutex::new(Arc::new(responder)));
        let (reqs, resp) = (requests.clone(), responder.clone());
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (reqs, resp) = (reqs.clone(), resp.clone());
                thread::spawn(move || {
                    let _ = serve(stream, &reqs, &resp);
                });
            }
        });
        FakeServer {
            base,
            requests,
            responder,
        }
    }

    /// Changes the scripted answer, e.g. to simulate an outage mid-test.
    pub fn set_responder(&self, responder: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) {
        *self.responder.lock().unwrap() = Arc::new(responder);
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }
}

fn serve(
    stream: TcpStream,
    reqs: &Mutex<Vec<Recorded>>,
    resp: &Mutex<Arc<Responder>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_string();
        let path = parts.next().unwrap_or_default().to_string();
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            reader.read_line(&mut h)?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        let len = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse::<usize>().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        reader.read_exact(&mut body)?;
        let rec = Recorded {
            method,
            path,
            headers,
            body,
        };
        let responder = resp.lock().unwrap().clone();
        let reply = responder(&rec);
        reqs.lock().unwrap().push(rec);
        let mut w = stream.try_clone()?;
        let extra: String = reply
            .headers
            .iter()
            .map(|(k, v)| format!("{k}: {v}\r\n"))
            .collect();
        write!(
            w,
            "HTTP/1.1 {} X\r\nContent-Type: {}\r\nContent-Length: {}\r\n{extra}Connection: keep-alive\r\n\r\n",
            reply.status,
            reply.content_type,
            reply.body.len()
        )?;
        w.write_all(&reply.body)?;
        w.flush()?;
    }
}

/// Anthropic Messages API (`POST /v1/messages`): answers with a message whose
/// single text block is `answer_json`, with realistic usage figures.
pub fn anthropic(answer_json: Value) -> FakeServer {
    FakeServer::start(move |req| {
        if req.method != "POST" || req.path != "/v1/messages" {
            return Reply::json(
                404,
                json!({"type": "error", "error": {"type": "not_found_error", "message": "Not found"}}),
            );
        }
        if req.header("x-api-key").is_none() || req.header("anthropic-version").is_none() {
            return Reply::json(
                401,
                json!({"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}}),
            );
        }
        let model = req.json()["model"]
            .as_str()
            .unwrap_or("claude-haiku-4-5")
            .to_string();
        Reply::json(
            200,
            json!({
                "id": "msg_fake01", "type": "message", "role": "assistant", "model": model,
                "content": [{"type": "text", "text": answer_json.to_string()}],
                "stop_reason": "end_turn", "stop_sequence": null,
                "usage": {"input_tokens": 412, "output_tokens": 38, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
            }),
        )
    })
}

/// Anthropic Messages API answering with plain `text` (a summary, not JSON).
pub fn anthropic_text(text: &str) -> FakeServer {
    let text = text.to_string();
    FakeServer::start(move |req| anthropic_text_reply(req, &text))
}

pub fn anthropic_text_reply(req: &Recorded, text: &str) -> Reply {
    if req.method != "POST" || req.path != "/v1/messages" || req.header("x-api-key").is_none() {
        return Reply::json(
            404,
            json!({"type": "error", "error": {"type": "not_found_error", "message": "Not found"}}),
        );
    }
    Reply::json(
        200,
        json!({
            "id": "msg_fake02", "type": "message", "role": "assistant", "model": req.json()["model"],
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn", "stop_sequence": null,
            "usage": {"input_tokens": 412, "output_tokens": 38, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
        }),
    )
}

/// What the Messages API answers when overloaded (HTTP 529).
pub fn anthropic_overloaded() -> Reply {
    Reply::json(
        529,
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
    )
}

/// The path of the fake's incoming webhook, as Slack issues them.
pub const SLACK_WEBHOOK_PATH: &str = "/services/T0FAKE001/B0FAKE001/fakeWebhookSecret0042";
/// The bot token the fake's `chat.postMessage` accepts.
pub const SLACK_BOT_TOKEN: &str = "xoxb-1111-2222-fakeBotToken0099";

/// Slack as it answers by default: incoming webhooks (`POST /services/…`,
/// JSON `{text, blocks}`) answer 200 `ok` as text, or a 400 error word
/// (`invalid_payload`, `no_text`); Web API `POST /api/chat.postMessage`
/// (bearer token, JSON with `channel`) answers HTTP 200 with `{"ok": …}`
/// and Slack's error strings (`not_authed`, `invalid_auth`, `channel_not_found`).
pub fn slack_reply(req: &Recorded) -> Reply {
    if req.method != "POST" {
        return Reply::text(405, "invalid_method");
    }
    let body = req.json();
    if req.path.starts_with("/services/") {
        if body.is_null() {
            return Reply::text(400, "invalid_payload");
        }
        if body
            .get("text")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Reply::text(400, "no_text");
        }
        if req.path != SLACK_WEBHOOK_PATH {
            return Reply::text(403, "invalid_token");
        }
        return Reply::text(200, "ok");
    }
    if req.path == "/api/chat.postMessage" {
        let err = |e: &str| Reply::json(200, json!({"ok": false, "error": e}));
        match req.header("authorization") {
            None => return err("not_authed"),
            Some(a) if a != format!("Bearer {SLACK_BOT_TOKEN}") => return err("invalid_auth"),
            _ => {}
        }
        let Some(channel) = body["channel"].as_str() else {
            return err("channel_not_found");
        };
        if body.get("text").is_none() && body.get("blocks").is_none() {
            return err("no_text");
        }
        return Reply::json(
            200,
            json!({"ok": true, "channel": channel, "ts": "1764489600.000100",
                   "message": {"type": "message", "subtype": "bot_message", "text": body["text"], "bot_id": "B0FAKEBOT", "ts": "1764489600.000100"}}),
        );
    }
    Reply::text(404, "not_found")
}

/// Slack's webhook host and Web API on one loopback port (see `slack_reply`);
/// tests script failures with `set_responder`.
pub fn slack() -> FakeServer {
    FakeServer::start(slack_reply)
}

/// Resend-compatible email API: `POST /emails` with bearer key → `{"id": …}`.
pub fn email() -> FakeServer {
    FakeServer::start(email_reply)
}

/// The e-mail fake's normal answer, to put back after scripting a failure.
pub fn email_reply(req: &Recorded) -> Reply {
    {
        let b = req.json();
        if req.method != "POST" || req.path != "/emails" {
            return Reply::json(
                404,
                json!({"name": "not_found", "message": "Not found", "statusCode": 404}),
            );
        }
        if !req
            .header("authorization")
            .is_some_and(|a| a.starts_with("Bearer "))
        {
            return Reply::json(
                401,
                json!({"name": "missing_api_key", "message": "Missing API key", "statusCode": 401}),
            );
        }
        if b.get("from").is_none() || b.get("to").is_none() || b.get("subject").is_none() {
            return Reply::json(
                422,
                json!({"name": "validation_error", "message": "Missing required field", "statusCode": 422}),
            );
        }
        Reply::json(200, json!({"id": "4ef9a417-02e9-4d39-ad75-9611e0fcc33c"}))
    }
}

/// Ollama `POST /api/chat` (non-streaming): the assistant message content is
/// `answer_json` serialized, as Ollama returns for a JSON-schema `format`.
pub fn ollama(answer_json: Value) -> FakeServer {
    FakeServer::start(move |req| {
        if req.method != "POST" || req.path != "/api/chat" {
            return Reply::text(404, "404 page not found");
        }
        let model = req.json()["model"]
            .as_str()
            .unwrap_or("llama3.1:8b")
            .to_string();
        Reply::json(
            200,
            json!({
                "model": model, "created_at": "2026-11-22T12:00:00.000000Z",
                "message": {"role": "assistant", "content": answer_json.to_string()},
                "done_reason": "stop", "done": true,
                "total_duration": 812000000u64, "load_duration": 1000000, "prompt_eval_count": 120,
                "prompt_eval_duration": 300000000, "eval_count": 30, "eval_duration": 500000000
            }),
        )
    })
}

/// The admin API key the Cursor fake accepts.
pub const CURSOR_KEY: &str = "key_fakeCursorAdmin0123456789abcdef";

/// What the Cursor fake serves: its events (in Cursor's format) and, when
/// set, the status every request gets instead (401, 429, …).
#[derive(Default)]
pub struct CursorScript {
    pub events: Vec<Value>,
    pub fail: Option<u16>,
}

/// Cursor's Admin API, `POST /teams/filtered-usage-events`: HTTP Basic with
/// the key as user name and an empty password, a JSON body with `startDate`
/// and `endDate` (ms), `page` (from 1) and `pageSize`; answers the events
/// with `startDate <= timestamp < endDate`, newest first, one page of
/// them, with Cursor's `pagination` object. Bad requests get Cursor's 400.
pub fn cursor_reply(req: &Recorded, s: &CursorScript) -> Reply {
    use base64::Engine;
    if req.method != "POST" || req.path != "/teams/filtered-usage-events" {
        return Reply::json(404, json!({"error": "Not found"}));
    }
    let key = req
        .header("authorization")
        .and_then(|a| a.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok());
    if key.as_deref() != Some(&format!("{CURSOR_KEY}:")) {
        return Reply::json(
            401,
            json!({"error": "Unauthorized", "message": "Invalid API key"}),
        );
    }
    if let Some(status) = s.fail {
        let body = match status {
            429 => json!({"error": "Too Many Requests", "message": "Rate limit exceeded"}),
            _ => json!({"error": "Error", "message": format!("HTTP {status}")}),
        };
        return Reply::json(status, body);
    }
    let b = req.json();
    let (Some(start), Some(end)) = (b["startDate"].as_i64(), b["endDate"].as_i64()) else {
        return Reply::json(
            400,
            json!({"error": "Bad Request", "message": "startDate and endDate are required (epoch ms)"}),
        );
    };
    let page = b["page"].as_u64().unwrap_or(1);
    let size = b["pageSize"].as_u64().unwrap_or(10);
    if page == 0 || size == 0 || start > end {
        return Reply::json(
            400,
            json!({"error": "Bad Request", "message": "invalid page, pageSize or date range"}),
        );
    }
    let ts = |e: &Value| -> i64 {
        e["timestamp"]
            .as_str()
            .and_then(|t| t.parse().ok())
            .unwrap_or(0)
    };
    let mut matching: Vec<&Value> = s
        .events
        .iter()
        .filter(|e| (start..end).contains(&ts(e)))
        .collect();
    matching.sort_by_key(|e| std::cmp::Reverse(ts(e)));
    let total = matching.len() as u64;
    let pages = total.div_ceil(size);
    let from = ((page - 1) * size) as usize;
    let events: Vec<&Value> = matching
        .into_iter()
        .skip(from)
        .take(size as usize)
        .collect();
    Reply::json(
        200,
        json!({
            "totalUsageEventsCount": total,
            "pagination": {"numPages": pages, "currentPage": page, "pageSize": size,
                           "hasNextPage": page < pages, "hasPreviousPage": page > 1},
            "usageEvents": events,
            "period": {"startDate": start, "endDate": end}
        }),
    )
}

/// The Cursor Admin API fake; `script` is read on every request, so tests
/// add events or failures as they go.
pub fn cursor(script: Arc<Mutex<CursorScript>>) -> FakeServer {
    FakeServer::start(move |req| cursor_reply(req, &script.lock().unwrap()))
}
