//! `advanced.scalingModifiers`: the formula's result is one composite metric that replaces
//! the per-trigger combination (the largest recommendation).
//!
//! Rules (docs/engine.md, "scalingModifiers"):
//! - The composite is compared with `target` as any metric is (`AverageValue`:
//!   `ceil(result / target)`; `Value`: `ceil(current × result / target)`; HPA tolerance) and
//!   the object is active while the result is above `activationTarget`. NaN, infinite or
//!   non-numeric results are failures; negative results count as 0.
//! - A failed trigger is `nil` in the formula. While it is below `failureThreshold`, the
//!   formula may still scale out (when `??` gives it a value) but nothing scales in, as with
//!   any failing trigger.
//! - Once a trigger is in fallback: with `fallback.behavior: scalingModifiers` the formula
//!   goes on without it, and `fallback.replicas` applies only when it then cannot be
//!   evaluated; with any other behavior the fallback count replaces the formula.

use super::fallback::{TriggerReport, fallback_replicas};
use super::formula::{Formula, FormulaError};
use super::hpa;
use super::readings::{Measurement, MetricType, ReadingError, ReadingErrorKind};
use super::spec::EngineSpec;
use crate::spec::{FallbackBehavior, ScaledObjectSpec, ScalingModifiers};

/// The name the composite goes by in reasons, conditions and status (a trigger may not use it
/// while a formula is set).
pub const FORMULA_NAME: &str = "formula";

/// `advanced.scalingModifiers` with defaults applied and the formula compiled.
#[derive(Debug, Clone, PartialEq)]
pub struct ModifiersSpec {
    /// The compiled formula, or why it does not compile (validation refuses such objects; if
    /// one gets here anyway, every poll reports the error and nothing scales in).
    pub formula: Result<Formula, FormulaError>,
    /// The composite's target (NaN when missing or unreadable: every poll then fails).
    pub target: f64,
    /// Active while the result is above this.
    pub activation_target: f64,
    /// How the result is compared to `target`.
    pub metric_type: MetricType,
}

impl ModifiersSpec {
    /// `formula` over `target` per replica (AverageValue, activation 0).
    pub fn new(formula: &str, target: f64) -> Self {
        ModifiersSpec {
            formula: Formula::compile(formula),
            target,
            activation_target: 0.0,
            metric_type: MetricType::AverageValue,
        }
    }

    /// From a spec, when it sets a formula (compiled here: once per spec, not per poll).
    pub fn from_spec(spec: &ScaledObjectSpec) -> Option<Self> {
        let written = scaling_modifiers(spec)?;
        let formula = written.formula.as_deref()?;
        Some(ModifiersSpec {
            formula: Formula::compile(formula),
            target: written
                .target
                .as_ref()
                .and_then(|target| target.value())
                .unwrap_or(f64::NAN),
            activation_target: written
                .activation_target
                .as_ref()
                .and_then(|activation| activation.value())
                .unwrap_or(0.0),
            metric_type: written.metric_type.unwrap_or_default(),
        })
    }
}

/// `spec.advanced.scalingModifiers`, when written.
pub fn scaling_modifiers(spec: &ScaledObjectSpec) -> Option<&ScalingModifiers> {
    spec.advanced
        .as_ref()
        .and_then(|advanced| advanced.scaling_modifiers.as_ref())
}

/// The triggers as the decision sees them (their recommendations and activity give way to
/// the formula, except fallback counts that replace it) and the formula's own report.
pub(crate) fn combine(
    spec: &EngineSpec,
    modifiers: &ModifiersSpec,
    triggers: &[TriggerReport],
    current: u32,
) -> (Vec<TriggerReport>, TriggerReport) {
    let failures = triggers
        .iter()
        .map(|trigger| trigger.failures)
        .max()
        .unwrap_or(0);
    let in_fallback = triggers.iter().any(|trigger| trigger.in_fallback);
    let goes_on = spec
        .fallback
        .is_some_and(|fallback| fallback.behavior == FallbackBehavior::ScalingModifiers);
    let outcome = if in_fallback && !goes_on {
        Err(error(format!(
            "fallback.replicas replace the formula while {} is in fallback",
            names(triggers, |trigger| trigger.in_fallback)
        )))
    } else {
        evaluate(modifiers, triggers)
    };
    let fallback_count = spec
        .fallback
        .filter(|_| in_fallback && (!goes_on || outcome.is_err()))
        .map(|fallback| fallback_replicas(&fallback, current));
    let mut formula = TriggerReport {
        name: FORMULA_NAME.to_owned(),
        outcome,
        failures,
        in_fallback: fallback_count.is_some(),
        recommendation: fallback_count,
        within_tolerance: false,
        active: fallback_count.is_some_and(|replicas| replicas > 0),
        in_flight: 0,
    };
    if let (Ok(measurement), None) = (&formula.outcome, fallback_count) {
        let recommendation = hpa::recommend(measurement, current);
        formula.recommendation = Some(recommendation.replicas);
        formula.within_tolerance = recommendation.within_tolerance;
        formula.active = measurement.active;
    }
    let deciding = triggers
        .iter()
        .map(|trigger| TriggerReport {
            // A trigger in fallback keeps its fallback count when that count replaces the
            // formula (the same number the formula's report carries).
            recommendation: trigger
                .recommendation
                .filter(|_| trigger.in_fallback && fallback_count.is_some()),
            active: trigger.in_fallback && fallback_count.is_some() && trigger.active,
            ..trigger.clone()
        })
        .chain(std::iter::once(formula.clone()))
        .collect();
    (deciding, formula)
}

/// The composite measurement, or why there is none.
fn evaluate(
    modifiers: &ModifiersSpec,
    triggers: &[TriggerReport],
) -> Result<Measurement, ReadingError> {
    let formula = modifiers
        .formula
        .as_ref()
        .map_err(|problem| error(format!("invalid formula: {problem}")))?;
    if !(modifiers.target.is_finite() && modifiers.target > 0.0) {
        return Err(error(
            "scalingModifiers.target must be a number above 0".to_owned(),
        ));
    }
    let value_of = |name: &str| {
        triggers
            .iter()
            .find(|trigger| trigger.name == name)
            .and_then(|trigger| trigger.outcome.as_ref().ok())
            .map(Measurement::clean_value)
    };
    match formula.evaluate(value_of) {
        Ok(value) => Ok(Measurement {
            value,
            target: modifiers.target,
            metric_type: modifiers.metric_type,
            active: value > modifiers.activation_target,
            active_by_push: false,
            in_flight: None,
            activation: Some(modifiers.activation_target),
        }),
        Err(problem) => {
            let missing: Vec<&str> = triggers
                .iter()
                .filter(|trigger| {
                    trigger.outcome.is_err() && formula.names().contains(&trigger.name)
                })
                .map(|trigger| trigger.name.as_str())
                .collect();
            Err(error(match missing.first() {
                None => problem.to_string(),
                Some(first) => format!(
                    "{problem} (no value from {}; `{first} ?? N` would supply one)",
                    missing.join(", ")
                ),
            }))
        }
    }
}

fn names(triggers: &[TriggerReport], which: impl Fn(&TriggerReport) -> bool) -> String {
    triggers
        .iter()
        .filter(|trigger| which(trigger))
        .map(|trigger| trigger.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn error(message: String) -> ReadingError {
    ReadingError {
        kind: ReadingErrorKind::Other,
        message,
    }
}
