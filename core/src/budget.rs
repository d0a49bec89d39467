//! The arithmetic behind budgets, spend-spike alerts and subscription
//! seats, exact on pico-USD and free of clocks: the Worker supplies the
//! team's local days and the sums it read.
//!
//! - A threshold of a budget is *reached* when `spent × 100 ≥ budget × pct`.
//! - A *spike*: a local day's spend exceeds `SPIKE_FACTOR` × the median of the
//!   `SPIKE_WINDOW_DAYS` complete local days before it. Days without spend
//!   count as 0; the team must have had usage on or before the first of those
//!   days (otherwise there is no history to compare with), and a median of 0
//!   raises nothing (no baseline). The median of an even count is the mean of
//!   the two middle values; it is kept doubled so no half pico is rounded.
//! - A seat's price over a range is prorated per calendar month:
//!   `price × days of the range in that month ÷ days in that month`, rounded
//!   down to the pico-dollar per month, summed over the months the range
//!   touches.

use crate::money::Usd;
use crate::time::{civil_from_days, days_from_civil};

/// Alert thresholds of a new budget, in percent of its amount.
pub const DEFAULT_THRESHOLDS: [u32; 3] = [50, 80, 100];
/// A threshold above 10× the budget is a typing error.
pub const MAX_THRESHOLD_PCT: u32 = 1000;
pub const MAX_THRESHOLDS: usize = 10;

/// Complete local days the spike median is taken over.
pub const SPIKE_WINDOW_DAYS: usize = 14;
/// A day spends more than this many medians: a spike.
pub const SPIKE_FACTOR: u128 = 3;

/// "50, 80,100" → `[50, 80, 100]`, sorted and without repeats; `None` when a
/// part is not a whole percentage in `1..=MAX_THRESHOLD_PCT` or there are
/// none or too many.
pub fn parse_thresholds(s: &str) -> Option<Vec<u32>> {
    let mut out = Vec::new();
    for part in s.split(',') {
        let p = part.trim().trim_end_matches('%').trim();
        if p.is_empty() || p.len() > 4 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let n: u32 = p.parse().ok()?;
        if !(1..=MAX_THRESHOLD_PCT).contains(&n) {
            return None;
        }
        out.push(n);
    }
    out.sort_unstable();
    out.dedup();
    (!out.is_empty() && out.len() <= MAX_THRESHOLDS).then_some(out)
}

/// The stored and displayed spelling: "50,80,100".
pub fn format_thresholds(t: &[u32]) -> String {
    t.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}

/// The thresholds `spent` has reached, in the order given. A zero budget
/// reaches nothing (budgets are validated to be positive).
pub fn reached(spent: Usd, budget: Usd, thresholds: &[u32]) -> Vec<u32> {
    if budget == Usd::ZERO {
        return Vec::new();
    }
    thresholds
        .iter()
        .copied()
        .filter(|&pct| {
            spent.pico().saturating_mul(100) >= budget.pico().saturating_mul(pct as u128)
        })
        .collect()
}

/// Tenths of a percent of the budget spent, rounded down (so a bar shows
/// 100% only once the budget is really used up); 0 for a zero budget.
pub fn used_permille(spent: Usd, budget: Usd) -> u128 {
    if budget == Usd::ZERO {
        return 0;
    }
    spent.pico().saturating_mul(1000) / budget.pico()
}

/// A calendar month: the period budgets are counted over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month {
    pub year: i64,
    /// 1..=12
    pub month: u32,
}

const MONTH_NAMES: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

impl Month {
    /// The month a day (days since 1970-01-01) lies in.
    pub fn of_day(day: i64) -> Month {
        let (year, month, _) = civil_from_days(day);
        Month { year, month }
    }

    pub fn first_day(self) -> i64 {
        days_from_civil(self.year, self.month, 1)
    }

    pub fn next(self) -> Month {
        if self.month == 12 {
            Month {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Month {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    pub fn prev(self) -> Month {
        if self.month == 1 {
            Month {
                year: self.year - 1,
                month: 12,
            }
        } else {
            Month {
                year: self.year,
                month: self.month - 1,
            }
        }
    }

    pub fn last_day(self) -> i64 {
        self.next().first_day() - 1
    }

    pub fn days(self) -> i64 {
        self.next().first_day() - self.first_day()
    }

    /// `YYYY-MM`: the period of a budget alert.
    pub fn label(self) -> String {
        format!("{:04}-{:02}", self.year, self.month)
    }

    /// "November".
    pub fn name(self) -> &'static str {
        MONTH_NAMES[(self.month as usize).clamp(1, 12) - 1]
    }
}

/// The median of `values`, doubled so it stays an integer: twice the middle
/// value of an odd count, the sum of the two middle values of an even one.
/// `None` for no values.
pub fn median_x2(values: &[Usd]) -> Option<u128> {
    if values.is_empty() {
        return None;
    }
    let mut v: Vec<u128> = values.iter().map(|u| u.pico()).collect();
    v.sort_unstable();
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2] * 2
    } else {
        v[n / 2 - 1] + v[n / 2]
    })
}

/// What the spike rule decided for one day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spike {
    /// Fewer than `SPIKE_WINDOW_DAYS` days of history, or a median of 0.
    NoBaseline,
    /// The day's spend and the median (rounded down to the pico for display).
    Normal {
        median: Usd,
    },
    Spike {
        median: Usd,
    },
}

/// `trailing` are the spends of the `SPIKE_WINDOW_DAYS` complete days before
/// the day (zero for days without spend); `history` says whether the team
/// had usage on or before the first of them.
pub fn spike(day: Usd, trailing: &[Usd], history: bool) -> Spike {
    if !history || trailing.len() != SPIKE_WINDOW_DAYS {
        return Spike::NoBaseline;
    }
    let m2 = median_x2(trailing).unwrap_or(0);
    if m2 == 0 {
        return Spike::NoBaseline;
    }
    let median = Usd::from_pico(m2 / 2);
    // day > FACTOR × m2 / 2  ⇔  2 × day > FACTOR × m2, exactly.
    if day.pico().saturating_mul(2) > m2.saturating_mul(SPIKE_FACTOR) {
        Spike::Spike { median }
    } else {
        Spike::Normal { median }
    }
}

crate::named_enum! {
    /// How a developer's Claude use is paid for. `as_str` is stored.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum SeatPlan {
        Api => "api",
        Pro => "pro",
        Max5 => "max_5x",
        Max20 => "max_20x",
        Team => "team",
        Enterprise => "enterprise",
        Custom => "custom",
    }
}

impl SeatPlan {
    /// As people read it.
    pub fn label(self) -> &'static str {
        match self {
            SeatPlan::Api => "API (pay per token)",
            SeatPlan::Pro => "Pro",
            SeatPlan::Max5 => "Max 5×",
            SeatPlan::Max20 => "Max 20×",
            SeatPlan::Team => "Team (premium seat)",
            SeatPlan::Enterprise => "Enterprise",
            SeatPlan::Custom => "Custom",
        }
    }

    /// US list price per month in whole micro-USD, monthly billing, as
    /// published on Anthropic's plan and help pages on 2026-11-30 (Pro $20,
    /// Max 5× $100, Max 20× $200, Team premium seat — the one that includes
    /// Claude Code — $150). Enterprise and custom prices are negotiated, so
    /// they have none and the admin enters one; API seats cost nothing
    /// beyond their tokens.
    pub fn list_price_micro(self) -> Option<i64> {
        match self {
            SeatPlan::Api => Some(0),
            SeatPlan::Pro => Some(20_000_000),
            SeatPlan::Max5 => Some(100_000_000),
            SeatPlan::Max20 => Some(200_000_000),
            SeatPlan::Team => Some(150_000_000),
            SeatPlan::Enterprise | SeatPlan::Custom => None,
        }
    }
}

/// A monthly price over the local days `from_day..=to_day`, prorated per
/// calendar month and rounded down to the pico-dollar per month (see the
/// module comment). Empty ranges cost nothing.
pub fn prorate(monthly: Usd, from_day: i64, to_day: i64) -> Usd {
    let mut total = Usd::ZERO;
    let mut m = Month::of_day(from_day);
    while from_day <= to_day && m.first_day() <= to_day {
        let start = from_day.max(m.first_day());
        let end = to_day.min(m.last_day());
        let days = (end - start + 1).max(0) as u128;
        total += Usd::from_pico(monthly.pico().saturating_mul(days) / m.days() as u128);
        m = m.next();
    }
    total
}

/// `api_equivalent ÷ seat_price` in tenths, rounded half up: 32 reads
/// "3.2×". `None` when the seat costs nothing over the range.
pub fn value_multiple_tenths(api_equivalent: Usd, seat_price: Usd) -> Option<u128> {
    let p = seat_price.pico();
    if p == 0 {
        return None;
    }
    Some((api_equivalent.pico().saturating_mul(20) + p) / (2 * p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_date;
    use proptest::prelude::*;

    fn usd(dollars: u128) -> Usd {
        Usd::from_pico(dollars * 1_000_000_000_000)
    }

    fn day(s: &str) -> i64 {
        parse_date(s).unwrap()
    }

    #[test]
    fn thresholds_parse_sorted_and_bounded() {
        assert_eq!(parse_thresholds("50,80,100"), Some(vec![50, 80, 100]));
        assert_eq!(
            parse_thresholds(" 100, 50 ,80%,80"),
            Some(vec![50, 80, 100])
        );
        assert_eq!(parse_thresholds("1000"), Some(vec![1000]));
        for bad in [
            "",
            "0",
            "1001",
            "50,,80",
            "-5",
            "5.5",
            "abc",
            "1,2,3,4,5,6,7,8,9,10,11",
        ] {
            assert_eq!(parse_thresholds(bad), None, "{bad}");
        }
        assert_eq!(format_thresholds(&DEFAULT_THRESHOLDS), "50,80,100");
    }

    #[test]
    fn a_threshold_is_reached_at_exactly_its_share() {
        let budget = usd(1000);
        assert_eq!(reached(usd(812), budget, &DEFAULT_THRESHOLDS), [50, 80]);
        assert_eq!(reached(usd(800), budget, &DEFAULT_THRESHOLDS), [50, 80]);
        let just_below = Usd::from_pico(usd(800).pico() - 1);
        assert_eq!(reached(just_below, budget, &DEFAULT_THRESHOLDS), [50]);
        assert_eq!(
            reached(usd(1000), budget, &DEFAULT_THRESHOLDS),
            [50, 80, 100]
        );
        assert_eq!(reached(usd(5000), budget, &[150, 400]), [150, 400]);
        assert!(reached(usd(1), Usd::ZERO, &DEFAULT_THRESHOLDS).is_empty());
        // $0.000001 budget: 50% is half a micro-dollar, exactly.
        assert_eq!(
            reached(
                Usd::from_pico(500_000),
                Usd::from_pico(1_000_000),
                &[50, 51]
            ),
            [50]
        );
        assert_eq!(used_permille(usd(812), budget), 812);
        assert_eq!(used_permille(Usd::from_pico(usd(1).pico() - 1), budget), 0);
    }

    #[test]
    fn months_know_their_days() {
        let nov = Month::of_day(day("2026-11-17"));
        assert_eq!(
            (nov.year, nov.month, nov.label(), nov.name()),
            (2026, 11, "2026-11".into(), "November")
        );
        assert_eq!(nov.first_day(), day("2026-11-01"));
        assert_eq!(nov.last_day(), day("2026-11-30"));
        assert_eq!(nov.days(), 30);
        assert_eq!(nov.next().next().label(), "2027-01");
        assert_eq!(Month::of_day(day("2027-01-01")).prev().label(), "2026-12");
        assert_eq!(Month::of_day(day("2028-02-10")).days(), 29);
        assert_eq!(Month::of_day(day("2026-02-10")).days(), 28);
    }

    fn days(values: &[u128]) -> Vec<Usd> {
        values.iter().map(|v| Usd::from_pico(*v)).collect()
    }

    #[test]
    fn median_of_fourteen_days_is_the_mean_of_the_middle_two() {
        // Sorted: 0 ×4, 1..=10 → middle values 3 and 4 → median 3.5.
        let trailing = days(&[0, 5, 0, 1, 2, 0, 3, 4, 6, 7, 0, 8, 9, 10]);
        assert_eq!(median_x2(&trailing), Some(7));
        assert_eq!(median_x2(&days(&[9, 1, 5])), Some(10));
        assert_eq!(median_x2(&[]), None);
    }

    #[test]
    fn a_spike_is_strictly_more_than_three_medians() {
        let d = 1_000_000_000_000u128; // $1
                                       // Median $10 (middle values 10 and 10).
        let trailing = days(&[10 * d; 14]);
        let median = Usd::from_pico(10 * d);
        assert_eq!(
            spike(Usd::from_pico(30 * d), &trailing, true),
            Spike::Normal { median }
        );
        assert_eq!(
            spike(Usd::from_pico(30 * d + 1), &trailing, true),
            Spike::Spike { median }
        );
        // A median of 3.5 pico: 3 × 3.5 = 10.5, so 10 is not a spike, 11 is.
        let odd = days(&[0, 5, 0, 1, 2, 0, 3, 4, 6, 7, 0, 8, 9, 10]);
        assert!(matches!(
            spike(Usd::from_pico(10), &odd, true),
            Spike::Normal { .. }
        ));
        assert!(matches!(
            spike(Usd::from_pico(11), &odd, true),
            Spike::Spike { .. }
        ));
        // No history, too few days, or a zero median: no baseline.
        assert_eq!(
            spike(Usd::from_pico(u128::MAX / 4), &trailing, false),
            Spike::NoBaseline
        );
        assert_eq!(spike(usd(1000), &trailing[..13], true), Spike::NoBaseline);
        let mostly_idle = days(&[0, 0, 0, 0, 0, 0, 0, 0, d, d, d, d, d, d]);
        assert_eq!(spike(usd(1000), &mostly_idle, true), Spike::NoBaseline);
    }

    #[test]
    fn seat_prices_prorate_by_days_of_each_month() {
        // $100 over 1–15 November (30 days): 100 × 15 / 30 = $50.
        assert_eq!(
            prorate(usd(100), day("2026-11-01"), day("2026-11-15")),
            usd(50)
        );
        // A whole month is the whole price.
        assert_eq!(
            prorate(usd(200), day("2026-02-01"), day("2026-02-28")),
            usd(200)
        );
        // 30 Nov – 1 Dec: 100/30 + 100/31, each rounded down to the pico.
        assert_eq!(
            prorate(usd(100), day("2026-11-30"), day("2026-12-01")),
            Usd::from_pico(3_333_333_333_333 + 3_225_806_451_612)
        );
        // One day of a $20 seat in a 31-day month: 20/31 = $0.645161290322 (down).
        assert_eq!(
            prorate(usd(20), day("2026-10-05"), day("2026-10-05")),
            Usd::from_pico(645_161_290_322)
        );
        // Three whole months.
        assert_eq!(
            prorate(usd(150), day("2026-01-01"), day("2026-03-31")),
            usd(450)
        );
        assert_eq!(
            prorate(usd(150), day("2026-03-02"), day("2026-03-01")),
            Usd::ZERO
        );
    }

    #[test]
    fn value_multiple_rounds_half_up_to_tenths() {
        assert_eq!(value_multiple_tenths(usd(320), usd(100)), Some(32));
        // 1.25 → 1.3; 1.2499… → 1.2.
        assert_eq!(
            value_multiple_tenths(Usd::from_pico(125), Usd::from_pico(100)),
            Some(13)
        );
        assert_eq!(
            value_multiple_tenths(Usd::from_pico(1249), Usd::from_pico(1000)),
            Some(12)
        );
        assert_eq!(value_multiple_tenths(usd(5), Usd::ZERO), None);
    }

    #[test]
    fn list_prices() {
        assert_eq!(SeatPlan::parse("max_5x"), Some(SeatPlan::Max5));
        assert_eq!(SeatPlan::Max20.list_price_micro(), Some(200_000_000));
        assert_eq!(SeatPlan::Enterprise.list_price_micro(), None);
        assert_eq!(SeatPlan::ALL.len(), 7);
    }

    proptest! {
        #[test]
        fn more_spend_never_reaches_fewer_thresholds(a in 0u128..1u128 << 80, b in 0u128..1u128 << 80, budget in 1u128..1u128 << 70) {
            let (lo, hi) = (a.min(b), a.max(b));
            let t = [1, 50, 80, 100, 250, 1000];
            let r_lo = reached(Usd::from_pico(lo), Usd::from_pico(budget), &t);
            let r_hi = reached(Usd::from_pico(hi), Usd::from_pico(budget), &t);
            prop_assert!(r_lo.len() <= r_hi.len());
            prop_assert!(r_lo.iter().all(|x| r_hi.contains(x)));
        }

        #[test]
        fn prorating_is_monotone_and_never_exceeds_whole_months(price in 0u128..1u128 << 50, from in 0i64..40_000, len in 0i64..800, extra in 0i64..40) {
            let to = from + len;
            let p = prorate(Usd::from_pico(price), from, to);
            let longer = prorate(Usd::from_pico(price), from, to + extra);
            prop_assert!(p <= longer);
            // Split anywhere, the parts add up to the whole (each month floors once).
            let mid = from + len / 2;
            let months = {
                let (mut m, mut n) = (Month::of_day(from), 0u128);
                while m.first_day() <= to { n += 1; m = m.next(); }
                n
            };
            prop_assert!(p.pico() <= price * months);
            if Month::of_day(mid) != Month::of_day(mid + 1) {
                let parts = prorate(Usd::from_pico(price), from, mid) + prorate(Usd::from_pico(price), mid + 1, to);
                prop_assert_eq!(parts, p);
            }
        }

        #[test]
        fn a_bigger_day_is_never_less_of_a_spike(hist in proptest::collection::vec(0u128..1u128 << 60, 14), a in 0u128..1u128 << 63, b in 0u128..1u128 << 63) {
            let trailing: Vec<Usd> = hist.into_iter().map(Usd::from_pico).collect();
            let (lo, hi) = (a.min(b), a.max(b));
            if let Spike::Spike { .. } = spike(Usd::from_pico(lo), &trailing, true) {
                let hi_spikes = matches!(spike(Usd::from_pico(hi), &trailing, true), Spike::Spike { .. });
                prop_assert!(hi_spikes);
            }
        }
    }
}
