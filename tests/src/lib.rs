//! Fault campaigns on real kv-node processes: the library behind the `kv-chaos` binary.
//!
//! A campaign starts a cluster of `kv-node` processes (`--fsync always`) whose every Raft link
//! runs through a fault [`proxy`], lets a [`nemesis`] apply a schedule of faults drawn from a
//! seed (kill -9 and restart, SIGSTOP pauses, partitions, one-way cuts, loss, delay,
//! duplication, leader transfers, membership changes) while [`workload`] clients run
//! registers, a counter and appends through different nodes, records their [`history`], heals
//! everything, reads the final state from every replica, and hands it all to the [`check`]ers.
//! A failing run leaves its [`evidence`]. docs/reliability.md tells how to run it and what a
//! long campaign found.

pub mod check;
pub mod cluster;
pub mod evidence;
pub mod fuzz_input;
pub mod history;
pub mod nemesis;
pub mod proxy;
pub mod rng;
pub mod workload;
