//! Durable storage of a node: the Raft log, snapshots, and an embedded single-node store.
//!
//! - [`LogStore`]: openraft's log storage as segment files, checksummed record by record,
//!   appended by one writer thread that syncs each batch once (group commit).
//! - [`FileSnapshotStore`]: kv-core's [`SnapshotStore`](kv_core::raft::state_machine::SnapshotStore)
//!   as files, replaced atomically.
//! - [`data_dir`]: opening a data directory (both of the above), for a node and an embedded
//!   store alike.
//! - [`Embedded`] / [`BlockingEmbedded`]: both under a single-node openraft, opened from a path.
//!
//! All file access goes through the [`Fs`] trait, so tests can crash the "disk" between any two
//! operations.
//!
//! # Directory layout
//!
//! ```text
//! <root>/node-id                          the cluster node's id (absent for an embedded store)
//! <root>/log/HEAD                          the newest segment's id, in decimal (see below)
//! <root>/log/LOCK                          exclusive lock (flock) held by the open store
//! <root>/log/00000000000000000001.seg      log segments, numbered consecutively
//! <root>/log/00000000000000000002.seg      (the highest number is the active segment)
//! <root>/snapshots/00000000000000000007.snap   the current snapshot
//! ```
//!
//! # Segment format (version 1)
//!
//! All integers little-endian. A segment is a header and a sequence of records:
//!
//! ```text
//! segment header (20 bytes)
//! +----------+---------+------------+---------------------------+
//! | magic    | version | segment id | CRC32C of the 16 bytes    |
//! | "QKVLOG" | u16 = 1 | u64        | before it (u32)           |
//! +----------+---------+------------+---------------------------+
//!
//! record (8 + len bytes), repeated to the end of the file
//! +-----------+--------------------------+-----------------------------+
//! | len (u32) | CRC32C over the len      | payload: postcard encoding  |
//! | 1..=256MiB| bytes, then payload (u32)| of a Record (len bytes)     |
//! +-----------+--------------------------+-----------------------------+
//!
//! Record = Entry(openraft entry: log id + blank | membership | Write)
//!        | Vote(vote)
//!        | Committed(Option<log id>)
//!        | Truncate(Option<log id>)   -- entries after this id are gone
//!        | Purge(log id)              -- entries up to this id are gone
//! ```
//!
//! Replaying every record of every segment in order rebuilds the log: entries, vote, committed
//! id, last purged id. A new segment starts with checkpoint records (the current vote,
//! committed id and purged id), so it never depends on the segments before it for those:
//!
//! ```text
//!  0001.seg                     0002.seg                          0003.seg (active)
//! +----+--------------------+  +----+------+------------------+  +----+------+----------+
//! | hdr| E1 E2 V E3 .. E900 |  | hdr| ckpt | E901 T(950) E951'|  | hdr| ckpt | .. P(990)|
//! +----+--------------------+  +----+------+------------------+  +----+------+----------+
//!   deleted once a durable Purge covers its largest index (900), never rewritten
//! ```
//!
//! - **Append**: entry records at the end of the active segment; a new segment is started
//!   once the active one passes `segment_bytes` (between batches).
//! - **Truncate** (`truncate_after`): a `Truncate` record. Nothing is rewritten.
//! - **Purge**: a `Purge` record; once it is synced, whole segments whose largest entry index
//!   is purged are deleted (oldest first, never the active one). If the purge covers the
//!   active segment too, a new segment is started first, so that it can go as well.
//!
//! # Snapshot file format (version 1)
//!
//! ```text
//! +----------+---------+-----------+-----------+---------------------+------+------+
//! | magic    | version | meta len  | data len  | CRC32C of header    | meta | data |
//! | "QKVSNP" | u16 = 1 | u32       | u64       | bytes 0..20, meta,  |      |      |
//! |          |         |           |           | data (u32)          |      |      |
//! +----------+---------+-----------+-----------+---------------------+------+------+
//! meta = postcard(openraft snapshot meta); data = kv-core Store::to_bytes
//! ```
//!
//! # Recovery rules
//!
//! On open every segment is decoded, oldest first:
//! - **Torn tail**: in the newest segment, a final record that is incomplete or fails its
//!   checksum, with no valid record anywhere after it (garbage or zeros included), is what a
//!   crash mid-write leaves. The file is cut there, with a warning giving the byte count, and a
//!   fresh segment is started. A newest segment too short for its header, or all zeros, is
//!   removed. Such records were never acknowledged: acknowledgement waits for the sync.
//! - **Corruption**: a bad record followed by a valid one, a bad record in any older segment,
//!   a bad segment header, a missing segment, entries out of order, or a bad current snapshot
//!   is [`StorageError::Corrupt`], naming the file and offset. Nothing is dropped; the store
//!   refuses to open.
//! - **A missing newest segment**: `log/HEAD` names the newest segment. It is rewritten
//!   (temporary file, sync, rename, directory sync) each time a segment is started, after the
//!   segment itself is durable, so it never names a segment that was not there. A HEAD past
//!   the newest segment on disk is [`StorageError::Corrupt`]. A log written before HEAD
//!   existed has none, and opens.
//! - A header of another format version is [`StorageError::UnsupportedVersion`]; a missing or
//!   unreadable directory [`StorageError::DataDir`]; a locked one [`StorageError::Locked`]; a
//!   full disk [`StorageError::DiskFull`].

pub mod data_dir;
mod embedded;
mod error;
pub mod format;
mod fs;
mod log_store;
mod snapshot;

pub use embedded::BlockingEmbedded;
pub use embedded::CasOutcome;
pub use embedded::Embedded;
pub use embedded::EmbeddedError;
pub use embedded::EmbeddedOptions;
pub use error::StorageError;
pub use fs::Fs;
pub use fs::FsFile;
pub use fs::LockGuard;
pub use fs::OsFs;
pub use log_store::FlushHandle;
pub use log_store::HEAD_FILE;
pub use log_store::LOCK_FILE;
pub use log_store::LogOptions;
pub use log_store::LogReader;
pub use log_store::LogStore;
pub use log_store::WriterExit;
pub use log_store::segment_path;
pub use snapshot::FileSnapshotStore;
pub use snapshot::SnapshotNowError;
pub use snapshot::snapshot_now;

/// When storage calls fsync.
///
/// Whatever the policy, acknowledged data is in the operating system's page cache, so a crash
/// of the process alone (`kill -9`, panic) loses nothing. The policies differ on a crash of the
/// machine (power loss, kernel panic).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FsyncPolicy {
    /// Sync every batch of log writes before acknowledging it (one fsync shared by every
    /// write in the batch), the vote before it is acted on, and every snapshot and directory
    /// change. A machine crash loses nothing acknowledged. The default.
    #[default]
    Always,
    /// Never sync. Fast, for tests and benchmarks. A machine crash may lose acknowledged
    /// writes, forget a vote (letting this node vote twice in one term, which breaks Raft's
    /// safety in a cluster), or leave files that refuse to open as corrupt.
    Never,
}
