//! The runtime side of the client API: the clients chosen with `-c`, the
//! services they get (TLS slots, near-code data, modules, output files),
//! and the events the pipeline and the thread lifecycle deliver to them.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use core::fmt::Write;

use clients::api::{self, BlockIr, Client, EmitFlags, ModuleRef, Services};
use spin::{Mutex, Once};

use crate::persistence::units::BlockData;
use crate::translate::segment::LiveSegment;
use crate::os::startup_args::CStr;
use crate::os::sys;
use crate::thread::{offsets, ThreadContext};

/// At most this many clients at once.
pub(crate) const MAX_CLIENTS: usize = 4;
pub(crate) const CLIENT_TLS_SLOTS: usize = MAX_CLIENTS * api::TLS_SLOTS_PER_CLIENT;

static CLIENTS: Once<Vec<Box<dyn Client>>> = Once::new();
/// Threads alive with client state, to give each a thread-exit event when
/// the process exits.
pub(crate) static THREADS: Mutex<Vec<usize>> = Mutex::new(Vec::new());
static HOST: Host = Host;

struct Host;

fn clients() -> &'static [Box<dyn Client>] {
    CLIENTS.get().map_or(&[], |c| c.as_slice())
}

/// Creates the clients named on the command line; a bad name or option
/// ends the run (status 2) before the application starts.
pub(crate) fn init() {
    let mut list = Vec::new();
    for (name, opts) in &crate::options::get().clients {
        let name_str = core::str::from_utf8(name.as_bytes()).unwrap_or("?");
        let opt_strs: Vec<&str> = opts.iter().map(|o| core::str::from_utf8(o.as_bytes()).unwrap_or("?")).collect();
        match clients::create(name_str, &opt_strs) {
            Ok(c) => list.push(c),
            Err(e) => crate::log::fatal(2, format_args!("{e}")),
        }
    }
    if list.len() > MAX_CLIENTS {
        crate::log::fatal(2, format_args!("at most {MAX_CLIENTS} clients at once"));
    }
    CLIENTS.call_once(|| list);
}

/// The active clients' identities, in order: part of every persisted
/// file's key.
pub(crate) fn identities() -> Vec<api::ClientIdentity> {
    clients().iter().map(|c| c.identity()).collect()
}

pub(crate) fn active() -> bool {
    !clients().is_empty()
}

fn tls_offset(index: usize) -> usize {
    offsets::CLIENT_TLS + 8 * index * api::TLS_SLOTS_PER_CLIENT
}

/// Where the data clients allocate for the block being instrumented goes:
/// the W region of the persistable segment the block will be emitted into,
/// or the near-data area; and what was allocated, by client.
pub(crate) struct BlockDataSink {
    segment: *mut LiveSegment,
    client: u32,
    allocations: Vec<BlockData>,
}

// SAFETY: the sink is only used under the translator lock, while the
// segment it points to cannot move.
unsafe impl Send for BlockDataSink {}

pub(crate) static BLOCK_DATA: Mutex<BlockDataSink> =
    Mutex::new(BlockDataSink { segment: core::ptr::null_mut(), client: 0, allocations: Vec::new() });

/// Every client instruments `block`, in command-line order; block data
/// goes to `segment` if set. The block is persistable only if every
/// client says so. Also returns the block data allocated (client, address).
pub(crate) fn instrument(block: &mut BlockIr, segment: Option<&mut LiveSegment>) -> (EmitFlags, Vec<BlockData>) {
    BLOCK_DATA.lock().segment = segment.map_or(core::ptr::null_mut(), |s| s as *mut LiveSegment);
    let mut flags = EmitFlags::PERSISTABLE;
    for (i, c) in clients().iter().enumerate() {
        BLOCK_DATA.lock().client = i as u32;
        block.current_client = i as u16;
        let f = c.basic_block(block, tls_offset(i), &HOST);
        flags.persistable &= f.persistable;
        flags.store_translations |= f.store_translations;
    }
    let mut sink = BLOCK_DATA.lock();
    sink.segment = core::ptr::null_mut();
    (flags, core::mem::take(&mut sink.allocations))
}

/// Each client's persistence events for a file of the module at `base`
/// being written: (read-only, executable, writable) data per client.
pub(crate) fn persist_data(base: u64) -> Vec<(Vec<u8>, Vec<u8>, Vec<u8>)> {
    clients()
        .iter()
        .map(|c| {
            let (mut ro, mut rx, mut rw) = (Vec::new(), Vec::new(), Vec::new());
            c.persist_ro(base, &mut ro);
            c.persist_rx(base, &mut rx);
            c.persist_rw(base, &mut rw);
            (ro, rx, rw)
        })
        .collect()
}

/// Lets every client adjust the file's copy of the block at `tag`.
pub(crate) fn persist_patch(base: u64, tag: u64, code: &mut [u8]) {
    for c in clients() {
        c.persist_patch(base, tag, code);
    }
}

/// Client `i`'s view of a file being taken into use; false if it rejects
/// the file.
pub(crate) fn resurrect(
    i: usize,
    base: u64,
    ro: &[u8],
    rx: &[u8],
    rw: &mut [u8],
    blocks: &mut dyn Iterator<Item = api::PersistedBlock>,
) -> bool {
    clients()[i].resurrect(base, ro, rx, rw, blocks, &HOST)
}

/// Number of active clients.
pub(crate) fn count() -> usize {
    clients().len()
}

/// Whether every client's block data is plain (`Client::block_data_is_plain`).
pub(crate) fn block_data_is_plain() -> bool {
    clients().iter().all(|c| c.block_data_is_plain())
}

/// The leading bytes of client `i`'s block data that a file holds zeroed
/// (`Client::block_data_run_state`).
pub(crate) fn run_state_len(i: usize) -> usize {
    clients().get(i).map_or(0, |c| c.block_data_run_state())
}

/// The cache files the run took into use, as clients read them at exit
/// (`Services::for_each_persisted_file`). Kept here as files load rather
/// than read from the translator at exit: a fatal signal may end the
/// process while its thread holds the translator's lock.
static FILES: Mutex<Vec<crate::persistence::load::FileView>> = Mutex::new(Vec::new());

/// The client reporting at exit (its index), or `usize::MAX` outside
/// `process_exit`.
static REPORTING: AtomicUsize = AtomicUsize::new(usize::MAX);

/// A cache file was taken into use: clients read its blocks at exit.
pub(crate) fn file_taken_into_use(view: crate::persistence::load::FileView) {
    FILES.lock().push(view);
}

fn slots(ctx: &mut ThreadContext, index: usize) -> &mut [u64] {
    let n = api::TLS_SLOTS_PER_CLIENT;
    &mut ctx.client_tls[index * n..(index + 1) * n]
}

/// A thread (the main one included) starts running app code.
pub(crate) fn thread_init(ctx: &mut ThreadContext) {
    if !active() {
        return;
    }
    THREADS.lock().push(ctx as *mut ThreadContext as usize);
    for (i, c) in clients().iter().enumerate() {
        c.thread_init(slots(ctx, i), &HOST);
    }
}

/// A thread ends.
pub(crate) fn thread_exit(ctx: &mut ThreadContext) {
    if !active() {
        return;
    }
    let me = ctx as *mut ThreadContext as usize;
    let mut threads = THREADS.lock();
    let Some(pos) = threads.iter().position(|&t| t == me) else { return };
    threads.swap_remove(pos);
    drop(threads);
    for (i, c) in clients().iter().enumerate() {
        c.thread_exit(slots(ctx, i), &HOST);
    }
}

/// A process translating ahead of time runs only the program's start-up
/// (its libraries' initialisers): what clients saw of it is not a run's
/// output.
fn no_output() -> bool {
    crate::options::get().aot
}

/// The process exits: every thread still alive ends, then the clients
/// report.
pub(crate) fn process_exit() {
    if !active() || no_output() {
        return;
    }
    let threads: Vec<usize> = core::mem::take(&mut *THREADS.lock());
    for t in threads {
        // SAFETY: registered contexts stay mapped until their thread exits,
        // which unregisters them first; other threads may still be running
        // and add to their counters, which only makes the report a little
        // early for them.
        let ctx = unsafe { &mut *(t as *mut ThreadContext) };
        for (i, c) in clients().iter().enumerate() {
            c.thread_exit(slots(ctx, i), &HOST);
        }
    }
    for (i, c) in clients().iter().enumerate() {
        REPORTING.store(i, Relaxed);
        c.process_exit(&HOST);
    }
    REPORTING.store(usize::MAX, Relaxed);
}

/// Runs client `index`'s clean call `id` with the app state in `ctx`.
pub(crate) fn clean_call(ctx: &mut ThreadContext, index: usize, id: u32, arg: u64) {
    let Some(client) = clients().get(index) else { return };
    let tid = sys::gettid();
    let n = api::TLS_SLOTS_PER_CLIENT;
    let ThreadContext { gpr, rflags, client_tls, .. } = ctx;
    let mut call = api::CleanCallContext { gprs: gpr, rflags, tls: &mut client_tls[index * n..(index + 1) * n], tid };
    client.clean_call(id, arg, &mut call, &HOST);
}

/// The application's executable name, for output file names.
fn app_name() -> &'static str {
    crate::os::proc_identity::app_name()
}

/// The directory client files go to: `-logdir`, else the cwd at start-up.
fn logdir() -> &'static [u8] {
    static DIR: Once<CStr> = Once::new();
    DIR.call_once(|| {
        if let Some(d) = crate::options::get().logdir {
            return d;
        }
        let mut buf = [0u8; 4096];
        let len = match sys::getcwd(&mut buf) {
            Ok(n) if n > 0 => buf.iter().position(|&b| b == 0).unwrap_or(0),
            _ => 0,
        };
        CStr::leak(if len > 0 { &buf[..len] } else { b"." })
    })
    .as_bytes()
}

/// Call once at start-up, before the app can change directory.
pub(crate) fn remember_logdir() {
    if active() {
        logdir();
    }
}

struct PathBuf {
    buf: Vec<u8>,
}

impl Write for PathBuf {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.buf.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// Writes a client's output file; the first failure of a process says so
/// in one line (the results would otherwise be lost silently).
fn write_client_file(client: &str, path: &[u8], contents: &[u8], append: bool) -> bool {
    static WARNED: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);
    let ok = sys::write_file(path, contents, append);
    if !ok && !WARNED.swap(true, core::sync::atomic::Ordering::Relaxed) {
        let shown = core::str::from_utf8(path.strip_suffix(&[0]).unwrap_or(path)).unwrap_or("?");
        eprintln!("warning: {client}: cannot write {shown}; its results are lost");
    }
    ok
}

/// `<logdir>/<client>.<app>.<pid>[.<tid>].<suffix>`, NUL-terminated.
fn output_path(client: &str, suffix: &str, tid: Option<u32>) -> Vec<u8> {
    let pid = sys::getpid();
    let mut path = PathBuf { buf: logdir().to_vec() };
    let _ = write!(path, "/{client}.{}.{pid}", app_name());
    if let Some(tid) = tid {
        let _ = write!(path, ".{tid}");
    }
    let _ = write!(path, ".{suffix}");
    path.buf.push(0);
    path.buf
}

impl Services for Host {
    fn flags_spill_offset(&self) -> usize {
        offsets::CLIENT_FLAGS_SPILL
    }

    fn alloc_near_code(&self, len: usize) -> Option<*mut u8> {
        crate::translate::code_cache::alloc_near_data(len as u64).map(|a| a as *mut u8)
    }

    fn alloc_block_data(&self, len: usize) -> Option<*mut u8> {
        let mut sink = BLOCK_DATA.lock();
        let addr = if sink.segment.is_null() {
            crate::translate::code_cache::alloc_near_data(len as u64)?
        } else {
            // SAFETY: set by `instrument` for the duration of the block's
            // instrumentation, under the translator lock.
            unsafe { (*sink.segment).alloc_w(len as u64)? }
        };
        let client = sink.client;
        sink.allocations.push(BlockData { client, addr, len: len as u32 });
        Some(addr as *mut u8)
    }

    fn for_each_persisted_file(&self, f: &mut dyn FnMut(ModuleRef, &mut dyn Iterator<Item = api::PersistedBlock>)) {
        let client = REPORTING.load(Relaxed);
        if client == usize::MAX {
            return;
        }
        // Held only while a file is added: wait that long at most.
        let Some(files) = (0..1_000_000).find_map(|_| FILES.try_lock()) else { return };
        for file in files.iter() {
            let path = core::str::from_utf8(file.path.as_bytes()).unwrap_or("?");
            let module = ModuleRef { path, base: file.base, end: file.end, is_main: file.is_main };
            f(module, &mut file.blocks_of(client));
        }
    }

    fn with_module(&self, pc: u64, f: &mut dyn FnMut(Option<ModuleRef>)) {
        crate::os::modules::with_module(pc, |m| {
            f(m.map(|m| ModuleRef {
                path: core::str::from_utf8(m.path.as_bytes()).unwrap_or("?"),
                base: m.base,
                end: m.end,
                is_main: m.is_main,
            }))
        })
    }

    fn summary(&self, client: &str, text: &str) {
        if no_output() {
            return;
        }
        if !crate::persistence::report::append_summary(client, text) {
            // Started without dbirun's run report: say it directly.
            crate::eprintln!("{client}: {text}");
        }
    }

    fn write_output(&self, client: &str, suffix: &str, tid: Option<u32>, contents: &[u8]) -> bool {
        no_output() || write_client_file(client, &output_path(client, suffix, tid), contents, false)
    }

    fn append_output(&self, client: &str, suffix: &str, tid: Option<u32>, contents: &[u8]) -> bool {
        no_output() || write_client_file(client, &output_path(client, suffix, tid), contents, true)
    }

    fn ahead_of_time(&self) -> bool {
        crate::aot::translating()
    }

    fn thread_id(&self) -> u32 {
        sys::gettid()
    }

    fn app_name(&self) -> &str {
        app_name()
    }
}
