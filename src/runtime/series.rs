//! Per-object and per-trigger series, read when `/metrics` is scraped.
//!
//! A `Family` keeps a hash-table entry, a copy of the label set and a separate atomic per
//! series: about 1.3 KiB for the ten series of an object with one trigger, which at 100,000
//! objects is most of a controller's memory. Here an object keeps its numbers in one
//! allocation that its loop writes to, and [`SeriesIndex`] walks the live objects at scrape
//! time. The exported names, labels and types are the same as a family's.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeCounterValue, EncodeGaugeValue, EncodeLabelSet, NoLabelSet,
};
use prometheus_client::metrics::MetricType;

use super::ObjectKey;
use super::metrics::{MetricLabels, ObjectLabels, TriggerLabels};

/// Metric names come from the scaler; bound them so a misbehaving scaler cannot grow the
/// series set without limit. Further names are reported as `other`.
pub(crate) const MAX_METRICS_PER_TRIGGER: usize = 8;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The live series of every object and job, exported by one collector.
#[derive(Clone, Debug, Default)]
pub(crate) struct SeriesIndex {
    inner: Arc<Mutex<IndexInner>>,
}

#[derive(Debug, Default)]
struct IndexInner {
    owners: HashMap<u64, Arc<ObjectSeries>>,
    next_id: u64,
}

impl SeriesIndex {
    /// Series for a ScaledObject (replica series and its triggers'), exported until
    /// [`SeriesIndex::remove`].
    pub(crate) fn scaled_object(&self, labels: ObjectLabels) -> Arc<ObjectSeries> {
        self.insert(labels, true)
    }

    /// Series for a ScaledJob: only its triggers' series are exported.
    pub(crate) fn scaled_job(&self, labels: ObjectLabels) -> Arc<ObjectSeries> {
        self.insert(labels, false)
    }

    fn insert(&self, labels: ObjectLabels, replicas: bool) -> Arc<ObjectSeries> {
        let mut inner = lock(&self.inner);
        let id = inner.next_id;
        inner.next_id += 1;
        let series = Arc::new(ObjectSeries {
            id,
            labels,
            replicas,
            desired: AtomicI64::new(0),
            current: AtomicI64::new(0),
            fallback: AtomicBool::new(false),
            paused: AtomicBool::new(false),
            pushing: AtomicBool::new(false),
            reconcile_errors: AtomicU64::new(0),
            scale_changes: AtomicU64::new(0),
            push_subscriptions: AtomicU64::new(0),
            triggers: Mutex::new(Vec::new()),
        });
        inner.owners.insert(id, series.clone());
        series
    }

    /// Stops exporting `series` (its loop stopped).
    pub(crate) fn remove(&self, series: &ObjectSeries) {
        lock(&self.inner).owners.remove(&series.id);
    }

    /// How many objects opened at least one push subscription.
    pub(crate) fn subscribed_objects(&self) -> usize {
        lock(&self.inner)
            .owners
            .values()
            .filter(|owner| owner.push_subscriptions.load(Ordering::Relaxed) > 0)
            .count()
    }

    /// Push subscriptions opened by the running object `key` (a scan: for tests and tools).
    pub(crate) fn push_subscriptions(&self, key: &ObjectKey) -> u64 {
        lock(&self.inner)
            .owners
            .values()
            .filter(|owner| {
                owner.replicas
                    && *owner.labels.namespace == *key.namespace
                    && *owner.labels.object == *key.name
            })
            .map(|owner| owner.push_subscriptions.load(Ordering::Relaxed))
            .sum()
    }

    fn snapshot(&self) -> Vec<Arc<ObjectSeries>> {
        lock(&self.inner).owners.values().cloned().collect()
    }
}

/// One object's numbers. Its loop writes them; the collector reads them.
#[derive(Debug)]
pub(crate) struct ObjectSeries {
    id: u64,
    labels: ObjectLabels,
    /// A ScaledObject has replica series; a ScaledJob only trigger series.
    replicas: bool,
    desired: AtomicI64,
    current: AtomicI64,
    fallback: AtomicBool,
    paused: AtomicBool,
    /// Set once a push subscription was started (the counter is exported from then on).
    pushing: AtomicBool,
    reconcile_errors: AtomicU64,
    scale_changes: AtomicU64,
    push_subscriptions: AtomicU64,
    triggers: Mutex<Vec<Arc<TriggerSeries>>>,
}

impl ObjectSeries {
    /// Replicas the engine wants.
    pub(crate) fn set_desired(&self, replicas: u32) {
        self.desired.store(i64::from(replicas), Ordering::Relaxed);
    }

    /// Replicas the target has.
    pub(crate) fn set_current(&self, replicas: u32) {
        self.current.store(i64::from(replicas), Ordering::Relaxed);
    }

    /// Whether fallback decides the replicas.
    pub(crate) fn set_fallback(&self, fallback: bool) {
        self.fallback.store(fallback, Ordering::Relaxed);
    }

    /// Whether the object is paused by annotation.
    pub(crate) fn set_paused(&self, paused: bool) {
        self.paused.store(paused, Ordering::Relaxed);
    }

    /// Counts a failure reading or writing the target.
    pub(crate) fn count_reconcile_error(&self) {
        self.reconcile_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an applied replica change.
    pub(crate) fn count_scale_change(&self) {
        self.scale_changes.fetch_add(1, Ordering::Relaxed);
    }

    /// A push subscription was started: its counter is exported from now on.
    pub(crate) fn start_pushing(&self) {
        self.pushing.store(true, Ordering::Relaxed);
    }

    /// Counts a StreamIsActive (re)subscription.
    pub(crate) fn count_push_subscription(&self) {
        self.push_subscriptions.fetch_add(1, Ordering::Relaxed);
    }

    /// The series of trigger `name`: the exported one when the object has it already (so a
    /// rebuilt poller keeps the last values), a new one otherwise. A new one is exported once
    /// it is part of [`ObjectSeries::set_triggers`].
    pub(crate) fn trigger(&self, name: &str) -> Arc<TriggerSeries> {
        let existing = lock(&self.triggers)
            .iter()
            .find(|trigger| &*trigger.labels.trigger == name)
            .cloned();
        existing.unwrap_or_else(|| {
            Arc::new(TriggerSeries {
                labels: self.labels.trigger(name),
                active: AtomicBool::new(false),
                failures: AtomicU64::new(0),
                values: Mutex::new(Vec::new()),
            })
        })
    }

    /// The labels of the object's exported triggers.
    pub(crate) fn trigger_labels(&self) -> Vec<TriggerLabels> {
        lock(&self.triggers)
            .iter()
            .map(|trigger| trigger.labels.clone())
            .collect()
    }

    /// The object's triggers now; series of triggers not listed are no longer exported.
    pub(crate) fn set_triggers(&self, triggers: impl IntoIterator<Item = Arc<TriggerSeries>>) {
        let mut current = lock(&self.triggers);
        current.clear();
        current.extend(triggers);
        current.shrink_to_fit();
    }
}

/// One trigger's numbers.
#[derive(Debug)]
pub(crate) struct TriggerSeries {
    labels: TriggerLabels,
    active: AtomicBool,
    failures: AtomicU64,
    values: Mutex<Vec<MetricSeries>>,
}

/// The last value and target of one metric of a trigger.
#[derive(Debug)]
struct MetricSeries {
    /// Its `metric` label is the key for updates: the name the scaler reported, or `other`
    /// past the bound.
    labels: MetricLabels,
    value: f64,
    target: f64,
}

impl TriggerSeries {
    /// The trigger's label values.
    pub(crate) fn labels(&self) -> &TriggerLabels {
        &self.labels
    }

    /// A successful poll: whether the trigger is active, and its failure count back to 0.
    pub(crate) fn set_polled(&self, active: bool) {
        self.active.store(active, Ordering::Relaxed);
        self.failures.store(0, Ordering::Relaxed);
    }

    /// Failed polls since the last success.
    pub(crate) fn set_failures(&self, failures: u32) {
        self.failures.store(u64::from(failures), Ordering::Relaxed);
    }

    /// Records each reported metric's value and target. Beyond
    /// [`MAX_METRICS_PER_TRIGGER`] names, new names share the `other` series.
    pub(crate) fn record_values<'a>(&self, values: impl Iterator<Item = (&'a str, f64, f64)>) {
        let mut known = lock(&self.values);
        for (reported, value, target) in values {
            let name = if known.len() < MAX_METRICS_PER_TRIGGER
                || known
                    .iter()
                    .any(|series| &*series.labels.metric == reported)
            {
                reported
            } else {
                "other"
            };
            if let Some(series) = known
                .iter_mut()
                .find(|series| &*series.labels.metric == name)
            {
                series.value = value;
                series.target = target;
                continue;
            }
            // Most triggers report one metric: grow one at a time, not to Vec's first four.
            known.reserve_exact(1);
            known.push(MetricSeries {
                labels: self.labels.metric(name),
                value,
                target,
            });
        }
    }

    /// Each exported metric name with its last value.
    pub(crate) fn values(&self) -> Vec<(Arc<str>, f64)> {
        lock(&self.values)
            .iter()
            .map(|series| (series.labels.metric.clone(), series.value))
            .collect()
    }
}

/// One exported family: name, help, type, and how to read each owner's samples.
struct Exported {
    name: &'static str,
    help: &'static str,
    metric_type: MetricType,
    write: fn(&ObjectSeries, &mut SampleWriter<'_, '_>) -> Result<(), std::fmt::Error>,
}

/// Writes the samples of one family.
struct SampleWriter<'e, 's> {
    encoder: &'e mut prometheus_client::encoding::MetricEncoder<'s>,
}

impl SampleWriter<'_, '_> {
    fn gauge(
        &mut self,
        labels: &impl EncodeLabelSet,
        value: impl EncodeGaugeValue,
    ) -> Result<(), std::fmt::Error> {
        self.encoder.encode_family(labels)?.encode_gauge(&value)
    }

    fn counter(
        &mut self,
        labels: &impl EncodeLabelSet,
        value: impl EncodeCounterValue,
    ) -> Result<(), std::fmt::Error> {
        self.encoder
            .encode_family(labels)?
            .encode_counter::<NoLabelSet, _, u64>(&value, None)
    }
}

/// A ScaledObject's replica-level gauge (a ScaledJob has none).
fn replica_gauge(
    owner: &ObjectSeries,
    writer: &mut SampleWriter<'_, '_>,
    value: i64,
) -> Result<(), std::fmt::Error> {
    if owner.replicas {
        writer.gauge(&owner.labels, value)?;
    }
    Ok(())
}

fn replica_counter(
    owner: &ObjectSeries,
    writer: &mut SampleWriter<'_, '_>,
    counter: &AtomicU64,
) -> Result<(), std::fmt::Error> {
    if owner.replicas {
        writer.counter(&owner.labels, counter.load(Ordering::Relaxed))?;
    }
    Ok(())
}

fn each_trigger(
    owner: &ObjectSeries,
    mut write: impl FnMut(&TriggerSeries) -> Result<(), std::fmt::Error>,
) -> Result<(), std::fmt::Error> {
    // Held while writing text into the scrape's buffer: only a trigger change (a rebuild of
    // the object's pollers) waits for it, never a poll.
    for trigger in lock(&owner.triggers).iter() {
        write(trigger)?;
    }
    Ok(())
}

fn each_metric(
    owner: &ObjectSeries,
    writer: &mut SampleWriter<'_, '_>,
    read: fn(&MetricSeries) -> f64,
) -> Result<(), std::fmt::Error> {
    each_trigger(owner, |trigger| {
        for series in lock(&trigger.values).iter() {
            writer.gauge(&series.labels, read(series))?;
        }
        Ok(())
    })
}

// Same names, help and types as the families they replace (see `RuntimeMetrics::register`).
const EXPORTED: &[Exported] = &[
    Exported {
        name: "trigger_metric_value",
        help: "Last value read for each metric of a trigger",
        metric_type: MetricType::Gauge,
        write: |owner, writer| each_metric(owner, writer, |series| series.value),
    },
    Exported {
        name: "trigger_metric_target",
        help: "Target per replica reported for each metric of a trigger",
        metric_type: MetricType::Gauge,
        write: |owner, writer| each_metric(owner, writer, |series| series.target),
    },
    Exported {
        name: "trigger_active",
        help: "Whether a trigger is active (1) or not (0)",
        metric_type: MetricType::Gauge,
        write: |owner, writer| {
            each_trigger(owner, |trigger| {
                let active = i64::from(trigger.active.load(Ordering::Relaxed));
                writer.gauge(&trigger.labels, active)
            })
        },
    },
    Exported {
        name: "trigger_consecutive_failures",
        help: "Failed polls of a trigger since its last success",
        metric_type: MetricType::Gauge,
        write: |owner, writer| {
            each_trigger(owner, |trigger| {
                writer.gauge(&trigger.labels, trigger.failures.load(Ordering::Relaxed))
            })
        },
    },
    Exported {
        name: "desired_replicas",
        help: "Replicas the scaling engine wants",
        metric_type: MetricType::Gauge,
        write: |owner, writer| replica_gauge(owner, writer, owner.desired.load(Ordering::Relaxed)),
    },
    Exported {
        name: "current_replicas",
        help: "Replicas the scale target has",
        metric_type: MetricType::Gauge,
        write: |owner, writer| replica_gauge(owner, writer, owner.current.load(Ordering::Relaxed)),
    },
    Exported {
        name: "fallback",
        help: "Whether fallback decides the object's replicas (1) or not (0)",
        metric_type: MetricType::Gauge,
        write: |owner, writer| {
            replica_gauge(
                owner,
                writer,
                i64::from(owner.fallback.load(Ordering::Relaxed)),
            )
        },
    },
    Exported {
        name: "paused",
        help: "Whether the object is paused by annotation (1) or not (0)",
        metric_type: MetricType::Gauge,
        write: |owner, writer| {
            replica_gauge(
                owner,
                writer,
                i64::from(owner.paused.load(Ordering::Relaxed)),
            )
        },
    },
    Exported {
        name: "reconcile_errors",
        help: "Failures reading or writing a scale target",
        metric_type: MetricType::Counter,
        write: |owner, writer| replica_counter(owner, writer, &owner.reconcile_errors),
    },
    Exported {
        name: "scale_changes",
        help: "Replica changes applied to a scale target",
        metric_type: MetricType::Counter,
        write: |owner, writer| replica_counter(owner, writer, &owner.scale_changes),
    },
    Exported {
        name: "push_subscriptions",
        help: "StreamIsActive subscriptions opened (first and re-subscriptions) per object",
        metric_type: MetricType::Counter,
        write: |owner, writer| {
            if owner.pushing.load(Ordering::Relaxed) {
                let count = owner.push_subscriptions.load(Ordering::Relaxed);
                writer.counter(&owner.labels, count)?;
            }
            Ok(())
        },
    },
];

impl Collector for SeriesIndex {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        // One snapshot of the owners for every family, so a scrape is consistent about
        // which objects exist; values are read as they are at that moment.
        let owners = self.snapshot();
        for exported in EXPORTED {
            let mut metric = encoder.encode_descriptor(
                exported.name,
                exported.help,
                None,
                exported.metric_type,
            )?;
            let mut writer = SampleWriter {
                encoder: &mut metric,
            };
            for owner in &owners {
                (exported.write)(owner, &mut writer)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::registry::Registry;

    fn scrape(index: &SeriesIndex) -> String {
        let mut registry = Registry::default();
        registry
            .sub_registry_with_prefix("ebb")
            .register_collector(Box::new(index.clone()));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encodes");
        text
    }

    #[test]
    fn an_object_exports_its_replica_and_trigger_series_until_removed() {
        let index = SeriesIndex::default();
        let object = index.scaled_object(ObjectLabels::from(&ObjectKey::new("ns", "orders")));
        object.set_desired(4);
        object.set_current(3);
        object.count_scale_change();
        let trigger = object.trigger("queue");
        trigger.set_polled(true);
        trigger.record_values([("backlog", 12.5, 5.0)].into_iter());
        object.set_triggers([trigger.clone()]);

        let text = scrape(&index);
        assert!(text.contains(r#"ebb_desired_replicas{namespace="ns",object="orders"} 4"#));
        assert!(text.contains(r#"ebb_current_replicas{namespace="ns",object="orders"} 3"#));
        assert!(text.contains(r#"ebb_scale_changes_total{namespace="ns",object="orders"} 1"#));
        assert!(text.contains(
            r#"ebb_trigger_metric_value{namespace="ns",object="orders",trigger="queue",metric="backlog"} 12.5"#
        ));
        assert!(text.contains(
            r#"ebb_trigger_metric_target{namespace="ns",object="orders",trigger="queue",metric="backlog"} 5.0"#
        ));
        assert!(
            text.contains(
                r#"ebb_trigger_active{namespace="ns",object="orders",trigger="queue"} 1"#
            )
        );
        assert!(!text.contains("ebb_push_subscriptions_total{"), "{text}");

        // A rebuilt poller of the same trigger gets the same series back.
        assert!(Arc::ptr_eq(&object.trigger("queue"), &trigger));
        index.remove(&object);
        let text = scrape(&index);
        assert!(!text.contains("orders"), "{text}");
        assert!(text.contains("# TYPE ebb_desired_replicas gauge"), "{text}");
    }

    #[test]
    fn a_job_exports_trigger_series_only_and_metric_names_are_bounded() {
        let index = SeriesIndex::default();
        let job = index.scaled_job(ObjectLabels::from(&ObjectKey::new("ns", "batch")));
        let trigger = job.trigger("queue");
        let names: Vec<String> = (0..MAX_METRICS_PER_TRIGGER + 3)
            .map(|n| format!("m{n}"))
            .collect();
        trigger.record_values(names.iter().map(|name| (name.as_str(), 1.0, 1.0)));
        job.set_triggers([trigger.clone()]);
        let text = scrape(&index);
        assert!(
            !text.contains(r#"ebb_desired_replicas{namespace="ns""#),
            "{text}"
        );
        assert!(
            text.contains(r#"trigger="queue",metric="m7"} 1.0"#),
            "{text}"
        );
        assert!(
            text.contains(r#"trigger="queue",metric="other"} 1.0"#),
            "{text}"
        );
        assert!(!text.contains(r#"metric="m8""#), "{text}");
        assert_eq!(trigger.values().len(), MAX_METRICS_PER_TRIGGER + 1);
    }
}
