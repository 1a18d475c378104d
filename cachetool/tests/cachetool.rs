//! `cachetool` and the cache index end to end: real `.dpc` files made by
//! `dbirun -persist` runs (of /bin/true, /bin/ls, /usr/bin/python3 and
//! small C programs compiled here) in each test's own temporary
//! directories, the real SQLite index, and the `cachetool` binary.
//!
//! Needs `target/release/dbirun` (`cargo build --release`; or `$DBIRUN`).

mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use common::*;
use serde_json::Value;
use tempfile::TempDir;

#[test]
fn list_inspect_and_stats_show_real_files() {
    let c = Cache::new();
    c.run_ok(&[], "/usr/bin/true", &[]);
    c.run_ok(&[], "/usr/bin/ls", &["/"]);
    let rows = list_rows(&c);
    assert!(rows.iter().any(|r| r.0 == "/usr/bin/true" && r.1 == "valid"), "{rows:?}");
    assert!(rows.iter().any(|r| r.0.ends_with("/libc.so.6") && r.1 == "valid"), "{rows:?}");
    let table = c.tool_ok(&["list"]);
    let header = table.lines().next().unwrap();
    for col in ["MODULE", "BLOCKS", "SIZE", "LAST USED", "STATUS"] {
        assert!(header.contains(col), "{header}");
    }
    assert!(table.lines().any(|l| l.starts_with("/usr/bin/true ") && l.contains("valid")), "{table}");
    let table = c.tool_ok(&["list", "--wide"]);
    let header = table.lines().next().unwrap();
    for col in ["MODULE", "KEY", "BLOCKS", "SIZE", "LAST USED", "STATUS", "FILE"] {
        assert!(header.contains(col), "{header}");
    }
    assert!(table.lines().any(|l| l.starts_with("/usr/bin/true ") && l.contains("valid") && l.contains("clients none")), "{table}");

    let shown = c.tool_ok(&["inspect", "/usr/bin/true"]);
    let version = format!("format version:   {}", persist::FORMAT_VERSION);
    for want in [version.as_str(), "module:           /usr/bin/true", "runtime version:", "zones:", "rw- (private)", "r-x", "segments:", "blocks:"] {
        assert!(shown.contains(want), "no '{want}' in\n{shown}");
    }
    assert!(shown.lines().filter(|l| l.trim_end().ends_with(" ok")).count() >= 3, "{shown}");
    // By file name too.
    let name = c.file_of("true");
    assert!(c.tool_ok(&["inspect", &name]).contains("status:           valid"));

    let blocks = c.json(&["inspect", "/usr/bin/true", "--blocks"]);
    let list = blocks[0]["blocks"].as_array().unwrap();
    assert!(!list.is_empty());
    let first = list[0]["module_offset"].as_u64().unwrap();
    let dis = c.tool_ok(&["inspect", "/usr/bin/true", "--disasm", &format!("{first:#x}")]);
    assert!(dis.contains("app code: /usr/bin/true at module offset"), "{dis}");
    assert!(dis.contains("persisted code: zone"), "{dis}");
    let d = c.json(&["inspect", "/usr/bin/true", "--disasm", &first.to_string()]);
    assert!(!d[0]["disasm"]["app_code"].as_array().unwrap().is_empty());
    assert!(!d[0]["disasm"]["cache_code"].as_array().unwrap().is_empty());
    // A block's exits, as its exit data says them (persist::exit_data).
    let with_exits = list.iter().find(|b| !b["exits"].as_array().unwrap().is_empty()).expect("a block with exits");
    let at = with_exits["module_offset"].as_u64().unwrap();
    let dis = c.tool_ok(&["inspect", "/usr/bin/true", "--disasm", &format!("{at:#x}")]);
    for exit in with_exits["exits"].as_array().unwrap() {
        let want = format!("exit data: direct exit to module offset {:#x}", exit.as_u64().unwrap());
        assert!(dis.contains(&want), "no '{want}' in\n{dis}");
    }
    assert!(dis.contains("exit data: branch at -"), "{dis}");
    let missing = c.tool(&["inspect", "/usr/bin/true", "--disasm", "0x7fffffff"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(text(&missing.stderr).contains("no block at module offset"));

    let s = c.json(&["stats"]);
    assert_eq!(s["runs"], 2);
    assert!(s["blocks_built"].as_u64().unwrap() > 0);
    assert!(s["modules"].as_array().unwrap().iter().any(|m| m["module"] == "/usr/bin/true"));
    // Per module: /bin/true's first run built its blocks; a second run of
    // it loads them, and its hit rate climbs.
    let module = |s: &serde_json::Value| s["modules"].as_array().unwrap().iter().find(|m| m["module"] == "/usr/bin/true").cloned().unwrap();
    let cold = module(&s);
    assert!(cold["blocks_built"].as_u64().unwrap() > 0 && cold["blocks_cached"] == 0, "{cold}");
    c.run_ok(&[], "/usr/bin/true", &[]);
    let warm = module(&c.json(&["stats"]));
    assert!(warm["blocks_cached"].as_u64().unwrap() > 0, "{warm}");
    assert!(warm["hit_rate"].as_f64().unwrap() > 0.4, "{warm}");
    let chart = c.tool_ok(&["stats"]);
    assert!(chart.contains("hit rate:") && chart.contains('█') || chart.contains('·'), "{chart}");
}

/// A hot loop's trace, as `inspect --traces` lists it: its head is its
/// first block, its code lies in one of the file's segments, and its
/// exits include the loop's way back to the head.
#[test]
fn inspect_lists_a_loops_trace() {
    let tmp = TempDir::new().unwrap();
    let src = tmp.path().join("loop.c");
    fs::write(&src, "#include <stdio.h>\nint main(void) { volatile long s = 0; for (long i = 0; i < 2000000; i++) s += i & 7; printf(\"%ld\\n\", (long)s); return 0; }\n").unwrap();
    let prog = tmp.path().join("loop");
    assert!(Command::new("gcc").arg("-O1").arg("-o").arg(&prog).arg(&src).status().unwrap().success());
    let c = Cache::new();
    let out = c.run_ok(&[], prog.to_str().unwrap(), &[]);
    assert_eq!(text(&out.stdout), "7000000\n");
    let file = c.file_of("loop");
    let shown = c.json(&["inspect", &file, "--traces"]);
    let segments = shown[0]["inspection"]["summary"]["segments"].as_u64().unwrap();
    let traces = shown[0]["traces"].as_array().unwrap();
    assert!(!traces.is_empty(), "no trace of a 2M-round loop: {shown}");
    for t in traces {
        let blocks = t["blocks"].as_array().unwrap();
        assert_eq!(t["head"], blocks[0], "{t}");
        assert!(t["segment"].as_u64().unwrap() < segments && t["code_size"].as_u64().unwrap() > 0, "{t}");
    }
    assert!(traces.iter().any(|t| t["exits"].as_array().unwrap().contains(&t["head"])), "no trace loops back to its head: {traces:?}");
    // A trace new in its file may miss its in-line checks 1,024 times a run.
    assert!(traces.iter().any(|t| t["budget"].as_u64() == Some(1024)), "no trace with a new one's budget: {traces:?}");
    let table = c.tool_ok(&["inspect", &file, "--traces"]);
    assert!(table.lines().any(|l| l.starts_with("HEAD ") && l.contains("MISS BUDGET")), "{table}");
    let head = format!("{:#x}", traces[0]["head"].as_u64().unwrap());
    assert!(table.lines().any(|l| l.starts_with("HEAD ") && l.contains("BLOCKS")), "{table}");
    assert!(table.lines().any(|l| l.starts_with(&format!("{head} "))), "{table}");
    // Without --traces, none are listed.
    assert!(c.json(&["inspect", &file])[0]["traces"].is_null());
}

#[test]
fn runs_are_recorded_and_uses_counted() {
    let c = Cache::new();
    c.run_ok(&["-stats"], "/usr/bin/true", &[]);
    let warm = c.run_ok(&["-stats"], "/usr/bin/true", &[]);
    assert!(stat(&warm.stderr, "blocks loaded") > 0);
    assert_eq!(c.count("SELECT count(*) FROM runs"), 2);
    assert_eq!(c.count("SELECT blocks_loaded FROM runs WHERE id = 1"), 0);
    assert_eq!(c.count("SELECT blocks_loaded FROM runs WHERE id = 2") as u64, stat(&warm.stderr, "blocks loaded"));
    assert_eq!(c.count("SELECT files_loaded FROM runs WHERE id = 2") as u64, stat(&warm.stderr, "cache files loaded"));
    let name = c.file_of("true");
    let uses: i64 = c.db().query_row("SELECT use_count FROM cache_files WHERE name = ?1", [&name], |r| r.get(0)).unwrap();
    assert_eq!(uses, 1);
    let command: String = c.db().query_row("SELECT command FROM runs WHERE id = 2", [], |r| r.get(0)).unwrap();
    assert_eq!(command, "/usr/bin/true");
    // The app's status and output are dbirun's, recorded or not.
    let f = c.run(&[], "/bin/false", &[]);
    assert_eq!(f.status.code(), Some(1));
    assert!(f.stderr.is_empty() && f.stdout.is_empty());
    let st: String = c.db().query_row("SELECT exit_status FROM runs WHERE id = 3", [], |r| r.get(0)).unwrap();
    assert_eq!(st, "exit 1");
}

#[test]
fn export_then_import_feeds_a_warm_run() {
    let from = Cache::new();
    from.run_ok(&["-stats"], "/usr/bin/python3", &["-c", "pass"]);
    let bundle = from._tmp.path().join("caches.tar.zst");
    let out = from.tool_ok(&["export", bundle.to_str().unwrap()]);
    assert!(out.contains("exported"), "{out}");
    let exported = from.files().len();

    let to = Cache::new();
    assert!(!to.dir().exists());
    let out = to.tool_ok(&["import", bundle.to_str().unwrap()]);
    assert!(out.contains(&format!("imported {exported} files")), "{out}");
    for f in from.files() {
        let meta = fs::metadata(to.dir().join(&f)).unwrap();
        assert_eq!(std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777, 0o600, "{f}");
        assert_eq!(fs::read(to.dir().join(&f)).unwrap(), fs::read(from.dir().join(&f)).unwrap(), "{f}");
    }
    assert!(list_rows(&to).iter().all(|r| r.1 == "valid"));
    assert_eq!(not_vouched(&to.dir()), Vec::<String>::new(), "checked as they came in: runs need not hash them");
    let warm = to.run_ok(&["-stats"], "/usr/bin/python3", &["-c", "pass"]);
    assert!(stat(&warm.stderr, "blocks loaded") > 0, "{}", text(&warm.stderr));
    assert!(stat(&warm.stderr, "cache files loaded") > 0, "{}", text(&warm.stderr));
    // Again: the files are already there.
    let again = to.tool_ok(&["import", bundle.to_str().unwrap()]);
    assert!(again.contains("imported 0 files"), "{again}");
}

/// Rewrites a bundle's manifest with `edit` (same files).
fn rewrite_bundle(src: &Path, dst: &Path, edit: impl Fn(&mut Value)) {
    let dec = zstd::Decoder::new(fs::File::open(src).unwrap()).unwrap();
    let mut ar = tar::Archive::new(dec);
    let enc = zstd::Encoder::new(fs::File::create(dst).unwrap(), 3).unwrap();
    let mut b = tar::Builder::new(enc);
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut bytes).unwrap();
        if name == "manifest.json" {
            let mut m: Value = serde_json::from_slice(&bytes).unwrap();
            edit(&mut m);
            bytes = serde_json::to_vec(&m).unwrap();
        }
        let mut h = tar::Header::new_ustar();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o600);
        b.append_data(&mut h, &name, &bytes[..]).unwrap();
    }
    b.into_inner().unwrap().finish().unwrap();
}

#[test]
fn import_refuses_bad_bundles_and_skips_foreign_modules() {
    let tmp = TempDir::new().unwrap();
    let (prog, from) = program_cached(tmp.path(), "hello", 7);
    let bundle = tmp.path().join("b.tar.zst");
    from.tool_ok(&["export", bundle.to_str().unwrap()]);

    // Another runtime version: nothing taken, one line, exit 1.
    let other = tmp.path().join("other.tar.zst");
    rewrite_bundle(&bundle, &other, |m| m["runtime_version"] = Value::from("00000001"));
    let to = Cache::new();
    let out = to.tool(&["import", other.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("made by runtime 00000001") && err.contains("nothing imported"), "{err}");
    assert!(!to.dir().exists() || to.files().is_empty());

    // Garbage, and a truncated bundle.
    let junk = tmp.path().join("junk.tar.zst");
    fs::write(&junk, b"this is not a bundle at all").unwrap();
    let out = to.tool(&["import", junk.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("corrupt bundle"), "{}", text(&out.stderr));
    let bytes = fs::read(&bundle).unwrap();
    let cut = tmp.path().join("cut.tar.zst");
    // Cut late, after whole files: still all or nothing.
    for keep in [bytes.len() / 2, bytes.len() * 9 / 10, bytes.len() - 64] {
        fs::write(&cut, &bytes[..keep]).unwrap();
        let out = to.tool(&["import", cut.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
        let err = text(&out.stderr);
        assert!(err.contains("corrupt bundle") && err.contains("nothing imported"), "{err}");
        assert!(!text(&out.stdout).contains("took "), "{}", text(&out.stdout));
        let left: Vec<_> = fs::read_dir(to.dir()).map(|d| d.flatten().map(|e| e.file_name()).collect()).unwrap_or_default();
        assert!(left.iter().all(|n| !n.to_string_lossy().contains(".dpc")), "cut at {keep}: {left:?}");
    }
    // A directory is not a bundle, and says so.
    let out = to.tool(&["import", tmp.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("is a directory"), "{}", text(&out.stderr));
    let out = to.tool(&["import", tmp.path().join("absent.tar.zst").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));

    // A file whose blake3 does not match its manifest entry is skipped.
    let tampered = tmp.path().join("tampered.tar.zst");
    let libc_name = from.file_of("libc.so.6");
    rewrite_bundle(&bundle, &tampered, |m| {
        for f in m["files"].as_array_mut().unwrap() {
            if f["name"] == libc_name.as_str() {
                f["blake3"] = Value::from("00".repeat(32));
            }
        }
    });
    let t = Cache::new();
    let out = t.tool_ok(&["import", tampered.to_str().unwrap()]);
    assert!(out.contains(&format!("skipped {libc_name}: corrupt")), "{out}");
    assert!(!t.dir().join(&libc_name).exists());

    // The program is rebuilt differently here: its file is skipped, the
    // libraries' files are taken.
    compile(tmp.path(), &prog, 8);
    let to2 = Cache::new();
    let out = to2.tool_ok(&["import", bundle.to_str().unwrap()]);
    let prog_file = from.file_of("hello");
    assert!(out.contains(&format!("skipped {prog_file}: module {} differs on this machine", prog.display())), "{out}");
    assert!(out.contains(&format!("took {libc_name}")), "{out}");
    assert!(!to2.dir().join(&prog_file).exists());
    // And gone: skipped as missing.
    fs::remove_file(&prog).unwrap();
    let to3 = Cache::new();
    let out = to3.tool_ok(&["import", bundle.to_str().unwrap()]);
    assert!(out.contains("is not on this machine"), "{out}");
}

#[test]
fn verify_finds_stale_and_orphaned_files() {
    let tmp = TempDir::new().unwrap();
    let (prog, c) = program_cached(tmp.path(), "answer", 41);
    let clean = c.tool(&["verify"]);
    assert_eq!(clean.status.code(), Some(0), "{}", text(&clean.stdout));
    assert!(text(&clean.stdout).contains("all valid"));

    compile(tmp.path(), &prog, 42);
    let name = c.file_of("answer");
    let out = c.tool(&["verify"]);
    assert_eq!(out.status.code(), Some(1));
    let lines: Vec<String> = text(&out.stdout).lines().map(String::from).collect();
    let problems: Vec<&String> = lines.iter().filter(|l| l.contains(".dpc: ")).collect();
    assert_eq!(problems.len(), 1, "{lines:?}");
    assert!(problems[0].starts_with(&format!("{name}: stale: module {}", prog.display())), "{lines:?}");
    assert_eq!(status_of(&c, &name), "stale");
    let j = c.json(&["list"]);
    assert!(j.as_array().unwrap().iter().any(|r| r["status"] == "stale"));

    // A file whose module is gone is an orphan.
    fs::remove_file(&prog).unwrap();
    let out = c.tool(&["verify"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains(&format!("{name}: orphan")), "{}", text(&out.stdout));

    // A damaged zone is found by verify (not by list, which reads headers).
    let libc = c.file_of("libc.so.6");
    let path = c.dir().join(&libc);
    let mut bytes = fs::read(&path).unwrap();
    let at = bytes.len() - 100;
    bytes[at] ^= 0xff;
    fs::write(&path, &bytes).unwrap();
    let out = c.tool(&["verify"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains(&format!("{libc}: corrupt (X zone checksum)")) || text(&out.stdout).contains(&format!("{libc}: corrupt (W zone checksum)")), "{}", text(&out.stdout));
}

/// A directory copied or restored (a CI cache, new inodes) has no valid
/// memos, so its runs would hash every file they load: `verify` checks
/// each whole and vouches for the valid ones, which runs then trust.
#[test]
fn verify_vouches_for_the_files_of_a_copied_directory() {
    let tmp = TempDir::new().unwrap();
    let (prog, c) = program_cached(tmp.path(), "answer", 41);
    let copy = Cache::new();
    fs::create_dir_all(&copy.base).unwrap();
    let cp = Command::new("cp").arg("-a").arg(c.dir()).arg(&copy.base).status().unwrap();
    assert!(cp.success());
    let files = copy.files();
    assert!(files.len() >= 3, "answer, libc and ld.so at least: {files:?}");
    assert_eq!(not_vouched(&copy.dir()), files, "a copy's memos name the originals");
    assert!(copy.tool_ok(&["verify"]).contains("all valid"));
    assert_eq!(not_vouched(&copy.dir()), Vec::<String>::new());
    let run = copy.run_ok(&["-v"], prog.to_str().unwrap(), &[]);
    assert_eq!(text(&run.stdout), "41\n");
    assert!(text(&run.stderr).contains(&format!("persist: using {}", copy.dir().join(copy.file_of("answer")).display())), "{}", text(&run.stderr));

    // A damaged file is not vouched for.
    let libc = copy.dir().join(copy.file_of("libc.so.6"));
    let mut bytes = fs::read(&libc).unwrap();
    let at = bytes.len() - 100;
    bytes[at] ^= 0xff;
    fs::write(&libc, &bytes).unwrap();
    assert_eq!(copy.tool(&["verify"]).status.code(), Some(1));
    assert_eq!(not_vouched(&copy.dir()), [copy.file_of("libc.so.6")]);
}

/// Sets a file's last use to `days` days ago in the index.
fn age(c: &Cache, name: &str, days: i64) {
    let when = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64 - days * 86_400;
    let n = c.db().execute("UPDATE cache_files SET last_used = ?2, created = ?2 WHERE name = ?1", rusqlite::params![name, when]).unwrap();
    assert_eq!(n, 1, "{name} has no index row");
}

/// A copy of the file `name` with another runtime version in its key.
fn other_version_copy(c: &Cache, name: &str) -> String {
    let bytes = fs::read(c.dir().join(name)).unwrap();
    let aligned = cachetool::cache_file::Aligned::from_bytes(&bytes);
    let v = persist::validate(aligned.bytes()).unwrap();
    let mut key = v.key.clone();
    key.runtime_version ^= 0x5a5a;
    let index = v.index.to_owned().unwrap();
    let zones: Vec<(persist::ZoneKind, &[u8])> = (1..v.zones.len()).map(|i| (v.zones[i].kind, v.zone_bytes(i))).collect();
    let out = persist::write::build(&key, &index, &zones);
    let new_name = format!("{}-00000000000000aa.dpc", &name[..name.len() - ".dpc".len() - 17]);
    fs::write(c.dir().join(&new_name), out).unwrap();
    let mut perm = fs::metadata(c.dir().join(&new_name)).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o600);
    fs::set_permissions(c.dir().join(&new_name), perm).unwrap();
    new_name
}

#[test]
fn prune_by_age_size_module_version_and_all() {
    let c = Cache::new();
    c.run_ok(&[], "/usr/bin/true", &[]);
    c.run_ok(&[], "/usr/bin/ls", &["/"]);
    c.tool_ok(&["list"]);
    let t = c.file_of("true");
    let ls = c.file_of("ls");
    let libc = c.file_of("libc.so.6");
    age(&c, &t, 40);

    let dry = c.tool_ok(&["prune", "--older-than", "30d", "--dry-run"]);
    assert!(dry.contains(&format!("would remove {t} ")), "{dry}");
    assert_eq!(dry.lines().filter(|l| l.starts_with("would remove ") && l.contains(".dpc")).count(), 1, "{dry}");
    assert!(c.dir().join(&t).exists(), "dry run deleted");
    let done = c.tool_ok(&["prune", "--older-than", "30d"]);
    assert!(done.contains(&format!("removed {t} ")), "{done}");
    assert!(!c.dir().join(&t).exists());
    assert!(!c.dir().join(format!("{t}.lock")).exists());
    assert_eq!(c.count(&format!("SELECT count(*) FROM cache_files WHERE name = '{t}'")), 0);
    assert!(c.dir().join(&ls).exists() && c.dir().join(&libc).exists());

    // Another version's file goes with --other-versions, and only it.
    let odd = other_version_copy(&c, &ls);
    assert_eq!(status_of(&c, &odd), "other version");
    let out = c.tool_ok(&["prune", "--other-versions"]);
    assert!(out.contains(&format!("removed {odd} ")) && out.contains("removed 1 files"), "{out}");

    // Over a size budget, least recently used first.
    let sizes: Vec<(String, u64)> = c.files().iter().map(|f| (f.clone(), fs::metadata(c.dir().join(f)).unwrap().len())).collect();
    let total: u64 = sizes.iter().map(|s| s.1).sum();
    for (i, (f, _)) in sizes.iter().enumerate() {
        age(&c, f, 20 - i as i64);
    }
    let oldest = &sizes[0];
    let budget = total - oldest.1;
    let out = c.tool_ok(&["prune", "--max-size", &budget.to_string()]);
    assert!(out.contains(&format!("removed {} ", oldest.0)) && out.contains("removed 1 files"), "{out}");
    assert!(sizes[1..].iter().all(|(f, _)| c.dir().join(f).exists()));

    // By module.
    if c.dir().join(&ls).exists() {
        let out = c.tool_ok(&["prune", "--module", "/usr/bin/ls"]);
        assert!(out.contains(&format!("removed {ls} ")), "{out}");
    }

    // --all, except a file someone is writing (its lock is held), and
    // never a file that is not a cache file.
    fs::write(c.dir().join("notes.txt"), "mine").unwrap();
    let left = c.files();
    assert!(!left.is_empty());
    let held = fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(c.dir().join(format!("{}.lock", left[0]))).unwrap();
    held.lock().unwrap();
    let out = c.tool_ok(&["prune", "--all"]);
    assert!(out.contains(&format!("skipped {}: being written", left[0])), "{out}");
    assert_eq!(c.files(), vec![left[0].clone()]);
    drop(held);
    c.tool_ok(&["prune", "--all"]);
    assert!(c.files().is_empty());
    assert!(c.dir().join("notes.txt").exists() && c.dir().join("index.sqlite").exists());
    assert_eq!(c.count("SELECT count(*) FROM cache_files"), 0);
    // Nothing to prune said: usage.
    assert_eq!(c.tool(&["prune"]).status.code(), Some(2));
}

#[test]
fn prune_stale_removes_only_stale_files() {
    let tmp = TempDir::new().unwrap();
    let (prog, c) = program_cached(tmp.path(), "p", 1);
    compile(tmp.path(), &prog, 2);
    let stale = c.file_of("p");
    let before = c.files();
    let out = c.tool_ok(&["prune", "--stale"]);
    assert!(out.contains(&format!("removed {stale} ")), "{out}");
    let after = c.files();
    assert_eq!(after.len(), before.len() - 1);
    assert!(c.tool(&["verify"]).status.success());
}

#[test]
fn index_is_rebuilt_when_deleted_or_garbage() {
    let c = Cache::new();
    c.run_ok(&[], "/usr/bin/true", &[]);
    c.run_ok(&[], "/usr/bin/true", &[]);
    let files = c.files();
    let db = c.dir().join("index.sqlite");
    for suffix in ["", "-wal", "-shm"] {
        let _ = fs::remove_file(c.dir().join(format!("index.sqlite{suffix}")));
    }
    let rows = list_rows(&c);
    assert_eq!(rows.len(), files.len());
    assert!(db.exists());
    assert_eq!(c.count("SELECT count(*) FROM cache_files") as usize, files.len());

    // Garbage: dbirun sets it aside, rebuilds it from the files (the files
    // untouched) and records its run there, all quietly.
    for suffix in ["-wal", "-shm"] {
        let _ = fs::remove_file(c.dir().join(format!("index.sqlite{suffix}")));
    }
    fs::write(&db, vec![0x5au8; 8192]).unwrap();
    let run = c.run(&[], "/usr/bin/true", &[]);
    assert!(run.status.success() && run.stderr.is_empty(), "{}", text(&run.stderr));
    assert!(c.dir().join("index.sqlite.corrupt").exists(), "the corrupt index was not set aside");
    assert_eq!(c.files(), files);
    assert_eq!(c.count("SELECT count(*) FROM cache_files") as usize, files.len());
    assert_eq!(c.count("SELECT count(*) FROM runs"), 1, "the run after the garbage was not recorded");
    let out = c.tool(&["list"]);
    assert!(out.status.success() && out.stderr.is_empty(), "{}", text(&out.stderr));

    // rebuild-index keeps the run history of a readable index.
    let out = c.tool_ok(&["rebuild-index"]);
    assert!(out.contains(&format!("rebuilt the index from {} cache files (1 recorded runs kept)", files.len())), "{out}");
    // cachetool too sets a corrupt index aside (one note) and rebuilds it.
    fs::write(&db, b"garbage").unwrap();
    for suffix in ["-wal", "-shm"] {
        let _ = fs::remove_file(c.dir().join(format!("index.sqlite{suffix}")));
    }
    let out = c.tool_ok(&["rebuild-index"]);
    assert!(out.contains("was corrupt"), "{out}");
    assert!(c.tool(&["verify"]).status.success());
}

#[test]
fn sixteen_concurrent_runs_are_all_recorded() {
    let c = Cache::new();
    let children: Vec<_> = (0..16)
        .map(|_| {
            Command::new(dbirun_path())
                .arg("-persist")
                .arg("-persist_dir")
                .arg(&c.base)
                .arg("--")
                .arg("/usr/bin/true")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{:?} {}", out.status, text(&out.stderr));
        assert!(out.stderr.is_empty() && out.stdout.is_empty(), "{}", text(&out.stderr));
    }
    let v = c.tool(&["verify"]);
    assert_eq!(v.status.code(), Some(0), "{}", text(&v.stdout));
    assert_eq!(c.json(&["stats"])["runs"], 16);
    assert_eq!(c.count("SELECT count(*) FROM runs"), 16);
}

#[test]
fn bad_input_gets_one_line_and_the_right_status() {
    let tmp = TempDir::new().unwrap();
    let missing = tmp.path().join("nope");
    let out = Command::new(env!("CARGO_BIN_EXE_cachetool")).arg("--dir").arg(&missing).arg("list").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stderr).lines().count(), 1);
    assert!(text(&out.stderr).contains("no cache directory"), "{}", text(&out.stderr));
    assert!(!missing.exists());

    let c = Cache::new();
    c.run_ok(&[], "/usr/bin/true", &[]);
    fs::write(c.dir().join("notes.txt"), "not a cache").unwrap();
    let junk = "junk-0123456789abcdef-0123456789abcdef.dpc";
    fs::write(c.dir().join(junk), vec![7u8; 5000]).unwrap();
    let rows = list_rows(&c);
    assert!(rows.iter().all(|r| r.2 != "notes.txt"));
    assert_eq!(status_of(&c, junk), "corrupt");
    let out = c.tool(&["verify"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains(&format!("{junk}: corrupt (not a cache file)")), "{}", text(&out.stdout));
    let out = c.tool(&["inspect", c.dir().join("notes.txt").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stderr).lines().count(), 1);
    assert!(text(&out.stderr).contains("not a cache file"), "{}", text(&out.stderr));
    let out = c.tool(&["inspect", "/no/such/module"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stderr).lines().count(), 1);
    assert_eq!(c.tool(&["prune", "--older-than", "30x"]).status.code(), Some(2));
    assert_eq!(c.tool(&["frobnicate"]).status.code(), Some(2));
    // Stale pruning takes the corrupt cache file, never the foreign one.
    let out = c.tool_ok(&["prune", "--stale"]);
    assert!(out.contains(&format!("removed {junk} ")), "{out}");
    assert!(c.dir().join("notes.txt").exists());
    assert!(c.dir().join(c.file_of("true")).exists());
}

#[test]
fn inspect_shows_client_data_and_persist_dir_finds_the_user_dir() {
    let c = Cache::new();
    let logs = TempDir::new().unwrap();
    c.run_ok(&["-logdir", logs.path().to_str().unwrap(), "-c", "bbcount"], "/usr/bin/true", &[]);
    let shown = c.tool_ok(&["inspect", "/usr/bin/true"]);
    assert!(shown.contains("  bbcount version "), "{shown}");
    let items: u64 = shown
        .lines()
        .find_map(|l| l.split("; ").nth(1)?.strip_suffix(" per-block data items")?.parse().ok())
        .unwrap_or_else(|| panic!("{shown}"));
    assert!(items > 0, "{shown}");
    let rows = c.json(&["list"]);
    assert!(rows.as_array().unwrap().iter().all(|r| r["file"]["clients"].as_str().unwrap().starts_with("bbcount@")));
    // --persist-dir takes dbirun's base; --dir on the base gives a hint.
    let out = Command::new(env!("CARGO_BIN_EXE_cachetool")).arg("--persist-dir").arg(&c.base).arg("list").output().unwrap();
    assert!(out.status.success() && text(&out.stdout).contains("/usr/bin/true "), "{}", text(&out.stdout));
    let out = Command::new(env!("CARGO_BIN_EXE_cachetool")).arg("--dir").arg(&c.base).arg("list").output().unwrap();
    assert!(text(&out.stdout).contains("looks like the per-user directory"), "{}", text(&out.stdout));
}

/// prune also removes what processes that died mid-write left (a cache
/// file's temporary copy, a run report that names no run), never a live
/// process's. (A report naming its run's command is recorded instead:
/// `cachetool/tests/server.rs`.)
#[test]
fn prune_removes_leftovers_of_dead_processes_only() {
    let c = Cache::new();
    c.run_ok(&[], "/usr/bin/true", &[]);
    let name = c.file_of("true");
    // A pid that no process has: past the kernel's pid_max.
    let dead = 1 << 23;
    let live = std::process::id();
    let dead_tmp = format!("{name}.tmp.{dead}.00ab");
    let dead_report = format!(".report.{dead}.1");
    let live_tmp = format!("{name}.tmp.{live}.00cd");
    for f in [&dead_tmp, &dead_report, &live_tmp] {
        fs::write(c.dir().join(f), b"partial").unwrap();
    }
    let dry = c.tool_ok(&["prune", "--older-than", "30d", "--dry-run"]);
    assert!(dry.contains(&dead_tmp) && dry.contains(&dead_report) && !dry.contains(&live_tmp), "{dry}");
    assert!(c.dir().join(&dead_tmp).exists(), "--dry-run removed a file");
    let done = c.tool_ok(&["prune", "--older-than", "30d"]);
    assert!(done.contains(&dead_tmp), "{done}");
    assert!(!c.dir().join(&dead_tmp).exists() && !c.dir().join(&dead_report).exists());
    assert!(c.dir().join(&live_tmp).exists(), "a live process's file was removed");
    assert!(c.dir().join(&name).exists(), "a cache file in use was removed");
}
