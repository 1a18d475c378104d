//! Decoding a basic block of application code: from a tag (the app pc the
//! block starts at) until a control transfer, a system call, the instruction
//! limit or a page boundary.

use alloc::vec::Vec;

use iced_x86::{Code, Decoder, DecoderError, DecoderOptions, FlowControl, Instruction};

use crate::sys::{page_down, PAGE_SIZE};

/// Most instructions a block holds; long straight-line runs are split.
const MAX_INSTRUCTIONS: usize = 128;
/// The longest x86 instruction.
const MAX_INSTRUCTION_LEN: u64 = 15;

pub struct BasicBlock {
    pub tag: u64,
    /// The decoded application instructions; only the last may transfer
    /// control.
    pub instrs: Vec<Instruction>,
    /// Set when decoding hit bytes that are not a valid instruction at the
    /// pc after the last instruction: executing there must raise SIGILL.
    pub ends_in_invalid: bool,
}

impl BasicBlock {
    /// The app pc just after the block's last instruction.
    pub fn end_pc(&self) -> u64 {
        self.instrs.last().map_or(self.tag, |i| i.next_ip())
    }
}

/// Whether `instr` ends a block.
pub fn ends_block(instr: &Instruction) -> bool {
    instr.flow_control() != FlowControl::Next || matches!(instr.code(), Code::Syscall)
}

fn decode_one(pc: u64) -> Option<Instruction> {
    // Stay inside the page first: the next page may not be mapped. Only an
    // instruction that really straddles the boundary reads past it, and then
    // the next page must be mapped for it to run natively anyway.
    let page_end = page_down(pc) + PAGE_SIZE;
    for limit in [page_end - pc, MAX_INSTRUCTION_LEN] {
        let len = limit.min(MAX_INSTRUCTION_LEN) as usize;
        // SAFETY: [pc, pc + len) is mapped: within pc's page, or the
        // straddling case above.
        let bytes = unsafe { core::slice::from_raw_parts(pc as *const u8, len) };
        let mut decoder = Decoder::with_ip(64, bytes, pc, DecoderOptions::NONE);
        let instr = decoder.decode();
        match decoder.last_error() {
            DecoderError::None => return Some(instr),
            DecoderError::NoMoreBytes if len < MAX_INSTRUCTION_LEN as usize => continue,
            _ => return None,
        }
    }
    None
}

pub fn build(tag: u64) -> BasicBlock {
    let mut block = BasicBlock { tag, instrs: Vec::new(), ends_in_invalid: false };
    let mut pc = tag;
    loop {
        let Some(instr) = decode_one(pc) else {
            block.ends_in_invalid = true;
            break;
        };
        pc = instr.next_ip();
        let last = ends_block(&instr);
        block.instrs.push(instr);
        if last || block.instrs.len() >= MAX_INSTRUCTIONS || page_down(pc) != page_down(tag) {
            break;
        }
    }
    block
}
