//! Replays the committed fuzz corpora of the network decoders (`kv-node/fuzz/corpus/resp` and
//! `kv-node/fuzz/corpus/raft_frame`, crashers included) on stable Rust: every input must be
//! handled without a panic.

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).expect("the fuzz corpus is committed") {
        let path = entry.unwrap().path();
        let input = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| check(&input));
        assert!(outcome.is_ok(), "{target}: {} panicked", path.display());
        // Every prefix too: a stream may end anywhere.
        for cut in 0..input.len().min(512) {
            let outcome = std::panic::catch_unwind(|| check(&input[..cut]));
            assert!(outcome.is_ok(), "{target}: {} cut at {cut} panicked", path.display());
        }
        replayed += 1;
    }
    assert!(replayed > 0, "no corpus files in {}", dir.display());
}

#[test]
fn replay_resp_corpus() {
    replay("resp", kv_node::protocol::check_input);
}

#[test]
fn replay_raft_frame_corpus() {
    replay("raft_frame", kv_core::wire::frame::check_input::<kv_node::NodeConfig>);
}
