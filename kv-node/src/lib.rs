//! QuorumKV's native node.
//!
//! [`storage`] holds what a node keeps on disk: a segmented, checksummed, group-committed Raft
//! log ([`storage::LogStore`]), file snapshots ([`storage::FileSnapshotStore`]) and an embedded
//! single-node store on top of both ([`storage::Embedded`]).
//!
//! The path of a write, folder by folder: the client [`protocol`] (RESP) turns a command into
//! an operation; the [`node`] runs it down kv-core's request path
//! ([`kv_core::request`]), which forwards it to the leader over the Raft [`transport`] when
//! this node does not lead; openraft appends it to the [`storage`] log, replicates it, and
//! applies it to kv-core's state machine. [`server`] is the composition root that binds the
//! ports (client, Raft, [`admin`] HTTP) and wires all of it together; nothing imports it back.
//! [`client`] is the cluster client (leader discovery, failover, exactly-once writes through
//! client sessions) of the `kv` CLI, joining and the Python binding. The binaries are
//! `kv-node` (run a node or a local cluster) and `kv` (the CLI).
//!
//! [`NodeConfig`] is the native openraft type configuration: kv-core's commands, responses and
//! node type on the tokio runtime. It differs from the simulator's configuration only in the
//! runtime.

pub mod admin;
pub mod client;
pub mod clock;
pub mod metrics;
pub mod node;
pub mod pki;
pub mod protocol;
pub mod server;
pub mod storage;
pub mod tls;
pub mod transport;

use kv_core::command::Response;
use kv_core::raft::KvNode;
use kv_core::raft::LogWrite;

openraft::declare_raft_types!(
    /// The openraft type configuration of a native QuorumKV node (tokio runtime).
    pub NodeConfig:
        D = LogWrite,
        R = Response,
        NodeId = u64,
        Node = KvNode,
        LeaderId = kv_core::raft::StdLeaderId,
        AsyncRuntime = openraft_rt_tokio::TokioRuntime,
);
