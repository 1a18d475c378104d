//! The fragment table: every block in the code cache, by the app pc it
//! starts at, with what linking and fault translation need.

use alloc::vec::Vec;

use hashbrown::HashMap;

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
    /// (cache offset, app pc) at each point the app pc changes, for
    /// translating a fault in the cache back to the application.
    pub translations: Vec<(u32, u64)>,
}

#[derive(Default)]
pub struct FragmentTable {
    by_tag: HashMap<u64, Fragment>,
}

impl FragmentTable {
    pub fn get(&self, tag: u64) -> Option<&Fragment> {
        self.by_tag.get(&tag)
    }

    pub fn insert(&mut self, fragment: Fragment) {
        self.by_tag.insert(fragment.tag, fragment);
    }
}
