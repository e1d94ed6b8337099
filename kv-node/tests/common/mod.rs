//! Test helpers shared by the storage tests: a crash-simulating file system and log builders.

#![allow(dead_code, reason = "each test binary uses a different subset of the helpers")]

pub mod crash_fs;
pub mod hooked_fs;

use std::path::Path;
use std::path::PathBuf;
use std::sync::Arc;

use kv_core::command::Command;
use kv_core::command::Expiry;
use kv_core::command::SetCondition;
use kv_core::command::Write;
use kv_node::NodeConfig;
use kv_node::storage::Fs;
use kv_node::storage::LogOptions;
use kv_node::storage::LogStore;
use kv_node::storage::StorageError;
use openraft::RaftLogReader;
use openraft::alias::EntryOf;
use openraft::alias::LogIdOf;
use openraft::alias::VoteOf;
use openraft::entry::RaftEntry;
use openraft::storage::IOFlushed;
use openraft::storage::RaftLogStorage;
use openraft::type_config::TypeConfigExt;

/// The segment files of the log in `dir`, oldest first.
pub fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    files.sort();
    files
}

/// A log id of the test node.
pub fn log_id(term: u64, index: u64) -> LogIdOf<NodeConfig> {
    openraft::testing::log_id::<NodeConfig>(term, 1, index)
}

/// A normal entry setting key `k<index>`.
pub fn entry(term: u64, index: u64) -> EntryOf<NodeConfig> {
    let write = Write {
        at_ms: index,
        command: Command::Set {
            key: format!("k{index}").into_bytes(),
            value: format!("value {index} of term {term}").into_bytes(),
            condition: SetCondition::Always,
            expiry: Expiry::Never,
        },
    };
    EntryOf::<NodeConfig>::new_normal(log_id(term, index), write.into())
}

/// A committed vote for node 1 in `term`.
pub fn vote(term: u64) -> VoteOf<NodeConfig> {
    VoteOf::<NodeConfig>::new_committed(term, 1)
}

/// Opens the log in `dir`.
pub fn open(fs: &Arc<dyn Fs>, dir: &Path, options: LogOptions) -> Result<LogStore<NodeConfig>, StorageError> {
    LogStore::open(fs.clone(), dir, options)
}

/// Drops the log and waits for its writer to stop and release the directory.
pub fn close(log: LogStore<NodeConfig>) {
    let exit = log.writer_exit();
    drop(log);
    exit.wait();
}

/// Appends entries and waits until they are reported durable.
pub async fn append(log: &mut LogStore<NodeConfig>, entries: Vec<EntryOf<NodeConfig>>) -> std::io::Result<()> {
    let (tx, rx) = NodeConfig::oneshot();
    log.append(entries, IOFlushed::signal(tx)).await?;
    rx.await.expect("the writer completes every append")
}

/// Every entry held, as (index, term).
pub async fn entry_ids(log: &mut LogStore<NodeConfig>) -> Vec<(u64, u64)> {
    log.try_get_log_entries(..)
        .await
        .expect("read entries")
        .iter()
        .map(|e| (e.index(), e.log_id().leader_id.term))
        .collect()
}

/// A single-threaded runtime for driving the async store API from plain tests.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Collects `tracing` output of a closure (to check the log lines recovery writes).
pub fn capture_logs<T>(f: impl FnOnce() -> T) -> (T, String) {
    use std::sync::Mutex;

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let sink = Sink::default();
    let writer = sink.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let result = tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8_lossy(&sink.0.lock().unwrap()).into_owned();
    (result, text)
}
