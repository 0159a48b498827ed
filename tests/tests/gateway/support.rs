//! Shared by the gateway test files (`gateway.rs`, `gateway_cors.rs`): the test protos and
//! rules, the services behind the gateway, servers started in the three modes, and a small
//! hyper client. Each test file uses a different part of it.
#![allow(dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use prost::Message as _;
use rzero::gateway::{Gateway, GatewayBuilder, HttpRule};
use rzero::{BoxStream, Request, Response, Status};
use rzero_tests::default::greeter::v1::greeter_server::{Greeter, GreeterServer};
use rzero_tests::default::greeter::v1::{GREETER_HTTP_RULES, HelloReply, HelloRequest};
use serde_json::Value;
use tokio::net::TcpStream;

/// Hand-written rules, next to the generated ones of `greeter.v1.Greeter`
/// (`GREETER_HTTP_RULES`: `GET /v1/greeter/{name}` and `POST /v1/greeter`).
pub(crate) const RULES: &[HttpRule] = &[
    HttpRule::new(
        "/greeter.v1.Greeter/SayHelloStream",
        "GET",
        "/v1/greeter/{name}:stream",
    ),
    HttpRule::new("/echo.v1.Echo/Unary", "POST", "/v1/echo").body("*"),
    HttpRule::new("/echo.v1.Echo/Unary", "GET", "/v1/echo/{message}"),
    HttpRule::new("/echo.v1.Echo/Unary", "GET", "/v1/echo/{message}/text").response_body("message"),
    HttpRule::new("/echo.v1.Echo/Unary", "PUT", "/v1/echo/{message}").body("payload"),
    HttpRule::new(
        "/echo.v1.Echo/ServerStream",
        "GET",
        "/v1/echo/{message}:stream",
    ),
    HttpRule::new(
        "/echo.v1.Echo/ServerStream",
        "GET",
        "/v1/echo/{message}:texts",
    )
    .response_body("message"),
    HttpRule::new("/gw.kitchen.Mirror/Mirror", "POST", "/v1/mirror").body("*"),
    HttpRule::new("/gw.kitchen.Mirror/Mirror", "PATCH", "/v1/mirror/{id}").body("inner"),
    HttpRule::new("/gw.kitchen.Mirror/Mirror", "GET", "/v1/mirror/{id}"),
];

/// The descriptor set of the test protos, built the way generated code will embed it.
pub(crate) fn descriptor_set() -> Vec<u8> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut compiler = protox::Compiler::new([
        root.join("../testdata"),
        root.join("../protoc-gen-rzero/proto"),
        root.join("tests/gateway"),
    ])
    .expect("include dirs");
    compiler
        .include_imports(true)
        .include_source_info(false)
        .open_files([
            "greeter/v1/greeter.proto",
            "echo/v1/echo.proto",
            "kitchen.proto",
        ])
        .expect("test protos compile");
    compiler.file_descriptor_set().encode_to_vec()
}

pub(crate) fn gateway() -> GatewayBuilder {
    Gateway::builder()
        .service(&GREETER_HTTP_RULES)
        .descriptor_set(descriptor_set())
        .rules(RULES.iter().copied())
}

pub(crate) struct Greet;

#[rzero::async_trait]
impl Greeter for Greet {
    async fn say_hello(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<HelloReply>, Status> {
        let name = request.into_inner().name;
        Ok(Response::new(HelloReply {
            message: format!("Hello {name}!"),
        }))
    }

    async fn say_hello_stream(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<BoxStream<HelloReply>>, Status> {
        let HelloRequest { name, repeat } = request.into_inner();
        let fail = name == "fail";
        let mut replies: Vec<Result<HelloReply, Status>> = (0..repeat)
            .map(|i| {
                Ok(HelloReply {
                    message: format!("Hello {name} #{i}"),
                })
            })
            .collect();
        if fail {
            replies.push(Err(Status::aborted("stopped on purpose")));
        }
        Ok(Response::new(Box::pin(tokio_stream::iter(replies))))
    }
}

/// A gRPC service for `gw.kitchen.Mirror`: answers every call with the request's bytes, and
/// reports the request's metadata as `seen-<name>` response headers.
#[derive(Clone)]
pub(crate) struct Mirror;

impl rzero::codegen::NamedService for Mirror {
    const NAME: &'static str = "gw.kitchen.Mirror";
}

impl tower_service::Service<http::Request<tonic::body::Body>> for Mirror {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = rzero::codegen::BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let framed = body
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let mut trailers = HeaderMap::new();
            trailers.insert("grpc-status", "0".parse().unwrap());
            trailers.insert("mirror-trailer", "t".parse().unwrap());
            let frames: Vec<Result<http_body::Frame<Bytes>, Infallible>> = vec![
                Ok(http_body::Frame::data(framed)),
                Ok(http_body::Frame::trailers(trailers)),
            ];
            let body = http_body_util::StreamBody::new(tokio_stream::iter(frames));
            let mut response = http::Response::new(tonic::body::Body::new(body));
            response
                .headers_mut()
                .insert("content-type", "application/grpc".parse().unwrap());
            for (name, value) in &parts.headers {
                if let Ok(name) = http::HeaderName::from_bytes(format!("seen-{name}").as_bytes()) {
                    response.headers_mut().append(name, value.clone());
                }
            }
            Ok(response)
        })
    }
}

pub(crate) fn services() -> rzero::ServerBuilder {
    services_on(rzero::Server::builder())
}

/// [`services`] added to `builder` (e.g. one a YAML config made).
pub(crate) fn services_on(builder: rzero::ServerBuilder) -> rzero::ServerBuilder {
    builder
        .add_service(GreeterServer::new(Greet))
        .add_service(rzero_tests::echo::echo_server())
        .add_service(Mirror)
}

#[allow(unused_imports)] // not every file runs every mode
pub(crate) use rzero_tests::gateway::{Fixture, MODES, Mode};

/// Serves `gateway` in `mode` in front of [`services`].
pub(crate) async fn start(gateway: GatewayBuilder, mode: Mode) -> Fixture {
    Fixture::start(gateway, mode, services).await
}

/// One HTTP response, the body parsed as JSON when it is JSON.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) text: String,
}

impl Reply {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text))
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// One HTTP response whose body may have been cut short (aborted by the server).
#[derive(Debug)]
pub(crate) struct Attempt {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    /// The whole body, or the error that ended it early.
    pub(crate) body: Result<Bytes, String>,
}

impl Attempt {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Sends one request over a new HTTP/1.1 (or, with `h2c`, HTTP/2 prior knowledge) connection.
pub(crate) async fn send_with(
    addr: SocketAddr,
    h2c: bool,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Reply {
    let attempt = try_send_with(addr, h2c, method, path, headers, body).await;
    let bytes = attempt.body.expect("body");
    Reply {
        status: attempt.status,
        headers: attempt.headers,
        text: String::from_utf8(bytes.to_vec()).expect("UTF-8 body"),
    }
}

/// [`send_with`], keeping a body that ends in an error as that error.
pub(crate) async fn try_send_with(
    addr: SocketAddr,
    h2c: bool,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Attempt {
    let stream = TcpStream::connect(addr).await.expect("connects");
    let mut request = http::Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"));
    if !h2c {
        request = request.header("host", addr.to_string());
    }
    if body.is_some()
        && !headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
    {
        request = request.header("content-type", "application/json");
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(Full::new(Bytes::from(body.unwrap_or("").to_owned())))
        .unwrap();
    let response = if h2c {
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .expect("h2c handshake");
        tokio::spawn(conn);
        tokio::time::timeout(Duration::from_secs(10), sender.send_request(request))
            .await
            .expect("response in time")
            .expect("response")
    } else {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        tokio::spawn(conn);
        tokio::time::timeout(Duration::from_secs(10), sender.send_request(request))
            .await
            .expect("response in time")
            .expect("response")
    };
    let (parts, body) = response.into_parts();
    let body = tokio::time::timeout(Duration::from_secs(10), body.collect())
        .await
        .expect("body in time")
        .map(|collected| collected.to_bytes())
        .map_err(|e| format!("{e:?}"));
    Attempt {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

pub(crate) async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Reply {
    send_with(addr, false, method, path, headers, body).await
}
