//! Behaviour of generated servers and clients talking to each other: the echo service
//! (`tests/src/echo.rs`) served by `rzero::Server` and called through the generated
//! `EchoClient`. Every test runs twice: over real TCP on 127.0.0.1, and over
//! `rzero::testing::InProcessServer`'s in-memory pipes.
//!
//! Every await that could hang is bounded by [`within`]; nothing sleeps to synchronise.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rzero::status::StatusExt;
use rzero::{BoxStream, CallExt, Code, CompressionEncoding, Request, Response, Status, Streaming};
use rzero_tests::default::echo::v1::echo_client::EchoClient;
use rzero_tests::default::echo::v1::echo_server::{Echo, EchoServer};
use rzero_tests::default::echo::v1::{EchoReply, EchoRequest};
use rzero_tests::echo::{
    self, ECHO_HEADER, ECHO_KEY, ECHO_TRAILER, EchoService, Served, Transport,
};
use tokio_stream::wrappers::ReceiverStream;

/// Generous bound for anything that should finish quickly.
const LIMIT: Duration = Duration::from_secs(20);

/// Large-message size: well over the 4 MiB default limit, well under the raised 64 MiB.
const LARGE: usize = 12 * 1024 * 1024;

async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: not done within {LIMIT:?}"))
}

/// A client with the same 64 MiB limits as the server.
async fn client(server: &Served) -> EchoClient {
    let inner = within("connect", server.client())
        .await
        .expect("connect to the echo server")
        .max_decoding_message_size(echo::MAX_MESSAGE_SIZE)
        .max_encoding_message_size(echo::MAX_MESSAGE_SIZE);
    EchoClient::new(inner)
}

/// A client with rzero's default limits (4 MiB decoding, no encoding limit).
async fn default_client(server: &Served) -> EchoClient {
    match server {
        // The generated client's own way of connecting.
        Served::Tcp(addr, _) => within("connect", EchoClient::connect(&addr.to_string()))
            .await
            .expect("connect to the echo server"),
        Served::InProcess(server) => EchoClient::new(server.client()),
    }
}

fn request(message: &str) -> EchoRequest {
    EchoRequest {
        message: message.into(),
        ..Default::default()
    }
}

fn failing(message: &str, code: Code) -> EchoRequest {
    EchoRequest {
        message: message.into(),
        fail_with_code: code as i32,
        ..Default::default()
    }
}

fn with_echo<T>(message: T, value: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert(ECHO_KEY, value.parse().expect("ascii metadata"));
    request
}

fn get<'a>(metadata: &'a rzero::metadata::MetadataMap, key: &str) -> Option<&'a str> {
    metadata
        .get(key)
        .map(|value| value.to_str().expect("ascii"))
}

/// Bytes gzip cannot shrink (xorshift), so size limits see the full length on the wire.
fn noise(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect()
}

/// Reads a reply stream to its end, failing the test on an error status.
async fn collect(stream: &mut Streaming<EchoReply>) -> Vec<EchoReply> {
    let mut replies = Vec::new();
    while let Some(reply) = within("next reply", stream.message())
        .await
        .expect("reply stream failed")
    {
        replies.push(reply);
    }
    replies
}

/// Asserts a status is the echo service's requested failure.
fn assert_requested_failure(status: &Status, code: Code, message: &str) {
    assert_eq!(status.code(), code, "{status:?}");
    assert_eq!(status.message(), format!("requested failure: {message}"));
    let bad_request = status
        .detail::<rzero::google::rpc::BadRequest>()
        .unwrap_or_else(|| panic!("no BadRequest detail in {status:?}"));
    assert_eq!(bad_request.field_violations.len(), 1, "{bad_request:?}");
    assert_eq!(bad_request.field_violations[0].field, "message");
    assert_eq!(
        bad_request.field_violations[0].description,
        "requested failure"
    );
}

async fn unary_echoes_message_payload_and_metadata(transport: Transport) {
    let server = echo::serve(transport, echo::echo_server()).await;
    let client = client(&server).await;

    let message = EchoRequest {
        message: "hello".into(),
        payload: vec![0, 1, 2],
        ..Default::default()
    };
    let response = within("unary", client.unary(with_echo(message, "ping-42")))
        .await
        .expect("unary");
    let metadata = response.metadata().clone();
    let reply = response.into_inner();
    assert_eq!(reply.message, "hello");
    assert_eq!(reply.index, 0);
    assert_eq!(reply.payload, [0, 1, 2]);
    assert_eq!(reply.metadata_echo, "ping-42");
    assert_eq!(get(&metadata, ECHO_HEADER), Some("ping-42"), "{metadata:?}");
    // Trailers on success: tonic alone cannot send these; rzero's client merges them into
    // the unary response metadata.
    assert_eq!(
        get(&metadata, ECHO_TRAILER),
        Some("ping-42"),
        "{metadata:?}"
    );

    // Without x-echo: nothing echoed, no header, no trailer.
    let response = within("unary", client.unary(request("plain")))
        .await
        .expect("unary");
    assert_eq!(get(response.metadata(), ECHO_HEADER), None);
    assert_eq!(get(response.metadata(), ECHO_TRAILER), None);
    assert_eq!(response.into_inner().metadata_echo, "");
}

async fn server_stream_sends_count_replies_with_header_and_trailer(transport: Transport) {
    let server = echo::serve(transport, echo::echo_server()).await;
    let client = client(&server).await;

    let message = EchoRequest {
        message: "tick".into(),
        count: 5,
        ..Default::default()
    };
    let response = within(
        "server_stream",
        client.server_stream(with_echo(message, "ss")),
    )
    .await
    .expect("server_stream");
    assert_eq!(get(response.metadata(), ECHO_HEADER), Some("ss"));
    let mut stream = response.into_inner();
    let replies = collect(&mut stream).await;
    assert_eq!(replies.len(), 5);
    for (i, reply) in replies.iter().enumerate() {
        assert_eq!(reply.message, "tick");
        assert_eq!(reply.index as usize, i);
        assert_eq!(reply.metadata_echo, "ss");
    }
    let trailers = within("trailers", stream.trailers())
        .await
        .expect("trailers")
        .expect("the stream ended with trailers");
    assert_eq!(get(&trailers, ECHO_TRAILER), Some("ss"), "{trailers:?}");

    // count 0: an empty, successful stream.
    let mut stream = within("server_stream", client.server_stream(request("none")))
        .await
        .expect("server_stream")
        .into_inner();
    assert!(collect(&mut stream).await.is_empty());
}

async fn client_stream_joins_messages(transport: Transport) {
    let server = echo::serve(transport, echo::echo_server()).await;
    let client = client(&server).await;

    let requests = tokio_stream::iter(["a", "b", "c"].map(request));
    let response = within(
        "client_stream",
        client.client_stream(with_echo(requests, "cs")),
    )
    .await
    .expect("client_stream");
    assert_eq!(get(response.metadata(), ECHO_HEADER), Some("cs"));
    assert_eq!(get(response.metadata(), ECHO_TRAILER), Some("cs"));
    let reply = response.into_inner();
    assert_eq!(reply.message, "a,b,c");
    assert_eq!(reply.index, 3);
    assert_eq!(reply.metadata_echo, "cs");

    // An empty request stream is fine too.
    let reply = within(
        "client_stream",
        client.client_stream(tokio_stream::iter(Vec::<EchoRequest>::new())),
    )
    .await
    .expect("client_stream")
    .into_inner();
    assert_eq!((reply.message.as_str(), reply.index), ("", 0));
}

async fn bidi_replies_to_each_request_in_order(transport: Transport) {
    let server = echo::serve(transport, echo::echo_server()).await;
    let client = client(&server).await;

    let words = ["one", "two", "three", "four"];
    let requests = tokio_stream::iter(words.map(|word| EchoRequest {
        message: word.into(),
        payload: word.repeat(3).into_bytes(),
        ..Default::default()
    }));
    let response = within("bidi", client.bidi(with_echo(requests, "bd")))
        .await
        .expect("bidi");
    assert_eq!(get(response.metadata(), ECHO_HEADER), Some("bd"));
    let mut stream = response.into_inner();
    let replies = collect(&mut stream).await;
    assert_eq!(replies.len(), words.len());
    for (i, (word, reply)) in words.iter().zip(&replies).enumerate() {
        assert_eq!(reply.message, *word);
        assert_eq!(reply.index as usize, i);
        assert_eq!(reply.payload, word.repeat(3).into_bytes());
        assert_eq!(reply.metadata_echo, "bd");
    }
    let trailers = within("trailers", stream.trailers())
        .await
        .expect("trailers")
        .expect("the stream ended with trailers");
    assert_eq!(get(&trailers, ECHO_TRAILER), Some("bd"), "{trailers:?}");
}

async fn bidi_is_interleaved(transport: Transport) {
    // Ping-pong: each reply arrives before the next request is sent, so neither side
    // buffers the whole stream.
    let server = echo::serve(transport, echo::echo_server()).await;
    let client = client(&server).await;

    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let mut stream = within("bidi", client.bidi(ReceiverStream::new(rx)))
        .await
        .expect("bidi")
        .into_inner();
    for i in 0..3u32 {
        let word = format!("ping-{i}");
        tx.send(request(&word)).await.expect("request stream open");
        let reply = within("reply", stream.message())
            .await
            .expect("reply")
            .expect("a reply before the request stream ends");
        assert_eq!((reply.message.as_str(), reply.index), (word.as_str(), i));
    }
    drop(tx);
    assert!(collect(&mut stream).await.is_empty());
}

async fn deadline_exceeded(transport: Transport) {
    let server = echo::serve(transport, echo::echo_server()).await;
    let client = client(&server).await;

    let slow = EchoRequest {
        message: "slow".into(),
        delay_ms: 2000,
        ..Default::default()
    };
    let started = Instant::now();
    let status = within(
        "unary past its deadline",
        client.unary(Request::new(slow).deadline(Duration::from_millis(200))),
    )
    .await
    .expect_err("the call outlived its deadline");
    let elapsed = started.elapsed();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(elapsed < Duration::from_millis(1900), "took {elapsed:?}");

    // A deadline that is long enough does not get in the way.
    let quick = EchoRequest {
        message: "quick".into(),
        delay_ms: 10,
        ..Default::default()
    };
    let reply = within(
        "unary within its deadline",
        client.unary(Request::new(quick).deadline(Duration::from_secs(10))),
    )
    .await
    .expect("unary")
    .into_inner();
    assert_eq!(reply.message, "quick");
}

async fn unary_status_code_message_and_details(transport: Transport) {
    let server = echo::serve(transport, echo::echo_server()).await;
    let client = client(&server).await;

    let status = within(
        "failing unary",
        client.unary(with_echo(failing("boom", Code::InvalidArgument), "e1")),
    )
    .await
    .expect_err("requested failure");
    assert_requested_failure(&status, Code::InvalidArgument, "boom");
    // Details are packed the way every gRPC implementation packs them.
    let details = status.details_any();
    assert_eq!(
        details[0].type_url, "type.googleapis.com/google.rpc.BadRequest",
        "{details:?}"
    );
    // The x-echo header rides along in the error's metadata; the trailer is for successes
    // (as with the Python peer, whose abort replaces its trailing metadata).
    assert_eq!(
        get(status.metadata(), ECHO_HEADER),
        Some("e1"),
        "{status:?}"
    );
    assert_eq!(get(status.metadata(), ECHO_TRAILER), None, "{status:?}");

    // Any code round-trips.
    for code in [
        Code::NotFound,
        Code::PermissionDenied,
        Code::Internal,
        Code::Unavailable,
    ] {
        let status = within("failing unary", client.unary(failing("x", code)))
            .await
            .expect_err("requested failure");
        assert_requested_failure(&status, code, "x");
    }
}

async fn server_stream_failure(transport: Transport) {
    let server = echo::serve(transport, echo::echo_server()).await;
    let client = client(&server).await;

    let message = EchoRequest {
        count: 3,
        ..failing("nope", Code::NotFound)
    };
    // The handler fails before answering, so the status comes as a trailers-only response
    // and the call itself fails.
    let status = within("failing server_stream", client.server_stream(message))
        .await
        .expect_err("requested failure");
    assert_requested_failure(&status, Code::NotFound, "nope");
}

async fn client_stream_fails_on_the_failing_request(transport: Transport) {
    let server = echo::serve(transport, echo::echo_server()).await;
    let client = client(&server).await;

    let requests = tokio_stream::iter(vec![
        request("fine"),
        failing("bad", Code::FailedPrecondition),
        request("never read"),
    ]);
    let status = within("failing client_stream", client.client_stream(requests))
        .await
        .expect_err("requested failure");
    assert_requested_failure(&status, Code::FailedPrecondition, "bad");
}

async fn bidi_fails_after_replying_to_earlier_requests(transport: Transport) {
    let server = echo::serve(transport, echo::echo_server()).await;
    let client = client(&server).await;

    let requests = tokio_stream::iter(vec![
        request("one"),
        request("two"),
        failing("bad", Code::Aborted),
        request("never read"),
    ]);
    let mut stream = within("bidi", client.bidi(with_echo(requests, "bf")))
        .await
        .expect("bidi")
        .into_inner();
    for (i, word) in ["one", "two"].iter().enumerate() {
        let reply = within("reply", stream.message())
            .await
            .expect("reply")
            .expect("a reply before the failure");
        assert_eq!((reply.message.as_str(), reply.index as usize), (*word, i));
    }
    let status = within("failure", stream.message())
        .await
        .expect_err("the stream ends with the requested failure");
    assert_requested_failure(&status, Code::Aborted, "bad");
    assert_eq!(get(status.metadata(), ECHO_TRAILER), None, "{status:?}");
}

/// An [`Echo`] that delegates to [`EchoService`] and records the `grpc-encoding` each
/// request arrived with, to see that per-call compression really compresses.
#[derive(Clone, Default)]
struct RecordsEncoding {
    seen: Arc<Mutex<Vec<Option<String>>>>,
}

impl RecordsEncoding {
    fn record<T>(&self, request: &Request<T>) {
        let encoding = get(request.metadata(), "grpc-encoding").map(str::to_owned);
        self.seen.lock().unwrap().push(encoding);
    }

    fn seen(&self) -> Vec<Option<String>> {
        self.seen.lock().unwrap().clone()
    }
}

#[rzero::async_trait]
impl Echo for RecordsEncoding {
    async fn unary(&self, request: Request<EchoRequest>) -> Result<Response<EchoReply>, Status> {
        self.record(&request);
        EchoService.unary(request).await
    }

    async fn server_stream(
        &self,
        request: Request<EchoRequest>,
    ) -> Result<Response<BoxStream<EchoReply>>, Status> {
        self.record(&request);
        EchoService.server_stream(request).await
    }

    async fn client_stream(
        &self,
        request: Request<Streaming<EchoRequest>>,
    ) -> Result<Response<EchoReply>, Status> {
        self.record(&request);
        EchoService.client_stream(request).await
    }

    async fn bidi(
        &self,
        request: Request<Streaming<EchoRequest>>,
    ) -> Result<Response<BoxStream<EchoReply>>, Status> {
        self.record(&request);
        EchoService.bidi(request).await
    }
}

async fn gzip_per_call_and_server_side(transport: Transport) {
    let recorder = RecordsEncoding::default();
    let server = echo::serve(
        transport,
        EchoServer::new(recorder.clone())
            .accept_compressed(CompressionEncoding::Gzip)
            .send_compressed(CompressionEncoding::Gzip),
    )
    .await;
    let client = client(&server).await;
    let payload = b"compress me ".repeat(4096);

    // Request compressed per call; the server answers gzip because the client accepts it.
    let message = EchoRequest {
        message: "gzip".into(),
        payload: payload.clone(),
        ..Default::default()
    };
    let response = within(
        "gzip unary",
        client.unary(Request::new(message).compress(CompressionEncoding::Gzip)),
    )
    .await
    .expect("gzip unary");
    assert_eq!(get(response.metadata(), "grpc-encoding"), Some("gzip"));
    let reply = response.into_inner();
    assert_eq!(reply.message, "gzip");
    assert!(reply.payload == payload, "payload differs");

    // Without `.compress`, the same client sends uncompressed.
    within("plain unary", client.unary(request("plain")))
        .await
        .expect("plain unary");

    // Streams both ways, compressed.
    let requests = tokio_stream::iter(
        (0..3)
            .map(|i| EchoRequest {
                message: format!("m{i}"),
                payload: payload.clone(),
                ..Default::default()
            })
            .collect::<Vec<_>>(),
    );
    let response = within(
        "gzip bidi",
        client.bidi(Request::new(requests).compress(CompressionEncoding::Gzip)),
    )
    .await
    .expect("gzip bidi");
    assert_eq!(get(response.metadata(), "grpc-encoding"), Some("gzip"));
    let replies = collect(&mut response.into_inner()).await;
    assert_eq!(replies.len(), 3);
    assert!(replies.iter().all(|reply| reply.payload == payload));

    assert_eq!(
        recorder.seen(),
        [Some("gzip".to_owned()), None, Some("gzip".to_owned())]
    );
}

async fn large_messages_with_raised_limits(transport: Transport) {
    let server = echo::serve(transport, echo::echo_server()).await;
    let client = client(&server).await;
    let payload = noise(LARGE);

    let message = EchoRequest {
        message: "big".into(),
        payload: payload.clone(),
        ..Default::default()
    };
    let reply = within("12 MiB unary", client.unary(message))
        .await
        .expect("12 MiB unary")
        .into_inner();
    assert_eq!(reply.message, "big");
    assert_eq!(reply.payload.len(), LARGE);
    assert!(reply.payload == payload, "payload differs");

    // And through a stream, compressed.
    let requests = tokio_stream::iter([EchoRequest {
        message: "big".into(),
        payload: payload.clone(),
        ..Default::default()
    }]);
    let mut stream = within(
        "12 MiB bidi",
        client.bidi(Request::new(requests).compress(CompressionEncoding::Gzip)),
    )
    .await
    .expect("12 MiB bidi")
    .into_inner();
    let replies = collect(&mut stream).await;
    assert_eq!(replies.len(), 1);
    assert!(replies[0].payload == payload, "payload differs");
}

async fn client_refuses_a_large_response_with_default_limits(transport: Transport) {
    // The server (64 MiB limits) takes the 12 MiB request and echoes it; the client's
    // default 4 MiB decoding limit refuses the reply.
    let server = echo::serve(transport, echo::echo_server()).await;
    let client = default_client(&server).await;

    let message = EchoRequest {
        message: "big".into(),
        payload: noise(LARGE),
        ..Default::default()
    };
    let status = within("12 MiB unary", client.unary(message))
        .await
        .expect_err("a 12 MiB reply is over the default limit");
    // tonic reports an over-limit message as OUT_OF_RANGE (the gRPC spec says
    // RESOURCE_EXHAUSTED, which tonic uses only when a *compressed* message inflates past
    // the limit; see below).
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert!(status.message().contains("too large"), "{status:?}");

    // The connection is still good.
    let reply = within("small unary", client.unary(request("small")))
        .await
        .expect("small unary after the refused one")
        .into_inner();
    assert_eq!(reply.message, "small");

    // A highly compressible 12 MiB reply is small on the wire (the server gzips it), so the
    // limit trips while inflating it, and tonic says RESOURCE_EXHAUSTED there.
    let message = EchoRequest {
        message: "big".into(),
        payload: vec![7; LARGE],
        ..Default::default()
    };
    let status = within("12 MiB compressible unary", client.unary(message))
        .await
        .expect_err("a 12 MiB reply is over the default limit, even compressed");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");

    let reply = within("small unary", client.unary(request("small")))
        .await
        .expect("small unary after the refused one")
        .into_inner();
    assert_eq!(reply.message, "small");
}

async fn server_refuses_a_large_request_with_default_limits(transport: Transport) {
    // Server with the default 4 MiB decoding limit; client with raised limits.
    let server = echo::serve(transport, EchoServer::new(EchoService)).await;
    let client = client(&server).await;

    let message = EchoRequest {
        message: "big".into(),
        payload: noise(LARGE),
        ..Default::default()
    };
    let status = within("12 MiB unary", client.unary(message))
        .await
        .expect_err("a 12 MiB request is over the server's default limit");
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert!(status.message().contains("too large"), "{status:?}");

    let reply = within("small unary", client.unary(request("small")))
        .await
        .expect("small unary after the refused one")
        .into_inner();
    assert_eq!(reply.message, "small");

    // Streaming requests: the handler's read fails, and so does the call.
    let requests = tokio_stream::iter([
        request("fine"),
        EchoRequest {
            message: "big".into(),
            payload: noise(LARGE),
            ..Default::default()
        },
    ]);
    let status = within("12 MiB client_stream", client.client_stream(requests))
        .await
        .expect_err("a 12 MiB request is over the server's default limit");
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");

    let reply = within("small unary", client.unary(request("small")))
        .await
        .expect("small unary after the refused one")
        .into_inner();
    assert_eq!(reply.message, "small");
}

async fn server_shuts_down_on_request(transport: Transport) {
    let server = echo::serve(transport, echo::echo_server()).await;
    let client = client(&server).await;
    within("unary", client.unary(request("before")))
        .await
        .expect("unary before shutdown");
    let tcp_addr = match &server {
        Served::Tcp(addr, _) => Some(*addr),
        Served::InProcess(_) => None,
    };
    within("shutdown", server.shutdown())
        .await
        .expect("server stopped cleanly");
    // The client's connection is gone and it cannot make a new one.
    let status = within("unary after shutdown", client.unary(request("after")))
        .await
        .expect_err("no server to answer");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    if let Some(addr) = tcp_addr {
        // Nothing listens any more.
        assert!(
            within("connect", tokio::net::TcpStream::connect(addr))
                .await
                .is_err()
        );
    }
}

/// Runs each named test (an `async fn(Transport)`) twice, as `NAME::tcp` over TCP and as
/// `NAME::in_process` over `rzero::testing::InProcessServer`: the in-process transport must
/// behave exactly like the real one.
macro_rules! on_both_transports {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn tcp() {
                super::$name(super::Transport::Tcp).await;
            }

            #[tokio::test]
            async fn in_process() {
                super::$name(super::Transport::InProcess).await;
            }
        }
    )*};
}

on_both_transports!(
    unary_echoes_message_payload_and_metadata,
    server_stream_sends_count_replies_with_header_and_trailer,
    client_stream_joins_messages,
    bidi_replies_to_each_request_in_order,
    bidi_is_interleaved,
    deadline_exceeded,
    unary_status_code_message_and_details,
    server_stream_failure,
    client_stream_fails_on_the_failing_request,
    bidi_fails_after_replying_to_earlier_requests,
    gzip_per_call_and_server_side,
    large_messages_with_raised_limits,
    client_refuses_a_large_response_with_default_limits,
    server_refuses_a_large_request_with_default_limits,
    server_shuts_down_on_request,
);
