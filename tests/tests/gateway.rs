//! The REST/JSON gateway over real HTTP on 127.0.0.1 (hyper's client, HTTP/1.1 and h2c),
//! in front of generated services (`Greeter`, `Echo`) and a byte-mirroring gRPC service
//! (`gw.kitchen.Mirror`, for JSON round trips of every field kind), in-process on the same
//! port, in-process on its own port, and as a proxy through `rzero::Client`. The fixtures
//! are in `gateway/support.rs`.

use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use http_body_util::Full;
use rzero::Status;
use rzero::gateway::{Gateway, HttpRule, JsonOptions, StreamFraming};
use rzero_tests::default::greeter::v1::greeter_server::GreeterServer;
use rzero_tests::default::greeter::v1::{GREETER_HTTP_RULES, HelloReply, HelloRequest};
use serde_json::{Value, json};

#[path = "gateway/support.rs"]
mod support;
use support::*;

/// Refuses greetings for `forbidden` when the request is decoded and the reply to
/// `reply-blocked` when it is encoded, on the server's side.
struct Hooks;

#[rzero::async_trait]
impl rzero::interceptor::Interceptor for Hooks {
    async fn intercept(
        &self,
        call: rzero::interceptor::Call,
        next: rzero::interceptor::Next,
    ) -> Result<rzero::interceptor::Reply, Status> {
        next.run(call).await
    }

    fn on_request_message(
        &self,
        _: &'static rzero::MethodDescriptor,
        message: &dyn rzero::interceptor::Message,
    ) -> Result<(), Status> {
        match message.as_any().downcast_ref::<HelloRequest>() {
            Some(request) if request.name == "forbidden" => {
                Err(Status::permission_denied("hook refused the request"))
            }
            _ => Ok(()),
        }
    }

    fn on_response_message(
        &self,
        _: &'static rzero::MethodDescriptor,
        message: &dyn rzero::interceptor::Message,
    ) -> Result<(), Status> {
        match message.as_any().downcast_ref::<HelloReply>() {
            Some(reply) if reply.message.contains("reply-blocked") => {
                Err(Status::failed_precondition("hook refused the reply"))
            }
            _ => Ok(()),
        }
    }
}

/// The gateway's calls go through the gRPC server's interceptors and their message hooks in
/// every mode: in-process (where unary calls skip the gRPC framing) as over the network.
#[tokio::test]
async fn gateway_calls_run_the_servers_interceptors_and_message_hooks() {
    for mode in MODES {
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let services = {
            let seen = std::sync::Arc::clone(&seen);
            move || {
                let seen = std::sync::Arc::clone(&seen);
                services()
                    .interceptor(rzero::interceptor::from_fn(move |call, next| {
                        let seen = std::sync::Arc::clone(&seen);
                        async move {
                            let name = call
                                .message()
                                .and_then(|m| m.as_any().downcast_ref::<HelloRequest>())
                                .map(|request| request.name.clone())
                                .unwrap_or_default();
                            seen.lock()
                                .unwrap()
                                .push(format!("{} {name}", call.method().path()));
                            let mut reply = next.run(call).await?;
                            reply
                                .metadata_mut()
                                .insert("x-seen-by", "interceptor".parse().unwrap());
                            Ok(reply)
                        }
                    }))
                    .interceptor(Hooks)
            }
        };
        let fixture = Fixture::start(gateway(), mode, services).await;

        let reply = send(fixture.http, "GET", "/v1/greeter/world", &[], None).await;
        assert_eq!(reply.status, StatusCode::OK, "{mode:?}: {}", reply.text);
        assert_eq!(reply.json(), json!({"message": "Hello world!"}), "{mode:?}");
        assert_eq!(
            reply.header("grpc-metadata-x-seen-by"),
            Some("interceptor"),
            "{mode:?}"
        );

        let reply = send(fixture.http, "GET", "/v1/greeter/forbidden", &[], None).await;
        assert_eq!(
            reply.status,
            StatusCode::FORBIDDEN,
            "{mode:?}: {}",
            reply.text
        );
        assert_eq!(
            reply.json()["message"],
            json!("hook refused the request"),
            "{mode:?}"
        );

        let body = r#"{"name": "reply-blocked"}"#;
        let reply = send(fixture.http, "POST", "/v1/greeter", &[], Some(body)).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{mode:?}: {}",
            reply.text
        );
        assert_eq!(
            reply.json()["message"],
            json!("hook refused the reply"),
            "{mode:?}"
        );

        // A refused reply in a stream ends it with the hook's status too.
        let reply = send(
            fixture.http,
            "GET",
            "/v1/greeter/reply-blocked:stream?repeat=2",
            &[],
            None,
        )
        .await;
        let last = reply.text.lines().last().unwrap_or_default();
        let last: Value = serde_json::from_str(last).expect("an NDJSON line");
        assert_eq!(
            last["error"]["message"],
            json!("hook refused the reply"),
            "{mode:?}: {}",
            reply.text
        );
        assert_eq!(last["error"]["code"], json!(9), "{mode:?}");

        // A refused request never reaches the chain; a refused reply has passed it.
        assert_eq!(
            *seen.lock().unwrap(),
            [
                "/greeter.v1.Greeter/SayHello world",
                "/greeter.v1.Greeter/SayHello reply-blocked",
                "/greeter.v1.Greeter/SayHelloStream reply-blocked"
            ],
            "{mode:?}"
        );
        fixture.stop().await;
    }
}

#[tokio::test]
async fn unary_calls_in_every_mode() {
    for mode in MODES {
        let fixture = start(gateway(), mode).await;
        let addr = fixture.http;

        // GET with a path parameter (percent-decoded).
        let reply = send(addr, "GET", "/v1/greeter/ann%20b", &[], None).await;
        assert_eq!(reply.status, StatusCode::OK, "{mode:?}: {reply:?}");
        assert_eq!(reply.header("content-type"), Some("application/json"));
        assert_eq!(reply.json(), json!({"message": "Hello ann b!"}), "{mode:?}");

        // POST with body "*": query parameters are ignored.
        let reply = send(
            addr,
            "POST",
            "/v1/greeter?name=q",
            &[],
            Some(r#"{"name":"bob"}"#),
        )
        .await;
        assert_eq!(reply.json(), json!({"message": "Hello bob!"}), "{mode:?}");

        // Query parameters by proto or JSON name; bytes as base64; the whole reply with
        // unpopulated fields (the default).
        let reply = send(
            addr,
            "GET",
            "/v1/echo/hi?payload=aGk%3D&delayMs=1",
            &[],
            None,
        )
        .await;
        assert_eq!(
            reply.json(),
            json!({"message": "hi", "index": 0, "payload": "aGk=", "metadataEcho": ""}),
            "{mode:?}"
        );

        // response_body: one field of the reply.
        let reply = send(addr, "GET", "/v1/echo/hi%2Fthere/text", &[], None).await;
        assert_eq!(reply.json(), json!("hi/there"), "{mode:?}");

        // body: a field (bytes, as a JSON string).
        let reply = send(addr, "PUT", "/v1/echo/m", &[], Some(r#""AAEC""#)).await;
        assert_eq!(reply.json()["payload"], json!("AAEC"), "{mode:?}");

        // The gRPC port still speaks gRPC.
        let client = rzero_tests::default::greeter::v1::greeter_client::GreeterClient::connect(
            &format!("http://{}", fixture.grpc),
        )
        .await
        .expect("gRPC client");
        let reply = client
            .say_hello(HelloRequest {
                name: "grpc".into(),
                repeat: 0,
            })
            .await
            .expect("gRPC call");
        assert_eq!(reply.into_inner().message, "Hello grpc!");

        fixture.stop().await;
    }
}

#[tokio::test]
async fn generated_rules_alone_serve_their_service() {
    // Only what the generator emitted: the rules and the package's descriptor set.
    let only_generated = || Gateway::builder().service(&GREETER_HTTP_RULES);
    for mode in MODES {
        let fixture = start(only_generated(), mode).await;
        let reply = send(fixture.http, "GET", "/v1/greeter/gen", &[], None).await;
        assert_eq!(reply.json(), json!({"message": "Hello gen!"}), "{mode:?}");
        let reply = send(
            fixture.http,
            "POST",
            "/v1/greeter",
            &[],
            Some(r#"{"name":"p"}"#),
        )
        .await;
        assert_eq!(reply.json(), json!({"message": "Hello p!"}), "{mode:?}");
        // Routes of other services are not there.
        let reply = send(fixture.http, "GET", "/v1/echo/x", &[], None).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{mode:?}");
        fixture.stop().await;
    }
}

#[tokio::test]
async fn h2c_requests_are_served() {
    for mode in [Mode::SamePort, Mode::Proxy] {
        let fixture = start(gateway(), mode).await;
        let reply = send_with(fixture.http, true, "GET", "/v1/greeter/h2", &[], None).await;
        assert_eq!(reply.json(), json!({"message": "Hello h2!"}), "{mode:?}");
        fixture.stop().await;
    }
}

#[tokio::test]
async fn grpc_errors_map_to_http_statuses_with_details() {
    let fixture = start(gateway(), Mode::SamePort).await;
    let cases = [
        (1, 499),
        (2, 500),
        (3, 400),
        (4, 504),
        (5, 404),
        (6, 409),
        (7, 403),
        (8, 429),
        (9, 400),
        (10, 409),
        (11, 400),
        (12, 501),
        (13, 500),
        (14, 503),
        (15, 500),
        (16, 401),
    ];
    for (code, http) in cases {
        let body = format!(r#"{{"message":"m","failWithCode":{code}}}"#);
        let reply = send(fixture.http, "POST", "/v1/echo", &[], Some(&body)).await;
        assert_eq!(reply.status.as_u16(), http, "code {code}: {reply:?}");
        assert_eq!(reply.header("content-type"), Some("application/json"));
        assert_eq!(
            reply.json(),
            json!({
                "code": code,
                "message": "requested failure: m",
                "details": [{
                    "@type": "type.googleapis.com/google.rpc.BadRequest",
                    "fieldViolations": [{
                        "field": "message",
                        "description": "requested failure",
                        "reason": "",
                        // An unset message field, written as protojson (grpc-gateway) does.
                        "localizedMessage": null,
                    }],
                }],
            }),
            "code {code}"
        );
    }
    fixture.stop().await;
}

#[tokio::test]
async fn bad_requests_get_status_bodies() {
    let fixture = start(gateway().max_body_size(64), Mode::SamePort).await;
    let addr = fixture.http;
    let check = |reply: &Reply, status: u16, code: i64, needle: &str| {
        assert_eq!(reply.status.as_u16(), status, "{reply:?}");
        assert_eq!(reply.header("content-type"), Some("application/json"));
        let body = reply.json();
        assert_eq!(body["code"], json!(code), "{reply:?}");
        assert!(
            body["message"].as_str().unwrap().contains(needle),
            "{needle:?} in {body}"
        );
        assert_eq!(body["details"], json!([]));
    };

    let reply = send(addr, "POST", "/v1/greeter", &[], Some("{not json")).await;
    check(&reply, 400, 3, "invalid JSON");
    let reply = send(addr, "POST", "/v1/greeter", &[], Some(r#"{"name": 5}"#)).await;
    check(&reply, 400, 3, "invalid JSON");
    let reply = send(
        addr,
        "POST",
        "/v1/greeter",
        &[("content-type", "text/plain")],
        Some("x"),
    )
    .await;
    check(&reply, 415, 3, "content type");
    let big = format!(r#"{{"name":"{}"}}"#, "x".repeat(100));
    let reply = send(addr, "POST", "/v1/greeter", &[], Some(&big)).await;
    check(&reply, 413, 8, "limit");
    let reply = send(addr, "GET", "/v2/nothing", &[], None).await;
    check(&reply, 404, 5, "no route");
    let reply = send(addr, "DELETE", "/v1/greeter", &[], None).await;
    check(&reply, 405, 12, "not allowed");
    assert_eq!(reply.header("allow"), Some("POST"));
    let reply = send(addr, "GET", "/v1/echo/x?count=notanumber", &[], None).await;
    check(&reply, 400, 3, "count");
    let reply = send(addr, "GET", "/v1/echo/x", &[("grpc-timeout", "soon")], None).await;
    check(&reply, 400, 3, "Grpc-Timeout");
    // An empty body is an empty message.
    let reply = send(addr, "POST", "/v1/greeter", &[], Some("")).await;
    assert_eq!(reply.json(), json!({"message": "Hello !"}));

    fixture.stop().await;
}

#[tokio::test]
async fn deadlines_from_grpc_timeout() {
    for mode in [Mode::SamePort, Mode::Proxy] {
        let fixture = start(gateway(), mode).await;
        let reply = send(
            fixture.http,
            "POST",
            "/v1/echo",
            &[("grpc-timeout", "50m")],
            Some(r#"{"message":"slow","delayMs":2000}"#),
        )
        .await;
        assert_eq!(
            reply.status,
            StatusCode::GATEWAY_TIMEOUT,
            "{mode:?}: {reply:?}"
        );
        assert_eq!(reply.json()["code"], json!(4));
        fixture.stop().await;
    }
    // The gateway's own default deadline.
    let gateway = gateway().timeout(Duration::from_millis(50));
    let fixture = start(gateway, Mode::OwnPort).await;
    let reply = send(
        fixture.http,
        "POST",
        "/v1/echo",
        &[],
        Some(r#"{"message":"slow","delayMs":2000}"#),
    )
    .await;
    assert_eq!(reply.status, StatusCode::GATEWAY_TIMEOUT, "{reply:?}");
    fixture.stop().await;
}

/// The `on_reply` recipe of the docs: the service picks the HTTP status through header
/// metadata (here the echo service's `x-echo-header`, which echoes `x-echo`).
fn status_from_metadata(head: &mut http::response::Parts) {
    let code = head.headers.remove("grpc-metadata-x-echo-header");
    if let Some(code) = code.and_then(|v| StatusCode::from_bytes(v.as_bytes()).ok()) {
        head.status = code;
        head.headers
            .insert("x-chosen-by", http::HeaderValue::from_static("service"));
    }
}

#[tokio::test]
async fn reply_hooks_set_the_status_and_headers_of_successful_replies() {
    for mode in MODES {
        let fixture = start(gateway().on_reply(status_from_metadata), mode).await;
        let created = send(
            fixture.http,
            "POST",
            "/v1/echo",
            &[("Grpc-Metadata-X-Echo", "201")],
            Some(r#"{"message":"m"}"#),
        )
        .await;
        assert_eq!(created.status, StatusCode::CREATED, "{mode:?}: {created:?}");
        assert_eq!(created.header("x-chosen-by"), Some("service"));
        assert_eq!(created.header("grpc-metadata-x-echo-header"), None);
        assert_eq!(
            created.json()["message"],
            json!("m"),
            "the body is untouched"
        );

        // A status without a body loses the body, whatever the reply held.
        for h2c in [false, true] {
            let empty = send_with(
                fixture.http,
                h2c,
                "POST",
                "/v1/echo",
                &[("Grpc-Metadata-X-Echo", "204")],
                Some(r#"{"message":"m"}"#),
            )
            .await;
            assert_eq!(empty.status, StatusCode::NO_CONTENT, "{mode:?} h2c {h2c}");
            assert_eq!(empty.text, "", "{mode:?} h2c {h2c}");
            assert_eq!(empty.header("content-type"), None, "{mode:?} h2c {h2c}");
        }
        // The connection is still good after a 204 (HTTP/1.1 framing kept).
        let ok = send(fixture.http, "GET", "/v1/echo/again", &[], None).await;
        assert_eq!(ok.status, StatusCode::OK, "{mode:?}");

        // Stream heads too, before the first line.
        let stream = send(
            fixture.http,
            "GET",
            "/v1/echo/s:stream?count=2",
            &[("Grpc-Metadata-X-Echo", "202")],
            None,
        )
        .await;
        assert_eq!(stream.status, StatusCode::ACCEPTED, "{mode:?}: {stream:?}");
        assert_eq!(stream.text.lines().count(), 2, "{mode:?}: {stream:?}");

        // Errors are not the hook's: the status still comes from the gRPC code.
        let failed = send(
            fixture.http,
            "POST",
            "/v1/echo",
            &[("Grpc-Metadata-X-Echo", "201")],
            Some(r#"{"message":"m","failWithCode":5}"#),
        )
        .await;
        assert_eq!(failed.status, StatusCode::NOT_FOUND, "{mode:?}: {failed:?}");
        assert_eq!(failed.header("x-chosen-by"), None);
        fixture.stop().await;
    }
}

/// The `on_error` recipe of the docs: go-zero's `{"code", "msg"}` envelope.
fn envelope(head: &mut http::response::Parts, body: &mut Vec<u8>) {
    let status: Value = serde_json::from_slice(body).expect("a Status body");
    *body = json!({"code": status["code"], "msg": status["message"]})
        .to_string()
        .into_bytes();
    head.headers
        .insert("x-envelope", http::HeaderValue::from_static("go-zero"));
}

#[tokio::test]
async fn error_hooks_rewrite_every_error_answer() {
    for mode in MODES {
        let fixture = start(gateway().on_error(envelope), mode).await;
        // (method, path, headers, body, HTTP status, gRPC code)
        type Case<'a> = (
            &'a str,
            &'a str,
            &'a [(&'a str, &'a str)],
            Option<&'a str>,
            u16,
            i64,
        );
        let cases: [Case<'_>; 5] = [
            // A failed call, with the metadata it sent.
            (
                "POST",
                "/v1/echo",
                &[("Grpc-Metadata-X-Echo", "e")],
                Some(r#"{"message":"m","failWithCode":5}"#),
                404,
                5,
            ),
            ("POST", "/v1/echo", &[], Some("{not json"), 400, 3),
            ("GET", "/v1/nowhere", &[], None, 404, 5),
            ("DELETE", "/v1/echo", &[], None, 405, 12),
            (
                "POST",
                "/v1/echo",
                &[("content-type", "text/plain")],
                Some("{}"),
                415,
                3,
            ),
        ];
        for (method, path, headers, body, http, code) in cases {
            let reply = send(fixture.http, method, path, headers, body).await;
            let at = format!("{mode:?} {method} {path}: {reply:?}");
            assert_eq!(reply.status.as_u16(), http, "{at}");
            assert_eq!(reply.header("x-envelope"), Some("go-zero"), "{at}");
            assert_eq!(
                reply.header("content-type"),
                Some("application/json"),
                "{at}"
            );
            let json = reply.json();
            assert_eq!(json["code"], json!(code), "{at}");
            assert!(json["msg"].is_string(), "{at}");
            assert_eq!(
                json.as_object().unwrap().len(),
                2,
                "{at}: only the envelope"
            );
        }
        // What the gateway adds to an error stays: `Allow`, forwarded metadata.
        let wrong = send(fixture.http, "DELETE", "/v1/echo", &[], None).await;
        assert_eq!(wrong.header("allow"), Some("POST"));
        let failed = send(
            fixture.http,
            "POST",
            "/v1/echo",
            &[("Grpc-Metadata-X-Echo", "e")],
            Some(r#"{"message":"m","failWithCode":5}"#),
        )
        .await;
        assert_eq!(failed.header("grpc-metadata-x-echo-header"), Some("e"));
        // Successes are not errors.
        let ok = send(fixture.http, "GET", "/v1/echo/fine", &[], None).await;
        assert_eq!(ok.header("x-envelope"), None);
        assert_eq!(ok.json()["message"], json!("fine"));
        fixture.stop().await;
    }
}

#[tokio::test]
async fn head_requests_are_get_without_the_body() {
    for mode in MODES {
        let fixture = start(gateway(), mode).await;
        for h2c in [false, true] {
            let at = format!("{mode:?} h2c {h2c}");
            let get = send_with(fixture.http, h2c, "GET", "/v1/greeter/world", &[], None).await;
            let head = send_with(fixture.http, h2c, "HEAD", "/v1/greeter/world", &[], None).await;
            assert_eq!(head.status, StatusCode::OK, "{at}: {head:?}");
            assert_eq!(head.text, "", "{at}");
            assert_eq!(
                head.header("content-type"),
                Some("application/json"),
                "{at}"
            );
            assert_eq!(
                head.header("content-length"),
                Some(get.text.len().to_string().as_str()),
                "{at}: the length GET's body has"
            );
            // Errors too: the status and headers, no body.
            let missing = send_with(fixture.http, h2c, "HEAD", "/v1/nowhere", &[], None).await;
            assert_eq!(missing.status, StatusCode::NOT_FOUND, "{at}");
            assert_eq!(missing.text, "", "{at}");
            // A path without GET has no HEAD either.
            let post_only = send_with(fixture.http, h2c, "HEAD", "/v1/greeter", &[], None).await;
            assert_eq!(post_only.status, StatusCode::METHOD_NOT_ALLOWED, "{at}");
            assert_eq!(post_only.header("allow"), Some("POST"), "{at}");
        }
        // GET routes list HEAD as allowed.
        let wrong = send(fixture.http, "DELETE", "/v1/greeter/world", &[], None).await;
        assert_eq!(wrong.header("allow"), Some("GET, HEAD"), "{mode:?}");
        fixture.stop().await;
    }
}

#[tokio::test]
async fn headers_become_metadata_and_back() {
    for mode in MODES {
        let fixture = start(gateway(), mode).await;
        // Grpc-Metadata-* in, header and trailer metadata out.
        let reply = send(
            fixture.http,
            "GET",
            "/v1/echo/h",
            &[("Grpc-Metadata-X-Echo", "v1"), ("X-Echo", "not forwarded")],
            None,
        )
        .await;
        assert_eq!(reply.json()["metadataEcho"], json!("v1"), "{mode:?}");
        assert_eq!(reply.header("grpc-metadata-x-echo-header"), Some("v1"));
        assert_eq!(reply.header("grpc-trailer-x-echo-trailer"), Some("v1"));

        // What the service sees: the Mirror reports its request metadata.
        let reply = send(
            fixture.http,
            "POST",
            "/v1/mirror",
            &[
                ("authorization", "Bearer t"),
                ("x-forwarded-for", "10.0.0.1"),
                ("cookie", "dropped"),
                ("grpc-metadata-tenant", "acme"),
                ("grpc-timeout", "5S"),
            ],
            Some("{}"),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{mode:?}: {reply:?}");
        assert_eq!(
            reply.header("grpc-metadata-seen-authorization"),
            Some("Bearer t")
        );
        assert_eq!(reply.header("grpc-metadata-seen-tenant"), Some("acme"));
        assert_eq!(
            reply.header("grpc-metadata-seen-x-forwarded-for"),
            Some("10.0.0.1, 127.0.0.1")
        );
        assert_eq!(
            reply.header("grpc-metadata-seen-x-forwarded-host"),
            Some(fixture.http.to_string().as_str())
        );
        let timeout = reply
            .header("grpc-metadata-seen-grpc-timeout")
            .unwrap_or("");
        assert!(
            timeout.len() >= 2 && timeout.ends_with(['n', 'u', 'm', 'S', 'M', 'H']),
            "{timeout:?}"
        );
        assert_eq!(reply.header("grpc-metadata-seen-cookie"), None);
        assert_eq!(reply.header("grpc-trailer-mirror-trailer"), Some("t"));
        fixture.stop().await;
    }
}

#[tokio::test]
async fn header_matchers_are_configurable() {
    let gateway = gateway()
        .incoming_header_matcher(|name| (name == "x-echo").then(|| name.to_owned()))
        .outgoing_header_matcher(|name| Some(format!("x-md-{name}")))
        .outgoing_trailer_matcher(|_| None);
    let fixture = start(gateway, Mode::SamePort).await;
    let reply = send(fixture.http, "GET", "/v1/echo/h", &[("X-Echo", "v2")], None).await;
    assert_eq!(reply.json()["metadataEcho"], json!("v2"));
    assert_eq!(reply.header("x-md-x-echo-header"), Some("v2"));
    assert_eq!(reply.header("grpc-trailer-x-echo-trailer"), None);
    fixture.stop().await;
}

/// Every field kind and well-known type, in the canonical proto3 JSON form.
fn kitchen_json() -> Value {
    json!({
        "fDouble": 1.5,
        "fFloat": -2.25,
        "fInt32": -7,
        "fInt64": "-9007199254740993",
        "fUint32": 4000000000u32,
        "fUint64": "18446744073709551615",
        "fSint32": -3,
        "fSint64": "-4",
        "fFixed32": 5,
        "fFixed64": "6",
        "fSfixed32": -8,
        "fSfixed64": "-9",
        "fBool": true,
        "fString": "é\u{1F600}",
        "fBytes": "AP8=",
        "color": "GREEN",
        "inner": {"text": "in", "numbers": [1, 2]},
        "tags": ["a", "b"],
        "inners": [{"text": "x"}, {"numbers": [3]}],
        "counts": {"k": "10"},
        "byId": {"1": {"text": "one"}},
        "choiceInner": {"text": "c"},
        "maybe": 0,
        "customName": "r",
        "when": "2024-02-29T12:34:56.789Z",
        "took": "1.500s",
        "mask": "fInt32,inner.text",
        "doc": {"a": [1.5, "two", null, {"b": false}]},
        "value": 3.5,
        "list": [true, "x"],
        "any": {"@type": "type.googleapis.com/gw.kitchen.Inner", "text": "packed"},
        "empty": {},
        "wInt64": "12",
        "wString": "",
        "wBool": false,
        "wBytes": "YQ==",
        "wDouble": -0.5,
        "wUint32": 7,
        "wFloat": 0.25,
        "id": "",
    })
}

#[tokio::test]
async fn json_round_trips_every_field_kind() {
    for mode in [Mode::SamePort, Mode::Proxy] {
        let fixture = start(
            Gateway::builder()
                .descriptor_set(descriptor_set())
                .rules(RULES.iter().copied())
                .json(JsonOptions::new().emit_unpopulated(false)),
            mode,
        )
        .await;
        let mut sent = kitchen_json();
        let reply = send(
            fixture.http,
            "POST",
            "/v1/mirror",
            &[],
            Some(&sent.to_string()),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        // Unpopulated fields are left out: the empty `id`; `maybe` (explicit presence) stays.
        sent.as_object_mut().unwrap().remove("id");
        assert_eq!(reply.json(), sent, "{mode:?}");

        // Proto field names are accepted on input too, and numbers for enums and 64-bit ints.
        let reply = send(
            fixture.http,
            "POST",
            "/v1/mirror",
            &[],
            Some(r#"{"f_int64": 5, "color": 1, "custom_name": "n", "renamed": "m", "w_int64": 3}"#),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        let body = reply.json();
        assert_eq!(body["fInt64"], json!("5"));
        assert_eq!(body["color"], json!("RED"));
        assert_eq!(body["wInt64"], json!("3"));
        assert!(body["customName"] == json!("n") || body["customName"] == json!("m"));
        fixture.stop().await;
    }
}

/// Non-finite floats are the strings `"NaN"`, `"Infinity"` and `"-Infinity"` in proto3 JSON,
/// in the wrappers too (prost-reflect alone writes a wrapper's as a number, which serde_json
/// turns into `null`): both ways, in the whole reply and as its `response_body`.
#[tokio::test]
async fn non_finite_floats_are_strings_in_wrappers_too() {
    let rule = HttpRule::new("/gw.kitchen.Mirror/Mirror", "POST", "/v1/mirror:wDouble")
        .body("*")
        .response_body("w_double");
    let gateway = gateway()
        .rules([rule])
        .json(JsonOptions::new().emit_unpopulated(false));
    let fixture = start(gateway, Mode::SamePort).await;
    for text in ["NaN", "Infinity", "-Infinity"] {
        let sent = json!({
            "fDouble": text,
            "fFloat": text,
            "wDouble": text,
            "wFloat": text,
        });
        let reply = send(
            fixture.http,
            "POST",
            "/v1/mirror",
            &[],
            Some(&sent.to_string()),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        assert_eq!(
            reply.json(),
            json!({"fDouble": text, "fFloat": text, "wDouble": text, "wFloat": text}),
            "{text}"
        );
        let reply = send(
            fixture.http,
            "POST",
            "/v1/mirror:wDouble",
            &[],
            Some(&sent.to_string()),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        assert_eq!(reply.json(), json!(text), "{text}: response_body");
    }
    // Finite wrappers stay numbers.
    let reply = send(
        fixture.http,
        "POST",
        "/v1/mirror",
        &[],
        Some(r#"{"wDouble": 1e300, "wFloat": -0.5}"#),
    )
    .await;
    assert_eq!(reply.json(), json!({"wDouble": 1e300, "wFloat": -0.5}));
    fixture.stop().await;
}

#[tokio::test]
async fn json_options() {
    let options = JsonOptions::new()
        .proto_field_names(true)
        .enums_as_numbers(true)
        .emit_unpopulated(true);
    let fixture = start(gateway().json(options), Mode::SamePort).await;
    let reply = send(
        fixture.http,
        "POST",
        "/v1/mirror",
        &[],
        Some(r#"{"fInt32": 1, "color": "RED"}"#),
    )
    .await;
    let body = reply.json();
    assert_eq!(body["f_int32"], json!(1));
    assert_eq!(body["color"], json!(1));
    assert_eq!(
        body["f_string"],
        json!(""),
        "unpopulated fields are emitted"
    );
    assert_eq!(body["renamed"], json!(""));
    fixture.stop().await;

    // Unknown keys: ignored by default, refused on request.
    let fixture = start(gateway(), Mode::SamePort).await;
    let reply = send(
        fixture.http,
        "POST",
        "/v1/greeter",
        &[],
        Some(r#"{"name":"a","x":1}"#),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    fixture.stop().await;
    let strict = gateway().json(JsonOptions::new().reject_unknown_fields(true));
    let fixture = start(strict, Mode::SamePort).await;
    let reply = send(
        fixture.http,
        "POST",
        "/v1/greeter",
        &[],
        Some(r#"{"name":"a","x":1}"#),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{reply:?}");
    fixture.stop().await;
}

/// With unpopulated fields emitted (the default), unset singular message fields, well-known
/// types included, are `null`, as grpc-gateway's protojson writes them: in the reply, in an
/// `Any` payload, and in a `response_body` field. Unset oneof members and `optional` fields
/// stay out. Without unpopulated fields they are left out.
#[tokio::test]
async fn unset_message_fields_are_null_with_unpopulated_fields() {
    let rules = [
        HttpRule::new("/gw.kitchen.Mirror/Mirror", "POST", "/v1/mirror:any")
            .body("*")
            .response_body("any"),
        HttpRule::new("/gw.kitchen.Mirror/Mirror", "POST", "/v1/mirror:inner")
            .body("*")
            .response_body("inner"),
    ];
    let sent = json!({
        "fInt32": 1,
        "inners": [{"text": "a"}],
        "byId": {"1": {}},
        "choiceText": "c",
        "any": {"@type": "type.googleapis.com/gw.kitchen.Kitchen", "fBool": true},
    });
    // Every field of an unset `Kitchen` but the oneof and `maybe`.
    let unset = json!({
        "fDouble": 0.0, "fFloat": 0.0, "fInt32": 0, "fInt64": "0", "fUint32": 0,
        "fUint64": "0", "fSint32": 0, "fSint64": "0", "fFixed32": 0, "fFixed64": "0",
        "fSfixed32": 0, "fSfixed64": "0", "fBool": false, "fString": "", "fBytes": "",
        "color": "COLOR_UNSPECIFIED", "inner": null, "tags": [], "inners": [], "counts": {},
        "byId": {}, "customName": "", "when": null, "took": null, "mask": null, "doc": null,
        "value": null, "list": null, "any": null, "empty": null, "wInt64": null,
        "wString": null, "wBool": null, "wBytes": null, "wDouble": null, "wUint32": null,
        "wFloat": null, "id": "",
    });
    let with = |fields: serde_json::Value| {
        let mut object = unset.clone();
        for (key, value) in fields.as_object().unwrap() {
            object[key] = value.clone();
        }
        object
    };
    let payload = with(json!({
        "@type": "type.googleapis.com/gw.kitchen.Kitchen",
        "fBool": true,
    }));
    for mode in [Mode::SamePort, Mode::Proxy] {
        let fixture = start(gateway().rules(rules), mode).await;
        let reply = send(
            fixture.http,
            "POST",
            "/v1/mirror",
            &[],
            Some(&sent.to_string()),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        let expected = with(json!({
            "fInt32": 1,
            "inners": [{"text": "a", "numbers": []}],
            "byId": {"1": {"text": "", "numbers": []}},
            "choiceText": "c",
            "any": payload,
        }));
        assert_eq!(reply.json(), expected, "{mode:?}");
        // What is written reads back as the same message.
        let again = send(
            fixture.http,
            "POST",
            "/v1/mirror",
            &[],
            Some(&reply.json().to_string()),
        )
        .await;
        assert_eq!(again.json(), expected, "{mode:?}: read back");

        let reply = send(
            fixture.http,
            "POST",
            "/v1/mirror:any",
            &[],
            Some(&sent.to_string()),
        )
        .await;
        assert_eq!(reply.json(), payload, "{mode:?}: response_body");
        // An unset `response_body` message: an empty one, as protojson writes grpc-gateway's
        // nil message (`{}` for an `Any`; see gateway_response_body.rs).
        let reply = send(fixture.http, "POST", "/v1/mirror:inner", &[], Some("{}")).await;
        assert_eq!(reply.json(), json!({"text": "", "numbers": []}), "{mode:?}");
        let reply = send(fixture.http, "POST", "/v1/mirror:any", &[], Some("{}")).await;
        assert_eq!(
            reply.json(),
            json!({}),
            "{mode:?}: an unset Any response_body"
        );
        fixture.stop().await;
    }

    let sparse = gateway()
        .rules(rules)
        .json(JsonOptions::new().emit_unpopulated(false));
    let fixture = start(sparse, Mode::SamePort).await;
    let reply = send(
        fixture.http,
        "POST",
        "/v1/mirror",
        &[],
        Some(&sent.to_string()),
    )
    .await;
    assert_eq!(
        reply.json(),
        json!({
            "fInt32": 1,
            "inners": [{"text": "a"}],
            "byId": {"1": {}},
            "choiceText": "c",
            "any": {"@type": "type.googleapis.com/gw.kitchen.Kitchen", "fBool": true},
        })
    );
    let reply = send(
        fixture.http,
        "POST",
        "/v1/mirror:any",
        &[],
        Some(&sent.to_string()),
    )
    .await;
    // (A `response_body` keeps its defaults whatever the options, as before; no `null`s.)
    assert!(!reply.json().to_string().contains("null"), "{reply:?}");
    let reply = send(fixture.http, "POST", "/v1/mirror:inner", &[], Some("{}")).await;
    assert_eq!(reply.json(), json!({}), "an unset response_body, sparse");
    fixture.stop().await;
}

#[tokio::test]
async fn body_field_path_and_query_bind_together() {
    let fixture = start(
        gateway().json(JsonOptions::new().emit_unpopulated(false)),
        Mode::SamePort,
    )
    .await;
    // PATCH /v1/mirror/{id} with body "inner": the body fills `inner`, the path `id`, the
    // query the rest (but never `inner`).
    let reply = send(
        fixture.http,
        "PATCH",
        "/v1/mirror/k1?fInt32=4&tags=a&tags=b&inner.text=ignored&counts[x]=2&when=2020-01-01T00:00:00Z",
        &[],
        Some(r#"{"text":"from body","numbers":[9]}"#),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(
        reply.json(),
        json!({
            "id": "k1",
            "fInt32": 4,
            "tags": ["a", "b"],
            "counts": {"x": "2"},
            "when": "2020-01-01T00:00:00Z",
            "inner": {"text": "from body", "numbers": [9]},
            // PATCH with a body field: the FieldMask comes from the body's keys.
            "mask": "numbers,text",
        })
    );
    // ... unless the client sent one.
    let reply = send(
        fixture.http,
        "PATCH",
        "/v1/mirror/k1?mask=text",
        &[],
        Some(r#"{"text":"t","numbers":[1]}"#),
    )
    .await;
    assert_eq!(reply.json()["mask"], json!("text"), "{reply:?}");
    // GET: everything from the path and query; a singular field twice is a 400.
    let reply = send(
        fixture.http,
        "GET",
        "/v1/mirror/k2?fBool=true&color=GREEN",
        &[],
        None,
    )
    .await;
    assert_eq!(
        reply.json(),
        json!({"id": "k2", "fBool": true, "color": "GREEN"})
    );
    let reply = send(
        fixture.http,
        "GET",
        "/v1/mirror/k2?fInt32=1&fInt32=2",
        &[],
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    fixture.stop().await;
}

#[tokio::test]
async fn hand_written_routes_share_the_router() {
    let gateway = gateway().route(
        "GET",
        "/healthz/{service=**}",
        |_request, params| async move {
            let body = serde_json::to_vec(&json!({ "service": params[0].1 })).unwrap();
            http::Response::new(tonic::body::Body::new(Full::new(Bytes::from(body))))
        },
    );
    let fixture = start(gateway, Mode::OwnPort).await;
    let reply = send(fixture.http, "GET", "/healthz/greeter.v1/x", &[], None).await;
    assert_eq!(reply.json(), json!({"service": "greeter.v1/x"}));
    let reply = send(fixture.http, "POST", "/healthz/x", &[], None).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    fixture.stop().await;
}

#[tokio::test]
async fn server_streaming_as_ndjson_and_sse() {
    for mode in [Mode::SamePort, Mode::Proxy] {
        let fixture = start(gateway(), mode).await;
        let reply = send(
            fixture.http,
            "GET",
            "/v1/greeter/ann:stream?repeat=3",
            &[],
            None,
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.header("content-type"), Some("application/x-ndjson"));
        let lines: Vec<Value> = reply
            .text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(
            lines,
            [0, 1, 2].map(|i| json!({"result": {"message": format!("Hello ann #{i}")}})),
            "{mode:?}"
        );

        // An error after some messages: status 200, then an error line.
        let reply = send(
            fixture.http,
            "GET",
            "/v1/greeter/fail:stream?repeat=1",
            &[],
            None,
        )
        .await;
        let lines: Vec<Value> = reply
            .text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{reply:?}");
        assert_eq!(lines[1]["error"]["code"], json!(10));
        assert_eq!(lines[1]["error"]["message"], json!("stopped on purpose"));

        // An error before any message: the mapped status and a Status body.
        let reply = send(
            fixture.http,
            "GET",
            "/v1/echo/m:stream?count=2&failWithCode=7",
            &[],
            None,
        )
        .await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{reply:?}");
        assert_eq!(reply.json()["code"], json!(7));

        // Server-Sent Events.
        let reply = send(
            fixture.http,
            "GET",
            "/v1/echo/m:stream?count=2",
            &[("accept", "text/event-stream")],
            None,
        )
        .await;
        assert_eq!(reply.header("content-type"), Some("text/event-stream"));
        let events: Vec<&str> = reply.text.split("\n\n").filter(|e| !e.is_empty()).collect();
        assert_eq!(events.len(), 2, "{reply:?}");
        assert!(events[1].starts_with("data: {"), "{events:?}");
        let data: Value = serde_json::from_str(&events[1]["data: ".len()..]).unwrap();
        assert_eq!(data["index"], json!(1));
        fixture.stop().await;
    }
}

/// The greetings `/v1/greeter/<name>:stream?repeat=<n>` streams, as JSON.
fn greetings(name: &str, n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| json!({"message": format!("Hello {name} #{i}")}))
        .collect()
}

/// `GET path` with `Accept: accept`.
async fn get_accepting(addr: std::net::SocketAddr, h2c: bool, path: &str, accept: &str) -> Reply {
    send_with(addr, h2c, "GET", path, &[("accept", accept)], None).await
}

/// `Accept: application/json` (alone) asks for Envoy's framing: one JSON array of the plain
/// messages (`response_body` applied to each), `[]` for an empty stream.
#[tokio::test]
async fn server_streaming_as_a_json_array_on_request() {
    for mode in MODES {
        let fixture = start(gateway(), mode).await;
        for h2c in [false, true] {
            let at = format!("{mode:?}, h2c {h2c}");
            let get = |path, accept| get_accepting(fixture.http, h2c, path, accept);
            for accept in ["application/json", "Application/JSON; charset=utf-8"] {
                let reply = get("/v1/greeter/ann:stream?repeat=3", accept).await;
                assert_eq!(reply.status, StatusCode::OK, "{at}: {reply:?}");
                assert_eq!(
                    reply.header("content-type"),
                    Some("application/json"),
                    "{at}"
                );
                assert_eq!(
                    reply.json(),
                    Value::Array(greetings("ann", 3)),
                    "{at}, {accept}"
                );
            }

            // Next to other types `application/json` is habit (axios sends
            // `application/json, text/plain, */*`), or a grpc-gateway client expecting its
            // lines: the default framing answers.
            let reply = get(
                "/v1/greeter/ann:stream?repeat=2",
                "application/json, text/plain, */*",
            )
            .await;
            assert_eq!(
                reply.header("content-type"),
                Some("application/x-ndjson"),
                "{at}"
            );

            // Every message is the reply type's JSON, as a unary reply would be.
            let reply = get("/v1/echo/m:stream?count=2", "application/json").await;
            let unary = send_with(fixture.http, h2c, "GET", "/v1/echo/m", &[], None).await;
            let mut second = unary.json();
            second["index"] = json!(1);
            assert_eq!(reply.json(), json!([unary.json(), second]), "{at}");

            // `response_body`: each element is that field, as each NDJSON line's result is.
            let reply = get("/v1/echo/m:texts?count=2", "application/json").await;
            assert_eq!(reply.json(), json!(["m", "m"]), "{at}: {reply:?}");
            let lines = get("/v1/echo/m:texts?count=2", "application/x-ndjson").await;
            assert_eq!(lines.text, "{\"result\":\"m\"}\n".repeat(2), "{at}");

            // No messages: an empty array.
            let reply = get("/v1/echo/m:stream?count=0", "application/json").await;
            assert_eq!(reply.status, StatusCode::OK, "{at}: {reply:?}");
            assert_eq!(
                reply.header("content-type"),
                Some("application/json"),
                "{at}"
            );
            assert_eq!(reply.text, "[]", "{at}");
        }
        fixture.stop().await;
    }
}

/// `GatewayBuilder::stream_framing` sets the framing of requests whose `Accept` does not
/// choose one; those that do still get theirs.
#[tokio::test]
async fn the_builder_sets_the_default_stream_framing() {
    for mode in MODES {
        let fixture = start(gateway().stream_framing(StreamFraming::JsonArray), mode).await;
        for h2c in [false, true] {
            let at = format!("{mode:?}, h2c {h2c}");
            let path = "/v1/greeter/bo:stream?repeat=2";
            let get = |accept| get_accepting(fixture.http, h2c, path, accept);
            for headers in [&[][..], &[("accept", "*/*")]] {
                let reply = send_with(fixture.http, h2c, "GET", path, headers, None).await;
                assert_eq!(reply.status, StatusCode::OK, "{at}: {reply:?}");
                assert_eq!(
                    reply.header("content-type"),
                    Some("application/json"),
                    "{at}"
                );
                assert_eq!(reply.json(), Value::Array(greetings("bo", 2)), "{at}");
            }

            for accept in ["application/x-ndjson", "application/jsonl"] {
                let reply = get(accept).await;
                assert_eq!(
                    reply.header("content-type"),
                    Some("application/x-ndjson"),
                    "{at}"
                );
                let lines: Vec<Value> = reply
                    .text
                    .lines()
                    .map(|l| serde_json::from_str(l).unwrap())
                    .collect();
                let expected: Vec<Value> = greetings("bo", 2)
                    .into_iter()
                    .map(|message| json!({ "result": message }))
                    .collect();
                assert_eq!(lines, expected, "{at}, {accept}");
            }

            let reply = get("text/event-stream").await;
            assert_eq!(
                reply.header("content-type"),
                Some("text/event-stream"),
                "{at}"
            );
            assert!(reply.text.starts_with("data: {"), "{at}: {reply:?}");
        }
        fixture.stop().await;
    }
    // Without the option, no `Accept` still means NDJSON.
    let fixture = start(gateway(), Mode::OwnPort).await;
    let reply = send(
        fixture.http,
        "GET",
        "/v1/greeter/bo:stream?repeat=1",
        &[],
        None,
    )
    .await;
    assert_eq!(reply.header("content-type"), Some("application/x-ndjson"));
    fixture.stop().await;
}

/// A JSON array cannot carry an error, and a closed one reads as the whole answer: a call
/// failing after its first message aborts the response (HTTP/1.1 connection closed before
/// the last chunk, HTTP/2 stream reset), so the client sees a body error, never `[...]`.
#[tokio::test]
async fn a_json_array_failing_midway_is_aborted() {
    for mode in MODES {
        let fixture = start(gateway(), mode).await;
        for h2c in [false, true] {
            let at = format!("{mode:?}, h2c {h2c}");
            let path = "/v1/greeter/fail:stream?repeat=2";
            let accept = [("accept", "application/json")];
            let reply = try_send_with(fixture.http, h2c, "GET", path, &accept, None).await;
            // The head went out with the first message; only the body can tell.
            assert_eq!(reply.status, StatusCode::OK, "{at}: {reply:?}");
            assert_eq!(
                reply.header("content-type"),
                Some("application/json"),
                "{at}"
            );
            let body = &reply.body;
            assert!(
                body.is_err(),
                "{at}: the body must end in an error: {body:?}"
            );

            // The server is fine afterwards: the same stream without the failure.
            let path = "/v1/greeter/ok:stream?repeat=2";
            let reply = send_with(fixture.http, h2c, "GET", path, &accept, None).await;
            assert_eq!(reply.json(), Value::Array(greetings("ok", 2)), "{at}");
        }
        fixture.stop().await;
    }
}

/// A call failing before its first message gets its mapped HTTP status and a Status body
/// as a JSON array: the head waits for that message. That holds even when the service
/// sent its gRPC response headers before failing, where NDJSON has already answered 200.
#[tokio::test]
async fn a_json_array_failing_before_its_first_message_gets_its_status() {
    for mode in MODES {
        let fixture = start(gateway(), mode).await;
        for h2c in [false, true] {
            let at = format!("{mode:?}, h2c {h2c}");
            let accept = [("accept", "application/json")];
            // A failure instead of the response headers (trailers only).
            let path = "/v1/echo/m:stream?count=2&failWithCode=7";
            let reply = send_with(fixture.http, h2c, "GET", path, &accept, None).await;
            assert_eq!(reply.status, StatusCode::FORBIDDEN, "{at}: {reply:?}");
            assert_eq!(
                reply.header("content-type"),
                Some("application/json"),
                "{at}"
            );
            assert_eq!(reply.json()["code"], json!(7), "{at}");

            // A stream whose first item is the failure (ABORTED: 409).
            let path = "/v1/greeter/fail:stream?repeat=0";
            let reply = send_with(fixture.http, h2c, "GET", path, &accept, None).await;
            assert_eq!(reply.status, StatusCode::CONFLICT, "{at}: {reply:?}");
            assert_eq!(
                reply.json(),
                json!({"code": 10, "message": "stopped on purpose", "details": []}),
                "{at}"
            );
            // NDJSON sends its head with the gRPC response headers: 200, an error line.
            let reply = send_with(fixture.http, h2c, "GET", path, &[], None).await;
            assert_eq!(reply.status, StatusCode::OK, "{at}: {reply:?}");
            assert!(reply.text.starts_with("{\"error\":"), "{at}: {reply:?}");
        }
        fixture.stop().await;
    }
}

#[test]
fn bad_rules_are_reported_together() {
    let rules = [
        HttpRule::new("/greeter.v1.Greeter/SayHello", "GET", "/v1/a/{name}").body("*"),
        HttpRule::new("/greeter.v1.Greeter/Nope", "GET", "/v1/b"),
        HttpRule::new("/greeter.v1.Nope/SayHello", "GET", "/v1/c"),
        HttpRule::new("SayHello", "GET", "/v1/d"),
        HttpRule::new("/greeter.v1.Greeter/SayHello", "GET", "/v1/e/{missing}"),
        HttpRule::new("/greeter.v1.Greeter/SayHello", "GET", "/v1/f/{name"),
        HttpRule::new("/echo.v1.Echo/ClientStream", "POST", "/v1/g/{message}").body("*"),
        HttpRule::new("/echo.v1.Echo/Unary", "POST", "/v1/h").body("nope"),
        HttpRule::new("/echo.v1.Echo/Unary", "POST", "/v1/i").response_body("nope"),
        HttpRule::new("/gw.kitchen.Mirror/Mirror", "GET", "/v1/j/{tags}"),
        HttpRule::new("/gw.kitchen.Mirror/Mirror", "GET", "/v1/j/{inner}/x"),
        HttpRule::new("/greeter.v1.Greeter/SayHello", "GET", "/v1/k/{name}"),
        HttpRule::new("/echo.v1.Echo/Unary", "GET", "/v1/k/{message}"),
    ];
    let error = Gateway::builder()
        .descriptor_set(descriptor_set())
        .rules(rules)
        .build()
        .unwrap_err();
    let text = error.to_string();
    let expected = [
        "GET binding cannot have a body",
        "has no method Nope",
        "service greeter.v1.Nope is not in the descriptor set",
        "method must be a gRPC path",
        "no field \"missing\" in greeter.v1.HelloRequest",
        "/v1/f/{name",
        "the path cannot bind variables",
        "body: no field \"nope\"",
        "response_body: no field \"nope\"",
        "path variable tags is a repeated or map field",
        "path variable inner is a message",
        "conflicts with GET /v1/k/{name=*}",
    ];
    for needle in expected {
        assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
    }
    assert_eq!(error.errors().len(), expected.len(), "{text}");

    let error = Gateway::new(b"not a descriptor set".to_vec(), &[]).unwrap_err();
    assert!(error.to_string().contains("descriptor set #0"), "{error}");
}

#[tokio::test]
async fn healthz_reports_grpc_health() {
    for mode in [Mode::SamePort, Mode::Proxy] {
        let fixture = start(gateway().healthz("/healthz"), mode).await;
        let reply = send(fixture.http, "GET", "/healthz", &[], None).await;
        assert_eq!(reply.status, StatusCode::OK, "{mode:?}: {reply:?}");
        assert_eq!(reply.json(), json!({"status": "SERVING"}));
        let reply = send(
            fixture.http,
            "GET",
            "/healthz?service=greeter.v1.Greeter",
            &[],
            None,
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{mode:?}: {reply:?}");
        let reply = send(fixture.http, "GET", "/healthz?service=nope.Nope", &[], None).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{mode:?}: {reply:?}");
        assert_eq!(reply.json()["code"], json!(5));
        fixture.stop().await;
    }
}

/// `rzero::testing` serves the gateway along with gRPC: no ports, the same dispatch.
#[tokio::test]
async fn the_in_process_server_serves_the_gateway_too() {
    let server = rzero::testing::InProcessServer::start(
        rzero::Server::builder()
            .add_service(GreeterServer::new(Greet))
            .gateway(gateway().build().expect("gateway")),
    );
    let get = http::Request::get("/v1/greeter/ann")
        .body(Bytes::new())
        .unwrap();
    let response = tokio::time::timeout(Duration::from_secs(20), server.http(get))
        .await
        .expect("in time")
        .expect("http");
    assert_eq!(response.status(), StatusCode::OK);
    let json: Value = serde_json::from_slice(response.body()).expect("json");
    assert_eq!(json, json!({ "message": "Hello ann!" }));

    let post = http::Request::post("/v1/greeter")
        .header("content-type", "application/json")
        .body(Bytes::from_static(br#"{"name": "bo"}"#))
        .unwrap();
    let response = server.http(post).await.expect("http");
    assert_eq!(response.status(), StatusCode::OK);
    let json: Value = serde_json::from_slice(response.body()).expect("json");
    assert_eq!(json["message"], "Hello bo!");

    // Errors keep their JSON shape in process too.
    let missing = http::Request::get("/v1/nowhere")
        .body(Bytes::new())
        .unwrap();
    let response = server.http(missing).await.expect("http");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let json: Value = serde_json::from_slice(response.body()).expect("json");
    assert_eq!(json["code"], 5, "{json}");

    // The same server answers gRPC.
    let client =
        rzero_tests::default::greeter::v1::greeter_client::GreeterClient::new(server.client());
    let reply = client
        .say_hello(HelloRequest {
            name: "cy".into(),
            repeat: 0,
        })
        .await
        .expect("grpc");
    assert_eq!(reply.into_inner().message, "Hello cy!");
    server.shutdown().await.expect("shutdown");
}
