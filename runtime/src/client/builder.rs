//! Building a client for any target, with balancing settings.

use crate::ConnectError;
use crate::balance::{BalanceConfig, Balanced, Policy};
use crate::client::transport::Transport;
use crate::client::{Client, endpoint};
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
}

impl ClientBuilder {
    pub(crate) fn new(target: &str) -> Self {
        Self {
            target: target.to_owned(),
            config: BalanceConfig::default(),
            resolvers: Resolvers::default(),
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

    /// Seeds the balancer's random choices and the subset choice (default: random), so a
    /// test sees the same picks every run.
    pub fn seed(mut self, seed: u64) -> Self {
        self.config.seed = Some(seed);
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
        match Target::parse(&self.target)? {
            Target::Direct(address) => Ok(Client::from_transport(Transport::Direct(
                endpoint(&address)?.connect_lazy(),
            ))),
            Target::Resolved(target) => {
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

impl Client {
    /// A client for `target` with balancing settings: `host:port`, `http(s)://host:port`,
    /// `static:///h1:p1,h2:p2`, `dns:///host:port`, `etcd://h1:2379,h2:2379/key`, or a
    /// scheme with a [`Resolver`] of your own.
    pub fn builder(target: &str) -> ClientBuilder {
        ClientBuilder::new(target)
    }
}
