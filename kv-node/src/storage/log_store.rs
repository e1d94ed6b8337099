//! The segmented, group-committed Raft log store. The format and the recovery rules are in the
//! [module docs of `storage`](super).
//!
//! # Memory and reads
//! Only the newest [`LogOptions::decoded_tail`] entries are kept in memory, as openraft hands
//! them over: apply and replication read them right after the append, sharing the write behind
//! its `Arc`. Of older entries only the place of their record is kept (segment id and offset,
//! in runs of consecutive entries of one segment: 4 to 8 bytes per entry), and they are read back
//! from the segment when openraft asks for them (a lagging follower's replication, apply after
//! a restart), as etcd and TiKV do. A decoded 64-byte SET costs about 290 bytes; the log
//! between two snapshots, up to a quarter of the store's key count, costs 4 to 8 bytes per entry
//! beyond the tail.
//!
//! - **When an entry's place is known**: once the writer thread has written it. Until then
//!   the entry stays decoded, whatever the tail's size. The writer records each place it
//!   wrote under the log id it wrote, and the place is taken only if that entry is still the
//!   one held at that index and the next to be placed: an entry truncated (and replaced)
//!   while queued never lends its place to its replacement.
//! - **Truncation** forgets the places after the cut; the replacing entries are written
//!   further on and placed when written. Segments are append-only, so a place never holds
//!   anything else than the entry written there.
//! - **Purge** deletes segments. A reader takes the places under the state lock and, before
//!   letting go of it, the read side of a files lock that the writer takes to delete segments
//!   (lock order: state, then files; the writer never holds both). So a read returns the
//!   entries as of one moment, and the segments it needs stay until it is done; an entry
//!   purged before the read started is simply not returned, as openraft expects of purged
//!   entries.
//! - **Reads** go through [`Fs::read_at`]: per run of the range, one read from the first
//!   record to the last record's frame header, then the last payload. Each record's
//!   checksum and index are checked: a damaged record is an [`io::ErrorKind::InvalidData`]
//!   error, never a panic or a wrong entry.
//! - **Replay** at open decodes every record (checksums included, as before), keeps the place
//!   of every entry and the newest `decoded_tail` entries decoded.
//!
//! Tested in `kv-node/tests/log_on_disk.rs` (reads after a restart, after a truncation that
//! raced the writer, of damaged records, racing purges), `log_suite.rs` (openraft's suite with
//! a tail of 0 and 2 entries) and `recovery.rs`.
//!
//! # Writes
//! Writes take two steps. The calling task updates the in-memory state (so the entries are
//! readable at once, as openraft requires), encodes the records and queues them to one writer
//! thread. The writer drains everything queued, writes it with one `write`, syncs once and only
//! then completes each request: [`IOFlushed`] callbacks for appends, the waiting caller for a
//! vote. Concurrent appends therefore share one fsync (group commit), and the queue order is the
//! file order, so every write is serialized as openraft demands. After the sync the writer
//! records where it wrote each entry and drops the decoded entries past the tail.

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
use std::sync::RwLock;

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
use super::format::MAX_RECORD_LEN;
use super::format::RECORD_HEADER_LEN;
use super::format::Record;
use super::format::decode_frame;
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
    /// Newest entries kept in memory as openraft hands them over; older ones are read from
    /// their segment (see the module docs).
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

/// Where a record lies: its segment and its byte offset there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Location {
    segment: u64,
    offset: u64,
}

/// Consecutive entries whose records lie in one segment, in order (not necessarily adjacent:
/// other records may come between them).
#[derive(Debug)]
struct Run {
    segment: u64,
    /// Index of the run's first entry.
    first: u64,
    /// File offset the `offsets` count from.
    base: u64,
    /// Offset of each entry's record, from `base`: 4 bytes per entry.
    offsets: Vec<u32>,
}

impl Run {
    fn end(&self) -> u64 {
        self.first + self.offsets.len() as u64
    }
}

/// Where the entries of a stretch of the log lie in the segments, as runs.
#[derive(Debug, Default)]
struct Locations {
    runs: VecDeque<Run>,
}

impl Locations {
    /// Adds the location of entry `index`, which must follow the last one located.
    fn push(&mut self, index: u64, at: Location) {
        if let Some(run) = self.runs.back_mut()
            && run.segment == at.segment
            && run.end() == index
            && let Some(relative) = at.offset.checked_sub(run.base).and_then(|r| u32::try_from(r).ok())
        {
            run.offsets.push(relative);
            return;
        }
        self.runs.push_back(Run {
            segment: at.segment,
            first: index,
            base: at.offset,
            offsets: vec![0],
        });
    }

    /// Forgets the locations of entries at `index` and after.
    fn truncate(&mut self, index: u64) {
        while self.runs.back().is_some_and(|run| run.first >= index) {
            self.runs.pop_back();
        }
        if let Some(run) = self.runs.back_mut() {
            run.offsets.truncate((index.max(run.first) - run.first) as usize);
        }
    }

    /// Forgets the locations of entries before `index`.
    fn purge(&mut self, index: u64) {
        while self.runs.front().is_some_and(|run| run.end() <= index) {
            self.runs.pop_front();
        }
        if let Some(run) = self.runs.front_mut()
            && run.first < index
        {
            run.offsets.drain(..(index - run.first) as usize);
            run.first = index;
        }
    }

    /// The reads that fetch entries `from..to` (all located): one per run they touch.
    fn plan(&self, from: u64, to: u64) -> Vec<SpanRead> {
        let mut reads = Vec::new();
        let start = self.runs.partition_point(|run| run.end() <= from);
        for run in self.runs.range(start..) {
            if run.first >= to {
                break;
            }
            let (lo, hi) = (from.max(run.first), to.min(run.end()));
            let offsets = &run.offsets[(lo - run.first) as usize..(hi - run.first) as usize];
            reads.push(SpanRead {
                segment: run.segment,
                first: lo,
                offsets: offsets.iter().map(|&o| run.base + u64::from(o)).collect(),
            });
        }
        reads
    }
}

/// Entries `first..` of one segment, to read at these file offsets.
struct SpanRead {
    segment: u64,
    first: u64,
    offsets: Vec<u64>,
}

impl SpanRead {
    /// Reads the entries from the segment, checking each record's checksum and index: two
    /// reads, from the first record to the last one's frame header, then the last payload.
    /// A damaged or unexpected record is an [`io::ErrorKind::InvalidData`] error.
    fn read<C: KvTypeConfig>(&self, fs: &dyn Fs, dir: &Path, out: &mut Vec<EntryOf<C>>) -> io::Result<()> {
        let path = segment_path(dir, self.segment);
        let (Some(&start), Some(&last)) = (self.offsets.first(), self.offsets.last()) else {
            return Ok(());
        };
        let corrupt = |offset: u64, reason: String| -> io::Error {
            StorageError::Corrupt {
                file: path.clone(),
                offset,
                reason,
            }
            .into()
        };
        // Offsets increase along a run (entries are written in index order); checked anyway.
        let within = |offset: u64| {
            offset
                .checked_sub(start)
                .and_then(|o| usize::try_from(o).ok())
                .ok_or_else(|| corrupt(offset, format!("record before the run's first at {start}")))
        };
        let last_frame = within(last)?;
        let mut buf = vec![0; last_frame + RECORD_HEADER_LEN];
        fs.read_at(&path, start, &mut buf)?;
        let len = u32::from_le_bytes(buf[last_frame..last_frame + 4].try_into().expect("4 bytes")) as usize;
        if len == 0 || len > MAX_RECORD_LEN {
            return Err(corrupt(
                last,
                format!("record length {len} out of range 1..={MAX_RECORD_LEN}"),
            ));
        }
        buf.resize(buf.len() + len, 0);
        fs.read_at(
            &path,
            last + RECORD_HEADER_LEN as u64,
            &mut buf[last_frame + RECORD_HEADER_LEN..],
        )?;
        for (index, &offset) in (self.first..).zip(&self.offsets) {
            let (record, _) = decode_frame::<C>(&buf, within(offset)?).map_err(|r| corrupt(offset, r))?;
            match record {
                Record::Entry(entry) if entry.index() == index => out.push(entry),
                other => {
                    return Err(corrupt(
                        offset,
                        format!("expected the record of entry {index}, found {other:?}"),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The log store's state, as rebuilt from the segments and kept current by every operation.
///
/// Every entry `first..end` is held decoded (`entries`, the newest), or located on disk
/// (`located`, the oldest), or both: `end - entries.len() <= located_end`.
#[derive(Debug)]
struct LogData<C: KvTypeConfig> {
    /// Index of the first entry.
    first: u64,
    /// One past the index of the last entry (`first` if there is none).
    end: u64,
    /// The last entry's log id, while there is one.
    last: Option<LogIdOf<C>>,
    /// Locations of entries `first..located_end`, known once the writer has written them.
    located: Locations,
    located_end: u64,
    /// Entries `end - entries.len()..end`: the newest `decoded_tail`, and any not yet located.
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
            end: 0,
            last: None,
            located: Locations::default(),
            located_end: 0,
            entries: VecDeque::new(),
            purged: None,
            vote: None,
            committed: None,
        }
    }

    /// Number of entries held.
    fn len(&self) -> u64 {
        self.end - self.first
    }

    /// Index of the first entry held decoded.
    fn decoded_from(&self) -> u64 {
        self.end - self.entries.len() as u64
    }

    fn last_log_id(&self) -> Option<LogIdOf<C>> {
        match self.len() {
            0 => self.purged,
            _ => self.last,
        }
    }

    /// Adds an entry after the last one, with its location if known (replay). An empty log
    /// takes any index past the purged one: replay may start in a segment whose predecessors
    /// were deleted, and a later purge record covers the gap (checked by
    /// [`LogData::check_contiguous`]).
    fn push(&mut self, entry: EntryOf<C>, at: Option<Location>) -> Result<(), String> {
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
            self.located.purge(u64::MAX);
            (self.first, self.end, self.located_end) = (index, index, index);
        } else if index != self.end {
            return Err(format!("entry {index} does not follow the last entry {}", self.end - 1));
        }
        self.last = Some(entry.log_id());
        self.entries.push_back(entry);
        self.end += 1;
        if let Some(at) = at {
            self.locate(index, at);
        }
        self.trim();
        Ok(())
    }

    /// Records where entry `index` was written: only if it is the next one to locate.
    fn locate(&mut self, index: u64, at: Location) {
        if index == self.located_end && index < self.end {
            self.located.push(index, at);
            self.located_end += 1;
        }
    }

    /// Records where the writer wrote the entry `log_id`, unless it was truncated (or purged)
    /// since it was queued: a location is taken only for the entry held at that index now.
    fn written(&mut self, log_id: &LogIdOf<C>, at: Location) {
        let index = log_id.index;
        if index != self.located_end || index < self.decoded_from() || index >= self.end {
            return;
        }
        if self.entries[(index - self.decoded_from()) as usize].log_id() == *log_id {
            self.locate(index, at);
        }
    }

    /// Drops decoded entries past the newest `decoded_tail` that are located.
    fn trim(&mut self) {
        while self.entries.len() > self.decoded_tail && self.decoded_from() < self.located_end {
            self.entries.pop_front();
        }
    }

    fn truncate_after(&mut self, last: Option<&LogIdOf<C>>) {
        let keep_below = last.map_or(0, |id| id.index + 1).clamp(self.first, self.end);
        if keep_below == self.end {
            return;
        }
        let drop_decoded = (self.end - keep_below).min(self.entries.len() as u64) as usize;
        self.entries.truncate(self.entries.len() - drop_decoded);
        self.located.truncate(keep_below);
        self.located_end = self.located_end.min(keep_below);
        self.end = keep_below;
        self.last = match (self.entries.back(), last) {
            _ if self.len() == 0 => None,
            (Some(entry), _) => Some(entry.log_id()),
            (None, last) => last.copied(),
        };
    }

    fn purge(&mut self, log_id: LogIdOf<C>) {
        if self.purged.as_ref() >= Some(&log_id) {
            return;
        }
        let below = (log_id.index + 1).clamp(self.first, self.end);
        let drop_decoded = below.saturating_sub(self.decoded_from()) as usize;
        self.entries.drain(..drop_decoded);
        self.located.purge(below);
        self.first = below;
        self.located_end = self.located_end.max(below);
        // Replay may meet a purge below the first entry (the segments holding the entries
        // before it were deleted after a later purge): then the first index stays.
        if self.len() == 0 {
            self.first = log_id.index + 1;
            self.end = self.first;
            self.located_end = self.first;
            self.last = None;
        }
        self.purged = Some(log_id);
    }

    fn apply(&mut self, record: Record<C>, at: Location) -> Result<(), String> {
        match record {
            Record::Entry(entry) => self.push(entry, Some(at))?,
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

/// What the store, its readers and its writer thread share.
struct Shared<C: KvTypeConfig> {
    data: Mutex<LogData<C>>,
    /// Held for reading while entries are read from the segments, for writing while segments
    /// are deleted: a reader takes it before it lets go of `data`, so the locations it took
    /// there stay readable until it is done. Lock order: `data`, then `files`.
    files: RwLock<()>,
    fs: Arc<dyn Fs>,
    dir: PathBuf,
}

/// The durable Raft log of one node. See the module docs.
pub struct LogStore<C: KvTypeConfig> {
    shared: Arc<Shared<C>>,
    writer: mpsc::Sender<Request<C>>,
    exit: WriterExit,
}

impl<C: KvTypeConfig> Debug for LogStore<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogStore").finish_non_exhaustive()
    }
}

/// Reads entries and the vote of a [`LogStore`]: the decoded tail from memory, older entries
/// from the segments.
pub struct LogReader<C: KvTypeConfig> {
    shared: Arc<Shared<C>>,
}

impl<C: KvTypeConfig> Clone for LogReader<C> {
    fn clone(&self) -> Self {
        LogReader {
            shared: self.shared.clone(),
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
    /// Entry records: each entry's log id and its record's offset in the request's bytes.
    Entries(Vec<(LogIdOf<C>, usize)>),
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
                data.apply(record, Location { segment: id, offset })
                    .map_err(|reason| StorageError::Corrupt {
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
        let (entries, last_log_id) = (data.len(), data.last_log_id());
        let shared = Arc::new(Shared {
            data: Mutex::new(data),
            files: RwLock::new(()),
            fs: fs.clone(),
            dir: dir.to_path_buf(),
        });
        let mut writer = Writer {
            shared: shared.clone(),
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
            entries,
            last_log_id = ?last_log_id,
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
            shared,
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
        lock(&self.shared.data)
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

impl<C: KvTypeConfig> Shared<C> {
    /// Entries in `range`, as of one moment: the locations and the decoded entries are taken
    /// under the `data` lock, and the segments stay while they are read (see [`Shared::files`]).
    fn entries(&self, range: impl RangeBounds<u64>) -> io::Result<Vec<EntryOf<C>>> {
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
        let (reads, decoded, _files) = {
            let data = lock(&self.data);
            let (from, to) = (start.clamp(data.first, data.end), end.clamp(data.first, data.end));
            if from >= to {
                return Ok(Vec::new());
            }
            let split = data.decoded_from().clamp(from, to);
            let decoded: Vec<_> = data
                .entries
                .range(
                    split.saturating_sub(data.decoded_from()) as usize..to.saturating_sub(data.decoded_from()) as usize,
                )
                .cloned()
                .collect();
            if split == from {
                return Ok(decoded);
            }
            let files = self.files.read().expect("log files lock poisoned");
            (data.located.plan(from, split), decoded, files)
        };
        let mut entries = Vec::with_capacity(reads.iter().map(|r| r.offsets.len()).sum::<usize>() + decoded.len());
        for read in &reads {
            read.read::<C>(self.fs.as_ref(), &self.dir, &mut entries)?;
        }
        entries.extend(decoded);
        Ok(entries)
    }
}

impl<C: KvTypeConfig> RaftLogReader<C> for LogReader<C> {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<EntryOf<C>>, io::Error> {
        self.shared.entries(range)
    }

    async fn read_vote(&mut self) -> Result<Option<VoteOf<C>>, io::Error> {
        Ok(lock(&self.shared.data).vote.clone())
    }
}

impl<C: KvTypeConfig> RaftLogReader<C> for LogStore<C> {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<EntryOf<C>>, io::Error> {
        self.shared.entries(range)
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
            shared: self.shared.clone(),
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
        let mut written = Vec::new();
        {
            let mut data = self.data();
            for entry in entries {
                written.push((entry.log_id(), bytes.len()));
                let record = Record::<C>::Entry(entry);
                encode_record(&record, &mut bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
                let Record::Entry(entry) = record else {
                    unreachable!("built as an entry above")
                };
                data.push(entry, None)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            }
        }
        if written.is_empty() {
            callback.io_completed(Ok(()));
            return Ok(());
        }
        let request = Request {
            bytes,
            effect: Effect::Entries(written),
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
    /// To record where entries were written, and to delete segments under `files`.
    shared: Arc<Shared<C>>,
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
                Ok((purged, written)) => {
                    if !written.is_empty() {
                        let mut data = lock(&self.shared.data);
                        for (log_id, at) in &written {
                            data.written(log_id, *at);
                        }
                        data.trim();
                    }
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

    /// Writes and syncs a batch. Returns whether it contained a purge, and where it wrote
    /// each entry.
    #[expect(clippy::type_complexity, reason = "a pair of plain results")]
    fn write_batch(&mut self, batch: &[Request<C>]) -> Result<(bool, Vec<(LogIdOf<C>, Location)>), StorageError> {
        if let Some((kind, message)) = &self.failed {
            let source = io::Error::new(*kind, format!("the log stopped after an earlier failure: {message}"));
            return Err(StorageError::io("write", &self.dir, source));
        }
        if self.active_len >= self.options.segment_bytes {
            self.roll()?;
        }
        let mut bytes = Vec::with_capacity(batch.iter().map(|r| r.bytes.len()).sum());
        let mut purged = false;
        let mut written = Vec::new();
        let active = self
            .segments
            .last_mut()
            .expect("the writer always has an active segment");
        for request in batch {
            let at = self.active_len + bytes.len() as u64;
            bytes.extend_from_slice(&request.bytes);
            match &request.effect {
                Effect::Entries(entries) => {
                    for (log_id, offset) in entries {
                        let location = Location {
                            segment: active.id,
                            offset: at + *offset as u64,
                        };
                        written.push((*log_id, location));
                    }
                    let last_index = entries.last().map(|(log_id, _)| log_id.index);
                    active.max_index = active.max_index.max(last_index);
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
        Ok((purged, written))
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
        {
            // No reader is between taking locations and reading them (see `Shared::files`).
            let _files = self.shared.files.write().expect("log files lock poisoned");
            for segment in &self.segments[..deletable] {
                let path = segment_path(&self.dir, segment.id);
                if let Err(error) = self.fs.remove(&path) {
                    tracing::warn!(file = %path.display(), %error, "cannot delete purged log segment");
                    break;
                }
                deleted += 1;
            }
        }
        if let Err(error) = self.fs.sync_dir(&self.dir) {
            tracing::warn!(dir = %self.dir.display(), %error, "cannot sync the log directory after deleting segments");
        }
        self.segments.drain(..deleted);
        tracing::debug!(deleted, purged, "deleted purged log segments");
    }
}
