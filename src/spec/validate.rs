//! Validation: every problem of an object at once, each with a machine reason and a message
//! naming the field.

use std::collections::BTreeMap;

use super::behavior::ScalingRules;
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
            "the name of the workload to scale is required".to_owned(),
        );
    }
    if spec.polling_interval == Some(0) {
        problem(
            "pollingInterval",
            "PollingIntervalTooSmall",
            "must be at least 1 second".to_owned(),
        );
    }
    let (min, max) = (spec.min_replicas(), spec.max_replicas());
    if max == 0 {
        problem(
            "maxReplicaCount",
            "MaxIsZero",
            "must be at least 1".to_owned(),
        );
    }
    if min > max {
        problem(
            "minReplicaCount",
            "MinAboveMax",
            format!("minReplicaCount {min} is above maxReplicaCount {max}"),
        );
    }
    if let Some(idle) = spec.idle_replica_count
        && idle >= min
    {
        problem(
            "idleReplicaCount",
            "IdleNotBelowMin",
            format!("idleReplicaCount {idle} must be below minReplicaCount {min}"),
        );
    }
    if let Some(fallback) = &spec.fallback {
        if fallback.failure_threshold == 0 {
            problem(
                "fallback.failureThreshold",
                "InvalidFallback",
                "must be at least 1".to_owned(),
            );
        }
        if fallback.replicas > max {
            problem(
                "fallback.replicas",
                "InvalidFallback",
                format!(
                    "fallback replicas {} exceed maxReplicaCount {max}",
                    fallback.replicas
                ),
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
        problem(
            "triggers",
            "NoTriggers",
            "at least one trigger is required".to_owned(),
        );
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
                format!("trigger name {name:?} is already used by triggers[{first}]"),
            );
        }
        if let Some(auth) = &trigger.authentication_ref
            && auth.name.trim().is_empty()
        {
            problem(
                &format!("triggers[{index}].authenticationRef.name"),
                "MissingAuthenticationName",
                "the name of the ScalerAuthentication is required".to_owned(),
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
                    format!(
                        "trigger {name:?} needs a scaler address: set scaler.address, or use type external with metadata.scalerAddress"
                    ),
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

fn check_rules(
    direction: &str,
    rules: &ScalingRules,
    problem: &mut impl FnMut(&str, &'static str, String),
) {
    let base = format!("advanced.horizontalPodAutoscalerConfig.behavior.{direction}");
    if let Some(window) = rules.stabilization_window_seconds
        && window > 3600
    {
        problem(
            &format!("{base}.stabilizationWindowSeconds"),
            "InvalidBehavior",
            format!("{window} is above the maximum of 3600 seconds"),
        );
    }
    for (index, policy) in rules.policies.iter().flatten().enumerate() {
        if policy.value == 0 {
            problem(
                &format!("{base}.policies[{index}].value"),
                "InvalidBehavior",
                "must be greater than 0".to_owned(),
            );
        }
        if policy.period_seconds == 0 || policy.period_seconds > 1800 {
            problem(
                &format!("{base}.policies[{index}].periodSeconds"),
                "InvalidBehavior",
                format!("{} is outside 1..=1800", policy.period_seconds),
            );
        }
    }
}
