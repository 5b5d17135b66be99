//! `--metrics-names keda`: the same series again under KEDA's metric and label names, so
//! dashboards and alerts written for KEDA keep working. The mapping (documented in
//! docs/metrics.md):
//!
//! | ebb | KEDA |
//! |---|---|
//! | `ebb_trigger_metric_value{namespace,object,trigger,metric}` | `keda_scaler_metrics_value{namespace,scaledObject,scaler,triggerIndex,metric,type}` |
//! | `ebb_trigger_active{namespace,object,trigger}` | `keda_scaler_active{...same labels}` (one series per metric) |
//! | failed polls (`ebb_trigger_consecutive_failures` rises) | `keda_scaler_detail_errors_total{...same labels}` |
//! | pause annotations | `keda_scaled_object_paused{namespace,scaledObject}` |
//! | `ebb_scale_loop_lag_seconds` (histogram) | `keda_internal_scale_loop_latency_seconds{namespace,type,resource}` (last value) |
//! | build | `keda_build_info{version,git_commit,goversion,goos,goarch}` |
//!
//! `scaler` carries ebb's trigger name (KEDA writes its scaler's type name there), `metric`
//! KEDA's `s<triggerIndex>-<metric>` form, `type` `scaledobject` or `scaledjob`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::ObjectKey;
use super::metrics::{FloatGauge, TriggerLabels};

/// Which metric names `/metrics` carries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum MetricNames {
    /// ebb's names only.
    #[default]
    Ebb,
    /// ebb's names and, for the same series, KEDA's.
    Keda,
}

/// Labels of KEDA's per-scaler series (KEDA spells them in camelCase).
#[allow(non_snake_case)]
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KedaScalerLabels {
    /// Namespace of the object.
    pub namespace: String,
    /// `s<triggerIndex>-<metric>`, as KEDA names metrics towards the HPA.
    pub metric: String,
    /// Name of the ScaledObject or ScaledJob.
    pub scaledObject: String,
    /// ebb's trigger name.
    pub scaler: String,
    /// Position of the trigger in `spec.triggers`.
    pub triggerIndex: String,
    /// `scaledobject` or `scaledjob`.
    pub r#type: String,
}

/// Labels of KEDA's per-object series.
#[allow(non_snake_case)]
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KedaObjectLabels {
    /// Namespace of the object.
    pub namespace: String,
    /// Name of the ScaledObject.
    pub scaledObject: String,
}

/// Labels of KEDA's scale-loop latency.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KedaLoopLabels {
    /// Namespace of the object.
    pub namespace: String,
    /// `scaledobject` or `scaledjob`.
    pub r#type: String,
    /// Name of the object.
    pub resource: String,
}

/// Labels of `keda_build_info`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
    git_commit: String,
    goversion: String,
    goos: String,
    goarch: String,
}

/// KEDA-named series. Cheap to clone: all handles are shared.
#[derive(Clone, Debug, Default)]
pub struct KedaMetrics {
    metrics_value: Family<KedaScalerLabels, FloatGauge>,
    active: Family<KedaScalerLabels, FloatGauge>,
    errors: Family<KedaScalerLabels, Counter>,
    paused: Family<KedaObjectLabels, Gauge>,
    loop_latency: Family<KedaLoopLabels, FloatGauge>,
    /// Every KEDA label set created per trigger, so the series go when the trigger does.
    created: Arc<Mutex<HashMap<TriggerLabels, Vec<KedaScalerLabels>>>>,
}

impl KedaMetrics {
    /// Creates the series and registers them under the `keda_` prefix.
    pub(crate) fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        let r = registry.sub_registry_with_prefix("keda");
        r.register(
            "scaler_metrics_value",
            "Last value of each scaler metric (ebb_trigger_metric_value under KEDA's name)",
            metrics.metrics_value.clone(),
        );
        r.register(
            "scaler_active",
            "Whether a scaler is active (ebb_trigger_active under KEDA's name)",
            metrics.active.clone(),
        );
        r.register(
            "scaler_detail_errors",
            "Failed polls of each scaler",
            metrics.errors.clone(),
        );
        r.register(
            "scaled_object_paused",
            "Whether a ScaledObject is paused by annotation",
            metrics.paused.clone(),
        );
        r.register(
            "internal_scale_loop_latency_seconds",
            "How late the last poll of an object started compared with its schedule",
            metrics.loop_latency.clone(),
        );
        let build: Family<BuildLabels, Gauge> = Family::default();
        build.get_or_create(&build_labels()).set(1);
        r.register("build_info", "ebb's version, under KEDA's name", build);
        metrics
    }

    /// The KEDA-named series of one trigger of a ScaledObject.
    pub(crate) fn trigger(&self, owner: &TriggerLabels, trigger_index: u32) -> KedaTrigger {
        KedaTrigger {
            metrics: self.clone(),
            owner: owner.clone(),
            trigger_index,
            resource_type: "scaledobject",
        }
    }

    /// Records one scheduled poll of a ScaledObject: its lag and whether it is paused.
    pub(crate) fn record_loop(&self, key: &ObjectKey, lag_seconds: f64, paused: bool) {
        self.loop_latency
            .get_or_create(&loop_labels(key))
            .set(lag_seconds);
        self.paused
            .get_or_create(&object_labels(key))
            .set(i64::from(paused));
    }

    /// Removes every series of one trigger.
    pub(crate) fn forget_trigger(&self, owner: &TriggerLabels) {
        let created = self
            .created
            .lock()
            .map(|mut created| created.remove(owner).unwrap_or_default())
            .unwrap_or_default();
        for labels in created {
            self.metrics_value.remove(&labels);
            self.active.remove(&labels);
            self.errors.remove(&labels);
        }
    }

    /// Removes the per-object series of `key`.
    pub(crate) fn forget_object(&self, key: &ObjectKey) {
        self.paused.remove(&object_labels(key));
        self.loop_latency.remove(&loop_labels(key));
    }
}

fn object_labels(key: &ObjectKey) -> KedaObjectLabels {
    KedaObjectLabels {
        namespace: key.namespace.clone(),
        scaledObject: key.name.clone(),
    }
}

fn loop_labels(key: &ObjectKey) -> KedaLoopLabels {
    KedaLoopLabels {
        namespace: key.namespace.clone(),
        r#type: "scaledobject".to_owned(),
        resource: key.name.clone(),
    }
}

fn build_labels() -> BuildLabels {
    // KEDA's label names are Go's; the values say what this build is.
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    BuildLabels {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        git_commit: option_env!("EBB_GIT_COMMIT")
            .unwrap_or("unknown")
            .to_owned(),
        goversion: "none (ebb is written in Rust)".to_owned(),
        goos: std::env::consts::OS.to_owned(),
        goarch: arch.to_owned(),
    }
}

/// One trigger's KEDA-named series, written by its poller.
#[derive(Clone, Debug)]
pub(crate) struct KedaTrigger {
    metrics: KedaMetrics,
    owner: TriggerLabels,
    trigger_index: u32,
    resource_type: &'static str,
}

impl KedaTrigger {
    /// Marks the trigger as one of a ScaledJob.
    pub(crate) fn for_scaled_job(&mut self) {
        self.resource_type = "scaledjob";
    }

    fn labels(&self, metric: &str) -> KedaScalerLabels {
        let labels = KedaScalerLabels {
            namespace: self.owner.namespace.to_string(),
            metric: format!("s{}-{metric}", self.trigger_index),
            scaledObject: self.owner.object.to_string(),
            scaler: self.owner.trigger.to_string(),
            triggerIndex: self.trigger_index.to_string(),
            r#type: self.resource_type.to_owned(),
        };
        if let Ok(mut created) = self.metrics.created.lock() {
            let known = created.entry(self.owner.clone()).or_default();
            if !known.contains(&labels) {
                known.push(labels.clone());
            }
        }
        labels
    }

    /// A successful poll: each metric's value (names as ebb labels them) and the activity.
    pub(crate) fn record_success<'a>(
        &self,
        active: bool,
        values: impl Iterator<Item = (&'a str, f64)>,
    ) {
        for (metric, value) in values {
            let labels = self.labels(metric);
            self.metrics.metrics_value.get_or_create(&labels).set(value);
            self.metrics
                .active
                .get_or_create(&labels)
                .set(if active { 1.0 } else { 0.0 });
        }
    }

    /// A failed poll, counted against each metric the trigger has reported (against the
    /// trigger's name before it ever answered).
    pub(crate) fn record_failure<'a>(&self, metrics: impl Iterator<Item = &'a str>) {
        let mut metrics = metrics.peekable();
        if metrics.peek().is_none() {
            self.metrics
                .errors
                .get_or_create(&self.labels(&self.owner.trigger))
                .inc();
            return;
        }
        for metric in metrics {
            self.metrics
                .errors
                .get_or_create(&self.labels(metric))
                .inc();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_carry_keda_names_and_labels_and_go_with_their_trigger() {
        let mut registry = Registry::default();
        let keda = KedaMetrics::register(&mut registry);
        let owner = TriggerLabels {
            namespace: "apps".into(),
            object: "consumer".into(),
            trigger: "rabbitmq-0".into(),
        };
        let trigger = keda.trigger(&owner, 0);
        trigger.record_success(true, [("queue-hello", 12.0)].into_iter());
        trigger.record_failure(["queue-hello"].into_iter());
        keda.record_loop(&ObjectKey::new("apps", "consumer"), 0.25, true);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for line in [
            "keda_scaler_metrics_value{namespace=\"apps\",metric=\"s0-queue-hello\",scaledObject=\"consumer\",scaler=\"rabbitmq-0\",triggerIndex=\"0\",type=\"scaledobject\"} 12.0",
            "keda_scaler_active{namespace=\"apps\",metric=\"s0-queue-hello\",scaledObject=\"consumer\",scaler=\"rabbitmq-0\",triggerIndex=\"0\",type=\"scaledobject\"} 1.0",
            "keda_scaler_detail_errors_total{namespace=\"apps\",metric=\"s0-queue-hello\",scaledObject=\"consumer\",scaler=\"rabbitmq-0\",triggerIndex=\"0\",type=\"scaledobject\"} 1",
            "keda_scaled_object_paused{namespace=\"apps\",scaledObject=\"consumer\"} 1",
            "keda_internal_scale_loop_latency_seconds{namespace=\"apps\",type=\"scaledobject\",resource=\"consumer\"} 0.25",
        ] {
            assert!(text.contains(line), "{line}\n{text}");
        }
        assert!(text.contains("keda_build_info{version=\""), "{text}");
        keda.forget_trigger(&owner);
        keda.forget_object(&ObjectKey::new("apps", "consumer"));
        let mut after = String::new();
        prometheus_client::encoding::text::encode(&mut after, &registry).unwrap();
        assert!(!after.contains("scaledObject=\"consumer\""), "{after}");
    }
}
