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

use rand::Rng;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::evaluate::Evaluator;
use super::mailbox::Mailbox;
use super::metrics::{ObjectLabels, RuntimeMetrics};
use super::object::{ManagedObject, RuntimeConfig};
use super::poller::TriggerPoller;
use super::pool::ScalerPool;
use super::push::PushEdge;
use super::series::ObjectSeries;
use super::sink::{
    EventKind, ObjectEvent, REASON_SCALE_FAILED, REASON_SCALED, REASON_TARGET_UNREADABLE,
    StatusSink,
};

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
    /// A push task saw an activity edge ([`Mailbox::wake_for_push`]; never sent).
    PushEdges,
}

/// Why the loop runs an evaluation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cause {
    /// The polling interval came round (or a pushed `false` asked for a poll).
    Poll,
    /// A trigger pushed `true`: evaluate now with the last readings.
    PushActivated,
}

/// What a loop keeps of its object once started: the triggers moved to the pollers and the
/// last status to the evaluator, so neither is kept twice.
struct LoopObject {
    key: super::ObjectKey,
    generation: i64,
    spec: Arc<crate::spec::ScaledObjectSpec>,
    pause: crate::spec::PauseState,
    target: Arc<dyn super::ScaleTarget>,
}

impl From<ManagedObject> for LoopObject {
    fn from(object: ManagedObject) -> Self {
        Self {
            key: object.key,
            generation: object.generation,
            spec: object.spec,
            pause: object.pause,
            target: object.target,
        }
    }
}

pub(crate) struct ScaleLoop {
    object: LoopObject,
    pollers: Vec<TriggerPoller>,
    /// The distinct admission slots of the pollers' connections, in a fixed (address) order
    /// so loops sharing several connections never wait on each other crosswise.
    poll_slots: Box<[Arc<Semaphore>]>,
    /// The slots held by the poll in progress.
    permits: Vec<OwnedSemaphorePermit>,
    evaluator: Evaluator,
    shared: Arc<LoopShared>,
    control: Arc<Mailbox>,
    /// Set by the first poll in which any trigger answered; until then nothing is scaled.
    polled_ok_once: bool,
    /// Whether the host has the evaluator's status: it had one at the start, or this loop
    /// published one. The evaluator's own copy is the comparison; no second copy is kept.
    host_has_status: bool,
    target_failing: bool,
    /// The object's exported numbers (and its triggers').
    series: Arc<ObjectSeries>,
}

impl ScaleLoop {
    pub(crate) fn new(
        mut object: ManagedObject,
        shared: Arc<LoopShared>,
        control: Arc<Mailbox>,
    ) -> Self {
        let series = shared
            .metrics
            .objects
            .scaled_object(ObjectLabels::from(&object.key));
        let evaluator = Evaluator::new(&object);
        // The pollers own the triggers and the evaluator the last status: one copy of each
        // per object, not one more kept in `object`.
        let triggers = std::mem::take(&mut object.triggers);
        let pollers = build_pollers(&object.key, &series, triggers, &shared, &control, &[]);
        Self {
            poll_slots: poll_slots(&pollers),
            permits: Vec::new(),
            evaluator,
            series,
            host_has_status: object.last_status.is_some(),
            object: object.into(),
            pollers,
            shared,
            control,
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
        let spread = self.shared.config.first_poll_spread;
        let mut due = Instant::now() + first_delay(interval, spread);
        // The first poll comes soon (a new object gets Ready fast); the gap before the second
        // also moves the loop's phase across the whole interval. Without it, objects loaded
        // together keep polling in the same short burst every interval forever: at 100,000
        // objects every 10 s, a 1 s burst asked the scaler for 100,000 answers per second.
        let mut rephase = true;
        let control = self.control.clone();
        let removed = loop {
            tokio::select! {
                biased;
                control = control.recv() => match control {
                    Control::Shutdown => break false,
                    Control::Stop => break true,
                    Control::PushEdges => {
                        // At most one push-started evaluation per window; later edges wait.
                        let window = self.shared.config.push_sample_interval;
                        self.control.hold_push_until(tokio::time::Instant::now() + window);
                        Box::pin(self.handle_push_edges()).await;
                    }
                    Control::Update(object) => {
                        if self.update(*object) {
                            let new_interval = self.object.spec.polling_interval();
                            if new_interval != interval {
                                interval = new_interval;
                                due = Instant::now() + first_delay(interval, spread);
                                rephase = true;
                            }
                        }
                    }
                },
                () = tokio::time::sleep_until(due.into()) => {
                    // Admission first: the lag below includes any wait for a slot. Waiting is
                    // boxed, like the poll: only a loop that has to wait pays for its state.
                    if !self.try_admit() {
                        Box::pin(self.admit()).await;
                    }
                    let started = Instant::now();
                    self.shared.metrics.record_loop(
                        &self.object.key,
                        &self.series,
                        started.saturating_duration_since(due).as_secs_f64(),
                        self.object.pause.is_paused(),
                    );
                    // Boxed: the poll's state lives only while it runs, instead of making
                    // every idle loop's task as large as a poll in progress (thousands of
                    // loops wait for each one that polls).
                    Box::pin(self.poll_and_reconcile(Cause::Poll)).await;
                    // Released and freed, not cleared: a list kept with its capacity between
                    // polls is 64 bytes for every idle object.
                    self.permits = Vec::new();
                    due += interval;
                    if rephase {
                        rephase = false;
                        due += rephase_delay(interval, spread);
                    }
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

    /// Takes one slot on each connection when every one is free now, without waiting.
    fn try_admit(&mut self) -> bool {
        for slot in self.poll_slots.iter() {
            match slot.clone().try_acquire_owned() {
                Ok(permit) => self.permits.push(permit),
                Err(_) => {
                    self.permits.clear();
                    return false;
                }
            }
        }
        true
    }

    /// Waits for one slot on each connection, in order. A closed semaphore (never closed
    /// today) admits without a slot rather than stopping the loop.
    async fn admit(&mut self) {
        for index in 0..self.poll_slots.len() {
            let slot = self.poll_slots[index].clone();
            if let Ok(permit) = slot.acquire_owned().await {
                self.permits.push(permit);
            }
        }
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
            for poller in &previous {
                let kept = object
                    .triggers
                    .iter()
                    .any(|trigger| trigger.name() == poller.trigger.name());
                if !kept {
                    self.shared.metrics.forget_trigger(poller.series.labels());
                }
            }
            drop(previous);
            let triggers = std::mem::take(&mut object.triggers);
            self.pollers = build_pollers(
                &object.key,
                &self.series,
                triggers,
                &self.shared,
                &self.control,
                &activities,
            );
            self.poll_slots = poll_slots(&self.pollers);
        }
        self.evaluator.update(&object.spec, object.pause);
        self.object = object.into();
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
                self.series.count_reconcile_error();
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
        self.series.set_current(current);
        let now = SystemTime::now();
        let evaluation = self.evaluator.evaluate(
            &self.object.spec,
            &self.pollers,
            cause == Cause::Poll,
            current,
            now,
        );
        let mut applied = current;
        // Restart safety: nothing changes before the scaler has answered once, except an
        // explicitly configured fallback (an unreachable scaler must still reach fallback).
        let allowed = self.polled_ok_once || evaluation.fallback;
        if allowed && evaluation.desired != current {
            match self.object.target.set_replicas(evaluation.desired).await {
                Ok(()) => {
                    applied = evaluation.desired;
                    self.series.count_scale_change();
                    tracing::info!(object = %key, from = current, to = evaluation.desired, reason = %evaluation.reason, "scaled");
                    let message = format!(
                        "scaled from {current} to {} replicas: {}",
                        evaluation.desired, evaluation.reason
                    );
                    self.event(EventKind::Normal, REASON_SCALED, message).await;
                }
                Err(error) => {
                    self.series.count_reconcile_error();
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
        self.series.set_desired(evaluation.desired);
        self.series.set_current(applied);
        self.series.set_fallback(evaluation.fallback);
        let (status, changed) =
            self.evaluator
                .status(&evaluation, applied, self.object.generation, now);
        if changed || !self.host_has_status {
            self.shared.sink.publish_status(key, status).await;
            self.host_has_status = true;
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
        // Aborts the push tasks.
        drop(self.pollers);
        self.shared.metrics.forget_object(key, &self.series);
        if removed {
            self.shared.sink.object_removed(key).await;
        }
    }
}

fn build_pollers(
    key: &super::ObjectKey,
    series: &Arc<ObjectSeries>,
    triggers: Vec<super::ResolvedTrigger>,
    shared: &LoopShared,
    wake: &Arc<Mailbox>,
    activities: &[(String, Arc<super::push::TriggerActivity>)],
) -> Vec<TriggerPoller> {
    let pollers: Vec<TriggerPoller> = triggers
        .into_iter()
        .map(|trigger| {
            let previous = activities
                .iter()
                .find(|(name, _)| name == trigger.name())
                .map(|(_, activity)| activity.clone());
            let mut poller = TriggerPoller::new(series, trigger, &shared.pool, previous);
            poller.start_push(wake, shared.config.push_backoff, key, series);
            poller
        })
        .collect();
    series.set_triggers(pollers.iter().map(|poller| poller.series.clone()));
    pollers
}

/// The distinct admission slots of `pollers`' connections, ordered by address.
fn poll_slots(pollers: &[TriggerPoller]) -> Box<[Arc<Semaphore>]> {
    let mut slots: Vec<Arc<Semaphore>> = pollers
        .iter()
        .filter_map(|poller| poller.poll_slots().cloned())
        .collect();
    slots.sort_by_key(|slot| Arc::as_ptr(slot) as usize);
    slots.dedup_by(|a, b| Arc::ptr_eq(a, b));
    slots.into()
}

/// A random delay before the first poll within `min(interval, spread)`.
fn first_delay(interval: Duration, spread: Duration) -> Duration {
    let window = interval.min(spread);
    if window.is_zero() {
        return Duration::ZERO;
    }
    window.mul_f64(rand::rng().random_range(0.0..1.0))
}

/// The extra gap before a loop's second poll: random over what the first poll's spread did
/// not cover, so loops started together end up polling at phases across the whole interval.
/// None when spreading is off (tests that want exact schedules) or already covered it.
fn rephase_delay(interval: Duration, spread: Duration) -> Duration {
    if spread.is_zero() || interval <= spread {
        return Duration::ZERO;
    }
    (interval - spread).mul_f64(rand::rng().random_range(0.0..1.0))
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

    fn shared() -> Arc<LoopShared> {
        let metrics = RuntimeMetrics::unregistered();
        Arc::new(LoopShared {
            pool: ScalerPool::new(PoolConfig::default(), metrics.clone()),
            sink: Arc::new(MemorySink::new()),
            metrics,
            config: RuntimeConfig::default(),
        })
    }

    #[tokio::test]
    async fn a_loop_stays_small() {
        let shared = shared();
        let scale_loop = Box::new(ScaleLoop::new(object(), shared, Arc::default()));
        let state = std::mem::size_of_val(&*scale_loop);
        let future = std::mem::size_of_val(&scale_loop.run());
        eprintln!("loop state {state} bytes, task future {future} bytes");
        // An idle loop is what ten thousand objects cost. The loop's state and a running
        // poll's state are boxed, so the task itself holds little more than its timer and
        // its mailbox (before: 3.9 KiB, as large as a poll in progress plus the state twice).
        // The state fits the allocator's 512-byte class; 8 bytes more would cost 128.
        assert!(
            future <= 320,
            "the loop future is {future} bytes (state {state} bytes, boxed)"
        );
        assert!(state <= 512, "the loop state is {state} bytes");
    }

    #[tokio::test]
    async fn a_poll_takes_one_slot_per_connection_and_waits_when_none_is_free() {
        let shared = shared();
        let mut object = object();
        let key = object.key.clone();
        for (index, address) in [(1, "127.0.0.1:1"), (2, "127.0.0.1:2")] {
            let mut trigger = ResolvedTrigger::new(&key, &format!("t{index}"), index, address);
            trigger.push = PushMode::Never;
            object.triggers.push(trigger);
        }
        let mut scale_loop = ScaleLoop::new(object, shared, Arc::default());
        // Three triggers on two connections: two slots, one each.
        assert_eq!(scale_loop.poll_slots.len(), 2);
        assert!(scale_loop.try_admit());
        assert_eq!(scale_loop.permits.len(), 2);
        let held: Vec<usize> = scale_loop
            .poll_slots
            .iter()
            .map(|slot| slot.available_permits())
            .collect();
        scale_loop.permits.clear();
        // Every slot of one connection taken: the loop does not get in without waiting, and
        // keeps nothing of the connection that was free.
        let busy = scale_loop.poll_slots[1].clone();
        let all = busy
            .clone()
            .try_acquire_many_owned(u32::try_from(busy.available_permits()).unwrap())
            .unwrap();
        assert!(!scale_loop.try_admit());
        assert!(scale_loop.permits.is_empty());
        assert_eq!(scale_loop.poll_slots[0].available_permits(), held[0] + 1);
        drop(all);
        assert!(scale_loop.try_admit());
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

    #[test]
    fn second_poll_moves_the_phase_across_the_rest_of_the_interval() {
        let (interval, spread) = (Duration::from_secs(10), Duration::from_secs(1));
        let delays: Vec<Duration> = (0..2000).map(|_| rephase_delay(interval, spread)).collect();
        assert!(delays.iter().all(|delay| *delay < Duration::from_secs(9)));
        // Spread, not clustered: each ninth of the range gets some loops.
        for ninth in 0..9 {
            let (low, high) = (Duration::from_secs(ninth), Duration::from_secs(ninth + 1));
            let here = delays.iter().filter(|d| **d >= low && **d < high).count();
            assert!(
                here > 100,
                "{here} of 2000 delays in [{ninth} s, {} s)",
                ninth + 1
            );
        }
        assert_eq!(rephase_delay(interval, Duration::ZERO), Duration::ZERO);
        assert_eq!(
            rephase_delay(Duration::from_secs(1), Duration::from_secs(1)),
            Duration::ZERO
        );
    }
}
