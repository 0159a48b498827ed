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

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Appends `ip` as text (IPv4 by hand: `Display` goes through the formatting machinery, a
/// noticeable share of a small call).
fn write_ip(out: &mut Vec<u8>, ip: std::net::IpAddr) {
    match ip {
        std::net::IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                if octet >= 100 {
                    out.push(b'0' + octet / 100);
                }
                if octet >= 10 {
                    out.push(b'0' + octet / 10 % 10);
                }
                out.push(b'0' + octet % 10);
            }
        }
        std::net::IpAddr::V6(v6) => out.extend_from_slice(v6.to_string().as_bytes()),
    }
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
    if let Some(value) = forwarded_for(headers, peer) {
        metadata.insert(X_FORWARDED_FOR, value);
    }
    if let Some(host) = forwarded_host(headers) {
        metadata.insert(X_FORWARDED_HOST, host.clone());
    }
    metadata
}

/// Readies a proxied request's own headers (gRPC-Web's metadata) for the next hop:
/// `x-forwarded-for` gains the peer and `x-forwarded-host` names the host asked for, as
/// [`incoming`] writes them for REST calls.
#[cfg(feature = "grpc-web")]
pub(crate) fn forwarded(headers: &mut HeaderMap, peer: Option<SocketAddr>) {
    if let Some(value) = forwarded_for(headers, peer) {
        headers.insert(X_FORWARDED_FOR, value);
    }
    if let Some(host) = forwarded_host(headers).cloned() {
        headers.insert(X_FORWARDED_HOST, host);
    }
}

/// The sender's `x-forwarded-for` list plus the peer, built in one buffer: this runs on
/// every call.
fn forwarded_for(headers: &HeaderMap, peer: Option<SocketAddr>) -> Option<HeaderValue> {
    let mut forwarded_for = Vec::new();
    for value in headers.get_all(&X_FORWARDED_FOR) {
        if value.to_str().is_ok() {
            if !forwarded_for.is_empty() {
                forwarded_for.extend_from_slice(b", ");
            }
            forwarded_for.extend_from_slice(value.as_bytes());
        }
    }
    if let Some(peer) = peer {
        if !forwarded_for.is_empty() {
            forwarded_for.extend_from_slice(b", ");
        }
        write_ip(&mut forwarded_for, peer.ip());
    }
    if forwarded_for.is_empty() {
        return None;
    }
    HeaderValue::from_maybe_shared(bytes::Bytes::from(forwarded_for)).ok()
}

/// The sender's `x-forwarded-host`, else its `Host`.
fn forwarded_host(headers: &HeaderMap) -> Option<&HeaderValue> {
    headers
        .get(&X_FORWARDED_HOST)
        .or_else(|| headers.get(http::header::HOST))
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
    match headers.get(crate::deadline::GRPC_TIMEOUT) {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .ok()
            .and_then(crate::deadline::parse_timeout)
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
