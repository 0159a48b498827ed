//! REST gateway code: per service, a `XXX_HTTP_RULES` constant (its `google.api.http`
//! bindings as `rzero::gateway::HttpRule`s), and per package, the `FILE_DESCRIPTOR_SET` the
//! rules refer to.
//!
//! The rules are read and checked (every problem at once, each `file:line:
//! pkg.Service.Method: …`) by [`crate::http`] from a `prost-reflect` pool built from the
//! front end's [`Input::annotated`] bytes, the only descriptors that still carry the
//! extension. They are checked even under `no_gateway`: a bad rule is a bad `.proto`.
//!
//! The descriptor set holds what the gateway's JSON mapping needs: the package's files and,
//! transitively, the files that define the types they use. Imports a file does not use for
//! a type are dropped from it (the options that needed them, such as `google.api.http`,
//! are not kept either), so a typical set is the service's own file plus the few
//! well-known types it names, not `google/protobuf/descriptor.proto` (tens of kilobytes)
//! dragged in by `google/api/annotations.proto`.

use std::collections::{BTreeMap, HashMap, HashSet};

use proc_macro2::{Literal, TokenStream};
use prost_reflect::DescriptorPool;
use prost_types::{DescriptorProto, FileDescriptorProto};
use quote::quote;

use crate::error::{Error, Result};
use crate::front::Input;
use crate::http::{self, HttpBinding};
use crate::model::Service;

/// The checked `google.api.http` rules of an input.
#[derive(Debug, Default)]
pub(crate) struct Routes {
    /// Bindings by fully qualified method name (`pkg.Service.Method`), primary first.
    pub(crate) bindings: BTreeMap<String, Vec<HttpBinding>>,
    /// The pool the rules were read from (`None` when no file can have rules); the OpenAPI
    /// documents are made from it.
    pub(crate) pool: Option<DescriptorPool>,
}

impl Routes {
    /// Reads and checks the rules of every service in `input`.
    pub(crate) fn read(input: &Input) -> Result<Self> {
        if input.annotated.is_empty() {
            return Ok(Self::default());
        }
        let mut set = Vec::new();
        for file in &input.files {
            match input.annotated.get(file.name()) {
                Some(bytes) => prost::encoding::bytes::encode(1, bytes, &mut set),
                None => prost::encoding::message::encode(1, file, &mut set),
            }
        }
        let pool = DescriptorPool::decode(set.as_slice()).map_err(|e| {
            Error::Internal(format!("the descriptors do not form a valid pool: {e}"))
        })?;
        let names: Vec<String> = input.annotated.keys().cloned().collect();
        let bindings = http::bindings(&pool, &names).map_err(|problems| Error::Proto {
            location: String::new(),
            message: problems.join("\n"),
        })?;
        Ok(Self {
            bindings,
            pool: Some(pool),
        })
    }

    /// The bindings of `service`'s methods (by proto method name), in method order.
    pub(crate) fn of_service(&self, service: &str) -> Vec<(String, HttpBinding)> {
        let prefix = format!("{service}.");
        self.bindings
            .range(prefix.clone()..)
            .take_while(|(method, _)| method.starts_with(&prefix))
            .filter(|(method, _)| !method[prefix.len()..].contains('.'))
            .flat_map(|(method, list)| {
                let name = method[prefix.len()..].to_owned();
                list.iter().map(move |b| (name.clone(), b.clone()))
            })
            .collect()
    }

    /// Packages with at least one bound service.
    fn packages(&self, files: &[FileDescriptorProto]) -> Vec<String> {
        let mut packages: Vec<String> = files
            .iter()
            .filter(|file| {
                file.service.iter().any(|service| {
                    let full = qualified(file.package(), service.name());
                    !self.of_service(&full).is_empty()
                })
            })
            .map(|file| file.package().to_owned())
            .collect();
        packages.sort();
        packages.dedup();
        packages
    }

    /// The encoded descriptor set of each package with bound services.
    pub(crate) fn descriptor_sets(
        &self,
        files: &[FileDescriptorProto],
    ) -> HashMap<String, Vec<u8>> {
        self.packages(files)
            .into_iter()
            .map(|package| {
                let set = descriptor_set(files, &package);
                (package, set)
            })
            .collect()
    }
}

fn qualified(package: &str, name: &str) -> String {
    if package.is_empty() {
        name.to_owned()
    } else {
        format!("{package}.{name}")
    }
}

/// `pub const GREETER_HTTP_RULES: ServiceRules = …` for a service with bindings.
pub(crate) fn service_rules(service: &Service, bindings: &[(String, HttpBinding)]) -> TokenStream {
    let name = &service.http_rules;
    let rules = bindings.iter().map(|(method, binding)| {
        let path = format!("/{}/{method}", service.full_name);
        let http_method = binding.method.as_str();
        let template = binding.template.as_str();
        let mut rule =
            quote!(::rzero::codegen::gateway::HttpRule::new(#path, #http_method, #template));
        if !binding.body.is_empty() {
            let body = binding.body.as_str();
            rule = quote!(#rule.body(#body));
        }
        if !binding.response_body.is_empty() {
            let response_body = binding.response_body.as_str();
            rule = quote!(#rule.response_body(#response_body));
        }
        rule
    });
    let doc = format!(
        " REST/JSON routes of `{}`, from its `google.api.http` annotations: serve them with \
         `rzero::gateway::Gateway::builder().service(&{name})`.",
        service.full_name
    );
    quote! {
        #[doc = #doc]
        pub const #name: ::rzero::codegen::gateway::ServiceRules = ::rzero::codegen::gateway::ServiceRules {
            descriptor_set: FILE_DESCRIPTOR_SET,
            rules: &[#(#rules),*],
        };
    }
}

/// The package-level `FILE_DESCRIPTOR_SET` item, formatted.
pub(crate) fn descriptor_set_item(set: &[u8]) -> String {
    let bytes = Literal::byte_string(set);
    let tokens = quote! {
        /// The descriptors of this package's files and of the types they use (an encoded
        /// `google.protobuf.FileDescriptorSet`): what the REST gateway needs to map its
        /// messages to and from JSON.
        pub const FILE_DESCRIPTOR_SET: &[u8] = #bytes;
    };
    match syn::parse2::<syn::File>(tokens) {
        Ok(file) => prettyplease::unparse(&file),
        // A byte string literal always parses; keep the unformatted text if not.
        Err(_) => String::new(),
    }
}

/// The package's files and, transitively, those defining the types they use, without
/// source info, in input order.
fn descriptor_set(files: &[FileDescriptorProto], package: &str) -> Vec<u8> {
    let by_name: HashMap<&str, &FileDescriptorProto> =
        files.iter().map(|file| (file.name(), file)).collect();
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
    let mut pruned: HashMap<&str, FileDescriptorProto> = HashMap::new();
    let mut stack: Vec<&str> = files
        .iter()
        .filter(|file| file.package() == package)
        .map(|file| file.name())
        .collect();
    while let Some(name) = stack.pop() {
        if pruned.contains_key(name) {
            continue;
        }
        let Some(file) = by_name.get(name) else {
            continue;
        };
        let file = prune(file, &defined_in, &by_name);
        stack.extend(
            file.dependency
                .iter()
                .filter_map(|d| by_name.get_key_value(d.as_str()).map(|(name, _)| *name)),
        );
        pruned.insert(name, file);
    }
    let mut set = Vec::new();
    for file in files {
        if let Some(file) = pruned.get(file.name()) {
            prost::encoding::message::encode(1, file, &mut set);
        }
    }
    set
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
/// mapping reads) and the imports none of its types need.
///
/// A file with public or weak imports keeps them all: their indexes would shift.
fn prune(
    file: &FileDescriptorProto,
    defined_in: &HashMap<String, &str>,
    by_name: &HashMap<&str, &FileDescriptorProto>,
) -> FileDescriptorProto {
    let mut file = file.clone();
    file.source_code_info = None;
    file.options = None;
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
    use prost::Message;

    fn input(names: &[&str]) -> Input {
        let testdata = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata");
        let paths: Vec<_> = names.iter().map(|n| testdata.join(n)).collect();
        crate::front::from_files(&paths, &[&testdata]).unwrap()
    }

    #[test]
    fn rules_are_read_through_the_annotated_descriptors() {
        let input = input(&["greeter/v1/greeter.proto"]);
        let routes = Routes::read(&input).unwrap();
        let bindings = routes.of_service("greeter.v1.Greeter");
        let rendered: Vec<String> = bindings
            .iter()
            .map(|(m, b)| format!("{m} {} {} body={}", b.method, b.template, b.body))
            .collect();
        assert_eq!(
            rendered,
            [
                "SayHello GET /v1/greeter/{name} body=",
                "SayHello POST /v1/greeter body=*"
            ]
        );
    }

    #[test]
    fn the_descriptor_set_keeps_only_the_files_types_need() {
        let input = input(&["greeter/v1/greeter.proto"]);
        let routes = Routes::read(&input).unwrap();
        let sets = routes.descriptor_sets(&input.files);
        let set = prost_types::FileDescriptorSet::decode(sets["greeter.v1"].as_slice()).unwrap();
        let names: Vec<&str> = set.file.iter().map(|f| f.name()).collect();
        assert_eq!(names, ["greeter/v1/greeter.proto"]);
        assert!(set.file[0].dependency.is_empty());
        assert!(set.file[0].source_code_info.is_none());
        // And it is a pool the runtime can load.
        DescriptorPool::decode(sets["greeter.v1"].as_slice()).unwrap();
    }
}
