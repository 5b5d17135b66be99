//! `ebb scaler conformance` against the real `ebb-azure-queue-scaler` binary and a real
//! Azurite, for both queue length strategies.

mod common;
#[rustfmt::skip]
#[path = "../../../tests/support/mod.rs"]
mod support;

use std::time::Duration;

use common::{
    SHARED_ENDPOINT, create_queue, ensure_tls_provider, require_azurite, send, unique_queue,
};

#[tokio::test(flavor = "multi_thread")]
async fn conformance_passes_for_both_strategies() {
    require_azurite();
    ensure_tls_provider();
    let queue = unique_queue("conformance");
    let client = create_queue(SHARED_ENDPOINT, &queue).await;
    send(&client, 4).await;

    let address = support::free_address();
    let (child, log) = support::spawn(
        "ebb-azure-queue-scaler",
        "ebb-azure-queue-scaler",
        &["--listen", &address],
    );
    let _scaler = support::KillOnDrop(child);
    support::wait_for_port(&address, Duration::from_secs(60));

    for strategy in ["all", "visibleonly"] {
        let queue_name = format!("queueName={queue}");
        let strategy_key = format!("queueLengthStrategy={strategy}");
        let output = support::run_ebb(&[
            "scaler",
            "conformance",
            &address,
            "-m",
            &queue_name,
            "-m",
            &strategy_key,
            "--secret",
            "connection=UseDevelopmentStorage=true",
        ]);
        let text = String::from_utf8_lossy(&output.stdout).to_string();
        assert!(
            output.status.success(),
            "strategy {strategy}:\n{text}\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        assert!(text.contains("PASS  metric-values"), "{text}");
        assert!(text.contains("PASS  secrets-not-echoed"), "{text}");
    }
}
