//! Drill-downs: `GET /developers/:id` (their projects, models, sessions and
//! daily trend), `GET /projects/:id` (developers, models, sessions),
//! `GET /models/:id` (developers, projects) and `GET /sessions/:id/summary`
//! (one session; its requests one by one on the timeline where Full
//! content exists). Every link carries the range, so a view can be shared.

use maud::{html, Markup};
use tally_core::money::Usd;
use tally_core::time::QUARTER_MS;
use worker::{Env, Request};

use super::layout::{duration, mode_chips, range_form, show, table};
use super::usage::{session_table, sessions_table, SESSIONS_PER_PAGE};
use super::{download, Page, View};
use crate::db::{project_name, Filter, Group, GroupTotals};
use crate::util::query;
use crate::vocab::Role;
use crate::web::auth::SignedIn;
use crate::web::error::{ApiError, PageError};
use crate::web::export::Table;
use crate::web::format::{count_cell, money_cell, tokens_cell, Cell};
use crate::web::range::Range;
use crate::zone::Zone;

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `/developers/<id>?from=…&to=…`: a drill-down that keeps the range.
pub fn href(base: &str, key: &str, range: &Range) -> String {
    format!("{base}/{}?{}", enc(key), range.query())
}

fn not_found(what: &str) -> PageError {
    PageError::Api(ApiError::not_found(format!("no such {what} in this team")))
}

/// Keys are developer ids, project hashes and model names: short printable
/// text, never a path or markup of its own.
fn valid_key(k: &str) -> bool {
    !k.is_empty() && k.len() <= 200 && !k.chars().any(char::is_control)
}

struct Ctx<'a> {
    zone: &'a Zone,
    range: &'a Range,
}

/// One group's totals, the first column linking to its own drill-down.
fn group_table(
    name: &'static str,
    group: Group,
    rows: &[GroupTotals],
    ctx: &Ctx,
    base: &str,
) -> Table {
    let first: fn(&GroupTotals, &Ctx) -> String = match group {
        Group::Project => |r, _| project_name(&r.key, &r.label),
        _ => |r, _| r.label.clone(),
    };
    let heading = match group {
        Group::Developer => "developer",
        Group::Project => "project",
        Group::Model => "model",
    };
    let link_base = match group {
        Group::Developer => "/developers",
        Group::Project => "/projects",
        Group::Model => "/models",
    };
    let mut t = Table::of::<GroupTotals, Ctx>(
        name,
        &[
            ("name", first),
            ("requests", |r, _| r.requests.to_string()),
            ("input", |r, _| r.input_tokens.to_string()),
            ("output", |r, _| r.output_tokens.to_string()),
            ("cache read", |r, _| r.cache_read_tokens.to_string()),
            ("cost", |r, _| r.cost().cents()),
            ("last active", |r, c| {
                c.zone.date(c.zone.local_day(r.last_quarter * QUARTER_MS))
            }),
        ],
        rows,
        ctx,
    )
    .show(
        rows,
        ctx,
        &[
            ("requests", |r, _| count_cell(r.requests)),
            ("input", |r, _| tokens_cell(r.input_tokens)),
            ("output", |r, _| tokens_cell(r.output_tokens)),
            ("cache read", |r, _| tokens_cell(r.cache_read_tokens)),
            ("cost", |r, _| money_cell(r.cost())),
        ],
    )
    .link("name", rows, |r| Some(href(link_base, &r.key, ctx.range)));
    t.columns[0] = heading;
    t.listed(base.to_string(), &std::collections::HashMap::new(), 0)
}

fn total(rows: &[GroupTotals]) -> (Usd, i64) {
    (
        rows.iter().map(GroupTotals::cost).sum(),
        rows.iter().map(|r| r.requests).sum(),
    )
}

fn cards(rows: &[GroupTotals]) -> Markup {
    let (cost, requests) = total(rows);
    let c = money_cell(cost);
    let n = count_cell(requests);
    html! {
        div.cards {
            div.card { "Cost (selected range)" b data-testid="drill-cost" title=[c.title] { (c.text) } }
            div.card { "Requests" b data-testid="drill-requests" title=[n.title] { (n.text) } }
        }
    }
}

/// The daily cost chart of the rows `f` matches, per model.
async fn trend(user: &SignedIn, range: &Range, zone: &Zone, f: &Filter) -> worker::Result<Markup> {
    let daily = crate::web::stats::by_local_day(
        &user
            .db
            .daily_cost_where(&range.offset_runs(zone), f)
            .await?,
    );
    let data = serde_json::to_string(&super::overview::chart(&daily, range))
        .map_err(|e| worker::Error::RustError(format!("chart data: {e}")))?;
    Ok(html! {
        h2 { "Cost over time by model" }
        div #chart .box data-chart=(data) {}
        script src="/static/uplot.js" {}
        script src="/static/chart.js" {}
    })
}

/// Sessions of one developer or project, paged, sortable, keeping the range.
async fn sessions(
    req: &Request,
    user: &SignedIn,
    range: &Range,
    zone: &Zone,
    f: &Filter,
    base: &str,
) -> worker::Result<(Table, Vec<crate::db::SessionRowOut>)> {
    let (a, b) = range.ms();
    let rows = user
        .db
        .sessions_in(a, b, false, &f.developer, &f.project)
        .await?;
    let t =
        session_table(&rows, zone, range).listed(base.to_string(), &query(req), SESSIONS_PER_PAGE);
    Ok((t, rows))
}

pub async fn developer(req: Request, env: Env, id: &str) -> Page {
    let user = SignedIn::for_page(&req, &env).await?;
    if !valid_key(id) {
        return Err(not_found("developer"));
    }
    let View { zone, range, .. } = View::of(&req, &user).await?;
    let Some(dev) = user
        .db
        .developer_list()
        .await?
        .into_iter()
        .find(|d| d.id == id)
    else {
        return Err(not_found("developer"));
    };
    let f = Filter {
        developer: id.to_string(),
        ..Filter::default()
    };
    let (fh, th) = range.quarters();
    let path = format!("/developers/{}", enc(id));
    let base = format!("{path}?{}", range.query());
    let ctx = Ctx {
        zone: &zone,
        range: &range,
    };
    let projects = user.db.usage_by(fh, th, Group::Project, &f).await?;
    let models = user.db.usage_by(fh, th, Group::Model, &f).await?;
    let (st, srows) = sessions(&req, &user, &range, &zone, &f, &base).await?;
    if let Some(r) = download(&req, &user, &st).await? {
        return Ok(r);
    }
    let chart = trend(&user, &range, &zone, &f).await?;
    let body = html! {
        p.crumbs { a href=(format!("/developers?{}", range.query())) { "Developers" } " › " }
        h1 data-testid="drill-title" { (dev.name) }
        (range_form(&range, &path))
        (cards(&projects))
        (chart)
        h2 { "Projects" }
        (table(&group_table("developer-projects", Group::Project, &projects, &ctx, &base)))
        h2 { "Models" }
        (table(&group_table("developer-models", Group::Model, &models, &ctx, &base)))
        h2 { "Sessions" }
        (sessions_table(&st, &srows))
    };
    Ok(show(&user, &dev.name, "/developers", body, 200)?)
}

pub async fn project(req: Request, env: Env, id: &str) -> Page {
    let user = SignedIn::for_page(&req, &env).await?;
    if !valid_key(id) {
        return Err(not_found("project"));
    }
    let View { zone, range, .. } = View::of(&req, &user).await?;
    let f = Filter {
        project: id.to_string(),
        ..Filter::default()
    };
    let (fh, th) = range.quarters();
    let path = format!("/projects/{}", enc(id));
    let base = format!("{path}?{}", range.query());
    let ctx = Ctx {
        zone: &zone,
        range: &range,
    };
    let developers = user.db.usage_by(fh, th, Group::Developer, &f).await?;
    let models = user.db.usage_by(fh, th, Group::Model, &f).await?;
    let branches = user.db.by_branch(fh, th, id).await?;
    let bt = super::branches::branch_table("project-branches", &branches, &zone, &range).listed(
        base.clone(),
        &std::collections::HashMap::new(),
        0,
    );
    let (st, srows) = sessions(&req, &user, &range, &zone, &f, &base).await?;
    if let Some(r) = download(&req, &user, &st).await? {
        return Ok(r);
    }
    let label = user
        .db
        .usage_by(fh, th, Group::Project, &f)
        .await?
        .first()
        .map(|p| project_name(&p.key, &p.label))
        .unwrap_or_else(|| project_name(id, ""));
    let body = html! {
        p.crumbs { a href=(format!("/projects?{}", range.query())) { "Projects" } " › " }
        h1 data-testid="drill-title" { (label) }
        p.note title=(id) { "Keyed hash " code { (id) } }
        (range_form(&range, &path))
        (cards(&developers))
        h2 { "Developers" }
        (table(&group_table("project-developers", Group::Developer, &developers, &ctx, &base)))
        h2 { "Models" }
        (table(&group_table("project-models", Group::Model, &models, &ctx, &base)))
        h2 { "Branches" }
        (table(&bt))
        p { a href=(super::branches::href(id, &range)) data-testid="project-branches" { "This project's branches on the Branches page (labels, downloads)" } }
        h2 { "Sessions" }
        (sessions_table(&st, &srows))
    };
    Ok(show(&user, &label, "/projects", body, 200)?)
}

pub async fn model(req: Request, env: Env, id: &str) -> Page {
    let user = SignedIn::for_page(&req, &env).await?;
    if !valid_key(id) {
        return Err(not_found("model"));
    }
    let View { zone, range, .. } = View::of(&req, &user).await?;
    let f = Filter {
        model: id.to_string(),
        ..Filter::default()
    };
    let (fh, th) = range.quarters();
    let path = format!("/models/{}", enc(id));
    let base = format!("{path}?{}", range.query());
    let ctx = Ctx {
        zone: &zone,
        range: &range,
    };
    let developers = user.db.usage_by(fh, th, Group::Developer, &f).await?;
    let projects = user.db.usage_by(fh, th, Group::Project, &f).await?;
    let dt = group_table(
        "model-developers",
        Group::Developer,
        &developers,
        &ctx,
        &base,
    );
    if let Some(r) = download(&req, &user, &dt).await? {
        return Ok(r);
    }
    let chart = trend(&user, &range, &zone, &f).await?;
    let body = html! {
        p.crumbs { a href=(format!("/models?{}", range.query())) { "Models" } " › " }
        h1 data-testid="drill-title" { (id) }
        (range_form(&range, &path))
        (cards(&developers))
        (chart)
        h2 { "Developers" }
        (table(&dt))
        h2 { "Projects" }
        (table(&group_table("model-projects", Group::Project, &projects, &ctx, &base)))
    };
    Ok(show(&user, id, "/models", body, 200)?)
}

/// One session's figures; its requests one by one live on the timeline,
/// which exists where the session was captured in Full mode.
pub async fn session(req: Request, env: Env, id: &str) -> Page {
    let user = SignedIn::for_page(&req, &env).await?;
    if !super::timeline::valid_session(id) {
        return Err(not_found("session"));
    }
    let View { zone, range, .. } = View::of(&req, &user).await?;
    let Some(s) = user.db.session_by_id(id).await? else {
        return Err(not_found("session"));
    };
    let timeline = user.can(Role::Admin)
        && !user
            .db
            .sessions_with_content(&[id.to_string()])
            .await?
            .is_empty();
    let cost = money_cell(s.cost());
    let fact = |label: &str, testid: &str, value: Cell| {
        html! {
            div { dt { (label) } dd data-testid=(testid) title=[value.title] {
                @if let Some(h) = &value.href { a href=(h) { (value.text) } } @else { (value.text) }
            } }
        }
    };
    let dev = Cell {
        href: Some(href("/developers", &s.developer_id, &range)),
        ..Cell::text(s.developer.clone())
    };
    let proj = Cell {
        href: Some(href("/projects", &s.project, &range)),
        ..Cell::text(project_name(&s.project, ""))
    };
    let body = html! {
        p.crumbs { a href=(format!("/sessions?{}", range.query())) { "Sessions" } " › " }
        h1 data-testid="drill-title" { "Session " (s.session.chars().take(16).collect::<String>()) }
        dl.facts.box {
            (fact("Developer", "session-developer", dev))
            (fact("Project", "session-project", proj))
            (fact("Agent", "session-agent", Cell::text(crate::web::format::agent_of(&s.agent))))
            (fact("Start", "session-start", Cell::text(zone.time(s.start_ms))))
            (fact("Duration", "session-duration", Cell::text(duration(s.end_ms - s.start_ms))))
            (fact("Requests", "session-requests", count_cell(s.requests)))
            (fact("Cost", "session-cost", cost))
            div { dt { "Captured in" } dd { (mode_chips(s.modes)) } }
        }
        @if timeline {
            p { a href=(format!("/sessions/{}", s.session)) data-testid="session-timeline" { "Every request of this session, in order (timeline)" } }
        } @else {
            p.note data-testid="session-no-timeline" {
                "Requests one by one are kept only for sessions captured in Full mode, and only owners and admins open them; this session's figures above are its "
                (crate::web::format::count(s.requests)) " requests summed."
            }
        }
    };
    Ok(show(&user, "Session", "/sessions", body, 200)?)
}
