//! REST/JSON gateway from `google.api.http` annotations: path templates, routing, binding,
//! and the HTTP service that translates requests into gRPC calls.
//!
//! - [`PathTemplate`] parses the `google.api.http` template grammar. `protoc-gen-rzero` calls
//!   the same parser at generate time, so one grammar validates rules and matches requests.
//!   For that reason the parser (`gateway/template.rs`) uses `std` only and nothing else from
//!   this crate, and the router (`gateway/router.rs`) only adds the parser.
//! - [`Router`] maps (HTTP method, request path) to a route value and the captured variables.
//!   Generated routes and hand-written ones go through the same [`Router::insert`].
//! - `Binding` (feature `gateway`) sets the captured variables and the query parameters on a
//!   `prost_reflect::DynamicMessage`, with typed `BindError`s that all mean 400.
//!
//! ```
//! use rzero::gateway::{RouteMatch, Router};
//!
//! let mut router = Router::new();
//! router.insert("GET", "/v1/{name=shelves/*}/books/{book_id}", "GetBook")?;
//! router.insert("POST", "/v1/{parent=shelves/*}/books", "CreateBook")?;
//! router.insert("POST", "/v1/{name=shelves/*/books/*}:archive", "ArchiveBook")?;
//!
//! let RouteMatch::Found(found) = router.find("GET", "/v1/shelves/s1/books/b%2F2:x") else {
//!     panic!("GetBook matches");
//! };
//! assert_eq!(*found.value, "GetBook");
//! assert_eq!(found.params, [("name", "shelves/s1".into()), ("book_id", "b/2:x".into())]);
//!
//! let RouteMatch::MethodNotAllowed(allowed) = router.find("GET", "/v1/shelves/s1/books") else {
//!     panic!("only POST is registered");
//! };
//! assert_eq!(allowed, ["POST"]); // → 405, `Allow: POST`
//! assert!(matches!(router.find("GET", "/v2/x"), RouteMatch::NotFound));
//! # Ok::<(), rzero::gateway::RouteError>(())
//! ```
//!
//! With the `gateway` feature, each route also keeps a `Binding` built from its rule; the
//! HTTP layer decodes the body into a `DynamicMessage`, then calls `binding.bind_path(&mut
//! message, &found.params)` and `binding.bind_query(&mut message, query)`.
//!
//! # Serving (feature `gateway`)
//! Generated code only hands over data: for each service with `google.api.http`
//! annotations, a `XXX_HTTP_RULES` constant, a [`ServiceRules`] (the package's encoded
//! `FILE_DESCRIPTOR_SET`, holding its files and those defining the types they use, and a
//! slice of [`HttpRule`]s, one per binding, `additional_bindings` flattened), through
//! `rzero::codegen::gateway`; `Gateway::builder().service(&pb::GREETER_HTTP_RULES)`. [`Gateway::builder`] collects those (or hand-written rules),
//! hand-written routes and options, and [`GatewayBuilder::build`] checks everything against
//! the descriptors at startup, reporting every problem at once, each naming its rule.
//!
//! ```no_run
//! # async fn run(grpc_services: rzero::ServerBuilder, descriptor_set: &'static [u8]) -> Result<(), Box<dyn std::error::Error>> {
//! use rzero::gateway::{Gateway, HttpRule};
//! const RULES: &[HttpRule] = &[
//!     HttpRule::new("/greeter.v1.Greeter/SayHello", "GET", "/v1/greeter/{name}"),
//!     HttpRule::new("/greeter.v1.Greeter/SayHello", "POST", "/v1/greeter").body("*"),
//! ];
//! let gateway = Gateway::new(descriptor_set, RULES)?;
//! // gRPC and REST on one port; `.gateway_on(listener, gateway)` for a port of its own.
//! grpc_services.gateway(gateway).serve("127.0.0.1:8080").await?;
//! # Ok(()) }
//! ```
//!
//! One code path, two modes: the gateway speaks gRPC (HTTP/2 framing, `application/grpc`,
//! `te: trailers`, `grpc-timeout`, status in trailers) to a tower service. **In-process**
//! ([`ServerBuilder::gateway`](crate::ServerBuilder::gateway) /
//! [`gateway_on`](crate::ServerBuilder::gateway_on)) that service is the server's own routes
//! with its interceptors: no socket, no HTTP/2 codec, but the same dispatch, limits and
//! interceptors as a network call. In-process, a unary call goes straight to the service
//! it names (not through the gRPC router) and hands rzero's dispatch the encoded message in
//! the request extensions, which hands the reply back the same way: no framing, no body
//! streams, no codec, no trailer parsing. Measured, that brought a small REST call's
//! instructions down to a direct gRPC call's (`bench/README.md`). The framed body is still
//! there for services rzero did not generate, and streaming calls take the gRPC path.
//! In-process handlers also see the REST call's connection, as they would a gRPC call's:
//! `remote_addr()`, and `peer_certs()` when the port speaks (mutual) TLS.
//! **Proxy** ([`Gateway::proxy`]) it is an
//! [`rzero::Client`](crate::Client)'s transport (direct channel or balancer);
//! [`Gateway::service`] takes any tower service (e.g. a tonic `Channel`). Every call carries
//! the method's [`MethodDescriptor`](crate::MethodDescriptor) in its extensions, so
//! balancers and interceptors see which method runs. A proxy can also answer gRPC-Web
//! (`GatewayService::grpc_web`, feature `grpc-web`; its decisions are in
//! `gateway/grpc_web.rs`), sending the calls on untranslated.
//!
//! **Decisions** (HTTP side):
//! - Request: body first (`*`: the whole message; a field path: that field, read as the
//!   field would be inside its message, so scalars, lists, maps and well-known types all
//!   work), then path variables (overriding the body), then the query (never touching
//!   path or body fields; ignored with `body: "*"`). Rules without a body never read it.
//!   An empty (or all-whitespace) body is an empty message, as in grpc-gateway.
//! - PATCH and FieldMask (grpc-gateway's patch feature, AIP-134): on a `patch` binding whose
//!   body is a field, when the request has exactly one top-level `FieldMask` and the client
//!   sent none (or an empty one), the mask is filled with the paths of the keys present in
//!   the JSON body, relative to the body field, as proto names, sorted. Plain message
//!   values are descended into; maps, lists, well-known types (Struct, Any, ...) and empty
//!   objects are leaves.
//! - Content type: a body must be `application/json` (parameters allowed) or `*+json`, or
//!   come without `Content-Type`; anything else is 415 (curl's default form encoding too,
//!   which would otherwise fail as malformed JSON). `HttpBody` targets take any type.
//! - `google.api.HttpBody` (`gateway/raw_body.rs`), for files, images, pages, uploads: when
//!   the body target (`*` on an `HttpBody` request, or an `HttpBody` field) or the reply (or
//!   its `response_body` field) is an `HttpBody`, the bytes move raw, with `Content-Type` as
//!   `content_type` both ways (`application/octet-stream` for an empty one). A request
//!   stream of them takes one message per body chunk (split at the body limit), so uploads
//!   of any size stream through; a reply stream is the messages' bytes back to back, typed
//!   by the first, and a failure after that first chunk **aborts** the response (connection
//!   closed, or the HTTP/2 stream reset) instead of appending a JSON error as grpc-gateway
//!   does, which would make a truncated download look complete. The body limit
//!   ([`GatewayBuilder::max_body_size`], 4 MiB) is checked against `Content-Length` first,
//!   then while reading: 413.
//! - JSON: the proto3 JSON mapping through `prost-reflect`'s serde support (conformance
//!   tested upstream), with `Any` resolved through the descriptor pool. Defaults are
//!   grpc-gateway v2's ([`JsonOptions`]): JSON names, unpopulated fields emitted, enums as
//!   names, 64-bit integers as strings, unknown input keys ignored. NaN and the infinities
//!   are the strings `"NaN"`, `"Infinity"`, `"-Infinity"` in `DoubleValue`/`FloatValue`
//!   wrappers too (prost-reflect alone writes those as `null`; the gateway corrects it); in
//!   a `google.protobuf.Value` they are an error, as the mapping says. With unpopulated
//!   fields emitted, unset singular message fields (well-known types too) and proto2
//!   scalars are `null`, at every depth (lists, map values, `Any` payloads), as protojson
//!   writes them (prost-reflect alone leaves them out; the gateway adds them, following a
//!   plan computed per route, so a type that cannot hold one pays nothing); oneof members
//!   and proto3 `optional` fields are left out when unset. A `response_body` naming an
//!   unset message field is that type's empty message, whatever the options (protojson of
//!   grpc-gateway's nil message), `{}` for an `Any`, `null` for a `Value` (where protojson
//!   fails); an unset scalar with presence is `null`. A set but empty `Any` (no type URL, no
//!   value: `Any::default()`) is `{}`, at every depth, and `{}` for an `Any` in a request
//!   reads as one, as protojson does (prost-reflect alone fails both ways; a `value` without
//!   a type URL stays an error).
//! - Errors: every answer that is not a success is a `google.rpc.Status` JSON body
//!   (`code`, `message`, `details` with `@type`) with the status `google/rpc/code.proto`
//!   maps the code to ([`http_status`]); details come from `grpc-status-details-bin`, and
//!   the gateway always knows `google.rpc` error detail types (an embedded descriptor set),
//!   whatever the service's set holds; an `Any` of an unknown type is written as
//!   `{"@type", "value": base64}`. Gateway-made errors use the same shape: no route 404
//!   (`NOT_FOUND`), wrong method 405 with `Allow` (`UNIMPLEMENTED`), malformed JSON or bad
//!   parameters 400 (`INVALID_ARGUMENT`), wrong content type 415 (`INVALID_ARGUMENT`), body
//!   too large 413 (`RESOURCE_EXHAUSTED`), unreachable service 503 (`UNAVAILABLE`).
//!   [`GatewayBuilder::on_error`] may rewrite any of them (status, headers, body) before it
//!   is sent, for an envelope of your own (gw#3259, go-zero's `{"code", "msg"}`).
//! - Deadlines: `Grpc-Timeout` (malformed: 400) or [`GatewayBuilder::timeout`], the smaller
//!   of the two, is sent on as `grpc-timeout` and enforced by the gateway too: 504.
//! - Headers in: `Authorization` and `Grpc-Metadata-<k>` (as `<k>`) by default, replaceable
//!   with [`GatewayBuilder::incoming_header_matcher`]; always `x-forwarded-for` (the sender's
//!   list plus the peer address) and `x-forwarded-host` (the sender's, else `Host`).
//!   Transport headers (`grpc-*`, `te`, `content-type`, hop-by-hop) are never forwarded,
//!   whatever the matcher says; values that are not printable ASCII are dropped.
//! - Headers out: header metadata `k` → `Grpc-Metadata-k`, trailer metadata `k` →
//!   `Grpc-Trailer-k` (matchers replaceable). Unary replies are buffered, so trailers are
//!   sent as ordinary response headers, whether or not the client sent `TE: trailers`
//!   (grpc-gateway drops them then).
//! - Status: 200 for every successful reply (the spec has no other), unless
//!   [`GatewayBuilder::on_reply`] changes it: a hook on the head of each successful reply
//!   (grpc-gateway's `WithForwardResponseOption`), e.g. `201 Created` and `Location` from
//!   header metadata the service sets. A status that cannot have a body (204, 304) gets
//!   none, so the hook cannot break HTTP/1.1 framing.
//! - Server streaming, three framings ([`StreamFraming`]):
//!   - newline-delimited JSON, `{"result": <message>}` per line and an `{"error": <Status>}`
//!     line if the call fails after the first message, with `Content-Type:
//!     application/x-ndjson`: grpc-gateway's framing (with an honest content type), the
//!     default so that grpc-gateway clients work unchanged;
//!   - Server-Sent Events (`data: <message>` per event, an `event: error` with the Status),
//!     for browsers' `EventSource`;
//!   - a JSON array of the plain messages, `[<message>,<message>]` (`[]` for none; one
//!     element per line, so `[{...}\n,{...}\n]`, for clients that read lines), with
//!     `Content-Type: application/json`: Envoy's transcoder's framing, which a client
//!     decodes into a list of the reply type (grpc-gateway's envelope lines fit no
//!     generated type, a common complaint). `response_body` applies to each element as
//!     it does to each line. An array cannot end in an error object without it reading as
//!     one more message, and a JSON parser takes a closed array for the whole answer, so a
//!     call failing after the first message **aborts** the response as an `HttpBody`
//!     stream does (connection closed before the last chunk, or the HTTP/2 stream reset):
//!     the array is never closed, and no client takes it for complete. Its head waits for
//!     the first message, so a call failing before it gets its HTTP status and Status body.
//!
//!   Each request chooses with `Accept` (every `Accept` header read, media types compared
//!   case-insensitively, parameters such as `q` ignored): `application/x-ndjson` or
//!   `application/jsonl` → NDJSON, else `text/event-stream` → SSE, else `application/json`
//!   alone → the array (next to other types it is habit, e.g. axios's `application/json,
//!   text/plain, */*`, or a grpc-gateway client, whose server labels its NDJSON
//!   `application/json`); else
//!   [`GatewayBuilder::stream_framing`] (NDJSON unless set). A call that fails before its
//!   first message gets the mapped status and a plain Status body in every framing (for
//!   NDJSON and SSE, when the service fails before sending its response headers).
//! - Client and bidi streaming: the request body is newline-delimited JSON, one request
//!   message per line (blank lines skipped, `\r\n` accepted, the last `\n` optional;
//!   `Content-Type` `application/x-ndjson`, `application/jsonl`, `application/json` or none,
//!   else 415). The body is **streamed**: each line is decoded and sent when it arrives, and
//!   read only as fast as the service takes messages, so a body may be endless;
//!   [`GatewayBuilder::max_body_size`] limits each line instead of the body (413 /
//!   `RESOURCE_EXHAUSTED`). Their rules must have `body: "*"` and no path variables,
//!   checked at build time as `protoc-gen-rzero` does: a field body would make each line
//!   one field's value, and one URL cannot bind many messages (grpc-gateway refuses path
//!   variables too; the query is ignored, as for any `*` body).
//! - Client streaming answers one JSON message, like a unary call. Bidi answers in the
//!   server-streaming framing above, each reply written when it comes, so a client can send
//!   a line, read its reply, then send the next, over HTTP/1.1 (chunked) or HTTP/2. The
//!   response head of a bidi call waits for the first reply, so a call failing before it
//!   (on a bad first line, say) still gets its HTTP status and a Status body. An empty body
//!   is a stream of no messages.
//! - A line that is not a message, or too long, cancels the call, and its error is the
//!   answer whatever the service made of the cancelled stream: `INVALID_ARGUMENT` naming
//!   the line (`line 3: invalid JSON request message: ...`), as a 400 before any reply, as
//!   an `{"error": ...}` line (or event, or an aborted array) after.
//! - CORS ([`Cors`], [`GatewayBuilder::cors`]) is opt-in: without it nothing changes, and
//!   the cost is one `Option` check per request. With it:
//!   - the gateway answers preflights (`OPTIONS` with `Origin` and
//!     `Access-Control-Request-Method`) itself, before any handler, asking the router
//!     ([`Router::find`]) about the requested method: 204 with the CORS headers when a route
//!     takes it, the usual 405 (with `Allow`) or 404 otherwise. An `OPTIONS` without
//!     `Access-Control-Request-Method` is routed as any request;
//!   - a preflight from an origin not allowed is 403 with a Status body
//!     (`PERMISSION_DENIED`, naming the origin), never a dropped connection; an actual
//!     request from such an origin is served as usual, without CORS headers (same-origin
//!     `POST`s carry `Origin` too): the browser keeps the answer from the page;
//!   - every answer to an allowed origin (replies, every error, streams, hand-written
//!     routes, health) gets `Access-Control-Allow-Origin` and exposes its own
//!     `Grpc-Metadata-*` and `Grpc-Trailer-*` headers (how the gateway returns gRPC
//!     metadata; scripts cannot read them otherwise). One wrapper around the routing does
//!     it, so no answer path can miss it; the gateway owns those `Access-Control-*`
//!     headers and replaces any a hand-written route set (two `Allow-Origin` values break
//!     browsers, grpc-gateway#1827);
//!   - listed origins are mirrored, and every answer then says `Vary: Origin` (appended to
//!     an existing `Vary`), also to requests without `Origin`, as the Fetch standard asks
//!     (rs/cors does the same); `*` varies by nothing;
//!   - credentials need listed origins: with [`Cors::any_origin`] they are refused at build
//!     time (browsers reject `*` on credentialed requests; go-zero sends both).
//! - Serving: HTTP/1.1 and h2c, on tonic's server stack (so the same connection handling,
//!   limits and graceful shutdown as gRPC). On a shared port, `Content-Type:
//!   application/grpc*` goes to gRPC, everything else to the gateway. Hand-written routes
//!   ([`GatewayBuilder::route`]) share the router, its precedence and its 404/405 answers.
//!
//! # Decisions
//! Where the spec (`google/api/http.proto`) is silent or the reference implementations
//! (grpc-gateway, Envoy's transcoder) disagree, rzero chooses:
//!
//! **Template syntax** (errors name the column):
//! - Literals are RFC 3986 `pchar`s with well-formed `%XX` escapes (as grpc-gateway): `/a?b`
//!   is refused. `*` inside a literal (`/a*`) is refused: wildcards are whole segments.
//! - Field names are proto identifiers (`[A-Za-z_][A-Za-z0-9_]*`), so `{field-name}` is refused;
//!   binding the same field path twice (`/{a}/{a}`) is refused.
//! - `**` may appear once, and only literal segments may follow it (`/v1/{name=**}/content`
//!   is fine, `/a/**/*` is not): then everything after it has a fixed length.
//! - The verb is the text after a `:` in the **last** segment; it may not contain `:` or be
//!   empty (`/v1/{name}:a:b` and `/v1/x:` are refused). A `:` in an earlier segment or
//!   inside a variable pattern is an ordinary literal character.
//! - `/` (root) is a template. Empty segments (`/a//b`) and a trailing `/` are refused; the
//!   router ignores a request's trailing `/` anyway.
//!
//! **Matching** (spec §14 of our reference notes):
//! - Precedence per segment: literal > `*` > `**`, independent of registration order, with
//!   backtracking. Among `**` continuations the one leaving most segments to literals wins
//!   (`/a/**/b` before `/a/**`). `**` matches zero or more segments anywhere it appears.
//! - Literals compare with the raw (still-encoded) request segment.
//! - Single-segment variables are fully percent-decoded (`%2F` → `/`). Multi-segment ones
//!   (`**` or several segments) keep the RFC 6570 reserved characters encoded by default
//!   (Envoy's default, which keeps `%2F` as the spec asks); [`MultiSegmentDecoding`] selects
//!   "keep only `%2F`" or "decode all". Unlike Envoy, the partial modes also keep `%25`, so
//!   such a value is still percent-encoded text (`%252F` and `%2F` stay distinct). The path is split on `/` before decoding, so `%2F`
//!   never separates segments. `+` stays `+`. Malformed escapes are kept as sent.
//! - A trailing `/` is ignored (`/v1/books/` matches `/v1/books`) unless
//!   [`Router::strict_trailing_slash`]. An empty segment matches nothing, not even `{x}`, so
//!   `/v1/` does not match `/v1/{id}`.
//! - Verbs: a `:suffix` of the last request segment is tried as a verb only when some route
//!   declares that verb; if that finds nothing the whole segment is matched without a verb, so
//!   `/v1/files/a:b` binds `name = "a:b"` against `/v1/files/{name}` (grpc-gateway's colon bug).
//! - `HEAD` is answered by the template's GET route when it has no HEAD (or `*`) route of its
//!   own (RFC 9110: HEAD is GET without the body), and `Allow` lists it next to GET; the
//!   gateway sends the GET answer's head, with the length its body would have had, and no
//!   body (hyper would send the body over HTTP/2).
//! - A path registered only for other methods gives [`RouteMatch::MethodNotAllowed`] with the
//!   allowed methods, for a 405 with `Allow` (grpc-gateway answers 501); otherwise
//!   [`RouteMatch::NotFound`]. Method `*` (`custom: {kind: "*"}`) matches any method, after
//!   the exact method at the same template.
//! - The same method, verb and equivalent template (variable names aside) registered twice is
//!   a [`RouteError::Conflict`], as in ESPv2, never a silent shadowing.
//!
//! **Binding** (feature `gateway`):
//! - Path values override what the body set; query parameters never touch fields bound by
//!   the path or the body (nor anything inside them). `body: "*"` means no query parameters:
//!   they are ignored, or refused in strict mode.
//! - Query strings are form-encoded: `+` is a space unless `Binding::plus_as_space(false)`
//!   (Envoy's reading); a malformed `%` escape or non-UTF-8 text is an error. Names are dotted field paths, each part a proto or JSON name; maps take
//!   `name[key]=value`; repeated fields take every value. A singular field or map key given
//!   twice is an error (grpc-gateway v2); so is a second member of one oneof.
//! - Unknown names are ignored (grpc-gateway compatible) unless
//!   `Binding::reject_unknown_query_params` (Envoy's default).
//! - Values: integers in base 10 (path and query alike, unlike grpc-gateway's path-only `0x`);
//!   floats also as `NaN`/`Infinity`/`-Infinity`; bools as Go's `ParseBool` (`true`, `1`,
//!   `t`...) for grpc-gateway clients; bytes as standard or URL-safe base64, padding
//!   optional; enums by name or a defined number; Timestamp as RFC 3339; Duration in the
//!   proto3 JSON form (`1.5s`, not Go's `1h`); FieldMask as comma-separated paths, verbatim;
//!   wrappers as their scalar. Repeated messages, plain messages, map values that are
//!   messages, and repeated or map path variables are refused. `Struct`/`Value` query
//!   parameters (JSON text in grpc-gateway) are not supported yet.

#[cfg(feature = "gateway")]
mod binding;
#[cfg(feature = "gateway")]
mod builder;
#[cfg(feature = "gateway")]
mod descriptors;
#[cfg(feature = "gateway")]
mod field_mask;
#[cfg(feature = "gateway")]
mod framing;
#[cfg(feature = "gateway")]
mod grpc;
#[cfg(all(feature = "gateway", feature = "grpc-web"))]
mod grpc_web;
#[cfg(feature = "gateway")]
mod headers;
#[cfg(feature = "gateway")]
mod json;
#[cfg(feature = "gateway")]
mod raw_body;
#[cfg(feature = "gateway")]
mod request_stream;
mod router;
#[cfg(feature = "gateway")]
mod rules;
#[cfg(feature = "gateway")]
mod service;
mod template;

#[cfg(feature = "gateway")]
pub use crate::cors::Cors;
#[cfg(feature = "gateway")]
pub use binding::{BindError, Binding, Body};
#[cfg(feature = "gateway")]
pub use builder::{GatewayBuilder, Handler, PathParams, ServiceRules};
#[cfg(feature = "gateway")]
pub use framing::StreamFraming;
#[cfg(feature = "gateway")]
pub use grpc::http_status;
#[cfg(feature = "gateway")]
pub(crate) use grpc::{Backend, backend};
#[cfg(feature = "gateway")]
pub use headers::{HeaderMatcher, default_incoming};
#[cfg(feature = "gateway")]
pub use json::JsonOptions;
/// The reflection library [`Binding`] works with, re-exported so callers use the same version.
#[cfg(feature = "gateway")]
pub use prost_reflect;
pub use router::{Found, MultiSegmentDecoding, RouteError, RouteMatch, Router};
#[cfg(feature = "gateway")]
pub use rules::{GatewayBuildError, HttpRule};
#[cfg(feature = "gateway")]
#[cfg_attr(not(feature = "tls"), allow(unused_imports))] // the TLS acceptor's way in
pub(crate) use service::serve_incoming;
#[cfg(feature = "gateway")]
pub use service::{Gateway, GatewayService, serve};
pub use template::{PathTemplate, Segment, TemplateError, Variable};
