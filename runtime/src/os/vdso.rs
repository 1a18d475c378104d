//! Putting the vDSO where the kernel would have put it for the app. The
//! kernel mapped it (with its data pages, `[vvar]`) for the runtime, at the
//! top of the mmap area; natively it is mapped after the program and its
//! interpreter, just below them. The runtime parks it in its own region
//! while it loads the app, then moves it to the next free spot below, so the
//! app's layout (and what glibc computes from it) matches a native run.

use crate::os::startup_args::CStr;
use crate::os::sys;

/// The vDSO and its data pages: one contiguous range, moved as a whole.
pub(crate) struct Vdso {
    lo: u64,
    hi: u64,
    /// The ELF image's address (AT_SYSINFO_EHDR) within the range.
    image: u64,
    pieces: [(u64, u64); 4],
    count: usize,
}


/// Finds the `[vvar*]` and `[vdso]` mappings in /proc/self/maps.
fn find(image: u64) -> Option<Vdso> {
    let text = crate::os::proc_maps::read()?;
    let mut v = Vdso { lo: u64::MAX, hi: 0, image, pieces: [(0, 0); 4], count: 0 };
    for line in crate::os::proc_maps::lines(&text) {
        if !(line.name == b"[vdso]" || line.name.starts_with(b"[vvar")) {
            continue;
        }
        if v.count == v.pieces.len() {
            return None;
        }
        v.pieces[v.count] = (line.lo, line.hi);
        v.count += 1;
        v.lo = v.lo.min(line.lo);
        v.hi = v.hi.max(line.hi);
    }
    let total: u64 = v.pieces[..v.count].iter().map(|(a, b)| b - a).sum();
    // Only a contiguous range that contains the image can be moved safely.
    (v.count > 0 && total == v.hi - v.lo && (v.lo..v.hi).contains(&image)).then_some(v)
}

impl Vdso {
    /// Moves every piece so the range starts at `to`; false if any move
    /// failed (then nothing further is attempted).
    fn move_to(&mut self, to: u64) -> bool {
        for &(start, end) in &self.pieces[..self.count] {
            let dest = to + (start - self.lo);
            // SAFETY: moving the kernel's special mappings as a whole; the
            // code in them addresses its data relative to itself, and the
            // relative layout is kept. Nothing runs there meanwhile.
            let r = unsafe {
                rustix::mm::mremap_fixed(
                    start as *mut core::ffi::c_void,
                    (end - start) as usize,
                    (end - start) as usize,
                    rustix::mm::MremapFlags::MAYMOVE,
                    dest as *mut core::ffi::c_void,
                )
            };
            if r.is_err() {
                return false;
            }
        }
        for p in &mut self.pieces[..self.count] {
            *p = (to + (p.0 - self.lo), to + (p.1 - self.lo));
        }
        self.image = to + (self.image - self.lo);
        self.hi = to + (self.hi - self.lo);
        self.lo = to;
        true
    }

    /// Takes the vDSO (at `image`) out of the mmap area before the app is
    /// loaded.
    pub(crate) fn park(image: u64) -> Option<Vdso> {
        let mut v = find(image)?;
        let len = v.hi - v.lo;
        // Reserve a spot in the runtime's region, then move onto it.
        let spot = sys::map_private(len, sys::PROT_NONE)? as u64;
        v.move_to(spot).then_some(v)
    }

    /// Moves the vDSO to where the kernel's next mmap would go (just below
    /// the app's interpreter, or its static-pie image) and returns its new
    /// image address and the image's length.
    pub(crate) fn place(mut self) -> (u64, u64) {
        let len = self.hi - self.lo;
        // SAFETY: a probe mapping, removed at once.
        let Ok(probe) = (unsafe { sys::mmap(0, len, sys::PROT_NONE, sys::MAP_PRIVATE | sys::MAP_ANONYMOUS, -1, 0) })
        else {
            return (self.image, self.image_len());
        };
        // SAFETY: our own probe mapping.
        let _ = unsafe { sys::munmap(probe, len) };
        self.move_to(probe);
        (self.image, self.image_len())
    }

    /// The length of the mapping that starts with the ELF image (the
    /// `[vdso]` one).
    fn image_len(&self) -> u64 {
        self.pieces[..self.count].iter().find(|p| p.0 == self.image).map_or(0, |p| p.1 - p.0)
    }
}

/// Notes the vDSO image at `image` (`len` bytes) as a module: with an
/// identity made from its bytes (`persist::vdso`), so its blocks persist
/// as a file's do, when its length is known.
pub(crate) fn note_as_module(image: u64, len: u64) {
    let path = CStr::leak(persist::vdso::PATH.as_bytes());
    if len == 0 {
        crate::os::modules::note_mapping(path, None, image, image, image + 2 * sys::PAGE_SIZE);
        return;
    }
    // SAFETY: the vDSO image is mapped readable, `len` bytes long.
    let bytes = unsafe { core::slice::from_raw_parts(image as *const u8, len as usize) };
    let (identity, hash) = persist::vdso::identity_and_hash(bytes);
    crate::os::modules::HASHES.lock().push((identity, hash));
    crate::os::modules::note_mapping(path, Some(identity), image, image, image + len);
}
