//! Writing persisted files: at module unload and process exit, the live
//! blocks of each module's unit the file in use lacks become a delta
//! (their own segments, as a file of their own would hold them), handed
//! to the cache server or merged (`persist::merge`) under the file's
//! lock with what the file holds now.

use alloc::vec::Vec;

use persist::index::{BlockEntry, Mark};
use persist::merge::{Fresh, Parts, EVERY_BLOCK, MIN_GROWTH_DIVISOR};

use crate::translate::fragment::{Fragment, FragmentTable};
use crate::translate::trace_table::TraceTable;
use crate::persistence::aot_batches;
use crate::persistence::delta::delta_of;
use crate::persistence::files as files;
use crate::persistence::load::LoadedFiles;
use crate::persistence::server::Server;
use crate::persistence::units::{Unit, UnitBlock, UnitTrace};
use crate::stats::{self, STATS};
use crate::os::sys;

/// The translator's live code, which a save takes units' blocks and
/// traces from (those flushed meanwhile are not saved, nor traces
/// retired as stale that a new one took the place of).
#[derive(Clone, Copy)]
pub(crate) struct Live<'a> {
    pub(crate) fragments: &'a FragmentTable,
    pub(crate) traces: &'a TraceTable,
}

/// This run's blocks and traces of a unit that the file in use lacks, and
/// the flags to set on the file's blocks (lookup targets, cold heads).
struct New<'a> {
    blocks: Vec<(&'a UnitBlock, &'a Fragment)>,
    traces: Vec<(&'a UnitTrace, &'a Fragment)>,
    /// By module offset, increasing; each sets only flags the file lacks.
    marks: Vec<Mark>,
}

impl New<'_> {
    fn none() -> Self {
        New { blocks: Vec::new(), traces: Vec::new(), marks: Vec::new() }
    }

    fn fresh(&self) -> Fresh {
        Fresh::of(self.blocks.len(), self.traces.len(), self.marks.iter().map(|m| m.flags))
    }

    fn marks_of(&self, flag: u32) -> usize {
        self.marks.iter().filter(|m| m.flags & flag != 0).count()
    }
}

/// Writes every unit with new blocks or traces to its module's file.
pub(crate) fn save_units(units: &[Unit], live: Live, loaded: &LoadedFiles) {
    let t0 = stats::ticks();
    let options = crate::options::get();
    // The server takes any new block (`hand_over`).
    let wanted = options.persist_server && units.iter().any(|u| worth_saving(u, live, loaded, EVERY_BLOCK).is_some());
    let mut server = options.persist_dir.filter(|_| wanted).and_then(|dir| crate::persistence::server::connect(&dir));
    for unit in units {
        save_unit(unit, live, loaded, &mut server, MIN_GROWTH_DIVISOR);
    }
    report_built(units);
    stats::add(&STATS.persist_ticks, stats::ticks() - t0);
}

/// Ahead-of-time translation's checkpoint, before the blocks' memory is
/// reused for the next batch: the new blocks of `unit` are set aside in a
/// file of their own (`aot_batches`), and at the `last` checkpoint of its
/// module merged with every batch set aside into the module's file, by
/// this process (a huge module's last batch may be small next to its
/// file, and the server's merges would drop it).
pub(crate) fn checkpoint(unit: &Unit, live: Live, loaded: &LoadedFiles, last: bool) {
    let t0 = stats::ticks();
    if last {
        let batches = aot_batches::take(unit.module_base);
        finish_batches(unit, live, loaded, &batches);
    } else if !set_aside(unit, live, loaded) {
        save_unit(unit, live, loaded, &mut None, EVERY_BLOCK);
    }
    report_built(core::slice::from_ref(unit));
    // The module's next unit starts counting from zero.
    REPORTED.lock().retain(|(b, _)| *b != unit.module_base);
    stats::add(&STATS.persist_ticks, stats::ticks() - t0);
}

/// Writes the new blocks of `unit` to a file of their own, set aside for
/// the module's last checkpoint; false if that could not be done (the
/// caller merges them now).
fn set_aside(unit: &Unit, live: Live, loaded: &LoadedFiles) -> bool {
    let Some(dir) = crate::options::get().persist_dir else { return true };
    if unit.tainted {
        return false;
    }
    let Some((new, _)) = worth_saving(unit, live, loaded, EVERY_BLOCK) else { return true };
    let Some((key, path)) = destination(unit, loaded) else { return false };
    let delta = delta_of(unit, &new.blocks, &new.traces, &new.marks, live.traces);
    let zones = delta.zone_refs();
    match files::write_unnamed(&dir, &persist::write::lay_out(&key, &delta.index, &zones)) {
        Ok(batch) => {
            aot_batches::set_aside(unit.module_base, batch);
            stats::add(&STATS.blocks_persisted, new.blocks.len() as u64);
            crate::verbose!("persist: set aside a batch of {} blocks of {}", new.blocks.len(), files::display(&path));
            true
        }
        Err(e) => {
            crate::verbose!("persist: cannot set aside a batch of {} ({e}): merging it now", files::display(&path));
            false
        }
    }
}

/// The module's last checkpoint: its file takes the batches set aside and
/// the blocks built since.
fn finish_batches(unit: &Unit, live: Live, loaded: &LoadedFiles, batches: &[files::OnDisk]) {
    if batches.is_empty() || unit.tainted {
        return save_unit(unit, live, loaded, &mut None, EVERY_BLOCK);
    }
    let Some((key, path)) = destination(unit, loaded) else { return };
    let new_here = worth_saving(unit, live, loaded, EVERY_BLOCK).map_or_else(New::none, |(new, _)| new);
    write_merged(unit, &new_here, live, loaded, &key, &path, EVERY_BLOCK, batches);
}

/// At the end of a process (exit or exec) with a cache server: a detached
/// copy of the process (`os::detached`) builds the deltas and hands them
/// over while the process ends at once; the process itself only reports
/// what is being handed over. False, with nothing done, when that cannot
/// be: no server answers, or other threads run (one of them could hold a
/// lock the copy would lack); the caller then saves as usual.
pub(crate) fn hand_over_in_background(units: &[Unit], live: Live, loaded: &LoadedFiles) -> bool {
    let t0 = stats::ticks();
    let options = crate::options::get();
    let Some(dir) = options.persist_dir.filter(|_| options.persist_server) else { return false };
    // Most warm runs have nothing to hand over: no copy then. A small
    // delta goes in the copy too (building one took a cc1 run's end 5 ms),
    // but is not reported as written.
    let handed: Vec<(&Unit, usize, usize, bool)> = units
        .iter()
        .filter_map(|u| to_hand_over(u, live, loaded, MIN_GROWTH_DIVISOR).map(|(new, in_use, small)| (u, new.blocks.len(), in_use, small)))
        .collect();
    if handed.is_empty() || crate::os::detached::thread_count() != Some(1) {
        return false;
    }
    let Some(server) = crate::persistence::server::connect(&dir) else { return false };
    let log = if options.verbose { crate::log::fd() } else { -1 };
    match crate::os::detached::fork_detached(c"dbi-persist", &[server.raw_fd(), log]) {
        Ok(crate::os::detached::Forked::Child) => {
            let mut server = Some(server);
            for unit in units {
                save_unit(unit, live, loaded, &mut server, MIN_GROWTH_DIVISOR);
            }
            warn_about_write_failures();
            sys::exit_group(0)
        }
        Ok(crate::os::detached::Forked::Parent) => {
            drop(server);
            for (unit, new, in_use, _) in handed.into_iter().filter(|&(_, _, _, small)| !small) {
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

/// This run's blocks and traces of `unit` the file in use lacks, and the
/// blocks that file has; None when there are no new traces and no new
/// blocks or fewer than one per `growth` blocks held, not worth a
/// rewrite (decided without reading the file again), or the unit's code
/// changed.
fn worth_saving<'a>(unit: &'a Unit, live: Live<'a>, loaded: &LoadedFiles, growth: usize) -> Option<(New<'a>, usize)> {
    if unit.tainted {
        return None;
    }
    let blocks: Vec<(&UnitBlock, &Fragment)> = unit
        .blocks
        .iter()
        .filter_map(|b| live.fragments.get(b.tag).filter(|f| f.start == unit.start_of(b)).map(|f| (b, f)))
        .filter(|(b, _)| !loaded.has_block(unit.module_base, unit.identity, b.tag))
        .collect();
    // With the traces it found stale and recorded none in place of (the
    // delta gives them a larger budget).
    let traces: Vec<(&UnitTrace, &Fragment)> = unit
        .traces
        .iter()
        .filter_map(|t| {
            let live_one = live.traces.get(t.head).filter(|f| f.start == t.start);
            live_one.or_else(|| live.traces.stale_trace(t.head, t.start)).map(|f| (t, f))
        })
        .collect();
    let marks = marks_for(unit, live, loaded);
    let in_use = loaded.block_count(unit.module_base, unit.identity);
    let new = New { blocks, traces, marks };
    persist::merge::worth_rewriting(new.fresh(), in_use, growth).then_some((new, in_use))
}

/// The flags this run learnt of the blocks of `unit`'s file in use: the
/// lookup targets indirect branches reached, the heads it counted and
/// never found hot, and the heads whose file trace went stale with none
/// recorded in its place (blocks the file lacks are flagged in the delta).
fn marks_for(unit: &Unit, live: Live, loaded: &LoadedFiles) -> Vec<Mark> {
    let (base, identity) = (unit.module_base, unit.identity);
    // Heads a file's counting stubs counted the dispatcher never saw are
    // cold as well.
    let in_file = loaded.heads_counted_in_file(base, identity).into_iter().filter(|&t| !live.traces.is_head(t));
    let cold = live.traces.cold_heads_in(base, unit.module_end).chain(in_file).filter(|&t| loaded.unflagged_cold_head(t, base, identity));
    // The file's traces this run found stale and recorded none in place
    // of, while their budget can grow.
    let stale = live.traces.traceless_removed_in(base, unit.module_end).filter(|&t| loaded.trace_budget_may_grow(t, base, identity));
    let mut flagged: Vec<(u32, u32)> = unit
        .lookup_marks
        .iter()
        .map(|&o| (o, BlockEntry::LOOKUP_TARGET))
        .chain(cold.map(|t| ((t - base) as u32, BlockEntry::COLD_HEAD)))
        .chain(stale.map(|t| ((t - base) as u32, BlockEntry::STALE_TRACE)))
        .collect();
    flagged.sort_unstable();
    let mut marks: Vec<Mark> = Vec::with_capacity(flagged.len());
    for (module_offset, flag) in flagged {
        match marks.last_mut() {
            Some(m) if m.module_offset == module_offset => m.flags |= flag,
            _ => marks.push(Mark { module_offset, flags: flag }),
        }
    }
    marks
}

fn save_unit(unit: &Unit, live: Live, loaded: &LoadedFiles, server: &mut Option<Server>, growth: usize) {
    if crate::options::get().persist_dir.is_none() {
        return;
    }
    if unit.tainted {
        crate::verbose!("persist: not writing {}: its code changed during the run", unit.path);
        return;
    }
    if let Some(s) = server.as_ref() {
        match hand_over(unit, live, loaded, s, growth) {
            Ok(()) => return,
            Err(why) => {
                let path = destination(unit, loaded).map(|(_, p)| p).unwrap_or_default();
                crate::verbose!("persist: the cache server did not take {} ({why}): writing files", files::display(&path));
                *server = None;
            }
        }
    }
    let Some((new_here, _)) = worth_saving(unit, live, loaded, growth) else { return };
    let Some((key, path)) = destination(unit, loaded) else { return };
    write_merged(unit, &new_here, live, loaded, &key, &path, growth, &[]);
}

/// Hands the server this run's new blocks of `unit`. A delta worth a
/// rewrite of its own (at least one block per `growth` held) goes less
/// what concurrent runs handed over first; a smaller one goes as it is,
/// without reading the file, and the server gathers it with other runs'
/// until together they are worth a rewrite (a block built in every run,
/// however few, is built by none once merged).
fn hand_over(unit: &Unit, live: Live, loaded: &LoadedFiles, s: &Server, growth: usize) -> Result<(), &'static str> {
    let Some((new_here, in_use, small)) = to_hand_over(unit, live, loaded, growth) else { return Ok(()) };
    let Some((key, path)) = destination(unit, loaded) else { return Ok(()) };
    let new_here = if small {
        new_here
    } else {
        // What concurrent runs handed over first is not built again (the
        // index is enough: a structure check, no zone is copied; none for
        // a version checked whole before, whose index the memo vouches
        // for as it does at a load: hashing python3's AOT index took the
        // hand-over ~10 ms).
        let on_disk = files::OnDisk::read(&path);
        let depth = |d: &files::OnDisk| match d.identity {
            Some(id) if files::verified_before(&path, id) => persist::Depth::Trusted,
            _ => persist::Depth::Structure,
        };
        let disk = on_disk.as_ref().and_then(|d| persist::validate_with(d.bytes(), depth(d)).ok()).filter(|v| v.key == key);
        match not_on_disk(&new_here, unit, loaded, disk.as_ref(), growth) {
            Some(left) => left,
            None => return Ok(()),
        }
    };
    let delta = delta_of(unit, &new_here.blocks, &new_here.traces, &new_here.marks, live.traces);
    let zones = delta.zone_refs();
    let layout = persist::write::lay_out(&key, &delta.index, &zones);
    s.hand_over(files::file_name(&path), &layout)?;
    if !small {
        note_handed_over(&path, new_here.blocks.len(), in_use);
    }
    crate::verbose!(
        "persist: handed {} new blocks, {} traces, {} lookup targets and {} cold heads of {} to the cache server{}",
        new_here.blocks.len(),
        new_here.traces.len(),
        new_here.marks_of(BlockEntry::LOOKUP_TARGET),
        new_here.marks_of(BlockEntry::COLD_HEAD),
        files::display(&path),
        if small { " to gather" } else { "" }
    );
    Ok(())
}

/// What of `unit` goes to the cache server: this run's new blocks (and
/// traces and marks), the blocks its file holds, and whether the delta is
/// small (no rewrite's worth at `growth`: the server gathers it); None
/// when nothing goes, a small delta included when the file takes no more
/// (`persist::merge::MAX_ZONES_FOR_SMALL`: built by every run until the
/// file is translated again).
fn to_hand_over<'a>(unit: &'a Unit, live: Live<'a>, loaded: &LoadedFiles, growth: usize) -> Option<(New<'a>, usize, bool)> {
    let (new, in_use) = worth_saving(unit, live, loaded, EVERY_BLOCK)?;
    let small = !persist::merge::worth_rewriting(new.fresh(), in_use, growth);
    (!small || loaded.takes_small_deltas(unit.module_base, unit.identity)).then_some((new, in_use, small))
}

/// Where the blocks of `unit` go: the key of its module as it is now, and
/// its file.
fn destination(unit: &Unit, loaded: &LoadedFiles) -> Option<(persist::CacheKey, Vec<u8>)> {
    let dir = crate::options::get().persist_dir?;
    let module_hash = loaded
        .module_hash_for(unit.module_base, unit.identity)
        .or_else(|| crate::os::modules::content_hash(&unit.path, unit.identity))?;
    Some((crate::persistence::key::key_for(module_hash, unit.module_base), files::file_for(&dir, &unit.path)))
}

/// Merges the `batches` set aside (oldest first) and `new_here` into the
/// module's file on disk, under its lock.
#[allow(clippy::too_many_arguments)]
fn write_merged(
    unit: &Unit,
    new_here: &New,
    live: Live,
    loaded: &LoadedFiles,
    key: &persist::CacheKey,
    path: &[u8],
    growth: usize,
    batches: &[files::OnDisk],
) {
    let Some(lock) = files::lock(path) else {
        crate::verbose!("persist: cannot lock {}", files::display(path));
        return;
    };
    let on_disk = files::OnDisk::read(path);
    // The old zones are copied as they are, so they must be sound: fully
    // checked unless this version of the file was checked before. A file
    // that fails is replaced.
    let depth = match on_disk.as_ref().and_then(|d| d.identity) {
        Some(id) if files::verified_before(path, id) => persist::Depth::Structure,
        _ => persist::Depth::Full,
    };
    let old = on_disk.as_ref().and_then(|d| persist::validate_with(d.bytes(), depth).ok()).filter(|v| v.key == *key);
    let fresh = match not_on_disk(new_here, unit, loaded, old.as_ref(), growth) {
        Some(fresh) => fresh,
        None if batches.is_empty() => return,
        None => New::none(),
    };
    // This process wrote the batches: their structure is checked, not
    // their hashes.
    let set_aside: Vec<persist::Validated> =
        batches.iter().filter_map(|b| persist::validate_with(b.bytes(), persist::Depth::Structure).ok()).filter(|v| v.key == *key).collect();
    let mut file = old.as_ref().and_then(Parts::of).unwrap_or_default();
    let delta = delta_of(unit, &fresh.blocks, &fresh.traces, &fresh.marks, live.traces);
    let mut added = None;
    for part in set_aside.iter().filter_map(Parts::of).chain(core::iter::once(delta)) {
        if let Some(n) = persist::merge::merge(&mut file, part, growth) {
            added = Some(added.unwrap_or(0) + n);
        }
    }
    if let Some(added) = added {
        let index = &file.index;
        let zones = file.zone_refs();
        let published = files::publish(path, &persist::write::lay_out(key, index, &zones));
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
                stats::add(&STATS.blocks_persisted, fresh.blocks.len() as u64);
                crate::verbose!(
                    "persist: wrote {} ({} blocks and {} traces, {added} new)",
                    files::display(path),
                    index.blocks.len(),
                    index.traces.len(),
                );
            }
        }
    }
    drop(on_disk);
    files::unlock(lock);
}

/// `new` less what the module's file on disk (`disk`, checked) already
/// holds, which another process wrote meanwhile (its code would be dead
/// weight), and only its marks when it is mostly that
/// (`persist::merge::mostly_held`); None when what is left is not worth
/// a rewrite. A trace of a head whose trace this run loaded stays: it
/// replaces that one, which went stale in this run.
fn not_on_disk<'a>(new: &New<'a>, unit: &Unit, loaded: &LoadedFiles, disk: Option<&persist::Validated<'_>>, growth: usize) -> Option<New<'a>> {
    let base = unit.module_base;
    let replaces = |head: u64| loaded.has_trace(base, unit.identity, head);
    let on_file = |tag: u64| disk.is_some_and(|v| v.index.block_at((tag - base) as u32).is_some());
    let trace_on_file = |head: u64| !replaces(head) && disk.is_some_and(|v| v.index.trace_at((head - base) as u32).is_some());
    let (mut blocks, on_disk): (Vec<(&UnitBlock, &Fragment)>, Vec<_>) = new.blocks.iter().copied().partition(|(b, _)| !on_file(b.tag));
    let mut traces: Vec<(&UnitTrace, &Fragment)> = new.traces.iter().copied().filter(|(t, _)| !trace_on_file(t.head)).collect();
    // A run that built mostly what another wrote meanwhile hands over
    // its marks alone: its segments hold both.
    let code = |f: &Fragment| f.size as u64;
    let adds = blocks.iter().map(|(_, f)| code(f)).chain(traces.iter().map(|(_, f)| code(f))).sum();
    if persist::merge::mostly_held(on_disk.iter().map(|(_, f)| code(f)).sum(), adds) {
        blocks.clear();
        traces.clear();
    }
    let lacks = |m: &Mark| disk.map_or(0, |v| v.index.lacks_flags(m.module_offset, m.flags));
    let marks: Vec<Mark> = new.marks.iter().map(|m| Mark { flags: lacks(m), ..*m }).filter(|m| m.flags != 0).collect();
    let held = disk.map_or(0, |v| v.index.blocks.len());
    let left = New { blocks, traces, marks };
    persist::merge::worth_rewriting(left.fresh(), held, growth).then_some(left)
}
