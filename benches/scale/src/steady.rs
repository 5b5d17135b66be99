//! Part 1, controller side (a child process): N objects polled every interval by the real
//! runtime (supervisor, scale loops, connection pool) with in-memory targets, measured over a
//! window after warm-up. The parent reads the scaler's counters at the window's edges.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ebb::runtime::{
    MemorySink, ObjectKey, PoolConfig, PushMode, RuntimeConfig, RuntimeMetrics, ScalerPool,
    Supervisor,
};
use serde::{Deserialize, Serialize};

use crate::BenchError;
use crate::child::ChildMessage;
use crate::objects::{self, NAMESPACE, TimedTarget};
use crate::proc_stats;
use crate::quantiles::Buckets;

/// What the controller-side child is asked to do.
#[derive(Clone, Debug)]
pub struct SteadyOptions {
    /// Scaler address (`127.0.0.1:port`).
    pub address: String,
    /// Number of objects.
    pub objects: usize,
    /// pollingInterval in seconds.
    pub polling_seconds: u32,
    /// Unmeasured seconds after every object has polled once.
    pub warmup: Duration,
    /// Measured window.
    pub window: Duration,
    /// Record the dashboard's history, as the controller does with `--dashboard`.
    pub dashboard: bool,
}

/// The controller side's figures over the window.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ControllerFigures {
    /// Objects running.
    pub objects: usize,
    /// Measured window in seconds (wall clock).
    pub window_seconds: f64,
    /// CPU seconds used in the window.
    pub cpu_seconds: f64,
    /// CPU cores used on average (`cpu_seconds / window_seconds`).
    pub cpu_cores: f64,
    /// Peak RSS of the controller process since it started (VmHWM), MiB.
    pub peak_rss_mib: f64,
    /// RSS at the end of the window, MiB.
    pub rss_mib: f64,
    /// Trigger polls run in the window (the runtime's `trigger_polls` counter).
    pub polls: u64,
    /// Polls per second in the window.
    pub polls_per_second: f64,
    /// Polls expected in the window: objects × window / interval.
    pub polls_expected: f64,
    /// Polls skipped because one overran a whole interval.
    pub skipped_polls: u64,
    /// Scale-loop lag (how late each poll started) estimated p50, ms.
    pub lag_p50_ms: f64,
    /// Scale-loop lag estimated p99, ms.
    pub lag_p99_ms: f64,
    /// Upper bound of the histogram bucket holding the p99, ms (the true p99 is at most this).
    pub lag_p99_bucket_ms: f64,
    /// Lag observations in the window.
    pub lag_observations: u64,
    /// Status publishes in the window (a Kubernetes host turns each into a status write).
    pub status_publishes: u64,
    /// Replica writes in the window (0 in steady state).
    pub target_writes: u64,
    /// Connections the controller's pool held at the end.
    pub pool_connections: usize,
}

fn snapshot(
    metrics: &RuntimeMetrics,
    sink: &MemorySink,
    targets: &[Arc<TimedTarget>],
) -> Result<Snapshot, BenchError> {
    Ok(Snapshot {
        at: Instant::now(),
        cpu: proc_stats::process_cpu_seconds()?,
        polls: metrics.trigger_polls.get(),
        skipped: metrics.skipped_polls.get(),
        lag: Buckets::read(&metrics.scale_loop_lag),
        publishes: sink.publishes(),
        writes: targets.iter().map(|target| target.writes()).sum(),
    })
}

struct Snapshot {
    at: Instant,
    cpu: f64,
    polls: u64,
    skipped: u64,
    lag: Buckets,
    publishes: u64,
    writes: u64,
}

/// Runs the controller side: starts the loops, warms up, announces the window's edges and
/// prints its figures.
pub async fn run_steady(options: SteadyOptions) -> Result<(), BenchError> {
    let metrics = RuntimeMetrics::unregistered();
    let pool = ScalerPool::new(PoolConfig::default(), metrics.clone());
    let sink = MemorySink::statuses_only();
    let mut loop_sink: Arc<dyn ebb::runtime::StatusSink> = Arc::new(sink.clone());
    if options.dashboard {
        loop_sink = Arc::new(ebb::dashboard::HistorySink::new(
            loop_sink,
            ebb::dashboard::History::new(),
        ));
    }
    let supervisor = Supervisor::new(pool.clone(), loop_sink, RuntimeConfig::default());
    let spec = Arc::new(objects::spec(options.polling_seconds));
    let mut targets = Vec::with_capacity(options.objects);
    for index in 0..options.objects {
        let key = ObjectKey::new(NAMESPACE, format!("steady-{index}"));
        // Active at 1 replica, already at 1: the steady state polls and never writes.
        let trigger = objects::trigger(&key, &options.address, "steady", 1.0, PushMode::Never);
        let target = TimedTarget::new(1);
        supervisor.apply(objects::managed(
            &key,
            spec.clone(),
            trigger,
            target.clone(),
        ));
        targets.push(target);
    }
    let startup = Duration::from_secs(60) + Duration::from_millis(10 * options.objects as u64);
    objects::wait_until("every object to poll once", startup, || {
        targets.iter().all(|target| target.reads() > 0)
    })
    .await?;
    tokio::time::sleep(options.warmup).await;

    let start = snapshot(&metrics, &sink, &targets)?;
    ChildMessage::WindowStart.emit()?;
    tokio::time::sleep(options.window).await;
    let end = snapshot(&metrics, &sink, &targets)?;
    ChildMessage::WindowEnd.emit()?;

    let window_seconds = end.at.duration_since(start.at).as_secs_f64();
    let lag = end.lag.since(&start.lag);
    let p50 = lag.quantile(0.5);
    let p99 = lag.quantile(0.99);
    let ms = |seconds: f64| seconds * 1000.0;
    let figures = ControllerFigures {
        objects: options.objects,
        window_seconds,
        cpu_seconds: end.cpu - start.cpu,
        cpu_cores: (end.cpu - start.cpu) / window_seconds,
        peak_rss_mib: proc_stats::peak_rss_mib()?,
        rss_mib: proc_stats::rss_mib()?,
        polls: end.polls - start.polls,
        polls_per_second: (end.polls - start.polls) as f64 / window_seconds,
        polls_expected: options.objects as f64 * window_seconds
            / f64::from(options.polling_seconds.max(1)),
        skipped_polls: end.skipped - start.skipped,
        lag_p50_ms: p50.map_or(0.0, |estimate| ms(estimate.value)),
        lag_p99_ms: p99.map_or(0.0, |estimate| ms(estimate.value)),
        lag_p99_bucket_ms: p99.map_or(0.0, |estimate| ms(estimate.bucket_high)),
        lag_observations: lag.total(),
        status_publishes: end.publishes - start.publishes,
        target_writes: end.writes - start.writes,
        pool_connections: pool.len(),
    };
    let figures = serde_json::to_value(&figures)
        .map_err(|source| BenchError::json("controller figures", source))?;
    ChildMessage::Result { figures }.emit()?;
    supervisor.shutdown().await;
    Ok(())
}
