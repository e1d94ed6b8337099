//! The deterministic simulator: N real openraft nodes on one [`Executor`], a simulated network,
//! faults, clients, an event trace and the invariant checkers.
//!
//! Everything that varies between runs is drawn from the seed: election timeouts (through the
//! runtime's RNG), message latencies and drops, and the workload. The same seed and the same
//! calls give the same trace, natively and in wasm ([`Simulation::trace_hash`]).
//!
//! A crash drops every task of the node at once; its [`MemLogStore`] and [`MemSnapshotStore`]
//! survive as a disk would, and a restart builds a fresh `Raft` over them. Nodes join and leave
//! through openraft's membership API (`membership.rs`: [`Simulation::add_node`],
//! [`Simulation::remove_node`], [`Simulation::transfer_leader`]); a removed node stays down.
//! [`workload::Workload`] drives the seeded fault schedule step by step.

mod membership;
pub mod network;
mod ops;
pub mod time;
pub mod trace;
pub mod workload;

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::fmt::Debug;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::MutexGuard;
use std::time::Duration;

use openraft::Config;
use openraft::EntryPayload;
use openraft::Raft;
use openraft::ServerState;
use openraft::SnapshotPolicy;
use openraft::alias::EntryOf;
use openraft::async_runtime::WatchReceiver;
use openraft_rt::Instant;
use rand::Rng;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::Deserialize;
use serde::Serialize;

pub use self::membership::MAX_NODE_ID;
pub use self::membership::MIN_VOTERS;
pub use self::ops::ClientCall;
pub use self::ops::OpId;
pub use self::ops::OpState;
pub use self::ops::OpView;
pub use self::ops::TxGuardCall;
pub use self::trace::Event;
pub use self::trace::EventKind;
pub use self::trace::Role;
pub use self::trace::Trace;
use crate::check::EntryId;
use crate::check::Violation;
use crate::check::election_safety::ElectionSafety;
use crate::check::leader_completeness::LeaderCompleteness;
use crate::check::linearizability;
use crate::check::log_matching;
use crate::check::state_machine_safety::StateMachineSafety;
use crate::command::Limits;
use crate::command::encode;
use crate::raft::KvNode;
use crate::raft::log_store::MemLogStore;
use crate::raft::state_machine::MemSnapshotStore;
use crate::raft::state_machine::StateMachine;
use crate::raft::state_machine::StoreHandle;
use crate::request::Environment;
use crate::request::NodeShared;
use crate::request::RequestPath;
use crate::request::Results;
use crate::runtime::Executor;
use crate::runtime::SimInstant;
use crate::runtime::SimRuntime;
use crate::runtime::TaskGroup;
use crate::wire::Op;
use crate::wire::OpError;

openraft::declare_raft_types!(
    /// The Raft type configuration of simulated nodes: QuorumKV's types on the virtual-time runtime.
    pub SimConfig:
        D = crate::raft::LogWrite,
        R = crate::command::Response,
        NodeId = u64,
        Node = KvNode,
        LeaderId = crate::raft::StdLeaderId,
        AsyncRuntime = SimRuntime,
);

/// A simulated node's state machine.
pub type SimStateMachine = StateMachine<SimConfig, MemSnapshotStore<SimConfig>>;
/// A simulated node's Raft handle.
pub type SimRaft = Raft<SimConfig, SimStateMachine>;
/// A simulated node's request path: the one kv-node runs, over simulated time and messages.
pub type SimPath = RequestPath<SimConfig, SimStateMachine, SimEnv>;

/// What the request path of a simulated node runs on: virtual time, and forwarding to the
/// leader as a simulated message that can be delayed, dropped or cut by a partition.
#[derive(Clone)]
pub struct SimEnv {
    node: u64,
    world: WorldRef,
}

impl Environment for SimEnv {
    fn now_ms(&self) -> u64 {
        SimInstant::now().as_nanos() / 1_000_000
    }

    async fn forward(&self, leader: u64, _node: KvNode, ops: Vec<Op>) -> Result<Results, OpError> {
        // A lost message is noticed after a quarter of the client's patience, so that a write
        // whose answer was lost can still be sent again (see `crate::request`) in time.
        let budget = Duration::from_millis(self.world.lock().options.client_timeout_ms / 4);
        network::forward(&self.world, self.node, leader, ops, budget).await
    }
}

/// Tasks of simulated clients live here; it is never killed.
const CLIENT_GROUP: TaskGroup = TaskGroup(1);

/// Parameters of a simulation. Everything random is drawn from `seed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimOptions {
    /// The seed.
    pub seed: u64,
    /// Number of nodes, 3 to 7.
    pub nodes: usize,
    /// One-way message latency range, milliseconds (inclusive).
    pub latency_ms: (u64, u64),
    /// Election timeout range, milliseconds.
    pub election_timeout_ms: (u64, u64),
    /// Leader heartbeat interval, milliseconds.
    pub heartbeat_ms: u64,
    /// How long a client waits for an operation before giving up (outcome unknown).
    pub client_timeout_ms: u64,
    /// Take a snapshot (and compact the log) every this many applied entries.
    pub snapshot_every: u64,
    /// How many recent events to keep in memory (the trace hash covers all of them).
    pub trace_capacity: usize,
    /// A bug planted on purpose, for showing that seeded runs find bugs: linearizable reads
    /// skip the read-index check and answer from the local state machine. Off by default;
    /// only the simulator's clients look at it, so no kv-node path can reach it.
    #[serde(default)]
    pub planted_bug: bool,
    /// A second planted bug: the simulator's clients send a transaction's steps as separate
    /// operations (one log entry each, as a client that emulates MULTI with a pipeline would)
    /// and take their answers as the transaction's, ignoring its guard. Each key stays
    /// linearizable; only the transaction's atomicity breaks, which the linearizability
    /// checker must see. Off by default; only the simulator's clients look at it.
    #[serde(default)]
    pub planted_split_transactions: bool,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            seed: 0,
            nodes: 3,
            latency_ms: (1, 10),
            election_timeout_ms: (150, 300),
            heartbeat_ms: 50,
            client_timeout_ms: 2_000,
            snapshot_every: 100,
            trace_capacity: Trace::KEEP,
            planted_bug: false,
            planted_split_transactions: false,
        }
    }
}

/// Invalid requests to the simulator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    /// Node count out of range.
    #[error("a simulation has 3 to 7 nodes, not {0}")]
    NodeCount(usize),
    /// No node with this id.
    #[error("no node {0} (nodes are numbered from 1)")]
    NoSuchNode(u64),
    /// Crashing a node that is down.
    #[error("node {0} is already crashed")]
    AlreadyCrashed(u64),
    /// Restarting a node that is up.
    #[error("node {0} is running")]
    NotCrashed(u64),
    /// A partition that lists a node twice.
    #[error("node {0} is listed in more than one partition group")]
    NodeInTwoGroups(u64),
    /// A drop rate outside [0, 1].
    #[error("drop rate must be between 0 and 1, not {0}")]
    DropRate(String),
    /// Invalid option values.
    #[error("invalid options: {0}")]
    Options(String),
    /// Adding a node past the highest id.
    #[error("a simulation grows to at most {0} nodes")]
    TooManyNodes(u64),
    /// Removing a voter from the smallest cluster allowed.
    #[error("a cluster keeps at least {0} voters")]
    TooFewVoters(usize),
    /// Acting on a node that was removed from the cluster.
    #[error("node {0} was removed from the cluster")]
    Removed(u64),
}

/// A message on the wire, for rendering.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InFlight {
    /// Message id (as in the trace).
    pub id: u64,
    /// Sender.
    pub from: u64,
    /// Receiver.
    pub to: u64,
    /// What it carries.
    pub kind: String,
    /// When it was sent (virtual ns).
    pub sent_ns: u64,
    /// When it arrives (virtual ns).
    pub arrive_ns: u64,
}

/// One log entry, for rendering.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntryView {
    /// Index.
    pub index: u64,
    /// Term.
    pub term: u64,
    /// What it holds.
    pub summary: String,
}

/// One node, for rendering.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeView {
    /// Node id.
    pub id: u64,
    /// Role (or crashed).
    pub role: Role,
    /// Current term.
    pub term: u64,
    /// Whom it voted for in `term`.
    pub voted_for: Option<u64>,
    /// The leader it knows of.
    pub leader: Option<u64>,
    /// Highest index known committed.
    pub commit_index: u64,
    /// Highest index applied to the state machine.
    pub applied_index: u64,
    /// Highest index covered by its snapshot (entries up to it are compacted away).
    pub snapshot_index: u64,
    /// The log entries it holds (the latest 64).
    pub log: Vec<LogEntryView>,
    /// Number of entries in its log.
    pub log_len: usize,
    /// Keys in its state machine.
    pub keys: usize,
    /// Bytes of keys and values in its state machine.
    pub bytes: u64,
    /// Partition group it is in (nodes with equal numbers can talk).
    pub partition: u32,
    /// The voters in this node's membership config: one set, or two (old, new) during a joint
    /// configuration. Empty while it is down or before it has joined.
    pub voters: Vec<Vec<u64>>,
    /// The learners in this node's membership config.
    pub learners: Vec<u64>,
    /// Whether it was removed from the cluster (and shut down for good).
    pub removed: bool,
}

/// The whole cluster, for rendering: serializable to JSON as is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterView {
    /// Virtual time, milliseconds.
    pub now_ms: f64,
    /// The seed.
    pub seed: u64,
    /// Nodes by id.
    pub nodes: Vec<NodeView>,
    /// Messages on the wire.
    pub in_flight: Vec<InFlight>,
    /// Message drop probability.
    pub drop_rate: f64,
    /// Number of events so far.
    pub events: u64,
}

/// The verdict of every checker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckReport {
    /// Invariant violations (empty when all hold), each naming its invariant.
    pub violations: Vec<Violation>,
    /// The linearizability verdict of the client history.
    pub linearizability: linearizability::Verdict,
    /// Client operations checked.
    pub operations: usize,
}

impl CheckReport {
    /// Whether every invariant holds and the history is linearizable.
    pub fn is_ok(&self) -> bool {
        self.violations.is_empty() && matches!(self.linearizability, linearizability::Verdict::Linearizable)
    }
}

/// What the simulator last saw of a node's metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Seen {
    role: Option<Role>,
    term: u64,
    commit: u64,
}

/// State shared by the simulator, the network, the clients and the apply observers.
pub(crate) struct World {
    options: SimOptions,
    rng: Xoshiro256PlusPlus,
    trace: Trace,
    partition_of: BTreeMap<u64, u32>,
    drop_rate: f64,
    next_msg: u64,
    in_flight: BTreeMap<u64, InFlight>,
    rafts: BTreeMap<u64, SimRaft>,
    stores: BTreeMap<u64, StoreHandle>,
    /// What each running node's request paths share (new at each boot).
    shared: BTreeMap<u64, Arc<NodeShared>>,
    ops: Vec<ops::OpRecord>,
    election: ElectionSafety,
    completeness: LeaderCompleteness,
    sm_safety: StateMachineSafety,
    violations: Vec<Violation>,
    /// Highest term any node was seen in.
    max_term: u64,
    /// Nodes removed from the cluster; they stay down.
    removed: BTreeSet<u64>,
    /// Nodes whose removal was just committed, to be shut down.
    retiring: Vec<u64>,
}

/// A shared handle to the [`World`].
#[derive(Clone)]
pub(crate) struct WorldRef(Arc<Mutex<World>>);

impl WorldRef {
    fn lock(&self) -> MutexGuard<'_, World> {
        self.0.lock().expect("simulation state lock poisoned")
    }

    /// The request path of a running node (built on demand, so that the world holds no
    /// handle to itself).
    fn path(&self, node: u64) -> Option<SimPath> {
        let world = self.lock();
        let raft = world.rafts.get(&node)?.clone();
        let store = world.stores.get(&node)?.clone();
        let timeout = Duration::from_millis(world.options.client_timeout_ms);
        let env = SimEnv {
            node,
            world: self.clone(),
        };
        let shared = world.shared.get(&node)?.clone();
        Some(RequestPath::new(node, raft, store, Limits::default(), timeout, env).sharing(shared))
    }
}

impl World {
    fn now_ns(&self) -> u64 {
        SimInstant::now().as_nanos()
    }

    fn event(&mut self, kind: EventKind) {
        let at_ns = self.now_ns();
        self.trace.push(Event { at_ns, kind });
    }

    fn draw_below(&mut self, n: u64) -> u64 {
        self.rng.next_u64() % n.max(1)
    }

    fn draw_f64(&mut self) -> f64 {
        (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn violation(&mut self, result: Result<(), Violation>) {
        if let Err(v) = result {
            self.violations.push(v);
        }
    }

    fn on_apply(&mut self, node: u64, entry: &EntryOf<SimConfig>) {
        let id = entry_id(entry);
        self.event(EventKind::Apply { node, index: id.index });
        let verdict = self.sm_safety.observe_apply(node, id);
        self.violation(verdict);
        // The entry was committed by a leader whose term no node has passed yet.
        let live = self.rafts.values().map(|r| r.metrics().borrow_watched().current_term);
        let bound = live.fold(self.max_term, u64::max);
        self.completeness.observe_committed(id, bound);
    }
}

/// The checkers' identity of a log entry: term, index and a digest of the payload.
fn entry_id(entry: &EntryOf<SimConfig>) -> EntryId {
    let digest = match &entry.payload {
        EntryPayload::Blank => 0,
        EntryPayload::Normal(write) => fnv1a(&encode(write)),
        EntryPayload::Membership(m) => fnv1a(format!("{m:?}").as_bytes()),
    };
    EntryId {
        term: entry.log_id.leader_id.term,
        index: entry.log_id.index,
        digest,
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// A node's durable parts, which survive its crashes.
struct Disk {
    log: MemLogStore<SimConfig>,
    snapshots: MemSnapshotStore<SimConfig>,
}

/// A simulated cluster. See the module docs.
pub struct Simulation {
    exec: Executor,
    world: WorldRef,
    config: Arc<Config>,
    disks: BTreeMap<u64, Disk>,
    /// Task group of each running node.
    groups: BTreeMap<u64, TaskGroup>,
    next_group: u64,
    seen: BTreeMap<u64, Seen>,
}

impl Simulation {
    /// Starts a cluster of `options.nodes` nodes that forms by itself (node 1 initializes it).
    pub fn new(options: SimOptions) -> Result<Simulation, SimError> {
        if !(3..=7).contains(&options.nodes) {
            return Err(SimError::NodeCount(options.nodes));
        }
        let (lo, hi) = options.election_timeout_ms;
        let config = Config {
            cluster_name: "quorumkv-sim".to_string(),
            election_timeout_min: lo,
            election_timeout_max: hi,
            heartbeat_interval: options.heartbeat_ms,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(options.snapshot_every),
            max_in_snapshot_log_to_keep: options.snapshot_every / 2,
            // As kv-node: a restarted leader is elected again, never restored in its old term.
            enable_leader_restore: Some(false),
            ..Config::default()
        }
        .validate()
        .map_err(|e| SimError::Options(e.to_string()))?;
        if options.latency_ms.0 > options.latency_ms.1 {
            return Err(SimError::Options(format!(
                "latency range {:?} is inverted",
                options.latency_ms
            )));
        }
        let ids: Vec<u64> = (1..=options.nodes as u64).collect();
        let world = World {
            rng: Xoshiro256PlusPlus::seed_from_u64(options.seed ^ 0x05EE_D0FF_A017),
            options: options.clone(),
            trace: Trace::with_capacity(options.trace_capacity),
            partition_of: ids.iter().map(|&id| (id, 0)).collect(),
            drop_rate: 0.0,
            next_msg: 0,
            in_flight: BTreeMap::new(),
            rafts: BTreeMap::new(),
            stores: BTreeMap::new(),
            shared: BTreeMap::new(),
            ops: Vec::new(),
            election: ElectionSafety::default(),
            completeness: LeaderCompleteness::default(),
            sm_safety: StateMachineSafety::default(),
            violations: Vec::new(),
            max_term: 0,
            removed: BTreeSet::new(),
            retiring: Vec::new(),
        };
        let mut sim = Simulation {
            exec: Executor::new(options.seed),
            world: WorldRef(Arc::new(Mutex::new(world))),
            config: Arc::new(config),
            disks: BTreeMap::new(),
            groups: BTreeMap::new(),
            next_group: CLIENT_GROUP.0 + 1,
            seen: BTreeMap::new(),
        };
        for &id in &ids {
            sim.disks.insert(
                id,
                Disk {
                    log: MemLogStore::default(),
                    snapshots: MemSnapshotStore::default(),
                },
            );
            sim.boot(id);
        }
        let first = sim.world.lock().rafts[&1].clone();
        let members: BTreeMap<u64, KvNode> = ids.iter().map(|&id| (id, KvNode::default())).collect();
        sim.exec.spawn_in(sim.groups[&1], async move {
            // Fails only if already initialized, which a fresh cluster is not.
            first.initialize(members).await.expect("initializing a fresh cluster");
        });
        sim.exec.run_until_idle();
        sim.observe();
        Ok(sim)
    }

    /// Builds and registers a Raft node over the node's disk, in a fresh task group.
    fn boot(&mut self, id: u64) {
        let group = TaskGroup(self.next_group);
        self.next_group += 1;
        self.groups.insert(id, group);
        let disk = &self.disks[&id];
        let world = self.world.clone();
        let observer_world = self.world.clone();
        let sm = SimStateMachine::new(Limits::default(), disk.snapshots.clone())
            .with_observer(Arc::new(move |entry| observer_world.lock().on_apply(id, entry)));
        let store = sm.store();
        let network = network::SimNetworkFactory {
            node: id,
            world: self.world.clone(),
        };
        let (config, log) = (self.config.clone(), disk.log.clone());
        self.exec.spawn_in(group, async move {
            let raft = Raft::new(id, config, network, log, sm)
                .await
                .expect("starting a simulated node");
            let mut world = world.lock();
            world.rafts.insert(id, raft);
            world.stores.insert(id, store);
            world.shared.insert(id, Arc::default());
        });
        self.exec.run_until_idle();
    }

    /// The options this simulation runs with.
    pub fn options(&self) -> SimOptions {
        self.world.lock().options.clone()
    }

    /// Virtual time since the start.
    pub fn now(&self) -> Duration {
        self.exec.now().since_start()
    }

    /// Advances to the next moment anything is scheduled and runs everything due then.
    /// Returns false if nothing at all is scheduled.
    pub fn step(&mut self) -> bool {
        let Some(next) = self.exec.next_timer_deadline() else {
            return false;
        };
        self.exec.advance_to(next);
        self.observe();
        true
    }

    /// Runs for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.exec.now() + d;
        while let Some(next) = self.exec.next_timer_deadline().filter(|&t| t <= end) {
            self.exec.advance_to(next);
            self.observe();
        }
        self.exec.advance_to(end);
        self.observe();
    }

    fn check_node(&self, node: u64) -> Result<(), SimError> {
        if self.disks.contains_key(&node) {
            Ok(())
        } else {
            Err(SimError::NoSuchNode(node))
        }
    }

    /// Whether a node is running.
    pub fn is_up(&self, node: u64) -> bool {
        self.groups.contains_key(&node)
    }

    /// Crashes a node: all its tasks stop at once; its log, vote and snapshot are kept.
    pub fn crash(&mut self, node: u64) -> Result<(), SimError> {
        self.check_member(node)?;
        let group = self.groups.remove(&node).ok_or(SimError::AlreadyCrashed(node))?;
        self.exec.enter(|| {
            let mut world = self.world.lock();
            world.rafts.remove(&node);
            world.stores.remove(&node);
            world.shared.remove(&node);
            world.event(EventKind::Fault {
                action: format!("crash node {node}"),
            });
            let lost: Vec<u64> = world
                .in_flight
                .values()
                .filter(|m| m.from == node)
                .map(|m| m.id)
                .collect();
            for msg in lost {
                world.in_flight.remove(&msg);
                world.event(EventKind::Drop {
                    msg,
                    reason: "sender crashed".to_string(),
                });
            }
        });
        self.exec.kill_group(group);
        self.exec.run_until_idle();
        self.observe();
        Ok(())
    }

    /// Restarts a crashed node from its log, vote and snapshot.
    pub fn restart(&mut self, node: u64) -> Result<(), SimError> {
        self.check_member(node)?;
        if self.is_up(node) {
            return Err(SimError::NotCrashed(node));
        }
        self.exec.enter(|| {
            self.world.lock().event(EventKind::Fault {
                action: format!("restart node {node}"),
            })
        });
        self.boot(node);
        self.observe();
        Ok(())
    }

    /// Splits the network: nodes in the same group talk, others don't. Nodes not listed are
    /// each isolated alone.
    pub fn partition(&mut self, groups: &[Vec<u64>]) -> Result<(), SimError> {
        let mut assignment = BTreeMap::new();
        for (g, members) in groups.iter().enumerate() {
            for &node in members {
                self.check_node(node)?;
                if assignment.insert(node, g as u32).is_some() {
                    return Err(SimError::NodeInTwoGroups(node));
                }
            }
        }
        let mut next = groups.len() as u32;
        for &node in self.disks.keys() {
            assignment.entry(node).or_insert_with(|| {
                next += 1;
                next - 1
            });
        }
        let action = format!("partition {groups:?}");
        self.exec.enter(|| {
            let mut world = self.world.lock();
            world.partition_of = assignment;
            world.event(EventKind::Fault { action });
        });
        Ok(())
    }

    /// Reconnects every node.
    pub fn heal(&mut self) {
        self.exec.enter(|| {
            let mut world = self.world.lock();
            world.partition_of.values_mut().for_each(|g| *g = 0);
            world.event(EventKind::Fault {
                action: "heal".to_string(),
            });
        });
    }

    /// Sets the probability that any one message is lost.
    pub fn set_drop_rate(&mut self, p: f64) -> Result<(), SimError> {
        if !(0.0..=1.0).contains(&p) {
            return Err(SimError::DropRate(p.to_string()));
        }
        self.exec.enter(|| {
            let mut world = self.world.lock();
            world.drop_rate = p;
            world.event(EventKind::Fault {
                action: format!("drop rate {p}"),
            });
        });
        Ok(())
    }

    /// Submits a client operation to `node`; it completes later (see [`Simulation::op`]).
    pub fn submit(&mut self, node: u64, call: ClientCall) -> Result<OpId, SimError> {
        self.check_node(node)?;
        let world = self.world.clone();
        let timeout = Duration::from_millis(self.options().client_timeout_ms);
        let id = self.exec.enter(|| ops::start(&world, None, node, call));
        self.exec.spawn_in(CLIENT_GROUP, async move {
            ops::perform(world, id, timeout).await;
        });
        self.exec.run_until_idle();
        self.observe();
        Ok(id)
    }

    /// An operation's current state.
    pub fn op(&self, id: OpId) -> Option<OpView> {
        self.world.lock().ops.get(id.0 as usize).map(ops::OpRecord::view)
    }

    /// Every operation so far.
    pub fn ops(&self) -> Vec<OpView> {
        self.world.lock().ops.iter().map(ops::OpRecord::view).collect()
    }

    /// Hash of the whole event trace so far.
    pub fn trace_hash(&self) -> u64 {
        self.world.lock().trace.hash()
    }

    /// Number of events so far.
    pub fn event_count(&self) -> u64 {
        self.world.lock().trace.len()
    }

    /// Kept events with sequence number `from` and later (see [`Trace::since`]).
    pub fn events_since(&self, from: u64) -> Vec<Event> {
        self.world.lock().trace.since(from).cloned().collect()
    }

    /// Reads metrics of every running node; records role, term and commit changes, and checks
    /// election safety and leader completeness for new leaders.
    fn observe(&mut self) {
        if !self.world.lock().retiring.is_empty() {
            self.retire_removed();
            self.exec.run_until_idle();
        }
        let ids: Vec<u64> = self.disks.keys().copied().collect();
        self.exec.enter(|| {
            let mut world = self.world.lock();
            for id in ids {
                let now = match world.rafts.get(&id) {
                    None => Seen {
                        role: Some(Role::Crashed),
                        ..self.seen.get(&id).copied().unwrap_or_default()
                    },
                    Some(raft) => {
                        let m = raft.metrics();
                        let m = m.borrow_watched();
                        Seen {
                            role: Some(role_of(m.state)),
                            term: m.current_term,
                            commit: m.local_committed.as_ref().map_or(0, |l| l.index),
                        }
                    }
                };
                let before = self.seen.insert(id, now).unwrap_or_default();
                world.max_term = world.max_term.max(now.term);
                if now.role != before.role || now.term != before.term {
                    let role = now.role.expect("set above");
                    if role == Role::Candidate && before.role != Some(Role::Candidate) {
                        world.event(EventKind::Timeout { node: id });
                    }
                    world.event(EventKind::RoleChange {
                        node: id,
                        role,
                        term: now.term,
                    });
                    if role == Role::Leader {
                        let verdict = world.election.observe_leader(now.term, id);
                        world.violation(verdict);
                        let disk = &self.disks[&id];
                        let data = disk.log.data();
                        let log = data.entries.values().map(|e| (e.log_id.index, entry_id(e))).collect();
                        let compacted = data.last_purged.as_ref().map(|l| l.index);
                        let verdict = world.completeness.observe_leader(id, now.term, compacted, &log);
                        world.violation(verdict);
                    }
                }
                if now.commit > before.commit && now.role != Some(Role::Crashed) {
                    world.event(EventKind::Commit {
                        node: id,
                        index: now.commit,
                    });
                }
            }
        });
    }

    /// The cluster as it is now, for rendering.
    pub fn view(&self) -> ClusterView {
        let world = self.world.lock();
        let nodes = self
            .disks
            .iter()
            .map(|(&id, disk)| {
                let data = disk.log.data();
                let snapshot_index = data.last_purged.as_ref().map_or(0, |l| l.index);
                let log = data
                    .entries
                    .values()
                    .rev()
                    .take(64)
                    .rev()
                    .map(|e| LogEntryView {
                        index: e.log_id.index,
                        term: e.log_id.leader_id.term,
                        summary: match &e.payload {
                            EntryPayload::Blank => "(leader's first entry)".to_string(),
                            EntryPayload::Normal(w) => w.to_string(),
                            EntryPayload::Membership(m) => {
                                format!("membership {:?}", m.voter_ids().collect::<Vec<_>>())
                            }
                        },
                    })
                    .collect();
                let vote = data.vote.as_ref();
                let (mut view_term, voted_for) =
                    vote.map_or((0, None), |v| (v.leader_id.term, Some(v.leader_id.voted_for)));
                let mut view = NodeView {
                    id,
                    role: Role::Crashed,
                    term: 0,
                    voted_for,
                    leader: None,
                    commit_index: data.committed.as_ref().map_or(0, |l| l.index),
                    applied_index: 0,
                    snapshot_index,
                    log,
                    log_len: data.entries.len(),
                    keys: 0,
                    bytes: 0,
                    partition: world.partition_of[&id],
                    voters: Vec::new(),
                    learners: Vec::new(),
                    removed: world.removed.contains(&id),
                };
                if let (Some(raft), Some(store)) = (world.rafts.get(&id), world.stores.get(&id)) {
                    let m = raft.metrics();
                    let m = m.borrow_watched();
                    view.role = role_of(m.state);
                    view_term = m.current_term;
                    view.leader = m.current_leader;
                    view.commit_index = m.local_committed.as_ref().map_or(0, |l| l.index);
                    view.applied_index = m.last_applied.as_ref().map_or(0, |l| l.index);
                    let config = m.membership_config.membership();
                    view.voters = config
                        .get_joint_config()
                        .iter()
                        .map(|set| set.iter().copied().collect())
                        .collect();
                    view.learners = config.learner_ids().collect();
                    let store = store.read();
                    view.keys = store.len();
                    view.bytes = store.bytes();
                }
                view.term = view_term;
                view
            })
            .collect();
        ClusterView {
            now_ms: self.exec.now().as_nanos() as f64 / 1e6,
            seed: world.options.seed,
            nodes,
            in_flight: world.in_flight.values().cloned().collect(),
            drop_rate: world.drop_rate,
            events: world.trace.len(),
        }
    }

    /// Runs every checker: the invariants watched during the run, log matching over the
    /// current logs, and linearizability of the client history.
    pub fn check(&self) -> CheckReport {
        let world = self.world.lock();
        let mut violations = world.violations.clone();
        let logs = self
            .disks
            .iter()
            .map(|(&id, disk)| {
                (
                    id,
                    disk.log
                        .data()
                        .entries
                        .values()
                        .map(|e| (e.log_id.index, entry_id(e)))
                        .collect(),
                )
            })
            .collect();
        if let Err(v) = log_matching::check(&logs) {
            violations.push(v);
        }
        let history = ops::history(&world.ops);
        CheckReport {
            violations,
            linearizability: linearizability::check(&history),
            operations: history.len(),
        }
    }

    /// The applied index and store image of every running node, for convergence checks.
    pub fn replicas(&self) -> BTreeMap<u64, (u64, Vec<u8>)> {
        let world = self.world.lock();
        world
            .stores
            .iter()
            .map(|(&id, store)| {
                let applied = world.rafts[&id]
                    .metrics()
                    .borrow_watched()
                    .last_applied
                    .as_ref()
                    .map_or(0, |l| l.index);
                (id, (applied, store.read().to_bytes()))
            })
            .collect()
    }
}

fn role_of(state: ServerState) -> Role {
    match state {
        ServerState::Leader => Role::Leader,
        ServerState::Candidate => Role::Candidate,
        ServerState::Follower => Role::Follower,
        ServerState::Learner => Role::Learner,
        ServerState::Shutdown => Role::Crashed,
    }
}

impl Debug for Simulation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulation")
            .field("seed", &self.exec.seed())
            .field("now", &self.now())
            .finish()
    }
}
