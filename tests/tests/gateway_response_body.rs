//! `response_body` replies whose field is unset or at its zero value, over real HTTP on
//! 127.0.0.1, in front of the byte-mirroring `gw.kitchen.Mirror` (the reply is the request).
//!
//! What grpc-gateway v2 answers, from its source: the generated `XXX_ResponseBody()` returns
//! the Go field (`response.Inner`, a nil `*Inner` when unset) and `ForwardResponseMessage`
//! hands it to the marshaler (`runtime/handler.go`). `JSONPb.Marshal` gives a message,
//! nil or not, to protojson (`runtime/marshal_jsonpb.go`), which writes a nil message as an
//! empty one: every field at its default with `EmitUnpopulated` (nested messages `null`),
//! `{}` without; a well-known type as its empty JSON (`"1970-01-01T00:00:00Z"`, `"0s"`,
//! `""`, `{}`, `[]`, `0`); an empty `Any` as `{}`; a `Value` with no kind is an error
//! (a 500). Never `null`. The gateway writes the same, except that an unset `Value` is
//! `null` (any JSON value) rather than a failed call.

use http::StatusCode;
use rzero::gateway::{GatewayBuilder, HttpRule, JsonOptions};
use serde_json::{Value, json};

#[path = "gateway/support.rs"]
mod support;
use support::*;

/// The fields tried, each behind a `POST /v1/body/<field>` rule that answers with that field
/// of the mirrored request.
const FIELDS: [(&str, &str); 22] = [
    ("inner", "/v1/body/inner"),
    ("when", "/v1/body/when"),
    ("took", "/v1/body/took"),
    ("mask", "/v1/body/mask"),
    ("doc", "/v1/body/doc"),
    ("list", "/v1/body/list"),
    ("any", "/v1/body/any"),
    ("empty", "/v1/body/empty"),
    ("w_int64", "/v1/body/w_int64"),
    ("w_string", "/v1/body/w_string"),
    ("value", "/v1/body/value"),
    ("tags", "/v1/body/tags"),
    ("inners", "/v1/body/inners"),
    ("counts", "/v1/body/counts"),
    ("by_id", "/v1/body/by_id"),
    ("f_int64", "/v1/body/f_int64"),
    ("f_bytes", "/v1/body/f_bytes"),
    ("f_string", "/v1/body/f_string"),
    ("color", "/v1/body/color"),
    ("maybe", "/v1/body/maybe"),
    ("choice_text", "/v1/body/choice_text"),
    ("choice_inner", "/v1/body/choice_inner"),
];

fn rules() -> impl Iterator<Item = HttpRule> {
    FIELDS.iter().map(|(field, path)| {
        HttpRule::new("/gw.kitchen.Mirror/Mirror", "POST", path)
            .body("*")
            .response_body(field)
    })
}

fn with_rules(json: JsonOptions) -> GatewayBuilder {
    gateway().rules(rules()).json(json)
}

/// The reply of `POST /v1/body/<field>` with `request` as the body (and so the reply).
async fn reply(fixture: &Fixture, field: &str, request: &Value) -> Value {
    let path = format!("/v1/body/{field}");
    let reply = send(fixture.http, "POST", &path, &[], Some(&request.to_string())).await;
    assert_eq!(reply.status, StatusCode::OK, "{field}: {reply:?}");
    reply.json()
}

/// An unset message field is its type's empty message, never `null`, with or without
/// unpopulated fields; an `Any` is `{}`, a `Value` `null`.
#[tokio::test]
async fn an_unset_message_is_its_empty_message() {
    let unset = json!({});
    for mode in MODES {
        for (emit, inner) in [
            (true, json!({"text": "", "numbers": []})),
            (false, json!({})),
        ] {
            let fixture = start(with_rules(JsonOptions::new().emit_unpopulated(emit)), mode).await;
            let expected = [
                ("inner", inner),
                ("when", json!("1970-01-01T00:00:00Z")),
                ("took", json!("0s")),
                ("mask", json!("")),
                ("doc", json!({})),
                ("list", json!([])),
                ("any", json!({})),
                ("empty", json!({})),
                ("w_int64", json!("0")),
                ("w_string", json!("")),
                ("value", json!(null)),
            ];
            for (field, value) in expected {
                assert_eq!(
                    reply(&fixture, field, &unset).await,
                    value,
                    "{mode:?}, emit_unpopulated({emit}): {field}"
                );
            }
            fixture.stop().await;
        }
    }
}

/// Lists, maps and scalars without presence are written at their zero value (`[]`, `{}`,
/// `"0"`); scalars with presence (`optional`, a oneof member) are `null` when unset. A set
/// message is written as it is, with its own `null`s when unpopulated fields are emitted.
#[tokio::test]
async fn zero_values_and_scalars_with_presence() {
    let fixture = start(with_rules(JsonOptions::new()), Mode::SamePort).await;
    let unset = json!({});
    let expected = [
        ("tags", json!([])),
        ("inners", json!([])),
        ("counts", json!({})),
        ("by_id", json!({})),
        ("f_int64", json!("0")),
        ("f_bytes", json!("")),
        ("f_string", json!("")),
        ("color", json!("COLOR_UNSPECIFIED")),
        ("maybe", json!(null)),
        ("choice_text", json!(null)),
        // grpc-gateway's generated accessor type-asserts the oneof and panics here.
        ("choice_inner", json!({"text": "", "numbers": []})),
    ];
    for (field, value) in expected {
        assert_eq!(reply(&fixture, field, &unset).await, value, "{field}");
    }

    let set = json!({
        "maybe": 0,
        "choiceText": "",
        "inners": [{"text": "a"}],
        "when": "2024-01-02T03:04:05Z",
        "value": {"k": [1, null]},
    });
    let expected = [
        ("maybe", json!(0)),
        ("choice_text", json!("")),
        ("inners", json!([{"text": "a", "numbers": []}])),
        ("when", json!("2024-01-02T03:04:05Z")),
        ("value", json!({"k": [1.0, null]})),
        // Another member of the oneof is set: this one is unset.
        ("choice_inner", json!({"text": "", "numbers": []})),
    ];
    for (field, value) in expected {
        assert_eq!(reply(&fixture, field, &set).await, value, "{field}");
    }
    fixture.stop().await;
}
