//! QuorumKV core: the store, its Raft wiring on openraft, and a deterministic simulator.
//!
//! This crate performs no I/O: no files, sockets, threads or wall clock. Commands, messages,
//! time and randomness come in; responses, messages and events go out. Time and randomness
//! reach openraft through the async runtime it runs on ([`runtime::SimRuntime`]), so one seed
//! replays one run exactly, natively and in wasm.
//!
//! | module | what it holds |
//! |---|---|
//! | [`command`] | commands, queries, responses and their versioned postcard codec |
//! | [`store`] | the ordered key-value state machine (TTL by the leader's clock) |
//! | [`wire`] | everything that crosses a port: operations, errors, status, Raft messages, frames |
//! | [`request`] | the request path: operations to proposals and reads, forwarding, typed outcomes |
//! | [`raft`] | openraft wiring: type-config bound, in-memory log store, state-machine adapter |
//! | [`runtime`] | the deterministic single-threaded runtime: virtual clock, seeded RNG |
//! | [`sim`] | the simulator: N nodes, a faulty network, clients, a trace, seeded fault runs |
//! | [`check`] | one checker per invariant, and the linearizability checker |
//!
//! # A simulated cluster
//!
//! Three nodes elect a leader, commit a put, lose their leader, and still read the value:
//!
//! ```
//! use std::time::Duration;
//!
//! use kv_core::check::linearizability::Ret;
//! use kv_core::sim::{ClientCall, OpState, Role, SimOptions, Simulation};
//!
//! let mut sim = Simulation::new(SimOptions { seed: 42, nodes: 3, ..SimOptions::default() }).unwrap();
//! sim.run_for(Duration::from_secs(2)); // virtual time: instant in wall time
//! let leader = sim.view().nodes.iter().find(|n| n.role == Role::Leader).unwrap().id;
//!
//! let put = sim.submit(leader, ClientCall::Put { key: b"greeting".to_vec(), value: b"hello".to_vec() }).unwrap();
//! sim.run_for(Duration::from_millis(500));
//! assert!(matches!(sim.op(put).unwrap().state, OpState::Returned { ret: Ret::Put, .. }));
//!
//! sim.crash(leader).unwrap();
//! sim.run_for(Duration::from_secs(2));
//! let survivor = sim.view().nodes.iter().find(|n| n.role == Role::Leader).unwrap().id;
//! assert_ne!(survivor, leader);
//!
//! let get = sim.submit(survivor, ClientCall::Get { key: b"greeting".to_vec() }).unwrap();
//! sim.run_for(Duration::from_millis(500));
//! let value = Ret::Get(Some(b"hello".to_vec()));
//! assert!(matches!(sim.op(get).unwrap().state, OpState::Returned { ret, .. } if ret == value));
//!
//! // Every invariant held and the client history is linearizable.
//! assert!(sim.check().is_ok());
//! ```

mod byte_string;
pub mod check;
pub mod command;
pub mod raft;
pub mod request;
pub mod runtime;
pub mod sim;
pub mod store;
pub mod wire;
