//! Test helper for the `kill -9` test (`kv-node/tests/embedded.rs`): opens an embedded store
//! and writes keys from several concurrent writers, printing each key to stdout once its write
//! is acknowledged, until it has written `count` keys per writer or is killed.
//!
//! Usage: `storage-crash-writer <dir> <writers> <run> <count>`. Key `r<run>-w<writer>-<i>` holds
//! `v<i>`. Compaction is frequent (every 200 entries) so kills also land inside snapshots.

use std::io::Write as _;
use std::sync::Arc;
use std::sync::Mutex;

use kv_node::storage::Embedded;
use kv_node::storage::EmbeddedOptions;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, dir, writers, run, count] = args.as_slice() else {
        return Err("usage: storage-crash-writer <dir> <writers> <run> <count>".into());
    };
    let (writers, count): (usize, usize) = (writers.parse()?, count.parse()?);
    let options = EmbeddedOptions {
        snapshot_every: Some(200),
        segment_bytes: 16 << 10,
        ..EmbeddedOptions::default()
    };
    let store = Arc::new(Embedded::open(dir, options).await?);
    let stdout = Arc::new(Mutex::new(std::io::stdout()));
    let mut tasks = Vec::new();
    for writer in 0..writers {
        let (store, stdout, run) = (store.clone(), stdout.clone(), run.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..count {
                let key = format!("r{run}-w{writer}-{i}");
                store.put(key.as_bytes(), format!("v{i}").as_bytes()).await?;
                let mut out = stdout.lock().expect("stdout lock");
                writeln!(out, "{key}")?;
                out.flush()?;
            }
            Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
        }));
    }
    for task in tasks {
        task.await?.map_err(|e| e.to_string())?;
    }
    Ok(())
}
