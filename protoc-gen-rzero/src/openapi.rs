//! OpenAPI 3 documents for the gateway: what `rzero::gateway` serves for the
//! `google.api.http` rules, described so that Swagger UI, Redoc and client generators read it.
//!
//! One document per proto file with at least one HTTP binding (`greeter/v1/greeter.proto` →
//! `greeter/v1/greeter.openapi.json`), or one `openapi.json` for all of them (`openapi=merged`).
//! Output is deterministic: files by name, services and methods in declaration order, paths
//! and schemas sorted, pretty-printed JSON.
//!
//! # Decisions
//! - **OpenAPI 3.0.3**, not 3.1: the generators users feed these documents to (progenitor,
//!   openapi-generator, oapi-codegen, older Swagger UI) handle 3.0 fully and 3.1 partly or
//!   not at all; 3.0 says all the proto3 JSON mapping needs (`nullable` for wrappers,
//!   `format` for 64-bit strings). The cost is `allOf` around described `$ref`s.
//! - `info.title` is the proto file name (the packages, when merged); `info.version` is the
//!   package's version component (`v1`, `v2beta1`), else `version not set`. Tags are the
//!   services (full names when two share a name), described by their comments.
//!   `operationId` is `Service_Method`, `Service_Method2`... for additional bindings, made
//!   unique with `_2`, `_3` if still taken. Summary: the method comment's first paragraph;
//!   description: the rest.
//! - Paths: `{name=shelves/*}` becomes `{name}` with `pattern: ^shelves/[^/]+$`; `**` allows
//!   `/` (and zero segments). Such multi-segment values go in the path with their `/`
//!   unescaped (the gateway splits the path before decoding, so a `%2F` would not route);
//!   single-segment values are percent-encoded as OpenAPI clients do anyway. Nested field
//!   paths keep their dots (`{book.name}`), the verb stays literal (`{name}:cancel`), and
//!   a bare `*`/`**` outside a variable is a parameter `wildcardN` bound to no field.
//!   When two templates give the same OpenAPI path and method (`/v1/{a=x/*}` and
//!   `/v1/{a=y/*}`), the later one's parameters get `_1`, `_2`... (as protoc-gen-openapiv2).
//! - Methods: GET, PUT, POST, DELETE, OPTIONS, HEAD, PATCH, TRACE are operations.
//!   `custom: {kind: "*"}` (any method) is listed once, as POST when it has a body and GET
//!   otherwise (the first free of the usual methods at that path), marked
//!   `x-rzero-method: "*"`. Other custom kinds (`PURGE`) have no OpenAPI operation: they are
//!   written under the path item's `x-rzero-custom-methods`, by kind, which tools ignore.
//! - Parameters mirror the gateway's binding: path variables are required; with a body
//!   other than `*`, every field not under a path variable or the body is a query parameter
//!   named by its dotted JSON-name path (the gateway also takes proto names). Repeated
//!   scalars are `form`/`explode`; maps of scalars are `deepObject` (`labels[key]=v`);
//!   singular messages are flattened (`inner.text`) up to [`MAX_QUERY_DEPTH`] levels and
//!   never into a type already on the way (recursion); repeated messages, message-valued
//!   maps and Struct/Value/ListValue/Any/Empty are left out because the gateway refuses
//!   them. Timestamp, Duration, FieldMask and wrappers are scalars, as in JSON. On a PATCH
//!   whose body is a field and whose request has exactly one FieldMask, that mask's
//!   description says the gateway fills it from the body's keys.
//! - Request bodies are `application/json` (the gateway also takes `*+json`): `body: "*"`
//!   is the request message, inlined without the path-bound fields when there are some; a
//!   field path is that field's schema. Client- and bidi-streaming requests are
//!   `application/x-ndjson`, one message per line.
//! - Responses: `200` is the reply (or its `response_body` field) as `application/json`;
//!   server- and bidi-streaming replies are `application/x-ndjson` lines
//!   `{"result": ...}` / `{"error": Status}` and `text/event-stream` (`data:` events, an
//!   `error` event). `default` is the `google.rpc.Status` error body every failure gets.
//! - Schemas: see the `schema` module.

mod json;
mod schema;

use std::collections::{BTreeMap, HashSet};

use prost_reflect::{DescriptorPool, FileDescriptor, Kind, MessageDescriptor, MethodDescriptor};

use crate::gateway::template::{PathTemplate, Segment};
use crate::http::{HttpBinding, resolve};
use json::Json;
use schema::{STATUS, Schemas, reference};

/// How deep query parameters go into nested messages (`a.b.c.d...`).
const MAX_QUERY_DEPTH: usize = 8;

/// The OpenAPI methods, in the order a path item lists them.
const OPERATIONS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// One OpenAPI 3 document per proto file among `files` that has at least one HTTP binding
/// (name: the proto path with `.proto` replaced by `.openapi.json`, e.g.
/// `greeter/v1/greeter.openapi.json`), or, when `merged`, a single `openapi.json` covering
/// all of them.
pub(crate) fn documents(
    pool: &DescriptorPool,
    files: &[String],
    bindings: &BTreeMap<String, Vec<HttpBinding>>,
    merged: bool,
) -> Vec<(String, String)> {
    let mut bound: Vec<FileDescriptor> = pool
        .files()
        .filter(|file| files.iter().any(|f| f == file.name()))
        .filter(|file| {
            file.services()
                .flat_map(|s| s.methods().collect::<Vec<_>>())
                .any(|m| bindings.get(m.full_name()).is_some_and(|b| !b.is_empty()))
        })
        .collect();
    bound.sort_by(|a, b| a.name().cmp(b.name()));
    if bound.is_empty() {
        return Vec::new();
    }
    if merged {
        return vec![("openapi.json".to_owned(), document(pool, &bound, bindings))];
    }
    bound
        .iter()
        .map(|file| {
            let stem = file.name().strip_suffix(".proto").unwrap_or(file.name());
            (
                format!("{stem}.openapi.json"),
                document(pool, std::slice::from_ref(file), bindings),
            )
        })
        .collect()
}

/// One binding waiting for its place in the document.
struct Pending {
    method: MethodDescriptor,
    binding: HttpBinding,
    template: PathTemplate,
    tag: String,
    operation_id: String,
}

/// An OpenAPI path item under construction.
#[derive(Default)]
struct PathItem {
    /// By OpenAPI method (`get`, ...).
    operations: BTreeMap<&'static str, Json>,
    /// By custom kind (`PURGE`), for `x-rzero-custom-methods`.
    custom: BTreeMap<String, Json>,
}

/// A path parameter: a template variable, or a bare wildcard bound to no field.
struct PathParam {
    /// The name in the OpenAPI path.
    name: String,
    /// The request field path it sets (`None` for a bare wildcard).
    field: Option<String>,
    /// The variable's segments as written (`shelves/*`), when more than one `*`.
    shape: Option<String>,
    /// Regex for the value, when it is not just one segment.
    pattern: Option<String>,
}

fn document(
    pool: &DescriptorPool,
    files: &[FileDescriptor],
    bindings: &BTreeMap<String, Vec<HttpBinding>>,
) -> String {
    let mut schemas = Schemas::new(pool);
    schemas.ensure_status();

    // Services with bindings, and their tag names.
    let services: Vec<_> = files
        .iter()
        .flat_map(|file| file.services().collect::<Vec<_>>())
        .filter(|service| service.methods().any(|m| bindings.contains_key(m.full_name())))
        .collect();
    let tag_of = |service: &prost_reflect::ServiceDescriptor| -> String {
        let shared = services
            .iter()
            .filter(|other| other.name() == service.name())
            .count()
            > 1;
        if shared {
            service.full_name().to_owned()
        } else {
            service.name().to_owned()
        }
    };

    let mut tags = Vec::new();
    let mut pending = Vec::new();
    let mut operation_ids = HashSet::new();
    for service in &services {
        let tag = tag_of(service);
        let mut entry = Json::object([("name", Json::from(tag.as_str()))]);
        if let Some(comment) = schemas.comment(service.parent_file().name(), service.path()) {
            entry.set("description", Json::from(comment));
        }
        tags.push(entry);
        for method in service.methods() {
            let Some(list) = bindings.get(method.full_name()) else {
                continue;
            };
            for (index, binding) in list.iter().enumerate() {
                // Rules were validated when read; a template that does not parse is skipped.
                let Ok(template) = PathTemplate::parse(&binding.template) else {
                    continue;
                };
                let base = format!("{}_{}", tag.replace('.', "_"), method.name());
                let base = if index == 0 {
                    base
                } else {
                    format!("{base}{}", index + 1)
                };
                let operation_id = unique(&base, &mut operation_ids);
                pending.push(Pending {
                    method: method.clone(),
                    binding: binding.clone(),
                    template,
                    tag: tag.clone(),
                    operation_id,
                });
            }
        }
    }

    // Exact methods take their places first; `*` then takes a free one.
    let mut paths: BTreeMap<String, PathItem> = BTreeMap::new();
    let (exact, any): (Vec<&Pending>, Vec<&Pending>) =
        pending.iter().partition(|p| p.binding.method != "*");
    for item in exact.into_iter().chain(any) {
        place(item, &mut paths, &mut schemas);
    }

    let mut info = Json::object([("title", Json::from(title(files)))]);
    if let [file] = files {
        // The comment above `syntax` (field 12 of FileDescriptorProto), else above `package` (2).
        let comment = schemas
            .comment(file.name(), &[12])
            .or_else(|| schemas.comment(file.name(), &[2]));
        if let Some(comment) = comment {
            info.set("description", Json::from(comment));
        }
    }
    info.set("version", Json::from(version(files)));

    let paths = Json::object(paths.into_iter().map(|(path, item)| {
        let mut object = Json::empty();
        for name in OPERATIONS {
            if let Some(operation) = item.operations.get(name) {
                object.set(name, operation.clone());
            }
        }
        if !item.custom.is_empty() {
            object.set("x-rzero-custom-methods", Json::object(item.custom));
        }
        (path, object)
    }));
    Json::object([
        ("openapi", Json::from("3.0.3")),
        ("info", info),
        ("tags", Json::from(tags)),
        ("paths", paths),
        (
            "components",
            Json::object([("schemas", Json::object(schemas.into_components()))]),
        ),
    ])
    .pretty()
}

/// Puts one binding's operation into `paths`, renaming its path parameters if an earlier
/// binding took the same OpenAPI path and method.
fn place(pending: &Pending, paths: &mut BTreeMap<String, PathItem>, schemas: &mut Schemas) {
    const OPENAPI_METHODS: [&str; 8] = [
        "GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE",
    ];
    let kind = pending.binding.method.as_str();
    // Bounded: each try renames every parameter, and the names of earlier bindings are finite.
    for suffix in 0..=paths.len() {
        let (path, params) = openapi_path(&pending.template, suffix);
        let item = paths.get(&path);
        let taken = |slot: &str| item.is_some_and(|item| item.operations.contains_key(slot));
        if let Some(index) = OPENAPI_METHODS.iter().position(|m| *m == kind) {
            let slot = OPERATIONS[index];
            if !taken(slot) {
                let operation = operation(pending, &params, schemas);
                paths.entry(path).or_default().operations.insert(slot, operation);
                return;
            }
        } else if kind == "*" {
            let order = if pending.binding.body.is_empty() {
                ["get", "post", "put", "patch", "delete"]
            } else {
                ["post", "put", "patch", "get", "delete"]
            };
            if let Some(slot) = order.into_iter().find(|slot| !taken(slot)) {
                let operation = operation(pending, &params, schemas)
                    .with("x-rzero-method", Json::from("*"));
                paths.entry(path).or_default().operations.insert(slot, operation);
                return;
            }
        } else if !item.is_some_and(|item| item.custom.contains_key(kind)) {
            let operation = operation(pending, &params, schemas);
            let item = paths.entry(path).or_default();
            item.custom.insert(kind.to_owned(), operation);
            return;
        }
    }
}

/// The OpenAPI path of a template and its path parameters; `suffix > 0` appends `_suffix`
/// to every parameter name.
fn openapi_path(template: &PathTemplate, suffix: usize) -> (String, Vec<PathParam>) {
    let tail = if suffix == 0 {
        String::new()
    } else {
        format!("_{suffix}")
    };
    let segments = template.segments();
    let variables = template.variables();
    let mut path = String::new();
    let mut params = Vec::new();
    let mut wildcards = 0;
    let mut index = 0;
    while index < segments.len() {
        path.push('/');
        if let Some(variable) = variables.iter().find(|v| v.segments().start == index) {
            let captured = &segments[variable.segments()];
            let single = matches!(captured, [Segment::Wildcard]);
            let name = format!("{}{tail}", variable.field_path());
            path.push_str(&format!("{{{name}}}"));
            params.push(PathParam {
                name,
                field: Some(variable.field_path().to_owned()),
                shape: (!single).then(|| {
                    captured
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("/")
                }),
                pattern: (!single).then(|| pattern(captured)),
            });
            index = variable.segments().end.max(index + 1);
            continue;
        }
        match &segments[index] {
            Segment::Literal(text) => path.push_str(text),
            wildcard => {
                // A name no variable uses: bounded by the number of variables.
                let name = loop {
                    wildcards += 1;
                    let name = format!("wildcard{wildcards}");
                    if !variables.iter().any(|v| v.field_path() == name) {
                        break format!("{name}{tail}");
                    }
                };
                path.push_str(&format!("{{{name}}}"));
                let double = matches!(wildcard, Segment::DoubleWildcard);
                params.push(PathParam {
                    name,
                    field: None,
                    shape: Some(wildcard.to_string()),
                    pattern: double.then(|| "^.*$".to_owned()),
                });
            }
        }
        index += 1;
    }
    if path.is_empty() {
        path.push('/');
    }
    if let Some(verb) = template.verb() {
        path.push(':');
        path.push_str(verb);
    }
    (path, params)
}

/// A regex for the value of a variable made of `segments` (`shelves/*` → `^shelves/[^/]+$`);
/// `**` stands for zero or more segments, so `a/**` also matches `a`.
fn pattern(segments: &[Segment]) -> String {
    let mut regex = String::from("^");
    for (i, segment) in segments.iter().enumerate() {
        let after_leading_double = i == 1 && matches!(segments[0], Segment::DoubleWildcard);
        match segment {
            Segment::DoubleWildcard if segments.len() == 1 => regex.push_str(".*"),
            Segment::DoubleWildcard if i == 0 => regex.push_str("(.*/)?"),
            Segment::DoubleWildcard => regex.push_str("(/.*)?"),
            other => {
                if i > 0 && !after_leading_double {
                    regex.push('/');
                }
                match other {
                    Segment::Literal(text) => regex.push_str(&regex_escape(text)),
                    _ => regex.push_str("[^/]+"),
                }
            }
        }
    }
    regex.push('$');
    regex
}

fn regex_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The operation object of one binding.
fn operation(pending: &Pending, path_params: &[PathParam], schemas: &mut Schemas) -> Json {
    let method = &pending.method;
    let binding = &pending.binding;
    let input = method.input();
    let output = method.output();
    let file = method.parent_file();

    let mut operation = Json::object([("tags", Json::from(vec![Json::from(pending.tag.as_str())]))]);
    let comment = schemas
        .comment(file.name(), method.path())
        .unwrap_or_default();
    let (summary, mut description) = match comment.split_once("\n\n") {
        Some((first, rest)) => (first.replace('\n', " "), rest.trim().to_owned()),
        None => (comment.replace('\n', " "), String::new()),
    };
    if binding.method == "*" {
        let note = "Any HTTP method reaches this operation (`custom` kind `*`).";
        description = if description.is_empty() {
            note.to_owned()
        } else {
            format!("{description}\n\n{note}")
        };
    }
    if !summary.is_empty() {
        operation.set("summary", Json::from(summary));
    }
    if !description.is_empty() {
        operation.set("description", Json::from(description));
    }
    operation.set("operationId", Json::from(pending.operation_id.as_str()));

    let mut parameters: Vec<Json> = path_params
        .iter()
        .map(|param| path_parameter(param, &input, schemas))
        .collect();
    if binding.body != "*" {
        let mut bound: Vec<String> = path_params.iter().filter_map(|p| p.field.clone()).collect();
        if !binding.body.is_empty() {
            bound.push(binding.body.clone());
        }
        let patch_mask = patch_mask(binding, &input);
        let mut walk = QueryWalk {
            bound: &bound,
            patch_mask: patch_mask.as_deref(),
            schemas,
            out: &mut parameters,
        };
        walk.message(&input, "", "", &mut vec![input.full_name().to_owned()]);
    }
    if !parameters.is_empty() {
        operation.set("parameters", Json::from(parameters));
    }

    if let Some(body) = request_body(method, binding, path_params, schemas) {
        operation.set("requestBody", body);
    }

    let reply = match output.get_field_by_name(&binding.response_body) {
        Some(field) if !binding.response_body.is_empty() => schemas.field(&field),
        _ => schemas.message(&output),
    };
    let ok = if method.is_server_streaming() {
        let line = Json::object([
            ("type", Json::from("object")),
            ("title", Json::from(format!("Stream result of {}", output.full_name()))),
            (
                "description",
                Json::from(
                    "One line of the stream: `result` holds a message; a call that fails \
                     after the first message ends with an `error` line.",
                ),
            ),
            (
                "properties",
                Json::object([("result", reply), ("error", reference(STATUS))]),
            ),
        ]);
        Json::object([
            (
                "description",
                Json::from(
                    "A stream of replies: newline-delimited JSON, or Server-Sent Events with \
                     `Accept: text/event-stream`.",
                ),
            ),
            (
                "content",
                Json::object([
                    ("application/x-ndjson", Json::object([("schema", line)])),
                    (
                        "text/event-stream",
                        Json::object([(
                            "schema",
                            Json::object([
                                ("type", Json::from("string")),
                                (
                                    "description",
                                    Json::from(format!(
                                        "Server-Sent Events: `data: <{}>` per message; on \
                                         failure an `event: error` whose data is a \
                                         `google.rpc.Status`.",
                                        output.full_name()
                                    )),
                                ),
                            ]),
                        )]),
                    ),
                ]),
            ),
        ])
    } else {
        Json::object([
            ("description", Json::from("OK")),
            (
                "content",
                Json::object([(
                    "application/json",
                    Json::object([("schema", reply)]),
                )]),
            ),
        ])
    };
    let error = Json::object([
        (
            "description",
            Json::from(
                "An error: the gRPC status as JSON, with the HTTP status mapped from its code \
                 (400 for bad parameters or JSON, 404 for no route, 405 for a wrong method, \
                 413 for a body too large, 415 for a body that is not JSON).",
            ),
        ),
        (
            "content",
            Json::object([(
                "application/json",
                Json::object([("schema", reference(STATUS))]),
            )]),
        ),
    ]);
    operation.set(
        "responses",
        Json::object([("200", ok), ("default", error)]),
    );
    let deprecated = method
        .method_descriptor_proto()
        .options
        .as_ref()
        .and_then(|options| options.deprecated)
        .unwrap_or(false);
    if deprecated {
        operation.set("deprecated", Json::from(true));
    }
    operation
}

fn path_parameter(param: &PathParam, input: &MessageDescriptor, schemas: &mut Schemas) -> Json {
    let field = param.field.as_deref().and_then(|path| resolve(input, path).ok());
    let (mut schema, mut description) = match &field {
        Some(field) => (
            schemas.kind(&field.kind()),
            schemas
                .comment(field.parent_file().name(), field.path())
                .unwrap_or_default(),
        ),
        None => (Json::object([("type", Json::from("string"))]), String::new()),
    };
    if let Some(pattern) = &param.pattern
        && schema.get("type") == Some(&Json::from("string"))
    {
        schema.set("pattern", Json::from(pattern.as_str()));
    }
    let note = match (&param.field, &param.shape) {
        (Some(_), Some(shape)) => format!(
            "The value has the form `{shape}`; send its `/` as is (a `%2F` does not match)."
        ),
        (None, Some(shape)) if shape == "**" => {
            "Any segments (`**`), `/`-separated; not bound to a request field.".to_owned()
        }
        (None, _) => "Any one segment (`*`); not bound to a request field.".to_owned(),
        (Some(_), None) => String::new(),
    };
    if !note.is_empty() {
        if !description.is_empty() {
            description.push_str("\n\n");
        }
        description.push_str(&note);
    }
    let mut parameter = Json::object([
        ("name", Json::from(param.name.as_str())),
        ("in", Json::from("path")),
        ("required", Json::from(true)),
    ]);
    if !description.is_empty() {
        parameter.set("description", Json::from(description));
    }
    parameter.with("schema", schema)
}

/// The FieldMask the gateway fills from the body's keys on this binding, if any: a PATCH
/// whose body is a field, with exactly one top-level FieldMask in the request.
fn patch_mask(binding: &HttpBinding, input: &MessageDescriptor) -> Option<String> {
    if binding.method != "PATCH" || binding.body.is_empty() || binding.body == "*" {
        return None;
    }
    let masks: Vec<String> = input
        .fields()
        .filter(|f| {
            !f.is_list()
                && matches!(f.kind(), Kind::Message(m) if m.full_name() == "google.protobuf.FieldMask")
        })
        .map(|f| f.name().to_owned())
        .collect();
    match masks.as_slice() {
        [one] => Some(one.clone()),
        _ => None,
    }
}

/// Collects query parameters: every field the path and the body leave, flattened.
struct QueryWalk<'a> {
    /// Field paths (proto names) bound by the path or the body.
    bound: &'a [String],
    patch_mask: Option<&'a str>,
    schemas: &'a mut Schemas,
    out: &'a mut Vec<Json>,
}

impl QueryWalk<'_> {
    /// `stack`: the message types on the way down, to stop at recursion.
    fn message(
        &mut self,
        message: &MessageDescriptor,
        proto_prefix: &str,
        json_prefix: &str,
        stack: &mut Vec<String>,
    ) {
        for field in message.fields() {
            let proto_path = format!("{proto_prefix}{}", field.name());
            let json_path = format!("{json_prefix}{}", field.json_name());
            let under_bound = self.bound.iter().any(|bound| {
                proto_path == *bound
                    || proto_path
                        .strip_prefix(bound.as_str())
                        .is_some_and(|rest| rest.starts_with('.'))
            });
            if under_bound {
                continue;
            }
            let kind = field.kind();
            let mut style = None;
            let schema = if field.is_map() {
                let Kind::Message(entry) = &kind else { continue };
                let value = entry.map_entry_value_field().kind();
                if matches!(&value, Kind::Message(m) if !scalar_like(m)) {
                    continue; // the gateway refuses message-valued maps in the query
                }
                style = Some("deepObject");
                self.schemas.field_value(&field)
            } else {
                match &kind {
                    Kind::Message(m) if scalar_like(m) => {
                        if field.is_list() {
                            style = Some("form");
                        }
                        self.schemas.field_value(&field)
                    }
                    // Repeated messages cannot come from a query string.
                    Kind::Message(_) if field.is_list() => continue,
                    // Struct, Value, Any... have no query form in the gateway.
                    Kind::Message(m) if m.package_name() == "google.protobuf" => continue,
                    Kind::Message(m) => {
                        if stack.len() < MAX_QUERY_DEPTH
                            && !stack.iter().any(|name| name == m.full_name())
                        {
                            stack.push(m.full_name().to_owned());
                            self.message(
                                m,
                                &format!("{proto_path}."),
                                &format!("{json_path}."),
                                stack,
                            );
                            stack.pop();
                        }
                        continue;
                    }
                    _ => {
                        if field.is_list() {
                            style = Some("form");
                        }
                        self.schemas.field_value(&field)
                    }
                }
            };
            let mut description = self
                .schemas
                .comment(field.parent_file().name(), field.path())
                .unwrap_or_default();
            let mut note = |text: String| {
                if !description.is_empty() {
                    description.push_str("\n\n");
                }
                description.push_str(&text);
            };
            if let Some(oneof) = field.containing_oneof().filter(|o| !o.is_synthetic()) {
                note(format!(
                    "Member of the oneof `{}`: set at most one of its fields.",
                    oneof.name()
                ));
            }
            if style == Some("deepObject") {
                note(format!("One parameter per entry: `{json_path}[key]=value`."));
            }
            if self.patch_mask == Some(proto_path.as_str()) {
                note(
                    "When not given, the gateway fills it with the fields present in the \
                     request body."
                        .to_owned(),
                );
            }
            let mut parameter = Json::object([
                ("name", Json::from(json_path.as_str())),
                ("in", Json::from("query")),
            ]);
            if !description.is_empty() {
                parameter.set("description", Json::from(description));
            }
            if let Some(style) = style {
                parameter.set("style", Json::from(style));
                parameter.set("explode", Json::from(true));
            }
            // The `$ref` of an enum stays bare here: parameters carry the description.
            self.out.push(parameter.with("schema", schema));
        }
    }
}

/// Well-known types the gateway reads from one text value (path or query).
fn scalar_like(message: &MessageDescriptor) -> bool {
    crate::gateway::template::scalar_like_message(message.full_name())
}

fn request_body(
    method: &MethodDescriptor,
    binding: &HttpBinding,
    path_params: &[PathParam],
    schemas: &mut Schemas,
) -> Option<Json> {
    let input = method.input();
    let (schema, description) = match binding.body.as_str() {
        "" => return None,
        "*" => {
            let bound: Vec<&str> = path_params.iter().filter_map(|p| p.field.as_deref()).collect();
            if bound.is_empty() {
                (schemas.message(&input), format!("A `{}`.", input.full_name()))
            } else {
                (
                    schemas.message_object(&input, &bound),
                    format!(
                        "A `{}` without the fields the path sets ({}).",
                        input.full_name(),
                        bound
                            .iter()
                            .map(|b| format!("`{b}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            }
        }
        path => match resolve(&input, path) {
            Ok(field) => (
                schemas.field(&field),
                format!("The request's `{path}` field."),
            ),
            Err(_) => return None,
        },
    };
    let (media, description) = if method.is_client_streaming() {
        (
            "application/x-ndjson",
            format!("{description} A stream of them: newline-delimited JSON, one per line."),
        )
    } else {
        ("application/json", description)
    };
    Some(Json::object([
        ("description", Json::from(description)),
        (
            "content",
            Json::object([(media, Json::object([("schema", schema)]))]),
        ),
    ]))
}

/// `base`, or `base_2`, `base_3`... whichever is not in `taken` yet; recorded.
fn unique(base: &str, taken: &mut HashSet<String>) -> String {
    let mut candidate = base.to_owned();
    let mut n = 1;
    // Bounded: each failed try is a name already in the (finite) set.
    while taken.contains(&candidate) {
        n += 1;
        candidate = format!("{base}_{n}");
    }
    taken.insert(candidate.clone());
    candidate
}

fn title(files: &[FileDescriptor]) -> String {
    match files {
        [file] => file.name().to_owned(),
        _ => {
            let mut packages: Vec<&str> = files.iter().map(|f| f.package_name()).collect();
            packages.sort_unstable();
            packages.dedup();
            packages.retain(|p| !p.is_empty());
            if packages.is_empty() {
                "API".to_owned()
            } else {
                packages.join(", ")
            }
        }
    }
}

/// The version component of the packages (`v1` of `greeter.v1`, `v2beta1`...) when they all
/// share one, else `version not set`.
fn version(files: &[FileDescriptor]) -> String {
    let versions: Vec<Option<&str>> = files
        .iter()
        .map(|f| {
            f.package_name().rsplit('.').next().filter(|last| {
                last.strip_prefix('v')
                    .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
                    && last.chars().all(|c| c.is_ascii_alphanumeric())
            })
        })
        .collect();
    match versions.first() {
        Some(Some(first)) if versions.iter().all(|v| *v == Some(*first)) => (*first).to_owned(),
        _ => "version not set".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::path::Path;

    /// The testdata pool (with source info and extensions), its bindings and the documents
    /// of `files`.
    fn generate(files: &[&str], merged: bool) -> Vec<(String, String)> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let testdata = root.join("../testdata");
        let embedded = root.join("proto");
        let mut compiler =
            protox::Compiler::new([testdata.as_path(), embedded.as_path()]).unwrap();
        compiler.include_imports(true).include_source_info(true);
        compiler.open_files(files).unwrap();
        let pool = compiler.descriptor_pool();
        let names: Vec<String> = files.iter().map(|f| (*f).to_owned()).collect();
        let bindings = crate::http::bindings(&pool, &names).unwrap();
        documents(&pool, &names, &bindings, merged)
    }

    fn parse(files: &[&str]) -> Value {
        let docs = generate(files, false);
        assert_eq!(docs.len(), 1, "{:?}", docs.iter().map(|d| &d.0).collect::<Vec<_>>());
        serde_json::from_str(&docs[0].1).unwrap()
    }

    const KITCHEN: &str = "gateway/kitchen.proto";

    #[test]
    fn dump() {
        for (name, text) in generate(&[KITCHEN, "greeter/v1/greeter.proto"], false) {
            std::fs::write(format!("/tmp/oa-{}", name.replace('/', "_")), text).unwrap();
        }
    }
}
