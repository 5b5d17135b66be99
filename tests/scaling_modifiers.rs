//! `advanced.scalingModifiers` end to end: two triggers combined by `formula: "a + b"` with
//! target 5 scale to `ceil((a + b) / 5)`, under `ebb run` (a real ProcessGroup) and in the
//! cluster (the controller against the fake API server), each with the Python example scaler
//! as a real process: its value is the number of files in a spool directory, one directory
//! per trigger. 7 + 6 files give 3 replicas; changing a directory moves the count.

#[path = "fake_apiserver/mod.rs"]
mod fake_apiserver;
#[path = "in_process_controller/mod.rs"]
mod in_process_controller;

mod ebb_run;
mod scaler_processes;
mod support;

use std::path::Path;
use std::time::Duration;

use ebb_run::EbbRun;
use fake_apiserver::FakeApiServer;
use in_process_controller::{InProcessController, test_args};
use serde_json::{Value, json};
use support::wait_for;

/// Makes `directory` hold exactly `count` files.
fn spool(directory: &Path, count: usize) {
    std::fs::create_dir_all(directory).expect("spool directory");
    let existing: Vec<_> = std::fs::read_dir(directory)
        .expect("read spool")
        .map(|entry| entry.expect("entry").path())
        .collect();
    for path in existing.iter().skip(count) {
        std::fs::remove_file(path).expect("remove spool file");
    }
    for index in existing.len()..count {
        std::fs::write(directory.join(format!("job-{index}")), "work").expect("spool file");
    }
}

/// The composite's entry in a status: `(lastValue, target)`.
fn formula_entry(status: &Value) -> Option<(f64, f64)> {
    status["triggers"]
        .as_array()?
        .iter()
        .find(|trigger| trigger["name"] == "formula")
        .map(|trigger| {
            (
                trigger["lastValue"].as_f64().unwrap_or(f64::NAN),
                trigger["target"].as_f64().unwrap_or(f64::NAN),
            )
        })
}

/// The two triggers, KEDA's external form, on one scaler, one spool directory each.
fn triggers(address: &str, a: &Path, b: &Path) -> Value {
    let trigger = |name: &str, directory: &Path| {
        json!({"type": "external", "name": name, "metadata": {
            "scalerAddress": address, "directory": directory.to_str().expect("utf-8 path"),
        }})
    };
    json!([trigger("a", a), trigger("b", b)])
}

/// Scaling without stabilization or rate limits, so each step shows at once.
fn immediate_behavior() -> Value {
    let rules = json!({"stabilizationWindowSeconds": 0, "policies": [{"type": "Pods", "value": 20, "periodSeconds": 1}]});
    json!({"behavior": {"scaleUp": rules, "scaleDown": rules}})
}

#[test]
fn ebb_run_scales_a_process_group_on_the_sum_of_two_triggers() {
    let scaler = scaler_processes::python_scaler(&[]);
    let dir = tempfile::tempdir().expect("temporary directory");
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    spool(&a, 7);
    spool(&b, 6);
    let object = json!({
        "apiVersion": "ebb.dev/v1alpha1", "kind": "ScaledObject", "metadata": {"name": "combined"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "ebb.dev/v1alpha1", "kind": "ProcessGroup", "name": "workers"},
            "pollingInterval": 1, "maxReplicaCount": 10,
            "advanced": {
                "scalingModifiers": {"formula": "a + b", "target": "5"},
                "horizontalPodAutoscalerConfig": immediate_behavior(),
            },
            "triggers": triggers(&scaler.address, &a, &b),
        }
    });
    let group = json!({
        "apiVersion": "ebb.dev/v1alpha1", "kind": "ProcessGroup", "metadata": {"name": "workers"},
        "spec": {"command": "sleep", "args": ["600"], "gracePeriod": "2s"}
    });
    let manifest = dir.path().join("ebb.yaml");
    std::fs::write(
        &manifest,
        format!(
            "{}---\n{}",
            serde_norway::to_string(&group).expect("yaml"),
            serde_norway::to_string(&object).expect("yaml")
        ),
    )
    .expect("write manifest");
    let log = dir.path().join("ebb.log");
    let run = EbbRun::start(&support::binary("ebb", "ebb"), &manifest, &log);
    let running = |want: u64| {
        move |status: &Value| {
            let group = &status["processGroups"][0];
            group["running"].as_u64() == Some(want) && group["desired"].as_u64() == Some(want)
        }
    };
    let wait_status = |what: &str, check: &dyn Fn(&Value) -> bool| {
        wait_for(what, Duration::from_secs(60), || {
            run.status().is_some_and(|status| check(&status))
        });
    };
    wait_status("3 workers for (7 + 6) / 5", &running(3));
    wait_status(
        "the composite 13 against target 5 in the status",
        &|status| formula_entry(&status["objects"][0]["status"]) == Some((13.0, 5.0)),
    );

    // a drops to 2: (2 + 6) / 5 = 1.6, so 2 workers.
    spool(&a, 2);
    wait_status("2 workers for (2 + 6) / 5", &running(2));
    // b rises to 16: (2 + 16) / 5 = 3.6, so 4 workers.
    spool(&b, 16);
    wait_status("4 workers for (2 + 16) / 5", &running(4));
    wait_status("the scale event's reason names the composite", &|status| {
        status["objects"][0]["lastReason"]
            .as_str()
            .is_some_and(|reason| reason.contains("formula 18/5 per replica"))
    });
}

#[test]
fn the_controller_scales_a_deployment_on_the_sum_of_two_triggers() {
    // Started before the runtime: the scaler's health check runs its own.
    let scaler = scaler_processes::python_scaler(&["--keda-only"]);
    let dir = tempfile::tempdir().expect("temporary directory");
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    spool(&a, 7);
    spool(&b, 6);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let server = FakeApiServer::start().await;
        let namespace = "apps";
        server
            .create(json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "worker", "namespace": namespace},
                "spec": {
                    "replicas": 0,
                    "selector": {"matchLabels": {"app": "worker"}},
                    "template": {
                        "metadata": {"labels": {"app": "worker"}},
                        "spec": {"containers": [{"name": "main", "image": "busybox"}]}
                    }
                }
            }))
            .expect("create Deployment");
        server
            .create(json!({
                "apiVersion": "ebb.dev/v1alpha1", "kind": "ScaledObject",
                "metadata": {"name": "worker", "namespace": namespace},
                "spec": {
                    "scaleTargetRef": {"name": "worker"},
                    "pollingInterval": 1, "maxReplicaCount": 10,
                    "advanced": {
                        // An integer target: the CRD takes integers or strings.
                        "scalingModifiers": {"formula": "a + b", "target": 5, "metricType": "AverageValue"},
                        "horizontalPodAutoscalerConfig": immediate_behavior(),
                    },
                    "triggers": triggers(&scaler.address, &a, &b),
                }
            }))
            .expect("create ScaledObject");
        let controller = InProcessController::start(server.client(), test_args("modifiers")).await;
        let replicas = |want: i64| {
            let server = &server;
            async move {
                let deadline = std::time::Instant::now() + Duration::from_secs(60);
                while server.deployment_replicas(namespace, "worker") != Some(want) {
                    let object = server.get("ebb.dev/v1alpha1", "ScaledObject", namespace, "worker");
                    assert!(
                        std::time::Instant::now() < deadline,
                        "never {want} replicas; the ScaledObject: {object:?}"
                    );
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        };
        replicas(3).await;
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let object = server
                .get("ebb.dev/v1alpha1", "ScaledObject", namespace, "worker")
                .unwrap_or_default();
            if formula_entry(&object["status"]) == Some((13.0, 5.0)) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the status never showed the composite 13/5: {object}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        spool(&b, 16);
        // (7 + 16) / 5 = 4.6, so 5 replicas.
        replicas(5).await;
        spool(&a, 0);
        spool(&b, 4);
        // (0 + 4) / 5 = 0.8, so 1 replica.
        replicas(1).await;
        controller.stop().await;
    });
}
