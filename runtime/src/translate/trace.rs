//! Stitching a trace: the mangled blocks of a recorded path joined into one
//! straight line. Where a block's exit went on to the next recorded block,
//! the exit disappears (a direct jump), is inverted so the recorded way
//! falls through (a conditional branch), or becomes an in-line check of the
//! recorded target (an indirect branch, whose other targets still go
//! through the lookup). Every other exit stays an exit of the trace.

use alloc::vec::Vec;

use crate::translate::encoder;
use iced_x86::Code;

use crate::translate::bb_builder::BasicBlock;
use crate::translate::mangle::{CallForm, MangledOp, Op};

/// Makes `ops`, a block's mangled ops, continue into the block at `next`
/// instead of exiting there; false if its end cannot (a system call, a
/// `loop`, or an exit that does not go to `next`).
fn continue_into(ops: &mut Vec<MangledOp>, next: u64) -> bool {
    let n = ops.len();
    match ops.last().map(|m| &m.op) {
        Some(Op::IndirectExit) => {
            ops[n - 1].op = Op::InlineTarget { expected: next, misses_left: 0 };
            true
        }
        Some(&Op::DirectExit { cond: None, target } | &Op::CallExit { target }) => {
            if target == next {
                ops.pop();
                return true;
            }
            // `jcc taken; jmp fall`, taken the recorded way: `j!cc fall`.
            match n.checked_sub(2).map(|i| &ops[i].op) {
                Some(&Op::DirectExit { cond: Some(cc), target: taken }) if taken == next => {
                    ops.pop();
                    ops[n - 2].op = Op::DirectExit { cond: Some(encoder::negate(cc)), target };
                    true
                }
                _ => false,
            }
        }
        _ => false,
    }
}

/// How a trace's block ends, for the form of its call or return.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum BlockEnd {
    /// A near call returning to `app_ret`.
    Call { app_ret: u64 },
    /// A plain `ret`.
    Ret,
    Other,
}

impl BlockEnd {
    pub(crate) fn of(block: &BasicBlock) -> BlockEnd {
        match block.last_app() {
            Some(i) if i.is_call_near() || i.code() == Code::Call_rm64 => BlockEnd::Call { app_ret: i.next_ip() },
            Some(i) if i.code() == Code::Retnq => BlockEnd::Ret,
            _ => BlockEnd::Other,
        }
    }
}

/// The form of each block's call or return in a trace through blocks
/// ending as `ends` at `tags`. A call and the return to it both inside the
/// trace stay plain: the return is an in-line check, and the CPU's return
/// stack is not pushed by a call no `ret` pops. A call whose return is not
/// in the trace takes `predicted`, so it pairs with the blocks' returns;
/// so does a return from a call made before the trace when the trace ends
/// with it. One the trace goes on past stays an in-line check: ending
/// the trace there made a python3 loop 1.5 times slower than that
/// check (whose cost is a return stack entry the call pushed and no `ret`
/// pops: returns below it mispredict once).
pub(crate) fn call_forms(ends: &[BlockEnd], tags: &[u64], predicted: CallForm) -> Vec<CallForm> {
    let mut forms = alloc::vec![predicted; ends.len()];
    let mut open: Vec<(usize, u64)> = Vec::new();
    for (i, end) in ends.iter().enumerate() {
        match *end {
            BlockEnd::Call { app_ret } => open.push((i, app_ret)),
            BlockEnd::Ret => {
                // A return the trace ends with goes wherever its call
                // pushed to: it pairs with the innermost call open.
                let to = tags.get(i + 1).copied();
                match open.last() {
                    Some(&(call, app_ret)) if to.is_none_or(|t| t == app_ret) => {
                        open.pop();
                        forms[call] = CallForm::Plain;
                        forms[i] = CallForm::Plain;
                    }
                    _ if to.is_some() => forms[i] = CallForm::Plain,
                    _ => {}
                }
            }
            BlockEnd::Other => {}
        }
    }
    forms
}

/// The ops of a trace through `blocks` (each a block's tag and mangled
/// ops, in the recorded order), and how many of the blocks it holds: a
/// block that cannot continue into the next ends the trace.
pub(crate) fn stitch(blocks: Vec<(u64, Vec<MangledOp>)>) -> (Vec<MangledOp>, usize) {
    let tags: Vec<u64> = blocks.iter().map(|(tag, _)| *tag).collect();
    let mut out = Vec::with_capacity(blocks.iter().map(|(_, ops)| ops.len()).sum());
    let mut used = 0;
    for (i, (_, mut ops)) in blocks.into_iter().enumerate() {
        used += 1;
        let goes_on = tags.get(i + 1).is_some_and(|&next| continue_into(&mut ops, next));
        out.append(&mut ops);
        if !goes_on {
            break;
        }
    }
    (out, used)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::translate::mangle::Fixup;
    use iced_x86::ConditionCode;

    fn op(app_pc: u64, op: Op) -> MangledOp {
        MangledOp { app_pc, app_len: 1, op, fixup: Fixup::None }
    }

    fn exits(ops: &[MangledOp]) -> Vec<(Option<ConditionCode>, u64)> {
        ops.iter()
            .filter_map(|m| match m.op {
                Op::DirectExit { cond, target } => Some((cond, target)),
                Op::CallExit { target } => Some((None, target)),
                Op::InlineTarget { expected, .. } => Some((None, expected | 1 << 63)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn calls_returning_inside_a_trace_stay_plain_and_others_are_predicted() {
        use BlockEnd::*;
        let p = CallForm::Predicted;
        // call f (0x10 -> 0x100), f returns to 0x15 in the trace; then a
        // call g whose body the trace ends in.
        let ends = [Call { app_ret: 0x15 }, Ret, Call { app_ret: 0x25 }, Other];
        let tags = [0x10, 0x100, 0x15, 0x200];
        let forms = call_forms(&ends, &tags, p);
        assert!(forms == [CallForm::Plain, CallForm::Plain, p, p]);
        let forms = call_forms(&[Other, Ret, Other], &[0x10, 0x20, 0x30], p);
        assert!(forms == [p, CallForm::Plain, p]);
        let forms = call_forms(&[Other, Ret], &[0x10, 0x20], p);
        assert!(forms == [p, p]);
        // A return that goes elsewhere than its call's return address
        // (a longjmp-like path) pairs with nothing; the trace goes on.
        let forms = call_forms(&[Call { app_ret: 0x15 }, Ret, Other], &[0x10, 0x100, 0x99], p);
        assert!(forms == [p, CallForm::Plain, p]);
        // The trace's last block returns: to its call, if one is open.
        let forms = call_forms(&[Call { app_ret: 0x15 }, Ret], &[0x10, 0x100], p);
        assert!(forms == [CallForm::Plain, CallForm::Plain]);
    }

    #[test]
    fn the_recorded_way_falls_through_and_other_ways_stay_exits() {
        let a = vec![
            op(0x10, Op::Bytes(vec![0x90])),
            op(0x11, Op::DirectExit { cond: Some(ConditionCode::e), target: 0x40 }),
            op(0x11, Op::DirectExit { cond: None, target: 0x13 }),
        ];
        // Taken the jcc's way: inverted to exit on the other.
        let b = vec![op(0x40, Op::DirectExit { cond: None, target: 0x60 })];
        let c = vec![op(0x60, Op::Bytes(vec![0x90])), op(0x61, Op::IndirectExit)];
        let d = vec![op(0x80, Op::SyscallExit { next: 0x82 })];
        let e = vec![op(0x90, Op::Bytes(vec![0x90]))];
        let (ops, used) = stitch(vec![(0x10, a), (0x40, b), (0x60, c), (0x80, d), (0x90, e)]);
        assert_eq!(used, 4, "a system call ends the trace");
        assert_eq!(exits(&ops), [(Some(ConditionCode::ne), 0x13), (None, 0x80 | 1 << 63)]);
        assert!(matches!(ops.last().unwrap().op, Op::SyscallExit { next: 0x82 }));
    }

    #[test]
    fn a_path_the_code_cannot_take_ends_the_trace() {
        let a = vec![op(0x10, Op::DirectExit { cond: None, target: 0x20 })];
        let b = vec![op(0x30, Op::Bytes(vec![0x90]))];
        let (ops, used) = stitch(vec![(0x10, a), (0x30, b)]);
        assert_eq!(used, 1);
        assert_eq!(exits(&ops), [(None, 0x20)]);
    }
}
