//! Budgets, alerts and seat plans: the rows, and the two summaries other
//! parts read (`budget_status` for a month, `developer_spend` for a range:
//! the Budgets page, the Overview, the Developers page, the evaluation in
//! `crate::budgets` and the digests).

use serde::Serialize;
use tally_core::budget::{self, Month, SeatPlan};
use tally_core::money::Usd;
use worker::Result;

use super::super::rows::*;
use super::super::{all, i, t, Arg};
use super::{changed, TeamDb};
use crate::web::range::Range;
use crate::zone::Zone;

/// What a budget covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BudgetScope {
    Team,
    Project,
    Developer,
}

impl BudgetScope {
    pub fn as_str(self) -> &'static str {
        match self {
            BudgetScope::Team => "team",
            BudgetScope::Project => "project",
            BudgetScope::Developer => "developer",
        }
    }

    pub fn parse(s: &str) -> Option<BudgetScope> {
        [
            BudgetScope::Team,
            BudgetScope::Project,
            BudgetScope::Developer,
        ]
        .into_iter()
        .find(|b| b.as_str() == s)
    }
}

/// One budget's standing in a month (`TeamDb::budget_status`): amounts are
/// exact; `spent` is the API-equivalent token cost of the month in the
/// team's time zone.
#[derive(Debug, Clone, Serialize)]
pub struct BudgetLine {
    pub scope: BudgetScope,
    /// '' for the team, the project hash, or the developer id.
    pub scope_key: String,
    /// "Team", the project's label (or the start of its hash), or the developer's name.
    pub label: String,
    #[serde(
        rename = "budget_usd",
        serialize_with = "tally_core::money::as_decimal"
    )]
    pub budget: Usd,
    #[serde(rename = "spent_usd", serialize_with = "tally_core::money::as_decimal")]
    pub spent: Usd,
    pub thresholds: Vec<u32>,
    /// The thresholds `spent` has reached.
    pub reached: Vec<u32>,
    /// Tenths of a percent of the budget spent, rounded down.
    pub used_permille: u128,
}

/// One developer's spend over a range (`TeamDb::developer_spend`):
/// "API-equivalent" is the token cost at list prices, as every other page
/// shows it; "actual" is what the team pays — the token cost for API
/// developers, the seat price prorated to the range for seat holders.
#[derive(Debug, Clone, Serialize)]
pub struct DeveloperSpend {
    pub developer_id: String,
    pub name: String,
    #[serde(serialize_with = "plan_name")]
    pub plan: SeatPlan,
    #[serde(
        rename = "seat_monthly_usd",
        serialize_with = "tally_core::money::as_decimal"
    )]
    pub seat_monthly: Usd,
    #[serde(
        rename = "api_equivalent_usd",
        serialize_with = "tally_core::money::as_decimal"
    )]
    pub api_equivalent: Usd,
    #[serde(
        rename = "seat_cost_usd",
        serialize_with = "tally_core::money::as_decimal"
    )]
    pub seat_cost: Usd,
    #[serde(
        rename = "actual_usd",
        serialize_with = "tally_core::money::as_decimal"
    )]
    pub actual: Usd,
    /// API-equivalent ÷ prorated seat price, in tenths (32 = 3.2×); None for API developers.
    pub value_multiple_tenths: Option<u128>,
}

fn plan_name<S: serde::Serializer>(p: &SeatPlan, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(p.as_str())
}

/// A project's label, or the start of its hash when it has none.
pub fn project_name(hash: &str, label: &str) -> String {
    if label.is_empty() {
        format!("{}…", &hash[..hash.len().min(12)])
    } else {
        label.to_string()
    }
}

impl TeamDb {
    pub async fn budgets(&self) -> Result<Vec<BudgetRow>> {
        all(self.stmt(
            "SELECT b.scope, b.scope_key, b.amount_micro_usd, b.thresholds, COALESCE(l.label, d.name, '') AS label FROM budgets b \
             LEFT JOIN project_labels l ON b.scope = 'project' AND l.team_id = b.team_id AND l.project = b.scope_key \
             LEFT JOIN developers d ON b.scope = 'developer' AND d.team_id = b.team_id AND d.id = b.scope_key \
             WHERE b.team_id = ?1 ORDER BY CASE b.scope WHEN 'team' THEN 0 WHEN 'project' THEN 1 ELSE 2 END, label, b.scope_key",
            vec![],
        )?)
        .await
    }

    pub async fn set_budget(
        &self,
        scope: BudgetScope,
        scope_key: &str,
        amount_micro_usd: i64,
        thresholds: &str,
        now: i64,
    ) -> Result<()> {
        self.stmt(
            "INSERT INTO budgets (team_id, scope, scope_key, amount_micro_usd, thresholds, created_ms, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6) \
             ON CONFLICT (team_id, scope, scope_key) DO UPDATE SET amount_micro_usd = excluded.amount_micro_usd, thresholds = excluded.thresholds, updated_ms = excluded.updated_ms",
            vec![t(scope.as_str()), t(scope_key), i(amount_micro_usd), t(thresholds), i(now)],
        )?
        .run()
        .await?;
        Ok(())
    }

    pub async fn delete_budget(&self, scope: BudgetScope, scope_key: &str) -> Result<bool> {
        let r = self
            .stmt(
                "DELETE FROM budgets WHERE team_id = ?1 AND scope = ?2 AND scope_key = ?3",
                vec![t(scope.as_str()), t(scope_key)],
            )?
            .run()
            .await?;
        Ok(changed(&r) > 0)
    }

    /// Raises an alert at most once: the id names what it is about, and a
    /// second insert of the same id changes nothing. True when it is new.
    #[allow(clippy::too_many_arguments)]
    pub async fn raise_alert(
        &self,
        id: &str,
        kind: &str,
        scope: &str,
        period: &str,
        threshold_pct: Option<u32>,
        title: &str,
        detail: &serde_json::Value,
        now: i64,
    ) -> Result<bool> {
        let r = self
            .stmt(
                "INSERT INTO alerts (team_id, id, kind, scope, period, threshold_pct, title, detail_json, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
                 ON CONFLICT (team_id, id) DO NOTHING",
                vec![
                    t(id),
                    t(kind),
                    t(scope),
                    t(period),
                    threshold_pct.map(i).unwrap_or(Arg::Null),
                    t(title),
                    t(detail.to_string()),
                    i(now),
                ],
            )?
            .run()
            .await?;
        Ok(changed(&r) > 0)
    }

    /// Alerts not dismissed whose period lies in `month` (`YYYY-MM`: budget
    /// alerts of that month, spike alerts of its days), oldest first.
    pub async fn open_alerts(&self, month: &str) -> Result<Vec<AlertRow>> {
        all(self.stmt(
            "SELECT id, kind, scope, period, threshold_pct, title, detail_json, created_ms, dismissed_ms FROM alerts WHERE team_id = ?1 AND dismissed_ms IS NULL AND substr(period, 1, 7) = ?2 ORDER BY created_ms, id",
            vec![t(month)],
        )?)
        .await
    }

    /// The newest alerts, dismissed or not, for the Budgets page.
    pub async fn recent_alerts(&self, limit: i64) -> Result<Vec<AlertRow>> {
        all(self.stmt(
            "SELECT id, kind, scope, period, threshold_pct, title, detail_json, created_ms, dismissed_ms FROM alerts WHERE team_id = ?1 ORDER BY created_ms DESC, id LIMIT ?2",
            vec![i(limit)],
        )?)
        .await
    }

    /// True when the alert existed and was not dismissed yet.
    pub async fn dismiss_alert(&self, id: &str, now: i64) -> Result<bool> {
        let r = self
            .stmt(
                "UPDATE alerts SET dismissed_ms = ?3 WHERE team_id = ?1 AND id = ?2 AND dismissed_ms IS NULL",
                vec![t(id), i(now)],
            )?
            .run()
            .await?;
        Ok(changed(&r) > 0)
    }

    /// The first quarter hour with any usage, if there is one.
    pub async fn first_usage_quarter(&self) -> Result<Option<i64>> {
        #[derive(serde::Deserialize)]
        struct Q {
            quarter: Option<i64>,
        }
        Ok(super::super::first::<Q>(self.stmt(
            "SELECT MIN(quarter) AS quarter FROM usage_q WHERE team_id = ?1",
            vec![],
        )?)
        .await?
        .and_then(|q| q.quarter))
    }

    pub async fn seats(&self) -> Result<Vec<SeatRow>> {
        all(self.stmt(
            "SELECT developer_id, plan, monthly_micro_usd FROM seat_plans WHERE team_id = ?1 ORDER BY developer_id",
            vec![],
        )?)
        .await
    }

    /// `None` (API) removes the seat row.
    pub async fn set_seat(
        &self,
        developer_id: &str,
        seat: Option<(SeatPlan, i64)>,
        now: i64,
    ) -> Result<()> {
        match seat {
            Some((plan, micro)) => self.stmt(
                "INSERT INTO seat_plans (team_id, developer_id, plan, monthly_micro_usd, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT (team_id, developer_id) DO UPDATE SET plan = excluded.plan, monthly_micro_usd = excluded.monthly_micro_usd, updated_ms = excluded.updated_ms",
                vec![t(developer_id), t(plan.as_str()), i(micro), i(now)],
            )?,
            None => self.stmt(
                "DELETE FROM seat_plans WHERE team_id = ?1 AND developer_id = ?2",
                vec![t(developer_id)],
            )?,
        }
        .run()
        .await?;
        Ok(())
    }

    /// Every budget's standing in `month` of the team's time zone.
    pub async fn budget_status(&self, month: Month, zone: &Zone) -> Result<Vec<BudgetLine>> {
        let budgets = self.budgets().await?;
        if budgets.is_empty() {
            return Ok(Vec::new());
        }
        let (fh, th) = Range::days(month.first_day(), month.last_day(), zone).quarters();
        let has = |s: &str| budgets.iter().any(|b| b.scope == s);
        let team: Usd = if has("team") {
            self.totals_by_model(fh, th)
                .await?
                .iter()
                .map(|m| m.cost())
                .sum()
        } else {
            Usd::ZERO
        };
        let projects = if has("project") {
            self.by_project(fh, th).await?
        } else {
            vec![]
        };
        let developers = if has("developer") {
            self.by_developer(fh, th).await?
        } else {
            vec![]
        };
        let cost_of = |rows: &[GroupTotals], key: &str| {
            rows.iter()
                .find(|r| r.key == key)
                .map(|r| r.cost())
                .unwrap_or(Usd::ZERO)
        };
        Ok(budgets
            .iter()
            .filter_map(|b| {
                let scope = BudgetScope::parse(&b.scope)?;
                let (spent, label) = match scope {
                    BudgetScope::Team => (team, "Team".to_string()),
                    BudgetScope::Project => (
                        cost_of(&projects, &b.scope_key),
                        project_name(&b.scope_key, &b.label),
                    ),
                    BudgetScope::Developer => (
                        cost_of(&developers, &b.scope_key),
                        if b.label.is_empty() {
                            b.scope_key.clone()
                        } else {
                            b.label.clone()
                        },
                    ),
                };
                let amount = Usd::from_parts(b.amount_micro_usd, 0);
                let thresholds = budget::parse_thresholds(&b.thresholds)
                    .unwrap_or_else(|| budget::DEFAULT_THRESHOLDS.to_vec());
                Some(BudgetLine {
                    scope,
                    scope_key: b.scope_key.clone(),
                    label,
                    budget: amount,
                    spent,
                    reached: budget::reached(spent, amount, &thresholds),
                    thresholds,
                    used_permille: budget::used_permille(spent, amount),
                })
            })
            .collect())
    }

    /// API-equivalent and actual spend per developer over `range`: every
    /// developer with usage in the range or a seat, most expensive (actual)
    /// first. A seat counts for every day of the range (seats carry no
    /// start date).
    pub async fn developer_spend(&self, range: &Range) -> Result<Vec<DeveloperSpend>> {
        let (fh, th) = range.quarters();
        self.developer_spend_of(range, &self.by_developer(fh, th).await?)
            .await
    }

    /// `developer_spend` from the range's `by_developer` rows a page has
    /// read already (a year of them is the page's costliest read).
    pub async fn developer_spend_of(
        &self,
        range: &Range,
        usage: &[GroupTotals],
    ) -> Result<Vec<DeveloperSpend>> {
        let seats = self.seats().await?;
        let devs = self.developer_list().await?;
        let mut out: Vec<DeveloperSpend> = Vec::new();
        let mut ids: Vec<(&str, String)> = usage
            .iter()
            .map(|u| (u.key.as_str(), u.label.clone()))
            .collect();
        for s in &seats {
            if !ids.iter().any(|(id, _)| *id == s.developer_id) {
                let name = devs
                    .iter()
                    .find(|d| d.id == s.developer_id)
                    .map(|d| d.name.clone())
                    .unwrap_or_else(|| s.developer_id.clone());
                ids.push((s.developer_id.as_str(), name));
            }
        }
        for (id, name) in ids {
            let api_equivalent = usage
                .iter()
                .find(|u| u.key == id)
                .map(|u| u.cost())
                .unwrap_or(Usd::ZERO);
            let seat = seats
                .iter()
                .find(|s| s.developer_id == id)
                .and_then(|s| Some((SeatPlan::parse(&s.plan)?, s.monthly_micro_usd)));
            let (plan, monthly) = seat.unwrap_or((SeatPlan::Api, 0));
            let seat_monthly = Usd::from_parts(monthly, 0);
            let (seat_cost, actual, multiple) = if plan == SeatPlan::Api {
                (Usd::ZERO, api_equivalent, None)
            } else {
                let cost = budget::prorate(seat_monthly, range.from_day, range.to_day);
                (
                    cost,
                    cost,
                    budget::value_multiple_tenths(api_equivalent, cost),
                )
            };
            out.push(DeveloperSpend {
                developer_id: id.to_string(),
                name,
                plan,
                seat_monthly,
                api_equivalent,
                seat_cost,
                actual,
                value_multiple_tenths: multiple,
            });
        }
        out.sort_by(|a, b| b.actual.cmp(&a.actual).then(a.name.cmp(&b.name)));
        Ok(out)
    }
}

/// Statements the developer removal and erasure batches add: a developer
/// who is gone keeps no budget and no seat, and their self-view ends (its
/// sessions and pending links).
pub(super) const FORGET_DEVELOPER: [&str; 4] = [
    "DELETE FROM budgets WHERE team_id = ?1 AND scope = 'developer' AND scope_key = ?2",
    "DELETE FROM seat_plans WHERE team_id = ?1 AND developer_id = ?2",
    "DELETE FROM developer_sessions WHERE team_id = ?1 AND developer_id = ?2",
    "DELETE FROM developer_links WHERE team_id = ?1 AND developer_id = ?2",
];
