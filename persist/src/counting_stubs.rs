//! Counting stubs a file carries for its counted exits (a loop's back edge,
//! a trace's exits): in a file for runs with traces, a counted exit's slot
//! leads to its counting stub, which counts the entry down in a W word of
//! its own and goes on to the block the exit goes to; the entry that
//! brings the count to zero leaves for the dispatcher with
//! [`crate::exit_data::KIND_HEAD_HOT`], and the thread records a trace from
//! there. A loop of a file's blocks is then counted without the
//! dispatcher: the first run after `cachetool aot` passed it about 4,300
//! times for `python3 -c pass`, once for each counted exit, only to count.
//!
//! The code, [`LEN`] bytes at an 8-aligned X offset, with rcx passing
//! through the thread's lookup scratch slot (flag free):
//!
//! ```text
//!  0  mov gs:[scratch], rcx
//!  9  mov rcx, [rip + counter]
//! 16  lea rcx, [rcx - 1]
//! 20  mov [rip + counter], rcx
//! 27  jrcxz hot
//! 29  mov rcx, gs:[scratch]
//! 38  jmp rel32 (the target block's code, in the same segment)
//! 43  hot: mov rcx, gs:[scratch]
//! 52  a stub (exit_data::STUB_CODE_LEN bytes) and its exit data
//! 100 int3 filler to LEN
//! ```

/// Bytes of a counting stub, filler included.
pub const LEN: usize = 104;

/// Where the `jmp rel32` to the target block's code lies in the stub.
pub const JUMP_AT: usize = 38;

/// Where the hot way's exit stub starts; its exit data follows it.
pub const HOT_STUB_AT: usize = 52;

