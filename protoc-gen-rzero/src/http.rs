//! `google.api.http` rules: read from the descriptors (which keep extension options, unlike
//! `prost-types`), validated, and handed to the emitters.
//!
//! Every bad rule in the input is reported, not just the first, each as
//! `file:line: pkg.Service.Method: what is wrong`: GET with a body, field paths that do not
//! exist or cross a non-message, path variables bound to repeated, map or (non scalar-like)
//! message fields, path variables or a body other than `*` on methods that stream their
//! requests (each request message is one line of the body), the same HTTP method and
//! template twice in one service (as grpc-gateway; services are served separately, and a
//! gateway serving several reports their collisions when it is built), `additional_bindings`
//! inside `additional_bindings`, and template syntax
//! errors (with the column). The grammar and the conflict check are the runtime's own (see
//! [`crate::gateway`]).

use std::collections::BTreeMap;

use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, MethodDescriptor,
    Value,
};

use crate::gateway::router::{RouteError, Router};
use crate::gateway::template::PathTemplate;

/// One HTTP binding of an RPC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HttpBinding {
    /// `GET`, `POST`, ..., a custom verb, or `*` (any method).
    pub(crate) method: String,
    pub(crate) template: String,
    /// `""` (no body), `"*"` (the whole request) or a field path.
    pub(crate) body: String,
    /// `""` (the whole response) or a top-level response field.
    pub(crate) response_body: String,
}

/// Every method's bindings (primary first, then its `additional_bindings`), by fully
/// qualified method name (`pkg.Service.Method`), for the services of `files`; or every
/// problem found, one line each.
pub(crate) fn bindings(
    pool: &DescriptorPool,
    files: &[String],
) -> Result<BTreeMap<String, Vec<HttpBinding>>, Vec<String>> {
    let Some(extension) = pool.get_extension_by_name("google.api.http") else {
        // No file imports google/api/annotations.proto: there can be no rules.
        return Ok(BTreeMap::new());
    };
    let mut found = BTreeMap::new();
    let mut errors = Vec::new();
    for file in pool
        .files()
        .filter(|file| files.iter().any(|f| f == file.name()))
    {
        for service in file.services() {
            // Duplicates are looked for within a service, as grpc-gateway does: services
            // are served separately (Google's APIs bind the same paths on different hosts),
            // and a gateway serving several reports their collisions when it is built.
            let mut routes: Router<String> = Router::new();
            // (HTTP method, canonical template, RPC) of every binding in `routes`, to name
            // the RPC a conflicting binding collides with.
            let mut registered: Vec<(String, String, String)> = Vec::new();
            for method in service.methods() {
                let options = method.options();
                if !options.has_extension(&extension) {
                    continue;
                }
                let Value::Message(rule) = options.get_extension(&extension).into_owned() else {
                    continue;
                };
                let mut problems = Vec::new();
                let mut list = Vec::new();
                collect(&method, &rule, true, &mut list, &mut problems);
                // Conflicts only among bindings that are otherwise fine.
                if problems.is_empty() {
                    for binding in &list {
                        let inserted = routes.insert(
                            &binding.method,
                            &binding.template,
                            method.full_name().to_owned(),
                        );
                        if let Err(RouteError::Conflict { existing, .. }) = inserted {
                            let other = registered
                                .iter()
                                .find(|(m, t, _)| *m == binding.method && *t == existing)
                                .map_or(existing.as_str(), |(_, _, rpc)| rpc.as_str());
                            problems.push(format!(
                                "{} {} is bound twice (also by {other})",
                                binding.method, binding.template
                            ));
                        } else {
                            // The router reports conflicts with the canonical template.
                            let canonical = PathTemplate::parse(&binding.template)
                                .map_or_else(|_| binding.template.clone(), |t| t.to_string());
                            registered.push((
                                binding.method.clone(),
                                canonical,
                                method.full_name().to_owned(),
                            ));
                        }
                    }
                }
                if problems.is_empty() {
                    found.insert(method.full_name().to_owned(), list);
                } else {
                    let at = location(&method);
                    errors.extend(
                        problems
                            .into_iter()
                            .map(|problem| format!("{at}: {}: {problem}", method.full_name())),
                    );
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(found)
    } else {
        Err(errors)
    }
}

/// `file:line` of a method's definition (just `file` without source info).
fn location(method: &MethodDescriptor) -> String {
    let file = method.parent_file();
    let line = file
        .file_descriptor_proto()
        .source_code_info
        .as_ref()
        .and_then(|info| info.location.iter().find(|loc| loc.path == method.path()))
        .and_then(|loc| loc.span.first())
        .map(|line| line + 1);
    match line {
        Some(line) => format!("{}:{line}", file.name()),
        None => file.name().to_owned(),
    }
}

/// Adds `rule` (and, when `primary`, its additional bindings) to `list`, or problems.
fn collect(
    method: &MethodDescriptor,
    rule: &DynamicMessage,
    primary: bool,
    list: &mut Vec<HttpBinding>,
    problems: &mut Vec<String>,
) {
    let text = |name: &str| -> String {
        rule.get_field_by_name(name)
            .and_then(|value| value.as_str().map(str::to_owned))
            .unwrap_or_default()
    };
    let additional: Vec<DynamicMessage> = rule
        .get_field_by_name("additional_bindings")
        .and_then(|value| {
            value.as_list().map(|list| {
                list.iter()
                    .filter_map(|v| v.as_message().cloned())
                    .collect()
            })
        })
        .unwrap_or_default();
    if !primary && !additional.is_empty() {
        problems.push("additional_bindings inside additional_bindings".to_owned());
    }
    let mut pattern = None;
    for verb in ["get", "put", "post", "delete", "patch"] {
        if rule.has_field_by_name(verb) {
            pattern = Some((verb.to_uppercase(), text(verb)));
        }
    }
    if let Some(custom) = rule
        .get_field_by_name("custom")
        .filter(|_| rule.has_field_by_name("custom"))
        .and_then(|value| value.as_message().cloned())
    {
        let get = |name: &str| {
            custom
                .get_field_by_name(name)
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        };
        pattern = Some((get("kind"), get("path")));
    }
    match pattern {
        None if primary && additional.is_empty() => {
            problems.push("the rule has no HTTP method and path".to_owned());
        }
        None => {}
        Some((http_method, template)) => {
            let binding = HttpBinding {
                method: http_method,
                template,
                body: text("body"),
                response_body: text("response_body"),
            };
            check(method, &binding, problems);
            list.push(binding);
        }
    }
    if primary {
        for rule in &additional {
            collect(method, rule, false, list, problems);
        }
    }
}

/// One binding's checks.
fn check(method: &MethodDescriptor, binding: &HttpBinding, problems: &mut Vec<String>) {
    let input = method.input();
    let output = method.output();
    if binding.method.is_empty() {
        problems.push("a custom rule needs a kind (an HTTP method, or `*`)".to_owned());
    }
    let template = match PathTemplate::parse(&binding.template) {
        Ok(template) => template,
        Err(error) => {
            problems.push(error.to_string());
            return;
        }
    };
    if binding.method == "GET" && !binding.body.is_empty() {
        problems.push(format!(
            "GET {} has a body (`body: \"{}\"`); GET requests carry none",
            binding.template, binding.body
        ));
    }
    if !binding.body.is_empty()
        && binding.body != "*"
        && let Err(problem) = resolve(&input, &binding.body)
    {
        problems.push(format!("body `{}`: {problem}", binding.body));
    }
    if !binding.response_body.is_empty() {
        match output.get_field_by_name(&binding.response_body) {
            Some(_) => {}
            None => problems.push(format!(
                "response_body `{}`: no such field in {}",
                binding.response_body,
                output.full_name()
            )),
        }
    }
    let variables = template.variables();
    if method.is_client_streaming() && !variables.is_empty() {
        problems.push(format!(
            "{} binds path variables, but the method streams its requests",
            binding.template
        ));
    }
    if method.is_client_streaming() && binding.body != "*" {
        problems.push(format!(
            "{} {} has `body: \"{}\"`, but the method streams its requests: the body must be \
             `*` (one JSON request message per line)",
            binding.method, binding.template, binding.body
        ));
    }
    for variable in variables {
        let path = variable.field_path();
        match resolve(&input, path) {
            Err(problem) => problems.push(format!("path variable `{path}`: {problem}")),
            Ok(field) if field.is_list() || field.is_map() => problems.push(format!(
                "path variable `{path}` is a {} field; path variables bind single values",
                if field.is_map() { "map" } else { "repeated" }
            )),
            Ok(field) => {
                if let Kind::Message(message) = field.kind()
                    && !scalar_like(&message)
                {
                    problems.push(format!(
                        "path variable `{path}` is a message ({}); only scalars, enums and \
                         scalar-like well-known types can come from the path",
                        message.full_name()
                    ));
                }
            }
        }
    }
}

/// The field a dotted path names in `message`.
pub(crate) fn resolve(message: &MessageDescriptor, path: &str) -> Result<FieldDescriptor, String> {
    let mut current = message.clone();
    let mut parts = path.split('.').peekable();
    loop {
        let part = parts.next().unwrap_or_default();
        let field = current
            .get_field_by_name(part)
            .ok_or_else(|| format!("no field `{part}` in {}", current.full_name()))?;
        if parts.peek().is_none() {
            return Ok(field);
        }
        match field.kind() {
            Kind::Message(next) if !field.is_list() && !field.is_map() => current = next,
            _ => {
                return Err(format!(
                    "`{part}` in {} is not a (singular) message, so `{path}` cannot go through it",
                    current.full_name()
                ));
            }
        }
    }
}

/// Well-known types that JSON and query strings write as one scalar (the runtime's list).
fn scalar_like(message: &MessageDescriptor) -> bool {
    crate::gateway::template::scalar_like_message(message.full_name())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pool from one proto text (plus google/api from the generator's embedded files).
    fn pool(source: &str) -> DescriptorPool {
        let dir = std::env::temp_dir().join(format!(
            "rzero-http-{}-{}",
            std::process::id(),
            source.len()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("t.proto"), source).unwrap();
        let embedded = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("proto");
        let mut compiler = protox::Compiler::new([dir.as_path(), embedded.as_path()]).unwrap();
        compiler.include_source_info(true);
        compiler.open_file("t.proto").unwrap();
        let pool = compiler.descriptor_pool();
        std::fs::remove_dir_all(&dir).unwrap();
        pool
    }

    const HEADER: &str = r#"
syntax = "proto3";
package t.v1;
import "google/api/annotations.proto";
import "google/protobuf/timestamp.proto";
message Inner { string id = 1; repeated string tags = 2; }
message Req {
  string name = 1;
  Inner inner = 2;
  repeated string names = 3;
  map<string, string> labels = 4;
  google.protobuf.Timestamp at = 5;
  int64 count = 6;
}
message Resp { string text = 1; }
"#;

    fn run(service: &str) -> Result<BTreeMap<String, Vec<HttpBinding>>, Vec<String>> {
        bindings(
            &pool(&format!("{HEADER}{service}")),
            &["t.proto".to_owned()],
        )
    }

    #[test]
    fn good_rules_are_read_with_their_additional_bindings() {
        let found = run(r#"
service S {
  rpc Get(Req) returns (Resp) {
    option (google.api.http) = {
      get: "/v1/{name=things/*}"
      additional_bindings { post: "/v1/things:get" body: "*" }
      additional_bindings { custom: { kind: "HEAD" path: "/v1/{inner.id}/{at}/{count}" } }
    };
  }
  rpc Put(Req) returns (Resp) {
    option (google.api.http) = { put: "/v1/{name}" body: "inner" response_body: "text" };
  }
  rpc Plain(Req) returns (Resp);
  rpc Collect(stream Req) returns (Resp) { option (google.api.http) = { post: "/v1/c" body: "*" }; }
  rpc Chat(stream Req) returns (stream Resp) {
    option (google.api.http) = { post: "/v1/chat" body: "*" response_body: "text" };
  }
}
"#)
        .unwrap();
        assert_eq!(found.len(), 4);
        assert_eq!(found["t.v1.S.Chat"][0].body, "*");
        let get = &found["t.v1.S.Get"];
        assert_eq!(
            get.iter()
                .map(|b| (b.method.as_str(), b.template.as_str(), b.body.as_str()))
                .collect::<Vec<_>>(),
            [
                ("GET", "/v1/{name=things/*}", ""),
                ("POST", "/v1/things:get", "*"),
                ("HEAD", "/v1/{inner.id}/{at}/{count}", ""),
            ]
        );
        assert_eq!(found["t.v1.S.Put"][0].response_body, "text");
    }

    #[test]
    fn every_bad_rule_is_reported_with_method_and_line() {
        let errors = run(r#"
service S {
  rpc A(Req) returns (Resp) { option (google.api.http) = { get: "/v1/a" }; }
  rpc B(Req) returns (Resp) { option (google.api.http) = { post: "/v1/b" body: "nope" }; }
  rpc C(Req) returns (Resp) { option (google.api.http) = { get: "/v1/{names}" }; }
  rpc D(Req) returns (Resp) { option (google.api.http) = { get: "/v1/{labels}" }; }
  rpc E(Req) returns (Resp) { option (google.api.http) = { get: "/v1/{inner}" }; }
  rpc F(stream Req) returns (Resp) { option (google.api.http) = { post: "/v1/{name}" body: "*" }; }
  rpc G(Req) returns (Resp) { option (google.api.http) = { get: "/v1/a" }; }
  rpc H(Req) returns (Resp) {
    option (google.api.http) = {
      get: "/v1/h"
      additional_bindings { get: "/v1/h2" additional_bindings { get: "/v1/h3" } }
    };
  }
  rpc I(Req) returns (Resp) { option (google.api.http) = { get: "/v1/{name" }; }
  rpc J(Req) returns (Resp) { option (google.api.http) = { get: "/v1/{name.x}" }; }
  rpc K(Req) returns (Resp) { option (google.api.http) = { get: "/v1/k" response_body: "nope" }; }
  rpc L(Req) returns (Resp) { option (google.api.http) = { get: "/v1/l" body: "*" }; }
  rpc M(stream Req) returns (stream Resp) { option (google.api.http) = { post: "/v1/m" }; }
  rpc N(stream Req) returns (Resp) { option (google.api.http) = { post: "/v1/n" body: "inner" }; }
}
"#)
        .unwrap_err();
        let expect = [
            (
                "t.proto:19: t.v1.S.B:",
                "body `nope`: no field `nope` in t.v1.Req",
            ),
            ("t.proto:20: t.v1.S.C:", "`names` is a repeated field"),
            ("t.proto:21: t.v1.S.D:", "`labels` is a map field"),
            ("t.proto:22: t.v1.S.E:", "`inner` is a message (t.v1.Inner)"),
            ("t.proto:23: t.v1.S.F:", "the method streams its requests"),
            (
                "t.proto:24: t.v1.S.G:",
                "GET /v1/a is bound twice (also by t.v1.S.A)",
            ),
            (
                "t.proto:25: t.v1.S.H:",
                "additional_bindings inside additional_bindings",
            ),
            ("t.proto:31: t.v1.S.I:", "column"),
            (
                "t.proto:32: t.v1.S.J:",
                "`name` in t.v1.Req is not a (singular) message",
            ),
            (
                "t.proto:33: t.v1.S.K:",
                "response_body `nope`: no such field in t.v1.Resp",
            ),
            ("t.proto:34: t.v1.S.L:", "GET /v1/l has a body"),
            (
                "t.proto:35: t.v1.S.M:",
                "POST /v1/m has `body: \"\"`, but the method streams its requests",
            ),
            ("t.proto:36: t.v1.S.N:", "the body must be `*`"),
        ];
        for (prefix, text) in expect {
            assert!(
                errors
                    .iter()
                    .any(|e| e.starts_with(prefix) && e.contains(text)),
                "no `{prefix} ...{text}` in\n{}",
                errors.join("\n")
            );
        }
        assert_eq!(errors.len(), expect.len(), "{}", errors.join("\n"));
    }

    #[test]
    fn the_same_binding_in_two_services_is_fine() {
        // Served separately (as Google's APIs bind the same paths on different hosts); a
        // gateway serving both reports the collision when it is built.
        let found = run(r#"
service S { rpc Get(Req) returns (Resp) { option (google.api.http) = { get: "/v1/{name}" }; } }
service T { rpc Get(Req) returns (Resp) { option (google.api.http) = { get: "/v1/{name}" }; } }
"#)
        .unwrap();
        assert_eq!(found.len(), 2);
    }

    #[test]
    fn files_without_the_annotations_have_no_rules() {
        let pool = pool(
            "syntax = \"proto3\";\npackage p;\nmessage M {}\nservice S { rpc A(M) returns (M); }\n",
        );
        assert_eq!(
            bindings(&pool, &["t.proto".to_owned()]),
            Ok(BTreeMap::new())
        );
    }
}
