//! The client port: RESP2, so redis-cli, redis-py and redis-benchmark work unchanged.
//! `HELLO 3` switches a connection to RESP3, which for the replies here differs only in nil
//! (`_`) and maps (`%`); redis-py 8 asks for it by default.
//!
//! - [`parser`]: incremental parsing of requests (pipelined arrays of bulk strings, or inline
//!   commands) and of replies, within [`ParseLimits`].
//! - [`command`]: the command table, from arguments to an [`Action`](command::Action).
//! - [`session`]: one connection: authentication, read mode, and pipelines executed in order,
//!   with consecutive writes proposed together and consecutive reads sharing one read barrier.
//!
//! Malformed input is answered with `-ERR Protocol error: ...` and the connection is closed.
//! Errors from the cluster map to Redis codes at this edge: no leader, an unreachable leader,
//! a stopping node or a timeout are `-TRYAGAIN` (retry later, possibly elsewhere); invalid
//! commands are `-ERR`; a missing or wrong password `-NOAUTH` / `-WRONGPASS`.

pub mod command;
pub mod glob;
pub mod parser;
pub mod reply;
mod session;

use std::collections::HashMap;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;

use tokio::net::TcpListener;

pub use parser::ParseLimits;
pub use parser::ProtocolError;
pub use reply::Reply;

use crate::node::Node;
use crate::node::NodeError;
use command::CommandError;
use kv_core::command::Key;

/// SCAN cursors that stand for a key too long to encode in a number, and are remembered here.
/// Numbered from here up, above every encodable cursor.
const CURSOR_TABLE_BASE: u64 = 1 << 62;
/// Most cursors remembered; the oldest are forgotten first.
const CURSOR_TABLE_LEN: usize = 65_536;

/// State shared by a node's client connections.
#[derive(Debug)]
pub struct Shared {
    node: Node,
    limits: ParseLimits,
    next_client_id: AtomicU64,
    cursors: Mutex<CursorTable>,
}

#[derive(Debug, Default)]
struct CursorTable {
    keys: HashMap<u64, Key>,
    order: VecDeque<u64>,
    next: u64,
}

impl Shared {
    fn new(node: Node) -> Self {
        let limits = ParseLimits {
            max_bulk_len: node.options().max_bulk_len,
            ..ParseLimits::default()
        };
        Shared {
            node,
            limits,
            next_client_id: AtomicU64::new(1),
            cursors: Mutex::default(),
        }
    }

    fn client_id(&self) -> u64 {
        self.next_client_id.fetch_add(1, Ordering::Relaxed)
    }

    /// A SCAN cursor standing for "after `key`": keys of up to 7 bytes are encoded in the
    /// number itself (a 0x01 byte, then the key, read as a big-endian integer); longer keys
    /// get a number from the cursor table.
    fn cursor_for(&self, key: &[u8]) -> String {
        if key.len() <= 7 {
            let value = key.iter().fold(1u64, |n, &b| (n << 8) | u64::from(b));
            return value.to_string();
        }
        let mut table = self.cursors.lock().expect("cursor table lock poisoned");
        let id = CURSOR_TABLE_BASE + table.next;
        table.next += 1;
        table.keys.insert(id, key.to_vec());
        table.order.push_back(id);
        if table.order.len() > CURSOR_TABLE_LEN
            && let Some(old) = table.order.pop_front()
        {
            table.keys.remove(&old);
        }
        id.to_string()
    }

    /// The key a cursor stands for: `None` for `0` (start).
    fn cursor_key(&self, cursor: &[u8]) -> Result<Option<Key>, CommandError> {
        let value: u64 = std::str::from_utf8(cursor)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or(CommandError::InvalidCursor)?;
        if value == 0 {
            return Ok(None);
        }
        if value >= CURSOR_TABLE_BASE {
            let table = self.cursors.lock().expect("cursor table lock poisoned");
            return table
                .keys
                .get(&value)
                .cloned()
                .map(Some)
                .ok_or(CommandError::InvalidCursor);
        }
        let bytes = value.to_be_bytes();
        let start = bytes.iter().position(|&b| b != 0).unwrap_or(7);
        match &bytes[start..] {
            [1, key @ ..] => Ok(Some(key.to_vec())),
            _ => Err(CommandError::InvalidCursor),
        }
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

/// The reply for a cluster error: retryable ones are `-TRYAGAIN`.
pub fn node_error(error: &NodeError) -> Reply {
    match error {
        NodeError::Rejected(text) => Reply::Error(format!("ERR {text}")),
        NodeError::NotLeader { .. } | NodeError::NoLeader | NodeError::Unavailable(_) | NodeError::Timeout(_) => {
            Reply::Error(format!("TRYAGAIN {error}"))
        }
    }
}

/// Accepts client connections until the node shuts down.
pub async fn serve(listener: TcpListener, node: Node) {
    let shared = Arc::new(Shared::new(node.clone()));
    node.accept_until_shutdown(listener, "client", move |stream, _| {
        let shared = shared.clone();
        async move {
            let metrics = shared.node.metrics().clone();
            metrics.connections_accepted.add(1);
            metrics.connections_open.add(1);
            let result = session::run(stream, &shared).await;
            metrics.connections_open.add(-1);
            result
        }
    })
    .await;
}
