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

use kv_core::command::Command;
use kv_core::command::Expiry;
use kv_core::command::Key;
use kv_core::command::LimitError;
use kv_core::command::Limits;
use kv_core::command::Query;
use kv_core::command::Response;
use kv_core::command::SetCondition;
use kv_core::command::Value;
use kv_core::raft::KvNode;
use kv_core::raft::state_machine::StateMachine;
use kv_core::request::Environment;
use kv_core::request::RequestPath;
use kv_core::request::Results;
use kv_core::wire::Op;
use kv_core::wire::OpError;

use super::FsyncPolicy;
use super::data_dir;
use super::data_dir::DataDirOptions;
use super::error::StorageError;
use super::fs::Fs;
use super::fs::OsFs;
use super::log_store::FlushHandle;
use super::log_store::LogOptions;
use super::log_store::WriterExit;
use super::snapshot::FileSnapshotStore;
use super::snapshot::SnapshotNowError;
use super::snapshot::snapshot_now;
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
    requests: RequestPath<NodeConfig, Machine, Alone>,
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
        let dir_options = DataDirOptions {
            create_if_missing: options.create_if_missing,
            fsync: options.fsync,
            log: LogOptions {
                segment_bytes: options.segment_bytes,
                ..LogOptions::default()
            },
            node_id: None,
        };
        let dir = data_dir::open_async(options.fs.clone(), &path, dir_options).await?;
        let writer_exit = dir.log.writer_exit();
        let flush_handle = dir.log.flush_handle();
        let (log, snapshots) = (dir.log, dir.snapshots);
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
        let path_of_requests = RequestPath::new(NODE_ID, raft, store, options.limits, WAIT, Alone);
        Ok(Embedded {
            requests: path_of_requests,
            writer_exit,
            log: flush_handle,
            path,
        })
    }

    /// Proposes any write command and returns its response once it is durable and applied.
    pub async fn write(&self, command: Command) -> Result<Response, EmbeddedError> {
        self.write_op(command, None).await
    }

    /// Proposes `command` down the request path; `ttl_ms` is resolved against the clock there.
    async fn write_op(&self, command: Command, ttl_ms: Option<u64>) -> Result<Response, EmbeddedError> {
        // Checked here as well, for the typed error; the request path checks it again.
        command.validate(self.requests.limits())?;
        match self.requests.execute(Op::Write { command, ttl_ms }).await {
            Ok(response) => Ok(response),
            Err(OpError::OutcomeUnknown(_) | OpError::Timeout(_)) => Err(EmbeddedError::Timeout("the write")),
            Err(e) => Err(EmbeddedError::Stopped(e.to_string())),
        }
    }

    /// Sets `key` to `value`, with no expiry.
    pub async fn put(&self, key: &[u8], value: &[u8]) -> Result<(), EmbeddedError> {
        self.set(key, value, None).await
    }

    /// Sets `key` to `value`, expiring after `ttl`.
    pub async fn set_with_ttl(&self, key: &[u8], value: &[u8], ttl: Duration) -> Result<(), EmbeddedError> {
        self.set(key, value, Some(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX)))
            .await
    }

    async fn set(&self, key: &[u8], value: &[u8], ttl_ms: Option<u64>) -> Result<(), EmbeddedError> {
        let command = Command::SetQuiet {
            key: key.to_vec(),
            value: value.to_vec(),
            condition: SetCondition::Always,
            expiry: Expiry::Never,
        };
        self.write_op(command, ttl_ms).await.map(drop)
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

    /// Reads from the applied state: every acknowledged write is applied before it is
    /// acknowledged, so no barrier is needed on a single node.
    fn query(&self, query: &Query) -> Response {
        self.requests.query_local(query)
    }

    /// Builds a snapshot of everything applied so far, saves it, and purges the log it covers.
    pub async fn snapshot(&self) -> Result<(), EmbeddedError> {
        let raft = self.requests.raft();
        let applied = snapshot_now(raft, WAIT).await.map_err(|e| match e {
            SnapshotNowError::Stopped(reason) => EmbeddedError::Stopped(reason),
            SnapshotNowError::TimedOut => EmbeddedError::Timeout("the snapshot"),
        })?;
        raft.wait(Some(WAIT))
            .metrics(|m| m.purged >= applied, "the purge")
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
        self.requests
            .raft()
            .shutdown()
            .await
            .map_err(|e| EmbeddedError::Stopped(e.to_string()))?;
        drop(self.requests);
        let exit = self.writer_exit;
        tokio::time::timeout(WAIT, tokio::task::spawn_blocking(move || exit.wait()))
            .await
            .map_err(|_| EmbeddedError::Timeout("the log to close"))?
            .map_err(|e| EmbeddedError::Stopped(e.to_string()))?;
        Ok(())
    }
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

/// The request path's environment in a one-member cluster: the wall clock, and no one to
/// forward to (this node always leads).
#[derive(Debug, Clone)]
struct Alone;

impl Environment for Alone {
    fn now_ms(&self) -> u64 {
        crate::clock::now_ms()
    }

    async fn forward(&self, _leader: u64, _node: KvNode, _ops: Vec<Op>) -> Result<Results, OpError> {
        Err(OpError::NoLeader)
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
