//! The package-level `FILE_DESCRIPTOR_SET`: an encoded `google.protobuf.FileDescriptorSet`
//! the runtime serves over gRPC server reflection (`rzero::reflection`) and the REST
//! gateway maps JSON with.
//!
//! # Which packages get one
//! Every generated package with at least one service whose server is generated or whose
//! gateway rules are (the rules name the set). A client-only package (`no_server`, no rules)
//! gets none: reflection is served by servers, and such a set would only weigh on the
//! crate (the etcd API subset `rzero` ships is one). `no_gateway` turns off the rules only.
//!
//! # What it holds
//! The package's files and, transitively, the files that define the types they use, in
//! input order, without source info or file options (`java_package` and the like, and
//! custom options such as `google.api.http`: nothing the JSON mapping or a reflection
//! client needs to call a method). Imports a file does not use for a type are dropped from
//! it, so a typical set is the service's own file plus the few well-known types it names,
//! not `google/protobuf/descriptor.proto` (tens of kilobytes) dragged in by
//! `google/api/annotations.proto`.
//!
//! A set is therefore self-contained: every import its files keep is in it, which is what
//! a reflection client needs (it asks for a symbol's file, then for each import by name).
//! Pruning is a function of the file and the types the input defines, so two packages'
//! sets that share a file (a well-known type, a common package) hold byte-identical copies
//! of it, which the runtime merges by name.

use std::collections::{BTreeSet, HashMap, HashSet};

use proc_macro2::Literal;
use prost_types::{DescriptorProto, FileDescriptorProto};

/// The packages of `files` that get a descriptor set: those with a service for which
/// `described(full_service_name)` holds.
pub(crate) fn packages(
    files: &[FileDescriptorProto],
    described: impl Fn(&str) -> bool,
) -> BTreeSet<String> {
    files
        .iter()
        .filter(|file| {
            file.service
                .iter()
                .any(|service| described(&qualified(file.package(), service.name())))
        })
        .map(|file| file.package().to_owned())
        .collect()
}

/// The encoded descriptor set of each of `packages`.
///
/// Each file is pruned and encoded once, however many sets hold it: large inputs (Google's
/// APIs: 150 packages sharing their common files) would otherwise redo that work per set.
pub(crate) fn descriptor_sets(
    files: &[FileDescriptorProto],
    packages: &BTreeSet<String>,
) -> HashMap<String, Vec<u8>> {
    if packages.is_empty() {
        return HashMap::new();
    }
    let by_name: HashMap<&str, &FileDescriptorProto> =
        files.iter().map(|file| (file.name(), file)).collect();
    let order: HashMap<&str, usize> = files
        .iter()
        .enumerate()
        .map(|(i, file)| (file.name(), i))
        .collect();
    let mut defined_in: HashMap<String, &str> = HashMap::new();
    for file in files {
        let prefix = if file.package().is_empty() {
            String::new()
        } else {
            format!(".{}", file.package())
        };
        for message in &file.message_type {
            define_message(message, &prefix, file.name(), &mut defined_in);
        }
        for enumeration in &file.enum_type {
            defined_in.insert(format!("{prefix}.{}", enumeration.name()), file.name());
        }
    }
    // Per file: its encoded `FileDescriptorSet.file` record and the files it still imports.
    let mut encoded: HashMap<&str, (Vec<u8>, Vec<&str>)> = HashMap::new();
    let mut sets = HashMap::new();
    for package in packages {
        let mut members: BTreeSet<usize> = BTreeSet::new();
        let mut stack: Vec<&str> = files
            .iter()
            .filter(|file| file.package() == package)
            .map(|file| file.name())
            .collect();
        while let Some(name) = stack.pop() {
            let Some(&index) = order.get(name) else {
                continue;
            };
            if !members.insert(index) {
                continue;
            }
            let (_, imports) = encoded.entry(name).or_insert_with(|| {
                let file = prune(by_name[name], &defined_in, &by_name);
                let imports = file
                    .dependency
                    .iter()
                    .filter_map(|d| by_name.get_key_value(d.as_str()).map(|(name, _)| *name))
                    .collect();
                let mut record = Vec::new();
                prost::encoding::message::encode(1, &file, &mut record);
                (record, imports)
            });
            stack.extend(imports.iter().copied());
        }
        // In input order, as a single-set build would write them.
        let mut set = Vec::new();
        for index in members {
            set.extend_from_slice(&encoded[files[index].name()].0);
        }
        sets.insert(package.clone(), set);
    }
    sets
}

/// `pkg.Name`, or `Name` in the unnamed package.
pub(crate) fn qualified(package: &str, name: &str) -> String {
    if package.is_empty() {
        name.to_owned()
    } else {
        format!("{package}.{name}")
    }
}

/// The package-level `FILE_DESCRIPTOR_SET` item, formatted as prettyplease would (the
/// literal is one long line either way), without parsing a literal of megabytes back.
pub(crate) fn descriptor_set_item(set: &[u8]) -> String {
    let bytes = Literal::byte_string(set).to_string();
    format!(
        "/// The descriptors of this package's files and of the types they use (an encoded\n\
         /// `google.protobuf.FileDescriptorSet`): serve them over gRPC server reflection with\n\
         /// `rzero::Server::builder().reflection(&[FILE_DESCRIPTOR_SET])`; the REST gateway\n\
         /// maps this package's messages to and from JSON with them.\n\
         pub const FILE_DESCRIPTOR_SET: &[u8] = {bytes};\n"
    )
}

fn define_message<'a>(
    message: &DescriptorProto,
    scope: &str,
    file: &'a str,
    defined_in: &mut HashMap<String, &'a str>,
) {
    let name = format!("{scope}.{}", message.name());
    for nested in &message.nested_type {
        define_message(nested, &name, file, defined_in);
    }
    for enumeration in &message.enum_type {
        defined_in.insert(format!("{name}.{}", enumeration.name()), file);
    }
    defined_in.insert(name, file);
}

/// `file` without source info, file options (`java_package` and the like: nothing the JSON
/// mapping or a reflection client reads) and the imports none of its types need.
///
/// A file with public or weak imports keeps them all: their indexes would shift.
fn prune(
    file: &FileDescriptorProto,
    defined_in: &HashMap<String, &str>,
    by_name: &HashMap<&str, &FileDescriptorProto>,
) -> FileDescriptorProto {
    // Field by field, so the source info (often most of a file) is never copied; a field
    // added to `FileDescriptorProto` fails to compile here until it is decided on.
    let FileDescriptorProto {
        name,
        package,
        dependency,
        public_dependency,
        weak_dependency,
        message_type,
        enum_type,
        service,
        extension,
        options: _,
        source_code_info: _,
        syntax,
    } = file;
    let mut file = FileDescriptorProto {
        name: name.clone(),
        package: package.clone(),
        dependency: dependency.clone(),
        public_dependency: public_dependency.clone(),
        weak_dependency: weak_dependency.clone(),
        message_type: message_type.clone(),
        enum_type: enum_type.clone(),
        service: service.clone(),
        extension: extension.clone(),
        options: None,
        source_code_info: None,
        syntax: syntax.clone(),
    };
    if !file.public_dependency.is_empty() || !file.weak_dependency.is_empty() {
        return file;
    }
    let mut used: HashSet<&str> = HashSet::new();
    let mut note = |type_name: &str| {
        if let Some(defining) = defined_in.get(type_name) {
            used.insert(defining);
        }
    };
    let mut messages: Vec<&DescriptorProto> = file.message_type.iter().collect();
    while let Some(message) = messages.pop() {
        for field in message.field.iter().chain(&message.extension) {
            note(field.type_name());
            note(field.extendee());
        }
        messages.extend(&message.nested_type);
    }
    for field in &file.extension {
        note(field.type_name());
        note(field.extendee());
    }
    for service in &file.service {
        for method in &service.method {
            note(method.input_type());
            note(method.output_type());
        }
    }
    // A type may come through a dependency's public imports.
    let provides = |dependency: &str, target: &str| -> bool {
        let mut stack = vec![dependency];
        let mut seen = HashSet::new();
        while let Some(name) = stack.pop() {
            if name == target {
                return true;
            }
            if !seen.insert(name) {
                continue;
            }
            if let Some(file) = by_name.get(name) {
                stack.extend(
                    file.public_dependency
                        .iter()
                        .filter_map(|&i| file.dependency.get(i as usize))
                        .map(String::as_str),
                );
            }
        }
        false
    };
    file.dependency
        .retain(|dependency| used.iter().any(|target| provides(dependency, target)));
    file
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::front::Input;
    use prost::Message;

    fn input(names: &[&str]) -> Input {
        let testdata = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata");
        let paths: Vec<_> = names.iter().map(|n| testdata.join(n)).collect();
        crate::front::from_files(&paths, &[&testdata]).unwrap()
    }

    #[test]
    fn the_descriptor_set_keeps_only_the_files_types_need() {
        let input = input(&["greeter/v1/greeter.proto"]);
        let packages = packages(&input.files, |_| true);
        let sets = descriptor_sets(&input.files, &packages);
        let set = prost_types::FileDescriptorSet::decode(sets["greeter.v1"].as_slice()).unwrap();
        let names: Vec<&str> = set.file.iter().map(|f| f.name()).collect();
        assert_eq!(names, ["greeter/v1/greeter.proto"]);
        assert!(set.file[0].dependency.is_empty());
        assert!(set.file[0].source_code_info.is_none());
        // And it is a pool the runtime can load.
        prost_reflect::DescriptorPool::decode(sets["greeter.v1"].as_slice()).unwrap();
    }
}
