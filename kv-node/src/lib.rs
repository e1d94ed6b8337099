//! QuorumKV's native node.
//!
//! [`storage`] holds what a node keeps on disk: a segmented, checksummed, group-committed Raft
//! log ([`storage::LogStore`]), file snapshots ([`storage::FileSnapshotStore`]) and an embedded
//! single-node store on top of both ([`storage::Embedded`]).
//!
//! A cluster member is a [`node::Node`]: the storage above under openraft, the Raft
//! [`transport`] on a port of its own, the RESP2 client port ([`resp`]) and the admin HTTP port
//! ([`admin`]: `/metrics`, `/health`). [`client`] is a small RESP client for the `kv` CLI and
//! tests. The binaries are `kv-node` (run a node or a local cluster) and `kv` (the CLI).
//!
//! [`NodeConfig`] is the native openraft type configuration: kv-core's commands, responses and
//! node type on the tokio runtime. It differs from the simulator's configuration only in the
//! runtime.

pub mod admin;
pub mod client;
pub mod metrics;
pub mod node;
pub mod resp;
pub mod storage;
pub mod transport;

use kv_core::command::Response;
use kv_core::command::Write;
use kv_core::raft::KvNode;

openraft::declare_raft_types!(
    /// The openraft type configuration of a native QuorumKV node (tokio runtime).
    pub NodeConfig:
        D = Write,
        R = Response,
        NodeId = u64,
        Node = KvNode,
        LeaderId = kv_core::raft::StdLeaderId,
        AsyncRuntime = openraft_rt_tokio::TokioRuntime,
);
