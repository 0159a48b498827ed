//! JSON schemas of messages and enums, following the proto3 JSON mapping exactly as the
//! gateway writes it (its default `JsonOptions`), and proto comments as descriptions.
//!
//! - Keys are JSON names (lowerCamel, or `json_name`); properties in field-number order, the
//!   order the gateway writes them.
//! - 64-bit integers are strings (`format: int64` / `uint64`); `uint32`/`fixed32` are
//!   integers with `format: int64` and bounds (an `int32` client type would overflow);
//!   `bytes` is `format: byte` (standard base64); enums are string names.
//! - Maps are objects with `additionalProperties` (integer and bool keys are written as
//!   their decimal / `true`/`false` text: JSON keys are strings).
//! - Well-known types are inlined as their JSON form: Timestamp (`date-time`), Duration
//!   (`"1.5s"`), FieldMask (comma-separated lowerCamel paths), wrappers (their scalar),
//!   Struct (object), Value (any, `null` included), ListValue (array), Empty (object),
//!   NullValue (null). `google.protobuf.Any` and `google.rpc.Status` (the error body) are
//!   components written by hand, so they read the same whether or not the input imports
//!   them.
//! - Nullability belongs to the field, not the type: a field the gateway writes as `null`
//!   when unset (a singular message field, well-known types included, or a proto2 scalar or
//!   enum, outside any oneof) is `nullable: true` when its schema has a `type`, and
//!   `{"anyOf": [{"$ref": ...}, {"enum": [null]}]}` when it is a `$ref` ([`or_null`]). The
//!   same type as a list element, a map value, a oneof member, a whole reply, a request
//!   body or a query parameter is not nullable, and components never are, so recursive
//!   messages keep plain `$ref`s to themselves. A `response_body` reply has its own rule
//!   ([`Schemas::response_body`]).
//! - Every other message or enum is a component named by its full proto name
//!   (`greeter.v1.HelloRequest`): unique across packages, and recursive messages work through
//!   `$ref`.
//! - OpenAPI 3.0 ignores siblings of `$ref`, so a described message field that is never
//!   `null` is `{"allOf": [{"$ref": ...}], "description": ...}`; a nullable one carries its
//!   description next to its `anyOf`.
//! - Oneof members say so in their description (with emitted defaults, only the member that
//!   is set appears).

use std::collections::{BTreeMap, HashMap};

use prost_reflect::{
    DescriptorPool, EnumDescriptor, FieldDescriptor, Kind, MessageDescriptor, OneofDescriptor,
};

use super::json::Json;

/// The component name of the error body.
pub(crate) const STATUS: &str = "google.rpc.Status";
/// The component name of `google.protobuf.Any`.
pub(crate) const ANY: &str = "google.protobuf.Any";

/// Collects the components a document refers to, and reads comments.
#[derive(Debug)]
pub(crate) struct Schemas {
    pool: DescriptorPool,
    /// Components written so far (or being written), by name.
    components: BTreeMap<String, Json>,
    /// Comments by file, then by source-info path.
    comments: HashMap<String, HashMap<Vec<i32>, String>>,
}

impl Schemas {
    pub(crate) fn new(pool: &DescriptorPool) -> Self {
        Self {
            pool: pool.clone(),
            components: BTreeMap::new(),
            comments: HashMap::new(),
        }
    }

    /// The components, sorted by name.
    pub(crate) fn into_components(self) -> BTreeMap<String, Json> {
        self.components
    }

    /// The comment of the element at `path` in `file` (leading, else trailing), cleaned up.
    pub(crate) fn comment(&mut self, file: &str, path: &[i32]) -> Option<String> {
        if !self.comments.contains_key(file) {
            let index = self
                .pool
                .get_file_by_name(file)
                .and_then(|f| f.file_descriptor_proto().source_code_info.clone())
                .map(|info| {
                    info.location
                        .into_iter()
                        .filter_map(|loc| {
                            let text = loc
                                .leading_comments
                                .as_deref()
                                .filter(|c| !c.trim().is_empty())
                                .or(loc.trailing_comments.as_deref())
                                .map(clean_comment)
                                .filter(|c| !c.is_empty())?;
                            Some((loc.path, text))
                        })
                        .collect()
                })
                .unwrap_or_default();
            self.comments.insert(file.to_owned(), index);
        }
        self.comments.get(file)?.get(path).cloned()
    }

    /// The schema of a field's value as it appears in its message's JSON (lists, maps and
    /// all), with its comment as the description; `null` is allowed when the gateway writes
    /// the field as `null` when it is unset ([`null_when_unset`]).
    pub(crate) fn field(&mut self, field: &FieldDescriptor) -> Json {
        let schema = self.field_value(field);
        let schema = if null_when_unset(field) {
            or_null(schema)
        } else {
            schema
        };
        self.describe_field(schema, field)
    }

    /// The schema of a `response_body` field as the whole reply, which the gateway writes
    /// even when the field is unset, as grpc-gateway does: an unset message as an empty one
    /// of its type (`{}` for `Any`, which its component allows), so `null` only for a scalar
    /// or enum with presence (proto3 `optional`, proto2, a oneof member) and for
    /// `google.protobuf.Value` (any JSON value).
    pub(crate) fn response_body(&mut self, field: &FieldDescriptor) -> Json {
        let schema = self.field_value(field);
        let schema = if field.is_list() || field.is_map() || !field.supports_presence() {
            schema
        } else {
            match field.kind() {
                Kind::Message(_) => schema,
                _ => or_null(schema),
            }
        };
        self.describe_field(schema, field)
    }

    /// The schema of a request body that is one field (`body: "field"`): the field's value,
    /// described. Not nullable: the gateway reads a `null` body as the field unset, as it
    /// reads `null` for any field, a leniency the schemas leave unsaid.
    pub(crate) fn body(&mut self, field: &FieldDescriptor) -> Json {
        let schema = self.field_value(field);
        self.describe_field(schema, field)
    }

    /// `schema` with the field's comment, and the oneof it belongs to, as its description.
    fn describe_field(&mut self, schema: Json, field: &FieldDescriptor) -> Json {
        let mut description = self
            .comment(field.parent_file().name(), field.path())
            .unwrap_or_default();
        if let Some(oneof) = field.containing_oneof().filter(|o| !o.is_synthetic()) {
            append(&mut description, &oneof_note(&oneof));
        }
        describe(schema, &description)
    }

    /// A field's value schema, without its description.
    pub(crate) fn field_value(&mut self, field: &FieldDescriptor) -> Json {
        if field.is_map() {
            let Kind::Message(entry) = field.kind() else {
                return Json::empty();
            };
            // Keys of any type are JSON strings (`"1"`, `"true"`).
            let value = self.kind(&entry.map_entry_value_field().kind());
            Json::object([
                ("type", Json::from("object")),
                ("additionalProperties", value),
            ])
        } else if field.is_list() {
            Json::object([
                ("type", Json::from("array")),
                ("items", self.kind(&field.kind())),
            ])
        } else {
            self.kind(&field.kind())
        }
    }

    /// The schema of one value of a kind: inline for scalars and well-known types, `$ref`
    /// otherwise.
    pub(crate) fn kind(&mut self, kind: &Kind) -> Json {
        match kind {
            Kind::Enum(e) if e.full_name() == "google.protobuf.NullValue" => {
                Json::object([("description", Json::from("Always `null`."))])
            }
            Kind::Enum(e) => self.enum_ref(e),
            Kind::Message(m) => self.message(m),
            scalar_kind => scalar(scalar_kind),
        }
    }

    /// A message's schema: a well-known type's JSON form, or a `$ref` to its component.
    pub(crate) fn message(&mut self, message: &MessageDescriptor) -> Json {
        if let Some(schema) = self.well_known(message) {
            return schema;
        }
        let name = message.full_name().to_owned();
        if !self.components.contains_key(&name) {
            // Reserve the name first: recursive messages refer back to it while it is built.
            self.components.insert(name.clone(), Json::empty());
            let schema = self.message_object(message, &[]);
            self.components.insert(name.clone(), schema);
        }
        reference(&name)
    }

    /// The object schema of a message, leaving out the fields at `excluded` (dotted proto
    /// field paths, e.g. path-bound fields of a `body: "*"` request). Messages that lose a
    /// nested field are inlined (without it).
    pub(crate) fn message_object(
        &mut self,
        message: &MessageDescriptor,
        excluded: &[&str],
    ) -> Json {
        let mut properties = Vec::new();
        for field in message.fields() {
            let name = field.name();
            if excluded.contains(&name) {
                continue;
            }
            let nested: Vec<&str> = excluded
                .iter()
                .filter_map(|path| path.strip_prefix(name)?.strip_prefix('.'))
                .collect();
            let schema = match field.kind() {
                Kind::Message(inner)
                    if !nested.is_empty() && !field.is_list() && !field.is_map() =>
                {
                    let object = self.message_object(&inner, &nested);
                    let object = if null_when_unset(&field) {
                        or_null(object)
                    } else {
                        object
                    };
                    self.describe_field(object, &field)
                }
                _ => self.field(&field),
            };
            properties.push((field.json_name().to_owned(), schema));
        }
        let description = self
            .comment(message.parent_file().name(), message.path())
            .unwrap_or_default();
        let object = Json::object([("type", Json::from("object"))]);
        let object = describe(object, &description);
        if properties.is_empty() {
            object
        } else {
            object.with("properties", Json::Object(properties))
        }
    }

    fn enum_ref(&mut self, e: &EnumDescriptor) -> Json {
        let name = e.full_name().to_owned();
        if !self.components.contains_key(&name) {
            let file = e.parent_file();
            let mut description = self.comment(file.name(), e.path()).unwrap_or_default();
            let mut values = Vec::new();
            let mut notes = String::new();
            for value in e.values() {
                values.push(Json::from(value.name()));
                if let Some(comment) = self.comment(file.name(), value.path()) {
                    notes.push_str(&format!("\n- `{}`: {}", value.name(), one_line(&comment)));
                }
            }
            append(&mut description, notes.trim_start());
            let schema = describe(typed("string", None), &description).with("enum", values.into());
            self.components.insert(name.clone(), schema);
        }
        reference(&name)
    }

    /// The JSON form of the well-known types (and the error body), `None` for others.
    fn well_known(&mut self, message: &MessageDescriptor) -> Option<Json> {
        // A wrapper is its scalar; `null` when unset, as any message field ([`or_null`]).
        let wrapper = |kind: Kind| -> Json { scalar(&kind) };
        Some(match message.full_name() {
            "google.protobuf.Timestamp" => typed("string", Some("date-time")).with(
                "description",
                Json::from("RFC 3339, always `Z`-normalized, e.g. `2017-01-15T01:30:15.01Z`."),
            ),
            "google.protobuf.Duration" => typed("string", None)
                .with(
                    "description",
                    Json::from("Seconds with up to 9 fractional digits, ending in `s`, e.g. `1.5s`."),
                )
                .with("pattern", Json::from(r"^-?[0-9]+(\.[0-9]{1,9})?s$")),
            "google.protobuf.FieldMask" => typed("string", None).with(
                "description",
                Json::from("Comma-separated field paths in lowerCamelCase, e.g. `displayName,address.city`."),
            ),
            "google.protobuf.DoubleValue" => wrapper(Kind::Double),
            "google.protobuf.FloatValue" => wrapper(Kind::Float),
            "google.protobuf.Int64Value" => wrapper(Kind::Int64),
            "google.protobuf.UInt64Value" => wrapper(Kind::Uint64),
            "google.protobuf.Int32Value" => wrapper(Kind::Int32),
            "google.protobuf.UInt32Value" => wrapper(Kind::Uint32),
            "google.protobuf.BoolValue" => wrapper(Kind::Bool),
            "google.protobuf.StringValue" => wrapper(Kind::String),
            "google.protobuf.BytesValue" => wrapper(Kind::Bytes),
            "google.protobuf.Struct" => Json::object([
                ("type", Json::from("object")),
                ("additionalProperties", Json::empty()),
                ("description", Json::from("Any JSON object.")),
            ]),
            // No `type`: any value, `null` included (OpenAPI 3.0.3: an untyped schema
            // allows `null`).
            "google.protobuf.Value" => Json::object([(
                "description",
                Json::from("Any JSON value, `null` included."),
            )]),
            "google.protobuf.ListValue" => Json::object([
                ("type", Json::from("array")),
                ("items", Json::empty()),
                ("description", Json::from("Any JSON array.")),
            ]),
            "google.protobuf.Empty" => typed("object", None),
            ANY => {
                self.ensure_any();
                reference(ANY)
            }
            STATUS => {
                self.ensure_status();
                reference(STATUS)
            }
            _ => return None,
        })
    }

    /// `google.protobuf.Any`. `@type` is not `required`: an empty `Any` (no type URL, no
    /// value; a Rust server's `Any::default()`) is `{}`, as protojson writes and reads it,
    /// in any place an `Any` can be (the gateway's `json/empty_any.rs`). Generated clients
    /// then read `{}` too, with `@type` optional.
    fn ensure_any(&mut self) {
        self.components.entry(ANY.to_owned()).or_insert_with(|| {
            Json::object([
                ("type", Json::from("object")),
                (
                    "description",
                    Json::from(
                        "A message of any type: `@type` names it, the other keys are its \
                         fields in JSON (a well-known type with a scalar JSON form puts it \
                         under `value`). `{}` is an empty `Any` (no type, no value).",
                    ),
                ),
                (
                    "properties",
                    Json::object([(
                        "@type",
                        typed("string", None).with(
                            "description",
                            Json::from("e.g. `type.googleapis.com/google.rpc.ErrorInfo`"),
                        ),
                    )]),
                ),
                ("additionalProperties", Json::empty()),
            ])
        });
    }

    /// The error body, which every failed call gets (`google.rpc.Status` in JSON).
    pub(crate) fn ensure_status(&mut self) {
        self.ensure_any();
        self.components.entry(STATUS.to_owned()).or_insert_with(|| {
            Json::object([
                ("type", Json::from("object")),
                (
                    "description",
                    Json::from(
                        "The error body of every failed call: the gRPC status. The HTTP \
                         status is mapped from `code` as in `google/rpc/code.proto`.",
                    ),
                ),
                (
                    "properties",
                    Json::object([
                        (
                            "code",
                            typed("integer", Some("int32")).with(
                                "description",
                                Json::from("The gRPC status code (`google.rpc.Code`), e.g. 5 for NOT_FOUND."),
                            ),
                        ),
                        (
                            "message",
                            typed("string", None)
                                .with("description", Json::from("A developer-facing error message.")),
                        ),
                        (
                            "details",
                            Json::object([
                                ("type", Json::from("array")),
                                ("items", reference(ANY)),
                                (
                                    "description",
                                    Json::from("Error details such as `google.rpc.ErrorInfo`."),
                                ),
                            ]),
                        ),
                    ]),
                ),
            ])
        });
    }
}

/// `{"$ref": "#/components/schemas/<name>"}`.
pub(crate) fn reference(name: &str) -> Json {
    Json::object([("$ref", Json::from(format!("#/components/schemas/{name}")))])
}

/// Whether the gateway writes `field` as `null` when it is unset (with unpopulated fields
/// emitted, its default): the fields with presence outside any oneof, i.e. singular message
/// fields (well-known types included) and proto2 scalars, as protojson's `EmitUnpopulated`
/// writes them (`rzero`'s `gateway/json/nulls.rs`, `null_if_unset`). Unset oneof members
/// and proto3 `optional` fields (in a synthetic oneof) are left out instead.
fn null_when_unset(field: &FieldDescriptor) -> bool {
    !field.is_list()
        && !field.is_map()
        && field.containing_oneof().is_none()
        && field.supports_presence()
}

/// `schema` or `null`. A typed schema gets `nullable: true`. A `$ref` becomes
/// `{"anyOf": [{"$ref": ...}, {"enum": [null]}]}`: OpenAPI 3.0 ignores a `$ref`'s siblings,
/// and 3.0.3 gives `nullable` effect only next to a `type` in the same schema, so
/// `{"allOf": [{"$ref": ...}], "nullable": true}` would still refuse `null` (as
/// `openapi-schema-validator` does). openapi-generator's normalizer (`SIMPLIFY_ONEOF_ANYOF`)
/// turns this `anyOf` into a nullable reference, and progenitor reads the `enum: [null]`
/// branch as JSON Schema's `null` type. An untyped schema (`Value`) already allows `null`.
pub(crate) fn or_null(schema: Json) -> Json {
    if schema.get("$ref").is_some() {
        let null = Json::object([("enum", Json::from(vec![Json::Null]))]);
        Json::object([("anyOf", Json::from(vec![schema, null]))])
    } else if schema.get("type").is_some() {
        schema.with("nullable", Json::from(true))
    } else {
        schema
    }
}

/// Adds a description; a `$ref` is wrapped in `allOf` first (OpenAPI 3.0 ignores `$ref`
/// siblings). An empty description changes nothing.
pub(crate) fn describe(schema: Json, description: &str) -> Json {
    if description.is_empty() {
        return schema;
    }
    let schema = if schema.get("$ref").is_some() {
        Json::object([("allOf", Json::from(vec![schema]))])
    } else {
        schema
    };
    let description = match schema.get("description") {
        // A well-known type's own note goes after the field's comment.
        Some(Json::Str(own)) => format!("{description}\n\n{own}"),
        _ => description.to_owned(),
    };
    schema.with("description", Json::from(description))
}

/// The schema of a scalar kind (never a `$ref`).
fn scalar(kind: &Kind) -> Json {
    match kind {
        Kind::Double => typed("number", Some("double")),
        Kind::Float => typed("number", Some("float")),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => typed("integer", Some("int32")),
        Kind::Uint32 | Kind::Fixed32 => typed("integer", Some("int64"))
            .with("minimum", Json::from(0))
            .with("maximum", Json::from(i64::from(u32::MAX))),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => typed("string", Some("int64")),
        Kind::Uint64 | Kind::Fixed64 => typed("string", Some("uint64")),
        Kind::Bool => typed("boolean", None),
        Kind::Bytes => typed("string", Some("byte")),
        Kind::String | Kind::Enum(_) | Kind::Message(_) => typed("string", None),
    }
}

fn typed(ty: &str, format: Option<&str>) -> Json {
    let schema = Json::object([("type", Json::from(ty))]);
    match format {
        Some(format) => schema.with("format", Json::from(format)),
        None => schema,
    }
}

fn oneof_note(oneof: &OneofDescriptor) -> String {
    let members: Vec<String> = oneof
        .fields()
        .map(|f| format!("`{}`", f.json_name()))
        .collect();
    format!(
        "Member of the oneof `{}`: at most one of {} is set.",
        oneof.name(),
        members.join(", ")
    )
}

fn append(description: &mut String, more: &str) {
    if more.is_empty() {
        return;
    }
    if !description.is_empty() {
        description.push_str("\n\n");
    }
    description.push_str(more);
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A proto comment as text: each line without the one space after `//`, trailing blanks
/// and surrounding empty lines dropped.
pub(crate) fn clean_comment(raw: &str) -> String {
    let lines: Vec<&str> = raw
        .lines()
        .map(|line| line.strip_prefix(' ').unwrap_or(line).trim_end())
        .collect();
    lines.join("\n").trim().to_owned()
}
