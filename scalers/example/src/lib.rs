//! The example scaler: the smallest useful scaler built on the ebb SDK. Its value comes from
//! the trigger metadata, either a constant or a file it re-reads on every measurement, so
//! demos, tests and benchmarks can drive a scaled workload by writing a number to a file.
//!
//! Trigger metadata (the schema `GetInfo` reports comes from [`ExampleConfig`]):
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `valueFile` | – | path of a file holding a number, read on every measurement; a missing file answers NOT_FOUND |
//! | `value` | – | a constant value, when `valueFile` is not given (exactly one of the two is required) |
//! | `target` | `1` | value one replica should handle (> 0) |
//! | `activationTarget` | `0` | active when the value is strictly above this |
//! | `metricName` | derived | metric name; default `example-<file stem>` for `valueFile`, `example-value` for `value` |
//! | `inFlightFile` | – | path of a file holding the in-flight count; a missing file counts as 0 |
//!
//! Write files atomically (write a temporary file, then rename it over the old one): a reader
//! that catches a half-written file answers INTERNAL for that one measurement.

use std::path::Path;
use std::time::Duration;

use ebb_scaler_sdk::proto::v1::MetricTargetType;
use ebb_scaler_sdk::{
    Measurement, MetricSpec, Scaler, ScalerError, ScalerIdentity, Trigger, schemars,
};
use serde::Deserialize;

/// The loopback port the binary listens on when `--listen` is not given.
pub const DEFAULT_PORT: u16 = 9003;

/// The configuration of one trigger, parsed from its metadata.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(crate = "ebb_scaler_sdk::schemars")]
pub struct ExampleConfig {
    /// Path of a file holding the value (a number); re-read on every measurement. A missing
    /// file answers NOT_FOUND. Exactly one of `valueFile` and `value` is required.
    pub value_file: Option<String>,
    /// A constant value, used when `valueFile` is not given.
    pub value: Option<f64>,
    /// The value one replica should handle; must be > 0.
    #[serde(default = "default_target")]
    pub target: f64,
    /// The trigger is active when the value is strictly greater than this.
    #[serde(default)]
    pub activation_target: f64,
    /// Metric name; default `example-<file stem>` for `valueFile`, `example-value` for `value`.
    pub metric_name: Option<String>,
    /// Path of a file holding the number of items in flight; a missing file counts as 0.
    pub in_flight_file: Option<String>,
}

fn default_target() -> f64 {
    1.0
}

impl ExampleConfig {
    /// The metric name: the configured one, else derived from where the value comes from.
    pub fn metric_name(&self) -> String {
        if let Some(name) = &self.metric_name {
            return name.clone();
        }
        match &self.value_file {
            Some(path) => {
                let stem = Path::new(path)
                    .file_stem()
                    .map(|stem| stem.to_string_lossy().into_owned())
                    .unwrap_or_default();
                format!("example-{}", metric_safe(&stem))
            }
            None => "example-value".to_owned(),
        }
    }
}

/// Lowercase letters, digits and `-`, as the protocol recommends for metric names.
fn metric_safe(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|ch| {
            if ch.is_ascii_alphanumeric() {
                ch.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let trimmed = cleaned.trim_matches('-');
    if trimmed.is_empty() {
        "file".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// The example scaler.
#[derive(Debug, Clone)]
pub struct ExampleScaler {
    push_interval: Option<Duration>,
}

impl ExampleScaler {
    /// A scaler that samples push subscribers every `push_interval` (`None`: no push).
    pub fn new(push_interval: Option<Duration>) -> Self {
        Self { push_interval }
    }
}

impl Default for ExampleScaler {
    /// Push every 100 ms, as the binary does by default.
    fn default() -> Self {
        Self::new(Some(Duration::from_millis(100)))
    }
}

impl Scaler for ExampleScaler {
    type Config = ExampleConfig;

    fn identity(&self) -> ScalerIdentity {
        ScalerIdentity {
            name: "example".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Scales on a number read from a file or given as a constant (example)"
                .into(),
        }
    }

    fn validate(&self, config: &ExampleConfig) -> Result<(), ScalerError> {
        match (&config.value_file, config.value) {
            (Some(_), Some(_)) => {
                return Err(ScalerError::invalid(
                    "value",
                    "give either `value` or `valueFile`, not both",
                ));
            }
            (None, None) => {
                return Err(ScalerError::invalid(
                    "valueFile",
                    "is required (or give `value`)",
                ));
            }
            (Some(path), None) if path.trim().is_empty() => {
                return Err(ScalerError::invalid("valueFile", "is empty"));
            }
            (None, Some(value)) if !value.is_finite() || value < 0.0 => {
                return Err(ScalerError::invalid(
                    "value",
                    "must be a finite number >= 0",
                ));
            }
            _ => {}
        }
        if !(config.target.is_finite() && config.target > 0.0) {
            return Err(ScalerError::invalid("target", "must be > 0"));
        }
        if !(config.activation_target.is_finite() && config.activation_target >= 0.0) {
            return Err(ScalerError::invalid("activationTarget", "must be >= 0"));
        }
        Ok(())
    }

    fn metric_specs(&self, trigger: &Trigger<ExampleConfig>) -> Vec<MetricSpec> {
        vec![MetricSpec {
            name: trigger.config.metric_name(),
            target: trigger.config.target,
            activation_target: trigger.config.activation_target,
            target_type: MetricTargetType::AverageValue,
        }]
    }

    async fn measure(&self, trigger: &Trigger<ExampleConfig>) -> Result<Measurement, ScalerError> {
        let config = &trigger.config;
        let value = match (&config.value_file, config.value) {
            (Some(path), _) => read_number(path).await?.ok_or_else(|| {
                ScalerError::NotFound(format!("value file {path} does not exist"))
            })?,
            (None, Some(value)) => value,
            (None, None) => {
                return Err(ScalerError::invalid(
                    "valueFile",
                    "is required (or give `value`)",
                ));
            }
        };
        let mut measurement = Measurement::single(config.metric_name(), value);
        if let Some(path) = &config.in_flight_file {
            let in_flight = read_number(path).await?.unwrap_or(0.0);
            // Counts are whole and non-negative; the file may say "2.0" or "-1".
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let count = in_flight.max(0.0).floor() as u64;
            measurement = measurement.with_in_flight(count);
        }
        Ok(measurement)
    }

    fn source_key(&self, trigger: &Trigger<ExampleConfig>) -> String {
        let config = &trigger.config;
        format!(
            "file={:?} value={:?} in-flight={:?}",
            config.value_file, config.value, config.in_flight_file
        )
    }

    fn push_interval(&self) -> Option<Duration> {
        self.push_interval
    }

    fn reports_in_flight(&self) -> bool {
        true
    }

    fn default_port(&self) -> u16 {
        DEFAULT_PORT
    }
}

/// Reads a number from a file; `Ok(None)` when the file does not exist.
async fn read_number(path: &str) -> Result<Option<f64>, ScalerError> {
    match tokio::fs::read_to_string(path).await {
        Ok(text) => text
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|number| number.is_finite())
            .map(Some)
            .ok_or_else(|| ScalerError::Internal(format!("{path} does not hold a number"))),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(ScalerError::Unavailable(format!(
            "cannot read {path}: {error}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(value_file: Option<&str>, value: Option<f64>) -> ExampleConfig {
        ExampleConfig {
            value_file: value_file.map(str::to_owned),
            value,
            target: 1.0,
            activation_target: 0.0,
            metric_name: None,
            in_flight_file: None,
        }
    }

    #[test]
    fn metric_name_comes_from_the_value_source() {
        assert_eq!(
            config(Some("/tmp/Orders Queue.txt"), None).metric_name(),
            "example-orders-queue"
        );
        assert_eq!(config(None, Some(3.0)).metric_name(), "example-value");
        let mut named = config(None, Some(3.0));
        named.metric_name = Some("mine".into());
        assert_eq!(named.metric_name(), "mine");
    }

    #[test]
    fn exactly_one_value_source_is_required() {
        let scaler = ExampleScaler::default();
        let key = |config: &ExampleConfig| match scaler.validate(config) {
            Err(ScalerError::InvalidMetadata { key, .. }) => key,
            other => panic!("expected invalid metadata, got {other:?}"),
        };
        assert_eq!(key(&config(None, None)), "valueFile");
        assert_eq!(key(&config(Some("f"), Some(1.0))), "value");
        assert!(scaler.validate(&config(None, Some(1.0))).is_ok());
    }

    #[test]
    fn target_must_be_positive() {
        let mut bad = config(None, Some(1.0));
        bad.target = 0.0;
        assert!(matches!(
            ExampleScaler::default().validate(&bad),
            Err(ScalerError::InvalidMetadata { key, .. }) if key == "target"
        ));
    }
}
