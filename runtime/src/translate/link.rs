//! Direct-branch linking: once the target of a direct exit has a fragment,
//! the exiting branch is patched to jump straight to it, so the next
//! execution stays in the cache.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::translate::fragment::Patch;
use crate::translate::encoder;
use crate::stats::{self, STATS};

/// Points the exit patched at `patch` to `target_start`.
pub(crate) fn link(patch: Patch, target_start: u64) {
    retarget(patch, target_start);
    stats::add(&STATS.links, 1);
}

/// Points the exit back at its stub.
pub(crate) fn unlink(patch: Patch, stub: u64) {
    retarget(patch, stub);
}

/// Whether the exit patched at `patch` goes to its stub `stub` now: it
/// was never linked, or was unlinked since.
pub(crate) fn is_unlinked(patch: Patch, stub: u64) -> bool {
    match patch {
        // SAFETY: the 4-byte aligned rel32 field of a branch in a live
        // fragment; one atomic load.
        Patch::Rel32(site) => (unsafe { (*(site as *const core::sync::atomic::AtomicI32)).load(Ordering::Acquire) }) == encoder::rel32(site, stub),
        // SAFETY: an 8-byte aligned W slot of a mapped file: one atomic load.
        Patch::Slot(slot) => (unsafe { (*(slot as *const AtomicU64)).load(Ordering::Acquire) }) == stub,
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::translate::encoder;
    use iced_x86::{Code, ConditionCode, Decoder, DecoderOptions};

    /// Code in a u64 buffer (so the rel32 field can be 4-byte aligned),
    /// decoded at its real address after a patch.
    fn patched(cond: Option<ConditionCode>, target_from: impl Fn(u64) -> u64) -> (iced_x86::Instruction, u64) {
        let mut words = [0u64; 4];
        let base = words.as_mut_ptr() as u64;
        let mut code = alloc::vec::Vec::new();
        // Place the branch so its rel32 field is 4-byte aligned, as emit does.
        while (code.len() + encoder::exit_branch_rel32_offset(cond)) % 4 != 0 {
            encoder::nop(&mut code, 1);
        }
        let branch = code.len();
        let field = encoder::exit_branch(&mut code, cond, false);
        // SAFETY: code fits in words (at most 3 + 6 bytes).
        unsafe { core::ptr::copy_nonoverlapping(code.as_ptr(), words.as_mut_ptr() as *mut u8, code.len()) };
        let target = target_from(base);
        retarget(Patch::Rel32(base + field as u64), target);
        // SAFETY: words holds the patched code.
        let bytes = unsafe { core::slice::from_raw_parts(words.as_ptr() as *const u8, code.len()) };
        let mut d = Decoder::with_ip(64, &bytes[branch..], base + branch as u64, DecoderOptions::NONE);
        (d.decode(), target)
    }

    #[test]
    fn retarget_rel32_reaches_target() {
        let conds = core::iter::once(None).chain([ConditionCode::e, ConditionCode::b, ConditionCode::g].map(Some));
        for cond in conds {
            for delta in [0x40i64, -0x1000, 0x7000_0000, -0x7000_0000] {
                let (i, target) = patched(cond, |base| base.wrapping_add(delta as u64));
                assert_eq!(i.near_branch_target(), target);
                match cond {
                    Some(cc) => {
                        assert!(i.is_jcc_near());
                        assert_eq!(i.condition_code(), cc);
                    }
                    None => assert_eq!(i.code(), Code::Jmp_rel32_64),
                }
            }
        }
    }

    #[test]
    fn an_exit_is_unlinked_while_it_goes_to_its_stub() {
        // A rel32 field, 4-byte aligned in a word.
        let mut word = 0u64;
        let site = &mut word as *mut u64 as u64;
        let (stub, target) = (site + 0x100, site + 0x2000);
        retarget(Patch::Rel32(site), stub);
        assert!(is_unlinked(Patch::Rel32(site), stub));
        retarget(Patch::Rel32(site), target);
        assert!(!is_unlinked(Patch::Rel32(site), stub));
        unlink(Patch::Rel32(site), stub);
        assert!(is_unlinked(Patch::Rel32(site), stub));
        let mut slot = 0x7e00_0000_1000u64;
        let at = &mut slot as *mut u64 as u64;
        assert!(is_unlinked(Patch::Slot(at), 0x7e00_0000_1000));
        retarget(Patch::Slot(at), 0x7e00_0000_2000);
        assert!(!is_unlinked(Patch::Slot(at), 0x7e00_0000_1000));
    }

    #[test]
    fn retarget_slot_stores_target() {
        let mut slot = 0u64;
        retarget(Patch::Slot(&mut slot as *mut u64 as u64), 0x7e00_1234_5678);
        assert_eq!(slot, 0x7e00_1234_5678);
    }
}
