//! [`Credentials`]: what a client attaches to its calls.

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use tonic::Status;
use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue, MetadataMap};

use super::Error;

/// Credentials a client sends with its calls: for every call
/// ([`ClientBuilder::credentials`](crate::client::ClientBuilder::credentials)) or one call
/// ([`CallExt::credentials`](crate::CallExt::credentials), which takes precedence).
///
/// A client sends them only over TLS, unless it was built with
/// [`allow_plaintext_credentials`](crate::client::ClientBuilder::allow_plaintext_credentials);
/// see the [module docs](super). `Debug` never shows a secret.
#[derive(Clone)]
pub struct Credentials(Kind);

#[derive(Clone)]
enum Kind {
    /// Metadata computed once: basic, bearer, app/token.
    Fixed {
        shown: String,
        entries: Arc<[(AsciiMetadataKey, AsciiMetadataValue)]>,
    },
    /// A token signed per call (or reused while it is fresh).
    #[cfg(feature = "jwt")]
    Jwt(Arc<super::JwtSigner>),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Kind::Fixed { shown, .. } => f.write_str(shown),
            #[cfg(feature = "jwt")]
            Kind::Jwt(signer) => f.debug_tuple("Credentials::Jwt").field(signer).finish(),
        }
    }
}

impl Credentials {
    /// HTTP Basic credentials: `authorization: Basic base64(user:password)`. A `user` with a
    /// `:` cannot be told apart from the password (RFC 7617) and is refused.
    pub fn basic(user: impl AsRef<str>, password: impl AsRef<str>) -> Result<Self, Error> {
        let (user, password) = (user.as_ref(), password.as_ref());
        if user.contains(':') {
            return Err(Error::new(
                "basic credentials: the user name must not contain `:` (RFC 7617)",
            ));
        }
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        Self::fixed(
            format!("Credentials::Basic {{ user: {user:?}, .. }}"),
            &[("authorization", format!("Basic {encoded}"))],
        )
    }

    /// A bearer token: `authorization: Bearer <token>` (an opaque token, or a JWT signed
    /// elsewhere). The token must be visible ASCII without spaces (RFC 6750).
    pub fn bearer(token: impl AsRef<str>) -> Result<Self, Error> {
        let token = token.as_ref();
        if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::new(
                "bearer credentials: the token must be non-empty visible ASCII without spaces",
            ));
        }
        Self::fixed(
            "Credentials::Bearer(..)".to_owned(),
            &[("authorization", format!("Bearer {token}"))],
        )
    }

    /// go-zero's app/token credentials: metadata `app` and `token`, checked by
    /// [`AppTokenAuth`](super::AppTokenAuth) (and by go-zero servers with `Auth: true`).
    pub fn app_token(app: impl AsRef<str>, token: impl AsRef<str>) -> Result<Self, Error> {
        let (app, token) = (app.as_ref(), token.as_ref());
        if app.is_empty() || token.is_empty() {
            return Err(Error::new(
                "app/token credentials: both the app and the token must be non-empty",
            ));
        }
        Self::fixed(
            format!("Credentials::AppToken {{ app: {app:?}, .. }}"),
            &[("app", app.to_owned()), ("token", token.to_owned())],
        )
    }

    /// A JSON Web Token from `signer`, signed when first needed and signed again when it
    /// nears expiry.
    #[cfg(feature = "jwt")]
    pub fn jwt(signer: super::JwtSigner) -> Self {
        Self(Kind::Jwt(Arc::new(signer)))
    }

    fn fixed(shown: String, entries: &[(&'static str, String)]) -> Result<Self, Error> {
        let entries = entries
            .iter()
            .map(|(key, value)| {
                let mut value = AsciiMetadataValue::try_from(value.as_str()).map_err(|_| {
                    Error::new(format!(
                        "credentials: the `{key}` value must be printable ASCII (no line breaks)"
                    ))
                })?;
                value.set_sensitive(true);
                Ok((AsciiMetadataKey::from_static(key), value))
            })
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(Self(Kind::Fixed {
            shown,
            entries: entries.into(),
        }))
    }

    /// Writes the credentials into a call's metadata, replacing what was there under the same
    /// names.
    pub(crate) fn apply(&self, metadata: &mut MetadataMap) -> Result<(), Status> {
        match &self.0 {
            Kind::Fixed { entries, .. } => {
                for (key, value) in entries.iter() {
                    metadata.insert(key.clone(), value.clone());
                }
            }
            #[cfg(feature = "jwt")]
            Kind::Jwt(signer) => {
                metadata.insert("authorization", signer.authorization()?);
            }
        }
        Ok(())
    }
}

/// A client's credentials settings, shared by its clones.
#[derive(Debug, Default)]
pub(crate) struct ClientCredentials {
    pub(crate) credentials: Option<Credentials>,
    pub(crate) allow_plaintext: bool,
}

/// Credentials for one call, in its request extensions (see `CallExt::credentials`).
#[derive(Debug, Clone)]
pub(crate) struct CallCredentials(pub(crate) Credentials);

impl ClientCredentials {
    /// Attaches the call's own credentials, else the client's, unless the connection is
    /// plaintext and the client did not allow that: then the call fails before it is sent.
    pub(crate) fn attach<T>(
        &self,
        secure: bool,
        request: &mut tonic::Request<T>,
    ) -> Result<(), Status> {
        let own = request.extensions_mut().remove::<CallCredentials>();
        let Some(credentials) = own.as_ref().map(|c| &c.0).or(self.credentials.as_ref()) else {
            return Ok(());
        };
        if !secure && !self.allow_plaintext {
            return Err(Status::failed_precondition(
                "rzero refused to send credentials over a plaintext (non-TLS) connection: \
                 configure TLS, or opt in with ClientBuilder::allow_plaintext_credentials() \
                 (config: AllowPlaintextCredentials: true)",
            ));
        }
        credentials.apply(request.metadata_mut())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(credentials: &Credentials) -> MetadataMap {
        let mut metadata = MetadataMap::new();
        credentials.apply(&mut metadata).unwrap();
        metadata
    }

    #[test]
    fn basic_is_base64_of_user_colon_password() {
        let credentials = Credentials::basic("aladdin", "open sesame").unwrap();
        assert_eq!(
            metadata(&credentials).get("authorization").unwrap(),
            "Basic YWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
        assert!(Credentials::basic("a:b", "c").is_err());
        let shown = format!("{credentials:?}");
        assert!(
            !shown.contains("sesame") && shown.contains("aladdin"),
            "{shown}"
        );
    }

    #[test]
    fn bearer_and_app_token_refuse_what_cannot_travel() {
        assert!(Credentials::bearer("").is_err());
        assert!(Credentials::bearer("two words").is_err());
        assert!(Credentials::app_token("app", "line\nbreak").is_err());
        assert!(Credentials::app_token("", "t").is_err());
        let credentials = Credentials::app_token("order", "s3cr3t").unwrap();
        let metadata = metadata(&credentials);
        assert_eq!(metadata.get("app").unwrap(), "order");
        assert_eq!(metadata.get("token").unwrap(), "s3cr3t");
        assert!(metadata.get("token").unwrap().is_sensitive());
        assert!(!format!("{credentials:?}").contains("s3cr3t"));
    }

    #[test]
    fn plaintext_is_refused_unless_allowed() {
        let settings = ClientCredentials {
            credentials: Some(Credentials::bearer("t").unwrap()),
            allow_plaintext: false,
        };
        let mut request = tonic::Request::new(());
        let refused = settings.attach(false, &mut request).unwrap_err();
        assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
        assert!(request.metadata().get("authorization").is_none());
        settings.attach(true, &mut request).unwrap();
        assert_eq!(request.metadata().get("authorization").unwrap(), "Bearer t");
    }
}
