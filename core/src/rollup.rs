//! In-batch aggregation: a batch of up to 500 events collapses to a handful of
//! rows before anything touches D1, because D1 bills per row written.
//! The result is also what travels on the queue, so no event content ever does.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::event::{Category, WireEvent};
use crate::money::Usd;
use crate::time::DAY_MS;
use crate::usage::TokenUsage;

// Callers name it here; the constant lives in `time`.
pub use crate::time::QUARTER_MS;

/// One aggregate row's key: a quarter hour (unix ms / `QUARTER_MS`), so a
/// day in any time zone is a whole number of buckets.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(from = "QuarterKeyWire")]
pub struct QuarterKey {
    pub quarter: i64,
    pub project: String,
    /// The branch's keyed hash ("" for none); absent on the queue when empty,
    /// so messages of Workers before branches and branchless rows read alike.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub branch: String,
    pub model: String,
    pub agent: String,
}

/// Queue messages sent by a Worker of before quarter buckets (still in flight
/// during a deploy) carry `hour`; an hour is its first quarter's bucket, as
/// migration 0012 moved the stored rows.
#[derive(Deserialize)]
struct QuarterKeyWire {
    #[serde(default)]
    quarter: Option<i64>,
    #[serde(default)]
    hour: Option<i64>,
    project: String,
    #[serde(default)]
    branch: String,
    model: String,
    agent: String,
}

impl From<QuarterKeyWire> for QuarterKey {
    fn from(w: QuarterKeyWire) -> QuarterKey {
        let quarters_per_hour = crate::time::HOUR_MS / QUARTER_MS;
        QuarterKey {
            quarter: w
                .quarter
                .or(w.hour.map(|h| h * quarters_per_hour))
                .unwrap_or(0),
            project: w.project,
            branch: w.branch,
            model: w.model,
            agent: w.agent,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub requests: u64,
    pub unpriced_requests: u64,
    pub tokens: TokenUsage,
    pub cost: Usd,
}

impl Totals {
    /// Adds another sum of the same key (merging parts, rolling quarters
    /// up to days).
    pub fn merge(&mut self, o: &Totals) {
        self.requests += o.requests;
        self.unpriced_requests += o.unpriced_requests;
        self.tokens.add(&o.tokens);
        self.cost += o.cost;
    }

    fn add(&mut self, e: &WireEvent) {
        self.requests += 1;
        self.tokens.add(&e.tokens);
        match e.cost_pico_usd {
            Some(c) => self.cost.add_pico(c),
            None => self.unpriced_requests += 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRow {
    pub session: String,
    pub project: String,
    pub agent: String,
    pub start_ms: i64,
    pub end_ms: i64,
    pub requests: u64,
    pub cost: Usd,
    /// The privacy modes its requests were captured under, one bit each
    /// (`mode_bit`): the Sessions page shows them so a team can see that
    /// restriction happened.
    #[serde(default)]
    pub modes: u8,
}

/// The bit of a privacy mode in `SessionRow::modes`.
pub fn mode_bit(mode: crate::event::PrivacyMode) -> u8 {
    let i = crate::event::PrivacyMode::ALL
        .iter()
        .position(|m| *m == mode)
        .unwrap_or(0);
    1 << i
}

/// The modes named by a `modes` bit set, in `PrivacyMode::ALL` order.
pub fn modes_of(bits: u8) -> Vec<crate::event::PrivacyMode> {
    crate::event::PrivacyMode::ALL
        .into_iter()
        .filter(|m| bits & mode_bit(*m) != 0)
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CategoryKey {
    pub day: i64, // unix day
    pub project: String,
    pub category: Category,
    pub task_hint: String,
    pub project_hint: String,
}

/// A branch's readable name as a text mode sent it (already redacted on the
/// machine): what the Branches page shows until an admin labels the hash.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BranchName {
    pub project: String,
    pub branch: String,
    pub name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rollup {
    #[serde(alias = "hourly")]
    pub quarters: Vec<(QuarterKey, Totals)>,
    pub sessions: Vec<SessionRow>,
    pub categories: Vec<(CategoryKey, u64)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub branch_names: Vec<BranchName>,
    pub events: u64,
}

pub fn aggregate(events: &[WireEvent]) -> Rollup {
    let mut quarters: BTreeMap<QuarterKey, Totals> = BTreeMap::new();
    let mut sessions: BTreeMap<&str, SessionRow> = BTreeMap::new();
    let mut categories: BTreeMap<CategoryKey, u64> = BTreeMap::new();
    // One name per branch of a project: the batch's latest spelling.
    let mut names: BTreeMap<(&str, &str), &str> = BTreeMap::new();
    for e in events {
        if let Some(n) = e.branch_name.as_deref().filter(|_| !e.branch.is_empty()) {
            names.insert((&e.project, &e.branch), n);
        }
        let key = QuarterKey {
            quarter: e.ts.div_euclid(QUARTER_MS),
            project: e.project.clone(),
            branch: e.branch.clone(),
            model: e.model.clone(),
            agent: e.agent.as_str().to_string(),
        };
        quarters.entry(key).or_default().add(e);
        let s = sessions.entry(&e.session).or_insert_with(|| SessionRow {
            session: e.session.clone(),
            project: e.project.clone(),
            agent: e.agent.as_str().to_string(),
            start_ms: e.ts,
            end_ms: e.ts,
            requests: 0,
            cost: Usd::ZERO,
            modes: 0,
        });
        s.modes |= mode_bit(e.mode);
        s.start_ms = s.start_ms.min(e.ts);
        s.end_ms = s.end_ms.max(e.ts);
        s.requests += 1;
        s.cost.add_pico(e.cost_pico_usd.unwrap_or(0));
        if let Some(c) = &e.category {
            *categories
                .entry(CategoryKey {
                    day: e.ts.div_euclid(DAY_MS),
                    project: e.project.clone(),
                    category: c.category,
                    task_hint: c.task_hint.clone(),
                    project_hint: c.project_hint.clone(),
                })
                .or_default() += 1;
        }
    }
    Rollup {
        quarters: quarters.into_iter().collect(),
        sessions: sessions.into_values().collect(),
        categories: categories.into_iter().collect(),
        branch_names: names
            .into_iter()
            .map(|((project, branch), name)| BranchName {
                project: project.to_string(),
                branch: branch.to_string(),
                name: name.to_string(),
            })
            .collect(),
        events: events.len() as u64,
    }
}

/// Fingerprint of a batch's rollup as split into queue parts. Two sends of
/// one batch apply parts of each other only if this is equal, i.e. if every
/// part is the same; anything that changed in between (mode, prices, settings,
/// the split itself) makes the later send a duplicate as a whole.
pub fn split_id(parts: &[Rollup]) -> String {
    let bytes = serde_json::to_vec(parts).unwrap_or_default();
    crate::hash::sha256_hex(&bytes)[..32].to_string()
}

impl Rollup {
    pub fn rows(&self) -> usize {
        self.quarters.len() + self.sessions.len() + self.categories.len() + self.branch_names.len()
    }

    /// Splits into parts of at most `max_rows` rows so each queue message stays
    /// far below the 128 KB limit whatever the batch looks like. Each part gets
    /// its own idempotency marker downstream.
    pub fn split(self, max_rows: usize) -> Vec<Rollup> {
        let max_rows = max_rows.max(1);
        if self.rows() <= max_rows {
            return vec![self];
        }
        let mut parts = Vec::new();
        let mut cur = Rollup::default();
        let flush = |cur: &mut Rollup, parts: &mut Vec<Rollup>| {
            if cur.rows() > 0 {
                parts.push(std::mem::take(cur));
            }
        };
        for h in self.quarters {
            if cur.rows() == max_rows {
                flush(&mut cur, &mut parts);
            }
            cur.quarters.push(h);
        }
        for s in self.sessions {
            if cur.rows() == max_rows {
                flush(&mut cur, &mut parts);
            }
            cur.sessions.push(s);
        }
        for c in self.categories {
            if cur.rows() == max_rows {
                flush(&mut cur, &mut parts);
            }
            cur.categories.push(c);
        }
        for b in self.branch_names {
            if cur.rows() == max_rows {
                flush(&mut cur, &mut parts);
            }
            cur.branch_names.push(b);
        }
        flush(&mut cur, &mut parts);
        // The event count belongs to the batch, not to a part; keep it once.
        if let Some(first) = parts.first_mut() {
            first.events = self.events;
        }
        parts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{AgentKind, PrivacyMode};

    fn ev(ts: i64, session: &str, model: &str, cost: Option<u64>) -> WireEvent {
        WireEvent {
            id: "0".repeat(32),
            ts,
            agent: AgentKind::ClaudeCode,
            model: model.into(),
            tokens: TokenUsage {
                input: 10,
                output: 5,
                cache_write_5m: 100,
                cache_write_1h: 0,
                cache_read: 1000,
            },
            fast: false,
            cost_pico_usd: cost,
            project: "p".repeat(64),
            branch: String::new(),
            session: session.into(),
            mode: PrivacyMode::Off,
            branch_name: None,
            category: None,
            prompt: None,
            response: None,
            tools: None,
        }
    }

    #[test]
    fn collapses_by_quarter_model_and_session() {
        let h = QUARTER_MS;
        let events = vec![
            ev(10 * h + 1, "s1", "m1", Some(100)),
            ev(10 * h + 2, "s1", "m1", Some(50)),
            ev(10 * h + 3, "s1", "m2", None),
            ev(11 * h, "s2", "m1", Some(7)),
        ];
        let r = aggregate(&events);
        assert_eq!(r.events, 4);
        assert_eq!(r.quarters.len(), 3);
        let (k, t) = &r.quarters[0];
        assert_eq!((k.quarter, k.model.as_str()), (10, "m1"));
        assert_eq!(
            (t.requests, t.cost, t.tokens.cache_read),
            (2, Usd::from_pico(150), 2000)
        );
        let (_, t2) = &r.quarters[1];
        assert_eq!(
            (t2.requests, t2.unpriced_requests, t2.cost),
            (1, 1, Usd::ZERO)
        );
        assert_eq!(r.sessions.len(), 2);
        assert_eq!(r.sessions[0].start_ms, 10 * h + 1);
        assert_eq!(r.sessions[0].end_ms, 10 * h + 3);
        assert_eq!(r.quarters[2].0.quarter, 11);
        assert_eq!(
            (r.sessions[0].requests, r.sessions[0].cost),
            (3, Usd::from_pico(150))
        );
    }

    #[test]
    fn messages_of_hourly_workers_still_in_flight_land_in_their_first_quarter() {
        let old = r#"{"hourly":[[{"hour":10,"project":"p","model":"m","agent":"claude-code"},{"requests":2,"unpriced_requests":0,"tokens":{"input":1,"output":2,"cache_write_5m":3,"cache_write_1h":4,"cache_read":5},"cost":"7"}]],"sessions":[],"categories":[],"events":2}"#;
        let r: Rollup = serde_json::from_str(old).unwrap();
        assert_eq!(r.quarters.len(), 1);
        assert_eq!(r.quarters[0].0.quarter, 40);
        assert_eq!(r.quarters[0].1.requests, 2);
        assert_eq!(r.events, 2);
        // And today's messages round-trip exactly.
        let events = [ev(5 * QUARTER_MS + 9, "s", "m", Some(3))];
        let now = aggregate(&events);
        let back: Rollup = serde_json::from_str(&serde_json::to_string(&now).unwrap()).unwrap();
        assert_eq!(back, now);
        assert_eq!(back.quarters[0].0.quarter, 5);
    }

    #[test]
    fn branches_split_the_quarter_rows_and_names_travel_once() {
        let (main, topic) = ("a".repeat(64), "b".repeat(64));
        let mut e1 = ev(QUARTER_MS, "s", "m", Some(10));
        e1.branch = main.clone();
        let mut e2 = ev(QUARTER_MS + 1, "s", "m", Some(20));
        e2.branch = topic.clone();
        e2.branch_name = Some("topic".into());
        e2.mode = crate::event::PrivacyMode::Full;
        let mut e3 = ev(QUARTER_MS + 2, "s", "m", Some(30));
        e3.branch = topic.clone();
        e3.branch_name = Some("topic".into());
        let r = aggregate(&[e1, e2, e3, ev(QUARTER_MS + 3, "s", "m", Some(1))]);
        let rows: Vec<(&str, u64, Usd)> = r
            .quarters
            .iter()
            .map(|(k, t)| (k.branch.as_str(), t.requests, t.cost))
            .collect();
        assert_eq!(
            rows,
            [
                ("", 1, Usd::from_pico(1)),
                (main.as_str(), 1, Usd::from_pico(10)),
                (topic.as_str(), 2, Usd::from_pico(50)),
            ]
        );
        assert_eq!(
            r.branch_names,
            [BranchName {
                project: "p".repeat(64),
                branch: topic,
                name: "topic".into()
            }]
        );
        assert_eq!(r.rows(), 5);
        let back: Rollup = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
        // A branchless key serializes as before branches existed.
        let json = serde_json::to_string(&r.quarters[0].0).unwrap();
        assert!(!json.contains("branch"), "{json}");
    }

    #[test]
    fn sessions_remember_the_modes_they_were_captured_under() {
        use crate::event::PrivacyMode;
        let mut a = ev(1, "s", "m", Some(1));
        let mut b = ev(2, "s", "m", Some(1));
        a.mode = PrivacyMode::Off;
        b.mode = PrivacyMode::Full;
        let r = aggregate(&[a, b]);
        assert_eq!(
            modes_of(r.sessions[0].modes),
            [PrivacyMode::Off, PrivacyMode::Full]
        );
        assert_eq!(modes_of(0), []);
        let bits: Vec<u8> = PrivacyMode::ALL.iter().map(|m| mode_bit(*m)).collect();
        assert_eq!(bits, [1, 2, 4, 8]);
    }

    #[test]
    fn split_id_changes_with_any_part() {
        let events: Vec<WireEvent> = (0..10)
            .map(|i| ev(i * QUARTER_MS, &format!("s{i}"), "m", Some(1)))
            .collect();
        let r = aggregate(&events);
        let a = split_id(&r.clone().split(5));
        assert_eq!(a, split_id(&r.clone().split(5)));
        assert_ne!(a, split_id(&r.clone().split(4)), "a different split");
        let mut repriced = events.clone();
        repriced[3].cost_pico_usd = Some(2);
        assert_ne!(
            a,
            split_id(&aggregate(&repriced).split(5)),
            "a different price"
        );
        assert_eq!(a.len(), 32);
    }

    #[test]
    fn split_keeps_every_row_once() {
        let events: Vec<WireEvent> = (0..250)
            .map(|i| ev(i * QUARTER_MS, &format!("s{i}"), "m", Some(1)))
            .collect();
        let r = aggregate(&events);
        assert_eq!(r.rows(), 500);
        let parts = r.clone().split(120);
        assert_eq!(parts.len(), 5);
        assert!(parts.iter().all(|p| p.rows() <= 120));
        assert_eq!(parts.iter().map(|p| p.rows()).sum::<usize>(), 500);
        assert_eq!(parts.iter().map(|p| p.events).sum::<u64>(), 250);
        let cost: Usd = parts
            .iter()
            .flat_map(|p| p.quarters.iter())
            .map(|(_, t)| t.cost)
            .sum();
        assert_eq!(cost, Usd::from_pico(250));
    }
}
