//! `cargo fuzz run gateway_binding`: see `fuzz/harness/gateway_binding.rs` for the input format and the checks.
#![no_main]

#[path = "../harness/gateway_binding.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::run(data));
