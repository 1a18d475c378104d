//! Decoding a basic block of application code: from a tag (the app pc the
//! block starts at) until a control transfer, a system call, the instruction
//! limit or a page boundary.

use alloc::vec::Vec;

use clients::api::{Item, ItemKind};
use iced_x86::{Code, Decoder, DecoderError, DecoderOptions, FlowControl, Instruction};

use crate::sys::{page_down, PAGE_SIZE};

/// Most instructions a block holds; long straight-line runs are split.
const MAX_INSTRUCTIONS: usize = 128;
/// The longest x86 instruction.
const MAX_INSTRUCTION_LEN: u64 = 15;

pub struct BasicBlock {
    pub tag: u64,
    /// The decoded application instructions (only the last may transfer
    /// control), and the meta instructions clients add between them.
    pub items: Vec<Item>,
    /// Set when decoding hit bytes that are not a valid instruction at the
    /// pc after the last instruction: executing there must raise SIGILL.
    pub ends_in_invalid: bool,
}

impl BasicBlock {
    /// The app pc just after the block's last instruction.
    pub fn end_pc(&self) -> u64 {
        self.last_app().map_or(self.tag, |i| i.next_ip())
    }

    pub fn last_app(&self) -> Option<&Instruction> {
        self.items.iter().rev().find(|i| i.kind == ItemKind::App).map(|i| &i.instr)
    }
}

/// Whether `instr` ends a block.
pub fn ends_block(instr: &Instruction) -> bool {
    instr.flow_control() != FlowControl::Next || matches!(instr.code(), Code::Syscall)
}

/// Decodes the instruction at `pc` when it straddles into the next page.
fn decode_straddling(pc: u64) -> Option<Instruction> {
    crate::smc::before_read(page_down(pc) + PAGE_SIZE);
    // SAFETY: the instruction's first bytes are mapped and it continues on
    // the next page, which must be mapped for it to run natively anyway.
    let bytes = unsafe { core::slice::from_raw_parts(pc as *const u8, MAX_INSTRUCTION_LEN as usize) };
    let mut decoder = Decoder::with_ip(64, bytes, pc, DecoderOptions::NONE);
    let instr = decoder.decode();
    (decoder.last_error() == DecoderError::None).then_some(instr)
}

/// Reads one byte at `addr` so that unreadable code faults here, in a known
/// place, before any slice over it exists.
fn probe(addr: u64) {
    // SAFETY: a plain load; if it faults, the signal handler takes over
    // (the dispatcher marked this thread as decoding).
    unsafe { core::arch::asm!("mov {0:l}, byte ptr [{0}]", inout(reg) addr => _, options(nostack, readonly, preserves_flags)) };
}

pub fn build(tag: u64) -> BasicBlock {
    probe(tag);
    crate::smc::before_read(page_down(tag));
    let mut block = BasicBlock { tag, items: Vec::new(), ends_in_invalid: false };
    // Decode within the tag's page: the next page may not be mapped. Only an
    // instruction that really straddles the boundary is read across it.
    let page_end = page_down(tag) + PAGE_SIZE;
    // SAFETY: [tag, page_end) lies in tag's page, which holds the code
    // about to run.
    let bytes = unsafe { core::slice::from_raw_parts(tag as *const u8, (page_end - tag) as usize) };
    let mut decoder = Decoder::with_ip(64, bytes, tag, DecoderOptions::NONE);
    let mut instr = Instruction::default();
    loop {
        let pc = decoder.ip();
        decoder.decode_out(&mut instr);
        let decoded = match decoder.last_error() {
            DecoderError::None => Some(instr),
            DecoderError::NoMoreBytes => decode_straddling(pc),
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
    block
}
