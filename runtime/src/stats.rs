//! Counters for `-stats`, printed to stderr at exit.

use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

pub struct Stats {
    pub blocks_built: AtomicU64,
    pub cache_bytes: AtomicU64,
    pub dispatches: AtomicU64,
    pub ibl_misses: AtomicU64,
    pub links: AtomicU64,
    pub fragments_flushed: AtomicU64,
    pub syscalls: AtomicU64,
    pub ibl_lookups_of_exited_threads: AtomicU64,
    /// Time stamp counter ticks spent translating (rdtsc is far cheaper
    /// than clock_gettime twice per block); converted with the rate
    /// measured between start-up and the report.
    pub translate_ticks: AtomicU64,
    /// Blocks of the cache files taken into use.
    pub blocks_loaded: AtomicU64,
    /// Of those, the ones the dispatcher registered as fragments.
    pub blocks_registered: AtomicU64,
    pub files_loaded: AtomicU64,
    pub bytes_mapped: AtomicU64,
    pub load_ticks: AtomicU64,
    pub files_written: AtomicU64,
    pub blocks_persisted: AtomicU64,
    pub persist_ticks: AtomicU64,
    start_ns: AtomicU64,
    start_ticks: AtomicU64,
}

pub static STATS: Stats = Stats {
    blocks_built: AtomicU64::new(0),
    cache_bytes: AtomicU64::new(0),
    dispatches: AtomicU64::new(0),
    ibl_misses: AtomicU64::new(0),
    links: AtomicU64::new(0),
    fragments_flushed: AtomicU64::new(0),
    syscalls: AtomicU64::new(0),
    ibl_lookups_of_exited_threads: AtomicU64::new(0),
    translate_ticks: AtomicU64::new(0),
    blocks_loaded: AtomicU64::new(0),
    blocks_registered: AtomicU64::new(0),
    files_loaded: AtomicU64::new(0),
    bytes_mapped: AtomicU64::new(0),
    load_ticks: AtomicU64::new(0),
    files_written: AtomicU64::new(0),
    blocks_persisted: AtomicU64::new(0),
    persist_ticks: AtomicU64::new(0),
    start_ns: AtomicU64::new(0),
    start_ticks: AtomicU64::new(0),
};

pub fn ticks() -> u64 {
    // SAFETY: rdtsc has no preconditions.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Records the reference point for converting ticks to time.
pub fn start_clock() {
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

pub fn note_rejected(reason: &'static str) {
    let mut r = REJECTED.lock();
    match r.iter_mut().find(|(n, _)| *n == reason) {
        Some((_, c)) => *c += 1,
        None => r.push((reason, 1)),
    }
}

/// A forked child starts its own counts (its report is its own).
pub fn reset_in_child() {
    let s = &STATS;
    for c in [
        &s.blocks_built, &s.cache_bytes, &s.dispatches, &s.ibl_misses, &s.links, &s.fragments_flushed,
        &s.syscalls, &s.ibl_lookups_of_exited_threads, &s.translate_ticks, &s.blocks_loaded, &s.blocks_registered, &s.files_loaded,
        &s.bytes_mapped, &s.load_ticks, &s.files_written, &s.blocks_persisted, &s.persist_ticks,
    ] {
        c.store(0, Relaxed);
    }
    REJECTED.lock().clear();
}

/// Files not used, all reasons together.
pub fn rejected_total() -> u64 {
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

pub fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Relaxed);
}

/// The process image is about to be replaced: report what this image did.
pub fn report_before_exec() {
    let lookups = crate::thread::current_ibl_lookups();
    report(lookups);
}

/// Prints the counters if `-stats` is on. `ibl_lookups` comes from the
/// thread contexts, where the lookup routine counts without a lock.
pub fn report(ibl_lookups: u64) {
    if !crate::options::get().stats {
        return;
    }
    let s = &STATS;
    let ns = ticks_to_ns(s.translate_ticks.load(Relaxed));
    crate::log::print(format_args!(
        "dbirun stats:\n\
         \x20 blocks built:            {}\n\
         \x20 code cache bytes:        {}\n\
         \x20 dispatcher entries:      {}\n\
         \x20 indirect lookups:        {}\n\
         \x20 indirect lookup misses:  {}\n\
         \x20 links made:              {}\n\
         \x20 blocks flushed:          {}\n\
         \x20 system calls:            {}\n\
         \x20 translation time:        {}\n",
        s.blocks_built.load(Relaxed),
        s.cache_bytes.load(Relaxed),
        s.dispatches.load(Relaxed),
        ibl_lookups + s.ibl_lookups_of_exited_threads.load(Relaxed),
        s.ibl_misses.load(Relaxed),
        s.links.load(Relaxed),
        s.fragments_flushed.load(Relaxed),
        s.syscalls.load(Relaxed),
        ms(ns),
    ));
    if crate::options::get().persist {
        let rejected = REJECTED.lock();
        let total: u64 = rejected.iter().map(|(_, c)| c).sum();
        crate::log::print(format_args!(
            "  blocks loaded:           {}\n  blocks registered:       {}\n  cache files loaded:      {}\n  cache files rejected:    {}\n",
            s.blocks_loaded.load(Relaxed),
            s.blocks_registered.load(Relaxed),
            s.files_loaded.load(Relaxed),
            total,
        ));
        for (reason, count) in rejected.iter() {
            crate::log::print(format_args!("    {reason}: {count}\n"));
        }
        crate::log::print(format_args!(
            "  cache bytes mapped:      {}\n  load time:               {}\n  cache files written:     {}\n  blocks persisted:        {}\n  persist time:            {}\n",
            s.bytes_mapped.load(Relaxed),
            ms(ticks_to_ns(s.load_ticks.load(Relaxed))),
            s.files_written.load(Relaxed),
            s.blocks_persisted.load(Relaxed),
            ms(ticks_to_ns(s.persist_ticks.load(Relaxed))),
        ));
    }
}
