//! The serialized form of a whole store: what a Raft snapshot carries.
//!
//! ```text
//! version 1: 01 | postcard { clock_ms, entries: [(key, value, expires_at)] }
//! version 2: 02 | postcard { clock_ms, revision, entries: [(key, value, expires_at, mod_revision)],
//!                            tombstones: [(key, revision)], tombstone_floor,
//!                            sessions: [(id, session)] }
//! ```
//!
//! [`Store::to_bytes`] writes version 2; [`Store::from_bytes`] reads both. A version 1 image
//! (written before revisions existed) gives every key the revision 0 and sets the tombstone
//! floor to 0: no revision was ever handed out by such a store.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::Serialize;

use super::Record;
use super::Records;
use super::Store;
use super::record::Frozen;
use super::record::MAX_KEY_LEN;
use super::session::Session;
use super::session::Sessions;
use crate::command::CodecError;
use crate::command::Key;
use crate::command::Limits;
use crate::command::Value;
use crate::command::decode;

/// The version byte of the images this build writes.
pub const IMAGE_VERSION: u8 = 2;

/// A version 1 image.
#[derive(Serialize, Deserialize)]
struct ImageV1 {
    clock_ms: u64,
    entries: Vec<(Key, Value, Option<u64>)>,
}

/// A version 2 image, decoded with keys and values borrowed from the bytes.
#[derive(Deserialize)]
struct ImageV2<'a> {
    clock_ms: u64,
    revision: u64,
    #[serde(borrow)]
    entries: Vec<EntryV2<'a>>,
    tombstones: Vec<(Key, u64)>,
    tombstone_floor: u64,
    sessions: Vec<(u64, Session)>,
}

/// An entry of a version 2 image: key, value, expiry, revision. Encoded as the tuple it
/// is; decoded with key and value borrowed from the image, copied once, into the record.
#[derive(Deserialize)]
struct EntryV2<'a>(&'a [u8], &'a [u8], Option<u64>, u64);

/// The parts of a version 2 image that follow its entries, borrowed from a store. The image
/// is this struct's encoding after the version byte, `clock_ms`, `revision` and the entries
/// (see [`Store::to_bytes`]): postcard encodes a struct as its fields in order.
#[derive(Serialize)]
struct TailRef<'a> {
    tombstones: Seq<'a, Key, u64>,
    tombstone_floor: u64,
    sessions: SessionsRef<'a>,
}

/// The open sessions, serialized as a sequence of `(id, session)`.
struct SessionsRef<'a>(&'a Sessions);

/// A map serialized as a sequence of tuples.
struct Seq<'a, K, V>(&'a BTreeMap<K, V>);

/// A byte string serialized as serde bytes: postcard encodes bytes and a `Vec<u8>` alike (a
/// varint length, then the bytes), but bytes in one copy rather than one call per byte.
struct Bytes<'a>(&'a [u8]);

impl Serialize for Bytes<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.0)
    }
}

/// Records ahead of the one being encoded whose memory is prefetched: a store that served
/// random writes holds its records in another order than its keys, and each would otherwise
/// be a cache miss waited for in turn (`cargo bench -p kv-node --bench storage -- --image`).
const PREFETCH_AHEAD: usize = 8;

/// Appends postcard's encoding of `value` as a varint (`u64`, `usize`).
fn push_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Appends the records as postcard encodes a sequence of `(key, value, expires_at,
/// mod_revision)`: byte strings as a varint length and the bytes, `Option<u64>` as a tag byte
/// and the varint.
fn encode_records<'a>(records: impl ExactSizeIterator<Item = &'a Record> + Clone, out: &mut Vec<u8>) {
    push_varint(out, records.len() as u64);
    let mut ahead = records.clone().skip(PREFETCH_AHEAD);
    for record in records {
        if let Some(next) = ahead.next() {
            next.prefetch();
        }
        for bytes in [record.key(), record.value()] {
            push_varint(out, bytes.len() as u64);
            out.extend_from_slice(bytes);
        }
        match record.expires_at() {
            None => out.push(0),
            Some(t) => {
                out.push(1);
                push_varint(out, t);
            }
        }
        push_varint(out, record.mod_revision());
    }
}

/// An image of [`IMAGE_VERSION`] of a store at `clock_ms` and `revision` holding `records`,
/// whose keys and values take `bytes`, followed by `tail` (the encoding of [`TailRef`]). The
/// entries, nearly all of the bytes, are encoded directly into a buffer sized for them up front.
fn encode_image<'a>(
    clock_ms: u64,
    revision: u64,
    bytes: u64,
    records: impl ExactSizeIterator<Item = &'a Record> + Clone,
    tail: &[u8],
) -> Vec<u8> {
    // Key and value bytes, plus, for most entries, 1 + 1 + 1 + 4 bytes of lengths, tag and
    // revision.
    let entries = usize::try_from(bytes).unwrap_or(0) + 7 * records.len();
    let mut out = Vec::with_capacity(32 + entries + tail.len());
    out.push(IMAGE_VERSION);
    push_varint(&mut out, clock_ms);
    push_varint(&mut out, revision);
    encode_records(records, &mut out);
    out.extend_from_slice(tail);
    out
}

/// A store as it was when frozen ([`Store::freeze`]), to be encoded as an image elsewhere
/// while the store goes on: its records stay as they were, and its other parts, small next to
/// them, are encoded already.
#[derive(Debug)]
pub struct FrozenStore {
    clock_ms: u64,
    revision: u64,
    bytes: u64,
    records: Frozen,
    tail: Vec<u8>,
}

impl FrozenStore {
    /// The image of the store as it was frozen: the bytes [`Store::to_bytes`] gave then.
    pub fn to_bytes(&self) -> Vec<u8> {
        encode_image(
            self.clock_ms,
            self.revision,
            self.bytes,
            self.records.iter(),
            &self.tail,
        )
    }
}

impl Serialize for Seq<'_, Key, u64> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|(k, rev)| (Bytes(k), rev)))
    }
}

impl Serialize for SessionsRef<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter())
    }
}

impl Store {
    /// Fills an empty store with `records` (collected from an image's entries in key order:
    /// built in bulk, without a search per key; a key listed twice keeps its last record, as
    /// repeated insertion would) and builds the indexes over them.
    fn restore_sorted(&mut self, records: Records) {
        debug_assert!(self.data.is_empty());
        self.data = records;
        self.bytes = self.data.iter().map(Record::counted_bytes).sum();
        self.expiries = self
            .data
            .iter()
            .filter_map(|r| r.expires_at().map(|t| (t, r.key().to_vec())))
            .collect();
    }

    /// Serializes the whole store (the payload of a Raft snapshot), as an image of
    /// [`IMAGE_VERSION`].
    pub fn to_bytes(&self) -> Vec<u8> {
        encode_image(self.clock_ms, self.revision, self.bytes, self.data.iter(), &self.tail())
    }

    /// The store as it is now, to encode as an image elsewhere (`FrozenStore::to_bytes`) while
    /// writes go on: this takes a pass over the record tree's nodes and an encoding of the
    /// tombstones and sessions, and leaves the records to the encoder. Until the view is
    /// dropped, writes copy rather than rewrite or free a record it lists (`Records::freeze`).
    pub fn freeze(&mut self) -> FrozenStore {
        FrozenStore {
            clock_ms: self.clock_ms,
            revision: self.revision,
            bytes: self.bytes,
            records: self.data.freeze(),
            tail: self.tail(),
        }
    }

    /// The encoding of what follows the entries in an image.
    fn tail(&self) -> Vec<u8> {
        let tail = TailRef {
            tombstones: Seq(&self.tombstones),
            tombstone_floor: self.tombstone_floor,
            sessions: SessionsRef(&self.sessions),
        };
        postcard::to_allocvec(&tail).expect("postcard encoding into a Vec cannot fail")
    }

    /// Rebuilds a store from [`Store::to_bytes`] output of this or an earlier version.
    pub fn from_bytes(bytes: &[u8], limits: Limits) -> Result<Store, CodecError> {
        let mut store = Store::new(limits);
        match bytes.first() {
            Some(1) => {
                let image: ImageV1 = decode(bytes)?;
                store.clock_ms = image.clock_ms;
                for (key, value, expires_at) in image.entries {
                    store.put(record(&key, &value, expires_at, 0)?);
                }
            }
            Some(&IMAGE_VERSION) => {
                let (image, rest) = postcard::take_from_bytes::<ImageV2>(&bytes[1..])
                    .map_err(|e| CodecError::Malformed(e.to_string()))?;
                if !rest.is_empty() {
                    return Err(CodecError::Malformed(format!("{} trailing bytes", rest.len())));
                }
                store.clock_ms = image.clock_ms;
                store.revision = image.revision;
                let records = image
                    .entries
                    .into_iter()
                    .map(|EntryV2(key, value, expires_at, revision)| record(key, value, expires_at, revision))
                    .collect::<Result<Records, _>>()?;
                store.restore_sorted(records);
                store.tombstones = image.tombstones.into_iter().collect();
                store.tombstone_floor = image.tombstone_floor;
                for (id, session) in image.sessions {
                    store.sessions.insert(id, session);
                }
            }
            Some(&found) => return Err(CodecError::UnsupportedVersion { found }),
            None => return Err(CodecError::Empty),
        }
        Ok(store)
    }
}

/// A record from an image, whose key may be longer than a record holds (an image is input).
fn record(key: &[u8], value: &[u8], expires_at: Option<u64>, revision: u64) -> Result<Record, CodecError> {
    if key.len() > MAX_KEY_LEN {
        return Err(CodecError::Malformed(format!("a key of {} bytes", key.len())));
    }
    Ok(Record::new(key, value, expires_at, revision))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::Command;
    use crate::command::Expiry;
    use crate::command::SetCondition;
    use crate::command::Write;
    use crate::command::encode;

    #[test]
    fn a_version_1_image_still_decodes() {
        let v1 = encode(&ImageV1 {
            clock_ms: 5,
            entries: vec![
                (b"a".to_vec(), b"1".to_vec(), None),
                (b"t".to_vec(), b"2".to_vec(), Some(90)),
            ],
        });
        assert_eq!(v1[0], 1);
        let store = Store::from_bytes(&v1, Limits::default()).unwrap();
        assert_eq!(store.len(), 2);
        assert_eq!(store.clock_ms(), 5);
        assert_eq!(store.revision(), 0);
    }

    #[test]
    fn a_version_2_image_round_trips_sessions_and_tombstones() {
        let mut store = Store::new(Limits::default());
        let write = |at_ms, command| Write { at_ms, command };
        store.apply(
            3,
            &write(
                1,
                Command::Set {
                    key: b"k".to_vec(),
                    value: b"v".to_vec(),
                    condition: SetCondition::Always,
                    expiry: Expiry::At(100),
                },
            ),
        );
        store.apply(4, &write(2, Command::RegisterSession { ttl_ms: 1_000 }));
        store.apply(
            5,
            &write(
                3,
                Command::Session {
                    id: 4,
                    seq: 1,
                    acked: 0,
                    command: Box::new(Command::Delete {
                        keys: vec![b"k".to_vec()],
                    }),
                },
            ),
        );
        let bytes = store.to_bytes();
        assert_eq!(bytes[0], IMAGE_VERSION);
        assert_eq!(Store::from_bytes(&bytes, Limits::default()).unwrap(), store);
        for cut in 1..bytes.len() {
            assert!(Store::from_bytes(&bytes[..cut], Limits::default()).is_err(), "{cut}");
        }
        assert_eq!(
            Store::from_bytes(&[9], Limits::default()),
            Err(CodecError::UnsupportedVersion { found: 9 })
        );
    }

    /// The direct encoder writes what postcard writes for the same fields through serde:
    /// lengths and revisions of one to five varint bytes, records with and without expiry,
    /// in a store that also holds tombstones and a session.
    #[test]
    fn the_image_is_postcards_encoding_of_its_fields() {
        let mut store = Store::new(Limits::default());
        for i in 0..300u64 {
            let expiry = if i % 3 == 0 {
                Expiry::At(1 << (i % 40))
            } else {
                Expiry::Never
            };
            let command = Command::Set {
                key: vec![b'k'; 1 + (i as usize * 7) % 200],
                value: vec![b'v'; (i as usize * 131) % 20_000],
                condition: SetCondition::Always,
                expiry,
            };
            store.apply(1 + i * i * i * 1_000, &Write { at_ms: i, command });
        }
        store.apply(
            28_000_000_000,
            &Write {
                at_ms: 301,
                command: Command::RegisterSession { ttl_ms: 1_000 },
            },
        );
        let delete = Command::Delete {
            keys: vec![vec![b'k'; 8]],
        };
        store.apply(
            28_000_000_001,
            &Write {
                at_ms: 302,
                command: delete,
            },
        );
        assert!(!store.tombstones.is_empty() && store.sessions.len() == 1);

        let entries: Vec<_> = store
            .data
            .iter()
            .map(|r| (Bytes(r.key()), Bytes(r.value()), r.expires_at(), r.mod_revision()))
            .collect();
        let fields = (
            store.clock_ms,
            store.revision,
            entries,
            Seq(&store.tombstones),
            store.tombstone_floor,
            SessionsRef(&store.sessions),
        );
        let expected = postcard::to_extend(&fields, vec![IMAGE_VERSION]).unwrap();
        assert_eq!(store.to_bytes(), expected);
    }
}
