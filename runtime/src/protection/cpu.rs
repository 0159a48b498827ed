//! CPU usage for the shedder, as go-zero measures it (`core/stat/usage.go`): sampled every
//! 250 ms and smoothed as `usage = previous * 0.95 + current * 0.05` (about the last 5 s),
//! in millicpu where 1000 is all the CPU this process may use.
//!
//! Sources, first that works:
//! - **cgroup v2** (containers, systemd services): `usage_usec` of the process's cgroup
//!   (`cpu.stat`) against wall time, divided by the cgroup's quota (`cpu.max`) or, without
//!   one, by the CPUs available. Usage counts the whole cgroup, like go-zero's.
//! - **`/proc/stat`**: the machine's busy share (all but idle and iowait), on hosts
//!   without cgroup v2 (go-zero reads cgroup v1 there; rzero does not).
//! - Neither (not Linux): 0, so nothing is shed.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How often the CPU is sampled.
const SAMPLE_EVERY: Duration = Duration::from_millis(250);
/// How much of the previous reading each sample keeps (with 250 ms: about 5 s of memory).
const BETA: f64 = 0.95;

/// The smoothed CPU usage, in millicpu.
#[derive(Debug, Default)]
pub(crate) struct CpuMeter {
    usage: AtomicU32,
}

impl CpuMeter {
    pub(crate) fn usage(&self) -> u32 {
        self.usage.load(Ordering::Relaxed)
    }

    /// Samples until dropped (the server aborts it when it stops).
    pub(crate) async fn sample_forever(self: Arc<Self>) {
        let mut probe = Probe::detect();
        let mut ticks = tokio::time::interval(SAMPLE_EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let Some(current) = probe.sample() else {
                continue;
            };
            let previous = f64::from(self.usage());
            let smoothed = previous * BETA + f64::from(current) * (1.0 - BETA);
            self.usage.store(smoothed as u32, Ordering::Relaxed);
        }
    }
}

/// Where usage is read, and the previous reading to take a difference from.
#[derive(Debug)]
enum Probe {
    Cgroup {
        stat: PathBuf,
        /// CPUs the cgroup may use.
        limit: f64,
        last: Option<(u64, Instant)>,
    },
    ProcStat {
        last: Option<(u64, u64)>,
    },
    Unavailable,
}

impl Probe {
    fn detect() -> Self {
        if let Some(dir) = cgroup_dir() {
            let stat = dir.join("cpu.stat");
            if usage_usec(&stat).is_some() {
                let cpus = std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64);
                let limit = quota(&dir.join("cpu.max")).map_or(cpus, |quota| quota.min(cpus));
                return Self::Cgroup {
                    stat,
                    limit,
                    last: None,
                };
            }
        }
        if proc_stat().is_some() {
            return Self::ProcStat { last: None };
        }
        Self::Unavailable
    }

    /// This interval's usage in millicpu (none for the first sample, or on a read error).
    fn sample(&mut self) -> Option<u32> {
        match self {
            Self::Cgroup { stat, limit, last } => {
                let now = (usage_usec(stat)?, Instant::now());
                let (used, at) = last.replace(now)?;
                let wall = now.1.duration_since(at).as_micros() as f64;
                let used = now.0.checked_sub(used)? as f64;
                (wall > 0.0).then(|| millicpu(used / (wall * *limit)))
            }
            Self::ProcStat { last } => {
                let now = proc_stat()?;
                let (busy, total) = last.replace(now)?;
                let total = now.1.checked_sub(total)? as f64;
                let busy = now.0.checked_sub(busy)? as f64;
                (total > 0.0).then(|| millicpu(busy / total))
            }
            Self::Unavailable => None,
        }
    }
}

fn millicpu(share: f64) -> u32 {
    (share * 1000.0).clamp(0.0, 1000.0) as u32
}

/// The process's cgroup v2 directory: `0::<path>` in `/proc/self/cgroup`.
fn cgroup_dir() -> Option<PathBuf> {
    let cgroups = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = cgroups.lines().find_map(|line| line.strip_prefix("0::"))?;
    Some(Path::new("/sys/fs/cgroup").join(path.trim_start_matches('/')))
}

/// `usage_usec` from a cgroup v2 `cpu.stat`.
fn usage_usec(stat: &Path) -> Option<u64> {
    parse_usage_usec(&std::fs::read_to_string(stat).ok()?)
}

fn parse_usage_usec(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix("usage_usec "))?
        .trim()
        .parse()
        .ok()
}

/// CPUs allowed by a cgroup v2 `cpu.max` (`"<quota> <period>"`, or `"max <period>"`: none).
fn quota(path: &Path) -> Option<f64> {
    parse_quota(&std::fs::read_to_string(path).ok()?)
}

fn parse_quota(text: &str) -> Option<f64> {
    let mut fields = text.split_whitespace();
    let quota: f64 = fields.next()?.parse().ok()?;
    let period: f64 = fields.next()?.parse().ok()?;
    (quota > 0.0 && period > 0.0).then_some(quota / period)
}

/// `(busy, total)` jiffies of all CPUs from `/proc/stat`.
fn proc_stat() -> Option<(u64, u64)> {
    parse_proc_stat(&std::fs::read_to_string("/proc/stat").ok()?)
}

fn parse_proc_stat(text: &str) -> Option<(u64, u64)> {
    let line = text.lines().find(|line| line.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    // user nice system idle iowait irq softirq steal (guest time is inside user already)
    let total: u64 = fields.iter().take(8).sum();
    let idle = fields.get(3)? + fields.get(4).copied().unwrap_or(0);
    Some((total.checked_sub(idle)?, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_kernel_files() {
        assert_eq!(
            parse_usage_usec("usage_usec 123456\nuser_usec 100\nsystem_usec 23\n"),
            Some(123_456)
        );
        assert_eq!(parse_usage_usec("user_usec 100\n"), None);
        assert_eq!(parse_quota("200000 100000\n"), Some(2.0));
        assert_eq!(parse_quota("50000 100000\n"), Some(0.5));
        assert_eq!(parse_quota("max 100000\n"), None);
        assert_eq!(
            parse_proc_stat("cpu  10 0 5 80 5 0 0 0 0 0\ncpu0 10 0 5 80 5 0 0 0 0 0\n"),
            Some((15, 100))
        );
        assert_eq!(parse_proc_stat("intr 1 2 3\n"), None);
    }

    #[test]
    fn a_sample_is_a_share_of_the_limit() {
        assert_eq!(millicpu(0.5), 500);
        assert_eq!(millicpu(1.7), 1000);
        // This machine has one source or another; two samples give a reading in range.
        let mut probe = Probe::detect();
        assert_eq!(
            probe.sample(),
            None,
            "the first sample only sets the baseline"
        );
        std::thread::sleep(Duration::from_millis(20));
        // (`/proc/stat` counts in 10 ms jiffies and may not have moved yet.)
        if let Some(usage) = probe.sample() {
            assert!(usage <= 1000);
        }
    }
}
