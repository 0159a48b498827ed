//! The one place names are converted. Emitters never build identifiers themselves.
//!
//! prost-build has already converted message, service and method names (snake/camel case,
//! `r#` for keywords); rzero derives its own names from those and from the proto names.

use heck::{ToShoutySnakeCase, ToSnakeCase};
use proc_macro2::Ident;
use quote::format_ident;

/// Inherent methods of a generated client. An RPC whose Rust name would collide with one of
/// these (or shadow `Clone::clone`) gets an `_rpc` suffix.
const CLIENT_RESERVED: &[&str] = &["new", "connect", "connect_lazy", "inner", "clone"];

/// Primitive types prost maps some well-known wrappers to; they are not paths to qualify.
const PRIMITIVES: &[&str] = &["bool", "i32", "i64", "u32", "u64", "f32", "f64"];

/// `Greeter` → `greeter_server` / `greeter_client`.
pub(crate) fn service_module(service: &str, side: &str) -> Ident {
    format_ident!("{}_{side}", unraw(service).to_snake_case())
}

/// `Greeter` → `GreeterServer` / `GreeterClient` / `GreeterApi`.
pub(crate) fn service_struct(service: &str, suffix: &str) -> Ident {
    format_ident!("{}{suffix}", unraw(service))
}

/// A name prost already made a valid identifier (possibly `r#kw`).
pub(crate) fn ident(name: &str) -> Ident {
    format_ident!("{name}")
}

/// The client method for an RPC whose trait method prost named `name`.
pub(crate) fn client_method(name: &str) -> Ident {
    let bare = unraw(name);
    if CLIENT_RESERVED.contains(&bare) {
        format_ident!("{bare}_rpc")
    } else {
        format_ident!("{name}")
    }
}

/// `SayHello` → `SAY_HELLO`, the static holding the method's descriptor.
pub(crate) fn method_static(proto_name: &str) -> Ident {
    format_ident!("{}", proto_name.to_shouty_snake_case())
}

/// `Greeter` → `GREETER_HTTP_RULES`, the constant holding the service's REST gateway rules.
pub(crate) fn http_rules_const(service: &str) -> Ident {
    format_ident!("{}_HTTP_RULES", unraw(service).to_shouty_snake_case())
}

/// A prost type path as seen from a module nested one level inside the package module.
pub(crate) fn nested_type_path(rust_path: &str) -> String {
    let first = rust_path.split("::").next().unwrap_or_default();
    if rust_path.starts_with("::") || rust_path.starts_with('(') || PRIMITIVES.contains(&first) {
        rust_path.to_owned()
    } else {
        format!("super::{rust_path}")
    }
}

fn unraw(name: &str) -> &str {
    name.strip_prefix("r#").unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            service_module("Greeter", "server").to_string(),
            "greeter_server"
        );
        assert_eq!(
            service_module("HTTPProxy", "client").to_string(),
            "http_proxy_client"
        );
        assert_eq!(
            service_struct("Greeter", "Client").to_string(),
            "GreeterClient"
        );
        assert_eq!(method_static("SayHello").to_string(), "SAY_HELLO");
        assert_eq!(method_static("Drop").to_string(), "DROP");
    }

    #[test]
    fn client_methods_avoid_the_clients_own_names() {
        for (prost, ours) in [
            ("connect", "connect_rpc"),
            ("new", "new_rpc"),
            ("clone", "clone_rpc"),
            ("r#type", "r#type"),
            ("say_hello", "say_hello"),
        ] {
            assert_eq!(client_method(prost).to_string(), ours);
        }
    }

    #[test]
    fn type_paths_from_a_nested_module() {
        for (path, nested) in [
            ("HelloRequest", "super::HelloRequest"),
            ("super::common::Money", "super::super::common::Money"),
            (
                "::rzero::codegen::prost_types::Timestamp",
                "::rzero::codegen::prost_types::Timestamp",
            ),
            ("()", "()"),
            ("bool", "bool"),
            ("i64", "i64"),
        ] {
            assert_eq!(nested_type_path(path), nested);
        }
    }
}
