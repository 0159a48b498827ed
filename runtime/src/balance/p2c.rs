//! go-zero's p2c_ewma, constant for constant (`zrpc/internal/balancer/p2c/p2c.go`): latency
//! and success EWMAs decayed over time, load = sqrt(latency) × (in-flight + 1), the less
//! loaded of two random endpoints, and a forced pick of the other when it has not been
//! picked for a second, so its numbers stay fresh.
//!
//! Unlike go-zero, the statistics live with the endpoint, not with a picker rebuilt on every
//! change, so adding or removing one endpoint does not forget what is known about the rest.
//! And a call's latency is counted from when its connection opened, if that was after the
//! call was sent (`Health::latency_start`): grpc-go picks only connected endpoints, so
//! go-zero never sees a handshake in its first sample, which it takes whole.

use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use super::rng::Rng;

/// Time constant of both EWMAs ("default value from finagle").
const DECAY: Duration = Duration::from_secs(10);
/// An endpoint not picked for this long is picked next time it is drawn, whatever its load.
const FORCE_PICK: Duration = Duration::from_secs(1);
/// Success EWMA of a new endpoint, on a 0..=1000 scale.
const INIT_SUCCESS: f64 = 1000.0;
/// At or under this success EWMA, an endpoint counts as unhealthy when drawing pairs.
const THROTTLE_SUCCESS: f64 = 500.0;
/// Load of an endpoint whose load computes to zero (cannot happen with the `+ 1`s).
const PENALTY: i64 = i32::MAX as i64;
/// Pairs drawn, at most, looking for two healthy endpoints.
const PICK_TIMES: usize = 3;

/// One endpoint's numbers.
#[derive(Debug)]
pub(crate) struct Stats {
    inflight: AtomicI64,
    ewma: Mutex<Ewma>,
}

#[derive(Debug)]
struct Ewma {
    /// Latency EWMA, nanoseconds; 0 until the first call completes.
    lag: f64,
    /// Success EWMA, 0..=1000.
    success: f64,
    /// When the last call completed (or the endpoint appeared).
    last: Instant,
    /// When the endpoint was last picked.
    pick: Instant,
}

impl Default for Stats {
    fn default() -> Self {
        let now = Instant::now();
        Self {
            inflight: AtomicI64::new(0),
            ewma: Mutex::new(Ewma {
                lag: 0.0,
                success: INIT_SUCCESS,
                last: now,
                pick: now,
            }),
        }
    }
}

impl Stats {
    fn ewma(&self) -> std::sync::MutexGuard<'_, Ewma> {
        // The numbers stay usable even if a panic interrupted an update.
        self.ewma
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `sqrt(lag + 1) * (inflight + 1)`.
    pub(crate) fn load(&self) -> i64 {
        let lag = self.ewma().lag;
        // Truncation is the formula's own (`int64(math.Sqrt(float64(lag + 1)))`).
        #[allow(clippy::cast_possible_truncation)]
        let load = ((lag + 1.0).sqrt() as i64)
            .saturating_mul(self.inflight.load(Ordering::Relaxed).saturating_add(1));
        if load == 0 { PENALTY } else { load }
    }

    pub(crate) fn healthy(&self) -> bool {
        self.ewma().success > THROTTLE_SUCCESS
    }

    /// A call starts on this endpoint.
    pub(crate) fn started(&self) {
        self.inflight.fetch_add(1, Ordering::Relaxed);
    }

    /// A call that started at `start` ended, well or badly.
    pub(crate) fn finished(&self, start: Instant, success: bool) {
        self.inflight.fetch_sub(1, Ordering::Relaxed);
        let now = Instant::now();
        let mut ewma = self.ewma();
        let since_last = now.saturating_duration_since(ewma.last);
        ewma.last = now;
        let mut weight = (-since_last.as_secs_f64() / DECAY.as_secs_f64()).exp();
        if ewma.lag == 0.0 {
            // The first sample replaces the initial value outright.
            weight = 0.0;
        }
        let lag = now.saturating_duration_since(start).as_nanos() as f64;
        ewma.lag = ewma.lag * weight + lag * (1.0 - weight);
        let success = if success { 1000.0 } else { 0.0 };
        ewma.success = ewma.success * weight + success * (1.0 - weight);
    }

    #[cfg(test)]
    pub(crate) fn inflight(&self) -> i64 {
        self.inflight.load(Ordering::Relaxed)
    }
}

/// Picks among `candidates` (indexes into the caller's list) by their `stats`.
pub(crate) fn pick(stats: &[&Stats], rng: &Rng) -> usize {
    match stats.len() {
        0 | 1 => 0,
        2 => choose(stats, 0, 1),
        n => {
            let (mut a, mut b) = (0, 1);
            for _ in 0..PICK_TIMES {
                a = rng.below(n);
                b = rng.below(n - 1);
                if b >= a {
                    b += 1;
                }
                if stats[a].healthy() && stats[b].healthy() {
                    break;
                }
            }
            choose(stats, a, b)
        }
    }
}

/// The less loaded of two, unless the other one is due for a forced pick.
fn choose(stats: &[&Stats], a: usize, b: usize) -> usize {
    let (better, worse) = if stats[a].load() <= stats[b].load() {
        (a, b)
    } else {
        (b, a)
    };
    let now = Instant::now();
    {
        let mut worse_ewma = stats[worse].ewma();
        if now.saturating_duration_since(worse_ewma.pick) > FORCE_PICK {
            worse_ewma.pick = now;
            return worse;
        }
    }
    stats[better].ewma().pick = now;
    better
}

#[cfg(test)]
mod tests {
    use super::*;

    fn completed(stats: &Stats, latency: Duration, success: bool) {
        stats.started();
        stats.finished(Instant::now() - latency, success);
    }

    #[test]
    fn first_sample_replaces_then_decays() {
        let stats = Stats::default();
        assert!(stats.healthy());
        completed(&stats, Duration::from_millis(100), false);
        // w = 0 on the first sample: success drops to 0 at once.
        assert!(!stats.healthy());
        let lag = stats.ewma().lag;
        assert!((95e6..150e6).contains(&lag), "{lag}");
        // Calls a moment apart barely move the EWMA (tau = 10 s).
        completed(&stats, Duration::from_millis(1), true);
        assert!(stats.ewma().lag > 90e6);
        assert_eq!(stats.inflight(), 0);
    }

    #[test]
    fn load_grows_with_latency_and_inflight() {
        let fast = Stats::default();
        let slow = Stats::default();
        completed(&fast, Duration::from_millis(1), true);
        completed(&slow, Duration::from_millis(100), true);
        assert!(fast.load() < slow.load());
        let idle = fast.load();
        fast.started();
        assert_eq!(fast.load(), idle * 2);
    }

    #[test]
    fn picks_the_less_loaded_of_two_unless_the_other_is_stale() {
        let fast = Stats::default();
        let slow = Stats::default();
        completed(&fast, Duration::from_millis(1), true);
        completed(&slow, Duration::from_millis(100), true);
        let rng = Rng::new(7);
        // Both were picked "now" at creation: no forced pick yet.
        for _ in 0..10 {
            assert_eq!(pick(&[&fast, &slow], &rng), 0);
        }
        slow.ewma().pick = Instant::now() - Duration::from_secs(2);
        assert_eq!(
            pick(&[&fast, &slow], &rng),
            1,
            "forced pick of the stale one"
        );
        assert_eq!(pick(&[&fast, &slow], &rng), 0);
    }
}
