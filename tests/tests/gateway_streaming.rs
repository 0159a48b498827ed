//! Client and bidi streaming through the REST/JSON gateway: request bodies of
//! newline-delimited JSON (one message per line, streamed), replies as one JSON message
//! (client streaming) or NDJSON / Server-Sent Events / a JSON array (bidi), over real
//! HTTP/1.1 and h2c connections from hyper's client, in-process on the gRPC port, on a port
//! of its own, and as a proxy through `rzero::Client`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use http_body::Frame;
use http_body_util::{BodyExt as _, StreamBody};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use prost::Message as _;
use rzero::gateway::{Gateway, GatewayBuilder, HttpRule};
use rzero::{BoxStream, Request, Response, Status, Streaming};
use rzero_tests::default::echo::v1::echo_server::{Echo, EchoServer};
use rzero_tests::default::echo::v1::{EchoReply, EchoRequest};
use rzero_tests::echo::EchoService;
use rzero_tests::gateway::{Fixture, MODES, Mode};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;

/// Every wait in these tests is bounded by this (a hang guard, never a measurement).
const PATIENCE: Duration = Duration::from_secs(10);

const RULES: &[HttpRule] = &[
    HttpRule::new("/echo.v1.Echo/ClientStream", "POST", "/v1/echo:collect").body("*"),
    HttpRule::new(
        "/echo.v1.Echo/ClientStream",
        "POST",
        "/v1/echo/text:collect",
    )
    .body("*")
    .response_body("message"),
    HttpRule::new("/echo.v1.Echo/Bidi", "POST", "/v1/echo:chat").body("*"),
];

fn descriptor_set() -> Vec<u8> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut compiler = protox::Compiler::new([root.join("../testdata")]).expect("include dirs");
    compiler
        .include_imports(true)
        .include_source_info(false)
        .open_files(["echo/v1/echo.proto"])
        .expect("echo.proto compiles");
    compiler.file_descriptor_set().encode_to_vec()
}

fn gateway() -> GatewayBuilder {
    Gateway::builder()
        .descriptor_set(descriptor_set())
        .rules(RULES.iter().copied())
}

fn echo() -> rzero::ServerBuilder {
    rzero::Server::builder().add_service(rzero_tests::echo::echo_server())
}

/// A request whose body is written line by line while its reply is read: hyper's client
/// with a channel body, over HTTP/1.1 (chunked) or h2c.
struct Duplex {
    lines: Option<mpsc::Sender<Result<Frame<Bytes>, Infallible>>>,
    response: Option<JoinHandle<http::Response<Incoming>>>,
    body: Option<Incoming>,
    received: Vec<u8>,
}

impl Duplex {
    async fn open(addr: SocketAddr, h2c: bool, path: &str, headers: &[(&str, &str)]) -> Self {
        let stream = TcpStream::connect(addr).await.expect("connects");
        let (lines, rx) = mpsc::channel(16);
        let mut request = http::Request::post(format!("http://{addr}{path}"));
        if !h2c {
            request = request.header("host", addr.to_string());
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(StreamBody::new(ReceiverStream::new(rx)))
            .unwrap();
        let response = if h2c {
            let (mut sender, conn) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                    .await
                    .expect("h2c handshake");
            tokio::spawn(conn);
            tokio::spawn(async move { sender.send_request(request).await.expect("response") })
        } else {
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .expect("handshake");
            tokio::spawn(conn);
            tokio::spawn(async move { sender.send_request(request).await.expect("response") })
        };
        Duplex {
            lines: Some(lines),
            response: Some(response),
            body: None,
            received: Vec::new(),
        }
    }

    /// Writes `text` to the request body as it is (add the `\n` yourself).
    async fn send(&self, text: &str) {
        let lines = self.lines.as_ref().expect("body still open");
        tokio::time::timeout(
            PATIENCE,
            lines.send(Ok(Frame::data(Bytes::from(text.to_owned())))),
        )
        .await
        .expect("body accepted in time")
        .expect("request still being sent");
    }

    /// Ends the request body.
    fn close(&mut self) {
        self.lines = None;
    }

    /// The response status and headers (waiting for them).
    async fn head(&mut self) -> (StatusCode, HeaderMap) {
        let response = self.response.take().expect("head read once");
        let response = tokio::time::timeout(PATIENCE, response)
            .await
            .expect("response head in time")
            .expect("client task");
        let (parts, body) = response.into_parts();
        self.body = Some(body);
        (parts.status, parts.headers)
    }

    /// The response text up to and including the next `end`, or what is left at its end
    /// (`None` when nothing is).
    async fn until(&mut self, end: &str) -> Option<String> {
        let body = self.body.as_mut().expect("head read first");
        loop {
            if let Some(at) = self
                .received
                .windows(end.len())
                .position(|w| w == end.as_bytes())
            {
                let rest = self.received.split_off(at + end.len());
                let chunk = std::mem::replace(&mut self.received, rest);
                return Some(String::from_utf8(chunk).expect("UTF-8"));
            }
            let frame = tokio::time::timeout(PATIENCE, body.frame())
                .await
                .expect("response data in time");
            match frame {
                None => {
                    let rest = std::mem::take(&mut self.received);
                    return (!rest.is_empty()).then(|| String::from_utf8(rest).expect("UTF-8"));
                }
                Some(frame) => {
                    if let Ok(data) = frame.expect("response body").into_data() {
                        self.received.extend_from_slice(&data);
                    }
                }
            }
        }
    }

    /// The next NDJSON line, parsed.
    async fn json_line(&mut self) -> Option<Value> {
        let line = self.until("\n").await?;
        Some(serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}")))
    }
}

/// One request with a whole body; the status, headers and body text.
async fn post(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (StatusCode, HeaderMap, String) {
    let mut call = Duplex::open(addr, false, path, headers).await;
    call.send(body).await;
    call.close();
    let (status, headers) = call.head().await;
    let mut text = String::new();
    while let Some(chunk) = call.until("\n").await {
        text.push_str(&chunk);
    }
    (status, headers, text)
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text:?}"))
}

#[tokio::test]
async fn client_streaming_joins_the_lines_into_one_reply() {
    for mode in MODES {
        let fixture = Fixture::start(gateway(), mode, echo).await;
        // Blank lines are skipped, `\r\n` is a line end, the last line needs no `\n`, and a
        // line is a whole message (query parameters do not apply with body `*`).
        let body = "{\"message\":\"a\"}\n\n  \r\n{\"message\":\"b\"}\r\n{\"message\":\"c\"}";
        let (status, headers, text) = post(
            fixture.http,
            "/v1/echo:collect?message=ignored",
            &[("content-type", "application/x-ndjson")],
            body,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{mode:?}: {text}");
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(
            json(&text),
            json!({"message": "a,b,c", "index": 3, "payload": "", "metadataEcho": ""}),
            "{mode:?}"
        );

        // Every JSON-ish content type, or none, is taken; `response_body` applies.
        for content_type in [
            None,
            Some("application/json"),
            Some("application/jsonl"),
            Some("application/x-ndjson; charset=utf-8"),
        ] {
            let headers: Vec<_> = content_type
                .map(|t| ("content-type", t))
                .into_iter()
                .collect();
            let (status, _, text) = post(
                fixture.http,
                "/v1/echo/text:collect",
                &headers,
                "{\"message\":\"x\"}\n{\"message\":\"y\"}\n",
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{mode:?} {content_type:?}: {text}");
            assert_eq!(json(&text), json!("x,y"), "{mode:?} {content_type:?}");
        }

        // Anything else is 415, before the call starts.
        let (status, _, text) = post(
            fixture.http,
            "/v1/echo:collect",
            &[("content-type", "text/plain")],
            "{}\n",
        )
        .await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{mode:?}");
        assert_eq!(json(&text)["code"], json!(3));
        assert!(
            json(&text)["message"]
                .as_str()
                .unwrap()
                .contains("x-ndjson")
        );

        // Metadata travels both ways, trailers as headers (the reply is buffered).
        let (status, headers, text) = post(
            fixture.http,
            "/v1/echo:collect",
            &[("grpc-metadata-x-echo", "hey")],
            "{\"message\":\"m\"}\n",
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{mode:?}: {text}");
        assert_eq!(json(&text)["metadataEcho"], json!("hey"));
        assert_eq!(headers["grpc-metadata-x-echo-header"], "hey");
        assert_eq!(headers["grpc-trailer-x-echo-trailer"], "hey");

        // A service error is the call's answer, mapped as for unary calls.
        let (status, _, text) = post(
            fixture.http,
            "/v1/echo:collect",
            &[],
            "{\"message\":\"ok\"}\n{\"message\":\"no\",\"failWithCode\":7}\n",
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{mode:?}: {text}");
        assert_eq!(json(&text)["message"], json!("requested failure: no"));
        assert_eq!(
            json(&text)["details"][0]["@type"],
            json!("type.googleapis.com/google.rpc.BadRequest")
        );
        fixture.stop().await;
    }
}

#[tokio::test]
async fn empty_bodies_are_streams_of_no_messages() {
    for mode in MODES {
        let fixture = Fixture::start(gateway(), mode, echo).await;
        for body in ["", "\n\r\n  \n"] {
            let (status, _, text) = post(fixture.http, "/v1/echo:collect", &[], body).await;
            assert_eq!(status, StatusCode::OK, "{mode:?}: {text}");
            assert_eq!(json(&text)["index"], json!(0), "{mode:?} {body:?}");
            assert_eq!(json(&text)["message"], json!(""), "{mode:?} {body:?}");

            // Bidi: no replies, a well-ended call: 200 and an empty stream.
            let (status, headers, text) = post(fixture.http, "/v1/echo:chat", &[], body).await;
            assert_eq!(status, StatusCode::OK, "{mode:?}: {text}");
            assert_eq!(headers["content-type"], "application/x-ndjson");
            assert_eq!(text, "", "{mode:?} {body:?}");
        }
        fixture.stop().await;
    }
}

/// One line out, its reply back, then the next: the replies are not held until the
/// request ends, and neither are the requests.
#[tokio::test]
async fn bidi_is_interactive_over_http1_and_h2c() {
    for mode in MODES {
        let fixture = Fixture::start(gateway(), mode, echo).await;
        for h2c in [false, true] {
            let what = format!("{mode:?} h2c={h2c}");
            let mut call = Duplex::open(
                fixture.http,
                h2c,
                "/v1/echo:chat",
                &[("grpc-metadata-x-echo", "e")],
            )
            .await;
            call.send("{\"message\":\"one\"}\n").await;
            let (status, headers) = call.head().await;
            assert_eq!(status, StatusCode::OK, "{what}");
            assert_eq!(headers["content-type"], "application/x-ndjson", "{what}");
            assert_eq!(headers["grpc-metadata-x-echo-header"], "e", "{what}");
            for (i, word) in ["one", "two", "three"].into_iter().enumerate() {
                if i > 0 {
                    // A line may also arrive in pieces.
                    let line = format!("{{\"message\":\"{word}\"}}\r\n");
                    let (start, end) = line.split_at(5);
                    call.send(start).await;
                    call.send(end).await;
                }
                assert_eq!(
                    call.json_line().await,
                    Some(json!({"result": {
                        "message": word, "index": i, "payload": "", "metadataEcho": "e"
                    }})),
                    "{what}"
                );
            }
            call.close();
            assert_eq!(call.until("\n").await, None, "{what}: the stream ends");
        }
        fixture.stop().await;
    }
}

#[tokio::test]
async fn bidi_as_server_sent_events() {
    for mode in [Mode::SamePort, Mode::Proxy] {
        let fixture = Fixture::start(gateway(), mode, echo).await;
        let mut call = Duplex::open(
            fixture.http,
            false,
            "/v1/echo:chat",
            &[("accept", "text/event-stream")],
        )
        .await;
        call.send("{\"message\":\"a\"}\n").await;
        let (status, headers) = call.head().await;
        assert_eq!(status, StatusCode::OK, "{mode:?}");
        assert_eq!(headers["content-type"], "text/event-stream");
        let event = call.until("\n\n").await.expect("an event");
        let data = event.strip_prefix("data: ").expect("a data event");
        assert_eq!(json(data)["message"], json!("a"), "{mode:?}");

        // A failure after replies: an `error` event with the Status.
        call.send("{\"message\":\"b\",\"failWithCode\":9}\n").await;
        let event = call.until("\n\n").await.expect("an error event");
        let data = event
            .strip_prefix("event: error\ndata: ")
            .unwrap_or_else(|| panic!("an error event: {event:?}"));
        assert_eq!(json(data)["code"], json!(9), "{mode:?}");
        assert_eq!(json(data)["message"], json!("requested failure: b"));
        assert_eq!(call.until("\n\n").await, None, "{mode:?}: the stream ends");
        fixture.stop().await;
    }
}

/// `Accept: application/json` makes a bidi reply one JSON array, each element written when
/// its reply comes (one per line), `[]` for none; a failure after replies aborts it.
#[tokio::test]
async fn bidi_as_a_json_array() {
    let accept = [("accept", "application/json")];
    for mode in MODES {
        let fixture = Fixture::start(gateway(), mode, echo).await;
        for h2c in [false, true] {
            let at = format!("{mode:?}, h2c {h2c}");
            let mut call = Duplex::open(fixture.http, h2c, "/v1/echo:chat", &accept).await;
            call.send("{\"message\":\"a\"}\n").await;
            let (status, headers) = call.head().await;
            assert_eq!(status, StatusCode::OK, "{at}");
            assert_eq!(headers["content-type"], "application/json", "{at}");
            let mut text = call.until("\n").await.expect("the first element");
            assert!(text.starts_with("[{"), "{at}: {text:?}");
            // Interactive still: the second reply comes before the request ends.
            call.send("{\"message\":\"b\"}\n").await;
            let second = call.until("\n").await.expect("the second element");
            assert!(second.starts_with(",{"), "{at}: {second:?}");
            text.push_str(&second);
            call.close();
            text.push_str(&call.until("\n").await.expect("the end of the array"));
            assert_eq!(call.until("\n").await, None, "{at}: the stream ends");
            let messages: Vec<Value> = json(&text)
                .as_array()
                .unwrap_or_else(|| panic!("{at}: an array: {text:?}"))
                .iter()
                .map(|reply| reply["message"].clone())
                .collect();
            assert_eq!(messages, [json!("a"), json!("b")], "{at}");

            // A failure after a reply: the body ends in an error, the array never closes.
            let mut call = Duplex::open(fixture.http, h2c, "/v1/echo:chat", &accept).await;
            call.send("{\"message\":\"a\"}\n").await;
            call.head().await;
            assert!(call.until("\n").await.is_some(), "{at}: the first element");
            call.send("{\"message\":\"b\",\"failWithCode\":9}\n").await;
            let body = call.body.as_mut().expect("head read");
            let end = loop {
                let frame = tokio::time::timeout(PATIENCE, body.frame())
                    .await
                    .expect("response data in time");
                match frame {
                    Some(Ok(frame)) => assert!(frame.is_data(), "{at}: {frame:?}"),
                    other => break other,
                }
            };
            assert!(
                matches!(end, Some(Err(_))),
                "{at}: the body must end in an error, got {end:?}"
            );
        }

        // No replies, a well-ended call: an empty array.
        let (status, headers, text) = post(fixture.http, "/v1/echo:chat", &accept, "").await;
        assert_eq!(status, StatusCode::OK, "{mode:?}: {text}");
        assert_eq!(headers["content-type"], "application/json", "{mode:?}");
        assert_eq!(text, "[]", "{mode:?}");
        fixture.stop().await;
    }
}

#[tokio::test]
async fn a_bad_line_before_any_reply_is_a_400() {
    for mode in MODES {
        let fixture = Fixture::start(gateway(), mode, echo).await;
        // Client streaming: the second line is not a message.
        let (status, headers, text) = post(
            fixture.http,
            "/v1/echo:collect",
            &[],
            "{\"message\":\"a\"}\n{\"message\": nope}\n{\"message\":\"c\"}\n",
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{mode:?}: {text}");
        assert_eq!(headers["content-type"], "application/json");
        let status_json = json(&text);
        assert_eq!(status_json["code"], json!(3), "{mode:?}");
        let message = status_json["message"].as_str().unwrap();
        assert!(message.starts_with("line 2: invalid JSON"), "{message}");

        // Bidi: a bad first line (a field of the wrong type) gets a status, not 200.
        for body in ["{\"message\": 5}\n", "[]"] {
            let (status, _, text) = post(fixture.http, "/v1/echo:chat", &[], body).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{mode:?} {body:?}: {text}");
            let message = json(&text)["message"].as_str().unwrap().to_owned();
            assert!(message.starts_with("line 1: "), "{message}");
        }

        // A service failure before the first bidi reply keeps its own status too.
        let (status, _, text) = post(
            fixture.http,
            "/v1/echo:chat",
            &[],
            "{\"message\":\"x\",\"failWithCode\":5}\n",
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{mode:?}: {text}");
        assert_eq!(json(&text)["code"], json!(5));
        fixture.stop().await;
    }
}

#[tokio::test]
async fn a_bad_line_after_replies_ends_the_stream_with_an_error_line() {
    for mode in MODES {
        let fixture = Fixture::start(gateway(), mode, echo).await;
        for h2c in [false, true] {
            let what = format!("{mode:?} h2c={h2c}");
            let mut call = Duplex::open(fixture.http, h2c, "/v1/echo:chat", &[]).await;
            call.send("\n{\"message\":\"fine\"}\n").await;
            let (status, _) = call.head().await;
            assert_eq!(status, StatusCode::OK, "{what}");
            let first = call.json_line().await.expect("a reply");
            assert_eq!(first["result"]["message"], json!("fine"), "{what}");
            call.send("{\"message\":\"fine\"} trailing\n").await;
            let error = call.json_line().await.expect("an error line");
            assert_eq!(error["error"]["code"], json!(3), "{what}: {error}");
            let message = error["error"]["message"].as_str().unwrap();
            assert!(
                message.starts_with("line 3: invalid JSON"),
                "{what}: {message}"
            );
            assert_eq!(
                call.until("\n").await,
                None,
                "{what}: nothing after the error"
            );
        }
        fixture.stop().await;
    }
}

/// Thousands of short lines sent at once reach the service whole in every mode. Through
/// the proxy they once closed the upstream's connection: a DATA frame a line tripped h2's
/// guard against floods of small frames (the gateway's 503 "gRPC service unreachable").
#[tokio::test]
async fn thousands_of_short_lines_sent_at_once_all_arrive() {
    let body = "{\"message\":\"x\"}\n".repeat(20_000);
    for mode in MODES {
        let fixture = Fixture::start(gateway(), mode, echo).await;
        let (status, _, text) = post(fixture.http, "/v1/echo:collect", &[], &body).await;
        assert_eq!(status, StatusCode::OK, "{mode:?}: {text}");
        assert_eq!(json(&text)["index"], json!(20_000), "{mode:?}");
        fixture.stop().await;
    }
}

#[tokio::test]
async fn lines_are_limited_one_by_one_not_the_body() {
    for mode in MODES {
        let fixture = Fixture::start(gateway().max_body_size(64), mode, echo).await;
        // 200 lines of ~20 bytes: far more than 64 bytes in all, each line well within.
        let body: String = (0..200)
            .map(|i| format!("{{\"message\":\"{i}\"}}\n"))
            .collect();
        let (status, _, text) = post(fixture.http, "/v1/echo:collect", &[], &body).await;
        assert_eq!(status, StatusCode::OK, "{mode:?}: {text}");
        assert_eq!(json(&text)["index"], json!(200), "{mode:?}");

        // A line over the limit: 413 before any reply, whether or not it ever ends.
        let long = format!("{{\"message\":\"{}\"}}", "x".repeat(100));
        for body in [format!("{{}}\n{long}\n"), format!("{{}}\n{long}")] {
            let (status, _, text) = post(fixture.http, "/v1/echo:collect", &[], &body).await;
            assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{mode:?}: {text}");
            assert_eq!(json(&text)["code"], json!(8));
            let message = json(&text)["message"].as_str().unwrap().to_owned();
            assert!(
                message.starts_with("line 2: ") && message.contains("limit of 64 bytes"),
                "{message}"
            );
        }
        // A line of exactly the limit (with `\r\n`) is fine.
        let exact = format!("{{\"message\":\"{}\"}}\r\n", "y".repeat(64 - 14));
        assert_eq!(exact.len(), 66);
        let (status, _, text) = post(fixture.http, "/v1/echo:collect", &[], &exact).await;
        assert_eq!(status, StatusCode::OK, "{mode:?}: {text}");

        // After replies: an error line with RESOURCE_EXHAUSTED.
        let mut call = Duplex::open(fixture.http, false, "/v1/echo:chat", &[]).await;
        call.send("{\"message\":\"ok\"}\n").await;
        assert_eq!(call.head().await.0, StatusCode::OK);
        assert_eq!(call.json_line().await.unwrap()["result"]["message"], "ok");
        // Sent without a line end: the limit applies before the line is complete.
        call.send(&long).await;
        let error = call.json_line().await.expect("an error line");
        assert_eq!(error["error"]["code"], json!(8), "{mode:?}: {error}");
        assert_eq!(call.until("\n").await, None);
        fixture.stop().await;
    }
}

/// What the [`Watched`] service saw of a request stream.
#[derive(Debug, PartialEq)]
enum Seen {
    Message(String),
    End,
    Failed,
}

/// The echo service, except that its streaming-request methods report every request
/// message they get and how the request stream ended.
#[derive(Clone)]
struct Watched(mpsc::UnboundedSender<Seen>);

impl Watched {
    /// The next message of a request stream, reported.
    async fn next(&self, requests: &mut Streaming<EchoRequest>) -> Result<Option<String>, Status> {
        let next = requests.message().await;
        let seen = match &next {
            Ok(Some(request)) => Seen::Message(request.message.clone()),
            Ok(None) => Seen::End,
            Err(_) => Seen::Failed,
        };
        let _ = self.0.send(seen);
        next.map(|request| request.map(|r| r.message))
    }
}

#[rzero::async_trait]
impl Echo for Watched {
    async fn unary(&self, request: Request<EchoRequest>) -> Result<Response<EchoReply>, Status> {
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
        let mut requests = request.into_inner();
        let mut messages = Vec::new();
        while let Some(message) = self.next(&mut requests).await? {
            messages.push(message);
        }
        Ok(Response::new(EchoReply {
            message: messages.join(","),
            ..EchoReply::default()
        }))
    }

    async fn bidi(
        &self,
        request: Request<Streaming<EchoRequest>>,
    ) -> Result<Response<BoxStream<EchoReply>>, Status> {
        let mut requests = request.into_inner();
        let (tx, rx) = mpsc::channel(4);
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                let reply = match this.next(&mut requests).await {
                    Ok(Some(message)) => Ok(EchoReply {
                        message,
                        ..EchoReply::default()
                    }),
                    Ok(None) => break,
                    Err(status) => Err(status),
                };
                let failed = reply.is_err();
                if tx.send(reply).await.is_err() || failed {
                    break;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

async fn seen(watch: &mut mpsc::UnboundedReceiver<Seen>) -> Seen {
    tokio::time::timeout(PATIENCE, watch.recv())
        .await
        .expect("the service reports in time")
        .expect("the service is running")
}

/// Each line reaches the service when it arrives, before the body ends: the test waits for
/// the service to see a message before sending the next line.
#[tokio::test]
async fn each_line_reaches_the_service_as_it_arrives() {
    for mode in MODES {
        let (report, mut watch) = mpsc::unbounded_channel();
        let services = || rzero::Server::builder().add_service(EchoServer::new(Watched(report)));
        let fixture = Fixture::start(gateway(), mode, services).await;
        for h2c in [false, true] {
            let mut call = Duplex::open(fixture.http, h2c, "/v1/echo:collect", &[]).await;
            for word in ["a", "b", "c"] {
                call.send(&format!("{{\"message\":\"{word}\"}}\n")).await;
                assert_eq!(
                    seen(&mut watch).await,
                    Seen::Message(word.into()),
                    "{mode:?}"
                );
            }
            call.close();
            assert_eq!(seen(&mut watch).await, Seen::End, "{mode:?}");
            let (status, _) = call.head().await;
            assert_eq!(status, StatusCode::OK, "{mode:?}");
            let reply = call.until("\n").await.expect("a reply");
            assert_eq!(json(&reply)["message"], json!("a,b,c"), "{mode:?}");
        }
        fixture.stop().await;
    }
}

/// A bad line cancels the call: the service's request stream fails (it does not see a
/// clean end), in both directions of the exchange.
#[tokio::test]
async fn a_bad_line_cancels_the_call() {
    for mode in MODES {
        let (report, mut watch) = mpsc::unbounded_channel();
        let services = || rzero::Server::builder().add_service(EchoServer::new(Watched(report)));
        let fixture = Fixture::start(gateway(), mode, services).await;

        let mut call = Duplex::open(fixture.http, false, "/v1/echo:collect", &[]).await;
        call.send("{\"message\":\"a\"}\n").await;
        assert_eq!(seen(&mut watch).await, Seen::Message("a".into()));
        call.send("{oops\n").await;
        let (status, _) = call.head().await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{mode:?}");
        assert_eq!(seen(&mut watch).await, Seen::Failed, "{mode:?}");

        let mut call = Duplex::open(fixture.http, true, "/v1/echo:chat", &[]).await;
        call.send("{\"message\":\"a\"}\n").await;
        assert_eq!(call.head().await.0, StatusCode::OK);
        assert_eq!(seen(&mut watch).await, Seen::Message("a".into()));
        assert_eq!(call.json_line().await.unwrap()["result"]["message"], "a");
        call.send("{oops\n").await;
        let error = call.json_line().await.expect("an error line");
        assert!(
            error["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("line 2: "),
            "{error}"
        );
        assert_eq!(seen(&mut watch).await, Seen::Failed, "{mode:?}");
        fixture.stop().await;
    }
}

/// Streaming-request rules take body `*` and no path variables; the rest is refused at
/// build time, every problem at once.
#[test]
fn streaming_request_rules_are_checked_at_startup() {
    let good = [
        HttpRule::new("/echo.v1.Echo/ClientStream", "POST", "/v1/a").body("*"),
        HttpRule::new("/echo.v1.Echo/Bidi", "PUT", "/v1/b").body("*"),
        HttpRule::new("/echo.v1.Echo/Bidi", "*", "/v1/c:chat")
            .body("*")
            .response_body("message"),
    ];
    Gateway::new(descriptor_set(), &good).expect("good rules build");

    let bad = [
        HttpRule::new("/echo.v1.Echo/ClientStream", "POST", "/v1/d"),
        HttpRule::new("/echo.v1.Echo/Bidi", "POST", "/v1/e").body("payload"),
        HttpRule::new("/echo.v1.Echo/Bidi", "POST", "/v1/f/{message}").body("*"),
        HttpRule::new("/echo.v1.Echo/ClientStream", "GET", "/v1/g"),
    ];
    let error = Gateway::new(descriptor_set(), &bad).unwrap_err();
    let errors = error.errors();
    let expected = [
        ("/v1/d", "its body must be \"*\", not \"\""),
        ("/v1/e", "its body must be \"*\", not \"payload\""),
        ("/v1/f/{message}", "the path cannot bind variables"),
        ("/v1/g", "its body must be \"*\""),
    ];
    for (template, needle) in expected {
        assert!(
            errors
                .iter()
                .any(|e| e.contains(template) && e.contains(needle)),
            "{template}: {needle:?} missing from:\n{error}"
        );
    }
    assert_eq!(errors.len(), expected.len(), "{error}");
}
