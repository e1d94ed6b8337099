//! Checkers for the invariants of client histories and cluster runs, one module per property.

pub mod election_safety;
pub mod leader_completeness;
pub mod linearizability;
pub mod log_matching;
pub mod state_machine_safety;
mod violation;

pub use violation::EntryId;
pub use violation::Violation;
