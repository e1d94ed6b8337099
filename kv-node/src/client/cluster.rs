//! [`ClusterClient`]: the one client of a whole cluster.
//!
//! ## What it guarantees
//!
//! - **Reads** (commands the table flags neither `write` nor `admin`) are retried on any
//!   failure until one node answers or `retry_for` has passed: a read has no effect.
//! - **Writes** (flag `write`) go through a client session (`SESSION RUN id seq acked ...`,
//!   opened lazily with `SESSION NEW`): the state machine runs each `(id, seq)` at most once and
//!   answers a repeat with the recorded reply. So a write whose answer was lost (connection
//!   reset, leader killed, timeout) is sent again, with the **same** `(id, seq)`, to the next
//!   node, until an answer comes: a retried `INCR`, `APPEND` or `CAS` takes effect exactly
//!   once. If the session has expired (`-SESSIONEXPIRED`) for a write already sent once, the
//!   outcome is unknown (the first send may have applied and the record is gone); a write never
//!   sent before gets a fresh session.
//! - **Writes without a session** (option `sessions: false`, and `admin` commands such as
//!   `RAFT ADD-LEARNER`) are sent until one attempt may have reached the state machine; if
//!   that attempt's answer is lost, the error is [`ClusterError::OutcomeUnknown`], never a
//!   blind resend.
//! - Every failure is one of two kinds: [`ClusterError::NotApplied`] (refused before sending,
//!   an error reply, no node or no leader within `retry_for`: certainly no effect) or
//!   [`ClusterError::OutcomeUnknown`] (may or may not have taken effect).
//!
//! ## How it finds the leader
//!
//! From structured replies only: when it connects to a node it asks `RAFT LEADER` (`[id, raft
//! address, client address]`) and goes to the leader's client address; `-MOVED slot
//! host:port` / `-ASK` send it to that address; `-TRYAGAIN`, `-CLUSTERDOWN`, `-LOADING` and
//! `-MASTERDOWN` (the node is not the leader and could not forward, or no leader is known)
//! make it ask `RAFT LEADER` again and otherwise try the next address. Between failed
//! attempts it backs off exponentially from `min_backoff` to `max_backoff`. A node's
//! `-TRYAGAIN` reply whose text starts with `outcome unknown` (the README documents this
//! prefix: the node proposed or forwarded the write and lost its answer) counts as "may have
//! taken effect", like a lost connection.
//!
//! Any node accepts any command (followers forward writes and serve reads through a read
//! index); going to the leader saves the forwarding hop.
//!
//! ## Why one sequential client
//!
//! A `ClusterClient` runs one command at a time (`&mut self`), so every sequence number below
//! the one in flight has been answered or given up on: `acked` is always `seq - 1`, and the
//! node forgets recorded replies as soon as it can. Concurrency comes from several clients
//! (each with its own session), as with one connection per thread in redis-py.
//!
//! Tested in `kv-node/tests/cluster_client.rs` (scripted fake nodes: failover, redirects,
//! backoff, the error split, session retries; and a real 3-node cluster whose leader is killed
//! while clients `INCR` through sessions) and from Python (`bindings/python/tests`).

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use tokio::time::Instant;
use tokio_rustls::TlsConnector;

use super::connection::Client;
use super::connection::ClientError;
use crate::protocol::Reply;
use crate::protocol::command;
use crate::protocol::command::Flag;

/// Error codes that mean "not here, not now": the command did not run; another node, or the
/// same one later, may run it.
const RETRYABLE: &[&str] = &["TRYAGAIN", "CLUSTERDOWN", "LOADING", "MASTERDOWN", "MOVED", "ASK"];

/// How a [`ClusterClient`] connects, waits and retries.
#[derive(Clone)]
pub struct ClusterOptions {
    /// Sent with `AUTH` on every new connection.
    pub password: Option<String>,
    /// Connect with TLS through this connector (the certificates must name the hosts).
    pub tls: Option<TlsConnector>,
    /// Longest one network wait may take: connecting (with `AUTH`), or one command's answer.
    /// A write whose answer does not come in time may have taken effect.
    pub request_timeout: Duration,
    /// How long one call keeps retrying (failover, backoff while there is no leader) before
    /// it gives up.
    pub retry_for: Duration,
    /// The first pause after a failed attempt; it doubles up to `max_backoff`.
    pub min_backoff: Duration,
    /// The longest pause between attempts.
    pub max_backoff: Duration,
    /// Run writes through a client session (exactly-once retries). Without one, a write
    /// whose answer is lost is [`ClusterError::OutcomeUnknown`].
    pub sessions: bool,
    /// The session's time to live on the nodes (`SESSION NEW TTL`): how long it survives
    /// without a write. Whole seconds, at least 1.
    pub session_ttl: Duration,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            password: None,
            tls: None,
            request_timeout: Duration::from_secs(5),
            retry_for: Duration::from_secs(15),
            min_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(500),
            sessions: true,
            session_ttl: Duration::from_secs(600),
        }
    }
}

impl fmt::Debug for ClusterOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterOptions")
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .field("tls", &self.tls.is_some())
            .field("request_timeout", &self.request_timeout)
            .field("retry_for", &self.retry_for)
            .field("min_backoff", &self.min_backoff)
            .field("max_backoff", &self.max_backoff)
            .field("sessions", &self.sessions)
            .field("session_ttl", &self.session_ttl)
            .finish()
    }
}

/// Why a [`ClusterClient`] call failed: certainly without effect, or perhaps with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClusterError {
    /// The command did not take effect.
    #[error(transparent)]
    NotApplied(#[from] Failure),
    /// The write was sent and its answer was lost (connection lost or timeout after sending,
    /// its session expired before a retry could learn the answer): it may or may not have
    /// taken effect.
    #[error("outcome unknown: {0}; the write may or may not have taken effect")]
    OutcomeUnknown(String),
}

impl ClusterError {
    /// Whether the command may have taken effect.
    pub fn may_have_taken_effect(&self) -> bool {
        matches!(self, ClusterError::OutcomeUnknown(_))
    }
}

/// A failure after which the command certainly did not take effect.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// An error reply, `CODE text` (`ERR ...`, `WRONGPASS ...`, `SESSIONSTALE ...`): the
    /// command was refused or failed. [`Failure::code`] is its first word.
    #[error("{0}")]
    Reply(String),
    /// No node could be reached (connections refused, timed out) for `retry_for`.
    #[error("no node could be reached for {waited:?}: {last}")]
    Unreachable {
        /// How long the client tried.
        waited: Duration,
        /// The last failure.
        last: String,
    },
    /// Nodes answered, but none could run the command (no leader, or the leader out of
    /// reach) for `retry_for`.
    #[error("no leader took the command for {waited:?}{}: {last}", leader.map_or(String::new(), |l| format!(" (last known leader: node {l})")))]
    NoLeader {
        /// The leader some node named, if any.
        leader: Option<u64>,
        /// How long the client tried.
        waited: Duration,
        /// The last failure.
        last: String,
    },
    /// The client cannot be used as asked (no addresses, an empty command).
    #[error("{0}")]
    Invalid(String),
    /// A transaction's pinned connection failed, or its node could not reach a leader,
    /// before `EXEC` (or any write) was sent: nothing took effect, and the transaction can
    /// start over on a new connection (`WATCH` and read again). See [`Transaction`].
    ///
    /// [`Transaction`]: super::Transaction
    #[error("transaction interrupted before EXEC: {0}")]
    Interrupted(String),
}

impl Failure {
    /// The error code of an error reply (`ERR`, `SESSIONEXPIRED`, ...).
    pub fn code(&self) -> Option<&str> {
        match self {
            Failure::Reply(text) => Some(reply_code(text)),
            _ => None,
        }
    }
}

fn reply_code(text: &str) -> &str {
    text.split(' ').next().unwrap_or("")
}

/// Whether an error reply means "not here, not now" (`-TRYAGAIN`, `-MOVED`, ...): the command
/// did not run (unless [`outcome_unknown`]).
pub(super) fn is_retryable(text: &str) -> bool {
    RETRYABLE.contains(&reply_code(text))
}

/// Whether a command may change something (a write, an admin command, or one unknown here):
/// a lost answer to it may hide an effect.
pub(super) fn is_write(args: &[Vec<u8>]) -> bool {
    kind(args) != Kind::Read
}

/// The client's session: its id on the cluster and the next sequence number.
#[derive(Debug, Clone, Copy)]
struct Session {
    id: u64,
    next_seq: u64,
}

/// What one attempt on one node came to.
enum Attempt {
    /// A final answer (an error reply too, unless retryable).
    Answer(Reply),
    /// Not sent: the node could not be reached.
    NotSent(String),
    /// Sent, and the answer lost: it may have taken effect.
    Lost(String),
    /// A retryable error reply; `maybe_applied` for `-TRYAGAIN outcome unknown ...`.
    Refused {
        /// The reply's text.
        text: String,
        /// Whether the node says the write may have taken effect.
        maybe_applied: bool,
    },
    /// Not sent: the node named another leader, where the client goes now.
    Redirected,
}

/// How a command may be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retry {
    /// Freely: it has no effect, or a repeat is harmless (reads, `SESSION RUN`, `SESSION NEW`).
    Freely,
    /// Only while no attempt may have reached the state machine.
    UntilSent,
}

/// One command's run over the cluster: its result, and whether some attempt may have taken
/// effect.
struct Run {
    result: Result<Reply, Failure>,
    maybe_applied: bool,
}

/// A client of a whole cluster (see the module docs). One command at a time; use one client
/// per concurrent task.
#[derive(Debug)]
pub struct ClusterClient {
    addresses: Vec<String>,
    current: usize,
    connections: HashMap<String, Client>,
    options: ClusterOptions,
    session: Option<Session>,
}

impl ClusterClient {
    /// A client of the cluster that `seeds` (client addresses, `host:port`) belong to. It
    /// connects on first use; leaders it learns of are added to its addresses.
    pub fn new<S: AsRef<str>>(
        seeds: impl IntoIterator<Item = S>,
        options: ClusterOptions,
    ) -> Result<ClusterClient, ClusterError> {
        let mut addresses: Vec<String> = Vec::new();
        for seed in seeds {
            let seed = seed.as_ref().trim();
            if !seed.is_empty() && !addresses.iter().any(|a| a == seed) {
                addresses.push(seed.to_string());
            }
        }
        if addresses.is_empty() {
            return Err(Failure::Invalid("a cluster client needs at least one node address".to_string()).into());
        }
        Ok(ClusterClient {
            addresses,
            current: 0,
            connections: HashMap::new(),
            options,
            session: None,
        })
    }

    /// The addresses it knows: the seeds, then leaders it learned of.
    pub fn addresses(&self) -> &[String] {
        &self.addresses
    }

    /// The address the next command goes to first (the leader, once known).
    pub fn current_address(&self) -> &str {
        &self.addresses[self.current]
    }

    /// How it connects, waits and retries.
    pub fn options(&self) -> &ClusterOptions {
        &self.options
    }

    /// The id of the client session, once a write has opened one.
    pub fn session_id(&self) -> Option<u64> {
        self.session.map(|s| s.id)
    }

    /// Runs one command (its name first) on the cluster, with the retries the module docs
    /// describe. An error reply is `Err(NotApplied(Failure::Reply(..)))`; `Ok` is never
    /// [`Reply::Error`].
    pub async fn call<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<Reply, ClusterError> {
        let args: Vec<Vec<u8>> = args.iter().map(|a| a.as_ref().to_vec()).collect();
        if args.is_empty() {
            return Err(Failure::Invalid("an empty command".to_string()).into());
        }
        let deadline = Instant::now() + self.options.retry_for;
        match kind(&args) {
            Kind::Read => into_result(self.run(&args, Retry::Freely, deadline).await),
            Kind::Write if self.options.sessions => self.session_write(&args, deadline).await,
            Kind::Write | Kind::Other => into_result(self.run(&args, Retry::UntilSent, deadline).await),
        }
    }

    /// Runs one command on the node at `address` only: one attempt, no retry, no redirect
    /// (`RAFT STATUS` of each node, say). A connection failure is `NotApplied(Unreachable)`;
    /// an answer lost after sending is `OutcomeUnknown`.
    pub async fn call_node<A: AsRef<[u8]>>(&mut self, address: &str, args: &[A]) -> Result<Reply, ClusterError> {
        let args: Vec<Vec<u8>> = args.iter().map(|a| a.as_ref().to_vec()).collect();
        let deadline = Instant::now() + self.options.request_timeout;
        match self.attempt(address, &args, deadline, false).await {
            Attempt::Answer(Reply::Error(text)) | Attempt::Refused { text, .. } => Err(Failure::Reply(text).into()),
            Attempt::Answer(reply) => Ok(reply),
            Attempt::NotSent(last) => Err(Failure::Unreachable {
                waited: self.options.request_timeout,
                last,
            }
            .into()),
            // Without discovery an attempt is never redirected.
            Attempt::Redirected => Err(Failure::Invalid(format!("{address} redirected a single-node call")).into()),
            Attempt::Lost(reason) => Err(ClusterError::OutcomeUnknown(reason)),
        }
    }

    /// Ends the client session on the cluster (`SESSION END`), if one is open, and closes
    /// every connection. The client can be used again (a write opens a new session).
    pub async fn close(&mut self) {
        if let Some(session) = self.session.take() {
            let deadline = Instant::now() + self.options.request_timeout;
            let end = [
                b"SESSION".to_vec(),
                b"END".to_vec(),
                session.id.to_string().into_bytes(),
            ];
            // Best effort: an unended session expires after its TTL.
            let _ = self.run(&end, Retry::Freely, deadline).await;
        }
        self.connections.clear();
    }

    /// A connection of its own to the leader (or, while none is known, to a node that
    /// answers), out of the pool: found with `RAFT LEADER` and the usual retries; if the node
    /// that answers names another leader, it goes there once.
    pub(super) async fn pin(&mut self) -> Result<(String, Client), ClusterError> {
        let deadline = Instant::now() + self.options.retry_for;
        let ask = [b"RAFT".to_vec(), b"LEADER".to_vec()];
        let mut redirects = 1;
        loop {
            let reply = into_result(self.run(&ask, Retry::Freely, deadline).await)?;
            let address = self.addresses[self.current].clone();
            if let Some((_, Some(leader))) = leader_of(&reply)
                && leader != address
                && redirects > 0
            {
                redirects -= 1;
                self.go_to(&leader);
                continue;
            }
            // `run` put the connection back after its answer.
            match self.connections.remove(&address) {
                Some(connection) => return Ok((address, connection)),
                None => return Err(Failure::Invalid(format!("no connection to {address} after its answer")).into()),
            }
        }
    }

    /// Puts a healthy connection (a finished transaction's) back into the pool.
    pub(super) fn return_connection(&mut self, address: String, connection: Client) {
        self.connections.insert(address, connection);
    }

    /// Moves on from `address` if it is the current one (it failed a transaction).
    pub(super) fn skip(&mut self, address: &str) {
        self.connections.remove(address);
        if self.addresses[self.current] == address {
            self.next_address();
        }
    }

    /// A write through the client session: the same `(id, seq)` until an answer comes.
    async fn session_write(&mut self, args: &[Vec<u8>], deadline: Instant) -> Result<Reply, ClusterError> {
        loop {
            let session = match self.session {
                Some(session) => session,
                None => {
                    let session = self.open_session(deadline).await?;
                    self.session = Some(session);
                    session
                }
            };
            let seq = session.next_seq;
            self.session = Some(Session {
                id: session.id,
                next_seq: seq + 1,
            });
            let mut wrapped = vec![
                b"SESSION".to_vec(),
                b"RUN".to_vec(),
                session.id.to_string().into_bytes(),
                seq.to_string().into_bytes(),
                // One command at a time: every earlier seq has been answered or given up.
                (seq - 1).to_string().into_bytes(),
            ];
            wrapped.extend_from_slice(args);
            let run = self.run(&wrapped, Retry::Freely, deadline).await;
            let maybe_applied = run.maybe_applied;
            match run.result {
                Ok(reply) => return Ok(reply),
                Err(Failure::Reply(text)) if reply_code(&text) == "SESSIONEXPIRED" => {
                    self.session = None;
                    if maybe_applied {
                        return Err(ClusterError::OutcomeUnknown(format!(
                            "the answer was lost and session {} expired before a retry: {text}",
                            session.id
                        )));
                    }
                    if Instant::now() >= deadline {
                        return Err(Failure::Reply(text).into());
                    }
                }
                Err(Failure::Reply(text)) if reply_code(&text) == "SESSIONSTALE" => {
                    // The cluster no longer remembers this seq: start over with a new session.
                    self.session = None;
                    return Err(if maybe_applied {
                        ClusterError::OutcomeUnknown(text)
                    } else {
                        Failure::Reply(text).into()
                    });
                }
                Err(failure) if maybe_applied && !matches!(failure, Failure::Reply(_)) => {
                    return Err(ClusterError::OutcomeUnknown(failure.to_string()));
                }
                Err(failure) => return Err(failure.into()),
            }
        }
    }

    /// `SESSION NEW TTL seconds`: retried freely (a session opened by a lost answer is never
    /// used and expires after its TTL).
    async fn open_session(&mut self, deadline: Instant) -> Result<Session, ClusterError> {
        let ttl = self.options.session_ttl.as_secs().max(1).to_string();
        let args = [b"SESSION".to_vec(), b"NEW".to_vec(), b"TTL".to_vec(), ttl.into_bytes()];
        match self.run(&args, Retry::Freely, deadline).await.result? {
            Reply::Integer(id) if id > 0 => Ok(Session {
                id: id.unsigned_abs(),
                next_seq: 1,
            }),
            other => Err(Failure::Reply(format!("ERR unexpected SESSION NEW reply {other:?}")).into()),
        }
    }

    /// Tries `args` on node after node (the module docs say how) until an answer, a
    /// non-retryable error, an attempt that may have applied when `retry` is `UntilSent`, or
    /// the deadline.
    async fn run(&mut self, args: &[Vec<u8>], retry: Retry, deadline: Instant) -> Run {
        let started = Instant::now();
        let mut delay = self.options.min_backoff;
        let mut last = String::from("no attempt made");
        let mut maybe_applied = false;
        let mut answered = false;
        let mut leader = None;
        let mut redirected_last = false;
        loop {
            let address = self.addresses[self.current].clone();
            let mut redirected = false;
            match self.attempt(&address, args, deadline, true).await {
                Attempt::Answer(Reply::Error(text)) => {
                    return Run {
                        result: Err(Failure::Reply(text)),
                        maybe_applied,
                    };
                }
                Attempt::Answer(reply) => {
                    return Run {
                        result: Ok(reply),
                        maybe_applied,
                    };
                }
                Attempt::Redirected => {
                    redirected = true;
                    answered = true;
                }
                Attempt::NotSent(reason) => {
                    last = reason;
                    self.next_address();
                }
                Attempt::Lost(reason) => {
                    maybe_applied = true;
                    last = reason;
                    self.next_address();
                }
                Attempt::Refused {
                    text,
                    maybe_applied: may,
                } => {
                    answered = true;
                    maybe_applied |= may;
                    if let Some(target) = moved_target(&text) {
                        redirected = self.go_to(target) != address;
                    } else {
                        match self.ask_leader(&address, deadline).await {
                            Some((id, Some(client))) if client != address => {
                                leader = Some(id);
                                self.go_to(&client);
                                redirected = true;
                            }
                            Some((id, _)) => {
                                leader = Some(id);
                                self.next_address();
                            }
                            None => self.next_address(),
                        }
                    }
                    last = text;
                }
            }
            if maybe_applied && retry == Retry::UntilSent {
                return Run {
                    result: Err(Failure::Reply(last)),
                    maybe_applied,
                };
            }
            // A first redirect is followed at once; anything else waits (two nodes naming
            // each other must not spin).
            let pause = !redirected || redirected_last;
            redirected_last = redirected;
            let now = Instant::now();
            if now >= deadline || (pause && now + delay > deadline) {
                let waited = now - started;
                let result = Err(if answered {
                    Failure::NoLeader { leader, waited, last }
                } else {
                    Failure::Unreachable { waited, last }
                });
                return Run { result, maybe_applied };
            }
            if pause {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(self.options.max_backoff);
            }
        }
    }

    /// One attempt of `args` on `address`. With `discover`, a new connection first asks
    /// `RAFT LEADER` and redirects to the leader if that is another node.
    async fn attempt(&mut self, address: &str, args: &[Vec<u8>], deadline: Instant, discover: bool) -> Attempt {
        let wait = self.wait(deadline);
        let mut connection = match self.connections.remove(address) {
            Some(connection) => connection,
            None => {
                let connect = Client::connect_tls(address, self.options.password.as_deref(), self.options.tls.as_ref());
                let mut connection = match tokio::time::timeout(wait, connect).await {
                    Ok(Ok(connection)) => connection,
                    // AUTH refused: a final answer.
                    Ok(Err(ClientError::Server(text))) => return Attempt::Answer(Reply::Error(text)),
                    Ok(Err(error)) => return Attempt::NotSent(format!("{address}: {error}")),
                    Err(_) => return Attempt::NotSent(format!("{address}: no connection within {wait:?}")),
                };
                if discover {
                    let leader = match tokio::time::timeout(wait, connection.call(&["RAFT", "LEADER"])).await {
                        Ok(Ok(reply)) => leader_of(&reply),
                        Ok(Err(error)) => return Attempt::NotSent(format!("{address}: {error}")),
                        Err(_) => return Attempt::NotSent(format!("{address}: no answer within {wait:?}")),
                    };
                    if let Some((_, Some(client))) = leader
                        && client != address
                    {
                        self.connections.insert(address.to_string(), connection);
                        self.go_to(&client);
                        return Attempt::Redirected;
                    }
                }
                connection
            }
        };
        // Once the command is on its way, a lost answer may hide an effect; the connection
        // goes back into the pool only after a whole reply was read.
        match tokio::time::timeout(wait, connection.call(args)).await {
            Ok(Ok(reply)) => {
                self.connections.insert(address.to_string(), connection);
                match reply {
                    Reply::Error(text) if RETRYABLE.contains(&reply_code(&text)) => Attempt::Refused {
                        maybe_applied: outcome_unknown(&text),
                        text,
                    },
                    reply => Attempt::Answer(reply),
                }
            }
            Ok(Err(error)) => Attempt::Lost(format!("{address}: {error}")),
            Err(_) => Attempt::Lost(format!("{address}: no answer within {wait:?}")),
        }
    }

    /// `RAFT LEADER` on `address`: the leader's id and client address, as far as it knows.
    async fn ask_leader(&mut self, address: &str, deadline: Instant) -> Option<(u64, Option<String>)> {
        let wait = self.wait(deadline);
        let mut connection = self.connections.remove(address)?;
        let reply = tokio::time::timeout(wait, connection.call(&["RAFT", "LEADER"]))
            .await
            .ok()?
            .ok()?;
        self.connections.insert(address.to_string(), connection);
        leader_of(&reply)
    }

    /// How long the next network wait may take.
    fn wait(&self, deadline: Instant) -> Duration {
        let left = deadline.saturating_duration_since(Instant::now());
        self.options.request_timeout.min(left).max(Duration::from_millis(10))
    }

    fn next_address(&mut self) {
        self.current = (self.current + 1) % self.addresses.len();
    }

    /// Makes `address` the current one (added if new); returns it.
    fn go_to(&mut self, address: &str) -> String {
        self.current = match self.addresses.iter().position(|a| a == address) {
            Some(i) => i,
            None => {
                self.addresses.push(address.to_string());
                self.addresses.len() - 1
            }
        };
        address.to_string()
    }
}

/// What the command table says about a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// No effect on the data or the cluster.
    Read,
    /// Changes the data (table flag `write`).
    Write,
    /// Changes the cluster (`admin`), a `SESSION` command, or unknown here: sent without a
    /// session, never resent once it may have taken effect.
    Other,
}

fn kind(args: &[Vec<u8>]) -> Kind {
    if args[0].eq_ignore_ascii_case(b"SESSION") {
        return Kind::Other;
    }
    match command::resolve(args) {
        Ok(spec) if spec.has(Flag::Write) => Kind::Write,
        Ok(spec) if spec.has(Flag::Admin) => Kind::Other,
        Ok(_) => Kind::Read,
        // Let the node answer the error (unknown command, arity) without a session.
        Err(_) => Kind::Other,
    }
}

fn into_result(run: Run) -> Result<Reply, ClusterError> {
    match run.result {
        Ok(reply) => Ok(reply),
        Err(failure) if run.maybe_applied => Err(ClusterError::OutcomeUnknown(failure.to_string())),
        Err(failure) => Err(failure.into()),
    }
}

/// `RAFT LEADER`'s `[id, raft address, client address]`: the id, and the client address if
/// the leader has one.
fn leader_of(reply: &Reply) -> Option<(u64, Option<String>)> {
    let Reply::Array(items) = reply else {
        return None;
    };
    let [Reply::Integer(id), _, Reply::Bulk(client)] = items.as_slice() else {
        return None;
    };
    let id = u64::try_from(*id).ok()?;
    let client = String::from_utf8(client.clone()).ok().filter(|c| !c.is_empty());
    Some((id, client))
}

/// The address of `-MOVED slot host:port` and `-ASK slot host:port`.
fn moved_target(text: &str) -> Option<&str> {
    let mut words = text.split(' ');
    match (words.next(), words.next(), words.next()) {
        (Some("MOVED" | "ASK"), Some(_slot), Some(address)) if !address.is_empty() => Some(address),
        _ => None,
    }
}

/// Whether a `-TRYAGAIN` reply says the write may have taken effect (README: "one whose write
/// may or may not have taken effect reads `-TRYAGAIN outcome unknown: ...`").
pub(super) fn outcome_unknown(text: &str) -> bool {
    text.strip_prefix("TRYAGAIN ")
        .is_some_and(|rest| rest.starts_with("outcome unknown"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<Vec<u8>> {
        text.split(' ').map(|s| s.as_bytes().to_vec()).collect()
    }

    #[test]
    fn the_command_table_decides_what_is_a_write() {
        assert_eq!(kind(&args("GET k")), Kind::Read);
        assert_eq!(kind(&args("RAFT STATUS")), Kind::Read);
        assert_eq!(kind(&args("incr k")), Kind::Write);
        assert_eq!(kind(&args("CAS k IFABSENT SET v")), Kind::Write);
        assert_eq!(kind(&args("RAFT PROMOTE 4")), Kind::Other);
        assert_eq!(kind(&args("SESSION NEW")), Kind::Other);
        assert_eq!(kind(&args("NOSUCH k")), Kind::Other);
    }

    #[test]
    fn structured_replies() {
        let leader = Reply::Array(vec![
            Reply::Integer(3),
            Reply::text("127.0.0.1:7380"),
            Reply::text("127.0.0.1:7379"),
        ]);
        assert_eq!(leader_of(&leader), Some((3, Some("127.0.0.1:7379".to_string()))));
        let no_client = Reply::Array(vec![Reply::Integer(3), Reply::text("r"), Reply::text("")]);
        assert_eq!(leader_of(&no_client), Some((3, None)));
        assert_eq!(leader_of(&Reply::Error("TRYAGAIN no leader".into())), None);
        assert_eq!(moved_target("MOVED 0 127.0.0.1:7000"), Some("127.0.0.1:7000"));
        assert_eq!(moved_target("TRYAGAIN MOVED"), None);
        assert!(outcome_unknown("TRYAGAIN outcome unknown: the leader stepped down"));
        assert!(!outcome_unknown("TRYAGAIN no leader is known"));
        assert!(!outcome_unknown("ERR outcome unknown"));
        assert_eq!(
            Failure::Reply("SESSIONEXPIRED session 4 expired".into()).code(),
            Some("SESSIONEXPIRED")
        );
    }
}
