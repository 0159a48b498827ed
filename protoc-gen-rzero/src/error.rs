//! The generator's one error type. Every front end turns it into one line per problem:
//! protoc puts it in `CodeGeneratorResponse.error`, the CLI prints it, `build.rs` fails with it.

use std::fmt;
use std::path::PathBuf;

/// Why generation failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A `.proto` file is wrong. `location` is `file:line:col` where the parser knows it.
    Proto {
        /// `file:line:col`, `file`, or empty when no file is known.
        location: String,
        /// What is wrong, in the parser's words.
        message: String,
    },
    /// An option (plugin parameter, CLI flag or builder call) is unknown or malformed.
    Option(String),
    /// Reading or writing a file failed.
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The input bytes are not a valid `CodeGeneratorRequest`.
    Request(String),
    /// A scaffolding template is wrong (`protoc-gen-rzero new`). `location` is
    /// `file:line` where the template engine knows it.
    Template {
        /// The template file (`<built-in>/name` for an embedded one) and line.
        location: String,
        /// What is wrong.
        message: String,
    },
    /// A bug in the generator: please report it with the input that caused it.
    Internal(String),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Proto { location, message } if location.is_empty() => f.write_str(message),
            Self::Proto { location, message } => write!(f, "{location}: {message}"),
            Self::Option(message) => write!(f, "invalid option: {message}"),
            Self::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Self::Request(message) => write!(f, "invalid CodeGeneratorRequest: {message}"),
            Self::Template { location, message } if location.is_empty() => {
                write!(f, "template: {message}")
            }
            Self::Template { location, message } => write!(f, "{location}: {message}"),
            Self::Internal(message) => write!(f, "internal error in protoc-gen-rzero: {message}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
