//! The dev server: an HTTP port beside the gRPC one, for Prometheus and HTTP health probes.

use tokio::net::TcpListener;

use crate::health::HealthReporter;
use crate::health::pb::health_check_response::ServingStatus;
use crate::metrics::{HttpReply, Metrics};

/// What a server serves over plain HTTP on a port of its own while it runs: Prometheus
/// metrics and an HTTP health probe (go-zero's `DevServer`). Give it to
/// [`ServerBuilder::dev_server`](crate::ServerBuilder::dev_server) or
/// [`dev_server_on`](crate::ServerBuilder::dev_server_on).
///
/// ```
/// use rzero::metrics::Metrics;
/// use rzero::server::DevServer;
///
/// let dev = DevServer::new()
///     .metrics("/metrics", Metrics::global())
///     .health("/healthz", "OK");
/// let server = rzero::Server::builder()
///     .metrics(Metrics::global())
///     .dev_server("0.0.0.0:6060", dev);
/// ```
///
/// It answers `GET` only, over HTTP/1.1, one request per connection; every other path is
/// a 404. go-zero's `/debug/pprof/` and its `/` route listing are not served.
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct DevServer {
    metrics: Option<(String, Metrics)>,
    health: Option<(String, String)>,
}

impl DevServer {
    /// Serves nothing yet: add [`metrics`](Self::metrics) and [`health`](Self::health).
    pub fn new() -> Self {
        Self::default()
    }

    /// Serves `metrics` ([`Metrics::render`]) at `GET path`, e.g. `/metrics`.
    ///
    /// # Panics
    /// If `path` does not start with `/`.
    pub fn metrics(mut self, path: impl Into<String>, metrics: &Metrics) -> Self {
        let path = path.into();
        assert!(
            path.starts_with('/'),
            "DevServer::metrics: the path must start with `/`, got `{path}`"
        );
        self.metrics = Some((path, metrics.clone()));
        self
    }

    /// Answers `GET path` (e.g. `/healthz`) with `200 OK` and `response` (e.g. `OK`) while
    /// the server as a whole is `SERVING` (its `grpc.health.v1` status for `""`, which
    /// [`HealthReporter`] can change), and with `503 Service Unavailable` before and once
    /// shutdown has begun (the server turns `NOT_SERVING` first thing at shutdown, before
    /// its drain delay).
    ///
    /// # Panics
    /// If `path` does not start with `/`.
    pub fn health(mut self, path: impl Into<String>, response: impl Into<String>) -> Self {
        let path = path.into();
        assert!(
            path.starts_with('/'),
            "DevServer::health: the path must start with `/`, got `{path}`"
        );
        self.health = Some((path, response.into()));
        self
    }

    /// Serves on `listener` until dropped, answering health from `health`'s `""` status.
    pub(crate) async fn serve(self, listener: TcpListener, health: HealthReporter) {
        let Self {
            metrics,
            health: probe,
        } = self;
        let result = crate::metrics::serve_http(listener, move |path| {
            if let Some((_, metrics)) = metrics.as_ref().filter(|(at, _)| at == path) {
                return HttpReply::metrics(metrics);
            }
            if let Some((_, response)) = probe.as_ref().filter(|(at, _)| at == path) {
                return if health.status("") == Some(ServingStatus::Serving) {
                    HttpReply::text("200 OK", response.as_str())
                } else {
                    HttpReply::text("503 Service Unavailable", "Service Unavailable\n")
                };
            }
            HttpReply::not_found()
        })
        .await;
        if let Err(error) = result {
            tracing::warn!(%error, "dev server stopped: cannot accept connections");
        }
    }
}
