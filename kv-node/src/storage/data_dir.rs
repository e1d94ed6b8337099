//! Opening a data directory: the one place that creates, checks and recovers it, for a cluster
//! node and an embedded store alike.
//!
//! Every file access goes through [`Fs`]. Recovery reads every log segment, so the whole open
//! is blocking work: async callers use [`open_async`], which runs it on tokio's blocking pool
//! rather than on an async worker.

use std::path::Path;
use std::path::PathBuf;
use std::sync::Arc;

use super::FsyncPolicy;
use super::error::StorageError;
use super::fs::Fs;
use super::log_store::LogOptions;
use super::log_store::LogStore;
use super::snapshot::FileSnapshotStore;
use crate::NodeConfig;

/// File in the data directory naming the node id the directory belongs to.
pub const NODE_ID_FILE: &str = "node-id";

/// How to open a data directory.
#[derive(Debug, Clone)]
pub struct DataDirOptions {
    /// Create the directory if it does not exist; otherwise a missing one is an error.
    pub create_if_missing: bool,
    /// When storage fsyncs.
    pub fsync: FsyncPolicy,
    /// The log's tuning.
    pub log: LogOptions,
    /// A cluster node's id: recorded in a new directory, and a directory recorded for another
    /// node is refused. `None` for an embedded store.
    pub node_id: Option<u64>,
}

/// An opened, recovered data directory.
#[derive(Debug)]
pub struct DataDir {
    /// Its path.
    pub path: PathBuf,
    /// The Raft log (`log/`), recovered and locked.
    pub log: LogStore<NodeConfig>,
    /// The snapshots (`snapshots/`).
    pub snapshots: FileSnapshotStore<NodeConfig>,
}

/// Opens the data directory at `path`: creates it (and `log/`, `snapshots/`) as asked, checks
/// whose it is, makes the directories durable, and recovers the log. Blocking.
pub fn open(fs: Arc<dyn Fs>, path: &Path, options: DataDirOptions) -> Result<DataDir, StorageError> {
    let data_dir = |source| StorageError::DataDir {
        path: path.to_path_buf(),
        source,
    };
    if options.create_if_missing {
        fs.create_dir_all(path).map_err(data_dir)?;
    } else {
        fs.list(path).map_err(data_dir)?;
    }
    if let Some(id) = options.node_id {
        check_node_id(fs.as_ref(), path, id, options.fsync)?;
    }
    let log_dir = path.join("log");
    let snapshot_dir = path.join("snapshots");
    for dir in [&log_dir, &snapshot_dir] {
        fs.create_dir_all(dir).map_err(|source| StorageError::DataDir {
            path: dir.clone(),
            source,
        })?;
    }
    // Make the directories themselves durable: files in them are synced, their names not.
    if options.fsync == FsyncPolicy::Always {
        let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
        for dir in parent.into_iter().chain([path]) {
            fs.sync_dir(dir).map_err(|e| StorageError::io("sync", dir, e))?;
        }
    }
    let log_options = LogOptions {
        fsync: options.fsync,
        ..options.log
    };
    let log = LogStore::open(fs.clone(), &log_dir, log_options)?;
    let snapshots = FileSnapshotStore::open(fs, &snapshot_dir, options.fsync)?;
    Ok(DataDir {
        path: path.to_path_buf(),
        log,
        snapshots,
    })
}

/// [`open`] on tokio's blocking pool.
pub async fn open_async(fs: Arc<dyn Fs>, path: &Path, options: DataDirOptions) -> Result<DataDir, StorageError> {
    let path = path.to_path_buf();
    let opening = path.clone();
    tokio::task::spawn_blocking(move || open(fs, &opening, options))
        .await
        .map_err(|e| StorageError::io("open", &path, std::io::Error::other(e.to_string())))?
}

/// Records the node id in a new data directory and refuses a directory of another node.
fn check_node_id(fs: &dyn Fs, dir: &Path, id: u64, fsync: FsyncPolicy) -> Result<(), StorageError> {
    let path = dir.join(NODE_ID_FILE);
    match fs.read(&path) {
        Ok(bytes) => match std::str::from_utf8(&bytes)
            .ok()
            .and_then(|t| t.trim().parse::<u64>().ok())
        {
            Some(found) if found == id => Ok(()),
            Some(found) => Err(StorageError::ForeignDataDir {
                path: dir.to_path_buf(),
                found,
                expected: id,
            }),
            None => Err(StorageError::Corrupt {
                file: path,
                offset: 0,
                reason: "not a node id".to_string(),
            }),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut file = fs.create(&path).map_err(|e| StorageError::io("create", &path, e))?;
            file.write_all(format!("{id}\n").as_bytes())
                .map_err(|e| StorageError::io("write", &path, e))?;
            if fsync == FsyncPolicy::Always {
                file.sync().map_err(|e| StorageError::io("sync", &path, e))?;
            }
            Ok(())
        }
        Err(e) => Err(StorageError::io("read", &path, e)),
    }
}
