//! The ordered key-value state machine.
//!
//! [`Store`] applies [`Write`]s in log order and answers [`Query`]s. It keeps a logical clock:
//! the largest `Write::at_ms` applied so far. A key whose expiry time is at or before that clock is
//! removed on apply; a read also hides keys that expired before the reader's own clock. Nothing
//! here reads a real clock, so every replica that applies the same log holds the same state.

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::ops::Bound;

use serde::Deserialize;
use serde::Serialize;

mod strings;

use crate::command::CodecError;
use crate::command::Command;
use crate::command::CommandError;
use crate::command::Expiry;
use crate::command::Key;
use crate::command::Limits;
use crate::command::Query;
use crate::command::Response;
use crate::command::SetCondition;
use crate::command::TtlState;
use crate::command::Value;
use crate::command::Write;
use crate::command::decode;
use crate::command::encode;

/// A stored value and its expiry time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Record {
    value: Value,
    expires_at: Option<u64>,
}

/// The serialized form of a whole store: what a Raft snapshot carries.
#[derive(Serialize, Deserialize)]
struct Image {
    clock_ms: u64,
    entries: Vec<(Key, Value, Option<u64>)>,
}

/// An [`Image`] borrowed from a store: serializes to the same bytes.
#[derive(Serialize)]
struct ImageRef<'a> {
    clock_ms: u64,
    entries: EntriesRef<'a>,
}

/// The entries of an [`Image`] as a sequence of `(key, value, expires_at)`, read from the map.
struct EntriesRef<'a>(&'a BTreeMap<Key, Record>);

/// A byte string serialized as serde bytes. postcard encodes bytes and a `Vec<u8>` alike (a
/// varint length, then the bytes), but bytes in one copy rather than one call per byte.
struct BytesRef<'a>(&'a [u8]);

impl Serialize for BytesRef<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.0)
    }
}

impl Serialize for EntriesRef<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // The map's iterator knows its length, which postcard writes first.
        serializer.collect_seq(
            self.0
                .iter()
                .map(|(key, record)| (BytesRef(key), BytesRef(&record.value), record.expires_at)),
        )
    }
}

/// The ordered key-value state machine. See the module docs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Store {
    data: BTreeMap<Key, Record>,
    /// (expiry time, key) for every key with an expiry, to drop them in time order.
    expiries: BTreeSet<(u64, Key)>,
    clock_ms: u64,
    limits: Limits,
    /// Sum of key and value lengths of all stored records.
    bytes: u64,
}

impl Store {
    /// An empty store enforcing `limits`.
    pub fn new(limits: Limits) -> Self {
        Store {
            limits,
            ..Store::default()
        }
    }

    /// Number of keys held (including ones a reader with a later clock would see as expired).
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the store holds no keys.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Total bytes of keys and values held.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The store's logical clock: the largest `at_ms` applied so far.
    pub fn clock_ms(&self) -> u64 {
        self.clock_ms
    }

    /// Applies one write. Deterministic: depends only on the state and `write`.
    pub fn apply(&mut self, write: &Write) -> Response {
        self.advance_clock(write.at_ms);
        match &write.command {
            Command::Set {
                key,
                value,
                condition,
                expiry,
            } => self.set(key, value, *condition, *expiry),
            Command::MultiSet { pairs } => {
                for (key, value) in pairs {
                    self.insert(key.clone(), value.clone(), None);
                }
                Response::Ok
            }
            Command::Delete { keys } => {
                Response::Count(keys.iter().filter(|k| self.remove(k).is_some()).count() as u64)
            }
            Command::GetDelete { key } => Response::Value(self.remove(key).map(|r| r.value)),
            Command::CompareAndSwap { key, expected, new } => {
                let previous = self.data.get(key).map(|r| r.value.clone());
                let swapped = previous == *expected;
                if swapped {
                    match new {
                        Some(value) => self.insert(key.clone(), value.clone(), None),
                        None => {
                            self.remove(key);
                        }
                    }
                }
                Response::Cas { swapped, previous }
            }
            Command::Increment { key, delta } => self.increment(key, *delta),
            Command::Append { key, suffix } => {
                let (mut value, expires_at) = match self.data.get(key) {
                    Some(r) => (r.value.clone(), r.expires_at),
                    None => (Vec::new(), None),
                };
                let len = value.len() + suffix.len();
                if len > self.limits.max_value_len {
                    return Response::Error(CommandError::ValueTooLong {
                        len,
                        max: self.limits.max_value_len,
                    });
                }
                value.extend_from_slice(suffix);
                self.insert(key.clone(), value, expires_at);
                Response::Count(len as u64)
            }
            Command::SetExpiry { key, at_ms } => match self.data.get(key) {
                None => Response::Count(0),
                Some(record) => {
                    let value = record.value.clone();
                    if at_ms.is_some_and(|t| t <= self.clock_ms) {
                        self.remove(key);
                    } else {
                        self.insert(key.clone(), value, *at_ms);
                    }
                    Response::Count(1)
                }
            },
            Command::Clear => {
                self.data.clear();
                self.expiries.clear();
                self.bytes = 0;
                Response::Ok
            }
            Command::MultiSetIfAbsent { pairs } => self.multi_set_if_absent(pairs),
            Command::GetAndExpire { key, change } => self.get_and_expire(key, *change, write.at_ms),
            Command::SetRange { key, offset, value } => self.set_range(key, *offset, value),
            Command::IncrementFloat { key, delta } => self.increment_float(key, delta),
            Command::Rename {
                source,
                destination,
                if_absent,
            } => self.rename(source, destination, *if_absent),
            Command::Copy {
                source,
                destination,
                replace,
            } => self.copy(source, destination, *replace),
            Command::ExpireIf { key, at, condition } => self.expire_if(key, *at, *condition, write.at_ms),
        }
    }

    /// Answers a read as of the reader's clock `now_ms` (never earlier than the store's clock).
    pub fn query(&self, query: &Query, now_ms: u64) -> Response {
        let now = now_ms.max(self.clock_ms);
        match query {
            Query::Get { key } => Response::Value(self.live(key, now).map(|r| r.value.clone())),
            Query::MultiGet { keys } => {
                // Sized before anything is copied: a key repeated many times costs nothing.
                let total = keys
                    .iter()
                    .map(|k| self.live(k, now).map_or(0, |r| r.value.len()))
                    .fold(0usize, usize::saturating_add);
                if total > self.limits.max_reply_bytes {
                    return self.reply_too_large();
                }
                Response::Values(
                    keys.iter()
                        .map(|k| self.live(k, now).map(|r| r.value.clone()))
                        .collect(),
                )
            }
            Query::Range { start, end, limit } => {
                if range_is_empty(start, end) {
                    return Response::Entries(Vec::new());
                }
                let range = (start.as_ref().map(Vec::as_slice), end.as_ref().map(Vec::as_slice));
                self.collect_live(self.data.range::<[u8], _>(range), now, *limit)
            }
            Query::Prefix { prefix, limit } => {
                let iter = self
                    .data
                    .range::<[u8], _>((Bound::Included(prefix.as_slice()), Bound::Unbounded));
                let matching = iter.take_while(|(k, _)| k.starts_with(prefix));
                self.collect_live(matching, now, *limit)
            }
            Query::Ttl { key } => Response::Ttl(match self.live(key, now) {
                None => TtlState::Missing,
                Some(Record { expires_at: None, .. }) => TtlState::Persistent,
                Some(Record {
                    expires_at: Some(t), ..
                }) => TtlState::Remaining(t - now),
            }),
            Query::Keys { start, end, limit } => {
                if range_is_empty(start, end) {
                    return Response::Keys(Vec::new());
                }
                let range = (start.as_ref().map(Vec::as_slice), end.as_ref().map(Vec::as_slice));
                self.collect_live_keys(self.data.range::<[u8], _>(range), now, *limit)
            }
            Query::Count => {
                let expired = self.expiries.range(..(now + 1, Vec::new())).count();
                Response::Count((self.data.len() - expired) as u64)
            }
            Query::ExpireTime { key } => self.expire_time(key, now),
            Query::RandomKey { seed } => self.random_key(*seed, now),
        }
    }

    /// Serializes the whole store (the payload of a Raft snapshot).
    ///
    /// Encodes straight from the map, byte strings as one copy each: the bytes are exactly those
    /// of an [`Image`], without building one (a snapshot of a big store runs on the apply path).
    pub fn to_bytes(&self) -> Vec<u8> {
        encode(&ImageRef {
            clock_ms: self.clock_ms,
            entries: EntriesRef(&self.data),
        })
    }

    /// Rebuilds a store from [`Store::to_bytes`] output.
    pub fn from_bytes(bytes: &[u8], limits: Limits) -> Result<Store, CodecError> {
        let image: Image = decode(bytes)?;
        let mut store = Store::new(limits);
        store.clock_ms = image.clock_ms;
        for (key, value, expires_at) in image.entries {
            store.insert(key, value, expires_at);
        }
        Ok(store)
    }

    fn set(&mut self, key: &Key, value: &Value, condition: SetCondition, expiry: Expiry) -> Response {
        let previous = self.data.get(key);
        let written = match condition {
            SetCondition::Always => true,
            SetCondition::IfAbsent => previous.is_none(),
            SetCondition::IfPresent => previous.is_some(),
        };
        let expires_at = match expiry {
            Expiry::Never => None,
            Expiry::At(t) => Some(t),
            Expiry::Keep => previous.and_then(|r| r.expires_at),
        };
        let previous = previous.map(|r| r.value.clone());
        if written {
            if expires_at.is_some_and(|t| t <= self.clock_ms) {
                self.remove(key);
            } else {
                self.insert(key.clone(), value.clone(), expires_at);
            }
        }
        Response::Set { written, previous }
    }

    fn increment(&mut self, key: &Key, delta: i64) -> Response {
        let (current, expires_at) = match self.data.get(key) {
            None => (0, None),
            Some(r) => match parse_integer(&r.value) {
                Some(n) => (n, r.expires_at),
                None => return Response::Error(CommandError::NotAnInteger),
            },
        };
        match current.checked_add(delta) {
            None => Response::Error(CommandError::Overflow),
            Some(n) => {
                self.insert(key.clone(), n.to_string().into_bytes(), expires_at);
                Response::Integer(n)
            }
        }
    }

    fn advance_clock(&mut self, at_ms: u64) {
        self.clock_ms = self.clock_ms.max(at_ms);
        while let Some((t, _)) = self.expiries.first() {
            if *t > self.clock_ms {
                break;
            }
            let (_, key) = self.expiries.pop_first().expect("first() was Some");
            self.remove(&key);
        }
    }

    fn insert(&mut self, key: Key, value: Value, expires_at: Option<u64>) {
        self.remove(&key);
        if let Some(t) = expires_at {
            self.expiries.insert((t, key.clone()));
        }
        self.bytes += (key.len() + value.len()) as u64;
        self.data.insert(key, Record { value, expires_at });
    }

    fn remove(&mut self, key: &Key) -> Option<Record> {
        let record = self.data.remove(key)?;
        if let Some(t) = record.expires_at {
            self.expiries.remove(&(t, key.clone()));
        }
        self.bytes -= (key.len() + record.value.len()) as u64;
        Some(record)
    }

    fn live(&self, key: &[u8], now: u64) -> Option<&Record> {
        self.data.get(key).filter(|r| r.expires_at.is_none_or(|t| t > now))
    }

    /// Up to `limit` live entries of `iter`, or [`CommandError::ReplyTooLarge`] once their
    /// keys and values pass [`Limits::max_reply_bytes`].
    fn collect_live<'a>(&self, iter: impl Iterator<Item = (&'a Key, &'a Record)>, now: u64, limit: usize) -> Response {
        let mut bytes = 0usize;
        let mut entries = Vec::new();
        for (k, r) in iter.filter(|(_, r)| r.expires_at.is_none_or(|t| t > now)).take(limit) {
            bytes = bytes.saturating_add(k.len() + r.value.len());
            if bytes > self.limits.max_reply_bytes {
                return self.reply_too_large();
            }
            entries.push((k.clone(), r.value.clone()));
        }
        Response::Entries(entries)
    }

    /// Up to `limit` live keys of `iter`, without their values, within the reply limit.
    fn collect_live_keys<'a>(
        &self,
        iter: impl Iterator<Item = (&'a Key, &'a Record)>,
        now: u64,
        limit: usize,
    ) -> Response {
        let mut bytes = 0usize;
        let mut keys = Vec::new();
        for (k, _) in iter.filter(|(_, r)| r.expires_at.is_none_or(|t| t > now)).take(limit) {
            bytes = bytes.saturating_add(k.len());
            if bytes > self.limits.max_reply_bytes {
                return self.reply_too_large();
            }
            keys.push(k.clone());
        }
        Response::Keys(keys)
    }

    fn reply_too_large(&self) -> Response {
        Response::Error(CommandError::ReplyTooLarge {
            max: self.limits.max_reply_bytes,
        })
    }
}

/// A value as Redis reads an integer: optional `-`, then decimal digits without leading zeros
/// (`0` itself excepted), fitting an i64. `+5`, `007`, `-0`, ` 5` and `5 ` are not integers.
pub fn parse_integer(value: &[u8]) -> Option<i64> {
    let digits = value.strip_prefix(b"-").unwrap_or(value);
    let canonical = match digits {
        [b'0'] => value.len() == 1,
        [b'1'..=b'9', rest @ ..] => rest.iter().all(u8::is_ascii_digit),
        _ => false,
    };
    if !canonical {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// Whether a range has no keys at all (BTreeMap::range panics on start > end).
fn range_is_empty(start: &Bound<Key>, end: &Bound<Key>) -> bool {
    match (start, end) {
        (Bound::Included(s), Bound::Included(e)) => s > e,
        (Bound::Included(s) | Bound::Excluded(s), Bound::Excluded(e)) | (Bound::Excluded(s), Bound::Included(e)) => {
            s >= e
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(at_ms: u64, command: Command) -> Write {
        Write { at_ms, command }
    }

    fn set(key: &str, value: &str) -> Command {
        Command::Set {
            key: key.into(),
            value: value.into(),
            condition: SetCondition::Always,
            expiry: Expiry::Never,
        }
    }

    fn get(store: &Store, key: &str, now: u64) -> Option<Vec<u8>> {
        match store.query(&Query::Get { key: key.into() }, now) {
            Response::Value(v) => v,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn put_get_delete() {
        let mut s = Store::new(Limits::default());
        assert_eq!(
            s.apply(&w(1, set("a", "1"))),
            Response::Set {
                written: true,
                previous: None
            }
        );
        assert_eq!(
            s.apply(&w(2, set("a", "2"))),
            Response::Set {
                written: true,
                previous: Some(b"1".to_vec())
            }
        );
        assert_eq!(get(&s, "a", 2), Some(b"2".to_vec()));
        assert_eq!(
            s.apply(&w(
                3,
                Command::Delete {
                    keys: vec![b"a".to_vec(), b"zz".to_vec()]
                }
            )),
            Response::Count(1)
        );
        assert_eq!(get(&s, "a", 3), None);
        assert!(s.is_empty());
        assert_eq!(s.bytes(), 0);
    }

    #[test]
    fn set_conditions() {
        let mut s = Store::new(Limits::default());
        let nx = |v: &str| Command::Set {
            key: b"k".to_vec(),
            value: v.into(),
            condition: SetCondition::IfAbsent,
            expiry: Expiry::Never,
        };
        let xx = Command::Set {
            key: b"j".to_vec(),
            value: b"x".to_vec(),
            condition: SetCondition::IfPresent,
            expiry: Expiry::Never,
        };
        assert_eq!(
            s.apply(&w(0, xx)),
            Response::Set {
                written: false,
                previous: None
            }
        );
        assert_eq!(
            s.apply(&w(0, nx("1"))),
            Response::Set {
                written: true,
                previous: None
            }
        );
        assert_eq!(
            s.apply(&w(0, nx("2"))),
            Response::Set {
                written: false,
                previous: Some(b"1".to_vec())
            }
        );
        assert_eq!(get(&s, "k", 0), Some(b"1".to_vec()));
        assert_eq!(get(&s, "j", 0), None);
    }

    #[test]
    fn compare_and_swap() {
        let mut s = Store::new(Limits::default());
        let cas = |e: Option<&str>, n: Option<&str>| Command::CompareAndSwap {
            key: b"k".to_vec(),
            expected: e.map(Into::into),
            new: n.map(Into::into),
        };
        assert_eq!(
            s.apply(&w(0, cas(None, Some("a")))),
            Response::Cas {
                swapped: true,
                previous: None
            }
        );
        assert_eq!(
            s.apply(&w(0, cas(None, Some("b")))),
            Response::Cas {
                swapped: false,
                previous: Some(b"a".to_vec())
            }
        );
        assert_eq!(
            s.apply(&w(0, cas(Some("a"), Some("c")))),
            Response::Cas {
                swapped: true,
                previous: Some(b"a".to_vec())
            }
        );
        assert_eq!(
            s.apply(&w(0, cas(Some("c"), None))),
            Response::Cas {
                swapped: true,
                previous: Some(b"c".to_vec())
            }
        );
        assert_eq!(get(&s, "k", 0), None);
    }

    #[test]
    fn ttl_expires_by_the_logical_clock_only() {
        let mut s = Store::new(Limits::default());
        let with_ttl = Command::Set {
            key: b"t".to_vec(),
            value: b"v".to_vec(),
            condition: SetCondition::Always,
            expiry: Expiry::At(100),
        };
        s.apply(&w(10, with_ttl));
        assert_eq!(
            s.query(&Query::Ttl { key: b"t".to_vec() }, 40),
            Response::Ttl(TtlState::Remaining(60))
        );
        assert_eq!(get(&s, "t", 99), Some(b"v".to_vec()));
        // A reader whose clock passed the expiry sees nothing, although the key is still held.
        assert_eq!(get(&s, "t", 100), None);
        assert_eq!(s.query(&Query::Count, 100), Response::Count(0));
        assert_eq!(s.len(), 1);
        // Applying any write with a later leader clock removes it.
        s.apply(&w(150, set("other", "x")));
        assert_eq!(s.len(), 1);
        assert_eq!(get(&s, "t", 0), None);
        // KEEPTTL keeps, a plain SET clears, PERSIST clears.
        let keep = Command::Set {
            key: b"other".to_vec(),
            value: b"y".to_vec(),
            condition: SetCondition::Always,
            expiry: Expiry::Keep,
        };
        s.apply(&w(
            150,
            Command::SetExpiry {
                key: b"other".to_vec(),
                at_ms: Some(500),
            },
        ));
        s.apply(&w(150, keep));
        assert_eq!(
            s.query(&Query::Ttl { key: b"other".to_vec() }, 150),
            Response::Ttl(TtlState::Remaining(350))
        );
        s.apply(&w(
            151,
            Command::SetExpiry {
                key: b"other".to_vec(),
                at_ms: None,
            },
        ));
        assert_eq!(
            s.query(&Query::Ttl { key: b"other".to_vec() }, 999),
            Response::Ttl(TtlState::Persistent)
        );
        assert_eq!(
            s.query(&Query::Ttl { key: b"none".to_vec() }, 999),
            Response::Ttl(TtlState::Missing)
        );
        // An expiry in the past deletes at once.
        s.apply(&w(
            152,
            Command::SetExpiry {
                key: b"other".to_vec(),
                at_ms: Some(1),
            },
        ));
        assert!(s.is_empty());
    }

    #[test]
    fn increment_append_getdel() {
        let mut s = Store::new(Limits {
            max_value_len: 4,
            ..Limits::default()
        });
        assert_eq!(
            s.apply(&w(
                0,
                Command::Increment {
                    key: b"n".to_vec(),
                    delta: 5
                }
            )),
            Response::Integer(5)
        );
        assert_eq!(
            s.apply(&w(
                0,
                Command::Increment {
                    key: b"n".to_vec(),
                    delta: -7
                }
            )),
            Response::Integer(-2)
        );
        s.apply(&w(0, set("n", "abc")));
        assert_eq!(
            s.apply(&w(
                0,
                Command::Increment {
                    key: b"n".to_vec(),
                    delta: 1
                }
            )),
            Response::Error(CommandError::NotAnInteger)
        );
        s.apply(&w(0, set("m", &i64::MAX.to_string())));
        assert_eq!(
            s.apply(&w(
                0,
                Command::Increment {
                    key: b"m".to_vec(),
                    delta: 1
                }
            )),
            Response::Error(CommandError::Overflow)
        );
        assert_eq!(
            s.apply(&w(
                0,
                Command::Append {
                    key: b"n".to_vec(),
                    suffix: b"d".to_vec()
                }
            )),
            Response::Count(4)
        );
        assert_eq!(
            s.apply(&w(
                0,
                Command::Append {
                    key: b"n".to_vec(),
                    suffix: b"e".to_vec()
                }
            )),
            Response::Error(CommandError::ValueTooLong { len: 5, max: 4 })
        );
        assert_eq!(
            s.apply(&w(0, Command::GetDelete { key: b"n".to_vec() })),
            Response::Value(Some(b"abcd".to_vec()))
        );
        assert_eq!(
            s.apply(&w(0, Command::GetDelete { key: b"n".to_vec() })),
            Response::Value(None)
        );
    }

    #[test]
    fn scans_are_ordered_bounded_and_limited() {
        let mut s = Store::new(Limits::default());
        for k in ["b", "a", "ab", "abc", "c", "d"] {
            s.apply(&w(0, set(k, k)));
        }
        let keys = |r: Response| match r {
            Response::Entries(e) => e
                .into_iter()
                .map(|(k, _)| String::from_utf8(k).unwrap())
                .collect::<Vec<_>>(),
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(
            keys(s.query(
                &Query::Prefix {
                    prefix: b"ab".to_vec(),
                    limit: 10
                },
                0
            )),
            ["ab", "abc"]
        );
        assert_eq!(
            keys(s.query(
                &Query::Prefix {
                    prefix: b"a".to_vec(),
                    limit: 2
                },
                0
            )),
            ["a", "ab"]
        );
        let range = Query::Range {
            start: Bound::Excluded(b"ab".to_vec()),
            end: Bound::Included(b"c".to_vec()),
            limit: 10,
        };
        assert_eq!(keys(s.query(&range, 0)), ["abc", "b", "c"]);
        let inverted = Query::Range {
            start: Bound::Included(b"z".to_vec()),
            end: Bound::Excluded(b"a".to_vec()),
            limit: 10,
        };
        assert_eq!(keys(s.query(&inverted, 0)), Vec::<String>::new());
        s.apply(&w(0, Command::Clear));
        assert_eq!(s.query(&Query::Count, 0), Response::Count(0));
    }

    #[test]
    fn snapshot_round_trip_preserves_everything() {
        let mut s = Store::new(Limits::default());
        s.apply(&w(7, set("a", "1")));
        s.apply(&w(
            8,
            Command::Set {
                key: b"t".to_vec(),
                value: b"2".to_vec(),
                condition: SetCondition::Always,
                expiry: Expiry::At(90),
            },
        ));
        let restored = Store::from_bytes(&s.to_bytes(), Limits::default()).unwrap();
        assert_eq!(restored, s);
        assert_eq!(restored.clock_ms(), 8);
        assert!(Store::from_bytes(&[1, 2, 3], Limits::default()).is_err());
    }

    #[test]
    fn snapshot_bytes_match_the_owned_image() {
        // Snapshots written before `to_bytes` encoded from the map must still decode, and
        // replicas must agree byte for byte: the borrowed encoding equals the owned one.
        let mut s = Store::new(Limits::default());
        for i in 0..300u32 {
            let value = "v".repeat(i as usize % 200);
            s.apply(&w(u64::from(i), set(&format!("k{i}"), &value)));
        }
        s.apply(&w(
            400,
            Command::Set {
                key: vec![0, 255, 128],
                value: Vec::new(),
                condition: SetCondition::Always,
                expiry: Expiry::At(1_000_000),
            },
        ));
        let owned = Image {
            clock_ms: s.clock_ms,
            entries: s
                .data
                .iter()
                .map(|(k, r)| (k.clone(), r.value.clone(), r.expires_at))
                .collect(),
        };
        assert_eq!(s.to_bytes(), encode(&owned));
        assert_eq!(Store::from_bytes(&s.to_bytes(), Limits::default()).unwrap(), s);
    }

    #[test]
    fn integers_are_read_as_redis_reads_them() {
        for good in ["0", "7", "-7", "9223372036854775807", "-9223372036854775808"] {
            assert!(parse_integer(good.as_bytes()).is_some(), "{good}");
        }
        for bad in [
            "+5",
            "007",
            "-0",
            " 5",
            "5 ",
            "",
            "-",
            "1e3",
            "9223372036854775808",
            "0x10",
        ] {
            assert_eq!(parse_integer(bad.as_bytes()), None, "{bad}");
        }
        let mut s = Store::new(Limits::default());
        s.apply(&w(1, set("n", "+5")));
        assert_eq!(
            s.apply(&w(
                2,
                Command::Increment {
                    key: b"n".to_vec(),
                    delta: 1
                }
            )),
            Response::Error(CommandError::NotAnInteger)
        );
    }

    #[test]
    fn reads_stop_at_the_reply_limit_before_copying_it() {
        let mut s = Store::new(Limits {
            max_reply_bytes: 10,
            ..Limits::default()
        });
        s.apply(&w(1, set("a", "12345")));
        s.apply(&w(1, set("b", "12345")));
        let get = |keys: &[&str]| Query::MultiGet {
            keys: keys.iter().map(|k| k.as_bytes().to_vec()).collect(),
        };
        assert!(matches!(s.query(&get(&["a", "b"]), 1), Response::Values(_)));
        let too_large = Response::Error(CommandError::ReplyTooLarge { max: 10 });
        assert_eq!(s.query(&get(&["a", "a", "a"]), 1), too_large);
        let range = Query::Range {
            start: Bound::Unbounded,
            end: Bound::Unbounded,
            limit: usize::MAX,
        };
        assert_eq!(s.query(&range, 1), too_large);
        let keys = Query::Keys {
            start: Bound::Unbounded,
            end: Bound::Unbounded,
            limit: usize::MAX,
        };
        assert_eq!(s.query(&keys, 1), Response::Keys(vec![b"a".to_vec(), b"b".to_vec()]));
    }
}
