//! A JSON value that keeps its keys in the order they were added, and its pretty printer.
//!
//! Why not `serde_json::Value`: its object is a `BTreeMap`, or an insertion-ordered map when
//! any crate in the build turns on `preserve_order`, so the same generator could write keys in
//! two orders depending on its neighbours. Here the order is always the code's: OpenAPI's
//! top-level keys in the usual order, properties in field-number order (as the gateway
//! writes them), and whatever the caller sorted. serde_json only escapes strings.

use std::fmt::Write as _;

/// A JSON value; objects keep insertion order (keys are unique by construction).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    Int(i64),
    Str(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    /// An object from key-value pairs, in order.
    pub(crate) fn object<K: Into<String>>(pairs: impl IntoIterator<Item = (K, Json)>) -> Self {
        let mut object = Json::Object(Vec::new());
        for (key, value) in pairs {
            object.set(key, value);
        }
        object
    }

    /// An empty object (`{}`), which as a schema accepts any value.
    pub(crate) fn empty() -> Self {
        Json::Object(Vec::new())
    }

    /// Sets `key` (replacing its value in place when present); no-op on non-objects.
    pub(crate) fn set(&mut self, key: impl Into<String>, value: Json) {
        let Json::Object(pairs) = self else { return };
        let key = key.into();
        match pairs.iter_mut().find(|(k, _)| *k == key) {
            Some((_, old)) => *old = value,
            None => pairs.push((key, value)),
        }
    }

    /// `set`, by value.
    pub(crate) fn with(mut self, key: impl Into<String>, value: Json) -> Self {
        self.set(key, value);
        self
    }

    /// The value under `key`, for objects.
    pub(crate) fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(pairs) => pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Pretty-printed (two-space indent, as `serde_json::to_string_pretty`), ending in a
    /// newline.
    pub(crate) fn pretty(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, 0);
        out.push('\n');
        out
    }

    fn write(&self, out: &mut String, indent: usize) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Int(n) => {
                let _ = write!(out, "{n}");
            }
            Json::Str(s) => write_str(out, s),
            Json::Array(items) if items.is_empty() => out.push_str("[]"),
            Json::Object(pairs) if pairs.is_empty() => out.push_str("{}"),
            Json::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    out.push_str(if i == 0 { "\n" } else { ",\n" });
                    pad(out, indent + 1);
                    item.write(out, indent + 1);
                }
                out.push('\n');
                pad(out, indent);
                out.push(']');
            }
            Json::Object(pairs) => {
                out.push('{');
                for (i, (key, value)) in pairs.iter().enumerate() {
                    out.push_str(if i == 0 { "\n" } else { ",\n" });
                    pad(out, indent + 1);
                    write_str(out, key);
                    out.push_str(": ");
                    value.write(out, indent + 1);
                }
                out.push('\n');
                pad(out, indent);
                out.push('}');
            }
        }
    }
}

fn pad(out: &mut String, indent: usize) {
    for _ in 0..indent {
        out.push_str("  ");
    }
}

fn write_str(out: &mut String, s: &str) {
    // Serializing a `&str` cannot fail.
    out.push_str(&serde_json::to_string(s).unwrap_or_default());
}

impl From<&str> for Json {
    fn from(s: &str) -> Self {
        Json::Str(s.to_owned())
    }
}

impl From<String> for Json {
    fn from(s: String) -> Self {
        Json::Str(s)
    }
}

impl From<bool> for Json {
    fn from(b: bool) -> Self {
        Json::Bool(b)
    }
}

impl From<i64> for Json {
    fn from(n: i64) -> Self {
        Json::Int(n)
    }
}

impl From<Vec<Json>> for Json {
    fn from(items: Vec<Json>) -> Self {
        Json::Array(items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_like_serde_json_pretty_in_insertion_order() {
        let value = Json::object([
            ("z", Json::from("a\"b\n")),
            ("a", Json::from(vec![Json::from(1), Json::from(true)])),
            ("e", Json::empty()),
            ("l", Json::from(Vec::new())),
            ("n", Json::from(vec![Json::Null])),
        ]);
        let text = value.pretty();
        assert_eq!(
            text,
            "{\n  \"z\": \"a\\\"b\\n\",\n  \"a\": [\n    1,\n    true\n  ],\n  \"e\": {},\n  \"l\": [],\n  \"n\": [\n    null\n  ]\n}\n"
        );
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed["z"], "a\"b\n");
    }

    #[test]
    fn set_replaces_in_place() {
        let mut value = Json::object([("a", Json::from(1)), ("b", Json::from(2))]);
        value.set("a", Json::from(3));
        assert_eq!(
            value,
            Json::object([("a", Json::from(3)), ("b", Json::from(2))])
        );
        assert_eq!(value.get("b"), Some(&Json::from(2)));
    }
}
