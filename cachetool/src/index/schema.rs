//! The index's tables, created and upgraded by numbered migrations (the
//! schema version is SQLite's `user_version`). A migration runs inside
//! one immediate transaction that first re-reads the version, so
//! processes opening a new index at once apply each step exactly once.

use rusqlite::{Connection, TransactionBehavior};

use super::Error;

/// Each step takes the schema from version i to i + 1.
const MIGRATIONS: &[&str] = &[
    // 1: modules, cache files, runs and what each run did with which file.
    "CREATE TABLE modules (
        id INTEGER PRIMARY KEY,
        path TEXT NOT NULL UNIQUE,
        -- blake3 of the module's contents when it had the identity below
        content_hash TEXT NOT NULL,
        size INTEGER NOT NULL,
        dev INTEGER NOT NULL,
        ino INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        ctime_ns INTEGER NOT NULL
    );
    CREATE TABLE cache_files (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        module_id INTEGER REFERENCES modules(id),
        -- why the file cannot be read (NULL when it can); key fields are NULL then
        problem TEXT,
        format_version INTEGER,
        runtime_version INTEGER,
        module_hash TEXT,
        -- the module's dev,ino,size,mtime_ns,ctime_ns when the file was written
        module_identity TEXT,
        tls_layout_hash TEXT,
        options_hash TEXT,
        clients TEXT,
        file_size INTEGER NOT NULL,
        r_size INTEGER NOT NULL DEFAULT 0,
        w_size INTEGER NOT NULL DEFAULT 0,
        x_size INTEGER NOT NULL DEFAULT 0,
        zones INTEGER NOT NULL DEFAULT 0,
        segments INTEGER NOT NULL DEFAULT 0,
        blocks INTEGER NOT NULL DEFAULT 0,
        -- the version of the file these fields were read from
        file_ino INTEGER NOT NULL,
        file_mtime_ns INTEGER NOT NULL,
        created INTEGER NOT NULL,
        last_used INTEGER,
        use_count INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX cache_files_module ON cache_files(module_id);
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        time INTEGER NOT NULL,
        command TEXT NOT NULL,
        exit_status TEXT NOT NULL,
        duration_ms INTEGER NOT NULL,
        processes INTEGER NOT NULL,
        blocks_loaded INTEGER NOT NULL,
        blocks_built INTEGER NOT NULL,
        files_loaded INTEGER NOT NULL,
        files_rejected INTEGER NOT NULL,
        files_written INTEGER NOT NULL,
        blocks_persisted INTEGER NOT NULL
    );
    CREATE TABLE run_files (
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        file_name TEXT NOT NULL,
        module_path TEXT,
        -- used, rejected, wrote or built (blocks built afresh for the module)
        event TEXT NOT NULL,
        -- used: blocks the file held; wrote: blocks it then held
        blocks INTEGER NOT NULL DEFAULT 0,
        -- wrote: blocks this run added to the file
        new_blocks INTEGER NOT NULL DEFAULT 0,
        reason TEXT
    );
    CREATE INDEX run_files_run ON run_files(run_id);",
];

/// The schema version this build writes.
pub const VERSION: i64 = MIGRATIONS.len() as i64;

pub fn version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

/// Whether an SQLite error message says a table or column is not what our
/// statements expect.
pub fn is_mismatch(message: &str) -> bool {
    ["no such table", "no such column", "has no column named", "already exists"].iter().any(|m| message.contains(m))
}

/// Every table of the current schema with its columns, in order.
fn expected_tables() -> &'static [(String, Vec<String>)] {
    static EXPECTED: std::sync::OnceLock<Vec<(String, Vec<String>)>> = std::sync::OnceLock::new();
    EXPECTED.get_or_init(|| {
        let mut conn = Connection::open_in_memory().expect("an in-memory database");
        migrate(&mut conn).expect("the migrations apply to an empty database");
        tables(&conn).expect("an in-memory database lists its tables")
    })
}

fn tables(conn: &Connection) -> rusqlite::Result<Vec<(String, Vec<String>)>> {
    let names: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    names
        .into_iter()
        .map(|t| {
            let cols = conn.prepare("SELECT name FROM pragma_table_info(?1)")?.query_map([&t], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
            Ok((t, cols))
        })
        .collect()
}

/// Fails with [`Error::Corrupt`] unless every table this build uses is
/// there with the columns it made (other tables are left alone).
pub fn check_tables(conn: &Connection) -> Result<(), Error> {
    let have = tables(conn)?;
    for (table, cols) in expected_tables() {
        match have.iter().find(|(t, _)| t == table) {
            None => return Err(Error::Corrupt(format!("table {table} is missing"))),
            Some((_, c)) if c != cols => return Err(Error::Corrupt(format!("table {table} has other columns"))),
            Some(_) => {}
        }
    }
    Ok(())
}

/// Brings the schema up to [`VERSION`]; refuses an index from a newer
/// cachetool (it would not know its tables).
pub fn migrate(conn: &mut Connection) -> Result<(), Error> {
    let v = version(conn)?;
    if v == VERSION {
        return Ok(());
    }
    if v > VERSION {
        return Err(Error::Newer(v));
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut v = version(&tx)?;
    if v > VERSION {
        return Err(Error::Newer(v));
    }
    while v < VERSION {
        tx.execute_batch(MIGRATIONS[v as usize])?;
        v += 1;
        tx.pragma_update(None, "user_version", v)?;
    }
    tx.commit()?;
    Ok(())
}
