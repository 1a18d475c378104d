//! Traces (`-traces`, issue 16): hot paths of blocks joined into one
//! fragment keep every transparency guarantee the blocks give. Programs
//! with hot loops through faults, signals, self-modifying code, threads,
//! calls, returns, jump tables and exceptions behave exactly as natively
//! with traces built; and traces are really built from them.

use dbi_tests::corpus::{check_program_with, program};
use dbi_tests::persist::{dpc_files, dpc_of, stub_exit_data, Aligned};
use persist::index::{ArchivedExitEntry, ArchivedSegment, ArchivedTraceEntry};
use dbi_tests::{compiled, run_dbirun, run_native, temp_dir, Build, Opt, RunOpts, Status, Variant};

/// Tests that run corpus programs with `-traces`, compared with native runs.
macro_rules! in_traces {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                check_program_with(stringify!($name), &["-traces"]);
            }
        )*
    };
}

in_traces!(
    trace_paths,
    loops_recursion,
    func_pointers,
    tail_calls,
    return_address,
    setjmp_longjmp,
    qsort_callback,
    cxx_exceptions,
    sig_ucontext_rip,
    sig_segv_longjmp,
    sig_alarm_loop,
    sig_nested,
    xmc_spin,
    jit,
    pthreads_sync,
    many_threads,
);

/// `name: N` from a `-stats` summary.
fn stat(stderr: &str, label: &str) -> u64 {
    stderr
        .lines()
        .find_map(|l| l.trim_start().strip_prefix(label)?.strip_prefix(':')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no '{label}' in\n{stderr}"))
}

/// Each mode of `trace_paths` builds traces that hold more than one block
/// (a check that cannot pass if the monitor never records or stitches),
/// and a trace whose recorded targets stop being taken is recorded afresh.
#[test]
fn hot_loops_become_traces_of_several_blocks() {
    let exe = compiled(&program("trace_paths").source_path(), Build::new(Variant::Pie, Opt::O2)).unwrap_or_else(|e| panic!("{e}"));
    for args in [["calls", "20000"], ["fault", "20000"], ["signal", "20"], ["smc", "3000"]] {
        let o = run_dbirun(&["-traces", "-stats"], &exe, &args, &RunOpts::new()).unwrap_or_else(|f| panic!("{f}"));
        assert_eq!(o.status, Status::Code(0), "{args:?}");
        let stderr = String::from_utf8_lossy(&o.stderr);
        let (traces, blocks) = (stat(&stderr, "traces built"), stat(&stderr, "blocks in traces"));
        assert!(traces > 0 && blocks > traces, "{args:?}: {traces} traces of {blocks} blocks\n{stderr}");
        if args[0] == "calls" {
            // Its table's target changes every 64 rounds: the trace through
            // it misses, and is recorded afresh.
            assert!(stat(&stderr, "traces recorded afresh") > 0, "{stderr}");
        }
    }
    // Traces are the default (no option from the environment either);
    // with -no_traces none is built or counted.
    let plain = RunOpts::new().env("DBIRUN_OPTIONS", "");
    let o = run_dbirun(&["-stats"], &exe, &["calls", "20000"], &plain).unwrap_or_else(|f| panic!("{f}"));
    assert!(stat(&String::from_utf8_lossy(&o.stderr), "traces built") > 0);
    let o = run_dbirun(&["-stats", "-no_traces"], &exe, &["calls", "20000"], &plain).unwrap_or_else(|f| panic!("{f}"));
    assert!(!String::from_utf8_lossy(&o.stderr).contains("traces built"));
}

/// A warm run's loops are in its loaded cache files, whose blocks link to
/// each other without the dispatcher: their backward exits still make
/// heads, and the traces built from them behave as natively.
#[test]
fn warm_runs_build_traces_through_loaded_files() {
    let exe = compiled(&program("trace_paths").source_path(), Build::new(Variant::Pie, Opt::O2)).unwrap_or_else(|e| panic!("{e}"));
    let cache = temp_dir("traces-warm");
    let dir = cache.path().to_str().unwrap();
    let args = ["calls", "20000"];
    let native = run_native(&exe, &args, &RunOpts::new()).unwrap_or_else(|f| panic!("{f}"));
    // Files for runs with traces that hold none, and know no head as
    // cold: translated ahead of time (-stats as below: it is part of the
    // files' key).
    let aot = run_dbirun(&["-persist", "-persist_dir", dir, "-no_persist_server", "-stats", "-aot"], &exe, &args, &RunOpts::new())
        .unwrap_or_else(|f| panic!("{f}"));
    assert_eq!(aot.status, Status::Code(0), "{}", String::from_utf8_lossy(&aot.stderr));
    let opts = ["-persist", "-persist_dir", dir, "-no_persist_server", "-traces", "-stats"];
    let warm = run_dbirun(&opts, &exe, &args, &RunOpts::new()).unwrap_or_else(|f| panic!("{f}"));
    assert_eq!((warm.status, &warm.stdout), (native.status, &native.stdout));
    let stderr = String::from_utf8_lossy(&warm.stderr);
    assert!(stat(&stderr, "blocks loaded") > 10 * stat(&stderr, "blocks built").max(1), "a warm run\n{stderr}");
    assert!(stat(&stderr, "traces built") > 0, "{stderr}");
}

/// A cold run under -persist builds its blocks into persistable segments,
/// whose exit stubs lie apart from the code: the dispatcher still tells
/// the backward exits of those blocks (by their branches) and makes heads.
#[test]
fn persistable_blocks_become_traces_in_a_cold_run() {
    let exe = compiled(&program("trace_paths").source_path(), Build::new(Variant::Pie, Opt::O2)).unwrap_or_else(|e| panic!("{e}"));
    let cache = temp_dir("traces-cold");
    let args = ["calls", "20000"];
    let native = run_native(&exe, &args, &RunOpts::new()).unwrap_or_else(|f| panic!("{f}"));
    let opts = ["-persist", "-persist_dir", cache.path().to_str().unwrap(), "-no_persist_server", "-traces", "-stats"];
    let cold = run_dbirun(&opts, &exe, &args, &RunOpts::new()).unwrap_or_else(|f| panic!("{f}"));
    assert_eq!((cold.status, &cold.stdout), (native.status, &native.stdout));
    let stderr = String::from_utf8_lossy(&cold.stderr);
    assert!(stat(&stderr, "blocks persisted") > 0, "{stderr}");
    assert!(stat(&stderr, "blocks in traces") > stat(&stderr, "traces built") && stat(&stderr, "traces built") > 0, "{stderr}");
}

/// Traces persist like blocks: a cold `-persist -traces` run writes the
/// traces of its own module's hot loops into the module's file, and a
/// warm run enters them from there instead of recording and building
/// them again. In the loaded traces, faults are translated to the same
/// pc and registers and signals are delivered as natively (each mode's
/// output says so), with exit slots rebased as they are first jumped
/// through, and the file's heads that never got hot are not counted
/// again.
#[test]
fn traces_persist_and_warm_runs_enter_them() {
    let exe = compiled(&program("trace_paths").source_path(), Build::new(Variant::Pie, Opt::O2)).unwrap_or_else(|e| panic!("{e}"));
    for args in [["calls", "20000"], ["fault", "20000"], ["signal", "20"]] {
        let cache = temp_dir("traces-persisted");
        let opts = ["-persist", "-persist_dir", cache.path().to_str().unwrap(), "-no_persist_server", "-traces", "-stats"];
        let native = run_native(&exe, &args, &RunOpts::new()).unwrap_or_else(|f| panic!("{f}"));
        let cold = run_dbirun(&opts, &exe, &args, &RunOpts::new()).unwrap_or_else(|f| panic!("{f}"));
        assert_eq!((cold.status, &cold.stdout), (native.status, &native.stdout), "{args:?} cold");
        let cold_err = String::from_utf8_lossy(&cold.stderr);
        let built = stat(&cold_err, "traces built");
        assert!(built > 0, "{args:?}\n{cold_err}");
        assert!(persisted_trace_exits_count_their_targets(cache.path(), &exe) > 0, "{args:?}: no trace exits in the file");
        let to_trampolines = persisted_side_exits_leave_the_way_on_free(cache.path(), &exe);
        assert!(args[0] != "calls" || to_trampolines > 0, "{args:?}: no trace side exit to a trampoline in the file");
        let warm = run_dbirun(&opts, &exe, &args, &RunOpts::new()).unwrap_or_else(|f| panic!("{f}"));
        assert_eq!((warm.status, &warm.stdout), (native.status, &native.stdout), "{args:?} warm");
        let warm_err = String::from_utf8_lossy(&warm.stderr);
        assert!(stat(&warm_err, "traces loaded") > 0, "{args:?}\n{warm_err}");
        // A file with traces (but no client data) leaves its exit slots
        // to be rebased when first jumped through, as one without does.
        assert!(stat(&warm_err, "slot pages rebased") > 0, "{args:?}: slots rebased at load\n{warm_err}");
        // The warm run builds only what the cold one did not persist, and
        // what it found stale: a file's trace counts its misses in the
        // runs that load it, as a new one does ("calls" changes its
        // table's target every 64 rounds).
        assert!(stat(&warm_err, "traces built") < built, "{args:?}: cold built {built}\n{warm_err}");
        if args[0] == "calls" {
            assert!(stat(&warm_err, "traces recorded afresh") > 0, "{args:?}: the file's trace never went stale\n{warm_err}");
        }
        // What the warm run recorded afresh replaced the file's trace, and
        // a trace it found stale and recorded nothing in place of is kept:
        // either way for good, so the next run records nothing again.
        let again = run_dbirun(&opts, &exe, &args, &RunOpts::new()).unwrap_or_else(|f| panic!("{f}"));
        assert_eq!((again.status, &again.stdout), (native.status, &native.stdout), "{args:?} warm again");
        let again_err = String::from_utf8_lossy(&again.stderr);
        assert_eq!(stat(&again_err, "traces recorded afresh"), 0, "{args:?}\n{again_err}");
        // Each system call passes the dispatcher, loops or not.
        let dispatches = |err: &str| stat(err, "dispatcher entries") - stat(err, "system calls");
        assert!(
            dispatches(&again_err) * 4 < dispatches(&cold_err),
            "{args:?}: the warm run's loops are not counted again\ncold:\n{cold_err}\nwarm:\n{again_err}"
        );
    }
}

/// In a file for runs with traces, an exit to a trace's head and an exit
/// that counts its target are never written straight to a block (a
/// `jmp`/`jcc rel32` into the code, or no-ops running on into it): their
/// slots, which a loader points at the trace or the stub, decide where
/// they go. A straight branch skipped the trace, and the count that makes
/// a loop hot (python3's loop made 4x the lookups in a cache other runs
/// had filled first).
#[test]
fn exits_to_trace_heads_and_counted_exits_go_through_their_slots() {
    let exe = compiled(&program("trace_paths").source_path(), Build::new(Variant::Pie, Opt::O2)).unwrap_or_else(|e| panic!("{e}"));
    let python = std::path::Path::new("/usr/bin/python3");
    let mut checked = (0, 0);
    // trace_paths' loops become traces; python3's start-up leaves many
    // exits counted (trace_paths' files alone hold one or none).
    let workloads: [(&std::path::Path, &[&str]); 4] =
        [(&exe, &["calls", "20000"]), (&exe, &["fault", "20000"]), (&exe, &["signal", "20"]), (python, &["-c", "pass"])];
    for (program, args) in workloads {
        let cache = temp_dir("traces-through-slots");
        let opts = ["-persist", "-persist_dir", cache.path().to_str().unwrap(), "-no_persist_server", "-traces"];
        let native = run_native(program, args, &RunOpts::new()).unwrap_or_else(|f| panic!("{f}"));
        let cold = run_dbirun(&opts, program, args, &RunOpts::new()).unwrap_or_else(|f| panic!("{f}"));
        assert_eq!((cold.status, &cold.stdout), (native.status, &native.stdout), "{args:?} cold");
        // python3 is a link: its module is the file it leads to.
        let module = std::fs::canonicalize(program).unwrap();
        let own = Aligned::read(&dpc_of(cache.path(), module.file_name().unwrap().to_str().unwrap()));
        assert!(!own.validate().unwrap_or_else(|r| panic!("{}", r.name())).index.traces.is_empty(), "{args:?}: no trace persisted");
        for path in dpc_files(cache.path()) {
            let file = Aligned::read(&path);
            let v = file.validate().unwrap_or_else(|r| panic!("{}: {}", path.display(), r.name()));
            let ix = v.index;
            for (list, n) in [(&ix.exits_to_traces, &mut checked.0), (&ix.counted_exits, &mut checked.1)] {
                for r in list.iter() {
                    let seg = &ix.segments[r.segment.to_native() as usize];
                    let x = v.zone_bytes(seg.x_zone.to_native() as usize);
                    let e = &ix.exits[r.exit.to_native() as usize];
                    let (data, d) = stub_exit_data(x, e.stub.to_native() as usize);
                    let Some((branch, _)) = d.branch_and_slot() else { continue };
                    let field = (data as i64 + branch as i64) as usize;
                    let code_len = seg.code_len.to_native() as i64;
                    let rel32_target = |at: usize| at as i64 + 4 + i32::from_le_bytes(x[at..at + 4].try_into().unwrap()) as i64;
                    // The bytes around the field (a branch may start X).
                    let at = |i: i64| x.get((field as i64 + i) as usize).copied();
                    let slot_form = (at(-1), at(0)) == (Some(0xff), Some(0x25)) || (at(-1), at(0), at(1)) == (Some(0x06), Some(0xff), Some(0x25));
                    // A conditional exit's `jcc` to its trampoline (after the code).
                    let to_trampoline = at(-2) == Some(0x0f) && at(-1).is_some_and(|b| b & 0xf0 == 0x80) && rel32_target(field) >= code_len;
                    assert!(
                        slot_form || to_trampoline,
                        "{}: the exit to {:#x} is written straight to the code: {:02x?}",
                        path.display(),
                        e.target.to_native(),
                        (-2..4).map(at).collect::<Vec<_>>()
                    );
                    *n += 1;
                }
            }
        }
    }
    assert!(checked.0 > 0 && checked.1 > 100, "exits to heads checked {}, counted exits {}", checked.0, checked.1);
}

/// Calls `visit` with each exit of each trace `exe`'s file holds: the
/// trace, its segment, the segment's X zone and the exit.
fn for_each_trace_exit(
    cache: &std::path::Path,
    exe: &std::path::Path,
    mut visit: impl FnMut(&ArchivedTraceEntry, &ArchivedSegment, &[u8], &ArchivedExitEntry),
) {
    let file = Aligned::read(&dpc_of(cache, exe.file_name().unwrap().to_str().unwrap()));
    let v = file.validate().unwrap_or_else(|r| panic!("{}", r.name()));
    let ix = v.index;
    for t in ix.traces.iter() {
        let seg = &ix.segments[t.segment.to_native() as usize];
        let x = v.zone_bytes(seg.x_zone.to_native() as usize);
        let first = t.first_exit.to_native() as usize;
        for e in &ix.exits[first..first + t.exit_count.to_native() as usize] {
            visit(t, seg, x, e);
        }
    }
}

/// The exits of the traces `exe`'s file holds, each checked to carry
/// the counting bit in its stub's exit data (leaving a trace anywhere may
/// start the next hot path: the monitor counts the target's entries).
fn persisted_trace_exits_count_their_targets(cache: &std::path::Path, exe: &std::path::Path) -> usize {
    let mut exits = 0;
    for_each_trace_exit(cache, exe, |t, _, x, e| {
        let (_, d) = stub_exit_data(x, e.stub.to_native() as usize);
        assert!(d.kind & persist::exit_data::COUNTS_TARGET != 0, "the trace at {:#x}: its exit to {:#x} is not counted", t.head, e.target);
        exits += 1;
    });
    exits
}

/// A persisted trace's conditional side exits are each a `jcc` to a slot
/// trampoline after the segment's code, so the way the trace goes on runs
/// without a taken jump (the python3 20M-squares loop ran 3% faster than
/// with a `j<not cc>` over an in-line jump through the slot, the form a
/// block's exit taken in the writing run keeps); only an exit back to the
/// trace's own head (its loop) jumps through its slot in line. Returns
/// how many side exits were checked.
fn persisted_side_exits_leave_the_way_on_free(cache: &std::path::Path, exe: &std::path::Path) -> usize {
    let mut to_trampolines = 0;
    for_each_trace_exit(cache, exe, |t, seg, x, e| {
        let (data, d) = stub_exit_data(x, e.stub.to_native() as usize);
        let Some((branch, _)) = d.branch_and_slot() else { return };
        let field = (data as i64 + branch as i64) as usize;
        // `j<not cc> +6; jmp [rip + slot]`, the rel32 field 2 bytes in.
        let in_line_through_slot = x.get(field - 1..field + 2) == Some(&[0x06, 0xff, 0x25][..]);
        let back_to_head = e.target.to_native() == t.head.to_native() as i64;
        assert!(!in_line_through_slot || back_to_head, "the trace at {:#x}: its side exit to {:#x} jumps over its slot's jump", t.head, e.target);
        if let Some((persist::exit_forms::DirectForm::Conditional { to, .. }, _)) = persist::exit_forms::direct_form(x, e.stub.to_native()) {
            if to >= seg.code_len.to_native() as i64 {
                to_trampolines += 1;
            }
        }
    });
    to_trampolines
}

/// A loop whose start a file holds as a plain block (the run that built
/// it never looped) is counted by the next run, which finds it cold and
/// marks it so in the file (`Index::marks`): the runs after count it no
/// more, and its exits are linked straight to it.
/// `trace_paths late N` under dbirun with `opts`, checked against a
/// native run: its stderr.
fn run_late(exe: &std::path::Path, opts: &[&str], n: &str) -> String {
    let args = ["late", n];
    let native = run_native(exe, &args, &RunOpts::new()).unwrap_or_else(|f| panic!("{f}"));
    let o = run_dbirun(opts, exe, &args, &RunOpts::new()).unwrap_or_else(|f| panic!("{f}"));
    assert_eq!((o.status, &o.stdout), (native.status, &native.stdout), "late {n}");
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `exe` translated ahead of time with `opts` (its files keyed as the
/// runs after: `-stats` is part of the key): dbirun's stderr.
fn translate_ahead(exe: &std::path::Path, opts: &[&str]) -> String {
    let aot = run_dbirun(&[&["-aot"], opts].concat(), exe, &[], &RunOpts::new()).unwrap_or_else(|f| panic!("{f}"));
    let stderr = String::from_utf8_lossy(&aot.stderr).into_owned();
    assert_eq!(aot.status, Status::Code(0), "{stderr}");
    stderr
}

/// Blocks flagged as cold heads in `module`'s file in `cache`.
fn cold_heads(cache: &std::path::Path, module: &str) -> usize {
    let file = Aligned::read(&dpc_of(cache, module));
    let v = file.validate().unwrap_or_else(|r| panic!("{}", r.name()));
    v.index.blocks.iter().filter(|b| b.flags.to_native() & persist::index::BlockEntry::COLD_HEAD != 0).count()
}

#[test]
fn loops_found_cold_in_a_files_blocks_are_not_counted_again() {
    let exe = compiled(&program("trace_paths").source_path(), Build::new(Variant::Pie, Opt::O0)).unwrap_or_else(|e| panic!("{e}"));
    let cache = temp_dir("traces-cold-marks");
    let opts = ["-persist", "-persist_dir", cache.path().to_str().unwrap(), "-no_persist_server", "-stats"];
    let run = |n: &str| run_late(&exe, &opts, n);
    let once = run("1");
    let module = exe.file_name().unwrap().to_str().unwrap();
    let cold_heads = || cold_heads(cache.path(), module);
    let unmarked = cold_heads();
    let looped = run("50");
    let heads = stat(&looped, "loop heads counted");
    assert!(heads > 0, "the loop's start is counted\n{looped}");
    assert!(stat(&looped, "cache files written") > 0, "its cold mark is written\n{once}\n{looped}");
    let before = cold_heads();
    assert!(before > unmarked, "the program's file marks the loop's start cold: {unmarked} -> {before}");
    let again = run("50");
    assert!(stat(&again, "loop heads counted") < heads, "the marked head is not counted again\n{looped}\n{again}");
    assert_eq!(cold_heads(), before, "nothing more to mark");
}

/// A loop of a file's blocks is counted by the counting stub the file
/// carries for its back edge, not by the dispatcher: `-aot` writes the
/// program's blocks (nothing runs, nothing is counted), and the first run,
/// whose loop goes round 5,000 times, finds its start hot in the file's
/// stub and builds its trace, with the output of a native run.
#[test]
fn a_files_loop_is_counted_by_the_files_counting_stub() {
    let exe = compiled(&program("trace_paths").source_path(), Build::new(Variant::Pie, Opt::O0)).unwrap_or_else(|e| panic!("{e}"));
    let cache = temp_dir("traces-counting-stubs");
    let opts = ["-persist", "-persist_dir", cache.path().to_str().unwrap(), "-no_persist_server", "-stats", "-v"];
    let once = translate_ahead(&exe, &opts);
    let module = exe.file_name().unwrap().to_str().unwrap();
    let file = Aligned::read(&dpc_of(cache.path(), module));
    let v = file.validate().unwrap_or_else(|r| panic!("{}", r.name()));
    assert!(!v.index.counting_stubs.is_empty(), "the program's file carries counting stubs\n{once}");
    // Each counts before it goes on to its head's block, and the counted
    // exits to the head lead to it.
    let slot_leads_to = |segment: u32, slot: u32| {
        let w = v.zone_bytes(v.index.segments[segment as usize].w_zone.to_native() as usize);
        persist::exit_slots::distance(u64::from_le_bytes(w[slot as usize..slot as usize + 8].try_into().unwrap()))
    };
    for c in v.index.counting_stubs.iter() {
        let b = v.index.blocks.iter().find(|b| b.module_offset == c.head).expect("its head is a block of the file");
        assert_eq!((b.segment, b.code_offset), (c.segment, c.goes_to));
        assert_eq!(slot_leads_to(c.segment.to_native(), c.go_slot()), Some(c.counting_code() as i64), "its go slot leads to its counting code");
    }
    let mut led = 0;
    for r in v.index.counted_exits.iter() {
        let e = &v.index.exits[r.exit.to_native() as usize];
        let Some(c) = v.index.counting_stubs.iter().find(|c| c.segment == r.segment && c.head.to_native() as i64 == e.target.to_native()) else { continue };
        assert_eq!(slot_leads_to(r.segment.to_native(), e.slot.to_native()), Some(c.code.to_native() as i64), "a counted exit's slot leads to its head's counting stub");
        led += 1;
    }
    assert!(led > 0, "counted exits lead to counting stubs");
    drop(v);
    let hot = run_late(&exe, &opts, "5000");
    let found_hot = hot.lines().filter(|l| l.contains("counted hot by its file's counting stub")).count();
    assert!(found_hot > 0, "a head found hot by a file's counting stub\n{hot}");
    assert!(stat(&hot, "traces built") > 0, "its trace is built\n{hot}");
}

/// Each mode of `trace_paths` after `-aot`: its loops are counted in the
/// program's file and their traces entered through the stubs' go slots,
/// and faults, signals sent to a spinning loop and the output are as
/// natively.
#[test]
fn loops_counted_in_files_behave_as_natively() {
    let exe = compiled(&program("trace_paths").source_path(), Build::new(Variant::Pie, Opt::O2)).unwrap_or_else(|e| panic!("{e}"));
    for args in [["calls", "20000"], ["fault", "20000"], ["signal", "20"]] {
        let cache = temp_dir("traces-counted-in-files");
        let opts = ["-persist", "-persist_dir", cache.path().to_str().unwrap(), "-no_persist_server", "-stats", "-v"];
        translate_ahead(&exe, &opts);
        let native = run_native(&exe, &args, &RunOpts::new()).unwrap_or_else(|f| panic!("{f}"));
        let o = run_dbirun(&opts, &exe, &args, &RunOpts::new().timeout(std::time::Duration::from_secs(60))).unwrap_or_else(|f| panic!("{args:?}: {f}"));
        assert_eq!((o.status, &o.stdout), (native.status, &native.stdout), "{args:?}");
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(stderr.contains("counted hot by its file's counting stub"), "{args:?}: no head found hot in a file\n{stderr}");
        assert!(stat(&stderr, "traces built") > 0, "{args:?}\n{stderr}");
    }
}

/// A loop a file's counting stub counted and never found hot is marked
/// cold in the file, as one the dispatcher counted: the run's end reads
/// the counters that moved.
#[test]
fn a_loop_a_files_counting_stub_found_cold_is_marked_cold() {
    let exe = compiled(&program("trace_paths").source_path(), Build::new(Variant::Pie, Opt::O0)).unwrap_or_else(|e| panic!("{e}"));
    let cache = temp_dir("traces-counting-stubs-cold");
    let opts = ["-persist", "-persist_dir", cache.path().to_str().unwrap(), "-no_persist_server", "-stats"];
    translate_ahead(&exe, &opts);
    let module = exe.file_name().unwrap().to_str().unwrap();
    assert_eq!(cold_heads(cache.path(), module), 0, "ahead of time, no loop is known cold");
    let stderr = run_late(&exe, &opts, "50");
    assert!(stat(&stderr, "loop heads counted") > 0, "{stderr}");
    assert!(cold_heads(cache.path(), module) > 0, "the loop's start is marked cold in the program's file\n{stderr}");
}

/// A trace whose blocks' client data (drcov's coverage flags) lies in
/// another segment than the one the trace is built in cannot reach it
/// module-relative: here a cold run's blocks fill the module's first
/// persistable segment before its loop gets hot. The trace is built in
/// the cache for that run only, and the file marks its head cold, so the
/// runs after neither count, record nor build it again (they did in
/// every run before). Coverage is the same either way.
#[test]
fn loops_whose_traces_cannot_persist_are_not_traced_again() {
    let exe = compiled(&dbi_tests::programs_dir().join("many_blocks.c"), Build::new(Variant::Pie, Opt::O0)).unwrap_or_else(|e| panic!("{e}"));
    let cache = temp_dir("traces-unpersistable");
    let args = ["100000"];
    let native = run_native(&exe, &args, &RunOpts::new()).unwrap_or_else(|f| panic!("{f}"));
    let run = || {
        let logs = temp_dir("traces-unpersistable-logs");
        let opts = ["-persist", "-persist_dir", cache.path().to_str().unwrap(), "-no_persist_server", "-stats", "-logdir", logs.path().to_str().unwrap(), "-c", "drcov"];
        let o = run_dbirun(&opts, &exe, &args, &RunOpts::new()).unwrap_or_else(|f| panic!("{f}"));
        assert_eq!((o.status, &o.stdout), (native.status, &native.stdout));
        let report = std::fs::read_dir(logs.path()).unwrap().flatten().next().expect("drcov's file").path();
        (String::from_utf8_lossy(&o.stderr).into_owned(), covered_blocks(&std::fs::read(report).unwrap()))
    };
    let (cold, cold_coverage) = run();
    assert!(stat(&cold, "traces built") > 0, "{cold}");
    for _ in 0..2 {
        let (warm, warm_coverage) = run();
        assert!(stat(&warm, "blocks loaded") > 10_000, "{warm}");
        assert_eq!(stat(&warm, "traces built"), 0, "the loop's heads are cold now\n{cold}\n{warm}");
        assert_eq!(warm_coverage, cold_coverage, "the same blocks covered");
    }
}

/// The (module id, offset, size) entries of a drcov file's BB table.
fn covered_blocks(file: &[u8]) -> Vec<[u8; 8]> {
    let marker = b"bbs\n";
    let at = file.windows(marker.len()).position(|w| w == marker).expect("a BB table") + marker.len();
    let mut entries: Vec<[u8; 8]> = file[at..].chunks_exact(8).map(|c| c.try_into().unwrap()).collect();
    entries.sort_unstable();
    entries
}

/// A signal that comes while the spinning thread is in the dispatcher (its
/// last look at pending signals done, linking or building on its way back
/// into the cache) must still be delivered: the code it enters is
/// unlinked, or a loop of linked traces would spin on with the signal
/// pending. Each run has that window only in its first dispatches (a hung
/// run was 2-3 in 100 before), so the program runs many times.
#[test]
fn signals_reach_a_thread_on_its_way_into_linked_traces() {
    let exe = compiled(&program("trace_paths").source_path(), Build::new(Variant::Static, Opt::O0)).unwrap_or_else(|e| panic!("{e}"));
    let args = ["signal", "50"];
    let native = run_native(&exe, &args, &RunOpts::new()).unwrap_or_else(|f| panic!("{f}"));
    for run in 0..30 {
        let o = run_dbirun(&["-no_native_exec", "-traces"], &exe, &args, &RunOpts::new().timeout(std::time::Duration::from_secs(20)))
            .unwrap_or_else(|f| panic!("run {run}: {f}"));
        assert_eq!((o.status, &o.stdout), (native.status, &native.stdout), "run {run}");
    }
}

/// A call of a function placed before its caller goes backward but
/// starts no loop: it makes no head (the 3,000 such calls here, each made
/// once, made 3,432 heads in all, each counted for nothing; now about
/// 330, the loops of ld.so, libc and the program), while the loop that
/// calls two functions placed before it still becomes a trace.
#[test]
fn backward_calls_make_no_heads() {
    let exe = compiled(&dbi_tests::programs_dir().join("many_blocks.c"), Build::new(Variant::Pie, Opt::O0)).unwrap_or_else(|e| panic!("{e}"));
    let args = ["5000"];
    let native = run_native(&exe, &args, &RunOpts::new()).unwrap_or_else(|f| panic!("{f}"));
    let o = run_dbirun(&["-traces", "-stats"], &exe, &args, &RunOpts::new()).unwrap_or_else(|f| panic!("{f}"));
    assert_eq!((o.status, &o.stdout), (native.status, &native.stdout));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stat(&stderr, "loop heads counted") < 1_000, "{stderr}");
    assert!(stat(&stderr, "traces built") > 0, "{stderr}");
}

/// An exit that does not count its target has a slot that would only
/// lead to its block, so where the block lies later in the same segment
/// the exit is written as a direct branch, as any forward exit is: an
/// exit to a head its run counted and found cold (no trace: later runs do
/// not count it, `BlockEntry::COLD_HEAD`), and a call of a function
/// placed before its caller (`BlockEntry::CALLS_BACKWARD`: no loop's
/// start, so never counted), here 3,000 such calls, each made once. With
/// a jump through the slot in each, a program making 6,000 such calls 100
/// times ran warm in 34 ms with traces against 20 without; then 23, when
/// those calls made cold heads.
#[test]
fn uncounted_exits_are_written_straight_to_their_targets() {
    let exe = compiled(&dbi_tests::programs_dir().join("many_blocks.c"), Build::new(Variant::Pie, Opt::O0)).unwrap_or_else(|e| panic!("{e}"));
    let cache = temp_dir("traces-cold-straight");
    let args = ["10"];
    let native = run_native(&exe, &args, &RunOpts::new()).unwrap_or_else(|f| panic!("{f}"));
    let opts = ["-persist", "-persist_dir", cache.path().to_str().unwrap(), "-no_persist_server", "-traces"];
    for run in ["cold", "warm"] {
        let o = run_dbirun(&opts, &exe, &args, &RunOpts::new()).unwrap_or_else(|f| panic!("{f}"));
        assert_eq!((o.status, &o.stdout), (native.status, &native.stdout), "{run}");
    }
    let file = Aligned::read(&dpc_of(cache.path(), exe.file_name().unwrap().to_str().unwrap()));
    let v = file.validate().unwrap_or_else(|r| panic!("{}", r.name()));
    let ix = v.index;
    let (mut straight, mut through_slot) = (0, Vec::new());
    for b in ix.blocks.iter() {
        let seg = &ix.segments[b.segment.to_native() as usize];
        let x = v.zone_bytes(seg.x_zone.to_native() as usize);
        let (first, count) = (b.first_exit.to_native() as usize, b.exit_count.to_native() as usize);
        for (i, e) in ix.exits[first..first + count].iter().enumerate() {
            let Ok(target) = u32::try_from(e.target.to_native()) else { continue };
            let Ok(t) = ix.blocks.binary_search_by_key(&target, |t| t.module_offset.to_native()) else { continue };
            let t = &ix.blocks[t];
            let cold = t.flags.to_native() & persist::index::BlockEntry::COLD_HEAD != 0;
            let call = b.flags.to_native() & persist::index::BlockEntry::CALLS_BACKWARD != 0 && i + 1 == count;
            let traced = ix.traces.iter().any(|tr| tr.head.to_native() == target);
            if !(cold || call) || traced || t.segment != b.segment || t.code_offset.to_native() <= b.code_offset.to_native() {
                continue;
            }
            match persist::exit_forms::direct_form(x, e.stub.to_native()) {
                Some(_) => straight += 1,
                None => through_slot.push(target),
            }
        }
    }
    assert!(through_slot.is_empty(), "{} uncounted exits to blocks later in their segment jump through their slots: {:#x?}", through_slot.len(), &through_slot[..through_slot.len().min(8)]);
    assert!(straight >= 1_000, "only {straight} uncounted exits checked");
}
