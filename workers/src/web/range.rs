//! The date range a page or export covers: whole days in the team's time
//! zone, translated into the hour, millisecond and UTC-day bounds the
//! stored rows are keyed by.

use std::collections::HashMap;

use tally_core::time::{parse_date, utc_date, DAY_MS, HOUR_MS};

use crate::zone::Zone;

/// Without `from`/`to` a page shows this many days up to today.
const DEFAULT_DAYS: i64 = 30;

/// The longest range a page or export covers (about three years): a
/// range of millennia would build a chart of millions of days.
pub const MAX_DAYS: i64 = 3 * 366;

/// An inclusive range of local days, from `?from=YYYY-MM-DD&to=YYYY-MM-DD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    pub from_day: i64,
    pub to_day: i64,
    from_ms: i64,
    to_ms: i64,
    pub tz: String,
    /// The request asked for more than `MAX_DAYS`; `from` was moved up.
    pub clamped: bool,
}

impl Range {
    /// Unparseable dates fall back to the defaults rather than failing the
    /// page; a `from` after `to` collapses to the single day `to`.
    pub fn parse(q: &HashMap<String, String>, now_ms: i64, zone: &Zone) -> Range {
        let today = zone.local_day(now_ms);
        let to_day = q.get("to").and_then(|s| parse_date(s)).unwrap_or(today);
        let from_day = q
            .get("from")
            .and_then(|s| parse_date(s))
            .unwrap_or(to_day - (DEFAULT_DAYS - 1))
            .min(to_day);
        let earliest = to_day - (MAX_DAYS - 1);
        let mut r = Range::days(from_day.max(earliest), to_day, zone);
        r.clamped = from_day < earliest;
        r
    }

    pub fn days(from_day: i64, to_day: i64, zone: &Zone) -> Range {
        Range {
            from_day,
            to_day,
            from_ms: zone.day_start(from_day),
            to_ms: zone.day_start(to_day + 1),
            tz: zone.name.clone(),
            clamped: false,
        }
    }

    /// The same number of days just before this range, for "compared with
    /// the previous period".
    pub fn previous(&self, zone: &Zone) -> Range {
        let days = self.days_len();
        Range::days(self.from_day - days, self.from_day - 1, zone)
    }

    /// How many local days the range covers.
    pub fn days_len(&self) -> i64 {
        self.to_day - self.from_day + 1
    }

    /// Hourly buckets `[from, to)` whose start lies in the range: an hour
    /// cut by a half-hour offset counts for the local day it starts in, the
    /// same rule the overview's daily chart applies.
    pub fn hours(&self) -> (i64, i64) {
        let ceil_hour = |ms: i64| (ms + HOUR_MS - 1).div_euclid(HOUR_MS);
        (ceil_hour(self.from_ms), ceil_hour(self.to_ms))
    }

    /// Instants `[from, to)`.
    pub fn ms(&self) -> (i64, i64) {
        (self.from_ms, self.to_ms)
    }

    /// Category rows are kept per UTC day: every UTC day the range touches.
    pub fn utc_days(&self) -> (i64, i64) {
        (
            self.from_ms.div_euclid(DAY_MS),
            (self.to_ms + DAY_MS - 1).div_euclid(DAY_MS),
        )
    }

    /// `from=…&to=…`, for links that keep the range (sort, drill-down).
    pub fn query(&self) -> String {
        format!("from={}&to={}", self.first_date(), self.last_date())
    }

    pub fn first_date(&self) -> String {
        utc_date(self.from_day * DAY_MS)
    }

    pub fn last_date(&self) -> String {
        utc_date(self.to_day * DAY_MS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tally_core::time::parse_date;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn ms(date: &str, h: i64, m: i64) -> i64 {
        parse_date(date).unwrap() * DAY_MS + h * HOUR_MS + m * 60_000
    }

    #[test]
    fn defaults_to_the_last_thirty_local_days() {
        let tokyo = Zone::new("Asia/Tokyo");
        // 20:00 UTC on 1 March is already 2 March in Tokyo.
        let r = Range::parse(&q(&[]), ms("2026-03-01", 20, 0), &tokyo);
        assert_eq!(r.last_date(), "2026-03-02");
        assert_eq!(r.first_date(), "2026-02-01");
        assert_eq!(r.tz, "Asia/Tokyo");
        assert_eq!(r.ms().0, ms("2026-01-31", 15, 0));
    }

    #[test]
    fn bad_or_reversed_dates_fall_back() {
        let utc = Zone::new("UTC");
        let now = ms("2026-05-10", 12, 0);
        let r = Range::parse(
            &q(&[("from", "yesterday"), ("to", "2026-05-05")]),
            now,
            &utc,
        );
        assert_eq!(
            (r.first_date(), r.last_date()),
            ("2026-04-06".into(), "2026-05-05".into())
        );
        let r = Range::parse(
            &q(&[("from", "2026-05-09"), ("to", "2026-05-01")]),
            now,
            &utc,
        );
        assert_eq!(
            (r.first_date(), r.last_date()),
            ("2026-05-01".into(), "2026-05-01".into())
        );
        let r = Range::parse(&q(&[("to", "2026-13-40")]), now, &utc);
        assert_eq!(r.last_date(), "2026-05-10");
    }

    #[test]
    fn ranges_of_millennia_are_clamped_to_max_days() {
        let utc = Zone::new("UTC");
        let now = ms("2026-05-10", 12, 0);
        let r = Range::parse(
            &q(&[("from", "0001-01-01"), ("to", "9999-12-31")]),
            now,
            &utc,
        );
        assert!(r.clamped);
        assert_eq!(r.to_day - r.from_day + 1, MAX_DAYS);
        assert_eq!(r.last_date(), "9999-12-31");
        let r = Range::parse(
            &q(&[("from", "2024-01-01"), ("to", "2026-05-10")]),
            now,
            &utc,
        );
        assert!(!r.clamped);
        assert_eq!(r.first_date(), "2024-01-01");
    }

    #[test]
    fn a_spring_forward_day_has_23_hours_and_a_fall_back_day_25() {
        let paris = Zone::new("Europe/Paris");
        let day = |d: &str| {
            let n = parse_date(d).unwrap();
            Range::days(n, n, &paris)
        };
        let spring = day("2026-03-29");
        assert_eq!(
            spring.ms(),
            (ms("2026-03-28", 23, 0), ms("2026-03-29", 22, 0))
        );
        let (a, b) = spring.hours();
        assert_eq!(b - a, 23);
        let (a, b) = day("2026-10-25").hours();
        assert_eq!(b - a, 25);
        // Consecutive days share no hour and miss none.
        assert_eq!(day("2026-03-29").hours().1, day("2026-03-30").hours().0);
    }

    #[test]
    fn half_hour_zones_count_a_cut_hour_once_for_the_day_it_starts_in() {
        let kolkata = Zone::new("Asia/Kolkata"); // UTC+05:30
        let n = parse_date("2026-06-10").unwrap();
        let (d1, d2) = (
            Range::days(n, n, &kolkata),
            Range::days(n + 1, n + 1, &kolkata),
        );
        assert_eq!(d1.ms().0, ms("2026-06-09", 18, 30));
        // 18:00 UTC starts at 23:30 local on the 9th: not part of the 10th.
        assert_eq!(d1.hours().0 * HOUR_MS, ms("2026-06-09", 19, 0));
        // 18:00 UTC on the 10th starts at 23:30 local on the 10th: the last hour of d1.
        assert_eq!(d1.hours().1 * HOUR_MS, ms("2026-06-10", 19, 0));
        assert_eq!(d1.hours().1, d2.hours().0);
        assert_eq!(d1.hours().1 - d1.hours().0, 24);
        for h in d1.hours().0..d1.hours().1 {
            assert_eq!(kolkata.local_day(h * HOUR_MS), n);
        }
        // Asia/Kathmandu (+05:45) follows the same rule.
        let ktm = Zone::new("Asia/Kathmandu");
        let r = Range::days(n, n, &ktm);
        assert_eq!(ktm.local_day(r.hours().0 * HOUR_MS), n);
        assert_eq!(ktm.local_day((r.hours().0 - 1) * HOUR_MS), n - 1);
    }

    #[test]
    fn the_previous_period_has_the_same_days_just_before() {
        let utc = Zone::new("UTC");
        let n = parse_date("2026-06-10").unwrap();
        let p = Range::days(n, n + 6, &utc).previous(&utc);
        assert_eq!(
            (p.first_date(), p.last_date()),
            ("2026-06-03".into(), "2026-06-09".into())
        );
        assert_eq!(p.days_len(), 7);
        assert_eq!(p.ms().1, Range::days(n, n, &utc).ms().0);
    }

    #[test]
    fn category_days_cover_every_utc_day_the_range_touches() {
        let tokyo = Zone::new("Asia/Tokyo");
        let n = parse_date("2026-06-10").unwrap();
        assert_eq!(Range::days(n, n, &tokyo).utc_days(), (n - 1, n + 1));
        assert_eq!(Range::days(n, n, &Zone::new("UTC")).utc_days(), (n, n + 1));
    }
}
