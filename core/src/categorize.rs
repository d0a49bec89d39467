//! Prompt categorization: the request we send to a model (Claude Haiku on the
//! edge, Ollama on the machine) and the strict validation of its answer.
//! Shared so both paths use one taxonomy and one validator.

use serde_json::{json, Value};

use crate::event::{Categorization, Category, MAX_HINT_CHARS};

pub const DEFAULT_ANTHROPIC_MODEL: &str = "claude-haiku-4-5";
pub const ANTHROPIC_VERSION: &str = "2023-06-01";
/// The prompt is cut before it is sent: categorizing needs the gist, and a
/// bound keeps the per-call cost predictable.
pub const MAX_PROMPT_CHARS: usize = 4_000;

pub fn system_prompt() -> String {
    let names: Vec<&str> = Category::ALL.iter().map(|c| c.as_str()).collect();
    format!(
        "You label a software developer's request to an AI coding assistant. \
         Answer with one JSON object and nothing else: \
         {{\"category\": one of [{}], \"task_hint\": a neutral summary of the task in at most 12 words, \
         \"project_hint\": the kind of project or component in at most 6 words, \
         \"confidence\": a number from 0 to 1}}. \
         Never copy names, secrets, paths, code or personal data from the request into the hints.",
        names.join(", ")
    )
}

/// JSON schema of the answer, for model APIs that constrain output (Ollama `format`).
pub fn answer_schema() -> Value {
    let names: Vec<&str> = Category::ALL.iter().map(|c| c.as_str()).collect();
    json!({
        "type": "object",
        "properties": {
            "category": {"type": "string", "enum": names},
            "task_hint": {"type": "string", "maxLength": MAX_HINT_CHARS},
            "project_hint": {"type": "string", "maxLength": MAX_HINT_CHARS},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1}
        },
        "required": ["category", "task_hint", "project_hint", "confidence"]
    })
}

fn clip(prompt: &str) -> String {
    prompt.chars().take(MAX_PROMPT_CHARS).collect()
}

/// Body of `POST /v1/messages` (Anthropic Messages API).
pub fn anthropic_request(model: &str, redacted_prompt: &str) -> Value {
    json!({
        "model": model,
        "max_tokens": 200,
        "temperature": 0,
        "system": system_prompt(),
        "messages": [{"role": "user", "content": format!("<request>\n{}\n</request>", clip(redacted_prompt))}]
    })
}

/// Body of `POST /api/chat` (Ollama), non-streaming with a JSON-schema format.
pub fn ollama_request(model: &str, prompt: &str) -> Value {
    json!({
        "model": model,
        "stream": false,
        "format": answer_schema(),
        "options": {"temperature": 0},
        "messages": [
            {"role": "system", "content": system_prompt()},
            {"role": "user", "content": format!("<request>\n{}\n</request>", clip(prompt))}
        ]
    })
}

fn hint(v: &Value, key: &str) -> Result<String, String> {
    let s = v[key]
        .as_str()
        .ok_or_else(|| format!("{key} missing or not a string"))?;
    let s: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    // Redact the whole hint first, then cut: a placeholder is often longer
    // than the secret it replaces, so cutting first could leave a hint over
    // the limit (and the edge rejects the batch). Cutting by chars keeps
    // multi-byte characters whole; a cut placeholder reveals nothing.
    let redacted = crate::redact::redact(&s);
    // Hints are displayed and stored: cut rather than reject a verbose model.
    Ok(redacted.chars().take(MAX_HINT_CHARS).collect())
}

/// Validates a model's answer text. Tolerates a fenced code block around the
/// JSON (some models add one) but nothing else.
pub fn parse_answer(text: &str) -> Result<Categorization, String> {
    let t = text.trim();
    let t = t
        .strip_prefix("```json")
        .or_else(|| t.strip_prefix("```"))
        .map(|r| r.trim_end().trim_end_matches("```").trim())
        .unwrap_or(t);
    let v: Value = serde_json::from_str(t).map_err(|e| format!("answer is not JSON: {e}"))?;
    let name = v["category"].as_str().ok_or("category missing")?;
    let category =
        Category::parse(name).ok_or_else(|| format!("category {name:?} is not in the taxonomy"))?;
    let confidence = match &v["confidence"] {
        Value::Number(n) => {
            let f = n.as_f64().ok_or("confidence is not a number")?;
            // Accept 0–1 (asked for) and 0–100 (what some models answer).
            let pct = if f <= 1.0 { f * 100.0 } else { f };
            if !(0.0..=100.0).contains(&pct) {
                return Err(format!("confidence {f} out of range"));
            }
            pct.round() as u8
        }
        _ => return Err("confidence missing".into()),
    };
    Ok(Categorization {
        category,
        task_hint: hint(&v, "task_hint")?,
        project_hint: hint(&v, "project_hint")?,
        confidence,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelUsage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// Parses an Anthropic Messages API response body.
pub fn parse_anthropic_response(body: &str) -> Result<(Categorization, ModelUsage), String> {
    let v: Value = serde_json::from_str(body).map_err(|e| format!("response is not JSON: {e}"))?;
    if v["type"] == "error" {
        return Err(format!(
            "API error: {}",
            v["error"]["message"].as_str().unwrap_or("unknown")
        ));
    }
    let usage = ModelUsage {
        input_tokens: v["usage"]["input_tokens"].as_u64().unwrap_or(0),
        output_tokens: v["usage"]["output_tokens"].as_u64().unwrap_or(0),
    };
    let text: String = v["content"]
        .as_array()
        .ok_or("no content")?
        .iter()
        .filter(|b| b["type"] == "text")
        .filter_map(|b| b["text"].as_str())
        .collect();
    Ok((parse_answer(&text)?, usage))
}

/// Parses an Ollama `/api/chat` response body.
pub fn parse_ollama_response(body: &str) -> Result<Categorization, String> {
    let v: Value = serde_json::from_str(body).map_err(|e| format!("response is not JSON: {e}"))?;
    if let Some(e) = v["error"].as_str() {
        return Err(format!("Ollama error: {e}"));
    }
    parse_answer(
        v["message"]["content"]
            .as_str()
            .ok_or("no message content")?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_answers() {
        let c = parse_answer(r#"{"category":"bug_fix","task_hint":"fix  refund\nrounding","project_hint":"payments","confidence":0.87}"#).unwrap();
        assert_eq!(c.category, Category::BugFix);
        assert_eq!(c.task_hint, "fix refund rounding");
        assert_eq!(c.confidence, 87);
        let fenced = parse_answer("```json\n{\"category\":\"testing\",\"task_hint\":\"t\",\"project_hint\":\"p\",\"confidence\":90}\n```").unwrap();
        assert_eq!(
            (fenced.category, fenced.confidence),
            (Category::Testing, 90)
        );
        assert!(parse_answer(
            r#"{"category":"gardening","task_hint":"","project_hint":"","confidence":1}"#
        )
        .unwrap_err()
        .contains("taxonomy"));
        assert!(parse_answer(
            r#"{"category":"testing","task_hint":"","project_hint":"","confidence":101}"#
        )
        .is_err());
        assert!(
            parse_answer(r#"{"category":"testing","task_hint":"x","project_hint":"y"}"#).is_err()
        );
        assert!(parse_answer("Sure! Here it is").is_err());
        let long = "w ".repeat(200);
        let c = parse_answer(
            &json!({"category":"other","task_hint":long,"project_hint":"p","confidence":0.5})
                .to_string(),
        )
        .unwrap();
        assert_eq!(c.task_hint.chars().count(), MAX_HINT_CHARS);
    }

    #[test]
    fn anthropic_round_trip() {
        let req = anthropic_request("claude-haiku-4-5", &"x".repeat(10_000));
        assert_eq!(req["model"], "claude-haiku-4-5");
        let content = req["messages"][0]["content"].as_str().unwrap();
        assert_eq!(
            content.len(),
            MAX_PROMPT_CHARS + "<request>\n\n</request>".len()
        );
        let body = json!({"id":"msg_1","type":"message","role":"assistant","model":"claude-haiku-4-5",
            "content":[{"type":"text","text":"{\"category\":\"feature\",\"task_hint\":\"add export\",\"project_hint\":\"dashboard\",\"confidence\":0.9}"}],
            "stop_reason":"end_turn","usage":{"input_tokens":412,"output_tokens":38}}).to_string();
        let (c, u) = parse_anthropic_response(&body).unwrap();
        assert_eq!(
            (c.category, u.input_tokens, u.output_tokens),
            (Category::Feature, 412, 38)
        );
        let err =
            json!({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})
                .to_string();
        assert_eq!(
            parse_anthropic_response(&err).unwrap_err(),
            "API error: Overloaded"
        );
    }

    #[test]
    fn ollama_round_trip() {
        let req = ollama_request("llama3.1:8b", "add a test");
        assert_eq!(
            req["format"]["properties"]["category"]["enum"][0],
            "feature"
        );
        assert_eq!(req["stream"], false);
        let body = json!({"model":"llama3.1:8b","message":{"role":"assistant","content":"{\"category\":\"testing\",\"task_hint\":\"add a test\",\"project_hint\":\"api\",\"confidence\":0.7}"},"done":true}).to_string();
        assert_eq!(parse_ollama_response(&body).unwrap().confidence, 70);
        assert!(parse_ollama_response(r#"{"error":"model not found"}"#)
            .unwrap_err()
            .contains("model not found"));
    }

    /// Placeholders are longer than many secrets: cutting before redacting
    /// let a hint of short e-mail addresses grow past the limit (the edge
    /// then rejected the batch), and a secret straddling the cut was no
    /// longer recognisable, so half of it shipped.
    #[test]
    fn hints_are_redacted_before_they_are_cut() {
        let emails = ["ann@corp.io"; 10].join(" ");
        assert_eq!(emails.chars().count(), MAX_HINT_CHARS - 1);
        let straddling = format!("{} AKIAIOSFODNN7EXAMPLE tail", "é".repeat(110));
        let answer = serde_json::json!({
            "category": "devops", "task_hint": emails, "project_hint": straddling, "confidence": 1
        });
        let c = parse_answer(&answer.to_string()).unwrap();
        for h in [&c.task_hint, &c.project_hint] {
            assert!(h.chars().count() <= MAX_HINT_CHARS, "{h}");
            assert!(!h.contains('@') && !h.contains("AKIA"), "secret left: {h}");
        }
        assert!(c.task_hint.starts_with("[REDACTED:"), "{}", c.task_hint);
        assert!(c.project_hint.starts_with("ééé"));
    }
}
