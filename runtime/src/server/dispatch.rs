//! How a generated server wrapper runs one call.
//!
//! A generated `call` matches the request path and hands the request to one of the four
//! functions here with the method's [`MethodDescriptor`] and a handler closure that calls the
//! user's trait method. Keeping decode/encode, compression and limits here (not in generated
//! code) gives interceptors one place to hook in for every RPC kind.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::codegen::{BoxFuture, BoxStream};
use tonic::server::Grpc;
use tonic::{Request, Response, Status, Streaming};
use tonic_prost::ProstCodec;

use super::ServiceConfig;
use super::trailers::attach_trailers;
use crate::method::MethodDescriptor;

type HttpResponse = http::Response<tonic::body::Body>;

/// Adapts "a shared service plus a function of it" into the `tower::Service` shape tonic's
/// server codec drives.
struct Handler<S, F> {
    service: Arc<S>,
    handler: F,
}

impl<S, F, Req, Resp, Fut> tower_service::Service<Request<Req>> for Handler<S, F>
where
    F: Fn(Arc<S>, Request<Req>) -> Fut,
    Fut: Future<Output = Result<Response<Resp>, Status>>,
{
    type Response = Response<Resp>;
    type Error = Status;
    type Future = Fut;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Req>) -> Fut {
        (self.handler)(Arc::clone(&self.service), request)
    }
}

fn grpc<Req, Resp>(config: &ServiceConfig) -> Grpc<ProstCodec<Resp, Req>>
where
    Req: prost::Message + Default + Send + 'static,
    Resp: prost::Message + Send + 'static,
{
    Grpc::new(ProstCodec::default())
        .apply_compression_config(config.accept_encodings, config.send_encodings)
        .apply_max_message_size_config(
            Some(config.max_decoding_message_size),
            Some(config.max_encoding_message_size),
        )
}

fn with_method<B>(
    method: &'static MethodDescriptor,
    mut request: http::Request<B>,
) -> http::Request<B> {
    request.extensions_mut().insert(*method);
    request
        .extensions_mut()
        .insert(tonic::GrpcMethod::new(method.service(), method.method()));
    request
}

/// Runs a unary call.
pub fn unary<S, B, Req, Resp, F, Fut>(
    config: &ServiceConfig,
    method: &'static MethodDescriptor,
    request: http::Request<B>,
    service: Arc<S>,
    handler: F,
) -> BoxFuture<HttpResponse, Infallible>
where
    S: Send + Sync + 'static,
    B: http_body::Body + Send + 'static,
    B::Error: Into<tonic::codegen::StdError> + Send + 'static,
    Req: prost::Message + Default + Send + 'static,
    Resp: prost::Message + Send + 'static,
    F: Fn(Arc<S>, Request<Req>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Response<Resp>, Status>> + Send + 'static,
{
    let mut grpc = grpc::<Req, Resp>(config);
    Box::pin(async move {
        let handler = Handler { service, handler };
        Ok(attach_trailers(
            grpc.unary(handler, with_method(method, request)).await,
        ))
    })
}

/// Runs a call with one request and a stream of responses.
pub fn server_streaming<S, B, Req, Resp, F, Fut>(
    config: &ServiceConfig,
    method: &'static MethodDescriptor,
    request: http::Request<B>,
    service: Arc<S>,
    handler: F,
) -> BoxFuture<HttpResponse, Infallible>
where
    S: Send + Sync + 'static,
    B: http_body::Body + Send + 'static,
    B::Error: Into<tonic::codegen::StdError> + Send + 'static,
    Req: prost::Message + Default + Send + 'static,
    Resp: prost::Message + Send + 'static,
    F: Fn(Arc<S>, Request<Req>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Response<BoxStream<Resp>>, Status>> + Send + 'static,
{
    let mut grpc = grpc::<Req, Resp>(config);
    Box::pin(async move {
        let handler = Handler { service, handler };
        Ok(attach_trailers(
            grpc.server_streaming(handler, with_method(method, request))
                .await,
        ))
    })
}

/// Runs a call with a stream of requests and one response.
pub fn client_streaming<S, B, Req, Resp, F, Fut>(
    config: &ServiceConfig,
    method: &'static MethodDescriptor,
    request: http::Request<B>,
    service: Arc<S>,
    handler: F,
) -> BoxFuture<HttpResponse, Infallible>
where
    S: Send + Sync + 'static,
    B: http_body::Body + Send + 'static,
    B::Error: Into<tonic::codegen::StdError> + Send + 'static,
    Req: prost::Message + Default + Send + 'static,
    Resp: prost::Message + Send + 'static,
    F: Fn(Arc<S>, Request<Streaming<Req>>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Response<Resp>, Status>> + Send + 'static,
{
    let mut grpc = grpc::<Req, Resp>(config);
    Box::pin(async move {
        let handler = Handler { service, handler };
        Ok(attach_trailers(
            grpc.client_streaming(handler, with_method(method, request))
                .await,
        ))
    })
}

/// Runs a call with streams both ways.
pub fn streaming<S, B, Req, Resp, F, Fut>(
    config: &ServiceConfig,
    method: &'static MethodDescriptor,
    request: http::Request<B>,
    service: Arc<S>,
    handler: F,
) -> BoxFuture<HttpResponse, Infallible>
where
    S: Send + Sync + 'static,
    B: http_body::Body + Send + 'static,
    B::Error: Into<tonic::codegen::StdError> + Send + 'static,
    Req: prost::Message + Default + Send + 'static,
    Resp: prost::Message + Send + 'static,
    F: Fn(Arc<S>, Request<Streaming<Req>>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Response<BoxStream<Resp>>, Status>> + Send + 'static,
{
    let mut grpc = grpc::<Req, Resp>(config);
    Box::pin(async move {
        let handler = Handler { service, handler };
        Ok(attach_trailers(
            grpc.streaming(handler, with_method(method, request)).await,
        ))
    })
}

/// Answers a path no method of the service matches with `UNIMPLEMENTED`.
pub fn unimplemented<B>(request: http::Request<B>) -> BoxFuture<HttpResponse, Infallible> {
    let status = Status::unimplemented(format!("unknown method {}", request.uri().path()));
    Box::pin(std::future::ready(Ok(status.into_http())))
}
