//! Bringing the index in line with the files, which are the truth: a file
//! that is new or changed since it was last read (other inode, mtime or
//! size) has its R zone read again; rows of files that are gone are
//! dropped. Only when-used facts live in the index alone.

use std::collections::HashMap;
use std::path::Path;

use persist::Depth;
use rusqlite::{params, OptionalExtension, Transaction, TransactionBehavior};

use super::entry::{identity_parse, identity_text, FileEntry};
use super::{retry, Error, Index};
use crate::cache_file;
use crate::module_file::{Identity, Modules};

/// Reads the head of the cache file `name` in `dir` into an entry (None
/// if it vanished meanwhile): the structure check touches the header and
/// R zone pages of the mapping only.
pub fn read_entry(dir: &Path, name: &str) -> Option<FileEntry> {
    let (bytes, id) = cache_file::map(&dir.join(name)).ok()?;
    let summary = cache_file::summarize(bytes.bytes(), Depth::Structure);
    Some(FileEntry::from_read(name, id, &summary))
}

/// Inserts or updates the row of `e` (and its module's row), keeping the
/// row's creation time and use.
pub(crate) fn upsert(tx: &Transaction<'_>, e: &FileEntry) -> rusqlite::Result<()> {
    let module_id: Option<i64> = match (&e.module_path, &e.module_hash, e.module_identity) {
        (Some(path), Some(hash), Some(id)) => Some(tx.query_row(
            "INSERT INTO modules (path, content_hash, size, dev, ino, mtime_ns, ctime_ns)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT(path) DO UPDATE SET content_hash = ?2, size = ?3, dev = ?4, ino = ?5, mtime_ns = ?6, ctime_ns = ?7
             RETURNING id",
            params![path, hash, id[2] as i64, id[0] as i64, id[1] as i64, id[3] as i64, id[4] as i64],
            |r| r.get(0),
        )?),
        _ => None,
    };
    let fid = e.file_identity.unwrap_or_default().to_array();
    tx.execute(
        "INSERT INTO cache_files (name, module_id, problem, format_version, runtime_version, module_hash, module_identity,
             tls_layout_hash, options_hash, clients, file_size, r_size, w_size, x_size, zones, segments, blocks,
             file_ino, file_mtime_ns, created, last_used, use_count)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, NULL, 0)
         ON CONFLICT(name) DO UPDATE SET module_id = ?2, problem = ?3, format_version = ?4, runtime_version = ?5,
             module_hash = ?6, module_identity = ?7, tls_layout_hash = ?8, options_hash = ?9, clients = ?10,
             file_size = ?11, r_size = ?12, w_size = ?13, x_size = ?14, zones = ?15, segments = ?16, blocks = ?17,
             file_ino = ?18, file_mtime_ns = ?19",
        params![
            e.name,
            module_id,
            e.problem,
            e.format_version,
            e.runtime_version,
            e.module_hash,
            e.module_identity.map(identity_text),
            e.tls_layout_hash,
            e.options_hash,
            e.clients,
            e.file_size as i64,
            e.r_size as i64,
            e.w_size as i64,
            e.x_size as i64,
            e.zones as i64,
            e.segments as i64,
            e.blocks as i64,
            fid[1] as i64,
            fid[3] as i64,
            e.created,
        ],
    )?;
    Ok(())
}

/// Whether the row's file version (inode, mtime, size) is `id`.
pub(crate) fn row_matches(row: Option<&(i64, i64, i64)>, id: Identity) -> bool {
    row.is_some_and(|&(ino, mtime, size)| ino == id.ino as i64 && mtime == id.mtime_ns as i64 && size == id.size as i64)
}

impl Index {
    /// Brings the index in line with the directory's cache files and
    /// returns every one's entry, sorted by name. `progress` is told of
    /// each file looked at.
    pub fn sync(&mut self, modules: &mut Modules, progress: &dyn Fn(u64)) -> Result<Vec<FileEntry>, Error> {
        let dir = self.dir().to_path_buf();
        let names = cache_file::names_in(&dir).map_err(|e| Error::Io(format!("{}: {e}", dir.display())))?;
        let rows: HashMap<String, (i64, i64, i64)> = {
            let mut stmt = self.conn.prepare("SELECT name, file_ino, file_mtime_ns, file_size FROM cache_files")?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, (r.get(1)?, r.get(2)?, r.get(3)?))))?;
            rows.collect::<Result<_, _>>()?
        };
        let mut changed = Vec::new();
        let mut ownership = HashMap::new();
        for name in &names {
            progress(1);
            let Ok(meta) = std::fs::symlink_metadata(dir.join(name)) else { continue };
            if let Some(why) = cache_file::ownership_problem(&meta) {
                ownership.insert(name.clone(), why);
            }
            if !row_matches(rows.get(name), Identity::of(&meta)) {
                changed.extend(read_entry(&dir, name));
            }
        }
        let gone: Vec<&String> = rows.keys().filter(|n| names.binary_search(n).is_err()).collect();
        if !changed.is_empty() || !gone.is_empty() {
            retry(|| {
                let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                for e in &changed {
                    upsert(&tx, e)?;
                }
                for name in &gone {
                    tx.execute("DELETE FROM cache_files WHERE name = ?1", [name])?;
                }
                tx.commit()?;
                Ok(())
            })?;
        }
        let mut entries = self.entries()?;
        entries.retain(|e| names.binary_search(&e.name).is_ok());
        for e in &mut entries {
            e.ownership = ownership.remove(&e.name);
        }
        self.teach(modules)?;
        Ok(entries)
    }

    /// Every row of `cache_files`, sorted by name.
    pub fn entries(&self) -> Result<Vec<FileEntry>, Error> {
        let mut stmt = self.conn.prepare(
            "SELECT c.name, c.problem, c.format_version, c.runtime_version, m.path, c.module_hash, c.module_identity,
                    c.tls_layout_hash, c.options_hash, c.clients, c.file_size, c.r_size, c.w_size, c.x_size, c.zones,
                    c.segments, c.blocks, c.created, c.last_used, c.use_count
             FROM cache_files c LEFT JOIN modules m ON m.id = c.module_id ORDER BY c.name",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(FileEntry {
                name: r.get(0)?,
                problem: r.get(1)?,
                format_version: r.get(2)?,
                runtime_version: r.get(3)?,
                module_path: r.get(4)?,
                module_hash: r.get(5)?,
                module_identity: r.get::<_, Option<String>>(6)?.as_deref().and_then(identity_parse),
                tls_layout_hash: r.get(7)?,
                options_hash: r.get(8)?,
                clients: r.get(9)?,
                file_size: r.get::<_, i64>(10)? as u64,
                r_size: r.get::<_, i64>(11)? as u64,
                w_size: r.get::<_, i64>(12)? as u64,
                x_size: r.get::<_, i64>(13)? as u64,
                zones: r.get::<_, i64>(14)? as u64,
                segments: r.get::<_, i64>(15)? as u64,
                blocks: r.get::<_, i64>(16)? as u64,
                created: r.get(17)?,
                last_used: r.get(18)?,
                use_count: r.get(19)?,
                ownership: None,
                file_identity: None,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Gives `modules` the content hashes the index knows, by identity.
    fn teach(&self, modules: &mut Modules) -> Result<(), Error> {
        let mut stmt = self.conn.prepare("SELECT path, content_hash, dev, ino, size, mtime_ns, ctime_ns FROM modules")?;
        let rows = stmt.query_map([], |r| {
            let id = [r.get::<_, i64>(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?].map(|v| v as u64);
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, Identity::from_array(id)))
        })?;
        for row in rows {
            let (path, hash, id) = row?;
            modules.remember(&path, id, hash);
        }
        Ok(())
    }

    /// Records the module hashes `modules` computed (a module whose
    /// identity changed but whose content did not is then not hashed
    /// again next time).
    pub fn learn(&mut self, modules: &Modules) -> Result<(), Error> {
        let found = modules.computed();
        if found.is_empty() {
            return Ok(());
        }
        retry(|| {
            let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            for (path, id, hash) in &found {
                let id = id.to_array();
                tx.execute(
                    "INSERT INTO modules (path, content_hash, size, dev, ino, mtime_ns, ctime_ns)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT(path) DO UPDATE SET content_hash = ?2, size = ?3, dev = ?4, ino = ?5, mtime_ns = ?6, ctime_ns = ?7",
                    params![path, hash, id[2] as i64, id[0] as i64, id[1] as i64, id[3] as i64, id[4] as i64],
                )?;
            }
            tx.commit()?;
            Ok(())
        })
    }

    /// One file's use, by name.
    pub fn usage(&self, name: &str) -> Result<Option<(i64, Option<i64>, i64)>, Error> {
        Ok(self
            .conn
            .query_row("SELECT created, last_used, use_count FROM cache_files WHERE name = ?1", [name], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?)
    }
}
