//! How figures and names read on the dashboard, decided once. Pure, so every
//! rule is unit-tested with exact strings. Downloads (CSV, JSON) keep their
//! own machine-readable cells; only the HTML goes through here.

use tally_core::event::{AgentKind, Category, PrivacyMode};
use tally_core::money::{group, Usd};

use crate::vocab::{AuditAction, Role};

/// A table cell as people see it: the short text, the exact value on hover
/// (`title`) and, for drill-downs, where a click leads.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Cell {
    pub text: String,
    pub title: Option<String>,
    pub href: Option<String>,
}

impl Cell {
    pub fn text(text: impl Into<String>) -> Cell {
        Cell {
            text: text.into(),
            ..Cell::default()
        }
    }

    pub fn titled(text: impl Into<String>, title: impl Into<String>) -> Cell {
        Cell {
            text: text.into(),
            title: Some(title.into()),
            href: None,
        }
    }
}

/// Money by magnitude: cents from a cent up ("$1,234.56", "$0.08"), two
/// significant digits below ("$0.0042"), so real spend never reads "$0.00".
pub fn money(u: Usd) -> String {
    if u.rounded(2) >= 1 {
        u.cents()
    } else {
        u.human()
    }
}

/// Every pico-dollar, trailing zeros past the cents dropped: "$0.004213".
pub fn money_exact(u: Usd) -> String {
    let mut s = u.decimal(12);
    while s.ends_with('0') && s.len() - s.find('.').unwrap_or(0) > 3 {
        s.pop();
    }
    match s.split_once('.') {
        Some((whole, frac)) => format!(
            "${}.{frac}",
            group(whole.parse::<u128>().unwrap_or_default())
        ),
        None => format!("${s}"),
    }
}

/// Money with the exact amount on hover.
pub fn money_cell(u: Usd) -> Cell {
    Cell::titled(money(u), money_exact(u))
}

/// Thousands separators: 41397584 → "41,397,584".
pub fn count(n: i64) -> String {
    let g = group(n.unsigned_abs() as u128);
    if n < 0 {
        format!("-{g}")
    } else {
        g
    }
}

/// Token counts compactly: 412, 41.4k, 12.3M, 1.2B (one decimal below a
/// hundred units, rounded half up), so columns of them read at a glance.
pub fn tokens(n: i64) -> String {
    if n < 0 {
        return count(n);
    }
    let n = n as u128;
    if n < 1000 {
        return n.to_string();
    }
    const UNITS: [(u128, &str); 3] = [(1_000, "k"), (1_000_000, "M"), (1_000_000_000, "B")];
    for (i, &(scale, suffix)) in UNITS.iter().enumerate() {
        let tenths = (n * 10 + scale / 2) / scale;
        if tenths < 1000 {
            return format!("{}.{}{suffix}", tenths / 10, tenths % 10);
        }
        let whole = (n + scale / 2) / scale;
        // 999,949 rounds to 1,000k: that is 1.0M.
        if whole < 1000 || i + 1 == UNITS.len() {
            return format!("{}{suffix}", group(whole));
        }
    }
    unreachable!("the last unit always answers")
}

/// Tokens with the exact count on hover.
pub fn tokens_cell(n: i64) -> Cell {
    Cell::titled(tokens(n), count(n))
}

/// A count with separators, exact as shown.
pub fn count_cell(n: i64) -> Cell {
    Cell::text(count(n))
}

/// `part / whole` as a percentage with one decimal, rounded half up.
pub fn percent(part: i64, whole: i64) -> String {
    if whole <= 0 {
        return "–".into();
    }
    let p = (part as i128 * 1000 + whole as i128 / 2) / whole as i128;
    format!("{}.{}%", p / 10, p % 10)
}

/// Which way spend moved between two periods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Up,
    Down,
    Same,
    /// Nothing was spent before: no percentage exists.
    New,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Up => "up",
            Direction::Down => "down",
            Direction::Same => "same",
            Direction::New => "new",
        }
    }
}

/// Spend against the previous period, exact to a tenth of a percent
/// (rounded half up on the pico-dollars): "▲ 25.0%", "▼ 10.0%".
pub fn change(current: Usd, previous: Usd) -> (Direction, String) {
    let (c, p) = (current.pico(), previous.pico());
    if p == 0 {
        return if c == 0 {
            (Direction::Same, "no change".into())
        } else {
            (Direction::New, "new spend".into())
        };
    }
    let (dir, diff) = if c >= p {
        (Direction::Up, c - p)
    } else {
        (Direction::Down, p - c)
    };
    let tenths = (diff * 1000 + p / 2) / p;
    if tenths == 0 {
        return (Direction::Same, "no change".into());
    }
    let arrow = if dir == Direction::Up { "▲" } else { "▼" };
    (
        dir,
        format!("{arrow} {}.{}%", group(tenths / 10), tenths % 10),
    )
}

/// A privacy mode's short name (chips, tables).
pub fn mode_name(mode: PrivacyMode) -> &'static str {
    match mode {
        PrivacyMode::Off => "Off",
        PrivacyMode::CategorizeLocal => "Local",
        PrivacyMode::CategorizeCloud => "Cloud",
        PrivacyMode::Full => "Full",
    }
}

/// A privacy mode said in full, for sentences and pickers.
pub fn mode_long_name(mode: PrivacyMode) -> &'static str {
    match mode {
        PrivacyMode::Off => "Off (numbers only)",
        PrivacyMode::CategorizeLocal => "Categorize locally",
        PrivacyMode::CategorizeCloud => "Categorize in the cloud",
        PrivacyMode::Full => "Full content",
    }
}

pub fn category_name(c: Category) -> &'static str {
    match c {
        Category::Feature => "Feature",
        Category::BugFix => "Bug fix",
        Category::Refactor => "Refactor",
        Category::Testing => "Testing",
        Category::Documentation => "Documentation",
        Category::CodeReview => "Code review",
        Category::Debugging => "Debugging",
        Category::Devops => "DevOps",
        Category::DataAnalysis => "Data analysis",
        Category::Learning => "Learning",
        Category::Other => "Other",
    }
}

pub fn agent_name(a: AgentKind) -> &'static str {
    match a {
        AgentKind::ClaudeCode => "Claude Code",
        AgentKind::Codex => "Codex",
        AgentKind::GeminiCli => "Gemini CLI",
        AgentKind::Cursor => "Cursor",
        AgentKind::OpenCode => "OpenCode",
    }
}

pub fn role_name(r: Role) -> &'static str {
    match r {
        Role::Owner => "Owner",
        Role::Admin => "Admin",
        Role::Viewer => "Viewer",
    }
}

pub fn action_name(a: AuditAction) -> &'static str {
    match a {
        AuditAction::SignIn => "Signed in",
        AuditAction::PrivacyModeChange => "Privacy mode changed",
        AuditAction::RateLimitChange => "Rate limit changed",
        AuditAction::CategorizeBudgetChange => "Categorize spend cap changed",
        AuditAction::RetentionChange => "Retention changed",
        AuditAction::TimezoneChange => "Time zone changed",
        AuditAction::AgentRevoke => "Agent revoked",
        AuditAction::InstallTokenCreate => "Install token created",
        AuditAction::InstallTokenRevoke => "Install token revoked",
        AuditAction::MemberInviteResend => "Invitation resent",
        AuditAction::MemberInviteRevoke => "Invitation revoked",
        AuditAction::ProjectLabel => "Project labelled",
        AuditAction::BranchLabel => "Branch labelled",
        AuditAction::MemberInvite => "Member invited",
        AuditAction::MemberRoleChange => "Member role changed",
        AuditAction::MemberRemove => "Member removed",
        AuditAction::Export => "Table exported",
        AuditAction::RetentionPruned => "Old data pruned",
        AuditAction::ContentPurged => "Content purged",
        AuditAction::ContentPurgeRequested => "Content purge requested",
        AuditAction::ContentView => "Content viewed",
        AuditAction::ContentExport => "Content exported",
        AuditAction::DeveloperRemove => "Developer removed",
        AuditAction::DeveloperErased => "Developer erased",
        AuditAction::TeamDeletionScheduled => "Team deletion scheduled",
        AuditAction::TeamDeletionCancelled => "Team deletion cancelled",
        AuditAction::LifecycleFailed => "Lifecycle job failed",
        AuditAction::BudgetSet => "Budget set",
        AuditAction::BudgetDelete => "Budget deleted",
        AuditAction::AlertDismiss => "Alert dismissed",
        AuditAction::SeatPlanChange => "Seat plan changed",
        AuditAction::DeveloperSignIn => "Developer opened their self-view",
        AuditAction::ShipIntervalChange => "Upload interval changed",
        AuditAction::IntegrationInstall => "Integration added",
        AuditAction::IntegrationRemove => "Integration removed",
        AuditAction::IntegrationTest => "Integration tested",
        AuditAction::IntegrationBroken => "Integration broken",
        AuditAction::DigestScheduleChange => "Digest schedule changed",
        AuditAction::DigestEmailChange => "Weekly e-mail changed",
        AuditAction::OtlpTokenCreate => "OpenTelemetry token created",
        AuditAction::SourcePathChange => "Usage source changed",
        AuditAction::CursorUserLink => "Cursor user linked",
    }
}

/// A stored spelling's human name, or the spelling itself when it is not
/// (or no longer) one of the vocabulary's: older rows stay readable.
pub fn named<T: Copy>(
    stored: &str,
    parse: fn(&str) -> Option<T>,
    name: fn(T) -> &'static str,
) -> String {
    parse(stored).map_or_else(|| stored.to_string(), |v| name(v).to_string())
}

pub fn category_of(stored: &str) -> String {
    named(stored, Category::parse, category_name)
}

pub fn agent_of(stored: &str) -> String {
    named(stored, AgentKind::parse, agent_name)
}

pub fn action_of(stored: &str) -> String {
    named(stored, AuditAction::parse, action_name)
}

/// An audit entry's JSON details as "key: value" lines, by key;
/// nested values stay compact JSON. Not JSON at all: the text as stored.
pub fn details(json: &str) -> Vec<String> {
    match serde_json::from_str::<serde_json::Value>(json) {
        Ok(serde_json::Value::Object(map)) => map
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Null => "—".into(),
                    other => other.to_string(),
                };
                format!("{}: {v}", k.replace('_', " "))
            })
            .collect(),
        Ok(serde_json::Value::Null) => vec![],
        _ if json.is_empty() => vec![],
        _ => vec![json.to_string()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_is_exact_to_a_tenth_of_a_percent() {
        let d = |x: u128| Usd::from_pico(x * 1_000_000);
        assert_eq!(
            change(d(5_000_000), d(4_000_000)),
            (Direction::Up, "▲ 25.0%".into())
        );
        assert_eq!(
            change(d(3_600_000), d(4_000_000)),
            (Direction::Down, "▼ 10.0%".into())
        );
        // 1/3 up: 33.33…% → 33.3%; 2/3: 66.66…% → 66.7%.
        assert_eq!(change(d(4), d(3)).1, "▲ 33.3%");
        assert_eq!(change(d(5), d(3)).1, "▲ 66.7%");
        assert_eq!(change(d(300), d(1)).1, "▲ 29,900.0%");
        assert_eq!(change(d(0), d(7)), (Direction::Down, "▼ 100.0%".into()));
        assert_eq!(
            change(d(7), Usd::ZERO),
            (Direction::New, "new spend".into())
        );
        assert_eq!(
            change(Usd::ZERO, Usd::ZERO),
            (Direction::Same, "no change".into())
        );
        assert_eq!(change(d(100_000), d(100_001)).0, Direction::Same);
    }

    #[test]
    fn money_reads_by_magnitude_with_the_exact_value_on_hover() {
        assert_eq!(money(Usd::from_pico(1_234_560_000_000_000)), "$1,234.56");
        assert_eq!(money(Usd::from_pico(4_213_000_000)), "$0.0042");
        assert_eq!(money(Usd::ZERO), "$0.00");
        assert_eq!(money(Usd::from_pico(81_234_000_000)), "$0.08");
        assert_eq!(money(Usd::from_pico(5_000_000_000)), "$0.01");
        assert_eq!(money(Usd::from_pico(4_999_999_999)), "$0.0050");
        assert_eq!(money(Usd::from_pico(3_000_000)), "$0.000003");
        let c = money_cell(Usd::from_pico(4_213_000_000));
        assert_eq!(c.text, "$0.0042");
        assert_eq!(c.title.as_deref(), Some("$0.004213"));
        assert_eq!(
            money_exact(Usd::from_pico(1_234_560_000_000_000)),
            "$1,234.56"
        );
        assert_eq!(money_exact(Usd::from_pico(1)), "$0.000000000001");
        assert_eq!(money_exact(Usd::ZERO), "$0.00");
    }

    #[test]
    fn tokens_are_compact_with_the_exact_count_on_hover() {
        assert_eq!(tokens(0), "0");
        assert_eq!(tokens(999), "999");
        assert_eq!(tokens(1_000), "1.0k");
        assert_eq!(tokens(41_397), "41.4k");
        assert_eq!(tokens(41_350), "41.4k");
        assert_eq!(tokens(41_349), "41.3k");
        assert_eq!(tokens(412_300), "412k");
        assert_eq!(tokens(999_499), "999k");
        assert_eq!(tokens(999_949), "1.0M");
        assert_eq!(tokens(12_345_678), "12.3M");
        assert_eq!(tokens(41_397_584), "41.4M");
        assert_eq!(tokens(1_250_000_000), "1.3B");
        assert_eq!(tokens(4_000_000_000_000), "4,000B");
        let c = tokens_cell(41_397_584);
        assert_eq!(
            (c.text.as_str(), c.title.as_deref()),
            ("41.4M", Some("41,397,584"))
        );
        assert_eq!(count(41_397_584), "41,397,584");
        assert_eq!(count(-1_234), "-1,234");
        assert_eq!(count(7), "7");
    }

    #[test]
    fn percentages_round_half_up() {
        assert_eq!(percent(80_000, 84_110), "95.1%");
        assert_eq!(percent(1, 0), "–");
        assert_eq!(percent(1, 2), "50.0%");
    }

    #[test]
    fn every_enum_has_a_human_name() {
        assert_eq!(category_of("bug_fix"), "Bug fix");
        assert_eq!(category_of("not_a_category"), "not_a_category");
        assert_eq!(agent_of("claude_code"), "Claude Code");
        assert_eq!(action_of("sign_in"), "Signed in");
        assert_eq!(action_of("member.invite"), "Member invited");
        assert_eq!(
            mode_long_name(PrivacyMode::CategorizeLocal),
            "Categorize locally"
        );
        assert_eq!(role_name(Role::Viewer), "Viewer");
        // Names are distinct, so a list of them is unambiguous.
        let mut names: Vec<&str> = AuditAction::ALL.iter().map(|a| action_name(*a)).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), AuditAction::ALL.len());
        let mut cats: Vec<&str> = Category::ALL.iter().map(|c| category_name(*c)).collect();
        cats.dedup();
        assert_eq!(cats.len(), Category::ALL.len());
    }

    #[test]
    fn audit_details_read_as_key_value_lines() {
        assert_eq!(
            details(r#"{"table":"models","format":"csv","rows":3}"#),
            ["format: csv", "rows: 3", "table: models"]
        );
        assert_eq!(
            details(r#"{"new_mode":"full","by":null}"#),
            ["by: —", "new mode: full"]
        );
        assert_eq!(details("not json"), ["not json"]);
        assert!(details("").is_empty());
        assert!(details("null").is_empty());
    }
}
