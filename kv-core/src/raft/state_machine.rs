//! The openraft state-machine adapter over [`Store`], with a pluggable durable snapshot slot.

use std::fmt::Debug;
use std::io;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::RwLock;
use std::sync::RwLockReadGuard;

use futures_util::Stream;
use futures_util::TryStreamExt;
use openraft::EntryPayload;
use openraft::OptionalSend;
use openraft::RaftSnapshotBuilder;
use openraft::alias::EntryOf;
use openraft::alias::LogIdOf;
use openraft::alias::SnapshotMetaOf;
use openraft::alias::SnapshotOf;
use openraft::alias::StoredMembershipOf;
use openraft::entry::RaftEntry;
use openraft::storage::EntryResponder;
use openraft::storage::RaftStateMachine;

use super::KvTypeConfig;
use crate::command::Limits;
use crate::command::Response;
use crate::command::Write;
use crate::store::Event;
use crate::store::FrozenStore;
use crate::store::Store;

/// A durable home for a node's latest snapshot: it must survive a crash of the node.
pub trait SnapshotStore<C: KvTypeConfig>: Clone + Debug + Send + Sync + 'static {
    /// Makes `data` with `meta` the current snapshot, replacing any older one, durably.
    fn save(&mut self, meta: &SnapshotMetaOf<C>, data: &[u8]) -> io::Result<()>;
    /// Encodes `store`'s image and saves it with `meta` as [`SnapshotStore::save`] does;
    /// returns the image. Runs in openraft's snapshot-building task, beside the apply path: a
    /// store whose saving blocks (on a disk) may run both off its runtime's async workers.
    fn build(&mut self, meta: &SnapshotMetaOf<C>, store: &FrozenStore) -> io::Result<Vec<u8>> {
        let data = store.to_bytes();
        self.save(meta, &data)?;
        Ok(data)
    }
    /// The current snapshot, if any.
    fn load(&mut self) -> io::Result<Option<StoredSnapshot<C>>>;
    /// Whether the current snapshot is the one `meta` describes. Installing that one (as
    /// openraft does on every start, to rebuild the volatile state machine from it) then
    /// needs no save: it is already there, durably.
    fn holds(&self, meta: &SnapshotMetaOf<C>) -> bool;
}

/// A snapshot slot in memory; clones share it. The simulator keeps it across a node's crash.
#[derive(Debug)]
pub struct MemSnapshotStore<C: KvTypeConfig> {
    slot: Arc<Mutex<Option<StoredSnapshot<C>>>>,
}

/// A snapshot's metadata and its data, as a [`SnapshotStore`] keeps them.
pub type StoredSnapshot<C> = (SnapshotMetaOf<C>, Vec<u8>);

impl<C: KvTypeConfig> Clone for MemSnapshotStore<C> {
    fn clone(&self) -> Self {
        MemSnapshotStore {
            slot: self.slot.clone(),
        }
    }
}

impl<C: KvTypeConfig> Default for MemSnapshotStore<C> {
    fn default() -> Self {
        MemSnapshotStore {
            slot: Arc::new(Mutex::new(None)),
        }
    }
}

impl<C: KvTypeConfig> SnapshotStore<C> for MemSnapshotStore<C> {
    fn save(&mut self, meta: &SnapshotMetaOf<C>, data: &[u8]) -> io::Result<()> {
        *self.slot.lock().expect("snapshot slot lock poisoned") = Some((meta.clone(), data.to_vec()));
        Ok(())
    }

    fn load(&mut self) -> io::Result<Option<StoredSnapshot<C>>> {
        Ok(self.slot.lock().expect("snapshot slot lock poisoned").clone())
    }

    fn holds(&self, meta: &SnapshotMetaOf<C>) -> bool {
        self.slot
            .lock()
            .expect("snapshot slot lock poisoned")
            .as_ref()
            .is_some_and(|(current, _)| current == meta)
    }
}

/// A shared, read-only view of a node's [`Store`], for answering reads outside Raft.
#[derive(Debug, Clone, Default)]
pub struct StoreHandle(Arc<RwLock<Store>>);

impl StoreHandle {
    /// Locks the store for reading.
    pub fn read(&self) -> RwLockReadGuard<'_, Store> {
        self.0.read().expect("store lock poisoned")
    }

    fn replace(&self, mut store: Store, recording: bool) {
        store.record_events(recording);
        *self.0.write().expect("store lock poisoned") = store;
    }

    /// Applies `write` at `revision` and takes its events; under the same lock, first starts
    /// loading the record that `ahead`, a write applied soon after, will change.
    fn apply(&self, revision: u64, write: &Write, ahead: Option<&Write>) -> (Response, Vec<Event>) {
        let mut store = self.0.write().expect("store lock poisoned");
        if let Some(ahead) = ahead {
            store.prefetch_write(ahead);
        }
        let response = store.apply(revision, write);
        (response, store.take_events())
    }

    fn record_events(&self) {
        self.0.write().expect("store lock poisoned").record_events(true);
    }

    fn freeze(&self) -> FrozenStore {
        self.0.write().expect("store lock poisoned").freeze()
    }
}

/// Entries ahead of the one being applied whose records are prefetched (as the snapshot image
/// does, `store/image.rs`): far enough to cover a miss, near enough to stay in the cache.
const APPLY_PREFETCH_AHEAD: usize = 8;

/// Most entries taken from openraft's apply stream before they are applied: a bound on what
/// waits in memory (a restart may apply a million entries in one stream).
const APPLY_CHUNK: usize = 256;

/// Called with every applied log entry, in order.
pub type ApplyObserver<C> = Arc<dyn Fn(&EntryOf<C>) + Send + Sync>;

/// What a state machine tells an [`EventSink`], in apply order.
#[derive(Debug, Clone, Copy)]
pub enum Applied<'a> {
    /// The changes made by one applied write (possibly none).
    Events(&'a [Event]),
    /// A snapshot replaced the whole state at this revision: changes before it were not and
    /// will not be reported.
    Snapshot(u64),
}

/// Called, outside the store's lock, after every applied write and installed snapshot.
pub type EventSink = Arc<dyn Fn(Applied<'_>) + Send + Sync>;

/// openraft's state machine over a [`Store`]. Volatile: after a crash openraft rebuilds it from
/// the last snapshot and the committed log.
pub struct StateMachine<C: KvTypeConfig, S: SnapshotStore<C>> {
    store: StoreHandle,
    limits: Limits,
    last_applied: Option<LogIdOf<C>>,
    last_membership: StoredMembershipOf<C>,
    snapshots: S,
    observer: Option<ApplyObserver<C>>,
    events: Option<EventSink>,
}

impl<C: KvTypeConfig, S: SnapshotStore<C>> StateMachine<C, S> {
    /// An empty state machine that keeps its snapshots in `snapshots`.
    pub fn new(limits: Limits, snapshots: S) -> Self {
        StateMachine {
            store: StoreHandle(Arc::new(RwLock::new(Store::new(limits)))),
            limits,
            last_applied: None,
            last_membership: StoredMembershipOf::<C>::default(),
            snapshots,
            observer: None,
            events: None,
        }
    }

    /// Lists the changes of every applied write (keyspace notifications, pub/sub, watches)
    /// to `sink`, on every replica in commit order.
    pub fn with_events(mut self, sink: EventSink) -> Self {
        self.store.record_events();
        self.events = Some(sink);
        self
    }

    /// Registers a callback seeing every applied entry (used by the simulator's checkers).
    pub fn with_observer(mut self, observer: ApplyObserver<C>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// A handle for reading the store while openraft owns the state machine.
    pub fn store(&self) -> StoreHandle {
        self.store.clone()
    }
}

impl<C: KvTypeConfig, S: SnapshotStore<C>> StateMachine<C, S> {
    /// Applies the entries of `chunk` in order, answers each, and leaves `chunk` empty. A
    /// write's record is prefetched (`Store::prefetch_write`) `APPLY_PREFETCH_AHEAD` entries
    /// before it is applied, under the store lock the entry applied then takes, so that its
    /// cache miss overlaps with the entries before it.
    fn apply_chunk(&mut self, chunk: &mut Vec<EntryResponder<C>>) {
        {
            let store = self.store.read();
            for (entry, _) in chunk.iter().take(APPLY_PREFETCH_AHEAD) {
                if let Some(write) = write_of::<C>(entry) {
                    store.prefetch_write(write);
                }
            }
        }
        for i in 0..chunk.len() {
            let (current, later) = chunk.split_at_mut(i + 1);
            let ahead = later
                .get(APPLY_PREFETCH_AHEAD - 1)
                .and_then(|(entry, _)| write_of::<C>(entry));
            let (entry, responder) = &mut current[i];
            let log_id = entry.log_id();
            let response = match &entry.payload {
                EntryPayload::Blank => Response::Ok,
                EntryPayload::Normal(write) => {
                    let (response, events) = self.store.apply(log_id.index(), write, ahead);
                    if let Some(sink) = &self.events {
                        sink(Applied::Events(&events));
                    }
                    response
                }
                EntryPayload::Membership(membership) => {
                    self.last_membership = StoredMembershipOf::<C>::new(Some(log_id), membership.clone());
                    Response::Ok
                }
            };
            if let Some(observer) = &self.observer {
                observer(entry);
            }
            self.last_applied = Some(log_id);
            if let Some(responder) = responder.take() {
                responder.send(response);
            }
        }
        chunk.clear();
    }
}

/// The write an entry carries, if it carries one.
fn write_of<C: KvTypeConfig>(entry: &EntryOf<C>) -> Option<&Write> {
    match &entry.payload {
        EntryPayload::Normal(write) => Some(write),
        _ => None,
    }
}

/// Builds a snapshot from a view of the store frozen when the builder was made: openraft makes
/// the builder on the apply path and runs it in a task of its own, where the image is encoded
/// and saved while entries go on being applied.
pub struct SnapshotBuilder<C: KvTypeConfig, S: SnapshotStore<C>> {
    meta: SnapshotMetaOf<C>,
    store: FrozenStore,
    snapshots: S,
}

impl<C: KvTypeConfig, S: SnapshotStore<C>> RaftSnapshotBuilder<C> for SnapshotBuilder<C, S> {
    type SnapshotData = Vec<u8>;

    async fn build_snapshot(&mut self) -> Result<SnapshotOf<C, Vec<u8>>, io::Error> {
        let snapshot = self.snapshots.build(&self.meta, &self.store)?;
        Ok(SnapshotOf::<C, Vec<u8>> {
            meta: self.meta.clone(),
            snapshot,
        })
    }
}

impl<C: KvTypeConfig, S: SnapshotStore<C>> RaftStateMachine<C> for StateMachine<C, S> {
    type SnapshotData = Vec<u8>;
    type SnapshotBuilder = SnapshotBuilder<C, S>;

    async fn applied_state(&mut self) -> Result<(Option<LogIdOf<C>>, StoredMembershipOf<C>), io::Error> {
        Ok((self.last_applied, self.last_membership.clone()))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: Stream<Item = Result<EntryResponder<C>, io::Error>> + Unpin + OptionalSend,
    {
        // Up to `APPLY_CHUNK` entries at a time are taken from the stream and applied, with the
        // records of the next few already on their way into the cache.
        let mut chunk = Vec::with_capacity(APPLY_CHUNK);
        loop {
            let end = loop {
                if chunk.len() == APPLY_CHUNK {
                    break None;
                }
                match entries.try_next().await {
                    Ok(Some(item)) => chunk.push(item),
                    Ok(None) => break Some(Ok(())),
                    Err(e) => break Some(Err(e)),
                }
            };
            self.apply_chunk(&mut chunk);
            if let Some(end) = end {
                return end;
            }
        }
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            meta: SnapshotMetaOf::<C> {
                last_log_id: self.last_applied,
                last_membership: self.last_membership.clone(),
            },
            store: self.store.freeze(),
            snapshots: self.snapshots.clone(),
        }
    }

    async fn install_snapshot(&mut self, meta: &SnapshotMetaOf<C>, snapshot: Vec<u8>) -> Result<(), io::Error> {
        let store = Store::from_bytes(&snapshot, self.limits)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("snapshot does not decode: {e}")))?;
        let store_revision = meta.last_log_id.map_or(0, |id| id.index());
        if !self.snapshots.holds(meta) {
            self.snapshots.save(meta, &snapshot)?;
        }
        self.store.replace(store, self.events.is_some());
        if let Some(sink) = &self.events {
            sink(Applied::Snapshot(store_revision));
        }
        self.last_applied = meta.last_log_id;
        self.last_membership = meta.last_membership.clone();
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<SnapshotOf<C, Vec<u8>>>, io::Error> {
        Ok(self
            .snapshots
            .load()?
            .map(|(meta, snapshot)| SnapshotOf::<C, Vec<u8>> { meta, snapshot }))
    }
}
