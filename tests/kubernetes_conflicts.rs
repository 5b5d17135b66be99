//! Conflicts, restore and the target label, end to end: the real controller against the fake
//! API server, with the example scaler as a real process. Two ScaledObjects on one
//! Deployment (TargetConflict), an HPA on it (HPAConflict, and the take-over annotation),
//! `advanced.restoreToOriginalReplicaCount` (finalizer, restore on deletion, a target already
//! gone), and the `ebb.dev/scaledobject-name` label.

#[path = "fake_apiserver/mod.rs"]
mod fake_apiserver;
#[path = "in_process_controller/mod.rs"]
mod in_process_controller;
#[path = "scaler_processes/mod.rs"]
mod scaler_processes;
#[path = "support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use fake_apiserver::FakeApiServer;
use in_process_controller::{InProcessController, test_args};
use serde_json::{Value, json};

const NS: &str = "apps";
const SO: &str = "ebb.dev/v1alpha1";
const LIMIT: Duration = Duration::from_secs(30);

async fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + LIMIT;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The example scaler as a real process (its start-up check blocks: off the runtime).
async fn example_scaler() -> scaler_processes::ScalerProcess {
    tokio::task::spawn_blocking(|| scaler_processes::example_scaler(&[]))
        .await
        .expect("start the example scaler")
}

fn deployment(name: &str, replicas: i64) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "main", "image": "busybox"}]}}}
    })
}

/// A ScaledObject on Deployment `target` asking for `wanted` replicas (value / target 1).
fn scaled_object(name: &str, target: &str, address: &str, wanted: u32, extra: Value) -> Value {
    let mut object = json!({
        "apiVersion": SO, "kind": "ScaledObject",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "scaleTargetRef": {"name": target}, "pollingInterval": 1, "maxReplicaCount": 10,
            "triggers": [{"name": "t", "scaler": {"address": address},
                "metadata": {"value": wanted.to_string(), "target": "1"}}]
        }
    });
    if let Value::Object(extra) = extra {
        for (key, value) in extra {
            match key.as_str() {
                "annotations" => object["metadata"]["annotations"] = value,
                _ => object["spec"][key] = value,
            }
        }
    }
    object
}

fn get(server: &FakeApiServer, name: &str) -> Value {
    server
        .get(SO, "ScaledObject", NS, name)
        .unwrap_or(Value::Null)
}

/// `(status, reason, message)` of the Ready condition.
fn ready(server: &FakeApiServer, name: &str) -> Option<(String, String, String)> {
    get(server, name)
        .pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")
        .map(|c| {
            let text = |field: &str| c[field].as_str().unwrap_or_default().to_owned();
            (text("status"), text("reason"), text("message"))
        })
}

fn replicas(server: &FakeApiServer, name: &str) -> Option<i64> {
    server.deployment_replicas(NS, name)
}

fn label(server: &FakeApiServer, name: &str) -> Option<String> {
    server
        .get("apps/v1", "Deployment", NS, name)?
        .pointer("/metadata/labels/ebb.dev~1scaledobject-name")?
        .as_str()
        .map(str::to_owned)
}

/// Scale writes to Deployment `name` that asked for `count` replicas.
fn scale_writes_to(server: &FakeApiServer, name: &str, count: u32) -> usize {
    let path = format!("/apis/apps/v1/namespaces/{NS}/deployments/{name}/scale");
    server
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH" && r.path == path)
        .filter(|r| {
            r.body.as_ref().and_then(|b| b.pointer("/spec/replicas")) == Some(&json!(count))
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_object_on_a_target_waits_for_the_first_and_takes_over_when_it_goes() {
    let scaler = example_scaler().await;
    let server = FakeApiServer::start().await;
    server.create(deployment("web", 1)).unwrap();
    // Created in the same second, the name decides: "first" < "second".
    server
        .create(scaled_object("first", "web", &scaler.address, 3, json!({})))
        .unwrap();
    server
        .create(scaled_object(
            "second",
            "web",
            &scaler.address,
            5,
            json!({}),
        ))
        .unwrap();
    let controller = InProcessController::start(server.client(), test_args("conflicts")).await;
    eventually("first scales web to 3", || {
        (replicas(&server, "web") == Some(3)).then_some(())
    })
    .await;
    let (status, reason, message) = eventually("second Ready=False", || {
        ready(&server, "second").filter(|r| r.0 == "False")
    })
    .await;
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "TargetConflict")
    );
    assert!(message.contains("\"first\""), "names the owner: {message}");
    // The owner's status may land just after its scale write.
    eventually("first Ready=True", || {
        ready(&server, "first").filter(|r| r.0 == "True")
    })
    .await;
    eventually("web labelled with its owner", || {
        (label(&server, "web").as_deref() == Some("first")).then_some(())
    })
    .await;
    // The first keeps scaling; the second never wrote the target.
    server
        .merge_patch(
            SO,
            "ScaledObject",
            NS,
            "first",
            &json!({"spec": {"triggers": [{"name": "t",
            "scaler": {"address": scaler.address}, "metadata": {"value": "4", "target": "1"}}]}}),
            false,
        )
        .unwrap();
    eventually("first scales web to 4", || {
        (replicas(&server, "web") == Some(4)).then_some(())
    })
    .await;
    assert_eq!(
        scale_writes_to(&server, "web", 5),
        0,
        "the second wrote the target"
    );
    // The first goes: the second takes over.
    server.delete(SO, "ScaledObject", NS, "first").unwrap();
    eventually("second scales web to 5", || {
        (replicas(&server, "web") == Some(5)).then_some(())
    })
    .await;
    eventually("second Ready=True", || {
        ready(&server, "second").filter(|r| r.0 == "True")
    })
    .await;
    eventually("web labelled with its new owner", || {
        (label(&server, "web").as_deref() == Some("second")).then_some(())
    })
    .await;
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_hpa_on_the_target_blocks_the_object_until_it_takes_over() {
    let scaler = example_scaler().await;
    let server = FakeApiServer::start().await;
    server.create(deployment("api", 1)).unwrap();
    server
        .create(json!({
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "api-cpu", "namespace": NS},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "api"},
                "minReplicas": 1, "maxReplicas": 4}
        }))
        .unwrap();
    server
        .create(scaled_object("api", "api", &scaler.address, 3, json!({})))
        .unwrap();
    // KEDA's annotation works the same as ebb's.
    server.create(deployment("keda", 1)).unwrap();
    server
        .create(json!({
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "keda-cpu", "namespace": NS},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "keda"},
                "maxReplicas": 4}
        }))
        .unwrap();
    server
        .create(scaled_object(
            "keda",
            "keda",
            &scaler.address,
            2,
            json!({
                "annotations": {"scaledobject.keda.sh/transfer-hpa-ownership": "true"}
            }),
        ))
        .unwrap();
    let controller = InProcessController::start(server.client(), test_args("hpa")).await;
    let (_, reason, message) = eventually("api Ready=False", || {
        ready(&server, "api").filter(|r| r.0 == "False")
    })
    .await;
    assert_eq!(reason, "HPAConflict");
    assert!(message.contains("api-cpu"), "names the HPA: {message}");
    eventually("keda scales to 2 despite its HPA", || {
        (replicas(&server, "keda") == Some(2)).then_some(())
    })
    .await;
    assert_eq!(replicas(&server, "api"), Some(1), "a blocked object scaled");
    // Taking over: ebb scales, the HPA stays.
    server
        .merge_patch(
            SO,
            "ScaledObject",
            NS,
            "api",
            &json!({"metadata": {"annotations": {"ebb.dev/take-over-hpa": "true"}}}),
            false,
        )
        .unwrap();
    eventually("api scales to 3 after taking over", || {
        (replicas(&server, "api") == Some(3)).then_some(())
    })
    .await;
    eventually("api Ready=True", || {
        ready(&server, "api").filter(|r| r.0 == "True")
    })
    .await;
    assert!(
        server
            .get("autoscaling/v2", "HorizontalPodAutoscaler", NS, "api-cpu")
            .is_some()
    );
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_puts_the_original_count_back_and_never_hangs_on_a_missing_target() {
    let scaler = example_scaler().await;
    let server = FakeApiServer::start().await;
    let restore = json!({"advanced": {"restoreToOriginalReplicaCount": true}});
    server.create(deployment("restored", 2)).unwrap();
    server
        .create(scaled_object(
            "restored",
            "restored",
            &scaler.address,
            6,
            restore.clone(),
        ))
        .unwrap();
    server.create(deployment("vanished", 1)).unwrap();
    server
        .create(scaled_object(
            "vanished",
            "vanished",
            &scaler.address,
            3,
            restore,
        ))
        .unwrap();
    // Without the flag: no finalizer.
    server.create(deployment("plain", 1)).unwrap();
    server
        .create(scaled_object(
            "plain",
            "plain",
            &scaler.address,
            2,
            json!({}),
        ))
        .unwrap();
    let controller = InProcessController::start(server.client(), test_args("restore")).await;
    let finalized = |name: &str| {
        get(&server, name)
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| f.contains(&json!("ebb.dev/restore-replicas")))
    };
    let original = |name: &str| {
        get(&server, name)
            .pointer("/status/originalReplicaCount")
            .cloned()
    };
    for (name, wanted, was) in [("restored", 6, 2), ("vanished", 3, 1)] {
        eventually(&format!("{name} scaled to {wanted}"), || {
            (replicas(&server, name) == Some(wanted)).then_some(())
        })
        .await;
        eventually(&format!("{name} has the finalizer"), || {
            finalized(name).then_some(())
        })
        .await;
        eventually(&format!("{name} records {was}"), || {
            (original(name) == Some(json!(was))).then_some(())
        })
        .await;
    }
    eventually("plain scaled to 2", || {
        (replicas(&server, "plain") == Some(2)).then_some(())
    })
    .await;
    eventually("plain labelled", || {
        label(&server, "plain").is_some().then_some(())
    })
    .await;
    assert!(!finalized("plain"), "{}", get(&server, "plain"));

    server.delete(SO, "ScaledObject", NS, "restored").unwrap();
    eventually("restored is gone", || {
        server
            .get(SO, "ScaledObject", NS, "restored")
            .is_none()
            .then_some(())
    })
    .await;
    assert_eq!(
        replicas(&server, "restored"),
        Some(2),
        "the original count is back"
    );
    eventually("the label goes with its object", || {
        label(&server, "restored").is_none().then_some(())
    })
    .await;

    server
        .delete("apps/v1", "Deployment", NS, "vanished")
        .unwrap();
    server.delete(SO, "ScaledObject", NS, "vanished").unwrap();
    eventually("vanished is gone though its target is", || {
        server
            .get(SO, "ScaledObject", NS, "vanished")
            .is_none()
            .then_some(())
    })
    .await;
    // Deleting an object without the flag leaves its target as it is.
    server.delete(SO, "ScaledObject", NS, "plain").unwrap();
    eventually("plain is gone", || {
        server
            .get(SO, "ScaledObject", NS, "plain")
            .is_none()
            .then_some(())
    })
    .await;
    assert_eq!(replicas(&server, "plain"), Some(2));
    controller.stop().await;
}
