//! The loop's side of the engine: turning what the pollers know into engine readings,
//! keeping the engine state between decisions, and writing the decision into status.

use std::sync::Arc;
use std::time::SystemTime;

use tonic::Code;

use super::object::ManagedObject;
use super::poller::{PollFailure, TriggerPoller};
use super::sink::SharedStatus;
use crate::client::MetricsReading;
use crate::scaling::replace;
use crate::scaling::{
    Decision, EngineSpec, EngineState, Measurement, MetricType, Reading, ReadingError,
    ReadingErrorKind, decide,
};
use crate::spec::{ConditionStatus, ConditionType, PauseState, ScaledObjectSpec};

/// Engine spec and state of one object.
pub(crate) struct Evaluator {
    spec: EngineSpec,
    state: EngineState,
    /// The last status, shared with the host once published: one copy per object, not two.
    status: Arc<SharedStatus>,
}

/// One decision, with what the loop needs from it.
pub(crate) struct Evaluation {
    pub(crate) decision: Decision,
    pub(crate) desired: u32,
    pub(crate) reason: String,
    /// A trigger is in fallback (may change replicas even before the first good poll).
    pub(crate) fallback: bool,
}

impl Evaluator {
    pub(crate) fn new(object: &ManagedObject) -> Self {
        let state = match &object.last_status {
            Some(status) => EngineState::restore(status, Some(object.created)),
            None => EngineState::created(object.created),
        };
        Self {
            spec: EngineSpec::from_spec(&object.spec, object.pause),
            state,
            status: Arc::new(SharedStatus::new(
                object.last_status.clone().unwrap_or_default(),
            )),
        }
    }

    /// A new version of the object: new spec, same memory.
    pub(crate) fn update(&mut self, spec: &ScaledObjectSpec, pause: PauseState) {
        self.spec = EngineSpec::from_spec(spec, pause);
    }

    /// Decides at `current` replicas, with the pollers of `spec`'s triggers (by position).
    /// `fresh_poll` is false when re-evaluating the last readings (a pushed activation):
    /// failures of that poll were already counted then.
    pub(crate) fn evaluate(
        &mut self,
        spec: &ScaledObjectSpec,
        pollers: &[TriggerPoller],
        fresh_poll: bool,
        current: u32,
        now: SystemTime,
    ) -> Evaluation {
        // Built per decision, not kept: an idle object should not hold its last readings twice
        // (the pollers have them).
        let readings: Vec<Reading> = pollers
            .iter()
            .enumerate()
            .map(|(index, poller)| {
                let metric_type = spec
                    .triggers
                    .get(index)
                    .and_then(|trigger| trigger.metric_type)
                    .unwrap_or_default();
                reading(poller, metric_type)
            })
            .collect();
        if !fresh_poll {
            // The engine counts a failure per call; undo the count the same failures
            // already got when they were polled.
            for poller in pollers.iter().filter(|poller| poller.last_error.is_some()) {
                if let Some(count) = self.state.failures.get_mut(poller.trigger.name()) {
                    *count = count.saturating_sub(1);
                }
            }
        }
        let decision = decide(&self.spec, current, &readings, &self.state, now);
        let fallback = decision
            .condition(ConditionType::Fallback)
            .is_some_and(|condition| condition.status == ConditionStatus::True);
        Evaluation {
            desired: decision.desired_replicas,
            reason: decision.reason.clone(),
            fallback,
            decision,
        }
    }

    /// Keeps the state of `evaluation`. When its change was not applied (blocked or failed),
    /// the scale event the engine recorded for it is dropped: the engine assumes its
    /// decisions are applied.
    pub(crate) fn commit(&mut self, evaluation: &Evaluation, applied: bool, now: SystemTime) {
        self.state.clone_from(&evaluation.decision.state);
        if !applied && evaluation.decision.changed() {
            let recorded = self.state.scale_events.last().is_some_and(|event| {
                event.at == now
                    && event.from == evaluation.decision.current_replicas
                    && event.to == evaluation.decision.desired_replicas
            });
            if recorded {
                self.state.scale_events.pop();
            }
        }
    }

    /// The status after `evaluation`, with `applied` replicas on the target, and whether it
    /// differs from the status before (the one last returned, or the host's at the start).
    pub(crate) fn status(
        &mut self,
        evaluation: &Evaluation,
        applied: u32,
        generation: i64,
        now: SystemTime,
    ) -> (&Arc<SharedStatus>, bool) {
        let changed = self.status.update(|status| {
            let mut changed = evaluation.decision.apply_to_status(status, now);
            changed |= replace(&mut status.current_replicas, Some(applied));
            changed |= replace(&mut status.observed_generation, Some(generation));
            changed
        });
        (&self.status, changed)
    }
}

fn reading(poller: &TriggerPoller, metric_type: MetricType) -> Reading {
    let name = poller.trigger.name();
    if let Some(failure) = &poller.last_error {
        return Reading {
            trigger: name.to_owned(),
            outcome: Err(reading_error(failure)),
        };
    }
    match &poller.last_reading {
        Some(reading) => {
            let measurement = measurement(reading, metric_type);
            if poller.pushed_active {
                return Reading::ok(name, measurement.activated_by_push());
            }
            Reading::ok(name, measurement)
        }
        None => Reading::error(name, ReadingErrorKind::Unavailable, "not polled yet"),
    }
}

/// One measurement for the engine from a reading of several metrics: the metric asking for
/// the most replicas (highest value per target) speaks for the trigger.
pub(crate) fn measurement(reading: &MetricsReading, metric_type: MetricType) -> Measurement {
    let ratio = |value: &crate::client::MetricReading| {
        if value.target > 0.0 {
            value.value / value.target
        } else {
            f64::INFINITY
        }
    };
    let driver = reading
        .values
        .iter()
        .max_by(|a, b| ratio(a).total_cmp(&ratio(b)));
    let (value, target) = driver.map_or((0.0, 0.0), |driver| (driver.value, driver.target));
    Measurement {
        value,
        target,
        metric_type,
        active: reading.active,
        active_by_push: false,
        in_flight: reading.in_flight,
        activation: driver.map(|driver| driver.activation_target),
    }
}

fn reading_error(failure: &PollFailure) -> ReadingError {
    let kind = match failure.code {
        Code::InvalidArgument => ReadingErrorKind::InvalidMetadata,
        Code::NotFound => ReadingErrorKind::NotFound,
        Code::Unavailable => ReadingErrorKind::Unavailable,
        Code::DeadlineExceeded => ReadingErrorKind::Deadline,
        Code::Unauthenticated | Code::PermissionDenied => ReadingErrorKind::Unauthenticated,
        _ => ReadingErrorKind::Other,
    };
    ReadingError {
        kind,
        message: failure.message.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::MetricReading;

    fn value(name: &str, value: f64, target: f64) -> MetricReading {
        MetricReading {
            metric_name: name.into(),
            value,
            target,
            activation_target: 0.0,
        }
    }

    #[test]
    fn the_metric_asking_most_replicas_speaks_for_the_trigger() {
        let reading = MetricsReading {
            values: vec![value("a", 10.0, 5.0), value("b", 9.0, 1.0)],
            active: true,
            in_flight: Some(3),
        };
        let measurement = measurement(&reading, MetricType::AverageValue);
        assert_eq!((measurement.value, measurement.target), (9.0, 1.0));
        assert!(measurement.active);
        assert_eq!(measurement.in_flight, Some(3));
    }

    #[test]
    fn codes_map_to_reading_error_kinds() {
        let failure = |code| PollFailure {
            code,
            message: "m".into(),
        };
        assert_eq!(
            reading_error(&failure(Code::DeadlineExceeded)).kind,
            ReadingErrorKind::Deadline
        );
        assert_eq!(
            reading_error(&failure(Code::InvalidArgument)).kind,
            ReadingErrorKind::InvalidMetadata
        );
        assert_eq!(
            reading_error(&failure(Code::Internal)).kind,
            ReadingErrorKind::Other
        );
    }
}
