//! Static descriptions of RPC methods.
//!
//! Generated code emits one [`MethodDescriptor`] per RPC as a `const`, and passes it to every
//! dispatch call on the server and every call on the client. It is the one place where the
//! runtime learns which method is running, so interceptors, metrics, retries and per-method
//! configuration (later issues) key off it instead of parsing URI paths.

/// The four shapes an RPC can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MethodKind {
    /// One request, one response.
    Unary,
    /// One request, a stream of responses.
    ServerStreaming,
    /// A stream of requests, one response.
    ClientStreaming,
    /// Streams both ways.
    BidiStreaming,
}

impl MethodKind {
    /// The kind of a method that streams requests (`client`), replies (`server`), both or
    /// neither.
    #[cfg(feature = "gateway")]
    pub(crate) const fn of(client: bool, server: bool) -> Self {
        match (client, server) {
            (false, false) => Self::Unary,
            (false, true) => Self::ServerStreaming,
            (true, false) => Self::ClientStreaming,
            (true, true) => Self::BidiStreaming,
        }
    }

    /// Whether the client sends a stream of requests.
    pub const fn client_streaming(self) -> bool {
        matches!(self, Self::ClientStreaming | Self::BidiStreaming)
    }

    /// Whether the server answers with a stream of responses.
    pub const fn server_streaming(self) -> bool {
        matches!(self, Self::ServerStreaming | Self::BidiStreaming)
    }
}

/// What the runtime knows about one RPC method, fixed at generate time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MethodDescriptor {
    service: &'static str,
    method: &'static str,
    path: &'static str,
    kind: MethodKind,
    idempotent: bool,
}

impl MethodDescriptor {
    /// Describes a method. Generated code calls this; `path` must be `/{service}/{method}`.
    #[doc(hidden)]
    pub const fn new(
        service: &'static str,
        method: &'static str,
        path: &'static str,
        kind: MethodKind,
        idempotent: bool,
    ) -> Self {
        Self {
            service,
            method,
            path,
            kind,
            idempotent,
        }
    }

    /// Fully qualified service name, e.g. `greeter.v1.Greeter`.
    pub const fn service(&self) -> &'static str {
        self.service
    }

    /// Method name as written in the `.proto`, e.g. `SayHello`.
    pub const fn method(&self) -> &'static str {
        self.method
    }

    /// The HTTP/2 path of the method, e.g. `/greeter.v1.Greeter/SayHello`.
    pub const fn path(&self) -> &'static str {
        self.path
    }

    /// Unary or one of the streaming kinds.
    pub const fn kind(&self) -> MethodKind {
        self.kind
    }

    /// Whether the `.proto` marks the method `idempotency_level = IDEMPOTENT` or
    /// `NO_SIDE_EFFECTS`, which makes it safe to retry.
    pub const fn idempotent(&self) -> bool {
        self.idempotent
    }
}
