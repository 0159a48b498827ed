//! The build.rs front end (this crate's `build.rs`) writes the same bytes as the golden files,
//! which the CLI and the protoc plugin are also held to.

use std::path::Path;

/// Every file under `dir` as `(relative name, content)`, sorted; subdirectories (OpenAPI
/// documents sit beside their proto's path) give `a/b/c.json` names.
fn read_dir(dir: &Path) -> Vec<(String, String)> {
    let mut files = Vec::new();
    let mut pending = vec![(dir.to_path_buf(), String::new())];
    while let Some((current, prefix)) = pending.pop() {
        for entry in
            std::fs::read_dir(&current).unwrap_or_else(|e| panic!("{}: {e}", current.display()))
        {
            let entry = entry.unwrap();
            let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
            if entry.file_type().unwrap().is_dir() {
                pending.push((entry.path(), format!("{name}/")));
            } else {
                files.push((name, std::fs::read_to_string(entry.path()).unwrap()));
            }
        }
    }
    files.sort();
    files
}

#[test]
fn build_rs_output_equals_the_golden_files() {
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("../protoc-gen-rzero/tests/golden");
    for case in ["default", "options"] {
        let built = read_dir(&Path::new(env!("OUT_DIR")).join(case));
        let expected = read_dir(&golden.join(case));
        let names =
            |files: &[(String, String)]| files.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
        assert_eq!(names(&built), names(&expected), "case {case}");
        for ((name, got), (_, want)) in built.iter().zip(&expected) {
            assert!(
                got == want,
                "case {case}: {name} from build.rs differs from the golden file"
            );
        }
    }
}
