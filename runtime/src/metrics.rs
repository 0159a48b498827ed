//! Prometheus metrics for calls: counts by method and code, and latency histograms by method,
//! on servers and clients, served in the Prometheus text format over HTTP.
//!
//! ```no_run
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! let metrics = rzero::metrics::Metrics::default();
//! tokio::spawn(metrics.clone().serve("127.0.0.1:9101"));   // GET /metrics
//! let server = rzero::Server::builder().interceptor(metrics.server());
//! let client = rzero::Client::connect("127.0.0.1:50051").await?.interceptor(metrics.client());
//! # Ok(()) }
//! ```
//!
//! Names follow Prometheus conventions (seconds, `_total`): `rzero_server_handled_total`,
//! `rzero_server_handling_seconds`, `rzero_client_handled_total`,
//! `rzero_client_handling_seconds`, labelled `method` (`/pkg.Service/Method`) and `code`
//! (`OK`, `NOT_FOUND`, ...). A server given the registry with
//! [`ServerBuilder::metrics`](crate::ServerBuilder::metrics) also counts the calls its
//! protections ([`crate::protection`]) refuse before any interceptor runs:
//! `rzero_server_refused_total`, labelled `method` and `reason` (`breaker`, `shedding`,
//! `limit`). A streaming call is timed until its handler (server) or the
//! server (client) answers with the response stream, not until the stream ends. The
//! registry and the exposition are written here (a few dozen lines) rather than pulled in from
//! the `prometheus` crate, to keep the dependency tree lean.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tonic::{Code, Status};

use crate::interceptor::{Call, Interceptor, Next, Reply};

/// Upper bounds of the latency buckets, in seconds (go-zero's 5 ms … 1 s, plus 2.5 s and 5 s).
const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// A registry of call metrics. Cheap to clone; clones share the numbers.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    inner: Arc<Mutex<Registry>>,
}

#[derive(Debug, Default)]
struct Registry {
    /// `(side, method, code as i32)` → calls.
    handled: BTreeMap<(Side, String, i32), u64>,
    /// `(side, method)` → latency histogram.
    latency: BTreeMap<(Side, String), Histogram>,
    /// `(method, reason)` → calls a server's protections refused before any interceptor.
    refused: BTreeMap<(String, &'static str), u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Side {
    Server,
    Client,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Self::Server => "server",
            Self::Client => "client",
        }
    }
}

#[derive(Debug, Default)]
struct Histogram {
    /// Per bucket (not cumulative; summed when rendered).
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Metrics {
    /// An interceptor recording every call a server handles.
    pub fn server(&self) -> impl Interceptor {
        Recorder {
            metrics: self.clone(),
            side: Side::Server,
        }
    }

    /// An interceptor recording every call a client makes.
    pub fn client(&self) -> impl Interceptor {
        Recorder {
            metrics: self.clone(),
            side: Side::Client,
        }
    }

    fn record(&self, side: Side, method: &str, code: Code, seconds: f64) {
        let mut registry = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        *registry
            .handled
            .entry((side, method.to_owned(), code as i32))
            .or_default() += 1;
        let histogram = registry
            .latency
            .entry((side, method.to_owned()))
            .or_default();
        if let Some(bucket) = BUCKETS.iter().position(|bound| seconds <= *bound) {
            histogram.counts[bucket] += 1;
        }
        histogram.count += 1;
        histogram.sum += seconds;
    }

    /// A call refused by a server's breaker, shedding or concurrency limit (`reason`), which
    /// the interceptors, this registry's recorder included, never see.
    pub(crate) fn record_refusal(&self, method: &str, reason: &'static str) {
        let mut registry = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        *registry
            .refused
            .entry((method.to_owned(), reason))
            .or_default() += 1;
    }

    /// The metrics in the Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let registry = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        for side in [Side::Server, Side::Client] {
            let name = side.name();
            let _ = writeln!(
                out,
                "# HELP rzero_{name}_handled_total Calls completed, by method and status code.\n\
                 # TYPE rzero_{name}_handled_total counter"
            );
            for ((_, method, code), calls) in
                registry.handled.iter().filter(|((s, _, _), _)| *s == side)
            {
                let _ = writeln!(
                    out,
                    "rzero_{name}_handled_total{{method=\"{}\",code=\"{}\"}} {calls}",
                    escape(method),
                    code_name(Code::from_i32(*code))
                );
            }
            let _ = writeln!(
                out,
                "# HELP rzero_{name}_handling_seconds Call latency, by method.\n\
                 # TYPE rzero_{name}_handling_seconds histogram"
            );
            for ((_, method), histogram) in registry.latency.iter().filter(|((s, _), _)| *s == side)
            {
                let method = escape(method);
                let mut cumulative = 0;
                for (bound, count) in BUCKETS.iter().zip(histogram.counts) {
                    cumulative += count;
                    let _ = writeln!(
                        out,
                        "rzero_{name}_handling_seconds_bucket{{method=\"{method}\",le=\"{bound}\"}} {cumulative}"
                    );
                }
                let _ = writeln!(
                    out,
                    "rzero_{name}_handling_seconds_bucket{{method=\"{method}\",le=\"+Inf\"}} {}\n\
                     rzero_{name}_handling_seconds_sum{{method=\"{method}\"}} {}\n\
                     rzero_{name}_handling_seconds_count{{method=\"{method}\"}} {}",
                    histogram.count, histogram.sum, histogram.count
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP rzero_server_refused_total Calls refused by the server's breaker, shedding or \
             concurrency limit, by method and reason.\n\
             # TYPE rzero_server_refused_total counter"
        );
        for ((method, reason), calls) in &registry.refused {
            let _ = writeln!(
                out,
                "rzero_server_refused_total{{method=\"{}\",reason=\"{reason}\"}} {calls}",
                escape(method)
            );
        }
        out
    }

    /// Serves [`render`](Self::render) at `GET /metrics` on `addr` (HTTP/1.1, one response
    /// per connection) until the task is dropped; other paths get 404.
    pub async fn serve(self, addr: &str) -> std::io::Result<()> {
        let listener = TcpListener::bind(addr).await?;
        self.serve_with_listener(listener).await
    }

    /// [`serve`](Self::serve) on a bound listener.
    pub async fn serve_with_listener(self, listener: TcpListener) -> std::io::Result<()> {
        loop {
            let (mut stream, _) = listener.accept().await?;
            let metrics = self.clone();
            tokio::spawn(async move {
                // A scrape request fits in a few hundred bytes; read up to the header end.
                let mut request = Vec::with_capacity(512);
                let mut chunk = [0u8; 512];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 8192 {
                    match tokio::time::timeout(
                        std::time::Duration::from_secs(5),
                        stream.read(&mut chunk),
                    )
                    .await
                    {
                        Ok(Ok(n)) if n > 0 => request.extend_from_slice(&chunk[..n]),
                        _ => return,
                    }
                }
                let line = request.split(|b| *b == b'\r').next().unwrap_or_default();
                let (status, body) =
                    if line.starts_with(b"GET /metrics ") || line.starts_with(b"GET /metrics?") {
                        ("200 OK", metrics.render())
                    } else {
                        ("404 Not Found", "not found\n".to_owned())
                    };
                let response = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: text/plain; version=0.0.4\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    }
}

/// Label values escape `\`, `"` and newlines.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `NOT_FOUND` for `Code::NotFound`, as gRPC names codes.
fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

struct Recorder {
    metrics: Metrics,
    side: Side,
}

#[crate::async_trait]
impl Interceptor for Recorder {
    async fn intercept(&self, call: Call, next: Next) -> Result<Reply, Status> {
        let method = call.method().path();
        let started = Instant::now();
        let result = next.run(call).await;
        let code = match &result {
            Ok(_) => Code::Ok,
            Err(status) => status.code(),
        };
        self.metrics
            .record(self.side, method, code, started.elapsed().as_secs_f64());
        result
    }
}
