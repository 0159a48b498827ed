//! `Gateway` in a server config: the REST/JSON gateway's options (go-zero's `RestConf`
//! names where it has one: `Timeout`, `MaxBytes`).

use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self as serde_de, Visitor};

use super::{CorsConfig, de};
use crate::gateway::{GatewayBuilder, MultiSegmentDecoding, StreamFraming};

/// `Gateway` in a server config: the options of the REST/JSON gateway, and where it listens.
///
/// The gateway itself is built in code, since it needs the generated rules and descriptors;
/// [`apply`](Self::apply) sets these options on its builder, and
/// [`ServerConfig::builder`](super::ServerConfig::builder) serves the gateway you add with
/// [`ServerBuilder::gateway`](crate::ServerBuilder::gateway) on `ListenOn` when it is set
/// (on the gRPC port otherwise):
///
/// ```yaml
/// ListenOn: 0.0.0.0:8080
/// Gateway:
///   ListenOn: 0.0.0.0:8888          # REST on a port of its own; leave out to share 8080
///   Timeout: 3000                   # ms, or a duration
///   MaxBytes: 1048576               # request bodies over 1 MiB get 413
///   Json: {UseProtoNames: true, DiscardUnknown: false}
///   Healthz: /healthz
///   Cors:
///     AllowOrigins: ${CORS_ORIGINS}
/// ```
///
/// ```ignore
/// let config = ServerConfig::from_yaml_file("etc/greeter.yaml")?;
/// let gateway = config.gateway.apply(Gateway::builder().service(&pb::GREETER_HTTP_RULES)).build()?;
/// config.builder()?.add_service(GreeterServer::new(MyGreeter)).gateway(gateway)
///     .serve(config.listen_on()).await?;
/// ```
///
/// Every key is optional and a key left out leaves the builder as it is (its default, or
/// what code set before `apply`), so code can set a baseline and the file adjust it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(
    remote = "Self",
    deny_unknown_fields,
    rename_all = "PascalCase",
    default
)]
#[non_exhaustive]
pub struct GatewayConfig {
    /// `ListenOn`: `host:port` to serve the gateway on, next to the gRPC port (as
    /// [`ServerBuilder::gateway_on`](crate::ServerBuilder::gateway_on) does). Default: the
    /// gRPC port, told apart by content type.
    #[serde(deserialize_with = "opt_host_port")]
    pub listen_on: Option<String>,
    /// `Timeout`: the deadline of calls whose request carries no `Grpc-Timeout` (and bound
    /// on those that do), milliseconds as in go-zero's `RestConf`, or a duration such as
    /// `3s`; 0: none ([`GatewayBuilder::timeout`]). Builder's default: none.
    #[serde(deserialize_with = "opt_millis")]
    pub timeout: Option<Duration>,
    /// `MaxBytes` (go-zero's `RestConf` name; `MaxBodySize` is accepted too): the largest
    /// request body, in bytes; larger ones get 413 ([`GatewayBuilder::max_body_size`]).
    /// Builder's default: 4 MiB (go-zero's: 1 MiB).
    #[serde(alias = "MaxBodySize", deserialize_with = "opt_bytes")]
    pub max_bytes: Option<usize>,
    /// `MaxReplySize`: the largest reply message taken from the service, in bytes
    /// ([`GatewayBuilder::max_reply_size`]). Builder's default: 4 MiB.
    #[serde(deserialize_with = "opt_bytes")]
    pub max_reply_size: Option<usize>,
    /// `Json`: how messages map to JSON (see [`GatewayJsonConfig`]).
    pub json: GatewayJsonConfig,
    /// `RejectUnknownQueryParams`: a query parameter that names no field is a 400
    /// ([`GatewayBuilder::reject_unknown_query_params`]). Builder's default: false.
    pub reject_unknown_query_params: Option<bool>,
    /// `PlusAsSpace`: `+` in a query string is a space
    /// ([`GatewayBuilder::plus_as_space`]). Builder's default: true.
    pub plus_as_space: Option<bool>,
    /// `MultiSegmentDecoding`: `KeepReserved`, `KeepSlash` or `DecodeAll`
    /// ([`MultiSegmentDecoding`]). Builder's default: `KeepReserved`.
    #[serde(deserialize_with = "opt_multi_segment_decoding")]
    pub multi_segment_decoding: Option<MultiSegmentDecoding>,
    /// `StrictTrailingSlash`: `/v1/books/` does not match `/v1/books`
    /// ([`GatewayBuilder::strict_trailing_slash`]). Builder's default: false.
    pub strict_trailing_slash: Option<bool>,
    /// `StreamFraming`: `Ndjson`, `JsonArray` or `ServerSentEvents`, for streamed replies
    /// whose request's `Accept` does not choose ([`StreamFraming`]). Builder's default:
    /// `Ndjson`.
    #[serde(deserialize_with = "opt_stream_framing")]
    pub stream_framing: Option<StreamFraming>,
    /// `Healthz`: a path, e.g. `/healthz`, answered from `grpc.health.v1`
    /// ([`GatewayBuilder::healthz`]). Builder's default: none.
    #[serde(deserialize_with = "opt_path")]
    pub healthz: Option<String>,
    /// `Cors`: let browser pages from other origins call (see [`CorsConfig`]). Builder's
    /// default: no CORS.
    pub cors: Option<CorsConfig>,
}

/// `Gateway.Json`: the gateway's JSON mapping ([`JsonOptions`](crate::gateway::JsonOptions)),
/// under protojson's option names (grpc-gateway users set these on its marshaler). Keys
/// left out keep the builder's choice (by default grpc-gateway v2's: unpopulated fields
/// emitted, JSON names, enums by name, unknown keys ignored).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase", default)]
#[non_exhaustive]
pub struct GatewayJsonConfig {
    /// `EmitUnpopulated`: write fields at their default value too.
    pub emit_unpopulated: Option<bool>,
    /// `UseProtoNames`: write proto field names (`page_size`) instead of JSON names
    /// (`pageSize`); input accepts both either way.
    pub use_proto_names: Option<bool>,
    /// `EnumsAsInts` (jsonpb's name; protojson's `UseEnumNumbers` is accepted too): write
    /// enums as numbers.
    #[serde(alias = "UseEnumNumbers")]
    pub enums_as_ints: Option<bool>,
    /// `DiscardUnknown`: ignore request body keys that name no field; `false` makes them a
    /// 400.
    pub discard_unknown: Option<bool>,
}

super::checked_deserialize!(GatewayConfig);

fn opt_host_port<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    de::host_port(d).map(Some)
}

fn opt_millis<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    de::millis(d).map(Some)
}

fn opt_path<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    d.deserialize_str(de::Parse(
        |path| check_path(path).map(|()| Some(path.to_owned())),
        "a path such as `/healthz`",
    ))
}

fn check_path(path: &str) -> Result<(), String> {
    super::server::check_http_path(path)
        .map_err(|_| format!("`{path}`: expected a path such as `/healthz`"))
}

/// A size in bytes, more than 0.
fn opt_bytes<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    struct Bytes;
    impl Visitor<'_> for Bytes {
        type Value = usize;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a number of bytes, e.g. 1048576")
        }
        fn visit_u64<E: serde_de::Error>(self, value: u64) -> Result<usize, E> {
            match usize::try_from(value) {
                Ok(0) => Err(E::custom("must be more than 0")),
                Ok(bytes) => Ok(bytes),
                Err(_) => Err(E::custom(format_args!("`{value}` is too large"))),
            }
        }
        fn visit_i64<E: serde_de::Error>(self, value: i64) -> Result<usize, E> {
            match u64::try_from(value) {
                Ok(value) => self.visit_u64(value),
                Err(_) => Err(E::custom(format_args!(
                    "`{value}`: must be more than 0 bytes"
                ))),
            }
        }
        fn visit_str<E: serde_de::Error>(self, value: &str) -> Result<usize, E> {
            match value.trim().parse::<u64>() {
                Ok(number) => self.visit_u64(number),
                Err(_) => Err(E::custom(format_args!(
                    "`{value}`: expected a number of bytes, e.g. 1048576"
                ))),
            }
        }
    }
    d.deserialize_any(Bytes).map(Some)
}

/// `JsonArray`, `json_array` and `jsonarray` alike.
fn normalize(name: &str) -> String {
    name.chars()
        .filter(|c| !matches!(c, '_' | '-'))
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn opt_stream_framing<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<StreamFraming>, D::Error> {
    d.deserialize_str(de::Parse(
        |name| match normalize(name).as_str() {
            "ndjson" => Ok(Some(StreamFraming::Ndjson)),
            "jsonarray" => Ok(Some(StreamFraming::JsonArray)),
            "serversentevents" | "sse" => Ok(Some(StreamFraming::ServerSentEvents)),
            _ => Err(format!(
                "unknown framing `{name}` (known: Ndjson, JsonArray, ServerSentEvents)"
            )),
        },
        "`Ndjson`, `JsonArray` or `ServerSentEvents`",
    ))
}

fn opt_multi_segment_decoding<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<MultiSegmentDecoding>, D::Error> {
    d.deserialize_str(de::Parse(
        |name| match normalize(name).as_str() {
            "keepreserved" => Ok(Some(MultiSegmentDecoding::KeepReserved)),
            "keepslash" => Ok(Some(MultiSegmentDecoding::KeepSlash)),
            "decodeall" => Ok(Some(MultiSegmentDecoding::DecodeAll)),
            _ => Err(format!(
                "unknown decoding `{name}` (known: KeepReserved, KeepSlash, DecodeAll)"
            )),
        },
        "`KeepReserved`, `KeepSlash` or `DecodeAll`",
    ))
}

impl GatewayConfig {
    /// Sets the options given on `builder`; those left out keep what it has. Add the
    /// services (and hooks, header matchers, ...) in code, before or after.
    ///
    /// `ListenOn` is not a builder option: the server built by
    /// [`ServerConfig::builder`](super::ServerConfig::builder) reads it.
    pub fn apply(&self, mut builder: GatewayBuilder) -> GatewayBuilder {
        match self.timeout {
            Some(timeout) if timeout.is_zero() => builder = builder.without_timeout(),
            Some(timeout) => builder = builder.timeout(timeout),
            None => {}
        }
        if let Some(bytes) = self.max_bytes {
            builder = builder.max_body_size(bytes);
        }
        if let Some(bytes) = self.max_reply_size {
            builder = builder.max_reply_size(bytes);
        }
        let mut json = builder.json_options();
        let j = &self.json;
        if let Some(yes) = j.emit_unpopulated {
            json = json.emit_unpopulated(yes);
        }
        if let Some(yes) = j.use_proto_names {
            json = json.proto_field_names(yes);
        }
        if let Some(yes) = j.enums_as_ints {
            json = json.enums_as_numbers(yes);
        }
        if let Some(discard) = j.discard_unknown {
            json = json.reject_unknown_fields(!discard);
        }
        builder = builder.json(json);
        if let Some(reject) = self.reject_unknown_query_params {
            builder = builder.reject_unknown_query_params(reject);
        }
        if let Some(yes) = self.plus_as_space {
            builder = builder.plus_as_space(yes);
        }
        if let Some(decoding) = self.multi_segment_decoding {
            builder = builder.multi_segment_decoding(decoding);
        }
        if let Some(strict) = self.strict_trailing_slash {
            builder = builder.strict_trailing_slash(strict);
        }
        if let Some(framing) = self.stream_framing {
            builder = builder.stream_framing(framing);
        }
        if let Some(path) = &self.healthz {
            builder = builder.healthz(path);
        }
        if let Some(cors) = &self.cors {
            builder = builder.cors(cors.to_cors());
        }
        builder
    }

    /// Checks what the YAML loader checks after reading the keys; `(key, message)` with the
    /// key relative to `Gateway`.
    pub(super) fn check(&self) -> Result<(), (String, String)> {
        if let Some(addr) = &self.listen_on {
            de::check_host_port(addr).map_err(|m| ("ListenOn".to_owned(), m))?;
        }
        for (key, size) in [
            ("MaxBytes", self.max_bytes),
            ("MaxReplySize", self.max_reply_size),
        ] {
            if size == Some(0) {
                return Err((key.to_owned(), "must be more than 0".to_owned()));
            }
        }
        if let Some(path) = &self.healthz {
            check_path(path).map_err(|m| ("Healthz".to_owned(), m))?;
        }
        if let Some(cors) = &self.cors {
            cors.check()
                .map_err(|(key, message)| (format!("Cors.{key}"), message))?;
        }
        Ok(())
    }
}
