//! The circuit breaker: Google SRE client-side adaptive throttling, with go-zero's tuning
//! (`core/breaker/googlebreaker.go`, 2024 version).
//!
//! Each breaker keeps, over a rolling 10 s window of 40 buckets (current bucket included),
//! how many calls succeeded, failed, or were dropped by the breaker itself. A call is
//! refused with probability
//!
//! ```text
//! w         = K - (K - MIN_K) * failing_buckets / BUCKETS      (1.5 → 1.1 as failure persists)
//! dropRatio = (total - PROTECTION - max(w, MIN_K) * accepts) / (total + 1)
//! dropRatio *= (BUCKETS - working_buckets) / BUCKETS             (once dropRatio > 0)
//! ```
//!
//! where `failing_buckets` counts the newest buckets in a row that saw failures and no
//! success, and `working_buckets` the newest in a row that saw successes and no failure
//! (buckets with neither leave both streaks alone). While the ratio is positive, a call is
//! let through anyway when none passed for 1 s (a probe, so that a recovered
//! backend is noticed even when nearly everything is dropped).
//!
//! There is no "open"/"closed" state to get stuck in (go-zero #4101): the drop probability
//! falls as soon as calls succeed again, and reaches zero when the failures leave the window.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tonic::{Code, Status};

use super::window::{Clock, RollingWindow, SystemClock};
use crate::balance::rng::Rng;

/// Length of the rolling window.
const WINDOW: Duration = Duration::from_secs(10);
/// Buckets in the window (250 ms each).
const BUCKETS: u32 = 40;
/// How many failures per success the SRE formula tolerates before dropping (its `K`).
const K: f64 = 1.5;
/// The floor `K` falls to as failing buckets pile up, so a persistent failure trips sooner.
const MIN_K: f64 = 1.1;
/// Calls in the window that are never dropped for, so a handful of failures on a quiet
/// method does not trip it.
const PROTECTION: f64 = 5.0;
/// With the ratio positive, let one call through when none passed for this long.
const FORCE_PASS: Duration = Duration::from_secs(1);

/// The codes that count as failures by default: go-zero's (`codes.Acceptable` false). Any
/// other outcome, errors such as `NOT_FOUND` or `INVALID_ARGUMENT` included, shows the
/// backend is answering and counts as a success.
pub const DEFAULT_FAILURE_CODES: [Code; 6] = [
    Code::DeadlineExceeded,
    Code::Internal,
    Code::Unavailable,
    Code::DataLoss,
    Code::Unimplemented,
    Code::ResourceExhausted,
];

/// Settings for circuit breakers: one per method on a server
/// ([`ServerBuilder::breaker`](crate::ServerBuilder::breaker)), one per method of the
/// target on a client ([`ClientBuilder::breaker`](crate::client::ClientBuilder::breaker)).
/// See the [module docs](super) for the algorithm. Refused calls end with `UNAVAILABLE`
/// ("circuit breaker is open").
///
/// ```
/// use rzero::protection::Breaker;
/// let breaker = Breaker::new().failure_codes([rzero::Code::Unavailable]);
/// # let _ = breaker;
/// ```
#[derive(Clone)]
#[must_use]
pub struct Breaker {
    failure_codes: CodeSet,
    seed: Option<u64>,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for Breaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Breaker")
            .field("failure_codes", &self.failure_codes)
            .field("seed", &self.seed)
            .field("clock", &self.clock)
            .finish()
    }
}

impl Default for Breaker {
    fn default() -> Self {
        Self::new()
    }
}

impl Breaker {
    /// go-zero's breaker: failures are [`DEFAULT_FAILURE_CODES`].
    pub fn new() -> Self {
        Self {
            failure_codes: CodeSet::of(DEFAULT_FAILURE_CODES),
            seed: None,
            clock: Arc::new(SystemClock),
        }
    }

    /// The status codes that count as failures (replacing the default list).
    pub fn failure_codes(mut self, codes: impl IntoIterator<Item = Code>) -> Self {
        self.failure_codes = CodeSet::of(codes);
        self
    }

    /// Seeds the random choice of which calls to drop (default: random), so a test sees
    /// the same drops every run.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Reads time from `clock` instead of the system's (tests: a
    /// [`ManualClock`](super::ManualClock)).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }
}

/// A set of status codes, as bits.
#[derive(Clone, Copy, PartialEq, Eq)]
struct CodeSet(u32);

impl CodeSet {
    fn of(codes: impl IntoIterator<Item = Code>) -> Self {
        Self(
            codes
                .into_iter()
                .fold(0, |set, code| set | 1 << code as u32),
        )
    }

    fn contains(self, code: Code) -> bool {
        self.0 & 1 << code as u32 != 0
    }
}

impl fmt::Debug for CodeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries((0..17).map(Code::from_i32).filter(|c| self.contains(*c)))
            .finish()
    }
}

/// The breakers of one server or one client, by method path, created on first use.
#[derive(Debug)]
pub(crate) struct Breakers {
    settings: Breaker,
    rng: Rng,
    by_method: Mutex<HashMap<&'static str, Arc<GoogleBreaker>>>,
}

impl Breakers {
    pub(crate) fn new(settings: Breaker) -> Self {
        let rng = match settings.seed {
            Some(seed) => Rng::new(seed),
            None => Rng::from_entropy(),
        };
        Self {
            settings,
            rng,
            by_method: Mutex::default(),
        }
    }

    /// Lets a call of `method` through, or refuses it with `UNAVAILABLE`.
    pub(crate) fn admit(&self, method: &'static str) -> Result<BreakerPass, Status> {
        let breaker = {
            let mut by_method = self.by_method.lock().unwrap_or_else(|p| p.into_inner());
            Arc::clone(by_method.entry(method).or_default())
        };
        let now = self.settings.clock.now();
        if breaker.accept(now, &self.rng) {
            Ok(BreakerPass {
                breaker,
                clock: Arc::clone(&self.settings.clock),
                failure_codes: self.settings.failure_codes,
            })
        } else {
            Err(Status::unavailable(format!(
                "circuit breaker is open for {method}: too many recent calls failed, \
                 so calls are refused for a while"
            )))
        }
    }
}

/// A call the breaker let through; record its outcome with [`finish`](Self::finish).
#[derive(Debug)]
pub(crate) struct BreakerPass {
    breaker: Arc<GoogleBreaker>,
    clock: Arc<dyn Clock>,
    failure_codes: CodeSet,
}

impl BreakerPass {
    pub(crate) fn finish(self, code: Code) {
        let outcome = if self.failure_codes.contains(code) {
            Outcome::Failure
        } else {
            Outcome::Success
        };
        self.breaker.record(self.clock.now(), outcome);
    }
}

#[derive(Debug, Clone, Copy)]
enum Outcome {
    Success,
    Failure,
    Drop,
}

/// One bucket's calls; drops count in `sum` too.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    sum: u64,
    success: u64,
    failure: u64,
}

/// What the drop ratio is computed from.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct History {
    accepts: u64,
    total: u64,
    failing_buckets: u32,
    working_buckets: u32,
}

/// One breaker (one method).
#[derive(Debug)]
struct GoogleBreaker {
    state: Mutex<BreakerState>,
}

#[derive(Debug)]
struct BreakerState {
    window: RollingWindow<Counts>,
    /// When a call last passed while the ratio was positive (go-zero's `lastPass`).
    last_pass: Option<Duration>,
}

impl Default for GoogleBreaker {
    fn default() -> Self {
        Self {
            state: Mutex::new(BreakerState {
                window: RollingWindow::new(BUCKETS as usize, WINDOW / BUCKETS),
                last_pass: None,
            }),
        }
    }
}

impl GoogleBreaker {
    fn lock(&self) -> std::sync::MutexGuard<'_, BreakerState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a call may pass now; a refusal is recorded as a drop.
    fn accept(&self, now: Duration, rng: &Rng) -> bool {
        let mut state = self.lock();
        let history = state.history(now);
        let ratio = drop_ratio(history);
        if ratio <= 0.0 {
            return true;
        }
        if state
            .last_pass
            .is_some_and(|last| now.saturating_sub(last) > FORCE_PASS)
        {
            state.last_pass = Some(now);
            return true;
        }
        if rng.chance(scale_by_working(ratio, history.working_buckets)) {
            state.record(now, Outcome::Drop);
            return false;
        }
        state.last_pass = Some(now);
        true
    }

    fn record(&self, now: Duration, outcome: Outcome) {
        self.lock().record(now, outcome);
    }
}

impl BreakerState {
    fn record(&mut self, now: Duration, outcome: Outcome) {
        self.window.add(now, |counts| {
            counts.sum += 1;
            match outcome {
                Outcome::Success => counts.success += 1,
                Outcome::Failure => counts.failure += 1,
                Outcome::Drop => {}
            }
        });
    }

    fn history(&self, now: Duration) -> History {
        let mut history = History::default();
        self.window.reduce(now, false, |counts| {
            history.accepts += counts.success;
            history.total += counts.sum;
            if counts.failure > 0 {
                history.working_buckets = 0;
            } else if counts.success > 0 {
                history.working_buckets += 1;
            }
            if counts.success > 0 {
                history.failing_buckets = 0;
            } else if counts.failure > 0 {
                history.failing_buckets += 1;
            }
        });
        history
    }
}

/// The SRE formula with go-zero's falling `K`; positive means "drop some".
fn drop_ratio(history: History) -> f64 {
    let w = K - (K - MIN_K) * f64::from(history.failing_buckets) / f64::from(BUCKETS);
    let weighted_accepts = w.max(MIN_K) * history.accepts as f64;
    (history.total as f64 - PROTECTION - weighted_accepts) / (history.total as f64 + 1.0)
}

/// Recovers faster after consecutive good buckets.
fn scale_by_working(ratio: f64, working_buckets: u32) -> f64 {
    ratio * f64::from(BUCKETS - working_buckets.min(BUCKETS)) / f64::from(BUCKETS)
}

impl Rng {
    /// True with probability `p`.
    pub(crate) fn chance(&self, p: f64) -> bool {
        // 53 random bits make a uniform f64 in [0, 1).
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protection::ManualClock;

    fn history(accepts: u64, total: u64, failing_buckets: u32, working_buckets: u32) -> History {
        History {
            accepts,
            total,
            failing_buckets,
            working_buckets,
        }
    }

    #[test]
    fn drop_ratio_follows_go_zero() {
        // (history, ratio before the working-bucket scaling, after it)
        let table = [
            // Fewer than PROTECTION calls, all failed: never dropped (go-zero's "self protection").
            (history(0, 4, 1, 0), -0.2, None),
            (history(10, 10, 0, 1), -10.0 / 11.0, None),
            // 10 failures in one bucket: w = 1.5 - 0.4/40 = 1.49, no accepts.
            (history(0, 10, 1, 0), 5.0 / 11.0, Some(5.0 / 11.0)),
            // 5 of 20 accepted, failures not persistent: K = 1.5.
            (history(5, 20, 0, 0), 7.5 / 21.0, Some(7.5 / 21.0)),
            // Failures in half the buckets: w = 1.3.
            (history(5, 20, 20, 0), 8.5 / 21.0, Some(8.5 / 21.0)),
            // Failures in every bucket: w at its floor 1.1.
            (history(5, 20, 40, 0), 9.5 / 21.0, Some(9.5 / 21.0)),
            // 10 good buckets in a row: a quarter less.
            (history(5, 20, 0, 10), 7.5 / 21.0, Some(7.5 / 21.0 * 0.75)),
            (history(5, 20, 0, 40), 7.5 / 21.0, Some(0.0)),
        ];
        for (history, ratio, scaled) in table {
            let got = drop_ratio(history);
            assert!((got - ratio).abs() < 1e-12, "{history:?}: {got} != {ratio}");
            if let Some(scaled) = scaled {
                let got = scale_by_working(got, history.working_buckets);
                assert!(
                    (got - scaled).abs() < 1e-12,
                    "{history:?}: {got} != {scaled}"
                );
            }
        }
    }

    const BUCKET: Duration = Duration::from_millis(250);

    #[test]
    fn history_counts_failing_and_working_streaks() {
        let state = |buckets: &[&[Outcome]]| {
            let mut state = BreakerState {
                window: RollingWindow::new(BUCKETS as usize, WINDOW / BUCKETS),
                last_pass: None,
            };
            let mut now = Duration::ZERO;
            for bucket in buckets {
                for outcome in *bucket {
                    state.record(now, *outcome);
                }
                now += BUCKET;
            }
            state.history(now - BUCKET)
        };
        use Outcome::{Drop as D, Failure as F, Success as S};
        assert_eq!(state(&[&[S], &[F], &[F, D]]), history(1, 4, 2, 0));
        assert_eq!(state(&[&[F], &[S], &[S, S]]), history(3, 4, 0, 2));
        // A bucket with both resets both streaks; empty and drop-only buckets keep them.
        assert_eq!(state(&[&[S], &[S, F]]), history(2, 3, 0, 0));
        assert_eq!(state(&[&[F], &[], &[D], &[F]]), history(0, 3, 2, 0));
        assert_eq!(state(&[&[S], &[], &[S]]), history(2, 2, 0, 2));
    }

    fn breakers(clock: &ManualClock) -> Breakers {
        Breakers::new(Breaker::new().seed(7).clock(clock.clone()))
    }

    fn fail(breakers: &Breakers, method: &'static str, calls: usize) {
        for _ in 0..calls {
            if let Ok(pass) = breakers.admit(method) {
                pass.finish(Code::Unavailable);
            }
        }
    }

    #[test]
    fn a_few_failures_are_tolerated() {
        let clock = ManualClock::new();
        let breakers = breakers(&clock);
        fail(&breakers, "/a.S/M", 5);
        assert!(breakers.admit("/a.S/M").is_ok());
    }

    #[test]
    fn opens_under_failures_per_method_and_closes_when_they_leave_the_window() {
        let clock = ManualClock::new();
        let breakers = breakers(&clock);
        fail(&breakers, "/a.S/Broken", 100);
        let dropped = (0..100)
            .filter(|_| breakers.admit("/a.S/Broken").is_err())
            .count();
        assert!(dropped > 90, "only {dropped} of 100 dropped");
        let refusal = breakers.admit("/a.S/Broken").unwrap_err();
        assert_eq!(refusal.code(), Code::Unavailable);
        assert!(refusal.message().contains("circuit breaker is open"));
        // Another method has a breaker of its own.
        assert!(breakers.admit("/a.S/Fine").is_ok());
        // Errors that show the backend answering are successes.
        let pass = breakers.admit("/a.S/Fine").unwrap();
        pass.finish(Code::NotFound);
        // Once the failures are older than the window, everything passes.
        clock.advance(WINDOW + BUCKET);
        assert!((0..100).all(|_| breakers.admit("/a.S/Broken").is_ok()));
    }

    #[test]
    fn lets_a_probe_through_after_a_second_without_passes() {
        let clock = ManualClock::new();
        let breakers = breakers(&clock);
        fail(&breakers, "/a.S/M", 1000);
        // Nearly everything is dropped now; a second later one call is forced through.
        clock.advance(FORCE_PASS + Duration::from_millis(1));
        assert!(breakers.admit("/a.S/M").is_ok());
    }

    #[test]
    fn failure_codes_are_configurable() {
        let clock = ManualClock::new();
        let breakers = Breakers::new(
            Breaker::new()
                .seed(1)
                .clock(clock.clone())
                .failure_codes([]),
        );
        fail(&breakers, "/a.S/M", 200);
        assert!((0..100).all(|_| breakers.admit("/a.S/M").is_ok()));
    }
}
