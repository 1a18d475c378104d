//! `aot --from-index`: translates again every module the directory's
//! files know, for each configuration they were built with
//! (`cachetool::history`), seeded with the blocks they hold: one dbirun
//! per configuration, with `-aot_seeds` naming the modules (those its
//! stand-in program, this cachetool, does not load are mapped for it).
//!
//! `aot PROGRAM|LIBRARY...`: fills the directory's cache for each program ahead
//! of time (`dbirun -persist -aot -- PROGRAM`, from beside this cachetool;
//! docs/aot.md): the program and the libraries it loads are translated
//! without running it, so its first run is warm; a library named alone
//! is translated as `--from-index` translates. With `--client`, the
//! blocks carry that client's instrumentation, for runs with that client.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use cachetool::aot_runner::{base_of, translate, translate_seeded};
use cachetool::history;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::output::json;
use crate::session::{existing_dir, fail, open_index, Fail, Result};

/// dbirun's arguments for `--client 'NAME [OPTIONS]'` values.
fn client_arguments(clients: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for c in clients {
        let mut words = c.split_whitespace();
        let Some(name) = words.next() else { return fail("--client needs a client's name") };
        out.push("-c".to_string());
        out.push(name.to_string());
        out.extend(words.map(String::from));
    }
    Ok(out)
}

/// A bar of `len` steps on a terminal (shown for one step too: one
/// program can take a minute), hidden otherwise.
fn bar(len: u64, quiet: bool) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    bar.set_style(ProgressStyle::with_template("[{bar:20}] {pos}/{len} {msg}").unwrap().progress_chars("=> "));
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}

/// The end of a command: its bar cleared, its results printed with
/// `--json`, status 1 if any translation failed.
fn finish(bar: &ProgressBar, results: Vec<serde_json::Value>, failed: usize, as_json: bool) -> ExitCode {
    bar.finish_and_clear();
    if as_json {
        json(&serde_json::Value::Array(results));
    }
    if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) }
}

pub fn run(dir: &Path, clients: &[String], programs: &[PathBuf], as_json: bool) -> Result<ExitCode> {
    let dbirun = cachetool::beside_this_program("dbirun").map_err(Fail)?;
    let base = base_of(dir).map_err(Fail)?;
    let clients = client_arguments(clients)?;
    let bar = bar(programs.len() as u64, as_json);
    let mut results = Vec::new();
    let mut failed = 0;
    for program in programs {
        let started = std::time::Instant::now();
        bar.set_message(program.display().to_string());
        let out = if cachetool::module_file::is_library(program) {
            // A library alone: mapped by the runtime for a stand-in
            // program, as `--from-index` has it.
            let real = std::fs::canonicalize(program).map_err(|e| Fail(format!("{}: {e}", program.display())))?;
            let mut modules = history::Modules::new();
            modules.insert(real.display().to_string(), Default::default());
            translate_seeded(&dbirun, dir, &history::seed_file(&modules), &clients, None, &bar).map_err(Fail)?
        } else {
            translate(&dbirun, base, &clients, program, &bar).map_err(Fail)?
        };
        if !out.ok {
            failed += 1;
            bar.suspend(|| eprintln!("cachetool: aot {}: {}", program.display(), out.why()));
        }
        results.push(serde_json::json!({
            "program": program.display().to_string(),
            "ok": out.ok,
            "seconds": started.elapsed().as_secs_f64(),
        }));
        if !as_json && out.ok {
            bar.suspend(|| println!("{}: translated in {:.2} s", program.display(), started.elapsed().as_secs_f64()));
        }
        bar.inc(1);
    }
    Ok(finish(&bar, results, failed, as_json))
}

pub fn from_index(dir: &Path, as_json: bool) -> Result<ExitCode> {
    existing_dir(dir)?;
    let dbirun = cachetool::beside_this_program("dbirun").map_err(Fail)?;
    base_of(dir).map_err(Fail)?;
    let ix = open_index(dir)?;
    // The index remembers the module of a file this build cannot read.
    let known: HashMap<String, String> =
        ix.entries().unwrap_or_default().into_iter().filter_map(|e| Some((e.name.clone(), e.module_path.clone()?))).collect();
    drop(ix);
    let history = history::read(dir, &|name| known.get(name).cloned()).map_err(|e| Fail(format!("{}: {e}", dir.display())))?;
    for (name, why) in &history.skipped {
        eprintln!("cachetool: aot --from-index: {name}: skipped ({why}; its module is not known)");
    }
    if history.configurations.is_empty() {
        return fail(format_args!("{}: no cache files to translate from", dir.display()));
    }
    let bar = bar(history.configurations.len() as u64, as_json);
    let mut results = Vec::new();
    let mut failed = 0;
    for (options, modules) in &history.configurations {
        let started = std::time::Instant::now();
        let shown = if options.is_empty() { "no clients".to_string() } else { options.join(" ") };
        bar.set_message(shown.clone());
        let out = translate_seeded(&dbirun, dir, &history::seed_file(modules), options, None, &bar).map_err(Fail)?;
        let ok = out.ok;
        let seeded: usize = modules.values().map(|o| o.len()).sum();
        if !ok {
            failed += 1;
            bar.suspend(|| eprintln!("cachetool: aot --from-index ({shown}): {}", out.why()));
        } else if !as_json {
            bar.suspend(|| {
                println!("{shown}: {} modules from {seeded} blocks of earlier runs, translated in {:.2} s", modules.len(), started.elapsed().as_secs_f64())
            });
        }
        results.push(serde_json::json!({
            "options": options,
            "modules": modules.keys().collect::<Vec<_>>(),
            "seeded_blocks": seeded,
            "ok": ok,
            "seconds": started.elapsed().as_secs_f64(),
        }));
        bar.inc(1);
    }
    Ok(finish(&bar, results, failed, as_json))
}
