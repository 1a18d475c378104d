//! Direct-branch linking: once the target of a direct exit has a fragment,
//! the exiting branch is patched to jump straight to it, so the next
//! execution stays in the cache.

use crate::raw_x86;
use crate::stats::{self, STATS};

/// Points the branch whose rel32 field is at `patch_site` to `target_start`.
pub fn link(patch_site: u64, target_start: u64) {
    let rel = raw_x86::rel32(patch_site, target_start);
    // SAFETY: patch_site is the rel32 field of a branch in a live fragment
    // (recorded by emit); one store replaces it.
    unsafe { core::ptr::write_unaligned(patch_site as *mut i32, rel) };
    stats::add(&STATS.links, 1);
}
