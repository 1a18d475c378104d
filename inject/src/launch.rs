//! Starts the runtime as a child, forwards signals to it while waiting, and exits the way the child did.
//!
//! Raw libc calls (through `nix::libc`) are used where nix would get in the
//! way: between fork and exec only async-signal-safe calls may run, and nix's
//! `WaitStatus` cannot represent a child killed by a real-time signal.

use std::ffi::{CString, OsString};
use std::io::{Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::ptr;
use std::sync::atomic::{AtomicI32, Ordering};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::libc::{self, c_int, c_void, siginfo_t};

/// Signals a user or a supervisor sends to "the program", which is the child.
pub const FORWARDED: [c_int; 4] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT];

/// Read by the signal handler: 0 until the child exists.
static CHILD_PID: AtomicI32 = AtomicI32::new(0);

/// How the child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildEnd {
    Exited(i32),
    Signaled(i32),
}

/// A failure to start the runtime; `Display` gives the text after `dbirun: `.
#[derive(Debug)]
pub enum LaunchError {
    /// execve of the runtime failed in the child.
    Exec { runtime: OsString, errno: Errno },
    /// dbirun's own system calls failed (fork, pipe, waitpid).
    System { what: &'static str, errno: Errno },
}

impl LaunchError {
    pub fn exit_code(&self) -> i32 {
        match self {
            LaunchError::Exec {
                errno: Errno::ENOENT,
                ..
            } => 127,
            LaunchError::Exec { .. } => 126,
            // Distinct from any status the application itself could plausibly mean.
            LaunchError::System { .. } => 125,
        }
    }
}

impl std::fmt::Display for LaunchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LaunchError::Exec { runtime, errno } => {
                write!(
                    f,
                    "cannot execute runtime '{}': {}",
                    runtime.to_string_lossy(),
                    errno.desc()
                )
            }
            LaunchError::System { what, errno } => write!(f, "{what} failed: {}", errno.desc()),
        }
    }
}

extern "C" fn forward(sig: c_int, info: *mut siginfo_t, _ctx: *mut c_void) {
    // A positive si_code means the kernel raised it (SI_KERNEL: the terminal's
    // ^C, ^\ or hangup), and the kernel sent it to the whole foreground process
    // group, the child included: forwarding would deliver it twice.
    let code = if info.is_null() {
        0
    } else {
        unsafe { (*info).si_code }
    };
    if code > 0 {
        return;
    }
    let pid = CHILD_PID.load(Ordering::SeqCst);
    if pid > 0 {
        unsafe {
            let errno = libc::__errno_location();
            let saved = *errno;
            libc::kill(pid, sig);
            *errno = saved;
        }
    }
}

fn sigset_of(signals: &[c_int]) -> libc::sigset_t {
    unsafe {
        let mut set = MaybeUninit::<libc::sigset_t>::uninit();
        libc::sigemptyset(set.as_mut_ptr());
        for &s in signals {
            libc::sigaddset(set.as_mut_ptr(), s);
        }
        set.assume_init()
    }
}

fn cstring(s: &std::ffi::OsStr) -> CString {
    // Every argument came from argv or the filesystem, neither of which can hold NUL.
    CString::new(s.as_bytes()).expect("argument contains a NUL byte")
}

/// What must be put back in the child so the runtime starts with the
/// dispositions and mask dbirun inherited (an ignored signal or a blocked mask
/// survives exec and is part of what the application would have seen natively).
struct Saved {
    mask: libc::sigset_t,
    actions: [libc::sigaction; FORWARDED.len()],
}

/// Blocks the forwarded signals and installs the forwarding handler; the
/// signals stay blocked until the child's pid is known, so none is lost.
fn install_forwarding() -> Saved {
    unsafe {
        let mut saved: Saved = std::mem::zeroed();
        let block = sigset_of(&FORWARDED);
        libc::sigprocmask(libc::SIG_BLOCK, &block, &mut saved.mask);
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = forward as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
        action.sa_mask = block;
        for (i, &sig) in FORWARDED.iter().enumerate() {
            libc::sigaction(sig, &action, &mut saved.actions[i]);
        }
        saved
    }
}

/// `argv` for execv: the strings, and the null-terminated array of
/// pointers into them (valid while the strings live).
fn c_argv(argv: &[OsString]) -> (Vec<CString>, Vec<*const libc::c_char>) {
    let c_args: Vec<CString> = argv.iter().map(|a| cstring(a)).collect();
    let mut c_ptrs: Vec<*const libc::c_char> = c_args.iter().map(|a| a.as_ptr()).collect();
    c_ptrs.push(ptr::null());
    (c_args, c_ptrs)
}

/// Replaces dbirun with the runtime (argv[0]) in this process, so the
/// application runs in dbirun's own process with nothing waiting on it;
/// returns only if exec failed.
pub fn exec(argv: &[OsString]) -> LaunchError {
    let (_c_args, c_ptrs) = c_argv(argv);
    // SAFETY: NUL-terminated strings and a null-terminated array, alive
    // across the call.
    unsafe { libc::execv(c_ptrs[0], c_ptrs.as_ptr()) };
    LaunchError::Exec { runtime: argv[0].clone(), errno: Errno::last() }
}

/// Runs `argv[0]` with `argv` (environment unchanged) and waits for it.
pub fn run(argv: &[OsString]) -> Result<ChildEnd, LaunchError> {
    // Everything the child needs is built before fork: after it only
    // async-signal-safe calls are allowed, and allocation is not one.
    let (_c_args, c_ptrs) = c_argv(argv);

    // Exec failures come back through a close-on-exec pipe: EOF means exec worked.
    let (read_end, write_end): (OwnedFd, OwnedFd) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|errno| LaunchError::System {
            what: "pipe",
            errno,
        })?;

    let saved = install_forwarding();
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(LaunchError::System {
            what: "fork",
            errno: Errno::last(),
        });
    }
    if pid == 0 {
        unsafe {
            for (i, &sig) in FORWARDED.iter().enumerate() {
                libc::sigaction(sig, &saved.actions[i], ptr::null_mut());
            }
            libc::sigprocmask(libc::SIG_SETMASK, &saved.mask, ptr::null_mut());
            libc::execv(c_ptrs[0], c_ptrs.as_ptr());
            let errno: c_int = *libc::__errno_location();
            libc::write(
                write_end.as_raw_fd(),
                &errno as *const c_int as *const c_void,
                4,
            );
            libc::_exit(127);
        }
    }

    CHILD_PID.store(pid, Ordering::SeqCst);
    drop(write_end);
    // Unblocked even if dbirun inherited them blocked: the child got the
    // inherited mask back, and a signal pending on dbirun must reach it.
    unsafe {
        let unblock = sigset_of(&FORWARDED);
        libc::sigprocmask(libc::SIG_UNBLOCK, &unblock, ptr::null_mut());
    }

    let mut report = Vec::new();
    // read_to_end retries EINTR; exec failure sends exactly one errno.
    let _ = std::fs::File::from(read_end).read_to_end(&mut report);
    let end = wait(pid)?;
    if report.len() >= 4 {
        let errno = c_int::from_ne_bytes([report[0], report[1], report[2], report[3]]);
        return Err(LaunchError::Exec {
            runtime: argv[0].clone(),
            errno: Errno::from_raw(errno),
        });
    }
    Ok(end)
}

fn wait(pid: c_int) -> Result<ChildEnd, LaunchError> {
    loop {
        let mut status: c_int = 0;
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r < 0 {
            match Errno::last() {
                Errno::EINTR => continue,
                errno => {
                    return Err(LaunchError::System {
                        what: "waitpid",
                        errno,
                    })
                }
            }
        }
        if libc::WIFEXITED(status) {
            return Ok(ChildEnd::Exited(libc::WEXITSTATUS(status)));
        }
        if libc::WIFSIGNALED(status) {
            return Ok(ChildEnd::Signaled(libc::WTERMSIG(status)));
        }
    }
}

/// Ends dbirun the way the child ended, so `$?`, `WIFSIGNALED` and the
/// shell's "Segmentation fault" message are what they would be natively.
pub fn exit_like(end: ChildEnd) -> ! {
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    match end {
        ChildEnd::Exited(code) => std::process::exit(code),
        ChildEnd::Signaled(sig) => unsafe {
            // The child already dumped core if it was going to; a second core
            // from dbirun would overwrite it or double the dump-helper's work.
            let mut limit: libc::rlimit = std::mem::zeroed();
            libc::getrlimit(libc::RLIMIT_CORE, &mut limit);
            limit.rlim_cur = 0;
            libc::setrlimit(libc::RLIMIT_CORE, &limit);

            let mut default: libc::sigaction = std::mem::zeroed();
            default.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(sig, &default, ptr::null_mut());
            let only = sigset_of(&[sig]);
            libc::sigprocmask(libc::SIG_UNBLOCK, &only, ptr::null_mut());
            libc::raise(sig);
            // Still here: the signal's default action does not kill us.
            std::process::exit(128 + sig)
        },
    }
}
