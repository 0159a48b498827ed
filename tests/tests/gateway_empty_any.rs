//! A `google.protobuf.Any` that is set but empty, through the gateway over real HTTP on
//! 127.0.0.1, in front of a byte-mirroring `gateway.kitchen.v1.Mirror` (`testdata/gateway`).
//!
//! What protojson does, from its source (`encoding/protojson/well_known_types.go`):
//! `marshalAny` writes an `Any` with neither `type_url` nor `value` as `{}`, and
//! `unmarshalAny` reads `{}` as a set, empty `Any` (and, with grpc-gateway's default
//! `DiscardUnknown`, any object without `@type`). A Rust server returning
//! `Some(prost_types::Any::default())` used to fail the call; a request with `{}` for an
//! `Any` used to be a 400.

use std::convert::Infallible;
use std::path::Path;
use std::task::{Context, Poll};

use bytes::{BufMut as _, Bytes, BytesMut};
use http::StatusCode;
use http_body_util::{BodyExt as _, Full};
use prost::Message as _;
use rzero::gateway::{Gateway, HttpRule, JsonOptions};
use serde_json::{Value, json};

#[path = "gateway/support.rs"]
mod support;
use support::{Fixture, MODES, Mirror, send};

/// The `any` field of `gateway.kitchen.v1.Kitchen` alone, as a Rust server sets it.
#[derive(Clone, PartialEq, prost::Message)]
struct KitchenAny {
    #[prost(message, optional, tag = "36")]
    any: Option<prost_types::Any>,
}

/// `gateway.kitchen.v1.Mirror`: `Files` and `Watch` answer with the request followed by a
/// `Kitchen` whose `any` is `Some(prost_types::Any::default())` (protobuf merges the two:
/// the request with an empty `any` set); every other method with the request's bytes.
#[derive(Clone)]
struct Kitchen;

impl rzero::codegen::NamedService for Kitchen {
    const NAME: &'static str = "gateway.kitchen.v1.Mirror";
}

impl tower_service::Service<http::Request<tonic::body::Body>> for Kitchen {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = rzero::codegen::BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let mut framed = body
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let path = parts.uri.path();
            if path.ends_with("/Files") || path.ends_with("/Watch") {
                let mut message = framed.get(5..).unwrap_or_default().to_vec();
                let empty = KitchenAny {
                    any: Some(prost_types::Any::default()),
                };
                empty.encode(&mut message).expect("a Vec grows");
                let mut reframed = BytesMut::with_capacity(5 + message.len());
                reframed.put_u8(0);
                reframed.put_u32(message.len() as u32);
                reframed.put_slice(&message);
                framed = reframed.freeze();
            }
            let body = tonic::body::Body::new(Full::<Bytes>::new(framed));
            tower_service::Service::call(&mut Mirror, http::Request::from_parts(parts, body)).await
        })
    }
}

const MIRROR: &str = "/gateway.kitchen.v1.Mirror/Mirror";
const FILES: &str = "/gateway.kitchen.v1.Mirror/Files";

const RULES: [HttpRule; 7] = [
    HttpRule::new(MIRROR, "POST", "/v1/kitchens").body("*"),
    HttpRule::new(MIRROR, "PUT", "/v1/kitchens/{id}/any").body("any"),
    HttpRule::new(FILES, "POST", "/v1/files").body("*"),
    HttpRule::new(FILES, "POST", "/v1/files:any")
        .body("*")
        .response_body("any"),
    HttpRule::new("/gateway.kitchen.v1.Mirror/Watch", "GET", "/v1/watch"),
    HttpRule::new("/gateway.kitchen.v1.Mirror/Upload", "POST", "/v1/upload").body("*"),
    HttpRule::new(MIRROR, "POST", "/v1/kitchens:any")
        .body("*")
        .response_body("any"),
];

fn descriptor_set() -> Vec<u8> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut compiler =
        protox::Compiler::new([repo.join("testdata"), repo.join("protoc-gen-rzero/proto")])
            .expect("include dirs");
    compiler
        .include_imports(true)
        .open_files(["gateway/kitchen.proto"])
        .expect("testdata protos compile");
    compiler.file_descriptor_set().encode_to_vec()
}

async fn start(json: JsonOptions, mode: support::Mode) -> Fixture {
    let gateway = Gateway::builder()
        .descriptor_set(descriptor_set())
        .rules(RULES)
        .json(json);
    Fixture::start(gateway, mode, || {
        rzero::Server::builder().add_service(Kitchen)
    })
    .await
}

/// `POST path` with `body`: the status and the body (JSON, or NDJSON lines as a list).
async fn post(fixture: &Fixture, method: &str, path: &str, body: &str) -> (StatusCode, Value) {
    let ndjson = [("content-type", "application/x-ndjson")];
    let headers: &[(&str, &str)] = if path == "/v1/upload" { &ndjson } else { &[] };
    let body = (!body.is_empty()).then_some(body);
    let reply = send(fixture.http, method, path, headers, body).await;
    let json = if reply.text.contains('\n') {
        reply
            .text
            .lines()
            .map(|line| serde_json::from_str::<Value>(line).expect("JSON lines"))
            .collect()
    } else {
        reply.json()
    };
    (reply.status, json)
}

/// A reply whose `Any` the server set to `Any::default()`: 200 with `{}` there, as a field,
/// as the `response_body`, and in a server-streaming item; with or without unpopulated
/// fields. (The requests hold no `Any`.)
#[tokio::test]
async fn a_reply_holding_an_empty_any_is_200_with_an_empty_object() {
    for mode in MODES {
        for emit in [true, false] {
            let fixture = start(JsonOptions::new().emit_unpopulated(emit), mode).await;
            let what = format!("{mode:?}, emit_unpopulated({emit})");

            let (status, reply) = post(&fixture, "POST", "/v1/files", r#"{"fString": "s"}"#).await;
            assert_eq!(status, StatusCode::OK, "{what}: {reply}");
            assert_eq!(reply["any"], json!({}), "{what}: {reply}");
            assert_eq!(reply["fString"], json!("s"), "{what}: {reply}");
            if emit {
                // The rest as before: unset message fields are still `null`.
                assert_eq!(reply["inner"], json!(null), "{what}: {reply}");
            }

            let (status, reply) = post(&fixture, "POST", "/v1/files:any", "{}").await;
            assert_eq!((status, reply), (StatusCode::OK, json!({})), "{what}");

            let (status, reply) = post(&fixture, "GET", "/v1/watch", "").await;
            assert_eq!(status, StatusCode::OK, "{what}: {reply}");
            assert_eq!(reply[0]["result"]["any"], json!({}), "{what}: {reply}");
            fixture.stop().await;
        }
    }
}

/// `{}` for an `Any` in a request reads as a set, empty `Any`, which the mirror sends back
/// and the gateway writes as `{}`: in body `*`, as the body field, and in a streamed request
/// line. With unknown fields rejected, `{}` still reads; an object without `@type` does not.
#[tokio::test]
async fn an_empty_object_for_an_any_round_trips() {
    for mode in MODES {
        let fixture = start(JsonOptions::new(), mode).await;
        let (status, reply) = post(&fixture, "POST", "/v1/kitchens", r#"{"any": {}}"#).await;
        assert_eq!(status, StatusCode::OK, "{mode:?}: {reply}");
        assert_eq!(reply["any"], json!({}), "{mode:?}: {reply}");
        // Unset, it is still `null`: the `{}` made it a set field.
        let (_, unset) = post(&fixture, "POST", "/v1/kitchens", "{}").await;
        assert_eq!(unset["any"], json!(null), "{mode:?}: {unset}");

        let (status, reply) = post(&fixture, "POST", "/v1/kitchens:any", r#"{"any": {}}"#).await;
        assert_eq!((status, reply), (StatusCode::OK, json!({})), "{mode:?}");

        let (status, reply) = post(&fixture, "PUT", "/v1/kitchens/k/any", "{}").await;
        assert_eq!(status, StatusCode::OK, "{mode:?}: {reply}");
        assert_eq!(
            (&reply["any"], &reply["id"]),
            (&json!({}), &json!("k")),
            "{mode:?}: {reply}"
        );

        // A set `Any` beside it is unchanged.
        let typed = json!({"@type": "type.googleapis.com/gateway.kitchen.v1.Inner", "text": "t"});
        let body = json!({"any": typed, "fString": "s"}).to_string();
        let (status, reply) = post(&fixture, "POST", "/v1/kitchens", &body).await;
        assert_eq!(status, StatusCode::OK, "{mode:?}: {reply}");
        let mut written = typed.clone();
        written["numbers"] = json!([]);
        assert_eq!(reply["any"], written, "{mode:?}: {reply}");

        // grpc-gateway's `DiscardUnknown`: an object without `@type` is an empty `Any`.
        let (status, reply) = post(&fixture, "POST", "/v1/kitchens", r#"{"any": {"x": 1}}"#).await;
        assert_eq!(status, StatusCode::OK, "{mode:?}: {reply}");
        assert_eq!(reply["any"], json!({}), "{mode:?}: {reply}");

        // Client streaming: each line is read the same way (the mirror answers with the
        // line's `Kitchen` bytes, read as the reply's `Inner`).
        let (status, reply) = post(&fixture, "POST", "/v1/upload", "{\"any\": {}}\n").await;
        assert_eq!(status, StatusCode::OK, "{mode:?}: {reply}");
        fixture.stop().await;

        let strict = start(JsonOptions::new().reject_unknown_fields(true), mode).await;
        let (status, reply) = post(&strict, "POST", "/v1/kitchens", r#"{"any": {}}"#).await;
        assert_eq!(status, StatusCode::OK, "{mode:?}: {reply}");
        assert_eq!(reply["any"], json!({}), "{mode:?}: {reply}");
        let (status, reply) = post(&strict, "POST", "/v1/kitchens", r#"{"any": {"x": 1}}"#).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{mode:?}: {reply}");
        strict.stop().await;
    }
}
