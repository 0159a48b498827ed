//! The unread rest of an HTTP/1.1 request body, read and thrown away after an early
//! answer, so that the client keeps its connection.
//!
//! # Why
//! hyper closes an HTTP/1.1 connection whose request body is dropped before its end: it
//! drains only what it has already buffered (`poll_drain_or_close_read`). The gateway and
//! gRPC-Web answer before the end of a body on purpose, and often:
//! - a bad line of a newline-delimited JSON request stream gets its 400 at once;
//! - a service fails a client-streaming call on its first message;
//! - an upstream (grpcio, for one) answers a call as soon as it has the message it needs;
//! - a body over the gateway's limit gets 413 unread.
//!
//! hyper then closes the connection after the answer, and says nothing of it when the
//! answer was written first (no `Connection: close`). The client puts the connection back
//! in its pool; the next request on it, or one it pipelined, is lost, and a `POST` is not
//! retried by clients. nginx reads and discards such a body for the same reason
//! (`ngx_http_discard_request_body`).
//!
//! # What
//! The servers of the gateway and of gRPC-Web wrap HTTP/1.x request bodies in [`Drain`].
//! When one is dropped before its end, a task reads the rest and throws it away, up to
//! [`DRAIN_BYTES`], for at most [`DRAIN_TIME`] (nginx's `lingering_timeout`), and only until
//! the server starts shutting down (a client holding its body open must not hold up the
//! shutdown); then it gives up and hyper closes the connection, as it did before. Not
//! drained:
//! - a body that says it has more than [`DRAIN_BYTES`] left (its `Content-Length`): it
//!   would be given up anyway;
//! - a body never read, of a request with `Expect: 100-continue`: the client waits to be
//!   told to send it, and reading it would make hyper send `100 Continue` after the answer.
//!
//! HTTP/2 needs none of this: a stream is reset on its own, the connection stays.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body as _, Frame, SizeHint};
use http_body_util::BodyExt as _;
use tokio::sync::watch;
use tonic::body::Body;

/// The most of a body's unread rest that is read to keep its connection.
pub(crate) const DRAIN_BYTES: u64 = 4 * 1024 * 1024;
/// The longest the rest of a body is waited for.
pub(crate) const DRAIN_TIME: Duration = Duration::from_secs(5);

/// Whether the server has started shutting down, for the drains of its bodies.
#[derive(Debug, Clone)]
pub(crate) struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    /// `signal`, which also tells drains when it completes (as does dropping it), and
    /// the [`Shutdown`] it tells.
    pub(crate) fn on<F: Future<Output = ()>>(signal: F) -> (impl Future<Output = ()>, Shutdown) {
        let (tell, told) = watch::channel(false);
        let signal = async move {
            signal.await;
            let _ = tell.send(true);
        };
        (signal, Shutdown(told))
    }

    /// Completes once the server is shutting down.
    async fn started(mut self) {
        // An error means the signal is gone: the server is stopping or stopped.
        let _ = self.0.wait_for(|started| *started).await;
    }
}

/// A service whose HTTP/1.x request bodies are drained when dropped early (see the module
/// docs): the gateway's, on a port of its own.
#[cfg(feature = "gateway")]
#[derive(Debug, Clone)]
pub(crate) struct Draining<S> {
    pub(crate) inner: S,
    pub(crate) shutdown: Shutdown,
}

#[cfg(feature = "gateway")]
impl<S> tower_service::Service<http::Request<Body>> for Draining<S>
where
    S: tower_service::Service<http::Request<Body>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> S::Future {
        self.inner.call(drain_when_dropped(request, &self.shutdown))
    }
}

/// A request body whose unread rest is drained when it is dropped (see the module docs).
pub(crate) struct Drain {
    /// `None` once it has ended.
    body: Option<Body>,
    /// Whether it was ever read from, so `100 Continue` has been sent if it was asked for.
    read_from: bool,
    /// Whether the request asked for `100 Continue`.
    expects_continue: bool,
    shutdown: Shutdown,
}

/// `request` with its body wrapped in [`Drain`] when it is an HTTP/1.x request with a body;
/// otherwise as it is.
pub(crate) fn drain_when_dropped(
    request: http::Request<Body>,
    shutdown: &Shutdown,
) -> http::Request<Body> {
    if request.version() >= http::Version::HTTP_2 || request.body().is_end_stream() {
        return request;
    }
    let expects_continue = request
        .headers()
        .get(http::header::EXPECT)
        .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    request.map(|body| {
        Body::new(Drain {
            body: Some(body),
            read_from: false,
            expects_continue,
            shutdown: shutdown.clone(),
        })
    })
}

impl http_body::Body for Drain {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        let this = &mut *self;
        let Some(body) = &mut this.body else {
            return Poll::Ready(None);
        };
        this.read_from = true;
        let frame = Pin::new(body).poll_frame(cx);
        if let Poll::Ready(None) = frame {
            this.body = None;
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.body.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.body
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}

impl Drop for Drain {
    fn drop(&mut self) {
        let Some(mut body) = self.body.take() else {
            return;
        };
        if body.is_end_stream()
            || (self.expects_continue && !self.read_from)
            || body.size_hint().lower() > DRAIN_BYTES
        {
            return;
        }
        // Outside a runtime (a body dropped by a runtime shutting down) nothing is drained.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let shutdown = self.shutdown.clone();
        runtime.spawn(async move {
            let drained = async {
                let mut read = 0u64;
                while let Some(Ok(frame)) = body.frame().await {
                    if let Some(data) = frame.data_ref() {
                        read += data.len() as u64;
                        if read > DRAIN_BYTES {
                            return;
                        }
                    }
                }
            };
            tokio::select! {
                _ = tokio::time::timeout(DRAIN_TIME, drained) => {}
                () = shutdown.started() => {}
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http_body_util::StreamBody;

    use super::*;

    /// A body of `chunks` chunks of `size` bytes, counting the chunks read from it.
    fn counted(chunks: usize, size: usize, read: &Arc<AtomicUsize>) -> Body {
        let read = Arc::clone(read);
        let frames = (0..chunks).map(move |_| {
            read.fetch_add(1, Ordering::SeqCst);
            Ok::<_, tonic::Status>(Frame::data(Bytes::from(vec![b'x'; size])))
        });
        Body::new(StreamBody::new(tokio_stream::iter(frames)))
    }

    fn request(body: Body, expect_continue: bool) -> http::Request<Body> {
        let mut request = http::Request::builder().version(http::Version::HTTP_11);
        if expect_continue {
            request = request.header(http::header::EXPECT, "100-continue");
        }
        request.body(body).unwrap()
    }

    /// A shutdown that never starts.
    fn running() -> Shutdown {
        let (signal, shutdown) = Shutdown::on(std::future::pending());
        tokio::spawn(signal);
        shutdown
    }

    /// Drops the request's body after reading `first` frames, then lets the drain run.
    async fn drop_after(request: http::Request<Body>, first: usize) {
        let mut body = drain_when_dropped(request, &running()).into_body();
        for _ in 0..first {
            body.frame().await.expect("a frame").expect("data");
        }
        drop(body);
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn the_rest_of_a_dropped_body_is_read() {
        let read = Arc::new(AtomicUsize::new(0));
        drop_after(request(counted(10, 100, &read), false), 1).await;
        assert_eq!(read.load(Ordering::SeqCst), 10);
    }

    #[tokio::test]
    async fn draining_stops_after_its_budget() {
        let read = Arc::new(AtomicUsize::new(0));
        // 64 KiB chunks: the budget is spent after DRAIN_BYTES / 64 KiB + 1 of them.
        drop_after(request(counted(1000, 64 * 1024, &read), false), 1).await;
        let budget = (DRAIN_BYTES / (64 * 1024)) as usize;
        assert_eq!(read.load(Ordering::SeqCst), 1 + budget + 1);
    }

    #[tokio::test]
    async fn an_unread_body_that_waits_for_100_continue_is_left_alone() {
        let read = Arc::new(AtomicUsize::new(0));
        drop_after(request(counted(10, 100, &read), true), 0).await;
        assert_eq!(read.load(Ordering::SeqCst), 0);
        // Once read from, `100 Continue` went out: the rest is drained.
        drop_after(request(counted(10, 100, &read), true), 1).await;
        assert_eq!(read.load(Ordering::SeqCst), 10);
    }

    #[tokio::test]
    async fn a_shutdown_stops_draining() {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (signal, shutdown) = Shutdown::on(async {
            let _ = stopped.await;
        });
        let signal = tokio::spawn(signal);
        // A body whose rest never comes: drained until the shutdown.
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, tonic::Status>>(1);
        tx.send(Ok(Frame::data(Bytes::from_static(b"x"))))
            .await
            .unwrap();
        let body = Body::new(StreamBody::new(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        ));
        let mut body = drain_when_dropped(request(body, false), &shutdown).into_body();
        body.frame().await.expect("a frame").expect("data");
        drop(body);
        tokio::task::yield_now().await;
        assert!(!tx.is_closed(), "draining");
        stop.send(()).unwrap();
        signal.await.unwrap();
        tokio::time::timeout(Duration::from_secs(10), tx.closed())
            .await
            .expect("the drain stops at the shutdown, not after DRAIN_TIME");
    }

    #[tokio::test]
    async fn http2_requests_and_empty_bodies_are_not_wrapped() {
        let read = Arc::new(AtomicUsize::new(0));
        let mut h2 = request(counted(10, 100, &read), false);
        *h2.version_mut() = http::Version::HTTP_2;
        drop_after(h2, 1).await;
        assert_eq!(read.load(Ordering::SeqCst), 1);
        let empty = drain_when_dropped(request(Body::empty(), false), &running());
        assert!(empty.body().is_end_stream());
    }
}
