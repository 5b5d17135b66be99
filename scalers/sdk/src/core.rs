//! The protocol-independent heart of a served scaler: parse a request into a typed trigger,
//! measure it with metrics and health bookkeeping, and derive activity from specs.

use std::sync::Arc;
use std::time::Instant;

use ebb::protocol::Redactor;

use crate::config::{MetadataSchema, TriggerMetadata};
use crate::health::{BrokerHealth, Outcome};
use crate::metrics::ServerMetrics;
use crate::proto::v1;
use crate::{Measurement, MetricSpec, Scaler, ScalerError, ScalerIdentity, Trigger};

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
    health: BrokerHealth,
}

/// A request's trigger, or why it cannot be had, with the redactor every error about it goes
/// through.
pub(crate) struct Parsed<C> {
    pub trigger: Result<Trigger<C>, ScalerError>,
    pub redactor: Redactor,
}

impl<S: Scaler> Core<S> {
    pub fn new(scaler: Arc<S>, metrics: Arc<ServerMetrics>, health: BrokerHealth) -> Self {
        Self {
            identity: scaler.identity(),
            schema: MetadataSchema::of::<S::Config>(),
            scaler,
            metrics,
            health,
        }
    }

    /// Parses and validates a request's metadata into a typed trigger. Errors are already
    /// redacted.
    pub fn trigger(
        &self,
        reference: Option<&v1::TriggerRef>,
        metadata: &TriggerMetadata,
    ) -> Parsed<S::Config> {
        let redactor = metadata.redactor(&self.schema);
        let trigger = metadata
            .parse::<S::Config>(&self.schema)
            .and_then(|config| self.scaler.validate(&config).map(|()| config))
            .map(|config| {
                let reference = reference.cloned().unwrap_or_default();
                Trigger {
                    namespace: reference.namespace,
                    name: reference.name,
                    trigger_name: reference.trigger_name,
                    config,
                }
            })
            .map_err(|error| error.redacted(&redactor));
        Parsed { trigger, redactor }
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

    /// Measures once, recording latency, errors and the broker's health. The error is
    /// redacted before it is logged or returned.
    pub async fn measure(
        &self,
        trigger: &Trigger<S::Config>,
        redactor: &Redactor,
    ) -> Result<Reading, ScalerError> {
        let specs = self.specs(trigger)?;
        let result = self.sample(trigger, redactor).await;
        result.map(|measurement| join(specs, measurement))
    }

    /// Measures once without joining to specs (the push sampler's step): metrics, health,
    /// redaction and the debug log of a failure.
    pub async fn sample(
        &self,
        trigger: &Trigger<S::Config>,
        redactor: &Redactor,
    ) -> Result<Measurement, ScalerError> {
        let started = Instant::now();
        let result = self
            .scaler
            .measure(trigger)
            .await
            .map_err(|error| error.redacted(redactor));
        self.metrics
            .observe_measurement(started.elapsed(), result.as_ref().err());
        self.health
            .record(&self.scaler.broker_key(trigger), Outcome::of(&result))
            .await;
        if let Err(error) = &result {
            tracing::debug!(trigger = %trigger.trigger_name, object = %trigger.name, %error, "measurement failed");
        }
        result
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
