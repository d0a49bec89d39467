//! The wire format between agent and edge: the event types and the limits
//! both sides enforce. Decoding lives in `wire`.

use serde::{Deserialize, Serialize};

use crate::usage::TokenUsage;

/// JavaScript numbers (and so D1) are exact only up to 2^53 − 1.
pub const MAX_SAFE_INT: u64 = (1 << 53) - 1;
/// Tokens of one kind in one request. No model reads or writes ten million
/// tokens in a request (the largest context windows are 1–2M), and the cap
/// keeps every sum the edge computes exact: 500 events × 5 fields × 10M tokens
/// × the dearest rate stays far below 2^64 pico-USD, and a team needs over
/// 10^8 maximal events before any token column nears 2^53.
pub const MAX_TOKENS_PER_FIELD: u64 = 10_000_000;
pub const MAX_TEXT_BYTES: usize = 64 * 1024;
pub const MAX_TOOLS: usize = 64;

named_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum PrivacyMode {
        Off => "off",
        CategorizeLocal => "categorize_local",
        CategorizeCloud => "categorize_cloud",
        Full => "full",
    }
}

named_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum AgentKind {
        ClaudeCode => "claude_code",
        Codex => "codex",
        GeminiCli => "gemini_cli",
        Cursor => "cursor",
        // Appended: the agent's index stores a kind as its position here.
        #[serde(rename = "opencode")]
        OpenCode => "opencode",
    }
}

named_enum! {
    /// Fixed taxonomy so categories are comparable across developers and teams.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum Category {
        Feature => "feature",
        BugFix => "bug_fix",
        Refactor => "refactor",
        Testing => "testing",
        Documentation => "documentation",
        CodeReview => "code_review",
        Debugging => "debugging",
        Devops => "devops",
        DataAnalysis => "data_analysis",
        Learning => "learning",
        Other => "other",
    }
}

pub const MAX_HINT_CHARS: usize = 120;
/// A readable branch name on the wire, after redaction: git allows longer
/// refs, but no branch anyone reads on a dashboard is longer than this.
pub const MAX_BRANCH_NAME_BYTES: usize = 200;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Categorization {
    pub category: Category,
    pub task_hint: String,
    pub project_hint: String,
    /// Percent, 0–100: integers keep the wire free of float formatting quirks.
    pub confidence: u8,
}

/// One priced request, as it travels. Optional fields exist only in the modes
/// that permit them; `privacy::check_stamp` enforces that on both sides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireEvent {
    pub id: String,
    pub ts: i64,
    pub agent: AgentKind,
    pub model: String,
    pub tokens: TokenUsage,
    /// Claude Code's `usage.speed == "fast"`: billed at the model's fast multiplier.
    #[serde(default, skip_serializing_if = "is_false")]
    pub fast: bool,
    /// The sender's price in pico-USD (`None` = unpriced model). The edge
    /// prices every event itself and keeps this only to count disagreements.
    pub cost_pico_usd: Option<u64>,
    pub project: String,
    /// Keyed hash of the git branch (`hash::branch_hash`), in every mode;
    /// empty when the request ran outside a branch (no repository, a
    /// detached HEAD, an agent that does not record one).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub branch: String,
    pub session: String,
    pub mode: PrivacyMode,
    /// The branch's readable name, redacted on the machine: only in the modes
    /// that already share prompt text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<Categorization>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<String>>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventBatch {
    /// Stable across resends, so the edge can apply a batch exactly once.
    pub batch_id: String,
    pub events: Vec<WireEvent>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Serde's `rename_all` and `as_str` spell the same names in two places;
    /// this keeps them from drifting apart.
    #[test]
    fn wire_names_match_serde() {
        fn check<T: Serialize + Copy>(all: &[T], name: fn(T) -> &'static str) {
            for &v in all {
                assert_eq!(serde_json::to_value(v).unwrap(), name(v));
            }
        }
        check(&PrivacyMode::ALL, PrivacyMode::as_str);
        check(&AgentKind::ALL, AgentKind::as_str);
        check(&Category::ALL, Category::as_str);
    }
}
