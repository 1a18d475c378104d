//! Auxiliary vector keys (from the kernel's `uapi/linux/auxvec.h`).

pub(crate) const AT_NULL: u64 = 0;
pub(crate) const AT_PHDR: u64 = 3;
pub(crate) const AT_PHENT: u64 = 4;
pub(crate) const AT_PHNUM: u64 = 5;
pub(crate) const AT_BASE: u64 = 7;
pub(crate) const AT_ENTRY: u64 = 9;
pub(crate) const AT_PLATFORM: u64 = 15;
pub(crate) const AT_RANDOM: u64 = 25;
pub(crate) const AT_EXECFN: u64 = 31;
pub(crate) const AT_SYSINFO_EHDR: u64 = 33;
