//! Simulated client operations: submitted to a node, routed to the leader as a client library
//! would, and recorded as a history for the linearizability checker.

use std::time::Duration;

use openraft_rt::AsyncRuntime;
use serde::Deserialize;
use serde::Serialize;

use super::EventKind;
use super::WorldRef;
use crate::check::linearizability::Call;
use crate::check::linearizability::Operation;
use crate::check::linearizability::Outcome;
use crate::check::linearizability::Ret;
use crate::check::linearizability::TxGuard;
use crate::command::Command;
use crate::command::Expiry;
use crate::command::Key;
use crate::command::Query;
use crate::command::Response;
use crate::command::SetCondition;
use crate::command::TxOp;
use crate::command::Value;
use crate::command::WatchGuard;
use crate::runtime::SimRuntime;
use crate::wire::Op;
use crate::wire::OpError;
use crate::wire::ReadMode;

/// Identifies a submitted operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OpId(pub u64);

/// What a client asks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ClientCall {
    /// Linearizable read.
    Get {
        /// The key.
        key: Key,
    },
    /// Read of the node's local state machine, skipping the read-index check: may be stale
    /// (as Redis `READONLY` reads on a replica are); the checker then flags the history.
    LocalGet {
        /// The key.
        key: Key,
    },
    /// Write a value.
    Put {
        /// The key.
        key: Key,
        /// The value.
        value: Value,
    },
    /// Remove a key.
    Delete {
        /// The key.
        key: Key,
    },
    /// Compare-and-swap (`None` = absent).
    Cas {
        /// The key.
        key: Key,
        /// Value the key must hold.
        expected: Option<Value>,
        /// Value to store.
        new: Option<Value>,
    },
    /// Linearizable read with revisions (`Query::GetRevision`): where a guarded transaction's
    /// `since` comes from.
    GetRevision {
        /// The key.
        key: Key,
    },
    /// Steps on several keys in one `Command::Transaction`: one log entry, applied atomically.
    Transaction {
        /// The optimistic lock (Redis `WATCH`), if any.
        guard: Option<TxGuardCall>,
        /// The steps, each a `Get`, `Put`, `Delete` or `Cas`.
        steps: Vec<ClientCall>,
    },
}

/// The guard of a [`ClientCall::Transaction`]: abort if any of `keys` changed after revision
/// `since`, which the [`ClientCall::GetRevision`] operation `read` returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxGuardCall {
    /// The read that gave `since`.
    pub read: OpId,
    /// The revision the keys were read at.
    pub since: u64,
    /// The guarded keys.
    pub keys: Vec<Key>,
}

impl ClientCall {
    /// The key (a transaction's first step's key; empty for a transaction without steps).
    pub fn key(&self) -> &Key {
        match self {
            ClientCall::Get { key } | ClientCall::LocalGet { key } | ClientCall::Delete { key } => key,
            ClientCall::Put { key, .. } | ClientCall::Cas { key, .. } | ClientCall::GetRevision { key } => key,
            ClientCall::Transaction { steps, .. } => steps.first().map_or(&EMPTY_KEY, ClientCall::key),
        }
    }

    /// The checker's view of this call, as operation `id`.
    fn checker_call(&self, id: OpId) -> Call {
        match self {
            ClientCall::Get { .. } | ClientCall::LocalGet { .. } => Call::Get,
            ClientCall::GetRevision { .. } => Call::GuardedGet { guard: id.0 },
            ClientCall::Put { value, .. } => Call::Put(value.clone()),
            ClientCall::Delete { .. } => Call::Delete,
            ClientCall::Cas { expected, new, .. } => Call::Cas {
                expected: expected.clone(),
                new: new.clone(),
            },
            ClientCall::Transaction { guard, steps } => Call::Transaction {
                guard: guard.as_ref().map(|g| TxGuard {
                    id: g.read.0,
                    keys: g.keys.clone(),
                }),
                steps: steps.iter().map(|s| (s.key().clone(), s.checker_call(id))).collect(),
            },
        }
    }
}

static EMPTY_KEY: Key = Vec::new();

/// Where an operation stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum OpState {
    /// Not answered yet.
    Pending,
    /// Answered.
    Returned {
        /// When (virtual ns).
        at_ns: u64,
        /// The answer.
        ret: Ret,
    },
    /// Refused without effect (e.g. no leader known); not part of the history.
    Failed {
        /// When (virtual ns).
        at_ns: u64,
        /// Why.
        error: String,
    },
    /// Given up on: it may or may not have taken effect.
    Unknown {
        /// When (virtual ns).
        at_ns: u64,
        /// Why.
        reason: String,
    },
}

/// An operation, for rendering.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpView {
    /// Its id.
    pub id: OpId,
    /// Client that issued it.
    pub client: u64,
    /// Node it was submitted to.
    pub node: u64,
    /// What it asked.
    pub call: ClientCall,
    /// When it was invoked (virtual ns).
    pub invoked_ns: u64,
    /// Where it stands.
    pub state: OpState,
}

/// An operation as the world records it.
#[derive(Debug, Clone)]
pub(crate) struct OpRecord(OpView);

impl OpRecord {
    pub(crate) fn view(&self) -> OpView {
        self.0.clone()
    }
}

/// Records the invocation of `call` at `node` by `client` (a fresh client id if `None`).
pub(crate) fn start(world: &WorldRef, client: Option<u64>, node: u64, call: ClientCall) -> OpId {
    let mut world = world.lock();
    let id = OpId(world.ops.len() as u64);
    let client = client.unwrap_or(1_000_000 + id.0);
    let invoked_ns = world.now_ns();
    world.event(EventKind::ClientInvoke {
        op: id.0,
        node,
        call: call.describe(),
    });
    world.ops.push(OpRecord(OpView {
        id,
        client,
        node,
        call,
        invoked_ns,
        state: OpState::Pending,
    }));
    id
}

/// Carries out operation `id`: submits it to its node's request path (which forwards it to
/// the leader if need be, as kv-node does for a RESP client) and records how it ended.
/// Returns the response, if it got one.
pub(crate) async fn perform(world: WorldRef, id: OpId, timeout: Duration) -> Option<Response> {
    let (node, call, planted_bug, split) = {
        let w = world.lock();
        let op = &w.ops[id.0 as usize].0;
        (
            op.node,
            op.call.clone(),
            w.options.planted_bug,
            w.options.planted_split_transactions,
        )
    };
    let path = world.path(node);
    let state = match path {
        None => Err(OpError::Unavailable(format!("node {node} is down"))),
        Some(path) => {
            let (op, mut mode) = call.op();
            if planted_bug {
                // The planted bug (see `SimOptions::planted_bug`): every read is a local read.
                mode = ReadMode::Stale;
            }
            match (&call, split) {
                // The planted bug (see `SimOptions::planted_split_transactions`).
                (ClientCall::Transaction { steps, .. }, true) => {
                    let ops = steps.iter().map(|step| step.op().0).collect();
                    match SimRuntime::timeout(timeout, path.execute_batch(ops, mode)).await {
                        Ok(results) => results
                            .into_iter()
                            .collect::<Result<Vec<_>, _>>()
                            .map(|answers| Response::Transaction(Some(answers))),
                        Err(_) => Err(OpError::OutcomeUnknown(format!("no answer within {timeout:?}"))),
                    }
                }
                _ => match SimRuntime::timeout(timeout, path.execute_batch(vec![op], mode)).await {
                    Ok(mut results) => results.pop().expect("one result per operation"),
                    Err(_) => Err(OpError::OutcomeUnknown(format!("no answer within {timeout:?}"))),
                },
            }
        }
    };
    let mut w = world.lock();
    let at_ns = w.now_ns();
    let answer = state.as_ref().ok().cloned();
    let state = match state {
        Ok(response) => OpState::Returned {
            at_ns,
            ret: call.ret(response),
        },
        // A read changes nothing, so a read without an answer simply failed.
        Err(e) if e.may_have_taken_effect() && !call.is_read() => OpState::Unknown {
            at_ns,
            reason: e.to_string(),
        },
        Err(e) => OpState::Failed {
            at_ns,
            error: e.to_string(),
        },
    };
    w.event(EventKind::ClientReturn {
        op: id.0,
        result: state.summary(),
    });
    w.ops[id.0 as usize].0.state = state;
    answer
}

impl ClientCall {
    /// Whether it changes nothing (a transaction of reads only, with no guard, included).
    fn is_read(&self) -> bool {
        match self {
            ClientCall::Get { .. } | ClientCall::LocalGet { .. } | ClientCall::GetRevision { .. } => true,
            ClientCall::Transaction { guard, steps } => guard.is_none() && steps.iter().all(ClientCall::is_read),
            _ => false,
        }
    }

    /// This call as a step of a transaction.
    fn tx_op(&self) -> TxOp {
        match self.op().0 {
            Op::Read(query) => TxOp::Read(query),
            Op::Write { command, ttl_ms } => TxOp::Write { command, ttl_ms },
            op => unreachable!("a transaction step is a read or a write, not {op:?}"),
        }
    }

    /// The operation a RESP client would send for this call, and how it reads.
    fn op(&self) -> (Op, ReadMode) {
        let write = |command| Op::Write { command, ttl_ms: None };
        match self {
            ClientCall::Get { key } => (Op::Read(Query::Get { key: key.clone() }), ReadMode::Linearizable),
            ClientCall::LocalGet { key } => (Op::Read(Query::Get { key: key.clone() }), ReadMode::Stale),
            ClientCall::GetRevision { key } => (
                Op::Read(Query::GetRevision { key: key.clone() }),
                ReadMode::Linearizable,
            ),
            ClientCall::Transaction { guard, steps } => (
                write(Command::Transaction {
                    guard: guard.as_ref().map(|g| WatchGuard {
                        since: g.since,
                        keys: g.keys.clone(),
                    }),
                    ops: steps.iter().map(ClientCall::tx_op).collect(),
                }),
                ReadMode::Linearizable,
            ),
            ClientCall::Put { key, value } => (
                write(Command::SetQuiet {
                    key: key.clone(),
                    value: value.clone(),
                    condition: SetCondition::Always,
                    expiry: Expiry::Never,
                }),
                ReadMode::Linearizable,
            ),
            ClientCall::Delete { key } => (
                write(Command::Delete {
                    keys: vec![key.clone()],
                }),
                ReadMode::Linearizable,
            ),
            ClientCall::Cas { key, expected, new } => (
                write(Command::CompareAndSwap {
                    key: key.clone(),
                    expected: expected.clone(),
                    new: new.clone(),
                }),
                ReadMode::Linearizable,
            ),
        }
    }

    /// The checker's view of the response to this call.
    fn ret(&self, response: Response) -> Ret {
        match (self, response) {
            (ClientCall::Get { .. } | ClientCall::LocalGet { .. }, Response::Value(v)) => Ret::Get(v),
            (ClientCall::Put { .. }, Response::Set { .. }) => Ret::Put,
            (ClientCall::Delete { .. }, Response::Count(n)) => Ret::Delete { existed: n > 0 },
            (ClientCall::Cas { .. }, Response::Cas { swapped, .. }) => Ret::Cas { swapped },
            (ClientCall::GetRevision { .. }, Response::Revisioned { value, .. }) => Ret::Get(value),
            (ClientCall::Transaction { steps, .. }, Response::Transaction(answers)) => {
                Ret::Transaction(answers.map(|answers| {
                    assert_eq!(answers.len(), steps.len(), "one answer per transaction step");
                    steps
                        .iter()
                        .zip(answers)
                        .map(|(step, answer)| step.ret(answer))
                        .collect()
                }))
            }
            (call, response) => unreachable!("{call:?} answered {response:?}"),
        }
    }
}

impl ClientCall {
    /// A short human-readable form, e.g. `put k=v`.
    pub fn describe(&self) -> String {
        use crate::command::Printable as P;
        let opt = |v: &Option<Value>| v.as_ref().map_or("∅".to_string(), |v| P(v).to_string());
        match self {
            ClientCall::Get { key } => format!("get {}", P(key)),
            ClientCall::LocalGet { key } => format!("local-get {}", P(key)),
            ClientCall::Put { key, value } => format!("put {}={}", P(key), P(value)),
            ClientCall::Delete { key } => format!("delete {}", P(key)),
            ClientCall::Cas { key, expected, new } => format!("cas {} {}→{}", P(key), opt(expected), opt(new)),
            ClientCall::GetRevision { key } => format!("get-revision {}", P(key)),
            ClientCall::Transaction { guard, steps } => {
                let steps: Vec<String> = steps.iter().map(ClientCall::describe).collect();
                match guard {
                    None => format!("tx [{}]", steps.join("; ")),
                    Some(g) => format!("tx if unchanged since {} [{}]", g.since, steps.join("; ")),
                }
            }
        }
    }
}

impl OpState {
    /// A short human-readable form, e.g. `ok swapped=true`.
    pub fn summary(&self) -> String {
        match self {
            OpState::Pending => "pending".to_string(),
            OpState::Returned { ret: Ret::Put, .. } => "ok".to_string(),
            OpState::Returned { ret, .. } => format!("ok {}", summary(ret)),
            OpState::Failed { error, .. } => format!("failed: {error}"),
            OpState::Unknown { reason, .. } => format!("unknown: {reason}"),
        }
    }
}

/// A return in short, e.g. `swapped=true`.
fn summary(ret: &Ret) -> String {
    use crate::command::Printable as P;
    match ret {
        Ret::Get(Some(v)) => P(v).to_string(),
        Ret::Get(None) => "(none)".to_string(),
        Ret::Put => "ok".to_string(),
        Ret::Delete { existed } => format!("existed={existed}"),
        Ret::Cas { swapped } => format!("swapped={swapped}"),
        Ret::Transaction(None) => "aborted".to_string(),
        Ret::Transaction(Some(rets)) => {
            let rets: Vec<String> = rets.iter().map(summary).collect();
            format!("[{}]", rets.join("; "))
        }
    }
}

/// The client history for the linearizability checker: failed operations had no effect and
/// are left out; pending and given-up ones may or may not have taken effect.
pub(crate) fn history(ops: &[OpRecord]) -> Vec<Operation> {
    ops.iter()
        .filter_map(|OpRecord(op)| {
            let outcome = match &op.state {
                OpState::Failed { .. } => return None,
                OpState::Returned { at_ns, ret } => Outcome::Returned {
                    at: *at_ns,
                    ret: ret.clone(),
                },
                OpState::Pending | OpState::Unknown { .. } => Outcome::Unknown,
            };
            Some(Operation {
                client: op.client,
                key: op.call.key().clone(),
                call: op.call.checker_call(op.id),
                invoked_at: op.invoked_ns,
                outcome,
            })
        })
        .collect()
}
