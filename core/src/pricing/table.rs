//! The price table: its data file format and model lookup.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::{Deserialize, Serialize};

use super::decimal::Dec;
use super::{LongContext, ModelPrice, PricingError, Rates, Ratio, MTOK_SCALE};

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
pub(super) fn strip_one_suffix(s: &str) -> Option<&str> {
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

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct TableFile {
    pub(super) source: String,
    pub(super) date: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) unit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) note: Option<String>,
    pub(super) models: BTreeMap<String, ModelRow>,
    #[serde(default)]
    pub(super) aliases: BTreeMap<String, String>,
}

/// One model, prices in USD per million tokens as exact decimal strings.
/// Missing cache prices follow Anthropic's rule: 5m write = 1.25× input,
/// 1h write = 2× input, read = 0.1× input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct ModelRow {
    pub(super) input: String,
    pub(super) output: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) cache_write_5m: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) cache_write_1h: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) cache_read: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) long_context: Option<LongContextRow>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) fast_multiplier: Option<String>,
    /// Where the row came from: `litellm`, `formats` (pinned by FORMATS.md) or
    /// `anthropic` (legacy models LiteLLM no longer lists).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) origin: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct LongContextRow {
    pub(super) above_tokens: u64,
    pub(super) input: String,
    pub(super) output: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) cache_write_5m: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) cache_write_1h: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) cache_read: Option<String>,
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
