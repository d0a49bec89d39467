//! Figures computed from the stored aggregates, shared by the overview page
//! and `GET /api/overview` so both always show the same numbers.

use serde::Serialize;
use tally_core::event::PrivacyMode;
use tally_core::money::Usd;
use tally_core::pricing::{default_table, price_request, Priced};
use tally_core::usage::TokenUsage;
use worker::Result;

use super::range::Range;
use crate::db::{DayModelCost, ModelTotals, TeamDb, TeamSettings};
use crate::util::now_ms;
use crate::zone::Zone;

/// The wire shape of `GET /api/overview`.
#[derive(Serialize)]
pub struct Overview {
    pub team_id: String,
    pub privacy_mode: PrivacyMode,
    pub from: String,
    pub to: String,
    pub timezone: String,
    /// Exact amounts as decimal strings of dollars (12 places: every
    /// pico-dollar); round only to display.
    #[serde(
        rename = "spend_today_usd",
        serialize_with = "tally_core::money::as_decimal"
    )]
    pub spend_today: Usd,
    #[serde(
        rename = "spend_7d_usd",
        serialize_with = "tally_core::money::as_decimal"
    )]
    pub spend_7d: Usd,
    #[serde(
        rename = "spend_30d_usd",
        serialize_with = "tally_core::money::as_decimal"
    )]
    pub spend_30d: Usd,
    #[serde(
        rename = "spend_range_usd",
        serialize_with = "tally_core::money::as_decimal"
    )]
    pub spend_range: Usd,
    /// The API-equivalent spend of the same number of days just before the
    /// range (`Range::previous`).
    #[serde(
        rename = "spend_previous_usd",
        serialize_with = "tally_core::money::as_decimal"
    )]
    pub spend_previous: Usd,
    pub previous_from: String,
    pub previous_to: String,
    /// What the team pays over the range: API developers' token cost plus
    /// seat holders' prorated seat prices (`TeamDb::developer_spend`);
    /// `spend_range_usd` is the API-equivalent.
    #[serde(
        rename = "actual_range_usd",
        serialize_with = "tally_core::money::as_decimal"
    )]
    pub actual_range: Usd,
    #[serde(
        rename = "cache_saved_usd",
        serialize_with = "tally_core::money::as_decimal"
    )]
    pub cache_saved: Usd,
    pub active_developers: usize,
    pub totals_30d: ModelTotals,
    pub models_30d: Vec<ModelTotals>,
    pub totals_range: ModelTotals,
    /// Per model over the range, for the page's table (read once).
    #[serde(skip)]
    pub models_range: Vec<ModelTotals>,
}

/// Cost of one model on one local day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayCost {
    pub day: i64,
    pub model: String,
    pub cost: Usd,
}

pub async fn overview(
    db: &TeamDb,
    team: &TeamSettings,
    range: &Range,
    zone: &Zone,
) -> Result<(Overview, Vec<DayCost>)> {
    let today = zone.local_day(now_ms());
    let (fh, th) = range.quarters();
    // One read of the range per local day and model: the chart, and the
    // range's model totals summed from it (no second pass over the range).
    let days = db.daily_cost_by_model(&range.offset_runs(zone)).await?;
    let mr = models_of(&days, |_| true);
    let mut last = Vec::with_capacity(3);
    for n in [30, 7, 1] {
        let first = today - (n - 1);
        // Inside the range (the default is the last 30 days): its days.
        last.push(if range.from_day <= first && today <= range.to_day {
            models_of(&days, |d| (first..=today).contains(&d))
        } else {
            let (a, b) = Range::days(first, today, zone).quarters();
            db.totals_by_model(a, b).await?
        });
    }
    let (m1, m7, m30) = (
        last.pop().unwrap_or_default(),
        last.pop().unwrap_or_default(),
        last.pop().unwrap_or_default(),
    );
    let previous = range.previous(zone);
    let (pf, pt) = previous.quarters();
    let spend_previous = sum(&db.totals_by_model(pf, pt).await?).cost();
    let daily = by_local_day(&days);
    // Per-developer sums only matter for seat holders: without seats the
    // actual spend is the API-equivalent and a count of developers will do.
    let (active_developers, actual_range) = if db.seats().await?.is_empty() {
        (
            db.active_developers(fh, th).await? as usize,
            sum(&mr).cost(),
        )
    } else {
        let devs = db.by_developer(fh, th).await?;
        let actual = db
            .developer_spend_of(range, &devs)
            .await?
            .iter()
            .map(|d| d.actual)
            .sum();
        (devs.len(), actual)
    };
    Ok((
        Overview {
            team_id: team.id.clone(),
            privacy_mode: team.mode(),
            from: range.first_date(),
            to: range.last_date(),
            timezone: zone.name.clone(),
            spend_today: sum(&m1).cost(),
            spend_7d: sum(&m7).cost(),
            spend_30d: sum(&m30).cost(),
            spend_range: sum(&mr).cost(),
            spend_previous,
            previous_from: previous.first_date(),
            previous_to: previous.last_date(),
            actual_range,
            cache_saved: caching_saved(&mr),
            active_developers,
            totals_30d: sum(&m30),
            models_30d: m30,
            totals_range: sum(&mr),
            models_range: mr,
        },
        daily,
    ))
}

/// Per-day rows with a day cut by a DST change merged, in first-seen order
/// (indexed: a year is hundreds of rows per model).
pub fn by_local_day(rows: &[DayModelCost]) -> Vec<DayCost> {
    let mut daily: Vec<DayCost> = Vec::with_capacity(rows.len());
    let mut seen: std::collections::HashMap<(i64, &str), usize> = Default::default();
    for r in rows {
        match seen.get(&(r.day, r.model.as_str())) {
            Some(&i) => daily[i].cost += r.cost(),
            None => {
                seen.insert((r.day, r.model.as_str()), daily.len());
                daily.push(DayCost {
                    day: r.day,
                    model: r.model.clone(),
                    cost: r.cost(),
                });
            }
        }
    }
    daily
}

/// Model totals of the local days `keep` picks, most expensive first (as
/// `TeamDb::totals_by_model` orders them).
pub fn models_of(days: &[DayModelCost], keep: impl Fn(i64) -> bool) -> Vec<ModelTotals> {
    let mut by: std::collections::BTreeMap<&str, (ModelTotals, Usd)> = Default::default();
    for d in days.iter().filter(|d| keep(d.day)) {
        let (t, cost) = by.entry(d.model.as_str()).or_insert_with(|| {
            (
                ModelTotals {
                    model: d.model.clone(),
                    ..Default::default()
                },
                Usd::ZERO,
            )
        });
        t.requests += d.requests;
        t.unpriced_requests += d.unpriced_requests;
        t.input_tokens += d.input_tokens;
        t.output_tokens += d.output_tokens;
        t.cache_write_5m_tokens += d.cache_write_5m_tokens;
        t.cache_write_1h_tokens += d.cache_write_1h_tokens;
        t.cache_read_tokens += d.cache_read_tokens;
        *cost += d.cost();
    }
    let mut rows: Vec<ModelTotals> = by
        .into_values()
        .map(|(mut t, cost)| {
            t.set_cost(cost);
            t
        })
        .collect();
    rows.sort_by(|a, b| b.cost_usd.cmp(&a.cost_usd).then(a.model.cmp(&b.model)));
    rows
}

pub fn sum(rows: &[ModelTotals]) -> ModelTotals {
    let mut t = ModelTotals {
        model: "all".into(),
        ..Default::default()
    };
    let mut cost = Usd::ZERO;
    for r in rows {
        t.requests += r.requests;
        t.unpriced_requests += r.unpriced_requests;
        t.input_tokens += r.input_tokens;
        t.output_tokens += r.output_tokens;
        t.cache_write_5m_tokens += r.cache_write_5m_tokens;
        t.cache_write_1h_tokens += r.cache_write_1h_tokens;
        t.cache_read_tokens += r.cache_read_tokens;
        cost += r.cost();
    }
    t.set_cost(cost);
    t
}

/// Every prompt token a request read: the base of the cache hit rate.
pub fn prompt_tokens(m: &ModelTotals) -> i64 {
    m.input_tokens + m.cache_write_5m_tokens + m.cache_write_1h_tokens + m.cache_read_tokens
}

/// What the cache reads would have cost as plain input, minus what they cost.
pub fn caching_saved(rows: &[ModelTotals]) -> Usd {
    let table = default_table();
    rows.iter()
        .map(|m| {
            let n = m.cache_read_tokens.max(0) as u64;
            let price = |usage: TokenUsage| price_request(table, &m.model, &usage, false);
            let as_input = price(TokenUsage {
                input: n,
                ..Default::default()
            });
            let as_read = price(TokenUsage {
                cache_read: n,
                ..Default::default()
            });
            match (as_input, as_read) {
                (Priced::Pico(a), Priced::Pico(b)) => Usd::from_pico(a.saturating_sub(b).into()),
                _ => Usd::ZERO,
            }
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(name: &str, cache_read: i64) -> ModelTotals {
        ModelTotals {
            model: name.into(),
            requests: 1,
            cache_read_tokens: cache_read,
            input_tokens: 10,
            ..Default::default()
        }
    }

    #[test]
    fn savings_price_reads_as_input_minus_their_read_price() {
        // Sonnet 60,000 × (3 − 0.30) + Opus 20,000 × (5 − 0.50) µ$ per token/1e6.
        let rows = [
            model("claude-sonnet-4-5", 60_000),
            model("claude-opus-4-5", 20_000),
        ];
        assert_eq!(caching_saved(&rows), Usd::from_pico(252_000_000_000));
        assert_eq!(caching_saved(&[model("no-such-model", 1_000)]), Usd::ZERO);
        let t = sum(&rows);
        assert_eq!(
            (t.model.as_str(), t.requests, prompt_tokens(&t)),
            ("all", 2, 80_020)
        );
    }

    #[test]
    fn a_day_cut_by_a_dst_change_is_merged_per_model() {
        let h = |day: i64, model: &str, cost: i64| DayModelCost {
            day,
            model: model.into(),
            cost_micro_usd: cost,
            ..Default::default()
        };
        // Day 1 comes back from both offset runs around the change.
        let d = by_local_day(&[h(0, "a", 1), h(1, "a", 2), h(1, "b", 8), h(1, "a", 4)]);
        let got: Vec<(i64, &str, i64)> = d
            .iter()
            .map(|d| (d.day, d.model.as_str(), d.cost.parts().0 as i64))
            .collect();
        assert_eq!(got, [(0, "a", 1), (1, "a", 6), (1, "b", 8)]);
    }

    #[test]
    fn model_totals_of_days_sum_exactly_and_order_by_cost() {
        let d = |day: i64, model: &str, micro: i64, pico: i64, requests: i64| DayModelCost {
            day,
            model: model.into(),
            cost_micro_usd: micro,
            cost_pico_usd: pico,
            requests,
            input_tokens: 10 * requests,
            cache_read_tokens: 100 * requests,
            ..Default::default()
        };
        // Pico remainders of two days carry into a whole micro-dollar.
        let days = [
            d(5, "sonnet", 10, 600_000, 1),
            d(6, "sonnet", 20, 700_000, 2),
            d(6, "opus", 31, 0, 3),
            d(7, "opus", 1, 0, 4),
        ];
        let all = models_of(&days, |_| true);
        let got: Vec<(&str, i64, i64, i64, i64, i64)> = all
            .iter()
            .map(|m| {
                (
                    m.model.as_str(),
                    m.requests,
                    m.input_tokens,
                    m.cache_read_tokens,
                    m.cost_micro_usd,
                    m.cost_pico_usd,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("opus", 7, 70, 700, 32, 0),
                ("sonnet", 3, 30, 300, 31, 300_000)
            ]
        );
        assert_eq!(all[1].cost_usd, Usd::from_pico(31_300_000));
        // Days 6..=6 only.
        let one = models_of(&days, |day| day == 6);
        let got: Vec<(&str, i64)> = one.iter().map(|m| (m.model.as_str(), m.requests)).collect();
        assert_eq!(got, [("opus", 3), ("sonnet", 2)]);
        assert!(models_of(&days, |_| false).is_empty());
    }
}
