//! The scaler served over gRPC on loopback (both protocols, health, push), against a real
//! Azurite; and the real binary as a process.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use ebb_azure_queue_scaler::connection::DEV_ACCOUNT_KEY;
use ebb_azure_queue_scaler::{AzureQueueScaler, ScalerOptions};
use ebb_scaler_sdk::proto::{keda, v1};
use ebb_scaler_sdk::testing::TestServer;
use ebb_scaler_sdk::tonic_health::pb::HealthCheckRequest;
use ebb_scaler_sdk::tonic_health::pb::health_check_response::ServingStatus;
use tokio_stream::StreamExt;
use tonic::Code;

fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn request(metadata: &[(&str, &str)], secrets: &[(&str, &str)]) -> v1::TriggerRequest {
    v1::TriggerRequest {
        trigger: Some(v1::TriggerRef {
            namespace: "default".into(),
            name: "worker".into(),
            trigger_name: "queue".into(),
            trigger_index: 0,
        }),
        metadata: map(metadata),
        secrets: map(secrets),
    }
}

fn keda_ref(metadata: &[(&str, &str)]) -> keda::ScaledObjectRef {
    keda::ScaledObjectRef {
        name: "worker".into(),
        namespace: "default".into(),
        scaler_metadata: map(metadata),
    }
}

async fn server_with(options: ScalerOptions) -> TestServer {
    TestServer::start(AzureQueueScaler::new(options).unwrap())
        .await
        .unwrap()
}

async fn health(server: &mut TestServer) -> ServingStatus {
    let response = server
        .health
        .check(HealthCheckRequest {
            service: "ebb.scaler.v1.Scaler".into(),
        })
        .await
        .unwrap()
        .into_inner();
    ServingStatus::try_from(response.status).unwrap()
}

#[tokio::test]
async fn get_info_describes_every_key() {
    let mut server = server_with(ScalerOptions::default()).await;
    let info = server
        .v1
        .get_info(v1::GetInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.protocol_version, 1);
    assert_eq!(info.name, "azure-queue");
    let capabilities = info.capabilities.unwrap();
    assert!(capabilities.push && capabilities.in_flight && capabilities.keda_compatible);
    let keys: Vec<&str> = info
        .metadata
        .iter()
        .map(|field| field.key.as_str())
        .collect();
    for key in [
        "queueName",
        "queueLength",
        "activationQueueLength",
        "queueLengthStrategy",
        "connection",
        "accountName",
        "cloud",
        "endpointSuffix",
    ] {
        assert!(keys.contains(&key), "GetInfo lacks {key}: {keys:?}");
    }
    let connection = info
        .metadata
        .iter()
        .find(|f| f.key == "connection")
        .unwrap();
    assert!(connection.secret);
}

#[tokio::test]
async fn metric_spec_and_invalid_metadata() {
    let mut server = server_with(ScalerOptions::default()).await;
    let spec = server
        .v1
        .get_metric_spec(request(
            &[
                ("queueName", "orders"),
                ("queueLength", "7"),
                ("activationQueueLength", "2"),
            ],
            &[("connection", "UseDevelopmentStorage=true")],
        ))
        .await
        .unwrap()
        .into_inner();
    let spec = &spec.metric_specs[0];
    assert_eq!(spec.metric_name, "azure-queue-orders");
    assert_eq!(spec.target, 7.0);
    assert_eq!(spec.activation_target, 2.0);

    let secret_key = "c2VjcmV0LWtleS12YWx1ZQ==";
    for (metadata, secrets, key) in [
        (
            vec![("queueName", "orders"), ("queueLength", "many")],
            vec![("connection", "UseDevelopmentStorage=true")],
            "queueLength",
        ),
        (
            vec![("queueLength", "3")],
            vec![("connection", "UseDevelopmentStorage=true")],
            "queueName",
        ),
        (
            vec![("queueName", "orders"), ("queueLengthStrategy", "some")],
            vec![("connection", "UseDevelopmentStorage=true")],
            "queueLengthStrategy",
        ),
        (vec![("queueName", "orders")], vec![], "connection"),
        (
            vec![("queueName", "orders")],
            vec![("connection", "AccountKey=c2VjcmV0LWtleS12YWx1ZQ==")],
            "connection",
        ),
    ] {
        let status = server
            .v1
            .get_metrics(request(&metadata, &secrets))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(
            status.message().contains(key),
            "{key}: {}",
            status.message()
        );
        assert!(
            !status.message().contains(secret_key),
            "{}",
            status.message()
        );
    }
}

#[tokio::test]
async fn get_metrics_over_both_protocols() {
    require_azurite();
    let queue = unique_queue("grpc");
    let client = create_queue(SHARED_ENDPOINT, &queue).await;
    send(&client, 5).await;
    assert_eq!(receive(&client, 2, 300).await, 2);
    let mut server = server_with(ScalerOptions::default()).await;
    let connection = shared_key_connection(SHARED_ENDPOINT);

    let all = server
        .v1
        .get_metrics(request(
            &[("queueName", &queue)],
            &[("connection", &connection)],
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.metric_values[0].value, 5.0);
    assert_eq!(all.metric_values[0].target, 5.0);
    assert!(all.active);
    assert_eq!(all.in_flight, None);

    let visible = server
        .v1
        .get_metrics(request(
            &[
                ("queueName", &queue),
                ("queueLengthStrategy", "visibleonly"),
                ("activationQueueLength", "3"),
            ],
            &[("connection", &connection)],
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(visible.metric_values[0].value, 3.0);
    assert!(!visible.active, "3 visible is not > activation 3");
    assert_eq!(visible.in_flight.map(|f| f.count), Some(2));

    let metadata = [
        ("queueName", queue.as_str()),
        ("connectionFromEnv", connection.as_str()),
    ];
    let keda_spec = server
        .keda
        .get_metric_spec(keda_ref(&metadata))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(keda_spec.metric_specs[0].target_size_float, 5.0);
    let keda_metrics = server
        .keda
        .get_metrics(keda::GetMetricsRequest {
            scaled_object_ref: Some(keda_ref(&metadata)),
            metric_name: keda_spec.metric_specs[0].metric_name.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(keda_metrics.metric_values[0].metric_value_float, 5.0);
    assert!(
        server
            .keda
            .is_active(keda_ref(&metadata))
            .await
            .unwrap()
            .into_inner()
            .result
    );
}

#[tokio::test]
async fn failures_map_to_status_codes_and_health() {
    let mut azurite = OwnAzurite::start().await;
    let endpoint = azurite.endpoint();
    let queue = unique_queue("health");
    create_queue(&endpoint, &queue).await;
    let mut server = server_with(ScalerOptions::default()).await;
    let connection = shared_key_connection(&endpoint);
    let good = request(&[("queueName", &queue)], &[("connection", &connection)]);
    server.v1.get_metrics(good.clone()).await.unwrap();
    assert_eq!(health(&mut server).await, ServingStatus::Serving);

    let missing = request(
        &[("queueName", "no-such-queue")],
        &[("connection", &connection)],
    );
    let status = server.v1.get_metrics(missing).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");

    let wrong_key = connection.replace(DEV_ACCOUNT_KEY, "d3JvbmdrZXl3cm9uZ2tleQ==");
    let status = server
        .v1
        .get_metrics(request(
            &[("queueName", &queue)],
            &[("connection", &wrong_key)],
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(
            status.code(),
            Code::Unauthenticated | Code::PermissionDenied
        ),
        "{status:?}"
    );
    assert!(
        !status.message().contains("d3JvbmdrZXl3"),
        "{}",
        status.message()
    );

    azurite.stop();
    let status = server.v1.get_metrics(good.clone()).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(health(&mut server).await, ServingStatus::NotServing);

    azurite.resume().await;
    create_queue(&endpoint, &queue).await;
    let mut recovered = false;
    for _ in 0..100 {
        if server.v1.get_metrics(good.clone()).await.is_ok() {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "GetMetrics recovers after Azurite restarts");
    assert_eq!(health(&mut server).await, ServingStatus::Serving);
}

#[tokio::test]
async fn stream_is_active_pushes_changes() {
    require_azurite();
    let queue = unique_queue("push");
    let client = create_queue(SHARED_ENDPOINT, &queue).await;
    let mut server = server_with(ScalerOptions {
        push_interval: Duration::from_millis(100),
        ..ScalerOptions::default()
    })
    .await;
    let connection = shared_key_connection(SHARED_ENDPOINT);
    let mut stream = server
        .v1
        .stream_is_active(request(
            &[("queueName", &queue)],
            &[("connection", &connection)],
        ))
        .await
        .unwrap()
        .into_inner();
    let mut next = async || {
        tokio::time::timeout(Duration::from_secs(30), stream.next())
            .await
            .expect("a push within the deadline")
            .expect("the stream stays open")
            .expect("no error")
            .active
    };
    assert!(!next().await, "first message: the current state (empty)");
    send(&client, 1).await;
    assert!(next().await, "a message makes it active");
    client.clear(None).await.unwrap();
    assert!(!next().await, "clearing makes it inactive");
}

#[tokio::test]
async fn the_binary_serves_both_protocols() {
    require_azurite();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_ebb-azure-queue-scaler"))
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--push-interval",
            "200ms",
        ])
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let uri = format!("http://127.0.0.1:{port}");
    let mut channel = None;
    for _ in 0..100 {
        if let Ok(connected) = tonic::transport::Channel::from_shared(uri.clone())
            .unwrap()
            .connect()
            .await
        {
            channel = Some(connected);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let channel = channel.expect("the binary listens");
    let mut v1_client = v1::scaler_client::ScalerClient::new(channel.clone());
    let info = v1_client
        .get_info(v1::GetInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.name, "azure-queue");

    let queue = unique_queue("binary");
    let client = create_queue(SHARED_ENDPOINT, &queue).await;
    send(&client, 3).await;
    let metrics = v1_client
        .get_metrics(request(
            &[("queueName", &queue)],
            &[("connection", "UseDevelopmentStorage=true")],
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(metrics.metric_values[0].value, 3.0);
    let mut keda_client = keda::external_scaler_client::ExternalScalerClient::new(channel);
    let active = keda_client
        .is_active(keda_ref(&[
            ("queueName", &queue),
            ("connectionFromEnv", "UseDevelopmentStorage=true"),
        ]))
        .await
        .unwrap()
        .into_inner();
    assert!(active.result);
    child.start_kill().unwrap();
    let _ = child.wait().await;
}
