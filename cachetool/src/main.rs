//! `cachetool`: the command line over a directory of persisted code caches
//! and its index. Each command's work is in the library; this file parses
//! the command line and prints (tables, or JSON with `--json`).
//!
//! Exit statuses: 0 done (verify: every file valid), 1 a problem (verify
//! found one, a missing directory, a corrupt bundle...), 2 usage.

mod output;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use cachetool::cache_file::{self, Status};
use cachetool::index::{FileEntry, Index};
use cachetool::inspect::Opened;
use cachetool::module_file::Modules;
use cachetool::{bundle, prune, units};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use output::{bar, json, Table};

#[derive(Parser)]
#[command(name = "cachetool", version, about = "Inspect, verify, prune, export and import dbirun's persisted code caches")]
struct Cli {
    /// The cache directory (the per-user one dbirun writes into:
    /// `<persist_dir>/<uid>`); default `$XDG_CACHE_HOME/dbirun/<uid>`
    /// (else `~/.cache/dbirun/<uid>`).
    #[arg(long, global = true, value_name = "DIR", conflicts_with = "persist_dir")]
    dir: Option<PathBuf>,
    /// Like dbirun's -persist_dir: use `BASE/<uid>`.
    #[arg(long, global = true, value_name = "BASE")]
    persist_dir: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// One row per cache file: module, key, blocks, size, last use, status.
    List,
    /// A file's header, key, zones (with checksums), client data, blocks.
    Inspect {
        /// A cache file (path or name), or a module (path or file name).
        what: String,
        /// List the blocks (module offset, size, exits).
        #[arg(long)]
        blocks: bool,
        /// Disassemble the block at this module offset next to the app code.
        #[arg(long, value_name = "OFFSET", value_parser = parse_offset)]
        disasm: Option<u64>,
    },
    /// Check every file's checksums, structure and key against the modules
    /// on disk; exit status 1 with one line per problem.
    Verify,
    /// Delete cache files by policy (files being written are skipped).
    Prune(PruneArgs),
    /// Hit rates per module and overall, from the recorded runs.
    Stats,
    /// Write valid caches to a bundle (tar + zstd with a manifest).
    Export {
        bundle: PathBuf,
        /// Only the files of this module (repeatable).
        #[arg(long, value_name = "PATH")]
        module: Vec<String>,
    },
    /// Take the files of a bundle that fit this machine.
    Import {
        bundle: PathBuf,
        /// Overwrite valid local files too.
        #[arg(long)]
        replace: bool,
    },
    /// Recreate the index from the files (keeps run history when readable).
    RebuildIndex,
}

#[derive(Args)]
struct PruneArgs {
    /// Files not used for this long (e.g. 30d, 12h).
    #[arg(long, value_name = "AGE", value_parser = units::parse_age)]
    older_than: Option<i64>,
    /// Then the least recently used until the rest fits (e.g. 500M).
    #[arg(long, value_name = "SIZE", value_parser = units::parse_size)]
    max_size: Option<u64>,
    /// Files whose module changed or is gone, and corrupt files.
    #[arg(long)]
    stale: bool,
    /// Files of other runtime or format versions.
    #[arg(long)]
    other_versions: bool,
    /// Files of this module (repeatable).
    #[arg(long, value_name = "PATH")]
    module: Vec<String>,
    /// Every cache file.
    #[arg(long)]
    all: bool,
    /// Print what would go, delete nothing.
    #[arg(long)]
    dry_run: bool,
}

fn parse_offset(s: &str) -> std::result::Result<u64, String> {
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.parse(),
    };
    r.map_err(|_| format!("bad offset '{s}' (decimal or 0x hex)"))
}

/// A failure: its one line, and the exit status.
struct Fail(String);

type Result<T> = std::result::Result<T, Fail>;

fn fail<T>(msg: impl std::fmt::Display) -> Result<T> {
    Err(Fail(msg.to_string()))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(code) => code,
        Err(Fail(msg)) => {
            eprintln!("cachetool: {msg}");
            ExitCode::from(1)
        }
    }
}

fn cache_dir(cli: &Cli) -> Result<PathBuf> {
    if let Some(d) = &cli.dir {
        return Ok(d.clone());
    }
    let base = cli.persist_dir.clone().or_else(cachetool::cache_dir::default_base);
    match base {
        Some(b) => Ok(cachetool::cache_dir::user_dir(&b)),
        None => fail("no cache directory (set HOME, or give --dir)"),
    }
}

fn existing_dir(dir: &Path) -> Result<()> {
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
fn open_index(dir: &Path) -> Result<Index> {
    match Index::open_or_rebuild(dir) {
        Ok((ix, None)) => Ok(ix),
        Ok((ix, Some(why))) => {
            eprintln!("cachetool: the index was corrupt ({why}); rebuilt it from the files (the old one is index.sqlite.corrupt)");
            Ok(ix)
        }
        Err(e) => fail(format_args!("{}: {e}", dir.join(cachetool::INDEX_FILE).display())),
    }
}

fn progress(len: u64, what: &str, quiet: bool) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() || len < 2 {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    pb.set_style(ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len}").unwrap().progress_chars("=> "));
    pb.set_message(what.to_string());
    pb
}

/// The index synced with the files, every entry and its status.
fn entries(dir: &Path, quiet: bool) -> Result<(Index, Vec<FileEntry>, Vec<Status>, Modules)> {
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

fn run(cli: &Cli) -> Result<ExitCode> {
    let dir = cache_dir(cli)?;
    match &cli.command {
        Command::List => list(&dir, cli.json),
        Command::Inspect { what, blocks, disasm } => inspect(&dir, what, *blocks, *disasm, cli.json),
        Command::Verify => verify(&dir, cli.json),
        Command::Prune(args) => prune_cmd(&dir, args, cli.json),
        Command::Stats => stats(&dir, cli.json),
        Command::Export { bundle, module } => export(&dir, bundle, module, cli.json),
        Command::Import { bundle, replace } => import(&dir, bundle, *replace, cli.json),
        Command::RebuildIndex => rebuild(&dir, cli.json),
    }
}

fn list(dir: &Path, as_json: bool) -> Result<ExitCode> {
    let (_ix, entries, statuses, _) = entries(dir, as_json)?;
    let now = cachetool::now();
    if as_json {
        let rows: Vec<_> = entries
            .iter()
            .zip(&statuses)
            .map(|(e, s)| serde_json::json!({ "file": e, "status": s.name(), "status_detail": s.describe() }))
            .collect();
        json(&rows);
        return Ok(ExitCode::SUCCESS);
    }
    if entries.is_empty() {
        let uid = cachetool::cache_dir::uid().to_string();
        if dir.join(&uid).is_dir() {
            println!("no cache files in {} (its {uid}/ looks like the per-user directory: --dir {})", dir.display(), dir.join(&uid).display());
        } else {
            println!("no cache files in {}", dir.display());
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = Table::new(&["MODULE", "KEY", "BLOCKS", "SIZE", "LAST USED", "STATUS", "FILE"]);
    for (e, s) in entries.iter().zip(&statuses) {
        t.row(vec![
            e.module().to_string(),
            e.key_summary(),
            e.blocks.to_string(),
            units::human_size(e.file_size),
            units::human_age(e.last_used, now),
            s.describe(),
            e.name.clone(),
        ]);
    }
    t.print();
    Ok(ExitCode::SUCCESS)
}

fn inspect(dir: &Path, what: &str, blocks: bool, disasm: Option<u64>, as_json: bool) -> Result<ExitCode> {
    let (entries, mut modules) = if dir.is_dir() {
        let (_ix, entries, _, modules) = entries(dir, true)?;
        (entries, modules)
    } else {
        (Vec::new(), Modules::default())
    };
    let files = cachetool::inspect::resolve(dir, what, &entries);
    if files.is_empty() {
        return fail(format_args!("{what}: no such cache file, and no cache file of such a module in {}", dir.display()));
    }
    let mut out = Vec::new();
    for (i, path) in files.iter().enumerate() {
        let opened = Opened::open(path).map_err(Fail)?;
        let ins = opened.inspection();
        let meta = std::fs::metadata(path).map_err(|e| Fail(format!("{}: {e}", path.display())))?;
        let mut entry = FileEntry::from_read(&path.file_name().unwrap_or_default().to_string_lossy(), cachetool::module_file::Identity::of(&meta), &Ok(ins.summary.clone()));
        entry.ownership = cache_file::ownership_problem(&meta);
        let mut status = entry.status(&mut modules);
        if !ins.checksums_ok {
            status = Status::Corrupt("zone checksum".into());
        }
        let block_list = blocks.then(|| opened.blocks());
        let dis = match disasm {
            Some(off) => Some(opened.disasm(off).map_err(Fail)?),
            None => None,
        };
        if as_json {
            out.push(serde_json::json!({ "inspection": ins, "status": status.name(), "status_detail": status.describe(), "blocks": block_list, "disasm": dis }));
            continue;
        }
        if i > 0 {
            println!();
        }
        output::print_inspection(&ins, &status);
        if let Some(b) = &block_list {
            output::print_blocks(b);
        }
        if let Some(d) = &dis {
            output::print_disasm(d);
        }
    }
    if as_json {
        json(&out);
    }
    Ok(ExitCode::SUCCESS)
}

fn verify(dir: &Path, as_json: bool) -> Result<ExitCode> {
    existing_dir(dir)?;
    let mut ix = open_index(dir)?;
    let mut modules = Modules::default();
    // Sync first: the index learns of new files and known module hashes.
    let _ = ix.sync(&mut modules, &|_| {});
    let names = cache_file::names_in(dir).map_err(|e| Fail(format!("{}: {e}", dir.display())))?;
    let pb = progress(names.len() as u64, "verifying", as_json);
    let mut rows = Vec::new();
    let mut problems = 0;
    for name in &names {
        pb.inc(1);
        let path = dir.join(name);
        let (bytes, id) = match cache_file::read_all(&path) {
            Ok(x) => x,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                problems += 1;
                rows.push((name.clone(), "?".to_string(), Status::Corrupt(e.to_string())));
                continue;
            }
        };
        let summary = cache_file::summarize(bytes.bytes(), persist::Depth::Full);
        let mut e = FileEntry::from_read(name, id, &summary);
        e.ownership = std::fs::symlink_metadata(&path).ok().and_then(|m| cache_file::ownership_problem(&m));
        let s = e.status(&mut modules);
        if s != Status::Valid {
            problems += 1;
        }
        rows.push((name.clone(), e.module().to_string(), s));
    }
    pb.finish_and_clear();
    let _ = ix.learn(&modules);
    if as_json {
        let files: Vec<_> = rows
            .iter()
            .map(|(n, m, s)| serde_json::json!({ "file": n, "module": m, "status": s.name(), "detail": s.describe() }))
            .collect();
        json(&serde_json::json!({ "files": files, "problems": problems }));
    } else {
        for (name, module, s) in &rows {
            let line = match s {
                Status::Valid => continue,
                Status::Stale => format!("stale: module {module} changed since the file was written"),
                Status::Orphan => format!("orphan: module {module} no longer exists"),
                other => other.describe(),
            };
            println!("{name}: {line}");
        }
        if problems == 0 {
            println!("verified {} cache files: all valid", rows.len());
        } else {
            println!("verified {} cache files: {problems} with problems", rows.len());
        }
    }
    Ok(if problems == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn prune_cmd(dir: &Path, a: &PruneArgs, as_json: bool) -> Result<ExitCode> {
    let policy = prune::Policy {
        older_than: a.older_than,
        max_size: a.max_size,
        stale: a.stale,
        other_versions: a.other_versions,
        modules: a.module.clone(),
        all: a.all,
    };
    if policy.is_empty() {
        eprintln!("cachetool: prune: say what to prune (--older-than, --max-size, --stale, --other-versions, --module or --all)");
        return Ok(ExitCode::from(2));
    }
    let (mut ix, entries, statuses, _) = entries(dir, as_json)?;
    let choices = prune::select(&entries, &statuses, &policy, cachetool::now());
    let kept_size: u64 = entries.iter().map(|e| e.file_size).sum::<u64>() - choices.iter().map(|c| c.size).sum::<u64>();
    if a.dry_run {
        if as_json {
            json(&serde_json::json!({ "dry_run": true, "would_remove": choices, "would_keep_bytes": kept_size }));
        } else {
            for c in &choices {
                println!("would remove {} ({}, {}): {}", c.name, c.module, units::human_size(c.size), c.reason);
            }
            println!(
                "would remove {} files ({}), keeping {}",
                choices.len(),
                units::human_size(choices.iter().map(|c| c.size).sum()),
                units::human_size(kept_size)
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let done = prune::remove(&mut ix, &choices).map_err(|e| Fail(format!("{}: {e}", dir.display())))?;
    let removed: Vec<_> = done.iter().filter(|(_, o)| *o == prune::Outcome::Removed).collect();
    let freed: u64 = removed.iter().map(|(c, _)| c.size).sum();
    let failed = done.iter().any(|(_, o)| matches!(o, prune::Outcome::Failed(_)));
    if as_json {
        let rows: Vec<_> = done.iter().map(|(c, o)| serde_json::json!({ "file": c, "outcome": o })).collect();
        json(&serde_json::json!({ "results": rows, "removed": removed.len(), "freed_bytes": freed }));
    } else {
        for (c, o) in &done {
            match o {
                prune::Outcome::Removed => println!("removed {} ({}, {}): {}", c.name, c.module, units::human_size(c.size), c.reason),
                prune::Outcome::Busy => println!("skipped {}: being written by another process", c.name),
                prune::Outcome::Changed => println!("skipped {}: changed since it was chosen", c.name),
                prune::Outcome::Failed(e) => println!("failed {}: {e}", c.name),
            }
        }
        println!("removed {} files ({})", removed.len(), units::human_size(freed));
    }
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

fn stats(dir: &Path, as_json: bool) -> Result<ExitCode> {
    let (ix, _, _, _) = entries(dir, as_json)?;
    let s = ix.stats().map_err(|e| Fail(format!("{}: {e}", dir.display())))?;
    if as_json {
        json(&s);
        return Ok(ExitCode::SUCCESS);
    }
    let pct = |r: Option<f64>| r.map_or("-".to_string(), |r| format!("{:.1}%", r * 100.0));
    println!("runs recorded:   {}", s.runs);
    println!("blocks loaded:   {}", s.blocks_loaded);
    println!("blocks built:    {}", s.blocks_built);
    println!("hit rate:        {:>6}  {}", pct(s.hit_rate), bar(s.hit_rate.unwrap_or(0.0), 30));
    println!("files loaded:    {} (rejected {}, written {})", s.files_loaded, s.files_rejected, s.files_written);
    println!("cache files:     {} ({})", s.cache_files, units::human_size(s.total_size));
    if !s.modules.is_empty() {
        println!();
        println!("per module (blocks in the files runs used, against blocks runs added to them):");
        let mut t = Table::new(&["MODULE", "RUNS", "USED", "WRITTEN", "CACHED", "BUILT", "HIT RATE", ""]);
        for m in &s.modules {
            t.row(vec![
                m.module.clone(),
                m.runs.to_string(),
                m.uses.to_string(),
                m.writes.to_string(),
                m.blocks_cached.to_string(),
                m.blocks_built.to_string(),
                pct(m.hit_rate),
                bar(m.hit_rate.unwrap_or(0.0), 20),
            ]);
        }
        t.print();
    }
    Ok(ExitCode::SUCCESS)
}

fn export(dir: &Path, out: &Path, modules_wanted: &[String], as_json: bool) -> Result<ExitCode> {
    let (_ix, entries, statuses, _) = entries(dir, as_json)?;
    let canon: Vec<Option<PathBuf>> = modules_wanted.iter().map(|m| std::fs::canonicalize(m).ok()).collect();
    let wanted = |e: &FileEntry| {
        modules_wanted.is_empty()
            || e.module_path.as_deref().is_some_and(|p| {
                modules_wanted.iter().zip(&canon).any(|(m, c)| p == m || c.as_deref() == Some(Path::new(p)))
            })
    };
    let mut names = Vec::new();
    let mut skipped = Vec::new();
    for (e, s) in entries.iter().zip(&statuses) {
        if !wanted(e) {
            continue;
        }
        if *s == Status::Valid {
            names.push(e.name.clone());
        } else {
            skipped.push((e.name.clone(), s.describe()));
        }
    }
    if names.is_empty() && !modules_wanted.is_empty() && skipped.is_empty() {
        return fail(format_args!("no cache files of {} in {}", modules_wanted.join(", "), dir.display()));
    }
    let pb = progress(names.len() as u64, "exporting", as_json);
    let mut report = bundle::export(dir, &names, out, &|| pb.inc(1)).map_err(Fail)?;
    pb.finish_and_clear();
    skipped.append(&mut report.skipped);
    report.skipped = skipped;
    if as_json {
        json(&report);
    } else {
        for (n, why) in &report.skipped {
            println!("skipped {n}: {why}");
        }
        println!("exported {} files ({}) to {}", report.taken.len(), units::human_size(report.bytes), out.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn import(dir: &Path, path: &Path, replace: bool, as_json: bool) -> Result<ExitCode> {
    if !path.is_file() {
        return fail(format_args!("{}: no such bundle", path.display()));
    }
    let total = bundle::read_manifest(path).map(|m| m.files.len() as u64).unwrap_or(0);
    let pb = progress(total, "importing", as_json);
    let (report, err) = bundle::import(dir, path, replace, &|k| pb.inc(k));
    pb.finish_and_clear();
    if !report.taken.is_empty() {
        // The index learns of the new files (the files stay the truth if it cannot).
        if let Ok((mut ix, _)) = Index::open_or_rebuild(dir) {
            let _ = ix.sync(&mut Modules::default(), &|_| {});
        }
    }
    if as_json {
        json(&serde_json::json!({ "report": report, "error": err.as_ref().map(|e| e.to_string()) }));
    } else {
        for (n, m) in &report.taken {
            println!("took {n} ({m})");
        }
        for (n, why) in &report.skipped {
            println!("skipped {n}: {why}");
        }
        if err.is_none() {
            println!("imported {} files ({}), skipped {}", report.taken.len(), units::human_size(report.bytes), report.skipped.len());
        }
    }
    match err {
        None => Ok(ExitCode::SUCCESS),
        Some(e) => fail(e),
    }
}

fn rebuild(dir: &Path, as_json: bool) -> Result<ExitCode> {
    existing_dir(dir)?;
    let (ix, why) = Index::rebuild(dir).map_err(|e| Fail(format!("{}: {e}", dir.display())))?;
    let files = ix.entries().map_err(|e| Fail(e.to_string()))?.len();
    let runs = ix.run_count().unwrap_or(0);
    if as_json {
        json(&serde_json::json!({ "cache_files": files, "runs_kept": runs, "was_corrupt": why }));
    } else {
        if let Some(why) = why {
            println!("the old index was corrupt ({why}); set aside as index.sqlite.corrupt");
        }
        println!("rebuilt the index from {files} cache files ({runs} recorded runs kept)");
    }
    Ok(ExitCode::SUCCESS)
}
