//! A `tracing` span around every call.

use tonic::Status;
use tracing::Instrument;

use super::{Call, Interceptor, Next, Reply};

/// An interceptor that runs each call inside a `tracing` span (`rpc.server` or
/// `rpc.client`, at INFO) with OpenTelemetry's RPC attribute names (`rpc.system`,
/// `rpc.service`, `rpc.method`, `rpc.grpc.status_code`), and logs failures at WARN (server)
/// or DEBUG (client). Add it to a server or client with `.interceptor(..)`.
pub fn tracing_server() -> impl Interceptor {
    Tracer { server: true }
}

/// See [`tracing_server`]; for clients.
pub fn tracing_client() -> impl Interceptor {
    Tracer { server: false }
}

struct Tracer {
    server: bool,
}

#[crate::async_trait]
impl Interceptor for Tracer {
    async fn intercept(&self, call: Call, next: Next) -> Result<Reply, Status> {
        let method = call.method();
        let span = if self.server {
            tracing::info_span!(
                "rpc.server",
                rpc.system = "grpc",
                rpc.service = method.service(),
                rpc.method = method.method(),
                rpc.grpc.status_code = tracing::field::Empty,
            )
        } else {
            tracing::info_span!(
                "rpc.client",
                rpc.system = "grpc",
                rpc.service = method.service(),
                rpc.method = method.method(),
                rpc.grpc.status_code = tracing::field::Empty,
            )
        };
        let result = next.run(call).instrument(span.clone()).await;
        let code = match &result {
            Ok(_) => 0,
            Err(status) => status.code() as i32,
        };
        span.record("rpc.grpc.status_code", code);
        if let Err(status) = &result {
            let _enter = span.enter();
            if self.server {
                tracing::warn!(code = ?status.code(), message = status.message(), "call failed");
            } else {
                tracing::debug!(code = ?status.code(), message = status.message(), "call failed");
            }
        }
        result
    }
}
