//! A stored key as one allocation, and the key-ordered set of them.
//!
//! ```text
//! Record: one Box<[u8]>
//!   0..4        key length, u32 LE; its top bit set: an expiry time follows the revision
//!   key         the key's bytes
//!   8 bytes     mod_revision, u64 LE
//!   [8 bytes]   expires_at, u64 LE (only if the top bit is set)
//!   value       the value's bytes, up to the end of the box
//! ```
//!
//! Why: a store of small keys is mostly overhead. A `BTreeMap<Vec<u8>, { value: Vec<u8>,
//! expires_at: Option<u64>, mod_revision: u64 }>` spends a 72-byte map slot and two heap
//! allocations per key (an 11-byte key and a 64-byte value take 32 + 80 bytes of the allocator
//! on top of the slot): 284 bytes per key in all, measured. A record in one box is a 16-byte
//! slot in the set and one allocation of 12 bytes more than the key and value (96 bytes for
//! that key and value): about 140 bytes per key (docs/benchmarks.md, "Memory per key").
//! The expiry costs 8 bytes only in records that have one; `Store::expiries` keeps its time
//! order. The alternatives kept a second map (expiry by key: two more copies of every
//! expiring key) or a thin pointer with the length in the header (8 bytes less per slot, but
//! `unsafe` code for a tenth of the gain).
//!
//! A record is ordered, compared and borrowed by its key alone ([`Borrow<[u8]>`]), so the set
//! is searched with `&[u8]`; [`Records`] compares whole records, so two stores are equal when
//! every key, value, revision and expiry is.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::collections::btree_set;
use std::fmt;
use std::ops::RangeBounds;

/// The top bit of the length word: an expiry time follows the revision.
const HAS_EXPIRY: u32 = 1 << 31;

/// Longest key a record holds: the length word keeps its top bit for [`HAS_EXPIRY`].
pub(super) const MAX_KEY_LEN: usize = (HAS_EXPIRY - 1) as usize;

/// Bytes of the length word.
const LEN_BYTES: usize = 4;

/// A key with its value, the revision that last wrote it and its expiry time, in one
/// allocation laid out as the module docs draw it.
#[derive(Clone)]
pub(super) struct Record(Box<[u8]>);

impl Record {
    /// A record of `key` (at most [`MAX_KEY_LEN`] bytes: the store's limits and an image's
    /// decoding keep keys far below it).
    pub(super) fn new(key: &[u8], value: &[u8], expires_at: Option<u64>, mod_revision: u64) -> Record {
        assert!(key.len() <= MAX_KEY_LEN, "a key of {} bytes", key.len());
        let word = key.len() as u32 | if expires_at.is_some() { HAS_EXPIRY } else { 0 };
        let expiry_bytes = if expires_at.is_some() { 8 } else { 0 };
        let mut bytes = Vec::with_capacity(LEN_BYTES + key.len() + 8 + expiry_bytes + value.len());
        bytes.extend_from_slice(&word.to_le_bytes());
        bytes.extend_from_slice(key);
        bytes.extend_from_slice(&mod_revision.to_le_bytes());
        if let Some(t) = expires_at {
            bytes.extend_from_slice(&t.to_le_bytes());
        }
        bytes.extend_from_slice(value);
        Record(bytes.into_boxed_slice())
    }

    fn word(&self) -> u32 {
        u32::from_le_bytes(self.0[..LEN_BYTES].try_into().expect("4 bytes"))
    }

    /// Where the key ends and the revision starts.
    fn key_end(&self) -> usize {
        LEN_BYTES + (self.word() & !HAS_EXPIRY) as usize
    }

    fn u64_at(&self, at: usize) -> u64 {
        u64::from_le_bytes(self.0[at..at + 8].try_into().expect("8 bytes"))
    }

    /// The key.
    pub(super) fn key(&self) -> &[u8] {
        &self.0[LEN_BYTES..self.key_end()]
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
        &self.0[self.key_end() + header..]
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
        (self.0.len() - LEN_BYTES - if self.word() & HAS_EXPIRY != 0 { 16 } else { 8 }) as u64
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

/// The store's records in key order, searched by key.
#[derive(Debug, Clone, Default)]
pub(super) struct Records(BTreeSet<Record>);

impl Records {
    pub(super) fn len(&self) -> usize {
        self.0.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(super) fn get(&self, key: &[u8]) -> Option<&Record> {
        self.0.get(key)
    }

    pub(super) fn contains_key(&self, key: &[u8]) -> bool {
        self.0.contains(key)
    }

    /// Puts `record` in, returning the one it replaces (same key), in one search.
    pub(super) fn replace(&mut self, record: Record) -> Option<Record> {
        self.0.replace(record)
    }

    /// Takes `key`'s record out.
    pub(super) fn take(&mut self, key: &[u8]) -> Option<Record> {
        self.0.take(key)
    }

    pub(super) fn clear(&mut self) {
        self.0.clear();
    }

    pub(super) fn iter(&self) -> btree_set::Iter<'_, Record> {
        self.0.iter()
    }

    /// The records whose keys lie in `range`, in key order (`start > end` panics, as
    /// `BTreeSet::range` does).
    pub(super) fn range<'a>(&self, range: impl RangeBounds<&'a [u8]>) -> btree_set::Range<'_, Record> {
        let range = (range.start_bound().cloned(), range.end_bound().cloned());
        self.0.range::<[u8], _>(range)
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
        Records(records.into_iter().collect())
    }
}

/// Two stores hold the same records when every key, value, revision and expiry is the same.
impl PartialEq for Records {
    fn eq(&self, other: &Self) -> bool {
        self.0.len() == other.0.len() && self.0.iter().zip(&other.0).all(|(a, b)| a.0 == b.0)
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
            let header = 12 + if expires_at.is_some() { 8 } else { 0 };
            assert_eq!(
                record.0.len(),
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
}
