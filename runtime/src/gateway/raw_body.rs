//! `google.api.HttpBody`: bodies that are not JSON (files, images, HTML pages, uploads).
//!
//! When the request's body target (`body: "*"` on a request of type `HttpBody`, or
//! `body: "field"` naming an `HttpBody` field) or the reply (the output message, or its
//! `response_body` field) is an `HttpBody`, the gateway moves bytes instead of JSON:
//!
//! - **Request**: the raw HTTP body becomes `data` and the request's `Content-Type` becomes
//!   `content_type`, whatever it is (no 415); the body limit still applies (413). Path
//!   variables and the query bind the rest of the message as usual (with a field body).
//! - **Request stream** (`stream google.api.HttpBody`): each chunk of the HTTP body is one
//!   message, sent as it arrives, each carrying the request's `Content-Type`; a chunk over
//!   the body limit is split. An upload of any length streams through in bounded memory.
//! - **Reply**: `data` is the response body and `content_type` its `Content-Type`
//!   (`application/octet-stream` when empty), as grpc-gateway writes it; `extensions` are
//!   not sent. A `content_type` that is not a valid header value is a 500.
//! - **Reply stream**: the `data` of every message, back to back, with the first message's
//!   `Content-Type`; the response head waits for that first message, so a call failing
//!   before it still gets its HTTP status and a Status body. A failure after the first
//!   chunk **aborts the response** (HTTP/1.1: the connection closes before the last chunk;
//!   HTTP/2: the stream is reset), so the client sees an incomplete transfer. grpc-gateway
//!   appends a JSON error object to the bytes instead, which makes a truncated download look
//!   complete with garbage at its end.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{BufMut as _, Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, header};
use prost::Message as _;
use prost_reflect::{DynamicMessage, FieldDescriptor, MessageDescriptor};
use tonic::body::Body;
use tonic::{Code, Status};

use super::grpc::Failure;
use crate::google::api::HttpBody;

const HTTP_BODY: &str = "google.api.HttpBody";

/// Whether `message` is `google.api.HttpBody`.
pub(crate) fn is_http_body(message: &MessageDescriptor) -> bool {
    message.full_name() == HTTP_BODY
}

/// Whether the field is a singular `google.api.HttpBody`.
pub(crate) fn is_http_body_field(field: &FieldDescriptor) -> bool {
    !field.is_list() && !field.is_map() && field.kind().as_message().is_some_and(is_http_body)
}

/// The request's `Content-Type`, as `HttpBody.content_type` holds it (empty when absent).
fn request_content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// A request message of type `input` whose body target (`path`, empty for the whole
/// message) is an `HttpBody` holding `data` and the request's content type.
pub(crate) fn request(
    input: &MessageDescriptor,
    path: &[FieldDescriptor],
    headers: &HeaderMap,
    data: Bytes,
) -> DynamicMessage {
    let mut message = DynamicMessage::new(input.clone());
    let body = match path.split_last() {
        // `input` is HttpBody itself (checked when the route was built).
        None => &mut message,
        Some((last, parents)) => {
            let mut parent = &mut message;
            for field in parents.iter().chain([last]) {
                parent = parent
                    .get_field_mut(field)
                    .as_message_mut()
                    .expect("body paths run through singular messages (checked at build time)");
            }
            parent
        }
    };
    // Set field by field (not through the `HttpBody` type), so `data` is not copied.
    let content_type = request_content_type(headers);
    if !content_type.is_empty() {
        body.set_field_by_number(1, prost_reflect::Value::String(content_type));
    }
    if !data.is_empty() {
        body.set_field_by_number(2, prost_reflect::Value::Bytes(data));
    }
    message
}

/// The reply's `HttpBody` (the whole encoded reply, or its `response_body` field).
pub(crate) fn reply(
    output: &MessageDescriptor,
    response_body: Option<&FieldDescriptor>,
    encoded: Bytes,
) -> Result<HttpBody, Failure> {
    let undecodable = |e: prost::DecodeError| {
        Failure::new(Code::Internal, format!("undecodable gRPC reply: {e}"))
    };
    let Some(field) = response_body else {
        return HttpBody::decode(encoded).map_err(undecodable);
    };
    let mut reply = DynamicMessage::decode(output.clone(), encoded).map_err(undecodable)?;
    match reply.take_field(field) {
        Some(prost_reflect::Value::Message(body)) => body.transcode_to().map_err(undecodable),
        _ => Ok(HttpBody::default()),
    }
}

/// The `Content-Type` an `HttpBody` reply is sent with.
pub(crate) fn content_type(body: &HttpBody) -> Result<HeaderValue, Failure> {
    if body.content_type.is_empty() {
        return Ok(HeaderValue::from_static("application/octet-stream"));
    }
    HeaderValue::from_str(&body.content_type).map_err(|_| {
        Failure::new(
            Code::Internal,
            format!(
                "the reply's HttpBody content_type {:?} is not a valid header value",
                body.content_type
            ),
        )
    })
}

/// The gRPC request body of a `stream google.api.HttpBody` call: one message per chunk of
/// the HTTP body, pulled only when the gRPC side asks for the next one.
pub(crate) fn chunks(body: Body, headers: &HeaderMap, max_chunk: usize) -> Chunks {
    Chunks {
        body,
        content_type: request_content_type(headers),
        pending: Bytes::new(),
        max_chunk: max_chunk.max(1),
        done: false,
    }
}

/// HTTP body chunks in, gRPC frames of `HttpBody` messages out.
#[derive(Debug)]
pub(crate) struct Chunks {
    body: Body,
    content_type: String,
    /// What is left of a chunk larger than `max_chunk`.
    pending: Bytes,
    max_chunk: usize,
    done: bool,
}

impl Chunks {
    /// The next message from `pending`, at most `max_chunk` bytes of it, as a gRPC frame
    /// (encoded field by field, so the data is copied once, into the frame).
    fn frame(&mut self) -> Bytes {
        use prost::encoding::{bytes, string};
        let data = self
            .pending
            .split_to(self.pending.len().min(self.max_chunk));
        let typed = !self.content_type.is_empty();
        let len = if typed {
            string::encoded_len(1, &self.content_type)
        } else {
            0
        } + bytes::encoded_len(2, &data);
        let mut frame = BytesMut::with_capacity(5 + len);
        frame.put_u8(0);
        frame.put_u32(u32::try_from(len).unwrap_or(u32::MAX));
        if typed {
            string::encode(1, &self.content_type, &mut frame);
        }
        bytes::encode(2, &data, &mut frame);
        frame.freeze()
    }
}

impl http_body::Body for Chunks {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Status>>> {
        let this = &mut *self;
        loop {
            if !this.pending.is_empty() {
                return Poll::Ready(Some(Ok(http_body::Frame::data(this.frame()))));
            }
            if this.done {
                return Poll::Ready(None);
            }
            match ready!(Pin::new(&mut this.body).poll_frame(cx)) {
                Some(Ok(frame)) => {
                    // Trailers of the HTTP request carry nothing for the call.
                    if let Ok(data) = frame.into_data() {
                        this.pending = data;
                    }
                }
                Some(Err(e)) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(Status::new(
                        Code::InvalidArgument,
                        format!("reading the request body: {e}"),
                    ))));
                }
                None => this.done = true,
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done && self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt as _;

    fn frames_of(chunks: Chunks) -> Vec<HttpBody> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let bytes = runtime
            .block_on(chunks.collect())
            .expect("no error")
            .to_bytes();
        let mut rest = &bytes[..];
        let mut messages = Vec::new();
        while !rest.is_empty() {
            assert_eq!(rest[0], 0, "uncompressed frame");
            let len = u32::from_be_bytes(rest[1..5].try_into().unwrap()) as usize;
            messages.push(HttpBody::decode(&rest[5..5 + len]).unwrap());
            rest = &rest[5 + len..];
        }
        messages
    }

    #[test]
    fn each_chunk_is_a_message_and_large_ones_are_split() {
        let stream = tokio_stream::iter([
            Ok::<_, std::convert::Infallible>(http_body::Frame::data(Bytes::from_static(b"ab"))),
            Ok(http_body::Frame::data(Bytes::new())),
            Ok(http_body::Frame::data(Bytes::from_static(b"cdefg"))),
        ]);
        let body = Body::new(http_body_util::StreamBody::new(stream));
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv"));
        let messages = frames_of(chunks(body, &headers, 3));
        let data: Vec<&[u8]> = messages.iter().map(|m| &m.data[..]).collect();
        assert_eq!(data, [&b"ab"[..], b"cde", b"fg"]);
        assert!(messages.iter().all(|m| m.content_type == "text/csv"));
    }

    #[test]
    fn an_empty_content_type_is_sent_as_octet_stream() {
        let body = HttpBody::default();
        assert_eq!(content_type(&body).unwrap(), "application/octet-stream");
        let body = HttpBody {
            content_type: "text/html; charset=utf-8".into(),
            ..HttpBody::default()
        };
        assert_eq!(content_type(&body).unwrap(), "text/html; charset=utf-8");
        let body = HttpBody {
            content_type: "text/html\n".into(),
            ..HttpBody::default()
        };
        assert_eq!(content_type(&body).unwrap_err().code, Code::Internal);
    }
}
