//! Custom trailing metadata on successful responses.
//!
//! tonic sends `grpc-status` trailers but gives a handler no way to add its own on success
//! (its `Response` metadata becomes headers). A handler that wants trailers puts a
//! [`Trailers`] handle in the response extensions; the dispatcher merges whatever the handle
//! holds into the final trailers frame. The handle is shared, so a streaming handler can keep
//! a clone and fill it while the stream runs.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame};
use tonic::Status;
use tonic::metadata::MetadataMap;

/// Trailing metadata a handler sends after its last message.
///
/// ```
/// # use rzero::{Response, Trailers};
/// let trailers = Trailers::new();
/// trailers.insert("x-cost", "42".parse().unwrap());
/// let mut response = Response::new(());
/// response.extensions_mut().insert(trailers);
/// ```
#[derive(Debug, Clone, Default)]
pub struct Trailers(Arc<Mutex<MetadataMap>>);

impl Trailers {
    /// An empty set of trailers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) an ASCII trailer.
    pub fn insert(&self, key: &'static str, value: tonic::metadata::AsciiMetadataValue) {
        self.lock().insert(key, value);
    }

    /// Adds (or replaces) a binary trailer; `key` must end in `-bin`.
    pub fn insert_bin(&self, key: &'static str, value: tonic::metadata::BinaryMetadataValue) {
        self.lock().insert_bin(key, value);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MetadataMap> {
        // A poisoned lock only means another holder panicked mid-insert; the map is still usable.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn take(&self) -> http::HeaderMap {
        std::mem::take(&mut *self.lock()).into_headers()
    }
}

pub(crate) fn attach_trailers(
    response: http::Response<tonic::body::Body>,
) -> http::Response<tonic::body::Body> {
    let Some(trailers) = response.extensions().get::<Trailers>().cloned() else {
        return response;
    };
    response.map(|body| tonic::body::Body::new(WithTrailers { body, trailers }))
}

struct WithTrailers {
    body: tonic::body::Body,
    trailers: Trailers,
}

impl Body for WithTrailers {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let frame = std::task::ready!(Pin::new(&mut self.body).poll_frame(cx));
        Poll::Ready(frame.map(|frame| {
            frame.map(|frame| match frame.into_trailers() {
                Ok(mut trailers) => {
                    for (key, value) in self.trailers.take().iter() {
                        // grpc-status and friends stay the codec's: never let a handler forge them.
                        if !key.as_str().starts_with("grpc-") {
                            trailers.insert(key.clone(), value.clone());
                        }
                    }
                    Frame::trailers(trailers)
                }
                Err(frame) => frame,
            })
        }))
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}
