//! Counters for `-stats`, printed to stderr at exit.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

pub(crate) struct Stats {
    pub(crate) blocks_built: AtomicU64,
    pub(crate) cache_bytes: AtomicU64,
    pub(crate) dispatches: AtomicU64,
    pub(crate) ibl_misses: AtomicU64,
    pub(crate) links: AtomicU64,
    /// Calls built in the predicted-return form (`translate/returns.rs`).
    pub(crate) predicted_calls: AtomicU64,
    pub(crate) fragments_flushed: AtomicU64,
    /// Records of flushed blocks and traces freed once no thread could be
    /// running them (`quiescence.rs`).
    pub(crate) retired_freed: AtomicU64,
    pub(crate) traces_built: AtomicU64,
    /// Blocks the traces built hold, together.
    pub(crate) trace_blocks: AtomicU64,
    pub(crate) traces_stale: AtomicU64,
    /// Traces entered from loaded files.
    pub(crate) traces_loaded: AtomicU64,
    /// Loaded traces the trace table took in (their heads met).
    pub(crate) traces_adopted: AtomicU64,
    /// Blocks whose entries the monitor started counting (loops' starts).
    pub(crate) heads_counted: AtomicU64,
    pub(crate) syscalls: AtomicU64,
    pub(crate) ibl_lookups_of_exited_threads: AtomicU64,
    /// Time stamp counter ticks spent translating (rdtsc is far cheaper
    /// than clock_gettime twice per block); converted with the rate
    /// measured between start-up and the report.
    pub(crate) translate_ticks: AtomicU64,
    /// Blocks of the cache files taken into use.
    pub(crate) blocks_loaded: AtomicU64,
    /// Of those, the ones the dispatcher registered as fragments.
    pub(crate) blocks_registered: AtomicU64,
    /// Of those, the ones entered in the lookup table at load.
    pub(crate) lookup_targets_loaded: AtomicU64,
    /// Indirect branch targets the lookup's miss routine found in a loaded
    /// file's block table (without the dispatcher), entered in the lookup
    /// table afterwards.
    pub(crate) file_lookups: AtomicU64,
    /// Pages of loaded files' exit slots rebased when a jump through one
    /// first faulted (`persistence/slot_faults.rs`).
    pub(crate) slot_pages_rebased: AtomicU64,
    /// The same two for blocks translated ahead of time (`-aot`).
    pub(crate) aot_blocks_loaded: AtomicU64,
    pub(crate) aot_blocks_registered: AtomicU64,
    pub(crate) files_loaded: AtomicU64,
    /// Module files whose bytes were hashed (a file's key names them).
    pub(crate) modules_hashed: AtomicU64,
    pub(crate) bytes_mapped: AtomicU64,
    pub(crate) load_ticks: AtomicU64,
    pub(crate) files_written: AtomicU64,
    pub(crate) blocks_persisted: AtomicU64,
    pub(crate) persist_ticks: AtomicU64,
    start_ns: AtomicU64,
    start_ticks: AtomicU64,
}

pub(crate) static STATS: Stats = Stats {
    blocks_built: AtomicU64::new(0),
    cache_bytes: AtomicU64::new(0),
    dispatches: AtomicU64::new(0),
    ibl_misses: AtomicU64::new(0),
    links: AtomicU64::new(0),
    predicted_calls: AtomicU64::new(0),
    fragments_flushed: AtomicU64::new(0),
    retired_freed: AtomicU64::new(0),
    traces_built: AtomicU64::new(0),
    trace_blocks: AtomicU64::new(0),
    traces_stale: AtomicU64::new(0),
    traces_loaded: AtomicU64::new(0),
    traces_adopted: AtomicU64::new(0),
    heads_counted: AtomicU64::new(0),
    syscalls: AtomicU64::new(0),
    ibl_lookups_of_exited_threads: AtomicU64::new(0),
    translate_ticks: AtomicU64::new(0),
    blocks_loaded: AtomicU64::new(0),
    blocks_registered: AtomicU64::new(0),
    lookup_targets_loaded: AtomicU64::new(0),
    file_lookups: AtomicU64::new(0),
    slot_pages_rebased: AtomicU64::new(0),
    aot_blocks_loaded: AtomicU64::new(0),
    aot_blocks_registered: AtomicU64::new(0),
    files_loaded: AtomicU64::new(0),
    modules_hashed: AtomicU64::new(0),
    bytes_mapped: AtomicU64::new(0),
    load_ticks: AtomicU64::new(0),
    files_written: AtomicU64::new(0),
    blocks_persisted: AtomicU64::new(0),
    persist_ticks: AtomicU64::new(0),
    start_ns: AtomicU64::new(0),
    start_ticks: AtomicU64::new(0),
};

pub(crate) fn ticks() -> u64 {
    // SAFETY: rdtsc has no preconditions.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// [`ticks`] for a time only `-stats` shows, else 0: a block built
/// reads the clock twice, about 1.5% of a cold run.
pub(crate) fn ticks_for_stats() -> u64 {
    if crate::options::get().stats { ticks() } else { 0 }
}

/// Records the reference point for converting ticks to time.
pub(crate) fn start_clock() {
    STATS.start_ns.store(crate::os::sys::now_ns(), Relaxed);
    STATS.start_ticks.store(ticks(), Relaxed);
}

fn ticks_to_ns(t: u64) -> u64 {
    let ns = crate::os::sys::now_ns().saturating_sub(STATS.start_ns.load(Relaxed));
    let elapsed = ticks().saturating_sub(STATS.start_ticks.load(Relaxed));
    if elapsed == 0 { 0 } else { (t as u128 * ns as u128 / elapsed as u128) as u64 }
}

/// Persisted files not used, by reason.
pub(crate) static REJECTED: spin::Mutex<alloc::vec::Vec<(&'static str, u64)>> = spin::Mutex::new(alloc::vec::Vec::new());

pub(crate) fn note_rejected(reason: &'static str) {
    let mut r = REJECTED.lock();
    match r.iter_mut().find(|(n, _)| *n == reason) {
        Some((_, c)) => *c += 1,
        None => r.push((reason, 1)),
    }
}

/// A forked child starts its own counts (its report is its own).
pub(crate) fn reset_in_child() {
    let s = &STATS;
    for c in [
        &s.blocks_built, &s.cache_bytes, &s.dispatches, &s.ibl_misses, &s.links, &s.predicted_calls, &s.fragments_flushed, &s.retired_freed,
        &s.traces_built, &s.trace_blocks, &s.traces_stale, &s.traces_loaded, &s.traces_adopted, &s.heads_counted,
        &s.syscalls, &s.ibl_lookups_of_exited_threads, &s.translate_ticks, &s.blocks_loaded, &s.blocks_registered,
        &s.lookup_targets_loaded, &s.file_lookups, &s.slot_pages_rebased, &s.aot_blocks_loaded, &s.aot_blocks_registered, &s.files_loaded, &s.modules_hashed,
        &s.bytes_mapped, &s.load_ticks, &s.files_written, &s.blocks_persisted, &s.persist_ticks,
    ] {
        c.store(0, Relaxed);
    }
    REJECTED.lock().clear();
}

/// Files not used, all reasons together.
pub(crate) fn rejected_total() -> u64 {
    REJECTED.lock().iter().map(|(_, c)| c).sum()
}

fn ms(ns: u64) -> impl core::fmt::Display {
    struct Ms(u64);
    impl core::fmt::Display for Ms {
        fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
            write!(f, "{}.{:03} ms", self.0 / 1_000_000, (self.0 / 1000) % 1000)
        }
    }
    Ms(ns)
}

/// Adds `n` to `counter`: a locked add only when other threads may add
/// too (a cold run counts several things per block it builds).
pub(crate) fn add(counter: &AtomicU64, n: u64) {
    if crate::thread::alone() {
        counter.store(counter.load(Relaxed).wrapping_add(n), Relaxed);
    } else {
        counter.fetch_add(n, Relaxed);
    }
}

/// This image's counters, keyed as `persist::run_report::STATS_FIELDS`
/// (the persistence ones only with `-persist`). `ibl_lookups` comes from
/// the thread contexts, where the lookup routine counts without a lock.
pub(crate) fn snapshot(ibl_lookups: u64) -> Vec<(&'static str, u64)> {
    let s = &STATS;
    let mut v = alloc::vec![
        ("blocks_built", s.blocks_built.load(Relaxed)),
        ("code_cache_bytes", s.cache_bytes.load(Relaxed)),
        ("runtime_heap_peak_bytes", crate::os::heap::peak_bytes()),
        ("dispatcher_entries", s.dispatches.load(Relaxed)),
        ("indirect_lookups", ibl_lookups + s.ibl_lookups_of_exited_threads.load(Relaxed)),
        ("indirect_lookup_misses", s.ibl_misses.load(Relaxed)),
        ("links_made", s.links.load(Relaxed)),
        ("predicted_calls", s.predicted_calls.load(Relaxed)),
        ("blocks_flushed", s.fragments_flushed.load(Relaxed)),
        ("retired_freed", s.retired_freed.load(Relaxed)),
        ("system_calls", s.syscalls.load(Relaxed)),
        ("translation_ns", ticks_to_ns(s.translate_ticks.load(Relaxed))),
    ];
    if crate::options::get().traces {
        v.extend([
            ("traces_built", s.traces_built.load(Relaxed)),
            ("trace_blocks", s.trace_blocks.load(Relaxed)),
            ("traces_stale", s.traces_stale.load(Relaxed)),
            ("traces_loaded", s.traces_loaded.load(Relaxed)),
            ("traces_adopted", s.traces_adopted.load(Relaxed)),
            ("heads_counted", s.heads_counted.load(Relaxed)),
        ]);
    }
    if crate::options::get().persist {
        v.extend([
            ("blocks_loaded", s.blocks_loaded.load(Relaxed)),
            ("blocks_registered", s.blocks_registered.load(Relaxed)),
            ("lookup_targets_loaded", s.lookup_targets_loaded.load(Relaxed)),
            ("file_lookups", s.file_lookups.load(Relaxed)),
            ("slot_pages_rebased", s.slot_pages_rebased.load(Relaxed)),
            ("aot_blocks_loaded", s.aot_blocks_loaded.load(Relaxed)),
            ("aot_blocks_registered", s.aot_blocks_registered.load(Relaxed)),
            ("cache_files_loaded", s.files_loaded.load(Relaxed)),
            ("cache_files_rejected", rejected_total()),
            ("modules_hashed", s.modules_hashed.load(Relaxed)),
            ("cache_bytes_mapped", s.bytes_mapped.load(Relaxed)),
            ("load_ns", ticks_to_ns(s.load_ticks.load(Relaxed))),
            ("cache_files_written", s.files_written.load(Relaxed)),
            ("blocks_persisted", s.blocks_persisted.load(Relaxed)),
            ("persist_ns", ticks_to_ns(s.persist_ticks.load(Relaxed))),
        ]);
    }
    v
}

/// Cache files not used, by reason.
pub(crate) fn rejected() -> Vec<(&'static str, u64)> {
    REJECTED.lock().clone()
}

/// Prints `values` as a `dbirun stats:` block to stderr: for a runtime
/// started without dbirun's run report (dbirun sums the processes' lines
/// and prints one summary itself).
pub(crate) fn print(values: &[(&'static str, u64)]) {
    crate::log::print(format_args!("dbirun stats:\n"));
    for (key, value) in values {
        let label = persist::run_report::STATS_FIELDS.iter().find(|(k, _)| k == key).map_or(*key, |(_, l)| *l);
        if key.ends_with("_ns") {
            crate::log::print(format_args!("  {:<25}{}\n", format_args!("{label}:"), ms(*value)));
        } else {
            crate::log::print(format_args!("  {:<25}{value}\n", format_args!("{label}:")));
        }
        if *key == "cache_files_rejected" {
            for (reason, count) in REJECTED.lock().iter() {
                crate::log::print(format_args!("    {reason}: {count}\n"));
            }
        }
    }
}
