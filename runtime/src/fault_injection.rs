//! A deliberate fault inside the translator, to test how the runtime
//! reports its own crashes: with `DBI_TEST_RUNTIME_FAULT=1` in its
//! environment, the runtime reads address 0x10 while it builds its 100th
//! block (holding the translator's lock, as a real bug there would).

use core::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed};

use crate::os::startup_args::CStr;

static ARMED: AtomicBool = AtomicBool::new(false);
static BUILDS: AtomicU32 = AtomicU32::new(0);
const AT_BUILD: u32 = 100;
pub(crate) const FAULT_ADDRESS: u64 = 0x10;

pub(crate) fn arm_from_env(envp: &[CStr]) {
    if envp.iter().any(|e| e.as_bytes() == b"DBI_TEST_RUNTIME_FAULT=1") {
        ARMED.store(true, Relaxed);
    }
}

/// Called at each block build.
pub(crate) fn at_build() {
    if ARMED.load(Relaxed) && BUILDS.fetch_add(1, Relaxed) + 1 == AT_BUILD {
        // SAFETY: none: this read faults on purpose.
        unsafe { core::ptr::read_volatile(FAULT_ADDRESS as *const u64) };
    }
}
