//! Part 3, push fan-out: N objects whose scaler offers StreamIsActive; once every object has
//! polled and subscribed, the scaler switches their group on, and the time from that switch
//! to each target's write is measured. Runs in the parent process against the scaler child.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ebb::runtime::{
    MemorySink, ObjectKey, PoolConfig, PushMode, RuntimeConfig, RuntimeMetrics, ScalerPool,
    Supervisor,
};
use serde::{Deserialize, Serialize};

use crate::BenchError;
use crate::child::Child;
use crate::objects::{self, NAMESPACE, TimedTarget};
use crate::quantiles;

/// The push fan-out figures.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct PushFigures {
    /// Objects subscribed.
    pub objects: usize,
    /// How often the scaler samples the source for its subscribers, ms (bounds the latency
    /// from below: a flip waits up to one interval to be seen).
    pub push_interval_ms: f64,
    /// Targets written after the flip (should be all).
    pub written: usize,
    /// Flip to target write, p50, ms (over the targets written; 0 when none was).
    pub p50_ms: f64,
    /// Flip to target write, p99, ms.
    pub p99_ms: f64,
    /// Flip to the last target write, ms.
    pub max_ms: f64,
}

/// Runs part 3 against the scaler child at `address`.
pub async fn run_push(
    scaler: &mut Child,
    address: &str,
    count: usize,
    push_interval: Duration,
) -> Result<PushFigures, BenchError> {
    let metrics = RuntimeMetrics::unregistered();
    let pool = ScalerPool::new(PoolConfig::default(), metrics.clone());
    let sink = MemorySink::statuses_only();
    let supervisor = Supervisor::new(pool, Arc::new(sink), RuntimeConfig::default());
    // Polls are rare (30 s, KEDA's default): what moves the targets is the push.
    let spec = Arc::new(objects::spec(30));
    let mut keys = Vec::with_capacity(count);
    let mut targets = Vec::with_capacity(count);
    for index in 0..count {
        let key = ObjectKey::new(NAMESPACE, format!("push-{index}"));
        // Auto: subscribe because the scaler's GetInfo says it can push.
        let trigger = objects::trigger(&key, address, "push", 0.0, PushMode::Auto);
        let target = TimedTarget::new(0);
        supervisor.apply(objects::managed(
            &key,
            spec.clone(),
            trigger,
            target.clone(),
        ));
        keys.push(key);
        targets.push(target);
    }
    let limit = Duration::from_secs(60);
    objects::wait_until("every push object to poll and subscribe", limit, || {
        targets.iter().all(|target| target.reads() > 0)
            && metrics.objects_subscribed_to_push() >= keys.len()
    })
    .await?;
    // Let every stream deliver its first (inactive) state.
    tokio::time::sleep(push_interval * 4 + Duration::from_millis(200)).await;
    if let Some(written) = targets.iter().find(|target| target.writes() > 0) {
        return Err(BenchError::Child {
            child: "scaler".into(),
            message: format!("a push target was written before the flip ({written:?})"),
        });
    }
    let flipped = Instant::now();
    scaler.send("on push").await?;
    let answer = scaler.line(Duration::from_secs(10)).await?;
    let _ = objects::wait_until("every push target to be written", limit, || {
        targets.iter().all(|target| target.writes() > 0)
    })
    .await;
    let mut latencies: Vec<f64> = targets
        .iter()
        .filter_map(|target| target.latency(flipped))
        .map(|latency| latency.as_secs_f64() * 1000.0)
        .collect();
    scaler.send("off push").await?;
    let _ = scaler.line(Duration::from_secs(10)).await?;
    supervisor.shutdown().await;
    if !answer.contains("true") {
        return Err(BenchError::Child {
            child: "scaler".into(),
            message: format!("did not accept `on push`: {answer}"),
        });
    }
    let written = latencies.len();
    Ok(PushFigures {
        objects: count,
        push_interval_ms: push_interval.as_secs_f64() * 1000.0,
        written,
        p50_ms: quantiles::exact(&mut latencies, 0.5).unwrap_or(0.0),
        p99_ms: quantiles::exact(&mut latencies, 0.99).unwrap_or(0.0),
        max_ms: quantiles::exact(&mut latencies, 1.0).unwrap_or(0.0),
    })
}
