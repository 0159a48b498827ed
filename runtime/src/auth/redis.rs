//! [`RedisTokens`]: app tokens in a Redis hash, as go-zero keeps them.

use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, ConnectionInfo, IntoConnectionInfo};

use super::{Error, TokenStore};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// App tokens in the Redis hash `key` (field: the app, value: its token), as go-zero's
/// `Auth` reads them: provision with `HSET <key> <app> <token>`.
///
/// One multiplexed connection is opened on first use and shared by every lookup; a lookup
/// that fails (Redis down, restarted, too slow) drops it, and the next lookup connects again.
/// Connecting and each lookup are bounded by [`timeout`](Self::timeout), so a Redis that
/// hangs makes calls fail with `UNAVAILABLE` rather than wait.
pub struct RedisTokens {
    info: ConnectionInfo,
    key: String,
    timeout: Duration,
    connection: Mutex<Option<MultiplexedConnection>>,
}

impl fmt::Debug for RedisTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisTokens")
            .field("addr", &self.info.addr().to_string())
            .field("key", &self.key)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl RedisTokens {
    /// Tokens in the hash `key` of the Redis at `addr`: `host:port`, or a `redis://` URL
    /// (which may carry a user, a password and a database number). Connects on first use.
    pub fn new(addr: &str, key: impl Into<String>) -> Result<Self, Error> {
        let key = key.into();
        if key.is_empty() {
            return Err(Error::new(
                "Redis token store: the hash key must not be empty",
            ));
        }
        let info = if addr.contains("://") {
            addr.into_connection_info()
                .map_err(|e| Error::new(format!("Redis address `{addr}`: {e}")))?
        } else {
            let (host, port) = addr
                .rsplit_once(':')
                .and_then(|(host, port)| Some((host, port.parse::<u16>().ok()?)))
                .filter(|(host, _)| !host.is_empty())
                .ok_or_else(|| {
                    Error::new(format!("Redis address `{addr}`: expected `host:port`"))
                })?;
            (host.trim_start_matches('[').trim_end_matches(']'), port)
                .into_connection_info()
                .map_err(|e| Error::new(format!("Redis address `{addr}`: {e}")))?
        };
        // `CLIENT SETINFO` needs Redis 7.2; the name is of no use here.
        let settings = info.redis_settings().clone().set_skip_set_lib_name();
        Ok(Self {
            info: info.set_redis_settings(settings),
            key,
            timeout: Duration::from_secs(1),
            connection: Mutex::new(None),
        })
    }

    /// Authenticates with `password` (Redis `requirepass`, go-zero's `Pass`).
    #[must_use]
    pub fn password(mut self, password: impl AsRef<str>) -> Self {
        let settings = self.info.redis_settings().clone().set_password(password);
        self.info = self.info.set_redis_settings(settings);
        self
    }

    /// Authenticates as `user` (Redis 6 ACLs; give the [`password`](Self::password) too).
    #[must_use]
    pub fn user(mut self, user: impl AsRef<str>) -> Self {
        let settings = self.info.redis_settings().clone().set_username(user);
        self.info = self.info.set_redis_settings(settings);
        self
    }

    /// Bound on connecting and on each lookup. Default: 1 s (go-zero's `PingTimeout`).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    async fn connection(&self) -> Result<MultiplexedConnection, redis::RedisError> {
        if let Some(connection) = self.shared().clone() {
            return Ok(connection);
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout));
        let connection = redis::Client::open(self.info.clone())?
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        *self.shared() = Some(connection.clone());
        Ok(connection)
    }

    fn shared(&self) -> std::sync::MutexGuard<'_, Option<MultiplexedConnection>> {
        self.connection.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait::async_trait]
impl TokenStore for RedisTokens {
    async fn token(&self, app: &str) -> Result<Option<Vec<u8>>, BoxError> {
        let lookup = async {
            let mut connection = self.connection().await?;
            redis::cmd("HGET")
                .arg(&self.key)
                .arg(app)
                .query_async::<Option<Vec<u8>>>(&mut connection)
                .await
        };
        lookup.await.map_err(|error| {
            // Whatever went wrong, start from a new connection next time.
            *self.shared() = None;
            format!("Redis at {}: {error}", self.info.addr()).into()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_checked() {
        assert!(RedisTokens::new("127.0.0.1:6379", "rpc:auth:user").is_ok());
        assert!(RedisTokens::new("redis://:pw@127.0.0.1:6379/2", "k").is_ok());
        assert!(RedisTokens::new("127.0.0.1", "k").is_err());
        assert!(RedisTokens::new(":6379", "k").is_err());
        assert!(RedisTokens::new("127.0.0.1:6379", "").is_err());
    }
}
