//! The team's time zone: dashboards count days as the team lives them.
//! Aggregates are kept per UTC quarter hour, which every offset in use and
//! every DST step divides, so a local day is a whole number of quarters and
//! changing the team's zone re-buckets without rewriting anything.

use jiff::tz::TimeZone;
use jiff::Timestamp;
use tally_core::time::{civil_from_days, DAY_MS, QUARTER_MS};

pub struct Zone {
    pub name: String,
    tz: TimeZone,
}

impl Zone {
    /// Unknown names fall back to UTC rather than failing a page; settings
    /// validate names before storing them.
    pub fn new(name: &str) -> Zone {
        match TimeZone::get(name) {
            Ok(tz) => Zone {
                name: name.to_string(),
                tz,
            },
            Err(_) => Zone {
                name: "UTC".into(),
                tz: TimeZone::UTC,
            },
        }
    }

    /// The zones a team picks from: the bundled IANA database's names for
    /// places (Region/City) and UTC, sorted; legacy aliases (EST5EDT,
    /// Etc/GMT+3, US/Pacific) are accepted when typed but not offered.
    pub fn names() -> Vec<String> {
        let mut names: Vec<String> = jiff::tz::db()
            .available()
            .map(|n| n.as_str().to_string())
            .filter(|n| {
                n == "UTC"
                    || [
                        "Africa/",
                        "America/",
                        "Antarctica/",
                        "Arctic/",
                        "Asia/",
                        "Atlantic/",
                        "Australia/",
                        "Europe/",
                        "Indian/",
                        "Pacific/",
                    ]
                    .iter()
                    .any(|p| n.starts_with(p))
            })
            .collect();
        names.sort();
        names.dedup();
        names
    }

    pub fn valid(name: &str) -> bool {
        !name.is_empty() && name.len() <= 64 && TimeZone::get(name).is_ok()
    }

    fn offset_ms(&self, ms: i64) -> i64 {
        Timestamp::from_millisecond(ms)
            .map(|ts| self.tz.to_offset(ts).seconds() as i64 * 1000)
            .unwrap_or(0)
    }

    /// Local calendar day (days since 1970-01-01) of an instant.
    pub fn local_day(&self, ms: i64) -> i64 {
        (ms + self.offset_ms(ms)).div_euclid(DAY_MS)
    }

    /// The instant a local day starts (its first existing minute on DST days).
    pub fn day_start(&self, day: i64) -> i64 {
        let (y, m, d) = civil_from_days(day);
        jiff::civil::Date::new(y as i16, m as i8, d as i8)
            .and_then(|date| date.to_zoned(self.tz.clone()))
            .map(|z| z.timestamp().as_millisecond())
            .unwrap_or(day * DAY_MS)
    }

    /// The zone's UTC offset at the start of quarter `q`, in whole quarters
    /// (offsets before standard time, such as local mean time, round down).
    fn offset_quarters(&self, q: i64) -> i64 {
        self.offset_ms(q * QUARTER_MS).div_euclid(QUARTER_MS)
    }

    /// Quarters `[from, to)` cut where the UTC offset changes, as
    /// `(from, to, offset)` with the offset in quarters: within one run a
    /// quarter's local day is `(quarter + offset) / quarters per day`, which
    /// D1 computes itself, so a year reads back one row per day and model.
    pub fn offset_runs(&self, from: i64, to: i64) -> Vec<(i64, i64, i64)> {
        const DAY_Q: i64 = DAY_MS / QUARTER_MS;
        let mut runs = Vec::new();
        let mut start = from;
        while start < to {
            let off = self.offset_quarters(start);
            // Offsets change at most a few times a year and never twice a
            // day: walk a day at a time, then bisect the day that changed.
            let mut lo = start;
            let mut hi = start;
            loop {
                hi = (hi + DAY_Q).min(to);
                if hi == to || self.offset_quarters(hi) != off {
                    break;
                }
                lo = hi;
            }
            if hi == to && self.offset_quarters(to - 1) == off {
                runs.push((start, to, off));
                break;
            }
            // The first quarter of (lo, hi] whose offset differs.
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                if self.offset_quarters(mid) == off {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            runs.push((start, hi, off));
            start = hi;
        }
        runs
    }

    /// `YYYY-MM-DD HH:MM` in the zone.
    pub fn time(&self, ms: i64) -> String {
        let local = ms + self.offset_ms(ms);
        let s = local.rem_euclid(DAY_MS) / 1000;
        format!(
            "{} {:02}:{:02}",
            tally_core::time::utc_date(local),
            s / 3600,
            s / 60 % 60
        )
    }

    pub fn date(&self, day: i64) -> String {
        tally_core::time::utc_date(day * DAY_MS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_picker_offers_places_and_utc_only() {
        let names = Zone::names();
        for n in ["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata"] {
            assert!(names.iter().any(|x| x == n), "{n}");
        }
        for n in ["EST5EDT", "US/Pacific", "Etc/GMT+3"] {
            assert!(!names.iter().any(|x| x == n), "{n}");
            assert!(Zone::valid(n), "{n} still accepted");
        }
        assert!(names.windows(2).all(|w| w[0] < w[1]));
        assert!(names.iter().all(|n| Zone::valid(n)));
    }
}
