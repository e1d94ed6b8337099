//! The string and keyspace commands that read and then change a key in one step: `MSETNX`,
//! `GETEX`, `SETRANGE`, `INCRBYFLOAT`, `RENAME`/`RENAMENX`, `COPY` and `EXPIRE` with a
//! condition, plus the reads `EXPIRETIME` and `RANDOMKEY`.
//!
//! Each runs inside one applied log entry (alone, in a session or in a transaction), so the
//! read and the write are atomic on every replica, and each uses only the store: a relative
//! expiry ([`ExpiryTime::In`]) is resolved against the store's clock (the largest
//! `Write::at_ms` applied) rather than by each replica's own clock. Each change is noted as the
//! keyspace event Redis raises for it (`set`, `expire`, `persist`, `del`, `setrange`,
//! `incrbyfloat`, `rename_from` / `rename_to`, `copy_to`).
//! Keys whose expiry is at or before the store's clock were dropped by `advance_clock` before
//! any of these runs, so every key in `data` is live. Replies follow Redis 7.0 (`redis-server`
//! side by side in `kv-node/tests/redis_strings.rs`).

mod float;

use std::ops::Bound;

use super::Record;
use super::Store;
use crate::command::CommandError;
use crate::command::ExpiryChange;
use crate::command::ExpiryCondition;
use crate::command::ExpiryTime;
use crate::command::Key;
use crate::command::Response;
use crate::command::TtlState;
use crate::command::Value;
use float::LongDouble;

impl Store {
    /// `MSETNX`: all pairs, or none if any key exists.
    pub(super) fn multi_set_if_absent(&mut self, pairs: &[(Key, Value)]) -> Response {
        if pairs.iter().any(|(key, _)| self.data.contains_key(key)) {
            return Response::Count(0);
        }
        for (key, value) in pairs {
            self.insert(key, value, None);
            self.note(key, "set");
        }
        Response::Count(1)
    }

    /// `GETEX`: the value, after changing the key's expiry.
    pub(super) fn get_and_expire(&mut self, key: &Key, change: ExpiryChange) -> Response {
        let Some(record) = self.data.get(key) else {
            return Response::Value(None);
        };
        let (value, expires_at) = (record.value().to_vec(), record.expires_at());
        match change {
            ExpiryChange::Keep => {}
            ExpiryChange::Persist => {
                if expires_at.is_some() {
                    self.insert(key, &value, None);
                    self.note(key, "persist");
                }
            }
            ExpiryChange::Set(at) => self.expire_at(key, at.resolve(self.clock_ms)),
        }
        Response::Value(Some(value))
    }

    /// `SETRANGE`: the new length, or the limit's error.
    pub(super) fn set_range(&mut self, key: &Key, offset: u64, bytes: &Value) -> Response {
        let (mut value, expires_at) = match self.data.get(key) {
            Some(record) => (record.value().to_vec(), record.expires_at()),
            None => (Vec::new(), None),
        };
        if bytes.is_empty() {
            // Nothing written, not even a missing key created.
            return Response::Count(value.len() as u64);
        }
        let end = offset.saturating_add(bytes.len() as u64);
        let max = self.limits.max_value_len;
        let end = match usize::try_from(end) {
            Ok(end) if end <= max => end,
            _ => {
                return Response::Error(CommandError::ValueTooLong {
                    len: usize::try_from(end).unwrap_or(usize::MAX),
                    max,
                });
            }
        };
        let start = end - bytes.len();
        if value.len() < end {
            value.resize(end, 0);
        }
        value[start..end].copy_from_slice(bytes);
        let len = value.len() as u64;
        self.insert(key, &value, expires_at);
        self.note(key, "setrange");
        Response::Count(len)
    }

    /// `INCRBYFLOAT`: the new value as Redis formats it; the key keeps its expiry.
    pub(super) fn increment_float(&mut self, key: &Key, delta: &[u8]) -> Response {
        // Redis reads the stored value before the increment, and so answers in that order.
        let (current, expires_at) = match self.data.get(key) {
            None => (LongDouble::zero(), None),
            Some(record) => match LongDouble::parse(record.value()) {
                Some(number) => (number, record.expires_at()),
                None => return Response::Error(CommandError::NotAFloat),
            },
        };
        let Some(delta) = LongDouble::parse(delta) else {
            return Response::Error(CommandError::NotAFloat);
        };
        let Some(text) = current
            .add(&delta)
            .filter(LongDouble::is_finite)
            .and_then(|sum| sum.to_text())
        else {
            return Response::Error(CommandError::NotFinite);
        };
        self.insert(key, &text, expires_at);
        self.note(key, "incrbyfloat");
        Response::Value(Some(text))
    }

    /// `RENAME` / `RENAMENX`: value and expiry move to `destination`.
    pub(super) fn rename(&mut self, source: &Key, destination: &Key, if_absent: bool) -> Response {
        if !self.data.contains_key(source) {
            return Response::Error(CommandError::NoSuchKey);
        }
        if source == destination {
            return Response::Count(u64::from(!if_absent));
        }
        if if_absent && self.data.contains_key(destination) {
            return Response::Count(0);
        }
        let record = self.remove(source).expect("checked above");
        self.note(source, "rename_from");
        self.insert(destination, record.value(), record.expires_at());
        self.note(destination, "rename_to");
        Response::Count(1)
    }

    /// `COPY`: value and expiry copied to `destination`.
    pub(super) fn copy(&mut self, source: &Key, destination: &Key, replace: bool) -> Response {
        let Some(record) = self.data.get(source) else {
            return Response::Count(0);
        };
        if source == destination || (!replace && self.data.contains_key(destination)) {
            return Response::Count(0);
        }
        let record = Record::new(destination, record.value(), record.expires_at(), self.revision);
        self.put(record);
        self.note(destination, "copy_to");
        Response::Count(1)
    }

    /// `EXPIRE` and friends with `NX`/`XX`/`GT`/`LT`: 1 if the expiry was set (or the key
    /// removed, the time being past), 0 if the key is missing or the condition fails.
    pub(super) fn expire_if(&mut self, key: &Key, at: ExpiryTime, condition: ExpiryCondition) -> Response {
        let Some(record) = self.data.get(key) else {
            return Response::Count(0);
        };
        let when = at.resolve(self.clock_ms);
        let current = record.expires_at();
        let holds = match condition {
            ExpiryCondition::Always => true,
            ExpiryCondition::NoExpiry => current.is_none(),
            ExpiryCondition::HasExpiry => current.is_some(),
            // No expiry is an infinitely late one.
            ExpiryCondition::Later => current.is_some_and(|t| when > t),
            ExpiryCondition::Earlier => current.is_none_or(|t| when < t),
            ExpiryCondition::HasExpiryEarlier => current.is_some_and(|t| when < t),
        };
        if !holds {
            return Response::Count(0);
        }
        self.expire_at(key, when);
        Response::Count(1)
    }

    /// Gives a live key a new expiry time, removing it if that time has passed.
    fn expire_at(&mut self, key: &Key, when: u64) {
        if when <= self.clock_ms {
            self.remove(key);
            self.note(key, "del");
        } else if let Some(record) = self.data.get(key) {
            self.put(Record::new(key, record.value(), Some(when), self.revision));
            self.note(key, "expire");
        }
    }

    /// `EXPIRETIME` / `PEXPIRETIME` as of the reader's clock `now`.
    pub(super) fn expire_time(&self, key: &[u8], now: u64) -> Response {
        Response::Ttl(match self.live(key, now) {
            None => TtlState::Missing,
            Some(record) => record.expires_at().map_or(TtlState::Persistent, TtlState::ExpiresAt),
        })
    }

    /// `RANDOMKEY`: the first live key at or after `seed`'s bytes, else the first live key.
    pub(super) fn random_key(&self, seed: u64, now: u64) -> Response {
        let from = seed.to_be_bytes();
        let after = self
            .data
            .range((Bound::Included(from.as_slice()), Bound::Unbounded))
            .find(|record| record.is_live(now));
        let key = after.or_else(|| self.data.iter().find(|record| record.is_live(now)));
        Response::Value(key.map(|record| record.key().to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use crate::command::Command;
    use crate::command::Expiry;
    use crate::command::Limits;
    use crate::command::Query;
    use crate::command::SetCondition;
    use crate::command::Write;

    use super::*;

    fn w(at_ms: u64, command: Command) -> Write {
        Write { at_ms, command }
    }

    /// Applies at the next revision.
    trait ApplyNext {
        fn apply_next(&mut self, write: &Write) -> Response;
    }

    impl ApplyNext for Store {
        fn apply_next(&mut self, write: &Write) -> Response {
            self.apply(self.revision() + 1, write)
        }
    }

    fn set(store: &mut Store, at_ms: u64, key: &str, value: &str, expiry: Expiry) {
        store.apply_next(&w(
            at_ms,
            Command::Set {
                key: key.into(),
                value: value.into(),
                condition: SetCondition::Always,
                expiry,
            },
        ));
    }

    fn get(store: &Store, key: &str) -> Option<Vec<u8>> {
        match store.query(&Query::Get { key: key.into() }, 0) {
            Response::Value(v) => v,
            other => panic!("{other:?}"),
        }
    }

    fn ttl(store: &Store, key: &str) -> TtlState {
        match store.query(&Query::ExpireTime { key: key.into() }, 0) {
            Response::Ttl(t) => t,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn msetnx_writes_all_or_nothing() {
        let mut s = Store::new(Limits::default());
        let pairs = |keys: &[&str]| Command::MultiSetIfAbsent {
            pairs: keys.iter().map(|k| (k.as_bytes().to_vec(), b"1".to_vec())).collect(),
        };
        assert_eq!(s.apply_next(&w(1, pairs(&["a", "b"]))), Response::Count(1));
        assert_eq!(s.apply_next(&w(1, pairs(&["c", "b"]))), Response::Count(0));
        assert_eq!(get(&s, "c"), None);
    }

    #[test]
    fn getex_changes_the_expiry_by_the_log_clock() {
        let mut s = Store::new(Limits::default());
        set(&mut s, 10, "k", "v", Expiry::At(100));
        let getex = |change| Command::GetAndExpire {
            key: b"k".to_vec(),
            change,
        };
        assert_eq!(
            s.apply_next(&w(20, getex(ExpiryChange::Keep))),
            Response::Value(Some(b"v".to_vec()))
        );
        assert_eq!(ttl(&s, "k"), TtlState::ExpiresAt(100));
        s.apply_next(&w(20, getex(ExpiryChange::Set(ExpiryTime::In(50)))));
        assert_eq!(ttl(&s, "k"), TtlState::ExpiresAt(70));
        s.apply_next(&w(21, getex(ExpiryChange::Persist)));
        assert_eq!(ttl(&s, "k"), TtlState::Persistent);
        // A time already past removes the key, after answering its value.
        assert_eq!(
            s.apply_next(&w(30, getex(ExpiryChange::Set(ExpiryTime::At(5))))),
            Response::Value(Some(b"v".to_vec()))
        );
        assert_eq!(ttl(&s, "k"), TtlState::Missing);
        assert_eq!(
            s.apply_next(&w(30, getex(ExpiryChange::Persist))),
            Response::Value(None)
        );
    }

    #[test]
    fn setrange_pads_keeps_the_expiry_and_checks_the_limit() {
        let mut s = Store::new(Limits {
            max_value_len: 8,
            ..Limits::default()
        });
        let setrange = |offset, value: &str| Command::SetRange {
            key: b"k".to_vec(),
            offset,
            value: value.into(),
        };
        assert_eq!(s.apply_next(&w(1, setrange(0, ""))), Response::Count(0));
        assert_eq!(get(&s, "k"), None, "an empty write creates nothing");
        assert_eq!(s.apply_next(&w(1, setrange(2, "ab"))), Response::Count(4));
        assert_eq!(get(&s, "k"), Some(b"\0\0ab".to_vec()));
        s.apply_next(&w(
            1,
            Command::SetExpiry {
                key: b"k".to_vec(),
                at_ms: Some(90),
            },
        ));
        assert_eq!(s.apply_next(&w(1, setrange(1, "X"))), Response::Count(4));
        assert_eq!(get(&s, "k"), Some(b"\0Xab".to_vec()));
        assert_eq!(ttl(&s, "k"), TtlState::ExpiresAt(90));
        assert_eq!(s.apply_next(&w(1, setrange(3, ""))), Response::Count(4));
        assert_eq!(
            s.apply_next(&w(1, setrange(7, "yz"))),
            Response::Error(CommandError::ValueTooLong { len: 9, max: 8 })
        );
        assert_eq!(
            s.apply_next(&w(1, setrange(u64::MAX, "y"))),
            Response::Error(CommandError::ValueTooLong {
                len: usize::MAX,
                max: 8
            })
        );
    }

    #[test]
    fn incrbyfloat_answers_as_redis() {
        let mut s = Store::new(Limits::default());
        let incr = |delta: &str| Command::IncrementFloat {
            key: b"f".to_vec(),
            delta: delta.into(),
        };
        set(&mut s, 1, "f", "0.1", Expiry::At(1000));
        assert_eq!(s.apply_next(&w(2, incr("0.2"))), Response::Value(Some(b"0.3".to_vec())));
        assert_eq!(ttl(&s, "f"), TtlState::ExpiresAt(1000), "the key keeps its expiry");
        assert_eq!(s.apply_next(&w(2, incr("x"))), Response::Error(CommandError::NotAFloat));
        assert_eq!(
            s.apply_next(&w(2, incr("inf"))),
            Response::Error(CommandError::NotFinite)
        );
        assert_eq!(get(&s, "f"), Some(b"0.3".to_vec()));
        set(&mut s, 3, "f", "abc", Expiry::Never);
        // The stored value is read first: its error wins over the increment's.
        assert_eq!(
            s.apply_next(&w(3, incr("inf"))),
            Response::Error(CommandError::NotAFloat)
        );
    }

    #[test]
    fn rename_and_copy_move_value_and_expiry() {
        let mut s = Store::new(Limits::default());
        set(&mut s, 1, "a", "1", Expiry::At(500));
        set(&mut s, 1, "c", "3", Expiry::Never);
        let rename = |from: &str, to: &str, if_absent| Command::Rename {
            source: from.into(),
            destination: to.into(),
            if_absent,
        };
        assert_eq!(
            s.apply_next(&w(2, rename("nope", "x", false))),
            Response::Error(CommandError::NoSuchKey)
        );
        assert_eq!(s.apply_next(&w(2, rename("a", "a", false))), Response::Count(1));
        assert_eq!(s.apply_next(&w(2, rename("a", "a", true))), Response::Count(0));
        assert_eq!(s.apply_next(&w(2, rename("a", "c", true))), Response::Count(0));
        assert_eq!(s.apply_next(&w(2, rename("a", "b", false))), Response::Count(1));
        assert_eq!(get(&s, "a"), None);
        assert_eq!(ttl(&s, "b"), TtlState::ExpiresAt(500));
        let copy = |from: &str, to: &str, replace| Command::Copy {
            source: from.into(),
            destination: to.into(),
            replace,
        };
        assert_eq!(s.apply_next(&w(3, copy("b", "c", false))), Response::Count(0));
        assert_eq!(s.apply_next(&w(3, copy("b", "c", true))), Response::Count(1));
        assert_eq!(ttl(&s, "c"), TtlState::ExpiresAt(500));
        assert_eq!(s.apply_next(&w(3, copy("nope", "d", true))), Response::Count(0));
        assert_eq!(get(&s, "b"), Some(b"1".to_vec()));
        // Byte accounting stays exact through moves and copies.
        let bytes: u64 = ["b", "c"].iter().map(|k| 1 + get(&s, k).unwrap().len() as u64).sum();
        assert_eq!(s.bytes(), bytes);
    }

    #[test]
    fn conditional_expiry_treats_no_expiry_as_infinite() {
        let mut s = Store::new(Limits::default());
        set(&mut s, 1, "k", "v", Expiry::Never);
        let expire = |at, condition| Command::ExpireIf {
            key: b"k".to_vec(),
            at,
            condition,
        };
        let at = ExpiryTime::At;
        assert_eq!(
            s.apply_next(&w(2, expire(at(100), ExpiryCondition::HasExpiry))),
            Response::Count(0)
        );
        assert_eq!(
            s.apply_next(&w(2, expire(at(100), ExpiryCondition::Later))),
            Response::Count(0)
        );
        assert_eq!(
            s.apply_next(&w(2, expire(at(100), ExpiryCondition::Earlier))),
            Response::Count(1)
        );
        assert_eq!(
            s.apply_next(&w(2, expire(at(90), ExpiryCondition::NoExpiry))),
            Response::Count(0)
        );
        assert_eq!(
            s.apply_next(&w(2, expire(at(90), ExpiryCondition::Later))),
            Response::Count(0)
        );
        assert_eq!(
            s.apply_next(&w(2, expire(at(200), ExpiryCondition::Later))),
            Response::Count(1)
        );
        assert_eq!(
            s.apply_next(&w(2, expire(ExpiryTime::In(50), ExpiryCondition::Earlier))),
            Response::Count(1)
        );
        assert_eq!(ttl(&s, "k"), TtlState::ExpiresAt(52));
        assert_eq!(
            s.apply_next(&w(3, expire(at(3), ExpiryCondition::Always))),
            Response::Count(1)
        );
        assert_eq!(ttl(&s, "k"), TtlState::Missing, "a past time removes the key");
        assert_eq!(
            s.apply_next(&w(3, expire(at(300), ExpiryCondition::Always))),
            Response::Count(0)
        );
    }

    #[test]
    fn random_key_is_a_live_key_for_any_seed() {
        let mut s = Store::new(Limits::default());
        assert_eq!(s.query(&Query::RandomKey { seed: 7 }, 0), Response::Value(None));
        set(&mut s, 1, "a", "1", Expiry::Never);
        set(&mut s, 1, "m", "1", Expiry::At(50));
        set(&mut s, 1, "z", "1", Expiry::Never);
        let after_a = u64::from_be_bytes(*b"b\0\0\0\0\0\0\0");
        for seed in [0, after_a, u64::MAX] {
            let Response::Value(Some(key)) = s.query(&Query::RandomKey { seed }, 60) else {
                panic!("no key");
            };
            assert!(key == b"a" || key == b"z", "{key:?}");
        }
        assert_eq!(
            s.query(&Query::RandomKey { seed: after_a }, 10),
            Response::Value(Some(b"m".to_vec()))
        );
    }
}
