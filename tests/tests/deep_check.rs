//! The deep check (issue 17's trust model): `cachetool verify --deep`
//! translates every block of a file again from its module's bytes, with
//! the options the file records, and compares the code. Faithful files
//! pass under every built-in client, from runs and ahead of time; code or
//! links planted with every hash recomputed (which plain `verify`
//! accepts) fail, in one line, with status 1; traces are stitched again
//! from their blocks and compared the same way.

use std::path::Path;
use std::process::{Command, Output};

use dbi_tests::persist::{dpc_of, replace_file, run_persist, with_zones};
use dbi_tests::run::{RunOpts, Status};
use dbi_tests::{dbirun_path, temp_dir};

const PROGRAM: [&str; 3] = ["/bin/ls", "-la", "/usr/bin"];

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn cachetool(base: &Path, args: &[&str]) -> Output {
    Command::new(dbirun_path().with_file_name("cachetool")).arg("--persist-dir").arg(base).args(args).output().unwrap()
}

/// A cold run of `program` in file mode under `base` with `options`
/// (in `base`, where clients write their logs).
fn run(base: &Path, options: &[&str], program: &[&str]) {
    let all: Vec<&str> = ["-no_persist_server"].iter().chain(options).copied().collect();
    let opts = RunOpts { cwd: Some(base.to_path_buf()), ..Default::default() };
    let out = run_persist(base, &all, Path::new(program[0]), &program[1..], &opts);
    assert_eq!(out.status, Status::Code(0), "dbirun {options:?} {program:?}: {}", out.stderr_str());
}

/// Blocks the deep check of every file under `base` matched; panics
/// unless every file passed.
fn deep_check_passes(base: &Path, what: &str) -> u64 {
    let out = cachetool(base, &["--json", "verify", "--deep"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{what}: {e}: {}", text(&out.stderr)));
    assert!(out.status.success(), "{what}: the deep check failed: {report:#}\n{}", text(&out.stderr));
    let files = report["files"].as_array().unwrap();
    assert!(files.len() >= 3, "{what}: {report:#}");
    files.iter().map(|f| f["blocks"].as_u64().unwrap()).sum()
}

#[test]
fn faithful_files_match_their_retranslation_under_every_client() {
    for client in ["", "bbcount", "drcov", "inscount", "opcodes", "instrace", "memtrace"] {
        let dir = temp_dir("deep-clients");
        let options: Vec<&str> = if client.is_empty() { vec![] } else { vec!["-c", client] };
        run(dir.path(), &options, &PROGRAM);
        let blocks = deep_check_passes(dir.path(), &format!("ls under {client:?}"));
        assert!(blocks > 2_000, "ls under {client:?}: only {blocks} blocks checked");
    }
}

#[test]
fn files_translated_ahead_of_time_match_their_retranslation() {
    let dir = temp_dir("deep-aot");
    run(dir.path(), &["-aot"], &PROGRAM);
    let blocks = deep_check_passes(dir.path(), "AOT of ls");
    assert!(blocks > 50_000, "only {blocks} blocks checked");
}

/// The deep check of the file `file` under `base` after `plant` changed
/// its zones (every hash recomputed): plain verify accepts it, the deep
/// check refuses it with `want` in its one line.
fn planted_is_refused(base: &Path, file: &Path, good: &[u8], what: &str, want: &str, plant: impl FnOnce(&persist::Validated, &mut Vec<Vec<u8>>)) {
    replace_file(file, &with_zones(good, plant));
    let plain = cachetool(base, &["verify"]);
    assert!(plain.status.success(), "{what}: plain verify refuses it: {}", text(&plain.stdout));
    let name = file.file_name().unwrap().to_str().unwrap();
    let deep = cachetool(base, &["verify", "--deep", name]);
    let said = text(&deep.stdout);
    assert_eq!(deep.status.code(), Some(1), "{what}: {said}{}", text(&deep.stderr));
    let line = said.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{what}: no line for the file: {said}"));
    assert!(line.contains("deep check failed: ") && line.contains(want), "{what}: {line}");
    replace_file(file, good);
}

#[test]
fn planted_code_or_links_with_recomputed_hashes_fail_the_deep_check() {
    let dir = temp_dir("deep-planted");
    run(dir.path(), &[], &PROGRAM);
    let file = dpc_of(dir.path(), "ls");
    let good = std::fs::read(&file).unwrap();
    // An instruction of a block replaced by a trap: the kind of change
    // that would run an attacker's code instead of the app's.
    planted_is_refused(dir.path(), &file, &good, "planted code", "instructions differ", |v, zones| {
        let b = v.index.blocks.iter().find(|b| b.code_len.to_native() >= 8).unwrap();
        let x = v.index.segments[b.segment.to_native() as usize].x_zone.to_native() as usize;
        let at = b.code_offset.to_native() as usize;
        zones[x - 1][at] = 0xcc;
    });
    // A displacement bent to another place: the same bytes but one,
    // leading elsewhere.
    planted_is_refused(dir.path(), &file, &good, "a bent operand", "leads to", |v, zones| {
        let b = v.index.blocks.iter().find(|b| b.code_len.to_native() >= 8 && b.exit_count.to_native() > 0).unwrap();
        let x = v.index.segments[b.segment.to_native() as usize].x_zone.to_native() as usize;
        let code = &mut zones[x - 1][b.code_offset.to_native() as usize..];
        // The first RIP-relative `mov reg, [rip + d]` (the module base's
        // slot): 48/4c 8b modrm(00 reg 101) d32.
        let at = (0..b.code_len.to_native() as usize - 6)
            .find(|&i| (code[i] == 0x48 || code[i] == 0x4c) && code[i + 1] == 0x8b && code[i + 2] & 0xc7 == 0x05)
            .expect("a block reading its module base");
        code[at + 3] = code[at + 3].wrapping_sub(8);
    });
    // An exit's slot pointed at another block than its target.
    planted_is_refused(dir.path(), &file, &good, "a redirected link", "slot", |v, zones| {
        let blocks = &v.index.blocks;
        let (b, e) = blocks
            .iter()
            .filter(|b| b.exit_count.to_native() > 0)
            .map(|b| (b, &v.index.exits[b.first_exit.to_native() as usize]))
            .next()
            .unwrap();
        let other = blocks
            .iter()
            .find(|o| o.segment == b.segment && o.module_offset.to_native() as i64 != e.target.to_native())
            .unwrap();
        let w = v.index.segments[b.segment.to_native() as usize].w_zone.to_native() as usize;
        let slot = e.slot.to_native() as usize;
        zones[w - 1][slot..slot + 8].copy_from_slice(&persist::exit_slots::stored(other.code_offset.to_native() as i64).to_le_bytes());
    });
    // A block's last jump turned into no-ops up to the block placed after
    // it, which is not where the jump went: it would run on into that
    // block (a file's form for a jump to the block right after).
    planted_is_refused(dir.path(), &file, &good, "a jump turned into a run-on", "runs on into", |v, zones| {
        let ix = &v.index;
        let starts: std::collections::HashMap<(u32, u32), i64> =
            ix.blocks.iter().map(|b| ((b.segment.to_native(), b.code_offset.to_native()), b.module_offset.to_native() as i64)).collect();
        let (x, branch, next) = ix
            .blocks
            .iter()
            .filter(|b| b.exit_count.to_native() > 0)
            .find_map(|b| {
                let seg = b.segment.to_native();
                let x = ix.segments[seg as usize].x_zone.to_native() as usize;
                let last = &ix.exits[(b.first_exit.to_native() + b.exit_count.to_native() - 1) as usize];
                let end = b.code_offset.to_native() + b.code_len.to_native();
                let next = (end..end + 16).find(|&at| starts.contains_key(&(seg, at)))?;
                let branch = end as usize - 6;
                let jumps = matches!(zones[x - 1][branch..branch + 2], [0xe9, _] | [0xff, 0x25]);
                let other = starts[&(seg, next)] != last.target.to_native();
                (jumps && other).then_some((x, branch, next as usize))
            })
            .expect("a block ending in a jump elsewhere than the block after it");
        zones[x - 1][branch..next].fill(0x90);
    });
    // A conditional exit's trampoline (they lie together after their
    // segment's code) bent to the slot next to its own.
    planted_is_refused(dir.path(), &file, &good, "a bent trampoline", "trampoline", |v, zones| {
        let ix = &v.index;
        let (x, at) = ix
            .segments
            .iter()
            .find_map(|s| {
                let x = s.x_zone.to_native() as usize;
                let code = &zones[x - 1];
                let at = s.code_len.to_native() as usize;
                (code[at..at + 2] == [0xff, 0x25] && code[at + 6..at + 8] == [0xcc, 0xcc]).then_some((x, at))
            })
            .expect("a conditional exit with its trampoline");
        let disp = i32::from_le_bytes(zones[x - 1][at + 2..at + 6].try_into().unwrap()) + 8;
        zones[x - 1][at + 2..at + 6].copy_from_slice(&disp.to_le_bytes());
    });
    // The untouched file passes.
    let name = file.file_name().unwrap().to_str().unwrap().to_string();
    let out = cachetool(dir.path(), &["verify", "--deep", &name]);
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
}

/// Traces (`-traces`) are stitched again from the blocks each holds and
/// compared as blocks are: faithful ones match, a planted one does not.
#[test]
fn traces_are_built_again_from_their_blocks_and_compared() {
    let dir = temp_dir("deep-traces");
    run(dir.path(), &["-traces"], &["/usr/bin/python3", "-c", "sum(i * i for i in range(200000))"]);
    let out = cachetool(dir.path(), &["--json", "verify", "--deep"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(out.status.success(), "{report:#}{}", text(&out.stderr));
    let traces: u64 = report["files"].as_array().unwrap().iter().map(|f| f["traces"].as_u64().unwrap()).sum();
    assert!(traces >= 20, "only {traces} traces checked: {report:#}");
    let most = report["files"].as_array().unwrap().iter().max_by_key(|f| f["traces"].as_u64().unwrap()).unwrap();
    let file = dir.path().join(unsafe { libc::getuid() }.to_string()).join(most["file"].as_str().unwrap());
    let good = std::fs::read(&file).unwrap();
    planted_is_refused(dir.path(), &file, &good, "a planted trace", "trace at +0x", |v, zones| {
        let t = v.index.traces.iter().find(|t| t.code_len.to_native() >= 8).unwrap();
        let x = v.index.segments[t.segment.to_native() as usize].x_zone.to_native() as usize;
        zones[x - 1][t.code_offset.to_native() as usize] = 0xcc;
    });
}
