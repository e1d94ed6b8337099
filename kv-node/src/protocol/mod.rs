//! The client port: RESP2, so redis-cli, redis-py and redis-benchmark work unchanged.
//! `HELLO 3` switches a connection to RESP3, which for the replies here differs only in nil
//! (`_`) and maps (`%`); redis-py 8 asks for it by default.
//!
//! - [`parser`]: incremental parsing of requests (pipelined arrays of bulk strings, or inline
//!   commands) and of replies, within [`ParseLimits`].
//! - [`command`]: the command table, from arguments to an [`Action`](command::Action).
//! - [`render`]: from a store response to a reply.
//! - [`auth`]: password checks (constant time, slowed and closed after repeated failures).
//! - [`pubsub`]: pub/sub, keyspace notifications and `WATCHKEYS` on a connection.
//! - [`session`]: one connection: authentication, read mode, and pipelines executed in order,
//!   with consecutive writes proposed together and consecutive reads sharing one read barrier.
//! - [`transaction`]: `MULTI` / `EXEC` / `WATCH`: a transaction is one Raft log entry.
//!
//! Malformed input is answered with `-ERR Protocol error: ...` and the connection is closed.
//! Errors from the cluster map to Redis codes at this edge: no leader, an unreachable leader,
//! a stopping node or a timeout are `-TRYAGAIN` (retry later, possibly elsewhere); invalid
//! commands are `-ERR`; a missing or wrong password `-NOAUTH` / `-WRONGPASS`.

pub mod auth;
mod clients;
pub mod command;
mod cursors;
pub mod glob;
pub mod parser;
pub mod pubsub;
pub mod render;
pub mod reply;
mod session;
mod transaction;

use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;

use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;

use kv_core::command::Key;
use kv_core::wire::OpError;

pub use parser::ParseLimits;
pub use parser::ProtocolError;
pub use reply::Reply;

use crate::node::Node;
use crate::tls::Stream;
use command::CommandError;

/// The client port of a node: state its connections share. [`ClientPort::serve`] serves one
/// connection; the composition root runs the accept loop.
#[derive(Debug)]
pub struct ClientPort {
    node: Node,
    limits: ParseLimits,
    next_client_id: AtomicU64,
    /// One permit per client connection allowed (`maxclients`).
    slots: Arc<Semaphore>,
    /// The open connections (`CLIENT LIST`, `CLIENT KILL`).
    clients: clients::Clients,
    /// `CLIENT PAUSE` of this node's connections.
    pause: clients::Pause,
}

impl ClientPort {
    /// The client port of `node`.
    pub fn new(node: Node) -> Self {
        let limits = ParseLimits {
            max_bulk_len: node.options().max_bulk_len,
            ..ParseLimits::default()
        };
        let slots = Arc::new(Semaphore::new(node.options().max_clients));
        ClientPort {
            node,
            limits,
            slots,
            next_client_id: AtomicU64::new(1),
            clients: clients::Clients::default(),
            pause: clients::Pause::default(),
        }
    }

    /// Serves one client connection until the client quits or disconnects, its input is
    /// malformed, it idles past `timeout`, or the node shuts down. Past `maxclients` open
    /// connections, a new one is answered `-ERR max number of clients reached` and closed, as
    /// Redis does.
    pub async fn serve(&self, mut stream: Stream) -> std::io::Result<()> {
        let metrics = self.node.metrics().clone();
        metrics.connections_accepted.add(1);
        let Ok(_slot) = self.slots.clone().try_acquire_owned() else {
            metrics.connections_rejected.add(1);
            stream.write_all(b"-ERR max number of clients reached\r\n").await?;
            return stream.shutdown().await;
        };
        metrics.connections_open.add(1);
        let result = session::run(stream, self).await;
        metrics.connections_open.add(-1);
        result
    }

    fn client_id(&self) -> u64 {
        self.next_client_id.fetch_add(1, Ordering::Relaxed)
    }
}

/// Runs arbitrary client bytes through everything that parses them: requests one after
/// another (each through the command table, with its error replies encoded), and the same
/// bytes as a reply. Never panics; the fuzz target and the corpus replay test call it.
pub fn check_input(input: &[u8]) {
    let limits = ParseLimits {
        max_bulk_len: 4096,
        max_array_len: 1024,
        max_inline_len: 4096,
        max_depth: 8,
    };
    let cursor_key = |cursor: &[u8]| -> Result<Option<Key>, CommandError> {
        std::str::from_utf8(cursor)
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .map(|n| Some(n.to_be_bytes().to_vec()))
            .ok_or(CommandError::InvalidCursor)
    };
    let mut rest = input;
    let mut out = Vec::new();
    while let Ok(Some((args, used))) = parser::parse_request(rest, &limits) {
        if !args.is_empty()
            && let Err(e) = command::parse(&args, &cursor_key)
        {
            Reply::Error(format!("ERR {e}")).encode(&mut out);
        }
        rest = &rest[used..];
    }
    let mut rest = input;
    while let Ok(Some((reply, used))) = parser::parse_reply(rest, &limits) {
        reply.encode_as(&mut out, true);
        rest = &rest[used..];
    }
}

/// The reply for a failed operation: `-ERR` for an invalid one, `-TRYAGAIN` for every error
/// that a retry (possibly on another node) may cure. An operation that may have taken effect
/// says so in words that start with `outcome unknown`.
pub fn op_error(error: &OpError) -> Reply {
    match error {
        OpError::Rejected(text) => Reply::Error(format!("ERR {text}")),
        OpError::NotLeader { .. }
        | OpError::NoLeader
        | OpError::Unavailable(_)
        | OpError::Timeout(_)
        | OpError::OutcomeUnknown(_) => Reply::Error(format!("TRYAGAIN {error}")),
    }
}
