//! A bounded pool for CPU-heavy work on anonymous input (SAML signature verification and
//! decryption). The work runs on tokio's blocking threads, never on the async workers, so a
//! slow message stalls no other request; at most `workers` jobs run at once, at most `queue`
//! more wait, and anything beyond that is refused at once ([`Busy`]: the caller answers 503
//! with `Retry-After`) instead of piling up.
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Why a job did not run.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PoolError {
    /// Every worker is busy and the queue is full.
    #[error("the verification queue is full")]
    Busy,
    /// The job panicked (a library bug); the panic was contained.
    #[error("the job failed unexpectedly")]
    Failed,
}

#[derive(Debug)]
pub struct BlockingPool {
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
    queue: usize,
    workers: usize,
}

/// Counts a waiting job and uncounts it however the wait ends (also when the request is
/// dropped while queued).
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl BlockingPool {
    pub fn new(workers: usize, queue: usize) -> Self {
        let workers = workers.max(1);
        Self { permits: Arc::new(Semaphore::new(workers)), waiting: AtomicUsize::new(0), queue, workers }
    }

    /// The number of concurrent jobs.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Jobs waiting for a worker now.
    pub fn queued(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }

    async fn admit(&self) -> Result<OwnedSemaphorePermit, PoolError> {
        if let Ok(p) = self.permits.clone().try_acquire_owned() {
            return Ok(p);
        }
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.queue {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(PoolError::Busy);
        }
        let _w = Waiting(&self.waiting);
        self.permits.clone().acquire_owned().await.map_err(|_| PoolError::Busy)
    }

    /// Runs `f` on a blocking thread once a worker is free.
    pub async fn run<T, F>(&self, f: F) -> Result<T, PoolError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let permit = self.admit().await?;
        let r = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            f()
        })
        .await;
        r.map_err(|e| {
            tracing::error!(error = %e, "a blocking job panicked");
            PoolError::Failed
        })
    }

    /// Takes up to `n` workers until the permits are dropped: for tests (a deterministic full
    /// pool) and for draining.
    pub fn hold(&self, n: usize) -> Vec<OwnedSemaphorePermit> {
        (0..n).filter_map(|_| self.permits.clone().try_acquire_owned().ok()).collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn full_pool_and_queue_refuse_at_once() {
        let pool = Arc::new(BlockingPool::new(1, 1));
        let held = pool.hold(1);
        // One job may wait; the second waiting job is refused.
        let p2 = pool.clone();
        let queued = tokio::spawn(async move { p2.run(|| 7).await });
        while pool.queued() == 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(pool.run(|| 1).await, Err(PoolError::Busy));
        drop(held);
        assert_eq!(queued.await.unwrap(), Ok(7));
        assert_eq!(pool.queued(), 0);
        assert_eq!(pool.run(|| 2).await, Ok(2));
    }

    #[tokio::test]
    async fn a_dropped_waiter_leaves_the_queue() {
        let pool = Arc::new(BlockingPool::new(1, 1));
        let held = pool.hold(1);
        let p2 = pool.clone();
        let waiter = tokio::spawn(async move { p2.run(|| 1).await });
        while pool.queued() == 0 {
            tokio::task::yield_now().await;
        }
        waiter.abort();
        let _ = waiter.await;
        assert_eq!(pool.queued(), 0);
        drop(held);
    }
}
