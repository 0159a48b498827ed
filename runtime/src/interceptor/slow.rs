//! Slow-call logs: go-zero's `Stat` (server) and `Duration` (client) interceptors, without
//! the request bodies.

use std::time::{Duration, Instant};

use tonic::{Code, Status};

use super::{Call, Interceptor, Next, Reply};
use crate::metrics::code_name;

/// An interceptor that logs, at WARN through `tracing`, every call that takes longer than
/// `threshold`: the event `[RPC] slowcall` (go-zero's words, for the same greps and alerts)
/// with the fields `method` (`/pkg.Service/Method`), `elapsed_ms`, `code` (`OK`,
/// `DEADLINE_EXCEEDED`, ...), `error` (the status message, when the call failed) and, on
/// servers, `peer` (the client's address, when the connection has one). The same type
/// works on servers ([`ServerBuilder::interceptor`](crate::ServerBuilder::interceptor)) and
/// clients ([`Client::interceptor`](crate::Client::interceptor)); add it early so that it
/// times what the interceptors after it do too.
///
/// A call is timed until the handler (server) or the server (client) answers; for a
/// streaming response that is when the stream is returned, not when it ends, as
/// [`crate::metrics`] times calls.
///
/// go-zero's server `Stat` also logs every request, body as JSON, at INFO (unless the
/// method is in `StatConf.IgnoreContentMethods`), and its client `Duration` logs the request
/// and reply of slow and failed calls. This logs no message contents, ever: encoding every
/// request costs as much as a small handler, and request bodies carry personal data and
/// credentials into logs that are kept and shared more widely than the data itself. Log
/// the fields you need in an interceptor or handler of your own.
///
/// ```
/// use std::time::Duration;
///
/// let server = rzero::Server::builder()
///     .interceptor(rzero::interceptor::slow_calls(Duration::from_millis(500)));
/// ```
pub fn slow_calls(threshold: Duration) -> SlowCalls {
    SlowCalls {
        threshold,
        failures: false,
    }
}

/// See [`slow_calls`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct SlowCalls {
    threshold: Duration,
    failures: bool,
}

impl SlowCalls {
    /// Also logs every failed call that was not slow, at INFO: `[RPC] call failed` with
    /// `method`, `elapsed_ms`, `code` and `error` (the status message), as go-zero's client
    /// `Duration` interceptor does (a slow failed call is logged once, as slow). Meant for
    /// clients, where the call's outcome is otherwise only seen by the code that made it;
    /// [`ClientConfig::build`](crate::config::ClientConfig::build) turns it on with
    /// `Middlewares.Duration`.
    pub fn log_failures(mut self) -> Self {
        self.failures = true;
        self
    }

    /// The threshold a call must exceed to be logged as slow.
    pub fn threshold(&self) -> Duration {
        self.threshold
    }
}

#[crate::async_trait]
impl Interceptor for SlowCalls {
    async fn intercept(&self, call: Call, next: Next) -> Result<Reply, Status> {
        let method = call.method().path();
        let peer = call.remote_addr();
        let started = Instant::now();
        let result = next.run(call).await;
        let elapsed = started.elapsed();
        let slow = elapsed > self.threshold;
        if !slow && (result.is_ok() || !self.failures) {
            return result;
        }
        let (code, error) = match &result {
            Ok(_) => (Code::Ok, None),
            Err(status) => (status.code(), Some(status.message())),
        };
        let elapsed_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        let code = code_name(code);
        let peer = peer.map(tracing::field::display);
        if slow {
            tracing::warn!(method, elapsed_ms, code, error, peer, "[RPC] slowcall");
        } else {
            // INFO, not go-zero's ERROR: the status goes back to the code that made the call,
            // which knows whether it matters (a NOT_FOUND or INVALID_ARGUMENT is often an
            // expected answer, a retried UNAVAILABLE a non-event). ERROR here would page on
            // outcomes the caller handles, or log one failure twice at ERROR when the caller
            // also reports it. The record still ties a failure to its call in the logs.
            tracing::info!(method, elapsed_ms, code, error, peer, "[RPC] call failed");
        }
        result
    }
}
