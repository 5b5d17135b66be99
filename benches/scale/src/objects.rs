//! The scaled objects the benchmark runs: names, specs, triggers and scale targets that
//! record when they were written.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use ebb::runtime::{ManagedObject, ObjectKey, PushMode, ResolvedTrigger, ScaleTarget, TargetError};
use ebb::spec::{PauseState, ScaleTargetRef, ScaledObjectSpec, Trigger};
use futures::future::BoxFuture;

/// Namespace of every benchmark object.
pub const NAMESPACE: &str = "bench";
/// Name of the one trigger of every benchmark object.
pub const TRIGGER: &str = "load";

/// A spec with one trigger polled every `polling_seconds`, 0..=10 replicas, KEDA defaults
/// otherwise.
pub fn spec(polling_seconds: u32) -> ScaledObjectSpec {
    ScaledObjectSpec {
        scale_target_ref: ScaleTargetRef {
            name: "worker".into(),
            ..ScaleTargetRef::default()
        },
        polling_interval: Some(polling_seconds),
        min_replica_count: Some(0),
        max_replica_count: Some(10),
        triggers: vec![Trigger {
            name: Some(TRIGGER.into()),
            trigger_type: Some("bench".into()),
            ..Trigger::default()
        }],
        ..ScaledObjectSpec::default()
    }
}

/// The trigger of object `key` on the benchmark scaler at `address`, in `group`.
pub fn trigger(
    key: &ObjectKey,
    address: &str,
    group: &str,
    idle_value: f64,
    push: PushMode,
) -> ResolvedTrigger {
    let mut trigger = ResolvedTrigger::new(key, TRIGGER, 0, address)
        .with_metadata("group", group)
        .with_metadata("idleValue", &idle_value.to_string());
    trigger.push = push;
    trigger
}

/// An object for the runtime.
pub fn managed(
    key: &ObjectKey,
    spec: Arc<ScaledObjectSpec>,
    trigger: ResolvedTrigger,
    target: Arc<dyn ScaleTarget>,
) -> ManagedObject {
    ManagedObject {
        key: key.clone(),
        generation: 1,
        spec,
        pause: PauseState::default(),
        triggers: vec![trigger],
        target,
        last_status: None,
        created: SystemTime::now(),
    }
}

/// An in-memory scale target that counts reads and remembers when it was first written.
#[derive(Debug, Default)]
pub struct TimedTarget {
    replicas: AtomicU32,
    reads: AtomicU64,
    writes: AtomicU64,
    first_write: Mutex<Option<Instant>>,
}

impl TimedTarget {
    /// A target with `replicas` replicas.
    pub fn new(replicas: u32) -> Arc<Self> {
        let target = Self::default();
        target.replicas.store(replicas, Ordering::Relaxed);
        Arc::new(target)
    }

    /// How many times the replica count was read (about once per poll).
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    /// How many times the replica count was written.
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    /// When the first write happened.
    pub fn first_write(&self) -> Option<Instant> {
        *self.first_write.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Time from `since` to the first write, when written.
    pub fn latency(&self, since: Instant) -> Option<Duration> {
        self.first_write()
            .map(|written| written.saturating_duration_since(since))
    }
}

impl ScaleTarget for TimedTarget {
    fn current_replicas(&self) -> BoxFuture<'_, Result<u32, TargetError>> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        Box::pin(std::future::ready(Ok(self
            .replicas
            .load(Ordering::Relaxed))))
    }

    fn set_replicas(&self, replicas: u32) -> BoxFuture<'_, Result<(), TargetError>> {
        self.replicas.store(replicas, Ordering::Relaxed);
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.first_write
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert_with(Instant::now);
        Box::pin(std::future::ready(Ok(())))
    }
}

/// Waits until `done` holds, checking every 20 ms, failing after `limit`.
pub async fn wait_until(
    what: &str,
    limit: Duration,
    mut done: impl FnMut() -> bool,
) -> Result<(), crate::BenchError> {
    let deadline = Instant::now() + limit;
    while !done() {
        if Instant::now() >= deadline {
            return Err(crate::BenchError::timeout(what, limit));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}
