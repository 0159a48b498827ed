//! gRPC-Web: browsers calling the gRPC methods themselves, on the gRPC port.
//!
//! Browsers cannot speak gRPC: `fetch` neither reads HTTP trailers nor forces HTTP/2.
//! gRPC-Web moves the trailers into the body and works over HTTP/1.1 as well; the
//! `grpc-web` and Connect JavaScript clients speak it. tonic-web does the protocol
//! translation (binary `application/grpc-web[+proto]` and base64
//! `application/grpc-web-text[+proto]`), so a gRPC-Web call reaches the same services,
//! interceptors, limits and time limits as a gRPC call. What this module adds is the
//! dispatch next to gRPC and the gateway, and CORS ([`GrpcWeb::cors`]), which tonic-web
//! leaves to the user and which every browser page served from another origin needs.

use std::convert::Infallible;

use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use tonic::body::Body;
use tower_layer::Layer as _;

use crate::Error;
use crate::cors::{self, Cors};

/// gRPC-Web on the gRPC port ([`ServerBuilder::grpc_web`](super::ServerBuilder::grpc_web)).
///
/// Unary and server-streaming calls work (browsers cannot stream a request); a
/// client-streaming call takes its one message. Over HTTP/1.1 the port then also takes
/// HTTP/1.1 connections (and offers ALPN `http/1.1` next to `h2` under TLS); an HTTP/1.1
/// request that is neither gRPC-Web nor for a gateway on the same port gets 400.
///
/// ```no_run
/// # async fn run<S>(greeter: S) -> Result<(), rzero::Error>
/// # where S: tower_service::Service<http::Request<tonic::body::Body>, Response = http::Response<tonic::body::Body>, Error = std::convert::Infallible>
/// #   + tonic::server::NamedService + Clone + Send + Sync + 'static, S::Future: Send + 'static {
/// use rzero::Cors;
/// use rzero::server::GrpcWeb;
///
/// rzero::Server::builder()
///     .add_service(greeter)
///     .grpc_web(GrpcWeb::new().cors(Cors::origins(["https://app.example.com"])))
///     .serve("127.0.0.1:8080")
///     .await
/// # }
/// ```
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct GrpcWeb {
    cors: Option<Cors>,
}

impl GrpcWeb {
    /// gRPC-Web for same-origin pages (and non-browser clients): no CORS.
    pub fn new() -> GrpcWeb {
        GrpcWeb::default()
    }

    /// Lets pages from other origins call, as [`Cors`] describes for the gateway, with
    /// these differences:
    /// - a preflight is answered for the path of any method of a hosted service (`204`, with
    ///   `POST` as the only method; `405` with `Allow: POST` for another method; `403` for
    ///   an origin not allowed);
    /// - every header of a response is exposed to scripts, since gRPC-Web metadata are
    ///   plain headers: `grpc-status` and `grpc-message` (a call that fails at once answers
    ///   them as headers) and the service's own metadata;
    /// - requested headers are mirrored by default, so `x-grpc-web`, `x-user-agent`,
    ///   `grpc-timeout` and metadata headers pass; [`Cors::allow_headers`] narrows that.
    ///
    /// `serve` fails when the policy is malformed.
    pub fn cors(mut self, cors: Cors) -> Self {
        self.cors = Some(cors);
        self
    }

    /// Checks the settings; `hosted` names the services whose methods a preflight may ask
    /// for; with `shared` (a gateway on the same port), preflights for other paths are the
    /// gateway's.
    pub(crate) fn compile(self, hosted: Vec<Box<str>>, shared: bool) -> Result<Web, Error> {
        let cors = self
            .cors
            .map(Cors::compile)
            .transpose()
            .map_err(|errors| Error::config(format!("grpc_web {}", errors.join("; "))))?;
        Ok(Web {
            cors,
            hosted,
            shared,
        })
    }
}

/// A checked [`GrpcWeb`], as the server (and a gateway proxy) dispatches with it.
#[derive(Debug)]
pub(crate) struct Web {
    cors: Option<cors::Policy>,
    hosted: Vec<Box<str>>,
    shared: bool,
}

/// The content types of gRPC-Web that tonic-web translates.
const CONTENT_TYPES: [&[u8]; 4] = [
    b"application/grpc-web",
    b"application/grpc-web+proto",
    b"application/grpc-web-text",
    b"application/grpc-web-text+proto",
];

impl Web {
    /// Whether this request is gRPC-Web's to answer: a gRPC-Web content type, or (with
    /// CORS) a preflight, for a hosted method when a gateway shares the port.
    pub(crate) fn takes<B>(&self, request: &http::Request<B>) -> bool {
        let content_type = request.headers().get(header::CONTENT_TYPE);
        if content_type.is_some_and(|v| v.as_bytes().starts_with(b"application/grpc-web")) {
            return true;
        }
        self.cors.is_some()
            && cors::is_preflight(request.method(), request.headers())
            && (!self.shared || self.hosts(request.uri().path()))
    }

    /// Whether `path` is `/<hosted service>/<method>`.
    fn hosts(&self, path: &str) -> bool {
        path.strip_prefix('/')
            .and_then(|path| path.split_once('/'))
            .is_some_and(|(service, method)| {
                !method.is_empty()
                    && !method.contains('/')
                    && self.hosted.iter().any(|hosted| **hosted == *service)
            })
    }

    /// Answers a request [`takes`](Self::takes) accepted, calling `grpc` (the gRPC
    /// routes) for the call itself.
    pub(crate) async fn call<S>(
        &self,
        grpc: S,
        request: http::Request<Body>,
    ) -> http::Response<Body>
    where
        S: tower_service::Service<
                http::Request<Body>,
                Response = http::Response<Body>,
                Error = Infallible,
            > + Send,
        S::Future: Send,
    {
        if let Some(policy) = &self.cors
            && cors::is_preflight(request.method(), request.headers())
        {
            if !self.hosts(request.uri().path()) {
                let mut response = status_response(
                    StatusCode::NOT_FOUND,
                    tonic::Code::Unimplemented,
                    "no such gRPC method here",
                );
                let origin = request.headers().get(header::ORIGIN);
                policy.actual_grpc_web(origin, response.headers_mut());
                return response;
            }
            return preflight(policy, &request);
        }
        let supported = request
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| CONTENT_TYPES.contains(&v.as_bytes()));
        let origin = request.headers().get(header::ORIGIN).cloned();
        let mut response = if !supported {
            status_response(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                tonic::Code::InvalidArgument,
                "gRPC-Web: unsupported content type; use application/grpc-web[+proto] or \
                 application/grpc-web-text[+proto]",
            )
        } else {
            // tonic-web answers a gRPC-Web request that is not a POST with 405.
            let mut web = tonic_web::GrpcWebLayer::new().layer(grpc);
            let answer = async {
                std::future::poll_fn(|cx| {
                    tower_service::Service::<http::Request<Body>>::poll_ready(&mut web, cx)
                })
                .await?;
                tower_service::Service::<http::Request<Body>>::call(&mut web, request).await
            };
            match answer.await {
                Ok(response) => response,
                Err(never) => match never {},
            }
        };
        if let Some(policy) = &self.cors {
            policy.actual_grpc_web(origin.as_ref(), response.headers_mut());
        }
        response
    }
}

/// A CORS preflight for a hosted method: 403 for an origin not allowed, 405 for a method
/// other than `POST`, else 204.
fn preflight(policy: &cors::Policy, request: &http::Request<Body>) -> http::Response<Body> {
    let headers = request.headers();
    let origin = headers.get(header::ORIGIN);
    if !origin.is_some_and(|origin| policy.allows(origin)) {
        let mut response = status_response(
            StatusCode::FORBIDDEN,
            tonic::Code::PermissionDenied,
            "CORS: origin not allowed",
        );
        policy.vary(response.headers_mut());
        return response;
    }
    let method = headers
        .get(header::ACCESS_CONTROL_REQUEST_METHOD)
        .map(HeaderValue::as_bytes)
        .unwrap_or_default();
    if method.trim_ascii() != b"POST" {
        let mut response = status_response(
            StatusCode::METHOD_NOT_ALLOWED,
            tonic::Code::Unimplemented,
            "gRPC-Web calls are POSTs",
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        policy.actual_grpc_web(origin, response.headers_mut());
        return response;
    }
    let mut response = http::Response::new(Body::empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    policy.preflight(headers, "POST", response.headers_mut());
    response
}

/// An HTTP error with a `google.rpc.Status` JSON body, as the gateway answers them, and
/// the gRPC status in headers, as a gRPC-Web client reads it. `message` is a constant
/// without characters JSON would escape.
pub(crate) fn status_response(
    status: StatusCode,
    code: tonic::Code,
    message: &'static str,
) -> http::Response<Body> {
    let body = format!(
        r#"{{"code":{},"message":"{message}","details":[]}}"#,
        code as i32
    );
    let mut response = http::Response::new(Body::new(http_body_util::Full::new(Bytes::from(body))));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert("grpc-status", HeaderValue::from(code as i32));
    headers.insert("grpc-message", HeaderValue::from_static(message));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

    fn web(cors: Option<Cors>, shared: bool) -> Web {
        GrpcWeb { cors }
            .compile(vec!["echo.v1.Echo".into()], shared)
            .expect("a valid policy")
    }

    fn request(method: Method, path: &str, headers: &[(&str, &str)]) -> http::Request<()> {
        let mut request = http::Request::builder().method(method).uri(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(()).expect("a valid request")
    }

    #[test]
    fn takes_grpc_web_content_types_and_preflights_for_hosted_methods() {
        let web = web(Some(Cors::any_origin()), true);
        let post = |content_type| {
            request(
                Method::POST,
                "/echo.v1.Echo/Unary",
                &[("content-type", content_type)],
            )
        };
        assert!(web.takes(&post("application/grpc-web+proto")));
        assert!(web.takes(&post("application/grpc-web-text")));
        assert!(
            web.takes(&post("application/grpc-web+json")),
            "answered with 415"
        );
        assert!(!web.takes(&post("application/grpc")));
        assert!(!web.takes(&post("application/json")));
        let preflight = |path| {
            request(
                Method::OPTIONS,
                path,
                &[
                    ("origin", "https://a.example"),
                    ("access-control-request-method", "POST"),
                ],
            )
        };
        assert!(web.takes(&preflight("/echo.v1.Echo/Unary")));
        assert!(
            !web.takes(&preflight("/other.v1.Other/Unary")),
            "another service"
        );
        assert!(!web.takes(&preflight("/echo.v1.Echo")), "no method");
        assert!(!web.takes(&preflight("/echo.v1.Echo/Unary/more")));
        assert!(!web.takes(&preflight("/v1/echo")), "a REST path");
        // Without CORS, preflights are not gRPC-Web's to answer.
        assert!(!self::web(None, true).takes(&preflight("/echo.v1.Echo/Unary")));
        // Without a gateway on the port, every preflight is (unknown paths get 404).
        let alone = self::web(Some(Cors::any_origin()), false);
        assert!(alone.takes(&preflight("/v1/echo")));
    }

    #[test]
    fn malformed_policies_fail_the_start() {
        let error = GrpcWeb::new()
            .cors(Cors::any_origin().allow_credentials(true))
            .compile(vec![], false)
            .expect_err("credentials with any origin");
        assert!(error.to_string().contains("allow_credentials"), "{error}");
    }
}
