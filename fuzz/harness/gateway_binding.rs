//! Fuzz harness `gateway_binding`: HTTP requests through the REST/JSON gateway (router, JSON
//! body decoding, path and query binding, JSON replies) to an in-memory gRPC backend that
//! echoes each request, plus `Binding::bind_query` on its own in strict mode.
//!
//! Input: `METHOD PATH[?QUERY]`, a newline, a `Content-Type` (empty: none), a newline, and
//! the body (any bytes). Missing lines are empty.
//!
//! Checks: nothing panics; no answer is a 500 (the echo is always type-correct, so a 500
//! means the gateway accepted a request it cannot turn into a call, or cannot write a
//! message it decoded); a 200 unary answer is JSON.
//!
//! With `RZERO_FUZZ_VERBOSE` set, each answer is printed to stderr.
//!
//! Shared by `fuzz/fuzz_targets/gateway_binding.rs` and `tests/tests/fuzz_regressions.rs`
//! (through `#[path]`). Uses `rzero`, `protox`, `prost`, `tokio`, `tonic`, `http`,
//! `http-body`, `http-body-util`, `bytes`, `serde_json` and `tower-service`, all
//! dependencies of the tests crate already.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::BodyExt as _;
use prost::Message as _;
use rzero::gateway::prost_reflect::{DescriptorPool, DynamicMessage, ReflectMessage as _};
use rzero::gateway::{Binding, Body as BodyRule, Gateway, GatewayService, HttpRule, PathTemplate};
use tower_service::Service as _;

const KITCHEN_PROTO: &str = include_str!("../../tests/tests/gateway/kitchen.proto");
const GATEWAY_PROTO: &str = include_str!("gateway.proto");

const UNARY: &str = "/fuzz.gateway.Fuzz/Unary";
const RULES: &[HttpRule] = &[
    HttpRule::new(UNARY, "POST", "/v1/k").body("*"),
    HttpRule::new(UNARY, "GET", "/v1/k/{id}"),
    HttpRule::new(UNARY, "PUT", "/v1/k/{id}")
        .body("inner")
        .response_body("inner"),
    HttpRule::new(UNARY, "POST", "/v1/k/{id}/counts").body("counts"),
    HttpRule::new(UNARY, "POST", "/v1/k/{id}/tags").body("tags"),
    HttpRule::new(UNARY, "POST", "/v1/k/{id}/when").body("when"),
    HttpRule::new(UNARY, "POST", "/v1/k/{id}/doc").body("doc"),
    HttpRule::new(UNARY, "POST", "/v1/k/{id}/bytes")
        .body("f_bytes")
        .response_body("f_bytes"),
    HttpRule::new(UNARY, "*", "/v1/any/{f_int64}/{color}/{when}"),
    HttpRule::new(
        UNARY,
        "GET",
        "/v1/s/{f_double}/{f_float}/{f_bool}/{f_bytes}/{took}/{w_int64}/{f_uint64}:scalars",
    ),
    HttpRule::new(UNARY, "GET", "/v1/{f_string=folders/*/files/**}"),
    HttpRule::new(UNARY, "GET", "/v1/{f_string=shelves/*}/books/*:archive"),
    HttpRule::new(UNARY, "DELETE", "/v1/{inner.text=inners/*}/{f_sint64}"),
    HttpRule::new(UNARY, "GET", "/v1/raw/**"),
    HttpRule::new("/fuzz.gateway.Fuzz/ServerStream", "GET", "/v1/stream/{id}"),
    HttpRule::new("/fuzz.gateway.Fuzz/ClientStream", "POST", "/v1/upload").body("*"),
    HttpRule::new("/fuzz.gateway.Fuzz/Bidi", "POST", "/v1/chat").body("*"),
    HttpRule::new(
        "/fuzz.gateway.Fuzz/Update",
        "PATCH",
        "/v2/{kitchen.id=kitchens/*}",
    )
    .body("kitchen"),
    HttpRule::new("/fuzz.gateway.Fuzz/Update", "POST", "/v2/{name=**}:update").body("*"),
];

/// Longest body passed on, so one input cannot make a slow case out of sheer size.
const MAX_BODY: usize = 64 * 1024;

struct State {
    runtime: tokio::runtime::Runtime,
    service: GatewayService,
    pool: DescriptorPool,
}

fn state() -> &'static State {
    static STATE: OnceLock<State> = OnceLock::new();
    STATE.get_or_init(|| {
        let descriptor_set = descriptor_set();
        let pool = DescriptorPool::decode(descriptor_set.as_slice()).expect("descriptors decode");
        let gateway = Gateway::new(descriptor_set, RULES).expect("the fuzz gateway builds");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("tokio runtime");
        State {
            runtime,
            service: gateway.service(Echo),
            pool,
        }
    })
}

/// Serves the two protos from memory, `google/protobuf/*` from protox.
struct Files;

impl protox::file::FileResolver for Files {
    fn open_file(&self, name: &str) -> Result<protox::file::File, protox::Error> {
        let source = match name {
            "kitchen.proto" => KITCHEN_PROTO,
            "fuzz_gateway.proto" => GATEWAY_PROTO,
            _ => return protox::file::GoogleFileResolver::new().open_file(name),
        };
        protox::file::File::from_source(name, source)
    }
}

fn descriptor_set() -> Vec<u8> {
    let mut compiler = protox::Compiler::with_file_resolver(Files);
    compiler
        .include_imports(true)
        .include_source_info(false)
        .open_file("fuzz_gateway.proto")
        .expect("the fuzz protos compile");
    compiler.file_descriptor_set().encode_to_vec()
}

/// The gRPC backend: answers with the request's messages (a client-streaming call with the
/// last one, or an empty message), status OK.
#[derive(Clone)]
struct Echo;

impl tower_service::Service<http::Request<tonic::body::Body>> for Echo {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        Box::pin(async move {
            let client_streaming = request.uri().path().ends_with("/ClientStream");
            let mut framed = request
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            if client_streaming {
                framed = last_frame(framed);
            }
            let mut trailers = http::HeaderMap::new();
            trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
            let body = http_body_util::Full::new(framed)
                .with_trailers(async { Some(Ok::<_, Infallible>(trailers)) });
            let mut response = http::Response::new(tonic::body::Body::new(body));
            response.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/grpc"),
            );
            Ok(response)
        })
    }
}

/// The last gRPC frame of `framed` (5-byte headers), or an empty message's frame.
fn last_frame(mut framed: Bytes) -> Bytes {
    let mut last = Bytes::from_static(&[0, 0, 0, 0, 0]);
    while framed.len() >= 5 {
        let len = u32::from_be_bytes([framed[1], framed[2], framed[3], framed[4]]) as usize;
        if framed.len() - 5 < len {
            break;
        }
        last = framed.split_to(5 + len);
    }
    last
}

/// Splits the input into request line, content type and body.
fn split(data: &[u8]) -> (&[u8], &[u8], &[u8]) {
    let mut parts = data.splitn(3, |&b| b == b'\n');
    let line = parts.next().unwrap_or_default();
    let content_type = parts.next().unwrap_or_default();
    let body = parts.next().unwrap_or_default();
    (line, content_type, &body[..body.len().min(MAX_BODY)])
}

/// Runs the checks above on `data`; panics on a finding.
pub(crate) fn run(data: &[u8]) {
    let (line, content_type, body) = split(data);
    let Ok(line) = std::str::from_utf8(line) else {
        return;
    };
    let (method, target) = line.split_once(' ').unwrap_or(("GET", line));
    let state = state();

    // The query on its own, against the strictest binding.
    if let Some((_, query)) = target.split_once('?') {
        let template = PathTemplate::parse("/v1/k/{id}").expect("template parses");
        let binding = Binding::new(&template, BodyRule::Field("inner".to_owned()))
            .reject_unknown_query_params(true)
            .plus_as_space(false);
        let kitchen = state
            .pool
            .get_message_by_name("gw.kitchen.Kitchen")
            .expect("Kitchen is in the pool");
        let mut message = DynamicMessage::new(kitchen);
        if binding.bind_query(&mut message, query).is_ok() {
            let bytes = message.encode_to_vec();
            DynamicMessage::decode(message.descriptor(), bytes.as_slice())
                .expect("a bound message round-trips through its encoding");
        }
    }

    let Ok(method) = http::Method::from_bytes(method.as_bytes()) else {
        return;
    };
    let Ok(uri) = http::Uri::try_from(target) else {
        return;
    };
    let mut request = http::Request::new(http_body_util::Full::new(Bytes::copy_from_slice(body)));
    *request.method_mut() = method.clone();
    *request.uri_mut() = uri;
    if !content_type.is_empty() {
        let Ok(value) = http::HeaderValue::from_bytes(content_type) else {
            return;
        };
        request
            .headers_mut()
            .insert(http::header::CONTENT_TYPE, value);
    }
    let mut service = state.service.clone();
    let (status, streaming, reply) = state.runtime.block_on(async move {
        let Ok(response) = service.call(request).await;
        let status = response.status();
        let streaming = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes() != b"application/json");
        let reply = response
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        (status, streaming, reply)
    });
    let reply_text = String::from_utf8_lossy(&reply);
    if std::env::var_os("RZERO_FUZZ_VERBOSE").is_some() {
        eprintln!("{method} {target:?} -> {status}: {reply_text}");
    }
    assert_ne!(
        status,
        http::StatusCode::INTERNAL_SERVER_ERROR,
        "{method} {target:?}: 500 with {reply_text}"
    );
    if status == http::StatusCode::OK && !streaming {
        serde_json::from_slice::<serde_json::Value>(&reply).unwrap_or_else(|e| {
            panic!("{method} {target:?}: reply is not JSON ({e}): {reply_text}")
        });
    }
}
