//! The rules generated code hands to the gateway, and their validation at startup.

use std::fmt;

use prost_reflect::{DescriptorPool, FieldDescriptor, Kind, MessageDescriptor, MethodDescriptor};

use super::template::PathTemplate;

/// One `google.api.http` binding of one RPC method, as plain data.
///
/// `protoc-gen-rzero` emits a `static` slice of these per service (one per binding,
/// `additional_bindings` flattened), next to the encoded descriptor set they refer to;
/// hand-written rules look the same.
///
/// ```
/// use rzero::gateway::HttpRule;
/// const RULES: &[HttpRule] = &[
///     HttpRule::new("/greeter.v1.Greeter/SayHello", "GET", "/v1/greeter/{name}"),
///     HttpRule::new("/greeter.v1.Greeter/SayHello", "POST", "/v1/greeter").body("*"),
/// ];
/// # assert_eq!(RULES[1].body, "*");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HttpRule {
    /// The gRPC method path, `/package.Service/Method`.
    pub method: &'static str,
    /// The HTTP method (`GET`, `POST`, a `custom` kind, or `*` for any).
    pub http_method: &'static str,
    /// The path template, e.g. `/v1/{name=shelves/*}`.
    pub template: &'static str,
    /// `""` (no body: fields come from the path and the query), `"*"` (the whole request
    /// except path fields; no query parameters), or a field path of the request.
    pub body: &'static str,
    /// `""` (the whole reply) or a top-level field of the reply to send alone.
    pub response_body: &'static str,
}

impl HttpRule {
    /// A rule with no body and the whole reply as the response.
    pub const fn new(
        method: &'static str,
        http_method: &'static str,
        template: &'static str,
    ) -> Self {
        HttpRule {
            method,
            http_method,
            template,
            body: "",
            response_body: "",
        }
    }

    /// Sets [`body`](Self::body).
    #[must_use]
    pub const fn body(mut self, body: &'static str) -> Self {
        self.body = body;
        self
    }

    /// Sets [`response_body`](Self::response_body).
    #[must_use]
    pub const fn response_body(mut self, response_body: &'static str) -> Self {
        self.response_body = response_body;
        self
    }

    /// `(service, method)` from [`method`](Self::method), if it has the `/svc/Method` shape.
    pub(crate) fn split_method(&self) -> Option<(&'static str, &'static str)> {
        let (service, method) = self.method.strip_prefix('/')?.split_once('/')?;
        (!service.is_empty() && !method.is_empty() && !method.contains('/'))
            .then_some((service, method))
    }
}

impl fmt::Display for HttpRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.method, self.http_method, self.template)?;
        if !self.body.is_empty() {
            write!(f, " body={:?}", self.body)?;
        }
        if !self.response_body.is_empty() {
            write!(f, " response_body={:?}", self.response_body)?;
        }
        Ok(())
    }
}

/// Why a gateway could not be built: every problem found, each naming its rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayBuildError {
    errors: Vec<String>,
}

impl GatewayBuildError {
    pub(crate) fn new(errors: Vec<String>) -> Self {
        GatewayBuildError { errors }
    }

    /// One line per problem.
    pub fn errors(&self) -> &[String] {
        &self.errors
    }
}

impl fmt::Display for GatewayBuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid gateway configuration:")?;
        for error in &self.errors {
            write!(f, "\n  {error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for GatewayBuildError {}

/// A rule checked against the descriptors.
#[derive(Debug)]
pub(crate) struct Checked {
    pub(crate) method: MethodDescriptor,
    pub(crate) template: PathTemplate,
    pub(crate) body: Vec<FieldDescriptor>,
    pub(crate) response_body: Option<FieldDescriptor>,
}

/// Resolves a dotted field path by proto names.
pub(crate) fn resolve_path(
    message: &MessageDescriptor,
    path: &str,
) -> Result<Vec<FieldDescriptor>, String> {
    let mut fields = Vec::new();
    let mut current = message.clone();
    for (i, name) in path.split('.').enumerate() {
        if i > 0 {
            let last: &FieldDescriptor = fields.last().expect("not first");
            match last.kind() {
                Kind::Message(m) if !last.is_list() && !last.is_map() => current = m,
                _ => {
                    return Err(format!(
                        "field {:?} of {} is not a message",
                        last.name(),
                        current.full_name()
                    ));
                }
            }
        }
        let field = current
            .get_field_by_name(name)
            .ok_or_else(|| format!("no field {name:?} in {}", current.full_name()))?;
        fields.push(field);
    }
    Ok(fields)
}

fn scalar_like(message: &MessageDescriptor) -> bool {
    super::template::scalar_like_message(message.full_name())
}

/// Checks one rule; the errors name the rule.
pub(crate) fn check(pool: &DescriptorPool, rule: &HttpRule) -> Result<Checked, Vec<String>> {
    let fail = |what: String| vec![format!("{rule}: {what}")];
    let Some((service, method)) = rule.split_method() else {
        return Err(fail(
            "method must be a gRPC path, /package.Service/Method".into(),
        ));
    };
    let Some(service_desc) = pool.get_service_by_name(service) else {
        return Err(fail(format!(
            "service {service} is not in the descriptor set"
        )));
    };
    let Some(method_desc) = service_desc.methods().find(|m| m.name() == method) else {
        return Err(fail(format!("service {service} has no method {method}")));
    };
    let template = PathTemplate::parse(rule.template).map_err(|e| fail(e.to_string()))?;
    let input = method_desc.input();
    let mut errors = Vec::new();
    if method_desc.is_client_streaming() {
        // Every request message is one line of the body, so the body is the whole message
        // and nothing can come from the URL (one path, many messages).
        if rule.body != "*" {
            errors.push(format!(
                "the method streams its requests (one JSON message per body line), so its \
                 body must be \"*\", not {:?}",
                rule.body
            ));
        }
        if !template.variables().is_empty() {
            errors.push(
                "the method streams its requests, so the path cannot bind variables".to_owned(),
            );
        }
    }
    if rule.http_method.eq_ignore_ascii_case("GET") && !rule.body.is_empty() {
        errors.push("a GET binding cannot have a body".to_owned());
    }
    for variable in template.variables() {
        match resolve_path(&input, variable.field_path()) {
            Err(e) => errors.push(format!("path variable {}: {e}", variable.field_path())),
            Ok(fields) => {
                let leaf = fields.last().expect("paths are not empty");
                if leaf.is_list() || leaf.is_map() {
                    errors.push(format!(
                        "path variable {} is a repeated or map field",
                        variable.field_path()
                    ));
                } else if let Kind::Message(m) = leaf.kind()
                    && !scalar_like(&m)
                {
                    errors.push(format!(
                        "path variable {} is a message ({})",
                        variable.field_path(),
                        m.full_name()
                    ));
                }
            }
        }
    }
    let body = match rule.body {
        "" | "*" => Vec::new(),
        path => resolve_path(&input, path).unwrap_or_else(|e| {
            errors.push(format!("body: {e}"));
            Vec::new()
        }),
    };
    let response_body = match rule.response_body {
        "" | "*" => None,
        name => {
            let field = method_desc.output().get_field_by_name(name);
            if field.is_none() {
                errors.push(format!(
                    "response_body: no field {name:?} in {}",
                    method_desc.output().full_name()
                ));
            }
            field
        }
    };
    if !errors.is_empty() {
        return Err(errors.into_iter().map(|e| format!("{rule}: {e}")).collect());
    }
    Ok(Checked {
        method: method_desc,
        template,
        body,
        response_body,
    })
}
