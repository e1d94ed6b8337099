//! An embedded, single-node store: the state machine and the durable log under a one-member
//! openraft, opened from a path, with no network.
//!
//! Every write goes through Raft (so it is in the synced log before it is acknowledged) and
//! returns once applied; reads are served from the applied state, which therefore reflects every
//! acknowledged write. The log is compacted by policy ([`EmbeddedOptions::snapshot_every`]) or
//! by [`Embedded::snapshot`].
//!
//! ```
//! use kv_node::storage::BlockingEmbedded;
//! use kv_node::storage::EmbeddedOptions;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let store = BlockingEmbedded::open(dir.path(), EmbeddedOptions::default()).unwrap();
//! store.put(b"greeting", b"hello").unwrap();
//! assert_eq!(store.get(b"greeting"), Some(b"hello".to_vec()));
//! store.close().unwrap();
//!
//! let store = BlockingEmbedded::open(dir.path(), EmbeddedOptions::default()).unwrap();
//! assert_eq!(store.get(b"greeting"), Some(b"hello".to_vec()));
//! store.close().unwrap();
//! ```

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::ops::Bound;
use std::path::Path;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use std::time::SystemTime;

use openraft::Config;
use openraft::Raft;
use openraft::SnapshotPolicy;
use openraft::alias::SnapshotOf;
use openraft::alias::VoteOf;
use openraft::errors::RPCError;
use openraft::errors::ReplicationClosed;
use openraft::errors::StreamingError;
use openraft::errors::Unreachable;
use openraft::network::RPCOption;
use openraft::network::RaftNetworkFactory;
use openraft::network::v2::RaftNetworkV2;
use openraft::raft::AppendEntriesRequest;
use openraft::raft::AppendEntriesResponse;
use openraft::raft::SnapshotResponse;
use openraft::raft::VoteRequest;
use openraft::raft::VoteResponse;
use openraft::type_config::async_runtime::WatchReceiver;

use kv_core::command::Command;
use kv_core::command::Expiry;
use kv_core::command::Key;
use kv_core::command::LimitError;
use kv_core::command::Limits;
use kv_core::command::Query;
use kv_core::command::Response;
use kv_core::command::SetCondition;
use kv_core::command::Value;
use kv_core::command::Write;
use kv_core::raft::KvNode;
use kv_core::raft::state_machine::StateMachine;
use kv_core::raft::state_machine::StoreHandle;

use super::FsyncPolicy;
use super::error::StorageError;
use super::fs::Fs;
use super::fs::OsFs;
use super::log_store::FlushHandle;
use super::log_store::LogOptions;
use super::log_store::LogStore;
use super::log_store::WriterExit;
use super::snapshot::FileSnapshotStore;
use crate::NodeConfig;

/// The id of the only member of an embedded store's cluster.
const NODE_ID: u64 = 1;
/// How long opening waits for the node to lead and catch up, and closing for the log to stop.
const WAIT: Duration = Duration::from_secs(30);

type Machine = StateMachine<NodeConfig, FileSnapshotStore<NodeConfig>>;

/// How to open an [`Embedded`] store.
#[derive(Debug, Clone)]
pub struct EmbeddedOptions {
    /// Create the directory if it does not exist (default `true`).
    pub create_if_missing: bool,
    /// When to fsync (default [`FsyncPolicy::Always`]).
    pub fsync: FsyncPolicy,
    /// Build a snapshot and purge the log once this many entries were applied since the last
    /// one; `None` compacts only on [`Embedded::snapshot`]. Default: 10,000.
    pub snapshot_every: Option<u64>,
    /// Size at which a new log segment is started.
    pub segment_bytes: u64,
    /// Key and value size limits.
    pub limits: Limits,
    /// The file system (the real one by default; tests substitute their own).
    pub fs: Arc<dyn Fs>,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        EmbeddedOptions {
            create_if_missing: true,
            fsync: FsyncPolicy::Always,
            snapshot_every: Some(10_000),
            segment_bytes: LogOptions::default().segment_bytes,
            limits: Limits::default(),
            fs: Arc::new(OsFs),
        }
    }
}

/// Why an embedded store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    /// Opening or using the files failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The command breaks the size limits; it was not written.
    #[error(transparent)]
    Limit(#[from] LimitError),
    /// The store has stopped (closed, or a storage failure such as a full disk stopped it).
    #[error("the store has stopped: {0}")]
    Stopped(String),
    /// Waiting for the store took too long.
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    /// The runtime of a [`BlockingEmbedded`] could not be started.
    #[error("cannot start the store's runtime: {0}")]
    Runtime(io::Error),
}

/// The outcome of [`Embedded::cas`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CasOutcome {
    /// Whether the value matched and was replaced.
    pub swapped: bool,
    /// The value before the operation.
    pub previous: Option<Value>,
}

/// An embedded single-node store. See the module docs. Methods that write are async; reads are
/// plain calls. [`BlockingEmbedded`] wraps it for callers without a runtime.
pub struct Embedded {
    raft: Raft<NodeConfig, Machine>,
    store: StoreHandle,
    limits: Limits,
    writer_exit: WriterExit,
    log: FlushHandle<NodeConfig>,
    path: PathBuf,
}

impl std::fmt::Debug for Embedded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedded")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Embedded {
    /// Opens (or creates) the store at `path`, recovers it, and waits until it serves requests.
    /// Needs a tokio runtime with timers enabled. Fails with [`StorageError::Locked`] if
    /// another store has the directory open.
    pub async fn open(path: impl AsRef<Path>, options: EmbeddedOptions) -> Result<Self, EmbeddedError> {
        let path = path.as_ref().to_path_buf();
        let fs = options.fs.clone();
        let data_dir = |source| StorageError::DataDir {
            path: path.clone(),
            source,
        };
        if options.create_if_missing {
            fs.create_dir_all(&path).map_err(data_dir)?;
        } else {
            fs.list(&path).map_err(data_dir)?;
        }
        let log_dir = path.join("log");
        let snapshot_dir = path.join("snapshots");
        for dir in [&log_dir, &snapshot_dir] {
            fs.create_dir_all(dir).map_err(|source| StorageError::DataDir {
                path: dir.clone(),
                source,
            })?;
        }
        // Make the directories themselves durable: files in them are synced, their names not.
        if options.fsync == FsyncPolicy::Always {
            let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
            for dir in parent.into_iter().chain([path.as_path()]) {
                fs.sync_dir(dir).map_err(|e| StorageError::io("sync", dir, e))?;
            }
        }
        let log_options = LogOptions {
            fsync: options.fsync,
            segment_bytes: options.segment_bytes,
            ..LogOptions::default()
        };
        // Recovery reads every segment: keep it off the async worker threads.
        let open_log = {
            let (fs, log_dir) = (fs.clone(), log_dir.clone());
            move || LogStore::open(fs, &log_dir, log_options)
        };
        let log = tokio::task::spawn_blocking(open_log)
            .await
            .map_err(|e| EmbeddedError::Stopped(e.to_string()))??;
        let writer_exit = log.writer_exit();
        let flush_handle = log.flush_handle();
        let snapshots = FileSnapshotStore::open(fs, &snapshot_dir, options.fsync)?;
        let machine = Machine::new(options.limits, snapshots);
        let store = machine.store();

        let config = Config {
            cluster_name: "quorumkv-embedded".to_string(),
            heartbeat_interval: 50,
            election_timeout_min: 150,
            election_timeout_max: 300,
            snapshot_policy: options
                .snapshot_every
                .map_or(SnapshotPolicy::Never, SnapshotPolicy::LogsSinceLast),
            max_in_snapshot_log_to_keep: 0,
            ..Config::default()
        };
        let config = Arc::new(config.validate().map_err(|e| EmbeddedError::Stopped(e.to_string()))?);
        let raft = Raft::new(NODE_ID, config, NoNetwork, log, machine)
            .await
            .map_err(|e| EmbeddedError::Stopped(e.to_string()))?;
        let initialized = raft
            .is_initialized()
            .await
            .map_err(|e| EmbeddedError::Stopped(e.to_string()))?;
        if !initialized {
            let members = BTreeMap::from([(NODE_ID, KvNode::default())]);
            raft.initialize(members)
                .await
                .map_err(|e| EmbeddedError::Stopped(e.to_string()))?;
        }
        // Leading, and every entry in the log (acknowledged before a restart) applied.
        raft.wait(Some(WAIT))
            .metrics(
                |m| m.current_leader == Some(NODE_ID) && m.last_applied.as_ref().map(|id| id.index) == m.last_log_index,
                "the embedded store to lead and apply its log",
            )
            .await
            .map_err(|_| EmbeddedError::Timeout("the store to recover"))?;
        Ok(Embedded {
            raft,
            store,
            limits: options.limits,
            writer_exit,
            log: flush_handle,
            path,
        })
    }

    /// Proposes any write command and returns its response once it is durable and applied.
    pub async fn write(&self, command: Command) -> Result<Response, EmbeddedError> {
        command.validate(&self.limits)?;
        let write = Write {
            at_ms: now_ms(),
            command,
        };
        let response = self
            .raft
            .client_write(write)
            .await
            .map_err(|e| EmbeddedError::Stopped(e.to_string()))?;
        Ok(response.data)
    }

    /// Sets `key` to `value`, with no expiry.
    pub async fn put(&self, key: &[u8], value: &[u8]) -> Result<(), EmbeddedError> {
        self.set(key, value, Expiry::Never).await
    }

    /// Sets `key` to `value`, expiring after `ttl`.
    pub async fn set_with_ttl(&self, key: &[u8], value: &[u8], ttl: Duration) -> Result<(), EmbeddedError> {
        let at = now_ms().saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX));
        self.set(key, value, Expiry::At(at)).await
    }

    async fn set(&self, key: &[u8], value: &[u8], expiry: Expiry) -> Result<(), EmbeddedError> {
        let command = Command::Set {
            key: key.to_vec(),
            value: value.to_vec(),
            condition: SetCondition::Always,
            expiry,
        };
        self.write(command).await.map(drop)
    }

    /// Removes `key`; returns whether it existed.
    pub async fn delete(&self, key: &[u8]) -> Result<bool, EmbeddedError> {
        let response = self
            .write(Command::Delete {
                keys: vec![key.to_vec()],
            })
            .await?;
        Ok(matches!(response, Response::Count(1)))
    }

    /// Compare-and-swap: if `key` holds `expected` (`None`: is absent), sets it to `new`
    /// (`None`: deletes it).
    pub async fn cas(
        &self,
        key: &[u8],
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<CasOutcome, EmbeddedError> {
        let command = Command::CompareAndSwap {
            key: key.to_vec(),
            expected: expected.map(<[u8]>::to_vec),
            new: new.map(<[u8]>::to_vec),
        };
        match self.write(command).await? {
            Response::Cas { swapped, previous } => Ok(CasOutcome { swapped, previous }),
            other => unreachable!("the store answers a compare-and-swap with Cas, not {other:?}"),
        }
    }

    /// The value at `key`, if any (expired keys are absent).
    pub fn get(&self, key: &[u8]) -> Option<Value> {
        match self.query(&Query::Get { key: key.to_vec() }) {
            Response::Value(value) => value,
            other => unreachable!("the store answers a get with Value, not {other:?}"),
        }
    }

    /// Up to `limit` live entries with keys between `start` and `end`, in key order.
    pub fn scan(&self, start: Bound<&[u8]>, end: Bound<&[u8]>, limit: usize) -> Vec<(Key, Value)> {
        let query = Query::Range {
            start: start.map(<[u8]>::to_vec),
            end: end.map(<[u8]>::to_vec),
            limit,
        };
        match self.query(&query) {
            Response::Entries(entries) => entries,
            other => unreachable!("the store answers a range with Entries, not {other:?}"),
        }
    }

    /// Number of live keys.
    pub fn len(&self) -> u64 {
        match self.query(&Query::Count) {
            Response::Count(n) => n,
            other => unreachable!("the store answers a count with Count, not {other:?}"),
        }
    }

    /// Whether the store holds no live key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn query(&self, query: &Query) -> Response {
        self.store.read().query(query, now_ms())
    }

    /// Builds a snapshot of everything applied so far, saves it, and purges the log it covers.
    pub async fn snapshot(&self) -> Result<(), EmbeddedError> {
        let applied = self.raft.metrics().borrow_watched().last_applied;
        self.raft
            .trigger()
            .snapshot()
            .await
            .map_err(|e| EmbeddedError::Stopped(e.to_string()))?;
        self.raft
            .wait(Some(WAIT))
            .metrics(|m| m.snapshot >= applied && m.purged >= applied, "the snapshot")
            .await
            .map_err(|_| EmbeddedError::Timeout("the snapshot"))?;
        // The purge is queued; wait until it is durable and the purged segments are deleted.
        self.log
            .flush()
            .await
            .map_err(|e| EmbeddedError::Stopped(e.to_string()))
    }

    /// Stops the node and waits until its log is closed and the directory unlocked.
    /// Dropping an [`Embedded`] without closing it is like a crash: acknowledged writes survive,
    /// but the directory stays locked until the runtime stops.
    pub async fn close(self) -> Result<(), EmbeddedError> {
        self.raft
            .shutdown()
            .await
            .map_err(|e| EmbeddedError::Stopped(e.to_string()))?;
        drop(self.raft);
        let exit = self.writer_exit;
        tokio::time::timeout(WAIT, tokio::task::spawn_blocking(move || exit.wait()))
            .await
            .map_err(|_| EmbeddedError::Timeout("the log to close"))?
            .map_err(|e| EmbeddedError::Stopped(e.to_string()))?;
        Ok(())
    }
}

fn now_ms() -> u64 {
    let since_epoch = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX)
}

/// [`Embedded`] for callers without an async runtime: it owns one and blocks on each call.
/// Dropping it closes the store (errors are then only logged).
#[derive(Debug)]
pub struct BlockingEmbedded {
    runtime: tokio::runtime::Runtime,
    inner: Option<Embedded>,
}

impl BlockingEmbedded {
    /// Opens (or creates) the store at `path`. See [`Embedded::open`].
    pub fn open(path: impl AsRef<Path>, options: EmbeddedOptions) -> Result<Self, EmbeddedError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("kv-embedded")
            .enable_all()
            .build()
            .map_err(EmbeddedError::Runtime)?;
        let inner = runtime.block_on(Embedded::open(path, options))?;
        Ok(BlockingEmbedded {
            runtime,
            inner: Some(inner),
        })
    }

    fn inner(&self) -> &Embedded {
        self.inner.as_ref().expect("only close and drop take the store out")
    }

    fn block_on<T>(&self, future: impl Future<Output = T>) -> T {
        self.runtime.block_on(future)
    }

    /// See [`Embedded::write`].
    pub fn write(&self, command: Command) -> Result<Response, EmbeddedError> {
        self.block_on(self.inner().write(command))
    }

    /// See [`Embedded::put`].
    pub fn put(&self, key: &[u8], value: &[u8]) -> Result<(), EmbeddedError> {
        self.block_on(self.inner().put(key, value))
    }

    /// See [`Embedded::set_with_ttl`].
    pub fn set_with_ttl(&self, key: &[u8], value: &[u8], ttl: Duration) -> Result<(), EmbeddedError> {
        self.block_on(self.inner().set_with_ttl(key, value, ttl))
    }

    /// See [`Embedded::delete`].
    pub fn delete(&self, key: &[u8]) -> Result<bool, EmbeddedError> {
        self.block_on(self.inner().delete(key))
    }

    /// See [`Embedded::cas`].
    pub fn cas(&self, key: &[u8], expected: Option<&[u8]>, new: Option<&[u8]>) -> Result<CasOutcome, EmbeddedError> {
        self.block_on(self.inner().cas(key, expected, new))
    }

    /// See [`Embedded::get`].
    pub fn get(&self, key: &[u8]) -> Option<Value> {
        self.inner().get(key)
    }

    /// See [`Embedded::scan`].
    pub fn scan(&self, start: Bound<&[u8]>, end: Bound<&[u8]>, limit: usize) -> Vec<(Key, Value)> {
        self.inner().scan(start, end, limit)
    }

    /// See [`Embedded::len`].
    pub fn len(&self) -> u64 {
        self.inner().len()
    }

    /// See [`Embedded::is_empty`].
    pub fn is_empty(&self) -> bool {
        self.inner().is_empty()
    }

    /// See [`Embedded::snapshot`].
    pub fn snapshot(&self) -> Result<(), EmbeddedError> {
        self.block_on(self.inner().snapshot())
    }

    /// See [`Embedded::close`].
    pub fn close(mut self) -> Result<(), EmbeddedError> {
        let inner = self.inner.take().expect("only close and drop take the store out");
        self.runtime.block_on(inner.close())
    }
}

impl Drop for BlockingEmbedded {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.take()
            && let Err(error) = self.runtime.block_on(inner.close())
        {
            tracing::error!(%error, "closing the embedded store failed");
        }
    }
}

/// The network of a one-member cluster: there is never anyone to send to.
struct NoNetwork;

fn no_peer() -> Unreachable<NodeConfig> {
    Unreachable::from_string("an embedded single-node store has no peers")
}

impl RaftNetworkFactory<NodeConfig> for NoNetwork {
    type Network = NoNetwork;

    async fn new_client(&mut self, _target: u64, _node: &KvNode) -> Self::Network {
        NoNetwork
    }
}

impl RaftNetworkV2<NodeConfig> for NoNetwork {
    type SnapshotData = Vec<u8>;

    async fn append_entries(
        &mut self,
        _rpc: AppendEntriesRequest<NodeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeConfig>, RPCError<NodeConfig>> {
        Err(no_peer().into())
    }

    async fn vote(
        &mut self,
        _rpc: VoteRequest<NodeConfig>,
        _option: RPCOption,
    ) -> Result<VoteResponse<NodeConfig>, RPCError<NodeConfig>> {
        Err(no_peer().into())
    }

    async fn full_snapshot(
        &mut self,
        _vote: VoteOf<NodeConfig>,
        _snapshot: SnapshotOf<NodeConfig, Vec<u8>>,
        _cancel: impl Future<Output = ReplicationClosed> + Send + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<NodeConfig>, StreamingError<NodeConfig>> {
        Err(no_peer().into())
    }
}
