//! Counting stubs a file carries for its loops' heads: in a file for runs
//! with traces, a counted exit (a loop's back edge, a trace's exit) leads
//! to the counting stub of its target in its segment. The stub first
//! jumps through its go slot, the W word after its counter: to its own
//! counting code, or to the head's trace once a run built one (entries
//! then skip the count, as exits linked to a trace do). The counting code
//! counts the entry down and goes on to the head's block; the entry that
//! brings the count to zero leaves for the dispatcher with
//! [`crate::exit_data::KIND_HEAD_HOT`], and the thread records a trace
//! from there. A loop of a file's blocks is then counted without the
//! dispatcher: the first run after `cachetool aot` passed it about 3,100
//! times more for `python3 -c pass`, each counted exit's first use.
//!
//! The code, [`LEN`] bytes, with rcx passing through the thread's lookup
//! scratch slot (flag free):
//!
//! ```text
//!  0  jmp [rip + go slot]          (to 6, or to the head's trace)
//!  6  mov gs:[scratch], rcx
//! 15  mov rcx, [rip + counter]
//! 22  lea rcx, [rcx - 1]
//! 26  mov [rip + counter], rcx
//! 33  jrcxz hot
//! 35  mov rcx, gs:[scratch]
//! 44  jmp rel32 (the head block's code, in the same segment)
//! 49  hot: mov rcx, gs:[scratch]
//! 58  a stub (exit_data::STUB_CODE_LEN bytes) and its exit data
//! 106 int3 filler to LEN
//! ```
//!
//! A segment's stubs lie together, LEN bytes apart, in the order of
//! their heads; their counters and go slots likewise, 16 bytes apart.

/// Bytes of a counting stub, filler included.
pub const LEN: usize = 112;

/// Where the counting code starts: where the go slot leads until a trace
/// of the head is built.
pub const COUNT_AT: usize = 6;

/// Where the jump to the head's block lies in the stub.
pub const JUMP_AT: usize = 44;

/// Where the hot way's exit stub starts; its exit data follows it.
pub const HOT_STUB_AT: usize = 58;

/// Bytes from one stub's counter to the next's: the counter, then the go slot.
pub const COUNTER_STRIDE: usize = 16;

/// Where a stub's go slot lies after its counter.
pub const GO_SLOT_AT: usize = 8;
