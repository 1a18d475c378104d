//! A huge module translated ahead of time in batches: each batch's blocks
//! are written once, as a file of their own with no name in the cache
//! directory, and the module's file is written once, at the end, from
//! what it held and every batch. Merging each batch into the file
//! rewrote the whole file every time (cc1's 313 MB six times over).

use alloc::vec::Vec;

use spin::Mutex;

use crate::persistence::files::OnDisk;

/// The batches set aside so far, with their module's base.
static SET_ASIDE: Mutex<Vec<(u64, OnDisk)>> = Mutex::new(Vec::new());

pub(crate) fn set_aside(module_base: u64, batch: OnDisk) {
    SET_ASIDE.lock().push((module_base, batch));
}

/// The batches of the module at `module_base`, oldest first, no longer
/// set aside.
pub(crate) fn take(module_base: u64) -> Vec<OnDisk> {
    let mut all = SET_ASIDE.lock();
    let (mine, others): (Vec<_>, Vec<_>) = core::mem::take(&mut *all).into_iter().partition(|(b, _)| *b == module_base);
    *all = others;
    mine.into_iter().map(|(_, batch)| batch).collect()
}
