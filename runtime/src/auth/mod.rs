//! Authentication: credentials clients send, and server interceptors that check them.
//!
//! | scheme | client sends | server checks with |
//! |---|---|---|
//! | HTTP Basic | [`Credentials::basic`]: `authorization: Basic …` | [`BasicAuth`] |
//! | opaque bearer token | [`Credentials::bearer`]: `authorization: Bearer …` | [`BearerAuth`] |
//! | JSON Web Token (`jwt` feature) | [`Credentials::jwt`] (signed per call, cached) or [`Credentials::bearer`] | [`JwtAuth`] |
//! | go-zero app/token | [`Credentials::app_token`]: metadata `app` and `token` | [`AppTokenAuth`] over a [`TokenStore`], e.g. [`RedisTokens`] (`redis` feature) |
//!
//! ```no_run
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! use rzero::auth::{BasicAuth, Credentials};
//! // server: every call but health checks needs the right user and password
//! let server = rzero::Server::builder().interceptor(BasicAuth::single("ops", "s3cr3t"));
//! // client: sends them on every call (over TLS, or after an explicit opt-in)
//! let client = rzero::Client::builder("127.0.0.1:8080")
//!     .credentials(Credentials::basic("ops", "s3cr3t")?)
//!     .allow_plaintext_credentials()
//!     .build()?;
//! # Ok(()) }
//! ```
//!
//! Each interceptor that lets a call in puts a [`Caller`] into the request extensions (and
//! [`JwtAuth`] the token's [`Claims`] too), where the handler reads it:
//! `request.extensions().get::<rzero::auth::Caller>()`.
//!
//! # Decisions
//!
//! - **Fail closed.** Missing, malformed, unknown or wrong credentials are
//!   `UNAUTHENTICATED`; a token store that cannot answer (Redis down) is `UNAVAILABLE`, never a
//!   pass. go-zero lets unknown apps, and every app while Redis is down, through unless
//!   `StrictControl` is set (its issues #211, #4515); rzero does that only when asked by name,
//!   [`AppTokenAuth::lenient_go_zero_compat`].
//! - **No credentials over plaintext.** A client refuses to send credentials on a connection
//!   that is not TLS: the call fails with `FAILED_PRECONDITION` before anything is sent,
//!   unless the client opted in with
//!   [`ClientBuilder::allow_plaintext_credentials`](crate::client::ClientBuilder::allow_plaintext_credentials)
//!   (a test, a sidecar on loopback). grpc-go does the same for its own per-RPC credentials;
//!   go-zero's app/token credential opts out of it.
//! - **Credentials are attached last**, after the client's interceptors, just before the call
//!   goes out: logging interceptors never see secrets, and every attempt of a retried call
//!   (and every call of a [`JwtSigner`]) gets fresh ones. Their metadata values are marked
//!   sensitive, so HTTP/2 never puts them in its header compression table.
//! - **Health checks need no credentials.** Every server interceptor here lets
//!   `grpc.health.v1.Health` through by default, so load balancers and orchestrators can
//!   probe; `require_for_health()` takes that away. `exempt_method` and `exempt_service` add
//!   more (say, reflection).
//! - **Constant-time comparison** of passwords and tokens ([`constant_time_eq`]).
//! - **Features.** `auth` (default) needs only `base64`, already in the tree. `jwt` adds
//!   `jsonwebtoken` on `ring` (the crypto TLS uses too), `redis` the `redis` crate with
//!   tokio and nothing else; both are off by default because only some services need them.

mod app_token;
mod basic;
mod bearer;
mod caller;
mod credentials;
mod error;
mod exempt;
#[cfg(feature = "jwt")]
mod jwt;
#[cfg(feature = "redis")]
mod redis;

pub use app_token::{AppTokenAuth, TokenStore};
pub use basic::BasicAuth;
pub use bearer::BearerAuth;
pub use caller::{Caller, Scheme};
pub use credentials::Credentials;
pub(crate) use credentials::{CallCredentials, ClientCredentials};
pub use error::Error;
#[cfg(feature = "jwt")]
#[cfg_attr(docsrs, doc(cfg(feature = "jwt")))]
pub use jwt::{Claims, JwtAuth, JwtSigner};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use redis::RedisTokens;

/// Whether `a` and `b` are equal, in a time that depends only on their lengths, not on where
/// they differ: comparing a secret byte by byte and stopping at the first difference tells
/// an attacker, through timing, how much of a guess was right.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let difference = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // Keep the optimiser from turning the fold back into an early-exit comparison.
    std::hint::black_box(difference) == 0
}

/// The value of `authorization` metadata after `scheme` (case-insensitive, as HTTP says),
/// or why there is none.
fn authorization<'a>(
    metadata: &'a tonic::metadata::MetadataMap,
    scheme: &str,
) -> Result<&'a str, tonic::Status> {
    let missing = || {
        tonic::Status::unauthenticated(format!(
            "credentials required: send `authorization: {scheme} …` metadata"
        ))
    };
    let value = metadata.get("authorization").ok_or_else(missing)?;
    let value = value.to_str().map_err(|_| missing())?;
    let (given, rest) = value.split_once(' ').ok_or_else(missing)?;
    if !given.eq_ignore_ascii_case(scheme) {
        return Err(tonic::Status::unauthenticated(format!(
            "credentials required: expected the `{scheme}` authorization scheme, got `{given}`"
        )));
    }
    Ok(rest.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"", b""));
        assert!(constant_time_eq(b"s3cr3t", b"s3cr3t"));
        assert!(!constant_time_eq(b"s3cr3t", b"s3cr3T"));
        assert!(!constant_time_eq(b"s3cr3t", b"s3cr3"));
        assert!(!constant_time_eq(b"", b"x"));
    }

    #[test]
    fn authorization_scheme_is_case_insensitive() {
        let mut metadata = tonic::metadata::MetadataMap::new();
        let none = authorization(&metadata, "Bearer").unwrap_err();
        assert_eq!(none.code(), tonic::Code::Unauthenticated);
        metadata.insert("authorization", "bearer abc".parse().unwrap());
        assert_eq!(authorization(&metadata, "Bearer").unwrap(), "abc");
        let other = authorization(&metadata, "Basic").unwrap_err();
        assert!(other.message().contains("got `bearer`"), "{other:?}");
    }
}
