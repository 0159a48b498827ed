//! etcd: a small v3 client, server registration, and endpoint discovery (feature `etcd`).
//!
//! ```no_run
//! # async fn f(listening: std::net::SocketAddr) -> Result<(), Box<dyn std::error::Error>> {
//! use rzero::discovery::etcd::{EtcdClient, Registration, watch_endpoints};
//!
//! let etcd = EtcdClient::new(["10.0.0.1:2379", "10.0.0.2:2379"])?;
//! // server, once listening:
//! let registration = Registration::builder(etcd.clone(), "greeter.rpc")
//!     .version("v2")
//!     .zone("eu-1")
//!     .start(listening)
//!     .await?;
//! // client:
//! let mut endpoints = watch_endpoints(etcd, "greeter.rpc");
//! endpoints.changed().await?;
//! println!("{:?}", *endpoints.borrow());
//! // shutdown: revoke first, then drain and stop the server.
//! registration.stop().await;
//! # Ok(()) }
//! ```
//!
//! # Decisions
//! - **No protoc, no etcd crate.** The client runs on code rzero generates itself from
//!   `runtime/proto/etcd` (the KV Range/Put/DeleteRange, Watch and Lease
//!   Grant/Revoke/KeepAlive subset of etcd's API, names and numbers copied from etcd),
//!   checked in under `runtime/src/generated/etcd/`. `scripts/runtime-generated check`
//!   (run by `scripts/test`, hence CI) fails when it is stale. The `etcd-client` crate
//!   runs protoc in its build script, which rzero must never need.
//! - **Failover, not balancing.** [`EtcdClient`] sends each request to the member that
//!   answered last and moves on to the next one when a member is unreachable or does not
//!   answer within 3 s. Connections are lazy, so a client (and a server registering) starts
//!   while etcd is down. The member list is fixed: no auto-sync from the cluster's member
//!   list, which bit go-zero when members advertise addresses clients cannot reach.
//! - **Values are etcd's `naming/endpoints` JSON** (`{"Op":0,"Addr":..,"Metadata":{..}}`),
//!   so etcd's own Go resolver can read them and metadata (version, weight, zone) travels
//!   with the address, which go-zero cannot do. Discovery also reads go-zero's bare
//!   `host:port` values, so rzero clients can call go-zero servers.
//! - **Registration survives etcd.** It publishes after a listening server calls it,
//!   re-puts its key when deleted behind its back (watching it), and re-grants and
//!   re-publishes after a lost lease, retrying with jittered backoff for as long as etcd is
//!   away, then revoking leases it gave up on so no duplicate lingers. The key is
//!   `<key>/<lease id>` by default (go-zero's layout), or `<key>/<id>` when set.
//! - **Discovery never forgets on its own.** The watcher keeps the last known endpoints
//!   while etcd is unreachable, resumes from the last revision it saw, and lists again only
//!   when etcd compacted that revision or lost history. It is a
//!   [`tokio::sync::watch::Receiver`] of [`Endpoint`](crate::discovery::Endpoint) sets,
//!   which a resolver can read without waiting and await for changes.

mod client;
mod register;
mod value;
mod watch;

/// The etcd v3 API subset, generated from `runtime/proto/etcd` by `scripts/runtime-generated`.
#[allow(missing_docs, unreachable_pub, dead_code, clippy::all, rustdoc::all)]
#[path = "../../generated/etcd/mod.rs"]
mod pb;

use std::time::Duration;

pub use client::{EtcdClient, EtcdError, KeyValue, Lease, Watch, WatchEvent};
pub use register::{DEFAULT_TTL, Published, Registration, RegistrationBuilder};
pub use watch::watch_endpoints;

/// Exponential backoff with jitter, for retrying while etcd is away.
#[derive(Debug)]
struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    fn new(first: Duration, max: Duration) -> Self {
        Self {
            first,
            max,
            next: first,
        }
    }

    /// The delay before the next attempt: doubling up to the maximum, each drawn uniformly
    /// from its upper half so that many servers retrying after one outage spread out.
    fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay / 2 + delay.mul_f64(jitter() / 2.0)
    }

    fn reset(&mut self) {
        self.next = self.first;
    }
}

/// A number in `[0, 1)`, different on every call (std's per-hasher random keys).
fn jitter() -> f64 {
    use std::hash::{BuildHasher, RandomState};
    let bits = RandomState::new().hash_one(std::time::Instant::now());
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_maximum_with_jitter_in_the_upper_half() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(400));
        for ceiling in [100, 200, 400, 400] {
            let delay = backoff.next_delay();
            let ceiling = Duration::from_millis(ceiling);
            assert!(
                delay >= ceiling / 2 && delay <= ceiling,
                "{delay:?} vs {ceiling:?}"
            );
        }
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_millis(100));
    }
}
