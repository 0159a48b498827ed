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
//!
//! [`Metrics::global`] is the process-wide registry that servers and clients built from YAML
//! record into (go-zero's `Middlewares.Prometheus`, on by default); a server's dev server
//! ([`ServerBuilder::dev_server`](crate::ServerBuilder::dev_server), go-zero's `DevServer`)
//! serves a registry next to an HTTP health probe for as long as the server runs.
//!
//! Recording a call takes one short lock and, once its method has been seen, allocates
//! nothing.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tonic::{Code, Status};

use crate::interceptor::{Call, Interceptor, Next, Reply};

/// Upper bounds of the latency buckets, in seconds (go-zero's 5 ms … 1 s, plus 2.5 s and 5 s).
const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// How many status codes gRPC has (`OK` = 0 … `UNAUTHENTICATED` = 16).
const CODES: usize = 17;

/// A registry of call metrics. Cheap to clone; clones share the numbers.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    inner: Arc<Mutex<Registry>>,
}

/// Keyed by the methods' `&'static str` paths (from their [`MethodDescriptor`]s), so that
/// recording a call allocates nothing once its method has been seen: one map lookup under
/// the lock, then counter increments.
///
/// [`MethodDescriptor`]: crate::MethodDescriptor
#[derive(Debug, Default)]
struct Registry {
    /// Per [`Side`] (indexed by `Side as usize`): method → its calls.
    calls: [BTreeMap<&'static str, MethodCalls>; 2],
    /// `(method, reason)` → calls a server's protections refused before any interceptor.
    refused: BTreeMap<(&'static str, &'static str), u64>,
}

/// One method's calls on one side.
#[derive(Debug, Default)]
struct MethodCalls {
    /// Calls by status code (`Code as usize`); 0 means none (and is not rendered).
    handled: [u64; CODES],
    latency: Histogram,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Side {
    Server = 0,
    Client = 1,
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
    /// The process-wide registry: what servers and clients built from YAML
    /// ([`crate::config`]) record into when `Middlewares.Prometheus` is on (the default, as
    /// in go-zero, whose Prometheus collectors are global too), and what their `DevServer`
    /// serves. Code may record into it as well, e.g.
    /// `.metrics(Metrics::global())` on a hand-built server, so that one scrape sees
    /// everything.
    pub fn global() -> &'static Metrics {
        static GLOBAL: OnceLock<Metrics> = OnceLock::new();
        GLOBAL.get_or_init(Metrics::default)
    }

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

    fn record(&self, side: Side, method: &'static str, code: Code, seconds: f64) {
        // `Code` has exactly `CODES` variants; should tonic add one, count it as UNKNOWN.
        let code = match code as usize {
            index if index < CODES => index,
            _ => Code::Unknown as usize,
        };
        let mut registry = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let calls = registry.calls[side as usize].entry(method).or_default();
        calls.handled[code] += 1;
        let histogram = &mut calls.latency;
        if let Some(bucket) = BUCKETS.iter().position(|bound| seconds <= *bound) {
            histogram.counts[bucket] += 1;
        }
        histogram.count += 1;
        histogram.sum += seconds;
    }

    /// A call refused by a server's breaker, shedding or concurrency limit (`reason`), which
    /// the interceptors, this registry's recorder included, never see.
    pub(crate) fn record_refusal(&self, method: &'static str, reason: &'static str) {
        let mut registry = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        *registry.refused.entry((method, reason)).or_default() += 1;
    }

    /// The metrics in the Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let registry = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        for side in [Side::Server, Side::Client] {
            let name = side.name();
            let calls = &registry.calls[side as usize];
            let _ = writeln!(
                out,
                "# HELP rzero_{name}_handled_total Calls completed, by method and status code.\n\
                 # TYPE rzero_{name}_handled_total counter"
            );
            for (method, calls) in calls {
                let method = escape(method);
                for (code, count) in calls.handled.iter().enumerate() {
                    if *count > 0 {
                        let _ = writeln!(
                            out,
                            "rzero_{name}_handled_total{{method=\"{method}\",code=\"{}\"}} {count}",
                            code_name(Code::from_i32(code as i32))
                        );
                    }
                }
            }
            let _ = writeln!(
                out,
                "# HELP rzero_{name}_handling_seconds Call latency, by method.\n\
                 # TYPE rzero_{name}_handling_seconds histogram"
            );
            for (method, calls) in calls {
                let method = escape(method);
                let histogram = &calls.latency;
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
    /// per connection) until the task is dropped; other paths get 404. To serve it for as
    /// long as a server runs, next to a health probe, see
    /// [`ServerBuilder::dev_server`](crate::ServerBuilder::dev_server).
    pub async fn serve(self, addr: &str) -> std::io::Result<()> {
        let listener = TcpListener::bind(addr).await?;
        self.serve_with_listener(listener).await
    }

    /// [`serve`](Self::serve) on a bound listener.
    pub async fn serve_with_listener(self, listener: TcpListener) -> std::io::Result<()> {
        serve_http(listener, move |path| {
            if path == "/metrics" {
                HttpReply::metrics(&self)
            } else {
                HttpReply::not_found()
            }
        })
        .await
    }
}

/// One answer of the small HTTP/1.1 server behind [`Metrics::serve`] and the dev server.
#[derive(Debug)]
pub(crate) struct HttpReply {
    status: &'static str,
    content_type: &'static str,
    body: String,
}

impl HttpReply {
    /// `200 OK` with the exposition of `metrics`.
    pub(crate) fn metrics(metrics: &Metrics) -> Self {
        Self {
            status: "200 OK",
            content_type: "text/plain; version=0.0.4",
            body: metrics.render(),
        }
    }

    /// `status` with a plain-text `body`.
    pub(crate) fn text(status: &'static str, body: impl Into<String>) -> Self {
        Self {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into(),
        }
    }

    /// `404 Not Found`.
    pub(crate) fn not_found() -> Self {
        Self::text("404 Not Found", "not found\n")
    }
}

/// Serves HTTP/1.1 on `listener` (one response per connection, then `connection: close`):
/// `GET` requests are answered with `respond(path)`, the query string left out; anything
/// else gets 404. Scrapers and probes need no more, and this keeps hyper's server side out
/// of the dependencies. Runs until the task is dropped, or accepting fails.
pub(crate) async fn serve_http<F>(listener: TcpListener, respond: F) -> std::io::Result<()>
where
    F: Fn(&str) -> HttpReply + Send + Sync + 'static,
{
    let respond = Arc::new(respond);
    loop {
        let (mut stream, _) = listener.accept().await?;
        let respond = Arc::clone(&respond);
        tokio::spawn(async move {
            // A scrape or probe request fits in a few hundred bytes; read up to the header end.
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
            let mut parts = line.split(|b| *b == b' ');
            let reply = match (parts.next(), parts.next().map(std::str::from_utf8)) {
                (Some(b"GET"), Some(Ok(target))) => {
                    respond(target.split_once('?').map_or(target, |(path, _)| path))
                }
                _ => HttpReply::not_found(),
            };
            let response = format!(
                "HTTP/1.1 {}\r\ncontent-type: {}\r\ncontent-length: {}\r\n\
                 connection: close\r\n\r\n{}",
                reply.status,
                reply.content_type,
                reply.body.len(),
                reply.body
            );
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
        });
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
pub(crate) fn code_name(code: Code) -> &'static str {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The exposition, byte for byte: scrapers and the tests of `/metrics` rely on it (this
    /// text was rendered by the registry before it was keyed by `&'static str`).
    #[test]
    fn exposition_is_stable() {
        let metrics = Metrics::default();
        metrics.record(Side::Server, "/b.B/Two", Code::Ok, 0.003);
        metrics.record(Side::Server, "/a.A/One", Code::NotFound, 0.2);
        metrics.record(Side::Server, "/a.A/One", Code::Ok, 7.0);
        metrics.record(Side::Server, "/a.A/One", Code::Ok, 0.05);
        metrics.record(Side::Client, "/a.A/One", Code::Unavailable, 0.5);
        metrics.record(Side::Server, "/a.A/One", Code::Internal, 0.0);
        metrics.record_refusal("/b.B/Two", "shedding");
        metrics.record_refusal("/a.A/One", "breaker");
        metrics.record_refusal("/a.A/One", "breaker");
        metrics.record(Side::Client, "/q.Q/\"Odd\\", Code::Ok, 1.0);
        assert_eq!(
            metrics.render() + &Metrics::default().render(),
            EXPECTED,
            "rendered:\n{}",
            metrics.render()
        );
    }

    #[test]
    fn the_global_registry_is_one() {
        assert!(Arc::ptr_eq(
            &Metrics::global().inner,
            &Metrics::global().inner
        ));
    }

    const EXPECTED: &str = r##"# HELP rzero_server_handled_total Calls completed, by method and status code.
# TYPE rzero_server_handled_total counter
rzero_server_handled_total{method="/a.A/One",code="OK"} 2
rzero_server_handled_total{method="/a.A/One",code="NOT_FOUND"} 1
rzero_server_handled_total{method="/a.A/One",code="INTERNAL"} 1
rzero_server_handled_total{method="/b.B/Two",code="OK"} 1
# HELP rzero_server_handling_seconds Call latency, by method.
# TYPE rzero_server_handling_seconds histogram
rzero_server_handling_seconds_bucket{method="/a.A/One",le="0.005"} 1
rzero_server_handling_seconds_bucket{method="/a.A/One",le="0.01"} 1
rzero_server_handling_seconds_bucket{method="/a.A/One",le="0.025"} 1
rzero_server_handling_seconds_bucket{method="/a.A/One",le="0.05"} 2
rzero_server_handling_seconds_bucket{method="/a.A/One",le="0.1"} 2
rzero_server_handling_seconds_bucket{method="/a.A/One",le="0.25"} 3
rzero_server_handling_seconds_bucket{method="/a.A/One",le="0.5"} 3
rzero_server_handling_seconds_bucket{method="/a.A/One",le="1"} 3
rzero_server_handling_seconds_bucket{method="/a.A/One",le="2.5"} 3
rzero_server_handling_seconds_bucket{method="/a.A/One",le="5"} 3
rzero_server_handling_seconds_bucket{method="/a.A/One",le="+Inf"} 4
rzero_server_handling_seconds_sum{method="/a.A/One"} 7.25
rzero_server_handling_seconds_count{method="/a.A/One"} 4
rzero_server_handling_seconds_bucket{method="/b.B/Two",le="0.005"} 1
rzero_server_handling_seconds_bucket{method="/b.B/Two",le="0.01"} 1
rzero_server_handling_seconds_bucket{method="/b.B/Two",le="0.025"} 1
rzero_server_handling_seconds_bucket{method="/b.B/Two",le="0.05"} 1
rzero_server_handling_seconds_bucket{method="/b.B/Two",le="0.1"} 1
rzero_server_handling_seconds_bucket{method="/b.B/Two",le="0.25"} 1
rzero_server_handling_seconds_bucket{method="/b.B/Two",le="0.5"} 1
rzero_server_handling_seconds_bucket{method="/b.B/Two",le="1"} 1
rzero_server_handling_seconds_bucket{method="/b.B/Two",le="2.5"} 1
rzero_server_handling_seconds_bucket{method="/b.B/Two",le="5"} 1
rzero_server_handling_seconds_bucket{method="/b.B/Two",le="+Inf"} 1
rzero_server_handling_seconds_sum{method="/b.B/Two"} 0.003
rzero_server_handling_seconds_count{method="/b.B/Two"} 1
# HELP rzero_client_handled_total Calls completed, by method and status code.
# TYPE rzero_client_handled_total counter
rzero_client_handled_total{method="/a.A/One",code="UNAVAILABLE"} 1
rzero_client_handled_total{method="/q.Q/\"Odd\\",code="OK"} 1
# HELP rzero_client_handling_seconds Call latency, by method.
# TYPE rzero_client_handling_seconds histogram
rzero_client_handling_seconds_bucket{method="/a.A/One",le="0.005"} 0
rzero_client_handling_seconds_bucket{method="/a.A/One",le="0.01"} 0
rzero_client_handling_seconds_bucket{method="/a.A/One",le="0.025"} 0
rzero_client_handling_seconds_bucket{method="/a.A/One",le="0.05"} 0
rzero_client_handling_seconds_bucket{method="/a.A/One",le="0.1"} 0
rzero_client_handling_seconds_bucket{method="/a.A/One",le="0.25"} 0
rzero_client_handling_seconds_bucket{method="/a.A/One",le="0.5"} 1
rzero_client_handling_seconds_bucket{method="/a.A/One",le="1"} 1
rzero_client_handling_seconds_bucket{method="/a.A/One",le="2.5"} 1
rzero_client_handling_seconds_bucket{method="/a.A/One",le="5"} 1
rzero_client_handling_seconds_bucket{method="/a.A/One",le="+Inf"} 1
rzero_client_handling_seconds_sum{method="/a.A/One"} 0.5
rzero_client_handling_seconds_count{method="/a.A/One"} 1
rzero_client_handling_seconds_bucket{method="/q.Q/\"Odd\\",le="0.005"} 0
rzero_client_handling_seconds_bucket{method="/q.Q/\"Odd\\",le="0.01"} 0
rzero_client_handling_seconds_bucket{method="/q.Q/\"Odd\\",le="0.025"} 0
rzero_client_handling_seconds_bucket{method="/q.Q/\"Odd\\",le="0.05"} 0
rzero_client_handling_seconds_bucket{method="/q.Q/\"Odd\\",le="0.1"} 0
rzero_client_handling_seconds_bucket{method="/q.Q/\"Odd\\",le="0.25"} 0
rzero_client_handling_seconds_bucket{method="/q.Q/\"Odd\\",le="0.5"} 0
rzero_client_handling_seconds_bucket{method="/q.Q/\"Odd\\",le="1"} 1
rzero_client_handling_seconds_bucket{method="/q.Q/\"Odd\\",le="2.5"} 1
rzero_client_handling_seconds_bucket{method="/q.Q/\"Odd\\",le="5"} 1
rzero_client_handling_seconds_bucket{method="/q.Q/\"Odd\\",le="+Inf"} 1
rzero_client_handling_seconds_sum{method="/q.Q/\"Odd\\"} 1
rzero_client_handling_seconds_count{method="/q.Q/\"Odd\\"} 1
# HELP rzero_server_refused_total Calls refused by the server's breaker, shedding or concurrency limit, by method and reason.
# TYPE rzero_server_refused_total counter
rzero_server_refused_total{method="/a.A/One",reason="breaker"} 2
rzero_server_refused_total{method="/b.B/Two",reason="shedding"} 1
# HELP rzero_server_handled_total Calls completed, by method and status code.
# TYPE rzero_server_handled_total counter
# HELP rzero_server_handling_seconds Call latency, by method.
# TYPE rzero_server_handling_seconds histogram
# HELP rzero_client_handled_total Calls completed, by method and status code.
# TYPE rzero_client_handled_total counter
# HELP rzero_client_handling_seconds Call latency, by method.
# TYPE rzero_client_handling_seconds histogram
# HELP rzero_server_refused_total Calls refused by the server's breaker, shedding or concurrency limit, by method and reason.
# TYPE rzero_server_refused_total counter
"##;
}
