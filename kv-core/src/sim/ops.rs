//! Simulated client operations: submitted to a node, routed to the leader as a client library
//! would, and recorded as a history for the linearizability checker.

use std::time::Duration;

use openraft::ReadPolicy;
use openraft_rt::AsyncRuntime;
use serde::Deserialize;
use serde::Serialize;

use super::EventKind;
use super::WorldRef;
use crate::check::linearizability::Call;
use crate::check::linearizability::Operation;
use crate::check::linearizability::Outcome;
use crate::check::linearizability::Ret;
use crate::command::Command;
use crate::command::Expiry;
use crate::command::Key;
use crate::command::Query;
use crate::command::Response;
use crate::command::SetCondition;
use crate::command::Value;
use crate::command::Write;
use crate::runtime::SimRuntime;

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
}

impl ClientCall {
    fn key(&self) -> &Key {
        match self {
            ClientCall::Get { key } | ClientCall::LocalGet { key } | ClientCall::Delete { key } => key,
            ClientCall::Put { key, .. } => key,
            ClientCall::Cas { key, .. } => key,
        }
    }

    fn checker_call(&self) -> Call {
        match self {
            ClientCall::Get { .. } | ClientCall::LocalGet { .. } => Call::Get,
            ClientCall::Put { value, .. } => Call::Put(value.clone()),
            ClientCall::Delete { .. } => Call::Delete,
            ClientCall::Cas { expected, new, .. } => Call::Cas {
                expected: expected.clone(),
                new: new.clone(),
            },
        }
    }
}

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

/// Most redirects one operation follows before failing.
const MAX_REDIRECTS: usize = 3;

/// Carries out operation `id`: sends it to its node, follows leader hints, and records the end.
pub(crate) async fn perform(world: WorldRef, id: OpId, timeout: Duration) {
    let (mut node, call) = {
        let w = world.lock();
        let op = &w.ops[id.0 as usize].0;
        (op.node, op.call.clone())
    };
    let state = match SimRuntime::timeout(timeout, attempt_all(&world, &mut node, &call)).await {
        Ok(state) => state,
        Err(_) if matches!(call, ClientCall::Get { .. } | ClientCall::LocalGet { .. }) => {
            Err(Err("timed out".to_string()))
        }
        Err(_) => Err(Ok("timed out".to_string())),
    };
    let mut w = world.lock();
    let at_ns = w.now_ns();
    let state = match state {
        Ok(ret) => OpState::Returned { at_ns, ret },
        Err(Ok(reason)) => OpState::Unknown { at_ns, reason },
        Err(Err(error)) => OpState::Failed { at_ns, error },
    };
    w.event(EventKind::ClientReturn {
        op: id.0,
        result: state.summary(),
    });
    w.ops[id.0 as usize].0.state = state;
}

/// The outcome of one try: a return value, or `Err(Ok(reason))` for "may have taken effect",
/// or `Err(Err(error))` for "certainly did not".
type Attempt = Result<Ret, Result<String, String>>;

async fn attempt_all(world: &WorldRef, node: &mut u64, call: &ClientCall) -> Attempt {
    let mut redirects = 0;
    loop {
        match attempt(world, *node, call).await {
            Err(Redirect(Some(leader))) if redirects < MAX_REDIRECTS && leader != *node => {
                redirects += 1;
                *node = leader;
            }
            Err(Redirect(leader)) => {
                return Err(Err(format!("node {node} is not the leader (leader: {leader:?})")));
            }
            Ok(outcome) => return outcome,
        }
    }
}

/// "Ask that node instead" (the leader hint, if any).
struct Redirect(Option<u64>);

async fn attempt(world: &WorldRef, node: u64, call: &ClientCall) -> Result<Attempt, Redirect> {
    let (raft, store, at_ms) = {
        let w = world.lock();
        (
            w.rafts.get(&node).cloned(),
            w.stores.get(&node).cloned(),
            w.now_ns() / 1_000_000,
        )
    };
    let (Some(raft), Some(store)) = (raft, store) else {
        return Ok(Err(Err(format!("node {node} is down"))));
    };
    let command = match call {
        ClientCall::LocalGet { key } => {
            return match store.read().query(&Query::Get { key: key.clone() }, at_ms) {
                Response::Value(v) => Ok(Ok(Ret::Get(v))),
                other => unreachable!("Get answered {other:?}"),
            };
        }
        ClientCall::Get { key } => {
            return match raft.ensure_linearizable(ReadPolicy::ReadIndex).await {
                Ok(_) => match store.read().query(&Query::Get { key: key.clone() }, at_ms) {
                    Response::Value(v) => Ok(Ok(Ret::Get(v))),
                    other => unreachable!("Get answered {other:?}"),
                },
                Err(e) => match e.forward_to_leader() {
                    Some(f) => Err(Redirect(f.leader_id)),
                    None => Ok(Err(Err(format!("read failed: {e}")))),
                },
            };
        }
        ClientCall::Put { key, value } => Command::Set {
            key: key.clone(),
            value: value.clone(),
            condition: SetCondition::Always,
            expiry: Expiry::Never,
        },
        ClientCall::Delete { key } => Command::Delete {
            keys: vec![key.clone()],
        },
        ClientCall::Cas { key, expected, new } => Command::CompareAndSwap {
            key: key.clone(),
            expected: expected.clone(),
            new: new.clone(),
        },
    };
    match raft.client_write(Write { at_ms, command }).await {
        Ok(reply) => Ok(Ok(match (call, reply.data) {
            (ClientCall::Put { .. }, Response::Set { .. }) => Ret::Put,
            (ClientCall::Delete { .. }, Response::Count(n)) => Ret::Delete { existed: n > 0 },
            (ClientCall::Cas { .. }, Response::Cas { swapped, .. }) => Ret::Cas { swapped },
            (call, data) => unreachable!("{call:?} answered {data:?}"),
        })),
        Err(e) => match e.forward_to_leader() {
            Some(f) => Err(Redirect(f.leader_id)),
            None => Ok(Err(Ok(format!("write interrupted: {e}")))),
        },
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
        }
    }
}

impl OpState {
    /// A short human-readable form, e.g. `ok swapped=true`.
    pub fn summary(&self) -> String {
        use crate::command::Printable as P;
        match self {
            OpState::Pending => "pending".to_string(),
            OpState::Returned {
                ret: Ret::Get(Some(v)), ..
            } => format!("ok {}", P(v)),
            OpState::Returned {
                ret: Ret::Get(None), ..
            } => "ok (none)".to_string(),
            OpState::Returned { ret: Ret::Put, .. } => "ok".to_string(),
            OpState::Returned {
                ret: Ret::Delete { existed },
                ..
            } => format!("ok existed={existed}"),
            OpState::Returned {
                ret: Ret::Cas { swapped },
                ..
            } => format!("ok swapped={swapped}"),
            OpState::Failed { error, .. } => format!("failed: {error}"),
            OpState::Unknown { reason, .. } => format!("unknown: {reason}"),
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
                call: op.call.checker_call(),
                invoked_at: op.invoked_ns,
                outcome,
            })
        })
        .collect()
}
