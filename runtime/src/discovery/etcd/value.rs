//! The value stored under each registration key.
//!
//! rzero writes etcd's `naming/endpoints` JSON (`client/v3/naming/endpoints/internal.Update`,
//! Go struct fields without JSON tags): `{"Op":0,"Addr":"10.0.0.5:8080","Metadata":{...}}`,
//! so etcd's own Go resolver reads rzero registrations. `Op` 0 is "add"; `Metadata` is any
//! JSON in etcd, a string-to-string object here (`null` when there is none, as etcd's Go
//! client writes it).
//!
//! Reading is lenient, because the values come from other programs: go-zero writes a bare
//! `host:port`; metadata values that are numbers or booleans become their JSON text, and
//! nested values their JSON. A value that is neither is skipped (the caller ignores it), as
//! is `Op` 1 ("delete") and a JSON value without an address.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::discovery::Endpoint;

/// The JSON value rzero publishes for `endpoint`.
pub(crate) fn encode(endpoint: &Endpoint) -> String {
    let metadata = if endpoint.metadata.is_empty() {
        Value::Null
    } else {
        Value::Object(
            endpoint
                .metadata
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect(),
        )
    };
    // Written by hand to keep Go's field order (serde_json's map would sort the keys).
    let addr = Value::String(endpoint.addr.clone());
    format!(r#"{{"Op":0,"Addr":{addr},"Metadata":{metadata}}}"#)
}

/// The endpoint a stored value describes, if it describes one.
pub(crate) fn decode(value: &[u8]) -> Option<Endpoint> {
    let text = std::str::from_utf8(value).ok()?.trim();
    if text.starts_with('{') {
        return decode_json(text);
    }
    // go-zero: the bare address.
    if text.is_empty() || text.contains(char::is_whitespace) {
        return None;
    }
    Some(Endpoint::new(text))
}

fn decode_json(text: &str) -> Option<Endpoint> {
    let Value::Object(update) = serde_json::from_str::<Value>(text).ok()? else {
        return None;
    };
    match update.get("Op") {
        None => {}
        Some(op) if op.as_u64() == Some(0) => {}
        Some(_) => return None,
    }
    let addr = update.get("Addr")?.as_str()?.trim();
    if addr.is_empty() {
        return None;
    }
    let metadata = match update.get("Metadata") {
        Some(Value::Object(fields)) => fields
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), v)
            })
            .collect(),
        _ => BTreeMap::new(),
    };
    Some(Endpoint {
        addr: addr.to_owned(),
        metadata,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(addr: &str, metadata: &[(&str, &str)]) -> Endpoint {
        Endpoint {
            addr: addr.into(),
            metadata: metadata
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn encodes_etcd_naming_json() {
        let e = endpoint("10.0.0.5:8080", &[("version", "v2"), ("weight", "10")]);
        assert_eq!(
            encode(&e),
            r#"{"Op":0,"Addr":"10.0.0.5:8080","Metadata":{"version":"v2","weight":"10"}}"#
        );
        assert_eq!(
            encode(&endpoint("h:1", &[])),
            r#"{"Op":0,"Addr":"h:1","Metadata":null}"#
        );
    }

    #[test]
    fn decodes_what_it_encodes() {
        let e = endpoint("10.0.0.5:8080", &[("zone", "a"), ("version", "v1")]);
        assert_eq!(decode(encode(&e).as_bytes()), Some(e));
    }

    #[test]
    fn decodes_go_zero_bare_addresses() {
        assert_eq!(
            decode(b"10.0.0.7:9000"),
            Some(endpoint("10.0.0.7:9000", &[]))
        );
        assert_eq!(
            decode(b" 10.0.0.7:9000\n"),
            Some(endpoint("10.0.0.7:9000", &[]))
        );
        assert_eq!(decode(b""), None);
        assert_eq!(decode(b"not an address"), None);
        assert_eq!(decode(b"\xff\xfe"), None);
    }

    #[test]
    fn decodes_foreign_json_leniently() {
        // etcd's Go manager with non-string metadata, and without metadata.
        assert_eq!(
            decode(br#"{"Op":0,"Addr":"h:1","Metadata":{"weight":10,"canary":true,"x":{"a":1}}}"#),
            Some(endpoint(
                "h:1",
                &[("weight", "10"), ("canary", "true"), ("x", r#"{"a":1}"#)]
            ))
        );
        assert_eq!(decode(br#"{"Addr":"h:1"}"#), Some(endpoint("h:1", &[])));
        assert_eq!(
            decode(br#"{"Op":0,"Addr":"h:1","Metadata":"text"}"#),
            Some(endpoint("h:1", &[]))
        );
        // Deletions, missing addresses and broken JSON describe no endpoint.
        assert_eq!(decode(br#"{"Op":1,"Addr":"h:1"}"#), None);
        assert_eq!(decode(br#"{"Op":0,"Metadata":{}}"#), None);
        assert_eq!(decode(br#"{"Op":0,"Addr":""}"#), None);
        assert_eq!(decode(br#"{"Op":0,"Addr":"h:1""#), None);
    }
}
