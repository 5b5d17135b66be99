//! The protocol-independent heart of a served scaler: parse a request into a typed trigger,
//! measure it with metrics and health bookkeeping, and derive activity from specs.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::Mutex;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::config::{MetadataSchema, TriggerMetadata};
use crate::metrics::ServerMetrics;
use crate::proto::v1;
use crate::{Measurement, MetricSpec, Scaler, ScalerError, ScalerIdentity, Trigger};

/// gRPC service names whose health follows the source's reachability.
pub(crate) const SERVICE_NAMES: [&str; 3] =
    ["", "ebb.scaler.v1.Scaler", "externalscaler.ExternalScaler"];

/// What one measurement of a trigger yields, joined with the trigger's specs.
#[derive(Debug, Clone)]
pub(crate) struct Reading {
    /// Each spec with its measured value (0 when the scaler returned none for it).
    pub values: Vec<(MetricSpec, f64)>,
    /// Activity, from the scaler or derived from the specs.
    pub active: bool,
    /// In-flight work, when known.
    pub in_flight: Option<u64>,
}

/// Shared state of a served scaler.
pub(crate) struct Core<S: Scaler> {
    pub scaler: Arc<S>,
    pub identity: ScalerIdentity,
    pub schema: MetadataSchema,
    pub metrics: Arc<ServerMetrics>,
    health: HealthReporter,
    /// Last health published, so the reporter is only told about flips.
    serving: Mutex<Option<bool>>,
}

impl<S: Scaler> Core<S> {
    pub fn new(scaler: Arc<S>, metrics: Arc<ServerMetrics>, health: HealthReporter) -> Self {
        Self {
            identity: scaler.identity(),
            schema: MetadataSchema::of::<S::Config>(),
            scaler,
            metrics,
            health,
            serving: Mutex::new(None),
        }
    }

    /// Parses and validates a request's metadata into a typed trigger.
    pub fn trigger(
        &self,
        reference: Option<&v1::TriggerRef>,
        metadata: &TriggerMetadata,
    ) -> Result<Trigger<S::Config>, ScalerError> {
        let config: S::Config = metadata.parse(&self.schema)?;
        self.scaler.validate(&config)?;
        let reference = reference.cloned().unwrap_or_default();
        Ok(Trigger {
            namespace: reference.namespace,
            name: reference.name,
            trigger_name: reference.trigger_name,
            config,
        })
    }

    /// The trigger's specs, checked for the protocol's promises (a name, a positive target).
    pub fn specs(&self, trigger: &Trigger<S::Config>) -> Result<Vec<MetricSpec>, ScalerError> {
        let specs = self.scaler.metric_specs(trigger);
        if specs.is_empty() {
            return Err(ScalerError::Internal(
                "the scaler returned no metric specs".into(),
            ));
        }
        if let Some(bad) = specs
            .iter()
            .find(|spec| !(spec.target.is_finite() && spec.target > 0.0))
        {
            return Err(ScalerError::Internal(format!(
                "metric `{}` has a target that is not > 0",
                bad.name
            )));
        }
        Ok(specs)
    }

    /// Measures once, recording latency, errors and health.
    pub async fn measure(&self, trigger: &Trigger<S::Config>) -> Result<Reading, ScalerError> {
        let specs = self.specs(trigger)?;
        let started = Instant::now();
        let result = self.scaler.measure(trigger).await;
        self.metrics
            .observe_measurement(started.elapsed(), result.as_ref().err());
        match result {
            Ok(measurement) => {
                self.set_serving(true).await;
                Ok(join(specs, measurement))
            }
            Err(error) => {
                if error.source_down() {
                    self.set_serving(false).await;
                }
                tracing::debug!(trigger = %trigger.trigger_name, object = %trigger.name, %error, "measurement failed");
                Err(error)
            }
        }
    }

    /// Ends an RPC: counts it by protocol, method and code, and maps an error to its status
    /// (the one place where scaler errors become gRPC statuses).
    pub fn finish<T>(
        &self,
        protocol: &'static str,
        method: &'static str,
        started: Instant,
        result: Result<T, ScalerError>,
    ) -> Result<tonic::Response<T>, tonic::Status> {
        let code = result
            .as_ref()
            .map_or_else(ScalerError::code, |_| tonic::Code::Ok);
        self.metrics
            .observe_rpc(protocol, method, code, started.elapsed());
        result
            .map(tonic::Response::new)
            .map_err(tonic::Status::from)
    }

    async fn set_serving(&self, serving: bool) {
        let mut last = self.serving.lock().await;
        if *last == Some(serving) {
            return;
        }
        *last = Some(serving);
        let status = if serving {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        if !serving {
            tracing::warn!("event source unreachable: health is NOT_SERVING");
        } else {
            tracing::info!("event source reachable: health is SERVING");
        }
        for name in SERVICE_NAMES {
            self.health.set_service_status(name, status).await;
        }
    }
}

/// Joins measured values to specs and decides activity.
pub(crate) fn join(specs: Vec<MetricSpec>, measurement: Measurement) -> Reading {
    let values: Vec<(MetricSpec, f64)> = specs
        .into_iter()
        .map(|spec| {
            let value = measurement
                .values
                .iter()
                .find(|value| value.name == spec.name)
                .map_or(0.0, |value| ebb::protocol::sanitize_value(value.value));
            (spec, value)
        })
        .collect();
    let active = measurement.active.unwrap_or_else(|| {
        values
            .iter()
            .any(|(spec, value)| *value > spec.activation_target)
    });
    Reading {
        values,
        active,
        in_flight: measurement.in_flight,
    }
}
