//! Money is an exact integer count of pico-USD (1e-12 USD) from the price table
//! to the dashboard; it is rounded only where it is displayed.
//!
//! Why pico: list prices are quoted per million tokens with up to four (Gemini:
//! five) decimals, so one token costs a whole number of pico-USD for every price
//! with up to six decimals per MTok. A test proves every rate of the embedded
//! table (and its fast multipliers) prices to whole pico-USD. Rounding each
//! request to a micro-dollar, as version one did, biased every total upward
//! (cache reads at $0.30/MTok are 0.3 µ$ a token).

use std::fmt;

/// One request's cost. Bounded by the wire limits (≤ 10M tokens a field) to
/// well below 2^64.
pub type PicoUsd = u64;

pub const PICO_PER_MICRO: u64 = 1_000_000;
pub const PICO_PER_USD: u128 = 1_000_000_000_000;

/// A sum of any number of requests, exact.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Usd(u128);

impl Usd {
    pub const ZERO: Usd = Usd(0);

    pub const fn from_pico(pico: u128) -> Usd {
        Usd(pico)
    }

    /// From D1's pair of columns: whole micro-dollars plus the pico-dollars
    /// below one micro-dollar. Both halves stay inside JavaScript's exact
    /// integer range where a single pico column would not.
    pub fn from_parts(micro: i64, sub_micro_pico: i64) -> Usd {
        let micro = micro.max(0) as u128;
        let rest = sub_micro_pico.max(0) as u128;
        Usd(micro * PICO_PER_MICRO as u128 + rest)
    }

    pub const fn pico(self) -> u128 {
        self.0
    }

    /// Whole micro-dollars (truncated) and the pico-dollars below them.
    pub fn parts(self) -> (u64, u64) {
        let m = PICO_PER_MICRO as u128;
        (
            u64::try_from(self.0 / m).unwrap_or(u64::MAX),
            (self.0 % m) as u64,
        )
    }

    pub fn saturating_add(self, o: Usd) -> Usd {
        Usd(self.0.saturating_add(o.0))
    }

    pub fn add_pico(&mut self, p: PicoUsd) {
        self.0 = self.0.saturating_add(p as u128);
    }

    /// Rounded half up to `places` decimals (0..=12) of a dollar.
    pub fn rounded(self, places: u32) -> u128 {
        let places = places.min(12);
        let unit = 10u128.pow(12 - places);
        self.0 / unit + u128::from(self.0 % unit >= unit - unit / 2)
    }

    /// "1234.567890" with `places` decimals, rounded half up once.
    pub fn decimal(self, places: u32) -> String {
        let places = places.min(12);
        let r = self.rounded(places);
        if places == 0 {
            return r.to_string();
        }
        let scale = 10u128.pow(places);
        format!(
            "{}.{:0width$}",
            r / scale,
            r % scale,
            width = places as usize
        )
    }

    /// Micro-dollars, rounded half up: what agents before the pico wire sent.
    pub fn micro_rounded(self) -> u128 {
        self.rounded(6)
    }

    /// For display: dollars and cents, "$1,234.57".
    pub fn cents(self) -> String {
        let c = self.rounded(2);
        format!("${}.{:02}", group(c / 100), c % 100)
    }

    /// For display: enough digits that small amounts do not read as $0.00
    /// ($1,234.56, $12.35, $0.0042, $0.000003), always rounded half up.
    pub fn human(self) -> String {
        if self.0 == 0 {
            return "$0.00".into();
        }
        if self.rounded(6) == 0 {
            return "<$0.000001".into();
        }
        for places in 2..=6u32 {
            let r = self.rounded(places);
            // Two significant digits below a cent.
            if r >= 10 || places == 6 {
                if places == 2 {
                    return self.cents();
                }
                let scale = 10u128.pow(places);
                return format!(
                    "${}.{:0width$}",
                    group(r / scale),
                    r % scale,
                    width = places as usize
                );
            }
        }
        self.cents()
    }
}

impl std::ops::Add for Usd {
    type Output = Usd;
    fn add(self, o: Usd) -> Usd {
        self.saturating_add(o)
    }
}

impl std::ops::AddAssign for Usd {
    fn add_assign(&mut self, o: Usd) {
        *self = self.saturating_add(o);
    }
}

impl std::iter::Sum for Usd {
    fn sum<I: Iterator<Item = Usd>>(iter: I) -> Usd {
        iter.fold(Usd::ZERO, |a, b| a + b)
    }
}

/// A string of pico-USD on the wire and in queue messages: exact in JSON
/// readers that turn numbers into doubles (JavaScript, D1's bindings).
impl serde::Serialize for Usd {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.to_string())
    }
}

impl<'de> serde::Deserialize<'de> for Usd {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Usd, D::Error> {
        let s = String::deserialize(d)?;
        if s.is_empty() || s.len() > 39 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(serde::de::Error::custom(
                "pico-USD must be a string of digits",
            ));
        }
        s.parse::<u128>().map(Usd).map_err(serde::de::Error::custom)
    }
}

/// For JSON read by people and spreadsheets: exact dollars as a decimal
/// string with every pico-dollar (`"12.345678901234"`), never a float.
pub fn as_decimal<S: serde::Serializer>(u: &Usd, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&u.to_string())
}

impl fmt::Display for Usd {
    /// Exact: every pico-dollar printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.decimal(12))
    }
}

/// Thousands separators: 1234567 → "1,234,567".
pub fn group(n: u128) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_round_trip() {
        let u = Usd::from_pico(1_234_567_890_123);
        assert_eq!(u.parts(), (1_234_567, 890_123));
        assert_eq!(Usd::from_parts(1_234_567, 890_123), u);
        assert_eq!(Usd::from_parts(-5, -1), Usd::ZERO);
    }

    #[test]
    fn rounds_half_up_only_when_displayed() {
        // 0.3 µ$ a token, 5 tokens = 1.5 µ$; summed exactly before rounding.
        let mut u = Usd::ZERO;
        for _ in 0..5 {
            u.add_pico(300_000);
        }
        assert_eq!(u.pico(), 1_500_000);
        assert_eq!(u.decimal(6), "0.000002");
        assert_eq!(u.micro_rounded(), 2);
        assert_eq!(Usd::from_pico(1_499_999).decimal(6), "0.000001");
        assert_eq!(Usd::from_pico(1_234_567_000_000).decimal(2), "1.23");
        assert_eq!(Usd::from_pico(1_235_000_000_000).decimal(2), "1.24");
        assert_eq!(Usd::from_pico(7).to_string(), "0.000000000007");
        assert_eq!(Usd::from_pico(5).decimal(0), "0");
    }

    #[test]
    fn travels_as_an_exact_string() {
        let big = Usd::from_pico(123_456_789_012_345_678_901_234);
        let j = serde_json::to_string(&big).unwrap();
        assert_eq!(j, "\"123456789012345678901234\"");
        assert_eq!(serde_json::from_str::<Usd>(&j).unwrap(), big);
        assert!(serde_json::from_str::<Usd>("\"-1\"").is_err());
        assert!(serde_json::from_str::<Usd>("12").is_err());
    }

    #[test]
    fn human_formats_by_magnitude() {
        let usd = |dollars: f64| Usd::from_pico((dollars * 1e12).round() as u128);
        assert_eq!(usd(1234.567).human(), "$1,234.57");
        assert_eq!(usd(12.345).human(), "$12.35");
        assert_eq!(usd(0.1).human(), "$0.10");
        assert_eq!(usd(0.0042).human(), "$0.0042");
        assert_eq!(usd(0.000003).human(), "$0.000003");
        assert_eq!(Usd::from_pico(1).human(), "<$0.000001");
        assert_eq!(Usd::ZERO.human(), "$0.00");
        assert_eq!(usd(1_000_000.0).cents(), "$1,000,000.00");
        assert_eq!(group(999), "999");
        assert_eq!(group(1000), "1,000");
    }
}
