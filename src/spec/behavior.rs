//! HPA-v2-style scaling behavior (`advanced.horizontalPodAutoscalerConfig.behavior`), with the
//! field names of `autoscaling/v2` so existing KEDA objects parse unchanged.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Rules for scaling up and down; a missing direction gets the HPA defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HpaBehavior {
    /// How fast to add replicas. Default: no stabilization, the larger of +100 % and +4 pods
    /// per 15 s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_up: Option<ScalingRules>,
    /// How fast to remove replicas. Default: 300 s stabilization, -100 % per 15 s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down: Option<ScalingRules>,
}

/// Stabilization and rate limits for one direction.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScalingRules {
    /// Seconds of past recommendations to consider; the direction's default when unset
    /// (0 for scale-up, 300 for scale-down).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stabilization_window_seconds: Option<u32>,
    /// Which policy wins when several allow different changes (default `Max`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub select_policy: Option<SelectPolicy>,
    /// Rate limits; the direction's default policies when unset or empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policies: Option<Vec<ScalingPolicy>>,
}

/// One rate limit: at most `value` pods or percent per `periodSeconds`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScalingPolicy {
    /// Whether `value` counts pods or percent of the replicas at the start of the period.
    #[serde(rename = "type")]
    pub policy_type: PolicyType,
    /// The allowed change per period; must be > 0.
    pub value: u32,
    /// The period's length in seconds; 1 to 1800.
    pub period_seconds: u32,
}

/// The unit of a [`ScalingPolicy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum PolicyType {
    /// A number of pods.
    Pods,
    /// A percentage of the replicas at the start of the period.
    Percent,
}

/// How several policies combine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum SelectPolicy {
    /// The policy allowing the largest change wins.
    #[default]
    Max,
    /// The policy allowing the smallest change wins.
    Min,
    /// No scaling in this direction at all.
    Disabled,
}
