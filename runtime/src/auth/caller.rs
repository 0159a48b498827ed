//! [`Caller`]: who an authenticating interceptor let in, for the handler.

/// Who made the call, as an interceptor of [`crate::auth`] established it; in the request
/// extensions of every call it let in:
///
/// ```
/// # fn handler(request: rzero::Request<()>) {
/// if let Some(caller) = request.extensions().get::<rzero::auth::Caller>() {
///     println!("{} via {:?}", caller.name(), caller.scheme());
/// }
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    scheme: Scheme,
    name: String,
}

/// How a [`Caller`] proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Scheme {
    /// HTTP Basic: the name is the user.
    Basic,
    /// An opaque bearer token: the name is what the verifier returned.
    Bearer,
    /// A JSON Web Token: the name is its `sub` claim (empty without one).
    Jwt,
    /// go-zero's app/token: the name is the app.
    AppToken,
}

impl Caller {
    pub(crate) fn new(scheme: Scheme, name: impl Into<String>) -> Self {
        Self {
            scheme,
            name: name.into(),
        }
    }

    /// The user, app or subject.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How it was authenticated.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }
}
