//! The decision: one pure function from spec, current replicas, readings, state and time.

use std::time::SystemTime;

use super::activation::{self, Cooldown, seconds};
use super::behavior::{self, Limit};
use super::fallback::{self, TriggerReport};
use super::modifiers;
use super::readings::Reading;
use super::report::{self, ConditionReport};
use super::spec::EngineSpec;
use super::state::{EngineState, ScaleEvent};

/// What the engine decided at one poll.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// Replicas before the decision.
    pub current_replicas: u32,
    /// Replicas to set (equal to `current_replicas` when nothing changes).
    pub desired_replicas: u32,
    /// The state to pass to the next decision.
    pub state: EngineState,
    /// Why, for people: "scaled 3→7: orders 68/10 per replica".
    pub reason: String,
    /// Whether any trigger is active (fallback asking for replicas counts).
    pub active: bool,
    /// Ready, Active, Fallback and Paused.
    pub conditions: Vec<ConditionReport>,
    /// Every trigger's outcome at this poll.
    pub triggers: Vec<TriggerReport>,
    /// With `advanced.scalingModifiers`: the formula's composite metric, which drove the
    /// decision instead of the triggers (named [`modifiers::FORMULA_NAME`]).
    pub formula: Option<TriggerReport>,
}

impl Decision {
    /// Whether the replica count should change.
    pub fn changed(&self) -> bool {
        self.desired_replicas != self.current_replicas
    }
}

/// The core's verdict before pause overrides.
pub(crate) struct Verdict {
    pub desired: u32,
    pub reason: String,
    pub active_reason: &'static str,
    pub active_message: String,
}

/// Decides the replica count. Pure: no I/O, no clock; `now` is the decision time.
pub fn decide(
    spec: &EngineSpec,
    current: u32,
    readings: &[Reading],
    state: &EngineState,
    now: SystemTime,
) -> Decision {
    let mut state = state.clone();
    state.created_at.get_or_insert(now);
    state.original_replicas.get_or_insert(current);
    let triggers = fallback::evaluate(spec, readings, &mut state.failures, current);
    // With a formula the decision sees the composite instead of each trigger's own count.
    let (combined, formula) = match &spec.modifiers {
        Some(modifiers) => {
            let (combined, formula) = modifiers::combine(spec, modifiers, &triggers, current);
            (Some(combined), Some(formula))
        }
        None => (None, None),
    };
    let deciding: &[TriggerReport] = combined.as_deref().unwrap_or(&triggers);
    let active = deciding.iter().any(|trigger| trigger.active);
    if active {
        state.last_active = Some(now);
    }

    let mut verdict = if let Some(replicas) = spec.pause.paused_replicas {
        Verdict {
            desired: replicas,
            reason: paused_reason(current, replicas, "paused-replicas annotation"),
            active_reason: if active { "TriggerActive" } else { "Paused" },
            active_message: String::new(),
        }
    } else if spec.pause.paused {
        Verdict {
            desired: current,
            reason: format!("paused at {current}: paused annotation"),
            active_reason: if active { "TriggerActive" } else { "Paused" },
            active_message: String::new(),
        }
    } else {
        core(spec, &mut state, current, deciding, active, now)
    };
    if !spec.pause.is_paused() {
        if spec.pause.paused_scale_in && verdict.desired < current {
            verdict.reason = format!(
                "steady at {current}: scale-in paused by annotation (would have {})",
                verdict.reason
            );
            verdict.desired = current;
        }
        if spec.pause.paused_scale_out && verdict.desired > current {
            verdict.reason = format!(
                "steady at {current}: scale-out paused by annotation (would have {})",
                verdict.reason
            );
            verdict.desired = current;
        }
    }
    if verdict.desired != current {
        state.scale_events.push(ScaleEvent {
            at: now,
            from: current,
            to: verdict.desired,
        });
    }
    let behavior = &spec.behavior;
    state.prune(
        now,
        behavior
            .scale_up
            .stabilization_window
            .max(behavior.scale_down.stabilization_window),
        behavior
            .scale_up
            .longest_period()
            .max(behavior.scale_down.longest_period()),
    );
    let conditions = report::conditions(spec, deciding, active, &verdict);
    Decision {
        current_replicas: current,
        desired_replicas: verdict.desired,
        state,
        reason: verdict.reason,
        active,
        conditions,
        triggers,
        formula,
    }
}

fn paused_reason(current: u32, replicas: u32, why: &str) -> String {
    if current == replicas {
        format!("paused at {replicas}: {why}")
    } else {
        format!("scaled {current}→{replicas}: {why}")
    }
}

fn core(
    spec: &EngineSpec,
    state: &mut EngineState,
    current: u32,
    triggers: &[TriggerReport],
    active: bool,
    now: SystemTime,
) -> Verdict {
    let floor = spec.floor();
    let max = spec.max_replicas.max(floor);
    let rest = spec.rest_replicas();
    let failing: Vec<&TriggerReport> = triggers
        .iter()
        .filter(|trigger| trigger.outcome.is_err() && !trigger.in_fallback)
        .collect();
    let in_flight: Vec<&TriggerReport> = triggers
        .iter()
        .filter(|trigger| trigger.in_flight > 0)
        .collect();

    // At rest (zero or idle) and nothing active: stay, whatever the errors.
    if let Some(rest) = rest
        && current <= rest
        && !active
    {
        let reason = if current < rest {
            format!("scaled {current}→{rest}: idleReplicaCount while no trigger is active")
        } else if let Some(trigger) = failing.first() {
            format!("steady at {current}: {}", trigger.explain(spec, current))
        } else {
            format!("steady at {current}: no trigger active")
        };
        return Verdict {
            desired: rest,
            reason,
            active_reason: if rest == 0 { "ScaledToZero" } else { "Idle" },
            active_message: String::new(),
        };
    }

    let driver = triggers
        .iter()
        .filter(|trigger| trigger.recommendation.is_some())
        .fold(None::<&TriggerReport>, |best, trigger| match best {
            Some(best) if best.recommendation >= trigger.recommendation => Some(best),
            _ => Some(trigger),
        });
    let driver_text = driver
        .or(failing.first().copied())
        .map(|trigger| trigger.explain(spec, current))
        .unwrap_or_else(|| "no trigger answered".to_owned());
    let mut raw = driver
        .and_then(|trigger| trigger.recommendation)
        .unwrap_or(current);
    let mut notes: Vec<String> = Vec::new();
    // Partial data never shrinks the workload: failing triggers hold the current count.
    if !failing.is_empty() && raw < current {
        raw = current;
        notes.push(format!(
            "no scale-in while {}",
            failing
                .iter()
                .map(|trigger| trigger.explain(spec, current))
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
    // Any error, even one in fallback, keeps the object off zero: errors never scale to zero.
    let any_error = triggers.iter().any(|trigger| trigger.outcome.is_err());
    let may_rest = rest.is_some() && !active && in_flight.is_empty() && !any_error;
    let cooldown = activation::cooldown(spec, state, now);
    let mut draining = false;
    if let Some(rest) = rest
        && may_rest
        && cooldown.elapsed()
    {
        if current <= floor {
            let since = match cooldown {
                Cooldown::Elapsed { initial: true } => format!(
                    "never active, initial cooldown {} passed",
                    seconds(spec.initial_cooldown_period)
                ),
                _ => format!(
                    "no trigger active for {} (cooldown)",
                    seconds(spec.cooldown_period)
                ),
            };
            return Verdict {
                desired: rest,
                reason: format!("scaled {current}→{rest}: {since}"),
                active_reason: if rest == 0 { "ScaledToZero" } else { "Idle" },
                active_message: String::new(),
            };
        }
        // Step down to the floor through stabilization and policies before the last step.
        raw = floor;
        draining = true;
    }
    let clamped = raw.clamp(floor, max);
    if state.history_since.is_none() {
        // No memory of past recommendations (new object or restart): assume the current
        // count was just recommended, so nothing shrinks before a full window has passed.
        if current > 0 {
            state.record_recommendation(now, current);
        }
        state.history_since = Some(now);
    }
    let (mut desired, limit) = behavior::apply(&spec.behavior, state, clamped, current, now);
    state.record_recommendation(now, clamped);
    if current < floor {
        desired = desired.max(floor);
    }
    desired = desired.min(max);

    let mut reason_detail = if draining {
        format!(
            "no trigger active, cooldown passed, stepping down to {floor} before {}",
            rest.unwrap_or(0)
        )
    } else {
        driver_text.clone()
    };
    if raw > max && desired == max {
        reason_detail.push_str(&format!(" (maxReplicaCount {max})"));
    }
    if raw < floor && desired == floor && !draining && current != floor {
        reason_detail.push_str(&format!(" (minimum {floor})"));
    }
    let reason = match desired.cmp(&current) {
        std::cmp::Ordering::Greater => {
            let from_rest = rest.is_some_and(|rest| current <= rest);
            let verb = if from_rest { "activated" } else { "scaled" };
            let limit_note = match limit {
                Limit::UpPolicy(_) if desired < clamped => {
                    format!(" (scale-up policy allows {desired} now)")
                }
                _ => String::new(),
            };
            format!("{verb} {current}→{desired}: {reason_detail}{limit_note}")
        }
        std::cmp::Ordering::Less => {
            let limit_note = match limit {
                Limit::DownPolicy(_) => format!(" (scale-down policy allows {desired} now)"),
                Limit::DownStabilization(_) => {
                    " (highest recommendation in the stabilization window)".to_owned()
                }
                _ => String::new(),
            };
            format!("scaled {current}→{desired}: {reason_detail}{limit_note}")
        }
        std::cmp::Ordering::Equal => steady_reason(
            spec,
            current,
            &in_flight,
            &failing,
            cooldown,
            limit,
            clamped,
            &reason_detail,
            rest.is_some() && !active && current <= floor,
        ),
    };
    let mut reason = reason;
    if desired == current {
        for note in notes {
            if !reason.contains(&note) {
                reason.push_str(&format!("; {note}"));
            }
        }
    }
    let (active_reason, active_message) = if active {
        ("TriggerActive", String::new())
    } else if !in_flight.is_empty() {
        ("InFlight", String::new())
    } else if let Cooldown::Remaining { left, .. } = cooldown
        && rest.is_some()
    {
        (
            "Cooldown",
            format!("no trigger active; {} of cooldown left", seconds(left)),
        )
    } else {
        ("NoActiveTrigger", String::new())
    };
    Verdict {
        desired,
        reason,
        active_reason,
        active_message,
    }
}

#[allow(clippy::too_many_arguments)]
fn steady_reason(
    spec: &EngineSpec,
    current: u32,
    in_flight: &[&TriggerReport],
    failing: &[&TriggerReport],
    cooldown: Cooldown,
    limit: Limit,
    recommended: u32,
    detail: &str,
    at_floor_inactive: bool,
) -> String {
    let rest = spec.rest_replicas().unwrap_or(0);
    if at_floor_inactive {
        if !in_flight.is_empty() {
            let work = in_flight
                .iter()
                .map(|trigger| format!("{} has {} in flight", trigger.name, trigger.in_flight))
                .collect::<Vec<_>>()
                .join(", ");
            return format!(
                "steady at {current}: no trigger active but {work}; not scaling to {rest}"
            );
        }
        if let Some(trigger) = failing.first() {
            return format!(
                "steady at {current}: {}; errors never scale to {rest}",
                trigger.explain(spec, current)
            );
        }
        if let Cooldown::Remaining { left, initial } = cooldown {
            let which = if initial {
                "initial cooldown"
            } else {
                "cooldown"
            };
            return format!(
                "steady at {current}: no trigger active, {rest} in {} ({which})",
                seconds(left)
            );
        }
    }
    match limit {
        Limit::DownStabilization(_) => format!(
            "steady at {current}: {detail}; {recommended} wanted, held by the {} scale-down stabilization window",
            seconds(spec.behavior.scale_down.stabilization_window)
        ),
        Limit::UpStabilization(_) => format!(
            "steady at {current}: {detail}; {recommended} wanted, held by the {} scale-up stabilization window",
            seconds(spec.behavior.scale_up.stabilization_window)
        ),
        Limit::UpPolicy(_) => format!("steady at {current}: {detail}; scale-up disabled by policy"),
        Limit::DownPolicy(_) => {
            format!("steady at {current}: {detail}; scale-down disabled by policy")
        }
        Limit::None => format!("steady at {current}: {detail}"),
    }
}
