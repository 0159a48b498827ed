//! Interceptors: code that runs around every call, on servers and on clients, for all four
//! RPC kinds.
//!
//! An [`Interceptor`] gets the [`Call`] (method, metadata, extensions and, for a single
//! request, the message) and a [`Next`]; it may look, change, refuse, or pass the call on with
//! `next.run(call).await` and then look at or change the [`Reply`] (response metadata and, for
//! a single response, the message) or the `Status`. Closures work through [`from_fn`].
//!
//! # Order
//! Interceptors run in the order they were added: the first one added is outermost. It sees
//! the call first and the reply last, on servers ([`ServerBuilder::interceptor`]) and clients
//! ([`Client::interceptor`]) alike.
//!
//! # Streams
//! For a streaming request or response, the call or reply carries the stream, which
//! interceptors cannot read; instead each message passes [`Interceptor::on_request_message`]
//! or [`Interceptor::on_response_message`] as it is decoded or encoded (an error there ends
//! the call with that status). The hooks see single messages too, so a validation hook covers
//! every kind. Hooks run in the same order as the interceptors.
//!
//! # Built in
//! Always on, in the dispatch code rather than the chain: deadlines (see
//! [`crate::deadline`]), panics answered with `INTERNAL`. Opt in: [`tracing_server`] /
//! [`tracing_client`] spans, [`slow_calls`] logs (go-zero's `Stat` and `Duration`),
//! [`Metrics`](crate::metrics::Metrics) for Prometheus, client retries
//! ([`RetryPolicy`](crate::client::RetryPolicy)), and breakers, load shedding and a
//! concurrency limit ([`crate::protection`]; on servers they run before the chain, on
//! clients at its end).
//!
//! A config built from YAML ([`crate::config`]) adds them in go-zero's order, ahead of any
//! interceptor you add: on servers tracing, slow calls (`Stat`), then metrics
//! (`Prometheus`); on clients tracing, slow and failed calls (`Duration`), then metrics.
//!
//! # Cost
//! With no interceptors nothing here runs. With some, a call costs one boxed message each way
//! and one boxed future per interceptor.
//!
//! [`ServerBuilder::interceptor`]: crate::ServerBuilder::interceptor
//! [`Client::interceptor`]: crate::Client::interceptor

pub(crate) mod codec;
mod slow;
mod trace;

pub use slow::{SlowCalls, slow_calls};
pub use trace::{tracing_client, tracing_server};

use std::any::Any;
use std::fmt::{self, Debug};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use tonic::metadata::MetadataMap;
use tonic::{Extensions, Request, Response, Status};

use crate::method::MethodDescriptor;

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Runs around calls; see the [module docs](self).
#[async_trait::async_trait]
pub trait Interceptor: Send + Sync + 'static {
    /// Handles one call: usually inspects or edits `call`, then returns
    /// `next.run(call).await`, possibly edited. Returning without calling `next` refuses
    /// the call (the handler, or the network, is never reached).
    async fn intercept(&self, call: Call, next: Next) -> Result<Reply, Status>;

    /// Sees each request message as it is decoded (server) or encoded (client).
    fn on_request_message(
        &self,
        method: &'static MethodDescriptor,
        message: &dyn Message,
    ) -> Result<(), Status> {
        let _ = (method, message);
        Ok(())
    }

    /// Sees each response message as it is encoded (server) or decoded (client).
    fn on_response_message(
        &self,
        method: &'static MethodDescriptor,
        message: &dyn Message,
    ) -> Result<(), Status> {
        let _ = (method, message);
        Ok(())
    }
}

/// An interceptor from an async closure `|call, next| async move { next.run(call).await }`.
pub fn from_fn<F, Fut>(f: F) -> FnInterceptor<F>
where
    F: Fn(Call, Next) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Reply, Status>> + Send + 'static,
{
    FnInterceptor(f)
}

/// See [`from_fn`].
#[derive(Clone, Copy)]
pub struct FnInterceptor<F>(F);

impl<F> Debug for FnInterceptor<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FnInterceptor")
    }
}

#[async_trait::async_trait]
impl<F, Fut> Interceptor for FnInterceptor<F>
where
    F: Fn(Call, Next) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Reply, Status>> + Send + 'static,
{
    async fn intercept(&self, call: Call, next: Next) -> Result<Reply, Status> {
        (self.0)(call, next).await
    }
}

/// A message of any generated type, as interceptors see it. Downcast with
/// `message.downcast_ref::<HelloRequest>()` (prost messages need not implement `Debug`, so
/// this does not ask for it).
pub trait Message: Any + Send + Sync {
    /// The message as `Any`, to downcast.
    fn as_any(&self) -> &dyn Any;
    /// The message as `Any`, to downcast and edit.
    fn as_any_mut(&mut self) -> &mut dyn Any;
    /// Its size in bytes once encoded.
    fn encoded_len(&self) -> usize;
    #[doc(hidden)]
    fn into_any(self: Box<Self>) -> Box<dyn Any>;
}

impl<T: prost::Message + 'static> Message for T {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn encoded_len(&self) -> usize {
        prost::Message::encoded_len(self)
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

impl dyn Message {
    /// The message as a `T`, if it is one.
    pub fn downcast_ref<T: Message>(&self) -> Option<&T> {
        self.as_any().downcast_ref()
    }

    /// The message as a mutable `T`, if it is one.
    pub fn downcast_mut<T: Message>(&mut self) -> Option<&mut T> {
        self.as_any_mut().downcast_mut()
    }
}

/// What travels through the chain in place of a typed request or response: one message, or
/// a stream the interceptors pass along untouched.
pub(crate) enum Body {
    Message(Box<dyn Message>),
    Stream(Box<dyn Any + Send>),
}

impl Body {
    pub(crate) fn message<M: Message>(message: M) -> Self {
        Self::Message(Box::new(message))
    }

    pub(crate) fn stream<S: Send + 'static>(stream: S) -> Self {
        Self::Stream(Box::new(stream))
    }

    /// Back to the type the chain was entered with. The chain cannot change it (interceptors
    /// only get `&mut` access to messages), so a mismatch is a bug in rzero.
    pub(crate) fn into_message<M: Message>(self) -> Result<M, Status> {
        match self {
            Self::Message(message) => message.into_any().downcast::<M>().map(|m| *m).ok(),
            Self::Stream(_) => None,
        }
        .ok_or_else(|| Status::internal("rzero: interceptor chain changed a message's type"))
    }

    pub(crate) fn into_stream<S: Send + 'static>(self) -> Result<S, Status> {
        match self {
            Self::Stream(stream) => stream.downcast::<S>().map(|s| *s).ok(),
            Self::Message(_) => None,
        }
        .ok_or_else(|| Status::internal("rzero: interceptor chain changed a stream's type"))
    }

    fn as_message(&self) -> Option<&dyn Message> {
        match self {
            Self::Message(message) => Some(&**message),
            Self::Stream(_) => None,
        }
    }

    fn as_message_mut(&mut self) -> Option<&mut dyn Message> {
        match self {
            Self::Message(message) => Some(&mut **message),
            Self::Stream(_) => None,
        }
    }
}

/// How a kind's typed request and response payloads (a message, or a stream) cross the
/// type-erased chain and back.
pub(crate) struct Conversions<Req, Resp> {
    pub(crate) request_in: fn(Req) -> Body,
    pub(crate) request_out: fn(Body) -> Result<Req, Status>,
    pub(crate) response_in: fn(Resp) -> Body,
    pub(crate) response_out: fn(Body) -> Result<Resp, Status>,
}

impl<Req, Resp> Clone for Conversions<Req, Resp> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<Req, Resp> Copy for Conversions<Req, Resp> {}

/// One call on its way in (server) or out (client).
pub struct Call {
    method: &'static MethodDescriptor,
    request: Request<Body>,
}

impl Debug for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Call")
            .field("method", &self.method.path())
            .field("metadata", self.request.metadata())
            .field("message_len", &self.message().map(|m| m.encoded_len()))
            .finish_non_exhaustive()
    }
}

impl Call {
    pub(crate) fn new(method: &'static MethodDescriptor, request: Request<Body>) -> Self {
        Self { method, request }
    }

    pub(crate) fn into_request(self) -> Request<Body> {
        self.request
    }

    /// The method called.
    pub fn method(&self) -> &'static MethodDescriptor {
        self.method
    }

    /// Request metadata (headers): read on servers, add to on clients.
    pub fn metadata(&self) -> &MetadataMap {
        self.request.metadata()
    }

    /// Request metadata, to edit.
    pub fn metadata_mut(&mut self) -> &mut MetadataMap {
        self.request.metadata_mut()
    }

    /// Request extensions: how a server interceptor hands values (say, verified claims) to
    /// the handler, which reads them with `request.extensions().get::<T>()`.
    pub fn extensions(&self) -> &Extensions {
        self.request.extensions()
    }

    /// Request extensions, to edit.
    pub fn extensions_mut(&mut self) -> &mut Extensions {
        self.request.extensions_mut()
    }

    /// The request message, unless the client streams its requests.
    pub fn message(&self) -> Option<&dyn Message> {
        self.request.get_ref().as_message()
    }

    /// The request message, to edit in place.
    pub fn message_mut(&mut self) -> Option<&mut dyn Message> {
        self.request.get_mut().as_message_mut()
    }

    /// The peer's address, on servers (none for in-process connections).
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.request.remote_addr()
    }
}

/// The successful outcome of a call, on its way back.
pub struct Reply {
    response: Response<Body>,
}

impl Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reply")
            .field("metadata", self.response.metadata())
            .field("message_len", &self.message().map(|m| m.encoded_len()))
            .finish_non_exhaustive()
    }
}

impl Reply {
    pub(crate) fn new(response: Response<Body>) -> Self {
        Self { response }
    }

    pub(crate) fn into_response(self) -> Response<Body> {
        self.response
    }

    /// Response metadata (headers).
    pub fn metadata(&self) -> &MetadataMap {
        self.response.metadata()
    }

    /// Response metadata, to edit.
    pub fn metadata_mut(&mut self) -> &mut MetadataMap {
        self.response.metadata_mut()
    }

    /// Response extensions.
    pub fn extensions(&self) -> &Extensions {
        self.response.extensions()
    }

    /// Response extensions, to edit.
    pub fn extensions_mut(&mut self) -> &mut Extensions {
        self.response.extensions_mut()
    }

    /// The response message, unless the server streams its responses.
    pub fn message(&self) -> Option<&dyn Message> {
        self.response.get_ref().as_message()
    }

    /// The response message, to edit in place.
    pub fn message_mut(&mut self) -> Option<&mut dyn Message> {
        self.response.get_mut().as_message_mut()
    }
}

/// The rest of the chain, ending at the handler (server) or the network (client).
pub struct Next {
    chain: Arc<Chain>,
    position: usize,
    endpoint: ChainEnd,
}

impl Debug for Next {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Next")
            .field(
                "remaining",
                &(self.chain.interceptors.len() - self.position),
            )
            .finish()
    }
}

/// Where a chain ends: the typed call it was built around.
pub(crate) type ChainEnd =
    Box<dyn FnOnce(Call) -> BoxFuture<'static, Result<Reply, Status>> + Send>;

impl Next {
    /// Passes the call to the next interceptor, or to the handler or network after the last.
    pub async fn run(self, call: Call) -> Result<Reply, Status> {
        match self.chain.interceptors.get(self.position) {
            Some(interceptor) => {
                let interceptor = Arc::clone(interceptor);
                let next = Self {
                    position: self.position + 1,
                    ..self
                };
                interceptor.intercept(call, next).await
            }
            None => (self.endpoint)(call).await,
        }
    }
}

/// Interceptors in the order they were added.
#[derive(Default, Clone)]
pub(crate) struct Chain {
    interceptors: Vec<Arc<dyn Interceptor>>,
}

impl Debug for Chain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chain")
            .field("interceptors", &self.interceptors.len())
            .finish()
    }
}

impl Chain {
    pub(crate) fn push(&mut self, interceptor: Arc<dyn Interceptor>) {
        self.interceptors.push(interceptor);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.interceptors.is_empty()
    }

    /// Runs `call` through every interceptor, then `endpoint`.
    pub(crate) async fn run(
        self: &Arc<Self>,
        call: Call,
        endpoint: ChainEnd,
    ) -> Result<Reply, Status> {
        Next {
            chain: Arc::clone(self),
            position: 0,
            endpoint,
        }
        .run(call)
        .await
    }

    /// Every interceptor's request-message hook, in order.
    pub(crate) fn request_message(
        &self,
        method: &'static MethodDescriptor,
        message: &dyn Message,
    ) -> Result<(), Status> {
        self.interceptors
            .iter()
            .try_for_each(|interceptor| interceptor.on_request_message(method, message))
    }

    /// Every interceptor's response-message hook, in order.
    pub(crate) fn response_message(
        &self,
        method: &'static MethodDescriptor,
        message: &dyn Message,
    ) -> Result<(), Status> {
        self.interceptors
            .iter()
            .try_for_each(|interceptor| interceptor.on_response_message(method, message))
    }
}
