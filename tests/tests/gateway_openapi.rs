//! Real gateway replies validate against the OpenAPI document protoc-gen-rzero writes for
//! the same protos: the `testdata/gateway` kitchen sink and proto2 presence protos, served by
//! a gRPC service that answers with the request's bytes, over HTTP on 127.0.0.1. Replies with
//! every field unset (message fields `null`), fully set, an empty `Any` (`{}`), and through
//! `response_body`.
//!
//! The validator is `openapi-schema-validator` (PyPI, pinned in
//! `tests/python/requirements.txt`), which follows OpenAPI 3.0.3's `nullable`: `null` only
//! where the document says so.

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::task::{Context, Poll};

use http::StatusCode;
use prost::Message as _;
use rzero::gateway::{Gateway, HttpRule};
use serde_json::{Value, json};

#[path = "gateway/support.rs"]
mod support;
use support::{Fixture, MODES, Mirror, send};

/// Mirrors under the names of the services in `testdata/gateway`.
macro_rules! mirror_named {
    ($ty:ident, $name:literal) => {
        #[derive(Clone)]
        struct $ty;

        impl rzero::codegen::NamedService for $ty {
            const NAME: &'static str = $name;
        }

        impl tower_service::Service<http::Request<tonic::body::Body>> for $ty {
            type Response = http::Response<tonic::body::Body>;
            type Error = Infallible;
            type Future = rzero::codegen::BoxFuture<Self::Response, Infallible>;

            fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
                Poll::Ready(Ok(()))
            }

            fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
                tower_service::Service::call(&mut Mirror, request)
            }
        }
    };
}

mirror_named!(KitchenMirror, "gateway.kitchen.v1.Mirror");
mirror_named!(LegacyMirror, "gateway.presence.v1.Legacies");

const FILES: [&str; 2] = ["gateway/kitchen.proto", "gateway/presence.proto"];

/// The bindings of the protos' `google.api.http` annotations that the cases below call.
const RULES: [HttpRule; 8] = [
    HttpRule::new("/gateway.kitchen.v1.Mirror/Mirror", "POST", "/v1/kitchens").body("*"),
    HttpRule::new(
        "/gateway.kitchen.v1.Mirror/Mirror",
        "PUT",
        "/v1/kitchens/{id}",
    )
    .body("inner")
    .response_body("inner"),
    HttpRule::new("/gateway.presence.v1.Legacies/Echo", "POST", "/v1/legacies").body("*"),
    HttpRule::new(
        "/gateway.presence.v1.Legacies/Echo",
        "POST",
        "/v1/legacies:count",
    )
    .body("*")
    .response_body("count"),
    HttpRule::new(
        "/gateway.presence.v1.Legacies/Echo",
        "POST",
        "/v1/legacies:part",
    )
    .body("*")
    .response_body("part"),
    HttpRule::new(
        "/gateway.presence.v1.Legacies/Echo",
        "POST",
        "/v1/legacies:picked",
    )
    .body("*")
    .response_body("picked"),
    HttpRule::new(
        "/gateway.presence.v1.Legacies/Echo",
        "POST",
        "/v1/legacies:value",
    )
    .body("*")
    .response_body("value"),
    HttpRule::new(
        "/gateway.presence.v1.Legacies/Echo",
        "POST",
        "/v1/legacies:any",
    )
    .body("*")
    .response_body("any"),
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn descriptor_set() -> Vec<u8> {
    let mut compiler = protox::Compiler::new([
        repo().join("testdata"),
        repo().join("protoc-gen-rzero/proto"),
    ])
    .expect("include dirs");
    compiler
        .include_imports(true)
        .open_files(FILES)
        .expect("testdata protos compile");
    compiler.file_descriptor_set().encode_to_vec()
}

/// The OpenAPI documents protoc-gen-rzero writes for [`FILES`], by proto file.
fn documents() -> Vec<Value> {
    let options = protoc_gen_rzero::Options::from_parameter("openapi").unwrap();
    let files: Vec<PathBuf> = FILES
        .iter()
        .map(|f| repo().join("testdata").join(f))
        .collect();
    let generated =
        protoc_gen_rzero::generate(&files, &[repo().join("testdata")], &options).unwrap();
    FILES
        .iter()
        .map(|file| {
            let name = file.replace(".proto", ".openapi.json");
            let document = generated
                .iter()
                .find(|f| f.name == name)
                .unwrap_or_else(|| panic!("no {name}"));
            serde_json::from_str(&document.content).unwrap()
        })
        .collect()
}

/// One reply to check: the `200` schema of `method path` in `document`, the instance, and
/// whether it must validate.
struct Case {
    name: String,
    schema: Value,
    instance: Value,
    valid: bool,
}

fn case(document: &Value, method: &str, path: &str, instance: Value, valid: bool) -> Case {
    let schema = &document["paths"][path][method]["responses"]["200"]["content"]["application/json"]
        ["schema"];
    assert!(schema.is_object(), "no {method} {path}");
    Case {
        name: format!("{method} {path} {instance}"),
        schema: schema.clone(),
        instance,
        valid,
    }
}

/// Validates every case with `openapi-schema-validator` (OpenAPI 3.0 semantics, formats
/// checked), each schema resolved against its document's components; returns the report of
/// the cases whose outcome is not the one expected.
fn validate(components: &[Value], cases: &[(usize, Case)]) -> String {
    let input = json!({
        "components": components,
        "cases": cases.iter().map(|(document, case)| json!({
            "name": case.name,
            "document": document,
            "schema": case.schema,
            "instance": case.instance,
            "valid": case.valid,
        })).collect::<Vec<_>>(),
    });
    let dir = std::env::temp_dir().join(format!("rzero-gateway-openapi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("cases.json");
    std::fs::write(&path, input.to_string()).unwrap();
    const SCRIPT: &str = r#"
import json, sys
from openapi_schema_validator import OAS30Validator, oas30_format_checker
data = json.load(open(sys.argv[1]))
wrong = []
for case in data["cases"]:
    schema = dict(case["schema"], components=data["components"][case["document"]])
    errors = [e.message for e in OAS30Validator(schema, format_checker=oas30_format_checker).iter_errors(case["instance"])]
    if bool(errors) == case["valid"]:
        wrong.append(f"{case['name']}: expected {'valid' if case['valid'] else 'invalid'}; errors: {errors}")
print("\n".join(wrong))
"#;
    let output = std::process::Command::new("python3")
        .args(["-c", SCRIPT])
        .arg(&path)
        .output();
    std::fs::remove_dir_all(&dir).unwrap();
    let output = output.unwrap_or_else(|e| {
        panic!("cannot run python3 ({e}); pip install -r tests/python/requirements.txt")
    });
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("No module named"),
        "openapi-schema-validator is missing: pip install -r tests/python/requirements.txt\n{stderr}"
    );
    assert!(output.status.success(), "{stderr}");
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

#[tokio::test]
async fn gateway_replies_validate_against_the_generated_document() {
    let documents = documents();
    let (kitchen, legacy) = (&documents[0], &documents[1]);
    let mut cases = Vec::new();
    for mode in MODES {
        let gateway = Gateway::builder()
            .descriptor_set(descriptor_set())
            .rules(RULES);
        let fixture = Fixture::start(gateway, mode, || {
            rzero::Server::builder()
                .add_service(KitchenMirror)
                .add_service(LegacyMirror)
        })
        .await;
        let http = fixture.http;
        let call = |method: &'static str, path: &'static str, body: Value| async move {
            let reply = send(http, method, path, &[], Some(&body.to_string())).await;
            assert_eq!(
                reply.status,
                StatusCode::OK,
                "{mode:?}: {method} {path}: {reply:?}"
            );
            reply.json()
        };

        // Every field unset: message fields (well-known types included) are `null`.
        let unset = call("POST", "/v1/kitchens", json!({})).await;
        for field in ["inner", "when", "any", "value", "empty", "node", "wInt64"] {
            assert_eq!(unset[field], json!(null), "{mode:?}: {field}: {unset}");
        }
        cases.push((0, case(kitchen, "post", "/v1/kitchens", unset, true)));
        // Every field set.
        let set = call(
            "POST",
            "/v1/kitchens",
            json!({
                "fDouble": 1.5, "fInt64": "-3", "fUint64": "4", "fUint32": 7, "fBool": true,
                "fString": "s", "fBytes": "AQI=", "color": "RED",
                "inner": {"text": "t", "numbers": [1]}, "tags": ["a"], "inners": [{}],
                "counts": {"k": "1"}, "byId": {"1": {"text": "x"}}, "choiceInner": {},
                "maybe": 0, "customName": "c", "when": "2024-01-02T03:04:05Z", "took": "1.5s",
                "mask": "fInt64,inner.text", "doc": {"a": [null]}, "value": null,
                "list": [1, "b"],
                "any": {"@type": "type.googleapis.com/gateway.kitchen.v1.Inner", "text": "in"},
                "empty": {}, "wInt64": "5", "wString": "w", "wBool": false, "wBytes": "",
                "wDouble": 0.25, "wUint32": 1, "times": ["2024-01-02T03:04:05Z"],
                "colors": {"k": "GREEN"}, "node": {"label": "n", "children": [{}], "parent": {}},
                "id": "i",
            }),
        )
        .await;
        assert_eq!(
            set["node"]["parent"]["parent"],
            json!(null),
            "{mode:?}: {set}"
        );
        cases.push((0, case(kitchen, "post", "/v1/kitchens", set, true)));
        // A set, empty `Any`: `{}` read, sent back, written (`Any` allows it).
        let empty_any = call("POST", "/v1/kitchens", json!({"any": {}})).await;
        assert_eq!(empty_any["any"], json!({}), "{mode:?}: {empty_any}");
        cases.push((0, case(kitchen, "post", "/v1/kitchens", empty_any, true)));
        // `response_body` of an unset message: its empty message.
        let inner = call("PUT", "/v1/kitchens/k", json!(null)).await;
        assert_eq!(inner, json!({"text": "", "numbers": []}), "{mode:?}");
        cases.push((0, case(kitchen, "put", "/v1/kitchens/{id}", inner, true)));

        // proto2: unset scalars are `null` too.
        let unset = call("POST", "/v1/legacies", json!({})).await;
        for field in ["count", "name", "level", "part", "when", "value", "any"] {
            assert_eq!(unset[field], json!(null), "{mode:?}: {field}: {unset}");
        }
        cases.push((1, case(legacy, "post", "/v1/legacies", unset, true)));
        for (path, expected) in [
            ("/v1/legacies:count", json!(null)),
            ("/v1/legacies:part", json!({"name": null})),
            ("/v1/legacies:picked", json!(null)),
            ("/v1/legacies:value", json!(null)),
            ("/v1/legacies:any", json!({})),
        ] {
            let reply = call("POST", path, json!({})).await;
            assert_eq!(reply, expected, "{mode:?}: {path}");
            cases.push((1, case(legacy, "post", path, reply, true)));
        }
        fixture.stop().await;
    }

    // The validator is not a rubber stamp: what the gateway never writes is refused.
    cases.push((0, case(kitchen, "post", "/v1/kitchens", json!(null), false)));
    for bad in [
        json!({"fInt64": 3}),
        json!({"tags": null}),
        json!({"fString": null}),
        json!({"inners": [null]}),
        json!({"node": {"children": [null]}}),
        json!({"when": "yesterday"}),
    ] {
        cases.push((0, case(kitchen, "post", "/v1/kitchens", bad, false)));
    }
    cases.push((
        0,
        case(kitchen, "put", "/v1/kitchens/{id}", json!(null), false),
    ));
    cases.push((
        1,
        case(legacy, "post", "/v1/legacies:part", json!(null), false),
    ));
    cases.push((
        1,
        case(
            legacy,
            "post",
            "/v1/legacies:any",
            json!({"@type": 1}),
            false,
        ),
    ));

    let components: Vec<Value> = documents
        .iter()
        .map(|document| document["components"].clone())
        .collect();
    let wrong = validate(&components, &cases);
    assert!(wrong.is_empty(), "{wrong}");
}
