//! Reading reply streams to their end.

use tokio_stream::{Stream, StreamExt};
use tonic::Status;

/// Every reply of a stream (a generated client's `Streaming<T>`, or the `BoxStream<T>` a
/// client trait returns), or the status it failed with.
pub async fn collect<T, S>(stream: S) -> Result<Vec<T>, Status>
where
    S: Stream<Item = Result<T, Status>>,
{
    let (replies, error) = collect_until_error(stream).await;
    match error {
        None => Ok(replies),
        Some(status) => Err(status),
    }
}

/// The replies that arrived before the stream ended, and the status it failed with, if it
/// failed: for checking what a stream sent before its error.
pub async fn collect_until_error<T, S>(stream: S) -> (Vec<T>, Option<Status>)
where
    S: Stream<Item = Result<T, Status>>,
{
    let mut stream = std::pin::pin!(stream);
    let mut replies = Vec::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(reply) => replies.push(reply),
            Err(status) => return (replies, Some(status)),
        }
    }
    (replies, None)
}
