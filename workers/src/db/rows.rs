//! Rows returned by D1 statements and the values stored in them.

use serde::{Deserialize, Serialize};
use tally_core::event::PrivacyMode;
use tally_core::money::Usd;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TeamSettings {
    pub id: String,
    pub name: String,
    pub salt: String,
    pub privacy_mode: String,
    pub retention_days: i64,
    pub rate_capacity: i64,
    pub rate_per_minute: i64,
    /// Seconds between agent uploads (`/v1/agent/config`).
    #[serde(default = "default_ship_interval")]
    pub ship_interval_s: i64,
    pub timezone: String,
    /// Set while the team is scheduled for deletion.
    #[serde(default)]
    pub deleted_at: Option<i64>,
    /// When the nightly run erases the team for good.
    #[serde(default)]
    pub delete_after: Option<i64>,
}

fn default_ship_interval() -> i64 {
    tally_core::wire::DEFAULT_SHIP_INTERVAL_S
}

impl TeamSettings {
    pub fn mode(&self) -> PrivacyMode {
        // The CHECK constraint admits only valid modes; Off is the safe reading otherwise.
        PrivacyMode::parse(&self.privacy_mode).unwrap_or(PrivacyMode::Off)
    }
}

/// Sums come back from D1 as text (`CAST(SUM(x) AS TEXT)`), because a JS
/// number would round them above 2^53; plain columns come back as numbers.
/// A visitor, not an untagged enum: every variant an untagged enum tries and
/// rejects is an error, and `serde_wasm_bindgen` makes each error a JS
/// `Error` with a stack trace — 0.5 ms a row for 200 developers, most of the
/// Developers page.
fn exact<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    d.deserialize_any(Exact)
}

struct Exact;

impl serde::de::Visitor<'_> for Exact {
    type Value = i64;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an exact integer, as a number or as text")
    }

    fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<i64, E> {
        Ok(n)
    }

    fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<i64, E> {
        i64::try_from(n).map_err(|_| E::custom(format!("integer {n} out of range")))
    }

    fn visit_f64<E: serde::de::Error>(self, f: f64) -> Result<i64, E> {
        if f.fract() == 0.0 && f.abs() <= tally_core::event::MAX_SAFE_INT as f64 {
            Ok(f as i64)
        } else {
            Err(E::custom(format!("inexact integer {f}")))
        }
    }

    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<i64, E> {
        s.parse().map_err(E::custom)
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ModelTotals {
    pub model: String,
    #[serde(deserialize_with = "exact")]
    pub requests: i64,
    #[serde(deserialize_with = "exact")]
    pub unpriced_requests: i64,
    #[serde(deserialize_with = "exact")]
    pub input_tokens: i64,
    #[serde(deserialize_with = "exact")]
    pub output_tokens: i64,
    #[serde(deserialize_with = "exact")]
    pub cache_write_5m_tokens: i64,
    #[serde(deserialize_with = "exact")]
    pub cache_write_1h_tokens: i64,
    #[serde(deserialize_with = "exact")]
    pub cache_read_tokens: i64,
    #[serde(deserialize_with = "exact")]
    pub cost_micro_usd: i64,
    /// Pico-USD beyond `cost_micro_usd` (a sum of per-row remainders).
    #[serde(default, deserialize_with = "exact")]
    pub cost_pico_usd: i64,
    /// The exact total in dollars; filled by `set_cost`.
    #[serde(
        default,
        skip_deserializing,
        serialize_with = "tally_core::money::as_decimal"
    )]
    pub cost_usd: Usd,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DayModelCost {
    /// The team's local day (days since 1970-01-01).
    pub day: i64,
    pub model: String,
    #[serde(deserialize_with = "exact")]
    pub cost_micro_usd: i64,
    /// Pico-USD beyond `cost_micro_usd` (a sum of per-row remainders).
    #[serde(default, deserialize_with = "exact")]
    pub cost_pico_usd: i64,
    /// The day's other counters, when the statement reads them (the
    /// overview sums its range's model totals from its days).
    #[serde(default, deserialize_with = "exact")]
    pub requests: i64,
    #[serde(default, deserialize_with = "exact")]
    pub unpriced_requests: i64,
    #[serde(default, deserialize_with = "exact")]
    pub input_tokens: i64,
    #[serde(default, deserialize_with = "exact")]
    pub output_tokens: i64,
    #[serde(default, deserialize_with = "exact")]
    pub cache_write_5m_tokens: i64,
    #[serde(default, deserialize_with = "exact")]
    pub cache_write_1h_tokens: i64,
    #[serde(default, deserialize_with = "exact")]
    pub cache_read_tokens: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupTotals {
    pub key: String,
    pub label: String,
    #[serde(deserialize_with = "exact")]
    pub requests: i64,
    #[serde(deserialize_with = "exact")]
    pub input_tokens: i64,
    #[serde(deserialize_with = "exact")]
    pub output_tokens: i64,
    #[serde(deserialize_with = "exact")]
    pub cache_write_tokens: i64,
    #[serde(deserialize_with = "exact")]
    pub cache_read_tokens: i64,
    #[serde(deserialize_with = "exact")]
    pub cost_micro_usd: i64,
    /// Pico-USD beyond `cost_micro_usd` (a sum of per-row remainders).
    #[serde(default, deserialize_with = "exact")]
    pub cost_pico_usd: i64,
    pub last_quarter: i64,
}

/// One (project, branch) over a range: `branch` is the keyed hash ('' for
/// requests outside any branch), `label` an admin's name for it, `name` the
/// readable name a text mode sent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BranchTotals {
    pub project: String,
    pub project_label: String,
    pub branch: String,
    pub label: String,
    pub name: String,
    /// Distinct developers (named so no statement reads like the table).
    #[serde(rename = "developer_count")]
    pub developers: i64,
    #[serde(deserialize_with = "exact")]
    pub requests: i64,
    #[serde(deserialize_with = "exact")]
    pub input_tokens: i64,
    #[serde(deserialize_with = "exact")]
    pub output_tokens: i64,
    #[serde(deserialize_with = "exact")]
    pub cache_write_tokens: i64,
    #[serde(deserialize_with = "exact")]
    pub cache_read_tokens: i64,
    #[serde(deserialize_with = "exact")]
    pub cost_micro_usd: i64,
    #[serde(default, deserialize_with = "exact")]
    pub cost_pico_usd: i64,
    pub last_quarter: i64,
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
    #[serde(deserialize_with = "exact")]
    pub requests: i64,
    #[serde(deserialize_with = "exact")]
    pub cost_micro_usd: i64,
    /// Pico-USD beyond `cost_micro_usd` (a sum of per-row remainders).
    #[serde(default, deserialize_with = "exact")]
    pub cost_pico_usd: i64,
    /// Privacy modes the session's requests were captured under (bit set,
    /// `tally_core::rollup::mode_bit`).
    #[serde(default)]
    pub modes: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CategoryRow {
    pub category: String,
    pub task_hint: String,
    pub project_hint: String,
    #[serde(deserialize_with = "exact")]
    pub requests: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemberRow {
    pub id: String,
    pub email: String,
    pub role: crate::vocab::Role,
    pub created_at: i64,
    /// Their first sign-in; `None` while the invitation is pending.
    #[serde(default)]
    pub accepted_at: Option<i64>,
    /// When the last invitation e-mail failed; `None` once one got through.
    #[serde(default)]
    pub invite_failed_at: Option<i64>,
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
    /// Events this agent priced differently from the edge.
    #[serde(default)]
    pub priced_differently: i64,
    /// Events the agent reports it set aside.
    #[serde(default)]
    pub quarantined: i64,
    #[serde(default)]
    pub agent_version: Option<String>,
    /// `agent` (the Tally agent) or `otlp` (an OpenTelemetry token).
    #[serde(default = "agent_kind")]
    pub kind: String,
}

fn agent_kind() -> String {
    "agent".into()
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
    Written { rows_written: RowsWritten },
    Duplicate,
}

/// D1's own `meta.rows_written` of one applied transaction, by table: what
/// a batch costs and where (`cargo xtask bench-live` adds these up).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RowsWritten {
    /// `usage_q` (and `usage_d` for a late event of a compacted day).
    pub usage: u64,
    pub sessions: u64,
    /// The `batches` markers.
    pub markers: u64,
    /// Categories, categorization figures, price disagreements.
    pub other: u64,
}

impl RowsWritten {
    pub fn total(&self) -> u64 {
        self.usage + self.sessions + self.markers + self.other
    }
}

/// "8 rows written: usage 6, sessions 1, markers 1, other 0": the total
/// first, as log readers parse it.
impl std::fmt::Display for RowsWritten {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} rows written: usage {}, sessions {}, markers {}, other {}",
            self.total(),
            self.usage,
            self.sessions,
            self.markers,
            self.other
        )
    }
}

/// What cloud categorization did for one batch, recorded per team.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategorizeStats {
    pub calls: u64,
    pub failures: u64,
    /// Prompts left uncategorized because the per-batch call budget was spent.
    pub skipped: u64,
    /// Of `skipped`: because of the team's daily budget or per-minute cap.
    #[serde(default)]
    pub skipped_cap: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost: Usd,
}

macro_rules! exact_cost {
    ($($t:ty),*) => {$(
        impl $t {
            /// The exact cost of the row; round only to display it.
            pub fn cost(&self) -> Usd {
                Usd::from_parts(self.cost_micro_usd, self.cost_pico_usd)
            }
        }
    )*};
}
exact_cost!(
    ModelTotals,
    DayModelCost,
    GroupTotals,
    BranchTotals,
    SessionRowOut
);

impl ModelTotals {
    /// Stores an exact amount as the row's pair of columns.
    pub fn set_cost(&mut self, cost: Usd) {
        let (micro, pico) = cost.parts();
        self.cost_micro_usd = micro as i64;
        self.cost_pico_usd = pico as i64;
        self.cost_usd = cost;
    }
}

/// One queue part of a batch, as the consumer applies it.
pub struct PartToApply<'a> {
    pub batch_id: &'a str,
    pub part: u32,
    /// Fingerprint of the batch's whole rollup and split.
    pub split: &'a str,
    pub developer_id: &'a str,
    pub agent_id: &'a str,
    pub rollup: &'a tally_core::rollup::Rollup,
    pub categorized: Option<&'a CategorizeStats>,
    /// Events the agent priced differently from the edge (first part only).
    pub disagreements: u64,
}

/// One sealed R2 object of Full-mode content, as indexed in D1.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContentObject {
    pub key: String,
    pub session: String,
    pub developer_id: String,
    /// Unix day (UTC) of the events it holds.
    pub day: i64,
    pub batch_id: String,
    pub events: i64,
    pub bytes: i64,
    pub first_ts: i64,
    pub last_ts: i64,
}

/// A unit of lifecycle work (retention, hard deletion, content purge,
/// developer erasure) that resumes from its cursor.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LifecycleJob {
    pub id: i64,
    pub team_id: String,
    pub kind: String,
    pub subject: String,
    pub run_day: i64,
    pub cutoff_day: i64,
    pub cursor: Option<String>,
    pub objects: i64,
    pub bytes: i64,
    pub rows: i64,
    pub attempts: i64,
    /// Set by the database door that read the job.
    #[serde(skip)]
    pub(in crate::db) shard: super::Shard,
}

super::principal!(LifecycleJob, team_id);

/// A developer as the lifecycle forms and the Developers page list them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeveloperRow {
    pub id: String,
    pub name: String,
    pub removed_at: Option<i64>,
    pub erased_at: Option<i64>,
    pub content_viewed_at: Option<i64>,
}

/// A team's categorize-cloud limits: a daily budget and a call rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategorizeLimits {
    pub budget_micro_usd: i64,
    pub per_minute: i64,
}

/// Today's categorize-cloud spend, read before calling out.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
pub struct CategorizeSpent {
    pub cost_micro_usd: i64,
    pub cost_pico_usd: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IntegrationRow {
    pub id: String,
    /// `slack_webhook` or `slack_bot`.
    pub kind: String,
    pub channel: String,
    /// hex(nonce ‖ ciphertext ‖ tag); opened only to post.
    pub secret_sealed: String,
    pub last4: String,
    /// `ok` or `broken`.
    pub state: String,
    pub broken_reason: Option<String>,
    pub created_by: String,
    pub created_ms: i64,
    pub tested_ms: Option<i64>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct DigestSettings {
    pub digest_daily: i64,
    pub digest_weekly: i64,
    /// Local hour (0–23) in the team's zone.
    pub digest_hour: i64,
    pub digest_ai_summary: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeliveryRow {
    pub key: String,
    pub kind: String,
    pub subject: String,
    pub channel: String,
    pub state: String,
    pub attempts: i64,
    pub http_status: Option<i64>,
    pub error: Option<String>,
    pub next_attempt_ms: Option<i64>,
    pub created_ms: i64,
    pub updated_ms: i64,
}

/// A monthly budget as stored: `scope` is team, project or developer;
/// `label` is the admin's project label or the developer's name ('' when
/// there is none).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BudgetRow {
    pub scope: String,
    pub scope_key: String,
    pub amount_micro_usd: i64,
    pub thresholds: String,
    #[serde(default)]
    pub label: String,
}

/// An alert raised for the team (see `migrations/0007_alerts.sql`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AlertRow {
    pub id: String,
    pub kind: String,
    pub scope: String,
    pub period: String,
    pub threshold_pct: Option<i64>,
    pub title: String,
    pub detail_json: String,
    pub created_ms: i64,
    pub dismissed_ms: Option<i64>,
}

/// A developer's subscription seat; developers without one pay per token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeatRow {
    pub developer_id: String,
    pub plan: String,
    pub monthly_micro_usd: i64,
}

/// An install token not used yet (`TeamDb::pending_install_tokens`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingInstallToken {
    pub token_hash: String,
    pub developer_id: String,
    pub developer: String,
    pub created_at: i64,
    pub expires_at: i64,
}

#[cfg(test)]
mod tests {
    use super::{GroupTotals, RowsWritten};

    fn group(requests: &str, cost: &str) -> Result<GroupTotals, serde_json::Error> {
        serde_json::from_str(&format!(
            r#"{{"key":"d","label":"D","requests":{requests},"input_tokens":"9007199254740993","output_tokens":0,"cache_write_tokens":-3,"cache_read_tokens":"0","cost_micro_usd":{cost},"last_quarter":5}}"#
        ))
    }

    #[test]
    fn exact_counters_read_text_and_whole_numbers_and_refuse_the_rest() {
        let g = group("\"12\"", "7.0").unwrap();
        // Text keeps sums above 2^53 exact; a missing remainder is 0.
        assert_eq!(
            (
                g.requests,
                g.input_tokens,
                g.output_tokens,
                g.cache_write_tokens
            ),
            (12, 9_007_199_254_740_993, 0, -3)
        );
        assert_eq!(
            (g.cost_micro_usd, g.cost_pico_usd, g.last_quarter),
            (7, 0, 5)
        );
        let e = group("12", "7.5").unwrap_err().to_string();
        assert!(e.contains("inexact integer 7.5"), "{e}");
        let e = group("\"12x\"", "7").unwrap_err().to_string();
        assert!(e.contains("invalid digit"), "{e}");
        let e = group("18446744073709551615", "7").unwrap_err().to_string();
        assert!(e.contains("out of range"), "{e}");
        assert!(group("null", "7").is_err());
    }

    #[test]
    fn rows_written_reads_total_first_then_by_table() {
        let r = RowsWritten {
            usage: 6,
            sessions: 1,
            markers: 2,
            other: 1,
        };
        assert_eq!(r.total(), 10);
        // bench-live and the edge test read the number after " events, ".
        assert_eq!(
            format!("(44 events, {r})"),
            "(44 events, 10 rows written: usage 6, sessions 1, markers 2, other 1)"
        );
    }
}
