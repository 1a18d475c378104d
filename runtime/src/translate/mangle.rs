//! Making a decoded block safe to run from the code cache: direct branches
//! become linkable exits, calls push the *application* return address,
//! `ret` and indirect branches go through the indirect-branch lookup,
//! RIP-relative operands become absolute, and `syscall` exits to the
//! dispatcher.

use alloc::vec::Vec;

use iced_x86::{
    Code, ConditionCode, FlowControl, Instruction, InstructionInfoFactory, MemoryOperand, Register,
};

use clients::api::{Item, ItemKind};

use crate::translate::bb_builder::BasicBlock;
use crate::translate::encoder::{self, hw};
use crate::translate::returns;
use crate::thread::offsets as off;

/// One step of a mangled block, tagged with the app pc it translates.
pub(crate) enum Op {
    /// An application instruction copied byte for byte (its bytes as
    /// decoded: the app's memory is not read again).
    Copy(InstrBytes),
    /// A hand-encoded fixed sequence.
    Bytes(Vec<u8>),
    /// An instruction encoded by iced at its final address.
    Encode(Instruction),
    /// A direct exit to `target`: `jcc` when `cond` is set, else `jmp`.
    /// Linkable to the target's fragment.
    DirectExit { cond: Option<ConditionCode>, target: u64 },
    /// A direct call's jump to its callee (the return address is pushed
    /// before it): a direct exit whose target, even one at or before the
    /// block, is no loop's start, so it makes no trace head.
    CallExit { target: u64 },
    /// `loop`/`loopcc`/`jrcxz` (opcode and prefixes without the rel8):
    /// emitted as `op taken; jmp fall; taken: jmp target`, both exits linkable.
    ShortBranchExit { opcode: Vec<u8>, target: u64, fall: u64 },
    /// Jump to the indirect-branch lookup with the target in rcx.
    IndirectExit,
    /// A `call` over the landing pad that follows (the next ops, up to
    /// `PadEnd`): a predicted return lands there (`returns.rs`).
    CallOverPad,
    /// The end of a landing pad: the `call` before it jumps here, and the
    /// pad's address goes from the stack into the return slot `slot`.
    PadEnd { slot: u16 },
    /// A `ret` through the return slots, after the app return address was
    /// read into rcx (`returns::predicted_return`).
    PredictedReturn,
    /// Inside a trace: continue in line when the indirect branch's target
    /// (in rcx) is `expected`, the pc the recorded path went on at; any
    /// other target goes through the lookup. Flags are not touched. If
    /// `misses_left` is set, it is the address of the trace's budget of
    /// misses (a u64 each miss takes one from): the miss that spends it
    /// leaves the trace as stale (`ExitKind::TraceStale`).
    InlineTarget { expected: u64, misses_left: u64 },
    /// Exit to the dispatcher with the target in rcx, never looking it up:
    /// a recorded block must come back after each block it runs.
    IndirectToDispatcher,
    /// Exit to the dispatcher to perform a system call, resuming at `next`.
    SyscallExit { next: u64 },
    /// A client's clean call: exit to the dispatcher, which calls the
    /// client and resumes right after; only when `only_if` holds, if set.
    CleanCall { client: u16, id: u32, arg: u64, only_if: Option<ConditionCode> },
    /// `mov reg, [rip + base slot]`: the module's base address, from the
    /// slot of the persistable segment the block is emitted into.
    LoadModuleBase { reg: Register },
}

/// The bytes of one instruction (its length is the op's `app_len`).
pub(crate) type InstrBytes = [u8; 15];

/// Addresses below this fit a sign-extended disp32 or imm32: code names
/// them outright (`[disp32]`, `push imm32`), with no register to spill.
pub(crate) const OUTRIGHT_BELOW: u64 = 1 << 31;

/// Whether code for the module at `base` names the module's addresses
/// outright even under module-relative addressing: a module based below
/// [`OUTRIGHT_BELOW`] is a program linked to run at a fixed address (a
/// non-PIE executable), mapped there in every run, and the base-slot form
/// costs a spill, a load and a restore per global access (and five
/// instructions per call). Such code is valid only at this base: the key
/// of its files says so (`persistence::key::key_for`).
pub(crate) fn names_addresses_outright(base: u64) -> bool {
    base < OUTRIGHT_BELOW
}

/// How mangled code refers to application addresses.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Addressing {
    /// As absolute immediates.
    Absolute,
    /// As offsets from the base of the module at `base`, which is loaded
    /// from a slot: the code stays valid wherever the module is mapped.
    ModuleRelative { base: u64 },
}

/// How calls and returns are built.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum CallForm {
    /// A call pushes the app return address; a return goes through the
    /// lookup (traces, whose in-line checks take returns, and recordings).
    Plain,
    /// Blocks' calls and returns in the form the CPU's return stack
    /// predicts (`returns.rs`), where enabled.
    Predicted,
}

impl CallForm {
    /// The form of blocks' calls in this run.
    pub(crate) fn for_blocks() -> CallForm {
        if returns::enabled() { CallForm::Predicted } else { CallForm::Plain }
    }
}

pub(crate) struct MangledOp {
    pub(crate) app_pc: u64,
    /// Length of the application instruction, for `Op::Copy`.
    pub(crate) app_len: u8,
    pub(crate) op: Op,
    /// How the machine state differs from the app's while this op runs, for
    /// translating a fault inside it.
    pub(crate) fixup: Fixup,
}

/// The difference between machine and application state at a point in a
/// fragment: defined with its stored form in `persist` (files carry it).
pub(crate) use persist::translations::Fixup;

/// A stored fixup code, checked against this runtime's thread context.
pub(crate) fn decode_fixup(code: u64) -> Option<Fixup> {
    Fixup::decode(code, core::mem::size_of::<crate::thread::ThreadContext>())
}

/// System calls the runtime has nothing to do with, that do not block
/// (so no restart to emulate) and touch no state the runtime tracks:
/// run in place, without a trip to the dispatcher (file status and
/// directory reads are most of what `ls` or a compiler does).
const IN_PLACE_SYSCALLS: [u32; 27] = [
    3,   // close
    4,   // stat
    5,   // fstat
    6,   // lstat
    8,   // lseek
    21,  // access
    32,  // dup
    39,  // getpid
    63,  // uname
    79,  // getcwd
    96,  // gettimeofday
    97,  // getrlimit
    98,  // getrusage
    102, // getuid
    104, // getgid
    107, // geteuid
    108, // getegid
    110, // getppid
    137, // statfs
    138, // fstatfs
    186, // gettid
    191, // getxattr
    192, // lgetxattr
    217, // getdents64
    228, // clock_gettime
    262, // newfstatat
    332, // statx
];

/// The system call number the block's `syscall` at item `at` is known to
/// make: set by a `mov eax, imm32` right before it.
fn known_syscall_number(items: &[Item], at: usize) -> Option<u32> {
    let prev = items[..at].iter().rev().find(|i| i.kind == ItemKind::App)?;
    let i = &prev.instr;
    let sets_eax = matches!(i.code(), Code::Mov_r32_imm32 | Code::Mov_rm32_imm32)
        && i.op0_kind() == iced_x86::OpKind::Register
        && i.op0_register() == Register::EAX;
    sets_eax.then(|| i.immediate32())
}

struct Mangler<'a> {
    /// The block being mangled (its decoded bytes).
    block: &'a BasicBlock,
    ops: Vec<MangledOp>,
    /// The block ends in a `syscall` that can run in place.
    syscall_in_place: bool,
    /// Made when a scratch register is first chosen: making one takes
    /// two allocations, and most blocks need none.
    info: Option<InstructionInfoFactory>,
    addressing: Addressing,
    calls: CallForm,
    /// Set when module-relative addressing cannot express an address.
    not_relative: bool,
}

/// Scratch candidates for RIP-relative rewriting, in preference order:
/// never rsp, and never rbp/r13, which would need a displacement byte.
const SCRATCH: [Register; 13] = [
    Register::RAX,
    Register::RCX,
    Register::RDX,
    Register::RBX,
    Register::RSI,
    Register::RDI,
    Register::R8,
    Register::R9,
    Register::R10,
    Register::R11,
    Register::R12,
    Register::R14,
    Register::R15,
];

impl Mangler<'_> {
    fn push(&mut self, instr: &Instruction, op: Op) {
        self.push_fixup(instr, op, Fixup::None);
    }

    fn push_fixup(&mut self, instr: &Instruction, op: Op, fixup: Fixup) {
        self.ops.push(MangledOp { app_pc: instr.ip(), app_len: instr.len() as u8, op, fixup });
    }

    fn bytes(&mut self, instr: &Instruction, f: impl FnOnce(&mut Vec<u8>)) {
        let mut b = Vec::with_capacity(16);
        f(&mut b);
        self.push(instr, Op::Bytes(b));
    }

    fn encode(&mut self, instr: &Instruction, new: Instruction) {
        self.push(instr, Op::Encode(new));
    }

    fn scratch_for(&mut self, instr: &Instruction) -> Register {
        let info = self.info.get_or_insert_with(InstructionInfoFactory::new).info(instr);
        let used: Vec<Register> =
            info.used_registers().iter().map(|u| u.register().full_register()).collect();
        *SCRATCH.iter().find(|r| !used.contains(r)).expect("no free scratch register")
    }

    /// An instruction with a `[rip + disp]` operand: the cache is too far
    /// from the app for the displacement to reach, so the address goes
    /// through a spilled scratch register.
    fn rip_relative(&mut self, instr: &Instruction) {
        let addr = instr.ip_rel_memory_address();
        if let Some(off) = self.module_offset(addr) {
            return self.rip_relative_to_module(instr, off);
        }
        if addr < OUTRIGHT_BELOW {
            let mut new = *instr;
            new.set_memory_base(Register::None);
            new.set_memory_displacement64(addr);
            new.set_memory_displ_size(8);
            self.encode(instr, new);
            return;
        }
        match instr.code() {
            Code::Lea_r64_m => {
                self.bytes(instr, |b| encoder::mov_imm64(b, instr.op0_register(), addr));
                return;
            }
            Code::Lea_r32_m => {
                let new = Instruction::with2(Code::Mov_r32_imm32, instr.op0_register(), addr as u32)
                    .expect("mov r32, imm32");
                self.encode(instr, new);
                return;
            }
            _ => {}
        }
        let scratch = self.scratch_for(instr);
        let mut new = *instr;
        new.set_memory_base(scratch);
        new.set_memory_displacement64(0);
        new.set_memory_displ_size(0);
        self.bytes(instr, |b| {
            encoder::store_to_gs(b, off::SPILL, scratch);
            encoder::mov_imm64(b, scratch, addr);
        });
        self.push_fixup(instr, Op::Encode(new), Fixup::Spilled { reg: hw(scratch), slot: off::SPILL as u16 });
        self.bytes(instr, |b| encoder::load_from_gs(b, scratch, off::SPILL));
    }

    /// `addr` as an offset from the module base, under module-relative
    /// addressing (None under absolute addressing, or for an address
    /// named outright; an address too far for an i32 makes the block
    /// unfit for it).
    fn module_offset(&mut self, addr: u64) -> Option<i32> {
        let Addressing::ModuleRelative { base } = self.addressing else { return None };
        if names_addresses_outright(base) && addr < OUTRIGHT_BELOW {
            return None;
        }
        let off = i32::try_from(addr.wrapping_sub(base) as i64).ok();
        self.not_relative |= off.is_none();
        off
    }

    /// The module-relative form of a RIP-relative operand: the base comes
    /// from the segment's slot into a register, the offset becomes the
    /// displacement.
    fn rip_relative_to_module(&mut self, instr: &Instruction, offset: i32) {
        let relative_to = |mut new: Instruction, base: Register| {
            new.set_memory_base(base);
            new.set_memory_displacement64(offset as i64 as u64);
            new.set_memory_displ_size(1);
            new
        };
        if matches!(instr.code(), Code::Lea_r64_m | Code::Lea_r32_m) {
            let dest = instr.op0_register().full_register();
            self.push(instr, Op::LoadModuleBase { reg: dest });
            let mut new = relative_to(*instr, dest);
            new.set_memory_index(Register::None);
            self.encode(instr, new);
            return;
        }
        let scratch = self.scratch_for(instr);
        let spilled = Fixup::Spilled { reg: hw(scratch), slot: off::SPILL as u16 };
        self.bytes(instr, |b| encoder::store_to_gs(b, off::SPILL, scratch));
        self.push_fixup(instr, Op::LoadModuleBase { reg: scratch }, spilled);
        self.push_fixup(instr, Op::Encode(relative_to(*instr, scratch)), spilled);
        self.bytes(instr, |b| encoder::load_from_gs(b, scratch, off::SPILL));
    }

    /// Loads the target of `jmp/call r/m64` into rcx (the app's rcx is
    /// saved first). The operand is evaluated before anything else moves.
    fn load_indirect_target(&mut self, instr: &Instruction) {
        self.bytes(instr, |b| encoder::store_to_gs(b, off::IBL_RCX, Register::RCX));
        let rcx_spilled = Fixup::Spilled { reg: hw(Register::RCX), slot: off::IBL_RCX as u16 };
        if instr.op0_kind() == iced_x86::OpKind::Register {
            let src = instr.op0_register();
            if src != Register::RCX {
                let new = Instruction::with2(Code::Mov_r64_rm64, Register::RCX, src).expect("mov");
                self.encode(instr, new);
            }
        } else if instr.is_ip_rel_memory_operand() {
            let addr = instr.ip_rel_memory_address();
            if let Some(offset) = self.module_offset(addr) {
                self.push_fixup(instr, Op::LoadModuleBase { reg: Register::RCX }, rcx_spilled);
                let mem = MemoryOperand::with_base_displ(Register::RCX, offset as i64);
                let new = Instruction::with2(Code::Mov_r64_rm64, Register::RCX, mem).expect("mov");
                self.push_fixup(instr, Op::Encode(new), rcx_spilled);
                return;
            }
            if addr < OUTRIGHT_BELOW {
                let new = Instruction::with2(Code::Mov_r64_rm64, Register::RCX, MemoryOperand::with_displ(addr, 8)).expect("mov");
                self.push_fixup(instr, Op::Encode(new), rcx_spilled);
                return;
            }
            let mut b = Vec::with_capacity(16);
            encoder::mov_imm64(&mut b, Register::RCX, addr);
            encoder::load_indirect_self(&mut b, Register::RCX);
            self.push_fixup(instr, Op::Bytes(b), rcx_spilled);
        } else {
            let mem = MemoryOperand::new(
                instr.memory_base(),
                instr.memory_index(),
                instr.memory_index_scale(),
                instr.memory_displacement64() as i64,
                instr.memory_displ_size(),
                false,
                instr.segment_prefix(),
            );
            let new = Instruction::with2(Code::Mov_r64_rm64, Register::RCX, mem).expect("mov");
            self.push_fixup(instr, Op::Encode(new), rcx_spilled);
        }
    }

    /// Pushes the app return address of a call (which may fault on a bad
    /// stack: the push sequence moves rsp first). In the predicted form
    /// (`returns.rs`) a real `call` over a landing pad pushes first, and
    /// the app return address takes the place of the pad's.
    fn push_return_address(&mut self, instr: &Instruction, fixup_before: Fixup) {
        let next = instr.next_ip();
        let slot = if self.calls == CallForm::Predicted { returns::slot_of(next) } else { None };
        let offset = self.module_offset(next);
        if offset.is_none() && (slot.is_none() || encoder::push_imm64_is_single(next)) {
            if let Some(slot) = slot {
                self.call_over_pad(instr, next, slot, fixup_before);
            }
            let mut b = Vec::with_capacity(encoder::push_imm64_len(next));
            encoder::push_imm64(&mut b, next);
            let fixup = match fixup_before {
                Fixup::None if !encoder::push_imm64_is_single(next) => Fixup::RspMoved(-8),
                other => other,
            };
            self.push_fixup(instr, Op::Bytes(b), fixup);
            if let Some(slot) = slot {
                let after = match fixup_before { Fixup::None => Fixup::RspMoved(-8), other => other };
                let mut b = Vec::with_capacity(16);
                returns::return_address_to_slot_imm(&mut b, slot, next);
                self.push_fixup(instr, Op::Bytes(b), after);
            }
            return;
        }
        // rax = the return address, pushed; only the push (or the call
        // before it) can fault.
        let rax = Register::RAX;
        let spill = off::SPILL as u16 + 8;
        let spilled = match fixup_before {
            Fixup::Spilled { reg, slot: s } => Fixup::Spilled2 { reg, slot: s, reg2: hw(rax), slot2: spill },
            _ => Fixup::Spilled { reg: hw(rax), slot: spill },
        };
        self.bytes(instr, |b| encoder::store_to_gs(b, spill as usize, rax));
        match offset {
            Some(offset) => {
                self.push_fixup(instr, Op::LoadModuleBase { reg: rax }, spilled);
                let lea = Instruction::with2(Code::Lea_r64_m, Register::RAX, MemoryOperand::with_base_displ(Register::RAX, offset as i64))
                    .expect("lea");
                self.push_fixup(instr, Op::Encode(lea), spilled);
            }
            None => {
                let mut b = Vec::with_capacity(encoder::MOV_IMM64_LEN);
                encoder::mov_imm64(&mut b, rax, next);
                self.push_fixup(instr, Op::Bytes(b), spilled);
            }
        }
        if let Some(slot) = slot {
            self.call_over_pad(instr, next, slot, spilled);
        }
        self.push_fixup(instr, Op::Bytes({
            let mut b = Vec::with_capacity(2);
            encoder::push(&mut b, rax);
            b
        }), spilled);
        let after = match fixup_before { Fixup::None => Fixup::RspMoved(-8), other => other };
        if let Some(slot) = slot {
            let mut b = Vec::with_capacity(encoder::GS_MOV_LEN);
            returns::return_address_to_slot(&mut b, slot);
            self.push_fixup(instr, Op::Bytes(b), after);
        }
        self.push_fixup(instr, Op::Bytes({
            let mut b = Vec::with_capacity(encoder::GS_MOV_LEN);
            encoder::load_from_gs(&mut b, rax, spill as usize);
            b
        }), after);
    }

    /// `call` over a landing pad, the pad (a direct exit to the block at
    /// `next`, where a predicted return lands with the app's state) and the
    /// move of the pad's address into `slot`. Only the `call` can fault.
    fn call_over_pad(&mut self, instr: &Instruction, next: u64, slot: u16, fixup: Fixup) {
        self.push_fixup(instr, Op::CallOverPad, fixup);
        self.ops.push(MangledOp { app_pc: next, app_len: 0, op: Op::DirectExit { cond: None, target: next }, fixup: Fixup::None });
        self.push_fixup(instr, Op::PadEnd { slot }, fixup);
    }

    fn last_instruction(&mut self, instr: &Instruction) {
        let next = instr.next_ip();
        match instr.flow_control() {
            FlowControl::UnconditionalBranch if instr.is_jmp_short_or_near() => {
                self.push(instr, Op::DirectExit { cond: None, target: instr.near_branch_target() });
            }
            FlowControl::ConditionalBranch if instr.is_jcc_short_or_near() => {
                self.push(instr, Op::DirectExit { cond: Some(instr.condition_code()), target: instr.near_branch_target() });
                self.push(instr, Op::DirectExit { cond: None, target: next });
            }
            FlowControl::ConditionalBranch
                if instr.is_loop() || instr.is_loopcc() || instr.is_jcx_short() =>
            {
                // These exist only with rel8: keep the original prefixes
                // (address size) and opcode, and let emit place the exits.
                let orig = self.block.app_bytes(instr);
                let opcode = orig[..orig.len() - 1].to_vec();
                self.push(instr, Op::ShortBranchExit { opcode, target: instr.near_branch_target(), fall: next });
            }
            FlowControl::Call if instr.is_call_near() => {
                self.push_return_address(instr, Fixup::None);
                self.push(instr, Op::CallExit { target: instr.near_branch_target() });
            }
            FlowControl::Return if instr.code() == Code::Retnq && self.calls == CallForm::Predicted => {
                self.bytes(instr, |b| encoder::store_to_gs(b, off::IBL_RCX, Register::RCX));
                let rcx_spilled = Fixup::Spilled { reg: hw(Register::RCX), slot: off::IBL_RCX as u16 };
                self.push_fixup(instr, Op::Bytes({
                    let mut b = Vec::with_capacity(4);
                    returns::read_return_address(&mut b);
                    b
                }), rcx_spilled);
                // Past the read, only the write of the pad's address over
                // the app's can fault (a stack the app made read-only).
                let both = Fixup::Spilled2 { reg: hw(Register::RCX), slot: off::IBL_RCX as u16, reg2: hw(Register::RAX), slot2: off::IBL_RAX as u16 };
                self.push_fixup(instr, Op::PredictedReturn, both);
            }
            FlowControl::Return if matches!(instr.code(), Code::Retnq | Code::Retnq_imm16) => {
                self.bytes(instr, |b| encoder::store_to_gs(b, off::IBL_RCX, Register::RCX));
                // Only the pop can fault (a bad stack): rcx is spilled then.
                let mut b = Vec::with_capacity(1 + encoder::LEA_RSP_LEN);
                encoder::pop(&mut b, Register::RCX);
                if instr.code() == Code::Retnq_imm16 {
                    encoder::lea_rsp(&mut b, instr.immediate16() as i32);
                }
                self.push_fixup(instr, Op::Bytes(b), Fixup::Spilled { reg: hw(Register::RCX), slot: off::IBL_RCX as u16 });
                self.push(instr, Op::IndirectExit);
            }
            FlowControl::IndirectBranch if instr.code() == Code::Jmp_rm64 => {
                self.load_indirect_target(instr);
                self.push(instr, Op::IndirectExit);
            }
            FlowControl::IndirectCall if instr.code() == Code::Call_rm64 => {
                self.load_indirect_target(instr);
                self.push_return_address(instr, Fixup::Spilled { reg: hw(Register::RCX), slot: off::IBL_RCX as u16 });
                self.push(instr, Op::IndirectExit);
            }
            FlowControl::XbeginXabortXend
                if matches!(instr.code(), Code::Xbegin_rel16 | Code::Xbegin_rel32) => {
                // Transactions may always abort: report an abort with no
                // retry hint (eax = 0) and continue at the fallback.
                self.bytes(instr, |b| encoder::mov_imm32(b, Register::RAX, 0));
                self.push(instr, Op::DirectExit { cond: None, target: instr.near_branch_target() });
            }
            _ if instr.code() == Code::Syscall && self.syscall_in_place => {
                self.push(instr, Op::Copy(self.instr_bytes(instr)));
                self.push(instr, Op::DirectExit { cond: None, target: next });
            }
            _ if instr.code() == Code::Syscall => {
                self.push(instr, Op::SyscallExit { next });
            }
            _ => {
                // Anything else (int3, ud2, hlt, far transfers, limits) runs
                // as is; if execution continues it falls through. A trap
                // (int3) reports the pc after it: the exit translates to next.
                self.middle_instruction(instr);
                self.ops.push(MangledOp {
                    app_pc: next,
                    app_len: 0,
                    op: Op::DirectExit { cond: None, target: next },
                    fixup: Fixup::None,
                });
            }
        }
    }

    /// A client's meta instruction (emitted as is) or clean call; it
    /// translates to the app instruction it precedes.
    fn meta(&mut self, app_pc: u64, item: &Item) {
        let op = match item.kind {
            ItemKind::CleanCall { client, id, arg, only_if } => Op::CleanCall { client, id, arg, only_if },
            ItemKind::AppAddress => {
                let reg = item.instr.op0_register();
                match self.module_offset(item.instr.immediate64()) {
                    Some(off) => {
                        self.ops.push(MangledOp { app_pc, app_len: 0, op: Op::LoadModuleBase { reg }, fixup: Fixup::None });
                        let mem = MemoryOperand::with_base_displ(reg, off as i64);
                        Op::Encode(Instruction::with2(Code::Lea_r64_m, reg, mem).expect("lea"))
                    }
                    None => Op::Encode(item.instr),
                }
            }
            _ => Op::Encode(item.instr),
        };
        self.ops.push(MangledOp { app_pc, app_len: 0, op, fixup: Fixup::None });
    }

    fn instr_bytes(&self, instr: &Instruction) -> InstrBytes {
        let mut bytes = [0u8; 15];
        let app = self.block.app_bytes(instr);
        bytes[..app.len()].copy_from_slice(app);
        bytes
    }

    fn middle_instruction(&mut self, instr: &Instruction) {
        if instr.is_ip_rel_memory_operand() {
            self.rip_relative(instr);
        } else {
            self.push(instr, Op::Copy(self.instr_bytes(instr)));
        }
    }
}

/// The mangled ops of `block`; None if `addressing` is module-relative and
/// some address cannot be expressed that way.
pub(crate) fn mangle(block: &BasicBlock, addressing: Addressing, calls: CallForm) -> Option<Vec<MangledOp>> {
    let mut m = Mangler {
        block,
        ops: Vec::with_capacity(block.items.len() + 4),
        syscall_in_place: false,
        info: None,
        addressing,
        calls,
        not_relative: false,
    };
    let last_app = block.items.iter().rposition(|i| i.kind == ItemKind::App);
    let ends_in_cti = last_app.is_some_and(|i| crate::translate::bb_builder::ends_block(&block.items[i].instr));
    // Meta instructions after a final control transfer run before it.
    let (body, tail_meta) = match (last_app, ends_in_cti) {
        (Some(i), true) => (&block.items[..i], &block.items[i + 1..]),
        _ => (&block.items[..], &block.items[..0]),
    };
    let end = block.end_pc();
    let next_app_pc = |from: usize, items: &[Item]| {
        items[from..].iter().find(|i| i.kind == ItemKind::App).map_or(end, |i| i.instr.ip())
    };
    for (k, item) in body.iter().enumerate() {
        match item.kind {
            ItemKind::App => m.middle_instruction(&item.instr),
            _ => m.meta(next_app_pc(k, body), item),
        }
    }
    if let (Some(i), true) = (last_app, ends_in_cti) {
        let cti = &block.items[i].instr;
        m.syscall_in_place = cti.code() == Code::Syscall
            && known_syscall_number(&block.items, i).is_some_and(|n| IN_PLACE_SYSCALLS.contains(&n));
        for item in tail_meta {
            m.meta(cti.ip(), item);
        }
        m.last_instruction(cti);
    }
    if block.ends_in_invalid {
        // Raise SIGILL at the invalid instruction's pc, as natively.
        m.ops.push(MangledOp { app_pc: end, app_len: 0, op: Op::Bytes({
            let mut b = Vec::with_capacity(2);
            encoder::ud2(&mut b);
            b
        }), fixup: Fixup::None });
    } else if !ends_in_cti {
        m.ops.push(MangledOp { app_pc: end, app_len: 0, op: Op::DirectExit { cond: None, target: end }, fixup: Fixup::None });
    }
    if let Addressing::ModuleRelative { base } = addressing {
        let far = |t: u64| i32::try_from(t.wrapping_sub(base) as i64).is_err();
        m.not_relative |= m.ops.iter().any(|op| match op.op {
            Op::DirectExit { target, .. } | Op::CallExit { target } | Op::SyscallExit { next: target } => far(target),
            Op::ShortBranchExit { target, fall, .. } => far(target) || far(fall),
            _ => false,
        });
    }
    (!m.not_relative).then_some(m.ops)
}
