//! The proto3 JSON mapping, through `prost-reflect`'s serde support.

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

    /// Writes `message` as JSON.
    pub(crate) fn write_json(self, message: &DynamicMessage) -> Result<Vec<u8>, String> {
        let mut out = Vec::with_capacity(128);
        let mut serializer = serde_json::Serializer::new(&mut out);
        message
            .serialize_with_options(&mut serializer, &self.serialize_options())
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
            .serialize_with_options(serde_json::value::Serializer, &options)
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
