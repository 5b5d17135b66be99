//! ScaledJob in the cluster, end to end: the real controller against the in-process fake API
//! server (no kube-apiserver can run here; the fake speaks the real HTTP/JSON API and serves
//! batch/v1 Jobs), with a KEDA-only scaler over loopback gRPC whose backlog is a directory of
//! files. There is no Job controller, so the tests move Jobs through their states by writing
//! their status as the Job controller would.
//!
//! "Nothing more happened" is checked after the scaler received more polls, never after a
//! sleep.

#[path = "fake_apiserver/mod.rs"]
mod fake_apiserver;
#[path = "in_process_controller/mod.rs"]
mod in_process_controller;
#[path = "keda_backlog/mod.rs"]
mod keda_backlog;
#[path = "support/mod.rs"]
mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use fake_apiserver::FakeApiServer;
use in_process_controller::{InProcessController, test_args};
use keda_backlog::BacklogScaler;
use serde_json::{Value, json};

const NS: &str = "jobs";

/// The controller under test, with short leases.
async fn start_controller(server: &FakeApiServer, identity: &str) -> InProcessController {
    InProcessController::start(server.client(), test_args(identity)).await
}

async fn eventually<T>(limit: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the scaler received `more` further polls.
async fn polls(scaler: &BacklogScaler, more: u64) {
    let target = scaler.polls() + more;
    eventually(Duration::from_secs(20), "further polls", || {
        (scaler.polls() >= target).then_some(())
    })
    .await;
}

fn scaled_job(name: &str, address: &str, extra: Value) -> Value {
    let mut spec = json!({
        "pollingInterval": 1,
        "jobTargetRef": {
            "backoffLimit": 1,
            "template": {"spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "main", "image": "busybox", "args": ["take-one"]}]
            }}
        },
        "triggers": [{"type": "external", "metadata": {"scalerAddress": address}}]
    });
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
        for (key, value) in extra {
            spec.insert(key.clone(), value.clone());
        }
    }
    json!({
        "apiVersion": "ebb.dev/v1alpha1", "kind": "ScaledJob",
        "metadata": {"name": name, "namespace": NS, "labels": {"team": "orders"}},
        "spec": spec
    })
}

/// The Jobs of ScaledJob `name`, by name.
fn jobs_of(server: &FakeApiServer, name: &str) -> Vec<Value> {
    let mut jobs: Vec<Value> = server
        .list("batch/v1", "Job")
        .into_iter()
        .filter(|job| job.pointer("/metadata/labels/ebb.dev~1scaled-job") == Some(&json!(name)))
        .collect();
    jobs.sort_by_key(|job| job["metadata"]["name"].as_str().unwrap_or("").to_owned());
    jobs
}

fn job_posts(server: &FakeApiServer) -> usize {
    let path = format!("/apis/batch/v1/namespaces/{NS}/jobs");
    server
        .requests()
        .iter()
        .filter(|request| request.method == "POST" && request.path == path)
        .count()
}

/// Writes a Job's status as the Job controller would when it finishes.
fn finish(server: &FakeApiServer, job: &Value, succeeded: bool) {
    let name = job["metadata"]["name"].as_str().unwrap();
    let kind = if succeeded { "Complete" } else { "Failed" };
    let counts = if succeeded {
        json!({"succeeded": 1})
    } else {
        json!({"failed": 2})
    };
    let mut status = json!({
        "conditions": [{"type": kind, "status": "True"}],
        "completionTime": "2026-01-01T00:00:00Z",
    });
    if let (Some(status), Some(counts)) = (status.as_object_mut(), counts.as_object()) {
        status.extend(counts.clone());
    }
    server
        .merge_patch(
            "batch/v1",
            "Job",
            NS,
            name,
            &json!({"status": status}),
            true,
        )
        .unwrap();
}

fn add_items(dir: &Path, first: u32, count: u32) {
    for n in first..first + count {
        std::fs::write(dir.join(format!("item-{n}")), "x").unwrap();
    }
}

fn take_items(dir: &Path, count: usize) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    entries.sort();
    for path in entries.into_iter().take(count) {
        std::fs::remove_file(path).unwrap();
    }
}

struct Setup {
    server: FakeApiServer,
    scaler: BacklogScaler,
    queue: tempfile::TempDir,
}

async fn setup() -> Setup {
    let server = FakeApiServer::start().await;
    let queue = tempfile::tempdir().unwrap();
    let scaler = keda_backlog::start(queue.path().to_path_buf(), 1);
    Setup {
        server,
        scaler,
        queue,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_of_5_creates_5_jobs_at_target_1_owned_and_labelled() {
    let Setup {
        server,
        scaler,
        queue,
    } = setup().await;
    add_items(queue.path(), 0, 5);
    let created = server
        .create(scaled_job("orders", &scaler.address.to_string(), json!({})))
        .unwrap();
    let controller = start_controller(&server, "c1").await;
    eventually(Duration::from_secs(30), "5 Jobs", || {
        (jobs_of(&server, "orders").len() == 5).then_some(())
    })
    .await;
    // The Jobs are pending (no Job controller runs them): later polls add none.
    polls(&scaler, 3).await;
    let jobs = jobs_of(&server, "orders");
    assert_eq!(jobs.len(), 5);
    assert_eq!(job_posts(&server), 5);
    let uid = created["metadata"]["uid"].clone();
    for job in &jobs {
        let owner = &job["metadata"]["ownerReferences"][0];
        assert_eq!(owner["kind"], "ScaledJob");
        assert_eq!(owner["name"], "orders");
        assert_eq!(owner["uid"], uid);
        assert_eq!(owner["controller"], true);
        assert_eq!(job["metadata"]["labels"]["team"], "orders");
        assert_eq!(
            job["spec"]["template"]["spec"]["containers"][0]["args"][0],
            "take-one"
        );
        assert_eq!(job["spec"]["backoffLimit"], 1);
    }
    let status = eventually(Duration::from_secs(10), "status counts", || {
        let object = server.get("ebb.dev/v1alpha1", "ScaledJob", NS, "orders")?;
        (object.pointer("/status/runningJobs") == Some(&json!(5))).then_some(object)
    })
    .await;
    assert_eq!(status["status"]["pendingJobs"], 5, "{status}");
    let active = status["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Active")
        .cloned();
    assert_eq!(active.unwrap()["status"], "True", "{status}");

    // Two Jobs take their items and succeed; two more items arrive: exactly two new Jobs.
    let jobs = jobs_of(&server, "orders");
    take_items(queue.path(), 2);
    finish(&server, &jobs[0], true);
    finish(&server, &jobs[1], true);
    add_items(queue.path(), 5, 2);
    eventually(Duration::from_secs(30), "7 Jobs", || {
        (jobs_of(&server, "orders").len() == 7).then_some(())
    })
    .await;
    polls(&scaler, 3).await;
    assert_eq!(jobs_of(&server, "orders").len(), 7);
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_limits_hold() {
    let Setup {
        server,
        scaler,
        queue,
    } = setup().await;
    add_items(queue.path(), 0, 6);
    server
        .create(scaled_job(
            "history",
            &scaler.address.to_string(),
            json!({"successfulJobsHistoryLimit": 2, "failedJobsHistoryLimit": 1}),
        ))
        .unwrap();
    let controller = start_controller(&server, "c1").await;
    eventually(Duration::from_secs(30), "6 Jobs", || {
        (jobs_of(&server, "history").len() == 6).then_some(())
    })
    .await;
    take_items(queue.path(), 6);
    let jobs = jobs_of(&server, "history");
    for (index, job) in jobs.iter().enumerate() {
        finish(&server, job, index < 4);
    }
    // 4 succeeded, 2 failed: 2 and 1 are kept.
    eventually(Duration::from_secs(30), "history trimmed to 2 + 1", || {
        (jobs_of(&server, "history").len() == 3).then_some(())
    })
    .await;
    polls(&scaler, 2).await;
    let kept = jobs_of(&server, "history");
    let kinds: Vec<&str> = kept
        .iter()
        .map(|job| {
            job["status"]["conditions"][0]["type"]
                .as_str()
                .unwrap_or("")
        })
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "Complete").count(),
        2,
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == "Failed").count(),
        1,
        "{kinds:?}"
    );
    assert_eq!(job_posts(&server), 6, "no new Jobs for an empty backlog");
    let deletes = server
        .requests()
        .iter()
        .filter(|request| request.method == "DELETE")
        .count();
    assert_eq!(deletes, 3);
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_scaler_creates_no_jobs() {
    let Setup {
        server,
        scaler,
        queue,
    } = setup().await;
    // The scaler answers UNAVAILABLE while its queue cannot be read.
    let queue_path = queue.path().to_path_buf();
    drop(queue);
    server
        .create(scaled_job(
            "failing",
            &scaler.address.to_string(),
            json!({"minReplicaCount": 0}),
        ))
        .unwrap();
    let controller = start_controller(&server, "c1").await;
    eventually(Duration::from_secs(30), "Ready=False", || {
        let object = server.get("ebb.dev/v1alpha1", "ScaledJob", NS, "failing")?;
        let ready = object["status"]["conditions"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == "Ready")?
            .clone();
        (ready["status"] == "False" && ready["reason"] == "TriggerFailing").then_some(())
    })
    .await;
    polls(&scaler, 3).await;
    assert!(!queue_path.exists());
    assert_eq!(job_posts(&server), 0, "a failing scaler created Jobs");
    assert!(jobs_of(&server, "failing").is_empty());
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_restart_creates_no_duplicates() {
    let Setup {
        server,
        scaler,
        queue,
    } = setup().await;
    add_items(queue.path(), 0, 4);
    server
        .create(scaled_job(
            "restart",
            &scaler.address.to_string(),
            json!({}),
        ))
        .unwrap();
    let first = start_controller(&server, "c1").await;
    eventually(Duration::from_secs(30), "4 Jobs", || {
        (jobs_of(&server, "restart").len() == 4).then_some(())
    })
    .await;
    first.stop().await;
    let second = start_controller(&server, "c2").await;
    // The new controller polls (the backlog is still 4) and counts the 4 Jobs.
    polls(&scaler, 4).await;
    assert_eq!(jobs_of(&server, "restart").len(), 4);
    assert_eq!(
        job_posts(&server),
        4,
        "the restarted controller created Jobs again"
    );
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollout_default_replaces_running_jobs_and_gradual_leaves_them() {
    let Setup {
        server,
        scaler,
        queue,
    } = setup().await;
    add_items(queue.path(), 0, 2);
    let address = scaler.address.to_string();
    server
        .create(scaled_job("default", &address, json!({})))
        .unwrap();
    server
        .create(scaled_job(
            "gradual",
            &address,
            json!({"rollout": {"strategy": "gradual"}}),
        ))
        .unwrap();
    let controller = start_controller(&server, "c1").await;
    eventually(Duration::from_secs(30), "2 Jobs each", || {
        (jobs_of(&server, "default").len() == 2 && jobs_of(&server, "gradual").len() == 2)
            .then_some(())
    })
    .await;
    let before_default: Vec<Value> = jobs_of(&server, "default")
        .iter()
        .map(|job| job["metadata"]["name"].clone())
        .collect();
    let before_gradual = jobs_of(&server, "gradual");
    let new_template = json!({"spec": {"jobTargetRef": {"template": {"spec": {
        "restartPolicy": "Never",
        "containers": [{"name": "main", "image": "busybox", "args": ["take-one", "--v2"]}]
    }}}}});
    for name in ["default", "gradual"] {
        server
            .merge_patch(
                "ebb.dev/v1alpha1",
                "ScaledJob",
                NS,
                name,
                &new_template,
                false,
            )
            .unwrap();
    }
    // default: the two old Jobs are deleted and two from the new template replace them.
    eventually(Duration::from_secs(30), "default replaced its Jobs", || {
        let jobs = jobs_of(&server, "default");
        (jobs.len() == 2
            && jobs.iter().all(|job| {
                job["spec"]["template"]["spec"]["containers"][0]["args"][1] == "--v2"
                    && !before_default.contains(&job["metadata"]["name"])
            }))
        .then_some(())
    })
    .await;
    // gradual: the old Jobs stay and count, so nothing new starts.
    polls(&scaler, 3).await;
    assert_eq!(jobs_of(&server, "gradual"), before_gradual);
    controller.stop().await;
}
