//! Server side of a service: the async trait users implement and the wrapper that serves it.

use proc_macro2::TokenStream;
use quote::quote;

use super::{descriptors, docs};
use crate::model::{Method, Service};

pub(crate) fn generate(service: &Service) -> TokenStream {
    let Service {
        full_name,
        trait_name,
        server_module,
        server_struct,
        ..
    } = service;
    let module_doc = format!(
        " Server side of `{full_name}`: implement [`{trait_name}`], serve [`{server_struct}`]."
    );
    let trait_doc = if service.docs.is_empty() {
        docs(&[format!(
            " The RPCs of `{full_name}`, to implement on the server."
        )])
    } else {
        docs(&service.docs)
    };
    let struct_doc = format!(
        " Serves a [`{trait_name}`] implementation: mount it on `rzero::Server` (or any tonic router)."
    );
    let trait_methods = service.methods.iter().map(trait_method);
    let arms = service.methods.iter().map(|m| dispatch_arm(service, m));
    let descriptors = descriptors(service);
    let name = full_name.as_str();
    quote! {
        #[doc = #module_doc]
        #[allow(dead_code, missing_docs, clippy::wildcard_imports, clippy::let_unit_value, clippy::too_many_lines, clippy::wrong_self_convention, clippy::new_ret_no_self, clippy::should_implement_trait)]
        pub mod #server_module {
            #descriptors

            #trait_doc
            #[::rzero::codegen::async_trait]
            pub trait #trait_name: ::core::marker::Send + ::core::marker::Sync + 'static {
                #(#trait_methods)*
            }

            #[doc = #struct_doc]
            pub struct #server_struct<T> {
                inner: ::rzero::codegen::Arc<T>,
                config: ::rzero::codegen::ServiceConfig,
            }

            impl<T: #trait_name> #server_struct<T> {
                /// Serves `inner`.
                pub fn new(inner: T) -> Self {
                    Self::from_arc(::rzero::codegen::Arc::new(inner))
                }

                /// Serves an implementation that is shared with other code.
                pub fn from_arc(inner: ::rzero::codegen::Arc<T>) -> Self {
                    Self { inner, config: ::core::default::Default::default() }
                }

                /// Accepts requests compressed with `encoding`. Default: every encoding this
                /// `rzero` was built with (gzip, zstd).
                #[must_use]
                pub fn accept_compressed(mut self, encoding: ::rzero::codegen::CompressionEncoding) -> Self {
                    self.config.accept_compressed(encoding);
                    self
                }

                /// Compresses responses with `encoding` when the client accepts it. Default:
                /// every encoding this `rzero` was built with.
                #[must_use]
                pub fn send_compressed(mut self, encoding: ::rzero::codegen::CompressionEncoding) -> Self {
                    self.config.send_compressed(encoding);
                    self
                }

                /// Largest request message accepted, in bytes. Default: 4 MiB.
                #[must_use]
                pub fn max_decoding_message_size(mut self, limit: usize) -> Self {
                    self.config.max_decoding_message_size(limit);
                    self
                }

                /// Largest response message sent, in bytes. Default: no limit.
                #[must_use]
                pub fn max_encoding_message_size(mut self, limit: usize) -> Self {
                    self.config.max_encoding_message_size(limit);
                    self
                }
            }

            impl<T> ::core::clone::Clone for #server_struct<T> {
                fn clone(&self) -> Self {
                    Self { inner: ::rzero::codegen::Arc::clone(&self.inner), config: self.config }
                }
            }

            impl<T> ::core::fmt::Debug for #server_struct<T> {
                fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                    f.debug_struct(::core::stringify!(#server_struct)).field("config", &self.config).finish_non_exhaustive()
                }
            }

            impl<T> ::rzero::codegen::NamedService for #server_struct<T> {
                const NAME: &'static str = #name;
            }

            impl<T, B> ::rzero::codegen::Service<::rzero::codegen::http::Request<B>> for #server_struct<T>
            where
                T: #trait_name,
                B: ::rzero::codegen::Body + ::core::marker::Send + 'static,
                B::Error: ::core::convert::Into<::rzero::codegen::StdError> + ::core::marker::Send + 'static,
            {
                type Response = ::rzero::codegen::http::Response<::rzero::codegen::ResponseBody>;
                type Error = ::rzero::codegen::Infallible;
                type Future = ::rzero::codegen::BoxFuture<Self::Response, Self::Error>;

                fn poll_ready(&mut self, _cx: &mut ::rzero::codegen::Context<'_>) -> ::rzero::codegen::Poll<::core::result::Result<(), Self::Error>> {
                    ::rzero::codegen::Poll::Ready(::core::result::Result::Ok(()))
                }

                fn call(&mut self, request: ::rzero::codegen::http::Request<B>) -> Self::Future {
                    match request.uri().path() {
                        #(#arms)*
                        _ => ::rzero::codegen::server::unimplemented(request),
                    }
                }
            }
        }
    }
}

fn request_type(method: &Method) -> TokenStream {
    let input = &method.input;
    if method.client_streaming {
        quote!(::rzero::codegen::Request<::rzero::codegen::Streaming<#input>>)
    } else {
        quote!(::rzero::codegen::Request<#input>)
    }
}

fn response_type(method: &Method) -> TokenStream {
    let output = &method.output;
    if method.server_streaming {
        quote!(::rzero::codegen::Response<::rzero::codegen::BoxStream<#output>>)
    } else {
        quote!(::rzero::codegen::Response<#output>)
    }
}

fn trait_method(method: &Method) -> TokenStream {
    let name = &method.trait_method;
    let docs = docs(&method.docs);
    let request = request_type(method);
    let response = response_type(method);
    let deprecated = method.deprecated.then(|| quote!(#[deprecated]));
    quote! {
        #docs
        #deprecated
        async fn #name(&self, request: #request) -> ::core::result::Result<#response, ::rzero::codegen::Status>;
    }
}

fn dispatch_arm(service: &Service, method: &Method) -> TokenStream {
    let path = format!("/{}/{}", service.full_name, method.proto_name);
    let trait_name = &service.trait_name;
    let name = &method.trait_method;
    let descriptor = &method.descriptor;
    let dispatch = match (method.client_streaming, method.server_streaming) {
        (false, false) => quote!(unary),
        (false, true) => quote!(server_streaming),
        (true, false) => quote!(client_streaming),
        (true, true) => quote!(streaming),
    };
    let allow_deprecated = method.deprecated.then(|| quote!(#[allow(deprecated)]));
    quote! {
        #path => ::rzero::codegen::server::#dispatch(
            &self.config,
            &#descriptor,
            request,
            ::rzero::codegen::Arc::clone(&self.inner),
            #allow_deprecated
            |service: ::rzero::codegen::Arc<T>, request| async move {
                <T as #trait_name>::#name(&service, request).await
            },
        ),
    }
}
