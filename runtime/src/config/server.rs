//! `ServerConfig`: go-zero's `RpcServerConf`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::de;
use super::{ConfigError, MethodTimeout, RedisConfig, check_method_timeouts, load};
use crate::ServerBuilder;

/// A server's settings, with go-zero's `RpcServerConf` keys (see the [module docs](super)).
///
/// Every field is public, so a program can also build or adjust one in code
/// (`let mut c = ServerConfig::from_yaml_file(..)?; c.listen_on = ...`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(remote = "Self", deny_unknown_fields, rename_all = "PascalCase")]
#[non_exhaustive]
pub struct ServerConfig {
    /// `Name`: the service name, e.g. `greeter.rpc` (informational; optional).
    #[serde(default)]
    pub name: String,
    /// `ListenOn` (required): `host:port` to listen on, e.g. `0.0.0.0:8080`; port 0 lets the
    /// OS pick one.
    #[serde(deserialize_with = "de::host_port")]
    pub listen_on: String,
    /// `Etcd`: publish the server in etcd under `Key` (see [`ServerEtcdConfig`]).
    #[serde(default)]
    pub etcd: Option<ServerEtcdConfig>,
    /// `Timeout`: upper bound on every call, in milliseconds (or a duration such as `5s`);
    /// the handler is cancelled and the client gets `DEADLINE_EXCEEDED`. Default 2000
    /// (go-zero's); 0: no bound but the client's deadline.
    #[serde(default = "default_timeout", deserialize_with = "de::millis")]
    pub timeout: Duration,
    /// `CpuThreshold`: go-zero's load-shedding threshold in millicpu, `0..1000`: unary calls
    /// are shed while the CPU is over it and the server is busier than usual (see
    /// [`Shedding`](crate::protection::Shedding)). Default 900; 0 turns shedding off.
    #[serde(default = "default_cpu_threshold", deserialize_with = "cpu_threshold")]
    pub cpu_threshold: u32,
    /// `Health`: serve `grpc.health.v1`. Default true.
    #[serde(default = "yes")]
    pub health: bool,
    /// `Middlewares`: go-zero's switches for the built-in server interceptors.
    #[serde(default)]
    pub middlewares: ServerMiddlewares,
    /// `DevServer`: metrics and an HTTP health probe on a port of their own (see
    /// [`DevServerConfig`]). Off by default.
    #[serde(default)]
    pub dev_server: DevServerConfig,
    /// `Metadata`: labels published with the etcd registration (clients select on them).
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// `Version`: the `version` label of the registration (for canary routing).
    #[serde(default)]
    pub version: Option<String>,
    /// `Zone`: the `zone` label of the registration.
    #[serde(default)]
    pub zone: Option<String>,
    /// `Weight`: the `weight` label of the registration.
    #[serde(default)]
    pub weight: Option<u32>,
    /// `DrainDelay` (or `ShutdownDelay`): a Go duration (`1s`) to wait at shutdown, after
    /// deregistering and turning `NOT_SERVING`, before refusing new calls. Default 0.
    #[serde(default, alias = "ShutdownDelay", deserialize_with = "de::go_duration")]
    pub drain_delay: Duration,
    /// `MethodTimeouts`: per-method bounds, `[{FullMethod: /pkg.Svc/Method, Timeout: 10s}]`.
    #[serde(default)]
    pub method_timeouts: Vec<MethodTimeout>,
    /// `Auth`: check go-zero app/token credentials on every call (but health checks) against
    /// the hash in `Redis`, failing closed (see [`AppTokenAuth`](crate::auth::AppTokenAuth)).
    /// Default false.
    #[serde(default)]
    pub auth: bool,
    /// `Redis`: where `Auth` finds the tokens (read only with `Auth: true`, as in go-zero).
    #[serde(default)]
    pub redis: Option<RedisConfig>,
    /// `StrictControl`: go-zero's switch between refusing (true) and letting in (false)
    /// unknown apps and calls made while Redis is down. rzero always refuses them; `false`
    /// is not honoured (a warning says so): build
    /// [`AppTokenAuth::lenient_go_zero_compat`](crate::auth::AppTokenAuth::lenient_go_zero_compat)
    /// in code if you depend on go-zero's leniency.
    #[serde(default)]
    pub strict_control: Option<bool>,
    /// `Tls`: serve over TLS, `{CertFile, KeyFile, CaFile, ClientAuth}` (rzero's).
    #[cfg(feature = "tls")]
    #[serde(default)]
    pub tls: Option<super::ServerTlsConfig>,
    #[cfg(not(feature = "tls"))]
    #[serde(default, rename = "Tls", deserialize_with = "de::no_tls")]
    tls: de::CompiledOut,
    /// `GrpcWeb`: answer gRPC-Web on the gRPC port, `{Enabled, Cors}` (rzero's; needs the
    /// `grpc-web` feature). Off by default.
    #[cfg(feature = "grpc-web")]
    #[serde(default)]
    pub grpc_web: super::GrpcWebConfig,
    #[cfg(not(feature = "grpc-web"))]
    #[serde(default, rename = "GrpcWeb", deserialize_with = "no_grpc_web")]
    grpc_web: de::CompiledOut,
    /// `Gateway`: the REST/JSON gateway's options and port (rzero's; needs the `gateway`
    /// feature). The gateway is built in code: see [`GatewayConfig`](super::GatewayConfig).
    #[cfg(feature = "gateway")]
    #[serde(default)]
    pub gateway: super::GatewayConfig,
    #[cfg(not(feature = "gateway"))]
    #[serde(default, rename = "Gateway", deserialize_with = "no_gateway")]
    gateway: de::CompiledOut,
}

#[cfg(not(feature = "grpc-web"))]
fn no_grpc_web<'de, D: serde::Deserializer<'de>>(d: D) -> Result<de::CompiledOut, D::Error> {
    de::compiled_out(d, "grpc-web")
}

#[cfg(not(feature = "gateway"))]
fn no_gateway<'de, D: serde::Deserializer<'de>>(d: D) -> Result<de::CompiledOut, D::Error> {
    de::compiled_out(d, "gateway")
}

/// `Etcd` in a server config: where to register.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
#[non_exhaustive]
pub struct ServerEtcdConfig {
    /// `Hosts` (required): etcd members, `host:port` each.
    #[serde(deserialize_with = "de::host_ports")]
    pub hosts: Vec<String>,
    /// `Key` (required): the service key; the server publishes under `<Key>/<ID>`.
    #[serde(deserialize_with = "de::non_empty")]
    pub key: String,
    /// `ID`: a fixed suffix for the key (go-zero's `int64`; any text here). Default: the
    /// lease id, a new one per run.
    #[serde(default, rename = "ID", deserialize_with = "de::opt_string_or_int")]
    pub id: Option<String>,
    /// `TTL`: lease time to live, whole seconds or a duration (`10s`). Default 10 s.
    #[serde(default, rename = "TTL", deserialize_with = "de::opt_seconds")]
    pub ttl: Option<Duration>,
    /// `Advertise`: the `host:port` to publish, when the listening address is not the one
    /// clients should dial. Default: the listening host, else `POD_IP`, else the machine's
    /// outward IPv4 (with the listening port).
    #[serde(default, deserialize_with = "opt_host_port")]
    pub advertise: Option<String>,
}

/// `Middlewares` in a server config: go-zero's `ServerMiddlewaresConf`, every switch on by
/// default. See the [module docs](super#what-is-not-mapped-yet) for what each one adds.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase", default)]
#[non_exhaustive]
pub struct ServerMiddlewares {
    /// `Trace`: a `tracing` span per call
    /// ([`tracing_server`](crate::interceptor::tracing_server)).
    pub trace: bool,
    /// `Recover`: a panicking handler answers `INTERNAL`. rzero always does that, so `false`
    /// changes nothing.
    pub recover: bool,
    /// `Stat`: log calls slower than `StatConf.SlowThreshold` at WARN
    /// ([`slow_calls`](crate::interceptor::slow_calls)). Unlike go-zero's, it never logs
    /// request bodies.
    pub stat: bool,
    /// `StatConf`: the settings of `Stat`.
    pub stat_conf: StatConfig,
    /// `Prometheus`: call counts and latency histograms in the process-wide
    /// [`Metrics::global`](crate::metrics::Metrics::global) registry
    /// ([`ServerBuilder::metrics`]); serve it with `DevServer`.
    pub prometheus: bool,
    /// `Breaker`: a circuit breaker per method ([`ServerBuilder::breaker`]).
    pub breaker: bool,
}

impl Default for ServerMiddlewares {
    fn default() -> Self {
        Self {
            trace: true,
            recover: true,
            stat: true,
            stat_conf: StatConfig::default(),
            prometheus: true,
            breaker: true,
        }
    }
}

/// `Middlewares.StatConf`: go-zero's `StatConf`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase", default)]
#[non_exhaustive]
pub struct StatConfig {
    /// `SlowThreshold`: a Go duration (`500ms`, `1s`); calls that take longer are logged.
    /// Default 500 ms (go-zero's). More than 0: to log no slow calls, set `Stat: false`.
    #[serde(deserialize_with = "slow_threshold")]
    pub slow_threshold: Duration,
    /// `IgnoreContentMethods`: full method names (`/pkg.Service/Method`) whose request
    /// bodies go-zero's `Stat` does not log. Checked and accepted so that go-zero configs
    /// load, but it changes nothing: rzero logs no request bodies for any method.
    #[serde(deserialize_with = "full_methods")]
    pub ignore_content_methods: Vec<String>,
}

impl Default for StatConfig {
    fn default() -> Self {
        Self {
            slow_threshold: DEFAULT_SLOW_THRESHOLD,
            ignore_content_methods: Vec::new(),
        }
    }
}

/// go-zero's `SlowThreshold`, for servers (`StatConf`) and clients (`Duration`, fixed there).
pub(super) const DEFAULT_SLOW_THRESHOLD: Duration = Duration::from_millis(500);

/// `DevServer` in a server config: go-zero's dev server, an HTTP port beside the gRPC one
/// that serves the process-wide [`Metrics::global`](crate::metrics::Metrics::global)
/// registry and a health probe while the server runs
/// ([`ServerBuilder::dev_server`](crate::ServerBuilder::dev_server)).
///
/// ```yaml
/// DevServer:
///   Enabled: true
///   Port: 6060            # GET :6060/metrics, GET :6060/healthz
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(
    remote = "Self",
    deny_unknown_fields,
    rename_all = "PascalCase",
    default
)]
#[non_exhaustive]
pub struct DevServerConfig {
    /// `Enabled`: serve it. Default **false**, where go-zero's is true: a port that answers
    /// anyone who asks is opened when the config says so, not by default.
    pub enabled: bool,
    /// `Host`: the address to listen on. Default `0.0.0.0` (every interface, as go-zero's
    /// empty default means).
    #[serde(deserialize_with = "dev_host")]
    pub host: String,
    /// `Port`: default 6060.
    pub port: u16,
    /// `MetricsPath`: default `/metrics`.
    #[serde(deserialize_with = "http_path")]
    pub metrics_path: String,
    /// `HealthPath`: default `/healthz`. Answers `HealthResponse` with 200 while the server
    /// is `SERVING`, 503 once it is shutting down.
    #[serde(deserialize_with = "http_path")]
    pub health_path: String,
    /// `EnableMetrics`: serve the metrics at `MetricsPath`. Default true.
    pub enable_metrics: bool,
    /// `EnablePprof`: accepted so that go-zero configs load (go-zero's default is true), but
    /// rzero has no pprof endpoints: nothing is served, and `true` logs a warning saying so
    /// (profile with `perf` or `tokio-console` instead).
    pub enable_pprof: Option<bool>,
    /// `HealthResponse`: the body of a healthy answer. Default `OK`.
    pub health_response: String,
}

impl Default for DevServerConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            host: "0.0.0.0".to_owned(),
            port: 6060,
            metrics_path: "/metrics".to_owned(),
            health_path: "/healthz".to_owned(),
            enable_metrics: true,
            enable_pprof: None,
            health_response: "OK".to_owned(),
        }
    }
}

super::checked_deserialize!(DevServerConfig);

impl DevServerConfig {
    /// `Host:Port` to listen on (an IPv6 host in brackets).
    pub fn addr(&self) -> String {
        if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// Checks what the YAML loader checks after reading the keys; `(key, message)` with the
    /// key relative to `DevServer`.
    fn check(&self) -> Result<(), (String, String)> {
        check_dev_host(&self.host).map_err(|m| ("Host".to_owned(), m))?;
        check_http_path(&self.metrics_path).map_err(|m| ("MetricsPath".to_owned(), m))?;
        check_http_path(&self.health_path).map_err(|m| ("HealthPath".to_owned(), m))?;
        if self.enable_metrics && self.metrics_path == self.health_path {
            return Err((
                "HealthPath".to_owned(),
                format!(
                    "`{}` is MetricsPath too; give them different paths",
                    self.health_path
                ),
            ));
        }
        Ok(())
    }

    /// What the server built from this config serves.
    fn dev_server(&self) -> crate::server::DevServer {
        let mut dev = crate::server::DevServer::new()
            .health(self.health_path.clone(), self.health_response.clone());
        if self.enable_metrics {
            dev = dev.metrics(self.metrics_path.clone(), crate::metrics::Metrics::global());
        }
        dev
    }
}

fn check_dev_host(host: &str) -> Result<(), String> {
    if host.trim().is_empty() {
        return Err("empty (write `0.0.0.0` to listen on every interface)".to_owned());
    }
    if host.contains(|c: char| c.is_whitespace() || c == '/') {
        return Err(format!("`{host}`: expected a host name or IP address"));
    }
    let ipv6 = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.contains(':') && ipv6.parse::<std::net::Ipv6Addr>().is_err() {
        return Err(format!(
            "`{host}`: expected a host without a port (the port goes in DevServer.Port)"
        ));
    }
    Ok(())
}

pub(super) fn check_http_path(path: &str) -> Result<(), String> {
    if !path.starts_with('/') || path.contains(|c: char| c.is_whitespace() || c == '?' || c == '#')
    {
        return Err(format!("`{path}`: expected a path such as `/metrics`"));
    }
    Ok(())
}

fn dev_host<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    d.deserialize_str(de::Parse(
        |host| check_dev_host(host).map(|()| host.to_owned()),
        "a host name or IP address",
    ))
}

fn http_path<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    d.deserialize_str(de::Parse(
        |path| check_http_path(path).map(|()| path.to_owned()),
        "a path such as `/metrics`",
    ))
}

fn slow_threshold<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    de::positive_go_duration(d, "to log no slow calls, set Middlewares.Stat: false")
}

/// A `/pkg.Service/Method`, checked where it stands (so an error points at the bad item).
struct FullMethod(String);

impl<'de> Deserialize<'de> for FullMethod {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        super::full_method(d).map(FullMethod)
    }
}

fn full_methods<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Vec::<FullMethod>::deserialize(d).map(|list| list.into_iter().map(|m| m.0).collect())
}

super::checked_deserialize!(ServerConfig);

fn default_timeout() -> Duration {
    Duration::from_millis(2000)
}

fn default_cpu_threshold() -> u32 {
    900
}

fn yes() -> bool {
    true
}

fn cpu_threshold<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    d.deserialize_str(de::Parse(
        |text| match text.parse::<u32>() {
            Ok(value) if value < 1000 => Ok(value),
            _ => Err(format!(
                "`{text}` is out of range: millicpu in 0..1000 (0 turns shedding off)"
            )),
        },
        "millicpu in 0..1000",
    ))
}

fn opt_host_port<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    de::host_port(d).map(Some)
}

impl ServerConfig {
    /// A config for a server listening on `listen_on`, everything else at its default.
    pub fn new(listen_on: impl Into<String>) -> Self {
        Self {
            name: String::new(),
            listen_on: listen_on.into(),
            etcd: None,
            timeout: default_timeout(),
            cpu_threshold: default_cpu_threshold(),
            health: true,
            middlewares: ServerMiddlewares::default(),
            dev_server: DevServerConfig::default(),
            metadata: BTreeMap::new(),
            version: None,
            zone: None,
            weight: None,
            drain_delay: Duration::ZERO,
            method_timeouts: Vec::new(),
            auth: false,
            redis: None,
            strict_control: None,
            #[cfg(feature = "tls")]
            tls: None,
            #[cfg(not(feature = "tls"))]
            tls: de::CompiledOut,
            grpc_web: Default::default(),
            gateway: Default::default(),
        }
    }

    /// Parses YAML text (after expanding `${VAR}`); errors give `line:column: Key.Path`.
    pub fn from_yaml_str(text: &str) -> Result<Self, ConfigError> {
        load::parse(text, None)
    }

    /// Reads and parses a YAML file; errors give `file:line:column: Key.Path`.
    pub fn from_yaml_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        load::parse_file(path.as_ref())
    }

    /// `ListenOn`: the address to pass to [`ServerBuilder::serve`] (or to bind yourself for
    /// [`ServerBuilder::serve_with_listener`]).
    pub fn listen_on(&self) -> &str {
        &self.listen_on
    }

    /// Checks what the YAML loader checks after reading the keys; `(key, message)`.
    fn check(&self) -> Result<(), (String, String)> {
        #[cfg(not(feature = "etcd"))]
        if self.etcd.is_some() {
            return Err((
                "Etcd".to_owned(),
                "this rzero was built without its `etcd` feature".to_owned(),
            ));
        }
        for (key, label) in [
            ("Version", self.version.is_some()),
            ("Zone", self.zone.is_some()),
            ("Weight", self.weight.is_some()),
        ] {
            let lower = key.to_ascii_lowercase();
            if label && self.metadata.contains_key(&lower) {
                return Err((
                    key.to_owned(),
                    format!("also given as Metadata.{lower}; set it once"),
                ));
            }
        }
        self.check_auth()?;
        self.check_middlewares()?;
        self.dev_server
            .check()
            .map_err(|(key, message)| (format!("DevServer.{key}"), message))?;
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            tls.check()?;
        }
        #[cfg(feature = "grpc-web")]
        self.grpc_web
            .check()
            .map_err(|(key, message)| (format!("GrpcWeb.{key}"), message))?;
        #[cfg(feature = "gateway")]
        self.check_gateway()?;
        check_method_timeouts(&self.method_timeouts)
    }

    /// `Gateway`'s own keys, and its port against the gRPC one.
    #[cfg(feature = "gateway")]
    fn check_gateway(&self) -> Result<(), (String, String)> {
        self.gateway
            .check()
            .map_err(|(key, message)| (format!("Gateway.{key}"), message))?;
        if let Some(addr) = &self.gateway.listen_on
            && *addr == self.listen_on
            && !addr.ends_with(":0")
        {
            return Err((
                "Gateway.ListenOn".to_owned(),
                format!(
                    "`{addr}` is ListenOn too: leave Gateway.ListenOn out to serve the \
                     gateway on the gRPC port, or give it a port of its own"
                ),
            ));
        }
        Ok(())
    }

    /// `StatConf` as the loader reads it (for configs built in code).
    fn check_middlewares(&self) -> Result<(), (String, String)> {
        let stat = &self.middlewares.stat_conf;
        if stat.slow_threshold.is_zero() {
            return Err((
                "Middlewares.StatConf.SlowThreshold".to_owned(),
                "must be more than 0 (to log no slow calls, set Middlewares.Stat: false)"
                    .to_owned(),
            ));
        }
        for (index, method) in stat.ignore_content_methods.iter().enumerate() {
            super::check_full_method(method).map_err(|message| {
                (
                    format!("Middlewares.StatConf.IgnoreContentMethods[{index}]"),
                    message,
                )
            })?;
        }
        Ok(())
    }

    /// `Auth` needs a usable `Redis` (as go-zero's `Validate` says) and this build's `redis`
    /// feature.
    fn check_auth(&self) -> Result<(), (String, String)> {
        if !self.auth {
            return Ok(());
        }
        let Some(redis) = &self.redis else {
            return Err((
                "Auth".to_owned(),
                "needs Redis: {Host, Key} of the hash of app tokens".to_owned(),
            ));
        };
        redis
            .check()
            .map_err(|(key, message)| (format!("Redis.{key}"), message))?;
        #[cfg(not(feature = "redis"))]
        return Err((
            "Auth".to_owned(),
            "this rzero was built without its `redis` feature".to_owned(),
        ));
        #[cfg(feature = "redis")]
        Ok(())
    }

    /// A [`ServerBuilder`] with these settings: `Timeout`, `MethodTimeouts`, `Health`,
    /// `DrainDelay`, `Middlewares.Trace` (a [`tracing_server`](crate::interceptor::tracing_server)
    /// interceptor), `Middlewares.Stat` (a [`slow_calls`](crate::interceptor::slow_calls)
    /// interceptor at `StatConf.SlowThreshold`), `Middlewares.Prometheus`
    /// ([`ServerBuilder::metrics`] with [`Metrics::global`](crate::metrics::Metrics::global)),
    /// `DevServer` ([`ServerBuilder::dev_server`], bound when serving starts),
    /// `Middlewares.Breaker` (a [`Breaker`](crate::protection::Breaker) per
    /// method), `CpuThreshold` ([`Shedding`](crate::protection::Shedding) unless 0), `Auth`
    /// with `Redis` (an [`AppTokenAuth`](crate::auth::AppTokenAuth) interceptor, inside the
    /// tracing one) and, when `Etcd` is set, registration (with `ID`, `TTL`, `Advertise` and
    /// the `Metadata`, `Version`, `Zone`, `Weight` labels), `Tls`
    /// ([`ServerBuilder::tls`]), `GrpcWeb` with `Enabled: true` ([`ServerBuilder::grpc_web`],
    /// with its `Cors`) and `Gateway.ListenOn`: the port a gateway added with
    /// [`ServerBuilder::gateway`] is served on (serving fails if none is added). Add services
    /// (and interceptors of your own, which run inside the tracing one, and the gateway, its
    /// options set by [`GatewayConfig::apply`](super::GatewayConfig::apply)) and serve on
    /// [`listen_on`](Self::listen_on).
    ///
    /// With `Etcd` set this creates an etcd client, which needs a tokio runtime: call it
    /// from async code. Fails when the settings do not hold (a config built in code skips
    /// the loader's checks).
    pub fn builder(&self) -> Result<ServerBuilder, ConfigError> {
        self.check()
            .map_err(|(key, message)| ConfigError::new(key, message))?;
        let mut builder = crate::Server::builder().drain_delay(self.drain_delay);
        if !self.timeout.is_zero() {
            builder = builder.timeout(self.timeout);
        }
        if !self.health {
            builder = builder.without_health();
        }
        #[cfg(feature = "etcd")]
        if let Some(etcd) = &self.etcd {
            use crate::discovery::etcd::{EtcdClient, Registration};
            let client = EtcdClient::new(&etcd.hosts)
                .map_err(|e| ConfigError::new("Etcd.Hosts", e.to_string()))?;
            let mut registration = Registration::builder(client, etcd.key.clone());
            if let Some(id) = &etcd.id {
                registration = registration.id(id.clone());
            }
            if let Some(ttl) = etcd.ttl {
                registration = registration.ttl(ttl);
            }
            if let Some(advertise) = &etcd.advertise {
                registration = registration.advertise(advertise.clone());
            }
            for (key, value) in &self.metadata {
                registration = registration.metadata(key.clone(), value.clone());
            }
            if let Some(version) = &self.version {
                registration = registration.version(version.clone());
            }
            if let Some(zone) = &self.zone {
                registration = registration.zone(zone.clone());
            }
            if let Some(weight) = self.weight {
                registration = registration.weight(weight);
            }
            builder = builder.register(registration);
        }
        for entry in &self.method_timeouts {
            builder = builder.method_timeout(entry.full_method.clone(), entry.timeout);
        }
        // go-zero's order: Trace, (Recover: always on in rzero), Stat, Prometheus, then
        // Breaker and shedding, which rzero runs before the chain (refusals are counted by
        // the metrics all the same: `rzero_server_refused_total`).
        if self.middlewares.trace {
            builder = builder.interceptor(crate::interceptor::tracing_server());
        }
        if self.middlewares.stat {
            builder = builder.interceptor(crate::interceptor::slow_calls(
                self.middlewares.stat_conf.slow_threshold,
            ));
        }
        if self.middlewares.prometheus {
            builder = builder.metrics(crate::metrics::Metrics::global());
        }
        if self.dev_server.enabled {
            if self.dev_server.enable_pprof == Some(true) {
                tracing::warn!(
                    "DevServer.EnablePprof: true is not honoured: rzero serves no pprof \
                     endpoints (profile with perf or tokio-console instead)"
                );
            }
            builder = builder.dev_server(self.dev_server.addr(), self.dev_server.dev_server());
        }
        if self.middlewares.breaker {
            builder = builder.breaker(crate::protection::Breaker::new());
        }
        if self.cpu_threshold > 0 {
            if self.cpu_threshold >= 1000 {
                return Err(ConfigError::new(
                    "CpuThreshold",
                    format!(
                        "`{}` is out of range: millicpu in 0..1000 (0 turns shedding off)",
                        self.cpu_threshold
                    ),
                ));
            }
            builder = builder.shedding(crate::protection::Shedding::new(self.cpu_threshold));
        }
        // Innermost of the built-in interceptors, as in go-zero.
        #[cfg(feature = "redis")]
        if self.auth
            && let Some(redis) = &self.redis
        {
            let store = redis
                .token_store()
                .map_err(|(key, message)| ConfigError::new(format!("Redis.{key}"), message))?;
            if self.strict_control == Some(false) {
                tracing::warn!(
                    "StrictControl: false is not honoured: rzero refuses unknown apps and \
                     answers UNAVAILABLE while Redis is down; use \
                     AppTokenAuth::lenient_go_zero_compat() in code for go-zero's leniency"
                );
            }
            builder = builder.interceptor(crate::auth::AppTokenAuth::new(store));
        }
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            let tls = tls
                .load()
                .map_err(|e| ConfigError::new("Tls", e.to_string()))?;
            builder = builder.tls(tls);
        }
        #[cfg(feature = "grpc-web")]
        if let Some(grpc_web) = self.grpc_web.grpc_web() {
            builder = builder.grpc_web(grpc_web);
        }
        #[cfg(feature = "gateway")]
        if let Some(addr) = &self.gateway.listen_on {
            builder = builder.gateway_listen_on(addr.clone());
        }
        Ok(builder)
    }
}
