//! The example scaler served in-process by the SDK, called over both protocols.

use std::collections::HashMap;

use ebb_example_scaler::ExampleScaler;
use ebb_scaler_sdk::proto::{keda, v1};
use ebb_scaler_sdk::testing::TestServer;
use tonic::Code;

fn request(metadata: &[(&str, &str)]) -> v1::TriggerRequest {
    v1::TriggerRequest {
        trigger: Some(v1::TriggerRef {
            namespace: "ns".into(),
            name: "orders".into(),
            trigger_name: "backlog".into(),
            trigger_index: 0,
        }),
        metadata: metadata
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        secrets: HashMap::new(),
    }
}

#[tokio::test]
async fn constant_value_reads_with_targets_and_activity() {
    let mut server = TestServer::start(ExampleScaler::default())
        .await
        .expect("serve");
    let answer = server
        .v1
        .get_metrics(request(&[
            ("value", "3"),
            ("target", "2"),
            ("activationTarget", "5"),
        ]))
        .await
        .expect("metrics")
        .into_inner();
    assert_eq!(answer.metric_values.len(), 1);
    let value = &answer.metric_values[0];
    assert_eq!(
        (value.metric_name.as_str(), value.value, value.target),
        ("example-value", 3.0, 2.0)
    );
    assert_eq!(value.activation_target, 5.0);
    assert!(!answer.active, "3 is not above the activation target 5");
}

#[tokio::test]
async fn value_file_is_reread_and_a_missing_one_is_not_found() {
    let mut server = TestServer::start(ExampleScaler::default())
        .await
        .expect("serve");
    let directory = tempfile::tempdir().expect("tempdir");
    let path = directory.path().join("depth");
    let key = path.display().to_string();

    let status = server
        .v1
        .get_metrics(request(&[("valueFile", &key)]))
        .await
        .expect_err("no file yet");
    assert_eq!(status.code(), Code::NotFound);

    for written in ["4", "9.5"] {
        std::fs::write(&path, written).expect("write");
        let answer = server
            .v1
            .get_metrics(request(&[("valueFile", &key)]))
            .await
            .expect("metrics")
            .into_inner();
        assert_eq!(
            answer.metric_values[0].value,
            written.parse::<f64>().unwrap()
        );
        assert_eq!(answer.metric_values[0].metric_name, "example-depth");
    }
}

#[tokio::test]
async fn in_flight_file_is_reported_and_missing_counts_as_zero() {
    let mut server = TestServer::start(ExampleScaler::default())
        .await
        .expect("serve");
    let directory = tempfile::tempdir().expect("tempdir");
    let path = directory.path().join("unacked");
    let key = path.display().to_string();
    let metadata = [("value", "0"), ("inFlightFile", key.as_str())];

    let answer = server
        .v1
        .get_metrics(request(&metadata))
        .await
        .expect("metrics")
        .into_inner();
    assert_eq!(answer.in_flight.map(|in_flight| in_flight.count), Some(0));
    std::fs::write(&path, "6\n").expect("write");
    let answer = server
        .v1
        .get_metrics(request(&metadata))
        .await
        .expect("metrics")
        .into_inner();
    assert_eq!(answer.in_flight.map(|in_flight| in_flight.count), Some(6));
}

#[tokio::test]
async fn bad_metadata_is_invalid_argument_naming_the_key() {
    let mut server = TestServer::start(ExampleScaler::default())
        .await
        .expect("serve");
    let cases: [(&[(&str, &str)], &str); 4] = [
        (&[], "valueFile"),
        (&[("value", "1"), ("valueFile", "/x")], "value"),
        (&[("value", "1"), ("target", "0")], "target"),
        (&[("value", "abc")], "value"),
    ];
    for (metadata, key) in cases {
        let status = server
            .v1
            .get_metric_spec(request(metadata))
            .await
            .expect_err("invalid");
        assert_eq!(
            status.code(),
            Code::InvalidArgument,
            "{metadata:?}: {status:?}"
        );
        assert!(
            status.message().contains(key),
            "{metadata:?}: message names `{key}`: {}",
            status.message()
        );
    }
}

#[tokio::test]
async fn keda_protocol_reads_value_file_from_env_key() {
    let mut server = TestServer::start(ExampleScaler::default())
        .await
        .expect("serve");
    let directory = tempfile::tempdir().expect("tempdir");
    let path = directory.path().join("depth");
    std::fs::write(&path, "8").expect("write");
    let reference = keda::ScaledObjectRef {
        name: "orders".into(),
        namespace: "ns".into(),
        scaler_metadata: HashMap::from([
            ("scalerAddress".to_owned(), server.address.to_string()),
            ("valueFileFromEnv".to_owned(), path.display().to_string()),
            ("target".to_owned(), "4".to_owned()),
        ]),
    };
    let spec = server
        .keda
        .get_metric_spec(reference.clone())
        .await
        .expect("spec")
        .into_inner();
    assert_eq!(spec.metric_specs[0].metric_name, "example-depth");
    assert_eq!(spec.metric_specs[0].target_size_float, 4.0);
    let answer = server
        .keda
        .get_metrics(keda::GetMetricsRequest {
            scaled_object_ref: Some(reference.clone()),
            metric_name: "example-depth".into(),
        })
        .await
        .expect("metrics")
        .into_inner();
    assert_eq!(answer.metric_values[0].metric_value_float, 8.0);
    assert!(
        server
            .keda
            .is_active(reference)
            .await
            .expect("active")
            .into_inner()
            .result
    );
}
