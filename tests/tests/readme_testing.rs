//! The README's "Testing your service" snippets, compiled and run. The regions between the
//! `README:begin NAME` / `README:end` markers are the snippets; `snippets_match_the_readme`
//! fails when the README and this file drift apart.

/// The generated `greeter.v1` as the README's `pb`.
mod pb {
    pub(crate) use rzero_tests::default::greeter::v1::*;
}

/// The service the README tests (its own section shows how to write one).
struct MyGreeter;

#[rzero::async_trait]
impl pb::greeter_server::Greeter for MyGreeter {
    async fn say_hello(
        &self,
        request: rzero::Request<pb::HelloRequest>,
    ) -> Result<rzero::Response<pb::HelloReply>, rzero::Status> {
        let name = request.into_inner().name;
        if name.is_empty() {
            return Err(rzero::Status::invalid_argument("name is required"));
        }
        Ok(rzero::Response::new(pb::HelloReply {
            message: format!("Hello {name}!"),
        }))
    }

    async fn say_hello_stream(
        &self,
        request: rzero::Request<pb::HelloRequest>,
    ) -> Result<rzero::Response<rzero::BoxStream<pb::HelloReply>>, rzero::Status> {
        let pb::HelloRequest { name, repeat } = request.into_inner();
        let replies = (0..repeat).map(move |_| {
            Ok(pb::HelloReply {
                message: format!("Hello {name}!"),
            })
        });
        Ok(rzero::Response::new(Box::pin(tokio_stream::iter(replies))))
    }
}

// README:begin in-process
use pb::greeter_client::{GreeterApi, GreeterClient};
use pb::greeter_server::GreeterServer;
use pb::{HelloReply, HelloRequest};
use rzero::testing::{self, ExpectStatus, InProcessServer, RequestExt};
use rzero::{BoxStream, CallExt, Code, Request, Response, Status};

#[tokio::test]
async fn greets_over_the_real_stack() {
    // The whole server over in-memory pipes: no port, no sleep, same HTTP/2 as production.
    let server =
        InProcessServer::start(rzero::Server::builder().add_service(GreeterServer::new(MyGreeter)));
    let client = GreeterClient::new(server.client());

    let request = Request::new(HelloRequest {
        name: "ann".into(),
        repeat: 0,
    })
    .with_metadata("x-request-id", "42")
    .deadline(std::time::Duration::from_secs(5));
    let reply = client.say_hello(request).await.unwrap().into_inner();
    assert_eq!(reply.message, "Hello ann!");

    let status = client
        .say_hello(HelloRequest::default())
        .await
        .expect_status(Code::InvalidArgument);
    assert_eq!(status.message(), "name is required");

    let stream = client
        .say_hello_stream(HelloRequest {
            name: "bo".into(),
            repeat: 3,
        })
        .await
        .unwrap();
    assert_eq!(
        testing::collect(stream.into_inner()).await.unwrap().len(),
        3
    );

    server.shutdown().await.unwrap();
}

// Code that calls the service depends on the generated trait...
async fn welcome(greeter: &dyn GreeterApi, name: &str) -> Result<String, Status> {
    let request = Request::new(HelloRequest {
        name: name.into(),
        repeat: 0,
    });
    Ok(greeter.say_hello(request).await?.into_inner().message)
}

// ...so its tests can hand it a fake (or the real client: `welcome(&client, ..)`).
struct Down;

#[rzero::async_trait]
impl GreeterApi for Down {
    async fn say_hello(&self, _: Request<HelloRequest>) -> Result<Response<HelloReply>, Status> {
        Err(Status::unavailable("greeter is down"))
    }

    async fn say_hello_stream(
        &self,
        _: Request<HelloRequest>,
    ) -> Result<Response<BoxStream<HelloReply>>, Status> {
        Err(Status::unavailable("greeter is down"))
    }
}

#[tokio::test]
async fn welcome_reports_an_outage() {
    welcome(&Down, "ann").await.expect_status(Code::Unavailable);
}
// README:end

/// The mock snippet runs against the "options" case, generated with `mockall=always` (the
/// default case has no mocks), so it has its own `pb` and `welcome` over that trait.
mod with_mockall {
    mod pb {
        pub(super) use rzero_tests::options::greeter::v1::*;
    }
    use pb::HelloRequest;
    use pb::greeter_client::GreeterApi;
    use rzero::{Request, Status};

    async fn welcome(greeter: &dyn GreeterApi, name: &str) -> Result<String, Status> {
        let request = Request::new(HelloRequest {
            name: name.into(),
            repeat: 0,
        });
        Ok(greeter.say_hello(request).await?.into_inner().message)
    }

    // README:begin mockall
    use pb::HelloReply;
    use pb::greeter_client::MockGreeterApi;
    use rzero::Response;

    #[tokio::test]
    async fn welcome_with_a_mock() {
        let mut greeter = MockGreeterApi::new();
        greeter
            .expect_say_hello()
            .withf(|request| request.get_ref().name == "ann")
            .times(1)
            .returning(|_| {
                Ok(Response::new(HelloReply {
                    message: "hi ann".into(),
                }))
            });
        assert_eq!(welcome(&greeter, "ann").await.unwrap(), "hi ann");
    }
    // README:end
}

/// The snippet called `name` in this file, without the module indentation.
fn region(source: &str, name: &str) -> String {
    let begin = format!("// README:begin {name}\n");
    let start = source.find(&begin).expect("begin marker") + begin.len();
    let end = start + source[start..].find("// README:end").expect("end marker");
    let body = &source[start..end];
    let indent = body
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| line.len() - line.trim_start().len())
        .min()
        .unwrap_or(0);
    body.lines()
        .map(|line| line.get(indent..).unwrap_or("").trim_end())
        .collect::<Vec<_>>()
        .join("\n")
        .trim_end()
        .to_owned()
}

/// The README's ```rust blocks in the "Testing your service" section, in order.
fn readme_blocks() -> Vec<String> {
    let readme = include_str!("../../README.md");
    let section = readme
        .split("\n## ")
        .find(|section| section.starts_with("Testing your service"))
        .expect("a \"Testing your service\" section in README.md");
    section
        .split("```rust\n")
        .skip(1)
        .map(|block| {
            block
                .split("```")
                .next()
                .unwrap_or("")
                .trim_end()
                .to_owned()
        })
        .collect()
}

#[test]
fn snippets_match_the_readme() {
    let source = include_str!("readme_testing.rs");
    let expected = [region(source, "in-process"), region(source, "mockall")];
    assert_eq!(
        readme_blocks(),
        expected,
        "README.md and tests/tests/readme_testing.rs differ"
    );
}
