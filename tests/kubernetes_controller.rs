//! End-to-end tests of the Kubernetes controller: the real controller code (leader election,
//! watch, resolution, scale loops, `/scale` writes, status, Events) against the in-process
//! fake API server, which speaks the real HTTP/JSON API over TCP (no kube-apiserver can run on
//! the test machines), with real scaler processes over loopback gRPC. The engine's decisions
//! have their own tests; these check the Kubernetes side end to end.

#[path = "fake_apiserver/mod.rs"]
mod fake_apiserver;
#[path = "support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ebb::kubernetes::{ControllerArgs, run_with_client};
use fake_apiserver::FakeApiServer;
use serde_json::{Value, json};
use tokio::process::{Child, Command};

const NS: &str = "apps";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "nothing listens on port {port}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Starts a scaler binary listening on 127.0.0.1:`port`.
async fn start_scaler(package: &str, bin: &str, port: u16) -> Child {
    let path = support::binary(package, bin);
    let child = Command::new(path)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .kill_on_drop(true)
        .spawn()
        .expect("start scaler");
    wait_for_port(port).await;
    child
}

async fn example_scaler(port: u16) -> Child {
    start_scaler("ebb-example-scaler", "ebb-example-scaler", port).await
}

struct Controller {
    task: tokio::task::JoinHandle<Result<(), ebb::kubernetes::ControllerError>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    telemetry: SocketAddr,
}

impl Controller {
    async fn start(server: &FakeApiServer, identity: &str) -> Self {
        Self::start_with(server, identity, Duration::from_secs(2)).await
    }

    /// `info_timeout`: how long the controller waits for a scaler's GetInfo.
    async fn start_with(server: &FakeApiServer, identity: &str, info_timeout: Duration) -> Self {
        let args = ControllerArgs {
            info_timeout,
            identity: Some(identity.to_owned()),
            namespace: "ebb-system".into(),
            lease_duration: Duration::from_secs(3),
            lease_renew_interval: Duration::from_millis(500),
            lease_retry_interval: Duration::from_millis(200),
            resync_interval: Duration::from_secs(600),
            ..ControllerArgs::default()
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let telemetry = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(run_with_client(
            server.client(),
            args,
            listener,
            async move {
                let _ = stopped.await;
            },
        ));
        Self {
            task,
            stop: Some(stop),
            telemetry,
        }
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let result = tokio::time::timeout(Duration::from_secs(30), &mut self.task).await;
        result.expect("controller stops in time").unwrap().unwrap();
    }
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

fn deployment(name: &str, replicas: i64, env: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "main", "image": "busybox", "env": env}]}
            }
        }
    })
}

fn scaled_object(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "ebb.dev/v1alpha1", "kind": "ScaledObject", "metadata": {"name": name, "namespace": NS}, "spec": spec})
}

/// No scale-down stabilization (the HPA default holds replicas for 300 s).
fn fast_scale_down() -> Value {
    json!({"horizontalPodAutoscalerConfig": {"behavior": {"scaleDown": {"stabilizationWindowSeconds": 0}}}})
}

fn write_value(path: &Path, value: f64) {
    let temporary = path.with_extension("tmp");
    std::fs::write(&temporary, value.to_string()).unwrap();
    std::fs::rename(&temporary, path).unwrap();
}

fn condition(object: &Value, kind: &str) -> Option<(String, String)> {
    object
        .pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
        .map(|c| {
            (
                c["status"].as_str().unwrap_or("").to_owned(),
                c["reason"].as_str().unwrap_or("").to_owned(),
            )
        })
}

fn scaled(server: &FakeApiServer, name: &str) -> Value {
    server
        .get("ebb.dev/v1alpha1", "ScaledObject", NS, name)
        .unwrap_or(Value::Null)
}

fn events_for(server: &FakeApiServer, name: &str) -> Vec<Value> {
    server
        .list("events.k8s.io/v1", "Event")
        .into_iter()
        .filter(|e| e.pointer("/regarding/name").and_then(Value::as_str) == Some(name))
        .collect()
}

fn scale_writes(server: &FakeApiServer, name: &str) -> usize {
    let path = format!("/apis/apps/v1/namespaces/{NS}/deployments/{name}/scale");
    server
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH" && r.path == path)
        .count()
}

async fn http_get(address: SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let code = response
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, response)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_scales_zero_to_n_and_draining_scales_back_after_cooldown() {
    let server = FakeApiServer::start().await;
    let port = free_port();
    let _scaler = example_scaler(port).await;
    let dir = tempfile::tempdir().unwrap();
    let value_file = dir.path().join("backlog");
    write_value(&value_file, 0.0);
    // KEDA's form, with the value file's path coming from the target's env (xFromEnv).
    server
        .create(deployment(
            "worker",
            0,
            json!([{"name": "BACKLOG_FILE", "value": value_file.to_str().unwrap()}]),
        ))
        .unwrap();
    server
        .create(scaled_object("worker", json!({
            "scaleTargetRef": {"name": "worker"},
            "pollingInterval": 1, "cooldownPeriod": 2, "minReplicaCount": 0, "maxReplicaCount": 10,
            "advanced": fast_scale_down(),
            "triggers": [{"type": "external", "name": "backlog", "metadata": {
                "scalerAddress": format!("127.0.0.1:{port}"), "valueFileFromEnv": "BACKLOG_FILE", "target": "2"
            }}]
        })))
        .unwrap();
    let controller = Controller::start(&server, "replica-a").await;
    let ready = eventually(Duration::from_secs(30), "Ready=True", || {
        condition(&scaled(&server, "worker"), "Ready").filter(|(s, _)| s == "True")
    })
    .await;
    assert_eq!(ready.0, "True");
    assert_eq!(
        server.deployment_replicas(NS, "worker"),
        Some(0),
        "nothing waits, nothing runs"
    );

    write_value(&value_file, 9.0);
    eventually(Duration::from_secs(30), "scale 0 -> 5", || {
        (server.deployment_replicas(NS, "worker") == Some(5)).then_some(())
    })
    .await;
    // Status follows (written asynchronously, coalesced).
    let object = eventually(Duration::from_secs(10), "status desiredReplicas 5", || {
        let object = scaled(&server, "worker");
        (object.pointer("/status/desiredReplicas") == Some(&json!(5))).then_some(object)
    })
    .await;
    assert_eq!(condition(&object, "Active").unwrap().0, "True", "{object}");
    assert!(object.pointer("/status/lastActiveTime").is_some());

    write_value(&value_file, 0.0);
    eventually(
        Duration::from_secs(30),
        "scale back to 0 after cooldown",
        || (server.deployment_replicas(NS, "worker") == Some(0)).then_some(()),
    )
    .await;
    // Every scale change is an Event carrying the engine's reason.
    let scaled_events: Vec<Value> = eventually(Duration::from_secs(10), "Scaled events", || {
        let events: Vec<Value> = events_for(&server, "worker")
            .into_iter()
            .filter(|e| e["reason"] == "Scaled")
            .collect();
        (events.len() >= 2).then_some(events)
    })
    .await;
    for event in &scaled_events {
        assert_eq!(event["type"], "Normal");
        assert!(!event["note"].as_str().unwrap_or("").is_empty(), "{event}");
        assert_eq!(event["reportingController"], "ebb.dev/controller");
    }
    // The /scale subresource was written only on changes: 0->5 (maybe via steps) and ->0.
    let writes = scale_writes(&server, "worker");
    assert!((2..=6).contains(&writes), "{writes} scale writes");
    // Telemetry.
    let (code, _) = http_get(controller.telemetry, "/healthz").await;
    assert_eq!(code, 200);
    let (code, _) = http_get(controller.telemetry, "/readyz").await;
    assert_eq!(code, 200);
    let (code, metrics) = http_get(controller.telemetry, "/metrics").await;
    assert_eq!(code, 200);
    assert!(metrics.contains("# EOF"), "OpenMetrics text");
    // The lease names this replica.
    let lease = server
        .get(
            "coordination.k8s.io/v1",
            "Lease",
            "ebb-system",
            "ebb-controller",
        )
        .unwrap();
    assert_eq!(lease["spec"]["holderIdentity"], "replica-a");
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_objects_get_ready_false_and_the_watch_goes_on() {
    let server = FakeApiServer::start().await;
    let port = free_port();
    let _scaler = example_scaler(port).await;
    let address = format!("127.0.0.1:{port}");
    server.create(deployment("web", 1, json!([]))).unwrap();
    let trigger = |metadata: Value| json!([{"name": "t", "scaler": {"address": address}, "metadata": metadata}]);
    let controller = Controller::start(&server, "replica-a").await;
    server
        .create(scaled_object(
            "min-above-max",
            json!({
                "scaleTargetRef": {"name": "web"}, "minReplicaCount": 5, "maxReplicaCount": 2,
                "triggers": trigger(json!({"value": "1"}))
            }),
        ))
        .unwrap();
    // Stored despite a schema violation (as with an older CRD); it cannot be decoded.
    server
        .create(scaled_object("undecodable", json!({
            "scaleTargetRef": {"name": "web-undecodable"}, "maxReplicaCount": "lots", "triggers": trigger(json!({"value": "1"}))
        })))
        .unwrap();
    // Metadata the scaler's GetInfo schema rejects: target must be a number.
    server
        .create(scaled_object("bad-metadata", json!({
            "scaleTargetRef": {"name": "web-bad-metadata"}, "triggers": trigger(json!({"value": "1", "target": "many"}))
        })))
        .unwrap();
    server
        .create(scaled_object("bad-address", json!({
            "scaleTargetRef": {"name": "web-bad-address"},
            "triggers": [{"name": "t", "scaler": {"address": "no port here"}, "metadata": {"value": "1"}}]
        })))
        .unwrap();
    server
        .create(scaled_object("missing-auth", json!({
            "scaleTargetRef": {"name": "web-missing-auth"},
            "triggers": [{"name": "t", "scaler": {"address": address}, "metadata": {"value": "1"}, "authenticationRef": {"name": "nope"}}]
        })))
        .unwrap();
    for (name, reason) in [
        ("min-above-max", "MinAboveMax"),
        ("undecodable", "InvalidObject"),
        ("bad-metadata", "InvalidMetadata"),
        ("bad-address", "InvalidScalerAddress"),
        ("missing-auth", "AuthenticationNotFound"),
    ] {
        let ready = eventually(
            Duration::from_secs(30),
            &format!("Ready=False on {name}"),
            || condition(&scaled(&server, name), "Ready").filter(|(s, _)| s == "False"),
        )
        .await;
        assert_eq!(ready.1, reason, "{name}");
        let warned = eventually(
            Duration::from_secs(10),
            &format!("Warning event on {name}"),
            || {
                events_for(&server, name)
                    .into_iter()
                    .find(|e| e["type"] == "Warning")
            },
        )
        .await;
        assert!(!warned["note"].as_str().unwrap_or("").is_empty());
    }
    let message = scaled(&server, "bad-metadata")
        .pointer("/status/conditions")
        .unwrap()
        .to_string();
    assert!(
        message.contains("spec.triggers[0].metadata.target"),
        "the message names the field: {message}"
    );
    // The watch survived: a good object created afterwards runs, and nothing was scaled.
    // (Its own target: "web" is claimed by the elder min-above-max, valid or not.)
    server.create(deployment("web-good", 1, json!([]))).unwrap();
    server
        .create(scaled_object(
            "good",
            json!({
                "scaleTargetRef": {"name": "web-good"}, "minReplicaCount": 1, "maxReplicaCount": 3,
                "triggers": trigger(json!({"value": "0"}))
            }),
        ))
        .unwrap();
    eventually(Duration::from_secs(30), "good object Ready=True", || {
        condition(&scaled(&server, "good"), "Ready").filter(|(s, _)| s == "True")
    })
    .await;
    // Fixing the bad object makes it run.
    server
        .merge_patch(
            "ebb.dev/v1alpha1",
            "ScaledObject",
            NS,
            "min-above-max",
            &json!({"spec": {"minReplicaCount": 1}}),
            false,
        )
        .unwrap();
    eventually(Duration::from_secs(30), "fixed object Ready=True", || {
        condition(&scaled(&server, "min-above-max"), "Ready").filter(|(s, _)| s == "True")
    })
    .await;
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_scaler_reaches_fallback_in_threshold_times_interval_plus_one_second() {
    let server = FakeApiServer::start().await;
    let port = free_port();
    let mut scaler = example_scaler(port).await;
    server.create(deployment("worker", 2, json!([]))).unwrap();
    let (threshold, interval) = (3u64, 1u64);
    server
        .create(scaled_object("worker", json!({
            "scaleTargetRef": {"name": "worker"}, "pollingInterval": interval, "minReplicaCount": 1, "maxReplicaCount": 10,
            "fallback": {"failureThreshold": threshold, "replicas": 6},
            "triggers": [{"name": "t", "scaler": {"address": format!("127.0.0.1:{port}")}, "metadata": {"value": "2", "target": "1"}}]
        })))
        .unwrap();
    let controller = Controller::start(&server, "replica-a").await;
    eventually(Duration::from_secs(30), "scaled to 2 and Ready", || {
        let ready =
            condition(&scaled(&server, "worker"), "Ready").is_some_and(|(s, _)| s == "True");
        (ready && server.deployment_replicas(NS, "worker") == Some(2)).then_some(())
    })
    .await;
    scaler.kill().await.unwrap();
    let killed = Instant::now();
    // The bound the issue sets: failureThreshold x pollingInterval + 1 s.
    let bound = Duration::from_secs(threshold * interval + 1);
    eventually(bound, "Fallback=True", || {
        condition(&scaled(&server, "worker"), "Fallback").filter(|(s, _)| s == "True")
    })
    .await;
    eprintln!(
        "fallback reached {:?} after the kill (bound {bound:?})",
        killed.elapsed()
    );
    eventually(Duration::from_secs(10), "fallback replicas", || {
        (server.deployment_replicas(NS, "worker") == Some(6)).then_some(())
    })
    .await;
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_restart_changes_no_replica_count() {
    let server = FakeApiServer::start().await;
    let port = free_port();
    let _scaler = example_scaler(port).await;
    let dir = tempfile::tempdir().unwrap();
    let value_file = dir.path().join("backlog");
    write_value(&value_file, 30.0);
    server.create(deployment("worker", 0, json!([]))).unwrap();
    server
        .create(scaled_object("worker", json!({
            "scaleTargetRef": {"name": "worker"}, "pollingInterval": 1, "cooldownPeriod": 300, "maxReplicaCount": 10,
            "triggers": [{"name": "t", "scaler": {"address": format!("127.0.0.1:{port}")},
                "metadata": {"valueFile": value_file.to_str().unwrap(), "target": "10"}}]
        })))
        .unwrap();
    let first = Controller::start(&server, "replica-a").await;
    eventually(Duration::from_secs(30), "scaled to 3", || {
        (server.deployment_replicas(NS, "worker") == Some(3)).then_some(())
    })
    .await;
    first.stop().await;
    let writes_before = scale_writes(&server, "worker");
    let lease = server
        .get(
            "coordination.k8s.io/v1",
            "Lease",
            "ebb-system",
            "ebb-controller",
        )
        .unwrap();
    assert!(
        lease["spec"]["holderIdentity"].is_null(),
        "the lease is released on shutdown: {lease}"
    );

    // A value within the 10 % tolerance: the right answer stays 3.
    write_value(&value_file, 31.0);
    let second = Controller::start(&server, "replica-b").await;
    // A reading within the tolerance is not written to the API server (issue 17): the new
    // controller's own /status shows that it polled.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, body) = http_get(second.telemetry, "/status").await;
        if body.contains("\"lastValue\":31.0") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new controller never polled (lastValue 31 on its /status): {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(server.deployment_replicas(NS, "worker"), Some(3));
    assert_eq!(
        scale_writes(&server, "worker"),
        writes_before,
        "no /scale write after the restart"
    );
    let lease = server
        .get(
            "coordination.k8s.io/v1",
            "Lease",
            "ebb-system",
            "ebb-controller",
        )
        .unwrap();
    assert_eq!(lease["spec"]["holderIdentity"], "replica-b");
    second.stop().await;
}

/// Counts the TCP connections it forwards to `target`.
async fn counting_proxy(target: u16) -> (u16, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = Arc::new(AtomicUsize::new(0));
    let counter = count.clone();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                if let Ok(mut outbound) =
                    tokio::net::TcpStream::connect(("127.0.0.1", target)).await
                {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    (port, count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_objects_on_one_scaler_share_at_most_two_connections() {
    const OBJECTS: usize = 1000;
    let server = FakeApiServer::start().await;
    let port = free_port();
    let _scaler = example_scaler(port).await;
    let (proxy_port, connections) = counting_proxy(port).await;
    for index in 0..OBJECTS {
        let name = format!("w{index}");
        server.create(deployment(&name, 0, json!([]))).unwrap();
        server
            .create(scaled_object(&name, json!({
                "scaleTargetRef": {"name": name}, "pollingInterval": 5,
                "triggers": [{"name": "t", "scaler": {"address": format!("127.0.0.1:{proxy_port}")}, "metadata": {"value": "0"}}]
            })))
            .unwrap();
    }
    let started = Instant::now();
    let controller = Controller::start(&server, "replica-a").await;
    // Counting 1,000 objects copies them under the fake's lock: do it twice a second only.
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let objects = server.list("ebb.dev/v1alpha1", "ScaledObject");
        let with_status = objects.iter().filter(|o| o.get("status").is_some()).count();
        let ready = objects
            .iter()
            .filter(|o| condition(o, "Ready").is_some_and(|(s, _)| s == "True"))
            .count();
        if ready == OBJECTS {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {ready} of {OBJECTS} objects Ready ({with_status} with a status) after {:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!("{OBJECTS} objects Ready after {:?}", started.elapsed());
    let seen = connections.load(Ordering::SeqCst);
    assert!(
        (1..=2).contains(&seen),
        "the scaler saw {seen} TCP connections from the controller"
    );
    controller.stop().await;
}

fn rabbitmq_api(method: &str, path: &str, body: Option<Value>) -> bool {
    let mut command = std::process::Command::new("curl");
    command.args([
        "-sf",
        "-u",
        "guest:guest",
        "-X",
        method,
        "-H",
        "content-type: application/json",
    ]);
    if let Some(body) = body {
        command.args(["-d", &body.to_string()]);
    }
    command.arg(format!("http://127.0.0.1:15672/api{path}"));
    command
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_queue_scales_a_deployment_with_credentials_from_a_scaler_authentication() {
    support::require_service("RabbitMQ", "127.0.0.1:5672");
    support::require_service("RabbitMQ management", "127.0.0.1:15672");
    let queue = format!("ebb-k8s-e2e-{}", std::process::id());
    assert!(rabbitmq_api(
        "PUT",
        &format!("/queues/%2F/{queue}"),
        Some(json!({"durable": false, "auto_delete": false}))
    ));
    let server = FakeApiServer::start().await;
    let port = free_port();
    let _scaler = start_scaler("ebb-rabbitmq-scaler", "ebb-rabbitmq-scaler", port).await;
    server
        .create(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "broker", "namespace": NS},
            "stringData": {"url": "amqp://guest:guest@127.0.0.1:5672/%2F"}}))
        .unwrap();
    server
        .create(json!({"apiVersion": "ebb.dev/v1alpha1", "kind": "ScalerAuthentication", "metadata": {"name": "broker", "namespace": NS},
            "spec": {"secretTargetRef": [{"parameter": "host", "name": "broker", "key": "url"}]}}))
        .unwrap();
    server.create(deployment("consumer", 0, json!([]))).unwrap();
    server
        .create(scaled_object("consumer", json!({
            "scaleTargetRef": {"name": "consumer"}, "pollingInterval": 1, "cooldownPeriod": 2, "maxReplicaCount": 30,
            "advanced": fast_scale_down(),
            "triggers": [{"name": "orders", "type": "rabbitmq", "scaler": {"address": format!("127.0.0.1:{port}")},
                "metadata": {"queueName": queue, "mode": "QueueLength", "value": "5"},
                "authenticationRef": {"name": "broker"}}]
        })))
        .unwrap();
    let controller = Controller::start(&server, "replica-a").await;
    eventually(Duration::from_secs(30), "Ready=True", || {
        condition(&scaled(&server, "consumer"), "Ready").filter(|(s, _)| s == "True")
    })
    .await;
    for index in 0..23 {
        let body = json!({"properties": {}, "routing_key": queue, "payload": format!("m{index}"), "payload_encoding": "string"});
        assert!(rabbitmq_api(
            "POST",
            "/exchanges/%2F/amq.default/publish",
            Some(body)
        ));
    }
    eventually(
        Duration::from_secs(30),
        "0 -> 5 replicas for 23 messages",
        || (server.deployment_replicas(NS, "consumer") == Some(5)).then_some(()),
    )
    .await;
    assert!(rabbitmq_api(
        "DELETE",
        &format!("/queues/%2F/{queue}/contents"),
        None
    ));
    eventually(
        Duration::from_secs(30),
        "drained: back to 0 after cooldown",
        || (server.deployment_replicas(NS, "consumer") == Some(0)).then_some(()),
    )
    .await;
    // The broker URL (with its password) never shows in status or events.
    let status = scaled(&server, "consumer").to_string();
    assert!(!status.contains("guest:guest"), "{status}");
    for event in events_for(&server, "consumer") {
        assert!(!event.to_string().contains("guest:guest"));
    }
    controller.stop().await;
    rabbitmq_api("DELETE", &format!("/queues/%2F/{queue}"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scaler_that_never_answers_getinfo_does_not_hold_up_other_objects() {
    let server = FakeApiServer::start().await;
    // Accepts TCP and HTTP/2 never comes: GetInfo to it waits for the whole info timeout.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_address = silent.local_addr().unwrap().to_string();
    let port = free_port();
    let _scaler = example_scaler(port).await;
    server.create(deployment("web", 1, json!([]))).unwrap();
    // Far longer than this test waits. A GetInfo that blocked the watch would end only when
    // HTTP/2 keep-alive gives up on the silent connection (about 50 s), after this test's 20 s.
    let controller = Controller::start_with(&server, "replica-a", Duration::from_secs(600)).await;
    // An object that is Ready proves the controller leads and watches, so the next two
    // arrive as watch events, stuck first (an initial list hands them over in name order).
    let healthy_spec = json!({
        "scaleTargetRef": {"name": "web"}, "minReplicaCount": 1,
        "triggers": [{"name": "t", "scaler": {"address": format!("127.0.0.1:{port}")}, "metadata": {"value": "1"}}]
    });
    server
        .create(scaled_object("first", healthy_spec.clone()))
        .unwrap();
    eventually(
        Duration::from_secs(60),
        "the first object to be Ready",
        || condition(&scaled(&server, "first"), "Ready").filter(|(status, _)| status == "True"),
    )
    .await;
    // Each on its own target: a target has one owner.
    server
        .create(deployment("web-healthy", 1, json!([])))
        .unwrap();
    server
        .create(scaled_object("stuck", json!({
            "scaleTargetRef": {"name": "web-stuck"},
            "triggers": [{"name": "t", "scaler": {"address": silent_address}, "metadata": {"value": "1"}}]
        })))
        .unwrap();
    let mut healthy_spec = healthy_spec;
    healthy_spec["scaleTargetRef"]["name"] = json!("web-healthy");
    server
        .create(scaled_object("healthy", healthy_spec))
        .unwrap();
    eventually(
        Duration::from_secs(20),
        "the healthy object to be Ready",
        || condition(&scaled(&server, "healthy"), "Ready").filter(|(status, _)| status == "True"),
    )
    .await;
    // The stuck one is still being prepared: no loop runs for it, so it has no status yet.
    assert!(
        condition(&scaled(&server, "stuck"), "Ready").is_none(),
        "{}",
        scaled(&server, "stuck")
    );
    drop(silent);
    controller.stop().await;
}

/// Log lines written while the guard lives, by tasks on this thread (a current-thread
/// runtime runs them all here).
#[derive(Clone, Default)]
struct CapturedLogs(Arc<std::sync::Mutex<Vec<u8>>>);

impl CapturedLogs {
    fn capture(&self) -> tracing::subscriber::DefaultGuard {
        let sink = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || sink.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for CapturedLogs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_missing_lease_namespace_is_named_with_its_fix_and_the_controller_leads_once_it_exists() {
    let logs = CapturedLogs::default();
    let _capture = logs.capture();
    // A cluster where namespaces must exist, and `ebb-system` does not (yet).
    let mut types = fake_apiserver::ResourceType::defaults();
    types.extend(
        fake_apiserver::ResourceType::builtins()
            .into_iter()
            .filter(|t| t.group.is_empty() && t.plural == "namespaces"),
    );
    let server = FakeApiServer::start_options(fake_apiserver::Options {
        types,
        bookmark_interval: Duration::from_secs(1),
        namespaces_must_exist: true,
        log_requests: false,
    })
    .await;
    let controller = Controller::start(&server, "replica-a").await;

    // Not ready, and the readiness answer says which namespace is missing and how to fix it.
    let deadline = Instant::now() + Duration::from_secs(10);
    let answer = loop {
        let (code, body) = http_get(controller.telemetry, "/readyz").await;
        if code == 503 && body.contains("ebb-system") {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz never named the missing namespace: {code} {body}\nlogs:\n{}",
            logs.text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        answer.contains("kubectl create namespace ebb-system") && answer.contains("--namespace"),
        "{answer}"
    );
    // At error level, with the same fix, and once: it keeps retrying quietly.
    let text = logs.text();
    let errors: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("ERROR") && line.contains("ebb-system"))
        .collect();
    assert_eq!(errors.len(), 1, "{text}");
    assert!(
        errors[0].contains("kubectl create namespace ebb-system"),
        "{}",
        errors[0]
    );

    // Once the namespace exists, the retries take the lease and the replica is ready.
    server
        .create(json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "ebb-system"}}))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let holder = server
            .get(
                "coordination.k8s.io/v1",
                "Lease",
                "ebb-system",
                "ebb-controller",
            )
            .map(|lease| lease["spec"]["holderIdentity"].clone());
        let (code, _) = http_get(controller.telemetry, "/readyz").await;
        if holder == Some(json!("replica-a")) && code == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not leading and ready after the namespace appeared: {holder:?} {code}\n{}",
            logs.text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    controller.stop().await;
}
