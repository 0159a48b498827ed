//! Fuzz harness `plugin_request`: any bytes as protoc's `CodeGeneratorRequest`.
//!
//! Shared by `fuzz/fuzz_targets/plugin_request.rs` and the regression test
//! `protoc-gen-rzero/tests/fuzz_regressions.rs` (through `#[path]`), so a saved crash replays
//! through exactly this code. Uses only `protoc-gen-rzero`, `prost` and `prost-types`.

use prost::Message as _;
use prost_types::compiler::CodeGeneratorResponse;

/// Runs the plugin on `data`. Panics (a finding) when the generator panics or reports an
/// internal error: bad input must come back as an ordinary error.
pub(crate) fn run(data: &[u8]) {
    match protoc_gen_rzero::execute(data) {
        Ok(response) => {
            let response =
                CodeGeneratorResponse::decode(response.as_slice()).expect("response decodes");
            if let Some(error) = response.error {
                assert!(
                    !error.contains("internal error in protoc-gen-rzero"),
                    "bad request reported as an internal error: {error}"
                );
            }
        }
        Err(error) => assert!(
            !matches!(error, protoc_gen_rzero::Error::Internal(_)),
            "bad request reported as an internal error: {error}"
        ),
    }
}
