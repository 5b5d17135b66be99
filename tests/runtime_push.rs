//! Push over real StreamIsActive streams: activation without waiting for the poll, and no
//! activation lost across a scaler restart (KEDA #8168).

mod runtime_support;

use std::sync::Arc;
use std::time::Duration;

use ebb::runtime::{InMemoryTarget, ObjectKey, PushMode};
use runtime_support::hostile::HostileScaler;
use runtime_support::*;

const WAIT: Duration = Duration::from_secs(20);
/// Long enough that only the first poll can happen during a test.
const HOUR: u32 = 3600;

fn subscriptions(harness: &Harness, key: &ObjectKey) -> u64 {
    harness.metrics.push_subscriptions(key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushed_true_scales_from_zero_without_waiting_for_the_poll() {
    let values = Arc::new(Values::default());
    values.set("p", 0.0);
    let scaler = start_scaler(&values, true).await;
    let harness = Harness::new();
    let key = ObjectKey::new("ns", "pushed");
    let target = InMemoryTarget::new(0);
    let triggers = vec![trigger(&key, "p", 0, scaler.address, "p", PushMode::Auto)];
    harness
        .supervisor
        .apply(object(&key, spec(&["p"], 0, 10, HOUR), triggers, &target));

    wait_until("first poll published a status", WAIT, || {
        harness.sink.status(&key).is_some()
    })
    .await;
    wait_until("push subscription open", WAIT, || {
        subscriptions(&harness, &key) >= 1
    })
    .await;
    assert_eq!(target.replicas(), 0, "inactive at the first poll");

    values.set("p", 1.0);
    wait_until("pushed activation scales 0 -> 1", WAIT, || {
        target.replicas() == 1
    })
    .await;
    assert_eq!(
        harness.trigger_polls(),
        1,
        "no poll besides the first one: the push did it"
    );
    let events = harness.sink.events(&key);
    assert!(
        events
            .iter()
            .any(|event| event.reason == ebb::runtime::REASON_SCALED),
        "a Scaled event is recorded: {events:?}"
    );
    harness.supervisor.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activation_during_a_scaler_restart_is_delivered_on_reconnect() {
    let values = Arc::new(Values::default());
    values.set("r", 0.0);
    let first = start_scaler(&values, true).await;
    let proxy = Proxy::start(first.address).await;
    let harness = Harness::new();
    let key = ObjectKey::new("ns", "restarted");
    let target = InMemoryTarget::new(0);
    let triggers = vec![trigger(&key, "r", 0, proxy.address, "r", PushMode::Auto)];
    harness
        .supervisor
        .apply(object(&key, spec(&["r"], 0, 10, HOUR), triggers, &target));
    wait_until("first poll published a status", WAIT, || {
        harness.sink.status(&key).is_some()
    })
    .await;
    wait_until("push subscription open", WAIT, || {
        subscriptions(&harness, &key) >= 1
    })
    .await;

    // The scaler goes away; while it is down the source becomes active.
    let nowhere = closed_port().await;
    proxy.set_backend(nowhere);
    proxy.cut_connections();
    drop(first);
    values.set("r", 3.0);
    let second = start_scaler(&values, true).await;
    proxy.set_backend(second.address);

    wait_until("activation delivered after resubscribing", WAIT, || {
        target.replicas() == 1
    })
    .await;
    assert!(
        subscriptions(&harness, &key) >= 2,
        "the stream was opened again"
    );
    assert_eq!(
        harness.trigger_polls(),
        1,
        "the activation came over the new stream, not a poll"
    );
    harness.supervisor.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushed_false_triggers_an_immediate_poll() {
    let values = Arc::new(Values::default());
    values.set("f", 1.0);
    let scaler = start_scaler(&values, true).await;
    let harness = Harness::new();
    let key = ObjectKey::new("ns", "deactivated");
    let target = InMemoryTarget::new(0);
    let triggers = vec![trigger(&key, "f", 0, scaler.address, "f", PushMode::Auto)];
    harness
        .supervisor
        .apply(object(&key, spec(&["f"], 0, 10, HOUR), triggers, &target));
    wait_until("scaled to 1 at the first poll", WAIT, || {
        target.replicas() == 1
    })
    .await;
    wait_until("push subscription open", WAIT, || {
        subscriptions(&harness, &key) >= 1
    })
    .await;

    values.set("f", 0.0);
    // cooldownPeriod is 0: the poll the pushed `false` triggers scales to zero at once.
    wait_until("pushed false polled and scaled in", WAIT, || {
        target.replicas() == 0
    })
    .await;
    assert!(harness.trigger_polls() >= 2, "an extra poll ran");
    harness.supervisor.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_push_stream_starts_at_most_one_poll_per_push_window() {
    let scaler = HostileScaler::start().await;
    scaler.set_value("p", 1.0);
    // Every stream toggles its activity each millisecond; each `false` is an edge that asks
    // for a poll. (Without the push window: about 21 GetMetrics a second on a debug build,
    // 1,200 in the issue's release build.)
    scaler.flood(Duration::from_millis(1));
    let harness = Harness::new();
    let key = ObjectKey::new("ns", "flooded");
    let target = InMemoryTarget::new(0);
    let pushed = trigger(&key, "p", 0, scaler.address, "p", PushMode::Auto);
    harness.supervisor.apply(object(
        &key,
        spec(&["p"], 0, 10, HOUR),
        vec![pushed],
        &target,
    ));
    wait_until("push subscription open", WAIT, || {
        subscriptions(&harness, &key) >= 1
    })
    .await;
    wait_until("the flood is polled", WAIT, || scaler.get_metrics("p") >= 3).await;

    let (before, started) = (scaler.get_metrics("p"), std::time::Instant::now());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (calls, elapsed) = (scaler.get_metrics("p") - before, started.elapsed());
    harness.supervisor.shutdown().await;
    let per_second = calls as f64 / elapsed.as_secs_f64();
    eprintln!("{calls} GetMetrics in {elapsed:?} of a push flood: {per_second:.1}/s");
    // The poll interval is an hour: every call was started by a push. One per 250 ms window
    // (the default), and one for the window in progress at each end.
    let windows = (elapsed.as_millis() / 250) as u64;
    assert!(
        calls <= windows + 2,
        "{calls} GetMetrics in {elapsed:?}, {windows} push windows"
    );
}
