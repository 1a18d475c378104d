//! Recording a `-persist` run, as `dbirun` does once the application has
//! exited: a `runs` row with the run's counters, the files it used (their
//! last use and use count), rejected and wrote (their rows read again
//! from the files), and per file what it contributed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use rusqlite::{params, OptionalExtension, TransactionBehavior};

use super::sync::{read_entry, row_matches, upsert};
use crate::module_file::Identity;
use super::{retry, Error, Index};
use crate::run_report::RunReport;

/// A finished run.
pub struct Run<'a> {
    /// Unix seconds when it ended.
    pub time: i64,
    /// The application and its arguments.
    pub command: &'a str,
    /// `exit N` or `signal NAME`.
    pub exit_status: &'a str,
    pub duration_ms: u64,
    pub report: &'a RunReport,
}

/// Records `run` in the index of the cache directory `dir` (created if
/// missing, rebuilt from the files if corrupt). Busy databases are waited
/// for.
pub fn record(dir: &Path, run: &Run<'_>) -> Result<i64, Error> {
    match Index::open(dir).and_then(|mut ix| ix.record(run)) {
        // A corrupt index is set aside and rebuilt from the files, so the
        // run is still recorded.
        Err(e) if e.needs_rebuild() => Index::open_or_rebuild(dir)?.0.record(run),
        other => other,
    }
}

impl Index {
    pub fn record(&mut self, run: &Run<'_>) -> Result<i64, Error> {
        let r = run.report;
        let used: BTreeSet<&str> = r.used.iter().map(|s| s.as_str()).collect();
        let mut wrote: BTreeMap<&str, u64> = BTreeMap::new();
        for (name, blocks) in &r.wrote {
            let b = wrote.entry(name.as_str()).or_default();
            *b = (*b).max(*blocks);
        }
        let rejected: BTreeMap<&str, &str> = r.rejected.iter().map(|(n, why)| (n.as_str(), why.as_str())).collect();
        let mut built: BTreeMap<&str, u64> = BTreeMap::new();
        for (name, blocks) in &r.built {
            *built.entry(name.as_str()).or_default() += blocks;
        }
        // Read the files first, outside the transaction.
        let safe = |n: &str| crate::cache_file::is_cache_name(n);
        let names: BTreeSet<&str> =
            used.iter().chain(wrote.keys()).chain(rejected.keys()).chain(built.keys()).copied().filter(|n| safe(n)).collect();
        // Only files the index does not know as they are now are read (a
        // file only used is usually unchanged: reading it would cost more
        // than the run's recording should).
        let known = |n: &str| -> bool {
            let Ok(meta) = std::fs::symlink_metadata(self.dir().join(n)) else { return false };
            let row = self
                .conn
                .query_row("SELECT file_ino, file_mtime_ns, file_size FROM cache_files WHERE name = ?1", [n], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .optional()
                .ok()
                .flatten();
            row_matches(row.as_ref(), Identity::of(&meta))
        };
        let entries: BTreeMap<&str, _> =
            names.iter().filter(|&&n| !known(n)).filter_map(|&n| Some((n, read_entry(self.dir(), n)?))).collect();
        retry(|| {
            let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute(
                "INSERT INTO runs (time, command, exit_status, duration_ms, processes, blocks_loaded, blocks_built,
                     files_loaded, files_rejected, files_written, blocks_persisted)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![
                    run.time,
                    run.command,
                    run.exit_status,
                    run.duration_ms as i64,
                    r.processes as i64,
                    r.blocks_loaded as i64,
                    r.blocks_built as i64,
                    r.files_loaded as i64,
                    r.files_rejected as i64,
                    r.files_written as i64,
                    r.blocks_persisted as i64
                ],
            )?;
            let run_id = tx.last_insert_rowid();
            // Blocks each file held before this run touched it.
            let mut before: BTreeMap<&str, u64> = BTreeMap::new();
            for &name in &names {
                let old: Option<i64> =
                    tx.query_row("SELECT blocks FROM cache_files WHERE name = ?1", [name], |row| row.get(0)).optional()?;
                let now = entries.get(name).map(|e| e.blocks);
                // A file only used was not changed by the run: what it holds now is what was loaded.
                let held = if wrote.contains_key(name) { old.map(|b| b as u64) } else { now.or(old.map(|b| b as u64)) };
                before.insert(name, held.unwrap_or(0));
                if let Some(e) = entries.get(name) {
                    upsert(&tx, e)?;
                }
            }
            let module_of = |name: &str| {
                entries.get(name).and_then(|e| e.module_path.clone()).or_else(|| {
                    tx.query_row(
                        "SELECT m.path FROM cache_files c JOIN modules m ON c.module_id = m.id WHERE c.name = ?1",
                        [name],
                        |r| r.get(0),
                    )
                    .optional()
                    .ok()
                    .flatten()
                })
            };
            for &name in used.iter().filter(|n| safe(n)) {
                tx.execute(
                    "UPDATE cache_files SET last_used = max(coalesce(last_used, 0), ?2), use_count = use_count + 1 WHERE name = ?1",
                    params![name, run.time],
                )?;
                tx.execute(
                    "INSERT INTO run_files (run_id, file_name, module_path, event, blocks) VALUES (?1, ?2, ?3, 'used', ?4)",
                    params![run_id, name, module_of(name), before[name] as i64],
                )?;
            }
            for (&name, &why) in rejected.iter().filter(|(n, _)| safe(n)) {
                tx.execute(
                    "INSERT INTO run_files (run_id, file_name, module_path, event, reason) VALUES (?1, ?2, ?3, 'rejected', ?4)",
                    params![run_id, name, module_of(name), why],
                )?;
            }
            for (&name, &blocks) in wrote.iter().filter(|(n, _)| safe(n)) {
                let base = if used.contains(name) { before[name] } else { 0 };
                tx.execute(
                    "UPDATE cache_files SET last_used = max(coalesce(last_used, 0), ?2) WHERE name = ?1",
                    params![name, run.time],
                )?;
                tx.execute(
                    "INSERT INTO run_files (run_id, file_name, module_path, event, blocks, new_blocks)
                     VALUES (?1, ?2, ?3, 'wrote', ?4, ?5)",
                    params![run_id, name, module_of(name), blocks as i64, blocks.saturating_sub(base) as i64],
                )?;
            }
            for (&name, &blocks) in built.iter().filter(|(n, _)| safe(n)) {
                tx.execute(
                    "INSERT INTO run_files (run_id, file_name, module_path, event, blocks) VALUES (?1, ?2, ?3, 'built', ?4)",
                    params![run_id, name, module_of(name), blocks as i64],
                )?;
            }
            tx.commit()?;
            Ok(run_id)
        })
    }
}
