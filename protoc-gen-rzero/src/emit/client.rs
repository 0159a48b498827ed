//! Client side of a service: a stub with one async method per RPC, on `rzero::Client`, and a
//! trait with the same methods that the stub implements, for callers that want to swap in a
//! fake or a mock.
//!
//! The stub's own methods take anything convertible into a request (`impl IntoRequest`), which
//! a trait object cannot; the trait takes concrete, boxed types instead
//! (`Request<RequestStream<T>>` in, `BoxStream<T>` out) so it stays object-safe and a fake can
//! build every value it has to return. Inherent methods win method resolution, so the stub
//! keeps its convenient signatures even with the trait in scope.

use proc_macro2::{Ident, TokenStream};
use quote::quote;

use super::{descriptors, docs};
use crate::model::{Method, Service};
use crate::options::{Mockall, Options};

pub(crate) fn generate(service: &Service, options: &Options) -> TokenStream {
    let Service {
        full_name,
        client_module,
        client_struct,
        client_trait,
        ..
    } = service;
    let module_doc = format!(
        " Client side of `{full_name}`: [`{client_struct}`] calls it; [`{client_trait}`] is the same calls as a trait."
    );
    let struct_doc = format!(
        " Calls `{full_name}`. Cheap to clone; every method takes `&self`, so one client serves many tasks."
    );
    let trait_doc = format!(
        " The calls of `{full_name}`. [`{client_struct}`] implements it; depend on this trait (`&dyn {client_trait}`, `Arc<dyn {client_trait}>` or a generic) to let tests substitute a fake."
    );
    let methods = service.methods.iter().map(client_method);
    let trait_methods = service.methods.iter().map(trait_method);
    let trait_impls = service
        .methods
        .iter()
        .map(|method| trait_impl(method, client_struct));
    let automock = match options.mockall {
        Mockall::Off => None,
        Mockall::InTests => Some(quote!(#[cfg_attr(test, ::mockall::automock)])),
        Mockall::Always => Some(quote!(#[::mockall::automock])),
    };
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

            #[doc = #trait_doc]
            #automock
            #[::rzero::codegen::async_trait]
            pub trait #client_trait: ::core::marker::Send + ::core::marker::Sync {
                #(#trait_methods)*
            }

            #[::rzero::codegen::async_trait]
            #[allow(deprecated)]
            impl #client_trait for #client_struct {
                #(#trait_impls)*
            }
        }
    }
}

/// The call method on `rzero::Client` for an RPC's kind.
fn call(method: &Method) -> TokenStream {
    match (method.client_streaming, method.server_streaming) {
        (false, false) => quote!(unary),
        (false, true) => quote!(server_streaming),
        (true, false) => quote!(client_streaming),
        (true, true) => quote!(streaming),
    }
}

fn client_method(method: &Method) -> TokenStream {
    let name = &method.client_method;
    let descriptor = &method.descriptor;
    let input = &method.input;
    let output = &method.output;
    let docs = docs(&method.docs);
    let deprecated = method.deprecated.then(|| quote!(#[deprecated]));
    let request = if method.client_streaming {
        quote!(impl ::rzero::codegen::IntoStreamingRequest<Message = #input>)
    } else {
        quote!(impl ::rzero::codegen::IntoRequest<#input>)
    };
    let response = if method.server_streaming {
        quote!(::rzero::codegen::Response<::rzero::codegen::Streaming<#output>>)
    } else {
        quote!(::rzero::codegen::Response<#output>)
    };
    let call = call(method);
    quote! {
        #docs
        #deprecated
        pub async fn #name(&self, request: #request) -> ::core::result::Result<#response, ::rzero::codegen::Status> {
            self.inner.#call(&#descriptor, request).await
        }
    }
}

/// The request and response types of an RPC in the client trait.
fn trait_types(method: &Method) -> (TokenStream, TokenStream) {
    let input = &method.input;
    let output = &method.output;
    let request = if method.client_streaming {
        quote!(::rzero::codegen::Request<::rzero::codegen::RequestStream<#input>>)
    } else {
        quote!(::rzero::codegen::Request<#input>)
    };
    let response = if method.server_streaming {
        quote!(::rzero::codegen::Response<::rzero::codegen::BoxStream<#output>>)
    } else {
        quote!(::rzero::codegen::Response<#output>)
    };
    (request, response)
}

fn trait_method(method: &Method) -> TokenStream {
    let name = &method.client_method;
    let docs = docs(&method.docs);
    let deprecated = method.deprecated.then(|| quote!(#[deprecated]));
    let (request, response) = trait_types(method);
    quote! {
        #docs
        #deprecated
        async fn #name(&self, request: #request) -> ::core::result::Result<#response, ::rzero::codegen::Status>;
    }
}

/// The stub's implementation of a trait method: its inherent method (which a path through the
/// type name resolves to, ahead of the trait's), with a reply stream boxed; streaming requests
/// go through `rzero::Client`'s boxed-future entry points (see there for why).
fn trait_impl(method: &Method, client_struct: &Ident) -> TokenStream {
    let name = &method.client_method;
    let descriptor = &method.descriptor;
    let (request, response) = trait_types(method);
    let boxed_stream = quote! {
        ::core::result::Result::Ok(response.map(|stream| -> ::rzero::codegen::BoxStream<_> { ::std::boxed::Box::pin(stream) }))
    };
    let body = match (method.client_streaming, method.server_streaming) {
        (false, false) => quote!(#client_struct::#name(self, request).await),
        (false, true) => quote! {
            let response = #client_struct::#name(self, request).await?;
            #boxed_stream
        },
        (true, false) => quote!(self.inner.client_streaming_boxed(&#descriptor, request).await),
        (true, true) => quote! {
            let response = self.inner.streaming_boxed(&#descriptor, request).await?;
            #boxed_stream
        },
    };
    quote! {
        async fn #name(&self, request: #request) -> ::core::result::Result<#response, ::rzero::codegen::Status> {
            #body
        }
    }
}
