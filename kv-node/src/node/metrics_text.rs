//! The node's `/metrics` page: the counters of [`Metrics`] plus Raft state and sizes.

use kv_core::wire::Role;
use kv_core::wire::Status;

use crate::metrics::Metrics;
use crate::metrics::Sample;

/// Renders the Prometheus text for a node with `status`, whose snapshot file holds
/// `snapshot_bytes` and whose store holds `keys` live keys.
pub(super) fn render(status: &Status, metrics: &Metrics, snapshot_bytes: u64, keys: usize) -> String {
    let samples = [
        Sample {
            name: "quorumkv_raft_term",
            help: "Current Raft term.",
            value: status.term as f64,
        },
        Sample {
            name: "quorumkv_raft_is_leader",
            help: "1 if this node leads.",
            value: f64::from(u8::from(status.role == Role::Leader)),
        },
        Sample {
            name: "quorumkv_raft_last_log_index",
            help: "Last log index.",
            value: status.last_log_index as f64,
        },
        Sample {
            name: "quorumkv_raft_commit_index",
            help: "Last committed log index.",
            value: status.commit_index as f64,
        },
        Sample {
            name: "quorumkv_raft_applied_index",
            help: "Last applied log index.",
            value: status.applied_index as f64,
        },
        Sample {
            name: "quorumkv_raft_snapshot_index",
            help: "Last log index covered by the snapshot.",
            value: status.snapshot_index as f64,
        },
        Sample {
            name: "quorumkv_raft_voters",
            help: "Voters in the membership.",
            value: status.voters.len() as f64,
        },
        Sample {
            name: "quorumkv_snapshot_bytes",
            help: "Size of the current snapshot file.",
            value: snapshot_bytes as f64,
        },
        Sample {
            name: "quorumkv_keys",
            help: "Live keys in the store.",
            value: keys as f64,
        },
    ];
    metrics.render(&samples)
}
