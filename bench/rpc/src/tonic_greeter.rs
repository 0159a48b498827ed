//! The plain-tonic side: `greeter.v1.Greeter` (unary `SayHello` only) written by hand the way
//! tonic-build 0.14 generates it (tonic-build needs protoc), on the same prost messages as
//! rzero's side.

use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::codegen::{Body, BoxFuture, Bytes, GrpcMethod, StdError, http};
use tonic::{IntoRequest, Request, Response, Status};

use crate::pb::{HelloReply, HelloRequest};

/// What tonic-build generates as `greeter_server::Greeter`.
#[tonic::async_trait]
pub trait Greeter: Send + Sync + 'static {
    async fn say_hello(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<HelloReply>, Status>;
}

/// What tonic-build generates as `greeter_server::GreeterServer`.
#[derive(Debug)]
pub struct GreeterServer<T> {
    inner: Arc<T>,
}

impl<T> GreeterServer<T> {
    pub fn new(inner: T) -> Self {
        Self {
            inner: Arc::new(inner),
        }
    }
}

impl<T> Clone for GreeterServer<T> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<T> tonic::server::NamedService for GreeterServer<T> {
    const NAME: &'static str = "greeter.v1.Greeter";
}

impl<T, B> tonic::codegen::Service<http::Request<B>> for GreeterServer<T>
where
    T: Greeter,
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        match req.uri().path() {
            "/greeter.v1.Greeter/SayHello" => {
                struct SayHelloSvc<T: Greeter>(Arc<T>);
                impl<T: Greeter> tonic::server::UnaryService<HelloRequest> for SayHelloSvc<T> {
                    type Response = HelloReply;
                    type Future = BoxFuture<Response<Self::Response>, Status>;
                    fn call(&mut self, request: Request<HelloRequest>) -> Self::Future {
                        let inner = Arc::clone(&self.0);
                        Box::pin(async move { <T as Greeter>::say_hello(&inner, request).await })
                    }
                }
                let inner = Arc::clone(&self.inner);
                Box::pin(async move {
                    let method = SayHelloSvc(inner);
                    let codec = tonic_prost::ProstCodec::default();
                    let mut grpc = tonic::server::Grpc::new(codec)
                        .apply_compression_config(Default::default(), Default::default())
                        .apply_max_message_size_config(None, None);
                    Ok(grpc.unary(method, req).await)
                })
            }
            _ => Box::pin(async move {
                let mut response = http::Response::new(tonic::body::Body::default());
                let headers = response.headers_mut();
                headers.insert(
                    tonic::Status::GRPC_STATUS,
                    (tonic::Code::Unimplemented as i32).into(),
                );
                headers.insert(
                    http::header::CONTENT_TYPE,
                    tonic::metadata::GRPC_CONTENT_TYPE,
                );
                Ok(response)
            }),
        }
    }
}

/// What tonic-build generates as `greeter_client::GreeterClient` (`&mut self` calls: each task
/// clones it, as tonic users do).
#[derive(Debug, Clone)]
pub struct GreeterClient<T> {
    inner: tonic::client::Grpc<T>,
}

impl GreeterClient<tonic::transport::Channel> {
    pub async fn connect(dst: String) -> Result<Self, tonic::transport::Error> {
        let conn = tonic::transport::Endpoint::new(dst)?.connect().await?;
        Ok(Self::new(conn))
    }
}

impl<T> GreeterClient<T>
where
    T: tonic::client::GrpcService<tonic::body::Body>,
    T::Error: Into<StdError>,
    T::ResponseBody: Body<Data = Bytes> + Send + 'static,
    <T::ResponseBody as Body>::Error: Into<StdError> + Send,
{
    pub fn new(inner: T) -> Self {
        Self {
            inner: tonic::client::Grpc::new(inner),
        }
    }

    pub async fn say_hello(
        &mut self,
        request: impl IntoRequest<HelloRequest>,
    ) -> Result<Response<HelloReply>, Status> {
        self.inner
            .ready()
            .await
            .map_err(|e| Status::unknown(format!("Service was not ready: {}", e.into())))?;
        let codec = tonic_prost::ProstCodec::default();
        let path = http::uri::PathAndQuery::from_static("/greeter.v1.Greeter/SayHello");
        let mut req = request.into_request();
        req.extensions_mut()
            .insert(GrpcMethod::new("greeter.v1.Greeter", "SayHello"));
        self.inner.unary(req, path, codec).await
    }
}
