//! `Cors` in the `GrpcWeb` and `Gateway` sections (rzero's keys: go-zero sets CORS in code,
//! with `rest.WithCors`).

use std::time::Duration;

use serde::Deserialize;

use super::de;
use crate::Cors;

/// `Cors`: which other origins' browser pages may call, for gRPC-Web
/// (`GrpcWeb.Cors`) or the REST gateway (`Gateway.Cors`); it becomes a [`Cors`] policy (see
/// there for what the server answers). The origins are the part that differs between
/// environments, so the whole list can come from one variable:
///
/// ```yaml
/// Cors:
///   AllowOrigins: ${CORS_ORIGINS:-http://localhost:3000}   # or [https://a.example.com, ...]
///   AllowCredentials: true
///   ExposeHeaders: [X-Request-Id]
///   MaxAge: 10m
/// ```
///
/// Every entry is checked when the file is loaded: a malformed origin, `*` next to other
/// origins or with `AllowCredentials: true` (browsers refuse that), and a bad header name
/// are errors naming the entry and its line, not surprises at serve time.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(remote = "Self", deny_unknown_fields, rename_all = "PascalCase")]
#[non_exhaustive]
pub struct CorsConfig {
    /// `AllowOrigins` (required): the origins allowed, each `scheme://host[:port]` as
    /// browsers send it (`https://app.example.com`, `http://localhost:3000`); a host
    /// starting with `*.` stands for any subdomain (`https://*.example.com`). `*` alone
    /// allows any origin ([`Cors::any_origin`]). A list, or one string of origins separated
    /// by commas.
    #[serde(deserialize_with = "origins")]
    pub allow_origins: Vec<String>,
    /// `AllowCredentials`: browsers may send cookies and `Authorization`
    /// (`Access-Control-Allow-Credentials: true`). Default false; refused with `*`.
    #[serde(default)]
    pub allow_credentials: bool,
    /// `AllowHeaders`: the request headers a preflight may ask for. Default: whatever the
    /// preflight asks, mirrored (`[]`: none).
    #[serde(default, deserialize_with = "opt_header_names")]
    pub allow_headers: Option<Vec<String>>,
    /// `ExposeHeaders`: more response headers for scripts to read, besides those always
    /// exposed (see [`Cors::expose_headers`]). Default none.
    #[serde(default, deserialize_with = "header_names")]
    pub expose_headers: Vec<String>,
    /// `MaxAge`: how long browsers may cache a preflight's answer: whole seconds (the unit
    /// of `Access-Control-Max-Age`) or a duration such as `10m`. Default: not sent (browsers
    /// then cache for 5 seconds).
    #[serde(default, deserialize_with = "de::opt_seconds")]
    pub max_age: Option<Duration>,
}

super::checked_deserialize!(CorsConfig);

fn origins<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    d.deserialize_any(de::Items(
        check_origin,
        "origins such as `https://app.example.com`",
    ))
}

fn header_names<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    d.deserialize_any(de::Items(check_header_name, "header names"))
}

fn opt_header_names<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<String>>, D::Error> {
    header_names(d).map(Some)
}

fn check_origin(origin: &str) -> Result<(), String> {
    if origin == "*" {
        return Ok(());
    }
    crate::cors::check_origin(origin).map_err(|why| format!("`{origin}`: {why}"))
}

fn check_header_name(name: &str) -> Result<(), String> {
    http::HeaderName::from_bytes(name.trim().as_bytes())
        .map(drop)
        .map_err(|_| format!("`{name}` is not a header name"))
}

impl CorsConfig {
    /// Allows `origins` (`*` alone: any), everything else at its default.
    pub fn new<I, S>(origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            allow_origins: origins.into_iter().map(Into::into).collect(),
            allow_credentials: false,
            allow_headers: None,
            expose_headers: Vec::new(),
            max_age: None,
        }
    }

    /// Whether `AllowOrigins` is `*`.
    fn any_origin(&self) -> bool {
        self.allow_origins.iter().any(|origin| origin == "*")
    }

    /// Checks what the YAML loader checks; `(key, message)` with the key relative to
    /// `Cors`.
    pub(super) fn check(&self) -> Result<(), (String, String)> {
        if self.allow_origins.is_empty() {
            return Err((
                "AllowOrigins".to_owned(),
                "empty: list the origins allowed, or `*` for any (to allow none, leave Cors \
                 out)"
                    .to_owned(),
            ));
        }
        for (index, origin) in self.allow_origins.iter().enumerate() {
            check_origin(origin).map_err(|m| (format!("AllowOrigins[{index}]"), m))?;
        }
        if self.any_origin() && self.allow_origins.len() > 1 {
            return Err((
                "AllowOrigins".to_owned(),
                "`*` allows any origin: give it alone, or list the origins without it".to_owned(),
            ));
        }
        if self.any_origin() && self.allow_credentials {
            return Err((
                "AllowCredentials".to_owned(),
                "not with AllowOrigins `*`: browsers refuse credentials when any origin is \
                 allowed; list the origins instead"
                    .to_owned(),
            ));
        }
        for (key, list) in [
            (
                "AllowHeaders",
                self.allow_headers.as_deref().unwrap_or_default(),
            ),
            ("ExposeHeaders", self.expose_headers.as_slice()),
        ] {
            for (index, name) in list.iter().enumerate() {
                check_header_name(name).map_err(|m| (format!("{key}[{index}]"), m))?;
            }
        }
        if let Some(age) = self.max_age
            && age.subsec_nanos() != 0
        {
            return Err((
                "MaxAge".to_owned(),
                format!("whole seconds only (Access-Control-Max-Age counts seconds), not {age:?}"),
            ));
        }
        Ok(())
    }

    /// The [`Cors`] policy these settings describe.
    pub fn to_cors(&self) -> Cors {
        let mut cors = if self.any_origin() {
            Cors::any_origin()
        } else {
            Cors::origins(self.allow_origins.iter().cloned())
        };
        cors = cors
            .allow_credentials(self.allow_credentials)
            .expose_headers(self.expose_headers.iter().cloned());
        if let Some(headers) = &self.allow_headers {
            cors = cors.allow_headers(headers.iter().cloned());
        }
        if let Some(age) = self.max_age {
            cors = cors.max_age(age);
        }
        cors
    }
}
