//! Many objects through one pool: connections shared, not per object; supervisor updates and
//! removal.

mod runtime_support;

use std::sync::Arc;
use std::time::Duration;

use ebb::runtime::{InMemoryTarget, ObjectKey, PushMode};
use runtime_support::*;

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_objects_share_one_connection() {
    const OBJECTS: usize = 1000;
    let values = Arc::new(Values::default());
    values.set("shared", 2.0);
    let scaler = start_scaler(&values, false).await;
    let proxy = Proxy::start(scaler.address).await;
    let harness = Harness::new();
    let mut targets = Vec::with_capacity(OBJECTS);
    for index in 0..OBJECTS {
        let key = ObjectKey::new("bulk", format!("object-{index}"));
        let target = InMemoryTarget::new(0);
        let triggers = vec![trigger(
            &key,
            "q",
            0,
            proxy.address,
            "shared",
            PushMode::Never,
        )];
        harness
            .supervisor
            .apply(object(&key, spec(&["q"], 0, 10, 1), triggers, &target));
        targets.push(target);
    }
    assert_eq!(harness.supervisor.len(), OBJECTS);

    wait_until("every object polled twice", WAIT, || {
        harness.trigger_polls() >= 2 * OBJECTS as u64
    })
    .await;
    wait_until("every target scaled to 2", WAIT, || {
        targets.iter().all(|target| target.replicas() == 2)
    })
    .await;
    assert!(
        proxy.accepted() <= 2,
        "the scaler saw {} connections for {OBJECTS} objects",
        proxy.accepted()
    );
    assert_eq!(
        harness.pool.len(),
        1,
        "one pooled connection for one address"
    );
    harness.supervisor.shutdown().await;
    assert_eq!(values.measures("shared"), harness.trigger_polls());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_reach_the_running_loop_and_removal_forgets_the_object() {
    let values = Arc::new(Values::default());
    values.set("u", 8.0);
    let scaler = start_scaler(&values, false).await;
    let harness = Harness::new();
    let key = ObjectKey::new("ns", "updated");
    let target = InMemoryTarget::new(0);
    let triggers = || vec![trigger(&key, "u", 0, scaler.address, "u", PushMode::Never)];
    harness
        .supervisor
        .apply(object(&key, spec(&["u"], 0, 10, 1), triggers(), &target));
    wait_until("scaled to 8", WAIT, || target.replicas() == 8).await;

    let mut lowered = object(&key, spec(&["u"], 0, 5, 1), triggers(), &target);
    lowered.generation = 2;
    harness.supervisor.apply(lowered);
    wait_until("the new maxReplicaCount applies", WAIT, || {
        target.replicas() == 5
    })
    .await;
    wait_until("status shows the new generation", WAIT, || {
        harness
            .sink
            .status(&key)
            .is_some_and(|status| status.observed_generation == Some(2))
    })
    .await;
    assert_eq!(
        harness.supervisor.len(),
        1,
        "updated in place, not a second loop"
    );

    assert!(harness.supervisor.remove(&key));
    wait_until("the sink forgets the removed object", WAIT, || {
        harness.sink.status(&key).is_none()
    })
    .await;
    wait_until("the loop stopped", WAIT, || {
        harness.metrics.scaled_objects.get() == 0
    })
    .await;
    let writes = target.writes();
    values.set("u", 1.0);
    let polls = harness.trigger_polls();
    // Wait for a poll of another object to be sure time passed; this one must not poll.
    let other = ObjectKey::new("ns", "other");
    let other_target = InMemoryTarget::new(0);
    harness.supervisor.apply(object(
        &other,
        spec(&["u"], 0, 10, 1),
        vec![trigger(
            &other,
            "u",
            0,
            scaler.address,
            "u",
            PushMode::Never,
        )],
        &other_target,
    ));
    wait_until("the other object polled twice", WAIT, || {
        harness.trigger_polls() >= polls + 2
    })
    .await;
    assert_eq!(
        target.writes(),
        writes,
        "a removed object's target is never written again"
    );
    harness.supervisor.shutdown().await;
}
