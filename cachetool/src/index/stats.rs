//! Hit rates from the recorded runs. Overall, from the runtime's own
//! counters: blocks loaded from files against blocks built. Per module,
//! from what each run reported for the module's file: the blocks the file
//! brought when a run used it, against the blocks runs built afresh for
//! the module.

use serde::Serialize;

use super::{Error, Index};

#[derive(Clone, Debug, Serialize)]
pub struct ModuleStats {
    pub module: String,
    /// Runs that used, rejected or wrote one of its files.
    pub runs: u64,
    pub uses: u64,
    pub rejections: u64,
    pub writes: u64,
    /// Blocks its files held when runs used them.
    pub blocks_cached: u64,
    /// Blocks runs built afresh for it.
    pub blocks_built: u64,
    /// blocks_cached / (blocks_cached + blocks_built).
    pub hit_rate: Option<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Stats {
    pub runs: u64,
    pub blocks_loaded: u64,
    pub blocks_built: u64,
    /// blocks_loaded / (blocks_loaded + blocks_built).
    pub hit_rate: Option<f64>,
    pub files_loaded: u64,
    pub files_rejected: u64,
    pub files_written: u64,
    pub cache_files: u64,
    pub total_size: u64,
    pub modules: Vec<ModuleStats>,
}

fn rate(hit: u64, miss: u64) -> Option<f64> {
    (hit + miss > 0).then(|| hit as f64 / (hit + miss) as f64)
}

/// One recorded run, for `cachetool runs`.
#[derive(Clone, Debug, Serialize)]
pub struct RunRow {
    pub id: i64,
    /// Unix seconds when it ended.
    pub time: i64,
    pub command: String,
    pub exit_status: String,
    pub duration_ms: i64,
    pub processes: i64,
    pub blocks_loaded: i64,
    pub blocks_built: i64,
    pub files_rejected: i64,
    pub files_written: i64,
    pub hit_rate: Option<f64>,
}

impl Index {
    /// The last `limit` runs recorded, newest first.
    pub fn runs(&self, limit: u32) -> Result<Vec<RunRow>, Error> {
        let mut stmt = self.conn.prepare(
            "SELECT id, time, command, exit_status, duration_ms, processes, blocks_loaded, blocks_built, files_rejected, files_written
             FROM runs ORDER BY id DESC LIMIT ?1",
        )?;
        let rows = stmt.query_map([limit], |r| {
            let (loaded, built): (i64, i64) = (r.get(6)?, r.get(7)?);
            Ok(RunRow {
                id: r.get(0)?,
                time: r.get(1)?,
                command: r.get(2)?,
                exit_status: r.get(3)?,
                duration_ms: r.get(4)?,
                processes: r.get(5)?,
                blocks_loaded: loaded,
                blocks_built: built,
                files_rejected: r.get(8)?,
                files_written: r.get(9)?,
                hit_rate: rate(loaded.max(0) as u64, built.max(0) as u64),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Forgets the recorded runs (the counters `stats` sums), keeping the
    /// cache files and their use counts; returns how many went.
    pub fn zero_stats(&mut self) -> Result<usize, Error> {
        super::retry(|| {
            let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            tx.execute("DELETE FROM run_files", [])?;
            let n = tx.execute("DELETE FROM runs", [])?;
            tx.commit()?;
            Ok(n)
        })
    }

    pub fn stats(&self) -> Result<Stats, Error> {
        let (runs, loaded, built, fl, fr, fw): (i64, i64, i64, i64, i64, i64) = self.conn.query_row(
            "SELECT count(*), coalesce(sum(blocks_loaded), 0), coalesce(sum(blocks_built), 0), coalesce(sum(files_loaded), 0),
                    coalesce(sum(files_rejected), 0), coalesce(sum(files_written), 0) FROM runs",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
        )?;
        let (files, size): (i64, i64) =
            self.conn.query_row("SELECT count(*), coalesce(sum(file_size), 0) FROM cache_files", [], |r| Ok((r.get(0)?, r.get(1)?)))?;
        let mut stmt = self.conn.prepare(
            "SELECT coalesce(module_path, file_name), count(DISTINCT run_id),
                    sum(event = 'used'), sum(event = 'rejected'), sum(event = 'wrote'),
                    sum(CASE WHEN event = 'used' THEN blocks ELSE 0 END),
                    sum(CASE WHEN event = 'built' THEN blocks ELSE 0 END)
             FROM run_files GROUP BY 1 ORDER BY 1",
        )?;
        let modules = stmt
            .query_map([], |r| {
                let (cached, added) = (r.get::<_, i64>(5)? as u64, r.get::<_, i64>(6)? as u64);
                Ok(ModuleStats {
                    module: r.get(0)?,
                    runs: r.get::<_, i64>(1)? as u64,
                    uses: r.get::<_, i64>(2)? as u64,
                    rejections: r.get::<_, i64>(3)? as u64,
                    writes: r.get::<_, i64>(4)? as u64,
                    blocks_cached: cached,
                    blocks_built: added,
                    hit_rate: rate(cached, added),
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Stats {
            runs: runs as u64,
            blocks_loaded: loaded as u64,
            blocks_built: built as u64,
            hit_rate: rate(loaded as u64, built as u64),
            files_loaded: fl as u64,
            files_rejected: fr as u64,
            files_written: fw as u64,
            cache_files: files as u64,
            total_size: size as u64,
            modules,
        })
    }

    /// Rows in `runs`.
    pub fn run_count(&self) -> Result<u64, Error> {
        Ok(self.conn.query_row("SELECT count(*) FROM runs", [], |r| r.get::<_, i64>(0))? as u64)
    }
}
