//! Management API measurement against the real RabbitMQ: counts versus `rabbitmqctl` (read
//! with a deadline-based wait, since management statistics lag), unacknowledged messages as
//! in-flight work, regex over more queues than one page, vhost escaping, and error kinds.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use ebb_rabbitmq_scaler::{RabbitMqConfig, RabbitMqScaler};
use ebb_scaler_sdk::{Measurement, MetadataSchema, Scaler, ScalerError, Trigger, TriggerMetadata};

/// Management statistics refresh every 5 s by default; allow several rounds.
const STATS_LAG: Duration = Duration::from_secs(30);

fn trigger(pairs: &[(&str, &str)]) -> Trigger<RabbitMqConfig> {
    let metadata: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let config = TriggerMetadata::from_v1(&metadata, &HashMap::new())
        .parse(&MetadataSchema::of::<RabbitMqConfig>())
        .unwrap();
    Trigger {
        namespace: "test".into(),
        name: "http".into(),
        trigger_name: "t".into(),
        config,
    }
}

/// Measures until the reading equals `expected` (value, in-flight) or the deadline passes.
async fn wait_for_reading(
    scaler: &RabbitMqScaler,
    trigger: &Trigger<RabbitMqConfig>,
    expected: (f64, Option<u64>),
) -> Measurement {
    wait_for(STATS_LAG, &format!("reading {expected:?}"), || async {
        let measured = scaler.measure(trigger).await.unwrap();
        (measured.values[0].value == expected.0 && measured.in_flight == expected.1)
            .then_some(measured)
    })
    .await
}

#[tokio::test]
async fn counts_and_in_flight_equal_rabbitmqctl_in_a_vhost_with_space_and_slash() {
    require_rabbit();
    let vhost = TestVhost::create(&unique("ebb http/vhost"));
    let client = Client::connect(&vhost.name).await;
    client.declare("work items").await;
    client.publish("work items", 8).await;
    let _holder = client.hold_unacked("work items", 3).await;
    let truth = rabbitmqctl_counts(&vhost.name)["work items"];
    assert_eq!(truth, (5, 3));

    let scaler = RabbitMqScaler::default();
    let host = http_url(&vhost.name);
    let total = trigger(&[("host", &host), ("queueName", "work items")]);
    // Default: ready + unacknowledged, with the unacknowledged reported as in flight.
    wait_for_reading(&scaler, &total, ((truth.0 + truth.1) as f64, Some(truth.1))).await;
    let ready_only = trigger(&[
        ("host", &host),
        ("queueName", "work items"),
        ("excludeUnacknowledged", "true"),
    ]);
    wait_for_reading(&scaler, &ready_only, (truth.0 as f64, Some(truth.1))).await;
    // vhostName overrides the vhost of host (here: none, meaning `/`).
    let by_key = trigger(&[
        ("host", "http://guest:guest@127.0.0.1:15672"),
        ("vhostName", &vhost.name),
        ("queueName", "work items"),
    ]);
    wait_for_reading(
        &scaler,
        &by_key,
        ((truth.0 + truth.1) as f64, Some(truth.1)),
    )
    .await;
}

#[tokio::test]
async fn default_vhost_slash() {
    require_rabbit();
    let queue = unique("ebb http queue");
    let _guard = QueueGuard {
        vhost: "/".into(),
        names: vec![queue.clone()],
    };
    let client = Client::connect("/").await;
    client.declare(&queue).await;
    client.publish(&queue, 6).await;
    let scaler = RabbitMqScaler::default();
    for host in [
        "http://guest:guest@127.0.0.1:15672",
        "http://guest:guest@127.0.0.1:15672/%2F",
    ] {
        wait_for_reading(
            &scaler,
            &trigger(&[("host", host), ("queueName", &queue)]),
            (6.0, Some(0)),
        )
        .await;
    }
}

#[tokio::test]
async fn regex_reads_every_page() {
    require_rabbit();
    let vhost = TestVhost::create(&unique("ebb http regex/pages"));
    let client = Client::connect(&vhost.name).await;
    // 12 matching queues holding 1..=12 messages, 3 that do not match.
    for index in 1..=12 {
        let queue = format!("jobs.{index:02}");
        client.declare(&queue).await;
        client.publish(&queue, index).await;
    }
    for other in ["other.1", "xjobs.1", "jobs"] {
        client.declare(other).await;
        client.publish(other, 100).await;
    }
    let scaler = RabbitMqScaler::default();
    let host = http_url(&vhost.name);
    let regex = |operation: &str| {
        trigger(&[
            ("host", &host),
            ("queueName", r"^jobs\.\d+$"),
            ("useRegex", "true"),
            ("operation", operation),
            ("pageSize", "5"),
        ])
    };
    // Page size 5 over 12 matches: three pages; KEDA would fail here.
    wait_for_reading(&scaler, &regex("sum"), (78.0, Some(0))).await;
    wait_for_reading(&scaler, &regex("max"), (12.0, Some(0))).await;
    wait_for_reading(&scaler, &regex("avg"), (6.5, Some(0))).await;
    let nothing = trigger(&[
        ("host", &host),
        ("queueName", "^nomatch$"),
        ("useRegex", "true"),
    ]);
    let none = scaler.measure(&nothing).await.unwrap().values[0].value;
    assert!(none == 0.0 && none.is_sign_positive(), "{none}");
}

#[tokio::test]
async fn publish_rate_becomes_visible() {
    require_rabbit();
    let vhost = TestVhost::create(&unique("ebb-http-rate"));
    let client = Client::connect(&vhost.name).await;
    client.declare("rated").await;
    let scaler = RabbitMqScaler::default();
    let rate = trigger(&[
        ("host", &http_url(&vhost.name)),
        ("queueName", "rated"),
        ("mode", "MessageRate"),
        ("value", "10"),
    ]);
    // Publish steadily until the management API reports a positive publish rate.
    let seen = wait_for(STATS_LAG, "a positive publish rate", || async {
        client.publish("rated", 20).await;
        let measured = scaler.measure(&rate).await.unwrap();
        (measured.values[0].value > 0.0).then_some(measured)
    })
    .await;
    assert!(seen.values[0].value.is_finite());
    assert!(seen.in_flight.is_some());
}

#[tokio::test]
async fn missing_queue_bad_regex_and_bad_credentials() {
    require_rabbit();
    let vhost = TestVhost::create(&unique("ebb-http-errors"));
    // RabbitMQ compiles a name regex only when the vhost has queues to match.
    Client::connect(&vhost.name).await.declare("present").await;
    let scaler = RabbitMqScaler::default();
    let host = http_url(&vhost.name);
    match scaler
        .measure(&trigger(&[("host", &host), ("queueName", "absent")]))
        .await
    {
        Err(ScalerError::NotFound(message)) => assert!(message.contains("absent"), "{message}"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    let bad_regex = trigger(&[
        ("host", &host),
        ("queueName", "(unclosed"),
        ("useRegex", "true"),
    ]);
    match scaler.measure(&bad_regex).await {
        Err(ScalerError::InvalidMetadata { key, .. }) => assert_eq!(key, "queueName"),
        other => panic!("expected InvalidMetadata, got {other:?}"),
    }
    let wrong = trigger(&[
        ("host", "http://guest:wrong-pass@127.0.0.1:15672"),
        ("queueName", "absent"),
    ]);
    match scaler.measure(&wrong).await {
        Err(ScalerError::Unauthenticated(message)) => {
            assert!(!message.contains("wrong-pass"), "{message}");
        }
        other => panic!("expected Unauthenticated, got {other:?}"),
    }
    let nowhere = trigger(&[
        ("host", "http://guest:s3cret@127.0.0.1:1"),
        ("queueName", "q"),
    ]);
    match scaler.measure(&nowhere).await {
        Err(ScalerError::Unavailable(message)) => assert!(!message.contains("s3cret"), "{message}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
}
