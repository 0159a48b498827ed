//! Shared by the generator's integration tests: the cases, the golden directories, and a
//! scratch-directory helper.

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};

use protoc_gen_rzero::{GeneratedFile, Options};

#[path = "../../../tests/src/testdata.rs"]
pub mod testdata;

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn testdata_dir() -> PathBuf {
    repo().join("testdata")
}

/// A golden case: inputs, options, and where its expected output lives.
pub struct Case {
    pub name: &'static str,
    pub files: Vec<&'static str>,
    pub parameter: &'static str,
}

impl Case {
    pub fn options(&self) -> Options {
        Options::from_parameter(self.parameter).expect("case options parse")
    }

    pub fn golden_dir(&self) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/golden")
            .join(self.name)
    }

    pub fn generate(&self) -> Vec<GeneratedFile> {
        let files: Vec<PathBuf> = self.files.iter().map(|f| testdata_dir().join(f)).collect();
        protoc_gen_rzero::generate(&files, &[testdata_dir()], &self.options())
            .unwrap_or_else(|e| panic!("case {} failed to generate: {e}", self.name))
    }
}

pub fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "default",
            files: testdata::GOOD.to_vec(),
            parameter: "",
        },
        Case {
            name: "options",
            files: testdata::OPTIONS_CASE.to_vec(),
            parameter: testdata::OPTIONS_PARAMETER,
        },
    ]
}

/// Reads every file under a directory as `(relative name, content)`, sorted; names of files
/// in subdirectories use `/` (`greeter/v1/greeter.openapi.json`).
pub fn read_dir(dir: &Path) -> Vec<(String, String)> {
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
                let content = std::fs::read_to_string(entry.path()).unwrap();
                files.push((name, content.replace("\r\n", "\n")));
            }
        }
    }
    files.sort();
    files
}

pub fn as_pairs(files: &[GeneratedFile]) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = files
        .iter()
        .map(|f| (f.name.clone(), f.content.clone()))
        .collect();
    pairs.sort();
    pairs
}

/// Asserts two file sets are identical, naming the first file that differs.
pub fn assert_same_files(what: &str, expected: &[(String, String)], actual: &[(String, String)]) {
    let names =
        |files: &[(String, String)]| files.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(expected), names(actual), "{what}: file names differ");
    for ((name, want), (_, got)) in expected.iter().zip(actual) {
        if want != got {
            let line = want
                .lines()
                .zip(got.lines())
                .position(|(a, b)| a != b)
                .map_or_else(|| "length".to_owned(), |i| format!("line {}", i + 1));
            panic!("{what}: {name} differs at {line}");
        }
    }
}

/// A fresh directory under the target dir, removed first if it exists.
pub fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
