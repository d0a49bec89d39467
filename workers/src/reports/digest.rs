//! The digest as Slack Block Kit, e-mail text and e-mail HTML: pure, from a
//! `DigestData` the cron fills from the dashboard's own queries. Every
//! string a team controls (developer names, project labels, the AI summary)
//! is escaped for Slack's mrkdwn and clipped, so whatever the data the
//! message stays within Slack's documented limits (`tests` prove it with a
//! property test).

use maud::html;
use serde_json::{json, Value};
use tally_core::money::{group, Usd};

/// Slack's limits (docs.slack.dev, "Block Kit" reference): blocks per
/// message, characters per section text, per field, per header, fields per
/// section, and the size beyond which `msg_blocks_too_long` appears.
pub const MAX_BLOCKS: usize = 50;
pub const MAX_SECTION_TEXT: usize = 3000;
pub const MAX_FIELD_TEXT: usize = 2000;
pub const MAX_HEADER_TEXT: usize = 150;
pub const MAX_FIELDS: usize = 10;
pub const MAX_MESSAGE_CHARS: usize = 12_000;

/// How many rows each "top" list shows.
pub const TOP_N: usize = 5;
/// Names are clipped to this many characters in lists.
const NAME_CHARS: usize = 48;
const SUMMARY_CHARS: usize = 1200;
const BUDGET_LINES: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestKind {
    Daily,
    Weekly,
}

impl DigestKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DigestKind::Daily => "digest_daily",
            DigestKind::Weekly => "digest_weekly",
        }
    }

    pub fn word(self) -> &'static str {
        match self {
            DigestKind::Daily => "daily",
            DigestKind::Weekly => "weekly",
        }
    }

    fn previous(self) -> &'static str {
        match self {
            DigestKind::Daily => "previous day",
            DigestKind::Weekly => "previous week",
        }
    }
}

/// One budget's standing (filled by the budgets feature when merged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetLine {
    pub scope: String,
    pub spent: Usd,
    pub budget: Usd,
}

/// API-equivalent against what the team actually pays with seat plans
/// (filled by the seat-plans feature when merged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActualSpend {
    pub api_equivalent: Usd,
    pub actual: Usd,
    pub seats: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestData {
    pub team_name: String,
    pub kind: DigestKind,
    /// "Mon 16 Nov 2026" or "16–22 Nov 2026".
    pub period: String,
    pub timezone: String,
    /// When the last event was received, in the team's zone; None if never.
    pub freshness: Option<String>,
    pub spend: Usd,
    pub previous_spend: Usd,
    pub requests: i64,
    pub active_developers: usize,
    pub cache_read_tokens: i64,
    pub prompt_tokens: i64,
    pub cache_saved: Usd,
    /// Name and cost, most expensive first (at most `TOP_N` are shown).
    pub top_developers: Vec<(String, Usd)>,
    pub top_projects: Vec<(String, Usd)>,
    pub top_models: Vec<(String, Usd)>,
    pub budgets: Option<Vec<BudgetLine>>,
    pub actual_spend: Option<ActualSpend>,
    pub summary: Option<String>,
    pub dashboard_url: String,
}

/// 999, 1.2k, 12.3k, 4.5M: one decimal, rounded half up, ".0" dropped.
pub fn compact(n: i64) -> String {
    let neg = n < 0;
    let a = n.unsigned_abs() as u128;
    let s = if a < 1000 {
        a.to_string()
    } else {
        let (unit, suffix) = match a {
            0..=999_999 => (1_000u128, "k"),
            1_000_000..=999_999_999 => (1_000_000, "M"),
            _ => (1_000_000_000, "B"),
        };
        let tenths = (a * 10 + unit / 2) / unit;
        if tenths.is_multiple_of(10) {
            format!("{}{suffix}", group(tenths / 10))
        } else {
            format!("{}.{}{suffix}", group(tenths / 10), tenths % 10)
        }
    };
    if neg {
        format!("-{s}")
    } else {
        s
    }
}

/// `part / whole` in percent with one decimal, rounded half up.
pub fn rate(part: i64, whole: i64) -> String {
    if whole <= 0 {
        return "–".into();
    }
    let p = (part.max(0) as i128 * 1000 + whole as i128 / 2) / whole as i128;
    format!("{}.{}%", p / 10, p % 10)
}

/// "+12.3%", "−4.0%", "new" (nothing before), "no change".
pub fn change(now: Usd, before: Usd) -> String {
    let (n, b) = (now.pico(), before.pico());
    if b == 0 {
        return if n == 0 {
            "no change".into()
        } else {
            "new".into()
        };
    }
    let (diff, sign) = if n >= b {
        (n - b, "+")
    } else {
        (b - n, "\u{2212}")
    };
    // Saturating: absurd amounts give a wrong percentage, never a panic.
    let tenths = diff.saturating_mul(1000).saturating_add(b / 2) / b;
    if tenths == 0 {
        return "no change".into();
    }
    format!("{sign}{}.{}%", group(tenths / 10), tenths % 10)
}

/// Slack mrkdwn treats `&`, `<` and `>` as control characters (links,
/// mentions): escaped, a name cannot become a link or an @channel.
/// Control characters are dropped, so JSON escaping cannot inflate a string.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// At most `max` characters, with "…" when something was cut.
pub fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Escaped for mrkdwn, at most `max` characters of output (never cutting
/// an entity in half), with "…" when something was cut.
pub fn esc(s: &str, max: usize) -> String {
    let full = escape(s);
    if full.chars().count() <= max {
        return full;
    }
    let mut out = String::new();
    let mut n = 0;
    for c in s.chars() {
        let e = escape(&c.to_string());
        let len = e.chars().count();
        if n + len > max.saturating_sub(1) {
            break;
        }
        out.push_str(&e);
        n += len;
    }
    out.push('…');
    out
}

fn name(s: &str) -> String {
    esc(s.trim(), NAME_CHARS)
}

fn mrkdwn(text: String) -> Value {
    json!({"type": "mrkdwn", "text": clip(&text, MAX_SECTION_TEXT)})
}

fn section(text: String) -> Value {
    json!({"type": "section", "text": mrkdwn(text)})
}

fn field(label: &str, value: String) -> Value {
    json!({"type": "mrkdwn", "text": clip(&format!("*{label}*\n{value}"), MAX_FIELD_TEXT)})
}

pub fn title(d: &DigestData) -> String {
    let period: String = d
        .period
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    format!("Tally {} digest · {}", d.kind.word(), clip(&period, 100))
}

fn top_list(heading: &str, rows: &[(String, Usd)]) -> String {
    let mut s = format!("*{heading}*");
    if rows.is_empty() {
        s.push_str("\nNo usage.");
    }
    for (i, (n, cost)) in rows.iter().take(TOP_N).enumerate() {
        s.push_str(&format!("\n{}. {} — {}", i + 1, name(n), cost.human()));
    }
    s
}

fn budget_text(lines: &[BudgetLine]) -> String {
    let mut s = "*Budgets this month*".to_string();
    if lines.is_empty() {
        s.push_str("\nNo budgets set.");
    }
    for b in lines.iter().take(BUDGET_LINES) {
        let pct = if b.budget.pico() == 0 {
            "–".to_string()
        } else {
            let t = b
                .spent
                .pico()
                .saturating_mul(1000)
                .saturating_add(b.budget.pico() / 2)
                / b.budget.pico();
            format!("{}.{}%", group(t / 10), t % 10)
        };
        s.push_str(&format!(
            "\n{}: {} of {} ({pct})",
            name(&b.scope),
            b.spent.cents(),
            b.budget.cents()
        ));
    }
    if lines.len() > BUDGET_LINES {
        s.push_str(&format!("\n…and {} more", lines.len() - BUDGET_LINES));
    }
    s
}

fn actual_text(a: &ActualSpend) -> String {
    format!(
        "*Actual spend (seats)*\n{} actual vs {} API-equivalent ({} {})",
        a.actual.cents(),
        a.api_equivalent.cents(),
        a.seats,
        if a.seats == 1 { "seat" } else { "seats" }
    )
}

/// The plain `text` of the message: what mobile notifications show.
pub fn fallback(d: &DigestData) -> String {
    clip(
        &format!(
            "{}: {} spent ({} vs {}), {} requests, {} active developers.",
            title(d),
            d.spend.cents(),
            change(d.spend, d.previous_spend),
            d.kind.previous(),
            compact(d.requests),
            d.active_developers
        ),
        MAX_SECTION_TEXT,
    )
}

/// The whole Slack message (`text` and `blocks`), for a webhook or
/// `chat.postMessage` alike.
pub fn blocks(d: &DigestData) -> Value {
    let mut context = format!(
        "*{}* · Times in {}",
        name(&d.team_name),
        esc(&d.timezone, 64)
    );
    match &d.freshness {
        Some(f) => context.push_str(&format!(" · Data as of {}", esc(f, 40))),
        None => context.push_str(" · No events received yet"),
    }
    let mut b = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": clip(&title(d), MAX_HEADER_TEXT), "emoji": false}}),
        json!({"type": "context", "elements": [mrkdwn(context)]}),
        json!({"type": "section", "fields": [
            field("Total spend", d.spend.cents()),
            field(&format!("Change vs {}", d.kind.previous()), format!("{} (was {})", change(d.spend, d.previous_spend), d.previous_spend.cents())),
            field("Requests", compact(d.requests)),
            field("Active developers", d.active_developers.to_string()),
            field("Cache hit rate", rate(d.cache_read_tokens, d.prompt_tokens)),
            field("Saved by caching", d.cache_saved.cents()),
        ]}),
    ];
    if let Some(s) = &d.summary {
        b.push(section(format!(
            "*Summary*\n{}",
            esc(s.trim(), SUMMARY_CHARS)
        )));
    }
    if let Some(lines) = &d.budgets {
        b.push(section(budget_text(lines)));
    }
    if let Some(a) = &d.actual_spend {
        b.push(section(actual_text(a)));
    }
    b.push(json!({"type": "divider"}));
    b.push(section(top_list("Top developers", &d.top_developers)));
    b.push(section(top_list("Top projects", &d.top_projects)));
    b.push(section(top_list("Top models", &d.top_models)));
    b.push(section(format!(
        "<{}|Open the dashboard>",
        esc(&d.dashboard_url.replace('|', "%7C"), 200)
    )));
    debug_assert!(b.len() <= MAX_BLOCKS);
    json!({"text": fallback(d), "blocks": b})
}

/// The e-mail's plain-text part (the unsubscribe link is appended by the sender).
pub fn email_text(d: &DigestData) -> String {
    let mut s = format!(
        "{}\n{} · times in {} · {}\n\nTotal spend: {}\nChange vs {}: {} (was {})\nRequests: {}\nActive developers: {}\nCache hit rate: {}\nSaved by caching: {}\n",
        title(d),
        d.team_name,
        d.timezone,
        d.freshness.as_deref().map(|f| format!("data as of {f}")).unwrap_or_else(|| "no events received yet".into()),
        d.spend.cents(),
        d.kind.previous(),
        change(d.spend, d.previous_spend),
        d.previous_spend.cents(),
        compact(d.requests),
        d.active_developers,
        rate(d.cache_read_tokens, d.prompt_tokens),
        d.cache_saved.cents(),
    );
    if let Some(sum) = &d.summary {
        s.push_str(&format!("\n{}\n", clip(sum.trim(), SUMMARY_CHARS)));
    }
    if let Some(lines) = &d.budgets {
        s.push('\n');
        for b in lines.iter().take(BUDGET_LINES) {
            s.push_str(&format!(
                "Budget {}: {} of {}\n",
                clip(&b.scope, NAME_CHARS),
                b.spent.cents(),
                b.budget.cents()
            ));
        }
    }
    if let Some(a) = &d.actual_spend {
        s.push_str(&format!(
            "\nActual spend (seats): {} vs {} API-equivalent\n",
            a.actual.cents(),
            a.api_equivalent.cents()
        ));
    }
    for (h, rows) in [
        ("Top developers", &d.top_developers),
        ("Top projects", &d.top_projects),
        ("Top models", &d.top_models),
    ] {
        s.push_str(&format!("\n{h}:\n"));
        for (i, (n, c)) in rows.iter().take(TOP_N).enumerate() {
            s.push_str(&format!(
                "{}. {} — {}\n",
                i + 1,
                clip(n, NAME_CHARS),
                c.human()
            ));
        }
    }
    s.push_str(&format!("\nDashboard: {}\n", d.dashboard_url));
    s
}

/// The e-mail's HTML part: maud escapes every value.
pub fn email_html(d: &DigestData, unsubscribe_url: &str) -> String {
    let tops = [
        ("Top developers", &d.top_developers),
        ("Top projects", &d.top_projects),
        ("Top models", &d.top_models),
    ];
    html! {
        h2 { (title(d)) }
        p { (d.team_name) " · times in " (d.timezone) " · "
            @match &d.freshness { Some(f) => { "data as of " (f) }, None => { "no events received yet" } } }
        table {
            tr { th align="left" { "Total spend" } td { (d.spend.cents()) } }
            tr { th align="left" { "Change vs " (d.kind.previous()) } td { (change(d.spend, d.previous_spend)) " (was " (d.previous_spend.cents()) ")" } }
            tr { th align="left" { "Requests" } td { (compact(d.requests)) } }
            tr { th align="left" { "Active developers" } td { (d.active_developers) } }
            tr { th align="left" { "Cache hit rate" } td { (rate(d.cache_read_tokens, d.prompt_tokens)) } }
            tr { th align="left" { "Saved by caching" } td { (d.cache_saved.cents()) } }
        }
        @if let Some(s) = &d.summary { p { (clip(s.trim(), SUMMARY_CHARS)) } }
        @if let Some(lines) = &d.budgets {
            h3 { "Budgets this month" }
            ul { @for b in lines.iter().take(BUDGET_LINES) { li { (clip(&b.scope, NAME_CHARS)) ": " (b.spent.cents()) " of " (b.budget.cents()) } } }
        }
        @if let Some(a) = &d.actual_spend {
            p { "Actual spend (seats): " (a.actual.cents()) " vs " (a.api_equivalent.cents()) " API-equivalent" }
        }
        @for (h, rows) in tops {
            h3 { (h) }
            ol { @for (n, c) in rows.iter().take(TOP_N) { li { (clip(n, NAME_CHARS)) " — " (c.human()) } } }
        }
        p { a href=(d.dashboard_url) { "Open the dashboard" } }
        p { small { "You receive this because you opted in to Tally's weekly digest. " a href=(unsubscribe_url) { "Unsubscribe" } } }
    }
    .into_string()
}

/// Whether a message is within every Slack limit this module promises.
pub fn within_limits(msg: &Value) -> Result<(), String> {
    let blocks = msg["blocks"].as_array().ok_or("no blocks")?;
    if blocks.len() > MAX_BLOCKS {
        return Err(format!("{} blocks", blocks.len()));
    }
    let chars = |v: &Value| v.as_str().map(|s| s.chars().count()).unwrap_or(0);
    if msg["text"].as_str().is_none_or(str::is_empty) {
        return Err("no text fallback".into());
    }
    for b in blocks {
        match b["type"].as_str() {
            Some("header") if chars(&b["text"]["text"]) > MAX_HEADER_TEXT => {
                return Err("header too long".into())
            }
            Some("section") => {
                if chars(&b["text"]["text"]) > MAX_SECTION_TEXT {
                    return Err("section text too long".into());
                }
                if let Some(f) = b["fields"].as_array() {
                    if f.len() > MAX_FIELDS || f.iter().any(|f| chars(&f["text"]) > MAX_FIELD_TEXT)
                    {
                        return Err("fields".into());
                    }
                }
            }
            _ => {}
        }
    }
    let total = msg.to_string().chars().count();
    if total >= MAX_MESSAGE_CHARS {
        return Err(format!("{total} characters"));
    }
    Ok(())
}

#[cfg(test)]
pub fn tests_sample() -> DigestData {
    tests::sample()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn usd(cents: u128) -> Usd {
        Usd::from_pico(cents * 10_000_000_000)
    }

    pub fn sample() -> DigestData {
        DigestData {
            team_name: "Acme".into(),
            kind: DigestKind::Weekly,
            period: "16–22 Nov 2026".into(),
            timezone: "Europe/Paris".into(),
            freshness: Some("2026-11-23 08:12".into()),
            spend: usd(123_456),
            previous_spend: usd(100_000),
            requests: 12_345,
            active_developers: 4,
            cache_read_tokens: 912,
            prompt_tokens: 1000,
            cache_saved: usd(45_678),
            top_developers: vec![
                ("Ada <@channel>".into(), usd(100_000)),
                ("Bob & co".into(), usd(23_456)),
            ],
            top_projects: vec![("api".into(), usd(123_456))],
            top_models: vec![("claude-sonnet-4-5".into(), usd(123_456))],
            budgets: None,
            actual_spend: None,
            summary: None,
            dashboard_url: "https://tally.example/".into(),
        }
    }

    #[test]
    fn numbers_read_as_people_read_them() {
        assert_eq!(compact(999), "999");
        assert_eq!(compact(1000), "1k");
        assert_eq!(compact(12_345), "12.3k");
        assert_eq!(compact(12_350), "12.4k");
        assert_eq!(compact(999_999), "1,000k");
        assert_eq!(compact(4_500_000), "4.5M");
        assert_eq!(compact(2_000_000_000), "2B");
        assert_eq!(change(usd(123_456), usd(100_000)), "+23.5%");
        assert_eq!(change(usd(50), usd(100)), "\u{2212}50.0%");
        assert_eq!(change(usd(5), Usd::ZERO), "new");
        assert_eq!(change(Usd::ZERO, Usd::ZERO), "no change");
        assert_eq!(rate(912, 1000), "91.2%");
        assert_eq!(rate(1, 0), "–");
        assert_eq!(
            escape("<!channel> & <http://x|y>"),
            "&lt;!channel&gt; &amp; &lt;http://x|y&gt;"
        );
        assert_eq!(clip("abcdef", 4), "abc…");
        assert_eq!(clip("abc", 4), "abc");
    }

    #[test]
    fn the_block_kit_message_of_a_known_data_set() {
        let m = blocks(&sample());
        assert_eq!(
            m,
            json!({
                "text": "Tally weekly digest · 16–22 Nov 2026: $1,234.56 spent (+23.5% vs previous week), 12.3k requests, 4 active developers.",
                "blocks": [
                    {"type": "header", "text": {"type": "plain_text", "text": "Tally weekly digest · 16–22 Nov 2026", "emoji": false}},
                    {"type": "context", "elements": [{"type": "mrkdwn", "text": "*Acme* · Times in Europe/Paris · Data as of 2026-11-23 08:12"}]},
                    {"type": "section", "fields": [
                        {"type": "mrkdwn", "text": "*Total spend*\n$1,234.56"},
                        {"type": "mrkdwn", "text": "*Change vs previous week*\n+23.5% (was $1,000.00)"},
                        {"type": "mrkdwn", "text": "*Requests*\n12.3k"},
                        {"type": "mrkdwn", "text": "*Active developers*\n4"},
                        {"type": "mrkdwn", "text": "*Cache hit rate*\n91.2%"},
                        {"type": "mrkdwn", "text": "*Saved by caching*\n$456.78"}
                    ]},
                    {"type": "divider"},
                    {"type": "section", "text": {"type": "mrkdwn", "text": "*Top developers*\n1. Ada &lt;@channel&gt; — $1,000.00\n2. Bob &amp; co — $234.56"}},
                    {"type": "section", "text": {"type": "mrkdwn", "text": "*Top projects*\n1. api — $1,234.56"}},
                    {"type": "section", "text": {"type": "mrkdwn", "text": "*Top models*\n1. claude-sonnet-4-5 — $1,234.56"}},
                    {"type": "section", "text": {"type": "mrkdwn", "text": "<https://tally.example/|Open the dashboard>"}}
                ]
            })
        );
        assert_eq!(within_limits(&m), Ok(()));
    }

    #[test]
    fn budget_seat_and_summary_slots_render_when_present() {
        let mut d = sample();
        d.summary = Some("Spend rose 23.5%.".into());
        d.budgets = Some(vec![BudgetLine {
            scope: "Team".into(),
            spent: usd(123_456),
            budget: usd(200_000),
        }]);
        d.actual_spend = Some(ActualSpend {
            api_equivalent: usd(123_456),
            actual: usd(40_000),
            seats: 2,
        });
        let m = blocks(&d);
        let texts: Vec<&str> = m["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|b| b["text"]["text"].as_str())
            .collect();
        assert_eq!(texts[1], "*Summary*\nSpend rose 23.5%.");
        assert_eq!(
            texts[2],
            "*Budgets this month*\nTeam: $1,234.56 of $2,000.00 (61.7%)"
        );
        assert_eq!(
            texts[3],
            "*Actual spend (seats)*\n$400.00 actual vs $1,234.56 API-equivalent (2 seats)"
        );
        let text = email_text(&d);
        assert!(
            text.contains("Budget Team: $1,234.56 of $2,000.00\n"),
            "{text}"
        );
        assert!(
            text.contains("Actual spend (seats): $400.00 vs $1,234.56 API-equivalent\n"),
            "{text}"
        );
        let html = email_html(&d, "https://t/unsubscribe?x=1&y=2");
        assert!(html.contains("Ada &lt;@channel&gt; — $1,000.00"), "{html}");
        assert!(
            html.contains("href=\"https://t/unsubscribe?x=1&amp;y=2\""),
            "{html}"
        );
    }

    fn any_usd() -> impl Strategy<Value = Usd> {
        (0u128..u128::MAX / 4).prop_map(Usd::from_pico)
    }

    fn any_rows() -> impl Strategy<Value = Vec<(String, Usd)>> {
        prop::collection::vec((any::<String>(), any_usd()), 0..20)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn any_data_stays_within_slack_limits(
            team in any::<String>(), period in ".{0,400}", tz in any::<String>(), fresh in proptest::option::of(any::<String>()),
            spend in any_usd(), before in any_usd(), requests in any::<i64>(), devs in any::<usize>(),
            reads in any::<i64>(), prompts in any::<i64>(), saved in any_usd(),
            d in any_rows(), p in any_rows(), mo in any_rows(),
            summary in proptest::option::of(".{0,5000}"),
            budgets in proptest::option::of(prop::collection::vec((any::<String>(), any_usd(), any_usd()), 0..40)),
            url in ".{0,600}",
        ) {
            let data = DigestData {
                team_name: team, kind: DigestKind::Daily, period, timezone: tz, freshness: fresh,
                spend, previous_spend: before, requests, active_developers: devs,
                cache_read_tokens: reads, prompt_tokens: prompts, cache_saved: saved,
                top_developers: d, top_projects: p, top_models: mo,
                budgets: budgets.map(|v| v.into_iter().map(|(scope, spent, budget)| BudgetLine { scope, spent, budget }).collect()),
                actual_spend: Some(ActualSpend { api_equivalent: spend, actual: saved, seats: u32::MAX }),
                summary, dashboard_url: url,
            };
            let m = blocks(&data);
            prop_assert_eq!(within_limits(&m), Ok(()));
        }
    }
}
