//! `ebb::client` against real scaler processes over loopback: protocol detection, readings in
//! both protocols, error classification by gRPC code, deadlines and the activity stream.

mod scaler_processes;
mod support;

use std::future::Future;
use std::time::Duration;

use ebb::client::{ChannelSettings, ClientError, Protocol, ScalerClient, channel};
use scaler_processes::{
    assert_pushes_activation, example_scaler, python_scaler, trigger_input, write_atomically,
};
use tonic::Code;

const TIMEOUT: Duration = Duration::from_secs(5);

fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(future)
}

async fn client(address: &str) -> ScalerClient {
    ScalerClient::new(
        channel::connect(&ChannelSettings::plain(address))
            .await
            .expect("connect"),
    )
}

#[test]
fn reads_the_example_scaler_over_v1() {
    let scaler = example_scaler(&[]);
    let files = tempfile::tempdir().expect("tempdir");
    let value = files.path().join("orders.txt");
    let in_flight = files.path().join("in-flight.txt");
    write_atomically(&value, "12");
    write_atomically(&in_flight, "3");
    let value_key = value.display().to_string();
    let in_flight_key = in_flight.display().to_string();
    block_on(async {
        let client = client(&scaler.address).await;
        let info = client.info(TIMEOUT).await.expect("info");
        assert_eq!(info.protocol, Protocol::V1);
        assert_eq!(info.name, "example");
        assert!(
            info.capabilities.push
                && info.capabilities.in_flight
                && info.capabilities.keda_compatible
        );
        assert!(
            info.field("valueFile").is_some(),
            "schema lists valueFile: {:?}",
            info.metadata
        );

        let trigger = trigger_input(
            &[
                ("valueFile", &value_key),
                ("target", "5"),
                ("inFlightFile", &in_flight_key),
            ],
            &[],
        );
        let specs = client.metric_specs(&trigger, TIMEOUT).await.expect("specs");
        assert_eq!(specs.len(), 1);
        assert_eq!(
            (specs[0].metric_name.as_str(), specs[0].target),
            ("example-orders", 5.0)
        );

        let reading = client.metrics(&trigger, TIMEOUT).await.expect("metrics");
        assert_eq!(reading.values.len(), 1);
        assert_eq!(reading.values[0].value, 12.0);
        assert_eq!(reading.values[0].target, 5.0);
        assert!(reading.active);
        assert_eq!(reading.in_flight, Some(3));
        assert!(
            client
                .is_active(&trigger, TIMEOUT)
                .await
                .expect("is_active")
        );
    });
}

#[test]
fn classifies_scaler_errors_by_code() {
    let scaler = example_scaler(&[]);
    let missing = tempfile::tempdir()
        .expect("tempdir")
        .path()
        .join("absent.txt")
        .display()
        .to_string();
    block_on(async {
        let client = client(&scaler.address).await;
        let error = client
            .metrics(&trigger_input(&[("valueFile", &missing)], &[]), TIMEOUT)
            .await
            .expect_err("missing file");
        assert_eq!(error.code(), Code::NotFound, "{error}");

        let error = client
            .metric_specs(
                &trigger_input(&[("value", "1"), ("target", "zero")], &[]),
                TIMEOUT,
            )
            .await
            .expect_err("bad target");
        assert!(error.is_invalid_metadata(), "{error}");
        assert!(
            error.to_string().contains("target"),
            "names the key: {error}"
        );
    });
}

#[test]
fn activity_stream_sends_the_state_then_changes() {
    let scaler = example_scaler(&["--push-interval", "50ms"]);
    let files = tempfile::tempdir().expect("tempdir");
    let value = files.path().join("jobs.txt");
    write_atomically(&value, "0");
    let value_key = value.display().to_string();
    block_on(async {
        let client = client(&scaler.address).await;
        let trigger = trigger_input(&[("valueFile", &value_key)], &[]);
        let mut stream = client
            .activity_stream(&trigger, TIMEOUT)
            .await
            .expect("stream");
        assert_pushes_activation(&mut stream, || write_atomically(&value, "4")).await;
    });
}

#[test]
fn reads_a_keda_only_scaler_with_secrets_merged_into_metadata() {
    let scaler = python_scaler(&["--keda-only"]);
    let spool = tempfile::tempdir().expect("tempdir");
    for index in 0..4 {
        std::fs::write(spool.path().join(format!("job-{index}")), "").expect("write");
    }
    let directory = spool.path().display().to_string();
    block_on(async {
        let client = client(&scaler.address).await;
        assert_eq!(
            client.protocol(TIMEOUT).await.expect("detect"),
            Protocol::Keda
        );
        // KEDA has no secret map: the `directory` secret must arrive inside scalerMetadata,
        // winning over the plain key of the same name.
        let trigger = trigger_input(
            &[("directory", "/does/not/exist"), ("target", "2")],
            &[("directory", &directory)],
        );
        let reading = client.metrics(&trigger, TIMEOUT).await.expect("metrics");
        assert_eq!(reading.values.len(), 1);
        assert_eq!(reading.values[0].value, 4.0);
        assert_eq!(reading.values[0].target, 2.0);
        assert!(reading.active);
        assert_eq!(reading.in_flight, None, "KEDA cannot report in-flight work");

        let error = client
            .metrics(&trigger_input(&[("target", "2")], &[]), TIMEOUT)
            .await
            .expect_err("directory missing");
        assert!(error.is_invalid_metadata(), "{error}");
    });
}

#[test]
fn a_silent_scaler_times_out_and_a_closed_port_is_unavailable() {
    // Accepts TCP but never speaks HTTP/2: every call must end at its deadline.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let silent_address = silent.local_addr().expect("addr").to_string();
    let closed_address = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").to_string()
    };
    block_on(async {
        let channel =
            channel::connect_lazy(&ChannelSettings::plain(&silent_address)).expect("lazy channel");
        let error = ScalerClient::new(channel)
            .info(Duration::from_millis(300))
            .await
            .expect_err("no answer");
        assert!(
            matches!(error, ClientError::Timeout { rpc: "GetInfo", .. }),
            "{error}"
        );
        assert_eq!(error.code(), Code::DeadlineExceeded);

        let error = channel::connect(&ChannelSettings::plain(&closed_address))
            .await
            .expect_err("closed port");
        assert_eq!(error.code(), Code::Unavailable, "{error}");
    });
    drop(silent);
}
