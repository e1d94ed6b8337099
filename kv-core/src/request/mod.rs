//! The request path: the one place where a client's operation becomes a Raft proposal or a
//! read, and where the outcome becomes a response or a typed error.
//!
//! kv-node's RESP sessions, its Raft port (operations forwarded by followers), the embedded
//! store and the simulator's clients all call [`RequestPath`], so a simulated client runs the
//! very code a redis-cli user does. What differs between them comes in through
//! [`Environment`]: the clock that stamps writes (wall clock natively, virtual time in the
//! simulator) and the way a follower reaches the leader (the Raft port natively, simulated
//! messages in the simulator). Timeouts run on the Raft type configuration's async runtime, so
//! nothing here reads a clock or opens a socket.
//!
//! # What happens to a batch
//!
//! [`RequestPath::execute_batch`] takes the operations of a pipeline in order:
//!
//! 1. Stale reads ([`ReadMode::Stale`]) are answered from this node's applied state at once.
//! 2. A follower serves a run of linearizable reads itself: it asks the leader for a read
//!    index ([`Op::ReadIndex`], one round trip for the whole run), waits until it has applied
//!    that index, and answers from its own state (Raft dissertation, section 6.4).
//! 3. Every other run goes to the leader **as one unit**: a follower that knows the leader
//!    forwards the whole run in one message ([`Environment::forward`]); the leader executes it
//!    with [`RequestPath::execute_forwarded`], which never forwards again.
//! 4. On the leader, consecutive writes are prepared ([`Command::validate`], TTL resolved on
//!    the leader's clock) and proposed one after another without waiting (so they share log
//!    flushes), then awaited in order; consecutive reads share one read-index barrier, and
//!    the reads of every connection that arrive while a barrier is in flight share the next
//!    ([`share`]; a follower's read-index requests likewise); a membership change or leader
//!    transfer runs alone.
//! 5. An operation refused before it was proposed because leadership moved is forwarded to
//!    the new leader (together with the others refused alike). An operation that was proposed
//!    and then lost its answer is reported as [`OpError::OutcomeUnknown`] and never re-run:
//!    re-running could apply it twice.
//! 6. A follower tags the plain writes it forwards with its own client session
//!    ([`forwarding`]), so a forwarded write whose answer was lost is sent again, to whoever
//!    leads by then, and applied once: the client gets its answer instead of an unknown
//!    outcome (until the request timeout runs out).
//!
//! Results come back one per operation, in order.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use openraft::ChangeMembers;
use openraft::Raft;
use openraft::ReadPolicy;
use openraft::alias::LogIdOf;
use openraft::errors::ClientWriteError;
use openraft::errors::Fatal;
use openraft::errors::RaftError;
use openraft::raft::WriteResult;
use openraft::storage::RaftStateMachine;
use openraft::type_config::TypeConfigExt;
use openraft::type_config::async_runtime::WatchReceiver;
use openraft_rt::AsyncRuntime;

use crate::command::Command;
use crate::command::CommandError;
use crate::command::Expiry;
use crate::command::Limits;
use crate::command::Query;
use crate::command::Response;
use crate::command::TxOp;
use crate::command::Write;
use crate::raft::KvNode;
use crate::raft::KvTypeConfig;
use crate::raft::LogWrite;
use crate::raft::state_machine::StoreHandle;
use crate::store::Store;
use crate::wire::Op;
use crate::wire::OpError;
use crate::wire::ReadMode;
use crate::wire::Status;

mod batching;
mod forwarding;
mod share;

use batching::Answer;
use batching::Entry;
use batching::ForwardQueue;
use forwarding::ForwardSession;
use forwarding::SESSION_TTL_MS;
use forwarding::Tagged;
use share::Share;

/// One result per operation of a batch, in order.
pub type Results = Vec<Result<Response, OpError>>;

/// What the request path needs from where it runs.
pub trait Environment: Clone + Send + Sync + 'static {
    /// The clock that stamps writes this node proposes as leader, in milliseconds since the
    /// Unix epoch (natively) or since the start (simulated). TTLs are resolved against it.
    fn now_ms(&self) -> u64;

    /// Hands `ops` to `leader` (reachable at `node`), which executes them with
    /// [`RequestPath::execute_forwarded`]; returns its results, one per operation. An `Err`
    /// covers the whole run: [`OpError::OutcomeUnknown`] if the run may have reached the
    /// leader, any other kind if it certainly did not.
    fn forward(&self, leader: u64, node: KvNode, ops: Vec<Op>)
    -> impl Future<Output = Result<Results, OpError>> + Send;
}

/// The request path of one node. Clones share the node.
pub struct RequestPath<C, SM, E>
where
    C: KvTypeConfig,
    SM: RaftStateMachine<C>,
{
    id: u64,
    raft: Raft<C, SM>,
    store: StoreHandle,
    limits: Limits,
    timeout: Duration,
    env: E,
    shared: Arc<NodeShared>,
}

/// A read-index barrier's outcome: the index reads may be served at, `Err(Ok(leader))` if
/// another node leads, or why there is none.
type Barrier = Result<u64, Result<Option<u64>, OpError>>;

/// What every request path of one node shares (a node builds a path per request in the
/// simulator).
#[derive(Debug, Default)]
pub struct NodeShared {
    /// A follower's read-index requests to the leader.
    read_index: Share<Result<u64, OpError>>,
    /// The leader's read-index barriers.
    barrier: Share<Barrier>,
    forwarding: ForwardSession,
    forwards: ForwardQueue,
}

impl<C, SM, E> Clone for RequestPath<C, SM, E>
where
    C: KvTypeConfig,
    SM: RaftStateMachine<C>,
    E: Clone,
{
    fn clone(&self) -> Self {
        RequestPath {
            id: self.id,
            raft: self.raft.clone(),
            store: self.store.clone(),
            limits: self.limits,
            timeout: self.timeout,
            env: self.env.clone(),
            shared: self.shared.clone(),
        }
    }
}

/// How one operation ended on this node.
enum Outcome {
    /// Done, one way or the other.
    Done(Result<Response, OpError>),
    /// Refused before it was proposed: this node does not lead. Safe to send elsewhere.
    Bounced(Op, Option<u64>),
}

impl<C, SM, E> RequestPath<C, SM, E>
where
    C: KvTypeConfig,
    SM: RaftStateMachine<C>,
    E: Environment,
{
    /// The request path of node `id`: operations run on `raft`, reads are answered from
    /// `store`, commands are held to `limits`, and each step waits at most `timeout`.
    pub fn new(id: u64, raft: Raft<C, SM>, store: StoreHandle, limits: Limits, timeout: Duration, env: E) -> Self {
        RequestPath {
            id,
            raft,
            store,
            limits,
            timeout,
            env,
            shared: Arc::default(),
        }
    }

    /// This node's id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Its openraft instance.
    pub fn raft(&self) -> &Raft<C, SM> {
        &self.raft
    }

    /// Its environment.
    pub fn env(&self) -> &E {
        &self.env
    }

    /// Shares `shared`'s read-index requests and forwarding session with every other path of
    /// the same node.
    pub fn sharing(mut self, shared: Arc<NodeShared>) -> Self {
        self.shared = shared;
        self
    }

    /// The size limits commands are held to.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The longest a step of an operation may take.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Runs one operation (linearizably), here or on the leader.
    pub async fn execute(&self, op: Op) -> Result<Response, OpError> {
        let mut results = self.execute_batch(vec![op], ReadMode::Linearizable).await;
        results.pop().expect("one result per operation")
    }

    /// Runs a pipeline of operations in order, reads as `mode` says; see the module docs.
    pub async fn execute_batch(&self, ops: Vec<Op>, mode: ReadMode) -> Results {
        let stale = |op: &Op| mode == ReadMode::Stale && op.is_read();
        let mut results = Vec::with_capacity(ops.len());
        let mut ops = ops.into_iter().peekable();
        while let Some(op) = ops.next() {
            if let (true, Op::Read(query)) = (stale(&op), &op) {
                results.push(Ok(self.query_local(query)));
                continue;
            }
            let mut run = Vec::with_capacity(ops.len() + 1);
            run.push(op);
            while let Some(next) = ops.next_if(|o| !stale(o)) {
                run.push(next);
            }
            results.extend(self.execute_run(run).await);
        }
        results
    }

    /// Runs operations a follower forwarded: here, never forwarding them again.
    pub async fn execute_forwarded(&self, ops: Vec<Op>) -> Results {
        self.execute_here(ops)
            .await
            .into_iter()
            .map(|outcome| match outcome {
                Outcome::Done(result) => result,
                Outcome::Bounced(_, leader) => Err(OpError::NotLeader { node: self.id, leader }),
            })
            .collect()
    }

    /// Answers `query` from this node's applied state, with no barrier.
    pub fn query_local(&self, query: &Query) -> Response {
        self.store.read().query(query, self.env.now_ms())
    }

    /// This node's view of the cluster.
    pub fn status(&self) -> Status {
        let m = self.raft.metrics().borrow_watched().clone();
        let membership = m.membership_config.membership();
        let node = |id: u64| membership.get_node(&id).cloned().unwrap_or_default();
        let index = |id: Option<&LogIdOf<C>>| id.map_or(0, |id| id.index);
        Status {
            id: self.id,
            role: m.state.into(),
            term: m.current_term,
            leader: m.current_leader.map(|id| (id, node(id))),
            last_log_index: m.last_log_index.unwrap_or(0),
            commit_index: index(m.local_committed.as_ref()),
            applied_index: index(m.last_applied.as_ref()),
            snapshot_index: index(m.snapshot.as_ref()),
            purged_index: index(m.purged.as_ref()),
            voters: membership.voter_ids().map(|id| (id, node(id))).collect(),
            learners: membership.learner_ids().map(|id| (id, node(id))).collect(),
        }
    }

    /// Whether `id` is a voter of the current membership.
    fn is_voter(&self, id: u64) -> bool {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow_watched();
        metrics.membership_config.membership().voter_ids().any(|v| v == id)
    }

    /// Whether this node is the only voter (a one-node cluster).
    fn sole_voter(&self) -> bool {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow_watched();
        let mut voters = metrics.membership_config.membership().voter_ids();
        voters.next() == Some(self.id) && voters.next().is_none()
    }

    /// The addresses of member `id`, from the current membership.
    pub fn member(&self, id: u64) -> Option<KvNode> {
        let metrics = self.raft.metrics().borrow_watched().clone();
        metrics.membership_config.membership().get_node(&id).cloned()
    }

    /// Validates `command` and stamps it with this node's clock, resolving a relative TTL.
    pub fn prepare(&self, command: Command, ttl_ms: Option<u64>) -> Result<Write, OpError> {
        command
            .validate(&self.limits)
            .map_err(|e| OpError::Rejected(e.to_string()))?;
        let at_ms = self.env.now_ms();
        let mut command = command;
        resolve_ttl(&mut command, ttl_ms, at_ms);
        Ok(Write { at_ms, command })
    }

    /// The leader, if it is known and is another node.
    fn remote_leader(&self) -> Option<(u64, KvNode)> {
        let leader = self.raft.metrics().borrow_watched().current_leader?;
        if leader == self.id {
            return None;
        }
        Some((leader, self.member(leader)?))
    }

    /// A run that must reach the leader: forwarded whole, or executed here.
    async fn execute_run(&self, run: Vec<Op>) -> Results {
        if let Some((leader, node)) = self.remote_leader() {
            if run.iter().all(|op| matches!(op, Op::Read(_))) {
                return self.follower_reads(leader, node, run).await;
            }
            return self.forward(leader, node, run).await;
        }
        let outcomes = self.execute_here(run).await;
        let mut results: Vec<Option<Result<Response, OpError>>> = Vec::with_capacity(outcomes.len());
        let mut bounced = Vec::new();
        let mut hint = None;
        for outcome in outcomes {
            match outcome {
                Outcome::Done(result) => results.push(Some(result)),
                Outcome::Bounced(op, leader) => {
                    hint = hint.or(leader.filter(|&l| l != self.id));
                    bounced.push((results.len(), op));
                    results.push(None);
                }
            }
        }
        if !bounced.is_empty() {
            let (slots, ops): (Vec<usize>, Vec<Op>) = bounced.into_iter().unzip();
            let forwarded = match hint.and_then(|leader| Some((leader, self.member(leader)?))) {
                Some((leader, node)) => self.forward(leader, node, ops).await,
                None => ops.iter().map(|_| Err(OpError::NoLeader)).collect(),
            };
            for (slot, result) in slots.into_iter().zip(forwarded) {
                results[slot] = Some(result);
            }
        }
        results.into_iter().map(|r| r.expect("every slot is filled")).collect()
    }

    /// Linearizable reads served by this follower (Raft dissertation, 6.4): one round trip
    /// for the leader's read index, then, once this node has applied up to it, the reads
    /// from its own state. The leader's CPU is left to writes.
    async fn follower_reads(&self, leader: u64, node: KvNode, run: Vec<Op>) -> Results {
        let checked = self.check_reads(run.into_iter().map(|op| match op {
            Op::Read(query) => query,
            _ => unreachable!("only reads are served here"),
        }));
        let ready = match self.shared_read_index(leader, node).await {
            Ok(index) => self
                .raft
                .wait(Some(self.timeout))
                .applied_index_at_least(Some(index), "the read index")
                .await
                .map(drop)
                .map_err(|_| OpError::Timeout(self.timeout)),
            Err(e) => Err(e),
        };
        let now = self.env.now_ms();
        let store = self.store.read();
        prefetch(&store, &checked);
        checked
            .into_iter()
            .map(|query| match (query, &ready) {
                (Ok(query), Ok(())) => Ok(store.query(&query, now)),
                (Ok(_), Err(e)) => Err(e.clone()),
                (Err(e), _) => Err(e),
            })
            .collect()
    }

    /// Each query, or why it is refused (past the limits) without being run.
    fn check_reads(&self, queries: impl Iterator<Item = Query>) -> Vec<Result<Query, OpError>> {
        queries
            .map(|q| match q.validate(&self.limits) {
                Ok(()) => Ok(q),
                Err(e) => Err(OpError::Rejected(e.to_string())),
            })
            .collect()
    }

    /// Confirms with a quorum that this node leads (openraft's read-index barrier) and returns
    /// the index reads may be served at; `Err(Ok(leader))` if another node leads. One barrier,
    /// begun after this call, serves every read that asked meanwhile (see [`share`]): openraft
    /// sends a heartbeat round for each.
    async fn barrier(&self) -> Barrier {
        if self.sole_voter() {
            // Its own quorum: openraft answers at once, and sharing would only add a hand-off.
            return self.barrier_once().await;
        }
        self.shared.barrier.get(|| self.barrier_once()).await
    }

    /// One read-index barrier, as [`RequestPath::barrier`] describes.
    async fn barrier_once(&self) -> Barrier {
        let barrier = self.raft.ensure_linearizable(ReadPolicy::ReadIndex);
        match C::AsyncRuntime::timeout(self.timeout, barrier).await {
            Err(_) => Err(Err(OpError::Timeout(self.timeout))),
            Ok(Ok(read)) => Ok(read.index()),
            Ok(Err(e)) => match e.forward_to_leader() {
                Some(f) => Err(Ok(f.leader_id)),
                None => Err(Err(OpError::Unavailable(e.to_string()))),
            },
        }
    }

    /// The leader's read index, from a request sent after this call began, shared with every
    /// read that asked meanwhile (see [`share`]).
    async fn shared_read_index(&self, leader: u64, node: KvNode) -> Result<u64, OpError> {
        let request = || async move {
            match self.forward_once(leader, node, vec![Op::ReadIndex]).await.pop() {
                Some(Ok(Response::ReadIndex(index))) => Ok(index),
                Some(Err(e)) => Err(e),
                other => Err(OpError::Unavailable(format!(
                    "leader {leader} answered a read-index request with {other:?}"
                ))),
            }
        };
        self.shared.read_index.get(request).await
    }

    /// Answers a follower's read-index request: after this leader confirmed its leadership
    /// with a quorum, the index every read that asked for it may be served at.
    async fn read_index(&self) -> Outcome {
        Outcome::Done(match self.barrier().await {
            Ok(index) => Ok(Response::ReadIndex(index)),
            Err(Ok(leader)) => Err(OpError::NotLeader { node: self.id, leader }),
            Err(Err(e)) => Err(e),
        })
    }

    /// Hands a run to the leader, its plain writes tagged with this node's forwarding session;
    /// tagged writes whose answers are lost go again until answered or out of time.
    async fn forward(&self, leader: u64, node: KvNode, mut ops: Vec<Op>) -> Results {
        let forwarding = &self.shared.forwarding;
        let now = self.env.now_ms();
        if ops.iter().any(ForwardSession::can_tag) && forwarding.needs_registering(now) {
            let register = Op::Write {
                command: Command::RegisterSession { ttl_ms: SESSION_TTL_MS },
                ttl_ms: None,
            };
            let id = match self.forward_once(leader, node.clone(), vec![register]).await.pop() {
                Some(Ok(Response::Session(id))) => Some(id),
                _ => None,
            };
            forwarding.registered(id, now);
        }
        let tagged = forwarding.tag(&mut ops, now);
        let mut results = self.forward_shared(leader, node, ops).await;
        if !tagged.is_empty() {
            self.settle(tagged, &mut results).await;
        }
        results
    }

    /// Settles the tagged writes of a forwarded run: their session errors become the caller's
    /// errors, and the ones whose answers were lost are sent again (same session, same
    /// sequence number, so applied at most once) until answered or out of time.
    async fn settle(&self, tagged: Vec<Tagged>, results: &mut Results) {
        let forwarding = &self.shared.forwarding;
        let mut lost = Vec::new();
        for t in tagged {
            match &results[t.slot] {
                Err(OpError::OutcomeUnknown(_)) => {
                    // With what the last resend of it met, once there is one.
                    lost.push((t, None));
                    continue;
                }
                // Not applied: the session was gone before this write reached it.
                Ok(Response::Error(CommandError::SessionExpired { id })) if *id == t.id => {
                    forwarding.expired(t.id);
                    results[t.slot] = Err(OpError::Unavailable(format!(
                        "this node's forwarding session {id} had expired; it registers a new one"
                    )));
                }
                _ => {}
            }
            forwarding.answered(t.seq);
        }
        let deadline = C::now() + self.timeout;
        let mut pause = Duration::from_millis(20);
        let mut attempts = 0;
        while !lost.is_empty() && C::now() + pause < deadline {
            C::AsyncRuntime::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(500));
            attempts += 1;
            let again = self.resend(lost.iter().map(|(t, _)| t.op.clone()).collect()).await;
            let mut still = Vec::new();
            for ((t, _), result) in lost.into_iter().zip(again) {
                match result {
                    Ok(Response::Error(
                        CommandError::SessionExpired { id } | CommandError::SessionStale { id, .. },
                    )) if id == t.id => {
                        results[t.slot] = Err(OpError::OutcomeUnknown(format!(
                            "the answer was lost and session {id} no longer holds it"
                        )));
                    }
                    Ok(response) => results[t.slot] = Ok(response),
                    // This attempt did not run, or its answer was lost too: an earlier one
                    // still may have taken effect.
                    Err(error) => {
                        still.push((t, Some(error)));
                        continue;
                    }
                }
                forwarding.answered(t.seq);
            }
            lost = still;
        }
        // Out of time: the first loss stays the reason, with what the resends met.
        for (t, last) in lost {
            if let (Err(OpError::OutcomeUnknown(first)), Some(last)) = (&results[t.slot], last) {
                results[t.slot] = Err(OpError::OutcomeUnknown(format!(
                    "{first}; sent again {attempts} times in {:?}, the last attempt: {last}",
                    self.timeout
                )));
            }
            forwarding.answered(t.seq);
        }
    }

    /// Sends tagged writes again, to whoever leads now (this node included).
    async fn resend(&self, ops: Vec<Op>) -> Results {
        let leader = self.raft.metrics().borrow_watched().current_leader;
        match leader.map(|id| (id, self.member(id))) {
            Some((id, _)) if id == self.id => self.execute_forwarded(ops).await,
            Some((id, Some(node))) => self.forward_shared(id, node, ops).await,
            _ => ops.iter().map(|_| Err(OpError::NoLeader)).collect(),
        }
    }

    /// Hands a run to the leader in a message it may share with other connections' runs (see
    /// [`batching`]).
    async fn forward_shared(&self, leader: u64, node: KvNode, ops: Vec<Op>) -> Results {
        let queue = &self.shared.forwards;
        let reads: Vec<bool> = ops.iter().map(Op::is_read).collect();
        let (_slot, parts) = match queue.enter(leader, node, ops) {
            Entry::Send(slot, parts) => (slot, parts),
            Entry::Wait(turn) => match turn.await {
                Ok(Answer::Results(results)) => return results,
                Ok(Answer::Drive(parts)) => (queue.inherit(), parts),
                // The task sending the message that carried this run was cancelled.
                Err(_) => {
                    let lost = "the forward carrying it was abandoned".to_string();
                    return reads
                        .into_iter()
                        .map(|read| match read {
                            true => Err(OpError::Unavailable(lost.clone())),
                            false => Err(OpError::OutcomeUnknown(lost.clone())),
                        })
                        .collect();
                }
            },
        };
        // Dropping `_slot` hands the queue on to the next waiting run.
        batching::send_combined(parts, |leader, node, ops| self.forward_once(leader, node, ops)).await
    }

    /// Hands a run to the leader once; a failed hand-off fails each operation, reads as "not
    /// run".
    async fn forward_once(&self, leader: u64, node: KvNode, ops: Vec<Op>) -> Results {
        let reads: Vec<bool> = ops.iter().map(Op::is_read).collect();
        let expected = ops.len();
        match self.env.forward(leader, node, ops).await {
            Ok(results) if results.len() == expected => results,
            Ok(results) => {
                let error = OpError::OutcomeUnknown(format!(
                    "leader {leader} answered {} results for {expected} operations",
                    results.len()
                ));
                reads.iter().map(|_| Err(error.clone())).collect()
            }
            Err(error) => reads
                .into_iter()
                .map(|read| match &error {
                    // A read has no effect to be unsure about.
                    OpError::OutcomeUnknown(reason) if read => Err(OpError::Unavailable(reason.clone())),
                    _ => Err(error.clone()),
                })
                .collect(),
        }
    }

    /// Executes a run on this node: consecutive writes proposed together, consecutive reads
    /// behind one barrier, cluster changes one at a time.
    async fn execute_here(&self, run: Vec<Op>) -> Vec<Outcome> {
        let mut outcomes = Vec::with_capacity(run.len());
        let mut ops = run.into_iter().peekable();
        while let Some(op) = ops.next() {
            match op {
                Op::Write { .. } => {
                    let mut writes = Vec::with_capacity(ops.len() + 1);
                    writes.push(op);
                    while let Some(write) = ops.next_if(|o| matches!(o, Op::Write { .. })) {
                        writes.push(write);
                    }
                    outcomes.extend(self.writes(writes).await);
                }
                Op::Read(query) => {
                    let mut queries = Vec::with_capacity(ops.len() + 1);
                    queries.push(query);
                    while let Some(Op::Read(query)) = ops.next_if(|o| matches!(o, Op::Read(_))) {
                        queries.push(query);
                    }
                    outcomes.extend(self.reads(queries).await);
                }
                Op::ReadIndex => outcomes.push(self.read_index().await),
                change => outcomes.push(self.change(change).await),
            }
        }
        outcomes
    }

    async fn writes(&self, writes: Vec<Op>) -> Vec<Outcome> {
        let mut outcomes: Vec<Option<Outcome>> = Vec::with_capacity(writes.len());
        // The writes to propose, by slot; a reference to each is kept in case its proposal
        // bounces and it must be forwarded.
        let mut proposed: Vec<(usize, LogWrite)> = Vec::with_capacity(writes.len());
        for (slot, op) in writes.into_iter().enumerate() {
            let Op::Write { command, ttl_ms } = op else {
                unreachable!("only writes are batched here")
            };
            match self.prepare(command, ttl_ms) {
                Ok(write) => {
                    proposed.push((slot, LogWrite::new(write)));
                    outcomes.push(None);
                }
                Err(e) => outcomes.push(Some(Outcome::Done(Err(e)))),
            }
        }
        if !proposed.is_empty() {
            // One message to the Raft core for the whole run, answered in order.
            let batch: Vec<LogWrite> = proposed.iter().map(|(_, write)| write.clone()).collect();
            match self.raft.client_write_many(batch).await {
                Ok(answers) => self.answered(answers, proposed, &mut outcomes).await,
                Err(fatal) => {
                    for (slot, _) in proposed {
                        outcomes[slot] = Some(Outcome::Done(Err(OpError::Unavailable(fatal.to_string()))));
                    }
                }
            }
        }
        outcomes
            .into_iter()
            .map(|outcome| outcome.expect("every write is answered"))
            .collect()
    }

    /// Fills in the outcomes of `proposed` from `answers`, which come in the order proposed.
    async fn answered(
        &self,
        mut answers: futures_util::stream::BoxStream<'static, Result<WriteResult<C>, Fatal<C>>>,
        proposed: Vec<(usize, LogWrite)>,
        outcomes: &mut [Option<Outcome>],
    ) {
        // The runtime's clock: virtual time in the simulator.
        let deadline = C::now() + self.timeout;
        let mut late = false;
        for (slot, write) in proposed {
            // Once one answer is late the stream is still waiting for it: the rest are late
            // too (they are applied, and answered, after it).
            let answer = if late {
                None
            } else {
                C::AsyncRuntime::timeout_at(deadline, answers.next()).await.ok()
            };
            outcomes[slot] = Some(match answer {
                None => {
                    late = true;
                    Outcome::Done(Err(OpError::OutcomeUnknown(format!(
                        "no answer within {:?}",
                        self.timeout
                    ))))
                }
                Some(None | Some(Err(_))) => {
                    Outcome::Done(Err(OpError::OutcomeUnknown("the node is stopping".to_string())))
                }
                Some(Some(Ok(Ok(reply)))) => Outcome::Done(Ok(reply.response)),
                // Refused before it was appended: it can go to the leader.
                // (Its TTL is already absolute: the next leader stamps it again.)
                Some(Some(Ok(Err(ClientWriteError::ForwardToLeader(f))))) => {
                    let op = Op::Write {
                        command: write.command.clone(),
                        ttl_ms: None,
                    };
                    Outcome::Bounced(op, f.leader_id)
                }
                Some(Some(Ok(Err(ClientWriteError::LogEntryDiscarded(_))))) => Outcome::Done(Err(
                    OpError::OutcomeUnknown("the leader lost its log entry to a newer leader".to_string()),
                )),
                Some(Some(Ok(Err(other)))) => Outcome::Done(Err(OpError::Rejected(other.to_string()))),
            });
        }
    }

    async fn reads(&self, queries: Vec<Query>) -> Vec<Outcome> {
        // A read past the limits is refused here; the others share one barrier.
        let checked = self.check_reads(queries.into_iter());
        let barrier = self.barrier().await;
        let now = self.env.now_ms();
        let store = self.store.read();
        prefetch(&store, &checked);
        checked
            .into_iter()
            .map(|query| match (query, &barrier) {
                (Err(e), _) => Outcome::Done(Err(e)),
                (Ok(query), Ok(_)) => Outcome::Done(Ok(store.query(&query, now))),
                (Ok(query), Err(Ok(leader))) => Outcome::Bounced(Op::Read(query), *leader),
                (Ok(_), Err(Err(e))) => Outcome::Done(Err(e.clone())),
            })
            .collect()
    }

    /// A membership change or a leader transfer.
    async fn change(&self, op: Op) -> Outcome {
        let raft = &self.raft;
        let result = match &op {
            Op::AddLearner { id, node } => {
                // Within the request timeout (a follower that forwarded this waits that long, and a
                // second more): the membership change, then the catch-up with what is left.
                let limit = self.timeout * 3 / 4;
                let add = raft.add_learner(*id, node.clone(), false);
                match C::AsyncRuntime::timeout(self.timeout / 4, add).await {
                    Err(_) => Err(Ok(OpError::OutcomeUnknown(format!(
                        "node {id} was not added within {:?}",
                        self.timeout / 4
                    )))),
                    Ok(Err(e)) => Err(Err(e)),
                    // openraft's own blocking wait gives up quietly; this one says so.
                    Ok(Ok(added)) => self
                        .caught_up(*id, added.log_id.index, limit)
                        .await
                        .map_err(|()| {
                            Ok(OpError::Rejected(format!(
                                "node {id} was added as a learner but has not caught up within {limit:?}: check that {} is reachable (RAFT REMOVE {id} undoes it)",
                                node.raft_addr
                            )))
                        }),
                }
            }
            Op::Promote { id } => {
                self.change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([*id])))
                    .await
            }
            Op::Remove { id } => {
                let ids = BTreeSet::from([*id]);
                let change = if self.is_voter(*id) {
                    ChangeMembers::RemoveVoters(ids)
                } else {
                    ChangeMembers::RemoveNodes(ids)
                };
                self.change_membership(change).await
            }
            Op::TransferLeader { to } => {
                if !raft.is_leader() {
                    let leader = raft.metrics().borrow_watched().current_leader;
                    return Outcome::Bounced(op, leader);
                }
                // openraft takes any id and waits for it; a target that cannot take over would
                // leave this leader refusing writes until its lease ran out.
                if *to == self.id || !self.is_voter(*to) {
                    return Outcome::Done(Err(OpError::Rejected(format!(
                        "node {to} is not a voter other than the leader (node {}); leadership can only go to another voter",
                        self.id
                    ))));
                }
                return Outcome::Done(
                    raft.trigger()
                        .transfer_leader(*to)
                        .await
                        .map(|()| Response::Ok)
                        .map_err(|e| OpError::Unavailable(e.to_string())),
                );
            }
            Op::Write { .. } | Op::Read(_) | Op::ReadIndex => unreachable!("data operations are batched elsewhere"),
        };
        match result {
            Ok(()) => Outcome::Done(Ok(Response::Ok)),
            Err(Ok(e)) => Outcome::Done(Err(e)),
            Err(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => Outcome::Bounced(op, f.leader_id),
            Err(Err(RaftError::APIError(e))) => Outcome::Done(Err(OpError::Rejected(e.to_string()))),
            Err(Err(RaftError::Fatal(f))) => Outcome::Done(Err(OpError::Unavailable(f.to_string()))),
        }
    }

    /// Waits until this leader has replicated to `learner` at least up to `index`.
    async fn caught_up(&self, learner: u64, index: u64, limit: Duration) -> Result<(), ()> {
        self.raft
            .wait(Some(limit))
            .metrics(
                |m| {
                    m.replication
                        .as_ref()
                        .and_then(|r| r.get(&learner))
                        .is_some_and(|matched| matched.as_ref().is_some_and(|l| l.index >= index))
                },
                "the new learner to catch up",
            )
            .await
            .map(drop)
            .map_err(drop)
    }

    async fn change_membership(
        &self,
        change: ChangeMembers<u64, KvNode>,
    ) -> Result<(), Result<OpError, RaftError<C, ClientWriteError<C>>>> {
        let change = self.raft.change_membership(change, false);
        match C::AsyncRuntime::timeout(self.timeout, change).await {
            Err(_) => Err(Ok(OpError::OutcomeUnknown(format!(
                "the membership change did not finish within {:?}",
                self.timeout
            )))),
            Ok(result) => result.map(drop).map_err(Err),
        }
    }
}

/// Starts loading the records a run of reads will read ([`Store::prefetch`]): their cache
/// misses overlap instead of coming one per read.
fn prefetch(store: &Store, checked: &[Result<Query, OpError>]) {
    if checked.len() > 1 {
        store.prefetch(checked.iter().filter_map(|query| query.as_ref().ok()));
    }
}

/// Turns a relative time to live into an expiry at `now_ms + ttl_ms`: of a `Set` or
/// `SetExpiry`, of the write a session command wraps, and of each write of a transaction.
fn resolve_ttl(command: &mut Command, ttl_ms: Option<u64>, now_ms: u64) {
    match command {
        Command::Set { expiry, .. } | Command::SetQuiet { expiry, .. } => {
            if let Some(ttl) = ttl_ms {
                *expiry = Expiry::At(now_ms.saturating_add(ttl));
            }
        }
        Command::SetExpiry { at_ms, .. } => {
            if let Some(ttl) = ttl_ms {
                *at_ms = Some(now_ms.saturating_add(ttl));
            }
        }
        Command::Session { command, .. } => resolve_ttl(command, ttl_ms, now_ms),
        Command::Transaction { ops, .. } => {
            for op in ops {
                if let TxOp::Write { command, ttl_ms } = op {
                    resolve_ttl(command, ttl_ms.take(), now_ms);
                }
            }
        }
        _ => {}
    }
}
