//! Client targets: `host:port`, `http(s)://host:port`, or `scheme://authority/endpoint` for a
//! [`Resolver`](super::Resolver) (`static:///a:1,b:2`, `dns:///host:port`,
//! `etcd://h1:2379,h2:2379/key`).

use crate::ConnectError;

/// A client target, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// One address, connected to directly: `host:port` or `http(s)://host:port`.
    Direct(String),
    /// A name for a resolver: `scheme://authority/endpoint`.
    Resolved(ResolverTarget),
}

/// The parts of a `scheme://authority/endpoint` target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolverTarget {
    /// `static`, `dns`, `etcd`, or a scheme with its own resolver.
    pub scheme: String,
    /// What sits between `//` and the next `/`: the etcd members for `etcd`, empty for
    /// `static` and `dns`.
    pub authority: String,
    /// What follows: the addresses for `static`, `host:port` for `dns`, the key for `etcd`.
    pub endpoint: String,
}

impl Target {
    /// Parses a target string.
    pub fn parse(target: &str) -> Result<Self, ConnectError> {
        let invalid = |why: &str| ConnectError::invalid_target(target, why.to_owned());
        let Some((scheme, rest)) = target.split_once("://") else {
            return if target.is_empty() {
                Err(invalid("empty target"))
            } else {
                Ok(Self::Direct(target.to_owned()))
            };
        };
        if scheme == "http" || scheme == "https" {
            return Ok(Self::Direct(target.to_owned()));
        }
        if scheme.is_empty()
            || !scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-' || b == b'.')
        {
            return Err(invalid("a scheme is letters, digits, `+`, `-` or `.`"));
        }
        let Some((authority, endpoint)) = rest.split_once('/') else {
            return Err(invalid("expected `scheme://authority/endpoint`"));
        };
        if endpoint.is_empty() {
            return Err(invalid("nothing after `scheme://authority/`"));
        }
        Ok(Self::Resolved(ResolverTarget {
            scheme: scheme.to_owned(),
            authority: authority.to_owned(),
            endpoint: endpoint.to_owned(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolved(scheme: &str, authority: &str, endpoint: &str) -> Target {
        Target::Resolved(ResolverTarget {
            scheme: scheme.into(),
            authority: authority.into(),
            endpoint: endpoint.into(),
        })
    }

    #[test]
    fn parses_every_form() {
        let cases = [
            ("127.0.0.1:50051", Target::Direct("127.0.0.1:50051".into())),
            ("http://h:1", Target::Direct("http://h:1".into())),
            ("https://h:1", Target::Direct("https://h:1".into())),
            ("static:///a:1,b:2", resolved("static", "", "a:1,b:2")),
            ("dns:///svc.local:80", resolved("dns", "", "svc.local:80")),
            (
                "etcd://h1:2379,h2:2379/greeter.rpc",
                resolved("etcd", "h1:2379,h2:2379", "greeter.rpc"),
            ),
            ("etcd://h1:2379/a/b", resolved("etcd", "h1:2379", "a/b")),
        ];
        for (input, expected) in cases {
            assert_eq!(Target::parse(input).unwrap(), expected, "{input}");
        }
    }

    #[test]
    fn refuses_malformed_targets() {
        for bad in [
            "",
            "static://",
            "static:///",
            "etcd://h:1",
            "://x/y",
            "a b://x/y",
        ] {
            let error = Target::parse(bad).expect_err(bad).to_string();
            assert!(error.contains("invalid target"), "{bad}: {error}");
        }
    }
}
