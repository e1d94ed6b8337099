//! The body of the fuzz target `snapshot` (`kv-node/fuzz/fuzz_targets/snapshot.rs`): snapshot
//! contents from outside must decode or be refused, never panic, and what decodes must
//! re-encode stably. `tests/tests/fuzz_corpus.rs` replays the committed corpus through it on
//! stable Rust.
//!
//! The first input byte chooses what the rest is:
//!
//! | mode (byte % 3) | the rest is | path exercised |
//! |---|---|---|
//! | 0 | a store image (a snapshot's data) | `kv_core::store::Store::from_bytes` |
//! | 1 | a snapshot file, as is | kv-node's `FileSnapshotStore::open` and `load` (header, checksum, meta), then the store |
//! | 2 | a snapshot file whose lengths and checksum the harness makes right | the same, past the checksum, so mutations reach the meta and the store decoders |

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;

use kv_core::command::Limits;
use kv_core::raft::state_machine::SnapshotStore as _;
use kv_core::store::Store;
use kv_node::NodeConfig;
use kv_node::storage::FileSnapshotStore;
use kv_node::storage::FsyncPolicy;
use kv_node::storage::OsFs;

/// Bytes of a snapshot file's header (magic 6, version 2, meta length 4, data length 8, crc 4).
const SNAPSHOT_HEADER_LEN: usize = 24;

/// Checks one fuzz input; panics on a bug.
pub fn check_snapshot(input: &[u8]) {
    let Some((&mode, rest)) = input.split_first() else {
        return;
    };
    match mode % 3 {
        0 => check_store_image(rest),
        1 => check_snapshot_file(rest),
        _ => check_snapshot_file(&with_valid_header(rest)),
    }
}

/// A store image that decodes re-encodes to bytes that decode to the same store.
fn check_store_image(bytes: &[u8]) {
    let Ok(store) = Store::from_bytes(bytes, Limits::default()) else {
        return;
    };
    let image = store.to_bytes();
    let again = Store::from_bytes(&image, Limits::default()).expect("a store's own image decodes");
    assert_eq!(again.to_bytes(), image, "re-encoding a decoded image is stable");
}

/// The snapshot directory the harness writes its one file into (one per thread: test threads
/// run at once).
fn snapshot_dir() -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    thread_local! {
        static DIR: PathBuf = {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir().join(format!("quorumkv-fuzz-snapshot-{}-{n}", std::process::id()));
            std::fs::create_dir_all(&dir).expect("a temporary directory");
            dir
        };
    }
    DIR.with(PathBuf::clone)
}

/// Puts `file` where kv-node looks for its current snapshot and opens it as kv-node does.
fn check_snapshot_file(file: &[u8]) {
    let dir = snapshot_dir();
    let path = dir.join("00000000000000000001.snap");
    std::fs::write(&path, file).expect("writing the snapshot file");
    let decoded = kv_node::storage::format::decode_snapshot::<NodeConfig>(file).ok();
    match FileSnapshotStore::<NodeConfig>::open(Arc::new(OsFs), &dir, FsyncPolicy::Never) {
        Ok(mut store) => {
            let (_, data) = store
                .load()
                .expect("an opened snapshot loads")
                .expect("the file is the current snapshot");
            let (_, expected) = decoded.expect("what the store opens, the decoder decodes");
            assert_eq!(data, expected, "the store loads what the decoder decodes");
            check_store_image(&data);
        }
        Err(_) => assert!(decoded.is_none(), "the store refused what the decoder accepts"),
    }
}

/// `file` with the data length and the checksum of its header set to match its contents.
fn with_valid_header(file: &[u8]) -> Vec<u8> {
    let mut file = file.to_vec();
    if file.len() < SNAPSHOT_HEADER_LEN {
        return file;
    }
    let meta_len = u32::from_le_bytes(file[8..12].try_into().expect("4 bytes")) as usize;
    let body = file.len() - SNAPSHOT_HEADER_LEN;
    let meta_len = meta_len.min(body);
    file[8..12].copy_from_slice(&(meta_len as u32).to_le_bytes());
    file[12..20].copy_from_slice(&((body - meta_len) as u64).to_le_bytes());
    let crc = crc32c::crc32c_append(crc32c::crc32c(&file[..20]), &file[SNAPSHOT_HEADER_LEN..]);
    file[20..24].copy_from_slice(&crc.to_le_bytes());
    file
}
