//! YAML configuration for servers and clients, with go-zero's keys.
//!
//! [`ServerConfig`] reads what go-zero's `RpcServerConf` reads, [`ClientConfig`] what its
//! `RpcClientConf` reads, under the same PascalCase keys, so an `etc/*.yaml` written for a
//! go-zero service mostly loads as it is. Each turns into the builder you would otherwise
//! write by hand: [`ServerConfig::builder`] gives a [`ServerBuilder`](crate::ServerBuilder),
//! [`ClientConfig::builder`] a [`ClientBuilder`](crate::client::ClientBuilder).
//!
//! ```
//! use rzero::config::{ClientConfig, ServerConfig};
//!
//! // etc/greeter.yaml
//! let server = ServerConfig::from_yaml_str(r#"
//! Name: greeter.rpc
//! ListenOn: 0.0.0.0:8080
//! Etcd:
//!   Hosts: [127.0.0.1:2379]
//!   Key: greeter.rpc
//! Timeout: 2000                  # ms, as in go-zero
//! Version: v2                    # registration labels clients can select on
//! Zone: eu-1
//! DrainDelay: 1s
//! MethodTimeouts:
//!   - FullMethod: /greeter.v1.Greeter/Export
//!     Timeout: 10s
//! Middlewares: {Breaker: false}
//! "#)?;
//! assert_eq!(server.listen_on(), "0.0.0.0:8080");
//! assert_eq!(server.timeout, std::time::Duration::from_secs(2));
//!
//! // the caller's etc/gateway.yaml (or just its GreeterRpc section)
//! let client = ClientConfig::from_yaml_str(r#"
//! Etcd: {Hosts: [127.0.0.1:2379], Key: greeter.rpc}
//! Balancer: round_robin
//! Select: {version: v2}
//! Timeout: 3000
//! NonBlock: true
//! "#)?;
//! assert_eq!(client.target()?, "etcd://127.0.0.1:2379/greeter.rpc");
//!
//! // Mistakes name the key and where it is.
//! let error = ClientConfig::from_yaml_str("Endpoints: [10.0.0.1:8080]\nBalancer: fastest\n")
//!     .unwrap_err();
//! assert!(error.to_string().starts_with("2:11: Balancer: unknown balancer `fastest`"));
//! # Ok::<(), rzero::config::ConfigError>(())
//! ```
//!
//! Then, in async code:
//!
//! ```ignore
//! let config = ServerConfig::from_yaml_file("etc/greeter.yaml")?;
//! config.builder()?.add_service(GreeterServer::new(MyGreeter)).serve(config.listen_on()).await?;
//!
//! let greeter = GreeterClient::new(ClientConfig::from_yaml_file("etc/client.yaml")?.build()?);
//! ```
//!
//! A program whose own config embeds these (go-zero's `UserRpc zrpc.RpcClientConf` field)
//! derives `serde::Deserialize` on its struct and loads it with [`from_yaml_str`] or
//! [`from_yaml_file`]: the same checks and the same error positions apply inside.
//!
//! # Keys
//!
//! | server key | meaning | default |
//! |---|---|---|
//! | `Name` | service name (informational) | `""` |
//! | `ListenOn` | `host:port` (required) | |
//! | `Etcd: {Hosts, Key, ID, TTL, Advertise}` | register in etcd | none |
//! | `Timeout` | bound on every call, ms (or `5s`); 0: none | 2000 |
//! | `CpuThreshold` | shed unary calls above this CPU usage, millicpu `0..1000`; 0: off | 900 |
//! | `Health` | serve `grpc.health.v1` | true |
//! | `Middlewares: {Trace, Recover, Stat, Prometheus, Breaker}` | interceptor switches (see below) | all true |
//! | `Middlewares.StatConf: {SlowThreshold, IgnoreContentMethods}` | `Stat` logs calls slower than `SlowThreshold` (a duration); `IgnoreContentMethods` accepted, changes nothing | `500ms`, none |
//! | `DevServer: {Enabled, Host, Port, MetricsPath, HealthPath, EnableMetrics, EnablePprof, HealthResponse}` | serve metrics and an HTTP health probe on a side port (`EnablePprof` accepted, nothing served) | `Enabled: false`, `0.0.0.0`, 6060, `/metrics`, `/healthz`, true, —, `OK` |
//! | `Metadata`, `Version`, `Zone`, `Weight` | registration labels (need `Etcd`) | none |
//! | `DrainDelay` (alias `ShutdownDelay`) | wait after deregistering, before draining | 0 |
//! | `MethodTimeouts: [{FullMethod, Timeout}]` | per-method bounds (durations) | none |
//! | `Auth` | check go-zero app/token credentials against `Redis` (fails closed; needs feature `redis`) | false |
//! | `Redis: {Host, Type, User, Pass, Key, PingTimeout}` | the hash of app tokens (`Type: node` only); `Host`, `Key` required with `Auth` | none |
//! | `StrictControl` | accepted; rzero is always strict (see below) | |
//! | `Tls: {CertFile, KeyFile, CaFile, ClientAuth}` | serve over TLS (gRPC and gateway); `CaFile` asks clients for certificates, `ClientAuth: required` (default) or `optional` (rzero's; needs the `tls` feature) | none |
//! | `GrpcWeb: {Enabled, Cors}` | answer gRPC-Web on the gRPC port, with CORS for other origins ([`GrpcWebConfig`]; rzero's; needs the `grpc-web` feature) | `Enabled: false` |
//! | `Gateway: {ListenOn, Timeout, MaxBytes, MaxReplySize, Json, RejectUnknownQueryParams, PlusAsSpace, MultiSegmentDecoding, StrictTrailingSlash, StreamFraming, Healthz, Cors}` | the REST gateway's options, set on its builder by [`GatewayConfig::apply`], and its own port (see below; rzero's; needs the `gateway` feature) | the builder's |
//! | `Gateway.Json: {EmitUnpopulated, UseProtoNames, EnumsAsInts, DiscardUnknown}` | the gateway's JSON mapping (protojson's names; `DiscardUnknown: false` makes unknown keys a 400) | grpc-gateway's: `true`, `false`, `false`, `true` |
//! | `Cors: {AllowOrigins, AllowCredentials, AllowHeaders, ExposeHeaders, MaxAge}` (in `GrpcWeb` and `Gateway`) | origins (a list, or one comma-separated string; `"*"`: any), credentials, headers, preflight cache time ([`CorsConfig`]) | `AllowOrigins` required; `false`, mirrored, none, not sent |
//!
//! | client key | meaning | default |
//! |---|---|---|
//! | `Target` | any target (`dns:///`, `static:///`, `etcd://`, `host:port`, ...) | |
//! | `Endpoints` | list of `host:port` → `static:///a,b` | |
//! | `Etcd: {Hosts, Key}` | discover in etcd → `etcd://h1,h2/key` | |
//! | `NonBlock` | accepted, ignored: rzero clients never block | true |
//! | `Timeout` | default call deadline, ms (or `5s`); 0: none | 2000 |
//! | `KeepaliveTime` | HTTP/2 ping interval while calls are open | none |
//! | `Balancer` (alias `BalancerName`) | `p2c_ewma`, `round_robin`, `pick_first`, `consistent_hash` | `p2c_ewma` |
//! | `Select` | metadata labels the servers must have | none |
//! | `HealthCheck` | skip servers whose `grpc.health.v1` is not `SERVING` | false |
//! | `SubsetSize` | balance over at most this many servers; 0: all | 32 |
//! | `Middlewares: {Trace, Duration, Prometheus, Breaker, Timeout}` | interceptor switches (see below) | all true |
//! | `MethodTimeouts: [{FullMethod, Timeout}]` | per-method deadlines | none |
//! | `App`, `Token` | go-zero app/token credentials sent with every call (both or neither) | none |
//! | `AllowPlaintextCredentials` | send `App`/`Token` without TLS | false |
//! | `Tls: {CaFile, CertFile, KeyFile, ServerName}` | call over TLS trusting `CaFile`; `CertFile` + `KeyFile` for mutual TLS; `ServerName` overrides the name certificates must carry (rzero's; needs the `tls` feature) | none |
//!
//! # Decisions
//!
//! - **Strict.** An unknown key is an error (go-zero ignores typos such as `Timout: 9000`
//!   and runs with the default). go-zero keys rzero does not read yet (`Log`,
//!   `Telemetry`, ...) are refused by name rather than accepted and
//!   ignored: a config asking for `Auth: true` must not start a server without auth. Exactly
//!   one of `Target`, `Endpoints`, `Etcd` must be set on a client (go-zero silently prefers
//!   `Endpoints`, then `Target`).
//! - **Errors name the key and the position**: `etc/greeter.yaml:7:12: Etcd.Hosts: invalid
//!   type: string "127.0.0.1:2379", expected a sequence`. Checks that involve several keys
//!   (e.g. `Target` and `Endpoints` both set) point at the key at fault too, including in a
//!   config embedded in a larger one.
//! - **Units.** `Timeout` is milliseconds as in go-zero; a duration string (`2s`) is accepted
//!   too. Keys that are Go `time.Duration`s in go-zero (`MethodTimeouts[].Timeout`,
//!   `KeepaliveTime`) take Go duration strings (`500ms`, `1m30s`); a bare number there is
//!   refused, because go-zero reads it as nanoseconds (its docs' `KeepaliveTime: 20000` means
//!   20 µs), which nobody means. `Etcd.TTL` is whole seconds (etcd's unit) or a duration.
//! - **Environment.** `${VAR}` and `${VAR:-default}` are replaced before parsing, always
//!   (go-zero needs `conf.UseEnv()`); unlike go-zero a bare `$VAR` is left alone (a `$` in a
//!   password stays a `$`), an unset variable without a default is an error instead of `""`,
//!   `$${` writes a literal `${`, and comment lines are not expanded. Error columns refer to
//!   the file as written.
//! - **gRPC-Web, CORS and the gateway** are rzero's keys (zrpc has none; go-zero's REST
//!   servers set CORS in code). `GrpcWeb` has an `Enabled` switch like `DevServer`, rather
//!   than being on when present, so one file keeps its `Cors` and turns it on per
//!   environment. The gateway is built in code (it needs the generated rules), so its
//!   section holds options: [`GatewayConfig::apply`] sets those given on a
//!   [`GatewayBuilder`](crate::gateway::GatewayBuilder) and leaves the rest as code set
//!   them, and `Gateway.ListenOn` moves the gateway added with
//!   [`ServerBuilder::gateway`](crate::ServerBuilder::gateway) to a port of its own.
//!   `Gateway.Timeout` and `MaxBytes` (alias `MaxBodySize`) read as go-zero's `RestConf`
//!   reads them (milliseconds, bytes). CORS mistakes (a malformed origin, `"*"` next to
//!   other origins or with `AllowCredentials: true`, a bad header name) are load errors
//!   that name the entry and its line. Quote a lone `*` (`"*"`): YAML reads a bare one as
//!   an alias.
//! - **Features.** A key of a feature this build lacks (`Etcd`, `Auth`, `Tls`, `GrpcWeb`,
//!   `Gateway`) is an error saying so (`this rzero was built without its `gateway`
//!   feature`), not an unknown key.
//! - **Defaults that differ from go-zero**, and why:
//!   - `Name` is optional (go-zero requires it): nothing in rzero uses it yet.
//!   - `DevServer.Enabled` is false (go-zero: true): a port that answers anyone is opened
//!     when the config asks for it. Its `Host` defaults to `0.0.0.0`, as go-zero's empty
//!     default means.
//!   - `DrainDelay` is 0 (go-zero waits `Shutdown.WrapUpTime`, 1 s): rzero clients watch etcd
//!     and the server drains in-flight calls anyway; set `1s` for peers that poll.
//!   - `SubsetSize` is 32 like go-zero, but the subset is stable (gRFC A68) instead of
//!     re-shuffled on every endpoint change.
//!   - `Metadata`/`Version`/`Zone`/`Weight` and `Etcd.TTL`/`Etcd.ID`/`Etcd.Advertise` are
//!     rzero's (go-zero cannot publish metadata, issue #5339); the labels are ignored without
//!     `Etcd`.
//! - **Auth fails closed.** With `Auth: true`, an unknown app and a call made while Redis is
//!   down are refused (`UNAUTHENTICATED`, `UNAVAILABLE`) whatever `StrictControl` says:
//!   go-zero lets both in when `StrictControl` is false (its default), which rzero does
//!   only when asked in code, with
//!   [`AppTokenAuth::lenient_go_zero_compat`](crate::auth::AppTokenAuth::lenient_go_zero_compat)
//!   (`StrictControl: false` logs a warning saying so). A client sends `App`/`Token` only
//!   over TLS unless `AllowPlaintextCredentials: true` (go-zero sends them in the clear).
//!   Tokens are cached for a minute (go-zero: five).
//! - **Library.** [`serde_norway`](https://crates.io/crates/serde_norway), the maintained
//!   fork of `serde_yaml` 0.9 (deprecated upstream): the same proven `libyaml` port, every
//!   error with a line and column and the key path, MSRV 1.71, and light (`indexmap`,
//!   `itoa`, `ryu` are in the tree already). `serde-saphyr` has richer spans but needs Rust
//!   1.89 (the workspace promises 1.88) and pulls `encoding_rs`; `serde_yml` is
//!   unmaintained.
//!
//! # What is not mapped yet
//!
//! Every `Middlewares` switch is applied, in go-zero's order (first = outermost), ahead of
//! the interceptors you add to the builder:
//!
//! - Server: `Trace` adds [`tracing_server`](crate::interceptor::tracing_server). `Recover:
//!   false` changes nothing: a panicking handler always answers `INTERNAL` in rzero. `Stat`
//!   adds [`slow_calls`](crate::interceptor::slow_calls) at `StatConf.SlowThreshold`: calls
//!   slower than that are logged at WARN (`[RPC] slowcall`, with the method, time, code
//!   and peer). go-zero's `Stat` also logs every request body at INFO; rzero logs no
//!   message contents (their cost on every call, and personal data and credentials in
//!   logs), so `StatConf.IgnoreContentMethods` is checked and then changes nothing.
//!   `Prometheus` records every call in the process-wide
//!   [`Metrics::global`](crate::metrics::Metrics::global) registry
//!   ([`ServerBuilder::metrics`](crate::ServerBuilder::metrics)), which `DevServer` serves.
//!   `Breaker` adds a [`Breaker`](crate::protection::Breaker) per method; like shedding it
//!   refuses calls before the interceptors run.
//! - Client ([`ClientConfig::build`]): `Trace` adds
//!   [`tracing_client`](crate::interceptor::tracing_client); `Duration` adds
//!   [`slow_calls`](crate::interceptor::slow_calls) with go-zero's fixed 500 ms threshold
//!   and [`log_failures`](crate::interceptor::SlowCalls::log_failures): slow calls at
//!   WARN, failed ones at INFO (go-zero: ERROR, with the request; rzero logs no request);
//!   `Prometheus` adds [`Metrics::global`](crate::metrics::Metrics::global)`.client()`;
//!   `Breaker` adds a [`Breaker`](crate::protection::Breaker) per method of the target;
//!   `Timeout: false` drops `Timeout` and `MethodTimeouts`. The breaker and the deadlines
//!   sit next to the network, inside the interceptors, as in go-zero.
//! - `DevServer` serves [`Metrics::global`](crate::metrics::Metrics::global) at
//!   `MetricsPath` and a health probe at `HealthPath` (200 with `HealthResponse` while the
//!   server is `SERVING`, 503 once it shuts down) on `Host:Port`, for as long as the server
//!   runs ([`ServerBuilder::dev_server`](crate::ServerBuilder::dev_server)); failing to
//!   bind the port fails the start. go-zero's pprof endpoints are not served
//!   (`EnablePprof: true` logs a warning), nor its `/` route list.
//! - `CpuThreshold` turns on [`Shedding`](crate::protection::Shedding) at that threshold,
//!   reading the CPU from cgroup v2 or `/proc/stat` (0, as in go-zero, turns it off).
//! - go-zero's `Log`, `Telemetry`, the deprecated top-level `Prometheus: {Host, Port,
//!   Path}` (use `DevServer`), etcd `User`/`Pass`/TLS: refused as not supported.
//!   `Redis.Type: cluster` and `Redis.Tls: true` are refused too.

mod client;
#[cfg(any(feature = "gateway", feature = "grpc-web"))]
mod cors;
mod de;
#[cfg(feature = "gateway")]
mod gateway;
#[cfg(feature = "grpc-web")]
mod grpc_web;
mod load;
mod redis;
mod server;
#[cfg(test)]
mod tests;
#[cfg(feature = "tls")]
mod tls;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;

pub use client::{ClientConfig, ClientEtcdConfig, ClientMiddlewares};
#[cfg(any(feature = "gateway", feature = "grpc-web"))]
pub use cors::CorsConfig;
#[cfg(feature = "gateway")]
pub use gateway::{GatewayConfig, GatewayJsonConfig};
#[cfg(feature = "grpc-web")]
pub use grpc_web::GrpcWebConfig;
pub use redis::RedisConfig;
pub use server::{DevServerConfig, ServerConfig, ServerEtcdConfig, ServerMiddlewares, StatConfig};
#[cfg(feature = "tls")]
pub use tls::{ClientTlsConfig, ServerTlsConfig};

/// Parses YAML text into any `T` (e.g. a program's own config struct that embeds
/// [`ServerConfig`] and [`ClientConfig`] fields), with `${VAR}` expansion and errors that
/// name the key and position, as [`ServerConfig::from_yaml_str`] does.
pub fn from_yaml_str<T: DeserializeOwned>(text: &str) -> Result<T, ConfigError> {
    load::parse(text, None)
}

/// Reads and parses a YAML file into any `T`; see [`from_yaml_str`].
pub fn from_yaml_file<T: DeserializeOwned>(path: impl AsRef<Path>) -> Result<T, ConfigError> {
    load::parse_file(path.as_ref())
}

/// One entry of `MethodTimeouts`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
#[non_exhaustive]
pub struct MethodTimeout {
    /// `FullMethod`: `/package.Service/Method`.
    #[serde(deserialize_with = "full_method")]
    pub full_method: String,
    /// `Timeout`: a Go duration, e.g. `10s` (more than 0).
    #[serde(deserialize_with = "de::go_duration")]
    pub timeout: Duration,
}

impl MethodTimeout {
    /// A timeout for `full_method` (`/package.Service/Method`).
    pub fn new(full_method: impl Into<String>, timeout: Duration) -> Self {
        Self {
            full_method: full_method.into(),
            timeout,
        }
    }
}

fn full_method<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    d.deserialize_str(de::Parse(
        |path| check_full_method(path).map(|()| path.to_owned()),
        "`/package.Service/Method`",
    ))
}

fn check_full_method(path: &str) -> Result<(), String> {
    let ok = path
        .strip_prefix('/')
        .and_then(|rest| rest.split_once('/'))
        .is_some_and(|(service, method)| {
            !service.is_empty()
                && !method.is_empty()
                && !method.contains('/')
                && !path.contains(char::is_whitespace)
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{path}`: expected `/package.Service/Method`, e.g. `/greeter.v1.Greeter/SayHello`"
        ))
    }
}

/// Duplicates and malformed paths (for configs built in code).
fn check_method_timeouts(list: &[MethodTimeout]) -> Result<(), (String, String)> {
    for (index, entry) in list.iter().enumerate() {
        let key = format!("MethodTimeouts[{index}].FullMethod");
        check_full_method(&entry.full_method).map_err(|m| (key.clone(), m))?;
        if entry.timeout.is_zero() {
            return Err((
                format!("MethodTimeouts[{index}].Timeout"),
                "must be more than 0 (for a long method, give a long timeout)".to_owned(),
            ));
        }
        if let Some(first) = list[..index]
            .iter()
            .position(|e| e.full_method == entry.full_method)
        {
            return Err((
                key,
                format!(
                    "`{}` already has a timeout (MethodTimeouts[{first}])",
                    entry.full_method
                ),
            ));
        }
    }
    Ok(())
}

/// Implements `Deserialize` for a config struct derived with `#[serde(remote = "Self")]`:
/// reads it with the derived code, then runs its `check`, inside the parser's mapping so
/// that the error carries the mapping's key path (and the loader finds the line of the key
/// at fault).
macro_rules! checked_deserialize {
    ($ty:ident) => {
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct Checked;
                impl<'de> serde::de::Visitor<'de> for Checked {
                    type Value = $ty;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str("a mapping")
                    }
                    fn visit_map<A: serde::de::MapAccess<'de>>(
                        self,
                        map: A,
                    ) -> Result<$ty, A::Error> {
                        let value =
                            $ty::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                        value
                            .check()
                            .map_err(|(key, message)| super::de::invalid(&key, message))?;
                        Ok(value)
                    }
                }
                d.deserialize_map(Checked)
            }
        }
    };
}
pub(crate) use checked_deserialize;

/// A config that could not be read, parsed or applied. Its `Display` is
/// `file:line:column: Key.Path: message`, leaving out what is unknown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    file: Option<PathBuf>,
    line: Option<usize>,
    column: Option<usize>,
    key: String,
    message: String,
}

impl ConfigError {
    fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            file: None,
            line: None,
            column: None,
            key: key.into(),
            message: message.into(),
        }
    }

    /// The file, when loaded from one.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// Line (1-based) in the source, when known.
    pub fn line(&self) -> Option<usize> {
        self.line
    }

    /// Column (1-based, in characters) in the source, when known.
    pub fn column(&self) -> Option<usize> {
        self.column
    }

    /// The key path, e.g. `Etcd.Hosts` or `MethodTimeouts[1].Timeout` (empty for the whole
    /// document).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// What is wrong.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut position = Vec::new();
        if let Some(file) = &self.file {
            position.push(file.display().to_string());
        }
        if let Some(line) = self.line {
            position.push(line.to_string());
            if let Some(column) = self.column {
                position.push(column.to_string());
            }
        }
        if !position.is_empty() {
            write!(f, "{}: ", position.join(":"))?;
        }
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}
