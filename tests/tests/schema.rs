//! `schema.sql` is the full current schema; it must be exactly what the
//! numbered migrations produce, so reviewers can read one file.

use std::path::Path;

use rusqlite::Connection;

fn dump(conn: &Connection) -> String {
    let mut stmt = conn
        .prepare("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' ORDER BY CASE type WHEN 'table' THEN 0 WHEN 'index' THEN 1 WHEN 'trigger' THEN 2 ELSE 3 END, name")
        .unwrap();
    let rows: Vec<String> = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    let mut out = String::from("-- Generated from migrations/ by tests/tests/schema.rs (TALLY_BLESS=1 cargo test -p tally-e2e --test schema).\n-- Do not edit by hand: add a migration instead.\n\n");
    for r in rows {
        out.push_str(&r);
        out.push_str(";\n\n");
    }
    out
}

fn migrated() -> Connection {
    migrated_before("9999")
}

/// The database as migrations numbered below `stop` leave it.
fn migrated_before(stop: &str) -> Connection {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    let conn = Connection::open_in_memory().unwrap();
    for f in files {
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        if name[..4] >= *stop {
            break;
        }
        assert!(
            name[..4].chars().all(|c| c.is_ascii_digit()),
            "migration {name} must start with a 4-digit number"
        );
        conn.execute_batch(&std::fs::read_to_string(&f).unwrap())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    conn
}

#[test]
fn schema_sql_equals_migrations() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schema.sql");
    let from_migrations = dump(&migrated());
    if std::env::var_os("TALLY_BLESS").is_some() {
        std::fs::write(&path, &from_migrations).unwrap();
    }
    let committed = std::fs::read_to_string(&path).expect("schema.sql exists");
    assert_eq!(
        committed, from_migrations,
        "schema.sql differs from migrations/: regenerate with TALLY_BLESS=1"
    );
    // And the file itself is loadable and yields the same schema.
    let fresh = Connection::open_in_memory().unwrap();
    fresh.execute_batch(&committed).unwrap();
    assert_eq!(dump(&fresh), from_migrations);
}

fn apply(conn: &Connection, migration: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations");
    let f = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(migration)
        })
        .unwrap();
    conn.execute_batch(&std::fs::read_to_string(f).unwrap())
        .unwrap();
}

/// (team, hour or quarter, developer, project, model, agent, the nine counters).
type Hourly<'a> = (&'a str, i64, &'a str, &'a str, &'a str, &'a str, [i64; 9]);
/// A `usage_q` row as read back, branch included.
type QuarterRow = (
    String,
    i64,
    String,
    String,
    String,
    String,
    String,
    Vec<i64>,
);

/// Migration 0012 moves every hourly row to the first quarter of its hour
/// with every counter and both money columns unchanged, and drops the old
/// table.
#[test]
fn quarter_buckets_keep_every_hourly_row_exactly() {
    let conn = migrated_before("0012");
    let rows: [Hourly; 3] = [
        (
            "t1",
            493_000,
            "d1",
            "p1",
            "claude-opus-4-5",
            "claude-code",
            [3, 1, 120, 4_500, 100, 200, 9_000_000, 123_456_789, 999_999],
        ),
        (
            "t1",
            493_001,
            "d1",
            "p1",
            "claude-opus-4-5",
            "claude-code",
            [1, 0, 7, 8, 9, 10, 11, 9_007_199_254, 1],
        ),
        (
            "t2",
            493_000,
            "d9",
            "",
            "gpt-5",
            "codex",
            [2, 2, 1, 2, 3, 4, 5, 0, 0],
        ),
    ];
    for (team, hour, dev, project, model, agent, n) in &rows {
        conn.execute(
            "INSERT INTO usage_hourly (team_id, hour, developer_id, project, model, agent, requests, unpriced_requests, input_tokens, output_tokens, cache_write_5m_tokens, cache_write_1h_tokens, cache_read_tokens, cost_micro_usd, cost_pico_usd) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
            rusqlite::params![team, hour, dev, project, model, agent, n[0], n[1], n[2], n[3], n[4], n[5], n[6], n[7], n[8]],
        )
        .unwrap();
    }
    conn.execute(
        "INSERT INTO sessions (team_id, session, developer_id, project, agent, start_ms, end_ms, requests, cost_micro_usd, cost_pico_usd, modes) VALUES ('t1', 's1', 'd1', 'p1', 'claude-code', 10, 20, 4, 9007199254, 999999, 5)",
        [],
    )
    .unwrap();
    apply(&conn, "0012");
    let session: Vec<i64> = conn
        .query_row("SELECT start_ms, end_ms, requests, cost_micro_usd, cost_pico_usd, modes FROM sessions WHERE team_id = 't1' AND session = 's1'", [], |r| {
            (0..6).map(|i| r.get(i)).collect()
        })
        .unwrap();
    assert_eq!(session, [10, 20, 4, 9_007_199_254, 999_999, 5]);
    let mut stmt = conn
        .prepare("SELECT team_id, quarter, developer_id, project, branch, model, agent, requests, unpriced_requests, input_tokens, output_tokens, cache_write_5m_tokens, cache_write_1h_tokens, cache_read_tokens, cost_micro_usd, cost_pico_usd FROM usage_q ORDER BY team_id, quarter")
        .unwrap();
    let got: Vec<QuarterRow> = stmt
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                (7..16).map(|i| r.get(i)).collect::<Result<Vec<i64>, _>>()?,
            ))
        })
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    let want: Vec<_> = rows
        .iter()
        .map(|(team, hour, dev, project, model, agent, n)| {
            (
                team.to_string(),
                hour * 4,
                dev.to_string(),
                project.to_string(),
                String::new(),
                model.to_string(),
                agent.to_string(),
                n.to_vec(),
            )
        })
        .collect();
    assert_eq!(got, want);
    let old: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE name = 'usage_hourly'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(old, 0);
    // Both tables every batch upserts are their primary key (no rowid and no
    // second index to write).
    for table in ["usage_q", "sessions"] {
        let sql: String = conn
            .query_row(
                "SELECT sql FROM sqlite_master WHERE name = ?1",
                [table],
                |r| r.get(0),
            )
            .unwrap();
        assert!(sql.ends_with("WITHOUT ROWID"), "{sql}");
        let indexes: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = ?1",
                [table],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(indexes, 0, "{table}");
    }
}

/// Migration 0019 fills the two rollups for the days already compacted (at
/// or below each team's watermark) and for nothing after them: `usage_m`
/// from the quarters by model, `usage_dp` from `usage_d` by developer and
/// project, every counter and the exact money carried (pico remainders
/// into micro-dollars).
#[test]
fn rollups_are_filled_for_compacted_days_only() {
    let conn = migrated_before("0019");
    conn.execute_batch(
        "INSERT INTO teams (id, name, salt, created_at, compacted_through_day) VALUES ('t1', 'A', 's', 0, 10), ('t2', 'B', 's', 0, NULL);
         INSERT INTO usage_q (team_id, quarter, developer_id, project, model, agent, requests, input_tokens, cost_micro_usd, cost_pico_usd) VALUES
           ('t1', 960, 'd1', 'p1', 'sonnet', 'cc', 1, 10, 5, 600000),
           ('t1', 960, 'd2', 'p1', 'sonnet', 'cc', 2, 20, 7, 700000),
           ('t1', 961, 'd1', 'p2', 'opus', 'cc', 3, 30, 11, 0),
           ('t1', 1055, 'd1', 'p1', 'sonnet', 'codex', 4, 40, 13, 0),
           ('t1', 1056, 'd1', 'p1', 'sonnet', 'cc', 5, 50, 17, 0),
           ('t2', 960, 'd1', 'p1', 'sonnet', 'cc', 6, 60, 19, 0);
         INSERT INTO usage_d (team_id, day, developer_id, project, model, agent, requests, input_tokens, cost_micro_usd, cost_pico_usd, last_quarter) VALUES
           ('t1', 10, 'd1', 'p1', 'sonnet', 'cc', 1, 10, 5, 600000, 960),
           ('t1', 10, 'd2', 'p1', 'sonnet', 'cc', 2, 20, 7, 700000, 960),
           ('t1', 10, 'd1', 'p2', 'opus', 'cc', 3, 30, 11, 0, 961),
           ('t1', 10, 'd1', 'p1', 'sonnet', 'codex', 4, 40, 13, 0, 1055);",
    )
    .unwrap();
    apply(&conn, "0019");
    let rows = |sql: &str| -> Vec<Vec<i64>> {
        let mut stmt = conn.prepare(sql).unwrap();
        let n = stmt.column_count();
        stmt.query_map([], |r| (0..n).map(|i| r.get::<_, i64>(i)).collect())
            .unwrap()
            .map(|r| r.unwrap())
            .collect()
    };
    // Day 10 is quarters 960..1056: team t1's quarter 1056 (day 11) and
    // team t2 (never compacted) stay in usage_q only.
    assert_eq!(
        rows("SELECT quarter, requests, input_tokens, cost_micro_usd, cost_pico_usd, team_id = 't1', model = 'sonnet' FROM usage_m ORDER BY team_id, quarter, model"),
        vec![
            vec![960, 3, 30, 13, 300_000, 1, 1],
            vec![961, 3, 30, 11, 0, 1, 0],
            vec![1055, 4, 40, 13, 0, 1, 1],
        ]
    );
    assert_eq!(
        rows("SELECT day, requests, input_tokens, cost_micro_usd, cost_pico_usd, last_quarter, developer_id = 'd1', project = 'p1' FROM usage_dp ORDER BY team_id, day, developer_id, project"),
        vec![
            vec![10, 5, 50, 18, 600_000, 1055, 1, 1],
            vec![10, 3, 30, 11, 0, 961, 1, 0],
            vec![10, 2, 20, 7, 700_000, 960, 0, 1],
        ]
    );
    for table in ["usage_m", "usage_dp"] {
        let sql: String = conn
            .query_row(
                "SELECT sql FROM sqlite_master WHERE name = ?1",
                [table],
                |r| r.get(0),
            )
            .unwrap();
        assert!(sql.ends_with("WITHOUT ROWID"), "{sql}");
    }
}

/// Migration 0020 fills `usage_md` from `usage_m` (every compacted quarter,
/// late events included) by UTC day and model, pico remainders carried into
/// micro-dollars, and for nothing else.
#[test]
fn days_by_model_are_filled_from_the_compacted_quarters() {
    let conn = migrated_before("0020");
    conn.execute_batch(
        "INSERT INTO teams (id, name, salt, created_at, compacted_through_day) VALUES ('t1', 'A', 's', 0, 11);
         INSERT INTO usage_m (team_id, quarter, model, requests, input_tokens, cost_micro_usd, cost_pico_usd) VALUES
           ('t1', 960, 'sonnet', 1, 10, 5, 600000),
           ('t1', 1055, 'sonnet', 2, 20, 7, 700000),
           ('t1', 961, 'opus', 3, 30, 11, 0),
           ('t1', 1056, 'sonnet', 4, 40, 13, 1);
         INSERT INTO usage_q (team_id, quarter, developer_id, project, model, agent, requests, input_tokens, cost_micro_usd, cost_pico_usd) VALUES
           ('t1', 1200, 'd1', 'p1', 'sonnet', 'cc', 9, 90, 19, 0);",
    )
    .unwrap();
    apply(&conn, "0020");
    let mut stmt = conn
        .prepare("SELECT day, model, requests, input_tokens, cost_micro_usd, cost_pico_usd FROM usage_md WHERE team_id = 't1' ORDER BY day, model")
        .unwrap();
    let rows: Vec<(i64, String, i64, i64, i64, i64)> = stmt
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(
        rows,
        vec![
            (10, "opus".into(), 3, 30, 11, 0),
            (10, "sonnet".into(), 3, 30, 13, 300_000),
            (11, "sonnet".into(), 4, 40, 13, 1),
        ]
    );
    let sql: String = conn
        .query_row(
            "SELECT sql FROM sqlite_master WHERE name = 'usage_md'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(sql.ends_with("WITHOUT ROWID"), "{sql}");
}

/// Migration 0021 ranks the sessions of every compacted day by the UTC day
/// they started: cost and duration at ranks 1, 2, 3, 5, …, one row a team
/// and day, days above the team's watermark (and teams never compacted)
/// left to compaction.
#[test]
fn session_ranks_are_filled_for_compacted_days_only() {
    let conn = migrated_before("0021");
    let day = 86_400_000i64;
    let mut sql = String::from(
        "INSERT INTO teams (id, name, salt, created_at, compacted_through_day) VALUES ('t1', 'A', 's', 0, 11), ('t2', 'B', 's', 0, NULL);",
    );
    // Day 10: four sessions, costs 40, 10, 30, 20 and spans 1, 4, 2, 3 s;
    // the last one ends on day 11 but started on day 10.
    for (k, (cost, span)) in [(40, 1000), (10, 4000), (30, 2000), (20, 3000)]
        .into_iter()
        .enumerate()
    {
        let start = 10 * day
            + if k == 3 {
                day - 1000
            } else {
                k as i64 * 60_000
            };
        sql.push_str(&format!(
            "INSERT INTO sessions (team_id, session, developer_id, project, agent, start_ms, end_ms, cost_micro_usd) VALUES ('t1', 's{k}', 'd', 'p', 'cc', {start}, {}, {cost});",
            start + span
        ));
    }
    // Day 11: one session; day 12 is above the watermark; t2 never compacted.
    sql.push_str(&format!(
        "INSERT INTO sessions (team_id, session, developer_id, project, agent, start_ms, end_ms, cost_micro_usd) VALUES
           ('t1', 'e', 'd', 'p', 'cc', {0}, {1}, 7), ('t1', 'f', 'd', 'p', 'cc', {2}, {3}, 8), ('t2', 'g', 'd', 'p', 'cc', {0}, {1}, 9);",
        11 * day,
        11 * day + 500,
        12 * day,
        12 * day + 500
    ));
    conn.execute_batch(&sql).unwrap();
    apply(&conn, "0021");
    let mut stmt = conn
        .prepare(
            "SELECT team_id, day, cost_ranks, span_ranks FROM session_ranks ORDER BY team_id, day",
        )
        .unwrap();
    type Ranked = Vec<(i64, i64)>;
    let rows: Vec<(String, i64, Ranked, Ranked)> = stmt
        .query_map([], |r| {
            let sorted = |s: String| {
                let mut v: Vec<(i64, i64)> = serde_json::from_str(&s).unwrap();
                v.sort();
                v
            };
            Ok((r.get(0)?, r.get(1)?, sorted(r.get(2)?), sorted(r.get(3)?)))
        })
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(
        rows,
        vec![
            (
                "t1".into(),
                10,
                vec![(1, 40), (2, 30), (3, 20)],
                vec![(1, 4000), (2, 3000), (3, 2000)]
            ),
            ("t1".into(), 11, vec![(1, 7)], vec![(1, 500)]),
        ]
    );
}
