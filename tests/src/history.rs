//! The client history: every operation with its invocation, its completion and how it ended,
//! written as JSON lines in Jepsen's vocabulary.
//!
//! An operation ends `ok` (it took effect, with this result), `fail` (it certainly did not take
//! effect: refused before it was proposed, or a read that failed) or `info` (its outcome is
//! unknown: the node said `outcome unknown`, the connection broke or the call timed out).

use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Instant;

use serde::Serialize;

/// What a client asked for. Values are ASCII strings the workloads make unique.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Call {
    /// GET.
    Read,
    /// SET.
    Write(String),
    /// CAS key IFEQ expected | IFABSENT, SET new.
    Cas {
        /// The value expected (`None`: absent).
        expected: Option<String>,
        /// The value to store.
        new: String,
    },
    /// INCR.
    Incr,
    /// APPEND of a token.
    Append(String),
}

impl Call {
    /// Jepsen's `:f` of the call.
    pub fn f(&self) -> &'static str {
        match self {
            Call::Read => "read",
            Call::Write(_) => "write",
            Call::Cas { .. } => "cas",
            Call::Incr => "incr",
            Call::Append(_) => "append",
        }
    }

    /// Whether the call may change state (an unknown outcome matters).
    pub fn is_write(&self) -> bool {
        !matches!(self, Call::Read)
    }
}

/// What an operation returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Ret {
    /// The value read (`None`: absent).
    Read(Option<String>),
    /// SET answered OK.
    Write,
    /// Whether the CAS swapped.
    Cas(bool),
    /// INCR's new value.
    Incr(i64),
    /// APPEND's new length.
    Append(i64),
}

/// How an operation ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Took effect, with this result.
    Ok(Ret),
    /// Certainly did not take effect; why.
    Fail(String),
    /// May or may not have taken effect; why.
    Info(String),
}

/// One operation.
#[derive(Debug, Clone, Serialize)]
pub struct Op {
    /// The client (Jepsen's process).
    pub process: u64,
    /// The node it was sent to.
    pub node: u64,
    /// The key.
    pub key: String,
    /// What was asked.
    pub call: Call,
    /// Invocation, nanoseconds since the campaign started.
    pub invoked_ns: u64,
    /// Completion (or giving up), nanoseconds since the campaign started.
    pub completed_ns: u64,
    /// How it ended.
    pub outcome: Outcome,
}

/// The history, shared by every client.
#[derive(Clone)]
pub struct History {
    start: Instant,
    ops: Arc<Mutex<Vec<Op>>>,
}

impl History {
    /// An empty history whose clock starts at `start`.
    pub fn new(start: Instant) -> History {
        History {
            start,
            ops: Arc::default(),
        }
    }

    /// Nanoseconds since the campaign started.
    pub fn now(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// Records a finished operation.
    pub fn push(&self, op: Op) {
        self.ops.lock().expect("history lock").push(op);
    }

    /// Every operation so far, in order of invocation.
    pub fn ops(&self) -> Vec<Op> {
        let mut ops = self.ops.lock().expect("history lock").clone();
        ops.sort_by_key(|op| (op.invoked_ns, op.process));
        ops
    }
}

/// One line of the JSON history.
#[derive(Serialize)]
struct Line<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    index: usize,
    process: u64,
    node: u64,
    f: &'a str,
    key: &'a str,
    value: serde_json::Value,
    time_ns: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

/// Writes `ops` as JSON lines: one `invoke` and one `ok` / `fail` / `info` line per operation,
/// in time order. `index` is the operation's position in `ops` (the checkers' numbering).
pub fn write_jsonl(ops: &[Op], path: &Path) -> std::io::Result<()> {
    let mut lines: Vec<(u64, bool, String)> = Vec::with_capacity(ops.len() * 2);
    for (index, op) in ops.iter().enumerate() {
        let call_value = match &op.call {
            Call::Read | Call::Incr => serde_json::Value::Null,
            Call::Write(v) | Call::Append(v) => v.clone().into(),
            Call::Cas { expected, new } => serde_json::json!([expected, new]),
        };
        let line = |kind: &str, value: serde_json::Value, time_ns: u64, error: Option<&str>| {
            serde_json::to_string(&Line {
                kind,
                index,
                process: op.process,
                node: op.node,
                f: op.call.f(),
                key: &op.key,
                value,
                time_ns,
                error,
            })
            .expect("a history line serializes")
        };
        lines.push((
            op.invoked_ns,
            false,
            line("invoke", call_value.clone(), op.invoked_ns, None),
        ));
        let end = match &op.outcome {
            Outcome::Ok(ret) => {
                let value = match ret {
                    Ret::Read(v) => serde_json::json!(v),
                    Ret::Write => call_value,
                    Ret::Cas(swapped) => serde_json::json!([call_value, swapped]),
                    Ret::Incr(n) | Ret::Append(n) => serde_json::json!(n),
                };
                line("ok", value, op.completed_ns, None)
            }
            Outcome::Fail(why) => line("fail", call_value, op.completed_ns, Some(why)),
            Outcome::Info(why) => line("info", call_value, op.completed_ns, Some(why)),
        };
        lines.push((op.completed_ns, true, end));
    }
    lines.sort_by_key(|(t, is_end, _)| (*t, *is_end));
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    for (_, _, line) in lines {
        writeln!(out, "{line}")?;
    }
    out.flush()
}
