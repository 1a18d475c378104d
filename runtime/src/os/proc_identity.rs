//! Making the process look like the application to the rest of the system:
//! `/proc/PID/comm` (what `ps`, `top` and `pgrep -x` match), and
//! `/proc/PID/cmdline`, `environ` and `auxv`, which the kernel reads from
//! the ranges it recorded at exec. Those ranges describe the runtime's own
//! exec (its options, and memory the app's initial stack has since been
//! built over), so the runtime points them at the app's stack image with
//! `PR_SET_MM_MAP`, which an unprivileged process may use for everything
//! but `/proc/PID/exe` (that one needs CAP_CHECKPOINT_RESTORE: it stays the
//! runtime, a known limit).

use crate::os::initial_stack::Built;
use crate::os::startup_args::CStr;
use crate::os::sys;

/// `TASK_COMM_LEN` less the NUL.
const COMM_MAX: usize = 15;

/// Called once the app's initial stack is built, before its first
/// instruction. `exec_path` is the file name the app was started with (the
/// one `execve` got, before `#!` lines are followed), as the kernel names
/// the process after it.
pub(crate) fn become_app(exec_path: &CStr, stack: &Built) {
    set_comm(exec_path.as_bytes());
    if let Err(e) = point_mm_at(stack) {
        verbose!("/proc/self/cmdline still shows the runtime's: PR_SET_MM_MAP failed ({e})");
    }
}

/// The file name of the program as it was run (the last component of the
/// path given to exec, before symlinks or `#!` lines are followed), whole.
/// Set once per runtime image: an exec starts a new one.
static NAME: spin::Once<CStr> = spin::Once::new();

/// The name the user ran the program by (`python3`, even when that is a
/// link to `python3.11`): client file names and reports use it.
pub(crate) fn app_name() -> &'static str {
    NAME.get().and_then(|n| core::str::from_utf8(n.as_bytes()).ok()).unwrap_or("app")
}

/// What the kernel's exec does: the last path component, truncated to 15 bytes.
fn set_comm(path: &[u8]) {
    let base = path.rsplit(|&b| b == b'/').next().unwrap_or(path);
    NAME.call_once(|| CStr::leak(base));
    let mut name = [0u8; COMM_MAX + 1];
    let n = base.len().min(COMM_MAX);
    name[..n].copy_from_slice(&base[..n]);
    if let Ok(name) = core::ffi::CStr::from_bytes_until_nul(&name) {
        let _ = rustix::thread::set_name(name);
    }
}

/// Replaces the argument, environment and auxv ranges (and the stack
/// start) the kernel keeps for this process; every other field must be
/// passed as it is, so it is read back from `/proc/self/stat`.
fn point_mm_at(stack: &Built) -> sys::Result<()> {
    let stat = read_stat()?;
    // Field numbers as in proc(5), counted from 1.
    let field = |n: usize| stat.get(n - 1).copied().ok_or(sys::Errno::INVAL);
    let brk = sys::current_brk();
    let mut map = rustix::process::PrctlMmMap {
        start_code: field(26)?,
        end_code: field(27)?,
        start_data: field(45)?,
        end_data: field(46)?,
        start_brk: field(47)?,
        brk,
        start_stack: stack.sp,
        arg_start: stack.args.0,
        arg_end: stack.args.1,
        env_start: stack.env.0,
        env_end: stack.env.1,
        auxv: stack.auxv.0 as *mut u64,
        auxv_size: stack.auxv.1 as u32,
        exe_fd: -1,
    };
    // SAFETY: the ranges are the app's stack image, which lives as long
    // as the process; the other fields are the kernel's own values.
    let set = |map: &rustix::process::PrctlMmMap| unsafe { rustix::process::configure_virtual_memory_map(map) };
    // An auxv longer than the kernel's saved copy is refused as a whole:
    // /proc/self/auxv is the least of the three.
    set(&map).or_else(|_| {
        map.auxv = core::ptr::null_mut();
        map.auxv_size = 0;
        set(&map)
    })
}

/// The numeric fields of `/proc/self/stat`, from field 1; the command name
/// (field 2, which may hold spaces) and the state (field 3) read as 0.
fn read_stat() -> sys::Result<alloc::vec::Vec<u64>> {
    let fd = sys::open_read(b"/proc/self/stat\0")?;
    let mut buf = [0u8; 1024];
    let n = sys::pread(&fd, &mut buf, 0)?;
    if n == 0 {
        return Err(sys::Errno::INVAL);
    }
    let text = &buf[..n];
    let close = text.iter().rposition(|&b| b == b')').ok_or(sys::Errno::INVAL)?;
    let mut fields = alloc::vec![0u64, 0];
    fields.extend(text[close + 1..].split(|&b| b == b' ' || b == b'\n').filter(|w| !w.is_empty()).map(|w| {
        w.iter().try_fold(0u64, |acc, &c| c.is_ascii_digit().then(|| acc * 10 + (c - b'0') as u64)).unwrap_or(0)
    }));
    Ok(fields)
}
