//! Retries of `UNAVAILABLE` calls: exponential back-off with jitter, bounded by the call's
//! deadline and by a retry budget (gRPC's retry throttling: every failure costs a token, every
//! success earns back a tenth of one, and retries stop while fewer than half the tokens are
//! left), so a struggling service is not buried under retries.
//!
//! Only calls that are safe to send twice are retried: methods the `.proto` marks
//! `idempotency_level = IDEMPOTENT` or `NO_SIDE_EFFECTS` (or that the policy names), and only
//! with a single request message, which is kept for the next attempt. Calls that never left
//! (refused connections) are re-sent by the balancer for every method, retries or not.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use crate::balance::rng::Rng;
use crate::method::MethodDescriptor;

/// When and how often to retry `UNAVAILABLE` calls: exponential back-off with jitter, bounded
/// by the call's deadline and by a retry budget (gRPC's retry throttling).
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    max_attempts: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
    methods: HashSet<String>,
    budget_tokens: f64,
    budget_ratio: f64,
}

impl Default for RetryPolicy {
    /// Three attempts, back-off 50 ms doubling to 1 s with ±20 % jitter, a budget of 10
    /// tokens earning back 0.1 per success: gRPC's retry-throttling defaults.
    fn default() -> Self {
        Self {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(1),
            methods: HashSet::new(),
            budget_tokens: 10.0,
            budget_ratio: 0.1,
        }
    }
}

impl RetryPolicy {
    /// Attempts in all, the first included (at least 1).
    #[must_use]
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// Back-off before the first retry, doubled for each next one up to `max`.
    #[must_use]
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max.max(initial);
        self
    }

    /// Also retries the method at `path` (`/pkg.Service/Method`), which the `.proto` does not
    /// mark idempotent: you vouch that it is safe.
    #[must_use]
    pub fn method(mut self, path: impl Into<String>) -> Self {
        self.methods.insert(path.into());
        self
    }

    pub(crate) fn max_attempts_count(&self) -> u32 {
        self.max_attempts
    }

    pub(crate) fn applies_to(&self, method: &MethodDescriptor) -> bool {
        !method.kind().client_streaming()
            && (method.idempotent() || self.methods.contains(method.path()))
    }
}

/// A policy in use by a client: its budget and random source.
#[derive(Debug)]
pub(crate) struct Retrier {
    pub(crate) policy: RetryPolicy,
    tokens: Mutex<f64>,
    rng: Rng,
}

impl Retrier {
    pub(crate) fn new(policy: RetryPolicy) -> Self {
        Self {
            tokens: Mutex::new(policy.budget_tokens),
            policy,
            rng: Rng::from_entropy(),
        }
    }

    /// Records an attempt's outcome in the budget.
    pub(crate) fn record(&self, success: bool) {
        let mut tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        *tokens = if success {
            (*tokens + self.policy.budget_ratio).min(self.policy.budget_tokens)
        } else {
            (*tokens - 1.0).max(0.0)
        };
    }

    /// The wait before retry number `retry` (1-based), or `None` when the budget says stop.
    pub(crate) fn backoff(&self, retry: u32) -> Option<Duration> {
        let tokens = *self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        if tokens <= self.policy.budget_tokens / 2.0 {
            return None;
        }
        let base = self
            .policy
            .initial_backoff
            .saturating_mul(1 << retry.saturating_sub(1).min(20))
            .min(self.policy.max_backoff);
        // ±20 %, so clients that failed together do not retry together.
        let jitter = 0.8 + 0.4 * (self.rng.next_u64() as f64 / u64::MAX as f64);
        Some(base.mul_f64(jitter))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_the_budget_stops_retries() {
        let retrier = Retrier::new(RetryPolicy::default());
        let first = retrier.backoff(1).unwrap();
        assert!(first >= Duration::from_millis(40) && first <= Duration::from_millis(60));
        let third = retrier.backoff(3).unwrap();
        assert!(third >= Duration::from_millis(160) && third <= Duration::from_millis(240));
        let late = retrier.backoff(10).unwrap();
        assert!(late <= Duration::from_millis(1200));
        // Five failures leave 5 of 10 tokens: no more retries.
        for _ in 0..5 {
            retrier.record(false);
        }
        assert_eq!(retrier.backoff(1), None);
        // Successes earn it back, a tenth at a time.
        for _ in 0..11 {
            retrier.record(true);
        }
        assert!(retrier.backoff(1).is_some());
    }
}
