//! Finding servers: the endpoint sets resolvers and balancers work from.
//!
//! A discovery source (etcd today; DNS and static lists belong here too) produces the current
//! set of [`Endpoint`]s for a service as a [`tokio::sync::watch::Receiver`]: the latest set is
//! always readable without waiting, and `changed().await` wakes a resolver when it moves on.
//! Sources keep the last known set while their backend is unreachable, so an outage of the
//! registry never empties a client's endpoint list on its own.

use std::collections::BTreeMap;

#[cfg(feature = "etcd")]
pub mod etcd;
mod resolver;
mod target;

#[cfg(feature = "etcd")]
pub use resolver::EtcdResolver;
pub(crate) use resolver::Resolvers;
pub use resolver::{DnsResolver, Resolution, Resolver, StaticResolver};
pub use target::{ResolverTarget, Target};

/// One server a client can call, with what its registration said about it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    /// `host:port` to connect to.
    pub addr: String,
    /// Labels the server published (e.g. `version`, `weight`, `zone`), for metadata-aware
    /// balancing. Empty for sources that carry none (e.g. go-zero's bare `host:port` values).
    pub metadata: BTreeMap<String, String>,
}

impl Endpoint {
    /// An endpoint without metadata.
    pub fn new(addr: impl Into<String>) -> Self {
        Self {
            addr: addr.into(),
            metadata: BTreeMap::new(),
        }
    }
}
