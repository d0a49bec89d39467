//! Rows returned by D1 statements and the values stored in them.

use serde::{Deserialize, Serialize};
use tally_core::event::PrivacyMode;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TeamSettings {
    pub id: String,
    pub name: String,
    pub salt: String,
    pub privacy_mode: String,
    pub retention_days: i64,
    pub rate_capacity: i64,
    pub rate_per_minute: i64,
    pub timezone: String,
}

impl TeamSettings {
    pub fn mode(&self) -> PrivacyMode {
        // The CHECK constraint admits only valid modes; Off is the safe reading otherwise.
        PrivacyMode::parse(&self.privacy_mode).unwrap_or(PrivacyMode::Off)
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ModelTotals {
    pub model: String,
    pub requests: i64,
    pub unpriced_requests: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_write_5m_tokens: i64,
    pub cache_write_1h_tokens: i64,
    pub cache_read_tokens: i64,
    pub cost_micro_usd: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HourModelCost {
    pub hour: i64,
    pub model: String,
    pub cost_micro_usd: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupTotals {
    pub key: String,
    pub label: String,
    pub requests: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_write_tokens: i64,
    pub cache_read_tokens: i64,
    pub cost_micro_usd: i64,
    pub last_hour: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionRowOut {
    pub session: String,
    pub developer_id: String,
    pub developer: String,
    pub project: String,
    pub agent: String,
    pub start_ms: i64,
    pub end_ms: i64,
    pub requests: i64,
    pub cost_micro_usd: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CategoryRow {
    pub category: String,
    pub task_hint: String,
    pub project_hint: String,
    pub requests: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemberRow {
    pub id: String,
    pub email: String,
    pub role: crate::vocab::Role,
    pub created_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AgentRow {
    pub id: String,
    pub developer_id: String,
    pub developer_name: String,
    pub hostname: Option<String>,
    pub created_at: i64,
    pub last_seen_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub ip: Option<String>,
    pub details: String,
}

pub enum Applied {
    Written { rows_written: u64 },
    Duplicate,
}

/// What cloud categorization did for one batch, recorded per team.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategorizeStats {
    pub calls: u64,
    pub failures: u64,
    /// Prompts left uncategorized because the per-batch call budget was spent.
    pub skipped: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_micro_usd: u64,
}
