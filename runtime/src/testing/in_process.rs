//! A real server on an in-memory connection.
//!
//! Each connection the client opens is a fresh [`tokio::io::duplex`] pipe: the client keeps one
//! end, the other goes down a channel that the server accepts connections from, exactly as it
//! accepts TCP sockets. Above the pipe, everything is what runs over TCP: hyper's HTTP/2,
//! tonic's framing and codecs, rzero's dispatch, deadlines, compression and limits.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper_util::rt::TokioIo;
use tokio::io::DuplexStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::transport::Endpoint;

use crate::{Client, Error, ServerBuilder};

/// Bytes buffered in each direction of a pipe before the writer waits for the reader.
/// HTTP/2 flow control keeps far less than this in flight per stream, so it never deadlocks.
const PIPE_CAPACITY: usize = 1 << 20;

/// A server running on a tokio task, reachable only through [`InProcessServer::client`].
///
/// Dropping it asks the server to stop (in-flight calls still finish);
/// [`InProcessServer::shutdown`] also waits for that.
#[derive(Debug)]
pub struct InProcessServer {
    client: Client,
    connections: mpsc::UnboundedSender<DuplexStream>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), Error>>>,
}

impl InProcessServer {
    /// Starts serving `server`'s services (with all its settings) on a new tokio task.
    ///
    /// # Panics
    /// Outside a tokio runtime, like [`tokio::spawn`].
    pub fn start(server: ServerBuilder) -> Self {
        let (connections, accepted) = mpsc::unbounded_channel::<DuplexStream>();
        let (shutdown, stop) = oneshot::channel::<()>();
        let incoming = UnboundedReceiverStream::new(accepted).map(Ok::<_, std::io::Error>);
        let task = tokio::spawn(server.serve_with_incoming(incoming, async move {
            // Stop on an explicit shutdown and when the handle is dropped alike.
            let _ = stop.await;
        }));
        // The authority only names the server in `:authority`; no resolution happens.
        let channel = Endpoint::from_static("http://in-process.rzero").connect_with_connector_lazy(
            Connector {
                connections: connections.clone(),
            },
        );
        Self {
            client: Client::from_channel(channel),
            connections,
            shutdown: Some(shutdown),
            task: Some(task),
        }
    }

    /// A client connected to this server; hand it to a generated client's `new`, e.g.
    /// `GreeterClient::new(server.client())`. Clients are cheap to clone and share one
    /// connection.
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// Sends one HTTP/1.1 request on a fresh in-memory connection and reads the whole
    /// response: for the REST gateway a server serves on its gRPC port
    /// ([`ServerBuilder::gateway`](crate::ServerBuilder::gateway)), or anything else not
    /// `application/grpc`. A request without a `host` header gets one.
    pub async fn http(
        &self,
        request: http::Request<bytes::Bytes>,
    ) -> Result<http::Response<bytes::Bytes>, Error> {
        use http_body_util::{BodyExt, Full};

        let (client_end, server_end) = tokio::io::duplex(PIPE_CAPACITY);
        self.connections.send(server_end).map_err(|_| {
            Error::io(std::io::Error::new(
                std::io::ErrorKind::ConnectionRefused,
                "the in-process server has shut down",
            ))
        })?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(client_end))
                .await
                .map_err(Error::http)?;
        tokio::spawn(connection);
        let (mut parts, body) = request.into_parts();
        parts
            .headers
            .entry(http::header::HOST)
            .or_insert(http::HeaderValue::from_static("in-process.rzero"));
        let response = sender
            .send_request(http::Request::from_parts(parts, Full::new(body)))
            .await
            .map_err(Error::http)?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await.map_err(Error::http)?.to_bytes();
        Ok(http::Response::from_parts(parts, body))
    }

    /// Stops accepting connections, lets in-flight calls finish, and returns how the server
    /// ended. Calls made afterwards fail with `UNAVAILABLE`.
    ///
    /// # Panics
    /// If the server task panicked.
    pub async fn shutdown(mut self) -> Result<(), Error> {
        if let Some(shutdown) = self.shutdown.take() {
            // The server may already be gone; its result says why.
            let _ = shutdown.send(());
        }
        match self.task.take() {
            Some(task) => task.await.expect("in-process server task panicked"),
            None => Ok(()),
        }
    }
}

impl Drop for InProcessServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// The client's connector: every connection attempt makes a pipe and hands the server its end.
#[derive(Debug, Clone)]
struct Connector {
    connections: mpsc::UnboundedSender<DuplexStream>,
}

impl tower_service::Service<http::Uri> for Connector {
    type Response = TokioIo<DuplexStream>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Uri) -> Self::Future {
        let (client_end, server_end) = tokio::io::duplex(PIPE_CAPACITY);
        let result = self
            .connections
            .send(server_end)
            .map(|()| TokioIo::new(client_end))
            .map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::ConnectionRefused,
                    "the in-process server has shut down",
                )
            });
        Box::pin(std::future::ready(result))
    }
}
