//! The developer self-view, read-only: `/me` (the developer's own spend,
//! tokens, models, projects and sessions, and what the team keeps),
//! `/me/audit` (the audit entries that concern them: who read their
//! content, privacy and retention changes, what was done to their agents)
//! and `/me/sessions/:id` (their own stored content). Every handler starts
//! with `DeveloperSignedIn::for_page`, and every read names the developer
//! beside the team, so nothing of another developer can show.

use maud::{html, Markup};
use serde_json::{json, Value};
use tally_core::event::PrivacyMode;
use worker::{Env, Request};

use super::layout::{duration, mode_chip, mode_chips, show_developer, table, usd};
use super::timeline;
use super::usage::models_table;
use super::Page;
use crate::db::{AuditEntry, GroupTotals, SessionRowOut, TeamSettings};
use crate::util::{now_ms, query};
use crate::vocab::AuditAction;
use crate::web::auth::DeveloperSignedIn;
use crate::web::export::Table;
use crate::web::range::Range;
use crate::web::stats::{prompt_tokens, sum};
use crate::zone::Zone;

const AUDIT_SHOWN: i64 = 500;

/// What the team keeps of a developer's work, in words.
pub fn kept(team: &TeamSettings) -> String {
    let mode = team.mode();
    let retention = match team.retention_days {
        0 => "kept until someone erases it".to_string(),
        d => format!("kept {d} days, then deleted"),
    };
    match mode {
        PrivacyMode::Off => "No text is stored: only numbers. Numbers (cost, tokens, requests, sessions) are kept for good.".into(),
        PrivacyMode::CategorizeLocal | PrivacyMode::CategorizeCloud => format!(
            "Categories and short hints of your prompts are {retention}; numbers are kept for good."
        ),
        PrivacyMode::Full => format!(
            "Your redacted prompts, responses and tool names are stored encrypted and {retention}; team owners and admins can read them, and each read is listed under \"Who saw my data\". Numbers are kept for good."
        ),
    }
}

pub async fn page(req: Request, env: Env) -> Page {
    let dev = DeveloperSignedIn::for_page(&req, &env).await?;
    let me = dev.principal.developer_id.clone();
    let team = dev.db.settings().await?;
    let zone = Zone::new(&team.timezone);
    let now = now_ms();
    let range = Range::parse(&query(&req), now, &zone);
    let today = zone.local_day(now);
    let last = |days: i64| {
        let (a, b) = Range::days(today - (days - 1), today, &zone).quarters();
        dev.db.developer_totals_by_model(&me, a, b)
    };
    let (d1, d7, d30) = (
        sum(&last(1).await?),
        sum(&last(7).await?),
        sum(&last(30).await?),
    );
    let (fh, th) = range.quarters();
    let models = dev.db.developer_totals_by_model(&me, fh, th).await?;
    let totals = sum(&models);
    let projects = dev.db.developer_by_project(&me, fh, th).await?;
    let (f, t) = range.ms();
    let sessions = dev.db.developer_sessions_in(&me, f, t).await?;
    let ids: Vec<String> = sessions.iter().map(|s| s.session.clone()).collect();
    let with_content = dev.db.developer_sessions_with_content(&me, &ids).await?;
    let models = models_table(&models, true);
    let projects = Table::of::<GroupTotals, ()>(
        "projects",
        &[
            ("project (keyed hash)", |r, _| r.key.clone()),
            ("label", |r, _| r.label.clone()),
            ("requests", |r, _| r.requests.to_string()),
            ("input", |r, _| r.input_tokens.to_string()),
            ("output", |r, _| r.output_tokens.to_string()),
            ("cache read", |r, _| r.cache_read_tokens.to_string()),
            ("cost", |r, _| usd(r.cost())),
        ],
        &projects,
        &(),
    );
    let card = |label: &str, testid: &str, value: String| {
        html! { div.card { (label) b data-testid=(testid) { (value) } } }
    };
    let mode = team.mode();
    let body = html! {
        h1 { "My usage" }
        p {
            "Your own numbers in " b { (team.name) } ", read-only. Nobody else's usage is shown here."
        }
        div.box data-testid="me-privacy" {
            p {
                "Your team's privacy mode: " (mode_chip(mode)) " "
                b data-testid="me-mode" { (mode.as_str()) }
                ". " (tally_core::privacy::describe(mode))
            }
            p data-testid="me-kept" { (kept(&team)) }
        }
        div.cards {
            (card("Today", "me-spend-today", usd(d1.cost())))
            (card("7 days", "me-spend-7d", usd(d7.cost())))
            (card("30 days", "me-spend-30d", usd(d30.cost())))
            (card("Requests (30 days)", "me-requests-30d", d30.requests.to_string()))
        }
        form method="get" action="/me" class="box" data-testid="range" {
            label { "From " input type="date" name="from" value=(range.first_date()); }
            label { "To " input type="date" name="to" value=(range.last_date()); }
            button { "Apply" }
            " " small { "Days in " (range.tz) "." }
        }
        h2 { "Tokens (selected range)" }
        div.cards {
            (card("Input", "me-tokens-input", totals.input_tokens.to_string()))
            (card("Output", "me-tokens-output", totals.output_tokens.to_string()))
            (card("Cache write", "me-tokens-cache-write", (totals.cache_write_5m_tokens + totals.cache_write_1h_tokens).to_string()))
            (card("Cache read", "me-tokens-cache-read", totals.cache_read_tokens.to_string()))
            (card("Cache hit rate", "me-cache-hit-rate", super::layout::percent(totals.cache_read_tokens, prompt_tokens(&totals))))
            (card("Cost", "me-spend-range", usd(totals.cost())))
        }
        h2 { "By model" }
        (table(&models))
        h2 { "By project" }
        p { "Projects are keyed hashes of the working directory; the labels are your team's." }
        (table(&projects))
        h2 { "My sessions" }
        (sessions_table(&sessions, &with_content, &zone))
    };
    Ok(show_developer(
        "My usage",
        "/me",
        &dev.principal.developer_name,
        body,
        200,
    )?)
}

fn sessions_table(rows: &[SessionRowOut], with_content: &[String], zone: &Zone) -> Markup {
    html! {
        div.scroll {
            table data-testid="table-me-sessions" {
                thead { tr {
                    th { "session (keyed hash)" } th { "agent" } th { "start" } th { "duration" }
                    th { "requests" } th { "cost" } th { "captured as" } th { "content" }
                } }
                tbody {
                    @for r in rows {
                        tr data-testid="session-row" data-session=(r.session) {
                            td { (r.session.chars().take(16).collect::<String>()) }
                            td { (r.agent) }
                            td { (zone.time(r.start_ms)) }
                            td { (duration(r.end_ms - r.start_ms)) }
                            td data-testid="session-requests" { (r.requests) }
                            td data-testid="session-cost" { (usd(r.cost())) }
                            td { (mode_chips(r.modes)) }
                            td {
                                @if with_content.contains(&r.session) {
                                    a href=(format!("/me/sessions/{}", r.session)) data-testid="me-timeline-link" { "timeline" }
                                } @else { "—" }
                            }
                        }
                    }
                    @if rows.is_empty() {
                        tr { td colspan="8" { "No sessions in this range." } }
                    }
                }
            }
        }
    }
}

/// `GET /me/sessions/:id`: the developer's own stored content of a session;
/// 404 for a session with none of theirs. The read is audited with the
/// developer as actor, so it never reads as someone else viewing it.
pub async fn timeline(req: Request, env: Env, session: &str) -> Page {
    let dev = DeveloperSignedIn::for_page(&req, &env).await?;
    if !timeline::valid_session(session) {
        return Err(timeline::not_found());
    }
    let me = &dev.principal.developer_id;
    let objects = dev.db.developer_session_content(me, session).await?;
    let loaded = timeline::load(&env, dev.db.team_id(), &objects).await?;
    if loaded.events.is_empty() {
        return Err(timeline::not_found());
    }
    dev.audit(
        AuditAction::ContentView,
        json!({"session": session, "requests": loaded.events.len(), "developers": [me], "self_view": true}),
    )
    .await?;
    let zone = Zone::new(&dev.db.settings().await?.timezone);
    let body = timeline::render(session, &zone, &loaded.events, false);
    Ok(timeline::no_store(show_developer(
        "My session",
        "/me",
        &dev.principal.developer_name,
        body,
        200,
    )?)?)
}

/// Who did it, as the developer reads it.
fn who(e: &AuditEntry, me: &str) -> String {
    if e.actor == me {
        "you".into()
    } else if e.actor == "system" {
        "Tally (scheduled job)".into()
    } else {
        e.actor.clone()
    }
}

fn short(v: &Value) -> String {
    v.as_str().unwrap_or_default().chars().take(16).collect()
}

/// What happened, in words, from the entry's action and details.
pub fn what(action: &str, details: &Value) -> String {
    let d = details;
    let Some(a) = AuditAction::ALL.iter().find(|a| a.as_str() == action) else {
        return action.to_string();
    };
    match a {
        AuditAction::ContentView => format!(
            "read the stored content of session {} ({} {})",
            short(&d["session"]),
            d["requests"],
            if d["requests"] == 1 {
                "request"
            } else {
                "requests"
            }
        ),
        AuditAction::ContentExport => format!(
            "exported the stored content of session {} as {}",
            short(&d["session"]),
            d["format"].as_str().unwrap_or("a file")
        ),
        AuditAction::PrivacyModeChange => format!(
            "changed the team's privacy mode from {} to {}",
            d["from"].as_str().unwrap_or("?"),
            d["to"].as_str().unwrap_or("?")
        ),
        AuditAction::RetentionChange => match d["days"].as_i64() {
            Some(0) => "set the team's retention to keep content for good".into(),
            Some(n) => format!("set the team's retention to {n} days"),
            None => "changed the team's retention".into(),
        },
        AuditAction::ContentPurgeRequested => match d["choice"].as_str() {
            Some("now") => "left Full mode and erased all stored content now".into(),
            _ => "left Full mode; stored content ages out with the retention".into(),
        },
        AuditAction::AgentRevoke => format!("revoked your agent {}", short(&d["agent_id"])),
        AuditAction::DeveloperRemove if d["erase"] == true => {
            "erased your data (agents revoked, content deleted)".into()
        }
        AuditAction::DeveloperRemove => "removed you from the team (agents revoked)".into(),
        AuditAction::DeveloperErased => format!(
            "finished erasing your content ({} objects)",
            d["objects_deleted"]
        ),
        AuditAction::InstallTokenCreate => "created your install token".into(),
        AuditAction::DeveloperSignIn => "opened this self-view".into(),
        AuditAction::OtlpTokenCreate => "created your OpenTelemetry token".into(),
        AuditAction::SourcePathChange => format!(
            "counted your Claude Code and Codex usage from {}",
            match d["to"].as_str() {
                Some("otlp") => "their OpenTelemetry export",
                _ => "the Tally agent",
            }
        ),
        other => other.as_str().to_string(),
    }
}

pub async fn audit(req: Request, env: Env) -> Page {
    let dev = DeveloperSignedIn::for_page(&req, &env).await?;
    let zone = Zone::new(&dev.db.settings().await?.timezone);
    let me = dev.actor();
    let rows = dev
        .db
        .developer_audit(&dev.principal.developer_id, &me, AUDIT_SHOWN)
        .await?;
    let body = html! {
        h1 { "Who saw my data" }
        p {
            "Every read or export of your stored content, the team's privacy and retention changes, and what was done to your agents and data, newest first. "
            "Taken from the team's append-only audit log (kept two years)."
        }
        div.scroll {
            table data-testid="table-me-audit" {
                thead { tr { th { "time" } th.t { "who" } th.t { "what" } } }
                tbody {
                    @for e in &rows {
                        @let details: Value = serde_json::from_str(&e.details).unwrap_or(Value::Null);
                        tr data-testid="audit-row" data-action=(e.action) {
                            td { (zone.time(e.at)) }
                            td.t data-testid="audit-who" { (who(e, &me)) }
                            td.t data-testid="audit-what" { (what(&e.action, &details)) }
                        }
                    }
                    @if rows.is_empty() {
                        tr { td colspan="3" { "Nothing yet." } }
                    }
                }
            }
        }
    };
    Ok(show_developer(
        "Who saw my data",
        "/me/audit",
        &dev.principal.developer_name,
        body,
        200,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_read_as_sentences() {
        assert_eq!(
            what(
                "content.view",
                &json!({"session": "0123456789abcdef0123", "requests": 3})
            ),
            "read the stored content of session 0123456789abcdef (3 requests)"
        );
        assert_eq!(
            what("content.view", &json!({"session": "ab", "requests": 1})),
            "read the stored content of session ab (1 request)"
        );
        assert_eq!(
            what("privacy_mode.change", &json!({"from": "off", "to": "full"})),
            "changed the team's privacy mode from off to full"
        );
        assert_eq!(
            what("retention.change", &json!({"days": 0})),
            "set the team's retention to keep content for good"
        );
        assert_eq!(
            what("developer.remove", &json!({"erase": true})),
            "erased your data (agents revoked, content deleted)"
        );
        assert_eq!(what("no.such", &json!({})), "no.such");
    }
}
