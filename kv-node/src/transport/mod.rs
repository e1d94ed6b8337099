//! The sending side of the Raft port: openraft's
//! [`RaftNetworkV2`](openraft::network::v2::RaftNetworkV2) over TCP, and the connection pools
//! a follower also uses to forward clients' operations to the leader. (The receiving side is
//! the composition root's `server::raft_port`, which hands requests to the node.)
//!
//! A connection starts with the [`handshake`]: both ends prove the cluster secret
//! ([`kv_core::wire::handshake`]); a connection that fails it is closed before any frame is
//! read. Then every message, in both directions, is one frame of [`kv_core::wire`], whose docs draw the
//! format and hold the protocol version.
//!
//! A frame announcing more than the receiver's limit ([`TransportOptions::max_frame`]) is refused
//! before anything of that size is allocated, and the connection is closed.
//!
//! A connection carries one request at a time: the client writes a request frame and reads
//! exactly one reply frame. Each peer has a small pool of such connections that are reused
//! across requests ([`Peers`]); a failed, timed-out or refused connection is dropped and a new
//! one is made after a backoff. Snapshots travel as a sequence of
//! [`SnapshotChunk`](kv_core::wire::SnapshotChunk) requests on one connection, each bounded by
//! [`TransportOptions::snapshot_chunk`]; the receiver installs the snapshot after the last one.

pub mod frame_io;
pub mod handshake;
mod network;

use std::time::Duration;

pub use network::CallError;
pub use network::Network;
pub use network::Peers;
pub use network::RaftReply;
pub use network::RaftRequest;

/// Tuning of the transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransportOptions {
    /// Largest frame payload accepted, in bytes.
    pub max_frame: u32,
    /// Largest reply payload accepted from a peer this node called, in bytes. Larger than
    /// `max_frame`: a forwarded pipeline's reads come back in one reply, each bounded by
    /// `max-reply-bytes`; the peer is a member this node chose to call, not a stranger.
    pub max_reply_frame: u32,
    /// Bytes of snapshot data per chunk.
    pub snapshot_chunk: usize,
    /// Largest snapshot a node accepts from a leader, in bytes.
    pub max_snapshot: u64,
    /// How long connecting to a peer may take.
    pub connect_timeout: Duration,
    /// First delay before reconnecting to a peer that could not be reached; doubled per failure.
    pub backoff_min: Duration,
    /// Longest delay between reconnection attempts.
    pub backoff_max: Duration,
    /// Idle connections kept per peer.
    pub idle_per_peer: usize,
}

impl Default for TransportOptions {
    fn default() -> Self {
        TransportOptions {
            max_frame: kv_core::wire::frame::DEFAULT_MAX_FRAME,
            max_reply_frame: 1 << 30,
            snapshot_chunk: 1 << 20,
            max_snapshot: 4 << 30,
            connect_timeout: Duration::from_millis(500),
            backoff_min: Duration::from_millis(20),
            backoff_max: Duration::from_millis(500),
            idle_per_peer: 16,
        }
    }
}
