//! The protobuf codec with the interceptors' per-message hooks: every message of every kind
//! passes the hooks as it is encoded or decoded, so streams get them without wrapping the
//! stream types generated code and handlers see.

use std::marker::PhantomData;
use std::sync::Arc;

use tonic::Status;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
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
#[derive(Debug, Clone, Default)]
pub(crate) struct Refusal(Arc<std::sync::Mutex<Option<Status>>>);

impl Refusal {
    pub(crate) fn take(&self) -> Option<Status> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    fn set(&self, status: &Status) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(status.clone());
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
