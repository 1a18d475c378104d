//! Deliberate runtime bugs, to test how the runtime reports them. With
//! `DBI_TEST_RUNTIME_FAULT=1` in its environment, the runtime reads
//! address 0x10 while it builds its 100th block (holding the translator's
//! lock, as a real bug there would). With `DBI_TEST_FORGET_RETIRED=1`,
//! fragments removed while a thread may still run them answer for nothing
//! (`translate/retired.rs`), so a fault a thread takes in one is a fault in
//! the cache that no block answers for.

use core::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed};

use crate::os::startup_args::CStr;

static ARMED: AtomicBool = AtomicBool::new(false);
static BUILDS: AtomicU32 = AtomicU32::new(0);
const AT_BUILD: u32 = 100;
pub(crate) const FAULT_ADDRESS: u64 = 0x10;

static RETIRED_FORGOTTEN: AtomicBool = AtomicBool::new(false);

pub(crate) fn arm_from_env(envp: &[CStr]) {
    if envp.iter().any(|e| e.as_bytes() == b"DBI_TEST_RUNTIME_FAULT=1") {
        ARMED.store(true, Relaxed);
    }
    if envp.iter().any(|e| e.as_bytes() == b"DBI_TEST_FORGET_RETIRED=1") {
        RETIRED_FORGOTTEN.store(true, Relaxed);
    }
}

/// Whether retired fragments are to answer for nothing.
pub(crate) fn retired_forgotten() -> bool {
    RETIRED_FORGOTTEN.load(Relaxed)
}

/// Called at each block build.
pub(crate) fn at_build() {
    if ARMED.load(Relaxed) && BUILDS.fetch_add(1, Relaxed) + 1 == AT_BUILD {
        // SAFETY: none: this read faults on purpose.
        unsafe { core::ptr::read_volatile(FAULT_ADDRESS as *const u64) };
    }
}
