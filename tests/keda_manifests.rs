//! KEDA's manifests run under `ebb run` with no edit: a `keda.sh/v1alpha1` RabbitMQ
//! ScaledObject with `type: rabbitmq` and no scaler address, `scaleTargetRef: {name:
//! consumer}` (KEDA's default Deployment), a TriggerAuthentication with `secretTargetRef`, and
//! a v1 Secret (examples/keda-manifests). The only additions are a `kind: Scaler` named after
//! the trigger type and a `kind: ProcessGroup` named like the Deployment. Real binaries, real
//! RabbitMQ: the broker URL reaches the scaler only through the Secret.

#[path = "ebb_run/mod.rs"]
mod ebb_run;
#[path = "support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ebb_run::EbbRun;

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/keda-manifests")
}

/// PATH with the workspace's binaries first, as the example's README runs it.
fn path_with_binaries() -> String {
    let bin = support::binary("ebb", "ebb");
    let dir = bin.parent().expect("target/debug").display().to_string();
    format!("{dir}:{}", std::env::var("PATH").unwrap_or_default())
}

#[test]
fn check_accepts_the_keda_documents_and_says_how_it_reads_them() {
    let output = Command::new(support::binary("ebb", "ebb"))
        .args(["run", "--check", "-f"])
        .arg(example())
        .env("PATH", path_with_binaries())
        .output()
        .expect("run ebb");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("scaled object rabbitmq-consumer: scales consumer from 0 to 10"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Deployment \"consumer\" runs as the ProcessGroup of the same name"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("guest:guest"),
        "no secret in --check: {stdout}"
    );
}

#[test]
fn the_keda_documents_scale_the_consumer_with_the_secret_from_the_trigger_authentication() {
    support::require_service("RabbitMQ", "127.0.0.1:5672");
    let dir = tempfile::tempdir().expect("tempdir");
    let ebb = support::binary("ebb", "ebb");
    let log = dir.path().join("ebb.log");
    let run = EbbRun::start_with_env(&ebb, &example(), &log, &[("PATH", &path_with_binaries())]);
    let publisher = support::binary("ebb-quickstart-publisher", "ebb-quickstart-publisher");
    let status = Command::new(publisher)
        .args(["--amqp-url", "amqp://guest:guest@127.0.0.1:5672/%2f"])
        .args(["--queue", "hello", "--id-prefix", "keda", "--count", "12"])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run the publisher");
    assert!(status.success(), "publisher failed");
    support::wait_for(
        "consumers started for 12 messages at 5 per replica",
        Duration::from_secs(60),
        || {
            run.status().is_some_and(|status| {
                status["processGroups"][0]["running"]
                    .as_u64()
                    .is_some_and(|running| running >= 1)
            })
        },
    );
    let status = run.status().expect("status").to_string();
    assert!(
        !status.contains("guest:guest"),
        "no secret in status: {status}"
    );
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(!text.contains("guest:guest"), "no secret in the log");
}
