//! Commands, queries and responses of the store, and their versioned binary codec.
//!
//! Writes travel through the Raft log as a [`Write`]: a [`Command`] plus the leader's clock
//! reading (`at_ms`) taken when it was proposed. Applying a write uses only that reading, never a
//! local clock, so every replica computes the same result (TTL expiry included). Reads are
//! [`Query`] values answered from a replica's state machine after the read-index check.
//!
//! ## Wire format
//!
//! ```text
//! +---------+---------------------------+
//! | version | postcard payload          |
//! | 1 byte  | (serde encoding of T)     |
//! +---------+---------------------------+
//! ```
//!
//! [`encode`] writes [`FORMAT_VERSION`]; [`decode`] refuses any other version with
//! [`CodecError::UnsupportedVersion`] rather than guessing.

use std::fmt;
use std::ops::Bound;

use serde::Deserialize;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A key: arbitrary bytes, ordered lexicographically.
pub type Key = Vec<u8>;
/// A value: arbitrary bytes.
pub type Value = Vec<u8>;

/// Version byte written in front of every encoded command, query and response.
pub const FORMAT_VERSION: u8 = 1;

/// Size limits on keys and values, checked before a command is proposed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Longest key accepted, in bytes.
    pub max_key_len: usize,
    /// Longest value accepted, in bytes.
    pub max_value_len: usize,
    /// Most keys one command may touch (MSET, DEL, MGET, EXISTS with many keys).
    pub max_keys_per_command: usize,
    /// Most bytes of keys and values one read may return: a read that would return more
    /// answers [`CommandError::ReplyTooLarge`] instead, having copied at most this much.
    pub max_reply_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_key_len: 16 * 1024,
            max_value_len: 1024 * 1024,
            max_keys_per_command: 10_000,
            max_reply_bytes: 8 * 1024 * 1024,
        }
    }
}

/// When a `Set` takes effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum SetCondition {
    /// Always write.
    #[default]
    Always,
    /// Only if the key is absent (Redis `NX`).
    IfAbsent,
    /// Only if the key is present (Redis `XX`).
    IfPresent,
}

/// What happens to a key's expiry time on `Set`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Expiry {
    /// The key never expires (a previous TTL is cleared).
    #[default]
    Never,
    /// The key expires at this leader-clock time, in milliseconds.
    At(u64),
    /// Keep whatever expiry the key had (Redis `KEEPTTL`).
    Keep,
}

/// An expiry time as a command gives it: relative to the write's `at_ms`, or absolute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExpiryTime {
    /// This many milliseconds after the store's clock when the write is applied (the largest
    /// [`Write::at_ms`] so far; resolved by every replica alike).
    In(u64),
    /// At this leader-clock time, in milliseconds.
    At(u64),
}

impl ExpiryTime {
    /// The absolute time, for a store whose clock reads `now_ms`.
    pub fn resolve(self, now_ms: u64) -> u64 {
        match self {
            ExpiryTime::In(ms) => now_ms.saturating_add(ms),
            ExpiryTime::At(t) => t,
        }
    }
}

/// A condition on a key's current expiry (Redis `EXPIRE`'s `NX`, `XX`, `GT`, `LT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum ExpiryCondition {
    /// Always set the expiry.
    #[default]
    Always,
    /// Only if the key has no expiry (`NX`).
    NoExpiry,
    /// Only if the key has an expiry (`XX`).
    HasExpiry,
    /// Only if the new expiry is later than the current one; no expiry counts as infinitely
    /// late (`GT`).
    Later,
    /// Only if the new expiry is earlier than the current one; no expiry counts as infinitely
    /// late (`LT`).
    Earlier,
    /// Only if the key has an expiry and the new one is earlier (`XX LT`).
    HasExpiryEarlier,
}

/// What `GetAndExpire` (Redis `GETEX`) does to the key's expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExpiryChange {
    /// Leave it as it is.
    Keep,
    /// Remove it (`PERSIST`).
    Persist,
    /// Set it (`EX`, `PX`, `EXAT`, `PXAT`).
    Set(ExpiryTime),
}

/// A state-changing operation. Every variant is deterministic given the state and `Write::at_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Write `value` at `key` if `condition` holds. Answers [`Response::Set`].
    Set {
        /// The key.
        #[serde(with = "crate::byte_string")]
        key: Key,
        /// The new value.
        #[serde(with = "crate::byte_string")]
        value: Value,
        /// Condition on the key's presence.
        condition: SetCondition,
        /// The new expiry time.
        expiry: Expiry,
    },
    /// Write several keys at once, none of which expire. Answers [`Response::Ok`].
    MultiSet {
        /// Key/value pairs, applied in order.
        pairs: Vec<(Key, Value)>,
    },
    /// Remove keys. Answers [`Response::Count`] with how many existed.
    Delete {
        /// Keys to remove.
        keys: Vec<Key>,
    },
    /// Remove a key and return its value. Answers [`Response::Value`].
    GetDelete {
        /// The key.
        key: Key,
    },
    /// Compare-and-swap: if the current value equals `expected` (`None` = absent), replace it
    /// with `new` (`None` = delete). Answers [`Response::Cas`].
    CompareAndSwap {
        /// The key.
        key: Key,
        /// The value the key must hold, or `None` if it must be absent.
        expected: Option<Value>,
        /// The value to store, or `None` to delete the key.
        new: Option<Value>,
    },
    /// Add `delta` to the decimal integer stored at `key` (absent counts as 0).
    /// Answers [`Response::Integer`] or [`Response::Error`].
    Increment {
        /// The key.
        key: Key,
        /// Amount to add (negative to decrement).
        delta: i64,
    },
    /// Append bytes to a value (absent counts as empty). Answers [`Response::Count`] with the
    /// new length.
    Append {
        /// The key.
        key: Key,
        /// Bytes to append.
        suffix: Value,
    },
    /// Set or clear a key's expiry. Answers [`Response::Count`]: 1 if the key exists, else 0.
    SetExpiry {
        /// The key.
        key: Key,
        /// New expiry time in leader-clock milliseconds, or `None` to persist the key.
        at_ms: Option<u64>,
    },
    /// Remove every key. Answers [`Response::Ok`].
    Clear,
    /// Open a client session that expires `ttl_ms` of log time after its last write. Answers
    /// [`Response::Session`] with its id (the index of this entry).
    RegisterSession {
        /// Log time the session stays open without writes, in milliseconds.
        ttl_ms: u64,
    },
    /// Run `command` once for `(id, seq)`: a repeat answers the response recorded the first
    /// time without applying again (Raft dissertation, 6.3). `acked` says the client has the
    /// answers of every `seq <= acked`, which the store may forget. Answers the command's
    /// response, or [`CommandError::SessionExpired`] / [`CommandError::SessionStale`].
    Session {
        /// The session, from [`Command::RegisterSession`].
        id: u64,
        /// The client's sequence number of this write (from 1).
        seq: u64,
        /// Every sequence number up to this one has been answered to the client.
        acked: u64,
        /// The write to run once. Not a session command itself.
        command: Box<Command>,
    },
    /// Close a session. Answers [`Response::Count`]: 1 if it was open, else 0.
    EndSession {
        /// The session.
        id: u64,
    },
    /// Run `ops` in order as one atomic step, unless `guard` finds one of its keys changed.
    /// Answers [`Response::Transaction`].
    Transaction {
        /// Optimistic lock (Redis `WATCH`): abort if a key changed after a revision.
        guard: Option<WatchGuard>,
        /// The operations. Reads see the earlier writes of the same transaction.
        ops: Vec<TxOp>,
    },
    /// Publish `message` on `channel` to subscribers on every replica. Answers
    /// [`Response::Ok`]; every replica emits a [`crate::store::Event::Message`].
    Publish {
        /// The channel.
        channel: Vec<u8>,
        /// The message.
        message: Vec<u8>,
    },
    /// Write several keys at once, none of which expire, only if none of them exists (Redis
    /// `MSETNX`). Answers [`Response::Count`]: 1 if written, 0 if not.
    MultiSetIfAbsent {
        /// Key/value pairs, applied in order.
        pairs: Vec<(Key, Value)>,
    },
    /// Return a key's value and change its expiry (Redis `GETEX`). Answers
    /// [`Response::Value`].
    GetAndExpire {
        /// The key.
        key: Key,
        /// The change to its expiry.
        change: ExpiryChange,
    },
    /// Overwrite part of a value from `offset`, padding with zero bytes (Redis `SETRANGE`).
    /// Answers [`Response::Count`] with the new length, or [`CommandError::ValueTooLong`].
    SetRange {
        /// The key.
        key: Key,
        /// Where the bytes go.
        offset: u64,
        /// The bytes.
        value: Value,
    },
    /// Add a decimal or hexadecimal floating-point number, given as the client's text, to the
    /// number stored at `key` (absent counts as 0), computed and formatted exactly as Redis does
    /// (x87 extended precision, `%.17Lf` with trailing zeros cut). Answers [`Response::Value`]
    /// with the new value, or [`CommandError::NotAFloat`] / [`CommandError::NotFinite`].
    IncrementFloat {
        /// The key.
        key: Key,
        /// The increment, as sent.
        delta: Value,
    },
    /// Move a key's value and expiry to another key (Redis `RENAME`, `RENAMENX`). Answers
    /// [`Response::Count`] (1 moved, 0 not because `if_absent` and the destination exists) or
    /// [`CommandError::NoSuchKey`].
    Rename {
        /// The key moved.
        source: Key,
        /// Its new name.
        destination: Key,
        /// Only if the destination does not exist (`RENAMENX`).
        if_absent: bool,
    },
    /// Copy a key's value and expiry to another key (Redis `COPY`). Answers
    /// [`Response::Count`]: 1 if copied, 0 if the source is missing or the destination exists
    /// and `replace` is not set.
    Copy {
        /// The key copied.
        source: Key,
        /// The key written.
        destination: Key,
        /// Overwrite an existing destination.
        replace: bool,
    },
    /// Set a key's expiry if `condition` holds (Redis `EXPIRE` and friends with `NX`, `XX`,
    /// `GT`, `LT`). Answers [`Response::Count`]: 1 if set (or the key removed for a time
    /// already past), 0 if the key is missing or the condition failed.
    ExpireIf {
        /// The key.
        key: Key,
        /// The new expiry time.
        at: ExpiryTime,
        /// The condition on the current expiry.
        condition: ExpiryCondition,
    },
    /// Change nothing but the store's clock: like every write, it first removes the keys whose
    /// expiry is at or before its `at_ms` (each an `expired` event). The leader proposes it
    /// when the earliest expiry in its store is due, so that keys expire, and their events are
    /// raised on every replica, without waiting for a client's write (kv-node's active
    /// expiry). Answers [`Response::Ok`].
    ExpireDue,
    /// [`Command::Set`] for a client that does not want the value it replaces (a SET without
    /// GET): answers [`Response::Set`] with `previous: None`, so the old value is neither
    /// copied when the write applies, nor kept among a session's answers, nor sent back with a
    /// forwarded write.
    SetQuiet {
        /// The key.
        #[serde(with = "crate::byte_string")]
        key: Key,
        /// The new value.
        #[serde(with = "crate::byte_string")]
        value: Value,
        /// Condition on the key's presence.
        condition: SetCondition,
        /// The new expiry time.
        expiry: Expiry,
    },
}

/// The optimistic lock of a [`Command::Transaction`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchGuard {
    /// The revision the client read the keys at.
    pub since: u64,
    /// The keys: if any changed (written, deleted or expired) after `since`, the transaction
    /// does nothing and answers `Response::Transaction(None)`.
    pub keys: Vec<Key>,
}

/// One step of a [`Command::Transaction`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxOp {
    /// A write (not a transaction or session command).
    Write {
        /// The command.
        command: Command,
        /// A relative time to live, resolved like [`crate::wire::Op::Write`]'s.
        ttl_ms: Option<u64>,
    },
    /// A read, seeing the transaction's own earlier writes.
    Read(Query),
}

/// A command as it travels through the Raft log: the leader's clock reading and the command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Write {
    /// Leader clock at proposal time, in milliseconds. Apply uses only this as "now".
    pub at_ms: u64,
    /// The operation.
    pub command: Command,
}

impl fmt::Display for Write {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = Printable;
        match &self.command {
            Command::Set { key: k, value, .. } | Command::SetQuiet { key: k, value, .. } => {
                write!(f, "SET {} ({} bytes)", key(k), value.len())
            }
            Command::MultiSet { pairs } => write!(f, "MSET {} keys", pairs.len()),
            Command::Delete { keys } => write!(f, "DEL {} keys", keys.len()),
            Command::GetDelete { key: k } => write!(f, "GETDEL {}", key(k)),
            Command::CompareAndSwap { key: k, .. } => write!(f, "CAS {}", key(k)),
            Command::Increment { key: k, delta } => write!(f, "INCRBY {} {delta}", key(k)),
            Command::Append { key: k, suffix } => write!(f, "APPEND {} ({} bytes)", key(k), suffix.len()),
            Command::SetExpiry { key: k, at_ms } => write!(f, "EXPIRE {} {at_ms:?}", key(k)),
            Command::Clear => write!(f, "FLUSHDB"),
            Command::RegisterSession { ttl_ms } => write!(f, "SESSION NEW ttl={ttl_ms}ms"),
            Command::Session { id, seq, command, .. } => {
                let inner = Write {
                    at_ms: self.at_ms,
                    command: (**command).clone(),
                };
                return write!(f, "SESSION {id}#{seq} {inner}");
            }
            Command::EndSession { id } => write!(f, "SESSION END {id}"),
            Command::Transaction { guard, ops } => {
                write!(f, "EXEC {} ops", ops.len())?;
                if let Some(guard) = guard {
                    write!(f, " watching {} keys since {}", guard.keys.len(), guard.since)?;
                }
                Ok(())
            }
            Command::Publish { channel, message } => {
                write!(f, "PUBLISH {} ({} bytes)", key(channel), message.len())
            }
            Command::MultiSetIfAbsent { pairs } => write!(f, "MSETNX {} keys", pairs.len()),
            Command::GetAndExpire { key: k, change } => write!(f, "GETEX {} {change:?}", key(k)),
            Command::SetRange { key: k, offset, value } => {
                write!(f, "SETRANGE {} {offset} ({} bytes)", key(k), value.len())
            }
            Command::IncrementFloat { key: k, delta } => write!(f, "INCRBYFLOAT {} {}", key(k), Printable(delta)),
            Command::Rename {
                source,
                destination,
                if_absent,
            } => write!(
                f,
                "{} {} {}",
                if *if_absent { "RENAMENX" } else { "RENAME" },
                key(source),
                key(destination)
            ),
            Command::Copy {
                source, destination, ..
            } => write!(f, "COPY {} {}", key(source), key(destination)),
            Command::ExpireIf { key: k, at, condition } => write!(f, "EXPIRE {} {at:?} {condition:?}", key(k)),
            Command::ExpireDue => write!(f, "EXPIRE-DUE"),
        }?;
        write!(f, " @{}ms", self.at_ms)
    }
}

/// Shows bytes as text where printable, escaped otherwise, cut after 32 bytes.
pub struct Printable<'a>(pub &'a [u8]);

impl fmt::Display for Printable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0.iter().take(32) {
            write!(f, "{}", std::ascii::escape_default(*b))?;
        }
        if self.0.len() > 32 {
            write!(f, "…")?;
        }
        Ok(())
    }
}

/// A read-only operation, answered by a replica's state machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Query {
    /// The value at a key. Answers [`Response::Value`].
    Get {
        /// The key.
        #[serde(with = "crate::byte_string")]
        key: Key,
    },
    /// Several values at once. Answers [`Response::Values`].
    MultiGet {
        /// The keys.
        keys: Vec<Key>,
    },
    /// Keys and values in key order within a range. Answers [`Response::Entries`].
    Range {
        /// Lower bound.
        start: Bound<Key>,
        /// Upper bound.
        end: Bound<Key>,
        /// Most entries returned.
        limit: usize,
    },
    /// Keys and values in key order that start with `prefix`. Answers [`Response::Entries`].
    Prefix {
        /// The prefix.
        prefix: Key,
        /// Most entries returned.
        limit: usize,
    },
    /// Remaining time to live. Answers [`Response::Ttl`].
    Ttl {
        /// The key.
        key: Key,
    },
    /// Number of live keys. Answers [`Response::Count`].
    Count,
    /// Keys (without their values) between `start` and `end`, in order, at most `limit`.
    /// Answers [`Response::Keys`]. (KEYS and SCAN: a follower forwards no values it drops.)
    Keys {
        /// Lower bound.
        start: Bound<Key>,
        /// Upper bound.
        end: Bound<Key>,
        /// Most keys returned.
        limit: usize,
    },
    /// A value with the revision that last changed it and the store's revision. Answers
    /// [`Response::Revisioned`].
    GetRevision {
        /// The key.
        key: Key,
    },
    /// A key's absolute expiry time. Answers [`Response::Ttl`] with
    /// [`TtlState::ExpiresAt`] (or `Missing`, `Persistent`).
    ExpireTime {
        /// The key.
        key: Key,
    },
    /// A live key picked by `seed` (Redis `RANDOMKEY`): the first live key at or after the
    /// seed's 8 big-endian bytes, wrapping around to the first key. Answers
    /// [`Response::Value`] with the key, or `None` if the store is empty.
    RandomKey {
        /// Where to look; the client port draws it at random.
        seed: u64,
    },
}

/// Deterministic, per-command failures (the command still occupies its log slot).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum CommandError {
    /// `Increment` on a value that is not a decimal i64.
    #[error("value is not an integer or out of range")]
    NotAnInteger,
    /// `Increment` would overflow i64.
    #[error("increment or decrement would overflow")]
    Overflow,
    /// `Append` would make the value longer than the store's limit.
    #[error("value would grow to {len} bytes, past the limit of {max} bytes")]
    ValueTooLong {
        /// The length the value would have.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A read would return more than [`Limits::max_reply_bytes`].
    #[error("reply would exceed the limit of {max} bytes (max-reply-bytes)")]
    ReplyTooLarge {
        /// The limit.
        max: usize,
    },
    /// A session write on a session that expired, was closed, or never existed. Nothing was
    /// applied; earlier writes on it that got no answer have an unknown outcome.
    #[error("session {id} is expired or unknown; register a new session")]
    SessionExpired {
        /// The session.
        id: u64,
    },
    /// A session write whose sequence number is at or below what the session still
    /// remembers: its answer is gone, so it is neither applied nor answered again.
    #[error("sequence {seq} of session {id} is at or below the forgotten floor {floor}")]
    SessionStale {
        /// The session.
        id: u64,
        /// The sequence number sent.
        seq: u64,
        /// Every sequence number up to this one is forgotten.
        floor: u64,
    },
    /// `IncrementFloat` on a value, or with an increment, that is not a floating-point number.
    #[error("value is not a valid float")]
    NotAFloat,
    /// `IncrementFloat` would produce NaN or an infinity.
    #[error("increment would produce NaN or Infinity")]
    NotFinite,
    /// `Rename` of a key that does not exist.
    #[error("no such key")]
    NoSuchKey,
}

/// The answer to a [`Command`] or [`Query`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// Done, nothing to report.
    Ok,
    /// Result of `Set`: whether it was written, and the previous value.
    Set {
        /// Whether the condition held and the value was written.
        written: bool,
        /// The value before the command.
        previous: Option<Value>,
    },
    /// Result of `CompareAndSwap`: whether it swapped, and the value before the command.
    Cas {
        /// Whether the swap happened.
        swapped: bool,
        /// The value before the command.
        previous: Option<Value>,
    },
    /// A single value, or `None` if absent.
    Value(Option<Value>),
    /// Several values, in the order asked.
    Values(Vec<Option<Value>>),
    /// Entries in key order.
    Entries(Vec<(Key, Value)>),
    /// A count (deleted keys, live keys, new length).
    Count(u64),
    /// An integer result.
    Integer(i64),
    /// Time to live: `Missing` key, `Persistent` key, or milliseconds left.
    Ttl(TtlState),
    /// The command failed deterministically.
    Error(CommandError),
    /// Keys in key order.
    Keys(Vec<Key>),
    /// The leader's read index (the answer to a follower's `Op::ReadIndex`).
    ReadIndex(u64),
    /// A new session's id.
    Session(u64),
    /// The answers of a transaction's operations, or `None` if its guard aborted it.
    Transaction(Option<Vec<Response>>),
    /// A value with revisions.
    Revisioned {
        /// The value, `None` if absent.
        value: Option<Value>,
        /// The revision (log index) of the write that last changed the key; 0 if absent.
        mod_revision: u64,
        /// The store's revision: the last write applied.
        revision: u64,
    },
}

/// The expiry state of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TtlState {
    /// No such key.
    Missing,
    /// The key has no expiry.
    Persistent,
    /// Milliseconds until the key expires.
    Remaining(u64),
    /// The leader-clock time the key expires at, in milliseconds (the answer to
    /// [`Query::ExpireTime`]).
    ExpiresAt(u64),
}

/// Errors from [`validate`]: the command is refused before it is proposed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    /// A key is longer than allowed.
    #[error("key of {len} bytes exceeds the limit of {max} bytes")]
    KeyTooLong {
        /// The key's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A value is longer than allowed.
    #[error("value of {len} bytes exceeds the limit of {max} bytes")]
    ValueTooLong {
        /// The value's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A command touches too many keys.
    #[error("command touches {count} keys, more than the limit of {max}")]
    TooManyKeys {
        /// Keys in the command.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A session or transaction command inside another one where it cannot go.
    #[error("{what} cannot be nested inside {inside}")]
    Nested {
        /// The inner command.
        what: &'static str,
        /// The outer command.
        inside: &'static str,
    },
}

impl Command {
    /// This write as write `seq` of client session `id`, whose client has the answers of every
    /// `seq <= acked` ([`Command::Session`]).
    pub fn in_session(self, id: u64, seq: u64, acked: u64) -> Command {
        Command::Session {
            id,
            seq,
            acked,
            command: Box::new(self),
        }
    }

    /// Checks the command against `limits`. Appending checks the suffix only; the store checks
    /// the resulting length when it applies.
    pub fn validate(&self, limits: &Limits) -> Result<(), LimitError> {
        let key = |k: &Key| check_len(k.len(), limits.max_key_len, true);
        let value = |v: &Value| check_len(v.len(), limits.max_value_len, false);
        let count = |n: usize| {
            if n > limits.max_keys_per_command {
                Err(LimitError::TooManyKeys {
                    count: n,
                    max: limits.max_keys_per_command,
                })
            } else {
                Ok(())
            }
        };
        match self {
            Command::Set { key: k, value: v, .. } | Command::SetQuiet { key: k, value: v, .. } => key(k).and(value(v)),
            Command::MultiSet { pairs } => {
                count(pairs.len())?;
                pairs.iter().try_for_each(|(k, v)| key(k).and(value(v)))
            }
            Command::Delete { keys } => {
                count(keys.len())?;
                keys.iter().try_for_each(key)
            }
            Command::CompareAndSwap { key: k, expected, new } => {
                key(k)?;
                expected.iter().chain(new.iter()).try_for_each(value)
            }
            Command::Append { key: k, suffix } => key(k).and(value(suffix)),
            Command::GetDelete { key: k } | Command::Increment { key: k, .. } | Command::SetExpiry { key: k, .. } => {
                key(k)
            }
            Command::Clear | Command::RegisterSession { .. } | Command::EndSession { .. } | Command::ExpireDue => {
                Ok(())
            }
            Command::Session { command, .. } => {
                command.refuse_nesting("a session write")?;
                command.validate(limits)
            }
            Command::Transaction { guard, ops } => {
                count(ops.len())?;
                if let Some(guard) = guard {
                    count(guard.keys.len())?;
                    guard.keys.iter().try_for_each(key)?;
                }
                ops.iter().try_for_each(|op| match op {
                    TxOp::Write { command, .. } => {
                        command.refuse_nesting("a transaction")?;
                        command.validate(limits)
                    }
                    TxOp::Read(query) => query.validate(limits),
                })
            }
            Command::Publish { channel, message } => key(channel).and(value(message)),
            Command::MultiSetIfAbsent { pairs } => {
                count(pairs.len())?;
                pairs.iter().try_for_each(|(k, v)| key(k).and(value(v)))
            }
            Command::SetRange { key: k, value: v, .. } | Command::IncrementFloat { key: k, delta: v } => {
                key(k).and(value(v))
            }
            Command::Rename {
                source, destination, ..
            }
            | Command::Copy {
                source, destination, ..
            } => key(source).and(key(destination)),
            Command::GetAndExpire { key: k, .. } | Command::ExpireIf { key: k, .. } => key(k),
        }
    }

    /// Refuses a session or transaction command where `inside` cannot hold one.
    fn refuse_nesting(&self, inside: &'static str) -> Result<(), LimitError> {
        let what = match self {
            Command::RegisterSession { .. } | Command::Session { .. } | Command::EndSession { .. } => {
                "a session command"
            }
            Command::Transaction { .. } => "a transaction",
            _ => return Ok(()),
        };
        Err(LimitError::Nested { what, inside })
    }
}

impl Query {
    /// Checks the query against `limits`: keys per read and key lengths. (What it returns is
    /// bounded by [`Limits::max_reply_bytes`] when it runs.)
    pub fn validate(&self, limits: &Limits) -> Result<(), LimitError> {
        let key = |k: &Key| check_len(k.len(), limits.max_key_len, true);
        match self {
            Query::Get { key: k }
            | Query::Ttl { key: k }
            | Query::GetRevision { key: k }
            | Query::ExpireTime { key: k } => key(k),
            Query::MultiGet { keys } => {
                if keys.len() > limits.max_keys_per_command {
                    return Err(LimitError::TooManyKeys {
                        count: keys.len(),
                        max: limits.max_keys_per_command,
                    });
                }
                keys.iter().try_for_each(key)
            }
            Query::Range { .. }
            | Query::Prefix { .. }
            | Query::Keys { .. }
            | Query::Count
            | Query::RandomKey { .. } => Ok(()),
        }
    }
}

fn check_len(len: usize, max: usize, is_key: bool) -> Result<(), LimitError> {
    match (len > max, is_key) {
        (false, _) => Ok(()),
        (true, true) => Err(LimitError::KeyTooLong { len, max }),
        (true, false) => Err(LimitError::ValueTooLong { len, max }),
    }
}

/// Errors decoding bytes that came from outside (disk, network, another version).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// Zero bytes: not even a version byte.
    #[error("empty input: missing version byte")]
    Empty,
    /// A version this build does not understand.
    #[error("unsupported format version {found} (this build reads version {FORMAT_VERSION})")]
    UnsupportedVersion {
        /// The version byte found.
        found: u8,
    },
    /// The payload is not a valid encoding.
    #[error("malformed payload: {0}")]
    Malformed(String),
}

/// Encodes `value` as the version byte followed by its postcard encoding.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let out = vec![FORMAT_VERSION];
    // Serializing our own types into a Vec cannot fail: they contain no maps with non-string
    // keys or other constructs postcard rejects.
    postcard::to_extend(value, out).expect("postcard encoding into a Vec cannot fail")
}

/// Decodes bytes produced by [`encode`]. Trailing bytes are an error.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let (&version, payload) = bytes.split_first().ok_or(CodecError::Empty)?;
    if version != FORMAT_VERSION {
        return Err(CodecError::UnsupportedVersion { found: version });
    }
    let (value, rest) = postcard::take_from_bytes(payload).map_err(|e| CodecError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(CodecError::Malformed(format!("{} trailing bytes", rest.len())));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_commands() -> Vec<Command> {
        vec![
            Command::Set {
                key: b"k".to_vec(),
                value: b"v".to_vec(),
                condition: SetCondition::IfAbsent,
                expiry: Expiry::At(5),
            },
            Command::MultiSet {
                pairs: vec![(b"a".to_vec(), b"1".to_vec())],
            },
            Command::Delete {
                keys: vec![b"a".to_vec(), b"b".to_vec()],
            },
            Command::GetDelete { key: b"a".to_vec() },
            Command::CompareAndSwap {
                key: b"k".to_vec(),
                expected: None,
                new: Some(vec![0, 255]),
            },
            Command::Increment {
                key: b"n".to_vec(),
                delta: -3,
            },
            Command::Append {
                key: b"k".to_vec(),
                suffix: b"xyz".to_vec(),
            },
            Command::SetExpiry {
                key: b"k".to_vec(),
                at_ms: None,
            },
            Command::Clear,
            Command::MultiSetIfAbsent {
                pairs: vec![(b"a".to_vec(), b"1".to_vec())],
            },
            Command::GetAndExpire {
                key: b"k".to_vec(),
                change: ExpiryChange::Set(ExpiryTime::In(10)),
            },
            Command::SetRange {
                key: b"k".to_vec(),
                offset: 3,
                value: b"x".to_vec(),
            },
            Command::IncrementFloat {
                key: b"f".to_vec(),
                delta: b"1.5".to_vec(),
            },
            Command::Rename {
                source: b"a".to_vec(),
                destination: b"b".to_vec(),
                if_absent: false,
            },
            Command::Copy {
                source: b"a".to_vec(),
                destination: b"b".to_vec(),
                replace: true,
            },
            Command::ExpireIf {
                key: b"k".to_vec(),
                at: ExpiryTime::At(99),
                condition: ExpiryCondition::Later,
            },
            Command::ExpireDue,
            Command::SetQuiet {
                key: b"k".to_vec(),
                value: b"v".to_vec(),
                condition: SetCondition::IfPresent,
                expiry: Expiry::Keep,
            },
        ]
    }

    #[test]
    fn every_command_round_trips() {
        for command in sample_commands() {
            let write = Write {
                at_ms: 1_700_000_000_000,
                command,
            };
            let bytes = encode(&write);
            assert_eq!(bytes[0], FORMAT_VERSION);
            assert_eq!(decode::<Write>(&bytes), Ok(write));
        }
    }

    #[test]
    fn queries_and_responses_round_trip() {
        let q = Query::Range {
            start: Bound::Included(b"a".to_vec()),
            end: Bound::Unbounded,
            limit: 7,
        };
        assert_eq!(decode::<Query>(&encode(&q)), Ok(q));
        let r = Response::Entries(vec![(b"a".to_vec(), b"1".to_vec())]);
        assert_eq!(decode::<Response>(&encode(&r)), Ok(r));
        let e = Response::Error(CommandError::NotAnInteger);
        assert_eq!(decode::<Response>(&encode(&e)), Ok(e));
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        assert_eq!(decode::<Write>(&[]), Err(CodecError::Empty));
        assert_eq!(
            decode::<Write>(&[9, 0]),
            Err(CodecError::UnsupportedVersion { found: 9 })
        );
        assert!(matches!(
            decode::<Write>(&[FORMAT_VERSION, 200, 200]),
            Err(CodecError::Malformed(_))
        ));
        let mut bytes = encode(&Write {
            at_ms: 1,
            command: Command::Clear,
        });
        bytes.push(0);
        assert!(matches!(decode::<Write>(&bytes), Err(CodecError::Malformed(_))));
        // Every truncation of a valid encoding is rejected, never a panic.
        let full = encode(&Write {
            at_ms: 3,
            command: sample_commands()[0].clone(),
        });
        for cut in 1..full.len() {
            assert!(decode::<Write>(&full[..cut]).is_err(), "prefix of {cut} bytes decoded");
        }
    }

    #[test]
    fn limits_name_the_offending_part() {
        let limits = Limits {
            max_key_len: 3,
            max_value_len: 4,
            max_keys_per_command: 2,
            max_reply_bytes: 8,
        };
        let set = |k: &[u8], v: &[u8]| Command::Set {
            key: k.to_vec(),
            value: v.to_vec(),
            condition: SetCondition::Always,
            expiry: Expiry::Never,
        };
        assert_eq!(set(b"abc", b"1234").validate(&limits), Ok(()));
        assert_eq!(
            set(b"abcd", b"1").validate(&limits),
            Err(LimitError::KeyTooLong { len: 4, max: 3 })
        );
        assert_eq!(
            set(b"a", b"12345").validate(&limits),
            Err(LimitError::ValueTooLong { len: 5, max: 4 })
        );
        let del = Command::Delete {
            keys: vec![vec![1], vec![2], vec![3]],
        };
        assert_eq!(del.validate(&limits), Err(LimitError::TooManyKeys { count: 3, max: 2 }));
        let cas = Command::CompareAndSwap {
            key: b"k".to_vec(),
            expected: Some(vec![0; 9]),
            new: None,
        };
        assert_eq!(cas.validate(&limits), Err(LimitError::ValueTooLong { len: 9, max: 4 }));
    }
}
