//! End to end with every part a separate process: the real control plane
//! (`scripts/cluster.sh`), `ebb controller` as a ServiceAccount with `deploy/`'s RBAC (a
//! request the authorizer refuses fails the test), a KEDA-protocol external scaler written
//! in Python (`examples/python-scaler/scaler.py --keda-only`, whose value is the number of
//! files in a spool directory), and kubectl. With target 5, 12 files
//! scale the Deployment 0 -> 3, and emptying the directory scales it back to 0;
//! `kubectl get deployment` shows each step, and the real Deployment and ReplicaSet
//! controllers, the scheduler and the kubelet stand-in bring the Pods up and down with it.
//!
//! The controller runs in a namespace of its own (its Lease there, watching only there), so
//! tests that share the cluster never see each other's objects.

mod real_clients;
mod scaler_processes;
mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use real_clients::cluster::Cluster;
use real_clients::require_python_module;

/// kubectl in one namespace.
struct Kubectl<'a> {
    cluster: &'a Cluster,
    namespace: &'a str,
}

impl Kubectl<'_> {
    fn ok(&self, args: &[&str]) -> String {
        let mut all = vec!["-n", self.namespace];
        all.extend_from_slice(args);
        self.cluster.kubectl_ok(&all)
    }

    /// Waits until `check` holds for the output of `kubectl ARGS`, showing the last output
    /// and the controller's log when it never does.
    fn wait_until(&self, what: &str, args: &[&str], log: &Path, check: impl Fn(&str) -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let output = self.ok(args);
            if check(&output) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "never saw {what}; last `kubectl {}`:\n{output}\ncontroller log:\n{}",
                args.join(" "),
                std::fs::read_to_string(log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits until the READY column of `kubectl get deployment worker` reads `want`.
    fn wait_ready_column(&self, want: &str, log: &Path) {
        self.wait_until(
            &format!("READY {want}"),
            &["get", "deployment", "worker"],
            log,
            |table| real_clients::table_cells(table, 1).get(1).copied() == Some(want),
        );
    }

    /// Waits until exactly `count` Pods of the Deployment exist, all Running and none being
    /// deleted.
    fn wait_running_pods(&self, count: usize, log: &Path) {
        self.wait_until(
            &format!("{count} Running worker Pods"),
            &[
                "get",
                "pods",
                "-l",
                "app=worker",
                "-o",
                "jsonpath={range .items[*]}{.status.phase}{.metadata.deletionTimestamp}{\"\\n\"}{end}",
            ],
            log,
            |pods| pods.lines().count() == count && pods.lines().all(|pod| pod == "Running"),
        );
    }
}

fn scaled_object(scaler: &str, spool: &Path) -> String {
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
      scalerAddress: {scaler}
      directory: {}
      target: \"5\"
",
        spool.display()
    )
}

#[test]
fn ebb_controller_process_scales_a_deployment_zero_to_three_and_back_through_kubectl() {
    require_python_module("grpc");
    let cluster = Cluster::running();
    cluster.install_crds();
    let namespace = cluster.namespace("kubectl-ebb");
    let kubectl = Kubectl {
        cluster: &cluster,
        namespace: &namespace.name,
    };
    let scaler = scaler_processes::python_scaler(&["--keda-only"]);
    let spool = cluster.dir().join("spool");
    std::fs::create_dir(&spool).expect("spool directory");
    kubectl.ok(&[
        "create",
        "deployment",
        "worker",
        "--image=busybox",
        "--replicas=0",
    ]);
    let manifest = cluster.dir().join("scaledobject.yaml");
    std::fs::write(&manifest, scaled_object(&scaler.address, &spool)).expect("write manifest");
    kubectl.ok(&["apply", "-f", &manifest.to_string_lossy()]);

    let account = cluster.controller_account(&namespace.name);
    let mark = cluster.audit_mark();
    let log = cluster.dir().join("controller.log");
    let controller = Command::new(support::binary("ebb", "ebb"))
        .args(["controller", "--namespace", &namespace.name])
        .args(["--watch-namespace", &namespace.name])
        .args([
            "--identity",
            "e2e",
            "--metrics-listen",
            "127.0.0.1:0",
            "--log",
            "info",
        ])
        .arg("--kubeconfig")
        .arg(&account.kubeconfig)
        .env_remove("KUBECONFIG")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("spawn ebb controller");
    let controller = support::KillOnDrop(controller);

    let waited = cluster.kubectl(&[
        "-n",
        &namespace.name,
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
    // It leads through a real Lease in its own namespace.
    let holder = kubectl.ok(&[
        "get",
        "lease",
        "ebb-controller",
        "-o",
        "jsonpath={.spec.holderIdentity}",
    ]);
    assert_eq!(holder, "e2e");
    kubectl.wait_ready_column("0/0", &log);

    for index in 0..12 {
        std::fs::write(spool.join(format!("job-{index}")), "work").expect("spool file");
    }
    // READY counts Pods the stand-in made Running and Ready, through the real ReplicaSet.
    kubectl.wait_ready_column("3/3", &log);
    kubectl.wait_running_pods(3, &log);
    let replicas = kubectl.ok(&[
        "get",
        "deployment",
        "worker",
        "-o",
        "jsonpath={.spec.replicas}",
    ]);
    assert_eq!(replicas, "3", "12 files at target 5 need 3 replicas");
    let replica_set = kubectl.ok(&[
        "get",
        "replicasets",
        "-l",
        "app=worker",
        "-o",
        "jsonpath={range .items[*]}{.spec.replicas}/{.status.readyReplicas}{\"\\n\"}{end}",
    ]);
    assert_eq!(replica_set.trim(), "3/3", "one ReplicaSet, 3 ready");
    // ebb writes events.k8s.io/v1 Events; kubectl reads them through the core v1 view.
    let events = kubectl.ok(&["get", "events"]);
    assert!(
        events.lines().any(|line| {
            let cells: Vec<&str> = line.split_whitespace().collect();
            cells.get(2) == Some(&"Scaled") && cells.get(3) == Some(&"scaledobject/worker")
        }),
        "{events}"
    );
    let so = kubectl.ok(&["get", "scaledobject", "worker"]);
    assert!(
        so.lines().nth(1).is_some_and(|row| row.contains("worker")),
        "{so}"
    );

    for index in 0..12 {
        std::fs::remove_file(spool.join(format!("job-{index}"))).expect("remove spool file");
    }
    kubectl.wait_ready_column("0/0", &log);
    // The stand-in finishes the graceful deletes: no Pod is left at all.
    kubectl.wait_running_pods(0, &log);
    drop(controller);
    cluster.assert_nothing_forbidden(&mark, &account.user);
}
