//! AMQP measurement against the real RabbitMQ: counts versus `rabbitmqctl`, vhost escaping,
//! a missing queue that harms no other trigger, 500 triggers on one connection, and the
//! error kinds for bad credentials, unknown vhosts and unreachable brokers.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use ebb_rabbitmq_scaler::amqp::PoolOptions;
use ebb_rabbitmq_scaler::{RabbitMqConfig, RabbitMqScaler, ScalerOptions};
use ebb_scaler_sdk::{MetadataSchema, Scaler, ScalerError, Trigger, TriggerMetadata};

fn trigger(name: &str, pairs: &[(&str, &str)]) -> Trigger<RabbitMqConfig> {
    let metadata: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let config = TriggerMetadata::from_v1(&metadata, &HashMap::new())
        .parse(&MetadataSchema::of::<RabbitMqConfig>())
        .unwrap();
    Trigger {
        namespace: "test".into(),
        name: name.into(),
        trigger_name: name.into(),
        config,
    }
}

fn scaler(connection_name: &str) -> RabbitMqScaler {
    RabbitMqScaler::new(ScalerOptions {
        pool: PoolOptions {
            connection_name: connection_name.into(),
            ..PoolOptions::default()
        },
        ..ScalerOptions::default()
    })
}

async fn value(
    scaler: &RabbitMqScaler,
    trigger: &Trigger<RabbitMqConfig>,
) -> Result<f64, ScalerError> {
    scaler.measure(trigger).await.map(|m| m.values[0].value)
}

#[tokio::test]
async fn counts_equal_rabbitmqctl_ready_counts_in_a_vhost_with_space_and_slash() {
    require_rabbit();
    let vhost = TestVhost::create(&unique("ebb amqp/vhost"));
    let client = Client::connect(&vhost.name).await;
    client.declare("plain").await;
    client.declare("with unacked").await;
    client.publish("plain", 5).await;
    client.publish("with unacked", 8).await;
    let _holder = client.hold_unacked("with unacked", 3).await;

    let truth = rabbitmqctl_counts(&vhost.name);
    assert_eq!(truth["plain"], (5, 0));
    assert_eq!(truth["with unacked"], (5, 3));

    let scaler = scaler(&unique("ebb-test-counts"));
    let host = amqp_url(&vhost.name);
    for queue in ["plain", "with unacked"] {
        let measured = scaler
            .measure(&trigger(queue, &[("host", &host), ("queueName", queue)]))
            .await
            .unwrap();
        // AMQP sees ready messages only; unacknowledged ones are invisible to it.
        assert_eq!(
            measured.values[0].value, truth[queue].0 as f64,
            "queue {queue}"
        );
        assert_eq!(measured.in_flight, None);
    }
    // vhostName overrides the vhost in host, and takes the raw (unescaped) name.
    let via_key = trigger(
        "override",
        &[
            ("host", &amqp_url("/")),
            ("vhostName", &vhost.name),
            ("queueName", "plain"),
        ],
    );
    assert_eq!(value(&scaler, &via_key).await.unwrap(), 5.0);
    assert_eq!(scaler.amqp_pool().open_connections(), 1);
}

#[tokio::test]
async fn default_vhost_slash_in_every_spelling() {
    require_rabbit();
    let queue = unique("ebb-amqp-default-vhost");
    let _guard = QueueGuard {
        vhost: "/".into(),
        names: vec![queue.clone()],
    };
    let client = Client::connect("/").await;
    client.declare(&queue).await;
    client.publish(&queue, 4).await;
    let scaler = scaler(&unique("ebb-test-slash"));
    for host in [
        "amqp://guest:guest@127.0.0.1:5672",
        "amqp://guest:guest@127.0.0.1:5672/",
        "amqp://guest:guest@127.0.0.1:5672/%2f",
        "amqp://guest:guest@127.0.0.1/%2F",
    ] {
        let measured = value(
            &scaler,
            &trigger("slash", &[("host", host), ("queueName", &queue)]),
        )
        .await;
        assert_eq!(measured.unwrap(), 4.0, "host {host}");
    }
    // Every spelling names the same broker and vhost, so they share one connection.
    assert_eq!(scaler.amqp_pool().open_connections(), 1);
}

#[tokio::test]
async fn missing_queue_is_not_found_for_that_trigger_only() {
    require_rabbit();
    let vhost = TestVhost::create(&unique("ebb-amqp-missing"));
    let client = Client::connect(&vhost.name).await;
    for queue in ["a", "b"] {
        client.declare(queue).await;
    }
    client.publish("a", 2).await;
    client.publish("b", 3).await;
    let connection_name = unique("ebb-test-missing");
    let scaler = Arc::new(scaler(&connection_name));
    let host = amqp_url(&vhost.name);

    // Missing and present queues measured concurrently, many times over, on one connection.
    let mut tasks = Vec::new();
    for round in 0..20 {
        for queue in ["a", "missing", "b"] {
            let scaler = scaler.clone();
            let trigger = trigger(
                &format!("{queue}-{round}"),
                &[("host", &host), ("queueName", queue)],
            );
            tasks.push(tokio::spawn(async move {
                (queue, value(&scaler, &trigger).await)
            }));
        }
    }
    for task in tasks {
        match task.await.unwrap() {
            ("a", result) => assert_eq!(result.unwrap(), 2.0),
            ("b", result) => assert_eq!(result.unwrap(), 3.0),
            (_, result) => match result {
                Err(ScalerError::NotFound(message)) => {
                    assert!(message.contains("missing"), "{message}");
                    assert!(!message.contains("guest:guest"), "{message}");
                }
                other => panic!("expected NotFound, got {other:?}"),
            },
        }
    }
    assert_eq!(scaler.amqp_pool().open_connections(), 1);
    let on_broker = wait_for(
        Duration::from_secs(15),
        "the scaler's connection in the list",
        || async {
            let found = connections_named(&connection_name);
            (!found.is_empty()).then_some(found.len())
        },
    )
    .await;
    assert_eq!(on_broker, 1);
}

#[tokio::test]
async fn five_hundred_triggers_across_fifty_queues_share_one_connection() {
    require_rabbit();
    let vhost = TestVhost::create(&unique("ebb-amqp-500"));
    let client = Client::connect(&vhost.name).await;
    for index in 0..50 {
        let queue = format!("q{index:02}");
        client.declare(&queue).await;
        client.publish(&queue, index % 7).await;
    }
    let connection_name = unique("ebb-test-500");
    let scaler = Arc::new(scaler(&connection_name));
    let host = amqp_url(&vhost.name);
    let mut tasks = Vec::new();
    for index in 0..500 {
        let queue = format!("q{:02}", index % 50);
        let expected = ((index % 50) % 7) as f64;
        let trigger = trigger(
            &format!("t{index}"),
            &[
                ("host", &host),
                ("queueName", &queue),
                ("activationValue", &(index % 3).to_string()),
            ],
        );
        let scaler = scaler.clone();
        tasks.push(tokio::spawn(async move {
            (expected, value(&scaler, &trigger).await)
        }));
    }
    for task in tasks {
        let (expected, measured) = task.await.unwrap();
        assert_eq!(measured.unwrap(), expected);
    }
    assert_eq!(scaler.amqp_pool().open_connections(), 1);
    // The broker's own view, through the management API's connection list.
    let listed = wait_for(
        Duration::from_secs(15),
        "the scaler's connection in the list",
        || async {
            let found = connections_named(&connection_name);
            (!found.is_empty()).then_some(found)
        },
    )
    .await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["vhost"].as_str(), Some(vhost.name.as_str()));
}

#[tokio::test]
async fn credentials_vhosts_and_unreachable_brokers_map_to_their_codes() {
    require_rabbit();
    let scaler = scaler(&unique("ebb-test-errors"));
    let wrong_password = trigger(
        "auth",
        &[
            ("host", "amqp://guest:not-the-password@127.0.0.1:5672"),
            ("queueName", "q"),
        ],
    );
    match scaler.measure(&wrong_password).await {
        Err(ScalerError::Unauthenticated(message)) => {
            assert!(!message.contains("not-the-password"), "{message}");
            assert!(message.contains("guest:***@127.0.0.1"), "{message}");
        }
        other => panic!("expected Unauthenticated, got {other:?}"),
    }
    let no_vhost = trigger(
        "vhost",
        &[
            ("host", &amqp_url(&unique("ebb-no-such-vhost"))),
            ("queueName", "q"),
        ],
    );
    let error = scaler.measure(&no_vhost).await.unwrap_err();
    assert!(
        matches!(
            error,
            ScalerError::NotFound(_) | ScalerError::PermissionDenied(_)
        ),
        "{error:?}"
    );
    let nowhere = trigger(
        "nowhere",
        &[
            ("host", "amqp://guest:s3cret@127.0.0.1:1"),
            ("queueName", "q"),
            ("timeout", "2s"),
        ],
    );
    match scaler.measure(&nowhere).await {
        Err(ScalerError::Unavailable(message)) => assert!(!message.contains("s3cret"), "{message}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    // Within the backoff window the failure is answered at once, without a new attempt.
    let again = scaler.measure(&nowhere).await.unwrap_err();
    assert!(matches!(again, ScalerError::Unavailable(_)), "{again:?}");
}
