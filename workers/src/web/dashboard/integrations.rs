//! `GET /integrations` (admin) and its forms: Slack by incoming webhook or
//! bot token, "Send test", removal, the digest schedule, and every delivery
//! attempt with its result. Secrets are pasted once, proven by a real test
//! post, sealed under `KMS_KEY`; only their last four characters show again.
//! Also the member's weekly e-mail toggle and the signed unsubscribe link,
//! and the Cursor integration (`crate::cursor`): its admin API key (checked
//! with a real request, sealed, never shown again), the last pull and its
//! error in plain words, the totals pulled and Cursor users → developers.

use maud::{html, Markup};
use serde_json::json;
use worker::{Env, Request};

use super::layout::{csrf_field, show};
use super::Page;
use crate::bindings;
use crate::cursor;
use crate::db::{
    CursorIntegrationRow, CursorUserRow, DeveloperRow, DigestSettings, IntegrationRow, TeamDb,
    TrustedTeam,
};
use crate::reports::slack::{self, Outcome, Target};
use crate::reports::{self, vault};
use crate::util::{now_ms, query, random_id, redirect, required};
use crate::vocab::{AuditAction, Role};
use crate::web::auth::{secret_eq, AdminForm, SignedIn};
use crate::web::dashboard::layout::respond;
use crate::web::format;
use crate::zone::Zone;

/// Shown on Overview and here while an integration is broken.
pub fn broken_banner(rows: &[IntegrationRow]) -> Markup {
    html! {
        @for r in rows.iter().filter(|r| r.state == "broken") {
            div.error.box data-testid="integration-broken" {
                "Slack integration " (describe(r)) " is broken: "
                b { (r.broken_reason.as_deref().unwrap_or("unknown error")) }
                ". Nothing is posted there until an admin fixes it in Slack and sends a test from "
                a href="/integrations" { "Integrations" } "."
            }
        }
    }
}

fn describe(r: &IntegrationRow) -> String {
    if r.kind == "slack_bot" {
        format!("bot token …{} → {}", r.last4, r.channel)
    } else {
        format!("webhook …{}", r.last4)
    }
}

fn outcome_text(o: &Outcome) -> String {
    match o {
        Outcome::Sent => "sent".into(),
        Outcome::Broken(e) | Outcome::Failed(e) | Outcome::Retry(e) | Outcome::RetryAt(_, e) => {
            e.clone()
        }
    }
}

pub async fn page(req: Request, env: Env) -> Page {
    let user = SignedIn::for_page(&req, &env).await?;
    user.require_page(Role::Admin)?;
    let q = query(&req);
    let team = user.db.settings().await?;
    let zone = Zone::new(&team.timezone);
    let rows = user.db.integrations().await?;
    let s = user.db.digest_settings().await?;
    let history = user.db.deliveries(100).await?;
    let enabled = vault::kms_key(&env).is_some();
    let csrf = csrf_field(&user.principal.csrf_token);
    let cursor_row = user.db.cursor_integration().await?;
    let cursor_users = user.db.cursor_users().await?;
    let developers = user.db.developer_list().await?;
    let body = html! {
        h1 { "Integrations" }
        @if let Some(m) = q.get("saved") { p.ok data-testid="saved" { "Saved: " (m) } }
        @if let Some(m) = q.get("error") { p.error data-testid="integrations-error" { (m) } }
        @if !enabled {
            p.error.box data-testid="integrations-disabled" {
                "Integrations are disabled: the deployment secret KMS_KEY is not set, so no Slack secret can be stored or read. "
                "An operator sets it with " code { "wrangler secret put KMS_KEY" } "."
            }
        }
        (broken_banner(&rows))
        h2 { "Slack" }
        div.scroll tabindex="0" role="region" aria-label="integrations table" {
        table data-testid="table-integrations" {
            thead { tr { th { "Integration" } th { "State" } th { "Added" } th { "Last test" } th { span.sr-only { "Actions" } } } }
            tbody {
                @for r in &rows {
                    tr data-testid="integration" {
                        td data-label="Integration" data-testid="integration-name" { (describe(r)) }
                        td data-label="State" data-testid="integration-state" { (r.state) @if let Some(e) = &r.broken_reason { " (" (e) ")" } }
                        td data-label="Added" { (zone.time(r.created_ms)) " by " (r.created_by) }
                        td data-label="Last test" { @if let Some(t) = r.tested_ms { (zone.time(t)) } @else { "–" } }
                        td {
                            form method="post" action="/integrations/test" {
                                (csrf) input type="hidden" name="id" value=(r.id);
                                button data-testid="send-test" disabled[!enabled] { "Send test" }
                            }
                            form method="post" action="/integrations/remove" data-confirm="Remove this Slack integration? Digests and alerts stop going to it." {
                                (csrf) input type="hidden" name="id" value=(r.id);
                                button data-testid="remove-integration" { "Remove" }
                            }
                        }
                    }
                }
                @if rows.is_empty() { tr { td colspan="5" { "No integration yet." } } }
            }
        }
        }
        h3 { "Add an incoming webhook" }
        form method="post" action="/integrations/slack" class="box" data-testid="add-webhook" {
            (csrf) input type="hidden" name="kind" value="webhook";
            label { "Webhook URL " input type="password" name="url" autocomplete="off" placeholder="https://hooks.slack.com/services/…" data-testid="webhook-url" disabled[!enabled]; }
            " " button data-testid="add-webhook-button" disabled[!enabled] { "Test and save" }
            p { small { "Slack → Apps → Incoming Webhooks → Add to a channel. The URL is checked with a real test post, stored encrypted and never shown again (only its last four characters)." } }
        }
        h3 { "Or a bot token" }
        form method="post" action="/integrations/slack" class="box" data-testid="add-bot" {
            (csrf) input type="hidden" name="kind" value="bot";
            label { "Bot token " input type="password" name="token" autocomplete="off" placeholder="xoxb-…" disabled[!enabled]; }
            label { " Channel id " input name="channel" placeholder="C0123ABCD" disabled[!enabled]; }
            " " button disabled[!enabled] { "Test and save" }
            p { small { "A Slack app with the chat:write scope, invited to the channel. Posts go through chat.postMessage." } }
        }
        (cursor_section(cursor_row.as_ref(), &cursor_users, &developers, &zone, &csrf, enabled))
        h2 { "Digests" }
        form method="post" action="/integrations/schedule" class="box" data-testid="schedule-form" {
            (csrf)
            label { input type="checkbox" name="daily" value="1" checked[s.digest_daily == 1] data-testid="digest-daily"; " Daily (weekdays, covering the day before)" }
            br;
            label { input type="checkbox" name="weekly" value="1" checked[s.digest_weekly == 1] data-testid="digest-weekly"; " Weekly (Mondays, covering the week before; also the e-mail members opt in to on Settings)" }
            br;
            label { "At " select name="hour" data-testid="digest-hour" {
                @for h in 0..24 { option value=(h) selected[s.digest_hour == h] { (format!("{h:02}:00")) } }
            } " in " (zone.name) }
            br;
            label { input type="checkbox" name="ai_summary" value="1" checked[s.digest_ai_summary == 1] data-testid="digest-ai"; " Add an AI summary (Claude, from the aggregate numbers only; its cost counts toward the categorize-cloud daily budget, and past that budget digests go out without it)" }
            br;
            button data-testid="save-schedule" { "Save schedule" }
        }
        h2 { "Deliveries" }
        div.scroll tabindex="0" role="region" aria-label="deliveries table" {
        table data-testid="table-deliveries" {
            thead { tr { th { "Updated" } th { "What" } th { "Period / alert" } th { "Channel" } th { "State" } th { "Attempts" } th { "HTTP" } th { "Slack / provider answer" } th { "Next attempt" } } }
            tbody {
                @for d in &history {
                    tr data-testid="delivery" {
                        td data-label="Updated" { (zone.time(d.updated_ms)) }
                        td data-label="What" { (d.kind) }
                        td data-label="Period / alert" { (d.subject) }
                        td data-label="Channel" { (d.channel) }
                        td data-label="State" data-testid="delivery-state" { (d.state) }
                        td data-label="Attempts" { (d.attempts) }
                        td data-label="HTTP" { @if let Some(h) = d.http_status { (h) } @else { "–" } }
                        td data-label="Answer" data-testid="delivery-error" { (d.error.as_deref().unwrap_or("")) }
                        td data-label="Next attempt" { @if let Some(n) = d.next_attempt_ms { (zone.time(n)) } @else { "–" } }
                    }
                }
                @if history.is_empty() { tr { td colspan="9" { "Nothing sent yet." } } }
            }
        }
        }
    };
    Ok(show(&user, "Integrations", "/integrations", body, 200)?)
}

/// The Cursor box: how usage is pulled and attributed, the integration's
/// state or the form to add it, and the Cursor users.
fn cursor_section(
    row: Option<&CursorIntegrationRow>,
    users: &[CursorUserRow],
    developers: &[DeveloperRow],
    zone: &Zone,
    csrf: &Markup,
    enabled: bool,
) -> Markup {
    let current: Vec<&DeveloperRow> = developers
        .iter()
        .filter(|d| d.erased_at.is_none() && d.removed_at.is_none())
        .collect();
    html! {
        h2 { "Cursor" }
        p {
            "Cursor writes no token counts on disk: a team's usage comes from Cursor's Admin API, pulled every hour with an admin API key of the Cursor team. "
            "Each usage event with token counts is counted as agent " b { "Cursor" } " at the price table's list prices, like every other source; what Cursor charged is kept only for comparison. "
            "Cursor is its own agent, so it never doubles Claude Code or Codex numbers (those come from the Tally agent or OpenTelemetry). "
            "Events without token counts (request-based plans) cannot be priced: they are counted as skipped below, not as $0."
        }
        @if let Some(c) = row {
            div.scroll tabindex="0" role="region" aria-label="Cursor integration" {
            table data-testid="cursor-integration" {
                tbody {
                    tr { th { "Admin API key" } td data-testid="cursor-key" { "…" (c.last4) } }
                    tr { th { "Added" } td { (zone.time(c.created_ms)) " by " (c.created_by) } }
                    tr { th { "Last pull" } td data-testid="cursor-last-pull" { @if let Some(t) = c.last_pull_ms { (zone.time(t)) } @else { "not yet (hourly)" } } }
                    tr { th { "Last successful pull" } td { @if let Some(t) = c.last_ok_ms { (zone.time(t)) } @else { "–" } } }
                    tr { th { "Read through" } td data-testid="cursor-watermark" { (zone.time(c.watermark_ms)) } }
                    tr { th { "Last error" } td data-testid="cursor-error" {
                        @if let Some(e) = &c.last_error { span.error { (e) } } @else { "none" }
                    } }
                    tr { th { "Counted" } td data-testid="cursor-events" {
                        (format::count(c.events)) " requests"
                        @if c.unpriced_events > 0 { " (" (format::count(c.unpriced_events)) " of a model the price table does not know: unpriced)" }
                    } }
                    tr { th { "Skipped" } td data-testid="cursor-skipped" {
                        (format::count(c.skipped_events)) " events without token counts (request-based plans or non-token calls)"
                    } }
                    tr { th { "Cost" } td data-testid="cursor-cost" {
                        "Cursor charged " (format::money(c.charged())) " / list price " (format::money(c.list()))
                        @if let (Some(a), Some(b)) = (c.first_event_ms, c.last_event_ms) { " for the requests counted from " (zone.time(a)) " to " (zone.time(b)) }
                    } }
                }
            }
            }
            form method="post" action="/integrations/cursor/remove" data-confirm="Remove the Cursor integration? Hourly pulls stop and the key is deleted; usage already counted stays." {
                (csrf) button data-testid="remove-cursor" { "Remove" }
            }
        }
        form method="post" action="/integrations/cursor" class="box" data-testid="add-cursor" {
            (csrf)
            label { (if row.is_some() { "Replace the admin API key " } else { "Admin API key " }) input type="password" name="key" autocomplete="off" placeholder="key_…" data-testid="cursor-key-input" disabled[!enabled]; }
            " " button data-testid="add-cursor-button" disabled[!enabled] { "Check and save" }
            p { small { "Cursor → team settings → Advanced → Admin API keys. The key is checked with a real request to Cursor, stored encrypted and never shown again (only its last four characters). The first pull reads the last 7 days." } }
        }
        h3 { "Cursor users" }
        p { small {
            "Usage is attributed by the e-mail address on each Cursor event: to the developer that address was linked to, else to a current developer whose name is exactly that address, else to a new developer named by the masked address. "
            "Addresses are stored only as keyed hashes and shown masked. Linking or renaming changes where future pulls count; usage already counted stays with its developer."
        } }
        div.scroll tabindex="0" role="region" aria-label="Cursor users" {
        table data-testid="table-cursor-users" {
            thead { tr { th { "Cursor user" } th { "Counts for" } th { "Since" } th { span.sr-only { "Actions" } } } }
            tbody {
                @for u in users {
                    tr data-testid="cursor-user" {
                        td data-label="Cursor user" data-testid="cursor-user-masked" { (u.masked) }
                        td data-label="Counts for" data-testid="cursor-user-developer" { (u.developer_name) }
                        td data-label="Since" { (zone.time(u.created_ms)) }
                        td {
                            form method="post" action="/integrations/cursor/user" {
                                (csrf) input type="hidden" name="email_hash" value=(u.email_hash);
                                label { span.sr-only { "Link to" } select name="developer_id" {
                                    @for d in &current { option value=(d.id) selected[d.id == u.developer_id] { (d.name) } }
                                } }
                                " " button data-testid="cursor-link" { "Link" }
                            }
                            form method="post" action="/integrations/cursor/user" {
                                (csrf) input type="hidden" name="email_hash" value=(u.email_hash);
                                input type="hidden" name="developer_id" value=(u.developer_id);
                                label { span.sr-only { "New name" } input name="name" placeholder="Rename the developer" maxlength="200"; }
                                " " button data-testid="cursor-rename" { "Rename" }
                            }
                        }
                    }
                }
                @if users.is_empty() { tr { td colspan="4" { "No Cursor user yet." } } }
            }
        }
        }
    }
}

/// Admin API keys are opaque; this only keeps out what cannot be one.
fn valid_cursor_key(k: &str) -> bool {
    (8..=256).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic())
}

pub async fn add_cursor(req: Request, env: Env) -> Page {
    let form = AdminForm::read(req, &env, Role::Admin).await?;
    let Some(kms) = vault::kms_key(&env) else {
        return back("error", "Integrations are disabled: KMS_KEY is not set.");
    };
    let key = form.trimmed("key").to_string();
    if !valid_cursor_key(&key) {
        return back(
            "error",
            "That is not a Cursor admin API key (8–256 printable characters, no spaces).",
        );
    }
    let user = &form.user;
    let now = now_ms();
    // A real request (the last hour, one event) proves the key before it is kept.
    if let Err(f) = cursor::fetch_page(&env, &key, now - tally_core::time::HOUR_MS, now, 1, 1).await
    {
        user.audit(AuditAction::IntegrationTest, json!({"kind": "cursor", "result": f.message(), "http_status": f.status(), "saved": false})).await?;
        return back("error", &format!("{} Nothing was saved.", f.message()));
    }
    let team = user.db.settings().await?;
    let id = random_id()?;
    let last4 = slack::last4(&key);
    user.db
        .set_cursor_integration(
            &id,
            &vault::seal_secret(&kms, &team.id, &id, &key)?,
            &last4,
            &user.principal.email,
            now,
            now - cursor::INITIAL_LOOKBACK_MS,
        )
        .await?;
    user.audit(
        AuditAction::IntegrationInstall,
        json!({"integration_id": id, "kind": "cursor", "last4": last4}),
    )
    .await?;
    back(
        "saved",
        "Cursor key checked and saved; usage is pulled every hour",
    )
}

pub async fn remove_cursor(req: Request, env: Env) -> Page {
    let form = AdminForm::read(req, &env, Role::Admin).await?;
    if form.user.db.remove_cursor_integration().await? {
        form.user
            .audit(AuditAction::IntegrationRemove, json!({"kind": "cursor"}))
            .await?;
    }
    back("saved", "Cursor integration removed")
}

pub async fn link_cursor_user(req: Request, env: Env) -> Page {
    let form = AdminForm::read(req, &env, Role::Admin).await?;
    let hash = form.trimmed("email_hash");
    let developer = form.trimmed("developer_id");
    let name = form.trimmed("name");
    let db = &form.user.db;
    if !name.is_empty() {
        if !crate::web::actions::valid_developer_name(name) {
            return back("error", "A developer name is 1–200 bytes.");
        }
        if !db.rename_cursor_developer(developer, name).await? {
            return back("error", "No such Cursor developer.");
        }
        form.user
            .audit(
                AuditAction::CursorUserLink,
                json!({"developer_id": developer, "name": name}),
            )
            .await?;
        return back("saved", "developer renamed");
    }
    if !db.link_cursor_user(hash, developer).await? {
        return back("error", "No such Cursor user or developer.");
    }
    form.user
        .audit(
            AuditAction::CursorUserLink,
            json!({"email_hash": hash, "developer_id": developer}),
        )
        .await?;
    back(
        "saved",
        "Cursor user linked; future pulls count for that developer",
    )
}

fn back(saved_or_error: &str, msg: &str) -> Page {
    let m: String = url::form_urlencoded::byte_serialize(msg.as_bytes()).collect();
    Ok(redirect(&format!("/integrations?{saved_or_error}={m}"))?)
}

pub async fn add_slack(req: Request, env: Env) -> Page {
    let form = AdminForm::read(req, &env, Role::Admin).await?;
    let Some(kms) = vault::kms_key(&env) else {
        return back("error", "Integrations are disabled: KMS_KEY is not set.");
    };
    let (kind, secret, target) = match form.raw("kind") {
        "webhook" => {
            let url = form.trimmed("url").to_string();
            if !slack::valid_webhook(&url, slack::loopback_allowed(&env)) {
                return back("error", "That is not a Slack incoming-webhook URL (https://hooks.slack.com/services/…).");
            }
            ("slack_webhook", url.clone(), Target::Webhook { url })
        }
        "bot" => {
            let token = form.trimmed("token").to_string();
            let channel = form.trimmed("channel").to_string();
            if !slack::valid_bot_token(&token) || !slack::valid_channel(&channel) {
                return back(
                    "error",
                    "A bot token starts with xoxb- and a channel id looks like C0123ABCD.",
                );
            }
            ("slack_bot", token.clone(), Target::Bot { token, channel })
        }
        _ => return back("error", "Choose a webhook or a bot token."),
    };
    let user = &form.user;
    let team = user.db.settings().await?;
    let now = now_ms();
    let (outcome, status) =
        slack::post(&env, &target, &reports::test_message(&team.name), now).await;
    if outcome != Outcome::Sent {
        user.audit(AuditAction::IntegrationTest, json!({"kind": kind, "result": outcome_text(&outcome), "http_status": status, "saved": false})).await?;
        return back(
            "error",
            &format!(
                "Slack refused the test post ({}); nothing was saved.",
                outcome_text(&outcome)
            ),
        );
    }
    let id = random_id()?;
    let channel = match &target {
        Target::Bot { channel, .. } => channel.clone(),
        Target::Webhook { .. } => String::new(),
    };
    let row = IntegrationRow {
        id: id.clone(),
        kind: kind.into(),
        channel: channel.clone(),
        secret_sealed: vault::seal_secret(&kms, &team.id, &id, &secret)?,
        last4: slack::last4(&secret),
        state: "ok".into(),
        broken_reason: None,
        created_by: user.principal.email.clone(),
        created_ms: now,
        tested_ms: Some(now),
    };
    user.db.add_integration(&row).await?;
    record_test(&user.db, &id, &outcome, status, now).await?;
    user.audit(
        AuditAction::IntegrationInstall,
        json!({"integration_id": id, "kind": kind, "channel": channel, "last4": row.last4}),
    )
    .await?;
    back("saved", "Slack integration tested and saved")
}

async fn record_test(
    db: &TeamDb,
    id: &str,
    outcome: &Outcome,
    status: Option<u16>,
    now: i64,
) -> worker::Result<()> {
    let key = format!("test:{now}:{id}");
    db.claim_delivery(&key, "test", &now.to_string(), id, now)
        .await?;
    let state = if *outcome == Outcome::Sent {
        "sent"
    } else {
        "failed"
    };
    let err = (*outcome != Outcome::Sent).then(|| outcome_text(outcome));
    db.finish_delivery(&key, state, status, err.as_deref(), None, now)
        .await
}

pub async fn test(req: Request, env: Env) -> Page {
    let form = AdminForm::read(req, &env, Role::Admin).await?;
    let Some(kms) = vault::kms_key(&env) else {
        return back("error", "Integrations are disabled: KMS_KEY is not set.");
    };
    let user = &form.user;
    let Some(row) = user.db.integration(form.trimmed("id")).await? else {
        return back("error", "No such integration.");
    };
    let team = user.db.settings().await?;
    let target = reports::target(&kms, &team.id, &row).map_err(|e| {
        worker::Error::RustError(format!("integration {} does not open: {e}", row.id))
    })?;
    let now = now_ms();
    let (outcome, status) =
        slack::post(&env, &target, &reports::test_message(&team.name), now).await;
    record_test(&user.db, &row.id, &outcome, status, now).await?;
    user.audit(
        AuditAction::IntegrationTest,
        json!({"integration_id": row.id, "result": outcome_text(&outcome), "http_status": status}),
    )
    .await?;
    match outcome {
        Outcome::Sent => {
            user.db.mark_integration_ok(&row.id, now).await?;
            back("saved", "test message sent")
        }
        Outcome::Broken(e) => {
            user.db.mark_integration_broken(&row.id, &e).await?;
            back(
                "error",
                &format!("Slack refused the test post ({e}); the integration stays broken."),
            )
        }
        o => back(
            "error",
            &format!("The test post did not go through ({}).", outcome_text(&o)),
        ),
    }
}

pub async fn remove(req: Request, env: Env) -> Page {
    let form = AdminForm::read(req, &env, Role::Admin).await?;
    let id = form.trimmed("id");
    if form.user.db.remove_integration(id).await? {
        form.user
            .audit(
                AuditAction::IntegrationRemove,
                json!({"integration_id": id}),
            )
            .await?;
    }
    back("saved", "integration removed")
}

pub async fn schedule(req: Request, env: Env) -> Page {
    let form = AdminForm::read(req, &env, Role::Admin).await?;
    let Some(hour) = form
        .raw("hour")
        .parse::<i64>()
        .ok()
        .filter(|h| (0..24).contains(h))
    else {
        return back("error", "The hour must be 0–23.");
    };
    let on = |k: &str| i64::from(form.raw(k) == "1");
    let s = DigestSettings {
        digest_daily: on("daily"),
        digest_weekly: on("weekly"),
        digest_hour: hour,
        digest_ai_summary: on("ai_summary"),
    };
    form.user.db.set_digest_settings(&s).await?;
    form.user
        .audit(AuditAction::DigestScheduleChange, json!({"daily": s.digest_daily == 1, "weekly": s.digest_weekly == 1, "hour": hour, "ai_summary": s.digest_ai_summary == 1}))
        .await?;
    back("saved", "digest schedule")
}

/// The Settings page's box: any member opts in or out of the weekly e-mail.
pub fn weekly_email_form(on: bool, csrf: &str) -> Markup {
    html! {
        h2 { "Weekly e-mail digest" }
        form method="post" action="/settings/weekly-email" class="box" data-testid="weekly-email-form" {
            (csrf_field(csrf))
            input type="hidden" name="on" value=(if on { "0" } else { "1" });
            @if on { "You receive the weekly digest by e-mail (Mondays, while the team's weekly digest is on). " button data-testid="weekly-email-toggle" { "Stop the weekly e-mail" } }
            @else { "You do not receive the weekly digest by e-mail. " button data-testid="weekly-email-toggle" { "E-mail me the weekly digest" } }
        }
    }
}

pub async fn save_weekly_email(req: Request, env: Env) -> Page {
    let form = AdminForm::read(req, &env, Role::Viewer).await?;
    let on = form.raw("on") == "1";
    form.user
        .db
        .set_weekly_email(&form.user.principal.member_id, on)
        .await?;
    form.user
        .audit(AuditAction::DigestEmailChange, json!({"weekly_email": on}))
        .await?;
    Ok(redirect(if on {
        "/settings?saved=weekly+e-mail+on"
    } else {
        "/settings?saved=weekly+e-mail+off"
    })?)
}

/// The team and member of a correctly signed unsubscribe link.
fn signed(
    env: &Env,
    q: &std::collections::HashMap<String, String>,
) -> worker::Result<Option<(String, String)>> {
    let pepper = required(env, bindings::PEPPER)?;
    let get = |k: &str| q.get(k).cloned().unwrap_or_default();
    let (team, member, sig) = (get("team"), get("member"), get("sig"));
    let ok = !team.is_empty()
        && !member.is_empty()
        && secret_eq(&sig, &reports::unsubscribe_sig(&pepper, &team, &member));
    Ok(ok.then_some((team, member)))
}

fn unsubscribe_page(body: Markup, status: u16) -> Page {
    Ok(respond(
        super::layout::page("Unsubscribe", None, body),
        status,
    )?)
}

/// GET shows a confirmation only: mail scanners prefetch links.
pub async fn unsubscribe_confirm(req: Request, env: Env) -> Page {
    let q = query(&req);
    if signed(&env, &q)?.is_none() {
        return unsubscribe_page(
            html! { h1 { "Unsubscribe" } p.error { "This unsubscribe link is not valid." } },
            400,
        );
    }
    let action = format!("/unsubscribe?{}", req.url()?.query().unwrap_or(""));
    unsubscribe_page(
        html! {
            h1 { "Unsubscribe" }
            p { "Stop receiving Tally's weekly digest by e-mail?" }
            form method="post" action=(action) { button data-testid="unsubscribe" { "Unsubscribe" } }
        },
        200,
    )
}

/// POST unsubscribes: from the page's button or a mail client's one-click
/// (RFC 8058 `List-Unsubscribe=One-Click`); the signature is the credential.
pub async fn unsubscribe(req: Request, env: Env) -> Page {
    let q = query(&req);
    let Some((team, member)) = signed(&env, &q)? else {
        return unsubscribe_page(
            html! { h1 { "Unsubscribe" } p.error { "This unsubscribe link is not valid." } },
            400,
        );
    };
    let shards = crate::db::shards(&env)?;
    let Some(trusted) =
        TrustedTeam::from_signed_link(&shards, team, q.get("shard").map(String::as_str))
    else {
        return unsubscribe_page(
            html! { h1 { "Unsubscribe" } p.error { "This unsubscribe link is not valid." } },
            400,
        );
    };
    let db = TeamDb::new(&env, &trusted)?;
    if db.set_weekly_email(&member, false).await? {
        db.audit(
            &format!("member:{member}"),
            AuditAction::DigestEmailChange,
            None,
            &json!({"weekly_email": false, "via": "unsubscribe link"}),
            now_ms(),
        )
        .await?;
    }
    unsubscribe_page(
        html! { h1 { "Unsubscribed" } p data-testid="unsubscribed" { "You will not receive the weekly digest by e-mail any more. Members can opt in again on the Settings page." } },
        200,
    )
}
