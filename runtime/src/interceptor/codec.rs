//! The protobuf codec with the interceptors' per-message hooks: every message of every kind
//! passes the hooks as it is encoded or decoded, so streams get them without wrapping the
//! stream types generated code and handlers see.

use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::Frame;

use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::{Code, Status};
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

use super::Chain;
use crate::method::MethodDescriptor;

/// Which hook a direction of the codec runs.
#[derive(Debug, Clone, Copy)]
enum Direction {
    Request,
    Response,
}

/// The chain and method of one call, and which way each codec direction goes.
#[derive(Debug, Clone)]
pub(crate) struct Hooks {
    chain: Arc<Chain>,
    method: &'static MethodDescriptor,
    encodes: Direction,
}

impl Hooks {
    /// For a server: it decodes requests and encodes responses. `None` without interceptors.
    pub(crate) fn server(
        chain: Option<&Arc<Chain>>,
        method: &'static MethodDescriptor,
    ) -> Option<Self> {
        Self::new(chain, method, Direction::Response)
    }

    /// For a client: it encodes requests and decodes responses.
    pub(crate) fn client(chain: &Arc<Chain>, method: &'static MethodDescriptor) -> Option<Self> {
        Self::new(Some(chain), method, Direction::Request)
    }

    fn new(
        chain: Option<&Arc<Chain>>,
        method: &'static MethodDescriptor,
        encodes: Direction,
    ) -> Option<Self> {
        let chain = chain.filter(|chain| !chain.is_empty())?;
        Some(Self {
            chain: Arc::clone(chain),
            method,
            encodes,
        })
    }

    fn check(&self, direction: Direction, message: &dyn super::Message) -> Result<(), Status> {
        match direction {
            Direction::Request => self.chain.request_message(self.method, message),
            Direction::Response => self.chain.response_message(self.method, message),
        }
    }

    /// The hook for a message this side decoded (what [`HookDecoder`] runs), for callers
    /// that get messages without the codec (the gateway's in-process calls).
    #[cfg(feature = "gateway")]
    pub(crate) fn decoded(&self, message: &dyn super::Message) -> Result<(), Status> {
        self.check(self.decodes(), message)
    }

    /// The hook for a message this side is about to encode (what [`HookEncoder`] runs).
    pub(crate) fn encoding(&self, message: &dyn super::Message) -> Result<(), Status> {
        self.check(self.encodes, message)
    }

    fn decodes(&self) -> Direction {
        match self.encodes {
            Direction::Request => Direction::Response,
            Direction::Response => Direction::Request,
        }
    }
}

/// [`ProstCodec`] plus the hooks (none: exactly `ProstCodec`).
#[derive(Debug)]
pub(crate) struct HookCodec<E, D> {
    inner: ProstCodec<E, D>,
    encode_hooks: Option<Hooks>,
    decode_hooks: Option<Hooks>,
    refusal: Refusal,
    _types: PhantomData<fn(E) -> D>,
}

/// The status a hook refused an outgoing message with, kept for the caller: tonic turns an
/// encoder's error into a reset stream (client) or `INTERNAL "Error encoding: …"`
/// (server), and the call should end with the hook's own status instead.
///
/// On a client the reset shows in two places, and both consult this slot. If the response
/// has not started (unary, client streaming, or a stream refused before the server
/// answered), the call itself fails, and the client takes the refusal in its place. If the
/// response has started (a bidi stream refused after replies arrived), the call has returned
/// its reply stream already, and the error comes out of that stream's body: the client puts
/// the slot in the request's extensions, and the transport wraps the response body with
/// [`Refusal::guard`], so the reply stream yields the hook's status rather than the reset's
/// `INTERNAL "h2 protocol error"`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Refusal(Arc<Mutex<Option<Status>>>);

impl Refusal {
    pub(crate) fn take(&self) -> Option<Status> {
        self.lock().take()
    }

    fn set(&self, status: &Status) {
        *self.lock() = Some(status.clone());
    }

    /// The refusal, left in place for the call's own result (see [`Refusal::take`]).
    fn get(&self) -> Option<Status> {
        self.lock().clone()
    }

    fn lock(&self) -> MutexGuard<'_, Option<Status>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `body`, with an error it ends in replaced by the refusal's status (as trailers), if
    /// there was a refusal. The encoder records the refusal before it returns the error that
    /// makes hyper reset the stream, so by the time the reset shows in the response body the
    /// slot is filled, and an error after a refusal is the reset it caused. What else the
    /// body carries (replies that came before, the server's trailers if they beat the reset)
    /// is left alone.
    pub(crate) fn guard(self, body: tonic::body::Body) -> tonic::body::Body {
        tonic::body::Body::new(Guarded {
            body,
            refusal: self,
            ended: false,
        })
    }
}

/// A response body that ends with a [`Refusal`]'s status when the hook refused a request
/// message and the stream broke for it.
struct Guarded {
    body: tonic::body::Body,
    refusal: Refusal,
    ended: bool,
}

impl http_body::Body for Guarded {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        if self.ended {
            return Poll::Ready(None);
        }
        let frame = std::task::ready!(Pin::new(&mut self.body).poll_frame(cx));
        let refused = match &frame {
            Some(Err(_)) => self.refusal.get(),
            _ => None,
        };
        let Some(refused) = refused else {
            return Poll::Ready(frame);
        };
        self.ended = true;
        // The refusal ends the body as trailers carrying its status, the way a server ends a
        // call, rather than as an error: tonic's reply stream yields a body error twice (it
        // keeps a copy for the next poll as well as returning it), a status in trailers once
        // before it ends. Its code and message come through whole; an `OK` refusal, or one
        // whose metadata cannot be headers, stays an error.
        let mut trailers = http::HeaderMap::new();
        if refused.code() != Code::Ok && refused.add_header(&mut trailers).is_ok() {
            Poll::Ready(Some(Ok(Frame::trailers(trailers))))
        } else {
            Poll::Ready(Some(Err(refused)))
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        if self.ended {
            http_body::SizeHint::with_exact(0)
        } else {
            self.body.size_hint()
        }
    }
}

impl<E, D> HookCodec<E, D> {
    /// Hooks on both directions.
    pub(crate) fn new(hooks: Option<Hooks>) -> Self {
        Self {
            inner: ProstCodec::default(),
            encode_hooks: hooks.clone(),
            decode_hooks: hooks,
            refusal: Refusal::default(),
            _types: PhantomData,
        }
    }

    /// Hooks on decoded messages only. Servers run the response hooks on what the handler
    /// returns, before the codec: tonic reports an encoder's error to the client as
    /// `INTERNAL "Error encoding: …"`, not as the hook's status.
    pub(crate) fn decoding(hooks: Option<Hooks>) -> Self {
        Self {
            inner: ProstCodec::default(),
            encode_hooks: None,
            decode_hooks: hooks,
            refusal: Refusal::default(),
            _types: PhantomData,
        }
    }

    /// Where a refusal of an outgoing message is kept.
    pub(crate) fn refusal(&self) -> Refusal {
        self.refusal.clone()
    }
}

impl<E, D> Codec for HookCodec<E, D>
where
    E: prost::Message + Send + 'static,
    D: prost::Message + Default + Send + 'static,
{
    type Encode = E;
    type Decode = D;
    type Encoder = HookEncoder<E>;
    type Decoder = HookDecoder<D>;

    fn encoder(&mut self) -> Self::Encoder {
        HookEncoder {
            inner: self.inner.encoder(),
            hooks: self.encode_hooks.clone(),
            refusal: self.refusal.clone(),
        }
    }

    fn decoder(&mut self) -> Self::Decoder {
        HookDecoder {
            inner: self.inner.decoder(),
            hooks: self.decode_hooks.clone(),
        }
    }
}

#[derive(Debug)]
pub(crate) struct HookEncoder<E> {
    inner: ProstEncoder<E>,
    hooks: Option<Hooks>,
    refusal: Refusal,
}

impl<E: prost::Message + 'static> Encoder for HookEncoder<E> {
    type Item = E;
    type Error = Status;

    fn encode(&mut self, item: E, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        if let Some(hooks) = &self.hooks
            && let Err(status) = hooks.check(hooks.encodes, &item)
        {
            self.refusal.set(&status);
            return Err(status);
        }
        self.inner.encode(item, dst)
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.inner.buffer_settings()
    }
}

#[derive(Debug)]
pub(crate) struct HookDecoder<D> {
    inner: ProstDecoder<D>,
    hooks: Option<Hooks>,
}

impl<D: prost::Message + Default + 'static> Decoder for HookDecoder<D> {
    type Item = D;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<D>, Status> {
        let message = self.inner.decode(src)?;
        if let (Some(hooks), Some(message)) = (&self.hooks, &message) {
            hooks.check(hooks.decodes(), message)?;
        }
        Ok(message)
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.inner.buffer_settings()
    }
}
