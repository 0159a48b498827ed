//! Serving a REST gateway for the gateway tests, in each of its three modes: in-process on
//! the gRPC port, in-process on a port of its own, and as a proxy through `rzero::Client`
//! in front of a separate gRPC server. Everything on 127.0.0.1, on free ports.

use std::net::SocketAddr;
use std::time::Duration;

use rzero::gateway::GatewayBuilder;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How the gateway is served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `ServerBuilder::gateway`: gRPC and REST on one port, in-process.
    SamePort,
    /// `ServerBuilder::gateway_on`: REST on its own port, in-process.
    OwnPort,
    /// `Gateway::proxy` through an `rzero::Client` to a separate gRPC server.
    Proxy,
}

/// Every mode, for tests that run in each.
pub const MODES: [Mode; 3] = [Mode::SamePort, Mode::OwnPort, Mode::Proxy];

/// A running gRPC server and gateway; [`stop`](Self::stop) shuts both down.
#[derive(Debug)]
pub struct Fixture {
    /// The gRPC server's address.
    pub grpc: SocketAddr,
    /// Where the gateway answers HTTP (the gRPC address in [`Mode::SamePort`]).
    pub http: SocketAddr,
    stop: Vec<oneshot::Sender<()>>,
    tasks: Vec<JoinHandle<Result<(), rzero::Error>>>,
}

impl Fixture {
    /// Builds `gateway` and serves it in `mode` with the gRPC server `services()` makes
    /// (the proxy mode's upstream is that server).
    pub async fn start(
        gateway: GatewayBuilder,
        mode: Mode,
        services: impl FnOnce() -> rzero::ServerBuilder,
    ) -> Fixture {
        let gateway = gateway.build().expect("gateway builds");
        let grpc_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let grpc = grpc_listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let signal = async {
            let _ = stopped.await;
        };
        match mode {
            Mode::SamePort => {
                let task = tokio::spawn(
                    services()
                        .gateway(gateway)
                        .serve_with_listener(grpc_listener, signal),
                );
                Fixture {
                    grpc,
                    http: grpc,
                    stop: vec![stop],
                    tasks: vec![task],
                }
            }
            Mode::OwnPort => {
                let http_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                let http = http_listener.local_addr().unwrap();
                let task = tokio::spawn(
                    services()
                        .gateway_on(http_listener, gateway)
                        .serve_with_listener(grpc_listener, signal),
                );
                Fixture {
                    grpc,
                    http,
                    stop: vec![stop],
                    tasks: vec![task],
                }
            }
            Mode::Proxy => {
                let grpc_task = tokio::spawn(services().serve_with_listener(grpc_listener, signal));
                let client = rzero::Client::connect(&format!("http://{grpc}"))
                    .await
                    .expect("connects");
                let http_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                let http = http_listener.local_addr().unwrap();
                let (stop_http, http_stopped) = oneshot::channel::<()>();
                let http_task = tokio::spawn(rzero::gateway::serve(
                    http_listener,
                    gateway.proxy(&client),
                    async {
                        let _ = http_stopped.await;
                    },
                ));
                Fixture {
                    grpc,
                    http,
                    stop: vec![stop_http, stop],
                    tasks: vec![http_task, grpc_task],
                }
            }
        }
    }

    /// Stops the gateway and the server, and checks both ended well (within 10 s).
    pub async fn stop(self) {
        for stop in self.stop {
            let _ = stop.send(());
        }
        for task in self.tasks {
            tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .expect("server stops")
                .expect("server task")
                .expect("server ran");
        }
    }
}
