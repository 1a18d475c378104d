//! What every command needs: the one-line failure, the cache directory
//! checked, the index opened (rebuilt if corrupt) and synced with the
//! files, progress bars.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use cachetool::cache_file::{self, Status};
use cachetool::index::{FileEntry, Index};
use cachetool::module_file::Modules;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A failure: its one line, and the exit status.
pub struct Fail(pub String);

pub type Result<T> = std::result::Result<T, Fail>;

pub fn fail<T>(msg: impl std::fmt::Display) -> Result<T> {
    Err(Fail(msg.to_string()))
}


pub fn existing_dir(dir: &Path) -> Result<()> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => fail(format_args!("{} is not a directory", dir.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fail(format_args!("no cache directory {} (nothing persisted there yet?)", dir.display()))
        }
        Err(e) => fail(format_args!("{}: {e}", dir.display())),
    }
}

/// The index of `dir`, rebuilt (with a note) when it was corrupt.
pub fn open_index(dir: &Path) -> Result<Index> {
    let mut ix = match Index::open_or_rebuild(dir) {
        Ok((ix, None)) => ix,
        Ok((ix, Some(why))) => {
            eprintln!("cachetool: the index could not be used ({why}); rebuilt it from the files (the old one is index.sqlite.corrupt)");
            ix
        }
        Err(e) => return fail(format_args!("{}: {e}", dir.join(cachetool::INDEX_FILE).display())),
    };
    // Runs dbirun could not record while the index was busy.
    ix.ingest_pending();
    Ok(ix)
}

pub fn progress(len: u64, what: &str, quiet: bool) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() || len < 2 {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    pb.set_style(ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len}").unwrap().progress_chars("=> "));
    pb.set_message(what.to_string());
    pb
}

/// A cache file checked as `verify` checks it: mapped and read whole
/// (every checksum), its key and module compared with the machine, its
/// ownership; a valid one is vouched for in its lock file
/// ([`cachetool::lock::note_verified`]). Gives its module path ("?" if
/// unknown) and status; None when it vanished meanwhile.
pub fn check_in_full(dir: &Path, name: &str, modules: &mut Modules) -> Option<(String, Status)> {
    let path = dir.join(name);
    let (bytes, id) = match cache_file::map(&path) {
        Ok(x) => x,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => return Some(("?".to_string(), Status::Corrupt(e.to_string()))),
    };
    let summary = cache_file::summarize(bytes.bytes(), persist::Depth::Full);
    let mut e = FileEntry::from_read(name, id, &summary);
    e.ownership = std::fs::symlink_metadata(&path).ok().and_then(|m| cache_file::ownership_problem(&m));
    let s = e.status(modules);
    if s == Status::Valid {
        // Checked whole: later runs need not hash it again.
        let _ = cachetool::lock::note_verified(&path, id);
    }
    Some((e.module().to_string(), s))
}

/// The index synced with the files, every entry and its status.
pub fn entries(dir: &Path, quiet: bool) -> Result<(Index, Vec<FileEntry>, Vec<Status>, Modules)> {
    existing_dir(dir)?;
    let mut ix = open_index(dir)?;
    let mut modules = Modules::default();
    let n = cache_file::names_in(dir).map(|n| n.len() as u64).unwrap_or(0);
    let pb = progress(n, "reading", quiet || n < 200);
    let entries = ix.sync(&mut modules, &|k| pb.inc(k)).map_err(|e| Fail(format!("{}: {e}", dir.display())))?;
    pb.finish_and_clear();
    let statuses: Vec<Status> = entries.iter().map(|e| e.status(&mut modules)).collect();
    let _ = ix.learn(&modules);
    Ok((ix, entries, statuses, modules))
}

/// Whether an entry is one of the modules named by `--module` style
/// arguments (paths, through symlinks); every entry when none are named.
pub fn module_filter(modules_wanted: &[String]) -> impl Fn(&FileEntry) -> bool + '_ {
    let canon: Vec<Option<PathBuf>> = modules_wanted.iter().map(|m| std::fs::canonicalize(m).ok()).collect();
    move |e: &FileEntry| {
        modules_wanted.is_empty()
            || e.module_path.as_deref().is_some_and(|p| {
                modules_wanted.iter().zip(&canon).any(|(m, c)| p == m || c.as_deref() == Some(Path::new(p)))
            })
    }
}

/// The index learns of the files just written into `dir` (the files stay
/// the truth if it cannot).
pub fn index_learns_new_files(dir: &Path) {
    if let Ok((mut ix, _)) = Index::open_or_rebuild(dir) {
        let _ = ix.sync(&mut Modules::default(), &|_| {});
    }
}

/// The valid files among `entries` of the modules `modules_wanted` (all
/// when none are named), and the others with why they are not valid;
/// a failure when modules were named and `dir` holds no file of them.
pub fn valid_files(dir: &Path, entries: &[FileEntry], statuses: &[Status], modules_wanted: &[String]) -> Result<(Vec<String>, Vec<(String, String)>)> {
    let wanted = module_filter(modules_wanted);
    let mut valid = Vec::new();
    let mut not_valid = Vec::new();
    for (e, s) in entries.iter().zip(statuses).filter(|(e, _)| wanted(e)) {
        match s {
            Status::Valid => valid.push(e.name.clone()),
            s => not_valid.push((e.name.clone(), s.describe())),
        }
    }
    if valid.is_empty() && not_valid.is_empty() && !modules_wanted.is_empty() {
        return fail(format_args!("no cache files of {} in {}", modules_wanted.join(", "), dir.display()));
    }
    Ok((valid, not_valid))
}
