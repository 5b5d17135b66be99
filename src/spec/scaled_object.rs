//! The ScaledObject custom resource and its KEDA-compatible defaults.

use std::time::Duration;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::behavior::HpaBehavior;
use super::pause::PauseState;
use super::status::ScaledObjectStatus;
use super::trigger::Trigger;
use super::validate::ValidationProblem;

/// KEDA's default `pollingInterval` in seconds.
pub const DEFAULT_POLLING_INTERVAL_SECONDS: u32 = 30;
/// KEDA's default `cooldownPeriod` in seconds.
pub const DEFAULT_COOLDOWN_PERIOD_SECONDS: u32 = 300;
/// KEDA's default `maxReplicaCount`.
pub const DEFAULT_MAX_REPLICAS: u32 = 100;

/// What to scale, on which events, within which bounds. Field names and defaults follow KEDA's
/// `keda.sh/v1alpha1` ScaledObject, so existing objects move over by changing `apiVersion`.
// The repeated `printcolumn(type_ = ...)` arguments are distinct columns, not duplicates.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "ebb.dev",
    version = "v1alpha1",
    kind = "ScaledObject",
    namespaced,
    status = "ScaledObjectStatus",
    shortname = "eso",
    derive = "PartialEq",
    doc = "Scales a workload with a /scale subresource on events measured by scalers.",
    printcolumn(
        name = "Target",
        type_ = "string",
        json_path = ".spec.scaleTargetRef.name"
    ),
    printcolumn(name = "Min", type_ = "integer", json_path = ".spec.minReplicaCount"),
    printcolumn(name = "Max", type_ = "integer", json_path = ".spec.maxReplicaCount"),
    printcolumn(
        name = "Replicas",
        type_ = "integer",
        json_path = ".status.currentReplicas"
    ),
    printcolumn(
        name = "Triggers",
        type_ = "string",
        json_path = ".spec.triggers[*].type"
    ),
    printcolumn(
        name = "Authentications",
        type_ = "string",
        json_path = ".spec.triggers[*].authenticationRef.name"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Active",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Active\")].status"
    ),
    printcolumn(
        name = "Fallback",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Fallback\")].status"
    ),
    printcolumn(
        name = "Paused",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Paused\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct ScaledObjectSpec {
    /// The workload to scale; any kind with a `/scale` subresource.
    pub scale_target_ref: ScaleTargetRef,
    /// Seconds between polls of each trigger (default 30, at least 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = 30))]
    pub polling_interval: Option<u32>,
    /// Seconds without activity before scaling to zero (or idle) (default 300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = 300))]
    pub cooldown_period: Option<u32>,
    /// Seconds after creation before a never-active object may scale to zero (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = 0))]
    pub initial_cooldown_period: Option<u32>,
    /// Replicas while no trigger is active; must be below `minReplicaCount`. Unset: `min`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_replica_count: Option<u32>,
    /// Fewest replicas while active (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = 0))]
    pub min_replica_count: Option<u32>,
    /// Most replicas (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = 100))]
    pub max_replica_count: Option<u32>,
    /// What to do when a trigger keeps failing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<Fallback>,
    /// Scaling behavior (HPA v2 style).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advanced: Option<AdvancedConfig>,
    /// The event sources; several are combined by taking the largest replica count, or by
    /// `advanced.scalingModifiers.formula`.
    #[serde(default)]
    pub triggers: Vec<Trigger>,
}

/// The workload a ScaledObject scales.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScaleTargetRef {
    /// API version of the target (default `apps/v1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Kind of the target (default `Deployment`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Name of the target, in the ScaledObject's namespace.
    pub name: String,
    /// Container whose environment resolves `xFromEnv` metadata (default: the first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_source_container_name: Option<String>,
}

impl ScaleTargetRef {
    /// The target's API version, `apps/v1` when unset.
    pub fn api_version(&self) -> &str {
        self.api_version.as_deref().unwrap_or("apps/v1")
    }

    /// The target's kind, `Deployment` when unset.
    pub fn kind(&self) -> &str {
        self.kind.as_deref().unwrap_or("Deployment")
    }
}

/// Replicas to run while a trigger keeps failing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Fallback {
    /// Consecutive failed polls of a trigger after which fallback applies (must be >= 1).
    pub failure_threshold: u32,
    /// The replicas fallback asks for (with the `static` behavior).
    pub replicas: u32,
    /// How `replicas` combines with the current count (default `static`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub behavior: Option<FallbackBehavior>,
}

/// How fallback picks its replica count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum FallbackBehavior {
    /// Exactly `fallback.replicas`.
    #[default]
    Static,
    /// Keep the current replica count.
    CurrentReplicas,
    /// The larger of the current count and `fallback.replicas`.
    CurrentReplicasIfHigher,
    /// The smaller of the current count and `fallback.replicas`.
    CurrentReplicasIfLower,
    /// With `advanced.scalingModifiers`: the formula goes on without the failed trigger (its
    /// value is null, so `??` supplies a replacement); `fallback.replicas` only when the
    /// formula cannot be evaluated without it.
    ScalingModifiers,
}

/// Advanced settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdvancedConfig {
    /// HPA-style settings; ebb creates no HPA but applies the same behavior itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub horizontal_pod_autoscaler_config: Option<HorizontalPodAutoscalerConfig>,
    /// On deletion of this object, set the target back to the replica count it had when ebb
    /// adopted it (`status.originalReplicaCount`); a finalizer holds the deletion until then.
    /// Unset or false: the target keeps its last count (KEDA's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_to_original_replica_count: Option<bool>,
    /// One formula combining the named triggers into the metric that drives scaling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaling_modifiers: Option<ScalingModifiers>,
}

/// The part of KEDA's HPA config ebb honours.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HorizontalPodAutoscalerConfig {
    /// Scale-up and scale-down rules (autoscaling/v2 `behavior`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub behavior: Option<HpaBehavior>,
}

/// KEDA's `advanced.scalingModifiers`: a formula over the triggers' values (each trigger by its
/// `name`) whose result replaces the per-trigger combination.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScalingModifiers {
    /// An expr-lang expression, e.g. `a + b` or `max(a, b ?? 0)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub formula: Option<String>,
    /// The formula's target per replica (AverageValue) or overall (Value); above 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "number_text_schema")]
    pub target: Option<NumberText>,
    /// Active while the formula's result is above this (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "number_text_schema")]
    pub activation_target: Option<NumberText>,
    /// How the result is compared to `target` (default `AverageValue`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_type: Option<super::trigger::MetricType>,
}

/// A number as KEDA writes it (a string such as `"5"`) or as a plain YAML number; kept as
/// written and read with [`NumberText::value`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct NumberText(pub String);

impl<'de> Deserialize<'de> for NumberText {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            Text(String),
            Whole(i64),
            Number(f64),
        }
        Ok(NumberText(match Written::deserialize(deserializer)? {
            Written::Text(text) => text,
            Written::Whole(number) => number.to_string(),
            Written::Number(number) => number.to_string(),
        }))
    }
}

impl NumberText {
    /// The number, when the text holds a finite one.
    pub fn value(&self) -> Option<f64> {
        self.0
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|value| value.is_finite())
    }
}

/// Integers or strings: the shape a structural CRD schema can say ("2.5" is written quoted).
fn number_text_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "description": "A number, written as a string (\"2.5\", as KEDA does) or an integer.",
        "nullable": true,
        "x-kubernetes-int-or-string": true
    })
}

impl ScaledObjectSpec {
    /// KEDA's default `maxReplicaCount` (100).
    pub const fn default_max_replicas() -> u32 {
        DEFAULT_MAX_REPLICAS
    }

    /// Effective polling interval (default 30 s).
    pub fn polling_interval(&self) -> Duration {
        let seconds = self
            .polling_interval
            .unwrap_or(DEFAULT_POLLING_INTERVAL_SECONDS);
        Duration::from_secs(u64::from(seconds.max(1)))
    }

    /// Effective cooldown period (default 300 s).
    pub fn cooldown_period(&self) -> Duration {
        let seconds = self
            .cooldown_period
            .unwrap_or(DEFAULT_COOLDOWN_PERIOD_SECONDS);
        Duration::from_secs(u64::from(seconds))
    }

    /// Effective initial cooldown period (default 0 s).
    pub fn initial_cooldown_period(&self) -> Duration {
        Duration::from_secs(u64::from(self.initial_cooldown_period.unwrap_or(0)))
    }

    /// Effective minimum replicas (default 0).
    pub fn min_replicas(&self) -> u32 {
        self.min_replica_count.unwrap_or(0)
    }

    /// Effective maximum replicas (default 100).
    pub fn max_replicas(&self) -> u32 {
        self.max_replica_count.unwrap_or(DEFAULT_MAX_REPLICAS)
    }

    /// The idle replica count, if set.
    pub fn idle_replicas(&self) -> Option<u32> {
        self.idle_replica_count
    }

    /// The HPA behavior as written (defaults are applied by the engine).
    pub fn behavior(&self) -> Option<&HpaBehavior> {
        self.advanced
            .as_ref()
            .and_then(|advanced| advanced.horizontal_pod_autoscaler_config.as_ref())
            .and_then(|config| config.behavior.as_ref())
    }

    /// Whether `advanced.restoreToOriginalReplicaCount` is set and true.
    pub fn restores_original_replicas(&self) -> bool {
        self.advanced
            .as_ref()
            .and_then(|advanced| advanced.restore_to_original_replica_count)
            .unwrap_or(false)
    }

    /// The trigger with this name, if any (see [`Trigger::effective_name`]).
    pub fn trigger(&self, name: &str) -> Option<&Trigger> {
        self.triggers
            .iter()
            .enumerate()
            .find(|(index, trigger)| trigger.effective_name(*index) == name)
            .map(|(_, trigger)| trigger)
    }
}

impl ScaledObject {
    /// The pause state from this object's annotations.
    pub fn pause_state(&self) -> Result<PauseState, ValidationProblem> {
        match &self.metadata.annotations {
            Some(annotations) => PauseState::from_annotations(annotations),
            None => Ok(PauseState::default()),
        }
    }

    /// Every problem of this object (spec and annotations); empty when valid.
    pub fn validate(&self) -> Vec<ValidationProblem> {
        super::validate::validate(self)
    }
}

/// Every field name a ScaledObject document may use, at any depth (from the same schema the
/// CRD is generated from), for "did you mean" hints on unknown fields.
pub fn scaled_object_field_names() -> Vec<String> {
    fn collect(value: &serde_json::Value, names: &mut std::collections::BTreeSet<String>) {
        match value {
            serde_json::Value::Object(map) => {
                if let Some(serde_json::Value::Object(properties)) = map.get("properties") {
                    names.extend(properties.keys().cloned());
                }
                for child in map.values() {
                    collect(child, names);
                }
            }
            serde_json::Value::Array(items) => {
                for item in items {
                    collect(item, names);
                }
            }
            _ => {}
        }
    }
    let schema = serde_json::to_value(schemars::schema_for!(ScaledObjectSpec)).unwrap_or_default();
    let mut names: std::collections::BTreeSet<String> =
        ["apiVersion", "kind", "metadata", "spec", "status"]
            .into_iter()
            .map(str::to_owned)
            .collect();
    collect(&schema, &mut names);
    names.into_iter().collect()
}
