//! A segment of position-independent code in the making: a region of the
//! code cache whose W part (the module-base slot, exit slots, client
//! block data) grows down and whose X part (code) grows up from one
//! boundary, so code reaches its slots RIP-relative and the segment can be
//! written to a cache file as a (W, X) zone pair (`persistence::units`
//! owns the segments of each module; emit places blocks in them).
//!
//! The stubs of direct exits grow down from the X part's end, away from
//! the code: linked exits never reach them, so the code that runs lies
//! dense (a block's stubs took more bytes than its body). A file keeps
//! them after the code.

/// Room a block may need: code, and W slots and client data.
const X_PER_BLOCK: u64 = 32 << 10;
const W_PER_BLOCK: u64 = 8 << 10;

pub(crate) struct LiveSegment {
    /// Lowest W address; W is the first quarter of the region.
    pub(crate) lo: u64,
    /// Where W ends and X starts.
    pub(crate) split: u64,
    /// Lowest W byte in use (allocations move it down).
    pub(crate) w_next: u64,
    pub(crate) x_next: u64,
    /// Lowest stub byte in use (stubs move it down from `x_end`).
    pub(crate) stub_next: u64,
    pub(crate) x_end: u64,
    /// The slot holding the module's base address.
    pub(crate) base_slot: u64,
}

impl LiveSegment {
    pub(crate) fn new(region: u64, len: u64, module_base: u64) -> LiveSegment {
        let split = region + len / 4;
        let x_end = region + len;
        let mut seg = LiveSegment { lo: region, split, w_next: split, x_next: split, stub_next: x_end, x_end, base_slot: 0 };
        seg.base_slot = seg.alloc_w(8).expect("room for the base slot");
        // SAFETY: the slot is fresh writable cache memory.
        unsafe { *(seg.base_slot as *mut u64) = module_base };
        seg
    }

    /// `len` zeroed bytes of W (8-byte aligned).
    pub(crate) fn alloc_w(&mut self, len: u64) -> Option<u64> {
        let at = (self.w_next.checked_sub(len)?) & !7;
        (at >= self.lo).then(|| {
            self.w_next = at;
            at
        })
    }

    pub(crate) fn has_room_for_a_block(&self) -> bool {
        self.stub_next - self.x_next >= X_PER_BLOCK && self.w_next - self.lo >= W_PER_BLOCK
    }

    /// Room for `len` bytes of stubs (8-byte aligned), below the stubs so
    /// far; their address.
    pub(crate) fn alloc_stubs(&mut self, len: u64) -> Option<u64> {
        let at = self.stub_next.checked_sub(len)? & !7;
        (at >= self.x_next).then(|| {
            self.stub_next = at;
            at
        })
    }

    /// Copies `code` to the next free X address and returns it.
    pub(crate) fn commit(&mut self, code: &[u8]) -> Option<u64> {
        crate::translate::code_cache::append_code(&mut self.x_next, self.stub_next, code)
    }

    /// Copies `stubs` to `at`, room [`LiveSegment::alloc_stubs`] gave.
    pub(crate) fn commit_stubs(&mut self, at: u64, stubs: &[u8]) {
        assert!(at >= self.stub_next && at + stubs.len() as u64 <= self.x_end, "stubs outside their room");
        // SAFETY: [at, at + len) is this segment's stub room, writable cache memory.
        unsafe { crate::translate::code_cache::copy_to_cache(at, stubs) };
    }

    /// Whether `addr` is in this segment's W or X region.
    pub(crate) fn contains(&self, addr: u64) -> bool {
        (self.lo..self.x_end).contains(&addr)
    }
}

