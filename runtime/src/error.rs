//! Errors of the runtime's own operations (binding, connecting). RPC failures are
//! [`Status`](tonic::Status) values, not these.

use std::fmt;

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A server could not start or stopped with an error.
#[derive(Debug)]
pub struct Error {
    kind: &'static str,
    source: BoxError,
}

impl Error {
    pub(crate) fn io(source: std::io::Error) -> Self {
        Self {
            kind: "i/o error",
            source: source.into(),
        }
    }

    #[cfg(feature = "testing")]
    pub(crate) fn http(source: hyper::Error) -> Self {
        Self {
            kind: "http error",
            source: source.into(),
        }
    }

    #[cfg(feature = "tls")]
    pub(crate) fn tls(source: crate::tls::TlsError) -> Self {
        Self {
            kind: "TLS error",
            source: source.into(),
        }
    }

    #[cfg(feature = "reflection")]
    pub(crate) fn reflection(source: crate::reflection::InvalidSet) -> Self {
        Self {
            kind: "server reflection",
            source: source.into(),
        }
    }

    /// A setting that cannot work, found when serving starts.
    #[cfg(any(feature = "grpc-web", feature = "gateway"))]
    pub(crate) fn config(message: String) -> Self {
        Self {
            kind: "invalid setting",
            source: message.into(),
        }
    }

    pub(crate) fn transport(source: tonic::transport::Error) -> Self {
        Self {
            kind: "transport error",
            source: source.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.source)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}

/// A client could not be created for a target.
#[derive(Debug)]
pub struct ConnectError {
    target: String,
    reason: &'static str,
    source: BoxError,
}

impl ConnectError {
    pub(crate) fn invalid_target(target: &str, source: impl Into<BoxError>) -> Self {
        Self {
            target: target.to_owned(),
            reason: "invalid target",
            source: source.into(),
        }
    }

    #[cfg(feature = "tls")]
    pub(crate) fn tls(target: &str, source: crate::tls::TlsError) -> Self {
        Self {
            target: target.to_owned(),
            reason: "unusable TLS settings for",
            source: source.into(),
        }
    }

    pub(crate) fn transport(target: &str, source: impl Into<BoxError>) -> Self {
        Self {
            target: target.to_owned(),
            reason: "cannot connect to",
            source: source.into(),
        }
    }

    /// The target that failed.
    pub fn target(&self) -> &str {
        &self.target
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {:?}: {}", self.reason, self.target, self.source)?;
        let mut source = self.source.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

impl std::error::Error for ConnectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}
