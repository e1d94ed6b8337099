//! The event hub: what a node's state machine applies, told to the clients that listen.
//!
//! [`Node::open`](super::Node::open) gives the state machine a sink ([`EventHub::sink`]) that
//! is called after every applied write, on every replica, in commit order. The hub
//! - delivers `PUBLISH`ed messages to the channel and pattern subscribers of this node;
//! - turns key changes into keyspace notifications (`__keyspace@0__:<key>`,
//!   `__keyevent@0__:<event>`) when `notify-keyspace-events` asks for them;
//! - streams key changes to prefix watches, and keeps a bounded history of them by revision
//!   so that a watch can start from a past revision ([`Subscription::watch`]).
//!
//! # Never blocking apply
//! Each subscriber has a bounded queue ([`QUEUE`] pushes). Delivery is a `try_send`: a
//! subscriber whose queue is full is dropped from the hub and its connection closed with an
//! error (as Redis's `client-output-buffer-limit pubsub` does), so a slow client costs the
//! apply loop nothing but the failed send. A dropped watcher resumes with `SINCE` its last
//! revision, from the history.
//!
//! # History
//! The last [`HISTORY_EVENTS`] key changes, at most [`HISTORY_BYTES`] of keys and values.
//! Each is held in one allocation (revision, event, key, value: about half the memory of a
//! [`Change`] with its key and value, see `StoredChange`); a watch that replays the history
//! gets them as [`Change`]s, and a change applied now is built as a [`Change`] once, for the
//! watches it reaches.
//! The hub holds every change with a revision above its `floor`: the floor rises when old
//! changes are evicted, and jumps to a snapshot's revision when one replaces the state
//! (changes before it were never seen here). A node starts with floor 0 and replays its log
//! (after the snapshot openraft installs first), so a restarted node rebuilds its history.
//!
//! # Guarantees
//! Messages and changes reach the subscribers of a node at most once each, in commit order;
//! a watch sees every change after its start revision exactly once, or is closed (overflow,
//! node stop), never silently skips one. Registering a watch and replaying its history happen
//! under the hub's lock, the same lock apply delivers under: no change falls between them.
//!
//! Tested in `kv-node/tests/pubsub.rs` and the unit tests below.

use std::collections::BTreeSet;
use std::collections::HashMap;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering;

use tokio::sync::mpsc;

use kv_core::raft::state_machine::Applied;
use kv_core::raft::state_machine::EventSink;
use kv_core::store::Event;

/// Most pushes queued for one subscriber before it is disconnected.
pub const QUEUE: usize = 4096;
/// Most key changes kept for watches that start in the past.
pub const HISTORY_EVENTS: usize = 100_000;
/// Most bytes of keys and values kept in the history (each change also counts 64 bytes).
pub const HISTORY_BYTES: usize = 64 << 20;
/// Per-change overhead counted against [`HISTORY_BYTES`].
const CHANGE_OVERHEAD: usize = 64;

/// Whether a channel matches a pattern (the protocol layer's glob).
pub type Matcher = Box<dyn Fn(&[u8]) -> bool + Send + Sync>;

/// One key change, as a watch reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The revision (log index) of the write that made it.
    pub revision: u64,
    /// The key; empty for `flushdb`.
    pub key: Vec<u8>,
    /// Redis's event name (`set`, `del`, `expired`, ...), or `flushdb` when every key went.
    pub event: &'static str,
    /// The value after the change; `None` if the key is gone.
    pub value: Option<Vec<u8>>,
}

/// Set in a [`StoredChange`]'s key length when a value follows the key.
const HAS_VALUE: u32 = 1 << 31;
/// Bytes of a [`StoredChange`] before the key: revision, event, key length.
const STORED_HEADER: usize = 8 + 1 + 4;

/// A change as the history holds it: one allocation of the revision (u64), the event (u8, an
/// index into [`State::events`]), the key length (u32, [`HAS_VALUE`] set if a value follows),
/// the key and the value. An 11-byte key and a 64-byte value take 88 bytes (a 96-byte heap
/// chunk) and a 16-byte slot: 112 bytes, where an `Arc<Change>` took an 8-byte slot and three
/// chunks (the change, its key, its value) of 96, 32 and 80: 216. Watchers get a [`Change`],
/// built when a watch replays the history.
struct StoredChange(Box<[u8]>);

impl StoredChange {
    fn new(revision: u64, event: u8, key: &[u8], value: Option<&[u8]>) -> Self {
        let key_len = u32::try_from(key.len())
            .ok()
            .filter(|len| len & HAS_VALUE == 0)
            .expect("keys are shorter than 2 GiB (the request limits)");
        let flag = if value.is_some() { HAS_VALUE } else { 0 };
        let mut bytes = Vec::with_capacity(STORED_HEADER + key.len() + value.map_or(0, <[u8]>::len));
        bytes.extend_from_slice(&revision.to_le_bytes());
        bytes.push(event);
        bytes.extend_from_slice(&(key_len | flag).to_le_bytes());
        bytes.extend_from_slice(key);
        bytes.extend_from_slice(value.unwrap_or_default());
        StoredChange(bytes.into_boxed_slice())
    }

    fn revision(&self) -> u64 {
        u64::from_le_bytes(self.0[..8].try_into().expect("8 bytes"))
    }

    fn event<'a>(&self, events: &[&'a str]) -> &'a str {
        events[usize::from(self.0[8])]
    }

    fn key_field(&self) -> u32 {
        u32::from_le_bytes(self.0[9..STORED_HEADER].try_into().expect("4 bytes"))
    }

    fn key(&self) -> &[u8] {
        let len = (self.key_field() & !HAS_VALUE) as usize;
        &self.0[STORED_HEADER..STORED_HEADER + len]
    }

    fn value(&self) -> Option<&[u8]> {
        let len = (self.key_field() & !HAS_VALUE) as usize;
        (self.key_field() & HAS_VALUE != 0).then(|| &self.0[STORED_HEADER + len..])
    }

    /// What it counts against [`HISTORY_BYTES`]: key, value and [`CHANGE_OVERHEAD`].
    fn size(&self) -> usize {
        self.0.len() - STORED_HEADER + CHANGE_OVERHEAD
    }

    fn to_change(&self, events: &[&'static str]) -> Change {
        Change {
            revision: self.revision(),
            key: self.key().to_vec(),
            event: self.event(events),
            value: self.value().map(<[u8]>::to_vec),
        }
    }
}

/// What a subscriber receives.
#[derive(Debug, Clone)]
pub enum Push {
    /// A message on a channel, through a pattern if `pattern` is set.
    Message {
        /// The pattern that matched (`pmessage`), or `None` (`message`).
        pattern: Option<Arc<[u8]>>,
        /// The channel.
        channel: Arc<[u8]>,
        /// The message.
        payload: Arc<[u8]>,
    },
    /// A change under a watched prefix.
    Change {
        /// The watched prefix.
        prefix: Arc<[u8]>,
        /// The change.
        change: Arc<Change>,
    },
}

/// A watch asked to start before the oldest revision the hub still holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("revision {since} is compacted; the oldest available is {oldest}")]
pub struct Compacted {
    /// The revision asked for.
    pub since: u64,
    /// The oldest revision a watch may start from.
    pub oldest: u64,
}

/// `notify-keyspace-events`: which notifications the hub raises (Redis's flag letters).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NotifyFlags(u16);

/// Flag letters in the order Redis prints them, each with its bit.
const CLASSES: &[(char, u16)] = &[
    ('g', 1),
    ('$', 1 << 1),
    ('l', 1 << 2),
    ('s', 1 << 3),
    ('h', 1 << 4),
    ('z', 1 << 5),
    ('x', 1 << 6),
    ('e', 1 << 7),
    ('t', 1 << 8),
    ('d', 1 << 9),
];
const KEYSPACE: u16 = 1 << 10;
const KEYEVENT: u16 = 1 << 11;
const KEY_MISS: u16 = 1 << 12;
const NEW_KEY: u16 = 1 << 13;
/// `A`: every class but key-miss and new-key.
const ALL: u16 = (1 << 10) - 1;

impl NotifyFlags {
    /// Parses Redis's flag letters (`KEA`, `Kx`, `E$g`, ... ; empty for none); `None` for an
    /// unknown letter.
    pub fn parse(text: &[u8]) -> Option<NotifyFlags> {
        let mut bits = 0;
        for &c in text {
            bits |= match c {
                b'A' => ALL,
                b'K' => KEYSPACE,
                b'E' => KEYEVENT,
                b'm' => KEY_MISS,
                b'n' => NEW_KEY,
                _ => CLASSES.iter().find(|(l, _)| *l as u8 == c)?.1,
            };
        }
        Some(NotifyFlags(bits))
    }

    /// The flags as Redis prints them (`AKE`, `g$xKE`, ...).
    pub fn render(self) -> String {
        let mut text = String::new();
        if self.0 & ALL == ALL {
            text.push('A');
        } else {
            text.extend(CLASSES.iter().filter(|(_, b)| self.0 & b != 0).map(|(l, _)| *l));
        }
        for (letter, bit) in [('K', KEYSPACE), ('E', KEYEVENT), ('m', KEY_MISS), ('n', NEW_KEY)] {
            if self.0 & bit != 0 {
                text.push(letter);
            }
        }
        text
    }

    /// The class letter of one of the store's event names.
    fn class_of(event: &str) -> u16 {
        let letter = match event {
            "expired" => 'x',
            "evicted" => 'e',
            "set" | "setrange" | "incrby" | "incrbyfloat" | "append" => '$',
            _ => 'g',
        };
        CLASSES.iter().find(|(l, _)| *l == letter).map_or(0, |(_, b)| *b)
    }

    /// Whether `event` raises a keyspace (`K`) and a keyevent (`E`) notification.
    fn raises(self, event: &str) -> (bool, bool) {
        if self.0 & Self::class_of(event) == 0 {
            return (false, false);
        }
        (self.0 & KEYSPACE != 0, self.0 & KEYEVENT != 0)
    }
}

struct Watch {
    prefix: Arc<[u8]>,
    /// Changes at or below this revision were replayed or predate the watch.
    since: u64,
}

struct Subscriber {
    tx: mpsc::Sender<Push>,
    overflowed: Arc<AtomicBool>,
    patterns: Vec<(Arc<[u8]>, Matcher)>,
    watches: Vec<Watch>,
}

#[derive(Default)]
struct State {
    next_id: u64,
    subscribers: HashMap<u64, Subscriber>,
    /// Channel -> the subscribers of it.
    channels: HashMap<Vec<u8>, BTreeSet<u64>>,
    notify: NotifyFlags,
    history: VecDeque<StoredChange>,
    history_bytes: usize,
    /// The event names the history refers to by index: the store's names, a fixed set of
    /// literals (fewer than 20).
    events: Vec<&'static str>,
    /// Every change with a revision above this is in `history`.
    floor: u64,
}

/// A node's event hub. See the module docs.
#[derive(Default)]
pub struct EventHub(Mutex<State>);

impl std::fmt::Debug for EventHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventHub").finish_non_exhaustive()
    }
}

impl EventHub {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().expect("event hub lock poisoned")
    }

    /// The sink to hand the state machine.
    pub fn sink(self: &Arc<Self>) -> EventSink {
        let hub = self.clone();
        Arc::new(move |applied| hub.applied(applied))
    }

    /// Takes what one applied entry (or an installed snapshot) changed.
    pub fn applied(&self, applied: Applied<'_>) {
        let mut state = self.lock();
        match applied {
            Applied::Snapshot(revision) => {
                state.history.clear();
                state.history_bytes = 0;
                state.floor = state.floor.max(revision);
            }
            Applied::Events(events) => {
                for event in events {
                    state.event(event);
                }
            }
        }
    }

    /// A new subscriber (one per connection that subscribes or watches).
    pub fn subscribe(self: &Arc<Self>) -> Subscription {
        let (tx, rx) = mpsc::channel(QUEUE);
        let overflowed = Arc::new(AtomicBool::new(false));
        let mut state = self.lock();
        state.next_id += 1;
        let id = state.next_id;
        state.subscribers.insert(
            id,
            Subscriber {
                tx,
                overflowed: overflowed.clone(),
                patterns: Vec::new(),
                watches: Vec::new(),
            },
        );
        Subscription {
            hub: self.clone(),
            id,
            rx,
            overflowed,
            channels: Vec::new(),
            patterns: Vec::new(),
            watches: 0,
        }
    }

    /// Subscribers of this node a message on `channel` reaches now (channel subscriptions
    /// plus matching patterns): what `PUBLISH` answers.
    pub fn receivers(&self, channel: &[u8]) -> usize {
        let state = self.lock();
        let direct = state.channels.get(channel).map_or(0, BTreeSet::len);
        let patterns: usize = state
            .subscribers
            .values()
            .map(|s| s.patterns.iter().filter(|(_, m)| m(channel)).count())
            .sum();
        direct + patterns
    }

    /// `PUBSUB CHANNELS [pattern]`: channels with at least one subscriber, sorted.
    pub fn channels(&self, matcher: Option<&Matcher>) -> Vec<Vec<u8>> {
        let state = self.lock();
        let mut names: Vec<Vec<u8>> = state
            .channels
            .keys()
            .filter(|c| matcher.is_none_or(|m| m(c)))
            .cloned()
            .collect();
        names.sort();
        names
    }

    /// `PUBSUB NUMSUB`: subscribers of `channel`.
    pub fn numsub(&self, channel: &[u8]) -> usize {
        self.lock().channels.get(channel).map_or(0, BTreeSet::len)
    }

    /// `PUBSUB NUMPAT`: pattern subscriptions, over all subscribers.
    pub fn numpat(&self) -> usize {
        self.lock().subscribers.values().map(|s| s.patterns.len()).sum()
    }

    /// The current `notify-keyspace-events`.
    pub fn notify_flags(&self) -> NotifyFlags {
        self.lock().notify
    }

    /// Sets `notify-keyspace-events`.
    pub fn set_notify_flags(&self, flags: NotifyFlags) {
        self.lock().notify = flags;
    }

    /// The oldest revision a watch may start from.
    pub fn oldest_revision(&self) -> u64 {
        self.lock().floor
    }

    fn remove(&self, id: u64) {
        self.lock().remove(id);
    }
}

impl State {
    fn event(&mut self, event: &Event) {
        match event {
            Event::Message { channel, message, .. } => self.publish(channel, message),
            Event::Key {
                revision,
                key,
                value,
                event,
            } => {
                let (keyspace, keyevent) = self.notify.raises(event);
                if keyspace {
                    let mut channel = b"__keyspace@0__:".to_vec();
                    channel.extend_from_slice(key);
                    self.publish(&channel, event.as_bytes());
                }
                if keyevent {
                    let channel = format!("__keyevent@0__:{event}");
                    self.publish(channel.as_bytes(), key);
                }
                self.change(*revision, key, event, value.as_deref());
            }
            Event::Flushed { revision } => self.change(*revision, b"", "flushdb", None),
        }
    }

    fn publish(&mut self, channel: &[u8], payload: &[u8]) {
        let channel: Arc<[u8]> = channel.into();
        let payload: Arc<[u8]> = payload.into();
        let mut failed = Vec::new();
        if let Some(ids) = self.channels.get(&*channel) {
            for id in ids {
                let push = Push::Message {
                    pattern: None,
                    channel: channel.clone(),
                    payload: payload.clone(),
                };
                if !self.subscribers[id].send(push) {
                    failed.push(*id);
                }
            }
        }
        for (id, subscriber) in &self.subscribers {
            for (pattern, matcher) in &subscriber.patterns {
                if matcher(&channel) {
                    let push = Push::Message {
                        pattern: Some(pattern.clone()),
                        channel: channel.clone(),
                        payload: payload.clone(),
                    };
                    if !subscriber.send(push) {
                        failed.push(*id);
                        break;
                    }
                }
            }
        }
        for id in failed {
            self.remove(id);
        }
    }

    fn change(&mut self, revision: u64, key: &[u8], event: &'static str, value: Option<&[u8]>) {
        let stored = StoredChange::new(revision, self.event_index(event), key, value);
        // Built once, for the first watch it reaches, and shared by the others.
        let mut shared: Option<Arc<Change>> = None;
        let mut failed = Vec::new();
        for (id, subscriber) in &self.subscribers {
            for watch in &subscriber.watches {
                if revision > watch.since && (key.starts_with(&watch.prefix) || event == "flushdb") {
                    let change = shared.get_or_insert_with(|| Arc::new(stored.to_change(&self.events)));
                    let push = Push::Change {
                        prefix: watch.prefix.clone(),
                        change: change.clone(),
                    };
                    if !subscriber.send(push) {
                        failed.push(*id);
                        break;
                    }
                }
            }
        }
        for id in failed {
            self.remove(id);
        }
        self.history_bytes += stored.size();
        self.history.push_back(stored);
        while self.history.len() > HISTORY_EVENTS || self.history_bytes > HISTORY_BYTES {
            let old = self.history.pop_front().expect("a non-empty history");
            self.history_bytes -= old.size();
            self.floor = self.floor.max(old.revision());
        }
    }

    /// The index of `event` in [`State::events`], added if new.
    fn event_index(&mut self, event: &'static str) -> u8 {
        let index = match self.events.iter().position(|e| *e == event) {
            Some(index) => index,
            None => {
                self.events.push(event);
                self.events.len() - 1
            }
        };
        u8::try_from(index).expect("the store raises fewer than 256 event names")
    }

    fn remove(&mut self, id: u64) {
        if self.subscribers.remove(&id).is_some() {
            self.channels.retain(|_, ids| {
                ids.remove(&id);
                !ids.is_empty()
            });
        }
    }
}

impl Subscriber {
    /// Queues `push`; `false` (and marked overflowed) if the queue is full or gone.
    fn send(&self, push: Push) -> bool {
        match self.tx.try_send(push) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.overflowed.store(true, Ordering::Relaxed);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}

/// One connection's subscriptions: channels, patterns and watches. Dropping it unsubscribes
/// from everything.
pub struct Subscription {
    hub: Arc<EventHub>,
    id: u64,
    rx: mpsc::Receiver<Push>,
    overflowed: Arc<AtomicBool>,
    /// Channels, in subscription order (`UNSUBSCRIBE` with no argument answers in this order).
    channels: Vec<Vec<u8>>,
    patterns: Vec<Vec<u8>>,
    watches: usize,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Subscription {
    /// Channels, patterns and watches: the count Redis's (un)subscribe replies carry.
    pub fn count(&self) -> usize {
        self.channels.len() + self.patterns.len() + self.watches
    }

    /// Channels subscribed to, in subscription order.
    pub fn channels(&self) -> &[Vec<u8>] {
        &self.channels
    }

    /// Patterns subscribed to, in subscription order.
    pub fn patterns(&self) -> &[Vec<u8>] {
        &self.patterns
    }

    /// Subscribes to `channel` (no-op if already).
    pub fn subscribe(&mut self, channel: &[u8]) {
        if self.channels.iter().any(|c| c == channel) {
            return;
        }
        let mut state = self.hub.lock();
        if !state.subscribers.contains_key(&self.id) {
            return;
        }
        state.channels.entry(channel.to_vec()).or_default().insert(self.id);
        self.channels.push(channel.to_vec());
    }

    /// Unsubscribes from `channel` (no-op if not subscribed).
    pub fn unsubscribe(&mut self, channel: &[u8]) {
        self.channels.retain(|c| c != channel);
        let mut state = self.hub.lock();
        if let Some(ids) = state.channels.get_mut(channel) {
            ids.remove(&self.id);
            if ids.is_empty() {
                state.channels.remove(channel);
            }
        }
    }

    /// Subscribes to channels matching `pattern` (no-op if already).
    pub fn psubscribe(&mut self, pattern: &[u8], matcher: Matcher) {
        if self.patterns.iter().any(|p| p == pattern) {
            return;
        }
        let mut state = self.hub.lock();
        if let Some(subscriber) = state.subscribers.get_mut(&self.id) {
            subscriber.patterns.push((pattern.into(), matcher));
            self.patterns.push(pattern.to_vec());
        }
    }

    /// Unsubscribes from `pattern` (no-op if not subscribed).
    pub fn punsubscribe(&mut self, pattern: &[u8]) {
        self.patterns.retain(|p| p != pattern);
        let mut state = self.hub.lock();
        if let Some(subscriber) = state.subscribers.get_mut(&self.id) {
            subscriber.patterns.retain(|(p, _)| &**p != pattern);
        }
    }

    /// Watches keys starting with `prefix` for changes after revision `since`: returns the
    /// changes the history holds after it (to send first), and queues later ones as they are
    /// applied. [`Compacted`] if `since` is below the oldest revision held.
    pub fn watch(&mut self, prefix: &[u8], since: u64) -> Result<Vec<Arc<Change>>, Compacted> {
        let mut state = self.hub.lock();
        if since < state.floor {
            return Err(Compacted {
                since,
                oldest: state.floor,
            });
        }
        let prefix: Arc<[u8]> = prefix.into();
        let start = state.history.partition_point(|c| c.revision() <= since);
        let backlog = state
            .history
            .range(start..)
            .filter(|c| c.key().starts_with(&prefix) || c.event(&state.events) == "flushdb")
            .map(|c| Arc::new(c.to_change(&state.events)))
            .collect();
        let latest = state.history.back().map_or(since, |c| c.revision().max(since));
        if let Some(subscriber) = state.subscribers.get_mut(&self.id) {
            subscriber.watches.push(Watch { prefix, since: latest });
            self.watches += 1;
        }
        Ok(backlog)
    }

    /// The next push; `None` once the hub dropped this subscriber (see [`Self::overflowed`]).
    pub async fn recv(&mut self) -> Option<Push> {
        self.rx.recv().await
    }

    /// A push already queued, if any.
    pub fn try_recv(&mut self) -> Option<Push> {
        self.rx.try_recv().ok()
    }

    /// Whether the hub dropped this subscriber because its queue was full.
    pub fn overflowed(&self) -> bool {
        self.overflowed.load(Ordering::Relaxed)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.remove(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(revision: u64, key: &str, event: &'static str) -> Event {
        Event::Key {
            revision,
            key: key.as_bytes().to_vec(),
            value: Some(b"v".to_vec()),
            event,
        }
    }

    fn change_revisions(pushes: impl Iterator<Item = Push>) -> Vec<u64> {
        pushes
            .map(|p| match p {
                Push::Change { change, .. } => change.revision,
                Push::Message { .. } => panic!("a message"),
            })
            .collect()
    }

    #[test]
    fn flags_parse_and_render_as_redis_does() {
        assert_eq!(NotifyFlags::parse(b"KEA").unwrap().render(), "AKE");
        assert_eq!(NotifyFlags::parse(b"Ex$g").unwrap().render(), "g$xE");
        assert_eq!(NotifyFlags::parse(b"").unwrap().render(), "");
        assert_eq!(NotifyFlags::parse(b"KAnm").unwrap().render(), "AKmn");
        assert!(NotifyFlags::parse(b"Kq").is_none());
        let flags = NotifyFlags::parse(b"Kx").unwrap();
        assert_eq!(flags.raises("expired"), (true, false));
        assert_eq!(flags.raises("set"), (false, false));
    }

    #[test]
    fn a_watch_replays_history_then_streams_without_gap_or_repeat() {
        let hub = Arc::new(EventHub::default());
        hub.applied(Applied::Events(&[key(1, "a:1", "set"), key(1, "b:1", "set")]));
        hub.applied(Applied::Events(&[key(2, "a:2", "set")]));
        let mut sub = hub.subscribe();
        let backlog = sub.watch(b"a:", 1).unwrap();
        assert_eq!(backlog.iter().map(|c| c.revision).collect::<Vec<_>>(), [2]);
        hub.applied(Applied::Events(&[key(3, "a:3", "del"), key(3, "c", "set")]));
        assert_eq!(change_revisions(std::iter::from_fn(|| sub.try_recv())), [3]);
        let mut all = hub.subscribe();
        let backlog = all.watch(b"", 0).unwrap();
        assert_eq!(backlog.len(), 5);
    }

    #[test]
    fn a_stored_change_is_one_allocation_and_reads_back_whole() {
        let key = [b'k'; 11];
        let value = [b'v'; 64];
        let stored = StoredChange::new(7, 2, &key, Some(&value));
        // One 88-byte allocation (a 96-byte heap chunk) behind a 16-byte slot.
        assert_eq!((stored.0.len(), std::mem::size_of::<StoredChange>()), (88, 16));
        assert_eq!(stored.size(), 11 + 64 + CHANGE_OVERHEAD);
        let events = ["set", "del", "expired"];
        let expected = Change {
            revision: 7,
            key: key.to_vec(),
            event: "expired",
            value: Some(value.to_vec()),
        };
        assert_eq!(stored.to_change(&events), expected);
        let gone = StoredChange::new(u64::MAX, 0, b"", None);
        assert_eq!((gone.revision(), gone.key(), gone.value()), (u64::MAX, &b""[..], None));
        let empty = StoredChange::new(1, 1, b"k", Some(b""));
        assert_eq!(empty.value(), Some(&b""[..]));
    }

    #[test]
    fn watches_see_the_event_value_and_flushes_the_history_held() {
        let hub = Arc::new(EventHub::default());
        hub.applied(Applied::Events(&[
            key(1, "a", "set"),
            Event::Key {
                revision: 2,
                key: b"a".to_vec(),
                value: None,
                event: "del",
            },
            Event::Flushed { revision: 3 },
            key(4, "b", "expired"),
        ]));
        let mut sub = hub.subscribe();
        let backlog: Vec<Change> = sub.watch(b"a", 0).unwrap().iter().map(|c| (**c).clone()).collect();
        let change = |revision, key: &str, event, value: Option<&str>| Change {
            revision,
            key: key.as_bytes().to_vec(),
            event,
            value: value.map(|v| v.as_bytes().to_vec()),
        };
        assert_eq!(
            backlog,
            [
                change(1, "a", "set", Some("v")),
                change(2, "a", "del", None),
                change(3, "", "flushdb", None)
            ]
        );
        hub.applied(Applied::Events(&[key(5, "ab", "set")]));
        match sub.try_recv() {
            Some(Push::Change { prefix, change: got }) => {
                assert_eq!((&*prefix, &*got), (&b"a"[..], &change(5, "ab", "set", Some("v"))));
            }
            other => panic!("expected a change, got {other:?}"),
        }
    }

    #[test]
    fn a_snapshot_or_eviction_compacts_history() {
        let hub = Arc::new(EventHub::default());
        hub.applied(Applied::Events(&[key(1, "a", "set")]));
        hub.applied(Applied::Snapshot(10));
        let mut sub = hub.subscribe();
        assert_eq!(sub.watch(b"", 5), Err(Compacted { since: 5, oldest: 10 }));
        assert!(sub.watch(b"", 10).unwrap().is_empty());
        for revision in 11..11 + HISTORY_EVENTS as u64 + 5 {
            hub.applied(Applied::Events(&[key(revision, "z", "set")]));
        }
        assert_eq!(hub.oldest_revision(), 15);
    }

    #[test]
    fn a_full_queue_drops_the_subscriber_and_nothing_blocks() {
        let hub = Arc::new(EventHub::default());
        let mut sub = hub.subscribe();
        sub.subscribe(b"ch");
        for revision in 0..QUEUE as u64 + 10 {
            hub.applied(Applied::Events(&[Event::Message {
                revision,
                channel: b"ch".to_vec(),
                message: b"m".to_vec(),
            }]));
        }
        assert!(sub.overflowed());
        assert_eq!(hub.numsub(b"ch"), 0);
        let mut received = 0;
        while sub.try_recv().is_some() {
            received += 1;
        }
        assert_eq!(received, QUEUE);
    }

    #[test]
    fn keyspace_notifications_follow_the_flags() {
        let hub = Arc::new(EventHub::default());
        let mut sub = hub.subscribe();
        sub.psubscribe(b"__key*", Box::new(|c| c.starts_with(b"__key")));
        hub.applied(Applied::Events(&[key(1, "k", "set")]));
        assert!(sub.try_recv().is_none());
        hub.set_notify_flags(NotifyFlags::parse(b"KEA").unwrap());
        hub.applied(Applied::Events(&[key(2, "k", "expired")]));
        let channels: Vec<Vec<u8>> = std::iter::from_fn(|| sub.try_recv())
            .map(|p| match p {
                Push::Message { channel, payload, .. } => [&*channel, b" ", &*payload].concat(),
                Push::Change { .. } => panic!("a change"),
            })
            .collect();
        assert_eq!(
            channels,
            [
                b"__keyspace@0__:k expired".to_vec(),
                b"__keyevent@0__:expired k".to_vec()
            ]
        );
    }
}
