//! Seeded fault runs: concurrent clients against a cluster under a random fault schedule,
//! then a quiet period, then every checker and a convergence check.

use std::time::Duration;

use openraft_rt::AsyncRuntime;
use openraft_rt::Instant;
use rand::Rng;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::Deserialize;
use serde::Serialize;

use super::CLIENT_GROUP;
use super::CheckReport;
use super::ClientCall;
use super::Event;
use super::SimError;
use super::SimOptions;
use super::Simulation;
use super::Trace;
use super::TxGuardCall;
use super::ops;
use crate::command::Response;
use crate::runtime::SimInstant;
use crate::runtime::SimRuntime;

/// Shape of a seeded run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunOptions {
    /// Cluster size, 3 to 7.
    pub nodes: usize,
    /// Virtual time with clients and faults, milliseconds.
    pub duration_ms: u64,
    /// Concurrent clients.
    pub clients: usize,
    /// Distinct keys the clients use (few keys, many conflicts).
    pub keys: usize,
    /// Whether to inject crashes, restarts, partitions and drops.
    pub faults: bool,
    /// Whether to return every event of the run in the report.
    pub keep_trace: bool,
    /// Run with the planted bug (`SimOptions::planted_bug`), which the checkers must catch.
    #[serde(default)]
    pub planted_bug: bool,
    /// Percent of client operations that are transactions (see [`Simulation::spawn_clients`]).
    #[serde(default = "default_transactions")]
    pub transactions: u32,
    /// Run with the planted bug `SimOptions::planted_split_transactions`, which the
    /// linearizability checker must catch.
    #[serde(default)]
    pub planted_split_transactions: bool,
}

/// The share of transactions in the fault runs, percent.
pub const DEFAULT_TRANSACTIONS: u32 = 20;

fn default_transactions() -> u32 {
    DEFAULT_TRANSACTIONS
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            nodes: 3,
            duration_ms: 5_000,
            clients: 3,
            keys: 3,
            faults: true,
            keep_trace: false,
            planted_bug: false,
            transactions: DEFAULT_TRANSACTIONS,
            planted_split_transactions: false,
        }
    }
}

/// The result of one seeded run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// The seed.
    pub seed: u64,
    /// Hash of the event trace.
    pub trace_hash: u64,
    /// Events in the trace.
    pub events: u64,
    /// Virtual time simulated, milliseconds.
    pub virtual_ms: u64,
    /// Virtual time at the end, nanoseconds (where a replay of the run stops).
    pub end_ns: u64,
    /// Faults injected.
    pub faults: Vec<String>,
    /// Every checker's verdict.
    pub check: CheckReport,
    /// Whether all replicas ended with the same applied index and state (or why not).
    pub converged: Result<(), String>,
    /// Every event, if `RunOptions::keep_trace` was set.
    pub trace: Vec<Event>,
}

impl RunReport {
    /// Whether the run found nothing wrong.
    pub fn is_ok(&self) -> bool {
        self.check.is_ok() && self.converged.is_ok()
    }
}

/// Runs one seed: see the module docs.
pub fn run_seed(seed: u64, options: &RunOptions) -> Result<RunReport, SimError> {
    let mut run = Workload::new(seed, options)?;
    while let Some(due) = run.next_due() {
        run.run_until(due)?;
    }
    let sim = &run.sim;
    Ok(RunReport {
        seed,
        trace_hash: sim.trace_hash(),
        events: sim.event_count(),
        virtual_ms: sim.now().as_millis() as u64,
        end_ns: sim.now().as_nanos() as u64,
        check: sim.check(),
        converged: run.converged.clone(),
        trace: if options.keep_trace {
            sim.events_since(0)
        } else {
            Vec::new()
        },
        faults: run.faults,
    })
}

/// Where a [`Workload`] is in its schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Clients run; a fault is drawn at each due time until the end of the fault period.
    Faults,
    /// Everything reconnected; replicas are compared every 500 ms, up to 40 times.
    Quiet(u32),
    /// The schedule is over (the replicas agreed, or the quiet period ran out); time can go on.
    Done,
}

/// A simulation with the seeded fault schedule of [`run_seed`] driven in steps, so that a run
/// can be watched and acted on at any virtual time (the web demo opens a seed this way), with
/// the same trace as [`run_seed`] as long as nobody acts. [`Workload::none`] is a simulation
/// with no schedule at all.
pub struct Workload {
    sim: Simulation,
    rng: Xoshiro256PlusPlus,
    options: RunOptions,
    phase: Phase,
    /// When the schedule acts next (absent once it is done).
    due: Option<Duration>,
    faults: Vec<String>,
    converged: Result<(), String>,
}

impl Workload {
    /// A cluster with `options.clients` clients and (if `options.faults`) the seeded fault
    /// schedule of `seed`.
    pub fn new(seed: u64, options: &RunOptions) -> Result<Workload, SimError> {
        let trace_capacity = if options.keep_trace { usize::MAX } else { Trace::KEEP };
        let mut sim = Simulation::new(SimOptions {
            seed,
            nodes: options.nodes,
            trace_capacity,
            planted_bug: options.planted_bug,
            planted_split_transactions: options.planted_split_transactions,
            ..SimOptions::default()
        })?;
        let end = Duration::from_millis(options.duration_ms);
        sim.spawn_clients(options.clients, options.keys, options.transactions, end);
        let mut run = Workload {
            sim,
            rng: Xoshiro256PlusPlus::seed_from_u64(seed.rotate_left(17) ^ 0xFA_u64),
            options: options.clone(),
            phase: Phase::Faults,
            due: None,
            faults: Vec::new(),
            converged: Err("not checked".to_string()),
        };
        if end > Duration::ZERO {
            run.due = Some(run.draw_gap());
        } else {
            run.quiet()?;
        }
        Ok(run)
    }

    /// A simulation with no schedule: running it is running `sim`.
    pub fn none(sim: Simulation) -> Workload {
        Workload {
            sim,
            rng: Xoshiro256PlusPlus::seed_from_u64(0),
            options: RunOptions::default(),
            phase: Phase::Done,
            due: None,
            faults: Vec::new(),
            converged: Ok(()),
        }
    }

    /// The simulation.
    pub fn sim(&self) -> &Simulation {
        &self.sim
    }

    /// The simulation, to act on.
    pub fn sim_mut(&mut self) -> &mut Simulation {
        &mut self.sim
    }

    /// The simulation, without the rest of the schedule.
    pub fn into_sim(self) -> Simulation {
        self.sim
    }

    /// When the schedule acts next, if it is not done.
    pub fn next_due(&self) -> Option<Duration> {
        self.due
    }

    /// Faults injected so far, each with its virtual time.
    pub fn faults(&self) -> &[String] {
        &self.faults
    }

    /// Whether the replicas agreed at the end of the quiet period (or why not, or that it was
    /// not checked yet).
    pub fn converged(&self) -> &Result<(), String> {
        &self.converged
    }

    fn draw_gap(&mut self) -> Duration {
        self.sim.now() + Duration::from_millis(100 + self.rng.next_u64() % 900)
    }

    /// Runs for `d` of virtual time, acting on the schedule when it is due.
    pub fn run_for(&mut self, d: Duration) -> Result<(), SimError> {
        self.run_until(self.sim.now() + d)
    }

    /// Jumps to the next moment anything is scheduled (the simulation's timers or the
    /// schedule) and runs it; false if nothing at all is scheduled.
    pub fn step(&mut self) -> Result<bool, SimError> {
        let timer = self.sim.exec.next_timer_deadline().map(|t| t.since_start());
        match (self.due, timer) {
            (Some(due), t) if t.is_none_or(|t| due <= t) => self.run_until(due).map(|()| true),
            _ => Ok(self.sim.step()),
        }
    }

    /// Runs until virtual time `t`, acting on the schedule when it is due.
    pub fn run_until(&mut self, t: Duration) -> Result<(), SimError> {
        while let Some(due) = self.due.filter(|&due| due <= t) {
            if due > self.sim.now() {
                self.sim.run_for(due - self.sim.now());
            }
            self.fire()?;
        }
        if t > self.sim.now() {
            self.sim.run_for(t - self.sim.now());
        }
        Ok(())
    }

    fn fire(&mut self) -> Result<(), SimError> {
        match self.phase {
            Phase::Faults => {
                if self.options.faults
                    && let Some(fault) = inject_fault(&mut self.sim, &mut self.rng)?
                {
                    self.faults.push(format!("{:?} {fault}", self.sim.now()));
                }
                if self.sim.now() < Duration::from_millis(self.options.duration_ms) {
                    self.due = Some(self.draw_gap());
                } else {
                    self.quiet()?;
                }
            }
            Phase::Quiet(round) => {
                self.converged = convergence(&self.sim);
                if self.converged.is_ok() || round + 1 == QUIET_ROUNDS {
                    self.phase = Phase::Done;
                    self.due = None;
                } else {
                    self.phase = Phase::Quiet(round + 1);
                    self.due = Some(self.sim.now() + QUIET_EVERY);
                }
            }
            Phase::Done => self.due = None,
        }
        Ok(())
    }

    /// Quiet period: everything reconnected and running; wait for the replicas to agree.
    fn quiet(&mut self) -> Result<(), SimError> {
        self.sim.heal();
        self.sim.set_drop_rate(0.0)?;
        for node in self.sim.node_ids() {
            if !self.sim.is_up(node) {
                self.sim.restart(node)?;
            }
        }
        self.phase = Phase::Quiet(0);
        self.due = Some(self.sim.now() + QUIET_EVERY);
        Ok(())
    }
}

const QUIET_EVERY: Duration = Duration::from_millis(500);
const QUIET_ROUNDS: u32 = 40;

fn inject_fault(sim: &mut Simulation, rng: &mut Xoshiro256PlusPlus) -> Result<Option<String>, SimError> {
    let ids = sim.node_ids();
    let n = ids.len() as u64;
    let node = ids[(rng.next_u64() % n) as usize];
    let crashed = ids.iter().filter(|&&i| !sim.is_up(i)).count() as u64;
    let fault = match rng.next_u64() % 8 {
        0 | 1 if sim.is_up(node) && crashed < n / 2 => {
            sim.crash(node)?;
            format!("crash {node}")
        }
        0..=2 if !sim.is_up(node) => {
            sim.restart(node)?;
            format!("restart {node}")
        }
        3 => {
            let mut groups = vec![Vec::new(), Vec::new()];
            for &i in &ids {
                groups[(rng.next_u64() % 2) as usize].push(i);
            }
            sim.partition(&groups)?;
            format!("partition {groups:?}")
        }
        4 | 5 => {
            sim.heal();
            "heal".to_string()
        }
        6 => {
            let p = [0.0, 0.05, 0.2][(rng.next_u64() % 3) as usize];
            sim.set_drop_rate(p)?;
            format!("drop {p}")
        }
        _ => match rng.next_u64() % 4 {
            0 if (*ids.last().expect("a cluster has nodes")) < super::MAX_NODE_ID && n < 7 => {
                let id = sim.add_node()?;
                format!("add node {id}")
            }
            1 => match sim.remove_node(node) {
                Ok(()) => format!("remove {node}"),
                Err(SimError::TooFewVoters(_)) => return Ok(None),
                Err(e) => return Err(e),
            },
            2 => {
                sim.transfer_leader(node)?;
                format!("transfer leadership to {node}")
            }
            _ => return Ok(None),
        },
    };
    Ok(Some(fault))
}

fn convergence(sim: &Simulation) -> Result<(), String> {
    // Only members are replicas: a started node whose joining failed holds nothing.
    let (voters, learners) = sim.membership();
    let members: std::collections::BTreeSet<u64> = voters.into_iter().flatten().chain(learners).collect();
    let mut replicas = sim.replicas();
    replicas.retain(|id, _| members.contains(id));
    let mut iter = replicas.iter();
    let Some((first_id, first)) = iter.next() else {
        return Err("no replica running".to_string());
    };
    for (id, replica) in iter {
        if replica.0 != first.0 {
            return Err(format!(
                "node {first_id} applied up to {}, node {id} up to {}",
                first.0, replica.0
            ));
        }
        if replica.1 != first.1 {
            return Err(format!(
                "nodes {first_id} and {id} applied up to {} but hold different data",
                first.0
            ));
        }
    }
    Ok(())
}

impl Simulation {
    /// Starts `clients` clients that issue operations on `keys` keys against random nodes, one
    /// at a time each, until virtual time `until`: `transactions` percent of them are
    /// transactions (see [`transaction`]), the rest gets, puts, deletes and compare-and-swaps.
    pub fn spawn_clients(&mut self, clients: usize, keys: usize, transactions: u32, until: Duration) {
        let timeout = Duration::from_millis(self.options().client_timeout_ms);
        let nodes = self.options().nodes as u64;
        for client in 0..clients as u64 {
            let world = self.world.clone();
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(self.world.lock().rng.next_u64());
            self.exec.spawn_in(CLIENT_GROUP, async move {
                let mut n = 0u64;
                while SimInstant::now().since_start() < until {
                    n += 1;
                    let client = Client {
                        world: &world,
                        id: client,
                        nodes,
                        timeout,
                    };
                    if rng.next_u64() % 100 < u64::from(transactions) {
                        transaction(&client, &mut rng, keys, n).await;
                    } else {
                        let key = format!("k{}", rng.next_u64() % keys.max(1) as u64).into_bytes();
                        let value = format!("c{}-{n}", client.id).into_bytes();
                        let call = match rng.next_u64() % 10 {
                            0..=3 => ClientCall::Get { key },
                            4..=6 => ClientCall::Put { key, value },
                            7 => ClientCall::Delete { key },
                            _ => {
                                let expected =
                                    (rng.next_u64() % 3 != 0).then(|| format!("c{}-{}", client.id, n - 1).into_bytes());
                                ClientCall::Cas {
                                    key,
                                    expected,
                                    new: Some(value),
                                }
                            }
                        };
                        client.call(&mut rng, call).await;
                    }
                    SimRuntime::sleep(Duration::from_millis(rng.next_u64() % 50)).await;
                }
            });
        }
    }
}

/// A simulated client, for one operation.
struct Client<'w> {
    world: &'w super::WorldRef,
    id: u64,
    nodes: u64,
    timeout: Duration,
}

impl Client<'_> {
    /// Submits `call` to a random node and waits for its end; the response, if any.
    async fn call(&self, rng: &mut Xoshiro256PlusPlus, call: ClientCall) -> Option<Response> {
        let node = 1 + rng.next_u64() % self.nodes;
        let id = ops::start(self.world, Some(self.id), node, call);
        ops::perform(self.world.clone(), id, self.timeout).await
    }
}

/// One transaction on a key and its partner (keys pair up: k0 with k1, k2 with k3, ...; a
/// key without a partner transacts alone), drawn among:
/// - a read of both keys;
/// - a transfer: read both, write both;
/// - a guarded transfer, as Redis's `WATCH` loop does it: read one key with its revision,
///   read the other, then write both unless either changed since that revision (under
///   contention some abort);
/// - a compare-and-swap of one key, a delete of the other and a read of the first.
async fn transaction(client: &Client<'_>, rng: &mut Xoshiro256PlusPlus, keys: usize, n: u64) {
    let keys = keys.max(1) as u64;
    let first = rng.next_u64() % keys;
    let partner = if (first ^ 1) < keys { first ^ 1 } else { first };
    let (a, b) = (key(first), key(partner));
    let value = |suffix: &str| format!("c{}-{n}{suffix}", client.id).into_bytes();
    let get = |key: &Vec<u8>| ClientCall::Get { key: key.clone() };
    let put = |key: &Vec<u8>, value| ClientCall::Put {
        key: key.clone(),
        value,
    };
    let (guard, steps) = match rng.next_u64() % 4 {
        0 => (None, vec![get(&a), get(&b)]),
        1 => (None, vec![get(&a), get(&b), put(&a, value("")), put(&b, value("b"))]),
        2 => {
            let read = ClientCall::GetRevision { key: a.clone() };
            let node = 1 + rng.next_u64() % client.nodes;
            let read_id = ops::start(client.world, Some(client.id), node, read);
            let Some(Response::Revisioned { revision, .. }) =
                ops::perform(client.world.clone(), read_id, client.timeout).await
            else {
                return;
            };
            client.call(rng, get(&b)).await;
            let guard = TxGuardCall {
                read: read_id,
                since: revision,
                keys: vec![a.clone(), b.clone()],
            };
            (Some(guard), vec![put(&a, value("")), put(&b, value("b"))])
        }
        _ => {
            let cas = ClientCall::Cas {
                key: a.clone(),
                expected: rng
                    .next_u64()
                    .is_multiple_of(2)
                    .then(|| format!("c{}-{}", client.id, n - 1).into_bytes()),
                new: Some(value("")),
            };
            (None, vec![cas, ClientCall::Delete { key: b.clone() }, get(&a)])
        }
    };
    client.call(rng, ClientCall::Transaction { guard, steps }).await;
}

fn key(i: u64) -> Vec<u8> {
    format!("k{i}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::linearizability::Verdict;

    /// Runs seeds from 0 with `options` until one fails the linearizability check, at most
    /// `limit`; the failing seed's verdict.
    fn first_violation(options: &RunOptions, limit: u64) -> Option<(u64, Verdict)> {
        (0..limit).find_map(|seed| {
            let report = run_seed(seed, options).expect("a valid run");
            let verdict = report.check.linearizability;
            matches!(verdict, Verdict::Violation { .. }).then_some((seed, verdict))
        })
    }

    fn short_run() -> RunOptions {
        RunOptions {
            duration_ms: 3_000,
            faults: false,
            transactions: 50,
            ..RunOptions::default()
        }
    }

    #[test]
    fn transactions_run_commit_and_abort_and_the_history_is_linearizable() {
        let options = short_run();
        let mut sim = Workload::new(1, &options).expect("a valid run");
        while let Some(due) = sim.next_due() {
            sim.run_until(due).expect("the schedule runs");
        }
        let ops = sim.sim().ops();
        let outcome = |aborted: bool| {
            ops.iter().any(|op| {
                matches!(&op.state, super::super::OpState::Returned {
                    ret: crate::check::linearizability::Ret::Transaction(answers), ..
                } if answers.is_none() == aborted)
            })
        };
        assert!(outcome(false), "some transaction commits");
        assert!(outcome(true), "some guarded transaction aborts");
        assert!(sim.sim().check().is_ok(), "{:?}", sim.sim().check());
    }

    #[test]
    fn split_transactions_are_caught() {
        let planted = RunOptions {
            planted_split_transactions: true,
            ..short_run()
        };
        let found = first_violation(&planted, 30);
        assert!(found.is_some(), "no seed caught transactions applied step by step");
        let (seed, _) = found.expect("checked");
        // The same seed without the bug passes.
        assert!(run_seed(seed, &short_run()).expect("a valid run").is_ok());
    }
}
