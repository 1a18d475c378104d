//! The `Client` trait and its events.

use alloc::string::String;
use alloc::vec::Vec;

use crate::ir::BlockIr;
use crate::services::Services;

/// What a client is, for cache keys: name, version and a hash of the
/// options that change the code it emits. Runs differing there keep
/// separate persisted files; options that only change what the client
/// reports (`bbcount -top N`) stay out, so such runs share files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientIdentity {
    pub name: &'static str,
    pub version: u32,
    pub code_options_hash: u64,
}

/// What a client says about a block it instrumented.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EmitFlags {
    /// The runtime keeps a full translation table for the block (exact
    /// application state at every instruction, even inside meta code).
    pub store_translations: bool,
    /// The block's instrumented code may be written to a persisted cache
    /// file and reused by a later run.
    pub persistable: bool,
}

impl EmitFlags {
    pub const DEFAULT: EmitFlags = EmitFlags { store_translations: false, persistable: false };
    pub const PERSISTABLE: EmitFlags = EmitFlags { store_translations: false, persistable: true };
}

/// A block of a persisted file being taken into use: its tag (app pc in
/// this run) and the data the client allocated for it with
/// [`Services::alloc_block_data`] (null if none), as it was persisted.
#[derive(Clone, Copy, Debug)]
pub struct PersistedBlock {
    pub tag: u64,
    pub data: *mut u8,
}

/// An instrumentation client. Events run on application threads (with the
/// runtime's locks held for `basic_block`), so they must be quick and must
/// not call back into the application.
pub trait Client: Send + Sync {
    fn identity(&self) -> ClientIdentity;

    /// Instruments one block. `tls` is the `gs:` offset of this client's
    /// first raw TLS slot ([`crate::TLS_SLOTS_PER_CLIENT`] of them).
    fn basic_block(&self, block: &mut BlockIr, tls: usize, services: &dyn Services) -> EmitFlags;

    /// A thread starts; `slots` are its raw TLS slots (zeroed).
    fn thread_init(&self, _slots: &mut [u64], _services: &dyn Services) {}

    /// A thread ends (also called for every thread still alive when the
    /// process exits).
    fn thread_exit(&self, _slots: &mut [u64], _services: &dyn Services) {}

    /// The process exits: write results.
    fn process_exit(&self, _services: &dyn Services) {}

    /// Persistence: how many leading bytes of each block's data
    /// ([`Services::alloc_block_data`]) record execution (a counter, a
    /// coverage flag). A file holds them zeroed, so a later run starts
    /// them from zero without writing its pages at load; the rest (what
    /// the client noted about the block) is kept as it was.
    fn block_data_run_state(&self) -> usize {
        0
    }

    /// Persistence: whether every aligned 8-byte word of this client's
    /// block data always holds a canonical address's bits (its top 17
    /// bits alike): counts, flags, lengths, pointers; never arbitrary
    /// bits. A file's exit slots, stored with their top bits set, can
    /// then be told from the data: the runtime rebases them a page at a
    /// time as code first jumps through them instead of all at load.
    fn block_data_is_plain(&self) -> bool {
        false
    }

    /// Persistence, as a file of the module at `module` is written: the
    /// client's read-only data for it (e.g. a table its persisted code
    /// indexes, or its base address to check on resurrection).
    fn persist_ro(&self, _module: u64, _out: &mut Vec<u8>) {}

    /// Persistence: executable code of the client's own that the persisted
    /// blocks call (placed in an executable zone of the file).
    fn persist_rx(&self, _module: u64, _out: &mut Vec<u8>) {}

    /// Persistence: writable data the persisted code uses beyond its blocks'
    /// own data (placed in a writable zone of the file).
    fn persist_rw(&self, _module: u64, _out: &mut Vec<u8>) {}

    /// Persistence: adjusts the file's copy of a block's code (starting at
    /// app pc `tag`), e.g. to point it at the client's zones.
    fn persist_patch(&self, _module: u64, _tag: u64, _code: &mut [u8]) {}

    /// A persisted file of the module now at `module` is about to be used:
    /// the client sees its read-only, executable and writable data again
    /// and every block of the file with that block's data, and may reject
    /// the file (return false), e.g. when its base address changed. The
    /// blocks come lazily: a client that needs none of them pays nothing
    /// (a client that only reports what ran reads them at exit instead,
    /// [`Services::for_each_persisted_file`]).
    fn resurrect(
        &self,
        _module: u64,
        _ro: &[u8],
        _rx: &[u8],
        _rw: &mut [u8],
        _blocks: &mut dyn Iterator<Item = PersistedBlock>,
        _services: &dyn Services,
    ) -> bool {
        true
    }

    /// A clean call this client inserted runs (on the runtime's stack, with
    /// the application's state saved in `call`).
    fn clean_call(&self, _id: u32, _arg: u64, _call: &mut CleanCallContext, _services: &dyn Services) {}
}

/// The machine state at a clean call, and the calling thread's raw TLS
/// slots for this client. Changes to `gprs` and `rflags` take effect when the
/// call returns.
pub struct CleanCallContext<'a> {
    /// Hardware order: rax, rcx, rdx, rbx, rsp, rbp, rsi, rdi, r8..r15.
    pub gprs: &'a mut [u64; 16],
    pub rflags: &'a mut u64,
    pub tls: &'a mut [u64],
    /// The calling thread's id.
    pub tid: u32,
}

/// A client's options could not be accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionError(pub String);
