//! Building a client for any target, with balancing settings.

use crate::ConnectError;
use crate::balance::{BalanceConfig, Balanced, Policy};
use crate::client::transport::Transport;
use std::time::Duration;

use crate::client::{Client, KeepAlive as _, RetryPolicy, Timeouts, endpoint};
use crate::discovery::{Resolver, Resolvers, Target};

/// A client for a target, with the balancer and resolvers to use; see [`Client::builder`].
///
/// ```no_run
/// # fn f() -> Result<(), rzero::ConnectError> {
/// use rzero::balance::Policy;
/// let client = rzero::Client::builder("etcd://127.0.0.1:2379/greeter.rpc")
///     .balancer(Policy::RoundRobin)
///     .select("version", "v2")
///     .build()?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use]
pub struct ClientBuilder {
    target: String,
    config: BalanceConfig,
    resolvers: Resolvers,
    timeouts: Timeouts,
    retry: Option<RetryPolicy>,
    /// Calls go over TLS: whatever rides on them (credentials) is protected.
    secure: bool,
    #[cfg(feature = "tls")]
    tls: Option<crate::tls::ClientTls>,
    breaker: Option<crate::protection::Breaker>,
    #[cfg(feature = "auth")]
    credentials: crate::auth::ClientCredentials,
}

impl ClientBuilder {
    pub(crate) fn new(target: &str) -> Self {
        Self {
            target: target.to_owned(),
            config: BalanceConfig::default(),
            resolvers: Resolvers::default(),
            timeouts: Timeouts::default(),
            retry: None,
            secure: false,
            #[cfg(feature = "tls")]
            tls: None,
            breaker: None,
            #[cfg(feature = "auth")]
            credentials: crate::auth::ClientCredentials::default(),
        }
    }

    /// How to pick an endpoint for each call (default [`Policy::P2cEwma`]).
    pub fn balancer(mut self, policy: Policy) -> Self {
        self.config.policy = policy;
        self
    }

    /// Only endpoints whose metadata has `key` = `value` (all such conditions must hold).
    pub fn select(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.config.select.push((key.into(), value.into()));
        self
    }

    /// Balance over at most `size` of the endpoints, chosen stably (0, the default: all).
    pub fn subset_size(mut self, size: usize) -> Self {
        self.config.subset_size = size;
        self
    }

    /// Watches every endpoint's `grpc.health.v1` status and skips those not `SERVING`
    /// (default: off, which keeps connections lazy; see [`crate::balance`]).
    pub fn health_check(mut self, enabled: bool) -> Self {
        self.config.health_check = enabled;
        self
    }

    /// Sends an HTTP/2 ping on each connection every `interval` while calls are open (go-zero's
    /// `KeepaliveTime`, grpc-go's keepalive `Time`), so a connection whose peer vanished
    /// without a word (a crashed host, a dropped NAT entry) is noticed and replaced instead
    /// of hanging the calls on it. Default: off.
    pub fn keepalive(mut self, interval: Duration) -> Self {
        self.config.keepalive = Some(interval);
        self
    }

    /// Seeds the balancer's random choices and the subset choice (default: random), so a
    /// test sees the same picks every run.
    pub fn seed(mut self, seed: u64) -> Self {
        self.config.seed = Some(seed);
        self
    }

    /// The deadline of calls that set none themselves (default: none). Calls made while
    /// handling a call get at most what remains of that call's deadline anyway.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.default = Some(timeout);
        self
    }

    /// [`timeout`](Self::timeout) for one method, by path (`/pkg.Service/Method`).
    pub fn method_timeout(mut self, path: impl Into<String>, timeout: Duration) -> Self {
        self.timeouts.by_method.insert(path.into(), timeout);
        self
    }

    /// Retries `UNAVAILABLE` calls of idempotent methods (see [`RetryPolicy`]). Off by
    /// default; calls that never reached a server are re-sent by the balancer either way.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }

    /// Connects over TLS (mutual TLS when `tls` has a client identity): for a direct target
    /// (`host:port` or `https://host:port`) and for every endpoint a resolver finds,
    /// health watches included. See [`crate::tls`] for the name server certificates must
    /// carry.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: crate::tls::ClientTls) -> Self {
        self.tls = Some(tls);
        self.secure = true;
        self
    }

    /// A circuit breaker per method of this target: while a method's recent calls fail (by
    /// default with go-zero's failure codes), a share of its new calls fails at once with
    /// `UNAVAILABLE` instead of reaching the network. It runs inside the client's
    /// interceptors, which see its refusals. Default: off (on from a YAML config, as in
    /// go-zero). See [`crate::protection`].
    pub fn breaker(mut self, breaker: crate::protection::Breaker) -> Self {
        self.breaker = Some(breaker);
        self
    }

    /// Sends `credentials` with every call (a call's own, set with
    /// [`CallExt::credentials`](crate::CallExt::credentials), take precedence). Only over TLS,
    /// unless [`allow_plaintext_credentials`](Self::allow_plaintext_credentials): otherwise
    /// calls fail with `FAILED_PRECONDITION` before anything is sent.
    #[cfg(feature = "auth")]
    pub fn credentials(mut self, credentials: crate::auth::Credentials) -> Self {
        self.credentials.credentials = Some(credentials);
        self
    }

    /// Lets this client send credentials over a plaintext (non-TLS) connection, where anyone
    /// on the path can read and replay them: for tests, loopback, or a network that encrypts
    /// underneath (a service mesh). Default: refused.
    #[cfg(feature = "auth")]
    pub fn allow_plaintext_credentials(mut self) -> Self {
        self.credentials.allow_plaintext = true;
        self
    }

    /// Resolves targets `scheme://…` with `resolver` (replacing a built-in one).
    pub fn resolver(mut self, scheme: &str, resolver: impl Resolver) -> Self {
        self.resolvers.insert(scheme, resolver);
        self
    }

    /// The client. Never waits: a direct target connects on the first call, a resolver
    /// target balances over whatever its resolver finds, and calls fail fast with
    /// `UNAVAILABLE` while there is nothing to call. Must run inside a tokio runtime.
    pub fn build(mut self) -> Result<Client, ConnectError> {
        let timeouts = std::mem::take(&mut self.timeouts);
        let retry = self.retry.take();
        let breaker = self.breaker.take();
        let secure = self.secure;
        #[cfg(feature = "auth")]
        let credentials = std::mem::take(&mut self.credentials);
        let mut client = self
            .transport()?
            .with_timeouts(timeouts)
            .with_security(secure);
        #[cfg(feature = "auth")]
        {
            client = client.with_credentials(credentials);
        }
        if let Some(policy) = retry {
            client = client.with_retries(policy);
        }
        if let Some(breaker) = breaker {
            client = client.with_breaker(breaker);
        }
        Ok(client)
    }

    fn transport(mut self) -> Result<Client, ConnectError> {
        // Channels, resolvers and the balancer run on tasks of their own.
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(ConnectError::invalid_target(
                &self.target,
                "a client must be built inside a tokio runtime",
            ));
        }
        match Target::parse(&self.target)? {
            #[cfg(feature = "tls")]
            Target::Direct(address) if self.tls.is_some() => {
                let tls = self.tls.as_ref().expect("checked");
                Ok(Client::from_transport(Transport::Direct(direct_tls(
                    &self.target,
                    &address,
                    tls,
                    self.config.keepalive,
                )?)))
            }
            Target::Direct(address) => Ok(Client::from_transport(Transport::Direct(
                endpoint(&address)?
                    .http2_keep_alive_interval_opt(self.config.keepalive)
                    .connect_lazy(),
            ))),
            Target::Resolved(target) => {
                #[cfg(feature = "tls")]
                if let Some(tls) = &self.tls {
                    // Resolved addresses are IPs; a DNS target's name is what certificates
                    // carry.
                    let name =
                        (target.scheme == "dns").then(|| crate::tls::host_of(&target.endpoint));
                    self.config.tls = Some(
                        tls.connector(name)
                            .map_err(|e| ConnectError::tls(&self.target, e))?,
                    );
                }
                if self.config.subset_size > 0 {
                    self.config.subset_seed = self.config.seed.unwrap_or_else(|| {
                        use std::hash::{BuildHasher, Hasher};
                        std::collections::hash_map::RandomState::new()
                            .build_hasher()
                            .finish()
                    });
                }
                let resolution = self.resolvers.resolve(&target)?;
                let balanced = Balanced::new(&self.target, self.config, resolution)?;
                Ok(Client::from_transport(Transport::Balanced(balanced)))
            }
        }
    }
}

/// A channel to `address` (`host:port` or `https://host:port`) over TLS.
#[cfg(feature = "tls")]
fn direct_tls(
    target: &str,
    address: &str,
    tls: &crate::tls::ClientTls,
    keepalive: Option<Duration>,
) -> Result<tonic::transport::Channel, ConnectError> {
    let authority = match address.split_once("://") {
        None => address,
        Some(("https", rest)) => rest.trim_end_matches('/'),
        Some(_) => {
            return Err(ConnectError::invalid_target(
                target,
                "a plaintext `http://` target with TLS settings: use `https://` or `host:port`",
            ));
        }
    };
    let connector = tls
        .connector(Some(crate::tls::host_of(authority)))
        .map_err(|e| ConnectError::tls(target, e))?
        .direct();
    // The connector does TLS itself; the URI tonic sees stays `http` (tonic refuses `https`
    // without its own TLS), the requests say `https`.
    let origin = http::Uri::try_from(format!("https://{authority}"))
        .map_err(|e| ConnectError::invalid_target(target, e))?;
    Ok(endpoint(authority)?
        .http2_keep_alive_interval_opt(keepalive)
        .origin(origin)
        .connect_with_connector_lazy(connector))
}

impl Client {
    /// A client for `target` with balancing settings: `host:port`, `http(s)://host:port`,
    /// `static:///h1:p1,h2:p2`, `dns:///host:port`, `etcd://h1:2379,h2:2379/key`, or a
    /// scheme with a [`Resolver`] of your own.
    pub fn builder(target: &str) -> ClientBuilder {
        ClientBuilder::new(target)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn building_outside_a_runtime_is_an_error_not_a_panic() {
        for target in ["static:///127.0.0.1:1", "127.0.0.1:1"] {
            let error = crate::Client::builder(target)
                .build()
                .expect_err("no runtime");
            assert!(error.to_string().contains("tokio runtime"), "{error}");
        }
    }

    #[cfg(feature = "tls")]
    #[tokio::test]
    async fn clients_with_tls_say_they_are_secure() {
        let ca = rcgen::generate_simple_self_signed(["ca.test".to_owned()]).unwrap();
        let tls = crate::tls::ClientTls::from_ca_pem(ca.cert.pem().as_bytes()).unwrap();
        for target in [
            "127.0.0.1:1",
            "https://127.0.0.1:1",
            "static:///127.0.0.1:1",
        ] {
            let secure = crate::Client::builder(target)
                .tls(tls.clone())
                .build()
                .unwrap();
            assert!(secure.is_secure(), "{target}");
            let secure = secure.interceptor(crate::interceptor::tracing_client());
            assert!(secure.is_secure(), "{target}: kept by interceptors");
        }
        for target in ["127.0.0.1:1", "static:///127.0.0.1:1"] {
            let plain = crate::Client::builder(target).build().unwrap();
            assert!(!plain.is_secure(), "{target}");
        }
    }
}
