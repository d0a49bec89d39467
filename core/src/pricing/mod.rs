//! Exact request pricing from an embedded, reviewable price table.
//!
//! `core/prices/prices.json` lists prices as exact decimal strings in USD per
//! million tokens. They are loaded as integer atto-USD (1e-18 USD) per token,
//! so the cost of a request is an exact integer sum, expressed in pico-USD
//! (`money`): whole for every rate with up to six decimals per MTok, which a
//! test checks for every row of the embedded table. A float never touches a
//! price: the LiteLLM converter turns LiteLLM's floats into decimals through
//! their shortest round-trip text.

use std::sync::OnceLock;

use crate::event::WireEvent;
use crate::money::PicoUsd;
use crate::usage::TokenUsage;

mod decimal;
#[cfg(any(test, feature = "litellm"))]
mod litellm;
mod table;

#[cfg(any(test, feature = "litellm"))]
pub use litellm::{table_from_litellm, table_from_litellm_with};
pub use table::PriceTable;

/// atto-USD per pico-USD.
const ATTO_PER_PICO: u128 = 1_000_000;
/// A price per million tokens with 12 fractional digits is a whole number of
/// atto-USD per token; finer prices cannot be represented exactly and are refused.
const MTOK_SCALE: u32 = 12;

/// Anthropic prices fast mode on Opus 4.6 at 6× the standard rates ($30 / $150
/// per MTok). A model whose table row names no multiplier gets this one: a
/// `speed: "fast"` line is never billed at standard rates.
pub const DEFAULT_FAST_MULTIPLIER: Ratio = Ratio { num: 6, den: 1 };

static EMBEDDED: &str = include_str!("../../prices/prices.json");

/// The embedded table, parsed on first use.
pub fn default_table() -> &'static PriceTable {
    static TABLE: OnceLock<PriceTable> = OnceLock::new();
    TABLE.get_or_init(|| {
        // A test parses the same bytes, so this cannot fail in a released build.
        PriceTable::from_json(EMBEDDED).expect("embedded core/prices/prices.json is valid")
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priced {
    /// Exact pico-USD.
    Pico(PicoUsd),
    /// The model is not in the table: shown as "unpriced", never as $0.
    Unpriced,
}

impl Priced {
    pub fn pico(self) -> Option<PicoUsd> {
        match self {
            Priced::Pico(c) => Some(c),
            Priced::Unpriced => None,
        }
    }
}

/// Prices one request. `fast` is Claude Code's `usage.speed == "fast"`.
pub fn price_request(table: &PriceTable, model: &str, usage: &TokenUsage, fast: bool) -> Priced {
    match table.lookup(model) {
        Some(m) => Priced::Pico(m.cost(usage, fast)),
        None => Priced::Unpriced,
    }
}

/// What the edge found when it priced a batch itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Repriced {
    /// Events whose sender's price differed from the edge's (usually an
    /// agent with an older price table), unpriced on either side included.
    pub disagreements: u64,
}

/// Replaces every event's price with the table's: the stored numbers never
/// depend on what an agent claims.
pub fn reprice(table: &PriceTable, events: &mut [WireEvent]) -> Repriced {
    let mut r = Repriced::default();
    for e in events {
        let edge = price_request(table, &e.model, &e.tokens, e.fast).pico();
        if edge != e.cost_pico_usd {
            r.disagreements += 1;
        }
        e.cost_pico_usd = edge;
    }
    r
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PricingError {
    #[error("price table is not valid JSON: {0}")]
    Json(String),
    #[error("{model}: {field} = {value:?} is not an exact decimal price")]
    BadPrice {
        model: String,
        field: String,
        value: String,
    },
    #[error("alias {alias} points at {target}, which is not a model of the table")]
    DanglingAlias { alias: String, target: String },
    #[error("the LiteLLM table yielded no Claude or OpenAI chat model")]
    Empty,
}

/// An exact non-negative rational, used for the fast-mode multiplier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ratio {
    pub num: u128,
    pub den: u128,
}

/// Prices in atto-USD per token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rates {
    pub input: u128,
    pub output: u128,
    pub cache_write_5m: u128,
    pub cache_write_1h: u128,
    pub cache_read: u128,
}

impl Rates {
    /// Exact cost in atto-USD; `None` only for absurd token counts.
    fn atto(&self, u: &TokenUsage) -> Option<u128> {
        let parts = [
            (u.input, self.input),
            (u.output, self.output),
            (u.cache_write_5m, self.cache_write_5m),
            (u.cache_write_1h, self.cache_write_1h),
            (u.cache_read, self.cache_read),
        ];
        parts.iter().try_fold(0u128, |acc, &(n, p)| {
            acc.checked_add((n as u128).checked_mul(p)?)
        })
    }
}

/// Rates that replace the standard ones for a whole request once its prompt
/// exceeds `above_tokens` (Anthropic's 1M-context premium, OpenAI's >272k tier).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LongContext {
    pub above_tokens: u64,
    pub rates: Rates,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelPrice {
    pub name: String,
    pub rates: Rates,
    pub long_context: Option<LongContext>,
    pub fast_multiplier: Option<Ratio>,
}

impl ModelPrice {
    /// The rates a request is billed at: all of it at the long-context rates
    /// once the prompt is over the threshold (exactly the threshold is not over).
    pub fn rates_for(&self, usage: &TokenUsage) -> &Rates {
        match &self.long_context {
            Some(lc) if saturating_prompt(usage) > lc.above_tokens => &lc.rates,
            _ => &self.rates,
        }
    }

    /// Pico-USD. Exact for every rate that is a whole number of pico-USD per
    /// token after the fast multiplier (the embedded table, by test); a finer
    /// rate would be rounded half up once for the whole request.
    pub fn cost(&self, usage: &TokenUsage, fast: bool) -> PicoUsd {
        let Some(atto) = self.rates_for(usage).atto(usage) else {
            return PicoUsd::MAX;
        };
        let m = if fast {
            self.fast_multiplier.unwrap_or(DEFAULT_FAST_MULTIPLIER)
        } else {
            Ratio { num: 1, den: 1 }
        };
        let (Some(n), Some(d)) = (atto.checked_mul(m.num), ATTO_PER_PICO.checked_mul(m.den)) else {
            return PicoUsd::MAX;
        };
        let pico = (n / d) + u128::from(n % d >= d - d / 2);
        PicoUsd::try_from(pico).unwrap_or(PicoUsd::MAX)
    }
}

/// `TokenUsage::prompt_tokens` that cannot overflow on hostile input.
fn saturating_prompt(u: &TokenUsage) -> u64 {
    [u.cache_write_5m, u.cache_write_1h, u.cache_read]
        .iter()
        .fold(u.input, |acc, &n| acc.saturating_add(n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::PICO_PER_MICRO;

    fn u(input: u64, output: u64, w5: u64, w1: u64, read: u64) -> TokenUsage {
        TokenUsage {
            input,
            output,
            cache_write_5m: w5,
            cache_write_1h: w1,
            cache_read: read,
        }
    }

    fn cost(model: &str, usage: TokenUsage, fast: bool) -> Priced {
        price_request(default_table(), model, &usage, fast)
    }

    #[test]
    fn embedded_table_loads_with_provenance() {
        let t = default_table();
        assert!(t.source().contains("LiteLLM"), "{}", t.source());
        assert_eq!(t.date().len(), 10);
        assert!(t.models().count() > 40);
    }

    #[test]
    fn sonnet_example_from_the_brief() {
        // 1000×3 + 500×15 + 2000×3.75 + 10000×0.30 = 3000+7500+7500+3000
        assert_eq!(
            cost(
                "claude-sonnet-4-5-20250929",
                u(1000, 500, 2000, 0, 10_000),
                false
            ),
            Priced::Pico(21_000_000_000)
        );
    }

    #[test]
    fn formats_table_is_pinned() {
        // 100,000 tokens of one kind (below the 200k long-context threshold) cost
        // the FORMATS.md per-MTok price × 100,000 µ$: input, 5m write, 1h write, read, output.
        let n = 100_000;
        let cases: &[(&str, [u64; 5])] = &[
            (
                "claude-opus-4-5",
                [500_000, 625_000, 1_000_000, 50_000, 2_500_000],
            ),
            (
                "claude-opus-4-6",
                [500_000, 625_000, 1_000_000, 50_000, 2_500_000],
            ),
            (
                "claude-opus-4-5-20251101",
                [500_000, 625_000, 1_000_000, 50_000, 2_500_000],
            ),
            (
                "claude-opus-4-1",
                [1_500_000, 1_875_000, 3_000_000, 150_000, 7_500_000],
            ),
            (
                "claude-opus-4-20250514",
                [1_500_000, 1_875_000, 3_000_000, 150_000, 7_500_000],
            ),
            (
                "claude-sonnet-4-20250514",
                [300_000, 375_000, 600_000, 30_000, 1_500_000],
            ),
            (
                "claude-sonnet-4-5-20250929",
                [300_000, 375_000, 600_000, 30_000, 1_500_000],
            ),
            (
                "claude-haiku-4-5-20251001",
                [100_000, 125_000, 200_000, 10_000, 500_000],
            ),
            (
                "claude-3-5-haiku-20241022",
                [80_000, 100_000, 160_000, 8_000, 400_000],
            ),
        ];
        for (model, [i, w5, w1, r, o]) in cases {
            let got = [
                cost(model, u(n, 0, 0, 0, 0), false),
                cost(model, u(0, 0, n, 0, 0), false),
                cost(model, u(0, 0, 0, n, 0), false),
                cost(model, u(0, 0, 0, 0, n), false),
                cost(model, u(0, n, 0, 0, 0), false),
            ];
            let want = [i, w5, w1, r, o].map(|c| Priced::Pico(*c * PICO_PER_MICRO));
            assert_eq!(got, want, "{model}");
        }
    }

    #[test]
    fn long_context_bills_the_whole_request() {
        // Exactly 200,000 prompt tokens is not over: 200,000 × $3 = 600,000 µ$.
        assert_eq!(
            cost("claude-sonnet-4-5", u(200_000, 0, 0, 0, 0), false),
            Priced::Pico(600_000_000_000)
        );
        // 200,001 is: every token at $6 → 1,200,006 µ$.
        assert_eq!(
            cost("claude-sonnet-4-5", u(200_001, 0, 0, 0, 0), false),
            Priced::Pico(1_200_006_000_000)
        );
        // Cache tokens count towards the threshold and take the premium too:
        // 1×6 + 100,000×7.5 + 100,000×0.6 + 1,000×22.5 = 6 + 750,000 + 60,000 + 22,500.
        assert_eq!(
            cost(
                "claude-sonnet-4-20250514",
                u(1, 1000, 100_000, 0, 100_000),
                false
            ),
            Priced::Pico(832_506_000_000)
        );
        // 1h writes at the premium: 200,001 × $12.
        assert_eq!(
            cost("claude-sonnet-4", u(0, 0, 0, 200_001, 0), false),
            Priced::Pico(2_400_012_000_000)
        );
        // Opus 4.5 has no premium.
        assert_eq!(
            cost("claude-opus-4-5", u(300_000, 0, 0, 0, 0), false),
            Priced::Pico(1_500_000_000_000)
        );
    }

    #[test]
    fn fast_mode_multiplies_exactly() {
        // Opus 4.6 names no multiplier in LiteLLM: 6×. (1000×5 + 100×25) × 6 = 45,000.
        assert_eq!(
            cost("claude-opus-4-6", u(1000, 100, 0, 0, 0), true),
            Priced::Pico(45_000_000_000)
        );
        assert_eq!(
            cost("claude-opus-4-6", u(1000, 100, 0, 0, 0), false),
            Priced::Pico(7_500_000_000)
        );
    }

    #[test]
    fn openai_long_context_tier() {
        // gpt-5.4: 2.5 / 0.25 / 15 up to 272,000 prompt tokens, then 5 / 0.5 / 22.5 for all of it.
        // 72,000×2.5 + 200,000×0.25 + 1,000×15 = 180,000 + 50,000 + 15,000.
        assert_eq!(
            cost("gpt-5.4", u(72_000, 1000, 0, 0, 200_000), false),
            Priced::Pico(245_000_000_000)
        );
        // 72,001×5 + 200,000×0.5 + 1,000×22.5 = 360,005 + 100,000 + 22,500.
        assert_eq!(
            cost("gpt-5.4", u(72_001, 1000, 0, 0, 200_000), false),
            Priced::Pico(482_505_000_000)
        );
    }

    #[test]
    fn gemini_tier_above_200k_prompt_tokens() {
        // gemini-2.5-pro: 1.25 / 0.125 cached / 10 up to 200,000 prompt tokens
        // (cached included), then 2.5 / 0.25 / 15 for the whole request.
        // 100,000×1.25 + 100,000×0.125 + 2,000×10 = 125,000 + 12,500 + 20,000.
        assert_eq!(
            cost("gemini-2.5-pro", u(100_000, 2000, 0, 0, 100_000), false),
            Priced::Pico(157_500_000_000)
        );
        // 100,001×2.5 + 100,000×0.25 + 2,000×15 = 250,002.5 + 25,000 + 30,000.
        assert_eq!(
            cost("gemini-2.5-pro", u(100_001, 2000, 0, 0, 100_000), false),
            Priced::Pico(305_002_500_000)
        );
        // Flash has no tier: 300,000×0.3 + 1,000×2.5 = 90,000 + 2,500.
        assert_eq!(
            cost("gemini-2.5-flash", u(300_000, 1000, 0, 0, 0), false),
            Priced::Pico(92_500_000_000)
        );
    }

    #[test]
    fn absurd_counts_saturate_instead_of_panicking() {
        let max = u(u64::MAX, u64::MAX, u64::MAX, u64::MAX, u64::MAX);
        assert_eq!(
            cost("claude-opus-4-6", max, true),
            Priced::Pico(PicoUsd::MAX)
        );
    }

    #[test]
    fn table_fast_multiplier_wins_over_the_default() {
        // LiteLLM gives Opus 4.8 a fast multiplier of 2: (1000×5 + 100×25) × 2.
        assert_eq!(
            cost("claude-opus-4-8", u(1000, 100, 0, 0, 0), true),
            Priced::Pico(15_000_000_000)
        );
    }

    #[test]
    fn sub_micro_costs_are_exact() {
        // Haiku 4.5 cache reads are 0.1 µ$ each: 4 reads are 0.4 µ$, not 0.
        assert_eq!(
            cost("claude-haiku-4-5", u(0, 0, 0, 0, 4), false),
            Priced::Pico(400_000)
        );
        assert_eq!(
            cost("claude-haiku-4-5", u(0, 0, 0, 0, 5), false),
            Priced::Pico(500_000)
        );
        // Sonnet: 1 read (0.3) + 1 input (3) + 1 5m write (3.75) = 7.05 µ$;
        // 2 reads + 2 writes = 0.6 + 7.5 = 8.1 µ$.
        assert_eq!(
            cost("claude-sonnet-4-5", u(1, 0, 1, 0, 1), false),
            Priced::Pico(7_050_000)
        );
        assert_eq!(
            cost("claude-sonnet-4-5", u(0, 0, 2, 0, 2), false),
            Priced::Pico(8_100_000)
        );
    }

    /// The promise of `money`: every rate of the embedded table, standard,
    /// long-context and fast, is a whole number of pico-USD per token, so no
    /// request is ever rounded.
    #[test]
    fn every_embedded_rate_is_whole_pico_per_token() {
        let whole = |atto: u128, m: Ratio, what: &str| {
            assert_eq!(
                (atto * m.num) % (ATTO_PER_PICO * m.den),
                0,
                "{what}: {atto} atto-USD × {}/{} is not whole pico-USD",
                m.num,
                m.den
            );
        };
        for p in default_table().models() {
            let fast = p.fast_multiplier.unwrap_or(DEFAULT_FAST_MULTIPLIER);
            let mut all = vec![p.rates];
            all.extend(p.long_context.map(|l| l.rates));
            for r in all {
                for (name, atto) in [
                    ("input", r.input),
                    ("output", r.output),
                    ("cache_write_5m", r.cache_write_5m),
                    ("cache_write_1h", r.cache_write_1h),
                    ("cache_read", r.cache_read),
                ] {
                    let what = format!("{} {name}", p.name);
                    whole(atto, Ratio { num: 1, den: 1 }, &what);
                    whole(atto, fast, &format!("{what} (fast)"));
                }
            }
        }
    }

    /// 400 sessions' worth of requests summed per request equal the exact sum
    /// of their token counts × rates: nothing is lost or gained in between.
    #[test]
    fn sums_of_requests_equal_the_exact_total() {
        let t = default_table();
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        for model in [
            "claude-sonnet-4-5",
            "claude-haiku-4-5",
            "claude-opus-4-1",
            "gpt-5",
        ] {
            let p = t.lookup(model).unwrap();
            let (mut summed, mut exact_atto) = (0u128, 0u128);
            for _ in 0..4_000 {
                let usage = u(
                    next(5_000),
                    next(2_000),
                    next(3_000),
                    next(100),
                    next(150_000),
                );
                summed += u128::from(p.cost(&usage, false));
                exact_atto += p.rates_for(&usage).atto(&usage).unwrap();
            }
            assert_eq!(summed * ATTO_PER_PICO, exact_atto, "{model}");
        }
    }

    #[test]
    fn unknown_models_are_unpriced() {
        assert_eq!(
            cost("claude-imaginary-9", u(1, 1, 0, 0, 0), false),
            Priced::Unpriced
        );
        assert_eq!(cost("", u(1, 1, 0, 0, 0), false), Priced::Unpriced);
        assert_eq!(
            cost("<synthetic>", u(0, 0, 0, 0, 0), false),
            Priced::Unpriced
        );
    }

    #[test]
    fn model_spellings_normalise() {
        let t = default_table();
        let name = |m: &str| t.lookup(m).map(|p| p.name.clone());
        for (spelling, want) in [
            ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
            ("anthropic/claude-sonnet-4-5", "claude-sonnet-4-5"),
            ("claude-sonnet-4@20250514", "claude-sonnet-4"),
            (
                "us.anthropic.claude-sonnet-4-20250514-v1:0",
                "claude-sonnet-4",
            ),
            (
                "bedrock/anthropic.claude-opus-4-1-20250805-v1:0",
                "claude-opus-4-1",
            ),
            ("claude-3-5-haiku-latest", "claude-3-5-haiku"),
            ("claude-sonnet-4.5", "claude-sonnet-4-5"),
            ("claude-sonnet-4-5-20250929[1m]", "claude-sonnet-4-5"),
            ("Claude-Opus-4-1", "claude-opus-4-1"),
            ("claude-opus-4-6@default", "claude-opus-4-6"),
            ("openai/gpt-5-codex", "gpt-5-codex"),
            ("gpt-5-2025-08-07", "gpt-5"),
            ("gpt-5.1-codex-max", "gpt-5.1-codex-max"),
        ] {
            assert_eq!(name(spelling).as_deref(), Some(want), "{spelling}");
        }
        assert_eq!(name("claude-sonnet"), None);
        assert_eq!(name("gpt-5-codex-nonexistent"), None);
    }

    #[test]
    fn codex_models_price_cached_input_at_the_read_rate() {
        // gpt-5: input 1.25, read 0.125, output 10 per MTok.
        // 1,000,000 × 1.25 + 1,000,000 × 0.125 + 100,000 × 10 = 1,250,000 + 125,000 + 1,000,000.
        assert_eq!(
            cost("gpt-5-codex", u(1_000_000, 100_000, 0, 0, 1_000_000), false),
            Priced::Pico(2_375_000_000_000)
        );
    }

    #[test]
    fn rows_without_cache_prices_follow_the_multipliers() {
        let t = PriceTable::from_json(
            r#"{"source":"t","date":"2026-01-01","models":{"m":{"input":"2","output":"8"}},"aliases":{"m-1":"m"}}"#,
        )
        .unwrap();
        // 1e6 × (2.5 + 4 + 0.2) = 6,700,000
        assert_eq!(
            price_request(&t, "m-1", &u(0, 0, 1_000_000, 1_000_000, 1_000_000), false),
            Priced::Pico(6_700_000_000_000)
        );
        let dangling =
            PriceTable::from_json(r#"{"source":"t","date":"d","models":{},"aliases":{"a":"b"}}"#);
        assert!(matches!(dangling, Err(PricingError::DanglingAlias { .. })));
        let bad = PriceTable::from_json(
            r#"{"source":"t","date":"d","models":{"m":{"input":"3e-6","output":"1"}}}"#,
        );
        assert!(matches!(bad, Err(PricingError::BadPrice { .. })));
    }
}
