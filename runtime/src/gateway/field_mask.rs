//! PATCH with a FieldMask (grpc-gateway's patch feature, AIP-134): when the client sends no
//! mask, the gateway fills it from the keys of the JSON body.

use prost_reflect::{DynamicMessage, FieldDescriptor, MessageDescriptor, Value};

use super::rules::HttpRule;

/// The FieldMask field to fill on a PATCH binding with a body field (grpc-gateway's patch
/// feature, AIP-134): only when the request has exactly one top-level FieldMask.
pub(super) fn patch_mask(
    rule: &HttpRule,
    input: &MessageDescriptor,
    body: &[FieldDescriptor],
) -> Option<FieldDescriptor> {
    if !rule.http_method.eq_ignore_ascii_case("PATCH") || body.is_empty() {
        return None;
    }
    let mut masks = input.fields().filter(|f| {
        !f.is_list()
            && matches!(f.kind(), prost_reflect::Kind::Message(m)
                if m.full_name() == "google.protobuf.FieldMask")
    });
    let mask = masks.next()?;
    masks.next().is_none().then_some(mask)
}

/// Sets `mask` to the field paths present in the JSON body (relative to the body field's
/// message, as proto names), unless the client set a non-empty mask itself.
pub(super) fn fill_mask(
    message: &mut DynamicMessage,
    mask: &FieldDescriptor,
    body_field: Option<&FieldDescriptor>,
    json: &serde_json::Value,
) {
    let already = message
        .get_field(mask)
        .as_message()
        .and_then(|m| m.get_field_by_name("paths"))
        .and_then(|p| p.as_list().map(|l| !l.is_empty()))
        .unwrap_or(false);
    let Some(prost_reflect::Kind::Message(body_message)) = body_field.map(FieldDescriptor::kind)
    else {
        return;
    };
    if already {
        return;
    }
    let mut paths = Vec::new();
    collect_paths(&body_message, json, "", &mut paths);
    paths.sort_unstable();
    let prost_reflect::Kind::Message(mask_message) = mask.kind() else {
        return;
    };
    let mut value = DynamicMessage::new(mask_message);
    value.set_field_by_name(
        "paths",
        Value::List(paths.into_iter().map(Value::String).collect()),
    );
    message.set_field(mask, Value::Message(value));
}

/// Field paths of the keys in `json`, descending into plain message fields; maps, lists,
/// well-known types and non-objects are leaves.
fn collect_paths(
    descriptor: &MessageDescriptor,
    json: &serde_json::Value,
    prefix: &str,
    out: &mut Vec<String>,
) {
    let serde_json::Value::Object(object) = json else {
        return;
    };
    for (key, value) in object {
        let Some(field) = descriptor
            .get_field_by_json_name(key)
            .or_else(|| descriptor.get_field_by_name(key))
        else {
            continue;
        };
        let path = format!("{prefix}{}", field.name());
        match (field.kind(), value) {
            (prost_reflect::Kind::Message(m), serde_json::Value::Object(inner))
                if !field.is_list()
                    && !field.is_map()
                    && !m.full_name().starts_with("google.protobuf.")
                    && !inner.is_empty() =>
            {
                collect_paths(&m, value, &format!("{path}."), out);
            }
            _ => out.push(path),
        }
    }
}
