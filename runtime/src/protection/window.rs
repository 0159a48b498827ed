//! Rolling windows of time buckets (go-zero's `collection.RollingWindow`), and the clock
//! they read.
//!
//! A bucket covers one interval of time and is identified by its interval number since the
//! clock's origin; a slot whose number is stale holds an expired bucket and reads as empty.
//! This gives go-zero's semantics (the last `size` intervals, optionally without the
//! current, partial one) without a background reset.

use std::fmt::Debug;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Where the breaker and the shedder read the time. The default is the monotonic clock;
/// tests use a [`ManualClock`] to move time by hand, so the windows slide deterministically.
pub trait Clock: Debug + Send + Sync + 'static {
    /// Time since a fixed origin; never goes backwards.
    fn now(&self) -> Duration;
}

/// The monotonic clock (tokio's, so a runtime with paused time pauses it too).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        static ORIGIN: OnceLock<tokio::time::Instant> = OnceLock::new();
        ORIGIN.get_or_init(tokio::time::Instant::now).elapsed()
    }
}

/// A clock that moves only when told to. Clones share the time.
///
/// ```
/// use rzero::protection::{Clock, ManualClock};
/// let clock = ManualClock::new();
/// clock.advance(std::time::Duration::from_millis(250));
/// assert_eq!(clock.now(), std::time::Duration::from_millis(250));
/// ```
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A clock at its origin.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let nanos = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        self.0.fetch_add(nanos, Ordering::Relaxed);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        Duration::from_nanos(self.0.load(Ordering::Relaxed))
    }
}

/// `size` buckets of `interval` each.
#[derive(Debug)]
pub(crate) struct RollingWindow<B> {
    /// `(interval number, bucket)`; the slot of interval `n` is `n % size`.
    slots: Vec<(u64, B)>,
    interval: Duration,
}

impl<B: Default> RollingWindow<B> {
    pub(crate) fn new(size: usize, interval: Duration) -> Self {
        assert!(size > 0 && !interval.is_zero(), "an empty rolling window");
        Self {
            // No interval has this number, so every slot starts expired.
            slots: (0..size).map(|_| (u64::MAX, B::default())).collect(),
            interval,
        }
    }

    fn interval_at(&self, now: Duration) -> u64 {
        u64::try_from(now.as_nanos() / self.interval.as_nanos()).unwrap_or(u64::MAX - 1)
    }

    /// Updates the bucket of the current interval.
    pub(crate) fn add(&mut self, now: Duration, update: impl FnOnce(&mut B)) {
        let current = self.interval_at(now);
        let size = self.slots.len() as u64;
        let slot = &mut self.slots[(current % size) as usize];
        if slot.0 != current {
            *slot = (current, B::default());
        }
        update(&mut slot.1);
    }

    /// Visits the buckets of the last `size` intervals, oldest first, skipping expired
    /// ones; without the current interval's (still filling) bucket when `skip_current`.
    pub(crate) fn reduce(&self, now: Duration, skip_current: bool, mut visit: impl FnMut(&B)) {
        let current = self.interval_at(now);
        let size = self.slots.len() as u64;
        let newest = if skip_current {
            match current.checked_sub(1) {
                Some(newest) => newest,
                None => return,
            }
        } else {
            current
        };
        let oldest = (current + 1).saturating_sub(size);
        for interval in oldest..=newest {
            let (number, bucket) = &self.slots[(interval % size) as usize];
            if *number == interval {
                visit(bucket);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sums(window: &RollingWindow<u32>, now: Duration, skip_current: bool) -> Vec<u32> {
        let mut seen = Vec::new();
        window.reduce(now, skip_current, |bucket| seen.push(*bucket));
        seen
    }

    #[test]
    fn buckets_expire_as_time_moves() {
        let ms = Duration::from_millis;
        let mut window = RollingWindow::<u32>::new(3, ms(100));
        window.add(ms(0), |b| *b += 1);
        window.add(ms(50), |b| *b += 1);
        window.add(ms(150), |b| *b += 5);
        assert_eq!(sums(&window, ms(150), false), [2, 5]);
        // The current bucket is partial: left out when asked.
        assert_eq!(sums(&window, ms(150), true), [2]);
        // Interval 3 starts: interval 0 has left the window.
        assert_eq!(sums(&window, ms(300), false), [5]);
        assert_eq!(sums(&window, ms(300), true), [5]);
        // A slot reused by a later interval starts empty.
        window.add(ms(310), |b| *b += 7);
        assert_eq!(sums(&window, ms(310), false), [5, 7]);
        assert_eq!(sums(&window, ms(10_000), false), Vec::<u32>::new());
    }
}
