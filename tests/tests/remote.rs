//! Caches shared across machines (issue 17): `cachetool push` sends a
//! directory's files to a remote store, `cachetool pull` brings them into
//! another (a fresh machine's), checked in full; the run after a pull is
//! warm and behaves as natively. The store here is a real HTTP cache in
//! bazel-remote's layout on loopback (`dbi_tests::http_cache`); its
//! faults (down, slow, 500s, wrong password, tampered objects) must never
//! harm the local directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use dbi_tests::http_cache::{Faults, HttpCache};
use dbi_tests::s3_server::S3Server;
use dbi_tests::{dbirun_path, temp_dir};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn user_dir(base: &Path) -> PathBuf {
    base.join(unsafe { libc::getuid() }.to_string())
}

fn cachetool(base: &Path, args: &[&str]) -> Output {
    cachetool_with(base, &[], args)
}

/// cachetool with the environment variables `env` (and no other remote,
/// signing or trust settings).
fn cachetool_with(base: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    Command::new(dbirun_path().with_file_name("cachetool"))
        .arg("--persist-dir")
        .arg(base)
        .args(args)
        .env_remove("DBIRUN_REMOTE")
        .env_remove("DBIRUN_SIGNING_KEY")
        .env_remove("DBIRUN_TRUSTED_KEYS")
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

fn dbirun(base: &Path, options: &[&str], program: &[&str]) -> Output {
    Command::new(dbirun_path())
        .args(["-persist", "-no_persist_server", "-persist_dir"])
        .arg(base)
        .args(options)
        .arg("--")
        .args(program)
        .output()
        .unwrap()
}

/// (blocks built, blocks loaded) of the last run recorded under `base`
/// (after its cache server, if one runs, has recorded what it was
/// handed).
fn last_run(base: &Path) -> (u64, u64) {
    let _ = cachetool(base, &["server", "sync"]);
    let out = cachetool(base, &["--json", "runs"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let runs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    (runs[0]["blocks_built"].as_u64().unwrap(), runs[0]["blocks_loaded"].as_u64().unwrap())
}

fn dpc_names(base: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(user_dir(base))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".dpc"))
        .collect();
    names.sort();
    names
}

/// Every file of `base`'s directory with its bytes (what must not change).
fn snapshot(base: &Path) -> Vec<(String, Vec<u8>)> {
    let mut all: Vec<(String, Vec<u8>)> = std::fs::read_dir(user_dir(base))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().is_file())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
        .filter(|(n, _)| n.ends_with(".dpc"))
        .collect();
    all.sort();
    all
}

const PROGRAM: [&str; 3] = ["/usr/bin/ls", "-la", "/usr/bin"];

/// A directory with the cold run's files of PROGRAM, pushed to a fresh
/// store under `prefix`.
fn pushed(prefix: &str) -> (tempfile::TempDir, tempfile::TempDir, HttpCache) {
    let from = temp_dir("remote-from");
    let cold = dbirun(from.path(), &[], &PROGRAM);
    assert!(cold.status.success(), "{}", text(&cold.stderr));
    let store_dir = temp_dir("remote-store");
    let store = HttpCache::start(store_dir.path());
    let push = cachetool(from.path(), &["push", "--remote", &store.url(prefix)]);
    assert!(push.status.success(), "{}{}", text(&push.stdout), text(&push.stderr));
    (from, store_dir, store)
}

#[test]
fn a_pulled_cache_makes_a_fresh_machines_first_run_warm() {
    let (from, _store_dir, store) = pushed("fleet");
    let files = dpc_names(from.path());
    assert!(files.len() >= 3, "ls, libc, ld.so at least: {files:?}");
    let objects = store.objects();
    let cas = objects.iter().filter(|o| o.starts_with("fleet/cas/")).count();
    let ac = objects.iter().filter(|o| o.starts_with("fleet/ac/")).count();
    // A file object per file; per key a manifest, its module's listing
    // and its file name's.
    assert_eq!(cas, files.len(), "{objects:?}");
    assert_eq!(ac, 3 * files.len(), "{objects:?}");

    // A second push sends nothing: every object is already there.
    let again = cachetool(from.path(), &["--json", "push", "--remote", &store.url("fleet")]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    let report: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(report["report"]["pushed"].as_array().unwrap().len(), 0, "{report}");
    assert_eq!(report["report"]["present"].as_array().unwrap().len(), files.len(), "{report}");
    assert!(!store.requests().iter().skip(objects.len() * 2).any(|r| r.starts_with("PUT")), "{:?}", store.requests());

    // A fresh machine state: nothing there, then the program's files pulled.
    let fresh = temp_dir("remote-to");
    let pull = cachetool(fresh.path(), &["pull", "--remote", &store.url("fleet"), PROGRAM[0]]);
    assert!(pull.status.success(), "{}{}", text(&pull.stdout), text(&pull.stderr));
    assert_eq!(dpc_names(fresh.path()), files, "{}", text(&pull.stdout));
    assert_eq!(snapshot(fresh.path()), snapshot(from.path()), "the very bytes pushed");
    let verify = cachetool(fresh.path(), &["verify"]);
    assert!(verify.status.success(), "{}{}", text(&verify.stdout), text(&verify.stderr));

    // Its first run is warm and behaves as natively.
    let native = Command::new(PROGRAM[0]).args(&PROGRAM[1..]).output().unwrap();
    let warm = dbirun(fresh.path(), &[], &PROGRAM);
    assert_eq!(warm.stdout, native.stdout);
    assert_eq!(warm.status.code(), native.status.code());
    let (built, loaded) = last_run(fresh.path());
    assert!(loaded > 0 && built * 20 <= loaded, "built {built}, loaded {loaded}");

    // --all-known: every module the directory's files name, replaced.
    let all = cachetool(fresh.path(), &["--json", "pull", "--remote", &store.url("fleet"), "--all-known", "--replace"]);
    assert!(all.status.success(), "{}", text(&all.stderr));
    let report: serde_json::Value = serde_json::from_slice(&all.stdout).unwrap();
    let taken = report["report"]["taken"].as_array().unwrap().len() + report["report"]["skipped"].as_array().unwrap().len();
    assert_eq!(taken, files.len(), "{report}");

    // Pulling again keeps the local files (they are valid).
    let again = cachetool(fresh.path(), &["pull", "--remote", &store.url("fleet"), PROGRAM[0]]);
    assert!(again.status.success() && text(&again.stdout).contains("pulled 0 files"), "{}", text(&again.stdout));
}

#[test]
fn tampered_truncated_or_misplaced_objects_are_never_published() {
    let (from, _store_dir, store) = pushed("t");
    let manifests: Vec<(String, serde_json::Value)> = store
        .objects()
        .into_iter()
        .filter(|o| o.starts_with("t/ac/"))
        .filter_map(|o| {
            let m: serde_json::Value = serde_json::from_slice(&std::fs::read(store.object(&o)).unwrap()).ok()?;
            m.get("sha256").is_some().then_some((o, m))
        })
        .collect();
    let libc = manifests.iter().find(|(_, m)| m["module_path"].as_str().unwrap().ends_with("/libc.so.6")).unwrap();
    let ls = manifests.iter().find(|(_, m)| m["module_path"].as_str().unwrap().ends_with("/ls")).unwrap();
    let object_of = |m: &serde_json::Value| store.object(&format!("t/cas/{}", m["stored_sha256"].as_str().unwrap()));
    let pull_libc = |what: &str| {
        let fresh = temp_dir("remote-bad");
        let out = cachetool(fresh.path(), &["pull", "--remote", &store.url("t"), libc.1["module_path"].as_str().unwrap()]);
        assert!(out.status.success(), "{what}: {}", text(&out.stderr));
        assert!(dpc_names(fresh.path()).is_empty(), "{what}: published {:?}", dpc_names(fresh.path()));
        text(&out.stdout)
    };

    // A flipped byte in libc's file.
    let good = std::fs::read(object_of(&libc.1)).unwrap();
    let mut bad = good.clone();
    let at = bad.len() - 100;
    bad[at] ^= 1;
    std::fs::write(object_of(&libc.1), &bad).unwrap();
    assert!(pull_libc("flipped").contains("sha256 differs"));
    // Truncated.
    std::fs::write(object_of(&libc.1), &good[..good.len() / 2]).unwrap();
    assert!(pull_libc("truncated").contains("sha256 differs"));
    std::fs::write(object_of(&libc.1), &good).unwrap();
    // Damaged, stored and hashed again with a manifest rewritten to match:
    // the file's own checks refuse it.
    let raw = zstd::decode_all(&good[..]).unwrap();
    let mut bad_raw = raw.clone();
    let at = bad_raw.len() - 100;
    bad_raw[at] ^= 1;
    let restore = |m: &mut serde_json::Value, raw: &[u8]| {
        let stored = zstd::encode_all(raw, 3).unwrap();
        std::fs::write(store.object(&format!("t/cas/{}", sha256_hex(&stored))), &stored).unwrap();
        m["stored_sha256"] = sha256_hex(&stored).into();
        m["stored_size"] = stored.len().into();
        m["sha256"] = sha256_hex(raw).into();
        m["size"] = raw.len().into();
        std::fs::write(store.object(&libc.0), serde_json::to_vec(&m).unwrap()).unwrap();
    };
    let mut m = libc.1.clone();
    restore(&mut m, &bad_raw);
    assert!(pull_libc("damaged, manifest to match").contains("corrupt ("));
    // A manifest that says the file is smaller than it decompresses to.
    let mut m = libc.1.clone();
    m["size"] = (raw.len() / 2).into();
    std::fs::write(store.object(&libc.0), serde_json::to_vec(&m).unwrap()).unwrap();
    assert!(pull_libc("decompresses larger").contains("does not decompress"));
    // Another module's file (ls) named by libc's manifest.
    let ls_raw = zstd::decode_all(&std::fs::read(object_of(&ls.1)).unwrap()[..]).unwrap();
    let mut m = libc.1.clone();
    restore(&mut m, &ls_raw);
    let said = pull_libc("another module's file");
    assert!(said.contains("module differs") || said.contains("corrupt"), "{said}");
    // A manifest moved to another key's name.
    std::fs::write(store.object(&libc.0), serde_json::to_vec(&ls.1).unwrap()).unwrap();
    assert!(pull_libc("misplaced manifest").contains("belongs elsewhere"));
    // A manifest of another runtime version (its key says so too).
    let mut m = libc.1.clone();
    m["runtime_version"] = "00000001".into();
    std::fs::write(store.object(&libc.0), serde_json::to_vec(&m).unwrap()).unwrap();
    assert!(pull_libc("other runtime").contains("runtime 00000001"));
    // Restored, the same pull takes it.
    std::fs::write(object_of(&libc.1), &good).unwrap();
    std::fs::write(store.object(&libc.0), serde_json::to_vec(&libc.1).unwrap()).unwrap();
    let fresh = temp_dir("remote-good");
    let out = cachetool(fresh.path(), &["pull", "--remote", &store.url("t"), libc.1["module_path"].as_str().unwrap()]);
    assert!(out.status.success() && dpc_names(fresh.path()).len() == 1, "{}{}", text(&out.stdout), text(&out.stderr));
    drop(from);
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(b).iter().map(|x| format!("{x:02x}")).collect()
}

/// A failing store: one line on stderr naming the store and the trouble,
/// status 1, and the local directory exactly as it was.
fn fails_cleanly(base: &Path, args: &[&str], want: &str) {
    let before = snapshot(base);
    let started = std::time::Instant::now();
    let out = cachetool(base, args);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{args:?}: {}{err}", text(&out.stdout));
    assert_eq!(err.lines().count(), 1, "{args:?}: one line: {err}");
    assert!(err.starts_with("cachetool: remote ") && err.contains(want), "{args:?}: want '{want}': {err}");
    assert!(started.elapsed() < Duration::from_secs(30), "{args:?} took {:?}", started.elapsed());
    assert_eq!(snapshot(base), before, "{args:?} changed the local directory");
}

#[test]
fn a_store_down_slow_failing_or_refusing_says_so_in_one_line() {
    let (from, _store_dir, store) = pushed("f");
    let to = temp_dir("remote-f-to");
    std::fs::create_dir_all(user_dir(to.path())).unwrap();
    // Down: nothing listens on that port.
    let down = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://127.0.0.1:{}/f", l.local_addr().unwrap().port())
    };
    fails_cleanly(from.path(), &["push", "--remote", &down], "unreachable");
    fails_cleanly(to.path(), &["pull", "--remote", &down, PROGRAM[0]], "unreachable");
    // Server errors.
    store.set_faults(Faults { status: Some(500), ..Faults::default() });
    fails_cleanly(to.path(), &["pull", "--remote", &store.url("f"), PROGRAM[0]], "server error");
    // Slow: every answer later than the timeout.
    store.set_faults(Faults { delay: Some(Duration::from_secs(3)), ..Faults::default() });
    fails_cleanly(to.path(), &["pull", "--timeout", "1", "--remote", &store.url("f"), PROGRAM[0]], "timed out");
    // A password is wanted: none, then a wrong one, then the right one.
    store.set_faults(Faults { password: Some("ci:secret".into()), ..Faults::default() });
    fails_cleanly(to.path(), &["pull", "--remote", &store.url("f"), PROGRAM[0]], "access denied");
    let wrong = format!("http://ci:guess@127.0.0.1:{}/f", store.port);
    fails_cleanly(to.path(), &["pull", "--remote", &wrong, PROGRAM[0]], "access denied");
    let right = format!("http://ci:secret@127.0.0.1:{}/f", store.port);
    let out = cachetool(to.path(), &["pull", "--remote", &right, PROGRAM[0]]);
    assert!(out.status.success() && !dpc_names(to.path()).is_empty(), "{}{}", text(&out.stdout), text(&out.stderr));
    // No store named: one line saying how to name one.
    let out = cachetool(to.path(), &["pull", PROGRAM[0]]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("DBIRUN_REMOTE"), "{}", text(&out.stderr));
    let out = cachetool(to.path(), &["pull", "--remote", "ftp://x/y", PROGRAM[0]]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("not an s3:// or http(s):// URL"), "{}", text(&out.stderr));
}

/// cachetool with the S3 server's environment (`secret` as the secret key).
fn cachetool_s3(base: &Path, s3: &S3Server, secret: &str, args: &[&str]) -> Output {
    let mut c = Command::new(dbirun_path().with_file_name("cachetool"));
    c.arg("--persist-dir").arg(base).args(args).env_remove("DBIRUN_REMOTE");
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("AWS_")) {
        c.env_remove(k);
    }
    c.envs(s3.env(secret)).output().unwrap()
}

#[test]
fn an_s3_bucket_carries_caches_between_machines_and_refuses_wrong_keys() {
    let s3 = S3Server::start("fleet");
    let from = temp_dir("s3-from");
    let cold = dbirun(from.path(), &[], &PROGRAM);
    assert!(cold.status.success(), "{}", text(&cold.stderr));
    let url = format!("s3://{}/ci/caches", s3.bucket);
    let push = cachetool_s3(from.path(), &s3, &s3.secret, &["--json", "push", "--remote", &url]);
    assert!(push.status.success(), "{}{}", text(&push.stdout), text(&push.stderr));
    let pushed: serde_json::Value = serde_json::from_slice(&push.stdout).unwrap();
    let files = dpc_names(from.path());
    assert_eq!(pushed["report"]["pushed"].as_array().unwrap().len(), files.len(), "{pushed}");
    let again = cachetool_s3(from.path(), &s3, &s3.secret, &["--json", "push", "--remote", &url]);
    let again: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(again["report"]["present"].as_array().unwrap().len(), files.len(), "{again}");

    let to = temp_dir("s3-to");
    std::fs::create_dir_all(user_dir(to.path())).unwrap();
    // Wrong credentials, an unknown key, a bucket that does not exist:
    // one line each, nothing written.
    for (secret, remote, want) in [
        ("not-the-secret", url.as_str(), "access denied"),
        (s3.secret.as_str(), "s3://no-such-bucket/ci", "no such bucket"),
    ] {
        let before = snapshot(to.path());
        let out = cachetool_s3(to.path(), &s3, secret, &["pull", "--remote", remote, PROGRAM[0]]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{remote}: {}{err}", text(&out.stdout));
        assert!(err.lines().count() == 1 && err.contains(want), "{remote}: want '{want}': {err}");
        assert_eq!(snapshot(to.path()), before);
    }
    let mut unknown = s3.env(&s3.secret);
    unknown[0].1 = "AKIAUNKNOWNKEY000000".into();
    let mut c = Command::new(dbirun_path().with_file_name("cachetool"));
    c.arg("--persist-dir").arg(to.path()).args(["pull", "--remote", &url, PROGRAM[0]]).envs(unknown);
    let out = c.output().unwrap();
    assert!(out.status.code() == Some(1) && text(&out.stderr).contains("InvalidAccessKeyId"), "{}", text(&out.stderr));

    // The right key: the files come over whole, and the run is warm.
    let pull = cachetool_s3(to.path(), &s3, &s3.secret, &["pull", "--remote", &url, PROGRAM[0]]);
    assert!(pull.status.success(), "{}{}", text(&pull.stdout), text(&pull.stderr));
    assert_eq!(snapshot(to.path()), snapshot(from.path()));
    let native = Command::new(PROGRAM[0]).args(&PROGRAM[1..]).output().unwrap();
    let warm = dbirun(to.path(), &[], &PROGRAM);
    assert_eq!(warm.stdout, native.stdout);
    let (built, loaded) = last_run(to.path());
    assert!(loaded > 0 && built * 20 <= loaded, "built {built}, loaded {loaded}");
}

/// dbirun with the cache server (started on demand) and `DBIRUN_REMOTE`.
fn dbirun_served(base: &Path, remote: &str, program: &[&str]) -> Output {
    dbirun_served_with(base, remote, &[], program)
}

/// [`dbirun_served`] with the environment variables `env` too (which the
/// server it starts inherits).
fn dbirun_served_with(base: &Path, remote: &str, env: &[(&str, &str)], program: &[&str]) -> Output {
    Command::new(dbirun_path())
        .args(["-persist", "-persist_dir"])
        .arg(base)
        .arg("--")
        .args(program)
        .env_remove("DBIRUN_OPTIONS")
        .env("DBIRUN_REMOTE", remote)
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

/// The server's status counter `name` under `base`, after a sync.
fn server_counter(base: &Path, name: &str) -> u64 {
    let sync = cachetool(base, &["server", "sync"]);
    assert!(sync.status.success(), "{}", text(&sync.stderr));
    let out = cachetool(base, &["--json", "server", "status"]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    status[name].as_u64().unwrap_or(0)
}

/// Waits (at most 30 s) until `done` holds.
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(30), "{what}: not within 30 s");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Stops the cache server of `base` when dropped (a test failing too).
struct StopServer<'a>(&'a Path);

impl Drop for StopServer<'_> {
    fn drop(&mut self) {
        let _ = cachetool(self.0, &["server", "stop"]);
    }
}

#[test]
fn the_cache_server_reads_through_and_writes_behind() {
    let store_dir = temp_dir("remote-srv-store");
    let store = HttpCache::start(store_dir.path());
    let url = store.url("srv");
    // Machine A runs the program; its server pushes what it wrote.
    let a = temp_dir("remote-srv-a");
    let _stop_a = StopServer(a.path());
    let run = dbirun_served(a.path(), &url, &PROGRAM);
    assert!(run.status.success(), "{}", text(&run.stderr));
    // It pushes one file at a time: wait for all of them (the first
    // sync lets it publish the run's files).
    let _ = server_counter(a.path(), "remote_pushed");
    let files = dpc_names(a.path());
    assert!(files.len() >= 3, "{files:?}");
    let pushed_files = || store.objects().iter().filter(|o| o.starts_with("srv/cas/")).count();
    eventually("A's server pushes its files", || pushed_files() >= files.len());
    assert!(server_counter(a.path(), "remote_pushed") >= files.len() as u64);

    // Machine B runs the program with other arguments: its server fetches
    // A's files for the keys it misses and merges them with B's blocks.
    let b = temp_dir("remote-srv-b");
    let _stop_b = StopServer(b.path());
    let other = ["/usr/bin/ls", "/"];
    let run = dbirun_served(b.path(), &url, &other);
    assert!(run.status.success(), "{}", text(&run.stderr));
    // All but the vDSO's: `ls /` does not read the clock.
    let b_needs = files.iter().filter(|f| !f.starts_with("vdso-")).count() as u64;
    eventually("B's server fetches A's files", || server_counter(b.path(), "remote_fetched") >= b_needs);
    assert_eq!(server_counter(b.path(), "remote_errors"), 0);
    // So B's first run of A's command is warm, though B never ran it.
    let native = Command::new(PROGRAM[0]).args(&PROGRAM[1..]).output().unwrap();
    let warm = dbirun_served(b.path(), &url, &PROGRAM);
    assert_eq!(warm.stdout, native.stdout);
    let (built, loaded) = last_run(b.path());
    assert!(loaded > 0 && built * 20 <= loaded, "built {built}, loaded {loaded}");
    let log = std::fs::read_to_string(user_dir(b.path()).join("dbicached.log")).unwrap_or_default();
    assert!(log.contains("remote: fetched"), "{log}");

    // Machine C's very first run (dbirun starts its server, and with a
    // remote store waits until it listens): each module's file, which C
    // lacks, is fetched while the process waits for the server's answer.
    let c = temp_dir("remote-srv-c");
    let _stop_c = StopServer(c.path());
    let first = dbirun_served_with(c.path(), &url, &[("DBIRUN_REMOTE_WAIT_MS", "90")], &PROGRAM);
    assert_eq!(first.stdout, native.stdout);
    let (built, loaded) = last_run(c.path());
    let log = std::fs::read_to_string(user_dir(c.path()).join("dbicached.log")).unwrap_or_default();
    // Quiet, every module's file comes in time (built 8, loaded 6,200);
    // under the load of the tests beside it, a fetch can miss the 90 ms a
    // process waits, and that module alone is translated.
    assert!(loaded > built, "first run on C: built {built}, loaded {loaded}; its server's log:\n{log}");
    assert!(log.contains("for a process"), "{log}");
}

/// `cachetool keygen`'s (secret, public) keys.
fn keygen() -> (String, String) {
    let out = cachetool(Path::new("/nonexistent"), &["--json", "keygen"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let k: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    (k["signing_key"].as_str().unwrap().to_string(), k["public_key"].as_str().unwrap().to_string())
}

#[test]
fn with_signing_on_only_files_signed_by_a_trusted_key_are_taken() {
    let (from, _store_dir, store) = pushed("sig");
    let url = store.url("sig");
    let (secret, public) = keygen();
    let (_, stranger) = keygen();
    let module = "/usr/bin/ls";
    let files = dpc_names(from.path()).len();
    let pull = |trusted: &str| {
        let fresh = temp_dir("remote-sig-to");
        let out = cachetool_with(fresh.path(), &[("DBIRUN_TRUSTED_KEYS", trusted)], &["pull", "--remote", &url, module]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        (dpc_names(fresh.path()).len(), text(&out.stdout), fresh)
    };
    // Pushed unsigned: refused once a key is trusted.
    let (n, said, _) = pull(&public);
    assert!(n == 0 && said.contains("unsigned"), "{said}");
    // Pushed again, signed: the signing pusher replaces the unsigned manifests.
    let out = cachetool_with(from.path(), &[("DBIRUN_SIGNING_KEY", &secret)], &["--json", "push", "--remote", &url]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["report"]["pushed"].as_array().unwrap().len(), files, "{report}");
    let (n, said, _) = pull(&public);
    assert_eq!(n, files, "{said}");
    // Trusting another key only: refused.
    let (n, said, _) = pull(&stranger);
    assert!(n == 0 && said.contains("not trusted"), "{said}");
    // A signed manifest changed after signing (here: its block count): refused.
    let manifest = store
        .objects()
        .into_iter()
        .filter(|o| o.starts_with("sig/ac/"))
        .find(|o| std::fs::read_to_string(store.object(o)).unwrap().contains("\"/usr/bin/ls\""))
        .unwrap();
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(store.object(&manifest)).unwrap()).unwrap();
    m["blocks"] = (m["blocks"].as_u64().unwrap() + 1).into();
    std::fs::write(store.object(&manifest), serde_json::to_vec(&m).unwrap()).unwrap();
    let (n, said, _) = pull(&public);
    assert!(n == files - 1 && said.contains("bad signature"), "{said}");
    // Signing off: the store's files are taken as before (checked locally).
    let (n, said, _) = pull("");
    assert_eq!(n, files, "{said}");
    let out = cachetool_with(Path::new("/nonexistent"), &[("DBIRUN_TRUSTED_KEYS", "1234")], &["pull", "--remote", &url, module]);
    assert!(out.status.code() == Some(1) && text(&out.stderr).contains("not 64 hex digits"), "{}", text(&out.stderr));
}

#[test]
fn a_pull_killed_halfway_leaves_whole_files_and_the_next_pull_finishes() {
    let (from, _store_dir, store) = pushed("kill");
    let to = temp_dir("remote-kill-to");
    // Each answer late, so the pull is surely mid-way when killed.
    store.set_faults(Faults { delay: Some(Duration::from_millis(150)), ..Faults::default() });
    let mut child = Command::new(dbirun_path().with_file_name("cachetool"))
        .arg("--persist-dir")
        .arg(to.path())
        .args(["pull", "--remote", &store.url("kill"), PROGRAM[0]])
        .env_remove("DBIRUN_REMOTE")
        .env_remove("DBIRUN_TRUSTED_KEYS")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    child.kill().unwrap();
    child.wait().unwrap();
    store.set_faults(Faults::default());
    // Whatever was published is whole and valid.
    let verify = cachetool(to.path(), &["verify"]);
    assert!(verify.status.success(), "{}{}", text(&verify.stdout), text(&verify.stderr));
    let partial = dpc_names(to.path());
    assert!(partial.len() < dpc_names(from.path()).len(), "killed too late: {partial:?}");
    // The next pull takes the rest.
    let again = cachetool(to.path(), &["pull", "--remote", &store.url("kill"), PROGRAM[0]]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert_eq!(snapshot(to.path()), snapshot(from.path()));
}

#[test]
fn a_dead_store_never_harms_a_run() {
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://127.0.0.1:{}/x", l.local_addr().unwrap().port())
    };
    let dir = temp_dir("remote-dead");
    let _stop = StopServer(dir.path());
    let native = Command::new(PROGRAM[0]).args(&PROGRAM[1..]).output().unwrap();
    for _ in 0..2 {
        let run = dbirun_served(dir.path(), &dead, &PROGRAM);
        assert_eq!(run.stdout, native.stdout);
        assert_eq!(run.stderr, native.stderr);
        assert_eq!(run.status.code(), native.status.code());
        // What the run handed over is merged before the next starts.
        let sync = cachetool(dir.path(), &["server", "sync"]);
        assert!(sync.status.success(), "{}", text(&sync.stderr));
    }
    eventually("the server notes the dead store", || server_counter(dir.path(), "remote_errors") >= 1);
    // The directory works as without a store: the second run was warm.
    let (built, loaded) = last_run(dir.path());
    assert!(loaded > 0 && built * 20 <= loaded, "built {built}, loaded {loaded}");
}

/// The basis of a deep check (docs/remote.md, Trust): translating the same
/// module with the same key twice gives the same bytes.
#[test]
fn translation_is_deterministic_for_a_key() {
    let (a, b) = (temp_dir("det-a"), temp_dir("det-b"));
    for d in [&a, &b] {
        let aot = dbirun(d.path(), &["-aot"], &PROGRAM);
        assert!(aot.status.success(), "{}", text(&aot.stderr));
    }
    let (sa, sb) = (snapshot(a.path()), snapshot(b.path()));
    assert!(sa.len() >= 3);
    for ((na, ba), (nb, bb)) in sa.iter().zip(&sb) {
        assert_eq!(na, nb);
        assert!(ba == bb, "{na}: two AOT translations differ");
    }
    assert_eq!(sa.len(), sb.len());
    // So do two cold runs that take the same paths.
    let (c, d) = (temp_dir("det-c"), temp_dir("det-d"));
    for dir in [&c, &d] {
        let run = dbirun(dir.path(), &[], &PROGRAM);
        assert!(run.status.success(), "{}", text(&run.stderr));
    }
    // But the vDSO's clock functions retry when the kernel updated the
    // time as they read it: a loop head some runs see and others do not.
    let apart_from_vdso = |base: &Path| -> Vec<(String, Vec<u8>)> { snapshot(base).into_iter().filter(|(n, _)| !n.starts_with("vdso-")).collect() };
    let (sc, sd) = (apart_from_vdso(c.path()), apart_from_vdso(d.path()));
    assert!(sc.len() >= 3);
    let differ: Vec<&str> = sc.iter().zip(&sd).filter(|(a, b)| a != b).map(|(a, _)| a.0.as_str()).collect();
    assert!(sc.len() == sd.len() && differ.is_empty(), "two cold runs of ls wrote different files: {differ:?}");
}

/// Listings are the objects pushes read, extend and write back: on S3 a
/// listing is replaced only if no one changed it since it was read.
#[test]
fn an_s3_object_is_replaced_only_if_unchanged_since_read() {
    let s3 = S3Server::start("cond");
    let location = remote::Location::parse(&format!("s3://{}/p", s3.bucket)).unwrap();
    let store = remote::open_with(&location, Duration::from_secs(10), &s3.env(&s3.secret)).unwrap();
    assert!(store.put_if("ac/x", b"1".to_vec(), None).unwrap(), "created");
    assert!(!store.put_if("ac/x", b"2".to_vec(), None).unwrap(), "not created twice");
    let (bytes, read) = store.get_versioned("ac/x", 100).unwrap().unwrap();
    assert_eq!(bytes, b"1");
    assert!(read.is_some(), "S3 gives a version");
    store.put("ac/x", b"3".to_vec()).unwrap(); // another machine's push
    assert!(!store.put_if("ac/x", b"4".to_vec(), read.as_deref()).unwrap(), "changed since read");
    let (bytes, read) = store.get_versioned("ac/x", 100).unwrap().unwrap();
    assert_eq!(bytes, b"3");
    assert!(store.put_if("ac/x", b"5".to_vec(), read.as_deref()).unwrap());
    assert_eq!(store.get("ac/x", 100).unwrap().unwrap(), b"5");
    assert!(store.get("ac/x", 0).is_err_and(|e| e.problem == remote::Problem::TooLarge));
}

/// With the deep check on (`DBIRUN_DEEP_CHECK=1`), the server offers a
/// fetched file only once its blocks, translated again, match: a file
/// planted in the store with every hash right (which every local check
/// accepts) is refused, the others are offered to the runs that follow.
/// A store holding the cold run's files of PROGRAM, ls's own planted
/// with a trap in a block, every hash recomputed (so every local check
/// accepts it): the store, its URL, and how many files it holds.
fn store_with_a_planted_file(prefix: &str) -> (tempfile::TempDir, HttpCache, String, u64) {
    let from = temp_dir("remote-deep-from");
    let cold = dbirun(from.path(), &[], &PROGRAM);
    assert!(cold.status.success(), "{}", text(&cold.stderr));
    let planted = dbi_tests::persist::dpc_of(from.path(), "ls");
    let good = std::fs::read(&planted).unwrap();
    let bad = dbi_tests::persist::with_zones(&good, |v, zones| {
        let b = v.index.blocks.iter().find(|b| b.code_len.to_native() >= 8).unwrap();
        let x = v.index.segments[b.segment.to_native() as usize].x_zone.to_native() as usize;
        zones[x - 1][b.code_offset.to_native() as usize] = 0xcc;
    });
    dbi_tests::persist::replace_file(&planted, &bad);
    let store_dir = temp_dir("remote-deep-store");
    let store = HttpCache::start(store_dir.path());
    let url = store.url(prefix);
    let push = cachetool(from.path(), &["push", "--remote", &url]);
    assert!(push.status.success(), "{}{}", text(&push.stdout), text(&push.stderr));
    (store_dir, store, url, dpc_names(from.path()).len() as u64)
}

/// `pull --deep` publishes a file only once its blocks, translated again
/// here, match: the planted file every local check accepts is left out,
/// with the reason.
#[test]
fn a_deep_pull_leaves_out_a_planted_file_the_local_checks_accept() {
    let (_store_dir, _store, url, pushed) = store_with_a_planted_file("deep-pull");
    let plain = temp_dir("remote-deep-plain");
    let out = cachetool(plain.path(), &["--json", "pull", "--remote", &url, "/usr/bin/ls"]);
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    let took = |out: &Output| -> Vec<String> {
        let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        r["report"]["taken"].as_array().unwrap().iter().map(|t| t[0].as_str().unwrap().to_string()).collect()
    };
    assert!(took(&out).iter().any(|n| n.starts_with("ls-")), "the local checks alone take it: {}", text(&out.stdout));
    let deep = temp_dir("remote-deep-pulled");
    let out = cachetool(deep.path(), &["--json", "pull", "--deep", "--remote", &url, "/usr/bin/ls"]);
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    let taken = took(&out);
    assert!(!taken.iter().any(|n| n.starts_with("ls-")), "{}", text(&out.stdout));
    assert!(taken.len() as u64 >= pushed.min(3) - 1, "{}", text(&out.stdout));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let why = r["report"]["skipped"].as_array().unwrap().iter().find(|s| s[0].as_str().unwrap().starts_with("ls-")).map(|s| s[1].to_string());
    assert!(why.as_deref().is_some_and(|w| w.contains("deep check failed: block at +0x")), "{r:#}");
    let verify = cachetool(deep.path(), &["verify", "--deep"]);
    assert!(verify.status.success(), "{}", text(&verify.stdout));
}

/// With the deep check on (`DBIRUN_DEEP_CHECK=1`), the server offers a
/// fetched file only once its blocks, translated again, match: a file
/// planted in the store with every hash right (which every local check
/// accepts) is refused, the others are offered to the runs that follow.
#[test]
fn with_the_deep_check_on_the_server_offers_only_files_that_match() {
    let (_store_dir, _store, url, pushed) = store_with_a_planted_file("deep-srv");
    let to = temp_dir("remote-deep-to");
    let _stop = StopServer(to.path());
    let served = |program: &[&str]| dbirun_served_with(to.path(), &url, &[("DBIRUN_DEEP_CHECK", "1")], program);
    let native = Command::new(PROGRAM[0]).args(&PROGRAM[1..]).output().unwrap();
    let first = served(&PROGRAM);
    assert_eq!(first.stdout, native.stdout);
    let log = || std::fs::read_to_string(user_dir(to.path()).join("dbicached.log")).unwrap_or_default();
    eventually("the server deep-checks what it fetched", || {
        server_counter(to.path(), "remote_deep_checked") + server_counter(to.path(), "remote_refused") >= pushed
    });
    assert_eq!(server_counter(to.path(), "remote_refused"), 1, "{}", log());
    assert!(server_counter(to.path(), "remote_deep_checked") >= pushed - 1, "{}", log());
    assert!(log().contains("refused: deep check failed: block at +0x"), "{}", log());
    // The planted code is nowhere in the directory: every file matches its
    // re-translation (ls's is the one the first run built).
    let deep = cachetool(to.path(), &["verify", "--deep"]);
    assert!(deep.status.success(), "{}{}", text(&deep.stdout), text(&deep.stderr));
    let warm = served(&PROGRAM);
    assert_eq!(warm.stdout, native.stdout);
    let (built, loaded) = last_run(to.path());
    assert!(loaded > 0 && built * 20 <= loaded, "built {built}, loaded {loaded}");
}
