//! REST gateway code: per service, a `XXX_HTTP_RULES` constant (its `google.api.http`
//! bindings as `rzero::gateway::HttpRule`s), referring to its package's
//! `FILE_DESCRIPTOR_SET` (see [`super::descriptors`]).
//!
//! The rules are read and checked (every problem at once, each `file:line:
//! pkg.Service.Method: …`) by [`crate::http`] from a `prost-reflect` pool built from the
//! front end's [`Input::annotated`] bytes, the only descriptors that still carry the
//! extension. Under `no_gateway` they are not read at all.

use std::collections::BTreeMap;

use proc_macro2::TokenStream;
use prost_reflect::DescriptorPool;
use prost_types::FileDescriptorProto;
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
    /// Reads and checks the rules of every service in `input`. With `comments`, every file
    /// keeps its source info (OpenAPI descriptions come from it); otherwise only the files
    /// with services do (for the `file:line` of a bad rule): decoding the comments of a
    /// large input costs more than reading its rules.
    pub(crate) fn read(input: &Input, comments: bool) -> Result<Self> {
        if input.annotated.is_empty() {
            return Ok(Self::default());
        }
        let mut set = Vec::new();
        let mut scratch = Vec::new();
        for file in &input.files {
            match input.annotated.get(file.name()) {
                Some(bytes) => prost::encoding::bytes::encode(1, bytes, &mut set),
                None if comments => prost::encoding::message::encode(1, file, &mut set),
                None => {
                    scratch.clear();
                    encode_without_source_info(file, &mut scratch);
                    prost::encoding::bytes::encode(1, &scratch, &mut set);
                }
            }
        }
        let pool = DescriptorPool::decode(set.as_slice()).map_err(|e| {
            Error::Internal(format!("the descriptors do not form a valid pool: {e}"))
        })?;
        let names: Vec<String> = input.annotated.keys().cloned().collect();
        let bindings = http::bindings(&pool, &names).map_err(|problems| Error::Proto {
            location: String::new(),
            message: format!(
                "{}\n(these google.api.http rules cannot be served; fix them, or generate \
                 without REST gateway code: option `no_gateway`)",
                problems.join("\n")
            ),
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

/// `file` encoded as a `FileDescriptorProto` without its `source_code_info` (field 9), and
/// without copying it first.
fn encode_without_source_info(file: &FileDescriptorProto, buf: &mut Vec<u8>) {
    use prost::encoding::{int32, message, string};
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
        options,
        source_code_info: _,
        syntax,
    } = file;
    if let Some(name) = name {
        string::encode(1, name, buf);
    }
    if let Some(package) = package {
        string::encode(2, package, buf);
    }
    string::encode_repeated(3, dependency, buf);
    message::encode_repeated(4, message_type, buf);
    message::encode_repeated(5, enum_type, buf);
    message::encode_repeated(6, service, buf);
    message::encode_repeated(7, extension, buf);
    if let Some(options) = options {
        message::encode(8, options, buf);
    }
    int32::encode_repeated(10, public_dependency, buf);
    int32::encode_repeated(11, weak_dependency, buf);
    if let Some(syntax) = syntax {
        string::encode(12, syntax, buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(names: &[&str]) -> Input {
        let testdata = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata");
        let paths: Vec<_> = names.iter().map(|n| testdata.join(n)).collect();
        crate::front::from_files(&paths, &[&testdata]).unwrap()
    }

    #[test]
    fn rules_are_read_through_the_annotated_descriptors() {
        let input = input(&["greeter/v1/greeter.proto"]);
        let routes = Routes::read(&input, false).unwrap();
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
}
