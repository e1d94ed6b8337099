//! openraft's storage conformance suite, run against [`LogStore`] with the kv-core state machine
//! and [`FileSnapshotStore`], with large segments and with tiny ones (so that appends roll
//! segments and purges delete them), and with all but the newest entries read back from the
//! segments.

use std::sync::Arc;

use kv_core::command::Limits;
use kv_core::raft::state_machine::StateMachine;
use kv_node::NodeConfig;
use kv_node::storage::FileSnapshotStore;
use kv_node::storage::FsyncPolicy;
use kv_node::storage::LogOptions;
use kv_node::storage::LogStore;
use kv_node::storage::OsFs;
use openraft::StorageError;
use openraft::testing::log::StoreBuilder;
use openraft::testing::log::Suite;
use tempfile::TempDir;

type Machine = StateMachine<NodeConfig, FileSnapshotStore<NodeConfig>>;

struct Builder {
    options: LogOptions,
}

impl StoreBuilder<NodeConfig, LogStore<NodeConfig>, Machine, TempDir> for Builder {
    async fn build(&self) -> Result<(TempDir, LogStore<NodeConfig>, Machine), StorageError<NodeConfig>> {
        let dir = tempfile::tempdir().expect("temp dir");
        let (log_dir, snapshot_dir) = (dir.path().join("log"), dir.path().join("snapshots"));
        std::fs::create_dir(&log_dir).expect("log dir");
        std::fs::create_dir(&snapshot_dir).expect("snapshot dir");
        let log = LogStore::open(Arc::new(OsFs), &log_dir, self.options).expect("open log");
        let snapshots =
            FileSnapshotStore::open(Arc::new(OsFs), &snapshot_dir, self.options.fsync).expect("open snapshots");
        Ok((dir, log, Machine::new(Limits::default(), snapshots)))
    }
}

fn run(options: LogOptions) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime
        .block_on(Suite::test_all(Builder { options }))
        .expect("conformance suite");
}

#[test]
fn conformance_default_options() {
    run(LogOptions::default());
}

#[test]
fn conformance_tiny_segments() {
    run(LogOptions {
        fsync: FsyncPolicy::Never,
        segment_bytes: 64,
        max_batch_bytes: 128,
        ..LogOptions::default()
    });
}

/// Every entry but the newest two (or all) read back from the segments, so that reads,
/// truncations and purges cross from entries on disk to entries held decoded.
#[test]
fn conformance_entries_read_from_segments() {
    for decoded_tail in [0, 2] {
        run(LogOptions {
            fsync: FsyncPolicy::Never,
            decoded_tail,
            ..LogOptions::default()
        });
    }
}
