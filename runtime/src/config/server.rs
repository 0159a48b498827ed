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
/// default. They are read and kept; see the [module docs](super#what-is-not-mapped-yet) for
/// which ones change the server today.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase", default)]
#[non_exhaustive]
pub struct ServerMiddlewares {
    /// `Trace`: a `tracing` span per call.
    pub trace: bool,
    /// `Recover`: a panicking handler answers `INTERNAL`.
    pub recover: bool,
    /// `Stat`: per-call statistics and slow-call logs.
    pub stat: bool,
    /// `Prometheus`: call counts and latency histograms.
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
            prometheus: true,
            breaker: true,
        }
    }
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
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            tls.check()?;
        }
        check_method_timeouts(&self.method_timeouts)
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
    /// interceptor), `Middlewares.Breaker` (a [`Breaker`](crate::protection::Breaker) per
    /// method), `CpuThreshold` ([`Shedding`](crate::protection::Shedding) unless 0), `Auth`
    /// with `Redis` (an [`AppTokenAuth`](crate::auth::AppTokenAuth) interceptor, inside the
    /// tracing one) and, when `Etcd` is set, registration (with `ID`, `TTL`, `Advertise` and
    /// the `Metadata`, `Version`, `Zone`, `Weight` labels). Add services (and interceptors of
    /// your own, which run inside the tracing one) and serve on
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
        if self.middlewares.trace {
            builder = builder.interceptor(crate::interceptor::tracing_server());
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
        Ok(builder)
    }
}
