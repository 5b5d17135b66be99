//! End to end with every part a separate process: `ebb-fake-apiserver`, `ebb controller`
//! reading the kubeconfig the fake wrote, a KEDA-protocol external scaler written in Python
//! (`examples/python-scaler/scaler.py --keda-only`, whose value is the number of files in a
//! spool directory), and kubectl. With target 5, 12 files scale the Deployment 0 -> 3, and
//! emptying the directory scales it back to 0; `kubectl get deployment` shows each step.

mod real_clients;
mod scaler_processes;
mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use real_clients::{FakeApiProcess, require_python_module};

/// Waits until the READY column of `kubectl get deployment worker` reads `want`.
fn wait_ready_column(server: &FakeApiProcess, want: &str, log: &std::path::Path) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let table = server.kubectl_ok(&["get", "deployment", "worker"]);
        let ready = real_clients::table_cells(&table, 1).get(1).copied();
        if ready == Some(want) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "kubectl get deployment worker never showed READY {want}; last:\n{table}\ncontroller log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn ebb_controller_process_scales_a_deployment_zero_to_three_and_back_through_kubectl() {
    require_python_module("grpc");
    let server = FakeApiProcess::start();
    server.kubectl_ok(&["apply", "-k", "deploy/crds"]);
    server.kubectl_ok(&[
        "wait",
        "--for=condition=Established",
        "--timeout=20s",
        "crd/scaledobjects.ebb.dev",
    ]);
    let scaler = scaler_processes::python_scaler(&["--keda-only"]);
    let spool = server.dir().join("spool");
    std::fs::create_dir(&spool).expect("spool directory");
    server.kubectl_ok(&[
        "create",
        "deployment",
        "worker",
        "--image=busybox",
        "--replicas=0",
    ]);
    let manifest = server.dir().join("scaledobject.yaml");
    std::fs::write(
        &manifest,
        format!(
            "apiVersion: ebb.dev/v1alpha1
kind: ScaledObject
metadata:
  name: worker
spec:
  scaleTargetRef:
    name: worker
  pollingInterval: 1
  cooldownPeriod: 1
  minReplicaCount: 0
  maxReplicaCount: 10
  advanced:
    horizontalPodAutoscalerConfig:
      behavior:
        scaleDown:
          stabilizationWindowSeconds: 0
  triggers:
  - type: external
    name: spool
    metadata:
      scalerAddress: {}
      directory: {}
      target: \"5\"
",
            scaler.address,
            spool.display()
        ),
    )
    .expect("write manifest");
    server.kubectl_ok(&["apply", "-f", &manifest.to_string_lossy()]);

    let log = server.dir().join("controller.log");
    let controller = Command::new(support::binary("ebb", "ebb"))
        .args([
            "controller",
            "--leader-elect",
            "false",
            "--namespace",
            "default",
        ])
        .args([
            "--identity",
            "e2e",
            "--metrics-listen",
            "127.0.0.1:0",
            "--log",
            "info",
        ])
        .arg("--kubeconfig")
        .arg(server.kubeconfig())
        .env_remove("KUBECONFIG")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("spawn ebb controller");
    let _controller = support::KillOnDrop(controller);

    let waited = server.kubectl(&[
        "wait",
        "--for=condition=Ready",
        "--timeout=60s",
        "scaledobject/worker",
    ]);
    assert!(
        waited.status.success(),
        "{}\ncontroller log:\n{}",
        real_clients::text(&waited),
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    wait_ready_column(&server, "0/0", &log);

    for index in 0..12 {
        std::fs::write(spool.join(format!("job-{index}")), "work").expect("spool file");
    }
    wait_ready_column(&server, "3/3", &log);
    let replicas = server.kubectl_ok(&[
        "get",
        "deployment",
        "worker",
        "-o",
        "jsonpath={.spec.replicas}",
    ]);
    assert_eq!(replicas, "3", "12 files at target 5 need 3 replicas");
    // ebb writes events.k8s.io/v1 Events; kubectl reads them through the core v1 view.
    let events = server.kubectl_ok(&["get", "events"]);
    assert!(
        events.lines().any(|line| {
            let cells: Vec<&str> = line.split_whitespace().collect();
            cells.get(2) == Some(&"Scaled") && cells.get(3) == Some(&"scaledobject/worker")
        }),
        "{events}"
    );
    let so = server.kubectl_ok(&["get", "scaledobject", "worker"]);
    assert!(
        so.lines().nth(1).is_some_and(|row| row.contains("worker")),
        "{so}"
    );

    for index in 0..12 {
        std::fs::remove_file(spool.join(format!("job-{index}"))).expect("remove spool file");
    }
    wait_ready_column(&server, "0/0", &log);
}
