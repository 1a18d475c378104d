//! The SQLite index of a cache directory (`<dir>/index.sqlite`, WAL, busy
//! timeout): the modules, the cache files with their keys and sizes, when
//! each file was made and last used, and every recorded run.
//!
//! - [`schema`]: the tables and their migrations.
//! - [`entry`]: one cache file as the index knows it, and its status.
//! - [`sync`]: bringing the index in line with the files (and rebuilding it).
//! - [`record`]: a run, as `dbirun` records it.
//! - [`stats`]: hit rates from the runs.
//!
//! Every write is one immediate transaction retried while the database is
//! busy, so many `dbirun` processes finishing at once all get recorded. A
//! corrupt index is set aside (`index.sqlite.corrupt`) and rebuilt from the
//! files, under `index.lock` so two processes do not rebuild it at once.

pub mod entry;
pub mod record;
pub mod schema;
pub mod stats;
pub mod sync;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode};

pub use entry::FileEntry;

#[derive(Debug)]
pub enum Error {
    /// The index file is not a database, or a damaged one.
    Corrupt(String),
    /// Written by a newer cachetool (schema version).
    Newer(i64),
    /// Still busy after retrying for a long time.
    Busy(String),
    Sqlite(rusqlite::Error),
    Io(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Corrupt(why) => write!(f, "the index is corrupt ({why})"),
            Error::Newer(v) => write!(f, "the index has schema version {v}, newer than this build's {}", schema::VERSION),
            Error::Busy(why) => write!(f, "the index stayed busy: {why}"),
            Error::Sqlite(e) => write!(f, "index: {e}"),
            Error::Io(e) => write!(f, "{e}"),
        }
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Error {
        match e.sqlite_error_code() {
            Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => Error::Corrupt(e.to_string()),
            // A database whose tables are not ours (another program's file,
            // or ours damaged by hand) is as unusable as garbage.
            Some(ErrorCode::Unknown) if schema::is_mismatch(&e.to_string()) => Error::Corrupt(e.to_string()),
            _ => Error::Sqlite(e),
        }
    }
}

impl Error {
    /// An index this build cannot use and should replace: damaged, not
    /// ours, or written by a newer cachetool.
    pub fn needs_rebuild(&self) -> bool {
        matches!(self, Error::Corrupt(_) | Error::Newer(_))
    }
}

impl Error {
    fn is_busy(&self) -> bool {
        matches!(self, Error::Sqlite(e) if matches!(e.sqlite_error_code(), Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)))
    }
}

/// How long a writer keeps retrying a busy database before giving up.
pub(crate) const BUSY_DEADLINE: Duration = Duration::from_secs(120);

/// Runs `f` again while it fails because the database is busy (SQLite's
/// own busy timeout does not cover every case, e.g. switching to WAL or
/// a deadlock between two would-be writers), with a growing, jittered wait.
pub(crate) fn retry<T>(f: impl FnMut() -> Result<T, Error>) -> Result<T, Error> {
    retry_within(BUSY_DEADLINE, f)
}

/// [`retry`] for at most `budget`.
pub(crate) fn retry_within<T>(budget: Duration, mut f: impl FnMut() -> Result<T, Error>) -> Result<T, Error> {
    let start = Instant::now();
    let mut wait = Duration::from_millis(2);
    loop {
        match f() {
            Err(e) if e.is_busy() => {
                if start.elapsed() > budget {
                    return Err(Error::Busy(e.to_string()));
                }
                let jitter = Duration::from_micros((std::process::id() as u64 * 7919 + start.elapsed().subsec_nanos() as u64) % 3000);
                std::thread::sleep(wait + jitter);
                wait = (wait * 2).min(Duration::from_millis(100)).min(budget / 4);
            }
            other => return other,
        }
    }
}

/// The (device, inode) of the database file of the cache directory `dir`.
fn database_file(dir: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(dir.join(crate::INDEX_FILE)).ok().map(|m| (m.dev(), m.ino()))
}

pub struct Index {
    pub(crate) conn: Connection,
    dir: PathBuf,
    /// How long a write may wait for a busy database.
    pub(crate) budget: Duration,
    /// The database file's (device, inode) when it was opened.
    file: Option<(u64, u64)>,
}

impl Index {
    /// Opens the index of the cache directory `dir`, creating it or
    /// bringing its schema up to date.
    pub fn open(dir: &Path) -> Result<Index, Error> {
        Self::open_within(dir, BUSY_DEADLINE)
    }

    /// [`Index::open`], giving up with [`Error::Busy`] when the database
    /// stays locked for `budget` (this and later writes through it).
    pub fn open_within(dir: &Path, budget: Duration) -> Result<Index, Error> {
        retry_within(budget, || Self::open_once(dir, budget))
    }

    fn open_once(dir: &Path, budget: Duration) -> Result<Index, Error> {
        let mut conn = Connection::open(dir.join(crate::INDEX_FILE))?;
        conn.busy_timeout(budget.min(Duration::from_secs(30)))?;
        let _mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        // No fsync: the index is rebuilt from the files whenever it is
        // damaged, and a run's recording must not wait on the disk.
        conn.execute_batch("PRAGMA synchronous=OFF; PRAGMA foreign_keys=ON;")?;
        schema::migrate(&mut conn)?;
        Ok(Index { conn, dir: dir.to_path_buf(), budget, file: database_file(dir) })
    }

    /// Whether the database file at the index's path is still the one
    /// opened (a rebuild puts a new one there): a connection kept open
    /// between uses checks this first.
    pub fn still_current(&self) -> bool {
        self.file.is_some() && database_file(&self.dir) == self.file
    }

    /// Checks the database's pages and that its tables are the ones this
    /// build made (cheap for an index this size).
    pub fn check(&self) -> Result<(), Error> {
        let mut stmt = self.conn.prepare("PRAGMA quick_check")?;
        let rows: Vec<String> = stmt.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
        if rows.len() != 1 || rows[0] != "ok" {
            return Err(Error::Corrupt(rows.join("; ")));
        }
        schema::check_tables(&self.conn)
    }

    /// [`Index::open`] and check it; a missing index is created and a
    /// corrupt one set aside and rebuilt from the files. Returns the reason
    /// when it was rebuilt.
    pub fn open_or_rebuild(dir: &Path) -> Result<(Index, Option<String>), Error> {
        let missing = !dir.join(crate::INDEX_FILE).exists();
        match Self::open(dir).and_then(|ix| ix.check().map(|()| ix)) {
            Ok(mut ix) if missing => {
                ix.sync(&mut crate::module_file::Modules::default(), &|_| {})?;
                Ok((ix, None))
            }
            Ok(ix) => Ok((ix, None)),
            Err(e) if e.needs_rebuild() => {
                let why = e.to_string();
                let _guard = lock_index(dir)?;
                // Someone may have rebuilt it while we waited.
                if let Ok(ix) = Self::open(dir).and_then(|ix| ix.check().map(|()| ix)) {
                    return Ok((ix, None));
                }
                let ix = Self::recreate(dir)?;
                Ok((ix, Some(why)))
            }
            Err(e) => Err(e),
        }
    }

    /// Sets the old index aside (`index.sqlite.corrupt`) and builds a new
    /// one from the files, keeping nothing of the old one.
    fn recreate(dir: &Path) -> Result<Index, Error> {
        let db = dir.join(crate::INDEX_FILE);
        let aside = dir.join(format!("{}.corrupt", crate::INDEX_FILE));
        std::fs::rename(&db, &aside).or_else(|e| if e.kind() == std::io::ErrorKind::NotFound { Ok(()) } else { Err(e) }).map_err(|e| Error::Io(format!("{}: {e}", db.display())))?;
        for suffix in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(dir.join(format!("{}{suffix}", crate::INDEX_FILE)));
        }
        let mut ix = Self::open(dir)?;
        ix.sync(&mut crate::module_file::Modules::default(), &|_| {})?;
        Ok(ix)
    }

    /// Rebuilds the file and module tables from the files. The runs and
    /// each file's use counts are kept when the old index can be read;
    /// a corrupt index is set aside and replaced whole.
    pub fn rebuild(dir: &Path) -> Result<(Index, Option<String>), Error> {
        let _guard = lock_index(dir)?;
        match Self::open(dir).and_then(|ix| ix.check().map(|()| ix)) {
            Ok(mut ix) => {
                retry(|| {
                    let tx = ix.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                    // Forget what was read from the files, keep the usage.
                    tx.execute("UPDATE cache_files SET file_ino = -1, file_mtime_ns = -1", [])?;
                    tx.execute("DELETE FROM modules WHERE id NOT IN (SELECT module_id FROM cache_files WHERE module_id IS NOT NULL)", [])?;
                    tx.commit()?;
                    Ok(())
                })?;
                ix.sync(&mut crate::module_file::Modules::default(), &|_| {})?;
                Ok((ix, None))
            }
            Err(e) if e.needs_rebuild() => Ok((Self::recreate(dir)?, Some(e.to_string()))),
            Err(e) => Err(e),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}

/// An exclusive lock on `<dir>/index.lock`, for rebuilding the index.
fn lock_index(dir: &Path) -> Result<std::fs::File, Error> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join("index.lock");
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(|e| Error::Io(format!("{}: {e}", path.display())))?;
    f.lock().map_err(|e| Error::Io(format!("{}: {e}", path.display())))?;
    Ok(f)
}
