//! [`Transaction`]: one connection pinned to one node, for `WATCH`, reads and `MULTI` ..
//! `EXEC`, which are connection state and must all go over the same connection.
//!
//! ## What it guarantees
//!
//! `EXEC` is one Raft log entry, applied atomically on every replica (README, "Transactions").
//! A transaction is not run through a client session (`SESSION RUN` wraps one command, not a
//! connection's queue), so it is never resent blindly once it may have reached the state
//! machine:
//!
//! - Until `EXEC` is sent, nothing the transaction queued can take effect. A connection that
//!   fails then, or a node that answers `-TRYAGAIN` (no leader), is
//!   [`Failure::Interrupted`]: certainly without effect; start over on another connection
//!   (`WATCH` again, read again). [`ClusterClient::transact`] does that for a transaction
//!   without `WATCH`; Python's `Client.transaction` for the optimistic loop.
//! - Once `EXEC` (or a write run at once, between `WATCH` and `MULTI`) is sent, a lost answer
//!   (connection lost, no answer within the request timeout, `-TRYAGAIN outcome unknown`) is
//!   [`ClusterError::OutcomeUnknown`] (unless every command in it is a read).
//! - `EXEC` answering nil (a watched key changed) is `Ok(None)`: nothing applied.
//!   `-EXECABORT` (a command refused while queueing) is [`Failure::Reply`] with the
//!   refusal's text appended.
//!
//! ## Why `MULTI` waits for its answer
//!
//! `MULTI` goes alone and its `+OK` is awaited before the queued commands and `EXEC` are
//! pipelined: if `MULTI` were refused, commands sent right behind it would run one by one,
//! outside any transaction. The round trip is the price of never doing that.
//!
//! Tested in `kv-node/tests/cluster_client.rs` (fake nodes: an `EXEC` whose answer is lost is
//! not resent; `-TRYAGAIN` makes [`ClusterClient::transact`] go to the next node) and from
//! Python (`bindings/python/tests/test_transactions.py`, a real cluster).

use std::time::Duration;

use super::cluster::ClusterClient;
use super::cluster::ClusterError;
use super::cluster::Failure;
use super::cluster::is_retryable;
use super::cluster::is_write;
use super::cluster::outcome_unknown;
use super::connection::Client;
use crate::protocol::Reply;

/// A connection pinned to one node for one transaction at a time (see the module docs).
/// [`ClusterClient::transaction`] makes one; several transactions may run on it one after
/// another (`EXEC` ends each and forgets its `WATCH`).
#[derive(Debug)]
pub struct Transaction {
    connection: Option<Client>,
    address: String,
    request_timeout: Duration,
}

impl Transaction {
    pub(super) fn new(connection: Client, address: String, request_timeout: Duration) -> Transaction {
        Transaction {
            connection: Some(connection),
            address,
            request_timeout,
        }
    }

    /// The address of the node the connection is pinned to.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Whether the connection still works (after [`Failure::Interrupted`] or an unknown
    /// outcome it is closed: make a new transaction).
    pub fn is_open(&self) -> bool {
        self.connection.is_some()
    }

    /// The connection, given back to the client's pool when it is healthy.
    pub(super) fn into_connection(self) -> Option<(String, Client)> {
        self.connection.map(|c| (self.address, c))
    }

    /// `WATCH keys`: `EXEC` answers nil if one of them changes from now on.
    pub async fn watch<K: AsRef<[u8]>>(&mut self, keys: &[K]) -> Result<(), ClusterError> {
        if keys.is_empty() {
            return Ok(());
        }
        let mut args = vec![b"WATCH".to_vec()];
        args.extend(keys.iter().map(|k| k.as_ref().to_vec()));
        // WATCH reads: a lost answer hides no effect.
        self.run_one(&args, false).await.map(drop)
    }

    /// Runs one command at once on the pinned connection (a read between `WATCH` and `EXEC`,
    /// typically; not `MULTI`, `EXEC` or `DISCARD`, which [`Transaction::exec`] sends). A lost answer is [`Failure::Interrupted`] for a read and
    /// [`ClusterError::OutcomeUnknown`] for a write; an error reply is [`Failure::Reply`]
    /// (`-TRYAGAIN`: interrupted).
    pub async fn call<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<Reply, ClusterError> {
        let args: Vec<Vec<u8>> = args.iter().map(|a| a.as_ref().to_vec()).collect();
        if args.is_empty() {
            return Err(Failure::Invalid("an empty command".to_string()).into());
        }
        if [b"MULTI".as_slice(), b"EXEC", b"DISCARD"]
            .iter()
            .any(|c| args[0].eq_ignore_ascii_case(c))
        {
            return Err(Failure::Invalid("MULTI, EXEC and DISCARD are run by Transaction::exec".to_string()).into());
        }
        self.run_one(&args, is_write(&args)).await
    }

    /// One command on the pinned connection; `write`: a lost answer may hide an effect.
    async fn run_one(&mut self, args: &[Vec<u8>], write: bool) -> Result<Reply, ClusterError> {
        self.open()?.queue(args);
        let reply = match self.roundtrip().await {
            Ok(reply) => reply,
            Err(reason) => return Err(self.lost(reason, write)),
        };
        match reply {
            Reply::Error(text) => Err(self.refused(text, write)),
            reply => Ok(reply),
        }
    }

    /// `MULTI`, `commands`, `EXEC`: `Some(replies)`, one per command (an error reply among
    /// them is [`Reply::Error`]: that command failed, the others took effect), or `None` when
    /// a watched key changed and nothing was applied.
    pub async fn exec<A: AsRef<[u8]>>(&mut self, commands: &[Vec<A>]) -> Result<Option<Vec<Reply>>, ClusterError> {
        let commands: Vec<Vec<Vec<u8>>> = commands
            .iter()
            .map(|c| c.iter().map(|a| a.as_ref().to_vec()).collect())
            .collect();
        if commands.iter().any(Vec::is_empty) {
            return Err(Failure::Invalid("an empty command".to_string()).into());
        }
        let write = commands.iter().any(|c| is_write(c));
        self.open()?.queue(&[b"MULTI"]);
        match self.roundtrip().await {
            Ok(Reply::Simple(_)) => {}
            // Nothing was queued: nothing can take effect.
            Ok(Reply::Error(text)) => return Err(self.refused(text, false)),
            Ok(other) => return Err(self.lost(format!("MULTI answered {other:?}"), false)),
            Err(reason) => return Err(self.lost(reason, false)),
        }
        let connection = self.open()?;
        for command in &commands {
            connection.queue(command);
        }
        connection.queue(&[b"EXEC"]);
        let mut refusals = Vec::new();
        let sent = self.send().await;
        if let Err(reason) = sent {
            return Err(self.lost(reason, write));
        }
        for _ in &commands {
            match self.receive().await {
                Ok(Reply::Error(text)) => refusals.push(text),
                Ok(_) => {}
                Err(reason) => return Err(self.lost(reason, write)),
            }
        }
        match self.receive().await {
            Ok(Reply::Array(replies)) => Ok(Some(replies)),
            Ok(Reply::Nil | Reply::NilArray) => Ok(None),
            Ok(Reply::Error(text)) if text.starts_with("EXECABORT") && !refusals.is_empty() => {
                Err(Failure::Reply(format!("{text} ({})", refusals.join("; "))).into())
            }
            Ok(Reply::Error(text)) => Err(self.refused(text, write)),
            Ok(other) => Err(self.lost(format!("EXEC answered {other:?}"), write)),
            Err(reason) => Err(self.lost(reason, write)),
        }
    }

    fn open(&mut self) -> Result<&mut Client, ClusterError> {
        self.connection
            .as_mut()
            .ok_or_else(|| Failure::Interrupted(format!("the connection to {} was lost before", self.address)).into())
    }

    /// Sends what is queued and reads one reply.
    async fn roundtrip(&mut self) -> Result<Reply, String> {
        self.send().await?;
        self.receive().await
    }

    async fn send(&mut self) -> Result<(), String> {
        let (address, wait) = (self.address.clone(), self.request_timeout);
        let connection = self.connection.as_mut().ok_or("no connection")?;
        match tokio::time::timeout(wait, connection.flush()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("{address}: {e}")),
            Err(_) => Err(format!("{address}: could not send within {wait:?}")),
        }
    }

    async fn receive(&mut self) -> Result<Reply, String> {
        let (address, wait) = (self.address.clone(), self.request_timeout);
        let connection = self.connection.as_mut().ok_or("no connection")?;
        match tokio::time::timeout(wait, connection.read_reply()).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(e)) => Err(format!("{address}: {e}")),
            Err(_) => Err(format!("{address}: no answer within {wait:?}")),
        }
    }

    /// The connection failed or timed out: it is closed (its state is unknown), and what was
    /// sent may have taken effect if it held a write.
    fn lost(&mut self, reason: String, write: bool) -> ClusterError {
        self.connection = None;
        if write {
            ClusterError::OutcomeUnknown(reason)
        } else {
            Failure::Interrupted(reason).into()
        }
    }

    /// An error reply: `-TRYAGAIN outcome unknown` may have taken effect, another `-TRYAGAIN`
    /// (no leader) interrupts the transaction, anything else is final.
    fn refused(&mut self, text: String, write: bool) -> ClusterError {
        if outcome_unknown(&text) {
            self.connection = None;
            if write {
                ClusterError::OutcomeUnknown(text)
            } else {
                Failure::Interrupted(text).into()
            }
        } else if is_retryable(&text) {
            // The node's transaction state is gone with the refused EXEC, or never mattered.
            Failure::Interrupted(text).into()
        } else {
            Failure::Reply(text).into()
        }
    }
}

impl ClusterClient {
    /// Pins a connection to the leader (or, while none is known, a node that answers) for a
    /// transaction: finds it with the usual retries, failover and backoff.
    pub async fn transaction(&mut self) -> Result<Transaction, ClusterError> {
        let (address, connection) = self.pin().await?;
        Ok(Transaction::new(connection, address, self.options().request_timeout))
    }

    /// Runs `commands` as one transaction (`MULTI` .. `EXEC`, no `WATCH`) and returns their
    /// replies (an error reply among them is [`Reply::Error`]). While the transaction is
    /// interrupted before `EXEC` is sent ([`Failure::Interrupted`]) it starts over on a new
    /// connection, with backoff, until `retry_for`; once `EXEC` may have reached the state
    /// machine it is never resent ([`ClusterError::OutcomeUnknown`]).
    pub async fn transact<A: AsRef<[u8]>>(&mut self, commands: &[Vec<A>]) -> Result<Vec<Reply>, ClusterError> {
        let deadline = tokio::time::Instant::now() + self.options().retry_for;
        let mut delay = self.options().min_backoff;
        loop {
            let mut transaction = self.transaction().await?;
            match transaction.exec(commands).await {
                Ok(Some(replies)) => {
                    self.give_back(transaction);
                    return Ok(replies);
                }
                Ok(None) => {
                    return Err(Failure::Reply("ERR EXEC answered nil without WATCH".to_string()).into());
                }
                Err(ClusterError::NotApplied(Failure::Interrupted(reason))) => {
                    self.skip(transaction.address());
                    if tokio::time::Instant::now() + delay > deadline {
                        return Err(Failure::Interrupted(reason).into());
                    }
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(self.options().max_backoff);
                }
                Err(e) => {
                    self.give_back(transaction);
                    return Err(e);
                }
            }
        }
    }

    /// Puts a transaction's connection back into the pool, if it still works.
    pub fn give_back(&mut self, transaction: Transaction) {
        if let Some((address, connection)) = transaction.into_connection() {
            self.return_connection(address, connection);
        }
    }
}
