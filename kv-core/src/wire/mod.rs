//! **Wire format.** Every type that crosses a port between processes, and the version that
//! names their encoding. Nothing else in QuorumKV decides what goes on the wire.
//!
//! | module | what crosses | where |
//! |---|---|---|
//! | [`op`] | [`Op`] (a client's operation), [`ReadMode`] | forwarded from a follower to the leader |
//! | [`error`] | [`OpError`] (why an operation failed, typed) | the leader's answer to a forward |
//! | [`status`] | [`Status`], [`Role`] | `RAFT STATUS` / `RAFT LEADER`, `/health` |
//! | [`message`] | [`RaftRequest`] / [`RaftReply`]: openraft's RPCs and the forward | the Raft port |
//! | [`handshake`] | the members' proof of the cluster secret, before the first frame | the Raft port |
//! | [`frame`] | the frame around each message: magic, [`PROTOCOL_VERSION`], length | the Raft port |
//! | [`sanity`] | bounds on the terms and indexes a peer may send, checked before openraft | the Raft port |
//!
//! The payloads are postcard, which encodes an enum by the **position** of its variant and a
//! struct by the order of its fields. Reordering, inserting before the end or removing a variant
//! (or a field) is therefore a format change, even when every name stays the same. Such a
//! change must bump [`PROTOCOL_VERSION`]; kv-node's `tests/golden_wire.rs` pins the exact bytes
//! of every message and fails until the version is bumped and the bytes updated together.
//!
//! Commands and queries inside an [`Op`] are kv-core's [`command`](crate::command) types, which
//! also travel through the Raft log on disk (pinned by `tests/golden_storage.rs`).
//!
//! This module depends on nothing in the crate but [`command`](crate::command) and
//! [`raft::KvNode`](crate::raft::KvNode); everything that speaks the protocol depends on it.

pub mod error;
pub mod frame;
pub mod handshake;
pub mod message;
pub mod op;
pub mod sanity;
pub mod status;

pub use error::OpError;
pub use frame::PROTOCOL_VERSION;
pub use message::RaftReply;
pub use message::RaftRequest;
pub use message::SnapshotChunk;
pub use op::Op;
pub use op::ReadMode;
pub use status::Role;
pub use status::Status;
