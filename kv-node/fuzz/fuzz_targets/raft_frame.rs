//! Fuzzes the Raft frame decoder: arbitrary peer bytes decode as requests and replies, or fail
//! cleanly, never panic or allocate what an oversized header announces.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| kv_core::wire::frame::check_input::<kv_node::NodeConfig>(input));
