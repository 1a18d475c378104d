//! The lookup's second level: the block tables of the loaded cache files,
//! searched by the lookup's miss routine before it leaves the cache.
//!
//! A loaded file's blocks are entered in the lookup table only when the
//! runs that built them reached them through an indirect branch (its
//! `lookup_targets`); any other block used to cost a dispatcher round
//! trip (every register and the XSAVE state saved and restored) the first
//! time an indirect branch reached it: about 10,000 of them in the first
//! `python3 -c pass` after ahead-of-time translation, whose blocks no run
//! reached. Here the miss routine (`dbi_file_lookup`, entered as the
//! lookup's miss handler) finds the target's file by its module range,
//! the block by its module offset (the index's bucket directory, then a
//! binary search of the block table, both read where the file is
//! mapped) and jumps to its code. It also queues the app pc on the
//! thread (`ThreadContext::file_hits`): the dispatcher, the next time the
//! thread passes it, enters the queued blocks in the lookup table as a
//! miss would have (`Translator::enter_file_hits`), so a hot target is
//! searched for here a few times at most. A full queue, a pending
//! signal, or a target in no file's table go to the dispatcher as
//! before (`dbi_ibl_miss`).
//!
//! The tables are published by the translator, under its lock, and read
//! here without one: a table is filled before the count that makes it
//! visible is raised, and a retired file's table is never reused (its
//! span set to 0 hides it; its memory stays mapped, as a retired file's
//! code does).

use core::mem::{offset_of, size_of};
use core::sync::atomic::{AtomicU64, Ordering::{Relaxed, Release}};

use persist::index::ArchivedBlockEntry;

use crate::thread::offsets as off;

/// Files whose tables the miss routine searches; files loaded after these
/// are looked up through the dispatcher.
const MAX_TABLES: usize = 256;

/// App pcs a thread's queue holds before its next dispatcher visit.
pub(crate) const QUEUED_HITS: usize = 32;

/// One loaded file's block table, as the miss routine reads it. Module
/// offsets are below 2^31 (`docs/dpc-format.md`), so they fit its 32-bit
/// arithmetic.
#[repr(C)]
struct Table {
    /// The module's base: a target's module offset is `pc - base`.
    base: AtomicU64,
    /// Module offsets below this have their blocks here (0: retired).
    span: AtomicU64,
    /// The index's `blocks` (`ArchivedBlockEntry`, sorted by module offset).
    blocks: AtomicU64,
    block_count: AtomicU64,
    /// The index's `block_buckets` (`u32`), and how many.
    buckets: AtomicU64,
    bucket_count: AtomicU64,
    /// The X zone address of each segment (`u64`).
    code_bases: AtomicU64,
    /// Makes a table 64 bytes, one cache line, which the routine's scan
    /// relies on (`shl 6`).
    _pad: AtomicU64,
}

#[repr(C)]
struct Directory {
    len: AtomicU64,
    tables: [Table; MAX_TABLES],
}

const _: () = assert!(size_of::<Table>() == 64);

static DIRECTORY: Directory = Directory {
    len: AtomicU64::new(0),
    tables: [const {
        Table {
            base: AtomicU64::new(0),
            span: AtomicU64::new(0),
            blocks: AtomicU64::new(0),
            block_count: AtomicU64::new(0),
            buckets: AtomicU64::new(0),
            bucket_count: AtomicU64::new(0),
            code_bases: AtomicU64::new(0),
            _pad: AtomicU64::new(0),
        }
    }; MAX_TABLES],
};

/// What a loaded file lends the miss routine; every slice lives as long
/// as the process (the file stays mapped after it is retired).
pub(crate) struct FileBlocks {
    pub(crate) module_base: u64,
    pub(crate) blocks: &'static [ArchivedBlockEntry],
    /// The index's `block_buckets`: the address of its first (4-byte,
    /// little-endian) entry, and how many.
    pub(crate) buckets: (u64, usize),
    pub(crate) code_bases: &'static [u64],
}

/// Makes a file's blocks reachable from the miss routine; its handle for
/// [`withdraw`], or None when the directory is full or the file holds no
/// block. The caller holds the translator's lock (one writer at a time).
pub(crate) fn publish(file: FileBlocks) -> Option<usize> {
    let last = file.blocks.last()?;
    let i = DIRECTORY.len.load(Relaxed) as usize;
    let t = DIRECTORY.tables.get(i)?;
    t.base.store(file.module_base, Relaxed);
    t.span.store(last.module_offset.to_native() as u64 + 1, Relaxed);
    t.blocks.store(file.blocks.as_ptr() as u64, Relaxed);
    t.block_count.store(file.blocks.len() as u64, Relaxed);
    t.buckets.store(file.buckets.0, Relaxed);
    t.bucket_count.store(file.buckets.1 as u64, Relaxed);
    t.code_bases.store(file.code_bases.as_ptr() as u64, Relaxed);
    DIRECTORY.len.store(i as u64 + 1, Release);
    Some(i)
}

/// Hides a retired file's blocks from the miss routine.
pub(crate) fn withdraw(handle: usize) {
    DIRECTORY.tables[handle].span.store(0, Release);
}

/// Whether the miss routine's tables are in use in this process: not
/// while translating ahead of time, whose stop at the program's entry the
/// dispatcher must see even when an indirect branch reaches it.
fn enabled() -> bool {
    let o = crate::options::get();
    o.persist && !o.aot
}

/// Where the lookup's miss path goes.
pub(crate) fn miss_handler_addr() -> u64 {
    if enabled() {
        dbi_file_lookup as *const () as u64
    } else {
        crate::translate::ibl::dispatcher_miss_addr()
    }
}

/// Whether a thread interrupted at `pc` is past the routine's last look at
/// `signal_pending`, on its way to the block at `ibl_target`.
pub(crate) fn leaving_at(pc: u64) -> bool {
    (dbi_file_lookup_leave as *const () as u64..dbi_file_lookup_end as *const () as u64).contains(&pc)
}

extern "C" {
    fn dbi_file_lookup();
    fn dbi_file_lookup_leave();
    fn dbi_file_lookup_end();
}

// Entered as the lookup's miss handler: rcx holds the app target, the
// app's rcx, rax and flags (lahf/seto form) are in gs:[IBL_RCX],
// gs:[IBL_RAX] and gs:[IBL_FLAGS], every other register is the app's.
core::arch::global_asm!(
    ".globl dbi_file_lookup",
    ".type dbi_file_lookup,@function",
    "dbi_file_lookup:",
    "    cmp qword ptr gs:[{pending}], 0",
    "    jne .Lfl_to_dispatcher",
    "    mov qword ptr gs:[{ibl_rdx}], rdx",
    "    mov qword ptr gs:[{scratch}], rsi",
    "    mov qword ptr gs:[{scratch} + 8], rdi",
    "    mov qword ptr gs:[{scratch} + 16], r8",
    "    mov qword ptr gs:[{scratch} + 24], r9",
    // The table whose module range holds the target.
    "    lea rdx, [rip + {dir} + {tables}]",
    "    mov rsi, qword ptr [rip + {dir} + {len}]",
    "    shl rsi, 6",
    "    add rsi, rdx",
    ".Lfl_scan:",
    "    cmp rdx, rsi",
    "    jae .Lfl_miss",
    "    mov rax, rcx",
    "    sub rax, qword ptr [rdx + {t_base}]",
    "    cmp rax, qword ptr [rdx + {t_span}]",
    "    jb .Lfl_found_table",
    "    add rdx, 64",
    "    jmp .Lfl_scan",
    // eax: the module offset. The blocks of its 64-byte bucket, or all of
    // them if the file has no buckets there (bucket entries are not
    // validated: a range past the table misses).
    ".Lfl_found_table:",
    "    mov rdi, rax",
    "    shr rdi, 6",
    "    lea r8, [rdi + 1]",
    "    cmp r8, qword ptr [rdx + {t_bucket_count}]",
    "    jae .Lfl_all_blocks",
    "    mov r8, qword ptr [rdx + {t_buckets}]",
    "    mov esi, dword ptr [r8 + rdi*4]",
    "    mov edi, dword ptr [r8 + rdi*4 + 4]",
    "    cmp rdi, qword ptr [rdx + {t_block_count}]",
    "    ja .Lfl_miss",
    "    jmp .Lfl_search",
    ".Lfl_all_blocks:",
    "    xor esi, esi",
    "    mov rdi, qword ptr [rdx + {t_block_count}]",
    // Binary search of blocks[esi..edi] for module offset eax.
    ".Lfl_search:",
    "    cmp esi, edi",
    "    jae .Lfl_miss",
    "    lea r8d, [rsi + rdi]",
    "    shr r8d, 1",
    "    imul r9, r8, {block_size}",
    "    add r9, qword ptr [rdx + {t_blocks}]",
    "    cmp eax, dword ptr [r9 + {b_offset}]",
    "    je .Lfl_block",
    "    jb .Lfl_lower",
    "    lea esi, [r8 + 1]",
    "    jmp .Lfl_search",
    ".Lfl_lower:",
    "    mov edi, r8d",
    "    jmp .Lfl_search",
    // r9: the block. Its code: its segment's X zone + its code offset.
    ".Lfl_block:",
    "    mov eax, dword ptr [r9 + {b_segment}]",
    "    mov rsi, qword ptr [rdx + {t_code_bases}]",
    "    mov rsi, qword ptr [rsi + rax*8]",
    "    mov eax, dword ptr [r9 + {b_code_offset}]",
    "    add rsi, rax",
    // Queued for the dispatcher to enter in the lookup table; a full
    // queue sends the thread there now.
    "    mov rax, qword ptr gs:[{hit_count}]",
    "    cmp rax, {queued_hits}",
    "    jae .Lfl_miss",
    "    mov qword ptr gs:[rax*8 + {hits}], rcx",
    "    add rax, 1",
    "    mov qword ptr gs:[{hit_count}], rax",
    "    mov qword ptr gs:[{target}], rsi",
    "    mov rdx, qword ptr gs:[{ibl_rdx}]",
    "    mov rsi, qword ptr gs:[{scratch}]",
    "    mov rdi, qword ptr gs:[{scratch} + 8]",
    "    mov r8, qword ptr gs:[{scratch} + 16]",
    "    mov r9, qword ptr gs:[{scratch} + 24]",
    // From here a signal unlinks the code at gs:[IBL_TARGET] (the handler
    // asks `leaving_at`): the block may start a loop that never comes
    // back through a lookup.
    ".globl dbi_file_lookup_leave",
    "dbi_file_lookup_leave:",
    "    cmp qword ptr gs:[{pending}], 0",
    "    jne .Lfl_to_dispatcher",
    "    mov rax, qword ptr gs:[{ibl_flags}]",
    "    add al, 0x7f",
    "    sahf",
    "    mov rax, qword ptr gs:[{ibl_rax}]",
    "    mov rcx, qword ptr gs:[{ibl_rcx}]",
    "    jmp qword ptr gs:[{target}]",
    ".globl dbi_file_lookup_end",
    "dbi_file_lookup_end:",
    ".Lfl_miss:",
    "    mov rdx, qword ptr gs:[{ibl_rdx}]",
    "    mov rsi, qword ptr gs:[{scratch}]",
    "    mov rdi, qword ptr gs:[{scratch} + 8]",
    "    mov r8, qword ptr gs:[{scratch} + 16]",
    "    mov r9, qword ptr gs:[{scratch} + 24]",
    ".Lfl_to_dispatcher:",
    "    jmp dbi_ibl_miss",
    pending = const off::SIGNAL_PENDING,
    ibl_rdx = const off::IBL_RDX,
    ibl_rax = const off::IBL_RAX,
    ibl_rcx = const off::IBL_RCX,
    ibl_flags = const off::IBL_FLAGS,
    target = const off::IBL_TARGET,
    scratch = const off::FILE_LOOKUP_SCRATCH,
    hits = const off::FILE_HITS,
    hit_count = const off::FILE_HIT_COUNT,
    queued_hits = const QUEUED_HITS,
    dir = sym DIRECTORY,
    len = const offset_of!(Directory, len),
    tables = const offset_of!(Directory, tables),
    t_base = const offset_of!(Table, base),
    t_span = const offset_of!(Table, span),
    t_blocks = const offset_of!(Table, blocks),
    t_block_count = const offset_of!(Table, block_count),
    t_buckets = const offset_of!(Table, buckets),
    t_bucket_count = const offset_of!(Table, bucket_count),
    t_code_bases = const offset_of!(Table, code_bases),
    block_size = const size_of::<ArchivedBlockEntry>(),
    b_offset = const offset_of!(ArchivedBlockEntry, module_offset),
    b_segment = const offset_of!(ArchivedBlockEntry, segment),
    b_code_offset = const offset_of!(ArchivedBlockEntry, code_offset),
);
