//! `ebb scaler conformance` against the real `ebb-rabbitmq-scaler` binary and a real broker,
//! in AMQP and HTTP mode.

mod common;
#[rustfmt::skip]
#[path = "../../../tests/support/mod.rs"]
mod support;

use std::time::Duration;

use common::{Client, QueueGuard, require_rabbit, unique};

fn conformance(address: &str, metadata: &[String]) -> (bool, String) {
    let mut args = vec!["scaler", "conformance", address];
    for pair in metadata {
        args.push("-m");
        args.push(pair);
    }
    args.extend(["--secret", "host=amqp://guest:guest@127.0.0.1:5672/%2F"]);
    let output = support::run_ebb(&args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[tokio::test(flavor = "multi_thread")]
async fn conformance_passes_in_amqp_and_http_mode() {
    require_rabbit();
    let queue = unique("conformance");
    let client = Client::connect("/").await;
    client.declare(&queue).await;
    let _guard = QueueGuard {
        vhost: "/".into(),
        names: vec![queue.clone()],
    };
    client.publish(&queue, 3).await;

    let address = support::free_address();
    let (child, log) = support::spawn(
        "ebb-rabbitmq-scaler",
        "ebb-rabbitmq-scaler",
        &["--listen", &address],
    );
    let _scaler = support::KillOnDrop(child);
    support::wait_for_port(&address, Duration::from_secs(60));

    let (passed, text) = conformance(&address, &[format!("queueName={queue}")]);
    assert!(
        passed,
        "AMQP mode:\n{text}\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert!(text.contains("PASS  metric-values"), "{text}");
    assert!(text.contains("PASS  missing-required-key"), "{text}");
    assert!(text.contains("PASS  secrets-not-echoed"), "{text}");

    let http = [format!("queueName={queue}"), "protocol=http".to_string()];
    let output = support::run_ebb(&[
        "scaler",
        "conformance",
        &address,
        "-m",
        &http[0],
        "-m",
        &http[1],
        "--secret",
        "host=http://guest:guest@127.0.0.1:15672/%2F",
    ]);
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(output.status.success(), "HTTP mode:\n{text}");
}
