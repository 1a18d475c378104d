//! Choosing cache files to delete (by age, by a size budget least recently
//! used first, stale or orphaned, corrupt, of other versions, of a module,
//! or all)
//! and deleting them: each under its `.lock` taken without waiting (a file
//! someone is writing is skipped), with its index row in the same
//! transaction.

use std::path::Path;

use serde::Serialize;

use crate::cache_file::Status;
use crate::index::{retry, Error, FileEntry, Index};
use crate::module_file::Identity;

#[derive(Clone, Debug, Default)]
pub struct Policy {
    /// Not used (or made, if never used) for this many seconds.
    pub older_than: Option<i64>,
    /// Then, while the rest is larger than this, the least recently used.
    pub max_size: Option<u64>,
    /// Stale, orphaned or corrupt files.
    pub stale: bool,
    /// Corrupt files, and files the runtime refuses (owner, mode).
    pub corrupt: bool,
    pub other_versions: bool,
    /// Files of these modules (see [`names_module`]).
    pub modules: Vec<String>,
    pub all: bool,
}

impl Policy {
    pub fn is_empty(&self) -> bool {
        self.older_than.is_none() && self.max_size.is_none() && !self.stale && !self.corrupt && !self.other_versions && self.modules.is_empty() && !self.all
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Choice {
    pub name: String,
    pub module: String,
    pub size: u64,
    pub reason: String,
}

/// Whether `want`, as a user typed it, names the module recorded as
/// `module`: the same path, the same file through symlinks or from here,
/// or (without a `/`) its base name.
pub fn names_module(want: &str, module: &str) -> bool {
    if want == module {
        return true;
    }
    if !want.contains('/') {
        return Path::new(module).file_name().is_some_and(|n| n == want);
    }
    std::fs::canonicalize(want).is_ok_and(|c| Path::new(module) == c || std::fs::canonicalize(module).is_ok_and(|mc| mc == c))
}

/// The last time a file was used, or made if never used: what LRU goes by.
fn last_touch(e: &FileEntry) -> i64 {
    e.last_used.unwrap_or(e.created)
}

/// The files `policy` selects among `entries` (with their `statuses`),
/// each with the first reason that selected it.
pub fn select(entries: &[FileEntry], statuses: &[Status], policy: &Policy, now: i64) -> Vec<Choice> {
    let module_match = |e: &FileEntry| e.module_path.as_deref().is_some_and(|m| policy.modules.iter().any(|want| names_module(want, m)));
    let mut reasons: Vec<Option<String>> = entries
        .iter()
        .zip(statuses)
        .map(|(e, s)| {
            if policy.all {
                Some("all".to_string())
            } else if policy.stale && matches!(s, Status::Stale | Status::Orphan | Status::Corrupt(_)) {
                Some(s.describe())
            } else if policy.corrupt && matches!(s, Status::Corrupt(_) | Status::Unsafe(_)) {
                Some(s.describe())
            } else if policy.other_versions && matches!(s, Status::OtherVersion(_)) {
                Some(s.describe())
            } else if !policy.modules.is_empty() && module_match(e) {
                Some("module".to_string())
            } else if policy.older_than.is_some_and(|age| now - last_touch(e) > age) {
                Some(format!("last used {}", crate::units::human_age(Some(last_touch(e)), now)))
            } else {
                None
            }
        })
        .collect();
    if let Some(budget) = policy.max_size {
        let mut kept: Vec<usize> = (0..entries.len()).filter(|&i| reasons[i].is_none()).collect();
        let mut total: u64 = kept.iter().map(|&i| entries[i].file_size).sum();
        kept.sort_by_key(|&i| (last_touch(&entries[i]), entries[i].name.clone()));
        for i in kept {
            if total <= budget {
                break;
            }
            total -= entries[i].file_size;
            reasons[i] = Some(format!("over {} (least recently used)", crate::units::human_size(budget)));
        }
    }
    entries
        .iter()
        .zip(reasons)
        .filter_map(|(e, r)| Some(Choice { name: e.name.clone(), module: e.module().to_string(), size: e.file_size, reason: r? }))
        .collect()
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Removed,
    /// Its lock is held: someone is writing it.
    Busy,
    /// It changed since it was chosen.
    Changed,
    Failed(String),
}

/// Keeps the directory within its configured size budget
/// ([`crate::config::Config::max_size`]): the least recently used files go
/// until the rest fits. Reads only the index (its rows of the files this
/// run touched are fresh), so every run can afford it. Returns the files
/// removed.
pub fn enforce_budget(ix: &mut Index) -> Result<Vec<Choice>, Error> {
    let Some(budget) = crate::config::Config::load(ix.dir()).max_size else { return Ok(Vec::new()) };
    let mut rows: Vec<(String, String, u64, i64)> = {
        let mut stmt = ix.conn.prepare(
            "SELECT c.name, coalesce(m.path, '?'), c.file_size, coalesce(c.last_used, c.created)
             FROM cache_files c LEFT JOIN modules m ON c.module_id = m.id",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)?.max(0) as u64, r.get(3)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    let mut total: u64 = rows.iter().map(|r| r.2).sum();
    if total <= budget {
        return Ok(Vec::new());
    }
    rows.sort_by(|a, b| (a.3, &a.0).cmp(&(b.3, &b.0)));
    let mut choices = Vec::new();
    for (name, module, size, _) in rows {
        if total <= budget {
            break;
        }
        total -= size;
        choices.push(Choice { name, module, size, reason: format!("over the size budget of {}", crate::units::human_size_exact(budget)) });
    }
    Ok(remove(ix, &choices)?.into_iter().filter(|(_, o)| *o == Outcome::Removed).map(|(c, _)| c).collect())
}

/// Deletes the chosen files that no one is writing, and their rows, in
/// one transaction.
pub fn remove(ix: &mut Index, choices: &[Choice]) -> Result<Vec<(Choice, Outcome)>, Error> {
    let dir = ix.dir().to_path_buf();
    // The versions that were judged: a file rewritten since is left alone.
    let seen: Vec<Option<Identity>> =
        choices.iter().map(|c| std::fs::symlink_metadata(dir.join(&c.name)).ok().map(|m| Identity::of(&m))).collect();
    retry(|| Ok(ix.conn.execute_batch("BEGIN IMMEDIATE")?))?;
    let mut out = Vec::new();
    for (c, before) in choices.iter().zip(seen) {
        let path = dir.join(&c.name);
        let outcome = match crate::lock::try_lock(&path) {
            Err(e) => Outcome::Failed(format!("lock: {e}")),
            Ok(None) => Outcome::Busy,
            Ok(Some(_held)) => {
                let now = std::fs::symlink_metadata(&path).ok().map(|m| Identity::of(&m));
                if now.is_none() {
                    Outcome::Removed // gone already
                } else if now != before {
                    Outcome::Changed
                } else {
                    match std::fs::remove_file(&path) {
                        Ok(()) => {
                            // The lock file goes too; a writer that opened it
                            // before this point only loses its merge.
                            let _ = std::fs::remove_file(crate::lock::lock_path(&path));
                            Outcome::Removed
                        }
                        Err(e) => Outcome::Failed(e.to_string()),
                    }
                }
            }
        };
        if outcome == Outcome::Removed {
            if let Err(e) = ix.conn.execute("DELETE FROM cache_files WHERE name = ?1", [&c.name]) {
                let _ = ix.conn.execute_batch("ROLLBACK");
                return Err(e.into());
            }
        }
        out.push((c.clone(), outcome));
    }
    ix.conn.execute_batch("COMMIT")?;
    Ok(out)
}

/// Files a killed process left behind: a cache file's temporary copy
/// (`<file>.tmp.<pid>.<hex>`, written then renamed) or a run report
/// (`.report.<pid>.<nanos>`), whose process is gone. A live process's
/// files are never listed.
/// Every temporary copy and run report in `dir` (of live processes too):
/// their count and bytes, which `list` and `stats` include in the totals.
pub fn temporaries(dir: &Path) -> (u64, u64) {
    let Ok(read) = std::fs::read_dir(dir) else { return (0, 0) };
    read.flatten()
        .filter(|e| e.file_name().to_str().is_some_and(|n| leftover_pid(n).is_some() || persist::cache_dir::is_pending_report(n)))
        .filter_map(|e| e.metadata().ok())
        .fold((0, 0), |(n, bytes), m| (n + 1, bytes + m.len()))
}

pub fn leftovers(dir: &Path) -> Vec<String> {
    let Ok(read) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut names: Vec<String> = read
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| leftover_pid(name).is_some_and(|pid| !process_alive(pid)))
        // A run report its dead recorder had claimed is recorded by the
        // next recorder, not deleted (`Index::ingest_pending`).
        .filter(|name| !name.contains(persist::cache_dir::CLAIMED_INFIX))
        .collect();
    names.sort();
    names
}

use persist::cache_dir::leftover_pid;

pub fn process_alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    let exists = pid > 0 && (unsafe { libc::kill(pid, 0) } == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM));
    // A zombie (killed, its parent not yet waiting) writes nothing more,
    // once every thread is one (a killed process's other threads may
    // still be finishing a system call after its first thread is).
    let zombie = |stat: &str| stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'));
    let all_zombies = || {
        std::fs::read_dir(format!("/proc/{pid}/task")).is_ok_and(|tasks| {
            tasks.flatten().all(|t| std::fs::read_to_string(t.path().join("stat")).map_or(true, |s| zombie(&s)))
        })
    };
    exists && !all_zombies()
}
