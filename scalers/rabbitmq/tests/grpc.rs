//! The scaler served by the SDK over real gRPC on loopback, against the real RabbitMQ: GetInfo,
//! bad metadata, GetMetrics over ebb v1 (with secrets) and KEDA (with `hostFromEnv`), push
//! activity flips, and health per broker.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::*;
use ebb_rabbitmq_scaler::amqp::PoolOptions;
use ebb_rabbitmq_scaler::{RabbitMqScaler, ScalerOptions};
use ebb_scaler_sdk::proto::{keda, v1};
use ebb_scaler_sdk::testing::TestServer;
use ebb_scaler_sdk::tonic_health::pb::HealthCheckRequest;
use ebb_scaler_sdk::tonic_health::pb::health_check_response::ServingStatus;
use futures::StreamExt;
use tonic::Code;

const PUSH_INTERVAL: Duration = Duration::from_millis(100);

fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn request(metadata: &[(&str, &str)], secrets: &[(&str, &str)]) -> v1::TriggerRequest {
    v1::TriggerRequest {
        trigger: Some(v1::TriggerRef {
            namespace: "ns".into(),
            name: "object".into(),
            trigger_name: "rabbit".into(),
            trigger_index: 0,
        }),
        metadata: map(metadata),
        secrets: map(secrets),
    }
}

async fn server(connection_name: &str) -> TestServer {
    let scaler = RabbitMqScaler::new(ScalerOptions {
        push_interval: PUSH_INTERVAL,
        pool: PoolOptions {
            connection_name: connection_name.into(),
            ..PoolOptions::default()
        },
    });
    TestServer::start(scaler).await.unwrap()
}

async fn health(server: &mut TestServer) -> i32 {
    service_health(server, "ebb.scaler.v1.Scaler").await
}

async fn service_health(server: &mut TestServer, service: &str) -> i32 {
    server
        .health
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status
}

#[tokio::test]
async fn get_info_describes_the_scaler_and_every_key() {
    let mut server = server("ebb-test-info").await;
    let info = server
        .v1
        .get_info(v1::GetInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.protocol_version, 1);
    assert_eq!(info.name, "rabbitmq");
    let capabilities = info.capabilities.unwrap();
    assert!(capabilities.push && capabilities.in_flight && capabilities.keda_compatible);
    assert_eq!(info.metadata.len(), 18);
    assert!(
        info.metadata
            .iter()
            .all(|field| !field.description.is_empty())
    );
    let host = info.metadata.iter().find(|f| f.key == "host").unwrap();
    assert!(host.required && host.secret);
}

#[tokio::test]
async fn bad_metadata_is_invalid_argument_naming_the_key_without_secrets() {
    let mut server = server("ebb-test-invalid").await;
    let cases: [(&[(&str, &str)], &str); 4] = [
        (&[("queueName", "q")], "host"),
        (
            &[
                ("host", "amqp://u:hunter2@h"),
                ("queueName", "q"),
                ("mode", "MessageRate"),
            ],
            "mode",
        ),
        (
            &[
                ("host", "amqp://u:hunter2@h"),
                ("queueName", "q"),
                ("pageSize", "many"),
            ],
            "pageSize",
        ),
        (
            &[("host", "gopher://u:hunter2@h"), ("queueName", "q")],
            "host",
        ),
    ];
    for (metadata, key) in cases {
        let status = server
            .v1
            .get_metrics(request(metadata, &[]))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(
            status.message().contains(key),
            "{key}: {}",
            status.message()
        );
        assert!(
            !status.message().contains("hunter2"),
            "{}",
            status.message()
        );
        let spec = server
            .v1
            .get_metric_spec(request(metadata, &[]))
            .await
            .unwrap_err();
        assert_eq!(spec.code(), Code::InvalidArgument);
    }
}

#[tokio::test]
async fn get_metrics_over_v1_with_secrets_and_over_keda_with_host_from_env() {
    require_rabbit();
    let vhost = TestVhost::create(&unique("ebb grpc/vhost"));
    let client = Client::connect(&vhost.name).await;
    client.declare("orders").await;
    client.publish("orders", 45).await;
    let mut server = server(&unique("ebb-test-grpc")).await;

    // ebb v1: credentials arrive as secrets, the host without them.
    let host = format!(
        "amqp://127.0.0.1:5672/{}",
        ebb_rabbitmq_scaler::address::encode_component(&vhost.name)
    );
    let v1_request = request(
        &[
            ("host", &host),
            ("queueName", "orders"),
            ("activationValue", "40"),
        ],
        &[("username", "guest"), ("password", "guest")],
    );
    let spec = server
        .v1
        .get_metric_spec(v1_request.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(spec.metric_specs[0].metric_name, "rabbitmq-orders");
    assert_eq!(spec.metric_specs[0].target, 20.0);
    let metrics = server
        .v1
        .get_metrics(v1_request.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(metrics.metric_values[0].value, 45.0);
    assert_eq!(metrics.metric_values[0].target, 20.0);
    assert!(metrics.active, "45 > activation 40");
    assert!(
        metrics.in_flight.is_none(),
        "AMQP cannot see unacknowledged messages"
    );

    // KEDA: the whole trigger metadata, with hostFromEnv already resolved by KEDA.
    let reference = keda::ScaledObjectRef {
        name: "object".into(),
        namespace: "ns".into(),
        scaler_metadata: map(&[
            ("scalerAddress", "127.0.0.1:9001"),
            ("hostFromEnv", &amqp_url(&vhost.name)),
            ("queueName", "orders"),
            ("value", "10"),
        ]),
    };
    let spec = server
        .keda
        .get_metric_spec(reference.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(spec.metric_specs[0].metric_name, "rabbitmq-orders");
    assert_eq!(spec.metric_specs[0].target_size_float, 10.0);
    let metrics = server
        .keda
        .get_metrics(keda::GetMetricsRequest {
            scaled_object_ref: Some(reference.clone()),
            metric_name: "rabbitmq-orders".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(metrics.metric_values[0].metric_value_float, 45.0);
    assert_eq!(metrics.metric_values[0].metric_value, 45);
    assert!(
        server
            .keda
            .is_active(reference)
            .await
            .unwrap()
            .into_inner()
            .result
    );

    // A missing queue is NOT_FOUND over both protocols.
    let missing = request(
        &[("host", &amqp_url(&vhost.name)), ("queueName", "absent")],
        &[],
    );
    assert_eq!(
        server.v1.get_metrics(missing).await.unwrap_err().code(),
        Code::NotFound
    );
    assert_eq!(health(&mut server).await, ServingStatus::Serving as i32);
}

#[tokio::test]
async fn push_subscriber_sees_activity_flip() {
    require_rabbit();
    let vhost = TestVhost::create(&unique("ebb-grpc-push"));
    let client = Client::connect(&vhost.name).await;
    client.declare("jobs").await;
    let mut server = server(&unique("ebb-test-push")).await;
    let trigger = request(
        &[("host", &amqp_url(&vhost.name)), ("queueName", "jobs")],
        &[],
    );
    // Two subscribers of the same queue share one sampler; each sees every flip.
    let mut first = server
        .v1
        .stream_is_active(trigger.clone())
        .await
        .unwrap()
        .into_inner();
    let mut second = server
        .v1
        .stream_is_active(trigger)
        .await
        .unwrap()
        .into_inner();
    assert!(
        !first.next().await.unwrap().unwrap().active,
        "empty queue starts inactive"
    );
    assert!(!second.next().await.unwrap().unwrap().active);

    let published = Instant::now();
    client.publish("jobs", 1).await;
    let flipped = tokio::time::timeout(Duration::from_secs(10), first.next())
        .await
        .expect("activity flip within the deadline")
        .unwrap()
        .unwrap();
    assert!(flipped.active);
    eprintln!(
        "push flip seen {:?} after publishing (sampling interval {PUSH_INTERVAL:?})",
        published.elapsed()
    );
    let second_flip = tokio::time::timeout(Duration::from_secs(10), second.next())
        .await
        .unwrap();
    assert!(second_flip.unwrap().unwrap().active);

    // Draining the queue flips both back.
    client
        .channel
        .queue_purge("jobs".into(), lapin::options::QueuePurgeOptions::default())
        .await
        .unwrap();
    let back = tokio::time::timeout(Duration::from_secs(10), first.next())
        .await
        .unwrap();
    assert!(!back.unwrap().unwrap().active);
}

#[tokio::test]
async fn one_trigger_on_a_dead_broker_does_not_take_the_scaler_out_of_service() {
    require_rabbit();
    let vhost = TestVhost::create(&unique("ebb-grpc-health"));
    Client::connect(&vhost.name).await.declare("q").await;
    let mut server = server(&unique("ebb-test-health")).await;
    let good = request(&[("host", &amqp_url(&vhost.name)), ("queueName", "q")], &[]);
    let down = request(
        &[
            ("host", "amqp://guest:s3cret@127.0.0.1:1"),
            ("queueName", "q"),
            ("timeout", "2s"),
        ],
        &[],
    );
    server.v1.get_metrics(good.clone()).await.unwrap();
    assert_eq!(health(&mut server).await, ServingStatus::Serving as i32);
    // One tenant's typo: the failure is in that trigger's answer, not in everyone's health.
    let status = server.v1.get_metrics(down).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status.message().contains("guest:***@127.0.0.1:1"),
        "{}",
        status.message()
    );
    assert_eq!(health(&mut server).await, ServingStatus::Serving as i32);
    assert_eq!(
        service_health(&mut server, "broker:amqp://127.0.0.1:1").await,
        ServingStatus::NotServing as i32
    );
    assert_eq!(
        service_health(&mut server, "broker:amqp://127.0.0.1:5672").await,
        ServingStatus::Serving as i32
    );
    server.v1.get_metrics(good).await.unwrap();
    assert_eq!(health(&mut server).await, ServingStatus::Serving as i32);
}
