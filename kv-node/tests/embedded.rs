//! The embedded single-node store: the API, reopening, locking, compaction, and real
//! `kill -9` crashes of a writer process.

mod common;

use std::io::BufRead as _;
use std::ops::Bound;
use std::path::Path;
use std::process::Command;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;

use common::hooked_fs::FsHooks;
use common::hooked_fs::HookedFs;
use kv_node::storage::BlockingEmbedded;
use kv_node::storage::Embedded;
use kv_node::storage::EmbeddedError;
use kv_node::storage::EmbeddedOptions;
use kv_node::storage::StorageError;

fn count_files(dir: &Path, extension: &str) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == extension))
        .count()
}

#[test]
fn every_operation_survives_close_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlockingEmbedded::open(dir.path(), EmbeddedOptions::default()).unwrap();
    store.put(b"a", b"1").unwrap();
    store.put(b"b", b"2").unwrap();
    store.put(b"c", b"3").unwrap();
    assert!(store.delete(b"b").unwrap());
    assert!(!store.delete(b"b").unwrap());
    let cas = store.cas(b"a", Some(b"1"), Some(b"one")).unwrap();
    assert!(cas.swapped);
    assert_eq!(cas.previous, Some(b"1".to_vec()));
    assert!(!store.cas(b"a", Some(b"1"), Some(b"uno")).unwrap().swapped);
    assert!(store.cas(b"new", None, Some(b"created")).unwrap().swapped);
    store
        .set_with_ttl(b"brief", b"gone soon", Duration::from_millis(50))
        .unwrap();
    store
        .set_with_ttl(b"lasting", b"here", Duration::from_secs(3600))
        .unwrap();
    assert_eq!(store.get(b"brief"), Some(b"gone soon".to_vec()));
    store.close().unwrap();

    std::thread::sleep(Duration::from_millis(100));
    let store = BlockingEmbedded::open(dir.path(), EmbeddedOptions::default()).unwrap();
    assert_eq!(store.get(b"a"), Some(b"one".to_vec()));
    assert_eq!(store.get(b"b"), None);
    assert_eq!(store.get(b"new"), Some(b"created".to_vec()));
    assert_eq!(store.get(b"brief"), None, "expired while closed");
    assert_eq!(store.get(b"lasting"), Some(b"here".to_vec()));
    let scanned = store.scan(Bound::Included(b"a"), Bound::Excluded(b"m"), 10);
    let keys: Vec<_> = scanned.iter().map(|(k, _)| k.as_slice()).collect();
    assert_eq!(keys, [b"a".as_slice(), b"c", b"lasting"]);
    assert_eq!(store.len(), 4);
    store.close().unwrap();
}

#[test]
fn a_second_opener_is_locked_out() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlockingEmbedded::open(dir.path(), EmbeddedOptions::default()).unwrap();
    match BlockingEmbedded::open(dir.path(), EmbeddedOptions::default()) {
        Err(EmbeddedError::Storage(StorageError::Locked { .. })) => {}
        other => panic!("expected Locked, got {other:?}"),
    }
    store.close().unwrap();
    BlockingEmbedded::open(dir.path(), EmbeddedOptions::default())
        .unwrap()
        .close()
        .unwrap();
}

#[test]
fn missing_directory_is_an_error_unless_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent");
    let options = EmbeddedOptions {
        create_if_missing: false,
        ..EmbeddedOptions::default()
    };
    match BlockingEmbedded::open(&path, options) {
        Err(EmbeddedError::Storage(StorageError::DataDir { path: p, .. })) => assert_eq!(p, path),
        other => panic!("expected DataDir, got {other:?}"),
    }
    BlockingEmbedded::open(&path, EmbeddedOptions::default())
        .unwrap()
        .close()
        .unwrap();
}

#[test]
fn compaction_by_policy_purges_segments_and_recovers_from_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let options = || EmbeddedOptions {
        snapshot_every: Some(50),
        segment_bytes: 2048,
        ..EmbeddedOptions::default()
    };
    let store = BlockingEmbedded::open(dir.path(), options()).unwrap();
    for i in 0..400 {
        store.put(format!("key{i:04}").as_bytes(), &[b'x'; 32]).unwrap();
    }
    // Compaction runs in the background; give it a moment to finish its last round.
    let deadline = Instant::now() + Duration::from_secs(10);
    while count_files(&dir.path().join("log"), "seg") > 8 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    store.close().unwrap();
    assert_eq!(count_files(&dir.path().join("snapshots"), "snap"), 1);
    let segments = count_files(&dir.path().join("log"), "seg");
    assert!(
        segments <= 8,
        "{segments} segments left: purged segments are not deleted"
    );

    let store = BlockingEmbedded::open(dir.path(), options()).unwrap();
    assert_eq!(store.len(), 400);
    assert_eq!(store.get(b"key0000"), Some(vec![b'x'; 32]));
    assert_eq!(store.get(b"key0399"), Some(vec![b'x'; 32]));
    store.close().unwrap();
}

#[test]
fn compaction_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let options = || EmbeddedOptions {
        snapshot_every: None,
        segment_bytes: 2048,
        ..EmbeddedOptions::default()
    };
    let store = BlockingEmbedded::open(dir.path(), options()).unwrap();
    for i in 0..200 {
        store.put(format!("key{i:04}").as_bytes(), b"before").unwrap();
    }
    assert_eq!(count_files(&dir.path().join("snapshots"), "snap"), 0);
    let before = count_files(&dir.path().join("log"), "seg");
    store.snapshot().unwrap();
    assert_eq!(count_files(&dir.path().join("snapshots"), "snap"), 1);
    let after = count_files(&dir.path().join("log"), "seg");
    assert!(
        after < before,
        "a snapshot purges the log: {before} segments before, {after} after"
    );
    store.put(b"key0000", b"after").unwrap();
    store.close().unwrap();

    let snapshot_files = || {
        let mut names: Vec<_> = std::fs::read_dir(dir.path().join("snapshots"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        names
    };
    let written = snapshot_files();
    let store = BlockingEmbedded::open(dir.path(), options()).unwrap();
    assert_eq!(store.get(b"key0000"), Some(b"after".to_vec()));
    assert_eq!(store.get(b"key0199"), Some(b"before".to_vec()));
    store.close().unwrap();
    // Restoring the state machine from the snapshot at open does not write it again.
    assert_eq!(snapshot_files(), written);
}

/// Makes every snapshot file take 300 ms to create (a hook of the real file system).
#[derive(Debug)]
struct SlowSnapshots;

impl FsHooks for SlowSnapshots {
    fn before_open(&self, path: &Path) {
        if path
            .parent()
            .and_then(Path::file_name)
            .is_some_and(|dir| dir == "snapshots")
        {
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

/// A snapshot asked for while another is being built (openraft then ignores the request, and
/// the snapshot being built ends before the writes since) still covers every write applied
/// when it was asked for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_asked_for_while_another_is_built_covers_every_write() {
    let dir = tempfile::tempdir().unwrap();
    let options = EmbeddedOptions {
        snapshot_every: None,
        fs: Arc::new(HookedFs(Arc::new(SlowSnapshots))),
        ..EmbeddedOptions::default()
    };
    let store = Embedded::open(dir.path(), options).await.unwrap();
    store.put(b"a", b"1").await.unwrap();
    let later = async {
        // The first snapshot is being saved by now; it holds `a` but not `b`. (openraft's
        // metrics, by which `snapshot` knows what is applied, see `b` soon after it is.)
        tokio::time::sleep(Duration::from_millis(100)).await;
        store.put(b"b", b"2").await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let started = Instant::now();
        store.snapshot().await.map(|()| started.elapsed())
    };
    let (first, second) = tokio::join!(store.snapshot(), later);
    first.unwrap();
    let waited = second.unwrap();
    assert!(
        waited >= Duration::from_millis(300),
        "a second snapshot was built: {waited:?}"
    );
    store.close().await.unwrap();
    let snapshots = std::fs::read_dir(dir.path().join("snapshots")).unwrap().count();
    assert_eq!(snapshots, 1, "the second snapshot replaced the first");
}

/// A tiny deterministic generator (xorshift64*), so a failing run can be replayed by seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// Runs the writer process, kills it with SIGKILL after a random number of acknowledged writes
/// (or a random time), reopens the store and checks that every acknowledged write is there.
/// Twenty rounds on the same directory, so later rounds also recover from earlier crashes.
/// Set `KILL_SEED` to replay a run.
#[test]
fn kill_9_loses_no_acknowledged_write() {
    let seed = std::env::var("KILL_SEED").map_or_else(
        |_| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        },
        |s| s.parse().expect("KILL_SEED is a number"),
    );
    println!("KILL_SEED={seed}");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut acked: Vec<String> = Vec::new();
    for run in 0..20 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_storage-crash-writer"))
            .args([dir.path().to_str().unwrap(), "8", &run.to_string(), "100000"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let kill_after_acks = 1 + rng.below(600) as usize;
        let kill_after_time = Duration::from_millis(rng.below(1500));
        let start = Instant::now();
        let mut seen = 0;
        let mut locked_checked = false;
        while seen < kill_after_acks && start.elapsed() < Duration::from_secs(20) {
            match rx.recv_timeout(Duration::from_millis(5)) {
                Ok(key) => {
                    acked.push(key);
                    seen += 1;
                    if !locked_checked {
                        // The store is open in the child: another process is locked out.
                        let opened = runtime.block_on(Embedded::open(dir.path(), EmbeddedOptions::default()));
                        assert!(
                            matches!(opened, Err(EmbeddedError::Storage(StorageError::Locked { .. }))),
                            "{opened:?}"
                        );
                        locked_checked = true;
                    }
                }
                Err(_) if start.elapsed() >= kill_after_time && seen > 0 => break,
                Err(_) => {}
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
        reader.join().unwrap();
        // Lines printed before the kill were acknowledged too.
        let before = acked.len();
        acked.extend(rx.try_iter());
        println!(
            "run {run}: killed after {} acknowledged writes",
            seen + acked.len() - before
        );

        let store = runtime
            .block_on(Embedded::open(dir.path(), EmbeddedOptions::default()))
            .unwrap_or_else(|e| panic!("run {run} (KILL_SEED={seed}): reopen failed: {e}"));
        for key in &acked {
            let i = key.rsplit('-').next().unwrap();
            assert_eq!(
                store.get(key.as_bytes()),
                Some(format!("v{i}").into_bytes()),
                "run {run} (KILL_SEED={seed}): acknowledged {key} is lost"
            );
        }
        runtime.block_on(store.close()).unwrap();
    }
    assert!(acked.len() >= 20, "only {} writes were acknowledged", acked.len());
}
