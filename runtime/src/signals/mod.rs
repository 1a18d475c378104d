//! Signals: the app's actions and the runtime's handler, delivery and
//! `rt_sigreturn` (`handling`), the kernel's frame layout (`frames`), and
//! the app state at a fault in the cache (`fault_state`). Uses the
//! translator (to unlink and translate cache pcs), `translate` and `os`.

pub(crate) mod fault_state;
pub(crate) mod frames;
pub(crate) mod handling;
