//! Stitching a trace: the mangled blocks of a recorded path joined into one
//! straight line. Where a block's exit went on to the next recorded block,
//! the exit disappears (a direct jump), is inverted so the recorded way
//! falls through (a conditional branch), or becomes an in-line check of the
//! recorded target (an indirect branch, whose other targets still go
//! through the lookup). Every other exit stays an exit of the trace.

use alloc::vec::Vec;

use crate::translate::encoder;
use crate::translate::mangle::{MangledOp, Op};

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
        Some(&Op::DirectExit { cond: None, target }) => {
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
                Op::InlineTarget { expected, .. } => Some((None, expected | 1 << 63)),
                _ => None,
            })
            .collect()
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
