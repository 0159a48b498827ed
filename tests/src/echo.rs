//! The echo service (`testdata/echo/v1/echo.proto`) implemented on the generated server
//! trait, plus a helper that serves it on a loopback port for the behaviour tests.
//!
//! [`EchoService`] follows the same contract as the Python grpcio peer's server
//! (`tests/python/echo_peer.py`), so a test can run against either and expect the same
//! answers:
//!
//! - **`x-echo` request metadata**: its value comes back in every reply's
//!   `metadata_echo`, in the response header `x-echo-header` and, when the call succeeds,
//!   in the trailer `x-echo-trailer`. A failed call keeps the header (for a call that fails
//!   before answering, in the status's metadata) but has no such trailer: grpcio's
//!   `abort_with_status` replaces the trailing metadata, and this mirrors that.
//! - **`fail_with_code`** (non-zero): the call fails with that code, the message
//!   `requested failure: <message>`, and a `google.rpc.BadRequest` detail with one field
//!   violation (`field: "message"`, `description: "requested failure"`). Checked before
//!   `delay_ms`.
//! - **`delay_ms`**: the server sleeps that long before answering (per request message on
//!   the streaming-request RPCs).
//! - **`Unary`**: replies with `message`, `index` 0 and `payload`.
//! - **`ServerStream`**: `count` replies with `message` and `index` 0, 1, ... (no payload).
//! - **`ClientStream`**: one reply whose `message` joins the request messages with `,`
//!   and whose `index` is how many requests arrived (no payload).
//! - **`Bidi`**: one reply per request, in order, with `message`, `index` and `payload`.
//! - The streaming-request RPCs fail when the failing request arrives: `ClientStream`
//!   fails the call, `Bidi` ends its reply stream with the error after the replies to the
//!   earlier requests.
//!
//! The Python peer also gzips its responses when asked through `x-echo-compress: gzip`
//! metadata, because grpcio cannot negotiate response compression per call. rzero servers
//! negotiate it from the client's `grpc-accept-encoding` instead, so that metadata is ignored
//! here.

use std::net::SocketAddr;
use std::time::Duration;

use rzero::metadata::AsciiMetadataValue;
use rzero::{BoxStream, CompressionEncoding, Request, Response, Status, Streaming, Trailers};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;

use crate::default::echo::v1::echo_server::{Echo, EchoServer};
use crate::default::echo::v1::{EchoReply, EchoRequest};

/// Message size limit (both directions) of the server [`spawn_server`] starts: 64 MiB, the
/// same as the Python peer's.
pub const MAX_MESSAGE_SIZE: usize = 64 * 1024 * 1024;

/// Request metadata whose value the service echoes.
pub const ECHO_KEY: &str = "x-echo";
/// Response header carrying the `x-echo` value.
pub const ECHO_HEADER: &str = "x-echo-header";
/// Response trailer carrying the `x-echo` value.
pub const ECHO_TRAILER: &str = "x-echo-trailer";

/// The echo service; see the [module docs](self) for its contract.
#[derive(Debug, Clone, Copy, Default)]
pub struct EchoService;

/// The request's `x-echo` metadata, as it arrived.
fn x_echo<T>(request: &Request<T>) -> Option<AsciiMetadataValue> {
    request.metadata().get(ECHO_KEY).cloned()
}

/// The `metadata_echo` field for an `x-echo` value (empty when absent).
fn echo_text(echo: Option<&AsciiMetadataValue>) -> String {
    echo.map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
        .unwrap_or_default()
}

/// Wraps a reply: `x-echo-header` header and `x-echo-trailer` trailer when `x-echo` was sent.
fn respond<T>(message: T, echo: Option<&AsciiMetadataValue>) -> Response<T> {
    let (response, trailers) = respond_later(message, echo);
    if let (Some(trailers), Some(value)) = (trailers, echo) {
        trailers.insert(ECHO_TRAILER, value.clone());
    }
    response
}

/// Wraps a reply with the `x-echo-header` header when `x-echo` was sent, and returns the
/// (still empty) trailers that go out after its last message, to be filled in meanwhile.
fn respond_later<T>(
    message: T,
    echo: Option<&AsciiMetadataValue>,
) -> (Response<T>, Option<Trailers>) {
    let mut response = Response::new(message);
    let Some(value) = echo else {
        return (response, None);
    };
    response.metadata_mut().insert(ECHO_HEADER, value.clone());
    let trailers = Trailers::new();
    response.extensions_mut().insert(trailers.clone());
    (response, Some(trailers))
}

/// The status a request with a non-zero `fail_with_code` asks for, if any.
///
/// `echo` is the `x-echo` value for a call that fails before answering: its status is then
/// the whole response, so it carries the `x-echo-header` header.
fn requested_failure(
    request: &EchoRequest,
    echo: Option<&AsciiMetadataValue>,
) -> Result<(), Status> {
    if request.fail_with_code == 0 {
        return Ok(());
    }
    let bad_request = rzero::google::rpc::BadRequest {
        field_violations: vec![rzero::google::rpc::bad_request::FieldViolation {
            field: "message".into(),
            description: "requested failure".into(),
            ..Default::default()
        }],
    };
    let mut status = rzero::status::with_details(
        rzero::Code::from_i32(request.fail_with_code),
        format!("requested failure: {}", request.message),
        &[rzero::status::pack(&bad_request)],
    );
    if let Some(value) = echo {
        status.metadata_mut().insert(ECHO_HEADER, value.clone());
    }
    Err(status)
}

/// Sleeps for the request's `delay_ms`, if any.
async fn requested_delay(request: &EchoRequest) {
    if request.delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(request.delay_ms.into())).await;
    }
}

#[rzero::async_trait]
impl Echo for EchoService {
    async fn unary(&self, request: Request<EchoRequest>) -> Result<Response<EchoReply>, Status> {
        let echo = x_echo(&request);
        let request = request.into_inner();
        requested_failure(&request, echo.as_ref())?;
        requested_delay(&request).await;
        let reply = EchoReply {
            message: request.message,
            index: 0,
            payload: request.payload,
            metadata_echo: echo_text(echo.as_ref()),
        };
        Ok(respond(reply, echo.as_ref()))
    }

    async fn server_stream(
        &self,
        request: Request<EchoRequest>,
    ) -> Result<Response<BoxStream<EchoReply>>, Status> {
        let echo = x_echo(&request);
        let request = request.into_inner();
        requested_failure(&request, echo.as_ref())?;
        requested_delay(&request).await;
        let metadata_echo = echo_text(echo.as_ref());
        let replies = (0..request.count).map(move |index| {
            Ok(EchoReply {
                message: request.message.clone(),
                index,
                payload: Vec::new(),
                metadata_echo: metadata_echo.clone(),
            })
        });
        let stream: BoxStream<EchoReply> = Box::pin(tokio_stream::iter(replies));
        Ok(respond(stream, echo.as_ref()))
    }

    async fn client_stream(
        &self,
        request: Request<Streaming<EchoRequest>>,
    ) -> Result<Response<EchoReply>, Status> {
        let echo = x_echo(&request);
        let mut requests = request.into_inner();
        let mut messages = Vec::new();
        while let Some(request) = requests.message().await? {
            requested_failure(&request, echo.as_ref())?;
            requested_delay(&request).await;
            messages.push(request.message);
        }
        let reply = EchoReply {
            index: u32::try_from(messages.len())
                .map_err(|_| Status::invalid_argument("too many requests"))?,
            message: messages.join(","),
            payload: Vec::new(),
            metadata_echo: echo_text(echo.as_ref()),
        };
        Ok(respond(reply, echo.as_ref()))
    }

    async fn bidi(
        &self,
        request: Request<Streaming<EchoRequest>>,
    ) -> Result<Response<BoxStream<EchoReply>>, Status> {
        let echo = x_echo(&request);
        let mut requests = request.into_inner();
        let metadata_echo = echo_text(echo.as_ref());
        let (tx, rx) = mpsc::channel(16);
        let stream: BoxStream<EchoReply> = Box::pin(ReceiverStream::new(rx));
        // The header goes out with the response; the trailer only if the stream ends well.
        let (response, trailers) = respond_later(stream, echo.as_ref());
        // Replies are produced by a task so that each can wait for its request (and its
        // delay); the task ends when the client's stream ends, fails, or the reply stream is
        // dropped (the client went away).
        tokio::spawn(async move {
            let mut index = 0;
            loop {
                let reply = match requests.message().await {
                    // The headers are out already, so the failure carries no metadata.
                    Ok(Some(request)) => match requested_failure(&request, None) {
                        Ok(()) => {
                            requested_delay(&request).await;
                            Ok(EchoReply {
                                message: request.message,
                                index,
                                payload: request.payload,
                                metadata_echo: metadata_echo.clone(),
                            })
                        }
                        Err(status) => Err(status),
                    },
                    Ok(None) => {
                        // Filled in before `tx` drops and ends the reply stream, hence
                        // before the trailers frame is written.
                        if let (Some(trailers), Some(value)) = (&trailers, echo) {
                            trailers.insert(ECHO_TRAILER, value);
                        }
                        break;
                    }
                    Err(status) => Err(status),
                };
                let failed = reply.is_err();
                if tx.send(reply).await.is_err() || failed {
                    break;
                }
                index += 1;
            }
        });
        Ok(response)
    }
}

/// [`EchoService`] wrapped for serving as [`spawn_server`] does: 64 MiB message limits both
/// ways, gzip accepted and sent (when the client accepts it).
pub fn echo_server() -> EchoServer<EchoService> {
    EchoServer::new(EchoService)
        .accept_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(MAX_MESSAGE_SIZE)
        .max_encoding_message_size(MAX_MESSAGE_SIZE)
}

/// A server running on a tokio task. Dropping the handle asks the server to stop (it then
/// drains its in-flight calls on its own); [`ServerHandle::shutdown`] also waits for it.
#[derive(Debug)]
pub struct ServerHandle {
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), rzero::Error>>>,
}

impl ServerHandle {
    /// Stops accepting connections, waits for in-flight calls to finish and returns how
    /// the server ended.
    ///
    /// # Panics
    /// If the server task panicked.
    pub async fn shutdown(mut self) -> Result<(), rzero::Error> {
        if let Some(shutdown) = self.shutdown.take() {
            // The server may already be gone; its result below says why.
            let _ = shutdown.send(());
        }
        match self.task.take() {
            Some(task) => task.await.expect("echo server task panicked"),
            None => Ok(()),
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// Serves [`echo_server`] on `127.0.0.1` (a port the OS picks) on a tokio task.
///
/// # Panics
/// If no loopback port can be bound.
pub async fn spawn_server() -> (SocketAddr, ServerHandle) {
    spawn_service(echo_server()).await
}

/// Serves `service` (e.g. an [`EchoServer`] with other settings, or around another [`Echo`]
/// implementation) on `127.0.0.1` (a port the OS picks) on a tokio task.
///
/// # Panics
/// If no loopback port can be bound.
pub async fn spawn_service<T: Echo>(service: EchoServer<T>) -> (SocketAddr, ServerHandle) {
    spawn_builder(rzero::Server::builder().add_service(service)).await
}

/// Serves everything on `builder` on `127.0.0.1` (a port the OS picks) on a tokio task.
///
/// # Panics
/// If no loopback port can be bound.
pub async fn spawn_builder(builder: rzero::ServerBuilder) -> (SocketAddr, ServerHandle) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener
        .local_addr()
        .expect("local address of the listener");
    let (shutdown, stop) = oneshot::channel::<()>();
    // Stop on an explicit shutdown and when the handle is dropped alike.
    let task = tokio::spawn(builder.serve_with_listener(listener, async move {
        let _ = stop.await;
    }));
    (
        addr,
        ServerHandle {
            shutdown: Some(shutdown),
            task: Some(task),
        },
    )
}

/// Where a test's server runs: the same tests run over both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `rzero::Server` on a loopback port, called over TCP.
    Tcp,
    /// `rzero::testing::InProcessServer`: the same server over in-memory pipes.
    InProcess,
}

/// A server started by [`serve`].
#[derive(Debug)]
pub enum Served {
    /// Listening on this loopback address.
    Tcp(SocketAddr, ServerHandle),
    /// Reachable through its own client.
    InProcess(Box<rzero::testing::InProcessServer>),
}

/// Serves `service` over `transport`.
///
/// # Panics
/// If no loopback port can be bound.
pub async fn serve<T: Echo>(transport: Transport, service: EchoServer<T>) -> Served {
    serve_builder(transport, rzero::Server::builder().add_service(service)).await
}

/// Serves everything on `builder` over `transport`.
///
/// # Panics
/// If no loopback port can be bound.
pub async fn serve_builder(transport: Transport, builder: rzero::ServerBuilder) -> Served {
    match transport {
        Transport::Tcp => {
            let (addr, handle) = spawn_builder(builder).await;
            Served::Tcp(addr, handle)
        }
        Transport::InProcess => {
            Served::InProcess(Box::new(rzero::testing::InProcessServer::start(builder)))
        }
    }
}

impl Served {
    /// A client of this server with rzero's default settings (connected, for TCP).
    pub async fn client(&self) -> Result<rzero::Client, rzero::ConnectError> {
        match self {
            Self::Tcp(addr, _) => rzero::Client::connect(&addr.to_string()).await,
            Self::InProcess(server) => Ok(server.client()),
        }
    }

    /// Stops the server, lets in-flight calls finish, and returns how it ended.
    ///
    /// # Panics
    /// If the server task panicked.
    pub async fn shutdown(self) -> Result<(), rzero::Error> {
        match self {
            Self::Tcp(_, handle) => handle.shutdown().await,
            Self::InProcess(server) => server.shutdown().await,
        }
    }
}

/// An interceptor that names its server in the `x-server` response header, so tests of
/// balancing and discovery can see which server answered.
pub fn names_itself(name: &'static str) -> impl rzero::Interceptor {
    rzero::interceptor::from_fn(
        move |call: rzero::interceptor::Call, next: rzero::interceptor::Next| async move {
            let mut reply = next.run(call).await?;
            let value = name
                .parse()
                .map_err(|_| Status::internal("server name is not ASCII"))?;
            reply.metadata_mut().insert("x-server", value);
            Ok(reply)
        },
    )
}
