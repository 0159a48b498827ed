//! `cargo fuzz run plugin_request`: see `fuzz/harness/plugin_request.rs` for the input format and the checks.
#![no_main]

#[path = "../harness/plugin_request.rs"]
mod harness;

// The generator catches panics of prost-build and prost-reflect and reports them as errors,
// which the harness checks; libfuzzer-sys's hook would abort on them before they are caught,
// so the default hook comes back (a panic that escapes still aborts: libfuzzer-sys does that
// when the test function unwinds).
libfuzzer_sys::fuzz_target!(
    init: drop(std::panic::take_hook()),
    |data: &[u8]| harness::run(data)
);
