//! QuorumKV core: the store, its Raft wiring on openraft, and a deterministic simulator.
//!
//! This crate performs no I/O: no files, sockets, threads or wall clock. Time and
//! randomness come in through the async runtime openraft runs on.

pub mod check;
pub mod command;
pub mod raft;
pub mod runtime;
pub mod sim;
pub mod store;
