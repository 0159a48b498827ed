//! `GrpcWeb` in a server config (rzero's key: zrpc has no gRPC-Web).

use serde::Deserialize;

use super::CorsConfig;
use crate::server::GrpcWeb;

/// `GrpcWeb` in a server config: answer gRPC-Web (browsers' gRPC) on the gRPC port
/// ([`ServerBuilder::grpc_web`](crate::ServerBuilder::grpc_web)), with CORS for pages from
/// other origins.
///
/// ```yaml
/// GrpcWeb:
///   Enabled: true
///   Cors:
///     AllowOrigins: [https://app.example.com]
/// ```
///
/// A switch rather than the section's presence, as `DevServer` has: one file can keep the
/// section (its `Cors` checked all the same) and turn it on per environment
/// (`Enabled: ${GRPC_WEB:-false}`), and `GrpcWeb: {}` does not read as "on".
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase", default)]
#[non_exhaustive]
pub struct GrpcWebConfig {
    /// `Enabled`: serve gRPC-Web. Default false.
    pub enabled: bool,
    /// `Cors`: let pages from other origins call (see [`CorsConfig`], and
    /// [`GrpcWeb::cors`] for how gRPC-Web answers). Default: no CORS (same-origin pages and
    /// clients that are not browsers).
    pub cors: Option<CorsConfig>,
}

impl GrpcWebConfig {
    /// `(key, message)` with the key relative to `GrpcWeb`.
    pub(super) fn check(&self) -> Result<(), (String, String)> {
        match &self.cors {
            Some(cors) => cors
                .check()
                .map_err(|(key, message)| (format!("Cors.{key}"), message)),
            None => Ok(()),
        }
    }

    /// What [`ServerBuilder::grpc_web`](crate::ServerBuilder::grpc_web) gets, when enabled.
    pub(super) fn grpc_web(&self) -> Option<GrpcWeb> {
        if !self.enabled {
            return None;
        }
        let mut grpc_web = GrpcWeb::new();
        if let Some(cors) = &self.cors {
            grpc_web = grpc_web.cors(cors.to_cors());
        }
        Some(grpc_web)
    }
}
