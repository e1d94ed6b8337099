//! Replays the committed corpus of the `snapshot` fuzz target (and any crasher saved there)
//! on stable Rust, so CI checks what the fuzzer found without cargo-fuzz.

use std::path::Path;

use quorumkv_tests::fuzz_input::check_snapshot;

#[test]
fn replay_snapshot_corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../kv-node/fuzz/corpus/snapshot");
    let mut modes = [0; 3];
    for entry in std::fs::read_dir(&dir).expect("the snapshot corpus is committed") {
        let path = entry.unwrap().path();
        let input = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| check_snapshot(&input));
        assert!(outcome.is_ok(), "checking {} panicked", path.display());
        if let Some(mode) = input.first() {
            modes[usize::from(mode % 3)] += 1;
        }
    }
    assert!(modes.iter().all(|&n| n > 0), "every mode has a seed: {modes:?}");
}

#[test]
fn a_real_snapshot_file_opens_and_its_store_round_trips() {
    // The seed made from a real node's snapshot passes the checks of every mode; a flipped
    // byte in the data is refused by the checksum (mode 1), and decodes or is refused cleanly
    // once the harness fixes the checksum (mode 2).
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../kv-node/fuzz/corpus/snapshot");
    let mut file = std::fs::read(dir.join("file-five-keys")).unwrap();
    check_snapshot(&file);
    let last = file.len() - 1;
    file[last] ^= 0xff;
    check_snapshot(&file);
    file[0] = 2;
    check_snapshot(&file);
}
