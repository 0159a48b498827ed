//! Built-in call policies over real TCP: server-side time limits (per method), deadline
//! propagation through a server that calls another, client default timeouts, panics turned
//! into `INTERNAL`, broken connections reported as `UNAVAILABLE`, and retries.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rzero::balance::Policy;
use rzero::client::RetryPolicy;
use rzero::interceptor::{self, Call, Next};
use rzero::testing::ExpectStatus;
use rzero::{BoxStream, CallExt, Code, Request, Response, Status, Streaming};
use rzero_tests::default::echo::v1::echo_client::EchoClient;
use rzero_tests::default::echo::v1::echo_server::{Echo, EchoServer};
use rzero_tests::default::echo::v1::{EchoReply, EchoRequest};
use rzero_tests::echo::{self, EchoService};
use rzero_tests::gate::Gate;
use tokio_stream::StreamExt as _;

const LIMIT: Duration = Duration::from_secs(20);

async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: not done within {LIMIT:?}"))
}

fn slow(delay_ms: u32) -> EchoRequest {
    EchoRequest {
        message: "slow".into(),
        delay_ms,
        ..Default::default()
    }
}

async fn connect(addr: std::net::SocketAddr) -> EchoClient {
    EchoClient::new(
        within("connect", rzero::Client::connect(&addr.to_string()))
            .await
            .expect("connect"),
    )
}

#[tokio::test]
async fn a_server_limit_per_method_cancels_the_handler() {
    let (addr, _server) = echo::spawn_builder(
        rzero::Server::builder()
            .timeout(Duration::from_secs(10))
            .method_timeout("/echo.v1.Echo/Unary", Duration::from_millis(100))
            .add_service(echo::echo_server()),
    )
    .await;
    let client = connect(addr).await;
    // No deadline from the client: the server's limit for Unary applies.
    let started = Instant::now();
    within("unary", client.unary(slow(3000)))
        .await
        .expect_status(Code::DeadlineExceeded);
    assert!(started.elapsed() < Duration::from_millis(2500));
    // Other methods keep the server-wide 10 s.
    let stream = within(
        "server_stream",
        client.server_stream(EchoRequest {
            message: "s".into(),
            count: 1,
            delay_ms: 200,
            ..Default::default()
        }),
    )
    .await
    .expect("server_stream");
    let replies = within("collect", rzero::testing::collect(stream.into_inner()))
        .await
        .expect("replies");
    assert_eq!(replies.len(), 1);
}

/// Forwards every unary call to another echo server, through a client whose own default
/// timeout is long: only the incoming deadline can shorten what it sends.
struct Forwarder {
    downstream: EchoClient,
}

#[rzero::async_trait]
impl Echo for Forwarder {
    async fn unary(&self, request: Request<EchoRequest>) -> Result<Response<EchoReply>, Status> {
        self.downstream.unary(request.into_inner()).await
    }

    async fn server_stream(
        &self,
        request: Request<EchoRequest>,
    ) -> Result<Response<BoxStream<EchoReply>>, Status> {
        if request.get_ref().message == "panic" {
            // Two replies, then the stream itself panics while the connection polls it. (It
            // yields before each item, so each reply is flushed on its own rather than
            // buffered with the next, which the panic would lose.)
            let replies = tokio_stream::iter(0..3).then(|i| async move {
                tokio::task::yield_now().await;
                assert!(i < 2, "the reply stream gave up");
                Ok(EchoReply {
                    message: format!("reply {i}"),
                    ..Default::default()
                })
            });
            return Ok(Response::new(Box::pin(replies)));
        }
        EchoService.server_stream(request).await
    }

    async fn client_stream(
        &self,
        request: Request<Streaming<EchoRequest>>,
    ) -> Result<Response<EchoReply>, Status> {
        EchoService.client_stream(request).await
    }

    async fn bidi(
        &self,
        request: Request<Streaming<EchoRequest>>,
    ) -> Result<Response<BoxStream<EchoReply>>, Status> {
        EchoService.bidi(request).await
    }
}

#[tokio::test]
async fn the_remaining_deadline_propagates_downstream() {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let record = Arc::clone(&seen);
    let (downstream_addr, _downstream) = echo::spawn_builder(
        rzero::Server::builder()
            .interceptor(interceptor::from_fn(move |call: Call, next: Next| {
                let record = Arc::clone(&record);
                async move {
                    let timeout = call
                        .metadata()
                        .get("grpc-timeout")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("none")
                        .to_owned();
                    record.lock().expect("seen").push(timeout);
                    next.run(call).await
                }
            }))
            .add_service(echo::echo_server()),
    )
    .await;
    let downstream = EchoClient::new(
        rzero::Client::builder(&downstream_addr.to_string())
            .timeout(Duration::from_secs(60))
            .build()
            .expect("client"),
    );
    let (upstream_addr, _upstream) =
        echo::spawn_service(EchoServer::new(Forwarder { downstream })).await;
    let client = connect(upstream_addr).await;

    // With 500 ms on the incoming call, the downstream call gets at most that, not 60 s.
    within(
        "unary",
        client.unary(Request::new(slow(0)).deadline(Duration::from_millis(500))),
    )
    .await
    .expect("unary");
    // Without an incoming deadline, the forwarding client's own 60 s applies.
    within("unary", client.unary(slow(0))).await.expect("unary");
    // And the downstream call fails together with the incoming one.
    let started = Instant::now();
    within(
        "slow unary",
        client.unary(Request::new(slow(5000)).deadline(Duration::from_millis(200))),
    )
    .await
    .expect_status(Code::DeadlineExceeded);
    assert!(started.elapsed() < Duration::from_millis(4000));

    let seen = seen.lock().expect("seen").clone();
    assert_eq!(seen.len(), 3, "{seen:?}");
    let millis = |value: &str| -> u64 {
        let (digits, unit) = value.split_at(value.len() - 1);
        let n: u64 = digits.parse().expect("digits");
        match unit {
            "m" => n,
            "u" => n / 1000,
            "n" => n / 1_000_000,
            "S" => n * 1000,
            "M" => n * 60_000,
            other => panic!("unit {other}"),
        }
    };
    assert!(millis(&seen[0]) <= 500, "{seen:?}");
    assert!(millis(&seen[1]) > 50_000, "{seen:?}");
    assert!(millis(&seen[2]) <= 200, "{seen:?}");
}

#[tokio::test]
async fn a_client_default_timeout_and_per_method_override() {
    let (addr, _server) = echo::spawn_server().await;
    let client = EchoClient::new(
        rzero::Client::builder(&addr.to_string())
            .timeout(Duration::from_millis(100))
            .method_timeout("/echo.v1.Echo/Unary", Duration::from_secs(10))
            .build()
            .expect("client"),
    );
    // Unary has 10 s: a 300 ms call succeeds.
    within("unary", client.unary(slow(300)))
        .await
        .expect("unary");
    // Server streaming has the default 100 ms.
    let result = within(
        "server_stream",
        client.server_stream(EchoRequest {
            count: 1,
            delay_ms: 2000,
            ..Default::default()
        }),
    )
    .await;
    let status = match result {
        Err(status) => status,
        Ok(response) => within("collect", rzero::testing::collect(response.into_inner()))
            .await
            .expect_err("past the default deadline"),
    };
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    // A call's own deadline wins over the client's.
    within(
        "unary",
        client.unary(Request::new(slow(2000)).deadline(Duration::from_millis(100))),
    )
    .await
    .expect_status(Code::DeadlineExceeded);
}

/// Panics on the message "panic".
struct Panicky;

#[rzero::async_trait]
impl Echo for Panicky {
    async fn unary(&self, request: Request<EchoRequest>) -> Result<Response<EchoReply>, Status> {
        if request.get_ref().message == "panic" {
            panic!("the handler gave up");
        }
        EchoService.unary(request).await
    }

    async fn server_stream(
        &self,
        request: Request<EchoRequest>,
    ) -> Result<Response<BoxStream<EchoReply>>, Status> {
        if request.get_ref().message == "panic" {
            // Two replies, then the stream itself panics while the connection polls it. (It
            // yields before each item, so each reply is flushed on its own rather than
            // buffered with the next, which the panic would lose.)
            let replies = tokio_stream::iter(0..3).then(|i| async move {
                tokio::task::yield_now().await;
                assert!(i < 2, "the reply stream gave up");
                Ok(EchoReply {
                    message: format!("reply {i}"),
                    ..Default::default()
                })
            });
            return Ok(Response::new(Box::pin(replies)));
        }
        EchoService.server_stream(request).await
    }

    async fn client_stream(
        &self,
        request: Request<Streaming<EchoRequest>>,
    ) -> Result<Response<EchoReply>, Status> {
        EchoService.client_stream(request).await
    }

    async fn bidi(
        &self,
        request: Request<Streaming<EchoRequest>>,
    ) -> Result<Response<BoxStream<EchoReply>>, Status> {
        EchoService.bidi(request).await
    }
}

#[tokio::test]
async fn a_panicking_handler_answers_internal_and_the_server_lives_on() {
    let (addr, _server) = echo::spawn_service(EchoServer::new(Panicky)).await;
    let client = connect(addr).await;
    let status = within(
        "panicking unary",
        client.unary(EchoRequest {
            message: "panic".into(),
            ..Default::default()
        }),
    )
    .await
    .expect_status(Code::Internal);
    assert!(status.message().contains("panicked"), "{status:?}");
    let reply = within(
        "next unary",
        client.unary(EchoRequest {
            message: "fine".into(),
            ..Default::default()
        }),
    )
    .await
    .expect("the same connection still serves");
    assert_eq!(reply.into_inner().message, "fine");
}

#[tokio::test]
async fn a_reply_stream_that_panics_ends_with_internal_and_the_connection_lives_on() {
    let (addr, _server) = echo::spawn_service(EchoServer::new(Panicky)).await;
    let client = connect(addr).await;
    // A slow call on the same connection, in flight while the stream panics.
    let slow = client.unary(EchoRequest {
        message: "slow".into(),
        delay_ms: 300,
        ..Default::default()
    });
    let stream = async {
        let replies = client
            .server_stream(EchoRequest {
                message: "panic".into(),
                ..Default::default()
            })
            .await
            .expect("the stream starts")
            .into_inner();
        rzero::testing::collect_until_error(replies).await
    };
    let (slow, (replies, error)) = within("both calls", async { tokio::join!(slow, stream) }).await;
    let messages: Vec<String> = replies.into_iter().map(|r| r.message).collect();
    assert_eq!(messages, ["reply 0", "reply 1"]);
    let status = error.expect("the stream ends with an error");
    assert_eq!(status.code(), Code::Internal, "{status:?}");
    assert!(status.message().contains("panicked"), "{status:?}");
    assert_eq!(
        slow.expect("the call beside it is unharmed")
            .into_inner()
            .message,
        "slow"
    );
}

#[tokio::test]
async fn a_broken_connection_is_unavailable() {
    let (addr, _server) = echo::spawn_server().await;
    let gate = Gate::start(addr).await;
    let client = EchoClient::new(
        within("connect", rzero::Client::connect(&gate.addr()))
            .await
            .expect("connect"),
    );
    // The connection is cut while the call is in flight.
    let call = tokio::spawn(async move { client.unary(slow(2000)).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    gate.close();
    let status = within("cut call", call)
        .await
        .expect("task")
        .expect_status(Code::Unavailable);
    assert!(!status.message().is_empty());
}

#[tokio::test]
async fn retries_hide_a_backend_killed_under_load() {
    const WORKERS: usize = 4;
    let (a, _a) = echo::spawn_server().await;
    let (b, _b) = echo::spawn_server().await;
    let (c, _c) = echo::spawn_server().await;
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
    let client = EchoClient::new(
        rzero::Client::builder(&target)
            .balancer(Policy::RoundRobin)
            .retry(RetryPolicy::default().method("/echo.v1.Echo/Unary"))
            .build()
            .expect("client"),
    );
    let done = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..WORKERS {
        let client = client.clone();
        let done = Arc::clone(&done);
        workers.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            for _ in 0..100 {
                // Long enough that calls are in flight when b dies.
                if let Err(status) = client.unary(slow(5)).await {
                    failures.push(status);
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
            failures
        }));
    }
    let deadline = tokio::time::Instant::now() + LIMIT;
    while done.load(Ordering::Relaxed) < 60 {
        assert!(tokio::time::Instant::now() < deadline, "no progress");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    drop(gate_b);
    let mut failures = Vec::new();
    for worker in workers {
        failures.extend(within("worker", worker).await.expect("worker"));
    }
    assert!(failures.is_empty(), "{failures:?}");
    drop((gate_a, gate_c));
}

#[tokio::test]
async fn keepalive_pings_flow_while_a_call_waits() {
    let (addr, _server) = echo::spawn_server().await;
    // Bytes a client sends through its gate while one slow call waits for its answer.
    async fn sent_while_waiting(addr: std::net::SocketAddr, keepalive: Option<Duration>) -> u64 {
        let gate = Gate::start(addr).await;
        let mut builder = rzero::Client::builder(&gate.addr());
        if let Some(interval) = keepalive {
            builder = builder.keepalive(interval);
        }
        let client = EchoClient::new(builder.build().expect("client"));
        within("first call", client.unary(slow(0)))
            .await
            .expect("connected");
        let call = tokio::spawn(async move { client.unary(slow(1500)).await });
        // Once the request is out, nothing is sent until the answer unless pings are.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let before = gate.bytes_sent();
        let mut after = before;
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            after = gate.bytes_sent();
            if after > before {
                break;
            }
        }
        within("slow call", call)
            .await
            .expect("task")
            .expect("answered");
        after - before
    }
    assert!(
        sent_while_waiting(addr, Some(Duration::from_millis(50))).await > 0,
        "no HTTP/2 ping while the call waited"
    );
    assert_eq!(
        sent_while_waiting(addr, None).await,
        0,
        "without keepalive an idle call sends nothing"
    );
}
