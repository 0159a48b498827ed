//! Breakers, load shedding, the concurrency limit, message size limits and time limits, on
//! real servers over TCP on 127.0.0.1, with the echo service (`tests/src/echo.rs`).
//!
//! Breakers run on a seeded random source and a [`ManualClock`], so which calls they drop is
//! the same every run; no test depends on how fast the machine is. Every await that could
//! hang is bounded by [`within`], every loop by a count.

use std::future::Future;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::Duration;

use rzero::config::{ClientConfig, ServerConfig};
use rzero::interceptor::{Call, Next};
use rzero::metrics::Metrics;
use rzero::protection::{Breaker, ManualClock, Shedding};
use rzero::{BoxStream, Code, Request, Response, Status, Streaming};
use rzero_tests::default::echo::v1::echo_client::EchoClient;
use rzero_tests::default::echo::v1::echo_server::{Echo, EchoServer};
use rzero_tests::default::echo::v1::{EchoReply, EchoRequest};
use rzero_tests::echo::{self, EchoService, ServerHandle};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;

/// Generous bound for anything that should finish quickly.
const LIMIT: Duration = Duration::from_secs(20);

/// One breaker bucket: moving the manual clock by this much starts a new one.
const BUCKET: Duration = Duration::from_millis(250);

async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: not done within {LIMIT:?}"))
}

fn request(message: &str) -> EchoRequest {
    EchoRequest {
        message: message.into(),
        ..Default::default()
    }
}

fn failing(message: &str) -> EchoRequest {
    EchoRequest {
        fail_with_code: Code::Unavailable as i32,
        ..request(message)
    }
}

fn slow(message: &str, delay_ms: u32) -> EchoRequest {
    EchoRequest {
        delay_ms,
        ..request(message)
    }
}

fn breaker_open(status: &Status) -> bool {
    status.code() == Code::Unavailable && status.message().contains("circuit breaker is open")
}

/// Counts the calls that reach the server's interceptors (refused ones never do).
fn counting(calls: &Arc<AtomicUsize>) -> impl rzero::Interceptor {
    let calls = Arc::clone(calls);
    rzero::interceptor::from_fn(move |call: Call, next: Next| {
        calls.fetch_add(1, Ordering::SeqCst);
        next.run(call)
    })
}

async fn connect(addr: std::net::SocketAddr) -> EchoClient {
    EchoClient::new(
        within("connect", rzero::Client::connect(&addr.to_string()))
            .await
            .expect("connect"),
    )
}

/// Makes failing unary calls until the breaker refuses one; returns how many were made.
async fn fail_until_open(client: &EchoClient) -> usize {
    for made in 1..=200 {
        let status = within("failing unary", client.unary(failing("boom")))
            .await
            .expect_err("asked to fail");
        if breaker_open(&status) {
            return made;
        }
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        assert!(
            status.message().starts_with("requested failure"),
            "{status:?}"
        );
    }
    panic!("the breaker never opened in 200 failing calls");
}

#[tokio::test]
async fn client_breaker_opens_under_failures_and_lets_traffic_back_as_the_backend_recovers() {
    let reached = Arc::new(AtomicUsize::new(0));
    let (addr, server) = echo::spawn_builder(
        rzero::Server::builder()
            .interceptor(counting(&reached))
            .add_service(echo::echo_server()),
    )
    .await;
    let clock = ManualClock::new();
    let client = EchoClient::new(
        rzero::Client::builder(&addr.to_string())
            .breaker(Breaker::new().seed(42).clock(clock.clone()))
            .build()
            .expect("client"),
    );

    // The backend fails: after a handful of failures the breaker starts refusing calls
    // locally, and those never reach the server.
    let made = fail_until_open(&client).await;
    assert!(
        made > 5,
        "go-zero's breaker tolerates 5 failures; opened after {made}"
    );
    assert_eq!(reached.load(Ordering::SeqCst), made - 1);

    // The backend recovers. Time passes a bucket per call: probes and the calls the
    // breaker lets through succeed, the failures age out, and soon every call passes.
    let mut refused = 0;
    let mut passed_in_a_row = 0;
    for _ in 0..400 {
        clock.advance(BUCKET);
        match within("unary", client.unary(request("better"))).await {
            Ok(reply) => {
                assert_eq!(reply.into_inner().message, "better");
                passed_in_a_row += 1;
                if passed_in_a_row == 40 {
                    break;
                }
            }
            Err(status) => {
                assert!(breaker_open(&status), "{status:?}");
                refused += 1;
                passed_in_a_row = 0;
            }
        }
    }
    assert_eq!(
        passed_in_a_row, 40,
        "traffic never came back ({refused} refused)"
    );
    server.shutdown().await.expect("server ended cleanly");
}

#[tokio::test]
async fn client_breaker_is_per_method() {
    let (addr, server) = echo::spawn_server().await;
    let clock = ManualClock::new();
    let client = EchoClient::new(
        rzero::Client::builder(&addr.to_string())
            .breaker(Breaker::new().seed(7).clock(clock.clone()))
            .build()
            .expect("client"),
    );
    fail_until_open(&client).await;

    // Unary is refused most of the time now; server streaming has a breaker of its own.
    for i in 0..20 {
        let replies = within(
            "server stream",
            client.server_stream(EchoRequest {
                count: 2,
                ..request("stream")
            }),
        )
        .await
        .expect("server streaming is unaffected")
        .into_inner();
        assert_eq!(
            collect(replies).await.expect("replies").len(),
            2,
            "call {i}"
        );
    }
    let refused = count_refused(20, || client.unary(failing("still broken"))).await;
    assert!(refused > 0, "the unary breaker closed by itself");
    server.shutdown().await.expect("server ended cleanly");
}

/// Opens bidi streams that answer their first message and then fail, until opening one is
/// refused; returns how many opened, and the refusal. The failure is known only when a
/// stream ends, so only a breaker that counts streams at their end can refuse.
async fn fail_streams_until_refused(client: &EchoClient) -> (usize, Status) {
    for opened in 0..200 {
        let (tx, rx) = mpsc::channel(2);
        tx.send(request("fine")).await.expect("queue");
        tx.send(failing("then broken")).await.expect("queue");
        drop(tx);
        match within("bidi", client.bidi(ReceiverStream::new(rx))).await {
            Ok(response) => {
                let mut replies = response.into_inner();
                let first = within("reply", replies.message()).await.expect("reply");
                assert_eq!(first.expect("first reply").message, "fine");
                let status = within("end", replies.message())
                    .await
                    .expect_err("the stream ends failing");
                assert_eq!(status.code(), Code::Unavailable, "{status:?}");
                assert!(!breaker_open(&status), "{status:?}");
            }
            Err(status) => return (opened, status),
        }
    }
    panic!("opening a bidi stream was never refused in 200 tries");
}

#[tokio::test]
async fn client_breaker_counts_streams_when_they_end() {
    let reached = Arc::new(AtomicUsize::new(0));
    let (addr, server) = echo::spawn_builder(
        rzero::Server::builder()
            .interceptor(counting(&reached))
            .add_service(echo::echo_server()),
    )
    .await;
    let clock = ManualClock::new();
    let client = EchoClient::new(
        rzero::Client::builder(&addr.to_string())
            .breaker(Breaker::new().seed(11).clock(clock.clone()))
            .build()
            .expect("client"),
    );
    let (opened, refusal) = fail_streams_until_refused(&client).await;
    assert!(breaker_open(&refusal), "{refusal:?}");
    assert!(opened > 5, "opened {opened}");
    // Refused locally: the server saw only the streams that opened.
    assert_eq!(reached.load(Ordering::SeqCst), opened);
    server.shutdown().await.expect("server ended cleanly");
}

#[tokio::test]
async fn server_breaker_counts_streams_when_they_end_per_method_and_in_metrics() {
    let clock = ManualClock::new();
    let metrics = Metrics::default();
    let reached = Arc::new(AtomicUsize::new(0));
    let (addr, server) = echo::spawn_builder(
        rzero::Server::builder()
            .metrics(&metrics)
            .interceptor(counting(&reached))
            .breaker(Breaker::new().seed(3).clock(clock.clone()))
            .add_service(echo::echo_server()),
    )
    .await;
    let client = connect(addr).await;

    let (opened, refusal) = fail_streams_until_refused(&client).await;
    assert!(breaker_open(&refusal), "{refusal:?}");
    assert!(
        refusal.message().contains("/echo.v1.Echo/Bidi"),
        "{refusal:?}"
    );
    assert!(opened > 5, "opened {opened}");
    // Refused calls never reached the interceptors.
    assert_eq!(reached.load(Ordering::SeqCst), opened);

    // Unary calls on the same server are another method.
    for _ in 0..20 {
        within("unary", client.unary(request("ok")))
            .await
            .expect("unary is unaffected");
    }
    let exposition = metrics.render();
    assert!(
        exposition.contains(
            "rzero_server_refused_total{method=\"/echo.v1.Echo/Bidi\",reason=\"breaker\"} 1"
        ),
        "{exposition}"
    );
    server.shutdown().await.expect("server ended cleanly");
}

/// The echo service with the capacity of a CPU-bound server: four workers, so calls beyond
/// four queue and their latency grows, while the throughput stays put.
#[derive(Debug, Clone)]
struct FourWorkers(Arc<tokio::sync::Semaphore>);

#[rzero::async_trait]
impl Echo for FourWorkers {
    async fn unary(&self, request: Request<EchoRequest>) -> Result<Response<EchoReply>, Status> {
        let _worker = self.0.acquire().await.expect("never closed");
        EchoService.unary(request).await
    }

    async fn server_stream(
        &self,
        request: Request<EchoRequest>,
    ) -> Result<Response<BoxStream<EchoReply>>, Status> {
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
async fn shedding_refuses_some_calls_on_a_hot_cpu_and_none_on_a_cool_one() {
    const CALLERS: usize = 40;
    const CALLS: usize = 3;

    async fn run(cpu_millis: u32) -> (usize, usize) {
        let cpu = Arc::new(AtomicU32::new(cpu_millis));
        let reading = Arc::clone(&cpu);
        let workers = FourWorkers(Arc::new(tokio::sync::Semaphore::new(4)));
        let (addr, server) = echo::spawn_builder(
            rzero::Server::builder()
                .shedding(Shedding::new(900).cpu_usage(move || reading.load(Ordering::Relaxed)))
                .add_service(EchoServer::new(workers)),
        )
        .await;
        let client = connect(addr).await;
        // Ten times more callers than workers. The shedder's capacity estimate (most calls
        // completed in 100 ms times the lowest latency) stays near the four workers
        // whatever the machine's speed, far below the ~40 calls in flight; at 95 % CPU it
        // is halved again.
        let mut callers = tokio::task::JoinSet::new();
        for caller in 0..CALLERS {
            let client = client.clone();
            callers.spawn(async move {
                let (mut ok, mut shed) = (0, 0);
                for call in 0..CALLS {
                    let message = format!("{caller}-{call}");
                    match client.unary(slow(&message, 20)).await {
                        Ok(reply) => {
                            assert_eq!(reply.into_inner().message, message);
                            ok += 1;
                        }
                        Err(status) => {
                            assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                            assert!(status.message().starts_with("server overloaded"));
                            shed += 1;
                        }
                    }
                }
                (ok, shed)
            });
        }
        let (mut ok, mut shed) = (0, 0);
        while let Some(done) = within("callers", callers.join_next()).await {
            let (o, s) = done.expect("caller task");
            ok += o;
            shed += s;
        }
        server.shutdown().await.expect("server ended cleanly");
        (ok, shed)
    }

    let (ok, shed) = run(100).await;
    assert_eq!((ok, shed), (CALLERS * CALLS, 0), "a cool CPU never sheds");
    let (ok, shed) = run(950).await;
    assert!(shed > 0, "nothing shed at 95 % CPU ({ok} passed)");
    assert!(ok > 0, "everything shed at 95 % CPU");
}

#[tokio::test]
async fn concurrency_limit_refuses_at_once_and_frees_a_slot_when_a_stream_ends() {
    let (addr, server) = echo::spawn_builder(
        rzero::Server::builder()
            .concurrency_limit(2)
            .add_service(echo::echo_server()),
    )
    .await;
    let client = connect(addr).await;

    // Two bidi streams in flight, each having answered once.
    let mut streams = Vec::new();
    for name in ["one", "two"] {
        let (tx, rx) = mpsc::channel(1);
        let mut replies = within("bidi", client.bidi(ReceiverStream::new(rx)))
            .await
            .expect("within the limit")
            .into_inner();
        tx.send(request(name)).await.expect("request stream open");
        let reply = within("reply", replies.message()).await.expect("reply");
        assert_eq!(reply.expect("a reply").message, name);
        streams.push((tx, replies));
    }

    // A third call is refused, not queued.
    let status = within("unary over the limit", client.unary(request("three")))
        .await
        .expect_err("over the limit");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().starts_with("server busy"), "{status:?}");

    // One stream ends: its slot is free once its status has gone out.
    let (tx, replies) = streams.pop().expect("a stream");
    drop(tx);
    assert!(collect(replies).await.expect("ended well").is_empty());
    let reply = within("unary", client.unary(request("three")))
        .await
        .expect("a slot is free")
        .into_inner();
    assert_eq!(reply.message, "three");
    drop(streams);
    server.shutdown().await.expect("server ended cleanly");
}

/// The echo service, except that `Unary` never answers and reports when its future is
/// dropped.
#[derive(Debug, Default)]
struct Hangs {
    dropped: Mutex<Option<oneshot::Sender<()>>>,
}

#[rzero::async_trait]
impl Echo for Hangs {
    async fn unary(&self, _: Request<EchoRequest>) -> Result<Response<EchoReply>, Status> {
        // Dropped with the handler's future; the test's receiver then sees it closed.
        let _guard = self.dropped.lock().expect("lock").take();
        std::future::pending().await
    }

    async fn server_stream(
        &self,
        request: Request<EchoRequest>,
    ) -> Result<Response<BoxStream<EchoReply>>, Status> {
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
async fn a_handler_past_the_server_timeout_is_cancelled() {
    let (dropped, handler_gone) = oneshot::channel();
    let service = Hangs {
        dropped: Mutex::new(Some(dropped)),
    };
    let (addr, server) = echo::spawn_builder(
        rzero::Server::builder()
            .timeout(Duration::from_millis(200))
            .add_service(EchoServer::new(service)),
    )
    .await;
    let client = connect(addr).await;
    let status = within(
        "unary past the server timeout",
        client.unary(request("hang")),
    )
    .await
    .expect_err("the handler never answers");
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    // The handler's future was dropped (cancelled), not left running.
    assert!(
        within("handler dropped", handler_gone).await.is_err(),
        "the guard is dropped, never sent"
    );
    server.shutdown().await.expect("server ended cleanly");
}

#[tokio::test]
async fn an_oversized_request_is_refused_and_other_calls_on_the_connection_go_on() {
    let (addr, server): (_, ServerHandle) =
        echo::spawn_service(EchoServer::new(EchoService).max_decoding_message_size(1024)).await;
    // One client, one HTTP/2 connection.
    let client = connect(addr).await;

    let (tx, rx) = mpsc::channel(1);
    let mut replies = within("bidi", client.bidi(ReceiverStream::new(rx)))
        .await
        .expect("bidi")
        .into_inner();
    tx.send(request("before"))
        .await
        .expect("request stream open");
    let reply = within("reply", replies.message()).await.expect("reply");
    assert_eq!(reply.expect("a reply").message, "before");

    let status = within(
        "oversized unary",
        client.unary(EchoRequest {
            payload: vec![7; 4096],
            ..request("big")
        }),
    )
    .await
    .expect_err("over the 1 KiB limit");
    // tonic's code for an over-limit message (see tests/behaviour.rs).
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert!(status.message().contains("too large"), "{status:?}");

    // The stream in flight on the same connection goes on, and new calls work.
    tx.send(request("after"))
        .await
        .expect("request stream open");
    let reply = within("reply", replies.message()).await.expect("reply");
    assert_eq!(reply.expect("a reply").message, "after");
    drop(tx);
    assert!(collect(replies).await.expect("ended well").is_empty());
    let reply = within("unary", client.unary(request("small")))
        .await
        .expect("small unary")
        .into_inner();
    assert_eq!(reply.message, "small");
    server.shutdown().await.expect("server ended cleanly");
}

#[tokio::test]
async fn yaml_configs_turn_the_breakers_on_as_go_zero_does() {
    for (server_yaml, client_yaml, expect_open) in [
        // go-zero's defaults: Middlewares.Breaker true, CpuThreshold 900.
        ("ListenOn: 127.0.0.1:0\n", "", true),
        (
            "ListenOn: 127.0.0.1:0\nCpuThreshold: 0\nMiddlewares: {Breaker: false}\n",
            "Middlewares: {Breaker: false}\n",
            false,
        ),
    ] {
        let config = ServerConfig::from_yaml_str(server_yaml).expect("server config");
        let (addr, server) = echo::spawn_builder(
            config
                .builder()
                .expect("builder")
                .add_service(echo::echo_server()),
        )
        .await;
        let client_config = ClientConfig::from_yaml_str(&format!("Target: {addr}\n{client_yaml}"))
            .expect("client config");
        let client = EchoClient::new(client_config.build().expect("client"));
        // Breakers use real time and randomness here: after 5 tolerated failures each call
        // is refused with a probability over 0.3, so 100 calls without one refusal would
        // take odds below 1e-15.
        let refused = count_refused(100, || client.unary(failing("boom"))).await;
        assert_eq!(
            refused > 0,
            expect_open,
            "{server_yaml}{client_yaml}: {refused}"
        );
        server.shutdown().await.expect("server ended cleanly");
    }
}

/// Makes `calls` calls with `call`, counting refusals by a breaker; other errors are
/// expected to be the echo service's requested failures.
async fn count_refused<T, F, Fut>(calls: usize, call: F) -> usize
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, Status>>,
{
    let mut refused = 0;
    for _ in 0..calls {
        if let Err(status) = within("call", call()).await {
            if breaker_open(&status) {
                refused += 1;
            } else {
                assert!(
                    status.message().starts_with("requested failure"),
                    "{status:?}"
                );
            }
        }
    }
    refused
}

async fn collect(mut replies: Streaming<EchoReply>) -> Result<Vec<EchoReply>, Status> {
    let mut all = Vec::new();
    for _ in 0..1000 {
        match within("next reply", replies.message()).await? {
            Some(reply) => all.push(reply),
            None => return Ok(all),
        }
    }
    panic!("more than 1000 replies");
}

#[tokio::test]
async fn a_refusal_by_the_client_breaker_is_marked_as_made_locally() {
    let (addr, server) = echo::spawn_server().await;
    let clock = ManualClock::new();
    let client = EchoClient::new(
        rzero::Client::builder(&addr.to_string())
            .breaker(Breaker::new().seed(42).clock(clock.clone()))
            .retry(
                rzero::client::RetryPolicy::default()
                    .method("/echo.v1.Echo/Unary")
                    .backoff(Duration::from_millis(1), Duration::from_millis(2)),
            )
            .build()
            .expect("client"),
    );
    fail_until_open(&client).await;
    let mut refusals = 0;
    for _ in 0..20 {
        let status = within("unary", client.unary(failing("again")))
            .await
            .expect_err("asked to fail");
        if breaker_open(&status) {
            refusals += 1;
            // Made here, without sending anything: the retrier gives it back as it is.
            assert!(
                status.metadata().contains_key("rzero-refused-locally"),
                "{status:?}"
            );
        }
    }
    assert!(
        refusals > 0,
        "the breaker stayed open for some of the calls"
    );
    server.shutdown().await.expect("server ended cleanly");
}
