//! Tenant isolation by construction: every SQL statement of the Worker lives
//! in `workers/src/db/`; in `team/` (`TeamDb`) each statement that touches a
//! tenant table must bind the principal's team as `?1`; `service.rs`
//! (`ServiceDb`) may hold only the cross-team statements listed here; no other
//! file of the Worker prepares SQL or touches the D1 binding.

use std::path::Path;

const TENANT_TABLES: &[&str] = &[
    "members",
    "developers",
    "install_tokens",
    "agent_tokens",
    "signin_links",
    "web_sessions",
    "batches",
    "usage_q",
    "usage_d",
    "sessions",
    "categories",
    "audit_log",
    "project_labels",
    "branch_labels",
    "branch_names",
    "content_objects",
    "lifecycle_jobs",
    "integrations",
    "deliveries",
    "alerts",
    "budgets",
    "seat_plans",
    "developer_links",
    "developer_sessions",
];

const SERVICE_ALLOWED: &[&str] = &[
    "SELECT team_id, id AS agent_id, developer_id, revoked_at FROM agent_tokens WHERE token_hash = ?1",
    "UPDATE install_tokens SET used_at = ?2 WHERE token_hash = ?1 AND used_at IS NULL AND expires_at > ?2 RETURNING team_id, developer_id",
    "UPDATE signin_links SET used_at = ?2 WHERE token_hash = ?1 AND used_at IS NULL AND expires_at > ?2 RETURNING team_id, member_id",
    "SELECT s.team_id, s.id_hash, s.member_id, m.email, m.role, s.csrf_token, s.last_seen_at, t.delete_after AS team_delete_after, t.name AS team_name FROM web_sessions s JOIN members m ON m.team_id = s.team_id AND m.id = s.member_id JOIN teams t ON t.id = s.team_id WHERE s.id_hash = ?1 AND s.expires_at > ?2 AND s.last_seen_at > ?3",
    "UPDATE developer_links SET used_at = ?2 WHERE token_hash = ?1 AND used_at IS NULL AND expires_at > ?2 RETURNING team_id, developer_id, agent_id",
    "SELECT s.team_id, s.id_hash, s.developer_id, d.name AS developer_name, s.last_seen_at FROM developer_sessions s JOIN agent_tokens a ON a.team_id = s.team_id AND a.id = s.agent_id AND a.developer_id = s.developer_id JOIN developers d ON d.team_id = s.team_id AND d.id = s.developer_id JOIN teams t ON t.id = s.team_id WHERE s.id_hash = ?1 AND s.expires_at > ?2 AND s.last_seen_at > ?3 AND a.revoked_at IS NULL AND d.erased_at IS NULL AND t.deleted_at IS NULL",
    "SELECT team_id, id AS member_id FROM members WHERE email = ?1",
    "SELECT COUNT(*) AS n FROM teams",
    "INSERT INTO teams (id, name, salt, created_at) VALUES (?1, ?2, ?3, ?4)",
    "SELECT id, retention_days, deleted_at, delete_after FROM teams ORDER BY id",
    "SELECT id, team_id, kind, subject, run_day, cutoff_day, cursor, objects, bytes, rows, attempts FROM lifecycle_jobs WHERE state = 'pending' ORDER BY id LIMIT ?1",
    "UPDATE lifecycle_jobs SET state = ?2, cursor = ?3, objects = ?4, bytes = ?5, rows = ?6, attempts = ?7, error = ?8, updated_at = ?9 WHERE id = ?1",
    "DELETE FROM batches WHERE received_at < ?1",
    "DELETE FROM web_sessions WHERE expires_at < ?1",
    "DELETE FROM signin_links WHERE expires_at < ?1",
    "DELETE FROM developer_sessions WHERE expires_at < ?1",
    "DELETE FROM developer_links WHERE expires_at < ?1",
    "DELETE FROM audit_log WHERE at < ?1",
    "INSERT INTO cron_runs (cron, ran_at, details) VALUES (?1, ?2, ?3)",
];

/// String literals of a Rust source, joined across `\`-continued lines.
fn literals(src: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let b = src.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        if b[i] == b'"' && (i == 0 || b[i - 1] != b'\'') {
            let start = i;
            i += 1;
            let mut s = String::new();
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' && i + 1 < b.len() {
                    if b[i + 1] == b'\n' {
                        i += 2;
                        while i < b.len() && (b[i] == b' ' || b[i] == b'\n') {
                            i += 1;
                        }
                        continue;
                    }
                    s.push(b[i + 1] as char);
                    i += 2;
                    continue;
                }
                s.push(b[i] as char);
                i += 1;
            }
            out.push((start, s));
        }
        i += 1;
    }
    out
}

fn is_sql(s: &str) -> bool {
    let u = s.trim_start().to_ascii_uppercase();
    ["SELECT ", "INSERT ", "UPDATE ", "DELETE ", "WITH "]
        .iter()
        .any(|k| u.starts_with(k))
}

fn touches_tenant(sql: &str) -> bool {
    let words: Vec<String> = sql
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .map(|w| w.to_ascii_lowercase())
        .collect();
    TENANT_TABLES.iter().any(|t| words.iter().any(|w| w == t)) || words.iter().any(|w| w == "teams")
}

fn team_bound(sql: &str) -> bool {
    let s = sql.replace('\n', " ");
    if s.trim_start().to_ascii_uppercase().starts_with("INSERT") {
        // Inserts name team_id first and bind it as ?1, from VALUES or from a
        // guarded SELECT.
        return s.contains("(team_id,") && (s.contains("VALUES (?1,") || s.contains(" SELECT ?1,"));
    }
    s.contains("team_id = ?1")
        || s.contains("FROM teams WHERE id = ?1")
        || s.contains("UPDATE teams SET") && s.contains("WHERE id = ?1")
}

fn worker_src() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../workers/src")
}

fn sql_of(file: &str) -> Vec<String> {
    let src = std::fs::read_to_string(worker_src().join(file)).unwrap();
    literals(&src)
        .into_iter()
        .map(|(_, s)| s)
        .filter(|s| is_sql(s))
        .collect()
}

/// Every `.rs` file under `dir`, recursively: a module added in a new folder
/// is checked like the rest.
fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_tenant_statement_binds_the_team() {
    let tenant: Vec<String> = [
        "db/team/mod.rs",
        "db/team/usage.rs",
        "db/team/lifecycle.rs",
        "db/team/reports.rs",
        "db/team/budgets.rs",
        "db/team/developer.rs",
        "db/team/merged.rs",
        "db/team/otlp.rs",
        "db/team/drill.rs",
        "db/team/invites.rs",
        "db/team/cursor.rs",
    ]
    .iter()
    .flat_map(|f| sql_of(f))
    .collect();
    let mut files = Vec::new();
    rust_files(&worker_src().join("db/team"), &mut files);
    assert_eq!(
        files.len(),
        11,
        "a new file under db/team/ must be added here"
    );
    for sql in &tenant {
        assert!(
            !touches_tenant(sql) || team_bound(sql),
            "TeamDb statement without team predicate: {sql}"
        );
        // A delete or update that forgot its predicate would hit every team.
        let u = sql.to_ascii_uppercase();
        if u.starts_with("UPDATE") || u.starts_with("DELETE") {
            assert!(u.contains(" WHERE "), "unbounded statement: {sql}");
        }
    }
    assert!(
        tenant.len() >= 10,
        "found only {} tenant statements: is the parser broken?",
        tenant.len()
    );
    let service = sql_of("db/service.rs");
    for sql in &service {
        assert!(
            SERVICE_ALLOWED.contains(&sql.as_str()),
            "ServiceDb statement not on the reviewed list: {sql}"
        );
    }
    assert_eq!(
        service.len(),
        SERVICE_ALLOWED.len(),
        "every reviewed service statement is used"
    );
}

#[test]
fn no_other_file_touches_d1() {
    let root = worker_src();
    let door = [
        root.join("db/team/mod.rs"),
        root.join("db/team/usage.rs"),
        root.join("db/team/lifecycle.rs"),
        root.join("db/team/reports.rs"),
        root.join("db/team/budgets.rs"),
        root.join("db/team/developer.rs"),
        root.join("db/team/merged.rs"),
        root.join("db/team/otlp.rs"),
        root.join("db/team/drill.rs"),
        root.join("db/team/invites.rs"),
        root.join("db/team/cursor.rs"),
        root.join("db/service.rs"),
    ];
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let mut checked = 0;
    for path in files.iter().filter(|p| !door.contains(p)) {
        let src = std::fs::read_to_string(path).unwrap();
        checked += 1;
        // db/mod.rs owns the binding and the prepare helper the two files share.
        if path != &root.join("db/mod.rs") {
            for needle in [".d1(", ".prepare(", "D1Database", ".batch("] {
                assert!(
                    !src.contains(needle),
                    "{} uses {needle}: D1 goes through workers/src/db/ only",
                    path.display()
                );
            }
        }
        for (_, lit) in literals(&src) {
            assert!(!is_sql(&lit), "{} contains SQL: {lit}", path.display());
        }
    }
    assert!(checked >= 8, "only {checked} files checked");
}

#[test]
fn the_lint_catches_a_missing_predicate() {
    assert!(!team_bound("SELECT * FROM usage_q WHERE quarter > ?2"));
    assert!(team_bound(
        "SELECT * FROM usage_q WHERE team_id = ?1 AND quarter > ?2"
    ));
    assert!(!team_bound(
        "INSERT INTO sessions (session, team_id) VALUES (?2, ?1)"
    ));
    assert!(team_bound(
        "INSERT INTO sessions (team_id, session) SELECT ?1, ?2 WHERE NOT EXISTS (SELECT 1)"
    ));
    assert!(!team_bound(
        "INSERT INTO sessions (team_id, session) SELECT ?2, ?1 WHERE true"
    ));
    assert!(touches_tenant("DELETE FROM sessions WHERE x = 1"));
    assert!(!touches_tenant("SELECT 1"));
    let lits = literals("let a = \"SELECT 1 \\\n   FROM x\"; // \"not this\"\n");
    assert_eq!(lits, vec![(8, "SELECT 1 FROM x".to_string())]);
}

/// Hard deletion of a team must reach every table that holds team rows: a
/// table added later without a line in `HARD_DELETE` fails here.
#[test]
fn hard_delete_covers_every_team_table() {
    let team_rs = std::fs::read_to_string(worker_src().join("db/team/lifecycle.rs")).unwrap();
    let list = &team_rs[team_rs.find("pub const HARD_DELETE").expect("HARD_DELETE")..];
    let list = &list[..list.find("];").unwrap()];
    let mut checked = 0;
    for (name, _) in tally_e2e::team_tables() {
        // The operator's record of deleted teams is what deliberately remains.
        if name == "team_tombstones" {
            continue;
        }
        checked += 1;
        assert!(
            list.contains(&format!("DELETE FROM {name} WHERE")),
            "hard deletion forgets table {name}"
        );
    }
    assert!(checked >= 15, "only {checked} team tables found");
}
