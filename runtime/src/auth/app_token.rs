//! [`AppTokenAuth`]: go-zero's app/token check, failing closed, with a cache.
//!
//! go-zero's `Authenticator` reads `HGET <key> <app>` through a 5-minute cache and compares
//! with `!=`; any lookup error (a Redis outage, and also an app missing from the hash) lets
//! the call in unless `StrictControl` is set. Here a missing app is refused, an outage is
//! `UNAVAILABLE`, the comparison is constant-time, and the cache lifetime is a setting.
//!
//! The cache keeps the answer for an app, found or not found, for its TTL (so a flood of
//! calls from unknown apps does not become a flood of Redis lookups), never keeps errors,
//! and runs one lookup per app at a time (callers arriving meanwhile wait for its answer). It
//! holds at most [`MAX_CACHED_APPS`] apps: past that, expired entries are dropped, and if
//! that is not enough the answer is used without being kept.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;
use tonic::Status;
use tonic::metadata::MetadataMap;

use super::exempt::{Exemptions, exemption_methods};
use super::{Caller, Scheme, constant_time_eq};
use crate::interceptor::{Call, Interceptor, Next, Reply};

/// Apps whose tokens the cache keeps at most.
const MAX_CACHED_APPS: usize = 10_000;

/// How long a looked-up token is used before it is looked up again, by default.
const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(60);

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Where [`AppTokenAuth`] finds each app's token: a Redis hash ([`RedisTokens`], feature
/// `redis`), a fixed map (`HashMap<String, String>`), or a store of your own.
///
/// [`RedisTokens`]: super::RedisTokens
#[async_trait::async_trait]
pub trait TokenStore: Send + Sync + 'static {
    /// The token of `app`; `Ok(None)` when the app is unknown, `Err` when the store cannot
    /// answer (the call is then refused with `UNAVAILABLE`).
    async fn token(&self, app: &str) -> Result<Option<Vec<u8>>, BoxError>;
}

#[async_trait::async_trait]
impl TokenStore for HashMap<String, String> {
    async fn token(&self, app: &str) -> Result<Option<Vec<u8>>, BoxError> {
        Ok(self.get(app).map(|token| token.as_bytes().to_vec()))
    }
}

/// A server interceptor checking go-zero's app/token credentials: the `app` and `token`
/// metadata must be present and the token must be the one the [`TokenStore`] holds for the
/// app. It puts a [`Caller`] (the app) into the request extensions of the calls it lets in.
///
/// | case | answer (default) | [`lenient_go_zero_compat`](Self::lenient_go_zero_compat) |
/// |---|---|---|
/// | `app` or `token` missing or empty | `UNAUTHENTICATED` | `UNAUTHENTICATED` |
/// | unknown app | `UNAUTHENTICATED` | let in |
/// | wrong token | `UNAUTHENTICATED` | `UNAUTHENTICATED` |
/// | store unreachable | `UNAVAILABLE` | let in |
///
/// ```no_run
/// # fn f() -> Result<(), rzero::auth::Error> {
/// # #[cfg(feature = "redis")] {
/// use rzero::auth::{AppTokenAuth, RedisTokens};
/// // tokens provisioned with `HSET rpc:auth:user order s3cr3t`
/// let auth = AppTokenAuth::new(RedisTokens::new("127.0.0.1:6379", "rpc:auth:user")?);
/// let server = rzero::Server::builder().interceptor(auth);
/// # }
/// # Ok(()) }
/// ```
pub struct AppTokenAuth {
    store: Arc<dyn TokenStore>,
    cache: Arc<TokenCache>,
    lenient: bool,
    exempt: Exemptions,
}

impl fmt::Debug for AppTokenAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppTokenAuth")
            .field("cache_ttl", &self.cache.ttl)
            .field("lenient", &self.lenient)
            .field("exempt", &self.exempt)
            .finish_non_exhaustive()
    }
}

impl AppTokenAuth {
    /// Checks app/token credentials against `store`, keeping each answer for a minute
    /// (go-zero: five; see [`cache_ttl`](Self::cache_ttl)).
    pub fn new(store: impl TokenStore) -> Self {
        Self {
            store: Arc::new(store),
            cache: Arc::new(TokenCache::new(DEFAULT_CACHE_TTL)),
            lenient: false,
            exempt: Exemptions::default(),
        }
    }

    /// How long a looked-up token (or an app's absence) is used before the store is asked
    /// again: a token changed or revoked in the store takes effect within this time.
    /// `Duration::ZERO` asks the store on every call. Default: 1 minute.
    #[must_use]
    pub fn cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache = Arc::new(TokenCache::new(ttl));
        self
    }

    /// go-zero's behaviour without `StrictControl`: calls from apps the store does not know,
    /// and every call while the store cannot answer, are **let in** (with a warning in the
    /// log). Only for a migration that depends on it: anyone who can reach the server can
    /// then call it by naming an unknown app.
    #[must_use]
    pub fn lenient_go_zero_compat(mut self) -> Self {
        self.lenient = true;
        self
    }

    exemption_methods!();

    async fn check(&self, metadata: &MetadataMap) -> Result<Option<Caller>, Status> {
        let value = |key: &str| {
            metadata
                .get(key)
                .map(|v| v.as_bytes())
                .filter(|v| !v.is_empty())
        };
        let (Some(app), Some(token)) = (value("app"), value("token")) else {
            return Err(Status::unauthenticated(
                "app/token required: send `app` and `token` metadata",
            ));
        };
        let app = std::str::from_utf8(app)
            .map_err(|_| Status::unauthenticated("access denied"))?
            .to_owned();
        match self.cache.token(&*self.store, &app).await {
            Ok(Some(expected)) if constant_time_eq(token, &expected) => {
                Ok(Some(Caller::new(Scheme::AppToken, app)))
            }
            Ok(Some(_)) => Err(Status::unauthenticated("access denied")),
            Ok(None) if self.lenient => {
                tracing::warn!(
                    app,
                    "app/token: unknown app let in (lenient go-zero compat)"
                );
                Ok(None)
            }
            Ok(None) => Err(Status::unauthenticated("access denied")),
            Err(error) if self.lenient => {
                tracing::warn!(app, %error, "app/token: store unreachable, call let in (lenient go-zero compat)");
                Ok(None)
            }
            Err(error) => Err(Status::unavailable(format!(
                "cannot check app/token credentials: {error}"
            ))),
        }
    }
}

#[async_trait::async_trait]
impl Interceptor for AppTokenAuth {
    async fn intercept(&self, mut call: Call, next: Next) -> Result<Reply, Status> {
        if !self.exempt.covers(call.method())
            && let Some(caller) = self.check(call.metadata()).await?
        {
            call.extensions_mut().insert(caller);
        }
        next.run(call).await
    }
}

/// Tokens by app, each kept for `ttl` after it was looked up; see the module docs.
struct TokenCache {
    ttl: Duration,
    slots: Mutex<HashMap<String, Arc<Slot>>>,
}

/// One app's answer: empty while the first lookup runs (or after it failed).
type Slot = OnceCell<(Option<Vec<u8>>, Instant)>;

impl TokenCache {
    fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            slots: Mutex::new(HashMap::new()),
        }
    }

    fn fresh(&self, slot: &Slot) -> bool {
        slot.get()
            .is_none_or(|(_, fetched)| fetched.elapsed() < self.ttl)
    }

    async fn token(&self, store: &dyn TokenStore, app: &str) -> Result<Option<Vec<u8>>, BoxError> {
        if self.ttl.is_zero() {
            return store.token(app).await;
        }
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            match slots.get(app) {
                Some(slot) if self.fresh(slot) => Some(Arc::clone(slot)),
                _ => {
                    if slots.len() >= MAX_CACHED_APPS {
                        slots.retain(|_, slot| slot.initialized() && self.fresh(slot));
                    }
                    (slots.len() < MAX_CACHED_APPS).then(|| {
                        let slot = Arc::new(Slot::new());
                        slots.insert(app.to_owned(), Arc::clone(&slot));
                        slot
                    })
                }
            }
        };
        let Some(slot) = slot else {
            return store.token(app).await;
        };
        let (token, _) = slot
            .get_or_try_init(|| async {
                Ok::<_, BoxError>((store.token(app).await?, Instant::now()))
            })
            .await?;
        Ok(token.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts lookups; fails while `down`.
    struct Counting {
        tokens: HashMap<String, String>,
        lookups: AtomicUsize,
        down: std::sync::atomic::AtomicBool,
    }

    #[async_trait::async_trait]
    impl TokenStore for Counting {
        async fn token(&self, app: &str) -> Result<Option<Vec<u8>>, BoxError> {
            self.lookups.fetch_add(1, Ordering::SeqCst);
            if self.down.load(Ordering::SeqCst) {
                return Err("store down".into());
            }
            self.tokens.token(app).await
        }
    }

    #[tokio::test]
    async fn answers_are_cached_errors_are_not() {
        let store = Counting {
            tokens: HashMap::from([("order".to_owned(), "s3cr3t".to_owned())]),
            lookups: AtomicUsize::new(0),
            down: true.into(),
        };
        let cache = TokenCache::new(Duration::from_secs(3600));
        assert!(cache.token(&store, "order").await.is_err());
        assert!(cache.token(&store, "order").await.is_err());
        assert_eq!(store.lookups.load(Ordering::SeqCst), 2);
        store.down.store(false, Ordering::SeqCst);
        for _ in 0..3 {
            assert_eq!(
                cache.token(&store, "order").await.unwrap().as_deref(),
                Some(&b"s3cr3t"[..])
            );
            assert_eq!(cache.token(&store, "nobody").await.unwrap(), None);
        }
        assert_eq!(store.lookups.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn a_zero_ttl_asks_every_time() {
        let store = Counting {
            tokens: HashMap::new(),
            lookups: AtomicUsize::new(0),
            down: false.into(),
        };
        let cache = TokenCache::new(Duration::ZERO);
        for _ in 0..3 {
            assert_eq!(cache.token(&store, "a").await.unwrap(), None);
        }
        assert_eq!(store.lookups.load(Ordering::SeqCst), 3);
    }
}
