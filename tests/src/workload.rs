//! The clients: registers (GET / SET / CAS), a counter (INCR) and appends (APPEND of unique
//! tokens, GET), each client through its own node, moving on to the next member when its node
//! fails.
//!
//! Register histories must stay decidable by the linearizability checker, so keys are
//! short-lived: a register key is `r<slot>.<window>`, with [`REGISTER_SLOTS`] slots and a new
//! window every [`WINDOW_MS`]; at most the register clients (4) touch a key at once, every
//! written value is unique, and an operation whose outcome is unknown stays pending only in
//! its own window's key.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::RwLock;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;
use std::time::Duration;

use kv_node::client::Client;
use kv_node::client::ClientError;
use kv_node::protocol::Reply;
use tokio::sync::watch;

use crate::history::Call;
use crate::history::History;
use crate::history::Op;
use crate::history::Outcome;
use crate::history::Ret;
use crate::rng::SeededRng;

/// Register keys live at once.
pub const REGISTER_SLOTS: u64 = 3;
/// How long a register key is used, in milliseconds.
pub const WINDOW_MS: u64 = 2_000;
/// Append keys.
pub const APPEND_KEYS: u64 = 3;
/// The counter's key.
pub const COUNTER_KEY: &str = "counter";
/// How long a client waits for one reply before the outcome is unknown.
pub const OP_TIMEOUT: Duration = Duration::from_secs(5);

/// The client addresses of the current members, which the nemesis updates.
pub type Members = Arc<RwLock<Vec<(u64, String)>>>;

/// What kind of client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// GET / SET / CAS on register keys.
    Register,
    /// INCR on one counter.
    Counter,
    /// APPEND / GET on a few keys.
    Append,
}

/// A test-only fault of the client side, to show that the checkers catch what they should.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Planted {
    /// None.
    #[default]
    None,
    /// Reads go out on `READONLY` connections: the node answers from its own state without
    /// the read-index check (stale reads).
    StaleReads,
    /// An INCR or APPEND whose outcome is unknown is sent again, without a session, until it
    /// is answered, and recorded as one acknowledged operation: the double apply that client
    /// sessions exist to prevent.
    BlindRetries,
}

/// One client's connection to some member.
struct Connection {
    members: Members,
    at: usize,
    current: Option<(u64, Client)>,
    planted: Planted,
}

impl Connection {
    /// The open connection, or a new one to the next member.
    async fn get(&mut self) -> Option<(u64, &mut Client)> {
        if self.current.is_none() {
            let members = self.members.read().expect("members lock").clone();
            if members.is_empty() {
                return None;
            }
            let (id, addr) = members[self.at % members.len()].clone();
            self.at += 1;
            let connect = async {
                let mut client = Client::connect(&addr, None).await.ok()?;
                if self.planted == Planted::StaleReads {
                    client.call(&["READONLY"]).await.ok()?;
                }
                Some(client)
            };
            let client = tokio::time::timeout(OP_TIMEOUT, connect).await.ok().flatten()?;
            self.current = Some((id, client));
        }
        self.current.as_mut().map(|(id, client)| (*id, client))
    }

    /// Forgets the connection; the next call goes to the next member.
    fn drop_connection(&mut self) {
        self.current = None;
    }
}

/// The running clients.
pub struct Workload {
    stop: watch::Sender<bool>,
    handles: Vec<tokio::task::JoinHandle<()>>,
    sessions_opened: Arc<AtomicU64>,
}

impl Workload {
    /// Starts `registers` register clients, `counters` counter clients and `appenders` append
    /// clients, recording into `history`. Client `p` starts at member `p`.
    pub fn start(
        members: Members,
        history: History,
        seed: u64,
        (registers, counters, appenders): (u64, u64, u64),
        planted: Planted,
    ) -> Workload {
        let (stop, watch) = watch::channel(false);
        let sessions_opened = Arc::new(AtomicU64::new(0));
        let roles = std::iter::repeat_n(Role::Register, registers as usize)
            .chain(std::iter::repeat_n(Role::Counter, counters as usize))
            .chain(std::iter::repeat_n(Role::Append, appenders as usize));
        let handles = roles
            .enumerate()
            .map(|(process, role)| {
                let process = process as u64;
                let connection = Connection {
                    members: members.clone(),
                    at: process as usize,
                    current: None,
                    planted,
                };
                let client = ClientLoop {
                    process,
                    role,
                    connection,
                    history: history.clone(),
                    rng: SeededRng::new(seed ^ (process + 1).wrapping_mul(0xA24B_AED4_963E_E407)),
                    seq: 0,
                    last_seen: HashMap::new(),
                    session: SessionState::None,
                    sessions_opened: sessions_opened.clone(),
                };
                tokio::spawn(client.run(watch.clone()))
            })
            .collect();
        Workload {
            stop,
            handles,
            sessions_opened,
        }
    }

    /// Client sessions the counter clients opened (0: the nodes have no `SESSION`).
    pub fn sessions_opened(&self) -> u64 {
        self.sessions_opened.load(Ordering::Relaxed)
    }

    /// Stops every client (an operation in flight finishes or times out first).
    pub async fn stop(self) {
        self.stop.send_replace(true);
        for handle in self.handles {
            let _ = handle.await;
        }
    }
}

struct ClientLoop {
    process: u64,
    role: Role,
    connection: Connection,
    history: History,
    rng: SeededRng,
    seq: u64,
    /// Register clients: the last value seen per key (the next CAS expects it).
    last_seen: HashMap<String, Option<String>>,
    /// Counter clients: the client session, once opened; `Unsupported` if the nodes have no
    /// `SESSION` command (then INCR runs plain, and an unknown outcome stays unknown).
    session: SessionState,
    sessions_opened: Arc<AtomicU64>,
}

/// A counter client's session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SessionState {
    /// Not opened yet.
    None,
    /// The nodes do not know `SESSION`.
    Unsupported,
    /// Session `id`; the next sequence number to use.
    Open { id: i64, next_seq: u64 },
}

/// How long a session write is retried (same id and seq) before its outcome stays unknown.
const SESSION_RETRY: Duration = Duration::from_secs(30);

impl ClientLoop {
    async fn run(mut self, stop: watch::Receiver<bool>) {
        while !*stop.borrow() {
            self.seq += 1;
            let (key, call) = self.next_call();
            match self.perform(&key, call).await {
                Some(Outcome::Ok(Ret::Read(value))) => {
                    self.last_seen.insert(key, value);
                }
                Some(Outcome::Ok(Ret::Write)) | Some(Outcome::Ok(Ret::Cas(true))) => {
                    // perform() stored the written value.
                }
                Some(Outcome::Ok(_)) => {}
                Some(Outcome::Fail(_)) | Some(Outcome::Info(_)) | None => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }

    fn next_call(&mut self) -> (String, Call) {
        let value = format!("p{}.{}", self.process, self.seq);
        match self.role {
            Role::Register => {
                let window = self.history.now() / 1_000_000 / WINDOW_MS;
                let key = format!("r{}.{window}", self.rng.below(REGISTER_SLOTS));
                let call = match self.rng.below(10) {
                    0..4 => Call::Read,
                    4..7 => Call::Write(value),
                    _ => Call::Cas {
                        expected: self.last_seen.get(&key).cloned().flatten(),
                        new: value,
                    },
                };
                (key, call)
            }
            Role::Counter => (COUNTER_KEY.to_string(), Call::Incr),
            Role::Append => {
                let key = format!("a{}", self.rng.below(APPEND_KEYS));
                let call = if self.rng.below(10) < 8 {
                    Call::Append(format!("{value},"))
                } else {
                    Call::Read
                };
                (key, call)
            }
        }
    }

    /// Runs one call and records it; `None` if no member could be reached (not recorded).
    async fn perform(&mut self, key: &str, call: Call) -> Option<Outcome> {
        if call == Call::Incr
            && self.session != SessionState::Unsupported
            && self.connection.planted != Planted::BlindRetries
        {
            return self.incr_in_session(key).await;
        }
        let args: Vec<String> = match &call {
            Call::Read => vec!["GET".into(), key.into()],
            Call::Write(v) => vec!["SET".into(), key.into(), v.clone()],
            Call::Cas { expected, new } => {
                let mut args = vec!["CAS".to_string(), key.to_string()];
                match expected {
                    Some(v) => args.extend(["IFEQ".to_string(), v.clone()]),
                    None => args.push("IFABSENT".to_string()),
                }
                args.extend(["SET".to_string(), new.clone()]);
                args
            }
            Call::Incr => vec!["INCR".into(), key.into()],
            Call::Append(token) => vec!["APPEND".into(), key.into(), token.clone()],
        };
        let Some((node, client)) = self.connection.get().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            return None;
        };
        let invoked_ns = self.history.now();
        let reply = tokio::time::timeout(OP_TIMEOUT, client.call(&args)).await;
        let (mut outcome, broken) = classify(&call, reply);
        if broken {
            self.connection.drop_connection();
        }
        if self.connection.planted == Planted::BlindRetries && matches!(call, Call::Incr | Call::Append(_)) {
            for _ in 0..20 {
                if !matches!(outcome, Outcome::Info(_)) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                let Some((_, client)) = self.connection.get().await else {
                    continue;
                };
                let reply = tokio::time::timeout(OP_TIMEOUT, client.call(&args)).await;
                let (again, broken) = classify(&call, reply);
                if broken {
                    self.connection.drop_connection();
                }
                // A refusal of the retry says nothing about the first send.
                if !matches!(again, Outcome::Fail(_)) {
                    outcome = again;
                }
            }
        }
        let completed_ns = self.history.now();
        if let (Outcome::Ok(Ret::Write | Ret::Cas(true)), Call::Write(v) | Call::Cas { new: v, .. }) = (&outcome, &call)
        {
            self.last_seen.insert(key.to_string(), Some(v.clone()));
        }
        self.history.push(Op {
            process: self.process,
            node,
            key: key.to_string(),
            call,
            invoked_ns,
            completed_ns,
            outcome: outcome.clone(),
        });
        Some(outcome)
    }
}

impl ClientLoop {
    /// Opens the client session; `false` if none could be opened now.
    async fn open_session(&mut self) -> bool {
        let Some((_, client)) = self.connection.get().await else {
            return false;
        };
        let reply = tokio::time::timeout(OP_TIMEOUT, client.call(&["SESSION", "NEW", "TTL", "600"])).await;
        match reply {
            Ok(Ok(Reply::Integer(id))) if id > 0 => {
                self.session = SessionState::Open { id, next_seq: 1 };
                self.sessions_opened.fetch_add(1, Ordering::Relaxed);
                true
            }
            Ok(Ok(Reply::Error(e))) if e.starts_with("ERR unknown command") => {
                self.session = SessionState::Unsupported;
                false
            }
            Ok(Ok(_)) => false,
            _ => {
                self.connection.drop_connection();
                false
            }
        }
    }

    /// One INCR through the client session: the same `(id, seq)` is sent (through any member)
    /// until a definite answer, so a lost answer is learned instead of left unknown. Recorded
    /// as one operation from the first send to the answer.
    async fn incr_in_session(&mut self, key: &str) -> Option<Outcome> {
        if self.session == SessionState::None && !self.open_session().await {
            if self.session == SessionState::Unsupported {
                return Box::pin(self.perform(key, Call::Incr)).await;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            return None;
        }
        let SessionState::Open { id, next_seq: seq } = self.session else {
            return None;
        };
        self.session = SessionState::Open { id, next_seq: seq + 1 };
        let args = [
            "SESSION".to_string(),
            "RUN".to_string(),
            id.to_string(),
            seq.to_string(),
            // One command at a time: every earlier seq has been answered or given up.
            (seq - 1).to_string(),
            "INCR".to_string(),
            key.to_string(),
        ];
        let invoked_ns = self.history.now();
        let mut node;
        let mut maybe_applied = false;
        let outcome = loop {
            let Some((at, client)) = self.connection.get().await else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            node = at;
            let reply = tokio::time::timeout(OP_TIMEOUT, client.call(&args)).await;
            let (outcome, broken) = match &reply {
                Ok(Ok(Reply::Error(e))) if e.starts_with("SESSIONEXPIRED") || e.starts_with("SESSIONSTALE") => {
                    // The cluster forgot this seq: a new session for the next INCR.
                    self.session = SessionState::None;
                    let outcome = if maybe_applied {
                        Outcome::Info(format!("the answer was lost and then: {e}"))
                    } else {
                        Outcome::Fail(e.clone())
                    };
                    break outcome;
                }
                _ => classify(&Call::Incr, reply),
            };
            if broken {
                self.connection.drop_connection();
            }
            match outcome {
                Outcome::Ok(ret) => break Outcome::Ok(ret),
                Outcome::Fail(e) if !e.starts_with("TRYAGAIN") => {
                    break if maybe_applied {
                        Outcome::Info(e)
                    } else {
                        Outcome::Fail(e)
                    };
                }
                Outcome::Info(e) | Outcome::Fail(e) => {
                    maybe_applied |= e.starts_with("TRYAGAIN outcome unknown") || broken;
                    if Duration::from_nanos(self.history.now() - invoked_ns) > SESSION_RETRY {
                        break if maybe_applied {
                            Outcome::Info(e)
                        } else {
                            Outcome::Fail(e)
                        };
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        };
        self.history.push(Op {
            process: self.process,
            node,
            key: key.to_string(),
            call: Call::Incr,
            invoked_ns,
            completed_ns: self.history.now(),
            outcome: outcome.clone(),
        });
        Some(outcome)
    }
}

/// How a reply ends the operation, and whether the connection is unusable.
pub fn classify(
    call: &Call,
    reply: Result<Result<Reply, ClientError>, tokio::time::error::Elapsed>,
) -> (Outcome, bool) {
    let unknown = |why: String| {
        if call.is_write() {
            Outcome::Info(why)
        } else {
            // A read that did not answer had no effect.
            Outcome::Fail(why)
        }
    };
    let reply = match reply {
        Err(_) => return (unknown(format!("no reply within {OP_TIMEOUT:?}")), true),
        Ok(Err(error)) => return (unknown(error.to_string()), true),
        Ok(Ok(reply)) => reply,
    };
    let ok = match (call, &reply) {
        (Call::Read, Reply::Bulk(v)) => Some(Ret::Read(Some(String::from_utf8_lossy(v).into_owned()))),
        (Call::Read, Reply::Nil) => Some(Ret::Read(None)),
        (Call::Write(_), Reply::Simple(s)) if s == "OK" => Some(Ret::Write),
        (Call::Cas { .. }, Reply::Array(items)) => match items.first() {
            Some(Reply::Integer(1)) => Some(Ret::Cas(true)),
            Some(Reply::Integer(0)) => Some(Ret::Cas(false)),
            _ => None,
        },
        (Call::Incr, Reply::Integer(n)) => Some(Ret::Incr(*n)),
        (Call::Append(_), Reply::Integer(n)) => Some(Ret::Append(*n)),
        _ => None,
    };
    if let Some(ret) = ok {
        return (Outcome::Ok(ret), false);
    }
    match reply {
        // Only "outcome unknown" may have taken effect; every other refusal did not.
        Reply::Error(e) if e.starts_with("TRYAGAIN outcome unknown") => (unknown(e), false),
        Reply::Error(e) if e.starts_with("TRYAGAIN") || e.starts_with("ERR") => (Outcome::Fail(e), false),
        other => (unknown(format!("unexpected reply {other:?}")), true),
    }
}
