//! `ebb status` (the real binary) against a running `ebb run` and against the controller (in
//! process, on the real control plane of `scripts/cluster.sh`): it prints each object's
//! value/target, activity, replicas and last reason from the process's own `/status`, not
//! from the API server.

#[path = "ebb_run/mod.rs"]
mod ebb_run;
#[path = "in_process_controller/mod.rs"]
mod in_process_controller;
mod real_clients;
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ebb_run::EbbRun;
use in_process_controller::{InProcessController, test_args};
use real_clients::cluster::Cluster;

fn ebb_status(addr: &str) -> String {
    let output = Command::new(support::binary("ebb", "ebb"))
        .args(["status", "--addr", addr])
        .output()
        .expect("run ebb status");
    assert!(
        output.status.success(),
        "ebb status failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8")
}

fn manifest(dir: &Path) -> PathBuf {
    let yaml = format!(
        r#"apiVersion: ebb.dev/v1alpha1
kind: Scaler
metadata: {{name: example}}
spec:
  command: {scaler}
  args: ["--listen", "{{address}}"]
---
apiVersion: ebb.dev/v1alpha1
kind: ProcessGroup
metadata: {{name: workers}}
spec:
  command: sleep
  args: ["600"]
  gracePeriod: 1s
---
apiVersion: ebb.dev/v1alpha1
kind: ScaledObject
metadata: {{name: orders}}
spec:
  scaleTargetRef: {{apiVersion: ebb.dev/v1alpha1, kind: ProcessGroup, name: workers}}
  pollingInterval: 1
  maxReplicaCount: 4
  triggers:
    - type: example
      name: queue
      metadata: {{value: "12", target: "5"}}
"#,
        scaler = support::binary("ebb-example-scaler", "ebb-example-scaler").display(),
    );
    let path = dir.join("ebb.yaml");
    std::fs::write(&path, yaml).expect("write manifest");
    path
}

#[test]
fn ebb_status_reads_a_running_ebb_run() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ebb = support::binary("ebb", "ebb");
    let mut run = EbbRun::start(&ebb, &manifest(dir.path()), &dir.path().join("ebb.log"));
    support::wait_for("3 replicas", Duration::from_secs(30), || {
        run.status()
            .is_some_and(|status| status["objects"][0]["status"]["desiredReplicas"] == 3)
    });
    let printed = ebb_status(&format!("127.0.0.1:{}", run.status_port));
    let line = printed
        .lines()
        .find(|line| line.starts_with("orders"))
        .unwrap_or_else(|| panic!("no line for orders in:\n{printed}"));
    for part in ["queue 12/5", "yes", "→ 3", "Scaled"] {
        assert!(line.contains(part), "{part:?} missing in {line:?}");
    }
    run.interrupt();
    run.wait_exit(Duration::from_secs(30));
}

/// `kubectl apply` of `manifest` in `namespace`.
fn apply(cluster: &Cluster, namespace: &str, manifest: &str) {
    let path = cluster.dir().join("objects.yaml");
    std::fs::write(&path, manifest).expect("write the manifest");
    cluster.kubectl_ok(&["apply", "-n", namespace, "-f", &path.to_string_lossy()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ebb_status_reads_the_controller() {
    let cluster = Cluster::running();
    {
        let _cluster_wide = cluster.exclusive();
        cluster.install_crds();
    }
    let namespace = cluster.namespace("status");
    let account = cluster.controller_account(&namespace.name);
    let mark = cluster.audit_mark();
    apply(
        &cluster,
        &namespace.name,
        "apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: main, image: busybox}]}
",
    );
    let scaler = tokio::task::spawn_blocking(|| {
        let port = support::free_port();
        let child = Command::new(support::binary("ebb-example-scaler", "ebb-example-scaler"))
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .spawn()
            .expect("start the example scaler");
        support::wait_for_port(&format!("127.0.0.1:{port}"), Duration::from_secs(30));
        (support::KillOnDrop(child), port)
    })
    .await
    .unwrap();
    let (_scaler, port) = scaler;
    let mut args = test_args("status");
    args.leader_elect = false;
    args.namespace = namespace.name.clone();
    args.watch_namespace = Some(namespace.name.clone());
    let client = cluster.client(Some(&account.kubeconfig)).await;
    let controller = InProcessController::start(client, args).await;
    apply(
        &cluster,
        &namespace.name,
        &format!(
            "apiVersion: ebb.dev/v1alpha1
kind: ScaledObject
metadata: {{name: web}}
spec:
  scaleTargetRef: {{name: web}}
  pollingInterval: 1
  maxReplicaCount: 4
  triggers:
    - type: example
      name: queue
      metadata: {{value: \"12\", target: \"5\"}}
      scaler: {{address: \"127.0.0.1:{port}\", push: false}}
"
        ),
    );
    let addr = controller.telemetry.to_string();
    let printed = tokio::task::spawn_blocking(move || {
        let mut printed = String::new();
        support::wait_for("3 replicas in ebb status", Duration::from_secs(60), || {
            printed = ebb_status(&addr);
            printed.contains("3 → 3")
        });
        printed
    })
    .await
    .unwrap();
    let prefix = format!("{}/web", namespace.name);
    let line = printed
        .lines()
        .find(|line| line.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no line for {prefix} in:\n{printed}"));
    for part in ["queue 12/5", "yes", "3 → 3", "Scaled"] {
        assert!(line.contains(part), "{part:?} missing in {line:?}");
    }
    controller.stop().await;
    cluster.assert_nothing_forbidden(&mark, &account.user);
}
