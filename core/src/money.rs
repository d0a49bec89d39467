//! Money is integer micro-USD everywhere; floats never accumulate.

/// Micro-USD (1e-6 USD).
pub type MicroUsd = u64;

/// Renders micro-USD as a decimal USD string with six fractional digits, exactly.
pub fn format_usd(micro: MicroUsd) -> String {
    format!("{}.{:06}", micro / 1_000_000, micro % 1_000_000)
}

/// Renders with two decimals, rounding half up, for display.
pub fn format_usd_cents(micro: MicroUsd) -> String {
    let cents = (micro + 5_000) / 10_000;
    format!("${}.{:02}", cents / 100, cents % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_exactly() {
        assert_eq!(format_usd(0), "0.000000");
        assert_eq!(format_usd(1_234_567), "1.234567");
        assert_eq!(format_usd_cents(1_234_567), "$1.23");
        assert_eq!(format_usd_cents(1_235_000), "$1.24");
        assert_eq!(format_usd_cents(999), "$0.00");
    }
}
