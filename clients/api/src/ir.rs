//! The block a client instruments: application instructions in order,
//! with the meta instructions clients add between them.

use alloc::vec::Vec;

use iced_x86::{Code, ConditionCode, Instruction, Register};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ItemKind {
    /// An application instruction: the runtime translates it.
    App,
    /// Added by a client: emitted as is, before the next app instruction.
    Meta,
    /// A clean call into client `client`'s [`crate::Client::clean_call`]
    /// with `id` and `arg`: the runtime saves the whole machine state,
    /// switches to its own stack, calls, restores and continues. With
    /// `only_if`, the call happens only when that condition holds on the
    /// flags at this point (the flags themselves are preserved).
    CleanCall { client: u16, id: u32, arg: u64, only_if: Option<ConditionCode> },
    /// Loads an application address into a 64-bit register without
    /// touching the flags; `instr` is `mov reg, imm64` with the address.
    /// The runtime emits it as that `mov`, or, in persistable code, relative
    /// to the module's base, so the code stays valid when the module is
    /// mapped elsewhere in a later run (an immediate would not).
    AppAddress,
}

#[derive(Clone, Debug)]
pub struct Item {
    pub instr: Instruction,
    pub kind: ItemKind,
}

impl Item {
    pub fn meta(instr: Instruction) -> Item {
        Item { instr, kind: ItemKind::Meta }
    }

    /// `reg` (a 64-bit register) = the application address `addr` (see
    /// [`ItemKind::AppAddress`]).
    pub fn app_address(reg: Register, addr: u64) -> Item {
        let instr = Instruction::with2(Code::Mov_r64_imm64, reg, addr).expect("mov r64, imm64");
        Item { instr, kind: ItemKind::AppAddress }
    }
}

pub struct BlockIr {
    /// The app pc the block starts at.
    pub tag: u64,
    pub items: Vec<Item>,
    /// Which client is instrumenting (set by the runtime): clean calls go back
    /// to it.
    pub current_client: u16,
    /// The block is being added to a trace (the runtime builds no traces
    /// yet, so always false).
    pub for_trace: bool,
    /// The block is being re-created to translate a fault, not to run: the
    /// client must add exactly what it added the first time (always false
    /// today: translations are recorded when blocks are built).
    pub translating: bool,
}

impl BlockIr {
    pub fn new(tag: u64, app: impl IntoIterator<Item = Instruction>) -> BlockIr {
        BlockIr {
            tag,
            items: app.into_iter().map(|instr| Item { instr, kind: ItemKind::App }).collect(),
            current_client: 0,
            for_trace: false,
            translating: false,
        }
    }

    /// The application instructions, in order.
    pub fn app_instructions(&self) -> impl Iterator<Item = &Instruction> {
        self.items.iter().filter(|i| i.kind == ItemKind::App).map(|i| &i.instr)
    }

    pub fn app_count(&self) -> usize {
        self.app_instructions().count()
    }

    /// Indices (into `items`) of the application instructions.
    pub fn app_indices(&self) -> Vec<usize> {
        (0..self.items.len()).filter(|&i| self.items[i].kind == ItemKind::App).collect()
    }

    /// Inserts a clean call to this client's `clean_call(id, arg)` before
    /// item `at` (see [`ItemKind::CleanCall`]).
    pub fn insert_clean_call(&mut self, at: usize, id: u32, arg: u64, only_if: Option<ConditionCode>) {
        let kind = ItemKind::CleanCall { client: self.current_client, id, arg, only_if };
        self.items.insert(at, Item { instr: Instruction::default(), kind });
    }

    /// Inserts client items (meta instructions, app addresses) before item
    /// `at`, like [`BlockIr::insert_meta`].
    pub fn insert(&mut self, at: usize, items: impl IntoIterator<Item = Item>) {
        let items: Vec<Item> = items.into_iter().collect();
        self.items.splice(at..at, items);
    }

    /// Inserts `meta` before item `at` (`items.len()` appends after the
    /// last; the runtime still places those before the block's exit).
    pub fn insert_meta(&mut self, at: usize, meta: impl IntoIterator<Item = Instruction>) {
        let items: Vec<Item> = meta.into_iter().map(|instr| Item { instr, kind: ItemKind::Meta }).collect();
        self.items.splice(at..at, items);
    }
}
