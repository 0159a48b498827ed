//! One endpoint as the balancer holds it: its lazily connected channel, its p2c statistics,
//! and whether it is ejected.
//!
//! Connections go through [`Connector`], which tells the endpoint's [`Health`] when a
//! connection fails to open or a live one ends (the server went away). Such an endpoint is
//! ejected at once, so calls stop going to it, and a background probe opens plain TCP
//! connections with growing back-off until one succeeds; then it is picked again (and its
//! channel reconnects on that call).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{Notify, oneshot};
use tonic::transport::{Channel, Endpoint as TonicEndpoint};

use super::BalanceConfig;
use super::p2c::Stats;
use crate::ConnectError;
use crate::client::KeepAlive as _;
use crate::discovery::Endpoint;

/// First back-off after a failure; doubled per consecutive failure up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// How long a probe waits for a TCP connection.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub(crate) struct Backend {
    pub(crate) endpoint: Endpoint,
    pub(crate) channel: Channel,
    pub(crate) stats: Stats,
    pub(crate) health: Arc<Health>,
    /// Dropped with the backend, which ends its health watch.
    _watching: Option<oneshot::Sender<()>>,
}

impl Backend {
    pub(crate) fn new(
        endpoint: Endpoint,
        refresh: Option<Arc<Notify>>,
        config: &BalanceConfig,
    ) -> Result<Self, ConnectError> {
        let health = Arc::new(Health {
            addr: endpoint.addr.clone(),
            ejected_until: Mutex::new(None),
            failures: AtomicU32::new(0),
            probing: AtomicBool::new(false),
            not_serving: AtomicBool::new(false),
            refresh,
            opened_at: Mutex::new(None),
        });
        let invalid = |e: Box<dyn std::error::Error + Send + Sync>| {
            ConnectError::invalid_target(&endpoint.addr, e)
        };
        // The connector does TLS itself; the URI tonic sees stays `http` (tonic refuses
        // `https` without its own TLS), the requests say `https`.
        let tonic_endpoint = TonicEndpoint::from_shared(format!("http://{}", endpoint.addr))
            .map_err(|e| invalid(e.into()))?
            .http2_keep_alive_interval_opt(config.keepalive);
        #[cfg(feature = "tls")]
        let tonic_endpoint = if config.tls.is_some() {
            let origin = http::Uri::try_from(format!("https://{}", endpoint.addr))
                .map_err(|e| invalid(e.into()))?;
            tonic_endpoint.origin(origin)
        } else {
            tonic_endpoint
        };
        let channel = tonic_endpoint.connect_with_connector_lazy(Connector {
            health: Arc::clone(&health),
            #[cfg(feature = "tls")]
            tls: config.tls.clone(),
        });
        let watching = config.health_check.then(|| {
            let (stop, stopped) = oneshot::channel();
            tokio::spawn(watch_health(
                Arc::downgrade(&health),
                channel.clone(),
                stopped,
            ));
            stop
        });
        Ok(Self {
            endpoint,
            channel,
            stats: Stats::default(),
            health,
            _watching: watching,
        })
    }
}

/// Client-side health checking: follows the endpoint's `grpc.health.v1` status for the
/// whole server (`""`) and keeps it out of picks while it is not `SERVING` (a server that is
/// shutting down says so before it stops listening). A server without the health service
/// (`UNIMPLEMENTED`) is left to the connection checks.
async fn watch_health(health: Weak<Health>, channel: Channel, mut stop: oneshot::Receiver<()>) {
    use crate::health::pb::HealthCheckRequest;
    use crate::health::pb::health_check_response::ServingStatus;
    use crate::health::pb::health_client::HealthClient;
    use tokio_stream::StreamExt;

    let client = HealthClient::new(crate::Client::from_channel(channel));
    let set = |serving: bool| {
        if let Some(health) = health.upgrade() {
            health.not_serving.store(!serving, Ordering::Relaxed);
        }
    };
    loop {
        let request = HealthCheckRequest {
            service: String::new(),
        };
        let watch = tokio::select! {
            _ = &mut stop => return,
            watch = client.watch(request) => watch,
        };
        match watch {
            Ok(response) => {
                let mut statuses = response.into_inner();
                loop {
                    let next = tokio::select! {
                        _ = &mut stop => return,
                        next = statuses.next() => next,
                    };
                    match next {
                        Some(Ok(status)) => set(status.status() == ServingStatus::Serving),
                        // The stream ended or broke: the server is going or gone.
                        Some(Err(_)) | None => {
                            set(false);
                            break;
                        }
                    }
                }
            }
            Err(status) if status.code() == tonic::Code::Unimplemented => {
                set(true);
                return;
            }
            Err(_) => {}
        }
        // Look again once the connection checks had time to notice a dead server.
        tokio::select! {
            _ = &mut stop => return,
            () = tokio::time::sleep(HEALTH_RETRY) => {}
        }
    }
}

/// Pause between health watches when one ends or cannot start.
const HEALTH_RETRY: Duration = Duration::from_millis(250);

/// Whether an endpoint may be picked.
#[derive(Debug)]
pub(crate) struct Health {
    addr: String,
    ejected_until: Mutex<Option<Instant>>,
    failures: AtomicU32,
    probing: AtomicBool,
    /// The endpoint's health service says it is not `SERVING` (client-side health checking).
    not_serving: AtomicBool,
    /// Told about failures, so a resolver that can look again (DNS) does.
    refresh: Option<Arc<Notify>>,
    /// When the channel last opened a connection.
    opened_at: Mutex<Option<Instant>>,
}

impl Health {
    /// Ejected after a connection failure, or reported not serving.
    pub(crate) fn ejected(&self) -> bool {
        self.not_serving.load(Ordering::Relaxed)
            || self
                .ejected_until
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .is_some()
    }

    /// A connection opened: the endpoint is fine.
    fn connected(&self) {
        self.failures.store(0, Ordering::Relaxed);
        *self
            .ejected_until
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = None;
    }

    /// Where the latency of a call sent at `sent` starts for the balancer: when its
    /// connection opened, if that came later. Connections open lazily, with the first call,
    /// and grpc-go (whose numbers go-zero's constants are tuned on) only picks endpoints that
    /// are connected already; counting the handshake would make an endpoint's first latency,
    /// which p2c takes whole, several times its real one for the next seconds.
    pub(crate) fn latency_start(&self, sent: Instant) -> Instant {
        let opened = *self
            .opened_at
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        opened.map_or(sent, |opened| opened.max(sent))
    }

    /// A connection could not be opened, or a live one ended: eject, and probe until the
    /// endpoint answers again.
    pub(crate) fn failed(self: &Arc<Self>) {
        self.back_off();
        if !self.probing.swap(true, Ordering::AcqRel) {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(probe(Arc::downgrade(self)));
            } else {
                self.probing.store(false, Ordering::Release);
            }
        }
    }

    /// Ejects for a back-off that doubles with each consecutive failure.
    fn back_off(&self) {
        let failures = self.failures.fetch_add(1, Ordering::Relaxed);
        let backoff = FIRST_BACKOFF
            .saturating_mul(1 << failures.min(16))
            .min(MAX_BACKOFF);
        *self
            .ejected_until
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(Instant::now() + backoff);
        if let Some(refresh) = &self.refresh {
            refresh.notify_one();
        }
    }

    /// How long until the current back-off ends.
    fn remaining_backoff(&self) -> Duration {
        let until = *self
            .ejected_until
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        until.map_or(Duration::ZERO, |until| {
            until.saturating_duration_since(Instant::now())
        })
    }
}

/// Waits out each back-off, then tries a TCP connection, until one opens or the endpoint is
/// gone from the balancer (its `Health` dropped).
async fn probe(health: Weak<Health>) {
    loop {
        let Some((addr, wait)) = health
            .upgrade()
            .map(|health| (health.addr.clone(), health.remaining_backoff()))
        else {
            return;
        };
        tokio::time::sleep(wait).await;
        let answered = matches!(
            tokio::time::timeout(PROBE_TIMEOUT, TcpStream::connect(addr.as_str())).await,
            Ok(Ok(_))
        );
        let Some(health) = health.upgrade() else {
            return;
        };
        if answered {
            health.connected();
            health.probing.store(false, Ordering::Release);
            return;
        }
        health.back_off();
    }
}

/// Opens TCP connections (and TLS sessions over them, when set) for an endpoint's channel
/// and reports their fate to its [`Health`].
#[derive(Debug, Clone)]
struct Connector {
    health: Arc<Health>,
    #[cfg(feature = "tls")]
    tls: Option<crate::tls::TlsConnector>,
}

/// What the connector hands the channel.
#[cfg(feature = "tls")]
type Connection = crate::tls::MaybeTls<Observed>;
#[cfg(not(feature = "tls"))]
type Connection = Observed;

/// A connection to an endpoint could not be opened: whatever was to be sent on it never left.
#[derive(Debug)]
pub(crate) struct ConnectFailed {
    addr: String,
    source: io::Error,
}

impl std::fmt::Display for ConnectFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot connect to {}: {}", self.addr, self.source)
    }
}

impl std::error::Error for ConnectFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

impl tower_service::Service<http::Uri> for Connector {
    type Response = TokioIo<Connection>;
    type Error = ConnectFailed;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, ConnectFailed>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), ConnectFailed>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Uri) -> Self::Future {
        let health = Arc::clone(&self.health);
        #[cfg(feature = "tls")]
        let tls = self.tls.clone();
        Box::pin(async move {
            match TcpStream::connect(health.addr.as_str()).await {
                Ok(stream) => {
                    stream.set_nodelay(true).map_err(|source| ConnectFailed {
                        addr: health.addr.clone(),
                        source,
                    })?;
                    let observed = Observed {
                        stream,
                        health: Arc::clone(&health),
                        ended: false,
                    };
                    #[cfg(feature = "tls")]
                    let observed = match tls {
                        None => crate::tls::MaybeTls::Plain(observed),
                        Some(tls) => match tls.handshake(&health.addr, observed).await {
                            Ok(session) => crate::tls::MaybeTls::Tls(Box::new(session)),
                            // A server we cannot talk to: as good as down.
                            Err(error) => {
                                health.failed();
                                return Err(ConnectFailed {
                                    addr: health.addr.clone(),
                                    source: io::Error::other(error),
                                });
                            }
                        },
                    };
                    *health
                        .opened_at
                        .lock()
                        .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(Instant::now());
                    health.connected();
                    Ok(TokioIo::new(observed))
                }
                Err(source) => {
                    health.failed();
                    Err(ConnectFailed {
                        addr: health.addr.clone(),
                        source,
                    })
                }
            }
        })
    }
}

/// A connection that tells its endpoint's health when the peer ends it.
#[derive(Debug)]
pub(crate) struct Observed {
    stream: TcpStream,
    health: Arc<Health>,
    ended: bool,
}

impl Observed {
    fn ended(&mut self) {
        if !self.ended {
            self.ended = true;
            self.health.failed();
        }
    }
}

impl AsyncRead for Observed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.stream).poll_read(cx, buf);
        match &result {
            // End of stream: the server closed the connection.
            Poll::Ready(Ok(())) if buf.filled().len() == before && buf.remaining() > 0 => {
                self.ended();
            }
            Poll::Ready(Err(_)) => self.ended(),
            _ => {}
        }
        result
    }
}

impl AsyncWrite for Observed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.stream).poll_write(cx, buf);
        if matches!(result, Poll::Ready(Err(_))) {
            self.ended();
        }
        result
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // We close it ourselves: not a failure of the endpoint.
        self.ended = true;
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::Endpoint;

    #[tokio::test]
    async fn a_calls_latency_starts_when_its_connection_opened() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let backend = Backend::new(Endpoint::new(addr), None, &BalanceConfig::default()).unwrap();
        let sent = Instant::now();
        assert_eq!(
            backend.health.latency_start(sent),
            sent,
            "no connection yet"
        );
        // The connection opens a while after the call was sent, as a lazy one does.
        tokio::time::sleep(Duration::from_millis(30)).await;
        let mut connector = Connector {
            health: Arc::clone(&backend.health),
            #[cfg(feature = "tls")]
            tls: None,
        };
        let _connection = tower_service::Service::call(&mut connector, http::Uri::from_static("/"))
            .await
            .unwrap();
        let start = backend.health.latency_start(sent);
        assert!(
            start >= sent + Duration::from_millis(30),
            "{:?}",
            start - sent
        );
        // A call sent on the open connection counts from when it was sent.
        let later = Instant::now();
        assert_eq!(backend.health.latency_start(later), later);
    }
}
