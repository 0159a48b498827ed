//! Authentication over real sockets: client credentials (basic, bearer, JWT, go-zero
//! app/token; per client and per call; refused over plaintext unless allowed) and the server
//! interceptors that check them, with app tokens in a real Redis (`redis-server`, started by
//! the test): fail closed, `UNAVAILABLE` when Redis is down, the cache's TTL, go-zero's
//! lenient mode only by name, and the YAML config keys `Auth`, `Redis`, `App`, `Token`.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rzero::auth::{
    AppTokenAuth, BasicAuth, BearerAuth, Caller, Claims, Credentials, JwtAuth, JwtSigner,
    RedisTokens,
};
use rzero::config::{ClientConfig, ServerConfig};
use rzero::health::pb::HealthCheckRequest;
use rzero::health::pb::health_check_response::ServingStatus;
use rzero::health::pb::health_client::HealthClient;
use rzero::testing::{self, ExpectStatus, RequestExt, request_stream};
use rzero::{BoxStream, CallExt, Client, Code, Request, Response, Status, Streaming};
use rzero_tests::default::echo::v1::echo_client::EchoClient;
use rzero_tests::default::echo::v1::echo_server::{Echo, EchoServer};
use rzero_tests::default::echo::v1::{EchoReply, EchoRequest};
use rzero_tests::echo::{EchoService, ServerHandle, spawn_builder};
use rzero_tests::redis::RedisServer;
use serde_json::json;

const LIMIT: Duration = Duration::from_secs(30);

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

/// The echo service, except that `Unary` answers with who called: `<scheme>:<name>` from the
/// [`Caller`] and, for a JWT, ` role=<role claim>`; `anonymous` without a caller.
struct WhoAmI;

#[rzero::async_trait]
impl Echo for WhoAmI {
    async fn unary(&self, request: Request<EchoRequest>) -> Result<Response<EchoReply>, Status> {
        let mut message = match request.extensions().get::<Caller>() {
            Some(caller) => format!("{:?}:{}", caller.scheme(), caller.name()),
            None => "anonymous".to_owned(),
        };
        if let Some(claims) = request.extensions().get::<Claims>() {
            let role = claims.get("role").and_then(|r| r.as_str()).unwrap_or("-");
            message.push_str(&format!(" role={role}"));
        }
        Ok(Response::new(EchoReply {
            message,
            ..Default::default()
        }))
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

/// Serves [`WhoAmI`] behind `auth` (and a counter of the calls that reached the server at
/// all) on a loopback port.
async fn serve(auth: impl rzero::Interceptor) -> (SocketAddr, ServerHandle, Arc<AtomicUsize>) {
    let arrived = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&arrived);
    let builder = rzero::Server::builder()
        .interceptor(rzero::interceptor::from_fn(move |call, next| {
            counter.fetch_add(1, Ordering::SeqCst);
            next.run(call)
        }))
        .interceptor(auth)
        .add_service(EchoServer::new(WhoAmI));
    let (addr, handle) = spawn_builder(builder).await;
    (addr, handle, arrived)
}

/// A client of `addr` allowed to send credentials over plaintext (the tests have no TLS),
/// with `credentials` if given.
fn client(addr: SocketAddr, credentials: Option<Credentials>) -> EchoClient {
    let mut builder = Client::builder(&addr.to_string()).allow_plaintext_credentials();
    if let Some(credentials) = credentials {
        builder = builder.credentials(credentials);
    }
    EchoClient::new(builder.build().expect("client"))
}

async fn who(client: &EchoClient) -> Result<String, Status> {
    within("unary", client.unary(word("who")))
        .await
        .map(|reply| reply.into_inner().message)
}

async fn who_with(client: &EchoClient, credentials: Credentials) -> Result<String, Status> {
    within(
        "unary",
        client.unary(Request::new(word("who")).credentials(credentials)),
    )
    .await
    .map(|reply| reply.into_inner().message)
}

async fn health_of(addr: SocketAddr) -> ServingStatus {
    let health = HealthClient::new(Client::connect(&addr.to_string()).await.expect("connect"));
    within(
        "health check",
        health.check(HealthCheckRequest {
            service: String::new(),
        }),
    )
    .await
    .expect("health check without credentials")
    .into_inner()
    .status()
}

#[tokio::test]
async fn basic_credentials_are_checked() {
    let (addr, server, _) = serve(BasicAuth::single("ops", "s3cr3t")).await;

    let right = client(addr, Some(Credentials::basic("ops", "s3cr3t").unwrap()));
    assert_eq!(who(&right).await.expect("right password"), "Basic:ops");

    let wrong = client(addr, Some(Credentials::basic("ops", "guess").unwrap()));
    let status = who(&wrong).await.expect_status(Code::Unauthenticated);
    assert_eq!(status.message(), "access denied");
    let other_user = client(addr, Some(Credentials::basic("root", "s3cr3t").unwrap()));
    who(&other_user).await.expect_status(Code::Unauthenticated);

    let none = client(addr, None);
    let status = who(&none).await.expect_status(Code::Unauthenticated);
    assert!(status.message().contains("Basic"), "{status:?}");
    // A bearer token is not basic credentials.
    who(&client(addr, Some(Credentials::bearer("s3cr3t").unwrap())))
        .await
        .expect_status(Code::Unauthenticated);
    // Malformed base64 after `Basic`.
    let raw = Request::new(word("who")).with_metadata("authorization", "Basic %%%");
    within("unary", none.unary(raw))
        .await
        .expect_status(Code::Unauthenticated);

    // Health checks need no credentials.
    assert_eq!(health_of(addr).await, ServingStatus::Serving);
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn health_checks_can_require_credentials_too() {
    let (addr, server, _) = serve(BasicAuth::single("ops", "s3cr3t").require_for_health()).await;
    let health = HealthClient::new(Client::connect(&addr.to_string()).await.expect("connect"));
    within(
        "health check",
        health.check(HealthCheckRequest {
            service: String::new(),
        }),
    )
    .await
    .expect_status(Code::Unauthenticated);
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn credentials_are_refused_over_plaintext_unless_allowed() {
    let (addr, server, arrived) = serve(BearerAuth::token("t0k3n")).await;

    // Client-wide credentials, no opt-in: the call fails before it is sent.
    let refusing = EchoClient::new(
        Client::builder(&addr.to_string())
            .credentials(Credentials::bearer("t0k3n").unwrap())
            .build()
            .expect("client"),
    );
    let status = who(&refusing).await.expect_status(Code::FailedPrecondition);
    assert!(status.message().contains("plaintext"), "{status:?}");
    assert!(
        status.message().contains("allow_plaintext_credentials"),
        "{status:?}"
    );
    // Per-call credentials obey the same rule.
    let plain = EchoClient::new(Client::connect(&addr.to_string()).await.expect("connect"));
    who_with(&plain, Credentials::bearer("t0k3n").unwrap())
        .await
        .expect_status(Code::FailedPrecondition);
    // Streams too.
    within("bidi", refusing.bidi(request_stream([word("x")])))
        .await
        .expect_status(Code::FailedPrecondition);
    assert_eq!(
        arrived.load(Ordering::SeqCst),
        0,
        "nothing reached the server"
    );

    // Without credentials the client calls as usual (and this server refuses).
    who(&plain).await.expect_status(Code::Unauthenticated);
    assert_eq!(arrived.load(Ordering::SeqCst), 1);

    // With the opt-in, the token is sent and accepted.
    let allowed = client(addr, Some(Credentials::bearer("t0k3n").unwrap()));
    assert_eq!(who(&allowed).await.expect("allowed"), "Bearer:");
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn per_call_credentials_take_precedence() {
    let (addr, server, _) = serve(BasicAuth::new(|user, password| {
        matches!((user, password), ("ann", "a-pass") | ("bob", "b-pass"))
    }))
    .await;

    let anonymous = client(addr, None);
    who(&anonymous).await.expect_status(Code::Unauthenticated);
    assert_eq!(
        who_with(&anonymous, Credentials::basic("ann", "a-pass").unwrap())
            .await
            .expect("per-call credentials"),
        "Basic:ann"
    );

    let ann = client(addr, Some(Credentials::basic("ann", "a-pass").unwrap()));
    assert_eq!(who(&ann).await.expect("client credentials"), "Basic:ann");
    assert_eq!(
        who_with(&ann, Credentials::basic("bob", "b-pass").unwrap())
            .await
            .expect("the call's own credentials"),
        "Basic:bob"
    );
    who_with(&ann, Credentials::basic("bob", "wrong").unwrap())
        .await
        .expect_status(Code::Unauthenticated);
    // The call's credentials were for that call only.
    assert_eq!(who(&ann).await.expect("client credentials"), "Basic:ann");
    server.shutdown().await.expect("shutdown");
}

// ===== JWT =====

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// One algorithm's keys: to sign good tokens, to forge (same algorithm, another key), and
/// the server's verifier.
struct JwtKeys {
    algorithm: Algorithm,
    signing: EncodingKey,
    forging: EncodingKey,
    /// What an attacker who knows only public material signs an HS256 token with (the
    /// verifying key's PEM, the classic algorithm confusion), or for HS256 a token from
    /// another algorithm altogether.
    wrong_algorithm: (Header, EncodingKey),
    verifier: fn() -> JwtAuth,
}

fn token(keys: &JwtKeys, claims: serde_json::Value) -> String {
    jsonwebtoken::encode(&Header::new(keys.algorithm), &claims, &keys.signing).expect("sign")
}

fn good_claims() -> serde_json::Value {
    json!({
        "sub": "order-service",
        "aud": "echo",
        "iss": "https://login.test",
        "exp": now() + 600,
        "role": "admin",
    })
}

fn with(claims: serde_json::Value, name: &str, value: serde_json::Value) -> serde_json::Value {
    let mut claims = claims;
    claims[name] = value;
    claims
}

fn bearer(token: &str) -> Credentials {
    Credentials::bearer(token).expect("a JWT is a valid bearer token")
}

async fn jwt_is_verified(keys: JwtKeys) {
    let auth = (keys.verifier)()
        .audience("echo")
        .issuer("https://login.test")
        .leeway(Duration::from_secs(120));
    let (addr, server, _) = serve(auth).await;
    let anonymous = client(addr, None);

    // A good token: the handler sees the caller (its `sub`) and the claims.
    let good = token(&keys, good_claims());
    assert_eq!(
        who_with(&anonymous, bearer(&good))
            .await
            .expect("good token"),
        "Jwt:order-service role=admin"
    );
    // Streaming calls are checked as well.
    let authed = client(addr, Some(bearer(&good)));
    let stream = within(
        "server_stream",
        authed.server_stream(EchoRequest {
            message: "s".into(),
            count: 2,
            ..Default::default()
        }),
    )
    .await
    .expect("server_stream with a token")
    .into_inner();
    assert_eq!(
        within("collect", testing::collect(stream))
            .await
            .expect("replies")
            .len(),
        2
    );
    within("server_stream", anonymous.server_stream(word("s")))
        .await
        .expect_status(Code::Unauthenticated);

    let refused = |claims: serde_json::Value, expected: &'static str| {
        let token = token(&keys, claims);
        let anonymous = anonymous.clone();
        async move {
            let status = who_with(&anonymous, bearer(&token))
                .await
                .expect_status(Code::Unauthenticated);
            assert!(
                status.message().contains(expected),
                "expected `{expected}` in {status:?}"
            );
        }
    };
    refused(with(good_claims(), "exp", json!(now() - 3600)), "expired").await;
    refused(
        with(good_claims(), "nbf", json!(now() + 3600)),
        "not valid yet",
    )
    .await;
    refused(with(good_claims(), "aud", json!("billing")), "audience").await;
    refused(
        with(good_claims(), "iss", json!("https://evil.test")),
        "issuer",
    )
    .await;
    let mut no_exp = good_claims();
    no_exp.as_object_mut().expect("object").remove("exp");
    refused(no_exp, "`exp`").await;
    // Within the leeway, an expiry just past is still accepted.
    assert!(
        who_with(
            &anonymous,
            bearer(&token(&keys, with(good_claims(), "exp", json!(now() - 1))))
        )
        .await
        .is_ok()
    );

    // Forged: the right algorithm, another key.
    let forged = jsonwebtoken::encode(&Header::new(keys.algorithm), &good_claims(), &keys.forging)
        .expect("sign");
    let status = who_with(&anonymous, bearer(&forged))
        .await
        .expect_status(Code::Unauthenticated);
    assert!(status.message().contains("signature"), "{status:?}");
    // Another algorithm.
    let (header, key) = &keys.wrong_algorithm;
    let confused = jsonwebtoken::encode(header, &good_claims(), key).expect("sign");
    let status = who_with(&anonymous, bearer(&confused))
        .await
        .expect_status(Code::Unauthenticated);
    assert!(status.message().contains("algorithm"), "{status:?}");
    // Garbage, and nothing at all.
    let status = who_with(&anonymous, bearer("not.a.jwt"))
        .await
        .expect_status(Code::Unauthenticated);
    assert!(status.message().contains("malformed"), "{status:?}");
    who(&anonymous).await.expect_status(Code::Unauthenticated);
    assert_eq!(health_of(addr).await, ServingStatus::Serving);
    server.shutdown().await.expect("shutdown");
}

const HS_SECRET: &[u8] = b"a shared secret of the test, 32+ bytes";

#[tokio::test]
async fn jwt_hs256() {
    let es = rcgen::KeyPair::generate().expect("P-256 key");
    jwt_is_verified(JwtKeys {
        algorithm: Algorithm::HS256,
        signing: EncodingKey::from_secret(HS_SECRET),
        forging: EncodingKey::from_secret(b"another secret"),
        wrong_algorithm: (
            Header::new(Algorithm::ES256),
            EncodingKey::from_ec_pem(es.serialize_pem().as_bytes()).expect("EC key"),
        ),
        verifier: || JwtAuth::hs256(HS_SECRET),
    })
    .await;
}

/// An RSA key pair as PEM (private PKCS#8, public SPKI).
fn rsa_pems() -> (String, String) {
    use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("RSA key");
    let private = key.to_pkcs8_pem(LineEnding::LF).expect("PEM").to_string();
    let public = key
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .expect("PEM");
    (private, public)
}

static RSA_PUBLIC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
static EC_PUBLIC: std::sync::OnceLock<String> = std::sync::OnceLock::new();

#[tokio::test]
async fn jwt_rs256() {
    let (private, public) = rsa_pems();
    let (other, _) = rsa_pems();
    RSA_PUBLIC.set(public.clone()).expect("set once");
    jwt_is_verified(JwtKeys {
        algorithm: Algorithm::RS256,
        signing: EncodingKey::from_rsa_pem(private.as_bytes()).expect("RSA key"),
        forging: EncodingKey::from_rsa_pem(other.as_bytes()).expect("RSA key"),
        wrong_algorithm: (
            Header::new(Algorithm::HS256),
            EncodingKey::from_secret(public.as_bytes()),
        ),
        verifier: || JwtAuth::rs256_pem(RSA_PUBLIC.get().expect("set")).expect("RSA public key"),
    })
    .await;
}

#[tokio::test]
async fn jwt_es256() {
    let key = rcgen::KeyPair::generate().expect("P-256 key");
    let other = rcgen::KeyPair::generate().expect("P-256 key");
    EC_PUBLIC.set(key.public_key_pem()).expect("set once");
    jwt_is_verified(JwtKeys {
        algorithm: Algorithm::ES256,
        signing: EncodingKey::from_ec_pem(key.serialize_pem().as_bytes()).expect("EC key"),
        forging: EncodingKey::from_ec_pem(other.serialize_pem().as_bytes()).expect("EC key"),
        wrong_algorithm: (
            Header::new(Algorithm::HS256),
            EncodingKey::from_secret(key.public_key_pem().as_bytes()),
        ),
        verifier: || JwtAuth::es256_pem(EC_PUBLIC.get().expect("set")).expect("EC public key"),
    })
    .await;
}

#[tokio::test]
async fn jwt_signer_credentials_for_each_algorithm() {
    let es = rcgen::KeyPair::generate().expect("P-256 key");
    let (rsa_private, rsa_public) = rsa_pems();
    let cases = [
        (JwtSigner::hs256(HS_SECRET), JwtAuth::hs256(HS_SECRET)),
        (
            JwtSigner::rs256_pem(&rsa_private).expect("RSA signing key"),
            JwtAuth::rs256_pem(&rsa_public).expect("RSA verifying key"),
        ),
        (
            JwtSigner::es256_pem(es.serialize_pem()).expect("EC signing key"),
            JwtAuth::es256_pem(es.public_key_pem()).expect("EC verifying key"),
        ),
    ];
    for (signer, auth) in cases {
        let (addr, server, _) = serve(auth.audience("echo")).await;
        let signer = signer
            .subject("order-service")
            .audience("echo")
            .claim("role", "reader");
        let authed = client(addr, Some(Credentials::jwt(signer)));
        for _ in 0..2 {
            assert_eq!(
                who(&authed).await.expect("signed token"),
                "Jwt:order-service role=reader"
            );
        }
        server.shutdown().await.expect("shutdown");
    }
    // Keys of the wrong kind are errors, not panics.
    assert!(JwtSigner::rs256_pem(es.serialize_pem()).is_err());
    assert!(JwtAuth::es256_pem(&rsa_public).is_err());
}

// ===== go-zero app/token in Redis =====

const KEY: &str = "rpc:auth:echo";

fn app_token(app: &str, token: &str) -> Credentials {
    Credentials::app_token(app, token).expect("app/token")
}

#[tokio::test]
async fn app_token_against_redis_fails_closed() {
    let mut redis = RedisServer::start();
    redis.command(&["HSET", KEY, "order", "s3cr3t"]);
    let store = || RedisTokens::new(&redis.addr(), KEY).expect("store");
    // Asks Redis on every call, so the outage below is seen at once.
    let (addr, server, _) = serve(AppTokenAuth::new(store()).cache_ttl(Duration::ZERO)).await;
    let (lenient_addr, lenient, _) =
        serve(AppTokenAuth::new(store()).lenient_go_zero_compat()).await;

    let order = client(addr, Some(app_token("order", "s3cr3t")));
    assert_eq!(who(&order).await.expect("right token"), "AppToken:order");
    let status = who(&client(addr, Some(app_token("order", "guess"))))
        .await
        .expect_status(Code::Unauthenticated);
    assert_eq!(status.message(), "access denied");
    who(&client(addr, Some(app_token("stranger", "s3cr3t"))))
        .await
        .expect_status(Code::Unauthenticated);
    let anonymous = client(addr, None);
    let status = who(&anonymous).await.expect_status(Code::Unauthenticated);
    assert!(
        status.message().contains("app/token required"),
        "{status:?}"
    );
    let only_app = Request::new(word("who")).with_metadata("app", "order");
    within("unary", anonymous.unary(only_app))
        .await
        .expect_status(Code::Unauthenticated);

    // Every kind of call is checked.
    let stream = within("bidi", order.bidi(request_stream([word("a"), word("b")])))
        .await
        .expect("bidi with app/token")
        .into_inner();
    assert_eq!(
        within("collect", testing::collect(stream))
            .await
            .expect("replies")
            .len(),
        2
    );
    let reply = within(
        "client_stream",
        order.client_stream(request_stream([word("x"), word("y")])),
    )
    .await
    .expect("client_stream with app/token");
    assert_eq!(reply.into_inner().message, "x,y");
    within("bidi", anonymous.bidi(request_stream([word("a")])))
        .await
        .expect_status(Code::Unauthenticated);
    within(
        "client_stream",
        anonymous.client_stream(request_stream([word("a")])),
    )
    .await
    .expect_status(Code::Unauthenticated);
    assert_eq!(health_of(addr).await, ServingStatus::Serving);

    // go-zero's lenient mode, asked for by name: unknown apps pass, wrong tokens do not.
    assert_eq!(
        who(&client(lenient_addr, Some(app_token("stranger", "x"))))
            .await
            .expect("lenient: unknown app let in"),
        "anonymous"
    );
    who(&client(lenient_addr, Some(app_token("order", "guess"))))
        .await
        .expect_status(Code::Unauthenticated);
    who(&client(lenient_addr, None))
        .await
        .expect_status(Code::Unauthenticated);

    // Redis down: UNAVAILABLE, never a pass; the lenient mode lets the call in.
    redis.stop();
    let status = who(&order).await.expect_status(Code::Unavailable);
    assert!(status.message().contains("Redis"), "{status:?}");
    who(&client(addr, Some(app_token("stranger", "x"))))
        .await
        .expect_status(Code::Unavailable);
    assert_eq!(
        who(&client(lenient_addr, Some(app_token("nobody", "x"))))
            .await
            .expect("lenient: let in while Redis is down"),
        "anonymous"
    );
    // Health checks stay up.
    assert_eq!(health_of(addr).await, ServingStatus::Serving);

    server.shutdown().await.expect("shutdown");
    lenient.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn app_token_cache_respects_its_ttl() {
    let redis = RedisServer::start();
    redis.command(&["HSET", KEY, "order", "old"]);
    let store = || RedisTokens::new(&redis.addr(), KEY).expect("store");
    let (long_addr, long, _) =
        serve(AppTokenAuth::new(store()).cache_ttl(Duration::from_secs(3600))).await;
    let (short_addr, short, _) =
        serve(AppTokenAuth::new(store()).cache_ttl(Duration::from_millis(200))).await;

    for addr in [long_addr, short_addr] {
        who(&client(addr, Some(app_token("order", "old"))))
            .await
            .expect("old token before the change");
    }
    redis.command(&["HSET", KEY, "order", "new"]);

    // An hour's cache still holds the old token.
    who(&client(long_addr, Some(app_token("order", "old"))))
        .await
        .expect("cached token");
    who(&client(long_addr, Some(app_token("order", "new"))))
        .await
        .expect_status(Code::Unauthenticated);

    // A short one picks up the new token once it expires.
    let new = client(short_addr, Some(app_token("order", "new")));
    let mut accepted = false;
    for _ in 0..200 {
        if who(&new).await.is_ok() {
            accepted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(accepted, "the new token was never accepted");
    who(&client(short_addr, Some(app_token("order", "old"))))
        .await
        .expect_status(Code::Unauthenticated);

    long.shutdown().await.expect("shutdown");
    short.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn app_tokens_from_a_fixed_map() {
    let tokens = HashMap::from([("order".to_owned(), "s3cr3t".to_owned())]);
    let (addr, server, _) = serve(AppTokenAuth::new(tokens)).await;
    assert_eq!(
        who(&client(addr, Some(app_token("order", "s3cr3t"))))
            .await
            .expect("right token"),
        "AppToken:order"
    );
    who(&client(addr, Some(app_token("order", "nope"))))
        .await
        .expect_status(Code::Unauthenticated);
    server.shutdown().await.expect("shutdown");
}

// ===== config =====

#[tokio::test]
async fn config_driven_server_and_client_with_app_tokens() {
    let redis = RedisServer::with_password("redis-pw");
    redis.command(&["HSET", KEY, "order", "s3cr3t"]);
    let config = ServerConfig::from_yaml_str(&format!(
        "ListenOn: 127.0.0.1:0\n\
         Auth: true\n\
         StrictControl: true\n\
         Redis:\n  Host: {}\n  Type: node\n  Pass: redis-pw\n  Key: {KEY}\n",
        redis.addr()
    ))
    .expect("server config");
    let builder = config
        .builder()
        .expect("builder")
        .add_service(EchoServer::new(WhoAmI));
    let (addr, server) = spawn_builder(builder).await;

    let client_config = |extra: &str| {
        ClientConfig::from_yaml_str(&format!("Endpoints: [{addr}]\n{extra}"))
            .expect("client config")
    };
    let good = EchoClient::new(
        client_config("App: order\nToken: s3cr3t\nAllowPlaintextCredentials: true\n")
            .build()
            .expect("client"),
    );
    assert_eq!(
        who(&good).await.expect("configured app/token"),
        "AppToken:order"
    );
    let wrong = EchoClient::new(
        client_config("App: order\nToken: nope\nAllowPlaintextCredentials: true\n")
            .build()
            .expect("client"),
    );
    who(&wrong).await.expect_status(Code::Unauthenticated);
    let plaintext = EchoClient::new(
        client_config("App: order\nToken: s3cr3t\n")
            .build()
            .expect("client"),
    );
    who(&plaintext)
        .await
        .expect_status(Code::FailedPrecondition);
    let none = EchoClient::new(client_config("").build().expect("client"));
    who(&none).await.expect_status(Code::Unauthenticated);
    server.shutdown().await.expect("shutdown");
}

#[test]
fn auth_config_mistakes_name_the_key_and_line() {
    let error = ServerConfig::from_yaml_str("ListenOn: 127.0.0.1:0\nAuth: true\n").unwrap_err();
    assert_eq!((error.key(), error.line()), ("Auth", Some(2)), "{error}");
    assert!(error.message().contains("Redis"), "{error}");

    let error = ServerConfig::from_yaml_str(
        "ListenOn: 127.0.0.1:0\nAuth: true\nRedis:\n  Host: 127.0.0.1:6379\n  Key: k\n  Type: cluster\n",
    )
    .unwrap_err();
    assert_eq!(
        (error.key(), error.line()),
        ("Redis.Type", Some(6)),
        "{error}"
    );

    let error = ServerConfig::from_yaml_str(
        "ListenOn: 127.0.0.1:0\nAuth: true\nRedis:\n  Host: 127.0.0.1:6379\n",
    )
    .unwrap_err();
    assert_eq!(error.key(), "Redis.Key", "{error}");

    let error = ClientConfig::from_yaml_str("Endpoints: [127.0.0.1:1]\nApp: order\n").unwrap_err();
    assert_eq!((error.key(), error.line()), ("App", Some(2)), "{error}");
    assert!(error.message().contains("Token"), "{error}");
}
