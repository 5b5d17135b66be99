//! The exact API calls of the controller's Kubernetes adapters, checked against the requests
//! the fake API server recorded (ApiServerVerifier style): `/scale` reads and writes, status
//! patches (and the writes that are skipped), Events, and the leader Lease.

#[path = "fake_apiserver/mod.rs"]
mod fake_apiserver;

use std::time::Duration;

use ebb::kubernetes::leader::{LeaderElector, LeaseTiming};
use ebb::kubernetes::status::KubeStatusSink;
use ebb::kubernetes::target::{TargetKindError, TargetResolver};
use ebb::runtime::{EventKind, ObjectEvent, ObjectKey, ScaleTarget, StatusSink, TargetError};
use ebb::spec::{ScaledObject, ScaledObjectStatus};
use fake_apiserver::{FakeApiServer, ResourceType, ScalePaths};
use serde_json::json;

fn deployment(name: &str, replicas: i64) -> serde_json::Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "ns"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}})
}

/// `GET …/scale` requests among `requests`.
fn scale_reads(requests: &[fake_apiserver::RecordedRequest]) -> usize {
    requests
        .iter()
        .filter(|request| request.method == "GET" && request.path.ends_with("/scale"))
        .count()
}

#[tokio::test]
async fn scale_target_reads_from_the_kind_watch_and_writes_the_scale_subresource() {
    let server = FakeApiServer::start().await;
    server.create(deployment("web", 2)).unwrap();
    let resolver = TargetResolver::new(server.client());
    let resource = resolver.resource("apps/v1", "Deployment").await.unwrap();
    let target = resolver.target(&resource, "ns", "web");
    // Before the kind's watch has listed, one read of the subresource answers.
    assert_eq!(target.current_replicas().await, Ok(2));
    // Once it has, polls are answered from the watch: no request per poll.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        server.clear_requests();
        assert_eq!(target.current_replicas().await, Ok(2));
        if scale_reads(&server.requests()) == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the watch never answered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.clear_requests();
    target.set_replicas(4).await.unwrap();
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let write = &requests[0];
    assert_eq!(
        (write.method.as_str(), write.path.as_str()),
        ("PATCH", "/apis/apps/v1/namespaces/ns/deployments/web/scale")
    );
    assert_eq!(
        write.content_type.as_deref(),
        Some("application/merge-patch+json")
    );
    // The write carries the version the count was read at (optimistic concurrency).
    let body = write.body.clone().expect("a patch body");
    assert_eq!(body["spec"], json!({"replicas": 4}));
    assert!(body["metadata"]["resourceVersion"].is_string(), "{body}");
    assert_eq!(
        write.query.get("fieldManager").map(String::as_str),
        Some("ebb")
    );
    assert_eq!(server.deployment_replicas("ns", "web"), Some(4));
    // The count just written is remembered: the next poll's read makes no request.
    server.clear_requests();
    assert_eq!(target.current_replicas().await, Ok(4));
    assert_eq!(
        scale_reads(&server.requests()),
        0,
        "{:?}",
        server.requests()
    );
    // A second target on the same kind shares the watch: no read either.
    let again = resolver.target(&resource, "ns", "web");
    assert_eq!(again.current_replicas().await, Ok(4));
    assert_eq!(
        scale_reads(&server.requests()),
        0,
        "{:?}",
        server.requests()
    );
    // A second resolution of the kind is answered from the cache: no discovery call.
    server.clear_requests();
    resolver.resource("apps/v1", "Deployment").await.unwrap();
    assert!(server.requests().is_empty());
    let missing = resolver.target(&resource, "ns", "nope");
    assert!(matches!(
        missing.current_replicas().await,
        Err(TargetError::NotFound(_))
    ));
}

#[tokio::test]
async fn any_kind_with_a_scale_subresource_is_a_target_and_others_are_refused() {
    let mut types = ResourceType::defaults();
    types.push(ResourceType {
        status_subresource: true,
        scale: Some(ScalePaths {
            spec_replicas: "/spec/workers".into(),
            status_replicas: "/status/workers".into(),
            selector: None,
        }),
        ..ResourceType::new("example.com", "v1", "workerpools", "WorkerPool")
    });
    let server = FakeApiServer::start_with(types, Duration::from_secs(1)).await;
    server
        .create(json!({"apiVersion": "example.com/v1", "kind": "WorkerPool", "metadata": {"name": "pool", "namespace": "ns"}, "spec": {"workers": 3}}))
        .unwrap();
    let resolver = TargetResolver::new(server.client());
    let resource = resolver
        .resource("example.com/v1", "WorkerPool")
        .await
        .unwrap();
    let target = resolver.target(&resource, "ns", "pool");
    assert_eq!(target.current_replicas().await, Ok(3));
    target.set_replicas(7).await.unwrap();
    let pool = server
        .get("example.com/v1", "WorkerPool", "ns", "pool")
        .unwrap();
    assert_eq!(pool["spec"]["workers"], 7);
    assert!(matches!(
        resolver.resource("v1", "ConfigMap").await,
        Err(TargetKindError::NotScalable { .. })
    ));
    assert!(matches!(
        resolver.resource("example.com/v1", "Nothing").await,
        Err(TargetKindError::Unknown { .. })
    ));
}

fn scaled_object(name: &str) -> serde_json::Value {
    json!({"apiVersion": "ebb.dev/v1alpha1", "kind": "ScaledObject", "metadata": {"name": name, "namespace": "ns"},
        "spec": {"scaleTargetRef": {"name": "web"}, "triggers": []}})
}

fn status(desired: u32) -> std::sync::Arc<ebb::runtime::SharedStatus> {
    shared(ScaledObjectStatus {
        desired_replicas: Some(desired),
        current_replicas: Some(1),
        ..ScaledObjectStatus::default()
    })
}

fn shared(status: ScaledObjectStatus) -> std::sync::Arc<ebb::runtime::SharedStatus> {
    std::sync::Arc::new(ebb::runtime::SharedStatus::new(status))
}

fn status_patches(server: &FakeApiServer) -> Vec<fake_apiserver::RecordedRequest> {
    server
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH" && r.path.ends_with("/status"))
        .collect()
}

/// Waits until every status published so far has been written (or skipped): the sink's own
/// account of pending and in-flight writes, not a guessed delay.
async fn settle(sink: &KubeStatusSink) {
    sink.flush(Duration::from_secs(10)).await;
}

#[tokio::test]
async fn status_is_patched_only_when_it_changes() {
    let server = FakeApiServer::start().await;
    let created = server.create(scaled_object("so")).unwrap();
    let sink = KubeStatusSink::start(server.client(), "test".into(), 4);
    let object: ScaledObject = serde_json::from_value(created).unwrap();
    sink.observe(&object);
    let key = ObjectKey::new("ns", "so");
    server.clear_requests();
    sink.publish_status(&key, &status(3)).await;
    settle(&sink).await;
    let patches = status_patches(&server);
    assert_eq!(patches.len(), 1);
    assert_eq!(
        patches[0].path,
        "/apis/ebb.dev/v1alpha1/namespaces/ns/scaledobjects/so/status"
    );
    assert_eq!(
        patches[0].content_type.as_deref(),
        Some("application/merge-patch+json")
    );
    assert_eq!(
        patches[0].body,
        Some(json!({"status": {"desiredReplicas": 3, "currentReplicas": 1}}))
    );
    // The same status again: nothing is sent.
    sink.publish_status(&key, &status(3)).await;
    settle(&sink).await;
    assert_eq!(status_patches(&server).len(), 1);
    // What the server holds (seen on the watch after a restart) is not written again.
    let stored: ScaledObject = serde_json::from_value(
        server
            .get("ebb.dev/v1alpha1", "ScaledObject", "ns", "so")
            .unwrap(),
    )
    .unwrap();
    let fresh = KubeStatusSink::start(server.client(), "test".into(), 4);
    fresh.observe(&stored);
    fresh.publish_status(&key, &status(3)).await;
    settle(&fresh).await;
    assert_eq!(status_patches(&server).len(), 1);
    // A field that disappears is removed with null.
    fresh
        .publish_status(
            &key,
            &shared(ScaledObjectStatus {
                desired_replicas: Some(0),
                ..ScaledObjectStatus::default()
            }),
        )
        .await;
    settle(&fresh).await;
    let last = status_patches(&server).pop().unwrap();
    assert_eq!(
        last.body,
        Some(json!({"status": {"desiredReplicas": 0, "currentReplicas": null}}))
    );
    let stored = server
        .get("ebb.dev/v1alpha1", "ScaledObject", "ns", "so")
        .unwrap();
    assert_eq!(stored["status"], json!({"desiredReplicas": 0}));
}

#[tokio::test]
async fn bursts_of_status_changes_are_coalesced() {
    let server = FakeApiServer::start().await;
    server.create(scaled_object("so")).unwrap();
    let sink = KubeStatusSink::start(server.client(), "test".into(), 1);
    let key = ObjectKey::new("ns", "so");
    server.clear_requests();
    for desired in 1..=200 {
        sink.publish_status(&key, &status(desired)).await;
    }
    settle(&sink).await;
    let patches = status_patches(&server).len();
    eprintln!("200 status changes in a burst became {patches} writes");
    assert!(patches < 200, "{patches} writes");
    let stored = server
        .get("ebb.dev/v1alpha1", "ScaledObject", "ns", "so")
        .unwrap();
    assert_eq!(
        stored["status"]["desiredReplicas"], 200,
        "the last status wins"
    );
}

#[tokio::test]
async fn events_are_created_with_the_object_reference() {
    let server = FakeApiServer::start().await;
    let created = server.create(scaled_object("so")).unwrap();
    let sink = KubeStatusSink::start(server.client(), "replica-1".into(), 4);
    sink.observe(&serde_json::from_value(created.clone()).unwrap());
    let key = ObjectKey::new("ns", "so");
    let event = ObjectEvent {
        kind: EventKind::Normal,
        reason: ebb::runtime::REASON_SCALED,
        message: "scaled from 0 to 3: active".into(),
    };
    sink.record_event(&key, &event).await;
    sink.record_event(&key, &event).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let events = loop {
        let events = server.list("events.k8s.io/v1", "Event");
        if events.len() == 2 || std::time::Instant::now() > deadline {
            break events;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(events.len(), 2, "each scale change is its own Event");
    let first = &events[0];
    assert_eq!(first["reason"], "Scaled");
    assert_eq!(first["type"], "Normal");
    assert_eq!(first["note"], "scaled from 0 to 3: active");
    assert_eq!(first["reportingInstance"], "replica-1");
    assert_eq!(first["regarding"]["uid"], created["metadata"]["uid"]);
    assert_eq!(first["regarding"]["kind"], "ScaledObject");
    assert!(first["eventTime"].is_string());
    let posts: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    assert!(
        posts
            .iter()
            .all(|r| r.path == "/apis/events.k8s.io/v1/namespaces/ns/events")
    );
}

fn timing(lease: u64) -> LeaseTiming {
    LeaseTiming {
        lease_duration: Duration::from_millis(lease),
        renew_interval: Duration::from_millis(100),
        retry_interval: Duration::from_millis(50),
    }
}

#[tokio::test]
async fn one_candidate_leads_and_another_takes_over_only_after_expiry() {
    let server = FakeApiServer::start().await;
    let mut a = LeaderElector::new(server.client(), "ebb-system", "lock", "a", timing(1000));
    let mut b = LeaderElector::new(server.client(), "ebb-system", "lock", "b", timing(1000));
    assert!(a.try_acquire_or_renew().await.unwrap());
    assert!(!b.try_acquire_or_renew().await.unwrap());
    assert!(a.try_acquire_or_renew().await.unwrap(), "the holder renews");
    // b first sees a's renewed record now, and must wait a full lease duration from here.
    assert!(!b.try_acquire_or_renew().await.unwrap());
    let seen = std::time::Instant::now();
    let mut took_over = None;
    while took_over.is_none() {
        if b.try_acquire_or_renew().await.unwrap() {
            took_over = Some(seen.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        took_over.unwrap() >= Duration::from_millis(1000),
        "took over after {took_over:?}"
    );
    let lease = server
        .get("coordination.k8s.io/v1", "Lease", "ebb-system", "lock")
        .unwrap();
    assert_eq!(lease["spec"]["holderIdentity"], "b");
    assert_eq!(lease["spec"]["leaseTransitions"], 1);
    // a lost it: its renewal fails.
    assert!(!a.try_acquire_or_renew().await.unwrap());
    // Releasing hands over at once.
    b.release().await;
    assert!(a.try_acquire_or_renew().await.unwrap());
    // Every takeover wrote with the resourceVersion it read (optimistic concurrency).
    let puts: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.method == "PUT")
        .collect();
    assert!(puts.iter().all(|r| {
        r.body
            .as_ref()
            .unwrap()
            .pointer("/metadata/resourceVersion")
            .is_some()
    }));
}

#[tokio::test]
async fn a_racing_write_loses_with_a_conflict() {
    let server = FakeApiServer::start().await;
    let mut a = LeaderElector::new(server.client(), "ebb-system", "lock", "a", timing(100));
    assert!(a.try_acquire_or_renew().await.unwrap());
    // Another writer changes the lease between a's read and write.
    server.inject_failure(fake_apiserver::InjectedFailure {
        method: http::Method::PUT,
        path_suffix: "/leases/lock".into(),
        code: 409,
        times: 1,
    });
    assert!(
        !a.try_acquire_or_renew().await.unwrap(),
        "a conflict means not leading"
    );
    assert!(a.try_acquire_or_renew().await.unwrap());
}
