//! The only path generated code names: `::rzero::codegen::*`.
//!
//! Everything here is re-exported for `protoc-gen-rzero` output and is not a stable API for
//! hand-written code. Generated code depends on nothing else, so a user's crate needs only
//! `rzero` (and `prost`, which message derives expand to) as dependencies.

pub use async_trait::async_trait;
pub use bytes::Bytes;
pub use http;
pub use http_body::Body;
pub use prost;
pub use prost_types;
pub use std::convert::Infallible;
pub use std::sync::Arc;
pub use std::task::{Context, Poll};
pub use tonic::body::Body as ResponseBody;
pub use tonic::codec::CompressionEncoding;
pub use tonic::codegen::{BoxFuture, BoxStream, StdError};
pub use tonic::server::NamedService;
pub use tonic::{IntoRequest, IntoStreamingRequest, Request, Response, Status, Streaming};
pub use tower_service::Service;

pub use crate::client::{Client, ConnectError, RequestStream};
pub use crate::google;
pub use crate::method::{MethodDescriptor, MethodKind};
pub use crate::server::ServiceConfig;

/// Server-side dispatch: decodes a request, runs the handler, encodes the reply.
pub mod server {
    pub use crate::server::dispatch::{
        client_streaming, server_streaming, streaming, unary, unimplemented,
    };
}

/// What generated gateway code hands over: rules and the descriptor set they refer to.
#[cfg(feature = "gateway")]
pub mod gateway {
    pub use crate::gateway::{HttpRule, ServiceRules};
}
