//! The ScaledJob custom resource: one Job per event, KEDA's field names and defaults.

use std::time::Duration;

use k8s_openapi::api::batch::v1::JobSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::pause::PauseState;
use super::scaled_object::{DEFAULT_MAX_REPLICAS, DEFAULT_POLLING_INTERVAL_SECONDS};
use super::status::{Condition, ConditionType, find_condition, put_condition};
use super::trigger::Trigger;
use super::validate::ValidationProblem;
use crate::scaling::{Combine, JobLimits, JobStrategy};

/// KEDA's default for both history limits.
pub const DEFAULT_HISTORY_LIMIT: u32 = 100;

/// Runs one Job per event (or per `targetSize` events) measured by scalers. Field names and
/// defaults follow KEDA's `keda.sh/v1alpha1` ScaledJob.
// The repeated `printcolumn(type_ = ...)` arguments are distinct columns, not duplicates.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "ebb.dev",
    version = "v1alpha1",
    kind = "ScaledJob",
    namespaced,
    status = "ScaledJobStatus",
    shortname = "esj",
    derive = "PartialEq",
    doc = "Creates one batch/v1 Job per event measured by scalers.",
    printcolumn(name = "Min", type_ = "integer", json_path = ".spec.minReplicaCount"),
    printcolumn(name = "Max", type_ = "integer", json_path = ".spec.maxReplicaCount"),
    printcolumn(name = "Running", type_ = "integer", json_path = ".status.runningJobs"),
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
pub struct ScaledJobSpec {
    /// The Job each event gets (batch/v1 JobSpec: template, parallelism, completions,
    /// activeDeadlineSeconds, backoffLimit...).
    pub job_target_ref: JobSpec,
    /// Seconds between polls of each trigger (default 30, at least 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = 30))]
    pub polling_interval: Option<u32>,
    /// Finished successful Jobs kept (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = 100))]
    pub successful_jobs_history_limit: Option<u32>,
    /// Failed Jobs kept (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = 100))]
    pub failed_jobs_history_limit: Option<u32>,
    /// Unfinished Jobs kept at least, even without events (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = 0))]
    pub min_replica_count: Option<u32>,
    /// Unfinished Jobs at most (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = 100))]
    pub max_replica_count: Option<u32>,
    /// What happens to running Jobs when this spec changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Rollout>,
    /// How demand turns into new Jobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaling_strategy: Option<ScalingStrategy>,
    /// Container whose environment resolves `xFromEnv` metadata (default: the first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_source_container_name: Option<String>,
    /// The event sources (the same trigger type as ScaledObject's).
    #[serde(default)]
    pub triggers: Vec<Trigger>,
}

/// `rollout`: running Jobs on a spec change.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Rollout {
    /// `default` deletes running Jobs when the spec changes; `gradual` lets them finish.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<RolloutStrategy>,
    /// How deleted Jobs' pods go: `background` (default) or `foreground`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub propagation_policy: Option<PropagationPolicy>,
}

/// `rollout.strategy`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum RolloutStrategy {
    /// Delete running Jobs made from an older spec.
    #[default]
    Default,
    /// Leave them to finish.
    Gradual,
}

/// `rollout.propagationPolicy`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum PropagationPolicy {
    /// Pods are deleted after the Job, in the background.
    #[default]
    Background,
    /// The Job goes once its pods are gone.
    Foreground,
}

/// `scalingStrategy`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScalingStrategy {
    /// `default`, `custom`, `accurate` or `eager`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<StrategyName>,
    /// `custom`: items subtracted from the demand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_scaling_queue_length_deduction: Option<u32>,
    /// `custom`: share of running Jobs subtracted from the demand, as text ("0.5"), as in KEDA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_scaling_running_job_percentage: Option<String>,
    /// Pod conditions under which a Job counts as pending (default: its pod is not running).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_pod_conditions: Vec<String>,
    /// How several triggers combine: `max` (default), `min`, `avg` or `sum`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multiple_scalers_calculation: Option<MultipleScalersCalculation>,
}

/// `scalingStrategy.strategy`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum StrategyName {
    /// Demand minus running Jobs.
    #[default]
    Default,
    /// Demand minus a deduction and a share of running Jobs.
    Custom,
    /// For queues that do not count taken items.
    Accurate,
    /// Every free slot up to the demand.
    Eager,
}

/// `scalingStrategy.multipleScalersCalculation`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum MultipleScalersCalculation {
    /// The largest demand.
    #[default]
    Max,
    /// The smallest.
    Min,
    /// The mean.
    Avg,
    /// The sum.
    Sum,
}

/// What ebb observed for a ScaledJob.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScaledJobStatus {
    /// Ready, Active and Paused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Last time any trigger was active.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_active_time: Option<Time>,
    /// Jobs created and not finished (pending included).
    #[serde(default)]
    pub running_jobs: u32,
    /// Jobs not started yet.
    #[serde(default)]
    pub pending_jobs: u32,
    /// Jobs that succeeded (of those kept).
    #[serde(default)]
    pub succeeded_jobs: u32,
    /// Jobs that failed (of those kept).
    #[serde(default)]
    pub failed_jobs: u32,
    /// The object generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

impl ScaledJobStatus {
    /// The condition of this type, if set.
    pub fn condition(&self, condition_type: ConditionType) -> Option<&Condition> {
        find_condition(&self.conditions, condition_type)
    }

    /// Sets a condition, keeping its `lastTransitionTime` when the status did not change.
    pub fn set_condition(&mut self, condition: Condition) {
        put_condition(&mut self.conditions, condition);
    }
}

impl ScaledJobSpec {
    /// Effective polling interval (default 30 s, at least 1 s).
    pub fn polling_interval(&self) -> Duration {
        let seconds = self
            .polling_interval
            .unwrap_or(DEFAULT_POLLING_INTERVAL_SECONDS);
        Duration::from_secs(u64::from(seconds.max(1)))
    }

    /// Effective `successfulJobsHistoryLimit` (default 100).
    pub fn successful_history_limit(&self) -> u32 {
        self.successful_jobs_history_limit
            .unwrap_or(DEFAULT_HISTORY_LIMIT)
    }

    /// Effective `failedJobsHistoryLimit` (default 100).
    pub fn failed_history_limit(&self) -> u32 {
        self.failed_jobs_history_limit
            .unwrap_or(DEFAULT_HISTORY_LIMIT)
    }

    /// Effective `minReplicaCount` (default 0).
    pub fn min_replicas(&self) -> u32 {
        self.min_replica_count.unwrap_or(0)
    }

    /// Effective `maxReplicaCount` (default 100).
    pub fn max_replicas(&self) -> u32 {
        self.max_replica_count.unwrap_or(DEFAULT_MAX_REPLICAS)
    }

    /// Effective rollout strategy (default `default`).
    pub fn rollout_strategy(&self) -> RolloutStrategy {
        self.rollout
            .as_ref()
            .and_then(|rollout| rollout.strategy)
            .unwrap_or_default()
    }

    /// Effective propagation policy of deleted Jobs (default `background`).
    pub fn propagation_policy(&self) -> PropagationPolicy {
        self.rollout
            .as_ref()
            .and_then(|rollout| rollout.propagation_policy)
            .unwrap_or_default()
    }

    /// `customScalingRunningJobPercentage` parsed; `Err` names what is wrong.
    fn running_percentage(&self) -> Result<f64, String> {
        let Some(text) = self
            .scaling_strategy
            .as_ref()
            .and_then(|strategy| strategy.custom_scaling_running_job_percentage.as_deref())
        else {
            return Ok(1.0);
        };
        match text.trim().parse::<f64>() {
            Ok(value) if value.is_finite() && value >= 0.0 => Ok(value),
            _ => {
                Err(super::messages::JOB_RUNNING_PERCENTAGE.fill(&[("text", &format!("{text:?}"))]))
            }
        }
    }

    /// What the decision function needs: bounds, strategy and combination.
    pub fn limits(&self) -> JobLimits {
        let scaling = self.scaling_strategy.clone().unwrap_or_default();
        let strategy = match scaling.strategy.unwrap_or_default() {
            StrategyName::Default => JobStrategy::Default,
            StrategyName::Accurate => JobStrategy::Accurate,
            StrategyName::Eager => JobStrategy::Eager,
            StrategyName::Custom => JobStrategy::Custom {
                deduction: scaling.custom_scaling_queue_length_deduction.unwrap_or(0),
                running_percentage: self.running_percentage().unwrap_or(1.0),
            },
        };
        let combine = match scaling.multiple_scalers_calculation.unwrap_or_default() {
            MultipleScalersCalculation::Max => Combine::Max,
            MultipleScalersCalculation::Min => Combine::Min,
            MultipleScalersCalculation::Avg => Combine::Avg,
            MultipleScalersCalculation::Sum => Combine::Sum,
        };
        JobLimits {
            min: self.min_replicas(),
            max: self.max_replicas(),
            strategy,
            combine,
        }
    }

    /// The first container of the Job's pod template, if any.
    pub fn first_container(&self) -> Option<&k8s_openapi::api::core::v1::Container> {
        self.job_target_ref
            .template
            .spec
            .as_ref()
            .and_then(|pod| pod.containers.first())
    }

    /// Every problem of this spec, each naming its field.
    pub fn validate(&self) -> Vec<ValidationProblem> {
        let mut problems = Vec::new();
        if self.min_replicas() > self.max_replicas() {
            problems.push(ValidationProblem::new(
                "spec.minReplicaCount",
                "MinAboveMax",
                super::messages::MIN_ABOVE_MAX
                    .fill(&[("min", &self.min_replicas()), ("max", &self.max_replicas())]),
            ));
        }
        if self.polling_interval == Some(0) {
            problems.push(ValidationProblem::new(
                "spec.pollingInterval",
                "InvalidPollingInterval",
                super::messages::JOB_POLLING_INTERVAL_TOO_SMALL.text(),
            ));
        }
        if let Err(message) = self.running_percentage() {
            problems.push(ValidationProblem::new(
                "spec.scalingStrategy.customScalingRunningJobPercentage",
                "InvalidPercentage",
                message,
            ));
        }
        if self.first_container().is_none() {
            problems.push(ValidationProblem::new(
                "spec.jobTargetRef.template.spec.containers",
                "MissingContainer",
                super::messages::JOB_MISSING_CONTAINER.text(),
            ));
        }
        if self.triggers.is_empty() {
            problems.push(ValidationProblem::new(
                "spec.triggers",
                "NoTriggers",
                super::messages::JOB_NO_TRIGGERS.text(),
            ));
        }
        problems.extend(super::validate::validate_triggers(&self.triggers));
        problems
    }
}

impl ScaledJob {
    /// The pause state from this object's annotations (only `paused` matters for jobs).
    pub fn pause_state(&self) -> Result<PauseState, ValidationProblem> {
        match &self.metadata.annotations {
            Some(annotations) => PauseState::from_annotations(annotations),
            None => Ok(PauseState::default()),
        }
    }

    /// Every problem of this object (spec and annotations); empty when valid.
    pub fn validate(&self) -> Vec<ValidationProblem> {
        let mut problems = self.spec.validate();
        if let Err(problem) = self.pause_state() {
            problems.push(problem);
        }
        problems
    }
}
