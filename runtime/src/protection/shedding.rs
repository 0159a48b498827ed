//! Adaptive load shedding: go-zero's CPU-based shedder (`core/load/adaptiveshedder.go`).
//!
//! A call is refused when the CPU is hot **and** more calls are in flight than the server
//! has shown it can complete:
//!
//! ```text
//! drop       = (cpu >= threshold || still_hot) && flying > limit && avg_flying > limit
//! still_hot  = dropped recently && less than COOL_OFF since the CPU was last over threshold
//! limit      = max_flight * clamp((CPU_MAX - cpu) / (CPU_MAX - threshold), 0.1, 1)
//! max_flight = max(1, max_pass * min_rt_ms * window_scale)      (Little's law)
//! ```
//!
//! `max_pass` is the most calls completed in one bucket and `min_rt_ms` the lowest bucket
//! average latency, over a 5 s window of 50 buckets that leaves out the current, partial
//! bucket; `window_scale` turns "per bucket" and "milliseconds" into "per second" and
//! "seconds". `avg_flying` moves 10 % towards the number in flight each time a call ends,
//! so a sudden burst is let in until completions show the backlog.
//!
//! Only unary calls are shed, as in go-zero: a stream's lifetime says nothing about the
//! server's latency, and would wreck `min_rt`. Use a concurrency limit for streams.

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tonic::{Code, Status};

use super::cpu::CpuMeter;
use super::window::{Clock, RollingWindow, SystemClock};

/// Length of the rolling windows.
const WINDOW: Duration = Duration::from_secs(5);
/// Buckets per window (100 ms each).
const BUCKETS: u32 = 50;
/// go-zero's default threshold: 90 % of the CPU the server may use.
pub const DEFAULT_CPU_THRESHOLD: u32 = 900;
/// The latency assumed before any call completed: large, so nothing is shed for lack of data.
const DEFAULT_MIN_RT_MS: f64 = 1000.0;
/// How much of the old `avg_flying` each completion keeps.
const FLYING_BETA: f64 = 0.9;
/// How long after the CPU was last over the threshold dropping may go on.
const COOL_OFF: Duration = Duration::from_secs(1);
/// All of the CPU the server may use, in millicpu.
const CPU_MAX: f64 = 1000.0;
/// However hot the CPU, a tenth of the estimated capacity is still let in.
const OVERLOAD_FACTOR_LOWER_BOUND: f64 = 0.1;

/// Settings for adaptive load shedding on a server
/// ([`ServerBuilder::shedding`](crate::ServerBuilder::shedding)); see the [module
/// docs](super). Refused calls end with `RESOURCE_EXHAUSTED` ("server overloaded").
///
/// The CPU usage is, by default, what this process's cgroup (v2) uses of its CPU quota, or
/// without one the whole machine's busy share from `/proc/stat`, sampled every 250 ms and
/// smoothed over about 5 s; 0 where neither can be read (so nothing is shed).
///
/// ```
/// use rzero::protection::Shedding;
/// let shedding = Shedding::new(800);               // shed above 80 % CPU
/// let in_tests = Shedding::new(900).cpu_usage(|| 950);
/// # let _ = (shedding, in_tests);
/// ```
#[derive(Clone)]
#[must_use]
pub struct Shedding {
    threshold: u32,
    cpu: Option<Arc<dyn Fn() -> u32 + Send + Sync>>,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for Shedding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shedding")
            .field("threshold", &self.threshold)
            .field(
                "cpu",
                &if self.cpu.is_some() {
                    "custom"
                } else {
                    "system"
                },
            )
            .field("clock", &self.clock)
            .finish()
    }
}

impl Default for Shedding {
    /// [`DEFAULT_CPU_THRESHOLD`].
    fn default() -> Self {
        Self::new(DEFAULT_CPU_THRESHOLD)
    }
}

impl Shedding {
    /// Sheds when the CPU usage reaches `threshold` millicpu (900 = 90 % of the CPU the
    /// server may use).
    ///
    /// # Panics
    /// If `threshold` is not in `1..1000`: 0 would shed at any load and 1000 never
    /// (go-zero's `CpuThreshold: 0` means "no shedding": leave shedding off instead).
    pub fn new(threshold: u32) -> Self {
        assert!(
            (1..1000).contains(&threshold),
            "rzero: a shedding threshold is in millicpu, 1..1000 (got {threshold})"
        );
        Self {
            threshold,
            cpu: None,
            clock: Arc::new(SystemClock),
        }
    }

    /// Reads the CPU usage (millicpu, 0..=1000) from `read` instead of sampling the system:
    /// for tests, or a usage figure of your own.
    pub fn cpu_usage(mut self, read: impl Fn() -> u32 + Send + Sync + 'static) -> Self {
        self.cpu = Some(Arc::new(read));
        self
    }

    /// Reads time from `clock` instead of the system's (tests: a
    /// [`ManualClock`](super::ManualClock)).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }
}

/// Where the shedder reads the CPU usage.
enum Cpu {
    /// The system sampler's reading, updated by the task [`Shedder::sampler`] returns.
    System(Arc<CpuMeter>),
    Custom(Arc<dyn Fn() -> u32 + Send + Sync>),
}

impl Cpu {
    fn usage(&self) -> f64 {
        f64::from(match self {
            Self::System(meter) => meter.usage(),
            Self::Custom(read) => read().min(1000),
        })
    }
}

/// One server's shedder.
pub(crate) struct Shedder {
    threshold: f64,
    cpu: Cpu,
    clock: Arc<dyn Clock>,
    /// Calls per bucket-per-second and milliseconds-per-second in one factor.
    window_scale: f64,
    flying: AtomicI64,
    state: Mutex<ShedState>,
}

impl fmt::Debug for Shedder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shedder")
            .field("threshold", &self.threshold)
            .field("flying", &self.flying)
            .finish_non_exhaustive()
    }
}

/// A sum and a count, per bucket.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    sum: u64,
    count: u64,
}

#[derive(Debug)]
struct ShedState {
    avg_flying: f64,
    /// When the CPU was last seen over the threshold.
    overload_time: Option<Duration>,
    dropped_recently: bool,
    /// Completed calls (`sum` = how many, per bucket).
    passes: RollingWindow<Tally>,
    /// Latencies of completed calls, whole milliseconds rounded up.
    latencies: RollingWindow<Tally>,
}

impl Shedder {
    pub(crate) fn new(settings: Shedding) -> Self {
        let bucket = WINDOW / BUCKETS;
        Self {
            threshold: f64::from(settings.threshold),
            cpu: match settings.cpu {
                Some(read) => Cpu::Custom(read),
                None => Cpu::System(Arc::new(CpuMeter::default())),
            },
            clock: settings.clock,
            window_scale: Duration::from_secs(1).as_secs_f64() / bucket.as_secs_f64() / 1000.0,
            flying: AtomicI64::new(0),
            state: Mutex::new(ShedState {
                avg_flying: 0.0,
                overload_time: None,
                dropped_recently: false,
                passes: RollingWindow::new(BUCKETS as usize, bucket),
                latencies: RollingWindow::new(BUCKETS as usize, bucket),
            }),
        }
    }

    /// The task sampling the system CPU for this shedder, if it reads the system's.
    pub(crate) fn sampler(&self) -> Option<impl Future<Output = ()> + Send + 'static> {
        match &self.cpu {
            Cpu::System(meter) => Some(Arc::clone(meter).sample_forever()),
            Cpu::Custom(_) => None,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ShedState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Lets a call in, or refuses it with `RESOURCE_EXHAUSTED`.
    pub(crate) fn admit(self: &Arc<Self>) -> Result<ShedPass, Status> {
        let now = self.clock.now();
        let cpu = self.cpu.usage();
        let mut state = self.lock();
        if self.should_drop(&mut state, now, cpu) {
            state.dropped_recently = true;
            return Err(Status::resource_exhausted(
                "server overloaded: the CPU is over its shedding threshold and more calls \
                 are in flight than it has been completing; retry later",
            ));
        }
        drop(state);
        self.flying.fetch_add(1, Ordering::AcqRel);
        Ok(ShedPass {
            shedder: Arc::clone(self),
            start: now,
        })
    }

    fn should_drop(&self, state: &mut ShedState, now: Duration, cpu: f64) -> bool {
        let overloaded = cpu >= self.threshold;
        if overloaded {
            state.overload_time = Some(now);
        }
        (overloaded || state.still_hot(now)) && self.high_throughput(state, now, cpu)
    }

    fn high_throughput(&self, state: &ShedState, now: Duration, cpu: f64) -> bool {
        let limit = self.max_flight(state, now) * self.overload_factor(cpu);
        let flying = self.flying.load(Ordering::Acquire) as f64;
        flying > limit && state.avg_flying > limit
    }

    fn max_flight(&self, state: &ShedState, now: Duration) -> f64 {
        (state.max_pass(now) as f64 * state.min_rt(now) * self.window_scale).max(1.0)
    }

    fn overload_factor(&self, cpu: f64) -> f64 {
        ((CPU_MAX - cpu) / (CPU_MAX - self.threshold)).clamp(OVERLOAD_FACTOR_LOWER_BOUND, 1.0)
    }

    /// One call ended; `completed`: it ran its course (counts for latency and throughput).
    fn finish(&self, start: Duration, completed: bool) {
        let flying = self.flying.fetch_sub(1, Ordering::AcqRel) - 1;
        let now = self.clock.now();
        let mut state = self.lock();
        state.avg_flying = state.avg_flying * FLYING_BETA + flying as f64 * (1.0 - FLYING_BETA);
        if completed {
            let millis = now.saturating_sub(start).as_secs_f64() * 1000.0;
            let millis = millis.ceil() as u64;
            state.latencies.add(now, |tally| {
                tally.sum += millis;
                tally.count += 1;
            });
            state.passes.add(now, |tally| {
                tally.sum += 1;
                tally.count += 1;
            });
        }
    }
}

impl ShedState {
    fn still_hot(&mut self, now: Duration) -> bool {
        if !self.dropped_recently {
            return false;
        }
        let Some(overload_time) = self.overload_time else {
            return false;
        };
        if now.saturating_sub(overload_time) < COOL_OFF {
            return true;
        }
        self.dropped_recently = false;
        false
    }

    fn max_pass(&self, now: Duration) -> u64 {
        let mut most = 1;
        self.passes
            .reduce(now, true, |tally| most = most.max(tally.sum));
        most
    }

    fn min_rt(&self, now: Duration) -> f64 {
        let mut least = DEFAULT_MIN_RT_MS;
        self.latencies.reduce(now, true, |tally| {
            if tally.count > 0 {
                least = least.min((tally.sum as f64 / tally.count as f64).round());
            }
        });
        least
    }
}

/// A call the shedder let in; [`finish`](Self::finish) it when it ends.
#[derive(Debug)]
pub(crate) struct ShedPass {
    shedder: Arc<Shedder>,
    start: Duration,
}

impl ShedPass {
    /// As go-zero: a call that ran out of time is a "fail" (only leaves the in-flight
    /// count); any other outcome is a "pass" and feeds the latency and throughput windows.
    pub(crate) fn finish(self, code: Code) {
        self.shedder
            .finish(self.start, code != Code::DeadlineExceeded);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU32;

    use super::*;
    use crate::protection::ManualClock;

    const BUCKET: Duration = Duration::from_millis(100);

    fn shedder(cpu: &Arc<AtomicU32>, clock: &ManualClock) -> Arc<Shedder> {
        let cpu = Arc::clone(cpu);
        Arc::new(Shedder::new(
            Shedding::new(900)
                .cpu_usage(move || cpu.load(Ordering::Relaxed))
                .clock(clock.clone()),
        ))
    }

    #[test]
    fn capacity_estimate_follows_go_zero() {
        let clock = ManualClock::new();
        clock.advance(Duration::from_secs(1));
        let cpu = Arc::new(AtomicU32::new(0));
        let shedder = shedder(&cpu, &clock);
        let state = |shedder: &Shedder| {
            let state = shedder.lock();
            let now = clock.now();
            (
                state.max_pass(now),
                state.min_rt(now),
                shedder.max_flight(&state, now),
            )
        };
        // No data: one pass, 1000 ms → 10 calls in flight.
        assert_eq!(state(&shedder), (1, 1000.0, 10.0));
        // Bucket i completes i + 1 calls of (i + 1) * 10 ms.
        for i in 0..5u32 {
            for _ in 0..=i {
                let start = clock
                    .now()
                    .saturating_sub(Duration::from_millis(10 * u64::from(i + 1)));
                shedder.flying.fetch_add(1, Ordering::AcqRel);
                shedder.finish(start, true);
            }
            clock.advance(BUCKET);
        }
        // Max 5 passes per 100 ms bucket, min 10 ms: 5 * 10 * 0.01 = 0.5 → at least 1.
        assert_eq!(state(&shedder), (5, 10.0, 1.0));
        // The current bucket does not count until it is complete.
        for _ in 0..50 {
            shedder.flying.fetch_add(1, Ordering::AcqRel);
            shedder.finish(clock.now().saturating_sub(Duration::from_millis(40)), true);
        }
        assert_eq!(state(&shedder), (5, 10.0, 1.0));
        clock.advance(BUCKET);
        // 50 passes * 10 ms * 0.01 = 5.
        assert_eq!(state(&shedder), (50, 10.0, 5.0));
        // Calls that ran out of time leave no trace but the in-flight count.
        shedder.flying.fetch_add(1, Ordering::AcqRel);
        shedder.finish(Duration::ZERO, false);
        clock.advance(BUCKET);
        assert_eq!(state(&shedder), (50, 10.0, 5.0));
        // Everything leaves the window after 5 s.
        clock.advance(WINDOW);
        assert_eq!(state(&shedder), (1, 1000.0, 10.0));
    }

    #[test]
    fn overload_factor_follows_go_zero() {
        let shedder = Shedder::new(Shedding::new(900).cpu_usage(|| 0));
        for (cpu, factor) in [
            (0.0, 1.0),
            (900.0, 1.0),
            (950.0, 0.5),
            (990.0, 0.1),
            (1000.0, 0.1),
        ] {
            assert!(
                (shedder.overload_factor(cpu) - factor).abs() < 1e-12,
                "{cpu}"
            );
        }
    }

    #[test]
    fn sheds_only_when_hot_and_busy_and_cools_off() {
        let clock = ManualClock::new();
        let cpu = Arc::new(AtomicU32::new(950));
        let shedder = shedder(&cpu, &clock);
        // A burst is let in: nothing has completed, so the average in flight is 0.
        let mut passes: Vec<_> = (0..30).map(|_| shedder.admit().expect("let in")).collect();
        // 10 complete: the average climbs towards the ~25 in flight, far above the
        // no-data capacity of 10 calls halved by the 95 % CPU.
        for pass in passes.drain(..10) {
            pass.finish(Code::Ok);
        }
        let refusal = shedder.admit().expect_err("shed");
        assert_eq!(refusal.code(), Code::ResourceExhausted);
        assert!(refusal.message().starts_with("server overloaded"));
        // The same load on a cool CPU passes, except within the cool-off after a drop.
        cpu.store(100, Ordering::Relaxed);
        assert!(shedder.admit().is_err(), "still hot");
        clock.advance(COOL_OFF + BUCKET);
        passes.push(shedder.admit().expect("cooled off"));
        // Once the backlog has drained, calls are let in even on a hot CPU.
        cpu.store(950, Ordering::Relaxed);
        for pass in passes.drain(..) {
            pass.finish(Code::Ok);
        }
        assert!(shedder.admit().is_ok());
    }
}
