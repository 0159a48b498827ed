//! gRPC-Web through the gateway's proxy: browsers calling a remote gRPC server of any
//! make, the job Envoy's `grpc_web` filter does in front of grpc-go and go-zero servers.
//!
//! # Decisions
//! - **The same translation and CORS as on an `rzero::Server`'s port** (`server::grpc_web`,
//!   tonic-web underneath): a gRPC-Web call becomes a gRPC call sent, unchanged, through the
//!   gateway's transport (the [`Client`](crate::Client)'s connection, discovery and
//!   balancing). No message is decoded: the proxy does not need the method's types, and a
//!   gRPC-Web call costs what the translation costs.
//! - **Only the gateway's services are forwarded**: those defined in its descriptor sets.
//!   Another path gets `UNIMPLEMENTED` from the proxy, so a browser cannot reach services
//!   the upstream keeps for its own callers (admin, reflection) just because they share
//!   the upstream's port.
//! - **Headers are metadata**, as gRPC-Web defines them: they pass as they came, except
//!   those of the hop (`Connection`, `Host`, ...). `x-forwarded-for` gains the browser's
//!   address and `x-forwarded-host` the `Host` it asked for, as on REST calls.
//! - **The gateway's `timeout` bounds gRPC-Web calls too**: a call without `grpc-timeout`,
//!   or with a longer one, is sent with the gateway's.
//! - **A call whose connection dies before it leaves may go to another endpoint**, as a
//!   REST call may: a gRPC-Web request body is complete when it arrives, unless the method
//!   streams requests, which browsers cannot.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::{self, Future};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::header::{self, HeaderName};
use http_body_util::{BodyExt as _, Full};
use tonic::body::Body;

use super::grpc::Backend;
use super::headers;
use crate::balance::Replayable;
use crate::method::MethodKind;
use crate::server::GrpcWeb;
use crate::server::grpc_web::Web;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// gRPC-Web on a gateway service, checked.
#[derive(Debug)]
pub(super) struct WebProxy {
    web: Web,
    methods: Arc<Methods>,
    limits: Limits,
}

/// The gateway's limits, as they apply to gRPC-Web calls.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    /// The longest a call may take, when the client asks for longer or says nothing.
    pub(super) timeout: Option<Duration>,
    /// The largest request body of a call that does not stream requests.
    pub(super) max_body_size: usize,
}

/// Every method of the gateway's services, by gRPC path (`/pkg.Service/Method`).
pub(super) type Methods = HashMap<Box<str>, MethodKind>;

impl WebProxy {
    /// Checks `grpc_web` for the services of `methods`.
    pub(super) fn new(
        grpc_web: GrpcWeb,
        methods: Arc<Methods>,
        limits: Limits,
    ) -> Result<WebProxy, crate::Error> {
        let mut services: Vec<Box<str>> = methods
            .keys()
            .filter_map(|path| Some(path.strip_prefix('/')?.split_once('/')?.0.into()))
            .collect();
        services.sort_unstable();
        services.dedup();
        // The gateway is on the same port: preflights for other paths are its own.
        let web = grpc_web.compile(services, true)?;
        Ok(WebProxy {
            web,
            methods,
            limits,
        })
    }

    /// Whether the request is gRPC-Web's (a gRPC-Web call, or its preflight).
    pub(super) fn takes<B>(&self, request: &http::Request<B>) -> bool {
        self.web.takes(request)
    }

    /// Answers a request [`takes`](Self::takes) accepted, forwarding the call to `backend`;
    /// `peer` is the address the request came from.
    pub(super) async fn call(
        &self,
        backend: Backend,
        peer: Option<SocketAddr>,
        request: http::Request<Body>,
    ) -> http::Response<Body> {
        let forward = Forward {
            backend,
            methods: Arc::clone(&self.methods),
            limits: self.limits,
            peer,
        };
        self.web.call(forward, request).await
    }
}

/// The gRPC side of a proxied gRPC-Web call: tonic-web's translated request, sent on.
#[derive(Clone)]
struct Forward {
    backend: Backend,
    methods: Arc<Methods>,
    limits: Limits,
    peer: Option<SocketAddr>,
}

/// Headers of the connection, not of the call: HTTP/1.1's hop-by-hop headers (RFC 9110
/// §7.6.1), which HTTP/2 forbids, and `Host`, which names the proxy.
const HOP_HEADERS: [HeaderName; 6] = [
    header::CONNECTION,
    header::HOST,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

impl tower_service::Service<http::Request<Body>> for Forward {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<http::Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        let Some(kind) = self.methods.get(request.uri().path()).copied() else {
            let status = tonic::Status::unimplemented(format!(
                "{} is not a method of this gateway's services",
                request.uri().path()
            ));
            return Box::pin(future::ready(Ok(status.into_http())));
        };
        let headers = request.headers_mut();
        let deadline = match (headers::timeout(headers), self.limits.timeout) {
            (Err(()), _) => {
                let status = tonic::Status::invalid_argument("invalid grpc-timeout header");
                return Box::pin(future::ready(Ok(status.into_http())));
            }
            (Ok(Some(asked)), Some(limit)) if limit < asked => Some(limit),
            (Ok(None), limit) => limit,
            (Ok(Some(_)), _) => None, // the client's own stands
        };
        if let Some(deadline) = deadline {
            headers.insert(
                crate::deadline::GRPC_TIMEOUT,
                headers::encode_timeout(deadline),
            );
        }
        headers::forwarded(headers, self.peer);
        // Headers that `Connection` names are the hop's too (but tonic-web's `te: trailers`
        // is the call's).
        let named: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
            .filter(|name| *name != header::TE)
            .collect();
        for name in named.iter().chain(&HOP_HEADERS) {
            headers.remove(name);
        }
        *request.version_mut() = http::Version::HTTP_2;
        let backend = Arc::clone(&self.backend);
        if kind.client_streaming() {
            return Box::pin(async move { Ok(send(&backend, request).await) });
        }
        // The request is read whole before it is sent: it is one message, which the server
        // needs whole anyway, and a whole request can go to another endpoint when its
        // connection turns out dead. (An upstream that answers before the end of a body it
        // streams is the server's `drain` concern: the browser's connection is kept.)
        request.extensions_mut().insert(Replayable);
        let limit = self.limits.max_body_size;
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let body = match http_body_util::Limited::new(body, limit).collect().await {
                Ok(body) => body.to_bytes(),
                Err(error) => return Ok(unreadable(&*error, limit).into_http()),
            };
            let request = http::Request::from_parts(parts, Body::new(Full::new(body)));
            Ok(send(&backend, request).await)
        })
    }
}

/// Sends `request` on, answering a call the transport could not make with its status.
async fn send(backend: &Backend, request: http::Request<Body>) -> http::Response<Body> {
    match backend(request).await {
        Ok(response) => response,
        Err(error) => failure(&*error).into_http(),
    }
}

/// The status of a request whose body could not be read: over `limit`, or malformed
/// gRPC-Web (tonic-web's status).
fn unreadable(error: &(dyn std::error::Error + 'static), limit: usize) -> tonic::Status {
    if error.is::<http_body_util::LengthLimitError>() {
        return tonic::Status::resource_exhausted(format!(
            "the request is over the gateway's {limit}-byte limit"
        ));
    }
    status_in(error)
        .unwrap_or_else(|| tonic::Status::invalid_argument(format!("unreadable request: {error}")))
}

/// The status of a call the transport could not make: its own when it has one; the
/// deadline's when the channel gave up waiting (tonic's client enforces `grpc-timeout`,
/// and says `CANCELLED` for it, where the call's client expects `DEADLINE_EXCEEDED`); else
/// `UNAVAILABLE`.
fn failure(error: &(dyn std::error::Error + 'static)) -> tonic::Status {
    status_in(error)
        .unwrap_or_else(|| tonic::Status::unavailable(format!("gRPC service unreachable: {error}")))
}

/// The status an error or one of its sources carries: a `Status`, or the deadline's for
/// tonic's `TimeoutExpired`.
fn status_in(error: &(dyn std::error::Error + 'static)) -> Option<tonic::Status> {
    let mut source = Some(error);
    while let Some(error) = source {
        if let Some(status) = error.downcast_ref::<tonic::Status>() {
            return Some(status.clone());
        }
        if error.is::<tonic::TimeoutExpired>() {
            return Some(tonic::Status::deadline_exceeded("deadline exceeded"));
        }
        source = error.source();
    }
    None
}
