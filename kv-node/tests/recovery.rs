//! Recovery of the log store: crashes at every point (property test on the crash-simulating
//! file system), and damaged files on the real file system, each with its expected outcome.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::path::PathBuf;
use std::sync::Arc;

use common::crash_fs::CrashFs;
use common::*;
use kv_core::raft::state_machine::SnapshotStore;
use kv_node::NodeConfig;
use kv_node::storage::FileSnapshotStore;
use kv_node::storage::Fs;
use kv_node::storage::FsyncPolicy;
use kv_node::storage::LogOptions;
use kv_node::storage::LogStore;
use kv_node::storage::OsFs;
use kv_node::storage::StorageError;
use kv_node::storage::format::SEGMENT_HEADER_LEN;
use kv_node::storage::format::decode_segment;
use kv_node::storage::segment_path;
use openraft::RaftLogReader;
use openraft::alias::SnapshotMetaOf;
use openraft::storage::RaftLogStorage;
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------------
// Crash property
// ---------------------------------------------------------------------------------------------

/// One step of a workload against the log store.
#[derive(Debug, Clone)]
enum Op {
    /// Append this many entries.
    Append(u8),
    /// Vote in the next term.
    Vote,
    /// Save the committed id: the entry this far (in 1/256ths) into the log.
    Commit(u8),
    /// Truncate the last this-many entries (keeping at least one).
    Truncate(u8),
    /// Purge up to the entry this far (in 1/256ths) into the log.
    Purge(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1u8..=4).prop_map(Op::Append),
        1 => Just(Op::Vote),
        1 => any::<u8>().prop_map(Op::Commit),
        1 => (1u8..=3).prop_map(Op::Truncate),
        1 => any::<u8>().prop_map(Op::Purge),
    ]
}

/// A record, as the model sees it: log ids are (term, index).
#[derive(Debug, Clone, Copy)]
enum Rec {
    Entry(u64, u64),
    Vote(u64),
    Committed(u64, u64),
    Truncate(u64),
    Purge(u64, u64),
}

/// The log's state, computed independently of the store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Model {
    /// index -> term
    entries: BTreeMap<u64, u64>,
    vote: Option<u64>,
    committed: Option<(u64, u64)>,
    purged: Option<(u64, u64)>,
}

impl Model {
    fn apply(&mut self, rec: Rec) {
        match rec {
            Rec::Entry(term, index) => {
                self.entries.insert(index, term);
            }
            Rec::Vote(term) => self.vote = Some(term),
            Rec::Committed(term, index) => self.committed = Some((term, index)),
            Rec::Truncate(index) => self.entries.retain(|&i, _| i <= index),
            Rec::Purge(term, index) => {
                self.entries.retain(|&i, _| i > index);
                self.purged = self.purged.max(Some((term, index)));
            }
        }
    }

    fn at(&self, fraction: u8) -> Option<(u64, u64)> {
        let ids: Vec<_> = self.entries.iter().map(|(&i, &t)| (t, i)).collect();
        (!ids.is_empty()).then(|| ids[ids.len() * usize::from(fraction) / 256])
    }
}

/// Reads the recovered state of a store.
async fn observe(log: &mut LogStore<NodeConfig>) -> Model {
    let to_pair = |id: openraft::alias::LogIdOf<NodeConfig>| (id.leader_id.term, id.index);
    Model {
        entries: entry_ids(log).await.into_iter().collect(),
        vote: log.read_vote().await.unwrap().map(|v| v.leader_id.term),
        committed: log.read_committed().await.unwrap().map(to_pair),
        purged: log.get_log_state().await.unwrap().last_purged_log_id.map(to_pair),
    }
}

/// Runs `ops` until the disk "crashes" after `crash_at` operations; returns the records the
/// store was asked to write, and how many of them belong to acknowledged (durable) operations.
async fn run_until_crash(
    fs: &CrashFs,
    dir: &Path,
    options: LogOptions,
    ops: &[Op],
    crash_at: u64,
) -> (Vec<Rec>, usize) {
    fs.crash_after(crash_at);
    let dyn_fs: Arc<dyn Fs> = Arc::new(fs.clone());
    let Ok(mut log) = open(&dyn_fs, dir, options) else {
        return (Vec::new(), 0);
    };
    let mut model = Model::default();
    let mut records = Vec::new();
    let mut acked = 0;
    let mut term = 1;
    let mut next = 1;
    for op in ops {
        let (recs, result) = match *op {
            Op::Append(n) => {
                let entries: Vec<_> = (next..next + u64::from(n)).map(|i| entry(term, i)).collect();
                let recs = (next..next + u64::from(n)).map(|i| Rec::Entry(term, i)).collect();
                next += u64::from(n);
                (recs, append(&mut log, entries).await)
            }
            Op::Vote => {
                term += 1;
                (vec![Rec::Vote(term)], log.save_vote(&vote(term)).await)
            }
            Op::Commit(f) => {
                let Some((t, i)) = model.at(f) else { continue };
                let result = log.save_committed(Some(log_id(t, i))).await;
                (vec![Rec::Committed(t, i)], result.and(log.flush().await))
            }
            Op::Truncate(back) => {
                let ids: Vec<_> = model.entries.iter().map(|(&i, &t)| (t, i)).collect();
                if ids.len() < 2 {
                    continue;
                }
                let (t, i) = ids[ids.len() - 1 - usize::from(back).min(ids.len() - 1)];
                next = i + 1;
                let result = log.truncate_after(Some(log_id(t, i))).await;
                (vec![Rec::Truncate(i)], result.and(log.flush().await))
            }
            Op::Purge(f) => {
                let Some((t, i)) = model.at(f) else { continue };
                let result = log.purge(log_id(t, i)).await;
                (vec![Rec::Purge(t, i)], result.and(log.flush().await))
            }
        };
        for rec in &recs {
            model.apply(*rec);
        }
        records.extend(recs);
        if result.is_err() {
            break;
        }
        acked = records.len();
    }
    close(log);
    (records, acked)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// After a crash at any point, with any part of the unsynced bytes surviving, the store
    /// reopens to exactly the state of some prefix of the records it was asked to write, and
    /// that prefix covers every acknowledged operation.
    #[test]
    fn recovery_yields_a_prefix_with_every_acknowledged_write(
        ops in prop::collection::vec(op(), 1..30),
        crash_at in 0u64..150,
        torn_keep in any::<u8>(),
        segment_bytes in prop_oneof![Just(64u64), Just(300), Just(1 << 20)],
        decoded_tail in prop_oneof![Just(0usize), Just(3), Just(4096)],
    ) {
        let dir = PathBuf::from("/data/log");
        let fs = CrashFs::default();
        fs.create_dir_all(&dir).unwrap();
        let options = LogOptions { segment_bytes, decoded_tail, ..LogOptions::default() };
        let runtime = runtime();
        let (records, acked) = runtime.block_on(run_until_crash(&fs, &dir, options, &ops, crash_at));

        let image: Arc<dyn Fs> = Arc::new(fs.crash_image(|n| n * usize::from(torn_keep) / 255));
        let mut log = open(&image, &dir, options).expect("a crashed log reopens");
        let recovered = runtime.block_on(observe(&mut log));
        close(log);

        let mut model = Model::default();
        let mut candidates = Vec::new();
        for (i, rec) in records.iter().enumerate() {
            if i >= acked {
                candidates.push(model.clone());
            }
            model.apply(*rec);
        }
        candidates.push(model);
        prop_assert!(
            candidates.contains(&recovered),
            "recovered {recovered:?}\nis no prefix state of {records:?} covering the first {acked} acknowledged records"
        );

        // And the recovered store keeps working.
        let mut log = open(&image, &dir, options).expect("reopen");
        let next = recovered.entries.keys().next_back().copied().or(recovered.purged.map(|p| p.1)).unwrap_or(0) + 1;
        runtime.block_on(append(&mut log, vec![entry(99, next)])).expect("append after recovery");
        close(log);
    }
}

// ---------------------------------------------------------------------------------------------
// Damaged files on the real file system
// ---------------------------------------------------------------------------------------------

fn os() -> Arc<dyn Fs> {
    Arc::new(OsFs)
}

/// Small segments, so a few appends span several.
fn small_segments() -> LogOptions {
    LogOptions {
        segment_bytes: 400,
        ..LogOptions::default()
    }
}

/// A log of entries 1..=n (term 1) in `dir`, appended 3 at a time, then closed. Returns the
/// segment files, oldest first.
fn write_log(dir: &Path, n: u64) -> Vec<PathBuf> {
    let rt = runtime();
    let mut log = open(&os(), dir, small_segments()).unwrap();
    rt.block_on(log.save_vote(&vote(1))).unwrap();
    for start in (1..=n).step_by(3) {
        let entries = (start..=n.min(start + 2)).map(|i| entry(1, i)).collect();
        rt.block_on(append(&mut log, entries)).unwrap();
    }
    close(log);
    segments(dir)
}

/// Offsets of the records of a segment file.
fn record_offsets(path: &Path, newest: bool) -> Vec<u64> {
    let bytes = std::fs::read(path).unwrap();
    let id = path.file_stem().unwrap().to_str().unwrap().parse().unwrap();
    let scan = decode_segment::<NodeConfig>(&bytes, id, newest).unwrap();
    scan.records.iter().map(|(offset, _)| *offset).collect()
}

fn reopen_ids(dir: &Path) -> Result<Vec<(u64, u64)>, StorageError> {
    let mut log = open(&os(), dir, small_segments())?;
    let ids = runtime().block_on(entry_ids(&mut log));
    close(log);
    Ok(ids)
}

fn ids(range: std::ops::RangeInclusive<u64>) -> Vec<(u64, u64)> {
    range.map(|i| (i, 1)).collect()
}

fn append_bytes(path: &Path, bytes: &[u8]) {
    use std::io::Write as _;
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .unwrap()
        .write_all(bytes)
        .unwrap();
}

fn flip_byte(path: &Path, offset: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset as usize] ^= 0x10;
    std::fs::write(path, bytes).unwrap();
}

/// Reopens after the damage and checks: the entries are `expected`, and a warning says how
/// many bytes were cut. Then the log takes new appends and reopens cleanly.
fn expect_torn_tail(dir: &Path, expected: Vec<(u64, u64)>, cut: u64) {
    let (ids, logs) = capture_logs(|| reopen_ids(dir));
    assert_eq!(ids.unwrap(), expected);
    assert!(
        logs.contains(&format!("truncating {cut} bytes")),
        "no truncation log line in:\n{logs}"
    );
    let rt = runtime();
    let mut log = open(&os(), dir, small_segments()).unwrap();
    let next = expected.last().map_or(1, |l| l.0 + 1);
    rt.block_on(append(&mut log, vec![entry(2, next)])).unwrap();
    close(log);
    let mut with_new = expected;
    with_new.push((next, 2));
    assert_eq!(reopen_ids(dir).unwrap(), with_new);
}

#[test]
fn torn_tail_of_zeros_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let files = write_log(dir.path(), 20);
    append_bytes(files.last().unwrap(), &[0u8; 100]);
    expect_torn_tail(dir.path(), ids(1..=20), 100);
}

#[test]
fn torn_tail_of_garbage_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let files = write_log(dir.path(), 20);
    let garbage: Vec<u8> = (0u32..300)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    append_bytes(files.last().unwrap(), &garbage);
    expect_torn_tail(dir.path(), ids(1..=20), 300);
}

#[test]
fn half_written_last_record_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let files = write_log(dir.path(), 20);
    let newest = files.last().unwrap();
    let last = *record_offsets(newest, true).last().unwrap();
    let len = std::fs::metadata(newest).unwrap().len();
    let keep = last + (len - last) / 2;
    std::fs::OpenOptions::new()
        .write(true)
        .open(newest)
        .unwrap()
        .set_len(keep)
        .unwrap();
    expect_torn_tail(dir.path(), ids(1..=19), keep - last);
}

#[test]
fn bad_checksum_in_the_last_record_is_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let files = write_log(dir.path(), 20);
    let newest = files.last().unwrap();
    let last = *record_offsets(newest, true).last().unwrap();
    let len = std::fs::metadata(newest).unwrap().len();
    flip_byte(newest, len - 1);
    expect_torn_tail(dir.path(), ids(1..=19), len - last);
}

#[test]
fn flipped_bit_in_the_middle_is_corruption_naming_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let files = write_log(dir.path(), 20);
    let newest = files.last().unwrap();
    let offsets = record_offsets(newest, true);
    assert!(offsets.len() >= 3, "the newest segment needs a middle record");
    let middle = offsets[offsets.len() / 2];
    flip_byte(newest, middle + 10);
    match reopen_ids(dir.path()) {
        Err(StorageError::Corrupt { file, offset, reason }) => {
            assert_eq!((&file, offset), (newest, middle));
            assert!(reason.contains("a valid record follows"), "{reason}");
        }
        other => panic!("expected corruption, got {other:?}"),
    }
    // Refusing to open changed nothing: the damage is still there to inspect.
    assert!(matches!(reopen_ids(dir.path()), Err(StorageError::Corrupt { .. })));
}

#[test]
fn damaged_last_record_of_an_older_segment_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let files = write_log(dir.path(), 20);
    assert!(files.len() >= 2);
    let older = &files[0];
    let last = *record_offsets(older, false).last().unwrap();
    let len = std::fs::metadata(older).unwrap().len();
    flip_byte(older, len - 1);
    match reopen_ids(dir.path()) {
        Err(StorageError::Corrupt { file, offset, .. }) => assert_eq!((&file, offset), (older, last)),
        other => panic!("expected corruption, got {other:?}"),
    }
}

#[test]
fn truncated_header_of_an_older_segment_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let files = write_log(dir.path(), 20);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&files[0])
        .unwrap()
        .set_len(10)
        .unwrap();
    match reopen_ids(dir.path()) {
        Err(StorageError::Corrupt {
            file,
            offset: 0,
            reason,
        }) => {
            assert_eq!(file, files[0]);
            assert!(reason.contains("header"), "{reason}");
        }
        other => panic!("expected corruption, got {other:?}"),
    }
}

#[test]
fn truncated_header_of_the_newest_segment_is_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let files = write_log(dir.path(), 20);
    // A crash while a new segment was being started: only part of its header reached disk.
    let next = segment_path(dir.path(), files.len() as u64 + 1);
    std::fs::write(&next, &std::fs::read(&files[0]).unwrap()[..SEGMENT_HEADER_LEN - 5]).unwrap();
    expect_torn_tail(dir.path(), ids(1..=20), SEGMENT_HEADER_LEN as u64 - 5);
}

#[test]
fn wrong_format_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let files = write_log(dir.path(), 20);
    let mut bytes = std::fs::read(&files[0]).unwrap();
    bytes[6..8].copy_from_slice(&2u16.to_le_bytes());
    std::fs::write(&files[0], bytes).unwrap();
    match reopen_ids(dir.path()) {
        Err(StorageError::UnsupportedVersion {
            file,
            found: 2,
            expected: 1,
        }) => assert_eq!(file, files[0]),
        other => panic!("expected a version error, got {other:?}"),
    }
}

#[test]
fn bad_magic_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let files = write_log(dir.path(), 20);
    flip_byte(&files[0], 0);
    assert!(matches!(
        reopen_ids(dir.path()),
        Err(StorageError::Corrupt { offset: 0, .. })
    ));
}

#[test]
fn missing_middle_segment_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let files = write_log(dir.path(), 30);
    assert!(files.len() >= 3);
    std::fs::remove_file(&files[1]).unwrap();
    match reopen_ids(dir.path()) {
        Err(StorageError::Corrupt { file, reason, .. }) => {
            assert_eq!(file, files[1]);
            assert!(reason.contains("missing"), "{reason}");
        }
        other => panic!("expected corruption, got {other:?}"),
    }
}

#[test]
fn missing_newest_segment_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let files = write_log(dir.path(), 30);
    assert!(files.len() >= 3);
    let newest = files.last().unwrap();
    std::fs::remove_file(newest).unwrap();
    match reopen_ids(dir.path()) {
        Err(StorageError::Corrupt { file, reason, .. }) => {
            assert_eq!(&file, newest);
            assert!(reason.contains("missing") && reason.contains("HEAD"), "{reason}");
        }
        other => panic!("expected corruption, got {other:?}"),
    }
}

#[test]
fn a_log_written_before_head_existed_opens() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 30);
    std::fs::remove_file(dir.path().join(kv_node::storage::HEAD_FILE)).unwrap();
    assert_eq!(reopen_ids(dir.path()).unwrap(), ids(1..=30));
}

#[test]
fn truncate_and_purge_survive_reopen_and_purge_deletes_whole_segments() {
    let dir = tempfile::tempdir().unwrap();
    let before = write_log(dir.path(), 30);
    let rt = runtime();
    let mut log = open(&os(), dir.path(), small_segments()).unwrap();
    rt.block_on(async {
        log.truncate_after(Some(log_id(1, 25))).await.unwrap();
        append(&mut log, vec![entry(2, 26), entry(2, 27)]).await.unwrap();
        log.purge(log_id(1, 20)).await.unwrap();
        log.flush().await.unwrap();
    });
    close(log);
    let after = segments(dir.path());
    assert!(
        !after.contains(&before[0]),
        "the oldest segment, wholly purged, is deleted"
    );
    let mut expected = ids(21..=25);
    expected.extend([(26, 2), (27, 2)]);
    assert_eq!(reopen_ids(dir.path()).unwrap(), expected);
    let mut log = open(&os(), dir.path(), small_segments()).unwrap();
    let state = rt.block_on(log.get_log_state()).unwrap();
    assert_eq!(state.last_purged_log_id, Some(log_id(1, 20)));
    assert_eq!(rt.block_on(log.read_vote()).unwrap(), Some(vote(1)));
    close(log);
}

/// Regression (found by the crash property test): replaying a segment whose predecessors were
/// deleted meets a purge record below its first entry; that must not move the first index back.
#[test]
fn purge_below_the_first_replayed_entry_keeps_the_log_intact() {
    let dir = tempfile::tempdir().unwrap();
    let files = write_log(dir.path(), 20);
    let newest = files.last().unwrap();
    let id = newest.file_stem().unwrap().to_str().unwrap().parse().unwrap();
    let scan = decode_segment::<NodeConfig>(&std::fs::read(newest).unwrap(), id, true).unwrap();
    let first = scan
        .records
        .iter()
        .find_map(|(_, r)| match r {
            kv_node::storage::format::Record::Entry(e) => Some(openraft::entry::RaftEntry::index(e)),
            _ => None,
        })
        .expect("the newest segment holds entries");
    let rt = runtime();
    let mut log = open(&os(), dir.path(), small_segments()).unwrap();
    rt.block_on(async {
        // Lands after the newest segment's entries, below its first entry; deletes nothing.
        log.purge(log_id(1, first - 2)).await.unwrap();
        log.flush().await.unwrap();
        // Deletes every older segment: the newest alone is replayed.
        log.purge(log_id(1, first - 1)).await.unwrap();
        log.flush().await.unwrap();
    });
    close(log);
    assert_eq!(segments(dir.path()).first(), Some(newest));
    assert_eq!(reopen_ids(dir.path()).unwrap(), ids(first..=20));
}

#[test]
fn missing_or_unusable_directory_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let err = open(&os(), &missing, LogOptions::default()).unwrap_err();
    assert!(
        matches!(&err, StorageError::DataDir { path, .. } if *path == missing),
        "{err:?}"
    );
    assert!(err.to_string().contains("nope"), "{err}");

    let file = dir.path().join("a-file");
    std::fs::write(&file, b"not a directory").unwrap();
    assert!(matches!(
        open(&os(), &file, LogOptions::default()),
        Err(StorageError::DataDir { .. })
    ));
}

#[test]
fn second_opener_gets_locked_until_the_first_closes() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(&os(), dir.path(), LogOptions::default()).unwrap();
    match open(&os(), dir.path(), LogOptions::default()) {
        Err(StorageError::Locked { path }) => assert_eq!(path, dir.path().join("LOCK")),
        other => panic!("expected Locked, got {other:?}"),
    }
    close(log);
    close(open(&os(), dir.path(), LogOptions::default()).unwrap());
}

#[test]
fn full_disk_fails_the_write_and_stops_the_log_without_losing_acknowledged_entries() {
    let dir = PathBuf::from("/data/log");
    let fs = CrashFs::default();
    fs.create_dir_all(&dir).unwrap();
    let dyn_fs: Arc<dyn Fs> = Arc::new(fs.clone());
    let rt = runtime();
    let mut log = open(&dyn_fs, &dir, LogOptions::default()).unwrap();
    rt.block_on(append(&mut log, (1..=5).map(|i| entry(1, i)).collect()))
        .unwrap();
    fs.set_capacity(10);
    let err = rt.block_on(append(&mut log, vec![entry(1, 6)])).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::StorageFull);
    assert!(err.to_string().contains("disk full"), "{err}");
    // The log accepts nothing more once a write failed.
    assert!(rt.block_on(log.save_vote(&vote(2))).is_err());
    close(log);

    let image: Arc<dyn Fs> = Arc::new(fs.crash_image(|_| 0));
    let mut log = open(&image, &dir, LogOptions::default()).unwrap();
    assert_eq!(rt.block_on(entry_ids(&mut log)), ids(1..=5));
    close(log);

    // Opening a new log on a full disk is a clear error too.
    let full = CrashFs::default();
    full.create_dir_all(&dir).unwrap();
    full.set_capacity(0);
    let full: Arc<dyn Fs> = Arc::new(full);
    assert!(matches!(
        open(&full, &dir, LogOptions::default()),
        Err(StorageError::DiskFull { .. })
    ));
}

// ---------------------------------------------------------------------------------------------
// Snapshot files
// ---------------------------------------------------------------------------------------------

fn meta(index: u64) -> SnapshotMetaOf<NodeConfig> {
    SnapshotMetaOf::<NodeConfig> {
        last_log_id: Some(log_id(1, index)),
        last_membership: Default::default(),
    }
}

#[test]
fn snapshots_replace_each_other_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = FileSnapshotStore::<NodeConfig>::open(os(), dir.path(), FsyncPolicy::Always).unwrap();
    assert_eq!(store.load().unwrap(), None);
    store.save(&meta(5), b"five").unwrap();
    store.save(&meta(9), b"nine").unwrap();
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "the older snapshot is removed"
    );
    // A crash mid-save leaves a temporary file: ignored, then removed.
    std::fs::write(dir.path().join("00000000000000000099.snap.tmp"), b"half").unwrap();
    let mut store = FileSnapshotStore::<NodeConfig>::open(os(), dir.path(), FsyncPolicy::Always).unwrap();
    assert_eq!(store.load().unwrap(), Some((meta(9), b"nine".to_vec())));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

/// A reopened store knows which snapshot it holds (so that the state machine's restore at
/// start does not write it again) and hands the copy it checked on open to the first load;
/// a later save replaces both.
#[test]
fn reopened_snapshot_is_held_and_preloaded() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = FileSnapshotStore::<NodeConfig>::open(os(), dir.path(), FsyncPolicy::Always).unwrap();
    assert!(!store.holds(&meta(5)));
    store.save(&meta(5), b"five").unwrap();
    assert!(store.holds(&meta(5)));
    let mut store = FileSnapshotStore::<NodeConfig>::open(os(), dir.path(), FsyncPolicy::Always).unwrap();
    assert!(store.holds(&meta(5)) && !store.holds(&meta(6)));
    let file = std::fs::read_dir(dir.path()).unwrap().next().unwrap().unwrap().path();
    std::fs::remove_file(&file).unwrap();
    assert_eq!(
        store.load().unwrap(),
        Some((meta(5), b"five".to_vec())),
        "the first load is served from what open read"
    );
    assert_eq!(store.load().unwrap(), None, "later loads read the directory");
    store.save(&meta(9), b"nine").unwrap();
    assert!(store.holds(&meta(9)) && !store.holds(&meta(5)));
    assert_eq!(store.load().unwrap(), Some((meta(9), b"nine".to_vec())));
}

#[test]
fn damaged_snapshot_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = FileSnapshotStore::<NodeConfig>::open(os(), dir.path(), FsyncPolicy::Always).unwrap();
    store.save(&meta(5), b"the whole store").unwrap();
    let file = std::fs::read_dir(dir.path()).unwrap().next().unwrap().unwrap().path();
    let len = std::fs::metadata(&file).unwrap().len();
    flip_byte(&file, len - 3);
    match FileSnapshotStore::<NodeConfig>::open(os(), dir.path(), FsyncPolicy::Always) {
        Err(StorageError::Corrupt { file: f, .. }) => assert_eq!(f, file),
        other => panic!("expected corruption, got {other:?}"),
    }
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[6] = 7;
    std::fs::write(&file, bytes).unwrap();
    assert!(matches!(
        FileSnapshotStore::<NodeConfig>::open(os(), dir.path(), FsyncPolicy::Always),
        Err(StorageError::UnsupportedVersion { found: 7, .. })
    ));
}

#[test]
fn snapshot_save_survives_a_crash_at_every_step() {
    let dir = PathBuf::from("/data/snapshots");
    for crash_at in 0..8 {
        let fs = CrashFs::default();
        fs.create_dir_all(&dir).unwrap();
        let dyn_fs: Arc<dyn Fs> = Arc::new(fs.clone());
        let mut store = FileSnapshotStore::<NodeConfig>::open(dyn_fs, &dir, FsyncPolicy::Always).unwrap();
        store.save(&meta(1), b"old").unwrap();
        fs.crash_after(crash_at);
        let saved = store.save(&meta(2), b"new").is_ok();
        for keep in [0, usize::MAX] {
            let image: Arc<dyn Fs> = Arc::new(fs.crash_image(|n| n.min(keep)));
            let mut store = FileSnapshotStore::<NodeConfig>::open(image, &dir, FsyncPolicy::Always).unwrap();
            let loaded = store.load().unwrap().unwrap();
            if saved {
                assert_eq!(loaded, (meta(2), b"new".to_vec()), "crash after {crash_at} ops");
            } else {
                assert!(loaded == (meta(1), b"old".to_vec()) || loaded == (meta(2), b"new".to_vec()));
            }
        }
    }
}
