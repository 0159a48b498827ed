//! The proto3 JSON mapping, through `prost-reflect`'s serde support.

#[macro_use]
mod forward;
mod empty_any;
mod non_finite;
mod nulls;

use std::sync::Arc;

use empty_any::{EmptyAnys, ReadPlan};
use non_finite::NonFinite;
use nulls::{Nulls, Plan};
use prost_reflect::{
    DeserializeOptions, DynamicMessage, FieldDescriptor, MessageDescriptor, ReflectMessage as _,
    SerializeOptions,
};
use serde::Serializer;
use serde::ser::Error as _;

/// How messages are written to and read from JSON. The defaults are grpc-gateway v2's:
/// lowerCamelCase (`json_name`) keys, unpopulated fields emitted, enums by name, 64-bit
/// integers as strings, unknown input keys ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JsonOptions {
    emit_unpopulated: bool,
    proto_field_names: bool,
    enums_as_numbers: bool,
    reject_unknown_fields: bool,
}

impl Default for JsonOptions {
    fn default() -> Self {
        JsonOptions {
            emit_unpopulated: true,
            proto_field_names: false,
            enums_as_numbers: false,
            reject_unknown_fields: false,
        }
    }
}

impl JsonOptions {
    /// The defaults (see the type docs).
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether unpopulated fields are written (`true`, grpc-gateway v2) or left out
    /// (`false`, protobuf's own JSON default).
    ///
    /// Written as protojson's `EmitUnpopulated` writes them, which grpc-gateway uses: every
    /// field outside a oneof (proto3 `optional` fields are in one) is there, scalars at
    /// their default, lists as `[]`, maps as `{}`, and unset singular message fields
    /// (well-known types included: `Timestamp`, wrappers, `Struct`, ...) and unset proto2
    /// scalars as `null`, at every depth (lists, map values, `Any` payloads). Unset oneof
    /// members and `optional` fields are left out. Clients reading protojson see no
    /// difference between a `null` and a missing key; a `null` reads back as unset (for a
    /// `google.protobuf.Value` field, as the `NullValue`, as the mapping says).
    #[must_use]
    pub fn emit_unpopulated(mut self, yes: bool) -> Self {
        self.emit_unpopulated = yes;
        self
    }

    /// Whether output keys are proto field names (`page_size`) instead of JSON names
    /// (`pageSize`). Input always accepts both.
    #[must_use]
    pub fn proto_field_names(mut self, yes: bool) -> Self {
        self.proto_field_names = yes;
        self
    }

    /// Whether enums are written as numbers instead of names. Input always accepts both.
    #[must_use]
    pub fn enums_as_numbers(mut self, yes: bool) -> Self {
        self.enums_as_numbers = yes;
        self
    }

    /// Whether an unknown key in a request body is a 400 instead of being ignored.
    #[must_use]
    pub fn reject_unknown_fields(mut self, yes: bool) -> Self {
        self.reject_unknown_fields = yes;
        self
    }

    pub(crate) fn serialize_options(self) -> SerializeOptions {
        SerializeOptions::new()
            .skip_default_fields(!self.emit_unpopulated)
            .use_proto_field_name(self.proto_field_names)
            .use_enum_numbers(self.enums_as_numbers)
    }

    fn deserialize_options(self) -> DeserializeOptions {
        DeserializeOptions::new().deny_unknown_fields(self.reject_unknown_fields)
    }

    /// A writer for `descriptor` messages with these options: computes once (per route)
    /// what writing them needs, so a message type that cannot hold a field written as `null`
    /// or an `Any` costs nothing for it.
    pub(crate) fn writer(self, descriptor: &MessageDescriptor) -> JsonWriter {
        let nulls = if self.emit_unpopulated {
            Plan::new(descriptor, self.proto_field_names).map(Arc::new)
        } else {
            None
        };
        JsonWriter {
            options: self,
            nulls,
            empty_any: empty_any::Plan::new(descriptor).map(Arc::new),
        }
    }

    /// A reader for `descriptor` messages with these options: computes once (per route) what
    /// reading `{}` as an empty `Any` needs, so a message type that cannot hold an `Any`
    /// costs nothing for it.
    pub(crate) fn reader(self, descriptor: &MessageDescriptor) -> JsonReader {
        JsonReader {
            options: self,
            descriptor: descriptor.clone(),
            empty_any: ReadPlan::new(descriptor).map(Arc::new),
        }
    }

    /// [`JsonWriter::write_json`] with a writer made for this message.
    #[cfg(test)]
    pub(crate) fn write_json(self, message: &DynamicMessage) -> Result<Vec<u8>, String> {
        self.writer(&message.descriptor()).write_json(message)
    }

    /// [`JsonWriter::write_field_json`] with a writer made for this message.
    #[cfg(test)]
    pub(crate) fn write_field_json(
        self,
        message: DynamicMessage,
        field: &FieldDescriptor,
    ) -> Result<Vec<u8>, String> {
        self.writer(&message.descriptor())
            .write_field_json(message, field)
    }

    /// [`JsonReader::read_json`] with a reader made for `descriptor`.
    #[cfg(test)]
    pub(crate) fn read_json(
        self,
        descriptor: MessageDescriptor,
        body: &[u8],
    ) -> Result<DynamicMessage, String> {
        self.reader(&descriptor).read_json(body)
    }

    /// [`JsonReader::read_field_json`] with a reader made for `descriptor`.
    #[cfg(test)]
    pub(crate) fn read_field_json(
        self,
        descriptor: MessageDescriptor,
        path: &[FieldDescriptor],
        body: &[u8],
    ) -> Result<DynamicMessage, String> {
        self.reader(&descriptor).read_field_json(path, body)
    }
}

/// Reads messages of one type from JSON ([`JsonOptions::reader`]); cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct JsonReader {
    options: JsonOptions,
    descriptor: MessageDescriptor,
    /// For a type that can hold an `Any`: how to read `{}` as an empty one
    /// ([`empty_any`]).
    empty_any: Option<Arc<ReadPlan>>,
}

impl JsonReader {
    /// Reads a whole message from a JSON body.
    pub(crate) fn read_json(&self, body: &[u8]) -> Result<DynamicMessage, String> {
        let mut deserializer = serde_json::Deserializer::from_slice(body);
        let read = DynamicMessage::deserialize_with_options(
            self.descriptor.clone(),
            &mut deserializer,
            &self.options.deserialize_options(),
        )
        .and_then(|message| deserializer.end().map(|()| message));
        match (read, &self.empty_any) {
            (Ok(message), _) => Ok(message),
            (Err(e), None) => Err(e.to_string()),
            (Err(e), Some(plan)) => {
                let retried = serde_json::from_slice(body)
                    .ok()
                    .and_then(|mut json| self.read_empty_anys(plan, &mut json));
                retried.unwrap_or_else(|| Err(e.to_string()))
            }
        }
    }

    /// Reads the body into the field at `path` (proto names) of a new message: the JSON value
    /// is wrapped in objects keyed by the path and read as the whole message, so every field
    /// kind (scalars, repeated, maps, well-known types) reads as it would inside a message.
    pub(crate) fn read_field_json(
        &self,
        path: &[FieldDescriptor],
        body: &[u8],
    ) -> Result<DynamicMessage, String> {
        let mut json: serde_json::Value =
            serde_json::from_slice(body).map_err(|e| e.to_string())?;
        for field in path.iter().rev() {
            let mut object = serde_json::Map::with_capacity(1);
            object.insert(field.name().to_owned(), json);
            json = serde_json::Value::Object(object);
        }
        let read = DynamicMessage::deserialize_with_options(
            self.descriptor.clone(),
            &json,
            &self.options.deserialize_options(),
        );
        match (read, &self.empty_any) {
            (Ok(message), _) => Ok(message),
            (Err(e), None) => Err(e.to_string()),
            (Err(e), Some(plan)) => self
                .read_empty_anys(plan, &mut json)
                .unwrap_or_else(|| Err(e.to_string())),
        }
    }

    /// After a failed read: reads `json` again with its empty `Any`s (`{}`) as stand-ins, and
    /// empties them in the message read; `None` if it has none (the first error stands).
    fn read_empty_anys(
        &self,
        plan: &ReadPlan,
        json: &mut serde_json::Value,
    ) -> Option<Result<DynamicMessage, String>> {
        if !plan.rewrite(json, !self.options.reject_unknown_fields) {
            return None;
        }
        let read = DynamicMessage::deserialize_with_options(
            self.descriptor.clone(),
            &*json,
            &self.options.deserialize_options(),
        );
        Some(
            read.map(|message| plan.restore(message))
                .map_err(|e| e.to_string()),
        )
    }
}

/// Writes messages of one type as JSON ([`JsonOptions::writer`]); cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct JsonWriter {
    options: JsonOptions,
    /// With unpopulated fields emitted, for a type that can hold fields to write as `null`:
    /// how to find them ([`Nulls`]).
    nulls: Option<Arc<Plan>>,
    /// For a type that can hold an `Any`: where to look for empty ones, written as `{}`
    /// ([`empty_any`]).
    empty_any: Option<Arc<empty_any::Plan>>,
}

impl JsonWriter {
    /// Serializes `message` into `serializer`, as every message the gateway writes is: through
    /// [`NonFinite`] (non-finite wrapper values as strings, not `null`), through [`Nulls`]
    /// when unset message fields are to be written as `null`, and, when it holds an empty
    /// `Any`, with stand-ins for them that [`EmptyAnys`] writes as `{}`.
    fn serialize<S: Serializer>(
        &self,
        message: &DynamicMessage,
        serializer: S,
        options: &SerializeOptions,
    ) -> Result<S::Ok, S::Error> {
        let stand_ins = match &self.empty_any {
            None => None,
            Some(plan) => plan.stand_ins(message).map_err(S::Error::custom)?,
        };
        match &stand_ins {
            None => self.serialize_as_is(message, serializer, options),
            Some(message) => self.serialize_as_is(message, EmptyAnys(serializer), options),
        }
    }

    /// [`serialize`](Self::serialize) after the stand-ins.
    fn serialize_as_is<S: Serializer>(
        &self,
        message: &DynamicMessage,
        serializer: S,
        options: &SerializeOptions,
    ) -> Result<S::Ok, S::Error> {
        let serializer = NonFinite(serializer);
        match &self.nulls {
            None => message.serialize_with_options(serializer, options),
            Some(plan) => message.serialize_with_options(Nulls::new(plan, serializer), options),
        }
    }

    /// Writes `message` as JSON. Every message the gateway writes (replies, stream items,
    /// error bodies) goes through here or [`write_field_json`](Self::write_field_json).
    pub(crate) fn write_json(&self, message: &DynamicMessage) -> Result<Vec<u8>, String> {
        let mut out = Vec::with_capacity(128);
        let mut serializer = serde_json::Serializer::new(&mut out);
        self.serialize(message, &mut serializer, &self.options.serialize_options())
            .map_err(|e| e.to_string())?;
        Ok(out)
    }

    /// Writes one field of `message` as JSON (`response_body`).
    ///
    /// An unset message field is written as an empty message of its type, with or without
    /// unpopulated fields: grpc-gateway hands the field's nil message to protojson, which
    /// writes it as an empty one (`{"text": "", "child": null}`, or `{}` without unpopulated
    /// fields; `"1970-01-01T00:00:00Z"` for a `Timestamp`), never `null`. An unset `Any` is
    /// `{}` as protojson writes an empty one (`prost-reflect` cannot write an `Any` without a
    /// type). An unset `Value` is `null`, where protojson fails on a `Value` without a kind
    /// (grpc-gateway answers 500). Unset scalars with presence (proto3 `optional`, proto2,
    /// oneof members) are `null`, as grpc-gateway writes a nil `optional` (an unset oneof
    /// member makes its generated `XXX_ResponseBody` panic).
    pub(crate) fn write_field_json(
        &self,
        mut message: DynamicMessage,
        field: &FieldDescriptor,
    ) -> Result<Vec<u8>, String> {
        // Keep only that field, write the message, and take the field's value out of it.
        let value = message.take_field(field);
        let mut message = DynamicMessage::new(message.descriptor());
        match (value, field.kind()) {
            (Some(value), _) => message.set_field(field, value),
            (None, prost_reflect::Kind::Message(kind)) if !field.is_list() && !field.is_map() => {
                match kind.full_name() {
                    "google.protobuf.Any" => return Ok(b"{}".to_vec()),
                    "google.protobuf.Value" => {}
                    _ => message.set_field(
                        field,
                        prost_reflect::Value::Message(DynamicMessage::new(kind)),
                    ),
                }
            }
            (None, _) => {}
        }
        let key = if self.options.proto_field_names {
            field.name()
        } else {
            field.json_name()
        };
        let take = |options: &SerializeOptions| -> Result<Option<serde_json::Value>, String> {
            match self.serialize(&message, serde_json::value::Serializer, options) {
                Ok(serde_json::Value::Object(mut map)) => Ok(map.remove(key)),
                Ok(_) => Ok(None),
                Err(e) => Err(e.to_string()),
            }
        };
        // The options as they are, so that what the field holds follows them (no defaults
        // inside it when unpopulated fields are left out); a field at its default is then
        // missing, and is written anyway (`0`, `""`, `[]`), as grpc-gateway writes the
        // field's own value whatever it is.
        let options = self.options.serialize_options();
        let value = match take(&options)? {
            Some(value) => value,
            None if self.options.emit_unpopulated => serde_json::Value::Null,
            None => take(&options.skip_default_fields(false))?.unwrap_or(serde_json::Value::Null),
        };
        serde_json::to_vec(&value).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use prost::Message as _;
    use prost_reflect::{DescriptorPool, DynamicMessage, MapKey, ReflectMessage as _, Value};
    use serde_json::json;

    use super::JsonOptions;

    fn pool() -> DescriptorPool {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/gateway/testdata");
        let mut compiler = protox::Compiler::new([dir]).expect("include dir");
        compiler.include_imports(true);
        for file in ["json.proto", "nulls.proto", "nulls2.proto"] {
            compiler.open_file(file).expect("test proto compiles");
        }
        compiler.descriptor_pool()
    }

    /// A `google.protobuf.{Double,Float}Value`.
    fn wrapper(pool: &DescriptorPool, name: &str, value: Value) -> Value {
        let mut message = DynamicMessage::new(pool.get_message_by_name(name).unwrap());
        message.set_field_by_name("value", value);
        Value::Message(message)
    }

    /// `Floats` with `x` in every floating-point field, wrapped and not, at every depth.
    fn floats(pool: &DescriptorPool, x: f64) -> DynamicMessage {
        let double = || wrapper(pool, "google.protobuf.DoubleValue", Value::F64(x));
        let float = || wrapper(pool, "google.protobuf.FloatValue", Value::F32(x as f32));
        let descriptor = pool.get_message_by_name("gw.json.Floats").unwrap();
        let mut message = DynamicMessage::new(descriptor.clone());
        message.set_field_by_name("f_double", Value::F64(x));
        message.set_field_by_name("f_float", Value::F32(x as f32));
        message.set_field_by_name("w_double", double());
        message.set_field_by_name("w_float", float());
        message.set_field_by_name("doubles", Value::List(vec![double(), double()]));
        message.set_field_by_name(
            "floats",
            Value::Map([(MapKey::String("k".into()), float())].into()),
        );
        let mut nested = DynamicMessage::new(descriptor);
        nested.set_field_by_name("w_double", double());
        message.set_field_by_name("nested", Value::Message(nested));
        let Value::Message(packed) = double() else {
            unreachable!()
        };
        let mut any = DynamicMessage::new(pool.get_message_by_name("google.protobuf.Any").unwrap());
        any.set_field_by_name(
            "type_url",
            Value::String("type.googleapis.com/google.protobuf.DoubleValue".into()),
        );
        any.set_field_by_name("value", Value::Bytes(packed.encode_to_vec().into()));
        message.set_field_by_name("any", Value::Message(any));
        message
    }

    /// What [`floats`] writes, `x` being the JSON for the number.
    fn floats_json(x: serde_json::Value) -> serde_json::Value {
        json!({
            "fDouble": x,
            "fFloat": x,
            "wDouble": x,
            "wFloat": x,
            "doubles": [x, x],
            "floats": {"k": x},
            "nested": {"wDouble": x},
            "any": {"@type": "type.googleapis.com/google.protobuf.DoubleValue", "value": x},
        })
    }

    fn write(message: &DynamicMessage) -> serde_json::Value {
        let bytes = JsonOptions::new()
            .emit_unpopulated(false)
            .write_json(message)
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn non_finite_wrappers_are_strings_like_plain_fields() {
        let pool = pool();
        let cases = [
            (f64::NAN, "NaN"),
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
        ];
        for (x, text) in cases {
            let message = floats(&pool, x);
            assert_eq!(write(&message), floats_json(json!(text)), "{text}");

            // One field as the body (`response_body`), through `serde_json::Value`.
            for field in ["w_double", "w_float", "f_double", "doubles"] {
                let field = message.descriptor().get_field_by_name(field).unwrap();
                let bytes = JsonOptions::new()
                    .write_field_json(message.clone(), &field)
                    .unwrap();
                let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                let expected = if field.is_list() {
                    json!([text, text])
                } else {
                    json!(text)
                };
                assert_eq!(value, expected, "{text}: {}", field.name());
            }

            // The strings read back as the numbers.
            let json = serde_json::to_vec(&write(&message)).unwrap();
            let read = JsonOptions::new()
                .read_json(message.descriptor(), &json)
                .unwrap();
            let same = |value: &Value| match value {
                Value::F64(v) => v.to_bits() == x.to_bits() || (v.is_nan() && x.is_nan()),
                Value::F32(v) => f64::from(*v) == x || (v.is_nan() && x.is_nan()),
                other => panic!("not a float: {other:?}"),
            };
            // A wrapper's number, down a path of message fields.
            let wrapped = |path: &[&str]| {
                let mut message = read.clone();
                for name in path {
                    let field = message.get_field_by_name(name).unwrap();
                    message = field.as_message().unwrap().clone();
                }
                message.get_field_by_name("value").unwrap().into_owned()
            };
            for field in ["f_double", "f_float"] {
                assert!(
                    same(&read.get_field_by_name(field).unwrap()),
                    "{text}: {field}"
                );
            }
            for path in [&["w_double"][..], &["w_float"], &["nested", "w_double"]] {
                let value = wrapped(path);
                assert!(same(&value), "{text}: {path:?}: {value:?}");
            }
            // And the whole message writes the same again.
            assert_eq!(write(&read), floats_json(json!(text)), "{text}: again");
        }
    }

    #[test]
    fn finite_wrappers_stay_numbers() {
        let pool = pool();
        let message = floats(&pool, -2.5);
        assert_eq!(write(&message), floats_json(json!(-2.5)));
        let field = message.descriptor().get_field_by_name("w_float").unwrap();
        let bytes = JsonOptions::new()
            .write_field_json(message, &field)
            .unwrap();
        assert_eq!(bytes, b"-2.5");
    }

    /// The mapping makes a non-finite `google.protobuf.Value` number an error, and so does
    /// `prost-reflect`: the gateway answers with an error, not with a string or `null`.
    #[test]
    fn a_non_finite_struct_value_is_an_error() {
        let pool = pool();
        let mut message = DynamicMessage::new(pool.get_message_by_name("gw.json.Floats").unwrap());
        let mut value =
            DynamicMessage::new(pool.get_message_by_name("google.protobuf.Value").unwrap());
        value.set_field_by_name("number_value", Value::F64(f64::NAN));
        message.set_field_by_name("value", Value::Message(value));
        let error = JsonOptions::new().write_json(&message).unwrap_err();
        assert!(error.contains("non-finite"), "{error}");
    }

    /// `json` (any form the mapping reads) as a `name` message.
    fn read(pool: &DescriptorPool, name: &str, json: serde_json::Value) -> DynamicMessage {
        let descriptor = pool.get_message_by_name(name).unwrap();
        JsonOptions::new()
            .read_json(descriptor, json.to_string().as_bytes())
            .unwrap()
    }

    fn write_with(options: JsonOptions, message: &DynamicMessage) -> serde_json::Value {
        serde_json::from_slice(&options.write_json(message).unwrap()).unwrap()
    }

    /// An unset `gw.nulls.Node` with unpopulated fields emitted: message fields (well-known
    /// types too) are `null`; the oneof and the `optional` fields are left out.
    fn empty_node() -> serde_json::Value {
        json!({
            "name": "",
            "child": null,
            "leaf": null,
            "children": [],
            "byName": {},
            "when": null,
            "count": null,
            "doc": null,
            "any": null,
            "value": null,
            "custom": null,
        })
    }

    /// `empty_node()` with `fields` replaced.
    fn node_with(fields: serde_json::Value) -> serde_json::Value {
        let mut node = empty_node();
        for (key, value) in fields.as_object().unwrap() {
            node[key] = value.clone();
        }
        node
    }

    #[test]
    fn unset_message_fields_are_null_at_every_depth() {
        let pool = pool();
        let node = |json| read(&pool, "gw.nulls.Node", json);
        assert_eq!(
            write_with(JsonOptions::new(), &node(json!({}))),
            empty_node()
        );

        // Nested, in a list, as a map value; set fields unchanged, a `Leaf` (which cannot
        // hold a `null`) as prost-reflect writes it.
        let message = node(json!({
            "name": "root",
            "child": {"child": {"name": "grandchild"}},
            "leaf": {"text": "t"},
            "children": [{}, {"leaf": {}}],
            "byName": {"k": {"name": "v"}},
        }));
        let leaf = json!({
            "text": "t",
            "numbers": [],
            "labels": {},
            "flats": [],
            "byId": {},
        });
        let expected = node_with(json!({
            "name": "root",
            "child": node_with(json!({"child": node_with(json!({"name": "grandchild"}))})),
            "leaf": leaf,
            "children": [empty_node(), node_with(json!({"leaf": {
                "text": "", "numbers": [], "labels": {}, "flats": [], "byId": {}
            }}))],
            "byName": {"k": node_with(json!({"name": "v"}))},
        }));
        assert_eq!(write_with(JsonOptions::new(), &message), expected);

        // Set oneof members and `optional` fields are written, and hold their own nulls.
        let message = node(json!({
            "choiceLeaf": {"maybeFlat": {}},
            "maybeLeaf": {"picked": {"text": "p"}},
            "maybe": 0,
        }));
        let leaf_with = |fields: serde_json::Value| {
            let mut leaf =
                json!({"text": "", "numbers": [], "labels": {}, "flats": [], "byId": {}});
            for (key, value) in fields.as_object().unwrap() {
                leaf[key] = value.clone();
            }
            leaf
        };
        assert_eq!(
            write_with(JsonOptions::new(), &message),
            node_with(json!({
                "choiceLeaf": leaf_with(json!({"maybeFlat": {"text": ""}})),
                "maybeLeaf": leaf_with(json!({"picked": {"text": "p"}})),
                "maybe": 0,
            }))
        );

        // A list of messages that hold them, at the top.
        let holder = read(&pool, "gw.nulls.Holder", json!({"nodes": [{}]}));
        assert_eq!(
            write_with(JsonOptions::new(), &holder),
            json!({"nodes": [empty_node()]})
        );
    }

    #[test]
    fn well_known_types_are_null_when_unset_and_unchanged_when_set() {
        let pool = pool();
        let message = read(
            &pool,
            "gw.nulls.Node",
            json!({
                "when": "1970-01-01T00:00:00Z",
                "count": 0,
                "doc": {"a": {"b": null}},
                "value": null,
                "child": {"count": 7, "doc": {}},
            }),
        );
        assert_eq!(
            write_with(JsonOptions::new(), &message),
            node_with(json!({
                "when": "1970-01-01T00:00:00Z",
                "count": 0,
                "doc": {"a": {"b": null}},
                // `null` reads as a set `NullValue`, written as `null`.
                "value": null,
                "child": node_with(json!({"count": 7, "doc": {}})),
            }))
        );
    }

    #[test]
    fn any_payloads_get_their_nulls() {
        let pool = pool();
        let url = |name: &str| format!("type.googleapis.com/{name}");
        let message = read(
            &pool,
            "gw.nulls.Node",
            json!({
                "any": {"@type": url("gw.nulls.Node"), "name": "in any"},
                "children": [
                    {"any": {"@type": url("gw.nulls.Flat"), "text": "flat"}},
                    {"any": {"@type": url("google.protobuf.Int32Value"), "value": 3}},
                    {"any": {"@type": url("google.protobuf.Any"), "value": {
                        "@type": url("gw.nulls.Node"),
                        "child": {},
                    }}},
                ],
            }),
        );
        let mut in_any = node_with(json!({"name": "in any"}));
        in_any["@type"] = json!(url("gw.nulls.Node"));
        let mut in_any_of_any = node_with(json!({"child": empty_node()}));
        in_any_of_any["@type"] = json!(url("gw.nulls.Node"));
        assert_eq!(
            write_with(JsonOptions::new(), &message),
            node_with(json!({
                "any": in_any,
                "children": [
                    node_with(json!({"any": {"@type": url("gw.nulls.Flat"), "text": "flat"}})),
                    node_with(json!({"any": {
                        "@type": url("google.protobuf.Int32Value"),
                        "value": 3,
                    }})),
                    node_with(json!({"any": {
                        "@type": url("google.protobuf.Any"),
                        "value": in_any_of_any,
                    }})),
                ],
            }))
        );
    }

    #[test]
    fn nulls_follow_the_key_options_and_only_with_unpopulated_fields() {
        let pool = pool();
        let message = read(
            &pool,
            "gw.nulls.Node",
            json!({"children": [{}], "byName": {"k": {}}}),
        );
        let proto = write_with(JsonOptions::new().proto_field_names(true), &message);
        let child = json!({
            "name": "",
            "child": null,
            "leaf": null,
            "children": [],
            "by_name": {},
            "when": null,
            "count": null,
            "doc": null,
            "any": null,
            "value": null,
            "other_leaf": null,
        });
        let mut expected = child.clone();
        expected["children"] = json!([child]);
        expected["by_name"] = json!({"k": child});
        assert_eq!(proto, expected);

        // Without unpopulated fields: no `null`s either, at any depth.
        let sparse = JsonOptions::new().emit_unpopulated(false);
        assert_eq!(
            write_with(sparse, &message),
            json!({"children": [{}], "byName": {"k": {}}})
        );
        let field = message.descriptor().get_field_by_name("children").unwrap();
        let bytes = sparse.write_field_json(message.clone(), &field).unwrap();
        // (`response_body` writes the field's defaults whatever the options; no `null`s.)
        let text = String::from_utf8(bytes).unwrap();
        assert!(!text.contains("null"), "{text}");
    }

    /// The `null`s come after the fields prost-reflect writes, each once.
    #[test]
    fn nulls_are_appended_once() {
        let pool = pool();
        let message = read(&pool, "gw.nulls.Node", json!({"leaf": {}, "custom": {}}));
        let sparse_leaf = r#"{"text":"","numbers":[],"labels":{},"flats":[],"byId":{}}"#;
        let expected = format!(
            r#"{{"name":"","leaf":{sparse_leaf},"children":[],"byName":{{}},"custom":{sparse_leaf},"child":null,"when":null,"count":null,"doc":null,"any":null,"value":null}}"#
        );
        let bytes = JsonOptions::new().write_json(&message).unwrap();
        assert_eq!(String::from_utf8(bytes).unwrap(), expected);
    }

    #[test]
    fn response_body_fields_follow_the_same_rule() {
        let pool = pool();
        let message = read(
            &pool,
            "gw.nulls.Node",
            json!({"children": [{"name": "c"}], "child": {}}),
        );
        let field_json = |name: &str| {
            let field = message.descriptor().get_field_by_name(name).unwrap();
            let bytes = JsonOptions::new()
                .write_field_json(message.clone(), &field)
                .unwrap();
            serde_json::from_slice::<serde_json::Value>(&bytes).unwrap()
        };
        // An unset message field: an empty message, as protojson writes grpc-gateway's nil
        // message (`{}` for an `Any`); `Value` is `null`.
        assert_eq!(
            field_json("leaf"),
            json!({"text": "", "numbers": [], "labels": {}, "flats": [], "byId": {}}),
        );
        assert_eq!(field_json("other_leaf"), field_json("leaf"));
        assert_eq!(field_json("when"), json!("1970-01-01T00:00:00Z"));
        assert_eq!(field_json("count"), json!(0));
        assert_eq!(field_json("doc"), json!({}));
        assert_eq!(field_json("any"), json!({}));
        assert_eq!(field_json("value"), json!(null));
        let unset = read(&pool, "gw.nulls.Node", json!({}));
        let field = unset.descriptor().get_field_by_name("child").unwrap();
        let bytes = JsonOptions::new()
            .write_field_json(unset.clone(), &field)
            .unwrap();
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&bytes).unwrap(),
            empty_node()
        );
        // Without unpopulated fields, the empty message without its defaults (protojson
        // without `EmitUnpopulated`), not `null`.
        let sparse = JsonOptions::new().emit_unpopulated(false);
        assert_eq!(
            sparse.write_field_json(unset.clone(), &field).unwrap(),
            b"{}"
        );
        let any = unset.descriptor().get_field_by_name("any").unwrap();
        assert_eq!(sparse.write_field_json(unset, &any).unwrap(), b"{}");
        assert_eq!(field_json("child"), empty_node());
        assert_eq!(
            field_json("children"),
            json!([node_with(json!({"name": "c"}))])
        );
    }

    #[test]
    fn response_body_fields_without_unpopulated_fields_leave_out_defaults_inside() {
        let pool = pool();
        let message = read(
            &pool,
            "gw.nulls.Node",
            json!({"children": [{"name": "c"}], "child": {"name": "d"}}),
        );
        let sparse = JsonOptions::new().emit_unpopulated(false);
        let field_json = |name: &str| {
            let field = message.descriptor().get_field_by_name(name).unwrap();
            let bytes = sparse.write_field_json(message.clone(), &field).unwrap();
            serde_json::from_slice::<serde_json::Value>(&bytes).unwrap()
        };
        // What the field holds follows the options: no defaults inside it...
        assert_eq!(field_json("children"), json!([{"name": "c"}]));
        assert_eq!(field_json("child"), json!({"name": "d"}));
        // ...but the field itself is written at its default, not left out; an unset message
        // is an empty one (a wrapper's scalar default, the epoch for a `Timestamp`), as
        // protojson writes grpc-gateway's nil message; an unset `Value` is `null`.
        assert_eq!(field_json("name"), json!(""));
        assert_eq!(field_json("by_name"), json!({}));
        assert_eq!(field_json("count"), json!(0));
        assert_eq!(field_json("when"), json!("1970-01-01T00:00:00Z"));
        assert_eq!(field_json("leaf"), json!({}));
        assert_eq!(field_json("doc"), json!({}));
        assert_eq!(field_json("value"), json!(null));
        // Scalars with presence: `null` when unset.
        assert_eq!(field_json("maybe"), json!(null));
        assert_eq!(field_json("choice_text"), json!(null));
    }

    #[test]
    fn proto2_scalars_with_presence_are_null_when_unset() {
        let pool = pool();
        let message = read(&pool, "gw.nulls2.Legacy", json!({"next": {"count": 0}}));
        assert_eq!(
            write_with(JsonOptions::new(), &message),
            json!({
                "count": null,
                "name": null,
                "numbers": [],
                "next": {"count": 0, "name": null, "numbers": [], "next": null},
            })
        );
    }

    /// What is written reads back as the same message, and writes the same JSON again
    /// (`null` is unset on input; an unset `google.protobuf.Value` field is the exception
    /// the mapping makes: it reads back as a set `NullValue`, written as the same `null`).
    #[test]
    fn nulls_read_back_as_unset() {
        let pool = pool();
        let message = read(
            &pool,
            "gw.nulls.Node",
            json!({
                "value": "set",
                "children": [{"value": 1, "leaf": {}}],
                "byName": {"k": {"value": true, "any": {
                    "@type": "type.googleapis.com/gw.nulls.Node",
                    "value": "x",
                }}},
            }),
        );
        for options in [
            JsonOptions::new(),
            JsonOptions::new().proto_field_names(true),
        ] {
            let json = options.write_json(&message).unwrap();
            assert!(String::from_utf8_lossy(&json).contains("null"));
            let back = options.read_json(message.descriptor(), &json).unwrap();
            // The same message on the wire (`DynamicMessage`'s `==` tells a scalar read as
            // its default from one never set; `assert_eq!` would print a recursive type's
            // descriptor forever).
            assert!(
                back.encode_to_vec() == message.encode_to_vec(),
                "{options:?}: {}",
                String::from_utf8_lossy(&options.write_json(&back).unwrap())
            );
            assert_eq!(options.write_json(&back).unwrap(), json);
        }
        // Unset `value`: a set `NullValue` after the round trip, the same JSON (but for the
        // key's place).
        let empty = read(&pool, "gw.nulls.Node", json!({}));
        let json = JsonOptions::new().write_json(&empty).unwrap();
        let back = JsonOptions::new()
            .read_json(empty.descriptor(), &json)
            .unwrap();
        assert_eq!(write_with(JsonOptions::new(), &back), empty_node());
    }

    /// Types that cannot hold a `null` anywhere get no plan: written exactly as before.
    #[test]
    fn types_without_nulls_cost_nothing() {
        let pool = pool();
        let plan = |name: &str| {
            let descriptor = pool.get_message_by_name(name).unwrap();
            JsonOptions::new().writer(&descriptor).nulls.is_some()
        };
        for name in [
            "gw.nulls.Leaf",
            "gw.nulls.Flat",
            "google.protobuf.Timestamp",
        ] {
            assert!(!plan(name), "{name}");
        }
        for name in [
            "gw.nulls.Node",
            "gw.nulls.Holder",
            "gw.nulls2.Legacy",
            "gw.json.Floats",
            "google.protobuf.Any",
        ] {
            assert!(plan(name), "{name}");
        }
        let descriptor = pool.get_message_by_name("gw.nulls.Node").unwrap();
        let sparse = JsonOptions::new().emit_unpopulated(false);
        assert!(sparse.writer(&descriptor).nulls.is_none());
    }

    /// The adapter's cost: writes messages with and without their plan, and prints the time
    /// per message. Run with `--ignored --nocapture` (in a release build for real numbers).
    #[test]
    #[ignore = "a timing loop, not a check"]
    fn nulls_cost() {
        let pool = pool();
        let cases = [
            ("gw.nulls.Flat", json!({"text": "hello"})),
            ("gw.nulls.Node", json!({"name": "n", "leaf": {"text": "t"}})),
            (
                "gw.nulls.Node",
                json!({
                    "name": "n",
                    "children": [{"name": "a"}, {"name": "b", "child": {}}],
                    "byName": {"k": {"name": "v"}},
                    "when": "2020-01-01T00:00:00Z",
                }),
            ),
        ];
        for (name, json) in cases {
            let message = read(&pool, name, json);
            let with = JsonOptions::new().writer(&message.descriptor());
            let without = super::JsonWriter {
                nulls: None,
                ..with.clone()
            };
            let time = |writer: &super::JsonWriter| {
                let n = 20_000;
                let start = std::time::Instant::now();
                for _ in 0..n {
                    std::hint::black_box(writer.write_json(&message).unwrap());
                }
                start.elapsed().as_nanos() / n
            };
            let (_, _) = (time(&with), time(&without)); // warm up
            println!(
                "{name} ({} bytes): {} ns with nulls, {} ns without (plan: {})",
                with.write_json(&message).unwrap().len(),
                time(&with),
                time(&without),
                with.nulls.is_some(),
            );
        }
    }
}
