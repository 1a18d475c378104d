//! Direct-branch linking: once the target of a direct exit has a fragment,
//! the exiting branch is patched to jump straight to it, so the next
//! execution stays in the cache.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::translate::fragment::Patch;
use crate::translate::encoder;
use crate::stats::{self, STATS};

/// Points the exit patched at `patch` to `target_start`.
pub fn link(patch: Patch, target_start: u64) {
    retarget(patch, target_start);
    stats::add(&STATS.links, 1);
}

/// Points the exit back at its stub.
pub fn unlink(patch: Patch, stub: u64) {
    retarget(patch, stub);
}

fn retarget(patch: Patch, target: u64) {
    match patch {
        Patch::Rel32(site) => retarget_rel32(site, target),
        // SAFETY: an 8-byte aligned W slot of a mapped file: one atomic store.
        Patch::Slot(slot) => unsafe { (*(slot as *const AtomicU64)).store(target, Ordering::Release) },
    }
}

fn retarget_rel32(patch_site: u64, target: u64) {
    let rel = encoder::rel32(patch_site, target);
    debug_assert_eq!(patch_site % 4, 0);
    // SAFETY: patch_site is the 4-byte aligned rel32 field of a branch in a
    // live fragment (emit aligns it): one atomic store replaces it, so a
    // thread running the branch sees the old or the new target.
    unsafe { (*(patch_site as *const core::sync::atomic::AtomicI32)).store(rel, core::sync::atomic::Ordering::Release) };
}
