//! Generation options, shared by all three front ends.
//!
//! The protoc plugin reads them from `--rzero_opt=k=v,...`, the CLI from flags with the same
//! names, and `build.rs` from [`Builder`](crate::Builder) methods. All of them land in
//! [`Options`], so the same options give the same output whichever way in.
//!
//! Path arguments follow prost-build: a proto path starting with `.` matches that fully
//! qualified name and everything under it (`.` alone matches everything); anything else
//! matches as a suffix.

use crate::error::{Error, Result};

/// What to generate and how. `Default` is what `protoc-gen-rzero` does with no options.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Options {
    /// Emit server traits and wrappers (`no_server` turns off).
    pub server: bool,
    /// Emit client stubs (`no_client` turns off).
    pub client: bool,
    /// Emit REST gateway rules (`XXX_HTTP_RULES`) for services with `google.api.http`
    /// annotations, and check those rules (`no_gateway` turns both off, OpenAPI documents
    /// too: the way to generate from protos whose rules the gateway cannot serve). The
    /// generated code then needs `rzero`'s `gateway` feature. The package's `FILE_DESCRIPTOR_SET` (server
    /// reflection, the gateway's JSON mapping) does not depend on this: every package with a
    /// generated server has one.
    pub gateway: bool,
    /// Map the `google.api` and `google.rpc` types `rzero` ships (listed in `options.rs`) to
    /// `::rzero::codegen::google` instead of generating them (`no_extern_google` turns off).
    pub extern_google: bool,
    /// `bytes=PATH`: use `bytes::Bytes` for these `bytes` fields.
    pub bytes: Vec<String>,
    /// `btree_map=PATH`: use `BTreeMap` for these map fields.
    ///
    /// prost-derive's `Debug` for such fields names `::prost` from the crate root whatever
    /// `prost_path` says, so a crate using this needs `prost` as a dependency too (or
    /// `skip_debug` on those messages).
    pub btree_map: Vec<String>,
    /// `boxed=PATH`: box these fields.
    pub boxed: Vec<String>,
    /// `extern_path=PROTO=RUST`: use an existing Rust type for a proto package or type.
    pub extern_path: Vec<(String, String)>,
    /// `type_attribute=PATH=ATTR`: attribute on matching messages and enums.
    pub type_attribute: Vec<(String, String)>,
    /// `message_attribute=PATH=ATTR`: attribute on matching messages.
    pub message_attribute: Vec<(String, String)>,
    /// `enum_attribute=PATH=ATTR`: attribute on matching enums.
    pub enum_attribute: Vec<(String, String)>,
    /// `field_attribute=PATH=ATTR`: attribute on matching fields.
    pub field_attribute: Vec<(String, String)>,
    /// `disable_comments=PATH` (or `disable_comments` for all): no doc comments from the proto.
    pub disable_comments: Vec<String>,
    /// `skip_debug=PATH`: no `Debug` derive, for types that implement it by hand.
    pub skip_debug: Vec<String>,
    /// `type_names`: implement `prost::Name` for every message (for packing into `Any`).
    pub type_names: bool,
    /// `mockall` (or `mockall=tests`): put `#[cfg_attr(test, mockall::automock)]` on each
    /// client trait, for `MockXxxApi` in the crate's own tests; `mockall=always`:
    /// `#[mockall::automock]` unconditionally (for a crate that hands mocks to others). The
    /// crate then needs `mockall` as a (dev-)dependency.
    pub mockall: Mockall,
    /// `openapi`: an OpenAPI 3 document of the gateway (the `google.api.http` rules) per
    /// proto file that has rules, `pkg/file.openapi.json`; `openapi=merged`: one
    /// `openapi.json` for all of them. `None` (the default): no documents.
    pub openapi: Option<OpenApi>,
    /// `include_file=NAME`: name of the module-tree file (default `mod.rs`; `include_file=`
    /// with an empty name turns it off).
    pub include_file: Option<String>,
}

/// Whether client traits get a `mockall` mock; see [`Options::mockall`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Mockall {
    /// No mock (the default).
    #[default]
    Off,
    /// `#[cfg_attr(test, mockall::automock)]`.
    InTests,
    /// `#[mockall::automock]`.
    Always,
}

/// How OpenAPI documents are written; see [`Options::openapi`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OpenApi {
    /// One document per proto file with HTTP rules (`openapi`).
    PerFile,
    /// One `openapi.json` covering every file (`openapi=merged`).
    Merged,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            server: true,
            client: true,
            gateway: true,
            extern_google: true,
            bytes: Vec::new(),
            btree_map: Vec::new(),
            boxed: Vec::new(),
            extern_path: Vec::new(),
            type_attribute: Vec::new(),
            message_attribute: Vec::new(),
            enum_attribute: Vec::new(),
            field_attribute: Vec::new(),
            disable_comments: Vec::new(),
            skip_debug: Vec::new(),
            type_names: false,
            mockall: Mockall::Off,
            openapi: None,
            include_file: Some("mod.rs".to_owned()),
        }
    }
}

impl Options {
    /// Parses a protoc parameter string: `k=v` pairs separated by commas. A comma inside a
    /// value is written `\,` (attributes such as `#[derive(A, B)]` need it).
    pub fn from_parameter(parameter: &str) -> Result<Self> {
        let mut options = Self::default();
        options.apply_parameter(parameter)?;
        Ok(options)
    }

    /// Applies every setting of a protoc parameter string (see [`Options::from_parameter`]).
    pub fn apply_parameter(&mut self, parameter: &str) -> Result<()> {
        for item in split_unescaped(parameter) {
            let item = item.trim();
            if !item.is_empty() {
                self.set(item)?;
            }
        }
        Ok(())
    }

    /// Applies one `key`, `key=value` or `key=path=value` setting.
    pub fn set(&mut self, item: &str) -> Result<()> {
        let (key, value) = match item.split_once('=') {
            Some((key, value)) => (key.trim(), Some(value)),
            None => (item.trim(), None),
        };
        match (key, value) {
            ("no_server", None) => self.server = false,
            ("no_client", None) => self.client = false,
            ("no_gateway", None) => self.gateway = false,
            ("no_extern_google", None) => self.extern_google = false,
            ("type_names", None) => self.type_names = true,
            ("disable_comments", None) => self.disable_comments.push(".".to_owned()),
            ("mockall", None | Some("tests")) => self.mockall = Mockall::InTests,
            ("mockall", Some("always")) => self.mockall = Mockall::Always,
            ("mockall", Some(other)) => {
                return Err(Error::Option(format!(
                    "`mockall` takes `tests` or `always` (got `{other}`)"
                )));
            }
            ("openapi", None) => self.openapi = Some(OpenApi::PerFile),
            ("openapi", Some("merged")) => self.openapi = Some(OpenApi::Merged),
            ("openapi", Some(other)) => {
                return Err(Error::Option(format!(
                    "`openapi` takes no value (one document per file) or `merged` (got `{other}`)"
                )));
            }
            ("include_file", Some("")) => self.include_file = None,
            ("include_file", Some(name)) => self.include_file = Some(name.to_owned()),
            ("bytes", Some(path)) => self.bytes.push(path.to_owned()),
            ("btree_map", Some(path)) => self.btree_map.push(path.to_owned()),
            ("boxed", Some(path)) => self.boxed.push(path.to_owned()),
            ("disable_comments", Some(path)) => self.disable_comments.push(path.to_owned()),
            ("skip_debug", Some(path)) => self.skip_debug.push(path.to_owned()),
            ("extern_path", Some(pair)) => self.extern_path.push(pair_of(key, pair)?),
            ("type_attribute", Some(pair)) => self.type_attribute.push(pair_of(key, pair)?),
            ("message_attribute", Some(pair)) => self.message_attribute.push(pair_of(key, pair)?),
            ("enum_attribute", Some(pair)) => self.enum_attribute.push(pair_of(key, pair)?),
            ("field_attribute", Some(pair)) => self.field_attribute.push(pair_of(key, pair)?),
            (
                "no_server" | "no_client" | "no_gateway" | "no_extern_google" | "type_names",
                Some(_),
            ) => {
                return Err(Error::Option(format!(
                    "`{key}` takes no value (got `{item}`)"
                )));
            }
            (
                "bytes" | "btree_map" | "boxed" | "skip_debug" | "extern_path" | "type_attribute"
                | "message_attribute" | "enum_attribute" | "field_attribute" | "include_file",
                None,
            ) => {
                return Err(Error::Option(format!(
                    "`{key}` needs a value, e.g. `{key}=.`"
                )));
            }
            _ => {
                return Err(Error::Option(format!(
                    "unknown option `{key}` (known: no_server, no_client, no_gateway, no_extern_google, \
                     type_names, mockall, openapi, include_file, bytes, btree_map, boxed, extern_path, \
                     type_attribute, message_attribute, enum_attribute, field_attribute, \
                     disable_comments, skip_debug)"
                )));
            }
        }
        Ok(())
    }

    /// Renders the options back into a protoc parameter string (used by tests that run the
    /// plugin under protoc with the same options as the other front ends).
    pub fn to_parameter(&self) -> String {
        let mut items = Vec::new();
        let flag = |on: bool, name: &str, items: &mut Vec<String>| {
            if on {
                items.push(name.to_owned());
            }
        };
        flag(!self.server, "no_server", &mut items);
        flag(!self.client, "no_client", &mut items);
        flag(!self.gateway, "no_gateway", &mut items);
        flag(!self.extern_google, "no_extern_google", &mut items);
        flag(self.type_names, "type_names", &mut items);
        match self.mockall {
            Mockall::Off => {}
            Mockall::InTests => items.push("mockall".to_owned()),
            Mockall::Always => items.push("mockall=always".to_owned()),
        }
        match self.openapi {
            None => {}
            Some(OpenApi::PerFile) => items.push("openapi".to_owned()),
            Some(OpenApi::Merged) => items.push("openapi=merged".to_owned()),
        }
        match &self.include_file {
            Some(name) if name == "mod.rs" => {}
            Some(name) => items.push(format!("include_file={name}")),
            None => items.push("include_file=".to_owned()),
        }
        let lists: [(&str, &Vec<String>); 5] = [
            ("bytes", &self.bytes),
            ("btree_map", &self.btree_map),
            ("boxed", &self.boxed),
            ("disable_comments", &self.disable_comments),
            ("skip_debug", &self.skip_debug),
        ];
        for (key, values) in lists {
            items.extend(
                values
                    .iter()
                    .map(|v| format!("{key}={}", v.replace(',', "\\,"))),
            );
        }
        let pairs: [(&str, &Vec<(String, String)>); 5] = [
            ("extern_path", &self.extern_path),
            ("type_attribute", &self.type_attribute),
            ("message_attribute", &self.message_attribute),
            ("enum_attribute", &self.enum_attribute),
            ("field_attribute", &self.field_attribute),
        ];
        for (key, values) in pairs {
            items.extend(
                values
                    .iter()
                    .map(|(p, v)| format!("{key}={p}={}", v.replace(',', "\\,"))),
            );
        }
        items.join(",")
    }

    /// A prost-build configuration carrying the message options.
    pub(crate) fn prost_config(&self) -> prost_build::Config {
        let mut config = prost_build::Config::new();
        config
            .prost_path("::rzero::codegen::prost")
            .prost_types_path("::rzero::codegen::prost_types")
            .format(false)
            .bytes(&self.bytes)
            .btree_map(&self.btree_map)
            .disable_comments(&self.disable_comments)
            .skip_debug(&self.skip_debug);
        for path in &self.boxed {
            config.boxed(path);
        }
        if self.extern_google {
            for name in RZERO_GOOGLE_TYPES {
                let (package, ty) = name.rsplit_once('.').expect("qualified names");
                let module = package.trim_start_matches('.').replace('.', "::");
                config.extern_path(*name, format!("::rzero::codegen::{module}::{ty}"));
            }
        }
        for (proto, rust) in &self.extern_path {
            config.extern_path(proto, rust);
        }
        for (path, attribute) in &self.type_attribute {
            config.type_attribute(path, attribute);
        }
        for (path, attribute) in &self.message_attribute {
            config.message_attribute(path, attribute);
        }
        for (path, attribute) in &self.enum_attribute {
            config.enum_attribute(path, attribute);
        }
        for (path, attribute) in &self.field_attribute {
            config.field_attribute(path, attribute);
        }
        if self.type_names {
            // The domain every gRPC implementation writes into `Any.type_url`.
            config
                .enable_type_names()
                .type_name_domain(["."], "type.googleapis.com");
        }
        config
    }
}

/// The top-level types of the embedded `google/api` and `google/rpc` files, which `rzero`
/// ships (as `rzero::google`). Mapped one by one, not by package, so that other `google.api`
/// types a user's imports reach (`MonitoredResource`, ...) are still generated.
pub(crate) const RZERO_GOOGLE_TYPES: &[&str] = &[
    ".google.api.CustomHttpPattern",
    ".google.api.FieldBehavior",
    ".google.api.Http",
    ".google.api.HttpBody",
    ".google.api.HttpRule",
    ".google.rpc.BadRequest",
    ".google.rpc.Code",
    ".google.rpc.DebugInfo",
    ".google.rpc.ErrorInfo",
    ".google.rpc.Help",
    ".google.rpc.LocalizedMessage",
    ".google.rpc.PreconditionFailure",
    ".google.rpc.QuotaFailure",
    ".google.rpc.RequestInfo",
    ".google.rpc.ResourceInfo",
    ".google.rpc.RetryInfo",
    ".google.rpc.Status",
];

fn pair_of(key: &str, pair: &str) -> Result<(String, String)> {
    match pair.split_once('=') {
        Some((path, value)) if !path.is_empty() && !value.is_empty() => {
            Ok((path.to_owned(), value.to_owned()))
        }
        _ => Err(Error::Option(format!(
            "`{key}` needs `PATH=VALUE`, got `{key}={pair}`"
        ))),
    }
}

/// Splits on commas not preceded by a backslash, and unescapes `\,`.
fn split_unescaped(parameter: &str) -> Vec<String> {
    let mut items = vec![String::new()];
    let mut chars = parameter.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&',') => {
                items.last_mut().expect("never empty").push(',');
                chars.next();
            }
            ',' => items.push(String::new()),
            c => items.last_mut().expect("never empty").push(c),
        }
    }
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_renders_round_trip() {
        let text = "no_client,bytes=.,extern_path=.a.b=::ab,type_attribute=.x=#[derive(A\\, B)],include_file=lib.rs";
        let options = Options::from_parameter(text).unwrap();
        assert!(!options.client);
        assert!(options.server);
        assert_eq!(options.bytes, ["."]);
        assert_eq!(
            options.extern_path,
            [(".a.b".to_owned(), "::ab".to_owned())]
        );
        assert_eq!(
            options.type_attribute,
            [(".x".to_owned(), "#[derive(A, B)]".to_owned())]
        );
        assert_eq!(options.include_file.as_deref(), Some("lib.rs"));
        assert_eq!(
            Options::from_parameter(&options.to_parameter()).unwrap(),
            options
        );
    }

    #[test]
    fn rzero_google_types_are_exactly_the_embedded_ones() {
        let names: Vec<&str> = crate::front::embedded_protos()
            .map(|(name, _)| name)
            .collect();
        let input = crate::front::from_files(&names, &[] as &[&str]).unwrap();
        let mut types: Vec<String> = input
            .files
            .iter()
            .filter(|f| {
                f.package().starts_with("google.api") || f.package().starts_with("google.rpc")
            })
            .flat_map(|f| {
                let messages = f.message_type.iter().map(|m| m.name().to_owned());
                let enums = f.enum_type.iter().map(|e| e.name().to_owned());
                messages
                    .chain(enums)
                    .map(move |ty| format!(".{}.{ty}", f.package()))
            })
            .collect();
        types.sort();
        assert_eq!(types, RZERO_GOOGLE_TYPES);
    }

    #[test]
    fn openapi_per_file_or_merged() {
        assert_eq!(Options::default().openapi, None);
        for (text, expected) in [
            ("openapi", OpenApi::PerFile),
            ("openapi=merged", OpenApi::Merged),
            ("no_client,openapi=merged", OpenApi::Merged),
        ] {
            let options = Options::from_parameter(text).unwrap();
            assert_eq!(options.openapi, Some(expected), "{text}");
            assert_eq!(
                Options::from_parameter(&options.to_parameter()).unwrap(),
                options,
                "{text}"
            );
        }
        let bad = Options::from_parameter("openapi=yaml")
            .unwrap_err()
            .to_string();
        assert!(
            bad.contains("`openapi` takes no value")
                && bad.contains("`merged`")
                && bad.contains("yaml"),
            "{bad}"
        );
    }

    #[test]
    fn rejects_unknown_and_malformed_options() {
        let unknown = Options::from_parameter("no_sever").unwrap_err().to_string();
        assert!(unknown.contains("unknown option `no_sever`"), "{unknown}");
        let missing = Options::from_parameter("extern_path=.a")
            .unwrap_err()
            .to_string();
        assert!(missing.contains("PATH=VALUE"), "{missing}");
        let flag_value = Options::from_parameter("no_client=yes")
            .unwrap_err()
            .to_string();
        assert!(flag_value.contains("takes no value"), "{flag_value}");
    }
}
