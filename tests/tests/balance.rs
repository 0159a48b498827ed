//! Client-side balancing over real servers on 127.0.0.1: every policy, metadata-aware
//! selection, a client that starts before its endpoints exist, a backend killed under load,
//! and the `dns:///` and `etcd://` resolvers end to end.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rzero::balance::Policy;
use rzero::discovery::{Endpoint, Resolution, Resolver, ResolverTarget};
use rzero::interceptor::{self, Call, Next};
use rzero::testing::ExpectStatus;
use rzero::{CallExt, Code, ConnectError, Request, Status};
use rzero_tests::default::echo::v1::EchoRequest;
use rzero_tests::default::echo::v1::echo_client::EchoClient;
use rzero_tests::echo::{self, ServerHandle};
use rzero_tests::gate::Gate;
use tokio::sync::watch;

const LIMIT: Duration = Duration::from_secs(20);

async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: not done within {LIMIT:?}"))
}

/// An echo server that names itself in the `x-server` response header and answers after
/// `delay`.
async fn server(name: &'static str, delay: Duration) -> (SocketAddr, ServerHandle) {
    let builder = rzero::Server::builder()
        .interceptor(interceptor::from_fn(
            move |call: Call, next: Next| async move {
                tokio::time::sleep(delay).await;
                next.run(call).await
            },
        ))
        .interceptor(echo::names_itself(name))
        .add_service(echo::echo_server());
    echo::spawn_builder(builder).await
}

/// Which server answered a unary call.
async fn who(client: &EchoClient, request: Request<EchoRequest>) -> Result<String, Status> {
    let response = client.unary(request).await?;
    Ok(response
        .metadata()
        .get("x-server")
        .expect("x-server header")
        .to_str()
        .expect("ascii")
        .to_owned())
}

fn hello() -> Request<EchoRequest> {
    Request::new(EchoRequest {
        message: "hi".into(),
        ..Default::default()
    })
}

fn counts(names: &[String]) -> BTreeMap<&str, usize> {
    let mut counts = BTreeMap::new();
    for name in names {
        *counts.entry(name.as_str()).or_default() += 1;
    }
    counts
}

fn client(target: &str, policy: Policy) -> EchoClient {
    EchoClient::new(
        rzero::Client::builder(target)
            .balancer(policy)
            .seed(7)
            .build()
            .expect("client"),
    )
}

async fn calls(client: &EchoClient, n: usize) -> Vec<String> {
    let mut names = Vec::with_capacity(n);
    for _ in 0..n {
        names.push(within("call", who(client, hello())).await.expect("call"));
    }
    names
}

#[tokio::test]
async fn round_robin_takes_turns() {
    let (a, _a) = server("a", Duration::ZERO).await;
    let (b, _b) = server("b", Duration::ZERO).await;
    let (c, _c) = server("c", Duration::ZERO).await;
    let client = client(&format!("static:///{a},{b},{c}"), Policy::RoundRobin);
    let names = calls(&client, 30).await;
    assert_eq!(
        counts(&names),
        BTreeMap::from([("a", 10), ("b", 10), ("c", 10)])
    );
    // Strict rotation: no server twice in a row.
    assert!(names.windows(2).all(|pair| pair[0] != pair[1]), "{names:?}");
}

#[tokio::test]
async fn pick_first_sticks_to_one_and_fails_over() {
    let (a, _a) = server("a", Duration::ZERO).await;
    let (b, _b) = server("b", Duration::ZERO).await;
    let gate_a = Gate::start(a).await;
    let gate_b = Gate::start(b).await;
    // Sorted order decides "first": name the gates so that a's sorts first.
    let (first, second) = if gate_a.addr() < gate_b.addr() {
        (gate_a, gate_b)
    } else {
        (gate_b, gate_a)
    };
    let client = client(
        &format!("static:///{},{}", first.addr(), second.addr()),
        Policy::PickFirst,
    );
    let names = calls(&client, 10).await;
    assert_eq!(counts(&names).len(), 1, "{names:?}");
    let sticky = names[0].clone();

    // The first server dies (its address now refuses connections). A call racing its death
    // may fail (its request may be on the wire); from then on, calls go to the other one.
    drop(first);
    let mut failures = 0;
    let mut names = Vec::new();
    for _ in 0..10 {
        match within("call", who(&client, hello())).await {
            Ok(name) => names.push(name),
            Err(status) => {
                assert_eq!(status.code(), Code::Unavailable, "{status:?}");
                assert!(names.is_empty(), "a failure after a success: {names:?}");
                failures += 1;
            }
        }
    }
    assert!(failures <= 1, "{failures} calls failed");
    assert!(names.iter().all(|name| *name != sticky), "{names:?}");
}

#[tokio::test]
async fn p2c_ewma_avoids_a_slow_server() {
    let (a, _a) = server("a", Duration::ZERO).await;
    let (b, _b) = server("b", Duration::ZERO).await;
    let (slow, _slow) = server("slow", Duration::from_millis(60)).await;
    let client = client(&format!("static:///{a},{b},{slow}"), Policy::P2cEwma);
    let names = calls(&client, 150).await;
    let counts = counts(&names);
    let slow_share = counts.get("slow").copied().unwrap_or(0);
    // An even spread would give it 50; p2c only goes back to it to refresh its numbers.
    assert!(slow_share <= 20, "{counts:?}");
    assert!(counts.get("a").copied().unwrap_or(0) >= 30, "{counts:?}");
    assert!(counts.get("b").copied().unwrap_or(0) >= 30, "{counts:?}");
}

#[tokio::test]
async fn consistent_hash_keeps_a_key_on_one_server() {
    let (a, _a) = server("a", Duration::ZERO).await;
    let (b, _b) = server("b", Duration::ZERO).await;
    let (c, _c) = server("c", Duration::ZERO).await;
    let client = client(&format!("static:///{a},{b},{c}"), Policy::ConsistentHash);
    let mut owners = BTreeMap::new();
    for user in 0..30 {
        let key = format!("user-{user}");
        let mut seen = Vec::new();
        for _ in 0..3 {
            let request = hello().hash_key(key.clone());
            seen.push(within("call", who(&client, request)).await.expect("call"));
        }
        assert!(
            seen.windows(2).all(|pair| pair[0] == pair[1]),
            "{key}: {seen:?}"
        );
        owners.insert(key, seen[0].clone());
    }
    let owner_names: Vec<String> = owners.values().cloned().collect();
    let spread = counts(&owner_names);
    assert_eq!(
        spread.len(),
        3,
        "30 keys should reach all three: {spread:?}"
    );

    let status = within("call without a key", who(&client, hello()))
        .await
        .expect_status(Code::InvalidArgument);
    assert!(status.message().contains("hash_key"), "{status:?}");
}

/// A resolver the test feeds by hand, with metadata.
#[derive(Clone)]
struct Manual(watch::Receiver<Vec<Endpoint>>);

impl Resolver for Manual {
    fn resolve(&self, _: &ResolverTarget) -> Result<Resolution, ConnectError> {
        Ok(Resolution::new(self.0.clone()))
    }
}

fn endpoint(addr: SocketAddr, version: &str) -> Endpoint {
    let mut endpoint = Endpoint::new(addr.to_string());
    endpoint
        .metadata
        .insert("version".to_owned(), version.to_owned());
    endpoint
}

#[tokio::test]
async fn metadata_selects_endpoints_per_client_and_per_call() {
    let (a, _a) = server("a-v1", Duration::ZERO).await;
    let (b, _b) = server("b-v2", Duration::ZERO).await;
    let (c, _c) = server("c-v2", Duration::ZERO).await;
    let (_feed, endpoints) = watch::channel(vec![
        endpoint(a, "v1"),
        endpoint(b, "v2"),
        endpoint(c, "v2"),
    ]);

    // A canary client: only version=v2.
    let canary = EchoClient::new(
        rzero::Client::builder("manual:///echo")
            .resolver("manual", Manual(endpoints.clone()))
            .balancer(Policy::RoundRobin)
            .select("version", "v2")
            .build()
            .expect("client"),
    );
    let names = calls(&canary, 20).await;
    assert_eq!(counts(&names), BTreeMap::from([("b-v2", 10), ("c-v2", 10)]));

    // One client for all, routing single calls.
    let all = EchoClient::new(
        rzero::Client::builder("manual:///echo")
            .resolver("manual", Manual(endpoints))
            .balancer(Policy::RoundRobin)
            .build()
            .expect("client"),
    );
    for _ in 0..6 {
        let name = within("call", who(&all, hello().route_to("version", "v1")))
            .await
            .expect("call");
        assert_eq!(name, "a-v1");
    }
    let status = within("call", who(&all, hello().route_to("version", "v3")))
        .await
        .expect_status(Code::Unavailable);
    assert!(status.message().contains("version=v3"), "{status:?}");
}

#[tokio::test]
async fn a_client_starts_before_its_endpoints_exist() {
    let (feed, endpoints) = watch::channel(Vec::new());
    let client = EchoClient::new(
        rzero::Client::builder("manual:///echo")
            .resolver("manual", Manual(endpoints))
            .build()
            .expect("a client with no endpoints still builds"),
    );
    let status = within("call with no endpoints", who(&client, hello()))
        .await
        .expect_status(Code::Unavailable);
    assert!(status.message().contains("no endpoints"), "{status:?}");

    let (a, _a) = server("a", Duration::ZERO).await;
    feed.send_replace(vec![Endpoint::new(a.to_string())]);
    // The balancer applies the set on its own task: poll, bounded.
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        match who(&client, hello()).await {
            Ok(name) => {
                assert_eq!(name, "a");
                break;
            }
            Err(status) => {
                assert_eq!(status.code(), Code::Unavailable, "{status:?}");
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "endpoints never appeared"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

#[tokio::test]
async fn a_backend_killed_under_load_fails_only_the_calls_in_flight() {
    const WORKERS: usize = 4;
    let (a, _a) = server("a", Duration::from_millis(2)).await;
    let (b, _b) = server("b", Duration::from_millis(2)).await;
    let (c, _c) = server("c", Duration::from_millis(2)).await;
    let gates = [
        Gate::start(a).await,
        Gate::start(b).await,
        Gate::start(c).await,
    ];
    let target = format!(
        "static:///{},{},{}",
        gates[0].addr(),
        gates[1].addr(),
        gates[2].addr()
    );
    let [gate_a, gate_b, gate_c] = gates;
    let client = client(&target, Policy::RoundRobin);

    let done = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..WORKERS {
        let client = client.clone();
        let done = Arc::clone(&done);
        let failed = Arc::clone(&failed);
        workers.push(tokio::spawn(async move {
            let mut served_by_b_late = 0;
            for i in 0..150 {
                match who(&client, hello()).await {
                    Ok(name) => {
                        if name == "b" && i > 100 {
                            served_by_b_late += 1;
                        }
                    }
                    Err(_) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
            served_by_b_late
        }));
    }
    // Kill b (its address refuses connections from now on) once the load is running.
    let deadline = tokio::time::Instant::now() + LIMIT;
    while done.load(Ordering::Relaxed) < 100 {
        assert!(tokio::time::Instant::now() < deadline, "no progress");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    drop(gate_b);
    let mut late_b = 0;
    for worker in workers {
        late_b += within("worker", worker).await.expect("worker");
    }
    let failed = failed.load(Ordering::Relaxed);
    // At most the calls in flight on b when it died: one per worker.
    assert!(failed <= WORKERS, "{failed} calls failed");
    assert_eq!(late_b, 0, "b answered after it was killed");
    drop((gate_a, gate_c));
}

#[tokio::test]
async fn dns_resolves_and_balances() {
    let (a, _a) = server("a", Duration::ZERO).await;
    let client = client(&format!("dns:///{a}"), Policy::RoundRobin);
    // The first lookup runs on the resolver's task; poll until it lands.
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        match who(&client, hello()).await {
            Ok(name) => {
                assert_eq!(name, "a");
                break;
            }
            Err(status) => {
                assert_eq!(status.code(), Code::Unavailable, "{status:?}");
                assert!(tokio::time::Instant::now() < deadline, "dns never resolved");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

#[tokio::test]
async fn bad_targets_are_refused_with_the_reason() {
    let cases = [
        ("nope:///x", "no resolver for scheme `nope`"),
        ("static:///", "nothing after"),
        ("dns:///no-port", "expected host:port"),
    ];
    for (target, expected) in cases {
        let error = rzero::Client::builder(target)
            .build()
            .expect_err(target)
            .to_string();
        assert!(error.contains(expected), "{target}: {error}");
    }
}

#[tokio::test]
async fn health_checking_skips_endpoints_that_are_not_serving() {
    let mut reporters = Vec::new();
    let mut servers = Vec::new();
    let mut addrs = Vec::new();
    for name in ["a", "b", "c"] {
        let builder = rzero::Server::builder()
            .interceptor(echo::names_itself(name))
            .add_service(echo::echo_server());
        reporters.push(builder.health_reporter().expect("health on"));
        let (addr, handle) = echo::spawn_builder(builder).await;
        addrs.push(addr.to_string());
        servers.push(handle);
    }
    let client = EchoClient::new(
        rzero::Client::builder(&format!("static:///{}", addrs.join(",")))
            .balancer(Policy::RoundRobin)
            .health_check(true)
            .build()
            .expect("client"),
    );
    let names = calls(&client, 9).await;
    assert_eq!(counts(&names).len(), 3, "{names:?}");

    // b says it is not serving (say, draining): calls stop going there, without failures.
    reporters[1].set_not_serving("");
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        let names = calls(&client, 6).await;
        if !names.iter().any(|name| name == "b") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "b still picked");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let names = calls(&client, 20).await;
    assert!(!names.iter().any(|name| name == "b"), "{names:?}");

    // And back when it serves again.
    reporters[1].set_serving("");
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        let names = calls(&client, 6).await;
        if names.iter().any(|name| name == "b") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "b never came back");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(servers);
}
