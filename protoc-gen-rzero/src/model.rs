//! The service model emitters work from: services and methods with every name and type path
//! already resolved. Built once from what prost-build hands its `ServiceGenerator`, so the
//! emitters never see descriptors and can be tested on their own.

use proc_macro2::{Ident, TokenStream};
use quote::ToTokens;

use crate::ident;

/// One `service` of a `.proto` file.
#[derive(Debug)]
pub(crate) struct Service {
    /// `echo.v1.Echo` (or `Echo` without a package).
    pub(crate) full_name: String,
    /// Doc lines from the proto comments.
    pub(crate) docs: Vec<String>,
    /// The server trait, `Echo`.
    pub(crate) trait_name: Ident,
    pub(crate) server_module: Ident,
    pub(crate) server_struct: Ident,
    pub(crate) client_module: Ident,
    pub(crate) client_struct: Ident,
    /// The trait every client of the service implements, `GreeterApi`.
    pub(crate) client_trait: Ident,
    /// The constant holding its REST gateway rules, `GREETER_HTTP_RULES`.
    pub(crate) http_rules: Ident,
    pub(crate) methods: Vec<Method>,
}

/// One `rpc`.
#[derive(Debug)]
pub(crate) struct Method {
    /// As written in the proto, `SayHello`.
    pub(crate) proto_name: String,
    pub(crate) docs: Vec<String>,
    pub(crate) client_streaming: bool,
    pub(crate) server_streaming: bool,
    /// Trait method, `say_hello`.
    pub(crate) trait_method: Ident,
    /// Client method, `say_hello` (suffixed where it would collide).
    pub(crate) client_method: Ident,
    /// The static holding the method descriptor, `SAY_HELLO`.
    pub(crate) descriptor: Ident,
    /// Request and response types as seen from the server/client modules.
    pub(crate) input: TokenStream,
    pub(crate) output: TokenStream,
    pub(crate) idempotent: bool,
    pub(crate) deprecated: bool,
}

impl Service {
    pub(crate) fn from_prost(service: &prost_build::Service) -> Result<Self, String> {
        let full_name = if service.package.is_empty() {
            service.proto_name.clone()
        } else {
            format!("{}.{}", service.package, service.proto_name)
        };
        let methods = service
            .methods
            .iter()
            .map(Method::from_prost)
            .collect::<Result<_, _>>()?;
        Ok(Self {
            docs: doc_lines(&service.comments),
            trait_name: ident::ident(&service.name),
            server_module: ident::service_module(&service.name, "server"),
            server_struct: ident::service_struct(&service.name, "Server"),
            client_module: ident::service_module(&service.name, "client"),
            client_struct: ident::service_struct(&service.name, "Client"),
            client_trait: ident::service_struct(&service.name, "Api"),
            http_rules: ident::http_rules_const(&service.name),
            full_name,
            methods,
        })
    }
}

impl Method {
    fn from_prost(method: &prost_build::Method) -> Result<Self, String> {
        use prost_types::method_options::IdempotencyLevel;
        let idempotent = matches!(
            method.options.idempotency_level(),
            IdempotencyLevel::Idempotent | IdempotencyLevel::NoSideEffects
        );
        Ok(Self {
            proto_name: method.proto_name.clone(),
            docs: doc_lines(&method.comments),
            client_streaming: method.client_streaming,
            server_streaming: method.server_streaming,
            trait_method: ident::ident(&method.name),
            client_method: ident::client_method(&method.name),
            descriptor: ident::method_static(&method.proto_name),
            input: parse_type(&method.input_type)?,
            output: parse_type(&method.output_type)?,
            idempotent,
            deprecated: method.options.deprecated(),
        })
    }
}

fn parse_type(rust_path: &str) -> Result<TokenStream, String> {
    let nested = ident::nested_type_path(rust_path);
    syn::parse_str::<syn::Type>(&nested)
        .map(|ty| ty.into_token_stream())
        .map_err(|e| format!("type path `{nested}` does not parse: {e}"))
}

/// Doc lines rendered by prost's own comment sanitizer (URLs, brackets), so message and
/// service docs read the same.
fn doc_lines(comments: &prost_build::Comments) -> Vec<String> {
    let mut rendered = String::new();
    comments.append_with_indent(0, &mut rendered);
    rendered
        .lines()
        .filter_map(|line| line.strip_prefix("///"))
        .map(str::to_owned)
        .collect()
}
