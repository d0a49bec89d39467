//! Privacy modes as an allowlist.
//!
//! Outbound events are *constructed* from the fields a mode permits; no code
//! path starts from a full record and deletes what is forbidden, because a
//! field added to the record later would then leak by default.

use crate::event::{
    AgentKind, Categorization, PrivacyMode, WireEvent, MAX_BRANCH_NAME_BYTES, MAX_TEXT_BYTES,
};
use crate::hash::{branch_hash, project_hash, session_hash};
use crate::usage::TokenUsage;

/// Optional fields of a `WireEvent`; the always-present numeric core is
/// permitted in every mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Category,
    Prompt,
    Response,
    Tools,
    BranchName,
}

impl Field {
    pub fn name(self) -> &'static str {
        match self {
            Field::Category => "category",
            Field::Prompt => "prompt",
            Field::Response => "response",
            Field::Tools => "tools",
            Field::BranchName => "branch_name",
        }
    }
}

pub fn permits(mode: PrivacyMode, field: Field) -> bool {
    use Field::*;
    use PrivacyMode::*;
    matches!(
        (mode, field),
        (CategorizeLocal, Category)
            | (CategorizeCloud, Category)
            | (CategorizeCloud, Prompt)
            | (Full, Prompt)
            | (Full, Response)
            | (Full, Tools)
            // The readable branch goes where prompt text already goes.
            | (CategorizeCloud, BranchName)
            | (Full, BranchName)
    )
}

/// Plain statement of what leaves a developer machine, shown in the dashboard and `tally status`.
pub fn describe(mode: PrivacyMode) -> &'static str {
    match mode {
        PrivacyMode::Off => "Only numbers leave machines: event id, time, agent, model, token counts, cost, and keyed hashes of the project directory, git branch and session id. No paths, no branch names, no tool names, no text.",
        PrivacyMode::CategorizeLocal => "Numbers as in Off, plus a category, a short task hint and a project hint per prompt, produced on the developer's machine by a local Ollama model. Prompt text never leaves the machine.",
        PrivacyMode::CategorizeCloud => "Numbers as in Off, plus the git branch name and each prompt's text after secrets and personal data are redacted on the machine. The server has Claude Haiku categorize it inside the request and discards the text; only the category and hints are stored.",
        PrivacyMode::Full => "Numbers as in Off, plus the redacted git branch name, prompt and response text and tool names. Text is stored encrypted in R2 and deleted with the retention policy.",
    }
}

fn present(event: &WireEvent, field: Field) -> bool {
    match field {
        Field::Category => event.category.is_some(),
        Field::Prompt => event.prompt.is_some(),
        Field::Response => event.response.is_some(),
        Field::Tools => event.tools.is_some(),
        Field::BranchName => event.branch_name.is_some(),
    }
}

const FIELDS: [Field; 5] = [
    Field::Category,
    Field::Prompt,
    Field::Response,
    Field::Tools,
    Field::BranchName,
];

/// Ok when the event carries nothing its own stamp forbids; Err names the field.
pub fn check_stamp(event: &WireEvent) -> Result<(), &'static str> {
    match FIELDS
        .into_iter()
        .find(|f| present(event, *f) && !permits(event.mode, *f))
    {
        Some(f) => Err(f.name()),
        None => Ok(()),
    }
}

/// Rebuilds an event so it carries only what both its stamp and `current`
/// permit. Used by the edge when an admin tightened the mode after the agent
/// built the event: the numbers stay, everything else is re-admitted field by field.
pub fn restrict(event: &WireEvent, current: PrivacyMode) -> WireEvent {
    let keep = |f: Field| permits(event.mode, f) && permits(current, f);
    let looser = FIELDS
        .into_iter()
        .any(|f| permits(event.mode, f) && !permits(current, f));
    WireEvent {
        id: event.id.clone(),
        ts: event.ts,
        agent: event.agent,
        model: event.model.clone(),
        tokens: event.tokens,
        fast: event.fast,
        cost_pico_usd: event.cost_pico_usd,
        project: event.project.clone(),
        branch: event.branch.clone(),
        session: event.session.clone(),
        mode: if looser { current } else { event.mode },
        branch_name: if keep(Field::BranchName) {
            event.branch_name.clone()
        } else {
            None
        },
        category: if keep(Field::Category) {
            event.category.clone()
        } else {
            None
        },
        prompt: if keep(Field::Prompt) {
            event.prompt.clone()
        } else {
            None
        },
        response: if keep(Field::Response) {
            event.response.clone()
        } else {
            None
        },
        tools: if keep(Field::Tools) {
            event.tools.clone()
        } else {
            None
        },
    }
}

/// Everything the agent knows about one request. It never leaves the machine
/// as such; `outbound` builds what may.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalRecord {
    pub id: String,
    pub ts: i64,
    pub agent: AgentKind,
    pub model: String,
    pub tokens: TokenUsage,
    pub fast: bool,
    pub cost_pico_usd: Option<u64>,
    pub cwd: String,
    /// The git branch as the agent's log names it ("" for none).
    pub branch: String,
    pub session_id: String,
    pub prompt: Option<String>,
    pub response: Option<String>,
    pub tools: Vec<String>,
    pub category: Option<Categorization>,
}

/// Cuts at a char boundary so a multi-byte character is never split.
pub fn truncate_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The branch a log line names, if it is one: Claude Code writes `HEAD`
/// for a detached HEAD (a commit, not a branch), which like an empty name
/// counts as no branch rather than one shared bucket of every detached
/// checkout.
pub fn branch_of(raw: &str) -> Option<&str> {
    let b = raw.trim();
    (!b.is_empty() && b != "HEAD").then_some(b)
}

/// The one constructor of outbound events. `redact` is applied to every piece
/// of text before it is admitted.
pub fn outbound(
    rec: &LocalRecord,
    mode: PrivacyMode,
    team_salt: &str,
    redact: &dyn Fn(&str) -> String,
) -> WireEvent {
    let text = |t: &Option<String>| {
        t.as_deref()
            .map(|s| truncate_utf8(&redact(s), MAX_TEXT_BYTES).to_string())
    };
    WireEvent {
        id: rec.id.clone(),
        ts: rec.ts,
        agent: rec.agent,
        model: rec.model.clone(),
        tokens: rec.tokens,
        fast: rec.fast,
        cost_pico_usd: rec.cost_pico_usd,
        project: project_hash(team_salt, &rec.cwd),
        branch: branch_of(&rec.branch)
            .map(|b| branch_hash(team_salt, b))
            .unwrap_or_default(),
        session: session_hash(team_salt, &rec.session_id),
        mode,
        branch_name: match branch_of(&rec.branch) {
            Some(b) if permits(mode, Field::BranchName) => {
                let name = redact(b);
                let name = truncate_utf8(name.trim(), MAX_BRANCH_NAME_BYTES);
                // Control characters would be rejected by the edge (and
                // are no part of a real ref name).
                let name: String = name.chars().filter(|c| !c.is_control()).collect();
                (!name.is_empty()).then_some(name)
            }
            _ => None,
        },
        category: if permits(mode, Field::Category) && mode == PrivacyMode::CategorizeLocal {
            rec.category.clone()
        } else {
            None
        },
        prompt: if permits(mode, Field::Prompt) {
            text(&rec.prompt)
        } else {
            None
        },
        response: if permits(mode, Field::Response) {
            text(&rec.response)
        } else {
            None
        },
        tools: if permits(mode, Field::Tools) && !rec.tools.is_empty() {
            Some(
                rec.tools
                    .iter()
                    .take(crate::event::MAX_TOOLS)
                    .cloned()
                    .collect(),
            )
        } else {
            None
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Category;

    fn record() -> LocalRecord {
        LocalRecord {
            id: "0123456789abcdef0123456789abcdef".into(),
            ts: 1_763_800_000_000,
            agent: AgentKind::ClaudeCode,
            model: "claude-sonnet-4-5".into(),
            tokens: TokenUsage {
                input: 1,
                output: 2,
                cache_write_5m: 3,
                cache_write_1h: 4,
                cache_read: 5,
            },
            fast: false,
            cost_pico_usd: Some(99),
            cwd: "/home/alice/secret-project".into(),
            branch: "ops/PAY-12-rotate".into(),
            session_id: "sess-1".into(),
            prompt: Some("deploy with key AKIAIOSFODNN7EXAMPLE".into()),
            response: Some("done".into()),
            tools: vec!["Bash".into(), "Edit".into()],
            category: Some(Categorization {
                category: Category::Devops,
                task_hint: "deploy".into(),
                project_hint: "infra".into(),
                confidence: 80,
            }),
        }
    }

    fn keys(e: &WireEvent) -> Vec<String> {
        let v = serde_json::to_value(e).unwrap();
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    }

    const BASE: [&str; 10] = [
        "agent",
        "branch",
        "cost_pico_usd",
        "id",
        "mode",
        "model",
        "project",
        "session",
        "tokens",
        "ts",
    ];

    #[test]
    fn each_mode_sends_exactly_its_fields() {
        let red = |s: &str| s.replace("AKIAIOSFODNN7EXAMPLE", "[REDACTED:aws_access_key]");
        let with = |extra: &[&str]| {
            let mut v: Vec<String> = BASE.iter().chain(extra).map(|s| s.to_string()).collect();
            v.sort();
            v
        };
        let off = outbound(&record(), PrivacyMode::Off, "salt", &red);
        assert_eq!(keys(&off), with(&[]));
        let local = outbound(&record(), PrivacyMode::CategorizeLocal, "salt", &red);
        assert_eq!(keys(&local), with(&["category"]));
        let cloud = outbound(&record(), PrivacyMode::CategorizeCloud, "salt", &red);
        assert_eq!(keys(&cloud), with(&["branch_name", "prompt"]));
        assert_eq!(
            cloud.prompt.as_deref(),
            Some("deploy with key [REDACTED:aws_access_key]")
        );
        let full = outbound(&record(), PrivacyMode::Full, "salt", &red);
        assert_eq!(
            keys(&full),
            with(&["branch_name", "prompt", "response", "tools"])
        );
        for e in [&off, &local, &cloud, &full] {
            assert!(check_stamp(e).is_ok());
            let json = serde_json::to_string(e).unwrap();
            assert!(!json.contains("alice"), "path leaked: {json}");
            assert!(!json.contains("sess-1"), "session id leaked: {json}");
            assert!(!json.contains("AKIA"), "secret leaked: {json}");
            assert_eq!(e.branch, branch_hash("salt", "ops/PAY-12-rotate"));
        }
        for e in [&off, &local] {
            let json = serde_json::to_string(e).unwrap();
            assert!(!json.contains("PAY-12"), "branch name leaked: {json}");
        }
        for e in [&cloud, &full] {
            assert_eq!(e.branch_name.as_deref(), Some("ops/PAY-12-rotate"));
        }
        assert_eq!(
            off.project,
            project_hash("salt", "/home/alice/secret-project")
        );
    }

    #[test]
    fn restrict_keeps_numbers_and_drops_the_rest() {
        let id = |s: &str| s.to_string();
        let full = outbound(&record(), PrivacyMode::Full, "salt", &id);
        let off = restrict(&full, PrivacyMode::Off);
        assert_eq!(off.mode, PrivacyMode::Off);
        assert_eq!(
            (off.prompt.clone(), off.response.clone(), off.tools.clone()),
            (None, None, None)
        );
        assert_eq!(off.tokens, full.tokens);
        assert_eq!(off.cost_pico_usd, Some(99));
        let cloud = restrict(&full, PrivacyMode::CategorizeCloud);
        assert_eq!(cloud.mode, PrivacyMode::CategorizeCloud);
        assert!(cloud.prompt.is_some() && cloud.response.is_none() && cloud.tools.is_none());
        // An event stricter than the team's mode is left exactly as it was.
        let plain = outbound(&record(), PrivacyMode::Off, "salt", &id);
        assert_eq!(restrict(&plain, PrivacyMode::Full), plain);
    }

    #[test]
    fn the_branch_hash_is_keyed_by_the_team_salt() {
        let id = |s: &str| s.to_string();
        let a = outbound(&record(), PrivacyMode::Off, "salt-a", &id);
        let b = outbound(&record(), PrivacyMode::Off, "salt-b", &id);
        assert_eq!(a.branch, branch_hash("salt-a", "ops/PAY-12-rotate"));
        assert_eq!(a.branch.len(), 64);
        assert_ne!(a.branch, b.branch);
        // Same branch, other project: the same hash (the edge keys by both).
        let mut other = record();
        other.cwd = "/home/bob/other".into();
        assert_eq!(
            outbound(&other, PrivacyMode::Off, "salt-a", &id).branch,
            a.branch
        );
        assert_ne!(a.branch, branch_hash("salt-a", "main"));
        assert_ne!(a.branch, project_hash("salt-a", "ops/PAY-12-rotate"));
    }

    #[test]
    fn no_branch_and_a_detached_head_send_nothing() {
        let id = |s: &str| s.to_string();
        for raw in ["", "  ", "HEAD"] {
            let mut r = record();
            r.branch = raw.into();
            for mode in PrivacyMode::ALL {
                let e = outbound(&r, mode, "salt", &id);
                assert_eq!(
                    (e.branch.as_str(), e.branch_name.clone()),
                    ("", None),
                    "{raw:?} {mode:?}"
                );
                let json = serde_json::to_value(&e).unwrap();
                assert!(json.get("branch").is_none() && json.get("branch_name").is_none());
            }
        }
    }

    #[test]
    fn the_readable_branch_goes_through_the_real_redactor() {
        let mut r = record();
        r.branch =
            "fix/sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789AbCdEfGhIjKlMnOp-login".into();
        let red = |s: &str| crate::redact::redact(s);
        // A ticket branch with an email in it keeps its readable part.
        let mut mail = record();
        mail.branch = "PAY-12/jane.doe@example.com".into();
        let m = outbound(&mail, PrivacyMode::CategorizeCloud, "salt", &red);
        assert_eq!(m.branch_name.as_deref(), Some("PAY-12/[REDACTED:email]"));
        let full = outbound(&r, PrivacyMode::Full, "salt", &red);
        let name = full.branch_name.clone().unwrap();
        // The ref is one high-entropy word, so all of it goes.
        assert_eq!(name, "[REDACTED:high_entropy]");
        // The hash is of the real name, so every developer's copy of the
        // branch lands on one row whatever the redaction made of the name.
        assert_eq!(full.branch, branch_hash("salt", &r.branch));
        let off = outbound(&r, PrivacyMode::Off, "salt", &red);
        assert_eq!(off.branch_name, None);
        // A name longer than the wire allows is cut at a char boundary.
        r.branch = format!("feature/{}", "é".repeat(300));
        let long = outbound(&r, PrivacyMode::Full, "salt", &red);
        let n = long.branch_name.unwrap();
        assert!(
            n.len() <= MAX_BRANCH_NAME_BYTES && n.len() >= MAX_BRANCH_NAME_BYTES - 1,
            "{}",
            n.len()
        );
        // Tightening the mode at the edge drops the name but keeps the hash.
        let cut = restrict(&full, PrivacyMode::CategorizeLocal);
        assert_eq!(
            (cut.branch.as_str(), cut.branch_name),
            (full.branch.as_str(), None)
        );
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate_utf8("héllo", 2), "h");
        assert_eq!(truncate_utf8("héllo", 3), "hé");
        assert_eq!(truncate_utf8("abc", 10), "abc");
    }
}
