//! `GET /`: spend, tokens and caching at a glance, and cost per model per day.

use maud::{html, Markup};
use serde::Serialize;
use tally_core::money::Usd;
use worker::{Env, Request};

use super::layout::{percent, range_form, show, table};
use super::usage::models_table;
use super::{download, Page, View};
use crate::util::query;
use crate::vocab::Role;
use crate::web::auth::SignedIn;
use crate::web::format::{
    change, count_cell, mode_long_name, money_cell, role_name, tokens_cell, Cell,
};

use crate::web::range::Range;
use crate::web::stats::{self, prompt_tokens, DayCost};

/// What `static/chart.js` draws: one series of dollars per model, one
/// point per local day (x in seconds, as uPlot expects).
#[derive(Debug, Serialize, PartialEq)]
pub struct Chart {
    pub x: Vec<i64>,
    pub models: Vec<String>,
    pub series: Vec<Vec<f64>>,
}

pub fn chart(daily: &[DayCost], range: &Range) -> Chart {
    // Summed once per (model, day): a year is hundreds of days per model.
    let mut by: std::collections::BTreeMap<(&str, i64), Usd> = Default::default();
    for d in daily {
        *by.entry((d.model.as_str(), d.day)).or_insert(Usd::ZERO) += d.cost;
    }
    let mut models: Vec<String> = daily.iter().map(|d| d.model.clone()).collect();
    models.sort();
    models.dedup();
    let days: Vec<i64> = (range.from_day..=range.to_day).collect();
    let series = models
        .iter()
        .map(|m| {
            days.iter()
                .map(|day| {
                    by.get(&(m.as_str(), *day))
                        .copied()
                        .unwrap_or(Usd::ZERO)
                        .pico() as f64
                        / 1e12
                })
                .collect()
        })
        .collect();
    Chart {
        x: days.iter().map(|d| d * 86_400).collect(),
        models,
        series,
    }
}

/// Where a team without data stands on the way to its first events.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct FirstRun {
    pub token_created: bool,
    pub agent_enrolled: bool,
    pub events_arrived: bool,
}

/// The team's progress through the checklist: a token exists once a
/// developer does, an agent once one enrolled, events once an agent uploaded.
pub async fn first_run(db: &crate::db::TeamDb) -> worker::Result<FirstRun> {
    let agents = db.agents().await?;
    let token_created = !agents.is_empty() || !db.developer_list().await?.is_empty();
    Ok(FirstRun {
        token_created,
        agent_enrolled: !agents.is_empty(),
        events_arrived: agents.iter().any(|a| a.last_seen_at.is_some()),
    })
}

/// The three steps from an empty team to its first numbers; done steps are
/// ticked, so the list says what to do next. Viewers cannot create tokens:
/// they are told who can.
pub fn checklist(steps: &FirstRun, admin: bool) -> Markup {
    let step = |done: bool, testid: &str, body: Markup| {
        html! {
            li class=(if done { "done" } else { "todo" }) data-testid=(testid) data-done=(done) {
                span.tick aria-hidden="true" { (if done { "✓" } else { "○" }) }
                " " (body)
                @if done { span.sr-only { " (done)" } }
            }
        }
    };
    html! {
        section.box.firstrun data-testid="first-run" aria-labelledby="first-run-title" {
            h2 #first-run-title { "Get your first numbers in three steps" }
            ol {
                (step(steps.token_created, "step-token", html! {
                    @if admin { a href="/tokens" { "Create an install token" } } @else { "An admin creates an install token" }
                    " for a developer on the Install tokens page."
                }))
                (step(steps.agent_enrolled, "step-command", html! {
                    "The developer runs the one-line install command it shows (it downloads "
                    code { "tally" } ", checks it and enrols it)."
                }))
                (step(steps.events_arrived, "step-events", html! {
                    span data-testid="events-waiting" { "Their first agent session arrives here within a minute or so of use; this list updates by itself." }
                    span data-testid="events-arrived" hidden { "First events arrived. " a href="/" { "Show the numbers" } }
                }))
            }
            p.sr-only aria-live="polite" data-testid="first-run-status" {}
        }
        script src="/static/firstrun.js" {}
    }
}

/// The selected range's spend against the same number of days just before.
fn compared(o: &stats::Overview, range: &Range) -> Markup {
    let (direction, text) = change(o.spend_range, o.spend_previous);
    let prev = money_cell(o.spend_previous);
    html! {
        p.box.compare data-testid="spend-compare" {
            "Spend in the selected " (range.days_len()) (if range.days_len() == 1 { " day" } else { " days" }) ": "
            b data-testid="spend-change" data-direction=(direction.as_str()) class=(format!("trend-{}", direction.as_str())) { (text) }
            " against the previous " (range.days_len()) (if range.days_len() == 1 { " day" } else { " days" })
            " (" (o.previous_from) " to " (o.previous_to) ": "
            span data-testid="spend-previous" title=[prev.title] { (prev.text) } ")."
        }
    }
}

pub async fn page(req: Request, env: Env) -> Page {
    let user = SignedIn::for_page(&req, &env).await?;
    let View { team, zone, range } = View::of(&req, &user).await?;
    // An export is the models table alone: skip the cards and the chart.
    if query(&req).contains_key("format") {
        let (fh, th) = range.quarters();
        let models = models_table(&user.db.totals_by_model(fh, th).await?, false);
        if let Some(r) = download(&req, &user, &models).await? {
            return Ok(r);
        }
    }
    let (o, daily) = stats::overview(&user.db, &team, &range, &zone).await?;
    let month = tally_core::budget::Month::of_day(zone.local_day(crate::util::now_ms()));
    let alerts = user.db.open_alerts(&month.label()).await?;
    // The table follows the selected range, as the cards above it do.
    let models = models_table(&o.models_range, false).link("model", &o.models_range, |m| {
        Some(super::drill::href("/models", &m.model, &range))
    });
    let broken = user.db.integrations().await?;
    let t = &o.totals_range;
    let card = |label: &str, testid: &str, value: Cell| {
        html! { div.card { (label) b data-testid=(testid) title=[value.title] { (value.text) } } }
    };
    let first_run = Some(first_run(&user.db).await?).filter(|s| !s.events_arrived);
    let chart_data = serde_json::to_string(&chart(&daily, &range))
        .map_err(|e| worker::Error::RustError(format!("chart data: {e}")))?;
    let body = html! {
        h1 { "Overview" }
        (super::budgets::banner(&user, &alerts))
        (super::settings::deletion_banner(&user, &team, &zone))
        (super::integrations::broken_banner(&broken))
        p {
            "Signed in as " (user.principal.email) " (" (role_name(user.principal.role)) "). Privacy mode: "
            b data-testid="mode" data-mode=(o.privacy_mode.as_str()) { (mode_long_name(o.privacy_mode)) }
        }
        @if let Some(steps) = &first_run { (checklist(steps, user.can(Role::Admin))) }
        (range_form(&range, "/"))
        div.cards {
            (card("Today", "spend-today", money_cell(o.spend_today)))
            (card("7 days", "spend-7d", money_cell(o.spend_7d)))
            (card("30 days", "spend-30d", money_cell(o.spend_30d)))
            (card("Selected range, API-equivalent", "spend-range", money_cell(o.spend_range)))
            (card("Selected range, actual", "spend-actual", money_cell(o.actual_range)))
            (card("Active developers", "active-developers", count_cell(o.active_developers as i64)))
        }
        (compared(&o, &range))
        p.note { "API-equivalent prices every token at list price; actual counts API developers' tokens plus subscription seats prorated to the range (set seats on the Developers page)." }
        h2 { "Tokens (selected range)" }
        div.cards {
            (card("Input", "tokens-input", tokens_cell(t.input_tokens)))
            (card("Output", "tokens-output", tokens_cell(t.output_tokens)))
            (card("Cache write", "tokens-cache-write", tokens_cell(t.cache_write_5m_tokens + t.cache_write_1h_tokens)))
            (card("Cache read", "tokens-cache-read", tokens_cell(t.cache_read_tokens)))
            (card("Cache hit rate", "cache-hit-rate", Cell::text(percent(t.cache_read_tokens, prompt_tokens(t)))))
            (card("Saved by caching", "cache-saved", money_cell(o.cache_saved)))
        }
        h2 { "Cost over time by model" }
        div #chart .box data-chart=(chart_data) {}
        script src="/static/uplot.js" {}
        script src="/static/chart.js" {}
        h2 { "By model (selected range)" }
        (table(&models))
    };
    Ok(show(&user, "Overview", "/", body, 200)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::Zone;

    #[test]
    fn chart_has_a_point_per_day_and_a_series_per_model() {
        let range = Range::days(10, 12, &Zone::new("UTC"));
        let cost = |day, model: &str, c: u128| DayCost {
            day,
            model: model.into(),
            cost: Usd::from_pico(c * 1_000_000),
        };
        let c = chart(
            &[
                cost(10, "opus", 1_500_000),
                cost(12, "haiku", 20_000),
                cost(12, "opus", 10),
            ],
            &range,
        );
        assert_eq!(c.x, [864_000, 950_400, 1_036_800]);
        assert_eq!(c.models, ["haiku", "opus"]);
        assert_eq!(c.series, [vec![0.0, 0.0, 0.02], vec![1.5, 0.0, 0.00001]]);
    }
}
