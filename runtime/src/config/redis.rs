//! `Redis` in a server config (go-zero's `RedisKeyConf`): where `Auth` finds app tokens.

use std::time::Duration;

use serde::Deserialize;

use super::de;

/// `Redis` in a server config: the hash of app tokens `Auth: true` checks calls against
/// (go-zero's `RedisKeyConf`; provision tokens with `HSET <Key> <app> <token>`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
#[non_exhaustive]
pub struct RedisConfig {
    /// `Host` (required with `Auth`): `host:port`.
    #[serde(default)]
    pub host: String,
    /// `Type`: `node` (the default). go-zero's `cluster` is not supported yet.
    #[serde(default = "node", rename = "Type")]
    pub kind: String,
    /// `User`: the Redis 6 ACL user, if any.
    #[serde(default)]
    pub user: String,
    /// `Pass`: the password, if any.
    #[serde(default)]
    pub pass: String,
    /// `Key` (required with `Auth`): the hash holding the tokens, e.g. `rpc:auth:user`
    /// (go-zero has no default either).
    #[serde(default)]
    pub key: String,
    /// `Tls`: go-zero's switch for TLS to Redis; only `false` is supported yet.
    #[serde(default)]
    pub tls: bool,
    /// `NonBlock`: accepted and ignored: rzero connects on the first lookup, never at
    /// startup. Default true.
    #[serde(default = "yes")]
    pub non_block: bool,
    /// `PingTimeout`: a Go duration bounding connecting and each lookup. Default `1s`.
    #[serde(default, deserialize_with = "de::opt_go_duration")]
    pub ping_timeout: Option<Duration>,
}

fn node() -> String {
    "node".to_owned()
}

fn yes() -> bool {
    true
}

impl RedisConfig {
    /// A config for the hash `key` on the Redis at `host` (`host:port`).
    pub fn new(host: impl Into<String>, key: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            kind: node(),
            user: String::new(),
            pass: String::new(),
            key: key.into(),
            tls: false,
            non_block: true,
            ping_timeout: None,
        }
    }

    /// What `Auth: true` needs of it; `(key below Redis, message)`.
    pub(super) fn check(&self) -> Result<(), (&'static str, String)> {
        match self.kind.as_str() {
            "node" => {}
            "cluster" => {
                return Err((
                    "Type",
                    "`cluster` is not supported yet: give one node".to_owned(),
                ));
            }
            other => {
                return Err(("Type", format!("unknown type `{other}`: expected `node`")));
            }
        }
        if self.tls {
            return Err(("Tls", "TLS to Redis is not supported yet".to_owned()));
        }
        if self.host.is_empty() {
            return Err(("Host", "required with Auth: true".to_owned()));
        }
        if self.key.is_empty() {
            return Err((
                "Key",
                "required with Auth: true: the hash of app tokens, e.g. rpc:auth:user".to_owned(),
            ));
        }
        Ok(())
    }

    /// The token store these settings describe.
    #[cfg(feature = "redis")]
    pub(super) fn token_store(&self) -> Result<crate::auth::RedisTokens, (&'static str, String)> {
        let mut store = crate::auth::RedisTokens::new(&self.host, self.key.clone())
            .map_err(|e| ("Host", e.to_string()))?;
        if !self.user.is_empty() {
            store = store.user(&self.user);
        }
        if !self.pass.is_empty() {
            store = store.password(&self.pass);
        }
        if let Some(timeout) = self.ping_timeout {
            store = store.timeout(timeout);
        }
        Ok(store)
    }
}
