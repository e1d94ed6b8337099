//! Clients of a QuorumKV cluster, over its RESP client port.
//!
//! - [`ClusterClient`] (`cluster.rs`): the one cluster client. Seed addresses, leader
//!   discovery from structured replies (`RAFT LEADER`, `-MOVED`), failover, bounded backoff
//!   while there is no leader, a request timeout, exactly-once writes through client sessions,
//!   and an error type that tells "failed, not applied" ([`ClusterError::NotApplied`]) from
//!   "may or may not have taken effect" ([`ClusterError::OutcomeUnknown`]). The `kv` CLI, a
//!   node's `--join` and the Python `quorumkv.Client` use it.
//! - [`Transaction`] (`transaction.rs`): one connection pinned to one node for `WATCH`, reads
//!   and `MULTI` .. `EXEC` (connection state); [`ClusterClient::transact`] runs a transaction
//!   without `WATCH` with retries. An `EXEC` whose answer is lost is never resent.
//! - [`Watch`] (`watch.rs`): `WATCHKEYS` that resumes on the next node from the last change
//!   seen, exactly once and in order ([`Cursor`]); `kv watch` and Python's `Client.watch`.
//! - [`Client`] (`connection.rs`): one connection to one node, no retries; what the cluster
//!   client runs on, and what tests and benchmarks use to talk to a given node.
//!
//! ```no_run
//! # async fn demo() -> Result<(), kv_node::client::ClusterError> {
//! use kv_node::client::ClusterClient;
//! use kv_node::client::ClusterOptions;
//! use kv_node::protocol::Reply;
//!
//! let seeds = ["127.0.0.1:7379", "127.0.0.1:7389", "127.0.0.1:7399"];
//! let mut kv = ClusterClient::new(seeds, ClusterOptions::default())?;
//! kv.call(&["INCR", "visits"]).await?; // applied exactly once, even across a failover
//! assert_eq!(kv.call(&["GET", "visits"]).await?, Reply::Bulk(b"1".to_vec()));
//! # Ok(()) }
//! ```

mod cluster;
mod connection;
mod transaction;
mod watch;

pub use cluster::ClusterClient;
pub use cluster::ClusterError;
pub use cluster::ClusterOptions;
pub use cluster::Failure;
pub use connection::Client;
pub use connection::ClientError;
pub use transaction::Transaction;
pub use watch::Change;
pub use watch::Cursor;
pub use watch::Watch;
pub use watch::WatchError;
