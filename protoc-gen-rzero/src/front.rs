//! Front ends: turn a `CodeGeneratorRequest` (protoc) or `.proto` files on disk (build.rs,
//! CLI) into the same list of file descriptors.
//!
//! The pure-Rust path parses with `protox`, which keeps comments (they become doc comments)
//! and reports `file:line:col`. `google/protobuf/*` come with protox; the `google/api` and
//! `google/rpc` files users import most are embedded here, so nobody has to vendor them. A
//! file on the user's include path wins over an embedded one.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use miette::Diagnostic;
use prost::Message;
use prost_types::compiler::CodeGeneratorRequest;
use prost_types::{FileDescriptorProto, SourceCodeInfo};
use protox::file::{
    ChainFileResolver, File, FileResolver, GoogleFileResolver, IncludeFileResolver,
};

use crate::error::{Error, Result};

/// Descriptors of every file the inputs reach, dependencies first.
#[derive(Debug)]
pub(crate) struct Input {
    pub(crate) files: Vec<FileDescriptorProto>,
    /// Files read from disk (empty for protoc requests), for `cargo:rerun-if-changed`.
    pub(crate) paths: Vec<std::path::PathBuf>,
    /// The names of the files asked for (protoc's `file_to_generate`, or the files given),
    /// not those only imported: what per-file outputs such as OpenAPI documents cover.
    pub(crate) requested: Vec<String>,
    /// The files that define services, encoded with their extension options and source
    /// info, by name; only when some file imports `google/api/annotations.proto`.
    ///
    /// `files` cannot carry `google.api.http`: prost-types drops extension options when it
    /// decodes. These bytes can, and [`crate::http`] reads the rules from a pool built from
    /// them (the source info gives the `file:line` of a bad rule).
    pub(crate) annotated: BTreeMap<String, Vec<u8>>,
}

/// The file that declares `google.api.http`.
const ANNOTATIONS: &str = "google/api/annotations.proto";

/// Whether any of `files` can have `google.api.http` rules (then [`Input::annotated`] is
/// worth filling).
fn may_have_http_rules(files: &[FileDescriptorProto]) -> bool {
    files
        .iter()
        .any(|file| file.dependency.iter().any(|d| d == ANNOTATIONS))
}

/// `descriptor` (an encoded `FileDescriptorProto`) with `info` appended as its
/// `source_code_info` (field 9): a field appended to an encoded message sets it.
fn with_source_info(mut descriptor: Vec<u8>, info: Option<&SourceCodeInfo>) -> Vec<u8> {
    if let Some(info) = info {
        prost::encoding::message::encode(9, info, &mut descriptor);
    }
    descriptor
}

/// The parts of a protoc request the generator uses.
#[derive(Debug)]
pub(crate) struct PluginRequest {
    pub(crate) input: Input,
    pub(crate) parameter: String,
}

/// Decodes protoc's request. Bytes that are not a request (or a request naming no files)
/// are an error, so garbage on stdin is reported instead of generating nothing.
pub(crate) fn from_request(bytes: &[u8]) -> Result<PluginRequest> {
    let mut request =
        CodeGeneratorRequest::decode(bytes).map_err(|e| Error::Request(e.to_string()))?;
    if request.file_to_generate.is_empty() {
        return Err(Error::Request(
            "it names no file to generate (is this really protoc's output?)".to_owned(),
        ));
    }
    for name in &request.file_to_generate {
        if !request.proto_file.iter().any(|f| f.name() == name) {
            return Err(Error::Request(format!(
                "file_to_generate names `{name}` but no descriptor for it was sent"
            )));
        }
    }
    check_consistent(&mut request.proto_file)?;
    let annotated = if may_have_http_rules(&request.proto_file) {
        // The same bytes again, each file kept whole (extension options included).
        let raw = RawRequest::decode(bytes).map_err(|e| Error::Request(e.to_string()))?;
        request
            .proto_file
            .iter()
            .zip(raw.proto_file)
            .filter(|(file, _)| !file.service.is_empty())
            .map(|(file, raw)| (file.name().to_owned(), raw))
            .collect()
    } else {
        BTreeMap::new()
    };
    Ok(PluginRequest {
        input: Input {
            files: request.proto_file,
            paths: Vec::new(),
            requested: request.file_to_generate,
            annotated,
        },
        parameter: request.parameter.unwrap_or_default(),
    })
}

/// `CodeGeneratorRequest` with each `proto_file` left encoded.
#[derive(Clone, PartialEq, prost::Message)]
struct RawRequest {
    #[prost(bytes = "vec", repeated, tag = "15")]
    proto_file: Vec<Vec<u8>>,
}

/// Refuses a request whose descriptors do not fit together (a type or import that is not
/// there, a name defined twice...). protoc never sends such a request, but prost-build and
/// prost-reflect assume consistent descriptors and panic on others (found by fuzzing,
/// `fuzz/regressions/plugin_request`). The check copies the files without their source
/// info (put back afterwards), which it does not need and which is most of a large file.
fn check_consistent(files: &mut [FileDescriptorProto]) -> Result<()> {
    let infos: Vec<Option<SourceCodeInfo>> = files
        .iter_mut()
        .map(|f| f.source_code_info.take())
        .collect();
    // prost-reflect itself panics on some inconsistencies (while labelling a duplicate).
    let result = std::panic::catch_unwind(|| {
        prost_reflect::DescriptorPool::new()
            .add_file_descriptor_protos(files.iter().cloned())
            .map_err(|e| e.to_string())
    })
    .unwrap_or_else(|_| Err("prost-reflect panicked while checking them".to_owned()));
    for (file, info) in files.iter_mut().zip(infos) {
        file.source_code_info = info;
    }
    result.map_err(|e| Error::Request(format!("its descriptors are inconsistent: {e}")))
}

/// Parses `.proto` files with `protox`. `files` may be relative to an include directory or
/// paths that lie under one.
///
/// Large inputs are split across the available cores into runs of consecutive files of
/// about the same size in bytes (one huge file would otherwise make its run the slowest), each
/// parsed by its own compiler (shared imports are parsed twice; that costs far less than it
/// saves), and the results are merged by file name. The first error in input order is the one
/// reported.
pub(crate) fn from_files(
    files: &[impl AsRef<Path>],
    includes: &[impl AsRef<Path>],
) -> Result<Input> {
    let paths: Vec<&Path> = files.iter().map(AsRef::as_ref).collect();
    let includes: Vec<&Path> = includes.iter().map(AsRef::as_ref).collect();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads < 2 || paths.len() < PARALLEL_PARSE_MIN_FILES {
        return parse(&paths, &includes);
    }
    let sizes: Vec<u64> = paths.iter().map(|p| file_size(p, &includes)).collect();
    parse_in_parallel(&paths, &includes, &split_by_size(&sizes, threads))
}

/// The size of the file `path` names, 0 if it cannot be found (it only steers the split).
fn file_size(path: &Path, includes: &[&Path]) -> u64 {
    std::iter::once(path.to_path_buf())
        .chain(includes.iter().map(|include| include.join(path)))
        .find_map(|candidate| std::fs::metadata(candidate).ok())
        .map_or(0, |metadata| metadata.len())
}

/// Lengths of at most `parts` runs of consecutive items whose sizes add up to about the
/// same. Every item is in a run; no run is empty.
fn split_by_size(sizes: &[u64], parts: usize) -> Vec<usize> {
    let total: u64 = sizes.iter().sum::<u64>().max(1);
    let mut runs = Vec::with_capacity(parts);
    let (mut start, mut sum) = (0, 0);
    for (i, size) in sizes.iter().enumerate() {
        sum += size;
        // Close the run once it reaches its share of the total (by then `runs.len() + 1`
        // shares are used up).
        let share = total * (runs.len() as u64 + 1) / parts as u64;
        if sum >= share && runs.len() + 1 < parts {
            runs.push(i + 1 - start);
            start = i + 1;
        }
    }
    if start < sizes.len() {
        runs.push(sizes.len() - start);
    }
    runs
}

/// Parses each run of `paths` (by length, see [`split_by_size`]) on its own thread.
fn parse_in_parallel(paths: &[&Path], includes: &[&Path], runs: &[usize]) -> Result<Input> {
    let parts: Vec<Result<Input>> = std::thread::scope(|scope| {
        let mut rest = paths;
        let handles: Vec<_> = runs
            .iter()
            .map(|&len| {
                let (part, after) = rest.split_at(len);
                rest = after;
                scope.spawn(move || parse(part, includes))
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|_| Err(Error::Internal("the .proto parser panicked".into())))
            })
            .collect()
    });
    let mut merged = Input {
        files: Vec::new(),
        paths: Vec::new(),
        requested: Vec::new(),
        annotated: BTreeMap::new(),
    };
    let mut seen = std::collections::HashSet::new();
    for part in parts {
        let part = part?;
        for file in part.files {
            if seen.insert(file.name().to_owned()) {
                merged.files.push(file);
            }
        }
        for path in part.paths {
            if !merged.paths.contains(&path) {
                merged.paths.push(path);
            }
        }
        for name in part.requested {
            if !merged.requested.contains(&name) {
                merged.requested.push(name);
            }
        }
        for (name, bytes) in part.annotated {
            merged.annotated.entry(name).or_insert(bytes);
        }
    }
    Ok(merged)
}

/// Below this many input files, one parser is faster than starting threads.
const PARALLEL_PARSE_MIN_FILES: usize = 16;

/// Parses `files` and everything they import with one protox compiler.
///
/// protox hands every file to prost-reflect with its source info, and prost-reflect's option
/// resolution rewrites the location paths of each option with a scan over all of the file's
/// locations: quadratic in the file's size (a 96k-line file such as Compute's spent over a
/// second there). So the compiler is first given the files without source info, which is
/// reattached afterwards; only option locations differ, and nothing reads them. Errors need
/// the source info for their `file:line:col`, so when that pass fails, a second one with
/// source info throughout reports the error. (So the compiler's own descriptor pool has no
/// source info on the fast path: whatever needs locations must read the returned descriptors.)
fn parse(files: &[&Path], includes: &[&Path]) -> Result<Input> {
    match parse_detached(files, includes) {
        Some(input) => Ok(input),
        None => parse_with_source_info(files, includes),
    }
}

/// The well-known types first: they are fixed, and protox cannot parse every newer copy of
/// `google/protobuf/descriptor.proto` that include trees carry (editions syntax).
fn resolver(includes: &[&Path]) -> ChainFileResolver {
    let mut resolver = ChainFileResolver::new();
    resolver.add(GoogleFileResolver::new());
    for include in includes {
        resolver.add(IncludeFileResolver::new(include.to_path_buf()));
    }
    resolver.add(EmbeddedFileResolver);
    resolver
}

fn parse_with_source_info(files: &[&Path], includes: &[&Path]) -> Result<Input> {
    let mut compiler = protox::Compiler::with_file_resolver(resolver(includes));
    compiler.include_imports(true).include_source_info(true);
    for file in files {
        compiler
            .open_file(file)
            .map_err(|e| proto_error(&e, file))?;
    }
    let files = compiler.file_descriptor_set().file;
    let annotated = annotated(&compiler, &files, |_| None);
    Ok(Input {
        files,
        paths: compiler
            .files()
            .filter_map(|f| f.path().map(Path::to_owned))
            .collect(),
        requested: requested(&compiler),
        annotated,
    })
}

/// [`parse`]'s first pass; `None` on any error, which the second pass then reports.
fn parse_detached(files: &[&Path], includes: &[&Path]) -> Option<Input> {
    let detaching = std::rc::Rc::new(DetachSourceInfo {
        inner: resolver(includes),
        detached: Default::default(),
    });
    let mut compiler = protox::Compiler::with_file_resolver(SharedResolver(detaching.clone()));
    compiler.include_imports(true);
    for file in files {
        compiler.open_file(file).ok()?;
        // protox makes sure a file named by a path under an include directory is the one
        // that name resolves to, but cannot without the path this resolver holds back.
        if let Some(name) = detaching.inner.resolve_path(file) {
            let detached = detaching.detached.borrow();
            let found = detached.get(&name).and_then(|d| d.path.as_deref());
            if found.is_some_and(|found| !same_path(found, file)) {
                return None;
            }
        }
    }
    let mut detached = detaching.detached.take();
    let mut descriptors = compiler.file_descriptor_set().file;
    for descriptor in &mut descriptors {
        descriptor.source_code_info = detached
            .get_mut(descriptor.name())
            .and_then(|d| d.source_code_info.take());
    }
    let annotated = annotated(&compiler, &descriptors, |name| {
        descriptors
            .iter()
            .find(|d| d.name() == name)
            .and_then(|d| d.source_code_info.as_ref())
    });
    Some(Input {
        annotated,
        files: descriptors,
        paths: compiler
            .files()
            .filter_map(|f| detached.get_mut(f.name()).and_then(|d| d.path.take()))
            .collect(),
        requested: requested(&compiler),
    })
}

/// The names of the files opened (not imported) in `compiler`.
fn requested(compiler: &protox::Compiler) -> Vec<String> {
    compiler
        .files()
        .filter(|file| !file.is_import())
        .map(|file| file.name().to_owned())
        .collect()
}

/// [`Input::annotated`] from a compiler's pool (which keeps extension options);
/// `source_info` supplies what the pool lacks on the detached path.
fn annotated<'a>(
    compiler: &protox::Compiler,
    files: &'a [FileDescriptorProto],
    source_info: impl Fn(&str) -> Option<&'a SourceCodeInfo>,
) -> BTreeMap<String, Vec<u8>> {
    if !may_have_http_rules(files) {
        return BTreeMap::new();
    }
    let pool = compiler.descriptor_pool();
    files
        .iter()
        .filter(|file| !file.service.is_empty())
        .filter_map(|file| {
            let encoded = pool.get_file_by_name(file.name())?.encode_to_vec();
            Some((
                file.name().to_owned(),
                with_source_info(encoded, source_info(file.name())),
            ))
        })
        .collect()
}

/// Equal but for `.` components, as protox compares them (`./a.proto` is `a.proto`).
fn same_path(a: &Path, b: &Path) -> bool {
    let parts = |path| Path::components(path).filter(|c| *c != std::path::Component::CurDir);
    parts(a).eq(parts(b))
}

/// A resolver that hands protox each file without its source info, keeping that (and the
/// file's path, which goes with it) by file name.
struct DetachSourceInfo {
    inner: ChainFileResolver,
    detached: std::cell::RefCell<HashMap<String, Detached>>,
}

struct Detached {
    path: Option<PathBuf>,
    source_code_info: Option<SourceCodeInfo>,
}

/// The compiler owns its resolver; this lets [`parse_detached`] read what was detached.
struct SharedResolver(std::rc::Rc<DetachSourceInfo>);

impl FileResolver for SharedResolver {
    fn resolve_path(&self, path: &Path) -> Option<String> {
        self.0.inner.resolve_path(path)
    }

    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        let file = self.0.inner.open_file(name)?;
        let mut descriptor = file.file_descriptor_proto().clone();
        self.0.detached.borrow_mut().insert(
            name.to_owned(),
            Detached {
                path: file.path().map(Path::to_owned),
                source_code_info: descriptor.source_code_info.take(),
            },
        );
        Ok(File::from_file_descriptor_proto(descriptor))
    }
}

/// `file:line:col: message`, from the diagnostic's last label when it has one: where an
/// error has two (a duplicate: "first used here", "used again here"), the last is the culprit.
fn proto_error(error: &protox::Error, opened: &Path) -> Error {
    let file = error
        .file()
        .map(str::to_owned)
        .unwrap_or_else(|| opened.display().to_string());
    let position = error
        .labels()
        .and_then(|labels| labels.last())
        .zip(error.source_code())
        .and_then(|(label, source)| {
            source
                .read_span(label.inner(), 0, 0)
                .ok()
                .map(|span| (span.line() + 1, span.column() + 1))
        });
    let location = match position {
        Some((line, column)) => format!("{file}:{line}:{column}"),
        None => file,
    };
    Error::Proto {
        location,
        message: error.to_string(),
    }
}

/// Google API files users import without vendoring them.
const EMBEDDED: &[(&str, &str)] = &[
    (
        "google/api/annotations.proto",
        include_str!("../proto/google/api/annotations.proto"),
    ),
    (
        "google/api/field_behavior.proto",
        include_str!("../proto/google/api/field_behavior.proto"),
    ),
    (
        "google/api/http.proto",
        include_str!("../proto/google/api/http.proto"),
    ),
    (
        "google/api/httpbody.proto",
        include_str!("../proto/google/api/httpbody.proto"),
    ),
    (
        "google/rpc/code.proto",
        include_str!("../proto/google/rpc/code.proto"),
    ),
    (
        "google/rpc/error_details.proto",
        include_str!("../proto/google/rpc/error_details.proto"),
    ),
    (
        "google/rpc/status.proto",
        include_str!("../proto/google/rpc/status.proto"),
    ),
];

/// The embedded `google/api` and `google/rpc` files, as `(name, source)`.
pub fn embedded_protos() -> impl Iterator<Item = (&'static str, &'static str)> {
    EMBEDDED.iter().copied()
}

struct EmbeddedFileResolver;

impl FileResolver for EmbeddedFileResolver {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        match EMBEDDED.iter().find(|(embedded, _)| *embedded == name) {
            Some((name, source)) => File::from_source(name, source),
            None => Err(protox::Error::file_not_found(name)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inconsistent_request_is_a_request_error() {
        use prost_types::field_descriptor_proto::Type;
        use prost_types::{DescriptorProto, FieldDescriptorProto};
        let field = FieldDescriptorProto {
            name: Some("f".into()),
            number: Some(1),
            r#type: Some(Type::Message as i32),
            type_name: Some(".Nope".into()),
            ..Default::default()
        };
        let file = FileDescriptorProto {
            name: Some("a.proto".into()),
            message_type: vec![DescriptorProto {
                name: Some("M".into()),
                field: vec![field],
                ..Default::default()
            }],
            ..Default::default()
        };
        let request = CodeGeneratorRequest {
            file_to_generate: vec!["a.proto".into()],
            proto_file: vec![file],
            ..Default::default()
        };
        let error = from_request(&request.encode_to_vec()).unwrap_err();
        assert!(matches!(error, Error::Request(_)), "{error:?}");
        assert!(error.to_string().contains("Nope"), "{error}");
    }

    #[test]
    fn parallel_parsing_finds_the_same_files_as_one_parser() {
        let testdata = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata");
        let names = [
            "shop/orders/v1/orders.proto",
            "echo/v1/echo.proto",
            "shop/catalog/v1/catalog.proto",
            "greeter/v1/greeter.proto",
            "hostile/v1/hostile.proto",
        ];
        let paths: Vec<std::path::PathBuf> = names.iter().map(|n| testdata.join(n)).collect();
        let paths: Vec<&Path> = paths.iter().map(|p| p.as_path()).collect();
        let sorted = |input: Input| {
            let mut files = input.files;
            files.sort_by(|a, b| a.name().cmp(b.name()));
            files
        };
        let one = sorted(parse(&paths, &[testdata.as_path()]).unwrap());
        let split = sorted(parse_in_parallel(&paths, &[testdata.as_path()], &[2, 2, 1]).unwrap());
        assert_eq!(one, split);
        assert!(
            one.iter().any(|f| f.name() == "shop/common/v1/money.proto"),
            "imports are included"
        );
    }

    #[test]
    fn detaching_source_info_changes_nothing_but_option_paths() {
        let testdata = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata");
        let paths = [
            testdata.join("shop/orders/v1/orders.proto"),
            testdata.join("hostile/v1/hostile.proto"),
        ];
        let paths: Vec<&Path> = paths.iter().map(|p| p.as_path()).collect();
        let fast = parse_detached(&paths, &[testdata.as_path()]).unwrap();
        let full = parse_with_source_info(&paths, &[testdata.as_path()]).unwrap();
        assert_eq!(fast.paths, full.paths);
        assert_eq!(fast.files.len(), full.files.len());
        for (fast, full) in fast.files.iter().zip(&full.files) {
            let without_paths = |file: &FileDescriptorProto| {
                let mut file = file.clone();
                // (The well-known types come without source info.)
                if let Some(info) = &mut file.source_code_info {
                    for location in &mut info.location {
                        location.path.clear();
                    }
                    info.location.sort_by(|a, b| a.span.cmp(&b.span));
                }
                file
            };
            assert_eq!(without_paths(fast), without_paths(full), "{}", fast.name());
        }
        let options = crate::options::Options::default();
        assert_eq!(
            crate::emit::generate(fast, &options).unwrap(),
            crate::emit::generate(full, &options).unwrap()
        );
    }

    #[test]
    fn a_shadowed_input_is_reported_as_protox_reports_it() {
        let testdata = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata");
        let shadow = std::env::temp_dir().join(format!("rzero-shadow-{}", std::process::id()));
        std::fs::create_dir_all(shadow.join("echo/v1")).unwrap();
        std::fs::copy(
            testdata.join("echo/v1/echo.proto"),
            shadow.join("echo/v1/echo.proto"),
        )
        .unwrap();
        let input = shadow.join("echo/v1/echo.proto");
        let includes = [testdata.as_path(), shadow.as_path()];
        let error = parse(&[input.as_path()], &includes)
            .unwrap_err()
            .to_string();
        let expected = parse_with_source_info(&[input.as_path()], &includes)
            .unwrap_err()
            .to_string();
        std::fs::remove_dir_all(&shadow).unwrap();
        assert_eq!(error, expected);
        assert!(error.contains("shadow"), "{error}");
    }

    #[test]
    fn runs_have_about_the_same_size() {
        assert_eq!(split_by_size(&[1; 10], 2), [5, 5]);
        assert_eq!(split_by_size(&[8, 1, 1, 1, 1, 1, 1, 1, 1], 2), [1, 8]);
        assert_eq!(split_by_size(&[1, 1, 1, 1, 1, 1, 1, 1, 8], 2), [8, 1]);
        assert_eq!(split_by_size(&[0; 4], 3), [1, 1, 2]);
        assert_eq!(split_by_size(&[5, 5, 5], 2), [2, 1]);
        assert_eq!(split_by_size(&[1, 1], 4), [1, 1]);
    }

    #[test]
    fn the_first_error_in_input_order_wins() {
        let testdata = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata");
        let paths = [
            testdata.join("echo/v1/echo.proto"),
            testdata.join("broken/unknown_type.proto"),
            testdata.join("broken/syntax_error.proto"),
        ];
        let paths: Vec<&Path> = paths.iter().map(|p| p.as_path()).collect();
        let error = parse_in_parallel(&paths, &[testdata.as_path()], &[2, 1])
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("broken/unknown_type.proto:11:3"),
            "{error}"
        );
    }
}
