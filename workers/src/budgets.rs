//! Raising budget-threshold and spend-spike alerts.
//!
//! Evaluation runs on the hourly cron (`0 * * * *`), not in the queue
//! consumer: the consumer applies one message at a time (a batch can be
//! dozens of parts), so evaluating there would repeat the same month sums
//! for every part, and its clock is the wall clock, while the cron's is the
//! scheduled time tests set. An hour of delay is fine for monthly budgets.
//! Alerts are written to the `alerts` table only; delivering them (Slack,
//! e-mail) is another part's job, and the Overview shows them as a banner.
//!
//! Each alert's id names what it is about (kind, scope, period, threshold),
//! and the insert does nothing on a second try, so a doubled cron tick or a
//! redelivered batch never raises an alert twice.

use serde_json::json;
use tally_core::budget::{self, Month, Spike};
use tally_core::money::Usd;
use tally_core::time::{utc_date, DAY_MS, QUARTER_MS};
use worker::{Env, Result};

use crate::db::{BudgetLine, BudgetScope, ServiceDb, TeamDb};
use crate::web::range::Range;
use crate::web::stats::by_local_day;
use crate::zone::Zone;

/// Every team's alerts at `now` (the cron's scheduled time). A failing team
/// is logged and skipped so the others are still evaluated.
pub async fn evaluate_all(env: &Env, now: i64) -> Result<serde_json::Value> {
    let (mut raised, mut failed) = (0u32, 0u32);
    for team in ServiceDb::all_teams(env).await? {
        // A team awaiting deletion hears nothing more.
        if team.delete_after.is_some() {
            continue;
        }
        let db = TeamDb::new(env, &team)?;
        match evaluate(&db, now).await {
            Ok(n) => raised += n,
            Err(e) => {
                failed += 1;
                worker::console_error!("alerts for team {} failed: {e}", team.id);
            }
        }
    }
    Ok(json!({"alerts_raised": raised, "alert_teams_failed": failed}))
}

/// One team's alerts at `now`; returns how many were new.
pub async fn evaluate(db: &TeamDb, now: i64) -> Result<u32> {
    let settings = db.settings().await?;
    let zone = Zone::new(&settings.timezone);
    let today = zone.local_day(now);
    let mut raised = 0;
    // The last hour of a month is applied after the month ended: during the
    // first local day of a month the previous month is checked too.
    let mut months = vec![Month::of_day(today)];
    if Month::of_day(today - 1) != months[0] {
        months.push(Month::of_day(today - 1));
    }
    for month in months {
        for line in db.budget_status(month, &zone).await? {
            for &pct in &line.reached {
                let (id, scope) = budget_alert_id(&line, month, pct);
                let detail = json!({
                    "scope": line.scope,
                    "scope_key": line.scope_key,
                    "scope_label": line.label,
                    "period": month.label(),
                    "month": month.name(),
                    "timezone": zone.name,
                    "threshold_pct": pct,
                    "spent_usd": line.spent.to_string(),
                    "budget_usd": line.budget.to_string(),
                });
                if db
                    .raise_alert(
                        &id,
                        "budget",
                        &scope,
                        &month.label(),
                        Some(pct),
                        &budget_title(&line, pct, month),
                        &detail,
                        now,
                    )
                    .await?
                {
                    raised += 1;
                }
            }
        }
    }
    raised += evaluate_spikes(db, &zone, today, now).await?;
    Ok(raised)
}

/// The alert's id and its `scope` column.
pub fn budget_alert_id(line: &BudgetLine, month: Month, pct: u32) -> (String, String) {
    let scope = match line.scope {
        BudgetScope::Team => "team".to_string(),
        s => format!("{}:{}", s.as_str(), line.scope_key),
    };
    (format!("budget:{scope}:{}:{pct}", month.label()), scope)
}

/// "Team budget 80% reached: $812.40 of $1,000.00 (November)".
pub fn budget_title(line: &BudgetLine, pct: u32, month: Month) -> String {
    let who = match line.scope {
        BudgetScope::Team => "Team budget".to_string(),
        BudgetScope::Project => format!("Project “{}” budget", line.label),
        BudgetScope::Developer => format!("Developer “{}” budget", line.label),
    };
    format!(
        "{who} {pct}% reached: {} of {} ({})",
        line.spent.cents(),
        line.budget.cents(),
        month.name()
    )
}

/// "Spend spike on 2026-11-05: $45.00, more than 3× the 14-day median of $14.00".
pub fn spike_title(day: i64, spent: Usd, median: Usd) -> String {
    format!(
        "Spend spike on {}: {}, more than {}× the {}-day median of {}",
        utc_date(day * DAY_MS),
        spent.cents(),
        budget::SPIKE_FACTOR,
        budget::SPIKE_WINDOW_DAYS,
        median.cents()
    )
}

/// Today so far (a spike shows before the day ends) and yesterday (whose
/// last quarter hour may have arrived after midnight).
async fn evaluate_spikes(db: &TeamDb, zone: &Zone, today: i64, now: i64) -> Result<u32> {
    let Some(first_quarter) = db.first_usage_quarter().await? else {
        return Ok(0);
    };
    let first_day = zone.local_day(first_quarter * QUARTER_MS);
    let window = budget::SPIKE_WINDOW_DAYS as i64;
    let from = today - 1 - window;
    if first_day > today - window {
        return Ok(0); // not even today has a full history
    }
    let runs = Range::days(from, today, zone).offset_runs(zone);
    let daily = by_local_day(&db.daily_cost_by_model(&runs).await?);
    let spend = |d: i64| -> Usd { daily.iter().filter(|c| c.day == d).map(|c| c.cost).sum() };
    let mut raised = 0;
    for day in [today - 1, today] {
        let trailing: Vec<Usd> = (day - window..day).map(spend).collect();
        let spent = spend(day);
        if let Spike::Spike { median } = budget::spike(spent, &trailing, first_day <= day - window)
        {
            let period = utc_date(day * DAY_MS);
            let detail = json!({
                "scope": "team",
                "day": period,
                "timezone": zone.name,
                "spent_usd": spent.to_string(),
                "median_usd": median.to_string(),
                "factor": budget::SPIKE_FACTOR as u64,
                "window_days": window,
            });
            if db
                .raise_alert(
                    &format!("spike:team:{period}"),
                    "spike",
                    "team",
                    &period,
                    None,
                    &spike_title(day, spent, median),
                    &detail,
                    now,
                )
                .await?
            {
                raised += 1;
            }
        }
    }
    Ok(raised)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tally_core::time::parse_date;

    fn line(scope: BudgetScope, key: &str, label: &str, spent: u128, budget: u128) -> BudgetLine {
        BudgetLine {
            scope,
            scope_key: key.into(),
            label: label.into(),
            budget: Usd::from_pico(budget * 10_000_000_000),
            spent: Usd::from_pico(spent * 10_000_000_000),
            thresholds: vec![50, 80, 100],
            reached: vec![],
            used_permille: 0,
        }
    }

    #[test]
    fn titles_and_ids_name_scope_period_and_threshold() {
        let nov = Month::of_day(parse_date("2026-11-10").unwrap());
        let team = line(BudgetScope::Team, "", "Team", 81_240, 100_000);
        assert_eq!(
            budget_title(&team, 80, nov),
            "Team budget 80% reached: $812.40 of $1,000.00 (November)"
        );
        assert_eq!(
            budget_alert_id(&team, nov, 80),
            ("budget:team:2026-11:80".into(), "team".into())
        );
        let p = line(BudgetScope::Project, "ab12", "payments", 5_000, 10_000);
        assert_eq!(
            budget_title(&p, 50, nov),
            "Project “payments” budget 50% reached: $50.00 of $100.00 (November)"
        );
        assert_eq!(
            budget_alert_id(&p, nov, 50).0,
            "budget:project:ab12:2026-11:50"
        );
        let d = line(BudgetScope::Developer, "d1", "Alice", 1, 2);
        assert_eq!(budget_alert_id(&d, nov, 100).1, "developer:d1");
        assert_eq!(
            spike_title(
                parse_date("2026-11-05").unwrap(),
                Usd::from_pico(45_000_000_000_000),
                Usd::from_pico(14_000_000_000_000)
            ),
            "Spend spike on 2026-11-05: $45.00, more than 3× the 14-day median of $14.00"
        );
    }
}
