//! Conditions and status: how a decision is shown to people and stored.

use std::time::SystemTime;

use super::decide::{Decision, Verdict};
use super::fallback::TriggerReport;
use super::spec::EngineSpec;
use crate::spec::{
    Condition, ConditionStatus, ConditionType, ScaledObjectStatus, TriggerHealth, TriggerStatus,
    to_time,
};

/// One condition as decided (without a transition time; see [`Decision::apply_to_status`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionReport {
    /// Which condition.
    pub condition_type: ConditionType,
    /// True or False.
    pub status: ConditionStatus,
    /// CamelCase machine reason.
    pub reason: &'static str,
    /// For people.
    pub message: String,
}

fn report(
    condition_type: ConditionType,
    value: bool,
    reason: &'static str,
    message: String,
) -> ConditionReport {
    ConditionReport {
        condition_type,
        status: ConditionStatus::from_bool(value),
        reason,
        message,
    }
}

pub(crate) fn conditions(
    spec: &EngineSpec,
    triggers: &[TriggerReport],
    active: bool,
    verdict: &Verdict,
) -> Vec<ConditionReport> {
    let failing: Vec<String> =
        triggers
            .iter()
            .filter_map(|trigger| {
                trigger.outcome.as_ref().err().map(|error| {
                    format!("{}: {error} ({} failures)", trigger.name, trigger.failures)
                })
            })
            .collect();
    let ready = if failing.is_empty() {
        report(
            ConditionType::Ready,
            true,
            "TriggersHealthy",
            format!("{} trigger(s) answering", triggers.len()),
        )
    } else {
        report(
            ConditionType::Ready,
            false,
            "TriggerFailing",
            failing.join("; "),
        )
    };
    let active_triggers: Vec<&str> = triggers
        .iter()
        .filter(|trigger| trigger.active)
        .map(|trigger| trigger.name.as_str())
        .collect();
    let active_condition = if active {
        report(
            ConditionType::Active,
            true,
            "TriggerActive",
            format!("active: {}", active_triggers.join(", ")),
        )
    } else {
        let message = if verdict.active_message.is_empty() {
            "no trigger active".to_owned()
        } else {
            verdict.active_message.clone()
        };
        report(ConditionType::Active, false, verdict.active_reason, message)
    };
    let in_fallback: Vec<String> = triggers
        .iter()
        .filter(|trigger| trigger.in_fallback)
        .map(|trigger| trigger.explain(spec, 0))
        .collect();
    let fallback = if in_fallback.is_empty() {
        report(ConditionType::Fallback, false, "NoFallback", String::new())
    } else {
        report(
            ConditionType::Fallback,
            true,
            "FallbackActive",
            in_fallback.join("; "),
        )
    };
    let pause = &spec.pause;
    let paused = if let Some(replicas) = pause.paused_replicas {
        report(
            ConditionType::Paused,
            true,
            "PausedReplicas",
            format!("held at {replicas} replicas by annotation"),
        )
    } else if pause.paused {
        report(
            ConditionType::Paused,
            true,
            "Paused",
            "scaling paused by annotation".to_owned(),
        )
    } else if pause.paused_scale_in || pause.paused_scale_out {
        let which = match (pause.paused_scale_in, pause.paused_scale_out) {
            (true, true) => "scale-in and scale-out",
            (true, false) => "scale-in",
            _ => "scale-out",
        };
        report(
            ConditionType::Paused,
            true,
            if pause.paused_scale_in {
                "ScaleInPaused"
            } else {
                "ScaleOutPaused"
            },
            format!("{which} paused by annotation"),
        )
    } else {
        report(ConditionType::Paused, false, "NotPaused", String::new())
    };
    vec![ready, active_condition, fallback, paused]
}

impl TriggerReport {
    /// This trigger's status entry.
    pub fn to_status(&self) -> TriggerStatus {
        match &self.outcome {
            Ok(measurement) => TriggerStatus {
                name: self.name.clone(),
                health: TriggerHealth::Happy,
                number_of_failures: 0,
                last_value: Some(measurement.clean_value()),
                target: Some(measurement.target),
                metric_type: Some(measurement.metric_type),
                activation_target: measurement.activation,
                active: Some(measurement.active),
                in_flight: measurement.in_flight,
                message: None,
            },
            Err(error) => TriggerStatus {
                name: self.name.clone(),
                health: TriggerHealth::Failing,
                number_of_failures: self.failures,
                last_value: None,
                target: None,
                metric_type: None,
                activation_target: None,
                active: Some(self.active),
                in_flight: None,
                message: Some(error.to_string()),
            },
        }
    }
}

impl Decision {
    /// The decision's conditions, stamped with `now` (keep the old transition time with
    /// [`ScaledObjectStatus::set_condition`]).
    pub fn status_conditions(&self, now: SystemTime) -> Vec<Condition> {
        self.conditions
            .iter()
            .map(|condition| {
                Condition::new(
                    condition.condition_type,
                    condition.status,
                    condition.reason,
                    condition.message.clone(),
                    now,
                )
            })
            .collect()
    }

    /// Writes this decision into a status: conditions (keeping transition times of unchanged
    /// ones), per-trigger status, lastActiveTime, originalReplicaCount and replica counts.
    /// `desiredReplicas` is the decision; `currentReplicas` the count it was made at. True
    /// when the status changed, so a host publishes only then without keeping a second copy
    /// to compare with.
    pub fn apply_to_status(&self, status: &mut ScaledObjectStatus, now: SystemTime) -> bool {
        let mut changed = false;
        for condition in self.status_conditions(now) {
            changed |= status.set_condition(condition);
        }
        let triggers: Vec<_> = self
            .triggers
            .iter()
            .chain(&self.formula)
            .map(TriggerReport::to_status)
            .collect();
        if status.triggers != triggers {
            status.triggers = triggers;
            changed = true;
        }
        if let Some(last_active) = self.state.last_active {
            changed |= replace(&mut status.last_active_time, to_time(last_active));
        }
        if status.original_replica_count.is_none() {
            changed |= replace(
                &mut status.original_replica_count,
                self.state.original_replicas,
            );
        }
        changed |= replace(&mut status.desired_replicas, Some(self.desired_replicas));
        changed |= replace(&mut status.current_replicas, Some(self.current_replicas));
        changed
    }

    /// The condition of this type.
    pub fn condition(&self, condition_type: ConditionType) -> Option<&ConditionReport> {
        self.conditions
            .iter()
            .find(|condition| condition.condition_type == condition_type)
    }
}

/// Sets `field` to `value`; true when that changed it.
pub(crate) fn replace<T: PartialEq>(field: &mut T, value: T) -> bool {
    if *field == value {
        return false;
    }
    *field = value;
    true
}
