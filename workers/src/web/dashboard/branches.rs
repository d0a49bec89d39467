//! `GET /branches`: cost per (project, git branch), optionally for one
//! project (`?project=`), and `POST /branches/label`, an admin's name for a
//! branch hash. A branch is shown by its admin label, else the readable name a
//! text mode sent (redacted on the machine), else a short hash.

use maud::{html, Markup};
use tally_core::time::QUARTER_MS;
use worker::{Env, Request};

use super::layout::{csrf_field, error_page, range_form_keeping, show, table, table_with, usd};
use super::{download, Page, View};
use crate::db::{project_name, BranchTotals};
use crate::util::{query, redirect};
use crate::vocab::Role;
use crate::web::actions;
use crate::web::auth::{AdminForm, SignedIn};
use crate::web::export::{Column, Shown, Table};
use crate::web::format::{count_cell, money_cell, money_exact, tokens_cell, Cell};
use crate::web::range::Range;
use crate::zone::Zone;

/// Rows per page of the Branches list.
pub const BRANCHES_PER_PAGE: usize = 50;

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// What a branch row is called on the page and in downloads.
pub fn branch_name(r: &BranchTotals) -> String {
    if r.branch.is_empty() {
        "(no branch)".into()
    } else if !r.label.is_empty() {
        r.label.clone()
    } else if !r.name.is_empty() {
        r.name.clone()
    } else {
        format!("{}…", r.branch.chars().take(12).collect::<String>())
    }
}

/// `/branches?from=…&to=…&project=…`: the list narrowed to one project.
pub fn href(project: &str, range: &Range) -> String {
    format!("/branches?{}&project={}", range.query(), enc(project))
}

/// One row per (project, branch): the page's and the downloads' columns.
pub fn branch_table(
    name: &'static str,
    rows: &[BranchTotals],
    zone: &Zone,
    range: &Range,
) -> Table {
    let columns: [Column<BranchTotals, Zone>; 11] = [
        ("project", |r, _| project_name(&r.project, &r.project_label)),
        ("branch", |r, _| branch_name(r)),
        ("branch (keyed hash)", |r, _| r.branch.clone()),
        ("developers", |r, _| r.developers.to_string()),
        ("requests", |r, _| r.requests.to_string()),
        ("input", |r, _| r.input_tokens.to_string()),
        ("output", |r, _| r.output_tokens.to_string()),
        ("cache read", |r, _| r.cache_read_tokens.to_string()),
        ("cost", |r, _| usd(r.cost())),
        // Downloads keep every pico-dollar, so sums over branches are exact.
        ("cost exact", |r, _| money_exact(r.cost())),
        ("last active", |r, z| {
            z.date(z.local_day(r.last_quarter * QUARTER_MS))
        }),
    ];
    let shown: [Shown<BranchTotals, Zone>; 7] = [
        ("developers", |r, _| count_cell(r.developers)),
        ("requests", |r, _| count_cell(r.requests)),
        ("input", |r, _| tokens_cell(r.input_tokens)),
        ("output", |r, _| tokens_cell(r.output_tokens)),
        ("cache read", |r, _| tokens_cell(r.cache_read_tokens)),
        ("cost", |r, _| money_cell(r.cost())),
        ("branch (keyed hash)", |r, _| {
            if r.branch.is_empty() {
                Cell::text("—")
            } else {
                Cell::titled(
                    format!("{}…", r.branch.chars().take(12).collect::<String>()),
                    r.branch.clone(),
                )
            }
        }),
    ];
    Table::of(name, &columns, rows, zone)
        .show(rows, zone, &shown)
        .link("project", rows, |r| Some(href(&r.project, range)))
}

pub async fn branches(req: Request, env: Env) -> Page {
    let user = SignedIn::for_page(&req, &env).await?;
    let View { zone, range, .. } = View::of(&req, &user).await?;
    let q = query(&req);
    let project = q
        .get("project")
        .map(|p| p.trim().to_string())
        .unwrap_or_default();
    if !project.is_empty() && !tally_core::hash::is_hex(&project, 64) {
        return Ok(error_page(
            &user,
            "Branches",
            "/branches",
            "The project filter is a project's keyed hash: 64 lowercase hex characters.",
            400,
        )?);
    }
    let (fh, th) = range.quarters();
    let rows = user.db.by_branch(fh, th, &project).await?;
    let mut base = format!("/branches?{}", range.query());
    if !project.is_empty() {
        base.push_str(&format!("&project={}", enc(&project)));
    }
    let t =
        branch_table("branches", &rows, &zone, &range).listed(base.clone(), &q, BRANCHES_PER_PAGE);
    if let Some(r) = download(&req, &user, &t).await? {
        return Ok(r);
    }
    let admin = user.can(Role::Admin);
    let csrf = &user.principal.csrf_token;
    let back = match q.get("page") {
        Some(p) => format!("{base}&page={}", enc(p)),
        None => base.clone(),
    };
    let title = rows
        .first()
        .filter(|_| !project.is_empty())
        .map(|r| project_name(&r.project, &r.project_label));
    // Named in its own row: the form carries both hashes, people type a name.
    let rename = |i: usize| -> Markup {
        let r = &rows[i];
        if r.branch.is_empty() {
            return html! { "—" };
        }
        let head = |h: &str, n: usize| h.chars().take(n).collect::<String>();
        let id = format!(
            "branch-label-{}-{}",
            head(&r.project, 16),
            head(&r.branch, 16)
        );
        html! {
            form.rename method="post" action="/branches/label" data-testid="rename-branch" {
                (csrf_field(csrf))
                input type="hidden" name="project" value=(r.project);
                input type="hidden" name="branch" value=(r.branch);
                input type="hidden" name="back" value=(back);
                label.sr-only for=(id) { "Name of branch " (head(&r.branch, 12)) }
                input #(id) name="label" maxlength="80" required value=(r.label) placeholder="Name this branch" data-testid="branch-label";
                " "
                button data-testid="save-branch-label" { "Save" }
            }
        }
    };
    let body = html! {
        @if !project.is_empty() {
            p.crumbs {
                a href=(format!("/projects?{}", range.query())) { "Projects" } " › "
                a href=(super::drill::href("/projects", &project, &range)) { (title.clone().unwrap_or_else(|| project_name(&project, ""))) } " › "
            }
        }
        h1 data-testid="branches-title" {
            "Branches"
            @if let Some(t) = &title { " of " (t) }
        }
        p {
            "Git branches are identified by a keyed hash of their name, per project. Teams in a mode that shares prompt text also see the branch's name, redacted on the developer's machine; admins can name any branch."
        }
        @if !project.is_empty() {
            p { a href=(format!("/branches?{}", range.query())) data-testid="branches-all" { "All projects' branches" } }
        }
        (range_form_keeping(&range, "/branches", &[("project", project.as_str())].into_iter().filter(|(_, v)| !v.is_empty()).collect::<Vec<_>>()))
        @if admin {
            (table_with(&t, Some(("name", &rename))))
        } @else {
            (table(&t))
        }
    };
    Ok(show(&user, "Branches", "/branches", body, 200)?)
}

/// `POST /branches/label`: names a branch hash of a project for everyone in the team.
pub async fn label_branch(req: Request, env: Env) -> Page {
    let form = AdminForm::read(req, &env, Role::Admin).await?;
    let (project, branch, label) = (
        form.trimmed("project"),
        form.trimmed("branch"),
        form.trimmed("label"),
    );
    if !actions::valid_branch_label(project, branch, label) {
        return Ok(error_page(
            &form.user,
            "Branches",
            "/branches",
            "A project and a branch hash are 64 hex characters each and a label 1–80 characters.",
            400,
        )?);
    }
    actions::label_branch(&form.user, project, branch, label).await?;
    // Back to the list the row was named in (same range and filter), never elsewhere.
    let back = form.raw("back");
    let to = if back.starts_with("/branches?") && !back.contains(['\r', '\n']) {
        back
    } else {
        "/branches"
    };
    Ok(redirect(to)?)
}
