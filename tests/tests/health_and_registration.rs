//! `grpc.health.v1` served by every server, and servers registering themselves in a real etcd
//! for clients that balance across them: the shutdown order (deregister, NOT_SERVING, drain)
//! included.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use rzero::balance::Policy;
use rzero::discovery::etcd::{EtcdClient, Registration};
use rzero::health::pb::HealthCheckRequest;
use rzero::health::pb::health_check_response::ServingStatus;
use rzero::health::pb::health_client::HealthClient;
use rzero::testing::{ExpectStatus, InProcessServer};
use rzero::{Code, Request};
use rzero_tests::default::echo::v1::EchoRequest;
use rzero_tests::default::echo::v1::echo_client::EchoClient;
use rzero_tests::echo::{self, ServerHandle};
use rzero_tests::etcd::EtcdServer;
use tokio_stream::StreamExt;

const LIMIT: Duration = Duration::from_secs(30);

async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: not done within {LIMIT:?}"))
}

fn ask(service: &str) -> HealthCheckRequest {
    HealthCheckRequest {
        service: service.to_owned(),
    }
}

async fn status(health: &HealthClient, service: &str) -> ServingStatus {
    let response = within("check", health.check(ask(service)))
        .await
        .expect("check")
        .into_inner();
    response.status()
}

#[tokio::test]
async fn health_reports_every_service_and_follows_the_reporter() {
    let builder = rzero::Server::builder().add_service(echo::echo_server());
    let reporter = builder.health_reporter().expect("health is on by default");
    let server = InProcessServer::start(builder);
    let health = HealthClient::new(server.client());

    assert_eq!(status(&health, "").await, ServingStatus::Serving);
    assert_eq!(
        status(&health, "echo.v1.Echo").await,
        ServingStatus::Serving
    );
    within("unknown", health.check(ask("nope.v1.Nope")))
        .await
        .expect_status(Code::NotFound);

    // Watch: the current status at once, then each change.
    let mut watch = within("watch", health.watch(ask("echo.v1.Echo")))
        .await
        .expect("watch")
        .into_inner();
    let first = within("first", watch.next())
        .await
        .expect("item")
        .expect("ok");
    assert_eq!(first.status(), ServingStatus::Serving);
    reporter.set_not_serving("echo.v1.Echo");
    let second = within("second", watch.next())
        .await
        .expect("item")
        .expect("ok");
    assert_eq!(second.status(), ServingStatus::NotServing);
    assert_eq!(
        status(&health, "echo.v1.Echo").await,
        ServingStatus::NotServing
    );
    assert_eq!(status(&health, "").await, ServingStatus::Serving);
    reporter.set_serving("echo.v1.Echo");
    let third = within("third", watch.next())
        .await
        .expect("item")
        .expect("ok");
    assert_eq!(third.status(), ServingStatus::Serving);

    // Shutdown ends the watch with NOT_SERVING instead of hanging on it.
    let stopping = tokio::spawn(server.shutdown());
    let last = within("last", watch.next())
        .await
        .expect("item")
        .expect("ok");
    assert_eq!(last.status(), ServingStatus::NotServing);
    assert!(within("end", watch.next()).await.is_none());
    within("shutdown", stopping)
        .await
        .expect("task")
        .expect("clean shutdown");
}

/// An echo server on a loopback port, registered under `key` in etcd, that names itself in
/// the `x-server` header.
async fn registered_server(
    etcd: &EtcdClient,
    key: &str,
    name: &'static str,
) -> (SocketAddr, ServerHandle) {
    let builder = rzero::Server::builder()
        .interceptor(echo::names_itself(name))
        .register(Registration::builder(etcd.clone(), key).version("v1"))
        .add_service(echo::echo_server());
    echo::spawn_builder(builder).await
}

async fn who(client: &EchoClient) -> Result<String, rzero::Status> {
    let response = client
        .unary(Request::new(EchoRequest {
            message: "hi".into(),
            ..Default::default()
        }))
        .await?;
    Ok(response
        .metadata()
        .get("x-server")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned())
}

/// Calls until `done` says the names seen so far are enough, bounded in time and count.
async fn call_until(client: &EchoClient, done: impl Fn(&[String]) -> bool) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + LIMIT;
    let mut seen = Vec::new();
    for _ in 0..5000 {
        if let Ok(name) = who(client).await {
            seen.push(name);
        }
        if done(&seen) {
            return seen;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up after {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("gave up after {} calls", seen.len());
}

#[tokio::test]
async fn three_registered_servers_share_the_calls_and_one_leaves_cleanly() {
    let etcd_server = tokio::task::spawn_blocking(EtcdServer::start)
        .await
        .expect("etcd");
    let etcd = EtcdClient::new([etcd_server.addr()]).expect("etcd client");
    let (_, a) = registered_server(&etcd, "echo.rpc", "a").await;
    let (_, b) = registered_server(&etcd, "echo.rpc", "b").await;
    let (_, c) = registered_server(&etcd, "echo.rpc", "c").await;

    let client = EchoClient::new(
        rzero::Client::builder(&format!("etcd://{}/echo.rpc", etcd_server.addr()))
            .balancer(Policy::RoundRobin)
            .build()
            .expect("client"),
    );
    // All three show up (the client starts before it has read etcd).
    call_until(&client, |seen| {
        ["a", "b", "c"]
            .iter()
            .all(|name| seen.iter().any(|s| s == name))
    })
    .await;

    // b shuts down: it deregisters first, so calls move to a and c without failing.
    within("b shutdown", b.shutdown())
        .await
        .expect("b stopped cleanly");
    let (keys, _) = etcd.get_prefix("echo.rpc/").await.expect("list");
    assert_eq!(keys.len(), 2, "b's key is gone");
    let mut failures = 0;
    for _ in 0..30 {
        match who(&client).await {
            Ok(name) => assert_ne!(name, "b"),
            Err(status) => {
                failures += 1;
                assert_eq!(status.code(), Code::Unavailable, "{status:?}");
            }
        }
    }
    assert_eq!(failures, 0);
    drop((a, c));
}

#[tokio::test]
async fn clients_keep_calling_through_an_etcd_outage() {
    let mut etcd_server = tokio::task::spawn_blocking(EtcdServer::start)
        .await
        .expect("etcd");
    let etcd = EtcdClient::new([etcd_server.addr()]).expect("etcd client");
    let (_, a) = registered_server(&etcd, "outage.rpc", "a").await;
    let (_, b) = registered_server(&etcd, "outage.rpc", "b").await;
    let target = format!("etcd://{}/outage.rpc", etcd_server.addr());
    for policy in [Policy::PickFirst, Policy::RoundRobin, Policy::P2cEwma] {
        let client = EchoClient::new(
            rzero::Client::builder(&target)
                .balancer(policy)
                .build()
                .expect("client"),
        );
        let seen = call_until(&client, |seen| !seen.is_empty()).await;
        assert!(
            seen.iter().all(|name| name == "a" || name == "b"),
            "{seen:?}"
        );
    }
    let client = EchoClient::new(
        rzero::Client::builder(&target)
            .balancer(Policy::RoundRobin)
            .build()
            .expect("client"),
    );
    call_until(&client, |seen| {
        seen.iter().any(|s| s == "a") && seen.iter().any(|s| s == "b")
    })
    .await;

    // etcd dies: the client keeps the endpoints it knows and every call still succeeds.
    let etcd_server = tokio::task::spawn_blocking(move || {
        etcd_server.stop();
        etcd_server
    })
    .await
    .expect("stop etcd");
    for _ in 0..20 {
        let name = within("call during the outage", who(&client))
            .await
            .expect("calls succeed while etcd is down");
        assert!(name == "a" || name == "b", "{name}");
    }

    // etcd comes back: a server registered afterwards is found through the resumed watch.
    let mut etcd_server = etcd_server;
    let etcd_server = tokio::task::spawn_blocking(move || {
        etcd_server.restart();
        etcd_server
    })
    .await
    .expect("restart etcd");
    let (_, c) = registered_server(&etcd, "outage.rpc", "c").await;
    call_until(&client, |seen| seen.iter().any(|s| s == "c")).await;
    drop((a, b, c, etcd_server));
}
