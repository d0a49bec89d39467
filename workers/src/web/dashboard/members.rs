//! `GET /members`: who can sign in. Owners invite, change roles and remove.

use maud::html;
use worker::{Env, Request};

use super::layout::{csrf_field, error_page, show};
use super::Page;
use crate::util::{redirect, valid_email};
use crate::vocab::Role;
use crate::web::actions::{self, Invited};
use crate::web::auth::{AdminForm, SignedIn};
use crate::web::format::role_name;
use crate::zone::Zone;

pub async fn page(req: Request, env: Env) -> Page {
    let user = SignedIn::for_page(&req, &env).await?;
    user.require_page(Role::Admin)?;
    let zone = Zone::new(&user.db.settings().await?.timezone);
    let members = user.db.members().await?;
    let owner = user.can(Role::Owner);
    let csrf = csrf_field(&user.principal.csrf_token);
    let q = crate::util::query(&req);
    let body = html! {
        h1 { "Members" }
        @if let Some(s) = q.get("saved") {
            p.ok data-testid="saved" role="status" { (s) }
        }
        @if let Some(s) = q.get("error") {
            p.error data-testid="members-error" role="alert" { (s) }
        }
        div.scroll {
            table data-testid="table-members" {
                thead { tr { th scope="col" { "Email" } th scope="col" { "Role" } th scope="col" { "Status" } th scope="col" { "Since" } th scope="col" { span.sr-only { "Actions" } } } }
                tbody {
                    @for m in &members {
                        tr data-testid="member-row" data-email=(m.email) {
                            td data-label="Email" { (m.email) }
                            td data-label="Role" data-role=(m.role.as_str()) { (role_name(m.role)) }
                            td data-label="Status" data-testid="member-status" {
                                @match (m.accepted_at, m.invite_failed_at) {
                                    (Some(_), _) => "Active",
                                    (None, Some(at)) => span.error title=(format!("The invitation e-mail failed at {}", zone.time(at))) { "Invitation not delivered" },
                                    (None, None) => "Invitation pending",
                                }
                            }
                            td data-label="Since" { (zone.time(m.created_at)) }
                            td.actions data-label="Actions" {
                                @if owner && actions::may_change_member(&user, &m.id) {
                                    @if m.accepted_at.is_none() {
                                        form.inline method="post" action="/members/resend" {
                                            (csrf)
                                            input type="hidden" name="member_id" value=(m.id);
                                            button data-testid="resend-invite" aria-label=(format!("Resend the invitation to {}", m.email)) { "Resend" }
                                        }
                                        " "
                                        form.inline method="post" action="/members/revoke-invite" data-confirm=(format!("Withdraw the invitation to {}? Their sign-in link stops working.", m.email)) {
                                            (csrf)
                                            input type="hidden" name="member_id" value=(m.id);
                                            button.danger data-testid="revoke-invite" aria-label=(format!("Revoke invitation for {}", m.email)) { "Revoke invitation" }
                                        }
                                        " "
                                    }
                                    form.inline method="post" action="/members/role" data-confirm=(format!("Make {} {{role}}? Their access changes at their next page.", m.email)) {
                                        (csrf)
                                        input type="hidden" name="member_id" value=(m.id);
                                        select name="role" aria-label=(format!("Role of {}", m.email)) {
                                            @for r in Role::ALL {
                                                option value=(r.as_str()) selected[r == m.role] { (role_name(r)) }
                                            }
                                        }
                                        button data-testid="change-role" { "Change role" }
                                    }
                                    @if m.accepted_at.is_some() {
                                        " "
                                        form.inline method="post" action="/members/remove" data-confirm=(format!("Remove {} from the team? They are signed out at once.", m.email)) {
                                            (csrf)
                                            input type="hidden" name="member_id" value=(m.id);
                                            button.danger { "Remove" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if owner {
            h2 { "Invite" }
            form method="post" action="/members/invite" class="box" {
                (csrf)
                label { "E-mail " input type="email" name="email" required data-testid="invite-email"; }
                label {
                    "Role "
                    select name="role" {
                        // Least power first: the safe default.
                        @for r in Role::ALL.iter().rev() { option value=(r.as_str()) { (role_name(*r)) } }
                    }
                }
                button data-testid="invite-send" { "Send invitation" }
            }
        } @else {
            p { "Owners invite members and change roles." }
        }
    };
    Ok(show(&user, "Members", "/members", body, 200)?)
}

pub async fn invite(req: Request, env: Env) -> Page {
    let origin = req.url()?.origin().ascii_serialization();
    let form = AdminForm::read(req, &env, Role::Owner).await?;
    let email = form.trimmed("email").to_ascii_lowercase();
    let (true, Some(role)) = (valid_email(&email), Role::parse(form.raw("role"))) else {
        return Ok(error_page(
            &form.user,
            "Members",
            "/members",
            "A valid email and a role are required.",
            400,
        )?);
    };
    match actions::invite_member(&env, &form.user, &origin, &email, role).await? {
        Invited::Sent => Ok(redirect("/members")?),
        Invited::NotDelivered => Ok(error_page(
            &form.user,
            "Members",
            "/members",
            &format!("{email} was added as {}, but the invitation e-mail could not be sent. They can ask for a sign-in link themselves on the sign-in page with this address; the audit log records the failed delivery.", crate::web::format::role_name(role).to_lowercase()),
            502,
        )?),
        Invited::AlreadyMember => Ok(error_page(
            &form.user,
            "Members",
            "/members",
            "That address is already a member.",
            409,
        )?),
    }
}

pub async fn change_role(req: Request, env: Env) -> Page {
    let form = AdminForm::read(req, &env, Role::Owner).await?;
    let id = form.raw("member_id");
    let (true, Some(role)) = (
        actions::may_change_member(&form.user, id),
        Role::parse(form.raw("role")),
    ) else {
        return Ok(error_page(
            &form.user,
            "Members",
            "/members",
            "Pick another member and a valid role (you cannot change your own role).",
            400,
        )?);
    };
    actions::change_role(&form.user, id, role).await?;
    Ok(redirect("/members")?)
}

pub async fn remove(req: Request, env: Env) -> Page {
    let form = AdminForm::read(req, &env, Role::Owner).await?;
    let id = form.raw("member_id");
    if !actions::may_change_member(&form.user, id) {
        return Ok(error_page(
            &form.user,
            "Members",
            "/members",
            "You cannot remove yourself.",
            400,
        )?);
    }
    actions::remove_member(&form.user, id).await?;
    Ok(redirect("/members")?)
}

/// `POST /members/resend`: a fresh invitation e-mail to a pending member;
/// the page says whether it got through.
pub async fn resend(req: Request, env: Env) -> Page {
    let origin = req.url()?.origin().ascii_serialization();
    let form = AdminForm::read(req, &env, Role::Owner).await?;
    match actions::resend_invitation(&env, &form.user, &origin, form.raw("member_id")).await? {
        Some(true) => Ok(redirect("/members?saved=Invitation+sent+again.")?),
        Some(false) => Ok(redirect(
            "/members?error=The+invitation+e-mail+could+not+be+sent+again;+the+audit+log+records+the+failed+delivery.",
        )?),
        None => Ok(error_page(
            &form.user,
            "Members",
            "/members",
            "That invitation was already accepted or withdrawn.",
            409,
        )?),
    }
}

/// `POST /members/revoke-invite`: withdraws a pending invitation.
pub async fn revoke_invite(req: Request, env: Env) -> Page {
    let form = AdminForm::read(req, &env, Role::Owner).await?;
    if !actions::revoke_invitation(&form.user, form.raw("member_id")).await? {
        return Ok(error_page(
            &form.user,
            "Members",
            "/members",
            "That invitation was already accepted or withdrawn.",
            409,
        )?);
    }
    Ok(redirect("/members?saved=Invitation+withdrawn.")?)
}
