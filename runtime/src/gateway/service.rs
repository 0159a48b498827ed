//! The gateway as an HTTP service: routing, translating requests into gRPC calls and their
//! replies into responses, in-process or as a proxy.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use http_body_util::BodyExt as _;
use prost::Message as _;
use prost_reflect::{DynamicMessage, FieldDescriptor, MessageDescriptor, Value};
use tokio::sync::mpsc;
use tonic::Code;
use tonic::body::Body;

use super::binding::Binding;
use super::builder::{ErrorHook, GatewayBuilder, Handler, PathParams, ReplyHook};
use super::field_mask::fill_mask;
use super::framing::{Framing, StreamFraming, framing_for};
use super::grpc::{self, Backend, BoxError, Failure, Reply};
use super::headers::{self, Matchers};
use super::json::{JsonReader, JsonWriter};
use super::raw_body;
use super::request_stream::{self, InputWatch};
use super::router::{RouteMatch, Router};
use super::rules::{GatewayBuildError, HttpRule};
use crate::cors;
use crate::method::{MethodDescriptor as RzeroMethod, MethodKind};

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A checked set of HTTP routes onto gRPC methods; cheap to clone.
///
/// Serve it with [`ServerBuilder::gateway`](crate::ServerBuilder::gateway) (in-process, same
/// port), [`ServerBuilder::gateway_on`](crate::ServerBuilder::gateway_on) (in-process, own
/// port), or turn it into an HTTP service with [`Gateway::proxy`] / [`Gateway::service`].
#[derive(Clone, Debug)]
pub struct Gateway {
    pub(super) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(super) struct Inner {
    pub(super) router: Router<Route>,
    pub(super) status: MessageDescriptor,
    /// How `status` is written (error bodies).
    pub(super) status_json: JsonWriter,
    pub(super) max_body_size: usize,
    pub(super) max_reply_size: usize,
    pub(super) timeout: Option<Duration>,
    pub(super) matchers: Matchers,
    pub(super) stream_framing: StreamFraming,
    pub(super) cors: Option<cors::Policy>,
    pub(super) on_reply: Option<ReplyHook>,
    pub(super) on_error: Option<ErrorHook>,
    /// Every method of the descriptor sets' services: what gRPC-Web may call through a proxy.
    #[cfg(feature = "grpc-web")]
    pub(super) methods: Arc<super::grpc_web::Methods>,
}

pub(super) enum Route {
    Rpc(Arc<RpcRoute>),
    Handler(Handler),
    Health,
}

impl fmt::Debug for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Route::Rpc(route) => write!(f, "Rpc({})", route.rule),
            Route::Handler(_) => write!(f, "Handler"),
            Route::Health => write!(f, "Health"),
        }
    }
}

#[derive(Debug)]
pub(super) struct RpcRoute {
    pub(super) rule: HttpRule,
    pub(super) descriptor: RzeroMethod,
    pub(super) grpc_path: http::uri::PathAndQuery,
    pub(super) input: MessageDescriptor,
    pub(super) output: MessageDescriptor,
    /// How `input` is read; computed once, here.
    pub(super) input_json: JsonReader,
    /// How `output` is written; computed once, here.
    pub(super) output_json: JsonWriter,
    pub(super) binding: Binding,
    pub(super) body: Vec<FieldDescriptor>,
    pub(super) response_body: Option<FieldDescriptor>,
    /// PATCH with a body field and exactly one top-level FieldMask: the mask to fill from the
    /// body's JSON keys when the client sent none.
    pub(super) update_mask: Option<FieldDescriptor>,
    /// The body target is a `google.api.HttpBody`: the raw HTTP body, not JSON.
    pub(super) raw_request: bool,
    /// The reply (or its `response_body` field) is a `google.api.HttpBody`: sent raw.
    pub(super) raw_reply: bool,
}

impl Gateway {
    /// Starts a gateway description.
    pub fn builder() -> GatewayBuilder {
        GatewayBuilder::default()
    }

    /// A gateway for one descriptor set and its rules, with default options.
    pub fn new(
        descriptor_set: impl Into<Bytes>,
        rules: &[HttpRule],
    ) -> Result<Gateway, GatewayBuildError> {
        Self::builder()
            .descriptor_set(descriptor_set)
            .rules(rules.iter().copied())
            .build()
    }

    /// The HTTP service calling `grpc`, any tower service that takes gRPC requests: a
    /// server's own routes (in-process) or a tonic `Channel` (proxy).
    pub fn service<S>(&self, grpc: S) -> GatewayService
    where
        S: tower_service::Service<http::Request<Body>, Response = http::Response<Body>>
            + Clone
            + Send
            + Sync
            + 'static,
        S::Error: Into<BoxError>,
        S::Future: Send + 'static,
    {
        GatewayService {
            gateway: self.clone(),
            backend: grpc::backend(grpc),
            in_process: false,
            #[cfg(feature = "grpc-web")]
            web: None,
        }
    }

    /// The HTTP service calling `backend` (the server's in-process way to its services).
    pub(crate) fn with_backend(&self, backend: Backend) -> GatewayService {
        GatewayService {
            gateway: self.clone(),
            backend,
            in_process: true,
            #[cfg(feature = "grpc-web")]
            web: None,
        }
    }

    /// The HTTP service forwarding to a remote server through `client` (its connection,
    /// discovery and balancing; not its interceptors, which work on typed messages).
    pub fn proxy(&self, client: &crate::Client) -> GatewayService {
        self.service(client.transport())
    }
}

/// The gateway as a tower service over HTTP requests (HTTP/1.1 or HTTP/2), answering every
/// request: errors are `google.rpc.Status` JSON bodies, never a dropped connection.
#[derive(Clone)]
pub struct GatewayService {
    gateway: Gateway,
    backend: Backend,
    /// The backend is an `rzero::Server`'s own dispatch: unary requests go to it as
    /// messages rather than framed bodies.
    in_process: bool,
    /// gRPC-Web calls forwarded to the backend ([`GatewayService::grpc_web`]).
    #[cfg(feature = "grpc-web")]
    web: Option<Arc<super::grpc_web::WebProxy>>,
}

impl GatewayService {
    /// Also answers gRPC-Web (browsers' gRPC), as
    /// [`ServerBuilder::grpc_web`](crate::ServerBuilder::grpc_web) does on a server's port,
    /// by sending each call on, untranslated, to this service's gRPC backend: with
    /// [`Gateway::proxy`], the remote server, of any make. REST and gRPC-Web then share the
    /// port, and one process replaces the translating proxy (Envoy's `grpc_web` filter) that
    /// browsers otherwise need in front of grpc-go or go-zero servers.
    ///
    /// Only the methods of the services in the gateway's descriptor sets are forwarded;
    /// others get `UNIMPLEMENTED`. Requests' headers are the calls' metadata, less those of
    /// the connection; `x-forwarded-for` and `x-forwarded-host` are set as on REST calls,
    /// and the gateway's [`timeout`](GatewayBuilder::timeout) and
    /// [`max_body_size`](GatewayBuilder::max_body_size) bound these calls too.
    ///
    /// Fails when the CORS policy is malformed.
    ///
    /// ```no_run
    /// # async fn run(gateway: rzero::gateway::Gateway) -> Result<(), Box<dyn std::error::Error>> {
    /// use rzero::Cors;
    /// use rzero::server::GrpcWeb;
    ///
    /// let upstream = rzero::Client::connect("dns:///greeter:50051").await?;
    /// let edge = gateway
    ///     .proxy(&upstream)
    ///     .grpc_web(GrpcWeb::new().cors(Cors::origins(["https://app.example.com"])))?;
    /// let listener = tokio::net::TcpListener::bind("0.0.0.0:8080").await?;
    /// rzero::gateway::serve(listener, edge, rzero::server::shutdown_signal()).await?;
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "grpc-web")]
    pub fn grpc_web(mut self, grpc_web: crate::server::GrpcWeb) -> Result<Self, crate::Error> {
        let inner = &self.gateway.inner;
        let limits = super::grpc_web::Limits {
            timeout: inner.timeout,
            max_body_size: inner.max_body_size,
        };
        let web = super::grpc_web::WebProxy::new(grpc_web, Arc::clone(&inner.methods), limits)?;
        self.web = Some(Arc::new(web));
        Ok(self)
    }
}

impl fmt::Debug for GatewayService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GatewayService")
            .field("gateway", &self.gateway)
            .finish_non_exhaustive()
    }
}

impl<B> tower_service::Service<http::Request<B>> for GatewayService
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<http::Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let request = request.map(Body::new);
        #[cfg(feature = "grpc-web")]
        if let Some(web) = &self.web
            && web.takes(&request)
        {
            let (web, backend) = (Arc::clone(web), Arc::clone(&self.backend));
            let peer = peer(request.extensions());
            return Box::pin(async move { Ok(web.call(backend, peer, request).await) });
        }
        let this = self.clone();
        let arrival = tokio::time::Instant::now();
        let head = request.method() == http::Method::HEAD;
        Box::pin(async move {
            let response = this.handle(request, arrival).await;
            Ok(if head { head_only(response) } else { response })
        })
    }
}

/// What a request matched, owned so that the async part borrows nothing from the router.
enum Target {
    Rpc(Arc<RpcRoute>, Vec<(String, String)>),
    Handler(Handler, PathParams),
    Health,
}

impl GatewayService {
    /// Every answer, with CORS when configured: preflights are answered here, and whatever
    /// [`route_and_call`](Self::route_and_call) answers gets the CORS headers.
    async fn handle(
        &self,
        request: http::Request<Body>,
        arrival: tokio::time::Instant,
    ) -> http::Response<Body> {
        let Some(policy) = &self.gateway.inner.cors else {
            return self.route_and_call(request, arrival).await;
        };
        if cors::is_preflight(request.method(), request.headers()) {
            return self.preflight(policy, &request);
        }
        let origin = request.headers().get(header::ORIGIN).cloned();
        let mut response = self.route_and_call(request, arrival).await;
        policy.actual(origin.as_ref(), response.headers_mut());
        response
    }

    /// A CORS preflight: 403 for an origin not allowed; else 204 when a route takes the
    /// requested method at this path, or the usual 405 / 404.
    fn preflight(
        &self,
        policy: &cors::Policy,
        request: &http::Request<Body>,
    ) -> http::Response<Body> {
        let headers = request.headers();
        let origin = headers.get(header::ORIGIN);
        if !origin.is_some_and(|origin| policy.allows(origin)) {
            let origin = String::from_utf8_lossy(origin.map_or(&[][..], HeaderValue::as_bytes));
            let mut response = self.error(Failure::new(
                Code::PermissionDenied,
                format!("CORS: origin {origin:?} is not allowed"),
            ));
            policy.vary(response.headers_mut());
            return response;
        }
        let method = headers
            .get(header::ACCESS_CONTROL_REQUEST_METHOD)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .trim();
        let path = request.uri().path();
        let mut response = match self.gateway.inner.router.find(method, path) {
            RouteMatch::Found(_) => {
                let mut response = http::Response::new(Body::empty());
                *response.status_mut() = StatusCode::NO_CONTENT;
                policy.preflight(headers, method, response.headers_mut());
                return response;
            }
            RouteMatch::MethodNotAllowed(allowed) => self.not_allowed(method, path, &allowed),
            RouteMatch::NotFound => self.not_found(path),
        };
        policy.actual(origin, response.headers_mut());
        response
    }

    /// 405 with `Allow`.
    fn not_allowed(&self, method: &str, path: &str, allowed: &[&str]) -> http::Response<Body> {
        let mut failure = Failure::new(
            Code::Unimplemented,
            format!("method {method} not allowed for {path}"),
        )
        .http(StatusCode::METHOD_NOT_ALLOWED);
        if let Ok(allow) = HeaderValue::from_str(&allowed.join(", ")) {
            failure.headers.insert(header::ALLOW, allow);
        }
        self.error(failure)
    }

    /// 404.
    fn not_found(&self, path: &str) -> http::Response<Body> {
        self.error(Failure::new(Code::NotFound, format!("no route for {path}")))
    }

    /// Routes a request and answers it (CORS aside).
    async fn route_and_call(
        &self,
        request: http::Request<Body>,
        arrival: tokio::time::Instant,
    ) -> http::Response<Body> {
        let inner = &self.gateway.inner;
        let target = match inner
            .router
            .find(request.method().as_str(), request.uri().path())
        {
            RouteMatch::Found(found) => {
                let params = found
                    .params
                    .into_iter()
                    .map(|(name, value)| (name.to_owned(), value.into_owned()))
                    .collect();
                match found.value {
                    Route::Rpc(route) => Target::Rpc(Arc::clone(route), params),
                    Route::Handler(handler) => Target::Handler(Arc::clone(handler), params),
                    Route::Health => Target::Health,
                }
            }
            RouteMatch::MethodNotAllowed(allowed) => {
                return self.not_allowed(request.method().as_str(), request.uri().path(), &allowed);
            }
            RouteMatch::NotFound => return self.not_found(request.uri().path()),
        };
        match target {
            Target::Handler(handler, params) => handler(request, params).await,
            Target::Health => match self.health(request.uri().query().unwrap_or("")).await {
                Ok(response) => response,
                Err(failure) => self.error(failure),
            },
            Target::Rpc(route, params) => match self.rpc(&route, params, request, arrival).await {
                Ok(response) => match &inner.on_reply {
                    Some(hook) => adjusted(response, hook),
                    None => response,
                },
                Err(failure) => self.error(failure),
            },
        }
    }

    /// Translates one request into a call and its reply into a response.
    async fn rpc(
        &self,
        route: &RpcRoute,
        params: Vec<(String, String)>,
        request: http::Request<Body>,
        arrival: tokio::time::Instant,
    ) -> Result<http::Response<Body>, Failure> {
        let inner = &self.gateway.inner;
        let (parts, body) = request.into_parts();
        let deadline = match headers::timeout(&parts.headers) {
            Ok(timeout) => match (timeout, inner.timeout) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
            Err(()) => {
                return Err(Failure::new(
                    Code::InvalidArgument,
                    "invalid Grpc-Timeout header",
                ));
            }
        };
        let kind = route.descriptor.kind();
        let mut whole = None;
        let (call_body, mut input) = if kind.client_streaming() && route.raw_request {
            let chunks = raw_body::chunks(body, &parts.headers, inner.max_body_size);
            (Body::new(chunks), None)
        } else if kind.client_streaming() {
            // Rules of these methods have body `*` and no path variables (checked at build
            // time): every message comes from its own line, nothing from the URL.
            content_type(&parts.headers, true)?;
            let (messages, input) =
                request_stream::messages(body, route.input_json.clone(), inner.max_body_size);
            (Body::new(messages), Some(input))
        } else {
            let message = self.request_message(route, params, &parts, body).await?;
            let framed = grpc::frame_message(&message);
            if self.in_process && kind == MethodKind::Unary {
                // rzero's dispatch takes the message as it is, with no framing to undo and
                // no body to stream; a service of another make reads the body.
                whole = Some(crate::server::dispatch::InProcessRequest(framed.slice(5..)));
            }
            (grpc::body(framed), None)
        };
        let peer = peer(&parts.extensions);
        let mut metadata = headers::incoming(&inner.matchers, &parts.headers, peer);
        if let Some(deadline) = deadline {
            metadata.insert(
                crate::deadline::GRPC_TIMEOUT,
                headers::encode_timeout(deadline),
            );
        }
        let mut call = grpc::request(&route.grpc_path, metadata, call_body);
        // What the proxy's balancer reads (may the call be replayed?); in-process, the
        // dispatch code puts it there too, with `GrpcMethod`.
        call.extensions_mut().insert(route.descriptor);
        if let Some(whole) = whole {
            call.extensions_mut().insert(whole);
        }
        if self.in_process {
            connect_info(&parts.extensions, call.extensions_mut());
        }
        let limit = inner.max_reply_size;
        let framing = if route.raw_reply {
            Framing::Raw
        } else {
            framing_for(parts.headers.get_all(header::ACCEPT), inner.stream_framing)
        };
        let exchange = async {
            let mut reply = match Reply::start(&self.backend, call).await {
                Ok(reply) => reply,
                Err((headers, failure)) => return Err(self.with_metadata(failure, &headers)),
            };
            if kind == MethodKind::ServerStreaming && framing.in_band_errors() {
                return Ok(Exchange::Stream(reply, None));
            }
            if kind.server_streaming() {
                // The HTTP status waits for the first reply, so a call that fails before it
                // (on a bad first line, say) gets its own status rather than 200 and an
                // error line. The request body streams meanwhile, so an interactive client
                // (one line, then its reply) is not held up by the missing head. A raw
                // (`HttpBody`) stream also takes its content type from the first reply.
                // Framings that cannot carry an error (raw bytes, a JSON array) wait for
                // server streams too: once their head is out, a failure can only abort.
                return match reply.message(limit).await {
                    Ok(Some(first)) => Ok(Exchange::Stream(reply, Some(first))),
                    Ok(None) => {
                        let (trailers, status) = reply.finish();
                        let headers = self.reply_headers(&reply.headers, &trailers);
                        match status {
                            Ok(()) => Ok(Exchange::NoReplies(headers)),
                            Err(mut failure) => {
                                failure.headers.extend(headers);
                                Err(failure)
                            }
                        }
                    }
                    Err(failure) => Err(self.with_metadata(failure, &reply.headers)),
                };
            }
            let message = reply.message(limit).await;
            let extra = match &message {
                Ok(Some(_)) => reply.message(limit).await,
                _ => Ok(None),
            };
            let (trailers, status) = reply.finish();
            let response_headers = self.reply_headers(&reply.headers, &trailers);
            let fail = |mut failure: Failure| {
                failure.headers.extend(response_headers.clone());
                failure
            };
            status.map_err(fail)?;
            let message = message.map_err(fail)?.ok_or_else(|| {
                fail(Failure::new(Code::Internal, "gRPC reply without a message"))
            })?;
            if extra.map_err(fail)?.is_some() {
                return Err(fail(Failure::new(
                    Code::Internal,
                    "unary gRPC reply with several messages",
                )));
            }
            Ok(Exchange::Unary(message, response_headers))
        };
        // A request stream that fails (a bad line) cancels the call and is the answer,
        // whatever the service made of it.
        let exchange = async {
            let Some(input) = input.as_mut() else {
                return exchange.await;
            };
            let result = tokio::select! {
                biased;
                failure = input.failed() => return Err(failure),
                result = exchange => result,
            };
            result.map_err(|failure| input.take_failure().unwrap_or(failure))
        };
        let exchange = match deadline {
            None => exchange.await?,
            Some(deadline) => {
                let expired = || Failure::new(Code::DeadlineExceeded, "deadline exceeded");
                // Counted from the request's arrival, and a millisecond early: tonic's server
                // (which serves the gateway too) also reads `Grpc-Timeout` and would answer
                // an expired call in gRPC form; finishing first keeps the answer REST.
                let local = arrival + deadline.saturating_sub(Duration::from_millis(1));
                match tokio::time::timeout_at(local, exchange).await {
                    Err(_) => return Err(expired()),
                    // A channel enforces `grpc-timeout` itself and fails the call as a
                    // transport error; past the deadline, that is the deadline.
                    Ok(Err(failure))
                        if failure.code == Code::Unavailable
                            && tokio::time::Instant::now() >= local =>
                    {
                        return Err(expired());
                    }
                    Ok(result) => result?,
                }
            }
        };
        match exchange {
            Exchange::Unary(message, response_headers) => {
                let mut response = if route.raw_reply {
                    let body =
                        raw_body::reply(&route.output, route.response_body.as_ref(), message)?;
                    raw_response(raw_body::content_type(&body)?, Bytes::from(body.data))
                } else {
                    json_response(StatusCode::OK, self.reply_json(route, &message)?)
                };
                response.headers_mut().extend(response_headers);
                Ok(response)
            }
            Exchange::Stream(reply, first) => self.stream(route, reply, first, input, framing),
            Exchange::NoReplies(response_headers) => {
                let mut response =
                    http::Response::new(Body::new(http_body_util::Full::new(framing.end(false))));
                response
                    .headers_mut()
                    .insert(header::CONTENT_TYPE, framing.content_type());
                response.headers_mut().extend(response_headers);
                Ok(response)
            }
        }
    }

    /// The request message of a call without a request stream: the body (as the rule
    /// says), then the path variables, then the query.
    async fn request_message(
        &self,
        route: &RpcRoute,
        params: Vec<(String, String)>,
        parts: &http::request::Parts,
        body: Body,
    ) -> Result<DynamicMessage, Failure> {
        let mut body_json = None;
        let mut message = if route.rule.body.is_empty() {
            DynamicMessage::new(route.input.clone())
        } else if route.raw_request {
            let bytes = self.read_body(&parts.headers, body).await?;
            raw_body::request(&route.input, &route.body, &parts.headers, bytes)
        } else {
            content_type(&parts.headers, false)?;
            let bytes = self.read_body(&parts.headers, body).await?;
            if route.update_mask.is_some() {
                body_json = serde_json::from_slice::<serde_json::Value>(&bytes).ok();
            }
            let json_error = |e: String| {
                Failure::new(
                    Code::InvalidArgument,
                    format!("invalid JSON request body: {e}"),
                )
            };
            if bytes.iter().all(u8::is_ascii_whitespace) {
                DynamicMessage::new(route.input.clone())
            } else if route.body.is_empty() {
                route.input_json.read_json(&bytes).map_err(json_error)?
            } else {
                route
                    .input_json
                    .read_field_json(&route.body, &bytes)
                    .map_err(json_error)?
            }
        };
        let params: Vec<_> = params
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str().into()))
            .collect();
        route.binding.bind_path(&mut message, &params)?;
        if let Some(query) = parts.uri.query() {
            route.binding.bind_query(&mut message, query)?;
        }
        if let (Some(mask), Some(json)) = (&route.update_mask, &body_json) {
            fill_mask(&mut message, mask, route.body.last(), json);
        }
        Ok(message)
    }

    /// Header and trailer metadata of a finished reply, as response headers.
    fn reply_headers(&self, headers: &HeaderMap, trailers: &HeaderMap) -> HeaderMap {
        let matchers = &self.gateway.inner.matchers;
        let mut response_headers = HeaderMap::new();
        headers::outgoing(&matchers.outgoing_header, headers, &mut response_headers);
        headers::outgoing(&matchers.outgoing_trailer, trailers, &mut response_headers);
        response_headers
    }

    /// `grpc.health.v1.Health/Check` as an HTTP answer.
    async fn health(&self, query: &str) -> Result<http::Response<Body>, Failure> {
        use crate::health::pb::health_check_response::ServingStatus;
        use crate::health::pb::{HealthCheckRequest, HealthCheckResponse};
        let service = query
            .split('&')
            .filter_map(|pair| pair.strip_prefix("service="))
            .next_back()
            .map(|value| grpc::percent_decode(value.replace('+', " ").as_bytes()))
            .unwrap_or_default();
        let path = http::uri::PathAndQuery::from_static("/grpc.health.v1.Health/Check");
        let request = HealthCheckRequest {
            service: service.clone(),
        };
        let call = grpc::request(
            &path,
            HeaderMap::new(),
            grpc::body(grpc::frame_message(&request)),
        );
        let limit = self.gateway.inner.max_reply_size;
        let exchange = async {
            let mut reply = Reply::start(&self.backend, call)
                .await
                .map_err(|(_, failure)| failure)?;
            let message = reply.message(limit).await?;
            if message.is_some() {
                // Read on to the trailers.
                reply.message(limit).await?;
            }
            reply.finish().1?;
            message.ok_or_else(|| Failure::new(Code::Internal, "health reply without a message"))
        };
        let timeout = self
            .gateway
            .inner
            .timeout
            .unwrap_or(Duration::from_secs(10));
        let message = tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| Failure::new(Code::DeadlineExceeded, "health check timed out"))??;
        let status = HealthCheckResponse::decode(message)
            .map_err(|e| Failure::new(Code::Internal, format!("undecodable health reply: {e}")))?
            .status();
        if status != ServingStatus::Serving {
            let what = if service.is_empty() {
                "server"
            } else {
                service.as_str()
            };
            return Err(Failure::new(
                Code::Unavailable,
                format!("{what} is {}", status.as_str_name()),
            ));
        }
        Ok(json_response(
            StatusCode::OK,
            br#"{"status":"SERVING"}"#.to_vec(),
        ))
    }

    /// Reads a request body within the size limit.
    async fn read_body(&self, headers: &HeaderMap, body: Body) -> Result<Bytes, Failure> {
        let limit = self.gateway.inner.max_body_size;
        let too_large = || {
            Failure::new(
                Code::ResourceExhausted,
                format!("request body exceeds the limit of {limit} bytes"),
            )
            .http(StatusCode::PAYLOAD_TOO_LARGE)
        };
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > limit as u64) {
            return Err(too_large());
        }
        match http_body_util::Limited::new(body, limit).collect().await {
            Ok(collected) => Ok(collected.to_bytes()),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
            Err(e) => Err(Failure::new(
                Code::InvalidArgument,
                format!("reading the request body: {e}"),
            )),
        }
    }

    /// The reply (or its `response_body` field) as JSON.
    fn reply_json(&self, route: &RpcRoute, message: &Bytes) -> Result<Vec<u8>, Failure> {
        let json = &route.output_json;
        let reply = DynamicMessage::decode(route.output.clone(), message.clone())
            .map_err(|e| Failure::new(Code::Internal, format!("undecodable gRPC reply: {e}")))?;
        match &route.response_body {
            None => json.write_json(&reply),
            Some(field) => json.write_field_json(reply, field),
        }
        .map_err(|e| Failure::new(Code::Internal, format!("reply to JSON: {e}")))
    }

    /// A streaming reply: newline-delimited `{"result": ...}` objects, ending with an
    /// `{"error": ...}` line on failure; or Server-Sent Events (`data:` lines, an `error`
    /// event on failure); or a JSON array of the messages, aborted on failure; or, for
    /// `HttpBody` replies, their bytes back to back, aborted on failure. `first` is a reply
    /// read already (always, for framings without in-band errors: see
    /// [`Framing::in_band_errors`]); `input` watches the request stream of a bidi call,
    /// whose failure ends the reply (and the call) at once.
    fn stream(
        &self,
        route: &RpcRoute,
        mut reply: Reply,
        first: Option<Bytes>,
        mut input: Option<InputWatch>,
        framing: Framing,
    ) -> Result<http::Response<Body>, Failure> {
        let content_type = match (framing, &first) {
            (Framing::Raw, Some(first)) => {
                let first =
                    raw_body::reply(&route.output, route.response_body.as_ref(), first.clone())?;
                raw_body::content_type(&first)?
            }
            _ => framing.content_type(),
        };
        let (tx, rx) = mpsc::channel::<Result<Bytes, BoxError>>(16);
        let this = self.clone();
        let route_output = route.output.clone();
        let output_json = route.output_json.clone();
        let response_body = route.response_body.clone();
        let mut headers = HeaderMap::new();
        headers::outgoing(
            &self.gateway.inner.matchers.outgoing_header,
            &reply.headers,
            &mut headers,
        );
        let limit = self.gateway.inner.max_reply_size;
        tokio::spawn(async move {
            let json = &output_json;
            // One reply as the bytes the client gets; `opening` when none went before it.
            let chunk = |message: Bytes, opening: bool| -> Result<Bytes, Failure> {
                if framing == Framing::Raw {
                    let body = raw_body::reply(&route_output, response_body.as_ref(), message)?;
                    return Ok(Bytes::from(body.data));
                }
                let json = DynamicMessage::decode(route_output.clone(), message)
                    .map_err(|e| e.to_string())
                    .and_then(|message| match &response_body {
                        None => json.write_json(&message),
                        Some(field) => json.write_field_json(message, field),
                    })
                    .map_err(|e| Failure::new(Code::Internal, format!("reply to JSON: {e}")))?;
                Ok(framing.frame(opening, &json))
            };
            let mut next = first.map(|first| Ok(Some(first)));
            // Whether a reply went out (for a JSON array: whether its `[` did).
            let mut opened = false;
            loop {
                let message = match (next.take(), &mut input) {
                    (Some(message), _) => message,
                    (None, None) => reply.message(limit).await,
                    (None, Some(input)) => tokio::select! {
                        biased;
                        failure = input.failed() => Err(failure),
                        message = reply.message(limit) => message,
                    },
                };
                let failure = match message.map(|m| m.map(|m| chunk(m, !opened))) {
                    Ok(Some(Ok(bytes))) => {
                        opened = true;
                        if !bytes.is_empty() && tx.send(Ok(bytes)).await.is_err() {
                            return; // the client went away; dropping `reply` cancels
                        }
                        continue;
                    }
                    Ok(Some(Err(failure))) => failure,
                    Ok(None) => match reply.finish().1 {
                        Ok(()) => {
                            let end = framing.end(opened);
                            if !end.is_empty() {
                                let _ = tx.send(Ok(end)).await;
                            }
                            return;
                        }
                        Err(failure) => failure,
                    },
                    Err(failure) => failure,
                };
                let failure = input
                    .as_mut()
                    .and_then(InputWatch::take_failure)
                    .unwrap_or(failure);
                // Returning drops `reply`, which cancels a call still running. Without a way
                // to say "failed" in the body, the body itself fails: hyper then closes the
                // HTTP/1.1 connection before the last chunk, or resets the HTTP/2 stream, so
                // the client cannot take what it got for the whole answer.
                let end = if framing.in_band_errors() {
                    Ok(framing.error(&this.status_json(&failure)))
                } else {
                    Err(format!(
                        "the call failed after its reply started: {:?}: {}",
                        failure.code, failure.message
                    )
                    .into())
                };
                let _ = tx.send(end).await;
                return;
            }
        });
        let mut response = http::Response::new(Body::new(ChannelBody(rx)));
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, content_type);
        response.headers_mut().extend(headers);
        Ok(response)
    }

    fn with_metadata(&self, mut failure: Failure, metadata: &HeaderMap) -> Failure {
        let matchers = &self.gateway.inner.matchers;
        headers::outgoing(&matchers.outgoing_header, metadata, &mut failure.headers);
        failure
    }

    /// `google.rpc.Status` as JSON, with `details` resolved through the descriptor pool.
    fn status_json(&self, failure: &Failure) -> Vec<u8> {
        let inner = &self.gateway.inner;
        let mut status = failure
            .details
            .as_ref()
            .and_then(|details| DynamicMessage::decode(inner.status.clone(), details.clone()).ok())
            .unwrap_or_else(|| DynamicMessage::new(inner.status.clone()));
        status.set_field_by_name("code", Value::I32(failure.code as i32));
        status.set_field_by_name("message", Value::String(failure.message.clone()));
        if let Ok(json) = inner.status_json.write_json(&status) {
            return json;
        }
        // A detail of a type the pool does not know: keep it as base64, as `Any` holds it.
        use base64::Engine as _;
        let details: Vec<_> = failure
            .details
            .as_ref()
            .and_then(|d| crate::google::rpc::Status::decode(d.clone()).ok())
            .map(|s| s.details)
            .unwrap_or_default()
            .into_iter()
            .map(|any| {
                serde_json::json!({
                    "@type": any.type_url,
                    "value": base64::engine::general_purpose::STANDARD.encode(any.value),
                })
            })
            .collect();
        serde_json::to_vec(&serde_json::json!({
            "code": failure.code as i32,
            "message": failure.message,
            "details": details,
        }))
        .unwrap_or_default()
    }

    fn error(&self, mut failure: Failure) -> http::Response<Body> {
        let mut json = self.status_json(&failure);
        let (mut head, ()) = http::Response::new(()).into_parts();
        head.status = failure.status();
        head.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        head.headers.extend(std::mem::take(&mut failure.headers));
        if let Some(hook) = &self.gateway.inner.on_error {
            (hook.0)(&mut head, &mut json);
            if bodiless(head.status) {
                return without_body(head);
            }
        }
        http::Response::from_parts(
            head,
            Body::new(http_body_util::Full::new(Bytes::from(json))),
        )
    }
}

enum Exchange {
    /// One reply message and the response headers (trailers included).
    Unary(Bytes, HeaderMap),
    /// A reply stream, with its first message when it was read already (bidi).
    Stream(Reply, Option<Bytes>),
    /// A bidi call that ended well without a reply, and the response headers.
    NoReplies(HeaderMap),
}

/// Checks a request body's declared type: JSON (`application/json`, `*+json`), also
/// newline-delimited for a request stream (`application/x-ndjson`, `application/jsonl`),
/// or none.
fn content_type(headers: &HeaderMap, stream: bool) -> Result<(), Failure> {
    let Some(content_type) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let media = content_type
        .to_str()
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let json = media == "application/json" || media.ends_with("+json");
    let lines = media == "application/x-ndjson" || media == "application/jsonl";
    if json || (stream && lines) {
        return Ok(());
    }
    let send = if stream {
        "application/x-ndjson, one JSON message per line"
    } else {
        "application/json"
    };
    Err(Failure::new(
        Code::InvalidArgument,
        format!("unsupported content type {media:?}: send {send}"),
    )
    .http(StatusCode::UNSUPPORTED_MEDIA_TYPE))
}

fn json_response(status: StatusCode, json: Vec<u8>) -> http::Response<Body> {
    let mut response = raw_response(
        HeaderValue::from_static("application/json"),
        Bytes::from(json),
    );
    *response.status_mut() = status;
    response
}

/// `response` after the [`GatewayBuilder::on_reply`] hook, without a body if its new status
/// cannot have one.
fn adjusted(response: http::Response<Body>, hook: &ReplyHook) -> http::Response<Body> {
    let (mut head, body) = response.into_parts();
    (hook.0)(&mut head);
    if bodiless(head.status) {
        // Dropping the body of a stream cancels its call, as a client going away would.
        return without_body(head);
    }
    http::Response::from_parts(head, body)
}

/// The answer to a HEAD request: the GET answer's head, with the length its body would
/// have had when that is known, and no body (hyper drops it over HTTP/1.1 but would send it
/// over HTTP/2; a dropped reply stream cancels its call).
fn head_only(response: http::Response<Body>) -> http::Response<Body> {
    use http_body::Body as _;
    let (mut head, body) = response.into_parts();
    if let Some(len) = body.size_hint().exact()
        && !bodiless(head.status)
        && !head.headers.contains_key(header::CONTENT_LENGTH)
    {
        head.headers
            .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    http::Response::from_parts(head, Body::empty())
}

/// Whether HTTP forbids a body with `status` (1xx, 204, 304).
fn bodiless(status: StatusCode) -> bool {
    status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
}

fn without_body(mut head: http::response::Parts) -> http::Response<Body> {
    head.headers.remove(header::CONTENT_TYPE);
    head.headers.remove(header::CONTENT_LENGTH);
    http::Response::from_parts(head, Body::empty())
}

fn raw_response(content_type: HeaderValue, data: Bytes) -> http::Response<Body> {
    let mut response = http::Response::new(Body::new(http_body_util::Full::new(data)));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, content_type);
    response
}

/// A response body fed by a channel (streaming replies); an error aborts the response.
struct ChannelBody(mpsc::Receiver<Result<Bytes, BoxError>>);

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, BoxError>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|chunk| chunk.map(http_body::Frame::data)))
    }
}

/// Hands an in-process handler the connection the REST call came on, as tonic hands it a
/// gRPC call's: `remote_addr()`, and `peer_certs()` behind TLS. (A proxied call's handler
/// sees the proxy's own connection, as behind any proxy; `x-forwarded-for` names the peer.)
fn connect_info(from: &http::Extensions, to: &mut http::Extensions) {
    use tonic::transport::server::TcpConnectInfo;
    if let Some(info) = from.get::<TcpConnectInfo>() {
        to.insert(info.clone());
    }
    #[cfg(feature = "tls")]
    if let Some(info) = from.get::<tonic::transport::server::TlsConnectInfo<TcpConnectInfo>>() {
        to.insert(info.clone());
    }
}

/// The address a request came from: its connection's peer (plain or TLS), else a
/// `SocketAddr` the embedding server put in its extensions.
fn peer(extensions: &http::Extensions) -> Option<SocketAddr> {
    extensions
        .get::<tonic::transport::server::TcpConnectInfo>()
        .and_then(|info| info.remote_addr())
        .or_else(|| tls_peer(extensions))
        .or_else(|| extensions.get::<SocketAddr>().copied())
}

/// The peer of a TLS connection (a TLS port of `rzero::Server`).
#[cfg(feature = "tls")]
fn tls_peer(extensions: &http::Extensions) -> Option<SocketAddr> {
    use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
    extensions
        .get::<TlsConnectInfo<TcpConnectInfo>>()
        .and_then(|info| info.get_ref().remote_addr())
}

#[cfg(not(feature = "tls"))]
fn tls_peer(_: &http::Extensions) -> Option<SocketAddr> {
    None
}

/// Serves `service` on `listener` (HTTP/1.1 and h2c) until `signal` completes.
pub async fn serve<F>(
    listener: tokio::net::TcpListener,
    service: GatewayService,
    signal: F,
) -> Result<(), crate::Error>
where
    F: Future<Output = ()> + Send,
{
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    serve_incoming(incoming, service, signal).await
}

/// Serves `service` on the connections of `incoming` (plain TCP or TLS; HTTP/1.1 and HTTP/2)
/// until `signal` completes.
pub(crate) async fn serve_incoming<I, IO, IE, F>(
    incoming: I,
    service: GatewayService,
    signal: F,
) -> Result<(), crate::Error>
where
    I: tokio_stream::Stream<Item = Result<IO, IE>>,
    IO: tokio::io::AsyncRead
        + tokio::io::AsyncWrite
        + tonic::transport::server::Connected
        + Unpin
        + Send
        + 'static,
    IE: Into<Box<dyn std::error::Error + Send + Sync>>,
    F: Future<Output = ()>,
{
    // Many answers come before the end of the request body: keep HTTP/1.1 connections.
    let (signal, shutdown) = crate::drain::Shutdown::on(signal);
    let service = crate::drain::Draining {
        inner: service,
        shutdown,
    };
    tonic::transport::Server::builder()
        .accept_http1(true)
        .serve_with_incoming_shutdown(service, incoming, signal)
        .await
        .map_err(crate::Error::transport)
}
