//! "Nothing else happened" checks on tokio's paused clock: hours of scale-loop time pass in
//! moments, so the absence of a write is checked over a span far longer than any cooldown,
//! without sleeping in real time.

mod runtime_support;

use std::time::Duration;

use ebb::client::Protocol;
use ebb::runtime::{InMemoryTarget, ObjectKey, PushMode};
use ebb::spec::{Fallback, TriggerHealth};
use runtime_support::hostile::HostileScaler;
use runtime_support::*;

#[tokio::test(start_paused = true)]
async fn a_dead_scaler_never_scales_to_zero_however_long_it_stays_dead() {
    let harness = Harness::new();
    let key = ObjectKey::new("ns", "orders");
    let target = InMemoryTarget::new(3);
    let dead = trigger(&key, "q", 0, closed_port().await, "q", PushMode::Never);
    let mut spec = spec(&["q"], 0, 10, 1);
    spec.cooldown_period = Some(30);
    harness
        .supervisor
        .apply(object(&key, spec, vec![dead], &target));
    // An hour of polls every second, 120 cooldown periods.
    tokio::time::sleep(Duration::from_secs(3600)).await;
    let status = harness.sink.status(&key).expect("a status was published");
    let trigger = &status.triggers[0];
    assert_eq!(trigger.health, TriggerHealth::Failing);
    assert!(
        trigger.number_of_failures >= 100,
        "failures were counted: {}",
        trigger.number_of_failures
    );
    assert_eq!(
        target.replicas(),
        3,
        "a dead scaler is no reason to scale in"
    );
    assert_eq!(target.writes(), 0, "the target was never written");
    harness.supervisor.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn an_idle_object_is_written_once_and_then_left_alone() {
    let values = std::sync::Arc::new(Values::default());
    values.set("q", 0.0);
    let scaler = start_scaler(&values, false).await;
    let harness = Harness::new();
    let key = ObjectKey::new("ns", "idle");
    let target = InMemoryTarget::new(2);
    let idle = trigger(&key, "q", 0, scaler.address, "q", PushMode::Never);
    let mut spec = spec(&["q"], 0, 10, 10);
    spec.cooldown_period = Some(60);
    harness
        .supervisor
        .apply(object(&key, spec, vec![idle], &target));
    wait_until(
        "scaled to zero after the cooldown",
        Duration::from_secs(600),
        || target.replicas() == 0,
    )
    .await;
    let writes = target.writes();
    let polled = values.measures("q");
    // Two hours of polls with nothing waiting: no further write.
    tokio::time::sleep(Duration::from_secs(2 * 3600)).await;
    assert_eq!(target.writes(), writes, "no write while nothing changes");
    assert!(values.measures("q") >= polled + 600, "it kept polling");
    harness.supervisor.shutdown().await;
}

/// A hostile scaler answering `value` against `target` over `protocol`: the object sits at 7
/// replicas with min 1. A number that is not finite is a failed poll, not a 0 that scales
/// 7 -> 1: the count holds, the trigger is Failing, and past the failure threshold fallback
/// applies.
async fn a_non_finite_answer_is_a_failed_poll(protocol: Protocol, value: f64, target: f64) {
    let scaler = HostileScaler::start().await;
    scaler.set_value("q", value);
    scaler.set_target("q", target);
    let harness = Harness::new();
    let key = ObjectKey::new("ns", "hostile");
    let target_workload = InMemoryTarget::new(7);
    let mut hostile = trigger(&key, "q", 0, scaler.address, "q", PushMode::Never);
    hostile.protocol = Some(protocol);
    let mut spec = spec(&["q"], 1, 10, 1);
    spec.fallback = Some(Fallback {
        failure_threshold: 5,
        replicas: 4,
        behavior: None,
    });
    harness
        .supervisor
        .apply(object(&key, spec, vec![hostile], &target_workload));

    wait_until("three polls failed", Duration::from_secs(60), || {
        harness
            .sink
            .status(&key)
            .is_some_and(|status| status.triggers[0].number_of_failures >= 3)
    })
    .await;
    let status = harness.sink.status(&key).expect("a status was published");
    let trigger = &status.triggers[0];
    assert_eq!(trigger.health, TriggerHealth::Failing, "{trigger:?}");
    let message = trigger.message.as_deref().unwrap_or_default();
    assert!(
        message.contains("not a finite number"),
        "the message says why: {message:?}"
    );
    assert_eq!(
        target_workload.replicas(),
        7,
        "a failed poll holds the count"
    );
    assert_eq!(target_workload.writes(), 0);

    wait_until("fallback applied", Duration::from_secs(60), || {
        target_workload.replicas() == 4
    })
    .await;
    harness.supervisor.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_nan_value_over_v1_is_a_failed_poll() {
    a_non_finite_answer_is_a_failed_poll(Protocol::V1, f64::NAN, 1.0).await;
}

#[tokio::test(start_paused = true)]
async fn an_infinite_target_over_v1_is_a_failed_poll() {
    a_non_finite_answer_is_a_failed_poll(Protocol::V1, 3.0, f64::INFINITY).await;
}

#[tokio::test(start_paused = true)]
async fn a_nan_value_over_keda_is_a_failed_poll() {
    a_non_finite_answer_is_a_failed_poll(Protocol::Keda, f64::NAN, 1.0).await;
}

#[tokio::test(start_paused = true)]
async fn an_infinite_value_over_keda_is_a_failed_poll() {
    a_non_finite_answer_is_a_failed_poll(Protocol::Keda, f64::INFINITY, 1.0).await;
}

#[tokio::test(start_paused = true)]
async fn a_negative_infinite_target_over_keda_is_a_failed_poll() {
    a_non_finite_answer_is_a_failed_poll(Protocol::Keda, 3.0, f64::NEG_INFINITY).await;
}

/// An object pushed by `scaler`, once its push stream is open and its first poll done, with
/// the trigger known active (its value is 1) and an hour to its next poll.
async fn pushing_object(
    scaler: &HostileScaler,
    harness: &Harness,
    key: &ObjectKey,
) -> InMemoryTarget {
    scaler.set_value("p", 1.0);
    let target = InMemoryTarget::new(0);
    let pushed = trigger(key, "p", 0, scaler.address, "p", PushMode::Auto);
    harness.supervisor.apply(object(
        key,
        spec(&["p"], 0, 10, 3600),
        vec![pushed],
        &target,
    ));
    wait_until("first poll scaled 0 -> 1", Duration::from_secs(60), || {
        target.replicas() == 1
    })
    .await;
    wait_until("push subscription open", Duration::from_secs(60), || {
        harness.metrics.push_subscriptions(key) >= 1
    })
    .await;
    // Whatever the stream's first message started is over, its push window too.
    settle_for(Duration::from_millis(50)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    settle_for(Duration::from_millis(50)).await;
    target
}

/// The loop takes a pushed edge at t0 and holds the next for 250 ms: edges at t0 + 10 ms are
/// polled when the window ends, not before and not never.
#[tokio::test(start_paused = true)]
async fn a_pushed_edge_inside_the_push_window_is_polled_when_it_ends() {
    let scaler = HostileScaler::start().await;
    let harness = Harness::new();
    let key = ObjectKey::new("ns", "paced");
    pushing_object(&scaler, &harness, &key).await;
    let polled = scaler.get_metrics("p");

    // Pushed false while known active: an edge, polled at once (the poll finds it active).
    let start = tokio::time::Instant::now();
    scaler.push(false);
    settle_until("the first edge is polled", || {
        scaler.get_metrics("p") == polled + 1
    })
    .await;
    assert_eq!(start.elapsed(), Duration::ZERO, "at once");
    // True (known already) then false again 10 ms later, inside the window: an edge, held.
    tokio::time::sleep(Duration::from_millis(10)).await;
    scaler.push(true);
    settle_for(Duration::from_millis(50)).await;
    scaler.push(false);
    settle_for(Duration::from_millis(50)).await;
    tokio::time::sleep_until(start + Duration::from_millis(240)).await;
    settle_for(Duration::from_millis(50)).await;
    assert_eq!(
        scaler.get_metrics("p"),
        polled + 1,
        "held inside the window"
    );
    tokio::time::sleep_until(start + Duration::from_millis(250)).await;
    settle_until("the held edge is polled when the window ends", || {
        scaler.get_metrics("p") == polled + 2
    })
    .await;
    assert_eq!(start.elapsed(), Duration::from_millis(250));
    harness.supervisor.shutdown().await;
}
