//! Shared helpers for the integration tests: compile the test-program corpus
//! in several variants, run programs natively and under `dbirun`, compare.
//!
//! - [`compile`]: the gcc/g++ variants and a per-process cache of outputs.
//! - [`run`]: running a program with a hard timeout, observing stdout,
//!   stderr and the exit status; comparing a native run with a translated one.
//! - [`corpus`]: the catalog of programs in `tests/programs/`.
//! - [`http_cache`]: an HTTP cache in bazel-remote's layout, with faults on demand.
//! - [`s3_server`]: a real S3-compatible server (moto), signatures checked.
//! - [`persist`]: runs with `-persist`, their `-stats` and `-v` lines, and
//!   the `.dpc` files they leave.

pub mod compile;
pub mod corpus;
pub mod http_cache;
pub mod persist;
pub mod s3_server;
pub mod run;
pub mod singlestep;

use std::path::{Path, PathBuf};

pub use compile::{compile, compile_shared, compiled, Build, Lang, Opt, Variant};
pub use run::{
    assert_same_as_native, compare_observed, compare_with_native, run, run_dbirun, run_native,
    try_run, Failure, Observed, RunOpts, Status,
};

/// The workspace root: the parent of this crate's directory.
pub fn workspace_root() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    dir.canonicalize().unwrap_or(dir)
}

/// `/usr/bin/NAME` or `/bin/NAME`, whichever exists.
pub fn tool(name: &str) -> PathBuf {
    for dir in ["/usr/bin", "/bin"] {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!("{name} not found in /usr/bin or /bin (run scripts/setup.sh)");
}

/// `tests/programs/`: the corpus sources.
pub fn programs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("programs")
}

/// The launcher: `$DBIRUN` if set, else `<root>/target/release/dbirun`, else
/// `<root>/target/debug/dbirun`. Panics when none exists.
pub fn dbirun_path() -> PathBuf {
    if let Some(p) = std::env::var_os("DBIRUN") {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "DBIRUN={} does not exist or is not a file",
            p.display()
        );
        return p;
    }
    let root = workspace_root();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|t| if t.is_absolute() { t } else { root.join(t) })
        .unwrap_or_else(|| root.join("target"));
    for profile in ["release", "debug"] {
        let p = target.join(profile).join("dbirun");
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "dbirun not found at {} (nor target/debug/dbirun): run `cargo build --release` first, or set DBIRUN",
        target.join("release").join("dbirun").display()
    );
}

/// The per-run timeout: `DBI_TEST_TIMEOUT` seconds if set, else 60.
pub fn default_timeout() -> std::time::Duration {
    let secs = std::env::var("DBI_TEST_TIMEOUT")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(60);
    std::time::Duration::from_secs(secs.max(1))
}

/// A fresh temporary directory for one test (removed when dropped).
pub fn temp_dir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("dbi-tests-{prefix}-"))
        .tempdir()
        .expect("cannot create a temporary directory")
}

/// `unshare -rm sh -c 'mount -t tmpfs [-o OPTIONS] none "$1" || exit 99;
/// shift; SCRIPT' sh MOUNTPOINT`: SCRIPT runs in a private mount namespace
/// (a user namespace, so no privileges are needed) with a fresh tmpfs on
/// MOUNTPOINT; the caller adds SCRIPT's arguments. Exit status 99 means
/// the tmpfs could not be mounted.
pub fn with_private_tmpfs(mountpoint: &Path, options: &str, script: &str) -> std::process::Command {
    let options = if options.is_empty() { String::new() } else { format!("-o {options} ") };
    let full = format!("mount -t tmpfs {options}none \"$1\" || exit 99; shift; {script}");
    let mut cmd = std::process::Command::new("unshare");
    cmd.args(["-rm", "sh", "-c", &full, "sh"]).arg(mountpoint);
    cmd
}

/// A small deterministic generator for test data (xorshift64*).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}
