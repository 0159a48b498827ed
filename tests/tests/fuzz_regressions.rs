//! Replays the fuzz inputs of the gateway targets (see `fuzz/README.md`): every file
//! under `fuzz/regressions/<target>/` (crashes the fuzzers found, kept once fixed) and the
//! seed corpus `fuzz/corpus/<target>/`, through the same harness the fuzzer runs. Passes
//! when the directories are empty.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

#[path = "../../fuzz/harness/gateway_binding.rs"]
mod gateway_binding;
#[path = "../../fuzz/harness/path_template.rs"]
mod path_template;

/// The files of `fuzz/<kind>/<target>/`, sorted; none if the directory does not exist.
fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz")
        .join(kind)
        .join(target);
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .map(|entry| entry.expect("read fuzz directory").path())
            .filter(|path| path.is_file())
            .collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    files
}

/// Runs `harness` on every input of `target`, then fails naming each input that panicked.
fn replay(target: &str, harness: fn(&[u8])) {
    let mut failed = Vec::new();
    for path in ["regressions", "corpus"]
        .into_iter()
        .flat_map(|kind| inputs(kind, target))
    {
        let data = std::fs::read(&path).expect("read fuzz input");
        if catch_unwind(AssertUnwindSafe(|| harness(&data))).is_err() {
            failed.push(path.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "{target}: these inputs panic (reproduce with `cargo fuzz run {target} FILE` in fuzz/):\n{}",
        failed.join("\n")
    );
}

#[test]
fn path_template() {
    replay("path_template", path_template::run);
}

#[test]
fn gateway_binding() {
    replay("gateway_binding", gateway_binding::run);
}
