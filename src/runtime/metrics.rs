//! The runtime's Prometheus metrics, registered once in the host's single registry.
//!
//! Label sets are bounded: per-object and per-trigger series are removed when the object's
//! loop stops, and RPC series are keyed by scaler address, method and status code only. Hot
//! paths keep cloned metric handles (they share their atomics with the registry), so a poll
//! takes no registry lock.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use super::ObjectKey;
use super::keda_metrics::{KedaMetrics, KedaTrigger, MetricNames};

// Label values are shared `Arc<str>`s: an object's ten-odd series (and every copy of their
// label sets the families and pollers keep) point at one allocation of its namespace and
// name, which matters at 100,000 objects.

/// Labels of per-object series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ObjectLabels {
    /// Namespace of the object ("" outside Kubernetes).
    pub namespace: Arc<str>,
    /// Name of the object.
    pub object: Arc<str>,
}

impl From<&ObjectKey> for ObjectLabels {
    fn from(key: &ObjectKey) -> Self {
        Self {
            namespace: Arc::from(key.namespace.as_str()),
            object: Arc::from(key.name.as_str()),
        }
    }
}

impl ObjectLabels {
    /// The labels of one of the object's triggers, sharing this object's label values.
    pub fn trigger(&self, trigger: &str) -> TriggerLabels {
        TriggerLabels {
            namespace: self.namespace.clone(),
            object: self.object.clone(),
            trigger: Arc::from(trigger),
        }
    }
}

/// Labels of per-trigger series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TriggerLabels {
    /// Namespace of the object.
    pub namespace: Arc<str>,
    /// Name of the object.
    pub object: Arc<str>,
    /// Name of the trigger.
    pub trigger: Arc<str>,
}

impl TriggerLabels {
    /// The labels of one metric of this trigger, sharing this trigger's label values.
    pub fn metric(&self, metric: &str) -> MetricLabels {
        MetricLabels {
            namespace: self.namespace.clone(),
            object: self.object.clone(),
            trigger: self.trigger.clone(),
            metric: Arc::from(metric),
        }
    }
}

/// Labels of per-metric series of a trigger.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MetricLabels {
    /// Namespace of the object.
    pub namespace: Arc<str>,
    /// Name of the object.
    pub object: Arc<str>,
    /// Name of the trigger.
    pub trigger: Arc<str>,
    /// Metric name as the scaler reports it.
    pub metric: Arc<str>,
}

/// Labels of scaler RPC series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RpcLabels {
    /// Scaler address as configured (`host:port`).
    pub address: String,
    /// RPC name, e.g. `GetMetrics`.
    pub method: &'static str,
    /// gRPC status code name, e.g. `Ok`, `Unavailable`.
    pub code: String,
}

/// Builds RPC latency histograms with the runtime's buckets.
#[derive(Clone, Debug)]
pub struct RpcHistogram;

impl MetricConstructor<Histogram> for RpcHistogram {
    fn new_metric(&self) -> Histogram {
        // 0.25 ms .. ~8 s: loopback sidecars answer in well under a millisecond.
        Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
    }
}

/// A float gauge (metric values are fractional).
pub type FloatGauge = Gauge<f64, AtomicU64>;

/// Every metric the runtime records. Cheap to clone: all handles are shared.
#[derive(Clone, Debug)]
pub struct RuntimeMetrics {
    /// Last value of each trigger metric.
    pub trigger_metric_value: Family<MetricLabels, FloatGauge>,
    /// Last target per replica of each trigger metric.
    pub trigger_metric_target: Family<MetricLabels, FloatGauge>,
    /// 1 when a trigger is active, 0 otherwise.
    pub trigger_active: Family<TriggerLabels, Gauge>,
    /// Consecutive failed polls of a trigger.
    pub trigger_failures: Family<TriggerLabels, Gauge>,
    /// Scaler RPC latency by address, method and code.
    pub scaler_rpc_duration: Family<RpcLabels, Histogram, RpcHistogram>,
    /// Failed scaler RPCs by address, method and code.
    pub scaler_errors: Family<RpcLabels, Counter>,
    /// Replicas the engine wants per object.
    pub desired_replicas: Family<ObjectLabels, Gauge>,
    /// Replicas the target has per object.
    pub current_replicas: Family<ObjectLabels, Gauge>,
    /// 1 while fallback decides an object's replicas, 0 otherwise.
    pub fallback: Family<ObjectLabels, Gauge>,
    /// 1 while an object is paused by annotation, 0 otherwise.
    pub paused: Family<ObjectLabels, Gauge>,
    /// Failures reading or writing scale targets, per object.
    pub reconcile_errors: Family<ObjectLabels, Counter>,
    /// Replica changes applied, per object.
    pub scale_changes: Family<ObjectLabels, Counter>,
    /// How late polls start compared with their schedule.
    pub scale_loop_lag: Histogram,
    /// Polls skipped because the previous one overran a whole interval.
    pub skipped_polls: Counter,
    /// Trigger polls started (one per trigger per poll).
    pub trigger_polls: Counter,
    /// Scale loops running.
    pub scaled_objects: Gauge,
    /// Push stream (re)subscriptions, per scaler address.
    pub push_subscriptions: Family<ObjectLabels, Counter>,
    /// The same series under KEDA's names (`--metrics-names keda`), when asked for.
    pub keda: Option<KedaMetrics>,
}

impl RuntimeMetrics {
    /// Creates the metrics and registers them in `registry` under the `ebb_` prefix.
    pub fn register(registry: &mut Registry) -> Self {
        Self::register_with(registry, MetricNames::Ebb)
    }

    /// Like [`RuntimeMetrics::register`], and with [`MetricNames::Keda`] also under KEDA's
    /// names and labels (`keda_` prefix).
    pub fn register_with(registry: &mut Registry, names: MetricNames) -> Self {
        let mut metrics = Self::unregistered();
        if names == MetricNames::Keda {
            metrics.keda = Some(KedaMetrics::register(registry));
        }
        let r = registry.sub_registry_with_prefix("ebb");
        r.register(
            "trigger_metric_value",
            "Last value read for each metric of a trigger",
            metrics.trigger_metric_value.clone(),
        );
        r.register(
            "trigger_metric_target",
            "Target per replica reported for each metric of a trigger",
            metrics.trigger_metric_target.clone(),
        );
        r.register(
            "trigger_active",
            "Whether a trigger is active (1) or not (0)",
            metrics.trigger_active.clone(),
        );
        r.register(
            "trigger_consecutive_failures",
            "Failed polls of a trigger since its last success",
            metrics.trigger_failures.clone(),
        );
        r.register(
            "scaler_rpc_duration_seconds",
            "Latency of scaler RPCs by address, method and status code",
            metrics.scaler_rpc_duration.clone(),
        );
        r.register(
            "scaler_errors",
            "Failed scaler RPCs by address, method and status code",
            metrics.scaler_errors.clone(),
        );
        r.register(
            "desired_replicas",
            "Replicas the scaling engine wants",
            metrics.desired_replicas.clone(),
        );
        r.register(
            "current_replicas",
            "Replicas the scale target has",
            metrics.current_replicas.clone(),
        );
        r.register(
            "fallback",
            "Whether fallback decides the object's replicas (1) or not (0)",
            metrics.fallback.clone(),
        );
        r.register(
            "paused",
            "Whether the object is paused by annotation (1) or not (0)",
            metrics.paused.clone(),
        );
        r.register(
            "reconcile_errors",
            "Failures reading or writing a scale target",
            metrics.reconcile_errors.clone(),
        );
        r.register(
            "scale_changes",
            "Replica changes applied to a scale target",
            metrics.scale_changes.clone(),
        );
        r.register(
            "scale_loop_lag_seconds",
            "How late a poll started compared with its schedule",
            metrics.scale_loop_lag.clone(),
        );
        r.register(
            "skipped_polls",
            "Polls skipped because the previous poll overran a whole interval",
            metrics.skipped_polls.clone(),
        );
        r.register(
            "trigger_polls",
            "Trigger polls run (one per trigger per poll)",
            metrics.trigger_polls.clone(),
        );
        r.register(
            "scaled_objects",
            "Scale loops running",
            metrics.scaled_objects.clone(),
        );
        r.register(
            "push_subscriptions",
            "StreamIsActive subscriptions opened (first and re-subscriptions) per object",
            metrics.push_subscriptions.clone(),
        );
        metrics
    }

    /// Metrics that are recorded but not exported (tests, or a host without `/metrics`).
    pub fn unregistered() -> Self {
        Self {
            trigger_metric_value: Family::default(),
            trigger_metric_target: Family::default(),
            trigger_active: Family::default(),
            trigger_failures: Family::default(),
            scaler_rpc_duration: Family::new_with_constructor(RpcHistogram),
            scaler_errors: Family::default(),
            desired_replicas: Family::default(),
            current_replicas: Family::default(),
            fallback: Family::default(),
            paused: Family::default(),
            reconcile_errors: Family::default(),
            scale_changes: Family::default(),
            scale_loop_lag: Histogram::new(exponential_buckets(0.001, 2.0, 14)),
            skipped_polls: Counter::default(),
            trigger_polls: Counter::default(),
            scaled_objects: Gauge::default(),
            push_subscriptions: Family::default(),
            keda: None,
        }
    }

    /// The KEDA-named series of one trigger, when KEDA's names are exported.
    pub(crate) fn keda_trigger(
        &self,
        labels: &TriggerLabels,
        trigger_index: u32,
    ) -> Option<KedaTrigger> {
        self.keda
            .as_ref()
            .map(|keda| keda.trigger(labels, trigger_index))
    }

    /// Records one scheduled poll of a ScaledObject: how late it started, and whether the
    /// object is paused (`paused_gauge`: the object's own handle on `paused`, kept by its loop
    /// so a poll neither allocates labels nor looks the series up).
    pub(crate) fn record_loop(
        &self,
        key: &ObjectKey,
        paused_gauge: &Gauge,
        lag_seconds: f64,
        paused: bool,
    ) {
        self.scale_loop_lag.observe(lag_seconds);
        paused_gauge.set(i64::from(paused));
        if let Some(keda) = &self.keda {
            keda.record_loop(key, lag_seconds, paused);
        }
    }

    /// Removes the series of one trigger (the trigger was removed from the object).
    pub(crate) fn forget_trigger(&self, labels: &TriggerLabels, metrics: &[MetricLabels]) {
        self.trigger_active.remove(labels);
        self.trigger_failures.remove(labels);
        if let Some(keda) = &self.keda {
            keda.forget_trigger(labels);
        }
        for labels in metrics {
            self.trigger_metric_value.remove(labels);
            self.trigger_metric_target.remove(labels);
        }
    }

    /// Removes every per-object series of `key` (its loop stopped).
    pub(crate) fn forget_object(
        &self,
        key: &ObjectKey,
        labels: &ObjectLabels,
        triggers: &[String],
        metrics: &[MetricLabels],
    ) {
        self.desired_replicas.remove(labels);
        self.current_replicas.remove(labels);
        self.fallback.remove(labels);
        self.paused.remove(labels);
        self.reconcile_errors.remove(labels);
        self.scale_changes.remove(labels);
        self.push_subscriptions.remove(labels);
        for trigger in triggers {
            let labels = labels.trigger(trigger);
            self.trigger_active.remove(&labels);
            self.trigger_failures.remove(&labels);
            if let Some(keda) = &self.keda {
                keda.forget_trigger(&labels);
            }
        }
        if let Some(keda) = &self.keda {
            keda.forget_object(key);
        }
        for labels in metrics {
            self.trigger_metric_value.remove(labels);
            self.trigger_metric_target.remove(labels);
        }
    }
}
