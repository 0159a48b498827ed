//! The proto3 JSON mapping, through `prost-reflect`'s serde support.

mod non_finite;

use non_finite::NonFinite;
use prost_reflect::{
    DeserializeOptions, DynamicMessage, FieldDescriptor, MessageDescriptor, ReflectMessage as _,
    SerializeOptions,
};

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

    /// Whether fields at their default value are written (`true`, grpc-gateway v2) or left
    /// out (`false`, protobuf's own JSON default).
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

    /// Writes `message` as JSON. Every message the gateway writes (replies, stream items,
    /// error bodies) goes through here or [`write_field_json`](Self::write_field_json), both
    /// through [`NonFinite`] (non-finite wrapper values as strings, not `null`).
    pub(crate) fn write_json(self, message: &DynamicMessage) -> Result<Vec<u8>, String> {
        let mut out = Vec::with_capacity(128);
        let mut serializer = serde_json::Serializer::new(&mut out);
        message
            .serialize_with_options(NonFinite(&mut serializer), &self.serialize_options())
            .map_err(|e| e.to_string())?;
        Ok(out)
    }

    /// Writes one field of `message` as JSON (`response_body`).
    pub(crate) fn write_field_json(
        self,
        mut message: DynamicMessage,
        field: &FieldDescriptor,
    ) -> Result<Vec<u8>, String> {
        // Keep only that field, write the message, and take the field's value out of it.
        let value = message.take_field(field);
        let mut message = DynamicMessage::new(message.descriptor());
        if let Some(value) = value {
            message.set_field(field, value);
        }
        let options = self.serialize_options().skip_default_fields(false);
        let object = message
            .serialize_with_options(NonFinite(serde_json::value::Serializer), &options)
            .map_err(|e| e.to_string())?;
        let key = if self.proto_field_names {
            field.name()
        } else {
            field.json_name()
        };
        let value = match object {
            serde_json::Value::Object(mut map) => {
                map.remove(key).unwrap_or(serde_json::Value::Null)
            }
            _ => serde_json::Value::Null,
        };
        serde_json::to_vec(&value).map_err(|e| e.to_string())
    }

    /// Reads a whole message from a JSON body.
    pub(crate) fn read_json(
        self,
        descriptor: MessageDescriptor,
        body: &[u8],
    ) -> Result<DynamicMessage, String> {
        let mut deserializer = serde_json::Deserializer::from_slice(body);
        let message = DynamicMessage::deserialize_with_options(
            descriptor,
            &mut deserializer,
            &self.deserialize_options(),
        )
        .map_err(|e| e.to_string())?;
        deserializer.end().map_err(|e| e.to_string())?;
        Ok(message)
    }

    /// Reads the body into the field at `path` (proto names) of a new `descriptor` message:
    /// the JSON value is wrapped in objects keyed by the path and read as the whole message,
    /// so every field kind (scalars, repeated, maps, well-known types) reads as it would
    /// inside a message.
    pub(crate) fn read_field_json(
        self,
        descriptor: MessageDescriptor,
        path: &[FieldDescriptor],
        body: &[u8],
    ) -> Result<DynamicMessage, String> {
        let mut value: serde_json::Value =
            serde_json::from_slice(body).map_err(|e| e.to_string())?;
        for field in path.iter().rev() {
            let mut object = serde_json::Map::with_capacity(1);
            object.insert(field.name().to_owned(), value);
            value = serde_json::Value::Object(object);
        }
        DynamicMessage::deserialize_with_options(descriptor, value, &self.deserialize_options())
            .map_err(|e| e.to_string())
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
        compiler
            .include_imports(true)
            .open_file("json.proto")
            .expect("test proto compiles");
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
}
