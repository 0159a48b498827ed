//! `rzero::config`: go-zero-style YAML files turned into a real server and a real client
//! that call each other, with and without a real etcd in between.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use rzero::Code;
use rzero::config::{ClientConfig, ServerConfig};
use rzero::discovery::etcd::EtcdClient;
use rzero::health::pb::HealthCheckRequest;
use rzero::health::pb::health_client::HealthClient;
use rzero_tests::default::echo::v1::EchoRequest;
use rzero_tests::default::echo::v1::echo_client::EchoClient;
use rzero_tests::echo;
use rzero_tests::etcd::EtcdServer;
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
