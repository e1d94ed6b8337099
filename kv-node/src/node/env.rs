//! What the request path runs on in a native node: the wall clock, and forwarding to the
//! leader over the Raft port.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kv_core::raft::KvNode;
use kv_core::request::Environment;
use kv_core::request::Results;
use kv_core::wire::Op;
use kv_core::wire::OpError;

use crate::metrics::Metrics;
use crate::transport::CallError;
use crate::transport::Peers;
use crate::transport::RaftReply;
use crate::transport::RaftRequest;

/// The native [`Environment`]: clones share the connection pools.
#[derive(Debug, Clone)]
pub struct NodeEnv {
    peers: Peers,
    routes: Arc<BTreeMap<u64, String>>,
    metrics: Arc<Metrics>,
    /// How long the leader may take over a forwarded run (its own timeout), plus a margin.
    forward_timeout: Duration,
}

impl NodeEnv {
    /// Forwards over `peers`, reaching members at `routes` instead of their advertised Raft
    /// address where given.
    pub fn new(
        peers: Peers,
        routes: Arc<BTreeMap<u64, String>>,
        metrics: Arc<Metrics>,
        request_timeout: Duration,
    ) -> Self {
        NodeEnv {
            peers,
            routes,
            metrics,
            forward_timeout: request_timeout + Duration::from_secs(1),
        }
    }
}

impl Environment for NodeEnv {
    fn now_ms(&self) -> u64 {
        crate::clock::now_ms()
    }

    async fn forward(&self, leader: u64, node: KvNode, ops: Vec<Op>) -> Result<Results, OpError> {
        let addr = self.routes.get(&leader).cloned().unwrap_or(node.raft_addr);
        if addr.is_empty() {
            return Err(OpError::NoLeader);
        }
        self.metrics.forwarded.add(ops.len() as u64);
        let request = RaftRequest::Forward(ops);
        match self.peers.call(&addr, &request, self.forward_timeout).await {
            Ok(RaftReply::Forwarded(results)) => Ok(results),
            Ok(_) => Err(OpError::OutcomeUnknown(format!(
                "leader {leader} answered out of protocol"
            ))),
            // Not sent, or refused unhandled.
            Err(e @ (CallError::Unreachable { .. } | CallError::Refused { .. })) => {
                Err(OpError::Unavailable(e.to_string()))
            }
            // Sent, and the answer lost or garbled.
            Err(e @ (CallError::Timeout { .. } | CallError::Connection { .. } | CallError::Protocol { .. })) => {
                Err(OpError::OutcomeUnknown(e.to_string()))
            }
        }
    }
}
