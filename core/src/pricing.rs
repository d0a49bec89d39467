//! Exact request pricing from an embedded, reviewable price table.
//!
//! `core/prices/prices.json` lists prices as exact decimal strings in USD per
//! million tokens. They are loaded as integer atto-USD (1e-18 USD) per token,
//! so the cost of a request is an exact integer sum that is rounded once, half
//! up, to micro-USD. A float never touches a price: the LiteLLM converter turns
//! LiteLLM's floats into decimals through their shortest round-trip text.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::money::MicroUsd;
use crate::usage::TokenUsage;

/// atto-USD per micro-USD.
const ATTO_PER_MICRO: u128 = 1_000_000_000_000;
/// A price per million tokens with 12 fractional digits is a whole number of
/// atto-USD per token; finer prices cannot be represented exactly and are refused.
const MTOK_SCALE: u32 = 12;

/// Anthropic prices fast mode on Opus 4.6 at 6× the standard rates ($30 / $150
/// per MTok). A model whose table row names no multiplier gets this one: a
/// `speed: "fast"` line is never billed at standard rates.
pub const DEFAULT_FAST_MULTIPLIER: Ratio = Ratio { num: 6, den: 1 };

static EMBEDDED: &str = include_str!("../prices/prices.json");

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
    Usd(MicroUsd),
    /// The model is not in the table: shown as "unpriced", never as $0.
    Unpriced,
}

impl Priced {
    pub fn micro_usd(self) -> Option<MicroUsd> {
        match self {
            Priced::Usd(c) => Some(c),
            Priced::Unpriced => None,
        }
    }
}

/// Prices one request. `fast` is Claude Code's `usage.speed == "fast"`.
pub fn price_request(table: &PriceTable, model: &str, usage: &TokenUsage, fast: bool) -> Priced {
    match table.lookup(model) {
        Some(m) => Priced::Usd(m.cost(usage, fast)),
        None => Priced::Unpriced,
    }
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

    /// Micro-USD, rounded half up once for the whole request.
    pub fn cost(&self, usage: &TokenUsage, fast: bool) -> MicroUsd {
        let Some(atto) = self.rates_for(usage).atto(usage) else {
            return MicroUsd::MAX;
        };
        let m = if fast {
            self.fast_multiplier.unwrap_or(DEFAULT_FAST_MULTIPLIER)
        } else {
            Ratio { num: 1, den: 1 }
        };
        let (Some(n), Some(d)) = (atto.checked_mul(m.num), ATTO_PER_MICRO.checked_mul(m.den))
        else {
            return MicroUsd::MAX;
        };
        let micro = (n / d) + u128::from(n % d >= d - d / 2);
        MicroUsd::try_from(micro).unwrap_or(MicroUsd::MAX)
    }
}

/// `TokenUsage::prompt_tokens` that cannot overflow on hostile input.
fn saturating_prompt(u: &TokenUsage) -> u64 {
    [u.cache_write_5m, u.cache_write_1h, u.cache_read]
        .iter()
        .fold(u.input, |acc, &n| acc.saturating_add(n))
}

pub struct PriceTable {
    source: String,
    date: String,
    models: Vec<ModelPrice>,
    by_name: HashMap<String, usize>,
}

impl fmt::Debug for PriceTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PriceTable")
            .field("source", &self.source)
            .field("date", &self.date)
            .field("models", &self.models.len())
            .finish()
    }
}

impl PriceTable {
    /// Parses a table in the `core/prices/prices.json` format.
    pub fn from_json(json: &str) -> Result<Self, PricingError> {
        let file: TableFile =
            serde_json::from_str(json).map_err(|e| PricingError::Json(e.to_string()))?;
        let mut models = Vec::with_capacity(file.models.len());
        let mut by_name = HashMap::new();
        for (name, row) in &file.models {
            by_name.insert(name.clone(), models.len());
            models.push(row.to_price(name)?);
        }
        for (alias, target) in &file.aliases {
            let Some(&i) = by_name.get(target) else {
                return Err(PricingError::DanglingAlias {
                    alias: alias.clone(),
                    target: target.clone(),
                });
            };
            // A model row of the same name wins over an alias.
            by_name.entry(alias.clone()).or_insert(i);
        }
        Ok(PriceTable {
            source: file.source,
            date: file.date,
            models,
            by_name,
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn date(&self) -> &str {
        &self.date
    }

    pub fn models(&self) -> impl Iterator<Item = &ModelPrice> {
        self.models.iter()
    }

    /// Finds a model by its exact id or alias, else after normalising the
    /// spellings that logs and gateways use for the same model: provider
    /// prefixes (`anthropic/`, `bedrock/us.anthropic.`), Vertex `@20250514`,
    /// Bedrock `-v1:0`, Claude Code's `[1m]`, `-latest`, date suffixes, and
    /// dotted Claude versions (`claude-sonnet-4.5`).
    pub fn lookup(&self, model: &str) -> Option<&ModelPrice> {
        if let Some(&i) = self.by_name.get(model) {
            return Some(&self.models[i]);
        }
        let mut s = model.trim().to_ascii_lowercase();
        if let Some(p) = s.rfind('/') {
            s.drain(..=p);
        }
        if let Some(p) = s.find("anthropic.") {
            s.drain(..p + "anthropic.".len());
        }
        for stop in ['[', '@'] {
            if let Some(p) = s.find(stop) {
                s.truncate(p);
            }
        }
        strip_bedrock_version(&mut s);
        if let Some(m) = self.lookup_stripping_suffixes(&s) {
            return Some(m);
        }
        if s.starts_with("claude-") && s.contains('.') {
            return self.lookup_stripping_suffixes(&s.replace('.', "-"));
        }
        None
    }

    fn lookup_stripping_suffixes(&self, s: &str) -> Option<&ModelPrice> {
        let mut cur = s;
        loop {
            if let Some(&i) = self.by_name.get(cur) {
                return Some(&self.models[i]);
            }
            cur = strip_one_suffix(cur)?;
        }
    }
}

/// `-latest`, `-20250929` or `-2025-08-07`, whichever ends `s`.
fn strip_one_suffix(s: &str) -> Option<&str> {
    if let Some(rest) = s.strip_suffix("-latest") {
        return Some(rest);
    }
    let b = s.as_bytes();
    let digits = |r: &[u8]| r.iter().all(u8::is_ascii_digit);
    let n = b.len();
    if n > 9 && b[n - 9] == b'-' && digits(&b[n - 8..]) {
        return Some(&s[..n - 9]);
    }
    if n > 11 && b[n - 11] == b'-' && b[n - 6] == b'-' && b[n - 3] == b'-' {
        let (y, m, d) = (&b[n - 10..n - 6], &b[n - 5..n - 3], &b[n - 2..]);
        if digits(y) && digits(m) && digits(d) {
            return Some(&s[..n - 11]);
        }
    }
    None
}

/// Bedrock ids end in `-v1:0`, `-v2:0` or `-v1`.
fn strip_bedrock_version(s: &mut String) {
    let core = match s.rfind(':') {
        Some(p) if s[p + 1..].bytes().all(|c| c.is_ascii_digit()) => p,
        _ => s.len(),
    };
    if let Some(p) = s[..core].rfind("-v") {
        let v = &s[p + 2..core];
        if !v.is_empty() && v.bytes().all(|c| c.is_ascii_digit()) {
            s.truncate(p);
        }
    }
}

// ---------------------------------------------------------------------------
// The data file.

#[derive(Debug, Serialize, Deserialize)]
struct TableFile {
    source: String,
    date: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    unit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    note: Option<String>,
    models: BTreeMap<String, ModelRow>,
    #[serde(default)]
    aliases: BTreeMap<String, String>,
}

/// One model, prices in USD per million tokens as exact decimal strings.
/// Missing cache prices follow Anthropic's rule: 5m write = 1.25× input,
/// 1h write = 2× input, read = 0.1× input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ModelRow {
    input: String,
    output: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cache_write_5m: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cache_write_1h: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cache_read: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    long_context: Option<LongContextRow>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fast_multiplier: Option<String>,
    /// Where the row came from: `litellm`, `formats` (pinned by FORMATS.md) or
    /// `anthropic` (legacy models LiteLLM no longer lists).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    origin: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct LongContextRow {
    above_tokens: u64,
    input: String,
    output: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cache_write_5m: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cache_write_1h: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cache_read: Option<String>,
}

fn rates_from_strs(
    model: &str,
    prefix: &str,
    input: &str,
    output: &str,
    cw5: Option<&str>,
    cw1h: Option<&str>,
    read: Option<&str>,
) -> Result<Rates, PricingError> {
    let dec = |field: &str, v: &str| {
        Dec::parse(v).ok_or_else(|| PricingError::BadPrice {
            model: model.into(),
            field: format!("{prefix}{field}"),
            value: v.into(),
        })
    };
    let atto = |field: &str, d: Dec| {
        d.to_units(MTOK_SCALE)
            .ok_or_else(|| PricingError::BadPrice {
                model: model.into(),
                field: format!("{prefix}{field}"),
                value: d.to_string(),
            })
    };
    let input_d = dec("input", input)?;
    let pick = |field: &str, v: Option<&str>, default: Dec| match v {
        Some(v) => dec(field, v),
        None => Ok(default),
    };
    Ok(Rates {
        input: atto("input", input_d)?,
        output: atto("output", dec("output", output)?)?,
        cache_write_5m: atto(
            "cache_write_5m",
            pick("cache_write_5m", cw5, input_d.mul(Dec::new(125, 2)))?,
        )?,
        cache_write_1h: atto(
            "cache_write_1h",
            pick("cache_write_1h", cw1h, input_d.mul(Dec::new(2, 0)))?,
        )?,
        cache_read: atto(
            "cache_read",
            pick("cache_read", read, input_d.mul(Dec::new(1, 1)))?,
        )?,
    })
}

impl ModelRow {
    fn to_price(&self, name: &str) -> Result<ModelPrice, PricingError> {
        let rates = rates_from_strs(
            name,
            "",
            &self.input,
            &self.output,
            self.cache_write_5m.as_deref(),
            self.cache_write_1h.as_deref(),
            self.cache_read.as_deref(),
        )?;
        let long_context = match &self.long_context {
            None => None,
            Some(lc) => Some(LongContext {
                above_tokens: lc.above_tokens,
                rates: rates_from_strs(
                    name,
                    "long_context.",
                    &lc.input,
                    &lc.output,
                    lc.cache_write_5m.as_deref(),
                    lc.cache_write_1h.as_deref(),
                    lc.cache_read.as_deref(),
                )?,
            }),
        };
        let fast_multiplier = match &self.fast_multiplier {
            None => None,
            Some(v) => {
                let d =
                    Dec::parse(v)
                        .filter(|d| d.m > 0)
                        .ok_or_else(|| PricingError::BadPrice {
                            model: name.into(),
                            field: "fast_multiplier".into(),
                            value: v.clone(),
                        })?;
                Some(Ratio {
                    num: d.m,
                    den: 10u128.pow(d.s),
                })
            }
        };
        Ok(ModelPrice {
            name: name.into(),
            rates,
            long_context,
            fast_multiplier,
        })
    }
}

// ---------------------------------------------------------------------------
// Exact decimals.

/// `m / 10^s`, non-negative.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Dec {
    m: u128,
    s: u32,
}

impl Dec {
    const fn new(m: u128, s: u32) -> Dec {
        Dec { m, s }
    }

    /// Plain decimal text: `3`, `3.75`, `0.000003`. No sign, no exponent.
    fn parse(t: &str) -> Option<Dec> {
        let (int, frac) = t.split_once('.').unwrap_or((t, ""));
        if int.is_empty()
            || !int.bytes().all(|c| c.is_ascii_digit())
            || !frac.bytes().all(|c| c.is_ascii_digit())
        {
            return None;
        }
        if t.contains('.') && frac.is_empty() {
            return None;
        }
        let mut m: u128 = 0;
        for c in int.bytes().chain(frac.bytes()) {
            m = m.checked_mul(10)?.checked_add(u128::from(c - b'0'))?;
        }
        Some(
            Dec {
                m,
                s: u32::try_from(frac.len()).ok()?,
            }
            .normalized(),
        )
    }

    /// The exact decimal that Rust prints for `f`: the shortest text that
    /// reads back as the same float, which is what LiteLLM's authors typed.
    fn from_f64(f: f64) -> Option<Dec> {
        if !f.is_finite() || f < 0.0 {
            return None;
        }
        Dec::parse(&format!("{f}"))
    }

    fn normalized(mut self) -> Dec {
        while self.s > 0 {
            let (q, r) = (self.m / 10, self.m % 10);
            if r != 0 {
                break;
            }
            self.m = q;
            self.s -= 1;
        }
        if self.m == 0 {
            self.s = 0;
        }
        self
    }

    fn mul(self, o: Dec) -> Dec {
        // Prices are tiny integers scaled by small powers of ten: no overflow.
        Dec {
            m: self.m * o.m,
            s: self.s + o.s,
        }
        .normalized()
    }

    /// Multiplies by 10^k.
    fn shift(self, k: u32) -> Dec {
        if self.s >= k {
            Dec {
                m: self.m,
                s: self.s - k,
            }
        } else {
            Dec {
                m: self.m * 10u128.pow(k - self.s),
                s: 0,
            }
        }
    }

    /// The value in units of 10^-scale, if it is a whole number of them.
    fn to_units(self, scale: u32) -> Option<u128> {
        let d = self.normalized();
        if d.s > scale {
            return None;
        }
        d.m.checked_mul(10u128.checked_pow(scale - d.s)?)
    }
}

impl fmt::Display for Dec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.normalized();
        if d.s == 0 {
            return write!(f, "{}", d.m);
        }
        let p = 10u128.pow(d.s);
        write!(f, "{}.{:0width$}", d.m / p, d.m % p, width = d.s as usize)
    }
}

// ---------------------------------------------------------------------------
// LiteLLM → our data file.

/// (model, standard prices, long-context prices above 200k prompt tokens), each
/// as (input, 5m write, 1h write, read, output) per MTok.
type Pin = (&'static str, [&'static str; 5], Option<[&'static str; 5]>);

/// Prices that FORMATS.md states; they override LiteLLM, and fill in models
/// LiteLLM has dropped.
const FORMATS_PINS: &[Pin] = &[
    ("claude-opus-4-5", ["5", "6.25", "10", "0.5", "25"], None),
    ("claude-opus-4-6", ["5", "6.25", "10", "0.5", "25"], None),
    ("claude-opus-4-7", ["5", "6.25", "10", "0.5", "25"], None),
    ("claude-opus-4-8", ["5", "6.25", "10", "0.5", "25"], None),
    ("claude-opus-4-1", ["15", "18.75", "30", "1.5", "75"], None),
    ("claude-opus-4", ["15", "18.75", "30", "1.5", "75"], None),
    (
        "claude-sonnet-4-5",
        ["3", "3.75", "6", "0.3", "15"],
        Some(["6", "7.5", "12", "0.6", "22.5"]),
    ),
    (
        "claude-sonnet-4",
        ["3", "3.75", "6", "0.3", "15"],
        Some(["6", "7.5", "12", "0.6", "22.5"]),
    ),
    ("claude-haiku-4-5", ["1", "1.25", "2", "0.1", "5"], None),
    ("claude-3-5-haiku", ["0.8", "1", "1.6", "0.08", "4"], None),
];

/// The 1M-context premium of Sonnet 4 / 4.5 starts above this many prompt tokens.
const ANTHROPIC_LONG_CONTEXT_ABOVE: u64 = 200_000;

/// Older models Claude Code has used that LiteLLM no longer lists under the
/// `anthropic` provider, at Anthropic's published prices; added only if absent.
const LEGACY_CLAUDE: &[(&str, [&str; 5])] = &[
    ("claude-3-7-sonnet", ["3", "3.75", "6", "0.3", "15"]),
    ("claude-3-5-sonnet", ["3", "3.75", "6", "0.3", "15"]),
    ("claude-3-opus", ["15", "18.75", "30", "1.5", "75"]),
    ("claude-3-haiku", ["0.25", "0.3", "0.5", "0.03", "1.25"]),
];

/// Dated ids in Claude Code logs whose undated form is the table's key.
const PINNED_ALIASES: &[(&str, &str)] = &[
    ("claude-opus-4-1-20250805", "claude-opus-4-1"),
    ("claude-opus-4-20250514", "claude-opus-4"),
    ("claude-sonnet-4-20250514", "claude-sonnet-4"),
    ("claude-3-5-haiku-20241022", "claude-3-5-haiku"),
    ("claude-3-5-haiku-latest", "claude-3-5-haiku"),
    ("claude-3-7-sonnet-20250219", "claude-3-7-sonnet"),
    ("claude-3-7-sonnet-latest", "claude-3-7-sonnet"),
    ("claude-3-5-sonnet-20241022", "claude-3-5-sonnet"),
    ("claude-3-5-sonnet-20240620", "claude-3-5-sonnet"),
    ("claude-3-5-sonnet-latest", "claude-3-5-sonnet"),
    ("claude-3-opus-20240229", "claude-3-opus"),
    ("claude-3-haiku-20240307", "claude-3-haiku"),
];

/// Words in OpenAI model ids that are not text models Codex can run.
const OPENAI_EXCLUDE: &[&str] = &[
    "audio",
    "realtime",
    "search",
    "image",
    "tts",
    "transcribe",
    "deep-research",
    "ft:",
    "/",
    "embedding",
];

/// Converts LiteLLM's `model_prices_and_context_window.json` into our data
/// file, with a generic source and an empty date (see [`table_from_litellm_with`]).
pub fn table_from_litellm(json: &str) -> Result<String, PricingError> {
    table_from_litellm_with(json, "LiteLLM model_prices_and_context_window.json", "")
}

/// Converts LiteLLM's table, recording `source` and `date` (core reads no clock).
///
/// Keeps Anthropic `claude-*` models and OpenAI chat/responses models
/// (`gpt-*`, `o1`/`o3`/`o4…`, `codex-*`), turns each float price into the
/// exact decimal it was written as, fills absent cache prices by the
/// 1.25× / 2× / 0.1× rule (OpenAI models without a cached-input price get
/// none: cached input costs full price), applies the FORMATS.md pins, and
/// folds dated ids with the same prices as their undated model into aliases.
pub fn table_from_litellm_with(
    json: &str,
    source: &str,
    date: &str,
) -> Result<String, PricingError> {
    let root: Value = serde_json::from_str(json).map_err(|e| PricingError::Json(e.to_string()))?;
    let Some(entries) = root.as_object() else {
        return Err(PricingError::Json("top level is not an object".into()));
    };
    let mut models: BTreeMap<String, ModelRow> = BTreeMap::new();
    for (key, v) in entries {
        let provider = v
            .get("litellm_provider")
            .and_then(Value::as_str)
            .unwrap_or("");
        let mode = v.get("mode").and_then(Value::as_str).unwrap_or("");
        let anthropic = provider == "anthropic" && key.starts_with("claude-") && !key.contains('/');
        let openai = provider == "openai"
            && matches!(mode, "chat" | "responses")
            && is_codex_family(key)
            && !OPENAI_EXCLUDE.iter().any(|w| key.contains(w));
        if !(anthropic || openai) {
            continue;
        }
        if let Some(row) = litellm_row(key, v, anthropic)? {
            models.insert(key.clone(), row);
        }
    }
    if models.is_empty() {
        return Err(PricingError::Empty);
    }
    for (name, base, long) in FORMATS_PINS {
        let mut row = row_from_pins(base);
        row.long_context = long.map(|l| {
            let r = row_from_pins(&l);
            LongContextRow {
                above_tokens: ANTHROPIC_LONG_CONTEXT_ABOVE,
                input: r.input,
                output: r.output,
                cache_write_5m: r.cache_write_5m,
                cache_write_1h: r.cache_write_1h,
                cache_read: r.cache_read,
            }
        });
        // LiteLLM's fast-mode multiplier is a fact FORMATS.md does not state: keep it.
        row.fast_multiplier = models.get(*name).and_then(|r| r.fast_multiplier.clone());
        row.origin = Some("formats".into());
        models.insert((*name).into(), row);
    }
    for (name, p) in LEGACY_CLAUDE {
        if !models.contains_key(*name) {
            let mut row = row_from_pins(p);
            row.origin = Some("anthropic".into());
            models.insert((*name).into(), row);
        }
    }
    let mut aliases: BTreeMap<String, String> = BTreeMap::new();
    for (alias, target) in PINNED_ALIASES {
        if models.contains_key(*target) && !models.contains_key(*alias) {
            aliases.insert((*alias).into(), (*target).into());
        }
    }
    // A dated id becomes an alias of its undated model when they cost the
    // same, and always when the undated model is pinned: FORMATS.md states
    // prices per model family, whatever the snapshot date.
    let dated: Vec<(String, String)> = models
        .keys()
        .filter_map(|k| {
            let base = strip_one_suffix(k)?;
            let (a, b) = (models.get(k)?, models.get(base)?);
            let same = ModelRow {
                origin: None,
                ..a.clone()
            } == ModelRow {
                origin: None,
                ..b.clone()
            };
            (same || b.origin.as_deref() == Some("formats")).then(|| (k.clone(), base.to_string()))
        })
        .collect();
    for (k, base) in dated {
        models.remove(&k);
        aliases.insert(k, base);
    }

    let file = TableFile {
        source: source.into(),
        date: date.into(),
        unit: Some("USD per million tokens, exact decimals".into()),
        note: Some(format!(
            "generated by tally_core::pricing::table_from_litellm; origin \"formats\" rows are pinned by \
             FORMATS.md; missing cache prices follow 5m = 1.25x, 1h = 2x, read = 0.1x input; \
             speed \"fast\" without fast_multiplier costs {}x",
            DEFAULT_FAST_MULTIPLIER.num
        )),
        models,
        aliases,
    };
    // The generated text must load: refuse to write a table we could not read back.
    let text = render_table(&file);
    PriceTable::from_json(&text)?;
    Ok(text)
}

fn is_codex_family(key: &str) -> bool {
    let b = key.as_bytes();
    key.starts_with("gpt-")
        || key.starts_with("codex-")
        || (b.len() > 1 && b[0] == b'o' && b[1].is_ascii_digit())
}

fn row_from_pins(p: &[&str; 5]) -> ModelRow {
    ModelRow {
        input: p[0].into(),
        cache_write_5m: Some(p[1].into()),
        cache_write_1h: Some(p[2].into()),
        cache_read: Some(p[3].into()),
        output: p[4].into(),
        long_context: None,
        fast_multiplier: None,
        origin: None,
    }
}

/// One LiteLLM entry → our row, or `None` when it has no token prices.
fn litellm_row(key: &str, v: &Value, anthropic: bool) -> Result<Option<ModelRow>, PricingError> {
    let price = |field: &str| -> Result<Option<Dec>, PricingError> {
        match v.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(x) => {
                let d =
                    x.as_f64()
                        .and_then(Dec::from_f64)
                        .ok_or_else(|| PricingError::BadPrice {
                            model: key.into(),
                            field: field.into(),
                            value: x.to_string(),
                        })?;
                // USD per token → USD per million tokens, still exact.
                Ok(Some(d.shift(6)))
            }
        }
    };
    let (Some(input), Some(output)) = (
        price("input_cost_per_token")?,
        price("output_cost_per_token")?,
    ) else {
        return Ok(None);
    };
    let fill = |input: Dec, cw5: Option<Dec>, cw1h: Option<Dec>, read: Option<Dec>| {
        let read = read.unwrap_or(if anthropic {
            input.mul(Dec::new(1, 1))
        } else {
            input
        });
        [
            cw5.unwrap_or(input.mul(Dec::new(125, 2))).to_string(),
            cw1h.unwrap_or(input.mul(Dec::new(2, 0))).to_string(),
            read.to_string(),
        ]
    };
    let [cw5, cw1h, read] = fill(
        input,
        price("cache_creation_input_token_cost")?,
        price("cache_creation_input_token_cost_above_1hr")?,
        price("cache_read_input_token_cost")?,
    );
    // The lowest `input_cost_per_token_above_<N>k_tokens` tier, if any.
    let threshold = v
        .as_object()
        .into_iter()
        .flat_map(|o| o.keys())
        .filter_map(|f| {
            f.strip_prefix("input_cost_per_token_above_")?
                .strip_suffix("k_tokens")?
                .parse::<u64>()
                .ok()
        })
        .min();
    let long_context = match threshold {
        None => None,
        Some(k) => {
            let f = |name: &str| price(&format!("{name}_above_{k}k_tokens"));
            let lc_input = f("input_cost_per_token")?.unwrap_or(input);
            let lc_output = f("output_cost_per_token")?.unwrap_or(output);
            let base_read_is_input = !anthropic && v.get("cache_read_input_token_cost").is_none();
            let [lc5, lc1h, lcr] = fill(
                lc_input,
                f("cache_creation_input_token_cost")?,
                price(&format!(
                    "cache_creation_input_token_cost_above_1hr_above_{k}k_tokens"
                ))?,
                f("cache_read_input_token_cost")?.or(base_read_is_input.then_some(lc_input)),
            );
            Some(LongContextRow {
                above_tokens: k * 1000,
                input: lc_input.to_string(),
                output: lc_output.to_string(),
                cache_write_5m: Some(lc5),
                cache_write_1h: Some(lc1h),
                cache_read: Some(lcr),
            })
        }
    };
    let fast_multiplier = match v.get("provider_specific_entry").and_then(|p| p.get("fast")) {
        None | Some(Value::Null) => None,
        Some(x) => Some(
            x.as_f64()
                .and_then(Dec::from_f64)
                .filter(|d| d.m > 0)
                .ok_or_else(|| PricingError::BadPrice {
                    model: key.into(),
                    field: "provider_specific_entry.fast".into(),
                    value: x.to_string(),
                })?
                .to_string(),
        ),
    };
    Ok(Some(ModelRow {
        input: input.to_string(),
        output: output.to_string(),
        cache_write_5m: Some(cw5),
        cache_write_1h: Some(cw1h),
        cache_read: Some(read),
        long_context,
        fast_multiplier,
        origin: Some("litellm".into()),
    }))
}

/// Pretty JSON with one model or alias per line, so a price change is a one-line diff.
fn render_table(file: &TableFile) -> String {
    let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
    let mut out = String::from("{\n");
    out += &format!("  \"source\": {},\n", q(&file.source));
    out += &format!("  \"date\": {},\n", q(&file.date));
    if let Some(u) = &file.unit {
        out += &format!("  \"unit\": {},\n", q(u));
    }
    if let Some(n) = &file.note {
        out += &format!("  \"note\": {},\n", q(n));
    }
    out += "  \"models\": {\n";
    let rows: Vec<String> = file
        .models
        .iter()
        .map(|(k, r)| {
            format!(
                "    {}: {}",
                q(k),
                serde_json::to_string(r).unwrap_or_default()
            )
        })
        .collect();
    out += &rows.join(",\n");
    out += "\n  },\n  \"aliases\": {\n";
    let rows: Vec<String> = file
        .aliases
        .iter()
        .map(|(k, t)| format!("    {}: {}", q(k), q(t)))
        .collect();
    out += &rows.join(",\n");
    out += "\n  }\n}\n";
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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
            Priced::Usd(21_000)
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
            let want = [i, w5, w1, r, o].map(|c| Priced::Usd(*c));
            assert_eq!(got, want, "{model}");
        }
    }

    #[test]
    fn long_context_bills_the_whole_request() {
        // Exactly 200,000 prompt tokens is not over: 200,000 × $3 = 600,000 µ$.
        assert_eq!(
            cost("claude-sonnet-4-5", u(200_000, 0, 0, 0, 0), false),
            Priced::Usd(600_000)
        );
        // 200,001 is: every token at $6 → 1,200,006 µ$.
        assert_eq!(
            cost("claude-sonnet-4-5", u(200_001, 0, 0, 0, 0), false),
            Priced::Usd(1_200_006)
        );
        // Cache tokens count towards the threshold and take the premium too:
        // 1×6 + 100,000×7.5 + 100,000×0.6 + 1,000×22.5 = 6 + 750,000 + 60,000 + 22,500.
        assert_eq!(
            cost(
                "claude-sonnet-4-20250514",
                u(1, 1000, 100_000, 0, 100_000),
                false
            ),
            Priced::Usd(832_506)
        );
        // 1h writes at the premium: 200,001 × $12.
        assert_eq!(
            cost("claude-sonnet-4", u(0, 0, 0, 200_001, 0), false),
            Priced::Usd(2_400_012)
        );
        // Opus 4.5 has no premium.
        assert_eq!(
            cost("claude-opus-4-5", u(300_000, 0, 0, 0, 0), false),
            Priced::Usd(1_500_000)
        );
    }

    #[test]
    fn fast_mode_multiplies_exactly() {
        // Opus 4.6 names no multiplier in LiteLLM: 6×. (1000×5 + 100×25) × 6 = 45,000.
        assert_eq!(
            cost("claude-opus-4-6", u(1000, 100, 0, 0, 0), true),
            Priced::Usd(45_000)
        );
        assert_eq!(
            cost("claude-opus-4-6", u(1000, 100, 0, 0, 0), false),
            Priced::Usd(7_500)
        );
    }

    #[test]
    fn openai_long_context_tier() {
        // gpt-5.4: 2.5 / 0.25 / 15 up to 272,000 prompt tokens, then 5 / 0.5 / 22.5 for all of it.
        // 72,000×2.5 + 200,000×0.25 + 1,000×15 = 180,000 + 50,000 + 15,000.
        assert_eq!(
            cost("gpt-5.4", u(72_000, 1000, 0, 0, 200_000), false),
            Priced::Usd(245_000)
        );
        // 72,001×5 + 200,000×0.5 + 1,000×22.5 = 360,005 + 100,000 + 22,500.
        assert_eq!(
            cost("gpt-5.4", u(72_001, 1000, 0, 0, 200_000), false),
            Priced::Usd(482_505)
        );
    }

    #[test]
    fn absurd_counts_saturate_instead_of_panicking() {
        let max = u(u64::MAX, u64::MAX, u64::MAX, u64::MAX, u64::MAX);
        assert_eq!(
            cost("claude-opus-4-6", max, true),
            Priced::Usd(MicroUsd::MAX)
        );
    }

    #[test]
    fn table_fast_multiplier_wins_over_the_default() {
        // LiteLLM gives Opus 4.8 a fast multiplier of 2: (1000×5 + 100×25) × 2.
        assert_eq!(
            cost("claude-opus-4-8", u(1000, 100, 0, 0, 0), true),
            Priced::Usd(15_000)
        );
    }

    #[test]
    fn rounding_is_half_up_once_per_request() {
        // Haiku 4.5 cache reads are 0.1 µ$ each: 4 → 0.4 → 0, 5 → 0.5 → 1.
        assert_eq!(
            cost("claude-haiku-4-5", u(0, 0, 0, 0, 4), false),
            Priced::Usd(0)
        );
        assert_eq!(
            cost("claude-haiku-4-5", u(0, 0, 0, 0, 5), false),
            Priced::Usd(1)
        );
        // Sonnet: 1 read (0.3) + 1 input (3) + 1 5m write (3.75) = 7.05 → 7, where
        // rounding each part first would give 0 + 3 + 4 = 7 … and 2 reads + 2 writes =
        // 0.6 + 7.5 = 8.1 → 8, where per-part rounding gives 1 + 8 = 9.
        assert_eq!(
            cost("claude-sonnet-4-5", u(1, 0, 1, 0, 1), false),
            Priced::Usd(7)
        );
        assert_eq!(
            cost("claude-sonnet-4-5", u(0, 0, 2, 0, 2), false),
            Priced::Usd(8)
        );
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
            Priced::Usd(2_375_000)
        );
    }

    #[test]
    fn decimals_are_exact() {
        for (f, s) in [
            (3e-06, "0.000003"),
            (3.75e-06, "0.00000375"),
            (1.5625e-05, "0.000015625"),
            (5e-09, "0.000000005"),
        ] {
            assert_eq!(Dec::from_f64(f).unwrap().to_string(), s);
        }
        assert_eq!(Dec::from_f64(3e-06).unwrap().shift(6).to_string(), "3");
        assert_eq!(Dec::from_f64(3e-07).unwrap().shift(6).to_string(), "0.3");
        assert_eq!(Dec::parse("0.30"), Some(Dec::new(3, 1)));
        assert_eq!(
            Dec::parse("3.75")
                .unwrap()
                .mul(Dec::new(125, 2))
                .to_string(),
            "4.6875"
        );
        for bad in ["", ".5", "5.", "-1", "1e-6", "1.2.3", " 1"] {
            assert_eq!(Dec::parse(bad), None, "{bad:?}");
        }
        assert_eq!(
            Dec::parse("0.0000000000001").unwrap().to_units(MTOK_SCALE),
            None
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
            Priced::Usd(6_700_000)
        );
        let dangling =
            PriceTable::from_json(r#"{"source":"t","date":"d","models":{},"aliases":{"a":"b"}}"#);
        assert!(matches!(dangling, Err(PricingError::DanglingAlias { .. })));
        let bad = PriceTable::from_json(
            r#"{"source":"t","date":"d","models":{"m":{"input":"3e-6","output":"1"}}}"#,
        );
        assert!(matches!(bad, Err(PricingError::BadPrice { .. })));
    }

    #[test]
    fn litellm_conversion() {
        let json = r#"{
            "sample_spec": {"input_cost_per_token": 0.0},
            "claude-sonnet-4-5": {"litellm_provider": "anthropic", "mode": "chat",
                "input_cost_per_token": 3.1e-06, "output_cost_per_token": 1.5e-05,
                "cache_read_input_token_cost": 3e-07},
            "claude-new-1": {"litellm_provider": "anthropic", "mode": "chat",
                "input_cost_per_token": 2e-06, "output_cost_per_token": 1e-05,
                "input_cost_per_token_above_200k_tokens": 4e-06,
                "provider_specific_entry": {"us": 1.1, "fast": 2.5}},
            "claude-new-1-20260101": {"litellm_provider": "anthropic", "mode": "chat",
                "input_cost_per_token": 2e-06, "output_cost_per_token": 1e-05,
                "input_cost_per_token_above_200k_tokens": 4e-06,
                "provider_specific_entry": {"us": 1.1, "fast": 2.5}},
            "gpt-9": {"litellm_provider": "openai", "mode": "chat",
                "input_cost_per_token": 1.25e-06, "output_cost_per_token": 1e-05},
            "gpt-9-audio": {"litellm_provider": "openai", "mode": "chat",
                "input_cost_per_token": 1e-06, "output_cost_per_token": 1e-06},
            "gemini-x": {"litellm_provider": "gemini", "mode": "chat",
                "input_cost_per_token": 1e-06, "output_cost_per_token": 1e-06}
        }"#;
        let text = table_from_litellm_with(json, "test", "2026-01-02").unwrap();
        let t = PriceTable::from_json(&text).unwrap();
        assert_eq!(t.date(), "2026-01-02");
        // FORMATS.md wins over LiteLLM's 3.1.
        assert_eq!(
            t.lookup("claude-sonnet-4-5").unwrap().rates.input,
            3_000_000_000_000
        );
        let new = t.lookup("claude-new-1-20260101").unwrap();
        assert_eq!(new.name, "claude-new-1");
        assert_eq!(new.fast_multiplier, Some(Ratio { num: 25, den: 10 }));
        let lc = new.long_context.unwrap();
        assert_eq!(lc.above_tokens, 200_000);
        // Defaults derived from the long-context input price: 4 × 1.25, 4 × 2, 4 × 0.1.
        assert_eq!(lc.rates.cache_write_5m, 5_000_000_000_000);
        assert_eq!(lc.rates.cache_write_1h, 8_000_000_000_000);
        assert_eq!(lc.rates.cache_read, 400_000_000_000);
        assert_eq!(lc.rates.output, 10_000_000_000_000);
        // OpenAI without a cached-input price: cached input at full price.
        assert_eq!(
            t.lookup("gpt-9").unwrap().rates.cache_read,
            1_250_000_000_000
        );
        assert!(t.lookup("gpt-9-audio").is_none());
        assert!(t.lookup("gemini-x").is_none());
        assert!(text.contains("\"origin\":\"formats\""));
        assert!(matches!(
            table_from_litellm("[1]"),
            Err(PricingError::Json(_))
        ));
        assert!(matches!(table_from_litellm("{}"), Err(PricingError::Empty)));
    }
}
