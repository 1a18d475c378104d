//! A locked index never holds a run's exit: dbirun waits about 100 ms,
//! leaves the run pending in the directory, and the next recorder records
//! it. Nothing is lost.

mod common;

use std::time::{Duration, Instant};

use common::*;

fn pending(c: &Cache) -> Vec<String> {
    std::fs::read_dir(c.dir())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".pending."))
        .collect()
}

#[test]
fn a_locked_index_leaves_the_run_pending_and_the_next_command_records_it() {
    let c = Cache::new();
    c.run_ok(&[], "/usr/bin/true", &[]);
    assert_eq!(c.count("SELECT count(*) FROM runs"), 1);

    // Another process holds the database's write lock for the whole run.
    let holder = rusqlite::Connection::open(c.dir().join("index.sqlite")).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let started = Instant::now();
    let out = c.run_ok(&[], "/bin/echo", &["hi", "there"]);
    let took = started.elapsed();
    assert_eq!(text(&out.stdout), "hi there\n");
    assert!(took < Duration::from_secs(3), "the run waited {took:?} for the locked index");
    assert_eq!(pending(&c).len(), 1, "the run is left for later");

    // -v says why, in one line, and the run still succeeds.
    let out = c.run_ok(&["-v"], "/usr/bin/true", &[]);
    assert!(text(&out.stderr).contains("will be recorded by the next"), "{}", text(&out.stderr));
    assert_eq!(pending(&c).len(), 2);
    holder.execute_batch("COMMIT").unwrap();
    drop(holder);

    // Any cachetool command records them: three runs, with their commands.
    c.tool_ok(&["stats"]);
    assert!(pending(&c).is_empty(), "{:?}", pending(&c));
    assert_eq!(c.count("SELECT count(*) FROM runs"), 3);
    assert_eq!(c.count("SELECT count(*) FROM runs WHERE command = '/bin/echo hi there' AND exit_status = 'exit 0'"), 1);
    // And what they used is counted: the warm run of true used its file.
    let uses = c.count(&format!("SELECT use_count FROM cache_files WHERE name = '{}'", c.file_of("true")));
    assert_eq!(uses, 1, "one warm run of /bin/true used its file");

    // The next dbirun run records the pending ones too.
    let holder = rusqlite::Connection::open(c.dir().join("index.sqlite")).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    c.run_ok(&[], "/usr/bin/true", &[]);
    holder.execute_batch("COMMIT").unwrap();
    drop(holder);
    assert_eq!(pending(&c).len(), 1);
    c.run_ok(&[], "/usr/bin/true", &[]);
    assert!(pending(&c).is_empty());
    assert_eq!(c.count("SELECT count(*) FROM runs"), 5);
}
