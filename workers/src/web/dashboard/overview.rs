//! `GET /`: spend, tokens and caching at a glance, and cost per model per day.

use maud::html;
use serde::Serialize;
use tally_core::money::Usd;
use worker::{Env, Request};

use super::layout::{percent, range_form, show_as, table, usd};
use super::usage::models_table;
use super::{download, Page, View};
use crate::vocab::Role;
use crate::web::auth::SignedIn;

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
    let mut models: Vec<String> = daily.iter().map(|d| d.model.clone()).collect();
    models.sort();
    models.dedup();
    let days: Vec<i64> = (range.from_day..=range.to_day).collect();
    let series = models
        .iter()
        .map(|m| {
            days.iter()
                .map(|day| {
                    daily
                        .iter()
                        .filter(|d| d.day == *day && &d.model == m)
                        .map(|d| d.cost)
                        .sum::<Usd>()
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

pub async fn page(req: Request, env: Env) -> Page {
    let user = SignedIn::for_page(&req, &env).await?;
    let View { team, zone, range } = View::of(&req, &user).await?;
    let (o, daily) = stats::overview(&user.db, &team, &range, &zone).await?;
    let month = tally_core::budget::Month::of_day(zone.local_day(crate::util::now_ms()));
    let alerts = user.db.open_alerts(&month.label()).await?;
    let models = models_table(&o.models_30d, false);
    if let Some(r) = download(&req, &user, &models).await? {
        return Ok(r);
    }
    let broken = user.db.integrations().await?;
    let t = &o.totals_range;
    let card = |label: &str, testid: &str, value: String| {
        html! { div.card { (label) b data-testid=(testid) { (value) } } }
    };
    let chart_data = serde_json::to_string(&chart(&daily, &range))
        .map_err(|e| worker::Error::RustError(format!("chart data: {e}")))?;
    let body = html! {
        h1 { "Overview" }
        (super::budgets::banner(&user, &alerts))
        (super::settings::deletion_banner(&user, &team, &zone))
        (super::integrations::broken_banner(&broken))
        p {
            "Signed in as " (user.principal.email) " (" (user.principal.role.as_str()) "). Privacy mode: "
            b data-testid="mode" { (o.privacy_mode.as_str()) }
        }
        (range_form(&range, "/"))
        div.cards {
            (card("Today", "spend-today", usd(o.spend_today)))
            (card("7 days", "spend-7d", usd(o.spend_7d)))
            (card("30 days", "spend-30d", usd(o.spend_30d)))
            (card("Selected range, API-equivalent", "spend-range", usd(o.spend_range)))
            (card("Selected range, actual", "spend-actual", usd(o.actual_range)))
            (card("Active developers", "active-developers", o.active_developers.to_string()))
        }
        p.note { "API-equivalent prices every token at list price; actual counts API developers' tokens plus subscription seats prorated to the range (set seats on the Developers page)." }
        h2 { "Tokens (selected range)" }
        div.cards {
            (card("Input", "tokens-input", t.input_tokens.to_string()))
            (card("Output", "tokens-output", t.output_tokens.to_string()))
            (card("Cache write", "tokens-cache-write", (t.cache_write_5m_tokens + t.cache_write_1h_tokens).to_string()))
            (card("Cache read", "tokens-cache-read", t.cache_read_tokens.to_string()))
            (card("Cache hit rate", "cache-hit-rate", percent(t.cache_read_tokens, prompt_tokens(t))))
            (card("Saved by caching", "cache-saved", usd(o.cache_saved)))
        }
        h2 { "Cost over time by model" }
        div #chart .box data-chart=(chart_data) {}
        script src="/static/uplot.js" {}
        script src="/static/chart.js" {}
        h2 { "By model (last 30 days)" }
        (table(&models))
    };
    Ok(show_as(user.can(Role::Admin), "Overview", "/", body, 200)?)
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
