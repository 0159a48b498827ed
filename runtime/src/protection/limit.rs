//! The concurrency limit: at most `n` calls in flight on a server, streams included until
//! they end. A call over the limit is refused at once with `RESOURCE_EXHAUSTED`, never
//! queued: a queue in front of a saturated server only turns overload into timeouts.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::Status;

#[derive(Debug)]
pub(crate) struct ConcurrencyLimit {
    permits: Arc<Semaphore>,
    max: usize,
}

impl ConcurrencyLimit {
    /// # Panics
    /// If `max` is 0 (no call could ever run).
    pub(crate) fn new(max: usize) -> Self {
        assert!(
            max > 0,
            "rzero: a concurrency limit of 0 would refuse every call"
        );
        let max = max.min(Semaphore::MAX_PERMITS);
        Self {
            permits: Arc::new(Semaphore::new(max)),
            max,
        }
    }

    /// A permit held until the call ends, or the refusal.
    pub(crate) fn admit(&self) -> Result<OwnedSemaphorePermit, Status> {
        Arc::clone(&self.permits).try_acquire_owned().map_err(|_| {
            Status::resource_exhausted(format!(
                "server busy: {} calls in flight, its concurrency limit; retry later",
                self.max
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_over_the_limit_and_frees_on_drop() {
        let limit = ConcurrencyLimit::new(2);
        let first = limit.admit().expect("1");
        let _second = limit.admit().expect("2");
        let refusal = limit.admit().expect_err("3");
        assert_eq!(refusal.code(), tonic::Code::ResourceExhausted);
        assert!(refusal.message().contains("2 calls in flight"));
        drop(first);
        assert!(limit.admit().is_ok());
    }
}
