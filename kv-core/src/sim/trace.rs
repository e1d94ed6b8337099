//! The event trace of a simulated run and its hash.
//!
//! Every event is appended to the trace and folded into a running FNV-1a hash of its postcard
//! encoding. Two runs with the same seed and the same actions produce the same trace, natively
//! and in wasm, so equal hashes are the cross-target determinism check. Only the most recent
//! events (by default [`Trace::KEEP`]) are kept in memory; the hash covers them all.

use std::collections::VecDeque;

use serde::Deserialize;
use serde::Serialize;

/// A node's role as the simulator shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Follows a leader (or waits for one).
    Follower,
    /// Asking for votes.
    Candidate,
    /// Leads its term.
    Leader,
    /// Receives the log but does not vote.
    Learner,
    /// Not running.
    Crashed,
}

/// Something that happened in a simulated run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// A message left `from` for `to`.
    Send {
        /// Message id.
        msg: u64,
        /// Sender.
        from: u64,
        /// Receiver.
        to: u64,
        /// What the message carries.
        kind: String,
    },
    /// A message reached its receiver.
    Deliver {
        /// Message id.
        msg: u64,
    },
    /// A message was lost (partition or random drop).
    Drop {
        /// Message id.
        msg: u64,
        /// Why it was lost.
        reason: String,
    },
    /// A node's election timer fired: it became a candidate.
    Timeout {
        /// The node.
        node: u64,
    },
    /// A node's role or term changed.
    RoleChange {
        /// The node.
        node: u64,
        /// Its new role.
        role: Role,
        /// Its current term.
        term: u64,
    },
    /// A node learned that its log is committed up to `index`.
    Commit {
        /// The node.
        node: u64,
        /// Committed index.
        index: u64,
    },
    /// A node applied the entry at `index` to its state machine.
    Apply {
        /// The node.
        node: u64,
        /// Applied index.
        index: u64,
    },
    /// A client submitted an operation.
    ClientInvoke {
        /// Operation id.
        op: u64,
        /// Node the operation was sent to.
        node: u64,
        /// What it asks.
        call: String,
    },
    /// A client operation completed (or was given up on).
    ClientReturn {
        /// Operation id.
        op: u64,
        /// What it returned.
        result: String,
    },
    /// A user or the fault schedule acted on the cluster (crash, restart, partition, heal, drop rate).
    Fault {
        /// What was done.
        action: String,
    },
    /// A step of a membership or leadership change (asked, learner caught up, voter, removed,
    /// transfer), or why it failed.
    Membership {
        /// What happened.
        action: String,
    },
}

/// An event and its virtual time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Virtual time, nanoseconds since the start.
    pub at_ns: u64,
    /// What happened.
    pub kind: EventKind,
}

/// The recent events and the hash of all of them.
#[derive(Debug, Clone)]
pub struct Trace {
    hash: u64,
    count: u64,
    capacity: usize,
    recent: VecDeque<Event>,
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

impl Default for Trace {
    fn default() -> Self {
        Trace::with_capacity(Trace::KEEP)
    }
}

impl Trace {
    /// How many recent events are kept in memory by default.
    pub const KEEP: usize = 20_000;

    /// A trace keeping the latest `capacity` events in memory.
    pub fn with_capacity(capacity: usize) -> Self {
        Trace {
            hash: FNV_OFFSET,
            count: 0,
            capacity,
            recent: VecDeque::new(),
        }
    }

    /// Appends an event.
    pub fn push(&mut self, event: Event) {
        let bytes = postcard::to_allocvec(&event).expect("encoding an event into a Vec cannot fail");
        for b in bytes {
            self.hash = (self.hash ^ u64::from(b)).wrapping_mul(FNV_PRIME);
        }
        self.count += 1;
        if self.recent.len() == self.capacity {
            self.recent.pop_front();
        }
        self.recent.push_back(event);
    }

    /// FNV-1a hash of the postcard encoding of every event so far.
    pub fn hash(&self) -> u64 {
        self.hash
    }

    /// Number of events so far.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// Whether nothing happened yet.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The most recent events, oldest first.
    pub fn recent(&self) -> impl Iterator<Item = &Event> {
        self.recent.iter()
    }

    /// Events with sequence number `from` (0-based, counting all events) and later that are
    /// still kept, for incremental consumers such as the web demo.
    pub fn since(&self, from: u64) -> impl Iterator<Item = &Event> {
        let first_kept = self.count - self.recent.len() as u64;
        let skip = from.saturating_sub(first_kept).min(self.recent.len() as u64) as usize;
        self.recent.iter().skip(skip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(at_ns: u64, node: u64) -> Event {
        Event {
            at_ns,
            kind: EventKind::Timeout { node },
        }
    }

    #[test]
    fn hash_depends_on_every_event_and_its_order() {
        let mut a = Trace::default();
        let mut b = Trace::default();
        a.push(ev(1, 1));
        a.push(ev(2, 2));
        b.push(ev(2, 2));
        b.push(ev(1, 1));
        assert_ne!(a.hash(), b.hash());
        let mut c = Trace::default();
        c.push(ev(1, 1));
        c.push(ev(2, 2));
        assert_eq!(a.hash(), c.hash());
        assert_eq!(a.len(), 2);
    }

    #[test]
    fn keeps_only_recent_events_but_counts_all() {
        let mut t = Trace::default();
        for i in 0..(Trace::KEEP as u64 + 5) {
            t.push(ev(i, 0));
        }
        assert_eq!(t.len(), Trace::KEEP as u64 + 5);
        assert_eq!(t.recent().count(), Trace::KEEP);
        assert_eq!(t.recent().next().unwrap().at_ns, 5);
        assert_eq!(
            t.since(Trace::KEEP as u64 + 3).map(|e| e.at_ns).collect::<Vec<_>>(),
            [20_003, 20_004]
        );
        assert_eq!(t.since(0).count(), Trace::KEEP);
    }
}
