//! Which path counts a developer's usage of the agents that export
//! OpenTelemetry themselves (Claude Code and Codex, [`COVERED`]): the Tally
//! agent reading their logs, or their own OTLP export sent to the Worker.
//! Exactly one path counts any given moment, so nothing is counted twice and,
//! as long as each path covers its own period, nothing is lost.
//!
//! Only the latest switch is recorded: requests at or after `since_ms` belong
//! to `path`, earlier ones to the other path. Both the edge (which drops what
//! the wrong path sends) and the agent (which skips what OTLP covers) apply
//! the same rule, so a request queued in an offline laptop before a switch is
//! still counted when it arrives after it.

use serde::{Deserialize, Serialize};

use crate::event::AgentKind;

/// The agent kinds whose usage can arrive on either path. Every other kind
/// only ever comes from the Tally agent.
pub const COVERED: [AgentKind; 2] = [AgentKind::ClaudeCode, AgentKind::Codex];

pub fn covers(kind: AgentKind) -> bool {
    COVERED.contains(&kind)
}

crate::named_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum Path {
        Agent => "agent",
        Otlp => "otlp",
    }
}

impl Path {
    pub fn other(self) -> Path {
        match self {
            Path::Agent => Path::Otlp,
            Path::Otlp => Path::Agent,
        }
    }
}

/// A developer's choice, as `/v1/agent/config` serves it (`source_path`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourcePath {
    pub path: Path,
    /// When `path` took over; `None` when it never changed (then it covers all time).
    pub since_ms: Option<i64>,
    /// The switches before `since_ms`, oldest first (at most [`MAX_EARLIER`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub earlier: Vec<i64>,
}

/// Switches remembered besides the latest; older ones are forgotten (a
/// request older than all of them then counts as the oldest kept period's).
pub const MAX_EARLIER: usize = 32;

impl Default for SourcePath {
    fn default() -> Self {
        SourcePath {
            path: Path::Agent,
            since_ms: None,
            earlier: Vec::new(),
        }
    }
}

impl SourcePath {
    /// The path that counts a covered request made at `ts`.
    pub fn path_at(&self, ts: i64) -> Path {
        let after = self
            .earlier
            .iter()
            .chain(self.since_ms.iter())
            .filter(|&&b| b > ts)
            .count();
        if after % 2 == 0 {
            self.path
        } else {
            self.path.other()
        }
    }

    /// The setting after an admin chooses `to` at `now`; choosing the current
    /// path changes nothing (its boundary stays where it was).
    pub fn switched(&self, to: Path, now_ms: i64) -> SourcePath {
        if to == self.path {
            return self.clone();
        }
        let mut earlier = self.earlier.clone();
        earlier.extend(self.since_ms);
        if earlier.len() > MAX_EARLIER {
            // Dropping two keeps the parity of every remaining period.
            earlier.drain(..2);
        }
        SourcePath {
            path: to,
            since_ms: Some(now_ms),
            earlier,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_switch_splits_time_at_its_instant() {
        let never = SourcePath::default();
        assert_eq!(never.path_at(0), Path::Agent);
        assert_eq!(never.path_at(i64::MAX), Path::Agent);
        let otlp = never.switched(Path::Otlp, 1_000);
        assert_eq!(otlp.since_ms, Some(1_000));
        assert_eq!(otlp.path_at(999), Path::Agent);
        assert_eq!(otlp.path_at(1_000), Path::Otlp);
        let back = otlp.switched(Path::Agent, 5_000);
        assert_eq!(back.path_at(4_999), Path::Otlp);
        assert_eq!(back.path_at(5_000), Path::Agent);
        // Re-choosing the current path keeps the boundary.
        assert_eq!(back.switched(Path::Agent, 9_000), back);
        // Earlier periods keep their path after later switches.
        assert_eq!(back.path_at(999), Path::Agent);
        let again = back.switched(Path::Otlp, 7_000);
        assert_eq!(again.earlier, vec![1_000, 5_000]);
        for (ts, want) in [
            (0, Path::Agent),
            (1_000, Path::Otlp),
            (4_999, Path::Otlp),
            (5_000, Path::Agent),
            (6_999, Path::Agent),
            (7_000, Path::Otlp),
        ] {
            assert_eq!(again.path_at(ts), want, "{ts}");
        }
    }

    #[test]
    fn the_remembered_switches_are_bounded_and_keep_their_parity() {
        let mut s = SourcePath::default();
        for k in 1..=100i64 {
            s = s.switched(s.path.other(), k * 10);
        }
        assert!(s.earlier.len() <= MAX_EARLIER);
        assert_eq!(s.since_ms, Some(1_000));
        // After 100 switches the path is the starting one.
        assert_eq!(s.path, Path::Agent);
        for k in (100 - MAX_EARLIER as i64)..100 {
            let want = if k % 2 == 0 { Path::Agent } else { Path::Otlp };
            assert_eq!(s.path_at(k * 10 + 5), want, "{k}");
        }
    }

    #[test]
    fn every_instant_belongs_to_exactly_one_path() {
        let s = SourcePath::default().switched(Path::Otlp, 10);
        for ts in [-5, 0, 9, 10, 11, 1 << 40] {
            let p = s.path_at(ts);
            assert_ne!(p, p.other());
            assert_eq!(p == Path::Otlp, ts >= 10, "{ts}");
        }
    }
}
