//! The scale-target seam: what the scale loop reads and writes replicas through. Kubernetes
//! implements it with the `/scale` subresource, `ebb run` with a local process group, tests and
//! benchmarks with [`InMemoryTarget`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use futures::future::BoxFuture;

/// Why reading or writing a target's replicas failed. The loop counts it as a reconcile error,
/// reports it through the status sink and tries again on the next poll.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum TargetError {
    /// The target does not exist (yet): a missing Deployment or process group.
    #[error("scale target not found: {0}")]
    NotFound(String),
    /// The target exists but cannot be scaled (no `/scale` subresource, wrong kind).
    #[error("scale target cannot be scaled: {0}")]
    NotScalable(String),
    /// Any other failure (API server unreachable, conflict, process spawn failure).
    #[error("scale target failed: {0}")]
    Failed(String),
}

/// One object's scale target: a thing with a replica count.
///
/// The host builds one handle per scaled object (from its `scaleTargetRef`) and hands it to
/// the supervisor inside a [`ManagedObject`](super::ManagedObject). The loop calls
/// [`ScaleTarget::current_replicas`] once per poll, so it must be cheap: Kubernetes should
/// answer from a watch cache, not with a GET per poll.
pub trait ScaleTarget: Send + Sync + 'static {
    /// The replica count the target has now (its spec, not the number of ready replicas).
    fn current_replicas(&self) -> BoxFuture<'_, Result<u32, TargetError>>;

    /// Sets the replica count. Only called when it differs from the current one.
    fn set_replicas(&self, replicas: u32) -> BoxFuture<'_, Result<(), TargetError>>;
}

/// A scale target held in memory, for tests and benchmarks. Clones share the same count.
#[derive(Clone, Debug, Default)]
pub struct InMemoryTarget {
    inner: Arc<InMemoryInner>,
}

#[derive(Debug, Default)]
struct InMemoryInner {
    replicas: AtomicU32,
    writes: AtomicU64,
    // 0 = healthy; otherwise reads and writes fail (simulates an unreachable API server).
    failing: AtomicU32,
}

impl InMemoryTarget {
    /// A target with `replicas` replicas.
    pub fn new(replicas: u32) -> Self {
        let target = Self::default();
        target.inner.replicas.store(replicas, Ordering::Relaxed);
        target
    }

    /// The current replica count.
    pub fn replicas(&self) -> u32 {
        self.inner.replicas.load(Ordering::Relaxed)
    }

    /// Changes the count from outside, as a person running `kubectl scale` would.
    pub fn set_externally(&self, replicas: u32) {
        self.inner.replicas.store(replicas, Ordering::Relaxed);
    }

    /// How many times [`ScaleTarget::set_replicas`] was called.
    pub fn writes(&self) -> u64 {
        self.inner.writes.load(Ordering::Relaxed)
    }

    /// Makes every read and write fail (`true`) or succeed again (`false`).
    pub fn set_failing(&self, failing: bool) {
        self.inner
            .failing
            .store(u32::from(failing), Ordering::Relaxed);
    }

    fn check(&self) -> Result<(), TargetError> {
        if self.inner.failing.load(Ordering::Relaxed) == 0 {
            Ok(())
        } else {
            Err(TargetError::Failed("in-memory target set to fail".into()))
        }
    }
}

impl ScaleTarget for InMemoryTarget {
    fn current_replicas(&self) -> BoxFuture<'_, Result<u32, TargetError>> {
        let result = self.check().map(|()| self.replicas());
        Box::pin(std::future::ready(result))
    }

    fn set_replicas(&self, replicas: u32) -> BoxFuture<'_, Result<(), TargetError>> {
        let result = self.check().map(|()| {
            self.inner.replicas.store(replicas, Ordering::Relaxed);
            self.inner.writes.fetch_add(1, Ordering::Relaxed);
        });
        Box::pin(std::future::ready(result))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn in_memory_target_reads_back_what_was_written() {
        let target = InMemoryTarget::new(2);
        assert_eq!(target.current_replicas().await, Ok(2));
        target.set_replicas(5).await.unwrap();
        assert_eq!(target.current_replicas().await, Ok(5));
        assert_eq!(target.writes(), 1);
    }

    #[tokio::test]
    async fn failing_target_reports_errors() {
        let target = InMemoryTarget::new(1);
        target.set_failing(true);
        assert!(target.current_replicas().await.is_err());
        assert!(target.set_replicas(3).await.is_err());
        assert_eq!(target.replicas(), 1);
        target.set_failing(false);
        assert_eq!(target.current_replicas().await, Ok(1));
    }
}
