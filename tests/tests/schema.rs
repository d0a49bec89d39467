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
