//! The operating-system layer: the runtime's typed system calls and its
//! memory (`sys`, `heap`, `mem`), the kernel's signal structures and the
//! runtime's own signal calls (`signal`), reading app memory safely (`safe_read`), the kernel's and the
//! app's views of mappings (`proc_maps`, `app_prot`, `modules`,
//! `image_base`, `fd_path`), the app's executable (`app_exe`), and starting a program as the kernel would
//! (`startup_args`, `auxv`, `loader`, `initial_stack`, `vdso`,
//! `proc_identity`), a socket to a local server (`unix_socket`), and a detached helper
//! process (`detached`), and where an ELF file's functions are
//! (`elf_functions`), and reading a whole file through a mapping
//! (`mapped_file`). Nothing here imports a module of a higher layer.

pub(crate) mod app_exe;
pub(crate) mod app_prot;
pub(crate) mod auxv;
pub(crate) mod detached;
pub(crate) mod elf_functions;
pub(crate) mod fd_path;
pub(crate) mod heap;
pub(crate) mod image_base;
pub(crate) mod initial_stack;
pub(crate) mod loader;
pub(crate) mod mapped_file;
pub(crate) mod mem;
pub(crate) mod modules;
pub(crate) mod proc_identity;
pub(crate) mod proc_maps;
pub(crate) mod safe_read;
pub(crate) mod signal;
pub(crate) mod startup_args;
pub(crate) mod sys;
pub(crate) mod unix_socket;
pub(crate) mod vdso;
