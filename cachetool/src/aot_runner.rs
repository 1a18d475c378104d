//! Running `dbirun -persist -aot` for cachetool: for a program (its
//! modules translated as its start-up loads them), or seeded
//! (`-aot_seeds`: the modules a seed file names, mapped for a stand-in
//! program, this executable, when it does not load them). Used by
//! `aot`, `aot --from-index` and the deep check.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use indicatif::ProgressBar;

/// What one dbirun said: its status and its stderr lines, progress aside.
pub struct Translated {
    pub ok: bool,
    pub said: Vec<String>,
}

impl Translated {
    pub fn why(&self) -> &str {
        self.said.last().map_or("failed", String::as_str)
    }
}

/// dbirun's -persist_dir for the per-user directory `dir` (`BASE/<uid>`).
pub fn base_of(dir: &Path) -> Result<&Path, String> {
    // SAFETY: getuid has no preconditions.
    let uid = unsafe { libc::getuid() }.to_string();
    match (dir.file_name(), dir.parent()) {
        (Some(name), Some(base)) if name == uid.as_str() => Ok(base),
        _ => Err(format!("{}: not a per-user cache directory (BASE/{uid}); give --persist-dir BASE", dir.display())),
    }
}

/// `dbirun -persist -aot ARGS -- PROGRAM` into the cache under `base`,
/// its progress (a line per 16,384 blocks of a module) shown on `bar`.
pub fn translate(dbirun: &Path, base: &Path, args: &[String], program: &Path, bar: &ProgressBar) -> Result<Translated, String> {
    translate_in(Command::new(dbirun), base, args, program, bar)
}

/// [`translate`] with the dbirun `command` given (its directory, its
/// environment).
fn translate_in(mut command: Command, base: &Path, args: &[String], program: &Path, bar: &ProgressBar) -> Result<Translated, String> {
    // The server, if one runs, merges what is handed over; file mode
    // keeps the command's end the end of the work.
    let mut child = command
        .args(["-persist", "-no_persist_server", "-aot", "-aot_progress", "-persist_dir"])
        .arg(base)
        .args(args)
        .arg("--")
        .arg(program)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("running dbirun: {e}"))?;
    let mut said = Vec::new();
    let stderr = child.stderr.take().expect("piped");
    for line in BufReader::new(stderr).lines() {
        let Ok(line) = line else { break };
        match line.strip_prefix("dbirun: aot: progress: ") {
            Some(progress) => bar.set_message(format!("{}: {progress}", program.display())),
            None => said.push(line),
        }
    }
    let status = child.wait().map_err(|e| format!("waiting for dbirun: {e}"))?;
    Ok(Translated { ok: status.success(), said })
}

/// `dbirun -persist -aot -aot_seeds FILE OPTIONS -- <this program>` into
/// the cache `dir`: the modules the seed file's text `seeds`
/// (`history::seed_file`) names alone are translated, each from its
/// seeded offsets plus static discovery, then its seeded traces. With
/// `cwd`, dbirun runs there (where clients write their files).
pub fn translate_seeded(dbirun: &Path, dir: &Path, seeds: &str, options: &[String], cwd: Option<&Path>, bar: &ProgressBar) -> Result<Translated, String> {
    let base = base_of(dir)?;
    let host = std::env::current_exe().map_err(|e| format!("this program's path: {e}"))?;
    let seed_file = crate::cache_dir::temp_beside(&std::env::temp_dir().join("cachetool-aot-seeds"));
    std::fs::write(&seed_file, seeds).map_err(|e| format!("{}: {e}", seed_file.display()))?;
    let mut args = vec!["-aot_seeds".to_string(), seed_file.display().to_string()];
    args.extend(options.iter().cloned());
    let mut command = Command::new(dbirun);
    if let Some(cwd) = cwd {
        command.current_dir(cwd);
    }
    let out = translate_in(command, base, &args, &host, bar);
    let _ = std::fs::remove_file(&seed_file);
    out
}
