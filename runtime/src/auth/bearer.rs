//! [`BearerAuth`]: opaque bearer tokens checked on the server.

use std::fmt;
use std::sync::Arc;

use tonic::Status;

use super::exempt::{Exemptions, exemption_methods};
use super::{Caller, Scheme, authorization, constant_time_eq};
use crate::interceptor::{Call, Interceptor, Next, Reply};

type Verify = dyn Fn(&str) -> Option<String> + Send + Sync;

/// A server interceptor that lets in calls whose `authorization: Bearer …` token the
/// verifier accepts, and puts a [`Caller`] (the name the verifier returned) into the request
/// extensions. Anything else is `UNAUTHENTICATED`. For JSON Web Tokens, use
/// [`JwtAuth`](super::JwtAuth) (feature `jwt`).
#[derive(Clone)]
pub struct BearerAuth {
    verify: Arc<Verify>,
    exempt: Exemptions,
}

impl fmt::Debug for BearerAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerAuth")
            .field("exempt", &self.exempt)
            .finish_non_exhaustive()
    }
}

impl BearerAuth {
    /// Checks each token with `verify`, which returns the caller's name for a good token and
    /// `None` for a bad one (compare secrets with [`constant_time_eq`]).
    pub fn new(verify: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Self {
        Self {
            verify: Arc::new(verify),
            exempt: Exemptions::default(),
        }
    }

    /// Lets in calls with exactly `token` (compared in constant time); the caller's name is
    /// empty.
    pub fn token(token: impl Into<String>) -> Self {
        let token = token.into();
        Self::new(move |given| {
            constant_time_eq(given.as_bytes(), token.as_bytes()).then(String::new)
        })
    }

    exemption_methods!();
}

#[async_trait::async_trait]
impl Interceptor for BearerAuth {
    async fn intercept(&self, mut call: Call, next: Next) -> Result<Reply, Status> {
        if !self.exempt.covers(call.method()) {
            let token = authorization(call.metadata(), "Bearer")?;
            let name =
                (self.verify)(token).ok_or_else(|| Status::unauthenticated("access denied"))?;
            call.extensions_mut()
                .insert(Caller::new(Scheme::Bearer, name));
        }
        next.run(call).await
    }
}
