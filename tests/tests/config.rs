//! `rzero::config`: go-zero-style YAML files turned into a real server and a real client
//! that call each other, with and without a real etcd in between.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use rzero::Code;
use rzero::config::{ClientConfig, ServerConfig};
use rzero::discovery::etcd::EtcdClient;
use rzero::health::pb::HealthCheckRequest;
use rzero::health::pb::health_client::HealthClient;
use rzero::metrics::Metrics;
use rzero_tests::default::echo::v1::EchoRequest;
use rzero_tests::default::echo::v1::echo_client::EchoClient;
use rzero_tests::echo;
use rzero_tests::etcd::{EtcdServer, free_port};
use tokio::sync::oneshot;

const LIMIT: Duration = Duration::from_secs(30);

async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: not done within {LIMIT:?}"))
}

/// A scratch directory for config files, removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!("rzero-config-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&path).expect("create temp dir");
        Self(path)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).expect("write config");
        path
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn hello(message: &str, delay_ms: u32) -> EchoRequest {
    EchoRequest {
        message: message.to_owned(),
        delay_ms,
        ..Default::default()
    }
}

#[tokio::test]
async fn server_and_client_built_from_yaml_files_call_each_other() {
    let dir = Dir::new("direct");
    let server_file = dir.write(
        "echo.yaml",
        "\
Name: echo.rpc
ListenOn: 127.0.0.1:0
Timeout: 5000         # ms: bounds every call on this server...
Health: false
Middlewares:
  Breaker: false
MethodTimeouts:       # ...but this one
  - FullMethod: /echo.v1.Echo/Unary
    Timeout: 300ms
",
    );
    let config = ServerConfig::from_yaml_file(&server_file).expect("server config");
    let listener = tokio::net::TcpListener::bind(config.listen_on())
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(
        config
            .builder()
            .expect("server builder")
            .add_service(echo::echo_server())
            .serve_with_listener(listener, async move {
                let _ = stopped.await;
            }),
    );

    let client_file = dir.write(
        "client.yaml",
        &format!(
            "\
Endpoints:
  - 127.0.0.1:{port}
Balancer: round_robin
NonBlock: true
Timeout: 2000
"
        ),
    );
    let client_config = ClientConfig::from_yaml_file(&client_file).expect("client config");
    assert_eq!(
        client_config.target().expect("target"),
        format!("static:///127.0.0.1:{port}")
    );
    let client = client_config.build().expect("client");
    let echo = EchoClient::new(client.clone());

    let reply = within("call", echo.unary(hello("from yaml", 0)))
        .await
        .expect("unary call")
        .into_inner();
    assert_eq!(reply.message, "from yaml");

    // The server's `MethodTimeouts` bound a call that would take a second.
    let started = tokio::time::Instant::now();
    let status = within("slow call", echo.unary(hello("slow", 1000)))
        .await
        .expect_err("the server's timeout ends it");
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");

    // The client's `Timeout` gives calls a deadline (here shorter than the server's bound)...
    let short =
        ClientConfig::from_yaml_str(&format!("Endpoints: [127.0.0.1:{port}]\nTimeout: 100\n"))
            .expect("client config")
            .build()
            .expect("client");
    let started = tokio::time::Instant::now();
    let status = within(
        "short call",
        EchoClient::new(short).unary(hello("slow", 250)),
    )
    .await
    .expect_err("the client's deadline ends it");
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(
        started.elapsed() < Duration::from_millis(240),
        "{:?}",
        started.elapsed()
    );
    // ...unless its `Timeout` switch is off.
    let unbounded = ClientConfig::from_yaml_str(&format!(
        "Endpoints: [127.0.0.1:{port}]\nTimeout: 100\nMiddlewares: {{Timeout: false, Trace: false}}\n"
    ))
    .expect("client config")
    .build()
    .expect("client");
    let reply = within(
        "unbounded call",
        EchoClient::new(unbounded).unary(hello("late", 200)),
    )
    .await
    .expect("no client deadline")
    .into_inner();
    assert_eq!(reply.message, "late");

    // `Health: false`: no grpc.health.v1 service.
    let health = HealthClient::new(client);
    let status = within(
        "health",
        health.check(HealthCheckRequest {
            service: String::new(),
        }),
    )
    .await
    .expect_err("no health service");
    assert_eq!(status.code(), Code::Unimplemented, "{status:?}");

    let _ = stop.send(());
    within("shutdown", server)
        .await
        .expect("server task")
        .expect("server ended cleanly");
}

#[tokio::test]
async fn a_server_registered_from_yaml_is_found_by_a_client_from_yaml() {
    let etcd_server = tokio::task::spawn_blocking(EtcdServer::start)
        .await
        .expect("etcd");
    let etcd_addr = etcd_server.addr();
    let server_config = ServerConfig::from_yaml_str(&format!(
        "\
Name: echo.rpc
ListenOn: 127.0.0.1:0
Etcd:
  Hosts: [{etcd_addr}]
  Key: config.echo.rpc
  ID: one
  TTL: 5
Version: v2
Zone: test-1
Metadata: {{team: core}}
"
    ))
    .expect("server config");
    let listener = tokio::net::TcpListener::bind(server_config.listen_on())
        .await
        .expect("bind");
    let listening = listener.local_addr().expect("addr");
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(
        server_config
            .builder()
            .expect("server builder")
            .add_service(echo::echo_server())
            .serve_with_listener(listener, async move {
                let _ = stopped.await;
            }),
    );

    let client_config = ClientConfig::from_yaml_str(&format!(
        "\
Etcd:
  Hosts: [{etcd_addr}]
  Key: config.echo.rpc
Select: {{version: v2, zone: test-1}}
Balancer: p2c_ewma
"
    ))
    .expect("client config");
    let echo = EchoClient::new(client_config.build().expect("client"));
    // The client may start before the registration is visible: calls fail fast until then.
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        match echo.unary(hello("found", 0)).await {
            Ok(reply) => {
                assert_eq!(reply.into_inner().message, "found");
                break;
            }
            Err(status) => {
                assert_eq!(status.code(), Code::Unavailable, "{status:?}");
                assert!(tokio::time::Instant::now() < deadline, "never found");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    // Published under `<Key>/<ID>` with the labels, as the config said.
    let etcd = EtcdClient::new([etcd_addr.as_str()]).expect("etcd client");
    let (keys, _) = within("list", etcd.get_prefix("config.echo.rpc/"))
        .await
        .expect("list");
    assert_eq!(keys.len(), 1);
    let value = String::from_utf8_lossy(&keys[0].value).into_owned();
    assert_eq!(String::from_utf8_lossy(&keys[0].key), "config.echo.rpc/one");
    for expected in [
        listening.to_string().as_str(),
        "\"version\":\"v2\"",
        "\"zone\":\"test-1\"",
        "\"team\":\"core\"",
    ] {
        assert!(value.contains(expected), "{expected} in {value}");
    }

    // A client selecting another version finds nothing.
    let mut other = client_config.clone();
    other.select.insert("version".to_owned(), "v3".to_owned());
    let other = EchoClient::new(other.builder().expect("builder").build().expect("client"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let status = other
        .unary(hello("nobody", 0))
        .await
        .expect_err("no v3 server");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");

    let _ = stop.send(());
    within("shutdown", server)
        .await
        .expect("server task")
        .expect("server ended cleanly");
    let (keys, _) = within("list", etcd.get_prefix("config.echo.rpc/"))
        .await
        .expect("list");
    assert!(keys.is_empty(), "deregistered at shutdown");
}

#[test]
fn a_bad_file_names_the_file_key_and_position() {
    let dir = Dir::new("bad");
    let path = dir.write(
        "greeter.yaml",
        "Name: greeter.rpc\nListenOn: 0.0.0.0:8080\nEtcd:\n  Key: greeter.rpc\n  Hosts: 127.0.0.1:2379\n",
    );
    let error = ServerConfig::from_yaml_file(&path).expect_err("bad file");
    assert_eq!(error.line(), Some(5));
    assert_eq!(error.column(), Some(10));
    assert_eq!(error.key(), "Etcd.Hosts");
    assert!(
        error
            .to_string()
            .starts_with(&format!("{}:5:10: Etcd.Hosts: ", path.display())),
        "{error}"
    );
}

/// One `tracing` event from rzero: its level, message and other fields as text.
#[derive(Debug, Clone)]
struct Event {
    level: tracing::Level,
    message: String,
    fields: BTreeMap<String, String>,
}

impl Event {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

/// A subscriber keeping rzero's events, for the test that installs it with
/// `tracing::subscriber::set_default` (on its own thread: `#[tokio::test]` runs the server,
/// the client and the test on one thread, so it sees them all, and no other test's).
#[derive(Default, Clone)]
struct Events {
    events: Arc<Mutex<Vec<Event>>>,
    spans: Arc<AtomicU64>,
}

impl Events {
    fn all(&self) -> Vec<Event> {
        self.events.lock().expect("events").clone()
    }

    /// The slow-call and failed-call logs (`[RPC] ...`), leaving out the tracing
    /// interceptors' own events.
    fn rpc(&self) -> Vec<Event> {
        self.all()
            .into_iter()
            .filter(|event| event.message.starts_with("[RPC]"))
            .collect()
    }

    fn with_message(&self, message: &str) -> Vec<Event> {
        self.all()
            .into_iter()
            .filter(|event| event.message == message)
            .collect()
    }
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl tracing::field::Visit for Fields<'_> {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl tracing::Subscriber for Events {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(self.spans.fetch_add(1, Ordering::Relaxed) + 1)
    }

    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        if !event.metadata().target().starts_with("rzero") {
            return;
        }
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        let message = fields.remove("message").unwrap_or_default();
        self.events.lock().expect("events").push(Event {
            level: *event.metadata().level(),
            message,
            fields,
        });
    }

    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// `GET path` over HTTP/1.1 with hyper: the status and the body.
async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let stream = within("connect", tokio::net::TcpStream::connect(addr))
        .await
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("HTTP handshake");
    tokio::spawn(connection);
    let request = http::Request::get(path)
        .header("host", addr.to_string())
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .expect("request");
    let response = within("response", sender.send_request(request))
        .await
        .expect("response");
    let status = response.status().as_u16();
    let body = within("body", response.into_body().collect())
        .await
        .expect("body")
        .to_bytes();
    (
        status,
        String::from_utf8(body.to_vec()).expect("UTF-8 body"),
    )
}

/// The value of the sample `name{labels}` in a Prometheus exposition (0 when absent).
fn sample(exposition: &str, key: &str) -> f64 {
    exposition
        .lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

const UNARY_OK: &str = r#"{method="/echo.v1.Echo/Unary",code="OK"}"#;
const UNARY_NOT_FOUND: &str = r#"{method="/echo.v1.Echo/Unary",code="NOT_FOUND"}"#;

fn failing(message: &str, code: Code) -> EchoRequest {
    EchoRequest {
        message: message.to_owned(),
        fail_with_code: code as i32,
        ..Default::default()
    }
}

#[tokio::test]
async fn a_server_from_yaml_logs_slow_calls_and_serves_metrics_and_health_on_its_dev_server() {
    let events = Events::default();
    let _subscriber = tracing::subscriber::set_default(events.clone());
    let dev_port = free_port();
    let config = ServerConfig::from_yaml_str(&format!(
        "\
ListenOn: 127.0.0.1:0
Health: false                # the probe still follows the server's own state
DrainDelay: 1s
Middlewares:
  StatConf:
    SlowThreshold: 150ms
    IgnoreContentMethods: [/echo.v1.Echo/Unary]
DevServer:
  Enabled: true
  Host: 127.0.0.1
  Port: {dev_port}
  MetricsPath: /prom
  HealthResponse: all good
"
    ))
    .expect("server config");
    let listener = tokio::net::TcpListener::bind(config.listen_on())
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let dev = SocketAddr::from((Ipv4Addr::LOCALHOST, dev_port));
    // The registry is the process's: other tests in this binary may add to it.
    let before = Metrics::global().render();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(
        config
            .builder()
            .expect("server builder")
            .add_service(echo::echo_server())
            .serve_with_listener(listener, async move {
                let _ = stopped.await;
            }),
    );

    let client = EchoClient::new(
        within("connect", rzero::Client::connect(&addr.to_string()))
            .await
            .expect("connect"),
    );
    within("fast call", client.unary(hello("secret-fast", 0)))
        .await
        .expect("fast call");
    within("slow call", client.unary(hello("secret-slow", 400)))
        .await
        .expect("slow call");
    let status = within(
        "failing call",
        client.unary(failing("secret-fail", Code::NotFound)),
    )
    .await
    .expect_err("asked to fail");
    assert_eq!(status.code(), Code::NotFound, "{status:?}");

    // `Stat`: the slow call, and only it, logged at WARN with what go-zero logs but the body.
    let slow = events.with_message("[RPC] slowcall");
    assert_eq!(slow.len(), 1, "{:#?}", events.all());
    let slow = &slow[0];
    assert_eq!(slow.level, tracing::Level::WARN);
    assert_eq!(slow.field("method"), Some("/echo.v1.Echo/Unary"));
    assert_eq!(slow.field("code"), Some("OK"));
    assert_eq!(slow.field("error"), None);
    let elapsed: u64 = slow
        .field("elapsed_ms")
        .expect("elapsed_ms")
        .parse()
        .expect("a number");
    assert!((400..5000).contains(&elapsed), "{slow:?}");
    let peer: SocketAddr = slow.field("peer").expect("peer").parse().expect("address");
    assert_eq!(peer.ip(), Ipv4Addr::LOCALHOST);
    assert!(
        events.with_message("[RPC] call failed").is_empty(),
        "failures are not logged on servers: {:#?}",
        events.all()
    );
    let logged = format!("{:?}", events.rpc());
    assert!(
        !logged.contains("secret"),
        "request contents logged: {logged}"
    );

    // `Prometheus` + `DevServer`: the calls are counted and served at `MetricsPath`.
    let (status, text) = http_get(dev, "/prom").await;
    assert_eq!(status, 200, "{text}");
    assert!(
        sample(&text, &format!("rzero_server_handled_total{UNARY_OK}"))
            - sample(&before, &format!("rzero_server_handled_total{UNARY_OK}"))
            >= 2.0,
        "two OK calls in\n{text}"
    );
    assert!(
        sample(
            &text,
            &format!("rzero_server_handled_total{UNARY_NOT_FOUND}")
        ) - sample(
            &before,
            &format!("rzero_server_handled_total{UNARY_NOT_FOUND}")
        ) >= 1.0,
        "one NOT_FOUND in\n{text}"
    );
    assert!(text.contains("# TYPE rzero_server_handling_seconds histogram"));
    let (status, _) = http_get(dev, "/metrics").await;
    assert_eq!(status, 404, "metrics only at MetricsPath");

    // The health probe answers `HealthResponse` while the server serves...
    assert_eq!(
        http_get(dev, "/healthz").await,
        (200, "all good".to_owned())
    );

    // ...and 503 once it shuts down (here during its 1 s drain delay), before the port closes.
    let _ = stop.send(());
    let deadline = tokio::time::Instant::now() + Duration::from_millis(900);
    loop {
        let (status, body) = http_get(dev, "/healthz").await;
        if status == 503 {
            assert_eq!(body, "Service Unavailable\n");
            break;
        }
        assert_eq!((status, body.as_str()), (200, "all good"));
        assert!(tokio::time::Instant::now() < deadline, "never turned 503");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!server.is_finished(), "still draining");
    within("shutdown", server)
        .await
        .expect("server task")
        .expect("server ended cleanly");

    // The dev server stops with the server.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while tokio::net::TcpStream::connect(dev).await.is_ok() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "dev server still listening"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_client_from_yaml_logs_slow_and_failed_calls_and_counts_them() {
    let events = Events::default();
    let _subscriber = tracing::subscriber::set_default(events.clone());
    let (addr, _server) = echo::spawn_server().await;
    let before = Metrics::global().render();
    let config = ClientConfig::from_yaml_str(&format!("Endpoints: [{addr}]\nTimeout: 5000\n"))
        .expect("client config");
    let client = EchoClient::new(config.build().expect("client"));

    within("fast call", client.unary(hello("secret-fast", 0)))
        .await
        .expect("fast call");
    assert!(events.rpc().is_empty(), "{:#?}", events.all());

    // `Duration`: slower than go-zero's 500 ms, logged at WARN (without a peer: clients
    // know their target, not the connection's address, at this point).
    within("slow call", client.unary(hello("secret-slow", 600)))
        .await
        .expect("slow call");
    let slow = events.with_message("[RPC] slowcall");
    assert_eq!(slow.len(), 1, "{:#?}", events.all());
    assert_eq!(slow[0].level, tracing::Level::WARN);
    assert_eq!(slow[0].field("method"), Some("/echo.v1.Echo/Unary"));
    assert_eq!(slow[0].field("code"), Some("OK"));
    let elapsed: u64 = slow[0]
        .field("elapsed_ms")
        .expect("elapsed_ms")
        .parse()
        .expect("a number");
    assert!((600..5000).contains(&elapsed), "{:?}", slow[0]);

    // ...and a failed call at INFO, with its code and message.
    let status = within(
        "failing call",
        client.unary(failing("secret-fail", Code::PermissionDenied)),
    )
    .await
    .expect_err("asked to fail");
    assert_eq!(status.code(), Code::PermissionDenied);
    let failed = events.with_message("[RPC] call failed");
    assert_eq!(failed.len(), 1, "{:#?}", events.all());
    assert_eq!(failed[0].level, tracing::Level::INFO);
    assert_eq!(failed[0].field("method"), Some("/echo.v1.Echo/Unary"));
    assert_eq!(failed[0].field("code"), Some("PERMISSION_DENIED"));
    assert_eq!(
        failed[0].field("error"),
        Some("requested failure: secret-fail"),
        "the status message, which the server wrote"
    );
    assert_eq!(events.rpc().len(), 2, "{:#?}", events.all());
    // The request itself is never logged: the only `secret` is the server's own message.
    let logged = format!("{:?}", events.with_message("[RPC] slowcall"));
    assert!(!logged.contains("secret"), "{logged}");

    // `Prometheus`: counted in the process-wide registry.
    let after = Metrics::global().render();
    let key =
        r#"rzero_client_handled_total{method="/echo.v1.Echo/Unary",code="PERMISSION_DENIED"}"#;
    assert!(sample(&after, key) - sample(&before, key) >= 1.0, "{after}");
    let key = format!("rzero_client_handled_total{UNARY_OK}");
    assert!(
        sample(&after, &key) - sample(&before, &key) >= 2.0,
        "{after}"
    );

    // `Duration: false` logs nothing.
    let quiet = ClientConfig::from_yaml_str(&format!(
        "Endpoints: [{addr}]\nMiddlewares: {{Duration: false}}\n"
    ))
    .expect("client config")
    .build()
    .expect("client");
    let quiet = EchoClient::new(quiet);
    within("quiet slow call", quiet.unary(hello("slow", 600)))
        .await
        .expect("slow call");
    within(
        "quiet failing call",
        quiet.unary(failing("fail", Code::NotFound)),
    )
    .await
    .expect_err("asked to fail");
    assert_eq!(events.rpc().len(), 2, "{:#?}", events.all());
}
