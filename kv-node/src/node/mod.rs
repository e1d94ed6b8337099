//! A cluster member: durable storage under openraft, and the [request path](RequestPath)
//! every client operation takes. The node knows nothing of listeners: the composition root
//! ([`server`](crate::server)) binds the ports, hands each connection's requests to a node, and
//! forms or joins the cluster.
//!
//! [`Node::open`] opens the data directory ([`data_dir`](crate::storage::data_dir)), starts
//! openraft over it and the Raft network ([`transport`](crate::transport)), and starts the
//! snapshot policy, [active expiry](expiry) (the leader has due keys removed through the log)
//! and an [event hub](events) for what clients listen to. Operations go through
//! [`Node::path`]: writes through the Raft log, reads behind openraft's read-index barrier,
//! followers forwarding to the leader (see [`kv_core::request`]).

mod compaction;
mod env;
pub mod events;
pub mod expiry;
mod health;
mod metrics_text;
mod timed_fs;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use openraft::Config;
use openraft::Raft;
use openraft::SnapshotPolicy;
use openraft::errors::RaftError;
use openraft::type_config::async_runtime::WatchReceiver;
use tokio::sync::watch;

use kv_core::command::Limits;
use kv_core::command::Query;
use kv_core::command::Response;
use kv_core::raft::KvNode;
use kv_core::raft::state_machine::StateMachine;
use kv_core::raft::state_machine::StoreHandle;
use kv_core::request::RequestPath;
use kv_core::wire::OpError;
use kv_core::wire::Status;
use kv_core::wire::handshake::ClusterKey;

pub use env::NodeEnv;
pub use health::LostData;
pub use health::STALL_AFTER;

use crate::NodeConfig;
use crate::metrics::Metrics;
use crate::storage::FileSnapshotStore;
use crate::storage::FsyncPolicy;
use crate::storage::LogOptions;
use crate::storage::OsFs;
use crate::storage::SnapshotNowError;
use crate::storage::StorageError;
use crate::storage::WriterExit;
use crate::storage::data_dir;
use crate::storage::data_dir::DataDirOptions;
use crate::storage::snapshot_now;
use crate::tls::NodeTls;
use crate::tls::TlsOptions;
use crate::transport::Network;
use crate::transport::Peers;
use crate::transport::TransportOptions;
use timed_fs::TimedFs;

/// The state machine of a native node.
pub type Machine = StateMachine<NodeConfig, FileSnapshotStore<NodeConfig>>;
/// openraft as a native node runs it.
pub type NodeRaft = Raft<NodeConfig, Machine>;
/// The request path of a native node.
pub type NodePath = RequestPath<NodeConfig, Machine, NodeEnv>;

/// How to run a node.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    /// This node's id (unique in the cluster, non-zero).
    pub id: u64,
    /// Where the log and snapshots live.
    pub data_dir: PathBuf,
    /// Address of the RESP port (port 0 picks a free one).
    pub client_addr: String,
    /// Address of the Raft port (port 0 picks a free one).
    pub raft_addr: String,
    /// Address of the admin HTTP port, if any.
    pub admin_addr: Option<String>,
    /// The initial members (including this node), for forming a new cluster.
    pub peers: BTreeMap<u64, KvNode>,
    /// Client address of a member to join through.
    pub join: Option<String>,
    /// Members to reach at these addresses instead of the Raft address they advertise (NAT,
    /// tunnels, or a test's fault-injecting proxies).
    pub routes: BTreeMap<u64, String>,
    /// Password clients must give with AUTH, if any.
    pub password: Option<String>,
    /// The secret members prove to each other on the Raft port ([`NodeOptions::cluster_key`]).
    pub cluster_secret: Option<String>,
    /// TLS on every port, if set ([`crate::tls`]).
    pub tls: Option<TlsOptions>,
    /// When storage fsyncs.
    pub fsync: FsyncPolicy,
    /// Snapshot (and purge the log) once this many entries, and at least a quarter as many
    /// entries as the store holds keys, were applied since the last snapshot; `None`: only on
    /// request.
    /// See [`compaction`].
    pub snapshot_every: Option<u64>,
    /// Entries kept in the log behind a snapshot, so slightly lagging followers need no snapshot.
    pub keep_logs: u64,
    /// Shortest election timeout; the longest is twice that, the heartbeat a fifth.
    pub election_timeout: Duration,
    /// How long a client operation may take before it is answered with an error.
    pub request_timeout: Duration,
    /// Key and value size limits.
    pub limits: Limits,
    /// Longest bulk string a client may send, in bytes.
    pub max_bulk_len: usize,
    /// Most client connections open at once (`maxclients`); more are refused.
    pub max_clients: usize,
    /// Close a client connection idle this long (`timeout`); `None`: never.
    pub idle_timeout: Option<Duration>,
    /// Unsent reply bytes past which a connection stops executing commands until the client
    /// reads them (back-pressure on a client that pipelines without reading).
    pub output_limit: usize,
    /// Transport tuning.
    pub transport: TransportOptions,
}

impl NodeOptions {
    /// The key the Raft port's handshake proves: from the cluster secret; without one, from
    /// the password, so that a node with a password never serves strangers on its Raft port
    /// (forwarded operations would side-step AUTH); with neither, the open key anyone can
    /// compute (the node warns when it starts).
    pub fn cluster_key(&self) -> ClusterKey {
        match (&self.cluster_secret, &self.password) {
            (Some(secret), _) => ClusterKey::new(secret.as_bytes()),
            (None, Some(password)) => ClusterKey::new(password.as_bytes()),
            (None, None) => ClusterKey::open(),
        }
    }
}

impl Default for NodeOptions {
    fn default() -> Self {
        NodeOptions {
            id: 1,
            data_dir: PathBuf::from("quorumkv-data"),
            client_addr: "127.0.0.1:7379".to_string(),
            raft_addr: "127.0.0.1:7380".to_string(),
            admin_addr: None,
            peers: BTreeMap::new(),
            join: None,
            routes: BTreeMap::new(),
            password: None,
            cluster_secret: None,
            tls: None,
            fsync: FsyncPolicy::Always,
            snapshot_every: Some(100_000),
            keep_logs: 1_000,
            election_timeout: Duration::from_millis(400),
            request_timeout: Duration::from_secs(5),
            limits: Limits::default(),
            max_bulk_len: 8 << 20,
            max_clients: default_max_clients(),
            idle_timeout: None,
            output_limit: 1 << 20,
            transport: TransportOptions::default(),
        }
    }
}

/// File descriptors kept free for what a node opens besides client connections: log
/// segments, snapshots, peers' connections, the admin port.
const RESERVED_FDS: u64 = 256;

/// The default `maxclients`: 10,000 (Redis's default), or fewer if the process may not open
/// that many files with [`RESERVED_FDS`] kept free.
pub fn default_max_clients() -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own and reads nothing else.
    let open_files = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        limit.rlim_cur
    } else {
        1024
    };
    usize::try_from(open_files.saturating_sub(RESERVED_FDS).clamp(16, 10_000)).unwrap_or(10_000)
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A port could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// The data directory could not be opened.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The options are inconsistent.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// openraft refused to start.
    #[error("raft failed to start: {0}")]
    Raft(String),
    /// The operating system gave no random bytes.
    #[error("no randomness from the operating system: {0}")]
    Randomness(getrandom::Error),
}

/// A running node. Clones share it.
#[derive(Clone)]
pub struct Node(Arc<Inner>);

struct Inner {
    options: NodeOptions,
    path: NodePath,
    store: StoreHandle,
    snapshots: FileSnapshotStore<NodeConfig>,
    metrics: Arc<Metrics>,
    tls: Option<NodeTls>,
    shutdown: watch::Sender<bool>,
    writer_exit: Mutex<Option<WriterExit>>,
    lost_data: LostData,
    events: Arc<events::EventHub>,
}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node")
            .field("id", &self.0.options.id)
            .finish_non_exhaustive()
    }
}

impl Node {
    /// Opens the data directory and starts Raft over it. `options` carries the addresses the
    /// node advertises (the composition root binds them first, so they are real). The node
    /// serves nothing until someone hands it requests, and is not yet a cluster member unless
    /// its data says so: see [`Node::initialize`].
    pub async fn open(options: NodeOptions) -> Result<Node, StartError> {
        if options.id == 0 {
            return Err(StartError::Config("node id 0 is reserved; use 1 or more".to_string()));
        }
        if !options.peers.is_empty() && !options.peers.contains_key(&options.id) {
            return Err(StartError::Config(format!(
                "the peer list does not name this node (id {})",
                options.id
            )));
        }
        // The store's key index hashes keys that clients choose: its seed must be secret.
        let mut seed = [0; 8];
        getrandom::fill(&mut seed).map_err(StartError::Randomness)?;
        kv_core::store::seed_key_hash(u64::from_le_bytes(seed));
        let metrics = Arc::new(Metrics::default());
        let fs = Arc::new(TimedFs::new(Arc::new(OsFs), metrics.clone()));
        let dir_options = DataDirOptions {
            create_if_missing: true,
            fsync: options.fsync,
            log: LogOptions::default(),
            node_id: Some(options.id),
        };
        let dir = data_dir::open_async(fs, &options.data_dir, dir_options).await?;
        let writer_exit = dir.log.writer_exit();
        let snapshots = dir.snapshots.clone();
        let events = Arc::new(events::EventHub::default());
        let machine = Machine::new(options.limits, dir.snapshots).with_events(events.sink());
        let store = machine.store();

        let election_ms = u64::try_from(options.election_timeout.as_millis())
            .unwrap_or(u64::MAX)
            .max(10);
        let config = Config {
            cluster_name: "quorumkv".to_string(),
            heartbeat_interval: (election_ms / 5).max(1),
            election_timeout_min: election_ms,
            election_timeout_max: election_ms * 2,
            install_snapshot_timeout: election_ms.max(2_000),
            // The node triggers snapshots itself, by a policy that scales with the store.
            snapshot_policy: SnapshotPolicy::Never,
            max_in_snapshot_log_to_keep: options.keep_logs,
            // A follower answers an AppendEntries once its entries are durable, and a stream
            // sends the next only then: openraft's 300 entries per message split one group
            // commit of 50 pipelining clients (800 writes) into three follower fsyncs in a
            // row. 1,024 takes it in one, and keeps messages of entries up to 16 KiB on
            // average under the 16 MiB frame limit.
            max_payload_entries: 1024,
            enable_tick: true,
            // A restarted leader must win a new election, in a new term. Restored in its old
            // term, it may have lost entries it had sent but not yet written (openraft
            // replicates before the leader's own flush) and then write different entries
            // under the same log ids as a follower that kept the old ones: the replicas
            // diverge. kv-chaos found it (docs/reliability.md, seeds 314 and 324).
            enable_leader_restore: Some(false),
            ..Config::default()
        };
        let config = Arc::new(config.validate().map_err(|e| StartError::Config(e.to_string()))?);
        let tls = match &options.tls {
            Some(tls) => Some(NodeTls::new(tls).map_err(|e| StartError::Config(e.to_string()))?),
            None => None,
        };
        let peers = Peers::new(
            options.transport,
            options.cluster_key(),
            tls.as_ref().map(|t| t.connector.clone()),
            metrics.clone(),
        );
        let routes = Arc::new(options.routes.clone());
        let network = Network::new(options.id, peers.clone(), routes.clone());
        let raft = Raft::new(options.id, config, network, dir.log, machine)
            .await
            .map_err(|e| StartError::Raft(e.to_string()))?;
        let env = NodeEnv::new(peers, routes, metrics.clone(), options.request_timeout);
        let path = RequestPath::new(
            options.id,
            raft,
            store.clone(),
            options.limits,
            options.request_timeout,
            env,
        );
        let (shutdown, _) = watch::channel(false);
        let node = Node(Arc::new(Inner {
            options,
            path,
            store,
            snapshots,
            metrics,
            tls,
            shutdown,
            writer_exit: Mutex::new(Some(writer_exit)),
            lost_data: LostData::default(),
            events,
        }));
        tokio::spawn(health::watch_replication(node.clone()));
        tokio::spawn(expiry::expire_due_keys(node.clone()));
        if let Some(every) = node.0.options.snapshot_every {
            tokio::spawn(compaction::compact_by_policy(node.clone(), every));
        }
        Ok(node)
    }

    /// Forms the cluster from the options unless this node already has a Raft log or is to
    /// join one: with no peers, a one-member cluster of this node; with `peers`, the initial
    /// membership (every node started with the same list calls this; openraft accepts
    /// identical initial memberships, and the vote decides the leader). Returns whether the
    /// node still has to join a cluster through [`NodeOptions::join`].
    pub async fn initialize(&self) -> Result<bool, StartError> {
        let raft = self.raft();
        if raft
            .is_initialized()
            .await
            .map_err(|e| StartError::Raft(e.to_string()))?
        {
            tracing::info!("resuming with the data on disk");
            return Ok(false);
        }
        let options = &self.0.options;
        if options.join.is_some() {
            return Ok(true);
        }
        let members = if options.peers.is_empty() {
            BTreeMap::from([(options.id, self.self_node())])
        } else {
            options.peers.clone()
        };
        match raft.initialize(members).await {
            Ok(()) => Ok(false),
            // Another node with the same peer list got there first, or we did before a crash.
            Err(RaftError::APIError(e)) => {
                tracing::info!(error = %e, "not initializing");
                Ok(false)
            }
            Err(e) => Err(StartError::Raft(e.to_string())),
        }
    }

    /// This node's addresses, as it advertises them to the cluster.
    pub fn self_node(&self) -> KvNode {
        KvNode {
            raft_addr: self.0.options.raft_addr.clone(),
            client_addr: self.0.options.client_addr.clone(),
        }
    }

    /// This node's id.
    pub fn id(&self) -> u64 {
        self.0.options.id
    }

    /// The options it runs with (addresses as bound).
    pub fn options(&self) -> &NodeOptions {
        &self.0.options
    }

    /// Its metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.0.metrics
    }

    /// TLS acceptors and connector, when the node runs with TLS.
    pub fn tls(&self) -> Option<&NodeTls> {
        self.0.tls.as_ref()
    }

    /// The request path every client operation takes.
    pub fn path(&self) -> &NodePath {
        &self.0.path
    }

    /// Its openraft instance.
    pub fn raft(&self) -> &NodeRaft {
        self.0.path.raft()
    }

    /// A receiver that changes to `true` when the node shuts down.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.0.shutdown.subscribe()
    }

    /// Whether this node holds less than the leader believes it does (see [`LostData`]).
    pub fn lost_data(&self) -> &LostData {
        &self.0.lost_data
    }

    /// Its event hub: pub/sub, keyspace notifications and watches.
    pub fn events(&self) -> &Arc<events::EventHub> {
        &self.0.events
    }

    /// Waits until this node has applied the entry at `index` (or the request timeout).
    pub async fn wait_applied(&self, index: u64) -> Result<(), OpError> {
        let limit = self.0.options.request_timeout;
        self.raft()
            .wait(Some(limit))
            .applied_index_at_least(Some(index), "the watch start")
            .await
            .map(|_| ())
            .map_err(|_| OpError::Timeout(limit))
    }

    /// Answers `query` from this node's applied state, with no barrier.
    pub fn query_local(&self, query: &Query) -> Response {
        self.0.path.query_local(query)
    }

    /// Triggers a snapshot and waits until one covers everything applied when it was asked.
    pub async fn snapshot(&self) -> Result<(), OpError> {
        let limit = self.0.options.request_timeout * 6;
        snapshot_now(self.raft(), limit).await.map(|_| ()).map_err(|e| match e {
            SnapshotNowError::Stopped(reason) => OpError::Unavailable(reason),
            SnapshotNowError::TimedOut => OpError::Timeout(limit),
        })
    }

    /// This node's view of the cluster.
    pub fn status(&self) -> Status {
        self.0.path.status()
    }

    /// Metrics in the Prometheus text format, Raft state and storage sizes included.
    pub fn render_metrics(&self) -> String {
        metrics_text::render(
            &self.status(),
            &self.0.metrics,
            self.0.snapshots.size(),
            self.0.store.read().len(),
        )
    }

    /// Resolves when Raft stops by itself (a fatal storage or Raft error), not because
    /// [`Node::shutdown`] was called; with the reason.
    pub async fn fatal(&self) -> String {
        // Server metrics change with the state, leader and membership only: not with every
        // applied batch or read barrier, as `Raft::metrics` does.
        let mut metrics = self.raft().server_metrics();
        let mut shutdown = self.shutdown_signal();
        loop {
            if metrics.borrow_watched().state == openraft::ServerState::Shutdown && !*shutdown.borrow() {
                return "the Raft core shut down".to_string();
            }
            tokio::select! {
                changed = metrics.changed() => if changed.is_err() {
                    if *shutdown.borrow() {
                        std::future::pending::<()>().await;
                    }
                    return "the Raft core is gone".to_string();
                },
                _ = shutdown.changed() => std::future::pending::<()>().await,
            }
        }
    }

    /// Stops Raft, tells every server of the node to stop, and waits until the log is closed
    /// and the directory unlocked.
    pub async fn shutdown(&self) {
        self.0.shutdown.send_replace(true);
        if let Err(error) = self.raft().shutdown().await {
            tracing::error!(%error, "raft did not stop cleanly");
        }
        let exit = self.0.writer_exit.lock().expect("writer exit lock poisoned").take();
        if let Some(exit) = exit
            && let Err(error) = tokio::task::spawn_blocking(move || exit.wait()).await
        {
            tracing::error!(%error, "waiting for the log writer failed");
        }
        tracing::info!(id = self.id(), "node stopped");
    }
}
