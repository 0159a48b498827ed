//! The client side: [`ClientTls`], and the connector that wraps a client's connections.

use std::fmt;
use std::future::Future;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls;
use tokio_rustls::rustls::client::ResolvesClientCert;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::sign::CertifiedKey;

use super::pem::{Pem, certified_key};
use super::{CLIENT_AUTH_VERDICT_WAIT, TlsError, provider};

/// A client's TLS settings: the CA certificates it trusts, optionally its own certificate
/// and key (for servers that require mutual TLS), and optionally the name to expect in
/// server certificates. Give it to [`ClientBuilder::tls`](crate::client::ClientBuilder::tls).
///
/// The name a server certificate must carry is, unless [`server_name`](Self::server_name)
/// says otherwise: the host of a direct target, the host of a `dns:///host:port` target,
/// and for other resolvers (`static:///`, `etcd://`) the host of each endpoint address
/// (IP addresses are matched against the certificate's IP SANs).
#[derive(Clone)]
pub struct ClientTls {
    roots: Arc<rustls::RootCertStore>,
    identity: Option<Arc<CertifiedKey>>,
    server_name: Option<ServerName<'static>>,
}

impl ClientTls {
    /// Trusts the CA certificates in `pem` (one or more `CERTIFICATE` blocks).
    pub fn from_ca_pem(pem: &[u8]) -> Result<Self, TlsError> {
        Self::new(&Pem::memory(pem, "CA"))
    }

    /// Trusts the CA certificates in the PEM file at `path`.
    pub fn from_ca_file(path: impl AsRef<Path>) -> Result<Self, TlsError> {
        Self::new(&Pem::file(path.as_ref(), "CA")?)
    }

    fn new(roots: &Pem) -> Result<Self, TlsError> {
        Ok(Self {
            roots: Arc::new(roots.roots()?),
            identity: None,
            server_name: None,
        })
    }

    /// Presents this PEM certificate chain (end entity first) and PEM private key to
    /// servers that ask for one.
    pub fn identity_pem(mut self, cert_chain: &[u8], key: &[u8]) -> Result<Self, TlsError> {
        self.identity = Some(certified_key(
            &Pem::memory(cert_chain, "client certificate"),
            &Pem::memory(key, "client private key"),
        )?);
        Ok(self)
    }

    /// [`identity_pem`](Self::identity_pem) from files.
    pub fn identity_files(
        mut self,
        cert_chain: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<Self, TlsError> {
        self.identity = Some(certified_key(
            &Pem::file(cert_chain.as_ref(), "client certificate")?,
            &Pem::file(key.as_ref(), "client private key")?,
        )?);
        Ok(self)
    }

    /// Expects every server certificate to be for `name` (a DNS name or an IP address),
    /// whatever address the connection goes to: for servers found by IP address (etcd,
    /// static lists) that share a certificate.
    pub fn server_name(mut self, name: &str) -> Result<Self, TlsError> {
        let parsed = ServerName::try_from(name)
            .map_err(|error| TlsError::new(format!("server name `{name}`: {error}")))?;
        self.server_name = Some(parsed.to_owned());
        Ok(self)
    }

    /// The connector for a client's connections; `target_host` is the name to expect
    /// unless [`server_name`](Self::server_name) set one (`None`: each address's host).
    pub(crate) fn connector(&self, target_host: Option<&str>) -> Result<TlsConnector, TlsError> {
        let config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|error| TlsError::new(format!("TLS client settings: {error}")))?
            .with_root_certificates(Arc::clone(&self.roots))
            .with_no_client_auth();
        let server_name = match (&self.server_name, target_host) {
            (Some(name), _) => Some(name.clone()),
            (None, Some(host)) => Some(parse_host(host)?),
            (None, None) => None,
        };
        Ok(TlsConnector {
            config: Arc::new(config),
            identity: self.identity.clone(),
            server_name,
        })
    }
}

impl fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientTls")
            .field("roots", &self.roots.len())
            .field("identity", &self.identity.is_some())
            .field("server_name", &self.server_name)
            .finish()
    }
}

/// A host (no port, IPv6 without brackets) as a server name.
fn parse_host(host: &str) -> Result<ServerName<'static>, TlsError> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host)
        .map(|name| name.to_owned())
        .map_err(|error| {
            TlsError::new(format!(
                "`{host}` cannot be checked against a certificate ({error}); \
                 set ClientTls::server_name"
            ))
        })
}

/// The host of `host:port` (or `[v6]:port`).
pub(crate) fn host_of(addr: &str) -> &str {
    let host = match addr.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => addr,
    };
    host.trim_start_matches('[').trim_end_matches(']')
}

/// Wraps a client's connections in TLS (ALPN `h2`).
#[derive(Clone)]
pub(crate) struct TlsConnector {
    config: Arc<rustls::ClientConfig>,
    identity: Option<Arc<CertifiedKey>>,
    /// The name to expect; `None`: the host of each address.
    server_name: Option<ServerName<'static>>,
}

impl fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConnector")
            .field("identity", &self.identity.is_some())
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

/// A TLS handshake that failed, with rustls' reason.
#[derive(Debug)]
pub(crate) struct HandshakeFailed {
    source: io::Error,
}

impl fmt::Display for HandshakeFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TLS handshake failed: {}", self.source)
    }
}

impl std::error::Error for HandshakeFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

impl TlsConnector {
    /// Runs the client handshake on `io`, a connection to `addr` (`host:port`).
    pub(crate) async fn handshake<IO>(
        &self,
        addr: &str,
        io: IO,
    ) -> Result<TlsIo<IO>, HandshakeFailed>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let failed = |source: io::Error| HandshakeFailed { source };
        let name = match &self.server_name {
            Some(name) => name.clone(),
            None => parse_host(host_of(addr))
                .map_err(|error| failed(io::Error::new(io::ErrorKind::InvalidInput, error)))?,
        };
        // A config per connection, sharing everything but the resolver, which records
        // whether this server asked for a certificate.
        let resolver = Arc::new(RecordingResolver {
            identity: self.identity.clone(),
            asked: AtomicBool::new(false),
        });
        let mut config = (*self.config).clone();
        config.alpn_protocols = vec![b"h2".to_vec()];
        config.client_auth_cert_resolver = Arc::clone(&resolver) as Arc<dyn ResolvesClientCert>;
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let mut stream = connector.connect(name, io).await.map_err(failed)?;
        let mut prefix = Vec::new();
        let tls13 = stream.get_ref().1.protocol_version() == Some(rustls::ProtocolVersion::TLSv1_3);
        if tls13 && resolver.asked.load(Ordering::Acquire) {
            // The server has yet to judge our certificate: wait for its first bytes or its
            // alert (see the module docs).
            prefix.resize(16 * 1024, 0);
            match tokio::time::timeout(CLIENT_AUTH_VERDICT_WAIT, stream.read(&mut prefix)).await {
                Ok(Ok(0)) => {
                    return Err(failed(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        "the server closed the connection after the handshake \
                         (did it refuse the client certificate?)",
                    )));
                }
                Ok(Ok(read)) => prefix.truncate(read),
                Ok(Err(error)) => return Err(failed(error)),
                Err(_) => prefix.clear(),
            }
        }
        Ok(TlsIo {
            stream,
            prefix,
            read: 0,
        })
    }

    /// Opens a TCP connection to `addr` and runs the handshake: the connector of a direct
    /// client.
    pub(crate) fn direct(&self) -> DirectConnector {
        DirectConnector { tls: self.clone() }
    }
}

/// Remembers whether the server asked for a client certificate.
#[derive(Debug)]
struct RecordingResolver {
    identity: Option<Arc<CertifiedKey>>,
    asked: AtomicBool,
}

impl ResolvesClientCert for RecordingResolver {
    fn resolve(
        &self,
        _acceptable_issuers: &[&[u8]],
        _sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        self.asked.store(true, Ordering::Release);
        self.identity.clone()
    }

    fn has_certs(&self) -> bool {
        self.identity.is_some()
    }
}

/// A client TLS connection, with the bytes read while waiting for the server's verdict on
/// our certificate put back in front.
#[derive(Debug)]
pub(crate) struct TlsIo<IO> {
    stream: TlsStream<IO>,
    prefix: Vec<u8>,
    read: usize,
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncRead for TlsIo<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.read < this.prefix.len() {
            let left = &this.prefix[this.read..];
            let n = left.len().min(buf.remaining());
            buf.put_slice(&left[..n]);
            this.read += n;
            if this.read == this.prefix.len() {
                this.prefix = Vec::new();
                this.read = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncWrite for TlsIo<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
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

/// A connection with or without TLS, for connectors that do both.
#[derive(Debug)]
pub(crate) enum MaybeTls<IO> {
    Plain(IO),
    Tls(Box<TlsIo<IO>>),
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncRead for MaybeTls<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(io) => Pin::new(io).poll_read(cx, buf),
            Self::Tls(io) => Pin::new(io.as_mut()).poll_read(cx, buf),
        }
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncWrite for MaybeTls<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(io) => Pin::new(io).poll_write(cx, buf),
            Self::Tls(io) => Pin::new(io.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(io) => Pin::new(io).poll_flush(cx),
            Self::Tls(io) => Pin::new(io.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(io) => Pin::new(io).poll_shutdown(cx),
            Self::Tls(io) => Pin::new(io.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(io) => Pin::new(io).poll_write_vectored(cx, bufs),
            Self::Tls(io) => Pin::new(io.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Plain(io) => io.is_write_vectored(),
            Self::Tls(io) => io.is_write_vectored(),
        }
    }
}

/// The connector of a direct client with TLS: TCP to the URI's authority, then the
/// handshake.
#[derive(Debug, Clone)]
pub(crate) struct DirectConnector {
    tls: TlsConnector,
}

/// A direct client's connection could not be opened (TCP or TLS).
#[derive(Debug)]
pub(crate) struct DirectConnectFailed {
    addr: String,
    source: io::Error,
}

impl fmt::Display for DirectConnectFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot connect to {}: {}", self.addr, self.source)
    }
}

impl std::error::Error for DirectConnectFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

impl tower_service::Service<http::Uri> for DirectConnector {
    type Response = TokioIo<TlsIo<TcpStream>>;
    type Error = DirectConnectFailed;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let tls = self.tls.clone();
        Box::pin(async move {
            let addr = match (uri.host(), uri.port_u16()) {
                (Some(host), Some(port)) => format!("{host}:{port}"),
                (Some(host), None) => format!("{host}:443"),
                (None, _) => uri.to_string(),
            };
            let failed = |source| DirectConnectFailed {
                addr: addr.clone(),
                source,
            };
            let tcp = TcpStream::connect(addr.as_str()).await.map_err(failed)?;
            tcp.set_nodelay(true).map_err(failed)?;
            let io = tls
                .handshake(&addr, tcp)
                .await
                .map_err(|error| failed(io::Error::other(error)))?;
            Ok(TokioIo::new(io))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_of_addresses() {
        assert_eq!(host_of("localhost:8080"), "localhost");
        assert_eq!(host_of("10.0.0.1:80"), "10.0.0.1");
        assert_eq!(host_of("[::1]:80"), "::1");
        assert_eq!(host_of("greeter.internal"), "greeter.internal");
        assert!(matches!(parse_host("::1"), Ok(ServerName::IpAddress(_))));
        assert!(matches!(parse_host("[::1]"), Ok(ServerName::IpAddress(_))));
        assert!(matches!(parse_host("a.b"), Ok(ServerName::DnsName(_))));
        let error = parse_host("bad name!").unwrap_err().to_string();
        assert!(error.contains("ClientTls::server_name"), "{error}");
    }
}
