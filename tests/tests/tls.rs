//! TLS and mutual TLS over real loopback sockets: rzero servers (gRPC, and the REST gateway
//! on the same port and on its own), direct and balanced rzero clients (`static:///`,
//! `dns:///`, `etcd://`), a hyper HTTPS client, and the Python grpcio peer on both sides.
//! Certificates are made in each test with `rcgen`; nothing is checked in.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use prost::Message as _;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rzero::gateway::{Gateway, HttpRule};
use rzero::tls::{ClientAuth, ClientTls, ServerTls};
use rzero::{BoxStream, Code, Request, Response, Status, Streaming};
use rzero_tests::default::echo::v1::echo_client::EchoClient;
use rzero_tests::default::echo::v1::echo_server::{Echo, EchoServer};
use rzero_tests::default::echo::v1::{EchoReply, EchoRequest};
use rzero_tests::echo::{self, EchoService, ServerHandle};
use rzero_tests::etcd::EtcdServer;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::Command;
use tokio_rustls::rustls;

/// Bound for one call or step.
const LIMIT: Duration = Duration::from_secs(20);
/// Bound for a Python peer to start, or to run its whole scenario.
const PYTHON_LIMIT: Duration = Duration::from_secs(180);

async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: not done within {LIMIT:?}"))
}

// ===== certificates =====

/// A certificate authority made for one test.
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

/// A certificate (PEM) and its private key (PEM).
struct Leaf {
    cert: String,
    key: String,
}

enum Role {
    Server,
    Client,
}

impl Ca {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().expect("CA key");
        let pem = params.self_signed(&key).expect("CA certificate").pem();
        Self {
            issuer: Issuer::new(params, key),
            pem,
        }
    }

    fn issue(&self, name: &str, sans: &[&str], role: Role, expired: bool) -> Leaf {
        let sans: Vec<String> = sans.iter().map(|s| (*s).to_owned()).collect();
        let mut params = CertificateParams::new(sans).expect("leaf params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![match role {
            Role::Server => ExtendedKeyUsagePurpose::ServerAuth,
            Role::Client => ExtendedKeyUsagePurpose::ClientAuth,
        }];
        if expired {
            params.not_before = rcgen::date_time_ymd(2000, 1, 1);
            params.not_after = rcgen::date_time_ymd(2001, 1, 1);
        }
        let key = KeyPair::generate().expect("leaf key");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("leaf certificate");
        Leaf {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }

    /// A server certificate for `localhost` and `127.0.0.1`.
    fn server(&self) -> Leaf {
        self.issue("server", &["localhost", "127.0.0.1"], Role::Server, false)
    }

    fn client(&self, name: &str) -> Leaf {
        self.issue(name, &[], Role::Client, false)
    }

    fn client_tls(&self) -> ClientTls {
        ClientTls::from_ca_pem(self.pem.as_bytes()).expect("CA loads")
    }
}

fn server_tls(leaf: &Leaf) -> ServerTls {
    ServerTls::from_pem(leaf.cert.as_bytes(), leaf.key.as_bytes()).expect("server TLS")
}

/// Files in a fresh directory under the target dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("rzero-tls-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).expect("write temp file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ===== servers and clients =====

async fn serve(builder: rzero::ServerBuilder) -> (SocketAddr, ServerHandle) {
    echo::spawn_builder(builder).await
}

async fn serve_echo(tls: ServerTls) -> (SocketAddr, ServerHandle) {
    serve(
        rzero::Server::builder()
            .add_service(echo::echo_server())
            .tls(tls),
    )
    .await
}

fn client(target: &str, tls: ClientTls) -> EchoClient {
    EchoClient::new(
        rzero::Client::builder(target)
            .tls(tls)
            .build()
            .expect("client builds"),
    )
}

fn request(message: &str) -> EchoRequest {
    EchoRequest {
        message: message.into(),
        ..Default::default()
    }
}

async fn unary(client: &EchoClient, message: &str) -> Result<String, Status> {
    let reply = within("unary", client.unary(request(message))).await?;
    Ok(reply.into_inner().message)
}

/// A unary call through a client whose resolver has yet to find the server: tried until
/// the resolver has (calls fail fast with "no endpoints" meanwhile), within [`LIMIT`].
async fn once_resolved(client: &EchoClient, message: &str) -> String {
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        match unary(client, message).await {
            Ok(answer) => return answer,
            Err(status)
                if status.message().contains("no endpoints")
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(status) => panic!("no answer once resolved: {status:?}"),
        }
    }
}

/// The call fails with `UNAVAILABLE`, its message containing `reason`.
async fn assert_unavailable(client: &EchoClient, reason: &str) {
    let status = unary(client, "hi").await.expect_err("the call must fail");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status.message().contains(reason),
        "expected {reason:?} in {:?}",
        status.message()
    );
}

#[tokio::test]
async fn unary_and_streaming_calls_over_tls() {
    let ca = Ca::new("ca");
    let (addr, server) = serve_echo(server_tls(&ca.server())).await;
    // A peer that connects and never says a word holds up nobody.
    let _silent = within("connect", TcpStream::connect(addr))
        .await
        .expect("tcp");
    // Both forms of a direct target.
    for target in [addr.to_string(), format!("https://{addr}")] {
        let client = client(&target, ca.client_tls());
        assert_eq!(unary(&client, "hello").await.expect("unary"), "hello");

        let mut stream = within(
            "server stream",
            client.server_stream(EchoRequest {
                message: "s".into(),
                count: 3,
                ..Default::default()
            }),
        )
        .await
        .expect("server stream")
        .into_inner();
        let mut indexes = Vec::new();
        while let Some(reply) = within("next", stream.message()).await.expect("reply") {
            indexes.push(reply.index);
        }
        assert_eq!(indexes, [0, 1, 2]);

        let words = ["one", "two", "three"];
        let response = within("bidi", client.bidi(tokio_stream::iter(words.map(request))))
            .await
            .expect("bidi");
        let mut stream = response.into_inner();
        let mut replies = Vec::new();
        while let Some(reply) = within("next", stream.message()).await.expect("reply") {
            replies.push(reply.message);
        }
        assert_eq!(replies, words);
    }
    // A plaintext client gets no answer from a TLS port.
    let plain = EchoClient::new(rzero::Client::connect_lazy(&addr.to_string()).unwrap());
    assert!(unary(&plain, "x").await.is_err());
    // `http://` with TLS settings is a contradiction, refused when building.
    let error = rzero::Client::builder(&format!("http://{addr}"))
        .tls(ca.client_tls())
        .build()
        .expect_err("http:// with TLS");
    assert!(error.to_string().contains("https://"), "{error}");
    server.shutdown().await.expect("server ran");
}

#[tokio::test]
async fn a_silent_peer_is_disconnected_after_the_handshake_timeout() {
    let ca = Ca::new("ca");
    let tls = server_tls(&ca.server()).handshake_timeout(Duration::from_millis(100));
    let (addr, server) = serve_echo(tls).await;
    let mut silent = within("connect", TcpStream::connect(addr))
        .await
        .expect("tcp");
    let mut byte = [0u8; 1];
    // The server hangs up (end of stream, or a reset) without having sent anything.
    let read = within("the server hangs up", silent.read(&mut byte)).await;
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    server.shutdown().await.expect("server ran");
}

/// Echo, with the first certificate of the verified client chain, as the handler sees it,
/// in the reply's payload.
struct PeerCertEcho;

#[rzero::async_trait]
impl Echo for PeerCertEcho {
    async fn unary(&self, request: Request<EchoRequest>) -> Result<Response<EchoReply>, Status> {
        let payload = request
            .peer_certs()
            .and_then(|chain| chain.first().map(|cert| cert.to_vec()))
            .unwrap_or_default();
        let mut reply = EchoService.unary(request).await?;
        reply.get_mut().payload = payload;
        Ok(reply)
    }

    async fn server_stream(
        &self,
        request: Request<EchoRequest>,
    ) -> Result<Response<BoxStream<EchoReply>>, Status> {
        EchoService.server_stream(request).await
    }

    async fn client_stream(
        &self,
        request: Request<Streaming<EchoRequest>>,
    ) -> Result<Response<EchoReply>, Status> {
        EchoService.client_stream(request).await
    }

    async fn bidi(
        &self,
        request: Request<Streaming<EchoRequest>>,
    ) -> Result<Response<BoxStream<EchoReply>>, Status> {
        EchoService.bidi(request).await
    }
}

fn der(pem: &str) -> Vec<u8> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    CertificateDer::from_pem_slice(pem.as_bytes())
        .expect("certificate PEM")
        .to_vec()
}

#[tokio::test]
async fn mutual_tls_shows_the_client_certificate_to_handlers() {
    let ca = Ca::new("ca");
    let client_ca = Ca::new("client-ca");
    let alice = client_ca.client("alice");
    let tls = server_tls(&ca.server())
        .client_ca_pem(client_ca.pem.as_bytes())
        .expect("client CA");
    let (addr, server) = serve(
        rzero::Server::builder()
            .add_service(EchoServer::new(PeerCertEcho))
            .tls(tls),
    )
    .await;

    let with_cert = client(
        &addr.to_string(),
        ca.client_tls()
            .identity_pem(alice.cert.as_bytes(), alice.key.as_bytes())
            .expect("identity"),
    );
    let reply = within("unary", with_cert.unary(request("mtls")))
        .await
        .expect("mTLS call")
        .into_inner();
    assert_eq!(reply.message, "mtls");
    assert_eq!(
        reply.payload,
        der(&alice.cert),
        "the handler sees alice's certificate"
    );

    // Without a certificate: refused, and the caller is told why.
    let without = client(&addr.to_string(), ca.client_tls());
    assert_unavailable(&without, "CertificateRequired").await;

    // With a certificate from a CA the server does not trust.
    let mallory = Ca::new("other").client("mallory");
    let untrusted = client(
        &addr.to_string(),
        ca.client_tls()
            .identity_pem(mallory.cert.as_bytes(), mallory.key.as_bytes())
            .expect("identity"),
    );
    assert_unavailable(&untrusted, "alert").await;

    server.shutdown().await.expect("server ran");
}

#[tokio::test]
async fn optional_client_auth_lets_clients_without_certificates_in() {
    let ca = Ca::new("ca");
    let client_ca = Ca::new("client-ca");
    let bob = client_ca.client("bob");
    let tls = server_tls(&ca.server())
        .client_ca_pem(client_ca.pem.as_bytes())
        .expect("client CA")
        .client_auth(ClientAuth::Optional);
    let (addr, server) = serve(
        rzero::Server::builder()
            .add_service(EchoServer::new(PeerCertEcho))
            .tls(tls),
    )
    .await;

    let anonymous = client(&addr.to_string(), ca.client_tls());
    let reply = within("unary", anonymous.unary(request("anon")))
        .await
        .expect("call without a certificate")
        .into_inner();
    assert!(reply.payload.is_empty(), "no peer certificate");

    let with_cert = client(
        &addr.to_string(),
        ca.client_tls()
            .identity_pem(bob.cert.as_bytes(), bob.key.as_bytes())
            .expect("identity"),
    );
    let reply = within("unary", with_cert.unary(request("bob")))
        .await
        .expect("call with a certificate")
        .into_inner();
    assert_eq!(reply.payload, der(&bob.cert));
    server.shutdown().await.expect("server ran");
}

#[tokio::test]
async fn a_server_signed_by_another_ca_is_refused() {
    let ca = Ca::new("ca");
    let (addr, server) = serve_echo(server_tls(&ca.server())).await;
    let stranger = Ca::new("stranger");
    let client = client(&addr.to_string(), stranger.client_tls());
    assert_unavailable(&client, "invalid peer certificate: UnknownIssuer").await;
    server.shutdown().await.expect("server ran");
}

#[tokio::test]
async fn an_expired_server_certificate_is_refused() {
    let ca = Ca::new("ca");
    let expired = ca.issue("server", &["127.0.0.1"], Role::Server, true);
    let (addr, server) = serve_echo(server_tls(&expired)).await;
    let client = client(&addr.to_string(), ca.client_tls());
    assert_unavailable(&client, "invalid peer certificate: certificate expired").await;
    server.shutdown().await.expect("server ran");
}

#[tokio::test]
async fn a_certificate_for_another_name_is_refused_unless_that_name_is_expected() {
    let ca = Ca::new("ca");
    let other = ca.issue("server", &["greeter.internal"], Role::Server, false);
    let (addr, server) = serve_echo(server_tls(&other)).await;
    let client_for_ip = client(&addr.to_string(), ca.client_tls());
    assert_unavailable(
        &client_for_ip,
        "invalid peer certificate: certificate not valid for name \"127.0.0.1\"",
    )
    .await;

    let named = client(
        &addr.to_string(),
        ca.client_tls()
            .server_name("greeter.internal")
            .expect("a DNS name"),
    );
    assert_eq!(unary(&named, "named").await.expect("call"), "named");
    server.shutdown().await.expect("server ran");
}

#[test]
fn unusable_certificates_and_keys_fail_when_built_and_name_the_file() {
    let ca = Ca::new("ca");
    let a = ca.server();
    let b = ca.server();
    let dir = TempDir::new("build-errors");
    let cert_a = dir.write("a.pem", &a.cert);
    let key_a = dir.write("a.key", &a.key);
    let key_b = dir.write("b.key", &b.key);
    let garbage = dir.write("garbage.pem", "this is not PEM\n");
    let missing = dir.0.join("missing.pem");

    ServerTls::from_pem_files(&cert_a, &key_a).expect("matching pair");

    let error = ServerTls::from_pem_files(&cert_a, &key_b).expect_err("mismatch");
    let text = error.to_string();
    assert!(text.contains("does not belong"), "{text}");
    assert!(
        text.contains(&*key_b.to_string_lossy()) && text.contains(&*cert_a.to_string_lossy()),
        "{text}"
    );
    let error = ServerTls::from_pem(a.cert.as_bytes(), b.key.as_bytes()).expect_err("mismatch");
    assert!(error.to_string().contains("does not belong"), "{error}");
    let error = ClientTls::from_ca_pem(ca.pem.as_bytes())
        .unwrap()
        .identity_pem(a.cert.as_bytes(), b.key.as_bytes())
        .expect_err("client mismatch");
    assert!(error.to_string().contains("does not belong"), "{error}");

    let error = ServerTls::from_pem_files(&missing, &key_a).expect_err("missing file");
    let text = error.to_string();
    assert!(
        text.contains("missing.pem") && text.contains("cannot read"),
        "{text}"
    );

    let error = ServerTls::from_pem_files(&garbage, &key_a).expect_err("no certificate");
    let text = error.to_string();
    assert!(
        text.contains("garbage.pem") && text.contains("no certificate"),
        "{text}"
    );

    // A certificate where the key should be.
    let error = ServerTls::from_pem_files(&cert_a, &cert_a).expect_err("no key");
    let text = error.to_string();
    assert!(
        text.contains("a.pem") && text.contains("no private key"),
        "{text}"
    );

    let error = ClientTls::from_ca_file(&garbage).expect_err("no CA");
    assert!(error.to_string().contains("garbage.pem"), "{error}");

    let error = ServerTls::from_pem_files(&cert_a, &key_a)
        .unwrap()
        .client_ca_file(&missing)
        .expect_err("missing client CA");
    assert!(error.to_string().contains("missing.pem"), "{error}");

    let error = ClientTls::from_ca_pem(ca.pem.as_bytes())
        .unwrap()
        .server_name("not a name!")
        .expect_err("bad server name");
    assert!(error.to_string().contains("not a name!"), "{error}");
}

#[tokio::test]
async fn balanced_clients_use_tls_for_every_endpoint_and_health_check() {
    let ca = Ca::new("ca");
    let named = |name: &'static str| {
        rzero::Server::builder()
            .interceptor(echo::names_itself(name))
            .add_service(echo::echo_server())
            .tls(server_tls(&ca.server()))
    };
    let (a, server_a) = serve(named("a")).await;
    let (b, server_b) = serve(named("b")).await;

    let balanced = EchoClient::new(
        rzero::Client::builder(&format!("static:///{a},{b}"))
            .balancer(rzero::balance::Policy::RoundRobin)
            .health_check(true)
            .tls(ca.client_tls())
            .build()
            .expect("client"),
    );
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..6 {
        let response = within("balanced call", balanced.unary(request("x")))
            .await
            .expect("balanced call over TLS");
        let server = response.metadata().get("x-server").expect("x-server");
        seen.insert(server.to_str().unwrap().to_owned());
    }
    assert_eq!(seen, ["a", "b"].map(String::from).into());

    // A DNS target: the certificate is checked against the name (`localhost`), not the
    // resolved addresses. (localhost may also resolve to ::1, where nothing listens; the
    // balancer moves on.)
    let by_name = client(&format!("dns:///localhost:{}", a.port()), ca.client_tls());
    assert_eq!(once_resolved(&by_name, "dns").await, "dns");

    // The same over a CA that did not sign the servers: every endpoint refuses.
    let stranger = client(&format!("static:///{a},{b}"), Ca::new("x").client_tls());
    assert_unavailable(&stranger, "UnknownIssuer").await;

    server_a.shutdown().await.expect("server a ran");
    server_b.shutdown().await.expect("server b ran");
}

#[tokio::test]
async fn etcd_discovered_servers_are_called_over_tls() {
    let etcd = EtcdServer::start();
    let ca = Ca::new("ca");
    let etcd_client = rzero::discovery::etcd::EtcdClient::new([etcd.addr()]).expect("etcd");
    let registration = rzero::discovery::etcd::Registration::builder(etcd_client, "tls.rpc");
    let (_addr, server) = serve(
        rzero::Server::builder()
            .add_service(echo::echo_server())
            .register(registration)
            .tls(server_tls(&ca.server())),
    )
    .await;
    let client = client(&format!("etcd://{}/tls.rpc", etcd.addr()), ca.client_tls());
    assert_eq!(once_resolved(&client, "etcd").await, "etcd");
    server.shutdown().await.expect("server ran");
}

// ===== the gateway over HTTPS =====

fn echo_gateway() -> Gateway {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut compiler = protox::Compiler::new([
        root.join("../testdata"),
        root.join("../protoc-gen-rzero/proto"),
    ])
    .expect("include dirs");
    compiler
        .include_imports(true)
        .open_files(["echo/v1/echo.proto"])
        .expect("echo.proto compiles");
    Gateway::builder()
        .descriptor_set(compiler.file_descriptor_set().encode_to_vec())
        .rules([HttpRule::new(
            "/echo.v1.Echo/Unary",
            "GET",
            "/v1/echo/{message}",
        )])
        .build()
        .expect("gateway builds")
}

/// Reports the `x-forwarded-for` the gateway sent as the `x-seen-forwarded-for` response
/// metadata (a `Grpc-Metadata-X-Seen-Forwarded-For` header through the gateway).
fn reports_forwarded_for() -> impl rzero::Interceptor {
    rzero::interceptor::from_fn(
        |call: rzero::interceptor::Call, next: rzero::interceptor::Next| async move {
            let seen = call.metadata().get("x-forwarded-for").cloned();
            let mut reply = next.run(call).await?;
            if let Some(seen) = seen {
                reply.metadata_mut().insert("x-seen-forwarded-for", seen);
            }
            Ok(reply)
        },
    )
}

/// One HTTPS response.
struct HttpsReply {
    /// The protocol ALPN settled on.
    protocol: String,
    status: http::StatusCode,
    headers: http::HeaderMap,
    body: String,
}

/// GETs `path` over HTTPS with hyper, negotiating HTTP/1.1 or HTTP/2 by ALPN (`alpn` is
/// what the client offers), presenting `identity` when given.
async fn https_get(
    addr: SocketAddr,
    ca: &Ca,
    alpn: &[&[u8]],
    path: &str,
    identity: Option<&Leaf>,
) -> HttpsReply {
    use rustls::pki_types::PrivateKeyDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(der(&ca.pem).into()).expect("root");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match identity {
        None => config.with_no_client_auth(),
        Some(leaf) => config
            .with_client_auth_cert(
                vec![der(&leaf.cert).into()],
                PrivateKeyDer::from_pem_slice(leaf.key.as_bytes()).expect("key PEM"),
            )
            .expect("client identity"),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = within("connect", TcpStream::connect(addr))
        .await
        .expect("tcp");
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = within("handshake", connector.connect(name, tcp))
        .await
        .expect("TLS handshake with the gateway");
    let protocol =
        String::from_utf8_lossy(tls.get_ref().1.alpn_protocol().unwrap_or(b"none")).into_owned();
    let request = http::Request::get(format!("https://localhost:{}{path}", addr.port()))
        .header("host", format!("localhost:{}", addr.port()))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = if protocol == "h2" {
        let (mut sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                .await
                .expect("h2 handshake");
        tokio::spawn(connection);
        within("request", sender.send_request(request))
            .await
            .expect("response")
    } else {
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .expect("http/1.1 handshake");
        tokio::spawn(connection);
        within("request", sender.send_request(request))
            .await
            .expect("response")
    };
    let (parts, body) = response.into_parts();
    let body = within("body", body.collect())
        .await
        .expect("body")
        .to_bytes();
    HttpsReply {
        protocol,
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

async fn assert_gateway_answers(addr: SocketAddr, ca: &Ca) {
    for (alpn, expected) in [
        (&[b"http/1.1".as_slice()][..], "http/1.1"),
        (&[b"h2".as_slice(), b"http/1.1".as_slice()][..], "h2"),
    ] {
        let reply = https_get(addr, ca, alpn, "/v1/echo/hello", None).await;
        assert_eq!(reply.protocol, expected);
        assert_eq!(reply.status, http::StatusCode::OK, "{}", reply.body);
        let json: serde_json::Value = serde_json::from_str(&reply.body).expect("JSON");
        assert_eq!(json["message"], "hello", "{}", reply.body);
        // The gateway knows the peer's address behind TLS too.
        assert_eq!(
            reply
                .headers
                .get("grpc-metadata-x-seen-forwarded-for")
                .map(|v| v.to_str().unwrap()),
            Some("127.0.0.1"),
            "{:?}",
            reply.headers
        );
    }
}

#[tokio::test]
async fn the_gateway_serves_https_on_the_grpc_port() {
    let ca = Ca::new("ca");
    let (addr, server) = serve(
        rzero::Server::builder()
            .interceptor(reports_forwarded_for())
            .add_service(echo::echo_server())
            .gateway(echo_gateway())
            .tls(server_tls(&ca.server())),
    )
    .await;
    assert_gateway_answers(addr, &ca).await;
    // gRPC on the same TLS port.
    let client = client(&addr.to_string(), ca.client_tls());
    assert_eq!(unary(&client, "grpc").await.expect("gRPC call"), "grpc");
    server.shutdown().await.expect("server ran");
}

/// Browsers reach gRPC-Web over TLS by ALPN, `http/1.1` or `h2`: the port offers both.
#[tokio::test]
async fn grpc_web_over_https() {
    let ca = Ca::new("ca");
    let dir = TempDir::new("grpc-web");
    let ca_file = dir.write("ca.pem", &ca.pem);
    let (addr, server) = serve(
        rzero::Server::builder()
            .add_service(echo::echo_server())
            .grpc_web(rzero::server::GrpcWeb::new())
            .tls(server_tls(&ca.server())),
    )
    .await;
    for version in ["1.1", "2"] {
        rzero_tests::node::grpc_web_peer(addr, version, Some(&ca_file)).await;
    }
    // gRPC on the same TLS port.
    let client = client(&addr.to_string(), ca.client_tls());
    assert_eq!(unary(&client, "grpc").await.expect("gRPC call"), "grpc");
    server.shutdown().await.expect("server ran");
}

#[tokio::test]
async fn the_gateway_serves_https_on_its_own_port() {
    let ca = Ca::new("ca");
    let rest = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let rest_addr = rest.local_addr().unwrap();
    let (addr, server) = serve(
        rzero::Server::builder()
            .interceptor(reports_forwarded_for())
            .add_service(echo::echo_server())
            .gateway_on(rest, echo_gateway())
            .tls(server_tls(&ca.server())),
    )
    .await;
    assert_gateway_answers(rest_addr, &ca).await;
    let client = client(&addr.to_string(), ca.client_tls());
    assert_eq!(unary(&client, "grpc").await.expect("gRPC call"), "grpc");
    server.shutdown().await.expect("server ran");
}

/// Standard base64 with padding: how proto3 JSON writes `bytes`.
fn base64(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(DIGITS[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[tokio::test]
async fn gateway_handlers_see_the_client_certificate() {
    let ca = Ca::new("ca");
    let client_ca = Ca::new("client-ca");
    let alice = client_ca.client("alice");
    let tls = || {
        server_tls(&ca.server())
            .client_ca_pem(client_ca.pem.as_bytes())
            .expect("client CA")
    };
    let builder = || rzero::Server::builder().add_service(EchoServer::new(PeerCertEcho));
    // The gateway on the gRPC port, and on a port of its own.
    let (same_port, same) = serve(builder().gateway(echo_gateway()).tls(tls())).await;
    let rest = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let own_port = rest.local_addr().unwrap();
    let (_, own) = serve(builder().gateway_on(rest, echo_gateway()).tls(tls())).await;
    for addr in [same_port, own_port] {
        for alpn in [&[b"http/1.1".as_slice()][..], &[b"h2".as_slice()][..]] {
            let reply = https_get(addr, &ca, alpn, "/v1/echo/hello", Some(&alice)).await;
            assert_eq!(reply.status, http::StatusCode::OK, "{}", reply.body);
            let json: serde_json::Value = serde_json::from_str(&reply.body).expect("JSON");
            assert_eq!(json["message"], "hello", "{}", reply.body);
            assert_eq!(
                json["payload"].as_str(),
                Some(base64(&der(&alice.cert)).as_str()),
                "{addr} {}: the handler sees alice's certificate",
                reply.protocol
            );
        }
    }
    same.shutdown().await.expect("server ran");
    own.shutdown().await.expect("server ran");
}

#[tokio::test]
async fn the_gateway_proxies_to_a_tls_server() {
    let ca = Ca::new("ca");
    let client_ca = Ca::new("client-ca");
    let gateway_identity = client_ca.client("gateway");
    let (grpc, server) = serve_echo(
        server_tls(&ca.server())
            .client_ca_pem(client_ca.pem.as_bytes())
            .unwrap(),
    )
    .await;
    let upstream = rzero::Client::builder(&grpc.to_string())
        .tls(
            ca.client_tls()
                .identity_pem(
                    gateway_identity.cert.as_bytes(),
                    gateway_identity.key.as_bytes(),
                )
                .unwrap(),
        )
        .build()
        .expect("client");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let proxy = tokio::spawn(rzero::gateway::serve(
        listener,
        echo_gateway().proxy(&upstream),
        async {
            let _ = stopped.await;
        },
    ));
    let stream = within("connect", TcpStream::connect(http)).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let response = within(
        "proxied request",
        sender.send_request(
            http::Request::get("/v1/echo/proxied")
                .header("host", http.to_string())
                .body(Full::new(Bytes::new()))
                .unwrap(),
        ),
    )
    .await
    .expect("response");
    assert_eq!(response.status(), http::StatusCode::OK);
    let body = within("body", response.into_body().collect())
        .await
        .unwrap()
        .to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(json["message"], "proxied");
    let _ = stop.send(());
    within("proxy stops", proxy)
        .await
        .unwrap()
        .expect("proxy ran");
    server.shutdown().await.expect("server ran");
}

// ===== configuration =====

#[tokio::test]
async fn tls_from_yaml_config() {
    use rzero::config::{ClientConfig, ServerConfig};
    let ca = Ca::new("ca");
    let client_ca = Ca::new("client-ca");
    let server = ca.server();
    let carol = client_ca.client("carol");
    let dir = TempDir::new("config");
    let files = [
        ("ca.pem", &ca.pem),
        ("client-ca.pem", &client_ca.pem),
        ("server.pem", &server.cert),
        ("server.key", &server.key),
        ("carol.pem", &carol.cert),
        ("carol.key", &carol.key),
    ];
    for (name, text) in files {
        dir.write(name, text);
    }
    let path = |name: &str| dir.0.join(name).display().to_string();

    let server_config = ServerConfig::from_yaml_str(&format!(
        "ListenOn: 127.0.0.1:0\nTls:\n  CertFile: {}\n  KeyFile: {}\n  CaFile: {}\n  ClientAuth: required\n",
        path("server.pem"),
        path("server.key"),
        path("client-ca.pem"),
    ))
    .expect("server config");
    let builder = server_config
        .builder()
        .expect("server builder")
        .add_service(EchoServer::new(PeerCertEcho));
    let (addr, handle) = serve(builder).await;

    let client_config = ClientConfig::from_yaml_str(&format!(
        "Target: {addr}\nTls:\n  CaFile: {}\n  CertFile: {}\n  KeyFile: {}\n  ServerName: localhost\n",
        path("ca.pem"),
        path("carol.pem"),
        path("carol.key"),
    ))
    .expect("client config");
    let client = EchoClient::new(client_config.build().expect("client"));
    let reply = within("unary", client.unary(request("config")))
        .await
        .expect("call configured by YAML")
        .into_inner();
    assert_eq!(reply.payload, der(&carol.cert));

    // A key file that does not belong to the certificate: the builder fails, naming both.
    let stranger = ca.server();
    dir.write("stranger.key", &stranger.key);
    let bad = ServerConfig::from_yaml_str(&format!(
        "ListenOn: 127.0.0.1:0\nTls: {{CertFile: {}, KeyFile: {}}}\n",
        path("server.pem"),
        path("stranger.key"),
    ))
    .expect("parses");
    let error = bad.builder().expect_err("mismatched key");
    assert!(error.to_string().starts_with("Tls: "), "{error}");
    assert!(error.to_string().contains("stranger.key"), "{error}");
    handle.shutdown().await.expect("server ran");
}

// ===== the Python grpcio peer =====

fn peer_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python/echo_peer.py")
}

/// A child process killed (by pid) when dropped.
struct KillOnDrop(tokio::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.start_kill();
    }
}

fn python(args: &[&str]) -> KillOnDrop {
    KillOnDrop(
        Command::new("python3")
            .arg(peer_script())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", peer_script().display())),
    )
}

async fn read_all(pipe: Option<impl tokio::io::AsyncRead + Unpin>) -> String {
    let mut text = String::new();
    if let Some(mut pipe) = pipe {
        let _ = pipe.read_to_string(&mut text).await;
    }
    text
}

#[tokio::test]
async fn a_python_grpcio_client_calls_our_mtls_server() {
    let ca = Ca::new("ca");
    let client_ca = Ca::new("client-ca");
    let dave = client_ca.client("dave");
    let dir = TempDir::new("python-client");
    let ca_file = dir.write("ca.pem", &ca.pem);
    let cert = dir.write("dave.pem", &dave.cert);
    let key = dir.write("dave.key", &dave.key);
    let tls = server_tls(&ca.server())
        .client_ca_pem(client_ca.pem.as_bytes())
        .unwrap();
    let (addr, server) = serve(
        rzero::Server::builder()
            .add_service(echo::echo_server())
            .tls(tls),
    )
    .await;

    let target = format!("localhost:{}", addr.port());
    let mut child = python(&[
        "call",
        &target,
        "--ca",
        &ca_file.display().to_string(),
        "--cert",
        &cert.display().to_string(),
        "--key",
        &key.display().to_string(),
    ]);
    let stdout = tokio::spawn(read_all(child.0.stdout.take()));
    let stderr = tokio::spawn(read_all(child.0.stderr.take()));
    let status = tokio::time::timeout(PYTHON_LIMIT, child.0.wait())
        .await
        .unwrap_or_else(|_| panic!("the Python client did not finish within {PYTHON_LIMIT:?}"))
        .expect("wait for the Python client");
    let report = format!(
        "stdout:\n{}\nstderr:\n{}",
        within("stdout", stdout).await.unwrap(),
        within("stderr", stderr).await.unwrap()
    );
    assert!(
        status.success(),
        "the Python client failed ({status})\n{report}"
    );
    assert!(!report.contains("FAIL"), "{report}");
    assert!(
        report.matches("\nok ").count() + usize::from(report.starts_with("stdout:\nok ")) >= 9,
        "{report}"
    );
    server.shutdown().await.expect("server ran");
}

#[tokio::test]
async fn we_call_a_python_grpcio_server_over_mtls() {
    let ca = Ca::new("ca");
    let client_ca = Ca::new("client-ca");
    let server_leaf = ca.server();
    let erin = client_ca.client("erin");
    let dir = TempDir::new("python-server");
    let cert = dir.write("server.pem", &server_leaf.cert);
    let key = dir.write("server.key", &server_leaf.key);
    let client_ca_file = dir.write("client-ca.pem", &client_ca.pem);
    let mut child = python(&[
        "serve",
        "--tls",
        &cert.display().to_string(),
        &key.display().to_string(),
        "--client-ca",
        &client_ca_file.display().to_string(),
    ]);
    let mut lines = BufReader::new(child.0.stdout.take().expect("stdout")).lines();
    let port = tokio::time::timeout(PYTHON_LIMIT, lines.next_line())
        .await
        .expect("the Python server starts in time")
        .expect("stdout")
        .and_then(|line| line.strip_prefix("LISTENING ").map(str::to_owned))
        .expect("LISTENING <port>");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let target = format!("127.0.0.1:{port}");

    let with_cert = client(
        &target,
        ca.client_tls()
            .identity_pem(erin.cert.as_bytes(), erin.key.as_bytes())
            .unwrap(),
    );
    assert_eq!(
        unary(&with_cert, "py")
            .await
            .expect("call the Python server"),
        "py"
    );
    let without = client(&target, ca.client_tls());
    let status = unary(&without, "py")
        .await
        .expect_err("no client certificate");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    // grpc-core hangs up without an alert; the caller still learns where it broke.
    assert!(
        status.message().contains("TLS handshake failed"),
        "{status:?}"
    );
    drop(child);
}

#[tokio::test]
async fn credentials_ride_on_tls_without_any_plaintext_allowance() {
    let ca = Ca::new("ca");
    let (addr, server) = serve(
        rzero::Server::builder()
            .interceptor(rzero::auth::BasicAuth::new(|user, password| {
                user == "ann" && password == "s3cret"
            }))
            .add_service(echo::echo_server())
            .tls(server_tls(&ca.server())),
    )
    .await;
    let with = |password: &str| {
        EchoClient::new(
            rzero::Client::builder(&addr.to_string())
                .tls(ca.client_tls())
                .credentials(rzero::auth::Credentials::basic("ann", password).expect("basic"))
                .build()
                .expect("client builds"),
        )
    };
    // Over TLS the client sends them: no `allow_plaintext_credentials` needed.
    assert_eq!(unary(&with("s3cret"), "in").await.expect("accepted"), "in");
    let status = unary(&with("wrong"), "out").await.expect_err("refused");
    assert_eq!(status.code(), rzero::Code::Unauthenticated, "{status:?}");
    server.shutdown().await.expect("server ran");
}
