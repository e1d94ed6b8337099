//! `quorumkv._native.Simulation` and `run_seed`: kv-core's deterministic simulator.
//!
//! Operations cross as dicts (see [`op_dict`]); the cluster view, the events and the check
//! report cross as the plain dicts and lists of their serde form. Trace hashes are the 16 hex
//! digits `kv-sim` prints.

use std::time::Duration;

use kv_core::check::linearizability::Ret;
use kv_core::sim::ClientCall;
use kv_core::sim::OpId;
use kv_core::sim::OpState;
use kv_core::sim::OpView;
use kv_core::sim::SimOptions;
use kv_core::sim::time;
use kv_core::sim::workload::RunOptions;
use pyo3::IntoPyObjectExt;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use pyo3::types::PyDict;
use pyo3::types::PyList;
use serde::Serialize;
use serde_json::Value as Json;

use crate::error;
use crate::error::Kind;
use crate::error::guard;

/// A JSON value as the equal plain Python value (dict, list, str, int, float, bool, None).
fn json_to_py<'py>(py: Python<'py>, value: &Json) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Json::Null => py.None().into_bound(py),
        Json::Bool(b) => b.into_bound_py_any(py)?,
        Json::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => u.into_bound_py_any(py)?,
            (None, Some(i)) => i.into_bound_py_any(py)?,
            (None, None) => n.as_f64().unwrap_or(f64::NAN).into_bound_py_any(py)?,
        },
        Json::String(s) => s.into_bound_py_any(py)?,
        Json::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(json_to_py(py, item)?)?;
            }
            list.into_any()
        }
        Json::Object(fields) => {
            let dict = PyDict::new(py);
            for (key, item) in fields {
                dict.set_item(key, json_to_py(py, item)?)?;
            }
            dict.into_any()
        }
    })
}

/// `value`'s serde form as plain Python values.
fn to_py<'py>(py: Python<'py>, value: &impl Serialize) -> PyResult<Bound<'py, PyAny>> {
    let json = serde_json::to_value(value)
        .map_err(|e| error::error(Kind::Internal, format!("cannot convert to Python: {e}")))?;
    json_to_py(py, &json)
}

/// `ms` milliseconds as kv-core converts them for every binding (to the nearest nanosecond);
/// a time it refuses is an invalid argument.
fn millis(ms: f64) -> PyResult<Duration> {
    time::duration_from_ms(ms).map_err(|e| error::error(Kind::InvalidArgument, e.to_string()))
}

fn hex(hash: u64) -> String {
    format!("{hash:016x}")
}

/// An operation as a dict: `id, client, node, kind, key, call, invoked_ms, state
/// ("pending" | "ok" | "failed" | "unknown"), returned_ms, result, error, summary`.
/// `result` is what a returned operation gave: the value read (bytes or None) for a get,
/// None for a put, whether the key existed for a delete, whether it swapped for a cas, the
/// summary text for a transaction.
fn op_dict<'py>(py: Python<'py>, op: &OpView) -> PyResult<Bound<'py, PyDict>> {
    // The call's serde form names its kind ("get", "put", ...) and holds its key, whatever
    // kinds of call the simulator grows.
    let call = serde_json::to_value(&op.call)
        .map_err(|e| error::error(Kind::Internal, format!("cannot convert an operation: {e}")))?;
    let kind = call.get("op").and_then(Json::as_str).unwrap_or("unknown").to_string();
    let key: Vec<u8> = call
        .get("key")
        .and_then(|k| serde_json::from_value(k.clone()).ok())
        .unwrap_or_default();
    let none = || py.None().into_bound(py);
    let (state, returned_ns, result, err) = match &op.state {
        OpState::Pending => ("pending", None, none(), none()),
        OpState::Returned { at_ns, ret } => {
            let result = match ret {
                Ret::Get(Some(value)) => PyBytes::new(py, value).into_any(),
                Ret::Get(None) | Ret::Put => none(),
                Ret::Delete { existed } => existed.into_bound_py_any(py)?,
                Ret::Cas { swapped } => swapped.into_bound_py_any(py)?,
                Ret::Transaction(_) => op.state.summary().into_bound_py_any(py)?,
            };
            ("ok", Some(*at_ns), result, none())
        }
        OpState::Failed { at_ns, error } => ("failed", Some(*at_ns), none(), error.into_bound_py_any(py)?),
        OpState::Unknown { at_ns, reason } => ("unknown", Some(*at_ns), none(), reason.into_bound_py_any(py)?),
    };
    let dict = PyDict::new(py);
    dict.set_item("id", op.id.0)?;
    dict.set_item("client", op.client)?;
    dict.set_item("node", op.node)?;
    dict.set_item("kind", kind)?;
    dict.set_item("key", PyBytes::new(py, &key))?;
    dict.set_item("call", op.call.describe())?;
    dict.set_item("invoked_ms", time::ms_from_nanos(op.invoked_ns))?;
    dict.set_item("state", state)?;
    dict.set_item("returned_ms", returned_ns.map(time::ms_from_nanos))?;
    dict.set_item("result", result)?;
    dict.set_item("error", err)?;
    dict.set_item("summary", op.state.summary())?;
    Ok(dict)
}

/// A simulated QuorumKV cluster running the real Raft code on virtual time. It lives on the
/// thread that made it; a call runs the simulation on that thread (holding the GIL).
#[pyclass(module = "quorumkv._native", name = "Simulation", unsendable)]
pub struct Simulation {
    inner: kv_core::sim::Simulation,
}

impl Simulation {
    fn submit(&mut self, node: u64, call: ClientCall) -> PyResult<u64> {
        guard(|| self.inner.submit(node, call).map(|id| id.0).map_err(error::sim))
    }
}

#[pymethods]
impl Simulation {
    /// A cluster of `nodes` (3 to 7) whose every random choice comes from `seed`.
    #[new]
    #[pyo3(signature = (seed, nodes))]
    fn new(seed: u64, nodes: usize) -> PyResult<Self> {
        guard(|| {
            let options = SimOptions {
                seed,
                nodes,
                ..SimOptions::default()
            };
            let inner = kv_core::sim::Simulation::new(options).map_err(error::sim)?;
            Ok(Simulation { inner })
        })
    }

    /// Advances virtual time by `ms` milliseconds.
    fn run_for(&mut self, ms: f64) -> PyResult<()> {
        guard(|| {
            self.inner.run_for(millis(ms)?);
            Ok(())
        })
    }

    /// Jumps to the next scheduled moment and runs it; false if nothing is scheduled.
    fn step(&mut self) -> PyResult<bool> {
        guard(|| Ok(self.inner.step()))
    }

    /// Virtual time in milliseconds.
    fn now_ms(&self) -> PyResult<f64> {
        guard(|| Ok(time::ms_from_duration(self.inner.now())))
    }

    /// Whether `node` is running.
    fn is_up(&self, node: u64) -> PyResult<bool> {
        guard(|| Ok(self.inner.is_up(node)))
    }

    /// Crashes `node` (it keeps its log, vote and snapshot).
    fn crash(&mut self, node: u64) -> PyResult<()> {
        guard(|| self.inner.crash(node).map_err(error::sim))
    }

    /// Restarts a crashed `node`.
    fn restart(&mut self, node: u64) -> PyResult<()> {
        guard(|| self.inner.restart(node).map_err(error::sim))
    }

    /// Splits the network into `groups` of node ids; nodes in no group are isolated.
    fn partition(&mut self, groups: Vec<Vec<u64>>) -> PyResult<()> {
        guard(|| self.inner.partition(&groups).map_err(error::sim))
    }

    /// Reconnects every node.
    fn heal(&mut self) -> PyResult<()> {
        guard(|| {
            self.inner.heal();
            Ok(())
        })
    }

    /// Sets the probability (0 to 1) that a message is lost.
    fn set_drop_rate(&mut self, p: f64) -> PyResult<()> {
        guard(|| self.inner.set_drop_rate(p).map_err(error::sim))
    }

    /// Submits a put to `node`; returns the operation id.
    fn put(&mut self, node: u64, key: Vec<u8>, value: Vec<u8>) -> PyResult<u64> {
        self.submit(node, ClientCall::Put { key, value })
    }

    /// Submits a linearizable get to `node`; returns the operation id.
    fn get(&mut self, node: u64, key: Vec<u8>) -> PyResult<u64> {
        self.submit(node, ClientCall::Get { key })
    }

    /// Submits a delete to `node`; returns the operation id.
    fn delete(&mut self, node: u64, key: Vec<u8>) -> PyResult<u64> {
        self.submit(node, ClientCall::Delete { key })
    }

    /// Submits a compare-and-swap (`None`: absent) to `node`; returns the operation id.
    fn cas(&mut self, node: u64, key: Vec<u8>, expected: Option<Vec<u8>>, new: Option<Vec<u8>>) -> PyResult<u64> {
        self.submit(node, ClientCall::Cas { key, expected, new })
    }

    /// One operation as a dict (see `op_dict` in the Rust source for its keys).
    fn op<'py>(&self, py: Python<'py>, id: u64) -> PyResult<Bound<'py, PyDict>> {
        guard(|| match self.inner.op(OpId(id)) {
            Some(op) => op_dict(py, &op),
            None => Err(error::error(Kind::InvalidArgument, format!("no operation {id}"))),
        })
    }

    /// Every operation so far, as dicts.
    fn ops<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        guard(|| self.inner.ops().iter().map(|op| op_dict(py, op)).collect())
    }

    /// The cluster: `now_ms, seed, nodes, in_flight, drop_rate, events`.
    fn state<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        guard(|| to_py(py, &self.inner.view()))
    }

    /// Kept events with sequence number `since` and later: `[{at_ns, kind: {type, ...}}]`.
    #[pyo3(signature = (since = 0))]
    fn events<'py>(&self, py: Python<'py>, since: u64) -> PyResult<Bound<'py, PyAny>> {
        guard(|| to_py(py, &self.inner.events_since(since)))
    }

    /// Number of events so far.
    fn event_count(&self) -> PyResult<u64> {
        guard(|| Ok(self.inner.event_count()))
    }

    /// Every checker's verdict: `{violations, linearizability, operations}`.
    fn check<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        guard(|| to_py(py, &self.inner.check()))
    }

    /// Hash of the whole event trace, as 16 hex digits.
    fn trace_hash(&self) -> PyResult<String> {
        guard(|| Ok(hex(self.inner.trace_hash())))
    }
}

/// Runs one seeded fault run as `kv-sim` does (nodes 3 to 7, clients, faults, checks) and
/// returns `{seed, trace_hash, ok, events, virtual_ms, operations, faults, check, converged}`.
/// Releases the GIL while it runs.
#[pyfunction]
#[pyo3(signature = (seed, nodes, duration_ms = 5_000, faults = true))]
pub fn run_seed<'py>(
    py: Python<'py>,
    seed: u64,
    nodes: usize,
    duration_ms: u64,
    faults: bool,
) -> PyResult<Bound<'py, PyDict>> {
    guard(|| {
        let options = RunOptions {
            nodes,
            duration_ms,
            faults,
            ..RunOptions::default()
        };
        let report = py
            .detach(|| kv_core::sim::workload::run_seed(seed, &options))
            .map_err(error::sim)?;
        let dict = PyDict::new(py);
        dict.set_item("seed", report.seed)?;
        dict.set_item("trace_hash", hex(report.trace_hash))?;
        dict.set_item("ok", report.is_ok())?;
        dict.set_item("events", report.events)?;
        dict.set_item("virtual_ms", report.virtual_ms)?;
        dict.set_item("operations", report.check.operations)?;
        dict.set_item("faults", &report.faults)?;
        dict.set_item("check", to_py(py, &report.check)?)?;
        dict.set_item("converged", report.converged.err())?;
        Ok(dict)
    })
}
