//! Fuzzes the segment and snapshot decoders: arbitrary bytes must decode or fail cleanly.
#![no_main]

use kv_node::NodeConfig;
use kv_node::storage::format::check_decoders;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| check_decoders::<NodeConfig>(input));
