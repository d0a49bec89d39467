//! `tally dashboard`: opens this developer's read-only self-view in a
//! browser. Developers are not dashboard members; the enrolled agent's token
//! proves who they are. The server answers a one-time link (10 minutes) to
//! `/me`, where they see their own usage and every read of their content.

use std::process::{Command, Stdio};

use serde::Deserialize;

use tally::config::{check_server_url, Config};
use tally::error::AgentError;
use tally::home::Home;
use tally::upload::{agent, http_detail};

/// What `POST /v1/agent/self-view` answers (the fields the agent uses).
#[derive(Debug, Deserialize)]
struct Minted {
    path: String,
    expires_in_s: u64,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Link {
    pub url: String,
    pub expires_in_s: u64,
}

/// Asks the team server for a self-view link with this agent's token. The
/// link is built on the enrolled server from the answer's path, so the
/// agent never opens a page elsewhere, whatever the answer says.
pub fn request_link(cfg: &Config) -> Result<Link, AgentError> {
    check_server_url(&cfg.server)?;
    let server = cfg.server.trim_end_matches('/').to_string();
    let answer = agent()
        .post(&format!("{server}/v1/agent/self-view"))
        .set("Authorization", &format!("Bearer {}", cfg.agent_token))
        .call();
    let resp = match answer {
        Ok(resp) => resp,
        Err(ureq::Error::Status(code @ (401 | 403), resp)) => {
            return Err(AgentError::Auth {
                server,
                detail: http_detail(code, resp),
            })
        }
        Err(ureq::Error::Status(410, resp)) => {
            return Err(AgentError::TeamDeleted {
                server,
                detail: http_detail(410, resp),
            })
        }
        Err(ureq::Error::Status(429, resp)) => {
            return Err(AgentError::SelfViewLimited {
                retry_after_s: resp
                    .header("Retry-After")
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(60),
            })
        }
        Err(ureq::Error::Status(code, resp)) => {
            return Err(AgentError::SelfView {
                server,
                detail: http_detail(code, resp),
            })
        }
        Err(e) => {
            return Err(AgentError::Unreachable {
                server,
                source: Box::new(e),
            })
        }
    };
    let minted: Minted = resp.into_json().map_err(|e| AgentError::SelfView {
        server: server.clone(),
        detail: format!("unreadable answer: {e}"),
    })?;
    if !minted.path.starts_with("/me/link?") {
        return Err(AgentError::SelfView {
            server,
            detail: format!("unexpected link path {:?}", minted.path),
        });
    }
    Ok(Link {
        url: format!("{server}{}", minted.path),
        expires_in_s: minted.expires_in_s,
    })
}

/// The lines printed on stderr around the link (stdout carries the link alone).
pub fn intro(link: &Link) -> String {
    format!(
        "Your own Tally data (read-only): this link works once and expires in {} minutes.",
        link.expires_in_s.div_ceil(60)
    )
}

/// Starts the desktop's browser on `url`; false when there is none to start.
fn open_in_browser(url: &str) -> bool {
    let program = if cfg!(target_os = "macos") {
        "open"
    } else if cfg!(unix) {
        "xdg-open"
    } else {
        return false;
    };
    Command::new(program)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .is_ok()
}

pub fn dashboard(print_only: bool) -> Result<(), AgentError> {
    let cfg = Config::load(&Home::from_env())?;
    let link = request_link(&cfg)?;
    eprintln!("{}", intro(&link));
    println!("{}", link.url);
    if !print_only {
        if open_in_browser(&link.url) {
            eprintln!("Opening it in your browser.");
        } else {
            eprintln!("No browser could be started here: open the link above yourself.");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// Answers one request with `status` and `body`; returns the server URL
    /// and the request as received.
    fn one_answer(
        status: &'static str,
        headers: &'static str,
        body: &'static str,
    ) -> (String, std::thread::JoinHandle<String>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let h = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut buf = [0u8; 4096];
            let n = conn.read(&mut buf).unwrap_or(0);
            let _ = write!(
                conn,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            String::from_utf8_lossy(&buf[..n]).to_string()
        });
        (format!("http://127.0.0.1:{port}"), h)
    }

    fn config(server: &str) -> Config {
        serde_json::from_value(serde_json::json!({
            "server": server, "agent_token": "tly_agent_abc", "agent_id": "a1", "team_id": "t1",
            "developer_id": "d1", "salt": "s", "privacy_mode": "off", "ship_since_ms": 0
        }))
        .unwrap()
    }

    #[test]
    fn the_link_is_built_on_the_enrolled_server_with_the_agent_token() {
        let (server, h) = one_answer(
            "200 OK",
            "",
            r#"{"url":"https://elsewhere.example/me/link?token=tly_self_1","path":"/me/link?token=tly_self_1","expires_at":1,"expires_in_s":600}"#,
        );
        let link = request_link(&config(&format!("{server}/"))).unwrap();
        let request = h.join().unwrap();
        assert!(
            request.starts_with("POST /v1/agent/self-view HTTP/1.1\r\n"),
            "{request}"
        );
        assert!(
            request
                .to_ascii_lowercase()
                .contains("\r\nauthorization: bearer tly_agent_abc\r\n"),
            "{request}"
        );
        assert_eq!(
            link,
            Link {
                url: format!("{server}/me/link?token=tly_self_1"),
                expires_in_s: 600
            }
        );
        assert_eq!(
            intro(&link),
            "Your own Tally data (read-only): this link works once and expires in 10 minutes."
        );
    }

    #[test]
    fn a_path_off_the_self_view_is_refused() {
        let (server, h) = one_answer(
            "200 OK",
            "",
            r#"{"path":"@evil.example/x","expires_in_s":600}"#,
        );
        let e = request_link(&config(&server)).unwrap_err().to_string();
        h.join().unwrap();
        assert_eq!(
            e,
            "the server could not open your self-view: unexpected link path \"@evil.example/x\""
        );
    }

    #[test]
    fn refusals_say_what_to_do() {
        let (server, h) = one_answer(
            "401 Unauthorized",
            "",
            r#"{"error":"unauthorized","message":"unknown agent token"}"#,
        );
        let e = request_link(&config(&server)).unwrap_err().to_string();
        h.join().unwrap();
        assert_eq!(
            e,
            "the server refused this agent's credentials (HTTP 401: {\"error\":\"unauthorized\",\"message\":\"unknown agent token\"}). Ask a team admin for a new install token and run `tally install --server URL --token TOKEN` again; queued usage is kept and sent after that."
        );
        let (server, h) = one_answer(
            "410 Gone",
            "",
            r#"{"error":"team_deleted","message":"erased on 2026-12-29"}"#,
        );
        let e = request_link(&config(&server)).unwrap_err().to_string();
        h.join().unwrap();
        assert!(
            e.starts_with("the team was deleted by its owner (HTTP 410: "),
            "{e}"
        );
        assert!(e.contains("erased on 2026-12-29"), "{e}");
        let (server, h) = one_answer(
            "429 Too Many Requests",
            "Retry-After: 27\r\n",
            r#"{"error":"rate_limited","message":"too many"}"#,
        );
        let e = request_link(&config(&server)).unwrap_err().to_string();
        h.join().unwrap();
        assert_eq!(
            e,
            "too many self-view links were asked for from this agent; try again in 27 s"
        );
    }

    #[test]
    fn plain_http_to_another_host_is_refused_before_any_request() {
        let e = request_link(&config("http://tally.example.com"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("refusing to talk to http://tally.example.com"),
            "{e}"
        );
    }
}
