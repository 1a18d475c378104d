//! `-stats` as users want it (issue 13, item 3): the application's own
//! output is never touched (a child's stderr captured by its shell holds
//! no counters), dbirun prints one summary for the whole process tree when
//! the app has exited, each process's block on request labelled with its
//! pid and program, or the summary in a file; the counters agree.

use std::path::Path;

use dbi_tests::{run_dbirun, run_native, temp_dir, RunOpts};

const SCRIPT: &str = r#"y=$(ls /nonexistent 2>&1); echo "[$y]"; ls / > /dev/null; exit 3"#;

fn bash(options: &[&str]) -> dbi_tests::Observed {
    run_dbirun(options, Path::new("/bin/bash"), &["-c", SCRIPT], &RunOpts::new()).unwrap_or_else(|f| panic!("{f}"))
}

/// `name: N` lines of a block, by label.
fn value(block: &str, label: &str) -> u64 {
    block
        .lines()
        .find_map(|l| l.strip_prefix("  ")?.strip_prefix(label)?.strip_prefix(':')?.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no '{label}' in\n{block}"))
}

/// The blocks of `text`, each from its `dbirun stats` header on.
fn blocks(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in text.lines() {
        if line.starts_with("dbirun stats") {
            out.push(String::new());
        }
        if let Some(b) = out.last_mut() {
            b.push_str(line);
            b.push('\n');
        }
    }
    out
}

#[test]
fn one_summary_outside_the_apps_output() {
    let native = run_native(Path::new("/bin/bash"), &["-c", SCRIPT], &RunOpts::new()).unwrap();
    let o = bash(&["-stats"]);
    assert_eq!(o.status, native.status);
    assert_eq!(o.stdout, native.stdout, "the captured stderr of ls holds only its own message");
    let err = o.stderr_str();
    assert!(err.starts_with(&native.stderr_str()), "the app's stderr comes first, unchanged:\n{err}");
    let b = blocks(&err);
    assert_eq!(b.len(), 1, "one summary:\n{err}");
    assert!(b[0].starts_with("dbirun stats:\n"), "{}", b[0]);
    // bash, the subshell (forked, then exec'd to ls), ls, and the ls of the
    // second command (forked bash image, then ls).
    let processes = value(&b[0], "processes");
    assert!(processes >= 3, "{}", b[0]);
    assert!(value(&b[0], "indirect lookups") >= value(&b[0], "indirect lookup misses"), "every miss follows a counted lookup:\n{}", b[0]);
    assert!(value(&b[0], "blocks built") > 0);
    value(&b[0], "blocks flushed");
}

#[test]
fn per_process_blocks_are_labelled_and_add_up() {
    let o = bash(&["-stats_per_process"]);
    let err = o.stderr_str();
    let b = blocks(&err);
    let (each, total) = b.split_at(b.len() - 1);
    assert!(each.len() >= 3, "{err}");
    assert!(total[0].starts_with(&format!("dbirun stats: total of {} processes:", each.len())), "{err}");
    assert!(each.iter().any(|b| b.starts_with("dbirun stats: pid ") && b.lines().next().unwrap().ends_with("(ls):")), "{err}");
    assert!(each.iter().any(|b| b.lines().next().unwrap().ends_with("(bash):")), "{err}");
    for label in ["blocks built", "indirect lookups", "indirect lookup misses", "system calls"] {
        let sum: u64 = each.iter().map(|b| value(b, label)).sum();
        assert_eq!(sum, value(&total[0], label), "{label}: the total is the sum\n{err}");
    }
    for b in each {
        assert!(value(b, "indirect lookups") >= value(b, "indirect lookup misses"), "{b}");
    }
}

#[test]
fn stats_file_takes_the_summary() {
    let dir = temp_dir("stats-file");
    let file = dir.path().join("stats.txt");
    let native = run_native(Path::new("/bin/bash"), &["-c", SCRIPT], &RunOpts::new()).unwrap();
    let o = bash(&["-stats_file", file.to_str().unwrap()]);
    assert_eq!(o.stderr, native.stderr, "nothing added to stderr");
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(blocks(&text).len(), 1, "{text}");
    assert!(value(&text, "processes") >= 3, "{text}");
}
