//! The Node example scaler (examples/node-scaler, JavaScript on @grpc/grpc-js) as a real
//! process over loopback: `ebb scaler conformance` passes against it, and it measures its file
//! for real over both protocols, pushing activity changes.

mod scaler_processes;
mod support;

use std::path::Path;
use std::time::Duration;

use ebb::client::{ChannelSettings, Protocol, ScalerClient, channel};
use ebb::proto::keda;
use ebb::proto::keda::external_scaler_client::ExternalScalerClient;
use scaler_processes::{
    assert_pushes_activation, ebb, node_scaler, stdout, trigger_input, write_atomically,
};
use tonic::Code;

const TIMEOUT: Duration = Duration::from_secs(5);

/// A work list with `lines` jobs (and a blank line, which does not count).
fn work_list(directory: &Path, name: &str, lines: usize) -> String {
    let path = directory.join(name);
    let mut text: String = (0..lines).map(|index| format!("job-{index}\n")).collect();
    text.push('\n');
    write_atomically(&path, &text);
    path.display().to_string()
}

#[test]
fn conformance_passes_against_the_node_scaler() {
    let scaler = node_scaler(&[]);
    let files = tempfile::tempdir().expect("tempdir");
    let jobs = work_list(files.path(), "jobs.txt", 3);
    let in_flight = work_list(files.path(), "working.txt", 1);
    let output = ebb(&[
        "scaler",
        "conformance",
        &scaler.address,
        "-m",
        &format!("file={jobs}"),
        "-m",
        &format!("inFlightFile={in_flight}"),
    ]);
    let text = stdout(&output);
    assert!(
        output.status.success(),
        "conformance failed:\n{text}\n{}",
        scaler.log()
    );
    for line in [
        "PASS  protocol-detected            ebb.scaler.v1",
        "PASS  info-schema                  node-lines 0.1.0",
        "lines-jobs = 3; active true; in-flight 1",
        "PASS  missing-required-key         INVALID_ARGUMENT naming `file`",
        "PASS  invalid-value                INVALID_ARGUMENT naming `target`",
        "PASS  stream-is-active             initial state active=true",
        "PASS  keda-consistent",
        "PASS  keda-from-env                `fileFromEnv` read as `file`",
        " 0 failed",
    ] {
        assert!(text.contains(line), "missing `{line}` in:\n{text}");
    }
}

#[test]
fn node_scaler_counts_lines_over_both_protocols_and_pushes_changes() {
    let scaler = node_scaler(&["--push-interval", "0.05"]);
    let files = tempfile::tempdir().expect("tempdir");
    let jobs = work_list(files.path(), "orders.txt", 0);
    let missing = files.path().join("absent.txt").display().to_string();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(async {
            let settings = ChannelSettings::plain(&scaler.address);
            let v1 = ScalerClient::new(channel::connect(&settings).await.expect("connect"));
            let info = v1.info(TIMEOUT).await.expect("info");
            assert_eq!(info.protocol, Protocol::V1);
            assert!(info.capabilities.push && info.capabilities.keda_compatible);
            assert!(info.field("file").is_some_and(|field| field.required));

            // A secret wins over the plain key of the same name.
            let orders = trigger_input(&[("file", &missing), ("target", "2")], &[("file", &jobs)]);
            let mut stream = v1.activity_stream(&orders, TIMEOUT).await.expect("stream");
            assert_pushes_activation(&mut stream, || {
                work_list(files.path(), "orders.txt", 5);
            })
            .await;
            let reading = v1.metrics(&orders, TIMEOUT).await.expect("metrics");
            assert_eq!(reading.values.len(), 1);
            assert_eq!(
                (reading.values[0].value, reading.values[0].target),
                (5.0, 2.0)
            );
            assert!(reading.active);
            assert_eq!(reading.in_flight, None, "no inFlightFile: unknown");

            // KEDA's protocol on the same port, as KEDA calls it: every trigger key (including
            // scalerAddress), one metric asked for by name.
            let mut keda = ExternalScalerClient::new(v1.channel().clone());
            let scaled_object = keda::ScaledObjectRef {
                name: "orders".into(),
                namespace: "shop".into(),
                scaler_metadata: [
                    ("fileFromEnv", jobs.as_str()),
                    ("scalerAddress", &scaler.address),
                ]
                .into_iter()
                .map(|(key, value)| (key.to_owned(), value.to_owned()))
                .collect(),
            };
            let answer = keda
                .get_metrics(keda::GetMetricsRequest {
                    scaled_object_ref: Some(scaled_object.clone()),
                    metric_name: "lines-orders".into(),
                })
                .await
                .expect("KEDA GetMetrics")
                .into_inner();
            let value = &answer.metric_values[0];
            assert_eq!(
                (
                    value.metric_name.as_str(),
                    value.metric_value,
                    value.metric_value_float
                ),
                ("lines-orders", 5, 5.0)
            );
            let active = keda.is_active(scaled_object).await.expect("KEDA IsActive");
            assert!(active.into_inner().result);

            let error = v1
                .metrics(&trigger_input(&[("file", &missing)], &[]), TIMEOUT)
                .await
                .expect_err("missing file");
            assert_eq!(error.code(), Code::NotFound, "{error}");
        });
}
