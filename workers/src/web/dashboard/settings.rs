//! `GET /settings` and its forms: privacy mode, retention, time zone, rate limit.
//! Forms answer with a redirect carrying `?saved=` or `?error=`, so a reload
//! never posts twice.

use maud::html;
use tally_core::event::PrivacyMode;
use tally_core::privacy::describe;
use worker::{Env, Request};

use super::layout::{csrf_field, show};
use super::Page;
use crate::lifecycle::DELETION_GRACE_DAYS;
use crate::util::{query, redirect};
use crate::vocab::Role;
use crate::web::actions::{self, RETENTION_DAYS};
use crate::web::auth::{AdminForm, SignedIn};
use crate::zone::Zone;

fn retention_label(days: i64) -> &'static str {
    match days {
        30 => "30 days",
        90 => "90 days",
        365 => "1 year",
        _ => "Forever",
    }
}

pub async fn page(req: Request, env: Env) -> Page {
    let user = SignedIn::for_page(&req, &env).await?;
    let team = user.db.settings().await?;
    let q = query(&req);
    let read_only = !user.can(Role::Admin);
    let zone = Zone::new(&team.timezone);
    let leaving_full = team.mode() == PrivacyMode::Full;
    let csrf = csrf_field(&user.principal.csrf_token);
    let categorize_limits = user.db.categorize_limits().await?;
    let weekly_email = user.db.weekly_email(&user.principal.member_id).await?;
    let body = html! {
        h1 { "Settings" }
        @if let Some(s) = q.get("saved") {
            p.ok data-testid="saved" { "Saved: " (s) }
        }
        @if let Some(s) = q.get("error") {
            p.error data-testid="settings-error" { (s) }
        }
        @if read_only {
            p { "Viewers can read settings; admins change them." }
        }
        (deletion_banner(&user, &team, &zone))
        h2 { "Privacy mode" }
        p { "Applied on every developer machine; agents pick up a change within minutes and the server discards anything a stricter mode does not allow." }
        form method="post" action="/settings/privacy" data-testid="privacy-form" {
            (csrf)
            @for m in PrivacyMode::ALL {
                div.box {
                    label {
                        input type="radio" name="mode" value=(m.as_str())
                            data-testid=(format!("mode-{}", m.as_str()))
                            checked[m == team.mode()] disabled[read_only];
                        " " b { (crate::web::format::mode_long_name(m)) }
                    }
                    p { (describe(m)) }
                }
            }
            label {
                input type="checkbox" name="confirm_full" value="yes" data-testid="confirm-full" disabled[read_only];
                " I understand that Full stores redacted prompt and response text."
            }
            br;
            @if leaving_full {
                fieldset data-testid="purge-choice" {
                    legend { "If you switch away from Full, the content stored so far:" }
                    label {
                        input type="radio" name="purge" value="age_out" checked data-testid="purge-age-out" disabled[read_only];
                        " ages out with the retention (" (retention_label(team.retention_days)) ")"
                    }
                    br;
                    label {
                        input type="radio" name="purge" value="now" data-testid="purge-now" disabled[read_only];
                        " is erased now"
                    }
                }
            }
            button data-testid="save-privacy" disabled[read_only] { "Save privacy mode" }
        }
        h2 { "Retention" }
        form method="post" action="/settings/retention" class="box" {
            (csrf)
            label {
                "Keep content and categories for "
                select name="days" disabled[read_only] {
                    @for d in RETENTION_DAYS {
                        option value=(d) selected[team.retention_days == d] { (retention_label(d)) }
                    }
                }
            }
            " "
            button disabled[read_only] { "Save retention" }
        }
        h2 { "Time zone" }
        form method="post" action="/settings/timezone" class="box" {
            (csrf)
            label {
                "Time zone (type a city to search) "
                input name="timezone" value=(team.timezone) list="tz-names" autocomplete="off" data-testid="timezone-input" disabled[read_only];
            }
            datalist #tz-names {
                @for n in crate::zone::Zone::names() { option value=(n); }
            }
            " "
            button data-testid="save-timezone" disabled[read_only] { "Save time zone" }
            " "
            small { "Days on every page and in exports follow it." }
        }
        h2 { "Rate limit" }
        form method="post" action="/settings/rate-limit" class="box" {
            (csrf)
            label { "Burst (events) " input type="number" name="capacity" min="1" value=(team.rate_capacity) disabled[read_only]; }
            label { "Events per minute " input type="number" name="per_minute" min="0" value=(team.rate_per_minute) disabled[read_only]; }
            button disabled[read_only] { "Save rate limit" }
        }
        h2 { "Upload interval" }
        form method="post" action="/settings/ship-interval" class="box" {
            (csrf)
            label { "Agents upload every " input type="number" name="seconds" min=(tally_core::wire::MIN_SHIP_INTERVAL_S) max=(tally_core::wire::MAX_SHIP_INTERVAL_S) value=(team.ship_interval_s) data-testid="ship-interval-input" disabled[read_only]; " seconds" }
            " "
            button data-testid="save-ship-interval" disabled[read_only] { "Save upload interval" }
            " "
            small { "Fewer uploads cost less; a full batch, a stopping agent and " code { "tally run --once" } " upload at once." }
        }
        (super::usage::categorize_budget_form(&categorize_limits, &user.principal.csrf_token, read_only))
        (super::integrations::weekly_email_form(weekly_email, &user.principal.csrf_token))
        h2 { "What is kept, and for how long" }
        (kept_statement(&team))
        @if user.can(Role::Owner) && team.delete_after.is_none() {
            h2 { "Deleting the team" }
            form method="post" action="/settings/delete-team" class="box" data-testid="delete-team-form" {
                (csrf)
                p {
                    "Ingest stops at once and only owners can sign in. After "
                    (DELETION_GRACE_DAYS) " days every row and object of the team is erased; until then an owner can cancel and everything is restored."
                }
                label { "Type the team's name, " b { (team.name) } ", to confirm " input name="confirm_name" data-testid="confirm-name" autocomplete="off"; }
                " "
                button data-testid="delete-team" { "Schedule deletion" }
            }
        }
    };
    Ok(show(&user, "Settings", "/settings", body, 200)?)
}

pub async fn save_privacy(req: Request, env: Env) -> Page {
    let form = AdminForm::read(req, &env, Role::Admin).await?;
    let Some(mode) = PrivacyMode::parse(form.raw("mode")) else {
        return Ok(redirect("/settings?error=Choose+a+privacy+mode")?);
    };
    if mode == PrivacyMode::Full && form.raw("confirm_full") != "yes" {
        return Ok(redirect(
            "/settings?error=Switching+to+Full+needs+the+confirmation+box+ticked",
        )?);
    }
    let was_full = form.user.db.settings().await?.mode() == PrivacyMode::Full;
    actions::change_privacy_mode(&form.user, mode).await?;
    if was_full && mode != PrivacyMode::Full {
        let purge_now = form.raw("purge") == "now";
        actions::leave_full(&env, &form.user, purge_now).await?;
    }
    Ok(redirect(&format!(
        "/settings?saved=privacy+mode+{}",
        mode.as_str()
    ))?)
}

pub async fn save_retention(req: Request, env: Env) -> Page {
    let form = AdminForm::read(req, &env, Role::Admin).await?;
    let Some(days) = form
        .raw("days")
        .parse::<i64>()
        .ok()
        .filter(|d| actions::valid_retention(*d))
    else {
        return Ok(redirect(
            "/settings?error=Retention+must+be+30,+90,+365+days+or+forever",
        )?);
    };
    actions::change_retention(&form.user, days).await?;
    Ok(redirect("/settings?saved=retention")?)
}

pub async fn save_timezone(req: Request, env: Env) -> Page {
    let form = AdminForm::read(req, &env, Role::Admin).await?;
    let tz = form.trimmed("timezone");
    if !Zone::valid(tz) {
        return Ok(redirect(
            "/settings?error=Unknown+time+zone:+use+an+IANA+name+such+as+Europe/Paris+or+UTC",
        )?);
    }
    actions::change_timezone(&form.user, tz).await?;
    Ok(redirect("/settings?saved=time+zone")?)
}

pub async fn save_rate_limit(req: Request, env: Env) -> Page {
    let form = AdminForm::read(req, &env, Role::Admin).await?;
    let num = |k: &str| form.raw(k).parse::<i64>().ok();
    match (num("capacity"), num("per_minute")) {
        (Some(cap), Some(pm)) if actions::valid_rate_limit(cap, pm) => {
            actions::change_rate_limit(&form.user, cap, pm).await?;
            Ok(redirect("/settings?saved=rate+limit")?)
        }
        _ => Ok(redirect("/settings?error=Rate+limit+values+out+of+range")?),
    }
}

pub async fn save_ship_interval(req: Request, env: Env) -> Page {
    let form = AdminForm::read(req, &env, Role::Admin).await?;
    match form.trimmed("seconds").parse::<i64>() {
        Ok(s) if actions::valid_ship_interval(s) => {
            actions::change_ship_interval(&form.user, s).await?;
            Ok(redirect("/settings?saved=upload+interval")?)
        }
        _ => Ok(redirect(&format!(
            "/settings?error=The+upload+interval+must+be+{}+to+{}+seconds",
            tally_core::wire::MIN_SHIP_INTERVAL_S,
            tally_core::wire::MAX_SHIP_INTERVAL_S
        ))?),
    }
}

/// The one statement of what Tally keeps and for how long; README's
/// privacy section says the same.
pub fn kept_statement(team: &crate::db::TeamSettings) -> maud::Markup {
    html! {
        ul.box data-testid="kept" {
            li { b { "Aggregates" } " (cost, tokens, requests, sessions): kept forever." }
            li { b { "Full-mode content and categorization output" } ": kept for the team's retention, now "
                (retention_label(team.retention_days)) ", dated by when it was said (not when it arrived)." }
            li { b { "Idempotency markers" } " of received batches: 30 days." }
            li { b { "Audit log" } ": two years." }
            li { b { "A deleted team's data" } ": 30 days, then erased, leaving only an operator tombstone (the team id, the dates and counts, none of its data)." }
        }
    }
}

/// Shown to owners while the team awaits deletion, with the cancel form.
pub fn deletion_banner(
    user: &SignedIn,
    team: &crate::db::TeamSettings,
    zone: &Zone,
) -> maud::Markup {
    let Some(after) = team.delete_after else {
        return html! {};
    };
    html! {
        div.error.box data-testid="deletion-banner" {
            "This team is scheduled for deletion on " b { (zone.time(after)) } " (" (zone.name) ")."
            @if user.can(Role::Owner) {
                " "
                form method="post" action="/settings/cancel-deletion" {
                    (csrf_field(&user.principal.csrf_token))
                    button data-testid="cancel-deletion" { "Cancel the deletion" }
                }
            }
        }
    }
}

pub async fn delete_team(req: Request, env: Env) -> Page {
    let form = AdminForm::read(req, &env, Role::Owner).await?;
    let team = form.user.db.settings().await?;
    if form.trimmed("confirm_name") != team.name {
        return Ok(redirect(
            "/settings?error=Type+the+team%27s+exact+name+to+confirm+its+deletion",
        )?);
    }
    if team.delete_after.is_none() {
        actions::schedule_team_deletion(&form.user).await?;
    }
    Ok(redirect("/settings?saved=deletion+scheduled")?)
}

pub async fn cancel_deletion(req: Request, env: Env) -> Page {
    let form = AdminForm::read(req, &env, Role::Owner).await?;
    actions::cancel_team_deletion(&form.user).await?;
    Ok(redirect("/settings?saved=deletion+cancelled")?)
}
