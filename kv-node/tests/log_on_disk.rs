//! Entries behind the log's decoded tail are read back from the segment files: after a restart
//! and more appends, after a truncation rewrote them elsewhere, with a damaged record (an
//! error, never a panic or a wrong entry), and while purges delete the segments being read.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::Condvar;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering;

use common::hooked_fs::FsHooks;
use common::hooked_fs::HookedFs;
use common::*;
use kv_node::NodeConfig;
use kv_node::storage::Fs;
use kv_node::storage::FsyncPolicy;
use kv_node::storage::LogOptions;
use kv_node::storage::LogStore;
use kv_node::storage::OsFs;
use kv_node::storage::format::Record;
use kv_node::storage::format::decode_segment;
use openraft::RaftLogReader;
use openraft::alias::EntryOf;
use openraft::entry::RaftEntry;
use openraft::storage::IOFlushed;
use openraft::storage::RaftLogStorage;
use openraft::type_config::TypeConfigExt;

fn os() -> Arc<dyn Fs> {
    Arc::new(OsFs)
}

/// Small segments and a decoded tail of `tail` entries: nearly every entry is read from disk.
fn options(tail: usize) -> LogOptions {
    LogOptions {
        segment_bytes: 400,
        decoded_tail: tail,
        ..LogOptions::default()
    }
}

async fn read(log: &mut LogStore<NodeConfig>, range: std::ops::Range<u64>) -> Vec<EntryOf<NodeConfig>> {
    log.try_get_log_entries(range).await.expect("read entries")
}

fn expected(range: std::ops::Range<u64>, term_of: impl Fn(u64) -> u64) -> Vec<EntryOf<NodeConfig>> {
    range.map(|i| entry(term_of(i), i)).collect()
}

/// The segment files of `dir`, oldest first, each with its entry records' (index, offset).
fn entry_records(dir: &Path) -> Vec<(std::path::PathBuf, Vec<(u64, u64)>)> {
    let files = segments(dir);
    let newest = files.len() - 1;
    files
        .into_iter()
        .enumerate()
        .map(|(i, path)| {
            let id = path.file_stem().unwrap().to_str().unwrap().parse().unwrap();
            let scan = decode_segment::<NodeConfig>(&std::fs::read(&path).unwrap(), id, i == newest).unwrap();
            let entries = scan
                .records
                .iter()
                .filter_map(|(offset, record)| match record {
                    Record::Entry(e) => Some((e.index(), *offset)),
                    _ => None,
                })
                .collect();
            (path, entries)
        })
        .collect()
}

#[test]
fn entries_behind_the_tail_read_back_after_restart_and_after_more_appends() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let mut log = open(&os(), dir.path(), options(3)).unwrap();
    for start in (1..=40).step_by(4) {
        rt.block_on(append(&mut log, expected(start..start + 4, |_| 1)))
            .unwrap();
        rt.block_on(log.save_vote(&vote(1))).unwrap();
    }
    assert_eq!(rt.block_on(read(&mut log, 1..41)), expected(1..41, |_| 1));
    close(log);
    assert!(entry_records(dir.path()).len() > 3, "the entries span several segments");

    let mut log = open(&os(), dir.path(), options(3)).unwrap();
    assert_eq!(rt.block_on(read(&mut log, 1..41)), expected(1..41, |_| 1));
    rt.block_on(append(&mut log, expected(41..61, |_| 2))).unwrap();
    let all = |i| if i <= 40 { 1 } else { 2 };
    assert_eq!(rt.block_on(read(&mut log, 0..100)), expected(1..61, all));
    assert_eq!(rt.block_on(read(&mut log, 7..9)), expected(7..9, all));
    assert_eq!(rt.block_on(read(&mut log, 38..44)), expected(38..44, all));
    assert_eq!(rt.block_on(read(&mut log, 59..61)), expected(59..61, all));
    close(log);
}

/// A gate that holds every write to a file while it is closed (a hook of the real file
/// system): lets a test change the log in memory while the writer thread is stuck on a queued
/// write.
#[derive(Debug, Default)]
struct Gate(Mutex<bool>, Condvar);

impl Gate {
    fn set_closed(&self, closed: bool) {
        *self.0.lock().unwrap() = closed;
        self.1.notify_all();
    }
}

impl FsHooks for Gate {
    fn before_write(&self) {
        drop(self.1.wait_while(self.0.lock().unwrap(), |closed| *closed).unwrap());
    }
}

#[test]
fn entries_rewritten_after_a_truncation_read_back_from_their_new_place() {
    for tail in [0, 2] {
        let dir = tempfile::tempdir().unwrap();
        let rt = runtime();
        let gate = Arc::new(Gate::default());
        let fs: Arc<dyn Fs> = Arc::new(HookedFs(gate.clone()));
        let mut log = open(&fs, dir.path(), options(tail)).unwrap();
        rt.block_on(append(&mut log, expected(1..21, |_| 1))).unwrap();
        // Entries 21..=30 are queued but not yet written when 26.. are truncated and
        // replaced: the writer must place 21..=25 and not lend the places of the old 26.. to
        // their replacements.
        gate.set_closed(true);
        let (tx, _rx) = NodeConfig::oneshot();
        rt.block_on(log.append(expected(21..31, |_| 1), IOFlushed::signal(tx)))
            .unwrap();
        rt.block_on(log.truncate_after(Some(log_id(1, 25)))).unwrap();
        let (tx, rx) = NodeConfig::oneshot();
        rt.block_on(log.append(expected(26..36, |_| 2), IOFlushed::signal(tx)))
            .unwrap();
        gate.set_closed(false);
        rt.block_on(rx).unwrap().unwrap();
        let terms = |i| if i <= 25 { 1 } else { 2 };
        assert_eq!(
            rt.block_on(read(&mut log, 1..40)),
            expected(1..36, terms),
            "tail {tail}"
        );
        close(log);
        let mut log = open(&os(), dir.path(), options(tail)).unwrap();
        assert_eq!(
            rt.block_on(read(&mut log, 1..40)),
            expected(1..36, terms),
            "tail {tail}"
        );
        close(log);
    }
}

#[test]
fn a_damaged_record_behind_the_tail_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let mut log = open(&os(), dir.path(), options(2)).unwrap();
    rt.block_on(append(&mut log, expected(1..31, |_| 1))).unwrap();
    let records = entry_records(dir.path());
    let (path, entries) = &records[0];
    let (index, offset) = entries[1];

    // A flipped bit in the payload.
    let original = std::fs::read(path).unwrap();
    let mut damaged = original.clone();
    damaged[offset as usize + 12] ^= 0x10;
    std::fs::write(path, &damaged).unwrap();
    let error = rt.block_on(log.try_get_log_entries(index..index + 1)).unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidData, "{error}");
    assert!(error.to_string().contains("checksum"), "{error}");
    assert!(rt.block_on(log.try_get_log_entries(..)).is_err());
    // The decoded tail is still read from memory.
    assert_eq!(rt.block_on(read(&mut log, 29..31)), expected(29..31, |_| 1));

    // A length past the end of the file.
    let mut damaged = original.clone();
    damaged[offset as usize..offset as usize + 4].copy_from_slice(&1_000_000u32.to_le_bytes());
    std::fs::write(path, &damaged).unwrap();
    let error = rt.block_on(log.try_get_log_entries(index..index + 1)).unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::UnexpectedEof, "{error}");

    // A valid record of another entry where this one should be.
    let (_, next) = entries[2];
    let mut damaged = original.clone();
    let other = original[next as usize..].to_vec();
    damaged.truncate(offset as usize);
    damaged.extend_from_slice(&other);
    std::fs::write(path, &damaged).unwrap();
    let error = rt.block_on(log.try_get_log_entries(index..index + 1)).unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidData, "{error}");

    // A segment cut short.
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(offset)
        .unwrap();
    assert!(rt.block_on(log.try_get_log_entries(index..index + 1)).is_err());

    std::fs::write(path, &original).unwrap();
    assert_eq!(rt.block_on(read(&mut log, 1..31)), expected(1..31, |_| 1));
    close(log);
}

/// Purges delete segments while another thread reads: every read still returns a contiguous
/// run of the right entries up to the last one, never an error (a read holds the segments it
/// located until it has read them).
#[test]
fn reads_racing_purges_see_whole_entries_and_no_error() {
    const LAST: u64 = 1500;
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let opts = LogOptions {
        fsync: FsyncPolicy::Never,
        segment_bytes: 300,
        decoded_tail: 0,
        ..LogOptions::default()
    };
    let mut log = open(&os(), dir.path(), opts).unwrap();
    for start in (1..=LAST).step_by(10) {
        rt.block_on(append(&mut log, expected(start..start + 10, |_| 1)))
            .unwrap();
    }
    let mut reader = rt.block_on(log.get_log_reader());
    let stop = Arc::new(AtomicBool::new(false));
    let reads = std::thread::spawn({
        let stop = stop.clone();
        move || {
            let rt = runtime();
            let mut reads = 0;
            while !stop.load(Ordering::Relaxed) {
                let entries = rt.block_on(reader.try_get_log_entries(..)).expect("no read fails");
                let first = entries.first().map_or(LAST + 1, |e| e.index());
                assert_eq!(entries, expected(first..LAST + 1, |_| 1));
                reads += 1;
            }
            reads
        }
    });
    for purged in (5..LAST).step_by(5) {
        rt.block_on(log.purge(log_id(1, purged))).unwrap();
        rt.block_on(log.flush()).unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    let reads = reads.join().expect("the reader saw only whole, right entries");
    assert!(reads > 0);
    let left = entry_records(dir.path());
    assert!(
        left.iter()
            .all(|(_, entries)| entries.iter().all(|&(index, _)| index > 1400)),
        "the purges deleted the segments: {left:?}"
    );
    close(log);
}
