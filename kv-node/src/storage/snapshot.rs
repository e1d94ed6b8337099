//! Snapshots in files: kv-core's [`SnapshotStore`] on disk.
//!
//! A snapshot is written to `<seq>.snap.tmp`, synced, renamed to `<seq>.snap` and the directory
//! synced; only then are older snapshots removed. A crash at any point leaves either the old
//! snapshot or the new one current, never neither. Leftover temporary files and superseded
//! snapshots are removed on open.

use std::fmt::Debug;
use std::io;
use std::marker::PhantomData;
use std::path::Path;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;

use openraft::Raft;
use openraft::alias::LogIdOf;
use openraft::alias::SnapshotMetaOf;
use openraft::type_config::async_runtime::WatchReceiver;

use kv_core::raft::KvTypeConfig;
use kv_core::raft::state_machine::SnapshotStore;
use kv_core::raft::state_machine::StateMachine;
use kv_core::raft::state_machine::StoredSnapshot;
use kv_core::store::FrozenStore;

use super::FsyncPolicy;
use super::error::StorageError;
use super::format::decode_snapshot;
use super::format::encode_snapshot;
use super::fs::Fs;

const SNAPSHOT_SUFFIX: &str = ".snap";
const TEMP_SUFFIX: &str = ".snap.tmp";

/// A node's snapshots, one current file in a directory. Clones share the directory.
pub struct FileSnapshotStore<C: KvTypeConfig> {
    fs: Arc<dyn Fs>,
    dir: PathBuf,
    fsync: FsyncPolicy,
    /// The sequence number of the next snapshot; held while saving, so saves do not interleave.
    next: Arc<Mutex<u64>>,
    /// Size of the current snapshot file.
    size: Arc<AtomicU64>,
    /// The current snapshot's metadata (`None` before the first).
    current: Arc<Mutex<Option<SnapshotMetaOf<C>>>>,
    /// The current snapshot as [`FileSnapshotStore::open`] read and checked it, handed to the
    /// first [`SnapshotStore::load`] (openraft's restore at start) instead of reading it again.
    preloaded: Arc<Mutex<Option<StoredSnapshot<C>>>>,
    _config: PhantomData<fn() -> C>,
}

impl<C: KvTypeConfig> Clone for FileSnapshotStore<C> {
    fn clone(&self) -> Self {
        FileSnapshotStore {
            fs: self.fs.clone(),
            dir: self.dir.clone(),
            fsync: self.fsync,
            next: self.next.clone(),
            size: self.size.clone(),
            current: self.current.clone(),
            preloaded: self.preloaded.clone(),
            _config: PhantomData,
        }
    }
}

impl<C: KvTypeConfig> Debug for FileSnapshotStore<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileSnapshotStore")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

fn snapshot_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}{SNAPSHOT_SUFFIX}"))
}

fn parse_snapshot_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SNAPSHOT_SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

impl<C: KvTypeConfig> FileSnapshotStore<C> {
    /// Opens the snapshot directory `dir`, which must exist. Checks that the current snapshot,
    /// if any, is intact (a damaged one is [`StorageError::Corrupt`]: the log before it may be
    /// purged, so no older state can stand in for it) and removes leftovers of interrupted saves.
    pub fn open(fs: Arc<dyn Fs>, dir: &Path, fsync: FsyncPolicy) -> Result<Self, StorageError> {
        let store = FileSnapshotStore {
            fs,
            dir: dir.to_path_buf(),
            fsync,
            next: Arc::new(Mutex::new(1)),
            size: Arc::new(AtomicU64::new(0)),
            current: Arc::default(),
            preloaded: Arc::default(),
            _config: PhantomData,
        };
        let names = store.list()?;
        for name in names.iter().filter(|n| n.ends_with(TEMP_SUFFIX)) {
            tracing::info!(file = %name, "removing a snapshot left unfinished by a crash");
            store.remove(&dir.join(name));
        }
        let mut seqs: Vec<u64> = names.iter().filter_map(|n| parse_snapshot_name(n)).collect();
        seqs.sort_unstable();
        if let Some((&newest, older)) = seqs.split_last() {
            let (meta, data) = store.read(newest)?;
            *lock(&store.current) = Some(meta.clone());
            *lock(&store.preloaded) = Some((meta, data));
            for &seq in older {
                store.remove(&snapshot_path(dir, seq));
            }
            *store.lock_next() = newest + 1;
        }
        Ok(store)
    }

    /// Size of the current snapshot file in bytes (0 before the first one).
    pub fn size(&self) -> u64 {
        self.size.load(Ordering::Relaxed)
    }

    fn list(&self) -> Result<Vec<String>, StorageError> {
        self.fs.list(&self.dir).map_err(|source| StorageError::DataDir {
            path: self.dir.clone(),
            source,
        })
    }

    fn lock_next(&self) -> std::sync::MutexGuard<'_, u64> {
        // A poisoned lock means a panic while holding it: a bug, not an input error.
        self.next.lock().expect("snapshot sequence lock poisoned")
    }

    fn newest(&self) -> Result<Option<u64>, StorageError> {
        Ok(self.list()?.iter().filter_map(|n| parse_snapshot_name(n)).max())
    }

    fn read(&self, seq: u64) -> Result<(SnapshotMetaOf<C>, Vec<u8>), StorageError> {
        let path = snapshot_path(&self.dir, seq);
        let bytes = self.fs.read(&path).map_err(|e| StorageError::io("read", &path, e))?;
        let (meta, data) = decode_snapshot::<C>(&bytes).map_err(|e| StorageError::format(&path, e))?;
        self.size.store(bytes.len() as u64, Ordering::Relaxed);
        Ok((meta, data.to_vec()))
    }

    /// Removes a superseded file; failing to only leaves it for the next open, so it is logged.
    fn remove(&self, path: &Path) {
        if let Err(error) = self.fs.remove(path) {
            tracing::warn!(file = %path.display(), %error, "cannot remove an old snapshot file");
        }
    }

    fn save_inner(&self, meta: &SnapshotMetaOf<C>, data: &[u8]) -> Result<(), StorageError> {
        let mut next = self.lock_next();
        let seq = *next;
        let temp = self.dir.join(format!("{seq:020}{TEMP_SUFFIX}"));
        let path = snapshot_path(&self.dir, seq);
        let mut file = self
            .fs
            .create(&temp)
            .map_err(|e| StorageError::io("create", &temp, e))?;
        let bytes = encode_snapshot::<C>(meta, data);
        file.write_all(&bytes)
            .map_err(|e| StorageError::io("write", &temp, e))?;
        if self.fsync == FsyncPolicy::Always {
            file.sync().map_err(|e| StorageError::io("sync", &temp, e))?;
        }
        drop(file);
        self.fs
            .rename(&temp, &path)
            .map_err(|e| StorageError::io("rename", &temp, e))?;
        if self.fsync == FsyncPolicy::Always {
            self.fs
                .sync_dir(&self.dir)
                .map_err(|e| StorageError::io("sync", &self.dir, e))?;
        }
        *next = seq + 1;
        self.size.store(bytes.len() as u64, Ordering::Relaxed);
        *lock(&self.current) = Some(meta.clone());
        lock(&self.preloaded).take();
        for old in self
            .list()?
            .iter()
            .filter_map(|n| parse_snapshot_name(n))
            .filter(|&s| s < seq)
        {
            self.remove(&snapshot_path(&self.dir, old));
        }
        tracing::info!(snapshot = %path.display(), last_log_id = ?meta.last_log_id, bytes = data.len(), "saved snapshot");
        Ok(())
    }
}

impl<C: KvTypeConfig> SnapshotStore<C> for FileSnapshotStore<C> {
    /// Writes and syncs the file, which takes tens of milliseconds for a large store, off the
    /// runtime's async workers ([`blocking`]).
    fn save(&mut self, meta: &SnapshotMetaOf<C>, data: &[u8]) -> io::Result<()> {
        Ok(blocking(|| self.save_inner(meta, data))?)
    }

    /// Encodes the image and writes and syncs the file, both off the runtime's async workers
    /// ([`blocking`]): the encoding takes some 60 ns per key.
    fn build(&mut self, meta: &SnapshotMetaOf<C>, store: &FrozenStore) -> io::Result<Vec<u8>> {
        blocking(|| {
            let data = store.to_bytes();
            self.save_inner(meta, &data)?;
            Ok(data)
        })
    }

    fn load(&mut self) -> io::Result<Option<StoredSnapshot<C>>> {
        if let Some(preloaded) = lock(&self.preloaded).take() {
            return Ok(Some(preloaded));
        }
        match self.newest()? {
            Some(seq) => Ok(Some(self.read(seq)?)),
            None => Ok(None),
        }
    }

    fn holds(&self, meta: &SnapshotMetaOf<C>) -> bool {
        lock(&self.current).as_ref() == Some(meta)
    }
}

/// Runs `work`, which blocks its thread for a while, telling tokio first on a multi-threaded
/// runtime (`block_in_place`): the worker's other tasks move to another thread instead of
/// waiting. openraft calls a snapshot store from its tasks (the snapshot builder, or the state
/// machine installing one). Without this, a node on two workers served GETs at half speed while
/// a snapshot was being saved (docs/benchmarks.md, "Snapshots: every 100,000 entries by
/// default, …"). The embedded store's tests run on a current-thread runtime, which has no
/// other thread to move to.
fn blocking<T>(work: impl FnOnce() -> T) -> T {
    let multi_thread = tokio::runtime::Handle::try_current()
        .is_ok_and(|handle| handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if multi_thread {
        tokio::task::block_in_place(work)
    } else {
        work()
    }
}

/// Why [`snapshot_now`] gave up.
#[derive(Debug)]
pub enum SnapshotNowError {
    /// The node is stopping: openraft took no more requests.
    Stopped(String),
    /// No snapshot covered what was applied within the time allowed.
    TimedOut,
}

/// Asks `raft` for a snapshot and waits, up to `limit`, until one covers everything applied
/// when it was asked for (`RAFT SNAPSHOT`, `Embedded::snapshot`). openraft ignores the request
/// while a snapshot (one the node's policy asked for) is being built, and that one may end
/// before the last applied entry: then this asks again once that one is done. Returns the
/// applied entry it was asked to cover.
pub async fn snapshot_now<C: KvTypeConfig, S: SnapshotStore<C>>(
    raft: &Raft<C, StateMachine<C, S>>,
    limit: std::time::Duration,
) -> Result<Option<LogIdOf<C>>, SnapshotNowError> {
    let applied = raft.metrics().borrow_watched().last_applied;
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let before = raft.metrics().borrow_watched().snapshot;
        raft.trigger()
            .snapshot()
            .await
            .map_err(|e| SnapshotNowError::Stopped(e.to_string()))?;
        let now = raft
            .wait(Some(deadline.saturating_duration_since(tokio::time::Instant::now())))
            .metrics(|m| m.snapshot >= applied || m.snapshot != before, "a snapshot")
            .await
            .map_err(|_| SnapshotNowError::TimedOut)?;
        if now.snapshot >= applied {
            return Ok(applied);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned lock means a panic while holding it: a bug, not an input error.
    mutex.lock().expect("snapshot store lock poisoned")
}
