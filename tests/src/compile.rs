//! Building the corpus with the machine's gcc/g++ in several variants.
//!
//! Linking modes ([`Variant`]) × optimisation levels ([`Opt`]) make a
//! [`Build`]. Outputs are cached per test process in one temporary directory
//! (removed at process exit unless `DBI_TESTS_KEEP=1`), so each
//! program × build is compiled once per test binary however many tests use it.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};

/// How a program is linked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Variant {
    /// `-static`: no interpreter, fixed address.
    Static,
    /// `-static-pie -fPIE`: no interpreter, self-relocating, random base.
    StaticPie,
    /// `-fPIE -pie`: dynamic, position independent (the distribution default).
    Pie,
    /// `-fno-pie -no-pie`: dynamic, fixed address.
    NoPie,
}

impl Variant {
    pub const ALL: [Variant; 4] = [
        Variant::Static,
        Variant::StaticPie,
        Variant::Pie,
        Variant::NoPie,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Variant::Static => "static",
            Variant::StaticPie => "static-pie",
            Variant::Pie => "pie",
            Variant::NoPie => "no-pie",
        }
    }

    /// Compiler and linker flags for this linking mode and language.
    pub fn flags(self, lang: Lang) -> &'static [&'static str] {
        match (self, lang) {
            // C++: link libstdc++ and libgcc statically as well.
            (Variant::Static, Lang::Cxx) => &["-static", "-static-libstdc++", "-static-libgcc"],
            (Variant::Static, _) => &["-static"],
            // Not -static-libstdc++ here: with GCC 12 it wraps libstdc++ in
            // -Bstatic/-Bdynamic, which makes the rest (libc) dynamic again and
            // yields a PIE that needs libc.so.6 but has no interpreter.
            // -static-pie alone already links everything statically.
            (Variant::StaticPie, _) => &["-static-pie", "-fPIE"],
            (Variant::Pie, _) => &["-fPIE", "-pie"],
            (Variant::NoPie, _) => &["-fno-pie", "-no-pie"],
        }
    }

    pub fn is_static(self) -> bool {
        matches!(self, Variant::Static | Variant::StaticPie)
    }
}

/// Optimisation level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Opt {
    O0,
    O2,
}

impl Opt {
    pub const ALL: [Opt; 2] = [Opt::O0, Opt::O2];
    pub fn flag(self) -> &'static str {
        match self {
            Opt::O0 => "-O0",
            Opt::O2 => "-O2",
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Opt::O0 => "O0",
            Opt::O2 => "O2",
        }
    }
}

/// One way of building a program: linking mode and optimisation level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Build {
    pub variant: Variant,
    pub opt: Opt,
}

impl Build {
    pub const fn new(variant: Variant, opt: Opt) -> Self {
        Build { variant, opt }
    }

    /// Every linking mode at -O0 and -O2.
    pub const ALL: [Build; 8] = [
        Build::new(Variant::Static, Opt::O0),
        Build::new(Variant::Static, Opt::O2),
        Build::new(Variant::StaticPie, Opt::O0),
        Build::new(Variant::StaticPie, Opt::O2),
        Build::new(Variant::Pie, Opt::O0),
        Build::new(Variant::Pie, Opt::O2),
        Build::new(Variant::NoPie, Opt::O0),
        Build::new(Variant::NoPie, Opt::O2),
    ];

    /// Assembly without libc: static and static-pie (the optimisation level
    /// does not change assembled code).
    pub const ASM: [Build; 2] = [
        Build::new(Variant::Static, Opt::O0),
        Build::new(Variant::StaticPie, Opt::O0),
    ];
}

impl fmt::Display for Build {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.variant.name(), self.opt.name())
    }
}

/// Source language, from the file extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    C,
    Cxx,
    Asm,
}

impl Lang {
    pub fn of(source: &Path) -> Result<Lang, String> {
        match source.extension().and_then(|e| e.to_str()) {
            Some("c") => Ok(Lang::C),
            Some("cc" | "cpp" | "cxx") => Ok(Lang::Cxx),
            Some("S" | "s") => Ok(Lang::Asm),
            _ => Err(format!(
                "{}: unknown source language (want .c, .cc or .S)",
                source.display()
            )),
        }
    }

    /// The compiler driver: `$DBI_TEST_CC` / `$DBI_TEST_CXX`, else gcc / g++.
    pub fn driver(self) -> String {
        match self {
            Lang::Cxx => std::env::var("DBI_TEST_CXX").unwrap_or_else(|_| "g++".into()),
            Lang::C | Lang::Asm => std::env::var("DBI_TEST_CC").unwrap_or_else(|_| "gcc".into()),
        }
    }
}

/// Extra flags from `dbi-cflags:` lines in the source, e.g.
/// `// dbi-cflags: -mavx2 -lm`. They go after the source file, so libraries
/// resolve.
pub fn source_cflags(source: &Path) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(source).map_err(|e| format!("{}: {e}", source.display()))?;
    let mut flags = Vec::new();
    for line in text.lines() {
        if let Some(pos) = line.find("dbi-cflags:") {
            let rest = line[pos + "dbi-cflags:".len()..]
                .trim()
                .trim_end_matches("*/");
            flags.extend(rest.split_whitespace().map(str::to_owned));
        }
    }
    Ok(flags)
}

/// The full compiler command line for `source` in `build`, writing `out`.
pub fn compile_command(
    source: &Path,
    variant: Variant,
    opt: Opt,
    out: &Path,
) -> Result<Command, String> {
    let lang = Lang::of(source)?;
    let mut cmd = Command::new(lang.driver());
    cmd.args(["-g0", "-w", opt.flag()]);
    cmd.args(variant.flags(lang));
    cmd.arg(source).arg("-o").arg(out);
    cmd.args(source_cflags(source)?);
    Ok(cmd)
}

/// Compiles `source` (.c with gcc, .cc with g++, .S with gcc) into `out`.
/// The error carries the command line and the compiler's output.
pub fn compile(source: &Path, variant: Variant, opt: Opt, out: &Path) -> Result<(), String> {
    let cmd = compile_command(source, variant, opt, out)?;
    run_compiler(cmd, out, || format!("compiling {} ({}-{})", source.display(), variant.name(), opt.name()))
}

/// Runs a compiler command that writes `out` (creating its directory); the
/// error names `what` failed and carries the command line and its output.
fn run_compiler(mut cmd: Command, out: &Path, what: impl FnOnce() -> String) -> Result<(), String> {
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let output = cmd
        .output()
        .map_err(|e| format!("cannot run {:?}: {e}", cmd.get_program()))?;
    if !output.status.success() {
        return Err(format!(
            "{} failed ({}):\n  {:?}\n{}{}",
            what(),
            output.status,
            cmd,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(())
}

type Slot = Arc<OnceLock<Result<PathBuf, String>>>;

struct Cache {
    dir: PathBuf,
    map: Mutex<HashMap<(PathBuf, Build), Slot>>,
}

static CACHE: OnceLock<Cache> = OnceLock::new();
static CACHE_DIR: OnceLock<PathBuf> = OnceLock::new();

extern "C" fn remove_cache_dir() {
    if let Some(dir) = CACHE_DIR.get() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

fn cache() -> &'static Cache {
    CACHE.get_or_init(|| {
        let dir = crate::temp_dir("build").keep();
        if std::env::var_os("DBI_TESTS_KEEP").is_none() {
            let _ = CACHE_DIR.set(dir.clone());
            // Statics are never dropped: remove the directory when the test
            // binary exits (the test harness ends with exit()).
            unsafe {
                libc::atexit(remove_cache_dir);
            }
        } else {
            eprintln!("dbi-tests: keeping compiled programs in {}", dir.display());
        }
        Cache {
            dir,
            map: Mutex::new(HashMap::new()),
        }
    })
}

/// The compiled program for `source` in `build`, compiling it on first use
/// (once per test process; concurrent callers wait for the same compile).
/// Each build gets its own directory and the output keeps the source's stem
/// as its name, so `argv[0]`'s basename is the same in every build.
pub fn compiled(source: &Path, build: Build) -> Result<PathBuf, String> {
    let cache = cache();
    let key = (source.to_path_buf(), build);
    let slot: Slot = cache
        .map
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(key)
        .or_default()
        .clone();
    slot.get_or_init(|| {
        let stem = source
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("program");
        let ext = source.extension().and_then(|s| s.to_str()).unwrap_or("");
        let out = cache
            .dir
            .join(format!("{stem}.{ext}"))
            .join(build.to_string())
            .join(stem);
        compile(source, build.variant, build.opt, &out).map(|()| out)
    })
    .clone()
}

/// Builds `source` (C) as a shared library `out` with
/// `gcc -g0 -w -O2 -shared -fPIC`, then `extra` (e.g. `-DVARIANT=2`) and the
/// source's `dbi-cflags:`. Not cached: callers build into the directory of
/// the run that loads it. The error carries the command line and the
/// compiler's output.
pub fn compile_shared(source: &Path, out: &Path, extra: &[&str]) -> Result<(), String> {
    let mut cmd = Command::new(Lang::of(source)?.driver());
    cmd.args(["-g0", "-w", "-O2", "-shared", "-fPIC"])
        .args(extra)
        .arg(source)
        .arg("-o")
        .arg(out)
        .args(source_cflags(source)?);
    run_compiler(cmd, out, || {
        format!("building the shared library {} from {}", out.display(), source.display())
    })
}
