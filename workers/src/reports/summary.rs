//! The optional AI summary of a digest: three to five sentences from the
//! aggregate numbers only. No prompt text, developer names or project
//! labels leave: people are "developer 1..5" by rank. Its cost is added to
//! the team's categorize-cloud spend of the day; any failure or a timeout
//! leaves the digest without a summary.

use serde_json::{json, Value};
use tally_core::categorize::ModelUsage;
use tally_core::money::Usd;
use tally_core::time::DAY_MS;
use worker::Env;

use super::digest::{change, compact, rate, DigestData};
use crate::anthropic::Client;
use crate::db::TeamDb;

const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

const SYSTEM: &str = "You summarize an engineering team's AI coding-agent spend for its manager. \
Write three to five plain sentences (no markdown, no lists) on what changed this period and what stands out, \
using only the numbers given. Do not invent causes.";

/// The Messages API request: the digest's numbers, nothing else.
pub fn request(model: &str, d: &DigestData) -> Value {
    let ranked = |rows: &[(String, Usd)], who: &str| -> Vec<Value> {
        rows.iter()
            .take(5)
            .enumerate()
            .map(|(i, (_, c))| json!({"name": format!("{who} {}", i + 1), "cost": c.cents()}))
            .collect()
    };
    let numbers = json!({
        "period": format!("{} ({})", d.period, d.kind.word()),
        "total_spend": d.spend.cents(),
        "previous_period_spend": d.previous_spend.cents(),
        "change": change(d.spend, d.previous_spend),
        "requests": compact(d.requests),
        "active_developers": d.active_developers,
        "cache_hit_rate": rate(d.cache_read_tokens, d.prompt_tokens),
        "saved_by_caching": d.cache_saved.cents(),
        "top_developers": ranked(&d.top_developers, "developer"),
        "top_projects": ranked(&d.top_projects, "project"),
        "top_models": d.top_models.iter().take(5).map(|(m, c)| json!({"model": m, "cost": c.cents()})).collect::<Vec<_>>(),
    });
    json!({
        "model": model,
        "max_tokens": 400,
        "system": SYSTEM,
        "messages": [{"role": "user", "content": numbers.to_string()}],
    })
}

/// The text and the usage of a Messages API answer.
pub fn parse(body: &str) -> Result<(String, ModelUsage), String> {
    let v: Value = serde_json::from_str(body).map_err(|e| e.to_string())?;
    let text: String = v["content"]
        .as_array()
        .ok_or("no content")?
        .iter()
        .filter(|b| b["type"] == "text")
        .filter_map(|b| b["text"].as_str())
        .collect::<Vec<_>>()
        .join(" ");
    let text = text.trim().to_string();
    if text.is_empty() {
        return Err("empty summary".into());
    }
    let n = |k: &str| v["usage"][k].as_u64().unwrap_or(0);
    Ok((
        text,
        ModelUsage {
            input_tokens: n("input_tokens"),
            output_tokens: n("output_tokens"),
        },
    ))
}

/// The summary, or None (not configured, failed, timed out): the digest
/// goes out either way.
pub async fn summarize(env: &Env, db: &TeamDb, d: &DigestData, now: i64) -> Option<String> {
    let client = Client::from_env(env)?;
    // The same daily budget as categorize-cloud: past it, no summary.
    let day = now.div_euclid(DAY_MS);
    let (limits, spent) = match (db.categorize_limits().await, db.categorize_spent(day).await) {
        (Ok(l), Ok(s)) => (l, s),
        _ => return None,
    };
    if crate::content::categorize::over_budget(
        Usd::from_parts(spent.cost_micro_usd, spent.cost_pico_usd),
        &limits,
    ) {
        worker::console_warn!("digest summary skipped: the team's daily AI budget is spent");
        return None;
    }
    let answer = client
        .messages(request(&client.model, d).to_string(), TIMEOUT)
        .await;
    let (text, usage) = match answer.and_then(|b| parse(&b)) {
        Ok(x) => x,
        Err(e) => {
            worker::console_warn!("digest summary failed, sending without it: {e}");
            return None;
        }
    };
    let cost = client.price(&usage).unwrap_or(Usd::ZERO);
    let (micro, pico) = cost.parts();
    if let Err(e) = db
        .add_summary_spend(
            day,
            usage.input_tokens as i64,
            usage.output_tokens as i64,
            micro as i64,
            pico as i64,
        )
        .await
    {
        worker::console_warn!("recording the summary's cost failed: {e}");
    }
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_carries_numbers_not_names() {
        let mut d = crate::reports::digest::tests_sample();
        d.top_developers = vec![("Ada Secret-Name".into(), Usd::from_pico(10_000_000_000))];
        d.top_projects = vec![("Project Falcon".into(), Usd::from_pico(10_000_000_000))];
        let r = request("claude-haiku-4-5", &d).to_string();
        assert!(!r.contains("Ada") && !r.contains("Falcon"), "{r}");
        assert!(r.contains(r#"\"total_spend\":\"$1,234.56\""#), "{r}");
        assert!(r.contains(r#"developer 1"#), "{r}");
    }

    #[test]
    fn answers_parse_to_text_and_usage() {
        let body = r#"{"content":[{"type":"text","text":" Spend rose. "}],"usage":{"input_tokens":412,"output_tokens":38}}"#;
        let (t, u) = parse(body).unwrap();
        assert_eq!(
            (t.as_str(), u.input_tokens, u.output_tokens),
            ("Spend rose.", 412, 38)
        );
        assert!(parse(r#"{"content":[]}"#).is_err());
        assert!(parse("nope").is_err());
    }
}
