//! Removing and erasing developers (owners), shown on `/tokens`, and the
//! "content last viewed" list the Developers page shows.
//!
//! Removing revokes a developer's agents and keeps their numbers and
//! content. Erasing (typed confirmation) also moves their numbers to a new
//! anonymous "Former developer N", so team totals stay right, drops their
//! category rows and erases their stored content.

use maud::{html, Markup};
use worker::{Env, Request};

use super::layout::{csrf_field, error_page};
use super::Page;
use crate::db::DeveloperRow;
use crate::util::redirect;
use crate::vocab::Role;
use crate::web::actions;
use crate::web::auth::{AdminForm, SignedIn};
use crate::zone::Zone;

fn active(devs: &[DeveloperRow]) -> impl Iterator<Item = &DeveloperRow> {
    devs.iter().filter(|d| d.erased_at.is_none())
}

/// The owner's forms; nothing for other roles.
pub fn forms(user: &SignedIn, devs: &[DeveloperRow]) -> Markup {
    if !user.can(Role::Owner) {
        return html! {};
    }
    let csrf = csrf_field(&user.principal.csrf_token);
    html! {
        h2 { "Remove or erase a developer" }
        form method="post" action="/developers/remove" class="box" data-testid="remove-developer-form" {
            (csrf)
            label { "Developer " select name="developer_id" data-testid="remove-developer-select" {
                @for d in active(devs).filter(|d| d.removed_at.is_none()) {
                    option value=(d.id) { (d.name) }
                }
            } }
            " "
            button data-testid="remove-developer" { "Remove developer" }
            " " small { "Revokes their agents; their numbers and stored content stay." }
        }
        form method="post" action="/developers/erase" class="box" data-testid="erase-developer-form" {
            (csrf)
            label { "Developer " select name="developer_id" data-testid="erase-developer-select" {
                @for d in active(devs) {
                    option value=(d.id) { (d.name) }
                }
            } }
            " "
            label { "Type their name to confirm " input name="confirm_name" autocomplete="off" data-testid="erase-confirm"; }
            " "
            button data-testid="erase-developer" { "Erase their data" }
            br;
            small { "Revokes their agents, erases their stored content and category rows, and moves their cost and token numbers to an anonymous \"Former developer\" so team totals stay right." }
        }
    }
}

/// When each developer's content was last read (timeline views and exports).
pub fn content_viewed(devs: &[DeveloperRow], zone: &Zone) -> Markup {
    html! {
        h2 { "Content last viewed" }
        div.scroll {
            table data-testid="table-content-viewed" {
                thead { tr { th { "developer" } th { "content last viewed" } } }
                tbody {
                    @for d in devs {
                        tr {
                            td { (d.name) }
                            td { (d.content_viewed_at.map(|t| zone.time(t)).unwrap_or_else(|| "never".into())) }
                        }
                    }
                }
            }
        }
    }
}

pub async fn remove(req: Request, env: Env) -> Page {
    let form = AdminForm::read(req, &env, Role::Owner).await?;
    let id = form.trimmed("developer_id");
    if !actions::remove_developer(&form.user, id).await? {
        return Ok(error_page(
            "Developers & tokens",
            "/tokens",
            "No such developer in this team.",
            404,
        )?);
    }
    Ok(redirect("/tokens?saved=developer+removed")?)
}

pub async fn erase(req: Request, env: Env) -> Page {
    let form = AdminForm::read(req, &env, Role::Owner).await?;
    let id = form.trimmed("developer_id").to_string();
    let devs = form.user.db.developer_list().await?;
    let Some(dev) = devs.iter().find(|d| d.id == id && d.erased_at.is_none()) else {
        return Ok(error_page(
            "Developers & tokens",
            "/tokens",
            "No such developer in this team.",
            404,
        )?);
    };
    if form.trimmed("confirm_name") != dev.name {
        return Ok(error_page(
            "Developers & tokens",
            "/tokens",
            "Type the developer's exact name to confirm the erasure.",
            400,
        )?);
    }
    actions::erase_developer(&env, &form.user, &id).await?;
    Ok(redirect("/tokens?saved=developer+erased")?)
}
