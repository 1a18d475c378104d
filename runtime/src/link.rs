//! Direct-branch linking: once the target of a direct exit has a fragment,
//! the exiting branch is patched to jump straight to it, so the next
//! execution stays in the cache.

use crate::raw_x86;
use crate::stats::{self, STATS};

/// Points the branch whose rel32 field is at `patch_site` to `target_start`.
pub fn link(patch_site: u64, target_start: u64) {
    retarget(patch_site, target_start);
    stats::add(&STATS.links, 1);
}

/// Points the branch back at its exit stub.
pub fn unlink(patch_site: u64, stub: u64) {
    retarget(patch_site, stub);
}

fn retarget(patch_site: u64, target: u64) {
    let rel = raw_x86::rel32(patch_site, target);
    debug_assert_eq!(patch_site % 4, 0);
    // SAFETY: patch_site is the 4-byte aligned rel32 field of a branch in a
    // live fragment (emit aligns it): one atomic store replaces it, so a
    // thread running the branch sees the old or the new target.
    unsafe { (*(patch_site as *const core::sync::atomic::AtomicI32)).store(rel, core::sync::atomic::Ordering::Release) };
}
