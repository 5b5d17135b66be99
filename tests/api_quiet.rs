//! A quiet neighbour for the API server (issue #17): in steady state the controller reads
//! replica counts from its watch of the target kind, not from `GET …/scale`, and writes status
//! only for changes that matter. Counted against the fake API server's request log; "nothing
//! was written" is judged after the scaler has answered several more polls, never by a sleep.

#[path = "fake_apiserver/mod.rs"]
mod fake_apiserver;
#[path = "in_process_controller/mod.rs"]
mod in_process_controller;
#[path = "runtime_support/mod.rs"]
mod runtime_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use fake_apiserver::{FakeApiServer, InjectedFailure, RecordedRequest};
use in_process_controller::{InProcessController, test_args};
use runtime_support::{Values, start_scaler};
use serde_json::{Value, json};

const NS: &str = "quiet";

fn deployment(name: &str, replicas: i64) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "main", "image": "busybox"}]}
            }
        }
    })
}

fn scaled_object(name: &str, scaler: std::net::SocketAddr) -> Value {
    json!({
        "apiVersion": "ebb.dev/v1alpha1", "kind": "ScaledObject",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "scaleTargetRef": {"name": name},
            "pollingInterval": 1, "minReplicaCount": 0, "maxReplicaCount": 20,
            "triggers": [{
                "name": "q", "type": "controlled", "metadata": {"key": name},
                "scaler": {"address": scaler.to_string(), "push": false}
            }]
        }
    })
}

async fn eventually<T>(limit: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(found) = check() {
            return found;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the scaler answered `more` further polls of `key`.
async fn polls(values: &Values, key: &str, more: u64) {
    let target = values.measures(key) + more;
    eventually(Duration::from_secs(30), "more polls", || {
        (values.measures(key) >= target).then_some(())
    })
    .await;
}

fn is_write(request: &RecordedRequest) -> bool {
    request.method != "GET"
}

fn is_scale_read(request: &RecordedRequest) -> bool {
    request.method == "GET" && request.path.ends_with("/scale")
}

fn status_of(server: &FakeApiServer, name: &str) -> Value {
    server
        .get("ebb.dev/v1alpha1", "ScaledObject", NS, name)
        .map(|object| object["status"].clone())
        .unwrap_or(Value::Null)
}

fn describe(requests: &[RecordedRequest]) -> Vec<String> {
    requests
        .iter()
        .map(|r| format!("{} {} -> {}", r.method, r.path, r.status))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steady_object_with_changing_readings_makes_no_write_and_no_scale_read() {
    noise_then_a_scale_change(Duration::from_secs(3600)).await;
}

/// With a readings interval of 1 s the readings are due on almost every poll of the noise
/// below: values that move 14 % but ask for the same replica count are still not written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readings_noise_inside_the_tolerance_is_not_written_even_when_due() {
    noise_then_a_scale_change(Duration::from_secs(1)).await;
}

/// Steady at 3 replicas, six polls of readings noise (no write, no `/scale` read), then a
/// change of decision that is written at once.
async fn noise_then_a_scale_change(readings_interval: Duration) {
    let server = FakeApiServer::start().await;
    server.create(deployment("web", 1)).unwrap();
    let values = Arc::new(Values::default());
    // Off the centre of the tolerance band, so that the noise below moves up to 18 % from
    // the stored value while every value still asks for 3 replicas.
    values.set("web", 2.75);
    let scaler = start_scaler(&values, false).await;
    let mut args = test_args("quiet");
    args.leader_elect = false;
    args.status_readings_interval = readings_interval;
    let controller = InProcessController::start(server.client(), args).await;
    server.create(scaled_object("web", scaler.address)).unwrap();

    // 1 → 3 replicas (target 1 per replica), written with its status.
    eventually(
        Duration::from_secs(60),
        "3 replicas and their status",
        || {
            let status = status_of(&server, "web");
            (server.deployment_replicas(NS, "web") == Some(3) && status["desiredReplicas"] == 3)
                .then_some(())
        },
    )
    .await;
    // Let the first poll's write settle, then watch a steady stretch.
    polls(&values, "web", 2).await;
    server.clear_requests();
    // Readings change on every poll, always within the HPA's tolerance of 3 replicas, so
    // the decision stays 3 while the values in status go stale.
    for value in [3.25, 2.8, 3.2, 2.9, 3.25, 3.15] {
        values.set("web", value);
        polls(&values, "web", 1).await;
    }
    polls(&values, "web", 1).await;
    let requests = server.requests();
    let writes: Vec<RecordedRequest> = requests.iter().filter(|r| is_write(r)).cloned().collect();
    assert!(
        writes.is_empty(),
        "writes of readings noise (readings interval {readings_interval:?}): {:?}",
        describe(&writes)
    );
    let scale_reads: Vec<RecordedRequest> = requests
        .iter()
        .filter(|r| is_scale_read(r))
        .cloned()
        .collect();
    assert!(
        scale_reads.is_empty(),
        "GET /scale while the Deployment watch is up: {:?}",
        describe(&scale_reads)
    );
    assert_eq!(status_of(&server, "web")["desiredReplicas"], 3);

    // A replica change is written at once: the next poll scales and writes the status.
    server.clear_requests();
    let before = values.measures("web");
    // 3 → 4 stays within the scale-up policy (the first scale-up is less than 15 s ago).
    values.set("web", 4.0);
    eventually(Duration::from_secs(60), "4 replicas in status", || {
        (status_of(&server, "web")["desiredReplicas"] == 4).then_some(())
    })
    .await;
    assert_eq!(server.deployment_replicas(NS, "web"), Some(4));
    let polls_taken = values.measures("web") - before;
    assert!(
        polls_taken <= 2,
        "the change took {polls_taken} polls to reach the status"
    );
    let requests = server.requests();
    let scale_writes = requests
        .iter()
        .filter(|r| r.method == "PATCH" && r.path.ends_with("/deployments/web/scale"))
        .collect::<Vec<_>>();
    assert_eq!(scale_writes.len(), 1, "{:?}", describe(&requests));
    // The write carries the resourceVersion its count was read at.
    let body = scale_writes[0].body.clone().unwrap_or_default();
    assert!(
        body.pointer("/metadata/resourceVersion").is_some(),
        "scale write without a resourceVersion: {body}"
    );
    assert!(
        !requests.iter().any(is_scale_read),
        "{:?}",
        describe(&requests)
    );
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forbidden_watch_falls_back_to_reading_scale_and_says_so() {
    let server = FakeApiServer::start().await;
    server.create(deployment("web", 2)).unwrap();
    // RBAC without list/watch on Deployments: every list answers 403.
    server.inject_failure(InjectedFailure {
        method: "GET".parse().unwrap(),
        path_suffix: "/deployments".into(),
        code: 403,
        times: 100_000,
    });
    let values = Arc::new(Values::default());
    values.set("web", 2.0);
    let scaler = start_scaler(&values, false).await;
    let mut args = test_args("direct");
    args.leader_elect = false;
    let controller = InProcessController::start(server.client(), args).await;
    server.create(scaled_object("web", scaler.address)).unwrap();
    let status = eventually(
        Duration::from_secs(60),
        "replicasReadFrom in status",
        || {
            let status = status_of(&server, "web");
            (status["replicasReadFrom"] == "ScaleSubresource").then_some(status)
        },
    )
    .await;
    assert_eq!(status["desiredReplicas"], 2, "{status}");
    server.clear_requests();
    polls(&values, "web", 3).await;
    let reads = server
        .requests()
        .iter()
        .filter(|r| is_scale_read(r))
        .count();
    assert!(reads >= 2, "expected a GET /scale per poll, saw {reads}");
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_writer_is_detected_not_overwritten() {
    let server = FakeApiServer::start().await;
    server.create(deployment("web", 1)).unwrap();
    // Every patch of the scale is refused once with 409, as when someone else wrote first.
    server.inject_failure(InjectedFailure {
        method: "PATCH".parse().unwrap(),
        path_suffix: "/scale".into(),
        code: 409,
        times: 1,
    });
    let values = Arc::new(Values::default());
    values.set("web", 4.0);
    let scaler = start_scaler(&values, false).await;
    let mut args = test_args("conflict");
    args.leader_elect = false;
    let controller = InProcessController::start(server.client(), args).await;
    server.create(scaled_object("web", scaler.address)).unwrap();
    // The log entry is added when the answer is sent, after the store changed: wait for it.
    let requests = eventually(
        Duration::from_secs(60),
        "a write after the conflict",
        || {
            let requests = server.requests();
            requests
                .iter()
                .any(|r| r.method == "PATCH" && r.path.ends_with("/scale") && r.status == 200)
                .then_some(requests)
        },
    )
    .await;
    assert_eq!(server.deployment_replicas(NS, "web"), Some(4));
    let conflicted = requests
        .iter()
        .position(|r| r.method == "PATCH" && r.path.ends_with("/scale") && r.status == 409)
        .expect("the injected conflict");
    // After the conflict the count is read again before the next write.
    let rest = &requests[conflicted + 1..];
    let reread = rest
        .iter()
        .position(is_scale_read)
        .expect("a read after the conflict");
    let rewrite = rest
        .iter()
        .position(|r| r.method == "PATCH" && r.path.ends_with("/scale"))
        .unwrap_or_else(|| panic!("no write after the conflict: {:?}", describe(&requests)));
    assert!(reread < rewrite, "{:?}", describe(&requests));
    controller.stop().await;
}
