//! REST/JSON gateway from `google.api.http` annotations: path templates and routing.
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
mod descriptors;
#[cfg(feature = "gateway")]
mod grpc;
#[cfg(feature = "gateway")]
mod headers;
#[cfg(feature = "gateway")]
mod json;
mod router;
#[cfg(feature = "gateway")]
mod rules;
#[cfg(feature = "gateway")]
mod service;
mod template;

#[cfg(feature = "gateway")]
pub use binding::{BindError, Binding, Body};
#[cfg(feature = "gateway")]
pub use grpc::http_status;
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
pub use service::{
    Gateway, GatewayBuilder, GatewayService, Handler, PathParams, ServiceRules, serve,
};
pub use template::{PathTemplate, Segment, TemplateError, Variable};
