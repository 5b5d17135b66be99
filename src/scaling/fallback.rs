//! Per-trigger evaluation: failure counting, fallback, and what each trigger asks for.

use std::collections::BTreeMap;

use super::hpa;
use super::readings::{Measurement, MetricType, Reading, ReadingError, ReadingErrorKind};
use super::spec::{EngineSpec, FallbackSpec};
use crate::spec::FallbackBehavior;

/// One trigger after this poll.
#[derive(Debug, Clone, PartialEq)]
pub struct TriggerReport {
    /// Trigger name.
    pub name: String,
    /// The reading (errors include a missing reading or an unusable target).
    pub outcome: Result<Measurement, ReadingError>,
    /// Consecutive failures, this poll included.
    pub failures: u32,
    /// The trigger failed more than `failureThreshold` times and fallback applies.
    pub in_fallback: bool,
    /// Replicas this trigger asks for; `None` for a failing trigger not (yet) in fallback.
    pub recommendation: Option<u32>,
    /// The metric was within the HPA tolerance.
    pub within_tolerance: bool,
    /// The trigger counts as active (fallback asking for replicas counts too).
    pub active: bool,
    /// Reported in-flight work.
    pub in_flight: u64,
}

/// Replicas fallback asks for at `current` replicas.
pub fn fallback_replicas(fallback: &FallbackSpec, current: u32) -> u32 {
    match fallback.behavior {
        FallbackBehavior::Static => fallback.replicas,
        FallbackBehavior::CurrentReplicas => current,
        FallbackBehavior::CurrentReplicasIfHigher => current.max(fallback.replicas),
        FallbackBehavior::CurrentReplicasIfLower => current.min(fallback.replicas),
        // Used when the formula cannot be evaluated without the failed trigger.
        FallbackBehavior::ScalingModifiers => fallback.replicas,
    }
}

fn checked(measurement: Measurement) -> Result<Measurement, ReadingError> {
    if measurement.target.is_finite() && measurement.target > 0.0 {
        Ok(measurement)
    } else {
        Err(ReadingError {
            kind: ReadingErrorKind::InvalidMetadata,
            message: format!(
                "target must be a number above 0, got {}",
                format_number(measurement.target)
            ),
        })
    }
}

/// Evaluates every trigger of `spec` (or every reading when the spec names none), updating
/// the failure counts.
pub fn evaluate(
    spec: &EngineSpec,
    readings: &[Reading],
    failures: &mut BTreeMap<String, u32>,
    current: u32,
) -> Vec<TriggerReport> {
    let names: Vec<String> = if spec.triggers.is_empty() {
        readings
            .iter()
            .map(|reading| reading.trigger.clone())
            .collect()
    } else {
        spec.triggers.clone()
    };
    failures.retain(|name, _| names.contains(name));
    names
        .into_iter()
        .map(|name| {
            let outcome = match readings.iter().find(|reading| reading.trigger == name) {
                Some(reading) => reading.outcome.clone().and_then(checked),
                None => Err(ReadingError {
                    kind: ReadingErrorKind::Unavailable,
                    message: "no reading this poll".to_owned(),
                }),
            };
            evaluate_one(spec, name, outcome, failures, current)
        })
        .collect()
}

fn evaluate_one(
    spec: &EngineSpec,
    name: String,
    outcome: Result<Measurement, ReadingError>,
    failures: &mut BTreeMap<String, u32>,
    current: u32,
) -> TriggerReport {
    match outcome {
        Ok(measurement) => {
            failures.remove(&name);
            let recommendation = hpa::recommend(&measurement, current);
            TriggerReport {
                name,
                active: measurement.active,
                in_flight: measurement.in_flight.unwrap_or(0),
                recommendation: Some(recommendation.replicas),
                within_tolerance: recommendation.within_tolerance,
                outcome: Ok(measurement),
                failures: 0,
                in_fallback: false,
            }
        }
        Err(error) => {
            let count = failures.entry(name.clone()).or_insert(0);
            *count = count.saturating_add(1);
            let count = *count;
            let fallback = spec
                .fallback
                .filter(|fallback| count > fallback.failure_threshold);
            let recommendation = fallback.map(|fallback| fallback_replicas(&fallback, current));
            TriggerReport {
                name,
                outcome: Err(error),
                failures: count,
                in_fallback: fallback.is_some(),
                recommendation,
                within_tolerance: false,
                active: recommendation.is_some_and(|replicas| replicas > 0),
                in_flight: 0,
            }
        }
    }
}

impl TriggerReport {
    /// What this trigger asks for, in words: "orders 68/10 per replica", and "orders 0/10
    /// per replica (last poll), active by push" when a push activated it since that poll.
    pub fn explain(&self, spec: &EngineSpec, current: u32) -> String {
        let text = self.explain_outcome(spec, current);
        match &self.outcome {
            Ok(measurement) if measurement.active_by_push => {
                format!("{text} (last poll), active by push")
            }
            _ => text,
        }
    }

    fn explain_outcome(&self, spec: &EngineSpec, current: u32) -> String {
        match &self.outcome {
            Ok(measurement) => match measurement.metric_type {
                MetricType::AverageValue => format!(
                    "{} {}/{} per replica",
                    self.name,
                    format_number(measurement.clean_value()),
                    format_number(measurement.target)
                ),
                MetricType::Value => format!(
                    "{} {} vs target {} at {} replicas",
                    self.name,
                    format_number(measurement.clean_value()),
                    format_number(measurement.target),
                    current
                ),
            },
            Err(error) => match (&spec.fallback, self.in_fallback) {
                // A formula that goes on without this trigger (fallback.behavior
                // scalingModifiers) asks for the replicas instead of it.
                (Some(fallback), true) if self.recommendation.is_none() => format!(
                    "fallback for {} ({} failures > threshold {}): the formula goes on without it",
                    self.name, self.failures, fallback.failure_threshold
                ),
                (Some(fallback), true) => format!(
                    "fallback for {} ({} failures > threshold {}): {} replicas",
                    self.name,
                    self.failures,
                    fallback.failure_threshold,
                    self.recommendation.unwrap_or(current)
                ),
                (Some(fallback), false) => format!(
                    "{} failing ({error}), {}/{} failures before fallback",
                    self.name, self.failures, fallback.failure_threshold
                ),
                (None, _) => format!(
                    "{} failing ({error}), {} failures, no fallback configured",
                    self.name, self.failures
                ),
            },
        }
    }
}

/// Where numbers switch to scientific form: past 2^53 whole numbers are not exact anyway.
const SCIENTIFIC_FROM: f64 = 1e15;

/// A number for people (reasons, status tables, the dashboard): whole numbers without
/// decimals (68), others with at most two (2.5, 0.33), and from 10^15 on in scientific form
/// with at most four significant digits (1e308, 1.235e20) instead of hundreds of digits.
pub fn format_number(value: f64) -> String {
    if !value.is_finite() {
        return value.to_string();
    }
    if value.abs() >= SCIENTIFIC_FROM {
        let text = format!("{value:.3e}");
        return match text.split_once('e') {
            Some((mantissa, exponent)) => {
                let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
                format!("{mantissa}e{exponent}")
            }
            None => text,
        };
    }
    if value.fract() == 0.0 {
        // Integer formatting: `{:.0}` on a float takes the exact (slow) path, and this runs
        // on every poll of every object.
        #[allow(clippy::cast_possible_truncation)]
        let whole = value as i64;
        whole.to_string()
    } else {
        let text = format!("{value:.2}");
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

#[cfg(test)]
mod number_tests {
    use super::format_number;

    #[test]
    fn numbers_drop_needless_decimals() {
        assert_eq!(format_number(68.0), "68");
        assert_eq!(format_number(-3.0), "-3");
        assert_eq!(format_number(0.0), "0");
        assert_eq!(format_number(2.5), "2.5");
        assert_eq!(format_number(1.0 / 3.0), "0.33");
        assert_eq!(format_number(999_999_999_999_999.0), "999999999999999");
    }

    #[test]
    fn large_numbers_are_scientific_not_hundreds_of_digits() {
        assert_eq!(format_number(1e308), "1e308");
        assert_eq!(format_number(f64::MAX), "1.798e308");
        assert_eq!(format_number(-2.5e20), "-2.5e20");
        assert_eq!(format_number(1e15), "1e15");
        assert_eq!(format_number(1.23456e300 / 3.0), "4.115e299");
        assert_eq!(format_number(1e-320), "0", "tiny numbers stay short too");
        assert_eq!(format_number(f64::NAN), "NaN");
        assert_eq!(format_number(f64::INFINITY), "inf");
    }
}
