//! The scaling engine: pure decisions from spec, readings, remembered state and time.
//!
//! No I/O and no clock: the caller passes `now`. One call per object per poll:
//!
//! ```
//! use std::time::SystemTime;
//! use ebb::scaling::{decide, EngineSpec, EngineState, Measurement, Reading};
//!
//! // Build the spec from a ScaledObject (`EngineSpec::from_scaled_object(&object)?`, which
//! // also reads the pause annotations) or directly:
//! let spec = EngineSpec::new(0, 10, &["orders"]);
//! // New object: start from its creation time. After a controller restart use
//! // `EngineState::restore(&status, creation_time)`.
//! let mut state = EngineState::created(SystemTime::now());
//!
//! // Each poll: one reading per trigger (by effective name), then apply the decision.
//! let now = SystemTime::now();
//! let readings = [Reading::ok("orders", Measurement::new(68.0, 10.0))];
//! let decision = decide(&spec, 0, &readings, &state, now);
//! assert_eq!(decision.desired_replicas, 4); // 0→7 wanted; default policy allows 4 now
//! assert!(decision.reason.starts_with("activated 0→4: orders 68/10 per replica"));
//! state = decision.state.clone(); // keep for the next poll (serde-serializable)
//! ```
//!
//! Rules for callers:
//! - Pass the target's replica count as read just before deciding, and write
//!   `desired_replicas` when [`Decision::changed`]. The engine assumes its decisions are
//!   applied (it records them as scale events for the rate-limit policies).
//! - Give every trigger a [`Reading`]: [`Measurement`] (value, target, metric type from the
//!   trigger's `metricType`, `active` = value > activation, optional in-flight count) or a
//!   [`ReadingError`]. A trigger of the spec without a reading counts as a failed poll.
//! - Call at least every `pollingInterval`; calling sooner (e.g. on a pushed activation) is
//!   fine: time is what matters, not the number of calls.
//! - Status: [`Decision::apply_to_status`] writes conditions, per-trigger health,
//!   lastActiveTime and replica counts; [`EngineState::restore`] reads them back.
//! - [`Decision::reason`] is one line for logs and events; conditions carry machine reasons.

mod activation;
mod behavior;
mod decide;
mod fallback;
mod formula;
mod hpa;
mod job;
mod modifiers;
mod readings;
mod report;
mod spec;
mod state;

#[cfg(test)]
mod tests;

pub use activation::{Cooldown, cooldown};
pub use behavior::Limit;
pub use decide::{Decision, decide};
pub use fallback::{TriggerReport, fallback_replicas, format_number};
pub use formula::{Formula, FormulaError, MAX_FORMULA_DEPTH, MAX_FORMULA_LENGTH};
pub use hpa::{MetricRecommendation, TOLERANCE, recommend};
pub use job::{
    Combine, JobDecision, JobLimits, JobReading, JobStrategy, RunningJobs, decide_jobs, max_scale,
};
pub use modifiers::{FORMULA_NAME, ModifiersSpec, scaling_modifiers};
pub use readings::{Measurement, MetricType, Reading, ReadingError, ReadingErrorKind};
pub use report::ConditionReport;
pub(crate) use report::replace;
pub use spec::{Behavior, EngineSpec, FallbackSpec, Policy, Rules};
pub use state::{EngineState, Recommendation, ScaleEvent};
