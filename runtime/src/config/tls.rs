//! `Tls` in server and client configs (rzero's keys: zrpc has none).
//!
//! File paths are used as written: a relative path is relative to the working directory,
//! as in go-zero. The files are read when the builder is made
//! ([`ServerConfig::builder`](super::ServerConfig::builder),
//! [`ClientConfig::builder`](super::ClientConfig::builder)), so a bad file fails the start.

use std::path::PathBuf;

use serde::Deserialize;

use super::de;
use crate::tls::{ClientAuth, ClientTls, ServerTls, TlsError};

/// `Tls` in a server config: serve over TLS, and with `CaFile` ask clients for certificates
/// (mutual TLS).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
#[non_exhaustive]
pub struct ServerTlsConfig {
    /// `CertFile` (required): the PEM certificate chain, end entity first.
    pub cert_file: PathBuf,
    /// `KeyFile` (required): the PEM private key of that certificate.
    pub key_file: PathBuf,
    /// `CaFile`: PEM CA certificates that sign client certificates; turns on client
    /// authentication.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// `ClientAuth`: `required` (default with `CaFile`) or `optional`; needs `CaFile`.
    #[serde(default, deserialize_with = "client_auth")]
    pub client_auth: Option<ClientAuth>,
}

/// `Tls` in a client config: call over TLS.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
#[non_exhaustive]
pub struct ClientTlsConfig {
    /// `CaFile` (required): PEM CA certificates the servers' certificates must chain to.
    pub ca_file: PathBuf,
    /// `CertFile`: the client's PEM certificate chain, for servers that require one (with
    /// `KeyFile`).
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// `KeyFile`: the PEM private key of `CertFile`.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// `ServerName`: the name server certificates must carry, whatever address is dialled
    /// (default: the target's host, or each endpoint's).
    #[serde(default, deserialize_with = "opt_non_empty")]
    pub server_name: Option<String>,
}

fn opt_non_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    de::non_empty(d).map(Some)
}

fn client_auth<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<ClientAuth>, D::Error> {
    d.deserialize_str(de::Parse(
        |text| text.parse().map(Some),
        "`required` or `optional`",
    ))
}

impl ServerTlsConfig {
    /// TLS with `cert_file` and `key_file`, no client authentication.
    pub fn new(cert_file: impl Into<PathBuf>, key_file: impl Into<PathBuf>) -> Self {
        Self {
            cert_file: cert_file.into(),
            key_file: key_file.into(),
            ca_file: None,
            client_auth: None,
        }
    }

    /// `(key, message)` when the keys do not fit together.
    pub(super) fn check(&self) -> Result<(), (String, String)> {
        if self.client_auth.is_some() && self.ca_file.is_none() {
            return Err((
                "Tls.ClientAuth".to_owned(),
                "needs Tls.CaFile (the CA that signs client certificates)".to_owned(),
            ));
        }
        Ok(())
    }

    /// Reads the files.
    pub fn load(&self) -> Result<ServerTls, TlsError> {
        let mut tls = ServerTls::from_pem_files(&self.cert_file, &self.key_file)?;
        if let Some(ca) = &self.ca_file {
            tls = tls.client_ca_file(ca)?;
        }
        if let Some(mode) = self.client_auth {
            tls = tls.client_auth(mode);
        }
        Ok(tls)
    }
}

impl ClientTlsConfig {
    /// TLS trusting the CA certificates in `ca_file`.
    pub fn new(ca_file: impl Into<PathBuf>) -> Self {
        Self {
            ca_file: ca_file.into(),
            cert_file: None,
            key_file: None,
            server_name: None,
        }
    }

    /// `(key, message)` when the keys do not fit together.
    pub(super) fn check(&self) -> Result<(), (String, String)> {
        match (&self.cert_file, &self.key_file) {
            (Some(_), None) => Err((
                "Tls.CertFile".to_owned(),
                "needs Tls.KeyFile (the certificate's private key)".to_owned(),
            )),
            (None, Some(_)) => Err((
                "Tls.KeyFile".to_owned(),
                "needs Tls.CertFile (the certificate it belongs to)".to_owned(),
            )),
            _ => Ok(()),
        }
    }

    /// Reads the files.
    pub fn load(&self) -> Result<ClientTls, TlsError> {
        let mut tls = ClientTls::from_ca_file(&self.ca_file)?;
        if let (Some(cert), Some(key)) = (&self.cert_file, &self.key_file) {
            tls = tls.identity_files(cert, key)?;
        }
        if let Some(name) = &self.server_name {
            tls = tls.server_name(name)?;
        }
        Ok(tls)
    }
}
