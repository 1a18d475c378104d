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
    start_ns: AtomicU64::new(0),
    start_ticks: AtomicU64::new(0),
};

pub fn ticks() -> u64 {
    // SAFETY: rdtsc has no preconditions.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Records the reference point for converting ticks to time.
pub fn start_clock() {
    STATS.start_ns.store(crate::sys::now_ns(), Relaxed);
    STATS.start_ticks.store(ticks(), Relaxed);
}

fn ticks_to_ns(t: u64) -> u64 {
    let ns = crate::sys::now_ns().saturating_sub(STATS.start_ns.load(Relaxed));
    let elapsed = ticks().saturating_sub(STATS.start_ticks.load(Relaxed));
    if elapsed == 0 { 0 } else { (t as u128 * ns as u128 / elapsed as u128) as u64 }
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
         \x20 translation time:        {}.{:03} ms\n",
        s.blocks_built.load(Relaxed),
        s.cache_bytes.load(Relaxed),
        s.dispatches.load(Relaxed),
        ibl_lookups + s.ibl_lookups_of_exited_threads.load(Relaxed),
        s.ibl_misses.load(Relaxed),
        s.links.load(Relaxed),
        s.fragments_flushed.load(Relaxed),
        s.syscalls.load(Relaxed),
        ns / 1_000_000,
        (ns / 1000) % 1000,
    ));
}
