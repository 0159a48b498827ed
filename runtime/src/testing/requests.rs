//! Building requests: metadata in one call, and request streams from values or a channel.

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Request;
use tonic::metadata::{AsciiMetadataValue, BinaryMetadataValue, MetadataKey};

use crate::client::{RequestStream, streaming_request};

/// Metadata on a request in one expression, for tests: invalid keys or values panic with the
/// offending text instead of returning errors the test would unwrap anyway.
pub trait RequestExt: Sized {
    /// Adds an ASCII metadata entry (`key` must not end in `-bin`).
    ///
    /// # Panics
    /// If `key` is not a valid ASCII metadata key or `value` is not a valid header value.
    #[must_use]
    fn with_metadata(self, key: &str, value: &str) -> Self;

    /// Adds a binary metadata entry (`key` must end in `-bin`).
    ///
    /// # Panics
    /// If `key` is not a valid binary metadata key.
    #[must_use]
    fn with_binary_metadata(self, key: &str, value: &[u8]) -> Self;
}

impl<T> RequestExt for Request<T> {
    #[track_caller]
    fn with_metadata(mut self, key: &str, value: &str) -> Self {
        let key = MetadataKey::from_bytes(key.as_bytes())
            .unwrap_or_else(|_| panic!("{key:?} is not a valid ASCII metadata key"));
        let value = AsciiMetadataValue::try_from(value)
            .unwrap_or_else(|_| panic!("{value:?} is not a valid metadata value"));
        self.metadata_mut().append(key, value);
        self
    }

    #[track_caller]
    fn with_binary_metadata(mut self, key: &str, value: &[u8]) -> Self {
        let key = MetadataKey::from_bytes(key.as_bytes())
            .unwrap_or_else(|_| panic!("{key:?} is not a valid binary metadata key (`-bin`)"));
        self.metadata_mut()
            .append_bin(key, BinaryMetadataValue::from_bytes(value));
        self
    }
}

/// A client-streaming or bidi request that sends `messages`, then ends.
pub fn request_stream<I>(messages: I) -> Request<RequestStream<I::Item>>
where
    I: IntoIterator,
    I::IntoIter: Send + 'static,
{
    streaming_request(tokio_stream::iter(messages))
}

/// A client-streaming or bidi request fed from the returned sender, for conversations: send,
/// read a reply, send again. The request stream ends when the sender is dropped.
pub fn request_channel<T: Send + 'static>(
    capacity: usize,
) -> (mpsc::Sender<T>, Request<RequestStream<T>>) {
    let (sender, receiver) = mpsc::channel(capacity);
    (sender, streaming_request(ReceiverStream::new(receiver)))
}
