//! What the runtime does for clients.

/// A module (executable file mapping) of the application.
#[derive(Clone, Copy, Debug)]
pub struct ModuleRef<'a> {
    pub path: &'a str,
    pub base: u64,
    pub end: u64,
    /// The program itself (not a library, the interpreter or the vDSO).
    pub is_main: bool,
}

pub trait Services: Sync {
    /// `gs:` offset of the thread-context slot the inline helpers spill
    /// rax to while they save the flags.
    fn flags_spill_offset(&self) -> usize;

    /// `len` zeroed, 8-byte aligned bytes that live for the whole run and
    /// that code in the cache reaches with a RIP-relative operand; None when
    /// that space is exhausted.
    fn alloc_near_code(&self, len: usize) -> Option<*mut u8>;

    /// `len` zeroed, 8-byte aligned bytes belonging to the block being
    /// instrumented, reached from its code with RIP-relative operands (see
    /// [`crate::inline::near`]). When the block is persisted its data goes
    /// with it, as it is at that moment, and [`crate::Client::resurrect`]
    /// hands it back in a later run: code that refers to its block's data
    /// this way stays persistable. None when the space is exhausted.
    fn alloc_block_data(&self, len: usize) -> Option<*mut u8>;

    /// The module containing `pc`, if any; `f` sees it while the runtime's
    /// module list is locked.
    fn with_module(&self, pc: u64, f: &mut dyn FnMut(Option<ModuleRef>));

    /// During [`crate::Client::process_exit`] only (elsewhere it sees
    /// nothing): every cache file the run took into use, its module as
    /// it was mapped then, and the file's blocks that hold this client's
    /// data, in module order. A block built in this run is not among them
    /// even where a file holds the same tag (a trace's copy, code built
    /// again): a client merges by tag.
    fn for_each_persisted_file(&self, f: &mut dyn FnMut(ModuleRef, &mut dyn Iterator<Item = crate::PersistedBlock>));

    /// One line for the user at the end of the run (a total, as
    /// DynamoRIO's samples print): dbirun prints it on its own stderr once
    /// the program has exited, never into the program's output, as
    /// `dbirun: CLIENT: TEXT` (with the pid and program when the run had
    /// several processes).
    fn summary(&self, client: &str, text: &str);

    /// Writes a client output file `<logdir>/<client>.<app>.<pid>.<suffix>`
    /// (or with the thread id when `tid` is set); returns false on failure.
    fn write_output(&self, client: &str, suffix: &str, tid: Option<u32>, contents: &[u8]) -> bool;

    /// Appends to the output file [`Services::write_output`] would write
    /// (creating it), for output produced in pieces; false on failure.
    fn append_output(&self, client: &str, suffix: &str, tid: Option<u32>, contents: &[u8]) -> bool;

    /// The calling thread's id.
    fn thread_id(&self) -> u32;

    /// The application's name (its executable's file name).
    fn app_name(&self) -> &str;

    /// The block being instrumented is translated ahead of time (`dbirun
    /// -aot`): it has not run and may never run, in this process or in
    /// the runs that load it. What a client records about execution
    /// (counters, coverage flags, traces) must be recorded by the code it
    /// inserts, never when it instruments; the process translating ahead
    /// of time writes no client output ([`Services::write_output`],
    /// [`Services::summary`] do nothing) and gets no exit events.
    fn ahead_of_time(&self) -> bool {
        false
    }
}
