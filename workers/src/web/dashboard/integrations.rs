//! `GET /integrations` (admin) and its forms: Slack by incoming webhook or
//! bot token, "Send test", removal, the digest schedule, and every delivery
//! attempt with its result. Secrets are pasted once, proven by a real test
//! post, sealed under `KMS_KEY`; only their last four characters show again.
//! Also the member's weekly e-mail toggle and the signed unsubscribe link.

use maud::{html, Markup};
use serde_json::json;
use worker::{Env, Request};

use super::layout::{csrf_field, show};
use super::Page;
use crate::bindings;
use crate::db::{DigestSettings, IntegrationRow, TeamDb, TrustedTeam};
use crate::reports::slack::{self, Outcome, Target};
use crate::reports::{self, vault};
use crate::util::{now_ms, query, random_id, redirect, required};
use crate::vocab::{AuditAction, Role};
use crate::web::auth::{secret_eq, AdminForm, SignedIn};
use crate::web::dashboard::layout::respond;
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
