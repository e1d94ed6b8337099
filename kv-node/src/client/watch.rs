//! [`Watch`]: every change to keys under a prefix after a revision, in commit order, exactly
//! once, across node failures. The one implementation of the resume logic: `kv watch` and
//! Python's `Client.watch` / `AsyncClient.watch` use it.
//!
//! ## What it guarantees
//!
//! It runs `WATCHKEYS prefix SINCE revision` (README, "Pub/sub, keyspace notifications and
//! watches") on one node and yields the `change` pushes. When that connection fails (the node
//! is killed, a `PING` sent after `request_timeout` of silence goes unanswered, the node drops
//! a subscriber that fell behind), it resumes on the next address from the last change
//! yielded: nothing is missed, repeated or reordered. Every replica applies the same log, so
//! every node reports the same changes for a revision in the same order.
//!
//! One revision (a log entry) may carry several changes (`MSET`, a transaction). So the
//! resume point is not just the last revision: [`Cursor`] keeps the last revision `r` and how
//! many of its changes were yielded, `n`. If `n > 0` it resumes with `SINCE r-1` and skips the
//! first `n` changes of `r`; a connection lost in the middle of an entry's changes thus neither
//! loses nor repeats the rest.
//!
//! ## How it fails
//!
//! - [`WatchError::Compacted`] when, in a round over every address, some node answered
//!   `-COMPACTED` and none took the watch (each node keeps its own bounded history: one
//!   restarted from a snapshot may lack what another still has, so the others are asked).
//!   Re-read with `GETREV`/`SCAN`, then watch from the revision read.
//! - [`WatchError::Failed`] with [`Failure::Reply`] for any other error reply to `WATCHKEYS`
//!   (a bad prefix, `NOAUTH`), and [`Failure::Unreachable`] when no node took the watch for
//!   `retry_for` (backing off from `min_backoff` to `max_backoff` between attempts).
//!
//! Tested by the unit tests below (the cursor), `kv-node/tests/cluster_client.rs` (fake nodes:
//! a resume in the middle of an entry's changes, `COMPACTED` everywhere) and from Python
//! (`bindings/python/tests/test_watch.py`: a watcher whose node is killed with SIGKILL sees
//! every write exactly once, in order).

use std::time::Duration;

use tokio::time::Instant;

use super::cluster::ClusterClient;
use super::cluster::ClusterOptions;
use super::cluster::Failure;
use super::cluster::is_retryable;
use super::connection::Client;
use super::connection::ClientError;
use crate::protocol::Reply;

/// One change a watch reports: `["change", prefix, revision, key, event, value]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The revision (log index) of the write that made it.
    pub revision: u64,
    /// The key (`""` for a `flushdb`).
    pub key: Vec<u8>,
    /// What happened, named like keyspace events: `set`, `del`, `expired`, `flushdb`, ...
    pub event: String,
    /// The key's value after the change (`None` once it is gone).
    pub value: Option<Vec<u8>>,
}

/// Why a watch ended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WatchError {
    /// The history after `since` is gone on every node asked; `oldest` is the oldest revision
    /// a watch can start from (the largest any of them named).
    #[error("revision {since} is compacted; the oldest available is {oldest}")]
    Compacted {
        /// The revision the watch asked to start after.
        since: u64,
        /// The oldest revision available.
        oldest: u64,
    },
    /// Refused (an error reply), or no node took the watch in time.
    #[error(transparent)]
    Failed(#[from] Failure),
}

/// Where a watch stands: what to ask for on a new connection, and which repeats to skip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// Every change up to this revision has been yielded, except `partial` ones of the next.
    since: Option<u64>,
    /// `Some((r, n))`: `n` changes of revision `r` were yielded (every one before `r` too).
    partial: Option<(u64, usize)>,
    /// Changes of `partial`'s revision to skip on this connection (already yielded).
    skip: usize,
}

impl Cursor {
    /// A cursor at `since` (`None`: the node's current revision when the watch starts).
    pub fn new(since: Option<u64>) -> Cursor {
        Cursor {
            since,
            partial: None,
            skip: 0,
        }
    }

    /// The revision to send with `SINCE` on a new connection (`None`: no `SINCE`), and resets
    /// which changes to skip on it.
    pub fn resume(&mut self) -> Option<u64> {
        match self.partial {
            Some((revision, yielded)) => {
                self.skip = yielded;
                Some(revision.saturating_sub(1))
            }
            None => {
                self.skip = 0;
                self.since
            }
        }
    }

    /// A new connection's watch starts after `revision` (its `watchkeys` reply).
    pub fn started(&mut self, revision: u64) {
        if self.since.is_none() && self.partial.is_none() {
            self.since = Some(revision);
        }
    }

    /// Whether a change at `revision` is new (to yield) or a repeat (to skip); records it.
    pub fn accept(&mut self, revision: u64) -> bool {
        match self.partial {
            Some((r, n)) if r == revision => {
                if self.skip > 0 {
                    self.skip -= 1;
                    return false;
                }
                self.partial = Some((r, n + 1));
                true
            }
            Some((r, _)) if revision < r => false,
            _ => {
                // A later revision: every change of the previous one has been seen.
                self.skip = 0;
                if let Some((r, _)) = self.partial {
                    self.since = Some(r);
                }
                self.partial = Some((revision, 1));
                true
            }
        }
    }

    /// The last revision yielded, or the one the watch started after.
    pub fn revision(&self) -> Option<u64> {
        self.partial.map(|(r, _)| r).or(self.since)
    }
}

/// A resumable watch of a prefix over a cluster (see the module docs). One change at a time:
/// [`Watch::next`].
#[derive(Debug)]
pub struct Watch {
    addresses: Vec<String>,
    current: usize,
    options: ClusterOptions,
    prefix: Vec<u8>,
    cursor: Cursor,
    connection: Option<Client>,
    /// When the node was last heard from, and whether a `PING` is out since.
    heard: Instant,
    pinged: bool,
    /// While reconnecting: since when, the next attempt's time, the pause after it, and in
    /// the current round over the addresses, how many were tried and the largest oldest
    /// revision of those that answered `-COMPACTED`.
    failing_since: Option<Instant>,
    next_attempt: Instant,
    delay: Duration,
    round: (usize, Option<u64>),
    last_failure: String,
}

/// How a connection attempt ended.
enum Start {
    Watching(Client),
    Compacted { oldest: u64 },
    Refused(String),
    Failed(String),
}

impl Watch {
    /// A watch of keys starting with `prefix` (`""`: all), for changes after `since` (`None`:
    /// from the current revision), over the nodes at `addresses`. It connects on the first
    /// [`Watch::next`].
    pub fn new<S: AsRef<str>>(
        addresses: impl IntoIterator<Item = S>,
        options: ClusterOptions,
        prefix: &[u8],
        since: Option<u64>,
    ) -> Result<Watch, WatchError> {
        let mut unique: Vec<String> = Vec::new();
        for address in addresses {
            let address = address.as_ref().trim();
            if !address.is_empty() && !unique.iter().any(|a| a == address) {
                unique.push(address.to_string());
            }
        }
        if unique.is_empty() {
            return Err(Failure::Invalid("a watch needs at least one node address".to_string()).into());
        }
        let now = Instant::now();
        Ok(Watch {
            addresses: unique,
            current: 0,
            delay: options.min_backoff,
            options,
            prefix: prefix.to_vec(),
            cursor: Cursor::new(since),
            connection: None,
            heard: now,
            pinged: false,
            failing_since: None,
            next_attempt: now,
            round: (0, None),
            last_failure: String::from("no attempt made"),
        })
    }

    /// The last revision yielded, or the one the watch started after (`None` before it has
    /// started without `since`). A new watch `SINCE` it misses nothing.
    pub fn revision(&self) -> Option<u64> {
        self.cursor.revision()
    }

    /// The address of the node it watches on (or will try next).
    pub fn address(&self) -> &str {
        &self.addresses[self.current]
    }

    /// Whether it is connected and watching.
    pub fn is_connected(&self) -> bool {
        self.connection.is_some()
    }

    /// The next change; it waits as long as it takes (see [`Watch::next_until`]).
    pub async fn next(&mut self) -> Result<Change, WatchError> {
        loop {
            let far = Instant::now() + Duration::from_secs(3600);
            if let Some(change) = self.next_until(far).await? {
                return Ok(change);
            }
        }
    }

    /// The next change, or `None` if none came by `deadline` (the watch goes on: call again).
    /// Stopping at the deadline loses nothing, so a caller may poll with short deadlines (to
    /// notice Ctrl-C, say). A connection attempt in progress may run past the deadline by up
    /// to `request_timeout`.
    pub async fn next_until(&mut self, deadline: Instant) -> Result<Option<Change>, WatchError> {
        loop {
            if self.connection.is_none() {
                let now = Instant::now();
                if now < self.next_attempt {
                    if deadline <= self.next_attempt {
                        tokio::time::sleep_until(deadline).await;
                        return Ok(None);
                    }
                    tokio::time::sleep_until(self.next_attempt).await;
                }
                self.connect().await?;
                continue;
            }
            // Silence for `request_timeout` is answered with a PING; silence for as long
            // again after it loses the connection.
            let silent_until = self.heard + self.options.request_timeout;
            let connection = self.connection.as_mut().expect("checked above");
            // `read_reply` keeps what it has read in the connection's buffer: stopping at
            // the deadline loses nothing.
            match tokio::time::timeout_at(silent_until.min(deadline), connection.read_reply()).await {
                Ok(Ok(reply)) => {
                    self.heard = Instant::now();
                    self.pinged = false;
                    match self.change(reply) {
                        Ok(Some(change)) => return Ok(Some(change)),
                        Ok(None) => {}
                        Err(reason) => self.lose(reason),
                    }
                }
                Ok(Err(e)) => {
                    let reason = format!("{}: {e}", self.address());
                    self.lose(reason);
                }
                Err(_) if Instant::now() >= silent_until => self.ping().await,
                Err(_) => return Ok(None),
            }
        }
    }

    /// After a silence: a PING (answered `["pong", ""]` in subscribed mode), or, if one is
    /// already out, the connection is lost.
    async fn ping(&mut self) {
        let address = self.address().to_string();
        let wait = self.options.request_timeout;
        if self.pinged {
            self.lose(format!("{address}: no answer to PING within {wait:?}"));
            return;
        }
        let Some(connection) = self.connection.as_mut() else {
            return;
        };
        connection.queue(&[b"PING"]);
        match tokio::time::timeout(wait, connection.flush()).await {
            Ok(Ok(())) => {
                self.pinged = true;
                self.heard = Instant::now();
            }
            _ => self.lose(format!("{address}: cannot send PING")),
        }
    }

    /// A reply on the watching connection: a change to yield, nothing (a pong, a repeat), or
    /// why the connection is no good.
    fn change(&mut self, reply: Reply) -> Result<Option<Change>, String> {
        let items = match reply {
            Reply::Array(items) | Reply::Push(items) => items,
            // PING's answer outside subscribed mode (RESP3).
            Reply::Simple(text) if text.eq_ignore_ascii_case("PONG") => return Ok(None),
            Reply::Error(text) => return Err(format!("{}: {text}", self.address())),
            other => return Err(format!("{}: unexpected {other:?}", self.address())),
        };
        match items.as_slice() {
            [
                Reply::Bulk(kind),
                _,
                Reply::Integer(revision),
                Reply::Bulk(key),
                Reply::Bulk(event),
                value,
            ] if kind == b"change" => {
                let revision = u64::try_from(*revision).map_err(|_| format!("a negative revision {revision}"))?;
                if !self.cursor.accept(revision) {
                    return Ok(None);
                }
                let value = match value {
                    Reply::Bulk(value) => Some(value.clone()),
                    _ => None,
                };
                Ok(Some(Change {
                    revision,
                    key: key.clone(),
                    event: String::from_utf8_lossy(event).into_owned(),
                    value,
                }))
            }
            [Reply::Bulk(kind), ..] if kind.eq_ignore_ascii_case(b"pong") => Ok(None),
            _ => Err(format!("{}: unexpected push {items:?}", self.address())),
        }
    }

    /// The connection failed: the next [`Watch::next_until`] resumes on the next address.
    fn lose(&mut self, reason: String) {
        self.connection = None;
        self.last_failure = reason;
        self.current = (self.current + 1) % self.addresses.len();
        self.failing_since.get_or_insert_with(Instant::now);
    }

    /// One attempt on the current address; on failure, moves on and schedules the next
    /// attempt (or gives up: see the module docs).
    async fn connect(&mut self) -> Result<(), WatchError> {
        let since = self.cursor.resume();
        let address = self.address().to_string();
        match self.start(&address, since).await {
            Start::Watching(connection) => {
                self.connection = Some(connection);
                self.heard = Instant::now();
                self.pinged = false;
                self.failing_since = None;
                self.delay = self.options.min_backoff;
                self.round = (0, None);
                return Ok(());
            }
            Start::Refused(text) => return Err(Failure::Reply(text).into()),
            Start::Compacted { oldest } => {
                self.round.1 = Some(self.round.1.map_or(oldest, |o| o.max(oldest)));
                self.lose(format!("{address}: revision {since:?} is compacted there"));
            }
            Start::Failed(reason) => self.lose(reason),
        }
        // A round over every address without a watch, where some node answered COMPACTED
        // (and the others no better): the history is gone.
        self.round.0 += 1;
        if self.round.0 >= self.addresses.len() {
            let (_, compacted) = std::mem::take(&mut self.round);
            if let Some(oldest) = compacted {
                self.failing_since = None;
                return Err(WatchError::Compacted {
                    since: since.unwrap_or(0),
                    oldest,
                });
            }
        }
        let now = Instant::now();
        let failing_since = *self.failing_since.get_or_insert(now);
        if now.duration_since(failing_since) >= self.options.retry_for {
            let waited = now.duration_since(failing_since);
            self.failing_since = None;
            return Err(Failure::Unreachable {
                waited,
                last: self.last_failure.clone(),
            }
            .into());
        }
        self.next_attempt = now + self.delay;
        self.delay = (self.delay * 2).min(self.options.max_backoff);
        Ok(())
    }

    /// Connects to `address` and starts `WATCHKEYS` there.
    async fn start(&mut self, address: &str, since: Option<u64>) -> Start {
        let wait = self.options.request_timeout;
        let connect = Client::connect_tls(address, self.options.password.as_deref(), self.options.tls.as_ref());
        let mut connection = match tokio::time::timeout(wait, connect).await {
            Ok(Ok(connection)) => connection,
            Ok(Err(ClientError::Server(text))) => return Start::Refused(text),
            Ok(Err(e)) => return Start::Failed(format!("{address}: {e}")),
            Err(_) => return Start::Failed(format!("{address}: no connection within {wait:?}")),
        };
        let mut args = vec![b"WATCHKEYS".to_vec(), self.prefix.clone()];
        if let Some(since) = since {
            args.extend([b"SINCE".to_vec(), since.to_string().into_bytes()]);
        }
        let reply = match tokio::time::timeout(wait, connection.call(&args)).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(e)) => return Start::Failed(format!("{address}: {e}")),
            Err(_) => return Start::Failed(format!("{address}: no answer within {wait:?}")),
        };
        match reply {
            Reply::Array(items) | Reply::Push(items) => match items.as_slice() {
                [Reply::Bulk(kind), _, Reply::Integer(start)] if kind == b"watchkeys" => match u64::try_from(*start) {
                    Ok(start) => {
                        self.cursor.started(start);
                        Start::Watching(connection)
                    }
                    Err(_) => Start::Failed(format!("{address}: a negative start revision {start}")),
                },
                _ => Start::Failed(format!("{address}: unexpected WATCHKEYS reply {items:?}")),
            },
            Reply::Error(text) => match compacted_oldest(&text) {
                Some(oldest) => Start::Compacted { oldest },
                None if is_retryable(&text) => Start::Failed(format!("{address}: {text}")),
                None => Start::Refused(text),
            },
            other => Start::Failed(format!("{address}: unexpected WATCHKEYS reply {other:?}")),
        }
    }
}

/// The oldest available revision in `COMPACTED revision 5 is compacted; the oldest available
/// is 120`.
fn compacted_oldest(text: &str) -> Option<u64> {
    let rest = text.strip_prefix("COMPACTED ")?;
    rest.rsplit(' ').next()?.parse().ok()
}

impl ClusterClient {
    /// A [`Watch`] of `prefix` after `since` over this client's nodes (the current one, the
    /// leader once known, first) with its options.
    pub fn watch(&self, prefix: &[u8], since: Option<u64>) -> Result<Watch, WatchError> {
        let current = self.current_address().to_string();
        let others = self.addresses().iter().filter(|a| **a != current).cloned();
        Watch::new(
            std::iter::once(current.clone()).chain(others),
            self.options().clone(),
            prefix,
            since,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_resumes_after_the_last_change_of_a_whole_revision() {
        let mut cursor = Cursor::new(Some(5));
        assert_eq!(cursor.resume(), Some(5));
        assert!(cursor.accept(6) && cursor.accept(8));
        assert_eq!(cursor.revision(), Some(8));
        // Revision 8 may have more changes: resume before it and skip the one yielded.
        assert_eq!(cursor.resume(), Some(7));
        assert!(!cursor.accept(8), "a repeat");
        assert!(cursor.accept(8), "the second change of revision 8 is new");
        assert!(cursor.accept(9));
        assert_eq!(cursor.resume(), Some(8));
        assert!(!cursor.accept(9) && cursor.accept(10));
    }

    #[test]
    fn a_cursor_in_the_middle_of_an_entry_yields_its_rest_exactly_once() {
        let mut cursor = Cursor::new(None);
        assert_eq!(cursor.resume(), None);
        cursor.started(11);
        assert_eq!(cursor.revision(), Some(11));
        // An MSET of three keys at 12; the connection dies after two.
        assert!(cursor.accept(12) && cursor.accept(12));
        assert_eq!(cursor.resume(), Some(11));
        cursor.started(11); // the new node's reply changes nothing
        let replayed: Vec<bool> = [12, 12, 12, 13].iter().map(|&r| cursor.accept(r)).collect();
        assert_eq!(replayed, [false, false, true, true]);
        assert_eq!(cursor.revision(), Some(13));
    }

    #[test]
    fn a_compacted_reply_names_the_oldest_revision() {
        assert_eq!(
            compacted_oldest("COMPACTED revision 5 is compacted; the oldest available is 120"),
            Some(120)
        );
        assert_eq!(compacted_oldest("ERR syntax error"), None);
    }
}
