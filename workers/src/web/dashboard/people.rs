//! Removing and erasing developers (owners), shown on `/tokens`; the
//! "content last viewed" list and the seat-plan form (admins) the
//! Developers page shows.
//!
//! Removing revokes a developer's agents and keeps their numbers and
//! content. Erasing (typed confirmation) also moves their numbers to a new
//! anonymous "Former developer N", so team totals stay right, drops their
//! category rows and erases their stored content.

use maud::{html, Markup};
use tally_core::budget::SeatPlan;
use tally_core::money::Usd;
use worker::{Env, Request};

use super::layout::{csrf_field, error_page, usd};
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
        form method="post" action="/developers/remove" class="box" data-testid="remove-developer-form" data-confirm="Remove this developer? Their agents are revoked at once; their numbers stay." {
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
            &form.user,
            "Install tokens",
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
            &form.user,
            "Install tokens",
            "/tokens",
            "No such developer in this team.",
            404,
        )?);
    };
    if form.trimmed("confirm_name") != dev.name {
        return Ok(error_page(
            &form.user,
            "Install tokens",
            "/tokens",
            "Type the developer's exact name to confirm the erasure.",
            400,
        )?);
    }
    actions::erase_developer(&env, &form.user, &id).await?;
    Ok(redirect("/tokens?saved=developer+erased")?)
}

/// Admins: put a developer on a subscription seat or back on API pricing.
/// A blank price takes the plan's list price (README, "Seat plans").
pub fn seat_form(csrf: &str, devs: &[DeveloperRow]) -> Markup {
    html! {
        h2 { "Seat plans" }
        form method="post" action="/developers/seat" class="box" data-testid="seat-form" {
            (csrf_field(csrf))
            label { "Developer " select name="developer_id" data-testid="seat-developer" {
                @for d in active(devs).filter(|d| d.removed_at.is_none()) {
                    option value=(d.id) { (d.name) }
                }
            } }
            label { "Plan " select name="plan" data-testid="seat-plan" {
                @for p in SeatPlan::ALL {
                    option value=(p.as_str()) {
                        (p.label())
                        @if let Some(m) = p.list_price_micro().filter(|m| *m > 0) {
                            " (" (usd(Usd::from_parts(m, 0))) "/month)"
                        }
                    }
                }
            } }
            label { "Monthly price ($, blank = list price) " input name="price" inputmode="decimal" size="10" data-testid="seat-price"; }
            button data-testid="seat-save" { "Save seat" }
        }
    }
}

pub async fn set_seat(req: Request, env: Env) -> Page {
    let form = AdminForm::read(req, &env, Role::Admin).await?;
    let back = |kind: &str, msg: &str| -> Page {
        let m: String = url::form_urlencoded::byte_serialize(msg.as_bytes()).collect();
        Ok(redirect(&format!("/developers?{kind}={m}"))?)
    };
    let id = form.trimmed("developer_id").to_string();
    let devs = form.user.db.developer_list().await?;
    let Some(dev) = devs.iter().find(|d| d.id == id && d.removed_at.is_none()) else {
        return back("error", "No such developer in this team.");
    };
    let Some(plan) = SeatPlan::parse(form.trimmed("plan")) else {
        return back("error", "Unknown plan.");
    };
    let typed = form.trimmed("price");
    let price = if plan == SeatPlan::Api {
        Some(0)
    } else if typed.is_empty() {
        plan.list_price_micro()
    } else {
        actions::parse_amount_micro(typed)
    };
    let Some(price) = price else {
        return back(
            "error",
            "Enter the seat's monthly price in dollars (Enterprise and custom seats have no list price).",
        );
    };
    let seat = (plan != SeatPlan::Api).then_some((plan, price));
    actions::set_seat(&form.user, &id, seat).await?;
    back(
        "saved",
        &format!(
            "{} on {} ({}/month)",
            dev.name,
            plan.label(),
            usd(Usd::from_parts(price, 0))
        ),
    )
}
