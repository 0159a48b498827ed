//! `cargo fuzz run path_template`: see `fuzz/harness/path_template.rs` for the input format and the checks.
#![no_main]

#[path = "../harness/path_template.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::run(data));
