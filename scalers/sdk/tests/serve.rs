//! Both protocols served by the SDK, called over real loopback gRPC.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{QueueScaler, Source};
use ebb_scaler_sdk::proto::{keda, v1};
use ebb_scaler_sdk::testing::TestServer;
use ebb_scaler_sdk::tonic_health::pb::HealthCheckRequest;
use ebb_scaler_sdk::tonic_health::pb::health_check_response::ServingStatus;
use tonic::Code;

fn metadata(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn request(pairs: &[(&str, &str)]) -> v1::TriggerRequest {
    v1::TriggerRequest {
        trigger: Some(v1::TriggerRef {
            namespace: "shop".into(),
            name: "orders".into(),
            trigger_name: "queue".into(),
            trigger_index: 0,
        }),
        metadata: metadata(pairs),
        secrets: HashMap::new(),
    }
}

fn keda_ref(pairs: &[(&str, &str)]) -> keda::ScaledObjectRef {
    keda::ScaledObjectRef {
        name: "orders".into(),
        namespace: "shop".into(),
        scaler_metadata: metadata(pairs),
    }
}

async fn server(source: &Arc<Source>, push: Option<Duration>) -> TestServer {
    TestServer::start(QueueScaler {
        source: source.clone(),
        push,
    })
    .await
    .expect("start test server")
}

#[tokio::test]
async fn get_info_reports_the_schema_derived_from_the_config_type() {
    let source = Arc::new(Source::default());
    let mut server = server(&source, Some(Duration::from_millis(20))).await;
    let info = server
        .v1
        .get_info(v1::GetInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.protocol_version, 1);
    assert_eq!(info.name, "fake-queue");
    assert_eq!(info.version, "1.2.3");
    let capabilities = info.capabilities.unwrap();
    assert!(capabilities.push && capabilities.in_flight && capabilities.keda_compatible);
    let field = |key: &str| {
        info.metadata
            .iter()
            .find(|f| f.key == key)
            .unwrap_or_else(|| panic!("no {key}"))
            .clone()
    };
    let queue = field("queueName");
    assert!(queue.required);
    assert_eq!(queue.description, "Name of the queue to measure.");
    assert_eq!(queue.kind(), v1::ValueKind::String);
    let value = field("value");
    assert!(!value.required);
    assert_eq!(value.default_value, "20.0");
    assert_eq!(value.kind(), v1::ValueKind::Number);
    let password = field("password");
    assert!(password.secret && !password.required);
    let mode = field("mode");
    assert_eq!(mode.kind(), v1::ValueKind::Enum);
    assert_eq!(mode.allowed_values, vec!["QueueLength", "MessageRate"]);
    assert_eq!(mode.default_value, "QueueLength");
    assert_eq!(field("pageSize").kind(), v1::ValueKind::Integer);
    assert_eq!(field("includeUnacked").kind(), v1::ValueKind::Boolean);
}

#[tokio::test]
async fn one_get_metrics_answers_values_targets_activity_and_in_flight() {
    let source = Arc::new(Source::default());
    source.set("orders", 68.0, 3);
    let mut server = server(&source, None).await;
    let reply = server
        .v1
        .get_metrics(request(&[
            ("queueName", "orders"),
            ("value", "10"),
            ("activationValue", "5"),
        ]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.metric_values.len(), 1);
    let value = &reply.metric_values[0];
    assert_eq!(value.metric_name, "queue-orders");
    assert_eq!(value.value, 68.0);
    assert_eq!(value.target, 10.0);
    assert_eq!(value.activation_target, 5.0);
    assert!(reply.active);
    assert_eq!(reply.in_flight.map(|f| f.count), Some(3));
    assert_eq!(
        source.measurements.load(Ordering::SeqCst),
        1,
        "one RPC, one measurement"
    );

    source.set("orders", 5.0, 0);
    let reply = server
        .v1
        .get_metrics(request(&[
            ("queueName", "orders"),
            ("activationValue", "5"),
        ]))
        .await
        .unwrap()
        .into_inner();
    assert!(!reply.active, "activation is strictly greater than");
}

#[tokio::test]
async fn metadata_errors_are_invalid_argument_naming_the_key() {
    let source = Arc::new(Source::default());
    let mut server = server(&source, None).await;
    let missing = server.v1.get_metric_spec(request(&[])).await.unwrap_err();
    assert_eq!(missing.code(), Code::InvalidArgument);
    assert!(
        missing.message().contains("queueName"),
        "{}",
        missing.message()
    );

    let bad_number = server
        .v1
        .get_metrics(request(&[("queueName", "q"), ("value", "many")]))
        .await
        .unwrap_err();
    assert_eq!(bad_number.code(), Code::InvalidArgument);
    assert!(bad_number.message().contains("`value`") && bad_number.message().contains("many"));

    let bad_enum = server
        .v1
        .get_metrics(request(&[("queueName", "q"), ("mode", "Sideways")]))
        .await
        .unwrap_err();
    assert_eq!(bad_enum.code(), Code::InvalidArgument);
    assert!(bad_enum.message().contains("mode") && bad_enum.message().contains("QueueLength"));

    let validated = server
        .v1
        .get_metrics(request(&[("queueName", "q"), ("value", "0")]))
        .await
        .unwrap_err();
    assert_eq!(validated.code(), Code::InvalidArgument);
    assert!(validated.message().contains("value"));
    assert_eq!(
        source.measurements.load(Ordering::SeqCst),
        0,
        "bad metadata never reaches the source"
    );
}

#[tokio::test]
async fn secrets_win_over_metadata_and_never_appear_in_errors() {
    let source = Arc::new(Source::default());
    source.set("q", 1.0, 0);
    let mut server = server(&source, None).await;
    let mut with_secret = request(&[("queueName", "q"), ("password", "wrong")]);
    with_secret
        .secrets
        .insert("password".into(), "s3cr3t-pw".into());
    // The secret map wins, so the plain "wrong" is ignored and the call succeeds.
    server.v1.get_metrics(with_secret).await.unwrap();

    let mut bad = request(&[("queueName", "q"), ("pageSize", "x")]);
    bad.secrets.insert("pageSize".into(), "hunter2".into());
    let error = server.v1.get_metrics(bad).await.unwrap_err();
    assert_eq!(error.code(), Code::InvalidArgument);
    assert!(error.message().contains("pageSize"), "{}", error.message());
    assert!(
        !error.message().contains("hunter2"),
        "a value from the secret map leaked: {}",
        error.message()
    );
}

#[tokio::test]
async fn source_errors_map_to_their_codes() {
    let source = Arc::new(Source::default());
    let mut server = server(&source, None).await;
    let missing = server
        .v1
        .get_metrics(request(&[("queueName", "nope")]))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    let mut wrong = request(&[("queueName", "nope")]);
    wrong.secrets.insert("password".into(), "wrong".into());
    let refused = server.v1.get_metrics(wrong).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    assert!(!refused.message().contains("wrong"));
}

#[tokio::test]
async fn keda_protocol_reads_the_same_source() {
    let source = Arc::new(Source::default());
    source.set("orders", 42.5, 0);
    let mut server = server(&source, None).await;
    let pairs = [
        ("scalerAddress", "127.0.0.1:9"),
        ("queueName", "orders"),
        ("value", "2.5"),
    ];
    let spec = server
        .keda
        .get_metric_spec(keda_ref(&pairs))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(spec.metric_specs.len(), 1);
    assert_eq!(spec.metric_specs[0].metric_name, "queue-orders");
    assert_eq!(spec.metric_specs[0].target_size_float, 2.5);
    assert_eq!(
        spec.metric_specs[0].target_size, 3,
        "legacy integer rounds up"
    );
    let metrics = server
        .keda
        .get_metrics(keda::GetMetricsRequest {
            scaled_object_ref: Some(keda_ref(&pairs)),
            metric_name: "queue-orders".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(metrics.metric_values[0].metric_value_float, 42.5);
    assert_eq!(metrics.metric_values[0].metric_value, 43);
    let active = server
        .keda
        .is_active(keda_ref(&pairs))
        .await
        .unwrap()
        .into_inner();
    assert!(active.result);
}

#[tokio::test]
async fn keda_from_env_keys_stand_for_the_plain_key() {
    let source = Arc::new(Source::default());
    source.set("from-env", 7.0, 0);
    let mut server = server(&source, None).await;
    // KEDA resolves `queueNameFromEnv` to the env var's value and keeps the key's name.
    let reply = server
        .keda
        .is_active(keda_ref(&[("queueNameFromEnv", "from-env")]))
        .await
        .unwrap()
        .into_inner();
    assert!(reply.result);
    // The plain key wins when both are given.
    source.set("plain", 0.0, 0);
    let reply = server
        .keda
        .is_active(keda_ref(&[
            ("queueNameFromEnv", "from-env"),
            ("queueName", "plain"),
        ]))
        .await
        .unwrap()
        .into_inner();
    assert!(!reply.result);
}

async fn health(server: &mut TestServer, service: &str) -> ServingStatus {
    let reply = server
        .health
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .unwrap()
        .into_inner();
    reply.status()
}

/// Polls queue `q` with the source up or down; the answer's code.
async fn poll_with_source(server: &mut TestServer, source: &Source, down: bool) -> Code {
    source.down.store(down, Ordering::SeqCst);
    match server.v1.get_metrics(request(&[("queueName", "q")])).await {
        Ok(_) => Code::Ok,
        Err(status) => status.code(),
    }
}

#[tokio::test]
async fn health_follows_the_source() {
    let source = Arc::new(Source::default());
    source.set("q", 1.0, 0);
    let mut server = server(&source, None).await;
    assert_eq!(health(&mut server, "").await, ServingStatus::Serving);
    // A source that never answered is unknown, not down: it must not flip health.
    let code = poll_with_source(&mut server, &source, true).await;
    assert_eq!(code, Code::Unavailable);
    assert_eq!(health(&mut server, "").await, ServingStatus::Serving);
    assert_eq!(
        poll_with_source(&mut server, &source, false).await,
        Code::Ok
    );
    // Once it has answered, its outage is the scaler's.
    let code = poll_with_source(&mut server, &source, true).await;
    assert_eq!(code, Code::Unavailable);
    for service in ["", "ebb.scaler.v1.Scaler", "externalscaler.ExternalScaler"] {
        assert_eq!(
            health(&mut server, service).await,
            ServingStatus::NotServing,
            "{service}"
        );
    }
    assert_eq!(
        poll_with_source(&mut server, &source, false).await,
        Code::Ok
    );
    assert_eq!(health(&mut server, "").await, ServingStatus::Serving);
}

#[tokio::test]
async fn the_callers_deadline_gives_deadline_exceeded() {
    let source = Arc::new(Source::default());
    source.set("q", 1.0, 0);
    source.delay_ms.store(5_000, Ordering::SeqCst);
    let mut server = server(&source, None).await;
    let mut call = tonic::Request::new(request(&[("queueName", "q")]));
    // The server answers 50 ms before the caller's own timer fires (5% of 1 s); a shorter
    // timeout leaves a margin a loaded machine can miss, and the caller then sees CANCELLED.
    call.set_timeout(Duration::from_secs(1));
    let error = server.v1.get_metrics(call).await.unwrap_err();
    assert_eq!(error.code(), Code::DeadlineExceeded, "{error:?}");
}

#[tokio::test]
async fn stream_is_active_sends_the_state_at_once_then_changes() {
    let source = Arc::new(Source::default());
    source.set("q", 0.0, 0);
    let mut server = server(&source, Some(Duration::from_millis(10))).await;
    let mut stream = server
        .v1
        .stream_is_active(request(&[("queueName", "q")]))
        .await
        .unwrap()
        .into_inner();
    let first = stream.message().await.unwrap().unwrap();
    assert!(!first.active, "initial state is inactive");
    source.set("q", 3.0, 0);
    let second = tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(second.active);
    source.set("q", 0.0, 0);
    let third = tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(!third.active);
}

#[tokio::test]
async fn subscribers_of_one_source_share_one_sampler() {
    let source = Arc::new(Source::default());
    source.set("shared", 1.0, 0);
    let interval = Duration::from_millis(50);
    let mut server = server(&source, Some(interval)).await;
    let mut streams = Vec::new();
    for index in 0..20 {
        // Different activation thresholds: each subscriber derives its own activity.
        let threshold = if index % 2 == 0 { "0" } else { "5" };
        let mut stream = server
            .v1
            .stream_is_active(request(&[
                ("queueName", "shared"),
                ("activationValue", threshold),
            ]))
            .await
            .unwrap()
            .into_inner();
        let first = stream.message().await.unwrap().unwrap();
        assert_eq!(first.active, index % 2 == 0, "subscriber {index}");
        streams.push(stream);
    }
    // Subscribers with threshold 5 have triggers of their own: if any of them had its own
    // sampler, measurements made with threshold 5 would show up. Watch the next ten.
    source.measured_with.lock().unwrap().clear();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let seen = loop {
        let seen = source.measured_with.lock().unwrap().clone();
        if seen.len() >= 10 {
            break seen;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "only {} samples in 20 s",
            seen.len()
        );
        tokio::time::sleep(interval).await;
    };
    assert!(
        seen.iter().all(|threshold| *threshold == 0.0),
        "one sampler, with the first subscriber's trigger, serves all 20: {seen:?}"
    );
    let keda_stream = server
        .keda
        .stream_is_active(keda_ref(&[("queueName", "shared")]))
        .await
        .unwrap();
    let first = keda_stream.into_inner().message().await.unwrap().unwrap();
    assert!(first.result);
}

#[tokio::test]
async fn stream_is_active_is_unimplemented_without_push() {
    let source = Arc::new(Source::default());
    let mut server = server(&source, None).await;
    let error = server
        .v1
        .stream_is_active(request(&[("queueName", "q")]))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::Unimplemented);
}

#[tokio::test]
async fn stream_ends_with_the_error_when_the_first_sample_fails() {
    let source = Arc::new(Source::default());
    let mut server = server(&source, Some(Duration::from_millis(10))).await;
    let mut stream = server
        .v1
        .stream_is_active(request(&[("queueName", "missing")]))
        .await
        .unwrap()
        .into_inner();
    let error = stream.message().await.unwrap_err();
    assert_eq!(error.code(), Code::NotFound);
}

#[tokio::test]
async fn reflection_lists_both_protocols() {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let source = Arc::new(Source::default());
    let server = server(&source, None).await;
    let channel = tonic::transport::Channel::from_shared(server.uri())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut replies = client
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    let reply = replies.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = reply.message_response else {
        panic!("unexpected reflection reply");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in [
        "ebb.scaler.v1.Scaler",
        "externalscaler.ExternalScaler",
        "grpc.health.v1.Health",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }
}

#[tokio::test]
async fn metrics_count_requests_by_method_and_code() {
    let source = Arc::new(Source::default());
    source.set("q", 1.0, 0);
    let metrics = ebb_scaler_sdk::ServerMetrics::new();
    let options = ebb_scaler_sdk::ServeOptions {
        metrics: Some(metrics.clone()),
        ..Default::default()
    };
    let mut server = TestServer::start_with(
        QueueScaler {
            source: source.clone(),
            push: None,
        },
        options,
    )
    .await
    .unwrap();
    server
        .v1
        .get_metrics(request(&[("queueName", "q")]))
        .await
        .unwrap();
    let _ = server.v1.get_metrics(request(&[])).await.unwrap_err();
    let text = metrics.encode();
    assert!(
        text.contains(
            r#"ebb_scaler_requests_total{protocol="v1",method="GetMetrics",code="Ok"} 1"#
        ),
        "{text}"
    );
    assert!(text.contains(r#"ebb_scaler_requests_total{protocol="v1",method="GetMetrics",code="InvalidArgument"} 1"#), "{text}");
    assert!(
        text.contains("ebb_scaler_measurement_duration_seconds_count 1"),
        "{text}"
    );
}
