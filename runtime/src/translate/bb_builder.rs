//! Decoding a basic block of application code: from a tag (the app pc the
//! block starts at) until a control transfer, a system call, the instruction
//! limit or a page boundary.

use alloc::vec::Vec;

use clients::api::{Item, ItemKind};
use iced_x86::{Code, Decoder, DecoderError, DecoderOptions, FlowControl, Instruction};

use crate::os::app_prot::Access;
use crate::os::sys::{page_down, PAGE_SIZE};

/// Most instructions a block holds; long straight-line runs are split.
const MAX_INSTRUCTIONS: usize = 128;
/// The longest x86 instruction.
const MAX_INSTRUCTION_LEN: u64 = 15;

pub(crate) struct BasicBlock {
    pub(crate) tag: u64,
    /// The decoded application instructions (only the last may transfer
    /// control), and the meta instructions clients add between them.
    pub(crate) items: Vec<Item>,
    /// Set when decoding hit bytes that are not a valid instruction at the
    /// pc after the last instruction: executing there must raise SIGILL.
    pub(crate) ends_in_invalid: bool,
    /// Some page it was decoded from is checked, not write-protected
    /// (`smc::Guard::Sandboxed`).
    pub(crate) sandboxed: bool,
    /// The app bytes `[tag, end_pc())` as decoded: later stages use these,
    /// never the app's memory again.
    pub(crate) bytes: Vec<u8>,
}

impl BasicBlock {
    /// The app pc just after the block's last instruction.
    pub(crate) fn end_pc(&self) -> u64 {
        self.last_app().map_or(self.tag, |i| i.next_ip())
    }

    /// The bytes `instr` (one of the block's app instructions) was decoded from.
    pub(crate) fn app_bytes(&self, instr: &Instruction) -> &[u8] {
        let at = (instr.ip() - self.tag) as usize;
        &self.bytes[at..at + instr.len()]
    }

    pub(crate) fn last_app(&self) -> Option<&Instruction> {
        self.items.iter().rev().find(|i| i.kind == ItemKind::App).map(|i| &i.instr)
    }
}

/// Whether `instr` ends a block.
pub(crate) fn ends_block(instr: &Instruction) -> bool {
    instr.flow_control() != FlowControl::Next || matches!(instr.code(), Code::Syscall)
}

/// Why the app cannot execute at an address: natively, fetching there
/// raises SIGSEGV with this `si_code` and `si_addr`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CodeFault {
    pub(crate) addr: u64,
    pub(crate) si_code: i32,
}

const SEGV_MAPERR: i32 = 1;
const SEGV_ACCERR: i32 = 2;

/// Makes the page holding `addr` ready to be decoded from: the app may
/// execute there, the runtime can read it, and (if the app can also write
/// to it) it is guarded before any byte is read; true if sandboxed.
fn code_page(addr: u64, sp: u64) -> Result<bool, CodeFault> {
    match crate::os::app_prot::access(addr) {
        Access::Executable => {}
        Access::NotExecutable => return Err(CodeFault { addr, si_code: SEGV_ACCERR }),
        Access::Unmapped => return Err(CodeFault { addr, si_code: SEGV_MAPERR }),
    }
    let guard = crate::translate::smc::protect_before_read(addr, sp);
    if !crate::os::safe_read::readable(addr) {
        return Err(CodeFault { addr, si_code: SEGV_MAPERR });
    }
    Ok(guard == crate::translate::smc::Guard::Sandboxed)
}

/// Decodes the instruction at `pc` when it straddles into the next page;
/// Err if that page cannot be executed.
fn decode_straddling(pc: u64, block: &mut BasicBlock, sp: u64) -> Result<Option<Instruction>, CodeFault> {
    block.sandboxed |= code_page(page_down(pc) + PAGE_SIZE, sp)?;
    // SAFETY: the instruction's first bytes are mapped and the next page was
    // just checked.
    let bytes = unsafe { core::slice::from_raw_parts(pc as *const u8, MAX_INSTRUCTION_LEN as usize) };
    let mut decoder = Decoder::with_ip(64, bytes, pc, DecoderOptions::NONE);
    let instr = decoder.decode();
    Ok((decoder.last_error() == DecoderError::None).then_some(instr))
}

/// Decodes the block at `tag` for a thread whose app stack pointer is
/// `sp`; Err when the app cannot execute at `tag` (the fault it gets there).
pub(crate) fn build(tag: u64, sp: u64) -> Result<BasicBlock, CodeFault> {
    let sandboxed = code_page(tag, sp)?;
    // Most blocks are a few instructions: room for 8 at once, not a
    // growth from 4 (a reallocation each).
    let mut block = BasicBlock { tag, items: Vec::with_capacity(8), ends_in_invalid: false, sandboxed, bytes: Vec::new() };
    // Decode within the tag's page: the next page may not be mapped. Only an
    // instruction that really straddles the boundary is read across it.
    let page_end = page_down(tag) + PAGE_SIZE;
    // SAFETY: [tag, page_end) lies in tag's page, which was just checked.
    let bytes = unsafe { core::slice::from_raw_parts(tag as *const u8, (page_end - tag) as usize) };
    let mut decoder = Decoder::with_ip(64, bytes, tag, DecoderOptions::NONE);
    let mut instr = Instruction::default();
    loop {
        let pc = decoder.ip();
        decoder.decode_out(&mut instr);
        let decoded = match decoder.last_error() {
            DecoderError::None => Some(instr),
            DecoderError::NoMoreBytes => match decode_straddling(pc, &mut block, sp) {
                Ok(decoded) => decoded,
                // The instructions before it run; the fault is the
                // straddling instruction's, at the next block.
                Err(_) if !block.items.is_empty() => break,
                Err(fault) => return Err(fault),
            },
            _ => None,
        };
        let Some(instr) = decoded else {
            block.ends_in_invalid = true;
            break;
        };
        let last = ends_block(&instr);
        block.items.push(Item { instr, kind: ItemKind::App });
        if last || block.items.len() >= MAX_INSTRUCTIONS || instr.next_ip() >= page_end {
            break;
        }
    }
    let end = block.end_pc();
    // SAFETY: [tag, end) was just decoded: the pages were checked.
    block.bytes = unsafe { core::slice::from_raw_parts(tag as *const u8, (end - tag) as usize) }.to_vec();
    Ok(block)
}
