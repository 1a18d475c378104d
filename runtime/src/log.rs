//! Messages to stderr (never stdout: that belongs to the application).

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicI32, Ordering::Relaxed};

/// Where runtime messages go. Programs may close their stderr before they
/// exit (coreutils do), so with `-v` or `-stats` the runtime keeps a private
/// duplicate, placed high and close-on-exec to stay out of the app's way.
static LOG_FD: AtomicI32 = AtomicI32::new(2);
const PRIVATE_FD_MIN: i32 = 1000;

/// The descriptor runtime messages go to.
pub(crate) fn fd() -> i32 {
    LOG_FD.load(Relaxed)
}

pub(crate) fn keep_private_stderr() {
    use crate::os::sys::{self, IntoRawFd};
    if let Some(fd) = sys::borrow(2).and_then(|e| sys::dup_at_least(e, PRIVATE_FD_MIN).ok()) {
        // Kept open for the whole process.
        LOG_FD.store(fd.into_raw_fd(), Relaxed);
    }
}

/// Formats into a fixed stack buffer and writes it with one system call, so
/// a message is not interleaved with the application's output mid-line.
pub(crate) struct StderrLine {
    buf: [u8; 512],
    len: usize,
}

impl StderrLine {
    pub(crate) const fn new() -> Self {
        StderrLine { buf: [0; 512], len: 0 }
    }
    pub(crate) fn flush(&mut self) {
        crate::os::sys::write_all(LOG_FD.load(Relaxed), &self.buf[..self.len]);
        self.len = 0;
    }
}

impl Write for StderrLine {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            if self.len == self.buf.len() {
                self.flush();
            }
            self.buf[self.len] = b;
            self.len += 1;
        }
        Ok(())
    }
}

pub(crate) fn print(args: fmt::Arguments) {
    let mut line = StderrLine::new();
    let _ = line.write_fmt(args);
    line.flush();
}

/// Prints one line to stderr, prefixed with the runtime's name.
#[macro_export]
macro_rules! eprintln {
    ($($arg:tt)*) => {
        $crate::log::print(format_args!("dbirun: {}\n", format_args!($($arg)*)))
    };
}

/// Prints one line to stderr when `-v` is on.
#[macro_export]
macro_rules! verbose {
    ($($arg:tt)*) => {
        if $crate::options::get().verbose {
            $crate::eprintln!($($arg)*)
        }
    };
}

/// Reports an unrecoverable runtime error and exits with `status`.
pub(crate) fn fatal(status: i32, args: fmt::Arguments) -> ! {
    print(format_args!("dbirun: {}\n", args));
    crate::os::sys::exit_group(status)
}
