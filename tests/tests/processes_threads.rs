//! Threads and processes (issue 3), native vs `dbirun -no_native_exec`,
//! byte for byte: the catalog programs of `PROCESS_SUITE` (pthreads, 10,000
//! threads, fork/vfork/posix_spawn/exec, system/popen, dlopen, JIT code),
//! then real multi-process and multi-threaded programs from the machine
//! (gcc, make -j2, bash, python3, xz -T2, sort --parallel, git, sqlite3).
//!
//! Real programs run with the same environment (LC_ALL=C, TZ=UTC, plus what
//! each needs) natively and translated; a program that writes files runs
//! natively in one fresh temporary directory and translated in another,
//! prepared identically, and the files it produced are compared too.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use dbi_tests::corpus::PROCESS_SUITE;
use dbi_tests::{
    catalog_tests, compare_observed, run_dbirun, run_native, temp_dir, tool, Observed, Rng, RunOpts,
    Status,
};

catalog_tests!(PROCESS_SUITE;
    pthreads_sync,
    many_threads,
    fork_statuses,
    vfork_exec,
    spawn_missing,
    exec_chain,
    exec_chain_proc_self_exe,
    system_popen,
    dlopen_main,
    jit,
    fork_race,
    bad_pointers,
);


/// The first `name` on `$PATH` (how gcc's driver and collect2 find `as` and
/// `ld`).
fn on_path(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_else(|| OsString::from("/usr/bin:/bin"));
    for dir in std::env::split_paths(&path) {
        let p = dir.join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!("{name} not found on PATH");
}

/// A fixed locale and time zone so both runs format the same way.
fn c_locale() -> RunOpts {
    RunOpts::new().env("LC_ALL", "C").env("TZ", "UTC")
}

/// Replaces `dir`'s path by `$DIR` in both output streams, so a native and
/// a translated run in different directories can be compared.
fn without_dir(o: &Observed, dir: &Path) -> Observed {
    let d = dir.display().to_string();
    let fix = |b: &[u8]| String::from_utf8_lossy(b).replace(&d, "$DIR").into_bytes();
    Observed {
        stdout: fix(&o.stdout),
        stderr: fix(&o.stderr),
        status: o.status,
    }
}

/// A native and a translated run of the same command, each in its own
/// directory prepared by the same function.
struct Pair {
    native_dir: tempfile::TempDir,
    translated_dir: tempfile::TempDir,
}

impl Pair {
    fn new(name: &str, prepare: impl Fn(&Path)) -> Pair {
        let native_dir = temp_dir(&format!("{name}-native"));
        let translated_dir = temp_dir(&format!("{name}-translated"));
        prepare(native_dir.path());
        prepare(translated_dir.path());
        Pair {
            native_dir,
            translated_dir,
        }
    }

    fn native(&self) -> &Path {
        self.native_dir.path()
    }

    fn translated(&self) -> &Path {
        self.translated_dir.path()
    }

    /// Runs `program args` natively in the native directory and under
    /// `dbirun -no_native_exec` in the translated one (each with `opts` and
    /// that directory as cwd); panics unless status, stdout and stderr are the
    /// same (directory paths aside). Returns the native observation.
    fn run(&self, program: &Path, args: &[&str], opts: &RunOpts) -> Observed {
        let what = format!("{} {}", program.display(), args.join(" "));
        let native = run_native(program, args, &opts.clone().cwd(self.native()))
            .unwrap_or_else(|f| panic!("{what}: the native run failed: {f}"));
        let translated = run_dbirun(
            &["-no_native_exec"],
            program,
            args,
            &opts.clone().cwd(self.translated()),
        )
        .unwrap_or_else(|f| panic!("{what}: translated run: {f}"));
        let n = without_dir(&native, self.native());
        let t = without_dir(&translated, self.translated());
        if let Err(e) = compare_observed(&what, &n, &t) {
            panic!("{e}");
        }
        native
    }

    /// The file `name` must be identical in both directories.
    fn assert_same_file(&self, name: &str) {
        let a = std::fs::read(self.native().join(name))
            .unwrap_or_else(|e| panic!("native run's {name}: {e}"));
        let b = std::fs::read(self.translated().join(name))
            .unwrap_or_else(|e| panic!("translated run's {name}: {e}"));
        assert!(
            a == b,
            "{name} differs: native {} bytes, translated {} bytes{}",
            a.len(),
            b.len(),
            match a.iter().zip(&b).position(|(x, y)| x != y) {
                Some(i) => format!(", first difference at byte {i}"),
                None => String::new(),
            }
        );
    }
}

// ---------------------------------------------------------------- gcc

const HELLO_C: &str = "#include <stdio.h>\n\
int main(void) {\n    printf(\"hello, world\\n\");\n    return 0;\n}\n";

fn write_hello(dir: &Path) {
    std::fs::write(dir.join("hello.c"), HELLO_C).unwrap();
}

fn gcc() -> PathBuf {
    tool("gcc")
}

/// `gcc -O2 hello.c -o hello` entirely under dbirun (driver, cc1, as,
/// collect2, ld): same output and status as natively, a byte-identical
/// binary, which prints the same.
#[test]
fn gcc_compiles_hello() {
    let pair = Pair::new("gcc", write_hello);
    let o = pair.run(&gcc(), &["-O2", "hello.c", "-o", "hello"], &c_locale());
    assert_eq!(o.status, Status::Code(0), "gcc failed: {}", o.stderr_str());
    pair.assert_same_file("hello");
    let exe_n = pair.native().join("hello");
    let exe_t = pair.translated().join("hello");
    let run_n = run_native(&exe_n, &[], &c_locale()).unwrap();
    let run_t = run_native(&exe_t, &[], &c_locale()).unwrap();
    assert_eq!(run_n.stdout, b"hello, world\n");
    compare_observed("the binaries built natively and translated", &run_n, &run_t)
        .unwrap_or_else(|e| panic!("{e}"));
    // The binary gcc built under translation also runs under translation.
    let again = run_dbirun(&["-no_native_exec"], &exe_t, &[], &c_locale()).unwrap();
    compare_observed("./hello under dbirun", &run_n, &again).unwrap_or_else(|e| panic!("{e}"));
}

/// `dbirun -v` shows every compiler stage starting under the runtime: the
/// module list names cc1, as, collect2 and ld (matched by their real paths,
/// as gcc and collect2 find them).
#[test]
fn gcc_stages_run_under_the_runtime() {
    let tmp = temp_dir("gcc-v");
    write_hello(tmp.path());
    let prog_name = |p: &str| {
        let out = std::process::Command::new(gcc())
            .arg(format!("-print-prog-name={p}"))
            .output()
            .unwrap();
        let s = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let path = PathBuf::from(&s);
        if path.is_absolute() {
            path
        } else {
            on_path(&s)
        }
    };
    let stages: Vec<(&str, PathBuf)> = ["cc1", "as", "collect2", "ld"]
        .iter()
        .map(|s| (*s, prog_name(s)))
        .collect();
    let o = run_dbirun(
        &["-v", "-no_native_exec"],
        &gcc(),
        &["-O2", "hello.c", "-o", "hello"],
        &c_locale().cwd(tmp.path()),
    )
    .unwrap_or_else(|f| panic!("{f}"));
    // -v output goes to stderr: only the status and stdout are compared.
    assert_eq!(o.status, Status::Code(0), "stderr: {}", o.stderr_str());
    assert!(o.stdout.is_empty(), "gcc printed {:?}", o.stdout_str());
    let modules: Vec<PathBuf> = o
        .stderr_str()
        .lines()
        .filter_map(|l| l.strip_prefix("dbirun: module loaded: "))
        .filter_map(|l| l.rsplit_once(" at 0x").map(|(p, _)| PathBuf::from(p)))
        .collect();
    let canon = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
    for (stage, path) in &stages {
        let want = canon(path);
        assert!(
            modules.iter().any(|m| canon(m) == want),
            "{stage} ({}) was not loaded under the runtime; modules: {modules:?}",
            path.display()
        );
    }
    let hello = run_native(&tmp.path().join("hello"), &[], &RunOpts::new()).unwrap();
    assert_eq!(hello.stdout, b"hello, world\n");
}

/// The module lines `dbirun -v` printed: the paths of the modules loaded.
fn loaded_modules(o: &Observed) -> Vec<String> {
    o.stderr_str()
        .lines()
        .filter_map(|l| l.strip_prefix("dbirun: module loaded: "))
        .filter_map(|l| l.rsplit_once(" at 0x").map(|(p, _)| p.to_owned()))
        .collect()
}

#[test]
fn children_are_followed_unless_asked_not_to() {
    let sh = tool("sh");
    let script = "exec /bin/echo followed-or-not";
    let followed = run_dbirun(&["-v", "-no_native_exec"], &sh, &["-c", script], &RunOpts::new()).unwrap();
    assert_eq!(followed.status, Status::Code(0));
    assert_eq!(followed.stdout, b"followed-or-not\n");
    let modules = loaded_modules(&followed);
    assert!(modules.iter().any(|m| m.ends_with("/echo")), "echo not translated: {modules:?}");

    let native = run_dbirun(&["-v", "-no_follow_children"], &sh, &["-c", script], &RunOpts::new()).unwrap();
    assert_eq!(native.status, Status::Code(0));
    assert_eq!(native.stdout, b"followed-or-not\n");
    let modules = loaded_modules(&native);
    assert!(modules.iter().any(|m| m.ends_with("/sh") || m.ends_with("/dash")), "sh not translated: {modules:?}");
    assert!(!modules.iter().any(|m| m.ends_with("/echo")), "echo translated despite -no_follow_children: {modules:?}");
}

// ---------------------------------------------------------------- make

fn write_project(dir: &Path) {
    let files: &[(&str, &str)] = &[
        ("util.h", "long triangle(long n);\nlong fib(long n);\nunsigned long checksum(const char *s);\n"),
        (
            "util.c",
            "#include \"util.h\"\nlong triangle(long n) { return n * (n + 1) / 2; }\n\
             unsigned long checksum(const char *s) { unsigned long h = 5381; while (*s) h = h * 33 + (unsigned char)*s++; return h; }\n",
        ),
        (
            "calc.c",
            "#include \"util.h\"\nlong fib(long n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }\n",
        ),
        (
            "main.c",
            "#include <stdio.h>\n#include <stdlib.h>\n#include \"util.h\"\n\
             int main(int argc, char **argv) {\n\
             \x20   long n = argc > 1 ? atol(argv[1]) : 10;\n\
             \x20   for (long i = 0; i <= n; i++) printf(\"%ld: triangle %ld fib %ld\\n\", i, triangle(i), fib(i));\n\
             \x20   printf(\"checksum %lu\\n\", checksum(\"make -j2 under dbirun\"));\n\
             \x20   return 0;\n}\n",
        ),
        // Silent recipes and no shell syntax: make runs gcc and the program
        // directly, and the output does not depend on the job order.
        (
            "Makefile",
            "CC = gcc\nCFLAGS = -O2\nOBJS = main.o util.o calc.o\n\n\
             all: prog\n\t@./prog 25\n\t@echo build done\n\n\
             prog: $(OBJS)\n\t@$(CC) -o $@ $(OBJS)\n\n\
             %.o: %.c util.h\n\t@$(CC) $(CFLAGS) -c $< -o $@\n",
        ),
    ];
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
}

/// `make -j2` of a three-file C project: make, gcc and its stages, and the
/// built program all run under the runtime.
#[test]
fn make_j2_small_project() {
    let pair = Pair::new("make", write_project);
    let o = pair.run(&tool("make"), &["-j2"], &c_locale());
    assert_eq!(o.status, Status::Code(0), "make failed: {}", o.stderr_str());
    let out = o.stdout_str();
    assert!(
        out.contains("25: triangle 325 fib 75025\n") && out.ends_with("build done\n"),
        "{out}"
    );
    for f in ["main.o", "util.o", "calc.o", "prog"] {
        pair.assert_same_file(f);
    }
}

// ---------------------------------------------------------------- bash

const BASH_SCRIPT: &str = r#"set -e
echo "start"
seq 1 1000 | grep 7 | wc -l
printf '%s\n' delta alpha charlie bravo | sort | tr a-z A-Z | paste -sd, -
( cd /; echo "subshell in $(pwd)"; exit 3 ) || echo "subshell exited $?"
x=$( (echo a; echo b) | tr a-z A-Z | paste -sd, - )
echo "captured $x"
for i in 1 2 3; do ( sleep 0.0$i; echo "job $i ran" > job$i.txt ) & done
sleep 0.01 &
wait
cat job1.txt job2.txt job3.txt
( exit 5 ) &
pid=$!
wait $pid || echo "background job exited $?"
count=0
while read -r line; do count=$((count + line)); done < <(seq 1 100)
echo "process substitution sum $count"
false || echo "false handled: $?"
/bin/sh -c 'exit 4' || echo "sh exited $?"
echo "done"
exit 7
"#;

/// A bash script with pipes, subshells, command substitution, background
/// jobs and `wait`, process substitution and exit statuses.
#[test]
fn bash_pipes_subshells_jobs() {
    let pair = Pair::new("bash", |d| {
        std::fs::write(d.join("script.sh"), BASH_SCRIPT).unwrap()
    });
    let o = pair.run(&tool("bash"), &["script.sh"], &c_locale());
    assert_eq!(o.status, Status::Code(7), "stderr: {}", o.stderr_str());
    assert!(o.stdout_str().contains("job 3 ran\n"), "{}", o.stdout_str());
    for f in ["job1.txt", "job2.txt", "job3.txt"] {
        pair.assert_same_file(f);
    }
}

// ---------------------------------------------------------------- python3

const PYTHON: &str = "/usr/bin/python3";

fn python_opts() -> RunOpts {
    c_locale()
        .env("PYTHONHASHSEED", "0")
        .env("PYTHONDONTWRITEBYTECODE", "1")
}

const PY_THREADS_SUBPROCESS: &str = r#"import threading, subprocess, sys
results = [0] * 8
def work(i):
    s = 0
    for k in range(i, 400000, 8):
        s += k * k % 1009
    results[i] = s
ts = [threading.Thread(target=work, args=(i,)) for i in range(8)]
for t in ts: t.start()
for t in ts: t.join()
print("thread sums", results, "total", sum(results))
lock = threading.Lock()
counter = [0]
def inc():
    for _ in range(20000):
        with lock:
            counter[0] += 1
ts = [threading.Thread(target=inc) for _ in range(4)]
for t in ts: t.start()
for t in ts: t.join()
print("locked counter", counter[0])
r = subprocess.run(["/bin/echo", "from", "echo"], capture_output=True, text=True)
print("subprocess:", r.returncode, repr(r.stdout))
r = subprocess.run([sys.executable, "-c", "import sys; print('child python'); sys.exit(3)"], capture_output=True, text=True)
print("child python:", r.returncode, repr(r.stdout))
p = subprocess.Popen(["/bin/cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
out, _ = p.communicate(b"piped through cat\n" * 1000)
print("cat:", out.decode().count("piped"), p.returncode)
"#;

/// python3: 8 threads summing, a lock-protected counter, subprocess running
/// /bin/echo, a child python and a pipe through cat.
#[test]
fn python3_threading_subprocess() {
    let tmp = temp_dir("python-threads");
    let o = dbi_tests::assert_same_as_native(
        Path::new(PYTHON),
        &["-c", PY_THREADS_SUBPROCESS],
        &python_opts().cwd(tmp.path()),
    );
    assert_eq!(o.status, Status::Code(0), "{}", o.stderr_str());
    let out = o.stdout_str();
    assert!(out.contains("locked counter 80000\n"), "{out}");
    assert!(out.contains("subprocess: 0 'from echo\\n'\n"), "{out}");
}

const PY_SIGNAL: &str = r#"import os, signal, time
got = []
def handler(signum, frame):
    got.append(signum)
signal.signal(signal.SIGUSR1, handler)
os.kill(os.getpid(), signal.SIGUSR1)
print("after os.kill:", got)
signal.signal(signal.SIGALRM, handler)
signal.setitimer(signal.ITIMER_REAL, 0.01)
deadline = time.monotonic() + 20
while len(got) < 2 and time.monotonic() < deadline:
    time.sleep(0.001)
print("after the timer:", got)
signal.signal(signal.SIGUSR1, signal.SIG_IGN)
os.kill(os.getpid(), signal.SIGUSR1)
print("ignored SIGUSR1 did nothing")
signal.signal(signal.SIGUSR1, signal.SIG_DFL)
os.kill(os.getpid(), signal.SIGTERM)
"#;

/// python3's signal module: a SIGUSR1 handler and os.kill of itself, a
/// SIGALRM from setitimer, SIG_IGN, then death by SIGTERM.
#[test]
fn python3_signal_handler() {
    let tmp = temp_dir("python-signal");
    let o = dbi_tests::assert_same_as_native(
        Path::new(PYTHON),
        &["-c", PY_SIGNAL],
        &python_opts().cwd(tmp.path()),
    );
    assert_eq!(o.status, Status::Signal(libc::SIGTERM));
    assert!(
        o.stdout_str().contains("after the timer: [10, 14]\n"),
        "{}",
        o.stdout_str()
    );
}

// ---------------------------------------------------------------- xz

/// 20 MiB of compressible text (deterministic).
fn write_text_20mb(dir: &Path, name: &str) {
    const WORDS: &[&str] = &[
        "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa",
    ];
    let mut rng = Rng::new(20);
    let mut data = String::with_capacity(21 << 20);
    let mut i = 0u64;
    while data.len() < 20 << 20 {
        let n = rng.next_u64();
        data.push_str(&format!(
            "{i:08} {} {} {}\n",
            WORDS[(n % 10) as usize],
            WORDS[((n >> 8) % 10) as usize],
            (n >> 16) % 1000
        ));
        i += 1;
    }
    std::fs::write(dir.join(name), data).unwrap();
}

/// `xz -T2 -k` on a 20 MiB file: two compression threads (4 MiB blocks, so
/// there are five blocks to share; preset -1 keeps the run short); the .xz
/// files must be byte-identical and decompress to the input.
#[test]
fn xz_two_threads_20mb() {
    let pair = Pair::new("xz", |d| write_text_20mb(d, "data.txt"));
    let o = pair.run(
        &tool("xz"),
        &["-T2", "-k", "-1", "--block-size=4MiB", "data.txt"],
        &c_locale(),
    );
    assert_eq!(o.status, Status::Code(0), "{}", o.stderr_str());
    pair.assert_same_file("data.txt.xz");
    // The translated run's output decompresses (natively) to the input.
    let back = run_native(
        &tool("xz"),
        &["-dc", "data.txt.xz"],
        &c_locale().cwd(pair.translated()),
    )
    .unwrap();
    assert!(
        back.stdout == std::fs::read(pair.translated().join("data.txt")).unwrap(),
        "decompressing the translated run's .xz does not give the input back"
    );
}

// ---------------------------------------------------------------- sort

/// `sort --parallel=2` of 200,000 lines (sort uses a second thread).
#[test]
fn sort_parallel_200k_lines() {
    let tmp = temp_dir("sort-parallel");
    let path = tmp.path().join("input.txt");
    let mut rng = Rng::new(200);
    let mut text = String::new();
    for i in 0..200_000u64 {
        let n = rng.next_u64();
        text.push_str(&format!("{:016x} {} {}\n", n, n % 977, i));
    }
    std::fs::write(&path, text).unwrap();
    let o = dbi_tests::assert_same_as_native(
        &tool("sort"),
        &["--parallel=2", "-k2,2n", "-k1,1", "input.txt"],
        &c_locale().cwd(tmp.path()),
    );
    assert_eq!(o.status, Status::Code(0));
    assert_eq!(o.stdout.iter().filter(|&&c| c == b'\n').count(), 200_000);
}

// ---------------------------------------------------------------- git

/// Environment for reproducible commits: fixed identities and dates, no
/// system or global configuration, no pager.
fn git_opts() -> RunOpts {
    let mut o = c_locale();
    for (k, v) in [
        ("GIT_CONFIG_NOSYSTEM", "1"),
        ("GIT_CONFIG_GLOBAL", "/dev/null"),
        ("GIT_PAGER", "cat"),
        ("GIT_AUTHOR_NAME", "Test Author"),
        ("GIT_AUTHOR_EMAIL", "author@example.com"),
        ("GIT_AUTHOR_DATE", "2020-01-02T03:04:05Z"),
        ("GIT_COMMITTER_NAME", "Test Committer"),
        ("GIT_COMMITTER_EMAIL", "committer@example.com"),
        ("GIT_COMMITTER_DATE", "2020-01-02T03:04:05Z"),
    ] {
        o = o.env(k, v);
    }
    for k in [
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "GIT_OBJECT_DIRECTORY",
    ] {
        o = o.env_remove(k);
    }
    o
}

/// `git init && git add && git commit` in a temporary directory, then
/// `git rev-parse HEAD` (the same commit hash) and `git log --stat`.
#[test]
fn git_init_add_commit() {
    let pair = Pair::new("git", |d| {
        std::fs::write(d.join("README"), "a test repository\n").unwrap();
        std::fs::create_dir(d.join("src")).unwrap();
        let mut text = String::new();
        for i in 0..500 {
            text.push_str(&format!("line {i}\n"));
        }
        std::fs::write(d.join("src/lines.txt"), text).unwrap();
        std::fs::write(d.join("src/empty"), "").unwrap();
    });
    let git = &tool("git");
    let opts = git_opts();
    for args in [
        &["init", "-q", "-b", "main"][..],
        &["add", "."],
        &["commit", "-q", "-m", "first commit"],
        &["status", "--short", "--branch"],
        &["log", "--stat"],
    ] {
        let o = pair.run(git, args, &opts);
        assert_eq!(
            o.status,
            Status::Code(0),
            "git {args:?}: {}",
            o.stderr_str()
        );
    }
    let o = pair.run(git, &["rev-parse", "HEAD"], &opts);
    assert_eq!(o.stdout.len(), 41, "rev-parse printed {:?}", o.stdout_str());
}

// ---------------------------------------------------------------- sqlite3

fn sqlite_script() -> String {
    let mut s = String::from(
        "CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT NOT NULL, value REAL, grp INTEGER);\nBEGIN;\n",
    );
    for i in 0..1000u64 {
        s.push_str(&format!(
            "INSERT INTO t(name, value, grp) VALUES('item{:04}', {}.25, {});\n",
            (i * 7919) % 1000,
            (i * 37) % 1000,
            i % 7
        ));
    }
    s.push_str(
        "COMMIT;\n\
         SELECT count(*), sum(value), min(name), max(name), avg(grp) FROM t;\n\
         SELECT grp, count(*), printf('%.2f', sum(value)) FROM t GROUP BY grp ORDER BY grp;\n\
         CREATE INDEX t_value ON t(value);\n\
         SELECT name, value FROM t WHERE value > 990 ORDER BY value DESC, name LIMIT 5;\n\
         SELECT count(DISTINCT name), total(length(name)) FROM t;\n",
    );
    s
}

/// sqlite3 creates a database, inserts 1,000 rows in a transaction and
/// queries aggregates; a second sqlite3 reopens it. Same output, and the
/// same database file.
#[test]
fn sqlite3_create_and_query() {
    let pair = Pair::new("sqlite", |d| {
        std::fs::write(d.join("script.sql"), sqlite_script()).unwrap()
    });
    let sqlite = tool("sqlite3");
    // stdin is the script, in each run's own directory.
    let native = run_native(
        &sqlite,
        &["test.db"],
        &c_locale()
            .cwd(pair.native())
            .stdin(pair.native().join("script.sql")),
    )
    .unwrap_or_else(|f| panic!("native sqlite3: {f}"));
    let translated = run_dbirun(
        &["-no_native_exec"],
        &sqlite,
        &["test.db"],
        &c_locale()
            .cwd(pair.translated())
            .stdin(pair.translated().join("script.sql")),
    )
    .unwrap_or_else(|f| panic!("translated sqlite3: {f}"));
    compare_observed("sqlite3 test.db < script.sql", &native, &translated)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(native.status, Status::Code(0), "{}", native.stderr_str());
    assert!(
        native
            .stdout_str()
            .starts_with("1000|499750.0|item0000|item0999|"),
        "{}",
        native.stdout_str()
    );
    let o = pair.run(
        &sqlite,
        &[
            "test.db",
            "PRAGMA integrity_check; SELECT count(*), sum(grp) FROM t;",
        ],
        &c_locale(),
    );
    assert_eq!(o.stdout_str(), "ok\n1000|2997\n");
    pair.assert_same_file("test.db");
}
