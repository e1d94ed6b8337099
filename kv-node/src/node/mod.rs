//! A cluster member: durable storage, openraft, and the three ports a node listens on.
//!
//! [`Node::start`] opens the data directory (the same layout as [`Embedded`](crate::storage::Embedded)),
//! binds the Raft port ([`transport`](crate::transport)), the client port ([`resp`](crate::resp)) and
//! optionally the admin HTTP port ([`admin`](crate::admin)), and forms or joins the cluster:
//!
//! - no peers and no join address: a one-member cluster of this node;
//! - `peers`: every node started with the same peer list calls `initialize` with it (openraft
//!   accepts identical initial memberships on several nodes; the vote decides the leader);
//! - `join`: the node asks a member over RESP to add it as a learner (`RAFT ADD-LEARNER`), then
//!   to promote it (`RAFT PROMOTE`), retrying until both succeed.
//!
//! A node that already holds a Raft log skips all three and resumes with its data.
//!
//! # Operations
//!
//! Client commands become [`Op`]s. [`Node::execute`] runs one on this node if it leads, and
//! otherwise forwards it to the leader over the Raft port ([`RaftRequest::Forward`]) and
//! returns the leader's answer. Writes go through the Raft log; reads wait for openraft's
//! read-index barrier and then query the local state machine. [`ReadMode::Stale`] skips the
//! barrier and reads whatever this node has applied.

mod timed_fs;

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;
use std::time::SystemTime;

use openraft::ChangeMembers;
use openraft::Config;
use openraft::Raft;
use openraft::ReadPolicy;
use openraft::ServerState;
use openraft::SnapshotPolicy;
use openraft::alias::OneshotReceiverOf;
use openraft::errors::ClientWriteError;
use openraft::errors::RaftError;
use openraft::impls::ProgressResponder;
use openraft::raft::ClientWriteResult;
use openraft::type_config::async_runtime::WatchReceiver;
use serde::Deserialize;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::net::TcpStream;
use tokio::sync::watch;

use kv_core::command::Command;
use kv_core::command::Expiry;
use kv_core::command::Limits;
use kv_core::command::Query;
use kv_core::command::Response;
use kv_core::command::Write;
use kv_core::raft::KvNode;
use kv_core::raft::state_machine::StateMachine;
use kv_core::raft::state_machine::StoreHandle;

use crate::NodeConfig;
use crate::client::Client;
use crate::metrics::Metrics;
use crate::metrics::Sample;
use crate::storage::FileSnapshotStore;
use crate::storage::FsyncPolicy;
use crate::storage::LogOptions;
use crate::storage::LogStore;
use crate::storage::OsFs;
use crate::storage::StorageError;
use crate::storage::WriterExit;
use crate::transport;
use crate::transport::CallError;
use crate::transport::Network;
use crate::transport::Peers;
use crate::transport::TransportOptions;
use crate::transport::message::RaftReply;
use crate::transport::message::RaftRequest;
use timed_fs::TimedFs;

/// The state machine of a native node.
pub type Machine = StateMachine<NodeConfig, FileSnapshotStore<NodeConfig>>;
/// openraft as a native node runs it.
pub type NodeRaft = Raft<NodeConfig, Machine>;

/// File in the data directory naming the node id the directory belongs to.
const ID_FILE: &str = "node-id";

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
    /// When storage fsyncs.
    pub fsync: FsyncPolicy,
    /// Snapshot (and purge the log) once this many entries, and at least half as many entries
    /// as the store holds keys, were applied since the last snapshot; `None`: only on request.
    /// See [`compact_by_policy`].
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
    /// Transport tuning.
    pub transport: TransportOptions,
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
            fsync: FsyncPolicy::Always,
            snapshot_every: Some(10_000),
            keep_logs: 1_000,
            election_timeout: Duration::from_millis(400),
            request_timeout: Duration::from_secs(5),
            limits: Limits::default(),
            max_bulk_len: 8 << 20,
            transport: TransportOptions::default(),
        }
    }
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
}

/// A client's operation, as executed by the leader (and forwarded to it by followers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// A write through the Raft log.
    Write {
        /// The command.
        command: Command,
        /// A relative time to live in milliseconds, resolved against the clock of the leader
        /// that proposes the write: it becomes the expiry of a `Set` or the time of a
        /// `SetExpiry`.
        ttl_ms: Option<u64>,
    },
    /// A linearizable read.
    Read(Query),
    /// Adds a learner, waiting until it has caught up.
    AddLearner {
        /// Its id.
        id: u64,
        /// Its addresses.
        node: KvNode,
    },
    /// Makes a learner a voter.
    Promote {
        /// Its id.
        id: u64,
    },
    /// Removes a voter or learner from the cluster.
    Remove {
        /// Its id.
        id: u64,
    },
    /// Hands leadership to another voter.
    TransferLeader {
        /// The voter.
        to: u64,
    },
}

/// How a read is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadMode {
    /// After the leader's read-index barrier: sees every write acknowledged before it.
    Linearizable,
    /// From this node's applied state, possibly behind the leader.
    Stale,
}

/// Why an operation failed. Crosses the Raft port when a forwarded operation fails.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum NodeError {
    /// This node does not lead (and the operation was already forwarded once).
    #[error("node {node} is not the leader (leader: {leader:?})")]
    NotLeader {
        /// This node.
        node: u64,
        /// The leader it knows of.
        leader: Option<u64>,
    },
    /// No leader is known: an election is in progress or no quorum is reachable.
    #[error("no leader is known (election in progress or no quorum reachable)")]
    NoLeader,
    /// The operation did not run: the leader is unreachable or the node is stopping.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// No answer in time; a write may or may not have taken effect.
    #[error("timed out after {0:?}; a write may or may not have taken effect")]
    Timeout(Duration),
    /// The operation is invalid (size limits, membership rules).
    #[error("{0}")]
    Rejected(String),
}

/// A write submitted by [`Node::submit_write`], to be awaited with [`WriteTicket::finish`].
pub struct WriteTicket {
    state: TicketState,
}

enum TicketState {
    Proposed(OneshotReceiverOf<NodeConfig, ClientWriteResult<NodeConfig>>, Op),
    Done(Result<Response, NodeError>),
    Forward(Op),
}

impl fmt::Debug for WriteTicket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteTicket").finish_non_exhaustive()
    }
}

/// A node's view of the cluster.
#[derive(Debug, Clone)]
pub struct Status {
    /// This node.
    pub id: u64,
    /// `leader`, `follower`, `candidate`, `learner` or `shutdown`.
    pub role: &'static str,
    /// Current term.
    pub term: u64,
    /// The leader, if known, and its addresses.
    pub leader: Option<(u64, KvNode)>,
    /// Last log index.
    pub last_log_index: u64,
    /// Last committed index.
    pub commit_index: u64,
    /// Last applied index.
    pub applied_index: u64,
    /// Last index in the snapshot.
    pub snapshot_index: u64,
    /// Last index compacted away from the log (covered by the snapshot).
    pub purged_index: u64,
    /// Voters and their addresses.
    pub voters: Vec<(u64, KvNode)>,
    /// Learners and their addresses.
    pub learners: Vec<(u64, KvNode)>,
}

/// A running node. Clones share it.
#[derive(Clone)]
pub struct Node(Arc<Inner>);

struct Inner {
    options: NodeOptions,
    raft: NodeRaft,
    store: StoreHandle,
    peers: Peers,
    metrics: Arc<Metrics>,
    shutdown: watch::Sender<bool>,
    writer_exit: Mutex<Option<WriterExit>>,
}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node")
            .field("id", &self.0.options.id)
            .finish_non_exhaustive()
    }
}

async fn bind(addr: &str) -> Result<(TcpListener, SocketAddr), StartError> {
    let bind_error = |source| StartError::Bind {
        addr: addr.to_string(),
        source,
    };
    let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
    let local = listener.local_addr().map_err(bind_error)?;
    Ok((listener, local))
}

impl Node {
    /// Opens the data directory, binds the ports, starts Raft and the servers, and forms or
    /// joins the cluster (see the module docs). Returns once the ports accept connections; the
    /// cluster may still be electing a leader.
    pub async fn start(mut options: NodeOptions) -> Result<Node, StartError> {
        if options.id == 0 {
            return Err(StartError::Config("node id 0 is reserved; use 1 or more".to_string()));
        }
        let (raft_listener, raft_addr) = bind(&options.raft_addr).await?;
        let (client_listener, client_addr) = bind(&options.client_addr).await?;
        let admin = match &options.admin_addr {
            Some(addr) => Some(bind(addr).await?),
            None => None,
        };
        options.raft_addr = raft_addr.to_string();
        options.client_addr = client_addr.to_string();
        if let Some((_, addr)) = &admin {
            options.admin_addr = Some(addr.to_string());
        }
        if !options.peers.is_empty() && !options.peers.contains_key(&options.id) {
            return Err(StartError::Config(format!(
                "the peer list does not name this node (id {})",
                options.id
            )));
        }

        let metrics = Arc::new(Metrics::default());
        let fs: Arc<dyn crate::storage::Fs> = Arc::new(TimedFs::new(Arc::new(OsFs), metrics.clone()));
        let dir = &options.data_dir;
        let data_dir = |source| StorageError::DataDir {
            path: dir.clone(),
            source,
        };
        fs.create_dir_all(dir).map_err(data_dir)?;
        check_node_id(dir, options.id)?;
        for sub in ["log", "snapshots"] {
            let path = dir.join(sub);
            fs.create_dir_all(&path)
                .map_err(|source| StorageError::DataDir { path, source })?;
        }
        // Make the directories themselves durable: files in them are synced, their names not.
        if options.fsync == FsyncPolicy::Always {
            let parent = dir.parent().filter(|p| !p.as_os_str().is_empty());
            for d in parent.into_iter().chain([dir.as_path()]) {
                fs.sync_dir(d).map_err(|e| StorageError::io("sync", d, e))?;
            }
        }
        let log_options = LogOptions {
            fsync: options.fsync,
            ..LogOptions::default()
        };
        let log = LogStore::open(fs.clone(), &dir.join("log"), log_options)?;
        let writer_exit = log.writer_exit();
        let snapshots = FileSnapshotStore::open(fs, &dir.join("snapshots"), options.fsync)?;
        let machine = Machine::new(options.limits, snapshots);
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
            enable_tick: true,
            ..Config::default()
        };
        let config = Arc::new(config.validate().map_err(|e| StartError::Config(e.to_string()))?);
        let peers = Peers::new(options.transport, metrics.clone());
        let network = Network::new(options.id, peers.clone(), Arc::new(options.routes.clone()));
        let raft = Raft::new(options.id, config, network, log, machine)
            .await
            .map_err(|e| StartError::Raft(e.to_string()))?;

        let (shutdown, _) = watch::channel(false);
        let node = Node(Arc::new(Inner {
            options,
            raft,
            store,
            peers,
            metrics,
            shutdown,
            writer_exit: Mutex::new(Some(writer_exit)),
        }));
        tokio::spawn(transport::serve(raft_listener, node.clone()));
        tokio::spawn(crate::resp::serve(client_listener, node.clone()));
        if let Some((listener, _)) = admin {
            tokio::spawn(crate::admin::serve(listener, node.clone()));
        }
        if let Some(every) = node.0.options.snapshot_every {
            tokio::spawn(compact_by_policy(node.clone(), every));
        }
        node.bootstrap().await?;
        tracing::info!(
            id = node.id(),
            client = %node.0.options.client_addr,
            raft = %node.0.options.raft_addr,
            admin = ?node.0.options.admin_addr,
            "node started"
        );
        Ok(node)
    }

    /// Forms or joins the cluster unless this node already has a Raft log.
    async fn bootstrap(&self) -> Result<(), StartError> {
        let raft = &self.0.raft;
        if raft
            .is_initialized()
            .await
            .map_err(|e| StartError::Raft(e.to_string()))?
        {
            tracing::info!("resuming with the data on disk");
            return Ok(());
        }
        let options = &self.0.options;
        if let Some(member) = options.join.clone() {
            tokio::spawn(self.clone().join(member));
            return Ok(());
        }
        let members = if options.peers.is_empty() {
            BTreeMap::from([(options.id, self.self_node())])
        } else {
            options.peers.clone()
        };
        match raft.initialize(members).await {
            Ok(()) => Ok(()),
            // Another node with the same peer list got there first, or we did before a crash.
            Err(RaftError::APIError(e)) => {
                tracing::info!(error = %e, "not initializing");
                Ok(())
            }
            Err(e) => Err(StartError::Raft(e.to_string())),
        }
    }

    /// Joins through `member` (a client address): add as learner, then promote; retried.
    async fn join(self, member: String) {
        let id = self.id();
        let me = self.self_node();
        let mut shutdown = self.0.shutdown.subscribe();
        let mut delay = Duration::from_millis(100);
        loop {
            let attempt = async {
                let mut client = Client::connect(&member, self.0.options.password.as_deref()).await?;
                let id_arg = id.to_string();
                let add = [
                    "RAFT",
                    "ADD-LEARNER",
                    id_arg.as_str(),
                    me.raft_addr.as_str(),
                    me.client_addr.as_str(),
                ];
                client.call_ok(&add).await?;
                client.call_ok(&["RAFT", "PROMOTE", id_arg.as_str()]).await.map(drop)
            };
            match attempt.await {
                Ok(()) => {
                    tracing::info!(%member, "joined the cluster");
                    return;
                }
                Err(error) => tracing::warn!(%member, %error, "joining failed; retrying"),
            }
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = shutdown.changed() => return,
            }
            delay = (delay * 2).min(Duration::from_secs(2));
        }
    }

    fn self_node(&self) -> KvNode {
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

    /// Its openraft instance.
    pub fn raft(&self) -> &NodeRaft {
        &self.0.raft
    }

    /// A receiver that changes to `true` when the node shuts down.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.0.shutdown.subscribe()
    }

    /// Accepts connections on one of the node's ports until the node shuts down, serving each
    /// on a task of its own with `handle`; `port` names the port in log lines.
    pub async fn accept_until_shutdown<F, Fut, E>(&self, listener: TcpListener, port: &'static str, handle: F)
    where
        F: Fn(TcpStream, SocketAddr) -> Fut,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: fmt::Display,
    {
        let mut shutdown = self.shutdown_signal();
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = shutdown.changed() => return,
            };
            match accepted {
                Ok((stream, peer)) => {
                    let connection = handle(stream, peer);
                    tokio::spawn(async move {
                        if let Err(error) = connection.await {
                            tracing::debug!(%peer, %error, "{port} connection closed");
                        }
                    });
                }
                Err(error) => {
                    tracing::warn!(%error, "accepting a {port} connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    /// Runs `op` here if this node leads, else forwards it to the leader.
    pub async fn execute(&self, op: Op) -> Result<Response, NodeError> {
        match self.execute_local(&op).await {
            Err(NodeError::NotLeader {
                leader: Some(leader), ..
            }) if leader != self.id() => self.forward(leader, op).await,
            Err(NodeError::NotLeader { leader: None, .. }) => Err(NodeError::NoLeader),
            result => result,
        }
    }

    /// Runs a forwarded `op` here, never forwarding it again.
    pub async fn execute_forwarded(&self, op: Op) -> Result<Response, NodeError> {
        self.execute_local(&op).await
    }

    /// Answers `query` from this node's applied state, with no barrier.
    pub fn query_local(&self, query: &Query) -> Response {
        self.0.store.read().query(query, now_ms())
    }

    /// Waits until this node's state reflects every write acknowledged before the call
    /// (openraft's read index). Fails with [`NodeError::NotLeader`] on a follower.
    pub async fn read_barrier(&self) -> Result<(), NodeError> {
        let barrier = self.0.raft.ensure_linearizable(ReadPolicy::ReadIndex);
        match tokio::time::timeout(self.0.options.request_timeout, barrier).await {
            Err(_) => Err(NodeError::Timeout(self.0.options.request_timeout)),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(match e.forward_to_leader() {
                Some(f) => NodeError::NotLeader {
                    node: self.id(),
                    leader: f.leader_id,
                },
                None => NodeError::Unavailable(e.to_string()),
            }),
        }
    }

    /// Reads `query` as `mode` asks: locally, or linearizably here or on the leader.
    pub async fn read(&self, query: Query, mode: ReadMode) -> Result<Response, NodeError> {
        match mode {
            ReadMode::Stale => Ok(self.query_local(&query)),
            ReadMode::Linearizable => self.execute(Op::Read(query)).await,
        }
    }

    /// Proposes a write without waiting for it: writes submitted one after another are
    /// applied in that order. On a follower the write is forwarded when the ticket is finished.
    pub async fn submit_write(&self, op: Op) -> WriteTicket {
        let Op::Write { command, ttl_ms } = &op else {
            return WriteTicket {
                state: TicketState::Forward(op),
            };
        };
        if !self.0.raft.is_leader() {
            return WriteTicket {
                state: TicketState::Forward(op),
            };
        }
        let write = match self.prepare(command, *ttl_ms) {
            Ok(write) => write,
            Err(e) => {
                return WriteTicket {
                    state: TicketState::Done(Err(e)),
                };
            }
        };
        let (responder, receiver) = ProgressResponder::complete_only();
        let state = match self.0.raft.client_write_ff(write, Some(responder)).await {
            Ok(()) => TicketState::Proposed(receiver, op),
            Err(e) => TicketState::Done(Err(NodeError::Unavailable(e.to_string()))),
        };
        WriteTicket { state }
    }

    /// Waits for a write submitted with [`Node::submit_write`].
    pub async fn finish(&self, ticket: WriteTicket) -> Result<Response, NodeError> {
        match ticket.state {
            TicketState::Done(result) => result,
            TicketState::Forward(op) => self.execute(op).await,
            TicketState::Proposed(receiver, op) => {
                let timeout = self.0.options.request_timeout;
                match tokio::time::timeout(timeout, receiver).await {
                    Err(_) => Err(NodeError::Timeout(timeout)),
                    Ok(Err(_)) => Err(NodeError::Unavailable("the node is stopping".to_string())),
                    Ok(Ok(Ok(reply))) => Ok(reply.data),
                    Ok(Ok(Err(ClientWriteError::ForwardToLeader(_)))) => self.execute(op).await,
                    Ok(Ok(Err(e))) => Err(self.write_error(e)),
                }
            }
        }
    }

    fn prepare(&self, command: &Command, ttl_ms: Option<u64>) -> Result<Write, NodeError> {
        command
            .validate(&self.0.options.limits)
            .map_err(|e| NodeError::Rejected(e.to_string()))?;
        let at_ms = now_ms();
        let mut command = command.clone();
        if let Some(ttl) = ttl_ms {
            let at = at_ms.saturating_add(ttl);
            match &mut command {
                Command::Set { expiry, .. } => *expiry = Expiry::At(at),
                Command::SetExpiry { at_ms, .. } => *at_ms = Some(at),
                _ => {}
            }
        }
        Ok(Write { at_ms, command })
    }

    fn write_error(&self, e: ClientWriteError<NodeConfig>) -> NodeError {
        match e {
            ClientWriteError::ForwardToLeader(f) => NodeError::NotLeader {
                node: self.id(),
                leader: f.leader_id,
            },
            ClientWriteError::LogEntryDiscarded(_) => NodeError::Timeout(Duration::ZERO),
            other => NodeError::Rejected(other.to_string()),
        }
    }

    fn raft_error(&self, e: RaftError<NodeConfig, ClientWriteError<NodeConfig>>) -> NodeError {
        match e {
            RaftError::APIError(e) => self.write_error(e),
            RaftError::Fatal(f) => NodeError::Unavailable(f.to_string()),
        }
    }

    async fn execute_local(&self, op: &Op) -> Result<Response, NodeError> {
        let raft = &self.0.raft;
        let timeout = self.0.options.request_timeout;
        let not_leader = || NodeError::NotLeader {
            node: self.id(),
            leader: raft.metrics().borrow_watched().current_leader,
        };
        match op {
            Op::Read(query) => {
                self.read_barrier().await?;
                Ok(self.query_local(query))
            }
            Op::Write { command, ttl_ms } => {
                let write = self.prepare(command, *ttl_ms)?;
                within(timeout, async {
                    raft.client_write(write)
                        .await
                        .map(|r| r.data)
                        .map_err(|e| self.raft_error(e))
                })
                .await
            }
            Op::AddLearner { id, node } => {
                // Waiting for the learner to catch up may take a while on a big store.
                within(timeout * 12, async {
                    raft.add_learner(*id, node.clone(), true)
                        .await
                        .map(|_| Response::Ok)
                        .map_err(|e| self.raft_error(e))
                })
                .await
            }
            Op::Promote { id } => {
                let change = ChangeMembers::AddVoterIds(BTreeSet::from([*id]));
                self.change_membership(change).await
            }
            Op::Remove { id } => {
                let is_voter = raft
                    .metrics()
                    .borrow_watched()
                    .membership_config
                    .membership()
                    .voter_ids()
                    .any(|v| v == *id);
                let change = if is_voter {
                    ChangeMembers::RemoveVoters(BTreeSet::from([*id]))
                } else {
                    ChangeMembers::RemoveNodes(BTreeSet::from([*id]))
                };
                self.change_membership(change).await
            }
            Op::TransferLeader { to } => {
                if !raft.is_leader() {
                    return Err(not_leader());
                }
                raft.trigger()
                    .transfer_leader(*to)
                    .await
                    .map(|()| Response::Ok)
                    .map_err(|e| NodeError::Unavailable(e.to_string()))
            }
        }
    }

    async fn change_membership(&self, change: ChangeMembers<u64, KvNode>) -> Result<Response, NodeError> {
        let timeout = self.0.options.request_timeout;
        match tokio::time::timeout(timeout, self.0.raft.change_membership(change, false)).await {
            Err(_) => Err(NodeError::Timeout(timeout)),
            Ok(result) => result.map(|_| Response::Ok).map_err(|e| self.raft_error(e)),
        }
    }

    /// Hands `op` to `leader` over the Raft port.
    async fn forward(&self, leader: u64, op: Op) -> Result<Response, NodeError> {
        let addr = match self.0.options.routes.get(&leader) {
            Some(route) => route.clone(),
            None => self
                .member(leader)
                .map(|node| node.raft_addr)
                .ok_or(NodeError::NoLeader)?,
        };
        self.0.metrics.forwarded.add(1);
        // The leader bounds the operation by its own timeout; allow for the round trip.
        let ttl = self.0.options.request_timeout + Duration::from_secs(1);
        match self.0.peers.call(&addr, &RaftRequest::Forward(op), ttl).await {
            Ok(RaftReply::Forwarded(result)) => result,
            Ok(_) => Err(NodeError::Unavailable(format!(
                "leader {leader} answered out of protocol"
            ))),
            Err(e @ (CallError::Unreachable { .. } | CallError::Refused { .. } | CallError::Protocol { .. })) => {
                Err(NodeError::Unavailable(e.to_string()))
            }
            Err(CallError::Timeout { after, .. }) => Err(NodeError::Timeout(after)),
            Err(CallError::Connection { .. }) => Err(NodeError::Timeout(Duration::ZERO)),
        }
    }

    /// The addresses of member `id`, from the current membership.
    pub fn member(&self, id: u64) -> Option<KvNode> {
        let metrics = self.0.raft.metrics().borrow_watched().clone();
        metrics.membership_config.membership().get_node(&id).cloned()
    }

    /// Triggers a snapshot and waits until it covers everything applied when it was asked.
    pub async fn snapshot(&self) -> Result<(), NodeError> {
        let raft = &self.0.raft;
        let applied = raft.metrics().borrow_watched().last_applied;
        raft.trigger()
            .snapshot()
            .await
            .map_err(|e| NodeError::Unavailable(e.to_string()))?;
        raft.wait(Some(self.0.options.request_timeout * 6))
            .metrics(|m| m.snapshot >= applied, "the snapshot")
            .await
            .map_err(|_| NodeError::Timeout(self.0.options.request_timeout * 6))?;
        Ok(())
    }

    /// This node's view of the cluster.
    pub fn status(&self) -> Status {
        let m = self.0.raft.metrics().borrow_watched().clone();
        let membership = m.membership_config.membership();
        let node = |id: u64| membership.get_node(&id).cloned().unwrap_or_default();
        let role = match m.state {
            ServerState::Leader => "leader",
            ServerState::Follower => "follower",
            ServerState::Candidate => "candidate",
            ServerState::Learner => "learner",
            ServerState::Shutdown => "shutdown",
        };
        let index = |id: Option<&openraft::alias::LogIdOf<NodeConfig>>| id.map_or(0, |id| id.index);
        Status {
            id: self.id(),
            role,
            term: m.current_term,
            leader: m.current_leader.map(|id| (id, node(id))),
            last_log_index: m.last_log_index.unwrap_or(0),
            commit_index: index(m.local_committed.as_ref()),
            applied_index: index(m.last_applied.as_ref()),
            snapshot_index: index(m.snapshot.as_ref()),
            purged_index: index(m.purged.as_ref()),
            voters: membership.voter_ids().map(|id| (id, node(id))).collect(),
            learners: membership.learner_ids().map(|id| (id, node(id))).collect(),
        }
    }

    /// Metrics in the Prometheus text format, Raft state and storage sizes included.
    pub fn render_metrics(&self) -> String {
        let status = self.status();
        let snapshot_bytes = std::fs::read_dir(self.0.options.data_dir.join("snapshots"))
            .map(|dir| {
                dir.filter_map(Result::ok)
                    .filter_map(|e| e.metadata().ok())
                    .map(|m| m.len())
                    .sum::<u64>()
            })
            .unwrap_or(0);
        let samples = [
            Sample {
                name: "quorumkv_raft_term",
                help: "Current Raft term.",
                value: status.term as f64,
            },
            Sample {
                name: "quorumkv_raft_is_leader",
                help: "1 if this node leads.",
                value: f64::from(u8::from(status.role == "leader")),
            },
            Sample {
                name: "quorumkv_raft_last_log_index",
                help: "Last log index.",
                value: status.last_log_index as f64,
            },
            Sample {
                name: "quorumkv_raft_commit_index",
                help: "Last committed log index.",
                value: status.commit_index as f64,
            },
            Sample {
                name: "quorumkv_raft_applied_index",
                help: "Last applied log index.",
                value: status.applied_index as f64,
            },
            Sample {
                name: "quorumkv_raft_snapshot_index",
                help: "Last log index covered by the snapshot.",
                value: status.snapshot_index as f64,
            },
            Sample {
                name: "quorumkv_raft_voters",
                help: "Voters in the membership.",
                value: status.voters.len() as f64,
            },
            Sample {
                name: "quorumkv_snapshot_bytes",
                help: "Size of the snapshot files on disk.",
                value: snapshot_bytes as f64,
            },
            Sample {
                name: "quorumkv_keys",
                help: "Live keys in the store.",
                value: self.0.store.read().len() as f64,
            },
        ];
        self.0.metrics.render(&samples)
    }

    /// Stops serving, stops Raft and waits until the log is closed and the directory unlocked.
    pub async fn shutdown(&self) {
        self.0.shutdown.send_replace(true);
        if let Err(error) = self.0.raft.shutdown().await {
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

/// Triggers a snapshot (after which openraft purges the log) whenever the entries applied since
/// the last snapshot, or since the last trigger, reach `every` and half the keys the store holds.
///
/// A snapshot serializes the whole store on the apply path, so a fixed interval costs each write
/// `keys / every` serialized keys: with 100k keys and a snapshot every 10,000 entries, a third of
/// the CPU under a pipelined SET load. Scaling the interval with the store bounds that to two
/// keys per write, while the in-memory log stays bounded by `every` or half the key count
/// (plus `keep_logs` and what is in flight). A store that only grows still snapshots each time
/// it doubles.
async fn compact_by_policy(node: Node, every: u64) {
    let mut metrics = node.0.raft.metrics();
    let mut shutdown = node.shutdown_signal();
    let mut tried_at = 0;
    loop {
        tokio::select! {
            changed = metrics.changed() => if changed.is_err() { return },
            _ = shutdown.changed() => return,
        }
        let (applied, snapshot) = {
            let m = metrics.borrow_watched();
            let index = |id: Option<&openraft::alias::LogIdOf<NodeConfig>>| id.map_or(0, |id| id.index);
            (index(m.last_applied.as_ref()), index(m.snapshot.as_ref()))
        };
        let keys = u64::try_from(node.0.store.read().len()).unwrap_or(u64::MAX);
        if applied.saturating_sub(snapshot.max(tried_at)) >= every.max(keys / 2) {
            tried_at = applied;
            // openraft ignores the trigger while a snapshot is being built.
            if node.0.raft.trigger().snapshot().await.is_err() {
                return;
            }
        }
    }
}

/// Records the node id in a new data directory and refuses a directory of another node.
fn check_node_id(dir: &std::path::Path, id: u64) -> Result<(), StartError> {
    let path = dir.join(ID_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => match text.trim().parse::<u64>() {
            Ok(found) if found == id => Ok(()),
            Ok(found) => Err(StartError::Config(format!(
                "{} belongs to node {found}, not node {id}",
                dir.display()
            ))),
            Err(_) => Err(StartError::Config(format!("{} is not a node id", path.display()))),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::write(&path, format!("{id}\n"))
            .map_err(|e| StartError::Storage(StorageError::io("write", &path, e))),
        Err(e) => Err(StartError::Storage(StorageError::io("read", &path, e))),
    }
}

/// Runs `operation`, failing with [`NodeError::Timeout`] after `limit`.
async fn within(
    limit: Duration,
    operation: impl std::future::Future<Output = Result<Response, NodeError>>,
) -> Result<Response, NodeError> {
    tokio::time::timeout(limit, operation)
        .await
        .unwrap_or(Err(NodeError::Timeout(limit)))
}

/// The wall clock in milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    let since_epoch = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX)
}
