//! Client-side load balancing over the endpoints a resolver finds.
//!
//! A client built from a resolver target (`static:///`, `dns:///`, `etcd://`, or a scheme of
//! your own) spreads its calls over the endpoints with a [`Policy`]. Every endpoint gets its
//! own lazily opened connection, reused by every call sent to it.
//!
//! # Decisions
//! - **Our own balancer, not tonic's.** tonic's `balance_list` picks at random with a load of
//!   zero and keeps sending to dead endpoints. Here an endpoint whose connection fails to open
//!   or is closed by the server is **ejected at once** and probed back in the background with
//!   growing back-off (100 ms doubling to 10 s), so after a server dies only the calls that
//!   were in flight on it fail. A call whose connection could not even be opened never left,
//!   so it is sent to another endpoint (up to three attempts), whatever the method; calls in
//!   flight on a connection that breaks are retried only by a retry policy
//!   ([`RetryPolicy`](crate::client::RetryPolicy)), for methods safe to repeat.
//! - **p2c_ewma is go-zero's algorithm with go-zero's constants** (see `p2c.rs`), but its
//!   statistics belong to the endpoint and survive changes of the endpoint set, where go-zero
//!   resets everything on any change. It is the default, as in go-zero.
//!   What that buys, measured (`bench/rpc.sh`, three backends, one ten times slower): with
//!   one or two callers the slow one gets only the forced pick, once a second, and p2c's p99
//!   is the fast backends' own; with four or more, it gets 2–4 % of the calls, because the
//!   load compares √latency (a 10× slower endpoint looks 3.2× as loaded) times in-flight
//!   calls, so it wins as soon as a fast one has two or three calls in flight, and p99 is
//!   then the slow one's. A Finagle-style peak EWMA (latency × in-flight, no square root, no
//!   forced pick) was tried and did no better here: its peaks follow every scheduling hiccup
//!   of the fast endpoints.
//! - **Metadata-aware.** [`ClientBuilder::select`](crate::client::ClientBuilder::select) keeps
//!   only endpoints whose registration metadata matches (e.g. `version=v2` for a canary
//!   client); [`CallExt::route_to`](crate::CallExt::route_to) does the same for one call.
//! - **Stable subsetting.** With more endpoints than the subset size (default: no limit),
//!   each client keeps the ones that hash lowest with its seed (gRFC A68), so one endpoint
//!   coming or going changes at most one member of the subset; go-zero reshuffles on every
//!   update.
//! - **Client-side health checking, when asked**
//!   ([`ClientBuilder::health_check`](crate::client::ClientBuilder::health_check)): each
//!   endpoint's `grpc.health.v1` status is watched, and endpoints not `SERVING` are skipped,
//!   so a server draining before shutdown stops getting calls first. Off by default because
//!   it opens a connection to every endpoint up front, where calls alone open them lazily.
//! - **A client starts with no endpoints.** Calls then fail fast with `UNAVAILABLE` and
//!   succeed as soon as the resolver finds endpoints; nothing blocks at construction.
//! - **Deterministic when asked.** [`ClientBuilder::seed`](crate::client::ClientBuilder::seed)
//!   seeds the random choices, for tests.

mod backend;
mod channel;
mod p2c;
pub(crate) mod rng;

pub(crate) use channel::Balanced;

/// How a client picks an endpoint for each call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Policy {
    /// The first endpoint (in the resolver's order, sorted) that is not ejected: everything
    /// goes to one server while it is up.
    PickFirst,
    /// Each endpoint in turn.
    RoundRobin,
    /// Power of two choices by latency EWMA × in-flight calls (go-zero's `p2c_ewma`).
    #[default]
    P2cEwma,
    /// By a key on each call ([`CallExt::hash_key`](crate::CallExt::hash_key)) on a ring with
    /// 100 virtual nodes per endpoint: the same key goes to the same endpoint while it is up,
    /// and adding an endpoint moves only the keys it takes over.
    ConsistentHash,
}

impl std::str::FromStr for Policy {
    type Err = String;

    /// The names go-zero and gRPC service configs use: `pick_first`, `round_robin`,
    /// `p2c_ewma`, `consistent_hash`.
    fn from_str(name: &str) -> Result<Self, String> {
        match name {
            "pick_first" => Ok(Self::PickFirst),
            "round_robin" => Ok(Self::RoundRobin),
            "p2c_ewma" | "p2c" => Ok(Self::P2cEwma),
            "consistent_hash" => Ok(Self::ConsistentHash),
            other => Err(format!(
                "unknown balancer `{other}` (known: pick_first, round_robin, p2c_ewma, consistent_hash)"
            )),
        }
    }
}

/// Balancer settings, collected by the client builder.
#[derive(Debug, Clone, Default)]
pub(crate) struct BalanceConfig {
    pub(crate) policy: Policy,
    /// `(key, value)` metadata every endpoint must have.
    pub(crate) select: Vec<(String, String)>,
    /// 0: no subsetting.
    pub(crate) subset_size: usize,
    pub(crate) subset_seed: u64,
    pub(crate) seed: Option<u64>,
    /// Follow each endpoint's `grpc.health.v1` status.
    pub(crate) health_check: bool,
    /// HTTP/2 ping interval on every connection (go-zero's `KeepaliveTime`).
    pub(crate) keepalive: Option<std::time::Duration>,
    /// Wraps every endpoint's connections (calls and health watches) in TLS.
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<crate::tls::TlsConnector>,
}

/// The consistent-hash key of one call (request extension set by `CallExt::hash_key`).
#[derive(Debug, Clone)]
pub(crate) struct HashKey(pub(crate) String);

/// Marks a call whose request body is complete when it arrives, as a unary call's, though no
/// [`MethodDescriptor`](crate::MethodDescriptor) says so (a proxied gRPC-Web call): a call
/// whose connection dies before it leaves may go to another endpoint.
#[cfg(all(feature = "gateway", feature = "grpc-web"))]
#[derive(Debug, Clone, Copy)]
pub(crate) struct Replayable;

/// Metadata one call's endpoint must have (request extension set by `CallExt::route_to`).
#[derive(Debug, Clone)]
pub(crate) struct RouteTo(pub(crate) String, pub(crate) String);
