//! Usage broken down by developer, project, session, model and category.

use maud::{html, Markup};
use tally_core::event::PrivacyMode;
use tally_core::time::QUARTER_MS;
use worker::{Env, Request};

use super::download;
use super::layout::{
    csrf_field, duration, error_page, mode_chips, percent, range_form, range_form_keeping, show,
    table, table_with, td, usd,
};
use super::{Page, View};
use crate::db::{
    AgentRow, CategorizeLimits, CategoryRow, DeveloperSpend, GroupTotals, ModelTotals,
    SessionRowOut,
};
use crate::util::{query, redirect};
use crate::vocab::Role;
use crate::web::actions;
use crate::web::auth::{AdminForm, SignedIn};
use crate::web::export::{Column, Shown, Table};
use crate::web::format::{category_of, count_cell, money_cell, tokens_cell, Cell};
use crate::web::stats::prompt_tokens;
use crate::zone::Zone;
use tally_core::budget::SeatPlan;

/// The download when `?format=` asks for one, else the rendered page.
async fn table_page(
    req: &Request,
    user: &SignedIn,
    table: Table,
    render: impl FnOnce(&Table) -> (&'static str, &'static str, Markup),
) -> Page {
    if let Some(r) = download(req, user, &table).await? {
        return Ok(r);
    }
    let (title, path, body) = render(&table);
    Ok(show(user, title, path, body, 200)?)
}

/// Developers per page of the Developers list.
pub const DEVELOPERS_PER_PAGE: usize = 50;

type GroupColumn = Column<GroupTotals, Zone>;
const REQUESTS: GroupColumn = ("requests", |r, _| r.requests.to_string());
const INPUT: GroupColumn = ("input", |r, _| r.input_tokens.to_string());
const OUTPUT: GroupColumn = ("output", |r, _| r.output_tokens.to_string());
const CACHE_READ: GroupColumn = ("cache read", |r, _| r.cache_read_tokens.to_string());
const COST: GroupColumn = ("cost", |r, _| usd(r.cost()));
const LAST_ACTIVE: GroupColumn = ("last active", |r, z| {
    z.date(z.local_day(r.last_quarter * QUARTER_MS))
});

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Totals per model; the models page adds each model's cache hit rate.
pub fn models_table(rows: &[ModelTotals], hit_rate: bool) -> Table {
    let mut columns: Vec<Column<ModelTotals, ()>> = vec![
        ("model", |m, _| m.model.clone()),
        ("requests", |m, _| m.requests.to_string()),
        ("input", |m, _| m.input_tokens.to_string()),
        ("output", |m, _| m.output_tokens.to_string()),
        ("cache write 5m", |m, _| m.cache_write_5m_tokens.to_string()),
        ("cache write 1h", |m, _| m.cache_write_1h_tokens.to_string()),
        ("cache read", |m, _| m.cache_read_tokens.to_string()),
    ];
    if hit_rate {
        columns.push(("cache hit rate", |m, _| {
            percent(m.cache_read_tokens, prompt_tokens(m))
        }));
    }
    columns.push(("cost", |m, _| usd(m.cost())));
    columns.push(("unpriced requests", |m, _| m.unpriced_requests.to_string()));
    Table::of("models", &columns, rows, &()).show(
        rows,
        &(),
        &[
            ("requests", |m, _| count_cell(m.requests)),
            ("input", |m, _| tokens_cell(m.input_tokens)),
            ("output", |m, _| tokens_cell(m.output_tokens)),
            ("cache write 5m", |m, _| {
                tokens_cell(m.cache_write_5m_tokens)
            }),
            ("cache write 1h", |m, _| {
                tokens_cell(m.cache_write_1h_tokens)
            }),
            ("cache read", |m, _| tokens_cell(m.cache_read_tokens)),
            ("cost", |m, _| money_cell(m.cost())),
            ("unpriced requests", |m, _| count_cell(m.unpriced_requests)),
        ],
    )
}

/// The page shows a group's figures compactly, exact on hover.
const GROUP_SHOWN: [Shown<GroupTotals, Zone>; 5] = [
    ("requests", |r, _| count_cell(r.requests)),
    ("input", |r, _| tokens_cell(r.input_tokens)),
    ("output", |r, _| tokens_cell(r.output_tokens)),
    ("cache read", |r, _| tokens_cell(r.cache_read_tokens)),
    ("cost", |r, _| money_cell(r.cost())),
];

fn categorizing(mode: PrivacyMode) -> bool {
    matches!(
        mode,
        PrivacyMode::CategorizeLocal | PrivacyMode::CategorizeCloud
    )
}

/// The developers table's context: the zone for dates, and each
/// developer's seat and actual spend over the range.
struct DevCtx {
    zone: Zone,
    spend: Vec<DeveloperSpend>,
}

impl DevCtx {
    fn of(&self, r: &GroupTotals) -> Option<&DeveloperSpend> {
        self.spend.iter().find(|s| s.developer_id == r.key)
    }
}

pub async fn developers(req: Request, env: Env) -> Page {
    let user = SignedIn::for_page(&req, &env).await?;
    let View { zone, range, .. } = View::of(&req, &user).await?;
    let (fh, th) = range.quarters();
    let mut rows = user.db.by_developer(fh, th).await?;
    let spend = user.db.developer_spend_of(&range, &rows).await?;
    // Seat holders cost their seat in a range without usage too.
    for s in &spend {
        if !rows.iter().any(|r| r.key == s.developer_id) {
            rows.push(GroupTotals {
                key: s.developer_id.clone(),
                label: s.name.clone(),
                requests: 0,
                input_tokens: 0,
                output_tokens: 0,
                cache_write_tokens: 0,
                cache_read_tokens: 0,
                cost_micro_usd: 0,
                cost_pico_usd: 0,
                last_quarter: 0,
            });
        }
    }
    let ctx = DevCtx { zone, spend };
    let t = Table::of::<GroupTotals, DevCtx>(
        "developers",
        &[
            ("developer", |r, _| r.label.clone()),
            ("requests", |r, _| r.requests.to_string()),
            ("input", |r, _| r.input_tokens.to_string()),
            ("output", |r, _| r.output_tokens.to_string()),
            ("cache write", |r, _| r.cache_write_tokens.to_string()),
            ("cache read", |r, _| r.cache_read_tokens.to_string()),
            ("cost", |r, _| usd(r.cost())),
            ("last active", |r, c| {
                if r.requests == 0 {
                    "—".into()
                } else {
                    c.zone.date(c.zone.local_day(r.last_quarter * QUARTER_MS))
                }
            }),
            ("plan", |r, c| {
                c.of(r)
                    .map(|s| s.plan)
                    .unwrap_or(SeatPlan::Api)
                    .label()
                    .into()
            }),
            ("seat per month", |r, c| match c.of(r) {
                Some(s) if s.plan != SeatPlan::Api => usd(s.seat_monthly),
                _ => "—".into(),
            }),
            ("actual", |r, c| {
                usd(c.of(r).map(|s| s.actual).unwrap_or(r.cost()))
            }),
            ("value multiple", |r, c| {
                match c.of(r).and_then(|s| s.value_multiple_tenths) {
                    Some(t) => format!("{}.{}×", t / 10, t % 10),
                    None => "—".into(),
                }
            }),
        ],
        &rows,
        &ctx,
    )
    .show(
        &rows,
        &ctx,
        &[
            ("requests", |r, _| count_cell(r.requests)),
            ("input", |r, _| tokens_cell(r.input_tokens)),
            ("output", |r, _| tokens_cell(r.output_tokens)),
            ("cache write", |r, _| tokens_cell(r.cache_write_tokens)),
            ("cache read", |r, _| tokens_cell(r.cache_read_tokens)),
            ("cost", |r, _| money_cell(r.cost())),
            ("seat per month", |r, c| match c.of(r) {
                Some(s) if s.plan != SeatPlan::Api => money_cell(s.seat_monthly),
                _ => Cell::text("—"),
            }),
            ("actual", |r, c| {
                money_cell(c.of(r).map(|s| s.actual).unwrap_or(r.cost()))
            }),
        ],
    )
    .link("developer", &rows, |r| {
        Some(super::drill::href("/developers", &r.key, &range))
    })
    .listed(
        format!("/developers?{}", range.query()),
        &query(&req),
        DEVELOPERS_PER_PAGE,
    );
    let zone = ctx.zone;
    let admin = user.can(Role::Admin);
    let devs = if admin {
        user.db.developer_list().await?
    } else {
        vec![]
    };
    let agents = if admin {
        user.db.agents().await?
    } else {
        vec![]
    };
    let min_version = crate::util::config(&env, crate::bindings::MIN_AGENT_VERSION);
    let csrf = &user.principal.csrf_token;
    let q = query(&req);
    table_page(&req, &user, t, |t| {
        let body = html! {
            h1 { "Developers" }
            @if let Some(s) = q.get("saved") {
                p.ok data-testid="saved" { "Saved: " (s) }
            }
            @if let Some(s) = q.get("error") {
                p.error data-testid="seat-error" { (s) }
            }
            (range_form(&range, "/developers"))
            (table(t))
            p.note {
                "cost is the API-equivalent (every token at list price); actual is what the team pays: the cost for API developers, the seat price prorated to the range for seat holders (monthly price × days of the range in each month ÷ days in that month). The value multiple is API-equivalent ÷ prorated seat price."
            }
            @if admin && !devs.is_empty() {
                (super::people::seat_form(csrf, &devs))
                (super::people::content_viewed(&devs, &zone))
            }
            @if !agents.is_empty() {
                (agent_health(&agents, min_version.as_deref()))
            }
        };
        ("Developers", "/developers", body)
    })
    .await
}

/// Admins: what each agent reports about itself and how often the edge's
/// price differed from the agent's, so a stale price table shows.
/// Agents below the server's minimum version are flagged: `tally update`
/// (or the install line) brings them to the current release.
fn agent_health(agents: &[AgentRow], min_version: Option<&str>) -> Markup {
    let outdated = |v: Option<&str>| match (v, min_version) {
        (Some(v), Some(min)) => !tally_core::release::version_at_least(v, min),
        _ => false,
    };
    html! {
        h2 { "Agents" }
        div.scroll {
            table data-testid="table-agents" {
                thead { tr { th { "developer" } th { "host" } th { "version" } th { "pricing" } th { "quarantined" } th { "status" } } }
                tbody {
                    @for a in agents {
                        tr data-testid=(format!("agent-{}", a.id)) {
                            td { (a.developer_name) }
                            td { (a.hostname.as_deref().unwrap_or("—")) }
                            td data-testid="agent-version" {
                                (a.agent_version.as_deref().unwrap_or("unknown"))
                                @if let (true, Some(min)) = (outdated(a.agent_version.as_deref()), min_version) {
                                    " " span.chip.outdated data-testid="agent-outdated" title="tally update brings it to the current release" {
                                        "outdated (minimum " (min) ")"
                                    }
                                }
                            }
                            td data-testid="agent-priced-differently" {
                                (a.priced_differently) " events priced differently by this agent"
                            }
                            td data-testid="agent-quarantined" {
                                (a.quarantined) " quarantined events reported"
                            }
                            td { @if a.revoked_at.is_some() { "revoked" } @else { "active" } }
                        }
                    }
                }
            }
        }
    }
}

pub async fn projects(req: Request, env: Env) -> Page {
    let user = SignedIn::for_page(&req, &env).await?;
    let View { team, zone, range } = View::of(&req, &user).await?;
    let (fh, th) = range.quarters();
    let rows = user.db.by_project(fh, th).await?;
    let hints = if categorizing(team.mode()) {
        let (fd, td) = range.utc_days();
        user.db.category_hints(fd, td).await?
    } else {
        vec![]
    };
    let t = Table::of::<GroupTotals, Zone>(
        "projects",
        &[
            ("project (keyed hash)", |r, _| r.key.clone()),
            ("label", |r, _| r.label.clone()),
            REQUESTS,
            INPUT,
            OUTPUT,
            CACHE_READ,
            COST,
            LAST_ACTIVE,
        ],
        &rows,
        &zone,
    )
    .show(&rows, &zone, &GROUP_SHOWN)
    .link("project (keyed hash)", &rows, |r| {
        Some(super::drill::href("/projects", &r.key, &range))
    })
    .listed(format!("/projects?{}", range.query()), &query(&req), 0);
    let mut project_hints: Vec<&str> = hints
        .iter()
        .map(|h| h.project_hint.as_str())
        .filter(|h| !h.is_empty())
        .collect();
    project_hints.sort();
    project_hints.dedup();
    let admin = user.can(Role::Admin);
    let csrf = &user.principal.csrf_token;
    let back = format!("/projects?{}", range.query());
    // Renamed in its own row: the form carries the hash, people type a name.
    let rename = |i: usize| {
        let r = &rows[i];
        let id = format!("label-{}", &r.key[..r.key.len().min(16)]);
        html! {
            form.rename method="post" action="/projects/label" data-testid="rename-project" {
                (csrf_field(csrf))
                input type="hidden" name="project" value=(r.key);
                input type="hidden" name="back" value=(back);
                label.sr-only for=(id) { "Name of project " (&r.key[..r.key.len().min(12)]) }
                input #(id) name="label" maxlength="80" required value=(r.label) placeholder="Name this project" data-testid="project-label";
                " "
                button data-testid="save-project-label" { "Save" }
            }
        }
    };
    table_page(&req, &user, t, |t| {
        let body = html! {
            h1 { "Projects" }
            p { "Projects are identified by a keyed hash of the working directory; admins can give them names." }
            (range_form(&range, "/projects"))
            @if admin {
                (table_with(t, Some(("name", &rename))))
            } @else {
                (table(t))
            }
            @if !hints.is_empty() {
                h2 { "Project hints (from categorization)" }
                p { (project_hints.join(" · ")) }
            }
        };
        ("Projects", "/projects", body)
    })
    .await
}

/// `POST /projects/label`: names a project hash for everyone in the team.
pub async fn label_project(req: Request, env: Env) -> Page {
    let form = AdminForm::read(req, &env, Role::Admin).await?;
    let (project, label) = (form.trimmed("project"), form.trimmed("label"));
    if !actions::valid_project_label(project, label) {
        return Ok(error_page(
            &form.user,
            "Projects",
            "/projects",
            "A project hash is 64 hex characters and a label 1–80 characters.",
            400,
        )?);
    }
    actions::label_project(&form.user, project, label).await?;
    // Back to the list the row was renamed in (same range), never elsewhere.
    let back = form.raw("back");
    let to = if back.starts_with("/projects?") && !back.contains(['\r', '\n']) {
        back
    } else {
        "/projects"
    };
    Ok(redirect(to)?)
}

pub async fn sessions(req: Request, env: Env) -> Page {
    let user = SignedIn::for_page(&req, &env).await?;
    let View { zone, range, .. } = View::of(&req, &user).await?;
    let q = query(&req);
    let by_duration = q.get("sort").is_some_and(|s| s == "duration");
    let filter = |k: &str| q.get(k).map(|v| v.trim().to_string()).unwrap_or_default();
    let (developer, project) = (filter("developer"), filter("project"));
    let (f, t) = range.ms();
    let rows = user
        .db
        .sessions_in(f, t, by_duration, &developer, &project)
        .await?;
    // Sort links and drill-downs keep the range and the other filters.
    let mut kept = range.query();
    if !developer.is_empty() {
        kept.push_str(&format!("&developer={}", enc(&developer)));
    }
    if !project.is_empty() {
        kept.push_str(&format!("&project={}", enc(&project)));
    }
    let filtered_by = match (developer.is_empty(), project.is_empty()) {
        (false, _) => Some(format!(
            "developer {}",
            rows.first()
                .map_or(developer.as_str(), |r| r.developer.as_str())
        )),
        (true, false) => Some(format!(
            "project {}",
            project.chars().take(16).collect::<String>()
        )),
        _ => None,
    };
    // Owners and admins may read stored content; viewers see numbers only.
    let with_content = if user.can(Role::Admin) {
        let ids: Vec<String> = rows.iter().map(|r| r.session.clone()).collect();
        user.db.sessions_with_content(&ids).await?
    } else {
        vec![]
    };
    let t = session_table(&rows, &zone, &range).listed(
        format!("/sessions?{kept}"),
        &q,
        SESSIONS_PER_PAGE,
    );
    table_page(&req, &user, t, |t| {
        let body = html! {
            h1 { "Sessions" }
            (range_form_keeping(&range, "/sessions", &[("developer", developer.as_str()), ("project", project.as_str())].into_iter().filter(|(_, v)| !v.is_empty()).collect::<Vec<_>>()))
            @if let Some(f) = &filtered_by {
                p data-testid="sessions-filter" {
                    "Only sessions of " (f) ". "
                    a href=(format!("/sessions?{}", range.query())) { "Show all sessions" }
                }
            }
            p {
                "Sorted by " (if by_duration { "duration" } else { "cost" }) ". "
                a href=(format!("/sessions?{kept}&sort=cost")) data-testid="sort-cost" { "Most expensive" }
                " · "
                a href=(format!("/sessions?{kept}&sort=duration")) data-testid="sort-duration" { "Longest" }
            }
            (sessions_table(t, &rows))
            @if !with_content.is_empty() {
                h2 { "Timelines" }
                p { "Sessions captured in Full mode, request by request:" }
                ul data-testid="timelines" {
                    @for s in &with_content {
                        li { a href=(format!("/sessions/{s}")) data-testid="timeline-link" { (s.chars().take(16).collect::<String>()) } }
                    }
                }
            }
        };
        ("Sessions", "/sessions", body)
    })
    .await
}

/// Sessions per page of a list.
pub const SESSIONS_PER_PAGE: usize = 50;

/// Sessions with drill-downs: the developer to their page, the session to
/// its page (its requests; the timeline where Full content exists).
pub fn session_table(
    rows: &[SessionRowOut],
    zone: &Zone,
    range: &crate::web::range::Range,
) -> Table {
    Table::of::<SessionRowOut, Zone>(
        "sessions",
        &[
            // A prefix is enough to tell a team's sessions apart.
            ("session (keyed hash)", |r, _| {
                r.session.chars().take(16).collect()
            }),
            ("developer", |r, _| r.developer.clone()),
            ("agent", |r, _| r.agent.clone()),
            ("start", |r, z| z.time(r.start_ms)),
            ("duration", |r, _| duration(r.end_ms - r.start_ms)),
            ("requests", |r, _| r.requests.to_string()),
            ("cost", |r, _| usd(r.cost())),
            ("modes", |r, _| mode_names(r.modes)),
        ],
        rows,
        zone,
    )
    .show(
        rows,
        zone,
        &[
            ("agent", |r, _| {
                Cell::text(crate::web::format::agent_of(&r.agent))
            }),
            ("requests", |r, _| count_cell(r.requests)),
            ("cost", |r, _| money_cell(r.cost())),
        ],
    )
    .link("developer", rows, |r| {
        Some(super::drill::href("/developers", &r.developer_id, range))
    })
    .link("session (keyed hash)", rows, |r| {
        Some(format!("/sessions/{}/summary?{}", r.session, range.query()))
    })
}

/// The modes column of a download: wire names, space-separated.
pub fn mode_names(bits: i64) -> String {
    tally_core::rollup::modes_of(u8::try_from(bits & 0xff).unwrap_or(0))
        .iter()
        .map(|m| m.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The sessions table with its last column (`modes`) as chips.
pub fn sessions_table(t: &Table, rows: &[SessionRowOut]) -> Markup {
    let last = t.columns.len().saturating_sub(1);
    html! {
        // Focusable, so keyboard users can scroll a wide table sideways.
        div.scroll tabindex="0" role="region" aria-label=(format!("{} table", t.name)) {
            table data-testid=(format!("table-{}", t.name)) {
                (super::layout::thead(t, None))
                tbody {
                    @for &i in t.visible() {
                        tr data-testid="session-row" data-session=(rows[i].session) {
                            @for (cell, c) in t.shown[i][..last].iter().zip(&t.columns) { (td(cell, c)) }
                            td data-label="modes" { (mode_chips(rows[i].modes)) }
                        }
                    }
                    @if t.rows.is_empty() {
                        tr { td colspan=(t.columns.len()) { "No data in this range." } }
                    }
                }
            }
        }
        (super::layout::pager(t))
    }
}

pub async fn models(req: Request, env: Env) -> Page {
    let user = SignedIn::for_page(&req, &env).await?;
    let View { range, .. } = View::of(&req, &user).await?;
    let (fh, th) = range.quarters();
    let rows = user.db.totals_by_model(fh, th).await?;
    let t = models_table(&rows, true)
        .link("model", &rows, |m| {
            Some(super::drill::href("/models", &m.model, &range))
        })
        .listed(format!("/models?{}", range.query()), &query(&req), 0);
    table_page(&req, &user, t, |t| {
        let body = html! {
            h1 { "Models" }
            (range_form(&range, "/models"))
            (table(t))
            p { "Unpriced requests use a model without a known price; they are never counted as $0." }
        };
        ("Models", "/models", body)
    })
    .await
}

/// Requests per category, largest first (ties by name).
fn distribution<'a>(rows: impl Iterator<Item = (&'a str, i64)>) -> Vec<(&'a str, i64)> {
    let mut dist: Vec<(&str, i64)> = Vec::new();
    for (category, requests) in rows {
        match dist.iter_mut().find(|(c, _)| *c == category) {
            Some(e) => e.1 += requests,
            None => dist.push((category, requests)),
        }
    }
    dist.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    dist
}

/// The budget exactly, with at least cents: "5.00", "0.001", "0.125".
pub fn budget_dollars(micro: i64) -> String {
    let mut s = tally_core::money::Usd::from_parts(micro, 0).decimal(6);
    while s.ends_with('0') && s.len() - s.find('.').unwrap_or(0) > 3 {
        s.pop();
    }
    s
}

/// The Settings section for the categorize-cloud spend cap.
pub fn categorize_budget_form(limits: &CategorizeLimits, csrf: &str, read_only: bool) -> Markup {
    let dollars = budget_dollars(limits.budget_micro_usd);
    html! {
        h2 { "Categorize-cloud spend cap" }
        form method="post" action="/settings/categorize-budget" class="box" data-testid="categorize-budget-form" {
            (csrf_field(csrf))
            label { "Daily budget (USD) " input name="daily_budget_usd" value=(dollars) inputmode="decimal" data-testid="categorize-budget" disabled[read_only]; }
            label { " Calls per minute " input type="number" name="per_minute" min="0" max="10000" value=(limits.per_minute) data-testid="categorize-per-minute" disabled[read_only]; }
            " "
            button data-testid="save-categorize-budget" disabled[read_only] { "Save spend cap" }
            " "
            small { "Beyond either, events are still accepted, uncategorized; the Categories page counts them." }
        }
    }
}

pub async fn save_categorize_budget(req: Request, env: Env) -> Page {
    let form = AdminForm::read(req, &env, Role::Admin).await?;
    let budget = actions::parse_dollars_micro(form.trimmed("daily_budget_usd"));
    let per_minute = form.trimmed("per_minute").parse::<i64>().ok();
    match (budget, per_minute) {
        (Some(b), Some(pm)) if actions::valid_categorize_per_minute(pm) => {
            actions::change_categorize_limits(&form.user, b, pm).await?;
            Ok(redirect("/settings?saved=categorize+spend+cap")?)
        }
        _ => Ok(redirect(
            "/settings?error=Spend+cap:+a+dollar+amount+(at+most+6+decimals)+and+0-10000+calls+per+minute",
        )?),
    }
}

pub async fn categories(req: Request, env: Env) -> Page {
    let user = SignedIn::for_page(&req, &env).await?;
    let View { team, range, .. } = View::of(&req, &user).await?;
    let (fd, td) = range.utc_days();
    let rows = user.db.category_hints(fd, td).await?;
    let capped = user.db.categorize_capped(fd, td).await?;
    let dist = distribution(rows.iter().map(|r| (r.category.as_str(), r.requests)));
    let total: i64 = dist.iter().map(|d| d.1).sum();
    let t = Table::of::<CategoryRow, ()>(
        "categories",
        &[
            ("category", |r, _| r.category.clone()),
            ("task hint", |r, _| r.task_hint.clone()),
            ("project hint", |r, _| r.project_hint.clone()),
            ("requests", |r, _| r.requests.to_string()),
        ],
        &rows,
        &(),
    )
    .show(
        &rows,
        &(),
        &[
            ("category", |r, _| Cell::text(category_of(&r.category))),
            ("requests", |r, _| count_cell(r.requests)),
        ],
    );
    let collecting = categorizing(team.mode());
    table_page(&req, &user, t, |t| {
        let body = html! {
            h1 { "Categories" }
            @if !collecting {
                p { "Categories are collected only in the Categorize modes (see Settings). Earlier data is shown below." }
            }
            (range_form(&range, "/categories"))
            @if capped > 0 {
                p.error data-testid="categorize-capped" {
                    (crate::web::format::count(capped)) " events in this range were left uncategorized because the categorize-cloud spend cap (daily budget or calls per minute, see Settings) was reached."
                }
            }
            div.cards {
                @for (category, n) in &dist {
                    div.card { (category_of(category)) b { (crate::web::format::count(*n)) } (percent(*n, total)) }
                }
            }
            (table(t))
        };
        ("Categories", "/categories", body)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_show_exactly_with_at_least_cents() {
        assert_eq!(budget_dollars(5_000_000), "5.00");
        assert_eq!(budget_dollars(1_000), "0.001");
        assert_eq!(budget_dollars(125_000), "0.125");
        assert_eq!(budget_dollars(1), "0.000001");
        assert_eq!(budget_dollars(0), "0.00");
    }

    #[test]
    fn categories_are_summed_and_ordered_by_requests_then_name() {
        let d =
            distribution([("tests", 5), ("docs", 5), ("bug_fix", 3), ("bug_fix", 3)].into_iter());
        assert_eq!(d, [("bug_fix", 6), ("docs", 5), ("tests", 5)]);
    }
}
