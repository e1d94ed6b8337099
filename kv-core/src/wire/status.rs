//! A node's view of the cluster, as `RAFT STATUS`, `RAFT LEADER` and `/health` report it.
//! Wire format: see the [module docs](super).

use std::fmt;

use serde::Deserialize;
use serde::Serialize;

use crate::raft::KvNode;

/// A node's Raft role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    /// Leads its term: proposes writes and answers read-index requests.
    Leader,
    /// A voter following a leader (or waiting for one).
    Follower,
    /// A voter asking for votes.
    Candidate,
    /// Receives the log but does not vote.
    Learner,
    /// Raft has stopped on this node (a fatal storage error, or shutting down).
    Shutdown,
}

impl Role {
    /// The lowercase name, as reported by `RAFT STATUS`, INFO and `/health`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Leader => "leader",
            Role::Follower => "follower",
            Role::Candidate => "candidate",
            Role::Learner => "learner",
            Role::Shutdown => "shutdown",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<openraft::ServerState> for Role {
    fn from(state: openraft::ServerState) -> Self {
        match state {
            openraft::ServerState::Leader => Role::Leader,
            openraft::ServerState::Follower => Role::Follower,
            openraft::ServerState::Candidate => Role::Candidate,
            openraft::ServerState::Learner => Role::Learner,
            openraft::ServerState::Shutdown => Role::Shutdown,
        }
    }
}

/// A node's view of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// This node.
    pub id: u64,
    /// Its role.
    pub role: Role,
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
