//! Calling services: the channel generated clients run on.
//!
//! A generated `XxxClient` holds an [`rzero::Client`] and forwards each RPC to one of
//! its four call methods with the method's [`MethodDescriptor`]. Calls take `&self`: the client
//! is cheap to clone and safe to share across tasks, unlike tonic's `&mut self` clients.
//!
//! Per-call settings travel on the request: metadata in `request.metadata_mut()`, a deadline
//! with [`CallExt::deadline`] (sent as `grpc-timeout` and enforced here too), and compression
//! with [`CallExt::compress`]. This is also where discovery, balancing and interceptors plug in:
//! generated code never sees the transport.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use tokio_stream::Stream;
use tonic::client::Grpc;
use tonic::codec::CompressionEncoding;
use tonic::transport::{Channel, Endpoint};
use tonic::{IntoRequest, IntoStreamingRequest, Request, Response, Status, Streaming};

use crate::interceptor::codec::{HookCodec, Hooks};
use crate::interceptor::{Body, Call, Chain, ChainEnd, Conversions, Interceptor, Reply};
use crate::method::MethodDescriptor;
use crate::protection::{ClientProtection, SharedTicket};

pub use crate::error::ConnectError;
pub use builder::ClientBuilder;
use retry::Retrier;
pub use retry::RetryPolicy;

use crate::balance::{HashKey, RouteTo};
use crate::discovery::Target;
use transport::Transport;

mod builder;
mod retry;
mod transport;

/// A connection to a gRPC server, shared by every generated client built on it.
#[derive(Debug, Clone)]
pub struct Client {
    grpc: Grpc<Transport>,
    /// The same transport, for callers that speak gRPC framing themselves (the gateway).
    #[cfg_attr(not(feature = "gateway"), allow(dead_code))]
    transport: Arc<Transport>,
    interceptors: Arc<Chain>,
    timeouts: Arc<Timeouts>,
    retrier: Option<Arc<Retrier>>,
    /// Built with TLS settings ([`ClientBuilder::tls`]).
    secure: bool,
    protection: Option<Arc<ClientProtection>>,
    #[cfg(feature = "auth")]
    credentials: Arc<crate::auth::ClientCredentials>,
}

/// Deadlines a client gives calls that do not set their own.
#[derive(Debug, Default)]
pub(crate) struct Timeouts {
    pub(crate) default: Option<Duration>,
    pub(crate) by_method: HashMap<String, Duration>,
}

/// When a call must end, fixed when it starts, so that every attempt (retries included)
/// sends only the time that is left.
#[derive(Debug, Clone, Copy)]
struct CallDeadline(Instant);

/// Compression asked for on one call; see [`CallExt::compress`].
#[derive(Debug, Clone, Copy)]
struct SendCompression(CompressionEncoding);

impl Client {
    /// A client for `target`. A direct target (`host:port`, `http(s)://host:port`) is
    /// connected before this returns; a resolver target (`static:///…`, `dns:///…`,
    /// `etcd://…/key`) is balanced over whatever its resolver finds, with the default
    /// settings of [`Client::builder`], and never waits.
    pub async fn connect(target: &str) -> Result<Self, ConnectError> {
        match Target::parse(target)? {
            Target::Direct(address) => {
                let channel = endpoint(&address)?
                    .connect()
                    .await
                    .map_err(|e| ConnectError::transport(target, e))?;
                Ok(Self::from_channel(channel))
            }
            Target::Resolved(_) => Self::builder(target).build(),
        }
    }

    /// A client for `target` that connects on its first call: a server that is down fails
    /// calls with `UNAVAILABLE` instead of failing here.
    pub fn connect_lazy(target: &str) -> Result<Self, ConnectError> {
        Self::builder(target).build()
    }

    /// Wraps a tonic channel you configured yourself (TLS, keepalive, ...).
    pub fn from_channel(channel: Channel) -> Self {
        Self::from_transport(Transport::Direct(channel))
    }

    fn from_transport(transport: Transport) -> Self {
        #[allow(unused_mut)] // without compression features nothing is accepted
        let mut grpc = Grpc::new(transport.clone());
        #[cfg(feature = "gzip")]
        {
            grpc = grpc.accept_compressed(CompressionEncoding::Gzip);
        }
        #[cfg(feature = "zstd")]
        {
            grpc = grpc.accept_compressed(CompressionEncoding::Zstd);
        }
        Self {
            grpc,
            transport: Arc::new(transport),
            interceptors: Arc::default(),
            timeouts: Arc::default(),
            retrier: None,
            secure: false,
            protection: None,
            #[cfg(feature = "auth")]
            credentials: Arc::default(),
        }
    }

    pub(crate) fn with_security(mut self, secure: bool) -> Self {
        self.secure = secure;
        self
    }

    /// Whether calls go over TLS (the client was built with [`ClientBuilder::tls`]):
    /// credentials may ride on them. A client wrapping a channel of your own
    /// ([`Client::from_channel`]) says `false`.
    #[cfg_attr(not(feature = "auth"), allow(dead_code))]
    pub(crate) fn is_secure(&self) -> bool {
        self.secure
    }

    #[cfg(feature = "auth")]
    pub(crate) fn with_credentials(mut self, credentials: crate::auth::ClientCredentials) -> Self {
        self.credentials = Arc::new(credentials);
        self
    }

    pub(crate) fn with_timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = Arc::new(timeouts);
        self
    }

    pub(crate) fn with_breaker(mut self, breaker: crate::protection::Breaker) -> Self {
        self.protection = Some(Arc::new(ClientProtection::new(breaker)));
        self
    }

    /// Asks the breaker (if any) to let the call out; the ticket goes with the request to
    /// the transport, which settles it from the response's status.
    fn admit<T>(
        &self,
        method: &'static MethodDescriptor,
        request: &mut Request<T>,
    ) -> Result<Option<SharedTicket>, Status> {
        let Some(protection) = &self.protection else {
            return Ok(None);
        };
        let deadline = request
            .extensions()
            .get::<CallDeadline>()
            .map(|CallDeadline(at)| *at);
        let ticket = protection.admit(method, deadline).map_err(|mut refusal| {
            // So the retrier knows this call never had a chance: retrying it would only
            // ask the same breaker again.
            refusal.metadata_mut().insert(
                LOCAL_REFUSAL,
                tonic::metadata::MetadataValue::from_static("breaker"),
            );
            refusal
        })?;
        request.extensions_mut().insert(ticket.clone());
        Ok(Some(ticket))
    }

    pub(crate) fn with_retries(mut self, policy: RetryPolicy) -> Self {
        self.retrier = Some(Arc::new(Retrier::new(policy)));
        self
    }

    /// Fixes the call's deadline: its own `grpc-timeout`, else the client's setting for the
    /// method, and never later than what remains of the call being handled on this task.
    fn start_deadline<T>(&self, method: &'static MethodDescriptor, request: &mut Request<T>) {
        let own = request
            .metadata()
            .as_ref()
            .get(crate::deadline::GRPC_TIMEOUT)
            .and_then(|value| value.to_str().ok())
            .and_then(crate::deadline::parse_timeout);
        let configured = own.or_else(|| {
            self.timeouts
                .by_method
                .get(method.path())
                .copied()
                .or(self.timeouts.default)
        });
        let timeout = match (configured, crate::deadline::remaining()) {
            (Some(own), Some(inherited)) => Some(own.min(inherited)),
            (own, inherited) => own.or(inherited),
        };
        if let Some(at) = timeout.and_then(|timeout| Instant::now().checked_add(timeout)) {
            request.extensions_mut().insert(CallDeadline(at));
        }
    }

    /// Runs `attempt` once, or again after `UNAVAILABLE` as the retry policy allows.
    async fn retried<Req, T, Fut>(
        &self,
        method: &'static MethodDescriptor,
        request: Request<Req>,
        attempt: impl Fn(Request<Req>) -> Fut,
    ) -> Result<T, Status>
    where
        Req: Clone,
        Fut: Future<Output = Result<T, Status>>,
    {
        let Some(retrier) = self
            .retrier
            .as_ref()
            .filter(|retrier| retrier.policy.applies_to(method))
        else {
            return attempt(request).await;
        };
        let (metadata, extensions, message) = request.into_parts();
        let deadline = extensions.get::<CallDeadline>().map(|CallDeadline(at)| *at);
        let mut retries = 0;
        loop {
            let request =
                Request::from_parts(metadata.clone(), extensions.clone(), message.clone());
            let result = attempt(request).await;
            let unavailable =
                matches!(&result, Err(status) if status.code() == tonic::Code::Unavailable);
            let refused_here =
                matches!(&result, Err(status) if status.metadata().contains_key(LOCAL_REFUSAL));
            if refused_here {
                return result;
            }
            retrier.record(!unavailable);
            if !unavailable || retries + 1 >= retrier.policy.max_attempts_count() {
                return result;
            }
            retries += 1;
            let Some(wait) = retrier.backoff(retries) else {
                return result;
            };
            if deadline.is_some_and(|at| Instant::now() + wait >= at) {
                return result;
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// Adds an interceptor around every call made through this client (and its clones made
    /// afterwards). The first one added runs outermost; see [`crate::interceptor`].
    #[must_use]
    pub fn interceptor(mut self, interceptor: impl Interceptor) -> Self {
        Arc::make_mut(&mut self.interceptors).push(Arc::new(interceptor));
        self
    }

    /// Compresses every request with `encoding` (individual calls can still choose).
    #[must_use]
    pub fn send_compressed(mut self, encoding: CompressionEncoding) -> Self {
        self.grpc = self.grpc.send_compressed(encoding);
        self
    }

    /// Largest response message accepted, in bytes. Default: 4 MiB.
    #[must_use]
    pub fn max_decoding_message_size(mut self, limit: usize) -> Self {
        self.grpc = self.grpc.max_decoding_message_size(limit);
        self
    }

    /// Largest request message sent, in bytes. Default: no limit.
    #[must_use]
    pub fn max_encoding_message_size(mut self, limit: usize) -> Self {
        self.grpc = self.grpc.max_encoding_message_size(limit);
        self
    }

    /// The transport as a tower service taking gRPC requests (HTTP/2, framed messages).
    #[cfg(feature = "gateway")]
    pub(crate) fn transport(&self) -> Transport {
        Transport::clone(&self.transport)
    }

    async fn ready<T>(
        &self,
        method: &'static MethodDescriptor,
        request: &mut Request<T>,
    ) -> Result<Grpc<Transport>, Status> {
        #[cfg(feature = "auth")]
        self.credentials.attach(self.is_secure(), request)?;
        let mut grpc = self.grpc.clone();
        if let Some(SendCompression(encoding)) = request.extensions_mut().remove() {
            grpc = grpc.send_compressed(encoding);
        }
        request
            .extensions_mut()
            .insert(tonic::GrpcMethod::new(method.service(), method.method()));
        request.extensions_mut().insert(*method);
        grpc.ready()
            .await
            .map_err(|e| Status::unavailable(format!("connection not ready: {e}")))?;
        Ok(grpc)
    }

    /// Makes a unary call.
    pub async fn unary<Req, Resp>(
        &self,
        method: &'static MethodDescriptor,
        request: impl IntoRequest<Req>,
    ) -> Result<Response<Resp>, Status>
    where
        Req: prost::Message + Clone + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        let mut request = request.into_request();
        self.start_deadline(method, &mut request);
        let convert = Conversions {
            request_in: Body::message,
            request_out: Body::into_message,
            response_in: Body::message,
            response_out: Body::into_message,
        };
        self.retried(method, request, |request| {
            self.call(method, request, convert, move |mut grpc, request, codec| {
                Box::pin(async move { grpc.unary(request, path(method), codec).await })
            })
        })
        .await
    }

    /// Makes a call that answers with a stream.
    pub async fn server_streaming<Req, Resp>(
        &self,
        method: &'static MethodDescriptor,
        request: impl IntoRequest<Req>,
    ) -> Result<Response<Streaming<Resp>>, Status>
    where
        Req: prost::Message + Clone + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        let mut request = request.into_request();
        self.start_deadline(method, &mut request);
        let convert = Conversions {
            request_in: Body::message,
            request_out: Body::into_message,
            response_in: Body::stream::<Streaming<Resp>>,
            response_out: Body::into_stream::<Streaming<Resp>>,
        };
        self.retried(method, request, |request| {
            self.call(method, request, convert, move |mut grpc, request, codec| {
                Box::pin(async move { grpc.server_streaming(request, path(method), codec).await })
            })
        })
        .await
    }

    /// Makes a call that sends a stream and gets one answer.
    pub async fn client_streaming<Req, Resp, S>(
        &self,
        method: &'static MethodDescriptor,
        request: impl IntoStreamingRequest<Message = Req, Stream = S>,
    ) -> Result<Response<Resp>, Status>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
        S: Stream<Item = Req> + Send + 'static,
    {
        let mut request = request.into_streaming_request();
        self.start_deadline(method, &mut request);
        let convert = Conversions {
            request_in: Body::stream::<S>,
            request_out: Body::into_stream::<S>,
            response_in: Body::message,
            response_out: Body::into_message,
        };
        self.call(method, request, convert, move |mut grpc, request, codec| {
            Box::pin(async move { grpc.client_streaming(request, path(method), codec).await })
        })
        .await
    }

    /// Makes a call with streams both ways.
    pub async fn streaming<Req, Resp, S>(
        &self,
        method: &'static MethodDescriptor,
        request: impl IntoStreamingRequest<Message = Req, Stream = S>,
    ) -> Result<Response<Streaming<Resp>>, Status>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
        S: Stream<Item = Req> + Send + 'static,
    {
        let mut request = request.into_streaming_request();
        self.start_deadline(method, &mut request);
        let convert = Conversions {
            request_in: Body::stream::<S>,
            request_out: Body::into_stream::<S>,
            response_in: Body::stream::<Streaming<Resp>>,
            response_out: Body::into_stream::<Streaming<Resp>>,
        };
        self.call(method, request, convert, move |mut grpc, request, codec| {
            Box::pin(async move { grpc.streaming(request, path(method), codec).await })
        })
        .await
    }

    /// Runs one call: straight to the network without interceptors, else through the chain
    /// with the network at its end. `send` makes the tonic call of the method's kind.
    async fn call<ReqBody, RespBody, Req, Resp, F>(
        &self,
        method: &'static MethodDescriptor,
        request: Request<ReqBody>,
        convert: Conversions<ReqBody, RespBody>,
        send: F,
    ) -> Result<Response<RespBody>, Status>
    where
        ReqBody: Send + 'static,
        RespBody: Send + 'static,
        Req: prost::Message + 'static,
        Resp: prost::Message + Default + 'static,
        F: FnOnce(
                Grpc<Transport>,
                Request<ReqBody>,
                HookCodec<Req, Resp>,
            ) -> BoxFuture<'static, Result<Response<RespBody>, Status>>
            + Send
            + 'static,
    {
        let mut request = request;
        if let Some(CallDeadline(at)) = request.extensions().get::<CallDeadline>().copied() {
            let left = at.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Status::deadline_exceeded(
                    "deadline exceeded before the call was sent",
                ));
            }
            request.set_timeout(left);
        }
        if self.interceptors.is_empty() {
            let ticket = self.admit(method, &mut request)?;
            let result = match self.ready(method, &mut request).await {
                Ok(grpc) => send(grpc, request, HookCodec::new(None))
                    .await
                    .map_err(call_failed),
                Err(status) => Err(status),
            };
            return settled(ticket, result);
        }
        let client = self.clone();
        let chain = Arc::clone(&self.interceptors);
        let call = Call::new(method, request.map(convert.request_in));
        let endpoint: ChainEnd = Box::new(move |call: Call| {
            Box::pin(async move {
                let (metadata, extensions, body) = call.into_request().into_parts();
                let mut request =
                    Request::from_parts(metadata, extensions, (convert.request_out)(body)?);
                // The breaker sits next to the network, inside the interceptors.
                let ticket = client.admit(method, &mut request)?;
                let result = match client.ready(method, &mut request).await {
                    Ok(grpc) => {
                        let codec = HookCodec::new(Hooks::client(&client.interceptors, method));
                        let refusal = codec.refusal();
                        // For the transport, which hands it to the response body: a refusal
                        // after the replies started shows there, not in this call's result.
                        // Only a streamed response can start before the requests are sent;
                        // unary calls skip the extension and the wrapped body.
                        if method.kind().server_streaming() {
                            request.extensions_mut().insert(refusal.clone());
                        }
                        send(grpc, request, codec)
                            .await
                            .map_err(|e| refusal.take().unwrap_or_else(|| call_failed(e)))
                    }
                    Err(status) => Err(status),
                };
                let response = settled(ticket, result)?;
                Ok(Reply::new(response.map(convert.response_in)))
            })
        });
        let reply = chain.run(call, endpoint).await?;
        let (metadata, body, extensions) = reply.into_response().into_parts();
        Ok(Response::from_parts(
            metadata,
            (convert.response_out)(body)?,
            extensions,
        ))
    }
}

/// Boxed request streams in, boxed futures out: what generated client traits call for the two
/// streaming-request kinds. The futures are boxed here, in plain generic functions, because
/// inside the trait's `async` bodies (and any `async` block) the compiler cannot prove these
/// futures `Send` for every lifetime (rust-lang/rust#102211); coerced to `dyn Future + Send`
/// where the lifetimes are named, the proof goes through.
impl Client {
    #[doc(hidden)]
    pub fn client_streaming_boxed<'a, Req, Resp>(
        &'a self,
        method: &'static MethodDescriptor,
        request: Request<RequestStream<Req>>,
    ) -> BoxFuture<'a, Result<Response<Resp>, Status>>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        Box::pin(self.client_streaming(method, request))
    }

    #[doc(hidden)]
    pub fn streaming_boxed<'a, Req, Resp>(
        &'a self,
        method: &'static MethodDescriptor,
        request: Request<RequestStream<Req>>,
    ) -> BoxFuture<'a, Result<Response<Streaming<Resp>>, Status>>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        Box::pin(self.streaming(method, request))
    }
}

/// Metadata on a status this client made itself without sending anything (its breaker
/// refused the call), which retries must not repeat.
const LOCAL_REFUSAL: &str = "rzero-refused-locally";

/// Settles the breaker's ticket with a failed call's status. A successful one is settled by
/// the transport when the response's status arrives (at once for a single response, at the
/// end for a stream).
fn settled<T>(ticket: Option<SharedTicket>, result: Result<T, Status>) -> Result<T, Status> {
    if let (Some(ticket), Err(status)) = (ticket, &result) {
        ticket.settle(status.code());
    }
    result
}

/// Puts tonic's own failures in the codes the gRPC spec (and every other implementation)
/// uses: its channel's expiry of `grpc-timeout` is `CANCELLED` there and `DEADLINE_EXCEEDED`
/// here; a connection that failed or broke is `UNKNOWN` ("transport error") there and
/// `UNAVAILABLE` here, which is what retry policies and callers look for.
fn call_failed(status: Status) -> Status {
    if status.code() == tonic::Code::Cancelled
        && status.message() == tonic::TimeoutExpired(()).to_string()
    {
        return Status::deadline_exceeded("deadline exceeded before the server answered");
    }
    if status.code() == tonic::Code::Unknown {
        let mut source = std::error::Error::source(&status);
        while let Some(error) = source {
            if error.downcast_ref::<tonic::transport::Error>().is_some() {
                let mut message = status.message().to_owned();
                let mut cause = error.source();
                while let Some(error) = cause {
                    message = format!("{message}: {error}");
                    cause = error.source();
                }
                return Status::unavailable(message);
            }
            source = error.source();
        }
    }
    status
}

fn path(method: &'static MethodDescriptor) -> http::uri::PathAndQuery {
    http::uri::PathAndQuery::from_static(method.path())
}

/// `Endpoint::http2_keep_alive_interval` when there is an interval.
pub(crate) trait KeepAlive {
    fn http2_keep_alive_interval_opt(self, interval: Option<std::time::Duration>) -> Self;
}

impl KeepAlive for Endpoint {
    fn http2_keep_alive_interval_opt(self, interval: Option<std::time::Duration>) -> Self {
        match interval {
            Some(interval) => self.http2_keep_alive_interval(interval),
            None => self,
        }
    }
}

fn endpoint(target: &str) -> Result<Endpoint, ConnectError> {
    let uri = if target.contains("://") {
        target.to_owned()
    } else {
        format!("http://{target}")
    };
    Endpoint::from_shared(uri).map_err(|e| ConnectError::invalid_target(target, e))
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The request messages of a client-streaming or bidi call, boxed. Generated client traits
/// take `Request<RequestStream<T>>`, so any implementation (a fake, a mock) can read them;
/// build one with [`streaming_request`].
pub type RequestStream<T> = Pin<Box<dyn Stream<Item = T> + Send + 'static>>;

/// A client-streaming or bidi request that sends what `messages` yields, boxed as
/// generated client traits take it.
pub fn streaming_request<S>(messages: S) -> Request<RequestStream<S::Item>>
where
    S: Stream + Send + 'static,
{
    Request::new(Box::pin(messages))
}

/// Per-call settings on a request, for use with any generated client method.
///
/// ```
/// use std::time::Duration;
/// use rzero::{CallExt, Request};
/// let request = Request::new(())
///     .deadline(Duration::from_millis(300));
/// ```
pub trait CallExt: Sized {
    /// The call fails with `DEADLINE_EXCEEDED` if it has not finished after `timeout`; the
    /// server sees the remaining time as `grpc-timeout`.
    fn deadline(self, timeout: Duration) -> Self;

    /// Compresses this call's request messages with `encoding`.
    fn compress(self, encoding: CompressionEncoding) -> Self;

    /// The key the `consistent_hash` balancer maps this call by: calls with the same key go
    /// to the same endpoint while it is up.
    fn hash_key(self, key: impl Into<String>) -> Self;

    /// Sends this call only to an endpoint whose metadata has `key` = `value` (e.g.
    /// `version` = `v2`); with none, it fails with `UNAVAILABLE`.
    fn route_to(self, key: impl Into<String>, value: impl Into<String>) -> Self;

    /// Sends `credentials` with this call instead of the client's (under the same rule: over
    /// TLS, or plaintext if the client allows it).
    #[cfg(feature = "auth")]
    fn credentials(self, credentials: crate::auth::Credentials) -> Self;
}

impl<T> CallExt for Request<T> {
    fn deadline(mut self, timeout: Duration) -> Self {
        self.set_timeout(timeout);
        self
    }

    fn compress(mut self, encoding: CompressionEncoding) -> Self {
        self.extensions_mut().insert(SendCompression(encoding));
        self
    }

    fn hash_key(mut self, key: impl Into<String>) -> Self {
        self.extensions_mut().insert(HashKey(key.into()));
        self
    }

    fn route_to(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.extensions_mut()
            .insert(RouteTo(key.into(), value.into()));
        self
    }

    #[cfg(feature = "auth")]
    fn credentials(mut self, credentials: crate::auth::Credentials) -> Self {
        self.extensions_mut()
            .insert(crate::auth::CallCredentials(credentials));
        self
    }
}
