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
    plus_as_space: bool,
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
            plus_as_space: true,
        }
    }

    /// When `true`, a query parameter that names no field (or any query parameter with
    /// `body: "*"`) is a [`BindError`] instead of being ignored. Default: `false`.
    #[must_use]
    pub fn reject_unknown_query_params(mut self, reject: bool) -> Self {
        self.reject_unknown_query_params = reject;
        self
    }

    /// Whether `+` in the query string means a space (HTML form encoding, what browsers and
    /// grpc-gateway do) or a literal `+` (Envoy's default). Default: `true`. `%2B` is always
    /// a `+`.
    #[must_use]
    pub fn plus_as_space(mut self, plus_as_space: bool) -> Self {
        self.plus_as_space = plus_as_space;
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
            single_value_settable(&leaf.kind(), field_path)?;
            let target = parent_message(message, &fields, field_path)?;
            let value = parse_value(&leaf.kind(), value)
                .map_err(|expected| invalid(field_path, value, expected))?;
            target.set_field(leaf, value);
        }
        Ok(())
    }

    /// Sets fields from a query string: the text after `?`, form-encoded (see
    /// [`plus_as_space`](Self::plus_as_space)).
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
            let name = form_decode(name, self.plus_as_space).ok_or_else(malformed)?;
            let value = form_decode(value, self.plus_as_space).ok_or_else(malformed)?;
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
                if matches!(value_field.kind(), Kind::Message(m) if !is_scalar_like(&m)) {
                    return Err(unsupported(
                        name,
                        "maps with message values cannot be set from query parameters",
                    ));
                }
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
                single_value_settable(&kind, name)?;
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
                        &format!("{:?} is a repeated or map field", parent.name()),
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
    super::template::scalar_like_message(message.full_name())
}

/// Refuses kinds that one text value cannot set: messages other than the scalar-like
/// well-known types.
fn single_value_settable(kind: &Kind, param: &str) -> Result<(), BindError> {
    match kind {
        Kind::Message(message) if !is_scalar_like(message) => Err(unsupported(
            param,
            &format!(
                "{} is a message; set its fields (`{param}.field=value`)",
                message.full_name()
            ),
        )),
        _ => Ok(()),
    }
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
        // `single_value_settable` keeps other messages away; stay total anyway.
        name => return Err(format!("no value: {name} is a message")),
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

/// `application/x-www-form-urlencoded` decoding: `%XX` is a byte and, if `plus_as_space`,
/// `+` a space. `None` for a malformed escape or text that is not UTF-8.
fn form_decode(text: &str, plus_as_space: bool) -> Option<Cow<'_, str>> {
    let needs_decoding = |b: &u8| *b == b'%' || (plus_as_space && *b == b'+');
    if !text.as_bytes().iter().any(needs_decoding) {
        return Some(Cow::Borrowed(text));
    }
    let hex_digit = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' if plus_as_space => decoded.push(b' '),
            b'%' => {
                let high = hex_digit(*bytes.get(i + 1)?)?;
                let low = hex_digit(*bytes.get(i + 2)?)?;
                decoded.push(high << 4 | low);
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

#[cfg(test)]
mod tests {
    use super::*;
    use prost_reflect::DescriptorPool;

    fn request_descriptor() -> MessageDescriptor {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/gateway/testdata");
        let mut compiler = protox::Compiler::new([dir]).expect("include dir");
        compiler
            .include_imports(true)
            .open_file("binding.proto")
            .expect("test proto compiles");
        let pool: DescriptorPool = compiler.descriptor_pool();
        pool.get_message_by_name("gw.test.Request")
            .expect("gw.test.Request")
    }

    /// Reads a dotted field path (proto names) out of `message`, descending into messages.
    fn get(message: &DynamicMessage, path: &str) -> Value {
        let mut value = Value::Message(message.clone());
        for part in path.split('.') {
            let Value::Message(m) = value else {
                panic!("{path}: {part} is inside a non-message")
            };
            value = m
                .get_field_by_name(part)
                .unwrap_or_else(|| panic!("{path}: no field {part}"))
                .into_owned();
        }
        value
    }

    fn bind(
        template: &str,
        body: Body,
        path_params: &[(&str, &str)],
        query: &str,
    ) -> Result<DynamicMessage, BindError> {
        let binding = Binding::new(&PathTemplate::parse(template).unwrap(), body);
        bind_with(&binding, path_params, query)
    }

    fn bind_with(
        binding: &Binding,
        path_params: &[(&str, &str)],
        query: &str,
    ) -> Result<DynamicMessage, BindError> {
        let mut message = DynamicMessage::new(request_descriptor());
        let params: Vec<(&str, Cow<'_, str>)> = path_params
            .iter()
            .map(|&(k, v)| (k, Cow::Borrowed(v)))
            .collect();
        binding.bind_path(&mut message, &params)?;
        binding.bind_query(&mut message, query)?;
        Ok(message)
    }

    fn s(text: &str) -> Value {
        Value::String(text.to_owned())
    }

    #[test]
    fn converts_each_scalar_and_well_known_type() {
        let cases: &[(&str, &str, Value)] = &[
            ("name=ann+lee%21", "name", s("ann lee!")),
            ("page_size=-12", "page_size", Value::I32(-12)),
            (
                "big=9007199254740993",
                "big",
                Value::I64(9_007_199_254_740_993),
            ),
            ("small=4294967295", "small", Value::U32(u32::MAX)),
            ("huge=18446744073709551615", "huge", Value::U64(u64::MAX)),
            ("ratio=1.5e3", "ratio", Value::F64(1500.0)),
            ("ratio=-Infinity", "ratio", Value::F64(f64::NEG_INFINITY)),
            ("weight=0.25", "weight", Value::F32(0.25)),
            ("flag=true", "flag", Value::Bool(true)),
            ("flag=0", "flag", Value::Bool(false)),
            (
                "blob=aGk%2B",
                "blob",
                Value::Bytes(b"hi>".as_slice().into()),
            ),
            ("blob=aGk-", "blob", Value::Bytes(b"hi>".as_slice().into())),
            ("blob=aGk", "blob", Value::Bytes(b"hi".as_slice().into())),
            ("color=GREEN", "color", Value::EnumNumber(2)),
            ("color=1", "color", Value::EnumNumber(1)),
            ("zig=-3", "zig", Value::I32(-3)),
            ("opt=", "opt", s("")),
            (
                "at=2024-01-31T12:00:00.5Z",
                "at.seconds",
                Value::I64(1_706_702_400),
            ),
            (
                "at=2024-01-31T12:00:00.5Z",
                "at.nanos",
                Value::I32(500_000_000),
            ),
            (
                "at=2024-01-31T13:00:00%2B01:00",
                "at.seconds",
                Value::I64(1_706_702_400),
            ),
            ("ttl=1.5s", "ttl.seconds", Value::I64(1)),
            ("ttl=-0.25s", "ttl.nanos", Value::I32(-250_000_000)),
            ("maybe=7", "maybe.value", Value::I32(7)),
            ("maybe_flag=false", "maybe_flag.value", Value::Bool(false)),
            (
                "update_mask=name,filter.text",
                "update_mask.paths",
                Value::List(vec![s("name"), s("filter.text")]),
            ),
        ];
        for (query, path, expected) in cases {
            let message =
                bind("/v1/x", Body::None, &[], query).unwrap_or_else(|e| panic!("{query}: {e}"));
            assert_eq!(&get(&message, path), expected, "{query}");
        }
    }

    #[test]
    fn binds_names_repeated_maps_and_nesting() {
        let query = "pageSize=5&filter.min_price=10&filter.sub.text=deep&customName=j\
                     &tags=a&tags=b&colors=RED&colors=2&counts[x]=1&counts[y%20z]=2\
                     &labelsById[42]=answer&times=1970-01-01T00:00:01Z&items_by_key[k]=ignored-no";
        // `items_by_key` has message values: refused, so bind without it first.
        let message = bind(
            "/v1/x",
            Body::None,
            &[],
            query.trim_end_matches("&items_by_key[k]=ignored-no"),
        )
        .unwrap();
        assert_eq!(get(&message, "page_size"), Value::I32(5));
        assert_eq!(get(&message, "filter.min_price"), Value::I32(10));
        assert_eq!(get(&message, "filter.sub.text"), s("deep"));
        assert_eq!(get(&message, "json_named"), s("j"));
        assert_eq!(get(&message, "tags"), Value::List(vec![s("a"), s("b")]));
        assert_eq!(
            get(&message, "colors"),
            Value::List(vec![Value::EnumNumber(1), Value::EnumNumber(2)])
        );
        let Value::Map(counts) = get(&message, "counts") else {
            panic!("counts is a map")
        };
        assert_eq!(
            counts.get(&MapKey::String("x".into())),
            Some(&Value::I32(1))
        );
        assert_eq!(
            counts.get(&MapKey::String("y z".into())),
            Some(&Value::I32(2))
        );
        let Value::Map(labels) = get(&message, "labels_by_id") else {
            panic!("labels_by_id is a map")
        };
        assert_eq!(labels.get(&MapKey::I64(42)), Some(&s("answer")));
        let Value::List(times) = get(&message, "times") else {
            panic!("times is a list")
        };
        assert_eq!(times.len(), 1);
        assert_eq!(
            bind("/v1/x", Body::None, &[], query)
                .unwrap_err()
                .to_string(),
            "cannot set \"items_by_key[k]\": maps with message values cannot be set from query parameters"
        );
    }

    #[test]
    fn path_variables_set_nested_fields_and_shadow_query() {
        let message = bind(
            "/v1/{filter.sub.text}/{name=shelves/*}/{page_size}",
            Body::None,
            &[
                ("filter.sub.text", "a/b"),
                ("name", "shelves/1"),
                ("page_size", "3"),
            ],
            "name=other&filter.sub.text=other&filter.min_price=2&page_size=9",
        )
        .unwrap();
        assert_eq!(get(&message, "filter.sub.text"), s("a/b"));
        assert_eq!(get(&message, "name"), s("shelves/1"));
        assert_eq!(get(&message, "page_size"), Value::I32(3));
        assert_eq!(get(&message, "filter.min_price"), Value::I32(2));
        // Scalar-like well-known types bind from the path as from the query.
        let message = bind(
            "/v1/{at}/{maybe}",
            Body::None,
            &[("at", "1970-01-01T00:01:00Z"), ("maybe", "-1")],
            "",
        )
        .unwrap();
        assert_eq!(get(&message, "at.seconds"), Value::I64(60));
        assert_eq!(get(&message, "maybe.value"), Value::I32(-1));
    }

    #[test]
    fn body_rules_decide_which_query_params_apply() {
        // body: "*" → no query parameters at all; ignored, or refused in strict mode.
        let message = bind(
            "/v1/{name}",
            Body::All,
            &[("name", "n")],
            "page_size=3&bogus=1",
        )
        .unwrap();
        assert_eq!(get(&message, "page_size"), Value::I32(0));
        let template = PathTemplate::parse("/v1/{name}").unwrap();
        let strict = Binding::new(&template, Body::All).reject_unknown_query_params(true);
        assert_eq!(
            bind_with(&strict, &[("name", "n")], "page_size=3")
                .unwrap_err()
                .to_string(),
            "query parameter \"page_size\" not allowed: this method takes all fields from the body"
        );
        assert!(bind_with(&strict, &[("name", "n")], "").is_ok());
        // body: "filter" → the query cannot set filter or anything inside it.
        let message = bind(
            "/v1/x",
            Body::Field("filter".into()),
            &[],
            "filter.text=t&filter=x&page_size=4",
        )
        .unwrap();
        assert_eq!(get(&message, "filter.text"), s(""));
        assert_eq!(get(&message, "page_size"), Value::I32(4));
        // Unknown parameters: ignored by default, refused in strict mode.
        assert!(
            bind(
                "/v1/x",
                Body::None,
                &[],
                "bogus=1&filter.bogus=2&access_token=t"
            )
            .is_ok()
        );
        let strict = Binding::new(&PathTemplate::parse("/v1/x").unwrap(), Body::None)
            .reject_unknown_query_params(true);
        assert_eq!(
            bind_with(&strict, &[], "filter.bogus=2")
                .unwrap_err()
                .to_string(),
            "unknown field \"filter.bogus\""
        );
    }

    #[test]
    fn rejects_bad_input_with_typed_errors() {
        let cases: &[(&str, &str)] = &[
            (
                "page_size=1&page_size=2",
                "too many values for field \"page_size\"",
            ),
            (
                "page_size=1&pageSize=2",
                "too many values for field \"pageSize\"",
            ),
            (
                "counts[a]=1&counts[a]=2",
                "too many values for field \"counts[a]\"",
            ),
            (
                "page_size=abc",
                "invalid value \"abc\" for \"page_size\": expected an int32",
            ),
            (
                "page_size=2147483648",
                "invalid value \"2147483648\" for \"page_size\": expected an int32",
            ),
            (
                "small=-1",
                "invalid value \"-1\" for \"small\": expected a uint32",
            ),
            (
                "ratio=inf",
                "invalid value \"inf\" for \"ratio\": expected a double",
            ),
            (
                "weight=1e39",
                "invalid value \"1e39\" for \"weight\": expected a float",
            ),
            (
                "flag=yes",
                "invalid value \"yes\" for \"flag\": expected a bool (true or false)",
            ),
            ("blob=%%%", "malformed query parameter \"blob=%%%\""),
            (
                "blob=***",
                "invalid value \"***\" for \"blob\": expected base64 (standard or URL-safe)",
            ),
            (
                "color=BLUE",
                "invalid value \"BLUE\" for \"color\": expected a value of enum gw.test.Color",
            ),
            (
                "color=7",
                "invalid value \"7\" for \"color\": expected a value of enum gw.test.Color",
            ),
            (
                "at=yesterday",
                "invalid value \"yesterday\" for \"at\": expected an RFC 3339 timestamp such as \"2024-01-31T12:00:00Z\"",
            ),
            (
                "ttl=1h",
                "invalid value \"1h\" for \"ttl\": expected a duration in seconds such as \"1.5s\"",
            ),
            (
                "maybe=x",
                "invalid value \"x\" for \"maybe\": expected an int32",
            ),
            (
                "counts[a]=x",
                "invalid value \"x\" for \"counts[a]\": expected an int32",
            ),
            (
                "labels_by_id[x]=v",
                "invalid value \"x\" for \"labels_by_id[x]\": expected a map key of type int64",
            ),
            (
                "items=x",
                "cannot set \"items\": repeated message fields cannot be set from query parameters",
            ),
            (
                "items.id=x",
                "cannot set \"items.id\": \"items\" is a repeated or map field",
            ),
            (
                "item=x",
                "cannot set \"item\": gw.test.Item is a message; set its fields (`item.field=value`)",
            ),
            (
                "name.x=1",
                "cannot set \"name.x\": \"name\" is not a message",
            ),
            (
                "counts=1",
                "cannot set \"counts\": map entries are set as `name[key]=value`",
            ),
            (
                "tags[0]=a",
                "cannot set \"tags[0]\": only map fields take `[key]`",
            ),
            (
                "by_name=a&by_filter.text=b",
                "cannot set \"by_filter.text\": another field of oneof \"choice\" is already set",
            ),
            ("name=%FF", "malformed query parameter \"name=%FF\""),
            ("name=%4", "malformed query parameter \"name=%4\""),
        ];
        for (query, message) in cases {
            let error = bind("/v1/x", Body::None, &[], query).expect_err(query);
            assert_eq!(error.to_string(), *message, "{query}");
            assert_eq!(
                crate::Status::from(error).code(),
                crate::Code::InvalidArgument
            );
        }
        // Path variables: unknown fields and type errors are errors too.
        let path_cases: &[(&str, &str, &str)] = &[
            ("/v1/{nope}", "x", "unknown field \"nope\""),
            (
                "/v1/{page_size}",
                "x",
                "invalid value \"x\" for \"page_size\": expected an int32",
            ),
            (
                "/v1/{tags}",
                "x",
                "cannot set \"tags\": repeated and map fields cannot be bound from the path",
            ),
            (
                "/v1/{item}",
                "x",
                "cannot set \"item\": gw.test.Item is a message; set its fields (`item.field=value`)",
            ),
        ];
        for (template, value, message) in path_cases {
            let field = PathTemplate::parse(template).unwrap().variables()[0]
                .field_path()
                .to_owned();
            let error = bind(template, Body::None, &[(&field, value)], "").expect_err(template);
            assert_eq!(error.to_string(), *message, "{template}");
        }
    }

    #[test]
    fn form_decoding() {
        assert_eq!(form_decode("a+b%20c%2Bd", true).as_deref(), Some("a b c+d"));
        assert_eq!(
            form_decode("a+b%20c%2Bd", false).as_deref(),
            Some("a+b c+d")
        );
        assert!(matches!(
            form_decode("a+b", false),
            Some(Cow::Borrowed("a+b"))
        ));
        assert_eq!(form_decode("plain", true).as_deref(), Some("plain"));
        assert_eq!(form_decode("%e2%82%ac", true).as_deref(), Some("€"));
        assert_eq!(form_decode("%+1", true), None);
        assert_eq!(form_decode("%", true), None);
        assert_eq!(form_decode("%c3", true), None);
        // Through the binding: the option applies to names and values.
        let template = PathTemplate::parse("/v1/x").unwrap();
        let keep_plus = Binding::new(&template, Body::None).plus_as_space(false);
        let message = bind_with(&keep_plus, &[], "name=a+b&filter.text=%2B").unwrap();
        assert_eq!(get(&message, "name"), s("a+b"));
        assert_eq!(get(&message, "filter.text"), s("+"));
    }
}
