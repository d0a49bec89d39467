//! Local reports from the index: per day and model, session, project or
//! model, as JSON (a stable interface other tools rely on) or a table.

use std::collections::BTreeMap;
use tally_core::time::HOUR_MS;

use jiff::tz::TimeZone;
use tally_core::event::AgentKind;
use tally_core::money::Usd;
use tally_core::pricing::{default_table, ModelPrice};
use tally_core::time::{civil_from_days, parse_date};
use tally_core::usage::TokenUsage;

use crate::error::AgentError;
use crate::index::Index;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    Daily,
    Session,
    Project,
    /// Per project and git branch: a branch name alone is not unique.
    Branch,
    Model,
}

pub struct Filter {
    /// Inclusive bounds, as days since the epoch in `tz`.
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub tz: TimeZone,
    /// Only this agent's requests (`--agent`); every agent when `None`.
    pub agent: Option<AgentKind>,
}

impl Filter {
    /// Every day, counted in `tz`.
    pub fn all_days(tz: TimeZone) -> Filter {
        Filter {
            since: None,
            until: None,
            tz,
            agent: None,
        }
    }
}

/// Parses `--timezone`: `local` (the default), `UTC`, or an IANA name.
pub fn parse_tz(name: Option<&str>) -> Result<TimeZone, AgentError> {
    match name {
        None | Some("local") => Ok(TimeZone::system()),
        Some(n) if n.eq_ignore_ascii_case("utc") => Ok(TimeZone::UTC),
        Some(n) => TimeZone::get(n).map_err(|_| AgentError::UnknownTimeZone {
            name: n.to_string(),
        }),
    }
}

pub fn parse_day(flag: &str, s: Option<&str>) -> Result<Option<i64>, AgentError> {
    match s {
        None => Ok(None),
        Some(s) => {
            // Accept YYYYMMDD as well, as ccusage does.
            let norm = if s.len() == 8 && s.bytes().all(|b| b.is_ascii_digit()) {
                format!("{}-{}-{}", &s[..4], &s[4..6], &s[6..])
            } else {
                s.to_string()
            };
            parse_date(&norm)
                .map(Some)
                .ok_or_else(|| AgentError::BadDate {
                    flag: flag.to_string(),
                    value: s.to_string(),
                })
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sums {
    pub tokens: TokenUsage,
    pub requests: u64,
    /// Exact: the sum of each request's pico-USD, rounded only when shown.
    pub cost: Usd,
    pub unpriced_requests: u64,
}

impl Sums {
    fn add(&mut self, u: &TokenUsage, cost: Option<u64>) {
        self.tokens.add(u);
        self.requests += 1;
        match cost {
            Some(c) => self.cost.add_pico(c),
            None => self.unpriced_requests += 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// (field name, value) pairs that identify the row, in output order.
    pub key: Vec<(&'static str, String)>,
    /// Models seen in the row (for session and project rows).
    pub models: Vec<String>,
    pub sums: Sums,
}

pub struct Report {
    pub group: Group,
    pub rows: Vec<Row>,
    pub totals: Sums,
    pub unpriced_models: Vec<String>,
}

/// Offsets change at most a few times a year; caching them per hour (after
/// checking the hour has one offset) keeps the conversion exact and cheap.
struct DayOf<'a> {
    tz: &'a TimeZone,
    cache: std::collections::HashMap<i64, i32>,
}

impl DayOf<'_> {
    fn offset(&self, ms: i64) -> i32 {
        match jiff::Timestamp::from_millisecond(ms) {
            Ok(t) => self.tz.to_offset(t).seconds(),
            Err(_) => 0,
        }
    }

    fn day(&mut self, ms: i64) -> i64 {
        let hour = ms.div_euclid(HOUR_MS);
        let off = match self.cache.get(&hour) {
            Some(&o) => o,
            None => {
                let a = self.offset(hour * HOUR_MS);
                let b = self.offset(hour * HOUR_MS + HOUR_MS - 1);
                if a == b {
                    self.cache.insert(hour, a);
                    a
                } else {
                    self.offset(ms)
                }
            }
        };
        (ms.div_euclid(1000) + off as i64).div_euclid(86_400)
    }
}

pub fn date_string(day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Sums of one group, its models, newest request and (first) directory.
type Acc = (Sums, Vec<u32>, i64, u32);

pub fn build(ix: &Index, group: Group, f: &Filter) -> Report {
    let table = default_table();
    let mut prices: Vec<Option<Option<&ModelPrice>>> = vec![None; ix.strings.len()];
    let mut days = DayOf {
        tz: &f.tz,
        cache: Default::default(),
    };
    // Keyed by string ids (and the day), resolved to text at the end.
    let mut groups: BTreeMap<(i64, u32), Acc> = BTreeMap::new();
    let mut totals = Sums::default();
    let mut unpriced: Vec<u32> = Vec::new();
    for r in &ix.records {
        let day = days.day(r.ts);
        if f.since.is_some_and(|s| day < s) || f.until.is_some_and(|u| day > u) {
            continue;
        }
        if f.agent.is_some_and(|a| a != r.agent) {
            continue;
        }
        let price = *prices[r.model as usize].get_or_insert_with(|| table.lookup(ix.str(r.model)));
        let cost = price.map(|p| p.cost(&r.usage, r.fast));
        if cost.is_none() && !unpriced.contains(&r.model) {
            unpriced.push(r.model);
        }
        let key = match group {
            Group::Daily => (day, r.model),
            Group::Session => (0, r.session),
            Group::Project => (0, r.cwd),
            Group::Branch => (r.cwd as i64, r.branch),
            Group::Model => (0, r.model),
        };
        let g = groups
            .entry(key)
            .or_insert_with(|| (Sums::default(), Vec::new(), r.ts, r.cwd));
        g.0.add(&r.usage, cost);
        if !g.1.contains(&r.model) {
            g.1.push(r.model);
        }
        g.2 = g.2.max(r.ts);
        totals.add(&r.usage, cost);
    }
    let mut rows: Vec<(i64, Row)> = groups
        .into_iter()
        .map(|((day, k), (sums, models, last, cwd))| {
            let mut models: Vec<String> = models.iter().map(|m| ix.str(*m).to_string()).collect();
            models.sort();
            let key = match group {
                Group::Daily => vec![("date", date_string(day)), ("model", ix.str(k).to_string())],
                Group::Session => {
                    vec![
                        ("session_id", ix.str(k).to_string()),
                        ("project", ix.str(cwd).to_string()),
                        ("last_activity", date_string(days.day(last))),
                    ]
                }
                Group::Project => vec![("project", ix.str(k).to_string())],
                Group::Branch => vec![
                    ("project", ix.str(cwd).to_string()),
                    ("branch", ix.str(k).to_string()),
                ],
                Group::Model => vec![("model", ix.str(k).to_string())],
            };
            (last, Row { key, models, sums })
        })
        .collect();
    if group == Group::Session {
        rows.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.key.cmp(&b.1.key)));
    } else {
        rows.sort_by(|a, b| a.1.key.cmp(&b.1.key));
    }
    let mut unpriced_models: Vec<String> =
        unpriced.iter().map(|m| ix.str(*m).to_string()).collect();
    unpriced_models.sort();
    Report {
        group,
        rows: rows.into_iter().map(|(_, r)| r).collect(),
        totals,
        unpriced_models,
    }
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

fn sums_json(s: &Sums, out: &mut String) {
    let t = &s.tokens;
    // cost_usd is an exact decimal with six places; null when nothing in
    // the row has a price (an unknown model is unpriced, never $0).
    let cost = if s.requests > 0 && s.unpriced_requests == s.requests {
        "null".to_string()
    } else {
        s.cost.decimal(6)
    };
    out.push_str(&format!(
        "\"input_tokens\":{},\"output_tokens\":{},\"cache_write_5m_tokens\":{},\"cache_write_1h_tokens\":{},\"cache_read_tokens\":{},\"requests\":{},\"cost_usd\":{}",
        t.input, t.output, t.cache_write_5m, t.cache_write_1h, t.cache_read, s.requests, cost
    ));
}

pub fn to_json(r: &Report) -> String {
    let mut out = String::from("{\"rows\":[");
    for (i, row) in r.rows.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('{');
        for (k, v) in &row.key {
            out.push_str(&format!("{}:{},", json_str(k), json_str(v)));
        }
        if matches!(r.group, Group::Session | Group::Project | Group::Branch) {
            let models: Vec<String> = row.models.iter().map(|m| json_str(m)).collect();
            out.push_str(&format!("\"models\":[{}],", models.join(",")));
        }
        sums_json(&row.sums, &mut out);
        out.push('}');
    }
    out.push_str("],\"totals\":{");
    sums_json(&r.totals, &mut out);
    out.push_str("}}");
    out
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn cost_cell(s: &Sums) -> String {
    if s.requests > 0 && s.unpriced_requests == s.requests {
        "unpriced".into()
    } else {
        let c = s.cost.cents();
        if s.unpriced_requests > 0 {
            format!("{c} + unpriced")
        } else {
            c
        }
    }
}

pub fn to_table(r: &Report) -> String {
    let mut head: Vec<String> = match r.rows.first() {
        Some(row) => row.key.iter().map(|(k, _)| k.replace('_', " ")).collect(),
        None => vec![match r.group {
            Group::Daily => "date".into(),
            Group::Session => "session id".into(),
            Group::Project => "project".into(),
            Group::Branch => "branch".into(),
            Group::Model => "model".into(),
        }],
    };
    let nkey = head.len();
    head.extend(
        [
            "input",
            "output",
            "cache write 5m",
            "cache write 1h",
            "cache read",
            "requests",
            "cost",
        ]
        .map(String::from),
    );
    let cells = |s: &Sums| {
        vec![
            thousands(s.tokens.input),
            thousands(s.tokens.output),
            thousands(s.tokens.cache_write_5m),
            thousands(s.tokens.cache_write_1h),
            thousands(s.tokens.cache_read),
            thousands(s.requests),
            cost_cell(s),
        ]
    };
    let mut body: Vec<Vec<String>> = r
        .rows
        .iter()
        .map(|row| {
            let mut v: Vec<String> = row.key.iter().map(|(_, v)| v.clone()).collect();
            v.extend(cells(&row.sums));
            v
        })
        .collect();
    let mut total = vec![String::new(); nkey];
    total[0] = "total".into();
    total.extend(cells(&r.totals));
    body.push(total);
    let widths: Vec<usize> = (0..head.len())
        .map(|c| {
            body.iter()
                .map(|row| row[c].chars().count())
                .chain([head[c].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let fmt = |row: &[String]| {
        row.iter()
            .enumerate()
            .map(|(c, v)| {
                if c < nkey {
                    format!("{v:<w$}", w = widths[c])
                } else {
                    format!("{v:>w$}", w = widths[c])
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut out = fmt(&head);
    out.push('\n');
    out.push_str(&"-".repeat(widths.iter().sum::<usize>() + 2 * (widths.len() - 1)));
    out.push('\n');
    let n = body.len();
    for (i, row) in body.iter().enumerate() {
        if i + 1 == n {
            out.push_str(&"-".repeat(widths.iter().sum::<usize>() + 2 * (widths.len() - 1)));
            out.push('\n');
        }
        out.push_str(&fmt(row));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Request;
    use tally_core::event::AgentKind;

    fn rec(id: u8, ts: i64, model: &str, session: &str, input: u64, output: u64) -> Request {
        Request {
            id: [id; 16],
            agent: AgentKind::ClaudeCode,
            ts,
            model: model.into(),
            usage: TokenUsage {
                input,
                output,
                ..Default::default()
            },
            fast: false,
            session_id: session.into(),
            cwd: format!("/w/{session}"),
            branch: String::new(),
            line_tag: 0,
            text: None,
        }
    }

    // 2025-11-22T23:30:00Z
    const LATE: i64 = 1_763_854_200_000;

    fn index() -> Index {
        let mut ix = Index::new(String::new());
        ix.offer(&rec(
            1,
            LATE,
            "claude-sonnet-4-5-20250929",
            "s1",
            1_000,
            1_000,
        ));
        ix.offer(&rec(
            2,
            LATE + HOUR_MS,
            "claude-sonnet-4-5-20250929",
            "s1",
            10,
            0,
        ));
        ix.offer(&rec(3, LATE, "mystery-model", "s2", 5, 5));
        ix
    }

    #[test]
    fn daily_rows_follow_the_time_zone_and_price_exactly() {
        let utc = Filter::all_days(TimeZone::UTC);
        let r = build(&index(), Group::Daily, &utc);
        let keys: Vec<Vec<String>> = r
            .rows
            .iter()
            .map(|row| row.key.iter().map(|(_, v)| v.clone()).collect())
            .collect();
        assert_eq!(
            keys,
            vec![
                vec!["2025-11-22", "claude-sonnet-4-5-20250929"],
                vec!["2025-11-22", "mystery-model"],
                vec!["2025-11-23", "claude-sonnet-4-5-20250929"],
            ]
        );
        // 1000 × $3/M + 1000 × $15/M = $0.018; 10 × $3/M = $0.00003.
        assert_eq!(r.rows[0].sums.cost, Usd::from_pico(18_000_000_000));
        assert_eq!(r.rows[2].sums.cost, Usd::from_pico(30_000_000));
        assert_eq!(r.totals.cost, Usd::from_pico(18_030_000_000));
        assert_eq!(r.totals.unpriced_requests, 1);
        assert_eq!(r.unpriced_models, vec!["mystery-model".to_string()]);
        let json = to_json(&r);
        assert!(json.starts_with(
            "{\"rows\":[{\"date\":\"2025-11-22\",\"model\":\"claude-sonnet-4-5-20250929\",\"input_tokens\":1000,\"output_tokens\":1000,\"cache_write_5m_tokens\":0,\"cache_write_1h_tokens\":0,\"cache_read_tokens\":0,\"requests\":1,\"cost_usd\":0.018000}"
        ), "{json}");
        assert!(json.contains("\"model\":\"mystery-model\",\"input_tokens\":5,\"output_tokens\":5,\"cache_write_5m_tokens\":0,\"cache_write_1h_tokens\":0,\"cache_read_tokens\":0,\"requests\":1,\"cost_usd\":null}"));
        assert!(json.ends_with("\"totals\":{\"input_tokens\":1015,\"output_tokens\":1005,\"cache_write_5m_tokens\":0,\"cache_write_1h_tokens\":0,\"cache_read_tokens\":0,\"requests\":3,\"cost_usd\":0.018030}}"));
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["rows"].as_array().unwrap().len(), 3);

        // In Berlin (UTC+1 in November) 23:30Z is already the 23rd.
        let berlin = Filter::all_days(parse_tz(Some("Europe/Berlin")).unwrap());
        let r = build(&index(), Group::Daily, &berlin);
        assert_eq!(r.rows.len(), 2);
        assert_eq!(r.rows[0].key[0].1, "2025-11-23");
        assert_eq!(r.rows[0].sums.requests, 2);
        // Filters are inclusive days in the chosen zone.
        let only_22 = Filter {
            since: parse_day("--since", Some("2025-11-22")).unwrap(),
            until: parse_day("--until", Some("20251122")).unwrap(),
            tz: TimeZone::UTC,
            agent: None,
        };
        let r = build(&index(), Group::Daily, &only_22);
        assert_eq!(r.totals.requests, 2);
        assert!(parse_day("--since", Some("2025-02-30")).is_err());
        assert!(parse_tz(Some("Mars/Olympus"))
            .unwrap_err()
            .to_string()
            .contains("unknown time zone"));
    }

    #[test]
    fn other_groupings() {
        let f = Filter::all_days(TimeZone::UTC);
        let r = build(&index(), Group::Session, &f);
        assert_eq!(r.rows.len(), 2);
        assert_eq!(r.rows[1].key[0], ("session_id", "s1".to_string()));
        assert_eq!(r.rows[1].key[1], ("project", "/w/s1".to_string()));
        assert_eq!(r.rows[1].sums.requests, 2);
        let r = build(&index(), Group::Model, &f);
        assert_eq!(
            r.rows.iter().map(|x| x.sums.requests).collect::<Vec<_>>(),
            vec![2, 1]
        );
        let r = build(&index(), Group::Project, &f);
        assert!(to_json(&r).contains("\"project\":\"/w/s2\",\"models\":[\"mystery-model\"]"));
        let table = to_table(&r);
        assert!(table.contains("unpriced"), "{table}");
        assert!(
            table.lines().last().unwrap().starts_with("total"),
            "{table}"
        );
    }

    #[test]
    fn branches_group_per_project_and_filter_by_agent() {
        let mut ix = Index::new(String::new());
        let model = "claude-sonnet-4-5-20250929";
        for (id, branch, input) in [
            (1, "main", 1_000_000),
            (2, "feature/x", 2_000),
            (3, "main", 3),
        ] {
            let mut r = rec(id, LATE, model, "s1", input, 0);
            r.branch = branch.into();
            ix.offer(&r);
        }
        let mut other = rec(4, LATE, model, "s2", 7, 0);
        other.branch = "main".into();
        ix.offer(&other);
        let mut codex = rec(5, LATE, "gpt-5-codex", "s1", 9, 0);
        codex.agent = AgentKind::Codex;
        codex.branch = "main".into();
        ix.offer(&codex);
        let f = Filter::all_days(TimeZone::UTC);
        let r = build(&ix, Group::Branch, &f);
        let rows: Vec<(String, String, u64, u64)> = r
            .rows
            .iter()
            .map(|x| {
                (
                    x.key[0].1.clone(),
                    x.key[1].1.clone(),
                    x.sums.requests,
                    x.sums.tokens.input,
                )
            })
            .collect();
        assert_eq!(
            rows,
            [
                ("/w/s1".into(), "feature/x".into(), 1, 2_000),
                ("/w/s1".into(), "main".into(), 3, 1_000_012),
                ("/w/s2".into(), "main".into(), 1, 7),
            ]
        );
        // Sonnet input is $3/M, $6/M in a request over 200K tokens: the
        // million-token request costs $6, the three-token one $0.000009.
        let only = Filter {
            agent: Some(AgentKind::ClaudeCode),
            ..Filter::all_days(TimeZone::UTC)
        };
        let r = build(&ix, Group::Branch, &only);
        assert_eq!(r.rows[1].sums.requests, 2);
        assert!(
            to_json(&r).contains("{\"project\":\"/w/s1\",\"branch\":\"main\",\"models\":[\"claude-sonnet-4-5-20250929\"],\"input_tokens\":1000003,\"output_tokens\":0,\"cache_write_5m_tokens\":0,\"cache_write_1h_tokens\":0,\"cache_read_tokens\":0,\"requests\":2,\"cost_usd\":6.000009}"),
            "{}",
            to_json(&r)
        );
        assert!(
            to_table(&r).starts_with("project  branch"),
            "{}",
            to_table(&r)
        );
    }

    /// Cache reads cost $0.30/M: 0.3 micro-dollars a token. Rounding each
    /// request to the micro-dollar (version one) made three one-token reads
    /// cost 0 or 3 µ$; the exact sum is 0.9 µ$, shown as 0.000001 once.
    #[test]
    fn totals_are_the_exact_sum_rounded_once() {
        let mut ix = Index::new(String::new());
        for id in 1..=3u8 {
            let mut r = rec(id, LATE, "claude-sonnet-4-5-20250929", "s1", 0, 0);
            r.usage.cache_read = 1;
            ix.offer(&r);
        }
        let r = build(&ix, Group::Daily, &Filter::all_days(TimeZone::UTC));
        assert_eq!(r.totals.cost, Usd::from_pico(900_000));
        let json = to_json(&r);
        assert!(
            json.ends_with("\"requests\":3,\"cost_usd\":0.000001}}"),
            "{json}"
        );
        // 1.5 µ$ (five reads) rounds half up to 0.000002.
        for id in 4..=5u8 {
            let mut r = rec(id, LATE, "claude-sonnet-4-5-20250929", "s1", 0, 0);
            r.usage.cache_read = 1;
            ix.offer(&r);
        }
        let r = build(&ix, Group::Daily, &Filter::all_days(TimeZone::UTC));
        assert!(to_json(&r).ends_with("\"cost_usd\":0.000002}}"));
    }
}
