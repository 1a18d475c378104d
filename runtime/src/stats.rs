//! Counters for `-stats`, printed to stderr at exit.

use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

pub struct Stats {
    pub blocks_built: AtomicU64,
    pub cache_bytes: AtomicU64,
    pub dispatches: AtomicU64,
    pub ibl_misses: AtomicU64,
    pub links: AtomicU64,
    pub syscalls: AtomicU64,
    pub translate_ns: AtomicU64,
}

pub static STATS: Stats = Stats {
    blocks_built: AtomicU64::new(0),
    cache_bytes: AtomicU64::new(0),
    dispatches: AtomicU64::new(0),
    ibl_misses: AtomicU64::new(0),
    links: AtomicU64::new(0),
    syscalls: AtomicU64::new(0),
    translate_ns: AtomicU64::new(0),
};

pub fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Relaxed);
}

/// Prints the counters if `-stats` is on. `ibl_lookups` comes from the
/// thread contexts, where the lookup routine counts without a lock.
pub fn report(ibl_lookups: u64) {
    if !crate::options::get().stats {
        return;
    }
    let s = &STATS;
    let ns = s.translate_ns.load(Relaxed);
    crate::log::print(format_args!(
        "dbirun stats:\n\
         \x20 blocks built:            {}\n\
         \x20 code cache bytes:        {}\n\
         \x20 dispatcher entries:      {}\n\
         \x20 indirect lookups:        {}\n\
         \x20 indirect lookup misses:  {}\n\
         \x20 links made:              {}\n\
         \x20 system calls:            {}\n\
         \x20 translation time:        {}.{:03} ms\n",
        s.blocks_built.load(Relaxed),
        s.cache_bytes.load(Relaxed),
        s.dispatches.load(Relaxed),
        ibl_lookups,
        s.ibl_misses.load(Relaxed),
        s.links.load(Relaxed),
        s.syscalls.load(Relaxed),
        ns / 1_000_000,
        (ns / 1000) % 1000,
    ));
}
