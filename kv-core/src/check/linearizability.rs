//! Linearizability of client histories, checked component by component.
//!
//! A client history is a list of [`Operation`]s: what each client asked for, when it asked, and
//! what came back and when — or that nothing came back ([`Outcome::Unknown`]). [`check`] decides
//! whether some total order of the operations, consistent with real time, explains every
//! returned value under the sequential spec of a set of keys:
//!
//! | call                     | effect on the key's value `v` (initially absent)   | returns            |
//! |--------------------------|----------------------------------------------------|--------------------|
//! | [`Call::Get`]            | none                                               | `v`                |
//! | [`Call::Put`]`(x)`       | `v = x`                                            | —                  |
//! | [`Call::Delete`]         | `v = absent`                                       | whether `v` existed|
//! | [`Call::Cas`]`{e, n}`    | if `v == e` (absent matches `None`): `v = n`       | whether it swapped |
//! | [`Call::GuardedGet`]     | none; starts a guard                               | `v`                |
//! | [`Call::Transaction`]    | its steps in order, as one step, unless its guard aborts it | each step's return, or "aborted" |
//!
//! # Components: transactions join keys
//!
//! Linearizability is compositional (Herlihy & Wing): a history is linearizable if the
//! sub-history of each object is. A single-key operation touches one object, a key; a
//! transaction touches several at once, so the objects are the *components* of the graph whose
//! nodes are keys and whose edges are transactions (steps and guarded keys alike), found with a
//! union-find. Each component is checked on its own, with a spec whose state is the value of
//! each of its keys; without transactions every component is one key, and the check is the
//! per-key check it always was. The first component (by its first key, in byte order) with a
//! violation is reported, under its first key.
//!
//! Keep components small: the search's state is a vector of the component's values, and its
//! memo table grows with the product of the keys' histories. The simulator's clients pair keys
//! (k0 with k1, k2 with k3, ...) and never transact across pairs, so a component has at most
//! two keys; a component of more than [`MAX_KEYS_PER_COMPONENT`] keys is not checked
//! ([`Verdict::Unknown`]), and the simulator counts `Unknown` as a failure.
//!
//! # Guards: modelled exactly, without revisions
//!
//! A guarded transaction (Redis `WATCH` + `EXEC`, the store's `WatchGuard { since, keys }`)
//! aborts if any guarded key changed at a log index after `since`, the revision its client read
//! with `Query::GetRevision`. The checker sees no log indices, and needs none: a linearizable
//! read that answers at revision `since` takes effect, in the log order that linearizes a
//! correct run, between entry `since` and entry `since + 1`. So "a guarded key changed after
//! `since` and before the transaction" is exactly "a write that changed a guarded key is
//! linearized between the guard's read and the transaction". The spec tracks it so:
//!
//! - the read is a [`Call::GuardedGet`] naming a guard id; linearizing it checks the value read
//!   and opens the guard (its keys as a bit mask, `dirty = false`) in the search state;
//! - linearizing any step that changes a key marks every open guard over that key dirty.
//!   "Changes" is what the store's revision bookkeeping counts: every put (even of the same
//!   value), a delete of a present key, a swap that leaves a value or removes one — not a
//!   failed swap, nor a delete of an absent key;
//! - linearizing the [`Call::Transaction`] consumes its guard: a dirty guard means the
//!   transaction must have answered "aborted" (and it changes nothing), a clean one means it
//!   must have committed, its steps applied in order as one step. A pending transaction takes
//!   whichever branch the guard dictates, or never takes effect.
//!
//! This is the store's exact semantics, not an approximation, with one documented difference:
//! the store answers "changed" for a key deleted before its bounded tombstone list overflowed
//! (`tombstone_floor`), which the checker would report as a wrong abort; the simulator's few
//! keys never overflow it. A guard whose read is part of no transaction in the history is a
//! plain read. The read must be of a guarded key (so that it lies in the transaction's
//! component) and must have returned; otherwise the history is malformed ([`Verdict::Unknown`]).
//!
//! Guards in the state cost memoization little: a guard is open only between its read and
//! its transaction, and the state is canonical (values, then open guards in start order).
//!
//! Where it is tested: the unit tests below (a transfer whose two writes are seen separately
//! is a violation though each key alone is linearizable; guards that must abort, must commit,
//! or may do either), and `sim::workload`'s tests, where the simulator's planted bug
//! `planted_split_transactions` (a transaction sent as separate log entries) must be caught.
//!
//! # Operations that never returned
//!
//! An operation with [`Outcome::Unknown`] (timed out, client gave up) may or may not have taken
//! effect. It is modelled as pending forever: its response is placed after every other event,
//! so it is concurrent with everything invoked after it and may be linearized anywhere after its
//! invocation — including after all other operations, which is the same as never taking effect.
//! Its return value is unconstrained (a pending `Delete` or `Cas` may do either branch). A pending
//! `Get` observes nothing and changes nothing, so it is dropped.
//!
//! Every operation is given its own process id, so a client that gave up on an operation and
//! issued more is no problem; a client's own order is still enforced, through real time.
//!
//! Events at the same instant are ordered calls first, so a return at `t` and an invocation at
//! `t` count as concurrent. That is the permissive choice: it can hide a violation that hinges
//! on an exact tie, but never reports a false one.
//!
//! # Which checker, and why
//!
//! The search is [`todc_utils::WGLChecker`] (Wing & Gong's algorithm with Lowe's memoization of
//! `(linearized set, state)` pairs), driven by a [`todc_utils::Specification`] of one component.
//! Candidates weighed:
//!
//! - **todc-utils 0.1.1** (chosen). No runtime dependencies at all; no clock, threads or I/O
//!   (its file-reading helper for etcd logs is never called); builds for
//!   `wasm32-unknown-unknown`. Memoized WGL copes with a few hundred operations per component.
//!   Its history needs every call to have a response — pending operations get theirs at the
//!   end, as described above. It has no step limit of its own; we meter it by sharing a budget
//!   counter through the operations, see *Limits*.
//! - **stateright 0.31** (`semantics::LinearizabilityTester`). Handles in-flight operations
//!   correctly, but its search is a plain recursive enumeration without memoization (exponential
//!   on concurrent histories, recursion depth = history length), and the crate pulls in about
//!   40 crates (tiny_http, dashmap, parking_lot, rand 0.9, serde_json). rand 0.9 and ahash
//!   bring getrandom 0.3, which refuses to compile for `wasm32-unknown-unknown` without a
//!   `--cfg getrandom_backend` flag for every consumer.
//! - **lincheck 0.2** checks in-process data structures by running them (loom, proptest); it
//!   does not take a recorded history.
//!
//! # Limits
//!
//! Every search is bounded ([`Limits`]): at most `max_ops_per_key` operations per component and
//! at most `max_steps_per_key` applications of the spec per search. Each operation carries a shared
//! budget counter; once it is spent the spec refuses every step, the search unwinds at once,
//! and the component's verdict is [`Verdict::Unknown`]. Memory is bounded by the memo table: at most
//! one entry per step, each about `2 × ops` bytes.
//!
//! Linearizable histories are cheap: a few thousand steps for 400 operations from 6 clients,
//! even with one operation in ten pending. Proving a *violation* is not: the search must try
//! every placement of every pending operation before it gives up, so with more than a handful
//! of pending operations before the bad return it usually runs out of budget and answers
//! [`Verdict::Unknown`] — never [`Verdict::Linearizable`]. Keep give-ups rare, or keys' histories
//! short, where violations must be named.
//!
//! # Naming the culprit
//!
//! After a violation, a binary search over cut points finds the shortest prefix of the component's
//! history (in event order, with operations still running at the cut treated as pending) that
//! cannot be linearized. Prefixes of a linearizable history are linearizable, so the search is
//! sound. The last event of that prefix is a return: [`Verdict::Violation::reason`] names that
//! operation, and [`Verdict::Violation::ops`] lists the operations invoked before it.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::rc::Rc;

use serde::Deserialize;
use serde::Serialize;
use todc_utils::Action;
use todc_utils::History;
use todc_utils::Specification;
use todc_utils::WGLChecker;

/// One client operation, as recorded by the client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operation {
    /// The client that issued it. Used only in reports.
    pub client: u64,
    /// The key it touched. A [`Call::Transaction`] names its keys in its steps and guard; its
    /// `key` is only shown in reports (the simulator puts its first step's key there).
    pub key: Vec<u8>,
    /// What was asked.
    pub call: Call,
    /// When it was invoked, in nanoseconds of virtual or real time.
    pub invoked_at: u64,
    /// What came back, and when.
    pub outcome: Outcome,
}

/// What a client asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Call {
    /// Read the value.
    Get,
    /// Set the value.
    Put(Vec<u8>),
    /// Remove the value.
    Delete,
    /// Set the value to `new` (`None`: remove it) if it is `expected` (`None`: absent).
    Cas {
        /// The value the key must hold for the swap (`None`: absent).
        expected: Option<Vec<u8>>,
        /// The value to store (`None`: remove the key).
        new: Option<Vec<u8>>,
    },
    /// Read the value (returns [`Ret::Get`]) and start guard `guard`: the
    /// [`Call::Transaction`] whose [`TxGuard::id`] is `guard` aborts exactly when one of its
    /// guarded keys was changed after this read (a `GET` with revision, then `WATCH`).
    GuardedGet {
        /// The guard this read starts; unique in the history.
        guard: u64,
    },
    /// Steps on several keys, applied as one atomic step in order (a get sees the earlier
    /// steps' writes), unless `guard` aborts it. Returns [`Ret::Transaction`].
    Transaction {
        /// The optimistic lock, started by a [`Call::GuardedGet`].
        guard: Option<TxGuard>,
        /// Each step's key and call: [`Call::Get`], [`Call::Put`], [`Call::Delete`] or
        /// [`Call::Cas`].
        steps: Vec<(Vec<u8>, Call)>,
    },
}

/// The guard of a [`Call::Transaction`]: abort if any of `keys` changed after the
/// [`Call::GuardedGet`] that started guard `id` (whose key is one of `keys`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxGuard {
    /// The guard, as named by its [`Call::GuardedGet`].
    pub id: u64,
    /// The guarded keys.
    pub keys: Vec<Vec<u8>>,
}

/// How an operation ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// It returned `ret` at time `at` (same clock as [`Operation::invoked_at`]).
    Returned {
        /// When it returned.
        at: u64,
        /// What it returned.
        ret: Ret,
    },
    /// It never returned (timed out, or the client gave up): it may or may not have taken effect.
    Unknown,
}

/// What an operation returned. The variant must match the [`Call`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Ret {
    /// The value read (`None`: absent).
    Get(Option<Vec<u8>>),
    /// The put took effect.
    Put,
    /// The delete took effect; `existed` tells whether there was a value to delete.
    Delete {
        /// Whether the key held a value.
        existed: bool,
    },
    /// The compare-and-swap took effect; `swapped` tells whether the comparison held.
    Cas {
        /// Whether the value matched `expected` and was replaced.
        swapped: bool,
    },
    /// The transaction's step results in order, or `None` if its guard aborted it.
    Transaction(Option<Vec<Ret>>),
}

/// The result of [`check`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verdict {
    /// Every component's history is linearizable.
    Linearizable,
    /// The history of the component whose first key (in byte order) is `key` is not
    /// linearizable.
    Violation {
        /// The first key of the component.
        key: Vec<u8>,
        /// Indices (into the checked history) of the operations of the component invoked
        /// before the return that made the history non-linearizable; ascending.
        ops: Vec<usize>,
        /// Which operation's return cannot be explained, in words.
        reason: String,
    },
    /// No violation was found, but the component whose first key is `key` could not be
    /// decided: a [`Limits`] bound was hit, or its history is malformed.
    Unknown {
        /// The first key of the component.
        key: Vec<u8>,
        /// Why it was not decided.
        reason: String,
    },
}

/// Bounds on the work [`check_with_limits`] does per component (a single key, unless
/// transactions connect keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// A component with more operations than this is not checked ([`Verdict::Unknown`]).
    pub max_ops_per_key: usize,
    /// The most spec steps one search may take before giving up with [`Verdict::Unknown`].
    pub max_steps_per_key: u64,
}

impl Limits {
    /// The limits [`check`] uses: enough for a few hundred operations per component with a
    /// handful of clients, in well under a second and a few hundred MiB at worst.
    pub const DEFAULT: Limits = Limits {
        max_ops_per_key: 4_096,
        max_steps_per_key: 200_000,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// Most keys in one component: guards name their keys in a 64-bit mask.
pub const MAX_KEYS_PER_COMPONENT: usize = 64;

/// Checks `history` for linearizability, component by component, with [`Limits::DEFAULT`].
///
/// A [`Verdict::Violation`] in any component wins over a [`Verdict::Unknown`] in another.
pub fn check(history: &[Operation]) -> Verdict {
    check_with_limits(history, &Limits::DEFAULT)
}

/// Checks `history` for linearizability, component by component, within `limits`.
///
/// A [`Verdict::Violation`] in any component wins over a [`Verdict::Unknown`] in another.
pub fn check_with_limits(history: &[Operation], limits: &Limits) -> Verdict {
    let mut first_unknown = None;
    for (keys, ops) in components(history) {
        match check_component(history, &keys, &ops, limits) {
            Verdict::Linearizable => {}
            violation @ Verdict::Violation { .. } => return violation,
            unknown @ Verdict::Unknown { .. } => {
                first_unknown.get_or_insert(unknown);
            }
        }
    }
    first_unknown.unwrap_or(Verdict::Linearizable)
}

/// The keys an operation touches.
fn keys_of(op: &Operation) -> Vec<&[u8]> {
    match &op.call {
        Call::Transaction { guard, steps } => {
            let steps = steps.iter().map(|(key, _)| key.as_slice());
            let guarded = guard.iter().flat_map(|g| g.keys.iter().map(Vec::as_slice));
            steps.chain(guarded).collect()
        }
        _ => vec![op.key.as_slice()],
    }
}

/// Splits the history into components: keys connected by transactions (union-find), each
/// with its keys in byte order and its operations in history order; components in the order
/// of their first key.
fn components(history: &[Operation]) -> Vec<(Vec<&[u8]>, Vec<usize>)> {
    let mut index: BTreeMap<&[u8], usize> = BTreeMap::new();
    for op in history {
        for key in keys_of(op) {
            let next = index.len();
            index.entry(key).or_insert(next);
        }
    }
    let mut parent: Vec<usize> = (0..index.len()).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    for op in history {
        let keys = keys_of(op);
        let first = index[keys[0]];
        for key in &keys[1..] {
            let (a, b) = (root(&mut parent, first), root(&mut parent, index[key]));
            parent[a] = b;
        }
    }
    let mut by_root: BTreeMap<usize, (Vec<&[u8]>, Vec<usize>)> = BTreeMap::new();
    for (&key, &i) in &index {
        by_root.entry(root(&mut parent, i)).or_default().0.push(key);
    }
    for (pos, op) in history.iter().enumerate() {
        let r = root(&mut parent, index[keys_of(op)[0]]);
        by_root.get_mut(&r).expect("every key has a component").1.push(pos);
    }
    let mut components: Vec<_> = by_root.into_values().collect();
    components.sort_by(|a, b| a.0[0].cmp(b.0[0]));
    components
}

/// Checks the operations `ops` (indices into `history`) of the component of `keys`.
fn check_component(history: &[Operation], keys: &[&[u8]], ops: &[usize], limits: &Limits) -> Verdict {
    let key = keys[0];
    let unknown = |reason: String| Verdict::Unknown {
        key: key.to_vec(),
        reason,
    };
    if ops.len() > limits.max_ops_per_key {
        return unknown(format!(
            "{} operations on {}, more than the limit of {}",
            ops.len(),
            show_keys(keys),
            limits.max_ops_per_key
        ));
    }
    if keys.len() > MAX_KEYS_PER_COMPONENT {
        return unknown(format!(
            "transactions connect {} keys, more than the limit of {MAX_KEYS_PER_COMPONENT}",
            keys.len()
        ));
    }
    for &index in ops {
        if let Err(problem) = validate(&history[index]) {
            return unknown(format!("malformed history: op #{index}: {problem}"));
        }
    }
    let prepared = match ComponentHistory::new(history, keys, ops) {
        Ok(prepared) => prepared,
        Err(problem) => return unknown(format!("malformed history: {problem}")),
    };
    let full = prepared.events.len();
    match prepared.search(full, limits.max_steps_per_key) {
        Search::Linearizable => Verdict::Linearizable,
        Search::Exhausted => unknown(format!(
            "search gave up after {} steps over {} operations",
            limits.max_steps_per_key,
            ops.len()
        )),
        Search::NotLinearizable => prepared.violation(keys, limits.max_steps_per_key),
    }
}

/// Whether `ret` is the kind of return `call` gives (a transaction's steps included).
fn fits(call: &Call, ret: &Ret) -> bool {
    match (call, ret) {
        (Call::Get | Call::GuardedGet { .. }, Ret::Get(_))
        | (Call::Put(_), Ret::Put)
        | (Call::Delete, Ret::Delete { .. })
        | (Call::Cas { .. }, Ret::Cas { .. }) => true,
        (Call::Transaction { guard, .. }, Ret::Transaction(None)) => guard.is_some(),
        (Call::Transaction { steps, .. }, Ret::Transaction(Some(rets))) => {
            steps.len() == rets.len() && steps.iter().zip(rets).all(|((_, call), ret)| fits(call, ret))
        }
        _ => false,
    }
}

/// Rejects an operation whose call is malformed or whose return does not fit its call or its
/// invocation time.
fn validate(op: &Operation) -> Result<(), String> {
    if let Call::Transaction { steps, .. } = &op.call
        && let Some((_, step)) = steps
            .iter()
            .find(|(_, call)| matches!(call, Call::Transaction { .. } | Call::GuardedGet { .. }))
    {
        return Err(format!("a transaction step cannot be {step:?}"));
    }
    let Outcome::Returned { at, ret } = &op.outcome else {
        return Ok(());
    };
    if *at < op.invoked_at {
        return Err(format!("returned at {at}, before it was invoked at {}", op.invoked_at));
    }
    if !fits(&op.call, ret) {
        return Err(format!("{:?} cannot return {:?}", op.call, ret));
    }
    Ok(())
}

/// The outcome of one bounded search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Search {
    Linearizable,
    NotLinearizable,
    Exhausted,
}

/// A value, interned to a small number per component so states are cheap to hash and copy.
type ValueId = u32;

/// The state of one key: its value, if any.
type Value = Option<ValueId>;

/// One single-key step as the spec sees it: values interned, and a return value that is
/// `None` where the operation is pending and so unconstrained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Get(Option<Value>),
    Put(ValueId),
    Delete {
        existed: Option<bool>,
    },
    Cas {
        expected: Value,
        new: Value,
        swapped: Option<bool>,
    },
}

/// One operation of a component, as the spec sees it. Keys are positions in the component's
/// key list.
#[derive(Debug, Clone)]
enum Kind {
    /// The call entry of an operation; the checker applies only response entries.
    Invoke,
    /// A single-key operation.
    One { key: usize, step: Step },
    /// A read that starts guard `guard` over the keys in the mask `keys`.
    Open {
        key: usize,
        read: Value,
        guard: u32,
        keys: u64,
    },
    /// A transaction: `aborted` is `None` while pending.
    Tx {
        guard: Option<u32>,
        aborted: Option<bool>,
        steps: Rc<[(usize, Step)]>,
    },
}

/// A guard started and not yet used: its keys (a mask) and whether one of them changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct OpenGuard {
    guard: u32,
    keys: u64,
    dirty: bool,
}

/// The state of a component: each key's value, and the open guards in start order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct State {
    values: Vec<Value>,
    open: Vec<OpenGuard>,
}

impl State {
    /// Applies one step to `key`; false (state partly changed: discard it) if its return
    /// does not fit. A step that changes the key (what the store's revision bookkeeping
    /// counts: any put, a delete of a present key, a swap that leaves or removes a value)
    /// marks the open guards over the key.
    fn step(&mut self, key: usize, step: Step) -> bool {
        let value = self.values[key];
        let (valid, changed, new) = match step {
            Step::Get(read) => (read.is_none_or(|r| r == value), false, value),
            Step::Put(x) => (true, true, Some(x)),
            Step::Delete { existed } => (existed.is_none_or(|e| e == value.is_some()), value.is_some(), None),
            Step::Cas { expected, new, swapped } => {
                let matches = value == expected;
                let valid = swapped.is_none_or(|s| s == matches);
                let changed = matches && (new.is_some() || value.is_some());
                (valid, changed, if matches { new } else { value })
            }
        };
        if !valid {
            return false;
        }
        self.values[key] = new;
        if changed {
            for guard in &mut self.open {
                if guard.keys & (1 << key) != 0 {
                    guard.dirty = true;
                }
            }
        }
        true
    }
}

/// The number of spec steps a search may still take, shared by all its operations.
#[derive(Debug)]
struct Budget {
    remaining: Cell<u64>,
    exhausted: Cell<bool>,
}

impl Budget {
    /// Takes one step from the budget; `false` once it is spent.
    fn take(&self) -> bool {
        match self.remaining.get() {
            0 => {
                self.exhausted.set(true);
                false
            }
            n => {
                self.remaining.set(n - 1);
                true
            }
        }
    }
}

/// A history entry for the checker: the operation, the component's key count and the
/// search's budget.
#[derive(Debug, Clone)]
struct Entry {
    kind: Kind,
    keys: usize,
    budget: Rc<Budget>,
}

/// The sequential spec of a component of keys.
struct ComponentSpec;

impl Specification for ComponentSpec {
    type State = Option<State>;
    type Operation = Entry;

    /// `None` stands for every key absent and no guard open, so the spec needs no key count.
    fn init() -> Option<State> {
        None
    }

    fn apply(entry: &Entry, state: &Option<State>) -> (bool, Option<State>) {
        if !entry.budget.take() {
            return (false, state.clone());
        }
        let mut next = state.clone().unwrap_or_else(|| State {
            values: vec![None; entry.keys],
            open: Vec::new(),
        });
        let valid = match &entry.kind {
            Kind::Invoke => false,
            Kind::One { key, step } => next.step(*key, *step),
            Kind::Open { key, read, guard, keys } => {
                let valid = next.values[*key] == *read;
                next.open.push(OpenGuard {
                    guard: *guard,
                    keys: *keys,
                    dirty: false,
                });
                valid
            }
            Kind::Tx { guard, aborted, steps } => 'tx: {
                if let Some(guard) = guard {
                    let Some(pos) = next.open.iter().position(|g| g.guard == *guard) else {
                        break 'tx false;
                    };
                    if next.open.remove(pos).dirty {
                        // Aborted: no effect but using up the guard.
                        break 'tx aborted.is_none_or(|a| a);
                    }
                }
                *aborted != Some(true) && steps.iter().all(|&(key, step)| next.step(key, step))
            }
        };
        if valid {
            (true, Some(next))
        } else {
            (false, state.clone())
        }
    }
}

/// A call or a return of one operation of the component.
#[derive(Debug, Clone, Copy)]
struct Event {
    /// The operation's position in [`ComponentHistory::ops`].
    op: usize,
    is_return: bool,
}

/// One component's operations, prepared for searching any prefix.
struct ComponentHistory<'h> {
    history: &'h [Operation],
    /// Index into `history` of each operation of the component.
    ops: &'h [usize],
    /// Number of keys in the component.
    keys: usize,
    /// Calls and returns in time order; operations that never returned have only a call.
    events: Vec<Event>,
    /// Position in `events` of each operation's return, if it returned.
    return_pos: Vec<Option<usize>>,
    /// Each operation as the spec sees it if it returned.
    returned: Vec<Kind>,
    /// Each operation as the spec sees it while pending; `None` for a pending read.
    pending: Vec<Option<Kind>>,
}

impl<'h> ComponentHistory<'h> {
    fn new(history: &'h [Operation], keys: &[&[u8]], ops: &'h [usize]) -> Result<Self, String> {
        let position: BTreeMap<&[u8], usize> = keys.iter().enumerate().map(|(i, &k)| (k, i)).collect();
        let mut values: BTreeMap<&[u8], ValueId> = BTreeMap::new();
        let mut intern = |value: &'h [u8]| -> ValueId {
            let next = ValueId::try_from(values.len()).expect("fewer than 2^32 distinct values per component");
            *values.entry(value).or_insert(next)
        };
        let value = |v: &'h Option<Vec<u8>>, intern: &mut dyn FnMut(&'h [u8]) -> ValueId| v.as_deref().map(intern);
        // Guards: which read starts each, and which transaction uses it (with its key mask).
        let mut started: BTreeMap<u64, u32> = BTreeMap::new();
        let mut used: BTreeMap<u64, u64> = BTreeMap::new();
        for (local, &index) in ops.iter().enumerate() {
            let op = &history[index];
            match &op.call {
                Call::GuardedGet { guard } => {
                    let again = started.insert(*guard, local as u32).is_some();
                    if again {
                        return Err(format!("op #{index}: guard {guard} started twice"));
                    }
                }
                Call::Transaction { guard: Some(g), .. } => {
                    let mask = g.keys.iter().fold(0u64, |mask, k| mask | 1 << position[k.as_slice()]);
                    if used.insert(g.id, mask).is_some() {
                        return Err(format!("op #{index}: guard {} used twice", g.id));
                    }
                }
                _ => {}
            }
        }
        for (&guard, &mask) in &used {
            let read = started.get(&guard).map(|&local| &history[ops[local as usize]]);
            match read {
                Some(read)
                    if matches!(read.outcome, Outcome::Returned { .. })
                        && position.get(read.key.as_slice()).is_some_and(|&k| mask & 1 << k != 0) => {}
                _ => {
                    return Err(format!(
                        "guard {guard} was not started by a returned read of a guarded key"
                    ));
                }
            }
        }
        let mut returned = Vec::with_capacity(ops.len());
        let mut pending = Vec::with_capacity(ops.len());
        let mut timed = Vec::with_capacity(2 * ops.len());
        for (local, &index) in ops.iter().enumerate() {
            let op = &history[index];
            let ret = match &op.outcome {
                Outcome::Returned { at, ret } => {
                    timed.push(((*at, 1u8, local), true));
                    Some(ret)
                }
                Outcome::Unknown => None,
            };
            timed.push(((op.invoked_at, 0u8, local), false));
            let (done, open) = match &op.call {
                Call::Transaction { guard, steps } => {
                    let rets = match ret {
                        Some(Ret::Transaction(rets)) => Some(rets.as_deref()),
                        _ => None,
                    };
                    let mut prepare = |rets: Option<&'h [Ret]>| -> Rc<[(usize, Step)]> {
                        steps
                            .iter()
                            .enumerate()
                            .map(|(i, (key, call))| {
                                let step = single_step(call, rets.map(|r| &r[i]), &mut intern, value);
                                (position[key.as_slice()], step)
                            })
                            .collect()
                    };
                    let guard = guard.as_ref().map(|g| started[&g.id]);
                    let open = Kind::Tx {
                        guard,
                        aborted: None,
                        steps: prepare(None),
                    };
                    let done = match rets {
                        Some(Some(rets)) => Kind::Tx {
                            guard,
                            aborted: Some(false),
                            steps: prepare(Some(rets)),
                        },
                        _ => Kind::Tx {
                            guard,
                            aborted: Some(true),
                            steps: Rc::from([]),
                        },
                    };
                    (done, Some(open))
                }
                Call::GuardedGet { guard } if used.contains_key(guard) => {
                    let read = match ret {
                        Some(Ret::Get(read)) => value(read, &mut intern),
                        _ => None,
                    };
                    let done = Kind::Open {
                        key: position[op.key.as_slice()],
                        read,
                        guard: started[guard],
                        keys: used[guard],
                    };
                    (done, None)
                }
                call => {
                    let key = position[op.key.as_slice()];
                    let done = single_step(call, ret, &mut intern, value);
                    let open = single_step(call, None, &mut intern, value);
                    let open = (!matches!(open, Step::Get(_))).then_some(Kind::One { key, step: open });
                    (Kind::One { key, step: done }, open)
                }
            };
            returned.push(done);
            pending.push(open);
        }
        // Calls before returns at the same instant: touching intervals count as concurrent.
        timed.sort_unstable_by_key(|&(order, _)| order);
        let mut return_pos = vec![None; ops.len()];
        let events = timed
            .into_iter()
            .enumerate()
            .map(|(pos, ((_, _, op), is_return))| {
                if is_return {
                    return_pos[op] = Some(pos);
                }
                Event { op, is_return }
            })
            .collect();
        Ok(ComponentHistory {
            history,
            ops,
            keys: keys.len(),
            events,
            return_pos,
            returned,
            pending,
        })
    }

    /// Searches the history cut after its first `cut` events: operations invoked before the cut
    /// are included, those that had not returned by then are pending.
    fn search(&self, cut: usize, max_steps: u64) -> Search {
        let budget = Rc::new(Budget {
            remaining: Cell::new(max_steps),
            exhausted: Cell::new(false),
        });
        let entry = |kind: &Kind| Entry {
            kind: kind.clone(),
            keys: self.keys,
            budget: Rc::clone(&budget),
        };
        let mut actions = Vec::with_capacity(2 * cut);
        let mut pending = Vec::new();
        for event in &self.events[..cut] {
            let op = event.op;
            if event.is_return {
                actions.push((op, Action::Response(entry(&self.returned[op]))));
            } else if self.return_pos[op].is_some_and(|pos| pos < cut) {
                actions.push((op, Action::Call(entry(&Kind::Invoke))));
            } else if let Some(kind) = &self.pending[op] {
                actions.push((op, Action::Call(entry(&Kind::Invoke))));
                pending.push((op, kind));
            }
        }
        // Pending operations return after everything else: they may take effect anywhere after
        // their invocation, or (last of all) not at all.
        for (op, kind) in pending {
            actions.push((op, Action::Response(entry(kind))));
        }
        if actions.is_empty() {
            return Search::Linearizable;
        }
        if WGLChecker::<ComponentSpec>::is_linearizable(History::from_actions(actions)) {
            Search::Linearizable
        } else if budget.exhausted.get() {
            Search::Exhausted
        } else {
            Search::NotLinearizable
        }
    }

    /// Names the shortest non-linearizable prefix of a history known not to be linearizable.
    fn violation(&self, keys: &[&[u8]], max_steps: u64) -> Verdict {
        // Invariant: the prefix of `bad` events is not linearizable, that of `good` events is.
        let (mut good, mut bad) = (0, self.events.len());
        let mut exact = true;
        while bad - good > 1 {
            let mid = good + (bad - good) / 2;
            match self.search(mid, max_steps) {
                Search::Linearizable => good = mid,
                Search::NotLinearizable => bad = mid,
                Search::Exhausted => {
                    exact = false;
                    break;
                }
            }
        }
        let mut ops: Vec<usize> = self.events[..bad]
            .iter()
            .filter(|event| {
                !event.is_return
                    && (self.return_pos[event.op].is_some_and(|pos| pos < bad) || self.pending[event.op].is_some())
            })
            .map(|event| self.ops[event.op])
            .collect();
        ops.sort_unstable();
        let last = self.events[bad - 1];
        let mut reason = String::new();
        if last.is_return {
            let index = self.ops[last.op];
            let _ = write!(
                reason,
                "op #{index} ({}) cannot be linearized with the {} operations of {} invoked \
                 before it returned",
                describe(&self.history[index]),
                ops.len(),
                show_keys(keys),
            );
        } else {
            let _ = write!(
                reason,
                "the {} operations of {} have no linearization",
                ops.len(),
                show_keys(keys)
            );
        }
        if !exact {
            reason.push_str(" (search limit hit while shortening; the true culprit may be earlier)");
        }
        Verdict::Violation {
            key: keys[0].to_vec(),
            ops,
            reason,
        }
    }
}

/// A single-key call as the spec sees it, with its return `ret` (`None`: pending).
fn single_step<'h>(
    call: &'h Call,
    ret: Option<&'h Ret>,
    intern: &mut dyn FnMut(&'h [u8]) -> ValueId,
    value: impl Fn(&'h Option<Vec<u8>>, &mut dyn FnMut(&'h [u8]) -> ValueId) -> Value,
) -> Step {
    match call {
        Call::Get | Call::GuardedGet { .. } => Step::Get(match ret {
            Some(Ret::Get(read)) => Some(value(read, intern)),
            _ => None,
        }),
        Call::Put(v) => Step::Put(intern(v)),
        Call::Delete => Step::Delete {
            existed: match ret {
                Some(Ret::Delete { existed }) => Some(*existed),
                _ => None,
            },
        },
        Call::Cas { expected, new } => Step::Cas {
            expected: value(expected, intern),
            new: value(new, intern),
            swapped: match ret {
                Some(Ret::Cas { swapped }) => Some(*swapped),
                _ => None,
            },
        },
        Call::Transaction { .. } => unreachable!("validated: a transaction step is a single-key call"),
    }
}

/// Keys in words: `key "a"` or `keys "a", "b"`.
fn show_keys(keys: &[&[u8]]) -> String {
    let shown: Vec<String> = keys.iter().map(|k| show(k)).collect();
    match shown.as_slice() {
        [one] => format!("key {one}"),
        many => format!("keys {}", many.join(", ")),
    }
}

/// Bytes as a quoted string, non-printable bytes escaped.
fn show(bytes: &[u8]) -> String {
    format!("\"{}\"", bytes.escape_ascii())
}

/// A value or its absence.
fn show_value(value: Option<&[u8]>) -> String {
    value.map_or_else(|| "absent".to_string(), show)
}

/// One operation in words, e.g. `client 3: get -> "x", invoked at 10, returned at 20`.
fn describe(op: &Operation) -> String {
    let (ret, end) = match &op.outcome {
        Outcome::Unknown => (String::new(), "never returned".to_string()),
        Outcome::Returned { at, ret } => (describe_ret(ret), format!("returned at {at}")),
    };
    let on = match &op.call {
        Call::Transaction { .. } => String::new(),
        _ => format!(" on {}", show(&op.key)),
    };
    let call = describe_call(&op.call);
    format!(
        "client {}: {call}{ret}{on}, invoked at {}, {end}",
        op.client, op.invoked_at
    )
}

/// A call in words, without its key (a transaction names its steps' keys).
fn describe_call(call: &Call) -> String {
    match call {
        Call::Get => "get".to_string(),
        Call::GuardedGet { guard } => format!("get starting guard {guard}"),
        Call::Put(value) => format!("put {}", show(value)),
        Call::Delete => "delete".to_string(),
        Call::Cas { expected, new } => format!(
            "cas {} -> {}",
            show_value(expected.as_deref()),
            show_value(new.as_deref())
        ),
        Call::Transaction { guard, steps } => {
            let steps: Vec<String> = steps
                .iter()
                .map(|(key, call)| format!("{} on {}", describe_call(call), show(key)))
                .collect();
            match guard {
                None => format!("transaction [{}]", steps.join("; ")),
                Some(g) => format!("transaction with guard {} [{}]", g.id, steps.join("; ")),
            }
        }
    }
}

/// A return in words, e.g. ` -> swapped: true`.
fn describe_ret(ret: &Ret) -> String {
    match ret {
        Ret::Get(value) => format!(" -> {}", show_value(value.as_deref())),
        Ret::Put => String::new(),
        Ret::Delete { existed } => format!(" -> existed: {existed}"),
        Ret::Cas { swapped } => format!(" -> swapped: {swapped}"),
        Ret::Transaction(None) => " -> aborted".to_string(),
        Ret::Transaction(Some(rets)) => {
            let rets: Vec<String> = rets
                .iter()
                .map(|r| describe_ret(r).trim_start_matches(" -> ").to_string())
                .collect();
            format!(" -> [{}]", rets.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(s: &str) -> Vec<u8> {
        s.as_bytes().to_vec()
    }

    fn op(client: u64, key: &str, call: Call, invoked_at: u64, outcome: Outcome) -> Operation {
        Operation {
            client,
            key: bytes(key),
            call,
            invoked_at,
            outcome,
        }
    }

    fn returned(at: u64, ret: Ret) -> Outcome {
        Outcome::Returned { at, ret }
    }

    fn put(client: u64, key: &str, value: &str, span: (u64, u64)) -> Operation {
        op(client, key, Call::Put(bytes(value)), span.0, returned(span.1, Ret::Put))
    }

    fn get(client: u64, key: &str, read: Option<&str>, span: (u64, u64)) -> Operation {
        let ret = Ret::Get(read.map(bytes));
        op(client, key, Call::Get, span.0, returned(span.1, ret))
    }

    fn delete(client: u64, key: &str, existed: bool, span: (u64, u64)) -> Operation {
        let ret = Ret::Delete { existed };
        op(client, key, Call::Delete, span.0, returned(span.1, ret))
    }

    fn cas(
        client: u64,
        key: &str,
        (expected, new): (Option<&str>, Option<&str>),
        swapped: bool,
        span: (u64, u64),
    ) -> Operation {
        let call = Call::Cas {
            expected: expected.map(bytes),
            new: new.map(bytes),
        };
        op(client, key, call, span.0, returned(span.1, Ret::Cas { swapped }))
    }

    fn put_unknown(client: u64, key: &str, value: &str, invoked_at: u64) -> Operation {
        op(client, key, Call::Put(bytes(value)), invoked_at, Outcome::Unknown)
    }

    /// Asserts a violation on `key` naming exactly `ops`; returns the reason.
    #[track_caller]
    fn assert_violation(verdict: Verdict, key: &str, ops: &[usize]) -> String {
        match verdict {
            Verdict::Violation { key: k, ops: o, reason } => {
                assert_eq!(k, bytes(key), "wrong key; reason: {reason}");
                assert_eq!(o, ops, "wrong ops; reason: {reason}");
                reason
            }
            other => panic!("expected a violation on {key:?}, got {other:?}"),
        }
    }

    #[test]
    fn concurrent_history_passes() {
        // c0 |---- put 1 ----|
        // c1    |------ put 2 -------|
        // c2      |- get 2 -|
        // c3                  |- get 1 -|        (put 1 may land after put 2)
        // c2                                |- get 1 -|
        let history = [
            put(0, "a", "1", (0, 50)),
            put(1, "a", "2", (10, 70)),
            get(2, "a", Some("2"), (20, 30)),
            get(3, "a", Some("1"), (60, 65)),
            get(2, "a", Some("1"), (80, 90)),
        ];
        assert_eq!(check(&history), Verdict::Linearizable);
    }

    #[test]
    fn every_call_kind_in_a_correct_sequence_passes() {
        let history = [
            get(0, "a", None, (0, 1)),
            delete(0, "a", false, (2, 3)),
            cas(0, "a", (Some("x"), Some("y")), false, (4, 5)),
            cas(1, "a", (None, Some("x")), true, (6, 7)),
            cas(1, "a", (Some("x"), Some("y")), true, (8, 9)),
            get(0, "a", Some("y"), (10, 11)),
            cas(0, "a", (Some("y"), None), true, (12, 13)),
            get(1, "a", None, (14, 15)),
            put(1, "a", "z", (16, 17)),
            delete(0, "a", true, (18, 19)),
            get(0, "a", None, (20, 21)),
        ];
        assert_eq!(check(&history), Verdict::Linearizable);
    }

    #[test]
    fn stale_read_after_completed_write_is_caught() {
        let history = [
            put(0, "a", "1", (0, 10)),
            put(0, "a", "2", (20, 30)),
            get(1, "a", Some("1"), (40, 50)),
        ];
        let reason = assert_violation(check(&history), "a", &[0, 1, 2]);
        assert!(reason.starts_with("op #2 (client 1: get -> \"1\""), "{reason}");
    }

    #[test]
    fn read_of_a_value_never_written_is_caught() {
        let history = [put(0, "a", "1", (0, 10)), get(1, "a", Some("ghost"), (5, 15))];
        assert_violation(check(&history), "a", &[0, 1]);
    }

    #[test]
    fn two_successful_cas_from_the_same_expected_value_are_caught() {
        let history = [
            put(0, "a", "0", (0, 10)),
            cas(1, "a", (Some("0"), Some("1")), true, (20, 40)),
            cas(2, "a", (Some("0"), Some("2")), true, (25, 45)),
        ];
        assert_violation(check(&history), "a", &[0, 1, 2]);

        // Sanity: with one of them failing, the same history is fine.
        let mut fixed = history.clone();
        fixed[2] = cas(2, "a", (Some("0"), Some("2")), false, (25, 45));
        assert_eq!(check(&fixed), Verdict::Linearizable);
    }

    #[test]
    fn lost_delete_is_caught() {
        let history = [
            put(0, "a", "1", (0, 10)),
            delete(1, "a", true, (20, 30)),
            get(0, "a", Some("1"), (40, 50)),
        ];
        assert_violation(check(&history), "a", &[0, 1, 2]);

        // A delete that claims nothing existed, after a completed put, is also caught.
        let history = [put(0, "a", "1", (0, 10)), delete(1, "a", false, (20, 30))];
        assert_violation(check(&history), "a", &[0, 1]);
    }

    #[test]
    fn unknown_op_that_took_effect_passes() {
        let history = [
            put(0, "a", "1", (0, 10)),
            put_unknown(1, "a", "2", 20),
            get(2, "a", Some("2"), (100, 110)),
        ];
        assert_eq!(check(&history), Verdict::Linearizable);
    }

    #[test]
    fn unknown_op_that_did_not_take_effect_passes() {
        let history = [
            put(0, "a", "1", (0, 10)),
            put_unknown(1, "a", "2", 20),
            get(2, "a", Some("1"), (100, 110)),
        ];
        assert_eq!(check(&history), Verdict::Linearizable);

        // It may also take effect late: after a read that missed it.
        let mut late = history.to_vec();
        late.push(get(2, "a", Some("2"), (200, 210)));
        assert_eq!(check(&late), Verdict::Linearizable);
    }

    #[test]
    fn unknown_op_takes_effect_at_most_once_and_not_before_its_invocation() {
        // Seen, then unseen: a put cannot be undone.
        let history = [
            put(0, "a", "1", (0, 10)),
            put_unknown(1, "a", "2", 20),
            get(2, "a", Some("2"), (100, 110)),
            get(2, "a", Some("1"), (200, 210)),
        ];
        assert_violation(check(&history), "a", &[0, 1, 2, 3]);

        // Seen before it was invoked.
        let history = [get(0, "a", Some("2"), (0, 10)), put_unknown(1, "a", "2", 20)];
        assert_violation(check(&history), "a", &[0]);
    }

    #[test]
    fn unknown_cas_and_delete_may_take_either_branch() {
        let unknown_cas = op(
            1,
            "a",
            Call::Cas {
                expected: Some(bytes("1")),
                new: Some(bytes("2")),
            },
            20,
            Outcome::Unknown,
        );
        for read in [Some("1"), Some("2")] {
            let history = [
                put(0, "a", "1", (0, 10)),
                unknown_cas.clone(),
                get(2, "a", read, (100, 110)),
            ];
            assert_eq!(check(&history), Verdict::Linearizable, "read {read:?}");
        }
        // But not a value it could not have written.
        let history = [
            put(0, "a", "0", (0, 10)),
            unknown_cas,
            get(2, "a", Some("2"), (100, 110)),
        ];
        assert_violation(check(&history), "a", &[0, 1, 2]);

        let unknown_delete = op(1, "a", Call::Delete, 20, Outcome::Unknown);
        for read in [Some("1"), None] {
            let history = [
                put(0, "a", "1", (0, 10)),
                unknown_delete.clone(),
                get(2, "a", read, (100, 110)),
            ];
            assert_eq!(check(&history), Verdict::Linearizable, "read {read:?}");
        }
    }

    #[test]
    fn keys_are_checked_independently() {
        // Linearizable per key, though not if both keys were one register.
        let history = [
            put(0, "a", "1", (0, 10)),
            put(1, "b", "2", (20, 30)),
            get(2, "a", Some("1"), (40, 50)),
            get(2, "b", Some("2"), (60, 70)),
        ];
        assert_eq!(check(&history), Verdict::Linearizable);

        // A violation on "b" is reported on "b", naming only b's operations.
        let history = [
            put(0, "a", "1", (0, 10)),
            put(1, "b", "2", (20, 30)),
            get(2, "a", Some("1"), (40, 50)),
            get(2, "b", Some("1"), (60, 70)),
        ];
        assert_violation(check(&history), "b", &[1, 3]);
    }

    #[test]
    fn violation_wins_over_unknown_on_another_key() {
        let mut history: Vec<Operation> = (0..6).map(|i| put(i, "a", "1", (0, 10))).collect();
        history.push(put(0, "b", "1", (20, 30)));
        history.push(get(0, "b", None, (40, 50)));
        let limits = Limits {
            max_ops_per_key: 5,
            ..Limits::DEFAULT
        };
        assert_violation(check_with_limits(&history, &limits), "b", &[6, 7]);
    }

    #[test]
    fn limits_give_unknown() {
        let history: Vec<Operation> = (0..8)
            .map(|i| put(i, "a", &i.to_string(), (0, 100)))
            .chain([get(9, "a", Some("3"), (200, 210))])
            .collect();
        assert_eq!(check(&history), Verdict::Linearizable);

        let few_steps = Limits {
            max_steps_per_key: 3,
            ..Limits::DEFAULT
        };
        let verdict = check_with_limits(&history, &few_steps);
        assert!(
            matches!(&verdict, Verdict::Unknown { key, reason }
                if key == b"a" && reason.contains("gave up after 3 steps")),
            "{verdict:?}"
        );

        let few_ops = Limits {
            max_ops_per_key: 8,
            ..Limits::DEFAULT
        };
        let verdict = check_with_limits(&history, &few_ops);
        assert!(
            matches!(&verdict, Verdict::Unknown { key, .. } if key == b"a"),
            "{verdict:?}"
        );
    }

    #[test]
    fn malformed_history_gives_unknown() {
        let history = [op(0, "a", Call::Get, 10, returned(5, Ret::Get(None)))];
        let verdict = check(&history);
        assert!(
            matches!(&verdict, Verdict::Unknown { key, reason }
                if key == b"a" && reason.starts_with("malformed history: op #0")),
            "{verdict:?}"
        );

        let history = [op(0, "a", Call::Put(bytes("1")), 0, returned(5, Ret::Get(None)))];
        assert!(matches!(check(&history), Verdict::Unknown { .. }));
    }

    #[test]
    fn touching_intervals_count_as_concurrent() {
        // The read returns at 10, exactly when the put is invoked: either order is allowed.
        let history = [get(0, "a", Some("1"), (0, 10)), put(1, "a", "1", (10, 20))];
        assert_eq!(check(&history), Verdict::Linearizable);
        // One nanosecond apart, the read is too early.
        let history = [get(0, "a", Some("1"), (0, 9)), put(1, "a", "1", (10, 20))];
        assert_violation(check(&history), "a", &[0]);
    }

    #[test]
    fn empty_history_and_lone_unknown_reads_are_linearizable() {
        assert_eq!(check(&[]), Verdict::Linearizable);
        let history = [op(0, "a", Call::Get, 0, Outcome::Unknown)];
        assert_eq!(check(&history), Verdict::Linearizable);
    }

    /// A deterministic linearizable history: `clients` clients, each op taking effect at a tick
    /// between its invocation and return, on a small set of values so ops collide.
    ///
    /// With `give_up_one_in > 0`, a client abandons about one in-flight op in that many, before
    /// or after it took effect; the op's outcome is then [`Outcome::Unknown`].
    fn generated_history(seed: u64, clients: u64, ops: usize, give_up_one_in: u64) -> Vec<Operation> {
        let mut rng = seed;
        let mut next = move |n: u64| {
            rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (rng >> 33) % n
        };
        let value = |n: u64| Some(format!("v{n}"));
        let mut state: Option<String> = None;
        // Per client: index of its in-flight op, and whether it has taken effect.
        let mut in_flight: Vec<Option<(usize, bool)>> = vec![None; clients as usize];
        let mut history: Vec<Operation> = Vec::new();
        let mut started = 0;
        let mut tick = 0;
        while started < ops || in_flight.iter().any(Option::is_some) {
            tick += 1;
            let client = next(clients) as usize;
            match in_flight[client] {
                None if started < ops => {
                    let call = match next(4) {
                        0 => Call::Get,
                        1 => Call::Put(bytes(&value(next(3)).unwrap())),
                        2 => Call::Delete,
                        _ => Call::Cas {
                            expected: value(next(3)).filter(|_| next(4) > 0).map(|v| bytes(&v)),
                            new: value(next(3)).filter(|_| next(4) > 0).map(|v| bytes(&v)),
                        },
                    };
                    in_flight[client] = Some((history.len(), false));
                    history.push(op(client as u64, "k", call, tick, Outcome::Unknown));
                    started += 1;
                }
                None => {}
                Some(_) if give_up_one_in > 0 && next(give_up_one_in) == 0 => {
                    let index = in_flight[client].take().unwrap().0;
                    history[index].outcome = Outcome::Unknown;
                }
                Some((index, false)) => {
                    let as_str = |v: &Option<Vec<u8>>| v.as_ref().map(|v| String::from_utf8(v.clone()).unwrap());
                    let ret = match &history[index].call {
                        Call::Get => Ret::Get(state.as_deref().map(bytes)),
                        Call::Put(v) => {
                            state = as_str(&Some(v.clone()));
                            Ret::Put
                        }
                        Call::Delete => Ret::Delete {
                            existed: state.take().is_some(),
                        },
                        Call::Cas { expected, new } => {
                            let swapped = state == as_str(expected);
                            if swapped {
                                state = as_str(new);
                            }
                            Ret::Cas { swapped }
                        }
                        call => unreachable!("the generator makes no {call:?}"),
                    };
                    // Park the return value; the return time is set when it returns.
                    history[index].outcome = returned(0, ret);
                    in_flight[client] = Some((index, true));
                }
                Some((index, true)) => {
                    if let Outcome::Returned { at, .. } = &mut history[index].outcome {
                        *at = tick;
                    }
                    in_flight[client] = None;
                }
            }
        }
        history
    }

    /// Replaces the return of the first completed `Get` in the last third of `history` with a
    /// value never written; returns its index.
    fn plant_bad_read(history: &mut [Operation]) -> usize {
        let victim = (history.len() * 2 / 3..history.len())
            .find(|&i| history[i].call == Call::Get && matches!(history[i].outcome, Outcome::Returned { .. }))
            .expect("a completed get");
        if let Outcome::Returned { ret, .. } = &mut history[victim].outcome {
            *ret = Ret::Get(Some(bytes("planted")));
        }
        victim
    }

    #[test]
    fn hundreds_of_concurrent_ops_pass_and_a_planted_bad_read_is_caught() {
        for seed in 0..3 {
            // About one op in ten abandoned: the search stays cheap on linearizable histories.
            let history = generated_history(seed, 6, 400, 10);
            assert!(history.iter().any(|op| op.outcome == Outcome::Unknown));
            assert_eq!(check(&history), Verdict::Linearizable, "seed {seed}");

            let mut bad = generated_history(seed, 6, 400, 0);
            assert_eq!(check(&bad), Verdict::Linearizable, "seed {seed}");
            let victim = plant_bad_read(&mut bad);
            let verdict = check(&bad);
            let Verdict::Violation { key, ops, reason } = &verdict else {
                panic!("seed {seed}: expected a violation, got {verdict:?}");
            };
            assert_eq!(key, b"k");
            assert!(reason.starts_with(&format!("op #{victim} ")), "{reason}");
            // The culprit prefix stops at the planted read: later ops are not named.
            assert!(ops.contains(&victim) && ops.len() < bad.len(), "{ops:?}");
        }
    }

    #[test]
    fn a_violation_hidden_among_many_unknown_ops_is_never_called_linearizable() {
        // Proving a violation means trying every placement of every pending op; with dozens
        // of them the search gives up. It must say so, not pass the history.
        let mut bad = generated_history(1, 6, 400, 10);
        plant_bad_read(&mut bad);
        let limits = Limits {
            max_steps_per_key: 20_000,
            ..Limits::DEFAULT
        };
        let verdict = check_with_limits(&bad, &limits);
        assert!(
            matches!(&verdict, Verdict::Unknown { key, reason }
                if key == b"k" && reason.starts_with("search gave up")),
            "{verdict:?}"
        );
    }

    fn tx(
        client: u64,
        guard: Option<(u64, &[&str])>,
        steps: &[(&str, Call)],
        ret: Option<Option<Vec<Ret>>>,
        span: (u64, u64),
    ) -> Operation {
        let call = Call::Transaction {
            guard: guard.map(|(id, keys)| TxGuard {
                id,
                keys: keys.iter().map(|k| bytes(k)).collect(),
            }),
            steps: steps.iter().map(|(k, c)| (bytes(k), c.clone())).collect(),
        };
        let outcome = match ret {
            Some(ret) => returned(span.1, Ret::Transaction(ret)),
            None => Outcome::Unknown,
        };
        op(client, steps[0].0, call, span.0, outcome)
    }

    fn guarded_get(client: u64, key: &str, guard: u64, read: Option<&str>, span: (u64, u64)) -> Operation {
        let ret = Ret::Get(read.map(bytes));
        op(client, key, Call::GuardedGet { guard }, span.0, returned(span.1, ret))
    }

    fn got(read: Option<&str>) -> Ret {
        Ret::Get(read.map(bytes))
    }

    fn transfer(client: u64, (a, b): (&str, &str), read: (Option<&str>, Option<&str>), span: (u64, u64)) -> Operation {
        tx(
            client,
            None,
            &[
                ("a", Call::Get),
                ("b", Call::Get),
                ("a", Call::Put(bytes(a))),
                ("b", Call::Put(bytes(b))),
            ],
            Some(Some(vec![got(read.0), got(read.1), Ret::Put, Ret::Put])),
            span,
        )
    }

    #[test]
    fn transactions_join_keys_into_one_component() {
        let history = [
            transfer(0, ("a1", "b1"), (None, None), (0, 10)),
            tx(
                1,
                None,
                &[("a", Call::Get), ("b", Call::Get)],
                Some(Some(vec![got(Some("a1")), got(Some("b1"))])),
                (5, 20),
            ),
            put(2, "c", "1", (0, 10)),
            transfer(0, ("a2", "b2"), (Some("a1"), Some("b1")), (30, 40)),
            get(1, "b", Some("b2"), (50, 60)),
        ];
        assert_eq!(check(&history), Verdict::Linearizable);
        let components = components(&history);
        let keys: Vec<Vec<&[u8]>> = components.iter().map(|(keys, _)| keys.clone()).collect();
        assert_eq!(keys, vec![vec![&b"a"[..], &b"b"[..]], vec![&b"c"[..]]]);
        assert_eq!(components[0].1, vec![0, 1, 3, 4]);
    }

    #[test]
    fn a_transfer_whose_two_writes_are_seen_separately_is_caught() {
        // The planted bug: the transfer's writes land one at a time, and a read-only
        // transaction between them sees a's new value with b's old one. Each key alone is
        // linearizable; the pair is not.
        let history = [
            transfer(0, ("a1", "b1"), (None, None), (0, 10)),
            transfer(1, ("a2", "b2"), (Some("a1"), Some("b1")), (20, 60)),
            tx(
                2,
                None,
                &[("a", Call::Get), ("b", Call::Get)],
                Some(Some(vec![got(Some("a2")), got(Some("b1"))])),
                (30, 40),
            ),
        ];
        let reason = assert_violation(check(&history), "a", &[0, 1, 2]);
        assert!(reason.contains("keys \"a\", \"b\""), "{reason}");
        // Split per key, as a per-key checker would see it, the same history passes.
        let per_key = [
            put(0, "a", "a1", (0, 10)),
            put(0, "b", "b1", (0, 10)),
            put(1, "a", "a2", (20, 60)),
            put(1, "b", "b2", (20, 60)),
            get(2, "a", Some("a2"), (30, 40)),
            get(2, "b", Some("b1"), (30, 40)),
        ];
        assert_eq!(check(&per_key), Verdict::Linearizable);
        // Seen together after the transfer returned, the writes are fine.
        let mut fixed = history.clone();
        fixed[2] = tx(
            2,
            None,
            &[("a", Call::Get), ("b", Call::Get)],
            Some(Some(vec![got(Some("a2")), got(Some("b2"))])),
            (70, 80),
        );
        assert_eq!(check(&fixed), Verdict::Linearizable);
    }

    #[test]
    fn reads_in_a_transaction_see_its_own_earlier_writes() {
        let steps = [
            ("a", Call::Put(bytes("1"))),
            ("a", Call::Get),
            ("a", Call::Delete),
            ("a", Call::Get),
        ];
        let ok = [tx(
            0,
            None,
            &steps,
            Some(Some(vec![
                Ret::Put,
                got(Some("1")),
                Ret::Delete { existed: true },
                got(None),
            ])),
            (0, 10),
        )];
        assert_eq!(check(&ok), Verdict::Linearizable);
        let bad = [tx(
            0,
            None,
            &steps,
            Some(Some(vec![
                Ret::Put,
                got(None),
                Ret::Delete { existed: true },
                got(None),
            ])),
            (0, 10),
        )];
        assert_violation(check(&bad), "a", &[0]);
    }

    #[test]
    fn a_guard_aborts_exactly_when_a_guarded_key_changed_after_its_read() {
        let write_both = [("a", Call::Put(bytes("a9"))), ("b", Call::Put(bytes("b9")))];
        let guarded = |ret| tx(0, Some((7, &["a", "b"])), &write_both, ret, (40, 50));
        let committed = Some(Some(vec![Ret::Put, Ret::Put]));
        // Nothing changed between the read and the transaction: it must commit.
        let quiet = |ret| {
            vec![
                put(1, "b", "b1", (0, 5)),
                guarded_get(0, "a", 7, None, (10, 20)),
                guarded(ret),
            ]
        };
        assert_eq!(check(&quiet(committed.clone())), Verdict::Linearizable);
        assert_violation(check(&quiet(Some(None))), "a", &[0, 1, 2]);
        // b was written after the read (and before the transaction): it must abort.
        let busy = |ret| {
            vec![
                put(1, "b", "b1", (0, 5)),
                guarded_get(0, "a", 7, None, (10, 20)),
                put(1, "b", "b2", (25, 30)),
                guarded(ret),
            ]
        };
        assert_eq!(check(&busy(Some(None))), Verdict::Linearizable);
        assert_violation(check(&busy(committed.clone())), "a", &[0, 1, 2, 3]);
        // A write that changes nothing (a failed swap, a delete of an absent key) is no change.
        let idle = |ret| {
            vec![
                guarded_get(0, "a", 7, None, (10, 20)),
                cas(1, "b", (Some("x"), Some("y")), false, (22, 24)),
                delete(1, "a", false, (25, 30)),
                guarded(ret),
            ]
        };
        assert_eq!(check(&idle(committed.clone())), Verdict::Linearizable);
        assert_violation(check(&idle(Some(None))), "a", &[0, 1, 2, 3]);
        // A write concurrent with the read may fall on either side of it.
        let racing = |ret| {
            vec![
                guarded_get(0, "a", 7, None, (10, 20)),
                put(1, "b", "b1", (5, 30)),
                guarded(ret),
            ]
        };
        assert_eq!(check(&racing(committed)), Verdict::Linearizable);
        assert_eq!(check(&racing(Some(None))), Verdict::Linearizable);
        // A pending guarded transaction may commit or not, but never half.
        let pending = vec![
            guarded_get(0, "a", 7, None, (10, 20)),
            guarded(None),
            tx(
                1,
                None,
                &[("a", Call::Get), ("b", Call::Get)],
                Some(Some(vec![got(Some("a9")), got(None)])),
                (60, 70),
            ),
        ];
        assert_violation(check(&pending), "a", &[0, 1, 2]);
    }

    #[test]
    fn malformed_guards_give_unknown() {
        let write = [("a", Call::Put(bytes("1")))];
        // A guard nobody started.
        let history = [tx(0, Some((3, &["a"])), &write, Some(None), (0, 10))];
        assert!(matches!(check(&history), Verdict::Unknown { reason, .. } if reason.contains("guard 3")));
        // Started by a read of a key it does not guard.
        let history = [
            guarded_get(0, "b", 3, None, (0, 5)),
            tx(0, Some((3, &["a"])), &write, Some(None), (10, 20)),
        ];
        assert!(matches!(check(&history), Verdict::Unknown { .. }));
        // An abort without a guard.
        let history = [tx(0, None, &write, Some(None), (0, 10))];
        assert!(matches!(check(&history), Verdict::Unknown { reason, .. } if reason.starts_with("malformed")));
        // A guard read no transaction uses is a plain read.
        let history = [put(0, "a", "1", (0, 5)), guarded_get(1, "a", 9, Some("1"), (10, 20))];
        assert_eq!(check(&history), Verdict::Linearizable);
    }

    #[test]
    fn types_round_trip_through_serde() {
        let history = vec![
            cas(1, "a", (None, Some("x")), true, (0, 1)),
            op(2, "a", Call::Delete, 3, Outcome::Unknown),
        ];
        let encoded = postcard::to_allocvec(&history).unwrap();
        let decoded: Vec<Operation> = postcard::from_bytes(&encoded).unwrap();
        assert_eq!(decoded, history);

        let verdict = Verdict::Violation {
            key: bytes("a"),
            ops: vec![0, 1],
            reason: "r".to_string(),
        };
        let encoded = postcard::to_allocvec(&verdict).unwrap();
        assert_eq!(postcard::from_bytes::<Verdict>(&encoded).unwrap(), verdict);
    }
}
