//! The scale loop against real scalers over loopback gRPC: RPCs per poll, deadlines,
//! restart safety.

mod runtime_support;

use std::time::Duration;

use ebb::client::Protocol;
use ebb::runtime::{InMemoryTarget, ObjectKey, PushMode};
use ebb::spec::{ConditionStatus, ConditionType, TriggerHealth};
use runtime_support::hostile::HostileScaler;
use runtime_support::*;

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_poll_is_exactly_one_rpc_per_trigger() {
    let values = std::sync::Arc::new(Values::default());
    values.set("a", 3.0);
    values.set("b", 0.0);
    let scaler = start_scaler(&values, false).await;
    let harness = Harness::new();
    let key = ObjectKey::new("ns", "orders");
    let target = InMemoryTarget::new(0);
    let triggers = vec![
        trigger(&key, "a", 0, scaler.address, "a", PushMode::Auto),
        trigger(&key, "b", 1, scaler.address, "b", PushMode::Auto),
    ];
    harness
        .supervisor
        .apply(object(&key, spec(&["a", "b"], 0, 10, 1), triggers, &target));

    wait_until("three polls of each trigger", WAIT, || {
        harness.trigger_polls() >= 6
    })
    .await;
    wait_until("scaled to the value of a", WAIT, || target.replicas() == 3).await;
    harness.supervisor.shutdown().await;

    let polls = harness.trigger_polls();
    assert_eq!(polls % 2, 0, "both triggers are polled at every poll");
    assert_eq!(
        values.measures("a") + values.measures("b"),
        polls,
        "one GetMetrics per trigger per poll and nothing else measured"
    );
    assert_eq!(values.measures("a"), values.measures("b"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keda_poll_takes_at_most_two_rpcs() {
    let values = std::sync::Arc::new(Values::default());
    values.set("k", 4.0);
    let scaler = start_scaler(&values, false).await;
    let harness = Harness::new();
    let key = ObjectKey::new("ns", "keda");
    let target = InMemoryTarget::new(1);
    let mut keda_trigger = trigger(&key, "k", 0, scaler.address, "k", PushMode::Never);
    keda_trigger.protocol = Some(Protocol::Keda);
    harness.supervisor.apply(object(
        &key,
        spec(&["k"], 0, 10, 1),
        vec![keda_trigger],
        &target,
    ));

    wait_until("three polls", WAIT, || harness.trigger_polls() >= 3).await;
    wait_until("scaled to the KEDA value", WAIT, || target.replicas() == 4).await;
    harness.supervisor.shutdown().await;

    // Each KEDA poll is GetMetrics + IsActive, each one measurement in the scaler; the
    // spec (GetMetricSpec, which does not measure) is fetched once and cached.
    let polls = harness.trigger_polls();
    assert_eq!(values.measures("k"), 2 * polls);
    let status = harness.sink.status(&key).expect("status published");
    assert_eq!(status.triggers[0].last_value, Some(4.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_trigger_does_not_block_a_healthy_one() {
    let values = std::sync::Arc::new(Values::default());
    values.set("healthy", 5.0);
    let scaler = start_scaler(&values, false).await;
    let (hung, _hung_task) = black_hole().await;
    let harness = Harness::new();
    let key = ObjectKey::new("ns", "mixed");
    let target = InMemoryTarget::new(0);
    let mut dead = trigger(&key, "dead", 0, hung, "dead", PushMode::Never);
    dead.timeout = Duration::from_millis(300);
    let healthy = trigger(
        &key,
        "healthy",
        1,
        scaler.address,
        "healthy",
        PushMode::Never,
    );
    harness.supervisor.apply(object(
        &key,
        spec(&["dead", "healthy"], 0, 10, 1),
        vec![dead, healthy],
        &target,
    ));

    wait_until("the healthy trigger scales the target", WAIT, || {
        target.replicas() == 5
    })
    .await;
    wait_until("the dead trigger reported failing", WAIT, || {
        harness.sink.status(&key).is_some_and(|status| {
            status.triggers.iter().any(|trigger| {
                trigger.name == "dead"
                    && trigger.health == TriggerHealth::Failing
                    && trigger
                        .message
                        .as_deref()
                        .is_some_and(|m| m.contains("deadline"))
            })
        })
    })
    .await;
    let status = harness.sink.status(&key).unwrap();
    let ready = status.condition(ConditionType::Ready).unwrap();
    assert_eq!(
        ready.status,
        ConditionStatus::False,
        "a failing trigger makes the object not ready"
    );
    harness.supervisor.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_changes_before_the_first_successful_poll() {
    let values = std::sync::Arc::new(Values::default());
    values.set("q", 2.0);
    let backend = closed_port().await;
    // The proxy forwards to a port nothing listens on until the scaler "comes up".
    let proxy = Proxy::start(backend).await;
    let harness = Harness::new();
    let key = ObjectKey::new("ns", "restart");
    // Above max: the engine alone would clamp at once, without any reading.
    let target = InMemoryTarget::new(150);
    let mut down = trigger(&key, "q", 0, proxy.address, "q", PushMode::Never);
    down.timeout = Duration::from_millis(500);
    harness
        .supervisor
        .apply(object(&key, spec(&["q"], 0, 100, 1), vec![down], &target));

    wait_until("three failed polls", WAIT, || {
        harness.sink.status(&key).is_some_and(|status| {
            status
                .triggers
                .first()
                .is_some_and(|t| t.number_of_failures >= 3)
        })
    })
    .await;
    assert_eq!(
        target.replicas(),
        150,
        "no change while the scaler never answered"
    );
    assert_eq!(target.writes(), 0);

    let scaler = start_scaler(&values, false).await;
    proxy.set_backend(scaler.address);
    wait_until("scaled once the scaler answers", WAIT, || {
        target.replicas() <= 100
    })
    .await;
    assert!(target.writes() >= 1);
    harness.supervisor.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_neighbours_3_mb_error_does_not_fail_a_healthy_trigger_on_the_same_connection() {
    let scaler = HostileScaler::start().await;
    scaler.set_value("healthy", 4.0);
    // Slow enough to be in flight on the shared connection when the neighbour's error comes.
    scaler.set_delay("healthy", Duration::from_millis(200));
    // Far beyond HTTP/2's usual header list limits, in the trailers of every answer.
    scaler.set_error("huge", Some("x".repeat(3 << 20)));
    let harness = Harness::new();
    let key = ObjectKey::new("ns", "neighbours");
    let target = InMemoryTarget::new(0);
    let triggers = vec![
        trigger(
            &key,
            "healthy",
            0,
            scaler.address,
            "healthy",
            PushMode::Never,
        ),
        trigger(&key, "huge", 1, scaler.address, "huge", PushMode::Never),
    ];
    harness.supervisor.apply(object(
        &key,
        spec(&["healthy", "huge"], 0, 10, 1),
        triggers,
        &target,
    ));

    wait_until("the huge error failed four polls", WAIT, || {
        harness
            .sink
            .status(&key)
            .is_some_and(|status| status.triggers[1].number_of_failures >= 4)
    })
    .await;
    assert_eq!(harness.pool.len(), 1, "both triggers share one connection");
    harness.supervisor.shutdown().await;

    assert!(scaler.get_metrics("healthy") >= 4, "polled alongside");
    let failed: Vec<_> = harness
        .sink
        .events(&key)
        .into_iter()
        .filter(|event| event.reason == ebb::runtime::REASON_TRIGGER_FAILING)
        .map(|event| event.message.chars().take(120).collect::<String>())
        .collect();
    assert_eq!(failed.len(), 1, "only the huge trigger failed: {failed:?}");
    assert!(failed[0].starts_with("trigger huge failed"), "{failed:?}");
    let status = harness.sink.status(&key).expect("status published");
    let healthy = &status.triggers[0];
    assert_eq!(healthy.health, TriggerHealth::Happy, "{healthy:?}");
    assert_eq!(healthy.last_value, Some(4.0));
    assert_eq!(
        target.replicas(),
        4,
        "the healthy trigger scaled the target"
    );
    // What is stored of the error is cut to about 1 KiB, not kept whole.
    let stored = status.triggers[1].message.as_deref().unwrap_or_default();
    assert!(
        stored.contains("xxxx"),
        "the scaler's own message: {stored:.80}"
    );
    assert!(
        stored.len() <= 1024 + 64,
        "the stored message is {} bytes",
        stored.len()
    );
}
