//! Self-tests of the harness (no `dbirun` needed): timeouts kill the whole
//! process group, signals are reported as signals, stray children holding
//! the output pipes cannot hang a test, diffs are short and readable.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use dbi_tests::run::describe_diff;
use dbi_tests::{compare_observed, run_native, try_run, Failure, Observed, RunOpts, Status};

const PERL: &str = "/usr/bin/perl";

#[test]
fn timeout_kills_the_process_group() {
    let start = Instant::now();
    // The child forks a grandchild; both sleep. Both must be killed.
    let r = run_native(
        Path::new(PERL),
        &["-e", "fork; print qq(started\\n); $| = 1; sleep 30"],
        &RunOpts::new().timeout(Duration::from_secs(1)),
    );
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "took {:?}",
        start.elapsed()
    );
    match r {
        Err(Failure::TimedOut(m)) => assert!(m.contains("timed out"), "{m}"),
        other => panic!("expected a timeout, got {other:?}"),
    }
}

#[test]
fn death_by_signal_is_a_signal() {
    let o = run_native(Path::new(PERL), &["-e", "kill 'SEGV', $$"], &RunOpts::new()).unwrap();
    assert_eq!(o.status, Status::Signal(libc::SIGSEGV));
    let o = run_native(Path::new(PERL), &["-e", "exit 42"], &RunOpts::new()).unwrap();
    assert_eq!(o.status, Status::Code(42));
}

#[test]
fn stray_child_holding_the_pipes_does_not_hang() {
    let start = Instant::now();
    let o = run_native(
        Path::new(PERL),
        &[
            "-e",
            "if (fork) { print qq(parent\\n); exit 0 } else { sleep 60 }",
        ],
        &RunOpts::new(),
    )
    .unwrap();
    assert_eq!(o.status, Status::Code(0));
    assert_eq!(o.stdout, b"parent\n");
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "took {:?}",
        start.elapsed()
    );
}

#[test]
fn cwd_env_and_stdin_are_applied() {
    let tmp = dbi_tests::temp_dir("harness");
    std::fs::write(tmp.path().join("in.txt"), "from stdin\n").unwrap();
    let opts = RunOpts::new()
        .cwd(tmp.path())
        .env("DBI_HARNESS_VAR", "xyz")
        .stdin(tmp.path().join("in.txt"));
    let o = run_native(
        Path::new(PERL),
        &[
            "-e",
            "use Cwd; print getcwd(), qq(\\n), $ENV{DBI_HARNESS_VAR}, qq(\\n), scalar(<STDIN>)",
        ],
        &opts,
    )
    .unwrap();
    let want = format!(
        "{}\nxyz\nfrom stdin\n",
        tmp.path().canonicalize().unwrap().display()
    );
    assert_eq!(o.stdout_str(), want);
    // Default stdin is /dev/null.
    let o = run_native(
        Path::new(PERL),
        &["-e", "print defined(<STDIN>) ? qq(data) : qq(eof)"],
        &RunOpts::new(),
    )
    .unwrap();
    assert_eq!(o.stdout, b"eof");
}

#[test]
fn try_run_reports_a_missing_program() {
    let r = try_run(
        &mut Command::new("/nonexistent/program"),
        Duration::from_secs(5),
    );
    assert!(matches!(r, Err(Failure::Error(_))), "{r:?}");
}

#[test]
fn diff_shows_the_first_differing_line() {
    let a = b"one\ntwo\nthree\n".to_vec();
    let b = b"one\ntwo\nTHREE\nfour\n".to_vec();
    let d = describe_diff("stdout", &a, &b);
    assert!(d.contains("line 3"), "{d}");
    assert!(
        d.contains("\"three\\n\"") && d.contains("\"THREE\\n\""),
        "{d}"
    );
    let big = vec![b'x'; 1 << 20];
    let d = describe_diff("stdout", &big, b"y");
    assert!(d.len() < 2000, "diff too long: {} bytes", d.len());

    let native = Observed {
        stdout: a,
        stderr: vec![],
        status: Status::Code(0),
    };
    let translated = Observed {
        stdout: b,
        stderr: b"oops\n".to_vec(),
        status: Status::Signal(11),
    };
    let e = compare_observed("prog", &native, &translated).unwrap_err();
    assert!(e.contains("killed by signal 11 (SIGSEGV)"), "{e}");
    assert!(e.contains("stderr differs"), "{e}");
    assert!(compare_observed("prog", &native, &native.clone()).is_ok());
}
