//! The app's system calls that the runtime carries out itself
//! (`syscalls`: memory, threads and processes, signals), with `execve`
//! (`exec`), the program break (`brk`), `/proc/self/exe` (`self_exe`) and
//! the legacy vsyscall page (`vsyscall`). Called by the dispatcher; uses
//! the translator, `signals`, `translate` and `os`.

pub(crate) mod brk;
pub(crate) mod exec;
pub(crate) mod self_exe;
pub(crate) mod syscalls;
pub(crate) mod vsyscall;
