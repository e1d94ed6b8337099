//! A client's operation as a follower forwards it to the leader. Wire format: see the
//! [module docs](super).

use serde::Deserialize;
use serde::Serialize;

use crate::command::Command;
use crate::command::Query;
use crate::raft::KvNode;

/// A client's operation, as the leader executes it (and followers forward it).
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
    /// A follower asks the leader for a read index: the leader confirms its leadership with
    /// a quorum and answers [`Response::ReadIndex`](crate::command::Response::ReadIndex) with
    /// the index every read that waited for it may be served at (Raft dissertation, 6.4).
    ReadIndex,
}

impl Op {
    /// Whether the operation cannot change anything, so that it may be retried freely.
    pub fn is_read(&self) -> bool {
        matches!(self, Op::Read(_) | Op::ReadIndex)
    }
}

/// How a read is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum ReadMode {
    /// After the leader's read-index barrier: sees every write acknowledged before it.
    #[default]
    Linearizable,
    /// From this node's applied state, possibly behind the leader (Redis `READONLY`).
    Stale,
}
