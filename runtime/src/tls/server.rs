//! The server side: [`ServerTls`], and the stream of TLS connections a server serves.

use std::fmt;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::sign::{CertifiedKey, SingleCertAndKey};
use tokio_rustls::server::TlsStream;
use tokio_stream::Stream;

use super::pem::{Pem, certified_key};
use super::{TlsError, provider};

/// A server's TLS settings: its certificate chain and key, and optionally the CA that signs
/// client certificates (mutual TLS). Give it to
/// [`ServerBuilder::tls`](crate::ServerBuilder::tls).
///
/// Everything is read and checked here (files, PEM, that the key belongs to the
/// certificate), not at the first handshake.
#[derive(Clone)]
pub struct ServerTls {
    identity: Arc<CertifiedKey>,
    client_roots: Option<Arc<rustls::RootCertStore>>,
    client_auth: ClientAuth,
    handshake_timeout: Duration,
}

/// Whether clients must present a certificate, once [`ServerTls::client_ca_pem`] (or
/// `client_ca_file`) names the CA that signs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ClientAuth {
    /// Every client presents a certificate signed by the client CA, or the handshake fails.
    #[default]
    Required,
    /// A client may present one; one it presents must be valid. Handlers see no
    /// `peer_certs()` for clients without.
    Optional,
}

impl std::str::FromStr for ClientAuth {
    type Err = String;

    /// `required` or `optional`.
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "required" => Ok(Self::Required),
            "optional" => Ok(Self::Optional),
            other => Err(format!(
                "unknown client auth `{other}` (known: required, optional)"
            )),
        }
    }
}

/// Default bound on one TLS handshake on the server.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

impl ServerTls {
    /// From a PEM certificate chain (end entity first) and a PEM private key (PKCS#8,
    /// PKCS#1 or SEC1), in memory.
    pub fn from_pem(cert_chain: &[u8], key: &[u8]) -> Result<Self, TlsError> {
        Self::new(
            &Pem::memory(cert_chain, "certificate"),
            &Pem::memory(key, "private key"),
        )
    }

    /// From a PEM certificate chain file (end entity first) and a PEM private key file.
    pub fn from_pem_files(
        cert_chain: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<Self, TlsError> {
        Self::new(
            &Pem::file(cert_chain.as_ref(), "certificate")?,
            &Pem::file(key.as_ref(), "private key")?,
        )
    }

    fn new(chain: &Pem, key: &Pem) -> Result<Self, TlsError> {
        Ok(Self {
            identity: certified_key(chain, key)?,
            client_roots: None,
            client_auth: ClientAuth::Required,
            handshake_timeout: HANDSHAKE_TIMEOUT,
        })
    }

    /// Verifies client certificates against these PEM CA certificates; clients must
    /// present one unless [`client_auth`](Self::client_auth) says otherwise.
    pub fn client_ca_pem(self, pem: &[u8]) -> Result<Self, TlsError> {
        self.with_client_roots(&Pem::memory(pem, "client CA"))
    }

    /// [`client_ca_pem`](Self::client_ca_pem) from a file.
    pub fn client_ca_file(self, path: impl AsRef<Path>) -> Result<Self, TlsError> {
        self.with_client_roots(&Pem::file(path.as_ref(), "client CA")?)
    }

    fn with_client_roots(mut self, pem: &Pem) -> Result<Self, TlsError> {
        self.client_roots = Some(Arc::new(pem.roots()?));
        Ok(self)
    }

    /// Whether a client certificate is required (the default) or optional; matters only
    /// with a client CA.
    pub fn client_auth(mut self, mode: ClientAuth) -> Self {
        self.client_auth = mode;
        self
    }

    /// Bound on one handshake (default 10 s); a peer that takes longer is disconnected.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Accepts TLS connections offering `alpn`.
    pub(crate) fn accept(&self, alpn: Alpn) -> Result<TlsAccept, TlsError> {
        let builder = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|error| TlsError::new(format!("TLS server settings: {error}")))?;
        let builder = match &self.client_roots {
            None => builder.with_no_client_auth(),
            Some(roots) => {
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::clone(roots), provider());
                let verifier = match self.client_auth {
                    ClientAuth::Required => verifier,
                    ClientAuth::Optional => verifier.allow_unauthenticated(),
                };
                let verifier = verifier
                    .build()
                    .map_err(|error| TlsError::new(format!("client CA: {error}")))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder
            .with_cert_resolver(Arc::new(SingleCertAndKey::from(Arc::clone(&self.identity))));
        config.alpn_protocols = match alpn {
            Alpn::H2 => vec![b"h2".to_vec()],
            Alpn::H2AndHttp1 => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
        };
        Ok(TlsAccept {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            timeout: self.handshake_timeout,
        })
    }
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls")
            .field("certificates", &self.identity.cert.len())
            .field(
                "client_ca",
                &self.client_roots.as_ref().map(|roots| roots.len()),
            )
            .field("client_auth", &self.client_auth)
            .field("handshake_timeout", &self.handshake_timeout)
            .finish()
    }
}

/// The application protocols a TLS port offers.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Alpn {
    /// gRPC only.
    H2,
    /// gRPC and the REST gateway (HTTP/1.1 or HTTP/2).
    H2AndHttp1,
}

/// What a server needs to accept TLS connections on one port.
#[derive(Clone)]
pub(crate) struct TlsAccept {
    acceptor: TlsAcceptor,
    timeout: Duration,
}

impl fmt::Debug for TlsAccept {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsAccept")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl TlsAccept {
    /// TLS connections over the TCP connections of `tcp`.
    pub(crate) fn incoming<S>(self, tcp: S) -> TlsIncoming<S> {
        TlsIncoming {
            tcp,
            tcp_done: false,
            accept: self,
            handshakes: JoinSet::new(),
        }
    }
}

/// TLS connections over the TCP connections of `tcp`, each handshake on a task of its own
/// (bounded by the handshake timeout) so that none holds up the others. Failed handshakes
/// are logged and skipped. Dropping the stream (the server stopped accepting) ends the
/// handshakes still running.
pub(crate) struct TlsIncoming<S> {
    tcp: S,
    tcp_done: bool,
    accept: TlsAccept,
    handshakes: JoinSet<Option<TlsStream<TcpStream>>>,
}

impl<S> TlsIncoming<S> {
    fn start(&mut self, tcp: TcpStream) {
        let acceptor = self.accept.acceptor.clone();
        let timeout = self.accept.timeout;
        self.handshakes.spawn(async move {
            let peer = tcp.peer_addr().ok();
            match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => Some(stream),
                Ok(Err(error)) => {
                    tracing::debug!(?peer, %error, "TLS handshake failed");
                    None
                }
                Err(_) => {
                    tracing::debug!(?peer, ?timeout, "TLS handshake timed out");
                    None
                }
            }
        });
    }
}

impl<S> fmt::Debug for TlsIncoming<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsIncoming")
            .field("handshakes", &self.handshakes.len())
            .finish_non_exhaustive()
    }
}

impl<S> Stream for TlsIncoming<S>
where
    S: Stream<Item = io::Result<TcpStream>> + Unpin,
{
    type Item = io::Result<TlsStream<TcpStream>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        while !this.tcp_done {
            match Pin::new(&mut this.tcp).poll_next(cx) {
                Poll::Ready(Some(Ok(tcp))) => this.start(tcp),
                Poll::Ready(Some(Err(error))) => return Poll::Ready(Some(Err(error))),
                Poll::Ready(None) => this.tcp_done = true,
                Poll::Pending => break,
            }
        }
        loop {
            match this.handshakes.poll_join_next(cx) {
                Poll::Ready(Some(Ok(Some(stream)))) => return Poll::Ready(Some(Ok(stream))),
                // Failed (and logged), or the task panicked: next.
                Poll::Ready(Some(_)) => {}
                // No handshake running: the TCP side has registered for wake-up, unless done.
                Poll::Ready(None) if this.tcp_done => return Poll::Ready(None),
                Poll::Ready(None) | Poll::Pending => return Poll::Pending,
            }
        }
    }
}
