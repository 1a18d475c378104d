//! Counting stubs a file carries for its loops' heads: in a file for runs
//! with traces, a counted exit (a loop's back edge, a trace's exit) leads
//! to the counting stub of its target in its segment, which counts the
//! entry down in a W word of its own and goes on through its go slot, the
//! W word after the counter: to the head's block, or to the head's trace
//! once a run built one. The entry that brings the count to zero leaves
//! for the dispatcher with [`crate::exit_data::KIND_HEAD_HOT`], and the
//! thread records a trace from there. A loop of a file's blocks is then
//! counted without the dispatcher: the first run after `cachetool aot`
//! passed it about 4,300 times for `python3 -c pass`, once for each
//! counted exit, only to count.
//!
//! The code, [`LEN`] bytes, with rcx passing through the thread's lookup
//! scratch slot (flag free):
//!
//! ```text
//!  0  mov gs:[scratch], rcx
//!  9  mov rcx, [rip + counter]
//! 16  lea rcx, [rcx - 1]
//! 20  mov [rip + counter], rcx
//! 27  jrcxz hot
//! 29  mov rcx, gs:[scratch]
//! 38  jmp [rip + go slot]
//! 44  hot: mov rcx, gs:[scratch]
//! 53  a stub (exit_data::STUB_CODE_LEN bytes) and its exit data
//! 101 int3 filler to LEN
//! ```
//!
//! A segment's stubs lie together, LEN bytes apart, in the order of
//! their heads; their counters and go slots likewise, 16 bytes apart.

/// Bytes of a counting stub, filler included.
pub const LEN: usize = 104;

/// Where the jump through the go slot lies in the stub.
pub const JUMP_AT: usize = 38;

/// Where the hot way's exit stub starts; its exit data follows it.
pub const HOT_STUB_AT: usize = 53;

/// Bytes from one stub's counter to the next's: the counter, then the go slot.
pub const COUNTER_STRIDE: usize = 16;
