//! Calling the gRPC service: one tower service, in-process or remote, spoken to in gRPC over
//! HTTP/2 framing (5-byte message prefix, status in trailers).

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::Arc;

use bytes::{Buf as _, BufMut as _, Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, StatusCode};
use http_body_util::BodyExt as _;
use tonic::Code;
use tonic::body::Body;

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;
type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// The gRPC service the gateway calls, type-erased; cloned per call.
pub(crate) type Backend = Arc<
    dyn Fn(http::Request<Body>) -> BoxFuture<Result<http::Response<Body>, BoxError>> + Send + Sync,
>;

/// Erases a tower service speaking gRPC (tonic `Routes`, a `Channel`, rzero's transport).
pub(crate) fn backend<S>(service: S) -> Backend
where
    S: tower_service::Service<http::Request<Body>, Response = http::Response<Body>>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    Arc::new(move |request| {
        let mut service = service.clone();
        Box::pin(async move {
            poll_fn(|cx| service.poll_ready(cx))
                .await
                .map_err(Into::into)?;
            service.call(request).await.map_err(Into::into)
        })
    })
}

/// A failed call or request, rendered as a `google.rpc.Status` JSON body (boxed: errors
/// travel through `Result`s on the hot path).
#[derive(Debug)]
pub(crate) struct Failure(Box<FailureData>);

#[derive(Debug)]
pub(crate) struct FailureData {
    /// The HTTP status when it is not the one `code` maps to (405, 413, 415).
    pub(crate) http: Option<StatusCode>,
    pub(crate) code: Code,
    pub(crate) message: String,
    /// An encoded `google.rpc.Status` (`grpc-status-details-bin`).
    pub(crate) details: Option<Bytes>,
    /// Headers for the HTTP response (`Allow`, forwarded metadata).
    pub(crate) headers: HeaderMap,
}

impl std::ops::Deref for Failure {
    type Target = FailureData;
    fn deref(&self) -> &FailureData {
        &self.0
    }
}

impl std::ops::DerefMut for Failure {
    fn deref_mut(&mut self) -> &mut FailureData {
        &mut self.0
    }
}

impl Failure {
    pub(crate) fn new(code: Code, message: impl Into<String>) -> Self {
        Failure(Box::new(FailureData {
            http: None,
            code,
            message: message.into(),
            details: None,
            headers: HeaderMap::new(),
        }))
    }

    pub(crate) fn http(mut self, status: StatusCode) -> Self {
        self.http = Some(status);
        self
    }

    /// The HTTP status: the override, or `code` mapped as `google/rpc/code.proto` says.
    pub(crate) fn status(&self) -> StatusCode {
        self.http.unwrap_or_else(|| http_status(self.code))
    }
}

impl From<super::BindError> for Failure {
    fn from(error: super::BindError) -> Self {
        Failure::new(Code::InvalidArgument, error.to_string())
    }
}

/// gRPC code → HTTP status, as the comments of `google/rpc/code.proto` map them.
pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::Cancelled => StatusCode::from_u16(499).expect("499 is a valid status"),
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
            StatusCode::BAD_REQUEST
        }
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// `message` encoded with its 5-byte prefix (uncompressed), in one buffer.
pub(crate) fn frame_message(message: &impl prost::Message) -> Bytes {
    let len = message.encoded_len();
    let mut framed = BytesMut::with_capacity(5 + len);
    framed.put_u8(0);
    framed.put_u32(u32::try_from(len).unwrap_or(u32::MAX));
    message.encode_raw(&mut framed);
    framed.freeze()
}

/// Framed messages as a request body.
pub(crate) fn body(framed: Bytes) -> Body {
    Body::new(http_body_util::Full::new(framed))
}

/// A gRPC request: `path` is `/package.Service/Method`, `body` the framed messages (sent as
/// the body yields them, so a request stream is streamed).
pub(crate) fn request(
    path: &http::uri::PathAndQuery,
    metadata: HeaderMap,
    body: Body,
) -> http::Request<Body> {
    let mut request = http::Request::new(body);
    *request.method_mut() = http::Method::POST;
    *request.uri_mut() = http::Uri::from(path.clone());
    *request.version_mut() = http::Version::HTTP_2;
    let headers = request.headers_mut();
    *headers = metadata;
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    headers.insert(http::header::TE, HeaderValue::from_static("trailers"));
    request
}

/// The reply side of a call: response headers, then messages one at a time, then the status.
#[derive(Debug)]
pub(crate) struct Reply {
    /// The response headers (header metadata).
    pub(crate) headers: HeaderMap,
    body: Body,
    buffer: BytesMut,
    /// A message that came whole, not framed in the body (an in-process reply).
    whole: Option<Bytes>,
    trailers: Option<HeaderMap>,
    ended: bool,
}

impl Reply {
    /// Sends `request` and waits for the response headers. A trailers-only response (an
    /// error before any message) comes back as the `Failure`.
    pub(crate) async fn start(
        backend: &Backend,
        request: http::Request<Body>,
    ) -> Result<Reply, (HeaderMap, Failure)> {
        let response = backend(request).await.map_err(|e| {
            (
                HeaderMap::new(),
                Failure::new(Code::Unavailable, format!("gRPC service unreachable: {e}")),
            )
        })?;
        let (parts, body) = response.into_parts();
        if parts.status != StatusCode::OK {
            let code = match parts.status.as_u16() {
                400 => Code::Internal,
                401 => Code::Unauthenticated,
                403 => Code::PermissionDenied,
                404 => Code::Unimplemented,
                429 | 502..=504 => Code::Unavailable,
                _ => Code::Unknown,
            };
            let failure = Failure::new(
                code,
                format!("gRPC service answered HTTP {}", parts.status.as_u16()),
            );
            return Err((parts.headers, failure));
        }
        if parts.headers.contains_key(GRPC_STATUS) {
            return match status_of(&parts.headers) {
                Ok(()) => Ok(Reply {
                    headers: HeaderMap::new(),
                    body: Body::empty(),
                    buffer: BytesMut::new(),
                    whole: None,
                    trailers: Some(parts.headers),
                    ended: true,
                }),
                Err(failure) => Err((parts.headers, failure)),
            };
        }
        let whole = parts
            .extensions
            .get::<crate::server::dispatch::InProcessReply>()
            .map(|reply| reply.0.clone());
        Ok(Reply {
            headers: parts.headers,
            body,
            buffer: BytesMut::new(),
            whole,
            trailers: None,
            ended: false,
        })
    }

    /// The next message, or `None` once the body ended (then see [`Reply::finish`]).
    pub(crate) async fn message(&mut self, limit: usize) -> Result<Option<Bytes>, Failure> {
        if let Some(message) = self.whole.take() {
            if message.len() > limit {
                return Err(too_long(message.len(), limit));
            }
            return Ok(Some(message));
        }
        loop {
            if self.buffer.len() >= 5 {
                let compressed = self.buffer[0];
                let len = u32::from_be_bytes([
                    self.buffer[1],
                    self.buffer[2],
                    self.buffer[3],
                    self.buffer[4],
                ]) as usize;
                if compressed != 0 {
                    return Err(Failure::new(
                        Code::Internal,
                        "gRPC service sent a compressed message the gateway did not ask for",
                    ));
                }
                if len > limit {
                    return Err(too_long(len, limit));
                }
                if self.buffer.len() >= 5 + len {
                    self.buffer.advance(5);
                    return Ok(Some(self.buffer.split_to(len).freeze()));
                }
            }
            if self.ended {
                if !self.buffer.is_empty() {
                    return Err(Failure::new(
                        Code::Internal,
                        "gRPC reply ended inside a message",
                    ));
                }
                return Ok(None);
            }
            match self.body.frame().await {
                None => self.ended = true,
                Some(Err(e)) => {
                    return Err(Failure::new(
                        Code::Unavailable,
                        format!("reading the gRPC reply: {e}"),
                    ));
                }
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => self.buffer.extend_from_slice(&data),
                    Err(frame) => {
                        if let Ok(trailers) = frame.into_trailers() {
                            self.trailers = Some(trailers);
                        }
                    }
                },
            }
        }
    }

    /// The call's status, from the trailers; call after [`Reply::message`] returned `None`.
    pub(crate) fn finish(&mut self) -> (HeaderMap, Result<(), Failure>) {
        let trailers = self.trailers.take().unwrap_or_default();
        let status = if trailers.contains_key(GRPC_STATUS) {
            status_of(&trailers)
        } else {
            Err(Failure::new(
                Code::Internal,
                "gRPC reply ended without a grpc-status",
            ))
        };
        (trailers, status)
    }
}

fn too_long(len: usize, limit: usize) -> Failure {
    Failure::new(
        Code::ResourceExhausted,
        format!("reply message of {len} bytes exceeds the limit of {limit}"),
    )
}

// Header names as constants: a lookup by `&str` parses the name each time.
const GRPC_STATUS: http::HeaderName = http::HeaderName::from_static("grpc-status");
const GRPC_MESSAGE: http::HeaderName = http::HeaderName::from_static("grpc-message");
const GRPC_STATUS_DETAILS: http::HeaderName =
    http::HeaderName::from_static("grpc-status-details-bin");

/// `grpc-status`, `grpc-message` and `grpc-status-details-bin` as a result.
fn status_of(headers: &HeaderMap) -> Result<(), Failure> {
    let code = headers
        .get(GRPC_STATUS)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .map_or(Code::Unknown, Code::from_i32);
    if code == Code::Ok {
        return Ok(());
    }
    let message = headers
        .get(GRPC_MESSAGE)
        .map(|v| percent_decode(v.as_bytes()))
        .unwrap_or_default();
    let details = headers.get(GRPC_STATUS_DETAILS).and_then(|v| {
        use base64::Engine as _;
        let text = v.as_bytes();
        base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(
                text.strip_suffix(b"==")
                    .or(text.strip_suffix(b"="))
                    .unwrap_or(text),
            )
            .ok()
    });
    let mut failure = Failure::new(code, message);
    failure.details = details.map(Bytes::from);
    Err(failure)
}

/// `grpc-message` is percent-encoded UTF-8.
pub(crate) fn percent_decode(bytes: &[u8]) -> String {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(h << 4 | l);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}
