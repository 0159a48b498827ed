//! Interoperability with an independent gRPC implementation: the Python grpcio peer in
//! `tests/python/echo_peer.py`, which speaks the same echo contract as `tests/src/echo.rs`.
//!
//! - Generated Rust client → Python server (`echo_peer.py serve`).
//! - Python client (`echo_peer.py call HOST:PORT`) → generated Rust server.
//!
//! These tests need Python 3 with grpcio; they fail (they do not skip) when it is missing:
//! `pip install -r tests/python/requirements.txt`.

use std::future::Future;
use std::process::Stdio;
use std::time::{Duration, Instant};

use rzero::status::StatusExt;
use rzero::{CallExt, Code, CompressionEncoding, Request, Response, Status, Streaming};
use rzero_tests::default::echo::v1::echo_client::EchoClient;
use rzero_tests::default::echo::v1::{EchoReply, EchoRequest};
use rzero_tests::echo::{self, ECHO_HEADER, ECHO_KEY, ECHO_TRAILER};
use rzero_tests::python::{KillOnDrop, PythonServer, drain, peer_script, python, require_grpcio};
use tokio::process::Command;

/// Bound for one call or step (Python is slower to start than to answer).
const LIMIT: Duration = Duration::from_secs(30);
/// Bound for the whole Python-client scenario.
const SCENARIO: Duration = Duration::from_secs(180);

const LARGE: usize = 12 * 1024 * 1024;

async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: not done within {LIMIT:?}"))
}

/// A client of `peer` with 64 MiB limits, like the peer's.
async fn client(peer: &PythonServer) -> EchoClient {
    let inner = within("connect", rzero::Client::connect(&peer.target()))
        .await
        .expect("connect to the Python peer")
        .max_decoding_message_size(echo::MAX_MESSAGE_SIZE)
        .max_encoding_message_size(echo::MAX_MESSAGE_SIZE);
    EchoClient::new(inner)
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

async fn collect(what: &str, stream: &mut Streaming<EchoReply>) -> Vec<EchoReply> {
    let mut replies = Vec::new();
    while let Some(reply) = within(what, stream.message())
        .await
        .unwrap_or_else(|status| panic!("{what}: stream failed: {status:?}"))
    {
        replies.push(reply);
    }
    replies
}

/// The status of a streaming-response call that should fail: either at once (trailers-only)
/// or as its stream's first item, depending on the server.
async fn stream_failure(
    what: &str,
    call: impl Future<Output = Result<Response<Streaming<EchoReply>>, Status>>,
) -> Status {
    match within(what, call).await {
        Err(status) => status,
        Ok(response) => {
            let mut stream = response.into_inner();
            match within(what, stream.message()).await {
                Err(status) => status,
                Ok(reply) => panic!("{what}: expected a failure, got {reply:?}"),
            }
        }
    }
}

fn assert_requested_failure(what: &str, status: &Status, code: Code, message: &str) {
    assert_eq!(status.code(), code, "{what}: {status:?}");
    assert_eq!(
        status.message(),
        format!("requested failure: {message}"),
        "{what}"
    );
    let bad_request = status
        .detail::<rzero::google::rpc::BadRequest>()
        .unwrap_or_else(|| panic!("{what}: no BadRequest detail in {status:?}"));
    assert_eq!(
        bad_request.field_violations.len(),
        1,
        "{what}: {bad_request:?}"
    );
    assert_eq!(bad_request.field_violations[0].field, "message", "{what}");
    assert_eq!(
        bad_request.field_violations[0].description, "requested failure",
        "{what}"
    );
}

fn payload_of(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| u8::try_from(i % 251).expect("< 251"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_client_calls_python_server() {
    let peer = PythonServer::start(&[]).await;
    let client = client(&peer).await;

    // Unary, with the x-echo header and trailer.
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
    assert_eq!(
        (
            reply.message.as_str(),
            reply.index,
            reply.payload.as_slice()
        ),
        ("hello", 0, [0, 1, 2].as_slice())
    );
    assert_eq!(reply.metadata_echo, "ping-42");
    assert_eq!(get(&metadata, ECHO_HEADER), Some("ping-42"), "{metadata:?}");
    assert_eq!(
        get(&metadata, ECHO_TRAILER),
        Some("ping-42"),
        "{metadata:?}"
    );

    // Server streaming, header and trailer.
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
    let replies = collect("server_stream", &mut stream).await;
    assert_eq!(replies.len(), 5);
    for (i, reply) in replies.iter().enumerate() {
        assert_eq!((reply.message.as_str(), reply.index as usize), ("tick", i));
        assert_eq!(reply.metadata_echo, "ss");
    }
    let trailers = within("server_stream trailers", stream.trailers())
        .await
        .expect("trailers")
        .expect("the stream ended with trailers");
    assert_eq!(get(&trailers, ECHO_TRAILER), Some("ss"), "{trailers:?}");

    // Client streaming.
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
    assert_eq!((reply.message.as_str(), reply.index), ("a,b,c", 3));
    assert_eq!(reply.metadata_echo, "cs");

    // Bidi, interleaved: each reply arrives before the next request goes out.
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let response = within(
        "bidi",
        client.bidi(with_echo(
            tokio_stream::wrappers::ReceiverStream::new(rx),
            "bd",
        )),
    )
    .await
    .expect("bidi");
    let mut stream = response.into_inner();
    for (i, word) in ["one", "two", "three", "four"].iter().enumerate() {
        let message = EchoRequest {
            message: (*word).into(),
            payload: word.repeat(3).into_bytes(),
            ..Default::default()
        };
        tx.send(message).await.expect("request stream open");
        let reply = within("bidi reply", stream.message())
            .await
            .expect("bidi reply")
            .expect("a reply before the request stream ends");
        assert_eq!((reply.message.as_str(), reply.index as usize), (*word, i));
        assert_eq!(reply.payload, word.repeat(3).into_bytes());
        assert_eq!(reply.metadata_echo, "bd");
    }
    drop(tx);
    assert!(collect("bidi end", &mut stream).await.is_empty());
    let trailers = within("bidi trailers", stream.trailers())
        .await
        .expect("trailers")
        .expect("the stream ended with trailers");
    assert_eq!(get(&trailers, ECHO_TRAILER), Some("bd"), "{trailers:?}");

    // Status code, message and details, for every RPC kind.
    let status = within(
        "failing unary",
        client.unary(with_echo(failing("boom", Code::InvalidArgument), "e1")),
    )
    .await
    .expect_err("failing unary");
    assert_requested_failure("unary", &status, Code::InvalidArgument, "boom");
    assert_eq!(
        get(status.metadata(), ECHO_HEADER),
        Some("e1"),
        "{status:?}"
    );

    let status = stream_failure(
        "failing server_stream",
        client.server_stream(failing("nope", Code::NotFound)),
    )
    .await;
    assert_requested_failure("server_stream", &status, Code::NotFound, "nope");

    let requests = tokio_stream::iter(vec![
        request("fine"),
        failing("bad", Code::FailedPrecondition),
    ]);
    let status = within("failing client_stream", client.client_stream(requests))
        .await
        .expect_err("failing client_stream");
    assert_requested_failure("client_stream", &status, Code::FailedPrecondition, "bad");

    let requests = tokio_stream::iter(vec![request("one"), failing("bad", Code::Aborted)]);
    let mut stream = within("failing bidi", client.bidi(requests))
        .await
        .expect("bidi")
        .into_inner();
    let reply = within("bidi reply", stream.message())
        .await
        .expect("reply before the failure")
        .expect("a reply before the failure");
    assert_eq!(reply.message, "one");
    let status = within("bidi failure", stream.message())
        .await
        .expect_err("the stream ends with the requested failure");
    assert_requested_failure("bidi", &status, Code::Aborted, "bad");

    // Deadline.
    let slow = EchoRequest {
        delay_ms: 2000,
        ..request("slow")
    };
    let started = Instant::now();
    let status = within(
        "unary past its deadline",
        client.unary(Request::new(slow).deadline(Duration::from_millis(200))),
    )
    .await
    .expect_err("the call outlived its deadline");
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(
        started.elapsed() < Duration::from_millis(1900),
        "took {:?}",
        started.elapsed()
    );

    // gzip: the request compressed per call, the response compressed on request
    // (`x-echo-compress`, since grpcio cannot negotiate it per call).
    let payload = b"compress me ".repeat(4096);
    let message = EchoRequest {
        payload: payload.clone(),
        ..request("gzip")
    };
    let mut call = Request::new(message).compress(CompressionEncoding::Gzip);
    call.metadata_mut()
        .insert("x-echo-compress", "gzip".parse().expect("ascii"));
    let response = within("gzip unary", client.unary(call))
        .await
        .expect("gzip unary");
    assert_eq!(get(response.metadata(), "grpc-encoding"), Some("gzip"));
    let reply = response.into_inner();
    assert_eq!(reply.message, "gzip");
    assert!(reply.payload == payload, "gzip payload differs");

    // 12 MiB each way with raised limits.
    let payload = payload_of(LARGE);
    let message = EchoRequest {
        payload: payload.clone(),
        ..request("big")
    };
    let reply = within("12 MiB unary", client.unary(message))
        .await
        .expect("12 MiB unary")
        .into_inner();
    assert_eq!(reply.message, "big");
    assert!(reply.payload == payload, "12 MiB payload differs");

    // With rzero's default 4 MiB limit, the 12 MiB reply is refused, and the client
    // still works afterwards.
    let default_client = within("connect", EchoClient::connect(&peer.target()))
        .await
        .expect("connect to the Python peer");
    let message = EchoRequest {
        payload,
        ..request("big")
    };
    let status = within("12 MiB unary, default limit", default_client.unary(message))
        .await
        .expect_err("a 12 MiB reply is over the default limit");
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    let reply = within("small unary", default_client.unary(request("small")))
        .await
        .expect("small unary after the refused one")
        .into_inner();
    assert_eq!(reply.message, "small");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_client_reads_gzip_responses_from_python_server() {
    // `serve --gzip`: grpcio compresses every response.
    let peer = PythonServer::start(&["--gzip"]).await;
    let client = client(&peer).await;

    let response = within("unary", client.unary(request("zipped")))
        .await
        .expect("unary");
    assert_eq!(get(response.metadata(), "grpc-encoding"), Some("gzip"));
    assert_eq!(response.into_inner().message, "zipped");

    let message = EchoRequest {
        count: 3,
        ..request("tick")
    };
    let response = within("server_stream", client.server_stream(message))
        .await
        .expect("server_stream");
    assert_eq!(get(response.metadata(), "grpc-encoding"), Some("gzip"));
    let replies = collect("server_stream", &mut response.into_inner()).await;
    assert_eq!(replies.len(), 3);

    let payload = payload_of(LARGE);
    let message = EchoRequest {
        payload: payload.clone(),
        ..request("big")
    };
    let reply = within("12 MiB gzip unary", client.unary(message))
        .await
        .expect("12 MiB gzip unary")
        .into_inner();
    assert!(reply.payload == payload, "12 MiB payload differs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_client_calls_rust_server() {
    require_grpcio();
    let (addr, _server) = echo::spawn_server().await;

    let mut child = KillOnDrop(
        Command::new(python())
            .arg(peer_script())
            .arg("call")
            .arg(addr.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", peer_script().display())),
    );
    let stdout = drain(child.0.stdout.take());
    let stderr = drain(child.0.stderr.take());
    let status = tokio::time::timeout(SCENARIO, child.0.wait()).await;
    drop(child);
    let stdout = within("python stdout", stdout).await.unwrap_or_default();
    let stderr = within("python stderr", stderr).await.unwrap_or_default();
    let report = format!("stdout:\n{stdout}\nstderr:\n{stderr}");
    let status = match status {
        Ok(Ok(status)) => status,
        Ok(Err(e)) => panic!("waiting for the Python client failed: {e}\n{report}"),
        Err(_) => panic!("the Python client did not finish within {SCENARIO:?}\n{report}"),
    };
    println!("{report}");
    assert!(
        status.success(),
        "the Python client failed ({status})\n{report}"
    );
    assert!(!stdout.contains("FAIL"), "{report}");
    assert!(
        stdout
            .lines()
            .filter(|line| line.starts_with("ok "))
            .count()
            >= 9,
        "{report}"
    );
}
