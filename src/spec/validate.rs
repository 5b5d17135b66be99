//! Validation: every problem of an object at once, each with a machine reason and a message
//! naming the field.

use std::collections::BTreeMap;

use super::behavior::ScalingRules;
use super::messages;
use super::scaled_object::{ScaledObject, ScaledObjectSpec};
use super::trigger::{EndpointError, Trigger};

/// One thing wrong with an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationProblem {
    /// The field, as a path: `spec.triggers[1].name`.
    pub field: String,
    /// CamelCase machine reason, e.g. `MinAboveMax`.
    pub reason: &'static str,
    /// What is wrong and what to do, for people.
    pub message: String,
}

impl ValidationProblem {
    /// A problem with `field`.
    pub fn new(field: impl Into<String>, reason: &'static str, message: impl Into<String>) -> Self {
        ValidationProblem {
            field: field.into(),
            reason,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for ValidationProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Every problem of a ScaledObject: its spec and its pause annotations.
pub fn validate(object: &ScaledObject) -> Vec<ValidationProblem> {
    let mut problems = Vec::new();
    let name = object.metadata.name.as_deref().unwrap_or_default();
    if let Err(message) = super::check_object_name(name) {
        problems.push(ValidationProblem::new(
            "metadata.name",
            "InvalidName",
            message,
        ));
    }
    problems.extend(validate_spec(&object.spec));
    if let Err(problem) = object.pause_state() {
        problems.push(problem);
    }
    problems
}

/// Every problem of a ScaledObject spec.
pub fn validate_spec(spec: &ScaledObjectSpec) -> Vec<ValidationProblem> {
    let mut problems = Vec::new();
    let mut problem = |field: &str, reason: &'static str, message: String| {
        problems.push(ValidationProblem::new(
            format!("spec.{field}"),
            reason,
            message,
        ));
    };
    if spec.scale_target_ref.name.trim().is_empty() {
        problem(
            "scaleTargetRef.name",
            "MissingTargetName",
            messages::MISSING_TARGET_NAME.text(),
        );
    }
    if spec.polling_interval == Some(0) {
        problem(
            "pollingInterval",
            "PollingIntervalTooSmall",
            messages::POLLING_INTERVAL_TOO_SMALL.text(),
        );
    }
    let (min, max) = (spec.min_replicas(), spec.max_replicas());
    if max == 0 {
        problem(
            "maxReplicaCount",
            "MaxIsZero",
            messages::AT_LEAST_ONE.text(),
        );
    }
    if min > max {
        problem(
            "minReplicaCount",
            "MinAboveMax",
            messages::MIN_ABOVE_MAX.fill(&[("min", &min), ("max", &max)]),
        );
    }
    if let Some(idle) = spec.idle_replica_count
        && idle >= min
    {
        problem(
            "idleReplicaCount",
            "IdleNotBelowMin",
            messages::IDLE_NOT_BELOW_MIN.fill(&[("idle", &idle), ("min", &min)]),
        );
    }
    if let Some(fallback) = &spec.fallback {
        if fallback.failure_threshold == 0 {
            problem(
                "fallback.failureThreshold",
                "InvalidFallback",
                messages::AT_LEAST_ONE.text(),
            );
        }
        if fallback.replicas > max {
            problem(
                "fallback.replicas",
                "InvalidFallback",
                messages::FALLBACK_ABOVE_MAX
                    .fill(&[("replicas", &fallback.replicas), ("max", &max)]),
            );
        }
    }
    if let Some(behavior) = spec.behavior() {
        for (direction, rules) in [
            ("scaleUp", &behavior.scale_up),
            ("scaleDown", &behavior.scale_down),
        ] {
            if let Some(rules) = rules {
                check_rules(direction, rules, &mut problem);
            }
        }
    }
    if spec.triggers.is_empty() {
        problem("triggers", "NoTriggers", messages::NO_TRIGGERS.text());
    }
    problems.extend(validate_triggers(&spec.triggers));
    problems.extend(super::modifiers::validate_modifiers(spec));
    problems
}

/// Every problem of a trigger list (ScaledObject's and ScaledJob's): unique names,
/// authentication names and scaler endpoints. Fields start with `spec.triggers[i]`.
pub(crate) fn validate_triggers(triggers: &[Trigger]) -> Vec<ValidationProblem> {
    let mut problems = Vec::new();
    let mut problem = |field: &str, reason: &'static str, message: String| {
        problems.push(ValidationProblem::new(
            format!("spec.{field}"),
            reason,
            message,
        ));
    };
    if triggers.len() > messages::MAX_TRIGGERS {
        problem(
            "triggers",
            "TooManyTriggers",
            messages::TOO_MANY_TRIGGERS
                .fill(&[("count", &triggers.len()), ("max", &messages::MAX_TRIGGERS)]),
        );
    }
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (index, trigger) in triggers.iter().enumerate() {
        let name = trigger.effective_name(index);
        if let Err(message) = super::check_trigger_name(&name) {
            problem(
                &format!("triggers[{index}].name"),
                "InvalidTriggerName",
                message,
            );
            continue;
        }
        if let Some(first) = seen.insert(name.clone(), index) {
            problem(
                &format!("triggers[{index}].name"),
                "DuplicateTriggerName",
                messages::DUPLICATE_TRIGGER_NAME
                    .fill(&[("name", &quoted(&name)), ("first", &first)]),
            );
        }
        if let Some(auth) = &trigger.authentication_ref
            && auth.name.trim().is_empty()
        {
            problem(
                &format!("triggers[{index}].authenticationRef.name"),
                "MissingAuthenticationName",
                messages::MISSING_AUTHENTICATION_NAME.text(),
            );
        }
        // A typed trigger without an address calls the scaler registered for its type; the
        // preparation step, which knows the registry, reports an unregistered one.
        let registered_type = trigger.scaler.is_none()
            && !trigger.is_keda_external()
            && trigger
                .trigger_type
                .as_deref()
                .is_some_and(|kind| !kind.is_empty());
        match trigger.endpoint(&name) {
            Ok(_) => {}
            Err(EndpointError::MissingAddress { .. }) if registered_type => {}
            Err(EndpointError::MissingAddress { .. }) => {
                let field = if trigger.is_keda_external() {
                    format!("triggers[{index}].metadata.scalerAddress")
                } else {
                    format!("triggers[{index}].scaler.address")
                };
                problem(
                    &field,
                    "MissingScalerAddress",
                    messages::MISSING_SCALER_ADDRESS.fill(&[("name", &quoted(&name))]),
                );
            }
            Err(EndpointError::InvalidField { field, message, .. }) => problem(
                &format!("triggers[{index}].{field}"),
                "InvalidTriggerField",
                message,
            ),
        }
    }
    problems
}

/// A name as messages quote it (Rust's debug form: escapes instead of control characters).
pub(crate) fn quoted(name: &str) -> String {
    format!("{name:?}")
}

fn check_rules(
    direction: &str,
    rules: &ScalingRules,
    problem: &mut impl FnMut(&str, &'static str, String),
) {
    let base = format!("advanced.horizontalPodAutoscalerConfig.behavior.{direction}");
    if let Some(window) = rules.stabilization_window_seconds
        && window > messages::MAX_STABILIZATION_WINDOW_SECONDS
    {
        problem(
            &format!("{base}.stabilizationWindowSeconds"),
            "InvalidBehavior",
            messages::WINDOW_TOO_LONG.fill(&[
                ("window", &window),
                ("max", &messages::MAX_STABILIZATION_WINDOW_SECONDS),
            ]),
        );
    }
    for (index, policy) in rules.policies.iter().flatten().enumerate() {
        if policy.value == 0 {
            problem(
                &format!("{base}.policies[{index}].value"),
                "InvalidBehavior",
                messages::GREATER_THAN_ZERO.text(),
            );
        }
        if policy.period_seconds == 0 || policy.period_seconds > messages::MAX_POLICY_PERIOD_SECONDS
        {
            problem(
                &format!("{base}.policies[{index}].periodSeconds"),
                "InvalidBehavior",
                messages::POLICY_PERIOD_OUT_OF_RANGE.fill(&[
                    ("period", &policy.period_seconds),
                    ("max", &messages::MAX_POLICY_PERIOD_SECONDS),
                ]),
            );
        }
    }
}
