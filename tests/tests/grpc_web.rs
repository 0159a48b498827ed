//! gRPC-Web on the gRPC port (`ServerBuilder::grpc_web`), over real sockets:
//!
//! - an independent client, Connect for Node's gRPC-Web transport
//!   (`tests/node/grpc_web_peer.mjs`), over HTTP/1.1 and HTTP/2, against a server with
//!   gRPC-Web alone and one that also has the gateway on the same port;
//! - the wire format by hand with a hyper client: base64 (`grpc-web-text`), CORS
//!   preflights and exposed headers, the interceptors, and the answers to requests that
//!   are not gRPC-Web;
//! - gRPC and REST next to gRPC-Web on one port.
//!
//! The Node tests need Node.js with `npm ci` run in `tests/node` (`scripts/test` does it);
//! they fail, not skip, without it.

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine as _;
use bytes::{Buf as _, Bytes};
use http::{HeaderMap, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use prost::Message as _;
use rzero::Cors;
use rzero::gateway::{Gateway, HttpRule};
use rzero::server::GrpcWeb;
use rzero_tests::default::echo::v1::echo_client::EchoClient;
use rzero_tests::default::echo::v1::{EchoReply, EchoRequest, FILE_DESCRIPTOR_SET};
use rzero_tests::echo::{self, ServerHandle};
use tokio::net::TcpStream;

const LIMIT: Duration = Duration::from_secs(60);
const ORIGIN: &str = "https://app.example.com";

fn server() -> rzero::ServerBuilder {
    rzero::Server::builder()
        .add_service(echo::echo_server())
        .interceptor(echo::names_itself("web"))
}

fn cors() -> Cors {
    Cors::origins([ORIGIN])
}

fn gateway() -> Gateway {
    Gateway::builder()
        .descriptor_set(FILE_DESCRIPTOR_SET)
        .rules([HttpRule::new(
            "/echo.v1.Echo/Unary",
            "GET",
            "/v1/echo/{message}",
        )])
        .cors(cors())
        .build()
        .expect("gateway builds")
}

#[tokio::test]
async fn a_connect_grpc_web_client_calls_over_http1_and_http2() {
    for (what, builder) in [
        ("gRPC-Web alone", server().grpc_web(GrpcWeb::new())),
        (
            "gRPC-Web next to the gateway",
            server().grpc_web(GrpcWeb::new()).gateway(gateway()),
        ),
    ] {
        let (addr, handle) = echo::spawn_builder(builder).await;
        for version in ["1.1", "2"] {
            eprintln!("{what}, HTTP/{version}");
            rzero_tests::node::grpc_web_peer(addr, version, None).await;
        }
        stop(handle).await;
    }
}

async fn stop(handle: ServerHandle) {
    tokio::time::timeout(Duration::from_secs(10), handle.shutdown())
        .await
        .expect("server stops in time")
        .expect("server ran");
}

/// One HTTP exchange with a fresh connection; the whole body read.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    fn exposed(&self) -> Vec<String> {
        self.header("access-control-expose-headers")
            .split(',')
            .map(|name| name.trim().to_ascii_lowercase())
            .collect()
    }
}

async fn exchange(
    addr: SocketAddr,
    h2: bool,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> Answer {
    let stream = TcpStream::connect(addr).await.expect("connects");
    let mut request = http::Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"));
    if !h2 {
        request = request.header("host", addr.to_string());
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Full::new(body)).expect("request");
    let response = tokio::time::timeout(LIMIT, async {
        if h2 {
            let (mut sender, conn) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                    .await
                    .expect("h2c handshake");
            tokio::spawn(conn);
            sender.send_request(request).await.expect("response")
        } else {
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .expect("handshake");
            tokio::spawn(conn);
            sender.send_request(request).await.expect("response")
        }
    })
    .await
    .expect("answered in time");
    let (parts, body) = response.into_parts();
    let body = tokio::time::timeout(LIMIT, body.collect())
        .await
        .expect("body in time")
        .expect("body")
        .to_bytes();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

/// A gRPC message frame: flag 0, big-endian length, the encoded message.
fn frame(message: &EchoRequest) -> Vec<u8> {
    let encoded = message.encode_to_vec();
    let mut framed = vec![0u8];
    framed.extend_from_slice(&u32::try_from(encoded.len()).unwrap().to_be_bytes());
    framed.extend_from_slice(&encoded);
    framed
}

/// A gRPC-Web response body split into its messages and its trailer block.
fn unframe(mut body: Bytes) -> (Vec<EchoReply>, String) {
    let mut replies = Vec::new();
    let mut trailers = String::new();
    while body.remaining() >= 5 {
        let flag = body.get_u8();
        let len = body.get_u32() as usize;
        assert!(body.remaining() >= len, "a frame runs past the body");
        let payload = body.split_to(len);
        if flag & 0x80 != 0 {
            trailers.push_str(std::str::from_utf8(&payload).expect("ASCII trailers"));
        } else {
            replies.push(EchoReply::decode(payload).expect("a reply"));
        }
    }
    assert!(!body.has_remaining(), "bytes after the last frame");
    (replies, trailers.to_ascii_lowercase())
}

/// A gRPC call (HTTP/2, rzero's client) to `addr` succeeds.
async fn assert_grpc_works(addr: SocketAddr) {
    let client = EchoClient::new(
        rzero::Client::connect(&format!("http://{addr}"))
            .await
            .expect("connects"),
    );
    let reply = client.unary(request("grpc")).await.expect("a gRPC call");
    assert_eq!(reply.into_inner().message, "grpc");
}

fn request(message: &str) -> EchoRequest {
    EchoRequest {
        message: message.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn grpc_web_text_is_base64_both_ways() {
    let (addr, handle) = echo::spawn_builder(server().grpc_web(GrpcWeb::new())).await;
    let engine = base64::engine::general_purpose::STANDARD;
    for h2 in [false, true] {
        let body = engine.encode(frame(&EchoRequest {
            count: 3,
            ..request("text")
        }));
        let answer = exchange(
            addr,
            h2,
            "POST",
            "/echo.v1.Echo/ServerStream",
            &[
                ("content-type", "application/grpc-web-text"),
                ("accept", "application/grpc-web-text"),
                ("x-echo", "t"),
            ],
            Bytes::from(body),
        )
        .await;
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(
            answer.header("content-type"),
            "application/grpc-web-text+proto"
        );
        // Each chunk is base64 on its own: decode the concatenation piece by piece.
        let text = std::str::from_utf8(&answer.body).expect("base64 is ASCII");
        let mut decoded = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            let end = rest.find('=').map_or(rest.len(), |at| {
                at + rest[at..].bytes().take_while(|b| *b == b'=').count()
            });
            decoded.extend(engine.decode(&rest[..end]).expect("valid base64"));
            rest = &rest[end..];
        }
        let (replies, trailers) = unframe(Bytes::from(decoded));
        let indices: Vec<u32> = replies.iter().map(|r| r.index).collect();
        assert_eq!(indices, [0, 1, 2], "h2: {h2}");
        assert!(replies.iter().all(|r| r.message == "text"));
        assert!(trailers.contains("grpc-status:0"), "{trailers}");
        assert!(trailers.contains("x-echo-trailer:t"), "{trailers}");
        // The server's interceptors ran.
        assert_eq!(answer.header("x-server"), "web");
    }
    stop(handle).await;
}

#[tokio::test]
async fn cors_preflights_and_exposed_headers() {
    let (addr, handle) = echo::spawn_builder(server().grpc_web(GrpcWeb::new().cors(cors()))).await;
    let preflight = async |origin: &str, method: &str, path: &str| {
        exchange(
            addr,
            false,
            "OPTIONS",
            path,
            &[
                ("origin", origin),
                ("access-control-request-method", method),
                (
                    "access-control-request-headers",
                    "content-type,x-grpc-web,x-user-agent,grpc-timeout,x-echo",
                ),
            ],
            Bytes::new(),
        )
        .await
    };

    let ok = preflight(ORIGIN, "POST", "/echo.v1.Echo/Unary").await;
    assert_eq!(ok.status, StatusCode::NO_CONTENT);
    assert_eq!(ok.header("access-control-allow-origin"), ORIGIN);
    assert_eq!(ok.header("access-control-allow-methods"), "POST");
    assert_eq!(
        ok.header("access-control-allow-headers"),
        "content-type,x-grpc-web,x-user-agent,grpc-timeout,x-echo"
    );
    assert!(ok.header("vary").to_ascii_lowercase().contains("origin"));

    let foreign = preflight("https://evil.example", "POST", "/echo.v1.Echo/Unary").await;
    assert_eq!(foreign.status, StatusCode::FORBIDDEN);
    assert!(foreign.headers.get("access-control-allow-origin").is_none());
    let status: serde_json::Value = serde_json::from_slice(&foreign.body).expect("JSON body");
    assert_eq!(status["code"], 7, "{status}");

    let get = preflight(ORIGIN, "GET", "/echo.v1.Echo/Unary").await;
    assert_eq!(get.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(get.header("allow"), "POST");

    let unknown = preflight(ORIGIN, "POST", "/nope.v1.Nope/Call").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);

    // A call failing at once answers its status as headers; scripts must be able to read
    // them, and the service's metadata.
    let failing = exchange(
        addr,
        false,
        "POST",
        "/echo.v1.Echo/Unary",
        &[
            ("content-type", "application/grpc-web+proto"),
            ("origin", ORIGIN),
            ("x-echo", "m"),
        ],
        Bytes::from(frame(&EchoRequest {
            fail_with_code: 5,
            ..request("gone")
        })),
    )
    .await;
    assert_eq!(failing.status, StatusCode::OK);
    assert_eq!(failing.header("access-control-allow-origin"), ORIGIN);
    assert_eq!(failing.header("grpc-status"), "5");
    let exposed = failing.exposed();
    for name in ["grpc-status", "grpc-message", "x-echo-header"] {
        assert!(
            exposed.iter().any(|n| n == name),
            "{name} not in {exposed:?}"
        );
    }
    assert!(!exposed.iter().any(|n| n == "content-type"), "{exposed:?}");

    // Another origin's call is served without CORS headers (the browser hides it).
    let other = exchange(
        addr,
        false,
        "POST",
        "/echo.v1.Echo/Unary",
        &[
            ("content-type", "application/grpc-web+proto"),
            ("origin", "https://evil.example"),
        ],
        Bytes::from(frame(&request("x"))),
    )
    .await;
    assert_eq!(other.status, StatusCode::OK);
    assert!(other.headers.get("access-control-allow-origin").is_none());
    let (replies, _) = unframe(other.body);
    assert_eq!(replies[0].message, "x");
    stop(handle).await;
}

#[tokio::test]
async fn requests_that_are_not_grpc_web_get_clear_answers() {
    let (addr, handle) = echo::spawn_builder(server().grpc_web(GrpcWeb::new())).await;
    // A gRPC-Web content type tonic-web does not translate.
    let json = exchange(
        addr,
        false,
        "POST",
        "/echo.v1.Echo/Unary",
        &[("content-type", "application/grpc-web+json")],
        Bytes::from_static(b"{}"),
    )
    .await;
    assert_eq!(json.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    serde_json::from_slice::<serde_json::Value>(&json.body).expect("a JSON Status body");
    // gRPC-Web calls are POSTs.
    let get = exchange(
        addr,
        false,
        "GET",
        "/echo.v1.Echo/Unary",
        &[("content-type", "application/grpc-web")],
        Bytes::new(),
    )
    .await;
    assert_eq!(get.status, StatusCode::METHOD_NOT_ALLOWED);
    // Plain HTTP/1.1 without a gateway on the port.
    let page = exchange(addr, false, "GET", "/", &[], Bytes::new()).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    let status: serde_json::Value = serde_json::from_slice(&page.body).expect("JSON body");
    assert_eq!(status["code"], 3, "{status}");
    // gRPC itself still works on the port.
    assert_grpc_works(addr).await;
    stop(handle).await;
}

#[tokio::test]
async fn grpc_rest_and_grpc_web_share_one_port() {
    let (addr, handle) = echo::spawn_builder(
        server()
            .grpc_web(GrpcWeb::new().cors(cors()))
            .gateway(gateway()),
    )
    .await;
    // REST, and its preflight, are the gateway's.
    let rest = exchange(
        addr,
        false,
        "GET",
        "/v1/echo/hi",
        &[("origin", ORIGIN)],
        Bytes::new(),
    )
    .await;
    assert_eq!(rest.status, StatusCode::OK);
    let json: serde_json::Value = serde_json::from_slice(&rest.body).expect("JSON");
    assert_eq!(json["message"], "hi");
    assert_eq!(rest.header("access-control-allow-origin"), ORIGIN);
    let rest_preflight = exchange(
        addr,
        false,
        "OPTIONS",
        "/v1/echo/hi",
        &[("origin", ORIGIN), ("access-control-request-method", "GET")],
        Bytes::new(),
    )
    .await;
    assert_eq!(rest_preflight.status, StatusCode::NO_CONTENT);
    assert_eq!(rest_preflight.header("access-control-allow-methods"), "GET");
    // gRPC-Web's preflight and call.
    let web_preflight = exchange(
        addr,
        false,
        "OPTIONS",
        "/echo.v1.Echo/Unary",
        &[
            ("origin", ORIGIN),
            ("access-control-request-method", "POST"),
        ],
        Bytes::new(),
    )
    .await;
    assert_eq!(web_preflight.status, StatusCode::NO_CONTENT);
    assert_eq!(web_preflight.header("access-control-allow-methods"), "POST");
    for h2 in [false, true] {
        let web = exchange(
            addr,
            h2,
            "POST",
            "/echo.v1.Echo/Unary",
            &[
                ("content-type", "application/grpc-web+proto"),
                ("origin", ORIGIN),
            ],
            Bytes::from(frame(&request("web"))),
        )
        .await;
        assert_eq!(web.status, StatusCode::OK);
        assert_eq!(web.header("content-type"), "application/grpc-web+proto");
        let (replies, trailers) = unframe(web.body);
        assert_eq!(replies.len(), 1);
        assert_eq!(replies[0].message, "web");
        assert!(trailers.contains("grpc-status:0"), "{trailers}");
    }
    assert_grpc_works(addr).await;
    stop(handle).await;
}

#[tokio::test]
async fn a_malformed_cors_policy_fails_the_start() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let error = server()
        .grpc_web(GrpcWeb::new().cors(Cors::origins(["https://app.example.com/path"])))
        .serve_with_listener(listener, std::future::pending())
        .await
        .expect_err("a path in an origin");
    assert!(
        error.to_string().contains("app.example.com/path"),
        "{error}"
    );
}

// gRPC-Web through a gateway proxy (`GatewayService::grpc_web`): browsers calling a remote
// server of any make, with REST on the same port.

/// A gateway proxy with gRPC-Web, on a port of its own, in front of `upstream`.
struct Proxy {
    addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), rzero::Error>>,
}

impl Proxy {
    async fn start(gateway: Gateway, upstream: &rzero::Client) -> Proxy {
        let service = gateway
            .proxy(upstream)
            .grpc_web(GrpcWeb::new().cors(cors()))
            .expect("a valid policy");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds");
        let addr = listener.local_addr().expect("bound");
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(rzero::gateway::serve(listener, service, async {
            let _ = stopped.await;
        }));
        Proxy { addr, stop, task }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("proxy stops in time")
            .expect("proxy task")
            .expect("proxy ran");
    }
}

/// A unary gRPC-Web call (binary, HTTP/1.1) through `addr`, with extra `headers`.
async fn web_unary(addr: SocketAddr, message: &EchoRequest, headers: &[(&str, &str)]) -> Answer {
    let mut all = vec![("content-type", "application/grpc-web+proto")];
    all.extend_from_slice(headers);
    exchange(
        addr,
        false,
        "POST",
        "/echo.v1.Echo/Unary",
        &all,
        Bytes::from(frame(message)),
    )
    .await
}

/// The gRPC status of a gRPC-Web answer, `code: message`: from its headers (a call that
/// failed at once) or its trailer block.
fn grpc_status(answer: &Answer) -> String {
    if answer.headers.contains_key("grpc-status") {
        return format!(
            "{}: {}",
            answer.header("grpc-status"),
            answer.header("grpc-message")
        );
    }
    let mut body = answer.body.clone();
    while body.remaining() >= 5 {
        let flag = body.get_u8();
        let len = body.get_u32() as usize;
        let payload = body.split_to(len.min(body.remaining()));
        if flag & 0x80 != 0 {
            let trailers = String::from_utf8_lossy(&payload).to_ascii_lowercase();
            let field = |name: &str| {
                trailers
                    .lines()
                    .find_map(|line| Some(line.trim().strip_prefix(name)?.to_owned()))
                    .unwrap_or_default()
            };
            return format!("{}: {}", field("grpc-status:"), field("grpc-message:"));
        }
    }
    panic!("no gRPC status in {answer:?}", answer = answer.headers)
}

/// The code of [`grpc_status`].
fn grpc_code(answer: &Answer) -> String {
    let status = grpc_status(answer);
    status.split(':').next().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn a_connect_grpc_web_client_reaches_a_python_server_through_the_gateway_proxy() {
    let python = rzero_tests::python::PythonServer::start(&[]).await;
    let upstream = rzero::Client::connect(&python.target())
        .await
        .expect("a client");
    let proxy = Proxy::start(gateway(), &upstream).await;
    for version in ["1.1", "2"] {
        eprintln!("through the proxy, HTTP/{version}");
        rzero_tests::node::grpc_web_peer(proxy.addr, version, None).await;
    }
    // REST on the same port reaches the same server.
    let rest = exchange(proxy.addr, false, "GET", "/v1/echo/hi", &[], Bytes::new()).await;
    assert_eq!(rest.status, StatusCode::OK);
    let json: serde_json::Value = serde_json::from_slice(&rest.body).expect("JSON");
    assert_eq!(json["message"], "hi");
    proxy.stop().await;
}

/// An interceptor answering, in `x-saw-NAME` reply headers, the request metadata `NAMES`
/// the upstream received.
fn reports_metadata() -> impl rzero::Interceptor {
    const NAMES: [&str; 8] = [
        "host",
        "x-forwarded-for",
        "x-forwarded-host",
        "grpc-timeout",
        "x-custom",
        "connection",
        "x-hop",
        "keep-alive",
    ];
    rzero::interceptor::from_fn(
        |call: rzero::interceptor::Call, next: rzero::interceptor::Next| async move {
            let seen: Vec<_> = NAMES
                .iter()
                .filter_map(|name| Some((*name, call.metadata().get(*name)?.clone())))
                .collect();
            let mut reply = next.run(call).await?;
            for (name, value) in seen {
                let key =
                    rzero::metadata::MetadataKey::from_bytes(format!("x-saw-{name}").as_bytes())
                        .expect("a key");
                reply.metadata_mut().insert(key, value);
            }
            Ok(reply)
        },
    )
}

#[tokio::test]
async fn the_proxy_forwards_its_services_calls_with_forwarding_headers_and_no_others() {
    // The upstream also answers gRPC-Web itself, and serves grpc.health.v1.
    let (upstream_addr, handle) = echo::spawn_builder(
        server()
            .interceptor(reports_metadata())
            .grpc_web(GrpcWeb::new()),
    )
    .await;
    let upstream = rzero::Client::connect(&format!("http://{upstream_addr}"))
        .await
        .expect("a client");
    let proxy = Proxy::start(gateway(), &upstream).await;

    let answer = web_unary(
        proxy.addr,
        &request("fwd"),
        &[
            ("x-forwarded-for", "203.0.113.7"),
            ("x-custom", "kept"),
            ("connection", "keep-alive, x-hop"),
            ("x-hop", "dropped"),
            ("grpc-timeout", "5S"),
        ],
    )
    .await;
    assert_eq!(grpc_code(&answer), "0", "{}", grpc_status(&answer));
    let (replies, _) = unframe(answer.body.clone());
    assert_eq!(replies[0].message, "fwd");
    // The upstream's own interceptors ran, and saw the call's metadata...
    assert_eq!(answer.header("x-server"), "web");
    assert_eq!(answer.header("x-saw-x-custom"), "kept");
    assert_eq!(answer.header("x-saw-grpc-timeout"), "5S");
    // ...the browser's address and the host it asked for...
    assert_eq!(
        answer.header("x-saw-x-forwarded-for"),
        "203.0.113.7, 127.0.0.1"
    );
    assert_eq!(
        answer.header("x-saw-x-forwarded-host"),
        proxy.addr.to_string()
    );
    // ...and none of the connection's headers.
    for hop in ["host", "connection", "x-hop", "keep-alive"] {
        assert!(
            answer.headers.get(format!("x-saw-{hop}")).is_none(),
            "{hop} was forwarded: {:?}",
            answer.headers
        );
    }

    // A service the upstream serves but the gateway does not describe is not reachable.
    let health = rzero::google::rpc::Status::default().encode_to_vec(); // any message: never read
    let check = |addr| {
        exchange(
            addr,
            false,
            "POST",
            "/grpc.health.v1.Health/Check",
            &[("content-type", "application/grpc-web+proto")],
            Bytes::from({
                let mut framed = vec![0u8];
                framed.extend_from_slice(&u32::try_from(health.len()).unwrap().to_be_bytes());
                framed.extend_from_slice(&health);
                framed
            }),
        )
    };
    assert_eq!(
        grpc_code(&check(upstream_addr).await),
        "0",
        "upstream serves it"
    );
    assert_eq!(
        grpc_code(&check(proxy.addr).await),
        "12",
        "the proxy refuses it"
    );

    // CORS: gRPC-Web's preflight for a method, the gateway's for a REST route.
    let preflight = async |path: &str, method: &str| {
        exchange(
            proxy.addr,
            false,
            "OPTIONS",
            path,
            &[
                ("origin", ORIGIN),
                ("access-control-request-method", method),
            ],
            Bytes::new(),
        )
        .await
    };
    let web = preflight("/echo.v1.Echo/ServerStream", "POST").await;
    assert_eq!(web.status, StatusCode::NO_CONTENT);
    assert_eq!(web.header("access-control-allow-methods"), "POST");
    let rest = preflight("/v1/echo/hi", "GET").await;
    assert_eq!(rest.status, StatusCode::NO_CONTENT);
    assert_eq!(rest.header("access-control-allow-methods"), "GET");
    let call = web_unary(proxy.addr, &request("cors"), &[("origin", ORIGIN)]).await;
    assert_eq!(
        call.header("access-control-allow-origin"),
        ORIGIN,
        "{:?}",
        call.headers
    );
    // The upstream's metadata is readable by the page's scripts.
    assert!(
        call.exposed().contains(&"x-server".to_owned()),
        "{:?}",
        call.exposed()
    );

    proxy.stop().await;
    stop(handle).await;
}

#[tokio::test]
async fn the_gateway_limits_bound_proxied_grpc_web_calls() {
    let (upstream_addr, handle) = echo::spawn_builder(server()).await;
    let upstream = rzero::Client::connect(&format!("http://{upstream_addr}"))
        .await
        .expect("a client");
    let gateway = Gateway::builder()
        .descriptor_set(FILE_DESCRIPTOR_SET)
        .timeout(Duration::from_millis(300))
        .max_body_size(64 * 1024)
        .build()
        .expect("gateway builds");
    let proxy = Proxy::start(gateway, &upstream).await;
    let slow = EchoRequest {
        delay_ms: 20_000,
        ..request("slow")
    };
    // Without a deadline of its own, and with a longer one, the call gets the gateway's.
    for headers in [&[][..], &[("grpc-timeout", "100S")][..]] {
        let answer = web_unary(proxy.addr, &slow, headers).await;
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(
            grpc_code(&answer),
            "4",
            "{headers:?}: DEADLINE_EXCEEDED, not {}",
            grpc_status(&answer)
        );
    }
    // A request over the gateway's body limit is refused, as a gRPC server refuses a
    // message over its own.
    let large = EchoRequest {
        payload: vec![1; 100 * 1024],
        ..request("large")
    };
    let answer = web_unary(proxy.addr, &large, &[]).await;
    assert_eq!(
        grpc_code(&answer),
        "8",
        "RESOURCE_EXHAUSTED, not {}",
        grpc_status(&answer)
    );
    let small = web_unary(proxy.addr, &request("small"), &[]).await;
    assert_eq!(grpc_code(&small), "0", "{}", grpc_status(&small));
    proxy.stop().await;
    stop(handle).await;
}

#[tokio::test]
async fn an_unreachable_upstream_is_unavailable_and_a_dead_endpoint_is_skipped() {
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
        listener.local_addr().expect("bound")
        // closed here: nothing listens on it
    };
    // Only the dead endpoint: every call fails, as a gRPC-Web answer.
    let nowhere = rzero::Client::builder(&format!("static:///{dead}"))
        .build()
        .expect("a lazy client");
    let proxy = Proxy::start(gateway(), &nowhere).await;
    let answer = web_unary(proxy.addr, &request("nowhere"), &[]).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        grpc_code(&answer),
        "14",
        "UNAVAILABLE, not {}",
        grpc_status(&answer)
    );
    assert!(
        answer
            .header("content-type")
            .starts_with("application/grpc-web"),
        "{:?}",
        answer.headers
    );
    proxy.stop().await;

    // A dead endpoint next to a live one: calls that found it dead before they left go to
    // the other, so none fails.
    let (live, handle) = echo::spawn_builder(server()).await;
    let balanced = rzero::Client::builder(&format!("static:///{dead},{live}"))
        .balancer(rzero::balance::Policy::RoundRobin)
        .build()
        .expect("a client");
    let proxy = Proxy::start(gateway(), &balanced).await;
    for i in 0..6 {
        let answer = web_unary(proxy.addr, &request("either"), &[]).await;
        assert_eq!(
            grpc_code(&answer),
            "0",
            "call {i}: {}",
            grpc_status(&answer)
        );
    }
    proxy.stop().await;
    stop(handle).await;
}
