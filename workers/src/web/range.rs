//! The date range a page or export covers: whole days in the team's time
//! zone, translated into the quarter-hour, millisecond and UTC-day bounds
//! the stored rows are keyed by.

use std::collections::HashMap;

use tally_core::time::{parse_date, utc_date, DAY_MS, QUARTER_MS};

use crate::zone::Zone;

/// Without `from`/`to` a page shows this many days up to today.
const DEFAULT_DAYS: i64 = 30;

/// The longest range a page or export covers (about three years): a
/// range of millennia would build a chart of millions of days.
pub const MAX_DAYS: i64 = 3 * 366;

fn ceil_quarter(ms: i64) -> i64 {
    (ms + QUARTER_MS - 1).div_euclid(QUARTER_MS)
}

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

    /// Quarter-hour buckets `[from, to)`: exactly the range's instants, since
    /// local midnights fall on quarter hours in every zone in use (a bucket
    /// cut by an older, odd offset counts for the day it starts in).
    pub fn quarters(&self) -> (i64, i64) {
        (ceil_quarter(self.from_ms), ceil_quarter(self.to_ms))
    }

    /// `quarters()` cut where the zone's offset changes (`Zone::offset_runs`),
    /// for sums per local day.
    pub fn offset_runs(&self, zone: &Zone) -> Vec<(i64, i64, i64)> {
        let (a, b) = self.quarters();
        zone.offset_runs(a, b)
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
    use tally_core::time::{parse_date, HOUR_MS};

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

    /// The quarters of local day `date` in `zone`.
    fn day_q(zone: &Zone, date: &str) -> (i64, i64) {
        let n = parse_date(date).unwrap();
        Range::days(n, n, zone).quarters()
    }

    /// Every quarter of `[a, b)` lies on local day `n` and the ones either
    /// side do not.
    fn only_day(zone: &Zone, (a, b): (i64, i64), n: i64) {
        for q in a..b {
            assert_eq!(zone.local_day(q * QUARTER_MS), n, "{} q{q}", zone.name);
            assert_eq!(zone.local_day(q * QUARTER_MS + QUARTER_MS - 1), n);
        }
        assert_eq!(zone.local_day(a * QUARTER_MS - 1), n - 1, "{}", zone.name);
        assert_eq!(zone.local_day(b * QUARTER_MS), n + 1, "{}", zone.name);
    }

    #[test]
    fn days_in_kolkata_kathmandu_and_st_johns_are_whole_quarters() {
        let q = |date: &str, h: i64, m: i64| ms(date, h, m) / QUARTER_MS;
        let cases = [
            // +05:30: the 10th starts at 18:30 UTC on the 9th.
            ("Asia/Kolkata", "2026-06-10", q("2026-06-09", 18, 30), 96),
            // +05:45
            ("Asia/Kathmandu", "2026-06-10", q("2026-06-09", 18, 15), 96),
            // −02:30 in summer (NDT), −03:30 in winter (NST).
            ("America/St_Johns", "2026-06-10", q("2026-06-10", 2, 30), 96),
            ("America/St_Johns", "2026-01-15", q("2026-01-15", 3, 30), 96),
        ];
        for (name, date, first, len) in cases {
            let zone = Zone::new(name);
            let n = parse_date(date).unwrap();
            let (a, b) = day_q(&zone, date);
            assert_eq!((a, b - a), (first, len), "{name} {date}");
            assert_eq!(
                Range::days(n, n, &zone).ms(),
                (a * QUARTER_MS, b * QUARTER_MS)
            );
            only_day(&zone, (a, b), n);
            // Consecutive days share no quarter and miss none.
            assert_eq!(day_q(&zone, &utc_date((n + 1) * DAY_MS)).0, b, "{name}");
            assert_eq!(day_q(&zone, &utc_date((n - 1) * DAY_MS)).1, a, "{name}");
        }
    }

    #[test]
    fn dst_days_have_92_or_100_quarters_and_touch_their_neighbours() {
        let q = |date: &str, h: i64, m: i64| ms(date, h, m) / QUARTER_MS;
        let cases = [
            // St. John's springs forward at 02:00 NST (05:30 UTC) on 8 March 2026
            // and falls back at 02:00 NDT (04:30 UTC) on 1 November.
            ("America/St_Johns", "2026-03-08", q("2026-03-08", 3, 30), 92),
            (
                "America/St_Johns",
                "2026-11-01",
                q("2026-11-01", 2, 30),
                100,
            ),
            ("Europe/Paris", "2026-03-29", q("2026-03-28", 23, 0), 92),
            ("Europe/Paris", "2026-10-25", q("2026-10-24", 22, 0), 100),
            // Lord Howe Island moves by half an hour: 94 and 98 quarters.
            (
                "Australia/Lord_Howe",
                "2026-04-05",
                q("2026-04-04", 13, 0),
                98,
            ),
            (
                "Australia/Lord_Howe",
                "2026-10-04",
                q("2026-10-03", 13, 30),
                94,
            ),
        ];
        for (name, date, first, len) in cases {
            let zone = Zone::new(name);
            let n = parse_date(date).unwrap();
            let (a, b) = day_q(&zone, date);
            assert_eq!((a, b - a), (first, len), "{name} {date}");
            only_day(&zone, (a, b), n);
            assert_eq!(
                day_q(&zone, &utc_date((n - 1) * DAY_MS)),
                (a - 96, a),
                "{name}"
            );
            assert_eq!(day_q(&zone, &utc_date((n + 1) * DAY_MS)).0, b, "{name}");
        }
    }

    #[test]
    fn offset_runs_give_every_quarter_its_local_day_for_a_whole_year() {
        let day_q = DAY_MS / QUARTER_MS;
        for name in [
            "Asia/Kolkata",
            "Asia/Kathmandu",
            "America/St_Johns",
            "Australia/Lord_Howe",
            "Europe/Paris",
            "UTC",
        ] {
            let zone = Zone::new(name);
            let n = parse_date("2026-01-01").unwrap();
            let r = Range::days(n, n + 364, &zone);
            let runs = r.offset_runs(&zone);
            let (a, b) = r.quarters();
            assert_eq!(runs.first().map(|r| r.0), Some(a), "{name}");
            assert_eq!(runs.last().map(|r| r.1), Some(b), "{name}");
            assert!(runs
                .windows(2)
                .all(|w| w[0].1 == w[1].0 && w[0].2 != w[1].2));
            let dst = !matches!(name, "Asia/Kolkata" | "Asia/Kathmandu" | "UTC");
            assert_eq!(runs.len(), if dst { 3 } else { 1 }, "{name}");
            for (from, to, off) in runs {
                for q in from..to {
                    assert_eq!((q + off).div_euclid(day_q), zone.local_day(q * QUARTER_MS));
                }
            }
        }
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
