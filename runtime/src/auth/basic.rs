//! [`BasicAuth`]: HTTP Basic credentials checked on the server.

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use tonic::Status;

use super::exempt::{Exemptions, exemption_methods};
use super::{Caller, Scheme, authorization, constant_time_eq};
use crate::interceptor::{Call, Interceptor, Next, Reply};

type Verify = dyn Fn(&str, &str) -> bool + Send + Sync;

/// A server interceptor that lets in calls whose `authorization: Basic …` metadata names a
/// user and password the verifier accepts, and puts a [`Caller`] (the user) into the
/// request extensions. Anything else is `UNAUTHENTICATED`.
///
/// ```
/// use rzero::auth::{BasicAuth, constant_time_eq};
/// let users = [("ops", "s3cr3t")];
/// let auth = BasicAuth::new(move |user, password| {
///     users.iter().any(|(u, p)| *u == user && constant_time_eq(p.as_bytes(), password.as_bytes()))
/// });
/// # let _ = auth;
/// ```
#[derive(Clone)]
pub struct BasicAuth {
    verify: Arc<Verify>,
    exempt: Exemptions,
}

impl fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicAuth")
            .field("exempt", &self.exempt)
            .finish_non_exhaustive()
    }
}

impl BasicAuth {
    /// Checks each user and password with `verify` (compare secrets with
    /// [`constant_time_eq`]). It runs on the call's task: keep it quick, or write an
    /// [`Interceptor`] of your own for a lookup that waits.
    pub fn new(verify: impl Fn(&str, &str) -> bool + Send + Sync + 'static) -> Self {
        Self {
            verify: Arc::new(verify),
            exempt: Exemptions::default(),
        }
    }

    /// Lets in one user with one password (both compared in constant time).
    pub fn single(user: impl Into<String>, password: impl Into<String>) -> Self {
        let (user, password) = (user.into(), password.into());
        Self::new(move |u, p| {
            // `&` rather than `&&`: both comparisons always run.
            constant_time_eq(u.as_bytes(), user.as_bytes())
                & constant_time_eq(p.as_bytes(), password.as_bytes())
        })
    }

    exemption_methods!();

    fn check(&self, call: &Call) -> Result<Caller, Status> {
        let encoded = authorization(call.metadata(), "Basic")?;
        let malformed = || Status::unauthenticated("malformed basic credentials");
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| malformed())?;
        let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
        let (user, password) = decoded.split_once(':').ok_or_else(malformed)?;
        if (self.verify)(user, password) {
            Ok(Caller::new(Scheme::Basic, user))
        } else {
            Err(Status::unauthenticated("access denied"))
        }
    }
}

#[async_trait::async_trait]
impl Interceptor for BasicAuth {
    async fn intercept(&self, mut call: Call, next: Next) -> Result<Reply, Status> {
        if !self.exempt.covers(call.method()) {
            let caller = self.check(&call)?;
            call.extensions_mut().insert(caller);
        }
        next.run(call).await
    }
}
