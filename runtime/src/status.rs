//! Rich error details: `google.rpc.Status` in the `grpc-status-details-bin` trailer.
//!
//! gRPC peers in every language read and write error details as a serialized
//! `google.rpc.Status` whose `details` are `Any`-packed messages such as
//! [`BadRequest`](crate::google::rpc::BadRequest). [`with_details`] builds such a
//! [`Status`], and [`StatusExt`] reads the details back.

use prost::{Message, Name};
use prost_types::Any;
use tonic::{Code, Status};

use crate::google::rpc;

/// A [`Status`] carrying `details`, each packed into an `Any`.
///
/// ```
/// use rzero::google::rpc::{BadRequest, bad_request::FieldViolation};
/// let status = rzero::status::with_details(
///     rzero::Code::InvalidArgument,
///     "name is required",
///     &[rzero::status::pack(&BadRequest {
///         field_violations: vec![FieldViolation { field: "name".into(), description: "empty".into(), ..Default::default() }],
///     })],
/// );
/// use rzero::status::StatusExt;
/// assert_eq!(status.detail::<BadRequest>().unwrap().field_violations[0].field, "name");
/// ```
pub fn with_details(code: Code, message: impl Into<String>, details: &[Any]) -> Status {
    let message = message.into();
    let encoded = rpc::Status {
        code: code as i32,
        message: message.clone(),
        details: details.to_vec(),
    }
    .encode_to_vec();
    Status::with_details(code, message, encoded.into())
}

/// Packs a message into an `Any` (its type URL is `type.googleapis.com/<full name>`).
pub fn pack<M: Name>(message: &M) -> Any {
    Any {
        // Not `M::type_url()`: prost's default (and generated code without a type domain)
        // is `/<full name>`, while every gRPC implementation writes `type.googleapis.com/`.
        type_url: format!("type.googleapis.com/{}", M::full_name()),
        value: message.encode_to_vec(),
    }
}

/// The message name a type URL names: what follows its last `/`, whatever the domain (as
/// protobuf's `Any.Unpack` reads it).
fn type_name(type_url: &str) -> &str {
    type_url.rsplit_once('/').map_or(type_url, |(_, name)| name)
}

/// Reading the details of a [`Status`].
pub trait StatusExt {
    /// The `Any`-packed details, empty when there are none or they do not decode.
    fn details_any(&self) -> Vec<Any>;

    /// The first detail of type `M`, if any. Matched by the message name in the type URL, so
    /// `type.googleapis.com/google.rpc.BadRequest` and `/google.rpc.BadRequest` both match.
    fn detail<M: Name + Default>(&self) -> Option<M>;
}

impl StatusExt for Status {
    fn details_any(&self) -> Vec<Any> {
        rpc::Status::decode(self.details())
            .map(|status| status.details)
            .unwrap_or_default()
    }

    fn detail<M: Name + Default>(&self) -> Option<M> {
        let name = M::full_name();
        self.details_any()
            .into_iter()
            .find(|any| type_name(&any.type_url) == name)
            .and_then(|any| M::decode(any.value.as_slice()).ok())
    }
}
