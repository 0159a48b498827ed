//! `ClientConfig`: go-zero's `RpcClientConf`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::de;
use super::{ConfigError, MethodTimeout, check_method_timeouts, load};
use crate::Client;
use crate::balance::Policy;
use crate::client::ClientBuilder;

/// A client's settings, with go-zero's `RpcClientConf` keys (see the [module docs](super)).
///
/// Exactly one of `Target`, `Endpoints` and `Etcd` says where the servers are.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(remote = "Self", deny_unknown_fields, rename_all = "PascalCase")]
#[non_exhaustive]
pub struct ClientConfig {
    /// `Target`: any rzero target: `host:port`, `static:///a:1,b:2`, `dns:///host:port`,
    /// `etcd://h1:2379,h2:2379/key`, or a scheme with a resolver of your own.
    #[serde(default)]
    pub target: Option<String>,
    /// `Endpoints`: `host:port` of each server (becomes `static:///a,b`).
    #[serde(default, deserialize_with = "endpoints")]
    pub endpoints: Vec<String>,
    /// `Etcd`: discover the servers registered under `Key`.
    #[serde(default)]
    pub etcd: Option<ClientEtcdConfig>,
    /// `NonBlock`: accepted for go-zero compatibility and otherwise ignored: an rzero client
    /// never blocks at construction (calls fail fast with `UNAVAILABLE` until a server is
    /// found), whatever this says. Default true.
    #[serde(default = "yes")]
    pub non_block: bool,
    /// `Timeout`: the deadline of calls that set none, in milliseconds (or a duration such
    /// as `5s`). Default 2000 (go-zero's); 0: no deadline from the config.
    #[serde(default = "default_timeout", deserialize_with = "de::millis")]
    pub timeout: Duration,
    /// `KeepaliveTime`: a Go duration (`20s`) between HTTP/2 pings while calls are open
    /// ([`ClientBuilder::keepalive`](crate::client::ClientBuilder::keepalive)).
    #[serde(default, deserialize_with = "de::opt_go_duration")]
    pub keepalive_time: Option<Duration>,
    /// `Balancer` (or go-zero's `BalancerName`): `p2c_ewma` (default), `round_robin`,
    /// `pick_first`, `consistent_hash`.
    #[serde(default, alias = "BalancerName", deserialize_with = "policy")]
    pub balancer: Policy,
    /// `Select`: only servers whose registration metadata has every one of these labels,
    /// e.g. `{version: v2}`.
    #[serde(default)]
    pub select: BTreeMap<String, String>,
    /// `HealthCheck`: watch each server's `grpc.health.v1` status and skip those not
    /// `SERVING` (rzero's; go-zero has no client-side health checking). Default false.
    #[serde(default)]
    pub health_check: bool,
    /// `SubsetSize`: balance over at most this many of the servers, chosen stably. Default
    /// 32 (go-zero's); 0: all.
    #[serde(default = "default_subset_size")]
    pub subset_size: usize,
    /// `Middlewares`: go-zero's switches for the built-in client interceptors.
    #[serde(default)]
    pub middlewares: ClientMiddlewares,
    /// `MethodTimeouts`: per-method deadlines, `[{FullMethod: /pkg.Svc/Method, Timeout: 10s}]`.
    #[serde(default)]
    pub method_timeouts: Vec<MethodTimeout>,
    /// `App`: go-zero's app name, sent as `app` metadata on every call with `Token` (set
    /// both or neither).
    #[serde(default)]
    pub app: Option<String>,
    /// `Token`: the app's token, sent as `token` metadata.
    #[serde(default)]
    pub token: Option<String>,
    /// `AllowPlaintextCredentials`: send `App`/`Token` over a connection without TLS, where
    /// anyone on the path can read them (rzero's; go-zero always does). Default false: calls
    /// fail with `FAILED_PRECONDITION` instead.
    #[serde(default)]
    pub allow_plaintext_credentials: bool,
    /// `Tls`: call over TLS, `{CaFile, CertFile, KeyFile, ServerName}` (rzero's).
    #[cfg(feature = "tls")]
    #[serde(default)]
    pub tls: Option<super::ClientTlsConfig>,
    #[cfg(not(feature = "tls"))]
    #[serde(default, rename = "Tls", deserialize_with = "de::no_tls")]
    tls: de::CompiledOut,
}

/// `Etcd` in a client config: where to discover the servers.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
#[non_exhaustive]
pub struct ClientEtcdConfig {
    /// `Hosts` (required): etcd members, `host:port` each.
    #[serde(deserialize_with = "de::host_ports")]
    pub hosts: Vec<String>,
    /// `Key` (required): the service key the servers register under.
    #[serde(deserialize_with = "de::non_empty")]
    pub key: String,
}

/// `Middlewares` in a client config: go-zero's `ClientMiddlewaresConf`, every switch on by
/// default. [`ClientConfig::build`] applies them; see the
/// [module docs](super#what-is-not-mapped-yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase", default)]
#[non_exhaustive]
pub struct ClientMiddlewares {
    /// `Trace`: a `tracing` span per call
    /// ([`tracing_client`](crate::interceptor::tracing_client)).
    pub trace: bool,
    /// `Duration`: log calls slower than 500 ms (go-zero's fixed threshold) at WARN and
    /// failed calls at INFO ([`slow_calls`](crate::interceptor::slow_calls) with
    /// [`log_failures`](crate::interceptor::SlowCalls::log_failures)). Unlike go-zero's, it
    /// never logs requests or replies.
    pub duration: bool,
    /// `Prometheus`: call counts and latency histograms in the process-wide
    /// [`Metrics::global`](crate::metrics::Metrics::global) registry.
    pub prometheus: bool,
    /// `Breaker`: a circuit breaker per method of the target
    /// ([`ClientBuilder::breaker`](crate::client::ClientBuilder::breaker)).
    pub breaker: bool,
    /// `Timeout`: the `Timeout` and `MethodTimeouts` deadlines.
    pub timeout: bool,
}

impl Default for ClientMiddlewares {
    fn default() -> Self {
        Self {
            trace: true,
            duration: true,
            prometheus: true,
            breaker: true,
            timeout: true,
        }
    }
}

super::checked_deserialize!(ClientConfig);

fn default_timeout() -> Duration {
    Duration::from_millis(2000)
}

fn default_subset_size() -> usize {
    32
}

fn yes() -> bool {
    true
}

fn policy<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Policy, D::Error> {
    d.deserialize_str(de::Parse(str::parse, "a balancer name"))
}

fn endpoints<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    de::host_ports(d)
}

impl Default for ClientConfig {
    /// No target (set one of `target`, `endpoints`, `etcd`), everything else at its default.
    fn default() -> Self {
        Self {
            target: None,
            endpoints: Vec::new(),
            etcd: None,
            non_block: true,
            timeout: default_timeout(),
            keepalive_time: None,
            balancer: Policy::default(),
            select: BTreeMap::new(),
            health_check: false,
            subset_size: default_subset_size(),
            middlewares: ClientMiddlewares::default(),
            method_timeouts: Vec::new(),
            app: None,
            token: None,
            allow_plaintext_credentials: false,
            #[cfg(feature = "tls")]
            tls: None,
            #[cfg(not(feature = "tls"))]
            tls: de::CompiledOut,
        }
    }
}

impl ClientConfig {
    /// A config for `target` (any rzero target string), everything else at its default.
    pub fn new(target: impl Into<String>) -> Self {
        Self {
            target: Some(target.into()),
            ..Self::default()
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

    /// The target string the client dials: `Target` as written, `Endpoints` as
    /// `static:///a,b`, or `Etcd` as `etcd://h1,h2/key`.
    pub fn target(&self) -> Result<String, ConfigError> {
        self.check()
            .map_err(|(key, message)| ConfigError::new(key, message))?;
        Ok(self.target_unchecked())
    }

    fn target_unchecked(&self) -> String {
        if let Some(target) = &self.target {
            target.clone()
        } else if !self.endpoints.is_empty() {
            format!("static:///{}", self.endpoints.join(","))
        } else if let Some(etcd) = &self.etcd {
            format!("etcd://{}/{}", etcd.hosts.join(","), etcd.key)
        } else {
            String::new()
        }
    }

    /// Checks what the YAML loader checks after reading the keys; `(key, message)`.
    fn check(&self) -> Result<(), (String, String)> {
        let given: Vec<&str> = [
            ("Target", self.target.is_some()),
            ("Endpoints", !self.endpoints.is_empty()),
            ("Etcd", self.etcd.is_some()),
        ]
        .into_iter()
        .filter_map(|(key, set)| set.then_some(key))
        .collect();
        match given.as_slice() {
            [] => {
                return Err((
                    String::new(),
                    "no servers: set one of Target, Endpoints or Etcd".to_owned(),
                ));
            }
            [_] => {}
            [first, second, ..] => {
                return Err((
                    (*second).to_owned(),
                    format!(
                        "both {first} and {second} are set; keep one (go-zero would silently \
                         prefer one of them)"
                    ),
                ));
            }
        }
        if let Some(target) = &self.target {
            crate::discovery::Target::parse(target)
                .map_err(|e| ("Target".to_owned(), e.to_string()))?;
            #[cfg(not(feature = "etcd"))]
            if target.starts_with("etcd://") {
                return Err((
                    "Target".to_owned(),
                    "this rzero was built without its `etcd` feature".to_owned(),
                ));
            }
        }
        #[cfg(not(feature = "etcd"))]
        if self.etcd.is_some() {
            return Err((
                "Etcd".to_owned(),
                "this rzero was built without its `etcd` feature".to_owned(),
            ));
        }
        self.check_credentials()?;
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            tls.check()?;
        }
        check_method_timeouts(&self.method_timeouts)
    }

    /// `App` and `Token` go together (go-zero silently sends neither when one is missing,
    /// and the server then refuses every call).
    fn check_credentials(&self) -> Result<(), (String, String)> {
        let given = |value: &Option<String>| value.as_deref().is_some_and(|v| !v.is_empty());
        match (given(&self.app), given(&self.token)) {
            (false, false) => Ok(()),
            (true, false) => Err((
                "App".to_owned(),
                "set Token too (app/token credentials need both)".to_owned(),
            )),
            (false, true) => Err((
                "Token".to_owned(),
                "set App too (app/token credentials need both)".to_owned(),
            )),
            (true, true) => {
                #[cfg(not(feature = "auth"))]
                return Err((
                    "App".to_owned(),
                    "this rzero was built without its `auth` feature".to_owned(),
                ));
                #[cfg(feature = "auth")]
                self.credentials().map(drop)
            }
        }
    }

    /// The app/token credentials, if configured.
    #[cfg(feature = "auth")]
    fn credentials(&self) -> Result<Option<crate::auth::Credentials>, (String, String)> {
        match (&self.app, &self.token) {
            (Some(app), Some(token)) if !app.is_empty() && !token.is_empty() => {
                crate::auth::Credentials::app_token(app, token)
                    .map(Some)
                    .map_err(|e| ("Token".to_owned(), e.to_string()))
            }
            _ => Ok(None),
        }
    }

    /// A [`ClientBuilder`] with these settings: the target, `Balancer`, `Select`,
    /// `SubsetSize`, `HealthCheck`, `Middlewares.Breaker` (a
    /// [`Breaker`](crate::protection::Breaker) per method), `App`/`Token` credentials (with
    /// `AllowPlaintextCredentials`), and (unless `Middlewares.Timeout` is false) `Timeout` and
    /// `MethodTimeouts`, for settings the config has no key for (a seed, a retry policy, a
    /// resolver). [`build`](Self::build) adds the `Middlewares` interceptors too.
    ///
    /// Fails when the settings do not hold (a config built in code skips the loader's
    /// checks).
    pub fn builder(&self) -> Result<ClientBuilder, ConfigError> {
        let target = self.target()?;
        let mut builder = crate::Client::builder(&target)
            .balancer(self.balancer)
            .subset_size(self.subset_size);
        for (key, value) in &self.select {
            builder = builder.select(key.clone(), value.clone());
        }
        if self.health_check {
            builder = builder.health_check(true);
        }
        if let Some(interval) = self.keepalive_time {
            builder = builder.keepalive(interval);
        }
        if self.middlewares.breaker {
            builder = builder.breaker(crate::protection::Breaker::new());
        }
        #[cfg(feature = "auth")]
        {
            let credentials = self
                .credentials()
                .map_err(|(key, message)| ConfigError::new(key, message))?;
            if let Some(credentials) = credentials {
                builder = builder.credentials(credentials);
            }
            if self.allow_plaintext_credentials {
                builder = builder.allow_plaintext_credentials();
            }
        }
        if self.middlewares.timeout {
            if !self.timeout.is_zero() {
                builder = builder.timeout(self.timeout);
            }
            for entry in &self.method_timeouts {
                builder = builder.method_timeout(entry.full_method.clone(), entry.timeout);
            }
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

    /// The client: [`builder`](Self::builder)`.build()`, plus the interceptors the
    /// `Middlewares` switches ask for, in go-zero's order (first = outermost): `Trace` (a
    /// [`tracing_client`](crate::interceptor::tracing_client) span per call), `Duration`
    /// ([`slow_calls`](crate::interceptor::slow_calls) at 500 ms, with failures), `Prometheus`
    /// ([`Metrics::global`](crate::metrics::Metrics::global)`.client()`). Interceptors you
    /// add to it run inside those. Wrap it in a generated stub, e.g.
    /// `GreeterClient::new(client)`. Must run inside a tokio runtime.
    pub fn build(&self) -> Result<Client, ConfigError> {
        let key = if self.target.is_some() {
            "Target"
        } else if !self.endpoints.is_empty() {
            "Endpoints"
        } else {
            "Etcd"
        };
        let client = self
            .builder()?
            .build()
            .map_err(|e| ConfigError::new(key, e.to_string()))?;
        // go-zero's order: Trace, Duration, Prometheus, then Breaker and Timeout, which
        // rzero runs next to the network (set by `builder`).
        let mut client = client;
        if self.middlewares.trace {
            client = client.interceptor(crate::interceptor::tracing_client());
        }
        if self.middlewares.duration {
            client = client.interceptor(
                crate::interceptor::slow_calls(super::server::DEFAULT_SLOW_THRESHOLD)
                    .log_failures(),
            );
        }
        if self.middlewares.prometheus {
            client = client.interceptor(crate::metrics::Metrics::global().client());
        }
        Ok(client)
    }
}
