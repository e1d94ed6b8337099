//! The simulated network: every Raft RPC and its reply are messages with a seeded latency that
//! may be lost to a partition, a random drop or a crashed receiver.
//!
//! A lost message looks to its sender as it would over TCP: nothing comes back, and the call
//! fails with `Unreachable` once the RPC's time budget (`RPCOption::hard_ttl`) has passed.

use std::future::Future;
use std::time::Duration;

use openraft::RaftNetworkFactory;
use openraft::alias::SnapshotOf;
use openraft::alias::VoteOf;
use openraft::error::RPCError;
use openraft::error::ReplicationClosed;
use openraft::error::StreamingError;
use openraft::error::Unreachable;
use openraft::network::RPCOption;
use openraft::network::v2::RaftNetworkV2;
use openraft::raft::AppendEntriesRequest;
use openraft::raft::AppendEntriesResponse;
use openraft::raft::SnapshotResponse;
use openraft::raft::TransferLeaderRequest;
use openraft::raft::TransferLeaderResponse;
use openraft::raft::VoteRequest;
use openraft::raft::VoteResponse;
use openraft_rt::AsyncRuntime;

use super::SimConfig;
use super::SimRaft;
use super::World;
use super::WorldRef;
use crate::raft::KvNode;
use crate::request::Results;
use crate::runtime::SimRuntime;
use crate::wire::Op;
use crate::wire::OpError;

/// Creates a [`SimNetwork`] per peer for one node.
#[derive(Clone)]
pub struct SimNetworkFactory {
    pub(super) node: u64,
    pub(super) world: WorldRef,
}

impl RaftNetworkFactory<SimConfig> for SimNetworkFactory {
    type Network = SimNetwork;

    async fn new_client(&mut self, target: u64, _node: &KvNode) -> SimNetwork {
        SimNetwork {
            from: self.node,
            to: target,
            world: self.world.clone(),
        }
    }
}

/// The link from one node to one peer.
pub struct SimNetwork {
    from: u64,
    to: u64,
    world: WorldRef,
}

/// Why a message did not arrive.
#[derive(Debug, thiserror::Error)]
#[error("message {msg} from {from} to {to} lost: {reason}")]
struct Lost {
    msg: u64,
    from: u64,
    to: u64,
    reason: &'static str,
}

impl SimNetwork {
    /// Carries `kind` to the peer, runs `handle` there, and carries the reply back.
    async fn call<T, E, F, Fut>(&self, kind: String, budget: Duration, handle: F) -> Result<T, Lost>
    where
        F: FnOnce(SimRaft) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let request = self.travel(self.from, self.to, kind.clone(), budget).await?;
        let raft = self.world.lock().receiver(self.to).ok_or(Lost {
            msg: request,
            from: self.from,
            to: self.to,
            reason: "receiver crashed",
        })?;
        let reply = handle(raft).await.map_err(|_| Lost {
            msg: request,
            from: self.from,
            to: self.to,
            reason: "receiver crashed while handling it",
        })?;
        self.travel(self.to, self.from, format!("{kind} reply"), budget).await?;
        Ok(reply)
    }

    /// One message: decided lost at send or on arrival, or delivered after its latency.
    async fn travel(&self, from: u64, to: u64, kind: String, budget: Duration) -> Result<u64, Lost> {
        let (msg, fate) = self.world.lock().send(from, to, kind);
        match fate {
            Err(reason) => {
                SimRuntime::sleep(budget).await;
                Err(Lost { msg, from, to, reason })
            }
            Ok(latency) => {
                SimRuntime::sleep(latency).await;
                match self.world.lock().arrive(msg, from, to) {
                    Ok(()) => Ok(msg),
                    Err(reason) => Err(Lost { msg, from, to, reason }),
                }
            }
        }
    }
}

fn unreachable(lost: Lost) -> RPCError<SimConfig> {
    RPCError::Unreachable(Unreachable::new(&lost))
}

impl RaftNetworkV2<SimConfig> for SimNetwork {
    type SnapshotData = Vec<u8>;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<SimConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<SimConfig>, RPCError<SimConfig>> {
        let kind = match rpc.entries.len() {
            0 => "heartbeat".to_string(),
            n => format!("append {n}"),
        };
        self.call(
            kind,
            option.hard_ttl(),
            |raft| async move { raft.append_entries(rpc).await },
        )
        .await
        .map_err(unreachable)
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<SimConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<SimConfig>, RPCError<SimConfig>> {
        self.call("vote".to_string(), option.hard_ttl(), |raft| async move {
            raft.vote(rpc).await
        })
        .await
        .map_err(unreachable)
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<SimConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<SimConfig>, RPCError<SimConfig>> {
        self.call("pre-vote".to_string(), option.hard_ttl(), |raft| async move {
            raft.pre_vote(rpc).await
        })
        .await
        .map_err(unreachable)
    }

    async fn full_snapshot(
        &mut self,
        vote: VoteOf<SimConfig>,
        snapshot: SnapshotOf<SimConfig, Vec<u8>>,
        cancel: impl Future<Output = ReplicationClosed> + Send + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<SimConfig>, StreamingError<SimConfig>> {
        let kind = format!("snapshot {}B", snapshot.snapshot.len());
        let send = self.call(kind, option.hard_ttl(), |raft| async move {
            raft.install_full_snapshot(vote, snapshot).await
        });
        match SimRuntime::select2(cancel, send).await {
            openraft_rt::Select2::First(closed) => Err(StreamingError::Closed(closed)),
            openraft_rt::Select2::Second(result) => result.map_err(|lost| Unreachable::new(&lost).into()),
        }
    }

    async fn transfer_leader(
        &mut self,
        req: TransferLeaderRequest<SimConfig>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<SimConfig>, RPCError<SimConfig>> {
        self.call("transfer-leader".to_string(), option.hard_ttl(), |raft| async move {
            raft.handle_transfer_leader(req).await
        })
        .await
        .map_err(unreachable)
    }
}

/// Carries a run of client operations from a follower to the leader, executes it there with
/// the leader's request path, and carries the results back. A lost message on either leg is
/// an unknown outcome, as a broken TCP connection is: the sender cannot tell which leg it was.
pub(super) async fn forward(
    world: &WorldRef,
    from: u64,
    to: u64,
    ops: Vec<Op>,
    budget: Duration,
) -> Result<Results, OpError> {
    let link = SimNetwork {
        from,
        to,
        world: world.clone(),
    };
    let not_run = |lost: Lost| OpError::Unavailable(lost.to_string());
    let kind = format!("forward {}", ops.len());
    let msg = link.travel(from, to, kind.clone(), budget).await.map_err(not_run)?;
    let path = world.path(to).ok_or_else(|| {
        not_run(Lost {
            msg,
            from,
            to,
            reason: "receiver crashed",
        })
    })?;
    let results = path.execute_forwarded(ops).await;
    link.travel(to, from, format!("{kind} reply"), budget)
        .await
        .map_err(|lost| OpError::OutcomeUnknown(lost.to_string()))?;
    Ok(results)
}

impl World {
    /// Records a message leaving `from`; returns its id and either its latency or why it is lost.
    fn send(&mut self, from: u64, to: u64, kind: String) -> (u64, Result<Duration, &'static str>) {
        let msg = self.next_msg;
        self.next_msg += 1;
        self.event(super::EventKind::Send {
            msg,
            from,
            to,
            kind: kind.clone(),
        });
        let fate = if !self.connected(from, to) {
            Err("partitioned")
        } else if self.draw_f64() < self.drop_rate {
            Err("dropped")
        } else {
            let (min, max) = self.options.latency_ms;
            let micros = min * 1000 + self.draw_below((max - min) * 1000 + 1);
            Ok(Duration::from_micros(micros))
        };
        match fate {
            Ok(latency) => {
                let sent_ns = self.now_ns();
                let arrive_ns = sent_ns + latency.as_nanos() as u64;
                self.in_flight.insert(
                    msg,
                    super::InFlight {
                        id: msg,
                        from,
                        to,
                        kind,
                        sent_ns,
                        arrive_ns,
                    },
                );
            }
            Err(reason) => self.event(super::EventKind::Drop {
                msg,
                reason: reason.to_string(),
            }),
        }
        (msg, fate)
    }

    /// A message reaches `to`: delivered unless the link was cut or the receiver crashed meanwhile.
    fn arrive(&mut self, msg: u64, from: u64, to: u64) -> Result<(), &'static str> {
        self.in_flight.remove(&msg);
        let verdict = if !self.rafts.contains_key(&to) {
            Err("receiver crashed")
        } else if !self.connected(from, to) {
            Err("partitioned in flight")
        } else {
            Ok(())
        };
        match verdict {
            Ok(()) => self.event(super::EventKind::Deliver { msg }),
            Err(reason) => self.event(super::EventKind::Drop {
                msg,
                reason: reason.to_string(),
            }),
        }
        verdict
    }

    fn receiver(&self, node: u64) -> Option<SimRaft> {
        self.rafts.get(&node).cloned()
    }

    fn connected(&self, a: u64, b: u64) -> bool {
        self.partition_of.get(&a) == self.partition_of.get(&b)
    }
}
