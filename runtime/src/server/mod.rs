//! Serving generated services.
//!
//! [`Server`] hosts any number of generated services (`XxxServer<T>` wrappers) on one port and
//! shuts down gracefully: on SIGINT/SIGTERM with [`ServerBuilder::serve`], or when a future you
//! pass completes with [`ServerBuilder::serve_with_shutdown`]. In-flight calls finish before
//! `serve` returns. The generated wrappers are plain `tower::Service`s that also implement
//! tonic's `NamedService`, so they mount on a `tonic::transport::Server` just as well.

mod dev;
pub(crate) mod dispatch;
#[cfg(feature = "grpc-web")]
pub(crate) mod grpc_web;
mod trailers;

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::net::TcpListener;
use tonic::codec::{CompressionEncoding, EnabledCompressionEncodings};
use tonic::server::NamedService;
use tonic::service::Routes;
use tonic::transport::server::TcpIncoming;

pub use dev::DevServer;
#[cfg(feature = "grpc-web")]
pub use grpc_web::GrpcWeb;
pub use trailers::Trailers;

use crate::Error;
use crate::health::HealthReporter;
use crate::interceptor::{Chain, Interceptor};
use crate::protection::{Breaker, ServerProtection, Shedding};

/// Per-service codec settings a generated server wrapper carries.
///
/// The generated `XxxServer` builder methods (`accept_compressed`, `send_compressed`,
/// `max_decoding_message_size`, `max_encoding_message_size`) edit this.
#[derive(Debug, Clone, Copy)]
pub struct ServiceConfig {
    pub(crate) accept_encodings: EnabledCompressionEncodings,
    pub(crate) send_encodings: EnabledCompressionEncodings,
    pub(crate) max_decoding_message_size: usize,
    pub(crate) max_encoding_message_size: usize,
}

impl Default for ServiceConfig {
    /// Accepts every compression built into this `rzero` (gzip and zstd by default) and
    /// sends uncompressed, as tonic and grpc-go do: compressing small replies costs far more
    /// than it saves (measured: rzero→rzero unary throughput halved when every reply was
    /// gzipped because the client accepts gzip). Turn it on per service with
    /// `send_compressed`. 4 MiB decode limit, no encode limit.
    fn default() -> Self {
        #[allow(unused_mut)] // without compression features nothing is enabled
        let mut encodings = EnabledCompressionEncodings::default();
        #[cfg(feature = "gzip")]
        encodings.enable(CompressionEncoding::Gzip);
        #[cfg(feature = "zstd")]
        encodings.enable(CompressionEncoding::Zstd);
        Self {
            accept_encodings: encodings,
            send_encodings: EnabledCompressionEncodings::default(),
            max_decoding_message_size: 4 * 1024 * 1024,
            max_encoding_message_size: usize::MAX,
        }
    }
}

impl ServiceConfig {
    /// Accepts requests compressed with `encoding`.
    pub fn accept_compressed(&mut self, encoding: CompressionEncoding) {
        self.accept_encodings.enable(encoding);
    }

    /// Compresses responses with `encoding` when the client says it accepts it.
    pub fn send_compressed(&mut self, encoding: CompressionEncoding) {
        self.send_encodings.enable(encoding);
    }

    /// Largest request message accepted, in bytes.
    pub fn max_decoding_message_size(&mut self, limit: usize) {
        self.max_decoding_message_size = limit;
    }

    /// Largest response message sent, in bytes.
    pub fn max_encoding_message_size(&mut self, limit: usize) {
        self.max_encoding_message_size = limit;
    }
}

/// A gRPC server hosting generated services.
///
/// ```no_run
/// # async fn run<S>(svc: S) -> Result<(), rzero::Error>
/// # where S: tower_service::Service<http::Request<tonic::body::Body>, Response = http::Response<tonic::body::Body>, Error = std::convert::Infallible>
/// #   + tonic::server::NamedService + Clone + Send + Sync + 'static, S::Future: Send + 'static {
/// rzero::Server::builder()
///     .add_service(svc)
///     .serve("127.0.0.1:8080")
///     .await
/// # }
/// ```
#[derive(Debug)]
pub struct Server;

impl Server {
    /// Starts describing a server.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }
}

/// Collects services and settings, then serves them; see [`Server`].
#[derive(Debug)]
#[must_use]
pub struct ServerBuilder {
    routes: tonic::service::RoutesBuilder,
    timeout: Option<Duration>,
    method_timeouts: HashMap<String, Duration>,
    interceptors: Chain,
    protection: ServerProtection,
    services: Vec<&'static str>,
    health: Option<HealthReporter>,
    drain_delay: Duration,
    dev_server: Option<(DevServer, DevListener)>,
    #[cfg(feature = "etcd")]
    registration: Option<crate::discovery::etcd::RegistrationBuilder>,
    #[cfg(feature = "gateway")]
    gateway: Option<(crate::gateway::Gateway, Option<TcpListener>)>,
    /// Where a gateway added with [`gateway`](Self::gateway) listens instead of the gRPC
    /// port (a config's `Gateway.ListenOn`), bound when serving starts.
    #[cfg(feature = "gateway")]
    gateway_addr: Option<String>,
    /// Every service added, by name, for the gateway's in-process calls.
    #[cfg(feature = "gateway")]
    by_name: ByName,
    #[cfg(feature = "grpc-web")]
    grpc_web: Option<GrpcWeb>,
    #[cfg(feature = "tls")]
    tls: Option<crate::tls::ServerTls>,
    #[cfg(feature = "reflection")]
    reflection: Option<Vec<bytes::Bytes>>,
}

impl Default for ServerBuilder {
    fn default() -> Self {
        Self {
            routes: tonic::service::RoutesBuilder::default(),
            timeout: None,
            method_timeouts: HashMap::new(),
            interceptors: Chain::default(),
            protection: ServerProtection::default(),
            services: Vec::new(),
            health: Some(HealthReporter::default()),
            drain_delay: Duration::ZERO,
            dev_server: None,
            #[cfg(feature = "etcd")]
            registration: None,
            #[cfg(feature = "gateway")]
            gateway: None,
            #[cfg(feature = "gateway")]
            gateway_addr: None,
            #[cfg(feature = "gateway")]
            by_name: ByName::default(),
            #[cfg(feature = "grpc-web")]
            grpc_web: None,
            #[cfg(feature = "tls")]
            tls: None,
            #[cfg(feature = "reflection")]
            reflection: None,
        }
    }
}

impl ServerBuilder {
    /// Adds a service, routed by its fully qualified name.
    pub fn add_service<S>(mut self, service: S) -> Self
    where
        S: tower_service::Service<
                http::Request<tonic::body::Body>,
                Response = http::Response<tonic::body::Body>,
                Error = Infallible,
            > + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        self.services.push(S::NAME);
        #[cfg(feature = "gateway")]
        self.by_name
            .0
            .push((S::NAME, crate::gateway::backend(service.clone())));
        self.routes.add_service(service);
        self
    }

    /// The health statuses this server reports over `grpc.health.v1` (served by default):
    /// change them by hand, e.g. while a dependency is down.
    pub fn health_reporter(&self) -> Option<HealthReporter> {
        self.health.clone()
    }

    /// Does not serve `grpc.health.v1`.
    pub fn without_health(mut self) -> Self {
        self.health = None;
        self
    }

    /// How long to wait, after deregistering and turning `NOT_SERVING` at shutdown, before
    /// refusing new calls and draining: time for clients that do not watch (go-zero's, for
    /// one) to notice. Default: none.
    pub fn drain_delay(mut self, delay: Duration) -> Self {
        self.drain_delay = delay;
        self
    }

    /// Serves `dev` (metrics and an HTTP health probe, go-zero's `DevServer`) over HTTP on
    /// `addr`, e.g. `0.0.0.0:6060`, from when the server starts until it stops. The port is
    /// bound when serving starts, before the server registers itself anywhere, and failing
    /// to bind it fails the start.
    pub fn dev_server(mut self, addr: impl Into<String>, dev: DevServer) -> Self {
        self.dev_server = Some((dev, DevListener::Addr(addr.into())));
        self
    }

    /// [`dev_server`](Self::dev_server) on a bound listener.
    pub fn dev_server_on(mut self, listener: TcpListener, dev: DevServer) -> Self {
        self.dev_server = Some((dev, DevListener::Bound(listener)));
        self
    }

    /// Binds the dev server's port, if it has an address only.
    async fn bind_dev_server(&mut self) -> Result<(), Error> {
        if let Some((_, listener)) = &mut self.dev_server
            && let DevListener::Addr(addr) = listener
        {
            let bound = TcpListener::bind(addr.as_str()).await.map_err(|e| {
                Error::io(std::io::Error::new(
                    e.kind(),
                    format!("dev server on {addr}: {e}"),
                ))
            })?;
            *listener = DevListener::Bound(bound);
        }
        Ok(())
    }

    /// Publishes the server in etcd once it listens ([`serve`](Self::serve) and friends),
    /// and revokes the registration first thing at shutdown.
    #[cfg(feature = "etcd")]
    pub fn register(mut self, registration: crate::discovery::etcd::RegistrationBuilder) -> Self {
        self.registration = Some(registration);
        self
    }

    /// Adds an interceptor around every call of every service on this server. The first one
    /// added runs outermost; see [`crate::interceptor`].
    pub fn interceptor(mut self, interceptor: impl Interceptor) -> Self {
        self.interceptors.push(Arc::new(interceptor));
        self
    }

    /// A circuit breaker per method: while a method's recent calls fail (by default with
    /// go-zero's failure codes), a share of its new calls is refused with `UNAVAILABLE`
    /// before reaching the handler. Default: off (on from a YAML config, as in go-zero).
    /// See [`crate::protection`].
    pub fn breaker(mut self, breaker: Breaker) -> Self {
        self.protection.set_breaker(breaker);
        self
    }

    /// Adaptive load shedding: while the CPU is over the threshold and more unary calls are
    /// in flight than the server has been completing, new ones are refused with
    /// `RESOURCE_EXHAUSTED`. Default: off (on at 900 millicpu from a YAML config, as in
    /// go-zero). See [`crate::protection`].
    pub fn shedding(mut self, shedding: Shedding) -> Self {
        self.protection.set_shedding(shedding);
        self
    }

    /// At most `max` calls in flight (streams count until they end); beyond it calls are
    /// refused at once with `RESOURCE_EXHAUSTED`, never queued. Default: no limit.
    ///
    /// # Panics
    /// If `max` is 0.
    pub fn concurrency_limit(mut self, max: usize) -> Self {
        self.protection.set_limit(max);
        self
    }

    /// Records every call in `metrics` (the same as
    /// `.interceptor(metrics.server())`, at this point of the chain), and also the calls
    /// the breaker, shedding and concurrency limit refuse, which no interceptor sees
    /// (`rzero_server_refused_total`).
    pub fn metrics(mut self, metrics: &crate::metrics::Metrics) -> Self {
        self.protection.set_metrics(metrics.clone());
        self.interceptor(metrics.server())
    }

    /// Upper bound on how long any call may run, whatever deadline the client sent; the
    /// handler is dropped (cancelled) when it passes and the client gets `DEADLINE_EXCEEDED`.
    /// Default: none (the client's `grpc-timeout` alone applies).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// [`timeout`](Self::timeout) for one method, by path (`/pkg.Service/Method`),
    /// overriding the server-wide one.
    pub fn method_timeout(mut self, path: impl Into<String>, timeout: Duration) -> Self {
        self.method_timeouts.insert(path.into(), timeout);
        self
    }

    /// Also answers REST/JSON requests through `gateway` on the same port: requests whose
    /// `Content-Type` starts with `application/grpc` go to the services, all others (HTTP/1.1
    /// or h2c) to the gateway, which calls the services in-process (through the
    /// interceptors and time limits, without a network hop).
    ///
    /// A builder made by a YAML config whose `Gateway` section has a `ListenOn`
    /// (`rzero::config::GatewayConfig`) serves it there instead, as
    /// [`gateway_on`](Self::gateway_on) would, binding the port when serving starts.
    #[cfg(feature = "gateway")]
    pub fn gateway(mut self, gateway: crate::gateway::Gateway) -> Self {
        self.gateway = Some((gateway, None));
        self
    }

    /// Serves the gateway [`gateway`](Self::gateway) adds on `addr` instead of the gRPC
    /// port: a config's `Gateway.ListenOn`.
    #[cfg(all(feature = "gateway", feature = "config"))]
    pub(crate) fn gateway_listen_on(mut self, addr: String) -> Self {
        self.gateway_addr = Some(addr);
        self
    }

    /// Binds the gateway's own port, if it has an address only; fails when an address was
    /// given for a gateway that was never added.
    #[cfg(feature = "gateway")]
    async fn bind_gateway(&mut self) -> Result<(), Error> {
        let Some(addr) = self.gateway_addr.take() else {
            return Ok(());
        };
        match &mut self.gateway {
            Some((_, listener @ None)) => {
                let bound = TcpListener::bind(addr.as_str()).await.map_err(|e| {
                    Error::io(std::io::Error::new(
                        e.kind(),
                        format!("gateway on {addr}: {e}"),
                    ))
                })?;
                *listener = Some(bound);
                Ok(())
            }
            // A listener given in code (`gateway_on`) wins.
            Some((_, Some(_))) => Ok(()),
            None => Err(Error::config(format!(
                "Gateway.ListenOn is {addr}, but no gateway was added (ServerBuilder::gateway)"
            ))),
        }
    }

    /// Like [`gateway`](Self::gateway), but serves the gateway on its own `listener`
    /// (HTTP/1.1 and h2c), next to the gRPC port, until the same shutdown signal.
    #[cfg(feature = "gateway")]
    pub fn gateway_on(mut self, listener: TcpListener, gateway: crate::gateway::Gateway) -> Self {
        self.gateway = Some((gateway, Some(listener)));
        self
    }

    /// Also answers gRPC-Web (browsers' gRPC) on the gRPC port, next to gRPC and a gateway on
    /// the same port: requests with an `application/grpc-web*` content type, over HTTP/1.1
    /// or HTTP/2, reach the same services through the same interceptors and limits. With
    /// [`GrpcWeb::cors`], pages from other origins may call. See [`GrpcWeb`].
    #[cfg(feature = "grpc-web")]
    pub fn grpc_web(mut self, grpc_web: GrpcWeb) -> Self {
        self.grpc_web = Some(grpc_web);
        self
    }

    /// Serves over TLS (mutual TLS when `tls` has a client CA): gRPC, and the gateway on the
    /// same port or on its own ([`gateway_on`](Self::gateway_on)). A port that also serves
    /// the gateway or gRPC-Web offers ALPN `h2` and `http/1.1`, a gRPC-only port `h2`.
    /// Handlers see a verified client certificate chain through
    /// [`Request::peer_certs`](tonic::Request::peer_certs). See [`crate::tls`].
    ///
    /// Applies to [`serve`](Self::serve) and its siblings, not to the in-process server of
    /// `rzero::testing`.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: crate::tls::ServerTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Serves gRPC server reflection (`grpc.reflection.v1` and `v1alpha`), describing the
    /// services from `descriptor_sets`: the `FILE_DESCRIPTOR_SET` constants
    /// `protoc-gen-rzero` generates, one per package with a server (or any encoded
    /// `google.protobuf.FileDescriptorSet`). It lists the services this server serves,
    /// health and reflection included. Calling it again adds sets; sets sharing files are
    /// merged. Default: not served. See [`crate::reflection`].
    ///
    /// `serve` fails if a set does not decode.
    #[cfg(feature = "reflection")]
    pub fn reflection(mut self, descriptor_sets: &[&[u8]]) -> Self {
        self.reflection.get_or_insert_with(Vec::new).extend(
            descriptor_sets
                .iter()
                .map(|set| bytes::Bytes::copy_from_slice(set)),
        );
        self
    }

    /// Serves on `addr` until SIGINT or SIGTERM, then drains in-flight calls and returns.
    pub async fn serve(self, addr: &str) -> Result<(), Error> {
        let listener = TcpListener::bind(addr).await.map_err(Error::io)?;
        self.serve_with_listener(listener, shutdown_signal()).await
    }

    /// Serves on `addr` until `signal` completes, then drains in-flight calls and returns.
    pub async fn serve_with_shutdown<F>(self, addr: &str, signal: F) -> Result<(), Error>
    where
        F: Future<Output = ()> + Send,
    {
        let listener = TcpListener::bind(addr).await.map_err(Error::io)?;
        self.serve_with_listener(listener, signal).await
    }

    /// Serves on an already-bound listener (bind `127.0.0.1:0` to let the OS pick a port)
    /// until `signal` completes.
    ///
    /// Shutdown runs in this order: the etcd registration (if any) is revoked, every health
    /// status turns `NOT_SERVING`, the [`drain_delay`](Self::drain_delay) passes, then the
    /// listener closes and in-flight calls finish; the [dev server](Self::dev_server) stops
    /// last.
    // `mut` for the optional etcd and TLS parts.
    #[allow(unused_mut)]
    pub async fn serve_with_listener<F>(
        mut self,
        listener: TcpListener,
        signal: F,
    ) -> Result<(), Error>
    where
        F: Future<Output = ()> + Send,
    {
        self.mark_serving();
        // Before registering: a TLS setting that cannot work must fail the start.
        #[cfg(feature = "tls")]
        let tls = self.tls_accept(self.serves_http1())?;
        // Likewise a CORS policy that cannot work.
        #[cfg(feature = "grpc-web")]
        if let Some(grpc_web) = &self.grpc_web {
            grpc_web.clone().compile(Vec::new(), false)?;
        }
        self.bind_dev_server().await?;
        #[cfg(feature = "gateway")]
        self.bind_gateway().await?;
        #[cfg(feature = "etcd")]
        let registration = match self.registration.take() {
            Some(builder) => {
                let listening = listener.local_addr().map_err(Error::io)?;
                Some(builder.start(listening).await.map_err(Error::io)?)
            }
            None => None,
        };
        // Stop being found before anything else.
        let shutdown = async move {
            signal.await;
            #[cfg(feature = "etcd")]
            if let Some(registration) = registration {
                registration.stop().await;
            }
        };
        let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
        #[cfg(feature = "tls")]
        if let Some(tls) = tls {
            return self
                .serve_with_incoming(tls.incoming(incoming), shutdown)
                .await;
        }
        self.serve_with_incoming(incoming, shutdown).await
    }

    /// Whether the gateway shares the gRPC port.
    fn gateway_shares_port(&self) -> bool {
        #[cfg(feature = "gateway")]
        {
            matches!(self.gateway, Some((_, None))) && self.gateway_addr.is_none()
        }
        #[cfg(not(feature = "gateway"))]
        {
            false
        }
    }

    /// Whether the gRPC port also takes HTTP/1.1: for a gateway sharing it, or gRPC-Web.
    fn serves_http1(&self) -> bool {
        #[cfg(feature = "grpc-web")]
        if self.grpc_web.is_some() {
            return true;
        }
        self.gateway_shares_port()
    }

    /// The names of the services a gRPC-Web preflight may ask for: those added, health and
    /// reflection.
    #[cfg(feature = "grpc-web")]
    fn hosted(&self) -> Vec<Box<str>> {
        let mut hosted = self.services.clone();
        if let Some(health) = &self.health {
            hosted.push(name_of(&health.service()));
        }
        #[cfg(feature = "reflection")]
        if self.reflection.is_some() {
            use crate::reflection::pb::{v1, v1alpha};
            use crate::reflection::{V1, V1Alpha};
            use v1::server_reflection_server::ServerReflectionServer as V1Server;
            use v1alpha::server_reflection_server::ServerReflectionServer as V1AlphaServer;
            hosted.extend([
                <V1Server<V1> as NamedService>::NAME,
                <V1AlphaServer<V1Alpha> as NamedService>::NAME,
            ]);
        }
        hosted.into_iter().map(Box::from).collect()
    }

    /// How to accept TLS on a port (`http1`: that also serves the gateway or gRPC-Web), when
    /// TLS is set.
    #[cfg(feature = "tls")]
    fn tls_accept(&self, http1: bool) -> Result<Option<crate::tls::TlsAccept>, Error> {
        let alpn = if http1 {
            crate::tls::Alpn::H2AndHttp1
        } else {
            crate::tls::Alpn::H2
        };
        self.tls
            .as_ref()
            .map(|tls| tls.accept(alpn))
            .transpose()
            .map_err(Error::tls)
    }

    /// Every service, and the server as a whole (`""`), `SERVING`.
    fn mark_serving(&self) {
        if let Some(health) = &self.health {
            health.set_serving("");
            for service in &self.services {
                health.set_serving(service);
            }
        }
    }

    /// Serves connections from any stream of byte streams (TCP, in-memory duplex pipes, ...)
    /// until `signal` completes. Every way of serving ends here, so all of them run the same
    /// HTTP/2 stack, limits and dispatch.
    pub(crate) async fn serve_with_incoming<I, IO, IE, F>(
        mut self,
        incoming: I,
        signal: F,
    ) -> Result<(), Error>
    where
        I: tokio_stream::Stream<Item = Result<IO, IE>>,
        IO: tokio::io::AsyncRead
            + tokio::io::AsyncWrite
            + tonic::transport::server::Connected
            + Unpin
            + Send
            + 'static,
        IE: Into<Box<dyn std::error::Error + Send + Sync>>,
        F: Future<Output = ()>,
    {
        self.mark_serving();
        let http1 = self.serves_http1();
        #[cfg(feature = "grpc-web")]
        let grpc_web = match self.grpc_web.take() {
            Some(grpc_web) => {
                let hosted = self.hosted();
                Some(Arc::new(
                    grpc_web.compile(hosted, self.gateway_shares_port())?,
                ))
            }
            None => None,
        };
        self.bind_dev_server().await?;
        #[cfg(feature = "gateway")]
        self.bind_gateway().await?;
        #[cfg(feature = "reflection")]
        self.add_reflection()?;
        // The gateway's own port, when it has one, takes TLS too.
        #[cfg(all(feature = "tls", feature = "gateway"))]
        let rest_tls = match &self.gateway {
            Some((_, Some(_))) => self.tls_accept(true)?,
            _ => None,
        };
        if let Some(health) = &self.health {
            self.routes.add_service(health.service());
        }
        let health = self.health.clone();
        let drain_delay = self.drain_delay;
        // CPU sampling for shedding, for as long as the server runs.
        let _background = self
            .protection
            .background()
            .map(|work| AbortOnDrop(tokio::spawn(work)));
        // The dev server's health probe follows the server's own status; a server without
        // `grpc.health.v1` gets a status of its own, for the probe only.
        let (dev_health, _dev_server) = match self.dev_server.take() {
            Some((dev, DevListener::Bound(listener))) => {
                let reporter = self.health.clone().unwrap_or_else(|| {
                    let reporter = HealthReporter::default();
                    reporter.set_serving("");
                    reporter
                });
                let task = tokio::spawn(dev.serve(listener, reporter.clone()));
                (Some(reporter), Some(AbortOnDrop(task)))
            }
            // Bound above.
            Some((_, DevListener::Addr(_))) | None => (None, None),
        };
        let signal = async move {
            signal.await;
            if let Some(health) = &health {
                health.set_all_not_serving();
            }
            if let Some(health) = &dev_health {
                health.set_all_not_serving();
            }
            if !drain_delay.is_zero() {
                tokio::time::sleep(drain_delay).await;
            }
            if let Some(health) = &health {
                health.close_watches();
            }
        };
        let service = WithSettings {
            routes: self.routes.routes().prepare(),
            settings: Arc::new(CallSettings {
                chain: Arc::new(self.interceptors),
                protection: self.protection,
                timeout: self.timeout,
                method_timeouts: self.method_timeouts,
            }),
        };
        let server = tonic::transport::Server::builder().accept_http1(http1);
        #[cfg(feature = "gateway")]
        let (gateway, rest) = match self.gateway {
            None => (None, None),
            Some((gateway, listener)) => {
                let gateway = gateway.with_backend(in_process(self.by_name, service.clone()));
                match listener {
                    None => (Some(gateway), None),
                    Some(listener) => (None, Some((gateway, listener))),
                }
            }
        };
        // What the gRPC port serves: the gRPC routes alone (the common case, without a
        // front's dispatch in the way), or with the gateway and gRPC-Web next to them.
        #[cfg(any(feature = "gateway", feature = "grpc-web"))]
        let (signal, shutdown) = crate::drain::Shutdown::on(signal);
        let front = Front {
            grpc: service,
            #[cfg(feature = "gateway")]
            gateway,
            #[cfg(feature = "grpc-web")]
            web: grpc_web,
            #[cfg(any(feature = "gateway", feature = "grpc-web"))]
            shutdown,
        };
        let grpc = async move {
            if front.is_bare() {
                server
                    .serve_with_incoming_shutdown(front.grpc, incoming, signal)
                    .await
            } else {
                server
                    .serve_with_incoming_shutdown(front, incoming, signal)
                    .await
            }
            .map_err(Error::transport)
        };
        #[cfg(feature = "gateway")]
        if let Some((gateway, listener)) = rest {
            // One signal, two servers: the gateway stops when the gRPC server is told to.
            let (stop, stopped) = tokio::sync::watch::channel(false);
            let grpc = async {
                let result = grpc.await;
                let _ = stop.send(true);
                result
            };
            let mut stopped_rx = stopped.clone();
            let rest_signal = async move {
                let _ = stopped_rx.wait_for(|stop| *stop).await;
            };
            let rest = async move {
                #[cfg(feature = "tls")]
                if let Some(tls) = rest_tls {
                    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
                    return crate::gateway::serve_incoming(
                        tls.incoming(incoming),
                        gateway,
                        rest_signal,
                    )
                    .await;
                }
                crate::gateway::serve(listener, gateway, rest_signal).await
            };
            let (grpc, rest) = tokio::join!(grpc, rest);
            drop(stopped);
            return grpc.and(rest);
        }
        grpc.await
    }

    /// Mounts the reflection services, if asked for, describing every service mounted by
    /// then (health and reflection included).
    #[cfg(feature = "reflection")]
    fn add_reflection(&mut self) -> Result<(), Error> {
        use crate::reflection::pb::{v1, v1alpha};
        use crate::reflection::{Descriptors, V1, V1Alpha};
        use v1::server_reflection_server::ServerReflectionServer as V1Server;
        use v1alpha::server_reflection_server::ServerReflectionServer as V1AlphaServer;
        let Some(sets) = self.reflection.take() else {
            return Ok(());
        };
        let mut services = self.services.clone();
        let mut health_set: &[u8] = &[];
        if let Some(health) = &self.health {
            services.push(name_of(&health.service()));
            health_set = crate::health::pb::FILE_DESCRIPTOR_SET;
        }
        services.extend([
            <V1Server<V1> as NamedService>::NAME,
            <V1AlphaServer<V1Alpha> as NamedService>::NAME,
        ]);
        let sets = sets.iter().map(|set| set.as_ref()).chain([health_set]);
        let descriptors = Arc::new(Descriptors::new(sets, &services).map_err(Error::reflection)?);
        self.routes
            .add_service(V1Server::new(V1(Arc::clone(&descriptors))));
        self.routes
            .add_service(V1AlphaServer::new(V1Alpha(descriptors)));
        Ok(())
    }

    /// The services collected so far, as tonic `Routes` (to mount on another stack).
    pub fn into_routes(self) -> Routes {
        self.routes.routes()
    }
}

/// The name a service is routed by.
#[cfg(any(feature = "reflection", feature = "grpc-web"))]
fn name_of<S: NamedService>(_: &S) -> &'static str {
    S::NAME
}

/// What every call on an `rzero::Server` runs with, handed to the dispatch functions through
/// the request extensions (a generated service mounted elsewhere gets none of it).
#[derive(Debug, Default)]
pub(crate) struct CallSettings {
    pub(crate) chain: Arc<Chain>,
    pub(crate) protection: ServerProtection,
    timeout: Option<Duration>,
    method_timeouts: HashMap<String, Duration>,
}

impl CallSettings {
    /// The server's time limit for calls of the method at `path`.
    pub(crate) fn timeout_for(&self, path: &str) -> Option<Duration> {
        self.method_timeouts.get(path).copied().or(self.timeout)
    }
}

/// Where the dev server listens: an address to bind when serving starts, or a listener.
#[derive(Debug)]
enum DevListener {
    Addr(String),
    Bound(TcpListener),
}

/// A task stopped when the server that started it stops.
#[derive(Debug)]
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The routes, with the server's [`CallSettings`] put into every request's extensions.
#[derive(Debug, Clone)]
struct WithSettings {
    routes: Routes,
    settings: Arc<CallSettings>,
}

impl<B> tower_service::Service<http::Request<B>> for WithSettings
where
    Routes: tower_service::Service<http::Request<B>>,
{
    type Response = <Routes as tower_service::Service<http::Request<B>>>::Response;
    type Error = <Routes as tower_service::Service<http::Request<B>>>::Error;
    type Future = <Routes as tower_service::Service<http::Request<B>>>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        tower_service::Service::poll_ready(&mut self.routes, cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        request.extensions_mut().insert(Arc::clone(&self.settings));
        self.routes.call(request)
    }
}

/// The services added to a server, by name, type-erased for [`in_process`].
#[cfg(feature = "gateway")]
#[derive(Default)]
struct ByName(Vec<(&'static str, crate::gateway::Backend)>);

#[cfg(feature = "gateway")]
impl std::fmt::Debug for ByName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(name, _)| name))
            .finish()
    }
}

/// The gateway's way to the services in-process: straight to the service a call names,
/// with the server's settings as [`WithSettings`] adds them, skipping the gRPC router's path
/// matching (a few percent of a small call); other paths (health, reflection, unknown
/// services) go through the router.
#[cfg(feature = "gateway")]
fn in_process(by_name: ByName, routes: WithSettings) -> crate::gateway::Backend {
    let settings = Arc::clone(&routes.settings);
    let routes = crate::gateway::backend(routes);
    let by_name: Arc<[_]> = by_name.0.into();
    Arc::new(move |mut request: http::Request<tonic::body::Body>| {
        let service = request
            .uri()
            .path()
            .strip_prefix('/')
            .and_then(|path| path.rsplit_once('/'))
            .map(|(service, _)| service);
        match by_name.iter().find(|(name, _)| Some(*name) == service) {
            Some((_, backend)) => {
                request.extensions_mut().insert(Arc::clone(&settings));
                backend(request)
            }
            None => routes(request),
        }
    })
}

/// The gRPC port's dispatch when it serves more than gRPC: gRPC-Web requests (and their
/// preflights) to gRPC-Web, other requests whose `Content-Type` starts with
/// `application/grpc` to the services, all others to the gateway on the same port, if
/// there is one. With gRPC-Web on, any other HTTP/1.1 request gets 400, as tonic-web
/// answers it: gRPC needs HTTP/2.
#[derive(Debug, Clone)]
struct Front {
    grpc: WithSettings,
    #[cfg(feature = "gateway")]
    gateway: Option<crate::gateway::GatewayService>,
    #[cfg(feature = "grpc-web")]
    web: Option<Arc<grpc_web::Web>>,
    /// Many answers to HTTP/1.1 requests come before the end of their bodies: the rest is
    /// drained (until this says the server is stopping), so the connection is kept.
    #[cfg(any(feature = "gateway", feature = "grpc-web"))]
    shutdown: crate::drain::Shutdown,
}

impl Front {
    /// Whether there is nothing but gRPC to serve.
    fn is_bare(&self) -> bool {
        #[allow(unused_mut)] // without the gateway and gRPC-Web, always
        let mut bare = true;
        #[cfg(feature = "gateway")]
        {
            bare &= self.gateway.is_none();
        }
        #[cfg(feature = "grpc-web")]
        {
            bare &= self.web.is_none();
        }
        bare
    }
}

impl tower_service::Service<http::Request<tonic::body::Body>> for Front {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = tonic::codegen::BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        #[cfg(feature = "grpc-web")]
        if let Some(web) = &self.web
            && web.takes(&request)
        {
            let web = Arc::clone(web);
            let grpc = self.grpc.clone();
            let request = crate::drain::drain_when_dropped(request, &self.shutdown);
            return Box::pin(async move { Ok(web.call(grpc, request).await) });
        }
        #[cfg(feature = "gateway")]
        if let Some(gateway) = &mut self.gateway
            && !request
                .headers()
                .get(http::header::CONTENT_TYPE)
                .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
        {
            let request = crate::drain::drain_when_dropped(request, &self.shutdown);
            return tower_service::Service::call(gateway, request);
        }
        #[cfg(feature = "grpc-web")]
        if self.web.is_some() && request.version() < http::Version::HTTP_2 {
            let request = crate::drain::drain_when_dropped(request, &self.shutdown);
            return Box::pin(async move {
                drop(request);
                Ok(grpc_web::status_response(
                    http::StatusCode::BAD_REQUEST,
                    tonic::Code::InvalidArgument,
                    "gRPC needs HTTP/2; over HTTP/1.1 this port takes gRPC-Web",
                ))
            });
        }
        let mut routes = self.grpc.clone();
        Box::pin(async move {
            std::future::poll_fn(|cx| {
                tower_service::Service::<http::Request<tonic::body::Body>>::poll_ready(
                    &mut routes,
                    cx,
                )
            })
            .await?;
            tower_service::Service::call(&mut routes, request).await
        })
    }
}

/// Completes on SIGINT (Ctrl-C) or, on Unix, SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        // If the handler cannot be installed, never complete rather than shut down at once.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
