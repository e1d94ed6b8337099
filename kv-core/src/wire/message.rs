//! The messages of the Raft port: openraft's RPCs and the forwarding of client operations.
//! Wire format: see the [module docs](super). Generic over the type configuration only so that
//! the simulator and the native node share them; the encoding does not depend on it.

use openraft::alias::SnapshotMetaOf;
use openraft::alias::VoteOf;
use openraft::raft::AppendEntriesRequest;
use openraft::raft::AppendEntriesResponse;
use openraft::raft::SnapshotResponse;
use openraft::raft::TransferLeaderRequest;
use openraft::raft::TransferLeaderResponse;
use openraft::raft::VoteRequest;
use openraft::raft::VoteResponse;
use serde::Deserialize;
use serde::Serialize;

use super::Op;
use super::OpError;
use crate::command::Response;
use crate::raft::KvTypeConfig;

/// A request from a peer.
#[derive(Debug, Serialize, Deserialize)]
#[serde(bound = "")]
pub enum RaftRequest<C: KvTypeConfig> {
    /// openraft's AppendEntries (also the heartbeat).
    AppendEntries(AppendEntriesRequest<C>),
    /// openraft's RequestVote.
    Vote(VoteRequest<C>),
    /// openraft's pre-vote round, which does not disturb the current term.
    PreVote(VoteRequest<C>),
    /// A piece of a snapshot the leader is sending.
    Snapshot(SnapshotChunk<C>),
    /// The leader asks this node to take over leadership.
    TransferLeader(TransferLeaderRequest<C>),
    /// A follower hands a run of client operations to the leader, which executes them in
    /// order (consecutive writes proposed together, consecutive reads behind one barrier).
    Forward(Vec<Op>),
}

/// One piece of a snapshot. Chunks are sent in order on one connection; the receiver installs
/// the snapshot once it holds `total_len` bytes.
#[derive(Debug, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct SnapshotChunk<C: KvTypeConfig> {
    /// The sending leader's vote.
    pub vote: VoteOf<C>,
    /// The snapshot's metadata (the same in every chunk).
    pub meta: SnapshotMetaOf<C>,
    /// Size of the whole snapshot data.
    pub total_len: u64,
    /// Where `data` starts within the snapshot data.
    pub offset: u64,
    /// The bytes.
    pub data: Vec<u8>,
}

/// The answer to a [`RaftRequest`].
#[derive(Debug, Serialize, Deserialize)]
#[serde(bound = "")]
pub enum RaftReply<C: KvTypeConfig> {
    /// Answer to [`RaftRequest::AppendEntries`].
    AppendEntries(AppendEntriesResponse<C>),
    /// Answer to [`RaftRequest::Vote`] and [`RaftRequest::PreVote`].
    Vote(VoteResponse<C>),
    /// A chunk was stored; send the next one.
    SnapshotChunkStored,
    /// The last chunk arrived and the snapshot was installed.
    SnapshotInstalled(SnapshotResponse<C>),
    /// Answer to [`RaftRequest::TransferLeader`].
    TransferLeader(TransferLeaderResponse<C>),
    /// Answer to [`RaftRequest::Forward`]: one result per operation, in order.
    Forwarded(Vec<Result<Response, OpError>>),
    /// The request could not be handled (the node is stopping, or a chunk was out of order).
    Refused(String),
}
