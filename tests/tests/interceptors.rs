//! Interceptors on servers and clients: the order they run in, what they see (method,
//! metadata, request, response or status), refusing calls, handing values to handlers, and the
//! per-message hooks on every stream kind. Servers run over TCP and in process alike.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rzero::interceptor::{self, Call, Interceptor, Message, Next, Reply};
use rzero::testing::{self, ExpectStatus, InProcessServer, RequestExt, request_stream};
use rzero::{BoxStream, Code, MethodDescriptor, Request, Response, Status, Streaming};
use rzero_tests::default::echo::v1::echo_client::EchoClient;
use rzero_tests::default::echo::v1::echo_server::{Echo, EchoServer};
use rzero_tests::default::echo::v1::{EchoReply, EchoRequest};
use rzero_tests::echo::{ECHO_HEADER, EchoService, Served, Transport};

const LIMIT: Duration = Duration::from_secs(20);

async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: not done within {LIMIT:?}"))
}

fn word(message: &str) -> EchoRequest {
    EchoRequest {
        message: message.into(),
        ..Default::default()
    }
}

/// A shared, ordered log of what interceptors and handlers did.
#[derive(Debug, Clone, Default)]
struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    fn push(&self, entry: impl Into<String>) {
        self.0.lock().expect("log").push(entry.into());
    }

    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().expect("log"))
    }
}

/// Logs `NAME>` on the way in, `<NAME` (or `<NAME:CODE`) on the way out, and every message.
struct Tracer {
    name: &'static str,
    log: Log,
}

#[rzero::async_trait]
impl Interceptor for Tracer {
    async fn intercept(&self, call: Call, next: Next) -> Result<Reply, Status> {
        self.log
            .push(format!("{}>{}", self.name, call.method().method()));
        let result = next.run(call).await;
        match &result {
            Ok(_) => self.log.push(format!("<{}", self.name)),
            Err(status) => self.log.push(format!("<{}:{:?}", self.name, status.code())),
        }
        result
    }

    fn on_request_message(
        &self,
        _: &'static MethodDescriptor,
        message: &dyn Message,
    ) -> Result<(), Status> {
        let request = message
            .downcast_ref::<EchoRequest>()
            .expect("an EchoRequest");
        if request.message == "forbidden" {
            return Err(Status::invalid_argument(format!(
                "{} refused a request message",
                self.name
            )));
        }
        self.log
            .push(format!("{} req {}", self.name, request.message));
        Ok(())
    }

    fn on_response_message(
        &self,
        _: &'static MethodDescriptor,
        message: &dyn Message,
    ) -> Result<(), Status> {
        let reply = message.downcast_ref::<EchoReply>().expect("an EchoReply");
        self.log.push(format!(
            "{} resp {}:{}",
            self.name, reply.message, reply.index
        ));
        Ok(())
    }
}

/// A value a server interceptor hands to the handler through the request extensions.
#[derive(Debug, Clone)]
struct Caller(String);

/// The echo service, logging each handler run and the [`Caller`] it was handed.
#[derive(Clone)]
struct LoggingEcho {
    log: Log,
}

impl LoggingEcho {
    fn record<T>(&self, request: &Request<T>) {
        let caller = request.extensions().get::<Caller>().map(|c| c.0.clone());
        self.log.push(format!(
            "handler caller={}",
            caller.as_deref().unwrap_or("-")
        ));
    }
}

#[rzero::async_trait]
impl Echo for LoggingEcho {
    async fn unary(&self, request: Request<EchoRequest>) -> Result<Response<EchoReply>, Status> {
        self.record(&request);
        EchoService.unary(request).await
    }

    async fn server_stream(
        &self,
        request: Request<EchoRequest>,
    ) -> Result<Response<BoxStream<EchoReply>>, Status> {
        self.record(&request);
        EchoService.server_stream(request).await
    }

    async fn client_stream(
        &self,
        request: Request<Streaming<EchoRequest>>,
    ) -> Result<Response<EchoReply>, Status> {
        self.record(&request);
        EchoService.client_stream(request).await
    }

    async fn bidi(
        &self,
        request: Request<Streaming<EchoRequest>>,
    ) -> Result<Response<BoxStream<EchoReply>>, Status> {
        self.record(&request);
        EchoService.bidi(request).await
    }
}

/// Serves [`LoggingEcho`] over `transport` with two tracing interceptors (`a` then `b`) and
/// an authenticating closure after them.
async fn serve_traced(transport: Transport, log: &Log) -> Served {
    let builder = rzero::Server::builder()
        .interceptor(Tracer {
            name: "a",
            log: log.clone(),
        })
        .interceptor(Tracer {
            name: "b",
            log: log.clone(),
        })
        .interceptor(interceptor::from_fn(
            |mut call: Call, next: Next| async move {
                // Refuses calls without `x-user`; hands the user to the handler otherwise, and
                // marks the reply.
                let user = call
                    .metadata()
                    .get("x-user")
                    .and_then(|value| value.to_str().ok())
                    .map(str::to_owned)
                    .ok_or_else(|| Status::unauthenticated("x-user is required"))?;
                call.extensions_mut().insert(Caller(user.clone()));
                let mut reply = next.run(call).await?;
                reply
                    .metadata_mut()
                    .insert("x-served-for", user.parse().expect("ascii"));
                Ok(reply)
            },
        ))
        .add_service(EchoServer::new(LoggingEcho { log: log.clone() }));
    rzero_tests::echo::serve_builder(transport, builder).await
}

async fn server_interceptors_run_in_order_and_see_every_kind(transport: Transport) {
    let log = Log::default();
    let server = serve_traced(transport, &log).await;
    let client = EchoClient::new(within("connect", server.client()).await.expect("client"));

    // Unary: in order a, b, (auth), handler, then out b, a; messages seen by both.
    let response = within(
        "unary",
        client.unary(Request::new(word("hi")).with_metadata("x-user", "ann")),
    )
    .await
    .expect("unary");
    assert_eq!(
        response
            .metadata()
            .get("x-served-for")
            .map(|v| v.to_str().ok()),
        Some(Some("ann"))
    );
    assert_eq!(
        log.take(),
        [
            "a req hi",
            "b req hi",
            "a>Unary",
            "b>Unary",
            "handler caller=ann",
            "<b",
            "<a",
            "a resp hi:0",
            "b resp hi:0",
        ]
    );

    // Server streaming: one hook call per reply.
    let request = Request::new(EchoRequest {
        message: "s".into(),
        count: 2,
        ..Default::default()
    })
    .with_metadata("x-user", "bo");
    let stream = within("server_stream", client.server_stream(request))
        .await
        .expect("server_stream")
        .into_inner();
    assert_eq!(
        within("collect", testing::collect(stream))
            .await
            .expect("replies")
            .len(),
        2
    );
    let entries = log.take();
    assert_eq!(
        entries,
        [
            "a req s",
            "b req s",
            "a>ServerStream",
            "b>ServerStream",
            "handler caller=bo",
            "<b",
            "<a",
            "a resp s:0",
            "b resp s:0",
            "a resp s:1",
            "b resp s:1",
        ]
    );

    // Client streaming: each request message passes the hooks as the handler reads it.
    let request = request_stream([word("x"), word("y")]).with_metadata("x-user", "cy");
    let reply = within("client_stream", client.client_stream(request))
        .await
        .expect("client_stream")
        .into_inner();
    assert_eq!(reply.message, "x,y");
    let entries = log.take();
    for expected in [
        "a req x",
        "b req x",
        "a req y",
        "b req y",
        "handler caller=cy",
    ] {
        assert!(
            entries.contains(&expected.to_owned()),
            "{expected} missing from {entries:?}"
        );
    }
    assert_eq!(&entries[..2], ["a>ClientStream", "b>ClientStream"]);

    // Bidi: a request message a hook refuses ends the call with the hook's status, after
    // the replies to the messages before it.
    let request = request_stream([word("ok"), word("forbidden"), word("never")])
        .with_metadata("x-user", "di");
    let stream = within("bidi", client.bidi(request))
        .await
        .expect("bidi")
        .into_inner();
    let (replies, status) = within("collect", testing::collect_until_error(stream)).await;
    assert_eq!(replies.len(), 1, "{replies:?}");
    let status = status.expect("refused");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(status.message(), "a refused a request message");
    assert!(!log.take().iter().any(|entry| entry.contains("never")));

    server.shutdown().await.expect("shutdown");
}

async fn a_server_interceptor_refuses_before_the_handler(transport: Transport) {
    let log = Log::default();
    let server = serve_traced(transport, &log).await;
    let client = EchoClient::new(within("connect", server.client()).await.expect("client"));

    let status = within("unary", client.unary(word("hi")))
        .await
        .expect_status(Code::Unauthenticated);
    assert_eq!(status.message(), "x-user is required");
    // The outer interceptors saw the refusal; the handler never ran.
    assert_eq!(
        log.take(),
        [
            "a req hi",
            "b req hi",
            "a>Unary",
            "b>Unary",
            "<b:Unauthenticated",
            "<a:Unauthenticated",
        ]
    );

    // Streams are refused the same way.
    within("bidi", client.bidi(request_stream([word("x")])))
        .await
        .expect_status(Code::Unauthenticated);
    assert!(!log.take().iter().any(|entry| entry.starts_with("handler")));

    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn client_interceptors_add_metadata_and_see_replies_and_statuses() {
    let server = InProcessServer::start(
        rzero::Server::builder().add_service(rzero_tests::echo::echo_server()),
    );
    let log = Log::default();
    let seen = log.clone();
    let client = server
        .client()
        .interceptor(Tracer {
            name: "outer",
            log: log.clone(),
        })
        .interceptor(interceptor::from_fn(move |mut call: Call, next: Next| {
            let seen = seen.clone();
            async move {
                call.metadata_mut()
                    .insert("x-echo", "from-interceptor".parse().expect("ascii"));
                if let Some(request) = call
                    .message_mut()
                    .and_then(|message| message.downcast_mut::<EchoRequest>())
                {
                    request.message.push_str(" (edited)");
                }
                let result = next.run(call).await;
                match &result {
                    Ok(reply) => seen.push(format!(
                        "inner saw header {:?}",
                        reply.metadata().get(ECHO_HEADER).map(|v| v.to_str().ok())
                    )),
                    Err(status) => seen.push(format!("inner saw {:?}", status.code())),
                }
                result
            }
        }));
    let client = EchoClient::new(client);

    let reply = within("unary", client.unary(word("hi")))
        .await
        .expect("unary")
        .into_inner();
    assert_eq!(reply.message, "hi (edited)");
    assert_eq!(reply.metadata_echo, "from-interceptor");
    // Request hooks run as the (edited) message is encoded, inside the chain.
    assert_eq!(
        log.take(),
        [
            "outer>Unary",
            "outer req hi (edited)",
            "outer resp hi (edited):0",
            "inner saw header Some(Some(\"from-interceptor\"))",
            "<outer",
        ]
    );

    let failing = EchoRequest {
        message: "boom".into(),
        fail_with_code: Code::NotFound as i32,
        ..Default::default()
    };
    within("failing unary", client.unary(failing))
        .await
        .expect_status(Code::NotFound);
    assert_eq!(
        log.take(),
        [
            "outer>Unary",
            "outer req boom (edited)",
            "inner saw NotFound",
            "<outer:NotFound",
        ]
    );

    // A response stream's messages pass the client's hooks as they arrive.
    let stream = within(
        "server_stream",
        client.server_stream(EchoRequest {
            message: "s".into(),
            count: 2,
            ..Default::default()
        }),
    )
    .await
    .expect("server_stream")
    .into_inner();
    within("collect", testing::collect(stream))
        .await
        .expect("replies");
    let entries = log.take();
    assert!(
        entries.contains(&"outer resp s (edited):0".to_owned()),
        "{entries:?}"
    );
    assert!(
        entries.contains(&"outer resp s (edited):1".to_owned()),
        "{entries:?}"
    );
}

#[tokio::test]
async fn a_client_interceptor_can_answer_without_the_network() {
    // No server at all: the interceptor refuses before anything is sent.
    let client = rzero::Client::connect_lazy("127.0.0.1:9")
        .expect("lazy client")
        .interceptor(interceptor::from_fn(|call: Call, _next: Next| async move {
            Err(Status::permission_denied(format!(
                "{} is not allowed here",
                call.method().path()
            )))
        }));
    let status = within("unary", EchoClient::new(client).unary(word("hi")))
        .await
        .expect_status(Code::PermissionDenied);
    assert_eq!(status.message(), "/echo.v1.Echo/Unary is not allowed here");
}

/// A message hook's refusal ends the call with the hook's own status on the client too
/// (tonic would report an encoder's error as `INTERNAL "Error encoding: …"`).
#[tokio::test]
async fn a_client_request_hook_refusal_is_the_calls_status() {
    let server = InProcessServer::start(
        rzero::Server::builder().add_service(rzero_tests::echo::echo_server()),
    );
    let log = Log::default();
    let client = EchoClient::new(server.client().interceptor(Tracer {
        name: "outer",
        log: log.clone(),
    }));
    let status = within("unary", client.unary(word("forbidden")))
        .await
        .expect_status(Code::InvalidArgument);
    assert_eq!(status.message(), "outer refused a request message");
    let requests = request_stream([word("ok"), word("forbidden")]);
    let status = within("client stream", client.client_stream(requests))
        .await
        .expect_status(Code::InvalidArgument);
    assert_eq!(status.message(), "outer refused a request message");
    let status = within("server stream", client.server_stream(word("forbidden")))
        .await
        .expect_status(Code::InvalidArgument);
    assert_eq!(status.message(), "outer refused a request message");
    // A bidi stream refused at once: the echo server answers a bidi call's headers without
    // waiting for a request, so the status comes from the call or its reply stream,
    // whichever the reset reaches first.
    let status = match within("bidi", client.bidi(request_stream([word("forbidden")]))).await {
        Ok(response) => within("bidi replies", response.into_inner().message())
            .await
            .expect_status(Code::InvalidArgument),
        Err(status) => Err::<(), _>(status).expect_status(Code::InvalidArgument),
    };
    assert_eq!(status.message(), "outer refused a request message");
    server.shutdown().await.expect("shutdown");
}

/// The same on a bidi stream whose replies have started: the reply stream yields the hook's
/// status once and ends (tonic resets the stream on the encoder's error, and the reply
/// stream reported that reset, `INTERNAL "h2 protocol error"`, instead).
async fn a_client_request_hook_refusal_ends_a_bidi_reply_stream(transport: Transport) {
    let server = rzero_tests::echo::serve(transport, rzero_tests::echo::echo_server()).await;
    let log = Log::default();
    let client = EchoClient::new(server.client().await.expect("client").interceptor(Tracer {
        name: "outer",
        log: log.clone(),
    }));
    let (requests, request) = testing::request_channel(1);
    let mut replies = within("bidi", client.bidi(request))
        .await
        .expect("bidi")
        .into_inner();
    for (index, message) in ["one", "two"].into_iter().enumerate() {
        requests
            .send(word(message))
            .await
            .expect("request stream open");
        let reply = within("reply", replies.message())
            .await
            .expect("reply")
            .expect("a reply before the refusal");
        assert_eq!(
            (reply.message.as_str(), reply.index as usize),
            (message, index)
        );
    }
    // The third request is refused as it is encoded, after two replies came back.
    requests
        .send(word("forbidden"))
        .await
        .expect("request stream open");
    let status = within("refused", replies.message())
        .await
        .expect_status(Code::InvalidArgument);
    assert_eq!(status.message(), "outer refused a request message");
    assert!(
        within("after the refusal", replies.message())
            .await
            .expect("the status comes once")
            .is_none(),
        "the reply stream ends after the refusal"
    );
    server.shutdown().await.expect("shutdown");
}

macro_rules! on_both_transports {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn tcp() {
                super::$name(super::Transport::Tcp).await;
            }

            #[tokio::test]
            async fn in_process() {
                super::$name(super::Transport::InProcess).await;
            }
        }
    )*};
}

on_both_transports!(
    server_interceptors_run_in_order_and_see_every_kind,
    a_server_interceptor_refuses_before_the_handler,
    a_client_request_hook_refusal_ends_a_bidi_reply_stream,
);
