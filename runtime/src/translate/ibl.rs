//! The indirect-branch lookup: an open-addressing table from application pc
//! to cache pc, searched without leaving the code cache. Only a miss goes
//! back to the dispatcher.
//!
//! Every indirect branch site (mangled `ret`, `jmp r/m`, `call r/m`) gets its
//! own copy of the lookup code, a position-independent template, so the
//! final indirect jump is predicted per site rather than by one shared jump
//! for the whole program. Contract at the copy's start: rcx holds the
//! application target, the application's rcx is in `gs:[IBL_RCX]`. The copy
//! preserves every other register and the arithmetic flags (lahf/seto: the
//! application's stack is never touched). On a miss it jumps through
//! `gs:[IBL_MISS_HANDLER]` with the saved flags in `gs:[IBL_FLAGS]`: to
//! the search of loaded cache files' tables (`file_lookup.rs`) under
//! `-persist`, which goes on to `dbi_ibl_miss` and the dispatcher when
//! they lack the target too.

use alloc::vec::Vec;

use iced_x86::Register;

use crate::translate::emit::{ExitData, ExitKind};
use crate::translate::encoder;
use crate::thread::{offsets as off, ThreadContext};

/// The lookup from the flags' save on: a look at pending signals, the
/// probes, and the jump to the hit or through the miss handler. `$count`
/// counts the lookup (or is a comment).
macro_rules! way_on {
    ($count:literal) => {
        concat!(
            "    lahf\n",
            "    seto al\n",
            "    mov qword ptr gs:[{ibl_flags}], rax\n",
            $count,
            "\n",
            // A signal waits for delivery: leave through the dispatcher.
            "    cmp qword ptr gs:[{pending}], 0\n",
            "    jne 4f\n",
            // The table before the mask: a signal between the two points
            // the thread at the empty table with mask 0, and an old mask
            // with the empty table would read past its end.
            "    mov rdx, qword ptr gs:[{table}]\n",
            // The hash (`IblTable::home`): pc + (pc rotated right by 4).
            "    mov rax, rcx\n",
            "    ror rax, {hash_rotation}\n",
            "    add rax, rcx\n",
            "    and rax, qword ptr gs:[{mask}]\n",
            "    shl rax, 4\n",
            "    add rdx, rax\n",
            // The empty check comes first: a jump to address 0 must miss.
            "2:\n",
            "    cmp qword ptr [rdx], 0\n",
            "    je 5f\n",
            "    cmp rcx, qword ptr [rdx]\n",
            "    je 3f\n",
            "    add rdx, 16\n",
            "    jmp 2b\n",
            "3:\n",
            "    mov rdx, qword ptr [rdx + 8]\n",
            "    mov qword ptr gs:[{target}], rdx\n",
            "    mov rax, qword ptr gs:[{ibl_flags}]\n",
            "    add al, 0x7f\n",
            "    sahf\n",
            "    mov rax, qword ptr gs:[{ibl_rax}]\n",
            "    mov rdx, qword ptr gs:[{ibl_rdx}]\n",
            "    mov rcx, qword ptr gs:[{ibl_rcx}]\n",
            "    jmp qword ptr gs:[{target}]\n",
            "4:\n",
            "5:\n",
            "    mov rdx, qword ptr gs:[{ibl_rdx}]\n",
            "    jmp qword ptr gs:[{miss_handler}]\n",
        )
    };
}

/// Assembles `$body` as `$name`: after the saves of rax and rdx every
/// lookup starts with, and with every operand a lookup may name.
macro_rules! lookup_code {
    ($name:literal, $body:expr) => {
        core::arch::global_asm!(
            concat!(".globl ", $name, "_start"),
            concat!(".globl ", $name, "_end"),
            concat!(".type ", $name, "_start,@function"),
            concat!($name, "_start:"),
            "    mov qword ptr gs:[{ibl_rax}], rax",
            "    mov qword ptr gs:[{ibl_rdx}], rdx",
            $body,
            concat!($name, "_end:"),
            "    # operands not every lookup names: {lookups} {slow_path} {pending} {mask} {table} {target} {ibl_rcx} {ibl_flags} {miss_handler} {hash_rotation}",
            ibl_rax = const off::IBL_RAX,
            ibl_rcx = const off::IBL_RCX,
            ibl_rdx = const off::IBL_RDX,
            ibl_flags = const off::IBL_FLAGS,
            lookups = const off::IBL_LOOKUPS,
            pending = const off::SIGNAL_PENDING,
            mask = const off::IBL_MASK,
            table = const off::IBL_TABLE,
            target = const off::IBL_TARGET,
            miss_handler = const off::IBL_MISS_HANDLER,
            slow_path = const off::IBL_SLOW_PATH,
            hash_rotation = const HASH_ROTATION,
        );
    };
}

/// The first two probes (the home entry and the next) without touching
/// the flags (BMI2's `pext` masks, `lea` adds and subtracts, `jrcxz`
/// compares), which is where a lookup almost always hits, with the
/// site's own final jump: the further probes are one routine all sites
/// share (`dbi_ibl_slow`, reached through `gs:[IBL_SLOW_PATH]`, flag free
/// as well; only a miss saves the flags): each site's copy is 152 bytes
/// instead of 279 (python3's cache file, whose code is a sixth lookups,
/// was 4% smaller with one probe in the copy).
/// A pending signal points the thread at an empty table instead
/// ([`point_at_empty_table`]), so these probes miss and the miss handler
/// sends the thread to the dispatcher, which delivers it. An empty entry
/// matches only a target of 0, and its cache pc 0 sends that on too.
macro_rules! flag_free_first_probe {
    () => {
        concat!(
            "    mov rdx, qword ptr gs:[{table}]\n",
            "    rorx rax, rcx, {hash_rotation}\n",
            "    lea rax, [rax + rcx]\n",
            "    pext rax, rax, qword ptr gs:[{mask}]\n",
            "    lea rax, [rax + rax]\n",
            "    lea rdx, [rdx + rax*8]\n",
            "    mov rax, qword ptr [rdx]\n",
            "    not rax\n",
            "    lea rax, [rax + rcx + 1]\n",
            "    xchg rax, rcx\n",
            "    jrcxz 7f\n",
            // The next entry, where linear probing puts most of the
            // targets not at home (cc1's table: 13% of its entries one
            // from home, 7% further).
            "    mov rcx, qword ptr [rdx + 16]\n",
            "    not rcx\n",
            "    lea rcx, [rcx + rax + 1]\n",
            "    jrcxz 6f\n",
            "    mov rcx, rax\n",
            "    jmp 8f\n",
            "6:\n",
            "    lea rdx, [rdx + 16]\n",
            "7:\n",
            "    mov rcx, qword ptr [rdx + 8]\n",
            "    jrcxz 8f\n",
            "    mov qword ptr gs:[{target}], rcx\n",
            "    mov rax, qword ptr gs:[{ibl_rax}]\n",
            "    mov rdx, qword ptr gs:[{ibl_rdx}]\n",
            "    mov rcx, qword ptr gs:[{ibl_rcx}]\n",
            "    jmp qword ptr gs:[{target}]\n",
            "8:\n",
            "    jmp qword ptr gs:[{slow_path}]\n",
        )
    };
}

lookup_code!("dbi_ibl_inline", way_on!("    # lookups are not counted"));
lookup_code!("dbi_ibl_inline_fast", flag_free_first_probe!());
// With -stats, lookups are counted (a memory increment per indirect
// branch, which needs the flags saved first: no flag-free probe).
lookup_code!("dbi_ibl_inline_counted", way_on!("    add qword ptr gs:[{lookups}], 1"));

// The way on after the flag-free first probes missed, shared by every
// site: rcx holds the target, rax and rdx are saved. It probes on from the
// home entry, flag free as they are (python3's and xz's hot lookups sit
// two or more entries from home in one case in twenty, at the table's
// 30-40% load: saving the flags and looking at pending signals first made
// this 5% of `xz -T2`); only a miss saves the flags, for the miss handler.
// The table is read before the mask, as in the first probes: a signal in
// between points the thread at the empty table with mask 0, and an old
// mask with the empty table would read past its end. That pending signal
// makes every later probe miss, so no look at it is needed here: this
// lookup goes on to its hit, or misses with the next one.
core::arch::global_asm!(
    ".globl dbi_ibl_slow",
    ".type dbi_ibl_slow,@function",
    "dbi_ibl_slow:",
    "    mov rax, rcx",
    "    mov rdx, qword ptr gs:[{table}]",
    "    rorx rcx, rax, {hash_rotation}",
    "    lea rcx, [rcx + rax]",
    "    pext rcx, rcx, qword ptr gs:[{mask}]",
    "    lea rcx, [rcx + rcx]",
    "    lea rdx, [rdx + rcx*8]",
    // The empty check comes first: a jump to address 0 must miss.
    "2:",
    "    mov rcx, qword ptr [rdx]",
    "    jrcxz 5f",
    "    not rcx",
    "    lea rcx, [rcx + rax + 1]",
    "    jrcxz 3f",
    "    lea rdx, [rdx + 16]",
    "    jmp 2b",
    "3:",
    "    mov rcx, qword ptr [rdx + 8]",
    "    mov qword ptr gs:[{target}], rcx",
    "    mov rax, qword ptr gs:[{ibl_rax}]",
    "    mov rdx, qword ptr gs:[{ibl_rdx}]",
    "    mov rcx, qword ptr gs:[{ibl_rcx}]",
    "    jmp qword ptr gs:[{target}]",
    "5:",
    "    mov rcx, rax",
    "    lahf",
    "    seto al",
    "    mov rdx, qword ptr gs:[{ibl_rdx}]",
    "    mov qword ptr gs:[{ibl_flags}], rax",
    "    jmp qword ptr gs:[{miss_handler}]",
    ibl_rax = const off::IBL_RAX,
    ibl_rcx = const off::IBL_RCX,
    ibl_rdx = const off::IBL_RDX,
    ibl_flags = const off::IBL_FLAGS,
    mask = const off::IBL_MASK,
    table = const off::IBL_TABLE,
    target = const off::IBL_TARGET,
    miss_handler = const off::IBL_MISS_HANDLER,
    hash_rotation = const HASH_ROTATION,
);

core::arch::global_asm!(
    ".globl dbi_ibl_miss",
    ".type dbi_ibl_miss,@function",
    "dbi_ibl_miss:",
    "    mov qword ptr gs:[{next_pc}], rcx",
    "    mov rax, qword ptr gs:[{ibl_flags}]",
    "    add al, 0x7f",
    "    sahf",
    "    mov rax, qword ptr gs:[{ibl_rax}]",
    "    mov rcx, qword ptr gs:[{ibl_rcx}]",
    "    mov qword ptr gs:[{gpr}], rax",
    "    lea rax, [rip + {miss}]",
    "    jmp dbi_fcache_return",
    ibl_rax = const off::IBL_RAX,
    ibl_rcx = const off::IBL_RCX,
    ibl_flags = const off::IBL_FLAGS,
    next_pc = const off::NEXT_PC,
    gpr = const off::GPR,
    miss = sym IBL_MISS_EXIT,
);

/// The exit the lookup reports a miss through.
static IBL_MISS_EXIT: ExitData = ExitData::new(0, ExitKind::IndirectMiss);

extern "C" {
    fn dbi_ibl_miss();
    fn dbi_ibl_slow();
    static dbi_ibl_inline_start: u8;
    static dbi_ibl_inline_end: u8;
    static dbi_ibl_inline_fast_start: u8;
    static dbi_ibl_inline_fast_end: u8;
    static dbi_ibl_inline_counted_start: u8;
    static dbi_ibl_inline_counted_end: u8;
}

/// The dispatcher's side of a miss (kept in every ThreadContext: the
/// lookup's miss handler, `file_lookup::miss_handler_addr`, goes on to it
/// when loaded files do not have the target either).
pub(crate) fn dispatcher_miss_addr() -> u64 {
    dbi_ibl_miss as *const () as u64
}

/// The lookup's way on after a flag-free first probe misses (kept in
/// every ThreadContext: the sites' copies jump through it).
pub(crate) fn slow_path_addr() -> u64 {
    dbi_ibl_slow as *const () as u64
}

/// The lookup code to copy to an indirect branch site.
pub(crate) fn lookup_code() -> &'static [u8] {
    // SAFETY: each pair of symbols delimits an assembled template in .text.
    unsafe {
        if crate::options::get().stats {
            template(&dbi_ibl_inline_counted_start, &dbi_ibl_inline_counted_end)
        } else if flag_free_probe() {
            template(&dbi_ibl_inline_fast_start, &dbi_ibl_inline_fast_end)
        } else {
            template(&dbi_ibl_inline_start, &dbi_ibl_inline_end)
        }
    }
}

/// The bytes of a template assembled between two symbols.
///
/// # Safety
/// `start` and `end` delimit one template in the runtime's text.
unsafe fn template(start: &'static u8, end: &'static u8) -> &'static [u8] {
    let (start, end) = (start as *const u8, end as *const u8);
    // SAFETY: the caller's promise: `start..end` is mapped, read-only code.
    unsafe { core::slice::from_raw_parts(start, end as usize - start as usize) }
}

/// Whether lookups probe first without the flags: the CPU has BMI2
/// (`pext`) and `-stats` does not count lookups. Code built so differs, so
/// the cache key says which (`persistence/key.rs`).
pub(crate) fn flag_free_probe() -> bool {
    has_bmi2() && !crate::options::get().stats
}

/// Whether the CPU has BMI2 (`pext`).
pub(crate) fn has_bmi2() -> bool {
    static BMI2: spin::Once<bool> = spin::Once::new();
    // Leaf 7 exists on every x86-64 CPU that runs this (`cpuid` is safe).
    *BMI2.call_once(|| core::arch::x86_64::__cpuid_count(7, 0).ebx & (1 << 8) != 0)
}

/// A table no lookup finds anything in (mask 0: every probe reads its
/// first entry, empty): a thread with a signal pending is pointed at it.
/// Two entries: the first probes read the home entry and the next.
static EMPTY_TABLE: [Entry; 2] = [Entry { app_pc: 0, cache_pc: 0 }; 2];

/// A signal waits for `ctx`'s thread: its lookups must miss, so that the
/// flag-free first probe, which does not look at pending signals, sends
/// it on to the part that does. Run by the thread itself (its signal
/// handler, its dispatcher), so no lookup of the thread sees half of it.
pub(crate) fn point_at_empty_table(ctx: &mut ThreadContext) {
    ctx.ibl_mask = 0;
    ctx.ibl_table = EMPTY_TABLE.as_ptr() as u64;
    crate::translate::returns::stop_predicting(ctx);
}

/// The target an in-line check expects.
#[derive(Clone, Copy)]
pub(crate) enum Expected {
    Address(u64),
    /// `offset` past the module base held by the 8-byte slot at
    /// `base_slot`, in code placed at `code_base` (a segment's: a file
    /// keeps it valid wherever the module is mapped).
    ModuleOffset { offset: i32, base_slot: u64, code_base: u64 },
}

/// Appends a trace's in-line check that an indirect branch's target (in
/// rcx, the app's rcx spilled to `gs:[IBL_RCX]` as the lookup expects) is
/// `expected`: on a match the app's rcx is back and the code after the
/// check runs; returns the rel32 field of the jump taken otherwise, to be
/// pointed at [`inline_target_miss`]. No flag is read or written: `lea`
/// subtracts and `jrcxz` tests. A target below 2 GiB (a non-PIE program's
/// code) is subtracted as a displacement, without a second register; a
/// module offset as `rcx + ~base + 1 - offset`.
pub(crate) fn inline_target_check(code: &mut Vec<u8>, expected: Expected) -> usize {
    let short = short_form(expected);
    match (expected, short) {
        (_, Some(neg)) => lea_rcx(code, neg),
        (Expected::Address(target), None) => {
            encoder::store_to_gs(code, off::IBL_RAX, Register::RAX);
            code.extend_from_slice(&[0x48, 0x89, 0xc8]); // mov rax, rcx
            encoder::mov_imm64(code, Register::RCX, target.wrapping_neg());
            code.extend_from_slice(&[0x48, 0x8d, 0x0c, 0x01]); // lea rcx, [rcx + rax]
        }
        (Expected::ModuleOffset { offset, base_slot, code_base }, None) => {
            encoder::store_to_gs(code, off::IBL_RAX, Register::RAX);
            encoder::load_rip(code, Register::RAX, code_base + code.len() as u64, base_slot);
            code.extend_from_slice(&[0x48, 0xf7, 0xd0]); // not rax
            lea_rcx_rax(code, 1 - offset);
        }
    }
    code.extend_from_slice(&[0xe3, 0x05]); // jrcxz past the jmp
    let miss = encoder::jmp_rel32(code);
    if short.is_none() {
        encoder::load_from_gs(code, Register::RAX, off::IBL_RAX);
    }
    encoder::load_from_gs(code, Register::RCX, off::IBL_RCX);
    miss
}

/// The start of a missed in-line check's way to the lookup: the target
/// back in rcx (and the app's rax back); the lookup code follows.
pub(crate) fn inline_target_miss(code: &mut Vec<u8>, expected: Expected) {
    match (expected, short_form(expected)) {
        (_, Some(neg)) => lea_rcx(code, neg.wrapping_neg()),
        (Expected::Address(_), None) => {
            code.extend_from_slice(&[0x48, 0x89, 0xc1]); // mov rcx, rax
            encoder::load_from_gs(code, Register::RAX, off::IBL_RAX);
        }
        (Expected::ModuleOffset { offset, .. }, None) => {
            code.extend_from_slice(&[0x48, 0xf7, 0xd0]); // not rax: the base
            lea_rcx_rax(code, offset);
            encoder::load_from_gs(code, Register::RAX, off::IBL_RAX);
        }
    }
}

/// Appends the count of a missed in-line check (target in rcx, the app's
/// rax and rcx in place): one off the u64 budget at `misses_left`, flag
/// free, reached RIP-relative from code placed at `code_base` if given.
/// Falls into the code that follows (a stub to the dispatcher) when that
/// spends the budget, with rcx and rax as they came; otherwise jumps to
/// the lookup past it: returns that jump's rel8 field, to be pointed at
/// the lookup.
pub(crate) fn count_miss(code: &mut Vec<u8>, misses_left: u64, code_base: Option<u64>) -> usize {
    encoder::store_to_gs(code, off::IBL_RAX, Register::RAX);
    match code_base {
        Some(at) => encoder::decrement_rip(code, at, misses_left),
        None => encoder::decrement_at(code, misses_left),
    }
    code.extend_from_slice(&[0x48, 0x91]); // xchg rax, rcx: the budget in rcx
    code.extend_from_slice(&[0xe3, 2 + encoder::GS_MOV_LEN as u8 + 2]); // jrcxz spent
    code.extend_from_slice(&[0x48, 0x91]);
    encoder::load_from_gs(code, Register::RAX, off::IBL_RAX);
    code.extend_from_slice(&[0xeb, 0]); // jmp short to the lookup
    let over = code.len() - 1;
    // spent:
    code.extend_from_slice(&[0x48, 0x91]);
    encoder::load_from_gs(code, Register::RAX, off::IBL_RAX);
    over
}

/// `-expected` as a displacement, if the target is an address that is one.
fn short_form(expected: Expected) -> Option<i32> {
    let Expected::Address(target) = expected else { return None };
    i32::try_from((target as i64).wrapping_neg()).ok().filter(|&d| d != i32::MIN)
}

/// Appends `lea rcx, [rcx + disp32]`.
fn lea_rcx(code: &mut Vec<u8>, disp: i32) {
    code.extend_from_slice(&[0x48, 0x8d, 0x89]);
    code.extend_from_slice(&disp.to_le_bytes());
}

/// Appends `lea rcx, [rcx + rax + disp32]`.
fn lea_rcx_rax(code: &mut Vec<u8>, disp: i32) {
    code.extend_from_slice(&[0x48, 0x8d, 0x8c, 0x01]);
    code.extend_from_slice(&disp.to_le_bytes());
}

/// Appends a lookup that always misses: the target in rcx goes to the
/// dispatcher as a missed lookup's does (flags saved as the miss path
/// restores them).
pub(crate) fn to_dispatcher(code: &mut Vec<u8>) {
    encoder::store_to_gs(code, off::IBL_RAX, Register::RAX);
    code.extend_from_slice(&[0x9f, 0x0f, 0x90, 0xc0]); // lahf; seto al
    encoder::store_to_gs(code, off::IBL_FLAGS, Register::RAX);
    encoder::jmp_gs(code, off::DISPATCHER_MISS);
}

/// The lookup's hash is `pc + pc.rotate_right(HASH_ROTATION)`, masked:
/// the low bits of a pc alone put every 16-byte-aligned function entry of
/// every page on one slot in sixteen, and jump tables' targets of
/// neighbouring functions in runs, where linear probing displaced the
/// hot ones (xz's encoder: its switch's targets two and three entries
/// from home, a tenth of the run in the lookup's way on). The rotation
/// adds the bits above the low four (page bits included) in; flag free
/// in the first probe (`rorx`, `lea`), as `ror`, `add` on the way on.
const HASH_ROTATION: u32 = 4;

/// Probing never wraps: the table has this many spare entries past its
/// hashed range, and an insert that would run past them grows the table.
const OVERFLOW_ENTRIES: usize = 64;

/// The first table's size (and the smallest), as a power of two.
const MIN_BITS: u32 = 12;

/// An app pc no code has: marks a removed entry.
const TOMBSTONE: u64 = u64::MAX;

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Entry {
    app_pc: u64,
    cache_pc: u64,
}

pub(crate) struct IblTable {
    entries: Vec<Entry>,
    mask: u64,
    /// Entries taken: live ones and tombstones.
    len: usize,
    /// Of those, tombstones: a JIT's flushes leave one for every entry
    /// they remove, and an entry entered again takes a new one.
    tombstones: usize,
    /// Tables this one replaced, with the epoch they were replaced in
    /// (`quiescence.rs`): a thread in the cache may search one until it
    /// next picks a fragment (and the new table with it).
    replaced: Vec<(u64, Vec<Entry>)>,
}

impl IblTable {
    pub(crate) fn new() -> IblTable {
        IblTable::with_capacity_log2(MIN_BITS)
    }

    fn with_capacity_log2(bits: u32) -> IblTable {
        let size = 1usize << bits;
        let len = size + OVERFLOW_ENTRIES;
        // From zeroed pages: a large table is a fresh mapping. A big one is
        // filled at once (a loaded cache file's blocks): fault it in in one go.
        let layout = core::alloc::Layout::array::<Entry>(len).expect("table size");
        // SAFETY: an all-zero Entry is valid (empty); the Vec owns the block.
        let entries = unsafe {
            let ptr = alloc::alloc::alloc_zeroed(layout) as *mut Entry;
            assert!(!ptr.is_null(), "out of memory for the lookup table");
            if len * core::mem::size_of::<Entry>() >= 256 << 10 {
                crate::os::sys::populate(ptr as u64, (len * core::mem::size_of::<Entry>()) as u64, true);
            }
            Vec::from_raw_parts(ptr, len, len)
        };
        IblTable { entries, mask: size as u64 - 1, len: 0, tombstones: 0, replaced: Vec::new() }
    }

    /// Makes room for `more` entries at once (one rehash, not one per
    /// doubling: a loaded cache file brings tens of thousands).
    pub(crate) fn reserve(&mut self, more: usize) {
        let want = (self.len + more) * 2;
        if want > self.mask as usize + 1 {
            self.grow_to(want.next_power_of_two().trailing_zeros());
        }
    }

    /// Adds `app_pc -> cache_pc`; the caller republishes the table with
    /// [`IblTable::publish`] afterwards since it may have moved.
    pub(crate) fn insert(&mut self, app_pc: u64, cache_pc: u64) {
        if (self.len + 1) * 2 > self.mask as usize + 1 {
            self.rehash();
        }
        if !self.try_insert(app_pc, cache_pc) {
            // A cluster runs past the spare entries: double.
            self.grow_to((self.mask + 1).trailing_zeros() + 1);
            self.insert(app_pc, cache_pc);
        }
    }

    /// Moves the live entries to a table a quarter full with them at most,
    /// the tombstones left behind: a table half full of tombstones is
    /// rebuilt at its size, where doubling it for them doubled it for
    /// good (a loop rewriting a function 200,000 times grew it to a
    /// million entries, 16 MB, besides the tables it replaced).
    fn rehash(&mut self) {
        let live = self.len - self.tombstones;
        // A table half full of live entries doubles.
        let bits = (live * 4).max(1).next_power_of_two().trailing_zeros().max(MIN_BITS);
        self.grow_to(bits);
    }

    /// Where probing for `app_pc` starts (the lookup code's hash).
    fn home(&self, app_pc: u64) -> usize {
        (app_pc.wrapping_add(app_pc.rotate_right(HASH_ROTATION)) & self.mask) as usize
    }

    fn try_insert(&mut self, app_pc: u64, cache_pc: u64) -> bool {
        let start = self.home(app_pc);
        for e in &mut self.entries[start..] {
            if e.app_pc == app_pc || e.app_pc == 0 {
                if e.app_pc == 0 {
                    self.len += 1;
                }
                // Other threads search the table concurrently: the target
                // must be in place before the key makes the entry visible
                // (x86 keeps stores in order; volatile keeps the compiler's).
                // SAFETY: plain stores into our own entry.
                unsafe {
                    core::ptr::write_volatile(&mut e.cache_pc, cache_pc);
                    core::ptr::write_volatile(&mut e.app_pc, app_pc);
                }
                return true;
            }
        }
        false
    }

    /// Rehashes into a table of 2^bits entries; the old one is kept until
    /// no thread can be searching it ([`IblTable::free_replaced_before`]).
    fn grow_to(&mut self, bits: u32) {
        let mut replaced = core::mem::take(&mut self.replaced);
        let old = core::mem::replace(self, IblTable::with_capacity_log2(bits));
        let live = |e: &&Entry| e.app_pc != 0 && e.app_pc != TOMBSTONE;
        if old.entries.iter().filter(live).any(|e| !self.try_insert(e.app_pc, e.cache_pc)) {
            // A pathological cluster: double again and restart.
            *self = IblTable::with_capacity_log2(bits + 1);
            for e in old.entries.iter().filter(live) {
                self.insert(e.app_pc, e.cache_pc);
            }
        }
        replaced.append(&mut core::mem::take(&mut self.replaced));
        replaced.push((crate::quiescence::epoch(), old.entries));
        self.replaced = replaced;
    }

    /// Frees the tables this one replaced before epoch `oldest`, which no
    /// thread searches any more (each has picked a fragment since, and
    /// the table in use with it).
    pub(crate) fn free_replaced_before(&mut self, oldest: u64) {
        self.replaced.retain(|(epoch, _)| *epoch >= oldest);
    }

    /// Forgets `app_pc`. The entry becomes a tombstone that lookups probe
    /// past and never match, since other threads may be searching.
    pub(crate) fn remove(&mut self, app_pc: u64) {
        let start = self.home(app_pc);
        for e in &mut self.entries[start..] {
            if e.app_pc == 0 {
                return;
            }
            if e.app_pc == app_pc {
                // SAFETY: a plain store into our own entry.
                unsafe { core::ptr::write_volatile(&mut e.app_pc, TOMBSTONE) };
                self.tombstones += 1;
                return;
            }
        }
    }

    /// Points the thread's lookup routine at this table.
    /// The cache pc entered for `app_pc`.
    pub(crate) fn get(&self, app_pc: u64) -> Option<u64> {
        let start = self.home(app_pc);
        self.entries[start..].iter().take_while(|e| e.app_pc != 0).find(|e| e.app_pc == app_pc).map(|e| e.cache_pc)
    }

    pub(crate) fn publish(&self, ctx: &mut ThreadContext) {
        ctx.ibl_table = self.entries.as_ptr() as u64;
        ctx.ibl_mask = self.mask;
        crate::translate::returns::publish(ctx);
        // A signal that came before these stores pointed the thread at the
        // empty table in vain: point it again (one that comes after them
        // does so itself).
        core::sync::atomic::compiler_fence(core::sync::atomic::Ordering::SeqCst);
        // SAFETY: a read of the thread's own context, which its signal
        // handler may have written.
        if unsafe { core::ptr::read_volatile(&ctx.signal_pending) } != 0 {
            point_at_empty_table(ctx);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iced_x86::{Decoder, DecoderOptions, Mnemonic};

    fn decoded(code: &[u8]) -> Vec<iced_x86::Instruction> {
        Decoder::with_ip(64, code, 0x1000, DecoderOptions::NONE).into_iter().collect()
    }

    #[test]
    fn in_line_target_checks_leave_the_flags_alone_and_skip_to_the_hit() {
        let module = Expected::ModuleOffset { offset: 0x1234, base_slot: 0x8000, code_base: 0x1000 };
        for expected in [Expected::Address(0x40_1000), Expected::Address(0x7f12_3456_7000), module] {
            let mut code = Vec::new();
            let field = inline_target_check(&mut code, expected);
            let check = decoded(&code);
            let jrcxz = check.iter().position(|i| i.mnemonic() == Mnemonic::Jrcxz).expect("jrcxz");
            assert_eq!(check[jrcxz + 1].mnemonic(), Mnemonic::Jmp);
            assert_eq!(check[jrcxz].near_branch_target(), check[jrcxz + 2].ip(), "a hit skips the jmp to the miss path");
            assert_eq!(field, code.len() - check.iter().skip(jrcxz + 2).map(|i| i.len()).sum::<usize>() - 4);
            let mut miss = Vec::new();
            inline_target_miss(&mut miss, expected);
            for i in check.iter().chain(&decoded(&miss)) {
                assert_eq!(i.rflags_modified(), 0, "{i} writes flags");
            }
            // What rcx holds at the jrcxz is the target less `expected`.
            let lea = &check[jrcxz - 1];
            assert_eq!(lea.mnemonic(), Mnemonic::Lea);
            match expected {
                Expected::Address(target) if target < 1 << 31 => {
                    assert_eq!(lea.memory_displacement64(), target.wrapping_neg(), "short form");
                    assert_eq!(decoded(&miss)[0].memory_displacement64(), target, "the miss adds it back");
                }
                Expected::Address(_) => {}
                Expected::ModuleOffset { offset, base_slot, .. } => {
                    // rax = ~base (read from the slot); rcx + rax + 1 - offset
                    // is the target less base and offset.
                    let load = check.iter().find(|i| i.is_ip_rel_memory_operand()).expect("the base slot read");
                    assert_eq!(load.ip_rel_memory_address(), base_slot);
                    assert_eq!(lea.memory_index(), iced_x86::Register::RAX);
                    assert_eq!(lea.memory_displacement64() as i64, 1 - offset as i64);
                    let back = decoded(&miss);
                    assert_eq!((back[0].mnemonic(), back[1].memory_displacement64() as i64), (Mnemonic::Not, offset as i64), "the miss adds base and offset back");
                }
            }
        }
    }

    /// The probe the lookup routine makes (`lookup_template!`): from
    /// the pc's home entry up to the first empty entry, skipping tombstones.
    fn find(t: &IblTable, app_pc: u64) -> Option<u64> {
        t.get(app_pc)
    }

    #[test]
    fn inserted_entries_are_found_and_replaced() {
        let mut t = IblTable::new();
        t.insert(0x40_1000, 0x7000_0000);
        t.insert(0x40_2000, 0x7000_0100);
        assert_eq!(find(&t, 0x40_1000), Some(0x7000_0000));
        assert_eq!(find(&t, 0x40_2000), Some(0x7000_0100));
        assert_eq!(find(&t, 0x40_3000), None);
        t.insert(0x40_1000, 0x7000_0200);
        assert_eq!(find(&t, 0x40_1000), Some(0x7000_0200));
        assert_eq!(t.len, 2);
    }

    /// `n` pcs from `from` on whose probing starts at entry `home`.
    fn homing_at(t: &IblTable, home: usize, from: u64, n: usize) -> Vec<u64> {
        (from..).filter(|&pc| t.home(pc) == home).take(n).collect()
    }

    #[test]
    fn colliding_pcs_probe_past_each_other_and_removal_leaves_a_tombstone() {
        let mut t = IblTable::new();
        // Same home slot: a cluster of three.
        let pcs = homing_at(&t, 5, 0x1000, 3);
        for (i, &pc) in pcs.iter().enumerate() {
            t.insert(pc, 0x9000 + i as u64);
        }
        t.remove(pcs[1]);
        assert_eq!(find(&t, pcs[1]), None);
        // The entry after the tombstone is still reachable.
        assert_eq!(find(&t, pcs[2]), Some(0x9002));
        assert_eq!(find(&t, pcs[0]), Some(0x9000));
        // Removing what is not there changes nothing.
        t.remove(0xdead_0000);
        assert_eq!(find(&t, pcs[2]), Some(0x9002));
    }

    /// A JIT's churn: an entry removed and entered again, 100,000 times,
    /// leaves a tombstone each time. The table is rebuilt at its size
    /// when they fill it, not doubled, and the tables it replaced go once
    /// no thread can be searching them.
    #[test]
    fn tombstones_of_churn_do_not_grow_the_table() {
        let mut t = IblTable::new();
        let steady: Vec<u64> = (0..300u64).map(|i| 0x40_0000 + i * 0x40).collect();
        steady.iter().for_each(|&pc| t.insert(pc, pc + 0x1000));
        for round in 0..100_000u64 {
            let pc = 0x7f00_0000_0000 + (round % 7) * 0x10;
            t.insert(pc, round);
            t.remove(pc);
        }
        assert_eq!(t.mask as usize + 1, 1 << MIN_BITS, "rebuilt at its size");
        assert!(t.replaced.len() > 10, "{} tables replaced", t.replaced.len());
        assert!(steady.iter().all(|&pc| find(&t, pc) == Some(pc + 0x1000)), "the live entries moved along");
        t.free_replaced_before(crate::quiescence::epoch());
        assert!(!t.replaced.is_empty(), "replaced in this epoch: a thread may search them");
        t.free_replaced_before(crate::quiescence::epoch() + 1);
        assert!(t.replaced.is_empty());
        // Live entries still double it.
        (0..3000u64).for_each(|i| t.insert(0x50_0000 + i * 0x40, i));
        assert!(t.mask as usize + 1 >= 4 * 3300 / 2, "{} entries for 3,300", t.mask + 1);
    }

    /// What the identity hash did to a module's 16-byte-aligned entry
    /// points (one slot in sixteen, pages aliased): spread over the table,
    /// nearly all at home.
    #[test]
    fn aligned_entry_points_of_many_pages_mostly_sit_at_home() {
        let mut t = IblTable::new();
        let size = t.mask as usize + 1;
        let pcs: Vec<u64> = (0..size as u64 / 4).map(|i| 0x7f12_3400_0000 + i * 0x130).collect();
        for &pc in &pcs {
            t.insert(pc, pc);
        }
        let at_home = pcs.iter().filter(|&&pc| t.entries[t.home(pc)].app_pc == pc).count();
        assert!(at_home * 10 >= pcs.len() * 8, "{at_home} of {} at home", pcs.len());
    }

    /// The site's copy probes the home entry and the next before the
    /// shared way on, touching no flag; the empty table a pending signal
    /// points a thread at has both entries (empty: every probe misses).
    #[test]
    fn the_first_probes_read_the_home_entry_and_the_next_without_flags() {
        // SAFETY: symbols of the assembled template.
        let fast = decoded(unsafe { template(&dbi_ibl_inline_fast_start, &dbi_ibl_inline_fast_end) });
        for i in &fast {
            assert_eq!(i.rflags_modified(), 0, "{i} writes flags");
        }
        let keys: Vec<u64> = fast
            .iter()
            .filter(|i| i.mnemonic() == Mnemonic::Mov && i.op_count() == 2 && i.memory_base() == Register::RDX && i.memory_displacement64() % 16 == 0)
            .map(|i| i.memory_displacement64())
            .collect();
        assert_eq!(keys, [0, 16], "the keys read");
        assert_eq!(fast.iter().filter(|i| i.mnemonic() == Mnemonic::Jrcxz).count(), 3, "two key compares and the empty cache pc's");
        assert!(EMPTY_TABLE.len() >= 2 && EMPTY_TABLE.iter().all(|e| e.app_pc == 0 && e.cache_pc == 0));
    }

    /// The first probe and the way on hash as [`IblTable::home`] does:
    /// `rorx`/`lea` (flag free) and `ror`/`add`, by [`HASH_ROTATION`].
    #[test]
    fn the_lookup_code_hashes_as_the_table() {
        // SAFETY: symbols of the assembled templates.
        let (fast, slow) = unsafe { (template(&dbi_ibl_inline_fast_start, &dbi_ibl_inline_fast_end), template(&dbi_ibl_inline_start, &dbi_ibl_inline_end)) };
        let (fast, slow) = (decoded(fast), decoded(slow));
        let rorx = fast.iter().position(|i| i.mnemonic() == Mnemonic::Rorx).expect("rorx");
        assert_eq!((fast[rorx].op0_register(), fast[rorx].op1_register(), fast[rorx].immediate8() as u32), (Register::RAX, Register::RCX, HASH_ROTATION));
        assert_eq!((fast[rorx + 1].mnemonic(), fast[rorx + 1].memory_base(), fast[rorx + 1].memory_index()), (Mnemonic::Lea, Register::RAX, Register::RCX));
        assert_eq!(fast[rorx + 2].mnemonic(), Mnemonic::Pext);
        let ror = slow.iter().position(|i| i.mnemonic() == Mnemonic::Ror).expect("ror");
        assert_eq!((slow[ror - 1].mnemonic(), slow[ror].immediate8() as u32), (Mnemonic::Mov, HASH_ROTATION));
        assert_eq!((slow[ror + 1].mnemonic(), slow[ror + 1].op1_register()), (Mnemonic::Add, Register::RCX));
        assert_eq!(slow[ror + 2].mnemonic(), Mnemonic::And);
    }

    #[test]
    fn growing_keeps_every_live_entry_and_drops_tombstones() {
        let mut t = IblTable::new();
        let first_size = t.mask + 1;
        let n = 3 * first_size;
        for pc in 1..=n {
            t.insert(pc * 16, pc);
        }
        assert!(t.mask + 1 >= 2 * n, "kept at most half full: size {} for {n}", t.mask + 1);
        t.remove(16);
        t.reserve(4 * n as usize);
        assert_eq!(find(&t, 16), None);
        for pc in 2..=n {
            assert_eq!(find(&t, pc * 16), Some(pc), "pc {:#x}", pc * 16);
        }
        assert_eq!(t.len, n as usize - 1);
    }

    #[test]
    fn probes_never_run_off_the_end() {
        let mut t = IblTable::new();
        // Every pc hashes to the last slot: the cluster lives in the
        // overflow entries, then forces growth instead of wrapping.
        let last = t.mask as usize;
        let pcs = homing_at(&t, last, 0x1000, OVERFLOW_ENTRIES + 8);
        for (i, &pc) in pcs.iter().enumerate() {
            t.insert(pc, i as u64 + 1);
        }
        for (i, &pc) in pcs.iter().enumerate() {
            assert_eq!(find(&t, pc), Some(i as u64 + 1));
        }
    }
}
