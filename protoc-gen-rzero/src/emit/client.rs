//! Client side of a service: a stub with one async method per RPC, on `rzero::Client`.

use proc_macro2::TokenStream;
use quote::quote;

use super::{descriptors, docs};
use crate::model::{Method, Service};

pub(crate) fn generate(service: &Service) -> TokenStream {
    let Service {
        full_name,
        client_module,
        client_struct,
        ..
    } = service;
    let module_doc = format!(" Client side of `{full_name}`: see [`{client_struct}`].");
    let struct_doc = format!(
        " Calls `{full_name}`. Cheap to clone; every method takes `&self`, so one client serves many tasks."
    );
    let methods = service.methods.iter().map(client_method);
    let descriptors = descriptors(service);
    quote! {
        #[doc = #module_doc]
        #[allow(dead_code, missing_docs, clippy::wildcard_imports, clippy::let_unit_value, clippy::wrong_self_convention, clippy::new_ret_no_self, clippy::should_implement_trait)]
        pub mod #client_module {
            #descriptors

            #[doc = #struct_doc]
            #[derive(Debug, Clone)]
            pub struct #client_struct {
                inner: ::rzero::codegen::Client,
            }

            impl #client_struct {
                /// Connects to `target` (`host:port` or `http(s)://host:port`) and waits until
                /// the connection is up.
                pub async fn connect(target: &str) -> ::core::result::Result<Self, ::rzero::codegen::ConnectError> {
                    ::core::result::Result::Ok(Self::new(::rzero::codegen::Client::connect(target).await?))
                }

                /// Prepares a client without connecting; the first call connects.
                pub fn connect_lazy(target: &str) -> ::core::result::Result<Self, ::rzero::codegen::ConnectError> {
                    ::core::result::Result::Ok(Self::new(::rzero::codegen::Client::connect_lazy(target)?))
                }

                /// Calls the service through an existing `rzero::Client`.
                pub fn new(inner: ::rzero::codegen::Client) -> Self {
                    Self { inner }
                }

                /// The `rzero::Client` underneath.
                pub fn inner(&self) -> &::rzero::codegen::Client {
                    &self.inner
                }

                #(#methods)*
            }
        }
    }
}

fn client_method(method: &Method) -> TokenStream {
    let name = &method.client_method;
    let descriptor = &method.descriptor;
    let input = &method.input;
    let output = &method.output;
    let docs = docs(&method.docs);
    let deprecated = method.deprecated.then(|| quote!(#[deprecated]));
    let (request, call) = if method.client_streaming {
        (
            quote!(impl ::rzero::codegen::IntoStreamingRequest<Message = #input>),
            if method.server_streaming {
                quote!(streaming)
            } else {
                quote!(client_streaming)
            },
        )
    } else {
        (
            quote!(impl ::rzero::codegen::IntoRequest<#input>),
            if method.server_streaming {
                quote!(server_streaming)
            } else {
                quote!(unary)
            },
        )
    };
    let response = if method.server_streaming {
        quote!(::rzero::codegen::Response<::rzero::codegen::Streaming<#output>>)
    } else {
        quote!(::rzero::codegen::Response<#output>)
    };
    quote! {
        #docs
        #deprecated
        pub async fn #name(&self, request: #request) -> ::core::result::Result<#response, ::rzero::codegen::Status> {
            self.inner.#call(&#descriptor, request).await
        }
    }
}
