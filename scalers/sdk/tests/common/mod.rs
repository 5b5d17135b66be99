//! An in-test scaler whose source the test controls.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ebb_scaler_sdk::proto::v1::MetricTargetType;
use ebb_scaler_sdk::{Measurement, MetricSpec, Scaler, ScalerError, ScalerIdentity, Trigger};
use serde::Deserialize;

/// How the fake queue is read.
#[derive(Debug, Clone, Copy, Default, Deserialize, serde::Serialize, schemars::JsonSchema)]
pub enum Mode {
    /// Messages waiting.
    #[default]
    QueueLength,
    /// Messages per second.
    MessageRate,
}

/// Trigger metadata of the fake queue scaler.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueueConfig {
    /// Name of the queue to measure.
    pub queue_name: String,
    /// Messages one replica should handle.
    #[serde(default = "default_target")]
    pub value: f64,
    /// Active above this many messages.
    #[serde(default)]
    pub activation_value: f64,
    /// Password of the queue.
    #[schemars(extend("x-secret" = true))]
    pub password: Option<String>,
    /// What to measure.
    #[serde(default)]
    pub mode: Mode,
    /// Largest page to read.
    #[serde(default = "default_page")]
    pub page_size: u32,
    /// Whether to count unacked messages too.
    #[serde(default)]
    pub include_unacked: bool,
}

fn default_target() -> f64 {
    20.0
}

fn default_page() -> u32 {
    100
}

/// The fake source, shared between the test and the scaler.
#[derive(Debug, Default)]
pub struct Source {
    pub queues: Mutex<HashMap<String, (f64, u64)>>,
    pub down: AtomicBool,
    pub delay_ms: AtomicUsize,
    pub measurements: AtomicUsize,
    /// The `activationValue` of the trigger behind each measurement, in order: which
    /// subscriber's trigger a shared sampler measures with.
    pub measured_with: Mutex<Vec<f64>>,
}

impl Source {
    pub fn set(&self, queue: &str, value: f64, in_flight: u64) {
        self.queues
            .lock()
            .unwrap()
            .insert(queue.into(), (value, in_flight));
    }
}

/// A scaler over [`Source`].
#[derive(Debug, Clone, Default)]
pub struct QueueScaler {
    pub source: Arc<Source>,
    pub push: Option<Duration>,
}

impl Scaler for QueueScaler {
    type Config = QueueConfig;

    fn identity(&self) -> ScalerIdentity {
        ScalerIdentity {
            name: "fake-queue".into(),
            version: "1.2.3".into(),
            description: "A queue the test controls".into(),
        }
    }

    fn validate(&self, config: &QueueConfig) -> Result<(), ScalerError> {
        if config.value <= 0.0 {
            return Err(ScalerError::invalid("value", "must be > 0"));
        }
        if config.password.as_deref() == Some("wrong") {
            return Err(ScalerError::Unauthenticated(
                "the queue refused the password".into(),
            ));
        }
        Ok(())
    }

    fn metric_specs(&self, trigger: &Trigger<QueueConfig>) -> Vec<MetricSpec> {
        vec![MetricSpec {
            name: format!("queue-{}", trigger.config.queue_name),
            target: trigger.config.value,
            activation_target: trigger.config.activation_value,
            target_type: MetricTargetType::AverageValue,
        }]
    }

    async fn measure(&self, trigger: &Trigger<QueueConfig>) -> Result<Measurement, ScalerError> {
        self.source.measurements.fetch_add(1, Ordering::SeqCst);
        self.source
            .measured_with
            .lock()
            .unwrap()
            .push(trigger.config.activation_value);
        let delay = self.source.delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay as u64)).await;
        }
        if self.source.down.load(Ordering::SeqCst) {
            return Err(ScalerError::Unavailable("broker unreachable".into()));
        }
        let queues = self.source.queues.lock().unwrap();
        let (value, in_flight) = queues
            .get(&trigger.config.queue_name)
            .copied()
            .ok_or_else(|| ScalerError::NotFound(format!("queue {}", trigger.config.queue_name)))?;
        Ok(
            Measurement::single(format!("queue-{}", trigger.config.queue_name), value)
                .with_in_flight(in_flight),
        )
    }

    fn source_key(&self, trigger: &Trigger<QueueConfig>) -> String {
        trigger.config.queue_name.clone()
    }

    fn push_interval(&self) -> Option<Duration> {
        self.push
    }

    fn reports_in_flight(&self) -> bool {
        true
    }
}
