//! `GrpcWeb`, `Cors` and `Gateway` in a YAML server config, over real sockets on 127.0.0.1:
//! a server built from the file alone answers gRPC-Web with the file's CORS origins, and a
//! gateway whose options come from the file honours them, on its own port when
//! `Gateway.ListenOn` says so. Also: the README's YAML examples load.

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::StatusCode;
use prost::Message as _;
use rzero::config::ServerConfig;
use rzero_tests::default::echo::v1::{EchoReply, EchoRequest};
use rzero_tests::echo;
use rzero_tests::etcd::free_port;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

#[path = "gateway/support.rs"]
mod support;
use support::{Reply, send};

const APP: &str = "https://app.example.com";
const EVIL: &str = "https://evil.example.org";

/// A preflight for `path` from `origin`.
async fn preflight(addr: SocketAddr, origin: &str, method: &str, path: &str) -> Reply {
    send(
        addr,
        "OPTIONS",
        path,
        &[
            ("origin", origin),
            ("access-control-request-method", method),
        ],
        None,
    )
    .await
}

/// A server built by `config` with `extra` added (services, a gateway), serving on a free
/// 127.0.0.1 port until the sender is dropped or fires.
async fn spawn(
    builder: rzero::ServerBuilder,
) -> (
    SocketAddr,
    oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), rzero::Error>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(builder.serve_with_listener(listener, async {
        let _ = stopped.await;
    }));
    (addr, stop, task)
}

/// Waits until `addr` accepts connections: a port from the config is bound when serving
/// starts, on the server's task.
async fn listening(addr: SocketAddr) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing listens on {addr}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn shut_down(
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), rzero::Error>>,
) {
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("server stops in time")
        .expect("server task")
        .expect("server ran");
}

/// Every built-in interceptor off, so that the tests see the server alone.
const QUIET: &str = "\
Middlewares: {Trace: false, Stat: false, Prometheus: false, Breaker: false}
CpuThreshold: 0
";

#[tokio::test]
async fn grpc_web_and_its_cors_origins_come_from_the_file() {
    let yaml = format!(
        "\
ListenOn: 127.0.0.1:0
{QUIET}GrpcWeb:
  Enabled: true
  Cors:
    AllowOrigins: ${{RZERO_TEST_UNSET_ORIGINS:-{APP}, https://*.staging.example.com}}
    MaxAge: 10m
"
    );
    let config = ServerConfig::from_yaml_str(&yaml).expect("the config loads");
    let builder = config
        .builder()
        .expect("a builder")
        .add_service(echo::echo_server());
    let (addr, stop, task) = spawn(builder).await;

    // Preflights: the configured origins get 204 with CORS headers, others 403.
    for origin in [APP, "https://web.staging.example.com"] {
        let reply = preflight(addr, origin, "POST", "/echo.v1.Echo/Unary").await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT, "{origin}: {reply:?}");
        assert_eq!(
            reply.header("access-control-allow-origin"),
            Some(origin),
            "{reply:?}"
        );
        assert_eq!(reply.header("access-control-max-age"), Some("600"));
    }
    for origin in [EVIL, "https://staging.example.com"] {
        let reply = preflight(addr, origin, "POST", "/echo.v1.Echo/Unary").await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{origin}: {reply:?}");
        assert_eq!(reply.header("access-control-allow-origin"), None);
    }

    // A gRPC-Web call (base64 text mode) from the allowed origin is answered, readable by
    // the page.
    let message = EchoRequest {
        message: "from the browser".into(),
        ..Default::default()
    }
    .encode_to_vec();
    let mut frame = vec![0u8];
    frame.extend_from_slice(&u32::try_from(message.len()).unwrap().to_be_bytes());
    frame.extend_from_slice(&message);
    let reply = send(
        addr,
        "POST",
        "/echo.v1.Echo/Unary",
        &[
            ("origin", APP),
            ("content-type", "application/grpc-web-text"),
            ("accept", "application/grpc-web-text"),
            ("x-grpc-web", "1"),
        ],
        Some(&STANDARD.encode(&frame)),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(reply.header("access-control-allow-origin"), Some(APP));
    // Each chunk is base64 on its own: decode the concatenation piece by piece.
    let mut body = Vec::new();
    let mut rest = reply.text.trim();
    while !rest.is_empty() {
        let end = rest.find('=').map_or(rest.len(), |at| {
            at + rest[at..].bytes().take_while(|b| *b == b'=').count()
        });
        body.extend(STANDARD.decode(&rest[..end]).expect("valid base64"));
        rest = &rest[end..];
    }
    assert_eq!(body[0], 0, "a message frame first");
    let len = u32::from_be_bytes(body[1..5].try_into().unwrap()) as usize;
    let echoed = EchoReply::decode(&body[5..5 + len]).expect("a reply message");
    assert_eq!(echoed.message, "from the browser");
    let trailers = String::from_utf8_lossy(&body[5 + len + 5..]).to_ascii_lowercase();
    assert!(trailers.contains("grpc-status:0"), "{trailers}");

    shut_down(stop, task).await;
}

#[tokio::test]
async fn grpc_web_is_off_unless_enabled() {
    let yaml = format!(
        "ListenOn: 127.0.0.1:0\n{QUIET}GrpcWeb:\n  Enabled: false\n  Cors: {{AllowOrigins: [{APP}]}}\n"
    );
    let config = ServerConfig::from_yaml_str(&yaml).unwrap();
    let (addr, stop, task) =
        spawn(config.builder().unwrap().add_service(echo::echo_server())).await;
    // A gRPC-only port speaks HTTP/2 alone: an HTTP/1.1 preflight gets no CORS answer.
    let answered = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::spawn(async move { preflight(addr, APP, "POST", "/echo.v1.Echo/Unary").await }),
    )
    .await
    .expect("done in time");
    if let Ok(reply) = answered {
        assert_ne!(reply.status, StatusCode::NO_CONTENT, "{reply:?}");
        assert_eq!(reply.header("access-control-allow-origin"), None);
    }
    shut_down(stop, task).await;
}

/// The gateway of `gateway/support.rs` (greeter and echo rules) with the options of
/// `config`'s `Gateway` section.
fn gateway(config: &ServerConfig) -> rzero::gateway::Gateway {
    config
        .gateway
        .apply(support::gateway())
        .build()
        .expect("the gateway builds")
}

#[tokio::test]
async fn gateway_options_and_its_own_port_come_from_the_file() {
    let port = free_port();
    let yaml = format!(
        "\
ListenOn: 127.0.0.1:0
{QUIET}Gateway:
  ListenOn: 127.0.0.1:{port}
  MaxBytes: 64
  Json:
    UseProtoNames: true
  Healthz: /healthz
  Cors:
    AllowOrigins: [{APP}]
"
    );
    let config = ServerConfig::from_yaml_str(&yaml).expect("the config loads");
    let builder =
        support::services_on(config.builder().expect("a builder")).gateway(gateway(&config));
    let (grpc, stop, task) = spawn(builder).await;
    let rest: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    listening(rest).await;

    // Proto field names (`metadata_echo`, not `metadataEcho`), on the gateway's own port.
    let reply = send(rest, "GET", "/v1/echo/hi", &[], None).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    let json = reply.json();
    assert_eq!(json["message"], "hi", "{json}");
    assert!(json.get("metadata_echo").is_some(), "{json}");
    assert!(json.get("metadataEcho").is_none(), "{json}");

    // MaxBytes: a body over 64 bytes is a 413 with a google.rpc.Status JSON body.
    let big = format!("{{\"message\": \"{}\"}}", "x".repeat(100));
    let reply = send(rest, "POST", "/v1/echo", &[], Some(&big)).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE, "{reply:?}");
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let status = reply.json();
    assert_eq!(status["code"], 8, "RESOURCE_EXHAUSTED: {status}");
    let small = send(rest, "POST", "/v1/echo", &[], Some("{\"message\": \"ok\"}")).await;
    assert_eq!(small.status, StatusCode::OK, "{small:?}");

    // Healthz and CORS, from the same section.
    let reply = send(rest, "GET", "/healthz", &[], None).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    let reply = preflight(rest, APP, "GET", "/v1/echo/hi").await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{reply:?}");
    assert_eq!(reply.header("access-control-allow-origin"), Some(APP));
    let reply = preflight(rest, EVIL, "GET", "/v1/echo/hi").await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{reply:?}");

    // The gRPC port stays gRPC only (HTTP/2 alone): no REST there.
    let on_grpc = tokio::spawn(async move { send(grpc, "GET", "/v1/echo/hi", &[], None).await });
    if let Ok(reply) = on_grpc.await {
        assert_ne!(
            reply.status,
            StatusCode::OK,
            "REST answered on the gRPC port: {reply:?}"
        );
    }

    shut_down(stop, task).await;
}

#[tokio::test]
async fn without_its_own_listen_on_the_gateway_shares_the_grpc_port() {
    let yaml = format!("ListenOn: 127.0.0.1:0\n{QUIET}Gateway:\n  MaxBodySize: 64\n");
    let config = ServerConfig::from_yaml_str(&yaml).unwrap();
    let builder = support::services_on(config.builder().unwrap()).gateway(gateway(&config));
    let (addr, stop, task) = spawn(builder).await;
    let reply = send(addr, "GET", "/v1/echo/hi", &[], None).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert!(
        reply.json().get("metadataEcho").is_some(),
        "JSON names by default"
    );
    let big = format!("{{\"message\": \"{}\"}}", "x".repeat(100));
    let reply = send(addr, "POST", "/v1/echo", &[], Some(&big)).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE, "{reply:?}");
    shut_down(stop, task).await;
}

#[tokio::test]
async fn a_gateway_port_without_a_gateway_fails_the_start() {
    let port = free_port();
    let yaml = format!("ListenOn: 127.0.0.1:0\n{QUIET}Gateway: {{ListenOn: '127.0.0.1:{port}'}}\n");
    let config = ServerConfig::from_yaml_str(&yaml).unwrap();
    let (_addr, _stop, task) =
        spawn(config.builder().unwrap().add_service(echo::echo_server())).await;
    let error = tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("fails at once")
        .expect("server task")
        .expect_err("no gateway was added");
    assert!(error.to_string().contains("Gateway.ListenOn"), "{error}");
}

/// The README's ```yaml blocks in its gateway and gRPC-Web sections, each a whole server
/// config, load.
#[test]
fn the_readmes_yaml_examples_load() {
    let readme = include_str!("../../README.md");
    let section = readme
        .split("\n## ")
        .find(|section| section.starts_with("REST/JSON gateway"))
        .expect("a \"REST/JSON gateway\" section in README.md");
    let blocks: Vec<&str> = section
        .split("```yaml\n")
        .skip(1)
        .map(|block| block.split("```").next().unwrap_or(""))
        .collect();
    assert_eq!(blocks.len(), 2, "the gateway's and gRPC-Web's YAML");
    for block in blocks {
        let config = ServerConfig::from_yaml_str(block)
            .unwrap_or_else(|error| panic!("README YAML does not load: {error}\n{block}"));
        let _ = config.builder().expect("a builder");
    }
}
