//! LiteLLM's `model_prices_and_context_window.json` → our data file. Only
//! `xtask` needs this (feature `litellm`); the table itself ships embedded.

use std::collections::BTreeMap;

use serde_json::Value;

use super::decimal::Dec;
use super::table::{strip_one_suffix, LongContextRow, ModelRow, TableFile};
use super::{PriceTable, PricingError, DEFAULT_FAST_MULTIPLIER};

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

/// Words in Gemini model ids that are not text models Gemini CLI can run.
const GEMINI_EXCLUDE: &[&str] = &[
    "tts",
    "image",
    "computer-use",
    "robotics",
    "live",
    "audio",
    "gemma",
    "embedding",
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
/// Keeps Anthropic `claude-*` models, OpenAI chat/responses models
/// (`gpt-*`, `o1`/`o3`/`o4…`, `codex-*`) and Google AI Studio `gemini/gemini-*`
/// chat models (under their bare id; their `_above_200k_tokens` prices become
/// the long-context tier, which bills the whole request as Google does), turns each float price into the
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
        // Google AI Studio rows are keyed `gemini/<model>`; Gemini CLI and
        // OpenCode log the bare model id.
        let google = (provider == "gemini" && matches!(mode, "chat"))
            .then(|| key.strip_prefix("gemini/"))
            .flatten()
            .filter(|m| m.starts_with("gemini-") && !GEMINI_EXCLUDE.iter().any(|w| m.contains(w)));
        if !(anthropic || openai || google.is_some()) {
            continue;
        }
        if let Some(row) = litellm_row(key, v, anthropic)? {
            models.insert(google.unwrap_or(key).to_string(), row);
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
    use crate::pricing::Ratio;

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
                "input_cost_per_token": 1e-06, "output_cost_per_token": 1e-06},
            "gemini/gemini-9-pro": {"litellm_provider": "gemini", "mode": "chat",
                "input_cost_per_token": 1.25e-06, "output_cost_per_token": 1e-05,
                "cache_read_input_token_cost": 1.25e-07,
                "input_cost_per_token_above_200k_tokens": 2.5e-06,
                "input_cost_per_token_above_200k_tokens_priority": 4.5e-06,
                "output_cost_per_token_above_200k_tokens": 1.5e-05,
                "cache_read_input_token_cost_above_200k_tokens": 2.5e-07},
            "gemini/gemini-9-pro-tts": {"litellm_provider": "gemini", "mode": "chat",
                "input_cost_per_token": 1e-06, "output_cost_per_token": 2e-05}
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
        // Gemini under its bare id, with the tier above 200k prompt tokens.
        let g = t.lookup("gemini-9-pro").unwrap();
        assert_eq!(g.name, "gemini-9-pro");
        assert_eq!(
            (g.rates.input, g.rates.cache_read, g.rates.output),
            (1_250_000_000_000, 125_000_000_000, 10_000_000_000_000)
        );
        let lc = g.long_context.unwrap();
        assert_eq!(lc.above_tokens, 200_000);
        assert_eq!(
            (lc.rates.input, lc.rates.cache_read, lc.rates.output),
            (2_500_000_000_000, 250_000_000_000, 15_000_000_000_000)
        );
        assert!(t.lookup("gemini-9-pro-tts").is_none());
        assert!(text.contains("\"origin\":\"formats\""));
        assert!(matches!(
            table_from_litellm("[1]"),
            Err(PricingError::Json(_))
        ));
        assert!(matches!(table_from_litellm("{}"), Err(PricingError::Empty)));
    }
}
