//! Testing services: a real server over an in-memory connection, client traits to mock, and
//! the helpers tests keep reaching for. Enabled by the `testing` feature (use it from
//! `[dev-dependencies]`).
//!
//! - [`InProcessServer`] serves a [`ServerBuilder`](crate::ServerBuilder) — every service and
//!   setting on it — over in-memory pipes instead of a port: no ports to pick, nothing to wait
//!   for, and the same code paths as TCP (HTTP/2 framing, metadata, status details, deadlines,
//!   compression, streaming, message limits). Its [`client`](InProcessServer::client) plugs
//!   into any generated client, and [`http`](InProcessServer::http) sends HTTP requests to
//!   the REST gateway served with it.
//! - Every generated client also implements a generated trait, `XxxApi`, with one method per
//!   RPC. Code that depends on the trait (`Arc<dyn GreeterApi>` or a generic) can be handed a
//!   hand-written fake in tests, or a `mockall` mock when the code is generated with the
//!   `mockall` option. The trait takes and returns boxed streams
//!   ([`RequestStream`](crate::RequestStream), [`BoxStream`](crate::BoxStream)), so fakes can
//!   build them.
//! - Helpers: [`RequestExt::with_metadata`] (with [`CallExt`](crate::CallExt) for deadlines
//!   and compression), [`ExpectStatus::expect_status`], [`collect`] and
//!   [`collect_until_error`] for reply streams, [`request_stream`] and [`request_channel`]
//!   for request streams.
//!
//! ```
//! # mod pb { include!(concat!(env!("CARGO_MANIFEST_DIR"), "/../protoc-gen-rzero/tests/golden/default/greeter.v1.rs")); }
//! use std::time::Duration;
//!
//! use pb::greeter_client::{GreeterApi, GreeterClient};
//! use pb::greeter_server::{Greeter, GreeterServer};
//! use pb::{HelloReply, HelloRequest};
//! use rzero::testing::{self, ExpectStatus, InProcessServer, RequestExt};
//! use rzero::{BoxStream, CallExt, Code, Request, Response, Status};
//!
//! struct MyGreeter;
//!
//! #[rzero::async_trait]
//! impl Greeter for MyGreeter {
//!     async fn say_hello(&self, request: Request<HelloRequest>)
//!         -> Result<Response<HelloReply>, Status> {
//!         let from = request.metadata().get("x-from").and_then(|v| v.to_str().ok());
//!         let from = from.unwrap_or("nobody").to_owned();
//!         let name = request.into_inner().name;
//!         if name.is_empty() {
//!             return Err(Status::invalid_argument("name is required"));
//!         }
//!         Ok(Response::new(HelloReply { message: format!("Hello {name}, from {from}") }))
//!     }
//!
//!     async fn say_hello_stream(&self, request: Request<HelloRequest>)
//!         -> Result<Response<BoxStream<HelloReply>>, Status> {
//!         let HelloRequest { name, repeat } = request.into_inner();
//!         let replies = (0..repeat).map(move |i| Ok(HelloReply { message: format!("{i}: {name}") }));
//!         Ok(Response::new(Box::pin(tokio_stream::iter(replies))))
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! // A real server, no port.
//! let server = InProcessServer::start(
//!     rzero::Server::builder().add_service(GreeterServer::new(MyGreeter)),
//! );
//! let client = GreeterClient::new(server.client());
//!
//! let request = Request::new(HelloRequest { name: "ann".into(), repeat: 0 })
//!     .with_metadata("x-from", "bob")
//!     .deadline(Duration::from_secs(5));
//! let reply = client.say_hello(request).await.unwrap().into_inner();
//! assert_eq!(reply.message, "Hello ann, from bob");
//!
//! let status = client.say_hello(HelloRequest::default()).await.expect_status(Code::InvalidArgument);
//! assert_eq!(status.message(), "name is required");
//!
//! let stream = client.say_hello_stream(HelloRequest { name: "ann".into(), repeat: 2 }).await.unwrap();
//! let replies = testing::collect(stream.into_inner()).await.unwrap();
//! assert_eq!(replies.len(), 2);
//!
//! // Code written against the trait takes the real client or a fake alike.
//! async fn greet(api: &dyn GreeterApi, name: &str) -> Result<String, Status> {
//!     let request = Request::new(HelloRequest { name: name.into(), repeat: 0 });
//!     Ok(api.say_hello(request).await?.into_inner().message)
//! }
//! assert_eq!(greet(&client, "cy").await.unwrap(), "Hello cy, from nobody");
//!
//! struct Unreachable;
//! #[rzero::async_trait]
//! impl GreeterApi for Unreachable {
//!     async fn say_hello(&self, _: Request<HelloRequest>) -> Result<Response<HelloReply>, Status> {
//!         Err(Status::unavailable("no backend"))
//!     }
//!     async fn say_hello_stream(&self, _: Request<HelloRequest>)
//!         -> Result<Response<BoxStream<HelloReply>>, Status> {
//!         Err(Status::unavailable("no backend"))
//!     }
//! }
//! greet(&Unreachable, "cy").await.expect_status(Code::Unavailable);
//!
//! server.shutdown().await.unwrap();
//! # }
//! ```

mod in_process;
mod requests;
mod status;
mod streams;

pub use in_process::InProcessServer;
pub use requests::{RequestExt, request_channel, request_stream};
pub use status::ExpectStatus;
pub use streams::{collect, collect_until_error};
