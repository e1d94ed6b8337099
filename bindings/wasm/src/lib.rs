//! WebAssembly bindings of kv-core's deterministic simulator.
//!
//! The JavaScript surface mirrors the Python one: a `Simulation` class with `runFor`, `step`,
//! `crash`, `restart`, `partition`, `heal`, `setDropRate`, `put`/`get`/`staleGet`/`delete`/`cas`
//! (returning operation ids), `addNode`/`removeNode`/`transferLeader`, `state`, `events`, `ops`,
//! `check` and `traceHash`; it can run a seed's fault workload and the planted bug. `runSeed`
//! runs one seed to its end, as `kv-sim` does (the page's seed sweep). Values cross as plain JS
//! objects (via serde); keys and values are strings (UTF-8). Errors become JS exceptions whose
//! message says what was wrong. Seeds are JS numbers (integers up to 2^53); trace hashes are
//! 16-digit hex strings because a u64 does not fit a JS number.

use kv_core::sim::ClientCall;
use kv_core::sim::OpId;
use kv_core::sim::OpState;
use kv_core::sim::OpView;
use kv_core::sim::SimOptions;
use kv_core::sim::time;
use kv_core::sim::workload::RunOptions;
use kv_core::sim::workload::Workload;
use kv_core::sim::workload::run_seed;
use serde::Serialize;
use wasm_bindgen::prelude::*;

/// Serializes to a plain JS object (maps as objects, u64 as numbers where they fit).
fn to_js<T: Serialize>(value: &T) -> Result<JsValue, JsError> {
    let serializer = serde_wasm_bindgen::Serializer::new().serialize_maps_as_objects(true);
    value
        .serialize(&serializer)
        .map_err(|e| JsError::new(&format!("cannot convert to JS: {e}")))
}

fn seed_from(seed: f64) -> Result<u64, JsError> {
    if seed.fract() == 0.0 && (0.0..=9_007_199_254_740_991.0).contains(&seed) {
        Ok(seed as u64)
    } else {
        Err(JsError::new(&format!(
            "seed must be an integer between 0 and 2^53-1, not {seed}"
        )))
    }
}

/// An operation as JavaScript sees it: text instead of bytes.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsOp {
    id: u64,
    client: u64,
    node: u64,
    kind: &'static str,
    key: String,
    call: String,
    invoked_ms: f64,
    state: &'static str,
    returned_ms: Option<f64>,
    result: String,
}

impl From<OpView> for JsOp {
    fn from(op: OpView) -> Self {
        let key = op.call.key();
        let kind = match &op.call {
            ClientCall::Get { .. } => "get",
            ClientCall::LocalGet { .. } => "local-get",
            ClientCall::Put { .. } => "put",
            ClientCall::Delete { .. } => "delete",
            ClientCall::Cas { .. } => "cas",
            ClientCall::GetRevision { .. } => "get-revision",
            ClientCall::Transaction { .. } => "transaction",
        };
        let (state, returned_ns) = match &op.state {
            OpState::Pending => ("pending", None),
            OpState::Returned { at_ns, .. } => ("ok", Some(*at_ns)),
            OpState::Failed { at_ns, .. } => ("failed", Some(*at_ns)),
            OpState::Unknown { at_ns, .. } => ("unknown", Some(*at_ns)),
        };
        JsOp {
            id: op.id.0,
            client: op.client,
            node: op.node,
            kind,
            key: String::from_utf8_lossy(key).into_owned(),
            call: op.call.describe(),
            invoked_ms: time::ms_from_nanos(op.invoked_ns),
            state,
            returned_ms: returned_ns.map(time::ms_from_nanos),
            result: op.state.summary(),
        }
    }
}

/// A simulated QuorumKV cluster running the real Raft code on virtual time.
#[wasm_bindgen]
pub struct Simulation {
    /// The simulation, with the seeded fault workload's schedule when it runs one.
    inner: Workload,
}

#[wasm_bindgen]
impl Simulation {
    /// A cluster of `nodes` (3 to 7) nodes whose every random choice comes from `seed`;
    /// `plantedBug` switches on the simulator's planted bug (reads skip the read-index check);
    /// `workloadMs` runs the seed's fault workload (kv-sim's clients and faults for that long,
    /// then a quiet period), so that `runSeed`'s run can be watched.
    #[wasm_bindgen(constructor)]
    pub fn new(
        seed: f64,
        nodes: usize,
        planted_bug: Option<bool>,
        workload_ms: Option<f64>,
    ) -> Result<Simulation, JsError> {
        let (seed, planted_bug) = (seed_from(seed)?, planted_bug.unwrap_or(false));
        let inner = match workload_ms {
            Some(ms) => {
                let options = RunOptions {
                    nodes,
                    duration_ms: time::duration_from_ms(ms)?.as_millis() as u64,
                    planted_bug,
                    ..RunOptions::default()
                };
                Workload::new(seed, &options)?
            }
            None => {
                let options = SimOptions {
                    seed,
                    nodes,
                    planted_bug,
                    ..SimOptions::default()
                };
                Workload::none(kv_core::sim::Simulation::new(options)?)
            }
        };
        Ok(Simulation { inner })
    }

    /// Advances virtual time by `ms` milliseconds.
    #[wasm_bindgen(js_name = runFor)]
    pub fn run_for(&mut self, ms: f64) -> Result<(), JsError> {
        Ok(self.inner.run_for(time::duration_from_ms(ms)?)?)
    }

    /// Jumps to the next scheduled moment and runs it; false if nothing is scheduled.
    pub fn step(&mut self) -> Result<bool, JsError> {
        Ok(self.inner.step()?)
    }

    /// Virtual time in milliseconds.
    #[wasm_bindgen(js_name = nowMs)]
    pub fn now_ms(&self) -> f64 {
        time::ms_from_duration(self.inner.sim().now())
    }

    /// Crashes a node (it keeps its log, vote and snapshot).
    pub fn crash(&mut self, node: u32) -> Result<(), JsError> {
        Ok(self.inner.sim_mut().crash(node.into())?)
    }

    /// Restarts a crashed node.
    pub fn restart(&mut self, node: u32) -> Result<(), JsError> {
        Ok(self.inner.sim_mut().restart(node.into())?)
    }

    /// Splits the network into groups, e.g. `[[1, 2], [3, 4, 5]]`.
    pub fn partition(&mut self, groups: JsValue) -> Result<(), JsError> {
        let groups: Vec<Vec<u64>> = serde_wasm_bindgen::from_value(groups)
            .map_err(|e| JsError::new(&format!("partition takes arrays of node ids: {e}")))?;
        Ok(self.inner.sim_mut().partition(&groups)?)
    }

    /// Reconnects every node.
    pub fn heal(&mut self) {
        self.inner.sim_mut().heal();
    }

    /// Sets the probability (0 to 1) that a message is lost.
    #[wasm_bindgen(js_name = setDropRate)]
    pub fn set_drop_rate(&mut self, p: f64) -> Result<(), JsError> {
        Ok(self.inner.sim_mut().set_drop_rate(p)?)
    }

    /// Starts a fresh node and asks the leader to add it as a learner, then as a voter;
    /// returns its id (the change completes later, as events).
    #[wasm_bindgen(js_name = addNode)]
    pub fn add_node(&mut self) -> Result<u32, JsError> {
        Ok(self.inner.sim_mut().add_node()? as u32)
    }

    /// Asks the leader to remove a node from the cluster; it shuts down once that is committed.
    #[wasm_bindgen(js_name = removeNode)]
    pub fn remove_node(&mut self, node: u32) -> Result<(), JsError> {
        Ok(self.inner.sim_mut().remove_node(node.into())?)
    }

    /// Asks the leader to hand leadership to `node`.
    #[wasm_bindgen(js_name = transferLeader)]
    pub fn transfer_leader(&mut self, node: u32) -> Result<(), JsError> {
        Ok(self.inner.sim_mut().transfer_leader(node.into())?)
    }

    fn submit(&mut self, node: u32, call: ClientCall) -> Result<u32, JsError> {
        let id = self.inner.sim_mut().submit(node.into(), call)?;
        u32::try_from(id.0).map_err(|_| JsError::new("too many operations"))
    }

    /// Submits a put to `node`; returns the operation id.
    pub fn put(&mut self, node: u32, key: &str, value: &str) -> Result<u32, JsError> {
        self.submit(
            node,
            ClientCall::Put {
                key: key.into(),
                value: value.into(),
            },
        )
    }

    /// Submits a linearizable get to `node`; returns the operation id.
    pub fn get(&mut self, node: u32, key: &str) -> Result<u32, JsError> {
        self.submit(node, ClientCall::Get { key: key.into() })
    }

    /// Submits a stale read to `node`: its local state machine answers, without the
    /// read-index check, so the answer may be out of date.
    #[wasm_bindgen(js_name = staleGet)]
    pub fn stale_get(&mut self, node: u32, key: &str) -> Result<u32, JsError> {
        self.submit(node, ClientCall::LocalGet { key: key.into() })
    }

    /// Submits a delete to `node`; returns the operation id.
    pub fn delete(&mut self, node: u32, key: &str) -> Result<u32, JsError> {
        self.submit(node, ClientCall::Delete { key: key.into() })
    }

    /// Submits a compare-and-swap (`null` = absent) to `node`; returns the operation id.
    pub fn cas(
        &mut self,
        node: u32,
        key: &str,
        expected: Option<String>,
        new_value: Option<String>,
    ) -> Result<u32, JsError> {
        let call = ClientCall::Cas {
            key: key.into(),
            expected: expected.map(Into::into),
            new: new_value.map(Into::into),
        };
        self.submit(node, call)
    }

    /// One operation: `{id, node, kind, key, call, state, result, invokedMs, returnedMs}`.
    pub fn op(&self, id: u32) -> Result<JsValue, JsError> {
        let op = self
            .inner
            .sim()
            .op(OpId(id.into()))
            .ok_or_else(|| JsError::new(&format!("no operation {id}")))?;
        to_js(&JsOp::from(op))
    }

    /// Every operation so far.
    pub fn ops(&self) -> Result<JsValue, JsError> {
        to_js(&self.inner.sim().ops().into_iter().map(JsOp::from).collect::<Vec<_>>())
    }

    /// The cluster: nodes (role, term, vote, log, commit/applied index, sizes), messages in
    /// flight, drop rate, virtual time.
    pub fn state(&self) -> Result<JsValue, JsError> {
        to_js(&self.inner.sim().view())
    }

    /// Events with sequence number `from` and later (still kept in memory).
    pub fn events(&self, from: f64) -> Result<JsValue, JsError> {
        to_js(&self.inner.sim().events_since(from as u64))
    }

    /// Number of events so far.
    #[wasm_bindgen(js_name = eventCount)]
    pub fn event_count(&self) -> f64 {
        self.inner.sim().event_count() as f64
    }

    /// Every checker's verdict: `{violations, linearizability, operations}`.
    pub fn check(&self) -> Result<JsValue, JsError> {
        to_js(&self.inner.sim().check())
    }

    /// Hash of the whole event trace, as 16 hex digits.
    #[wasm_bindgen(js_name = traceHash)]
    pub fn trace_hash(&self) -> String {
        format!("{:016x}", self.inner.sim().trace_hash())
    }
}

/// Runs one seeded fault run (as `kv-sim` does) and returns `{traceHash, ok, events,
/// operations, faults, problem}`; `plantedBug` runs it with the planted bug.
#[wasm_bindgen(js_name = runSeed)]
pub fn run_seed_js(seed: f64, nodes: usize, duration_ms: f64, planted_bug: Option<bool>) -> Result<JsValue, JsError> {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Summary {
        trace_hash: String,
        ok: bool,
        events: u64,
        operations: usize,
        faults: usize,
        problem: Option<String>,
        end_ms: f64,
    }
    let options = RunOptions {
        nodes,
        duration_ms: duration_ms as u64,
        planted_bug: planted_bug.unwrap_or(false),
        ..RunOptions::default()
    };
    let report = run_seed(seed_from(seed)?, &options)?;
    to_js(&Summary {
        trace_hash: format!("{:016x}", report.trace_hash),
        ok: report.is_ok(),
        events: report.events,
        operations: report.check.operations,
        faults: report.faults.len(),
        end_ms: time::ms_from_nanos(report.end_ns),
        problem: problem(&report),
    })
}

/// What a failing run got wrong, in a sentence.
fn problem(report: &kv_core::sim::workload::RunReport) -> Option<String> {
    use kv_core::check::linearizability::Verdict;
    if let Some(v) = report.check.violations.first() {
        return Some(format!("{}: {}", v.invariant, v.detail));
    }
    if let Verdict::Violation { key, reason, .. } = &report.check.linearizability {
        return Some(format!(
            "not linearizable on key {}: {reason}",
            String::from_utf8_lossy(key)
        ));
    }
    if !matches!(report.check.linearizability, Verdict::Linearizable) {
        return Some(format!("{:?}", report.check.linearizability));
    }
    report.converged.clone().err()
}
