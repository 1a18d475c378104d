//! `cachetool server start|status|stop` with the real dbicached (built
//! beside cachetool by `cargo build --release`).

mod common;

use common::*;

#[test]
fn server_start_status_stop() {
    let c = Cache::new();
    c.run_ok(&[], "/usr/bin/true", &[]);
    let beside = std::path::Path::new(env!("CARGO_BIN_EXE_cachetool")).with_file_name("dbicached");
    assert!(beside.is_file(), "{} is missing: run `cargo build --release` first", beside.display());
    assert!(c.tool_ok(&["server", "start", "--idle", "30"]).contains("server started"));
    let status = c.json(&["server", "status"]);
    let pid = status["pid"].as_u64().unwrap();
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    // Its lock file names it and its version: dbirun, finding that pid at
    // the socket's other end, needs no status round trip.
    let note = std::fs::read_to_string(c.dir().join(persist::server_protocol::LOCK)).unwrap();
    assert_eq!(note, persist::server_protocol::lock_note(pid as u32, cachetool::RUNTIME_VERSION));
    assert!(c.tool_ok(&["server", "start"]).contains("already runs"), "one server per directory");
    assert_eq!(c.json(&["server", "status"])["pid"].as_u64(), Some(pid));
    assert!(c.tool_ok(&["server", "stop"]).contains("stopped"));
    // "stopped" means exited: its lock is free at once.
    let lock = std::fs::File::open(c.dir().join(persist::server_protocol::LOCK)).unwrap();
    assert!(lock.try_lock().is_ok(), "the server still holds its lock after `server stop` returned");
    drop(lock);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while c.tool(&["server", "status"]).status.success() {
        assert!(std::time::Instant::now() < deadline, "the server did not stop");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = c.tool(&["server", "status"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).starts_with("cachetool: no server for "), "{}", text(&out.stderr));
}

/// `dbirun -persist` with the cache server (the default: the suite's
/// DBIRUN_OPTIONS=-no_persist_server is cleared).
fn served(c: &Cache, options: &[&str], program: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(dbirun_path())
        .env_remove("DBIRUN_OPTIONS")
        .arg("-persist")
        .arg("-persist_dir")
        .arg(&c.base)
        .args(options)
        .arg("--")
        .arg(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

const PYTHON: &str = "/usr/bin/python3";
const SCRIPT: &str = "import json, sys; print(json.dumps({'a': [1, 2, 3]})); sys.stderr.write('err\\n'); sys.exit(3)";

fn native() -> std::process::Output {
    std::process::Command::new(PYTHON).args(["-c", SCRIPT]).output().unwrap()
}

fn same_as_native(out: &std::process::Output, native: &std::process::Output) {
    assert_eq!(out.status.code(), native.status.code(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), text(&native.stdout));
    let err: String = text(&out.stderr).lines().filter(|l| !l.starts_with("dbirun: ")).map(|l| format!("{l}\n")).collect();
    assert_eq!(err, text(&native.stderr));
}

fn runs_recorded(c: &Cache) -> i64 {
    c.count("SELECT count(*) FROM runs")
}

fn cache_files(c: &Cache) -> usize {
    std::fs::read_dir(c.dir()).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().ends_with(".dpc")).count()
}

fn server_pid(c: &Cache) -> u64 {
    let out = c.tool(&["--json", "server", "status"]);
    let log = std::fs::read_to_string(c.dir().join("dbicached.log")).unwrap_or_default();
    if !out.status.success() {
        std::thread::sleep(std::time::Duration::from_millis(500));
        let ls = std::process::Command::new("sh").arg("-c").arg(format!("ls -la --time-style=full-iso {0}; pgrep -a dbicached; cat {0}/dbicached.log; ss -xlp | grep {0}", c.dir().display())).output().unwrap();
        panic!("{}\nthe server's log:\n{log}\n{}", text(&out.stderr), text(&ls.stdout));
    }
    serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["pid"].as_u64().unwrap()
}

fn kill_and_wait(pid: u64) {
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    wait_gone(pid);
}

/// Until every thread of `pid` is gone or a zombie (its descriptors, the
/// listening socket among them, closed).
fn wait_gone(pid: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while cachetool::prune::process_alive(pid as i32) {
        assert!(std::time::Instant::now() < deadline, "server {pid} did not die");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// A script that copies or removes the directory right after `server
/// stop` sees everything the runs before handed over merged and recorded,
/// and no server writing into it.
#[test]
fn server_stop_returns_once_the_server_merged_and_exited() {
    let c = Cache::new();
    same_as_native(&served(&c, &[], PYTHON, &["-c", SCRIPT]), &native());
    assert!(c.tool_ok(&["server", "stop"]).contains("stopped"));
    let log = std::fs::read_to_string(c.dir().join("dbicached.log")).unwrap();
    assert_eq!(log.lines().last().map(|l| l.ends_with("stopped")), Some(true), "the server's log goes on after `server stop`:\n{log}");
    assert_eq!(runs_recorded(&c), 1, "the run was recorded before the server stopped:\n{log}");
    assert!(cache_files(&c) >= 3, "the run's files were merged before the server stopped:\n{log}");
}

#[test]
fn runs_hand_their_code_to_the_server_and_later_runs_load_it() {
    let c = Cache::new();
    let native = native();
    let cold = served(&c, &["-v"], PYTHON, &["-c", SCRIPT]);
    same_as_native(&cold, &native);
    let err = text(&cold.stderr);
    assert!(err.contains("dbirun: persist: started a cache server for "), "{err}");
    assert!(err.contains("to the cache server"), "the process handed its blocks over:\n{err}");
    assert!(!err.contains("persist: wrote "), "the process wrote no file itself:\n{err}");
    assert!(c.tool_ok(&["server", "sync"]).contains("synced"));
    let status = c.json(&["server", "status"]);
    for (k, v) in [("rejected", 0), ("errors", 0)] {
        assert_eq!(status[k].as_u64(), Some(v), "{status}");
    }
    for k in ["hand_overs", "merges", "blocks_added", "bytes_written", "runs_recorded"] {
        assert!(status[k].as_u64().unwrap() > 0, "{k}: {status}");
    }
    assert_eq!(runs_recorded(&c), 1);
    assert!(c.tool_ok(&["verify"]).contains("all valid"));
    let files = cache_files(&c);
    assert!(files >= 3, "python3, libc and ld.so at least: {files}");
    // What the server published it vouches for: each file's memo names the
    // version on disk, so runs load it without hashing its zones.
    for e in std::fs::read_dir(c.dir()).unwrap().flatten() {
        let name = e.file_name().into_string().unwrap();
        if name.ends_with(".dpc") {
            let memo = std::fs::read(c.dir().join(format!("{name}.lock"))).unwrap();
            let id = persist::file_identity::FileIdentity::of(&e.metadata().unwrap());
            assert_eq!(memo.get(..48), Some(&persist::file_identity::verified_memo(id)[..]), "{name}");
        }
    }
    // "dbirun: persist: using FILE (N blocks[, served by the cache server])"
    let using = |err: &str| -> (u64, usize, usize) {
        let using: Vec<&str> = err.lines().filter(|l| l.starts_with("dbirun: persist: using /")).collect();
        let loaded = using.iter().filter_map(|l| l.rsplit_once('(')?.1.split(' ').next()?.parse::<u64>().ok()).sum();
        (loaded, using.len(), using.iter().filter(|l| l.ends_with(" blocks, served by the cache server)")).count())
    };
    // The memos vouch for every file: the warm run opens them itself,
    // without a round trip to the server per module.
    let warm = served(&c, &["-v"], PYTHON, &["-c", SCRIPT]);
    same_as_native(&warm, &native);
    // A warm run may still hand over a few blocks (python's paths vary
    // from run to run); its merge must not publish a version after the
    // copies below are made.
    c.tool_ok(&["server", "sync"]);
    let err = text(&warm.stderr);
    assert!(err.contains("dbirun: persist: using the cache server of "), "{err}");
    let (loaded, files_used, files_served) = using(&err);
    assert!(loaded > 1000, "the warm run ran from the server's files: {loaded} blocks loaded\n{err}");
    assert!(files_used >= 3 && files_served == 0, "files the memos vouch for are not asked for:\n{err}");
    // New versions no memo names (as a copy of the directory in a fresh
    // container has): the server checks each once and serves it, so the
    // process does not hash their zones; it notes each checked version,
    // so the next run opens them itself again.
    for e in std::fs::read_dir(c.dir()).unwrap().flatten() {
        let path = e.path();
        if path.extension().is_some_and(|x| x == "dpc") {
            let copy = path.with_extension("copy");
            std::fs::copy(&path, &copy).unwrap();
            std::fs::rename(&copy, &path).unwrap();
        }
    }
    let copied = served(&c, &["-v"], PYTHON, &["-c", SCRIPT]);
    same_as_native(&copied, &native);
    let (_, files_used, files_served) = using(&text(&copied.stderr));
    assert!(files_used >= 3 && files_served == files_used, "the server served every new version:\n{}", text(&copied.stderr));
    c.tool_ok(&["server", "sync"]);
    let again = served(&c, &["-v"], PYTHON, &["-c", SCRIPT]);
    let (_, files_used, files_served) = using(&text(&again.stderr));
    assert!(files_used >= 3 && files_served == 0, "the server's checks left memos:\n{}", text(&again.stderr));
    c.tool_ok(&["server", "sync"]);
    assert_eq!(runs_recorded(&c), 4);
    // A file changed behind the server's back is not served: the process
    // checks it itself, rejects it and translates afresh.
    let libc = std::fs::read_dir(c.dir()).unwrap().flatten().map(|e| e.path()).find(|p| {
        let n = p.file_name().unwrap().to_string_lossy().into_owned();
        n.starts_with("libc.so") && n.ends_with(".dpc")
    });
    let libc = libc.expect("libc's file");
    let mut bytes = std::fs::read(&libc).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&libc, &bytes).unwrap();
    let tampered = served(&c, &["-v"], PYTHON, &["-c", SCRIPT]);
    same_as_native(&tampered, &native);
    let err = text(&tampered.stderr);
    let libc_name = libc.file_name().unwrap().to_string_lossy().into_owned();
    assert!(err.lines().any(|l| l.starts_with("dbirun: persist: not using ") && l.contains(&libc_name)), "{err}");
    let (loaded, files_used, _) = using(&err);
    assert!(loaded > 1000 && files_used >= 2, "the other files are still used:\n{err}");
    c.tool_ok(&["server", "sync"]);
    let pid = server_pid(&c);
    c.tool_ok(&["server", "stop"]);
    wait_gone(pid);
    assert!(!c.dir().join("dbicached.sock").exists());
}

#[test]
fn a_server_killed_mid_merge_loses_no_run_and_publishes_nothing_half_written() {
    let c = Cache::new();
    let native = native();
    for _ in 0..3 {
        let out = served(&c, &[], PYTHON, &["-c", SCRIPT]);
        same_as_native(&out, &native);
        // At once: the hand-overs of the run are being merged.
        kill_and_wait(server_pid(&c));
    }
    // The socket file left is a dead server's: the next run starts a new
    // server, which records the runs the killed ones had not.
    let out = served(&c, &["-v"], PYTHON, &["-c", SCRIPT]);
    same_as_native(&out, &native);
    assert!(text(&out.stderr).contains("started a cache server"), "{}", text(&out.stderr));
    c.tool_ok(&["server", "sync"]);
    assert_eq!(runs_recorded(&c), 4, "no run lost");
    assert!(c.tool_ok(&["verify"]).contains("all valid"), "nothing half-written was published");
    c.tool_ok(&["server", "stop"]);
}

#[test]
fn no_persist_server_and_a_missing_server_mean_file_mode() {
    let c = Cache::new();
    let native = native();
    let out = served(&c, &["-v", "-no_persist_server"], PYTHON, &["-c", SCRIPT]);
    same_as_native(&out, &native);
    let err = text(&out.stderr);
    assert!(err.contains("persist: wrote ") && !err.contains("cache server"), "{err}");
    assert!(!c.dir().join("dbicached.sock").exists(), "no server was started");
    assert_eq!(runs_recorded(&c), 1, "recorded by dbirun itself");
    // A server that answers status but never takes a hand-over: each
    // process waits a bounded time, then writes its files itself.
    for e in std::fs::read_dir(c.dir()).unwrap().flatten() {
        if e.file_name().to_string_lossy().ends_with(".dpc") {
            std::fs::remove_file(e.path()).unwrap();
        }
    }
    fake_server(&c, &format!("{:08x}", cachetool::RUNTIME_VERSION));
    let started = std::time::Instant::now();
    let out = served(&c, &["-v"], PYTHON, &["-c", SCRIPT]);
    same_as_native(&out, &native);
    let err = text(&out.stderr);
    assert!(err.contains("using the cache server") && err.contains("did not take"), "{err}");
    assert!(err.contains("persist: wrote "), "{err}");
    assert!(cache_files(&c) >= 3, "files written:\n{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}

/// A run shorter than a cache server's start-up (`true`) still hands
/// its blocks to the server it starts: dbirun starts the run at once,
/// and the process, ending before the server listens, waits for it.
#[test]
fn a_run_that_starts_the_server_hands_over_to_it() {
    let c = Cache::new();
    let out = served(&c, &["-v"], "/bin/true", &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("started a cache server for "), "{err}");
    assert!(err.contains("to the cache server"), "the process handed its blocks over:\n{err}");
    assert!(!err.contains("persist: wrote ") && !err.contains("no cache server"), "{err}");
    assert!(c.tool_ok(&["server", "sync"]).contains("synced"));
    assert!(cache_files(&c) >= 3, "true, libc and ld.so at least");
    assert_eq!(runs_recorded(&c), 1);
    c.tool_ok(&["server", "stop"]);
}

/// A server started on a copied directory (new inodes: no memo holds)
/// checks every file whole in the background and vouches for the sound
/// ones, so later runs open them without a check; a damaged one it
/// refuses, with a line in its log.
#[test]
fn a_server_vouches_for_a_copied_directory_when_it_starts() {
    let tmp = tempfile::TempDir::new().unwrap();
    let (_prog, c) = program_cached(tmp.path(), "answer", 41);
    let copy = Cache::new();
    std::fs::create_dir_all(&copy.base).unwrap();
    assert!(std::process::Command::new("cp").arg("-a").arg(c.dir()).arg(&copy.base).status().unwrap().success());
    let files = copy.files();
    assert!(files.len() >= 3, "{files:?}");
    let libc = copy.dir().join(copy.file_of("libc.so.6"));
    let mut bytes = std::fs::read(&libc).unwrap();
    let at = bytes.len() - 100;
    bytes[at] ^= 0xff;
    std::fs::write(&libc, &bytes).unwrap();
    assert_eq!(not_vouched(&copy.dir()), files);
    copy.tool_ok(&["server", "start", "--idle", "60"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        let status = copy.json(&["server", "status"]);
        if status["start_check_done"] == serde_json::Value::Bool(true) {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "the start check did not end: {status}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(status["start_checked"].as_u64(), Some(files.len() as u64), "{status}");
    copy.tool_ok(&["server", "stop"]);
    assert_eq!(not_vouched(&copy.dir()), [copy.file_of("libc.so.6")]);
    let log = std::fs::read_to_string(copy.dir().join("dbicached.log")).unwrap();
    assert!(log.contains(&format!("start check: not vouching for {}: ", copy.file_of("libc.so.6"))), "{log}");
}

/// A stand-in server on `c`'s socket that says it is of runtime
/// `version` and never answers anything else (holding the connections);
/// the kinds of the requests other than status that came.
fn fake_server(c: &Cache, version: &str) -> std::sync::Arc<std::sync::Mutex<Vec<u16>>> {
    std::fs::create_dir_all(c.dir()).unwrap();
    std::fs::set_permissions(c.dir(), std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let listener = std::os::unix::net::UnixListener::bind(c.dir().join("dbicached.sock")).unwrap();
    let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = std::sync::Arc::clone(&asked);
    let status = format!("{{\"runtime_version\": \"{version}\"}}");
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for mut s in listener.incoming().flatten() {
            // A connection's requests until it closes or waits for an answer.
            while let Ok(frame) = persist::server_protocol::read(&mut s) {
                if frame.kind == persist::server_protocol::Kind::Status {
                    let _ = persist::server_protocol::write(&mut s, persist::server_protocol::Kind::Ok, status.as_bytes());
                } else {
                    seen.lock().unwrap().push(frame.kind as u16);
                    break;
                }
            }
            held.push(s);
        }
    });
    asked
}

/// The processes whose command line holds `marker`, with their names.
fn processes_with(marker: &str) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(marker) {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            found.push((pid, comm.trim().to_string()));
        }
    }
    found
}

/// A server that answers status but takes hand-overs slowly (never): the
/// hand-over runs in a detached copy of the process after the app ended,
/// so dbirun and the app's pipes end at once, and the copy is nothing the
/// app's watchers can see: its own name and session, none of the app's
/// descriptors.
#[test]
fn the_hand_over_runs_detached_after_the_app_ended() {
    let c = Cache::new();
    fake_server(&c, &format!("{:08x}", cachetool::RUNTIME_VERSION));
    let marker = format!("detached-{}", std::process::id());
    let script = format!("print('{marker}')");
    let out = served(&c, &[], PYTHON, &["-c", &script]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("{marker}\n"));
    // dbirun has exited and the app's pipes are closed; the copy still
    // waits for the server's answer (at most 200 ms per hand-over).
    let copies = processes_with(&marker);
    assert_eq!(copies.len(), 1, "one detached copy: {copies:?}");
    let (pid, comm) = &copies[0];
    assert_eq!(comm, "dbi-persist");
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
    // Fields after the name: state, ppid, pgrp, session.
    assert_eq!(fields[3], pid.to_string(), "its own session: {stat}");
    // The app's descriptors were the test's pipes (stdout, stderr) and
    // /dev/null (stdin); the copy's own are its socket, memory files,
    // cache files and the module files it hashes or reads.
    for fd in std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().flatten() {
        let target = std::fs::read_link(fd.path()).map(|t| t.display().to_string()).unwrap_or_default();
        assert!(!target.starts_with("pipe:") && target != "/dev/null", "an app descriptor kept: {target}");
    }
    wait_gone(*pid as u64);
    // It wrote the files itself once the server did not answer.
    assert!(cache_files(&c) >= 3, "{} files", cache_files(&c));
    assert!(c.tool_ok(&["verify"]).contains("all valid"));
}

/// A server of another dbirun version: not used; the run's processes
/// write their files themselves, and it is asked to stop (every
/// connection keeps a server from going idle: a server outliving an
/// upgrade would otherwise leave every later run in file mode).
#[test]
fn a_server_of_another_version_is_not_used_and_asked_to_stop() {
    let c = Cache::new();
    let asked = fake_server(&c, "00000000");
    let native = native();
    let out = served(&c, &["-v"], PYTHON, &["-c", SCRIPT]);
    same_as_native(&out, &native);
    let err = text(&out.stderr);
    assert!(err.contains("is of another version (00000000): asked it to stop; processes write their own files"), "{err}");
    assert!(err.contains("persist: wrote "), "{err}");
    assert_eq!(*asked.lock().unwrap(), [persist::server_protocol::Kind::Stop as u16], "asked to stop, and nothing handed to it");
    assert!(cache_files(&c) >= 3);
    assert_eq!(runs_recorded(&c), 1, "recorded by dbirun itself");
}

/// Eight runs at once, cold, all handing over to one server: every run
/// recorded, every file valid (a file's blocks are unique by
/// construction of the checks), and a second round loads them.
#[test]
fn concurrent_runs_share_one_server() {
    let c = Cache::new();
    let native = native();
    let round = |c: &Cache| {
        std::thread::scope(|s| {
            let runs: Vec<_> = (0..8).map(|_| s.spawn(|| served(c, &[], PYTHON, &["-c", SCRIPT]))).collect();
            for r in runs {
                same_as_native(&r.join().unwrap(), &native);
            }
        });
        c.tool_ok(&["server", "sync"]);
    };
    round(&c);
    assert_eq!(runs_recorded(&c), 8);
    assert!(c.tool_ok(&["verify"]).contains("all valid"));
    let status = c.json(&["server", "status"]);
    assert_eq!(status["rejected"].as_u64(), Some(0), "{status}");
    assert_eq!(status["errors"].as_u64(), Some(0), "{status}");
    round(&c);
    assert_eq!(runs_recorded(&c), 16);
    let loaded = c.count("SELECT coalesce(sum(blocks_loaded), 0) FROM runs WHERE id > 8");
    let built = c.count("SELECT coalesce(sum(blocks_built), 0) FROM runs WHERE id > 8");
    assert!(loaded > 10 * built, "the second round ran from the files: {loaded} loaded, {built} built");
    c.tool_ok(&["server", "stop"]);
}

/// The server keeps its index open between runs; an index replaced
/// meanwhile (a damaged one, set aside and rebuilt: a new database file
/// at the path) is the one later runs are recorded in.
#[test]
fn runs_after_an_index_is_replaced_are_recorded_in_the_new_index() {
    let c = Cache::new();
    let native = native();
    for _ in 0..2 {
        same_as_native(&served(&c, &[], PYTHON, &["-c", SCRIPT]), &native);
        c.tool_ok(&["server", "sync"]);
    }
    assert_eq!(runs_recorded(&c), 2);
    let db = c.dir().join("index.sqlite");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    std::fs::write(&db, b"not a database").unwrap();
    c.tool_ok(&["list"]);
    assert_eq!(runs_recorded(&c), 0, "the damaged index was replaced by one rebuilt from the files");
    same_as_native(&served(&c, &[], PYTHON, &["-c", SCRIPT]), &native);
    c.tool_ok(&["server", "sync"]);
    assert_eq!(runs_recorded(&c), 1, "the run after the rebuild is in the new index");
    c.tool_ok(&["server", "stop"]);
}

/// The statuses of the runs recorded, by command.
fn recorded_status(c: &Cache, command: &str) -> Vec<String> {
    let runs = c.json(&["runs"]);
    runs.as_array().unwrap().iter().filter(|r| r["command"] == command).map(|r| r["exit_status"].as_str().unwrap().to_owned()).collect()
}

/// With a cache server and nothing to print after the app, dbirun execs
/// the runtime: the app runs in the process the user started (its pid is
/// dbirun's, its parent dbirun's parent, as natively), and the run's own
/// process leaves its end for the server to record: exits, signals, and
/// a SIGKILL that leaves no end at all (the next recorder finishes it).
#[test]
fn dbirun_becomes_the_app_and_the_run_is_still_recorded() {
    let c = Cache::new();
    let script = "echo $$ $PPID";
    let child = std::process::Command::new(dbirun_path())
        .env_remove("DBIRUN_OPTIONS")
        .args(["-persist", "-persist_dir"])
        .arg(&c.base)
        .args(["--", "/bin/sh", "-c", script])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(text(&out.stdout), format!("{pid} {}\n", std::process::id()), "the app is dbirun's process, a child of ours");
    for (script, status) in [("exit 7", Some(7)), ("kill -TERM $$", None), ("kill -KILL $$", None)] {
        let out = served(&c, &[], "/bin/sh", &["-c", script]);
        assert_eq!(out.status.code(), status, "{script}: {:?}", out.status);
    }
    c.tool_ok(&["server", "sync"]);
    assert_eq!(recorded_status(&c, &format!("/bin/sh -c '{script}'")), ["exit 0"]);
    assert_eq!(recorded_status(&c, "/bin/sh -c 'exit 7'"), ["exit 7"]);
    assert_eq!(recorded_status(&c, "/bin/sh -c 'kill -TERM $$'"), ["signal 15"]);
    assert_eq!(recorded_status(&c, "/bin/sh -c 'kill -KILL $$'"), ["unknown"], "recorded from what the run left");
    let left: Vec<String> = std::fs::read_dir(c.dir())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".report.") || n.starts_with(".pending."))
        .collect();
    assert!(left.is_empty(), "every report recorded: {left:?}");
    // With -stats (a summary to print after the app) dbirun stays the parent.
    let out = served(&c, &["-stats"], "/bin/sh", &["-c", "echo $$"]);
    assert_ne!(text(&out.stdout).trim(), "", "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("blocks built"), "{}", text(&out.stderr));
}

/// A C program of one long path (hundreds of blocks, the same in every
/// run) and a few blocks more per argument 1..3, each its own.
fn small_paths_program(dir: &std::path::Path) -> String {
    let mut src = String::from("#include <stdio.h>\n#include <stdlib.h>\nstatic volatile unsigned sink;\nstatic unsigned long_path(unsigned x) {\n");
    for n in 0..300 {
        src += &format!("    if ((x >> {}) & 1) {{ x = x * 2654435761u + {n}; sink = x; }} else {{ x = (x ^ {}u) + 7; }}\n", n % 23, n * 40503);
    }
    src += "    return x;\n}\n";
    // Each argument's blocks its own: a function of its own, called
    // through a table (the call's block is shared, and merged first).
    for k in 1..=3 {
        src += &format!("static unsigned extra{k}(unsigned x) {{\n    if (x & {k}) {{ sink = x; return x + {k}; }}\n    return x * {k};\n}}\n");
    }
    src += "static unsigned (*const extras[4])(unsigned) = {0, extra1, extra2, extra3};\n";
    src += "int main(int argc, char **argv) {\n    int k = argc > 1 ? atoi(argv[1]) & 3 : 0;\n    unsigned x = long_path(1);\n    if (k > 0)\n        x = extras[k](x);\n    printf(\"%u\\n\", x);\n    return 0;\n}\n";
    let c = dir.join("small_paths.c");
    std::fs::write(&c, src).unwrap();
    let exe = dir.join("small_paths");
    let st = std::process::Command::new("gcc").arg("-O0").arg("-o").arg(&exe).arg(&c).status().expect("gcc");
    assert!(st.success(), "gcc failed");
    exe.to_string_lossy().into_owned()
}

/// A delta too small for a rewrite of its own waits in the server; the
/// same blocks built by a second run are merged (so the third run builds
/// none of them); blocks built by one run only leave the file as it is.
#[test]
fn small_deltas_wait_until_their_blocks_recur() {
    let c = Cache::new();
    let work = tempfile::TempDir::new().unwrap();
    let program = small_paths_program(work.path());
    let run = |arg: &str| -> String {
        let native = std::process::Command::new(&program).arg(arg).output().unwrap();
        let out = served(&c, &["-v"], &program, &[arg]);
        same_as_native(&out, &native);
        c.tool_ok(&["server", "sync"]);
        text(&out.stderr)
    };
    let handed = |err: &str| -> Vec<String> {
        err.lines().filter(|l| l.contains("persist: handed ") && l.contains("/small_paths-")).map(String::from).collect()
    };
    let file = |c: &Cache| -> (u64, u64, u64) {
        let path = c.dir().join(c.file_of("small_paths"));
        let meta = std::fs::metadata(&path).unwrap();
        let row = c.json(&["list"]).as_array().unwrap().iter().find(|r| r["file"]["module_path"].as_str() == Some(program.as_str())).cloned();
        let blocks = row.expect("the program's row")["file"]["blocks"].as_u64().unwrap();
        (std::os::unix::fs::MetadataExt::ino(&meta), blocks, c.json(&["server", "status"])["gathered"].as_u64().unwrap())
    };
    c.tool_ok(&["server", "start", "--idle", "60"]);
    let cold = run("0");
    assert_eq!(handed(&cold).len(), 1, "{cold}");
    assert!(!handed(&cold)[0].ends_with("to gather"), "the cold run's delta is a file's start: {cold}");
    let (ino, blocks, _) = file(&c);
    assert!(blocks > 300, "the long path's blocks: {blocks}");

    // Argument 1: a few blocks, far fewer than one per 64 held.
    let first = run("1");
    let h = handed(&first);
    assert!(h.len() == 1 && h[0].ends_with("to the cache server to gather"), "{first}");
    // Building it is left to a detached copy, as for a bigger delta: the
    // process ends at once.
    assert!(first.contains("persist: handing new blocks to the cache server in the background"), "{first}");
    let (ino1, blocks1, waiting) = file(&c);
    assert_eq!((ino1, blocks1), (ino, blocks), "one run's few blocks leave the file as it is");
    assert!(waiting >= 1, "the delta waits in the server");
    let second = run("1");
    assert_eq!(handed(&second).len(), 1, "{second}");
    let (ino2, blocks2, _) = file(&c);
    assert!(ino2 != ino && blocks2 > blocks && blocks2 < blocks + 20, "blocks built by two runs are merged: {blocks} -> {blocks2}");
    let third = run("1");
    assert!(handed(&third).is_empty(), "the third run builds none of the program's blocks:\n{third}");

    // Arguments 2 and 3: different blocks, each built once, wait.
    run("2");
    run("3");
    let (ino3, blocks3, waiting) = file(&c);
    assert_eq!((ino3, blocks3), (ino2, blocks2), "blocks built once are not merged");
    assert!(waiting >= 2, "both deltas wait: {waiting}");
    let status = c.json(&["server", "status"]);
    assert_eq!((status["rejected"].as_u64(), status["errors"].as_u64()), (Some(0), Some(0)), "{status}");
    assert!(c.tool_ok(&["verify"]).contains("all valid"));
    c.tool_ok(&["server", "stop"]);
}

/// A trace in a file that goes stale in a run is replaced by the one the
/// run records afresh, or, when the run records none a file can hold
/// (under drcov, a trace reading coverage flags outside its segment),
/// kept with a larger budget: either way the runs after it stop
/// recording it. Before, the cache server dropped both kinds of delta
/// (they bring no block), and a run that built nothing in the module
/// sent no mark: `gcc -c` recorded and built traces of cc1 in every
/// warm run (drcov: 2.12x native, 1.92x once they stopped).
#[test]
fn traces_found_stale_are_recorded_in_no_later_run() {
    let work = tempfile::TempDir::new().unwrap();
    let source = work.path().join("hello.c");
    std::fs::write(&source, "#include <stdio.h>\nint main(void) { puts(\"hello\"); return 0; }\n").unwrap();
    let object = work.path().join("hello.o");
    let args = ["-c", source.to_str().unwrap(), "-o", object.to_str().unwrap()];
    for clients in [&[][..], &["-c", "drcov"][..]] {
        let c = Cache::new();
        let logs = tempfile::TempDir::new().unwrap();
        let mut options = vec!["-stats", "-logdir", logs.path().to_str().unwrap()];
        options.extend_from_slice(clients);
        let runs: Vec<Vec<u8>> = (0..6)
            .map(|_| {
                let out = served(&c, &options, "gcc", &args);
                assert!(out.status.success(), "{clients:?}: {}", text(&out.stderr));
                c.tool_ok(&["server", "sync"]);
                out.stderr
            })
            .collect();
        let recorded: Vec<u64> = runs.iter().map(|e| stat(e, "traces recorded afresh")).collect();
        let (cold, last) = (&runs[0], &runs[5]);
        // The counters are there: the cold run counts some of each.
        for counter in ["traces recorded afresh", "traces built", "cache files written"] {
            assert!(stat(cold, counter) > 0, "{clients:?}: the cold run's {counter}:\n{}", text(cold));
        }
        assert_eq!(recorded[5], 0, "{clients:?}: traces recorded afresh by run: {recorded:?}\n{}", text(last));
        assert_eq!(stat(last, "traces built"), 0, "{clients:?}\n{}", text(last));
        assert_eq!(stat(last, "cache files written"), 0, "{clients:?}: the last run hands something over\n{}", text(last));
        c.tool_ok(&["server", "stop"]);
    }
}
