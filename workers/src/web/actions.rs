//! Admin commands shared by the JSON API and the dashboard forms, so each
//! rule and its audit entry exist once. Callers check the guard (role,
//! CSRF) and phrase refusals for their medium; these only act.

use serde_json::json;
use tally_core::event::PrivacyMode;
use tally_core::hash::{format_token, token_hash};
use tally_core::time::DAY_MS;
use worker::{Env, Result};

use super::auth::SignedIn;
use super::signin;
use crate::bindings;
use crate::db::TeamDb;
use crate::util::{now_ms, random32, random_id, required};
use crate::vocab::{AuditAction, Role};
use crate::zone::Zone;

const INSTALL_TOKEN_TTL_MS: i64 = 7 * DAY_MS;
/// Retention choices offered by the settings page; 0 keeps data forever.
pub const RETENTION_DAYS: [i64; 4] = [30, 90, 365, 0];

pub async fn change_privacy_mode(user: &SignedIn, mode: PrivacyMode) -> Result<()> {
    let before = user.db.settings().await?.mode();
    user.db.set_privacy_mode(mode).await?;
    user.audit(
        AuditAction::PrivacyModeChange,
        json!({"from": before, "to": mode}),
    )
    .await
}

pub fn valid_rate_limit(capacity: i64, per_minute: i64) -> bool {
    (1..=10_000_000).contains(&capacity) && (0..=10_000_000).contains(&per_minute)
}

/// Callers check `valid_rate_limit` first.
pub async fn change_rate_limit(user: &SignedIn, capacity: i64, per_minute: i64) -> Result<()> {
    user.db.set_rate_limit(capacity, per_minute).await?;
    user.audit(
        AuditAction::RateLimitChange,
        json!({"capacity": capacity, "per_minute": per_minute}),
    )
    .await
}

pub fn valid_ship_interval(seconds: i64) -> bool {
    (tally_core::wire::MIN_SHIP_INTERVAL_S..=tally_core::wire::MAX_SHIP_INTERVAL_S)
        .contains(&seconds)
}

/// Callers check `valid_ship_interval` first.
pub async fn change_ship_interval(user: &SignedIn, seconds: i64) -> Result<()> {
    let before = user.db.settings().await?.ship_interval_s;
    user.db.set_ship_interval(seconds).await?;
    user.audit(
        AuditAction::ShipIntervalChange,
        json!({"from": before, "to": seconds}),
    )
    .await
}

pub fn valid_retention(days: i64) -> bool {
    RETENTION_DAYS.contains(&days)
}

/// Callers check `valid_retention` first.
pub async fn change_retention(user: &SignedIn, days: i64) -> Result<()> {
    user.db.set_retention(days).await?;
    user.audit(AuditAction::RetentionChange, json!({"days": days}))
        .await
}

/// Callers check `Zone::valid` first.
pub async fn change_timezone(user: &SignedIn, tz: &str) -> Result<()> {
    debug_assert!(Zone::valid(tz));
    user.db.set_timezone(tz).await?;
    user.audit(AuditAction::TimezoneChange, json!({"timezone": tz}))
        .await
}

pub fn valid_project_label(project: &str, label: &str) -> bool {
    tally_core::hash::is_hex(project, 64) && !label.is_empty() && label.chars().count() <= 80
}

/// Callers check `valid_project_label` first.
pub async fn label_project(user: &SignedIn, project: &str, label: &str) -> Result<()> {
    user.db.set_project_label(project, label).await?;
    user.audit(
        AuditAction::ProjectLabel,
        json!({"project": project, "label": label}),
    )
    .await
}

/// A branch is named within its project; '' is "no branch", which has no
/// hash to name.
pub fn valid_branch_label(project: &str, branch: &str, label: &str) -> bool {
    tally_core::hash::is_hex(branch, 64) && valid_project_label(project, label)
}

/// Callers check `valid_branch_label` first.
pub async fn label_branch(user: &SignedIn, project: &str, branch: &str, label: &str) -> Result<()> {
    user.db.set_branch_label(project, branch, label).await?;
    user.audit(
        AuditAction::BranchLabel,
        json!({"project": project, "branch": branch, "label": label}),
    )
    .await
}

/// False when the team has no such active agent; nothing is audited then.
pub async fn revoke_agent(user: &SignedIn, agent_id: &str) -> Result<bool> {
    if !user.db.revoke_agent(agent_id, now_ms()).await? {
        return Ok(false);
    }
    user.audit(AuditAction::AgentRevoke, json!({"agent_id": agent_id}))
        .await?;
    Ok(true)
}

/// Ends an unused install token; a used, expired or unknown one changes nothing.
pub async fn revoke_install_token(
    user: &SignedIn,
    token_hash: &str,
    developer: &str,
) -> Result<bool> {
    if !user.db.revoke_install_token(token_hash, now_ms()).await? {
        return Ok(false);
    }
    user.audit(
        AuditAction::InstallTokenRevoke,
        json!({"developer": developer, "token": token_hash.chars().take(12).collect::<String>()}),
    )
    .await?;
    Ok(true)
}

pub fn valid_developer_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 200
}

pub struct IssuedToken {
    pub developer_id: String,
    pub token: String,
    pub expires_at: i64,
}

/// Stores a one-time install token for `developer_id` and returns it. Only
/// its keyed hash is kept, so whoever asked shows it once.
pub async fn store_install_token(
    env: &Env,
    db: &TeamDb,
    developer_id: &str,
    created_by: &str,
    now: i64,
) -> Result<IssuedToken> {
    let pepper = required(env, bindings::PEPPER)?;
    let token = db.credential(&format_token("tly_inst_", &random32()?));
    let expires_at = now + INSTALL_TOKEN_TTL_MS;
    db.add_install_token(
        &token_hash(&pepper, &token),
        developer_id,
        Some(created_by),
        now,
        expires_at,
    )
    .await?;
    Ok(IssuedToken {
        developer_id: developer_id.to_string(),
        token,
        expires_at,
    })
}

/// A new developer and their install token. Callers check `valid_developer_name` first.
pub async fn issue_install_token(env: &Env, user: &SignedIn, name: &str) -> Result<IssuedToken> {
    let now = now_ms();
    let developer_id = random_id()?;
    user.db.add_developer(&developer_id, name, now).await?;
    let issued =
        store_install_token(env, &user.db, &developer_id, &user.principal.member_id, now).await?;
    user.audit(
        AuditAction::InstallTokenCreate,
        json!({"developer_id": developer_id, "developer_name": name}),
    )
    .await?;
    Ok(issued)
}

/// A new OTLP token for a developer: returned once, stored as its hash.
pub async fn issue_otlp_token(env: &Env, user: &SignedIn, developer_id: &str) -> Result<String> {
    let pepper = required(env, bindings::PEPPER)?;
    // Tagged with the team's shard like every credential: ingest finds the
    // shard from the token itself.
    let token = user.db.credential(&format_token("tly_otlp_", &random32()?));
    let id = random_id()?;
    user.db
        .add_otlp_token(&id, developer_id, &token_hash(&pepper, &token), now_ms())
        .await?;
    user.audit(
        AuditAction::OtlpTokenCreate,
        json!({"developer_id": developer_id, "token_id": id}),
    )
    .await?;
    Ok(token)
}

pub enum Invited {
    Sent,
    /// Added as a member, but the e-mail with their link was not accepted.
    NotDelivered,
    AlreadyMember,
}

/// Adds the member and mails them a sign-in link. Callers check the address.
pub async fn invite_member(
    env: &Env,
    user: &SignedIn,
    origin: &str,
    email: &str,
    role: Role,
) -> Result<Invited> {
    if user.db.member_by_email(email).await?.is_some() {
        return Ok(Invited::AlreadyMember);
    }
    let member_id = random_id()?;
    user.db
        .add_member(&member_id, email, role, now_ms())
        .await?;
    // The member exists either way; a delivery failure is recorded and
    // shown, and they can still ask for a link on the sign-in page.
    let delivered = match signin::send_link(env, &user.db, origin, &member_id, email, true).await {
        Ok(()) => true,
        Err(e) => {
            worker::console_error!("invitation e-mail failed: {e}");
            false
        }
    };
    if !delivered {
        user.db
            .set_invite_failed(&member_id, Some(now_ms()))
            .await?;
    }
    user.audit(
        AuditAction::MemberInvite,
        json!({"email": email, "role": role.as_str(), "delivered": delivered}),
    )
    .await?;
    Ok(if delivered {
        Invited::Sent
    } else {
        Invited::NotDelivered
    })
}

/// A pending invitation of this team, by member id.
async fn pending_member(user: &SignedIn, member_id: &str) -> Result<Option<crate::db::MemberRow>> {
    Ok(user
        .db
        .members()
        .await?
        .into_iter()
        .find(|m| m.id == member_id && m.accepted_at.is_none()))
}

/// Sends a pending member a fresh invitation; `None` when there is no such
/// pending invitation, else whether the e-mail got through (audited either way).
pub async fn resend_invitation(
    env: &Env,
    user: &SignedIn,
    origin: &str,
    member_id: &str,
) -> Result<Option<bool>> {
    let Some(m) = pending_member(user, member_id).await? else {
        return Ok(None);
    };
    let delivered = match signin::send_link(env, &user.db, origin, &m.id, &m.email, true).await {
        Ok(()) => true,
        Err(e) => {
            worker::console_error!("invitation e-mail failed: {e}");
            false
        }
    };
    user.db
        .set_invite_failed(&m.id, (!delivered).then(now_ms))
        .await?;
    user.audit(
        AuditAction::MemberInviteResend,
        json!({"email": m.email, "delivered": delivered}),
    )
    .await?;
    Ok(Some(delivered))
}

/// Withdraws a pending invitation (the member row goes; an accepted member
/// is removed with `remove_member` instead). False when none was pending.
pub async fn revoke_invitation(user: &SignedIn, member_id: &str) -> Result<bool> {
    let Some(m) = pending_member(user, member_id).await? else {
        return Ok(false);
    };
    user.db.drop_signin_links(&m.id).await?;
    user.db.remove_member(&m.id).await?;
    user.audit(
        AuditAction::MemberInviteRevoke,
        json!({"email": m.email, "member_id": m.id}),
    )
    .await?;
    Ok(true)
}

/// Nobody changes their own role, so a team cannot lose its last owner by accident.
pub fn may_change_member(user: &SignedIn, member_id: &str) -> bool {
    member_id != user.principal.member_id
}

/// Audited only when the member exists in this team. Callers check `may_change_member`.
pub async fn change_role(user: &SignedIn, member_id: &str, role: Role) -> Result<()> {
    if user.db.set_member_role(member_id, role).await? {
        user.audit(
            AuditAction::MemberRoleChange,
            json!({"member_id": member_id, "role": role.as_str()}),
        )
        .await?;
    }
    Ok(())
}

/// Audited only when the member existed in this team. Callers check `may_change_member`.
pub async fn remove_member(user: &SignedIn, member_id: &str) -> Result<()> {
    if user.db.remove_member(member_id).await? {
        user.audit(AuditAction::MemberRemove, json!({"member_id": member_id}))
            .await?;
    }
    Ok(())
}

/// After leaving Full: erase the stored content now (a `content_purge` job,
/// run once inline so a small team sees it gone; the hourly cron finishes a
/// big one) or let it age out with the retention. Audited either way.
pub async fn leave_full(env: &Env, user: &SignedIn, purge_now: bool) -> Result<()> {
    let now = now_ms();
    let choice = if purge_now { "now" } else { "age_out" };
    user.audit(
        AuditAction::ContentPurgeRequested,
        json!({"choice": choice}),
    )
    .await?;
    if purge_now {
        // Keyed by the instant, so a second purge on the same day is a new job.
        user.db
            .start_job(crate::lifecycle::CONTENT_PURGE, "", now, 0, now)
            .await?;
        crate::lifecycle::work_team(env, &user.db, now).await?;
    }
    Ok(())
}

pub async fn schedule_team_deletion(user: &SignedIn) -> Result<()> {
    let now = now_ms();
    let after = now + crate::lifecycle::DELETION_GRACE_DAYS * DAY_MS;
    user.db
        .schedule_deletion(&user.principal.email, now, after)
        .await?;
    user.audit(
        AuditAction::TeamDeletionScheduled,
        json!({"delete_after": after}),
    )
    .await
}

/// Audited only when a deletion was pending.
pub async fn cancel_team_deletion(user: &SignedIn) -> Result<()> {
    if user.db.cancel_deletion().await? {
        user.audit(AuditAction::TeamDeletionCancelled, json!({}))
            .await?;
    }
    Ok(())
}

/// Revokes the developer's agents; their numbers and content stay.
pub async fn remove_developer(user: &SignedIn, developer_id: &str) -> Result<bool> {
    if !user.db.remove_developer(developer_id, now_ms()).await? {
        return Ok(false);
    }
    user.audit(
        AuditAction::DeveloperRemove,
        json!({"developer_id": developer_id, "erase": false}),
    )
    .await?;
    Ok(true)
}

/// Moves the developer's numbers to a new "Former developer N" (team totals
/// stay right), drops their category rows and erases their content through
/// a `developer_erase` job run once inline. Returns the anonymous name.
pub async fn erase_developer(env: &Env, user: &SignedIn, developer_id: &str) -> Result<String> {
    let now = now_ms();
    let former = user
        .db
        .developer_list()
        .await?
        .iter()
        .filter(|d| d.erased_at.is_some() && d.id != developer_id)
        .map(|d| d.name.clone())
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let name = format!("Former developer {}", former + 1);
    let anon = random_id()?;
    user.db
        .erase_developer(developer_id, &anon, &name, now)
        .await?;
    user.db
        .start_job(crate::lifecycle::DEVELOPER_ERASE, developer_id, now, 0, now)
        .await?;
    user.audit(
        AuditAction::DeveloperRemove,
        json!({"developer_id": developer_id, "erase": true, "now_named": name}),
    )
    .await?;
    crate::lifecycle::work_team(env, &user.db, now).await?;
    Ok(name)
}

/// The largest daily categorize-cloud budget accepted, in whole micro-USD ($1M).
pub const MAX_CATEGORIZE_BUDGET_MICRO: i64 = 1_000_000_000_000;

/// A dollar amount as typed ("5", "5.00", "0.125"; at most 6 decimals)
/// in whole micro-USD, exactly; None when it is not one or out of range.
pub fn parse_dollars_micro(s: &str) -> Option<i64> {
    let s = s.trim().trim_start_matches('$');
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    let digits = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() && frac.is_empty() || !digits(whole) || !digits(frac) || frac.len() > 6 {
        return None;
    }
    if whole.len() > 7 {
        return None;
    }
    let w: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let f: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<6}").parse().ok()?
    };
    let micro = w.checked_mul(1_000_000)?.checked_add(f)?;
    (micro <= MAX_CATEGORIZE_BUDGET_MICRO).then_some(micro)
}

pub fn valid_categorize_per_minute(per_minute: i64) -> bool {
    (0..=10_000).contains(&per_minute)
}

/// Callers parse the budget with `parse_dollars_micro` and check the rate.
pub async fn change_categorize_limits(
    user: &SignedIn,
    budget_micro_usd: i64,
    per_minute: i64,
) -> Result<()> {
    user.db
        .set_categorize_limits(budget_micro_usd, per_minute)
        .await?;
    user.audit(
        AuditAction::CategorizeBudgetChange,
        json!({
            "daily_budget_usd": tally_core::money::Usd::from_parts(budget_micro_usd, 0).decimal(2),
            "per_minute": per_minute
        }),
    )
    .await
}

#[cfg(test)]
mod websec_tests {
    use super::*;

    #[test]
    fn dollar_amounts_parse_exactly_to_micro_usd() {
        assert_eq!(parse_dollars_micro("5"), Some(5_000_000));
        assert_eq!(parse_dollars_micro("$5.00"), Some(5_000_000));
        assert_eq!(parse_dollars_micro("0.125"), Some(125_000));
        assert_eq!(parse_dollars_micro(".5"), Some(500_000));
        assert_eq!(parse_dollars_micro("0.000001"), Some(1));
        assert_eq!(parse_dollars_micro("0"), Some(0));
        for bad in [
            "",
            ".",
            "-1",
            "1e3",
            "0.0000001",
            "abc",
            "1,5",
            "99999999",
            "1.2.3",
        ] {
            assert_eq!(parse_dollars_micro(bad), None, "{bad}");
        }
        assert!(valid_categorize_per_minute(0) && valid_categorize_per_minute(60));
        assert!(!valid_categorize_per_minute(-1));
    }
}

/// The largest monthly budget or seat price accepted, in whole micro-USD ($10M).
pub const MAX_BUDGET_MICRO: i64 = 10_000_000_000_000;

/// A budget or seat amount as typed, in whole micro-USD; None when it is
/// not a dollar amount or above `MAX_BUDGET_MICRO`.
pub fn parse_amount_micro(s: &str) -> Option<i64> {
    let s = s.trim().trim_start_matches('$').replace(',', "");
    let (whole, frac) = s.split_once('.').unwrap_or((&s, ""));
    // parse_dollars_micro caps at its own (smaller) maximum; budgets read
    // the whole part themselves and reuse its fraction rules.
    let digits = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
    if whole.len() > 8 || !digits(whole) {
        return None;
    }
    let w: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let f = parse_dollars_micro(&format!("0.{frac}"))
        .filter(|_| !frac.is_empty() || !whole.is_empty())?;
    let micro = w.checked_mul(1_000_000)?.checked_add(f)?;
    (micro <= MAX_BUDGET_MICRO).then_some(micro)
}

/// Creates or changes a budget. Callers validate the amount (> 0), the
/// thresholds and that the project or developer exists.
pub async fn set_budget(
    user: &SignedIn,
    scope: crate::db::BudgetScope,
    scope_key: &str,
    amount_micro: i64,
    thresholds: &[u32],
) -> Result<()> {
    let t = tally_core::budget::format_thresholds(thresholds);
    user.db
        .set_budget(scope, scope_key, amount_micro, &t, now_ms())
        .await?;
    user.audit(
        AuditAction::BudgetSet,
        json!({
            "scope": scope.as_str(),
            "scope_key": scope_key,
            "amount_usd": tally_core::money::Usd::from_parts(amount_micro, 0).decimal(6),
            "thresholds": t,
        }),
    )
    .await
}

/// Audited only when the budget existed.
pub async fn delete_budget(
    user: &SignedIn,
    scope: crate::db::BudgetScope,
    scope_key: &str,
) -> Result<bool> {
    if !user.db.delete_budget(scope, scope_key).await? {
        return Ok(false);
    }
    user.audit(
        AuditAction::BudgetDelete,
        json!({"scope": scope.as_str(), "scope_key": scope_key}),
    )
    .await?;
    Ok(true)
}

/// Audited only when an open alert of this team was dismissed.
pub async fn dismiss_alert(user: &SignedIn, alert_id: &str) -> Result<bool> {
    if !user.db.dismiss_alert(alert_id, now_ms()).await? {
        return Ok(false);
    }
    user.audit(AuditAction::AlertDismiss, json!({"alert_id": alert_id}))
        .await?;
    Ok(true)
}

/// Puts a developer on a seat (`Some((plan, monthly micro-USD))`) or back
/// on API pricing (`None`). Callers check the developer exists.
pub async fn set_seat(
    user: &SignedIn,
    developer_id: &str,
    seat: Option<(tally_core::budget::SeatPlan, i64)>,
) -> Result<()> {
    user.db.set_seat(developer_id, seat, now_ms()).await?;
    let (plan, micro) = seat.unwrap_or((tally_core::budget::SeatPlan::Api, 0));
    user.audit(
        AuditAction::SeatPlanChange,
        json!({
            "developer_id": developer_id,
            "plan": plan.as_str(),
            "monthly_usd": tally_core::money::Usd::from_parts(micro, 0).decimal(2),
        }),
    )
    .await
}

#[cfg(test)]
mod budget_tests {
    use super::*;

    #[test]
    fn budget_amounts_parse_exactly() {
        assert_eq!(parse_amount_micro("1000"), Some(1_000_000_000));
        assert_eq!(parse_amount_micro("$1,000.50"), Some(1_000_500_000));
        assert_eq!(parse_amount_micro("0.000001"), Some(1));
        assert_eq!(parse_amount_micro(".5"), Some(500_000));
        assert_eq!(parse_amount_micro("10000000"), Some(MAX_BUDGET_MICRO));
        for bad in [
            "",
            ".",
            "-1",
            "1e3",
            "10000000.01",
            "0.0000001",
            "abc",
            "1.2.3",
        ] {
            assert_eq!(parse_amount_micro(bad), None, "{bad}");
        }
    }
}
