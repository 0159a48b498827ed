//! `rzero::Server`: several services on one port, graceful shutdown that lets in-flight calls
//! finish, and generated servers mounted on a plain tonic router.

use std::time::Duration;

use rzero_tests::default::greeter::v1::greeter_client::GreeterClient;
use rzero_tests::default::greeter::v1::greeter_server::{Greeter, GreeterServer};
use rzero_tests::default::greeter::v1::{HelloReply, HelloRequest};
use rzero_tests::default::no_package_service_client::NoPackageServiceClient;
use rzero_tests::default::no_package_service_server::{NoPackageService, NoPackageServiceServer};
use rzero_tests::default::{PingReply, PingRequest};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::time::timeout;

const BOUND: Duration = Duration::from_secs(20);

/// Greets; a request named "gate" reports that it started and then waits to be released,
/// so a test can hold a call in flight without sleeping.
struct Gated {
    started: mpsc::UnboundedSender<()>,
    release: tokio::sync::Mutex<Option<oneshot::Receiver<()>>>,
}

#[rzero::async_trait]
impl Greeter for Gated {
    async fn say_hello(
        &self,
        request: rzero::Request<HelloRequest>,
    ) -> Result<rzero::Response<HelloReply>, rzero::Status> {
        let name = request.into_inner().name;
        if name == "gate" {
            let _ = self.started.send(());
            if let Some(release) = self.release.lock().await.take() {
                let _ = release.await;
            }
        }
        Ok(rzero::Response::new(HelloReply {
            message: format!("Hello {name}"),
        }))
    }

    async fn say_hello_stream(
        &self,
        request: rzero::Request<HelloRequest>,
    ) -> Result<rzero::Response<rzero::BoxStream<HelloReply>>, rzero::Status> {
        let HelloRequest { name, repeat } = request.into_inner();
        let replies = (0..repeat).map(move |i| {
            Ok(HelloReply {
                message: format!("Hello {name} #{i}"),
            })
        });
        Ok(rzero::Response::new(Box::pin(tokio_stream::iter(replies))))
    }
}

struct Pinger;

#[rzero::async_trait]
impl NoPackageService for Pinger {
    async fn ping(
        &self,
        request: rzero::Request<PingRequest>,
    ) -> Result<rzero::Response<PingReply>, rzero::Status> {
        Ok(rzero::Response::new(PingReply {
            text: request.into_inner().text,
        }))
    }
}

fn gated() -> (Gated, mpsc::UnboundedReceiver<()>, oneshot::Sender<()>) {
    let (started_tx, started_rx) = mpsc::unbounded_channel();
    let (release_tx, release_rx) = oneshot::channel();
    let service = Gated {
        started: started_tx,
        release: tokio::sync::Mutex::new(Some(release_rx)),
    };
    (service, started_rx, release_tx)
}

#[tokio::test]
async fn serves_several_services_on_one_port_and_drains_on_shutdown() {
    let (greeter, mut started, release) = gated();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let server = tokio::spawn(
        rzero::Server::builder()
            .add_service(GreeterServer::new(greeter))
            .add_service(NoPackageServiceServer::new(Pinger))
            .serve_with_listener(listener, async {
                let _ = stop_rx.await;
            }),
    );

    let greeter = GreeterClient::connect(&addr).await.unwrap();
    let pinger = NoPackageServiceClient::connect(&addr).await.unwrap();
    let pong = timeout(BOUND, pinger.ping(PingRequest { text: "hi".into() }))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pong.into_inner().text, "hi");
    let mut stream = timeout(
        BOUND,
        greeter.say_hello_stream(HelloRequest {
            name: "ann".into(),
            repeat: 3,
        }),
    )
    .await
    .unwrap()
    .unwrap()
    .into_inner();
    let mut messages = Vec::new();
    while let Some(reply) = timeout(BOUND, stream.message()).await.unwrap().unwrap() {
        messages.push(reply.message);
    }
    assert_eq!(messages, ["Hello ann #0", "Hello ann #1", "Hello ann #2"]);

    // Hold one call in flight, ask the server to stop, and check the call still completes.
    let in_flight = tokio::spawn({
        let greeter = greeter.clone();
        async move {
            greeter
                .say_hello(HelloRequest {
                    name: "gate".into(),
                    repeat: 0,
                })
                .await
        }
    });
    timeout(BOUND, started.recv()).await.unwrap().unwrap();
    stop_tx.send(()).unwrap();
    tokio::task::yield_now().await;
    assert!(
        !server.is_finished(),
        "the server must wait for the in-flight call"
    );
    release.send(()).unwrap();
    let reply = timeout(BOUND, in_flight).await.unwrap().unwrap().unwrap();
    assert_eq!(reply.into_inner().message, "Hello gate");
    timeout(BOUND, server).await.unwrap().unwrap().unwrap();

    let refused = GreeterClient::connect(&addr).await;
    assert!(refused.is_err(), "the port must be closed after shutdown");
}

#[tokio::test]
async fn generated_servers_mount_on_a_plain_tonic_router() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let (greeter, _started, _release) = gated();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(GreeterServer::new(greeter))
            .add_service(NoPackageServiceServer::new(Pinger))
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listener),
                async {
                    let _ = stop_rx.await;
                },
            ),
    );
    let greeter = GreeterClient::connect(&addr).await.unwrap();
    let reply = timeout(
        BOUND,
        greeter.say_hello(HelloRequest {
            name: "tonic".into(),
            repeat: 0,
        }),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(reply.into_inner().message, "Hello tonic");
    let pinger = NoPackageServiceClient::connect(&addr).await.unwrap();
    let pong = timeout(BOUND, pinger.ping(PingRequest { text: "x".into() }))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pong.into_inner().text, "x");
    stop_tx.send(()).unwrap();
    timeout(BOUND, server).await.unwrap().unwrap().unwrap();
}

#[tokio::test]
async fn a_client_to_a_server_that_is_down_fails_with_unavailable() {
    // Bind then drop a listener to get a port nobody listens on.
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    assert!(GreeterClient::connect(&addr).await.is_err());
    let lazy = GreeterClient::connect_lazy(&addr).unwrap();
    let status = timeout(BOUND, lazy.say_hello(HelloRequest::default()))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(status.code(), rzero::Code::Unavailable, "{status}");
}
