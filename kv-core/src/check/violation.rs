//! The verdict shared by the Raft invariant checkers.

use serde::Deserialize;
use serde::Serialize;

/// One log entry as the checkers see it: its term, index and a digest of its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EntryId {
    /// Term of the leader that proposed it.
    pub term: u64,
    /// Log index.
    pub index: u64,
    /// Digest of the payload, so that equal ids with different contents are caught too.
    pub digest: u64,
}

/// A broken invariant: which one, and what shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{invariant} violated: {detail}")]
pub struct Violation {
    /// The invariant's name, e.g. `election_safety`.
    pub invariant: String,
    /// What was observed.
    pub detail: String,
}

impl Violation {
    pub(crate) fn new(invariant: &str, detail: String) -> Self {
        Violation {
            invariant: invariant.to_string(),
            detail,
        }
    }
}
