//! The messages of the Raft port.

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

use kv_core::command::Response;

use crate::NodeConfig;
use crate::node::NodeError;
use crate::node::Op;

/// A request from a peer.
#[derive(Debug, Serialize, Deserialize)]
pub enum RaftRequest {
    /// openraft's AppendEntries (also the heartbeat).
    AppendEntries(AppendEntriesRequest<NodeConfig>),
    /// openraft's RequestVote.
    Vote(VoteRequest<NodeConfig>),
    /// openraft's pre-vote round, which does not disturb the current term.
    PreVote(VoteRequest<NodeConfig>),
    /// A piece of a snapshot the leader is sending.
    Snapshot(SnapshotChunk),
    /// The leader asks this node to take over leadership.
    TransferLeader(TransferLeaderRequest<NodeConfig>),
    /// A follower hands a client's operation to the leader.
    Forward(Op),
}

/// One piece of a snapshot. Chunks are sent in order on one connection; the receiver installs
/// the snapshot once it holds `total_len` bytes.
#[derive(Debug, Serialize, Deserialize)]
pub struct SnapshotChunk {
    /// The sending leader's vote.
    pub vote: VoteOf<NodeConfig>,
    /// The snapshot's metadata (the same in every chunk).
    pub meta: SnapshotMetaOf<NodeConfig>,
    /// Size of the whole snapshot data.
    pub total_len: u64,
    /// Where `data` starts within the snapshot data.
    pub offset: u64,
    /// The bytes.
    pub data: Vec<u8>,
}

/// The answer to a [`RaftRequest`].
#[derive(Debug, Serialize, Deserialize)]
pub enum RaftReply {
    /// Answer to [`RaftRequest::AppendEntries`].
    AppendEntries(AppendEntriesResponse<NodeConfig>),
    /// Answer to [`RaftRequest::Vote`] and [`RaftRequest::PreVote`].
    Vote(VoteResponse<NodeConfig>),
    /// A chunk was stored; send the next one.
    SnapshotChunkStored,
    /// The last chunk arrived and the snapshot was installed.
    SnapshotInstalled(SnapshotResponse<NodeConfig>),
    /// Answer to [`RaftRequest::TransferLeader`].
    TransferLeader(TransferLeaderResponse<NodeConfig>),
    /// Answer to [`RaftRequest::Forward`].
    Forwarded(Result<Response, NodeError>),
    /// The request could not be handled (the node is stopping, or a chunk was out of order).
    Refused(String),
}
