//! An independent instruction counter for exactness oracles: runs a program
//! under `PTRACE_SINGLESTEP` (with address-space randomisation off, as the
//! translated run gets it too) and counts the instructions it executes.
//!
//! A `rep`-prefixed string instruction traps after every iteration; it
//! counts once, like any other instruction: a step that leaves the pc where
//! it was is an unfinished `rep`.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// The personality flag that turns address-space randomisation off.
pub const ADDR_NO_RANDOMIZE: libc::c_ulong = 0x0040000;

/// Instructions `program args` executes from its first instruction to its
/// exit, and its exit status.
pub fn count_instructions(program: &Path, args: &[&str], env: &[(&str, &str)]) -> (u64, i32) {
    let (pcs, status) = trace_pcs(program, args, env);
    (pcs.len() as u64, status)
}

/// The pc of every instruction `program args` executes, in order, and its
/// exit status. `env` is its whole environment; stdin, stdout
/// and stderr are /dev/null (stdio takes other paths for pipes and files).
pub fn trace_pcs(program: &Path, args: &[&str], env: &[(&str, &str)]) -> (Vec<u64>, i32) {
    let path = CString::new(program.as_os_str().as_bytes()).unwrap();
    let mut argv_c: Vec<CString> = vec![path.clone()];
    argv_c.extend(args.iter().map(|a| CString::new(*a).unwrap()));
    let env_c: Vec<CString> = env.iter().map(|(k, v)| CString::new(format!("{k}={v}")).unwrap()).collect();
    let mut argv: Vec<*const libc::c_char> = argv_c.iter().map(|s| s.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = env_c.iter().map(|s| s.as_ptr()).collect();
    envp.push(std::ptr::null());

    // SAFETY: the child only makes async-signal-safe calls before execve.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // SAFETY: in the child, then exec or _exit.
        unsafe {
            let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
            libc::dup2(null, 0);
            libc::dup2(null, 1);
            libc::dup2(null, 2);
            libc::personality(ADDR_NO_RANDOMIZE);
            libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0);
            libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr());
            libc::_exit(127);
        }
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(libc::WIFSTOPPED(status), "the child did not stop at exec");
    let mut pc = rip(pid);
    let mut pcs = vec![pc];
    loop {
        // SAFETY: stepping our own stopped tracee.
        unsafe {
            libc::ptrace(libc::PTRACE_SINGLESTEP, pid, 0, 0);
            libc::waitpid(pid, &mut status, 0);
        }
        if libc::WIFEXITED(status) {
            return (pcs, libc::WEXITSTATUS(status));
        }
        assert!(libc::WIFSTOPPED(status), "unexpected wait status {status:#x}");
        let sig = libc::WSTOPSIG(status);
        assert_eq!(sig, libc::SIGTRAP, "the traced program got signal {sig}");
        let next = rip(pid);
        if next != pc {
            pcs.push(next);
            pc = next;
        }
    }
}

fn rip(pid: libc::pid_t) -> u64 {
    // SAFETY: a zeroed user_regs_struct filled by the kernel.
    unsafe {
        let mut regs: libc::user_regs_struct = std::mem::zeroed();
        libc::ptrace(libc::PTRACE_GETREGS, pid, 0, &mut regs as *mut _);
        regs.rip
    }
}
