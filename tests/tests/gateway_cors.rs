//! CORS in the REST/JSON gateway (`GatewayBuilder::cors`) over real HTTP on 127.0.0.1:
//! preflights answered by the gateway (204, 403, 405, 404), CORS headers on every answer to
//! an allowed origin (replies, errors, streams, hand-written routes, health), none for other
//! origins or without `Origin`, in-process on the gRPC port, on a port of its own, and as a
//! proxy. The fixtures are `gateway/support.rs`'s, shared with `gateway.rs`.

use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use http_body_util::Full;
use rzero::gateway::{Cors, GatewayBuilder};
use rzero_tests::default::greeter::v1::HelloRequest;
use serde_json::json;

#[path = "gateway/support.rs"]
mod support;
use support::*;

const APP: &str = "https://app.example.com";

/// Listed origins (one exact, one subdomain pattern), credentials, a max age, one extra
/// exposed header, and a hand-written route and `/healthz` next to the RPC routes.
fn listed() -> GatewayBuilder {
    gateway()
        .healthz("/healthz")
        .route("GET", "/v1/hand/{x}", |_request, params| async move {
            let mut response = http::Response::new(tonic::body::Body::new(Full::new(Bytes::from(
                format!("{{\"x\":\"{}\"}}", params[0].1),
            ))));
            response
                .headers_mut()
                .insert("vary", "accept-language".parse().unwrap());
            response
        })
        .cors(
            Cors::origins([APP, "https://*.example.com"])
                .allow_credentials(true)
                .expose_headers(["X-Request-Id"])
                .max_age(Duration::from_secs(600)),
        )
}

/// A preflight for `method` on `path` from `origin`, asking for `request_headers`.
async fn preflight(
    fixture: &Fixture,
    origin: &str,
    method: &str,
    path: &str,
    request_headers: Option<&str>,
) -> Reply {
    let mut headers = vec![
        ("origin", origin),
        ("access-control-request-method", method),
    ];
    if let Some(request_headers) = request_headers {
        headers.push(("access-control-request-headers", request_headers));
    }
    send(fixture.http, "OPTIONS", path, &headers, None).await
}

/// The response's `Access-Control-*` headers.
fn cors_headers(reply: &Reply) -> Vec<(String, String)> {
    reply
        .headers
        .iter()
        .filter(|(name, _)| name.as_str().starts_with("access-control-"))
        .map(|(name, value)| (name.to_string(), value.to_str().unwrap().to_owned()))
        .collect()
}

/// Every `Vary` entry, lower case.
fn vary(reply: &Reply) -> Vec<String> {
    reply
        .headers
        .get_all("vary")
        .iter()
        .flat_map(|v| v.to_str().unwrap().split(','))
        .map(|v| v.trim().to_ascii_lowercase())
        .collect()
}

/// `Access-Control-Expose-Headers` as a sorted list (empty when absent).
fn exposed(reply: &Reply) -> Vec<String> {
    let mut names: Vec<String> = reply
        .header("access-control-expose-headers")
        .unwrap_or("")
        .split(',')
        .map(|v| v.trim().to_ascii_lowercase())
        .filter(|v| !v.is_empty())
        .collect();
    names.sort_unstable();
    names
}

#[tokio::test]
async fn preflights_from_allowed_origins_get_204_and_every_header() {
    for mode in MODES {
        let fixture = start(listed(), mode).await;
        for origin in [APP, "https://a.example.com", "https://a.b.example.com"] {
            let reply = preflight(
                &fixture,
                origin,
                "PUT",
                "/v1/echo/hi",
                Some("content-type, grpc-metadata-x-echo"),
            )
            .await;
            assert_eq!(
                reply.status,
                StatusCode::NO_CONTENT,
                "{mode:?} {origin}: {reply:?}"
            );
            assert_eq!(reply.text, "", "{mode:?}");
            assert_eq!(reply.header("access-control-allow-origin"), Some(origin));
            assert_eq!(reply.header("access-control-allow-methods"), Some("PUT"));
            assert_eq!(
                reply.header("access-control-allow-headers"),
                Some("content-type, grpc-metadata-x-echo"),
                "{mode:?}"
            );
            assert_eq!(reply.header("access-control-max-age"), Some("600"));
            assert_eq!(
                reply.header("access-control-allow-credentials"),
                Some("true")
            );
            let vary = vary(&reply);
            for name in ["origin", "access-control-request-headers"] {
                assert!(vary.contains(&name.to_owned()), "{mode:?}: {vary:?}");
            }
        }

        // A preflight asking for no headers gets no Allow-Headers; a route with a verb is
        // found as the router finds it.
        let reply = preflight(&fixture, APP, "GET", "/v1/echo/hi:stream", None).await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT, "{mode:?}: {reply:?}");
        assert_eq!(reply.header("access-control-allow-methods"), Some("GET"));
        assert_eq!(reply.header("access-control-allow-headers"), None);
        fixture.stop().await;
    }
}

#[tokio::test]
async fn preflights_from_other_origins_are_403_with_a_status_body() {
    let fixture = start(listed(), Mode::OwnPort).await;
    for origin in [
        "https://example.com", // the pattern wants a subdomain
        "https://a.example.com.evil.com",
        "http://app.example.com", // another scheme
        "https://app.example.com:8443",
        "null",
    ] {
        let reply = preflight(&fixture, origin, "GET", "/v1/echo/hi", None).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{origin}: {reply:?}");
        assert_eq!(reply.header("content-type"), Some("application/json"));
        let status = reply.json();
        assert_eq!(status["code"], json!(7), "{origin}: {status}");
        let message = status["message"].as_str().unwrap();
        assert!(message.contains(origin), "{origin}: {message}");
        assert_eq!(cors_headers(&reply), [], "{origin}");
        assert_eq!(vary(&reply), ["origin"], "{origin}");
    }
    fixture.stop().await;
}

#[tokio::test]
async fn preflights_for_unrouted_methods_are_405_and_unknown_paths_404() {
    let fixture = start(listed(), Mode::SamePort).await;
    let reply = preflight(&fixture, APP, "DELETE", "/v1/echo/hi", None).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED, "{reply:?}");
    assert_eq!(reply.header("allow"), Some("GET, HEAD, PUT"));
    assert_eq!(reply.json()["code"], json!(12));
    assert_eq!(
        reply.json()["message"],
        json!("method DELETE not allowed for /v1/echo/hi")
    );
    assert_eq!(reply.header("access-control-allow-methods"), None);

    let reply = preflight(&fixture, APP, "GET", "/v1/nowhere", None).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{reply:?}");
    assert_eq!(reply.json()["code"], json!(5));
    assert_eq!(reply.header("access-control-allow-methods"), None);

    // `OPTIONS` without `Access-Control-Request-Method` is no preflight: routed as ever.
    let reply = send(
        fixture.http,
        "OPTIONS",
        "/v1/echo/hi",
        &[("origin", APP)],
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED, "{reply:?}");
    assert_eq!(reply.header("allow"), Some("GET, HEAD, PUT"));
    assert_eq!(reply.header("access-control-allow-origin"), Some(APP));
    fixture.stop().await;

    // Without CORS, a preflight is an `OPTIONS` request like any other.
    let fixture = start(gateway(), Mode::SamePort).await;
    let reply = preflight(&fixture, APP, "GET", "/v1/echo/hi", None).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED, "{reply:?}");
    assert_eq!(cors_headers(&reply), []);
    fixture.stop().await;
}

#[tokio::test]
async fn answers_to_allowed_origins_carry_cors_headers_and_expose_grpc_metadata() {
    for mode in MODES {
        let fixture = start(listed(), mode).await;
        let origin = [("origin", APP), ("grpc-metadata-x-echo", "v")];
        let check = |reply: &Reply, what: &str| {
            assert_eq!(
                reply.header("access-control-allow-origin"),
                Some(APP),
                "{mode:?} {what}: {reply:?}"
            );
            assert_eq!(
                reply.header("access-control-allow-credentials"),
                Some("true"),
                "{mode:?} {what}"
            );
            assert!(
                vary(reply).contains(&"origin".to_owned()),
                "{mode:?} {what}: {reply:?}"
            );
            // Preflight-only headers stay on preflights.
            assert_eq!(reply.header("access-control-max-age"), None, "{what}");
            assert_eq!(reply.header("access-control-allow-methods"), None, "{what}");
        };

        // Unary GET and POST: the reply's metadata headers are exposed, with the extra one.
        let reply = send(fixture.http, "GET", "/v1/echo/hi", &origin, None).await;
        assert_eq!(reply.status, StatusCode::OK, "{mode:?}: {reply:?}");
        check(&reply, "GET");
        assert_eq!(reply.header("grpc-metadata-x-echo-header"), Some("v"));
        assert_eq!(
            exposed(&reply),
            [
                "grpc-metadata-x-echo-header",
                "grpc-trailer-x-echo-trailer",
                "x-request-id"
            ],
            "{mode:?}: {reply:?}"
        );
        let body = r#"{"message": "posted"}"#;
        let reply = send(fixture.http, "POST", "/v1/echo", &origin, Some(body)).await;
        assert_eq!(reply.json()["message"], json!("posted"), "{mode:?}");
        check(&reply, "POST");
        assert!(
            exposed(&reply).contains(&"grpc-metadata-x-echo-header".to_owned()),
            "{mode:?}: {reply:?}"
        );

        // A failed call (its header metadata exposed too), and the gateway's own errors.
        let reply = send(
            fixture.http,
            "GET",
            "/v1/echo/hi?failWithCode=5",
            &origin,
            None,
        )
        .await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{mode:?}: {reply:?}");
        check(&reply, "failed call");
        assert!(
            exposed(&reply).contains(&"grpc-metadata-x-echo-header".to_owned()),
            "{mode:?}: {reply:?}"
        );
        let reply = send(fixture.http, "GET", "/v1/nowhere", &origin, None).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND);
        check(&reply, "404");
        assert_eq!(exposed(&reply), ["x-request-id"], "{mode:?}");
        let reply = send(fixture.http, "DELETE", "/v1/echo/hi", &origin, None).await;
        assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
        check(&reply, "405");
        let reply = send(fixture.http, "POST", "/v1/echo", &origin, Some("{")).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
        check(&reply, "400");

        // A server stream (NDJSON), from a subdomain.
        let sub = [
            ("origin", "https://a.example.com"),
            ("grpc-metadata-x-echo", "s"),
        ];
        let reply = send(fixture.http, "GET", "/v1/echo/m:stream?count=2", &sub, None).await;
        assert_eq!(reply.status, StatusCode::OK, "{mode:?}: {reply:?}");
        assert_eq!(reply.text.lines().count(), 2, "{reply:?}");
        assert_eq!(
            reply.header("access-control-allow-origin"),
            Some("https://a.example.com")
        );
        assert_eq!(
            exposed(&reply),
            ["grpc-metadata-x-echo-header", "x-request-id"],
            "{mode:?}: {reply:?}"
        );

        // A hand-written route (its own `Vary` kept) and the health route.
        let reply = send(fixture.http, "GET", "/v1/hand/1", &origin, None).await;
        assert_eq!(reply.json(), json!({"x": "1"}));
        check(&reply, "hand-written");
        assert_eq!(vary(&reply), ["accept-language", "origin"], "{mode:?}");
        let reply = send(fixture.http, "GET", "/healthz", &origin, None).await;
        assert_eq!(reply.status, StatusCode::OK, "{mode:?}: {reply:?}");
        check(&reply, "healthz");
        fixture.stop().await;
    }
}

#[tokio::test]
async fn requests_without_origin_or_from_other_origins_get_no_cors_headers() {
    for mode in MODES {
        let fixture = start(listed(), mode).await;
        let metadata = ("grpc-metadata-x-echo", "v");
        for headers in [
            &[metadata][..],
            &[("origin", "https://evil.example.org"), metadata],
        ] {
            let reply = send(fixture.http, "GET", "/v1/echo/hi", headers, None).await;
            assert_eq!(
                reply.status,
                StatusCode::OK,
                "{mode:?} {headers:?}: {reply:?}"
            );
            assert_eq!(reply.json()["message"], json!("hi"));
            assert_eq!(reply.header("grpc-metadata-x-echo-header"), Some("v"));
            assert_eq!(cors_headers(&reply), [], "{mode:?} {headers:?}");
            // The answer depends on `Origin`, so caches are told (Fetch, "CORS protocol and
            // HTTP caches").
            assert_eq!(vary(&reply), ["origin"], "{mode:?} {headers:?}");

            let body = r#"{"message": "posted"}"#;
            let reply = send(fixture.http, "POST", "/v1/echo", headers, Some(body)).await;
            assert_eq!(reply.json()["message"], json!("posted"));
            assert_eq!(cors_headers(&reply), [], "{mode:?} {headers:?}");
        }
        fixture.stop().await;
    }
}

#[tokio::test]
async fn any_origin_answers_star_without_vary_origin() {
    let gateway = gateway().cors(
        Cors::any_origin()
            .allow_headers(["Content-Type", "Authorization"])
            .expose_headers(["x-total"]),
    );
    let fixture = start(gateway, Mode::OwnPort).await;
    let origin = "https://anyone.example.net";
    let reply = preflight(&fixture, origin, "POST", "/v1/echo", Some("x-custom")).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{reply:?}");
    assert_eq!(reply.header("access-control-allow-origin"), Some("*"));
    assert_eq!(reply.header("access-control-allow-methods"), Some("POST"));
    // Configured headers, not the mirrored request.
    assert_eq!(
        reply.header("access-control-allow-headers"),
        Some("content-type, authorization")
    );
    assert_eq!(reply.header("access-control-allow-credentials"), None);
    assert_eq!(reply.header("access-control-max-age"), None);
    let vary = vary(&reply);
    assert!(!vary.contains(&"origin".to_owned()), "{vary:?}");
    assert!(
        !vary.contains(&"access-control-request-headers".to_owned()),
        "{vary:?}"
    );

    let reply = send(
        fixture.http,
        "GET",
        "/v1/echo/hi",
        &[("origin", origin)],
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(reply.header("access-control-allow-origin"), Some("*"));
    assert_eq!(reply.header("access-control-allow-credentials"), None);
    assert_eq!(reply.header("vary"), None);
    // No metadata in this reply: only the configured header is exposed.
    assert_eq!(exposed(&reply), ["x-total"]);

    let reply = send(fixture.http, "GET", "/v1/echo/hi", &[], None).await;
    assert_eq!(cors_headers(&reply), []);
    assert_eq!(reply.header("vary"), None);
    fixture.stop().await;
}

#[test]
fn credentials_with_any_origin_and_bad_origins_are_refused_at_build_time() {
    let error = gateway()
        .cors(Cors::any_origin().allow_credentials(true))
        .build()
        .unwrap_err();
    assert_eq!(error.errors().len(), 1, "{error}");
    assert!(
        error.errors()[0].contains("allow_credentials with any_origin"),
        "{error}"
    );

    let error = gateway()
        .cors(Cors::origins([
            "https://ok.example.com",
            "https://bad.example.com/",
        ]))
        .build()
        .unwrap_err();
    assert_eq!(error.errors().len(), 1, "{error}");
    assert!(
        error.errors()[0].contains("\"https://bad.example.com/\""),
        "{error}"
    );

    gateway()
        .cors(Cors::origins([APP]).allow_credentials(true))
        .build()
        .expect("credentials with listed origins");
}

/// On a shared port, requests are told apart by content type: a preflight has none, so it
/// reaches the gateway, and gRPC calls still reach the services.
#[tokio::test]
async fn preflights_reach_the_gateway_on_the_grpc_port() {
    let fixture = start(listed(), Mode::SamePort).await;
    assert_eq!(fixture.grpc, fixture.http);
    let reply = preflight(&fixture, APP, "POST", "/v1/greeter", Some("content-type")).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{reply:?}");
    assert_eq!(reply.header("access-control-allow-origin"), Some(APP));
    assert_eq!(reply.header("access-control-allow-methods"), Some("POST"));

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
