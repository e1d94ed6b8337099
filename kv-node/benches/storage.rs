//! Storage benchmark (not a timed test): group-commit throughput and recovery time.
//!
//! ```text
//! cargo bench -p kv-node --bench storage            # full run, figures in docs/benchmarks.md
//! cargo bench -p kv-node --bench storage -- --quick # a smaller run
//! cargo bench -p kv-node --bench storage -- --quick --image # only the snapshot image (4.)
//! cargo bench -p kv-node --bench storage -- --quick --lookups # only point reads (5.)
//! ```
//!
//! 1. Log appends with `FsyncPolicy::Always` for 1, 16 and 256 concurrent writers, each
//!    appending one entry and waiting until it is durable: appends/s and MB/s. Group commit
//!    lets concurrent writers share each fsync.
//! 2. The same through the embedded store (`Embedded::put`: openraft, apply, response).
//! 3. Recovery of a log of 1,000,000 entries: reopening the log store alone, then the
//!    embedded store (replaying the log into the state machine), without and with a snapshot.
//! 4. The snapshot image of a store of 100,000 keys of 64-byte values (1,000,000 without
//!    `--quick`): `Store::freeze`, which runs on the apply path, the image's encoding from the
//!    frozen view, which does not, and `Store::from_bytes`.
//! 5. Point reads in the same store: GETs of random keys answered in runs of 16 (a pipeline),
//!    one after another, and with their records prefetched first (`Store::prefetch`, as the
//!    request path does): nanoseconds per GET.
//!
//! Data goes to a temporary directory under `$BENCH_DIR` (default: the system temp dir).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;
use std::time::Duration;
use std::time::Instant;

use kv_core::command::Command;
use kv_core::command::Expiry;
use kv_core::command::Limits;
use kv_core::command::Query;
use kv_core::command::Response;
use kv_core::command::SetCondition;
use kv_core::command::Write;
use kv_core::store::Store;
use kv_node::NodeConfig;
use kv_node::storage::Embedded;
use kv_node::storage::EmbeddedOptions;
use kv_node::storage::FsyncPolicy;
use kv_node::storage::LogOptions;
use kv_node::storage::LogStore;
use kv_node::storage::OsFs;
use openraft::alias::EntryOf;
use openraft::entry::RaftEntry;
use openraft::storage::IOFlushed;
use openraft::storage::RaftLogStorage;
use openraft::type_config::TypeConfigExt;
use tokio::sync::Mutex;

const VALUE_LEN: usize = 100;

fn entry(index: u64) -> EntryOf<NodeConfig> {
    let write = Write {
        at_ms: index,
        command: Command::Set {
            key: format!("key{index:012}").into_bytes(),
            value: vec![b'v'; VALUE_LEN],
            condition: SetCondition::Always,
            expiry: Expiry::Never,
        },
    };
    EntryOf::<NodeConfig>::new_normal(openraft::testing::log_id::<NodeConfig>(1, 1, index), write.into())
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum()
}

fn temp_dir() -> tempfile::TempDir {
    match std::env::var_os("BENCH_DIR") {
        Some(base) => tempfile::tempdir_in(base).unwrap(),
        None => tempfile::tempdir().unwrap(),
    }
}

/// `writers` tasks append one entry each, wait for it to be durable, and repeat, for `time`.
async fn log_appends(writers: usize, time: Duration) {
    let dir = temp_dir();
    let log = LogStore::<NodeConfig>::open(Arc::new(OsFs), dir.path(), LogOptions::default()).unwrap();
    let log = Arc::new(Mutex::new((log, 1u64)));
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|_| {
            let (log, done) = (log.clone(), done.clone());
            tokio::spawn(async move {
                while start.elapsed() < time {
                    let (tx, rx) = NodeConfig::oneshot();
                    {
                        let mut guard = log.lock().await;
                        let (log, next) = &mut *guard;
                        log.append([entry(*next)], IOFlushed::signal(tx)).await.unwrap();
                        *next += 1;
                    }
                    rx.await.unwrap().unwrap();
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let elapsed = start.elapsed().as_secs_f64();
    let appends = done.load(Ordering::Relaxed);
    let bytes = dir_bytes(dir.path());
    println!(
        "| log store | {writers:>3} | {appends:>8} | {:>10.0} | {:>6.2} |",
        appends as f64 / elapsed,
        bytes as f64 / elapsed / 1e6
    );
}

/// `writers` tasks each put a key and wait for the answer, and repeat, for `time`.
async fn embedded_puts(writers: usize, time: Duration) {
    let dir = temp_dir();
    let options = EmbeddedOptions {
        snapshot_every: None,
        ..EmbeddedOptions::default()
    };
    let store = Arc::new(Embedded::open(dir.path(), options).await.unwrap());
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let (store, done) = (store.clone(), done.clone());
            tokio::spawn(async move {
                let mut i = 0;
                while start.elapsed() < time {
                    store
                        .put(format!("w{w}-{i}").as_bytes(), &[b'v'; VALUE_LEN])
                        .await
                        .unwrap();
                    done.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let elapsed = start.elapsed().as_secs_f64();
    let puts = done.load(Ordering::Relaxed);
    let bytes = dir_bytes(&dir.path().join("log"));
    println!(
        "| embedded put | {writers:>3} | {puts:>8} | {:>10.0} | {:>6.2} |",
        puts as f64 / elapsed,
        bytes as f64 / elapsed / 1e6
    );
    Arc::into_inner(store).unwrap().close().await.unwrap();
}

/// Writes `n` entries to a log (in batches, without fsync: only the reopening is measured),
/// then times reopening it.
async fn log_recovery(n: u64) {
    let dir = temp_dir();
    let options = LogOptions {
        fsync: FsyncPolicy::Never,
        ..LogOptions::default()
    };
    let mut log = LogStore::<NodeConfig>::open(Arc::new(OsFs), dir.path(), options).unwrap();
    for start in (1..=n).step_by(1000) {
        let (tx, rx) = NodeConfig::oneshot();
        let entries: Vec<_> = (start..(start + 1000).min(n + 1)).map(entry).collect();
        log.append(entries, IOFlushed::signal(tx)).await.unwrap();
        rx.await.unwrap().unwrap();
    }
    let exit = log.writer_exit();
    drop(log);
    exit.wait();
    let bytes = dir_bytes(dir.path());
    let start = Instant::now();
    let mut log = LogStore::<NodeConfig>::open(Arc::new(OsFs), dir.path(), options).unwrap();
    let elapsed = start.elapsed();
    let last = log.get_log_state().await.unwrap().last_log_id.unwrap().index;
    assert_eq!(last, n);
    println!(
        "| log store reopen | {n} entries, {:.0} MB | {:.2} s |",
        bytes as f64 / 1e6,
        elapsed.as_secs_f64()
    );
}

/// Puts `n` keys through the embedded store (without fsync, to build the data quickly), then
/// times reopening it: the log replayed into the state machine, or the snapshot loaded.
async fn embedded_recovery(n: u64) {
    let dir = temp_dir();
    let options = || EmbeddedOptions {
        fsync: FsyncPolicy::Never,
        snapshot_every: None,
        ..EmbeddedOptions::default()
    };
    let store = Arc::new(Embedded::open(dir.path(), options()).await.unwrap());
    let writers = 256;
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in (w..n).step_by(writers as usize) {
                    store
                        .put(format!("key{i:012}").as_bytes(), &[b'v'; VALUE_LEN])
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    Arc::into_inner(store).unwrap().close().await.unwrap();

    for with_snapshot in [false, true] {
        let start = Instant::now();
        let store = Embedded::open(dir.path(), options()).await.unwrap();
        let elapsed = start.elapsed();
        assert_eq!(store.len(), n);
        let log_mb = dir_bytes(&dir.path().join("log")) as f64 / 1e6;
        let snapshot_mb = dir_bytes(&dir.path().join("snapshots")) as f64 / 1e6;
        let how = if with_snapshot { "snapshot" } else { "log only" };
        println!(
            "| embedded reopen, {how} | {n} keys; log {log_mb:.0} MB, snapshot {snapshot_mb:.0} MB | {:.2} s |",
            elapsed.as_secs_f64()
        );
        if !with_snapshot {
            store.snapshot().await.unwrap();
        }
        store.close().await.unwrap();
    }
}

/// A store of `keys` keys of 64-byte values, written in a scrambled order, as
/// `redis-benchmark -r` writes them: their records lie in memory in another order than the
/// keys, as in a node that has served random writes.
fn scrambled_store(keys: u64) -> Store {
    let mut store = Store::new(Limits::default());
    for n in 0..keys {
        // 7,919 is prime and divides no power of ten: n -> i is a permutation of 0..keys.
        let i = n * 7_919 % keys;
        let write = Write {
            at_ms: 0,
            command: Command::Set {
                key: format!("key:{i:012}").into_bytes(),
                value: vec![b'v'; 64],
                condition: SetCondition::Always,
                expiry: Expiry::Never,
            },
        };
        store.apply(i + 1, &write);
    }
    store
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// Median time of `Store::freeze`, `FrozenStore::to_bytes` and `Store::from_bytes` over 9
/// runs each, of a [`scrambled_store`].
fn snapshot_image(store: &mut Store) {
    let mut bytes = Vec::new();
    let (mut freeze, mut encode) = (Vec::new(), Vec::new());
    for _ in 0..9 {
        let start = Instant::now();
        let frozen = store.freeze();
        freeze.push(start.elapsed());
        let start = Instant::now();
        bytes = frozen.to_bytes();
        encode.push(start.elapsed());
    }
    assert_eq!(bytes, store.to_bytes());
    let (freeze, encode) = (median(freeze), median(encode));
    let decode = median(
        (0..9)
            .map(|_| {
                let start = Instant::now();
                let restored = Store::from_bytes(&bytes, Limits::default()).unwrap();
                let elapsed = start.elapsed();
                assert_eq!(restored.len(), store.len());
                elapsed
            })
            .collect(),
    );
    let mb = bytes.len() as f64 / 1e6;
    for (what, time) in [
        ("freeze (`Store::freeze`, on the apply path)", freeze),
        ("encode (`FrozenStore::to_bytes`, beside it)", encode),
        ("decode (`from_bytes`)", decode),
    ] {
        println!(
            "| snapshot image {what} | {} keys, {mb:.1} MB | {:.1} ms |",
            store.len(),
            time.as_secs_f64() * 1e3
        );
    }
}

/// Nanoseconds per GET of random keys of a [`scrambled_store`], answered in runs of 16, without
/// and with `Store::prefetch` before each run: the median of 9 passes of 160,000 GETs.
fn point_reads(store: &Store) {
    let keys = store.len() as u64;
    // A fixed scramble of the key numbers (another prime), so that both ways read alike.
    let queries: Vec<Query> = (0..160_000u64)
        .map(|n| Query::Get {
            key: format!("key:{:012}", n * 104_729 % keys).into_bytes(),
        })
        .collect();
    for prefetch in [false, true] {
        let time = median(
            (0..9)
                .map(|_| {
                    let start = Instant::now();
                    let mut found = 0;
                    for run in queries.chunks(16) {
                        if prefetch {
                            store.prefetch(run);
                        }
                        for query in run {
                            if let Response::Value(Some(value)) = store.query(query, 0) {
                                found += value.len();
                            }
                        }
                    }
                    assert_eq!(found, 64 * queries.len(), "every key is found");
                    start.elapsed()
                })
                .collect(),
        );
        println!(
            "| GET in runs of 16, {} | {keys} keys | {:.0} ns |",
            if prefetch { "prefetched" } else { "one by one" },
            time.as_secs_f64() * 1e9 / queries.len() as f64
        );
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let only_image = std::env::args().any(|a| a == "--image");
    let only_lookups = std::env::args().any(|a| a == "--lookups");
    let (time, entries) = if quick {
        (Duration::from_secs(1), 100_000)
    } else {
        (Duration::from_secs(5), 1_000_000)
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        if only_image || only_lookups {
            return;
        }
        println!("| path | writers | appends | appends/s | MB/s |");
        println!("|---|---:|---:|---:|---:|");
        for writers in [1, 16, 256] {
            log_appends(writers, time).await;
        }
        for writers in [1, 16, 256] {
            embedded_puts(writers, time).await;
        }
        println!();
        println!("| recovery | data | time |");
        println!("|---|---|---:|");
        log_recovery(entries).await;
        embedded_recovery(entries).await;
    });
    let mut store = scrambled_store(entries);
    if !only_lookups {
        println!();
        println!("| snapshot image | store | median of 9 |");
        println!("|---|---|---:|");
        snapshot_image(&mut store);
    }
    if !only_image {
        println!();
        println!("| point reads | store | per GET, median of 9 |");
        println!("|---|---|---:|");
        point_reads(&store);
    }
}
