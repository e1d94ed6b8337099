//! The ordered key-value state machine.
//!
//! [`Store`] applies [`Write`]s in log order and answers [`Query`]s. It keeps a logical clock:
//! the largest `Write::at_ms` applied so far. A key whose expiry time is at or before that clock is
//! removed on apply; a read also hides keys that expired before the reader's own clock. Nothing
//! here reads a real clock, so every replica that applies the same log holds the same state.
//!
//! Every write is applied at a *revision*: the index of its Raft log entry. Each key remembers
//! the revision that last changed it, and deletions (expiries included) leave a tombstone with
//! theirs, so a transaction's guard can tell whether a key changed after a revision (Redis
//! `WATCH`). Tombstones are bounded: past [`MAX_TOMBSTONES`] they are all dropped and the
//! *tombstone floor* rises to the current revision; a guard older than the floor treats an
//! absent key as changed (a transaction may abort needlessly, never commit wrongly).
//!
//! When asked to ([`Store::record_events`]), the store also lists what each write changed, as
//! [`Event`]s: the source of keyspace notifications, pub/sub and watches.

mod image;
mod record;
mod session;
mod strings;

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::ops::Bound;

pub use image::FrozenStore;
pub use image::IMAGE_VERSION;
use record::Record;
use record::Records;
pub use record::seed_key_hash;
use session::Admission;
pub use session::MAX_RESPONSES;
pub use session::MAX_SESSIONS;
use session::Sessions;

use crate::command::Command;
use crate::command::CommandError;
use crate::command::Expiry;
use crate::command::Key;
use crate::command::Limits;
use crate::command::Query;
use crate::command::Response;
use crate::command::SetCondition;
use crate::command::TtlState;
use crate::command::TxOp;
use crate::command::Value;
use crate::command::WatchGuard;
use crate::command::Write;

/// Most tombstones kept before they are dropped and the tombstone floor rises.
pub const MAX_TOMBSTONES: usize = 100_000;

/// A change made by an applied write, in apply order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A key changed.
    Key {
        /// The revision of the write.
        revision: u64,
        /// The key.
        key: Key,
        /// Its value after the change; `None` if it is gone.
        value: Option<Value>,
        /// What happened, named as Redis names keyspace events: `set`, `del`, `expired`,
        /// `expire`, `persist`, `incrby`, `append`.
        event: &'static str,
    },
    /// Every key was removed (FLUSHDB).
    Flushed {
        /// The revision of the write.
        revision: u64,
    },
    /// A message was published.
    Message {
        /// The revision of the write.
        revision: u64,
        /// The channel.
        channel: Vec<u8>,
        /// The message.
        message: Vec<u8>,
    },
}

impl Event {
    /// The revision of the write that made this change.
    pub fn revision(&self) -> u64 {
        match self {
            Event::Key { revision, .. } | Event::Flushed { revision } | Event::Message { revision, .. } => *revision,
        }
    }
}

/// The ordered key-value state machine. See the module docs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Store {
    /// Every key's record (value, expiry, revision) in one allocation ([`record`]).
    data: Records,
    /// (expiry time, key) for every key with an expiry, to drop them in time order.
    expiries: BTreeSet<(u64, Key)>,
    clock_ms: u64,
    limits: Limits,
    /// Sum of key and value lengths of all stored records.
    bytes: u64,
    /// The revision of the last write applied.
    revision: u64,
    /// Revision of the deletion of keys deleted after `tombstone_floor`.
    tombstones: BTreeMap<Key, u64>,
    tombstone_floor: u64,
    sessions: Sessions,
    /// Changes not yet taken, when recording.
    events: Option<Vec<Event>>,
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

    /// The earliest expiry time of a key held, if any has one: a write whose `at_ms` reaches
    /// it removes that key.
    pub fn next_expiry(&self) -> Option<u64> {
        self.expiries.first().map(|(t, _)| *t)
    }

    /// The revision of the last write applied (0 before any).
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// Number of open client sessions.
    pub fn sessions(&self) -> usize {
        self.sessions.len()
    }

    /// Starts or stops listing changes as [`Event`]s (stopping drops those not taken).
    pub fn record_events(&mut self, on: bool) {
        self.events = on.then(Vec::new);
    }

    /// The changes listed since the last call, in apply order.
    pub fn take_events(&mut self) -> Vec<Event> {
        self.events.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// Applies one write at `revision` (its log index, larger than any applied before).
    /// Deterministic: depends only on the state, `revision` and `write`.
    pub fn apply(&mut self, revision: u64, write: &Write) -> Response {
        self.revision = revision;
        self.advance_clock(write.at_ms);
        self.execute(&write.command)
    }

    fn execute(&mut self, command: &Command) -> Response {
        match command {
            Command::Set {
                key,
                value,
                condition,
                expiry,
            } => self.set(key, value, *condition, *expiry, true),
            Command::SetQuiet {
                key,
                value,
                condition,
                expiry,
            } => self.set(key, value, *condition, *expiry, false),
            Command::MultiSet { pairs } => {
                for (key, value) in pairs {
                    self.insert(key, value, None);
                    self.note(key, "set");
                }
                Response::Ok
            }
            Command::Delete { keys } => {
                let mut removed = 0;
                for key in keys {
                    if self.remove(key).is_some() {
                        removed += 1;
                        self.note(key, "del");
                    }
                }
                Response::Count(removed)
            }
            Command::GetDelete { key } => {
                let removed = self.remove(key).map(|r| r.value().to_vec());
                if removed.is_some() {
                    self.note(key, "del");
                }
                Response::Value(removed)
            }
            Command::CompareAndSwap { key, expected, new } => {
                let previous = self.data.get(key).map(|r| r.value().to_vec());
                let swapped = previous == *expected;
                if swapped {
                    match new {
                        Some(value) => {
                            self.insert(key, value, None);
                            self.note(key, "set");
                        }
                        None => {
                            if self.remove(key).is_some() {
                                self.note(key, "del");
                            }
                        }
                    }
                }
                Response::Cas { swapped, previous }
            }
            Command::Increment { key, delta } => self.increment(key, *delta),
            Command::Append { key, suffix } => self.append(key, suffix),
            Command::SetExpiry { key, at_ms } => self.set_expiry(key, *at_ms),
            Command::Clear => {
                self.data.clear();
                self.expiries.clear();
                self.bytes = 0;
                self.tombstones.clear();
                self.tombstone_floor = self.revision;
                if let Some(events) = &mut self.events {
                    events.push(Event::Flushed {
                        revision: self.revision,
                    });
                }
                Response::Ok
            }
            Command::RegisterSession { ttl_ms } => {
                self.sessions.register(self.revision, *ttl_ms, self.clock_ms);
                Response::Session(self.revision)
            }
            Command::Session {
                id,
                seq,
                acked,
                command,
            } => match self.sessions.admit(*id, *seq, *acked, self.clock_ms) {
                Err(e) => Response::Error(e),
                Ok(Admission::Repeat(response)) => response,
                Ok(Admission::Apply) => {
                    let response = self.execute(command);
                    self.sessions.record(*id, *seq, response.clone());
                    response
                }
            },
            Command::EndSession { id } => Response::Count(u64::from(self.sessions.end(*id))),
            Command::Transaction { guard, ops } => self.transaction(guard.as_ref(), ops),
            Command::Publish { channel, message } => {
                if let Some(events) = &mut self.events {
                    events.push(Event::Message {
                        revision: self.revision,
                        channel: channel.clone(),
                        message: message.clone(),
                    });
                }
                Response::Ok
            }
            Command::MultiSetIfAbsent { pairs } => self.multi_set_if_absent(pairs),
            Command::GetAndExpire { key, change } => self.get_and_expire(key, *change),
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
            Command::ExpireIf { key, at, condition } => self.expire_if(key, *at, *condition),
            // `apply` advanced the clock, removing what was due: nothing else to do.
            Command::ExpireDue => Response::Ok,
        }
    }

    /// Starts loading into the cache the records that `queries`, about to be answered one after
    /// another, will read (point reads; a scan walks the tree in order anyway). Answering a
    /// pipeline of GETs then waits for their memory once, not once per GET.
    pub fn prefetch<'a>(&self, queries: impl IntoIterator<Item = &'a Query>) {
        for query in queries {
            match query {
                Query::Get { key } | Query::GetRevision { key } => self.data.prefetch(key),
                Query::MultiGet { keys } => keys.iter().for_each(|key| self.data.prefetch(key)),
                _ => {}
            }
        }
    }

    /// Starts loading into the cache the record that `write`, about to be applied, will change
    /// (the one-key writes, alone or in a session; see [`Store::prefetch`]).
    pub fn prefetch_write(&self, write: &Write) {
        let mut command = &write.command;
        while let Command::Session { command: inner, .. } = command {
            command = inner;
        }
        match command {
            Command::Set { key, .. }
            | Command::SetQuiet { key, .. }
            | Command::Increment { key, .. }
            | Command::Append { key, .. }
            | Command::GetDelete { key } => self.data.prefetch(key),
            _ => {}
        }
    }

    /// Answers a read as of the reader's clock `now_ms` (never earlier than the store's clock).
    pub fn query(&self, query: &Query, now_ms: u64) -> Response {
        let now = now_ms.max(self.clock_ms);
        match query {
            Query::Get { key } => Response::Value(self.live(key, now).map(|r| r.value().to_vec())),
            Query::MultiGet { keys } => {
                // Sized before anything is copied: a key repeated many times costs nothing.
                let total = keys
                    .iter()
                    .map(|k| self.live(k, now).map_or(0, |r| r.value().len()))
                    .fold(0usize, usize::saturating_add);
                if total > self.limits.max_reply_bytes {
                    return self.reply_too_large();
                }
                Response::Values(
                    keys.iter()
                        .map(|k| self.live(k, now).map(|r| r.value().to_vec()))
                        .collect(),
                )
            }
            Query::Range { start, end, limit } => {
                if range_is_empty(start, end) {
                    return Response::Entries(Vec::new());
                }
                let range = (start.as_ref().map(Vec::as_slice), end.as_ref().map(Vec::as_slice));
                self.collect_live(self.data.range(range), now, *limit)
            }
            Query::Prefix { prefix, limit } => {
                let iter = self.data.range((Bound::Included(prefix.as_slice()), Bound::Unbounded));
                let matching = iter.take_while(|r| r.key().starts_with(prefix));
                self.collect_live(matching, now, *limit)
            }
            Query::Ttl { key } => Response::Ttl(match self.live(key, now).map(Record::expires_at) {
                None => TtlState::Missing,
                Some(None) => TtlState::Persistent,
                Some(Some(t)) => TtlState::Remaining(t - now),
            }),
            Query::Keys { start, end, limit } => {
                if range_is_empty(start, end) {
                    return Response::Keys(Vec::new());
                }
                let range = (start.as_ref().map(Vec::as_slice), end.as_ref().map(Vec::as_slice));
                self.collect_live_keys(self.data.range(range), now, *limit)
            }
            Query::Count => {
                let expired = self.expiries.range(..(now + 1, Vec::new())).count();
                Response::Count((self.data.len() - expired) as u64)
            }
            Query::GetRevision { key } => {
                let record = self.live(key, now);
                Response::Revisioned {
                    value: record.map(|r| r.value().to_vec()),
                    mod_revision: record.map_or(0, Record::mod_revision),
                    revision: self.revision,
                }
            }
            Query::ExpireTime { key } => self.expire_time(key, now),
            Query::RandomKey { seed } => self.random_key(*seed, now),
        }
    }

    /// A SET; the answer carries the value it replaced if `keep_previous` asks for it.
    fn set(
        &mut self,
        key: &Key,
        value: &Value,
        condition: SetCondition,
        expiry: Expiry,
        keep_previous: bool,
    ) -> Response {
        // The common SET: unconditional, with an expiry that does not depend on the key's
        // current one and has not passed. One lookup writes it, present or not (in place when it
        // keeps its size).
        if condition == SetCondition::Always {
            let expires_at = match expiry {
                Expiry::Never => Some(None),
                Expiry::At(t) if t > self.clock_ms => Some(Some(t)),
                Expiry::At(_) | Expiry::Keep => None,
            };
            if let Some(expires_at) = expires_at {
                let mut previous = None;
                if keep_previous {
                    self.insert_seeing(key, value, expires_at, |r| previous = Some(r.value().to_vec()));
                } else {
                    self.insert(key, value, expires_at);
                }
                self.note(key, "set");
                return Response::Set {
                    written: true,
                    previous,
                };
            }
        }
        let previous = self.data.get(key);
        let written = match condition {
            SetCondition::Always => true,
            SetCondition::IfAbsent => previous.is_none(),
            SetCondition::IfPresent => previous.is_some(),
        };
        let expires_at = match expiry {
            Expiry::Never => None,
            Expiry::At(t) => Some(t),
            Expiry::Keep => previous.and_then(Record::expires_at),
        };
        let previous = previous.filter(|_| keep_previous).map(|r| r.value().to_vec());
        if written {
            if expires_at.is_some_and(|t| t <= self.clock_ms) {
                if self.remove(key).is_some() {
                    self.note(key, "del");
                }
            } else {
                self.insert(key, value, expires_at);
                self.note(key, "set");
            }
        }
        Response::Set { written, previous }
    }

    fn increment(&mut self, key: &Key, delta: i64) -> Response {
        let (current, expires_at) = match self.data.get(key) {
            None => (0, None),
            Some(r) => match parse_integer(r.value()) {
                Some(n) => (n, r.expires_at()),
                None => return Response::Error(CommandError::NotAnInteger),
            },
        };
        match current.checked_add(delta) {
            None => Response::Error(CommandError::Overflow),
            Some(n) => {
                self.insert(key, n.to_string().as_bytes(), expires_at);
                self.note(key, "incrby");
                Response::Integer(n)
            }
        }
    }

    fn append(&mut self, key: &Key, suffix: &[u8]) -> Response {
        let (mut value, expires_at) = match self.data.get(key) {
            Some(r) => (r.value().to_vec(), r.expires_at()),
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
        self.insert(key, &value, expires_at);
        self.note(key, "append");
        Response::Count(len as u64)
    }

    fn set_expiry(&mut self, key: &Key, at_ms: Option<u64>) -> Response {
        let Some(record) = self.data.get(key) else {
            return Response::Count(0);
        };
        if at_ms.is_some_and(|t| t <= self.clock_ms) {
            self.remove(key);
            self.note(key, "del");
        } else {
            self.put(Record::new(key, record.value(), at_ms, self.revision));
            self.note(key, if at_ms.is_some() { "expire" } else { "persist" });
        }
        Response::Count(1)
    }

    fn transaction(&mut self, guard: Option<&WatchGuard>, ops: &[TxOp]) -> Response {
        if let Some(guard) = guard
            && guard.keys.iter().any(|key| self.changed_since(key, guard.since))
        {
            return Response::Transaction(None);
        }
        let answers = ops
            .iter()
            .map(|op| match op {
                TxOp::Write { command, .. } => self.execute(command),
                TxOp::Read(query) => self.query(query, self.clock_ms),
            })
            .collect();
        Response::Transaction(Some(answers))
    }

    /// Whether `key` was written, deleted or expired after revision `since`.
    fn changed_since(&self, key: &[u8], since: u64) -> bool {
        match (self.data.get(key), self.tombstones.get(key)) {
            (Some(record), _) => record.mod_revision() > since,
            (None, Some(&deleted)) => deleted > since,
            (None, None) => since < self.tombstone_floor,
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
            self.note(&key, "expired");
        }
        self.sessions.expire(self.clock_ms);
    }

    /// Lists the change of `key` just made, when recording.
    fn note(&mut self, key: &[u8], event: &'static str) {
        if let Some(events) = &mut self.events {
            events.push(Event::Key {
                revision: self.revision,
                key: key.to_vec(),
                value: self.data.get(key).map(|r| r.value().to_vec()),
                event,
            });
        }
    }

    /// Writes `key` at the current revision.
    fn insert(&mut self, key: &[u8], value: &[u8], expires_at: Option<u64>) {
        self.insert_seeing(key, value, expires_at, |_| ());
    }

    /// Writes `key` at the current revision; `previous` sees the record it replaces first.
    /// A record of the same size is rewritten in place ([`Records::overwrite`]).
    fn insert_seeing(&mut self, key: &[u8], value: &[u8], expires_at: Option<u64>, previous: impl FnOnce(&Record)) {
        let mut previous = Some(previous);
        let mut previous_expiry = None;
        let in_place = self.data.overwrite(key, value, expires_at, self.revision, |record| {
            previous_expiry = record.expires_at();
            if let Some(previous) = previous.take() {
                previous(record);
            }
        });
        if !in_place {
            let replaced = self.put(Record::new(key, value, expires_at, self.revision));
            if let Some((previous, replaced)) = previous.zip(replaced) {
                previous(&replaced);
            }
            return;
        }
        // Same key and value lengths: `bytes` stands; a present key has no tombstone.
        debug_assert!(!self.tombstones.contains_key(key));
        if previous_expiry != expires_at {
            if let Some(t) = previous_expiry {
                self.expiries.remove(&(t, key.to_vec()));
            }
            if let Some(t) = expires_at {
                self.expiries.insert((t, key.to_vec()));
            }
        }
    }

    /// Puts `record` in as it is, replacing its key's record and tombstone; returns the record
    /// replaced.
    fn put(&mut self, record: Record) -> Option<Record> {
        if !self.tombstones.is_empty() {
            self.tombstones.remove(record.key());
        }
        let expires_at = record.expires_at();
        let indexed = expires_at.map(|t| (t, record.key().to_vec()));
        self.bytes += record.counted_bytes();
        let previous = self.data.replace(record);
        let previous_expiry = previous.as_ref().and_then(Record::expires_at);
        if let Some(previous) = &previous {
            self.bytes -= previous.counted_bytes();
        }
        if previous_expiry != expires_at {
            if let Some((t, previous)) = previous_expiry.zip(previous.as_ref()) {
                self.expiries.remove(&(t, previous.key().to_vec()));
            }
            if let Some(indexed) = indexed {
                self.expiries.insert(indexed);
            }
        }
        previous
    }

    /// Deletes `key`, leaving a tombstone.
    fn remove(&mut self, key: &[u8]) -> Option<Record> {
        let record = self.take(key)?;
        if self.tombstones.len() >= MAX_TOMBSTONES {
            self.tombstones.clear();
            self.tombstone_floor = self.revision;
        }
        self.tombstones.insert(key.to_vec(), self.revision);
        Some(record)
    }

    /// Takes `key`'s record out of the maps (no tombstone).
    fn take(&mut self, key: &[u8]) -> Option<Record> {
        let record = self.data.take(key)?;
        if let Some(t) = record.expires_at() {
            self.expiries.remove(&(t, key.to_vec()));
        }
        self.bytes -= record.counted_bytes();
        Some(record)
    }

    fn live(&self, key: &[u8], now: u64) -> Option<&Record> {
        self.data.get(key).filter(|r| r.is_live(now))
    }

    /// Up to `limit` live entries of `iter`, or [`CommandError::ReplyTooLarge`] once their
    /// keys and values pass [`Limits::max_reply_bytes`].
    fn collect_live<'a>(&self, iter: impl Iterator<Item = &'a Record>, now: u64, limit: usize) -> Response {
        let mut bytes = 0usize;
        let mut entries = Vec::new();
        for r in iter.filter(|r| r.is_live(now)).take(limit) {
            bytes = bytes.saturating_add(r.key().len() + r.value().len());
            if bytes > self.limits.max_reply_bytes {
                return self.reply_too_large();
            }
            entries.push((r.key().to_vec(), r.value().to_vec()));
        }
        Response::Entries(entries)
    }

    /// Up to `limit` live keys of `iter`, without their values, within the reply limit.
    fn collect_live_keys<'a>(&self, iter: impl Iterator<Item = &'a Record>, now: u64, limit: usize) -> Response {
        let mut bytes = 0usize;
        let mut keys = Vec::new();
        for r in iter.filter(|r| r.is_live(now)).take(limit) {
            bytes = bytes.saturating_add(r.key().len());
            if bytes > self.limits.max_reply_bytes {
                return self.reply_too_large();
            }
            keys.push(r.key().to_vec());
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
    use crate::command::ExpiryChange;
    use crate::command::ExpiryCondition;
    use crate::command::ExpiryTime;

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

    /// Every write keeps the bookkeeping around the records consistent: every expiry indexed
    /// once, the byte count, the revision of the last write; and an image of the store
    /// (decoded in bulk) equals the store.
    #[test]
    fn writes_keep_expiries_bytes_and_revisions_consistent() {
        let mut s = Store::new(Limits::default());
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        let mut expiring_seen = false;
        for revision in 1..3_000u64 {
            let key = format!("k{}", next(20)).into_bytes();
            let at_ms = revision * 10;
            let other = format!("k{}", next(20)).into_bytes();
            // Few lengths, so that a SET often rewrites a record of its size in place.
            let value = vec![b'a' + (revision % 26) as u8; next(4) as usize * 13];
            let expiry_time = |n: u64| match n % 3 {
                0 => ExpiryTime::In(n),
                1 => ExpiryTime::At(at_ms + n),
                _ => ExpiryTime::At(at_ms.saturating_sub(n)),
            };
            let command = match next(16) {
                0 => Command::Delete {
                    keys: vec![key.clone()],
                },
                1 => Command::SetExpiry {
                    key: key.clone(),
                    at_ms: [None, Some(at_ms + next(300)), Some(at_ms)][next(3) as usize],
                },
                2 => Command::Rename {
                    source: key.clone(),
                    destination: other,
                    if_absent: next(2) == 0,
                },
                3 => Command::Copy {
                    source: key.clone(),
                    destination: other,
                    replace: next(2) == 0,
                },
                4 => Command::GetAndExpire {
                    key: key.clone(),
                    change: [
                        ExpiryChange::Keep,
                        ExpiryChange::Persist,
                        ExpiryChange::Set(expiry_time(next(300))),
                    ][next(3) as usize],
                },
                5 => Command::ExpireIf {
                    key: key.clone(),
                    at: expiry_time(next(300)),
                    condition: [
                        ExpiryCondition::Always,
                        ExpiryCondition::Later,
                        ExpiryCondition::Earlier,
                    ][next(3) as usize],
                },
                6 => Command::Append {
                    key: key.clone(),
                    suffix: b"12".to_vec(),
                },
                7 => Command::Increment {
                    key: key.clone(),
                    delta: 1,
                },
                8 => Command::SetQuiet {
                    key: key.clone(),
                    value: value.clone(),
                    condition: [SetCondition::Always, SetCondition::IfAbsent, SetCondition::IfPresent]
                        [next(3) as usize],
                    expiry: [Expiry::Keep, Expiry::At(at_ms + next(300)), Expiry::Never][next(3) as usize],
                },
                _ => Command::Set {
                    key: key.clone(),
                    value: value.clone(),
                    condition: [SetCondition::Always, SetCondition::IfAbsent, SetCondition::IfPresent]
                        [next(3) as usize],
                    expiry: match next(5) {
                        0 => Expiry::Keep,
                        1 => Expiry::At(at_ms + next(300)),
                        2 => Expiry::At(at_ms.saturating_sub(5)),
                        _ => Expiry::Never,
                    },
                },
            };
            // What the write sees: keys expired by its time are gone before it runs.
            let before = s
                .data
                .get(&key)
                .filter(|r| r.is_live(at_ms))
                .map(|r| r.value().to_vec());
            let quiet = matches!(command, Command::SetQuiet { .. });
            let response = s.apply(revision, &w(at_ms, command));
            if let Response::Set { written, previous } = response {
                assert_eq!(previous, before.filter(|_| !quiet), "a quiet SET answers no value");
                if written && let Some(record) = s.data.get(&key) {
                    assert_eq!(record.mod_revision(), revision);
                    assert_eq!(record.value(), value);
                }
            }
            let indexed: BTreeSet<(u64, Key)> = s
                .data
                .iter()
                .filter_map(|r| r.expires_at().map(|t| (t, r.key().to_vec())))
                .collect();
            assert_eq!(s.expiries, indexed, "at revision {revision}");
            let bytes: u64 = s.data.iter().map(|r| (r.key().len() + r.value().len()) as u64).sum();
            assert_eq!(s.bytes, bytes, "at revision {revision}");
            expiring_seen |= !s.expiries.is_empty();
        }
        assert!(expiring_seen, "the run exercised expiries");
        assert_eq!(Store::from_bytes(&s.to_bytes(), Limits::default()).unwrap(), s);
    }

    /// A store's records are equal only when every field is: restoring an image that differs
    /// in one value, revision or expiry gives a different store.
    #[test]
    fn stores_differ_in_any_field_of_a_record() {
        let mut s = Store::new(Limits::default());
        s.apply(1, &w(1, set("a", "1")));
        let mut other = s.clone();
        other.apply(2, &w(1, set("a", "1")));
        other.revision = s.revision;
        assert_ne!(other, s, "the revision of a differs");
        let mut other = s.clone();
        other.put(Record::new(b"a", b"2", None, 1));
        assert_ne!(other, s, "the value of a differs");
        let mut other = s.clone();
        other.put(Record::new(b"a", b"1", Some(99), 1));
        other.expiries.clear();
        assert_ne!(other, s, "the expiry of a differs");
        other.put(Record::new(b"a", b"1", None, 1));
        assert_eq!(other, s);
    }

    #[test]
    fn put_get_delete() {
        let mut s = Store::new(Limits::default());
        assert_eq!(
            s.apply(1, &w(1, set("a", "1"))),
            Response::Set {
                written: true,
                previous: None
            }
        );
        assert_eq!(
            s.apply(1, &w(2, set("a", "2"))),
            Response::Set {
                written: true,
                previous: Some(b"1".to_vec())
            }
        );
        assert_eq!(get(&s, "a", 2), Some(b"2".to_vec()));
        assert_eq!(
            s.apply(
                1,
                &w(
                    3,
                    Command::Delete {
                        keys: vec![b"a".to_vec(), b"zz".to_vec()]
                    }
                )
            ),
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
            s.apply(1, &w(0, xx)),
            Response::Set {
                written: false,
                previous: None
            }
        );
        assert_eq!(
            s.apply(1, &w(0, nx("1"))),
            Response::Set {
                written: true,
                previous: None
            }
        );
        assert_eq!(
            s.apply(1, &w(0, nx("2"))),
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
            s.apply(1, &w(0, cas(None, Some("a")))),
            Response::Cas {
                swapped: true,
                previous: None
            }
        );
        assert_eq!(
            s.apply(1, &w(0, cas(None, Some("b")))),
            Response::Cas {
                swapped: false,
                previous: Some(b"a".to_vec())
            }
        );
        assert_eq!(
            s.apply(1, &w(0, cas(Some("a"), Some("c")))),
            Response::Cas {
                swapped: true,
                previous: Some(b"a".to_vec())
            }
        );
        assert_eq!(
            s.apply(1, &w(0, cas(Some("c"), None))),
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
        s.apply(1, &w(10, with_ttl));
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
        s.apply(1, &w(150, set("other", "x")));
        assert_eq!(s.len(), 1);
        assert_eq!(get(&s, "t", 0), None);
        // KEEPTTL keeps, a plain SET clears, PERSIST clears.
        let keep = Command::Set {
            key: b"other".to_vec(),
            value: b"y".to_vec(),
            condition: SetCondition::Always,
            expiry: Expiry::Keep,
        };
        s.apply(
            1,
            &w(
                150,
                Command::SetExpiry {
                    key: b"other".to_vec(),
                    at_ms: Some(500),
                },
            ),
        );
        s.apply(1, &w(150, keep));
        assert_eq!(
            s.query(&Query::Ttl { key: b"other".to_vec() }, 150),
            Response::Ttl(TtlState::Remaining(350))
        );
        s.apply(
            1,
            &w(
                151,
                Command::SetExpiry {
                    key: b"other".to_vec(),
                    at_ms: None,
                },
            ),
        );
        assert_eq!(
            s.query(&Query::Ttl { key: b"other".to_vec() }, 999),
            Response::Ttl(TtlState::Persistent)
        );
        assert_eq!(
            s.query(&Query::Ttl { key: b"none".to_vec() }, 999),
            Response::Ttl(TtlState::Missing)
        );
        // An expiry in the past deletes at once.
        s.apply(
            1,
            &w(
                152,
                Command::SetExpiry {
                    key: b"other".to_vec(),
                    at_ms: Some(1),
                },
            ),
        );
        assert!(s.is_empty());
    }

    #[test]
    fn increment_append_getdel() {
        let mut s = Store::new(Limits {
            max_value_len: 4,
            ..Limits::default()
        });
        assert_eq!(
            s.apply(
                1,
                &w(
                    0,
                    Command::Increment {
                        key: b"n".to_vec(),
                        delta: 5
                    }
                )
            ),
            Response::Integer(5)
        );
        assert_eq!(
            s.apply(
                1,
                &w(
                    0,
                    Command::Increment {
                        key: b"n".to_vec(),
                        delta: -7
                    }
                )
            ),
            Response::Integer(-2)
        );
        s.apply(1, &w(0, set("n", "abc")));
        assert_eq!(
            s.apply(
                1,
                &w(
                    0,
                    Command::Increment {
                        key: b"n".to_vec(),
                        delta: 1
                    }
                )
            ),
            Response::Error(CommandError::NotAnInteger)
        );
        s.apply(1, &w(0, set("m", &i64::MAX.to_string())));
        assert_eq!(
            s.apply(
                1,
                &w(
                    0,
                    Command::Increment {
                        key: b"m".to_vec(),
                        delta: 1
                    }
                )
            ),
            Response::Error(CommandError::Overflow)
        );
        assert_eq!(
            s.apply(
                1,
                &w(
                    0,
                    Command::Append {
                        key: b"n".to_vec(),
                        suffix: b"d".to_vec()
                    }
                )
            ),
            Response::Count(4)
        );
        assert_eq!(
            s.apply(
                1,
                &w(
                    0,
                    Command::Append {
                        key: b"n".to_vec(),
                        suffix: b"e".to_vec()
                    }
                )
            ),
            Response::Error(CommandError::ValueTooLong { len: 5, max: 4 })
        );
        assert_eq!(
            s.apply(1, &w(0, Command::GetDelete { key: b"n".to_vec() })),
            Response::Value(Some(b"abcd".to_vec()))
        );
        assert_eq!(
            s.apply(1, &w(0, Command::GetDelete { key: b"n".to_vec() })),
            Response::Value(None)
        );
    }

    #[test]
    fn scans_are_ordered_bounded_and_limited() {
        let mut s = Store::new(Limits::default());
        for k in ["b", "a", "ab", "abc", "c", "d"] {
            s.apply(1, &w(0, set(k, k)));
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
        s.apply(1, &w(0, Command::Clear));
        assert_eq!(s.query(&Query::Count, 0), Response::Count(0));
    }

    #[test]
    fn snapshot_round_trip_preserves_everything() {
        let mut s = Store::new(Limits::default());
        s.apply(1, &w(7, set("a", "1")));
        s.apply(
            1,
            &w(
                8,
                Command::Set {
                    key: b"t".to_vec(),
                    value: b"2".to_vec(),
                    condition: SetCondition::Always,
                    expiry: Expiry::At(90),
                },
            ),
        );
        let restored = Store::from_bytes(&s.to_bytes(), Limits::default()).unwrap();
        assert_eq!(restored, s);
        assert_eq!(restored.clock_ms(), 8);
        assert!(Store::from_bytes(&[1, 2, 3], Limits::default()).is_err());
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
        s.apply(1, &w(1, set("n", "+5")));
        assert_eq!(
            s.apply(
                1,
                &w(
                    2,
                    Command::Increment {
                        key: b"n".to_vec(),
                        delta: 1
                    }
                )
            ),
            Response::Error(CommandError::NotAnInteger)
        );
    }

    #[test]
    fn reads_stop_at_the_reply_limit_before_copying_it() {
        let mut s = Store::new(Limits {
            max_reply_bytes: 10,
            ..Limits::default()
        });
        s.apply(1, &w(1, set("a", "12345")));
        s.apply(1, &w(1, set("b", "12345")));
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
