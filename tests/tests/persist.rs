//! `-persist`: blocks translated by one run are written to per-module
//! `.dpc` files and mapped by later runs.
//!
//! Every test has its own cache directory (and its own work directories),
//! so the tests run in parallel. Each run under `dbirun` is compared with a
//! native run (status, stdout, and stderr without the runtime's `-stats`
//! and `-v` lines). What is checked: a warm run builds (almost) nothing and
//! still behaves natively, also under ASLR; mapped zones have exactly their
//! protection; any change of the key, and any corruption of a file, makes
//! the file unused (with the right reason) and the run still correct;
//! concurrent writers merge their blocks into valid files; clients give the
//! same output cold and warm.
//!
//! The test program `persist_paths` (tests/programs/persist_paths.c) takes
//! one path of hundreds of blocks per input 0..7, so runs with different
//! inputs add different blocks to its module's file.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use dbi_tests::corpus::PERSIST_SUITE;
use dbi_tests::persist::{
    all_files, app_stderr, assert_app_same, compare_app, dpc_files, dpc_of, is_file_of, log, module_base, not_used,
    parse_maps, replace_file, run_persist, stats, stub_exit_data, total, used, with_key, Aligned, Log,
};
use dbi_tests::singlestep::ADDR_NO_RANDOMIZE;
use dbi_tests::{
    catalog_tests, compiled, dbirun_path, run_native, temp_dir, tool, try_run, Build, Observed, Opt, Rng, RunOpts,
    Variant,
};
use persist::header::{header_and_table_len, header_hash, HEADER_HASH_AT, MAX_ZONES, ZONE_COUNT_AT};
use persist::ZoneKind;

catalog_tests!(PERSIST_SUITE;
    persist_paths,
    persist_smc,
    persist_smc_loop,
    split_text_main,
);

const PYTHON: &str = "/usr/bin/python3";
/// The test program's module name (its file's basename).
const PROGRAM: &str = "persist_paths";

/// persist_paths, pie -O0 (every step of every path a few blocks).
fn program() -> PathBuf {
    let src = dbi_tests::corpus::program(PROGRAM).source_path();
    compiled(&src, Build::new(Variant::Pie, Opt::O0)).unwrap_or_else(|e| panic!("{e}"))
}

/// A fixed locale and time zone so every run formats the same way.
fn c_locale() -> RunOpts {
    RunOpts::new().env("LC_ALL", "C").env("TZ", "UTC")
}

fn native(program: &Path, args: &[&str], opts: &RunOpts) -> Observed {
    run_native(program, args, opts).unwrap_or_else(|f| panic!("native {} {}: {f}", program.display(), args.join(" ")))
}

fn stderr_excerpt(o: &Observed) -> String {
    let text = o.stderr_str();
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(40);
    format!("stderr (last {} of {} lines):\n    {}", lines.len() - start, lines.len(), lines[start..].join("\n    "))
}

// ---------------------------------------------------------------------------
// 1. Cold then warm: the warm run builds almost nothing.

/// Native, then cold and warm runs with `-persist -stats` in a fresh cache
/// directory, each in its own copy of `setup`'s work directory: both runs
/// behave natively, the cold one writes files, the warm one loads them and
/// builds at most 2% of the blocks the cold one built (summed over every
/// process of the run). Returns the work directories (native, cold, warm).
fn check_warm_builds_almost_nothing(
    what: &str,
    program: &Path,
    args: &[&str],
    opts: RunOpts,
    setup: impl Fn(&Path),
) -> [tempfile::TempDir; 3] {
    let cache = temp_dir("persist-cache");
    let dirs = [temp_dir("persist-native"), temp_dir("persist-cold"), temp_dir("persist-warm")];
    for d in &dirs {
        setup(d.path());
    }
    let native = native(program, args, &opts.clone().cwd(dirs[0].path()));
    let cold = run_persist(cache.path(), &["-stats"], program, args, &opts.clone().cwd(dirs[1].path()));
    assert_app_same(&format!("{what} (cold)"), &native, &cold);
    let warm = run_persist(cache.path(), &["-stats"], program, args, &opts.clone().cwd(dirs[2].path()));
    assert_app_same(&format!("{what} (warm)"), &native, &warm);

    let (cs, ws) = (stats(&cold.stderr), stats(&warm.stderr));
    assert_eq!(cs.len(), ws.len(), "{what}: the cold run printed {} stats blocks, the warm run {}", cs.len(), ws.len());
    let (cold_built, warm_built) = (total(&cs, "blocks built"), total(&ws, "blocks built"));
    let per_process = |s: &[dbi_tests::persist::ProcessStats], name: &str| -> Vec<u64> {
        s.iter().map(|p| p.counters.get(name).copied().unwrap_or(0)).collect()
    };
    assert!(
        total(&cs, "cache files written") > 0,
        "{what}: the cold run wrote no cache file\n{}",
        stderr_excerpt(&cold)
    );
    assert!(
        total(&ws, "cache files loaded") > 0 && total(&ws, "blocks loaded") > 0,
        "{what}: the warm run loaded {} files and {} blocks\n{}",
        total(&ws, "cache files loaded"),
        total(&ws, "blocks loaded"),
        stderr_excerpt(&warm)
    );
    let rejected: Vec<_> = ws.iter().flat_map(|p| p.rejected.iter()).collect();
    assert!(rejected.is_empty(), "{what}: the warm run rejected files though nothing changed: {rejected:?}");
    assert!(
        warm_built * 50 <= cold_built,
        "{what}: the warm run built {warm_built} blocks, more than 2% of the cold run's {cold_built} \
         (per process: cold {:?}, warm {:?}; warm blocks loaded {:?})",
        per_process(&cs, "blocks built"),
        per_process(&ws, "blocks built"),
        per_process(&ws, "blocks loaded"),
    );
    // Loading enters only the blocks indirect branches reached in the
    // cold run in the lookup table, and those are what the warm run looks
    // up: nearly every cold miss is a hit from the start.
    let (entered, loaded) = (total(&ws, "lookup entries loaded"), total(&ws, "blocks loaded"));
    assert!(entered > 0 && entered * 2 < loaded, "{what}: the warm run entered {entered} of {loaded} loaded blocks in its lookup table");
    let (cold_misses, warm_misses) = (total(&cs, "indirect lookup misses"), total(&ws, "indirect lookup misses"));
    assert!(
        warm_misses * 20 <= cold_misses,
        "{what}: the warm run's lookups missed {warm_misses} times, the cold run's {cold_misses} \
         (per process: cold {:?}, warm {:?})",
        per_process(&cs, "indirect lookup misses"),
        per_process(&ws, "indirect lookup misses"),
    );
    dirs
}

#[test]
fn warm_python3_builds_almost_nothing() {
    let opts = c_locale().env("PYTHONHASHSEED", "0").env("PYTHONDONTWRITEBYTECODE", "1");
    check_warm_builds_almost_nothing("python3 -c pass", Path::new(PYTHON), &["-c", "pass"], opts, |_| {});
}

#[test]
fn warm_ls_builds_almost_nothing() {
    check_warm_builds_almost_nothing("ls -la /usr/bin", &tool("ls"), &["-la", "/usr/bin"], c_locale(), |_| {});
}

/// gcc runs cc1 and as: every process persists and loads its modules.
#[test]
fn warm_gcc_builds_almost_nothing() {
    let source = "#include <stdio.h>\nint main(void) { printf(\"hello\\n\"); return 0; }\n";
    let dirs = check_warm_builds_almost_nothing("gcc -c hello.c", &tool("gcc"), &["-c", "hello.c"], c_locale(), |d| {
        std::fs::write(d.join("hello.c"), source).unwrap()
    });
    let objects: Vec<Vec<u8>> = dirs
        .iter()
        .map(|d| {
            std::fs::read(d.path().join("hello.o")).unwrap_or_else(|e| panic!("hello.o in {}: {e}", d.path().display()))
        })
        .collect();
    assert!(objects[1] == objects[0], "gcc -c hello.c: the cold run's hello.o differs from the native one");
    assert!(objects[2] == objects[0], "gcc -c hello.c: the warm run's hello.o differs from the native one");
}

/// A file keeps each segment's exit stubs after all of its code (linked
/// exits never reach them, so the code that runs lies dense), and each
/// stub's exit data, moved there when the file was written, still leads
/// to its own exit's branch and W slot.
#[test]
fn stubs_follow_the_code_and_their_data_leads_back() {
    let cache = temp_dir("persist-stubs");
    let program = program();
    let cold = run_persist(cache.path(), &[], &program, &[], &c_locale());
    assert_app_same("persist_paths (cold)", &native(&program, &[], &c_locale()), &cold);
    let mut checked = 0;
    for path in dpc_files(cache.path()) {
        let file = Aligned::read(&path);
        let v = file.validate().expect("the cold run's files are valid");
        let ix = v.index;
        for (s, seg) in ix.segments.iter().enumerate() {
            let (w, x) = (v.zones[seg.w_zone.to_native() as usize], v.zones[seg.x_zone.to_native() as usize]);
            let x_bytes = v.zone_bytes(seg.x_zone.to_native() as usize);
            let blocks: Vec<_> = ix.blocks.iter().filter(|b| b.segment.to_native() as usize == s).collect();
            let code_end = blocks.iter().map(|b| b.code_offset.to_native() + b.code_len.to_native()).max().unwrap_or(0);
            for b in &blocks {
                let (first, count) = (b.first_exit.to_native() as usize, b.exit_count.to_native() as usize);
                for (i, e) in ix.exits[first..first + count].iter().enumerate() {
                    let stub = e.stub.to_native() as usize;
                    assert!(stub as u32 >= code_end, "segment {s}: a stub at {stub:#x} inside the code (which ends at {code_end:#x})");
                    let (data, d) = stub_exit_data(x_bytes, stub);
                    let counted = d.kind & persist::exit_data::COUNTS_TARGET != 0;
                    let kind = d.kind & !persist::exit_data::COUNTS_TARGET;
                    assert_eq!((kind, d.target as i64), (persist::exit_data::KIND_DIRECT, e.target.to_native()), "stub at {stub:#x}");
                    // Runs with traces count entries to where a block's
                    // backward exits go, but for a call's, which the block
                    // says it ends in.
                    let call = b.flags.to_native() & persist::index::BlockEntry::CALLS_BACKWARD != 0 && i + 1 == count;
                    let backward = e.target.to_native() <= b.module_offset.to_native() as i64 && !call;
                    assert_eq!(counted, backward, "stub at {stub:#x}: the counting bit of an exit to {:#x} from the block at {:#x}", e.target, b.module_offset);
                    let (branch, slot) = d.branch_and_slot().expect("a direct exit's branch and slot");
                    let from_file = |distance: i32| (x.offset as i64 + data as i64 + distance as i64) as u64;
                    assert_eq!(from_file(slot), w.offset + e.slot.to_native() as u64, "stub at {stub:#x}: its data's slot");
                    let code = x.offset + b.code_offset.to_native() as u64;
                    assert!(
                        (code..code + b.code_len.to_native() as u64).contains(&from_file(branch)),
                        "stub at {stub:#x}: its data's branch is outside its block"
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 1000, "only {checked} exits in the files");
}

/// A block whose last exit goes to the block its file places right after
/// it runs on into that block: no-ops where the jump was, through the
/// filler up to the next block, unless the exit counts its target (a
/// backward one, but for one to a head its run found cold) or leads to a
/// trace's head (a run with traces finds the stub or the trace through
/// the exit's slot). Every other last exit
/// still jumps. The warm run from such files behaves natively.
#[test]
fn blocks_run_on_into_the_block_placed_after_them() {
    use iced_x86::{Decoder, DecoderOptions, Mnemonic};
    let cache = temp_dir("persist-fall-through");
    let program = program();
    // And a hot loop, whose trace's head is reached through slots.
    let python = Path::new(PYTHON);
    let looping = ["-c", "s = 0\nfor i in range(20000): s += i % 7\nprint(s)"];
    let native_loop = native(python, &looping, &c_locale());
    let native = native(&program, &[], &c_locale());
    assert_app_same("persist_paths (cold)", &native, &run_persist(cache.path(), &[], &program, &[], &c_locale()));
    assert_app_same("python3 loop (cold)", &native_loop, &run_persist(cache.path(), &[], python, &looping, &c_locale()));
    let (mut ran_on, mut jumped, mut through_slot) = (0, 0, 0);
    for path in dpc_files(cache.path()) {
        let file = Aligned::read(&path);
        let v = file.validate().expect("the cold run's files are valid");
        let ix = v.index;
        let starts: BTreeMap<(u32, u32), i64> =
            ix.blocks.iter().map(|b| ((b.segment.to_native(), b.code_offset.to_native()), b.module_offset.to_native() as i64)).collect();
        for b in ix.blocks.iter().filter(|b| b.exit_count.to_native() > 0) {
            let seg = b.segment.to_native();
            let x = v.zone_bytes(ix.segments[seg as usize].x_zone.to_native() as usize);
            let last = &ix.exits[(b.first_exit.to_native() + b.exit_count.to_native() - 1) as usize];
            let (data, d) = stub_exit_data(x, last.stub.to_native() as usize);
            let (field, _) = d.branch_and_slot().expect("a direct exit's branch");
            // An unconditional branch's rel32 field is its second byte.
            let branch = (data as i64 + field as i64) as usize - 1;
            let end = (b.code_offset.to_native() + b.code_len.to_native()) as usize;
            if branch + 6 != end {
                continue;
            }
            // The block placed after it (past any filler).
            let Some(next) = (end..end + 16).find(|&at| starts.contains_key(&(seg, at as u32))) else { continue };
            // Unless the exit counts its target or leads to a trace's head:
            // its slot decides where it goes (a stub, a trace).
            let target = last.target.to_native();
            let cold_head = u32::try_from(target).ok().and_then(|t| ix.blocks.iter().find(|b| b.module_offset.to_native() == t)).is_some_and(|b| b.flags.to_native() & persist::index::BlockEntry::COLD_HEAD != 0);
            let counted = d.kind & persist::exit_data::COUNTS_TARGET != 0 && !cold_head;
            let slot_decides = counted || u32::try_from(target).is_ok_and(|t| ix.trace_at(t).is_some());
            if starts.get(&(seg, next as u32)) == Some(&target) && !slot_decides {
                let filler = &x[branch..next];
                let mut decoder = Decoder::new(64, filler, DecoderOptions::NONE);
                let nops = decoder.iter().all(|i| i.mnemonic() == Mnemonic::Nop);
                assert!(nops, "{}: the block at {:#x} ends in {filler:02x?} before the block it goes to", path.display(), b.module_offset);
                ran_on += 1;
            } else if slot_decides {
                assert_eq!(x[branch..branch + 2], [0xff, 0x25], "{}: the block at {:#x} goes through its slot", path.display(), b.module_offset);
                through_slot += 1;
            } else {
                assert!(matches!(x[branch..branch + 2], [0xe9, _] | [0xff, 0x25]), "{}: the block at {:#x} ends in {:02x?}", path.display(), b.module_offset, &x[branch..end]);
                jumped += 1;
            }
        }
    }
    assert!(ran_on > 1000 && jumped > 100 && through_slot > 10, "{ran_on} blocks run on into the next, {jumped} jump at their end, {through_slot} through their slot");
    assert_app_same("persist_paths (warm)", &native, &run_persist(cache.path(), &[], &program, &[], &c_locale()));
}

/// A conditional exit the run that wrote a file never took is a `jcc` to
/// its slot trampoline, `jmp [rip + its own slot]` and two `int3`, which
/// lie together after their segment's code, before every stub (a run
/// taking such branches touches the trampolines' pages, not the stubs').
/// A later run that takes those branches (python3 running code the first
/// run did not) goes through them, and behaves natively.
#[test]
fn untaken_conditional_exits_go_through_their_trampolines() {
    let cache = temp_dir("persist-trampolines");
    let python = Path::new(PYTHON);
    let opts = c_locale();
    let first = ["-c", "pass"];
    assert_app_same("python3 -c pass (cold)", &native(python, &first, &opts), &run_persist(cache.path(), &[], python, &first, &opts));
    let mut trampolines = 0;
    for path in dpc_files(cache.path()) {
        let file = Aligned::read(&path);
        let v = file.validate().expect("the cold run's files are valid");
        let ix = v.index;
        for b in ix.blocks.iter() {
            let seg = &ix.segments[b.segment.to_native() as usize];
            let (w, x) = (v.zones[seg.w_zone.to_native() as usize], v.zones[seg.x_zone.to_native() as usize]);
            let x_bytes = v.zone_bytes(seg.x_zone.to_native() as usize);
            let first_exit = b.first_exit.to_native() as usize;
            for e in &ix.exits[first_exit..first_exit + b.exit_count.to_native() as usize] {
                let (data, d) = stub_exit_data(x_bytes, e.stub.to_native() as usize);
                let field = (data as i64 + d.branch_and_slot().expect("a direct exit's branch").0 as i64) as usize;
                // `jcc rel32`: 0f 8x, the field after.
                if x_bytes[field - 2] != 0x0f || x_bytes[field - 1] & 0xf0 != 0x80 {
                    continue;
                }
                let to = (field as i64 + 4 + i32::from_le_bytes(x_bytes[field..field + 4].try_into().unwrap()) as i64) as usize;
                if to < seg.code_len.to_native() as usize {
                    continue;
                }
                let seg_exits = &ix.exits[seg.first_exit.to_native() as usize..(seg.first_exit.to_native() + seg.exit_count.to_native()) as usize];
                let stubs = seg_exits.iter().map(|e| e.stub.to_native() as usize).min().unwrap();
                assert!(to + 8 <= stubs, "{}: the trampoline at {to:#x} lies among the stubs (from {stubs:#x})", path.display());
                let t = &x_bytes[to..to + 8];
                assert_eq!((&t[..2], &t[6..]), (&[0xff, 0x25][..], &[0xcc, 0xcc][..]), "{}: the trampoline at {to:#x}", path.display());
                let slot = x.offset as i64 + to as i64 + 6 + i32::from_le_bytes(t[2..6].try_into().unwrap()) as i64;
                assert_eq!(slot as u64, w.offset + e.slot.to_native() as u64, "{}: the trampoline at {to:#x} jumps through another slot", path.display());
                trampolines += 1;
            }
        }
    }
    assert!(trampolines > 1000, "only {trampolines} conditional exits go through a trampoline");
    let next = ["-c", "import json, re; print(json.dumps({'k': [1.5, None, re.sub('a+', 'b', 'caaat')]}, sort_keys=True))"];
    assert_app_same("python3 json and re (warm)", &native(python, &next, &opts), &run_persist(cache.path(), &[], python, &next, &opts));
}

/// SIGALRM interrupting a hot loop 1,000 times, warm: each signal finds
/// the thread in a file's code (a block, a trace, a block it runs on
/// into, a slot trampoline), and the exits it can reach are unlinked so
/// it comes back to the dispatcher, which delivers the signal. A thread
/// left spinning in linked code would stall the count (the program gives
/// up after 30 s and says so).
#[test]
fn signals_interrupting_a_loop_in_file_code_are_delivered() {
    let cache = temp_dir("persist-alarm");
    let src = dbi_tests::corpus::program("sig_alarm_loop").source_path();
    let program = compiled(&src, Build::new(Variant::Pie, Opt::O2)).unwrap_or_else(|e| panic!("{e}"));
    let native = native(&program, &[], &c_locale());
    for round in ["cold", "warm", "warm again"] {
        let run = run_persist(cache.path(), &[], &program, &[], &c_locale());
        assert_app_same(&format!("sig_alarm_loop ({round})"), &native, &run);
    }
}

/// A python3 loop under a 10 kHz interval timer whose handler runs Python
/// code: natively 0.2 s. Warm runs livelocked until a signal in a file's
/// code unlinked only what the thread can reach from there
/// (`LoadedFile::unlink_from`): unlinking the rest of its segment, tens
/// of thousands of slots in python3's file, took longer than the timer's
/// period, and a SIGTERM then waited for delivery too.
#[test]
fn a_signal_storm_ends_in_a_warm_run() {
    let cache = temp_dir("persist-storm");
    let script = cache.path().join("storm.py");
    std::fs::write(
        &script,
        "import signal\ntaken = 0\ndef on_alarm(sig, frame):\n    global taken\n    taken += 1\n\
         signal.signal(signal.SIGALRM, on_alarm)\nsignal.setitimer(signal.ITIMER_REAL, 0.0001, 0.0001)\n\
         total = 0\nfor i in range(2_000_000):\n    total += i\nsignal.setitimer(signal.ITIMER_REAL, 0, 0)\nprint(total, taken > 0)\n",
    )
    .unwrap();
    let python = Path::new(PYTHON);
    let args = [script.to_str().unwrap()];
    let native = native(python, &args, &c_locale());
    for round in ["cold", "warm", "warm again"] {
        let run = run_persist(cache.path(), &[], python, &args, &c_locale());
        assert_app_same(&format!("python3 under a 10 kHz timer ({round})"), &native, &run);
    }
}

// ---------------------------------------------------------------------------
// 2. ASLR: a warm run uses files made when modules were elsewhere.

fn aslr_is_on() {
    let level = std::fs::read_to_string("/proc/sys/kernel/randomize_va_space").unwrap_or_default();
    assert!(level.trim() != "0", "ASLR is off on this machine (randomize_va_space = {level:?}): these tests need it");
}

/// Whether the ELF file at `path` is position independent (ET_DYN).
fn is_pie(path: &Path) -> bool {
    let b = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    b.len() > 18 && &b[..4] == b"\x7fELF" && u16::from_le_bytes([b[16], b[17]]) == 3
}

/// Cold then warm with `-v -stats`: every module with a file path that the
/// warm run loads uses its cache file, at least one of them (and the main
/// program if it is PIE, and libc) is at another base than in the cold run,
/// and the warm run builds little and behaves natively.
fn check_aslr(what: &str, program: &Path, args: &[&str], opts: &RunOpts) {
    aslr_is_on();
    let cache = temp_dir("persist-aslr");
    let native = native(program, args, opts);
    let cold = run_persist(cache.path(), &["-v", "-stats"], program, args, opts);
    assert_app_same(&format!("{what} (cold)"), &native, &cold);
    let warm = run_persist(cache.path(), &["-v", "-stats"], program, args, opts);
    assert_app_same(&format!("{what} (warm)"), &native, &warm);
    let (cold_log, warm_log) = (log(&cold.stderr), log(&warm.stderr));

    let modules: Vec<(String, u64)> = warm_log
        .iter()
        .filter_map(|l| match l {
            Log::Module { path, base } if path.starts_with('/') => Some((path.clone(), *base)),
            _ => None,
        })
        .collect();
    assert!(!modules.is_empty(), "{what}: no `module loaded` lines in the warm run\n{}", stderr_excerpt(&warm));
    let mut moved = Vec::new();
    for (path, warm_base) in &modules {
        let name = Path::new(path).file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            !used(&warm_log, &name).is_empty(),
            "{what}: the warm run did not use the cache file of {path} (not used: {:?})\n{}",
            not_used(&warm_log, &name),
            stderr_excerpt(&warm)
        );
        let cold_base = module_base(&cold_log, Path::new(path))
            .unwrap_or_else(|| panic!("{what}: the cold run has no `module loaded` line for {path}"));
        if cold_base != *warm_base {
            moved.push(name);
        }
    }
    assert!(
        moved.iter().any(|m| m.starts_with("libc.so")),
        "{what}: libc is at the same base in both runs (moved: {moved:?})"
    );
    let program_name = program.canonicalize().unwrap().file_name().unwrap().to_string_lossy().into_owned();
    if is_pie(program) {
        let (c, w) = (module_base(&cold_log, program), module_base(&warm_log, program));
        assert!(
            c.is_some() && w.is_some(),
            "{what}: no `module loaded` line for the program: cold {c:x?}, warm {w:x?}"
        );
        assert_ne!(c, w, "{what}: the PIE program was loaded at the same base in both runs");
        assert!(moved.contains(&program_name), "{what}: the program moved but is not among the modules: {moved:?}");
    }
    let (cs, ws) = (stats(&cold.stderr), stats(&warm.stderr));
    let (cold_built, warm_built) = (total(&cs, "blocks built"), total(&ws, "blocks built"));
    assert!(total(&ws, "blocks loaded") > 0, "{what}: the warm run registered no block from its files");
    assert!(
        warm_built * 50 <= cold_built,
        "{what}: the warm run (modules moved: {moved:?}) built {warm_built} blocks, more than 2% of the cold run's {cold_built}"
    );
}

#[test]
fn aslr_pie_program_uses_its_file() {
    check_aslr("persist_paths 3", &program(), &["3"], &c_locale());
}

/// /usr/bin/python3 may not be PIE (Debian's is not): its libraries move.
#[test]
fn aslr_python3_uses_its_files() {
    let opts = c_locale().env("PYTHONHASHSEED", "0").env("PYTHONDONTWRITEBYTECODE", "1");
    check_aslr("python3 -c 'import json'", Path::new(PYTHON), &["-c", "import json; print(json.dumps([1]))"], &opts);
}

// ---------------------------------------------------------------------------
// 3. Protections of the mapped zones.

/// Runs `run` (a run of `persist_paths maps OUT`) on a thread; once the
/// program has written OUT, calls `inspect` with its text while the program
/// waits (its files are still mapped), then lets it finish.
fn while_mapped<R>(
    out: &Path,
    run: impl FnOnce() -> Observed + Send,
    inspect: impl FnOnce(&str) -> R,
) -> (Observed, R) {
    let done = PathBuf::from(format!("{}.done", out.display()));
    std::thread::scope(|s| {
        let h = s.spawn(run);
        let start = std::time::Instant::now();
        while !out.exists() && !h.is_finished() && start.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(5));
        }
        let text = std::fs::read_to_string(out).unwrap_or_default();
        let r = inspect(&text);
        std::fs::write(&done, b"").unwrap();
        (h.join().unwrap(), r)
    })
}

/// Checks every `.dpc` in the maps `text` against the file on disk: mapped
/// once, contiguously, each zone at its file offset with exactly its
/// protection and length, nothing else of the file mapped, never writable
/// and executable. Returns the files seen and the problems.
fn check_mapped_files(text: &str) -> (Vec<String>, Vec<String>) {
    let mut by_file: BTreeMap<String, Vec<_>> = BTreeMap::new();
    for l in parse_maps(text).into_iter().filter(|l| l.path.contains(".dpc")) {
        by_file.entry(l.path.clone()).or_default().push(l);
    }
    let mut problems = Vec::new();
    for (path, lines) in &by_file {
        let shown: Vec<String> =
            lines.iter().map(|l| format!("{:x}-{:x} {} {:x}", l.start, l.end, l.perms, l.offset)).collect();
        for l in lines {
            if l.perms.contains('w') && l.perms.contains('x') {
                problems.push(format!("{path}: mapped writable and executable: {shown:?}"));
            }
        }
        if path.ends_with(" (deleted)") {
            problems.push(format!("{path}: the mapped file was deleted while mapped"));
            continue;
        }
        let file = Path::new(path);
        let ino = std::fs::metadata(file).map(|m| m.ino()).unwrap_or(0);
        if lines.iter().any(|l| l.inode != ino) {
            problems.push(format!("{path}: mapped inode differs from the file's ({ino}): replaced while mapped?"));
            continue;
        }
        let a = Aligned::read(file);
        let v = match a.validate() {
            Ok(v) => v,
            Err(r) => {
                problems.push(format!("{path}: not a valid file: {}", r.name()));
                continue;
            }
        };
        let delta: BTreeSet<u64> = lines.iter().map(|l| l.start.wrapping_sub(l.offset)).collect();
        if delta.len() != 1 {
            problems.push(format!("{path}: not mapped as one contiguous range: {shown:?}"));
        }
        if lines.len() != v.zones.len() {
            problems.push(format!("{path}: {} mappings for {} zones: {shown:?}", lines.len(), v.zones.len()));
        }
        for (i, z) in v.zones.iter().enumerate() {
            let want = z.kind.maps_perms();
            match lines.iter().find(|l| l.offset == z.offset) {
                None => problems.push(format!(
                    "{path}: zone {i} ({want}, offset {:#x}) has no mapping at its offset: {shown:?}",
                    z.offset
                )),
                Some(l) if l.perms != want || l.end - l.start != z.len => problems.push(format!(
                    "{path}: zone {i} (offset {:#x}, {:#x} bytes) should be mapped {want} with its length, is {} with {:#x} bytes",
                    z.offset,
                    z.len,
                    l.perms,
                    l.end - l.start
                )),
                Some(_) => {}
            }
        }
    }
    (by_file.into_keys().collect(), problems)
}

/// The program copies its own /proc/self/maps during a warm run and waits
/// while the test reads the mapped .dpc files: see [`check_mapped_files`].
#[test]
fn mapped_zones_have_exactly_their_protection() {
    let exe = program();
    let cache = temp_dir("persist-maps");
    let work = temp_dir("persist-maps-out");
    let out = |name: &str| work.path().join(name);
    std::fs::write(out("native.done"), b"").unwrap();
    let native = native(&exe, &["maps", out("native").to_str().unwrap()], &RunOpts::new());
    let run = |name: &str, options: &'static [&'static str]| {
        let path = out(name);
        let cache = cache.path();
        let exe = &exe;
        while_mapped(
            &path.clone(),
            move || run_persist(cache, options, exe, &["maps", path.to_str().unwrap()], &RunOpts::new()),
            check_mapped_files,
        )
    };
    let (cold, (cold_files, _)) = run("cold", &[]);
    assert_app_same("persist_paths maps (cold)", &native, &cold);
    assert!(cold_files.is_empty(), "the cold run had .dpc files mapped before any was written: {cold_files:?}");
    let (warm, (files, problems)) = run("warm", &["-v"]);
    assert_app_same("persist_paths maps (warm)", &native, &warm);
    assert!(
        files.iter().any(|p| is_file_of(Path::new(p), PROGRAM))
            && files.iter().any(|p| is_file_of(Path::new(p), "libc.so.6")),
        "the warm run should map the files of {PROGRAM} and libc; .dpc mappings: {files:?}\n{}",
        stderr_excerpt(&warm)
    );
    assert!(
        problems.is_empty(),
        "{} problem(s) with the mapped cache files:\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
}

// ---------------------------------------------------------------------------
// 4. Keys: a file for another configuration is not used.

/// `-c null` then `-c inscount`: other file names, nothing loaded; the null
/// files are still there and used afterwards.
#[test]
fn other_client_uses_other_files() {
    let exe = program();
    let cache = temp_dir("persist-clients");
    let logs = temp_dir("persist-clients-logs");
    let logdir = logs.path().to_str().unwrap();
    let native = native(&exe, &["2"], &RunOpts::new());
    let run = |client: &str| {
        let o = run_persist(
            cache.path(),
            &["-v", "-stats", "-logdir", logdir, "-c", client],
            &exe,
            &["2"],
            &RunOpts::new(),
        );
        assert_app_same(&format!("persist_paths 2 with -c {client}"), &native, &o);
        o
    };
    let null = run("null");
    let null_files: BTreeSet<PathBuf> = log(&null.stderr)
        .into_iter()
        .filter_map(|l| if let Log::Wrote { file, .. } = l { Some(file) } else { None })
        .collect();
    assert!(null_files.iter().any(|f| is_file_of(f, PROGRAM)), "-c null wrote no file for {PROGRAM}: {null_files:?}");
    let ins = run("inscount");
    let ins_log = log(&ins.stderr);
    assert_eq!(
        total(&stats(&ins.stderr), "cache files loaded"),
        0,
        "-c inscount loaded files made with -c null\n{}",
        stderr_excerpt(&ins)
    );
    assert!(
        !ins_log.iter().any(|l| matches!(l, Log::Using { .. } | Log::NotUsing { .. })),
        "-c inscount looked at files of -c null: {ins_log:?}"
    );
    let ins_files: BTreeSet<PathBuf> =
        ins_log.into_iter().filter_map(|l| if let Log::Wrote { file, .. } = l { Some(file) } else { None }).collect();
    assert!(ins_files.iter().any(|f| is_file_of(f, PROGRAM)), "-c inscount wrote no file for {PROGRAM}");
    assert!(
        null_files.is_disjoint(&ins_files),
        "-c null and -c inscount wrote the same files: {null_files:?} / {ins_files:?}"
    );
    let again = run("null");
    assert!(
        !used(&log(&again.stderr), PROGRAM).is_empty(),
        "-c null after -c inscount did not use its file\n{}",
        stderr_excerpt(&again)
    );
}

/// inscount vs inscount -only_from_app emit different code: each variant
/// gets its own file, so alternating them keeps both warm (nothing is
/// rejected, each run loads its own variant's files).
#[test]
fn code_affecting_client_options_keep_their_own_files() {
    let exe = program();
    let cache = temp_dir("persist-client-options");
    let logs = temp_dir("persist-client-options-logs");
    let logdir = logs.path().to_str().unwrap();
    let native = native(&exe, &["2"], &RunOpts::new());
    let plain: &[&str] = &["-v", "-stats", "-logdir", logdir, "-c", "inscount"];
    let only_app: &[&str] = &["-v", "-stats", "-logdir", logdir, "-c", "inscount", "-only_from_app"];
    for (round, options) in [plain, only_app, plain, only_app].into_iter().enumerate() {
        let run = run_persist(cache.path(), options, &exe, &["2"], &RunOpts::new());
        assert_app_same(&format!("persist_paths 2 round {round} {options:?}"), &native, &run);
        let l = log(&run.stderr);
        let rejected: Vec<String> = l.iter().filter_map(|x| if let Log::NotUsing { reason, .. } = x { Some(reason.clone()) } else { None }).collect();
        assert!(rejected.is_empty(), "round {round} {options:?} rejected files: {rejected:?}\n{}", stderr_excerpt(&run));
        let loaded = total(&stats(&run.stderr), "cache files loaded");
        if round < 2 {
            assert_eq!(loaded, 0, "round {round}: the first run of a variant has no files\n{}", stderr_excerpt(&run));
        } else {
            assert!(!used(&l, PROGRAM).is_empty(), "round {round} {options:?}: its variant's file was not used\n{}", stderr_excerpt(&run));
        }
    }
    let files: Vec<_> = dbi_tests::persist::dpc_files(cache.path()).into_iter().filter(|p| dbi_tests::persist::is_file_of(p, PROGRAM)).collect();
    assert_eq!(files.len(), 2, "one file per variant: {files:?}");
}

/// bbcount -top only changes the report: -top 5 and -top 10 share files.
#[test]
fn report_only_client_options_share_files() {
    let exe = program();
    let cache = temp_dir("persist-report-options");
    let logs = temp_dir("persist-report-options-logs");
    let logdir = logs.path().to_str().unwrap();
    let native = native(&exe, &["2"], &RunOpts::new());
    let cold = run_persist(cache.path(), &["-v", "-logdir", logdir, "-c", "bbcount", "-top", "5"], &exe, &["2"], &RunOpts::new());
    assert_app_same("persist_paths 2 -c bbcount -top 5", &native, &cold);
    let warm = run_persist(cache.path(), &["-v", "-logdir", logdir, "-c", "bbcount", "-top", "10"], &exe, &["2"], &RunOpts::new());
    assert_app_same("persist_paths 2 -c bbcount -top 10", &native, &warm);
    assert!(!used(&log(&warm.stderr), PROGRAM).is_empty(), "-top 10 did not use the -top 5 file\n{}", stderr_excerpt(&warm));
}

/// The module rebuilt at the same path with one constant changed: "module
/// changed"; the file is replaced and the next run uses it.
#[test]
fn rebuilt_module_is_module_changed() {
    let src = dbi_tests::corpus::program(PROGRAM).source_path();
    let work = temp_dir("persist-rebuilt");
    let exe = work.path().join(PROGRAM);
    let build = |salt: &str| {
        let mut cmd = dbi_tests::compile::compile_command(&src, Variant::Pie, Opt::O0, &exe).unwrap();
        cmd.arg(format!("-DSALT={salt}"));
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let cache = temp_dir("persist-rebuilt-cache");
    build("1");
    let native1 = native(&exe, &["5"], &RunOpts::new());
    let cold = run_persist(cache.path(), &["-v"], &exe, &["5"], &RunOpts::new());
    assert_app_same("persist_paths 5 (SALT=1, cold)", &native1, &cold);
    build("2");
    let native2 = native(&exe, &["5"], &RunOpts::new());
    assert_ne!(native1.stdout, native2.stdout, "the rebuilt program should print something else");
    let warm = run_persist(cache.path(), &["-v"], &exe, &["5"], &RunOpts::new());
    assert_app_same("persist_paths 5 (rebuilt with SALT=2)", &native2, &warm);
    let l = log(&warm.stderr);
    assert_eq!(not_used(&l, PROGRAM), ["module changed"], "why the old file was not used\n{}", stderr_excerpt(&warm));
    assert!(!used(&l, "libc.so.6").is_empty(), "libc's file should still be used\n{}", stderr_excerpt(&warm));
    let again = run_persist(cache.path(), &["-v"], &exe, &["5"], &RunOpts::new());
    assert_app_same("persist_paths 5 (rebuilt, next run)", &native2, &again);
    assert!(
        !used(&log(&again.stderr), PROGRAM).is_empty(),
        "the file was not replaced for the rebuilt module\n{}",
        stderr_excerpt(&again)
    );
}

/// The module replaced by a copy of itself (a new inode, as a cache
/// directory moved to a fresh container sees every module): its file is
/// still used, its bytes hashed once to tell, and the hash noted for the
/// runs after it (they hash nothing, though no merge has recorded the
/// module's new identity in the file).
#[test]
fn a_copied_module_is_hashed_once() {
    let work = temp_dir("persist-copied-module");
    let exe = work.path().join(PROGRAM);
    std::fs::copy(program(), &exe).unwrap();
    let cache = temp_dir("persist-copied-module-cache");
    let native = native(&exe, &["3"], &RunOpts::new());
    let hashed = |o: &Observed| dbi_tests::persist::total(&dbi_tests::persist::stats(&o.stderr), "modules hashed");
    let cold = run_persist(cache.path(), &["-v", "-stats"], &exe, &["3"], &RunOpts::new());
    assert_app_same("persist_paths 3 (cold)", &native, &cold);
    let copy = work.path().join("copy");
    std::fs::copy(&exe, &copy).unwrap();
    std::fs::rename(&copy, &exe).unwrap();
    for (run, expected) in [("first", 1), ("second", 0)] {
        let warm = run_persist(cache.path(), &["-v", "-stats"], &exe, &["3"], &RunOpts::new());
        assert_app_same("persist_paths 3 (copied module)", &native, &warm);
        assert!(!used(&log(&warm.stderr), PROGRAM).is_empty(), "the {run} run after the copy uses the file\n{}", stderr_excerpt(&warm));
        assert_eq!(hashed(&warm), expected, "modules the {run} run after the copy hashed\n{}", stderr_excerpt(&warm));
    }
}

/// The vDSO has no file: its blocks persist in a file whose identity and
/// key are made from its bytes, which later runs use (at the vDSO's
/// address of the run) and cachetool finds valid (its deep check
/// translates the vDSO again where it is mapped); a file of another
/// kernel's vDSO (another identity and content) is "module changed" and
/// replaced.
#[test]
fn vdso_blocks_persist_keyed_by_its_bytes() {
    let cache = temp_dir("persist-vdso");
    // Reading the clock runs the vDSO's code.
    let args = ["-c", "import time; t = time.time(); time.monotonic(); print(t > 0)"];
    let python = Path::new(PYTHON);
    let native = native(python, &args, &c_locale());
    let cold = run_persist(cache.path(), &["-v"], python, &args, &c_locale());
    assert_app_same("python3 reading the clock (cold)", &native, &cold);
    let vdso = dpc_of(cache.path(), "vdso");
    let warm = run_persist(cache.path(), &["-v"], python, &args, &c_locale());
    assert_app_same("python3 reading the clock (warm)", &native, &warm);
    assert_eq!(used(&log(&warm.stderr), "vdso"), [vdso.clone()], "the vDSO's file is used\n{}", stderr_excerpt(&warm));
    let dir = vdso.parent().unwrap();
    let verify = Command::new(dbirun_path().with_file_name("cachetool")).arg("--dir").arg(dir).arg("verify").output().unwrap();
    let said = String::from_utf8_lossy(&verify.stdout);
    assert!(verify.status.success() && said.contains("all valid"), "cachetool verify: {said}{}", String::from_utf8_lossy(&verify.stderr));
    // Translated again where cachetool's own dbirun maps its vDSO, block
    // for block the same code.
    let deep = Command::new(dbirun_path().with_file_name("cachetool")).arg("--dir").arg(dir).args(["verify", "--deep"]).arg(&vdso).output().unwrap();
    let said = String::from_utf8_lossy(&deep.stdout);
    assert!(deep.status.success() && said.contains("blocks match their re-translation"), "cachetool verify --deep: {said}{}", String::from_utf8_lossy(&deep.stderr));

    let other_kernel = dbi_tests::persist::with_module(&std::fs::read(&vdso).unwrap(), |identity, hash| {
        identity[3] ^= 1;
        hash[0] ^= 1;
    });
    replace_file(&vdso, &other_kernel);
    let verify = Command::new(dbirun_path().with_file_name("cachetool")).arg("--dir").arg(dir).arg("verify").output().unwrap();
    assert!(!verify.status.success(), "cachetool verify finds another kernel's vDSO file stale");
    let third = run_persist(cache.path(), &["-v"], python, &args, &c_locale());
    assert_app_same("python3 reading the clock (another kernel's file)", &native, &third);
    assert_eq!(not_used(&log(&third.stderr), "vdso"), ["module changed"], "{}", stderr_excerpt(&third));
    let again = run_persist(cache.path(), &["-v"], python, &args, &c_locale());
    assert_app_same("python3 reading the clock (replaced file)", &native, &again);
    assert_eq!(used(&log(&again.stderr), "vdso").len(), 1, "the file was replaced\n{}", stderr_excerpt(&again));
}

/// The options hash in the key of the file of `module` in `dir`.
fn options_hash_of(dir: &Path, module: &str) -> u64 {
    let file = dpc_of(dir, module);
    Aligned::read(&file).validate().unwrap_or_else(|r| panic!("{}: {r:?}", file.display())).key.options_hash
}

/// A non-PIE program is mapped at its link address, below 2 GiB, in every
/// run: its code names its addresses outright (no base slot), which is
/// valid only there, so its file's key carries the base (its options hash
/// differs from libc's in the same run, which a PIE program's does not).
/// Cold and warm runs behave natively and the warm one uses the file.
#[test]
fn a_fixed_address_program_names_its_addresses_in_a_key_of_its_own() {
    let src = dbi_tests::corpus::program(PROGRAM).source_path();
    for variant in [Variant::NoPie, Variant::Pie] {
        let exe = compiled(&src, Build::new(variant, Opt::O2)).unwrap_or_else(|e| panic!("{e}"));
        let cache = temp_dir("persist-fixed");
        let native = native(&exe, &["5"], &c_locale());
        let cold = run_persist(cache.path(), &["-v", "-stats"], &exe, &["5"], &c_locale());
        assert_app_same(&format!("persist_paths 5, {variant:?} (cold)"), &native, &cold);
        let warm = run_persist(cache.path(), &["-v", "-stats"], &exe, &["5"], &c_locale());
        assert_app_same(&format!("persist_paths 5, {variant:?} (warm)"), &native, &warm);
        let name = exe.file_name().unwrap().to_string_lossy().into_owned();
        assert!(!used(&log(&warm.stderr), &name).is_empty(), "{variant:?}: the warm run did not use its file\n{}", stderr_excerpt(&warm));
        let (program, libc) = (options_hash_of(cache.path(), &name), options_hash_of(cache.path(), "libc.so.6"));
        match variant {
            Variant::NoPie => assert_ne!(program, libc, "the non-PIE program's key does not carry its base"),
            _ => assert_eq!(program, libc, "a PIE program's key differs from libc's"),
        }
    }
}

/// -stats changes generated code (the lookup code counts), so it is part
/// of the variant: runs with and without it keep their own files, and
/// alternating them keeps both warm.
#[test]
fn stats_option_is_its_own_variant() {
    let exe = program();
    let cache = temp_dir("persist-options");
    let native = native(&exe, &["1"], &RunOpts::new());
    let cold = run_persist(cache.path(), &["-stats"], &exe, &["1"], &RunOpts::new());
    assert_app_same("persist_paths 1 -stats (cold)", &native, &cold);
    let other = run_persist(cache.path(), &["-v"], &exe, &["1"], &RunOpts::new());
    assert_app_same("persist_paths 1 without -stats", &native, &other);
    assert!(not_used(&log(&other.stderr), PROGRAM).is_empty(), "the -stats file was looked at\n{}", stderr_excerpt(&other));
    for options in [&["-v", "-stats"][..], &["-v"]] {
        let again = run_persist(cache.path(), options, &exe, &["1"], &RunOpts::new());
        assert_app_same(&format!("persist_paths 1 {options:?} (warm)"), &native, &again);
        let l = log(&again.stderr);
        assert!(!used(&l, PROGRAM).is_empty(), "{options:?}: its file was not used\n{}", stderr_excerpt(&again));
        assert!(not_used(&l, PROGRAM).is_empty(), "{options:?}: a file was rejected\n{}", stderr_excerpt(&again));
    }
}

/// A valid file for another runtime version, TLS layout or options hash
/// (rewritten with the persist crate): not used, with that reason; the run
/// behaves natively and replaces the file with one for its own key.
#[test]
fn rewritten_key_fields_are_noticed() {
    let exe = program();
    let cache = temp_dir("persist-keys");
    let native = native(&exe, &["6"], &RunOpts::new());
    let cold = run_persist(cache.path(), &["-v"], &exe, &["6"], &RunOpts::new());
    assert_app_same("persist_paths 6 (cold)", &native, &cold);
    let file = dpc_of(cache.path(), PROGRAM);
    let good = std::fs::read(&file).unwrap();
    let good_key = Aligned::new(&good).validate().expect("the cold run's file is valid").key;
    type Change = fn(&mut persist::CacheKey);
    let cases: [(&str, Change); 3] = [
        ("other runtime version", |k| k.runtime_version = k.runtime_version.wrapping_add(1)),
        ("other TLS layout", |k| k.tls_layout_hash ^= 1 << 17),
        ("other -stats or -traces setting", |k| k.options_hash = k.options_hash.wrapping_add(1)),
    ];
    let mut problems = Vec::new();
    for (reason, change) in cases {
        replace_file(&file, &with_key(&good, change));
        let warm = run_persist(cache.path(), &["-v"], &exe, &["6"], &RunOpts::new());
        if let Err(e) = compare_app(&format!("persist_paths 6 with a file of {reason}"), &native, &warm) {
            problems.push(e);
        }
        let l = log(&warm.stderr);
        let why = not_used(&l, PROGRAM);
        if why != [reason] {
            problems.push(format!(
                "{reason}: the run said {why:?} about the file of {PROGRAM} (used: {:?})",
                used(&l, PROGRAM)
            ));
        }
        match Aligned::read(&file).validate() {
            Ok(v) if v.key == good_key => {}
            Ok(v) => problems.push(format!(
                "{reason}: after the run the file still has another key: {:?}",
                v.key.mismatch(&good_key)
            )),
            Err(r) => problems.push(format!("{reason}: after the run the file is invalid: {}", r.name())),
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ---------------------------------------------------------------------------
// 5. Corrupt files.

/// One corrupted version of a file, and the reason a run must give (None:
/// any reason).
struct Mutation {
    what: String,
    bytes: Vec<u8>,
    expect: Option<&'static str>,
}

/// Byte flips in every zone (first, second, middle, last bytes, and a
/// padding byte), truncations, and a seeded fuzz of the header and zone
/// table (half of the cases with the header hash recomputed, so that the
/// zone checks see them).
fn mutations(good: &[u8]) -> Vec<Mutation> {
    let a = Aligned::new(good);
    let v = a.validate().expect("the file to corrupt is valid");
    let mut out = Vec::new();
    let table_end = header_and_table_len(v.zones.len());
    let flip = |at: usize, x: u8| {
        let mut b = good.to_vec();
        b[at] ^= x;
        b
    };
    for (i, z) in v.zones.iter().enumerate() {
        let (off, len) = (z.offset as usize, z.len as usize);
        let mut offsets = vec![0, 1, len / 3, len / 2, len - 2, len - 1];
        if z.kind == ZoneKind::Exec {
            // The first byte after the last block's code: padding up to the page.
            let seg = v.index.segments.iter().position(|s| s.x_zone.to_native() as usize == i);
            let end = v
                .index
                .blocks
                .iter()
                .filter(|b| Some(b.segment.to_native() as usize) == seg)
                .map(|b| (b.code_offset.to_native() + b.code_len.to_native()) as usize)
                .max()
                .unwrap_or(0);
            if end < len {
                offsets.push(end);
            }
        }
        offsets.sort();
        offsets.dedup();
        for o in offsets {
            let at = off + o;
            let expect = match z.kind {
                ZoneKind::Exec => Some("X zone checksum"),
                ZoneKind::Writable => Some("W zone checksum"),
                ZoneKind::ReadOnly if at >= table_end => Some("R zone checksum"),
                ZoneKind::ReadOnly => None,
            };
            out.push(Mutation {
                what: format!("zone {i} ({:?}) byte {o:#x} flipped", z.kind),
                bytes: flip(at, 0x5a),
                expect,
            });
        }
    }
    for len in [0, 1, 63, 64, 4096, good.len() / 2, good.len() - 1] {
        out.push(Mutation { what: format!("truncated to {len} bytes"), bytes: good[..len].to_vec(), expect: None });
    }
    let mut rng = Rng::new(0xd9c);
    for case in 0..32 {
        let mut b = good.to_vec();
        let rehash = case % 2 == 1;
        let mut changed = Vec::new();
        for _ in 0..1 + rng.below(4) {
            let mut at = rng.below(table_end as u64) as usize;
            if rehash && (HEADER_HASH_AT..HEADER_HASH_AT + 32).contains(&at) {
                at -= HEADER_HASH_AT;
            }
            b[at] ^= 1 + rng.below(255) as u8;
            changed.push(at);
        }
        let count = u32::from_le_bytes(b[ZONE_COUNT_AT..ZONE_COUNT_AT + 4].try_into().unwrap()) as usize;
        let rehashed = rehash && (1..=MAX_ZONES).contains(&count) && header_and_table_len(count) <= b.len();
        if rehashed {
            let h = header_hash(&b, count);
            b[HEADER_HASH_AT..HEADER_HASH_AT + 32].copy_from_slice(&h);
        }
        if b == good {
            continue;
        }
        out.push(Mutation {
            what: format!(
                "header fuzz case {case}: bytes {changed:?} changed{}",
                if rehashed { ", header hash recomputed" } else { "" }
            ),
            bytes: b,
            expect: None,
        });
    }
    out
}

/// Each corrupted version of a cold run's file of the program, written over
/// the file before a warm run: the run never crashes or hangs, behaves
/// natively, and says it is not using the file (with the zone's checksum as
/// the reason when the R zone is intact and the byte is in X or W).
#[test]
fn corrupt_files_are_never_used() {
    let exe = program();
    let cache = temp_dir("persist-corrupt");
    let native = native(&exe, &["0"], &RunOpts::new());
    let cold = run_persist(cache.path(), &["-v"], &exe, &["0"], &RunOpts::new());
    assert_app_same("persist_paths 0 (cold)", &native, &cold);
    let file = dpc_of(cache.path(), PROGRAM);
    let good = std::fs::read(&file).unwrap();
    let warm = run_persist(cache.path(), &["-v"], &exe, &["0"], &RunOpts::new());
    assert!(!used(&log(&warm.stderr), PROGRAM).is_empty(), "the intact file was not used\n{}", stderr_excerpt(&warm));

    let opts = RunOpts::new().timeout(Duration::from_secs(20));
    let cases = mutations(&good);
    let mut problems = Vec::new();
    for m in &cases {
        // In place, as a disk or another program would change it.
        std::fs::write(&file, &m.bytes).unwrap();
        let dir = cache.path().to_str().unwrap();
        let o = match dbi_tests::run_dbirun(&["-persist", "-persist_dir", dir, "-v"], &exe, &["0"], &opts) {
            Ok(o) => o,
            Err(f) => {
                problems.push(format!("{}: {f}", m.what));
                continue;
            }
        };
        if let Err(e) = compare_app(&m.what, &native, &o) {
            problems.push(e);
        }
        let l = log(&o.stderr);
        let why = not_used(&l, PROGRAM);
        let ok = match m.expect {
            Some(reason) => why == [reason],
            None => why.len() == 1,
        };
        if !ok {
            problems.push(format!(
                "{}: expected `not using` with {}, got {why:?} (used: {:?})",
                m.what,
                m.expect.unwrap_or("any reason"),
                used(&l, PROGRAM)
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{} of {} corrupted files mishandled:\n{}",
        problems.len(),
        cases.len(),
        problems.join("\n")
    );
}

/// A run that did not use a corrupt file replaces it at exit (as with any
/// invalid file), so the next run uses the cache again.
#[test]
fn corrupt_file_is_replaced_at_exit() {
    let exe = program();
    let cache = temp_dir("persist-corrupt-replaced");
    let native = native(&exe, &["0"], &RunOpts::new());
    let cold = run_persist(cache.path(), &[], &exe, &["0"], &RunOpts::new());
    assert_app_same("persist_paths 0 (cold)", &native, &cold);
    let file = dpc_of(cache.path(), PROGRAM);
    let good = std::fs::read(&file).unwrap();
    let zones = Aligned::new(&good).validate().unwrap().zones;
    let mut problems = Vec::new();
    for (i, z) in zones.iter().enumerate() {
        let mut bad = good.clone();
        bad[(z.offset + z.len / 2) as usize] ^= 0x5a;
        replace_file(&file, &bad);
        let o = run_persist(cache.path(), &["-v"], &exe, &["0"], &RunOpts::new());
        if let Err(e) = compare_app(&format!("zone {i} flipped"), &native, &o) {
            problems.push(e);
        }
        let why = not_used(&log(&o.stderr), PROGRAM);
        match Aligned::read(&file).validate() {
            Ok(_) => {}
            Err(r) => problems.push(format!(
                "zone {i} ({:?}) flipped: the run said {why:?} but left the file as it was ({} on the next load)",
                z.kind,
                r.name()
            )),
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// A file whose X (or W) zone is corrupt but whose R zone is intact is not
/// used; a later run with new blocks must not merge the corrupt zone into a
/// new file with fresh hashes (which the run after would execute).
#[test]
fn corrupt_zone_is_not_merged_into_a_new_file() {
    let exe = program();
    let mut problems = Vec::new();
    for kind in [ZoneKind::Exec, ZoneKind::Writable] {
        let cache = temp_dir("persist-corrupt-merge");
        let natives: Vec<Observed> = ["0", "4"].iter().map(|k| native(&exe, &[k], &RunOpts::new())).collect();
        let run = |k: usize, what: &str, problems: &mut Vec<String>| {
            let arg = ["0", "4"][k];
            let o = run_persist(cache.path(), &["-v"], &exe, &[arg], &RunOpts::new().timeout(Duration::from_secs(20)));
            if let Err(e) =
                compare_app(&format!("{kind:?} zone corrupted, {what}: persist_paths {arg}"), &natives[k], &o)
            {
                let l = log(&o.stderr);
                problems.push(format!(
                    "{e}\n  (file of {PROGRAM} used: {:?}, not used: {:?})",
                    used(&l, PROGRAM),
                    not_used(&l, PROGRAM)
                ));
            }
            o
        };
        run(0, "cold", &mut problems);
        let file = dpc_of(cache.path(), PROGRAM);
        let mut bad = std::fs::read(&file).unwrap();
        let z = Aligned::new(&bad).validate().unwrap().zones.into_iter().find(|z| z.kind == kind).unwrap();
        // int3 all over the code, or garbage in every exit slot.
        let fill = if kind == ZoneKind::Exec { 0xcc } else { 0x41 };
        bad[z.offset as usize..(z.offset + z.len) as usize].fill(fill);
        replace_file(&file, &bad);
        let first = run(0, "first run after the corruption", &mut problems);
        let want = if kind == ZoneKind::Exec { "X zone checksum" } else { "W zone checksum" };
        let why = not_used(&log(&first.stderr), PROGRAM);
        if why != [want] {
            problems.push(format!("{kind:?} zone corrupted: expected `not using` with {want}, got {why:?}"));
        }
        run(1, "a run adding new blocks", &mut problems);
        run(0, "the run after that", &mut problems);
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ---------------------------------------------------------------------------
// 5b. Untrusted files, and files merged into many times.

/// A cache file that others may write, or a symlink, is not used
/// ("untrusted owner or mode"); the run behaves natively and puts a file of
/// its own (a regular file, mode 0600) in its place.
#[test]
fn untrusted_files_are_not_used() {
    use std::os::unix::fs::PermissionsExt;
    let exe = program();
    let cache = temp_dir("persist-untrusted");
    let elsewhere = temp_dir("persist-untrusted-elsewhere");
    let native = native(&exe, &["1"], &RunOpts::new());
    let cold = run_persist(cache.path(), &[], &exe, &["1"], &RunOpts::new());
    assert_app_same("persist_paths 1 (cold)", &native, &cold);
    let file = dpc_of(cache.path(), PROGRAM);
    let good = std::fs::read(&file).unwrap();
    type Spoil = fn(&Path, &Path, &[u8]);
    let cases: [(&str, Spoil); 3] = [
        ("group-writable", |f, _, _| std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o620)).unwrap()),
        ("world-writable", |f, _, _| std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o602)).unwrap()),
        ("a symlink to a valid file", |f, other, good| {
            let target = other.join("target.dpc");
            std::fs::write(&target, good).unwrap();
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
            std::fs::remove_file(f).unwrap();
            std::os::unix::fs::symlink(&target, f).unwrap();
        }),
    ];
    let mut problems = Vec::new();
    for (what, spoil) in cases {
        replace_file(&file, &good);
        spoil(&file, elsewhere.path(), &good);
        let o = run_persist(cache.path(), &["-v"], &exe, &["1"], &RunOpts::new());
        if let Err(e) = compare_app(&format!("persist_paths 1 with a {what} file"), &native, &o) {
            problems.push(e);
        }
        let why = not_used(&log(&o.stderr), PROGRAM);
        if why != ["untrusted owner or mode"] {
            problems.push(format!("{what}: expected `not using` with untrusted owner or mode, got {why:?}"));
        }
        let meta = std::fs::symlink_metadata(&file).unwrap();
        if !meta.file_type().is_file() || meta.mode() & 0o077 != 0 {
            problems.push(format!(
                "{what}: after the run the file is {:?} with mode {:o}",
                meta.file_type(),
                meta.mode() & 0o7777
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// C source of a program with `n` small paths (input 0..n-1, 64 steps
/// each) and one big one (input "big", 512 steps), all in one module.
fn many_paths_source(n: usize) -> String {
    let mut s = String::from(
        "#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\nstatic volatile unsigned sink;\n\
         #define STEP(n) if ((x >> ((n) % 23)) & 1) { x = x * 2654435761u + (unsigned)(n); sink = x; } \
         else { x = (x ^ ((unsigned)(n) * 40503u)) + 7; }\n\
         #define STEP4(n) STEP(n) STEP((n) + 1) STEP((n) + 2) STEP((n) + 3)\n\
         #define STEP16(n) STEP4(n) STEP4((n) + 4) STEP4((n) + 8) STEP4((n) + 12)\n\
         #define STEP64(n) STEP16(n) STEP16((n) + 16) STEP16((n) + 32) STEP16((n) + 48)\n",
    );
    for k in 0..n {
        s.push_str(&format!(
            "static __attribute__((noinline)) unsigned p{k}(unsigned x) {{ STEP64({}) return x; }}\n",
            k * 100
        ));
    }
    s.push_str("static __attribute__((noinline)) unsigned big(unsigned x) {");
    for i in 0..8 {
        s.push_str(&format!(" STEP64({})", 100_000 + 64 * i));
    }
    s.push_str(" return x; }\n");
    let table: Vec<String> = (0..n).map(|k| format!("p{k}")).collect();
    s.push_str(&format!("static unsigned (*const P[{n}])(unsigned) = {{{}}};\n", table.join(", ")));
    s.push_str(
        "int main(int argc, char **argv) {\n\
         \x20   if (argc < 2) return 2;\n\
         \x20   unsigned (*f)(unsigned) = strcmp(argv[1], \"big\") == 0 ? big : P[atoi(argv[1])];\n\
         \x20   unsigned a = f(0x9e3779b9u), b = f(~a);\n\
         \x20   printf(\"%s: %08x %08x\\n\", argv[1], a, b);\n\
         \x20   return 0;\n}\n",
    );
    s
}

/// Runs with 72 different inputs each add their blocks to the module's file
/// (each write appends a (W, X) zone pair, and a file holds at most
/// MAX_ZONES zones); a run that then adds many new blocks (more than 1/64
/// of the file) must still get them persisted: the next run with the same
/// input builds almost nothing.
#[test]
fn many_merges_do_not_freeze_the_file() {
    let work = temp_dir("persist-many-merges");
    let src = work.path().join("many_paths.c");
    std::fs::write(&src, many_paths_source(72)).unwrap();
    let exe = work.path().join("many_paths");
    dbi_tests::compile(&src, Variant::Pie, Opt::O0, &exe).unwrap_or_else(|e| panic!("{e}"));
    let cache = temp_dir("persist-many-merges-cache");
    let inputs: Vec<String> = (0..72).map(|k| k.to_string()).collect();
    for k in &inputs {
        let native = native(&exe, &[k], &RunOpts::new());
        let o = run_persist(cache.path(), &["-stats"], &exe, &[k], &RunOpts::new());
        assert_app_same(&format!("many_paths {k}"), &native, &o);
    }
    let file = dpc_of(cache.path(), "many_paths");
    let zones = Aligned::read(&file).validate().map(|v| v.zones.len()).unwrap_or(0);
    let native = native(&exe, &["big"], &RunOpts::new());
    let first = run_persist(cache.path(), &["-stats", "-v"], &exe, &["big"], &RunOpts::new());
    assert_app_same("many_paths big (first)", &native, &first);
    let second = run_persist(cache.path(), &["-stats", "-v"], &exe, &["big"], &RunOpts::new());
    assert_app_same("many_paths big (second)", &native, &second);
    let (b1, b2) = (total(&stats(&first.stderr), "blocks built"), total(&stats(&second.stderr), "blocks built"));
    let in_file = Aligned::read(&file).validate().map(|v| v.index.blocks.len()).unwrap_or(0);
    assert!(
        b2 * 10 <= b1,
        "after 72 runs with different inputs (the file had {zones} zones, at most {MAX_ZONES}), the first run of a \
         big new path built {b1} blocks and the second {b2}: its blocks were not persisted (the file holds {in_file} \
         blocks; the first run wrote: {:?})",
        log(&first.stderr)
            .iter()
            .filter(|l| matches!(l, Log::Wrote { file, .. } if is_file_of(file, "many_paths")))
            .collect::<Vec<_>>()
    );
}

/// persist_smc patches an instruction of its own module's text and calls
/// the code before and after: a warm run starts from the file's bytes, so
/// blocks built from the patched bytes must not run before the patch.
#[test]
fn self_modified_code_is_not_reused() {
    let src = dbi_tests::corpus::program("persist_smc").source_path();
    let exe = compiled(&src, Build::new(Variant::Pie, Opt::O2)).unwrap_or_else(|e| panic!("{e}"));
    let cache = temp_dir("persist-smc");
    let native = native(&exe, &[], &RunOpts::new());
    assert!(
        native.stdout_str().contains("patched: yes"),
        "the program did not patch itself natively: {}",
        native.stdout_str()
    );
    for run in ["cold", "warm", "second warm"] {
        let o = run_persist(cache.path(), &["-v"], &exe, &[], &RunOpts::new());
        if let Err(e) = compare_app(&format!("persist_smc ({run})"), &native, &o) {
            let l = log(&o.stderr);
            panic!("{e}\n  (file used: {:?}, not used: {:?})", used(&l, "persist_smc"), not_used(&l, "persist_smc"));
        }
    }
}

/// persist_smc_loop patches the constant its loop adds after the loop's
/// head was counted: in the first run after `-aot` the head is counted
/// from the file's exits, its counting stub leading to the file's code
/// (the head's block unregistered); the patch retires the file, and the
/// stub must go with it, or the loop runs the file's code of the old
/// constant.
#[test]
fn a_counted_loop_of_an_aot_file_runs_its_rewritten_code() {
    let src = dbi_tests::corpus::program("persist_smc_loop").source_path();
    let exe = compiled(&src, Build::new(Variant::Pie, Opt::O2)).unwrap_or_else(|e| panic!("{e}"));
    let cache = temp_dir("persist-smc-loop");
    let native = native(&exe, &[], &RunOpts::new());
    assert!(native.stdout_str().contains("patched: yes"), "the program did not patch itself natively: {}", native.stdout_str());
    let aot = run_persist(cache.path(), &["-v", "-aot"], &exe, &[], &RunOpts::new());
    assert!(aot.stdout.is_empty(), "-aot ran the program: {}", aot.stdout_str());
    for run in ["first after -aot", "second"] {
        let o = run_persist(cache.path(), &["-v"], &exe, &[], &RunOpts::new());
        if let Err(e) = compare_app(&format!("persist_smc_loop ({run})"), &native, &o) {
            let l = log(&o.stderr);
            panic!("{e}\n  (file used: {:?}, not used: {:?})", used(&l, "persist_smc_loop"), not_used(&l, "persist_smc_loop"));
        }
    }
}

/// A process that dies of a fatal signal (a fault, abort) still writes its
/// caches, and dies exactly as natively; the next run uses them.
#[test]
fn fatal_signals_still_persist() {
    let exe = program();
    for how in ["segv", "abort"] {
        let cache = temp_dir("persist-fatal");
        let native = native(&exe, &[how, "5"], &RunOpts::new());
        assert!(native.status.is_signal(), "{how}: natively {:?}", native.status);
        // -stats in both runs: it is part of the key.
        let o = run_persist(cache.path(), &["-v", "-stats"], &exe, &[how, "5"], &RunOpts::new());
        assert_app_same(&format!("persist_paths {how} 5 (cold)"), &native, &o);
        let wrote = log(&o.stderr).iter().any(|l| matches!(l, Log::Wrote { file, .. } if is_file_of(file, PROGRAM)));
        assert!(wrote, "{how}: the dying run wrote no file for {PROGRAM}\n{}", stderr_excerpt(&o));
        let warm = run_persist(cache.path(), &["-v", "-stats"], &exe, &["5"], &RunOpts::new());
        assert_app_same("persist_paths 5 (warm)", &run_native(&exe, &["5"], &RunOpts::new()).unwrap(), &warm);
        assert!(!used(&log(&warm.stderr), PROGRAM).is_empty(), "{how}: the next run did not use the file\n{}", stderr_excerpt(&warm));
        // The next run exits normally: only its exit path is new.
        let (cold_built, built) = (total(&stats(&o.stderr), "blocks built"), total(&stats(&warm.stderr), "blocks built"));
        assert!(
            built * 2 < cold_built && total(&stats(&warm.stderr), "blocks loaded") > 0,
            "{how}: the next run built {built} blocks (the dying one {cold_built})\n{}",
            stderr_excerpt(&warm)
        );
    }
}

// ---------------------------------------------------------------------------
// 6. Concurrent writers.

/// 8 processes, each with its own input, persisting the same module at
/// once, 20 rounds (on even rounds the program's file is removed first, so
/// all 8 write it again): every file in the directory is valid afterwards,
/// no temporary file is left, and a warm run with any input builds almost
/// nothing (the file holds the union of their blocks).
#[test]
fn concurrent_writers_merge_their_blocks() {
    let exe = program();
    let cache = temp_dir("persist-concurrent");
    let inputs: Vec<String> = (0..8).map(|k| k.to_string()).collect();
    let natives: Vec<Observed> = inputs.iter().map(|k| native(&exe, &[k], &RunOpts::new())).collect();
    for round in 0..20 {
        if round % 2 == 0 {
            for f in dpc_files(cache.path()).into_iter().filter(|f| is_file_of(f, PROGRAM)) {
                std::fs::remove_file(&f).unwrap();
            }
        }
        let outs: Vec<Observed> = std::thread::scope(|s| {
            let handles: Vec<_> = inputs
                .iter()
                .map(|k| s.spawn(|| run_persist(cache.path(), &["-stats", "-v"], &exe, &[k], &RunOpts::new())))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (k, o) in outs.iter().enumerate() {
            assert_app_same(&format!("round {round}, persist_paths {k}"), &natives[k], o);
            // After the removal each path's blocks are new: every writer
            // must have merged them into the file under the lock.
            if round % 2 == 0 {
                let wrote: Vec<u64> = log(&o.stderr)
                    .into_iter()
                    .filter_map(|l| match l {
                        Log::Wrote { file, new, .. } if is_file_of(&file, PROGRAM) => Some(new),
                        _ => None,
                    })
                    .collect();
                assert!(
                    wrote.len() == 1 && wrote[0] >= 100,
                    "round {round}, persist_paths {k}: expected one write of its path's blocks to the program's file, got {wrote:?}\n{}",
                    stderr_excerpt(o)
                );
            }
        }
    }
    let files = all_files(cache.path());
    let leftovers: Vec<&PathBuf> = files
        .iter()
        .filter(|f| !f.to_string_lossy().ends_with(".dpc") && !f.to_string_lossy().ends_with(".dpc.lock"))
        // dbirun's cache index (cachetool's), with SQLite's WAL files.
        .filter(|f| !f.file_name().is_some_and(|n| n.to_string_lossy().starts_with("index.sqlite")))
        .collect();
    assert!(leftovers.is_empty(), "files other than .dpc, .dpc.lock and the index left in the cache directory: {leftovers:?}");
    for f in dpc_files(cache.path()) {
        if let Err(r) = Aligned::read(&f).validate() {
            panic!("{} is not valid after the concurrent writers: {}", f.display(), r.name());
        }
    }
    let file = dpc_of(cache.path(), PROGRAM);
    let blocks = Aligned::read(&file).validate().unwrap().index.blocks.len();
    for (k, input) in inputs.iter().enumerate() {
        let o = run_persist(cache.path(), &["-stats", "-v"], &exe, &[input], &RunOpts::new());
        assert_app_same(&format!("warm persist_paths {k}"), &natives[k], &o);
        let s = stats(&o.stderr);
        let (built, loaded) = (total(&s, "blocks built"), total(&s, "blocks loaded"));
        assert!(
            built <= 16 && loaded > 0,
            "warm persist_paths {k} after the concurrent rounds built {built} blocks and loaded {loaded} \
             (the program's file has {blocks} blocks)\n{}",
            stderr_excerpt(&o)
        );
    }
}

/// `cachetool --persist-dir base ARGS`, run.
fn cachetool_in(base: &str, args: &[&str]) -> std::process::Output {
    Command::new(dbirun_path().with_file_name("cachetool")).args(["--persist-dir", base]).args(args).output().unwrap()
}

/// Stops the cache server of the directory `base` when dropped (a test
/// that fails leaves none running).
struct StopServer<'a>(&'a str);

impl Drop for StopServer<'_> {
    fn drop(&mut self) {
        let _ = cachetool_in(self.0, &["server", "stop"]);
    }
}

/// A run's blocks handed to the cache server after another run wrote its
/// file of the same module: the merge adds those the file lacks and drops
/// the rest, whose code stays in the run's segment, where the run's other
/// blocks branch or run on into it. Those exits go through their slots
/// (to the file's blocks) instead: every block a thread can reach is one
/// the index names, so the deep check passes and a warm run records
/// coverage in the blocks drcov reads (the same blocks as cold).
#[test]
fn blocks_merged_onto_another_runs_file_lead_into_no_dropped_code() {
    let cache = temp_dir("persist-merged-onto");
    let base = cache.path().to_str().unwrap();
    let cachetool = |args: &[&str]| cachetool_in(base, args);
    let _stop = StopServer(base);
    let logs: Vec<tempfile::TempDir> = (0..3).map(|_| temp_dir("persist-merged-onto-logs")).collect();
    let dbirun = |logs: &Path| {
        let mut cmd = Command::new(dbirun_path());
        // With the server (not the test run's DBIRUN_OPTIONS): its merge
        // takes a whole cold run's blocks, the runtime's own leaves out
        // those already on disk.
        cmd.env_remove("DBIRUN_OPTIONS").env("PYTHONHASHSEED", "0").args(["-persist", "-persist_dir", base, "-logdir", logs.to_str().unwrap(), "-c", "drcov"]);
        // Addresses fixed, so that libc takes the same ways cold and warm
        // (its string functions' ways depend on alignments).
        // SAFETY: personality is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                libc::personality(ADDR_NO_RANDOMIZE);
                Ok(())
            });
        }
        cmd
    };
    let held_program = [PYTHON, "-c", "print(\"ready\", flush=True); print(input())"];
    // The held run loads libc before any file of it exists...
    let mut held = dbirun(logs[0].path())
        .arg("--")
        .args(held_program)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut held_out = std::io::BufReader::new(held.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut held_out, &mut line).unwrap();
    assert_eq!(line, "ready\n");
    // ...ls writes libc's file meanwhile...
    let ls = dbirun(logs[1].path()).args(["--", "/bin/ls", "-la", "/usr/bin"]).output().unwrap();
    assert!(ls.status.success(), "{}", String::from_utf8_lossy(&ls.stderr));
    assert!(cachetool(&["server", "sync"]).status.success());
    let libc = dpc_of(cache.path(), "libc.so.6");
    let segments = |f: &Path| Aligned::read(f).validate().unwrap().index.segments.len();
    assert_eq!(segments(&libc), 1);
    // ...and the held run's blocks, all of them built, are merged onto it.
    std::io::Write::write_all(held.stdin.as_mut().unwrap(), b"x\n").unwrap();
    drop(held.stdin.take());
    assert!(held.wait().unwrap().success());
    assert!(cachetool(&["server", "sync"]).status.success());
    assert!(segments(&libc) >= 2, "the held run's libc blocks were not merged onto ls's file");
    let deep = cachetool(&["verify", "--deep"]);
    assert!(deep.status.success(), "{}{}", String::from_utf8_lossy(&deep.stdout), String::from_utf8_lossy(&deep.stderr));
    // The held program again, warm: drcov lists what it listed cold.
    let mut warm = dbirun(logs[2].path()).arg("--").args(held_program).stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).spawn().unwrap();
    std::io::Write::write_all(warm.stdin.as_mut().unwrap(), b"x\n").unwrap();
    drop(warm.stdin.take());
    let warm = warm.wait_with_output().unwrap();
    assert!(warm.status.success());
    assert_eq!(warm.stdout, b"ready\nx\n");
    let coverage = |dir: &Path| {
        let files = all_files(dir);
        assert_eq!(files.len(), 1, "{files:?}");
        drcov_blocks(&std::fs::read(&files[0]).unwrap())
    };
    let (cold, warm) = (coverage(logs[0].path()), coverage(logs[2].path()));
    assert_eq!(cold.0, warm.0, "modules");
    // libc's blocks, the merged file's (python's own ways vary from run
    // to run).
    let of_libc = |blocks: &BTreeSet<(String, u32, u16)>| -> BTreeSet<(String, u32, u16)> { blocks.iter().filter(|b| b.0.ends_with("/libc.so.6")).cloned().collect() };
    let (cold, warm) = (of_libc(&cold.1), of_libc(&warm.1));
    assert!(cold.len() > 500, "{} libc blocks", cold.len());
    let missing: Vec<_> = cold.difference(&warm).collect();
    let more: Vec<_> = warm.difference(&cold).collect();
    assert!(missing.is_empty() && more.is_empty(), "warm drcov lacks {missing:?}, adds {more:?}");
}

/// Two cold runs of a program racing (the second starts before the cache
/// server merged the first's blocks): the second's delta holds a second
/// copy of the program's start-up, all it built, though its index names
/// only what the file lacked when it ended. The merge takes its marks
/// alone (`persist::merge::MOSTLY_HELD`): the file gets no second copy,
/// and the runs after use it as a single run wrote it.
#[test]
fn a_racing_cold_runs_copy_of_the_files_code_is_not_merged() {
    let cache = temp_dir("persist-racing-cold");
    let base = cache.path().to_str().unwrap();
    let cachetool = |args: &[&str]| cachetool_in(base, args);
    let _stop = StopServer(base);
    let program = [PYTHON, "-c", "print(\"ready\", flush=True); print(input())"];
    let dbirun = || {
        let mut cmd = Command::new(dbirun_path());
        // With the server, whatever the test run's DBIRUN_OPTIONS.
        cmd.env_remove("DBIRUN_OPTIONS").args(["-persist", "-persist_dir", base, "--"]).args(program);
        cmd.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped());
        cmd
    };
    // Answers the program's prompt; its output from then on.
    let answer = |mut child: std::process::Child, expected: &[u8]| {
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"x\n").unwrap();
        drop(child.stdin.take());
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        assert_eq!(out.stdout, expected);
    };
    // The held run starts before any file of python's exists...
    let mut held = dbirun().spawn().unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(held.stdout.as_mut().unwrap()), &mut line).unwrap();
    assert_eq!(line, "ready\n");
    // ...another run of the same program writes the file meanwhile...
    answer(dbirun().spawn().unwrap(), b"ready\nx\n");
    assert!(cachetool(&["server", "sync"]).status.success());
    let python = dpc_files(cache.path()).into_iter().find(|p| p.file_name().unwrap().to_string_lossy().starts_with("python")).expect("python's file");
    let shape = |f: &Path| {
        let file = Aligned::read(f);
        let v = file.validate().unwrap();
        (v.index.segments.len(), v.zones.len(), std::fs::metadata(f).unwrap().len())
    };
    let first = shape(&python);
    // ...and the held run ends, its blocks handed over.
    answer(held, b"x\n");
    assert!(cachetool(&["server", "sync"]).status.success());
    let after = shape(&python);
    assert_eq!((after.0, after.1), (first.0, first.1), "segments and zones of python's file (first {first:?}, after the racing run {after:?})");
    assert!(after.2 < first.2 + first.2 / 10, "python's file grew from {} to {} bytes", first.2, after.2);
    let deep = cachetool(&["verify", "--deep"]);
    assert!(deep.status.success(), "{}{}", String::from_utf8_lossy(&deep.stdout), String::from_utf8_lossy(&deep.stderr));
    // A run after: warm, with the same output.
    answer(dbirun().spawn().unwrap(), b"ready\nx\n");
}

// ---------------------------------------------------------------------------
// 7. Clients: the same output cold and warm.

/// `dbirun OPTIONS -- program args` in `opts`'s cwd and environment, with
/// address randomisation on (the default) or off (then traces of absolute
/// addresses compare as they are).
fn run_client(options: &[&str], program: &Path, args: &[&str], opts: &RunOpts, aslr: bool) -> Observed {
    let mut cmd = Command::new(dbirun_path());
    cmd.args(options).arg("--").arg(program).args(args);
    opts.apply(&mut cmd).unwrap();
    if !aslr {
        // SAFETY: personality is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                libc::personality(ADDR_NO_RANDOMIZE);
                Ok(())
            });
        }
    }
    try_run(&mut cmd, Duration::from_secs(60)).unwrap_or_else(|f| panic!("dbirun {}: {f}", options.join(" ")))
}

/// A client's output files in `dir`, by name with every all-digit part (pid,
/// tid) replaced by `N`.
fn client_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for f in all_files(dir) {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let norm: Vec<&str> = name
            .split('.')
            .map(|p| if !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()) { "N" } else { p })
            .collect();
        let key = norm.join(".");
        assert!(!out.contains_key(&key), "two client files named {key} in {}", dir.display());
        out.insert(key, std::fs::read(&f).unwrap());
    }
    out
}

/// The modules of a run (from its `-v` lines): (base, end, name), where the
/// end is the base plus the file's size (code and data lie below it;
/// `[vdso]` gets two pages).
fn module_ranges(stderr: &[u8]) -> Vec<(u64, u64, String)> {
    log(stderr)
        .into_iter()
        .filter_map(|l| match l {
            Log::Module { path, base } => {
                let size =
                    if path.starts_with('/') { std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0) } else { 0x2000 };
                Some((base, base + size, path))
            }
            _ => None,
        })
        .collect()
}

/// `0x<addr>` as `<module>+0x<offset>` if it lies in one of `modules`, else
/// `<anon>` (stack, heap, other mappings: they move under ASLR).
fn symbolic(addr: &str, modules: &[(u64, u64, String)]) -> String {
    let Ok(a) = u64::from_str_radix(addr.trim_start_matches("0x"), 16) else { return addr.to_owned() };
    match modules.iter().find(|(lo, hi, _)| (*lo..*hi).contains(&a)) {
        Some((lo, _, name)) => format!("{name}+{:#x}", a - lo),
        None => "<anon>".to_owned(),
    }
}

/// instrace (`0x<pc>,<opcode>`) and memtrace (`0x<pc>,0x<addr>,<size>,<rw>`)
/// lines with their addresses made module-relative ([`symbolic`]).
fn symbolic_trace(bytes: &[u8], modules: &[(u64, u64, String)]) -> Vec<u8> {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let fields: Vec<String> =
            line.split(',').map(|f| if f.starts_with("0x") { symbolic(f, modules) } else { f.to_owned() }).collect();
        out.push_str(&fields.join(","));
        out.push('\n');
    }
    out.into_bytes()
}

/// A drcov file's module paths and its BB table as (module path, offset,
/// size): what stays the same when modules move.
fn drcov_blocks(bytes: &[u8]) -> (BTreeSet<String>, BTreeSet<(String, u32, u16)>) {
    let header_end = bytes
        .windows(b"BB Table: ".len())
        .position(|w| w == b"BB Table: ")
        .unwrap_or_else(|| panic!("no BB table in the drcov file"));
    let line_end = header_end + bytes[header_end..].iter().position(|&c| c == b'\n').expect("the BB table line");
    let text = String::from_utf8_lossy(&bytes[..line_end]).into_owned();
    let mut modules = Vec::new();
    let mut in_table = false;
    for l in text.lines() {
        if l.starts_with("Columns:") {
            in_table = true;
            continue;
        }
        if l.starts_with("BB Table") {
            break;
        }
        if in_table {
            let cols: Vec<&str> = l.splitn(7, ", ").map(str::trim).collect();
            assert_eq!(cols.len(), 7, "module line {l:?}");
            modules.push(cols[6].to_owned());
        }
    }
    let blocks = bytes[line_end + 1..]
        .chunks_exact(8)
        .map(|e| {
            let start = u32::from_le_bytes(e[0..4].try_into().unwrap());
            let size = u16::from_le_bytes(e[4..6].try_into().unwrap());
            let id = u16::from_le_bytes(e[6..8].try_into().unwrap()) as usize;
            (modules.get(id).cloned().unwrap_or_else(|| format!("<module {id}?>")), start, size)
        })
        .collect();
    (modules.into_iter().collect(), blocks)
}

/// A client's block data in a file: what records execution (drcov's flag,
/// bbcount's counter) is zeroed, what it noted about the block (the
/// block's size, its instruction count) is kept, so a warm run writes no
/// page of it at load. Data of clients that say it is plain (counts,
/// flags) leaves the exit slots to be rebased as code jumps through them
/// (slot pages rebased); opcodes' (mnemonics: any bits) has them rebased
/// at load. Cold and warm runs report the same (`check_client`).
#[test]
fn files_hold_client_run_state_zeroed_and_plain_data_loads_lazily() {
    let exe = program();
    // (client, run state bytes, where what it noted lies, lazily rebased)
    for (client, run_state, kept, lazy) in [("drcov", 1, 2..4, true), ("bbcount", 8, 16..24, true), ("opcodes", 8, 16..18, false)] {
        let cache = temp_dir("persist-run-state");
        let logs = temp_dir("persist-run-state-logs");
        let options = ["-persist", "-no_persist_server", "-persist_dir", cache.path().to_str().unwrap(), "-stats", "-logdir", logs.path().to_str().unwrap(), "-c", client];
        let cold = run_client(&options, &exe, &["3"], &RunOpts::new(), true);
        assert_eq!(cold.status, dbi_tests::run::Status::Code(0), "-c {client}: {}", stderr_excerpt(&cold));
        let file = Aligned::read(&dpc_of(cache.path(), PROGRAM));
        let v = file.validate().unwrap_or_else(|r| panic!("{}", r.name()));
        let mut blocks_with_data = 0;
        for b in v.index.blocks.iter() {
            let first = b.first_data.to_native() as usize;
            for d in &v.index.block_data[first..first + b.data_count.to_native() as usize] {
                let w = v.zone_bytes(v.index.segments[b.segment.to_native() as usize].w_zone.to_native() as usize);
                let data = &w[d.w_offset.to_native() as usize..];
                assert!(data[..run_state].iter().all(|&x| x == 0), "-c {client}: run state kept in the file at {:#x}", b.module_offset.to_native());
                assert!(data[kept.clone()].iter().any(|&x| x != 0), "-c {client}: what the client noted is gone at {:#x}", b.module_offset.to_native());
                blocks_with_data += 1;
            }
        }
        assert!(blocks_with_data > 50, "-c {client}: {blocks_with_data} blocks with data");
        let warm = run_client(&options, &exe, &["3"], &RunOpts::new(), true);
        assert_eq!(warm.status, dbi_tests::run::Status::Code(0), "-c {client}: {}", stderr_excerpt(&warm));
        let warm_stats = stats(&warm.stderr);
        assert!(total(&warm_stats, "blocks loaded") > 0, "-c {client}: a warm run");
        let rebased = total(&warm_stats, "slot pages rebased");
        assert_eq!(rebased > 0, lazy, "-c {client}: {rebased} slot pages rebased as code ran");
    }
}

/// `client` cold then warm: the app behaves natively, the warm run uses the
/// program's file, and the client's files are the same. With ASLR on (the
/// default) modules move between the runs: instrace and memtrace addresses
/// are compared module-relative, drcov as its modules and (module, offset,
/// size) blocks; with ASLR off every file must be the same byte for byte
/// (drcov's blocks still as a set).
fn check_client_cold_warm(client: &str, aslr: bool) {
    check_client(client, aslr, Warming::ByRun);
}

/// How the second run's cache was filled.
#[derive(Clone, Copy, PartialEq)]
enum Warming {
    /// By the cold run itself.
    ByRun,
    /// Ahead of time (`-aot`, with the client) into an empty directory.
    AheadOfTime,
}

fn check_client(client: &str, aslr: bool, warming: Warming) {
    let exe = program();
    let caches = [temp_dir("persist-client"), temp_dir("persist-client-aot")];
    let logs = [temp_dir("persist-client-cold"), temp_dir("persist-client-warm")];
    let native = native(&exe, &["3"], &RunOpts::new());
    if warming == Warming::AheadOfTime {
        let aot_logs = temp_dir("persist-client-aot-logs");
        let options = [
            "-persist",
            "-no_persist_server",
            "-persist_dir",
            caches[1].path().to_str().unwrap(),
            "-aot",
            "-logdir",
            aot_logs.path().to_str().unwrap(),
            "-c",
            client,
        ];
        let o = run_client(&options, &exe, &["3"], &RunOpts::new(), aslr);
        assert_eq!(o.status, dbi_tests::run::Status::Code(0), "-aot -c {client}: {}", stderr_excerpt(&o));
        assert!(o.stdout.is_empty(), "-aot -c {client}: the program did not run");
        assert!(client_files(aot_logs.path()).is_empty(), "-aot -c {client} wrote no client output");
    }
    let mut outputs = Vec::new();
    let mut runs = Vec::new();
    for (k, (logs, what)) in logs.iter().zip(["cold", "warm"]).enumerate() {
        let cache = if k == 1 && warming == Warming::AheadOfTime { &caches[1] } else { &caches[0] };
        let options = [
            "-persist",
            "-persist_dir",
            cache.path().to_str().unwrap(),
            "-v",
            "-logdir",
            logs.path().to_str().unwrap(),
            "-c",
            client,
        ];
        let o = run_client(&options, &exe, &["3"], &RunOpts::new(), aslr);
        assert_app_same(&format!("persist_paths 3 with -c {client} ({what})"), &native, &o);
        outputs.push(client_files(logs.path()));
        runs.push(o);
    }
    let warm_log = log(&runs[1].stderr);
    assert!(
        !used(&warm_log, PROGRAM).is_empty(),
        "-c {client}: the warm run did not use the program's cache file (not used: {:?}; the cold run wrote {} files)",
        not_used(&warm_log, PROGRAM),
        log(&runs[0].stderr).iter().filter(|l| matches!(l, Log::Wrote { .. })).count()
    );
    let (cold, warm) = (&outputs[0], &outputs[1]);
    assert_eq!(
        cold.keys().collect::<Vec<_>>(),
        warm.keys().collect::<Vec<_>>(),
        "-c {client}: the output files cold and warm"
    );
    let modules = [module_ranges(&runs[0].stderr), module_ranges(&runs[1].stderr)];
    for (name, c) in cold {
        let w = &warm[name];
        if client == "drcov" {
            let (cm, cb) = drcov_blocks(c);
            let (wm, wb) = drcov_blocks(w);
            assert_eq!(cm, wm, "-c drcov: the module tables list other paths cold and warm");
            let (only_cold, only_warm): (Vec<_>, Vec<_>) = (cb.difference(&wb).collect(), wb.difference(&cb).collect());
            assert!(
                only_cold.is_empty() && only_warm.is_empty(),
                "-c drcov: {} blocks cold, {} warm; {} only cold (first: {:?}), {} only warm (first: {:?})",
                cb.len(),
                wb.len(),
                only_cold.len(),
                only_cold.iter().take(5).collect::<Vec<_>>(),
                only_warm.len(),
                only_warm.iter().take(5).collect::<Vec<_>>()
            );
            continue;
        }
        let (c, w) = if aslr && matches!(client, "instrace" | "memtrace") {
            (symbolic_trace(c, &modules[0]), symbolic_trace(w, &modules[1]))
        } else {
            (c.clone(), w.clone())
        };
        if c != w {
            panic!(
                "-c {client}: {name} differs cold and warm{}\n  {}",
                if aslr { " (addresses module-relative)" } else { "" },
                dbi_tests::run::describe_diff(name, &c, &w)
                    .replace("native:     ", "cold:       ")
                    .replace("translated: ", "warm:       ")
                    .replace("native", "cold")
                    .replace("translated", "warm")
            );
        }
    }
    // The app's own stderr is the same too (the runtime's lines aside).
    assert_eq!(app_stderr(&runs[0].stderr), app_stderr(&runs[1].stderr), "-c {client}: app stderr cold vs warm");
}

#[test]
fn client_null_cold_warm() {
    check_client_cold_warm("null", true);
}

#[test]
fn client_inscount_cold_warm() {
    check_client_cold_warm("inscount", true);
}

#[test]
fn client_bbcount_cold_warm() {
    check_client_cold_warm("bbcount", true);
}

#[test]
fn client_opcodes_cold_warm() {
    check_client_cold_warm("opcodes", true);
}

#[test]
fn client_drcov_cold_warm() {
    check_client_cold_warm("drcov", true);
}

/// Fails for now: the warm run's trace has the cold run's pcs (the persisted
/// code records absolute app pcs), which are wrong once modules move.
#[test]
fn client_instrace_cold_warm() {
    check_client_cold_warm("instrace", true);
}

/// Fails for now like instrace: the pcs are the cold run's.
#[test]
fn client_memtrace_cold_warm() {
    check_client_cold_warm("memtrace", true);
}

/// Without ASLR nothing moves: every client file byte for byte.
#[test]
fn client_instrace_cold_warm_no_aslr() {
    check_client_cold_warm("instrace", false);
}

#[test]
fn client_memtrace_cold_warm_no_aslr() {
    check_client_cold_warm("memtrace", false);
}

#[test]
fn client_inscount_cold_warm_no_aslr() {
    check_client_cold_warm("inscount", false);
}

// Ahead of time with the client, then the first run: the client's output
// is the cold run's (it records execution, never translation).

#[test]
fn client_null_cold_aot() {
    check_client("null", true, Warming::AheadOfTime);
}

#[test]
fn client_inscount_cold_aot() {
    check_client("inscount", true, Warming::AheadOfTime);
}

#[test]
fn client_bbcount_cold_aot() {
    check_client("bbcount", true, Warming::AheadOfTime);
}

#[test]
fn client_opcodes_cold_aot() {
    check_client("opcodes", true, Warming::AheadOfTime);
}

#[test]
fn client_drcov_cold_aot() {
    check_client("drcov", true, Warming::AheadOfTime);
}

#[test]
fn client_instrace_cold_aot() {
    check_client("instrace", true, Warming::AheadOfTime);
}

#[test]
fn client_memtrace_cold_aot() {
    check_client("memtrace", true, Warming::AheadOfTime);
}
