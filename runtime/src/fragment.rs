//! The fragment table: every block in the code cache, by the app pc it
//! starts at, with what linking and fault translation need.

use alloc::vec::Vec;

use hashbrown::HashMap;

use crate::mangle::Fixup;

/// A direct exit of a fragment.
pub struct ExitRecord {
    /// Address of the rel32 field of the body's branch for this exit.
    pub patch_site: u64,
    /// The exit stub the branch points at while unlinked.
    pub stub: u64,
    pub target: u64,
}

pub struct Fragment {
    pub tag: u64,
    pub start: u64,
    pub size: u32,
    pub exits: Vec<ExitRecord>,
    /// Each point where the app pc or the state fixup changes, in cache
    /// order, for translating a fault in the cache back to the application.
    pub translations: Vec<Translation>,
}

pub struct Translation {
    pub cache_offset: u32,
    pub app_pc: u64,
    pub fixup: Fixup,
}

impl Fragment {
    /// The translation in force at cache address `pc` inside this fragment.
    pub fn translation_at(&self, pc: u64) -> Option<&Translation> {
        let offset = pc.checked_sub(self.start)? as u32;
        let i = self.translations.partition_point(|t| t.cache_offset <= offset);
        self.translations.get(i.checked_sub(1)?)
    }
}

#[derive(Default)]
pub struct FragmentTable {
    by_tag: HashMap<u64, Fragment>,
    /// (cache start, tag), in cache order: the cache is filled upwards.
    by_start: Vec<(u64, u64)>,
}

impl FragmentTable {
    pub fn get(&self, tag: u64) -> Option<&Fragment> {
        self.by_tag.get(&tag)
    }

    pub fn insert(&mut self, fragment: Fragment) {
        debug_assert!(self.by_start.last().is_none_or(|&(s, _)| s < fragment.start));
        self.by_start.push((fragment.start, fragment.tag));
        self.by_tag.insert(fragment.tag, fragment);
    }

    /// The fragment whose code contains cache address `pc`.
    pub fn containing(&self, pc: u64) -> Option<&Fragment> {
        let i = self.by_start.partition_point(|&(start, _)| start <= pc);
        let (_, tag) = *self.by_start.get(i.checked_sub(1)?)?;
        let f = self.by_tag.get(&tag)?;
        (pc < f.start + f.size as u64).then_some(f)
    }
}
