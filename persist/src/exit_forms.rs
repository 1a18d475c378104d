//! How a persisted exit's branch is written in its segment's X zone: a
//! jump through its W slot (which the loader and the runtime relink), or
//! one of the direct forms a segment's writer uses for an exit whose
//! target lies later in the same segment (those skip the slot, so only
//! the code tells where such an exit goes).

use crate::exit_data::{self, StoredExit};

/// How a direct exit's branch is written in X.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DirectForm {
    /// `jmp rel32` (and a no-op) at `at` to `to` (X offsets).
    Jump { at: usize, to: i64 },
    /// `jcc rel32` (and two bytes of no-ops) of condition `cc` at `at` to `to`.
    Conditional { at: usize, cc: u8, to: i64 },
    /// No-ops: the code runs on past its end at `end` into the code that
    /// starts at the next multiple of the code alignment (4).
    RunsOn { end: i64 },
}

impl DirectForm {
    /// The X offset the code goes on at when the exit is taken, if that is
    /// before `code_len` (a segment's code; a conditional exit's slot
    /// trampolines lie after it and go on through the slot).
    pub fn continues_at(self, code_len: u32) -> Option<u32> {
        let at = match self {
            DirectForm::Jump { to, .. } | DirectForm::Conditional { to, .. } => to,
            DirectForm::RunsOn { end } => end.checked_add(3)? & !3,
        };
        u32::try_from(at).ok().filter(|&at| at < code_len)
    }
}

/// The direct form of the exit whose stub is at X offset `stub`, and its
/// slot's X-relative offset; None when its branch goes through the slot
/// (or the stub's data names no branch, or lies past `x`).
pub fn direct_form(x: &[u8], stub: u32) -> Option<(DirectForm, i64)> {
    let data_at = stub as usize + exit_data::STUB_CODE_LEN;
    let stored = x.get(data_at..).and_then(StoredExit::from_bytes)?;
    let (branch, slot) = stored.branch_and_slot()?;
    let (field, slot) = (data_at as i64 + branch as i64, data_at as i64 + slot as i64);
    let form = usize::try_from(field).ok().and_then(|f| exit_form(x, f))?;
    Some((form, slot))
}

/// The direct form of the exit branch whose rel32 field is at `field`
/// (as its stub's data locates it); None for its slot forms.
fn exit_form(x: &[u8], field: usize) -> Option<DirectForm> {
    let to = i32::from_le_bytes(x.get(field..field + 4)?.try_into().ok()?) as i64 + field as i64 + 4;
    // A block's code may start with its exit's branch (at 0 of X).
    let before = field.checked_sub(2).and_then(|i| x.get(i)).copied();
    match (before, *x.get(field.checked_sub(1)?)?, *x.get(field)?) {
        (_, 0xe9, _) => Some(DirectForm::Jump { at: field - 1, to }),
        (Some(0x0f), op, _) if op & 0xf0 == 0x80 => Some(DirectForm::Conditional { at: field - 2, cc: op & 0xf, to }),
        // The runtime's no-ops (`encoder::nops`) from the branch on.
        (_, 0x90 | 0x66, _) | (_, 0x0f, 0x1f) => Some(DirectForm::RunsOn { end: field as i64 + 5 }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    const STUB: usize = exit_data::STUB_CODE_LEN;

    /// A block's code with its exit at X offset 0 written `form_bytes`,
    /// then the exit's stub at 64 (its data names the branch's rel32 field
    /// at `field`, and a slot at the zone's start).
    fn zone_with_exit(form_bytes: &[u8], field: u64) -> Vec<u8> {
        let mut x = alloc::vec![0xccu8; 64 + STUB + exit_data::LEN];
        x[..form_bytes.len()].copy_from_slice(form_bytes);
        let data_at = (64 + STUB) as u64;
        let stored = StoredExit::relative(data_at, exit_data::KIND_DIRECT, 0x1234, 0, field, 0);
        x[64 + STUB..].copy_from_slice(&stored.to_bytes());
        x
    }
    #[test]
    fn direct_forms_say_where_the_code_goes_on() {
        // jmp +0x20 (to 0x25), nop.
        let x = zone_with_exit(&[0xe9, 0x20, 0, 0, 0, 0x90], 1);
        let (form, _) = direct_form(&x, 64).unwrap();
        assert_eq!(form, DirectForm::Jump { at: 0, to: 0x25 });
        assert_eq!(form.continues_at(0x40), Some(0x25));
        // Past the code: a slot trampoline, which goes on through the slot.
        assert_eq!(form.continues_at(0x20), None);
        // jne +0x10 (to 0x16).
        let x = zone_with_exit(&[0x0f, 0x85, 0x10, 0, 0, 0], 2);
        assert_eq!(direct_form(&x, 64).unwrap().0, DirectForm::Conditional { at: 0, cc: 5, to: 0x16 });
        // No-ops in place of `jmp rel32; nop`: the next block starts at the
        // next multiple of 4 after the six bytes.
        let x = zone_with_exit(&[0x66, 0x0f, 0x1f, 0x44, 0, 0], 1);
        let (form, _) = direct_form(&x, 64).unwrap();
        assert_eq!(form, DirectForm::RunsOn { end: 6 });
        assert_eq!(form.continues_at(0x40), Some(8));
        // Through the slot (`jmp [rip + slot]`): not direct.
        let x = zone_with_exit(&[0xff, 0x25, 0, 0, 0, 0], 2);
        assert_eq!(direct_form(&x, 64), None);
        // A stub past the zone names nothing.
        assert_eq!(direct_form(&x, 4096), None);
    }
}
