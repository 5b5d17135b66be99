//! The scale loop: one tokio task per object. It polls every trigger concurrently at the
//! object's polling interval, feeds the readings to the engine, applies the decision through
//! the object's [`ScaleTarget`](super::ScaleTarget) when it differs from the current count,
//! and publishes status and events.
//!
//! Scheduling never drifts: each poll is due one interval after the previous poll was due
//! (not after it finished), the lag between due and actual start is measured, and polls that
//! a whole interval overran are skipped rather than run back to back.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use rand::Rng;
use tokio::sync::Notify;

use super::evaluate::Evaluator;
use super::mailbox::Mailbox;
use super::metrics::{ObjectLabels, RuntimeMetrics};
use super::object::{ManagedObject, RuntimeConfig};
use super::poller::TriggerPoller;
use super::pool::ScalerPool;
use super::push::PushEdge;
use super::sink::{
    EventKind, ObjectEvent, REASON_SCALE_FAILED, REASON_SCALED, REASON_TARGET_UNREADABLE,
    StatusSink,
};
use crate::spec::ScaledObjectStatus;

/// What every loop shares.
pub(crate) struct LoopShared {
    pub(crate) pool: ScalerPool,
    pub(crate) sink: Arc<dyn StatusSink>,
    pub(crate) metrics: RuntimeMetrics,
    pub(crate) config: RuntimeConfig,
}

/// Messages from the supervisor to a loop.
pub(crate) enum Control {
    /// A new version of the object.
    Update(Box<ManagedObject>),
    /// The object was deleted: stop and forget it.
    Stop,
    /// The host is shutting down: stop, but the object lives on.
    Shutdown,
}

/// Why the loop runs an evaluation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cause {
    /// The polling interval came round (or a pushed `false` asked for a poll).
    Poll,
    /// A trigger pushed `true`: evaluate now with the last readings.
    PushActivated,
}

pub(crate) struct ScaleLoop {
    object: ManagedObject,
    pollers: Vec<TriggerPoller>,
    evaluator: Evaluator,
    shared: Arc<LoopShared>,
    control: Arc<Mailbox>,
    wake: Arc<Notify>,
    /// Set by the first poll in which any trigger answered; until then nothing is scaled.
    polled_ok_once: bool,
    published: Option<ScaledObjectStatus>,
    target_failing: bool,
    desired_gauge: Gauge,
    current_gauge: Gauge,
    fallback_gauge: Gauge,
    reconcile_errors: Counter,
    scale_changes: Counter,
}

impl ScaleLoop {
    pub(crate) fn new(
        mut object: ManagedObject,
        shared: Arc<LoopShared>,
        control: Arc<Mailbox>,
    ) -> Self {
        let labels = ObjectLabels::from(&object.key);
        let metrics = &shared.metrics;
        let wake = Arc::new(Notify::new());
        let evaluator = Evaluator::new(&object);
        // The pollers own the triggers and the last status becomes `published`: one copy
        // of each per object, not one more kept in `object`.
        let triggers = std::mem::take(&mut object.triggers);
        let pollers = build_pollers(&object.key, triggers, &shared, &wake, &[]);
        Self {
            evaluator,
            desired_gauge: metrics.desired_replicas.get_or_create_owned(&labels),
            current_gauge: metrics.current_replicas.get_or_create_owned(&labels),
            fallback_gauge: metrics.fallback.get_or_create_owned(&labels),
            reconcile_errors: metrics.reconcile_errors.get_or_create_owned(&labels),
            scale_changes: metrics.scale_changes.get_or_create_owned(&labels),
            published: object.last_status.take(),
            object,
            pollers,
            shared,
            control,
            wake,
            polled_ok_once: false,
            target_failing: false,
        }
    }

    /// Runs the loop until it is stopped. The state is boxed because an async fn keeps a
    /// by-value `self` twice in its future (the argument and its binding); thousands of idle
    /// loops would pay for that.
    pub(crate) async fn run(mut self: Box<Self>) {
        self.shared.metrics.scaled_objects.inc();
        let mut interval = self.object.spec.polling_interval();
        let mut due = Instant::now() + first_delay(interval, self.shared.config.first_poll_spread);
        let wake = self.wake.clone();
        let control = self.control.clone();
        let removed = loop {
            tokio::select! {
                biased;
                control = control.recv() => match control {
                    Control::Shutdown => break false,
                    Control::Stop => break true,
                    Control::Update(object) => {
                        if self.update(*object) {
                            let new_interval = self.object.spec.polling_interval();
                            if new_interval != interval {
                                interval = new_interval;
                                due = Instant::now();
                            }
                        }
                    }
                },
                () = wake.notified() => {
                    Box::pin(self.handle_push_edges()).await;
                }
                () = tokio::time::sleep_until(due.into()) => {
                    let started = Instant::now();
                    self.shared.metrics.record_loop(
                        &self.object.key,
                        started.saturating_duration_since(due).as_secs_f64(),
                        self.object.pause.is_paused(),
                    );
                    // Boxed: the poll's state lives only while it runs, instead of making
                    // every idle loop's task as large as a poll in progress (thousands of
                    // loops wait for each one that polls).
                    Box::pin(self.poll_and_reconcile(Cause::Poll)).await;
                    due += interval;
                    let now = Instant::now();
                    if due <= now {
                        // Overran at least one whole interval: skip to the next slot in the
                        // future instead of firing the missed polls back to back.
                        let behind = now.duration_since(due);
                        let skipped = (behind.as_nanos() / interval.as_nanos().max(1)) as u32 + 1;
                        self.shared.metrics.skipped_polls.inc_by(u64::from(skipped));
                        due += interval * skipped;
                    }
                }
            }
        };
        control.close();
        Box::pin(self.finish(removed)).await;
    }

    /// Applies a new version of the object; true when something the loop runs changed.
    fn update(&mut self, mut object: ManagedObject) -> bool {
        let triggers_changed = !object
            .triggers
            .iter()
            .eq(self.pollers.iter().map(|poller| &*poller.trigger));
        let changed = triggers_changed
            || object.spec != self.object.spec
            || object.pause != self.object.pause
            || object.generation != self.object.generation
            || !Arc::ptr_eq(&object.target, &self.object.target);
        if !changed {
            return false;
        }
        if triggers_changed {
            let previous = std::mem::take(&mut self.pollers);
            let activities: Vec<_> = previous
                .iter()
                .map(|poller| (poller.trigger.name().to_owned(), poller.activity.clone()))
                .collect();
            let forgotten: Vec<_> = previous
                .iter()
                .filter(|poller| {
                    !object
                        .triggers
                        .iter()
                        .any(|trigger| trigger.name() == poller.trigger.name())
                })
                .map(|poller| {
                    (
                        poller.trigger.name().to_owned(),
                        poller.metric_labels().cloned().collect::<Vec<_>>(),
                    )
                })
                .collect();
            for (name, metric_labels) in forgotten {
                self.shared
                    .metrics
                    .forget_trigger(&self.object.key, &name, &metric_labels);
            }
            drop(previous);
            let triggers = std::mem::take(&mut object.triggers);
            self.pollers =
                build_pollers(&object.key, triggers, &self.shared, &self.wake, &activities);
        }
        self.evaluator.update(&object);
        object.triggers.clear();
        object.last_status = None;
        self.object = object;
        true
    }

    async fn handle_push_edges(&mut self) {
        let mut activated = false;
        let mut deactivated = false;
        for poller in &mut self.pollers {
            match poller.activity.take_edge() {
                Some(PushEdge::Activated) => {
                    poller.pushed_active = true;
                    activated = true;
                }
                Some(PushEdge::Deactivated) => deactivated = true,
                None => {}
            }
        }
        if deactivated || (activated && !self.polled_ok_once) {
            // A pushed `false` is checked by a poll; so is any push before the first poll
            // (nothing is scaled on push alone until the loop has seen the scaler answer).
            self.poll_and_reconcile(Cause::Poll).await;
        } else if activated {
            self.poll_and_reconcile(Cause::PushActivated).await;
        }
    }

    async fn poll_and_reconcile(&mut self, cause: Cause) {
        let key = &self.object.key;
        if cause == Cause::Poll {
            let mut failing_before = Vec::with_capacity(self.pollers.len());
            failing_before.extend(
                self.pollers
                    .iter()
                    .map(|poller| poller.consecutive_failures > 0),
            );
            let results =
                futures::future::join_all(self.pollers.iter_mut().map(|poller| poller.poll(key)))
                    .await;
            self.shared
                .metrics
                .trigger_polls
                .inc_by(results.len() as u64);
            if results.iter().any(|ok| *ok) {
                self.polled_ok_once = true;
            }
            self.report_trigger_transitions(&failing_before).await;
        }
        let current = match self.object.target.current_replicas().await {
            Ok(current) => {
                if self.target_failing {
                    self.target_failing = false;
                }
                current
            }
            Err(error) => {
                self.reconcile_errors.inc();
                if !self.target_failing {
                    self.target_failing = true;
                    tracing::warn!(object = %key, %error, "cannot read scale target");
                    self.event(
                        EventKind::Warning,
                        REASON_TARGET_UNREADABLE,
                        error.to_string(),
                    )
                    .await;
                }
                return;
            }
        };
        self.current_gauge.set(i64::from(current));
        let now = SystemTime::now();
        let evaluation = self
            .evaluator
            .evaluate(&self.pollers, cause == Cause::Poll, current, now);
        let mut applied = current;
        // Restart safety: nothing changes before the scaler has answered once, except an
        // explicitly configured fallback (an unreachable scaler must still reach fallback).
        let allowed = self.polled_ok_once || evaluation.fallback;
        if allowed && evaluation.desired != current {
            match self.object.target.set_replicas(evaluation.desired).await {
                Ok(()) => {
                    applied = evaluation.desired;
                    self.scale_changes.inc();
                    tracing::info!(object = %key, from = current, to = evaluation.desired, reason = %evaluation.reason, "scaled");
                    let message = format!(
                        "scaled from {current} to {} replicas: {}",
                        evaluation.desired, evaluation.reason
                    );
                    self.event(EventKind::Normal, REASON_SCALED, message).await;
                }
                Err(error) => {
                    self.reconcile_errors.inc();
                    tracing::warn!(object = %key, from = current, to = evaluation.desired, %error, "cannot scale target");
                    let message = format!(
                        "cannot scale from {current} to {}: {error}",
                        evaluation.desired
                    );
                    self.event(EventKind::Warning, REASON_SCALE_FAILED, message)
                        .await;
                }
            }
        } else if evaluation.desired != current {
            tracing::debug!(object = %key, from = current, to = evaluation.desired, "no change before the first successful poll");
        }
        self.evaluator
            .commit(&evaluation, applied == evaluation.desired, now);
        self.desired_gauge.set(i64::from(evaluation.desired));
        self.current_gauge.set(i64::from(applied));
        self.fallback_gauge.set(i64::from(evaluation.fallback));
        let status = self
            .evaluator
            .status(&evaluation, applied, self.object.generation, now);
        if self.published.as_ref() != Some(status) {
            self.shared.sink.publish_status(key, status).await;
            match self.published.as_mut() {
                Some(published) => published.clone_from(status),
                None => self.published = Some(status.clone()),
            }
        }
    }

    async fn report_trigger_transitions(&self, failing_before: &[bool]) {
        for (poller, was_failing) in self.pollers.iter().zip(failing_before) {
            if let Some(event) = poller.transition(*was_failing) {
                self.shared
                    .sink
                    .record_event(&self.object.key, &event)
                    .await;
            }
        }
    }

    async fn event(&self, kind: EventKind, reason: &'static str, message: String) {
        let event = ObjectEvent {
            kind,
            reason,
            message,
        };
        self.shared
            .sink
            .record_event(&self.object.key, &event)
            .await;
    }

    async fn finish(self: Box<Self>, removed: bool) {
        let key = &self.object.key;
        self.shared.metrics.scaled_objects.dec();
        let triggers: Vec<String> = self
            .pollers
            .iter()
            .map(|poller| poller.trigger.name().to_owned())
            .collect();
        let metric_labels: Vec<_> = self
            .pollers
            .iter()
            .flat_map(|poller| poller.metric_labels().cloned())
            .collect();
        // Aborts the push tasks.
        drop(self.pollers);
        self.shared
            .metrics
            .forget_object(key, &triggers, &metric_labels);
        if removed {
            self.shared.sink.object_removed(key).await;
        }
    }
}

fn build_pollers(
    key: &super::ObjectKey,
    triggers: Vec<super::ResolvedTrigger>,
    shared: &LoopShared,
    wake: &Arc<Notify>,
    activities: &[(String, Arc<super::push::TriggerActivity>)],
) -> Vec<TriggerPoller> {
    triggers
        .into_iter()
        .map(|trigger| {
            let previous = activities
                .iter()
                .find(|(name, _)| name == trigger.name())
                .map(|(_, activity)| activity.clone());
            let mut poller = TriggerPoller::new(key, trigger, &shared.pool, previous);
            poller.start_push(wake, shared.config.push_backoff, &shared.metrics, key);
            poller
        })
        .collect()
}

/// A random delay before the first poll within `min(interval, spread)`.
fn first_delay(interval: Duration, spread: Duration) -> Duration {
    let window = interval.min(spread);
    if window.is_zero() {
        return Duration::ZERO;
    }
    window.mul_f64(rand::rng().random_range(0.0..1.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{
        InMemoryTarget, MemorySink, ObjectKey, PoolConfig, PushMode, ResolvedTrigger,
    };
    use crate::spec::{PauseState, ScaledObjectSpec};

    fn object() -> ManagedObject {
        let key = ObjectKey::new("ns", "o");
        let mut trigger = ResolvedTrigger::new(&key, "t", 0, "127.0.0.1:1");
        trigger.push = PushMode::Never;
        ManagedObject {
            key,
            generation: 1,
            spec: Arc::new(ScaledObjectSpec::default()),
            pause: PauseState::default(),
            triggers: vec![trigger],
            target: Arc::new(InMemoryTarget::new(0)),
            last_status: None,
            created: SystemTime::now(),
        }
    }

    #[tokio::test]
    async fn a_loop_stays_small() {
        let metrics = RuntimeMetrics::unregistered();
        let shared = Arc::new(LoopShared {
            pool: ScalerPool::new(PoolConfig::default(), metrics.clone()),
            sink: Arc::new(MemorySink::new()),
            metrics,
            config: RuntimeConfig::default(),
        });
        let scale_loop = Box::new(ScaleLoop::new(object(), shared, Arc::default()));
        let state = std::mem::size_of_val(&*scale_loop);
        let future = std::mem::size_of_val(&scale_loop.run());
        eprintln!("loop state {state} bytes, task future {future} bytes");
        // An idle loop is what ten thousand objects cost. The loop's state and a running
        // poll's state are boxed, so the task itself holds little more than its timers
        // (before: 3.9 KiB, as large as a poll in progress plus the state twice).
        assert!(
            future < 512,
            "the loop future is {future} bytes (state {state} bytes, boxed)"
        );
    }

    #[test]
    fn first_poll_is_spread_within_the_window() {
        for _ in 0..100 {
            let delay = first_delay(Duration::from_secs(30), Duration::from_secs(1));
            assert!(delay < Duration::from_secs(1));
        }
        assert_eq!(
            first_delay(Duration::from_secs(1), Duration::ZERO),
            Duration::ZERO
        );
    }
}
