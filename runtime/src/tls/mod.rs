//! TLS and mutual TLS for servers, clients and the REST gateway, with rustls.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use rzero::tls::{ClientTls, ServerTls};
//!
//! // A server that asks every client for a certificate signed by `clients-ca.pem`.
//! let tls = ServerTls::from_pem_files("server.pem", "server.key")?.client_ca_file("clients-ca.pem")?;
//! let server = rzero::Server::builder().tls(tls); // .add_service(..).serve(..)
//!
//! // A client that trusts `ca.pem` and presents its own certificate.
//! let tls = ClientTls::from_ca_file("ca.pem")?.identity_files("client.pem", "client.key")?;
//! let client = rzero::Client::builder("dns:///greeter.internal:8080").tls(tls).build()?;
//! # Ok(()) }
//! ```
//!
//! Handlers read the verified client certificate chain with tonic's
//! [`Request::peer_certs`](tonic::Request::peer_certs) (end entity first).
//!
//! # Decisions
//! - **rustls with the `ring` provider**, the same rustls tonic's `tls-ring` feature uses
//!   (one copy in the tree, ring shared with the JWT code). The provider is passed
//!   explicitly, so a process that also links aws-lc-rs, or installs another default
//!   provider, gets no panic and no surprise.
//! - **The server terminates TLS itself** (tokio-rustls) instead of using tonic's
//!   `tls_config`: tonic offers only ALPN `h2`, and a port that also serves the REST gateway
//!   must offer `http/1.1` too (rustls refuses a client whose ALPN list does not overlap).
//!   Handshakes run concurrently, each bounded by [`ServerTls::handshake_timeout`], so a
//!   slow or silent peer never holds up the accept loop; a failed handshake is logged
//!   (`tracing`, debug) and costs nothing else. The connections are rustls `TlsStream`s over
//!   TCP, which is what tonic's `peer_certs` and `remote_addr` read.
//! - **Clients connect through their own connector** (for direct targets and for every
//!   endpoint of a balanced client, health watches included), so the balancer still sees
//!   each connection open and close. Requests carry `:scheme https`.
//! - **Everything that can be wrong with files and keys fails when the value is built**:
//!   [`ServerTls::from_pem_files`] reads and parses the files and checks that the key belongs
//!   to the certificate; errors name the file. Handshake failures reach callers as
//!   `UNAVAILABLE` with rustls' reason (`invalid peer certificate: UnknownIssuer`,
//!   `received fatal alert: CertificateRequired`, ...).
//! - **TLS 1.3 and client certificates.** In TLS 1.3 a client finishes its handshake before
//!   the server has looked at its certificate, so a refusal would otherwise surface later,
//!   on the first call, as a broken HTTP/2 connection whose code and message depend on the
//!   server (grpc-core just hangs up). When the server asked for a certificate, the client
//!   connector therefore waits for the server's first bytes (its HTTP/2 settings, which
//!   servers send at once) or its refusal, up to [`CLIENT_AUTH_VERDICT_WAIT`], before
//!   handing the connection over. A refusal is then a failed connection: `UNAVAILABLE`
//!   with the reason, the endpoint ejected, and the call (which never left) free to go to
//!   another endpoint.
//! - **No public roots built in.** Services inside a system trust a private CA; a client
//!   names its roots ([`ClientTls::from_ca_pem`]). (Web PKI or OS roots would add a
//!   dependency for a case rzero does not target yet.)
//! - **No certificate reloading yet**: a new certificate takes a restart.

mod client;
mod pem;
mod server;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio_rustls::rustls;

pub use client::ClientTls;
pub(crate) use client::{MaybeTls, TlsConnector, host_of};
pub(crate) use server::{Alpn, TlsAccept};
pub use server::{ClientAuth, ServerTls};

/// How long a client waits, after a TLS 1.3 handshake in which the server asked for a
/// certificate, for the server to accept or refuse it (see the module docs). Servers
/// answer at once; the bound only matters for one that stays silent, whose connection is
/// then used as it is.
pub const CLIENT_AUTH_VERDICT_WAIT: Duration = Duration::from_secs(2);

/// The crypto provider of every rzero TLS configuration.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A TLS setting that cannot be used: a file that cannot be read, PEM without what it
/// should hold, a key that does not belong to its certificate. Its `Display` names the file
/// (or says the PEM came from memory) and gives the reason.
#[derive(Debug, Clone)]
pub struct TlsError {
    message: String,
}

impl TlsError {
    fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for TlsError {}
