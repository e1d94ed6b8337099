//! **What no honest peer sends.** Bounds on the terms and log indexes in a [`RaftRequest`] or
//! [`RaftReply`], checked by the receiver before the message reaches openraft.
//!
//! openraft trusts its peers: a vote with term `u64::MAX` makes it save that vote and then
//! overflow the term on the next election (a panic that recurs after every restart, since the
//! vote is on disk), and any vote with a higher term makes a leader step down. Authentication
//! (the Raft port's handshake or mutual TLS) keeps strangers out; this module is the second
//! line, against a buggy or compromised member and against arithmetic on values from outside:
//!
//! - every term is below [`TERM_CEILING`] (2^62) and at most [`MAX_TERM_LEAP`] above the
//!   receiver's current term. With pre-vote, terms rise only through elections a majority
//!   took part in, so an honest peer is never a million elections ahead. A node that was
//!   wiped and re-added to a cluster that held more elections than that must be restarted
//!   with a fresh data directory *and* will keep refusing; the log line says so.
//! - every log index is below [`INDEX_CEILING`] (2^62), so `index + 1` never overflows;
//! - the entries of an AppendEntries follow `prev_log_id` without gaps, their terms never
//!   decrease and never exceed the leader's vote; the same holds for `leader_commit` and for
//!   a vote request's `last_log_id`.
//!
//! The checks are pure functions of the message and the receiver's current term, so the
//! simulator and the native node can share them; kv-node calls them in `server::raft_port`
//! (requests) and `transport` (replies). Tested below.

use openraft::entry::RaftEntry;
use openraft::vote::RaftLeaderId;
use openraft::vote::RaftVote;

use super::RaftReply;
use super::RaftRequest;
use crate::raft::KvTypeConfig;

/// No term at or above this is accepted (2^62: far from wrapping, far beyond any real cluster).
pub const TERM_CEILING: u64 = 1 << 62;
/// No log index at or above this is accepted.
pub const INDEX_CEILING: u64 = 1 << 62;
/// The most a peer's term may exceed the receiver's current term.
pub const MAX_TERM_LEAP: u64 = 1 << 20;

/// Why a message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Insane {
    /// A term no honest peer holds.
    #[error("term {term} is out of bounds (current term {current}, at most {limit} accepted)")]
    Term {
        /// The term in the message.
        term: u64,
        /// The receiver's current term.
        current: u64,
        /// The largest term accepted now.
        limit: u64,
    },
    /// A log index no honest peer holds.
    #[error("log index {index} is out of bounds (at most {} accepted)", INDEX_CEILING - 1)]
    Index {
        /// The index in the message.
        index: u64,
    },
    /// The message contradicts itself (gaps in entries, a term above the leader's, ...).
    #[error("inconsistent message: {0}")]
    Inconsistent(&'static str),
}

/// The largest term accepted by a node whose current term is `current`.
pub fn term_limit(current: u64) -> u64 {
    current.saturating_add(MAX_TERM_LEAP).min(TERM_CEILING - 1)
}

fn term(term: u64, current: u64) -> Result<(), Insane> {
    let limit = term_limit(current);
    if term > limit {
        return Err(Insane::Term { term, current, limit });
    }
    Ok(())
}

fn log_id<C: KvTypeConfig>(id: &openraft::alias::LogIdOf<C>, current: u64) -> Result<(), Insane> {
    term(id.leader_id.term, current)?;
    if id.index >= INDEX_CEILING {
        return Err(Insane::Index { index: id.index });
    }
    Ok(())
}

fn opt_log_id<C: KvTypeConfig>(id: &Option<openraft::alias::LogIdOf<C>>, current: u64) -> Result<(), Insane> {
    id.as_ref().map_or(Ok(()), |id| log_id::<C>(id, current))
}

fn vote<C: KvTypeConfig>(vote: &openraft::alias::VoteOf<C>, current: u64) -> Result<(), Insane> {
    term(vote_term::<C>(vote), current)
}

fn vote_term<C: KvTypeConfig>(vote: &openraft::alias::VoteOf<C>) -> u64 {
    vote.leader_id().term()
}

/// Checks a request from a peer against the receiver's `current` term.
pub fn check_request<C: KvTypeConfig>(request: &RaftRequest<C>, current: u64) -> Result<(), Insane> {
    match request {
        RaftRequest::Vote(rpc) | RaftRequest::PreVote(rpc) => {
            vote::<C>(&rpc.vote, current)?;
            opt_log_id::<C>(&rpc.last_log_id, current)?;
            if rpc
                .last_log_id
                .as_ref()
                .is_some_and(|id| id.leader_id.term > vote_term::<C>(&rpc.vote))
            {
                return Err(Insane::Inconsistent("a candidate's last log term is above its vote"));
            }
            Ok(())
        }
        RaftRequest::AppendEntries(rpc) => {
            vote::<C>(&rpc.vote, current)?;
            let leader_term = vote_term::<C>(&rpc.vote);
            opt_log_id::<C>(&rpc.prev_log_id, current)?;
            opt_log_id::<C>(&rpc.leader_commit, current)?;
            let mut previous = rpc.prev_log_id.as_ref().map(|id| (id.leader_id.term, id.index));
            for entry in &rpc.entries {
                let id = entry.log_id();
                log_id::<C>(&id, current)?;
                let (t, index) = (id.leader_id.term, id.index);
                if t > leader_term {
                    return Err(Insane::Inconsistent("an entry's term is above the leader's"));
                }
                let expected = previous.map_or(Some(index), |(_, i)| i.checked_add(1));
                let term_ok = previous.is_none_or(|(pt, _)| pt <= t);
                if (previous.is_some() && expected != Some(index)) || !term_ok {
                    return Err(Insane::Inconsistent("entries do not follow each other"));
                }
                previous = Some((t, index));
            }
            if rpc
                .leader_commit
                .as_ref()
                .is_some_and(|id| id.leader_id.term > leader_term)
            {
                return Err(Insane::Inconsistent("the commit term is above the leader's"));
            }
            Ok(())
        }
        RaftRequest::Snapshot(chunk) => {
            vote::<C>(&chunk.vote, current)?;
            opt_log_id::<C>(&chunk.meta.last_log_id, current)
        }
        RaftRequest::TransferLeader(rpc) => {
            vote::<C>(rpc.from_leader(), current)?;
            rpc.last_log_id().map_or(Ok(()), |id| log_id::<C>(id, current))
        }
        RaftRequest::Forward(_) => Ok(()),
    }
}

/// The sender's own term in `request` (its vote's), if it carries one: the `current` term to
/// check the reply against.
pub fn request_term<C: KvTypeConfig>(request: &RaftRequest<C>) -> Option<u64> {
    match request {
        RaftRequest::Vote(rpc) | RaftRequest::PreVote(rpc) => Some(vote_term::<C>(&rpc.vote)),
        RaftRequest::AppendEntries(rpc) => Some(vote_term::<C>(&rpc.vote)),
        RaftRequest::Snapshot(chunk) => Some(vote_term::<C>(&chunk.vote)),
        RaftRequest::TransferLeader(rpc) => Some(vote_term::<C>(rpc.from_leader())),
        RaftRequest::Forward(_) => None,
    }
}

/// Checks a peer's reply against the receiver's `current` term: the votes and log ids in it
/// obey the same bounds as a request's.
pub fn check_reply<C: KvTypeConfig>(reply: &RaftReply<C>, current: u64) -> Result<(), Insane> {
    use openraft::raft::AppendEntriesResponse as A;
    match reply {
        RaftReply::AppendEntries(A::HigherVote(v)) => vote::<C>(v, current),
        RaftReply::AppendEntries(A::PartialSuccess(id)) => opt_log_id::<C>(id, current),
        RaftReply::AppendEntries(_) => Ok(()),
        RaftReply::Vote(response) => {
            vote::<C>(&response.vote, current)?;
            opt_log_id::<C>(&response.last_log_id, current)
        }
        RaftReply::SnapshotInstalled(response) => vote::<C>(&response.vote, current),
        RaftReply::TransferLeader(_)
        | RaftReply::SnapshotChunkStored
        | RaftReply::Forwarded(_)
        | RaftReply::Refused(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use openraft::Vote;
    use openraft::entry::RaftEntry;
    use openraft::raft::AppendEntriesRequest;
    use openraft::raft::VoteRequest;

    use super::*;
    use crate::raft::StdLeaderId;
    use crate::sim::SimConfig as C;

    fn log_id(term: u64, index: u64) -> openraft::alias::LogIdOf<C> {
        openraft::testing::log_id::<C>(term, 1, index)
    }

    fn vote_request(term: u64, last: Option<(u64, u64)>) -> RaftRequest<C> {
        RaftRequest::Vote(VoteRequest::new(
            Vote::<StdLeaderId>::new(term, 2),
            last.map(|(t, i)| log_id(t, i)),
        ))
    }

    #[test]
    fn terms_beyond_the_leap_or_the_ceiling_are_refused() {
        assert_eq!(check_request(&vote_request(5, Some((4, 10))), 4), Ok(()));
        assert_eq!(check_request(&vote_request(4 + MAX_TERM_LEAP, None), 4), Ok(()));
        assert!(matches!(
            check_request(&vote_request(5 + MAX_TERM_LEAP, None), 4),
            Err(Insane::Term { .. })
        ));
        assert!(matches!(
            check_request(&vote_request(u64::MAX, None), 4),
            Err(Insane::Term { .. })
        ));
        assert!(matches!(
            check_request(&vote_request(u64::MAX, None), u64::MAX - 1),
            Err(Insane::Term { .. })
        ));
        assert!(matches!(
            check_request(&vote_request(5, Some((5, u64::MAX))), 4),
            Err(Insane::Index { index: u64::MAX })
        ));
        assert!(matches!(
            check_request(&vote_request(5, Some((6, 1))), 4),
            Err(Insane::Inconsistent(_))
        ));
    }

    #[test]
    fn append_entries_must_be_consecutive_and_below_the_leader_term() {
        let entry = |t, i| openraft::alias::EntryOf::<C>::new_blank(log_id(t, i));
        let request = |entries, prev: Option<(u64, u64)>| {
            RaftRequest::<C>::AppendEntries(AppendEntriesRequest {
                vote: Vote::<StdLeaderId>::new_committed(3, 1),
                prev_log_id: prev.map(|(t, i)| log_id(t, i)),
                entries,
                leader_commit: None,
            })
        };
        assert_eq!(
            check_request(&request(vec![entry(2, 5), entry(3, 6)], Some((2, 4))), 3),
            Ok(())
        );
        assert_eq!(check_request(&request(vec![entry(1, 1)], None), 3), Ok(()));
        for bad in [
            request(vec![entry(2, 5), entry(3, 7)], Some((2, 4))),
            request(vec![entry(2, 6)], Some((2, 4))),
            request(vec![entry(3, 5), entry(2, 6)], Some((2, 4))),
            request(vec![entry(4, 5)], Some((2, 4))),
            request(vec![entry(1, u64::MAX)], None),
        ] {
            assert!(check_request(&bad, 3).is_err(), "{bad:?}");
        }
    }
}
