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
//!   not at all; 3.0 says all the proto3 JSON mapping needs (`nullable`, `format` for
//!   64-bit strings). The cost is `allOf` around described `$ref`s, and `anyOf` with a
//!   `null`-only schema around nullable ones (below).
//! - `null` is allowed exactly where the gateway writes it with its default `JsonOptions`
//!   (unpopulated fields emitted, as grpc-gateway v2's protojson `EmitUnpopulated`): an
//!   unset field with presence outside a oneof is written as `null`, so singular message
//!   fields (well-known types included: Timestamp, Duration, FieldMask, wrappers, Struct,
//!   ListValue, Any, Empty, and plain messages) and proto2 scalars and enums are nullable;
//!   `google.protobuf.Value` is any JSON value, `null` included, wherever it appears.
//!   Scalars and enums without presence, lists, maps, list elements and map values are
//!   never `null`; neither are oneof members or proto3 `optional` fields, which are left
//!   out when unset. A typed schema gets `nullable: true`; a `$ref` becomes
//!   `{"anyOf": [{"$ref": ...}, {"enum": [null]}]}`, because OpenAPI 3.0.3 gives `nullable`
//!   effect only next to a `type` in the same schema (`{"allOf": [$ref], "nullable": true}`
//!   still refuses `null` in a validator that follows it, such as openapi-schema-validator).
//!   The gateway also reads `null` for any field as unset (protojson's rule); the shared
//!   schemas describe what it writes, and request bodies (a `body` field included) do not
//!   repeat that leniency.
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
//!   singular messages are flattened (`inner.text`) up to 8 levels (`MAX_QUERY_DEPTH`) and
//!   never into a type already on the way (recursion); repeated messages, message-valued
//!   maps and Struct/Value/ListValue/Any/Empty are left out because the gateway refuses
//!   them. Timestamp, Duration, FieldMask and wrappers are scalars, as in JSON. On a PATCH
//!   whose body is a field and whose request has exactly one FieldMask, that mask's
//!   description says the gateway fills it from the body's keys.
//! - Request bodies are `application/json` (the gateway also takes `*+json`): `body: "*"`
//!   is the request message, inlined without the path-bound fields when there are some; a
//!   field path is that field's schema. Client- and bidi-streaming requests are
//!   `application/x-ndjson`, one message per line.
//! - Responses: `200` is the reply (or its `response_body` field) as `application/json`.
//!   A `response_body` field is written even when unset, as grpc-gateway writes it (the
//!   field's value handed to protojson): an unset message as an empty one of its type (`{}`
//!   for `Any`), so it is nullable only when it is a scalar or enum with presence (proto3
//!   `optional`, proto2, a oneof member) or a `Value`. Server- and bidi-streaming replies
//!   are `application/x-ndjson` lines
//!   `{"result": ...}` / `{"error": Status}`, `text/event-stream` (`data:` events, an
//!   `error` event) and `application/json` (an array of the replies, aborted on failure),
//!   the gateway's three framings, chosen by `Accept`. `default` is the `google.rpc.Status`
//!   error body every failure gets.
//! - Schemas: see the `schema` module.

mod json;
mod schema;

use std::collections::{BTreeMap, HashSet};

use prost_reflect::{
    DescriptorPool, FieldDescriptor, FileDescriptor, Kind, MessageDescriptor, MethodDescriptor,
};

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
        .filter(|service| {
            service
                .methods()
                .any(|m| bindings.contains_key(m.full_name()))
        })
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
                paths
                    .entry(path)
                    .or_default()
                    .operations
                    .insert(slot, operation);
                return;
            }
        } else if kind == "*" {
            let order = if pending.binding.body.is_empty() {
                ["get", "post", "put", "patch", "delete"]
            } else {
                ["post", "put", "patch", "get", "delete"]
            };
            if let Some(slot) = order.into_iter().find(|slot| !taken(slot)) {
                let operation =
                    operation(pending, &params, schemas).with("x-rzero-method", Json::from("*"));
                paths
                    .entry(path)
                    .or_default()
                    .operations
                    .insert(slot, operation);
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

    let mut operation =
        Json::object([("tags", Json::from(vec![Json::from(pending.tag.as_str())]))]);
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

    let reply_field = output
        .get_field_by_name(&binding.response_body)
        .filter(|_| !binding.response_body.is_empty());
    let raw_reply = match &reply_field {
        Some(field) => is_http_body_field(field),
        None => is_http_body(&output),
    };
    let (reply, reply_name) = match &reply_field {
        Some(field) => (
            schemas.response_body(field),
            format!("the `{}` field of {}", field.name(), output.full_name()),
        ),
        None => (schemas.message(&output), output.full_name().to_owned()),
    };
    let ok = if raw_reply {
        let description = if method.is_server_streaming() {
            "The raw reply: the `data` of every `google.api.HttpBody` message, back to back, \
             with the first message's `content_type` (`application/octet-stream` when empty). \
             A call that fails after the first message aborts the response."
        } else {
            "The raw reply: the `google.api.HttpBody`'s `data`, with its `content_type` \
             (`application/octet-stream` when empty)."
        };
        Json::object([
            ("description", Json::from(description)),
            ("content", raw_content()),
        ])
    } else if method.is_server_streaming() {
        let line = Json::object([
            ("type", Json::from("object")),
            (
                "title",
                Json::from(format!("Stream result of {}", output.full_name())),
            ),
            (
                "description",
                Json::from(
                    "One line of the stream: `result` holds a message; a call that fails \
                     after the first message ends with an `error` line.",
                ),
            ),
            (
                "properties",
                Json::object([("result", reply.clone()), ("error", reference(STATUS))]),
            ),
        ]);
        let array = Json::object([
            ("type", Json::from("array")),
            (
                "title",
                Json::from(format!("Stream of {}", output.full_name())),
            ),
            (
                "description",
                Json::from(format!(
                    "Every message of the stream ({reply_name} as JSON), in order. A call that \
                     fails after the first message aborts the response: the array is never \
                     closed."
                )),
            ),
            ("items", reply),
        ]);
        Json::object([
            (
                "description",
                Json::from(
                    "A stream of replies, framed as the request's `Accept` asks: \
                     newline-delimited JSON (`application/x-ndjson`, the default unless the \
                     gateway sets another), Server-Sent Events (`text/event-stream`), or one \
                     JSON array of the messages (`Accept: application/json` alone; the \
                     response is aborted if the call fails after its first message).",
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
                                        "Server-Sent Events: `data: <{reply_name} as JSON>` \
                                         per message; on failure an `event: error` whose \
                                         data is a `google.rpc.Status`."
                                    )),
                                ),
                            ]),
                        )]),
                    ),
                    ("application/json", Json::object([("schema", array)])),
                ]),
            ),
        ])
    } else {
        Json::object([
            ("description", Json::from("OK")),
            (
                "content",
                Json::object([("application/json", Json::object([("schema", reply)]))]),
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
    operation.set("responses", Json::object([("200", ok), ("default", error)]));
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
    let field = param
        .field
        .as_deref()
        .and_then(|path| resolve(input, path).ok());
    let (mut schema, mut description) = match &field {
        Some(field) => (
            schemas.kind(&field.kind()),
            schemas
                .comment(field.parent_file().name(), field.path())
                .unwrap_or_default(),
        ),
        None => (
            Json::object([("type", Json::from("string"))]),
            String::new(),
        ),
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
                let Kind::Message(entry) = &kind else {
                    continue;
                };
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
                note(format!(
                    "One parameter per entry: `{json_path}[key]=value`."
                ));
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

const HTTP_BODY: &str = "google.api.HttpBody";

/// Whether `message` is `google.api.HttpBody`, which the gateway sends and takes raw.
fn is_http_body(message: &MessageDescriptor) -> bool {
    message.full_name() == HTTP_BODY
}

/// Whether `field` is a singular `google.api.HttpBody`.
fn is_http_body_field(field: &FieldDescriptor) -> bool {
    !field.is_list() && matches!(field.kind(), Kind::Message(m) if is_http_body(&m))
}

/// The content of a raw (`google.api.HttpBody`) body: any media type, any bytes.
fn raw_content() -> Json {
    Json::object([(
        "*/*",
        Json::object([(
            "schema",
            Json::object([
                ("type", Json::from("string")),
                ("format", Json::from("binary")),
            ]),
        )]),
    )])
}

fn request_body(
    method: &MethodDescriptor,
    binding: &HttpBinding,
    path_params: &[PathParam],
    schemas: &mut Schemas,
) -> Option<Json> {
    let input = method.input();
    let raw = match binding.body.as_str() {
        "" => false,
        "*" => is_http_body(&input),
        path => resolve(&input, path).is_ok_and(|field| is_http_body_field(&field)),
    };
    if raw {
        let description = if method.is_client_streaming() {
            "The raw request body, streamed: each chunk received is one `google.api.HttpBody` \
             message, its `data`, with the request's `Content-Type` as `content_type`."
        } else {
            "The raw request body: a `google.api.HttpBody`'s `data`, with the request's \
             `Content-Type` as its `content_type`."
        };
        return Some(Json::object([
            ("description", Json::from(description)),
            ("content", raw_content()),
        ]));
    }
    let (schema, description) = match binding.body.as_str() {
        "" => return None,
        "*" => {
            let bound: Vec<&str> = path_params
                .iter()
                .filter_map(|p| p.field.as_deref())
                .collect();
            if bound.is_empty() {
                (
                    schemas.message(&input),
                    format!("A `{}`.", input.full_name()),
                )
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
                schemas.body(&field),
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
    use serde_json::{Value, json};
    use std::path::Path;

    /// The testdata pool (with source info and extensions), its bindings and the documents
    /// of `files`.
    fn generate(files: &[&str], merged: bool) -> Vec<(String, String)> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let testdata = root.join("../testdata");
        let embedded = root.join("proto");
        let mut compiler = protox::Compiler::new([testdata.as_path(), embedded.as_path()]).unwrap();
        compiler.include_imports(true).include_source_info(true);
        compiler.open_files(files).unwrap();
        let pool = compiler.descriptor_pool();
        let names: Vec<String> = files.iter().map(|f| (*f).to_owned()).collect();
        let bindings = crate::http::bindings(&pool, &names).unwrap();
        documents(&pool, &names, &bindings, merged)
    }

    fn parse(files: &[&str]) -> Value {
        let docs = generate(files, false);
        assert_eq!(
            docs.len(),
            1,
            "{:?}",
            docs.iter().map(|d| &d.0).collect::<Vec<_>>()
        );
        serde_json::from_str(&docs[0].1).unwrap()
    }

    const KITCHEN: &str = "gateway/kitchen.proto";
    const PRESENCE: &str = "gateway/presence.proto";
    const FILES: &str = "files/v1/files.proto";
    const SHOP: [&str; 4] = [
        "shop/catalog/v1/catalog.proto",
        "shop/common/v1/money.proto",
        "shop/orders/v1/order_events.proto",
        "shop/orders/v1/orders.proto",
    ];

    /// The operation at `path` and `method` (`get`, ... or `x-rzero-custom-methods.KIND`).
    fn op<'a>(doc: &'a Value, path: &str, method: &str) -> &'a Value {
        let item = &doc["paths"][path];
        let op = match method.split_once('.') {
            Some((ext, kind)) => &item[ext][kind],
            None => &item[method],
        };
        assert!(op.is_object(), "no {method} {path} in {:#}", doc["paths"]);
        op
    }

    /// A parameter of an operation by name.
    fn param<'a>(op: &'a Value, name: &str) -> &'a Value {
        op["parameters"]
            .as_array()
            .and_then(|list| list.iter().find(|p| p["name"] == name))
            .unwrap_or_else(|| panic!("no parameter {name} in {:#}", op["parameters"]))
    }

    fn param_names(op: &Value) -> Vec<&str> {
        op["parameters"]
            .as_array()
            .map(|list| list.iter().map(|p| p["name"].as_str().unwrap()).collect())
            .unwrap_or_default()
    }

    fn schema<'a>(doc: &'a Value, name: &str) -> &'a Value {
        let schema = &doc["components"]["schemas"][name];
        assert!(schema.is_object(), "no schema {name}");
        schema
    }

    /// `keys` appear in this order in `text` after `start`.
    fn assert_in_order(text: &str, start: &str, keys: &[&str]) {
        let mut at = text.find(start).unwrap_or_else(|| panic!("no {start}"));
        for key in keys {
            let found = text[at..]
                .find(key)
                .unwrap_or_else(|| panic!("no {key} after {start}"));
            at += found;
        }
    }

    fn reference(name: &str) -> Value {
        json!({"$ref": format!("#/components/schemas/{name}")})
    }

    /// A `$ref` or `null`, in the form OpenAPI 3.0.3 validators accept.
    fn nullable_ref(name: &str) -> Value {
        json!({"anyOf": [reference(name), {"enum": [null]}]})
    }

    #[test]
    fn greeter_document() {
        let docs = generate(&["greeter/v1/greeter.proto"], false);
        assert_eq!(docs[0].0, "greeter/v1/greeter.openapi.json");
        assert!(docs[0].1.ends_with("}\n"));
        let doc: Value = serde_json::from_str(&docs[0].1).unwrap();
        assert_eq!(doc["openapi"], "3.0.3");
        assert_eq!(doc["info"]["title"], "greeter/v1/greeter.proto");
        assert_eq!(doc["info"]["version"], "v1");
        assert!(
            doc["info"]["description"]
                .as_str()
                .unwrap()
                .starts_with("The classic gRPC \"helloworld\" Greeter")
        );
        assert_eq!(
            doc["tags"],
            json!([{"name": "Greeter", "description": "The greeting service definition."}])
        );
        let paths: Vec<&String> = doc["paths"].as_object().unwrap().keys().collect();
        assert_eq!(paths, ["/v1/greeter", "/v1/greeter/{name}"]);

        let get = op(&doc, "/v1/greeter/{name}", "get");
        assert_eq!(get["operationId"], "Greeter_SayHello");
        assert_eq!(get["tags"], json!(["Greeter"]));
        assert_eq!(get["summary"], "Sends a greeting.");
        assert!(
            get["description"]
                .as_str()
                .unwrap()
                .starts_with("Reachable over HTTP")
        );
        assert_eq!(
            get["parameters"],
            json!([
                {"name": "name", "in": "path", "required": true,
                 "description": "Name of the person to greet.", "schema": {"type": "string"}},
                {"name": "repeat", "in": "query",
                 "description": "How many greetings to stream back; only used by `SayHelloStream`.",
                 "schema": {"type": "integer", "format": "int64", "minimum": 0, "maximum": 4294967295u32}},
            ])
        );
        assert!(get.get("requestBody").is_none());
        assert_eq!(
            get["responses"]["200"]["content"]["application/json"]["schema"],
            reference("greeter.v1.HelloReply")
        );
        assert_eq!(
            get["responses"]["default"]["content"]["application/json"]["schema"],
            reference("google.rpc.Status")
        );

        let post = op(&doc, "/v1/greeter", "post");
        assert_eq!(post["operationId"], "Greeter_SayHello2");
        assert!(
            post.get("parameters").is_none(),
            "body `*`: no query parameters"
        );
        assert_eq!(
            post["requestBody"]["content"]["application/json"]["schema"],
            reference("greeter.v1.HelloRequest")
        );
        assert_eq!(
            schema(&doc, "greeter.v1.HelloRequest")["properties"]["name"],
            json!({"type": "string", "description": "Name of the person to greet."})
        );
        assert_eq!(
            schema(&doc, "greeter.v1.HelloReply")["description"],
            "The response message containing the greeting."
        );
    }

    #[test]
    fn error_body_is_google_rpc_status_with_any_details() {
        let doc = parse(&["greeter/v1/greeter.proto"]);
        assert_eq!(
            schema(&doc, "google.rpc.Status")["properties"],
            json!({
                "code": {"type": "integer", "format": "int32",
                         "description": "The gRPC status code (`google.rpc.Code`), e.g. 5 for NOT_FOUND."},
                "message": {"type": "string", "description": "A developer-facing error message."},
                "details": {"type": "array", "items": reference("google.protobuf.Any"),
                            "description": "Error details such as `google.rpc.ErrorInfo`."},
            })
        );
        let any = schema(&doc, "google.protobuf.Any");
        assert_eq!(any["properties"]["@type"]["type"], "string");
        // `{}` is an empty `Any`: `@type` is optional.
        assert!(any.get("required").is_none());
        assert_eq!(any["additionalProperties"], json!({}));
    }

    #[test]
    fn shop_documents_per_file_and_merged() {
        let docs = generate(&SHOP, false);
        let names: Vec<&str> = docs.iter().map(|d| d.0.as_str()).collect();
        // Files without HTTP rules (money, order_events) get no document.
        assert_eq!(
            names,
            [
                "shop/catalog/v1/catalog.openapi.json",
                "shop/orders/v1/orders.openapi.json"
            ]
        );
        let catalog: Value = serde_json::from_str(&docs[0].1).unwrap();
        let orders: Value = serde_json::from_str(&docs[1].1).unwrap();

        let get = op(&catalog, "/v1/{name}", "get");
        assert_eq!(get["operationId"], "CatalogService_GetProduct");
        let name = param(get, "name");
        assert_eq!(name["in"], "path");
        assert_eq!(name["required"], true);
        assert_eq!(name["schema"]["pattern"], "^products/[^/]+$");
        assert!(
            name["description"]
                .as_str()
                .unwrap()
                .contains("`products/*`")
        );
        assert_eq!(param(get, "readMask")["schema"]["type"], "string");

        let list = op(&catalog, "/v1/products", "get");
        assert_eq!(
            param_names(list),
            ["pageSize", "pageToken", "filter", "state"]
        );
        assert_eq!(
            param(list, "pageSize")["schema"],
            json!({"type": "integer", "format": "int32"})
        );
        assert_eq!(
            param(list, "state")["schema"],
            reference("shop.catalog.v1.Product.State")
        );
        let state = schema(&catalog, "shop.catalog.v1.Product.State");
        assert_eq!(
            state["enum"],
            json!([
                "STATE_UNSPECIFIED",
                "STATE_DRAFT",
                "STATE_ACTIVE",
                "STATE_ARCHIVED"
            ])
        );
        assert!(
            state["description"]
                .as_str()
                .unwrap()
                .contains("- `STATE_DRAFT`: Being edited")
        );

        // PATCH with a body field: the field's schema; the one FieldMask is filled from it.
        let update = op(&catalog, "/v1/{product.name}", "patch");
        assert_eq!(param_names(update), ["product.name", "updateMask"]);
        assert!(
            param(update, "updateMask")["description"]
                .as_str()
                .unwrap()
                .contains("the gateway fills it with the fields present in the request body")
        );
        let body = &update["requestBody"]["content"]["application/json"]["schema"];
        assert_eq!(body["allOf"], json!([reference("shop.catalog.v1.Product")]));
        assert!(
            body["description"]
                .as_str()
                .unwrap()
                .contains("The product to update")
        );

        let product = &schema(&catalog, "shop.catalog.v1.Product")["properties"];
        assert_eq!(
            product["legacyVariants"],
            json!({"type": "object",
                   "additionalProperties": reference("shop.catalog.v1.Product.Variant"),
                   "description": "Variants keyed by their numeric legacy id."})
        );
        assert_eq!(product["createTime"]["format"], "date-time");
        assert_eq!(product["subtitle"]["nullable"], true);
        assert_eq!(product["subtitle"]["type"], "string");
        assert_eq!(product["attributes"]["type"], "object");
        assert_eq!(
            product["extensions"]["items"],
            reference("google.protobuf.Any")
        );
        assert!(
            product["giftCardValue"]["description"]
                .as_str()
                .unwrap()
                .contains("Member of the oneof `fulfillment`: at most one of `physical`, `digital`, `giftCardValue`")
        );
        assert_eq!(
            schema(&catalog, "shop.common.v1.Money")["properties"]["units"],
            json!({"type": "string", "format": "int64",
                   "description": "Whole units of the amount, e.g. 12 for \"12.34 USD\"."})
        );

        // A verb stays literal; `body: "*"` drops the path-bound field from the body.
        let cancel = op(&orders, "/v1/{name}:cancel", "post");
        assert_eq!(param_names(cancel), ["name"]);
        let body = &cancel["requestBody"]["content"]["application/json"]["schema"];
        let keys: Vec<&String> = body["properties"].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["reason"]);
        // A reply that is the error type itself is the one Status schema.
        assert_eq!(
            cancel["responses"]["200"]["content"]["application/json"]["schema"],
            reference("google.rpc.Status")
        );

        let merged = generate(&SHOP, true);
        assert_eq!(merged.len(), 1);
        assert_eq!(merged[0].0, "openapi.json");
        let merged: Value = serde_json::from_str(&merged[0].1).unwrap();
        assert_eq!(merged["info"]["title"], "shop.catalog.v1, shop.orders.v1");
        assert_eq!(merged["info"]["version"], "v1");
        let tags: Vec<&str> = merged["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert_eq!(tags, ["CatalogService", "OrderService"]);
        // Both files' GET /v1/{name} meet at one path: the second gets a renamed parameter.
        assert_eq!(
            op(&merged, "/v1/{name}", "get")["operationId"],
            "CatalogService_GetProduct"
        );
        assert_eq!(
            op(&merged, "/v1/{name_1}", "get")["operationId"],
            "OrderService_GetOrder"
        );
        assert!(merged["components"]["schemas"]["shop.orders.v1.Order"].is_object());
    }

    #[test]
    fn every_field_kind_and_well_known_type() {
        let doc = parse(&[KITCHEN]);
        let kitchen = &schema(&doc, "gateway.kitchen.v1.Kitchen")["properties"];
        let uint32 =
            json!({"type": "integer", "format": "int64", "minimum": 0, "maximum": 4294967295u32});
        let expected = [
            ("fDouble", json!({"type": "number", "format": "double"})),
            ("fFloat", json!({"type": "number", "format": "float"})),
            ("fInt32", json!({"type": "integer", "format": "int32"})),
            ("fInt64", json!({"type": "string", "format": "int64"})),
            ("fUint32", uint32.clone()),
            ("fUint64", json!({"type": "string", "format": "uint64"})),
            ("fSint32", json!({"type": "integer", "format": "int32"})),
            ("fSint64", json!({"type": "string", "format": "int64"})),
            ("fFixed32", uint32.clone()),
            ("fFixed64", json!({"type": "string", "format": "uint64"})),
            ("fSfixed32", json!({"type": "integer", "format": "int32"})),
            ("fSfixed64", json!({"type": "string", "format": "int64"})),
            ("fBool", json!({"type": "boolean"})),
            ("fString", json!({"type": "string"})),
            ("fBytes", json!({"type": "string", "format": "byte"})),
            ("color", reference("gateway.kitchen.v1.Color")),
            ("inner", nullable_ref("gateway.kitchen.v1.Inner")),
            (
                "tags",
                json!({"type": "array", "items": {"type": "string"}}),
            ),
            (
                "inners",
                json!({"type": "array", "items": reference("gateway.kitchen.v1.Inner")}),
            ),
            (
                "counts",
                json!({"type": "object", "additionalProperties": {"type": "string", "format": "int64"}}),
            ),
            (
                "byId",
                json!({"type": "object", "additionalProperties": reference("gateway.kitchen.v1.Inner")}),
            ),
            ("maybe", json!({"type": "integer", "format": "int32"})),
            ("customName", json!({"type": "string"})),
            (
                "doc",
                json!({"type": "object", "additionalProperties": {},
                       "description": "Any JSON object.", "nullable": true}),
            ),
            (
                "value",
                json!({"description": "Any JSON value, `null` included."}),
            ),
            (
                "list",
                json!({"type": "array", "items": {}, "description": "Any JSON array.",
                       "nullable": true}),
            ),
            ("any", nullable_ref("google.protobuf.Any")),
            ("empty", json!({"type": "object", "nullable": true})),
            (
                "wInt64",
                json!({"type": "string", "format": "int64", "nullable": true}),
            ),
            ("wString", json!({"type": "string", "nullable": true})),
            ("wBool", json!({"type": "boolean", "nullable": true})),
            (
                "wBytes",
                json!({"type": "string", "format": "byte", "nullable": true}),
            ),
            (
                "wDouble",
                json!({"type": "number", "format": "double", "nullable": true}),
            ),
            ("wUint32", {
                let mut w = uint32.clone();
                w["nullable"] = json!(true);
                w
            }),
            (
                "colors",
                json!({"type": "object", "additionalProperties": reference("gateway.kitchen.v1.Color")}),
            ),
            ("node", nullable_ref("gateway.kitchen.v1.Node")),
            (
                "id",
                json!({"type": "string", "description": "Set from the path in the PATCH route."}),
            ),
        ];
        for (name, schema) in &expected {
            assert_eq!(&kitchen[name], schema, "{name}");
        }
        assert_eq!(kitchen["when"]["type"], "string");
        assert_eq!(kitchen["when"]["format"], "date-time");
        assert_eq!(kitchen["took"]["pattern"], r"^-?[0-9]+(\.[0-9]{1,9})?s$");
        assert!(
            kitchen["mask"]["description"]
                .as_str()
                .unwrap()
                .contains("Comma-separated")
        );
        assert_eq!(kitchen["times"]["items"]["format"], "date-time");
        assert_eq!(
            kitchen["choiceInner"]["allOf"],
            json!([reference("gateway.kitchen.v1.Inner")])
        );
        assert!(
            kitchen["choiceText"]["description"]
                .as_str()
                .unwrap()
                .contains("oneof `choice`")
        );
        // Nothing left out, in field-number order (serde_json's map sorts: read the text).
        assert_eq!(kitchen.as_object().unwrap().len(), 43);
        let text = &generate(&[KITCHEN], false)[0].1;
        assert_in_order(
            text,
            "\"gateway.kitchen.v1.Kitchen\": {",
            &[
                "\"fDouble\"",
                "\"fFloat\"",
                "\"customName\"",
                "\"when\"",
                "\"node\"",
                "\"id\"",
            ],
        );
        // Recursive messages refer to themselves.
        let node = &schema(&doc, "gateway.kitchen.v1.Node")["properties"];
        assert_eq!(node["parent"], nullable_ref("gateway.kitchen.v1.Node"));
        assert_eq!(
            node["children"]["items"],
            reference("gateway.kitchen.v1.Node")
        );
        assert_eq!(
            schema(&doc, "gateway.kitchen.v1.Color")["enum"],
            json!(["COLOR_UNSPECIFIED", "RED", "GREEN"])
        );
    }

    /// `null` is allowed exactly where the gateway writes it: unset singular message fields
    /// (well-known types included) outside oneofs; `Value` is any JSON value.
    #[test]
    fn message_fields_are_nullable_and_nothing_else() {
        let doc = parse(&[KITCHEN]);
        let kitchen = &schema(&doc, "gateway.kitchen.v1.Kitchen")["properties"];
        let nullable = |name: &str| {
            let field = &kitchen[name];
            field["nullable"] == json!(true)
                || field["anyOf"].as_array().is_some_and(|branches| {
                    branches.len() == 2 && branches[1] == json!({"enum": [null]})
                })
        };
        let messages = [
            "inner", "when", "took", "mask", "doc", "list", "any", "empty", "wInt64", "wString",
            "wBool", "wBytes", "wDouble", "wUint32", "node",
        ];
        for name in messages {
            assert!(nullable(name), "{name}: {:#}", kitchen[name]);
        }
        // A `$ref` cannot carry `nullable` (3.0 ignores its siblings, 3.0.3 wants a `type`).
        assert_eq!(kitchen["inner"], nullable_ref("gateway.kitchen.v1.Inner"));
        assert_eq!(kitchen["any"], nullable_ref("google.protobuf.Any"));
        assert_eq!(
            kitchen["when"],
            json!({"type": "string", "format": "date-time",
                   "description": "RFC 3339, always `Z`-normalized, e.g. `2017-01-15T01:30:15.01Z`.",
                   "nullable": true})
        );
        // `Value` has no `type`: any JSON value, `null` included.
        assert!(kitchen["value"].get("type").is_none());
        assert!(kitchen["value"].get("anyOf").is_none());

        // Scalars, enums, lists, maps, oneof members and proto3 `optional` are never `null`.
        let all: Vec<&String> = kitchen.as_object().unwrap().keys().collect();
        for name in all {
            if !messages.contains(&name.as_str()) && name != "value" {
                assert!(!nullable(name), "{name}: {:#}", kitchen[name]);
            }
        }
        assert_eq!(kitchen["color"], reference("gateway.kitchen.v1.Color"));
        assert_eq!(
            kitchen["maybe"],
            json!({"type": "integer", "format": "int32"})
        );
        assert_eq!(
            kitchen["choiceInner"]["allOf"],
            json!([reference("gateway.kitchen.v1.Inner")])
        );
        assert!(kitchen["choiceInner"].get("anyOf").is_none());
        // ... nor list elements and map values of message types.
        assert_eq!(
            kitchen["inners"]["items"],
            reference("gateway.kitchen.v1.Inner")
        );
        assert_eq!(kitchen["times"]["items"].get("nullable"), None);
        assert_eq!(
            kitchen["byId"]["additionalProperties"],
            reference("gateway.kitchen.v1.Inner")
        );

        // Components, replies, query and path parameters and a `body` field: never `null`.
        for (name, component) in doc["components"]["schemas"].as_object().unwrap() {
            assert!(component.get("nullable").is_none(), "{name}");
            assert!(component.get("anyOf").is_none(), "{name}");
        }
        let get = op(&doc, "/v1/kitchens/{id}", "get");
        for name in ["when", "wInt64", "took"] {
            assert_eq!(param(get, name)["schema"].get("nullable"), None, "{name}");
        }
        let any = op(&doc, "/v1/any/{f_int64}/{color}/{when}", "get");
        assert_eq!(param(any, "when")["schema"].get("nullable"), None);
        let put = op(&doc, "/v1/kitchens/{id}", "put");
        assert_eq!(
            put["requestBody"]["content"]["application/json"]["schema"],
            reference("gateway.kitchen.v1.Inner")
        );
        assert_eq!(
            op(&doc, "/v1/kitchens", "post")["responses"]["200"]["content"]["application/json"]["schema"],
            reference("gateway.kitchen.v1.Kitchen")
        );
        // An inlined `body: "*"` keeps the nullability of the properties it copies.
        let update = op(&doc, "/v2/{kitchen.id}:update", "post");
        let body = &update["requestBody"]["content"]["application/json"]["schema"];
        assert_eq!(body["properties"]["kitchen"]["nullable"], true);
        assert_eq!(body["properties"]["kitchen"]["type"], "object");
        assert_eq!(
            body["properties"]["kitchen"]["properties"]["inner"],
            nullable_ref("gateway.kitchen.v1.Inner")
        );
        assert_eq!(body["properties"]["updateMask"]["nullable"], true);
    }

    /// proto2 scalars are `null` when unset too; a `response_body` reply is written even when
    /// its field is unset (an empty message, `{}` for an `Any`), so only scalars with
    /// presence (and `Value`) are nullable there.
    #[test]
    fn proto2_presence_and_response_bodies() {
        let doc = parse(&[PRESENCE]);
        let legacy = &schema(&doc, "gateway.presence.v1.Legacy")["properties"];
        assert_eq!(
            legacy["count"],
            json!({"type": "integer", "format": "int32", "nullable": true,
                   "description": "A proto2 scalar: `null` when unset."})
        );
        assert_eq!(legacy["name"], json!({"type": "string", "nullable": true}));
        assert_eq!(legacy["level"], nullable_ref("gateway.presence.v1.Level"));
        assert_eq!(
            legacy["numbers"],
            json!({"type": "array", "items": {"type": "integer", "format": "int32"}})
        );
        assert_eq!(
            legacy["parts"]["additionalProperties"],
            reference("gateway.presence.v1.Part")
        );
        assert_eq!(legacy["part"], nullable_ref("gateway.presence.v1.Part"));
        assert!(legacy["picked"].get("nullable").is_none());
        assert_eq!(
            legacy["pickedPart"]["allOf"],
            json!([reference("gateway.presence.v1.Part")])
        );
        assert_eq!(legacy["when"]["nullable"], true);
        assert!(legacy["value"].get("type").is_none());
        assert_eq!(legacy["any"], nullable_ref("google.protobuf.Any"));

        let reply = |verb: &str| {
            op(&doc, &format!("/v1/legacies:{verb}"), "post")["responses"]["200"]["content"]
                ["application/json"]["schema"]
                .clone()
        };
        assert_eq!(reply("count"), legacy["count"]);
        assert_eq!(reply("level"), nullable_ref("gateway.presence.v1.Level"));
        assert_eq!(reply("numbers"), legacy["numbers"]);
        assert_eq!(reply("parts"), legacy["parts"]);
        // An unset message: its empty message, never `null`.
        assert_eq!(reply("part"), reference("gateway.presence.v1.Part"));
        assert_eq!(
            reply("when"),
            json!({"type": "string", "format": "date-time",
                   "description": "RFC 3339, always `Z`-normalized, e.g. `2017-01-15T01:30:15.01Z`."})
        );
        assert_eq!(reply("pickedPart")["allOf"], legacy["pickedPart"]["allOf"]);
        assert!(reply("pickedPart").get("anyOf").is_none());
        // An unset oneof scalar: `null`.
        let picked = reply("picked");
        assert_eq!(picked["nullable"], true);
        assert!(
            picked["description"]
                .as_str()
                .unwrap()
                .contains("oneof `pick`")
        );
        assert!(reply("value").get("type").is_none());
        // An unset `Any`: `{}`, which the component allows (an empty `Any`).
        assert_eq!(reply("any"), reference("google.protobuf.Any"));
    }

    #[test]
    fn kitchen_bindings() {
        let doc = parse(&[KITCHEN]);
        // Standard methods are operations; `PURGE` is kept aside; `*` takes GET (no body).
        let item = doc["paths"]["/v1/kitchens/{id}"].as_object().unwrap();
        assert_eq!(item.len(), 5);
        let text = &generate(&[KITCHEN], false)[0].1;
        assert_in_order(
            text,
            "\"/v1/kitchens/{id}\": {",
            &[
                "\"get\"",
                "\"put\"",
                "\"head\"",
                "\"patch\"",
                "\"x-rzero-custom-methods\"",
            ],
        );
        assert_eq!(
            op(&doc, "/v1/kitchens/{id}", "x-rzero-custom-methods.PURGE")["operationId"],
            "Mirror_Mirror7"
        );
        let any = op(&doc, "/v1/any/{f_int64}/{color}/{when}", "get");
        assert_eq!(any["x-rzero-method"], "*");
        assert_eq!(any["operationId"], "Mirror_Mirror6");
        assert!(
            any["description"]
                .as_str()
                .unwrap()
                .contains("Any HTTP method")
        );
        assert_eq!(
            param(any, "f_int64")["schema"],
            json!({"type": "string", "format": "int64"})
        );
        assert_eq!(
            param(any, "color")["schema"],
            reference("gateway.kitchen.v1.Color")
        );
        assert_eq!(param(any, "when")["schema"]["format"], "date-time");
        assert_eq!(param(any, "when")["required"], true);

        // Query parameters: everything but path and body fields, flattened; no repeated
        // messages, message maps, Struct/Value/ListValue/Any/Empty, or recursion.
        let get = op(&doc, "/v1/kitchens/{id}", "get");
        let names = param_names(get);
        for present in [
            "id",
            "fInt64",
            "inner.text",
            "inner.numbers",
            "tags",
            "counts",
            "choiceText",
            "choiceInner.text",
            "customName",
            "when",
            "took",
            "mask",
            "wInt64",
            "times",
            "colors",
            "node.label",
            "color",
        ] {
            assert!(names.contains(&present), "{present} missing from {names:?}");
        }
        for absent in [
            "inners",
            "byId",
            "doc",
            "value",
            "list",
            "any",
            "empty",
            "node.parent.label",
            "node.children",
            "node",
        ] {
            assert!(!names.contains(&absent), "{absent} in {names:?}");
        }
        assert_eq!(names.iter().filter(|n| **n == "id").count(), 1);
        assert_eq!(param(get, "id")["in"], "path");
        let tags = param(get, "tags");
        assert_eq!(
            (&tags["style"], &tags["explode"]),
            (&json!("form"), &json!(true))
        );
        assert_eq!(
            tags["schema"],
            json!({"type": "array", "items": {"type": "string"}})
        );
        let counts = param(get, "counts");
        assert_eq!(counts["style"], "deepObject");
        assert!(
            counts["description"]
                .as_str()
                .unwrap()
                .contains("`counts[key]=value`")
        );
        assert_eq!(counts["schema"]["additionalProperties"]["format"], "int64");

        // `body: "inner"` takes `inner` out of the query; `response_body` is the reply.
        let put = op(&doc, "/v1/kitchens/{id}", "put");
        assert!(!param_names(put).iter().any(|n| n.starts_with("inner")));
        assert_eq!(
            put["requestBody"]["content"]["application/json"]["schema"],
            reference("gateway.kitchen.v1.Inner")
        );
        assert_eq!(
            put["responses"]["200"]["content"]["application/json"]["schema"],
            reference("gateway.kitchen.v1.Inner")
        );
        // `body: "*"` with a path variable: an inline body without it, no query.
        let patch = op(&doc, "/v1/kitchens/{id}", "patch");
        assert_eq!(param_names(patch), ["id"]);
        let body = &patch["requestBody"]["content"]["application/json"]["schema"];
        assert!(body["properties"].get("id").is_none());
        assert_eq!(body["properties"].as_object().unwrap().len(), 42);
        // ... and a nested path variable drops the nested field only.
        let update = op(&doc, "/v2/{kitchen.id}:update", "post");
        let body = &update["requestBody"]["content"]["application/json"]["schema"];
        assert!(
            body["properties"]["kitchen"]["properties"]
                .get("id")
                .is_none()
        );
        assert!(
            body["properties"]["kitchen"]["properties"]
                .get("fInt64")
                .is_some()
        );
        assert!(body["properties"].get("updateMask").is_some());
        assert_eq!(
            param(update, "kitchen.id")["schema"]["pattern"],
            "^kitchens/[^/]+$"
        );

        // Multi-segment variables, bare wildcards, verbs, and colliding paths.
        let files = op(&doc, "/v1/{f_string}", "get");
        assert_eq!(
            param(files, "f_string")["schema"]["pattern"],
            "^folders/[^/]+/files(/.*)?$"
        );
        let archive = op(&doc, "/v1/{f_string}/books/{wildcard1}:archive", "get");
        assert_eq!(
            param(archive, "f_string")["schema"]["pattern"],
            "^shelves/[^/]+$"
        );
        assert!(
            param(archive, "wildcard1")["description"]
                .as_str()
                .unwrap()
                .contains("not bound")
        );
        assert_eq!(
            param(op(&doc, "/v1/raw/{wildcard1}", "get"), "wildcard1")["schema"]["pattern"],
            "^.*$"
        );
        assert_eq!(
            param(op(&doc, "/v1/{f_string_1}", "get"), "f_string_1")["schema"]["pattern"],
            "^shelves/[^/]+$"
        );
        assert_eq!(
            param(op(&doc, "/v1/{f_string_2}", "get"), "f_string_2")["schema"]["pattern"],
            "^racks/[^/]+$"
        );
        assert!(!param_names(files).contains(&"fString"));

        // Streams: NDJSON (and SSE) replies, NDJSON requests.
        let watch = op(&doc, "/v1/watch", "get");
        let ok = &watch["responses"]["200"]["content"];
        assert_eq!(
            ok["application/x-ndjson"]["schema"]["properties"],
            json!({"result": reference("gateway.kitchen.v1.Kitchen"), "error": reference("google.rpc.Status")})
        );
        assert_eq!(ok["text/event-stream"]["schema"]["type"], "string");
        // With `Accept: application/json`, one array of the plain messages.
        assert_eq!(ok["application/json"]["schema"]["type"], "array");
        assert_eq!(
            ok["application/json"]["schema"]["items"],
            reference("gateway.kitchen.v1.Kitchen")
        );
        let description = watch["responses"]["200"]["description"].as_str().unwrap();
        for media in [
            "application/x-ndjson",
            "text/event-stream",
            "application/json",
        ] {
            assert!(description.contains(media), "{media}: {description}");
        }
        assert_eq!(param_names(watch), ["text", "numbers"]);
        // A `response_body` field is what every line's `result` and every element hold.
        let inner = &op(&doc, "/v1/watch/inner", "get")["responses"]["200"]["content"];
        let field = inner["application/x-ndjson"]["schema"]["properties"]["result"].clone();
        assert_eq!(field, reference("gateway.kitchen.v1.Inner"));
        assert_eq!(inner["application/json"]["schema"]["items"], field);
        let upload = op(&doc, "/v1/upload", "post");
        assert_eq!(
            upload["requestBody"]["content"],
            json!({"application/x-ndjson": {"schema": reference("gateway.kitchen.v1.Kitchen")}})
        );
        assert!(upload["responses"]["200"]["content"]["application/json"].is_object());
        let chat = op(&doc, "/v1/chat", "post");
        assert!(chat["requestBody"]["content"]["application/x-ndjson"].is_object());
        assert!(chat["responses"]["200"]["content"]["application/x-ndjson"].is_object());
        // Empty in, Empty out.
        let nothing = op(&doc, "/v1/nothing", "delete");
        assert_eq!(
            nothing["responses"]["200"]["content"]["application/json"]["schema"],
            json!({"type": "object"})
        );
        // Methods without rules are not there.
        assert!(!doc.to_string().contains("Mirror_Hidden"));
    }

    #[test]
    fn patterns_match_what_the_router_matches() {
        let cases: [(&str, &[&str], &[&str]); 6] = [
            (
                "/{x=shelves/*}",
                &["shelves/a"],
                &["shelves", "shelves/a/b", "x/a"],
            ),
            ("/{x=a/**}", &["a", "a/b", "a/b/c"], &["b", "ab"]),
            ("/{x=**}", &["", "a", "a/b"], &[]),
            ("/{x=**/b}", &["b", "a/b", "a/c/b"], &["a", "ab"]),
            ("/{x=a/**/b}", &["a/b", "a/x/b", "a/x/y/b"], &["a", "ab"]),
            ("/{x=a.b/*}", &["a.b/c"], &["axb/c"]),
        ];
        for (template, good, bad) in cases {
            let template = PathTemplate::parse(template).unwrap();
            let (_, params) = openapi_path(&template, 0);
            let pattern = params[0].pattern.clone().unwrap();
            let regex = regex::Regex::new(&pattern).unwrap();
            for value in good {
                assert!(regex.is_match(value), "{pattern} should match {value:?}");
            }
            for value in bad {
                assert!(
                    !regex.is_match(value),
                    "{pattern} should not match {value:?}"
                );
            }
        }
        let (path, params) = openapi_path(&PathTemplate::parse("/").unwrap(), 0);
        assert_eq!((path.as_str(), params.len()), ("/", 0));
        let (path, params) = openapi_path(&PathTemplate::parse("/v1/{name}").unwrap(), 0);
        assert_eq!(path, "/v1/{name}");
        assert_eq!(params[0].pattern, None, "one segment needs no pattern");
    }

    #[test]
    fn output_is_deterministic_and_needs_rules() {
        let first = generate(&[KITCHEN, "greeter/v1/greeter.proto"], false);
        let second = generate(&["greeter/v1/greeter.proto", KITCHEN], false);
        assert_eq!(first, second);
        assert_eq!(generate(&SHOP, true), generate(&SHOP, true));
        assert_eq!(first[0].0, "gateway/kitchen.openapi.json");
        assert!(generate(&["echo/v1/echo.proto"], false).is_empty());
        assert!(generate(&["echo/v1/echo.proto"], true).is_empty());
    }

    /// Every document passes `openapi-spec-validator` (PyPI, pinned in
    /// `tests/python/requirements.txt`).
    #[test]
    fn http_body_requests_and_replies_are_raw() {
        let doc = parse(&[FILES]);
        let raw = json!({"*/*": {"schema": {"type": "string", "format": "binary"}}});
        // Request bodies: a body field, the whole message, a streamed upload.
        for (path, method) in [
            ("/v1/files/{name}", "put"),
            ("/v1/files:echo", "post"),
            ("/v1/files:upload", "post"),
        ] {
            let op = op(&doc, path, method);
            assert_eq!(op["requestBody"]["content"], raw, "{method} {path}");
        }
        let upload = op(&doc, "/v1/files:upload", "post");
        assert!(
            upload["requestBody"]["description"]
                .as_str()
                .unwrap()
                .contains("streamed"),
            "{upload:#}"
        );
        // The rest of a PUT with a raw body field still comes from the path and the query.
        let put = op(&doc, "/v1/files/{name}", "put");
        assert_eq!(param_names(put), ["name", "labels"]);
        assert_eq!(
            put["responses"]["200"]["content"]["application/json"]["schema"],
            reference("files.v1.PutReply")
        );
        // Replies: the output, a response_body field, a stream.
        for path in [
            "/v1/files/{name}",
            "/v1/files/{name}:stat",
            "/v1/files/{name}:download",
        ] {
            let op = op(&doc, path, "get");
            assert_eq!(op["responses"]["200"]["content"], raw, "{path}");
            assert_eq!(
                op["responses"]["default"]["content"]["application/json"]["schema"],
                reference(STATUS),
                "{path}: errors are still JSON"
            );
        }
        let download = op(&doc, "/v1/files/{name}:download", "get");
        assert!(
            download["responses"]["200"]["description"]
                .as_str()
                .unwrap()
                .contains("aborts"),
            "{download:#}"
        );
    }

    #[test]
    fn documents_pass_openapi_spec_validator() {
        let dir = std::env::temp_dir().join(format!("rzero-openapi-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut docs = generate(
            &[KITCHEN, PRESENCE, "greeter/v1/greeter.proto", FILES],
            false,
        );
        docs.extend(generate(&SHOP, false));
        docs.extend(generate(&SHOP, true));
        let mut paths = Vec::new();
        for (i, (name, text)) in docs.iter().enumerate() {
            let path = dir.join(format!("{i}-{}", name.replace('/', "_")));
            std::fs::write(&path, text).unwrap();
            paths.push(path);
        }
        let output = std::process::Command::new("python3")
            .args(["-m", "openapi_spec_validator"])
            .args(&paths)
            .output();
        std::fs::remove_dir_all(&dir).unwrap();
        let output = output.unwrap_or_else(|e| {
            panic!("cannot run python3 ({e}); pip install -r tests/python/requirements.txt")
        });
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !stderr.contains("No module named openapi_spec_validator"),
            "openapi-spec-validator is missing: pip install -r tests/python/requirements.txt"
        );
        assert!(output.status.success(), "{stdout}\n{stderr}");
        assert_eq!(stdout.matches(": OK").count(), paths.len(), "{stdout}");
    }
}
