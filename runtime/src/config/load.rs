//! Loading: `${VAR}` expansion, parsing, and errors that name the key and its line.

use std::fmt;
use std::path::Path;

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor,
};

use super::ConfigError;
use super::de::KEY_MARK;

/// go-zero keys rzero does not read (yet): named as such rather than as typos.
const GO_ZERO_ONLY: &[&str] = &[
    "Log",
    "Mode",
    "MetricsUrl",
    "Prometheus",
    "Telemetry",
    "Shutdown",
    "Profiling",
    "User",
    "Pass",
    "CertFile",
    "CertKeyFile",
    "CACertFile",
    "InsecureSkipVerify",
];

/// Keys with a second name (`#[serde(alias)]`): (name, alias). serde reports a key given
/// under both as a duplicate of the first name.
const ALIASES: &[(&str, &str)] = &[
    ("DrainDelay", "ShutdownDelay"),
    ("Balancer", "BalancerName"),
    ("MaxBytes", "MaxBodySize"),
    ("EnumsAsInts", "UseEnumNumbers"),
];

/// Parses `text` as YAML into `T`, after expanding `${VAR}`; errors name `file` when given.
pub(crate) fn parse<T: DeserializeOwned>(
    text: &str,
    file: Option<&Path>,
) -> Result<T, ConfigError> {
    let expanded = expand_env(text, |name| std::env::var(name).ok()).map_err(|mut e| {
        e.file = file.map(Path::to_path_buf);
        e
    })?;
    if expanded.text.trim().is_empty()
        || expanded
            .text
            .lines()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
    {
        return Err(ConfigError {
            file: file.map(Path::to_path_buf),
            line: None,
            column: None,
            key: String::new(),
            message: "the document is empty".to_owned(),
        });
    }
    serde_norway::from_str(&expanded.text).map_err(|error| {
        let mut e = convert(&error, &expanded);
        e.file = file.map(Path::to_path_buf);
        e
    })
}

/// Reads and parses a file.
pub(crate) fn parse_file<T: DeserializeOwned>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|error| ConfigError {
        file: Some(path.to_path_buf()),
        line: None,
        column: None,
        key: String::new(),
        message: format!("cannot read: {error}"),
    })?;
    parse(&text, Some(path))
}

/// The text after expansion, with what is needed to map its columns back to the source.
#[derive(Debug)]
pub(crate) struct Expanded {
    pub(crate) text: String,
    shifts: Vec<Shift>,
}

/// One `${VAR}` replaced on `line` (1-based); columns are 1-based, in characters.
#[derive(Debug)]
struct Shift {
    line: usize,
    /// Where the replacement starts, in the source and in the expanded line.
    source_col: usize,
    expanded_col: usize,
    /// Its length in the expanded line.
    expanded_len: usize,
    /// Its length in the source.
    source_len: usize,
}

impl Expanded {
    /// The source column for a column of the expanded text.
    fn source_column(&self, line: usize, column: usize) -> usize {
        let mut delta: isize = 0;
        for shift in self.shifts.iter().filter(|s| s.line == line) {
            if column >= shift.expanded_col + shift.expanded_len {
                delta += shift.expanded_len as isize - shift.source_len as isize;
            } else if column >= shift.expanded_col {
                return shift.source_col;
            }
        }
        (column as isize - delta).max(1) as usize
    }
}

/// Replaces `${NAME}` (and `${NAME:-default}`) with environment variables, as go-zero's
/// `conf.UseEnv()` does with `$NAME`/`${NAME}` — but only the braced form (a `$` in a
/// password stays a `$`), `$${` for a literal `${`, an unset variable without a default is an
/// error (go-zero silently substitutes ""), and lines that are comments are left alone.
pub(crate) fn expand_env(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Expanded, ConfigError> {
    let mut out = String::with_capacity(text.len());
    let mut shifts = Vec::new();
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let line_no = index + 1;
        if line.trim_start().starts_with('#') || !line.contains('$') {
            out.push_str(line);
            continue;
        }
        let chars: Vec<char> = line.chars().collect();
        let mut i = 0;
        let mut expanded_col = 1;
        while i < chars.len() {
            let source_col = i + 1;
            if chars[i] == '$' && chars.get(i + 1) == Some(&'$') && chars.get(i + 2) == Some(&'{') {
                out.push_str("${");
                shifts.push(Shift {
                    line: line_no,
                    source_col,
                    expanded_col,
                    expanded_len: 2,
                    source_len: 3,
                });
                i += 3;
                expanded_col += 2;
                continue;
            }
            if chars[i] == '$' && chars.get(i + 1) == Some(&'{') {
                let error = |message: String| ConfigError {
                    file: None,
                    line: Some(line_no),
                    column: Some(source_col),
                    key: String::new(),
                    message,
                };
                let Some(close) = chars[i + 2..].iter().position(|&c| c == '}') else {
                    return Err(error("`${` without a closing `}`".to_owned()));
                };
                let inner: String = chars[i + 2..i + 2 + close].iter().collect();
                let (name, default) = match inner.split_once(":-") {
                    Some((name, default)) => (name, Some(default)),
                    None => (inner.as_str(), None),
                };
                let valid = name
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !valid {
                    return Err(error(format!(
                        "`${{{inner}}}`: not an environment variable name (write `$${{` for a literal `${{`)"
                    )));
                }
                let value = match (lookup(name), default) {
                    (Some(value), _) => value,
                    (None, Some(default)) => default.to_owned(),
                    (None, None) => {
                        return Err(error(format!(
                            "environment variable `{name}` is not set (write `${{{name}:-default}}` for a default)"
                        )));
                    }
                };
                if value.contains(['\n', '\r']) {
                    return Err(error(format!(
                        "environment variable `{name}` holds a line break"
                    )));
                }
                let expanded_len = value.chars().count();
                out.push_str(&value);
                let source_len = close + 3;
                shifts.push(Shift {
                    line: line_no,
                    source_col,
                    expanded_col,
                    expanded_len,
                    source_len,
                });
                i += source_len;
                expanded_col += expanded_len;
                continue;
            }
            out.push(chars[i]);
            i += 1;
            expanded_col += 1;
        }
    }
    Ok(Expanded { text: out, shifts })
}

/// A parse or validation error from `serde_norway`, as a [`ConfigError`] naming the key path
/// and the source position.
fn convert(error: &serde_norway::Error, expanded: &Expanded) -> ConfigError {
    let mut position = error.location().map(|l| (l.line(), l.column()));
    let mut message = error.to_string();
    if let Some((line, column)) = position {
        message = message.replacen(&format!(" at line {line} column {column}"), "", 1);
    }
    // `serde_norway` writes `Path.To[0].Key: message` for errors below the root.
    let mut key = String::new();
    if let Some((prefix, rest)) = message.split_once(": ")
        && !prefix.is_empty()
        && prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.[]-".contains(c))
    {
        key = prefix.to_owned();
        message = rest.to_owned();
    }
    let join = |key: &str, child: &str| {
        if key.is_empty() {
            child.to_owned()
        } else {
            format!("{key}.{child}")
        }
    };
    let raw = message.clone();
    if let Some(rest) = raw.strip_prefix(KEY_MARK)
        && let Some((child, text)) = rest.split_once("`: ")
    {
        // A validation error about a key below the mapping that raised it: point at that key.
        message = text.to_owned();
        if !child.is_empty() {
            key = join(&key, child);
            if let Some(found) = locate(&expanded.text, &key) {
                position = Some(found);
            }
        }
    } else if let Some(rest) = raw.strip_prefix("unknown field `")
        && let Some((field, expected)) = rest.split_once('`')
    {
        key = join(&key, field);
        let expected = expected.trim_start_matches(", ");
        message = if GO_ZERO_ONLY.contains(&field) {
            "unknown key: a go-zero setting this version of rzero does not support".to_owned()
        } else if expected.starts_with("expected") {
            format!("unknown key ({expected})")
        } else {
            "unknown key".to_owned()
        };
    } else if let Some(rest) = raw.strip_prefix("duplicate field `")
        && let Some((field, _)) = rest.split_once('`')
    {
        // Every occurrence, under either name, in the order written.
        let names = ALIASES
            .iter()
            .find(|(name, _)| *name == field)
            .map_or(vec![field], |(name, alias)| vec![*name, *alias]);
        let mut found: Vec<((usize, usize), &str)> = names
            .iter()
            .flat_map(|name| {
                let path = join(&key, name);
                (0..2).filter_map(move |nth| {
                    locate_nth(&expanded.text, &path, nth).map(|at| (at, *name))
                })
            })
            .collect();
        found.sort_unstable();
        let second = found.get(1).map_or(field, |(_, name)| *name);
        key = join(&key, second);
        message = match found.first() {
            Some(((line, _), first)) if *first != second => {
                format!("duplicate key: another name for {first} (line {line})")
            }
            Some(((line, _), _)) => format!("duplicate key (first on line {line})"),
            None => "duplicate key".to_owned(),
        };
        // Point at the second one: its key, on its line.
        if let Some(((line, _), _)) = found.get(1) {
            let line = *line;
            let indent = expanded
                .text
                .lines()
                .nth(line - 1)
                .map_or(0, |l| l.len() - l.trim_start_matches([' ', '-', '{']).len());
            position = Some((line, indent + 1));
        }
    } else if let Some(rest) = raw.strip_prefix("missing field `")
        && let Some((field, _)) = rest.split_once('`')
    {
        key = join(&key, field);
        message = "required key is missing".to_owned();
    }
    ConfigError {
        file: None,
        line: position.map(|(line, _)| line),
        column: position.map(|(line, column)| expanded.source_column(line, column)),
        key,
        message,
    }
}

/// One step of a key path.
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

/// `A.B[2].C` as steps.
fn steps(path: &str) -> Vec<Step<'_>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (name, mut indices) = match part.find('[') {
            Some(at) => (&part[..at], &part[at..]),
            None => (part, ""),
        };
        if !name.is_empty() {
            out.push(Step::Key(name));
        }
        while let Some(rest) = indices.strip_prefix('[') {
            let Some((index, after)) = rest.split_once(']') else {
                break;
            };
            if let Ok(index) = index.parse() {
                out.push(Step::Index(index));
            }
            indices = after;
        }
    }
    out
}

/// Marks the error a [`Probe`] raises on reaching its key.
const FOUND: &str = "\u{0}rzero-config-found\u{0}";

/// Line and column of the value at `path` in `text`, found by walking the document with a
/// visitor that fails on arrival (so the parser stamps its position on the error).
pub(crate) fn locate(text: &str, path: &str) -> Option<(usize, usize)> {
    locate_nth(text, path, 0)
}

/// [`locate`], for the `nth` (0-based) occurrence of the last key of `path` in its mapping
/// (a duplicated key).
fn locate_nth(text: &str, path: &str, nth: usize) -> Option<(usize, usize)> {
    let steps = steps(path);
    let deserializer = serde_norway::Deserializer::from_str(text);
    match (Probe {
        steps: &steps,
        skip: nth,
    })
    .deserialize(deserializer)
    {
        Err(error) if error.to_string().contains(FOUND) => {
            error.location().map(|l| (l.line(), l.column()))
        }
        _ => None,
    }
}

struct Probe<'a, 'p> {
    steps: &'p [Step<'a>],
    /// Occurrences of the last key to pass over.
    skip: usize,
}

impl<'de> DeserializeSeed<'de> for Probe<'_, '_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Probe<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("anything")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some((Step::Key(want), rest)) = self.steps.split_first() else {
            return self.arrive();
        };
        let mut skip = self.skip;
        while let Some(key) = map.next_key::<String>()? {
            if key == *want && rest.is_empty() && skip > 0 {
                skip -= 1;
                map.next_value::<IgnoredAny>()?;
            } else if key == *want {
                map.next_value_seed(Probe {
                    steps: rest,
                    skip: self.skip,
                })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Some((Step::Index(want), rest)) = self.steps.split_first() else {
            return self.arrive();
        };
        let mut index = 0;
        while index < *want {
            if seq.next_element::<IgnoredAny>()?.is_none() {
                return Ok(());
            }
            index += 1;
        }
        seq.next_element_seed(Probe {
            steps: rest,
            skip: self.skip,
        })?;
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.arrive()
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.arrive()
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.arrive()
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.arrive()
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.arrive()
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.arrive()
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.arrive()
    }
}

impl Probe<'_, '_> {
    fn arrive<E: de::Error>(&self) -> Result<(), E> {
        if self.steps.is_empty() {
            Err(E::custom(FOUND))
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_keys() {
        let text = "A: 1\nB:\n  C: [x, y]\n  D:\n    - E: 2\n    - E: 3\n";
        assert_eq!(locate(text, "A"), Some((1, 4)));
        assert_eq!(locate(text, "B.C"), Some((3, 6)));
        assert_eq!(locate(text, "B.C[1]"), Some((3, 10)));
        assert_eq!(locate(text, "B.D[1].E"), Some((6, 10)));
        assert_eq!(locate(text, "B.X"), None);
    }

    #[test]
    fn expands_env() {
        let env = |name: &str| match name {
            "HOST" => Some("10.0.0.7".to_owned()),
            "LONG" => Some("a-very-long-value".to_owned()),
            _ => None,
        };
        let e = expand_env(
            "A: ${HOST}:8080\nB: ${NOPE:-x} $${HOST} pa$s\n# ${NOPE}\n",
            env,
        )
        .unwrap();
        assert_eq!(e.text, "A: 10.0.0.7:8080\nB: x ${HOST} pa$s\n# ${NOPE}\n");
        // Columns after a replacement map back to the source.
        let e = expand_env("X: ${LONG} bad", env).unwrap();
        assert_eq!(e.source_column(1, 4), 4);
        assert_eq!(e.source_column(1, 10), 4);
        assert_eq!(e.source_column(1, 22), 12);

        let error = expand_env("A: 1\nB: x${NOPE}\n", env).unwrap_err();
        assert_eq!((error.line, error.column), (Some(2), Some(5)));
        assert!(error.message.contains("`NOPE` is not set"), "{error}");
        assert!(expand_env("A: ${1X}", env).is_err());
        assert!(expand_env("A: ${HOST", env).is_err());
    }
}
