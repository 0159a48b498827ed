//! Protection against overload and failing dependencies: circuit breakers, adaptive load
//! shedding, and a concurrency limit, with go-zero's algorithms and constants.
//!
//! ```no_run
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! use rzero::protection::{Breaker, Shedding};
//! let server = rzero::Server::builder()
//!     .breaker(Breaker::new())          // per method
//!     .shedding(Shedding::new(900))     // above 90 % CPU, when busier than usual
//!     .concurrency_limit(1000);         // in-flight calls, streams included
//! let client = rzero::Client::builder("dns:///greeter:8080")
//!     .breaker(Breaker::new())          // per method of this target
//!     .build()?;
//! # Ok(()) }
//! ```
//!
//! | refusal | code | message starts with |
//! |---|---|---|
//! | breaker ([`breaker`] algorithm) | `UNAVAILABLE` | `circuit breaker is open` |
//! | shedding ([`shedding`] algorithm) | `RESOURCE_EXHAUSTED` | `server overloaded` |
//! | concurrency limit | `RESOURCE_EXHAUSTED` | `server busy` |
//!
//! # Decisions
//! - **Off unless asked for, in code; on by default from YAML.** go-zero turns the breaker
//!   on (`Middlewares.Breaker: true`) and shedding at `CpuThreshold: 900` by default, and
//!   [`crate::config`] does the same, so a go-zero config behaves as it did. The builders
//!   start with nothing, like tonic's: a server built in code does what its code says.
//! - **Server side, protections run in dispatch, before every interceptor** (like the
//!   deadline): a refused call costs no decoding, no auth lookup, no handler. The order is
//!   go-zero's, breaker outermost: breaker → concurrency limit → shedding → deadline →
//!   interceptors → handler; the breaker sees the other two's refusals as failures
//!   (`RESOURCE_EXHAUSTED` is a failure code), which is how go-zero's breaker trips on a
//!   server that sheds. Because the interceptors never see these refusals, count them with
//!   [`ServerBuilder::metrics`](crate::ServerBuilder::metrics).
//! - **Client side, the breaker runs at the end of the interceptor chain**, next to the
//!   network (go-zero's order: tracing and metrics outside, the breaker inside), so client
//!   interceptors see and count its refusals.
//! - **Every kind of call counts, when it ends.** A stream holds its breaker pass, shedding
//!   slot and concurrency permit until its final status goes out (server) or comes in
//!   (client): the status in the trailers decides success or failure. Opening a stream is
//!   refused like a unary call. A call abandoned before its status (the peer reset it, the
//!   caller dropped it) counts as `CANCELLED`, or `DEADLINE_EXCEEDED` once the client's
//!   deadline has passed. go-zero covers streams with its breaker only when they open.
//! - **Breakers are per server or per client**, by method path, created on first use (the
//!   paths are those of generated methods, so the map is bounded). go-zero keeps them in a
//!   process-wide registry by name.
//! - **Randomness and time are injectable** ([`Breaker::seed`], [`Breaker::clock`],
//!   [`Shedding::cpu_usage`], [`Shedding::clock`], [`ManualClock`]): the algorithms are
//!   tested with go-zero's numbers, and behaviour tests run without timing assumptions.

pub mod breaker;
mod cpu;
mod limit;
pub mod shedding;
mod window;

pub use breaker::Breaker;
pub use shedding::Shedding;
pub use window::{Clock, ManualClock};

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::Frame;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;
use tonic::{Code, Status};

use crate::method::{MethodDescriptor, MethodKind};
use crate::metrics::Metrics;
use breaker::{BreakerPass, Breakers};
use limit::ConcurrencyLimit;
use shedding::{ShedPass, Shedder};

/// What a server's calls are admitted by.
#[derive(Debug, Default)]
pub(crate) struct ServerProtection {
    breakers: Option<Breakers>,
    limit: Option<ConcurrencyLimit>,
    shedder: Option<Arc<Shedder>>,
    metrics: Option<Metrics>,
}

impl ServerProtection {
    pub(crate) fn set_breaker(&mut self, breaker: Breaker) {
        self.breakers = Some(Breakers::new(breaker));
    }

    pub(crate) fn set_limit(&mut self, max: usize) {
        self.limit = Some(ConcurrencyLimit::new(max));
    }

    pub(crate) fn set_shedding(&mut self, shedding: Shedding) {
        self.shedder = Some(Arc::new(Shedder::new(shedding)));
    }

    pub(crate) fn set_metrics(&mut self, metrics: Metrics) {
        self.metrics = Some(metrics);
    }

    /// The background work the protections need while the server runs (CPU sampling).
    pub(crate) fn background(&self) -> Option<impl Future<Output = ()> + Send + 'static> {
        self.shedder.as_ref()?.sampler()
    }

    /// Lets a call in (with what to settle when it ends; none when nothing protects this
    /// server), or refuses it.
    pub(crate) fn admit(
        &self,
        method: &'static MethodDescriptor,
    ) -> Result<Option<SharedTicket>, Status> {
        if self.breakers.is_none() && self.limit.is_none() && self.shedder.is_none() {
            return Ok(None);
        }
        let mut ticket = Ticket::default();
        if let Some(breakers) = &self.breakers {
            let pass = breakers.admit(method.path());
            ticket.breaker = Some(self.refused(method, "breaker", pass)?);
        }
        // A refusal past the breaker is settled with its own code, so the breaker counts it
        // (go-zero's breaker sees the shedder's RESOURCE_EXHAUSTED the same way).
        if let Some(limit) = &self.limit {
            match self.refused(method, "limit", limit.admit()) {
                Ok(permit) => ticket.permit = Some(permit),
                Err(status) => {
                    ticket.settle(status.code());
                    return Err(status);
                }
            }
        }
        if let Some(shedder) = &self.shedder
            && method.kind() == MethodKind::Unary
        {
            match self.refused(method, "shedding", shedder.admit()) {
                Ok(pass) => ticket.shed = Some(pass),
                Err(status) => {
                    ticket.settle(status.code());
                    return Err(status);
                }
            }
        }
        if ticket.breaker.is_none() && ticket.permit.is_none() && ticket.shed.is_none() {
            // Only shedding, and this call is a stream: nothing to settle.
            return Ok(None);
        }
        Ok(Some(SharedTicket::new(ticket)))
    }

    /// Counts a refusal, if metrics are kept.
    fn refused<T>(
        &self,
        method: &'static MethodDescriptor,
        reason: &'static str,
        admitted: Result<T, Status>,
    ) -> Result<T, Status> {
        if let (Err(_), Some(metrics)) = (&admitted, &self.metrics) {
            metrics.record_refusal(method.path(), reason);
        }
        admitted
    }
}

/// A client's breakers (per method of its target).
#[derive(Debug)]
pub(crate) struct ClientProtection {
    breakers: Breakers,
}

impl ClientProtection {
    pub(crate) fn new(breaker: Breaker) -> Self {
        Self {
            breakers: Breakers::new(breaker),
        }
    }

    /// Lets a call out, or refuses it. `deadline` tells an abandoned call that ran out of
    /// time from one its caller dropped.
    pub(crate) fn admit(
        &self,
        method: &'static MethodDescriptor,
        deadline: Option<Instant>,
    ) -> Result<SharedTicket, Status> {
        let pass = self.breakers.admit(method.path())?;
        let mut ticket = Ticket::default();
        ticket.breaker = Some(pass);
        ticket.deadline = deadline;
        Ok(SharedTicket::new(ticket))
    }
}

/// What an admitted call holds until its outcome is known.
#[derive(Debug, Default)]
struct Ticket {
    breaker: Option<BreakerPass>,
    permit: Option<OwnedSemaphorePermit>,
    shed: Option<ShedPass>,
    deadline: Option<Instant>,
}

impl Ticket {
    fn settle(&mut self, code: Code) {
        if let Some(pass) = self.shed.take() {
            pass.finish(code);
        }
        self.permit.take();
        if let Some(pass) = self.breaker.take() {
            pass.finish(code);
        }
    }
}

impl Drop for Ticket {
    /// No outcome came: the call was abandoned.
    fn drop(&mut self) {
        let code = match self.deadline {
            Some(deadline) if Instant::now() >= deadline => Code::DeadlineExceeded,
            _ => Code::Cancelled,
        };
        self.settle(code);
    }
}

/// A ticket that whoever learns the call's outcome first settles: the code that sent the
/// call (from an error) or the response body (from the trailers). Travels in request
/// extensions from a client to its transport.
#[derive(Debug, Clone)]
pub(crate) struct SharedTicket(Arc<Mutex<Option<Ticket>>>);

impl SharedTicket {
    fn new(ticket: Ticket) -> Self {
        Self(Arc::new(Mutex::new(Some(ticket))))
    }

    /// Records the outcome, unless one was recorded already.
    pub(crate) fn settle(&self, code: Code) {
        let ticket = self.0.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(mut ticket) = ticket {
            ticket.settle(code);
        }
    }

    /// Settles when `response` carries its status in its headers (trailers-only), else
    /// when its body reaches the trailers, ends, or is dropped.
    pub(crate) fn watch(
        self,
        response: http::Response<tonic::body::Body>,
    ) -> http::Response<tonic::body::Body> {
        if let Some(code) = grpc_status(response.headers()) {
            self.settle(code);
            return response;
        }
        response.map(|body| {
            tonic::body::Body::new(Watched {
                body,
                ticket: Some(self),
            })
        })
    }
}

/// The `grpc-status` in headers or trailers.
pub(crate) fn grpc_status(headers: &http::HeaderMap) -> Option<Code> {
    let value = headers.get("grpc-status")?.to_str().ok()?;
    Some(Code::from_i32(value.parse().ok()?))
}

/// A response body that settles its call's ticket when the status goes by.
struct Watched {
    body: tonic::body::Body,
    ticket: Option<SharedTicket>,
}

impl http_body::Body for Watched {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let frame = std::task::ready!(Pin::new(&mut self.body).poll_frame(cx));
        let outcome = match &frame {
            Some(Ok(frame)) => frame
                .trailers_ref()
                .map(|trailers| grpc_status(trailers).unwrap_or(Code::Unknown)),
            Some(Err(status)) => Some(status.code()),
            // Ended without trailers: a broken response.
            None => Some(Code::Unknown),
        };
        if let Some(code) = outcome
            && let Some(ticket) = self.ticket.take()
        {
            ticket.settle(code);
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}
