//! Watching the cluster's fault tolerance: a follower that stopped making progress (seen from
//! the leader), and this node having lost data the leader believes it holds (seen from the
//! follower).
//!
//! Raft assumes a member never loses what it acknowledged. A member restarted with a wiped
//! data directory and the same id breaks that: the leader keeps offering entries after the
//! index it believes the member holds, the member keeps answering that it lacks them, and
//! openraft loops on it forever. Both ends now say so, loudly:
//! - the follower ([`LostData`]) refuses the leader's AppendEntries with an error that tells
//!   the operator what to do, answers `/health` with 503 and reports `raft_data_lost:1`;
//! - the leader ([`watch_replication`]) logs a warning for every follower whose replication
//!   made no progress for [`STALL_AFTER`] while it has entries to send, and counts such
//!   followers in `quorumkv_replication_stalled` and INFO's `raft_stalled_followers`.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering;
use std::time::Duration;
use std::time::Instant;

use openraft::type_config::async_runtime::WatchReceiver;

use super::Node;

/// A follower whose replication does not advance for this long is stalled.
pub const STALL_AFTER: Duration = Duration::from_secs(5);

/// AppendEntries that must keep naming the same entry this node lacks, for at least
/// [`LOST_AFTER`], before the node concludes it lost data. (A legitimate probe of a new or
/// lagging member moves on after one answer.)
const LOST_AFTER_REQUESTS: u64 = 50;
const LOST_AFTER: Duration = Duration::from_secs(2);

/// The follower's side: has the leader been asking for entries this node should hold?
#[derive(Debug, Default)]
pub struct LostData {
    probe: Mutex<Probe>,
    /// Whether `probe` holds a run of requests past this node's log (so that the usual case,
    /// an AppendEntries this node can take, costs no lock).
    probing: AtomicBool,
    lost: AtomicBool,
}

#[derive(Debug, Default)]
struct Probe {
    prev: Option<u64>,
    since: Option<Instant>,
    count: u64,
}

impl LostData {
    /// Whether this node has concluded it lost data.
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::Relaxed)
    }

    /// Looks at an AppendEntries from `leader` whose previous entry is `prev_index`, this
    /// node's log ending at `last_index`. `Err` with the operator's instructions once the
    /// leader has insisted long enough on an entry past this node's log.
    pub fn observe(
        &self,
        node: u64,
        leader: u64,
        prev_index: Option<u64>,
        last_index: Option<u64>,
    ) -> Result<(), String> {
        let lost_message = || {
            format!(
                "node {node} lacks log entry {} that leader {leader} believes it holds: its data directory was wiped or lost its newest entries. \
                 Raft cannot take it back under the same id. Remove it (RAFT REMOVE {node} on the leader), then start it with an empty data directory and --join, \
                 or restore its data directory",
                prev_index.unwrap_or(0)
            )
        };
        if self.is_lost() {
            return Err(lost_message());
        }
        let beyond = matches!((prev_index, last_index), (Some(p), l) if l.is_none_or(|l| p > l));
        if !beyond && !self.probing.load(Ordering::Relaxed) {
            return Ok(());
        }
        let mut probe = self.probe.lock().expect("probe lock poisoned");
        self.probing.store(beyond, Ordering::Relaxed);
        if !beyond {
            *probe = Probe::default();
            return Ok(());
        }
        if probe.prev != prev_index {
            *probe = Probe {
                prev: prev_index,
                since: Some(Instant::now()),
                count: 0,
            };
        }
        probe.count += 1;
        let insisted = probe.since.is_some_and(|t| t.elapsed() >= LOST_AFTER);
        if probe.count >= LOST_AFTER_REQUESTS && insisted {
            self.lost.store(true, Ordering::Relaxed);
            let message = lost_message();
            tracing::error!("{message}");
            return Err(message);
        }
        Ok(())
    }
}

/// The leader's side: every second, compares each follower's replicated index with the log;
/// warns once per stall and keeps the node's count of stalled followers current.
pub(super) async fn watch_replication(node: Node) {
    let mut shutdown = node.shutdown_signal();
    // follower -> (matched index, when it last changed, warned)
    let mut seen: BTreeMap<u64, (u64, Instant, bool)> = BTreeMap::new();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = shutdown.changed() => return,
        }
        let metrics = node.raft().metrics().borrow_watched().clone();
        let last = metrics.last_log_index.unwrap_or(0);
        let Some(replication) = metrics.replication.as_ref() else {
            seen.clear();
            node.metrics().replication_stalled.set(0);
            continue;
        };
        let now = Instant::now();
        let mut stalled = 0;
        for (&follower, matched) in replication.iter() {
            let matched = matched.as_ref().map_or(0, |l| l.index);
            let entry = seen.entry(follower).or_insert((matched, now, false));
            if entry.0 != matched || matched >= last {
                *entry = (matched, now, false);
                continue;
            }
            if now.duration_since(entry.1) >= STALL_AFTER {
                stalled += 1;
                if !entry.2 {
                    entry.2 = true;
                    tracing::warn!(
                        follower,
                        matched,
                        last,
                        "replication to node {follower} has made no progress for {:?} (it holds up to {matched}, the log is at {last}): it is unreachable, or it lost its data",
                        now.duration_since(entry.1)
                    );
                }
            }
        }
        seen.retain(|id, _| replication.contains_key(id));
        node.metrics().replication_stalled.set(stalled);
    }
}
