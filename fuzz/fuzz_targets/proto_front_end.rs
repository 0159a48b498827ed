//! `cargo fuzz run proto_front_end`: see `fuzz/harness/proto_front_end.rs` for the input format and the checks.
#![no_main]

#[path = "../harness/proto_front_end.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::run(data));
