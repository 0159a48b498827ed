//! `cargo fuzz run plugin_request`: see `fuzz/harness/plugin_request.rs` for the input format and the checks.
#![no_main]

#[path = "../harness/plugin_request.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::run(data));
