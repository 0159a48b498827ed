//! Certificates and keys from PEM, with errors that say where the PEM came from.

use std::path::Path;
use std::sync::Arc;

use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::{self, PemObject};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::sign::CertifiedKey;

use super::TlsError;

/// PEM text and where it came from (a file name, or what it is when given in memory).
pub(super) struct Pem {
    pub(super) text: Vec<u8>,
    pub(super) origin: String,
}

impl Pem {
    /// PEM given in memory; `what` says what it should hold (for errors).
    pub(super) fn memory(text: &[u8], what: &str) -> Self {
        Self {
            text: text.to_vec(),
            origin: format!("{what} PEM (in memory)"),
        }
    }

    /// The contents of `path`; `what` says what it should hold (for errors).
    pub(super) fn file(path: &Path, what: &str) -> Result<Self, TlsError> {
        let text = std::fs::read(path).map_err(|error| {
            TlsError::new(format!(
                "cannot read the {what} file {}: {error}",
                path.display()
            ))
        })?;
        Ok(Self {
            text,
            origin: path.display().to_string(),
        })
    }

    /// Every `CERTIFICATE` block, in order; at least one.
    pub(super) fn certificates(&self) -> Result<Vec<CertificateDer<'static>>, TlsError> {
        let certificates = CertificateDer::pem_slice_iter(&self.text)
            .collect::<Result<Vec<_>, pem::Error>>()
            .map_err(|error| TlsError::new(format!("{}: bad PEM: {error}", self.origin)))?;
        if certificates.is_empty() {
            return Err(TlsError::new(format!(
                "{}: no certificate (expected a `-----BEGIN CERTIFICATE-----` block)",
                self.origin
            )));
        }
        Ok(certificates)
    }

    /// The first private key (PKCS#8, PKCS#1 or SEC1).
    pub(super) fn private_key(&self) -> Result<PrivateKeyDer<'static>, TlsError> {
        PrivateKeyDer::from_pem_slice(&self.text).map_err(|error| match error {
            pem::Error::NoItemsFound => TlsError::new(format!(
                "{}: no private key (expected a `-----BEGIN PRIVATE KEY-----`, \
                 `RSA PRIVATE KEY` or `EC PRIVATE KEY` block)",
                self.origin
            )),
            error => TlsError::new(format!("{}: bad PEM: {error}", self.origin)),
        })
    }

    /// These CA certificates as trust anchors.
    pub(super) fn roots(&self) -> Result<rustls::RootCertStore, TlsError> {
        let mut roots = rustls::RootCertStore::empty();
        for (index, certificate) in self.certificates()?.into_iter().enumerate() {
            roots.add(certificate).map_err(|error| {
                TlsError::new(format!(
                    "{}: certificate #{} is not a usable CA certificate: {error}",
                    self.origin,
                    index + 1
                ))
            })?;
        }
        Ok(roots)
    }
}

/// A certificate chain with its private key, checked to belong together.
pub(super) fn certified_key(chain: &Pem, key: &Pem) -> Result<Arc<CertifiedKey>, TlsError> {
    let certificates = chain.certificates()?;
    let signing_key = super::provider()
        .key_provider
        .load_private_key(key.private_key()?)
        .map_err(|error| TlsError::new(format!("{}: unusable private key: {error}", key.origin)))?;
    let certified = CertifiedKey::new(certificates, signing_key);
    match certified.keys_match() {
        // `Unknown`: the key type cannot say; the handshake will tell.
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
            Ok(Arc::new(certified))
        }
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            Err(TlsError::new(format!(
                "the private key {} does not belong to the certificate {} (its public key differs)",
                key.origin, chain.origin
            )))
        }
        Err(error) => Err(TlsError::new(format!(
            "{}: unusable certificate: {error}",
            chain.origin
        ))),
    }
}
