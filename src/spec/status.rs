//! The ScaledObject status, written only by ebb.

use std::borrow::Cow;
use std::time::SystemTime;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::MetricType;

/// What ebb observed and decided for a ScaledObject.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScaledObjectStatus {
    /// Ready, Active, Fallback and Paused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Last time any trigger was active; the cooldown counts from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_active_time: Option<Time>,
    /// The target's replica count when ebb first saw it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_replica_count: Option<u32>,
    /// Health and last reading of each trigger.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub triggers: Vec<TriggerStatus>,
    /// The replica count ebb last decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_replicas: Option<u32>,
    /// The target's replica count at the last decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_replicas: Option<u32>,
    /// The object generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Where ebb reads the target's replica count from when it is not a watch of the
    /// target's kind. Absent: from the watch (no API request per poll).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas_read_from: Option<ReplicasSource>,
}

/// How ebb learns a target's replica count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ReplicasSource {
    /// A watch of the target's kind, shared by every object scaling that kind.
    Watch,
    /// A GET of the target's `/scale` on every poll, because listing or watching its kind is
    /// not allowed (RBAC) or the kind's replica field is not known.
    ScaleSubresource,
}

/// One condition, Kubernetes style.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Which condition.
    #[serde(rename = "type")]
    pub condition_type: ConditionType,
    /// True, False or Unknown.
    pub status: ConditionStatus,
    /// A CamelCase machine reason.
    // Borrowed when it is one of ebb's own: every object holds four conditions, and their
    // reasons are a handful of constants.
    #[serde(default, skip_serializing_if = "str::is_empty")]
    pub reason: Cow<'static, str>,
    /// A sentence for people.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// When `status` last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,
}

/// The conditions ebb reports.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
pub enum ConditionType {
    /// The object is valid and its triggers answer.
    Ready,
    /// At least one trigger is active.
    Active,
    /// At least one trigger is in fallback.
    Fallback,
    /// Scaling is paused by annotation.
    Paused,
}

/// A condition's truth value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ConditionStatus {
    /// Holds.
    True,
    /// Does not hold.
    False,
    /// Not known yet.
    Unknown,
}

impl ConditionStatus {
    /// `True` or `False` from a bool.
    pub fn from_bool(value: bool) -> Self {
        if value {
            ConditionStatus::True
        } else {
            ConditionStatus::False
        }
    }
}

/// Whether a trigger's last polls succeeded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum TriggerHealth {
    /// The last poll succeeded.
    #[default]
    Happy,
    /// The last poll failed.
    Failing,
}

/// Status of one trigger.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TriggerStatus {
    /// The trigger's effective name.
    pub name: String,
    /// Happy or Failing.
    pub health: TriggerHealth,
    /// Consecutive failed polls.
    #[serde(default)]
    pub number_of_failures: u32,
    /// Last metric value read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_value: Option<f64>,
    /// The metric's target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<f64>,
    /// How the value compares with the target (per replica or overall).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_type: Option<MetricType>,
    /// The activation threshold the scaler declared: active above it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation_target: Option<f64>,
    /// Whether the trigger was active at the last poll.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
    /// Work in flight at the last poll, when the scaler reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_flight: Option<u64>,
    /// The last error, or a short note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl Condition {
    /// A condition stamped with `now` as its transition time.
    pub fn new(
        condition_type: ConditionType,
        status: ConditionStatus,
        reason: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
        now: SystemTime,
    ) -> Self {
        Condition {
            condition_type,
            status,
            reason: reason.into(),
            message: message.into(),
            last_transition_time: to_time(now),
        }
    }
}

impl ScaledObjectStatus {
    /// The condition of this type, if set.
    pub fn condition(&self, condition_type: ConditionType) -> Option<&Condition> {
        find_condition(&self.conditions, condition_type)
    }

    /// Sets a condition, keeping its `lastTransitionTime` when the status did not change.
    /// True when the conditions changed.
    pub fn set_condition(&mut self, condition: Condition) -> bool {
        put_condition(&mut self.conditions, condition)
    }

    /// `lastActiveTime` as a `SystemTime`.
    pub fn last_active(&self) -> Option<SystemTime> {
        self.last_active_time.as_ref().map(from_time)
    }
}

/// The condition of this type in `conditions`, if set (any object's status).
pub(crate) fn find_condition(
    conditions: &[Condition],
    condition_type: ConditionType,
) -> Option<&Condition> {
    conditions
        .iter()
        .find(|condition| condition.condition_type == condition_type)
}

/// Sets a condition in `conditions`, keeping its `lastTransitionTime` when the status did not
/// change; new types are added in type order. True when anything changed.
pub(crate) fn put_condition(conditions: &mut Vec<Condition>, mut condition: Condition) -> bool {
    match conditions
        .iter_mut()
        .find(|existing| existing.condition_type == condition.condition_type)
    {
        Some(existing) => {
            if existing.status == condition.status {
                condition.last_transition_time = existing.last_transition_time.clone();
            }
            if *existing == condition {
                return false;
            }
            *existing = condition;
        }
        None => {
            conditions.push(condition);
            conditions.sort_by_key(|condition| condition.condition_type);
        }
    }
    true
}

/// Converts a `SystemTime` to a Kubernetes `Time` (None if out of range).
pub fn to_time(time: SystemTime) -> Option<Time> {
    k8s_openapi::jiff::Timestamp::try_from(time).ok().map(Time)
}

/// Converts a Kubernetes `Time` to a `SystemTime`.
pub fn from_time(time: &Time) -> SystemTime {
    SystemTime::from(time.0)
}
