//! Indexes this build cannot use (a newer schema version, another
//! program's tables) are repaired, never a dead end: commands and dbirun
//! set them aside and rebuild from the files, and recording goes on.

mod common;

use common::*;

/// Replaces the index with `sql` run on a fresh database.
fn replace_index(c: &Cache, sql: &str) {
    let db = c.dir().join("index.sqlite");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(sql).unwrap();
}

fn runs(c: &Cache) -> i64 {
    c.count("SELECT count(*) FROM runs")
}

#[test]
fn an_index_from_a_newer_schema_is_set_aside_and_rebuilt() {
    let c = Cache::new();
    c.run_ok(&[], "/usr/bin/true", &[]);
    replace_index(&c, "CREATE TABLE future (x); PRAGMA user_version = 99;");
    // dbirun records the next run in a rebuilt index.
    c.run_ok(&[], "/usr/bin/true", &[]);
    assert_eq!(runs(&c), 1);
    assert!(c.dir().join("index.sqlite.corrupt").exists());

    replace_index(&c, "PRAGMA user_version = 99;");
    let listed = c.tool_ok(&["list"]);
    assert!(listed.contains("/usr/bin/true "), "{listed}");
    replace_index(&c, "PRAGMA user_version = 99;");
    let out = c.tool(&["rebuild-index"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(c.tool_ok(&["list"]).contains("/usr/bin/true "));
}

#[test]
fn an_sqlite_file_with_other_tables_is_set_aside_and_rebuilt() {
    let c = Cache::new();
    c.run_ok(&[], "/usr/bin/true", &[]);
    let version = c.count("PRAGMA user_version");
    let foreign = format!("CREATE TABLE cache_files (id INTEGER PRIMARY KEY, other TEXT); CREATE TABLE runs (when_ TEXT); PRAGMA user_version = {version};");
    replace_index(&c, &foreign);
    let out = c.tool(&["rebuild-index"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(c.tool_ok(&["list"]).contains("/usr/bin/true "));

    replace_index(&c, &foreign);
    let out = c.tool(&["list"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("/usr/bin/true "));
    assert!(text(&out.stderr).contains("rebuilt"), "{}", text(&out.stderr));

    replace_index(&c, &foreign);
    c.run_ok(&[], "/usr/bin/true", &[]);
    assert_eq!(runs(&c), 1, "the run is recorded in the rebuilt index");
    assert!(c.tool(&["verify"]).status.success());
}
