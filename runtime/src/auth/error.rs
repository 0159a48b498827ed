//! [`Error`]: credentials or keys that cannot be used.

use std::fmt;

/// Credentials, a key or a token store that cannot be used as given (a user name with a
/// `:`, a token with a line break, a PEM that holds no key of the right kind, ...). Its
/// `Display` says what and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    message: String,
}

impl Error {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}
