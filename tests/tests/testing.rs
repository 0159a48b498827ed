//! `rzero::testing` as a user meets it: code written against a generated client trait, tested
//! with a `mockall` mock and with a hand-written fake; the real client behind the same trait
//! over the in-process server; and the request, stream and status helpers.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rzero::testing::{
    self, ExpectStatus, InProcessServer, RequestExt, request_channel, request_stream,
};
use rzero::{BoxStream, CallExt, Code, Request, RequestStream, Response, Status};
use tokio_stream::StreamExt;

/// Bound for anything that should finish quickly.
const LIMIT: Duration = Duration::from_secs(20);

async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: not done within {LIMIT:?}"))
}

/// Code under test in the mock tests: it only knows the `EchoApi` trait (of the "options"
/// case, generated with `mockall=always`).
mod greeter_logic {
    use rzero::testing::RequestExt;
    use rzero::{Request, Status};
    use rzero_tests::options::echo::v1::EchoRequest;
    use rzero_tests::options::echo::v1::echo_client::EchoApi;
    use tokio_stream::StreamExt;

    /// Asks the echo service to greet `name` on behalf of `caller`.
    pub(crate) async fn greet(
        api: &dyn EchoApi,
        caller: &str,
        name: &str,
    ) -> Result<String, Status> {
        let request = Request::new(EchoRequest {
            message: format!("hello {name}"),
            ..Default::default()
        })
        .with_metadata("x-echo", caller);
        let reply = api.unary(request).await?.into_inner();
        Ok(format!("{} (for {})", reply.message, reply.metadata_echo))
    }

    /// Counts the replies of a server stream, stopping at the first error.
    pub(crate) async fn count_replies(api: &dyn EchoApi, count: u32) -> Result<usize, Status> {
        let request = Request::new(EchoRequest {
            count,
            ..Default::default()
        });
        let mut replies = api.server_stream(request).await?.into_inner();
        let mut seen = 0;
        while let Some(reply) = replies.next().await {
            reply?;
            seen += 1;
        }
        Ok(seen)
    }

    /// Sends every word as one client stream and returns what the service made of it.
    pub(crate) async fn join(api: &dyn EchoApi, words: &[&str]) -> Result<String, Status> {
        let requests: Vec<EchoRequest> = words
            .iter()
            .map(|word| EchoRequest {
                message: (*word).to_owned(),
                ..Default::default()
            })
            .collect();
        let reply = api
            .client_stream(rzero::testing::request_stream(requests))
            .await?;
        Ok(reply.into_inner().message)
    }
}

mod with_mockall {
    use super::*;
    use rzero_tests::options::echo::v1::EchoReply;
    use rzero_tests::options::echo::v1::echo_client::MockEchoApi;

    #[tokio::test]
    async fn unary_expectation_sees_the_request_and_its_metadata() {
        let mut mock = MockEchoApi::new();
        mock.expect_unary()
            .withf(|request| {
                request.get_ref().message == "hello ann"
                    && request.metadata().get("x-echo").map(|v| v.to_str().ok())
                        == Some(Some("bob"))
            })
            .times(1)
            .returning(|request| {
                let caller = request.metadata().get("x-echo").expect("x-echo");
                Ok(Response::new(EchoReply {
                    message: request.get_ref().message.to_uppercase(),
                    metadata_echo: caller.to_str().expect("ascii").to_owned(),
                    ..Default::default()
                }))
            });

        let greeting = greeter_logic::greet(&mock, "bob", "ann")
            .await
            .expect("greeting");
        assert_eq!(greeting, "HELLO ANN (for bob)");
    }

    #[tokio::test]
    async fn unary_failure_propagates_with_its_code() {
        let mut mock = MockEchoApi::new();
        mock.expect_unary()
            .returning(|_| Err(Status::permission_denied("not you")));
        let status = greeter_logic::greet(&mock, "eve", "ann")
            .await
            .expect_status(Code::PermissionDenied);
        assert_eq!(status.message(), "not you");
    }

    #[tokio::test]
    async fn server_stream_expectation_returns_a_boxed_stream() {
        let mut mock = MockEchoApi::new();
        mock.expect_server_stream().returning(|request| {
            let count = request.get_ref().count;
            let replies = (0..count).map(|index| {
                Ok(EchoReply {
                    index,
                    ..Default::default()
                })
            });
            let stream: BoxStream<EchoReply> = Box::pin(tokio_stream::iter(replies));
            Ok(Response::new(stream))
        });
        let counted = greeter_logic::count_replies(&mock, 3).await;
        assert_eq!(counted.expect("count"), 3);

        // A stream that fails midway: the logic stops at the error.
        let mut mock = MockEchoApi::new();
        mock.expect_server_stream().returning(|_| {
            let replies = vec![
                Ok(EchoReply::default()),
                Err(Status::data_loss("torn")),
                Ok(EchoReply::default()),
            ];
            let stream: BoxStream<EchoReply> = Box::pin(tokio_stream::iter(replies));
            Ok(Response::new(stream))
        });
        let status = greeter_logic::count_replies(&mock, 3)
            .await
            .expect_status(Code::DataLoss);
        assert_eq!(status.message(), "torn");
    }
}

/// A hand-written fake: no mocking library, and it can read request streams asynchronously.
#[derive(Default)]
struct Fake {
    joined: Mutex<Vec<String>>,
}

#[rzero::async_trait]
impl rzero_tests::options::echo::v1::echo_client::EchoApi for Fake {
    async fn unary(
        &self,
        _: Request<rzero_tests::options::echo::v1::EchoRequest>,
    ) -> Result<Response<rzero_tests::options::echo::v1::EchoReply>, Status> {
        Err(Status::unimplemented("unary"))
    }

    async fn server_stream(
        &self,
        _: Request<rzero_tests::options::echo::v1::EchoRequest>,
    ) -> Result<Response<BoxStream<rzero_tests::options::echo::v1::EchoReply>>, Status> {
        Err(Status::unimplemented("server_stream"))
    }

    async fn client_stream(
        &self,
        request: Request<RequestStream<rzero_tests::options::echo::v1::EchoRequest>>,
    ) -> Result<Response<rzero_tests::options::echo::v1::EchoReply>, Status> {
        let words: Vec<String> = request
            .into_inner()
            .map(|request| request.message)
            .collect()
            .await;
        self.joined
            .lock()
            .expect("joined")
            .extend(words.iter().cloned());
        Ok(Response::new(rzero_tests::options::echo::v1::EchoReply {
            message: words.join("+"),
            ..Default::default()
        }))
    }

    async fn bidi(
        &self,
        request: Request<RequestStream<rzero_tests::options::echo::v1::EchoRequest>>,
    ) -> Result<Response<BoxStream<rzero_tests::options::echo::v1::EchoReply>>, Status> {
        let replies = request.into_inner().map(|request| {
            Ok(rzero_tests::options::echo::v1::EchoReply {
                message: request.message,
                ..Default::default()
            })
        });
        Ok(Response::new(Box::pin(replies)))
    }
}

#[tokio::test]
async fn a_fake_reads_the_request_stream() {
    let fake = Fake::default();
    let joined = greeter_logic::join(&fake, &["a", "b", "c"])
        .await
        .expect("join");
    assert_eq!(joined, "a+b+c");
    assert_eq!(*fake.joined.lock().expect("joined"), ["a", "b", "c"]);
}

/// The real client behind the trait, against the real echo service in process: all four kinds
/// through `&dyn EchoApi`, with metadata.
mod real_client_through_the_trait {
    use super::*;
    use rzero_tests::default::echo::v1::echo_client::{EchoApi, EchoClient};
    use rzero_tests::default::echo::v1::{EchoReply, EchoRequest};
    use rzero_tests::echo::{ECHO_HEADER, ECHO_TRAILER, echo_server};

    fn start() -> (InProcessServer, Arc<dyn EchoApi>) {
        let server = InProcessServer::start(rzero::Server::builder().add_service(echo_server()));
        let api: Arc<dyn EchoApi> = Arc::new(EchoClient::new(server.client()));
        (server, api)
    }

    fn word(message: &str) -> EchoRequest {
        EchoRequest {
            message: message.into(),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn unary_with_metadata_and_deadline() {
        let (_server, api) = start();
        let request = Request::new(word("hi"))
            .with_metadata("x-echo", "e1")
            .deadline(Duration::from_secs(10));
        let response = within("unary", api.unary(request)).await.expect("unary");
        assert_eq!(
            response
                .metadata()
                .get(ECHO_HEADER)
                .map(|v| v.to_str().ok()),
            Some(Some("e1"))
        );
        let reply = response.into_inner();
        assert_eq!(
            (reply.message.as_str(), reply.metadata_echo.as_str()),
            ("hi", "e1")
        );
    }

    #[tokio::test]
    async fn server_stream_collects_every_reply() {
        let (_server, api) = start();
        let request = Request::new(EchoRequest {
            message: "n".into(),
            count: 4,
            ..Default::default()
        });
        let stream = within("server_stream", api.server_stream(request))
            .await
            .expect("server_stream")
            .into_inner();
        let replies = within("collect", testing::collect(stream))
            .await
            .expect("replies");
        let indexes: Vec<u32> = replies.iter().map(|reply| reply.index).collect();
        assert_eq!(indexes, [0, 1, 2, 3]);
    }

    #[tokio::test]
    async fn client_stream_from_values() {
        let (_server, api) = start();
        let request = request_stream([word("a"), word("b")]).with_metadata("x-echo", "e2");
        let reply = within("client_stream", api.client_stream(request))
            .await
            .expect("client_stream")
            .into_inner();
        assert_eq!((reply.message.as_str(), reply.index), ("a,b", 2));
        assert_eq!(reply.metadata_echo, "e2");
    }

    #[tokio::test]
    async fn bidi_conversation_through_a_channel() {
        let (_server, api) = start();
        let (sender, request) = request_channel(4);
        let mut replies = within("bidi", api.bidi(request))
            .await
            .expect("bidi")
            .into_inner();
        for text in ["one", "two"] {
            sender.send(word(text)).await.expect("send");
            let reply: EchoReply = within("reply", replies.next())
                .await
                .expect("a reply")
                .expect("no error");
            assert_eq!(reply.message, text);
        }
        drop(sender);
        assert!(within("end", replies.next()).await.is_none());
    }

    #[tokio::test]
    async fn a_stream_that_fails_keeps_the_replies_before_the_error() {
        let (_server, api) = start();
        let failing = EchoRequest {
            message: "bad".into(),
            fail_with_code: Code::Aborted as i32,
            ..Default::default()
        };
        let request = request_stream([word("ok1"), word("ok2"), failing]);
        let stream = within("bidi", api.bidi(request))
            .await
            .expect("bidi")
            .into_inner();
        let (replies, status) = within("collect", testing::collect_until_error(stream)).await;
        let messages: Vec<&str> = replies.iter().map(|reply| reply.message.as_str()).collect();
        assert_eq!(messages, ["ok1", "ok2"]);
        let status = status.expect("the stream failed");
        assert_eq!(status.code(), Code::Aborted, "{status:?}");

        // `collect` gives the status alone.
        let request = request_stream([word("ok"), failing_word()]);
        let stream = within("bidi", api.bidi(request))
            .await
            .expect("bidi")
            .into_inner();
        within("collect", testing::collect(stream))
            .await
            .expect_status(Code::Aborted);
    }

    fn failing_word() -> EchoRequest {
        EchoRequest {
            message: "bad".into(),
            fail_with_code: Code::Aborted as i32,
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn trailers_cross_the_in_process_transport() {
        let (server, _) = start();
        let client = EchoClient::new(server.client());
        let request = Request::new(EchoRequest {
            message: "s".into(),
            count: 1,
            ..Default::default()
        })
        .with_metadata("x-echo", "e3");
        let mut stream = within("server_stream", client.server_stream(request))
            .await
            .expect("server_stream")
            .into_inner();
        while within("next", stream.message())
            .await
            .expect("reply")
            .is_some()
        {}
        let trailers = within("trailers", stream.trailers())
            .await
            .expect("trailers")
            .expect("some trailers");
        assert_eq!(
            trailers.get(ECHO_TRAILER).map(|v| v.to_str().ok()),
            Some(Some("e3"))
        );
    }
}

#[test]
#[should_panic(expected = "expected a NotFound status, but the call succeeded: 7")]
fn expect_status_panics_on_success() {
    let result: Result<u32, Status> = Ok(7);
    result.expect_status(Code::NotFound);
}

#[test]
#[should_panic(expected = "expected a NotFound status, got Internal: \"boom\"")]
fn expect_status_panics_on_another_code() {
    let result: Result<u32, Status> = Err(Status::internal("boom"));
    result.expect_status(Code::NotFound);
}

#[test]
#[should_panic(expected = "is not a valid metadata value")]
fn with_metadata_names_a_bad_value() {
    let _ = Request::new(()).with_metadata("x-key", "line\nbreak");
}

#[test]
fn with_binary_metadata_keeps_the_bytes() {
    let request = Request::new(()).with_binary_metadata("x-blob-bin", &[0, 159, 255]);
    let value = request
        .metadata()
        .get_bin("x-blob-bin")
        .expect("x-blob-bin");
    assert_eq!(value.to_bytes().expect("base64").as_ref(), [0, 159, 255]);
}
