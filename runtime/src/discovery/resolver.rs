//! Resolvers: from a target to a live set of endpoints.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};

use super::Endpoint;
use super::target::ResolverTarget;
use crate::ConnectError;

/// Turns a `scheme://authority/endpoint` target into a live endpoint set. Implement it for a
/// scheme rzero does not know and register it with
/// [`ClientBuilder::resolver`](crate::client::ClientBuilder::resolver).
pub trait Resolver: Send + Sync + 'static {
    /// Starts resolving `target`. Called inside a tokio runtime; a resolver that keeps
    /// watching spawns a task that ends when every receiver of the set is dropped.
    fn resolve(&self, target: &ResolverTarget) -> Result<Resolution, ConnectError>;
}

/// A resolver's output: the current endpoint set, and a way to ask for a fresh look.
#[derive(Debug, Clone)]
pub struct Resolution {
    pub(crate) endpoints: watch::Receiver<Vec<Endpoint>>,
    pub(crate) refresh: Option<Arc<Notify>>,
}

impl Resolution {
    /// A resolution whose set is whatever `endpoints` holds, now and later.
    pub fn new(endpoints: watch::Receiver<Vec<Endpoint>>) -> Self {
        Self {
            endpoints,
            refresh: None,
        }
    }

    /// The balancer notifies `refresh` when endpoints fail, so the resolver can look again
    /// before its next scheduled refresh (DNS does).
    #[must_use]
    pub fn with_refresh(mut self, refresh: Arc<Notify>) -> Self {
        self.refresh = Some(refresh);
        self
    }
}

/// `static:///h1:p1,h2:p2`: a fixed list.
#[derive(Debug, Clone, Copy, Default)]
pub struct StaticResolver;

impl Resolver for StaticResolver {
    fn resolve(&self, target: &ResolverTarget) -> Result<Resolution, ConnectError> {
        let endpoints: Vec<Endpoint> = target
            .endpoint
            .split(',')
            .map(str::trim)
            .filter(|addr| !addr.is_empty())
            .map(Endpoint::new)
            .collect();
        if endpoints.is_empty() {
            return Err(ConnectError::invalid_target(
                &target.endpoint,
                "no addresses in a static target",
            ));
        }
        // The receiver keeps the last value after the sender is gone, which is all a fixed
        // list needs.
        let (_, receiver) = watch::channel(endpoints);
        Ok(Resolution::new(receiver))
    }
}

/// `dns:///host:port`: every A and AAAA record of `host`, looked up again every
/// [`DnsResolver::interval`] and whenever the balancer reports failing endpoints.
#[derive(Debug, Clone, Copy)]
pub struct DnsResolver {
    interval: Duration,
}

impl Default for DnsResolver {
    /// Re-resolves every 30 s.
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(30),
        }
    }
}

impl DnsResolver {
    /// How often to look again when nothing fails.
    #[must_use]
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }
}

/// Failures are retried at most this often, so a failing name does not hammer DNS.
const DNS_MIN_GAP: Duration = Duration::from_millis(500);

impl Resolver for DnsResolver {
    fn resolve(&self, target: &ResolverTarget) -> Result<Resolution, ConnectError> {
        if !target.authority.is_empty() {
            return Err(ConnectError::invalid_target(
                &target.endpoint,
                "dns: a DNS server in the target is not supported; use dns:///host:port",
            ));
        }
        let name = target.endpoint.clone();
        let (host, port) = name.rsplit_once(':').ok_or_else(|| {
            ConnectError::invalid_target(&name, "dns: expected host:port".to_owned())
        })?;
        if port.parse::<u16>().is_err() || host.is_empty() {
            return Err(ConnectError::invalid_target(
                &name,
                "dns: expected host:port".to_owned(),
            ));
        }
        let (sender, receiver) = watch::channel(Vec::new());
        let refresh = Arc::new(Notify::new());
        let wake = Arc::clone(&refresh);
        let interval = self.interval;
        tokio::spawn(async move {
            loop {
                if let Ok(addrs) = tokio::net::lookup_host(name.as_str()).await {
                    let mut endpoints: Vec<Endpoint> =
                        addrs.map(|addr| Endpoint::new(addr.to_string())).collect();
                    endpoints.sort();
                    endpoints.dedup();
                    // Keep the last answer when a lookup fails or comes back empty.
                    if !endpoints.is_empty() {
                        sender.send_if_modified(|current| {
                            let changed = *current != endpoints;
                            if changed {
                                *current = endpoints;
                            }
                            changed
                        });
                    }
                }
                tokio::select! {
                    () = sender.closed() => return,
                    () = tokio::time::sleep(interval) => {}
                    () = wake.notified() => tokio::time::sleep(DNS_MIN_GAP).await,
                }
            }
        });
        Ok(Resolution::new(receiver).with_refresh(refresh))
    }
}

/// `etcd://h1:2379,h2:2379/key`: the servers registered under `key/` (see
/// [`crate::discovery::etcd`]).
#[cfg(feature = "etcd")]
#[derive(Debug, Clone, Copy, Default)]
pub struct EtcdResolver;

#[cfg(feature = "etcd")]
impl Resolver for EtcdResolver {
    fn resolve(&self, target: &ResolverTarget) -> Result<Resolution, ConnectError> {
        let client = super::etcd::EtcdClient::new(target.authority.split(','))?;
        Ok(Resolution::new(super::etcd::watch_endpoints(
            client,
            &target.endpoint,
        )))
    }
}

/// Resolvers by scheme: the built-in ones plus any registered on a client builder.
#[derive(Clone)]
pub(crate) struct Resolvers(BTreeMap<String, Arc<dyn Resolver>>);

impl std::fmt::Debug for Resolvers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl Default for Resolvers {
    fn default() -> Self {
        let mut resolvers = Self(BTreeMap::new());
        resolvers.insert("static", StaticResolver);
        resolvers.insert("dns", DnsResolver::default());
        #[cfg(feature = "etcd")]
        resolvers.insert("etcd", EtcdResolver);
        resolvers
    }
}

impl Resolvers {
    pub(crate) fn insert(&mut self, scheme: &str, resolver: impl Resolver) {
        self.0.insert(scheme.to_owned(), Arc::new(resolver));
    }

    pub(crate) fn resolve(&self, target: &ResolverTarget) -> Result<Resolution, ConnectError> {
        let resolver = self.0.get(&target.scheme).ok_or_else(|| {
            let known: Vec<&str> = self.0.keys().map(String::as_str).collect();
            ConnectError::invalid_target(
                &target.scheme,
                format!(
                    "no resolver for scheme `{}` (known: {})",
                    target.scheme,
                    known.join(", ")
                ),
            )
        })?;
        resolver.resolve(target)
    }
}
