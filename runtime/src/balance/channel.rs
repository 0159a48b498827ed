//! The balanced channel: a tower service that picks an endpoint for every call, sends the
//! call on that endpoint's channel, and records how it went.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::task::{Context, Poll};
use std::time::Instant;

use http_body_util::{BodyExt, Full};
use tokio::sync::Notify;
use tonic::body::Body;
use tonic::{Code, Status};

use super::backend::{Backend, ConnectFailed};
use super::rng::{Rng, stable_hash};
use super::{BalanceConfig, HashKey, Policy, RouteTo, p2c};
use crate::ConnectError;
use crate::discovery::{Endpoint, Resolution};
use crate::method::MethodDescriptor;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type BoxFuture<T> = Pin<Box<dyn std::future::Future<Output = T> + Send>>;

/// Virtual nodes per endpoint on the consistent-hash ring (go-zero's number).
const RING_REPLICAS: usize = 100;

/// Cheap to clone; all clones share the endpoint set and statistics.
#[derive(Debug, Clone)]
pub(crate) struct Balanced {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    target: String,
    config: BalanceConfig,
    rng: Rng,
    state: RwLock<Arc<State>>,
    next: AtomicUsize,
    refresh: Option<Arc<Notify>>,
}

/// One endpoint set, swapped whole on every update.
#[derive(Debug, Default)]
struct State {
    backends: Vec<Arc<Backend>>,
    /// `(hash, index into backends)`, sorted by hash; only for consistent hashing.
    ring: Vec<(u64, usize)>,
}

impl Balanced {
    /// Balances over what `resolution` yields, now and as it changes. Must run inside a
    /// tokio runtime (it spawns the task following the resolver).
    pub(crate) fn new(
        target: &str,
        config: BalanceConfig,
        resolution: Resolution,
    ) -> Result<Self, ConnectError> {
        let rng = config.seed.map_or_else(Rng::from_entropy, Rng::new);
        let shared = Arc::new(Shared {
            target: target.to_owned(),
            config,
            rng,
            state: RwLock::default(),
            next: AtomicUsize::new(0),
            refresh: resolution.refresh.clone(),
        });
        let mut endpoints = resolution.endpoints;
        let initial = endpoints.borrow_and_update().clone();
        shared.update(initial)?;
        tokio::spawn(follow(Arc::downgrade(&shared), endpoints));
        Ok(Self { shared })
    }
}

/// Applies every new endpoint set until the balancer is dropped or the resolver stops (the
/// last set then stays).
async fn follow(shared: Weak<Shared>, mut endpoints: tokio::sync::watch::Receiver<Vec<Endpoint>>) {
    while endpoints.changed().await.is_ok() {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let set = endpoints.borrow_and_update().clone();
        // An endpoint that cannot become a channel (a malformed address) is skipped by
        // `update`; there is no caller to report it to here.
        let _ = shared.update(set);
    }
}

impl Shared {
    fn state(&self) -> Arc<State> {
        Arc::clone(
            &self
                .state
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        )
    }

    /// Rebuilds the set, keeping the backends (connections, statistics) of endpoints that
    /// stay.
    fn update(&self, endpoints: Vec<Endpoint>) -> Result<(), ConnectError> {
        let mut eligible: Vec<Endpoint> = endpoints
            .into_iter()
            .filter(|endpoint| {
                self.config
                    .select
                    .iter()
                    .all(|(key, value)| endpoint.metadata.get(key) == Some(value))
            })
            .collect();
        eligible.sort();
        eligible.dedup();
        let eligible = subset(eligible, self.config.subset_size, self.config.subset_seed);
        let current = self.state();
        let mut existing: HashMap<&Endpoint, &Arc<Backend>> = current
            .backends
            .iter()
            .map(|backend| (&backend.endpoint, backend))
            .collect();
        let mut backends = Vec::with_capacity(eligible.len());
        let mut first_error = None;
        for endpoint in eligible {
            match existing.remove(&endpoint) {
                Some(backend) => backends.push(Arc::clone(backend)),
                None => match Backend::new(endpoint, self.refresh.clone(), &self.config) {
                    Ok(backend) => backends.push(Arc::new(backend)),
                    Err(error) => {
                        first_error.get_or_insert(error);
                    }
                },
            }
        }
        let ring = if self.config.policy == Policy::ConsistentHash {
            ring(&backends)
        } else {
            Vec::new()
        };
        *self
            .state
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(State { backends, ring });
        first_error.map_or(Ok(()), Err)
    }

    /// An endpoint for a call with these request extensions, other than those in `failed`
    /// (earlier attempts of the same call).
    fn pick(
        &self,
        extensions: &http::Extensions,
        failed: &[Arc<Backend>],
    ) -> Result<Arc<Backend>, Status> {
        let state = self.state();
        let route = extensions.get::<RouteTo>();
        let candidates: Vec<usize> = (0..state.backends.len())
            .filter(|&i| {
                route.is_none_or(|RouteTo(key, value)| {
                    state.backends[i].endpoint.metadata.get(key) == Some(value)
                }) && !failed
                    .iter()
                    .any(|backend| Arc::ptr_eq(backend, &state.backends[i]))
            })
            .collect();
        if candidates.is_empty() {
            return Err(match route {
                Some(RouteTo(key, value)) if !state.backends.is_empty() => {
                    Status::unavailable(format!("no endpoint of {} has {key}={value}", self.target))
                }
                _ => Status::unavailable(format!("no endpoints for {} (yet)", self.target)),
            });
        }
        // Ejected endpoints only when nothing else is left: a call that may fail beats one
        // that surely does.
        let healthy: Vec<usize> = candidates
            .iter()
            .copied()
            .filter(|&i| !state.backends[i].health.ejected())
            .collect();
        let pool = if healthy.is_empty() {
            &candidates
        } else {
            &healthy
        };
        let chosen = match self.config.policy {
            Policy::PickFirst => pool[0],
            Policy::RoundRobin => pool[self.next.fetch_add(1, Ordering::Relaxed) % pool.len()],
            Policy::P2cEwma => {
                let stats: Vec<&p2c::Stats> =
                    pool.iter().map(|&i| &state.backends[i].stats).collect();
                pool[p2c::pick(&stats, &self.rng)]
            }
            Policy::ConsistentHash => {
                let Some(HashKey(key)) = extensions.get::<HashKey>() else {
                    return Err(Status::invalid_argument(
                        "the consistent_hash balancer needs a key on every call: \
                         request.hash_key(..) (rzero::CallExt)",
                    ));
                };
                on_ring(&state.ring, stable_hash(&[key.as_bytes()]), pool)
            }
        };
        Ok(Arc::clone(&state.backends[chosen]))
    }
}

/// At most `size` endpoints (0: all), chosen by a hash of `seed` and each address (gRFC A68):
/// the same endpoints stay chosen as others come and go, so an update changes the subset by
/// at most the endpoints that came or went, where go-zero reshuffles it every time.
fn subset(mut endpoints: Vec<Endpoint>, size: usize, seed: u64) -> Vec<Endpoint> {
    if size == 0 || endpoints.len() <= size {
        return endpoints;
    }
    let seed = seed.to_le_bytes();
    endpoints.sort_by_key(|endpoint| stable_hash(&[&seed, endpoint.addr.as_bytes()]));
    endpoints.truncate(size);
    endpoints.sort();
    endpoints
}

fn ring(backends: &[Arc<Backend>]) -> Vec<(u64, usize)> {
    let mut ring: Vec<(u64, usize)> = backends
        .iter()
        .enumerate()
        .flat_map(|(index, backend)| {
            (0..RING_REPLICAS).map(move |replica| {
                let replica = replica.to_le_bytes();
                (
                    stable_hash(&[backend.endpoint.addr.as_bytes(), &replica]),
                    index,
                )
            })
        })
        .collect();
    ring.sort_unstable();
    ring
}

/// The first backend clockwise from `hash` that is in `pool`.
fn on_ring(ring: &[(u64, usize)], hash: u64, pool: &[usize]) -> usize {
    let start = ring.partition_point(|&(point, _)| point < hash);
    ring[start..]
        .iter()
        .chain(&ring[..start])
        .map(|&(_, index)| index)
        .find(|index| pool.contains(index))
        .unwrap_or(pool[0])
}

/// Attempts per call when the first ones never reached a server (see [`never_left`]).
const MAX_ATTEMPTS: usize = 3;

impl tower_service::Service<http::Request<Body>> for Balanced {
    type Response = http::Response<Body>;
    type Error = BoxError;
    type Future = BoxFuture<Result<http::Response<Body>, BoxError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let shared = Arc::clone(&self.shared);
        Box::pin(async move {
            // A single request message is small and already encoded: keep it, so a call whose
            // connection turns out dead before it left can go to another endpoint. A request
            // stream cannot be replayed.
            let extensions = request.extensions();
            let replayable = extensions
                .get::<MethodDescriptor>()
                .is_some_and(|method| !method.kind().client_streaming());
            #[cfg(all(feature = "gateway", feature = "grpc-web"))]
            let replayable = replayable || extensions.get::<super::Replayable>().is_some();
            if !replayable {
                let backend = shared.pick(request.extensions(), &[])?;
                return send(&backend, request).await;
            }
            let (parts, body) = request.into_parts();
            let message = body.collect().await?.to_bytes();
            let mut failed: Vec<Arc<Backend>> = Vec::new();
            let mut last_error = None;
            loop {
                let backend = match shared.pick(&parts.extensions, &failed) {
                    Ok(backend) => backend,
                    // Every endpoint was tried: report what went wrong, not "no endpoints".
                    Err(status) => return Err(last_error.unwrap_or_else(|| status.into())),
                };
                let body = Full::new(message.clone()).map_err(|never| match never {});
                let attempt = http::Request::from_parts(parts.clone(), Body::new(body));
                match send(&backend, attempt).await {
                    Err(error) if never_left(&*error) && failed.len() + 1 < MAX_ATTEMPTS => {
                        backend.health.failed();
                        failed.push(backend);
                        last_error = Some(error);
                    }
                    result => return result,
                }
            }
        })
    }
}

/// Sends one attempt on `backend`'s channel and records how it ends.
async fn send(
    backend: &Arc<Backend>,
    request: http::Request<Body>,
) -> Result<http::Response<Body>, BoxError> {
    let mut channel = backend.channel.clone();
    std::future::poll_fn(|cx| tower_service::Service::poll_ready(&mut channel, cx)).await?;
    backend.stats.started();
    let completion = Completion {
        backend: Arc::clone(backend),
        start: Instant::now(),
        done: false,
    };
    match tower_service::Service::call(&mut channel, request).await {
        Err(error) => {
            completion.finish(false);
            Err(error.into())
        }
        Ok(response) => {
            // A trailers-only response (an error, usually) carries its status here.
            if let Some(code) = grpc_status(response.headers()) {
                completion.finish(succeeded(code));
                return Ok(response);
            }
            Ok(response.map(|body| {
                Body::new(ObservedBody {
                    inner: body,
                    completion: Some(completion),
                })
            }))
        }
    }
}

/// Whether a failed attempt certainly never reached the server: its connection could not be
/// opened. Those are safe to send elsewhere whatever the method does. A connection that
/// breaks with calls on it is not: h2 reports those calls alike whether or not the server
/// had them, so only a retry policy (for idempotent methods) may send them again.
fn never_left(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(error);
    while let Some(error) = source {
        if error.downcast_ref::<ConnectFailed>().is_some() {
            return true;
        }
        source = error.source();
    }
    false
}

fn grpc_status(headers: &http::HeaderMap) -> Option<Code> {
    let value = headers.get("grpc-status")?.to_str().ok()?;
    Some(Code::from_i32(value.parse().ok()?))
}

/// go-zero's `codes.Acceptable`: these codes say the endpoint is in trouble; the rest are
/// the caller's or the application's business.
fn succeeded(code: Code) -> bool {
    !matches!(
        code,
        Code::DeadlineExceeded
            | Code::Internal
            | Code::Unavailable
            | Code::DataLoss
            | Code::Unimplemented
            | Code::ResourceExhausted
    )
}

/// Records a call's end on its endpoint exactly once; a call dropped before its status
/// arrived (the caller gave up) counts as a success, since the endpoint did nothing wrong.
#[derive(Debug)]
struct Completion {
    backend: Arc<Backend>,
    start: Instant,
    done: bool,
}

impl Completion {
    fn finish(mut self, success: bool) {
        self.record(success);
    }

    fn record(&mut self, success: bool) {
        if !self.done {
            self.done = true;
            let start = self.backend.health.latency_start(self.start);
            self.backend.stats.finished(start, success);
        }
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        self.record(true);
    }
}

/// A response body that records the call's end when its trailers (and status) arrive.
struct ObservedBody {
    inner: Body,
    completion: Option<Completion>,
}

impl http_body::Body for ObservedBody {
    type Data = bytes::Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<bytes::Bytes>, Status>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_ref() {
                    let success = grpc_status(trailers).is_some_and(succeeded);
                    if let Some(completion) = self.completion.take() {
                        completion.finish(success);
                    }
                }
            }
            Poll::Ready(Some(Err(_))) | Poll::Ready(None) => {
                // Ended without a status: the endpoint broke off.
                if let Some(completion) = self.completion.take() {
                    completion.finish(false);
                }
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(endpoints: &[Endpoint]) -> Vec<&str> {
        endpoints.iter().map(|e| e.addr.as_str()).collect()
    }

    #[test]
    fn subsets_are_stable_across_updates() {
        let all: Vec<Endpoint> = (1..=20)
            .map(|i| Endpoint::new(format!("10.0.0.{i}:80")))
            .collect();
        let chosen = subset(all.clone(), 5, 42);
        assert_eq!(chosen.len(), 5);
        // Removing an endpoint outside the subset changes nothing.
        let outsider = all
            .iter()
            .position(|e| !chosen.contains(e))
            .expect("an endpoint outside");
        let mut fewer = all.clone();
        fewer.remove(outsider);
        assert_eq!(addrs(&subset(fewer, 5, 42)), addrs(&chosen));
        // Removing a member replaces only that member.
        let member = all.iter().position(|e| *e == chosen[0]).expect("member");
        let mut without = all.clone();
        without.remove(member);
        let replaced = subset(without, 5, 42);
        let kept = replaced.iter().filter(|e| chosen.contains(e)).count();
        assert_eq!(kept, 4);
        // Adding endpoints displaces at most as many members as were added.
        let mut more = all.clone();
        more.extend((21..=22).map(|i| Endpoint::new(format!("10.0.0.{i}:80"))));
        let grown = subset(more, 5, 42);
        assert!(grown.iter().filter(|e| chosen.contains(e)).count() >= 3);
        // Another seed (another client) picks another subset, spreading the load.
        assert_ne!(addrs(&subset(all.clone(), 5, 7)), addrs(&chosen));
        // Small sets are kept whole.
        assert_eq!(subset(all[..3].to_vec(), 5, 42).len(), 3);
    }

    #[tokio::test]
    async fn endpoint_statistics_survive_changes_of_the_set() {
        let (feed, endpoints) = tokio::sync::watch::channel(vec![
            Endpoint::new("127.0.0.1:1"),
            Endpoint::new("127.0.0.1:2"),
        ]);
        let balanced =
            Balanced::new("test", BalanceConfig::default(), Resolution::new(endpoints)).unwrap();
        let before: Vec<Arc<Backend>> = balanced.shared.state().backends.clone();
        feed.send_replace(vec![
            Endpoint::new("127.0.0.1:1"),
            Endpoint::new("127.0.0.1:2"),
            Endpoint::new("127.0.0.1:3"),
        ]);
        // The update lands on the balancer's own task.
        for _ in 0..1000 {
            if balanced.shared.state().backends.len() == 3 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        let after = balanced.shared.state().backends.clone();
        assert_eq!(after.len(), 3);
        for backend in &before {
            assert!(
                after.iter().any(|b| Arc::ptr_eq(b, backend)),
                "{} was rebuilt",
                backend.endpoint.addr
            );
        }
    }

    #[test]
    fn the_ring_maps_a_key_to_the_same_endpoint_and_moves_few_keys() {
        let make = |addrs: &[&str]| -> Vec<Arc<Backend>> {
            addrs
                .iter()
                .map(|addr| {
                    Arc::new(
                        Backend::new(Endpoint::new(*addr), None, &BalanceConfig::default())
                            .unwrap(),
                    )
                })
                .collect()
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _guard = runtime.enter();
        let three = make(&["10.0.0.1:1", "10.0.0.2:1", "10.0.0.3:1"]);
        let ring3 = ring(&three);
        let pool3: Vec<usize> = (0..3).collect();
        let keys: Vec<String> = (0..1000).map(|i| format!("user-{i}")).collect();
        let owner3: Vec<&str> = keys
            .iter()
            .map(|key| {
                three[on_ring(&ring3, stable_hash(&[key.as_bytes()]), &pool3)]
                    .endpoint
                    .addr
                    .as_str()
            })
            .collect();
        // Every endpoint gets a fair share.
        for backend in &three {
            let share = owner3
                .iter()
                .filter(|a| **a == backend.endpoint.addr)
                .count();
            assert!(
                (200..470).contains(&share),
                "{}: {share}",
                backend.endpoint.addr
            );
        }
        // Adding a fourth moves only the keys it takes over.
        let four = make(&["10.0.0.1:1", "10.0.0.2:1", "10.0.0.3:1", "10.0.0.4:1"]);
        let ring4 = ring(&four);
        let pool4: Vec<usize> = (0..4).collect();
        let mut moved_elsewhere = 0;
        for (key, before) in keys.iter().zip(&owner3) {
            let after = four[on_ring(&ring4, stable_hash(&[key.as_bytes()]), &pool4)]
                .endpoint
                .addr
                .as_str();
            if after != *before && after != "10.0.0.4:1" {
                moved_elsewhere += 1;
            }
        }
        assert_eq!(moved_elsewhere, 0);
    }
}
