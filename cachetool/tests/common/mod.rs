//! What the cachetool tests share: a cache directory of their own filled by
//! real `dbirun -persist` runs, the `cachetool` binary, the index.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use tempfile::TempDir;

pub fn dbirun_path() -> PathBuf {
    if let Some(p) = std::env::var_os("DBIRUN") {
        return PathBuf::from(p);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
    let p = target.join("release/dbirun");
    assert!(p.is_file(), "{} is missing: run `cargo build --release` first", p.display());
    p
}

/// A cache base directory (dbirun's -persist_dir) and its per-user directory.
pub struct Cache {
    pub _tmp: TempDir,
    pub base: PathBuf,
}

impl Cache {
    pub fn new() -> Cache {
        let tmp = TempDir::new().unwrap();
        let base = tmp.path().join("cache");
        Cache { _tmp: tmp, base }
    }

    pub fn dir(&self) -> PathBuf {
        self.base.join(unsafe { libc::getuid() }.to_string())
    }

    /// `dbirun -persist -persist_dir BASE OPTIONS -- PROGRAM ARGS`.
    pub fn run(&self, options: &[&str], program: &str, args: &[&str]) -> Output {
        let out = Command::new(dbirun_path())
            .arg("-persist")
            .arg("-persist_dir")
            .arg(&self.base)
            .args(options)
            .arg("--")
            .arg(program)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        out
    }

    /// A run that must succeed.
    pub fn run_ok(&self, options: &[&str], program: &str, args: &[&str]) -> Output {
        let out = self.run(options, program, args);
        assert!(out.status.success(), "dbirun {options:?} -- {program} {args:?}: {:?}\n{}", out.status, text(&out.stderr));
        out
    }

    /// `cachetool --dir DIR ARGS`.
    pub fn tool(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_cachetool")).arg("--dir").arg(self.dir()).args(args).stdin(Stdio::null()).output().unwrap()
    }

    /// `cachetool --dir DIR ARGS` that must exit 0; its stdout.
    pub fn tool_ok(&self, args: &[&str]) -> String {
        let out = self.tool(args);
        assert!(out.status.success(), "cachetool {args:?}: {:?}\nstdout:\n{}\nstderr:\n{}", out.status, text(&out.stdout), text(&out.stderr));
        text(&out.stdout)
    }

    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        serde_json::from_str(&self.tool_ok(&all)).expect("cachetool --json prints JSON")
    }

    pub fn db(&self) -> rusqlite::Connection {
        let c = rusqlite::Connection::open(self.dir().join("index.sqlite")).unwrap();
        c.busy_timeout(std::time::Duration::from_secs(30)).unwrap();
        c
    }

    pub fn count(&self, sql: &str) -> i64 {
        self.db().query_row(sql, [], |r| r.get(0)).unwrap()
    }

    /// The cache file names in the per-user directory.
    pub fn files(&self) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(self.dir())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".dpc"))
            .collect();
        v.sort();
        v
    }

    /// The cache file of the module whose file name is `module`.
    pub fn file_of(&self, module: &str) -> String {
        let found: Vec<String> = self.files().into_iter().filter(|f| f.starts_with(&format!("{module}-"))).collect();
        assert_eq!(found.len(), 1, "cache files of {module}: {found:?} (all: {:?})", self.files());
        found.into_iter().next().unwrap()
    }
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A `-stats` counter summed over every process (`  name: N`).
pub fn stat(stderr: &[u8], name: &str) -> u64 {
    text(stderr)
        .lines()
        .filter_map(|l| l.strip_prefix("  ")?.strip_prefix(name)?.strip_prefix(':')?.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// The list rows, by module path.
pub fn list_rows(c: &Cache) -> Vec<(String, String, String)> {
    c.json(&["list"])
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["file"]["module_path"].as_str().unwrap_or("?").to_string(),
                r["status"].as_str().unwrap().to_string(),
                r["file"]["name"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

pub fn status_of(c: &Cache, name: &str) -> String {
    list_rows(c).into_iter().find(|r| r.2 == name).map(|r| r.1).unwrap_or_else(|| panic!("{name} not listed"))
}

/// A C program `name` printing `value`, compiled into `tmp`, and a fresh
/// cache directory filled by one run of it (its output checked).
pub fn program_cached(tmp: &Path, name: &str, value: u32) -> (PathBuf, Cache) {
    let prog = tmp.join(name);
    compile(tmp, &prog, value);
    let c = Cache::new();
    let out = c.run_ok(&[], prog.to_str().unwrap(), &[]);
    assert_eq!(text(&out.stdout), format!("{value}\n"));
    (prog, c)
}

/// Compiles a C program printing `value` to `out`.
pub fn compile(dir: &Path, out: &Path, value: u32) {
    let src = dir.join(format!("prog{value}.c"));
    fs::write(&src, format!("#include <stdio.h>\nint main(void) {{ printf(\"%d\\n\", {value}); return 0; }}\n")).unwrap();
    let tmp = out.with_extension("new");
    let st = Command::new("gcc").arg("-O1").arg("-o").arg(&tmp).arg(&src).status().expect("gcc");
    assert!(st.success(), "gcc failed");
    // Replaced like a build does: a new file in place of the old.
    fs::rename(&tmp, out).unwrap();
}

/// The cache files in `dir` whose lock file does not vouch for the
/// version on disk (its memo names another identity, or none).
pub fn not_vouched(dir: &Path) -> Vec<String> {
    let mut names = Vec::new();
    for e in fs::read_dir(dir).unwrap().flatten() {
        let name = e.file_name().into_string().unwrap();
        if name.ends_with(".dpc") {
            let memo = fs::read(dir.join(format!("{name}.lock"))).unwrap_or_default();
            let id = persist::file_identity::FileIdentity::of(&e.metadata().unwrap());
            if memo.get(..48) != Some(&persist::file_identity::verified_memo(id)[..]) {
                names.push(name);
            }
        }
    }
    names.sort();
    names
}
