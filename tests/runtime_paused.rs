//! "Nothing else happened" checks on tokio's paused clock: hours of scale-loop time pass in
//! moments, so the absence of a write is checked over a span far longer than any cooldown,
//! without sleeping in real time.

mod runtime_support;

use std::time::Duration;

use ebb::runtime::{InMemoryTarget, ObjectKey, PushMode};
use ebb::spec::TriggerHealth;
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
