//! The sending side: a connection pool per peer and openraft's network over it.

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use openraft::alias::SnapshotOf;
use openraft::alias::VoteOf;
use openraft::errors::NetworkError;
use openraft::errors::RPCError;
use openraft::errors::ReplicationClosed;
use openraft::errors::StreamingError;
use openraft::errors::Timeout;
use openraft::errors::Unreachable;
use openraft::network::RPCOption;
use openraft::network::RPCTypes;
use openraft::network::RaftNetworkFactory;
use openraft::network::v2::RaftNetworkV2;
use openraft::raft::AppendEntriesRequest;
use openraft::raft::AppendEntriesResponse;
use openraft::raft::SnapshotResponse;
use openraft::raft::TransferLeaderRequest;
use openraft::raft::TransferLeaderResponse;
use openraft::raft::VoteRequest;
use openraft::raft::VoteResponse;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;

use kv_core::raft::KvNode;

use kv_core::wire::RaftReply as Reply;
use kv_core::wire::RaftRequest as Request;
use kv_core::wire::SnapshotChunk;
use kv_core::wire::frame;
use kv_core::wire::frame::FrameError;
use kv_core::wire::handshake::ClusterKey;
use kv_core::wire::sanity;

use super::TransportOptions;
use super::frame_io;
use super::handshake;
use crate::NodeConfig;
use crate::tls;
use crate::tls::Stream;

/// A request on the Raft port of a native node.
pub type RaftRequest = Request<NodeConfig>;
/// A reply on the Raft port of a native node.
pub type RaftReply = Reply<NodeConfig>;
use crate::metrics::Metrics;

/// Why a call to a peer failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// No connection could be made (or the peer is in backoff); the request was not sent.
    #[error("peer {addr} unreachable: {reason}")]
    Unreachable {
        /// The peer's address.
        addr: String,
        /// Why.
        reason: String,
    },
    /// No reply within the deadline; the request may have been handled.
    #[error("no reply from {addr} within {after:?}")]
    Timeout {
        /// The peer's address.
        addr: String,
        /// The deadline.
        after: Duration,
    },
    /// The connection broke or carried garbage; the request may have been handled.
    #[error("connection to {addr} failed: {source}")]
    Connection {
        /// The peer's address.
        addr: String,
        /// The failure.
        source: FrameError,
    },
    /// The peer answered that it could not handle the request.
    #[error("peer {addr} refused: {reason}")]
    Refused {
        /// The peer's address.
        addr: String,
        /// Its reason.
        reason: String,
    },
    /// The peer answered with a reply of the wrong kind.
    #[error("peer {addr} answered out of protocol")]
    Protocol {
        /// The peer's address.
        addr: String,
    },
}

/// Reconnection state of one peer.
#[derive(Debug)]
struct Backoff {
    /// No connection attempt before this instant.
    until: Option<Instant>,
    /// The delay the next failure imposes.
    next: Duration,
}

/// Connections to one peer address.
#[derive(Debug)]
struct PeerPool {
    addr: String,
    idle: Mutex<Vec<Stream>>,
    backoff: Mutex<Backoff>,
}

/// Connection pools to every peer this node talks to, shared by openraft's replication
/// streams and by request forwarding. Clones share the pools.
#[derive(Clone)]
pub struct Peers {
    pools: Arc<Mutex<HashMap<String, Arc<PeerPool>>>>,
    options: TransportOptions,
    key: ClusterKey,
    tls: Option<TlsConnector>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Peers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peers")
            .field("pools", &self.pools)
            .field("options", &self.options)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl Peers {
    /// No connections yet; each new one proves `key` in the [handshake](super::handshake).
    /// With `tls`, connections are TLS (mutual: the connector presents the node's certificate).
    pub fn new(options: TransportOptions, key: ClusterKey, tls: Option<TlsConnector>, metrics: Arc<Metrics>) -> Self {
        Peers {
            pools: Arc::default(),
            options,
            key,
            tls,
            metrics,
        }
    }

    fn pool(&self, addr: &str) -> Arc<PeerPool> {
        let mut pools = self.pools.lock().expect("peer pools lock poisoned");
        pools
            .entry(addr.to_string())
            .or_insert_with(|| {
                Arc::new(PeerPool {
                    addr: addr.to_string(),
                    idle: Mutex::new(Vec::new()),
                    backoff: Mutex::new(Backoff {
                        until: None,
                        next: self.options.backoff_min,
                    }),
                })
            })
            .clone()
    }

    /// Sends `request` to the peer at `addr` and waits up to `ttl` for its reply.
    pub async fn call(&self, addr: &str, request: &RaftRequest, ttl: Duration) -> Result<RaftReply, CallError> {
        let pool = self.pool(addr);
        let bytes = frame::encode(request);
        let deadline = Instant::now() + ttl;
        let mut stream = self.connection(&pool, deadline).await?;
        let exchange = async {
            stream.write_all(&bytes).await?;
            match frame_io::read::<RaftReply, _>(&mut stream, self.options.max_reply_frame).await? {
                Some(reply) => Ok(reply),
                None => Err(FrameError::Io(std::io::ErrorKind::UnexpectedEof.into())),
            }
        };
        let reply = match tokio::time::timeout_at(deadline, exchange).await {
            Err(_) => {
                return Err(CallError::Timeout {
                    addr: pool.addr.clone(),
                    after: ttl,
                });
            }
            Ok(Err(source)) => {
                return Err(CallError::Connection {
                    addr: pool.addr.clone(),
                    source,
                });
            }
            Ok(Ok(reply)) => reply,
        };
        self.metrics.raft_bytes_sent.add(bytes.len() as u64);
        let mut idle = pool.idle.lock().expect("idle connections lock poisoned");
        if idle.len() < self.options.idle_per_peer {
            idle.push(stream);
        }
        drop(idle);
        match reply {
            RaftReply::Refused(reason) => Err(CallError::Refused {
                addr: pool.addr.clone(),
                reason,
            }),
            reply => Ok(reply),
        }
    }

    /// An idle connection, or a new one unless the peer is in backoff.
    async fn connection(&self, pool: &PeerPool, deadline: Instant) -> Result<Stream, CallError> {
        if let Some(stream) = pool.idle.lock().expect("idle connections lock poisoned").pop() {
            return Ok(stream);
        }
        let unreachable = |reason: String| CallError::Unreachable {
            addr: pool.addr.clone(),
            reason,
        };
        let now = Instant::now();
        if let Some(until) = pool.backoff.lock().expect("backoff lock poisoned").until
            && until > now
        {
            return Err(unreachable(format!("backing off for {:?}", until - now)));
        }
        let connect_deadline = deadline.min(now + self.options.connect_timeout);
        let connect = async {
            let tcp = TcpStream::connect(&pool.addr).await?;
            tcp.set_nodelay(true)?;
            let mut stream = match &self.tls {
                Some(connector) => tls::connect(connector, &pool.addr, tcp).await?,
                None => Stream::Plain(tcp),
            };
            handshake::connect(&mut stream, &self.key)
                .await
                .map_err(|refusal| match refusal {
                    handshake::Refusal::Io(e) => e,
                    refusal => std::io::Error::new(std::io::ErrorKind::PermissionDenied, refusal),
                })?;
            Ok::<_, std::io::Error>(stream)
        };
        let result = tokio::time::timeout_at(connect_deadline, connect).await;
        let mut backoff = pool.backoff.lock().expect("backoff lock poisoned");
        match result {
            Ok(Ok(stream)) => {
                backoff.until = None;
                backoff.next = self.options.backoff_min;
                drop(backoff);
                self.metrics.raft_connects.add(1);
                Ok(stream)
            }
            failure => {
                backoff.until = Some(Instant::now() + backoff.next);
                backoff.next = (backoff.next * 2).min(self.options.backoff_max);
                Err(unreachable(match failure {
                    Ok(Err(e)) => e.to_string(),
                    _ => "connect timed out".to_string(),
                }))
            }
        }
    }

    /// Forgets idle connections to `addr` and its backoff, e.g. after it restarted.
    pub fn reset(&self, addr: &str) {
        let pool = self.pool(addr);
        pool.idle.lock().expect("idle connections lock poisoned").clear();
        let mut backoff = pool.backoff.lock().expect("backoff lock poisoned");
        backoff.until = None;
        backoff.next = self.options.backoff_min;
    }
}

/// openraft's network factory: one [`PeerClient`] per target, all sharing [`Peers`].
#[derive(Debug, Clone)]
pub struct Network {
    id: u64,
    peers: Peers,
    routes: Arc<BTreeMap<u64, String>>,
}

impl Network {
    /// The network of node `id`, sending through `peers`. A member listed in `routes` is
    /// reached at that address instead of the Raft address it advertises.
    pub fn new(id: u64, peers: Peers, routes: Arc<BTreeMap<u64, String>>) -> Self {
        Network { id, peers, routes }
    }
}

impl RaftNetworkFactory<NodeConfig> for Network {
    type Network = PeerClient;

    async fn new_client(&mut self, target: u64, node: &KvNode) -> PeerClient {
        PeerClient {
            id: self.id,
            target,
            addr: self.routes.get(&target).unwrap_or(&node.raft_addr).clone(),
            peers: self.peers.clone(),
        }
    }
}

/// openraft's view of one peer.
#[derive(Debug)]
pub struct PeerClient {
    id: u64,
    target: u64,
    addr: String,
    peers: Peers,
}

impl PeerClient {
    async fn call(
        &self,
        request: RaftRequest,
        action: RPCTypes,
        ttl: Duration,
    ) -> Result<RaftReply, RPCError<NodeConfig>> {
        let reply = self
            .peers
            .call(&self.addr, &request, ttl)
            .await
            .map_err(|e| self.rpc_error(e, action, ttl))?;
        if let Some(term) = sanity::request_term(&request)
            && let Err(insane) = sanity::check_reply(&reply, term)
        {
            tracing::warn!(peer = %self.addr, target = self.target, %insane, "refused a peer's reply");
            self.peers.metrics.raft_messages_refused.add(1);
            return Err(self.protocol_error().into());
        }
        Ok(reply)
    }

    fn rpc_error(&self, error: CallError, action: RPCTypes, ttl: Duration) -> RPCError<NodeConfig> {
        match error {
            CallError::Unreachable { .. } | CallError::Refused { .. } => Unreachable::new(&error).into(),
            CallError::Timeout { .. } => RPCError::Timeout(Timeout {
                action,
                id: self.id,
                target: self.target,
                timeout: ttl,
            }),
            CallError::Connection { .. } | CallError::Protocol { .. } => NetworkError::new(&error).into(),
        }
    }

    fn protocol_error(&self) -> NetworkError<NodeConfig> {
        NetworkError::new(&CallError::Protocol {
            addr: self.addr.clone(),
        })
    }
}

impl RaftNetworkV2<NodeConfig> for PeerClient {
    type SnapshotData = Vec<u8>;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<NodeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeConfig>, RPCError<NodeConfig>> {
        let request = RaftRequest::AppendEntries(rpc);
        match self.call(request, RPCTypes::AppendEntries, option.hard_ttl()).await? {
            RaftReply::AppendEntries(response) => Ok(response),
            _ => Err(self.protocol_error().into()),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeConfig>, RPCError<NodeConfig>> {
        match self
            .call(RaftRequest::Vote(rpc), RPCTypes::Vote, option.hard_ttl())
            .await?
        {
            RaftReply::Vote(response) => Ok(response),
            _ => Err(self.protocol_error().into()),
        }
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<NodeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeConfig>, RPCError<NodeConfig>> {
        match self
            .call(RaftRequest::PreVote(rpc), RPCTypes::Vote, option.hard_ttl())
            .await?
        {
            RaftReply::Vote(response) => Ok(response),
            _ => Err(self.protocol_error().into()),
        }
    }

    async fn full_snapshot(
        &mut self,
        vote: VoteOf<NodeConfig>,
        snapshot: SnapshotOf<NodeConfig, Vec<u8>>,
        cancel: impl Future<Output = ReplicationClosed> + Send + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<NodeConfig>, StreamingError<NodeConfig>> {
        let data = snapshot.snapshot;
        let chunk = option
            .snapshot_chunk_size()
            .unwrap_or(self.peers.options.snapshot_chunk)
            .max(1);
        let total_len = data.len() as u64;
        let mut cancel = std::pin::pin!(cancel);
        let mut offset = 0;
        loop {
            let end = (offset + chunk).min(data.len());
            let request = RaftRequest::Snapshot(SnapshotChunk {
                vote,
                meta: snapshot.meta.clone(),
                total_len,
                offset: offset as u64,
                data: data[offset..end].to_vec(),
            });
            let call = self.call(request, RPCTypes::InstallSnapshot, option.hard_ttl());
            let reply = tokio::select! {
                closed = &mut cancel => return Err(closed.into()),
                reply = call => reply,
            };
            let reply = reply.map_err(|e| match e {
                RPCError::Timeout(t) => StreamingError::Timeout(t),
                RPCError::Unreachable(u) => StreamingError::Unreachable(u),
                RPCError::Network(n) => StreamingError::Network(n),
                RPCError::RemoteError(r) => StreamingError::Network(NetworkError::new(&r)),
            })?;
            self.peers.metrics.snapshot_bytes_sent.add((end - offset) as u64);
            match reply {
                RaftReply::SnapshotChunkStored if end < data.len() => offset = end,
                RaftReply::SnapshotInstalled(response) if end == data.len() => return Ok(response),
                _ => return Err(self.protocol_error().into()),
            }
        }
    }

    async fn transfer_leader(
        &mut self,
        req: TransferLeaderRequest<NodeConfig>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<NodeConfig>, RPCError<NodeConfig>> {
        let request = RaftRequest::TransferLeader(req);
        match self.call(request, RPCTypes::TransferLeader, option.hard_ttl()).await? {
            RaftReply::TransferLeader(response) => Ok(response),
            _ => Err(self.protocol_error().into()),
        }
    }
}
