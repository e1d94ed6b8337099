//! Membership and leadership changes in the simulator, through openraft's own API: a fresh node
//! joins as a learner (`Raft::add_learner`, waiting until it has caught up) and is then promoted
//! to voter (`Raft::change_membership`, which goes through a joint configuration); a node is
//! removed the same way; leadership moves with `Trigger::transfer_leader`.
//!
//! Each change runs as a client task against whichever node leads when it is asked, so it can
//! fail or time out like any client request (no leader, leader deposed, a change already in
//! progress). Every step is an [`EventKind::Membership`] event. A removed node is shut down once
//! the configuration without it is committed, and stays down: its disk is kept so log matching
//! is still checked over it, but it is no longer a replica.

use std::collections::BTreeSet;
use std::time::Duration;

use openraft::ChangeMembers;
use openraft::ServerState;
use openraft::async_runtime::WatchReceiver;
use openraft_rt::AsyncRuntime;

use super::CLIENT_GROUP;
use super::Disk;
use super::EventKind;
use super::SimError;
use super::SimRaft;
use super::Simulation;
use super::World;
use super::WorldRef;
use crate::raft::KvNode;
use crate::raft::log_store::MemLogStore;
use crate::raft::state_machine::MemSnapshotStore;
use crate::runtime::SimRuntime;

/// Highest node id a simulation may grow to (a bound on the cluster drawing and the workload).
pub const MAX_NODE_ID: u64 = 9;
/// Fewest voters a removal may leave.
pub const MIN_VOTERS: usize = 3;

impl World {
    /// The node that leads the highest term any running node leads, and its handle.
    pub(super) fn leader(&self) -> Option<(u64, SimRaft)> {
        self.rafts
            .iter()
            .filter_map(|(&id, raft)| {
                let m = raft.metrics();
                let m = m.borrow_watched();
                (m.state == ServerState::Leader).then_some((m.current_term, id, raft.clone()))
            })
            .max_by_key(|(term, id, _)| (*term, *id))
            .map(|(_, id, raft)| (id, raft))
    }

    /// Voters (one set, or two during a joint configuration) and learners as the leader sees
    /// them, or as the lowest-numbered running node does when there is no leader.
    pub(super) fn membership(&self) -> (Vec<BTreeSet<u64>>, BTreeSet<u64>) {
        let raft = self
            .leader()
            .map(|(_, r)| r)
            .or_else(|| self.rafts.values().next().cloned());
        raft.map_or_else(Default::default, |raft| {
            let m = raft.metrics();
            let m = m.borrow_watched();
            let config = m.membership_config.membership();
            (config.get_joint_config().clone(), config.learner_ids().collect())
        })
    }

    fn membership_event(&mut self, action: String) {
        self.event(EventKind::Membership { action });
    }
}

/// Runs a management call against the leader with a time limit; the error as text.
async fn on_leader<T, E, F, Fut>(world: &WorldRef, what: &str, timeout: Duration, call: F) -> Result<T, String>
where
    E: std::fmt::Display,
    F: FnOnce(SimRaft) -> Fut,
    Fut: Future<Output = Result<T, E>> + Send,
{
    let leader = world.lock().leader();
    let Some((id, raft)) = leader else {
        return Err(format!("{what}: no leader"));
    };
    match SimRuntime::timeout(timeout, call(raft)).await {
        Ok(Ok(t)) => Ok(t),
        Ok(Err(e)) => Err(format!("{what} on leader {id}: {e}")),
        Err(_) => Err(format!("{what} on leader {id}: no answer within {timeout:?}")),
    }
}

impl Simulation {
    /// Node ids that are part of the run and not removed, running or not.
    pub fn node_ids(&self) -> Vec<u64> {
        let world = self.world.lock();
        self.disks
            .keys()
            .copied()
            .filter(|id| !world.removed.contains(id))
            .collect()
    }

    /// Whether a node was removed from the cluster (it stays down).
    pub fn is_removed(&self, node: u64) -> bool {
        self.world.lock().removed.contains(&node)
    }

    /// Voters (two sets during a joint configuration) and learners, as the leader sees them.
    pub fn membership(&self) -> (Vec<BTreeSet<u64>>, BTreeSet<u64>) {
        self.world.lock().membership()
    }

    /// Starts a fresh node with an empty disk and asks the leader to add it as a learner and,
    /// once it has caught up, to promote it to voter. Returns the new node's id; the change
    /// itself completes (or fails) later, as events.
    pub fn add_node(&mut self) -> Result<u64, SimError> {
        let id = self.disks.keys().max().copied().unwrap_or(0) + 1;
        if id > MAX_NODE_ID {
            return Err(SimError::TooManyNodes(MAX_NODE_ID));
        }
        self.disks.insert(
            id,
            Disk {
                log: MemLogStore::default(),
                snapshots: MemSnapshotStore::default(),
            },
        );
        self.exec.enter(|| {
            let mut world = self.world.lock();
            world.partition_of.insert(id, 0);
            world.membership_event(format!("start node {id} (empty)"));
        });
        self.boot(id);
        let world = self.world.clone();
        let timeout = Duration::from_millis(self.options().client_timeout_ms);
        self.exec.spawn_in(CLIENT_GROUP, async move {
            let added = on_leader(&world, "add learner", timeout, |raft| async move {
                raft.add_learner(id, KvNode::default(), true).await
            })
            .await;
            let action = match added {
                Err(e) => format!("node {id} not added: {e}"),
                Ok(_) => {
                    world
                        .lock()
                        .membership_event(format!("node {id} is a learner and has caught up"));
                    let voters = ChangeMembers::AddVoterIds(BTreeSet::from([id]));
                    match on_leader(&world, "promote", timeout, |raft| async move {
                        raft.change_membership(voters, false).await
                    })
                    .await
                    {
                        Ok(_) => format!("node {id} is a voter"),
                        Err(e) => format!("node {id} not promoted: {e}"),
                    }
                }
            };
            world.lock().membership_event(action);
        });
        self.exec.run_until_idle();
        self.observe();
        Ok(id)
    }

    /// Asks the leader to remove `node` (voter or learner) from the cluster; once that is
    /// committed the node is shut down for good. Refused if it would leave fewer than
    /// [`MIN_VOTERS`] voters.
    pub fn remove_node(&mut self, node: u64) -> Result<(), SimError> {
        self.check_member(node)?;
        let (joint, learners) = self.membership();
        let voters: BTreeSet<u64> = joint.last().cloned().unwrap_or_default();
        if voters.contains(&node) && voters.len() <= MIN_VOTERS {
            return Err(SimError::TooFewVoters(MIN_VOTERS));
        }
        let change = if learners.contains(&node) && !voters.contains(&node) {
            ChangeMembers::RemoveNodes(BTreeSet::from([node]))
        } else {
            ChangeMembers::RemoveVoters(BTreeSet::from([node]))
        };
        let world = self.world.clone();
        let timeout = Duration::from_millis(self.options().client_timeout_ms);
        self.exec.enter(|| {
            self.world.lock().membership_event(format!("remove node {node}"));
        });
        self.exec.spawn_in(CLIENT_GROUP, async move {
            let removed = on_leader(&world, "remove", timeout, |raft| async move {
                raft.change_membership(change, false).await
            })
            .await;
            let mut w = world.lock();
            match removed {
                Ok(_) => {
                    w.membership_event(format!("node {node} removed"));
                    w.retiring.push(node);
                }
                Err(e) => w.membership_event(format!("node {node} not removed: {e}")),
            }
        });
        self.exec.run_until_idle();
        self.observe();
        Ok(())
    }

    /// Asks the leader to hand leadership to `to` (openraft's `transfer_leader`): the leader
    /// stops and `to` starts an election at once, with the leader's blessing.
    pub fn transfer_leader(&mut self, to: u64) -> Result<(), SimError> {
        self.check_member(to)?;
        let world = self.world.clone();
        let timeout = Duration::from_millis(self.options().client_timeout_ms);
        self.exec.enter(|| {
            self.world
                .lock()
                .membership_event(format!("transfer leadership to node {to}"));
        });
        self.exec.spawn_in(CLIENT_GROUP, async move {
            let done = on_leader(&world, "transfer", timeout, |raft| async move {
                raft.trigger().transfer_leader(to).await
            })
            .await;
            if let Err(e) = done {
                world
                    .lock()
                    .membership_event(format!("leadership not moved to {to}: {e}"));
            }
        });
        self.exec.run_until_idle();
        self.observe();
        Ok(())
    }

    /// A node of the run that was not removed.
    pub(super) fn check_member(&self, node: u64) -> Result<(), SimError> {
        self.check_node(node)?;
        if self.is_removed(node) {
            return Err(SimError::Removed(node));
        }
        Ok(())
    }

    /// Shuts down nodes whose removal was committed.
    pub(super) fn retire_removed(&mut self) {
        let retiring = std::mem::take(&mut self.world.lock().retiring);
        for node in retiring {
            let group = self.groups.remove(&node);
            self.exec.enter(|| {
                let mut world = self.world.lock();
                world.removed.insert(node);
                world.rafts.remove(&node);
                world.stores.remove(&node);
                world.shared.remove(&node);
                world.membership_event(format!("node {node} shut down"));
            });
            if let Some(group) = group {
                self.exec.kill_group(group);
            }
        }
    }
}
