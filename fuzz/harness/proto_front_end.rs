//! Fuzz harness `proto_front_end`: any text as a `.proto` file given to
//! `protoc_gen_rzero::generate` (protox parsing, checks, prost-build, service emission).
//!
//! The text is written to `fuzz.proto` in a per-process temporary include directory (the
//! public API reads files). A first line `//!rzero: PARAMETER` sets the generator options as
//! protoc's `--rzero_opt=PARAMETER` would (for example `openapi,no_client`).
//!
//! Shared by `fuzz/fuzz_targets/proto_front_end.rs` and
//! `protoc-gen-rzero/tests/fuzz_regressions.rs` (through `#[path]`). Uses only
//! `protoc-gen-rzero` and `std`.

use std::path::PathBuf;
use std::sync::OnceLock;

use protoc_gen_rzero::{Error, Options};

const OPTIONS_PREFIX: &[u8] = b"//!rzero:";

/// The include directory holding `fuzz.proto`, one per process (removed by nobody: it sits in
/// the system temporary directory and holds one small file).
fn include_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("rzero-fuzz-proto-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the fuzz include directory");
        dir
    })
}

/// Generates code for `data` as `fuzz.proto`. Panics (a finding) when the generator panics
/// or reports an internal error; a bad file must be an ordinary, located error.
pub(crate) fn run(data: &[u8]) {
    let options = match data.strip_prefix(OPTIONS_PREFIX) {
        Some(rest) => {
            let line = rest.split(|&b| b == b'\n').next().unwrap_or_default();
            let Ok(parameter) = std::str::from_utf8(line) else {
                return;
            };
            match Options::from_parameter(parameter.trim()) {
                Ok(options) => options,
                Err(_) => return,
            }
        }
        None => Options::default(),
    };
    let dir = include_dir();
    std::fs::write(dir.join("fuzz.proto"), data).expect("write fuzz.proto");
    match protoc_gen_rzero::generate(&["fuzz.proto"], &[dir], &options) {
        Ok(files) => assert!(!files.is_empty(), "generation succeeded with no files"),
        Err(Error::Internal(message)) => {
            panic!("bad .proto reported as an internal error: {message}")
        }
        Err(_) => {}
    }
}
