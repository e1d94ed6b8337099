//! Replays the committed fuzz corpus (and any crashers found so far) through the decoders, so
//! stable `cargo test` checks what the nightly-only fuzzer found. See `kv-node/fuzz`.

use std::path::Path;

use kv_node::NodeConfig;
use kv_node::storage::format::check_decoders;

#[test]
fn replay_segment_corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/segment");
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).expect("the fuzz corpus is committed") {
        let path = entry.unwrap().path();
        let input = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| check_decoders::<NodeConfig>(&input));
        assert!(outcome.is_ok(), "decoding {} panicked", path.display());
        replayed += 1;
    }
    assert!(replayed > 0, "no corpus files in {}", dir.display());
}
