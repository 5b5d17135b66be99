//! The engine's view of a ScaledObject: effective values only, buildable without YAML.

use std::borrow::Cow;
use std::time::Duration;

use super::modifiers::ModifiersSpec;

use crate::spec::{
    FallbackBehavior, HpaBehavior, PauseState, PolicyType, ScaledObject, ScaledObjectSpec,
    ScalingRules, SelectPolicy, ValidationProblem,
};

/// Everything the engine needs to know about an object, with defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineSpec {
    /// Fewest replicas while active.
    pub min_replicas: u32,
    /// Most replicas.
    pub max_replicas: u32,
    /// Replicas while inactive, when set (below `min_replicas`).
    pub idle_replicas: Option<u32>,
    /// Time between polls (the engine only reports it; callers poll).
    pub polling_interval: Duration,
    /// Inactivity before the last step to zero (or idle).
    pub cooldown_period: Duration,
    /// For an object never active: time after creation before it may reach zero.
    pub initial_cooldown_period: Duration,
    /// Replicas to run while a trigger keeps failing.
    pub fallback: Option<FallbackSpec>,
    /// Stabilization and rate limits.
    pub behavior: Behavior,
    /// Pause annotations.
    pub pause: PauseState,
    /// Trigger names in order. Empty: whatever readings are passed.
    pub triggers: Vec<String>,
    /// `advanced.scalingModifiers`: a formula whose result replaces the per-trigger
    /// combination. Boxed: few objects have one, and every loop keeps an engine spec.
    pub modifiers: Option<Box<ModifiersSpec>>,
}

/// Fallback settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FallbackSpec {
    /// Failures a trigger may have before fallback applies (fallback from failure N+1).
    pub failure_threshold: u32,
    /// Replicas asked for.
    pub replicas: u32,
    /// How `replicas` combines with the current count.
    pub behavior: FallbackBehavior,
}

/// Scale-up and scale-down rules with defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Behavior {
    /// Rules for adding replicas.
    pub scale_up: Rules,
    /// Rules for removing replicas.
    pub scale_down: Rules,
}

/// Stabilization window and rate limits of one direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    /// Past recommendations considered.
    pub stabilization_window: Duration,
    /// How policies combine.
    pub select_policy: SelectPolicy,
    /// Rate limits. The HPA defaults are borrowed from statics: every object without its
    /// own policies (most of them) would otherwise allocate two lists.
    pub policies: Cow<'static, [Policy]>,
}

/// One rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Pods or percent.
    pub policy_type: PolicyType,
    /// Allowed change per period.
    pub value: u32,
    /// The period.
    pub period: Duration,
}

impl Policy {
    /// At most `value` pods per `period_seconds`.
    pub const fn pods(value: u32, period_seconds: u64) -> Self {
        Policy {
            policy_type: PolicyType::Pods,
            value,
            period: Duration::from_secs(period_seconds),
        }
    }

    /// At most `value` percent per `period_seconds`.
    pub const fn percent(value: u32, period_seconds: u64) -> Self {
        Policy {
            policy_type: PolicyType::Percent,
            value,
            period: Duration::from_secs(period_seconds),
        }
    }
}

/// The HPA's default scale-up policies.
static DEFAULT_SCALE_UP_POLICIES: [Policy; 2] = [Policy::percent(100, 15), Policy::pods(4, 15)];
/// The HPA's default scale-down policy.
static DEFAULT_SCALE_DOWN_POLICIES: [Policy; 1] = [Policy::percent(100, 15)];

impl Rules {
    /// The HPA's default scale-up: no stabilization, the larger of +100 % and +4 pods per 15 s.
    pub fn default_scale_up() -> Self {
        Rules {
            stabilization_window: Duration::ZERO,
            select_policy: SelectPolicy::Max,
            policies: Cow::Borrowed(&DEFAULT_SCALE_UP_POLICIES),
        }
    }

    /// The HPA's default scale-down: 300 s stabilization, -100 % per 15 s.
    pub fn default_scale_down() -> Self {
        Rules {
            stabilization_window: Duration::from_secs(300),
            select_policy: SelectPolicy::Max,
            policies: Cow::Borrowed(&DEFAULT_SCALE_DOWN_POLICIES),
        }
    }

    /// No stabilization and no rate limit (useful in tests and for fast-reacting objects).
    pub fn immediate() -> Self {
        Rules {
            stabilization_window: Duration::ZERO,
            select_policy: SelectPolicy::Max,
            policies: Cow::Borrowed(&[]),
        }
    }

    fn from_written(written: Option<&ScalingRules>, default: Rules) -> Rules {
        let Some(written) = written else {
            return default;
        };
        let policies = match &written.policies {
            Some(policies) if !policies.is_empty() => policies
                .iter()
                .map(|policy| Policy {
                    policy_type: policy.policy_type,
                    value: policy.value,
                    period: Duration::from_secs(u64::from(policy.period_seconds)),
                })
                .collect(),
            _ => default.policies,
        };
        Rules {
            stabilization_window: written
                .stabilization_window_seconds
                .map(|seconds| Duration::from_secs(u64::from(seconds)))
                .unwrap_or(default.stabilization_window),
            select_policy: written.select_policy.unwrap_or(default.select_policy),
            policies,
        }
    }

    /// The longest policy period (how long scale events must be remembered).
    pub fn longest_period(&self) -> Duration {
        self.policies
            .iter()
            .map(|policy| policy.period)
            .max()
            .unwrap_or(Duration::ZERO)
    }
}

impl Default for Behavior {
    fn default() -> Self {
        Behavior {
            scale_up: Rules::default_scale_up(),
            scale_down: Rules::default_scale_down(),
        }
    }
}

impl Behavior {
    /// Applies the HPA defaults to what was written; a missing part gets its default.
    pub fn from_hpa(written: Option<&HpaBehavior>) -> Self {
        Behavior {
            scale_up: Rules::from_written(
                written.and_then(|behavior| behavior.scale_up.as_ref()),
                Rules::default_scale_up(),
            ),
            scale_down: Rules::from_written(
                written.and_then(|behavior| behavior.scale_down.as_ref()),
                Rules::default_scale_down(),
            ),
        }
    }

    /// No stabilization and no rate limits in either direction.
    pub fn immediate() -> Self {
        Behavior {
            scale_up: Rules::immediate(),
            scale_down: Rules::immediate(),
        }
    }
}

impl Default for EngineSpec {
    fn default() -> Self {
        EngineSpec {
            min_replicas: 0,
            max_replicas: crate::spec::ScaledObjectSpec::default_max_replicas(),
            idle_replicas: None,
            polling_interval: Duration::from_secs(30),
            cooldown_period: Duration::from_secs(300),
            initial_cooldown_period: Duration::ZERO,
            fallback: None,
            behavior: Behavior::default(),
            pause: PauseState::default(),
            triggers: Vec::new(),
            modifiers: None,
        }
    }
}

impl EngineSpec {
    /// KEDA's defaults with the given bounds and trigger names.
    pub fn new(min_replicas: u32, max_replicas: u32, triggers: &[&str]) -> Self {
        EngineSpec {
            min_replicas,
            max_replicas,
            triggers: triggers.iter().map(|name| (*name).to_owned()).collect(),
            ..EngineSpec::default()
        }
    }

    /// From a ScaledObject spec and its pause state.
    pub fn from_spec(spec: &ScaledObjectSpec, pause: PauseState) -> Self {
        EngineSpec {
            min_replicas: spec.min_replicas(),
            max_replicas: spec.max_replicas(),
            idle_replicas: spec.idle_replicas(),
            polling_interval: spec.polling_interval(),
            cooldown_period: spec.cooldown_period(),
            initial_cooldown_period: spec.initial_cooldown_period(),
            fallback: spec.fallback.as_ref().map(|fallback| FallbackSpec {
                failure_threshold: fallback.failure_threshold,
                replicas: fallback.replicas,
                behavior: fallback.behavior.unwrap_or_default(),
            }),
            behavior: Behavior::from_hpa(spec.behavior()),
            pause,
            triggers: spec
                .triggers
                .iter()
                .enumerate()
                .map(|(index, trigger)| trigger.effective_name(index))
                .collect(),
            modifiers: ModifiersSpec::from_spec(spec).map(Box::new),
        }
    }

    /// From a ScaledObject, reading its pause annotations (an invalid one is an error).
    pub fn from_scaled_object(object: &ScaledObject) -> Result<Self, ValidationProblem> {
        Ok(EngineSpec::from_spec(&object.spec, object.pause_state()?))
    }

    /// The lowest count the HPA part of the engine goes to: `max(min, 1)`.
    pub fn floor(&self) -> u32 {
        self.min_replicas.max(1)
    }

    /// Where an inactive object rests when it may go below `min`: idle, else 0 (min == 0).
    pub fn rest_replicas(&self) -> Option<u32> {
        match self.idle_replicas {
            Some(idle) => Some(idle),
            None if self.min_replicas == 0 => Some(0),
            None => None,
        }
    }
}
