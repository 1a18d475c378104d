//! A segment of position-independent code in the making: a region of the
//! code cache whose W part (the module-base slot, exit slots, client
//! block data) grows down and whose X part (code) grows up from one
//! boundary, so code reaches its slots RIP-relative and the segment can be
//! written to a cache file as a (W, X) zone pair (`persistence::units`
//! owns the segments of each module; emit places blocks in them).

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
    pub(crate) x_end: u64,
    /// The slot holding the module's base address.
    pub(crate) base_slot: u64,
}

impl LiveSegment {
    pub(crate) fn new(region: u64, len: u64, module_base: u64) -> LiveSegment {
        let split = region + len / 4;
        let mut seg = LiveSegment { lo: region, split, w_next: split, x_next: split, x_end: region + len, base_slot: 0 };
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
        self.x_end - self.x_next >= X_PER_BLOCK && self.w_next - self.lo >= W_PER_BLOCK
    }

    /// Copies `code` to the next free X address and returns it.
    pub(crate) fn commit(&mut self, code: &[u8]) -> Option<u64> {
        crate::translate::code_cache::append_code(&mut self.x_next, self.x_end, code)
    }

    /// Whether `addr` is in this segment's W or X region.
    pub(crate) fn contains(&self, addr: u64) -> bool {
        (self.lo..self.x_end).contains(&addr)
    }
}

