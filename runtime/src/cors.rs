//! CORS: which other origins' browser pages may call the server, answered by the server
//! itself (preflights) and added to every response (actual requests).
//!
//! One policy type serves both ways browsers reach a server: the REST/JSON gateway
//! ([`GatewayBuilder::cors`](crate::gateway::GatewayBuilder::cors)) and gRPC-Web
//! ([`GrpcWeb::cors`](crate::server::GrpcWeb::cors)). They differ only in which paths a
//! preflight may ask for (the gateway's routes; the hosted gRPC methods, `POST` only) and
//! in which response headers scripts need to read (below).

use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue, Method, header};

/// Cross-origin resource sharing, so that a browser page served from another origin can
/// call the REST routes ([`GatewayBuilder::cors`]) or the gRPC methods over gRPC-Web
/// ([`GrpcWeb::cors`]). What follows describes the gateway; gRPC-Web differs where
/// [`GrpcWeb::cors`] says.
///
/// Off unless configured. When configured, the gateway answers preflights (`OPTIONS` with
/// `Origin` and `Access-Control-Request-Method`) itself, before any handler: 204 when the
/// origin is allowed and a route takes the requested method at that path; the usual 405
/// (with `Allow`) or 404 otherwise; 403 with a `google.rpc.Status` body (`PERMISSION_DENIED`)
/// when the origin is not allowed. Every other response to an allowed origin (replies,
/// errors, streams, hand-written routes, health) carries `Access-Control-Allow-Origin`,
/// `Access-Control-Allow-Credentials` when set, and `Access-Control-Expose-Headers` naming
/// the response's `Grpc-Metadata-*` and `Grpc-Trailer-*` headers (how the gateway returns
/// gRPC metadata; browsers hide them from scripts otherwise) and the
/// [configured](Self::expose_headers) ones. Requests from other origins are served as usual,
/// without CORS headers (same-origin `POST`s carry `Origin` too); the browser then keeps the
/// answer from the page. The gateway owns the `Access-Control-*` headers of those responses:
/// it replaces any a hand-written route set.
///
/// With [`origins`](Self::origins), the allowed origin is mirrored and every response says
/// `Vary: Origin` (added to an existing `Vary`), even one to a request without `Origin`, as
/// the Fetch standard asks of responses that depend on it, so that caches keep them apart.
///
/// ```no_run
/// # fn build(descriptor_set: &'static [u8], rules: &[rzero::gateway::HttpRule]) -> Result<(), rzero::gateway::GatewayBuildError> {
/// use std::time::Duration;
/// use rzero::gateway::{Cors, Gateway};
///
/// let gateway = Gateway::builder()
///     .descriptor_set(descriptor_set)
///     .rules(rules.iter().copied())
///     .cors(
///         Cors::origins(["https://app.example.com", "https://*.example.com"])
///             .allow_credentials(true)
///             .max_age(Duration::from_secs(600)),
///     )
///     .build()?;
/// # Ok(()) }
/// ```
///
/// [`GatewayBuilder::cors`]: crate::gateway::GatewayBuilder::cors
/// [`GrpcWeb::cors`]: crate::server::GrpcWeb::cors
#[derive(Clone, Debug)]
#[must_use]
pub struct Cors {
    origins: Option<Vec<String>>,
    credentials: bool,
    allow_headers: Option<Vec<String>>,
    expose_headers: Vec<String>,
    max_age: Option<Duration>,
}

impl Cors {
    fn new(origins: Option<Vec<String>>) -> Cors {
        Cors {
            origins,
            credentials: false,
            allow_headers: None,
            expose_headers: Vec::new(),
            max_age: None,
        }
    }

    /// Any origin: `Access-Control-Allow-Origin: *`. Browsers refuse `*` on credentialed
    /// requests, so [`allow_credentials`](Self::allow_credentials) needs
    /// [`origins`](Self::origins) instead (checked by [`GatewayBuilder::build`], or when a
    /// gRPC-Web server starts).
    ///
    /// [`GatewayBuilder::build`]: crate::gateway::GatewayBuilder::build
    pub fn any_origin() -> Cors {
        Cors::new(None)
    }

    /// These origins, each `scheme://host[:port]` as browsers send it in `Origin`, compared
    /// ASCII case-insensitively. A host starting with `*.` stands for any subdomain:
    /// `https://*.example.com` allows `https://a.example.com` and `https://a.b.example.com`,
    /// not `https://example.com` (list it too) nor another scheme or port. The request's
    /// origin is mirrored in `Access-Control-Allow-Origin`. Malformed entries (a path, a
    /// trailing `/`, `*` alone, `null`) are reported by [`GatewayBuilder::build`], or when a
    /// gRPC-Web server starts.
    ///
    /// [`GatewayBuilder::build`]: crate::gateway::GatewayBuilder::build
    pub fn origins<I, S>(origins: I) -> Cors
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Cors::new(Some(origins.into_iter().map(Into::into).collect()))
    }

    /// Whether browsers may send cookies and `Authorization` along:
    /// `Access-Control-Allow-Credentials: true`. Default: no.
    pub fn allow_credentials(mut self, allow: bool) -> Self {
        self.credentials = allow;
        self
    }

    /// The request headers a preflight may ask for (`Access-Control-Allow-Headers`).
    /// Default: whatever the preflight's `Access-Control-Request-Headers` asks, mirrored
    /// (the gateway forwards only what its incoming header matcher takes anyway).
    pub fn allow_headers<I, S>(mut self, headers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.allow_headers = Some(headers.into_iter().map(Into::into).collect());
        self
    }

    /// More response headers for scripts to read (`Access-Control-Expose-Headers`), besides
    /// each response's own `Grpc-Metadata-*` and `Grpc-Trailer-*` headers, which are always
    /// exposed (headers renamed by custom outgoing matchers belong here).
    pub fn expose_headers<I, S>(mut self, headers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.expose_headers
            .extend(headers.into_iter().map(Into::into));
        self
    }

    /// How long browsers may cache a preflight's answer (`Access-Control-Max-Age`, whole
    /// seconds). Default: not sent (browsers then cache it for 5 seconds).
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = Some(max_age);
        self
    }

    /// Checks the configuration, one message per problem.
    pub(crate) fn compile(self) -> Result<Policy, Vec<String>> {
        let mut errors = Vec::new();
        let origins = match self.origins {
            None => {
                if self.credentials {
                    errors.push(
                        "cors: allow_credentials with any_origin: browsers refuse \
                         `Access-Control-Allow-Origin: *` on credentialed requests; \
                         list the origins with Cors::origins"
                            .to_owned(),
                    );
                }
                Origins::Any
            }
            Some(list) => {
                if list.is_empty() {
                    errors.push("cors: Cors::origins without any origin".to_owned());
                }
                let mut patterns = Vec::new();
                for origin in &list {
                    match Pattern::parse(origin) {
                        Ok(pattern) => patterns.push(pattern),
                        Err(why) => errors.push(format!("cors: origin {origin:?}: {why}")),
                    }
                }
                Origins::List(patterns)
            }
        };
        let mut names = |what: &str, list: &[String]| -> Vec<HeaderName> {
            list.iter()
                .filter_map(
                    |name| match HeaderName::from_bytes(name.trim().as_bytes()) {
                        Ok(name) => Some(name),
                        Err(_) => {
                            errors.push(format!("cors: {what} {name:?} is not a header name"));
                            None
                        }
                    },
                )
                .collect()
        };
        let allow_headers = self
            .allow_headers
            .as_deref()
            .map(|list| join(&names("allow_headers", list)));
        let expose = names("expose_headers", &self.expose_headers);
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Policy {
            origins,
            credentials: self.credentials,
            allow_headers,
            expose,
            max_age: self.max_age.map(|age| HeaderValue::from(age.as_secs())),
        })
    }
}

/// Why `origin` cannot be an entry of [`Cors::origins`] (`*` included: that is
/// [`Cors::any_origin`]), for the YAML loader to report where the entry is written.
#[cfg(feature = "config")]
pub(crate) fn check_origin(origin: &str) -> Result<(), &'static str> {
    Pattern::parse(origin).map(drop)
}

/// Header names as one comma-separated value (`None` when there are none).
fn join(names: &[HeaderName]) -> Option<HeaderValue> {
    if names.is_empty() {
        return None;
    }
    let joined = names
        .iter()
        .map(HeaderName::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    HeaderValue::from_str(&joined).ok()
}

/// A checked [`Cors`], as the gateway uses it.
#[derive(Debug)]
pub(crate) struct Policy {
    origins: Origins,
    credentials: bool,
    /// `None`: mirror `Access-Control-Request-Headers`; `Some(None)`: send none.
    allow_headers: Option<Option<HeaderValue>>,
    expose: Vec<HeaderName>,
    max_age: Option<HeaderValue>,
}

#[derive(Debug)]
enum Origins {
    Any,
    List(Vec<Pattern>),
}

/// One allowed origin.
#[derive(Debug, PartialEq)]
enum Pattern {
    /// `scheme://host[:port]`, lower case.
    Exact(String),
    /// `scheme://*.host[:port]`: `prefix` is `scheme://`, `suffix` is `.host[:port]`, lower
    /// case; between them, one or more DNS labels.
    Subdomains { prefix: String, suffix: String },
}

impl Pattern {
    fn parse(origin: &str) -> Result<Pattern, &'static str> {
        if origin == "*" {
            return Err("`*` is not an origin: use Cors::any_origin()");
        }
        let lower = origin.to_ascii_lowercase();
        let Some((scheme, authority)) = lower.split_once("://") else {
            return Err("expected scheme://host[:port]");
        };
        let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        if !scheme_ok {
            return Err("expected scheme://host[:port]: bad scheme");
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, _)) if !host.ends_with(']') && host.contains(':') => {
                (authority, None) // an unbracketed IPv6 address: refused below
            }
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        };
        if let Some(port) = port
            && (port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err("expected scheme://host[:port]: bad port (no path or trailing `/`)");
        }
        let (wildcard, host) = match host.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, host),
        };
        let ipv6 = !wildcard
            && host.len() > 2
            && host.starts_with('[')
            && host.ends_with(']')
            && host[1..host.len() - 1]
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
        if !ipv6 && !is_dns_name(host) {
            return Err(
                "expected scheme://host[:port]: bad host (no path or trailing `/`, \
                        `*.` only at the start)",
            );
        }
        Ok(if wildcard {
            Pattern::Subdomains {
                prefix: format!("{scheme}://"),
                suffix: lower[scheme.len() + "://*".len()..].to_owned(),
            }
        } else {
            Pattern::Exact(lower)
        })
    }

    fn matches(&self, origin: &str) -> bool {
        match self {
            Pattern::Exact(exact) => origin.eq_ignore_ascii_case(exact),
            Pattern::Subdomains { prefix, suffix } => {
                let end = origin.len().saturating_sub(suffix.len());
                if end <= prefix.len() {
                    return false; // nothing before the suffix: `https://example.com`
                }
                let (Some(head), Some(labels), Some(tail)) = (
                    origin.get(..prefix.len()),
                    origin.get(prefix.len()..end),
                    origin.get(end..),
                ) else {
                    return false;
                };
                head.eq_ignore_ascii_case(prefix)
                    && tail.eq_ignore_ascii_case(suffix)
                    && is_dns_name(labels)
            }
        }
    }
}

/// Dot-separated labels of letters, digits, `-` and `_`, none empty.
fn is_dns_name(host: &str) -> bool {
    !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

const VARY_ORIGIN: HeaderValue = HeaderValue::from_static("origin");
const VARY_REQUEST_METHOD: HeaderValue = HeaderValue::from_static("access-control-request-method");
const VARY_REQUEST_HEADERS: HeaderValue =
    HeaderValue::from_static("access-control-request-headers");
/// Response headers every script may read (Fetch's CORS-safelisted response-header names).
#[cfg(feature = "grpc-web")]
const SAFELISTED: [&str; 7] = [
    "cache-control",
    "content-language",
    "content-length",
    "content-type",
    "expires",
    "last-modified",
    "pragma",
];
const ANY: HeaderValue = HeaderValue::from_static("*");
const TRUE: HeaderValue = HeaderValue::from_static("true");

/// Whether a request is a CORS preflight: `OPTIONS` with `Origin` and
/// `Access-Control-Request-Method`.
pub(crate) fn is_preflight(method: &Method, headers: &HeaderMap) -> bool {
    method == Method::OPTIONS
        && headers.contains_key(header::ORIGIN)
        && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

impl Policy {
    /// Whether `origin` (an `Origin` header) is allowed.
    pub(crate) fn allows(&self, origin: &HeaderValue) -> bool {
        match &self.origins {
            Origins::Any => true,
            Origins::List(patterns) => origin
                .to_str()
                .is_ok_and(|origin| patterns.iter().any(|p| p.matches(origin))),
        }
    }

    /// `Vary: Origin` when the answer depends on the origin (a list, not `*`).
    pub(crate) fn vary(&self, headers: &mut HeaderMap) {
        if matches!(self.origins, Origins::List(_)) {
            add_vary(headers, VARY_ORIGIN);
        }
    }

    /// Allow-Origin (+ `Vary`) and Allow-Credentials, for an allowed `origin`.
    fn allow_origin(&self, origin: &HeaderValue, headers: &mut HeaderMap) {
        let value = match self.origins {
            Origins::Any => ANY,
            Origins::List(_) => origin.clone(),
        };
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
        if self.credentials {
            headers.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, TRUE);
        } else {
            headers.remove(header::ACCESS_CONTROL_ALLOW_CREDENTIALS);
        }
    }

    /// The CORS headers of an answer to a request that is not an accepted preflight:
    /// `Vary` always, the rest when `origin` is allowed.
    /// The gateway's: each response's `Grpc-Metadata-*` and `Grpc-Trailer-*` headers are
    /// exposed.
    #[cfg(feature = "gateway")]
    pub(crate) fn actual(&self, origin: Option<&HeaderValue>, headers: &mut HeaderMap) {
        self.actual_exposing(origin, headers, |name| {
            name.starts_with("grpc-metadata-") || name.starts_with("grpc-trailer-")
        });
    }

    /// The same for gRPC-Web, whose metadata are plain headers: every header of the
    /// response is exposed but those scripts may read anyway (CORS-safelisted) and CORS's
    /// own. `grpc-status` and `grpc-message` above all: a call that fails before its first
    /// message answers them as headers ("trailers-only"), and a client that cannot read
    /// them cannot tell the failure.
    #[cfg(feature = "grpc-web")]
    pub(crate) fn actual_grpc_web(&self, origin: Option<&HeaderValue>, headers: &mut HeaderMap) {
        self.actual_exposing(origin, headers, |name| {
            !SAFELISTED.contains(&name) && !name.starts_with("access-control-") && name != "vary"
        });
    }

    fn actual_exposing(
        &self,
        origin: Option<&HeaderValue>,
        headers: &mut HeaderMap,
        exposed: impl Fn(&str) -> bool,
    ) {
        self.vary(headers);
        let Some(origin) = origin.filter(|origin| self.allows(origin)) else {
            return;
        };
        self.allow_origin(origin, headers);
        let mut expose: Vec<&str> = headers
            .keys()
            .map(HeaderName::as_str)
            .filter(|name| exposed(name))
            .collect();
        for name in &self.expose {
            if !expose.contains(&name.as_str()) {
                expose.push(name.as_str());
            }
        }
        match HeaderValue::from_str(&expose.join(", ")) {
            Ok(value) if !expose.is_empty() => {
                headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, value);
            }
            _ => {
                headers.remove(header::ACCESS_CONTROL_EXPOSE_HEADERS);
            }
        }
    }

    /// The headers of a 204 answer to an accepted preflight (allowed origin, routed method).
    pub(crate) fn preflight(&self, request: &HeaderMap, method: &str, headers: &mut HeaderMap) {
        self.vary(headers);
        add_vary(headers, VARY_REQUEST_METHOD);
        if let Some(origin) = request.get(header::ORIGIN) {
            self.allow_origin(origin, headers);
        }
        if let Ok(method) = HeaderValue::from_str(method) {
            headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, method);
        }
        let allow_headers = match &self.allow_headers {
            Some(configured) => configured.clone(),
            None => {
                add_vary(headers, VARY_REQUEST_HEADERS);
                let asked: Vec<&[u8]> = request
                    .get_all(header::ACCESS_CONTROL_REQUEST_HEADERS)
                    .iter()
                    .map(HeaderValue::as_bytes)
                    .filter(|v| !v.iter().all(u8::is_ascii_whitespace))
                    .collect();
                match asked.as_slice() {
                    [] => None,
                    [one] => HeaderValue::from_bytes(one).ok(),
                    many => HeaderValue::from_bytes(&many.join(&b","[..])).ok(),
                }
            }
        };
        if let Some(allow_headers) = allow_headers {
            headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, allow_headers);
        }
        if let Some(max_age) = &self.max_age {
            headers.insert(header::ACCESS_CONTROL_MAX_AGE, max_age.clone());
        }
    }
}

/// Adds `name` to `Vary` unless it is listed already (or `Vary: *`).
fn add_vary(headers: &mut HeaderMap, name: HeaderValue) {
    let listed = headers
        .get_all(header::VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|v| v == "*" || v.eq_ignore_ascii_case(name.to_str().unwrap_or_default()));
    if !listed {
        headers.append(header::VARY, name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(cors: Cors) -> Policy {
        cors.compile().expect("valid")
    }

    fn allows(policy: &Policy, origin: &str) -> bool {
        policy.allows(&HeaderValue::from_str(origin).unwrap())
    }

    #[test]
    fn exact_origins_compare_case_insensitively() {
        let p = policy(Cors::origins([
            "https://App.example.com",
            "http://localhost:3000",
        ]));
        assert!(allows(&p, "https://app.example.com"));
        assert!(allows(&p, "HTTPS://APP.EXAMPLE.COM"));
        assert!(allows(&p, "http://localhost:3000"));
        assert!(!allows(&p, "http://localhost:3001"));
        assert!(!allows(&p, "http://localhost"));
        assert!(!allows(&p, "http://app.example.com"));
        assert!(!allows(&p, "https://app.example.com.evil.com"));
        assert!(!allows(&p, "https://app.example.com/"));
        assert!(!allows(&p, "null"));
        assert!(!allows(&p, ""));
    }

    #[test]
    fn subdomain_patterns() {
        let p = policy(Cors::origins(["https://*.example.com"]));
        assert!(allows(&p, "https://a.example.com"));
        assert!(allows(&p, "https://a.b.example.com"));
        assert!(allows(&p, "https://A-1.Example.COM"));
        assert!(!allows(&p, "https://example.com"));
        assert!(!allows(&p, "https://.example.com"));
        assert!(!allows(&p, "https://a..example.com"));
        assert!(!allows(&p, "http://a.example.com"));
        assert!(!allows(&p, "https://a.example.com:8443"));
        assert!(!allows(&p, "https://aexample.com"));
        assert!(!allows(&p, "https://a.example.com.evil.com"));
        assert!(!allows(&p, "https://evil.com/.example.com"));
        assert!(!allows(&p, "https://evil.com:1@a.example.com"));
        assert!(!allows(&p, "https://a.example.co"));

        let p = policy(Cors::origins(["http://*.localhost:8080"]));
        assert!(allows(&p, "http://web.localhost:8080"));
        assert!(!allows(&p, "http://web.localhost"));
        assert!(!allows(&p, "http://web.localhost:8081"));
    }

    #[test]
    fn any_origin_allows_everything() {
        let p = policy(Cors::any_origin());
        assert!(allows(&p, "https://a.example.com"));
        assert!(allows(&p, "null"));
    }

    #[test]
    fn malformed_configurations_are_refused() {
        for bad in [
            "*",
            "null",
            "example.com",
            "https://example.com/",
            "https://example.com/app",
            "https://",
            "https://example.com:",
            "https://example.com:x",
            "https://a.*.example.com",
            "https://*example.com",
            "https://*",
            "1http://example.com",
            "https://exa mple.com",
        ] {
            let errors = Cors::origins([bad]).compile().expect_err(bad);
            assert_eq!(errors.len(), 1, "{bad}: {errors:?}");
            assert!(errors[0].contains(&format!("{bad:?}")), "{bad}: {errors:?}");
        }
        for good in [
            "https://example.com",
            "https://example.com:8443",
            "http://127.0.0.1:3000",
            "http://[::1]:3000",
            "app://local",
        ] {
            Cors::origins([good]).compile().expect(good);
        }
        let errors = Cors::any_origin()
            .allow_credentials(true)
            .expose_headers(["bad header"])
            .compile()
            .unwrap_err();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].contains("allow_credentials with any_origin"));
        assert!(errors[1].contains("\"bad header\""));
        assert!(Cors::origins(Vec::<String>::new()).compile().is_err());
        Cors::origins(["https://a.example.com"])
            .allow_credentials(true)
            .compile()
            .expect("credentials with listed origins");
    }

    #[cfg(feature = "gateway")]
    #[test]
    fn actual_responses_expose_grpc_metadata_and_keep_vary() {
        let p = policy(Cors::origins(["https://a.example.com"]).expose_headers(["X-Total"]));
        let origin = HeaderValue::from_static("https://a.example.com");
        let mut headers = HeaderMap::new();
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        headers.insert("grpc-metadata-x-id", HeaderValue::from_static("1"));
        headers.insert("grpc-trailer-x-n", HeaderValue::from_static("2"));
        headers.insert("x-other", HeaderValue::from_static("3"));
        p.actual(Some(&origin), &mut headers);
        assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], origin);
        let vary: Vec<_> = headers.get_all(header::VARY).iter().collect();
        assert_eq!(vary, ["accept-encoding", "origin"]);
        let mut exposed: Vec<_> = headers[header::ACCESS_CONTROL_EXPOSE_HEADERS]
            .to_str()
            .unwrap()
            .split(", ")
            .collect();
        exposed.sort_unstable();
        assert_eq!(
            exposed,
            ["grpc-metadata-x-id", "grpc-trailer-x-n", "x-total"]
        );
        // Applied twice (or to a response that says so already), `Vary` stays one entry.
        p.actual(Some(&origin), &mut headers);
        assert_eq!(headers.get_all(header::VARY).iter().count(), 2);

        // A disallowed origin: only `Vary`.
        let mut headers = HeaderMap::new();
        let other = HeaderValue::from_static("https://b.example.com");
        p.actual(Some(&other), &mut headers);
        assert_eq!(headers.len(), 1, "{headers:?}");
        assert_eq!(headers[header::VARY], "origin");

        // Nothing to expose: no header.
        let p = policy(Cors::any_origin());
        let mut headers = HeaderMap::new();
        p.actual(Some(&other), &mut headers);
        assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        assert!(!headers.contains_key(header::ACCESS_CONTROL_EXPOSE_HEADERS));
        assert!(!headers.contains_key(header::VARY));
    }
}
