//! Why an operation failed, as the request path reports it and a forward carries it back.
//! Wire format: see the [module docs](super).

use std::time::Duration;

use serde::Deserialize;
use serde::Serialize;

/// Why an operation failed. Each kind says whether the operation may have taken effect:
/// only [`OpError::OutcomeUnknown`] may have; every other kind certainly did not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum OpError {
    /// This node does not lead (and the operation was already forwarded once). Not applied.
    #[error("node {node} is not the leader (leader: {})", leader.map_or("unknown".to_string(), |l| l.to_string()))]
    NotLeader {
        /// This node.
        node: u64,
        /// The leader it knows of.
        leader: Option<u64>,
    },
    /// No leader is known: an election is in progress or no quorum is reachable. Not applied.
    #[error("no leader is known (election in progress or no quorum reachable)")]
    NoLeader,
    /// The operation did not run: the leader is unreachable or the node is stopping.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Nothing was proposed within the time limit (a read barrier, a membership change that
    /// never started): not applied.
    #[error("timed out after {0:?} before taking effect")]
    Timeout(Duration),
    /// The operation was proposed (or handed to the leader) but its answer was lost: the
    /// leader stepped down, the connection broke, or no answer came in time. It may or may
    /// not have taken effect.
    #[error("outcome unknown: {0}; the write may or may not have taken effect")]
    OutcomeUnknown(String),
    /// The operation is invalid (size limits, membership rules). Not applied.
    #[error("{0}")]
    Rejected(String),
}

impl OpError {
    /// Whether the operation may have taken effect despite the error.
    pub fn may_have_taken_effect(&self) -> bool {
        matches!(self, OpError::OutcomeUnknown(_))
    }

    /// Whether trying again (possibly on another node) can succeed.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, OpError::Rejected(_))
    }
}
