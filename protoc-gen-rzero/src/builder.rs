//! The `build.rs` front end.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::options::{Mockall, OpenApi, Options};

/// Generates code from a `build.rs`, with no protoc.
///
/// ```no_run
/// // build.rs
/// fn main() -> Result<(), Box<dyn std::error::Error>> {
///     protoc_gen_rzero::Builder::new()
///         .bytes(".")
///         .compile(&["proto/greeter/v1/greeter.proto"], &["proto"])?;
///     Ok(())
/// }
/// ```
///
/// Output goes to `OUT_DIR` (or [`out_dir`](Self::out_dir)); include a package with
/// `rzero::include_proto!("greeter.v1")` or the whole tree with
/// `include!(concat!(env!("OUT_DIR"), "/mod.rs"))`. Every `.proto` read, imports included,
/// is announced with `cargo:rerun-if-changed` (under cargo).
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct Builder {
    options: Options,
    out_dir: Option<PathBuf>,
}

impl Builder {
    /// Default options: messages, servers and clients.
    pub fn new() -> Self {
        Self::default()
    }

    /// Uses these options wholesale.
    pub fn options(mut self, options: Options) -> Self {
        self.options = options;
        self
    }

    /// Skips server traits and wrappers.
    pub fn no_server(mut self) -> Self {
        self.options.server = false;
        self
    }

    /// Skips client stubs.
    pub fn no_client(mut self) -> Self {
        self.options.client = false;
        self
    }

    /// Skips the REST gateway rules: neither checked nor emitted (nor OpenAPI documents).
    pub fn no_gateway(mut self) -> Self {
        self.options.gateway = false;
        self
    }

    /// Uses `bytes::Bytes` for `bytes` fields under `path` (`.` for all).
    pub fn bytes(mut self, path: impl Into<String>) -> Self {
        self.options.bytes.push(path.into());
        self
    }

    /// Uses `BTreeMap` for map fields under `path` (`.` for all).
    pub fn btree_map(mut self, path: impl Into<String>) -> Self {
        self.options.btree_map.push(path.into());
        self
    }

    /// Boxes the field at `path`.
    pub fn boxed(mut self, path: impl Into<String>) -> Self {
        self.options.boxed.push(path.into());
        self
    }

    /// Uses an existing Rust type (or module) for a proto type (or package).
    pub fn extern_path(
        mut self,
        proto_path: impl Into<String>,
        rust_path: impl Into<String>,
    ) -> Self {
        self.options
            .extern_path
            .push((proto_path.into(), rust_path.into()));
        self
    }

    /// Adds an attribute to matching messages and enums.
    pub fn type_attribute(mut self, path: impl Into<String>, attribute: impl Into<String>) -> Self {
        self.options
            .type_attribute
            .push((path.into(), attribute.into()));
        self
    }

    /// Adds an attribute to matching messages.
    pub fn message_attribute(
        mut self,
        path: impl Into<String>,
        attribute: impl Into<String>,
    ) -> Self {
        self.options
            .message_attribute
            .push((path.into(), attribute.into()));
        self
    }

    /// Adds an attribute to matching enums.
    pub fn enum_attribute(mut self, path: impl Into<String>, attribute: impl Into<String>) -> Self {
        self.options
            .enum_attribute
            .push((path.into(), attribute.into()));
        self
    }

    /// Adds an attribute to matching fields.
    pub fn field_attribute(
        mut self,
        path: impl Into<String>,
        attribute: impl Into<String>,
    ) -> Self {
        self.options
            .field_attribute
            .push((path.into(), attribute.into()));
        self
    }

    /// Leaves proto comments out of the generated docs under `path` (`.` for all).
    pub fn disable_comments(mut self, path: impl Into<String>) -> Self {
        self.options.disable_comments.push(path.into());
        self
    }

    /// A `mockall` mock for every client trait (`mockall=tests|always`).
    pub fn mockall(mut self, mockall: Mockall) -> Self {
        self.options.mockall = mockall;
        self
    }

    /// Writes OpenAPI 3 documents of the gateway's HTTP rules: one per proto file with
    /// rules ([`OpenApi::PerFile`], `pkg/file.openapi.json`) or one `openapi.json`
    /// ([`OpenApi::Merged`]).
    pub fn openapi(mut self, openapi: OpenApi) -> Self {
        self.options.openapi = Some(openapi);
        self
    }

    /// Implements `prost::Name` for every message (to pack them into `Any`).
    pub fn type_names(mut self) -> Self {
        self.options.type_names = true;
        self
    }

    /// Writes to `dir` instead of `OUT_DIR`.
    pub fn out_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.out_dir = Some(dir.into());
        self
    }

    /// Generates code for `protos`, looking up imports in `includes`.
    pub fn compile(self, protos: &[impl AsRef<Path>], includes: &[impl AsRef<Path>]) -> Result<()> {
        let out_dir = match self.out_dir {
            Some(dir) => dir,
            None => std::env::var_os("OUT_DIR")
                .map(PathBuf::from)
                .ok_or_else(|| {
                    Error::Option("OUT_DIR is not set: call out_dir() outside build.rs".into())
                })?,
        };
        let input = crate::front::from_files(protos, includes)?;
        if std::env::var_os("CARGO").is_some() {
            for path in &input.paths {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
        let files = crate::emit::generate(input, &self.options)?;
        crate::write_files(&out_dir, &files)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openapi_sets_the_option() {
        assert_eq!(Builder::new().options.openapi, None);
        let builder = Builder::new().openapi(OpenApi::Merged);
        assert_eq!(builder.options.openapi, Some(OpenApi::Merged));
        assert_eq!(builder.options.to_parameter(), "openapi=merged");
    }
}
