//! How a generated server wrapper runs one call.
//!
//! A generated `call` matches the request path and hands the request to one of the four
//! functions here with the method's [`MethodDescriptor`] and a handler closure that calls the
//! user's trait method. Keeping decode/encode, compression and limits here (not in generated
//! code) gives interceptors one place to hook in for every RPC kind: the chain runs around the
//! handler, and its per-message hooks run in the codec. A server without interceptors takes
//! the direct path, with no boxing or type erasure.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::{Instant, Sleep};
use tonic::codegen::{BoxFuture, BoxStream};
use tonic::server::Grpc;
use tonic::{Request, Response, Status, Streaming};

use super::trailers::attach_trailers;
use super::{CallSettings, ServiceConfig};
use crate::deadline::{self, parse_grpc_timeout};
use crate::interceptor::codec::{HookCodec, Hooks};
use crate::interceptor::{Body, Call, Chain, ChainEnd, Conversions, Reply};
use crate::method::{MethodDescriptor, MethodKind};

type HttpResponse = http::Response<tonic::body::Body>;

/// Adapts "a shared service plus a function of it" into the `tower::Service` shape tonic's
/// server codec drives.
struct Handler<S, F> {
    service: Arc<S>,
    handler: F,
}

impl<S, F, Req, Resp, Fut> tower_service::Service<Request<Req>> for Handler<S, F>
where
    F: Fn(Arc<S>, Request<Req>) -> Fut,
    Fut: Future<Output = Result<Response<Resp>, Status>>,
{
    type Response = Response<Resp>;
    type Error = Status;
    type Future = Fut;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Req>) -> Fut {
        (self.handler)(Arc::clone(&self.service), request)
    }
}

/// The same, for a server with interceptors: the handler runs at the end of the chain.
///
/// A separate type, not an option inside [`Handler`]: its `Service` impl needs no `'static`
/// bounds on the payload types, which matters because proving those for a `BoxStream` inside
/// an `async` block trips rust-lang/rust#102211.
struct Intercepted<Req, Resp>(Arc<InterceptedFn<Req, Resp>>);

type InterceptedFn<Req, Resp> =
    dyn Fn(Request<Req>) -> BoxFuture<Response<Resp>, Status> + Send + Sync;

impl<Req, Resp> tower_service::Service<Request<Req>> for Intercepted<Req, Resp> {
    type Response = Response<Resp>;
    type Error = Status;
    type Future = BoxFuture<Response<Resp>, Status>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Req>) -> Self::Future {
        (self.0)(request)
    }
}

/// Runs the response hooks on the one message a handler answered with (for
/// [`intercepted`]).
fn check_one<Resp: prost::Message + 'static>(reply: Resp, hooks: &Hooks) -> Result<Resp, Status> {
    hooks.encoding(&reply)?;
    Ok(reply)
}

/// Runs the response hooks on each message of a stream of replies as it comes (for
/// [`intercepted`]): a refused message ends the stream with the hook's status.
fn check_each<Resp: prost::Message + 'static>(
    replies: BoxStream<Resp>,
    hooks: &Hooks,
) -> Result<BoxStream<Resp>, Status> {
    use tokio_stream::StreamExt as _;
    let hooks = hooks.clone();
    Ok(Box::pin(replies.map(move |reply| {
        let reply = reply?;
        hooks.encoding(&reply)?;
        Ok(reply)
    })))
}

/// Wraps `handler` so every call runs through `chain` first, and what it answers through
/// the chain's response hooks (`check`: [`check_one`] or [`check_each`]). The hooks run
/// here, not in the codec: tonic reports an encoder's error to the client as
/// `INTERNAL "Error encoding: …"`, not as the hook's status.
fn intercepted<S, F, Fut, Req, Resp>(
    service: Arc<S>,
    handler: F,
    method: &'static MethodDescriptor,
    chain: Arc<Chain>,
    convert: Conversions<Req, Resp>,
    check: fn(Resp, &Hooks) -> Result<Resp, Status>,
) -> Intercepted<Req, Resp>
where
    S: Send + Sync + 'static,
    F: Fn(Arc<S>, Request<Req>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Response<Resp>, Status>> + Send + 'static,
    Req: Send + 'static,
    Resp: Send + 'static,
{
    let handler = Arc::new(handler);
    let hooks = Hooks::server(Some(&chain), method);
    Intercepted(Arc::new(move |request: Request<Req>| {
        let hooks = hooks.clone();
        let service = Arc::clone(&service);
        let handler = Arc::clone(&handler);
        let chain = Arc::clone(&chain);
        let call = Call::new(method, request.map(convert.request_in));
        let endpoint: ChainEnd = Box::new(move |call: Call| {
            Box::pin(async move {
                let (metadata, extensions, body) = call.into_request().into_parts();
                let request =
                    Request::from_parts(metadata, extensions, (convert.request_out)(body)?);
                let response = handler(service, request).await?;
                Ok(Reply::new(response.map(convert.response_in)))
            })
        });
        Box::pin(async move {
            let reply = chain.run(call, endpoint).await?;
            let (metadata, body, extensions) = reply.into_response().into_parts();
            let mut message = (convert.response_out)(body)?;
            if let Some(hooks) = &hooks {
                message = check(message, hooks)?;
            }
            Ok(Response::from_parts(metadata, message, extensions))
        })
    }))
}

/// The server's interceptors, from the settings `rzero::Server` puts in each request's
/// extensions.
fn chain_of<B>(request: &http::Request<B>) -> Option<Arc<Chain>> {
    request
        .extensions()
        .get::<Arc<CallSettings>>()
        .map(|settings| &settings.chain)
        .filter(|chain| !chain.is_empty())
        .cloned()
}

fn grpc<Req, Resp>(config: &ServiceConfig, hooks: Option<Hooks>) -> Grpc<HookCodec<Resp, Req>>
where
    Req: prost::Message + Default + Send + 'static,
    Resp: prost::Message + Send + 'static,
{
    Grpc::new(HookCodec::decoding(hooks))
        .apply_compression_config(config.accept_encodings, config.send_encodings)
        .apply_max_message_size_config(
            Some(config.max_decoding_message_size),
            Some(config.max_encoding_message_size),
        )
}

/// What every kind shares: the method in the request extensions, the deadline (the client's
/// `grpc-timeout` or the server's limit for the method, whichever is sooner) enforced and in
/// scope for the handler, panics turned into `INTERNAL`, and the handler's custom trailers.
fn run<B, Fut>(
    method: &'static MethodDescriptor,
    mut request: http::Request<B>,
    call: impl FnOnce(http::Request<B>) -> Fut + Send + 'static,
) -> BoxFuture<HttpResponse, Infallible>
where
    B: Send + 'static,
    Fut: Future<Output = HttpResponse> + Send + 'static,
{
    request.extensions_mut().insert(*method);
    request
        .extensions_mut()
        .insert(tonic::GrpcMethod::new(method.service(), method.method()));
    let settings = request.extensions().get::<Arc<CallSettings>>().cloned();
    // Breaker, concurrency limit, shedding: before anything else, so a refusal costs nothing.
    let ticket = match settings.as_ref().map(|s| s.protection.admit(method)) {
        Some(Err(refusal)) => return Box::pin(std::future::ready(Ok(refusal.into_http()))),
        Some(Ok(ticket)) => ticket,
        None => None,
    };
    let limit = settings.and_then(|settings| settings.timeout_for(method.path()));
    let timeout = match (parse_grpc_timeout(request.headers()), limit) {
        (Some(client), Some(server)) => Some(client.min(server)),
        (client, server) => client.or(server),
    };
    let deadline = timeout.and_then(|timeout| Instant::now().checked_add(timeout));
    let streams_replies = matches!(
        method.kind(),
        MethodKind::ServerStreaming | MethodKind::BidiStreaming
    );
    let call = async move {
        let response = match deadline {
            Some(deadline) => deadline::scope(deadline, call(request)).await,
            None => call(request).await,
        };
        let response = attach_trailers(response);
        // A reply stream is polled by the connection, after this future is done: its panics
        // would take the connection (and every call on it) down.
        Ok(if streams_replies {
            response.map(|body| tonic::body::Body::new(CatchPanicBody::new(body)))
        } else {
            response
        })
    };
    let call = with_deadline(timeout, Box::pin(CatchPanic(Box::pin(call))));
    match ticket {
        None => call,
        // Dropped before answering (the client went away): the ticket counts it cancelled.
        Some(ticket) => Box::pin(async move { Ok(ticket.watch(call.await?)) }),
    }
}

/// Answers `INTERNAL` when the call panics, instead of losing the stream (go-zero's
/// `Recover` middleware, always on). The handler's state is dropped, not reused, so the
/// `AssertUnwindSafe` holds.
struct CatchPanic(BoxFuture<HttpResponse, Infallible>);

impl Future for CatchPanic {
    type Output = Result<HttpResponse, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let call = &mut self.0;
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| call.as_mut().poll(cx))) {
            Ok(polled) => polled,
            Err(_) => Poll::Ready(Ok(Status::internal(
                "the server panicked while handling the call",
            )
            .into_http())),
        }
    }
}

/// A reply stream that ends with `INTERNAL` (in its trailers) when producing the next
/// message panics, instead of unwinding into the connection task.
struct CatchPanicBody {
    state: PanicState,
}

enum PanicState {
    Running(tonic::body::Body),
    /// Panicked, and the trailers with `INTERNAL` were sent.
    Done,
}

impl CatchPanicBody {
    fn new(body: tonic::body::Body) -> Self {
        Self {
            state: PanicState::Running(body),
        }
    }
}

impl http_body::Body for CatchPanicBody {
    type Data = bytes::Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<bytes::Bytes>, Status>>> {
        let this = self.get_mut();
        match &mut this.state {
            PanicState::Running(body) => {
                let polled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    Pin::new(&mut *body).poll_frame(cx)
                }));
                match polled {
                    Ok(polled) => polled,
                    Err(_) => {
                        let mut trailers = http::HeaderMap::new();
                        let status =
                            Status::internal("the server panicked while streaming replies");
                        // Only fails for a message that is not a valid header value.
                        let _ = status.add_header(&mut trailers);
                        this.state = PanicState::Done;
                        Poll::Ready(Some(Ok(http_body::Frame::trailers(trailers))))
                    }
                }
            }
            PanicState::Done => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.state {
            PanicState::Running(body) => body.is_end_stream(),
            PanicState::Done => true,
        }
    }

    fn size_hint(&self) -> http_body::SizeHint {
        match &self.state {
            PanicState::Running(body) => body.size_hint(),
            PanicState::Done => http_body::SizeHint::with_exact(0),
        }
    }
}

/// A unary request from the gateway in the same process: the encoded message, which
/// [`unary`] decodes itself instead of running the gRPC codec over a framed body (the
/// gateway's in-process mode calls the service, not a network peer).
#[cfg(feature = "gateway")]
#[derive(Debug, Clone)]
pub(crate) struct InProcessRequest(pub(crate) bytes::Bytes);

/// The reply to an [`InProcessRequest`], in the response extensions: the encoded message.
/// The body carries only the trailers (`grpc-status` and the handler's own).
#[cfg(feature = "gateway")]
#[derive(Debug, Clone)]
pub(crate) struct InProcessReply(pub(crate) bytes::Bytes);

/// What `tonic::server::Grpc::unary` does for a framed request, for an
/// [`InProcessRequest`]: the same limits, hooks and statuses, without the framing, the
/// body streams and the header parsing.
#[cfg(feature = "gateway")]
async fn in_process_unary<H, B, Req, Resp>(
    mut handler: H,
    hooks: Option<Hooks>,
    limits: (usize, usize),
    message: bytes::Bytes,
    request: http::Request<B>,
) -> HttpResponse
where
    H: tower_service::Service<Request<Req>, Response = Response<Resp>, Error = Status>,
    Req: prost::Message + Default + 'static,
    Resp: prost::Message + 'static,
{
    let (max_decoding, max_encoding) = limits;
    let reply = async move {
        if message.len() > max_decoding {
            return Err(Status::out_of_range(format!(
                "Error, decoded message length too large: found {} bytes, the limit is: {max_decoding} bytes",
                message.len()
            )));
        }
        let decoded = Req::decode(message).map_err(|e| Status::internal(e.to_string()))?;
        if let Some(hooks) = &hooks {
            hooks.decoded(&decoded)?;
        }
        let (parts, _) = request.into_parts();
        let request = Request::from_http(http::Request::from_parts(parts, decoded));
        let (metadata, reply, extensions) = handler.call(request).await?.into_parts();
        let encoded = reply.encode_to_vec();
        if encoded.len() > max_encoding {
            return Err(Status::out_of_range(format!(
                "Error, encoded message length too large: found {} bytes, the limit is: {max_encoding} bytes",
                encoded.len()
            )));
        }
        Ok((metadata, encoded, extensions))
    };
    match reply.await {
        Err(status) => status.into_http(),
        Ok((metadata, encoded, extensions)) => {
            let mut trailers = http::HeaderMap::new();
            trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
            let mut response =
                http::Response::new(tonic::body::Body::new(TrailersOnly(Some(trailers))));
            *response.headers_mut() = metadata.into_headers();
            // The one extension the rest of the way reads: the handler's own trailers.
            if let Some(custom) = extensions.get::<super::Trailers>() {
                response.extensions_mut().insert(custom.clone());
            }
            response
                .extensions_mut()
                .insert(InProcessReply(encoded.into()));
            response
        }
    }
}

/// A body of one trailers frame.
#[cfg(feature = "gateway")]
struct TrailersOnly(Option<http::HeaderMap>);

#[cfg(feature = "gateway")]
impl http_body::Body for TrailersOnly {
    type Data = bytes::Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<bytes::Bytes>, Status>>> {
        Poll::Ready(
            self.0
                .take()
                .map(|trailers| Ok(http_body::Frame::trailers(trailers))),
        )
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_none()
    }
}

/// Runs a unary call.
pub fn unary<S, B, Req, Resp, F, Fut>(
    config: &ServiceConfig,
    method: &'static MethodDescriptor,
    request: http::Request<B>,
    service: Arc<S>,
    handler: F,
) -> BoxFuture<HttpResponse, Infallible>
where
    S: Send + Sync + 'static,
    B: http_body::Body + Send + 'static,
    B::Error: Into<tonic::codegen::StdError> + Send + 'static,
    Req: prost::Message + Default + Send + 'static,
    Resp: prost::Message + Send + 'static,
    F: Fn(Arc<S>, Request<Req>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Response<Resp>, Status>> + Send + 'static,
{
    let chain = chain_of(&request);
    #[cfg(feature = "gateway")]
    let mut request = request;
    #[cfg(feature = "gateway")]
    if let Some(InProcessRequest(message)) = request.extensions_mut().remove() {
        let hooks = Hooks::server(chain.as_ref(), method);
        let limits = (
            config.max_decoding_message_size,
            config.max_encoding_message_size,
        );
        return match chain {
            None => run(method, request, move |request| {
                in_process_unary(
                    Handler { service, handler },
                    hooks,
                    limits,
                    message,
                    request,
                )
            }),
            Some(chain) => {
                let convert = unary_conversions();
                let handler = intercepted(service, handler, method, chain, convert, check_one);
                run(method, request, move |request| {
                    in_process_unary(handler, hooks, limits, message, request)
                })
            }
        };
    }
    let mut grpc = grpc::<Req, Resp>(config, Hooks::server(chain.as_ref(), method));
    match chain {
        None => {
            let handler = Handler { service, handler };
            run(method, request, move |request| async move {
                grpc.unary(handler, request).await
            })
        }
        Some(chain) => {
            let convert = unary_conversions();
            let handler = intercepted(service, handler, method, chain, convert, check_one);
            run(method, request, move |request| async move {
                grpc.unary(handler, request).await
            })
        }
    }
}

/// How the chain sees a unary call's messages: one each way.
fn unary_conversions<Req, Resp>() -> Conversions<Req, Resp>
where
    Req: prost::Message + Send + 'static,
    Resp: prost::Message + Send + 'static,
{
    Conversions {
        request_in: Body::message,
        request_out: Body::into_message,
        response_in: Body::message,
        response_out: Body::into_message,
    }
}

/// Runs a call with one request and a stream of responses.
pub fn server_streaming<S, B, Req, Resp, F, Fut>(
    config: &ServiceConfig,
    method: &'static MethodDescriptor,
    request: http::Request<B>,
    service: Arc<S>,
    handler: F,
) -> BoxFuture<HttpResponse, Infallible>
where
    S: Send + Sync + 'static,
    B: http_body::Body + Send + 'static,
    B::Error: Into<tonic::codegen::StdError> + Send + 'static,
    Req: prost::Message + Default + Send + 'static,
    Resp: prost::Message + Send + 'static,
    F: Fn(Arc<S>, Request<Req>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Response<BoxStream<Resp>>, Status>> + Send + 'static,
{
    let chain = chain_of(&request);
    let mut grpc = grpc::<Req, Resp>(config, Hooks::server(chain.as_ref(), method));
    match chain {
        None => {
            let handler = Handler { service, handler };
            run(method, request, move |request| async move {
                grpc.server_streaming(handler, request).await
            })
        }
        Some(chain) => {
            let convert = Conversions {
                request_in: Body::message,
                request_out: Body::into_message,
                response_in: Body::stream::<BoxStream<Resp>>,
                response_out: Body::into_stream::<BoxStream<Resp>>,
            };
            let handler = intercepted(service, handler, method, chain, convert, check_each);
            run(method, request, move |request| async move {
                grpc.server_streaming(handler, request).await
            })
        }
    }
}

/// Runs a call with a stream of requests and one response.
pub fn client_streaming<S, B, Req, Resp, F, Fut>(
    config: &ServiceConfig,
    method: &'static MethodDescriptor,
    request: http::Request<B>,
    service: Arc<S>,
    handler: F,
) -> BoxFuture<HttpResponse, Infallible>
where
    S: Send + Sync + 'static,
    B: http_body::Body + Send + 'static,
    B::Error: Into<tonic::codegen::StdError> + Send + 'static,
    Req: prost::Message + Default + Send + 'static,
    Resp: prost::Message + Send + 'static,
    F: Fn(Arc<S>, Request<Streaming<Req>>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Response<Resp>, Status>> + Send + 'static,
{
    let chain = chain_of(&request);
    let mut grpc = grpc::<Req, Resp>(config, Hooks::server(chain.as_ref(), method));
    match chain {
        None => {
            let handler = Handler { service, handler };
            run(method, request, move |request| async move {
                grpc.client_streaming(handler, request).await
            })
        }
        Some(chain) => {
            let convert = Conversions {
                request_in: Body::stream::<Streaming<Req>>,
                request_out: Body::into_stream::<Streaming<Req>>,
                response_in: Body::message,
                response_out: Body::into_message,
            };
            let handler = intercepted(service, handler, method, chain, convert, check_one);
            run(method, request, move |request| async move {
                grpc.client_streaming(handler, request).await
            })
        }
    }
}

/// Runs a call with streams both ways.
pub fn streaming<S, B, Req, Resp, F, Fut>(
    config: &ServiceConfig,
    method: &'static MethodDescriptor,
    request: http::Request<B>,
    service: Arc<S>,
    handler: F,
) -> BoxFuture<HttpResponse, Infallible>
where
    S: Send + Sync + 'static,
    B: http_body::Body + Send + 'static,
    B::Error: Into<tonic::codegen::StdError> + Send + 'static,
    Req: prost::Message + Default + Send + 'static,
    Resp: prost::Message + Send + 'static,
    F: Fn(Arc<S>, Request<Streaming<Req>>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Response<BoxStream<Resp>>, Status>> + Send + 'static,
{
    let chain = chain_of(&request);
    let mut grpc = grpc::<Req, Resp>(config, Hooks::server(chain.as_ref(), method));
    match chain {
        None => {
            let handler = Handler { service, handler };
            run(method, request, move |request| async move {
                grpc.streaming(handler, request).await
            })
        }
        Some(chain) => {
            let convert = Conversions {
                request_in: Body::stream::<Streaming<Req>>,
                request_out: Body::into_stream::<Streaming<Req>>,
                response_in: Body::stream::<BoxStream<Resp>>,
                response_out: Body::into_stream::<BoxStream<Resp>>,
            };
            let handler = intercepted(service, handler, method, chain, convert, check_each);
            run(method, request, move |request| async move {
                grpc.streaming(handler, request).await
            })
        }
    }
}

/// Ends a call with `DEADLINE_EXCEEDED` when its `grpc-timeout` runs out.
///
/// tonic's server enforces `grpc-timeout` too, in a layer outside rzero's services, but answers
/// `CANCELLED` ("Timeout expired"), which clients other than rzero's report as such; the gRPC
/// spec says `DEADLINE_EXCEEDED`. This answers first. Its clock starts when the call first
/// runs, a little after tonic's, so a wake-up within [`DEADLINE_SLACK`] of the deadline also
/// counts as expiry: tonic's timer firing is such a wake-up, and tonic polls the call before
/// it looks at its own timer.
fn with_deadline(
    timeout: Option<Duration>,
    call: BoxFuture<HttpResponse, Infallible>,
) -> BoxFuture<HttpResponse, Infallible> {
    // No deadline, or one too far away to represent: nothing to enforce.
    let Some((timeout, deadline)) =
        timeout.and_then(|timeout| Some((timeout, Instant::now().checked_add(timeout)?)))
    else {
        return call;
    };
    Box::pin(Deadline {
        call,
        sleep: Box::pin(tokio::time::sleep_until(deadline)),
        // Never more than a tenth of the timeout, so short deadlines keep their time.
        early: deadline - DEADLINE_SLACK.min(timeout / 10),
    })
}

/// How long before its deadline a woken call counts as expired; see [`with_deadline`].
const DEADLINE_SLACK: Duration = Duration::from_millis(5);

struct Deadline {
    call: BoxFuture<HttpResponse, Infallible>,
    sleep: Pin<Box<Sleep>>,
    early: Instant,
}

impl Future for Deadline {
    type Output = Result<HttpResponse, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Poll::Ready(response) = self.call.as_mut().poll(cx) {
            return Poll::Ready(response);
        }
        if self.sleep.as_mut().poll(cx).is_ready() || Instant::now() >= self.early {
            let status =
                Status::deadline_exceeded("deadline exceeded while the server was answering");
            return Poll::Ready(Ok(status.into_http()));
        }
        Poll::Pending
    }
}

/// Answers a path no method of the service matches with `UNIMPLEMENTED`.
pub fn unimplemented<B>(request: http::Request<B>) -> BoxFuture<HttpResponse, Infallible> {
    let status = Status::unimplemented(format!("unknown method {}", request.uri().path()));
    Box::pin(std::future::ready(Ok(status.into_http())))
}
