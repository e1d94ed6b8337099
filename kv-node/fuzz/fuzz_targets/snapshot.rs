//! Fuzzes snapshot contents: kv-node's snapshot file reader and `Store::from_bytes` must
//! decode or refuse arbitrary bytes, never panic, and what decodes must re-encode stably. The
//! body (and what the first byte selects) is `quorumkv_tests::fuzz_input::check_snapshot`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use quorumkv_tests::fuzz_input::check_snapshot;

fuzz_target!(|input: &[u8]| check_snapshot(input));
