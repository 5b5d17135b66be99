//! The runtime's Prometheus metrics, registered once in the host's single registry.
//!
//! Label sets are bounded: per-object and per-trigger series are removed when the object's
//! loop stops, and RPC series are keyed by scaler address, method and status code only.
//! Per-object series live in the loops' own [`ObjectSeries`] and are read at scrape time
//! (see [`super::series`]), so a poll takes no registry lock and an object costs one
//! allocation of numbers, not a family entry per series.

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
use super::series::{ObjectSeries, SeriesIndex};

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
    /// Per-object and per-trigger series (replicas, trigger activity, metric values),
    /// exported at scrape time from the loops' own numbers.
    pub(crate) objects: SeriesIndex,
    /// Scaler RPC latency by address, method and code.
    pub scaler_rpc_duration: Family<RpcLabels, Histogram, RpcHistogram>,
    /// Failed scaler RPCs by address, method and code.
    pub scaler_errors: Family<RpcLabels, Counter>,
    /// How late polls start compared with their schedule.
    pub scale_loop_lag: Histogram,
    /// Polls skipped because the previous one overran a whole interval.
    pub skipped_polls: Counter,
    /// Trigger polls started (one per trigger per poll).
    pub trigger_polls: Counter,
    /// Scale loops running.
    pub scaled_objects: Gauge,
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
        r.register_collector(Box::new(metrics.objects.clone()));
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
        metrics
    }

    /// Metrics that are recorded but not exported (tests, or a host without `/metrics`).
    pub fn unregistered() -> Self {
        Self {
            objects: SeriesIndex::default(),
            scaler_rpc_duration: Family::new_with_constructor(RpcHistogram),
            scaler_errors: Family::default(),
            scale_loop_lag: Histogram::new(exponential_buckets(0.001, 2.0, 14)),
            skipped_polls: Counter::default(),
            trigger_polls: Counter::default(),
            scaled_objects: Gauge::default(),
            keda: None,
        }
    }

    /// How many running objects opened at least one push (StreamIsActive) subscription.
    pub fn objects_subscribed_to_push(&self) -> usize {
        self.objects.subscribed_objects()
    }

    /// Push (StreamIsActive) subscriptions opened by the running object `key`, first and
    /// re-subscriptions (`ebb_push_subscriptions_total`).
    pub fn push_subscriptions(&self, key: &ObjectKey) -> u64 {
        self.objects.push_subscriptions(key)
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
    /// object is paused.
    pub(crate) fn record_loop(
        &self,
        key: &ObjectKey,
        series: &ObjectSeries,
        lag_seconds: f64,
        paused: bool,
    ) {
        self.scale_loop_lag.observe(lag_seconds);
        series.set_paused(paused);
        if let Some(keda) = &self.keda {
            keda.record_loop(key, lag_seconds, paused);
        }
    }

    /// Removes the KEDA-named series of one trigger (the trigger was removed from the
    /// object; the ebb-named ones go with [`ObjectSeries::set_triggers`]).
    pub(crate) fn forget_trigger(&self, labels: &TriggerLabels) {
        if let Some(keda) = &self.keda {
            keda.forget_trigger(labels);
        }
    }

    /// Removes every per-object series of `key` (its loop stopped).
    pub(crate) fn forget_object(&self, key: &ObjectKey, series: &ObjectSeries) {
        self.objects.remove(series);
        if let Some(keda) = &self.keda {
            for trigger in series.trigger_labels() {
                keda.forget_trigger(&trigger);
            }
            keda.forget_object(key);
        }
    }
}
