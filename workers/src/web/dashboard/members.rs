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
    let body = html! {
        h1 { "Members" }
        div.scroll {
            table data-testid="table-members" {
                thead { tr { th { "Email" } th { "Role" } th { "Since" } th { span.sr-only { "Actions" } } } }
                tbody {
                    @for m in &members {
                        tr {
                            td data-label="Email" { (m.email) }
                            td data-label="Role" data-role=(m.role.as_str()) { (role_name(m.role)) }
                            td data-label="Since" { (zone.time(m.created_at)) }
                            td {
                                @if owner && actions::may_change_member(&user, &m.id) {
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
