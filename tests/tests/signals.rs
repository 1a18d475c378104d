//! Signal handling (issue 3), native vs `dbirun -no_native_exec`, byte for
//! byte: the catalog programs of `SIGNAL_SUITE`, each its own file in
//! `tests/programs/`: recovery from SIGSEGV by siglongjmp, handlers that
//! edit the ucontext's rip, SIGALRM interrupting a hot loop 1,000 times,
//! a 20 kHz interval timer's storm of signals,
//! sigaltstack, the XSAVE image of a frame (the kernel's size and features),
//! SA_RESTART, nested handlers, raise of every catchable
//! signal, and signal masks (sigprocmask, sigpending, sigsuspend,
//! sigtimedwait, signalfd).
//!
//! (Death by a signal's default action, and the first signal-handler
//! programs, are in `tests/corpus.rs`: signal_death, signal_faults,
//! signal_delivery.)

use dbi_tests::catalog_tests;
use dbi_tests::corpus::SIGNAL_SUITE;

catalog_tests!(SIGNAL_SUITE;
    sig_segv_longjmp,
    sig_ucontext_rip,
    sig_alarm_loop,
    sig_storm,
    sig_altstack,
    sig_frame_xstate,
    sig_restart,
    sig_nested,
    sig_raise_all,
    sig_mask,
);
