//! The protection the app asked for, per range of its memory. The kernel's
//! differs on purpose: the runtime keeps code readable for the decoder,
//! never executable under `-no_native_exec`, and write-protects translated
//! writable code. A jump is checked against this view, so one into memory
//! the app cannot execute faults at its target, as natively, instead of
//! being translated.

use alloc::collections::BTreeMap;

use spin::Mutex;

use crate::os::sys::{self, page_up};

/// Disjoint ranges by start: (end, PROT_* bits).
pub(crate) static RANGES: Mutex<BTreeMap<u64, (u64, u64)>> = Mutex::new(BTreeMap::new());

/// What the app may do at an address.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Access {
    Executable,
    /// Mapped, but not executable (a fetch faults with SEGV_ACCERR).
    NotExecutable,
    /// Not mapped (a fetch faults with SEGV_MAPERR).
    Unmapped,
}

/// The app mapped or reprotected `[addr, addr + len)` as `prot`, or
/// unmapped it (`None`).
pub(crate) fn note(addr: u64, len: u64, prot: Option<u64>) {
    let (lo, hi) = (addr, addr.saturating_add(page_up(len)));
    if lo >= hi {
        return;
    }
    let mut ranges = RANGES.lock();
    let overlapping: alloc::vec::Vec<(u64, (u64, u64))> = ranges
        .range(..hi)
        .rev()
        .take_while(|(_, &(end, _))| end > lo)
        .map(|(&a, &v)| (a, v))
        .collect();
    for (a, (b, p)) in overlapping {
        ranges.remove(&a);
        // Parts outside [lo, hi) keep their protection.
        if a < lo {
            ranges.insert(a, (lo, p));
        }
        if b > hi {
            ranges.insert(hi, (b, p));
        }
    }
    if let Some(prot) = prot {
        ranges.insert(lo, (hi, prot));
    }
}

/// The app's protection of the page at `addr`, if the runtime saw it mapped.
pub(crate) fn prot_of(addr: u64) -> Option<u64> {
    let ranges = RANGES.lock();
    let (_, &(end, prot)) = ranges.range(..=addr).next_back()?;
    (addr < end).then_some(prot)
}

/// Whether the app may execute at `addr`. Memory the runtime never saw
/// mapped (the kernel's own mappings, the initial stack) is looked up in
/// the kernel's view and remembered.
pub(crate) fn access(addr: u64) -> Access {
    let prot = prot_of(addr).or_else(|| learn_from_kernel(addr));
    match prot {
        Some(p) if p & sys::PROT_EXEC != 0 => Access::Executable,
        Some(_) => Access::NotExecutable,
        None => Access::Unmapped,
    }
}

fn learn_from_kernel(addr: u64) -> Option<u64> {
    let text = crate::os::proc_maps::read()?;
    let line = crate::os::proc_maps::lines(&text).find(|l| (l.lo..l.hi).contains(&addr))?;
    // A stack grows down into its guard gap: only what exists now is noted.
    note(line.lo, line.hi - line.lo, Some(line.prot));
    Some(line.prot)
}
