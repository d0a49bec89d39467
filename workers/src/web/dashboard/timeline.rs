//! `GET /sessions/:id`: a Full-mode session as a timeline, and
//! `GET /sessions/:id/export?format=json|md`. Owners and admins only; the
//! content is opened in the Worker for this request (`content::store::read`),
//! answered with `Cache-Control: no-store`, and every view or export is
//! audited and dates the developers' "content last viewed".
//!
//! The wire carries no parent/child link between a session and the
//! subagents it started, so subagent requests appear in order within their
//! own session; nothing here guesses a nesting.

use std::collections::BTreeSet;

use maud::{html, Markup};
use serde_json::json;
use tally_core::money::Usd;
use worker::{Env, Request, Response};

use super::layout::{mode_chip, show, usd};
use super::Page;
use crate::content::store::{self, StoredEvent};
use crate::db::ContentObject;
use crate::util::{now_ms, query};
use crate::vocab::{AuditAction, Role};
use crate::web::auth::SignedIn;
use crate::web::error::PageError;
use crate::zone::Zone;

/// Texts longer than this are shown folded behind "show more".
const FOLD_CHARS: usize = 600;

pub fn valid_session(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The session's requests in the order they happened, each once, opened
/// from its sealed objects; the developers whose objects were read.
pub async fn load(env: &Env, team_id: &str, objects: &[ContentObject]) -> worker::Result<Loaded> {
    let mut events: Vec<StoredEvent> = Vec::new();
    let mut developers = BTreeSet::new();
    for o in objects {
        if let Some(c) = store::read(env, team_id, &o.key).await? {
            developers.insert(o.developer_id.clone());
            events.extend(c.events);
        }
    }
    events.sort_by(|a, b| a.ts.cmp(&b.ts).then_with(|| a.id.cmp(&b.id)));
    events.dedup_by(|a, b| a.id == b.id);
    Ok(Loaded {
        events,
        developers: developers.into_iter().collect(),
    })
}

pub struct Loaded {
    pub events: Vec<StoredEvent>,
    pub developers: Vec<String>,
}

/// Guard, load and record the read: shared by the page and the export.
async fn open(
    req: &Request,
    env: &Env,
    session: &str,
    action: AuditAction,
    extra: serde_json::Value,
) -> Result<(SignedIn, Loaded), PageError> {
    let user = SignedIn::for_page(req, env).await?;
    user.require_page(Role::Admin)?;
    if !valid_session(session) {
        return Err(not_found());
    }
    let objects = user.db.session_content(session).await?;
    let loaded = load(env, user.db.team_id(), &objects).await?;
    if loaded.events.is_empty() {
        return Err(not_found());
    }
    let now = now_ms();
    user.db.mark_content_viewed(&loaded.developers, now).await?;
    // Naming whose content was read lets each developer find the entry in
    // their self-view (`/me/audit`).
    let mut details = json!({"session": session, "requests": loaded.events.len(), "developers": loaded.developers});
    if let (Some(d), serde_json::Value::Object(e)) = (details.as_object_mut(), extra) {
        d.extend(e);
    }
    user.audit(action, details).await?;
    Ok((user, loaded))
}

pub fn not_found() -> PageError {
    PageError::Api(crate::web::error::ApiError::not_found(
        "no stored content for this session",
    ))
}

pub fn no_store(mut r: Response) -> worker::Result<Response> {
    r.headers_mut().set("Cache-Control", "no-store")?;
    Ok(r)
}

fn cost(e: &StoredEvent) -> Option<Usd> {
    e.cost_pico_usd.map(|p| Usd::from_pico(p as u128))
}

fn hour_anchor(zone: &Zone, ts: i64) -> (String, String) {
    // "YYYY-MM-DD HH:MM" in the team's zone; the hour is its first 13 characters.
    let t = zone.time(ts);
    let hour = t.chars().take(13).collect::<String>();
    let id = format!(
        "h-{}",
        hour.chars()
            .filter(|c| c.is_ascii_digit())
            .collect::<String>()
    );
    (id, format!("{hour}:00"))
}

fn text_block(label: &str, text: &str, testid: &str) -> Markup {
    let long = text.chars().count() > FOLD_CHARS;
    html! {
        div.text data-testid=(testid) {
            b { (label) }
            @if long {
                p.pre { (text.chars().take(FOLD_CHARS).collect::<String>()) "…" }
                details data-testid="fold" {
                    summary { "show more" }
                    p.pre data-testid="full-text" { (text) }
                }
            } @else {
                p.pre { (text) }
            }
        }
    }
}

pub async fn page(req: Request, env: Env, session: &str) -> Page {
    let (user, loaded) = open(&req, &env, session, AuditAction::ContentView, json!({})).await?;
    let zone = Zone::new(&user.db.settings().await?.timezone);
    let body = render(session, &zone, &loaded.events, true);
    Ok(no_store(show(&user, "Session", "/sessions", body, 200)?)?)
}

/// The timeline of `events`; `exports` adds the download links (members).
pub fn render(session: &str, zone: &Zone, events: &[StoredEvent], exports: bool) -> Markup {
    let total: Usd = events.iter().filter_map(cost).sum();
    let mut hours: Vec<(String, String)> = events.iter().map(|e| hour_anchor(zone, e.ts)).collect();
    // The hour heading goes before the first request of each hour.
    let heads: Vec<Option<(String, String)>> = hours
        .iter()
        .enumerate()
        .map(|(n, h)| (n == 0 || hours[n - 1] != *h).then(|| h.clone()))
        .collect();
    hours.dedup();
    html! {
        h1 { "Session timeline" }
        p {
            code data-testid="session-id" { (session) } br;
            (events.len()) " requests with stored content, " (usd(total)) " in total. Times in " (zone.name) ". "
            @if exports {
                a href=(format!("/sessions/{session}/export?format=json")) data-testid="export-json" { "Export JSON" }
                " · "
                a href=(format!("/sessions/{session}/export?format=md")) data-testid="export-md" { "Export Markdown" }
            }
        }
        p.note { "Subagent requests appear in their own sessions: the wire carries no link between a session and the subagents it started." }
        nav.box data-testid="time-index" {
            "Jump to: "
            @for (id, label) in &hours {
                a href=(format!("#{id}")) { (label) } " "
            }
        }
        @for (n, e) in events.iter().enumerate() {
            @if let Some((hid, hlabel)) = &heads[n] {
                h2 id=(hid) { (hlabel) }
            }
            article.box.request data-testid="request" id=(format!("r{}", n + 1)) {
                p {
                    b { (zone.time(e.ts)) } " · " (e.model) " · "
                    span data-testid="tokens" {
                        (e.tokens.input) " in / " (e.tokens.output) " out / "
                        (e.tokens.cache_read) " cache read / "
                        (e.tokens.cache_write_5m + e.tokens.cache_write_1h) " cache write"
                    }
                    " · "
                    span data-testid="cost" title=(cost(e).map(|c| c.to_string()).unwrap_or_default()) {
                        (cost(e).map(usd).unwrap_or_else(|| "unpriced".into()))
                    }
                    " "
                    (mode_chip(e.mode))
                }
                @if !e.tools.is_empty() {
                    p data-testid="tools" { "Tools: " (e.tools.join(", ")) }
                }
                @if let Some(p) = &e.prompt { (text_block("Prompt (redacted)", p, "prompt")) }
                @if let Some(r) = &e.response { (text_block("Response", r, "response")) }
            }
        }
    }
}

fn event_json(zone: &Zone, e: &StoredEvent) -> serde_json::Value {
    json!({
        "id": e.id,
        "ts": e.ts,
        "time": zone.time(e.ts),
        "agent": e.agent,
        "model": e.model,
        "tokens": e.tokens,
        "cost_usd": cost(e).map(|c| c.to_string()),
        "mode": e.mode,
        "prompt": e.prompt,
        "response": e.response,
        "tools": e.tools,
    })
}

pub fn markdown(session: &str, zone: &Zone, events: &[StoredEvent]) -> String {
    let mut md = format!("# Session {session}\n\nTimes in {}.\n", zone.name);
    for (n, e) in events.iter().enumerate() {
        md.push_str(&format!(
            "\n## {}. {} · {} · {}\n\n- mode: {}\n- tokens: {} in, {} out, {} cache read, {} cache write\n",
            n + 1,
            zone.time(e.ts),
            e.model,
            cost(e).map(usd).unwrap_or_else(|| "unpriced".into()),
            e.mode.as_str(),
            e.tokens.input,
            e.tokens.output,
            e.tokens.cache_read,
            e.tokens.cache_write_5m + e.tokens.cache_write_1h,
        ));
        if !e.tools.is_empty() {
            md.push_str(&format!("- tools: {}\n", e.tools.join(", ")));
        }
        for (label, text) in [("Prompt", &e.prompt), ("Response", &e.response)] {
            if let Some(t) = text {
                // A fence longer than any backtick run inside cannot be closed early.
                let run = longest_backtick_run(t).max(2) + 1;
                let fence = "`".repeat(run);
                md.push_str(&format!("\n**{label}**\n\n{fence}text\n{t}\n{fence}\n"));
            }
        }
    }
    md
}

fn longest_backtick_run(s: &str) -> usize {
    let (mut best, mut cur) = (0, 0);
    for c in s.chars() {
        if c == '`' {
            cur += 1;
            best = best.max(cur);
        } else {
            cur = 0;
        }
    }
    best
}

pub async fn export(req: Request, env: Env, session: &str) -> Page {
    let format = match query(&req).get("format").map(String::as_str) {
        Some("json") => "json",
        Some("md") => "md",
        _ => {
            return Err(PageError::Api(crate::web::error::ApiError::bad_request(
                "format must be json or md",
            )))
        }
    };
    let (user, loaded) = open(
        &req,
        &env,
        session,
        AuditAction::ContentExport,
        json!({"format": format}),
    )
    .await?;
    let zone = Zone::new(&user.db.settings().await?.timezone);
    let (body, content_type) = if format == "json" {
        let events: Vec<_> = loaded.events.iter().map(|e| event_json(&zone, e)).collect();
        (
            json!({"session": session, "timezone": zone.name, "events": events}).to_string(),
            "application/json",
        )
    } else {
        (
            markdown(session, &zone, &loaded.events),
            "text/markdown; charset=utf-8",
        )
    };
    let mut r = Response::ok(body)?;
    r.headers_mut().set("Content-Type", content_type)?;
    let short: String = session.chars().take(16).collect();
    r.headers_mut().set(
        "Content-Disposition",
        &format!("attachment; filename=\"tally-session-{short}.{format}\""),
    )?;
    Ok(no_store(r)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_fences_outlast_backticks_in_the_text() {
        assert_eq!(longest_backtick_run("a ```` b ` c"), 4);
        assert!(valid_session("ab12"));
        assert!(!valid_session("../x"));
        assert!(!valid_session(""));
    }
}
