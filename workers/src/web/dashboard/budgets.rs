//! `GET /budgets`: this month's spend against each budget (everyone reads,
//! admins change them), the alerts raised, and the Overview's alert banner.
//! Budgets count API-equivalent token cost over the team's local month;
//! the hourly cron raises the alerts (`crate::budgets`).

use maud::{html, Markup};
use tally_core::budget::{self, Month};
use tally_core::money::Usd;
use worker::{Env, Request};

use super::layout::{csrf_field, show, usd};
use super::{download, Page, View};
use crate::db::{project_name, AlertRow, BudgetLine, BudgetScope};
use crate::util::{now_ms, query, redirect};
use crate::vocab::Role;
use crate::web::actions;
use crate::web::auth::{AdminForm, SignedIn};
use crate::web::export::Table;
use crate::web::range::Range;

/// Projects offered in the budget form: those with usage in this many days.
const PROJECT_CHOICE_DAYS: i64 = 90;

/// "50%, 80%, 100%".
fn percents(t: &[u32]) -> String {
    t.iter()
        .map(|p| format!("{p}%"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn percent_used(l: &BudgetLine) -> String {
    format!("{}.{}%", l.used_permille / 10, l.used_permille % 10)
}

fn lines_table(lines: &[BudgetLine]) -> Table {
    Table::of::<BudgetLine, ()>(
        "budgets",
        &[
            ("scope", |l, _| l.scope.as_str().to_string()),
            ("name", |l, _| l.label.clone()),
            ("budget", |l, _| usd(l.budget)),
            ("spent", |l, _| usd(l.spent)),
            ("used", |l, _| percent_used(l)),
            ("thresholds", |l, _| {
                budget::format_thresholds(&l.thresholds)
            }),
            ("reached", |l, _| budget::format_thresholds(&l.reached)),
        ],
        lines,
        &(),
    )
}

/// A bar without inline style: `<meter>` draws it, its value is the
/// permille spent (capped at the end of the bar; the text says the rest).
fn bar(l: &BudgetLine) -> Markup {
    let over = l.used_permille >= 1000;
    html! {
        meter min="0" max="1000" low="800" high="999" optimum="0"
            value=(l.used_permille.min(1000)) class=[over.then_some("over")]
            data-testid="budget-bar" title=(percent_used(l)) {
            (percent_used(l))
        }
    }
}

pub async fn page(req: Request, env: Env) -> Page {
    let user = SignedIn::for_page(&req, &env).await?;
    let View { zone, .. } = View::of(&req, &user).await?;
    let today = zone.local_day(now_ms());
    let month = Month::of_day(today);
    let lines = user.db.budget_status(month, &zone).await?;
    let t = lines_table(&lines);
    if let Some(r) = download(&req, &user, &t).await? {
        return Ok(r);
    }
    let admin = user.can(Role::Admin);
    let (projects, devs) = if admin {
        let (fh, th) = Range::days(today - (PROJECT_CHOICE_DAYS - 1), today, &zone).quarters();
        (
            user.db.by_project(fh, th).await?,
            user.db.developer_list().await?,
        )
    } else {
        (vec![], vec![])
    };
    let alerts = user.db.recent_alerts(50).await?;
    let q = query(&req);
    let csrf = csrf_field(&user.principal.csrf_token);
    let defaults = budget::format_thresholds(&budget::DEFAULT_THRESHOLDS);
    let thresholds_field = html! {
        label { "Alert at (% of budget) " input name="thresholds" value=(defaults) size="14" data-testid="budget-thresholds"; }
    };
    let amount_field = html! {
        label { "Monthly budget ($) " input name="amount" inputmode="decimal" required size="10" data-testid="budget-amount"; }
    };
    let body = html! {
        h1 { "Budgets" }
        @if let Some(s) = q.get("saved") {
            p.ok data-testid="saved" { "Saved: " (s) }
        }
        @if let Some(s) = q.get("error") {
            p.error data-testid="budget-error" { (s) }
        }
        p {
            "Spend this month (" b data-testid="budget-month" { (month.name()) " " (month.year) } ", days in " (zone.name)
            ") against each monthly budget, at API-equivalent token prices. Alerts are raised once per threshold and month by the hourly check."
        }
        div.scroll {
            table data-testid="table-budgets" {
                thead { tr {
                    th { "scope" } th { "name" } th { "budget" } th { "spent" } th { "used" } th { "alert at" }
                    @if admin { th { "" } }
                } }
                tbody {
                    @for l in &lines {
                        tr data-testid=(format!("budget-{}-{}", l.scope.as_str(), l.scope_key)) {
                            td { (l.scope.as_str()) }
                            td.t data-testid="budget-name" { (l.label) }
                            td data-testid="budget-amount" { (usd(l.budget)) }
                            td data-testid="budget-spent" { (usd(l.spent)) }
                            td.t { (bar(l)) " " span data-testid="budget-used" { (percent_used(l)) } }
                            td { (percents(&l.thresholds)) }
                            @if admin {
                                td {
                                    form.inline method="post" action="/budgets/delete" {
                                        (csrf)
                                        input type="hidden" name="scope" value=(l.scope.as_str());
                                        input type="hidden" name="scope_key" value=(l.scope_key);
                                        button data-testid="budget-delete" { "Delete" }
                                    }
                                }
                            }
                        }
                    }
                    @if lines.is_empty() {
                        tr { td colspan="7" { "No budgets yet." } }
                    }
                }
            }
        }
        p.note { "Download: " a href="/budgets?format=csv" { "CSV" } " " a href="/budgets?format=json" { "JSON" } }
        @if admin {
            h2 { "Set a budget" }
            p.note { "Saving a budget for a scope that has one replaces its amount and thresholds." }
            form method="post" action="/budgets" class="box" data-testid="budget-team-form" {
                (csrf) input type="hidden" name="scope" value="team";
                b { "Team " } (amount_field) (thresholds_field)
                button data-testid="budget-save" { "Save team budget" }
            }
            form method="post" action="/budgets" class="box" data-testid="budget-project-form" {
                (csrf) input type="hidden" name="scope" value="project";
                label { "Project " select name="scope_key" data-testid="budget-project" {
                    @for p in &projects {
                        option value=(p.key) { (project_name(&p.key, &p.label)) }
                    }
                } }
                (amount_field) (thresholds_field)
                button data-testid="budget-save" { "Save project budget" }
            }
            form method="post" action="/budgets" class="box" data-testid="budget-developer-form" {
                (csrf) input type="hidden" name="scope" value="developer";
                label { "Developer " select name="scope_key" data-testid="budget-developer" {
                    @for d in devs.iter().filter(|d| d.removed_at.is_none()) {
                        option value=(d.id) { (d.name) }
                    }
                } }
                (amount_field) (thresholds_field)
                button data-testid="budget-save" { "Save developer budget" }
            }
        } @else {
            p { "Viewers can read budgets; admins change them." }
        }
        h2 { "Alerts" }
        (alerts_table(&alerts, &zone))
    };
    Ok(show(&user, "Budgets", "/budgets", body, 200)?)
}

fn alerts_table(alerts: &[AlertRow], zone: &crate::zone::Zone) -> Markup {
    html! {
        div.scroll {
            table data-testid="table-alerts" {
                thead { tr { th { "raised" } th { "alert" } th { "status" } } }
                tbody {
                    @for a in alerts {
                        tr {
                            td { (zone.time(a.created_ms)) }
                            td.t { (a.title) }
                            td { @if a.dismissed_ms.is_some() { "dismissed" } @else { "open" } }
                        }
                    }
                    @if alerts.is_empty() {
                        tr { td colspan="3" { "No alerts raised." } }
                    }
                }
            }
        }
    }
}

/// The Overview's banner: open alerts of the current month, each with a
/// dismiss button for admins.
pub fn banner(user: &SignedIn, alerts: &[AlertRow]) -> Markup {
    if alerts.is_empty() {
        return html! {};
    }
    let admin = user.can(Role::Admin);
    html! {
        div.alerts data-testid="alerts-banner" role="status" {
            @for a in alerts {
                div class=(format!("alert alert-{}", a.kind)) data-testid="alert" data-alert-id=(a.id) {
                    span data-testid="alert-title" { (a.title) }
                    @if admin {
                        form.inline method="post" action="/alerts/dismiss" {
                            (csrf_field(&user.principal.csrf_token))
                            input type="hidden" name="id" value=(a.id);
                            button data-testid="alert-dismiss" { "Dismiss" }
                        }
                    }
                }
            }
        }
    }
}

fn back(kind: &str, message: &str) -> Page {
    let encoded: String = url::form_urlencoded::byte_serialize(message.as_bytes()).collect();
    Ok(redirect(&format!("/budgets?{kind}={encoded}"))?)
}

pub async fn save(req: Request, env: Env) -> Page {
    let form = AdminForm::read(req, &env, Role::Admin).await?;
    let Some(scope) = BudgetScope::parse(form.trimmed("scope")) else {
        return back("error", "Unknown budget scope.");
    };
    let key = match scope {
        BudgetScope::Team => String::new(),
        _ => form.trimmed("scope_key").to_string(),
    };
    let Some(amount) = actions::parse_amount_micro(form.trimmed("amount")).filter(|a| *a > 0)
    else {
        return back(
            "error",
            "The budget must be a dollar amount above $0 and at most $10,000,000 (up to 6 decimals).",
        );
    };
    let Some(thresholds) = budget::parse_thresholds(form.trimmed("thresholds")) else {
        return back(
            "error",
            "Thresholds are whole percentages from 1 to 1000, separated by commas (at most 10).",
        );
    };
    let known = match scope {
        BudgetScope::Team => true,
        BudgetScope::Project => tally_core::hash::is_hex(&key, 64),
        BudgetScope::Developer => form
            .user
            .db
            .developer_list()
            .await?
            .iter()
            .any(|d| d.id == key && d.removed_at.is_none()),
    };
    if !known {
        return back("error", "No such project or developer in this team.");
    }
    actions::set_budget(&form.user, scope, &key, amount, &thresholds).await?;
    back(
        "saved",
        &format!(
            "{} budget {}",
            scope.as_str(),
            Usd::from_parts(amount, 0).cents()
        ),
    )
}

pub async fn delete(req: Request, env: Env) -> Page {
    let form = AdminForm::read(req, &env, Role::Admin).await?;
    let Some(scope) = BudgetScope::parse(form.trimmed("scope")) else {
        return back("error", "Unknown budget scope.");
    };
    if !actions::delete_budget(&form.user, scope, form.trimmed("scope_key")).await? {
        return back("error", "No such budget.");
    }
    back("saved", &format!("{} budget deleted", scope.as_str()))
}

pub async fn dismiss(req: Request, env: Env) -> Page {
    let form = AdminForm::read(req, &env, Role::Admin).await?;
    actions::dismiss_alert(&form.user, form.trimmed("id")).await?;
    Ok(redirect("/")?)
}
