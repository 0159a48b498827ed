//! Reading values: durations in go-zero's units, validated strings, and the key-path error
//! convention the loader turns into `file:line:column: Key.Path: message`.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};

/// A validation failure about `key` (relative to the mapping being read), raised from a
/// `Deserialize` impl. Rendered as ``key `Etcd.Hosts`: message`` so that the loader can find
/// the key's line, and so that it still reads well through plain `serde_norway`.
pub(crate) fn invalid<E: de::Error>(key: &str, message: impl fmt::Display) -> E {
    E::custom(format_args!("{KEY_MARK}{key}`: {message}"))
}

/// What starts a message made by [`invalid`].
pub(crate) const KEY_MARK: &str = "key `";

/// Parses a Go duration (`time.ParseDuration`): a sequence of decimal numbers with units
/// `ns`, `us` (or `µs`), `ms`, `s`, `m`, `h`, e.g. `300ms`, `1.5s`, `1h2m`. `0` alone is zero.
pub(crate) fn parse_go_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err("empty duration".to_owned());
    }
    if s.starts_with('-') {
        return Err(format!("negative duration `{text}`"));
    }
    let s = s.strip_prefix('+').unwrap_or(s);
    let mut rest = s;
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..number_len];
        if number.is_empty() || number == "." {
            return Err(format!(
                "invalid duration `{text}` (expected e.g. `500ms`, `2s`, `1m30s`)"
            ));
        }
        let value: f64 = number
            .parse()
            .map_err(|_| format!("invalid number `{number}` in duration `{text}`"))?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        let nanos = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => {
                return Err(format!(
                    "duration `{text}` needs a unit (ns, us, ms, s, m, h), e.g. `{number}s`"
                ));
            }
            other => {
                return Err(format!(
                    "unknown unit `{other}` in duration `{text}` (use ns, us, ms, s, m, h)"
                ));
            }
        };
        total += value * nanos;
        rest = &rest[unit_len..];
    }
    // Bounded so that the conversion below cannot overflow: ~292 years.
    if !total.is_finite() || total > u64::MAX as f64 {
        return Err(format!("duration `{text}` is too long"));
    }
    Ok(Duration::from_nanos(total.round() as u64))
}

/// How a bare integer is read where a duration is expected.
#[derive(Clone, Copy)]
enum Bare {
    /// As milliseconds (go-zero's `Timeout: 2000`).
    Millis,
    /// As seconds (etcd's lease TTL).
    Seconds,
    /// Refused unless 0: go-zero's `time.Duration` fields read a bare number as nanoseconds,
    /// which nobody means (`KeepaliveTime: 20000` is 20 µs there).
    Refused,
}

struct DurationVisitor(Bare);

impl Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Bare::Millis => f.write_str("milliseconds or a duration such as `2s`"),
            Bare::Seconds => f.write_str("seconds or a duration such as `10s`"),
            Bare::Refused => f.write_str("a duration with a unit, such as `500ms` or `2s`"),
        }
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Duration, E> {
        match self.0 {
            Bare::Millis => Ok(Duration::from_millis(value)),
            Bare::Seconds => Ok(Duration::from_secs(value)),
            Bare::Refused if value == 0 => Ok(Duration::ZERO),
            Bare::Refused => Err(E::custom(format_args!(
                "a bare number is ambiguous here (go-zero reads it as nanoseconds); \
                 write the unit, e.g. `{value}ms` or `{value}s`"
            ))),
        }
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Duration, E> {
        match u64::try_from(value) {
            Ok(value) => self.visit_u64(value),
            Err(_) => Err(E::custom(format_args!("negative duration `{value}`"))),
        }
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Duration, E> {
        Err(E::custom(format_args!(
            "`{value}`: write a whole number or a duration with a unit, e.g. `1500ms`"
        )))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Duration, E> {
        // A number in quotes is still a number.
        if let Ok(number) = value.trim().parse::<u64>() {
            return self.visit_u64(number);
        }
        parse_go_duration(value).map_err(E::custom)
    }
}

/// go-zero's `Timeout`: milliseconds, or (rzero extension) a duration string.
pub(crate) fn millis<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    d.deserialize_any(DurationVisitor(Bare::Millis))
}

/// A Go `time.Duration` field: a duration string; a bare number is refused (except 0).
pub(crate) fn go_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    d.deserialize_any(DurationVisitor(Bare::Refused))
}

/// A Go `time.Duration` field that must be more than 0 (`what_zero_means` ends the message
/// refusing 0), checked where the value stands so that the error points at it.
pub(crate) fn positive_go_duration<'de, D: Deserializer<'de>>(
    d: D,
    what_zero_means: &'static str,
) -> Result<Duration, D::Error> {
    struct Positive(&'static str);
    impl Positive {
        fn check<E: de::Error>(&self, value: Result<Duration, E>) -> Result<Duration, E> {
            match value {
                Ok(value) if value.is_zero() => {
                    Err(E::custom(format_args!("must be more than 0 ({})", self.0)))
                }
                other => other,
            }
        }
    }
    impl Visitor<'_> for Positive {
        type Value = Duration;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            DurationVisitor(Bare::Refused).expecting(f)
        }
        fn visit_u64<E: de::Error>(self, value: u64) -> Result<Duration, E> {
            self.check(DurationVisitor(Bare::Refused).visit_u64(value))
        }
        fn visit_i64<E: de::Error>(self, value: i64) -> Result<Duration, E> {
            self.check(DurationVisitor(Bare::Refused).visit_i64(value))
        }
        fn visit_f64<E: de::Error>(self, value: f64) -> Result<Duration, E> {
            DurationVisitor(Bare::Refused).visit_f64(value)
        }
        fn visit_str<E: de::Error>(self, value: &str) -> Result<Duration, E> {
            self.check(DurationVisitor(Bare::Refused).visit_str(value))
        }
    }
    d.deserialize_any(Positive(what_zero_means))
}

/// [`go_duration`], optional.
pub(crate) fn opt_go_duration<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Duration>, D::Error> {
    go_duration(d).map(Some)
}

/// A lease TTL: whole seconds, or a duration string.
pub(crate) fn opt_seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    d.deserialize_any(DurationVisitor(Bare::Seconds)).map(Some)
}

/// A string or an integer, as a string (go-zero's `ID` is an `int64`; rzero's ids are text).
pub(crate) fn opt_string_or_int<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<String>, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = String;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string or an integer")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
            if v.is_empty() {
                return Err(E::custom("empty"));
            }
            Ok(v.to_owned())
        }
    }
    d.deserialize_any(V).map(Some)
}

/// Checks a `host:port` address: a host, then a port number.
pub(crate) fn check_host_port(addr: &str) -> Result<(), String> {
    let Some((host, port)) = addr.rsplit_once(':') else {
        return Err(format!("`{addr}`: expected `host:port`"));
    };
    if host.is_empty() {
        return Err(format!(
            "`{addr}`: no host (write `0.0.0.0:{port}` to listen everywhere)"
        ));
    }
    if addr
        .chars()
        .any(|c| c.is_whitespace() || c == ',' || c == '/')
    {
        return Err(format!("`{addr}`: expected one `host:port`"));
    }
    if port.parse::<u16>().is_err() {
        return Err(format!("`{addr}`: `{port}` is not a port number"));
    }
    Ok(())
}

/// Reads a string and parses it inside the visitor, so that an error carries the position
/// and key path of the value itself (an error raised after `String::deserialize` returns
/// would be stamped with the enclosing mapping's).
pub(crate) struct Parse<T>(
    pub(crate) fn(&str) -> Result<T, String>,
    pub(crate) &'static str,
);

impl<T> Visitor<'_> for Parse<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.1)
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<T, E> {
        (self.0)(value).map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<T, E> {
        self.visit_str(&value.to_string())
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<T, E> {
        self.visit_str(&value.to_string())
    }
}

/// A `host:port`.
pub(crate) fn host_port<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    d.deserialize_str(Parse(
        |addr| check_host_port(addr).map(|()| addr.to_owned()),
        "`host:port`",
    ))
}

/// A non-empty list of `host:port`.
pub(crate) fn host_ports<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a sequence of `host:port`")
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
            let mut list = Vec::new();
            while let Some(HostPort(addr)) = seq.next_element()? {
                list.push(addr);
            }
            if list.is_empty() {
                return Err(de::Error::custom(
                    "empty list: give at least one `host:port`",
                ));
            }
            Ok(list)
        }
    }
    d.deserialize_seq(V)
}

/// A `host:port`, checked where it stands (so an error points at the bad item).
struct HostPort(String);

impl<'de> serde::Deserialize<'de> for HostPort {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        host_port(d).map(HostPort)
    }
}

/// A non-empty string.
pub(crate) fn non_empty<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    d.deserialize_str(Parse(
        |value| {
            if value.trim().is_empty() {
                Err("empty".to_owned())
            } else {
                Ok(value.to_owned())
            }
        },
        "a non-empty string",
    ))
}

/// Reads a list of strings written either as a YAML sequence or as one string of items
/// separated by commas, so that one `${VAR}` can hold the whole list. Items of a string are
/// checked by `.0` here, where the error can point at the string; `.1` says what an item
/// is.
#[cfg(any(feature = "gateway", feature = "grpc-web"))]
pub(crate) struct Items(
    pub(crate) fn(&str) -> Result<(), String>,
    pub(crate) &'static str,
);

#[cfg(any(feature = "gateway", feature = "grpc-web"))]
impl<'de> Visitor<'de> for Items {
    type Value = Vec<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a sequence of {}, or one string of them separated by commas",
            self.1
        )
    }

    /// The items are checked by the config's `check`, which points at the one at fault.
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
        let mut list = Vec::new();
        while let Some(item) = seq.next_element::<String>()? {
            list.push(item);
        }
        Ok(list)
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Vec<String>, E> {
        if value.trim().is_empty() {
            return Ok(Vec::new());
        }
        value
            .split(',')
            .map(str::trim)
            .map(|item| {
                if item.is_empty() {
                    return Err(E::custom(format_args!("`{value}`: an empty item")));
                }
                (self.0)(item).map_err(E::custom)?;
                Ok(item.to_owned())
            })
            .collect()
    }
}

/// The value of a key that belongs to a cargo feature this build of rzero was compiled
/// without: never read, since any value is refused with an error naming the feature (the
/// key is not "unknown": the config is right, the build is not).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CompiledOut;

/// Refuses the value of a key of `feature`, which this build lacks.
#[cfg_attr(
    all(feature = "tls", feature = "gateway", feature = "grpc-web"),
    allow(dead_code)
)]
pub(crate) fn compiled_out<'de, D: Deserializer<'de>>(
    d: D,
    feature: &'static str,
) -> Result<CompiledOut, D::Error> {
    /// Fails on whatever it sees, from inside the parser, which then stamps the error with
    /// the value's key path and position.
    struct Refuse(&'static str);
    impl Refuse {
        fn error<E: de::Error>(&self) -> Result<CompiledOut, E> {
            Err(E::custom(format_args!(
                "this rzero was built without its `{}` feature",
                self.0
            )))
        }
    }
    impl<'de> Visitor<'de> for Refuse {
        type Value = CompiledOut;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "nothing (the `{}` feature is off)", self.0)
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<CompiledOut, E> {
            self.error()
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<CompiledOut, E> {
            self.error()
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<CompiledOut, E> {
            self.error()
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<CompiledOut, E> {
            self.error()
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<CompiledOut, E> {
            self.error()
        }
        fn visit_unit<E: de::Error>(self) -> Result<CompiledOut, E> {
            self.error()
        }
        fn visit_map<A: de::MapAccess<'de>>(self, _: A) -> Result<CompiledOut, A::Error> {
            self.error()
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<CompiledOut, A::Error> {
            self.error()
        }
    }
    d.deserialize_any(Refuse(feature))
}

/// `Tls` in a build without the `tls` feature.
#[cfg(not(feature = "tls"))]
pub(crate) fn no_tls<'de, D: Deserializer<'de>>(d: D) -> Result<CompiledOut, D::Error> {
    compiled_out(d, "tls")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        let ok = [
            ("0", Duration::ZERO),
            ("2s", Duration::from_secs(2)),
            ("1500ms", Duration::from_millis(1500)),
            ("1.5s", Duration::from_millis(1500)),
            ("1m30s", Duration::from_secs(90)),
            ("1h", Duration::from_secs(3600)),
            ("250us", Duration::from_micros(250)),
            ("10ns", Duration::from_nanos(10)),
        ];
        for (text, expected) in ok {
            assert_eq!(parse_go_duration(text), Ok(expected), "{text}");
        }
        for bad in ["", "s", "2", "2x", "-1s", "1.2.3s", ".s"] {
            assert!(parse_go_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn host_ports() {
        for ok in ["127.0.0.1:8080", "0.0.0.0:0", "[::1]:9", "etcd.local:2379"] {
            assert_eq!(check_host_port(ok), Ok(()), "{ok}");
        }
        for bad in ["8080", ":8080", "h:port", "h:70000", "a:1,b:2", "h :1"] {
            assert!(check_host_port(bad).is_err(), "{bad}");
        }
    }
}
