//! The resource types ebb reads: ScaledObject and ScaledJob (and their status), shared by the Kubernetes
//! controller, `ebb run` and `ebb simulate`.
//!
//! - [`ScaledObject`] / [`ScaledObjectSpec`]: the custom resource (`ebb.dev/v1alpha1`), with
//!   KEDA's field names and defaults. Optional fields stay `Option` so a round trip keeps what
//!   the user wrote; accessor methods (`polling_interval()`, `min_replicas()`, ...) give the
//!   effective values.
//! - [`Trigger`] and [`Trigger::endpoint`]: the scaler a trigger calls, from either the native
//!   `scaler:` block or KEDA's `external` / `external-push` metadata.
//! - [`PauseState`]: the pause annotations, parsed strictly (`"false"` does not pause).
//! - [`validate`]: every problem of an object at once, each naming its field.
//! - [`load`]: multi-document YAML files into typed objects with errors naming file and field.

mod auth;
mod behavior;
pub mod load;
pub(crate) mod messages;
mod modifiers;
mod names;
mod pause;
mod scaled_job;
mod scaled_object;
mod status;
mod trigger;
mod validate;

pub use auth::{
    AuthenticationSource, ClusterScalerAuthentication, ClusterScalerAuthenticationSpec, EnvRef,
    KeyRef, ScalerAuthentication, ScalerAuthenticationSpec,
};
pub use behavior::{HpaBehavior, PolicyType, ScalingPolicy, ScalingRules, SelectPolicy};
pub use names::{check_object_name, check_trigger_name, terminal_safe};
pub use pause::{PauseState, pause_annotation};
pub use scaled_job::{
    DEFAULT_HISTORY_LIMIT, MultipleScalersCalculation, PropagationPolicy, Rollout, RolloutStrategy,
    ScaledJob, ScaledJobSpec, ScaledJobStatus, ScalingStrategy, StrategyName,
};
pub use scaled_object::{
    AdvancedConfig, Fallback, FallbackBehavior, HorizontalPodAutoscalerConfig, NumberText,
    ScaleTargetRef, ScaledObject, ScaledObjectSpec, ScalingModifiers, scaled_object_field_names,
};
pub use status::{
    Condition, ConditionStatus, ConditionType, ReplicasSource, ScaledObjectStatus, TriggerHealth,
    TriggerStatus, from_time, to_time,
};
pub use trigger::{
    AuthenticationKind, AuthenticationRef, EndpointError, MetricType, PemSource, ScalerEndpoint,
    ScalerProtocol, ScalerRef, ScalerTls, SecretKeyRef, TlsSettings, Trigger, parse_duration,
};
pub use validate::{ValidationProblem, validate, validate_spec};

#[cfg(test)]
mod tests;
