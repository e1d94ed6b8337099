//! Raft wiring on openraft: the node type, the type-configuration bound every QuorumKV
//! configuration satisfies, the in-memory log store and the state-machine adapter.
//!
//! Two configurations exist: kv-core's simulated one (deterministic runtime) and kv-node's
//! native one (tokio). They share everything here and differ only in the async runtime, the log
//! store, the snapshot store and the network.

pub mod log_store;
pub mod state_machine;

use std::sync::Arc;

use openraft::RaftTypeConfig;
use openraft::alias::DefaultEntryOf;
use openraft::alias::EntryPayloadOf;
use serde::Deserialize;
use serde::Serialize;

use crate::command::Response;
use crate::command::Write;

/// How to reach a cluster member: its Raft (peer) address and its client address.
/// Both are empty in the simulator.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvNode {
    /// Address of the node's Raft port (`host:port`).
    pub raft_addr: String,
    /// Address of the node's client (RESP) port (`host:port`).
    pub client_addr: String,
}

/// Standard Raft leader ids: at most one leader per term. (openraft's default "advanced" ids
/// allow several leaders in one term, told apart by node id; QuorumKV keeps the textbook rule,
/// which the simulator checks as election safety.)
pub type StdLeaderId = openraft::impls::leader_id_std::LeaderId<u64, u64>;

/// A write as a log entry holds it. Shared, so that what reads entries back (the state
/// machine applying them, replication sending them, a leader keeping a proposal in case it
/// bounces to another leader) takes a reference, not a copy of the key and value. It encodes
/// exactly as the [`Write`] inside (serde's `rc`), so log records and messages are unchanged.
pub type LogWrite = Arc<Write>;

/// The bound shared by every QuorumKV Raft type configuration.
pub trait KvTypeConfig:
    RaftTypeConfig<
        D = LogWrite,
        R = Response,
        NodeId = u64,
        Node = KvNode,
        Term = u64,
        LeaderId = StdLeaderId,
        Payload = EntryPayloadOf<Self>,
        Entry = DefaultEntryOf<Self>,
    >
{
}

impl<C> KvTypeConfig for C where
    C: RaftTypeConfig<
            D = LogWrite,
            R = Response,
            NodeId = u64,
            Node = KvNode,
            Term = u64,
            LeaderId = StdLeaderId,
            Payload = EntryPayloadOf<C>,
            Entry = DefaultEntryOf<C>,
        >
{
}
