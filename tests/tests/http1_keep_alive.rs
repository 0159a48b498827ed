//! An answer that comes before the end of an HTTP/1.1 request body keeps the connection:
//! the gateway and gRPC-Web read the rest of the body and throw it away, so the next
//! request on the connection is answered (`rzero`'s `drain` module).
//!
//! Each test writes two requests on one connection before reading anything, as a client
//! that pipelines or reuses its connection does: a request answered early (a bad NDJSON
//! line, a body over the limit, a client-streaming call the service fails on its first
//! message) with ~200 KiB of body after the point of the answer, then a request with
//! `Connection: close`. Both must be answered; without the drain the server closed the
//! connection after the first answer and the second request was lost.

use std::net::SocketAddr;
use std::time::Duration;

use prost::Message as _;
use rzero::gateway::{Gateway, GatewayBuilder, HttpRule};
use rzero::server::GrpcWeb;
use rzero_tests::default::echo::v1::{EchoRequest, FILE_DESCRIPTOR_SET};
use rzero_tests::echo;
use rzero_tests::gateway::{Fixture, MODES};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Every wait is bounded by this (a hang guard, never a measurement).
const PATIENCE: Duration = Duration::from_secs(10);
/// How much body follows the point where the server answers.
const REST: usize = 200 * 1024;

/// Writes `first` (a head, then `body`) and `second` on one connection, then reads until the
/// server closes it; the answers' status lines, and everything read.
async fn two_requests(
    addr: SocketAddr,
    first: &str,
    body: &[u8],
    second: &[u8],
) -> (Vec<String>, String) {
    let mut stream = TcpStream::connect(addr).await.expect("connects");
    let head = format!("{first}content-length: {}\r\n\r\n", body.len());
    let written = tokio::time::timeout(PATIENCE, async {
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body).await?;
        stream.write_all(second).await
    })
    .await
    .expect("written in time");
    let mut read = Vec::new();
    let ended = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut read)).await;
    assert!(ended.is_ok(), "the server closes after the second answer");
    let text = String::from_utf8_lossy(&read).into_owned();
    // Status lines start answers; the one after a body follows it on the same line.
    let statuses = text
        .match_indices("HTTP/1.1 ")
        .filter_map(|(at, _)| Some(text[at..].split_once("\r\n")?.0.to_owned()))
        .collect();
    // Writing may only fail once the server has given up on the connection, which is
    // what the statuses then show.
    if let Err(error) = written {
        eprintln!("writing failed: {error}");
    }
    (statuses, text)
}

/// A gRPC message frame of `message`.
fn frame(message: &EchoRequest) -> Vec<u8> {
    let encoded = message.encode_to_vec();
    let mut framed = vec![0u8];
    framed.extend_from_slice(&u32::try_from(encoded.len()).unwrap().to_be_bytes());
    framed.extend_from_slice(&encoded);
    framed
}

fn gateway() -> GatewayBuilder {
    Gateway::builder()
        .descriptor_set(FILE_DESCRIPTOR_SET)
        .rules([
            HttpRule::new("/echo.v1.Echo/ClientStream", "POST", "/v1/echo:collect").body("*"),
            HttpRule::new("/echo.v1.Echo/Unary", "POST", "/v1/echo").body("*"),
            HttpRule::new("/echo.v1.Echo/Unary", "GET", "/v1/echo/{message}"),
        ])
}

const GET_CLOSE: &[u8] = b"GET /v1/echo/next HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n";

fn services() -> rzero::ServerBuilder {
    rzero::Server::builder().add_service(echo::echo_server())
}

#[tokio::test]
async fn a_bad_ndjson_line_answered_at_once_keeps_the_connection() {
    let mut body = String::from("{\"message\":\"a\"}\n{oops\n");
    while body.len() < REST {
        body.push_str("{\"message\":\"never read by the service\"}\n");
    }
    for mode in MODES {
        let fixture = Fixture::start(gateway(), mode, services).await;
        let (statuses, text) = two_requests(
            fixture.http,
            "POST /v1/echo:collect HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n",
            body.as_bytes(),
            GET_CLOSE,
        )
        .await;
        assert_eq!(
            statuses,
            ["HTTP/1.1 400 Bad Request", "HTTP/1.1 200 OK"],
            "{mode:?}: {text}"
        );
        assert!(text.contains("line 2: invalid JSON"), "{mode:?}: {text}");
        assert!(text.contains("\"message\":\"next\""), "{mode:?}: {text}");
        fixture.stop().await;
    }
}

#[tokio::test]
async fn a_body_over_the_limit_refused_unread_keeps_the_connection() {
    let body = format!("{{\"message\":\"{}\"}}", "x".repeat(REST));
    for mode in MODES {
        let fixture = Fixture::start(gateway().max_body_size(1024), mode, services).await;
        let (statuses, text) = two_requests(
            fixture.http,
            "POST /v1/echo HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n",
            body.as_bytes(),
            GET_CLOSE,
        )
        .await;
        assert_eq!(
            statuses,
            ["HTTP/1.1 413 Payload Too Large", "HTTP/1.1 200 OK"],
            "{mode:?}: {text}"
        );
        fixture.stop().await;
    }
}

/// A client-streaming gRPC-Web call the service fails on its first message, then a unary
/// call, on one HTTP/1.1 connection to `addr`.
async fn grpc_web_early_failure_then_a_call(what: &str, addr: SocketAddr) {
    let mut body = frame(&EchoRequest {
        message: "first".into(),
        fail_with_code: 3,
        ..EchoRequest::default()
    });
    while body.len() < REST {
        body.extend(frame(&EchoRequest {
            message: "never read by the service".into(),
            payload: vec![7; 4096],
            ..EchoRequest::default()
        }));
    }
    let unary = frame(&EchoRequest {
        message: "next".into(),
        ..EchoRequest::default()
    });
    let mut second = format!(
        "POST /echo.v1.Echo/Unary HTTP/1.1\r\nhost: x\r\ncontent-type: application/grpc-web+proto\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n",
        unary.len()
    )
    .into_bytes();
    second.extend(unary);
    let (statuses, text) = two_requests(
        addr,
        "POST /echo.v1.Echo/ClientStream HTTP/1.1\r\nhost: x\r\n\
         content-type: application/grpc-web+proto\r\n",
        &body,
        &second,
    )
    .await;
    assert_eq!(
        statuses,
        ["HTTP/1.1 200 OK", "HTTP/1.1 200 OK"],
        "{what}: {text}"
    );
    // The first call's status (headers of a trailers-only answer, or its trailer frame)
    // and the second's reply and status.
    let text = text.to_ascii_lowercase();
    let (first, second) = text.split_at(text.rfind("http/1.1 200 ok").unwrap());
    assert!(
        first.contains("grpc-status: 3") || first.contains("grpc-status:3"),
        "{what}: {first}"
    );
    assert!(second.contains("next"), "{what}: {second}");
    assert!(second.contains("grpc-status:0"), "{what}: {second}");
}

#[tokio::test]
async fn a_grpc_web_call_failed_early_keeps_the_connection() {
    let (addr, handle) = echo::spawn_builder(services().grpc_web(GrpcWeb::new())).await;
    grpc_web_early_failure_then_a_call("gRPC-Web on the server's port", addr).await;

    let upstream = rzero::Client::connect(&format!("http://{addr}"))
        .await
        .expect("a client");
    let service = gateway()
        .build()
        .expect("gateway builds")
        .proxy(&upstream)
        .grpc_web(GrpcWeb::new())
        .expect("gRPC-Web on the proxy");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let proxy = listener.local_addr().expect("bound");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(rzero::gateway::serve(listener, service, async {
        let _ = stopped.await;
    }));
    grpc_web_early_failure_then_a_call("gRPC-Web through the gateway proxy", proxy).await;
    let _ = stop.send(());
    tokio::time::timeout(PATIENCE, task)
        .await
        .expect("proxy stops")
        .expect("proxy task")
        .expect("proxy ran");
    tokio::time::timeout(PATIENCE, handle.shutdown())
        .await
        .expect("server stops")
        .expect("server ran");
}
