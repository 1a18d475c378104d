//! `aot PROGRAM...`: fills the directory's cache for each program ahead
//! of time (`dbirun -persist -aot -- PROGRAM`, from beside this cachetool;
//! docs/aot.md): the program and the libraries it loads are translated
//! without running it, so its first run is warm. With `--client`, the
//! blocks carry that client's instrumentation, for runs with that client.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use crate::output::json;
use crate::session::{fail, progress, Fail, Result};

/// dbirun's -persist_dir for the per-user directory `dir` (`BASE/<uid>`).
fn base_of(dir: &Path) -> Result<&Path> {
    let uid = unsafe { libc::getuid() }.to_string();
    match (dir.file_name(), dir.parent()) {
        (Some(name), Some(base)) if name == uid.as_str() => Ok(base),
        _ => fail(format_args!("{}: not a per-user cache directory (BASE/{uid}); give --persist-dir BASE", dir.display())),
    }
}

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

pub fn run(dir: &Path, clients: &[String], programs: &[PathBuf], as_json: bool) -> Result<ExitCode> {
    let dbirun = cachetool::beside_this_program("dbirun").map_err(Fail)?;
    let base = base_of(dir)?;
    let clients = client_arguments(clients)?;
    let bar = progress(programs.len() as u64, "translating", as_json);
    let mut results = Vec::new();
    let mut failed = 0;
    for program in programs {
        let started = std::time::Instant::now();
        // The server, if one runs, merges what is handed over; file mode
        // keeps the command's end the end of the work.
        let out = Command::new(&dbirun)
            .args(["-persist", "-no_persist_server", "-aot", "-persist_dir"])
            .arg(base)
            .args(&clients)
            .arg("--")
            .arg(program)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| Fail(format!("running dbirun: {e}")))?;
        let ok = out.status.success();
        if !ok {
            failed += 1;
            let why = String::from_utf8_lossy(&out.stderr);
            eprintln!("cachetool: aot {}: {}", program.display(), why.lines().last().unwrap_or("failed"));
        }
        results.push(serde_json::json!({
            "program": program.display().to_string(),
            "ok": ok,
            "seconds": started.elapsed().as_secs_f64(),
        }));
        if !as_json && ok {
            bar.suspend(|| println!("{}: translated in {:.2} s", program.display(), started.elapsed().as_secs_f64()));
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    if as_json {
        json(&serde_json::Value::Array(results));
    }
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
