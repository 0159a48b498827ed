//! JSON Web Tokens: [`JwtSigner`] on clients, [`JwtAuth`] on servers, [`Claims`] for
//! handlers.
//!
//! One algorithm per key, fixed when the key is loaded: HS256 (a shared secret), RS256 or
//! ES256 (PEM keys). A verifier accepts only its key's algorithm, so a token signed with
//! another one (`none`, or HS256 "signed" with an RSA public key) is refused. Built on
//! `jsonwebtoken` 9 (over `ring`).

use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Map, Value};
use tonic::Status;
use tonic::metadata::AsciiMetadataValue;

use super::exempt::{Exemptions, exemption_methods};
use super::{Caller, Error, Scheme, authorization};
use crate::interceptor::{Call, Interceptor, Next, Reply};

/// The claims of a token [`JwtAuth`] accepted, in the request extensions:
/// `request.extensions().get::<rzero::auth::Claims>()`.
#[derive(Debug, Clone, PartialEq)]
pub struct Claims(Map<String, Value>);

impl Claims {
    /// One claim, by name.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name)
    }

    /// `sub`, when it is a string.
    pub fn subject(&self) -> Option<&str> {
        self.get("sub").and_then(Value::as_str)
    }

    /// `iss`, when it is a string.
    pub fn issuer(&self) -> Option<&str> {
        self.get("iss").and_then(Value::as_str)
    }

    /// Every claim.
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }

    /// The claims as a type of your own.
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        T::deserialize(Value::Object(self.0.clone()))
    }
}

/// A server interceptor that lets in calls with a valid `authorization: Bearer <JWT>`: signed
/// with its key and algorithm, with an `exp` in the future, an `nbf` (if any) in the past
/// (both give or take the [`leeway`](Self::leeway)), and the [`audience`](Self::audience) and
/// [`issuer`](Self::issuer) asked for. The token's [`Claims`] and a [`Caller`] (its `sub`)
/// go into the request extensions. Anything else is `UNAUTHENTICATED`, with a message that
/// says what was wrong.
///
/// ```
/// # fn f(public_pem: &[u8]) -> Result<(), rzero::auth::Error> {
/// let auth = rzero::auth::JwtAuth::es256_pem(public_pem)?
///     .audience("greeter")
///     .issuer("https://login.example.com");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct JwtAuth {
    key: DecodingKey,
    validation: Validation,
    exempt: Exemptions,
}

impl fmt::Debug for JwtAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtAuth")
            .field("algorithms", &self.validation.algorithms)
            .field("audience", &self.validation.aud)
            .field("issuer", &self.validation.iss)
            .field("leeway_secs", &self.validation.leeway)
            .field("exempt", &self.exempt)
            .finish_non_exhaustive()
    }
}

impl JwtAuth {
    /// Verifies HS256 tokens signed with `secret`.
    pub fn hs256(secret: impl AsRef<[u8]>) -> Self {
        Self::with(DecodingKey::from_secret(secret.as_ref()), Algorithm::HS256)
    }

    /// Verifies RS256 tokens with an RSA public key in PEM (`PUBLIC KEY` or
    /// `RSA PUBLIC KEY`).
    pub fn rs256_pem(pem: impl AsRef<[u8]>) -> Result<Self, Error> {
        let key = DecodingKey::from_rsa_pem(pem.as_ref()).map_err(|e| {
            Error::new(format!(
                "RS256 verifying key: not an RSA public key PEM: {e}"
            ))
        })?;
        Ok(Self::with(key, Algorithm::RS256))
    }

    /// Verifies ES256 tokens with a P-256 public key in PEM (`PUBLIC KEY`).
    pub fn es256_pem(pem: impl AsRef<[u8]>) -> Result<Self, Error> {
        let key = DecodingKey::from_ec_pem(pem.as_ref()).map_err(|e| {
            Error::new(format!(
                "ES256 verifying key: not an EC public key PEM: {e}"
            ))
        })?;
        Ok(Self::with(key, Algorithm::ES256))
    }

    fn with(key: DecodingKey, algorithm: Algorithm) -> Self {
        let mut validation = Validation::new(algorithm);
        validation.validate_nbf = true;
        Self {
            key,
            validation,
            exempt: Exemptions::default(),
        }
    }

    /// Accepts tokens whose `aud` includes `audience` (call again to accept several). Without
    /// any, a token that has an `aud` is refused: it was meant for someone named.
    #[must_use]
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.validation
            .aud
            .get_or_insert_with(Default::default)
            .insert(audience.into());
        self
    }

    /// Accepts only tokens whose `iss` is `issuer` (call again to accept several). Without
    /// any, every issuer is accepted.
    #[must_use]
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.validation
            .iss
            .get_or_insert_with(Default::default)
            .insert(issuer.into());
        self
    }

    /// How far `exp` and `nbf` may be off, for clocks that differ (whole seconds). Default: 60 s.
    #[must_use]
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.validation.leeway = leeway.as_secs();
        self
    }

    exemption_methods!();

    fn check(&self, call: &Call) -> Result<Claims, Status> {
        let token = authorization(call.metadata(), "Bearer")?;
        jsonwebtoken::decode::<Map<String, Value>>(token, &self.key, &self.validation)
            .map(|data| Claims(data.claims))
            .map_err(|error| Status::unauthenticated(refusal(error.kind())))
    }
}

/// Why a token was refused, in words.
fn refusal(kind: &ErrorKind) -> String {
    match kind {
        ErrorKind::ExpiredSignature => "token expired".to_owned(),
        ErrorKind::ImmatureSignature => "token not valid yet (nbf)".to_owned(),
        ErrorKind::InvalidAudience => "token is for another audience (aud)".to_owned(),
        ErrorKind::InvalidIssuer => "token from an issuer not accepted (iss)".to_owned(),
        ErrorKind::InvalidSignature => "token signature does not verify".to_owned(),
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
            "token signed with an algorithm not accepted".to_owned()
        }
        ErrorKind::MissingRequiredClaim(claim) => format!("token lacks the `{claim}` claim"),
        _ => "malformed token".to_owned(),
    }
}

#[async_trait::async_trait]
impl Interceptor for JwtAuth {
    async fn intercept(&self, mut call: Call, next: Next) -> Result<Reply, Status> {
        if !self.exempt.covers(call.method()) {
            let claims = self.check(&call)?;
            let subject = claims.subject().unwrap_or_default().to_owned();
            call.extensions_mut()
                .insert(Caller::new(Scheme::Jwt, subject));
            call.extensions_mut().insert(claims);
        }
        next.run(call).await
    }
}

/// Signs the tokens a client sends ([`Credentials::jwt`](super::Credentials::jwt)): the
/// claims given here plus `iat` (now) and `exp` (now + [`ttl`](Self::ttl)). A token is reused
/// until less than a quarter of its lifetime is left, then signed anew.
///
/// ```
/// # fn f() -> Result<(), rzero::auth::Error> {
/// use rzero::auth::{Credentials, JwtSigner};
/// let signer = JwtSigner::hs256(b"shared secret")
///     .subject("order-service")
///     .audience("greeter")
///     .ttl(std::time::Duration::from_secs(300));
/// let credentials = Credentials::jwt(signer);
/// # Ok(()) }
/// ```
pub struct JwtSigner {
    key: EncodingKey,
    header: Header,
    claims: Map<String, Value>,
    ttl: Duration,
    /// The last token and when it expires.
    current: Mutex<Option<(AsciiMetadataValue, SystemTime)>>,
}

impl fmt::Debug for JwtSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtSigner")
            .field("algorithm", &self.header.alg)
            .field("claims", &self.claims)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl JwtSigner {
    /// Signs HS256 tokens with `secret`.
    pub fn hs256(secret: impl AsRef<[u8]>) -> Self {
        Self::with(EncodingKey::from_secret(secret.as_ref()), Algorithm::HS256)
    }

    /// Signs RS256 tokens with an RSA private key in PEM (`PRIVATE KEY` or
    /// `RSA PRIVATE KEY`).
    pub fn rs256_pem(pem: impl AsRef<[u8]>) -> Result<Self, Error> {
        let key = EncodingKey::from_rsa_pem(pem.as_ref()).map_err(|e| {
            Error::new(format!(
                "RS256 signing key: not an RSA private key PEM: {e}"
            ))
        })?;
        Self::with(key, Algorithm::RS256).checked()
    }

    /// Signs ES256 tokens with a P-256 private key in PEM (PKCS#8 `PRIVATE KEY`).
    pub fn es256_pem(pem: impl AsRef<[u8]>) -> Result<Self, Error> {
        let key = EncodingKey::from_ec_pem(pem.as_ref()).map_err(|e| {
            Error::new(format!("ES256 signing key: not an EC private key PEM: {e}"))
        })?;
        Self::with(key, Algorithm::ES256).checked()
    }

    fn with(key: EncodingKey, algorithm: Algorithm) -> Self {
        Self {
            key,
            header: Header::new(algorithm),
            claims: Map::new(),
            ttl: Duration::from_secs(300),
            current: Mutex::new(None),
        }
    }

    /// A key that parses may still not sign (the wrong curve, say): find out now rather than
    /// on the first call.
    fn checked(self) -> Result<Self, Error> {
        jsonwebtoken::encode(&self.header, &Map::new(), &self.key).map_err(|e| {
            Error::new(format!(
                "{:?} signing key cannot sign: {e}",
                self.header.alg
            ))
        })?;
        Ok(self)
    }

    /// Adds a claim to every token (`iat` and `exp` are set by the signer).
    #[must_use]
    pub fn claim(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.claims.insert(name.into(), value.into());
        self
    }

    /// `sub`: who the tokens speak for.
    #[must_use]
    pub fn subject(self, subject: impl Into<String>) -> Self {
        self.claim("sub", subject.into())
    }

    /// `iss`: who issued the tokens.
    #[must_use]
    pub fn issuer(self, issuer: impl Into<String>) -> Self {
        self.claim("iss", issuer.into())
    }

    /// `aud`: whom the tokens are for.
    #[must_use]
    pub fn audience(self, audience: impl Into<String>) -> Self {
        self.claim("aud", audience.into())
    }

    /// `kid` in the header: which of the verifier's keys to use.
    #[must_use]
    pub fn key_id(mut self, kid: impl Into<String>) -> Self {
        self.header.kid = Some(kid.into());
        self
    }

    /// How long each token is valid. Default: 5 minutes.
    #[must_use]
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl.max(Duration::from_secs(1));
        self
    }

    /// `Bearer <token>`, reusing the last token while it has more than a quarter of its
    /// lifetime left.
    pub(crate) fn authorization(&self) -> Result<AsciiMetadataValue, Status> {
        let now = SystemTime::now();
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((value, expires)) = &*current
            && expires.duration_since(now).unwrap_or_default() > self.ttl / 4
        {
            return Ok(value.clone());
        }
        let issued = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let mut claims = self.claims.clone();
        claims.insert("iat".to_owned(), issued.into());
        claims.insert("exp".to_owned(), (issued + self.ttl.as_secs()).into());
        let token = jsonwebtoken::encode(&self.header, &claims, &self.key)
            .map_err(|e| Status::internal(format!("signing the JWT failed: {e}")))?;
        let mut value = AsciiMetadataValue::try_from(format!("Bearer {token}"))
            .map_err(|_| Status::internal("a signed JWT is not a valid metadata value"))?;
        value.set_sensitive(true);
        *current = Some((
            value.clone(),
            UNIX_EPOCH + Duration::from_secs(issued) + self.ttl,
        ));
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims_of(auth: &JwtAuth, value: &AsciiMetadataValue) -> Result<Claims, String> {
        let token = value.to_str().unwrap().strip_prefix("Bearer ").unwrap();
        jsonwebtoken::decode::<Map<String, Value>>(token, &auth.key, &auth.validation)
            .map(|data| Claims(data.claims))
            .map_err(|e| refusal(e.kind()))
    }

    #[test]
    fn hs256_round_trip_and_reuse() {
        let signer = JwtSigner::hs256(b"k").subject("svc").audience("greeter");
        let first = signer.authorization().unwrap();
        assert_eq!(
            signer.authorization().unwrap(),
            first,
            "a fresh token is reused"
        );
        let claims = claims_of(&JwtAuth::hs256(b"k").audience("greeter"), &first).unwrap();
        assert_eq!(claims.subject(), Some("svc"));
        assert!(claims.get("exp").and_then(Value::as_u64).is_some());
        assert_eq!(
            claims_of(&JwtAuth::hs256(b"k"), &first).unwrap_err(),
            "token is for another audience (aud)"
        );
        assert_eq!(
            claims_of(&JwtAuth::hs256(b"other").audience("greeter"), &first).unwrap_err(),
            "token signature does not verify"
        );
    }

    #[test]
    fn bad_pems_are_errors() {
        assert!(JwtSigner::rs256_pem(b"not a pem").is_err());
        assert!(JwtSigner::es256_pem(b"not a pem").is_err());
        assert!(JwtAuth::rs256_pem(b"not a pem").is_err());
        assert!(JwtAuth::es256_pem(b"").is_err());
    }
}
