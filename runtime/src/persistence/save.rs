//! Writing persisted files: at module unload and process exit, the live
//! blocks of each module's unit the file in use lacks become a delta
//! (their own segments, as a file of their own would hold them), handed
//! to the cache server or merged (`persist::merge`) under the file's
//! lock with what the file holds now.

use alloc::borrow::Cow;
use alloc::vec;
use alloc::vec::Vec;

use hashbrown::HashMap;
use persist::index::{BlockData, BlockEntry, ClientData, ExitEntry, Index, ModuleInfo, Segment};
use persist::merge::{Parts, MIN_GROWTH_DIVISOR};
use persist::translations;
use persist::write::page_up;
use persist::ZoneKind;

use crate::translate::encoder;
use crate::translate::fragment::{Fragment, FragmentTable};
use crate::persistence::files as files;
use crate::persistence::load::LoadedFiles;
use crate::persistence::server::Server;
use crate::persistence::units::{Unit, UnitBlock};
use crate::translate::segment::LiveSegment;
use crate::stats::{self, STATS};
use crate::os::sys::{self, AsRawFd};

/// Writes every unit with new blocks to its module's file.
pub(crate) fn save_units(units: &[Unit], fragments: &FragmentTable, loaded: &LoadedFiles) {
    let t0 = stats::ticks();
    let options = crate::options::get();
    let wanted = options.persist_server && units.iter().any(|u| worth_saving(u, fragments, loaded).is_some());
    let mut server = options.persist_dir.filter(|_| wanted).and_then(|dir| crate::persistence::server::connect(&dir));
    for unit in units {
        save_unit(unit, fragments, loaded, &mut server);
    }
    report_built(units);
    stats::add(&STATS.persist_ticks, stats::ticks() - t0);
}

/// At the end of a process (exit or exec) with a cache server: a detached
/// copy of the process (`os::detached`) builds the deltas and hands them
/// over while the process ends at once; the process itself only reports
/// what is being handed over. False, with nothing done, when that cannot
/// be: no server answers, or other threads run (one of them could hold a
/// lock the copy would lack); the caller then saves as usual.
pub(crate) fn hand_over_in_background(units: &[Unit], fragments: &FragmentTable, loaded: &LoadedFiles) -> bool {
    let t0 = stats::ticks();
    let options = crate::options::get();
    let Some(dir) = options.persist_dir.filter(|_| options.persist_server) else { return false };
    // Most warm runs have nothing worth handing over: no copy then.
    let worth: Vec<(&Unit, usize, usize)> =
        units.iter().filter_map(|u| worth_saving(u, fragments, loaded).map(|(new, in_use)| (u, new.len(), in_use))).collect();
    if worth.is_empty() || crate::os::detached::thread_count() != Some(1) {
        return false;
    }
    let Some(server) = crate::persistence::server::connect(&dir) else { return false };
    let log = if options.verbose { crate::log::fd() } else { -1 };
    match crate::os::detached::fork_detached(c"dbi-persist", &[server.raw_fd(), log]) {
        Ok(crate::os::detached::Forked::Child) => {
            let mut server = Some(server);
            for unit in units {
                save_unit(unit, fragments, loaded, &mut server);
            }
            warn_about_write_failures();
            sys::exit_group(0)
        }
        Ok(crate::os::detached::Forked::Parent) => {
            drop(server);
            for (unit, new, in_use) in worth {
                note_handed_over(&files::file_for(&dir, &unit.path), new, in_use);
            }
            report_built(units);
            crate::verbose!("persist: handing new blocks to the cache server in the background");
            stats::add(&STATS.persist_ticks, stats::ticks() - t0);
            true
        }
        Err(e) => {
            crate::verbose!("persist: cannot fork to hand over in the background ({e})");
            false
        }
    }
}

fn note_handed_over(path: &[u8], blocks: usize, in_use: usize) {
    stats::add(&STATS.files_written, 1);
    stats::add(&STATS.blocks_persisted, blocks as u64);
    crate::persistence::report::wrote(path, in_use + blocks);
}

/// Blocks of each unit (by module base) already in a run report of this
/// process image, or inherited from the parent at a fork.
pub(crate) static REPORTED: spin::Mutex<Vec<(u64, usize)>> = spin::Mutex::new(Vec::new());

/// Cache files this process image could not write (a full disk, a
/// read-only directory), with why: said in one warning line at its end.
pub(crate) static WRITE_FAILURES: spin::Mutex<Vec<(alloc::string::String, sys::Errno)>> = spin::Mutex::new(Vec::new());

fn note_write_failure(path: &[u8], e: sys::Errno) {
    let name = files::display(path);
    let name = name.rsplit('/').next().unwrap_or(name);
    // The module's file name: the cache file's name up to its two hashes.
    let module = name.rsplitn(3, '-').nth(2).unwrap_or(name);
    WRITE_FAILURES.lock().push((alloc::string::String::from(module), e));
}

/// One warning line for every cache file this image could not write,
/// even without -v: the run's output and status stay as they are, but a
/// user expecting warm runs must learn why they will not be.
pub(crate) fn warn_about_write_failures() {
    let failures = core::mem::take(&mut *WRITE_FAILURES.lock());
    let Some((_, why)) = failures.first() else { return };
    let mut modules = alloc::string::String::new();
    for (i, (m, _)) in failures.iter().enumerate() {
        if i > 0 {
            modules.push_str(", ");
        }
        modules.push_str(m);
    }
    crate::eprintln!("warning: persist: could not write the cache of {modules} ({why}); later runs will translate them afresh");
}

/// A forked child: the blocks its units hold so far are the parent's.
pub(crate) fn note_forked(units: &[Unit]) {
    *REPORTED.lock() = units.iter().map(|u| (u.module_base, u.blocks.len())).collect();
}

/// Tells the run report how many blocks each module built since the last
/// report of this process image.
fn report_built(units: &[Unit]) {
    let Some(dir) = crate::options::get().persist_dir else { return };
    let mut reported = REPORTED.lock();
    for unit in units {
        let before = reported.iter().find(|(b, _)| *b == unit.module_base).map_or(0, |(_, n)| *n);
        if unit.blocks.len() > before {
            crate::persistence::report::built(&files::file_for(&dir, &unit.path), unit.blocks.len() - before);
            reported.retain(|(b, _)| *b != unit.module_base);
            reported.push((unit.module_base, unit.blocks.len()));
        }
    }
}

/// A file as it is on disk, mapped read-only while it is merged.
struct OnDisk {
    map: u64,
    len: u64,
    identity: Option<crate::os::modules::FileIdentity>,
}

impl OnDisk {
    fn read(path: &[u8]) -> Option<OnDisk> {
        let fd = files::open_trusted(path).ok()?;
        let identity = crate::os::modules::identity_of(&fd);
        let len = identity.map_or(0, |id| id.size);
        if len == 0 {
            return None;
        }
        // SAFETY: a fresh private read-only mapping of the whole file.
        let map = unsafe { sys::mmap(0, len, sys::PROT_READ, sys::MAP_PRIVATE, fd.as_raw_fd() as i64, 0) }.ok()?;
        Some(OnDisk { map, len, identity })
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: the mapping is len bytes long and lives as long as self.
        unsafe { core::slice::from_raw_parts(self.map as *const u8, self.len as usize) }
    }
}

impl Drop for OnDisk {
    fn drop(&mut self) {
        // SAFETY: our own mapping.
        let _ = unsafe { sys::munmap(self.map, self.len) };
    }
}

/// This run's blocks of `unit` the file in use lacks, and the blocks that
/// file has; None when there are none or too few to be worth a rewrite
/// (decided without reading the file again), or the unit's code changed.
fn worth_saving<'a>(unit: &'a Unit, fragments: &'a FragmentTable, loaded: &LoadedFiles) -> Option<(Vec<(&'a UnitBlock, &'a Fragment)>, usize)> {
    if unit.tainted {
        return None;
    }
    let new_here: Vec<(&UnitBlock, &Fragment)> = unit
        .blocks
        .iter()
        .filter_map(|b| fragments.get(b.tag).filter(|f| f.start == b.start).map(|f| (b, f)))
        .filter(|(b, _)| !loaded.has_block(unit.module_base, unit.identity, b.tag))
        .collect();
    let in_use = loaded.block_count(unit.module_base, unit.identity);
    (!new_here.is_empty() && new_here.len() * MIN_GROWTH_DIVISOR >= in_use).then_some((new_here, in_use))
}

fn save_unit(unit: &Unit, fragments: &FragmentTable, loaded: &LoadedFiles, server: &mut Option<Server>) {
    let Some(dir) = crate::options::get().persist_dir else { return };
    if unit.tainted {
        crate::verbose!("persist: not writing {}: its code changed during the run", unit.path);
        return;
    }
    let Some((new_here, in_use)) = worth_saving(unit, fragments, loaded) else { return };
    let Some(module_hash) = loaded
        .module_hash_for(unit.module_base, unit.identity)
        .or_else(|| crate::os::modules::content_hash(&unit.path, unit.identity))
    else {
        return;
    };
    let key = crate::persistence::key::key_for(module_hash);
    let path = files::file_for(&dir, &unit.path);
    if let Some(s) = server.as_ref() {
        // What concurrent runs handed over first is not built again (the
        // index is enough: a structure check, no zone is copied).
        let on_disk = OnDisk::read(&path);
        let disk = on_disk.as_ref().and_then(|d| persist::validate_with(d.bytes(), persist::Depth::Structure).ok()).filter(|v| v.key == key);
        let Some(new_here) = not_on_disk(&new_here, unit.module_base, disk.as_ref()) else { return };
        drop(disk);
        drop(on_disk);
        let delta = delta_of(unit, &new_here);
        let bytes = persist::write::build(&key, &delta.index, &delta.zone_refs());
        match s.hand_over(files::file_name(&path), &bytes) {
            Ok(()) => {
                note_handed_over(&path, new_here.len(), in_use);
                crate::verbose!("persist: handed {} new blocks of {} to the cache server", new_here.len(), files::display(&path));
                return;
            }
            Err(why) => {
                crate::verbose!("persist: the cache server did not take {} ({why}): writing files", files::display(&path));
                *server = None;
            }
        }
    }
    write_merged(unit, &new_here, &key, &path);
}

/// Merges `new_here` into the module's file on disk, under its lock.
fn write_merged(unit: &Unit, new_here: &[(&UnitBlock, &Fragment)], key: &persist::CacheKey, path: &[u8]) {
    let Some(lock) = files::lock(path) else {
        crate::verbose!("persist: cannot lock {}", files::display(path));
        return;
    };
    let on_disk = OnDisk::read(path);
    // The old zones are copied as they are, so they must be sound: fully
    // checked unless this version of the file was checked before. A file
    // that fails is replaced.
    let depth = match on_disk.as_ref().and_then(|d| d.identity) {
        Some(id) if files::verified_before(path, id) => persist::Depth::Structure,
        _ => persist::Depth::Full,
    };
    let old = on_disk.as_ref().and_then(|d| persist::validate_with(d.bytes(), depth).ok()).filter(|v| v.key == *key);
    let Some(fresh) = not_on_disk(new_here, unit.module_base, old.as_ref()) else { return };
    let mut file = old.as_ref().and_then(Parts::of).unwrap_or_default();
    if let Some(new_blocks) = persist::merge::merge(&mut file, delta_of(unit, &fresh), MIN_GROWTH_DIVISOR) {
        let index = &file.index;
        let bytes = persist::write::build(key, index, &file.zone_refs());
        let published = files::publish(path, &bytes);
        match published {
            Err(e) => note_write_failure(path, e),
            Ok(identity) => {
                // This process built the version from checked parts: later
                // runs need not hash its zones again (the server does the
                // same for what it publishes).
                if let Some(id) = identity {
                    files::note_verified(path, id);
                }
                stats::add(&STATS.files_written, 1);
                crate::persistence::report::wrote(path, index.blocks.len());
                stats::add(&STATS.blocks_persisted, new_blocks as u64);
                crate::verbose!(
                    "persist: wrote {} ({} blocks, {} new)",
                    files::display(path),
                    index.blocks.len(),
                    new_blocks
                );
            }
        }
    }
    drop(on_disk);
    files::unlock(lock);
}

/// `blocks` less those the module's file on disk (`disk`, checked)
/// already holds, which another process wrote meanwhile (their code would
/// be dead weight); None when what is left is not worth a rewrite.
fn not_on_disk<'a>(
    blocks: &[(&'a UnitBlock, &'a Fragment)],
    base: u64,
    disk: Option<&persist::Validated<'_>>,
) -> Option<Vec<(&'a UnitBlock, &'a Fragment)>> {
    let on_file = |tag: u64| disk.is_some_and(|v| v.index.block_at((tag - base) as u32).is_some());
    let fresh: Vec<(&UnitBlock, &Fragment)> = blocks.iter().copied().filter(|(b, _)| !on_file(b.tag)).collect();
    let held = disk.map_or(0, |v| v.index.blocks.len());
    (!fresh.is_empty() && fresh.len() * MIN_GROWTH_DIVISOR >= held).then_some(fresh)
}

/// A delta: the index and zones of `blocks` alone, as a file of their own
/// would hold them.
fn delta_of(unit: &Unit, blocks: &[(&UnitBlock, &Fragment)]) -> Parts<'static> {
    let base = unit.module_base;
    let mut index = Index {
        module: ModuleInfo {
            path: alloc::string::String::from_utf8_lossy(unit.path.as_bytes()).into_owned(),
            identity: unit.identity.to_array(),
        },
        options: crate::persistence::key::dbirun_options(),
        ..Index::default()
    };
    let mut zones: Vec<(ZoneKind, Vec<u8>)> = Vec::new();
    for (s, seg) in unit.segments.iter().enumerate() {
        let here: Vec<&(&UnitBlock, &Fragment)> = blocks.iter().filter(|(b, _)| b.segment as usize == s).collect();
        if here.is_empty() {
            continue;
        }
        let (w, x) = write_segment(seg, base, &here, 1 + zones.len() as u32, &mut index);
        zones.push((ZoneKind::Writable, w));
        zones.push((ZoneKind::Exec, x));
    }
    index.blocks.sort_by_key(|b| b.module_offset);
    index.ahead_of_time_blocks = index.blocks.iter().filter(|b| b.flags & BlockEntry::AHEAD_OF_TIME != 0).count() as u32;
    add_client_data(&mut index, base, 1 + zones.len(), &mut zones);
    Parts { index, zones: zones.into_iter().map(|(k, z)| (k, Cow::Owned(z))).collect() }
}

/// The clients' persistence events: read-only data into the index,
/// writable and executable data into one more (W, X) zone pair if any.
fn add_client_data(index: &mut Index, base: u64, next_zone: usize, zones: &mut Vec<(ZoneKind, Vec<u8>)>) {
    let data = crate::client_host::persist_data(base);
    let (rw_total, rx_total): (usize, usize) = data.iter().fold((0, 0), |(w, x), (_, rx, rw)| (w + rw.len(), x + rx.len()));
    let pad = persist::write::w_front_padding(rw_total);
    let (mut w, mut x) = (vec![0u8; pad], Vec::new());
    index.clients = data
        .into_iter()
        .map(|(ro, rx, rw)| {
            let c = ClientData {
                ro,
                rw_offset: w.len() as u32,
                rw_len: rw.len() as u32,
                rx_offset: x.len() as u32,
                rx_len: rx.len() as u32,
            };
            w.extend_from_slice(&rw);
            x.extend_from_slice(&rx);
            c
        })
        .collect();
    index.client_zones = None;
    if rw_total + rx_total > 0 {
        index.client_zones = Some((next_zone as u32, next_zone as u32 + 1));
        zones.push((ZoneKind::Writable, w));
        zones.push((ZoneKind::Exec, x));
    }
}

/// The (W, X) zones of `seg` holding `blocks`, whose entries are added to
/// `index`. X is the segment's code with each exit of these blocks
/// rewritten to a direct branch when it goes forward to a block of this
/// segment, else to `jmp [rip + slot]`; W is zeros but for the blocks' client
/// data (as it is now) and exit slots, which hold X offsets (of the target
/// block when it is in this segment, else of the exit's stub) that the
/// loader rebases.
fn write_segment(
    seg: &LiveSegment,
    base: u64,
    blocks: &[&(&UnitBlock, &Fragment)],
    w_zone: u32,
    index: &mut Index,
) -> (Vec<u8>, Vec<u8>) {
    let w_len = page_up((seg.split - seg.w_next) as usize);
    let w_off = |addr: u64| w_len - (seg.split - addr) as usize;
    let x_off = |addr: u64| (addr - seg.split) as usize;
    let mut w = vec![0u8; w_len];
    // SAFETY: [split, x_next) is this segment's emitted code.
    let mut x = unsafe { core::slice::from_raw_parts(seg.split as *const u8, (seg.x_next - seg.split) as usize) }.to_vec();
    let here: HashMap<u64, u64> = blocks.iter().map(|(b, f)| (b.tag, f.start)).collect();
    let first_exit = index.exits.len() as u32;
    let segment = index.segments.len() as u32;
    for (b, f) in blocks {
        let block_first_exit = index.exits.len() as u32;
        for e in &f.exits {
            let at = x_off(e.branch);
            let forward = here.get(&e.target).copied().filter(|&t| t > e.branch);
            // The branch was emitted padded to the file form's length.
            let mut form = Vec::with_capacity(encoder::persistable_exit_len(e.cond));
            match forward {
                // Forward in the same segment: a direct branch. A path of
                // those always ends, at a slot (which can be unlinked),
                // so a thread in this code still reaches the dispatcher.
                Some(to) => encoder::exit_direct(&mut form, e.branch, e.cond, to),
                None => encoder::exit_via_slot(&mut form, e.branch, e.cond, e.slot),
            }
            x[at..at + form.len()].copy_from_slice(&form);
            let goes_to = here.get(&e.target).copied().unwrap_or(e.stub);
            let slot = w_off(e.slot);
            w[slot..slot + 8].copy_from_slice(&(x_off(goes_to) as u64).to_le_bytes());
            index.exits.push(ExitEntry {
                slot: slot as u32,
                stub: x_off(e.stub) as u32,
                target: e.target.wrapping_sub(base) as i64,
            });
        }
        let translation_offset = index.translations.len() as u32;
        translations::pack(
            &mut index.translations,
            f.translations.iter().map(|t| translations::Entry {
                cache_offset: t.cache_offset,
                app_offset: (t.app_pc - b.tag) as u32,
                fixup: t.fixup.encode(),
            }),
        );
        let first_data = index.block_data.len() as u32;
        for d in b.data.iter().filter(|d| seg.contains(d.addr)) {
            let at = w_off(d.addr);
            // SAFETY: the client's live block data in this segment's W.
            w[at..at + d.len as usize].copy_from_slice(unsafe { core::slice::from_raw_parts(d.addr as *const u8, d.len as usize) });
            index.block_data.push(BlockData { client: d.client, w_offset: at as u32 });
        }
        let code = x_off(f.start)..x_off(f.start) + f.size as usize;
        crate::client_host::persist_patch(base, b.tag, &mut x[code]);
        index.blocks.push(BlockEntry {
            module_offset: (b.tag - base) as u32,
            app_len: (f.app_end - b.tag) as u32,
            segment,
            code_offset: x_off(f.start) as u32,
            code_len: f.size,
            first_exit: block_first_exit,
            exit_count: index.exits.len() as u32 - block_first_exit,
            translation_offset,
            translation_len: index.translations.len() as u32 - translation_offset,
            first_data,
            data_count: index.block_data.len() as u32 - first_data,
            flags: if b.ahead_of_time { BlockEntry::AHEAD_OF_TIME } else { 0 },
        });
    }
    index.segments.push(Segment {
        w_zone,
        x_zone: w_zone + 1,
        base_slot: w_off(seg.base_slot) as u32,
        first_exit,
        exit_count: index.exits.len() as u32 - first_exit,
    });
    (w, x)
}
