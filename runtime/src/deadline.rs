//! Deadlines: how long a call may take, carried as `grpc-timeout` and propagated.
//!
//! A server runs each handler with the call's deadline in scope, and rzero clients used from
//! that handler (on the same task) send at most the time that remains: a call made with 300 ms
//! left is sent with `grpc-timeout` of at most 300 ms, whatever its own setting, so a chain of
//! calls gives up together instead of leaving work running for a caller that has gone
//! (go-zero users hit this as cascading 2 s timeouts). Work spawned onto other tasks does not
//! inherit the deadline; pass [`remaining`] along explicitly there.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

tokio::task_local! {
    static DEADLINE: Instant;
}

/// Time left before the deadline of the call being handled on this task, if it has one.
pub fn remaining() -> Option<Duration> {
    DEADLINE
        .try_with(|deadline| deadline.saturating_duration_since(Instant::now()))
        .ok()
}

/// Runs `future` with `deadline` as the current call's deadline.
pub(crate) fn scope<F: Future>(deadline: Instant, future: F) -> impl Future<Output = F::Output> {
    DEADLINE.scope(deadline, future)
}

/// `grpc-timeout` as a header name: looking a header up by a `&str` parses and validates
/// the name on every call, a measurable share of a small call.
pub(crate) const GRPC_TIMEOUT: http::HeaderName = http::HeaderName::from_static("grpc-timeout");

/// The `grpc-timeout` header.
pub(crate) fn parse_grpc_timeout(headers: &http::HeaderMap) -> Option<Duration> {
    parse_timeout(headers.get(GRPC_TIMEOUT)?.to_str().ok()?)
}

/// A `grpc-timeout` value, `{1-8 digits}{H|M|S|m|u|n}`.
pub(crate) fn parse_timeout(value: &str) -> Option<Duration> {
    let (digits, unit) = value.split_at_checked(value.len().checked_sub(1)?)?;
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount * 60 * 60),
        "M" => Duration::from_secs(amount * 60),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::parse_grpc_timeout;

    fn parse(value: &str) -> Option<Duration> {
        let mut headers = http::HeaderMap::new();
        headers.insert("grpc-timeout", value.parse().unwrap());
        parse_grpc_timeout(&headers)
    }

    #[test]
    fn grpc_timeout_header() {
        assert_eq!(parse("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(parse("3M"), Some(Duration::from_secs(180)));
        assert_eq!(parse("4S"), Some(Duration::from_secs(4)));
        assert_eq!(parse("299m"), Some(Duration::from_millis(299)));
        assert_eq!(parse("199987u"), Some(Duration::from_micros(199_987)));
        assert_eq!(parse("99999999n"), Some(Duration::from_nanos(99_999_999)));
        assert_eq!(
            parse("99999999H"),
            Some(Duration::from_secs(99_999_999 * 3600))
        );
        for bad in ["", "m", "123456789m", "-1m", "+1m", "1.5S", "10x", "10 m"] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
        assert_eq!(parse_grpc_timeout(&http::HeaderMap::new()), None);
    }

    #[tokio::test]
    async fn remaining_is_scoped_to_the_call() {
        assert_eq!(super::remaining(), None);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let left = super::scope(deadline, async { super::remaining() }).await;
        let left = left.expect("in scope");
        assert!(left <= Duration::from_secs(5) && left > Duration::from_secs(4));
        assert_eq!(super::remaining(), None);
    }
}
