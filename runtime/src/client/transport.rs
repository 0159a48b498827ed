//! What a client sends calls through: one tonic channel to one address, or the balancer.

use std::pin::Pin;
use std::task::{Context, Poll};

use tonic::body::Body;
use tonic::transport::Channel;

use crate::balance::Balanced;
use crate::interceptor::codec::Refusal;
use crate::protection::SharedTicket;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type BoxFuture<T> = Pin<Box<dyn std::future::Future<Output = T> + Send>>;

#[derive(Debug, Clone)]
pub(crate) enum Transport {
    /// `host:port`, `http(s)://…`, or a channel the user built.
    Direct(Channel),
    /// A resolver target.
    Balanced(Balanced),
}

impl tower_service::Service<http::Request<Body>> for Transport {
    type Response = http::Response<Body>;
    type Error = BoxError;
    type Future = BoxFuture<Result<http::Response<Body>, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        match self {
            Self::Direct(channel) => channel.poll_ready(cx).map_err(Into::into),
            Self::Balanced(balanced) => balanced.poll_ready(cx),
        }
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        // A call its client's breaker let out: settle it when the response's status shows.
        if let Some(ticket) = request.extensions_mut().remove::<SharedTicket>() {
            let call = self.call(request);
            return Box::pin(async move { Ok(ticket.watch(call.await?)) });
        }
        // A call with request-message hooks: a hook's refusal resets the stream, and if the
        // replies have started, the reply stream should end with the hook's status, not the
        // reset (see `Refusal`). Inside the ticket's watch, so the breaker sees that status too.
        if let Some(refusal) = request.extensions_mut().remove::<Refusal>() {
            let call = self.call(request);
            return Box::pin(async move { Ok(call.await?.map(|body| refusal.guard(body))) });
        }
        match self {
            Self::Direct(channel) => {
                let call = channel.call(request);
                Box::pin(async move { call.await.map_err(Into::into) })
            }
            Self::Balanced(balanced) => balanced.call(request),
        }
    }
}
