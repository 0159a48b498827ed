//! Binding path variables and query parameters into a request message.
//!
//! Works on [`DynamicMessage`]s so that one implementation serves every generated route; the
//! HTTP layer decodes the JSON body into the same message first, then calls
//! [`Binding::bind_path`] (path values override the body, as in grpc-gateway) and
//! [`Binding::bind_query`].

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use prost_reflect::{
    DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor, ReflectMessage as _, Value,
};

use super::template::PathTemplate;

/// The `body` of a `google.api.http` rule: which fields come from the HTTP body, which
/// decides which fields query parameters may set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// No `body`: every field not bound by the path may come from the query.
    None,
    /// `body: "*"`: every field not bound by the path comes from the body; there are no query
    /// parameters.
    All,
    /// `body: "field.path"`: that field comes from the body, the rest from the query.
    Field(String),
}

/// How one route binds path variables and query parameters; build it once per route.
#[derive(Clone, Debug)]
pub struct Binding {
    body: Body,
    /// Field paths (proto names) set by the path or the body, which query parameters skip.
    bound_elsewhere: Vec<String>,
    reject_unknown_query_params: bool,
}

/// A path variable or query parameter that cannot be bound. Every variant means the client
/// sent a bad request: `400 Bad Request` / `INVALID_ARGUMENT` (see the `From` impl).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BindError {
    /// The query string is not valid `application/x-www-form-urlencoded` text.
    MalformedQuery {
        /// The offending `name=value` pair, as sent.
        pair: String,
    },
    /// No field has this name (path variables, and query parameters in strict mode).
    UnknownField {
        /// The parameter name or field path as sent.
        param: String,
    },
    /// A query parameter where the rule allows none (`body: "*"`), in strict mode.
    QueryNotAllowed {
        /// The parameter name as sent.
        param: String,
    },
    /// The value does not convert to the field's type.
    InvalidValue {
        /// The parameter name or field path as sent.
        param: String,
        /// The value, decoded.
        value: String,
        /// What the field accepts, e.g. `an int32`.
        expected: String,
    },
    /// A singular field (or one map key) given more than once.
    TooManyValues {
        /// The parameter name as sent.
        param: String,
    },
    /// Another field of the same `oneof` is already set.
    OneofConflict {
        /// The parameter name as sent.
        param: String,
        /// The oneof's name.
        oneof: String,
    },
    /// The field exists but cannot be set from a URL (a repeated message, a plain message, a
    /// path through a non-message...).
    Unsupported {
        /// The parameter name or field path as sent.
        param: String,
        /// Why, for the error message.
        reason: String,
    },
}

impl fmt::Display for BindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BindError::MalformedQuery { pair } => write!(f, "malformed query parameter {pair:?}"),
            BindError::UnknownField { param } => write!(f, "unknown field {param:?}"),
            BindError::QueryNotAllowed { param } => {
                write!(
                    f,
                    "query parameter {param:?} not allowed: this method takes all fields from the body"
                )
            }
            BindError::InvalidValue {
                param,
                value,
                expected,
            } => {
                write!(
                    f,
                    "invalid value {value:?} for {param:?}: expected {expected}"
                )
            }
            BindError::TooManyValues { param } => write!(f, "too many values for field {param:?}"),
            BindError::OneofConflict { param, oneof } => {
                write!(
                    f,
                    "cannot set {param:?}: another field of oneof {oneof:?} is already set"
                )
            }
            BindError::Unsupported { param, reason } => write!(f, "cannot set {param:?}: {reason}"),
        }
    }
}

impl std::error::Error for BindError {}

impl From<BindError> for crate::Status {
    fn from(error: BindError) -> Self {
        crate::Status::invalid_argument(error.to_string())
    }
}

impl Binding {
    /// The binding for a rule with this path template and `body`. Unknown query parameters
    /// are ignored until [`reject_unknown_query_params`](Self::reject_unknown_query_params).
    pub fn new(template: &PathTemplate, body: Body) -> Self {
        let mut bound_elsewhere: Vec<String> = template
            .variables()
            .iter()
            .map(|v| v.field_path().to_owned())
            .collect();
        if let Body::Field(field) = &body {
            bound_elsewhere.push(field.clone());
        }
        Binding {
            body,
            bound_elsewhere,
            reject_unknown_query_params: false,
        }
    }

    /// When `true`, a query parameter that names no field (or any query parameter with
    /// `body: "*"`) is a [`BindError`] instead of being ignored. Default: `false`.
    #[must_use]
    pub fn reject_unknown_query_params(mut self, reject: bool) -> Self {
        self.reject_unknown_query_params = reject;
        self
    }

    /// Sets the fields named by path variables (the router's captured, decoded values),
    /// creating intermediate messages, overwriting values the body set.
    pub fn bind_path(
        &self,
        message: &mut DynamicMessage,
        params: &[(&str, Cow<'_, str>)],
    ) -> Result<(), BindError> {
        for (field_path, value) in params {
            let fields = resolve(&message.descriptor(), field_path)?.ok_or_else(|| {
                BindError::UnknownField {
                    param: (*field_path).to_owned(),
                }
            })?;
            let leaf = fields.last().expect("field paths are not empty");
            if leaf.is_list() || leaf.is_map() {
                return Err(unsupported(
                    field_path,
                    "repeated and map fields cannot be bound from the path",
                ));
            }
            let target = parent_message(message, &fields, field_path)?;
            let value = parse_value(&leaf.kind(), value)
                .map_err(|expected| invalid(field_path, value, expected))?;
            target.set_field(leaf, value);
        }
        Ok(())
    }

    /// Sets fields from a query string (the text after `?`, form-encoded: `+` is a space).
    ///
    /// Names are dotted field paths using proto or JSON names (`page_size`, `pageSize`,
    /// `filter.min_price`); repeated fields take every value (`tag=a&tag=b`); map entries are
    /// `name[key]=value`. Parameters for fields bound by the path or the body are skipped.
    pub fn bind_query(&self, message: &mut DynamicMessage, query: &str) -> Result<(), BindError> {
        let mut seen = HashSet::new();
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let malformed = || BindError::MalformedQuery {
                pair: pair.to_owned(),
            };
            let name = form_decode(name).ok_or_else(malformed)?;
            let value = form_decode(value).ok_or_else(malformed)?;
            if name.is_empty() {
                continue;
            }
            if self.body == Body::All {
                if self.reject_unknown_query_params {
                    return Err(BindError::QueryNotAllowed {
                        param: name.into_owned(),
                    });
                }
                continue;
            }
            self.bind_query_param(message, &name, &value, &mut seen)?;
        }
        Ok(())
    }

    fn bind_query_param(
        &self,
        message: &mut DynamicMessage,
        name: &str,
        value: &str,
        seen: &mut HashSet<String>,
    ) -> Result<(), BindError> {
        // `labels[env]=prod` sets one map entry; grpc-gateway's syntax.
        let (field_path, map_key) = match name.strip_suffix(']').and_then(|n| n.split_once('[')) {
            Some((field_path, key)) => (field_path, Some(key)),
            None => (name, None),
        };
        let Some(fields) = resolve(&message.descriptor(), field_path)? else {
            if self.reject_unknown_query_params {
                return Err(BindError::UnknownField {
                    param: name.to_owned(),
                });
            }
            return Ok(());
        };
        let proto_path = fields
            .iter()
            .map(|f| f.name())
            .collect::<Vec<_>>()
            .join(".");
        let bound = |b: &String| {
            proto_path == *b
                || proto_path
                    .strip_prefix(b.as_str())
                    .is_some_and(|r| r.starts_with('.'))
        };
        if self.bound_elsewhere.iter().any(bound) {
            return Ok(());
        }
        let leaf = fields.last().expect("field paths are not empty");
        let kind = leaf.kind();
        match (map_key, leaf.is_map()) {
            (Some(key), true) => {
                let Kind::Message(entry) = &kind else {
                    unreachable!("map fields are messages")
                };
                let (key_field, value_field) =
                    (entry.map_entry_key_field(), entry.map_entry_value_field());
                if !seen.insert(format!("{proto_path}[{key}]")) {
                    return Err(BindError::TooManyValues {
                        param: name.to_owned(),
                    });
                }
                let key = parse_map_key(&key_field.kind(), key).ok_or_else(|| {
                    invalid(
                        name,
                        key,
                        format!("a map key of type {}", kind_name(&key_field.kind())),
                    )
                })?;
                let value = parse_value(&value_field.kind(), value)
                    .map_err(|expected| invalid(name, value, expected))?;
                let target = parent_message(message, &fields, name)?;
                if let Value::Map(map) = target.get_field_mut(leaf) {
                    map.insert(key, value);
                }
                Ok(())
            }
            (Some(_), false) => Err(unsupported(name, "only map fields take `[key]`")),
            (None, true) => Err(unsupported(
                name,
                "map entries are set as `name[key]=value`",
            )),
            (None, false) => {
                if leaf.is_list() && matches!(&kind, Kind::Message(m) if !is_scalar_like(m)) {
                    return Err(unsupported(
                        name,
                        "repeated message fields cannot be set from query parameters",
                    ));
                }
                if !leaf.is_list() && !seen.insert(proto_path) {
                    return Err(BindError::TooManyValues {
                        param: name.to_owned(),
                    });
                }
                let value =
                    parse_value(&kind, value).map_err(|expected| invalid(name, value, expected))?;
                let target = parent_message(message, &fields, name)?;
                if leaf.is_list() {
                    if let Value::List(list) = target.get_field_mut(leaf) {
                        list.push(value);
                    }
                } else {
                    target.set_field(leaf, value);
                }
                Ok(())
            }
        }
    }
}

/// Resolves a dotted field path (each part a proto or JSON name) to its fields. `Ok(None)`
/// when some part names no field; an error when the path goes through something that is not
/// a singular message.
fn resolve(
    descriptor: &MessageDescriptor,
    field_path: &str,
) -> Result<Option<Vec<FieldDescriptor>>, BindError> {
    let mut fields: Vec<FieldDescriptor> = Vec::new();
    let mut current = descriptor.clone();
    for (i, part) in field_path.split('.').enumerate() {
        if i > 0 {
            let parent = fields.last().expect("i > 0");
            current = match parent.kind() {
                Kind::Message(message) if !parent.is_list() && !parent.is_map() => message,
                _ if parent.is_list() || parent.is_map() => {
                    return Err(unsupported(
                        field_path,
                        &format!("{:?} is repeated; it has no fields to set", parent.name()),
                    ));
                }
                _ => {
                    return Err(unsupported(
                        field_path,
                        &format!("{:?} is not a message", parent.name()),
                    ));
                }
            };
        }
        match current
            .get_field_by_name(part)
            .or_else(|| current.get_field_by_json_name(part))
        {
            Some(field) => fields.push(field),
            None => return Ok(None),
        }
    }
    Ok(Some(fields))
}

/// The message that holds the last of `fields`, creating the messages on the way, after
/// checking that no other member of a oneof on the way is set.
fn parent_message<'m>(
    message: &'m mut DynamicMessage,
    fields: &[FieldDescriptor],
    param: &str,
) -> Result<&'m mut DynamicMessage, BindError> {
    let mut current = message;
    for (i, field) in fields.iter().enumerate() {
        if let Some(oneof) = field.containing_oneof()
            && oneof
                .fields()
                .any(|other| other != *field && current.has_field(&other))
        {
            return Err(BindError::OneofConflict {
                param: param.to_owned(),
                oneof: oneof.name().to_owned(),
            });
        }
        if i + 1 == fields.len() {
            return Ok(current);
        }
        current = match current.get_field_mut(field) {
            Value::Message(child) => child,
            _ => unreachable!("resolve() only lets singular messages have children"),
        };
    }
    unreachable!("field paths are not empty")
}

/// Messages that a single text value can set: the well-known types whose JSON form is a string
/// or a number.
fn is_scalar_like(message: &MessageDescriptor) -> bool {
    matches!(
        message.full_name(),
        "google.protobuf.Timestamp"
            | "google.protobuf.Duration"
            | "google.protobuf.FieldMask"
            | "google.protobuf.DoubleValue"
            | "google.protobuf.FloatValue"
            | "google.protobuf.Int64Value"
            | "google.protobuf.UInt64Value"
            | "google.protobuf.Int32Value"
            | "google.protobuf.UInt32Value"
            | "google.protobuf.BoolValue"
            | "google.protobuf.StringValue"
            | "google.protobuf.BytesValue"
    )
}

/// Converts text to a value of `kind`, or says what was expected.
fn parse_value(kind: &Kind, text: &str) -> Result<Value, String> {
    fn number<T: FromStr>(text: &str, expected: &str) -> Result<T, String> {
        text.parse().map_err(|_| expected.to_owned())
    }
    let value = match kind {
        Kind::String => Value::String(text.to_owned()),
        Kind::Bool => Value::Bool(parse_bool(text).ok_or("a bool (true or false)")?),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => Value::I32(number(text, "an int32")?),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Value::I64(number(text, "an int64")?),
        Kind::Uint32 | Kind::Fixed32 => Value::U32(number(text, "a uint32")?),
        Kind::Uint64 | Kind::Fixed64 => Value::U64(number(text, "a uint64")?),
        Kind::Double => Value::F64(parse_float(text).ok_or("a double")?),
        Kind::Float => {
            // Out-of-range values would become infinities; proto3 JSON refuses them.
            let value = parse_float(text).filter(|v| v.is_infinite() || !(*v as f32).is_infinite());
            Value::F32(value.ok_or("a float")? as f32)
        }
        Kind::Bytes => Value::Bytes(
            decode_base64(text)
                .ok_or("base64 (standard or URL-safe)")?
                .into(),
        ),
        Kind::Enum(enum_type) => {
            // By name; else by number, which must be a defined value (as grpc-gateway).
            let value = enum_type
                .get_value_by_name(text)
                .or_else(|| text.parse().ok().and_then(|n| enum_type.get_value(n)))
                .ok_or_else(|| format!("a value of enum {}", enum_type.full_name()))?;
            Value::EnumNumber(value.number())
        }
        Kind::Message(message) => Value::Message(parse_well_known(message, text)?),
    };
    Ok(value)
}

fn parse_well_known(message: &MessageDescriptor, text: &str) -> Result<DynamicMessage, String> {
    let mut value = DynamicMessage::new(message.clone());
    match message.full_name() {
        "google.protobuf.Timestamp" => {
            // RFC 3339, within the range proto3 JSON allows (years 0001 to 9999).
            let timestamp = prost_types::Timestamp::from_str(text)
                .ok()
                .filter(|t| (-62_135_596_800..=253_402_300_799).contains(&t.seconds))
                .ok_or("an RFC 3339 timestamp such as \"2024-01-31T12:00:00Z\"")?;
            value.set_field_by_number(1, Value::I64(timestamp.seconds));
            value.set_field_by_number(2, Value::I32(timestamp.nanos));
        }
        "google.protobuf.Duration" => {
            let duration = prost_types::Duration::from_str(text)
                .ok()
                .filter(|d| d.seconds.abs() <= 315_576_000_000)
                .ok_or("a duration in seconds such as \"1.5s\"")?;
            value.set_field_by_number(1, Value::I64(duration.seconds));
            value.set_field_by_number(2, Value::I32(duration.nanos));
        }
        "google.protobuf.FieldMask" => {
            // Comma-separated paths, used verbatim (grpc-gateway).
            let paths = text
                .split(',')
                .filter(|p| !p.is_empty())
                .map(|p| Value::String(p.to_owned()));
            value.set_field_by_number(1, Value::List(paths.collect()));
        }
        _ if is_scalar_like(message) => {
            // A wrapper: its one field `value` (number 1) holds the scalar.
            let field = message.get_field(1).expect("wrappers have field 1");
            value.set_field(&field, parse_value(&field.kind(), text)?);
        }
        name => return Err(format!("nothing: {name} fields cannot be set from a URL")),
    }
    Ok(value)
}

fn parse_map_key(kind: &Kind, text: &str) -> Option<MapKey> {
    Some(match kind {
        Kind::String => MapKey::String(text.to_owned()),
        Kind::Bool => MapKey::Bool(parse_bool(text)?),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => MapKey::I32(text.parse().ok()?),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => MapKey::I64(text.parse().ok()?),
        Kind::Uint32 | Kind::Fixed32 => MapKey::U32(text.parse().ok()?),
        Kind::Uint64 | Kind::Fixed64 => MapKey::U64(text.parse().ok()?),
        _ => return None,
    })
}

fn kind_name(kind: &Kind) -> String {
    match kind {
        Kind::Message(m) => m.full_name().to_owned(),
        Kind::Enum(e) => e.full_name().to_owned(),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// Go's `strconv.ParseBool`, which grpc-gateway uses, so its clients keep working.
fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "true" | "True" | "TRUE" | "t" | "T" | "1" => Some(true),
        "false" | "False" | "FALSE" | "f" | "F" | "0" => Some(false),
        _ => None,
    }
}

/// Decimal and exponent notation plus proto3 JSON's `NaN`, `Infinity` and `-Infinity`;
/// not Rust's extra spellings (`inf`, `nan`).
fn parse_float(text: &str) -> Option<f64> {
    match text {
        "NaN" => Some(f64::NAN),
        "Infinity" => Some(f64::INFINITY),
        "-Infinity" => Some(f64::NEG_INFINITY),
        _ if text
            .bytes()
            .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b)) =>
        {
            text.parse().ok()
        }
        _ => None,
    }
}

/// Standard or URL-safe alphabet, padded or not (proto3 JSON accepts both alphabets).
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const CONFIG: GeneralPurposeConfig =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    const STANDARD: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::STANDARD, CONFIG);
    const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::URL_SAFE, CONFIG);
    STANDARD
        .decode(text)
        .or_else(|_| URL_SAFE.decode(text))
        .ok()
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a byte. `None` for a
/// malformed escape or text that is not UTF-8.
fn form_decode(text: &str) -> Option<Cow<'_, str>> {
    if !text.contains(['%', '+']) {
        return Some(Cow::Borrowed(text));
    }
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => decoded.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                decoded.push(
                    u8::from_str_radix(hex, 16)
                        .ok()
                        .filter(|_| !hex.starts_with('+'))?,
                );
                i += 2;
            }
            byte => decoded.push(byte),
        }
        i += 1;
    }
    String::from_utf8(decoded).ok().map(Cow::Owned)
}

fn invalid(param: &str, value: &str, expected: impl Into<String>) -> BindError {
    BindError::InvalidValue {
        param: param.to_owned(),
        value: value.to_owned(),
        expected: expected.into(),
    }
}

fn unsupported(param: &str, reason: &str) -> BindError {
    BindError::Unsupported {
        param: param.to_owned(),
        reason: reason.to_owned(),
    }
}
