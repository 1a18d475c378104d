//! Recording a `-persist` run, as `dbirun` does once the application has
//! exited: a `runs` row with the run's counters, the files it used (their
//! last use and use count), rejected and wrote (their rows read again
//! from the files), and per file what it contributed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use rusqlite::{params, OptionalExtension, TransactionBehavior};

use super::sync::{read_entry, row_matches, upsert};
use crate::module_file::Identity;
use super::{retry_within, Error, Index};
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
/// missing, rebuilt from the files if corrupt), then the runs left pending
/// by others. Gives up with [`Error::Busy`] when the database stays locked
/// for `budget`: the caller leaves the run pending
/// ([`persist::cache_dir::pending_report_name`]).
pub fn record_within(dir: &Path, run: &Run<'_>, budget: Duration) -> Result<i64, Error> {
    let mut ix = match Index::open_within(dir, budget) {
        // A corrupt index is set aside and rebuilt from the files, so the
        // run is still recorded.
        Err(e) if e.needs_rebuild() => Index::open_or_rebuild(dir)?.0,
        other => other?,
    };
    ix.budget = budget;
    let id = match ix.record(run) {
        Err(e) if e.needs_rebuild() => Index::open_or_rebuild(dir)?.0.record(run)?,
        other => other?,
    };
    ix.ingest_pending();
    // The directory's size budget, if one is set, after every run.
    let _ = crate::prune::enforce_budget(&mut ix);
    Ok(id)
}

/// [`record_within`] waiting as long as it takes.
pub fn record(dir: &Path, run: &Run<'_>) -> Result<i64, Error> {
    record_within(dir, run, super::BUSY_DEADLINE)
}

impl Index {
    /// Records the runs dbirun left pending because the index was busy,
    /// oldest first; returns how many. Each report is claimed by a rename
    /// first, so two recorders never record one run twice; a report that
    /// cannot be recorded now goes back to waiting.
    pub fn ingest_pending(&mut self) -> usize {
        self.reclaim_abandoned();
        let Ok(dir) = std::fs::read_dir(self.dir()) else { return 0 };
        let mut pending: Vec<String> = dir
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| persist::cache_dir::is_pending_report(n))
            .collect();
        // Names start with the time, zero-padded: sorting is by age.
        pending.sort();
        let mut done = 0;
        for name in pending {
            let from = self.dir().join(&name);
            let claimed = self.dir().join(persist::cache_dir::claimed_name(&name, std::process::id()));
            if std::fs::rename(&from, &claimed).is_err() {
                continue;
            }
            let report = crate::run_report::parse(&std::fs::read_to_string(&claimed).unwrap_or_default());
            let Some(end) = report.ended.clone() else {
                // Not written by dbirun: nothing to record it as.
                let _ = std::fs::remove_file(&claimed);
                continue;
            };
            let run = Run { time: end.time, command: &end.command, exit_status: &end.exit_status, duration_ms: end.duration_ms, report: &report };
            match self.record(&run) {
                Err(e) if matches!(e, Error::Busy(_)) => {
                    let _ = std::fs::rename(&claimed, &from);
                    break;
                }
                _ => {
                    let _ = std::fs::remove_file(&claimed);
                    done += 1;
                }
            }
        }
        done
    }
}

impl Index {
    /// Reports claimed by a recorder that died (a server killed with
    /// SIGKILL) wait again: a run is lost only if nothing records it. A
    /// recorder that died after its commit and before removing the
    /// report leaves that run to be recorded twice, the lesser harm.
    fn reclaim_abandoned(&self) {
        let Ok(dir) = std::fs::read_dir(self.dir()) else { return };
        for name in dir.flatten().filter_map(|e| e.file_name().into_string().ok()) {
            if let Some((pid, started_ns)) = persist::cache_dir::report_of(&name) {
                if !crate::prune::process_alive(pid) {
                    self.finish_orphaned_report(&name, pid, started_ns);
                }
                continue;
            }
            let Some((pending, _)) = name.split_once(persist::cache_dir::CLAIMED_INFIX) else { continue };
            let dead = persist::cache_dir::leftover_pid(&name).is_some_and(|pid| !crate::prune::process_alive(pid));
            if dead && persist::cache_dir::is_pending_report(pending) {
                let _ = std::fs::rename(self.dir().join(&name), self.dir().join(pending));
            }
        }
    }

    /// A run report whose run's process died without writing the run's
    /// end (killed by SIGKILL, or by a signal the runtime could not see):
    /// the end is taken from the report's last write, with an unknown
    /// status, and the report left pending like any other. Only a report
    /// that names its run's command (dbirun writes it first when it execs
    /// the runtime) is a run; any other (lines a run's late child appended
    /// after the run was recorded) is a leftover, for prune.
    fn finish_orphaned_report(&self, name: &str, pid: i32, started_ns: u128) {
        let path = self.dir().join(name);
        let Ok(meta) = std::fs::metadata(&path) else { return };
        let last_ns = meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map_or(started_ns, |d| d.as_nanos());
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let Some(mut end) = crate::run_report::parse(&text).ended.filter(|e| !e.command.is_empty()) else { return };
        if end.exit_status.is_empty() {
            // Died before its end was written (else only the rename is left).
            end.time = (last_ns / 1_000_000_000) as i64;
            end.duration_ms = (last_ns.saturating_sub(started_ns) / 1_000_000) as u64;
            end.exit_status = "unknown".into();
            // A process killed mid-line left that line unfinished.
            let sep = if text.is_empty() || text.ends_with('\n') { "" } else { "\n" };
            if std::fs::write(&path, format!("{text}{sep}{}", end.lines())).is_err() {
                return;
            }
        }
        let _ = std::fs::rename(&path, self.dir().join(persist::cache_dir::pending_report_name(last_ns, pid as u32)));
    }

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
                .prepare_cached("SELECT file_ino, file_mtime_ns, file_size FROM cache_files WHERE name = ?1")
                .and_then(|mut s| s.query_row([n], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))))
                .optional()
                .ok()
                .flatten();
            row_matches(row.as_ref(), Identity::of(&meta))
        };
        let entries: BTreeMap<&str, _> =
            names.iter().filter(|&&n| !known(n)).filter_map(|&n| Some((n, read_entry(self.dir(), n)?))).collect();
        retry_within(self.budget, || {
            let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.prepare_cached("INSERT INTO runs (time, command, exit_status, duration_ms, processes, blocks_loaded, blocks_built,
                     files_loaded, files_rejected, files_written, blocks_persisted)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)")?.execute(
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
                    tx.prepare_cached("SELECT blocks FROM cache_files WHERE name = ?1")?.query_row([name], |row| row.get(0)).optional()?;
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
                    tx.prepare_cached("SELECT m.path FROM cache_files c JOIN modules m ON c.module_id = m.id WHERE c.name = ?1")
                        .and_then(|mut s| s.query_row([name], |r| r.get(0)))
                        .optional()
                        .ok()
                        .flatten()
                })
            };
            for &name in used.iter().filter(|n| safe(n)) {
                tx.prepare_cached("UPDATE cache_files SET last_used = max(coalesce(last_used, 0), ?2), use_count = use_count + 1 WHERE name = ?1")?.execute(
                    params![name, run.time],
                )?;
                tx.prepare_cached("INSERT INTO run_files (run_id, file_name, module_path, event, blocks) VALUES (?1, ?2, ?3, 'used', ?4)")?.execute(
                    params![run_id, name, module_of(name), before[name] as i64],
                )?;
            }
            for (&name, &why) in rejected.iter().filter(|(n, _)| safe(n)) {
                tx.prepare_cached("INSERT INTO run_files (run_id, file_name, module_path, event, reason) VALUES (?1, ?2, ?3, 'rejected', ?4)")?.execute(
                    params![run_id, name, module_of(name), why],
                )?;
            }
            for (&name, &blocks) in wrote.iter().filter(|(n, _)| safe(n)) {
                let base = if used.contains(name) { before[name] } else { 0 };
                tx.prepare_cached("UPDATE cache_files SET last_used = max(coalesce(last_used, 0), ?2) WHERE name = ?1")?.execute(
                    params![name, run.time],
                )?;
                tx.prepare_cached("INSERT INTO run_files (run_id, file_name, module_path, event, blocks, new_blocks)
                     VALUES (?1, ?2, ?3, 'wrote', ?4, ?5)")?.execute(
                    params![run_id, name, module_of(name), blocks as i64, blocks.saturating_sub(base) as i64],
                )?;
            }
            for (&name, &blocks) in built.iter().filter(|(n, _)| safe(n)) {
                tx.prepare_cached("INSERT INTO run_files (run_id, file_name, module_path, event, blocks) VALUES (?1, ?2, ?3, 'built', ?4)")?.execute(
                    params![run_id, name, module_of(name), blocks as i64],
                )?;
            }
            tx.commit()?;
            Ok(run_id)
        })
    }
}
