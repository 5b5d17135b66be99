//! End-to-end tests of the Kubernetes controller: the real controller code (leader election,
//! watch, resolution, scale loops, `/scale` writes, status, Events) run in the test process
//! against the real control plane (`scripts/cluster.sh`), with real scaler processes over
//! loopback gRPC. The engine's decisions have their own tests; these check the Kubernetes side
//! end to end.
//!
//! Each test has a namespace of its own: the controller watches only there, holds its Lease
//! there, and runs as a ServiceAccount with the RBAC of `deploy/`, so the apiserver's audit
//! log tells its requests (the `/scale` writes) apart and a refused one fails the test.

mod in_process_controller;
mod real_clients;
mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ebb::kubernetes::ControllerArgs;
use in_process_controller::{InProcessController, test_args};
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use real_clients::cluster::{AuditMark, Cluster, ControllerAccount, Namespace};
use serde_json::{Value, json};
use tokio::process::{Child, Command};

/// Taken for reading by each test, for writing by the thousand-object test: its 2,000 objects
/// keep the control plane's controllers (and the 2 cores) busy for minutes, which would hold
/// up the other tests' ReplicaSets and Pods and their status writes well past their bounds.
static LOAD: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// A test's hold on [`LOAD`].
enum Load {
    Shared(#[allow(dead_code)] tokio::sync::RwLockReadGuard<'static, ()>),
    Alone(#[allow(dead_code)] tokio::sync::RwLockWriteGuard<'static, ()>),
}

/// One test's share of the real cluster: its namespace, an admin client, and the
/// ServiceAccount the controller runs as there.
struct Apps {
    _load: Load,
    cluster: Cluster,
    namespace: Namespace,
    admin: kube::Client,
    account: ControllerAccount,
    /// Where the audit log stood when the test began.
    mark: AuditMark,
}

impl Apps {
    /// ebb's CRDs, a namespace `PREFIX-<random>` and the controller's ServiceAccount in it.
    async fn new(prefix: &str) -> Self {
        Self::with(prefix, Load::Shared(LOAD.read().await)).await
    }

    /// As [`Apps::new`], for a test that loads the control plane: no other test of this
    /// binary runs meanwhile.
    async fn alone(prefix: &str) -> Self {
        Self::with(prefix, Load::Alone(LOAD.write().await)).await
    }

    async fn with(prefix: &str, load: Load) -> Self {
        let cluster = Cluster::running();
        {
            let _cluster_wide = cluster.exclusive();
            cluster.install_crds();
        }
        let namespace = cluster.namespace(prefix);
        let account = cluster.controller_account(&namespace.name);
        let admin = cluster.client(None).await;
        let mark = cluster.audit_mark();
        Self {
            _load: load,
            cluster,
            namespace,
            admin,
            account,
            mark,
        }
    }

    /// The API of `kind` in this namespace, as the admin.
    fn api(&self, api_version: &str, kind: &str) -> Api<DynamicObject> {
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let plural = format!("{}s", kind.to_lowercase());
        let resource = ApiResource::from_gvk_with_plural(&gvk, &plural);
        Api::namespaced_with(self.admin.clone(), &self.namespace.name, &resource)
    }

    /// Creates `object` (its `apiVersion` and `kind` say where) in this namespace.
    async fn create(&self, object: Value) {
        if let Err(error) = self.try_create(object).await {
            panic!("{error}");
        }
    }

    /// Creates `object`; the apiserver's refusal as text.
    async fn try_create(&self, object: Value) -> Result<(), String> {
        let api = self.api(
            object["apiVersion"].as_str().expect("apiVersion"),
            object["kind"].as_str().expect("kind"),
        );
        let object: DynamicObject = serde_json::from_value(object).expect("an object");
        api.create(&PostParams::default(), &object)
            .await
            .map(drop)
            .map_err(|error| format!("create {:?}: {error}", object.metadata.name))
    }

    async fn get(&self, api_version: &str, kind: &str, name: &str) -> Option<Value> {
        let object = self.api(api_version, kind).get_opt(name).await;
        let object = object.unwrap_or_else(|error| panic!("get {kind} {name}: {error}"));
        object.map(|object| serde_json::to_value(object).expect("serialize"))
    }

    async fn scaled(&self, name: &str) -> Value {
        self.get("ebb.dev/v1alpha1", "ScaledObject", name)
            .await
            .unwrap_or(Value::Null)
    }

    /// The Deployment's `spec.replicas`: what ebb wrote through `/scale`.
    async fn deployment_replicas(&self, name: &str) -> Option<i64> {
        self.get("apps/v1", "Deployment", name)
            .await?
            .pointer("/spec/replicas")?
            .as_i64()
    }

    /// The Deployment's `status.readyReplicas` (absent: 0): Pods the real ReplicaSet made and
    /// the kubelet stand-in runs.
    async fn ready_replicas(&self, name: &str) -> i64 {
        self.get("apps/v1", "Deployment", name)
            .await
            .and_then(|deployment| deployment.pointer("/status/readyReplicas")?.as_i64())
            .unwrap_or(0)
    }

    async fn lease_holder(&self) -> Value {
        let lease = self
            .get("coordination.k8s.io/v1", "Lease", "ebb-controller")
            .await
            .expect("the controller's Lease");
        lease["spec"]["holderIdentity"].clone()
    }

    async fn events_for(&self, name: &str) -> Vec<Value> {
        let api = self.api("events.k8s.io/v1", "Event");
        let events = api.list(&Default::default()).await.expect("list Events");
        events
            .items
            .into_iter()
            .map(|event| serde_json::to_value(event).expect("serialize"))
            .filter(|e| e.pointer("/regarding/name").and_then(Value::as_str) == Some(name))
            .collect()
    }

    /// `/scale` writes of the controller's user to Deployment `name`, from the audit log.
    fn scale_writes(&self, name: &str) -> usize {
        let path = format!(
            "/apis/apps/v1/namespaces/{}/deployments/{name}/scale",
            self.namespace.name
        );
        self.cluster
            .audited_requests_since(&self.mark, &self.account.user)
            .iter()
            .filter(|r| r.verb == "patch" && r.uri.split('?').next() == Some(path.as_str()))
            .count()
    }

    /// The test's controller flags: `identity`, watching this namespace only, its Lease here.
    fn args(&self, identity: &str) -> ControllerArgs {
        ControllerArgs {
            namespace: self.namespace.name.clone(),
            watch_namespace: Some(self.namespace.name.clone()),
            resync_interval: Duration::from_secs(600),
            ..test_args(identity)
        }
    }

    /// Starts the controller with `args`, as the ServiceAccount.
    async fn start(&self, args: ControllerArgs) -> InProcessController {
        let client = self.cluster.client(Some(&self.account.kubeconfig)).await;
        InProcessController::start(client, args).await
    }

    async fn controller(&self, identity: &str) -> InProcessController {
        self.start(self.args(identity)).await
    }

    /// Fails the test if RBAC refused any request of the controller.
    fn assert_nothing_forbidden(&self) {
        self.cluster
            .assert_nothing_forbidden(&self.mark, &self.account.user);
    }
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

async fn eventually<T>(
    limit: Duration,
    what: &str,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn deployment(name: &str, replicas: i64, env: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
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
    json!({"apiVersion": "ebb.dev/v1alpha1", "kind": "ScaledObject", "metadata": {"name": name}, "spec": spec})
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
    let apps = Apps::new("controller-e2e").await;
    let port = support::free_port();
    let _scaler = example_scaler(port).await;
    let dir = tempfile::tempdir().unwrap();
    let value_file = dir.path().join("backlog");
    write_value(&value_file, 0.0);
    // KEDA's form, with the value file's path coming from the target's env (xFromEnv).
    apps.create(deployment(
        "worker",
        0,
        json!([{"name": "BACKLOG_FILE", "value": value_file.to_str().unwrap()}]),
    ))
    .await;
    apps.create(scaled_object("worker", json!({
        "scaleTargetRef": {"name": "worker"},
        "pollingInterval": 1, "cooldownPeriod": 2, "minReplicaCount": 0, "maxReplicaCount": 10,
        "advanced": fast_scale_down(),
        "triggers": [{"type": "external", "name": "backlog", "metadata": {
            "scalerAddress": format!("127.0.0.1:{port}"), "valueFileFromEnv": "BACKLOG_FILE", "target": "2"
        }}]
    })))
    .await;
    let controller = apps.controller("replica-a").await;
    let ready = eventually(Duration::from_secs(30), "Ready=True", async || {
        condition(&apps.scaled("worker").await, "Ready").filter(|(s, _)| s == "True")
    })
    .await;
    assert_eq!(ready.0, "True");
    assert_eq!(
        apps.deployment_replicas("worker").await,
        Some(0),
        "nothing waits, nothing runs"
    );

    write_value(&value_file, 9.0);
    eventually(Duration::from_secs(30), "scale 0 -> 5", async || {
        (apps.deployment_replicas("worker").await == Some(5)).then_some(())
    })
    .await;
    // The real ReplicaSet brings up the Pods, and the kubelet stand-in runs them.
    eventually(Duration::from_secs(60), "5 ready Pods", async || {
        (apps.ready_replicas("worker").await == 5).then_some(())
    })
    .await;
    // Status follows (written asynchronously, coalesced).
    let object = eventually(
        Duration::from_secs(10),
        "status desiredReplicas 5",
        async || {
            let object = apps.scaled("worker").await;
            (object.pointer("/status/desiredReplicas") == Some(&json!(5))).then_some(object)
        },
    )
    .await;
    assert_eq!(condition(&object, "Active").unwrap().0, "True", "{object}");
    assert!(object.pointer("/status/lastActiveTime").is_some());

    write_value(&value_file, 0.0);
    eventually(
        Duration::from_secs(30),
        "scale back to 0 after cooldown",
        async || (apps.deployment_replicas("worker").await == Some(0)).then_some(()),
    )
    .await;
    eventually(Duration::from_secs(60), "no ready Pod left", async || {
        (apps.ready_replicas("worker").await == 0).then_some(())
    })
    .await;
    // Every scale change is an Event carrying the engine's reason.
    let scaled_events: Vec<Value> =
        eventually(Duration::from_secs(10), "Scaled events", async || {
            let events: Vec<Value> = apps
                .events_for("worker")
                .await
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
    let writes = apps.scale_writes("worker");
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
    assert_eq!(apps.lease_holder().await, "replica-a");
    controller.stop().await;
    apps.assert_nothing_forbidden();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_objects_get_ready_false_and_the_watch_goes_on() {
    let apps = Apps::new("controller-bad").await;
    let port = support::free_port();
    let _scaler = example_scaler(port).await;
    let address = format!("127.0.0.1:{port}");
    apps.create(deployment("web", 1, json!([]))).await;
    let trigger = |metadata: Value| json!([{"name": "t", "scaler": {"address": address}, "metadata": metadata}]);
    let controller = apps.controller("replica-a").await;
    // min > max never reaches the controller: the CRD's CEL rule refuses it at the door, in
    // the words ebb's own validation uses (tests/kubernetes_cel.rs covers every rule).
    let refused = apps
        .try_create(scaled_object(
            "min-above-max",
            json!({
                "scaleTargetRef": {"name": "web"}, "minReplicaCount": 5, "maxReplicaCount": 2,
                "triggers": trigger(json!({"value": "1"}))
            }),
        ))
        .await
        .expect_err("the apiserver refuses min > max");
    assert!(
        refused.contains("minReplicaCount 5 is above maxReplicaCount 2"),
        "{refused}"
    );
    // A formula that does not parse: no schema can say so, so the controller must.
    apps.create(scaled_object(
        "bad-formula",
        json!({
            "scaleTargetRef": {"name": "web"},
            "advanced": {"scalingModifiers": {"formula": "max(t, t", "target": "5"}},
            "triggers": trigger(json!({"value": "1"}))
        }),
    ))
    .await;
    // The CRD's schema lets it through (an integer, at least 0, as `format: uint32` is not
    // enforced), but it does not fit ebb's u32: it cannot be decoded.
    apps.create(scaled_object(
        "undecodable",
        json!({
            "scaleTargetRef": {"name": "web-undecodable"}, "maxReplicaCount": 4_294_967_296_u64,
            "triggers": trigger(json!({"value": "1"}))
        }),
    ))
    .await;
    // Metadata the scaler's GetInfo schema rejects: target must be a number.
    apps.create(scaled_object("bad-metadata", json!({
        "scaleTargetRef": {"name": "web-bad-metadata"}, "triggers": trigger(json!({"value": "1", "target": "many"}))
    })))
    .await;
    apps.create(scaled_object("bad-address", json!({
        "scaleTargetRef": {"name": "web-bad-address"},
        "triggers": [{"name": "t", "scaler": {"address": "no port here"}, "metadata": {"value": "1"}}]
    })))
    .await;
    apps.create(scaled_object("missing-auth", json!({
        "scaleTargetRef": {"name": "web-missing-auth"},
        "triggers": [{"name": "t", "scaler": {"address": address}, "metadata": {"value": "1"}, "authenticationRef": {"name": "nope"}}]
    })))
    .await;
    for (name, reason) in [
        ("bad-formula", "InvalidFormula"),
        ("undecodable", "InvalidObject"),
        ("bad-metadata", "InvalidMetadata"),
        ("bad-address", "InvalidScalerAddress"),
        ("missing-auth", "AuthenticationNotFound"),
    ] {
        let ready = eventually(
            Duration::from_secs(30),
            &format!("Ready=False on {name}"),
            async || condition(&apps.scaled(name).await, "Ready").filter(|(s, _)| s == "False"),
        )
        .await;
        assert_eq!(ready.1, reason, "{name}");
        let warned = eventually(
            Duration::from_secs(10),
            &format!("Warning event on {name}"),
            async || {
                apps.events_for(name)
                    .await
                    .into_iter()
                    .find(|e| e["type"] == "Warning")
            },
        )
        .await;
        assert!(!warned["note"].as_str().unwrap_or("").is_empty());
    }
    let message = apps
        .scaled("bad-metadata")
        .await
        .pointer("/status/conditions")
        .unwrap()
        .to_string();
    assert!(
        message.contains("spec.triggers[0].metadata.target"),
        "the message names the field: {message}"
    );
    // The watch survived: a good object created afterwards runs, and nothing was scaled.
    // (Its own target: "web" is claimed by the elder bad-formula, valid or not.)
    apps.create(deployment("web-good", 1, json!([]))).await;
    apps.create(scaled_object(
        "good",
        json!({
            "scaleTargetRef": {"name": "web-good"}, "minReplicaCount": 1, "maxReplicaCount": 3,
            "triggers": trigger(json!({"value": "0"}))
        }),
    ))
    .await;
    eventually(
        Duration::from_secs(30),
        "good object Ready=True",
        async || condition(&apps.scaled("good").await, "Ready").filter(|(s, _)| s == "True"),
    )
    .await;
    // Fixing the bad object makes it run.
    apps.api("ebb.dev/v1alpha1", "ScaledObject")
        .patch(
            "bad-formula",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"spec": {"advanced": {"scalingModifiers": {"formula": "max(t, t)"}}}}),
            ),
        )
        .await
        .expect("fix bad-formula");
    eventually(
        Duration::from_secs(30),
        "fixed object Ready=True",
        async || condition(&apps.scaled("bad-formula").await, "Ready").filter(|(s, _)| s == "True"),
    )
    .await;
    controller.stop().await;
    apps.assert_nothing_forbidden();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_scaler_reaches_fallback_in_threshold_times_interval_plus_one_second() {
    let apps = Apps::new("controller-fallback").await;
    let port = support::free_port();
    let mut scaler = example_scaler(port).await;
    apps.create(deployment("worker", 2, json!([]))).await;
    let (threshold, interval) = (3u64, 1u64);
    apps.create(scaled_object("worker", json!({
        "scaleTargetRef": {"name": "worker"}, "pollingInterval": interval, "minReplicaCount": 1, "maxReplicaCount": 10,
        "fallback": {"failureThreshold": threshold, "replicas": 6},
        "triggers": [{"name": "t", "scaler": {"address": format!("127.0.0.1:{port}")}, "metadata": {"value": "2", "target": "1"}}]
    })))
    .await;
    let controller = apps.controller("replica-a").await;
    eventually(
        Duration::from_secs(30),
        "scaled to 2 and Ready",
        async || {
            let ready =
                condition(&apps.scaled("worker").await, "Ready").is_some_and(|(s, _)| s == "True");
            (ready && apps.deployment_replicas("worker").await == Some(2)).then_some(())
        },
    )
    .await;
    scaler.kill().await.unwrap();
    let killed = Instant::now();
    // The bound the issue sets: failureThreshold x pollingInterval + 1 s.
    let bound = Duration::from_secs(threshold * interval + 1);
    eventually(bound, "Fallback=True", async || {
        condition(&apps.scaled("worker").await, "Fallback").filter(|(s, _)| s == "True")
    })
    .await;
    eprintln!(
        "fallback reached {:?} after the kill (bound {bound:?})",
        killed.elapsed()
    );
    eventually(Duration::from_secs(10), "fallback replicas", async || {
        (apps.deployment_replicas("worker").await == Some(6)).then_some(())
    })
    .await;
    eventually(Duration::from_secs(60), "6 ready Pods", async || {
        (apps.ready_replicas("worker").await == 6).then_some(())
    })
    .await;
    controller.stop().await;
    apps.assert_nothing_forbidden();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_restart_changes_no_replica_count() {
    let apps = Apps::new("controller-restart").await;
    let port = support::free_port();
    let _scaler = example_scaler(port).await;
    let dir = tempfile::tempdir().unwrap();
    let value_file = dir.path().join("backlog");
    write_value(&value_file, 30.0);
    apps.create(deployment("worker", 0, json!([]))).await;
    apps.create(scaled_object("worker", json!({
        "scaleTargetRef": {"name": "worker"}, "pollingInterval": 1, "cooldownPeriod": 300, "maxReplicaCount": 10,
        "triggers": [{"name": "t", "scaler": {"address": format!("127.0.0.1:{port}")},
            "metadata": {"valueFile": value_file.to_str().unwrap(), "target": "10"}}]
    })))
    .await;
    let first = apps.controller("replica-a").await;
    eventually(Duration::from_secs(30), "scaled to 3", async || {
        (apps.deployment_replicas("worker").await == Some(3)).then_some(())
    })
    .await;
    first.stop().await;
    let writes_before = apps.scale_writes("worker");
    let holder = apps.lease_holder().await;
    assert!(
        holder.is_null(),
        "the lease is released on shutdown: {holder}"
    );

    // A value within the 10 % tolerance: the right answer stays 3.
    write_value(&value_file, 31.0);
    let second = apps.controller("replica-b").await;
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
    assert_eq!(apps.deployment_replicas("worker").await, Some(3));
    assert_eq!(
        apps.scale_writes("worker"),
        writes_before,
        "no /scale write after the restart"
    );
    assert_eq!(apps.lease_holder().await, "replica-b");
    second.stop().await;
    apps.assert_nothing_forbidden();
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
    use futures::StreamExt;
    const OBJECTS: usize = 1000;
    let apps = Apps::alone("controller-thousand").await;
    let port = support::free_port();
    let _scaler = example_scaler(port).await;
    let (proxy_port, connections) = counting_proxy(port).await;
    let address = format!("127.0.0.1:{proxy_port}");
    futures::stream::iter(0..OBJECTS)
        .for_each_concurrent(16, |index| {
            let (apps, address) = (&apps, &address);
            async move {
                let name = format!("w{index}");
                apps.create(deployment(&name, 0, json!([]))).await;
                apps.create(scaled_object(&name, json!({
                    "scaleTargetRef": {"name": name}, "pollingInterval": 5,
                    "triggers": [{"name": "t", "scaler": {"address": address}, "metadata": {"value": "0"}}]
                })))
                .await;
            }
        })
        .await;
    let started = Instant::now();
    let controller = apps.controller("replica-a").await;
    let scaled_objects = apps.api("ebb.dev/v1alpha1", "ScaledObject");
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let objects = scaled_objects.list(&Default::default()).await;
        let objects: Vec<Value> = objects
            .expect("list ScaledObjects")
            .items
            .into_iter()
            .map(|object| serde_json::to_value(object).expect("serialize"))
            .collect();
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
    apps.assert_nothing_forbidden();
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
    let apps = Apps::new("controller-rabbitmq").await;
    let port = support::free_port();
    let _scaler = start_scaler("ebb-rabbitmq-scaler", "ebb-rabbitmq-scaler", port).await;
    apps.create(
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "broker"},
        "stringData": {"url": "amqp://guest:guest@127.0.0.1:5672/%2F"}}),
    )
    .await;
    apps.create(json!({"apiVersion": "ebb.dev/v1alpha1", "kind": "ScalerAuthentication", "metadata": {"name": "broker"},
        "spec": {"secretTargetRef": [{"parameter": "host", "name": "broker", "key": "url"}]}}))
        .await;
    apps.create(deployment("consumer", 0, json!([]))).await;
    apps.create(scaled_object("consumer", json!({
        "scaleTargetRef": {"name": "consumer"}, "pollingInterval": 1, "cooldownPeriod": 2, "maxReplicaCount": 30,
        "advanced": fast_scale_down(),
        "triggers": [{"name": "orders", "type": "rabbitmq", "scaler": {"address": format!("127.0.0.1:{port}")},
            "metadata": {"queueName": queue, "mode": "QueueLength", "value": "5"},
            "authenticationRef": {"name": "broker"}}]
    })))
    .await;
    let controller = apps.controller("replica-a").await;
    eventually(Duration::from_secs(30), "Ready=True", async || {
        condition(&apps.scaled("consumer").await, "Ready").filter(|(s, _)| s == "True")
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
        async || (apps.deployment_replicas("consumer").await == Some(5)).then_some(()),
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
        async || (apps.deployment_replicas("consumer").await == Some(0)).then_some(()),
    )
    .await;
    // The broker URL (with its password) never shows in status or events.
    let status = apps.scaled("consumer").await.to_string();
    assert!(!status.contains("guest:guest"), "{status}");
    for event in apps.events_for("consumer").await {
        assert!(!event.to_string().contains("guest:guest"));
    }
    controller.stop().await;
    apps.assert_nothing_forbidden();
    rabbitmq_api("DELETE", &format!("/queues/%2F/{queue}"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scaler_that_never_answers_getinfo_does_not_hold_up_other_objects() {
    let apps = Apps::new("controller-getinfo").await;
    // Accepts TCP and HTTP/2 never comes: GetInfo to it waits for the whole info timeout.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_address = silent.local_addr().unwrap().to_string();
    let port = support::free_port();
    let _scaler = example_scaler(port).await;
    apps.create(deployment("web", 1, json!([]))).await;
    // Far longer than this test waits. A GetInfo that blocked the watch would end only when
    // HTTP/2 keep-alive gives up on the silent connection (about 50 s), after this test's 20 s.
    let controller = apps
        .start(ControllerArgs {
            info_timeout: Duration::from_secs(600),
            ..apps.args("replica-a")
        })
        .await;
    // An object that is Ready proves the controller leads and watches, so the next two
    // arrive as watch events, stuck first (an initial list hands them over in name order).
    let healthy_spec = json!({
        "scaleTargetRef": {"name": "web"}, "minReplicaCount": 1,
        "triggers": [{"name": "t", "scaler": {"address": format!("127.0.0.1:{port}")}, "metadata": {"value": "1"}}]
    });
    apps.create(scaled_object("first", healthy_spec.clone()))
        .await;
    eventually(
        Duration::from_secs(60),
        "the first object to be Ready",
        async || {
            condition(&apps.scaled("first").await, "Ready").filter(|(status, _)| status == "True")
        },
    )
    .await;
    // Each on its own target: a target has one owner.
    apps.create(deployment("web-healthy", 1, json!([]))).await;
    apps.create(scaled_object("stuck", json!({
        "scaleTargetRef": {"name": "web-stuck"},
        "triggers": [{"name": "t", "scaler": {"address": silent_address}, "metadata": {"value": "1"}}]
    })))
    .await;
    let mut healthy_spec = healthy_spec;
    healthy_spec["scaleTargetRef"]["name"] = json!("web-healthy");
    apps.create(scaled_object("healthy", healthy_spec)).await;
    eventually(
        Duration::from_secs(20),
        "the healthy object to be Ready",
        async || {
            condition(&apps.scaled("healthy").await, "Ready").filter(|(status, _)| status == "True")
        },
    )
    .await;
    // The stuck one is still being prepared: no loop runs for it, so it has no status yet.
    let stuck = apps.scaled("stuck").await;
    assert!(condition(&stuck, "Ready").is_none(), "{stuck}");
    drop(silent);
    controller.stop().await;
    apps.assert_nothing_forbidden();
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
    let _load = LOAD.read().await;
    let logs = CapturedLogs::default();
    let _capture = logs.capture();
    let cluster = Cluster::running();
    {
        let _cluster_wide = cluster.exclusive();
        cluster.install_crds();
    }
    // The controller's namespace does not exist (yet); the real apiserver refuses a Lease
    // there by itself. The admin runs the controller: no RoleBinding can exist in a missing
    // namespace, and the point is the apiserver's 404, not RBAC's 403.
    let missing = cluster.namespace_to_create("lease-missing");
    let client = cluster.client(None).await;
    let args = ControllerArgs {
        namespace: missing.name.clone(),
        watch_namespace: Some(missing.name.clone()),
        ..test_args("replica-a")
    };
    let controller = InProcessController::start(client.clone(), args).await;

    // Not ready, and the readiness answer says which namespace is missing and how to fix it.
    let deadline = Instant::now() + Duration::from_secs(10);
    let answer = loop {
        let (code, body) = http_get(controller.telemetry, "/readyz").await;
        if code == 503 && body.contains(&missing.name) {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz never named the missing namespace: {code} {body}\nlogs:\n{}",
            logs.text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let fix = format!("kubectl create namespace {}", missing.name);
    assert!(
        answer.contains(&fix) && answer.contains("--namespace"),
        "{answer}"
    );
    // At error level, with the same fix, and once: it keeps retrying quietly.
    let text = logs.text();
    let errors: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("ERROR") && line.contains(&missing.name))
        .collect();
    assert_eq!(errors.len(), 1, "{text}");
    assert!(errors[0].contains(&fix), "{}", errors[0]);

    // Once the namespace exists, the retries take the lease and the replica is ready.
    let namespace: k8s_openapi::api::core::v1::Namespace =
        serde_json::from_value(json!({"metadata": {"name": missing.name}})).unwrap();
    Api::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .expect("create the namespace");
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(client, &missing.name);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let lease = leases
            .get_opt("ebb-controller")
            .await
            .expect("read the Lease");
        let holder = lease.and_then(|lease| lease.spec?.holder_identity);
        let (code, _) = http_get(controller.telemetry, "/readyz").await;
        if holder.as_deref() == Some("replica-a") && code == 200 {
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
