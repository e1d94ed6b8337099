//! openraft's own storage conformance suite against kv-core's in-memory log store and the
//! shared state-machine adapter, run on the deterministic runtime.

use kv_core::command::Limits;
use kv_core::raft::log_store::MemLogStore;
use kv_core::raft::state_machine::MemSnapshotStore;
use kv_core::runtime::Executor;
use kv_core::sim::SimConfig;
use kv_core::sim::SimStateMachine;
use openraft::StorageError;
use openraft::testing::log::StoreBuilder;
use openraft::testing::log::Suite;

struct MemBuilder;

impl StoreBuilder<SimConfig, MemLogStore<SimConfig>, SimStateMachine> for MemBuilder {
    async fn build(&self) -> Result<((), MemLogStore<SimConfig>, SimStateMachine), StorageError<SimConfig>> {
        Ok((
            (),
            MemLogStore::default(),
            SimStateMachine::new(Limits::default(), MemSnapshotStore::default()),
        ))
    }
}

#[test]
fn mem_log_store_passes_openraft_storage_suite() {
    Executor::new(1)
        .block_on(Suite::test_all(MemBuilder))
        .expect("storage suite");
}
