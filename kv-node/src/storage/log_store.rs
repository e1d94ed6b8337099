//! The segmented, group-committed Raft log store. The format and the recovery rules are in the
//! [module docs of `storage`](super).
//!
//! Entries are kept in memory as well as on disk. A node compacts its log by policy (a snapshot
//! every N entries, then a purge), so the in-memory log is bounded by N entries plus whatever is
//! in flight; in exchange reads (replication, apply) never touch the disk and the read path has
//! no I/O errors or caching to get wrong. Recovery reads each segment once, start to end.
//!
//! In memory only the newest [`LogOptions::decoded_tail`] entries are kept as openraft hands
//! them over (apply and replication read them right after the append, sharing the write behind
//! its `Arc`); older ones are kept postcard-encoded, one allocation each, and decoded when read
//! (a lagging follower). A decoded 64-byte SET is an entry slot and three allocations (the
//! write, its key, its value: about 290 bytes); encoded it is about 130: the log between two
//! snapshots, up to a quarter of the store's key count, costs less than half as much.
//!
//! Writes take two steps. The calling task updates the in-memory state (so the entries are
//! readable at once, as openraft requires), encodes the records and queues them to one writer
//! thread. The writer drains everything queued, writes it with one `write`, syncs once and only
//! then completes each request: [`IOFlushed`] callbacks for appends, the waiting caller for a
//! vote. Concurrent appends therefore share one fsync (group commit), and the queue order is the
//! file order, so every write is serialized as openraft demands.

use std::collections::VecDeque;
use std::fmt::Debug;
use std::io;
use std::ops::Bound;
use std::ops::RangeBounds;
use std::path::Path;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Condvar;
use std::sync::Mutex;
use std::sync::MutexGuard;

use openraft::LogState;
use openraft::OptionalSend;
use openraft::RaftLogReader;
use openraft::alias::EntryOf;
use openraft::alias::LogIdOf;
use openraft::alias::VoteOf;
use openraft::entry::RaftEntry;
use openraft::storage::IOFlushed;
use openraft::storage::RaftLogStorage;
use tokio::sync::mpsc;
use tokio::sync::oneshot;

use kv_core::raft::KvTypeConfig;

use super::FsyncPolicy;
use super::error::StorageError;
use super::format::Record;
use super::format::decode_segment;
use super::format::encode_record;
use super::format::encode_segment_header;
use super::fs::Fs;
use super::fs::FsFile;
use super::fs::LockGuard;

/// Name of the lock file in a log directory.
pub const LOCK_FILE: &str = "LOCK";
/// The file naming the newest segment, so that a missing newest segment is noticed.
pub const HEAD_FILE: &str = "HEAD";
const HEAD_TEMP: &str = "HEAD.tmp";
/// File name suffix of log segments.
const SEGMENT_SUFFIX: &str = ".seg";
/// Requests the writer queue holds before `append` waits (backpressure).
const QUEUE_LEN: usize = 1024;

/// Tuning of a [`LogStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogOptions {
    /// When to fsync. See [`FsyncPolicy`].
    pub fsync: FsyncPolicy,
    /// A new segment is started once the active one reaches this size (checked between batches).
    pub segment_bytes: u64,
    /// The writer stops draining its queue into one batch past this many bytes.
    pub max_batch_bytes: usize,
    /// Newest entries kept in memory as openraft hands them over; older ones are kept encoded
    /// (see the module docs).
    pub decoded_tail: usize,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            fsync: FsyncPolicy::Always,
            segment_bytes: 16 << 20,
            max_batch_bytes: 8 << 20,
            decoded_tail: 4096,
        }
    }
}

/// The path of segment `id` in `dir`.
pub fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}{SEGMENT_SUFFIX}"))
}

fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SEGMENT_SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The log store's state, as rebuilt from the segments and kept current by every operation.
#[derive(Debug)]
struct LogData<C: KvTypeConfig> {
    /// Index of the first entry (of `encoded`, else of `entries`).
    first: u64,
    /// Consecutive entries from `first`, postcard-encoded: all but the newest `decoded_tail`.
    encoded: VecDeque<Box<[u8]>>,
    /// Consecutive entries after those of `encoded`.
    entries: VecDeque<EntryOf<C>>,
    decoded_tail: usize,
    purged: Option<LogIdOf<C>>,
    vote: Option<VoteOf<C>>,
    committed: Option<LogIdOf<C>>,
}

impl<C: KvTypeConfig> LogData<C> {
    fn new(decoded_tail: usize) -> Self {
        LogData {
            decoded_tail,
            first: 0,
            encoded: VecDeque::new(),
            entries: VecDeque::new(),
            purged: None,
            vote: None,
            committed: None,
        }
    }

    /// Number of entries held.
    fn len(&self) -> usize {
        self.encoded.len() + self.entries.len()
    }

    /// The entry at `position` (0 is the entry at index `first`).
    fn get(&self, position: usize) -> EntryOf<C> {
        match position.checked_sub(self.encoded.len()) {
            Some(decoded) => self.entries[decoded].clone(),
            None => postcard::from_bytes(&self.encoded[position]).expect("an entry this store encoded decodes"),
        }
    }

    fn last_log_id(&self) -> Option<LogIdOf<C>> {
        match self.len() {
            0 => self.purged,
            len => Some(self.get(len - 1).log_id()),
        }
    }

    /// Adds an entry after the last one. An empty log takes any index past the purged one:
    /// replay may start in a segment whose predecessors were deleted, and a later purge record
    /// covers the gap (checked by [`LogData::check_contiguous`]).
    fn push(&mut self, entry: EntryOf<C>) -> Result<(), String> {
        let index = entry.index();
        if self.len() == 0 {
            if let Some(purged) = &self.purged
                && index <= purged.index
            {
                return Err(format!(
                    "entry {index} is at or before the purged index {}",
                    purged.index
                ));
            }
            self.first = index;
        } else if index != self.first + self.len() as u64 {
            return Err(format!(
                "entry {index} does not follow the last entry {}",
                self.first + self.len() as u64 - 1
            ));
        }
        self.entries.push_back(entry);
        if self.entries.len() > self.decoded_tail {
            let oldest = self.entries.pop_front().expect("more than decoded_tail entries");
            let bytes = postcard::to_allocvec(&oldest).expect("postcard encoding into a Vec cannot fail");
            self.encoded.push_back(bytes.into_boxed_slice());
        }
        Ok(())
    }

    fn truncate_after(&mut self, last: Option<&LogIdOf<C>>) {
        let keep_below = last.map_or(0, |id| id.index + 1);
        let keep = keep_below.saturating_sub(self.first).min(self.len() as u64) as usize;
        match keep.checked_sub(self.encoded.len()) {
            Some(decoded) => self.entries.truncate(decoded),
            None => {
                self.encoded.truncate(keep);
                self.entries.clear();
            }
        }
    }

    fn purge(&mut self, log_id: LogIdOf<C>) {
        if self.purged.as_ref() >= Some(&log_id) {
            return;
        }
        let remove = (log_id.index + 1).saturating_sub(self.first).min(self.len() as u64) as usize;
        let from_encoded = remove.min(self.encoded.len());
        self.encoded.drain(..from_encoded);
        self.entries.drain(..remove - from_encoded);
        // Replay may meet a purge below the first entry (the segments holding the entries
        // before it were deleted after a later purge): then the first index stays.
        self.first = if self.len() == 0 {
            log_id.index + 1
        } else {
            self.first + remove as u64
        };
        self.purged = Some(log_id);
    }

    fn apply(&mut self, record: Record<C>) -> Result<(), String> {
        match record {
            Record::Entry(entry) => self.push(entry)?,
            Record::Vote(vote) => self.vote = Some(vote),
            Record::Committed(committed) => self.committed = committed,
            Record::Truncate(last) => self.truncate_after(last.as_ref()),
            Record::Purge(log_id) => self.purge(log_id),
        }
        Ok(())
    }

    /// After replay: the entries must start right after the purged id.
    fn check_contiguous(&self) -> Result<(), String> {
        match &self.purged {
            Some(purged) if self.len() > 0 && self.first != purged.index + 1 => Err(format!(
                "entries resume at index {} after the log was purged up to {}: entries are missing",
                self.first, purged.index
            )),
            _ => Ok(()),
        }
    }
}

/// The durable Raft log of one node. See the module docs.
pub struct LogStore<C: KvTypeConfig> {
    data: Arc<Mutex<LogData<C>>>,
    writer: mpsc::Sender<Request<C>>,
    exit: WriterExit,
}

impl<C: KvTypeConfig> Debug for LogStore<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogStore").finish_non_exhaustive()
    }
}

/// Reads entries and the vote of a [`LogStore`], from memory.
pub struct LogReader<C: KvTypeConfig> {
    data: Arc<Mutex<LogData<C>>>,
}

impl<C: KvTypeConfig> Clone for LogReader<C> {
    fn clone(&self) -> Self {
        LogReader {
            data: self.data.clone(),
        }
    }
}

/// Signals when a log store's writer thread has stopped: every queued write done and the
/// directory lock released. It stops once the [`LogStore`] is dropped.
#[derive(Debug, Clone)]
pub struct WriterExit(Arc<(Mutex<bool>, Condvar)>);

impl WriterExit {
    /// Blocks until the writer thread has stopped.
    pub fn wait(&self) {
        let (stopped, changed) = &*self.0;
        let mut guard = stopped.lock().expect("writer exit lock poisoned");
        while !*guard {
            guard = changed.wait(guard).expect("writer exit lock poisoned");
        }
    }
}

/// Marks the writer stopped when dropped, including by a panic.
struct ExitOnDrop(WriterExit);

impl Drop for ExitOnDrop {
    fn drop(&mut self) {
        let (stopped, changed) = &*(self.0).0;
        // Poisoning cannot happen here: nothing panics while holding this lock.
        *stopped.lock().unwrap_or_else(|e| e.into_inner()) = true;
        changed.notify_all();
    }
}

/// One queued write: encoded records, what they change in the writer's bookkeeping, and whom
/// to tell when they are durable.
struct Request<C: KvTypeConfig> {
    bytes: Vec<u8>,
    effect: Effect<C>,
    done: Done<C>,
}

enum Effect<C: KvTypeConfig> {
    Entries {
        last_index: u64,
    },
    Vote(VoteOf<C>),
    Committed(Option<LogIdOf<C>>),
    /// Nothing the writer tracks (a truncation, or a flush with no bytes).
    Nothing,
    Purge(LogIdOf<C>),
}

enum Done<C: KvTypeConfig> {
    Flushed(IOFlushed<C>),
    Reply(oneshot::Sender<io::Result<()>>),
    Nothing,
}

impl<C: KvTypeConfig> Done<C> {
    fn complete(self, result: io::Result<()>) {
        match self {
            Done::Flushed(callback) => callback.io_completed(result),
            // The waiter may have given up (its task was cancelled); nothing to tell then.
            Done::Reply(reply) => drop(reply.send(result)),
            Done::Nothing => {}
        }
    }
}

/// Refuses a log whose newest segment is missing: [`HEAD_FILE`] names a segment past the
/// newest one on disk. (A missing first or middle segment is found by the contiguity check.)
/// A directory written before HEAD existed has none and is accepted.
fn check_head(fs: &dyn Fs, dir: &Path, newest: Option<u64>) -> Result<(), StorageError> {
    let path = dir.join(HEAD_FILE);
    let bytes = match fs.read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(StorageError::io("read", &path, e)),
    };
    let head: u64 = std::str::from_utf8(&bytes)
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .ok_or_else(|| StorageError::Corrupt {
            file: path.clone(),
            offset: 0,
            reason: "not a segment id".to_string(),
        })?;
    match newest {
        Some(newest) if newest >= head => Ok(()),
        _ => Err(StorageError::Corrupt {
            file: segment_path(dir, head),
            offset: 0,
            reason: format!(
                "segment {head} is missing: {} names it as the newest segment, and the newest on disk is {}",
                path.display(),
                newest.map_or("none".to_string(), |n| n.to_string())
            ),
        }),
    }
}

impl<C: KvTypeConfig> LogStore<C> {
    /// Opens the log in `dir`, which must exist, recovering it as the [module docs](super)
    /// describe, and starts its writer thread. The directory stays locked until the writer
    /// stops.
    pub fn open(fs: Arc<dyn Fs>, dir: &Path, options: LogOptions) -> Result<Self, StorageError> {
        let names = fs.list(dir).map_err(|source| StorageError::DataDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = fs.lock(&lock_path).map_err(|e| match e.kind() {
            io::ErrorKind::WouldBlock => StorageError::Locked {
                path: lock_path.clone(),
            },
            _ => StorageError::io("lock", &lock_path, e),
        })?;
        let mut ids: Vec<u64> = names.iter().filter_map(|n| parse_segment_name(n)).collect();
        ids.sort_unstable();
        check_head(fs.as_ref(), dir, ids.last().copied())?;
        for pair in ids.windows(2) {
            if pair[1] != pair[0] + 1 {
                return Err(StorageError::Corrupt {
                    file: segment_path(dir, pair[0] + 1),
                    offset: 0,
                    reason: format!("segment {} is missing between {} and {}", pair[0] + 1, pair[0], pair[1]),
                });
            }
        }

        let mut data = LogData::<C>::new(options.decoded_tail);
        let mut segments = Vec::with_capacity(ids.len());
        let mut active_len = 0;
        let mut torn_tail = false;
        for (i, &id) in ids.iter().enumerate() {
            let path = segment_path(dir, id);
            let newest = i + 1 == ids.len();
            let bytes = fs.read(&path).map_err(|e| StorageError::io("read", &path, e))?;
            let scan = decode_segment::<C>(&bytes, id, newest).map_err(|e| StorageError::format(&path, e))?;
            let mut max_index = None;
            for (offset, record) in scan.records {
                if let Record::Entry(entry) = &record {
                    max_index = Some(entry.index());
                }
                data.apply(record).map_err(|reason| StorageError::Corrupt {
                    file: path.clone(),
                    offset,
                    reason,
                })?;
            }
            let mut len = bytes.len() as u64;
            if let Some(torn) = scan.torn {
                torn_tail = true;
                tracing::warn!(
                    file = %path.display(),
                    offset = torn.offset,
                    bytes = torn.len,
                    reason = %torn.reason,
                    "log segment has a torn tail (a write cut short by a crash): truncating {} bytes",
                    torn.len
                );
                if torn.in_header() {
                    fs.remove(&path).map_err(|e| StorageError::io("remove", &path, e))?;
                    fs.sync_dir(dir).map_err(|e| StorageError::io("sync", dir, e))?;
                    continue;
                }
                fs.truncate(&path, torn.offset)
                    .map_err(|e| StorageError::io("truncate", &path, e))?;
                len = torn.offset;
            }
            active_len = len;
            segments.push(SegmentInfo { id, max_index });
        }
        data.check_contiguous().map_err(|reason| StorageError::Corrupt {
            file: dir.to_path_buf(),
            offset: 0,
            reason,
        })?;

        let checkpoint = Checkpoint {
            vote: data.vote.clone(),
            committed: data.committed,
            purged: data.purged,
        };
        let mut writer = Writer {
            fs,
            dir: dir.to_path_buf(),
            options,
            segments,
            file: None,
            active_len,
            checkpoint,
            failed: None,
            _lock: lock,
        };
        // After a torn tail the newest segment may have lost part of its checkpoint records:
        // start a fresh segment, whose checkpoint is complete, before it can be relied on.
        match writer.segments.last() {
            Some(active) if !torn_tail => {
                let path = segment_path(dir, active.id);
                let file = writer
                    .fs
                    .open_append(&path)
                    .map_err(|e| StorageError::io("open", &path, e))?;
                writer.file = Some(file);
            }
            _ => writer.roll()?,
        }
        writer.delete_purged();
        tracing::info!(
            dir = %dir.display(),
            segments = writer.segments.len(),
            entries = data.len(),
            last_log_id = ?data.last_log_id(),
            "log opened"
        );

        let (tx, rx) = mpsc::channel(QUEUE_LEN);
        let exit = WriterExit(Arc::new((Mutex::new(false), Condvar::new())));
        let on_exit = ExitOnDrop(exit.clone());
        std::thread::Builder::new()
            .name("kv-log-writer".to_string())
            .spawn(move || {
                let _on_exit = on_exit;
                writer.run(rx);
            })
            .map_err(|e| StorageError::io("spawn writer for", dir, e))?;
        Ok(LogStore {
            data: Arc::new(Mutex::new(data)),
            writer: tx,
            exit,
        })
    }

    /// Waits until everything queued so far is durable (synced, under [`FsyncPolicy::Always`])
    /// and the segments it purged are deleted.
    pub async fn flush(&self) -> io::Result<()> {
        flush(&self.writer).await
    }

    /// A handle that flushes this store from elsewhere (the store itself is usually owned by
    /// openraft). It does not keep the writer running once the store is dropped.
    pub fn flush_handle(&self) -> FlushHandle<C> {
        FlushHandle(self.writer.downgrade())
    }

    /// A handle telling when the writer thread has stopped, after this store is dropped.
    pub fn writer_exit(&self) -> WriterExit {
        self.exit.clone()
    }

    fn data(&self) -> MutexGuard<'_, LogData<C>> {
        lock(&self.data)
    }

    async fn queue(&self, record: &Record<C>, effect: Effect<C>, done: Done<C>) -> io::Result<()> {
        let mut bytes = Vec::new();
        encode_record(record, &mut bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        self.send(Request { bytes, effect, done }).await
    }

    async fn send(&self, request: Request<C>) -> io::Result<()> {
        self.writer.send(request).await.map_err(|_| writer_stopped())
    }
}

async fn flush<C: KvTypeConfig>(writer: &mpsc::Sender<Request<C>>) -> io::Result<()> {
    let (tx, rx) = oneshot::channel();
    let request = Request {
        bytes: Vec::new(),
        effect: Effect::Nothing,
        done: Done::Reply(tx),
    };
    writer.send(request).await.map_err(|_| writer_stopped())?;
    rx.await.map_err(|_| writer_stopped())?
}

/// Flushes a [`LogStore`] without owning it. See [`LogStore::flush_handle`].
pub struct FlushHandle<C: KvTypeConfig>(mpsc::WeakSender<Request<C>>);

impl<C: KvTypeConfig> Debug for FlushHandle<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlushHandle").finish_non_exhaustive()
    }
}

impl<C: KvTypeConfig> FlushHandle<C> {
    /// Same as [`LogStore::flush`]; fails if the store is gone.
    pub async fn flush(&self) -> io::Result<()> {
        let writer = self.0.upgrade().ok_or_else(writer_stopped)?;
        flush(&writer).await
    }
}

fn writer_stopped() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the log writer thread has stopped")
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock means a panic while holding it: a bug, not an input error.
    mutex.lock().expect("log store lock poisoned")
}

impl<C: KvTypeConfig> RaftLogReader<C> for LogReader<C> {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<EntryOf<C>>, io::Error> {
        let data = lock(&self.data);
        let start = match range.start_bound() {
            Bound::Included(&i) => i,
            Bound::Excluded(&i) => i.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(&i) => i.saturating_add(1),
            Bound::Excluded(&i) => i,
            Bound::Unbounded => u64::MAX,
        };
        let len = data.len() as u64;
        let from = start.saturating_sub(data.first).min(len);
        let to = end.saturating_sub(data.first).min(len);
        Ok((from as usize..to as usize)
            .map(|position| data.get(position))
            .collect())
    }

    async fn read_vote(&mut self) -> Result<Option<VoteOf<C>>, io::Error> {
        Ok(lock(&self.data).vote.clone())
    }
}

impl<C: KvTypeConfig> RaftLogReader<C> for LogStore<C> {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<EntryOf<C>>, io::Error> {
        LogReader {
            data: self.data.clone(),
        }
        .try_get_log_entries(range)
        .await
    }

    async fn read_vote(&mut self) -> Result<Option<VoteOf<C>>, io::Error> {
        Ok(self.data().vote.clone())
    }
}

impl<C: KvTypeConfig> RaftLogStorage<C> for LogStore<C> {
    type LogReader = LogReader<C>;

    async fn get_log_state(&mut self) -> Result<LogState<C>, io::Error> {
        let data = self.data();
        Ok(LogState {
            last_purged_log_id: data.purged,
            last_log_id: data.last_log_id(),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        LogReader {
            data: self.data.clone(),
        }
    }

    async fn save_vote(&mut self, vote: &VoteOf<C>) -> Result<(), io::Error> {
        self.data().vote = Some(vote.clone());
        let (tx, rx) = oneshot::channel();
        self.queue(&Record::Vote(vote.clone()), Effect::Vote(vote.clone()), Done::Reply(tx))
            .await?;
        rx.await.map_err(|_| writer_stopped())?
    }

    async fn save_committed(&mut self, committed: Option<LogIdOf<C>>) -> Result<(), io::Error> {
        self.data().committed = committed;
        let record = Record::Committed(committed);
        self.queue(&record, Effect::Committed(committed), Done::Nothing).await
    }

    async fn read_committed(&mut self) -> Result<Option<LogIdOf<C>>, io::Error> {
        Ok(self.data().committed)
    }

    async fn append<I>(&mut self, entries: I, callback: IOFlushed<C>) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = EntryOf<C>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut bytes = Vec::new();
        let mut last_index = None;
        {
            let mut data = self.data();
            for entry in entries {
                last_index = Some(entry.index());
                let record = Record::<C>::Entry(entry);
                encode_record(&record, &mut bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
                let Record::Entry(entry) = record else {
                    unreachable!("built as an entry above")
                };
                data.push(entry)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            }
        }
        let Some(last_index) = last_index else {
            callback.io_completed(Ok(()));
            return Ok(());
        };
        let request = Request {
            bytes,
            effect: Effect::Entries { last_index },
            done: Done::Flushed(callback),
        };
        self.send(request).await
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogIdOf<C>>) -> Result<(), io::Error> {
        self.data().truncate_after(last_log_id.as_ref());
        self.queue(&Record::Truncate(last_log_id), Effect::Nothing, Done::Nothing)
            .await
    }

    async fn purge(&mut self, log_id: LogIdOf<C>) -> Result<(), io::Error> {
        self.data().purge(log_id);
        let record = Record::Purge(log_id);
        self.queue(&record, Effect::Purge(log_id), Done::Nothing).await
    }
}

/// Hands the memory freed by a purge back to the system. A purge after a snapshot frees up to
/// a quarter of the key count's entries scattered through the heap, where glibc keeps them
/// unless asked: on a load of 1M small keys, asking returns about 24 bytes per key of resident
/// memory (`docs/benchmarks.md`). The writer thread does it once per purge, after answering
/// the batch that carried the purge; on a heap of 150 MB with holes it takes about 25 ms.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own heaps, under their locks.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// What a segment holds, as far as deleting it is concerned.
#[derive(Debug)]
struct SegmentInfo {
    id: u64,
    /// The largest entry index written to it (including entries truncated since).
    max_index: Option<u64>,
}

/// The state a new segment starts with, so that older segments can be deleted.
struct Checkpoint<C: KvTypeConfig> {
    vote: Option<VoteOf<C>>,
    committed: Option<LogIdOf<C>>,
    purged: Option<LogIdOf<C>>,
}

/// The writer thread's state: the segments and the open active one.
struct Writer<C: KvTypeConfig> {
    fs: Arc<dyn Fs>,
    dir: PathBuf,
    options: LogOptions,
    /// Oldest first; the last is the active segment.
    segments: Vec<SegmentInfo>,
    file: Option<Box<dyn FsFile>>,
    active_len: u64,
    /// The vote, committed and purged ids as of the end of the written records.
    checkpoint: Checkpoint<C>,
    /// Set by the first failed write: the file's tail is then unknown and nothing more is written.
    failed: Option<(io::ErrorKind, String)>,
    _lock: Box<dyn LockGuard>,
}

impl<C: KvTypeConfig> Writer<C> {
    fn run(mut self, mut rx: mpsc::Receiver<Request<C>>) {
        while let Some(first) = rx.blocking_recv() {
            let mut size = first.bytes.len();
            let mut batch = vec![first];
            while size < self.options.max_batch_bytes {
                match rx.try_recv() {
                    Ok(request) => {
                        size += request.bytes.len();
                        batch.push(request);
                    }
                    Err(_) => break,
                }
            }
            match self.write_batch(&batch) {
                Ok(purged) => {
                    if purged {
                        self.delete_purged();
                    }
                    for request in batch {
                        request.done.complete(Ok(()));
                    }
                    if purged {
                        release_freed_memory();
                    }
                }
                Err(error) => {
                    tracing::error!(%error, "log write failed; the log accepts no more writes");
                    let kind = error.kind();
                    let message = error.to_string();
                    for request in batch {
                        request.done.complete(Err(io::Error::new(kind, message.clone())));
                    }
                    self.failed.get_or_insert((kind, message));
                }
            }
        }
    }

    /// Writes and syncs a batch. Returns whether it contained a purge.
    fn write_batch(&mut self, batch: &[Request<C>]) -> Result<bool, StorageError> {
        if let Some((kind, message)) = &self.failed {
            let source = io::Error::new(*kind, format!("the log stopped after an earlier failure: {message}"));
            return Err(StorageError::io("write", &self.dir, source));
        }
        if self.active_len >= self.options.segment_bytes {
            self.roll()?;
        }
        let mut bytes = Vec::with_capacity(batch.iter().map(|r| r.bytes.len()).sum());
        let mut purged = false;
        for request in batch {
            bytes.extend_from_slice(&request.bytes);
            match &request.effect {
                Effect::Entries { last_index } => {
                    let active = self
                        .segments
                        .last_mut()
                        .expect("the writer always has an active segment");
                    active.max_index = active.max_index.max(Some(*last_index));
                }
                Effect::Vote(vote) => self.checkpoint.vote = Some(vote.clone()),
                Effect::Committed(committed) => self.checkpoint.committed = *committed,
                Effect::Nothing => {}
                Effect::Purge(log_id) => {
                    self.checkpoint.purged = Some(*log_id);
                    purged = true;
                }
            }
        }
        self.write_active(&bytes)?;
        if purged && self.active_purged() {
            // Everything in the active segment is purged: start a new one (whose checkpoint
            // carries the purge) so that the old one can be deleted too.
            self.roll()?;
        }
        Ok(purged)
    }

    fn write_active(&mut self, bytes: &[u8]) -> Result<(), StorageError> {
        let id = self
            .segments
            .last()
            .expect("the writer always has an active segment")
            .id;
        let file = self.file.as_mut().expect("the writer always has an open segment");
        let path = segment_path(&self.dir, id);
        if !bytes.is_empty() {
            file.write_all(bytes).map_err(|e| StorageError::io("write", &path, e))?;
        }
        self.active_len += bytes.len() as u64;
        if self.options.fsync == FsyncPolicy::Always {
            file.sync().map_err(|e| StorageError::io("sync", &path, e))?;
        }
        Ok(())
    }

    /// Starts a new segment: header, then the checkpoint records, synced with its directory
    /// entry before anything is written to it.
    fn roll(&mut self) -> Result<(), StorageError> {
        let id = self.segments.last().map_or(1, |s| s.id + 1);
        let path = segment_path(&self.dir, id);
        let mut bytes = encode_segment_header(id).to_vec();
        let mut records = Vec::new();
        if let Some(vote) = &self.checkpoint.vote {
            records.push(Record::<C>::Vote(vote.clone()));
        }
        if let Some(committed) = &self.checkpoint.committed {
            records.push(Record::Committed(Some(*committed)));
        }
        if let Some(purged) = &self.checkpoint.purged {
            records.push(Record::Purge(*purged));
        }
        for record in &records {
            encode_record(record, &mut bytes).expect("checkpoint records are small");
        }
        let mut file = self
            .fs
            .create(&path)
            .map_err(|e| StorageError::io("create", &path, e))?;
        file.write_all(&bytes)
            .map_err(|e| StorageError::io("write", &path, e))?;
        if self.options.fsync == FsyncPolicy::Always {
            file.sync().map_err(|e| StorageError::io("sync", &path, e))?;
            self.fs
                .sync_dir(&self.dir)
                .map_err(|e| StorageError::io("sync", &self.dir, e))?;
        }
        self.segments.push(SegmentInfo { id, max_index: None });
        self.file = Some(file);
        self.active_len = bytes.len() as u64;
        self.write_head(id)?;
        tracing::debug!(segment = %path.display(), "started log segment");
        Ok(())
    }

    /// Records `id` as the newest segment in [`HEAD_FILE`]: a temporary file, synced, renamed
    /// over it, the directory synced. Written after the segment itself is durable, so HEAD
    /// never names a segment that was not there.
    fn write_head(&self, id: u64) -> Result<(), StorageError> {
        let temp = self.dir.join(HEAD_TEMP);
        let head = self.dir.join(HEAD_FILE);
        let mut file = self
            .fs
            .create(&temp)
            .map_err(|e| StorageError::io("create", &temp, e))?;
        file.write_all(format!("{id}\n").as_bytes())
            .map_err(|e| StorageError::io("write", &temp, e))?;
        if self.options.fsync == FsyncPolicy::Always {
            file.sync().map_err(|e| StorageError::io("sync", &temp, e))?;
        }
        drop(file);
        self.fs
            .rename(&temp, &head)
            .map_err(|e| StorageError::io("rename", &temp, e))?;
        if self.options.fsync == FsyncPolicy::Always {
            self.fs
                .sync_dir(&self.dir)
                .map_err(|e| StorageError::io("sync", &self.dir, e))?;
        }
        Ok(())
    }

    /// Whether the active segment holds entries and all of them are purged.
    fn active_purged(&self) -> bool {
        let active = self.segments.last().and_then(|s| s.max_index);
        let purged = self.checkpoint.purged.as_ref().map(|p| p.index);
        active.is_some_and(|max| Some(max) <= purged)
    }

    /// Deletes the oldest segments whose every entry is purged, once the purge record is
    /// durable. Never the active segment. A failure only leaves files behind: it is logged.
    fn delete_purged(&mut self) {
        let Some(purged) = self.checkpoint.purged.as_ref().map(|p| p.index) else {
            return;
        };
        let deletable = self.segments[..self.segments.len().saturating_sub(1)]
            .iter()
            .take_while(|s| s.max_index.is_none_or(|max| max <= purged))
            .count();
        if deletable == 0 {
            return;
        }
        let mut deleted = 0;
        for segment in &self.segments[..deletable] {
            let path = segment_path(&self.dir, segment.id);
            if let Err(error) = self.fs.remove(&path) {
                tracing::warn!(file = %path.display(), %error, "cannot delete purged log segment");
                break;
            }
            deleted += 1;
        }
        if let Err(error) = self.fs.sync_dir(&self.dir) {
            tracing::warn!(dir = %self.dir.display(), %error, "cannot sync the log directory after deleting segments");
        }
        self.segments.drain(..deleted);
        tracing::debug!(deleted, purged, "deleted purged log segments");
    }
}
