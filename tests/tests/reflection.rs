//! gRPC server reflection (`rzero::reflection`) on a real server over loopback TCP:
//! `greeter.v1.Greeter` and `echo.v1.Echo` served, the descriptor sets of their packages and
//! of the two shop packages (which share files) registered.
//!
//! - An independent client: Python grpcio-reflection's v1alpha
//!   `ProtoReflectionDescriptorDatabase`, raw `grpc.reflection.v1` calls, and dynamic calls
//!   built from the reflected descriptors (`tests/python/reflection_peer.py`). It fails (it
//!   does not skip) when Python or grpcio-reflection is missing:
//!   `pip install -r tests/python/requirements.txt`.
//! - rzero's generated reflection clients, v1 and v1alpha, one request at a time on one
//!   stream: answers, misses (`NOT_FOUND` in the stream, which stays open), extensions.

use std::future::Future;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use prost::Message;
use rzero::reflection::pb::{v1, v1alpha};
use rzero::{Request, Response, Status, Streaming};
use rzero_tests::default::greeter::v1::greeter_server::{Greeter, GreeterServer};
use rzero_tests::default::greeter::v1::{HelloReply, HelloRequest};
use rzero_tests::default::{echo, greeter, shop};
use rzero_tests::echo::{ServerHandle, echo_server, spawn_builder};
use tokio::io::AsyncReadExt;
use tokio::process::Command;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use v1::server_reflection_request::MessageRequest;
use v1::server_reflection_response::MessageResponse;

/// Bound for one step.
const LIMIT: Duration = Duration::from_secs(30);
/// Bound for the whole Python scenario (it compiles a proto first).
const SCENARIO: Duration = Duration::from_secs(180);

async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: not done within {LIMIT:?}"))
}

/// Says `Hello <name>`; `SayHelloStream` is not needed here.
struct Greet;

#[rzero::async_trait]
impl Greeter for Greet {
    async fn say_hello(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<HelloReply>, Status> {
        let name = request.into_inner().name;
        Ok(Response::new(HelloReply {
            message: format!("Hello {name}"),
        }))
    }

    async fn say_hello_stream(
        &self,
        _request: Request<HelloRequest>,
    ) -> Result<Response<rzero::BoxStream<HelloReply>>, Status> {
        Err(Status::unimplemented("not here"))
    }
}

/// The services every test server here lists.
const SERVED: [&str; 5] = [
    "greeter.v1.Greeter",
    "echo.v1.Echo",
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

async fn spawn_reflecting() -> (std::net::SocketAddr, ServerHandle) {
    let builder = rzero::Server::builder()
        .add_service(GreeterServer::new(Greet))
        .add_service(echo_server())
        .reflection(&[
            greeter::v1::FILE_DESCRIPTOR_SET,
            echo::v1::FILE_DESCRIPTOR_SET,
        ])
        // Sets sharing files (catalog.proto, money.proto, timestamp.proto), added later.
        .reflection(&[
            shop::catalog::v1::FILE_DESCRIPTOR_SET,
            shop::orders::v1::FILE_DESCRIPTOR_SET,
        ]);
    spawn_builder(builder).await
}

#[tokio::test]
async fn python_reflection_client_describes_and_calls_the_server() {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python/reflection_peer.py");
    let probe = std::process::Command::new("python3")
        .args(["-c", "import grpc, grpc_tools, grpc_reflection"])
        .stdin(Stdio::null())
        .output();
    match probe {
        Ok(output) if output.status.success() => {}
        other => panic!(
            "this test needs Python 3 with grpcio-reflection: \
             `pip install -r tests/python/requirements.txt` ({other:?})"
        ),
    }
    let (addr, server) = spawn_reflecting().await;
    let mut child = Command::new("python3")
        .arg(&script)
        .arg(addr.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", script.display()));
    let (mut stdout, mut stderr) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let output = async {
        let (mut out, mut err) = (String::new(), String::new());
        let (a, b) = tokio::join!(
            stdout.read_to_string(&mut out),
            stderr.read_to_string(&mut err)
        );
        a.and(b).map(|_| (out, err))
    };
    let run = async { tokio::join!(output, child.wait()) };
    let ((out, err), status) = match tokio::time::timeout(SCENARIO, run).await {
        Ok((Ok(output), Ok(status))) => (output, status),
        Ok((output, status)) => panic!("reading the Python client failed: {output:?} {status:?}"),
        // Dropping `child` (kill_on_drop) stops it by pid.
        Err(_) => panic!("the Python client did not finish within {SCENARIO:?}"),
    };
    let report = format!("stdout:\n{out}\nstderr:\n{err}");
    println!("{report}");
    assert!(
        status.success(),
        "the Python client failed ({status})\n{report}"
    );
    assert!(!out.contains("FAIL"), "{report}");
    let passed = out.lines().filter(|line| line.starts_with("ok ")).count();
    assert_eq!(passed, 10, "{report}");
    server.shutdown().await.unwrap();
}

/// One reflection stream, asked one question at a time.
struct Session<Req, Resp> {
    requests: mpsc::Sender<Req>,
    responses: Streaming<Resp>,
}

impl<Req: Send + 'static, Resp> Session<Req, Resp> {
    async fn ask(&mut self, request: Req) -> Resp {
        within("send", self.requests.send(request))
            .await
            .expect("the stream is open");
        within("answer", self.responses.message())
            .await
            .expect("an answer, not a status")
            .expect("an answer, not the end of the stream")
    }
}

async fn v1_session(
    addr: std::net::SocketAddr,
) -> Session<v1::ServerReflectionRequest, v1::ServerReflectionResponse> {
    let client = within(
        "connect",
        v1::server_reflection_client::ServerReflectionClient::connect(&addr.to_string()),
    )
    .await
    .unwrap();
    let (requests, rx) = mpsc::channel(4);
    let responses = within(
        "v1 call",
        client.server_reflection_info(ReceiverStream::new(rx)),
    )
    .await
    .unwrap()
    .into_inner();
    Session {
        requests,
        responses,
    }
}

fn question(request: MessageRequest) -> v1::ServerReflectionRequest {
    v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(request),
    }
}

/// The names of the files of a file answer, or `error <code>`.
fn files(response: &v1::ServerReflectionResponse) -> Vec<String> {
    match &response.message_response {
        Some(MessageResponse::FileDescriptorResponse(files)) => files
            .file_descriptor_proto
            .iter()
            .map(|raw| {
                prost_types::FileDescriptorProto::decode(raw.as_slice())
                    .expect("a FileDescriptorProto")
                    .name()
                    .to_owned()
            })
            .collect(),
        Some(MessageResponse::ErrorResponse(error)) => vec![format!("error {}", error.error_code)],
        other => panic!("not a file answer: {other:?}"),
    }
}

fn listed(response: &v1::ServerReflectionResponse) -> Vec<String> {
    match &response.message_response {
        Some(MessageResponse::ListServicesResponse(list)) => {
            list.service.iter().map(|s| s.name.clone()).collect()
        }
        other => panic!("not a service list: {other:?}"),
    }
}

#[tokio::test]
async fn v1_answers_one_question_after_another_on_one_stream() {
    let (addr, server) = spawn_reflecting().await;
    let mut session = v1_session(addr).await;

    let answer = session
        .ask(question(MessageRequest::ListServices(String::new())))
        .await;
    assert_eq!(listed(&answer), SERVED);

    let symbol = MessageRequest::FileContainingSymbol("greeter.v1.Greeter".into());
    let answer = session.ask(question(symbol.clone())).await;
    assert_eq!(files(&answer), ["greeter/v1/greeter.proto"]);
    assert_eq!(answer.original_request, Some(question(symbol)));
    let greeter = match &answer.message_response {
        Some(MessageResponse::FileDescriptorResponse(files)) => {
            prost_types::FileDescriptorProto::decode(files.file_descriptor_proto[0].as_slice())
                .unwrap()
        }
        _ => unreachable!(),
    };
    assert_eq!(greeter.service[0].method[0].name(), "SayHello");
    assert_eq!(
        greeter.service[0].method[0].input_type(),
        ".greeter.v1.HelloRequest"
    );
    // Exactly the bytes the generated set holds.
    let set = prost_types::FileDescriptorSet::decode(greeter::v1::FILE_DESCRIPTOR_SET).unwrap();
    assert_eq!(greeter, set.file[0]);

    // A miss is an answer on the stream, which goes on.
    let miss = session
        .ask(question(MessageRequest::FileContainingSymbol(
            "nope.v1.Nothing".into(),
        )))
        .await;
    assert_eq!(files(&miss), ["error 5"]);
    let miss = session
        .ask(question(MessageRequest::FileByFilename(
            "nope.proto".into(),
        )))
        .await;
    assert_eq!(files(&miss), ["error 5"]);

    // Methods, fields and nested names resolve; a file comes with its imports, each sent
    // once per stream (the requested file always).
    let orders = session
        .ask(question(MessageRequest::FileContainingSymbol(
            "shop.orders.v1.OrderService".into(),
        )))
        .await;
    let orders = files(&orders);
    assert_eq!(orders[0], "shop/orders/v1/orders.proto");
    for import in [
        "shop/catalog/v1/catalog.proto",
        "shop/common/v1/money.proto",
        "google/protobuf/timestamp.proto",
    ] {
        assert!(
            orders.iter().any(|f| f == import),
            "{import} missing: {orders:?}"
        );
    }
    let money = session
        .ask(question(MessageRequest::FileContainingSymbol(
            "shop.common.v1.Money".into(),
        )))
        .await;
    assert_eq!(files(&money), ["shop/common/v1/money.proto"]);
    let method = session
        .ask(question(MessageRequest::FileContainingSymbol(
            "echo.v1.Echo.Bidi".into(),
        )))
        .await;
    assert_eq!(files(&method), ["echo/v1/echo.proto"]);
    let field = session
        .ask(question(MessageRequest::FileContainingSymbol(
            ".echo.v1.EchoRequest.payload".into(),
        )))
        .await;
    assert_eq!(files(&field), ["echo/v1/echo.proto"]);
    // The health and reflection protos describe themselves.
    let health = session
        .ask(question(MessageRequest::FileContainingSymbol(
            "grpc.health.v1.Health".into(),
        )))
        .await;
    assert_eq!(files(&health), ["grpc/health/v1/health.proto"]);
    let itself = session
        .ask(question(MessageRequest::FileContainingSymbol(
            "grpc.reflection.v1alpha.ServerReflection".into(),
        )))
        .await;
    assert_eq!(files(&itself), ["grpc/reflection/v1alpha/reflection.proto"]);

    // Extensions: a known message type has none here; an unknown one is not found.
    let numbers = session
        .ask(question(MessageRequest::AllExtensionNumbersOfType(
            "echo.v1.EchoRequest".into(),
        )))
        .await;
    match numbers.message_response {
        Some(MessageResponse::AllExtensionNumbersResponse(numbers)) => {
            assert_eq!(numbers.base_type_name, "echo.v1.EchoRequest");
            assert!(numbers.extension_number.is_empty());
        }
        other => panic!("not an extension answer: {other:?}"),
    }
    let unknown = session
        .ask(question(MessageRequest::AllExtensionNumbersOfType(
            "nope.v1.Nothing".into(),
        )))
        .await;
    assert_eq!(files(&unknown), ["error 5"]);
    let extension = session
        .ask(question(MessageRequest::FileContainingExtension(
            v1::ExtensionRequest {
                containing_type: "echo.v1.EchoRequest".into(),
                extension_number: 100,
            },
        )))
        .await;
    assert_eq!(files(&extension), ["error 5"]);

    drop(session);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn v1alpha_answers_as_v1_does() {
    let (addr, server) = spawn_reflecting().await;
    let client = within(
        "connect",
        v1alpha::server_reflection_client::ServerReflectionClient::connect(&addr.to_string()),
    )
    .await
    .unwrap();
    use v1alpha::server_reflection_request::MessageRequest as Alpha;
    use v1alpha::server_reflection_response::MessageResponse as AlphaResponse;
    let ask = |request| v1alpha::ServerReflectionRequest {
        host: "here".into(),
        message_request: Some(request),
    };
    let requests = vec![
        ask(Alpha::ListServices(String::new())),
        ask(Alpha::FileContainingSymbol("echo.v1.EchoReply".into())),
        ask(Alpha::FileContainingSymbol("nope.v1.Nothing".into())),
        ask(Alpha::FileByFilename("greeter/v1/greeter.proto".into())),
    ];
    let mut responses = within(
        "v1alpha call",
        client.server_reflection_info(tokio_stream::iter(requests)),
    )
    .await
    .unwrap()
    .into_inner();
    let mut answers = Vec::new();
    while let Some(answer) = within("answer", responses.message()).await.unwrap() {
        answers.push(answer);
    }
    assert_eq!(answers.len(), 4);
    assert!(answers.iter().all(|a| a.valid_host == "here"));
    match &answers[0].message_response {
        Some(AlphaResponse::ListServicesResponse(list)) => {
            let names: Vec<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
            assert_eq!(names, SERVED);
        }
        other => panic!("not a service list: {other:?}"),
    }
    let file_names = |answer: &v1alpha::ServerReflectionResponse| match &answer.message_response {
        Some(AlphaResponse::FileDescriptorResponse(files)) => files
            .file_descriptor_proto
            .iter()
            .map(|raw| {
                prost_types::FileDescriptorProto::decode(raw.as_slice())
                    .unwrap()
                    .name()
                    .to_owned()
            })
            .collect::<Vec<_>>(),
        other => panic!("not a file answer: {other:?}"),
    };
    assert_eq!(file_names(&answers[1]), ["echo/v1/echo.proto"]);
    match &answers[2].message_response {
        Some(AlphaResponse::ErrorResponse(error)) => {
            assert_eq!(error.error_code, rzero::Code::NotFound as i32);
            assert!(error.error_message.contains("nope.v1.Nothing"), "{error:?}");
        }
        other => panic!("not an error: {other:?}"),
    }
    assert_eq!(file_names(&answers[3]), ["greeter/v1/greeter.proto"]);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn reflection_is_off_unless_asked_for_and_lists_only_what_is_served() {
    // Off by default.
    let (addr, server) = spawn_builder(rzero::Server::builder().add_service(echo_server())).await;
    let client = within(
        "connect",
        v1::server_reflection_client::ServerReflectionClient::connect(&addr.to_string()),
    )
    .await
    .unwrap();
    let request = question(MessageRequest::ListServices(String::new()));
    let status = match within(
        "call",
        client.server_reflection_info(tokio_stream::iter([request])),
    )
    .await
    {
        Ok(response) => within("answer", response.into_inner().message())
            .await
            .expect_err("no reflection service"),
        Err(status) => status,
    };
    assert_eq!(status.code(), rzero::Code::Unimplemented);
    server.shutdown().await.unwrap();

    // Without health, health is not listed; a set describing more than is served (Greeter
    // here) lists only the served service.
    let builder = rzero::Server::builder()
        .without_health()
        .add_service(echo_server())
        .reflection(&[
            echo::v1::FILE_DESCRIPTOR_SET,
            greeter::v1::FILE_DESCRIPTOR_SET,
        ]);
    let (addr, server) = spawn_builder(builder).await;
    let mut session = v1_session(addr).await;
    let answer = session
        .ask(question(MessageRequest::ListServices(String::new())))
        .await;
    assert_eq!(
        listed(&answer),
        [
            "echo.v1.Echo",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection"
        ]
    );
    drop(session);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn bytes_that_are_not_a_descriptor_set_fail_serve() {
    let builder = rzero::Server::builder()
        .add_service(echo_server())
        .reflection(&[&b"\x0a\xff\x01 not a set"[..]]);
    let (_addr, server) = spawn_builder(builder).await;
    let error = server.shutdown().await.expect_err("serve fails");
    assert!(error.to_string().contains("reflection"), "{error}");
}
