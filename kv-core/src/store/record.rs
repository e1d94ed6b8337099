//! A stored key as one allocation, and the set of them: in key order, and indexed by key.
//!
//! ```text
//! Record: a thin pointer to one allocation of bytes
//!   0..4        key length, u32 LE; its top bit set: an expiry time follows the revision
//!   4..8        value length, u32 LE
//!   key         the key's bytes
//!   8 bytes     mod_revision, u64 LE
//!   [8 bytes]   expires_at, u64 LE (only if the top bit is set)
//!   value       the value's bytes
//! ```
//!
//! Why one allocation: a store of small keys is mostly overhead. A `BTreeMap<Vec<u8>, {
//! value: Vec<u8>, expires_at: Option<u64>, mod_revision: u64 }>` spends a 72-byte map slot and
//! two heap allocations per key: 284 bytes per key in all, measured. A record is one allocation
//! of 16 bytes more than its key and value, and an 8-byte pointer wherever it is listed
//! (docs/benchmarks.md, "Memory per key"). The expiry costs 8 bytes only in records that have
//! one; `Store::expiries` keeps their time order.
//!
//! Why a hash index beside the tree: scans need key order, which the B-tree gives; but a point
//! lookup in a B-tree of a million keys compares the key with some twenty records, each a cache
//! miss on its own allocation, and that search was 28% of a GET-loaded node's CPU
//! (docs/benchmarks.md, "A hash index"). [`Records`] lists every record twice: the tree owns
//! it, and a SwissTable (`hashbrown::HashTable`) holds a non-owning copy of its pointer, found
//! by a hash of the key, for `get`, `contains_key`, `prefetch`, the search half of `take`, and
//! `overwrite`, which rewrites a record of the same size where it lies. The index
//! costs 9 bytes per bucket, about 19 bytes per key at a million keys; the thin pointer saves 8
//! of them in the tree.
//!
//! The hash is keyed ([`seed_key_hash`]): clients choose the keys, and with a known seed they
//! could choose keys that all collide, which turns every lookup into a walk. The seed changes
//! no result, only where entries sit in the index (order comes from the tree), so runs stay
//! deterministic whatever it is.
//!
//! A record is ordered, compared and borrowed by its key alone ([`Borrow<[u8]>`]), so the tree
//! is searched with `&[u8]`; [`Records`] compares whole records, so two stores are equal when
//! every key, value, revision and expiry is.
//!
//! Why a frozen view ([`Records::freeze`]): a snapshot's image was encoded on the apply path,
//! stalling every write for 60–95 ns per key (a tenth of a second at a million keys). A
//! frozen view lists the records as they are, as pointers in key order, which takes a pass over
//! the tree's nodes and none over the records; the image is then encoded from it off the apply
//! path while writes go on. Until the last view is dropped the records it lists must neither
//! change nor be freed: the set is *pinned*. A pinned set rewrites no record in place, and a
//! record it replaces, takes out or drops is moved to the pin's retired list, which is freed
//! with the pin; its caller gets a copy.
//!
//! The `unsafe` here is the ownership of a record's bytes behind a thin pointer (a `Box<[u8]>`
//! taken apart, as `Vec` keeps its buffer), and the copies of those pointers that the index and
//! frozen views hold: valid while the tree, or a pin, holds their records. Every change of the
//! set goes through [`Records`], which keeps the index listing the tree's records and keeps
//! records a view lists alive and unchanged.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::collections::btree_set;
use std::fmt;
use std::hash::BuildHasher;
use std::mem::ManuallyDrop;
use std::ops::RangeBounds;
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;

use foldhash::fast::FixedState;
use hashbrown::HashTable;

/// The top bit of the key length word: an expiry time follows the revision.
const HAS_EXPIRY: u32 = 1 << 31;

/// Longest key a record holds: the length word keeps its top bit for [`HAS_EXPIRY`].
pub(super) const MAX_KEY_LEN: usize = (HAS_EXPIRY - 1) as usize;

/// Bytes of the two length words.
const HEADER: usize = 8;

/// The seed of the key hash of every [`Records`] made from now on.
static KEY_HASH_SEED: AtomicU64 = AtomicU64::new(0);

/// Seeds the hash by which stores made from now on index their keys. A node seeds it from the
/// operating system's randomness when it starts, so that no client can know which keys
/// collide; a store keeps the seed it was made with. Results never depend on it.
pub fn seed_key_hash(seed: u64) {
    KEY_HASH_SEED.store(seed, Relaxed);
}

/// A key with its value, the revision that last wrote it and its expiry time, in one
/// allocation laid out as the module docs draw it, owned through a thin pointer.
pub(super) struct Record(NonNull<u8>);

// SAFETY: a record owns its allocation as a `Box<[u8]>` would, and changes it only through
// `&mut` (`Records::overwrite`, never while a frozen view lists it), so sending or sharing it
// between threads is as safe as sending or sharing the box.
unsafe impl Send for Record {}
// SAFETY: as for `Send`: shared access only ever reads the bytes.
unsafe impl Sync for Record {}

impl Record {
    /// A record of `key` (at most [`MAX_KEY_LEN`] bytes) and `value` (under 4 GiB: the
    /// store's limits and an image's decoding keep both far below).
    pub(super) fn new(key: &[u8], value: &[u8], expires_at: Option<u64>, mod_revision: u64) -> Record {
        assert!(key.len() <= MAX_KEY_LEN, "a key of {} bytes", key.len());
        let value_len = u32::try_from(value.len()).expect("a value under 4 GiB");
        let word = key.len() as u32 | if expires_at.is_some() { HAS_EXPIRY } else { 0 };
        let expiry_bytes = if expires_at.is_some() { 8 } else { 0 };
        let mut bytes = Vec::with_capacity(HEADER + key.len() + 8 + expiry_bytes + value.len());
        bytes.extend_from_slice(&word.to_le_bytes());
        bytes.extend_from_slice(&value_len.to_le_bytes());
        bytes.extend_from_slice(key);
        bytes.extend_from_slice(&mod_revision.to_le_bytes());
        if let Some(t) = expires_at {
            bytes.extend_from_slice(&t.to_le_bytes());
        }
        bytes.extend_from_slice(value);
        let bytes: *mut [u8] = Box::into_raw(bytes.into_boxed_slice());
        Record(NonNull::new(bytes.cast::<u8>()).expect("a box is never null"))
    }

    /// The two length words, the allocation's first bytes.
    fn header(&self) -> (u32, u32) {
        // SAFETY: the pointer is to a live allocation of at least `HEADER` bytes (`new` wrote
        // them), which nothing writes while the record exists; `[u8; 8]` needs no alignment.
        let header = unsafe { self.0.as_ptr().cast::<[u8; HEADER]>().read() };
        let (word, value_len) = header.split_at(4);
        (
            u32::from_le_bytes(word.try_into().expect("4 bytes")),
            u32::from_le_bytes(value_len.try_into().expect("4 bytes")),
        )
    }

    /// Length of the allocation, from the header.
    fn len(&self) -> usize {
        let (word, value_len) = self.header();
        let expiry_bytes = if word & HAS_EXPIRY != 0 { 8 } else { 0 };
        HEADER + (word & !HAS_EXPIRY) as usize + 8 + expiry_bytes + value_len as usize
    }

    /// The whole allocation.
    fn bytes(&self) -> &[u8] {
        // SAFETY: `new` allocated exactly `len()` bytes (the header records the key and value
        // lengths and the expiry flag it laid them out by) and initialized them; nothing frees
        // or writes them while `self` is borrowed.
        unsafe { std::slice::from_raw_parts(self.0.as_ptr(), self.len()) }
    }

    /// The whole allocation, to rewrite.
    fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `bytes`; `&mut self` is an alias of the index (`Records::overwrite`)
        // reached through `&mut Records` of an unpinned set, so no other reference to these
        // bytes is alive: no frozen view lists them.
        unsafe { std::slice::from_raw_parts_mut(self.0.as_ptr(), self.len()) }
    }

    fn word(&self) -> u32 {
        self.header().0
    }

    /// Where the key ends and the revision starts.
    fn key_end(&self) -> usize {
        HEADER + (self.word() & !HAS_EXPIRY) as usize
    }

    fn u64_at(&self, at: usize) -> u64 {
        u64::from_le_bytes(self.bytes()[at..at + 8].try_into().expect("8 bytes"))
    }

    /// The key.
    pub(super) fn key(&self) -> &[u8] {
        &self.bytes()[HEADER..self.key_end()]
    }

    /// The revision of the write that last changed the key.
    pub(super) fn mod_revision(&self) -> u64 {
        self.u64_at(self.key_end())
    }

    /// When the key expires, if it does.
    pub(super) fn expires_at(&self) -> Option<u64> {
        (self.word() & HAS_EXPIRY != 0).then(|| self.u64_at(self.key_end() + 8))
    }

    /// The value.
    pub(super) fn value(&self) -> &[u8] {
        let header = if self.word() & HAS_EXPIRY != 0 { 16 } else { 8 };
        &self.bytes()[self.key_end() + header..]
    }

    /// Whether a reader whose clock reads `now` sees the key.
    pub(super) fn is_live(&self, now: u64) -> bool {
        self.expires_at().is_none_or(|t| t > now)
    }

    /// Asks the processor to start loading the record's first bytes into its cache, for a
    /// caller that will read it shortly (a no-op off x86-64).
    pub(super) fn prefetch(&self) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a prefetch only hints the cache and never faults, whatever the address; SSE,
        // which `_mm_prefetch` needs, is part of the x86-64 baseline.
        unsafe {
            use std::arch::x86_64::_MM_HINT_T0;
            use std::arch::x86_64::_mm_prefetch;
            _mm_prefetch::<_MM_HINT_T0>(self.0.as_ptr().cast());
        }
    }

    /// Key and value bytes: what `Store::bytes` counts.
    pub(super) fn counted_bytes(&self) -> u64 {
        let (word, value_len) = self.header();
        u64::from(word & !HAS_EXPIRY) + u64::from(value_len)
    }

    /// A second handle on the same allocation, for the index or a frozen view: it must never be
    /// dropped (hence `ManuallyDrop`) nor outlive the record (in the tree, or in the retired
    /// list of the pin a view holds).
    fn alias(&self) -> ManuallyDrop<Record> {
        ManuallyDrop::new(Record(self.0))
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        let len = self.len();
        // SAFETY: the pointer and length are those of the `Box<[u8]>` that `new` took apart,
        // and this is the one owner (the index's aliases are never dropped), dropping it once.
        drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(self.0.as_ptr(), len)) });
    }
}

impl Clone for Record {
    fn clone(&self) -> Self {
        let bytes: *mut [u8] = Box::into_raw(Box::<[u8]>::from(self.bytes()));
        Record(NonNull::new(bytes.cast::<u8>()).expect("a box is never null"))
    }
}

impl Borrow<[u8]> for Record {
    fn borrow(&self) -> &[u8] {
        self.key()
    }
}

impl PartialEq for Record {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Record {}

impl PartialOrd for Record {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Record {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(other.key())
    }
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Record")
            .field("key", &self.key())
            .field("value", &self.value())
            .field("expires_at", &self.expires_at())
            .field("mod_revision", &self.mod_revision())
            .finish()
    }
}

/// The store's records in key order, and indexed by a hash of the key (see the module docs).
///
/// Invariants:
/// - `index` holds exactly one alias of every record in `tree` and nothing else. The aliases
///   point into the tree's records, so a record leaves the tree only after (or in the same call
///   as) its alias leaves the index, and no alias is ever dropped as a record.
/// - While `pin` is set, no record of the tree is rewritten, and a record leaving the tree (or
///   dropped with it) goes to the pin's retired list: a [`Frozen`] view holding the pin may
///   list it. `pin` is dropped once no view holds it.
pub(super) struct Records {
    /// The owner of every record, in key order.
    tree: BTreeSet<Record>,
    /// An alias of every record of `tree`, by the hash of its key.
    index: HashTable<ManuallyDrop<Record>>,
    hasher: FixedState,
    /// Set while a frozen view may list some of the records.
    pin: Option<Arc<Pin>>,
}

/// What keeps the records listed by frozen views alive: those that left the set after the
/// views were made. Freed when the set and every view have let go of it.
#[derive(Debug, Default)]
struct Pin {
    retired: Mutex<Vec<Record>>,
}

impl Pin {
    /// Keeps `records` until the pin is dropped.
    fn retire(&self, records: impl IntoIterator<Item = Record>) {
        self.retired
            .lock()
            .expect("retired records lock poisoned")
            .extend(records);
    }
}

/// The records of a set as they were when it was frozen ([`Records::freeze`]), in key order:
/// their bytes stay as they were, and alive, until the view is dropped, whatever the set does
/// meanwhile. A view can be sent to another thread and read there while the set changes.
pub(super) struct Frozen {
    /// Aliases of the records, in key order.
    records: Vec<ManuallyDrop<Record>>,
    /// Keeps the records that leave the set alive.
    _pin: Arc<Pin>,
}

impl Frozen {
    /// The records, in key order.
    pub(super) fn iter(&self) -> impl ExactSizeIterator<Item = &Record> + Clone {
        self.records.iter().map(|r| &**r)
    }
}

impl fmt::Debug for Frozen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Frozen").field("records", &self.records.len()).finish()
    }
}

impl Records {
    /// Records of `tree`, indexed by `hasher`.
    fn from_tree(tree: BTreeSet<Record>, hasher: FixedState) -> Records {
        let mut index = HashTable::with_capacity(tree.len());
        for record in &tree {
            index.insert_unique(
                hasher.hash_one(record.key()),
                record.alias(),
                |r: &ManuallyDrop<Record>| hasher.hash_one(r.key()),
            );
        }
        Records {
            tree,
            index,
            hasher,
            pin: None,
        }
    }

    /// Whether a frozen view may still list some of the records; lets go of the pin when none
    /// does.
    fn pinned(&mut self) -> bool {
        // `get_mut` succeeds only on the last handle, and synchronizes with the views' drops:
        // their reads of the records happen before whatever the set does with them next.
        if self.pin.as_mut().is_some_and(|pin| Arc::get_mut(pin).is_some()) {
            self.pin = None;
        }
        self.pin.is_some()
    }

    /// `record`, which just left the tree: itself, or when the set is pinned, a copy, the
    /// record itself staying with the pin for the views that list it.
    fn release(&mut self, record: Record) -> Record {
        match &self.pin {
            Some(pin) => {
                let copy = record.clone();
                pin.retire([record]);
                copy
            }
            None => record,
        }
    }

    /// A view of the records as they are now, listed in key order, for reading elsewhere (a
    /// snapshot's image is encoded from it while writes go on); the set is pinned until every
    /// view is dropped. Costs a pass over the tree's nodes (8 bytes per record), none over the
    /// records themselves.
    pub(super) fn freeze(&mut self) -> Frozen {
        // A pin no view holds any more is let go of first: its retired records are freed.
        self.pinned();
        let pin = Arc::clone(self.pin.get_or_insert_default());
        Frozen {
            records: self.tree.iter().map(Record::alias).collect(),
            _pin: pin,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.tree.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }

    pub(super) fn get(&self, key: &[u8]) -> Option<&Record> {
        let hash = self.hasher.hash_one(key);
        self.index.find(hash, |r| r.key() == key).map(|r| &**r)
    }

    /// Starts loading the record `key` would be found at into the cache, for a caller about to
    /// look up several keys: their cache misses then overlap instead of queueing one behind
    /// another (a no-op off x86-64).
    pub(super) fn prefetch(&self, key: &[u8]) {
        let hash = self.hasher.hash_one(key);
        if let Some(record) = self.index.iter_hash(hash).next() {
            record.prefetch();
        }
    }

    pub(super) fn contains_key(&self, key: &[u8]) -> bool {
        self.get(key).is_some()
    }

    /// Puts `record` in, returning the one it replaces (same key; a copy while pinned).
    pub(super) fn replace(&mut self, record: Record) -> Option<Record> {
        self.pinned();
        let hash = self.hasher.hash_one(record.key());
        let alias = record.alias();
        let previous = self.tree.replace(record);
        match &previous {
            // The replaced record is alive until this returns: its alias is found by address.
            Some(previous) => {
                let slot = self
                    .index
                    .find_mut(hash, |r| r.0 == previous.0)
                    .expect("every record of the tree is indexed");
                *slot = alias;
            }
            None => {
                let hasher = &self.hasher;
                self.index.insert_unique(hash, alias, |r| hasher.hash_one(r.key()));
            }
        }
        previous.map(|previous| self.release(previous))
    }

    /// Rewrites `key`'s record in place, when it has one laid out alike (the same value length,
    /// and an expiry time or none, as the new one): no search of the tree and no allocation,
    /// which is most of what a SET costs otherwise. `before` sees the record first. Returns
    /// whether it did; if not (as always while pinned), nothing changed.
    pub(super) fn overwrite(
        &mut self,
        key: &[u8],
        value: &[u8],
        expires_at: Option<u64>,
        mod_revision: u64,
        before: impl FnOnce(&Record),
    ) -> bool {
        if self.pinned() {
            return false;
        }
        let hash = self.hasher.hash_one(key);
        let Some(record) = self.index.find_mut(hash, |r| r.key() == key) else {
            return false;
        };
        if record.value().len() != value.len() || record.expires_at().is_some() != expires_at.is_some() {
            return false;
        }
        before(record);
        let revision_at = record.key_end();
        let bytes = record.bytes_mut();
        bytes[revision_at..revision_at + 8].copy_from_slice(&mod_revision.to_le_bytes());
        let value_at = match expires_at {
            Some(t) => {
                bytes[revision_at + 8..revision_at + 16].copy_from_slice(&t.to_le_bytes());
                revision_at + 16
            }
            None => revision_at + 8,
        };
        bytes[value_at..].copy_from_slice(value);
        true
    }

    /// Takes `key`'s record out (a copy of it while pinned).
    pub(super) fn take(&mut self, key: &[u8]) -> Option<Record> {
        self.pinned();
        let hash = self.hasher.hash_one(key);
        let Ok(entry) = self.index.find_entry(hash, |r| r.key() == key) else {
            return None;
        };
        entry.remove();
        let record = self.tree.take(key).expect("every indexed record is in the tree");
        // A store that shrank to a quarter of its peak gives the index's memory back (at half
        // load, so that it does not grow again at the next few writes).
        if self.index.capacity() > 1024 && self.index.len() * 4 < self.index.capacity() {
            let hasher = &self.hasher;
            self.index.shrink_to(self.index.len() * 2, |r| hasher.hash_one(r.key()));
        }
        Some(self.release(record))
    }

    pub(super) fn clear(&mut self) {
        self.index = HashTable::new();
        let tree = std::mem::take(&mut self.tree);
        self.let_go(tree);
    }

    /// Frees the records of `tree`, which left the set; while pinned, moves them to the pin.
    fn let_go(&mut self, tree: BTreeSet<Record>) {
        self.pinned();
        if let Some(pin) = &self.pin {
            pin.retire(tree);
        }
    }

    pub(super) fn iter(&self) -> btree_set::Iter<'_, Record> {
        self.tree.iter()
    }

    /// The records whose keys lie in `range`, in key order (`start > end` panics, as
    /// `BTreeSet::range` does).
    pub(super) fn range<'a>(&self, range: impl RangeBounds<&'a [u8]>) -> btree_set::Range<'_, Record> {
        let range = (range.start_bound().cloned(), range.end_bound().cloned());
        self.tree.range::<[u8], _>(range)
    }
}

/// The hasher of stores made now ([`seed_key_hash`]).
fn seeded_hasher() -> FixedState {
    FixedState::with_seed(KEY_HASH_SEED.load(Relaxed))
}

impl Default for Records {
    fn default() -> Self {
        Records::from_tree(BTreeSet::new(), seeded_hasher())
    }
}

/// A copy of every record, indexed anew: the copy's aliases point at the copy's records.
impl Clone for Records {
    fn clone(&self) -> Self {
        Records::from_tree(self.tree.clone(), self.hasher.clone())
    }
}

/// Records a frozen view may list stay with its pin.
impl Drop for Records {
    fn drop(&mut self) {
        let tree = std::mem::take(&mut self.tree);
        self.let_go(tree);
    }
}

impl fmt::Debug for Records {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(&self.tree).finish()
    }
}

impl FromIterator<Record> for Records {
    /// Records of distinct keys, in bulk (sorted input builds full nodes without a search per
    /// record); of records with the same key, the last one listed is kept.
    fn from_iter<I: IntoIterator<Item = Record>>(records: I) -> Self {
        let mut records: Vec<Record> = records.into_iter().collect();
        // Stable: records of one key stay in the order listed.
        records.sort();
        records.dedup_by(|later, earlier| {
            let same = later.key() == earlier.key();
            if same {
                std::mem::swap(later, earlier);
            }
            same
        });
        Records::from_tree(records.into_iter().collect(), seeded_hasher())
    }
}

/// Two stores hold the same records when every key, value, revision and expiry is the same.
impl PartialEq for Records {
    fn eq(&self, other: &Self) -> bool {
        self.tree.len() == other.tree.len() && self.tree.iter().zip(&other.tree).all(|(a, b)| a.bytes() == b.bytes())
    }
}

impl Eq for Records {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_read_back_as_written() {
        for (key, value, expires_at, revision) in [
            (&b""[..], &b""[..], None, 0),
            (b"k", b"v", Some(0), u64::MAX),
            (b"key:0000001", &[b'v'; 64][..], None, 77),
            (&[0xff; 300][..], &[1, 2, 3][..], Some(u64::MAX), 1),
        ] {
            let record = Record::new(key, value, expires_at, revision);
            assert_eq!(record.key(), key);
            assert_eq!(record.value(), value);
            assert_eq!(record.expires_at(), expires_at);
            assert_eq!(record.mod_revision(), revision);
            assert_eq!(record.counted_bytes(), (key.len() + value.len()) as u64);
            let header = 16 + if expires_at.is_some() { 8 } else { 0 };
            assert_eq!(
                record.bytes().len(),
                header + key.len() + value.len(),
                "one allocation, no slack"
            );
        }
        assert!(Record::new(b"k", b"v", Some(10), 1).is_live(9));
        assert!(!Record::new(b"k", b"v", Some(10), 1).is_live(10));
        assert!(Record::new(b"k", b"v", None, 1).is_live(u64::MAX));
    }

    #[test]
    fn ordered_and_searched_by_key_compared_whole() {
        let record = |k: &str, v: &str| Record::new(k.as_bytes(), v.as_bytes(), None, 1);
        let records: Records = [record("b", "1"), record("a", "2"), record("b", "3")]
            .into_iter()
            .collect();
        let listed: Vec<(&[u8], &[u8])> = records.iter().map(|r| (r.key(), r.value())).collect();
        assert_eq!(
            listed,
            [(&b"a"[..], &b"2"[..]), (b"b", b"3")],
            "sorted, the last of a key kept"
        );
        assert_eq!(records.get(b"b").map(Record::value), Some(&b"3"[..]));
        let starts: Vec<&[u8]> = records.range(&b"a\0"[..]..).map(Record::key).collect();
        assert_eq!(starts, [b"b"]);
        let mut other = records.clone();
        assert_eq!(other, records);
        other.replace(Record::new(b"b", b"3", None, 2));
        assert_ne!(other, records, "a revision differs");
        other.replace(Record::new(b"b", b"3", Some(9), 1));
        assert_ne!(other, records, "an expiry differs");
    }

    /// The invariant: the index holds one alias of every record of the tree, at its address.
    fn assert_indexed(records: &Records) {
        assert_eq!(records.index.len(), records.tree.len());
        for record in &records.tree {
            let hash = records.hasher.hash_one(record.key());
            let alias = records.index.find(hash, |r| r.key() == record.key());
            assert_eq!(alias.map(|a| a.0), Some(record.0), "{record:?}");
        }
    }

    /// A record's fields, to compare.
    fn fields(record: &Record) -> (Vec<u8>, Vec<u8>, u64) {
        (record.key().to_vec(), record.value().to_vec(), record.mod_revision())
    }

    /// A frozen view, what it must list, and the set it was made of (see `generation`).
    struct View {
        frozen: Frozen,
        listed: Vec<(Vec<u8>, Vec<u8>, u64)>,
        generation: u64,
    }

    /// Random changes of the set against a model, with frozen views made and dropped along the
    /// way: the index follows every change, and every view lists what the set held when it was
    /// made, whatever the set (or a copy replacing it) did since.
    #[test]
    fn the_index_follows_every_change_of_the_set() {
        use rand::RngExt;
        use rand::SeedableRng;
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(7);
        let mut model = std::collections::BTreeMap::<Vec<u8>, (Vec<u8>, u64)>::new();
        let mut records = Records::default();
        let mut views: Vec<View> = Vec::new();
        // Counts the sets `records` has been: a copy replacing the set is not pinned by the
        // views of the set it copied.
        let mut generation = 0;
        for step in 0..20_000u64 {
            let key = format!("k{}", rng.random_range(0..500)).into_bytes();
            match rng.random_range(0..100) {
                0..40 => {
                    let value = vec![b'v'; rng.random_range(0..40)];
                    let replaced = records.replace(Record::new(&key, &value, None, step));
                    let expected = model.insert(key.clone(), (value, step));
                    assert_eq!(replaced.map(|r| (r.value().to_vec(), r.mod_revision())), expected);
                }
                40..60 => {
                    let value = vec![step as u8; rng.random_range(0..4)];
                    let mut seen = None;
                    let done = records.overwrite(&key, &value, None, step, |r| {
                        seen = Some((r.value().to_vec(), r.mod_revision()));
                    });
                    let alike = model.get(&key).is_some_and(|(v, _)| v.len() == value.len());
                    let pinned = views.iter().any(|v| v.generation == generation);
                    assert_eq!(
                        done,
                        alike && !pinned,
                        "in place exactly when laid out alike and unpinned"
                    );
                    if done {
                        assert_eq!(seen, model.insert(key.clone(), (value, step)));
                    } else {
                        assert_eq!(seen, None, "`before` runs only when it overwrites");
                    }
                }
                60..94 => {
                    let taken = records.take(&key);
                    assert_eq!(
                        taken.map(|r| (r.value().to_vec(), r.mod_revision())),
                        model.remove(&key)
                    );
                }
                94 if views.len() < 3 => views.push(View {
                    frozen: records.freeze(),
                    listed: records.iter().map(fields).collect(),
                    generation,
                }),
                94 | 95 if !views.is_empty() => {
                    let view = views.swap_remove(rng.random_range(0..views.len()));
                    assert!(view.frozen.iter().map(fields).eq(view.listed), "step {step}");
                }
                94..98 => {
                    records = records.clone();
                    generation += 1;
                }
                98 => {
                    records = records.iter().cloned().collect();
                    generation += 1;
                }
                _ => {
                    records.clear();
                    model.clear();
                }
            }
            if step % 500 == 0 {
                assert_indexed(&records);
                for view in &views {
                    assert!(
                        view.frozen.iter().map(fields).eq(view.listed.iter().cloned()),
                        "step {step}"
                    );
                }
            }
            let found = records.get(&key).map(|r| (r.value().to_vec(), r.mod_revision()));
            assert_eq!(found.as_ref(), model.get(&key));
            assert_eq!(records.contains_key(&key), model.contains_key(&key));
        }
        assert_indexed(&records);
        let listed: Vec<&[u8]> = records.iter().map(Record::key).collect();
        assert_eq!(listed, model.keys().map(Vec::as_slice).collect::<Vec<_>>());
    }

    /// A set lets go of its pin, and frees what it retired, once no view holds it: writes are
    /// rewritten in place again.
    #[test]
    fn the_pin_goes_with_the_last_view() {
        let mut records: Records = [Record::new(b"a", b"1", None, 1)].into_iter().collect();
        let (first, second) = (records.freeze(), records.freeze());
        assert!(
            !records.overwrite(b"a", b"2", None, 2, |_| ()),
            "pinned: no rewrite in place"
        );
        let replaced = records.replace(Record::new(b"a", b"3", None, 3)).unwrap();
        assert_eq!(
            fields(&replaced),
            (b"a".to_vec(), b"1".to_vec(), 1),
            "a copy of the record"
        );
        let retired = |records: &Records| records.pin.as_ref().map(|pin| pin.retired.lock().unwrap().len());
        assert_eq!(retired(&records), Some(1), "the record itself stays for the views");
        drop(first);
        assert!(
            !records.overwrite(b"a", b"4", None, 4, |_| ()),
            "one view still holds the pin"
        );
        assert!(second.iter().map(fields).eq([(b"a".to_vec(), b"1".to_vec(), 1)]));
        drop(second);
        assert!(
            records.overwrite(b"a", b"5", None, 5, |_| ()),
            "no view: in place again"
        );
        assert!(records.pin.is_none());
    }

    #[test]
    fn an_overwrite_rewrites_revision_expiry_and_value_only() {
        let mut records: Records = [Record::new(b"a", b"12", Some(5), 1), Record::new(b"b", b"34", None, 1)]
            .into_iter()
            .collect();
        assert!(records.overwrite(b"a", b"xy", Some(9), 7, |_| ()));
        assert!(!records.overwrite(b"a", b"xy", None, 8, |_| ()), "an expiry dropped");
        assert!(!records.overwrite(b"b", b"xyz", None, 8, |_| ()), "a longer value");
        assert!(!records.overwrite(b"c", b"12", None, 8, |_| ()), "no record");
        let listed: Vec<_> = records
            .iter()
            .map(|r| (r.key(), r.value(), r.expires_at(), r.mod_revision()))
            .collect();
        assert_eq!(listed, [(&b"a"[..], &b"xy"[..], Some(9), 7), (b"b", b"34", None, 1)]);
        assert_indexed(&records);
    }

    #[test]
    fn a_copy_is_indexed_on_its_own_records() {
        let records: Records = (0..100u32)
            .map(|i| Record::new(&i.to_be_bytes(), b"v", None, 1))
            .collect();
        let copy = records.clone();
        drop(records);
        assert_indexed(&copy);
        assert_eq!(copy.get(&7u32.to_be_bytes()).map(Record::value), Some(&b"v"[..]));
    }

    #[test]
    fn a_store_that_shrinks_gives_back_index_memory() {
        let mut records = Records::default();
        for i in 0..100_000u32 {
            records.replace(Record::new(&i.to_be_bytes(), b"", None, 1));
        }
        let peak = records.index.capacity();
        for i in 1_000..100_000u32 {
            assert!(records.take(&i.to_be_bytes()).is_some());
        }
        assert!(
            records.index.capacity() * 16 < peak,
            "{} of {peak}",
            records.index.capacity()
        );
        assert_indexed(&records);
    }

    #[test]
    fn the_seed_keys_the_hash_of_stores_made_after_it() {
        seed_key_hash(1);
        let one = Records::default();
        seed_key_hash(2);
        let two = Records::default();
        seed_key_hash(0);
        assert_ne!(one.hasher.hash_one(b"key"), two.hasher.hash_one(b"key"));
        assert_eq!(one.clone().hasher.hash_one(b"key"), one.hasher.hash_one(b"key"));
    }
}
