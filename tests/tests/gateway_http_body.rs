//! `google.api.HttpBody` through the REST gateway: raw request bodies (the whole message, a
//! body field, a streamed upload) and raw replies (unary, through `response_body`, streamed
//! in chunks), with their content types, over real HTTP/1.1 and h2c from hyper's client,
//! against the generated `files.v1.Files` service, in every gateway mode.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use http_body_util::{BodyExt as _, StreamBody};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rzero::google::api::HttpBody;
use rzero::{BoxStream, Request, Response, Status, Streaming};
use rzero_tests::default::files::v1::files_server::{Files, FilesServer};
use rzero_tests::default::files::v1::{FILES_HTTP_RULES, FileRef, PutReply, PutRequest, Stat};
use rzero_tests::gateway::{Fixture, MODES, Mode};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_stream::StreamExt as _;

/// Every wait in these tests is bounded by this (a hang guard, never a measurement).
const PATIENCE: Duration = Duration::from_secs(10);

/// A stored file: (content type, bytes).
type File = (String, Vec<u8>);

/// Stored files by name.
#[derive(Clone, Default)]
struct Store(Arc<Mutex<HashMap<String, File>>>);

impl Store {
    /// A store holding `files`: (name, content type, bytes).
    fn with(files: &[(&str, &str, &[u8])]) -> Store {
        let store = Store::default();
        for (name, content_type, data) in files {
            store
                .0
                .lock()
                .unwrap()
                .insert((*name).into(), ((*content_type).into(), data.to_vec()));
        }
        store
    }

    fn file(&self, name: &str) -> Result<File, Status> {
        self.0
            .lock()
            .unwrap()
            .get(name)
            .cloned()
            .ok_or_else(|| Status::not_found(format!("no file {name:?}")))
    }
}

#[rzero::async_trait]
impl Files for Store {
    async fn put(&self, request: Request<PutRequest>) -> Result<Response<PutReply>, Status> {
        let request = request.into_inner();
        let file = request.file.unwrap_or_default();
        let reply = PutReply {
            name: request.name.clone(),
            size: file.data.len() as u64,
            content_type: file.content_type.clone(),
            labels: request.labels,
            messages: 1,
        };
        self.0
            .lock()
            .unwrap()
            .insert(request.name, (file.content_type, file.data));
        Ok(Response::new(reply))
    }

    async fn get(&self, request: Request<FileRef>) -> Result<Response<HttpBody>, Status> {
        let (content_type, data) = self.file(&request.get_ref().name)?;
        Ok(Response::new(HttpBody {
            content_type,
            data,
            extensions: Vec::new(),
        }))
    }

    async fn get_stat(&self, request: Request<FileRef>) -> Result<Response<Stat>, Status> {
        let name = request.into_inner().name;
        let (content_type, data) = self.file(&name)?;
        Ok(Response::new(Stat {
            name,
            content: Some(HttpBody {
                content_type,
                data,
                extensions: Vec::new(),
            }),
        }))
    }

    async fn echo(&self, request: Request<HttpBody>) -> Result<Response<HttpBody>, Status> {
        Ok(Response::new(request.into_inner()))
    }

    async fn download(
        &self,
        request: Request<FileRef>,
    ) -> Result<Response<BoxStream<HttpBody>>, Status> {
        let request = request.into_inner();
        let (content_type, data) = self.file(&request.name)?;
        let size = match request.chunk_size {
            0 => data.len().max(1),
            n => n as usize,
        };
        let mut replies: Vec<Result<HttpBody, Status>> = data
            .chunks(size)
            .enumerate()
            .map(|(i, chunk)| {
                Ok(HttpBody {
                    // The first message names the type; later ones need not.
                    content_type: if i == 0 {
                        content_type.clone()
                    } else {
                        String::new()
                    },
                    data: chunk.to_vec(),
                    extensions: Vec::new(),
                })
            })
            .collect();
        if request.fail_after > 0 {
            replies.truncate(request.fail_after as usize);
            replies.push(Err(Status::data_loss("the disk is on fire")));
        }
        Ok(Response::new(Box::pin(tokio_stream::iter(replies))))
    }

    async fn upload(
        &self,
        request: Request<Streaming<HttpBody>>,
    ) -> Result<Response<PutReply>, Status> {
        let mut stream = request.into_inner();
        let mut reply = PutReply {
            name: "upload".into(),
            ..PutReply::default()
        };
        let mut data = Vec::new();
        while let Some(message) = stream.next().await {
            let message = message?;
            if reply.messages == 0 {
                reply.content_type = message.content_type.clone();
            } else if message.content_type != reply.content_type {
                return Err(Status::invalid_argument("content type changed mid-stream"));
            }
            reply.messages += 1;
            // Report the largest message in `labels`, so the test sees how bodies split.
            let largest = reply
                .labels
                .get("largest")
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            reply.labels.insert(
                "largest".into(),
                largest.max(message.data.len()).to_string(),
            );
            data.extend_from_slice(&message.data);
        }
        reply.size = data.len() as u64;
        self.0
            .lock()
            .unwrap()
            .insert(reply.name.clone(), (reply.content_type.clone(), data));
        Ok(Response::new(reply))
    }
}

fn files(store: Store) -> impl FnOnce() -> rzero::ServerBuilder {
    move || rzero::Server::builder().add_service(FilesServer::new(store))
}

fn gateway() -> rzero::gateway::GatewayBuilder {
    rzero::gateway::Gateway::builder().service(&FILES_HTTP_RULES)
}

/// A response as the client saw it; `body` is an error when the transfer was cut short.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Result<Bytes, String>,
}

impl Answer {
    fn bytes(&self) -> &[u8] {
        self.body.as_ref().expect("a complete body")
    }

    fn json(&self) -> Value {
        serde_json::from_slice(self.bytes()).expect("a JSON body")
    }

    fn content_type(&self) -> &str {
        self.headers
            .get("content-type")
            .map_or("", |v| v.to_str().unwrap())
    }
}

/// One request on a new connection (HTTP/1.1, or h2c with prior knowledge), its body sent
/// as the given chunks, each flushed on its own.
async fn call(
    http: std::net::SocketAddr,
    h2c: bool,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    chunks: Vec<Bytes>,
) -> Answer {
    let stream = TcpStream::connect(http).await.expect("connects");
    let mut request = http::Request::builder()
        .method(method)
        .uri(format!("http://{http}{path}"))
        .header("host", http.to_string());
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    let frames = tokio_stream::iter(
        chunks
            .into_iter()
            .map(|chunk| Ok::<_, std::convert::Infallible>(http_body::Frame::data(chunk))),
    );
    let request = request.body(StreamBody::new(frames)).unwrap();
    let response = tokio::time::timeout(PATIENCE, async {
        if h2c {
            let (mut sender, conn) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                    .await
                    .expect("h2c handshake");
            tokio::spawn(conn);
            sender.send_request(request).await
        } else {
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .expect("handshake");
            tokio::spawn(conn);
            sender.send_request(request).await
        }
    })
    .await
    .expect("response in time")
    .expect("a response");
    let (parts, body) = response.into_parts();
    let body = tokio::time::timeout(PATIENCE, body.collect())
        .await
        .expect("body in time")
        .map(|collected| collected.to_bytes())
        .map_err(|e| format!("{e:?}"));
    Answer {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

/// `GET path` without a body.
async fn fetch(http: std::net::SocketAddr, h2c: bool, path: &str) -> Answer {
    call(http, h2c, "GET", path, None, vec![]).await
}

/// Some bytes that are not UTF-8 (and not JSON): every byte value, twice.
fn binary() -> Bytes {
    (0..=255u8).chain(0..=255u8).collect::<Vec<_>>().into()
}

#[tokio::test]
async fn raw_bodies_in_and_out_in_every_mode() {
    for mode in MODES {
        let store = Store::default();
        let fixture = Fixture::start(gateway(), mode, files(store.clone())).await;
        for h2c in [false, true] {
            let at = format!("{mode:?}, h2c {h2c}");
            // A body field: the raw body and its type go into `file`; the path and the
            // query bind the rest of the request, and the reply is JSON as usual.
            let put = call(
                fixture.http,
                h2c,
                "PUT",
                "/v1/files/pic.png?labels%5Bcamera%5D=x100",
                Some("image/png"),
                vec![binary()],
            )
            .await;
            assert_eq!(put.status, StatusCode::OK, "{at}: {:?}", put.body);
            assert_eq!(put.content_type(), "application/json", "{at}");
            assert_eq!(
                put.json(),
                json!({"name": "pic.png", "size": "512", "contentType": "image/png",
                       "labels": {"camera": "x100"}, "messages": 1}),
                "{at}"
            );
            assert_eq!(
                store.file("pic.png").unwrap(),
                ("image/png".to_owned(), binary().to_vec()),
                "{at}: the service got the bytes as sent"
            );

            // An HttpBody reply is the response body, with its content type.
            let get = fetch(fixture.http, h2c, "/v1/files/pic.png").await;
            assert_eq!(get.status, StatusCode::OK, "{at}");
            assert_eq!(get.content_type(), "image/png", "{at}");
            assert_eq!(get.bytes(), &binary()[..], "{at}");

            // Through a `response_body` field.
            let stat = fetch(fixture.http, h2c, "/v1/files/pic.png:stat").await;
            assert_eq!(stat.status, StatusCode::OK, "{at}");
            assert_eq!(stat.content_type(), "image/png", "{at}");
            assert_eq!(stat.bytes(), &binary()[..], "{at}");

            // The whole request message is the body (`body: "*"` on an HttpBody request).
            let html = Bytes::from_static(b"<p>caf\xc3\xa9</p>");
            let echo = call(
                fixture.http,
                h2c,
                "POST",
                "/v1/files:echo",
                Some("text/html; charset=utf-8"),
                vec![html.clone()],
            )
            .await;
            assert_eq!(echo.status, StatusCode::OK, "{at}");
            assert_eq!(echo.content_type(), "text/html; charset=utf-8", "{at}");
            assert_eq!(echo.bytes(), &html[..], "{at}");

            // No content type in: none stored; none out: application/octet-stream.
            let put = call(
                fixture.http,
                h2c,
                "PUT",
                "/v1/files/blob",
                None,
                vec![Bytes::from_static(b"{not json")],
            )
            .await;
            assert_eq!(put.json()["contentType"], json!(""), "{at}");
            let get = fetch(fixture.http, h2c, "/v1/files/blob").await;
            assert_eq!(get.content_type(), "application/octet-stream", "{at}");
            assert_eq!(get.bytes(), b"{not json", "{at}");

            // A failure is still a Status JSON body with the mapped HTTP status.
            let missing = fetch(fixture.http, h2c, "/v1/files/nope").await;
            assert_eq!(missing.status, StatusCode::NOT_FOUND, "{at}");
            assert_eq!(missing.content_type(), "application/json", "{at}");
            assert_eq!(missing.json()["code"], json!(5), "{at}");
        }
        fixture.stop().await;
    }
}

#[tokio::test]
async fn raw_bodies_keep_the_size_limit() {
    let fixture = Fixture::start(
        gateway().max_body_size(100),
        Mode::OwnPort,
        files(Store::default()),
    )
    .await;
    let big = Bytes::from(vec![7u8; 101]);
    for h2c in [false, true] {
        let put = call(
            fixture.http,
            h2c,
            "PUT",
            "/v1/files/big",
            Some("application/octet-stream"),
            vec![big.clone()],
        )
        .await;
        assert_eq!(put.status, StatusCode::PAYLOAD_TOO_LARGE, "h2c {h2c}");
        assert_eq!(put.json()["code"], json!(8), "RESOURCE_EXHAUSTED");
        // Chunked, without a Content-Length to refuse it up front.
        let put = call(
            fixture.http,
            h2c,
            "PUT",
            "/v1/files/big",
            None,
            vec![big.slice(..60), big.slice(60..)],
        )
        .await;
        assert_eq!(
            put.status,
            StatusCode::PAYLOAD_TOO_LARGE,
            "h2c {h2c}, chunked"
        );
    }
    fixture.stop().await;
}

#[tokio::test]
async fn streamed_replies_are_the_chunks_back_to_back() {
    for mode in MODES {
        let text: Vec<u8> = (0..1000)
            .flat_map(|i| format!("{i},").into_bytes())
            .collect();
        let store = Store::with(&[("n.csv", "text/csv", &text), ("empty", "text/plain", b"")]);
        let fixture = Fixture::start(gateway(), mode, files(store)).await;
        for h2c in [false, true] {
            let at = format!("{mode:?}, h2c {h2c}");
            let download = fetch(fixture.http, h2c, "/v1/files/n.csv:download?chunkSize=7").await;
            assert_eq!(download.status, StatusCode::OK, "{at}");
            // The first message's type, though later messages carry none.
            assert_eq!(download.content_type(), "text/csv", "{at}");
            assert_eq!(
                download.bytes(),
                &text[..],
                "{at}: no envelopes, no separators"
            );

            // A stream of no messages: an empty body of no particular type.
            let empty = fetch(fixture.http, h2c, "/v1/files/empty:download").await;
            assert_eq!(empty.status, StatusCode::OK, "{at}");
            assert_eq!(empty.content_type(), "application/octet-stream", "{at}");
            assert_eq!(empty.bytes(), b"", "{at}");

            // Failing before the first message: the mapped status and a Status body.
            let missing = fetch(fixture.http, h2c, "/v1/files/nope:download").await;
            assert_eq!(missing.status, StatusCode::NOT_FOUND, "{at}");
            assert_eq!(missing.json()["code"], json!(5), "{at}");
        }
        fixture.stop().await;
    }
}

#[tokio::test]
async fn a_stream_failing_midway_aborts_the_response() {
    for mode in MODES {
        let store = Store::with(&[("f", "text/plain", b"abcdefghij")]);
        let fixture = Fixture::start(gateway(), mode, files(store)).await;
        for h2c in [false, true] {
            let at = format!("{mode:?}, h2c {h2c}");
            let download = fetch(
                fixture.http,
                h2c,
                "/v1/files/f:download?chunkSize=3&failAfter=2",
            )
            .await;
            // The head went out with the first chunk; the failure can only cut the body
            // short, so that the client never takes "abcdef" for the whole file.
            assert_eq!(download.status, StatusCode::OK, "{at}");
            assert_eq!(download.content_type(), "text/plain", "{at}");
            assert!(
                download.body.is_err(),
                "{at}: the body must end in an error, got {:?}",
                download.body
            );

            // The server is fine afterwards: the same file in full.
            let download = fetch(fixture.http, h2c, "/v1/files/f:download?chunkSize=3").await;
            assert_eq!(download.bytes(), b"abcdefghij", "{at}");
        }
        fixture.stop().await;
    }
}

#[tokio::test]
async fn streamed_uploads_pass_the_body_limit_one_chunk_at_a_time() {
    for mode in MODES {
        let store = Store::default();
        let limit = 16 * 1024;
        let fixture =
            Fixture::start(gateway().max_body_size(limit), mode, files(store.clone())).await;
        for h2c in [false, true] {
            let at = format!("{mode:?}, h2c {h2c}");
            // 1 MiB in 64 KiB chunks, each over the limit, in a body 64 times the limit.
            let data: Vec<u8> = (0..1024 * 1024u32).map(|i| (i % 251) as u8).collect();
            let chunks = data.chunks(64 * 1024).map(Bytes::copy_from_slice).collect();
            let upload = call(
                fixture.http,
                h2c,
                "POST",
                "/v1/files:upload",
                Some("application/x-tar"),
                chunks,
            )
            .await;
            assert_eq!(upload.status, StatusCode::OK, "{at}: {:?}", upload.body);
            let reply = upload.json();
            assert_eq!(reply["size"], json!("1048576"), "{at}");
            assert_eq!(reply["contentType"], json!("application/x-tar"), "{at}");
            let messages = reply["messages"].as_u64().unwrap();
            assert!(
                messages >= 64,
                "{at}: {messages} messages for 64 limits' worth"
            );
            let largest: usize = reply["labels"]["largest"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!(largest <= limit, "{at}: a message of {largest} bytes");
            assert_eq!(
                store.file("upload").unwrap().1,
                data,
                "{at}: the bytes in order"
            );

            // An empty upload is a stream of no messages.
            let upload = call(fixture.http, h2c, "POST", "/v1/files:upload", None, vec![]).await;
            assert_eq!(upload.json()["messages"], json!(0), "{at}");
        }
        fixture.stop().await;
    }
}
