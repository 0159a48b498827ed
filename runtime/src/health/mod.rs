//! `grpc.health.v1`: every [`Server`](crate::Server) answers health checks for each of its
//! services and for the server as a whole (the empty name), so load balancers, Kubernetes
//! probes (`grpc` probes, `grpc_health_probe`) and rzero's own clients can ask.
//!
//! Services are `SERVING` once the server listens. On shutdown the server first marks
//! everything `NOT_SERVING` (after revoking its etcd registration, if any), then drains
//! in-flight calls, so health watchers and registries stop sending before the port closes.
//! [`HealthReporter`] changes a status by hand, e.g. while a dependency is down.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::watch;
use tokio_stream::Stream;
use tokio_stream::wrappers::WatchStream;

/// The generated `grpc.health.v1` messages, server and client.
#[allow(missing_docs, unreachable_pub, clippy::all, rustdoc::all)]
#[path = "../generated/health/mod.rs"]
mod generated;

pub use generated::grpc::health::v1 as pb;
use pb::health_check_response::ServingStatus;
use pb::{HealthCheckRequest, HealthCheckResponse};

/// Reads and sets the statuses a server reports. Cheap to clone; all clones share them.
#[derive(Debug, Clone)]
pub struct HealthReporter {
    statuses: Arc<watch::Sender<Statuses>>,
}

/// Every status, and whether the server is shutting down (which ends `Watch` streams: a
/// stream that never ends would hold a graceful shutdown open forever).
#[derive(Debug, Default, Clone)]
struct Statuses {
    by_service: BTreeMap<String, ServingStatus>,
    closing: bool,
}

impl Default for HealthReporter {
    fn default() -> Self {
        Self {
            statuses: Arc::new(watch::channel(Statuses::default()).0),
        }
    }
}

impl HealthReporter {
    /// Sets `service`'s status (`""` is the server as a whole).
    pub fn set(&self, service: &str, status: ServingStatus) {
        self.statuses.send_if_modified(|statuses| {
            statuses.by_service.insert(service.to_owned(), status) != Some(status)
        });
    }

    /// Marks `service` `SERVING`.
    pub fn set_serving(&self, service: &str) {
        self.set(service, ServingStatus::Serving);
    }

    /// Marks `service` `NOT_SERVING`.
    pub fn set_not_serving(&self, service: &str) {
        self.set(service, ServingStatus::NotServing);
    }

    /// Marks every known service, and the server, `NOT_SERVING` (shutdown does this).
    pub fn set_all_not_serving(&self) {
        self.statuses.send_if_modified(|statuses| {
            let mut changed = false;
            for status in statuses.by_service.values_mut() {
                changed |= *status != ServingStatus::NotServing;
                *status = ServingStatus::NotServing;
            }
            changed
        });
    }

    /// `service`'s status, if it is known.
    pub fn status(&self, service: &str) -> Option<ServingStatus> {
        self.statuses.borrow().by_service.get(service).copied()
    }

    /// Ends every `Watch` stream after its last status (shutdown, once all is
    /// `NOT_SERVING`).
    pub(crate) fn close_watches(&self) {
        self.statuses
            .send_modify(|statuses| statuses.closing = true);
    }

    /// The `grpc.health.v1.Health` service answering from these statuses.
    pub(crate) fn service(&self) -> pb::health_server::HealthServer<HealthService> {
        pb::health_server::HealthServer::new(HealthService {
            statuses: self.statuses.subscribe(),
        })
    }
}

/// The `grpc.health.v1.Health` implementation.
#[derive(Debug)]
pub(crate) struct HealthService {
    statuses: watch::Receiver<Statuses>,
}

fn response(status: ServingStatus) -> HealthCheckResponse {
    HealthCheckResponse {
        status: status as i32,
    }
}

#[crate::async_trait]
impl pb::health_server::Health for HealthService {
    async fn check(
        &self,
        request: crate::Request<HealthCheckRequest>,
    ) -> Result<crate::Response<HealthCheckResponse>, crate::Status> {
        let service = request.into_inner().service;
        match self.statuses.borrow().by_service.get(&service) {
            Some(status) => Ok(crate::Response::new(response(*status))),
            None => Err(crate::Status::not_found(format!(
                "unknown service {service:?}"
            ))),
        }
    }

    async fn watch(
        &self,
        request: crate::Request<HealthCheckRequest>,
    ) -> Result<crate::Response<crate::BoxStream<HealthCheckResponse>>, crate::Status> {
        let watch = Watch {
            statuses: WatchStream::new(self.statuses.clone()),
            service: request.into_inner().service,
            last: None,
            done: false,
        };
        Ok(crate::Response::new(Box::pin(watch)))
    }
}

/// One `Watch` call: the current status, then each change, until the server shuts down.
struct Watch {
    statuses: WatchStream<Statuses>,
    service: String,
    last: Option<ServingStatus>,
    done: bool,
}

impl Stream for Watch {
    type Item = Result<HealthCheckResponse, crate::Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            if self.done {
                return Poll::Ready(None);
            }
            let Some(statuses) = std::task::ready!(Pin::new(&mut self.statuses).poll_next(cx))
            else {
                return Poll::Ready(None);
            };
            let status = statuses
                .by_service
                .get(&self.service)
                .copied()
                .unwrap_or(ServingStatus::ServiceUnknown);
            self.done = statuses.closing;
            if self.last != Some(status) {
                self.last = Some(status);
                return Poll::Ready(Some(Ok(response(status))));
            }
        }
    }
}
