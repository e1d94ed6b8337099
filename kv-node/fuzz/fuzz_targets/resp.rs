//! Fuzzes the RESP parser and the command table: arbitrary client bytes parse, or fail with a
//! protocol error, never panic or allocate past the limits.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| kv_node::protocol::check_input(input));
