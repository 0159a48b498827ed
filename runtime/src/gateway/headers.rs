//! HTTP headers ↔ gRPC metadata.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};

/// Maps a header name (lower case) to the name to forward it under, or `None` to drop it.
pub type HeaderMatcher = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Which headers cross the gateway, each way.
#[derive(Clone)]
pub(crate) struct Matchers {
    pub(crate) incoming: HeaderMatcher,
    pub(crate) outgoing_header: HeaderMatcher,
    pub(crate) outgoing_trailer: HeaderMatcher,
}

impl fmt::Debug for Matchers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Matchers").finish_non_exhaustive()
    }
}

impl Default for Matchers {
    fn default() -> Self {
        Matchers {
            incoming: Arc::new(default_incoming),
            outgoing_header: Arc::new(|name| Some(format!("grpc-metadata-{name}"))),
            outgoing_trailer: Arc::new(|name| Some(format!("grpc-trailer-{name}"))),
        }
    }
}

/// The default incoming matcher: `Authorization` as `authorization`, `Grpc-Metadata-<K>` as
/// `<k>`; every other header is dropped (`X-Forwarded-*` and `Grpc-Timeout` are handled
/// separately).
pub fn default_incoming(name: &str) -> Option<String> {
    if name == "authorization" {
        return Some(name.to_owned());
    }
    name.strip_prefix("grpc-metadata-")
        .filter(|k| !k.is_empty())
        .map(str::to_owned)
}

/// Metadata names the gateway never forwards either way: they belong to the transport.
fn reserved(name: &str) -> bool {
    name.starts_with("grpc-")
        || name.starts_with(':')
        || matches!(
            name,
            "content-type"
                | "content-length"
                | "content-encoding"
                | "te"
                | "host"
                | "connection"
                | "keep-alive"
                | "proxy-connection"
                | "transfer-encoding"
                | "upgrade"
                | "trailer"
                | "date"
                | "user-agent"
        )
}

/// gRPC metadata for an HTTP request: matched headers, `x-forwarded-for` (the sender's
/// list plus the peer) and `x-forwarded-host` (the sender's, else `Host`).
pub(crate) fn incoming(
    matchers: &Matchers,
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
) -> HeaderMap {
    let mut metadata = HeaderMap::with_capacity(4);
    for (name, value) in headers {
        let Some(key) = (matchers.incoming)(name.as_str()) else {
            continue;
        };
        let key = key.to_ascii_lowercase();
        if reserved(&key) || key.starts_with("x-forwarded-") {
            continue;
        }
        let Ok(key) = HeaderName::from_bytes(key.as_bytes()) else {
            continue;
        };
        // Text metadata must be printable ASCII; `-bin` values are base64 text already.
        if !value.as_bytes().iter().all(|b| (0x20..0x7f).contains(b)) {
            continue;
        }
        metadata.append(key, value.clone());
    }
    let mut forwarded_for: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let peer = peer.map(|p| p.ip().to_string());
    if let Some(peer) = &peer {
        forwarded_for.push(peer);
    }
    if !forwarded_for.is_empty()
        && let Ok(value) = HeaderValue::from_str(&forwarded_for.join(", "))
    {
        metadata.insert("x-forwarded-for", value);
    }
    if let Some(host) = headers
        .get("x-forwarded-host")
        .or_else(|| headers.get(http::header::HOST))
    {
        metadata.insert("x-forwarded-host", host.clone());
    }
    metadata
}

/// Response headers for gRPC header metadata or trailers, renamed by `matcher`.
pub(crate) fn outgoing(matcher: &HeaderMatcher, metadata: &HeaderMap, into: &mut HeaderMap) {
    for (name, value) in metadata {
        if reserved(name.as_str()) {
            continue;
        }
        if let Some(name) = matcher(name.as_str())
            && let Ok(name) = HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes())
        {
            into.append(name, value.clone());
        }
    }
}

/// `Grpc-Timeout` from the HTTP request: `Ok(None)` when absent, `Err` when malformed.
pub(crate) fn timeout(headers: &HeaderMap) -> Result<Option<Duration>, ()> {
    match headers.get("grpc-timeout") {
        None => Ok(None),
        Some(_) => crate::deadline::parse_grpc_timeout(headers)
            .map(Some)
            .ok_or(()),
    }
}

/// A `grpc-timeout` value for `duration` (at most 8 digits, in the finest unit that fits).
pub(crate) fn encode_timeout(duration: Duration) -> HeaderValue {
    let nanos = duration.as_nanos();
    let (amount, unit) = [
        (nanos, "n"),
        (nanos / 1_000, "u"),
        (nanos / 1_000_000, "m"),
        (nanos / 1_000_000_000, "S"),
        (nanos / 60_000_000_000, "M"),
        (nanos / 3_600_000_000_000, "H"),
    ]
    .into_iter()
    .find(|(amount, _)| *amount < 100_000_000)
    .unwrap_or((99_999_999, "H"));
    HeaderValue::from_str(&format!("{amount}{unit}")).expect("digits and a unit")
}
