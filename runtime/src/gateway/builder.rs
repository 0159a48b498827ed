//! Building a gateway: descriptor sets, rules, hand-written routes and options, checked all
//! at once at startup.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use prost_reflect::DescriptorPool;
use tonic::body::Body;

use super::binding::{Binding, Body as BodyRule};
use super::descriptors::GOOGLE_RPC;
use super::field_mask::patch_mask;
use super::framing::StreamFraming;
use super::headers::Matchers;
use super::json::JsonOptions;
use super::raw_body;
use super::router::{MultiSegmentDecoding, Router};
use super::rules::{self, GatewayBuildError, HttpRule};
use super::service::{Gateway, Inner, Route, RpcRoute};
use crate::cors::Cors;
use crate::method::{MethodDescriptor as RzeroMethod, MethodKind};

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// What generated code hands over for one `.proto` file or service: the encoded
/// `FileDescriptorSet` (with imports) and the HTTP rules that refer to it.
#[derive(Clone, Copy, Debug)]
pub struct ServiceRules {
    /// An encoded `google.protobuf.FileDescriptorSet` holding the services' files and
    /// everything they import.
    pub descriptor_set: &'static [u8],
    /// The rules, one per binding.
    pub rules: &'static [HttpRule],
}

/// Adjusts the head of a successful RPC reply; see [`GatewayBuilder::on_reply`].
#[derive(Clone)]
pub(super) struct ReplyHook(pub(super) Arc<dyn Fn(&mut http::response::Parts) + Send + Sync>);

impl fmt::Debug for ReplyHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReplyHook")
    }
}

/// Rewrites an error answer; see [`GatewayBuilder::on_error`].
#[derive(Clone)]
pub(super) struct ErrorHook(pub(super) Arc<ErrorFn>);

type ErrorFn = dyn Fn(&mut http::response::Parts, &mut Vec<u8>) + Send + Sync;

impl fmt::Debug for ErrorHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ErrorHook")
    }
}

/// Path variables of a hand-written route: (name, decoded value), in template order.
pub type PathParams = Vec<(String, String)>;

/// A hand-written route's handler.
pub type Handler =
    Arc<dyn Fn(http::Request<Body>, PathParams) -> BoxFuture<http::Response<Body>> + Send + Sync>;

/// Collects descriptor sets, rules, hand-written routes and options; [`build`](Self::build)
/// checks them all and reports every problem at once.
#[must_use]
pub struct GatewayBuilder {
    descriptor_sets: Vec<Bytes>,
    rules: Vec<HttpRule>,
    handlers: Vec<(String, String, Handler)>,
    json: JsonOptions,
    max_body_size: usize,
    max_reply_size: usize,
    timeout: Option<Duration>,
    matchers: Matchers,
    reject_unknown_query_params: bool,
    plus_as_space: bool,
    decoding: MultiSegmentDecoding,
    strict_trailing_slash: bool,
    stream_framing: StreamFraming,
    healthz: Option<String>,
    cors: Option<Cors>,
    on_reply: Option<ReplyHook>,
    on_error: Option<ErrorHook>,
}

impl fmt::Debug for GatewayBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GatewayBuilder")
            .field("rules", &self.rules)
            .field("handlers", &self.handlers.len())
            .field("json", &self.json)
            .field("max_body_size", &self.max_body_size)
            .field("max_reply_size", &self.max_reply_size)
            .field("timeout", &self.timeout)
            .field("stream_framing", &self.stream_framing)
            .field("cors", &self.cors)
            .finish_non_exhaustive()
    }
}

impl Default for GatewayBuilder {
    fn default() -> Self {
        GatewayBuilder {
            descriptor_sets: Vec::new(),
            rules: Vec::new(),
            handlers: Vec::new(),
            json: JsonOptions::default(),
            max_body_size: 4 * 1024 * 1024,
            max_reply_size: 4 * 1024 * 1024,
            timeout: None,
            matchers: Matchers::default(),
            reject_unknown_query_params: false,
            plus_as_space: true,
            decoding: MultiSegmentDecoding::default(),
            strict_trailing_slash: false,
            stream_framing: StreamFraming::default(),
            healthz: None,
            cors: None,
            on_reply: None,
            on_error: None,
        }
    }
}

impl GatewayBuilder {
    /// Adds what generated code emits for a service: its descriptor set and rules.
    pub fn service(self, rules: &ServiceRules) -> Self {
        self.descriptor_set(rules.descriptor_set)
            .rules(rules.rules.iter().copied())
    }

    /// Adds an encoded `FileDescriptorSet`; files already added are skipped.
    pub fn descriptor_set(mut self, bytes: impl Into<Bytes>) -> Self {
        self.descriptor_sets.push(bytes.into());
        self
    }

    /// Adds rules.
    pub fn rules(mut self, rules: impl IntoIterator<Item = HttpRule>) -> Self {
        self.rules.extend(rules);
        self
    }

    /// Adds a hand-written route with the same template syntax and router as the rules
    /// (`method` `*` matches any method).
    pub fn route<F, Fut>(mut self, method: &str, template: &str, handler: F) -> Self
    where
        F: Fn(http::Request<Body>, PathParams) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = http::Response<Body>> + Send + 'static,
    {
        let handler: Handler = Arc::new(move |request, params| Box::pin(handler(request, params)));
        self.handlers
            .push((method.to_owned(), template.to_owned(), handler));
        self
    }

    /// How messages map to JSON.
    pub fn json(mut self, options: JsonOptions) -> Self {
        self.json = options;
        self
    }

    /// The largest request body read, in bytes; larger ones get 413. For methods that stream
    /// their requests, the largest line (one message) instead: the body has no limit.
    /// Proxied gRPC-Web calls
    /// ([`GatewayService::grpc_web`](super::GatewayService::grpc_web)) get
    /// `RESOURCE_EXHAUSTED` over it. Default: 4 MiB.
    pub fn max_body_size(mut self, bytes: usize) -> Self {
        self.max_body_size = bytes;
        self
    }

    /// The largest reply message accepted from the service, in bytes. Default: 4 MiB.
    pub fn max_reply_size(mut self, bytes: usize) -> Self {
        self.max_reply_size = bytes;
        self
    }

    /// Deadline for calls whose request carries no `Grpc-Timeout` (and upper bound for
    /// those that do). Default: none.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Drops the deadline [`timeout`](Self::timeout) set (a config's `Timeout: 0`).
    #[cfg(feature = "config")]
    pub(crate) fn without_timeout(mut self) -> Self {
        self.timeout = None;
        self
    }

    /// The JSON options so far, for a config that changes only some of them.
    #[cfg(feature = "config")]
    pub(crate) fn json_options(&self) -> JsonOptions {
        self.json
    }

    /// Chooses which request headers become gRPC metadata and under which name (given the
    /// lower-case header name). Default: [`default_incoming`](super::default_incoming).
    pub fn incoming_header_matcher(
        mut self,
        matcher: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.matchers.incoming = Arc::new(matcher);
        self
    }

    /// Chooses which response header metadata become HTTP headers, and their names.
    /// Default: `k` → `Grpc-Metadata-k`.
    pub fn outgoing_header_matcher(
        mut self,
        matcher: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.matchers.outgoing_header = Arc::new(matcher);
        self
    }

    /// Chooses which trailer metadata become HTTP headers, and their names.
    /// Default: `k` → `Grpc-Trailer-k`.
    pub fn outgoing_trailer_matcher(
        mut self,
        matcher: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.matchers.outgoing_trailer = Arc::new(matcher);
        self
    }

    /// Query parameters that name no field are a 400 instead of being ignored.
    pub fn reject_unknown_query_params(mut self, reject: bool) -> Self {
        self.reject_unknown_query_params = reject;
        self
    }

    /// Whether `+` in a query string is a space (default) or a literal `+`.
    pub fn plus_as_space(mut self, yes: bool) -> Self {
        self.plus_as_space = yes;
        self
    }

    /// How multi-segment path variables are decoded; see [`MultiSegmentDecoding`].
    pub fn multi_segment_decoding(mut self, decoding: MultiSegmentDecoding) -> Self {
        self.decoding = decoding;
        self
    }

    /// Whether `/v1/books/` fails to match `/v1/books` (default: it matches).
    pub fn strict_trailing_slash(mut self, strict: bool) -> Self {
        self.strict_trailing_slash = strict;
        self
    }

    /// How streamed replies (server streaming, bidi) are written when the request's `Accept`
    /// does not choose; see [`StreamFraming`]. Default: [`StreamFraming::Ndjson`],
    /// grpc-gateway's framing, so its clients work unchanged.
    ///
    /// Whatever the default, each request may choose by naming a media type in `Accept`
    /// (every `Accept` header is read, types compared case-insensitively, parameters such as
    /// `q` ignored): `application/x-ndjson` or `application/jsonl` for NDJSON, else
    /// `text/event-stream` for Server-Sent Events, else `application/json` **alone** for a
    /// JSON array (next to other types, as axios and others send it by habit, or
    /// `*/*` and `application/*` alone, it chooses nothing). `HttpBody` replies are
    /// always their raw bytes.
    ///
    /// Envoy's transcoder answers a JSON array, which a client can decode into a list of the
    /// reply type; with [`StreamFraming::JsonArray`] here, clients written for Envoy work
    /// without sending `Accept`:
    ///
    /// ```
    /// use rzero::gateway::{Gateway, StreamFraming};
    ///
    /// let builder = Gateway::builder().stream_framing(StreamFraming::JsonArray);
    /// ```
    pub fn stream_framing(mut self, framing: StreamFraming) -> Self {
        self.stream_framing = framing;
        self
    }

    /// Answers `GET <path>` (e.g. `/healthz`) from the service's `grpc.health.v1.Health/Check`
    /// (`?service=name` asks about one service): 200 `{"status": "SERVING"}`, 503 when not
    /// serving, 404 for an unknown service, as a Status body like every error.
    pub fn healthz(mut self, path: &str) -> Self {
        self.healthz = Some(path.to_owned());
        self
    }

    /// Lets browser pages from other origins call the gateway; see [`Cors`]. Default: no
    /// CORS (preflights are routed like any `OPTIONS` request, no `Access-Control-*`
    /// headers).
    pub fn cors(mut self, cors: Cors) -> Self {
        self.cors = Some(cors);
        self
    }

    /// Calls `hook` on the head of every successful RPC reply (unary replies, and streams
    /// before their first byte) before it is sent, with the reply's metadata already mapped
    /// to headers (`Grpc-Metadata-*`, `Grpc-Trailer-*`): grpc-gateway's
    /// `WithForwardResponseOption`. It may change the status or any header. A status that
    /// cannot have a body (1xx, 204, 304) gets none. Errors and hand-written routes are not
    /// passed to it.
    ///
    /// A service choosing its HTTP status, e.g. `201 Created` with a `Location`, through
    /// header metadata:
    ///
    /// ```
    /// use http::{StatusCode, header};
    ///
    /// let builder = rzero::gateway::Gateway::builder().on_reply(|head| {
    ///     let code = head.headers.remove("grpc-metadata-x-http-code");
    ///     if let Some(code) = code.and_then(|v| StatusCode::from_bytes(v.as_bytes()).ok()) {
    ///         head.status = code;
    ///     }
    ///     if let Some(location) = head.headers.remove("grpc-metadata-location") {
    ///         head.headers.insert(header::LOCATION, location);
    ///     }
    /// });
    /// ```
    pub fn on_reply<F>(mut self, hook: F) -> Self
    where
        F: Fn(&mut http::response::Parts) + Send + Sync + 'static,
    {
        self.on_reply = Some(ReplyHook(Arc::new(hook)));
        self
    }

    /// Calls `hook` on every error answer before it is sent: its head (the status mapped
    /// from the gRPC code, `Content-Type: application/json`, forwarded metadata) and its body
    /// (the `google.rpc.Status` JSON), either of which it may rewrite, e.g. into an envelope
    /// of your own. Every answer that is not a success goes through it: failed calls, bad
    /// requests (400, 413, 415), no route (404), wrong method (405), deadlines, `/healthz`
    /// failures, a refused CORS preflight. The `{"error": ...}` line or event ending a
    /// stream that already sent replies does not (its head went out with the first reply).
    ///
    /// go-zero's `{"code": ..., "msg": ...}` envelope, keeping the HTTP status:
    ///
    /// ```
    /// let builder = rzero::gateway::Gateway::builder().on_error(|_head, body| {
    ///     let status: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    ///     let envelope = serde_json::json!({"code": status["code"], "msg": status["message"]});
    ///     *body = envelope.to_string().into_bytes();
    /// });
    /// ```
    pub fn on_error<F>(mut self, hook: F) -> Self
    where
        F: Fn(&mut http::response::Parts, &mut Vec<u8>) + Send + Sync + 'static,
    {
        self.on_error = Some(ErrorHook(Arc::new(hook)));
        self
    }

    /// Checks the descriptor sets and every rule and route, reporting all problems at once.
    pub fn build(self) -> Result<Gateway, GatewayBuildError> {
        let mut errors = Vec::new();
        let mut pool = DescriptorPool::new();
        for (i, set) in self.descriptor_sets.iter().enumerate() {
            if let Err(e) = pool.decode_file_descriptor_set(set.clone()) {
                errors.push(format!("descriptor set #{i}: {e}"));
            }
        }
        if let Err(e) = pool.decode_file_descriptor_set(GOOGLE_RPC) {
            errors.push(format!("google.rpc descriptors: {e}"));
        }
        let status = pool.get_message_by_name("google.rpc.Status");
        let mut router = Router::new()
            .multi_segment_decoding(self.decoding)
            .strict_trailing_slash(self.strict_trailing_slash);
        for rule in &self.rules {
            let checked = match rules::check(&pool, rule) {
                Ok(checked) => checked,
                Err(e) => {
                    errors.extend(e);
                    continue;
                }
            };
            let (service, method) = rule.split_method().expect("checked");
            let kind = MethodKind::of(
                checked.method.is_client_streaming(),
                checked.method.is_server_streaming(),
            );
            let body = match rule.body {
                "" => BodyRule::None,
                "*" => BodyRule::All,
                field => BodyRule::Field(field.to_owned()),
            };
            let binding = Binding::new(&checked.template, body)
                .reject_unknown_query_params(self.reject_unknown_query_params)
                .plus_as_space(self.plus_as_space);
            let update_mask = patch_mask(rule, &checked.method.input(), &checked.body);
            let raw_request = match (rule.body, checked.body.last()) {
                ("", _) => false,
                (_, None) => raw_body::is_http_body(&checked.method.input()),
                (_, Some(field)) => raw_body::is_http_body_field(field),
            };
            let raw_reply = match &checked.response_body {
                None => raw_body::is_http_body(&checked.method.output()),
                Some(field) => raw_body::is_http_body_field(field),
            };
            let route = RpcRoute {
                rule: *rule,
                descriptor: RzeroMethod::new(service, method, rule.method, kind, false),
                grpc_path: http::uri::PathAndQuery::from_static(rule.method),
                input: checked.method.input(),
                output: checked.method.output(),
                input_json: self.json.reader(&checked.method.input()),
                output_json: self.json.writer(&checked.method.output()),
                binding,
                body: checked.body,
                response_body: checked.response_body,
                update_mask,
                raw_request,
                raw_reply,
            };
            if let Err(e) =
                router.insert(rule.http_method, rule.template, Route::Rpc(Arc::new(route)))
            {
                errors.push(format!("{rule}: {e}"));
            }
        }
        if let Some(path) = &self.healthz
            && let Err(e) = router.insert("GET", path, Route::Health)
        {
            errors.push(format!("healthz {path}: {e}"));
        }
        for (method, template, handler) in self.handlers {
            if let Err(e) = router.insert(&method, &template, Route::Handler(handler)) {
                errors.push(format!("route {method} {template}: {e}"));
            }
        }
        let cors = match self.cors.map(Cors::compile).transpose() {
            Ok(cors) => cors,
            Err(e) => {
                errors.extend(e);
                None
            }
        };
        let (Some(status), true) = (status, errors.is_empty()) else {
            return Err(GatewayBuildError::new(errors));
        };
        #[cfg(feature = "grpc-web")]
        let methods = pool
            .services()
            .flat_map(|service| service.methods().collect::<Vec<_>>())
            .map(|method| {
                let path = format!("/{}/{}", method.parent_service().full_name(), method.name());
                let kind =
                    MethodKind::of(method.is_client_streaming(), method.is_server_streaming());
                (path.into_boxed_str(), kind)
            })
            .collect();
        Ok(Gateway {
            inner: Arc::new(Inner {
                router,
                status_json: self.json.writer(&status),
                status,
                max_body_size: self.max_body_size,
                max_reply_size: self.max_reply_size,
                timeout: self.timeout,
                matchers: self.matchers,
                stream_framing: self.stream_framing,
                cors,
                on_reply: self.on_reply,
                on_error: self.on_error,
                #[cfg(feature = "grpc-web")]
                methods: Arc::new(methods),
            }),
        })
    }
}
