//! Active expiry: the leader has due keys removed without waiting for a client's write.
//!
//! Keys expire by log time: applying a write first removes every key whose expiry is at or
//! before the write's `at_ms` (the leader's clock when it proposed it), raising an `expired`
//! event on every replica, in commit order. Reads already hide a key whose time has passed,
//! but with no write coming its removal, and so its `expired` keyspace notification, its
//! `WATCHKEYS` change and the abort of a `WATCH` on it, would wait for the next write: maybe
//! forever. Redis expires keys actively, ten times a second.
//!
//! Here the leader does it ([`expire_due_keys`]): every [`CHECK_EVERY`], while this node leads,
//! it looks at the earliest expiry in its store ([`Store::next_expiry`]); once that is at or
//! before its clock, it proposes [`Command::ExpireDue`], a write that only moves the log's
//! clock, through the request path, and waits for its answer before it checks again.
//!
//! # Why this design
//! - **Through the log, not by each replica's clock**: removal stays deterministic. Every
//!   replica removes the same keys at the same entry and raises the same events in the same
//!   order; a follower with a fast clock expires nothing on its own.
//! - **The leader only**: its clock stamps every write, and only it can propose. A node that
//!   stops leading (its proposal refused) leaves the job to the next leader, which runs this
//!   task too; this one never forwards.
//! - **At most one proposal at a time, at most one per check**: a due key that is already
//!   being expired cannot cause a flood, and a failed proposal (no quorum, a timeout) is tried
//!   again at the next check, not in a loop. The proposal removes the key found due, as its
//!   `at_ms` is read after the check.
//! - **Nothing while nothing is due**: a check is a look at the role (followers stop there)
//!   and, on the leader, one look at the first entry of the store's expiry index; no log
//!   entry is written until a key is due.
//!
//! A tick is a normal entry: it has a revision (the store's revision advances, so a
//! `WATCHKEYS` resumed from it misses nothing) but changes no key that did not expire, so a
//! `WATCH` guard aborts only on a key that actually expired. Keys whose expiry falls between
//! two checks are removed up to [`CHECK_EVERY`] late, plus one commit.
//!
//! Tested by `kv-node/tests/expiry.rs` (events on the leader and a follower with no other
//! write, and the log growing by exactly one entry) and `kv-core/tests/store_expiry.rs`.
//!
//! [`Store::next_expiry`]: kv_core::store::Store::next_expiry

use std::time::Duration;

use openraft::ServerState;
use openraft::type_config::async_runtime::WatchReceiver;

use kv_core::command::Command;
use kv_core::request::Environment;
use kv_core::wire::Op;

use super::Node;

/// How often the leader looks for due keys (Redis's default `hz` is 10).
pub const CHECK_EVERY: Duration = Duration::from_millis(100);

/// Runs until the node shuts down: see the module docs.
pub(super) async fn expire_due_keys(node: Node) {
    let metrics = node.raft().metrics();
    let mut shutdown = node.shutdown_signal();
    let mut checks = tokio::time::interval(CHECK_EVERY);
    // A check that took long (a slow proposal) is followed by a full interval, not a burst.
    checks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = checks.tick() => {}
            _ = shutdown.changed() => return,
        }
        if metrics.borrow_watched().state != ServerState::Leader {
            continue;
        }
        let Some(due) = node.0.store.read().next_expiry() else {
            continue;
        };
        if due > node.path().env().now_ms() {
            continue;
        }
        let tick = Op::Write {
            command: Command::ExpireDue,
            ttl_ms: None,
        };
        // Here only (never forwarded): if this node no longer leads, the leader's task does it.
        if let Some(Err(error)) = node.path().execute_forwarded(vec![tick]).await.pop() {
            tracing::debug!(%error, "expiring due keys failed; trying again at the next check");
        }
    }
}
